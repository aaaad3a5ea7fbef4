"""Screens read from pixels: for games, canvas, Flutter and WebView apps whose view tree says little.

ocr       PP-OCRv4 text detection + recognition on CPU (onnxruntime; models from the
          rapidocr-onnxruntime wheel, nothing downloaded)
controls  classical vision (OpenCV): filled boxes, switches, check boxes, round icons,
          text-field underlines, a dialog's card over a dimmed screen
parse     both into widgets (Android classes, screen-pixel bounds, `vision:` resource ids
          made from the label with digits taken out)
merge     widgets into the holes of a view tree (SurfaceView, WebView, …); the tree wins elsewhere
device    VisionDevice: any Device seen through its pixels; actions become touches at detected boxes

Screen identity needs nothing new: `graph.fingerprint.structure_key` over a merged screen uses
the `vision:` ids, which leave out numbers (score, clock) and row texts, and no moving sprite
or drifting background becomes a widget. Optional dependencies are imported inside functions,
so importing this package costs nothing until a screen is read.
"""

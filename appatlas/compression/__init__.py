"""Post-training compression of causal LMs: quantization (RTN, GPTQ, appatlas mixed precision),
pruning (magnitude, Wanda, SparseGPT, appatlas block-aware), a packed on-disk format and CPU kernels.

Self-contained: imports nothing else from appatlas.
"""

from .errors import CompressionError, ModelNotFound
from .models import load_causal_lm
from .pipeline import CompressSpec, compress

__all__ = ["CompressSpec", "CompressionError", "ModelNotFound", "compress", "load_causal_lm"]

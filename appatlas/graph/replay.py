"""Build a replay device from an atlas or a DroidBot recording."""

from __future__ import annotations

import tempfile
from pathlib import Path

from appatlas.devices.replay import RecordedApp, RecordedEdge, ReplayDevice
from appatlas.graph.atlas import DB_NAME, Atlas

__all__ = ["open_replay", "recorded_app"]


def recorded_app(atlas: Atlas) -> RecordedApp:
    """Everything a ReplayDevice needs, read from an atlas (screens without screenshots)."""
    states = {s.id: atlas.screen(s.id, with_screenshot=False) for s in atlas.states()}
    keys = {s.id: s.structure_key for s in atlas.states()}
    edges = [RecordedEdge(t.source, t.action, t.target, t.count, t.id) for t in atlas.transitions()]
    package = atlas.get_meta("package") or next((s.package for s in states.values()), "")
    return RecordedApp(package=package, states=states, edges=edges, keys=keys, log=atlas.observations())


def open_replay(path: str | Path, *, serial: str = "replay-1", screenshots: bool = True) -> ReplayDevice:
    """A ReplayDevice over an atlas folder, or over a DroidBot folder (imported to a temporary atlas)."""
    path = Path(path)
    if (path / DB_NAME).is_file():
        with Atlas.open(path) as atlas:
            return ReplayDevice(recorded_app(atlas), serial=serial, screenshots=screenshots)
    from appatlas.graph.droidbot import import_droidbot

    # The imported atlas is read into memory whole (recorded_app), so its folder goes at once.
    with tempfile.TemporaryDirectory(prefix="appatlas-replay-") as tmp:
        imported = Path(tmp) / "app.atlas"
        import_droidbot(path, imported)
        with Atlas.open(imported) as atlas:
            return ReplayDevice(recorded_app(atlas), serial=serial, screenshots=screenshots)

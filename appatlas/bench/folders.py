"""The app folders of a DroidTask-layout data folder, as every benchmark over recorded tasks reads them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["app_folders"]


def app_folders(data: str | os.PathLike[str], apps: Sequence[str] | None = ()) -> list[Path]:
    """The app folders under `data` that hold `states/` and `task*.yaml`, sorted; only `apps` when given."""
    data = Path(data)
    folders = sorted(p for p in data.iterdir() if p.is_dir() and (p / "states").is_dir() and any(p.glob("task*.yaml")))
    if apps:
        folders = [p for p in folders if p.name in set(apps)]
    if not folders:
        named = f" named {','.join(apps)}" if apps else ""
        raise FileNotFoundError(f"{data} holds no app folders{named} with states/ and task*.yaml (the DroidTask "
                                "layout)")
    return folders

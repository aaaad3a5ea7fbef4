"""Built-in apps for the virtual device: YAML app specs shipped with appatlas.

`builtin_apps()` maps each app's name (its file name without `.yaml`) to its path, sorted by name.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["builtin_apps"]

_HERE = Path(__file__).resolve().parent


def builtin_apps() -> dict[str, Path]:
    """Name -> path of every built-in app spec (e.g. "demo")."""
    return {p.stem: p for p in sorted(_HERE.glob("*.yaml"))}

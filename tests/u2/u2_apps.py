"""The virtual app the u2 tests drive (the built-in demo), and the serial it runs under."""

from __future__ import annotations

from functools import cache

from appatlas.devices.spec import AppSpec
from appatlas.devices.virtual import VirtualDevice, open_app

SERIAL = "virtual-1"
PACKAGE = "com.appatlas.notes"
WIDTH, HEIGHT = 1080, 2280


def rid(name: str) -> str:
    return f"{PACKAGE}:id/{name}"


@cache
def _demo_spec() -> AppSpec:
    return open_app("demo").spec  # parsed once: specs are frozen, devices are not


def demo(serial: str = SERIAL) -> VirtualDevice:
    return open_app(_demo_spec(), serial=serial)


def pixel_distance(a: bytes | object, b: bytes | object) -> float:
    """Mean absolute difference per RGB channel (0-255) of two screenshots (encoded bytes or PIL images)."""
    from io import BytesIO

    import numpy as np
    from PIL import Image

    def rgb(x: bytes | object) -> np.ndarray:
        image = Image.open(BytesIO(x)) if isinstance(x, bytes) else x
        return np.asarray(image.convert("RGB"), dtype=np.int16)

    first, second = rgb(a), rgb(b)
    assert first.shape == second.shape, (first.shape, second.shape)
    return float(np.abs(first - second).mean())

"""The device a `--device` argument names: the one place that knows the platforms.

  SERIAL            an Android phone or emulator over adb (uiautomator2), e.g. emulator-5554
  harmony:SERIAL    a HarmonyOS device over hdc (hmdriver2); `harmony:` alone = the only one attached
  web:URL           a web app in the system Chromium (Playwright)

Commands above `devices/` call `open_device` and get a `Device`; none of them looks at the prefix.
"""

from __future__ import annotations

from appatlas.devices.base import Device

__all__ = ["DEVICE_HELP", "open_device", "platform_of"]

DEVICE_HELP = ("The device: an adb SERIAL (Android, see `appatlas devices list`), harmony:SERIAL (HarmonyOS "
               "over hdc) or web:URL (a web app in Chromium).")


def platform_of(arg: str) -> str:
    """"android", "harmony" or "web" for a --device argument."""
    prefix, sep, _ = arg.partition(":")
    if sep and prefix in ("harmony", "web"):
        return prefix
    return "android"


def open_device(arg: str | None, *, app: str = "", adb_port: int = 5037, timeout: float | None = None,
                screenshots: bool = True) -> Device:
    """Connect to the device `arg` names (None: the only Android phone attached); `app` is what launch() starts."""
    platform = platform_of(arg or "")
    extra = {} if timeout is None else {"timeout": timeout}
    if platform == "harmony":
        from appatlas.devices.harmony import connect as harmony

        serial = (arg or "").partition(":")[2] or None
        return harmony(serial, app=app, screenshots=screenshots, **extra)
    if platform == "web":
        from appatlas.devices.web import connect as web

        return web((arg or "").partition(":")[2], app=app, screenshots=screenshots, **extra)
    from appatlas.devices.u2 import connect as android

    return android(arg, adb_port=adb_port, app=app, screenshots=screenshots, **extra)

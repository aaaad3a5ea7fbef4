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
    if platform == "harmony":
        from appatlas.devices import harmony

        serial = (arg or "").partition(":")[2] or None
        return harmony.connect(serial, app=app, screenshots=screenshots, timeout=timeout or harmony.DEFAULT_TIMEOUT)
    if platform == "web":
        from appatlas.devices import web

        return web.connect((arg or "").partition(":")[2], app=app, screenshots=screenshots,
                           timeout=timeout or web.DEFAULT_TIMEOUT)
    from appatlas.devices import u2

    return u2.connect(arg, adb_port=adb_port, app=app, screenshots=screenshots, timeout=timeout or u2.DEFAULT_TIMEOUT)

"""The device a `--device` argument names: the one place that knows the platforms.

  SERIAL            an Android phone or emulator over adb (uiautomator2), e.g. emulator-5554
  harmony:SERIAL    a HarmonyOS device over hdc (hmdriver2); `harmony:` alone = the only one attached
  web:URL           a web app in the system Chromium (Playwright)

Commands above `devices/` call `open_device` and get a `Device`; none of them looks at the prefix.

A device may carry `options` an atlas should keep (a web app's other allowed origins):
`remember_device(atlas, device)` stores them, `device_options(atlas)` reads them back for
`open_device(..., options=)`, so a later crawl or run of that atlas connects the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from appatlas.devices.base import Device

__all__ = ["DEVICE_HELP", "device_options", "open_device", "platform_of", "remember_device"]

OPTIONS_META = "device_options"

DEVICE_HELP = ("The device: an adb SERIAL (Android, see `appatlas devices list`), harmony:SERIAL (HarmonyOS "
               "over hdc) or web:URL (a web app in Chromium).")


def platform_of(arg: str) -> str:
    """"android", "harmony" or "web" for a --device argument."""
    prefix, sep, _ = arg.partition(":")
    if sep and prefix in ("harmony", "web"):
        return prefix
    return "android"


def device_options(atlas: Any) -> dict[str, Any]:
    """The options the atlas's device had (`remember_device`); {} for atlases made without any."""
    try:
        found = json.loads(atlas.get_meta(OPTIONS_META) or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def remember_device(atlas: Any, device: Any) -> None:
    """Keep `device`'s options in the atlas, merged with those kept before (a list is a union)."""
    new = getattr(device, "options", None)
    if not new:
        return
    kept = device_options(atlas)
    for key, value in new.items():
        old = kept.get(key)
        kept[key] = sorted({*old, *value}) if isinstance(value, list) and isinstance(old, list) else value
    atlas.set_meta(OPTIONS_META, json.dumps(kept, sort_keys=True))


def open_device(arg: str | None, *, app: str = "", adb_port: int = 5037, timeout: float | None = None,
                screenshots: bool = True, options: Mapping[str, Any] | None = None) -> Device:
    """Connect to the device `arg` names (None: the only Android phone attached); `app` is what launch() starts.

    `options`: what the atlas kept of the device that made it (`device_options`); each platform takes its own.
    """
    options = options or {}
    platform = platform_of(arg or "")
    if platform == "harmony":
        from appatlas.devices import harmony

        serial = (arg or "").partition(":")[2] or None
        return harmony.connect(serial, app=app, screenshots=screenshots, timeout=timeout or harmony.DEFAULT_TIMEOUT)
    if platform == "web":
        from appatlas.devices import web

        return web.connect((arg or "").partition(":")[2], app=app, screenshots=screenshots,
                           allow_origins=tuple(options.get("allow_origins", ())),
                           timeout=timeout or web.DEFAULT_TIMEOUT)
    from appatlas.devices import u2

    return u2.connect(arg, adb_port=adb_port, app=app, screenshots=screenshots, timeout=timeout or u2.DEFAULT_TIMEOUT)

"""The device farm: campaigns and crawls across phones plugged into several hosts, through Ray.

Each host runs a Ray node (`appatlas farm node`) that declares its phones as custom resources
(`device:SERIAL`, plus `platform:android` per phone); the phones' adb server stays local to that
host. A campaign or crawl driver places one actor per phone, pinned by the phone's resource, so
everything that talks to a phone runs on the host it is plugged into; the driver hands out work
and keeps the results (campaign state, atlases) on its own disk.

Ray is optional (`pip install "appatlas[farm]"`): nothing outside this package imports it, and
this `__init__` does not either, so `require_ray()` can say how to install it.

Modules: `_ray` (import, loopback, token authentication), `cluster` (nodes, local clusters,
status), `phone` (the actor next to a phone), `campaign` (campaigns), `crawl` (crawls, one app split by
start screens), `plan` (many intents planned on every host).
"""

from __future__ import annotations

from appatlas.farm._ray import DEVICE_PREFIX, PLATFORM, require_ray

__all__ = ["DEVICE_PREFIX", "PLATFORM", "require_ray"]

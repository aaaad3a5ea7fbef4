"""Importing Ray, keeping it on loopback, and keeping its token authentication on."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from types import ModuleType

from appatlas.errors import FarmError, FarmUnavailable

DEVICE_PREFIX = "device:"
PLATFORM = "platform:android"
NAMESPACE = "appatlas"
INSTALL = 'pip install "appatlas[farm]"'
# Ray resolves 127.0.0.1 to the machine's interface address unless multi-node clusters are "off":
# with this set, ray.init() and every node this process starts stay on loopback.
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def require_ray() -> ModuleType:
    """The `ray` module, or FarmUnavailable saying how to install it."""
    try:
        import ray
    except ModuleNotFoundError as exc:
        if exc.name != "ray":
            raise
        raise FarmUnavailable(f"the device farm needs Ray, which is not installed: {INSTALL}") from None
    return ray


def keep_loopback() -> None:
    """Every Ray service this process starts or reaches stays on 127.0.0.1 (tests, benchmarks, --farm local).

    Ray otherwise advertises the machine's interface address even for a one-machine cluster.
    """
    os.environ[_LOOPBACK_ENV] = "0"  # for the processes Ray spawns
    require_ray()
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False  # for this process, which read the variable at import


def token_path() -> Path:
    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")


def has_token() -> bool:
    return bool(os.environ.get("RAY_AUTH_TOKEN")) or token_path().is_file()


def use_token(*, create: str = "") -> None:
    """Token authentication on for this process and what it starts.

    create="file": make ~/.ray/auth_token when there is none (a head node; other hosts copy it);
    create="process": a fresh token for this process only (a one-machine cluster it starts itself);
    "": a token must exist already (joining a farm, driving one).
    """
    mode = os.environ.get("RAY_AUTH_MODE", "")
    if mode and mode.lower() != "token":
        return  # switched off explicitly by whoever runs us; the CLI warns
    os.environ["RAY_AUTH_MODE"] = "token"
    _refresh_config()
    if has_token():
        return
    if create == "process":
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    elif create == "file":
        path = token_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    else:
        raise FarmError(f"the farm uses Ray's token authentication and this host has no token: copy {token_path()} "
                        "from the head host here (or set RAY_AUTH_TOKEN to its content)")


def _refresh_config() -> None:
    """Ray read RAY_AUTH_MODE when it was imported; make this process see the mode set since."""
    from ray._raylet import Config

    Config.initialize("")

"""The actor next to a phone, and the driver's handle on it.

`PhoneActor` is placed by the phone's resource (`device:SERIAL`), so it runs on the host the phone
is plugged into and talks to that host's adb server. It runs the agent there: only a test case
goes out and an attempt record (plus evidence files) comes back. Device trouble comes back as data
(the error's class name and message), not as a raised exception, so the driver re-raises the very
appatlas error the threaded campaign would have seen.

`RemotePhone` is the driver's side: `run()` returns the attempt or raises DeviceError, the lost
host included (DeviceDisconnected), so the campaign's queue, retry and drop logic apply unchanged.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from appatlas import errors
from appatlas.farm._ray import DEVICE_PREFIX, NAMESPACE, PLATFORM

__all__ = ["PhoneSpec", "RemotePhone", "phone_actor"]

MAX_EVIDENCE = 32 * 1024 * 1024  # bytes of step screenshots one attempt sends back


@dataclass(frozen=True)
class PhoneSpec:
    """How the actor opens its phone and runs cases (the same for every phone of a run)."""

    package: str
    adb_port: int | None = None  # None: the host's $ANDROID_ADB_SERVER_PORT, else 5037
    timeout: float = 20.0
    screenshots: bool = True
    llm: str = "none"
    model: str | None = None
    max_steps: int = 30


def _device_error(exc: errors.DeviceError) -> dict[str, Any]:
    return {"error": type(exc).__name__, "message": str(exc)}


class PhoneActor:
    """Runs cases (or crawls) on one phone of this host."""

    def __init__(self, serial: str, spec: PhoneSpec, knowledge: Any = None) -> None:
        self.serial = serial
        self.spec = spec
        self.knowledge = knowledge
        self.device: Any = None
        self.agent: Any = None
        self.now = "idle"
        self.where = {"host": socket.gethostname(), "address": ray.util.get_node_ip_address(),
                      "node": ray.get_runtime_context().get_node_id()[:12]}

    def open(self) -> dict[str, Any]:
        """Connect to the phone through this host's adb server: where it is, or the device error."""
        from appatlas.devices.u2 import connect

        self.close()
        port = self.spec.adb_port or int(os.environ.get("ANDROID_ADB_SERVER_PORT", 5037))
        try:
            self.device = connect(self.serial, adb_port=port, app=self.spec.package, timeout=self.spec.timeout,
                                  screenshots=self.spec.screenshots)
        except errors.DeviceError as exc:
            return _device_error(exc)
        if self.agent is None and self.knowledge is not None:  # now, not in the first case's time
            from appatlas.agent.campaign import run_attempt  # noqa: F401 (imported once, here)
            from appatlas.agent.llm import make_llm
            from appatlas.agent.loop import Agent

            try:
                self.agent = Agent(self.knowledge, llm=make_llm(self.spec.llm, model=self.spec.model))
            except errors.AppatlasError as exc:  # no model on this host: the phone cannot run cases here
                return {"error": "DeviceError", "message": f"on {self.where['host']}: {type(exc).__name__}: {exc}"}
        return dict(self.where)

    def close(self) -> None:
        close = getattr(self.device, "close", None)
        if close is not None:
            try:
                close()
            except errors.DeviceError:
                pass  # a phone that is gone cannot be closed more
        self.device = None

    def doing(self) -> str:
        return self.now

    def run(self, case: Any) -> dict[str, Any]:
        """One attempt of `case`: {"attempt": record, "evidence": {file: bytes}} or a device error."""
        from appatlas.agent.campaign import run_attempt

        if self.device is None or self.agent is None:
            return {"error": "DeviceDisconnected", "message": f"{self.serial} is not connected"}
        self.now = f"case {case.name}"
        try:
            with tempfile.TemporaryDirectory(prefix="appatlas-evidence-") as tmp:
                attempt = run_attempt(self.device, self.agent, case, self.serial, max_steps=self.spec.max_steps,
                                      evidence_dir=Path(tmp) if self.spec.screenshots else None)
                evidence = _read_evidence(Path(tmp))
        except errors.DeviceError as exc:
            return _device_error(exc)
        finally:
            self.now = "idle"
        attempt.update(self.where)
        return {"attempt": attempt, "evidence": evidence}

    def crawl(self, package: str, writer: Any, config: Any, start: Any = None) -> dict[str, Any]:
        """Crawl `package` on this phone into the driver's atlas through `writer` (see farm.crawl)."""
        from appatlas.farm.crawl import crawl_on_phone

        if self.device is None:
            return {"error": "DeviceDisconnected", "message": f"{self.serial} is not connected"}
        self.now = f"crawl {package}"
        try:
            return crawl_on_phone(self.device, package, writer, config, start=start, where=self.where)
        except errors.DeviceError as exc:
            return _device_error(exc)
        finally:
            self.now = "idle"


def _read_evidence(folder: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            total += path.stat().st_size
            if total > MAX_EVIDENCE:
                break
            files[path.relative_to(folder).as_posix()] = path.read_bytes()
    return files


def phone_actor(serial: str, spec: PhoneSpec, knowledge: Any = None, *, wait: float = 15.0) -> Any:
    """An actor for `serial`, placed only on the host that declares `device:SERIAL`.

    Named `phone:SERIAL` so `appatlas farm status` can ask it what it runs, and so that two drivers
    cannot hold the same phone. It ends with the driver that made it (and with its host); the name of
    a killed driver's actor is freed a moment later, so a name in use is retried for `wait` seconds.
    """
    remote = ray.remote(PhoneActor).options(
        name=f"phone:{serial}", namespace=NAMESPACE, num_cpus=0, max_restarts=0,
        max_concurrency=2,  # doing() answers while run() works
        resources={f"{DEVICE_PREFIX}{serial}": 1, PLATFORM: 1})
    deadline = time.monotonic() + wait
    while True:
        try:
            return remote.remote(serial, spec, knowledge)
        except ValueError as exc:  # the name is taken: by a live driver, or one killed a moment ago
            if time.monotonic() > deadline:
                raise errors.FarmError(f"phone {serial} is held by another campaign or crawl on this farm ({exc}); "
                                       "see `appatlas farm status`") from None
            time.sleep(0.25)


class RemotePhone:
    """The driver's handle on a phone's actor, with the Device-like errors the campaign expects."""

    def __init__(self, actor: Any, serial: str, *, open_timeout: float = 60.0, case_timeout: float = 900.0) -> None:
        self.actor = actor
        self.serial = serial
        self.open_timeout = open_timeout
        self.case_timeout = case_timeout
        self.where: dict[str, Any] = {}

    def _call(self, ref: Any, timeout: float, what: str) -> Any:
        from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError, RayTaskError

        try:
            answer = ray.get(ref, timeout=timeout)
        except GetTimeoutError:
            raise errors.DeviceTimeout(f"{self.serial}: no answer from its host within {timeout:.0f} s ({what})",
                                       serial=self.serial) from None
        except ActorUnavailableError as exc:  # unreachable for now (a network blip): worth one reconnect
            raise errors.DeviceTimeout(f"{self.serial}: its host does not answer ({_first_line(exc)})",
                                       serial=self.serial) from None
        except RayActorError as exc:  # its worker or whole host is gone
            host = self.where.get("address", "its host")
            raise errors.DeviceDisconnected(f"{self.serial}: {host} left the farm ({_first_line(exc)})",
                                            serial=self.serial) from None
        except RayTaskError as exc:  # a bug met on the host: not the case's verdict; the phone is retried, then dropped
            raise errors.DeviceError(f"{self.serial}: {what} failed on its host: {_first_line(exc)}",
                                     serial=self.serial) from None
        if isinstance(answer, dict) and "error" in answer:
            cls = getattr(errors, str(answer["error"]), errors.DeviceError)
            if not (isinstance(cls, type) and issubclass(cls, errors.DeviceError)):
                cls = errors.DeviceError
            raise cls(str(answer.get("message", "")), serial=self.serial)
        return answer

    def open(self) -> RemotePhone:
        self.where = self._call(self.actor.open.remote(), self.open_timeout, "connecting")
        return self

    def close(self) -> None:
        try:
            ray.get(self.actor.close.remote(), timeout=10)
        except Exception:  # noqa: BLE001 - closing a phone whose host left: nothing to do
            pass

    def run(self, case: Any) -> dict[str, Any]:
        began = time.perf_counter()
        answer = self._call(self.actor.run.remote(case), self.case_timeout, f"case {case.name}")
        answer["attempt"]["driver_wait_s"] = round(time.perf_counter() - began, 3)
        return answer


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]

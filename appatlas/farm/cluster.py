"""Farm nodes: start or join one (`appatlas farm node`), a loopback cluster on one machine, the farm's status."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from appatlas.errors import FarmError
from appatlas.farm._ray import (
    DEVICE_PREFIX,
    NAMESPACE,
    PLATFORM,
    keep_loopback,
    require_ray,
    token_path,
    use_token,
)

__all__ = ["LocalFarm", "connect", "farm_phones", "farm_status", "node_command", "phone_resources"]

log = logging.getLogger(__name__)
LOCAL = "local"
# A lost host is noticed within ~2 s instead of Ray's default ~30 s; its phones' cases move sooner.
FAST_FAILURE = {"health_check_period_ms": 500, "health_check_failure_threshold": 4,
                "health_check_initial_delay_ms": 500, "health_check_timeout_ms": 1000}


def phone_resources(serials: Sequence[str]) -> dict[str, float]:
    """The custom resources a node declares for its phones."""
    resources = {f"{DEVICE_PREFIX}{s}": 1.0 for s in serials}
    if serials:
        resources[PLATFORM] = float(len(serials))
    return resources


def _is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0] if ":" in address else address
    return host in ("localhost", "::1", "[::1]") or host.startswith("127.")


def connect(address: str) -> ModuleType:
    """Join the farm at `address` (host:port of its head) as a driver; returns the `ray` module."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    if _is_loopback(address):
        keep_loopback()
    use_token()
    _answers(address)
    try:
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, TimeoutError, RuntimeError) as exc:
        raise FarmError(f"no Ray farm answers at {address} ({exc}); start one with `appatlas farm node --head "
                        "--device SERIAL` on the head host, or use --farm local") from None
    return ray


def _answers(address: str, timeout: float = 3.0) -> None:
    """Fail at once when nothing listens at the head's address (ray.init would retry for minutes)."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as exc:
        raise FarmError(f"no Ray farm answers at {address} ({exc}); start one with `appatlas farm node --head "
                        "--device SERIAL` on the head host, or use --farm local") from None


def farm_phones(ray: ModuleType) -> list[str]:
    """Serials of the phones the live hosts of the farm declare."""
    return sorted(k[len(DEVICE_PREFIX):] for k in ray.cluster_resources() if k.startswith(DEVICE_PREFIX))


@dataclass
class LocalFarm:
    """A Ray cluster on this machine, every service on 127.0.0.1: one node per entry of `hosts`, each
    declaring its phones; the first is the head. For tests, benchmarks and `--farm local`.

    Light on purpose (a 2-core machine): at most two CPUs per node, a small object store, no dashboard.
    """

    hosts: Sequence[Sequence[str]]
    object_store_mb: int = 80
    port: int | None = None  # the head's (GCS) port; None: a free one. A head restarted on its port is the same address
    system_config: dict[str, Any] = field(default_factory=lambda: dict(FAST_FAILURE))
    cluster: Any = None
    nodes: list[Any] = field(default_factory=list)

    def _args(self, serials: Sequence[str]) -> dict[str, Any]:
        # Phone actors take no CPU; num_cpus only sets how many workers Ray keeps warm and starts at once:
        # one per phone, at most two (this is for one machine).
        return {"node_ip_address": "127.0.0.1", "num_cpus": min(2, max(1, len(serials))),
                "resources": phone_resources(serials),
                "object_store_memory": self.object_store_mb * 1024 * 1024, "include_dashboard": False}

    def start(self) -> LocalFarm:
        if not self.hosts:
            raise FarmError("a local farm needs at least one host with phones")
        keep_loopback()
        use_token(create="process")
        from ray.cluster_utils import Cluster

        head = {**self._args(self.hosts[0]), "_system_config": self.system_config}
        if self.port is not None:
            head["gcs_server_port"] = self.port
        self.cluster = Cluster(initialize_head=True, head_node_args=head)
        self.nodes = [self.cluster.head_node]
        for serials in self.hosts[1:]:
            self.add_host(serials)
        return self

    @property
    def address(self) -> str:
        return self.cluster.address

    def add_host(self, serials: Sequence[str]) -> int:
        """Another node with these phones; returns its index."""
        self.nodes.append(self.cluster.add_node(**self._args(serials)))
        return len(self.nodes) - 1

    def remove_host(self, index: int) -> None:
        """Kill node `index` (not the head) at once, as a host that loses power."""
        node = self.nodes[index]
        if node is None or index == 0:
            raise ValueError("remove_host takes a live node other than the head")
        self.cluster.remove_node(node, allow_graceful=False)
        self.nodes[index] = None

    def restart(self) -> None:
        """Every node dies at once (a power cut at the head: the other hosts' nodes follow it), then the farm
        is started again on the same address with the same phones. Needs `port` (the same address). This
        process, if it is a driver of the farm, leaves it first (Ray ends a driver whose head stays away) and
        joins the new one."""
        if self.port is None:
            raise ValueError("restart needs a LocalFarm with a fixed port")
        ray = require_ray()
        joined = ray.is_initialized()
        if joined:
            ray.shutdown()
        for node in [n for n in self.nodes if n is not None]:  # the head first
            self.cluster.remove_node(node, allow_graceful=False)
        self.cluster.shutdown()
        self.start()
        if joined:
            self.connect()

    def connect(self) -> ModuleType:
        return connect(self.address)

    def shutdown(self) -> None:
        ray = require_ray()
        if ray.is_initialized():
            ray.shutdown()
        if self.cluster is not None:
            self.cluster.shutdown()
            self.cluster = None

    def __enter__(self) -> LocalFarm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def node_command(*, head: bool, address: str, serials: Sequence[str], port: int = 6379, node_ip: str = "",
                 num_cpus: int | None = None, block: bool = False) -> list[str]:
    """The `ray start` command line of a farm node declaring `serials`."""
    ray_cli = shutil.which("ray") or os.path.join(os.path.dirname(sys.executable), "ray")
    cmd = [ray_cli, "start", f"--resources={json.dumps(phone_resources(serials))}"]
    cmd += ["--head", f"--port={port}", "--include-dashboard=false"] if head else [f"--address={address}"]
    if node_ip:
        cmd.append(f"--node-ip-address={node_ip}")
    if num_cpus is not None:
        cmd.append(f"--num-cpus={num_cpus}")
    if block:
        cmd.append("--block")
    return cmd


def start_node(*, head: bool, address: str, serials: Sequence[str], adb_port: int, port: int = 6379,
               node_ip: str = "", num_cpus: int | None = None, block: bool = False) -> int:
    """Start (head) or join a farm with `ray start`; the node's phones talk to the adb server on `adb_port`."""
    if not head and not address:
        raise FarmError("a node either starts a farm (--head) or joins one (--address HEAD_HOST:PORT)")
    use_token(create="file" if head else "")
    env = {**os.environ, "ANDROID_ADB_SERVER_PORT": str(adb_port)}  # the phone actors on this host read it
    cmd = node_command(head=head, address=address, serials=serials, port=port, node_ip=node_ip, num_cpus=num_cpus,
                       block=block)
    log.info("starting a farm node: %s", " ".join(cmd))
    return subprocess.run(cmd, env=env, check=False).returncode  # noqa: S603 (our own argv, no shell)


def farm_status(ray: ModuleType, *, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Per live host: its address, its phones, and what each phone runs now."""
    doing: dict[str, str] = {}
    for entry in ray.util.list_named_actors(all_namespaces=True):
        name = entry["name"] if isinstance(entry, dict) else entry
        if entry.get("namespace", NAMESPACE) == NAMESPACE and name.startswith("phone:"):
            try:
                actor = ray.get_actor(name, namespace=NAMESPACE)
                doing[name[len("phone:"):]] = ray.get(actor.doing.remote(), timeout=timeout)
            except Exception as exc:  # noqa: BLE001 - an actor that just left; say so rather than fail the list
                doing[name[len("phone:"):]] = f"(no answer: {type(exc).__name__})"
    free = ray.available_resources()
    hosts = []
    for n in ray.nodes():
        if not n.get("Alive"):
            continue
        phones = sorted(k[len(DEVICE_PREFIX):] for k in n.get("Resources", {}) if k.startswith(DEVICE_PREFIX))
        hosts.append({"host": n.get("NodeManagerHostname", ""), "address": n.get("NodeManagerAddress", ""),
                      "node": n.get("NodeID", "")[:12], "head": "node:__internal_head__" in n.get("Resources", {}),
                      "phones": [{"serial": s, "doing": doing.get(s) or
                                  ("idle" if free.get(f"{DEVICE_PREFIX}{s}", 0) >= 1 else "in use")}
                                 for s in phones]})
    return hosts


def token_hint() -> str:
    return f"other hosts need this head's token: copy {token_path()} to the same place there (or set RAY_AUTH_TOKEN)"

"""One Ray cluster for the farm tests: two nodes on 127.0.0.1, each declaring two of four virtual phones
served by the project's local adb + uiautomator2 server."""

from __future__ import annotations

import pytest

from appatlas.devices.fakeadb import FakeAdbServer
from appatlas.devices.virtual import open_app

SERIALS = ("virtual-1", "virtual-2", "virtual-3", "virtual-4")
HOSTS = (SERIALS[:2], SERIALS[2:])  # the head holds the first two phones, the second node the others


@pytest.fixture(scope="session")
def phones():
    with FakeAdbServer([open_app("demo", serial=s, screenshots=False) for s in SERIALS]) as server:
        yield server


@pytest.fixture(scope="session")
def cluster():
    pytest.importorskip("ray")
    from appatlas.bench.farm import free_port
    from appatlas.farm.cluster import LocalFarm

    with LocalFarm(HOSTS, port=free_port()) as farm:  # a fixed port: a restarted head keeps its address
        farm.connect()
        yield farm


@pytest.fixture
def farm(cluster, phones):
    """The two-node farm, its second host back if a test took it away, the phones without faults."""
    if cluster.nodes[1] is None:
        cluster.nodes.pop(1)
        cluster.add_host(HOSTS[1])
    for s in SERIALS:
        phones.clear_faults(s)
    return cluster


# Run last, in this order: the head restart (the farm is whole again after it), then the host removal (a
# test after it would pay for starting that host again).
LAST = ("test_a_restarted_head_is_rejoined_by_the_driver_itself", "test_a_host_removed_mid_campaign_loses_no_case")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: LAST.index(item.name) + 1 if item.name in LAST else 0)

"""Virtual phones at a real phone's pace (what `bench farm` measures against): each waits on its own."""

from __future__ import annotations

import threading
import time

from appatlas.devices.fakeadb import FakeAdbServer
from appatlas.devices.u2 import connect
from appatlas.devices.virtual import open_app
from appatlas.types import Action, ActionKind


def test_a_paced_phone_takes_its_time_and_does_not_hold_up_the_others() -> None:
    serials = ("virtual-1", "virtual-2", "virtual-3")
    with FakeAdbServer([open_app("demo", serial=s, screenshots=False) for s in serials]) as server:
        phones = [connect(s, adb_port=server.port, timeout=5.0, screenshots=False) for s in serials]
        for s in serials:
            server.pace(s, action_ms=300, dump_ms=150)
        began = time.perf_counter()
        phones[0].snapshot()
        phones[0].perform(Action(ActionKind.BACK))
        alone = time.perf_counter() - began
        assert alone >= 0.45  # one dump and one action

        def act(phone) -> None:
            phone.snapshot()
            phone.perform(Action(ActionKind.BACK))

        threads = [threading.Thread(target=act, args=(p,)) for p in phones]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        together = time.perf_counter() - began
        assert together < 2 * 0.45  # three phones waited at once, not one after the other

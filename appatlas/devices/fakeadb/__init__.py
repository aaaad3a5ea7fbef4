"""A local adb server and uiautomator2 server in front of virtual devices.

The real `adbutils` and `uiautomator2` clients run against it unchanged, so the `u2` backend
is proven without a phone. Modules, one job each:

_wire      adb smart-socket framing (length-prefixed requests, OKAY/FAIL), socket tuning
_adbd      one client connection: host services, transport switch, device services
_shell     the shell commands the clients use (dumpsys, am, monkey, pm, getprop, md5sum, …)
_sync      the sync: file service that installs u2.jar
_http      the uiautomator2 server's HTTP side over a tcp: stream
_rpc       its JSON-RPC methods, answered by the virtual device
_selector  uiautomator2 selectors matched on a Widget tree
_phone     one phone: device, files, UI server, clipboard, faults, crash dialog
_server    FakeAdbServer: the asyncio loop thread, life cycle, fault injection
"""

from appatlas.devices.fakeadb._server import FakeAdbServer

__all__ = ["FakeAdbServer"]

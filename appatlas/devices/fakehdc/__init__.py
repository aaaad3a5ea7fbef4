"""A local stand-in for a HarmonyOS device: an `hdc` command and server, and the UI test daemon's RPC.

The real `hmdriver2` client runs against it unchanged (it only needs `hdc` on PATH and
HDC_SERVER_HOST/PORT), so the `harmony` backend is proven without a device. Modules:

hdc.sh    the `hdc` command (bash + /dev/tcp: one process per call, as hmdriver2 runs it)
_client   the same command in Python (builtins only), where bash has no /dev/tcp
_hdcd     one hdc call: list targets, shell, file send/recv, fport
_shell    the device shell: uitest, aa, bm, param, hidumper, snapshot_display, ps, kill, …
_agent    the UI test daemon's JSON RPC (Driver / On / Component), port 8012 behind `hdc fport`
_dump     a virtual screen as `uitest dumpLayout` JSON, Android widgets as ArkUI components
_device   one device: virtual app, files, daemon, faults
_server   FakeHdcServer: the asyncio loop thread, forwards, life cycle and fault API
"""

from appatlas.devices.fakehdc._server import FakeHdcServer

__all__ = ["FakeHdcServer"]

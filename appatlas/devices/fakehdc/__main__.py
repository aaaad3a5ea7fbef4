"""`python -m appatlas.devices.fakehdc`: serve virtual apps as HarmonyOS devices until Ctrl-C.

Example: python -m appatlas.devices.fakehdc --app demo --port 18710
then, in another shell, the lines it prints (PATH and HDC_SERVER_HOST/PORT) and
`appatlas crawl --device harmony:virtual-1 --out h.atlas`.
"""

from __future__ import annotations

import argparse
import sys
import time

from appatlas.devices.fakehdc import FakeHdcServer
from appatlas.devices.virtual import open_app
from appatlas.errors import AppatlasError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appatlas.devices.fakehdc", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", action="append", help="a built-in app name or a spec YAML; repeat for several "
                        "devices (virtual-1, virtual-2, …). Default: demo")
    parser.add_argument("--port", type=int, default=18710, help="TCP port of the hdc server (0: any free one)")
    parser.add_argument("--for", dest="seconds", type=float, default=0.0, help="stop after this many seconds")
    args = parser.parse_args(argv)
    apps = args.app or ["demo"]
    try:
        devices = [open_app(a, serial=f"virtual-{i + 1}") for i, a in enumerate(apps)]
    except AppatlasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    server = FakeHdcServer(devices, port=args.port)
    try:
        server.start()
    except OSError as exc:
        print(f"error: cannot listen on 127.0.0.1:{args.port} ({exc.strerror or exc}); pick another --port",
              file=sys.stderr)
        return 1
    env = server.environ()
    print(f"appatlas local hdc server on {server.host}:{server.port} (HarmonyOS stand-in)")
    for dev, name in zip(devices, apps, strict=True):
        print(f"  {dev.serial}\t{dev.spec.package}  ({name})")
    print("Point hmdriver2 (and appatlas --device harmony:SERIAL) at it:")
    print(f"  export PATH={server.bin_dir}:$PATH HDC_SERVER_HOST={env['HDC_SERVER_HOST']} "
          f"HDC_SERVER_PORT={env['HDC_SERVER_PORT']}")
    print(f"  appatlas crawl --device harmony:{devices[0].serial} --out h.atlas --budget 200")
    print("Ctrl-C stops it.", flush=True)
    deadline = time.monotonic() + args.seconds if args.seconds > 0 else None
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    print("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

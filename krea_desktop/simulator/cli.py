"""``krea-desktop simulator``: serve the simulator on a socket until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import signal
import sys

from krea_desktop.simulator.faults import FAULT_KINDS, parse_fault
from krea_desktop.simulator.server import SimulatorServer
from krea_desktop.simulator.service import SimulatorConfig, SimulatorService


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    parser.add_argument(
        "--grain", type=float, default=0.0, help="noise from 0 to 1 that makes images as large as real outputs"
    )
    parser.add_argument("--key", default=None, help="the only API key accepted (default: any non-empty key)")
    parser.add_argument(
        "--latency", type=float, default=0.0, metavar="SECONDS_PER_IMAGE", help="time each image takes (default: 0)"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="inject a fault, e.g. 503x2, 429:retry-after=2, drop-after, hang:on=getResponse "
        f"(repeatable; kinds: {', '.join(FAULT_KINDS)})",
    )


def run(args: argparse.Namespace) -> int:
    try:
        faults = [parse_fault(spec) for spec in args.fault]
    except ValueError as exc:
        print(f"krea-desktop simulator: {exc}", file=sys.stderr)
        return 2
    if not 0 <= args.latency < 3600:  # also refuses nan and inf
        print("krea-desktop simulator: --latency must be from 0 to 3600 seconds", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535:
        print(f"krea-desktop simulator: --port is {args.port}, but it must be from 0 to 65535", file=sys.stderr)
        return 2
    if not 0 <= args.grain <= 1:  # also refuses nan
        print(f"krea-desktop simulator: --grain is {args.grain}, but it must be from 0 to 1", file=sys.stderr)
        return 2
    service = SimulatorService(SimulatorConfig(api_key=args.key, latency_per_image=args.latency, grain=args.grain))
    for fault in faults:
        service.inject(fault)
    server = SimulatorServer(service, host=args.host, port=args.port)
    try:
        asyncio.run(_serve(server))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            said = f"{args.host}:{args.port} is already in use; choose another port with --port (0: any free one)."
        else:
            # The system's words for the number: asyncio's own strerror repeats the address
            # as a Python tuple ("error while attempting to bind on address ('8.8.8.8', 0): …").
            # (On Windows a socket's error number may be one os.strerror does not know.)
            known = os.strerror(exc.errno) if exc.errno else ""
            reason = known if known and not known.startswith("Unknown error") else exc.strerror or str(exc)
            said = f"cannot listen on {args.host}:{args.port} ({reason.lower()})."
        print(f"krea-desktop simulator: {said}", file=sys.stderr)
        return 1
    return 0


async def _serve(server: SimulatorServer) -> None:
    url = await server.start()
    print(f"Simulator listening on {url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="krea-desktop simulator", description="Serve the Krea 2 Medium simulator.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())

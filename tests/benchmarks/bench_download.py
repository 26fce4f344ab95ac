"""One finished image downloaded: read straight into its buffer, beside httpx and aiohttp.

Each method runs in a fresh process (as the first image of a batch is, in a command-line
run), against the same simulator process (nice 19, grain 1.0: a 1568x672 PNG of about
2.8 MB), the methods alternating run by run:

- ``direct``: ``krea_desktop.api.direct.DirectDownloads``, as the client reads a plain image
  answer (the socket writes the body into the bytes that become the image);
- ``httpx``: an ``httpx.AsyncClient`` on the client's own transport
  (``krea_desktop.api.network.make_transport``), the body written chunk by chunk into a
  ``BytesIO`` sized from its length, as the client reads any other image answer;
- ``aiohttp``: ``ClientSession.get(...).read()``, as the official runware-sdk's downloads
  do (only where aiohttp is installed: ``pip install runware-sdk==1.8.0`` brings it).

Each first opens its connection with a ``GET /health`` (a few bytes), then times the
image's ``GET``: from the request to the bytes in hand, with the process's minor page
faults meanwhile. Prints the medians and their ratios to httpx. Timings are printed, never
asserted.

    .venv/bin/python tests/benchmarks/bench_download.py --runs 15
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

METHODS = ("direct", "httpx", "aiohttp")


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


async def _direct(url: str, health: str) -> tuple[float, int, int]:
    from krea_desktop.api.direct import DirectDownloads

    downloads = DirectDownloads(None, read_timeout=30, connect_timeout=10)
    await downloads.get(health, 1 << 20)
    faults, start = _faults(), time.perf_counter()
    data = await downloads.get(url, 64 << 20)
    took = time.perf_counter() - start
    assert isinstance(data, bytes)
    downloads.close()
    return took, _faults() - faults, len(data)


async def _httpx(url: str, health: str) -> tuple[float, int, int]:
    import httpx

    from krea_desktop.api.network import make_transport

    async with httpx.AsyncClient(transport=make_transport()) as client:
        await client.get(health)
        faults, start = _faults(), time.perf_counter()
        async with client.stream("GET", url, headers={"Accept-Encoding": "identity"}) as resp:
            buf = io.BytesIO()
            size = int(resp.headers["Content-Length"])
            buf.seek(size - 1)
            buf.write(b"\0")
            buf.seek(0)
            async for chunk in resp.aiter_bytes():
                buf.write(chunk)
            data = buf.getvalue()
        return time.perf_counter() - start, _faults() - faults, len(data)


async def _aiohttp(url: str, health: str) -> tuple[float, int, int]:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(health) as resp:
            await resp.read()
        faults, start = _faults(), time.perf_counter()
        async with session.get(url) as resp:
            data = await resp.read()
        return time.perf_counter() - start, _faults() - faults, len(data)


def worker(method: str, url: str, health: str) -> None:
    import httpx  # noqa: F401 - every method's process imports the same, so none pays for it in the timing

    run = {"direct": _direct, "httpx": _httpx, "aiohttp": _aiohttp}[method]
    took, faults, size = asyncio.run(run(url, health))
    print(json.dumps({"ms": took * 1000, "faults": faults, "bytes": size}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--health", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.url, args.health)
        return 0

    import httpx

    from tests.benchmarks.bench_clients import KEY, wire_task
    from tests.helpers.sim import simulator_process

    methods = [m for m in METHODS if m != "aiohttp" or importlib.util.find_spec("aiohttp") is not None]
    print(f"{args.runs} runs; load average at start {os.getloadavg()[0]:.2f}", flush=True)
    results: dict[str, list[dict[str, float]]] = {m: [] for m in methods}
    with simulator_process("--grain", "1.0", nice=19) as api:
        task = wire_task(str(uuid.uuid4()), 1, "sync", "URL")
        answer = httpx.post(api, json=[task], headers={"Authorization": f"Bearer {KEY}"}, timeout=120)
        url = answer.json()["data"][0]["imageURL"]
        health = api.rsplit("/v1", 1)[0] + "/health"
        httpx.get(url, timeout=60).raise_for_status()  # rendered once, before any method times it
        for run in range(args.runs):
            order = methods[run % len(methods) :] + methods[: run % len(methods)]
            for method in order:
                command = [sys.executable, __file__, "--worker", method, "--url", url, "--health", health]
                out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True)
                result = json.loads(out.stdout.strip().splitlines()[-1])
                results[method].append(result)
                print(
                    f"run {run + 1:>2} {method:<8} {result['ms']:6.2f} ms  {result['faults']:5d} faults  "
                    f"{result['bytes']} bytes",
                    flush=True,
                )
    base = statistics.median(r["ms"] for r in results["httpx"])
    print(f"\nfrom the request to the image's bytes in hand, median of {args.runs} fresh processes:")
    for method in methods:
        ms = [r["ms"] for r in results[method]]
        faults = statistics.median(r["faults"] for r in results[method])
        median = statistics.median(ms)
        print(
            f"  {method:<8} {median:6.2f} ms ({min(ms):.2f}-{max(ms):.2f})  {median / base:5.2f}x httpx  "
            f"{faults:6.0f} minor page faults"
        )
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

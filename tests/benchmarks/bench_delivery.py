"""Which delivery and output type a new user's first batch should use.

    .venv/bin/python tests/benchmarks/bench_delivery.py [--images 10] [--latency 0.5] [--runs 3]

Runs the project's client against the simulator in its own process (images as large as
real ones: grain 1.0; ``--latency`` seconds per image), for a batch of ``--images``
1376x768 PNGs, in three modes: sync with base64 (the answer comes when the whole batch is
done), async with base64 (each poll carries every finished image again), async with URL
(each image downloaded once). Prints, per mode, the median time to the first image, to
the last, and the bytes received, each as a ratio to the best mode in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from krea_desktop.api.client import RunwareClient
from krea_desktop.api.request import GenerationRequest
from tests.helpers.sim import simulator_process

MODES = (("sync", "base64Data"), ("async", "base64Data"), ("async", "URL"))


async def one_batch(url: str, delivery: str, output: str, images: int) -> tuple[float, float, int]:
    received = 0

    async def count(response: httpx.Response) -> None:
        nonlocal received
        length = response.headers.get("Content-Length")
        received += int(length) if length and length.isdigit() else 0

    client = RunwareClient("bench", base_url=url)
    client._http.event_hooks["response"].append(count)
    make_http = client._new_http

    def counting_http(transport: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
        http = make_http(transport)  # the downloads' own client (on its own thread)
        http.event_hooks["response"].append(count)
        return http

    client._new_http = counting_http  # type: ignore[method-assign]
    request = GenerationRequest(
        "a lighthouse in fog, gouache",
        ratio="16:9",
        number_results=images,
        delivery_method=delivery,
        output_type=output,
    )
    started = time.perf_counter()
    first = None
    try:
        async for _image in client.generate(request):
            if first is None:
                first = time.perf_counter() - started
    finally:
        await client.aclose()
    return first or 0.0, time.perf_counter() - started, received


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[tuple[str, str], list[tuple[float, float, int]]] = {m: [] for m in MODES}
    with simulator_process("--grain", "1.0", "--latency", str(args.latency), nice=19) as url:
        for _ in range(args.runs):
            for delivery, output in MODES:  # alternating, so load drifts hit every mode alike
                results[(delivery, output)].append(asyncio.run(one_batch(url, delivery, output, args.images)))
    medians = {
        mode: (
            statistics.median(r[0] for r in runs),
            statistics.median(r[1] for r in runs),
            int(statistics.median(r[2] for r in runs)),
        )
        for mode, runs in results.items()
    }
    best_first = min(m[0] for m in medians.values())
    best_last = min(m[1] for m in medians.values())
    best_bytes = min(m[2] for m in medians.values())
    print(f"{args.images} images of 1376x768, {args.latency} s per image, median of {args.runs} runs")
    print(f"{'mode':<18} {'first image':>18} {'last image':>18} {'bytes received':>24}")
    for (delivery, output), (first, last, got) in medians.items():
        print(
            f"{delivery + ' ' + output:<18} {first:7.2f} s ({first / best_first:4.2f}x) "
            f"{last:7.2f} s ({last / best_last:4.2f}x) {got / 1e6:9.1f} MB ({got / best_bytes:5.2f}x)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

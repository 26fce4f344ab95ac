"""Client benchmarks against the simulator on 127.0.0.1 (no render delay unless stated).

    .venv/bin/python tests/benchmarks/bench_client.py [--quick]

Prints three figures, each as a ratio against a baseline measured in the same run:
1. overhead: one 1-image generation through the client (POST, parse, decode, verify,
   write) versus a bare httpx POST + base64 decode + file write of the same answer;
2. bytes sent for 5 generations reusing the same 10 references, versus uploading each
   reference once (and versus a client that inlines references as base64);
3. time to the first image of a 20-image async batch at 1 s per image, versus the time
   to the whole batch.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from krea_desktop.api.client import PollPolicy, RunwareClient
from krea_desktop.api.request import GenerationRequest, ReferenceImage
from tests.helpers.sim import running_simulator

PROMPT = "a lighthouse on a cliff, gouache"


async def bare_once(http: httpx.AsyncClient, url: str, out: Path) -> None:
    task = {
        "taskType": "imageInference",
        "taskUUID": str(uuid.uuid4()),
        "model": "krea:krea@2-medium",
        "positivePrompt": PROMPT,
        "width": 1024,
        "height": 1024,
        "numberResults": 1,
        "seed": 42,
        "outputType": "base64Data",
        "outputFormat": "PNG",
        "includeCost": True,
    }
    resp = await http.post(url, json=[task], headers={"Authorization": "Bearer bench"})
    item = resp.json()["data"][0]
    out.write_bytes(base64.b64decode(item["imageBase64Data"]))


async def client_once(client: RunwareClient, out: Path) -> None:
    req = GenerationRequest(PROMPT, seed=42)
    async for image in client.generate(req):
        out.write_bytes(image.data)


async def bench_overhead(url: str, rounds: int) -> tuple[float, float]:
    tmp = Path(tempfile.mkdtemp())
    bare_times, client_times = [], []
    async with httpx.AsyncClient(timeout=60) as http:
        client = RunwareClient("bench", base_url=url)
        for _ in range(2):  # warm both paths (connections, imports, render caches)
            await bare_once(http, url, tmp / "a.png")
            await client_once(client, tmp / "b.png")
        for _ in range(rounds):  # interleaved, so drift affects both alike
            t = time.perf_counter()
            await bare_once(http, url, tmp / "a.png")
            bare_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            await client_once(client, tmp / "b.png")
            client_times.append(time.perf_counter() - t)
        await client.aclose()
    return statistics.median(bare_times), statistics.median(client_times)


def make_references(n: int) -> list[bytes]:
    refs = []
    for i in range(n):
        im = Image.effect_noise((768, 512), 40 + i).convert("RGB")
        out = io.BytesIO()
        im.save(out, "JPEG", quality=90)
        refs.append(out.getvalue())
    return refs


async def bench_references(url: str, sim_service: object) -> tuple[int, int, int]:
    refs = make_references(10)
    upload_once = sum(
        len(
            json.dumps(
                [
                    {
                        "taskType": "imageUpload",
                        "taskUUID": str(uuid.uuid4()),
                        "image": "data:image/jpeg;base64," + base64.b64encode(r).decode(),
                    }
                ],
                separators=(",", ":"),
            )
        )
        for r in refs
    )
    client = RunwareClient("bench", base_url=url)
    for g in range(5):
        req = GenerationRequest(f"{PROMPT}, variation {g}", references=tuple(ReferenceImage(r, 0.7) for r in refs))
        async for _ in client.generate(req):
            pass
    sent = client.bytes_sent
    await client.aclose()
    # what a client that inlines every reference in every task would send
    inline_task = GenerationRequest(PROMPT).to_task(
        [{"image": base64.b64encode(r).decode(), "strength": 0.7} for r in refs]
    )
    inlined = 5 * len(json.dumps([inline_task], separators=(",", ":")))
    return upload_once, sent, inlined


async def bench_first_image(url: str, n: int) -> tuple[float, float]:
    client = RunwareClient("bench", base_url=url, poll=PollPolicy())
    t0 = time.perf_counter()
    first = None
    req = GenerationRequest(PROMPT, number_results=n, delivery_method="async")
    async for _ in client.generate(req):
        if first is None:
            first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    await client.aclose()
    assert first is not None
    return first, total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer rounds and a 5-image batch")
    args = parser.parse_args()
    rounds = 5 if args.quick else 25

    with running_simulator() as sim:
        bare, ours = asyncio.run(bench_overhead(sim.url, rounds))
        print(
            f"1. overhead, 1 image 1024x1024 PNG, median of {rounds}: bare httpx {bare * 1000:.1f} ms, "
            f"client {ours * 1000:.1f} ms, ratio {ours / bare:.2f}x (target <= 1.2x)"
        )

    with running_simulator() as sim:
        once, sent, inlined = asyncio.run(bench_references(sim.url, sim.service))
        print(
            f"2. bytes sent, 5 generations x 10 references: uploads once {once / 1e6:.2f} MB, client "
            f"{sent / 1e6:.2f} MB, ratio {sent / once:.3f}x (target <= 1.1x); inlining would send "
            f"{inlined / 1e6:.2f} MB ({inlined / once:.1f}x); uploads made: {sim.service.upload_count}"
        )

    n = 5 if args.quick else 20
    with running_simulator(latency_per_image=1.0) as sim:
        first, total = asyncio.run(bench_first_image(sim.url, n))
        print(
            f"3. async batch of {n} at 1 s/image: first image after {first:.2f} s (target <= 1.5 s), "
            f"whole batch {total:.2f} s, ratio first/whole {first / total:.3f}"
        )


if __name__ == "__main__":
    main()

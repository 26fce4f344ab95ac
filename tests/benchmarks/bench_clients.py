"""Our client beside the official runware-sdk (REST) and a naive httpx client.

    .venv/bin/python tests/benchmarks/bench_clients.py [--runs 5] [--images 20]
        [--modes sync-base64Data,sync-URL,async-base64Data,async-URL] [--clients ours,sdk,naive]

The runware-sdk column needs the official SDK, which is not a dependency of the project:

    .venv/bin/pip install runware-sdk==1.8.0

Without it that column is skipped (and the script says so).

One simulator process on 127.0.0.1 (``krea-desktop simulator --grain 1.0`` at nice 19,
standing in for a service on another machine; no latency beyond its own rendering)
serves every client. Each generation is a fresh Python process (``--worker``) that
imports its client, asks for ``--images`` 1568x672 PNGs (2.35:1) in the given delivery
(sync or async) and output type (base64Data or URL), writes every image to a file as it
gets it, and prints when it started asking (after its imports), when the first image was
on disk and when the last was. The parent takes the process's peak RSS and CPU seconds
from ``os.wait4`` (which count children the worker waited for, such as a helper process).

The clients:

- **ours**: ``from krea_desktop.api import RunwareClient, GenerationRequest`` (the library
  API, as the command line uses it): ``async for image in client.generate(request)``,
  then ``Path.write_bytes``.
- **sdk**: ``runware.Runware(transport="rest", http_base_url=URL).run(task,
  RunOptions(on_result=...))``: the SDK posts, polls ``getResponse`` with its own cadence
  (1 s, then 0.5 s growing by 1.5x) and calls ``on_result`` once per finished image; the
  callback decodes and writes base64 at once, or queues the URL for a download task that
  fetches the queued URLs one after another with aiohttp while the SDK keeps polling.
- **naive**: ``httpx.Client``: one POST; with async delivery a ``getResponse`` every 0.5 s;
  ``resp.json()``, ``base64.b64decode`` and a write for each new image, or a GET of its URL.

Runs alternate: in each run every mode is measured once per client, the clients' order
rotating from run to run so drifts in load hit each alike; the figures are medians over
the runs. Each is printed with its ratio to the best of the peers (sdk, naive) in the
same mode, and the targets are checked: in every mode ours at most 1.05x the fastest
peer's wall time, no later than any peer to the first image, and the lowest peak RSS.
Each mode then sets ours beside each peer run by run for the first image: how often ours
was earlier and later, the median difference, and a sign test of whether ours is later
(or earlier) more often than a tie would be (p < 0.05: measurably so). Where every client waits for
the same thing, as with sync URL output (the whole batch, then one download), medians of a
few runs differ by the service's noise alone, and the paired line says so.
Each mode also prints each client's own part of its first image: from the answer that
brought it (the status line and headers of that POST read, noted by wrapping the send of
each client's HTTP library alike) to the image on disk, and the part before it: from the
start to that answer (the service's time, and the client's while it waits).
Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib.util
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PROMPT = "a lighthouse in fog, gouache"
WIDTH, HEIGHT, RATIO = 1568, 672, "2.35:1"
MODEL = "krea:krea@2-medium"
KEY = "bench-key"
NAIVE_POLL_S = 0.5
ALL_MODES = ("sync-base64Data", "sync-URL", "async-base64Data", "async-URL")
ALL_CLIENTS = ("ours", "sdk", "naive")
SDK_INSTALL = ".venv/bin/pip install runware-sdk==1.8.0"


# --- the workers (each runs in a process of its own) -----------------------------------------


class Saver:
    """Writes images and notes when the first and the last were on disk."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.count = 0
        self.bytes = 0
        self.first: float | None = None
        self.last: float | None = None

    def save(self, name: str, data: bytes) -> None:
        (self.out / f"{name}.png").write_bytes(data)
        now = time.perf_counter()
        self.count += 1
        self.bytes += len(data)
        if self.first is None:
            self.first = now
            self.answered = ANSWERS[-1] if ANSWERS else None
        self.last = now

    answered: float | None = None  # when the answer that brought the first image came


# When each answer to a POST (a task, a poll) came: its status line and headers read. Noted
# by wrapping the send of each client's HTTP library (note_answers), the same for all.
ANSWERS: list[float] = []


def note_answers(client: str) -> None:
    """Note in ANSWERS when each POST is answered, by the HTTP library ``client`` sends it
    with (only that one is imported: another would weigh on its peak RSS)."""

    def noted(send: Callable[..., Any]) -> Callable[..., Any]:
        def sync_send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            response = send(self, request, *args, **kwargs)
            if request.method == "POST":
                ANSWERS.append(time.perf_counter())
            return response

        return sync_send

    def async_noted(send: Callable[..., Any]) -> Callable[..., Any]:
        async def async_send(self: Any, *args: Any, **kwargs: Any) -> Any:
            response = await send(self, *args, **kwargs)
            # httpx's send(request=...), aiohttp's _request(method, url, ...)
            said = kwargs.get("request", kwargs.get("method", args[0] if args else ""))
            if str(getattr(said, "method", said)).upper() == "POST":
                ANSWERS.append(time.perf_counter())
            return response

        return async_send

    if client == "sdk":
        import aiohttp

        aiohttp.ClientSession._request = async_noted(aiohttp.ClientSession._request)  # type: ignore[method-assign]
        return
    import httpx

    httpx.Client.send = noted(httpx.Client.send)  # type: ignore[method-assign]
    httpx.AsyncClient.send = async_noted(httpx.AsyncClient.send)  # type: ignore[method-assign]


def wire_task(task_uuid: str, images: int, delivery: str, output: str) -> dict[str, Any]:
    """The task the peers send: what ours sends for the same request."""
    return {
        "taskType": "imageInference",
        "taskUUID": task_uuid,
        "model": MODEL,
        "positivePrompt": PROMPT,
        "width": WIDTH,
        "height": HEIGHT,
        "numberResults": images,
        "outputType": output,
        "outputFormat": "PNG",
        "outputQuality": 95,
        "deliveryMethod": delivery,
        "includeCost": True,
        "seed": 42,
    }


def run_ours(url: str, images: int, delivery: str, output: str, saver: Saver) -> float:
    from krea_desktop.api import GenerationRequest, RunwareClient

    async def main() -> float:
        async with RunwareClient(KEY, base_url=url) as client:
            request = GenerationRequest(
                PROMPT, ratio=RATIO, number_results=images, seed=42, output_type=output,
                output_format="PNG", delivery_method=delivery,
            )  # fmt: skip
            started = time.perf_counter()
            async for image in client.generate(request):
                saver.save(image.image_uuid, image.data)
            return started

    return asyncio.run(main())


def run_sdk(url: str, images: int, delivery: str, output: str, saver: Saver) -> float:
    import uuid

    import aiohttp
    from runware import RunOptions, Runware

    async def main() -> float:
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        def on_result(item: dict[str, Any]) -> None:
            if "imageBase64Data" in item:
                saver.save(str(item["imageUUID"]), base64.b64decode(item["imageBase64Data"]))
            elif "imageURL" in item:
                queue.put_nowait(str(item["imageURL"]))

        async def downloads(session: aiohttp.ClientSession) -> None:
            while (image_url := await queue.get()) is not None:
                async with session.get(image_url) as resp:
                    resp.raise_for_status()
                    saver.save(image_url.rsplit("/", 1)[-1].split(".")[0], await resp.read())

        client = Runware(api_key=KEY, transport="rest", http_base_url=url)
        async with client, aiohttp.ClientSession() as session:
            started = time.perf_counter()
            fetcher = asyncio.create_task(downloads(session))
            try:
                task = wire_task(str(uuid.uuid4()), images, delivery, output)
                await client.run(task, RunOptions(on_result=on_result))
            finally:
                queue.put_nowait(None)
                await fetcher
            return started

    return asyncio.run(main())


def run_naive(url: str, images: int, delivery: str, output: str, saver: Saver) -> float:
    import uuid

    import httpx

    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(timeout=300) as http:
        started = time.perf_counter()
        task_uuid = str(uuid.uuid4())
        resp = http.post(url, json=[wire_task(task_uuid, images, delivery, output)], headers=headers)
        resp.raise_for_status()
        items = resp.json()["data"]
        seen: set[str] = set()
        while True:
            for item in items:
                if item.get("status") == "processing" or item["imageUUID"] in seen:
                    continue
                seen.add(item["imageUUID"])
                if "imageBase64Data" in item:
                    data = base64.b64decode(item["imageBase64Data"])
                else:
                    got = http.get(item["imageURL"])
                    got.raise_for_status()
                    data = got.content
                saver.save(item["imageUUID"], data)
            if len(seen) >= images:
                return started
            time.sleep(NAIVE_POLL_S)
            resp = http.post(url, json=[{"taskType": "getResponse", "taskUUID": task_uuid}], headers=headers)
            resp.raise_for_status()
            items = resp.json()["data"]


WORKERS: dict[str, Callable[[str, int, str, str, Saver], float]] = {
    "ours": run_ours,
    "sdk": run_sdk,
    "naive": run_naive,
}


def worker(args: argparse.Namespace) -> int:
    delivery, output = args.mode.split("-", 1)
    saver = Saver(Path(args.out))
    note_answers(args.worker)
    started = WORKERS[args.worker](args.url, args.images, delivery, output, saver)
    if saver.count != args.images or saver.first is None or saver.last is None:
        print(json.dumps({"error": f"{saver.count} of {args.images} images saved"}), flush=True)
        return 1
    answer_to_first = saver.first - saver.answered if saver.answered is not None else None
    to_answer = saver.answered - started if saver.answered is not None else None
    result = {
        "first": saver.first - started, "wall": saver.last - started, "answer_to_first": answer_to_first,
        "to_answer": to_answer,
    }  # fmt: skip
    print(json.dumps(result), flush=True)
    return 0


# --- the parent --------------------------------------------------------------------------------


@dataclass
class Sample:
    wall: float
    first: float
    rss_mb: float
    cpu: float
    answer_to_first: float | None = None  # from the answer that brought it to the first image on disk
    to_answer: float | None = None  # from the start to that answer


def measure(client: str, mode: str, url: str, images: int) -> Sample:
    out = Path(tempfile.mkdtemp(prefix=f"bench-clients-{client}-"))
    try:
        command = [
            sys.executable, __file__, "--worker", client, "--mode", mode, "--url", url, "--images", str(images),
            "--out", str(out),
        ]  # fmt: skip
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        assert proc.stdout is not None and proc.stderr is not None
        stdout, stderr = proc.stdout.read(), proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        lines = stdout.decode().strip().splitlines()
        result: dict[str, Any] = json.loads(lines[-1]) if lines else {"error": "no output"}
        if proc.returncode != 0 or "error" in result:
            raise RuntimeError(f"{client} {mode}: {result.get('error')} {stderr.decode()[-2000:]}")
        files = list(out.iterdir())
        if len(files) != images or not all(f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in files):
            raise RuntimeError(f"{client} {mode}: the files written are not {images} PNGs")
        return Sample(
            result["wall"], result["first"], usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime,
            result.get("answer_to_first"), result.get("to_answer"),
        )  # fmt: skip
    finally:
        shutil.rmtree(out, ignore_errors=True)


def ratio(value: float, best: float | None) -> str:
    return f"{value / best:5.2f}x" if best else "   — "


def report(results: dict[tuple[str, str], list[Sample]], modes: list[str], clients: list[str], runs: int) -> bool:
    all_met = True
    peers = [c for c in clients if c != "ours"]
    for mode in modes:
        fields = ("wall", "first", "rss_mb", "cpu")
        med = {
            c: Sample(*(statistics.median(getattr(s, f) for s in results[(c, mode)]) for f in fields)) for c in clients
        }
        best = {f: min((getattr(med[c], f) for c in peers), default=None) for f in fields}
        print(f"\n{mode.replace('-', ', ')}: median of {runs} runs (ratio to the best peer)")
        print(f"  {'client':<6} {'wall':>16} {'first image':>16} {'peak RSS':>18} {'CPU':>16}")
        for c in clients:
            s = med[c]
            print(
                f"  {c:<6} {s.wall:7.2f} s {ratio(s.wall, best['wall'])} {s.first:7.2f} s "
                f"{ratio(s.first, best['first'])} {s.rss_mb:7.0f} MB {ratio(s.rss_mb, best['rss_mb'])} "
                f"{s.cpu:7.2f} s {ratio(s.cpu, best['cpu'])}"
            )
        if "ours" in med and peers:
            o = med["ours"]
            checks = [
                ("wall <= 1.05x the fastest peer", o.wall <= 1.05 * (best["wall"] or 0), o.wall / (best["wall"] or 1)),
                ("first image no later than any peer", o.first <= (best["first"] or 0), o.first / (best["first"] or 1)),
                ("lowest peak RSS", o.rss_mb < (best["rss_mb"] or 0), o.rss_mb / (best["rss_mb"] or 1)),
            ]
            for name, met, r in checks:
                all_met &= met
                print(f"  target: {name}: {'met' if met else 'NOT met'} ({r:.2f}x)")
            for peer in peers:
                print(f"  {paired(results[('ours', mode)], results[(peer, mode)], peer)}")
        print(f"  {answer_to_first(results, mode, clients)}")
    return all_met


def answer_to_first(results: dict[tuple[str, str], list[Sample]], mode: str, clients: list[str]) -> str:
    """The client's own part of the first image: from the answer that brought it (its
    headers read) to the image on disk, median and range of the runs, for each client."""
    parts, before = [], []
    for c in clients:
        spans = [s.answer_to_first * 1000 for s in results[(c, mode)] if s.answer_to_first is not None]
        if spans:
            parts.append(f"{c} {statistics.median(spans):.1f} ms ({min(spans):.1f}-{max(spans):.1f})")
        waits = [s.to_answer * 1000 for s in results[(c, mode)] if s.to_answer is not None]
        if waits:
            before.append(f"{c} {statistics.median(waits):.0f} ms ({min(waits):.0f}-{max(waits):.0f})")
    return (
        "from the answer that brought it to the first image on disk: " + ("; ".join(parts) or "not noted")
        + "\n  from the start to that answer: " + ("; ".join(before) or "not noted")
    )  # fmt: skip


def sign_test(later: int, earlier: int) -> float:
    """One-sided p-value of ``later`` or more of ``later + earlier`` runs by chance (a tie)."""
    n = later + earlier
    return sum(math.comb(n, k) for k in range(later, n + 1)) / 2**n if n else 1.0


def paired(ours: list[Sample], peer: list[Sample], name: str) -> str:
    """Ours against ``peer`` run by run (the same run: the same state of the machine)."""
    diffs = [o.first - p.first for o, p in zip(ours, peer, strict=True)]
    later = sum(d > 0.005 for d in diffs)
    earlier = sum(d < -0.005 for d in diffs)
    p_later, p_earlier = sign_test(later, earlier), sign_test(earlier, later)
    if p_later < 0.05:
        verdict = f"ours measurably later (sign test p = {p_later:.3f})"
    elif p_earlier < 0.05:
        verdict = f"ours measurably earlier (sign test p = {p_earlier:.3f})"
    else:
        verdict = f"no measurable difference (sign test p = {min(p_later, p_earlier):.2f})"
    return (
        f"paired with {name}, first image: ours earlier in {earlier} runs, later in {later}, level (5 ms) in "
        f"{len(diffs) - later - earlier}; median difference {statistics.median(diffs) * 1000:+.0f} ms; {verdict}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--modes", default=",".join(ALL_MODES))
    parser.add_argument("--clients", default=",".join(ALL_CLIENTS))
    parser.add_argument("--service-nice", type=int, default=19)
    parser.add_argument("--worker", choices=ALL_CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    from tests.helpers.sim import simulator_process

    modes = [m for m in args.modes.split(",") if m]
    clients = [c for c in args.clients.split(",") if c]
    unknown = [m for m in modes if m not in ALL_MODES] + [c for c in clients if c not in ALL_CLIENTS]
    if unknown:
        parser.error(f"unknown mode or client: {', '.join(unknown)}")
    if "sdk" in clients and importlib.util.find_spec("runware") is None:
        print(f"runware-sdk is not installed: its column is skipped. To include it: {SDK_INSTALL}", flush=True)
        clients.remove("sdk")
    results: dict[tuple[str, str], list[Sample]] = {(c, m): [] for c in clients for m in modes}
    print(
        f"{args.images} images of {WIDTH}x{HEIGHT} PNG per generation; simulator at nice {args.service_nice}, "
        f"grain 1.0; {args.runs} runs; load average at start {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    with simulator_process("--grain", "1.0", nice=args.service_nice) as url:
        for run in range(args.runs):
            order = clients[run % len(clients) :] + clients[: run % len(clients)]
            for mode in modes:
                for client in order:
                    sample = measure(client, mode, url, args.images)
                    results[(client, mode)].append(sample)
                    print(
                        f"run {run + 1} {mode:<17} {client:<6} wall {sample.wall:5.2f} s  first {sample.first:5.2f} s  "
                        f"RSS {sample.rss_mb:4.0f} MB  CPU {sample.cpu:5.2f} s",
                        flush=True,
                    )
    met = report(results, modes, clients, args.runs)
    print(f"\nload average at end {os.getloadavg()[0]:.2f}; every target met: {'yes' if met else 'no'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

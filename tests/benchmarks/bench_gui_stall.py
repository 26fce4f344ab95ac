"""GUI-thread stall while a 20-image batch arrives as base64 from the simulator.

    .venv/bin/python tests/benchmarks/bench_gui_stall.py [--runs 3] [--trace]

The simulator runs in another process on 127.0.0.1 with ``--grain 1.0``, so each of the
20 images is a 1568x672 PNG of about 2.8 MB and the sync answer is a JSON body of about
76 MB. A 1 ms QTimer on the GUI thread records ``time.perf_counter()`` at every tick; the
gaps between ticks are the GUI thread's stalls. They are measured from ``submit`` until
the last image has been handed to the GUI thread, for:

(a) ours: the real ClientThread (stream, parse, decode, verify, save into a temporary
    Library, make the thumbnail), with imageReady feeding a shown GalleryModel/GalleryView
    on the GUI thread as the main window does;
(b) naive: a QThread doing ``httpx.Client().post(...)``, ``resp.json()``, then for each
    image ``base64.b64decode``, a full Pillow decode, ``Library.save`` and a thumbnail,
    feeding the same gallery;
(c) idle: no batch at all, for as long as a batch takes.

The variants are interleaved, ``--runs`` times each. Printed: the longest gap and the 99th
percentile of gaps for each, the worst and the median over the runs, and the ratio
naive/ours (no assertions; the target is ours <= 16 ms, one frame at 60 Hz).

``--trace`` adds one more run of (a) in which the client-side steps are wrapped to record
when they run (on which thread), and prints the steps that overlap the longest gaps. The
wrapping costs microseconds per step; the figures above are from unwrapped runs.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import httpx
from PIL import Image
from PySide6.QtCore import QEventLoop, QObject, Qt, QThread, QTimer, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from krea_desktop.api.client import RunwareClient
from krea_desktop.api.request import GenerationRequest
from krea_desktop.api.results import GeneratedImage
from krea_desktop.library.store import Library, LibraryEntry
from krea_desktop.ui.client_thread import ClientThread
from krea_desktop.ui.gallery import GalleryModel, GalleryView

PROMPT = "a lighthouse on a cliff at dusk, wide shot, gouache"
RATIO = "2.35:1"
N = 20
TARGET_MS = 16.0


# --- the simulator, in its own process ---------------------------------------------------------


class SimulatorProcess:
    def __init__(self, grain: float = 1.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "krea_desktop", "simulator", "--port", "0", "--grain", str(grain)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = re.search(r"(http://\S+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"the simulator did not start: {line!r}")
        self.url = m.group(1)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --- the GUI-thread tick recorder ------------------------------------------------------------------


class TickRecorder(QObject):
    """A 1 ms precise timer on the GUI thread; ``ticks`` are perf_counter() readings."""

    def __init__(self) -> None:
        super().__init__()
        self.ticks: list[float] = []
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(1)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        self.ticks.append(time.perf_counter())

    def start(self) -> None:
        self.ticks = [time.perf_counter()]
        self.timer.start()

    def stop(self) -> list[float]:
        self.ticks.append(time.perf_counter())
        self.timer.stop()
        return self.ticks


def gaps_ms(ticks: list[float]) -> list[float]:
    return [(b - a) * 1000 for a, b in zip(ticks, ticks[1:])]


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98] if len(values) > 1 else values[0]


@dataclass
class Run:
    label: str
    max_ms: float
    p99_ms: float
    seconds: float
    images: int
    ticks: list[float] = field(repr=False, default_factory=list)
    t0: float = 0.0


# --- the naive client ----------------------------------------------------------------------------------


def naive_thumbnail(im: Image.Image, size: int = 256) -> QImage:
    im = im.copy()
    im.thumbnail((size, size))
    rgba = im.convert("RGBA")
    raw = rgba.tobytes()
    return QImage(raw, rgba.width, rgba.height, rgba.width * 4, QImage.Format.Format_RGBA8888).copy()


class NaiveClient(QThread):
    """What a typical client does: one blocking POST, ``resp.json()``, decode each image."""

    imageReady = Signal(int, object, QImage)
    finishedBatch = Signal(int)

    def __init__(self, url: str, library: Library, request: GenerationRequest) -> None:
        super().__init__()
        self.url, self.library, self.request = url, library, request

    def run(self) -> None:
        task = self.request.to_task([])
        with httpx.Client(timeout=300) as http:
            resp = http.post(self.url, json=[task], headers={"Authorization": "Bearer bench"})
        body = resp.json()
        n = 0
        for i, item in enumerate(body["data"]):
            data = base64.b64decode(item["imageBase64Data"])
            im = Image.open(io.BytesIO(data))
            im.load()  # decode every pixel: the "verification" a typical client does
            if im.size != self.request.size:
                raise RuntimeError(f"unexpected size {im.size}")
            image = GeneratedImage(
                task_uuid=self.request.task_uuid,
                image_uuid=item["imageUUID"],
                data=data,
                format="PNG",
                width=im.width,
                height=im.height,
                seed=item.get("seed"),
                cost=item.get("cost"),
                index=i,
                params=self.request.describe(),
            )
            entry = self.library.save(image)
            self.imageReady.emit(1, entry, naive_thumbnail(im))
            n += 1
        self.finishedBatch.emit(n)


# --- one measured run ---------------------------------------------------------------------------------


class Gallery:
    """The gallery as the main window shows it; imageReady lands here on the GUI thread."""

    def __init__(self, library: Library) -> None:
        self.model = GalleryModel(library)
        self.view = GalleryView()
        self.view.setModel(self.model)
        self.view.resize(900, 700)
        self.view.show()
        self.received = 0
        self.slot_ms: list[float] = []

    def image_ready(self, _job: int, entry: LibraryEntry, thumb: QImage) -> None:
        t = time.perf_counter()
        self.model.add_entry(entry, thumb)
        self.received += 1
        self.slot_ms.append((time.perf_counter() - t) * 1000)

    def close(self) -> None:
        self.view.close()
        self.view.deleteLater()
        self.model.loader.wait(5000)


def make_request(seed: int) -> GenerationRequest:
    return GenerationRequest(
        PROMPT,
        ratio=RATIO,
        number_results=N,
        seed=seed,
        output_type="base64Data",
        output_format="PNG",
        delivery_method="sync",
    )


def measure(label: str, start: Callable[[Callable[[int], None], Gallery], Callable[[], None]],
            recorder: TickRecorder, workdir: Path) -> Run:
    """``start(done, gallery)`` begins the work and returns a clean-up; ``done(n)`` ends it."""
    lib_dir = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=workdir))
    library = Library(lib_dir)
    gallery = Gallery(library)
    loop = QEventLoop()
    outcome: dict[str, Any] = {}

    def done(n: int) -> None:
        outcome["n"] = n
        outcome["t"] = time.perf_counter()
        loop.quit()

    QApplication.processEvents()  # settle the shown gallery before measuring
    recorder.start()
    t0 = time.perf_counter()
    cleanup = start(done, gallery)
    guard = QTimer()  # a hang must not hang the benchmark
    guard.setSingleShot(True)
    guard.timeout.connect(loop.quit)
    guard.start(180_000)
    loop.exec()
    guard.stop()
    ticks = recorder.stop()
    cleanup()
    gallery.close()
    library.close()
    shutil.rmtree(lib_dir, ignore_errors=True)
    if "n" not in outcome:
        raise RuntimeError(f"{label}: the batch did not finish")
    g = gaps_ms(ticks)
    images = max(outcome["n"], gallery.received)
    return Run(label, max(g), p99(g), outcome["t"] - t0, images, ticks, t0)


def start_ours(url: str, seed: int) -> Callable[[Callable[[int], None], Gallery], Callable[[], None]]:
    def start(done: Callable[[int], None], gallery: Gallery) -> Callable[[], None]:
        library = gallery.model.library
        thread = ClientThread(lambda: RunwareClient("bench", base_url=url), library)
        thread.imageReady.connect(gallery.image_ready)
        thread.jobFinished.connect(lambda _job, n: done(n))
        thread.jobFailed.connect(lambda _job, msg, _err: (print(f"  ours failed: {msg}"), done(-1)))
        thread.start_and_wait()
        thread.submit(make_request(seed))

        def cleanup() -> None:
            thread.stop()

        return cleanup

    return start


def start_naive(url: str, seed: int) -> Callable[[Callable[[int], None], Gallery], Callable[[], None]]:
    def start(done: Callable[[int], None], gallery: Gallery) -> Callable[[], None]:
        thread = NaiveClient(url, gallery.model.library, make_request(seed))
        thread.imageReady.connect(gallery.image_ready)
        thread.finishedBatch.connect(done)
        thread.start()

        def cleanup() -> None:
            thread.wait(10_000)

        return cleanup

    return start


def start_idle(seconds: float) -> Callable[[Callable[[int], None], Gallery], Callable[[], None]]:
    def start(done: Callable[[int], None], _gallery: Gallery) -> Callable[[], None]:
        QTimer.singleShot(int(seconds * 1000), lambda: done(0))
        return lambda: None

    return start


# --- tracing the client-side steps (--trace) -------------------------------------------------------


class Tracer:
    def __init__(self) -> None:
        self.spans: list[tuple[float, float, str, str]] = []  # start, end, step, thread
        self._undo: list[Callable[[], None]] = []

    def wrap(self, module: Any, name: str, step: str | None = None) -> None:
        original = getattr(module, name)
        step = step or name
        spans = self.spans

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spans.append((t, time.perf_counter(), step, threading.current_thread().name))

        setattr(module, name, wrapper)
        self._undo.append(lambda: setattr(module, name, original))

    def wrap_async(self, cls: Any, name: str, step: str) -> None:
        original = getattr(cls, name)
        spans = self.spans

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                spans.append((t, time.perf_counter(), step, threading.current_thread().name))

        setattr(cls, name, wrapper)
        self._undo.append(lambda: setattr(cls, name, original))

    def install(self) -> None:
        import json as json_module

        from krea_desktop.api import client as client_mod
        from krea_desktop.api import response as response_mod
        from krea_desktop.library import metadata as metadata_mod
        from krea_desktop.library import store as store_mod
        from krea_desktop.ui import client_thread as ct_mod

        class TracedJson:
            loads = None  # set below

        traced_json = TracedJson()
        for attr in ("dumps", "JSONDecodeError"):
            setattr(traced_json, attr, getattr(json_module, attr))
        traced_json.loads = json_module.loads  # type: ignore[assignment]
        self.wrap(traced_json, "loads", "json.loads(skeleton)")
        setattr(response_mod, "json", traced_json)
        self._undo.append(lambda: setattr(response_mod, "json", json_module))

        self.wrap_async(client_mod.RunwareClient, "_post_once", "POST: stream the answer + parse")
        self.wrap(response_mod, "_lift_large_strings", "lift base64 strings (bytes.find)")
        self.wrap(response_mod, "_restore", "restore blobs")
        self.wrap(client_mod, "parse_body", "parse_body")
        self.wrap(client_mod, "_decode_b64_value", "base64 decode (slices)")
        self.wrap(client_mod, "verify_image", "verify_image (PNG CRCs)")
        self.wrap(metadata_mod, "embed", "metadata.embed")
        self.wrap(store_mod, "_write_atomic", "write + fsync")
        self.wrap(ct_mod, "thumbnail_qimage", "thumbnail (Pillow decode + resize)")
        self.wrap(store_mod.Library, "get", "Library.get (SQLite)")

    def uninstall(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()

    def report(self, run: Run, gallery_slots: list[tuple[float, float]], top: int = 6) -> None:
        ticks = run.ticks
        gaps = sorted(((b - a, a, b) for a, b in zip(ticks, ticks[1:])), reverse=True)[:top]
        print(f"\n  trace of one run of ours: max gap {run.max_ms:.1f} ms, p99 {run.p99_ms:.2f} ms")
        print("  the longest gaps, with the steps that ran (on any thread) while the GUI thread waited:")
        spans = self.spans + [(a, b, "GUI: gallery add_entry", "MainThread") for a, b in gallery_slots]
        for dur, a, b in sorted(gaps, key=lambda g: g[1]):
            overlapping = []
            for s, e, step, thread in spans:
                lo, hi = max(a, s), min(b, e)
                if hi > lo:
                    overlapping.append((hi - lo, step, thread, e - s))
            overlapping.sort(reverse=True)
            desc = "; ".join(
                f"{step} [{thread}] {ov * 1000:.1f} ms of its {whole * 1000:.1f} ms"
                for ov, step, thread, whole in overlapping[:4]
            ) or "no traced step (GIL held by untraced code, e.g. the socket read loop)"
            print(f"   at +{(a - run.t0):6.3f} s  gap {dur * 1000:6.1f} ms: {desc}")
        by_step: dict[str, list[float]] = {}
        for s, e, step, _thread in self.spans:
            by_step.setdefault(step, []).append((e - s) * 1000)
        print("  step durations (wall time on their thread, GIL waits included): count, median, max ms")
        for step, ds in sorted(by_step.items(), key=lambda kv: -max(kv[1])):
            print(f"   {step:40s} {len(ds):3d}  {statistics.median(ds):7.2f}  {max(ds):7.2f}")


# --- main ---------------------------------------------------------------------------------------------------


def summary(runs: list[Run]) -> tuple[float, float, float]:
    worst = max(r.max_ms for r in runs)
    med_max = statistics.median(r.max_ms for r in runs)
    med_p99 = statistics.median(r.p99_ms for r in runs)
    return worst, med_max, med_p99


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="runs of each variant (default 3)")
    parser.add_argument("--trace", action="store_true", help="one more traced run of ours, with a diagnosis")
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="sys.setswitchinterval in seconds for this process (an experiment; default: unchanged)")
    args = parser.parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)

    app = QApplication.instance() or QApplication(sys.argv)
    recorder = TickRecorder()
    workdir = Path(tempfile.mkdtemp(prefix="krea-bench-stall-"))
    sim = SimulatorProcess(grain=1.0)
    print(f"simulator (separate process) at {sim.url}; {N} x 1568x672 PNG, sync, base64Data; "
          f"platform {app.platformName()}, switch interval {sys.getswitchinterval() * 1000:.1f} ms")
    results: dict[str, list[Run]] = {"idle": [], "ours": [], "naive": []}
    try:
        # Warm-up, not counted: imports, the simulator's first render, connections.
        measure("warm", start_ours(sim.url, 1), recorder, workdir)
        measure("warm", start_naive(sim.url, 2), recorder, workdir)
        with httpx.Client(timeout=300) as http:
            resp = http.post(sim.url, json=[make_request(3).to_task([])], headers={"Authorization": "Bearer b"})
        print(f"answer body: {len(resp.content) / 1e6:.1f} MB of JSON for {N} images")
        del resp

        for i in range(args.runs):
            ours = measure("ours", start_ours(sim.url, 100 + i), recorder, workdir)
            naive = measure("naive", start_naive(sim.url, 200 + i), recorder, workdir)
            idle = measure("idle", start_idle(ours.seconds), recorder, workdir)
            for r in (idle, ours, naive):
                results[r.label].append(r)
                print(f"  run {i + 1} {r.label:5s}: max gap {r.max_ms:7.1f} ms, p99 {r.p99_ms:6.2f} ms, "
                      f"{r.images} images in {r.seconds:.2f} s")

        if args.trace:
            tracer = Tracer()
            slots: list[tuple[float, float]] = []
            original_slot = Gallery.image_ready

            def traced_slot(self: Gallery, job: int, entry: LibraryEntry, thumb: QImage) -> None:
                t = time.perf_counter()
                original_slot(self, job, entry, thumb)
                slots.append((t, time.perf_counter()))

            Gallery.image_ready = traced_slot  # type: ignore[method-assign]
            tracer.install()
            try:
                traced = measure("ours", start_ours(sim.url, 999), recorder, workdir)
            finally:
                tracer.uninstall()
                Gallery.image_ready = original_slot  # type: ignore[method-assign]
            tracer.report(traced, slots)
    finally:
        sim.close()
        shutil.rmtree(workdir, ignore_errors=True)

    idle_worst, idle_med, idle_p99 = summary(results["idle"])
    ours_worst, ours_med, ours_p99 = summary(results["ours"])
    naive_worst, naive_med, naive_p99 = summary(results["naive"])
    n = args.runs
    print()
    print(f"GUI-thread stall, {N}-image 1568x672 PNG batch as base64 ({n} runs each; worst / median):")
    print(f"  (c) idle, no batch : max gap {idle_worst:6.1f} / {idle_med:6.1f} ms, p99 {idle_p99:5.2f} ms")
    print(f"  (a) ours           : max gap {ours_worst:6.1f} / {ours_med:6.1f} ms, p99 {ours_p99:5.2f} ms "
          f"(target <= {TARGET_MS:.0f} ms: {'met' if ours_worst <= TARGET_MS else 'NOT met'})")
    print(f"  (b) naive          : max gap {naive_worst:6.1f} / {naive_med:6.1f} ms, p99 {naive_p99:5.2f} ms")
    print(f"  ratio naive/ours, median max gap: {naive_med / ours_med:.1f}x; worst: {naive_worst / ours_worst:.1f}x")
    if ours_worst > TARGET_MS and not args.trace:
        print("  ours is over the target: run again with --trace to see which steps overlap the longest gaps")


if __name__ == "__main__":
    main()

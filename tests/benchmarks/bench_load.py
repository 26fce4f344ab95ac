"""The GUI thread while five 20-image jobs are in flight at once (the reliability load).

    .venv/bin/python tests/benchmarks/bench_load.py [--runs 5] [--service-nice 19] [--trace]
        [--automatic-gc]

The real window (``create_main_window``, shown, offscreen) against the simulator in its own
process on 127.0.0.1 (``--latency 0.02``, at nice 19 by default: it stands in for the
remote service, as in ``tests/reliability/test_load.py``), with an API key (a memory
keyring) so the window talks to it. Each run queues five jobs of 20 images (the default
ratio, 1:1 1024x1024 PNG, async delivery: each poll answers with every image finished so
far) and measures, with a 1 ms timer on the GUI thread, the longest gap between its ticks
from 50 ms after the jobs are queued until the last image is in the gallery. The
baseline in the same process: the same timer for 3 s with no job ("idle"). One job of
20 first, not counted, warms pools, connections and caches.

``--trace`` wraps the client's and the window's steps (as ``bench_gui_stall.py --trace``
does) in one more run and lists what ran during the longest gaps. ``--automatic-gc``
leaves Python's cyclic collector automatic, running on whichever thread allocates, as
before the window collected on the GUI thread only (``krea_desktop/ui/collector.py``): the
baseline for what that costs. No assertions.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import itertools
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import keyring  # noqa: E402
from PySide6.QtCore import QEventLoop, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from tests.helpers.jobs import queue_jobs  # noqa: E402
from tests.helpers.keyrings import MemoryKeyring  # noqa: E402
from tests.helpers.sim import simulator_process  # noqa: E402

TARGET_MS = 16.0


def _stall_bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_gui_stall", Path(__file__).with_name("bench_gui_stall.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_gui_stall"] = module
    spec.loader.exec_module(module)
    return module


def wait_until(app: QApplication, condition: Callable[[], bool], timeout: float) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the jobs did not finish")
        loop = QEventLoop()
        QTimer.singleShot(5, loop.quit)
        loop.exec()


def pause(seconds: float) -> None:
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


class Ticks:
    def __init__(self) -> None:
        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def start(self) -> None:
        self.ticks.clear()
        self.timer.start(1)

    def stop(self) -> list[float]:
        self.timer.stop()
        return list(self.ticks)


def gaps(ticks: list[float]) -> list[tuple[float, float, float]]:
    return [(b - a, a, b) for a, b in itertools.pairwise(ticks)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--service-nice", type=int, default=19)
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--automatic-gc", action="store_true")
    args = parser.parse_args()
    if args.automatic_gc:
        import gc

        from krea_desktop.ui import collector

        collector.collect_on_gui_thread = lambda app=None, holder=None: gc.enable()  # type: ignore[assignment,misc]

    app = QApplication.instance() or QApplication(sys.argv)
    data = Path(tempfile.mkdtemp(prefix="krea-bench-load-"))
    os.environ["KREA_DESKTOP_DATA_DIR"] = str(data)
    os.environ["RUNWARE_API_KEY"] = "bench-load-key"
    keyring.set_keyring(MemoryKeyring())

    from krea_desktop.ui.app import create_main_window

    with simulator_process("--latency", "0.02", nice=args.service_nice) as url:
        os.environ["RUNWARE_API_URL"] = url
        w = create_main_window()
        w.show()
        w.client_thread.wait_ready(20)
        panel = w.prompt_panel
        panel.deliveryCombo.setCurrentIndex(panel.deliveryCombo.findData("async"))
        panel.countSpin.setValue(20)
        done: set[int] = set()
        w.client_thread.jobFinished.connect(lambda j, _n: done.add(j))
        w.client_thread.jobFailed.connect(lambda j, msg, _e: print(f"job {j} failed: {msg}", flush=True))
        recorder = Ticks()

        def run(n_jobs: int, label: str, measure: bool) -> tuple[list[float], float]:
            ids = queue_jobs(w, n_jobs, label)
            t0 = time.perf_counter()
            pause(0.05)
            if measure:
                recorder.start()
            wait_until(app, lambda: set(ids) <= done, 180)
            ticks = recorder.stop() if measure else []
            return ticks, time.perf_counter() - t0

        print(f"simulator at {url} (nice {args.service_nice}); window {w.width()}x{w.height()}, offscreen", flush=True)
        run(1, "warm-up", False)
        pause(0.3)
        results: dict[str, list[float]] = {"idle": [], "ours": []}
        for i in range(args.runs):
            recorder.start()
            pause(3.0)
            idle = recorder.stop()
            results["idle"].append(max(g for g, _a, _b in gaps(idle)) * 1000)
            ticks, took = run(5, f"load run {i}", True)
            worst = max(g for g, _a, _b in gaps(ticks)) * 1000
            results["ours"].append(worst)
            ordered = sorted(g * 1000 for g, _a, _b in gaps(ticks))
            p99 = ordered[int(len(ordered) * 0.99)]
            print(
                f"  run {i + 1}: idle max gap {results['idle'][-1]:5.1f} ms; 5 x 20 images in {took:4.1f} s: "
                f"max gap {worst:5.1f} ms, p99 {p99:4.2f} ms, gaps over 16 ms: {sum(g > 16 for g in ordered)}",
                flush=True,
            )
            pause(0.3)

        if args.trace:
            trace_run(w, run)

        w.close()
    print()
    print(f"GUI-thread stall with 5 jobs of 20 images in flight, {args.runs} runs (worst / median of the runs):")
    for name in ("idle", "ours"):
        values = results[name]
        print(f"  {name:5s} max gap {max(values):6.1f} / {statistics.median(values):6.1f} ms")
    ok = sum(v <= TARGET_MS for v in results["ours"])
    print(f"  target <= {TARGET_MS:.0f} ms (one frame): held in {ok} of {args.runs} runs")


def trace_run(w: Any, run: Callable[[int, str, bool], tuple[list[float], float]]) -> None:
    stall = _stall_bench()
    tracer = stall.Tracer()
    tracer.install()
    from krea_desktop.ui.jobs import job_list as jobs_mod

    gui: list[tuple[float, float, str, str]] = []  # garbage collections
    tracer.wrap(w.model, "add_entry", "GUI: gallery add_entry")
    tracer.wrap(jobs_mod.JobRow, "image_received", "GUI: job row progress")
    tracer.wrap(jobs_mod.JobRow, "set_status", "GUI: job row status")
    tracer.wrap(jobs_mod.JobRow, "end", "GUI: job row end (restyle)")
    tracer.wrap(w, "_update_counts", "GUI: status bar counts")

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_start[threading.get_ident()] = time.perf_counter()
        else:
            t = gc_start.pop(threading.get_ident(), None)
            if t is not None:
                gui.append((t, time.perf_counter(), f"gc gen {info['generation']}", threading.current_thread().name))

    gc_start: dict[int, float] = {}
    gc.callbacks.append(on_gc)
    try:
        ticks, _took = run(5, "load traced", True)
    finally:
        tracer.uninstall()
        gc.callbacks.remove(on_gc)
    spans = tracer.spans + gui
    worst = sorted(gaps(ticks), reverse=True)[:8]
    print(f"\n  traced run: max gap {worst[0][0] * 1000:.1f} ms; the longest gaps and what overlapped them:")
    for dur, a, b in sorted(worst, key=lambda g: g[1]):
        print(f"   gap {dur * 1000:6.1f} ms: {stall.overlapping(spans, a, b) or 'no traced step'}")
    stall.print_step_table(spans)


if __name__ == "__main__":
    main()

"""Garbage left uncollected while another thread makes cycles: the GUI thread's collector
(krea_desktop/ui/collector.py) against the interpreter's automatic collection.

    .venv/bin/python tests/benchmarks/bench_collector.py [--seconds 6] [--runs 2]

Each mode runs in a fresh process with a Qt application and its event loop: a worker
thread makes cycles (an object and a list pointing at each other) as fast as it can and
keeps the last 20,000 alive, so each becomes garbage after it has been promoted to the
oldest generation (the case that needs full collections). A 10 ms timer on the GUI thread
samples how many are alive beyond those 20,000: garbage not yet collected. Printed per
mode: the cycles made; the most garbage after the first second (the steady state) and at
any time (the collector looks every 50 ms while nothing is made: its first pass has that
long's worth); peak RSS; the collections by generation; the longest gap between the
sampling timer's ticks after the first second (the GUI thread waits for a collection
wherever it runs: the worker holds the interpreter's lock through it); and the
collector's longest look. Ratios to the automatic mode. A synthetic load: the app's
threads make far fewer cycles than this. No assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import collections, gc, json, resource, sys, threading, time
    from PySide6.QtCore import QCoreApplication, QTimer

    mode, seconds = sys.argv[1], float(sys.argv[2])
    app = QCoreApplication([])
    longest = [0.0]
    if mode == "collector":
        from krea_desktop.ui.collector import collect_on_gui_thread

        collector = collect_on_gui_thread(app)
        look = collector.collect_if_due

        def timed():
            started = time.perf_counter()
            look()
            longest[0] = max(longest[0], time.perf_counter() - started)

        timer = collector.findChild(QTimer)  # its looks, timed
        timer.timeout.disconnect()
        timer.timeout.connect(timed)

    alive, made = [0], [0]

    class Node:
        __slots__ = ("me", "pad")

        def __init__(self):
            alive[0] += 1
            made[0] += 1

        def __del__(self):
            alive[0] -= 1

    stop = threading.Event()

    def work():
        held = collections.deque()
        while not stop.is_set():
            for _ in range(1000):
                node = Node()
                node.me = node
                node.pad = [node]
                held.append(node)
                if len(held) > 20_000:
                    held.popleft()
            time.sleep(0)

    worker = threading.Thread(target=work)
    started = time.perf_counter()
    peak, settled = [0], [0]
    last, gap = [None], [0.0]

    def sample():
        now = time.perf_counter()
        if last[0] is not None and now - started > 1.0:
            gap[0] = max(gap[0], now - last[0])
        last[0] = now
        garbage = alive[0] - 20_000
        peak[0] = max(peak[0], garbage)
        if time.perf_counter() - started > 1.0:
            settled[0] = max(settled[0], garbage)

    sampler = QTimer()
    sampler.timeout.connect(sample)
    sampler.start(10)
    worker.start()
    QTimer.singleShot(int(seconds * 1000), app.quit)
    app.exec()
    stop.set()
    worker.join()
    print(json.dumps({
        "made": made[0],
        "settled": settled[0],
        "peak": peak[0],
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "collections": [s["collections"] for s in gc.get_stats()],
        "longest_ms": longest[0] * 1000,
        "gap_ms": gap[0] * 1000,
    }))
    """
)


def run(mode: str, seconds: float) -> dict[str, object]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(seconds)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=seconds + 120,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, list[dict[str, object]]] = {"automatic": [], "collector": []}
    for i in range(args.runs):
        for mode in ("automatic", "collector") if i % 2 == 0 else ("collector", "automatic"):
            result = run(mode, args.seconds)
            results[mode].append(result)
            print(
                f"  run {i + 1} {mode:9}: made {result['made']:,}; garbage after the first second at most "
                f"{result['settled']:,}, at any time {result['peak']:,}; peak RSS {result['rss_mb']:.0f} MB; "
                f"collections by generation {result['collections']}; the 10 ms timer's longest gap after "
                f"the first second {result['gap_ms']:.1f} ms"
                + (f"; the longest look {result['longest_ms']:.1f} ms" if mode == "collector" else ""),
                flush=True,
            )

    def median(mode: str, key: str) -> float:
        return statistics.median(float(r[key]) for r in results[mode])  # type: ignore[arg-type]

    print(f"\nMedians of {args.runs} runs of {args.seconds:g} s each, ratio collector / automatic:")
    for key, label in (("settled", "garbage after the first second"), ("peak", "garbage at any time")):
        auto, ours = median("automatic", key), median("collector", key)
        print(f"  {label:32} automatic {auto:>10,.0f}  collector {ours:>10,.0f}  ({ours / max(auto, 1):.2f}x)")
    auto, ours = median("automatic", "rss_mb"), median("collector", "rss_mb")
    print(f"  {'peak RSS':32} automatic {auto:>8.0f} MB  collector {ours:>8.0f} MB  ({ours / auto:.2f}x)")
    auto, ours = median("automatic", "gap_ms"), median("collector", "gap_ms")
    print(
        f"  {'longest gap of the timer':32} automatic {auto:>8.1f} ms  collector {ours:>8.1f} ms  ({ours / auto:.2f}x)"
    )
    auto, ours = median("automatic", "made"), median("collector", "made")
    print(f"  {'cycles made':32} automatic {auto:>10,.0f}  collector {ours:>10,.0f}  ({ours / auto:.2f}x)")


if __name__ == "__main__":
    main()

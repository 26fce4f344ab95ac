"""The start-up check of the library folder (``Library.reconcile``) beside another thread.

    .venv/bin/python tests/benchmarks/bench_reconcile.py [--size 100000] [--runs 5]

The window runs the check on a worker once it is ready, so while it runs the GUI thread
shares Python's lock with it: what the user feels is the longest time another thread is
kept waiting, not the check's own length. A thread beside it wakes every 0.5 ms and notes
the longest pause between two wakes (with nothing else running: about 0.5 ms). The
library is bench_gallery.py's (made once under /tmp, ``KREA_BENCH_CACHE``), checked as it
is, so the check finds nothing to change, as at an ordinary start. Prints each run and
the median; nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000, help="images in the library (default 100,000)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from bench_gallery import build_library

    from krea_desktop.library.store import Library

    library = Library(build_library(args.size))
    pauses: list[float] = []
    for run in range(args.runs):
        longest = [0.0, 0.0]  # the pause, and when it ended
        stop = threading.Event()

        def beside(longest: list[float] = longest, stop: threading.Event = stop) -> None:
            last = time.perf_counter()
            while not stop.is_set():
                time.sleep(0.0005)
                now = time.perf_counter()
                if now - last > longest[0]:
                    longest[:] = [now - last, now]
                last = now

        thread = threading.Thread(target=beside)
        thread.start()
        time.sleep(0.05)
        started = time.perf_counter()
        library.reconcile()
        took = time.perf_counter() - started
        time.sleep(0.05)
        stop.set()
        thread.join()
        pauses.append(longest[0] * 1000)
        print(
            f"run {run + 1}: reconcile of {args.size:,d} images {took:.2f} s; the longest pause of a thread "
            f"beside it {longest[0] * 1000:.1f} ms, ending {(longest[1] - started) * 1000:.0f} ms after the start",
            flush=True,
        )
    print(f"median of the longest pauses: {statistics.median(pauses):.1f} ms")
    library.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

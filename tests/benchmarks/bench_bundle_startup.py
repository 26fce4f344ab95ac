"""Start-up of the bundled app to its first painted window and to its ready window, next
to the source tree's.

    .venv/bin/python packaging/build.py                 # once, to make dist/krea-desktop/
    .venv/bin/python tests/benchmarks/bench_bundle_startup.py [--runs 5] [--bundle PATH]

Launches ``dist/krea-desktop/krea-desktop`` (no Python needed) and ``python -m
krea_desktop`` from this checkout, interleaved, ``--runs`` times each after one start of
each that is not counted (it warms the disk cache). Every start is a fresh process with
QT_QPA_PLATFORM=offscreen, an empty data folder, no API key (demo mode), the failing
keyring backend, and KREA_DESKTOP_REPORT_FIRST_PAINT=1, which makes the app print
``first-paint <seconds since the process started>`` once the main window's frame has
painted, ``ready <seconds>`` once it has painted with the prompt holding the focus and the
gallery on the library, then ``built`` and close. Three figures per start: the in-process
first paint, and the times this (parent) process sees from launching the child to reading
the first-paint and the ready lines. Prints the median, minimum and maximum of each and
the bundle/source ratio of the medians. No assertions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_once(command: list[str], timeout: float = 60.0) -> tuple[float, float, float]:
    """(seconds the app reports, seconds seen from here) to the first painted window, and
    seconds seen from here to its ready line (NaN if it printed none)."""
    data = Path(tempfile.mkdtemp(prefix="krea-bench-bundle-"))
    env = {k: v for k, v in os.environ.items() if k not in ("RUNWARE_API_KEY", "RUNWARE_API_URL")}
    env.update(
        QT_QPA_PLATFORM="offscreen",
        KREA_DESKTOP_DATA_DIR=str(data),
        KREA_DESKTOP_REPORT_FIRST_PAINT="1",
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    try:
        started = time.perf_counter()
        child = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert child.stdout is not None
        reported = seen = None
        ready = float("nan")
        for line in child.stdout:
            if line.startswith("first-paint ") and seen is None:
                seen = time.perf_counter() - started
                reported = float(line.split()[1])
            elif line.startswith("ready "):
                ready = time.perf_counter() - started
                break
        child.wait(timeout)
        if reported is None or seen is None:
            raise SystemExit(f"bench_bundle_startup: {command[0]} exited {child.returncode} without painting")
        return reported, seen, ready
    finally:
        shutil.rmtree(data, ignore_errors=True)


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} s  min {min(values):.3f} s  max {max(values):.3f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bundle", type=Path, default=ROOT / "dist" / "krea-desktop" / "krea-desktop")
    args = parser.parse_args()
    if not os.access(args.bundle, os.X_OK):
        print(f"no bundle at {args.bundle}; build it with: python packaging/build.py", file=sys.stderr)
        return 2
    variants = {"bundle": [str(args.bundle)], "source": [sys.executable, "-m", "krea_desktop"]}
    for command in variants.values():
        start_once(command)  # not counted
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
    for _ in range(args.runs):
        for name, command in variants.items():
            results[name].append(start_once(command))
    print(f"start-up to the first painted main window, offscreen, {args.runs} starts each, interleaved")
    for name, runs in results.items():
        print(f"  {name:6}  in-process: {summary([r[0] for r in runs])}")
        print(f"  {'':6}  seen from the parent: {summary([r[1] for r in runs])}")
        print(f"  {'':6}  ready, seen from the parent: {summary([r[2] for r in runs])}")
    for label, index in (("in-process", 0), ("seen from the parent", 1), ("ready, seen from the parent", 2)):
        ratio = statistics.median(r[index] for r in results["bundle"]) / statistics.median(
            r[index] for r in results["source"]
        )
        print(f"  bundle/source ({label}): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

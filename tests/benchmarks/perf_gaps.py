"""What the GUI thread ran in each long gap of a bench_gallery scroll, from a perf profile.

    KREA_BENCH_GAPS=/tmp/gaps.json perf record -F 2999 -k CLOCK_MONOTONIC --call-graph fp \\
        -o /tmp/perf.data -- .venv/bin/python tests/benchmarks/bench_gallery.py \\
        --child /tmp/krea-bench-gallery/v2-100000 --spawned 0 --scroll-limit 400000
    perf script -i /tmp/perf.data -F comm,pid,tid,time,ip,sym,dso > /tmp/perf.txt
    .venv/bin/python tests/benchmarks/perf_gaps.py /tmp/gaps.json /tmp/perf.txt [--top 5]

bench_gallery writes each gap of over 12 ms between its 1 ms ticks (CLOCK_MONOTONIC, the
clock ``perf record -k CLOCK_MONOTONIC`` stamps its samples with). For the longest gaps
this prints how many samples fell on the GUI thread (the process's first thread) and on
the others, and the functions the GUI thread's samples were in: the innermost, and every
function on their stacks. A gap that the GUI thread's CPU clock counts as spent running
but in which perf caught none of its samples is time the virtual machine did not run at
all (its host ran something else). Python's own frames show as the interpreter's C
functions: time them with ``KREA_BENCH_TRACE=1``.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import json
import re
from pathlib import Path

HEAD = re.compile(r"^\S.*?\s+(\d+)/(\d+)\s+(?:\[\d+\]\s+)?([\d.]+):")


def samples(script: Path) -> list[tuple[float, int, int, list[str]]]:
    """(time, pid, tid, frames innermost first) of every sample in ``perf script`` text."""
    found: list[tuple[float, int, int, list[str]]] = []
    current: tuple[float, int, int, list[str]] | None = None
    with script.open(errors="replace") as lines:
        for line in lines:
            if not line.strip():
                if current is not None:
                    found.append(current)
                current = None
                continue
            head = HEAD.match(line)
            if head:
                current = (float(head.group(3)), int(head.group(1)), int(head.group(2)), [])
            elif current is not None:
                parts = line.strip().split(None, 1)
                if len(parts) == 2:
                    current[3].append(parts[1])
    if current is not None:
        found.append(current)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gaps", type=Path, help="the file KREA_BENCH_GAPS named")
    parser.add_argument("script", type=Path, help="the output of perf script -F comm,pid,tid,time,ip,sym,dso")
    parser.add_argument("--top", type=int, default=5, help="the longest gaps to show (default 5)")
    args = parser.parse_args()
    gaps = sorted(tuple(gap) for gap in json.loads(args.gaps.read_text()))
    starts = [start for start, _end in gaps]
    found = samples(args.script)
    if not found:
        print("no samples in the perf script")
        return 1
    pid = found[0][1]  # the benchmark's process; its first thread is the GUI thread
    inside: dict[int, list[tuple[int, list[str]]]] = collections.defaultdict(list)
    for at, sample_pid, tid, frames in found:
        i = bisect.bisect_right(starts, at) - 1
        if sample_pid == pid and i >= 0 and at <= gaps[i][1]:
            inside[i].append((tid, frames))
    for i in sorted(range(len(gaps)), key=lambda i: gaps[i][0] - gaps[i][1])[: args.top]:
        start, end = gaps[i]
        gui = [frames for tid, frames in inside[i] if tid == pid]
        others = collections.Counter(tid for tid, _frames in inside[i] if tid != pid)
        print(f"gap of {(end - start) * 1000:.1f} ms at {start:.3f}: {len(gui)} samples of the GUI thread, ", end="")
        print(f"{sum(others.values())} of its other threads")
        innermost = collections.Counter(frames[0] if frames else "?" for frames in gui)
        for name, count in innermost.most_common(6):
            print(f"    {count:4d} in   {name[:140]}")
        anywhere = collections.Counter(name for frames in gui for name in set(frames))
        for name, count in anywhere.most_common(12):
            print(f"    {count:4d} under {name[:140]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

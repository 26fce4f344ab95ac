"""Peak memory of taking a gigantic picture as a reference.

    .venv/bin/python tests/benchmarks/bench_reference_memory.py [--side 8000]

Makes four ``--side`` × ``--side`` pictures once (kept under /tmp): RGB PNG, RGB JPEG,
RGBA PNG whose alpha is opaque everywhere, and RGBA PNG with transparency. For each, in
fresh processes, the peak resident memory (VmHWM) of

- **decode**: Pillow opening and decoding the file, nothing else: the least any program
  that looks at the pixels needs (the baseline);
- **ours**: ``load_reference(path)``, which reads, checks, decodes, turns it upright, drops
  an opaque alpha channel, shrinks it to 2048 px and encodes it and its tray thumbnail;

each less the interpreter's memory before it started (measured in the same process), and
ours as a ratio to the decode. Median of ``--runs`` (default 3).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path("/tmp/krea-bench-reference-memory")
CASES = ("rgb.png", "rgb.jpg", "rgba_opaque.png", "rgba_alpha.png")

CHILD = r"""
import json, sys, time

def hwm_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    return float("nan")

what, path = sys.argv[1], sys.argv[2]
from PIL import Image
from krea_desktop.library.inputs import load_reference
import PIL.PngImagePlugin, PIL.JpegImagePlugin  # imported before the baseline is read
before = hwm_mb()
started = time.perf_counter()
if what == "decode":
    with Image.open(path) as picture:
        picture.load()
else:
    load_reference(path)
print(json.dumps({"peak_mb": hwm_mb() - before, "s": time.perf_counter() - started}))
"""


def make(side: int) -> Path:
    folder = CACHE / str(side)
    if all((folder / name).exists() for name in CASES):
        return folder
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    grey = Image.linear_gradient("L").resize((side, side))
    rgb = Image.merge("RGB", (grey, grey.rotate(90), grey.rotate(180)))
    rgb.save(folder / "rgb.png", compress_level=1)
    rgb.save(folder / "rgb.jpg", quality=90)
    opaque = rgb.copy()
    opaque.putalpha(255)
    opaque.save(folder / "rgba_opaque.png", compress_level=1)
    rgb.putalpha(grey)
    rgb.save(folder / "rgba_alpha.png", compress_level=1)
    return folder


def measure(what: str, path: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, what, str(path)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", type=int, default=8000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    folder = make(args.side)
    print(f"reference memory: {args.side}x{args.side} pictures, peak resident memory over the interpreter's")
    print(f"{'picture':18} {'decode (MB)':>12} {'ours (MB)':>10} {'ours/decode':>12} {'ours (s)':>9}")
    for name in CASES:
        runs = {what: [measure(what, folder / name) for _ in range(args.runs)] for what in ("decode", "ours")}
        decode = statistics.median(r["peak_mb"] for r in runs["decode"])
        ours = statistics.median(r["peak_mb"] for r in runs["ours"])
        seconds = statistics.median(r["s"] for r in runs["ours"])
        print(f"{name:18} {decode:12.0f} {ours:10.0f} {ours / decode:11.2f}x {seconds:9.2f}")


if __name__ == "__main__":
    main()

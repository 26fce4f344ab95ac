"""The gallery with large libraries: start-up to the first screen of thumbnails, the
longest GUI-thread stall while scrolling top to bottom, and resident memory.

    .venv/bin/python tests/benchmarks/bench_gallery.py [--sizes 1000 10000] [--pace 240]

Libraries of small real images are made once and kept under /tmp (with a warm thumbnail
cache); each measurement runs the real window (``create_main_window``, demo mode) in a
fresh process, so start-up includes the interpreter, the imports, opening and
reconciling the library, and painting.

(a) start-up: from before the process is spawned until the window has painted the
    gallery with every visible cell showing its real thumbnail (no placeholders);
(b) scrolling: a 16 ms timer moves the scroll bar down by ``--pace`` pixels until the
    bottom, while a 1 ms timer on the GUI thread records the longest gap between its ticks;
(c) memory: VmRSS from /proc/self/status after the first screen and after scrolling
    (and VmHWM, the peak).

Targets for 10,000 images: (a) within 1 s, (b) at most 16 ms, (c) under 400 MB.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("KREA_BENCH_CACHE", "/tmp/krea-bench-gallery"))
TARGET_START_S = 1.0
TARGET_STALL_MS = 16.0
TARGET_RSS_MB = 400.0
WORDS = (
    "harbour", "fog", "lighthouse", "kite", "dunes", "heron", "castle", "meadow", "barn", "winter", "gouache", "oil",
    "ink", "neon", "forest", "river", "mountain", "city", "night", "dawn", "portrait", "glass", "copper", "moss",
    "fox", "whale", "orchard",
)


# --- building the libraries (once, cached) -------------------------------------------------------------


def build_library(n: int) -> Path:
    """A library folder with ``n`` images and every thumbnail already made."""
    sys.path.insert(0, str(ROOT))
    from PIL import Image

    from krea_desktop.api import spec
    from krea_desktop.library import metadata
    from krea_desktop.library.store import Library

    folder = CACHE / f"lib-{n}"
    done = folder / ".complete"
    if done.exists():
        return folder
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = random.Random(n)
    ratios = [r for r in spec.ASPECT_RATIOS]
    print(f"  making a library of {n} images in {folder} (once) …", flush=True)
    t = time.perf_counter()

    def one(i: int) -> None:
        ratio = ratios[i % len(ratios)]
        w, h = (384, round(384 * ratio.height / ratio.width))
        im = Image.new("RGB", (w, h), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
        im.paste((rng.randrange(256), 40, 90), (w // 4, h // 4, w // 2, h // 2))
        buf = io.BytesIO()
        im.save(buf, "PNG", compress_level=1)
        image_uuid = f"bench-{n}-{i:06d}"
        record = {
            "prompt": " ".join(rng.choice(WORDS) for _ in range(8)) + f" #{i}",
            "ratio": ratio.name, "width": ratio.width, "height": ratio.height, "seed": i, "creativity": "medium",
            "output_format": "PNG", "references": [], "cost": 0.0035, "nsfw": i % 97 == 0,
            "created_at": f"2025-{1 + i * 12 // n:02d}-01T00:00:{i % 60:02d}.{i:06d}Z", "image_uuid": image_uuid,
        }
        (images / f"{image_uuid}.png").write_bytes(metadata.embed(buf.getvalue(), "PNG", record))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(n)))
    with Library(folder) as lib:
        report = lib.reconcile()
        assert len(report.indexed) == n, f"indexed {len(report.indexed)} of {n}"
    print(f"  … {n} images written and indexed in {time.perf_counter() - t:.1f} s", flush=True)
    warm_thumbnails(folder)
    done.write_text("ok")
    return folder


def warm_thumbnails(folder: Path) -> None:
    from PySide6.QtGui import QGuiApplication

    from krea_desktop.library.store import Library
    from krea_desktop.ui.gallery.thumbnails import THUMB_SIZE, make_thumbnail

    app = QGuiApplication.instance() or QGuiApplication(["bench", "-platform", "offscreen"])
    assert app is not None
    t = time.perf_counter()
    with Library(folder) as lib:
        entries = lib.entries()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda e: make_thumbnail(e.path, lib.thumb_path(e.image_uuid, THUMB_SIZE)), entries))
    print(f"  … thumbnails made in {time.perf_counter() - t:.1f} s", flush=True)


# --- the measured process --------------------------------------------------------------------------


def rss_mb(field: str = "VmRSS") -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(folder: Path, spawned_at: float, pace: int, scroll: bool) -> None:
    """Runs in a fresh process: open the window, wait for the first screen, scroll, report."""
    os.environ["KREA_DESKTOP_DATA_DIR"] = str(folder)
    os.environ.pop("RUNWARE_API_KEY", None)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("QT_API", "pyside6")
    sys.path.insert(0, str(ROOT))
    from PySide6.QtCore import QEvent, QObject, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication(["krea-desktop-bench"])
    from krea_desktop.ui.app import create_main_window

    (folder / "settings.ini").unlink(missing_ok=True)  # the same window geometry every run
    window = create_main_window(force_demo=True)
    window.resize(1360, 860)
    window.show()
    gallery, model = window.gallery, window.model
    result: dict[str, Any] = {"rows": model.rowCount()}
    state = {"painted_at": 0.0, "first_screen": False}

    class PaintWatch(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint:
                state["painted_at"] = time.time()
            return False

    watch = PaintWatch()
    gallery.viewport().installEventFilter(watch)

    def all_visible_shown() -> bool:
        ids = gallery.visible_ids()
        return bool(ids) and all(model.has_thumbnail(i) for i in ids)

    def check_first_screen() -> None:
        if state["first_screen"] or not gallery.isVisible():
            return
        if all_visible_shown():
            gallery.viewport().repaint()  # painted with every thumbnail in place
            state["first_screen"] = True
            result["first_screen_s"] = state["painted_at"] - spawned_at
            result["visible_cells"] = len(gallery.visible_ids())
            result["rss_first_mb"] = rss_mb()
            poll.stop()
            QTimer.singleShot(300, start_scroll if scroll else app.quit)

    poll = QTimer()
    poll.setInterval(2)
    poll.timeout.connect(check_first_screen)
    poll.start()

    ticks: list[float] = []
    recorder = QTimer()
    recorder.setTimerType(Qt.TimerType.PreciseTimer)
    recorder.setInterval(1)
    recorder.timeout.connect(lambda: ticks.append(time.perf_counter()))
    stepper = QTimer()
    stepper.setTimerType(Qt.TimerType.PreciseTimer)
    stepper.setInterval(16)
    bar = gallery.verticalScrollBar()

    def step() -> None:
        if bar.value() >= bar.maximum():
            stepper.stop()
            recorder.stop()
            QTimer.singleShot(0, finish_scroll)
            return
        bar.setValue(min(bar.maximum(), bar.value() + pace))

    stepper.timeout.connect(step)

    def start_scroll() -> None:
        result["scroll_px"] = bar.maximum()
        result["scroll_started"] = time.perf_counter()
        ticks.clear()
        recorder.start()
        stepper.start()

    def finish_scroll() -> None:
        gaps = sorted((b - a) * 1000 for a, b in itertools.pairwise(ticks))
        result["scroll_s"] = time.perf_counter() - result.pop("scroll_started")
        result["stall_max_ms"] = gaps[-1] if gaps else float("nan")
        result["stall_p99_ms"] = gaps[int(len(gaps) * 0.99)] if gaps else float("nan")
        result["stall_over_16"] = sum(1 for g in gaps if g > 16)
        result["ticks"] = len(ticks)
        result["rss_scrolled_mb"] = rss_mb()
        result["thumb_cache_mb"] = model.pixmap_bytes / 1e6
        app.quit()

    guard = QTimer()
    guard.setSingleShot(True)
    guard.timeout.connect(app.quit)
    guard.start(600_000)
    app.exec()
    result["rss_peak_mb"] = rss_mb("VmHWM")
    window.close()
    print("RESULT " + json.dumps(result), flush=True)


def measure(folder: Path, pace: int, scroll: bool = True) -> dict[str, Any]:
    spawned = time.time()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(folder), "--spawned", repr(spawned), "--pace", str(pace)]
        + ([] if scroll else ["--no-scroll"]),
        capture_output=True, text=True, timeout=900, cwd=ROOT,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[7:]))
    raise RuntimeError(f"the measured process failed:\n{proc.stdout}\n{proc.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--pace", type=int, default=240, help="pixels scrolled every 16 ms (default 240)")
    parser.add_argument("--starts", type=int, default=3, help="start-ups measured per size (median reported)")
    parser.add_argument("--child", type=Path)
    parser.add_argument("--spawned", type=float)
    parser.add_argument("--no-scroll", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.spawned, args.pace, not args.no_scroll)
        return

    print(f"gallery benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"platform {os.environ.get('QT_QPA_PLATFORM', 'offscreen')}, scrolling {args.pace} px every 16 ms")
    results: dict[int, dict[str, Any]] = {}
    for n in args.sizes:
        folder = build_library(n)
        measure(folder, args.pace, scroll=False)  # warm the OS file cache, not counted
        starts = [measure(folder, args.pace, scroll=False)["first_screen_s"] for _ in range(max(1, args.starts) - 1)]
        full = measure(folder, args.pace, scroll=True)
        starts.append(full["first_screen_s"])
        full["first_screen_s"] = statistics.median(starts)
        full["first_screen_worst_s"] = max(starts)
        results[n] = full
        print(f"  {n}: {json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in full.items()})}")

    sizes = list(results)
    rows = [
        ("rows in the gallery", "rows", "{:.0f}"),
        ("cells on the first screen", "visible_cells", "{:.0f}"),
        ("(a) start to first screen, median (s)", "first_screen_s", "{:.3f}"),
        ("    worst of the start-ups (s)", "first_screen_worst_s", "{:.3f}"),
        ("(b) scrolled, top to bottom (px)", "scroll_px", "{:.0f}"),
        ("    scrolling took (s)", "scroll_s", "{:.1f}"),
        ("    longest GUI stall (ms)", "stall_max_ms", "{:.1f}"),
        ("    p99 gap of a 1 ms timer (ms)", "stall_p99_ms", "{:.2f}"),
        ("    gaps over 16 ms", "stall_over_16", "{:.0f}"),
        ("(c) RSS after first screen (MB)", "rss_first_mb", "{:.0f}"),
        ("    RSS after scrolling (MB)", "rss_scrolled_mb", "{:.0f}"),
        ("    peak RSS, VmHWM (MB)", "rss_peak_mb", "{:.0f}"),
        ("    thumbnails held in memory (MB)", "thumb_cache_mb", "{:.0f}"),
    ]
    print()
    print(f"{'':40s}" + "".join(f"{n:>12,d}" for n in sizes))
    for label, key, fmt in rows:
        print(f"{label:40s}" + "".join(f"{fmt.format(results[n].get(key, float('nan'))):>12s}" for n in sizes))
    big = results[max(sizes)]
    print()
    for name, value, target, ok in (
        ("start to first screen", f"{big['first_screen_s']:.3f} s", f"<= {TARGET_START_S} s",
         big["first_screen_s"] <= TARGET_START_S),
        ("longest stall while scrolling", f"{big['stall_max_ms']:.1f} ms", f"<= {TARGET_STALL_MS:.0f} ms",
         big["stall_max_ms"] <= TARGET_STALL_MS),
        ("peak resident memory", f"{big['rss_peak_mb']:.0f} MB", f"< {TARGET_RSS_MB:.0f} MB",
         big["rss_peak_mb"] < TARGET_RSS_MB),
    ):
        print(f"  {max(sizes):,d} images, {name}: {value} (target {target}): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()

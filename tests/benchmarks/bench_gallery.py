"""The gallery with large libraries: start-up to the first screen of thumbnails, the cost
of a new image on the GUI thread, the longest GUI-thread stall while scrolling top to
bottom, resident memory, and prompt search.

    .venv/bin/python tests/benchmarks/bench_gallery.py [--sizes 1000 10000 100000] [--pace 240]
        [--starts 3] [--scroll-limit PX] [--build-only]

Libraries are made once and kept under /tmp (``KREA_BENCH_CACHE``): tiny real PNG files
(a few hundred bytes, one of a few dozen per ratio) with their index rows written straight
into ``library.sqlite`` (the FTS index filled by its triggers), and a 256 px JPEG
thumbnail per image already in ``thumbs/`` (warm cache), so that 100,000 images take
about 25 s to make. Each measurement runs the real window (``create_main_window``,
demo mode, 1360x860, offscreen on a 1920x1080 screen) in a fresh process, so start-up includes the
interpreter, the imports, opening and reconciling the library, and painting.

(a) start-up: from before the process is spawned until the window has painted the
    gallery with every visible cell showing its real thumbnail (no placeholders); also
    from the window's ``show()``;
(b) a new image: ``GalleryModel.add_entry`` of an entry with its thumbnail, 200 times with
    the gallery at the top, timing the call and then the event processing it causes
    (the view's layout and repaint) until the event loop is idle; median and max;
(c) scrolling: a 16 ms timer moves the scroll bar down by ``--pace`` pixels until the
    bottom, while a 1 ms timer on the GUI thread records the longest gap between its ticks
    and the GUI thread's own CPU time within each gap (the rest of a gap is waiting: for a
    core, or for Python's lock); first, the same timer for 10 s with the window idle (what
    the machine's load alone does to it), and the load average before and after. For
    the longest gaps, read at each step: the GUI thread's time on a core and waiting for
    one (/proc/self/schedstat), its major page faults, the bytes it read from the disk
    (/proc/self/task/TID/io), and the time the virtual machine's
    host took from it (steal, /proc/stat). ``KREA_BENCH_TRACE=1`` also times the
    gallery's paints, scroll steps and thumbnails (``=2``: each cell's paint and its parts
    too), ``KREA_BENCH_TRACE_FILE=FILE`` writes every timed call (start, end, CPU, name,
    size) as JSON, ``KREA_BENCH_WATCHDOG=1`` samples the
    GUI thread's Python stack in each long gap (a thread of its own, which takes the GIL in
    turn), ``KREA_BENCH_GAPS=FILE`` writes every gap over 12 ms for ``perf record -k
    CLOCK_MONOTONIC``, and ``KREA_BENCH_SCROLL_FROM=PX`` starts the scroll further down.
    Beside the scroll, one idle **witness** process per core (pinned to it, at the same
    priority, doing nothing but sleep 1 ms at a time) notes each time it woke more than
    8 ms late: the machine itself did not run it (its host took the core, or something of
    higher priority ran). A gap of the GUI thread that a witness shared for at least half
    its length is the machine's; the longest gap no witness shared is reported beside the
    longest of all (``--no-witness`` leaves them out);
(d) memory: VmRSS from /proc/self/status after the first screen and after scrolling,
    and VmHWM (the peak);
(e) search: ``Library.ids(search=...)``, ``Library.count(search=...)`` and the model's
    refresh (what the window does when typing pauses) for common, rare, absent, 1- and
    2-character and several-word terms, median of 5, and a scope of 50 images set and
    cleared.

Targets (100,000 images): (a) within 1 s, (b) O(1): the same at every size, (c) at most
16 ms, (d) under 500 MB, (e) within 100 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import itertools
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("KREA_BENCH_CACHE", "/tmp/krea-bench-gallery"))
LAYOUT = "v3"  # bumped when the made libraries change
TARGET_START_S = 1.0
TARGET_STALL_MS = 16.0
TARGET_RSS_MB = 500.0
TARGET_SEARCH_MS = 100.0
ADDS = 200
IDLE_MS = 10_000  # the idle baseline before scrolling
WORDS = (
    "harbour",
    "fog",
    "lighthouse",
    "kite",
    "dunes",
    "heron",
    "castle",
    "meadow",
    "barn",
    "winter",
    "gouache",
    "oil",
    "ink",
    "neon",
    "forest",
    "river",
    "mountain",
    "city",
    "night",
    "dawn",
    "portrait",
    "glass",
    "copper",
    "moss",
    "fox",
    "whale",
    "orchard",
)
RARE_WORD = "zeppelin"  # in one prompt of 1,000
# (label, search text): what a person types into the search field
SEARCHES = (
    ("common word", "harbour"),
    ("two common words", "harbour fog"),
    ("rare word", RARE_WORD),
    ("one image's number", "#4321"),
    ("absent", "xylophone"),
    ("1 character", "x"),
    ("2 characters", "fo"),
    ("2 + 3 characters", "ox night"),
)


# --- building the libraries (once, cached) -------------------------------------------------------------


def build_library(n: int) -> Path:
    """A library folder with ``n`` images, their rows and every thumbnail already made."""
    sys.path.insert(0, str(ROOT))
    from PIL import Image

    from krea_desktop.api import spec
    from krea_desktop.api.record import iso_utc
    from krea_desktop.library.store import Library
    from krea_desktop.ui.gallery.thumbnails import THUMB_SIZE, cached_size

    folder = CACHE / f"{LAYOUT}-{n}"
    done = folder / ".complete"
    if done.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    print(f"  making a library of {n:,d} images in {folder} (once) …", flush=True)
    t = time.perf_counter()
    with Library(folder) as lib:  # the schema, as the app makes it
        thumbs = lib.thumbs_dir / str(THUMB_SIZE)
        images = lib.images_dir
    thumbs.mkdir(parents=True, exist_ok=True)
    rng = random.Random(n)
    ratios = list(spec.ASPECT_RATIOS)
    variants: list[tuple[bytes, bytes]] = []  # (file, thumbnail) for ratio i % 8, colour i // 8
    for k in range(8 * 12):
        ratio = ratios[k % len(ratios)]
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        small = Image.new("RGB", cached_size(ratio.width, ratio.height, 24), colour)
        buf = io.BytesIO()
        small.save(buf, "PNG")
        thumb = Image.new("RGB", cached_size(ratio.width, ratio.height, THUMB_SIZE), colour)
        tw, th = thumb.size
        thumb.paste((255 - colour[0], 40, 90), (tw // 4, th // 4, tw // 2, th // 2))
        tbuf = io.BytesIO()
        thumb.save(tbuf, "JPEG", quality=88)
        variants.append((buf.getvalue(), tbuf.getvalue()))
    start = datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp()
    rows = []
    for i in range(n):
        ratio = ratios[i % len(ratios)]
        data, thumb_data = variants[(i * 7) % len(variants)]
        image_uuid = f"bench-{n}-{i:06d}"
        file_name = f"{image_uuid}.png"
        (images / file_name).write_bytes(data)
        (thumbs / f"{image_uuid}.jpg").write_bytes(thumb_data)
        words = [rng.choice(WORDS) for _ in range(8)]
        if i % 1000 == 500:
            words[3] = RARE_WORD
        prompt = " ".join(words) + f" #{i}"
        created = iso_utc(datetime.fromtimestamp(start + i * 37, timezone.utc))
        params = json.dumps(
            {
                "prompt": prompt,
                "ratio": ratio.name,
                "width": ratio.width,
                "height": ratio.height,
                "seed": i,
                "creativity": "medium",
                "output_format": "PNG",
                "cost": 0.0035,
                "created_at": created,
                "image_uuid": image_uuid,
            },
            separators=(",", ":"),
        )
        rows.append(
            (
                image_uuid,
                file_name,
                "PNG",
                ratio.width,
                ratio.height,
                ratio.name,
                prompt,
                "medium",
                i,
                1,
                "[]",
                params,
                0.0035,
                int(i % 97 == 0),
                created,
                int(i % 50 == 0),
                len(data),
            )
        )
    conn = sqlite3.connect(folder / "library.sqlite", isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO images (image_uuid, file_name, format, width, height, ratio, prompt, creativity, seed, "
        "number_results, refs, params, cost, nsfw, created_at, favourite, file_size) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    with Library(folder) as lib:
        report = lib.reconcile()
        assert not report.changed, f"the made library does not match its files: {report}"
        assert lib.count() == n
    done.write_text("ok")
    print(f"  … {n:,d} images made in {time.perf_counter() - t:.1f} s", flush=True)
    return folder


# --- the measured process --------------------------------------------------------------------------


def rss_mb(field: str = "VmRSS") -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def timed(fn: Any, runs: int = 5) -> tuple[float, Any]:
    """Median milliseconds of ``runs`` calls, and the last call's result."""
    times = []
    out = None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), out


def child(folder: Path, spawned_at: float, pace: int, scroll: bool, scroll_limit: int) -> None:
    """Runs in a fresh process: open the window, wait for the first screen, add images,
    scroll, search, report."""
    os.environ["KREA_DESKTOP_DATA_DIR"] = str(folder)
    os.environ.pop("RUNWARE_API_KEY", None)
    os.environ.setdefault("QT_API", "pyside6")
    sys.path.insert(0, str(ROOT))
    from tests.helpers.screen import use_offscreen_desktop

    use_offscreen_desktop()  # the window is made at the size it has on a desktop
    from PySide6.QtCore import QEvent, QEventLoop, QObject, Qt, QTimer
    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QApplication

    app = QApplication(["krea-desktop-bench"])
    from krea_desktop.library.store import Library
    from krea_desktop.ui.app import create_main_window
    from krea_desktop.ui.gallery.model import GalleryModel

    result: dict[str, Any] = {}

    # How long the start-up's parts take: the start-up check of the folder, the model's rows.
    def first_call_timed(cls: Any, name: str, key: str) -> None:
        real = getattr(cls, name)

        def timed_call(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                result.setdefault(key, time.perf_counter() - t)  # the first call: start-up's

        setattr(cls, name, timed_call)

    # With KREA_BENCH_TRACE=1, what the GUI thread ran while scrolling: each paint of the
    # gallery (the height it painted), each thumbnail taken in, each scroll step, with wall
    # and CPU time, to tell what filled the longest gaps.
    traced: list[tuple[float, float, float, str, int]] = []

    def trace(cls: Any, name: str, size: Callable[..., int] = lambda *_a: 0) -> None:
        real = getattr(cls, name)

        def traced_call(*args: Any) -> Any:
            t, c = time.perf_counter(), time.thread_time()
            try:
                return real(*args)
            finally:
                traced.append((t, time.perf_counter(), time.thread_time() - c, name, size(*args)))

        setattr(cls, name, traced_call)

    if os.environ.get("KREA_BENCH_TRACE"):
        from krea_desktop.ui.gallery.view import GalleryView

        trace(GalleryView, "paintEvent", lambda _view, event: event.rect().height())
        trace(GalleryView, "scrollContentsBy", lambda _view, _dx, dy: dy)
        trace(GalleryView, "_scrolled")
        trace(GalleryView, "_fling_ended")
        trace(GalleryView, "drop_offscreen_work")
        trace(GalleryModel, "_thumbnail_loaded")
        trace(GalleryModel, "entry_at")
        if os.environ.get("KREA_BENCH_TRACE") == "2":  # the parts of each cell's paint too
            from krea_desktop.ui.gallery.delegate import GalleryDelegate
            from krea_desktop.ui.gallery.thumbnails import ThumbnailLoader

            trace(GalleryDelegate, "paint", lambda _d, _p, _o, index: index.row())
            trace(GalleryDelegate, "_badges")
            trace(GalleryDelegate, "_badge_image")
            trace(GalleryDelegate, "_blur")
            trace(GalleryModel, "pixmap_for")
            trace(ThumbnailLoader, "request")

    first_call_timed(Library, "reconcile", "reconcile_s")
    first_call_timed(GalleryModel, "refresh", "model_rows_s")
    (folder / "settings.ini").unlink(missing_ok=True)  # the same window geometry every run
    built = time.perf_counter()
    window = create_main_window(force_demo=True)
    result["build_s"] = time.perf_counter() - built
    window.resize(1360, 860)
    state = {"painted_at": 0.0, "first_screen": False, "shown_at": time.time()}
    window.show()
    gallery, model, library = window.gallery, window.model, window.library
    result["rows"] = model.rowCount()

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
            result["show_to_first_screen_s"] = state["painted_at"] - state["shown_at"]
            result["visible_cells"] = len(gallery.visible_ids())
            result["rss_first_mb"] = rss_mb()
            poll.stop()
            QTimer.singleShot(300, after_first_screen if scroll else app.quit)

    poll = QTimer()
    poll.setInterval(2)
    poll.timeout.connect(check_first_screen)
    poll.start()

    def after_first_screen() -> None:
        add_images()
        QTimer.singleShot(300, start_idle)

    def start_idle() -> None:
        """The same 1 ms timer with nothing to do first: what the machine alone costs."""
        start_recorder()
        QTimer.singleShot(IDLE_MS, finish_idle)

    def finish_idle() -> None:
        recorder.stop()
        gaps = sorted((b - a) * 1000 for a, b in itertools.pairwise(ticks))
        result["idle_max_ms"] = gaps[-1] if gaps else float("nan")
        result["idle_over_16"] = sum(1 for g in gaps if g > 16)
        QTimer.singleShot(100, start_scroll)

    def add_images() -> None:
        """New images on top, as the window adds them (with the thumbnail the client
        thread made), each followed by the layout and repaint it causes."""
        model.loader.wait(10_000)
        app.processEvents()
        template = model.entry_at(0)
        assert template is not None
        thumb = QImage(200, 200, QImage.Format.Format_RGB32)
        thumb.fill(0x336699)
        top = max(model.ids()) + 1_000_000  # ids no row has: the entries are only in memory
        from dataclasses import replace

        calls: list[float] = []
        totals: list[float] = []
        for k in range(ADDS):
            entry = replace(
                template, id=top + k, image_uuid=f"{template.image_uuid}-new{k}", created_at="2099-01-01T00:00:00.000Z"
            )
            t0 = time.perf_counter()
            model.add_entry(entry, thumb)
            t1 = time.perf_counter()
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents)  # layout, repaint
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents)
            t2 = time.perf_counter()
            calls.append((t1 - t0) * 1000)
            totals.append((t2 - t0) * 1000)
        count_ms, _ = timed(library.count, 9)
        result["add_call_median_ms"] = statistics.median(calls)
        result["add_call_max_ms"] = max(calls)
        result["add_total_median_ms"] = statistics.median(totals)
        result["add_total_max_ms"] = max(totals)
        result["count_all_ms"] = count_ms  # the window's image count, asked again per new image
        model.remove_ids({top + k for k in range(ADDS)})
        app.processEvents()

    # Arrays, not lists: the cyclic collector walks a list's items on each full collection
    # (hundreds of thousands of ticks by the bottom), never an array's.
    ticks = array("d")
    cpu_ticks = array("d")  # the GUI thread's CPU time at each tick
    proc_ticks = array("d")  # the whole process's CPU time at each tick
    collections: list[tuple[float, float, int]] = []  # the cyclic collector's runs: start, end, generation
    collecting: list[float] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collecting[:] = [time.perf_counter()]
        elif collecting:
            collections.append((collecting[0], time.perf_counter(), info["generation"]))

    def tick() -> None:
        ticks.append(time.perf_counter())
        cpu_ticks.append(time.thread_time())
        proc_ticks.append(time.process_time())

    def start_recorder() -> None:
        del ticks[:], cpu_ticks[:], proc_ticks[:]
        recorder.start()

    recorder = QTimer()
    recorder.setTimerType(Qt.TimerType.PreciseTimer)
    recorder.setInterval(1)
    recorder.timeout.connect(tick)
    stepper = QTimer()
    stepper.setTimerType(Qt.TimerType.PreciseTimer)
    stepper.setInterval(16)
    bar = gallery.verticalScrollBar()

    # Time the machine's host took from this virtual machine ("steal" in /proc/stat, all
    # cores, in 1/100 s), read at each step: a gap holding steal may be the host's, not ours.
    stat_fd = os.open("/proc/stat", os.O_RDONLY) if os.path.exists("/proc/stat") else -1
    steal_times = array("d")
    steal_values = array("d")
    # And the GUI thread's own scheduling (/proc/self/schedstat: ns on a core, ns waiting
    # for one): a gap in which neither grew is one the thread slept or waited on a disk.
    sched_fd = os.open("/proc/self/schedstat", os.O_RDONLY) if os.path.exists("/proc/self/schedstat") else -1
    ran_values = array("d")
    waited_values = array("d")

    # Major page faults of the GUI thread (pages read back from disk: the system may have
    # dropped pages of the app or of its library from memory while they were not used).
    fault_fd = os.open(f"/proc/self/task/{threading.get_native_id()}/stat", os.O_RDONLY) if stat_fd >= 0 else -1
    fault_values = array("d")
    # And the bytes it had read from storage (/proc/self/task/TID/io, read_bytes): a read()
    # that waits on the disk is neither a page fault nor time on a core.
    io_path = f"/proc/self/task/{threading.get_native_id()}/io"
    io_fd = os.open(io_path, os.O_RDONLY) if stat_fd >= 0 and os.access(io_path, os.R_OK) else -1
    read_values = array("d")

    def disk_reads_now() -> float:
        if io_fd < 0:
            return float("nan")
        for line in os.pread(io_fd, 512, 0).splitlines():
            if line.startswith(b"read_bytes:"):
                return float(line.split()[1])
        return float("nan")

    def faults_now() -> float:
        if fault_fd < 0:
            return float("nan")
        after_name = os.pread(fault_fd, 512, 0).rsplit(b")", 1)[1].split()
        return float(after_name[9])  # majflt, the 12th field of stat

    def sched_now() -> tuple[float, float]:
        if sched_fd < 0:
            return float("nan"), float("nan")
        fields = os.pread(sched_fd, 128, 0).split()
        return float(fields[0]) / 1e6, float(fields[1]) / 1e6  # ms

    def steal_now() -> float:
        if stat_fd < 0:
            return float("nan")
        fields = os.pread(stat_fd, 256, 0).split(b"\n", 1)[0].split()
        return float(fields[8]) * 10 if len(fields) > 8 else float("nan")  # ms

    def step() -> None:
        steal_times.append(time.perf_counter())
        steal_values.append(steal_now())
        fault_values.append(faults_now())
        read_values.append(disk_reads_now())
        ran, waited = sched_now()
        ran_values.append(ran)
        waited_values.append(waited)
        if bar.value() >= min(bar.maximum(), scroll_limit):
            stepper.stop()
            recorder.stop()
            QTimer.singleShot(0, finish_scroll)
            return
        bar.setValue(min(bar.maximum(), bar.value() + pace))

    stepper.timeout.connect(step)

    # A watchdog thread: when the GUI thread has not ticked for 12 ms, where its Python is
    # (the innermost frames; in a call into Qt, the Python line that made it), once a gap.
    stalls: list[tuple[float, str]] = []
    watching = threading.Event()
    gui_thread = threading.get_ident()

    def watchdog() -> None:
        sampled_tick = -1.0
        while watching.is_set():
            time.sleep(0.002)
            if not ticks or ticks[-1] == sampled_tick or time.perf_counter() - ticks[-1] < 0.012:
                continue
            sampled_tick = ticks[-1]
            frame = sys._current_frames().get(gui_thread)
            lines = []
            while frame is not None and len(lines) < 6:
                code = frame.f_code
                lines.append(f"{Path(code.co_filename).name}:{frame.f_lineno} {code.co_name}")
                frame = frame.f_back
            stalls.append((sampled_tick, " < ".join(lines)))

    def start_scroll() -> None:
        watching.set()
        if os.environ.get("KREA_BENCH_WATCHDOG"):  # a Python thread: it takes the GIL in turn
            threading.Thread(target=watchdog, daemon=True).start()
        bar.setValue(int(os.environ.get("KREA_BENCH_SCROLL_FROM", "0")))  # a part of the way down, to look closer
        result["scroll_px"] = min(bar.maximum(), scroll_limit)
        result["load_before_scroll"] = os.getloadavg()[0]
        result["scroll_cpu_started"] = time.thread_time()
        result["scroll_started"] = time.perf_counter()
        collections.clear()
        gc.callbacks.append(on_gc)  # removed in finish_scroll
        start_recorder()
        stepper.start()

    def finish_scroll() -> None:
        gaps = sorted((b - a) * 1000 for a, b in itertools.pairwise(ticks))
        result["scroll_s"] = time.perf_counter() - result.pop("scroll_started")
        result["scroll_cpu_pct"] = 100 * (time.thread_time() - result.pop("scroll_cpu_started")) / result["scroll_s"]
        result["load_after_scroll"] = os.getloadavg()[0]
        result["stall_max_ms"] = gaps[-1] if gaps else float("nan")
        result["stall_p99_ms"] = gaps[int(len(gaps) * 0.99)] if gaps else float("nan")
        result["stall_over_16"] = sum(1 for g in gaps if g > 16)
        # What the GUI thread itself ran within each gap (CPU time): a gap much longer than
        # that is time the thread waited, for a core (other programs) or for Python's lock.
        spans = [
            ((b - a) * 1000, (d - c) * 1000)
            for (a, b), (c, d) in zip(itertools.pairwise(ticks), itertools.pairwise(cpu_ticks), strict=True)
        ]
        result["stall_cpu_max_ms"] = max((cpu for _wall, cpu in spans), default=float("nan"))
        result["stall_max_cpu_ms"] = max(spans, default=(float("nan"), float("nan")))[1]
        result["stall_cpu_over_16"] = sum(1 for _wall, cpu in spans if cpu > 16)
        gc.callbacks.remove(on_gc)
        # The longest gaps, each with the GUI thread's CPU, the other threads' CPU and the
        # collector's time within it: what to look at when a gap is over a frame.
        longest = sorted(range(len(ticks) - 1), key=lambda i: ticks[i] - ticks[i + 1])[:5]
        result["longest_gaps"] = [
            {
                "wall_ms": (ticks[i + 1] - ticks[i]) * 1000,
                "gui_cpu_ms": (cpu_ticks[i + 1] - cpu_ticks[i]) * 1000,
                "other_threads_cpu_ms": ((proc_ticks[i + 1] - proc_ticks[i]) - (cpu_ticks[i + 1] - cpu_ticks[i]))
                * 1000,
                "gc_ms": sum(
                    (min(end, ticks[i + 1]) - max(start, ticks[i])) * 1000
                    for start, end, _gen in collections
                    if end > ticks[i] and start < ticks[i + 1]
                ),
                "gc_generations": [gen for start, end, gen in collections if end > ticks[i] and start < ticks[i + 1]],
                "at_s": ticks[i] - ticks[0],
                "span": (ticks[i], ticks[i + 1]),  # CLOCK_MONOTONIC, as the witnesses note theirs
            }
            for i in longest
        ]
        result["gaps_over_16"] = [(a, b) for a, b in itertools.pairwise(ticks) if b - a > 0.016]
        watching.clear()
        for gap in result["longest_gaps"]:
            start = ticks[0] + gap["at_s"]
            gap["where"] = next((where for at, where in stalls if abs(at - start) < 1e-6), "")
            if traced:
                end = start + gap["wall_ms"] / 1000
                calls: dict[str, list[float]] = {}
                for t0, t1, cpu, name, size in traced:
                    if t1 > start and t0 < end and (cpu > 0.0005 or t1 - t0 > 0.002 or name == "paintEvent"):
                        calls.setdefault(name, []).append(round((t1 - t0) * 1000, 1))
                        calls[name].append(size)
                gap["traced"] = calls
        if os.environ.get("KREA_BENCH_TRACE_FILE"):  # every traced call, for a closer look
            Path(os.environ["KREA_BENCH_TRACE_FILE"]).write_text(json.dumps(list(traced)))
        if os.environ.get("KREA_BENCH_GAPS"):
            # Every gap over 12 ms as (start, end) on CLOCK_MONOTONIC (perf_counter on Linux),
            # to find in a `perf record -k CLOCK_MONOTONIC` profile of this process.
            Path(os.environ["KREA_BENCH_GAPS"]).write_text(
                json.dumps([(a, b) for a, b in itertools.pairwise(ticks) if b - a > 0.012])
            )
        if len(steal_values) > 1:
            result["steal_ms"] = steal_values[-1] - steal_values[0]
            result["gui_major_faults"] = fault_values[-1] - fault_values[0]
            result["gui_disk_read_kib"] = (read_values[-1] - read_values[0]) / 1024
            for gap in result["longest_gaps"]:
                # steal counted from the last step before the gap to the first one after it
                start = ticks[0] + gap["at_s"]
                end = start + gap["wall_ms"] / 1000
                before = max((i for i, t in enumerate(steal_times) if t <= start), default=0)
                after = min((i for i, t in enumerate(steal_times) if t >= end), default=len(steal_times) - 1)
                gap["steal_ms_around"] = steal_values[after] - steal_values[before]
                gap["gui_ran_ms_around"] = ran_values[after] - ran_values[before]
                gap["gui_major_faults_around"] = fault_values[after] - fault_values[before]
                gap["gui_disk_read_kib_around"] = (read_values[after] - read_values[before]) / 1024
                gap["gui_waited_for_a_core_ms_around"] = waited_values[after] - waited_values[before]
                gap["steps_around_ms"] = (steal_times[after] - steal_times[before]) * 1000
        result["gc_runs"] = {g: sum(1 for *_t, gen in collections if gen == g) for g in (0, 1, 2)}
        result["gc_max_ms"] = max(((end - start) * 1000 for start, end, _g in collections), default=0.0)
        result["ticks"] = len(ticks)
        result["rss_scrolled_mb"] = rss_mb()
        result["thumb_cache_mb"] = model.pixmap_bytes / 1e6
        QTimer.singleShot(0, searches)

    def searches() -> None:
        model.loader.wait(10_000)
        found: dict[str, Any] = {}
        for label, text in SEARCHES:
            ids_ms, ids = timed(lambda text=text: library.ids(search=text))
            count_ms, _ = timed(lambda text=text: library.count(search=text))
            refresh_ms, _ = timed(lambda text=text: (model.refresh(search=text), app.processEvents()))
            found[label] = {
                "text": text,
                "matches": len(ids),
                "ids_ms": ids_ms,
                "count_ms": count_ms,
                "refresh_ms": refresh_ms,
            }
        model.refresh(search=None)
        app.processEvents()
        found["(none: every image)"] = {
            "text": "",
            "matches": model.rowCount(),
            "ids_ms": timed(lambda: library.ids())[0],
            "count_ms": timed(lambda: library.count())[0],
            "refresh_ms": timed(lambda: (model.refresh(search=None), app.processEvents()))[0],
        }
        rng = random.Random(1)
        scope = rng.sample(model.ids(), min(50, model.rowCount()))
        set_ms, _ = timed(lambda: (model.set_scope(scope, "50 images"), app.processEvents()))
        assert model.rowCount() == len(scope)
        clear_ms, _ = timed(lambda: (model.set_scope(None), app.processEvents()))
        result["scope_set_ms"] = set_ms
        result["scope_clear_ms"] = clear_ms
        result["searches"] = found
        app.quit()

    guard = QTimer()
    guard.setSingleShot(True)
    guard.timeout.connect(app.quit)
    guard.start(1_500_000)
    app.exec()
    result["rss_peak_mb"] = rss_mb("VmHWM")
    window.close()
    print("RESULT " + json.dumps(result), flush=True)


WITNESS_LATE_S = 0.008  # a witness notes each wake-up later than this


def witness(cpu: int, out: Path) -> None:
    """Sleep 1 ms at a time on core ``cpu`` and append each late wake-up (start and end of
    the gap, CLOCK_MONOTONIC) to ``out``, until terminated."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {cpu})
    with out.open("a") as notes:
        last = time.perf_counter()
        while True:
            time.sleep(0.001)
            now = time.perf_counter()
            if now - last > WITNESS_LATE_S:
                notes.write(f"{last!r} {now!r}\n")
                notes.flush()
            last = now


def start_witnesses() -> list[tuple[subprocess.Popen[bytes], Path]]:
    started = []
    folder = Path(tempfile.mkdtemp(prefix="krea-bench-witness-"))
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    for cpu in cpus[:8]:
        out = folder / f"witness-{cpu}.txt"
        out.unlink(missing_ok=True)
        command = [sys.executable, __file__, "--witness", str(cpu), str(out)]
        started.append((subprocess.Popen(command, cwd=ROOT), out))
    return started


def stop_witnesses(started: list[tuple[subprocess.Popen[bytes], Path]]) -> list[tuple[float, float, int]]:
    """Every late wake-up the witnesses noted, as (start, end, core)."""
    noted = []
    for proc, out in started:
        proc.terminate()
        proc.wait(10)
        cpu = int(out.stem.rpartition("-")[2])
        if out.exists():
            for line in out.read_text().splitlines():
                a, b = line.split()
                noted.append((float(a), float(b), cpu))
            out.unlink()
        with contextlib.suppress(OSError):
            out.parent.rmdir()
    return noted


def shared_with_machine(span: tuple[float, float], noted: list[tuple[float, float, int]]) -> tuple[float, int]:
    """The longest overlap (ms) of a witness's late wake-up with ``span``, and its core."""
    a, b = span
    best = (0.0, -1)
    for start, end, cpu in noted:
        overlap = min(b, end) - max(a, start)
        if overlap > 0 and overlap * 1000 > best[0]:
            best = (overlap * 1000, cpu)
    return best


def attribute_gaps(result: dict[str, Any], noted: list[tuple[float, float, int]]) -> None:
    """Mark which of the GUI thread's gaps the idle witnesses shared (the machine's)."""
    for gap in result.get("longest_gaps", []):
        if "span" in gap:
            gap["witness_ms"], gap["witness_cpu"] = shared_with_machine(tuple(gap["span"]), noted)
    own = []
    for a, b in result.get("gaps_over_16", []):
        overlap, _cpu = shared_with_machine((a, b), noted)
        if overlap < 0.5 * (b - a) * 1000:
            own.append((b - a) * 1000)
    result["witness_late_wakeups"] = len(noted)
    result["witness_longest_ms"] = max(((b - a) * 1000 for a, b, _c in noted), default=0.0)
    result["stall_unshared_over_16"] = len(own)
    # The longest gap no witness shared: over 16 ms if any such, else at most 16 ms.
    result["stall_unshared_max_ms"] = max(own, default=min(result.get("stall_max_ms", 0.0), TARGET_STALL_MS))


def measure(
    folder: Path, pace: int, scroll: bool = True, scroll_limit: int = 1 << 30, witnesses: bool = False
) -> dict[str, Any]:
    spawned = time.time()
    watchers = start_witnesses() if witnesses else []
    try:
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(folder),
                "--spawned",
                repr(spawned),
                "--pace",
                str(pace),
                "--scroll-limit",
                str(scroll_limit),
            ]
            + ([] if scroll else ["--no-scroll"]),
            capture_output=True,
            text=True,
            timeout=1800,
            cwd=ROOT,
        )
    finally:
        noted = stop_witnesses(watchers)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result = dict(json.loads(line[7:]))
            if witnesses:
                attribute_gaps(result, noted)
            return result
    raise RuntimeError(f"the measured process failed:\n{proc.stdout}\n{proc.stderr}")


def report(results: dict[int, dict[str, Any]]) -> None:
    sizes = list(results)
    rows = [
        ("rows in the gallery", "rows", "{:.0f}"),
        ("cells on the first screen", "visible_cells", "{:.0f}"),
        ("(a) start to first screen, median (s)", "first_screen_s", "{:.3f}"),
        ("    worst of the start-ups (s)", "first_screen_worst_s", "{:.3f}"),
        ("    show() to first screen, median (s)", "show_to_first_screen_s", "{:.3f}"),
        ("    create_main_window (s)", "build_s", "{:.3f}"),
        ("    of which Library.reconcile (s)", "reconcile_s", "{:.3f}"),
        ("    of which the model's rows (s)", "model_rows_s", "{:.3f}"),
        ("(b) add_entry, median (ms)", "add_call_median_ms", "{:.3f}"),
        ("    add_entry, max (ms)", "add_call_max_ms", "{:.3f}"),
        ("    add + layout + repaint, median (ms)", "add_total_median_ms", "{:.2f}"),
        ("    add + layout + repaint, max (ms)", "add_total_max_ms", "{:.2f}"),
        ("    Library.count() (ms)", "count_all_ms", "{:.2f}"),
        ("(c) scrolled, top to bottom (px)", "scroll_px", "{:.0f}"),
        ("    scrolling took (s)", "scroll_s", "{:.1f}"),
        ("    GUI thread busy while scrolling (%)", "scroll_cpu_pct", "{:.0f}"),
        ("    load average before scrolling", "load_before_scroll", "{:.1f}"),
        ("    load average after scrolling", "load_after_scroll", "{:.1f}"),
        ("    longest GUI stall (ms)", "stall_max_ms", "{:.1f}"),
        ("    p99 gap of a 1 ms timer (ms)", "stall_p99_ms", "{:.2f}"),
        ("    gaps over 16 ms", "stall_over_16", "{:.0f}"),
        ("    its own CPU in the longest gap (ms)", "stall_max_cpu_ms", "{:.1f}"),
        ("    most own CPU within one gap (ms)", "stall_cpu_max_ms", "{:.1f}"),
        ("    gaps with over 16 ms own CPU", "stall_cpu_over_16", "{:.0f}"),
        ("    idle 10 s before: longest gap (ms)", "idle_max_ms", "{:.1f}"),
        ("    idle 10 s before: gaps over 16 ms", "idle_over_16", "{:.0f}"),
        ("(d) RSS after first screen (MB)", "rss_first_mb", "{:.0f}"),
        ("    RSS after scrolling (MB)", "rss_scrolled_mb", "{:.0f}"),
        ("    peak RSS, VmHWM (MB)", "rss_peak_mb", "{:.0f}"),
        ("    thumbnails held in memory (MB)", "thumb_cache_mb", "{:.0f}"),
        ("(e) scope of 50 set (ms)", "scope_set_ms", "{:.1f}"),
        ("    scope cleared (ms)", "scope_clear_ms", "{:.1f}"),
    ]
    print()
    print(f"{'':42s}" + "".join(f"{n:>12,d}" for n in sizes))
    for label, key, fmt in rows:
        print(f"{label:42s}" + "".join(f"{fmt.format(results[n].get(key, float('nan'))):>12s}" for n in sizes))
    for n in sizes:
        if "gc_runs" in results[n]:
            runs = results[n]["gc_runs"]
            print(
                f"(c) {n:,d}: collector runs while scrolling by generation {runs}, longest "
                f"{results[n]['gc_max_ms']:.1f} ms; the longest gaps (wall / GUI CPU / other threads' CPU / collector):"
            )
            for gap in results[n]["longest_gaps"]:
                print(
                    f"      {gap['wall_ms']:6.1f} / {gap['gui_cpu_ms']:5.1f} / {gap['other_threads_cpu_ms']:5.1f} / "
                    f"{gap['gc_ms']:5.1f} ms (gen {gap['gc_generations']}) at {gap['at_s']:.1f} s"
                )
                if "steal_ms_around" in gap:
                    print(
                        f"        from the step before to the step after ({gap['steps_around_ms']:.0f} ms): the GUI "
                        f"thread ran {gap['gui_ran_ms_around']:.1f} ms, waited for a core "
                        f"{gap['gui_waited_for_a_core_ms_around']:.1f} ms, {gap['gui_major_faults_around']:.0f} "
                        f"major faults, read {gap['gui_disk_read_kib_around']:.0f} KiB from the disk; the host took "
                        f"{gap['steal_ms_around']:.0f} ms from the machine"
                    )
                if "witness_ms" in gap:
                    shared = (
                        f"an idle witness on core {gap['witness_cpu']} was late for {gap['witness_ms']:.1f} ms of it: "
                        + ("the machine's" if gap["witness_ms"] >= 0.5 * gap["wall_ms"] else "in part the machine's")
                        if gap["witness_ms"] > 0
                        else "no idle witness was late in it"
                    )
                    print(f"        {shared}")
                if gap.get("traced"):
                    print(f"        traced calls (ms, size): {gap['traced']}")
                if gap.get("where"):
                    print(f"        the GUI thread then: {gap['where']}")
            if "steal_ms" in results[n]:
                print(
                    f"      while scrolling the host took {results[n]['steal_ms']:.0f} ms from the machine's cores "
                    f"(steal); the GUI thread had {results[n]['gui_major_faults']:.0f} major page faults and read "
                    f"{results[n]['gui_disk_read_kib']:.0f} KiB from the disk"
                )
            if "witness_late_wakeups" in results[n]:
                print(
                    f"      idle witness processes, one per core, woke more than {WITNESS_LATE_S * 1000:.0f} ms late "
                    f"{results[n]['witness_late_wakeups']} times "
                    f"(the longest {results[n]['witness_longest_ms']:.1f} ms); "
                    f"gaps of the GUI thread over 16 ms that no witness shared: {results[n]['stall_unshared_over_16']}"
                )
    labels = list(next(iter(results.values())).get("searches", {}))
    for label in labels:
        print(f"(e) search {label!r}: " + results[sizes[0]]["searches"][label]["text"])
        for key, name in (
            ("matches", "matches"),
            ("ids_ms", "Library.ids (ms)"),
            ("count_ms", "Library.count (ms)"),
            ("refresh_ms", "model refresh (ms)"),
        ):
            fmt = "{:.0f}" if key == "matches" else "{:.1f}"
            cells = "".join(f"{fmt.format(results[n]['searches'][label][key]):>12s}" for n in sizes)
            print(f"    {name:38s}" + cells)
    big_n = max(sizes)
    big = results[big_n]
    worst_search = max((s["refresh_ms"], label) for label, s in big.get("searches", {}).items())
    print()
    for name, value, target, ok in (
        (
            "start to first screen",
            f"{big['first_screen_s']:.3f} s",
            f"<= {TARGET_START_S} s",
            big["first_screen_s"] <= TARGET_START_S,
        ),
        (
            "add + layout + repaint, median",
            f"{big['add_total_median_ms']:.2f} ms",
            f"the same as at {min(sizes):,d} ({results[min(sizes)]['add_total_median_ms']:.2f} ms)",
            None,
        ),
        (
            "longest stall while scrolling",
            f"{big['stall_max_ms']:.1f} ms",
            f"<= {TARGET_STALL_MS:.0f} ms",
            big["stall_max_ms"] <= TARGET_STALL_MS,
        ),
        (
            "longest stall that no idle witness shared",
            f"{big.get('stall_unshared_max_ms', float('nan')):.1f} ms",
            f"<= {TARGET_STALL_MS:.0f} ms",
            big.get("stall_unshared_max_ms", float("inf")) <= TARGET_STALL_MS,
        ),
        (
            "most GUI-thread CPU within one gap",
            f"{big['stall_cpu_max_ms']:.1f} ms",
            f"<= {TARGET_STALL_MS:.0f} ms",
            big["stall_cpu_max_ms"] <= TARGET_STALL_MS,
        ),
        (
            "peak resident memory",
            f"{big['rss_peak_mb']:.0f} MB",
            f"< {TARGET_RSS_MB:.0f} MB",
            big["rss_peak_mb"] < TARGET_RSS_MB,
        ),
        (
            "slowest search refresh",
            f"{worst_search[0]:.1f} ms ({worst_search[1]})",
            f"<= {TARGET_SEARCH_MS:.0f} ms",
            worst_search[0] <= TARGET_SEARCH_MS,
        ),
    ):
        verdict = "" if ok is None else (": met" if ok else ": NOT met")
        print(f"  {big_n:,d} images, {name}: {value} (target {target}){verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--pace", type=int, default=240, help="pixels scrolled every 16 ms (default 240)")
    parser.add_argument("--starts", type=int, default=3, help="start-ups measured per size (median reported)")
    parser.add_argument(
        "--scroll-limit",
        type=int,
        default=1 << 30,
        help="stop scrolling after this many pixels (quick looks; the figures scroll to the bottom)",
    )
    parser.add_argument("--build-only", action="store_true", help="make the libraries and stop")
    parser.add_argument("--child", type=Path)
    parser.add_argument("--spawned", type=float)
    parser.add_argument("--no-scroll", action="store_true")
    parser.add_argument("--no-witness", action="store_true", help="scroll without the idle witness processes")
    parser.add_argument("--witness", nargs=2, metavar=("CPU", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.witness:
        witness(int(args.witness[0]), Path(args.witness[1]))
        return
    if args.child:
        child(args.child, args.spawned, args.pace, not args.no_scroll, args.scroll_limit)
        return

    print(
        f"gallery benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"platform {os.environ.get('QT_QPA_PLATFORM', 'offscreen')}, scrolling {args.pace} px every 16 ms"
    )
    folders = {n: build_library(n) for n in args.sizes}
    if args.build_only:
        return
    results: dict[int, dict[str, Any]] = {}
    for n, folder in folders.items():
        measure(folder, args.pace, scroll=False)  # warm the OS file cache, not counted
        starts = [measure(folder, args.pace, scroll=False) for _ in range(max(1, args.starts) - 1)]
        full = measure(folder, args.pace, scroll=True, scroll_limit=args.scroll_limit, witnesses=not args.no_witness)
        starts.append(full)
        full["first_screen_worst_s"] = max(s["first_screen_s"] for s in starts)
        for key in ("first_screen_s", "show_to_first_screen_s"):
            full[key] = statistics.median(s[key] for s in starts)
        results[n] = full
        brief = {
            k: round(v, 3) if isinstance(v, float) else v
            for k, v in full.items()
            if k not in ("searches", "gaps_over_16")
        }
        print(f"  {n}: {json.dumps(brief)}", flush=True)
    report(results)


if __name__ == "__main__":
    main()

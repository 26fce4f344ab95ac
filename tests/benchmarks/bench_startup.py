"""Start-up to a window ready for work, with a library of 1,000 images.

    .venv/bin/python tests/benchmarks/bench_startup.py [--runs 5] [--profile]

Every start is a fresh Python process, so interpreter start and imports count. The time
is taken in this (parent) process from just before launching the child to the moment
each of the child's lines arrives. Variants, alternating (their order turning from run to
run), ``--runs`` times each:

(a) bare: QApplication, one QLabel, show(), until the label's first Paint event;
(b) ours: the app as a user starts it, ``python -m krea_desktop``, with
    KREA_DESKTOP_DATA_DIR holding 1,000 images, no API key (demo mode), the failing
    keyring backend and KREA_DESKTOP_REPORT_FIRST_PAINT=1, which makes the app print
    ``first-paint`` when the main window has painted its frame, ``ready`` when the window
    has painted with the prompt (``promptEdit``) holding the focus and the gallery
    (``gallery``) showing the library's first screen of rows (thumbnails may still be
    loading), and ``built`` once the rest (key store, client thread, menus' dialogs'
    wiring, the library folder checked) is made too and painted (then it closes);
(c) ours with an empty library, so that the library's share of (b) shows.

Without a display every child runs on Qt's offscreen platform with a 1920x1080 screen
(``tests/helpers/screen.py``), where the window opens at its first size, 1360x860.

"Ready" is the issue's measure: process start to a painted window whose prompt has the
focus and whose gallery shows the library, at most 2.0x the bare label's first paint
(medians). The first paint's own target is 1.5x.

The package's modules are byte-compiled first (``compileall``), as they are in an
installed wheel or the bundle: with PYTHONDONTWRITEBYTECODE set and no ``__pycache__``,
every start would compile them again (about 100 ms here). The 1,000-image library is
made once through ``Library.save`` (small real PNGs) and kept in a cache folder under
/tmp between runs; one start of the window, not counted, warms its thumbnail cache
(thumbs/). Prints the median and the minimum of each, and the ratios ours/bare. No
assertions.

``--baseline DIR`` adds the app of another checkout (a git worktree of an older commit,
say) on the same library, alternating with the others, for a before/after in one run.

``--profile`` adds the Python enum classes PySide6 makes before each marker line, ours
and bare's (each Qt class's enums are made, as Python enums, when the class is first
used: about 0.2 ms each), ``python -X importtime`` of the app's start (the heaviest
imports, in the order they load, with the moment of each marker line) and a cProfile of
the app's start up to ``ready`` (the most expensive calls).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.helpers.screen import offscreen_platform  # noqa: E402

CACHE = Path(tempfile.gettempdir()) / "krea-bench-startup-cache"
LIBRARY_SIZE = 1000
TARGET = 1.5  # first paint, ours / bare
READY_TARGET = 2.0  # ready, ours / bare's first paint

# The child scripts print "PAINTED <seconds since their first line>" at the first paint.
BARE = r"""
import time
t0 = time.perf_counter()
import os, sys
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QLabel
phases = {"imports": time.perf_counter() - t0}

class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and not getattr(self, "done", False):
            self.done = True
            phases["first paint"] = time.perf_counter() - t0
            print(f"PAINTED {phases['first paint']:.6f}", flush=True)
            print("PHASES " + " ".join(f"{k.replace(' ', '_')}={v:.6f}" for k, v in phases.items()), flush=True)
            QTimer.singleShot(0, app.quit)
        return False

app = QApplication(sys.argv)
phases["app"] = time.perf_counter() - t0
label = QLabel("Krea Desktop")
watcher = FirstPaint()
label.installEventFilter(watcher)
label.show()
app.exec()
sys.stdout.flush()
os._exit(0)
"""

# The app itself, for the figures (its own report of the first paint and of "ready").
OURS = ["-m", "krea_desktop"]
OURS_ENV = {"KREA_DESKTOP_REPORT_FIRST_PAINT": "1"}

# For warming the thumbnail cache, and for --profile: the window built in one go, as
# create_main_window() makes it for the tests.
WARM = r"""
import time
t0 = time.perf_counter()
import asyncio, os, sys
os.environ.setdefault("QT_API", "pyside6")
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication
import qasync
from krea_desktop.ui.app import configure_application, create_main_window
from krea_desktop.ui.theme import apply_dark_palette

WARM = os.environ.get("KREA_BENCH_WARM") == "1"
phases = {"imports": time.perf_counter() - t0}

class FirstPaint(QObject):
    def __init__(self, future):
        super().__init__()
        self.future = future

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and not self.future.done():
            self.future.set_result(time.perf_counter() - t0)
        return False

async def main(app):
    painted = asyncio.get_running_loop().create_future()
    phases["app + loop"] = time.perf_counter() - t0
    window = create_main_window()
    phases["create_main_window"] = time.perf_counter() - t0
    watcher = FirstPaint(painted)
    window.installEventFilter(watcher)
    window.show()
    elapsed = await painted
    phases["first paint"] = elapsed
    print(f"PAINTED {elapsed:.6f}", flush=True)
    print("PHASES " + " ".join(f"{k.replace(' ', '_')}={v:.6f}" for k, v in phases.items()), flush=True)
    if WARM:  # let the gallery make the thumbnails of the rows on screen
        for _ in range(30):
            await asyncio.sleep(0.1)
        window.model.loader.wait(20000)
        await asyncio.sleep(0.5)
        print(f"ROWS {window.model.rowCount()}", flush=True)
    window.close()

app = QApplication(sys.argv)
configure_application(app)
apply_dark_palette(app)
loop = qasync.QEventLoop(app)
asyncio.set_event_loop(loop)
with loop:
    loop.run_until_complete(main(app))
sys.stdout.flush()
os._exit(0)
"""

# The app's own start, profiled up to its "ready" line (then it goes on to "built").
PROFILE_READY = r"""
import cProfile, os, pstats, sys
prof = cProfile.Profile()
prof.enable()
from krea_desktop.ui import app as app_module

said = app_module._StartupReport._say

def say(what):
    said(what)
    if what == "ready":
        prof.disable()
        stats = pstats.Stats(prof, stream=sys.stderr)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(20)

app_module._StartupReport._say = staticmethod(say)
sys.exit(app_module.run_app())
"""


def child_env(data_dir: Path | None, root: Path = ROOT) -> dict[str, str]:
    env = dict(os.environ)
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        # a desktop's screen, so that the window opens at the size it has on one
        env.setdefault("QT_QPA_PLATFORM", offscreen_platform())
    env.pop("RUNWARE_API_KEY", None)
    env.pop("RUNWARE_API_URL", None)
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    if data_dir is not None:
        env["KREA_DESKTOP_DATA_DIR"] = str(data_dir)
    return env


MARKS = ("first-paint", "ready", "built")


def start_once(
    script: str | list[str],
    data_dir: Path | None,
    extra_env: dict[str, str] | None = None,
    phases: dict[str, list[float]] | None = None,
    root: Path = ROOT,
) -> dict[str, float]:
    """Seconds from launch to each line the child prints, as seen here: ``first-paint``
    (a script's ``PAINTED`` line counts as its first paint), ``ready`` and ``built``; a
    script child's phases (seconds since its first line) are added to ``phases``."""
    env = child_env(data_dir, root)
    env.update(extra_env or {})
    args = ["-c", script] if isinstance(script, str) else script
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    seen: dict[str, float] = {}
    for line in proc.stdout:
        word = line.split(" ", 1)[0]
        word = "first-paint" if word == "PAINTED" else word
        if word in MARKS and word not in seen:
            seen[word] = time.perf_counter() - t
        elif word == "PHASES" and phases is not None:
            for item in line.split()[1:]:
                key, value = item.split("=")
                phases.setdefault(key.replace("_", " "), []).append(float(value))
    _, err = proc.communicate(timeout=120)
    if "first-paint" not in seen:
        raise RuntimeError(f"the child never painted (exit {proc.returncode}):\n{err[-3000:]}")
    if isinstance(script, list) and "ready" not in seen:
        raise RuntimeError(f"the app never said it was ready (exit {proc.returncode}):\n{err[-3000:]}")
    return seen


# --- the 1,000-image library ---------------------------------------------------------------------------


def library_for_an_older_app(full: Path) -> Path:
    """A copy of the library that an older checkout can open: its index taken back to
    schema 2 (without the image count that schema 3 keeps). An app refuses an index of a
    newer schema, and would wait, saying so, for its window to be closed."""
    import sqlite3

    copy = full.parent / (full.name + "-older")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(full, copy, ignore=shutil.ignore_patterns("*.lock"))
    conn = sqlite3.connect(copy / "library.sqlite")
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version >= 3:
        conn.executescript(
            "DROP TRIGGER IF EXISTS images_count_insert; DROP TRIGGER IF EXISTS images_count_delete;"
            "DROP TABLE IF EXISTS image_count; PRAGMA user_version = 2;"
        )
    conn.close()
    return copy


def build_library(folder: Path, n: int) -> None:
    from PIL import Image

    from krea_desktop.api.request import GenerationRequest
    from krea_desktop.api.results import GeneratedImage
    from krea_desktop.library.store import Library

    rng = random.Random(1234)
    words = [
        "lighthouse",
        "cliff",
        "fog",
        "harbour",
        "gouache",
        "dusk",
        "forest",
        "river",
        "portrait",
        "study",
        "neon",
        "street",
        "market",
    ]
    lib = Library(folder)
    try:
        for i in range(n):
            prompt = " ".join(rng.choice(words) for _ in range(8)) + f", study {i}"
            req = GenerationRequest(prompt, ratio="2.35:1", seed=rng.randrange(2**31), number_results=4)
            im = Image.new("RGB", (392, 168), tuple(rng.randrange(256) for _ in range(3)))
            im.paste(tuple(rng.randrange(256) for _ in range(3)), (rng.randrange(300), rng.randrange(120), 392, 168))
            out = io.BytesIO()
            im.save(out, "PNG")
            record = req.describe()
            lib.save(
                GeneratedImage(
                    task_uuid=req.task_uuid,
                    image_uuid=str(uuid.uuid4()),
                    data=out.getvalue(),
                    format="PNG",
                    width=im.width,
                    height=im.height,
                    seed=req.seed,
                    cost=0.0038,
                    index=i % 4,
                    record=record,
                )
            )
    finally:
        lib.close()


def prepared_dirs() -> tuple[Path, Path]:
    full = CACHE / f"library-{LIBRARY_SIZE}"
    empty = CACHE / "library-empty"
    if not (full / ".complete").exists():
        shutil.rmtree(full, ignore_errors=True)
        t = time.perf_counter()
        print(f"building a library of {LIBRARY_SIZE} images in {full} (once; kept for later runs)…", flush=True)
        build_library(full, LIBRARY_SIZE)
        (full / ".complete").write_text("")
        print(f"  built in {time.perf_counter() - t:.1f} s", flush=True)
    empty.mkdir(parents=True, exist_ok=True)
    # One start of each, not counted: schema, settings, log folder, and the thumbnails of
    # the rows on screen (the gallery caches them in thumbs/).
    for folder in (full, empty):
        start_once(WARM, folder, {"KREA_BENCH_WARM": "1"})
    thumbs = sum(1 for p in (full / "thumbs").rglob("*.jpg")) if (full / "thumbs").exists() else 0
    print(f"library: {LIBRARY_SIZE} images, {thumbs} cached thumbnails; empty library: {empty}")
    return full, empty


# --- profiling ---------------------------------------------------------------------------------------------


# Installed as a child's sitecustomize: counts the Python enum classes created (PySide6
# makes each Qt class's enums, as Python enums, when the class is first used) and the
# time spent making them, written to stderr as each marker line is printed.
ENUM_PROBE = r"""
import builtins, enum, sys, time
_create = enum.EnumType._create_
_made = [0, 0.0]
def _counted(cls, *args, **kwargs):
    t = time.perf_counter()
    try:
        return _create(cls, *args, **kwargs)
    finally:
        _made[0] += 1
        _made[1] += time.perf_counter() - t
enum.EnumType._create_ = _counted
_print = builtins.print
def _marked(*args, **kwargs):
    if args and isinstance(args[0], str) and args[0].split(" ")[0] in ("PAINTED", "first-paint", "ready", "built"):
        sys.stderr.write(f"ENUMS {args[0].split(' ')[0]} {_made[0]} {_made[1] * 1000:.1f}\n")
    return _print(*args, **kwargs)
builtins.print = _marked
"""


def enum_costs(full: Path, runs: int = 3) -> None:
    """How many of the Qt classes' enums each start makes before each mark, and the time
    that takes (medians of ``runs``)."""
    probe = Path(tempfile.mkdtemp(prefix="krea-enum-probe-"))
    (probe / "sitecustomize.py").write_text(ENUM_PROBE)
    print("\n--- Python enum classes made by PySide6 (a Qt class's enums, on its first use), medians ---")
    try:
        for name, args, extra in (("bare", ["-c", BARE], {}), ("ours", OURS, OURS_ENV)):
            marks: dict[str, list[tuple[int, float]]] = {}
            for _ in range(runs):
                env = child_env(full)
                env.update(extra)
                env["PYTHONPATH"] = str(probe) + os.pathsep + env["PYTHONPATH"]
                proc = subprocess.run(
                    [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
                )
                for line in proc.stderr.splitlines():
                    if line.startswith("ENUMS "):
                        _, mark, count, ms = line.split()
                        mark = "first-paint" if mark == "PAINTED" else mark
                        marks.setdefault(mark, []).append((int(count), float(ms)))
            said = ", ".join(
                f"{mark} {statistics.median(c for c, _ in seen):.0f} in "
                f"{statistics.median(ms for _, ms in seen):.1f} ms"
                for mark, seen in marks.items()
            )
            print(f"  {name:<5} {said}")
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def profile(full: Path) -> None:
    enum_costs(full)
    env = child_env(full)
    env.update(OURS_ENV)
    print("\n--- python -X importtime -m krea_desktop: imports of 2 ms or more, in load order ---")
    proc = subprocess.Popen(
        [sys.executable, "-X", "importtime", *OURS],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    total = 0
    count = 0
    for line in proc.stdout:
        if line.split(" ", 1)[0] in MARKS:
            print(f"  ==== {line.strip()} s since the process started (imports {total / 1000:.1f} ms so far)")
            continue
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        fields = line[len("import time:") :].split("|", 2)
        self_us, cum_us, name = int(fields[0]), int(fields[1]), fields[2].rstrip()
        total += self_us
        count += 1
        depth = (len(name) - len(name.lstrip())) // 2
        if cum_us >= 2000 and depth <= 2:
            print(f"  {cum_us / 1000:8.1f} ms  (self {self_us / 1000:6.1f} ms)  {name}")
    proc.wait(timeout=120)
    print(f"  all imports: {total / 1000:.1f} ms in {count} modules")
    print("\n--- cProfile of the app's start, up to its ready line ---")
    proc2 = subprocess.run(
        [sys.executable, "-c", PROFILE_READY], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    print(proc2.stderr[-12000:])


# --- main ------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5, help="starts of each variant (default 5)")
    parser.add_argument("--profile", action="store_true", help="also profile the app's start")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (e.g. a git worktree of an older commit) whose app also starts, on the "
        "1,000-image library, alternating with the others",
    )
    args = parser.parse_args()

    for root in (ROOT, args.baseline) if args.baseline else (ROOT,):
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "krea_desktop")], check=True)
    full, empty = prepared_dirs()
    start_once(BARE, None)  # warm the OS file cache for the bare start too
    variants: dict[str, tuple[str | list[str], Path | None]] = {
        "bare": (BARE, None),
        "ours": (OURS, full),
        "ours-empty": (OURS, empty),
    }
    if args.baseline:
        variants["baseline"] = (OURS, library_for_an_older_app(full))
    times: dict[str, list[dict[str, float]]] = {k: [] for k in variants}
    phases: dict[str, dict[str, list[float]]] = {k: {} for k in variants}
    names = list(variants)
    for i in range(args.runs):
        # The order turns from run to run, so that no variant always starts right after the
        # same other one (a slot's own effect, one way or the other, is shared out).
        for name in names[i % len(names) :] + names[: i % len(names)]:
            script, folder = variants[name]
            extra = OURS_ENV if isinstance(script, list) else None
            root = args.baseline if name == "baseline" else ROOT
            times[name].append(start_once(script, folder, extra, phases=phases[name], root=root))
        print(
            f"  run {i + 1}: "
            + ", ".join(
                f"{k} " + " / ".join(f"{v[-1][m] * 1000:.0f}" for m in MARKS if m in v[-1]) + " ms"
                for k, v in times.items()
            ),
            flush=True,
        )

    def med(name: str, mark: str = "first-paint") -> float:
        values = [t[mark] for t in times[name] if mark in t]
        return statistics.median(values) if values else float("nan")

    def low(name: str, mark: str = "first-paint") -> float:
        values = [t[mark] for t in times[name] if mark in t]
        return min(values) if values else float("nan")

    bare = med("bare")
    print()
    print(
        f"Start-up, {args.runs} fresh processes each, alternating, launch to the line saying so, as seen "
        "by this process (median / min):"
    )
    labels = {"bare": "(a) bare QLabel", "ours": f"(b) ours, {LIBRARY_SIZE} images", "ours-empty": "(c) ours, empty"}
    if args.baseline:
        labels["baseline"] = f"(d) {args.baseline.name}, {LIBRARY_SIZE}"
    for name, label in labels.items():
        line = f"  {label:24s} first paint {med(name) * 1000:5.0f} / {low(name) * 1000:5.0f} ms"
        if name != "bare":
            line += (
                f"; ready {med(name, 'ready') * 1000:5.0f} / {low(name, 'ready') * 1000:5.0f} ms"
                f"; built {med(name, 'built') * 1000:5.0f} ms"
            )
        print(line)
    inside = ", ".join(f"{k} {statistics.median(v) * 1000:.0f}" for k, v in phases["bare"].items())
    print(f"  (a) inside the child, median ms since its first line: {inside}")
    ratio = med("ours") / bare
    print(
        f"  first paint, ratio ours/bare (median): {ratio:.2f}x (min/min {low('ours') / low('bare'):.2f}x); "
        f"target <= {TARGET}x: {'met' if ratio <= TARGET else 'NOT met'}"
    )
    ready = med("ours", "ready") / bare
    print(
        f"  ready (prompt focused, gallery rows painted), ratio ours/bare first paint (median): {ready:.2f}x "
        f"(min/min {low('ours', 'ready') / low('bare'):.2f}x); target <= {READY_TARGET}x: "
        f"{'met' if ready <= READY_TARGET else 'NOT met'}"
    )
    print(f"  built (key store, client thread, the rest), ratio ours/bare: {med('ours', 'built') / bare:.2f}x")
    print(
        f"  empty library: first paint {med('ours-empty') / bare:.2f}x bare, ready "
        f"{med('ours-empty', 'ready') / bare:.2f}x; the 1,000 images add "
        f"{(med('ours', 'ready') - med('ours-empty', 'ready')) * 1000:.0f} ms to ready"
    )
    if args.baseline:
        print(
            f"  baseline ({args.baseline}, whatever its ready line means there): first paint "
            f"{med('baseline') / bare:.2f}x, ready {med('baseline', 'ready') / bare:.2f}x bare"
        )
    if args.profile:
        profile(full)
    elif ratio > TARGET or ready > READY_TARGET:
        print("  over a target: run with --profile for the heaviest imports and calls")


if __name__ == "__main__":
    main()

"""The one way the window runs blocking work: a shared pool, typed callbacks on the GUI thread."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, QThreadPool
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from krea_desktop.library.store import Library
from krea_desktop.ui.background import BackgroundRunner, ImmediateRunner, shared_pool


def test_results_and_errors_come_back_on_the_gui_thread(qtbot: QtBot) -> None:
    owner = QObject()
    runner = BackgroundRunner(owner)
    seen: list[tuple[str, object, bool]] = []
    gui = threading.get_ident()
    worker_threads: list[int] = []

    def work() -> int:
        worker_threads.append(threading.get_ident())
        return 42

    def boom() -> int:
        raise ValueError("unreadable")

    runner.submit(work, lambda r: seen.append(("done", r, threading.get_ident() == gui)))
    runner.submit(boom, lambda r: seen.append(("done", r, True)), lambda e: seen.append(("failed", str(e), True)))
    qtbot.waitUntil(lambda: len(seen) == 2)
    assert sorted(seen) == [("done", 42, True), ("failed", "unreadable", True)]
    assert worker_threads and worker_threads[0] != gui


def test_every_runner_uses_the_one_shared_pool(qtbot: QtBot) -> None:
    owners = [QObject(), QObject()]
    runners = [BackgroundRunner(o) for o in owners]
    assert shared_pool() is shared_pool()
    for runner, owner in zip(runners, owners, strict=True):
        assert not runner.findChildren(QThreadPool) and not owner.findChildren(QThreadPool)
    assert shared_pool().parent() is QApplication.instance()


def test_a_failure_nobody_handles_is_logged(qtbot: QtBot, caplog: pytest.LogCaptureFixture) -> None:
    runner = BackgroundRunner()
    done: list[object] = []

    def boom() -> None:
        raise OSError("disk gone")

    with caplog.at_level(logging.ERROR, logger="krea_desktop.ui.background"):
        runner.submit(boom, done.append)
        assert runner.wait(5000)
        qtbot.waitUntil(lambda: "background work failed" in caplog.text)
    assert done == []


def test_results_for_a_closed_widget_are_dropped(qtbot: QtBot) -> None:
    owner = QObject()
    runner = BackgroundRunner(owner)
    gate = threading.Event()
    seen: list[object] = []
    runner.submit(lambda: gate.wait(5) and 1, seen.append)
    owner.deleteLater()
    qtbot.waitUntil(lambda: not _alive(runner))
    gate.set()
    qtbot.wait(200)
    assert seen == []


def _alive(obj: QObject) -> bool:
    try:
        obj.objectName()
    except RuntimeError:
        return False
    return True


def test_run_is_awaited_on_the_guis_asyncio_loop(qtbot: QtBot) -> None:
    import qasync

    loop = qasync.QEventLoop(QApplication.instance(), already_running=False)
    runner = BackgroundRunner()

    async def flow() -> int:
        first = await runner.run(lambda: 20)
        return first + await runner.run(lambda: 22)

    assert loop.run_until_complete(flow()) == 42

    async def failing() -> None:
        await runner.run(lambda: 1 / 0)

    try:
        with pytest.raises(ZeroDivisionError):
            loop.run_until_complete(failing())
    finally:
        loop.close()


def test_immediate_runner_for_tests() -> None:
    seen: list[object] = []
    ImmediateRunner().submit(lambda: 1, seen.append)
    ImmediateRunner().submit(lambda: 1 / 0, seen.append, lambda e: seen.append(type(e).__name__))
    assert seen == [1, "ZeroDivisionError"]


def open_files() -> int:
    return len(os.listdir("/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"))


def test_the_library_keeps_one_connection_per_pool_thread_however_many_tasks_it_runs(
    qtbot: QtBot, tmp_path: Path
) -> None:
    # A pool thread runs each task in a new Python thread state: a connection kept in a
    # threading.local was opened again for every task, and its files stayed open.
    with Library(tmp_path / "lib") as library:
        library.count()
        pool = shared_pool()
        counts: list[int] = []
        pool.start(lambda: counts.append(library.count()))
        pool.waitForDone()
        before = open_files()
        for _ in range(30):
            pool.start(lambda: counts.append(library.count()))
            pool.waitForDone()
        assert counts == [0] * 31
        assert open_files() - before <= 3 * (pool.maxThreadCount() - 1)  # a connection is 3 files at most
    assert pool.expiryTimeout() < 0  # its threads, and their connections, stay


# A widget's helper (its BackgroundRunner, the gallery's thumbnail loader and row reader)
# goes with its widget on the GUI thread. A worker that emitted a signal of that helper
# crashed the process when the deletion came while the signal was being emitted (seen at
# the window's close, with thumbnails or a reference still loading).
STRESS = r"""
import sys, time
import shiboken6
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QApplication
from krea_desktop.ui.background import BackgroundRunner, shared_pool

app = QApplication(sys.argv)
delivered = []
for round_ in range(int(sys.argv[1])):
    owner = QObject()
    runner = BackgroundRunner(owner)
    for i in range(40):
        runner.submit(lambda i=i: i, delivered.append)
    time.sleep(0.0005 * (round_ % 7))  # the deletion lands at every point of the workers' emits
    shiboken6.delete(owner)
    app.processEvents()
shared_pool().waitForDone()
app.processEvents()
print("delivered", len(delivered))
"""


def test_deleting_a_runner_while_its_workers_hand_results_back_never_crashes(tmp_path: Path) -> None:
    # Before, one child in two or three crashed (SIGSEGV); three children of 300 rounds.
    import subprocess
    import sys

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONFAULTHANDLER="1")
    for _ in range(3):
        child = subprocess.run(
            [sys.executable, "-c", STRESS, "300"], env=env, capture_output=True, text=True, timeout=120
        )
        assert child.returncode == 0, child.stderr[-2000:]
        # Every owner was deleted before its results could come back: none was delivered.
        assert child.stdout.split() == ["delivered", "0"]


def test_a_worker_hands_back_through_an_object_that_outlives_every_worker(qtbot: QtBot) -> None:
    from krea_desktop.ui import background

    owner = QObject()
    runner = BackgroundRunner(owner)
    gate = threading.Event()
    runner.submit(lambda: gate.wait(5), lambda _r: None)
    poster = background._poster
    assert poster is not None
    # Not the runner's, nor its widget's: the pool's, which waits for its workers before
    # its children go.
    assert poster.parent() is shared_pool()
    assert not runner.findChildren(QObject) and owner.findChildren(QObject) == [runner]
    gate.set()
    assert runner.wait(5000)


def test_thumbnails_and_rows_for_a_closed_gallery_are_dropped(qtbot: QtBot, tmp_path: Path) -> None:
    from krea_desktop.api.request import GenerationRequest
    from krea_desktop.api.results import GeneratedImage
    from krea_desktop.ui.gallery.rows import RowReader
    from krea_desktop.ui.gallery.thumbnails import ThumbnailLoader
    from tests.helpers.images import distinct_png

    with Library(tmp_path / "lib") as library:
        request = GenerationRequest("a red study", ratio="1:1", seed=1)
        entry = library.save(
            GeneratedImage(
                task_uuid=request.task_uuid,
                image_uuid="0e5d8c1e-8a43-4d0e-9a59-3f7f1b2c9d01",
                data=distinct_png(1),
                format="PNG",
                width=64,
                height=64,
                seed=1,
                cost=0.0,
                index=0,
                record=request.describe(),
            )
        )
        owner = QObject()
        loader = ThumbnailLoader(library, parent=owner)
        rows = RowReader(library, parent=owner)
        got: list[object] = []
        loader.loaded.connect(lambda *a: got.append(a))
        rows.read.connect(lambda *a: got.append(a))
        gate = threading.Event()
        shared_pool().start(lambda: gate.wait(5))  # keeps a worker busy...
        for _ in range(background_threads() - 1):
            shared_pool().start(lambda: gate.wait(5))  # ...every worker, so the requests wait
        loader.request(entry)
        rows.request(1, [entry.id])
        shiboken_delete(owner)
        gate.set()
        assert shared_pool().waitForDone(5000)
        qtbot.wait(100)
        assert got == []
        # And a live one still gets them.
        owner = QObject()
        loader = ThumbnailLoader(library, parent=owner)
        rows = RowReader(library, parent=owner)
        loader.loaded.connect(lambda *a: got.append("thumb"))
        rows.read.connect(lambda *a: got.append("rows"))
        loader.request(entry)
        rows.request(1, [entry.id])
        qtbot.waitUntil(lambda: sorted(got) == ["rows", "thumb"])


def background_threads() -> int:
    return shared_pool().maxThreadCount()


def shiboken_delete(obj: QObject) -> None:
    import shiboken6

    shiboken6.delete(obj)


# Each of the workers' jobs that uses Qt, run on a thread of its own in a fresh process
# (types made by one job's imports on the GUI thread would hide another's needs).
WORKER_JOB = r"""
import os, sys, threading
from pathlib import Path
from PIL import Image
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
from krea_desktop.ui.background import shared_pool
shared_pool()  # as the window does before its first worker starts
tmp = Path(sys.argv[2])
png, jpg = tmp / "a.png", tmp / "b.jpg"
Image.new("RGBA", (300, 200), (10, 20, 30, 128)).save(png)
Image.new("RGB", (300, 200), (10, 20, 30)).save(jpg)
job = sys.argv[1]
if job == "thumbnails":
    from krea_desktop.ui.gallery.thumbnails import make_thumbnail
    work = lambda: [make_thumbnail(png, tmp / "t.jpg", 256, side=s) for s in (128, 100)]
elif job == "viewer":
    from krea_desktop.ui.viewer.canvas import decode_image_file, decode_thumbnail_file
    work = lambda: (decode_image_file(jpg), decode_thumbnail_file(png, 56))
elif job == "references":
    from krea_desktop.ui.references.sources import Source, load_source
    sources = [Source("path", png, 1.0), Source("bytes", jpg.read_bytes(), 1.0)]
    work = lambda: [load_source(source, tmp / "refs") for source in sources]
else:
    from krea_desktop.ui.jobs.client_thread import thumbnail_qimage
    work = lambda: thumbnail_qimage(png.read_bytes(), 200, tmp / "c.jpg")
modules = (QtCore, QtGui, QtWidgets)
before = [set(vars(m)) for m in modules]
thread = threading.Thread(target=work)
thread.start()
thread.join()
print(sorted(n for m, b in zip(modules, before) for n in set(vars(m)) - b))
"""


def test_the_workers_jobs_make_no_qt_type_of_their_own(tmp_path: Path) -> None:
    # The binding makes a class's Python type when first needed; two threads doing so at
    # once crashed the process at start-up (a thumbnail worker's QImageReader made
    # QIODevice while the GUI thread made a panel's types). The types the workers need are
    # made on the GUI thread first (background.make_worker_types).
    import subprocess
    import sys

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    jobs = ("thumbnails", "viewer", "references", "client")
    children = []
    for job in jobs:
        folder = tmp_path / job
        folder.mkdir()
        children.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER_JOB, job, str(folder)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for job, child in zip(jobs, children, strict=True):
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err[-2000:]
        assert out.strip() == "[]", f"{job} made on a worker: {out.strip()}"


def test_a_wait_that_returns_finds_the_result_ready_to_deliver(qtbot: QtBot) -> None:
    # A closing window waits for a helper's work, then runs what came back without the
    # event loop; the work used to count as done before its result was handed back.
    from krea_desktop.ui.background import deliver_posted

    owner = QObject()
    runner = BackgroundRunner(owner)
    for round_ in range(300):
        got: list[int] = []
        runner.submit(lambda r=round_: r, got.append)
        assert runner.wait(5000)
        deliver_posted(runner)
        assert got == [round_], round_


def test_delivering_one_helpers_results_leaves_the_others_their_turn(qtbot: QtBot) -> None:
    from krea_desktop.ui.background import deliver_posted

    owners = [QObject(), QObject()]
    mine, other = BackgroundRunner(owners[0]), BackgroundRunner(owners[1])
    got: list[str] = []
    other.submit(lambda: "other", got.append)
    mine.submit(lambda: "mine", got.append)
    assert other.wait(5000) and mine.wait(5000)
    deliver_posted(mine)
    assert got == ["mine"]  # the other's result waits for the event loop
    qtbot.waitUntil(lambda: got == ["mine", "other"])
    qtbot.wait(50)
    assert got == ["mine", "other"]  # each delivered once


def test_once_the_window_has_workers_the_gui_thread_waits_at_most_a_millisecond_for_the_gil() -> None:
    # The pool's workers (rows and thumbnails read while the gallery scrolls) run Python:
    # with Python's default the GUI thread could wait 5 ms for each turn with the GIL.
    code = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from krea_desktop.ui.background import shared_pool\n"
        "app = QApplication(sys.argv)\n"
        "before = sys.getswitchinterval()\n"
        "shared_pool()\n"
        "print(before, sys.getswitchinterval())\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0.005", "0.001"]


def test_a_reference_is_made_ready_on_a_worker_without_qts_format_detection(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``QImage.fromData`` on a worker that holds Python's lock probes the data with Qt's
    SVG plugin, which takes one of Qt's shared signal-slot locks; the GUI thread,
    destroying a widget, can hold that lock while it waits for Python's, and the window
    froze for good (seen once in the suite, in a stack dump of the hung process). The
    worker's job, and the tray's card, decode thumbnails without it."""
    from PIL import Image
    from PySide6.QtGui import QImage

    from krea_desktop.ui.references.sources import Source, load_source

    def refused(*_args: object, **_kwargs: object) -> QImage:
        raise AssertionError("Qt's image format detection on a worker")

    monkeypatch.setattr(QImage, "fromData", staticmethod(refused))
    monkeypatch.setattr(QImage, "loadFromData", refused)
    picture = tmp_path / "a.png"
    Image.new("RGB", (300, 200), (200, 40, 30)).save(picture)
    loaded: list[object] = []
    worker = threading.Thread(target=lambda: loaded.append(load_source(Source("path", picture, 1.0), tmp_path / "r")))
    worker.start()
    worker.join(30)
    (result,) = loaded
    thumbnail = result.thumbnail  # type: ignore[attr-defined]
    assert (thumbnail.width(), thumbnail.height()) == (256, 171)
    assert thumbnail.pixelColor(10, 10).getRgb()[:3] == (200, 40, 30)


HANGING_FILE = r"""
import os, sys, threading, time
from pathlib import Path
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
from krea_desktop.ui import pixels
from krea_desktop.ui.background import shared_pool
from krea_desktop.ui.gallery.thumbnails import make_thumbnail
from krea_desktop.ui.viewer.canvas import ImageUnreadable, decode_image_file, decode_thumbnail_file
shared_pool()  # as the window does before its first worker starts
tmp = Path(sys.argv[1])
hanging = tmp / "stalled.png"
hanging.write_bytes(b"the bytes of no image at all")
answer, answered = os.pipe()  # the drive answers each waiting read with a byte written here
opened = pixels.open_regular_file

class Stalled:
    # The file as a stalled network drive gives it: its first read waits in the kernel
    # (as a read from a drive does, Python's lock let go) until the drive answers.
    def __init__(self, path):
        self.file = opened(path)
        self.waited = False
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self.file.close()
    def fileno(self):
        return self.file.fileno()
    def read(self, n=-1):
        if not self.waited:
            self.waited = True
            os.read(answer, 1)
        return self.file.read(n)

pixels.open_regular_file = Stalled
ended = []

def attempt(name, work):
    try:
        image = work()
        ended.append(f"{name} null" if image.isNull() else f"{name} ?")
    except ImageUnreadable:
        ended.append(f"{name} unreadable")

jobs = {
    "thumbnail": lambda: make_thumbnail(hanging, tmp / "thumbs" / "t.jpg", side=96),
    "small": lambda: decode_thumbnail_file(hanging, 56),
    "full size": lambda: decode_image_file(hanging),
}
workers = [threading.Thread(target=attempt, args=item) for item in jobs.items()]
for worker in workers:
    worker.start()
time.sleep(0.2)
steps = 0
deadline = time.monotonic() + 0.3
while time.monotonic() < deadline:  # the GUI thread's Python, while the readers wait
    steps += 1
print("waiting", sum(worker.is_alive() for worker in workers), "ran", steps > 1000, flush=True)
os.write(answered, b"...")  # the drive answers
for worker in workers:
    worker.join(10)
print("ended", sorted(ended), flush=True)
"""


def test_a_library_file_that_hangs_on_reading_leaves_the_gui_thread_running(tmp_path: Path) -> None:
    """A thumbnail or a full-size image read from a file that does not answer (a stalled
    network drive: here its reads wait on a pipe nobody writes to) holds up its worker,
    never the window: the workers read the bytes in Python, which lets go of its lock
    while the disk answers (``QImageReader.size()`` on a path held it). The window's
    Python runs on meanwhile, and each read ends once the file answers. (A named pipe in
    the file's place is refused at once: test_pixels.)"""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    child = subprocess.Popen(
        [sys.executable, "-c", HANGING_FILE, str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = child.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        pytest.fail(f"the GUI thread's Python stood still while a worker waited on the file: {out!r}")
    assert child.returncode == 0, err[-2000:]
    assert out.splitlines() == [
        "waiting 3 ran True",  # all three wait on the file, and Python ran beside them
        "ended ['full size unreadable', 'small unreadable', 'thumbnail null']",
    ]

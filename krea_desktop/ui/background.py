"""The one way the window runs blocking work (decoding, reading files, downloads).

Work runs on one thread pool shared by the whole window, at a lower CPU priority than
the GUI thread; its result (or error) comes back on the GUI thread to typed callbacks:
``runner.submit(work, done, failed)``, or ``await runner.run(work)`` in a flow that
awaits on the GUI's asyncio loop (qasync). Each widget owns a :class:`BackgroundRunner`
so that results for a widget that has gone away are dropped, not delivered. Tests pass
an :class:`ImmediateRunner` to run everything synchronously.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import shiboken6
from PySide6 import QtCore, QtGui
from PySide6.QtCore import QCoreApplication, QObject, QRunnable, QThreadPool, Signal

T = TypeVar("T")
Done = Callable[[T], object]
Failed = Callable[[BaseException], object]

log = logging.getLogger(__name__)

# The gallery's thumbnail loader takes at most two of these, so a decode the user waits
# for (the viewer, a dropped reference) always finds a free worker; few enough that the
# GUI thread does not queue behind many holders of the GIL.
POOL_THREADS = 4
_pool: QThreadPool | None = None
_poster: _Poster | None = None


# The binding makes a Qt class's Python type the first time anything needs it, and making
# two at once on two threads crashes it (its table of types still to make is changed by
# one while the other walks it): a thumbnail worker's QImageReader(path) made QIODevice
# while the GUI thread made a panel's types, in about 1 start of 40 on a loaded machine.
# The types the workers' code needs (the image readers' arguments and results) are made
# here, on the GUI thread, before any worker starts. tests/ui/test_background.py checks
# that the workers' code makes no other.
_WORKER_TYPES = (
    (QtCore, ("QByteArray", "QIODeviceBase", "QIODevice", "QBuffer", "QFileDevice", "QFile", "QSize")),
    (QtGui, ("QImage", "QImageReader")),
)
_worker_types_made = False

# Qt loads an image format's plugin the first time a reader needs it, and moves the
# plugin's object to the GUI thread as it does: an event sent there, which the binding
# offers to Python first (it takes Python's lock) while the plugin loader's lock is held.
# A worker's first JPEG did that while the GUI thread, holding Python's lock, made an
# icon (QStyle.standardIcon asks the same loader): each waited for the other for good, in
# about 1 run of 30 of tests/reliability/decode_child.py on a loaded machine. The formats
# the workers read whose readers are plugins are loaded here, on the GUI thread, first.
_PLUGIN_FORMATS = (b"jpeg", b"gif", b"webp")


def make_worker_types() -> None:
    """Make the Python types of the Qt classes that code on other threads uses, if not
    made yet. On the GUI thread, before a thread that decodes images starts."""
    global _worker_types_made
    if _worker_types_made:
        return
    for module, names in _WORKER_TYPES:
        for name in names:
            getattr(module, name)
    _load_image_plugins()
    _worker_types_made = True


def _load_image_plugins() -> None:
    """Have Qt load the readers of :data:`_PLUGIN_FORMATS` now, on this (the GUI) thread:
    a reader asked whether it can read an empty buffer makes its format's handler, which
    loads the plugin."""
    for fmt in _PLUGIN_FORMATS:
        buffer = QtCore.QBuffer()
        buffer.open(QtCore.QIODevice.OpenModeFlag.ReadOnly)
        reader = QtGui.QImageReader(buffer, fmt)
        reader.setDecideFormatFromContent(False)
        reader.canRead()
        buffer.close()


def shared_pool() -> QThreadPool:
    """The window's one pool for blocking work (made on first use, on the GUI thread)."""
    global _pool, _poster
    if _pool is None:
        make_worker_types()
        share_the_gil_often()
        _pool = QThreadPool(QCoreApplication.instance())
        _pool.setMaxThreadCount(POOL_THREADS)
        # Its threads stay: a thread that used the library keeps its connection for the
        # next task it runs (a new thread would open another).
        _pool.setExpiryTimeout(-1)
        _pool.destroyed.connect(_forget_pool)
        # The pool's child: deleted only after the pool's destructor has waited for every
        # worker, so a worker can always post through it.
        _poster = _Poster(_pool)
    return _pool


# A thread waiting for the GIL gets it after at most this long (Python's default: 5 ms).
# Shorter is not better: at 0.2 ms the client thread also takes the GIL from the GUI
# thread in the middle of its painting that much more often (bench_load.py: 31 ms median
# stall against 18 ms at 1 ms).
SWITCH_INTERVAL = 0.001


def share_the_gil_often() -> None:
    """Once other threads of the window run Python (the pool's workers reading rows and
    thumbnails, the client thread): the GUI thread waits at most SWITCH_INTERVAL for the
    GIL to paint, not Python's 5 ms."""
    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))


def _forget_pool(*_args: object) -> None:
    global _pool, _poster
    _pool = None
    _poster = None


class _Poster(QObject):
    # Lives on the GUI thread; emitting from another thread queues a wake-up to it. The
    # calls wait in a queue of their own, so that one owner's can be run at once
    # (deliver_posted) while the others keep their turn.
    posted = Signal()

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._calls: deque[tuple[QObject, Callable[..., object], tuple[object, ...]]] = deque()
        self.posted.connect(self._call_next)

    def add(self, owner: QObject, fn: Callable[..., object], args: tuple[object, ...]) -> None:
        with self._lock:
            self._calls.append((owner, fn, args))
        self.posted.emit()

    def _call_next(self) -> None:
        # One call per wake-up (each post sends one), so that paints come between them;
        # a wake-up whose call was already run by deliver_posted finds one fewer.
        with self._lock:
            if not self._calls:
                return
            owner, fn, args = self._calls.popleft()
        if shiboken6.isValid(owner):
            fn(*args)

    def take(self, owner: QObject) -> list[tuple[Callable[..., object], tuple[object, ...]]]:
        with self._lock:
            mine = [(fn, args) for o, fn, args in self._calls if o is owner]
            if mine:
                self._calls = deque(call for call in self._calls if call[0] is not owner)
        return mine


def post(owner: QObject, fn: Callable[..., object], *args: object) -> None:
    """From a worker of the shared pool (or any thread, once the pool exists): call
    ``fn(*args)`` on the GUI thread, unless ``owner`` has been deleted by then.

    A worker must not emit a signal of an object the GUI thread may delete (a widget's
    helper that goes with its widget): if the deletion comes while the signal is being
    emitted, the process crashes. Everything a worker hands back goes through here."""
    poster = _poster
    if poster is None:  # the application, and its pool, are gone: nobody is left to tell
        return
    poster.add(owner, fn, args)


def lower_priority() -> None:
    """Give the calling thread a lower CPU priority than the GUI thread (Linux: a nice
    value per thread), so that on a busy machine the scheduler runs the GUI first."""
    if hasattr(os, "setpriority") and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def _log_failure(error: BaseException) -> None:
    log.error("background work failed", exc_info=error)


class Runner(Protocol):
    def submit(self, work: Callable[[], T], done: Done[T], failed: Failed | None = None) -> None: ...


def deliver_posted(owner: QObject) -> None:
    """Call now, on the GUI thread, what the workers have handed back to ``owner`` so far,
    without running the event loop (a closing window that waited for a helper's work
    uses this); what they handed to others keeps its turn."""
    poster = _poster
    if poster is None or not shiboken6.isValid(owner):
        return
    for fn, args in poster.take(owner):
        fn(*args)


class _Job(QRunnable):
    def __init__(self, work: Callable[[], Any], runner: BackgroundRunner, deliver: Callable[[Any, Any], None]) -> None:
        super().__init__()
        self._work = work
        self._runner = runner
        self._deliver = deliver

    def run(self) -> None:
        lower_priority()
        try:
            try:
                result: Any = self._work()
                error: BaseException | None = None
            except Exception as exc:
                result, error = None, exc
            post(self._runner, self._deliver, result, error)  # dropped if the runner has gone
        finally:
            # Counted as done once its result is handed back: a wait() that returns finds
            # it waiting for the GUI thread (deliver_posted can run it).
            self._runner._job_done()


class BackgroundRunner(QObject):
    """Submits work to the shared pool on behalf of one widget (its parent)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._in_flight = 0
        self._idle = threading.Condition()

    def submit(self, work: Callable[[], T], done: Done[T], failed: Failed | None = None) -> None:
        with self._idle:
            self._in_flight += 1

        def deliver(result: Any, error: BaseException | None) -> None:
            if error is None:
                done(result)
            else:
                (failed or _log_failure)(error)

        shared_pool().start(_Job(work, self, deliver))

    def _job_done(self) -> None:  # on the worker
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    async def run(self, work: Callable[[], T]) -> T:
        """Run ``work`` in the pool and await its result on the GUI's asyncio loop."""
        import asyncio  # only flows that await need it; the window's first paint does not

        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()

        def done(result: T) -> None:
            if not future.done():
                future.set_result(result)

        def failed(error: BaseException) -> None:
            if not future.done():
                future.set_exception(error)

        self.submit(work, done, failed)
        return await future

    def wait(self, msecs: int = -1) -> bool:
        """Block until this runner's work has run (its callbacks come with the next event
        processing); for tests and shutdown."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, None if msecs < 0 else msecs / 1000)


class ImmediateRunner:
    """Runs work at once on the calling thread (for tests)."""

    def submit(self, work: Callable[[], T], done: Done[T], failed: Failed | None = None) -> None:
        try:
            result = work()
        except Exception as exc:
            (failed or _log_failure)(exc)
        else:
            done(result)

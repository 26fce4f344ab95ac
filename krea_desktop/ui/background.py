"""Running short blocking work (decoding, downloading) on a thread pool.

The work reports back as ``callback(result, error)`` on the GUI thread. Tests can pass an
:class:`ImmediateRunner` to run everything synchronously and deterministically.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

Callback = Callable[[Any, "BaseException | None"], None]


class Runner(Protocol):
    def submit(self, work: Callable[[], Any], callback: Callback) -> None: ...


class _Relay(QObject):
    # Lives on the GUI thread; emitting from a worker queues the call to the GUI thread.
    finished = Signal(object, object)


class _Job(QRunnable):
    def __init__(self, work: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self._work = work
        self._relay = relay

    def run(self) -> None:
        lower_priority()
        try:
            result: Any = self._work()
            error: BaseException | None = None
        except Exception as exc:
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the receiver went away meanwhile
            self._relay.finished.emit(result, error)


def lower_priority() -> None:
    """Give the calling thread a lower CPU priority than the GUI thread (Linux: a nice
    value per thread), so that on a busy machine the scheduler runs the GUI first."""
    if hasattr(os, "setpriority") and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


class BackgroundRunner(QObject):
    """Runs work on a private pool so image loading never competes with the client."""

    def __init__(self, max_threads: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._relays: set[_Relay] = set()

    def submit(self, work: Callable[[], Any], callback: Callback) -> None:
        relay = _Relay(self)
        self._relays.add(relay)

        def deliver(result: Any, error: BaseException | None) -> None:
            self._relays.discard(relay)
            relay.deleteLater()
            callback(result, error)

        relay.finished.connect(deliver)
        self._pool.start(_Job(work, relay))

    def wait(self, msecs: int = -1) -> bool:
        return self._pool.waitForDone(msecs)


class ImmediateRunner:
    """Runs work at once on the calling thread (for tests)."""

    def submit(self, work: Callable[[], Any], callback: Callback) -> None:
        try:
            result = work()
        except Exception as exc:
            callback(None, exc)
        else:
            callback(result, None)

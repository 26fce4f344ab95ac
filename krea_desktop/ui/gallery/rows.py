"""Reading the gallery's rows from the library ahead of the view, on a worker.

A row's entry (prompt, size, flags) comes from the library's index. Read on the GUI
thread when a cell is first painted, a page whose index pages are not in memory (a large
library after a restart, or pages the system dropped while they were not used) waits on
the disk while the view is scrolling: 1.5 ms a page in the median and 13 ms at worst on an
SSD, far more on a spinning or network disk. The model asks for the pages next to the one
on screen here instead, and the GUI thread reads the index itself only when the view
jumps further than that.
"""

from __future__ import annotations

import logging
import threading

from PySide6.QtCore import QObject, QRunnable, Signal

from krea_desktop.library.store import Library
from krea_desktop.ui.background import lower_priority, post, shared_pool

log = logging.getLogger(__name__)

MAX_WAITING = 4  # pages queued at most: the newest are for where the view is now


class _RowWorker(QRunnable):
    """Reads the waiting pages until none is left (the newest first)."""

    def __init__(self, reader: RowReader) -> None:
        super().__init__()
        self.reader = reader

    def run(self) -> None:
        lower_priority()
        reader = self.reader
        while (job := reader._next_job()) is not None:
            generation, ids = job
            try:
                found = reader.library.get_many(ids)
            except Exception:  # the library closed, or its file failed: the GUI reads the rows itself
                log.warning("reading %d gallery rows ahead failed", len(ids), exc_info=True)
                found = {}
            reader._done(generation, ids, list(found.values()))


class RowReader(QObject):
    """Reads pages of library entries by id on one worker of the shared pool.

    :attr:`read` carries the ``generation`` the page was asked for with (the model drops
    pages asked for before its rows or entries last changed), the ids asked for and the
    entries found (fewer when some were deleted meanwhile).
    """

    read = Signal(int, list, list)  # generation, ids asked for, LibraryEntry found

    def __init__(self, library: Library, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queue: list[tuple[int, list[int]]] = []  # oldest first
        self._working = False
        self._held = False

    def request(self, generation: int, ids: list[int]) -> list[list[int]]:
        """Queue a page; returns the pages dropped to make room (the oldest), whose ids
        will not be read."""
        if not ids:
            return []
        with self._lock:
            self._queue.append((generation, ids))
            dropped = [page for _, page in self._queue[:-MAX_WAITING]]
            del self._queue[:-MAX_WAITING]
            start = self._take_the_worker()
        if start:
            shared_pool().start(_RowWorker(self))
        return dropped

    def hold(self) -> None:
        """Read nothing until :meth:`release`: pages asked for wait (the newest kept)."""
        with self._lock:
            self._held = True

    def release(self) -> None:
        """Read the pages asked for while held."""
        with self._lock:
            self._held = False
            start = self._take_the_worker()
        if start:
            shared_pool().start(_RowWorker(self))

    def _take_the_worker(self) -> bool:
        """Whether a worker is to be started for the waiting pages (with the lock held)."""
        if self._working or self._held or not self._queue:
            return False
        self._working = True
        return True

    def _next_job(self) -> tuple[int, list[int]] | None:
        with self._lock:
            if self._held or not self._queue:  # held: release() starts a worker again
                self._working = False
                self._idle.notify_all()
                return None
            return self._queue.pop()

    def _done(self, generation: int, ids: list[int], entries: list[object]) -> None:
        post(self, self.read.emit, generation, ids, entries)  # dropped if the gallery has gone

    def wait(self, msecs: int = -1) -> bool:
        """Block until no page is being read (tests and shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._working, None if msecs < 0 else msecs / 1000)

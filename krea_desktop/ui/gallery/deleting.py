"""Deleting gallery images with time to change one's mind: the files are held aside (see
:mod:`krea_desktop.library.trash`) and go to the system trash when the undo window
closes, or when the app exits."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PySide6.QtCore import QObject, QTimer, Signal

from krea_desktop.library.store import Library, LibraryEntry
from krea_desktop.library.trash import PendingTrash, TrashBatch
from krea_desktop.ui.background import Runner
from krea_desktop.wording import counted, for_count

UNDO_WINDOW_MS = 60_000

ShowMessage = Callable[..., None]


class UndoableDelete(QObject):
    """Each deletion is a batch that can be undone for :data:`UNDO_WINDOW_MS`; then its
    files go to the system trash off the GUI thread. Files held by an earlier run that
    ended without sending them are sent at start."""

    undoableChanged = Signal()  # a batch's undo window closed
    filesReturned = Signal(list)  # entry ids whose files a delete cut short had left aside
    undoFinished = Signal(int)  # files an Undo cut short (the app killed) had left aside, now back

    def __init__(self, library: Library, *, runner: Runner, show_message: ShowMessage, parent: QObject) -> None:
        super().__init__(parent)
        self.trash = PendingTrash(library)
        self.runner = runner
        self.show_message = show_message
        self._timers: dict[int, QTimer] = {}
        QTimer.singleShot(0, self._flush_leftovers)

    def can_undo(self) -> bool:
        return bool(self.trash.batches)

    def delete(self, entries: Iterable[LibraryEntry]) -> TrashBatch | None:
        """Move ``entries`` aside; the batch holds those that were (None: nothing to delete).
        Blocks on the index: the window calls ``trash.delete`` off the GUI thread and then
        :meth:`held`."""
        batch = self.trash.delete(entries)
        if batch is not None and batch.entries:
            self.held(batch)
        return batch

    def held(self, batch: TrashBatch) -> None:
        """Start ``batch``'s undo window (on the GUI thread)."""
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(UNDO_WINDOW_MS)
        timer.timeout.connect(lambda b=batch: self._undo_window_closed(b))
        timer.start()
        self._timers[id(batch)] = timer

    def undo(self, batch: TrashBatch | None = None) -> TrashBatch | None:
        """Bring back ``batch`` (default: the latest still undoable); None if there is none.
        Safe off the GUI thread: its undo window then closes without effect."""
        return self.trash.undo(batch)

    def _undo_window_closed(self, batch: TrashBatch) -> None:
        self._timers.pop(id(batch), None)  # (after an undo, release() below says so)
        if not self.trash.release(batch):
            return  # undone meanwhile
        self.undoableChanged.emit()
        self.runner.submit(lambda: self.trash.flush(batch), self._report_trash)

    def _report_trash(self, failed: list[str]) -> None:
        if failed:
            them = for_count(len(failed), "it was", "they were")
            self.show_message(f"The system trash refused {counted(len(failed), 'file')}; {them} deleted instead.")

    def _flush_leftovers(self) -> None:
        self.runner.submit(self.trash.flush_leftovers, self._leftovers_flushed)

    def _leftovers_flushed(self, failed: list[str]) -> None:
        if self.trash.returned:
            self.filesReturned.emit(list(self.trash.returned))
        if self.trash.undone_files:
            self.undoFinished.emit(len(self.trash.undone_files))
        self._report_trash(failed)

    def shutdown(self) -> None:
        """On exit: deleted images go to the system trash now; nothing is left held."""
        for timer in self._timers.values():
            timer.stop()
        self._timers.clear()
        self.trash.flush()

"""Running a sweep from the window: references uploaded once, then the cells sent as jobs
of the client thread (a few at a time), each image put in its place on the contact sheet,
and the sheet saved into the library when the last cell has ended (or, with what arrived,
when the window closes first)."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from krea_desktop.api import errors as E
from krea_desktop.library.sheet import SheetCell, save_sheet
from krea_desktop.library.store import Library, LibraryEntry, LibraryError
from krea_desktop.models.jobs import FINISHED, Job, JobQueue
from krea_desktop.models.sweep import Cell, SweepPlan
from krea_desktop.ui.background import Runner, post, shared_pool
from krea_desktop.ui.sweep.sheet_view import ContactSheet
from krea_desktop.user_words import IN_THE_ENVIRONMENT, as_the_app_says, where_the_key_is

if TYPE_CHECKING:
    from krea_desktop.ui.jobs.client_thread import ClientThread

IN_FLIGHT = 4  # cells sent at once

log = logging.getLogger(__name__)


class SweepRun(QObject):
    """One sweep in progress. ``finished`` carries the saved sheet's entry (None when it
    could not be saved); ``message`` one sentence for the window about something that went
    wrong, ``serviceMessage`` one about the service as the key and address reach it (which
    a new key or address withdraws), ``notice`` one about how it ended that is no failure
    (cancelled before any image)."""

    finished = Signal(object)
    message = Signal(str)
    serviceMessage = Signal(str)
    notice = Signal(str)
    sheetSaved = Signal(object)  # the sheet's LibraryEntry

    def __init__(
        self,
        plan: SweepPlan,
        *,
        client_thread: ClientThread,
        jobs: JobQueue,
        library: Library,
        runner: Runner,
        sheet: ContactSheet,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.plan = plan
        # The contact sheet on screen; None once the user has closed it (it is deleted on
        # close): the sweep goes on, and its sheet is still saved into the library.
        self.sheet: ContactSheet | None = None
        self._client_thread = client_thread
        self._jobs = jobs
        self._library = library
        self._runner = runner
        self._queue: list[Cell] = plan.cells()
        self._running: dict[int, Cell] = {}  # job id -> its cell
        self._results: dict[tuple[int, ...], SheetCell] = {}
        self._cancelled = False
        self._said_why = False  # why no cell was sent, said already
        self._ended = False
        shared_pool()  # made on this (the GUI) thread: the client thread posts through it
        self._subscriptions: list[tuple[Any, Callable[..., None]]] = [
            (jobs.image, self._image),
            (jobs.ended, self._job_ended),
        ]
        for event, handler in self._subscriptions:
            event.connect(handler)
        self.attach(sheet)

    def attach(self, sheet: ContactSheet) -> None:
        """Follow the sweep on ``sheet`` (its first, or one reopened once the first was
        closed): its cells as they stand now, then each as it arrives, and its Cancel."""
        self.sheet = sheet
        sheet.destroyed.connect(lambda: self._sheet_closed(sheet))
        sheet.cancelRequested.connect(self.cancel)
        for place, result in self._results.items():
            if result.error:
                sheet.set_failed(place, result.error)
        for cell in self._running.values():
            if cell.place not in self._results:
                sheet.cells[cell.place].set_waiting("Generating…")
        sheet.set_running(not self._ended)

    def _sheet_closed(self, sheet: ContactSheet) -> None:
        if self.sheet is sheet:
            self.sheet = None

    @property
    def cancelled(self) -> bool:
        """Cancel was asked for (or the window closed): no more cells are sent."""
        return self._cancelled

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def job_ids(self) -> set[int]:
        return set(self._running)

    def start(self) -> None:
        """Upload every reference once (so no two cells upload it), then send the cells."""
        if self.sheet is not None:
            self.sheet.set_running(True)
        references = self.plan.base.references
        if not references:
            self._send_more()
            return

        async def prime(client: Any) -> None:
            for ref in references:
                await client.resolve_reference(ref)

        future = self._client_thread.run_coroutine(prime)
        future.add_done_callback(lambda f: post(self, self._primed, f.exception()))

    def cancel(self) -> None:
        """Send no more cells, cancel those running; what arrived is kept."""
        self._cancelled = True
        for cell in self._queue:
            self._fail(cell.place, "Cancelled before it was sent.")
        self._queue.clear()
        for job_id in list(self._running):
            self._client_thread.cancel(job_id)
        self._maybe_end()

    # -- inside --------------------------------------------------------------------------

    def _primed(self, error: BaseException | None) -> None:
        if self._ended or self._cancelled:
            return  # cancelled while its references uploaded: that was said; nothing more to send
        if error is not None:
            text = (
                as_the_app_says(error, where_the_key_is())
                if isinstance(error, E.KreaError)
                else f"an unexpected error ({type(error).__name__})"
            )
            # What a new key or address puts right is withdrawn by one; not a key the
            # environment sets, which Settings cannot change.
            env_key = isinstance(error, E.AuthenticationError) and where_the_key_is() == IN_THE_ENVIRONMENT
            said = self.serviceMessage if E.said_of_the_service(error) and not env_key else self.message
            said.emit(f"The sweep was not sent because a reference could not be uploaded: {text}")
            self._said_why = True  # that sentence is the one to read, not "no cell made an image"
            for cell in self._queue:
                self._fail(cell.place, "Not sent: a reference could not be uploaded.")
            self._queue.clear()
            self._maybe_end()
            return
        self._send_more()

    def _send_more(self) -> None:
        while self._queue and len(self._running) < IN_FLIGHT and not self._cancelled:
            cell = self._queue.pop(0)
            job_id = self._client_thread.submit(cell.request)
            self._running[job_id] = cell
            self._jobs.add(job_id, cell.request)
            if self.sheet is not None:
                self.sheet.cells[cell.place].set_waiting("Generating…")

    def _image(self, job: Job | None, entry: LibraryEntry, thumbnail: Any) -> None:
        cell = self._running.get(job.job_id) if job is not None else None
        if cell is None:
            return
        self._results[cell.place] = SheetCell(cell.place, entry.image_uuid, entry.path)
        if self.sheet is not None:
            self.sheet.set_image(cell.place, entry, thumbnail)

    def _job_ended(self, job: Job) -> None:
        cell = self._running.pop(job.job_id, None)
        if cell is None:
            return
        if cell.place not in self._results:
            if job.held:  # it came, and waits for the library to take it
                said = "Its image waits to be saved in the library, so it is not on this sheet."
            else:
                said = job.message if job.state != FINISHED else "The service sent no image."
            self._fail(cell.place, said)
        self._send_more()
        self._maybe_end()

    def _fail(self, place: tuple[int, ...], error: str) -> None:
        self._results[place] = SheetCell(place, error=error)
        if self.sheet is not None:
            self.sheet.set_failed(place, error)

    def _save_sheet(self, cells: list[SheetCell]) -> LibraryEntry:
        """Draw the sheet of ``cells`` and save it into the library (any thread)."""
        plan = self.plan
        return save_sheet(self._library, plan.base.describe(), plan.tag(), cells, plan.base.size, plan.reference_names)

    def end_now(self, reason: str) -> LibraryEntry | None:
        """End the sweep at once (the window is closing): the cells still to come are marked
        with ``reason`` and the sheet of what arrived is saved now, on this thread. Returns
        it; None when no image had arrived, or the sheet could not be saved (logged)."""
        if self._ended:
            return None
        self._cancelled = True
        # Images the client saved whose arrival the window had not yet seen are in the
        # library, each tagged with its place.
        with contextlib.suppress(LibraryError, sqlite3.Error):
            for entry in self._library.sweep_entries(self.plan.tag().id):
                tag = entry.record.sweep
                if tag is None or tag.is_sheet:
                    continue
                known = self._results.get(tag.place)
                if known is None or not known.image_uuid:
                    self._results[tag.place] = SheetCell(tag.place, entry.image_uuid, entry.path)
        for cell in [*self._queue, *self._running.values()]:
            self._results.setdefault(cell.place, SheetCell(cell.place, error=reason))
        self._queue.clear()
        self._running.clear()
        cells = self._end()
        if not any(cell.image_uuid for cell in cells):
            return None
        try:
            return self._save_sheet(cells)
        except Exception:  # the window is closing: the images themselves are in the library
            log.exception("the contact sheet of sweep %s could not be saved", self.plan.tag().id)
            return None

    def _end(self) -> list[SheetCell]:
        """Stop following the jobs; every cell's outcome, in the plan's order."""
        self._ended = True
        for event, handler in self._subscriptions:
            event.disconnect(handler)
        if self.sheet is not None:
            self.sheet.set_running(False)
        return [self._results.get(c.place, SheetCell(c.place, error="Not made.")) for c in self.plan.cells()]

    def _maybe_end(self) -> None:
        if self._ended or self._queue or self._running:
            return
        cells = self._end()
        if not any(cell.image_uuid for cell in cells):
            # A contact sheet of errors alone is no picture worth keeping (as on the command line).
            if self._cancelled:  # as asked: no failure to report
                self.notice.emit("The sweep was cancelled before any image arrived; no contact sheet was saved.")
            elif not self._said_why:
                self.message.emit("No cell of the sweep made an image, so no contact sheet was saved.")
            self.finished.emit(None)
            return

        def saved(entry: LibraryEntry) -> None:
            if self.sheet is not None:
                self.sheet.set_saved(entry)
            self.sheetSaved.emit(entry)
            self.finished.emit(entry)

        def failed(error: BaseException) -> None:
            self.message.emit(f"The sweep's images are saved, but its contact sheet could not be: {error}")
            self.finished.emit(None)

        self._runner.submit(lambda: self._save_sheet(cells), saved, failed)

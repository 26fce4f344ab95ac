"""The client thread: a QThread with its own asyncio loop and one long-lived client.

Jobs go in thread-safely (``submit``, ``cancel``); progress and results come back as Qt
signals, which reach GUI-thread receivers through queued connections. Decoding, checking,
saving into the library and making the thumbnails (a QImage, never a QPixmap, and the
gallery's cached file) all happen here or on the loop's worker threads, never on the GUI
thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import io
import itertools
import logging
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QThread, Signal
from PySide6.QtGui import QImage

from krea_desktop.api import errors as E
from krea_desktop.api.record import GenerationRecord
from krea_desktop.api.request import GenerationRequest
from krea_desktop.api.results import GeneratedImage
from krea_desktop.library.pending import PendingTask, PendingTasks, set_aside_notice
from krea_desktop.library.saving import SaveQueue, check_writable
from krea_desktop.library.store import Library, LibraryEntry, LibraryError
from krea_desktop.ui.background import lower_priority, make_worker_types, share_the_gil_often
from krea_desktop.ui.gallery.thumbnails import THUMB_SIZE as CACHE_SIDE
from krea_desktop.ui.gallery.thumbnails import cached_size, store_thumbnail
from krea_desktop.ui.pixels import qimage_of
from krea_desktop.user_words import as_the_app_says, where_the_key_is

if TYPE_CHECKING:  # the client (httpx) is imported where it is made, after start-up
    from krea_desktop.api.client import RunwareClient
    from krea_desktop.pillow import Image

log = logging.getLogger(__name__)

THUMB_SIZE = 256


def thumbnail_qimage(data: bytes, size: int = THUMB_SIZE, cache: Path | None = None) -> QImage:
    """A QImage of encoded image bytes at most ``size`` pixels across (safe on any thread).

    With ``cache``, the gallery's cached thumbnail (read back by
    :func:`~krea_desktop.ui.gallery.thumbnails.make_thumbnail`) is written there from the
    same decode, so the image is decoded once.
    """
    from krea_desktop.pillow import Image, open_image

    cached: Image.Image | None = None
    with open_image(io.BytesIO(data)) as im:
        width, height = im.size
        largest = max(size, CACHE_SIDE) if cache is not None else size
        im.draft("RGB", (largest, largest))  # JPEG decodes at a reduced scale
        if cache is not None:
            box = cached_size(width, height, CACHE_SIDE)
            cached = im.resize(box, Image.Resampling.BILINEAR, reducing_gap=2.0).convert("RGB")
        im.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
        rgba = im.convert("RGBA")
    if cached is not None and cache is not None:
        try:
            store_thumbnail(qimage_of(cached), cache)
        except OSError as exc:  # the gallery makes it itself when it is not there
            log.warning("could not write the thumbnail %s: %s", cache, exc)
    return qimage_of(rgba)


def save_and_thumbnail(
    saver: SaveQueue, image: GeneratedImage | None, size: int = THUMB_SIZE
) -> list[tuple[LibraryEntry, QImage]]:
    """Save ``image`` (after any held before it; None: only those held) and write each
    saved image's cached gallery thumbnail; returns the entries saved now, each with a
    thumbnail ``size`` pixels across (none when the library cannot take images just now)."""
    out = []
    for entry in saver.save(image) if image is not None else saver.retry():
        data = image.data if image is not None and entry.image_uuid == image.image_uuid else entry.path.read_bytes()
        cache = saver.library.thumb_path(entry.image_uuid, CACHE_SIDE)
        out.append((entry, thumbnail_qimage(data, size, cache)))
    return out


async def _finished(saving: asyncio.Future[int]) -> int:
    """The images ``saving`` counted once it is over, however often the job is cancelled
    meanwhile (Cancel pressed again, the grace period over): a save is short, and a job
    that stopped waiting for it would never say it ended. 0 if it failed (logged)."""
    while not saving.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(saving)
    if saving.cancelled():
        return 0
    error = saving.exception()
    if error is not None:
        log.error("saving an image as its job was cancelled failed", exc_info=error)
        return 0
    return saving.result()


# After a cancel, how long the images a job already holds may take to be saved before the
# job is ended all the same (a download that does not end).
CANCEL_GRACE_S = 10.0
# How often images the library could not take (a full disk) are tried again, with no new
# image arriving to try them.
HELD_RETRY_S = 5.0


class ClientThread(QThread):
    """Runs jobs on the client, saves their images, and keeps the paid work: each task is
    recorded until its images are saved (see :mod:`krea_desktop.library.pending`), images
    the library cannot take yet are held and saved later, and tasks a process that ended
    left behind are collected as jobs of their own (:meth:`collect_abandoned`)."""

    jobStarted = Signal(int, object)  # job id, GenerationRequest
    jobStatus = Signal(int, str)  # job id, one-line status
    imageReady = Signal(int, object, QImage)  # job id, LibraryEntry, thumbnail
    jobFinished = Signal(int, int)  # job id, images received
    jobFailed = Signal(int, str, object)  # job id, message, the KreaError
    jobCancelled = Signal(int, int)  # job id, images received before cancelling
    # Job id, just before it is said to be cancelled: its task, which the service had taken,
    # is kept, and the next start collects the images the service goes on to make.
    jobKept = Signal(int)
    saveProblem = Signal(str)  # one sentence while images wait to be saved; "" when all are
    imagesHeld = Signal(int, int)  # job id, how many of its images wait to be saved (before it ends)
    collecting = Signal(int, int)  # job id (begun by this thread), images of its task an earlier run saved
    collectProblem = Signal(str)  # one sentence: paid work of an earlier run that cannot be collected
    sheetRedrawn = Signal(object)  # LibraryEntry: a sweep's sheet drawn again with cells collected since

    def __init__(self, client_factory: Callable[[], RunwareClient], library: Library) -> None:
        super().__init__()
        self.setObjectName("clientThread")
        make_worker_types()  # its decode thread makes thumbnails: their types are made here first
        self._factory = client_factory
        self._library = library
        self._saver = SaveQueue(library)
        self._pending = PendingTasks(library.root)
        self._tasks: dict[str, tuple[int, PendingTask | None]] = {}  # taskUUID -> job id, its record
        self._shutting_down = False  # on the thread: jobs cancelled now keep their tasks' records
        self._stop_requested = False  # on the GUI thread: stop() has asked once
        # Made here, run on the thread: jobs can be queued before the thread has started,
        # so the window need not wait for it (or for the client's imports) to appear.
        self._loop: asyncio.AbstractEventLoop | None = asyncio.new_event_loop()
        self._client: RunwareClient | None = None
        self._jobs: dict[int, asyncio.Task[None]] = {}
        self._stops: dict[int, asyncio.Event] = {}  # set when the person cancels the job
        self._ids = itertools.count(1)
        self._ready = threading.Event()
        # The size the gallery shows thumbnails at (device pixels): new images arrive with a
        # thumbnail made at that size, so painting them never rescales.
        self.thumbnail_side: Callable[[], int] = lambda: THUMB_SIZE
        self._background: set[asyncio.Task[None]] = set()
        # Tasks whose jobs have ended with images still held: their records are finished
        # once those are saved (until then, the next start would collect them).
        self._ended_holding: set[str] = set()
        self._held_retry: asyncio.TimerHandle | None = None
        # Images handed over (imageReady) per job, however they were saved: what arrived and
        # is not among them waits to be saved, or is on its way to being handed over.
        self._handed: dict[int, int] = {}

    # --- GUI-thread API ------------------------------------------------------------------

    def start_and_wait(self) -> None:
        """Start, and wait until the client exists (tests and benchmarks measure from there)."""
        self.start()
        self._ready.wait(10)

    def wait_ready(self, timeout_s: float = 10.0) -> RunwareClient:
        """Block until the client exists and return it (for tests and tools)."""
        if not self._ready.wait(timeout_s) or self._client is None:
            raise RuntimeError("the client thread did not start")
        return self._client

    def submit(self, request: GenerationRequest) -> int:
        """Queue a generation; returns its job id at once."""
        job_id = next(self._ids)
        self._call(self._start_job, job_id, request)
        return job_id

    def cancel(self, job_id: int) -> None:
        self._call(self._cancel_job, job_id)

    def cancel_all(self) -> None:
        self._call(self._cancel_all)

    def collect_abandoned(self) -> None:
        """Collect, as jobs of their own, the tasks processes that have ended left
        unfinished on the service this thread's client uses (again whenever the client
        is replaced by one for another service)."""
        self._call(self._collect_abandoned)

    def run_coroutine(
        self, make: Callable[[RunwareClient], Coroutine[Any, Any, Any]]
    ) -> concurrent.futures.Future[Any]:
        """Run ``make(client)`` on the client thread; await it with ``asyncio.wrap_future``."""
        assert self._loop is not None, "the client thread is not running"

        async def runner() -> Any:
            assert self._client is not None
            return await make(self._client)

        return asyncio.run_coroutine_threadsafe(runner(), self._loop)

    def replace_client(self, factory: Callable[[], RunwareClient]) -> None:
        """Use a new client (e.g. after the key changed) for jobs submitted from now on."""
        self._factory = factory
        self._call(self._swap_client)

    @property
    def stop_requested(self) -> bool:
        """Whether :meth:`stop` has been called (readable from any thread)."""
        return self._stop_requested

    def stop(self, timeout_ms: int = 5000) -> bool:
        """Cancel the jobs, save or set aside what arrived, and end the thread; False if it
        is still at it after ``timeout_ms`` (wait for it with :meth:`wait` before the
        process ends: destroying a running QThread aborts the process)."""
        if self._loop is not None and self.isRunning() and not self._stop_requested:
            self._stop_requested = True
            self._call(self._shutdown)
        return self.wait(timeout_ms) if self.isRunning() else True

    # --- client-thread side ----------------------------------------------------------------

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._loop is None:
            raise RuntimeError("the client thread is not running")
        self._loop.call_soon_threadsafe(fn, *args)

    def run(self) -> None:  # the thread's body
        loop = self._loop
        assert loop is not None and not loop.is_closed(), "a client thread runs once"
        asyncio.set_event_loop(loop)
        # One worker for decoding and saving: every extra thread running Python is one more
        # contender for the GIL that the GUI thread must win back to paint.
        loop.set_default_executor(
            concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="krea-decode", initializer=lower_priority)
        )
        lower_priority()
        share_the_gil_often()  # the GUI thread must not wait 5 ms turns behind the client to paint
        self._client = self._factory()
        self._client.gui = True  # share the GIL with the window: pacing and the base64 helper
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
            self._loop = None

    def _start_job(self, job_id: int, request: GenerationRequest) -> None:
        task = asyncio.get_running_loop().create_task(self._run_job(job_id, request))
        self._jobs[job_id] = task
        task.add_done_callback(lambda done: self._cancelled_before_it_ran(job_id, done))

    def _cancelled_before_it_ran(self, job_id: int, task: asyncio.Task[None]) -> None:
        """A job cancelled before its first step never runs, so it never says how it ended
        (Esc pressed just after Generate): it is said here, or the window would wait for it."""
        if task.cancelled() and self._jobs.get(job_id) is task:
            del self._jobs[job_id]
            self.jobCancelled.emit(job_id, 0)

    async def _run_job(self, job_id: int, request: GenerationRequest) -> None:
        client = self._client
        assert client is not None
        self.jobStarted.emit(job_id, request)
        current: list[str] = []  # the taskUUID in flight (a conflict sends a new one)

        def submitted(sent: GenerationRequest, wire: list[dict[str, Any]], record: GenerationRecord) -> None:
            if current:  # sent again under a new taskUUID: the old one was never accepted
                self._forget_task(current.pop())
            current.append(sent.task_uuid)
            # Noted for the next start to collect, where it can (not the demo simulator's).
            noted = self._pending.submitted(sent, wire, record, client.base_url) if client.collectable_later else None
            self._tasks[sent.task_uuid] = (job_id, noted)

        def say(msg: str) -> None:
            self.jobStatus.emit(job_id, msg)

        async def images() -> AsyncIterator[GeneratedImage]:
            await asyncio.to_thread(
                functools.partial(check_writable, notes=client.collectable_later), self._library, request.number_results
            )
            async for image in client.generate(request, on_status=say, on_submitted=submitted):
                yield image

        await self._followed(job_id, images(), current, unreached=client.never_reached, accepted=client.accepted)

    async def _followed(
        self,
        job_id: int,
        images: AsyncIterator[GeneratedImage],
        current: list[str],
        *,
        sent: bool = False,
        unreached: Callable[[str], bool] | None = None,
        accepted: Callable[[str], bool] | None = None,
    ) -> None:
        """:meth:`_follow`, which a cancel ends once the images in hand are saved."""
        from krea_desktop.api.client import stop_waiting_when  # loaded with the client, after the window

        stop = self._stops[job_id] = asyncio.Event()
        try:
            with stop_waiting_when(stop):
                await self._follow(job_id, images, current, sent=sent, unreached=unreached, accepted=accepted)
        finally:
            self._stops.pop(job_id, None)
            self._handed.pop(job_id, None)  # a job that ended without saying what it holds (a bug, say)

    async def _follow(
        self,
        job_id: int,
        images: AsyncIterator[GeneratedImage],
        current: list[str],
        *,
        sent: bool = False,
        unreached: Callable[[str], bool] | None = None,
        accepted: Callable[[str], bool] | None = None,
    ) -> None:
        """Save ``images`` as they come and report the job's end; keep its task's record
        while the service may still deliver (a lost connection, a quit, a failure while
        following an accepted task: :func:`errors.may_collect_later`; for a task certainly
        ``sent``, also a busy service or a key refused; a cancel of a task the service is
        known to have taken, ``accepted``: it goes on making the images, and they are
        paid for), so that the next start collects the rest."""
        received = 0
        arrived = 0  # saved, or held until the library can take them
        keep = False
        saving: asyncio.Future[int] | None = None
        try:
            async for image in images:
                arrived += 1
                saving = asyncio.ensure_future(self._save(image))
                received += await asyncio.shield(saving)
                saving = None
        except asyncio.CancelledError:
            if saving is not None:  # the image being saved lands in the library: it is said so
                received += await _finished(saving)
            # The app quitting, or a task the service has taken (its images are made and paid
            # for all the same): the next start collects the rest.
            keep = self._shutting_down or (accepted is not None and any(accepted(t) for t in current))
            self._say_held(job_id, arrived)
            if (
                keep
                and not self._shutting_down
                and any(self._tasks.get(t, (None, None))[1] is not None for t in current)
            ):
                self.jobKept.emit(job_id)
            self.jobCancelled.emit(job_id, received)
        except E.KreaError as err:
            keep = E.may_collect_later(err) or (
                sent and isinstance(err, E.COLLECT_LATER) and not E.service_gave_up(err)
            )
            # Said to be collected later only when a task was sent and its record written.
            err.record_kept = keep and any(self._tasks.get(t, (None, None))[1] is not None for t in current)
            err.images_arrived = arrived
            self._say_held(job_id, arrived)
            self.jobFailed.emit(job_id, as_the_app_says(err, where_the_key_is()), err)
        except LibraryError as err:
            self.jobFailed.emit(job_id, str(err), err)
        except Exception as exc:  # a bug must not take the thread down, nor show a traceback
            log.exception("job %s failed unexpectedly", job_id)
            bug = E.KreaError(f"Something unexpected went wrong ({type(exc).__name__}); the details are in the log.")
            self.jobFailed.emit(job_id, str(bug), bug)
        else:
            self._say_held(job_id, arrived)
            self.jobFinished.emit(job_id, received)
        finally:
            self._jobs.pop(job_id, None)
            for task_uuid in current:
                # Kept for the next start, unless the service certainly does not have it
                # (quit while waiting to send it again after "busy"): nothing to collect.
                if keep and not (unreached is not None and unreached(task_uuid)):
                    continue
                if self._saver.held:
                    self._ended_holding.add(task_uuid)
                else:
                    self._forget_task(task_uuid)

    async def _save(self, image: GeneratedImage) -> int:
        """Save ``image`` (and any held before it); returns how many of ``image``'s job."""
        saved = await asyncio.to_thread(save_and_thumbnail, self._saver, image, self.thumbnail_side() or THUMB_SIZE)
        await self._saved(saved)
        return sum(entry.task_uuid == image.task_uuid for entry, _thumb in saved)

    async def _saved(self, saved: list[tuple[LibraryEntry, QImage]]) -> None:
        """Note images just saved in their tasks' records and hand them over; say what is
        still held, and try it again in a while (nothing else may come to try it)."""
        for entry, thumb in saved:
            job_id, task = self._tasks.get(entry.task_uuid or "", (None, None))
            if task is not None:
                await asyncio.to_thread(self._pending.received, task, entry.image_uuid)
            if job_id is not None:
                if job_id in self._jobs:  # counted against what arrived, as the job ends
                    self._handed[job_id] = self._handed.get(job_id, 0) + 1
                self.imageReady.emit(job_id, entry, thumb)
        self.saveProblem.emit(self._saver.problem or "")
        if not self._saver.held:
            for task_uuid in list(self._ended_holding):  # nothing of theirs is left to collect
                self._forget_task(task_uuid)
            self._ended_holding.clear()
        elif self._held_retry is None and not self._shutting_down:
            self._held_retry = asyncio.get_running_loop().call_later(HELD_RETRY_S, self._retry_held)

    def _retry_held(self) -> None:
        self._held_retry = None
        if self._saver.held and not self._shutting_down:
            self._keep(self._save_held())

    async def _save_held(self) -> None:
        side = self.thumbnail_side() or THUMB_SIZE
        await self._saved(await asyncio.to_thread(save_and_thumbnail, self._saver, None, side))

    def _say_held(self, job_id: int, arrived: int) -> None:
        """Say how many of the job's images are still to be handed over as it ends: those
        that arrived and were not (held, or saved by the retry a moment ago and on their
        way); each one handed over later counts against them. One saved meanwhile by the
        retry, or with another job's, and handed over already, is not among them."""
        held = arrived - self._handed.pop(job_id, 0)
        if held > 0:
            self.imagesHeld.emit(job_id, held)

    def _forget_task(self, task_uuid: str) -> None:
        _job_id, task = self._tasks.pop(task_uuid, (None, None))
        if task is not None:
            self._pending.finished(task)

    def _collect_abandoned(self) -> None:
        self._keep(self._collect_all())

    async def _collect_all(self) -> None:
        client = self._client
        assert client is not None
        abandoned = await asyncio.to_thread(
            self._pending.claim_abandoned, client.base_url, collectable=client.collectable_later
        )
        if self._pending.set_aside:
            self.collectProblem.emit(set_aside_notice(self._pending.set_aside, self._pending.folder))
        for task in abandoned:
            job_id = next(self._ids)
            self._tasks[task.task_uuid] = (job_id, task)
            self.jobStarted.emit(job_id, task.request)
            self.collecting.emit(job_id, len(task.received))
            self.jobStatus.emit(job_id, "Collecting the rest of an earlier job's images…")

            def say(msg: str, job_id: int = job_id) -> None:
                self.jobStatus.emit(job_id, msg)

            images = client.collect(task.request, task.record, task.received, on_status=say)
            job = asyncio.get_running_loop().create_task(self._followed(job_id, images, [task.task_uuid], sent=True))
            self._jobs[job_id] = job
            job.add_done_callback(functools.partial(self._cancelled_before_it_ran, job_id))
            sweep = task.record.sweep
            if sweep is not None and not sweep.is_sheet:  # a cell of a sweep cut off: its sheet said it failed
                job.add_done_callback(functools.partial(self._redraw_sheet_soon, sweep.id))

    def _redraw_sheet_soon(self, sweep_id: str, _job: object) -> None:
        self._keep(self._redraw_sheet(sweep_id))

    async def _redraw_sheet(self, sweep_id: str) -> None:
        """The saved sheet of ``sweep_id`` drawn again with the cells collected since."""
        from krea_desktop.library.sheet import redraw_with_late_cells

        try:
            sheet = await asyncio.to_thread(redraw_with_late_cells, self._library, sweep_id)
        except Exception:  # the images themselves are in the library; the sheet stays as it was
            log.exception("the contact sheet of sweep %s could not be drawn again", sweep_id)
            return
        if sheet is not None:
            self.sheetRedrawn.emit(sheet)

    def _cancel_job(self, job_id: int) -> None:
        """Stop waiting on the service for the job; the images it already holds (a whole
        answer, downloads under way) are saved first, within :data:`CANCEL_GRACE_S`. A job
        not yet started, or cancelled a second time, ends at once."""
        task = self._jobs.get(job_id)
        if task is None:
            return
        stop = self._stops.get(job_id)
        if stop is None or stop.is_set():
            task.cancel()
            return
        stop.set()
        asyncio.get_running_loop().call_later(CANCEL_GRACE_S, lambda: None if task.done() else task.cancel())

    def _cancel_all(self) -> None:
        for job_id in list(self._jobs):
            self._cancel_job(job_id)

    def _swap_client(self) -> None:
        old = self._client
        self._client = self._factory()
        self._client.gui = True
        if old is not None:
            # jobs already running keep the old client until they end
            self._keep(self._close_when_idle(old))
            if old.base_url != self._client.base_url:
                # tasks sent to this service by an ended process (a key just added: those
                # sent to Runware before a start in demo mode)
                self._collect_abandoned()

    async def _close_when_idle(self, client: RunwareClient) -> None:
        while self._jobs:
            await asyncio.sleep(0.5)
        await client.aclose()

    def _shutdown(self) -> None:
        loop = asyncio.get_running_loop()

        async def finish() -> None:
            self._shutting_down = True
            try:
                tasks = list(self._jobs.values())
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                if self._client is not None:
                    await self._client.aclose()
                await asyncio.to_thread(self._saver.retry)
                if self._saver.held:  # still not writable: keep them elsewhere (the next start also collects them)
                    folder = await asyncio.to_thread(self._saver.spill)
                    log.error("images the library could not take were written to %s", folder)
            except Exception:
                # Their tasks' records stay (images were held), so the next start collects them again.
                log.exception("the client thread could not finish cleanly; the next start collects what is left")
            finally:
                loop.stop()  # whatever happened: a thread that never ends would abort the process at exit

        self._keep(finish())

    def _keep(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

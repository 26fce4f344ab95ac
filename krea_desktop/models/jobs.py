"""The job queue: every generation the window started, its images as they arrive, its
state and cost. The client thread's reports are routed here; views subscribe."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from krea_desktop.api.request import GenerationRequest
from krea_desktop.library.store import LibraryEntry
from krea_desktop.models.events import Event
from krea_desktop.wording import counted, for_count

RUNNING, FINISHED, FAILED, CANCELLED = "running", "finished", "failed", "cancelled"


@dataclass
class Job:
    job_id: int
    request: GenerationRequest
    state: str = RUNNING
    status: str = "Queued"
    entries: list[LibraryEntry] = field(default_factory=list)  # images saved, in arrival order
    cost: float = 0.0
    started_at: float = field(default_factory=time.monotonic)
    ended_at: float | None = None
    message: str = ""  # how it ended, in one sentence
    error: object = None  # the error it failed with
    cancelling: bool = False  # cancel asked: the images it already holds are being saved
    # Begun by the client thread itself, collecting a task an earlier run sent: its request
    # is rebuilt from the task's record (no sweep, images saved by that run not counted).
    collected: bool = False
    # Images that arrived but wait to be saved (the library could not take them: a full
    # disk), as the job ended; each one saved later is counted as it comes.
    held: int = 0
    earlier: int = 0  # a collected job's images its task's earlier run saved (not counted again)
    failure: str = ""  # what went wrong, for a failed job (its message says what is kept too)
    # Cancelled after the service had taken its task: the next start collects the rest.
    collected_later: bool = False

    @property
    def received(self) -> int:
        return len(self.entries)

    @property
    def simulated(self) -> bool | None:
        """Whether its images' costs were made up by the built-in simulator, as their
        records say (None while none has arrived, or when their records do not say)."""
        return next((e.simulated for e in self.entries if e.simulated is not None), None)

    @property
    def expected(self) -> int:
        """The images asked for (less those an earlier run saved, for a job collecting what
        it left), or those received if the service sent more (each kept)."""
        return max(self.request.number_results - self.earlier, len(self.entries))

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    def elapsed(self, now: float | None = None) -> float:
        end = self.ended_at if self.ended_at is not None else (time.monotonic() if now is None else now)
        return max(0.0, end - self.started_at)


class JobQueue:
    """Jobs by id, in the order they were added.

    Events (each with the :class:`Job`): ``added``, ``changed`` (status or state),
    ``image`` (with the saved entry and the view's opaque extra, e.g. a thumbnail; the job
    is None once it has left the list: an image held for want of room, saved later),
    ``ended``, ``removed``; ``cost_changed`` with the session's total.

    The session's total is what the service charged (``session_cost``); amounts the
    built-in simulator made up (a record with ``simulated``) add to
    ``session_cost_simulated`` instead, so that switching between demo mode and a key
    never adds one to the other.
    """

    MAX_ENDED = 20  # ended jobs kept for the record; older ones are dropped
    # A failed job waits for the person (its error, its Try again): dropped only for the
    # oldest of more than this many failed ones, not for the jobs that ended after it.
    MAX_FAILED = 100

    def __init__(self) -> None:
        self._jobs: dict[int, Job] = {}
        self.session_cost = 0.0
        self.session_cost_simulated = 0.0
        self.added: Event[[Job]] = Event()
        self.changed: Event[[Job]] = Event()
        self.image: Event[[Job | None, LibraryEntry, Any]] = Event()
        self.ended: Event[[Job]] = Event()
        self.removed: Event[[Job]] = Event()
        self.cost_changed: Event[[float]] = Event()

    # -- reading -------------------------------------------------------------------------

    def get(self, job_id: int) -> Job | None:
        return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        return list(self._jobs.values())

    def running(self) -> list[int]:
        return [j.job_id for j in self._jobs.values() if j.running]

    def cancellable(self) -> list[int]:
        """The running jobs whose cancel has not been asked for yet."""
        return [j.job_id for j in self._jobs.values() if j.running and not j.cancelling]

    def cancel_asked(self, job_id: int) -> bool:
        """The person cancelled ``job_id``: it says so until it ends (it saves what it
        already received first). False if it is not running or was cancelled already."""
        job = self._jobs.get(job_id)
        if job is None or not job.running or job.cancelling:
            return False
        job.cancelling = True
        job.status = "Cancelling; saving the images already received…"
        self.changed.emit(job)
        return True

    # -- what the client reports -----------------------------------------------------------

    def add(self, job_id: int, request: GenerationRequest, *, collected: bool = False) -> Job:
        job = Job(job_id, request, collected=collected)
        self._jobs[job_id] = job
        self.added.emit(job)
        self._trim()
        return job

    def started(self, job_id: int) -> None:
        self.set_status(job_id, "Starting…")

    def set_status(self, job_id: int, text: str) -> None:
        job = self._jobs.get(job_id)
        if job is not None and job.running and not job.cancelling:
            job.status = text
            self.changed.emit(job)

    def image_saved(self, job_id: int, entry: LibraryEntry, extra: Any = None) -> None:
        """An image of ``job_id`` is on disk and indexed; ``extra`` goes to listeners as is."""
        job = self._jobs.get(job_id)
        if entry.cost and entry.simulated:
            self.session_cost_simulated += entry.cost
        elif entry.cost:
            self.session_cost += entry.cost
        if job is not None:
            job.entries.append(entry)
            if entry.cost:
                job.cost += entry.cost
            if not job.running and job.held > 0:  # one it ended waiting for: its end says so
                job.held -= 1
                job.message = job.status = _ended_message(job)
                self.changed.emit(job)
        # Every image saved goes on, its job's row dismissed or not (the gallery shows it).
        self.image.emit(job, entry, extra)
        if entry.cost:
            self.cost_changed.emit(self.session_cost)

    def collecting(self, job_id: int, earlier: int) -> None:
        """``job_id`` collects what an earlier run left of a task, ``earlier`` of whose
        images that run saved: it expects the rest."""
        job = self._jobs.get(job_id)
        if job is not None:
            job.earlier = max(0, earlier)
            self.changed.emit(job)

    def images_held(self, job_id: int, held: int) -> None:
        """``held`` images of ``job_id`` wait to be saved as it ends (the library cannot
        take them yet): its end says so, until they are."""
        job = self._jobs.get(job_id)
        if job is not None and job.running:
            job.held = held

    def finished(self, job_id: int) -> None:
        self._end(job_id, FINISHED)

    def cancelled(self, job_id: int) -> None:
        self._end(job_id, CANCELLED)

    def kept_for_later(self, job_id: int) -> None:
        """``job_id``, being cancelled, had its task taken by the service, which goes on
        making its images: the next start collects them (said as it ends)."""
        job = self._jobs.get(job_id)
        if job is not None and job.running:
            job.collected_later = True

    def failed(self, job_id: int, message: str, error: object = None) -> None:
        self._end(job_id, FAILED, message, error)

    def remove(self, job_id: int) -> None:
        """Forget an ended job (a running one stays)."""
        job = self._jobs.get(job_id)
        if job is not None and not job.running:
            del self._jobs[job_id]
            self.removed.emit(job)

    # -- inside ----------------------------------------------------------------------------

    def _received(self, job_id: int) -> int:
        job = self._jobs.get(job_id)
        return job.received if job is not None else 0

    def _end(self, job_id: int, state: str, failure: str = "", error: object = None) -> None:
        job = self._jobs.get(job_id)
        if job is None or not job.running:
            return
        job.state = state
        job.ended_at = time.monotonic()
        job.failure = failure
        job.message = job.status = _ended_message(job)
        job.error = error
        self.ended.emit(job)
        self._trim()

    def _trim(self) -> None:
        """Past :attr:`MAX_ENDED` ended jobs, drop the oldest of those that ask nothing of
        the person (done or cancelled); failed ones only past :attr:`MAX_FAILED`."""
        ended = [j for j in self._jobs.values() if not j.running]
        quiet = [j.job_id for j in ended if j.state != FAILED]
        for job_id in quiet[: max(0, len(ended) - self.MAX_ENDED)]:
            self.remove(job_id)
        failed = [j.job_id for j in ended if j.state == FAILED]
        for job_id in failed[: max(0, len(failed) - self.MAX_FAILED)]:
            self.remove(job_id)


def _ended_message(job: Job) -> str:
    """How ``job`` ended, in one sentence: what was saved, and what still waits to be."""
    kept, held = job.received, job.held
    if job.state == FINISHED:
        said = f"Done: {counted(kept, 'image')} saved"
    elif job.state == CANCELLED:
        said = f"Cancelled; {counted(kept, 'image')} kept" if kept else "Cancelled"
        if job.collected_later:  # made and paid for whatever happens here: not lost
            said += "; the images the service was already making are collected at the next start"
    elif not (kept or held):
        return job.failure
    else:
        said = job.failure.rstrip(".")
        if kept:  # what went wrong, then what is kept
            said += f"; the {counted(kept, 'image')} received before that {for_count(kept, 'is', 'are')} kept"
    if held:
        said += f"; {counted(held, 'image')} {for_count(held, 'is', 'are')} waiting to be saved"
    return said + "."

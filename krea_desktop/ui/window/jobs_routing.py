"""What the main window does with its jobs: which one Cancel and Esc stop (the newest sent
from the controls, else the newest sweep), a sweep cancelled as a whole (one of its cells
alone would leave a hole in its sheet), a new image at the top of the gallery, its seed
kept for Reuse, a sentence when a job ends, and a failed job sent again (Try again)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from krea_desktop.api import errors as E
from krea_desktop.user_words import COLLECTED_LATER, IN_THE_ENVIRONMENT, where_the_key_is
from krea_desktop.wording import counted

if TYPE_CHECKING:
    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QPushButton

    from krea_desktop.library.store import LibraryEntry
    from krea_desktop.models.jobs import Job, JobQueue
    from krea_desktop.ui.compose.prompt_panel import PromptPanel
    from krea_desktop.ui.gallery.model import GalleryModel
    from krea_desktop.ui.jobs.client_thread import ClientThread
    from krea_desktop.ui.sweep.runner import SweepRun

ShowMessage = Callable[..., None]


class JobRouting:
    """Follows the window's job queue from the moment it is made: the Cancel button, the
    gallery's new images, the prompt panel's last seed, and what is said when a job ends
    (through ``show_message``, ``show_service_message`` and ``status``). ``sweep_runs``
    gives the sweeps still sending (none before the first)."""

    def __init__(
        self,
        *,
        jobs: JobQueue,
        client_thread: ClientThread,
        cancel_button: QPushButton,
        sweep_runs: Callable[[], list[SweepRun]],
        model: GalleryModel,
        prompt_panel: PromptPanel,
        show_message: ShowMessage,
        show_service_message: ShowMessage,
        status: Callable[[str, int], None],
        open_settings: Callable[[], None],
        show_all: Callable[[], None],
        withdraw_message: Callable[[str], None],
        drop_action: Callable[[str], None] = lambda _text: None,
        acted_with_focus: Callable[[], bool] = lambda: False,
        focus_newest_job: Callable[[], None] = lambda: None,
        reference_label: Callable[[Path], str | None] = lambda _path: None,
    ) -> None:
        self.jobs = jobs
        self.client_thread = client_thread
        self.cancel_button = cancel_button
        self.sweep_runs = sweep_runs
        self.model = model
        self.prompt_panel = prompt_panel
        self.show_message = show_message
        self.show_service_message = show_service_message  # what a new key or address withdraws
        self.status = status
        self.open_settings = open_settings
        self.show_all = show_all  # clears the search and the filters
        self.withdraw_message = withdraw_message
        self.drop_action = drop_action  # a sentence stays, its button goes
        self.acted_with_focus = acted_with_focus  # a message's button was pressed from the keyboard
        self.focus_newest_job = focus_newest_job  # the focus on the newest job's row
        self.reference_label = reference_label  # the name a kept copy was brought in by
        # When the API key or the service's address last changed (monotonic): a job sent
        # before fails of the key or address it was sent with, no longer the ones in use.
        self.credentials_changed_at = float("-inf")
        # What was said of each failed job, until it is sent again or leaves the list.
        self._said: dict[int, str] = {}
        self._offering: set[int] = set()  # jobs whose sentence offers Try again
        jobs.image.connect(lambda _job, entry, thumbnail: self._show_new(entry, thumbnail))
        jobs.image.connect(lambda _job, entry, _thumbnail: self._remember_seed(entry))
        jobs.added.connect(lambda _job: self.update_cancel_button())
        jobs.ended.connect(lambda _job: self.update_cancel_button())
        jobs.ended.connect(self._job_ended)
        jobs.removed.connect(self._forget)

    def cancel_newest(self) -> None:
        """Cancel the newest job sent from the controls; with none running, the newest
        sweep as a whole (one of its cells alone would leave a hole in its sheet)."""
        runs, running = self._jobs_and_sweeps()
        live = [run for run in runs if not run.cancelled]
        if running:
            self.cancel_job(max(running))
        elif live:
            live[-1].cancel()
            self.update_cancel_button()

    def _jobs_and_sweeps(self) -> tuple[list[SweepRun], list[int]]:
        """The sweeps still sending, and the jobs sent from the controls not yet cancelled
        that are none of theirs (a sweep is cancelled as a whole: one of its cells alone
        would leave a hole). A job collecting what an earlier run paid for is not among
        them: Esc pressed as the window opened ended it, and its images were lost for good
        (its own row's Cancel still ends it)."""
        runs = list(self.sweep_runs())
        in_sweeps = {job_id for run in runs for job_id in run.job_ids}
        return runs, [
            job_id
            for job_id in self.jobs.cancellable()
            if job_id not in in_sweeps and not getattr(self.jobs.get(job_id), "collected", False)
        ]

    def cancel_job(self, job_id: int) -> None:
        """Cancel ``job_id``: it stops waiting on the service, saves the images it already
        holds, and says it is doing so until it ends (Esc then goes to the next job)."""
        if self.jobs.cancel_asked(job_id):
            self.client_thread.cancel(job_id)
            self.update_cancel_button()

    def cancel_all_jobs(self) -> None:
        """Generate > Cancel all jobs: every job sent from the controls, and every sweep as a whole."""
        runs, running = self._jobs_and_sweeps()
        for job_id in running:
            self.cancel_job(job_id)
        for run in runs:
            if not run.cancelled:
                run.cancel()
        self.update_cancel_button()

    def update_cancel_button(self) -> None:
        """Cancel works while a job runs, or a sweep sends (uploading its references, say)."""
        runs, running = self._jobs_and_sweeps()
        self.cancel_button.setEnabled(bool(running) or any(not run.cancelled for run in runs))

    def cancel_row(self, job_id: int) -> None:
        """A job row's Cancel: the job, or the sweep it is a cell of, as a whole (one cell
        alone would leave a hole in its sheet)."""
        run = next((r for r in self.sweep_runs() if job_id in r.job_ids), None)
        if run is not None:
            run.cancel()
            self.update_cancel_button()
        else:
            self.cancel_job(job_id)

    def try_again(self, job_id: int) -> int | None:
        """A failed job's Try again: its request sent once more, as a new job (a task of its
        own, with the key and address in use now) at the top of the list, in place of the
        failed one's row; what was said of the failure goes. Returns the new job's id."""
        from krea_desktop.ui.jobs.job_list import may_try_again

        job = self.jobs.get(job_id)
        if job is None or not may_try_again(job):
            return None
        missing = self._missing_reference(job)
        if missing is not None:
            self.show_message(missing, error=True)
            return None
        request = job.request.with_new_task_uuid()
        new_id = self.client_thread.submit(request)
        self._withdraw_said(job_id)
        self.jobs.remove(job_id)
        self.jobs.add(new_id, request)
        self.status(f"Job {job_id} sent again as job {new_id}.", 4000)
        return new_id

    def _try_again_saying(self, said: str) -> int | None:
        """A message's Try again: the newest failed job that still offers it and whose
        failure the message says (jobs failing alike share one message, and the one it was
        shown for may have been sent again or removed since). From the keyboard, the focus
        goes to the new job's row, as from the row's own Try again."""
        offering = [job_id for job_id in self._offering if self._said.get(job_id) == said]
        if not offering:
            return None
        with_focus = self.acted_with_focus()
        new_id = self.try_again(max(offering))
        if new_id is not None and with_focus:
            self.focus_newest_job()
        return new_id

    def _missing_reference(self, job: Job) -> str | None:
        """One sentence if a reference's kept copy is no longer on disk (deleted behind the
        app's back): the job cannot be sent again as it was."""
        from krea_desktop.wording import short_reference_name

        for number, ref in enumerate(job.request.references, 1):
            if isinstance(ref.image, Path) and not ref.image.is_file():
                label = self.reference_label(ref.image)
                name = f" ({short_reference_name(label)})" if label else ""
                return (
                    f"Reference {number}{name} of job {job.job_id} is no longer on disk, "
                    "so the job cannot be sent again as it was."
                )
        return None

    def _withdraw_said(self, job_id: int) -> None:
        """What was said of ``job_id``'s failure goes, unless another failed job said the
        same sentence (a message is known by its words): then its Try again goes to that
        job, or, when that one may not be sent again, the sentence stays without it."""
        said = self._said.pop(job_id, None)
        self._offering.discard(job_id)
        if said is None:
            return
        if any(self._said.get(other) == said for other in self._offering):
            return
        if said in self._said.values():
            self.drop_action(said)
        else:
            self.withdraw_message(said)

    def _forget(self, job: Job) -> None:
        """A job gone from the list: its Try again, in a sentence still waiting or shown,
        goes with it (it would do nothing)."""
        if job.job_id in self._offering:
            self._withdraw_said(job.job_id)
        self._said.pop(job.job_id, None)

    def _show_new(self, entry: LibraryEntry, thumbnail: QImage | None) -> None:
        """A new result at the top of the gallery, or, when the search, a filter or a scope
        hides it, a sentence that says so (with the way to see it)."""
        self.model.add_entry(entry, thumbnail)
        if self.model.row_of(entry.id) is None:
            self.show_message("New images are hidden by the search or the filters.", "Show all", self.show_all)

    def _remember_seed(self, entry: LibraryEntry) -> None:
        if entry.seed is not None:
            self.prompt_panel.setLastSeed(entry.seed)

    def _job_ended(self, job: Job) -> None:
        if job.state == "finished":
            self.status(f"Job {job.job_id} finished: {counted(job.received, 'image')} saved.", 5000)
        elif job.state == "cancelled":  # in place of "queued", which would otherwise stay a while
            self.status(f"Job {job.job_id} cancelled: {job.received} of {counted(job.expected, 'image')} saved.", 5000)
        elif job.state == "failed":
            self._say_failed(job)

    def _say_failed(self, job: Job) -> None:
        from krea_desktop.ui.jobs.job_list import may_try_again

        job_id = job.job_id
        say: ShowMessage = self.show_message
        offer = may_try_again(job)  # never for a task kept to be collected (paid for twice)
        settings = False
        if E.said_of_the_service(job.error) and job.started_at < self.credentials_changed_at:
            # Sent with the key or address used before: a refusal or an error of those says
            # nothing of the ones in use now (Open Settings would show a key that is fine).
            kept = getattr(job.error, "record_kept", False)
            said = f"Job {job_id} was sent before the API key or the service's address changed, and failed"
            said += f"; {COLLECTED_LATER}." if kept else "."
        elif isinstance(job.error, E.AuthenticationError):
            said, offer = job.message, False
            # Neither Settings nor a change there puts right the key the environment sets.
            if where_the_key_is() != IN_THE_ENVIRONMENT:
                say, settings = self.show_service_message, True
        else:
            said = job.message
            if E.said_of_the_service(job.error):
                say = self.show_service_message
        if settings:
            say(said, "Open Settings", self.open_settings, error=True)
        elif offer:
            say(said, "Try again", lambda: self._try_again_saying(said), error=True)
            self._offering.add(job_id)
        else:  # a sweep's cell, or a job with images of its own: said, not sent again
            say(said, error=True)
        self._said[job_id] = said

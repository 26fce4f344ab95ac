"""What the main window does with its jobs: which one Cancel and Esc stop (the newest sent
from the controls, else the newest sweep), a sweep cancelled as a whole (one of its cells
alone would leave a hole in its sheet), and a new image at the top of the gallery, its seed
kept for Reuse, and a sentence in the status bar when a job ends."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from krea_desktop.api import errors as E
from krea_desktop.user_words import IN_THE_ENVIRONMENT, where_the_key_is
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
        jobs.image.connect(lambda _job, entry, thumbnail: self._show_new(entry, thumbnail))
        jobs.image.connect(lambda _job, entry, _thumbnail: self._remember_seed(entry))
        jobs.added.connect(lambda _job: self.cancel_button.setEnabled(True))
        jobs.ended.connect(lambda _job: self.update_cancel_button())
        jobs.ended.connect(self._job_ended)

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
        """The sweeps still sending, and the jobs not yet cancelled that are none of theirs
        (a sweep is cancelled as a whole: one of its cells alone would leave a hole)."""
        runs = list(self.sweep_runs())
        in_sweeps = {job_id for run in runs for job_id in run.job_ids}
        return runs, [job_id for job_id in self.jobs.cancellable() if job_id not in in_sweeps]

    def cancel_job(self, job_id: int) -> None:
        """Cancel ``job_id``: it stops waiting on the service, saves the images it already
        holds, and says it is doing so until it ends (Esc then goes to the next job)."""
        if self.jobs.cancel_asked(job_id):
            self.client_thread.cancel(job_id)
            self.update_cancel_button()

    def cancel_all_jobs(self) -> None:
        """Generate > Cancel all jobs: every job, and every sweep as a whole."""
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
            say = self.show_service_message if E.said_of_the_service(job.error) else self.show_message
            if isinstance(job.error, E.AuthenticationError) and where_the_key_is() == IN_THE_ENVIRONMENT:
                # Neither Settings nor a change there puts right the key the environment sets.
                self.show_message(job.message, error=True)
            elif isinstance(job.error, E.AuthenticationError):
                say(job.message, "Open Settings", self.open_settings, error=True)
            else:
                say(job.message, error=True)

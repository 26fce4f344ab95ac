"""The view of the job queue: one row per job, with its progress, its own cancel, and,
once it has failed, Try again."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from krea_desktop.models.jobs import Job, JobQueue
from krea_desktop.ui.money import cost_simulated, format_cost


class ElidedLabel(QLabel):
    """One line of text cut with "…" to the width it is given, rather than a width of its
    own: a long prompt widened its job's row past a narrow list, Cancel and Try again off
    the edge."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.full = text
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(self.fontMetrics().horizontalAdvance("…") * 4)
        self._elide()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        self.setText(self.fontMetrics().elidedText(self.full, Qt.TextElideMode.ElideRight, max(1, self.width())))


class JobRow(QFrame):
    cancelRequested = Signal(int)
    dismissRequested = Signal(int)
    retryRequested = Signal(int)

    def __init__(
        self, info: Job, parent: QWidget | None = None, *, costs_simulated: Callable[[], bool] = lambda: False
    ) -> None:
        super().__init__(parent)
        self.setObjectName("jobRow")
        self.info = info
        self.costs_simulated = costs_simulated
        self.setFrameShape(QFrame.Shape.StyledPanel)
        prompt = info.request.prompt.replace("\n", " ")
        self.title = ElidedLabel(prompt, self)
        self.title.setToolTip(prompt[:500])
        self.status = QLabel("Queued", self)
        self.status.setObjectName("jobStatus")
        self.status.setWordWrap(True)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, max(1, info.request.number_results))
        self.progress.setValue(0)
        self.tick()
        self.progress.setToolTip("Images received for this job")
        self.cancel = QToolButton(self)
        self.cancel.setObjectName("jobCancelButton")
        self.cancel.setText("Cancel")
        self.cancel.setToolTip("Cancel this job; images already received are kept")
        self.cancel.setAccessibleName(f"Cancel job {info.job_id}")
        self.cancel.clicked.connect(lambda: self.cancelRequested.emit(info.job_id))
        self.retry = QToolButton(self)
        self.retry.setObjectName("jobRetryButton")
        self.retry.setText("Try again")
        self.retry.setToolTip("Send this job again, with the same prompt, references and settings")
        self.retry.setAccessibleName(f"Try job {info.job_id} again")
        self.retry.setVisible(False)
        self.retry.clicked.connect(lambda: self.retryRequested.emit(info.job_id))
        self.dismiss = QToolButton(self)
        self.dismiss.setText("✕")
        self.dismiss.setToolTip("Remove this finished job from the list")
        self.dismiss.setAccessibleName(f"Remove job {info.job_id} from the list")
        self.dismiss.setVisible(False)
        self.dismiss.clicked.connect(lambda: self.dismissRequested.emit(info.job_id))

        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.setSpacing(2)
        top = QHBoxLayout()
        lay.addLayout(top)  # in place before it is filled (tests/ui/test_layout_items.py)
        top.addWidget(self.title, 1)
        top.addWidget(self.cancel)
        top.addWidget(self.retry)
        top.addWidget(self.dismiss)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        # As tall as its text needs, never squeezed by the list (the status was clipped).
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)

    def tick(self) -> None:
        """Show the progress as "n of N" and the time the job has taken so far."""
        self.progress.setFormat(f"%v of {self.info.expected}  ·  {_duration(self.info.elapsed())}")

    def set_status(self, text: str) -> None:
        self.status.setText(text)
        if self.info.cancelling and self.cancel.hasFocus():
            # A focused button that is disabled hands the focus on: to the next job's
            # Cancel, which the next key pressed (Space again) cancelled too. The row
            # keeps it until the job ends (see end).
            self.setFocus(Qt.FocusReason.OtherFocusReason)
        self.cancel.setEnabled(not self.info.cancelling)
        if self.progress.maximum() != self._bar_maximum():  # a collected job: less what was saved before
            self.progress.setMaximum(self._bar_maximum())
            self.tick()

    def image_received(self) -> None:
        self.progress.setMaximum(self._bar_maximum())  # grows if the service sends more than asked
        self.progress.setValue(self.info.received)
        self.tick()

    def _bar_maximum(self) -> int:
        """The images expected, but never 0: a range of 0 to 0 is Qt's busy bar, which
        would sweep on for good in the row of a collected job its earlier run had saved
        every image of (killed after the last save, before its note was removed)."""
        return max(1, self.info.expected)

    def end(self) -> None:
        self.tick()  # the time it took, from now on fixed
        text = self.info.message
        if self.info.cost:
            text += f" Cost {format_cost(self.info.cost, cost_simulated(self.info.simulated, self.costs_simulated()))}."
        self.status.setText(text)
        self.retry.setVisible(may_try_again(self.info))
        self.dismiss.setVisible(True)
        if self.cancel.hasFocus() or self.hasFocus():
            # The keyboard stays on this row (on Try again, else ✕): a focused button that
            # hides hands the focus on to the next widget of the window's chain.
            keep = self.retry if self.retry.isVisibleTo(self) else self.dismiss
            keep.setFocus(Qt.FocusReason.OtherFocusReason)
        self.cancel.setVisible(False)
        self.setProperty("state", self.info.state)
        self.style().unpolish(self)
        self.style().polish(self)


class JobList(QScrollArea):
    """Newest job on top. Ended rows stay (with their outcome) until dismissed or until
    the queue drops them."""

    cancelRequested = Signal(int)
    retryRequested = Signal(int)

    def __init__(self, queue: JobQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("jobList")
        self.setAccessibleName("Jobs")
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # its rows' buttons take the focus, not the list
        self.setWidgetResizable(True)
        self.setToolTip("Jobs: each shows its progress and can be cancelled on its own")
        self.queue = queue
        self.costs_simulated = False  # demo mode: costs come from the simulator
        self._box = QWidget(self)
        self._layout = QVBoxLayout(self._box)
        self._layout.setContentsMargins(4, 4, 4, 4)
        self._layout.setSpacing(4)
        self._empty = QLabel("No jobs yet. Write a prompt and press Generate (Ctrl+Enter).", self._box)
        self._empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._empty.setWordWrap(True)
        self._layout.addWidget(self._empty)
        self._layout.addStretch(1)
        self.setWidget(self._box)
        self.rows: dict[int, JobRow] = {}
        self._clock = QTimer(self)  # the running jobs' elapsed time, once a second
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self._tick)
        queue.added.connect(self._added)
        queue.changed.connect(lambda job: self._row_do(job, lambda row: row.set_status(job.status)))
        queue.image.connect(lambda job, _entry, _extra: self._row_do(job, JobRow.image_received))
        queue.ended.connect(lambda job: self._row_do(job, JobRow.end))
        queue.removed.connect(lambda job: self._drop(job.job_id))

    def running(self) -> list[int]:
        return self.queue.running()

    def remove(self, job_id: int) -> None:
        """Dismiss an ended job."""
        self.queue.remove(job_id)

    def _row_do(self, job: Job | None, action: Callable[[JobRow], object]) -> None:
        row = self.rows.get(job.job_id) if job is not None else None
        if row is not None:
            action(row)

    def _added(self, job: Job) -> None:
        row = JobRow(job, self._box, costs_simulated=lambda: self.costs_simulated)
        row.cancelRequested.connect(self.cancelRequested)
        row.retryRequested.connect(self.retryRequested)
        row.dismissRequested.connect(self.remove)
        self._layout.insertWidget(0, row)
        self.rows[job.job_id] = row
        self._order_tab()
        self._empty.setVisible(False)
        self._clock.start()

    def _order_tab(self) -> None:
        """Tab goes through the rows as they are drawn, the newest on top first: a new
        row's buttons join the window's chain after the rows before it, and Tab went
        through the rows from the bottom up."""
        buttons = [b for _, r in sorted(self.rows.items(), reverse=True) for b in (r.cancel, r.retry, r.dismiss)]
        for first, second in itertools.pairwise(buttons):
            QWidget.setTabOrder(first, second)

    def _tick(self) -> None:
        running = [row for row in self.rows.values() if row.info.running]
        for row in running:
            row.tick()
        if not running:
            self._clock.stop()

    def _drop(self, job_id: int) -> None:
        row = self.rows.pop(job_id, None)
        if row is not None:
            focused = QApplication.focusWidget()
            had_focus = focused is not None and row.isAncestorOf(focused)
            row.setParent(None)
            row.deleteLater()
            if had_focus:  # Try again or ✕ pressed from the keyboard: the focus stays in the list
                QTimer.singleShot(0, self.focus_newest)
        self._empty.setVisible(not self.rows)

    def focus_newest(self) -> None:
        """The focus on the newest row's first button (the new job's Cancel after Try
        again), or on the list when it has no row."""
        if self.rows:
            top = self.rows[max(self.rows)]
            for button in (top.cancel, top.retry, top.dismiss):
                if button.isVisibleTo(top):
                    button.setFocus(Qt.FocusReason.OtherFocusReason)
                    return
        self.setFocus(Qt.FocusReason.OtherFocusReason)


def may_try_again(job: Job) -> bool:
    """Whether ``job`` may be sent again as it was: it failed of the service as reached
    (busy, out of reach, a task it failed: not a request it refused, which would be refused
    again) with no image, nothing of it is to come later (sent again, the images delivered
    or still to be collected would be paid for twice), it is no sweep's cell (a sweep is
    sent as a whole, not one cell on its own), no task an earlier run sent (its request
    is rebuilt from a record that keeps neither its sweep nor the images saved then), the
    person did not cancel it, and it was not refused a key that only the environment sets
    (nothing in the app changes that key: sent again, it would be refused again)."""
    from krea_desktop.api import errors as E
    from krea_desktop.user_words import IN_THE_ENVIRONMENT, where_the_key_is

    kept = bool(getattr(job.error, "record_kept", False))
    arrived = job.received or getattr(job.error, "images_arrived", 0)  # saved, or held for want of room
    return (
        job.state == "failed"
        and E.said_of_the_service(job.error)
        and not (isinstance(job.error, E.AuthenticationError) and where_the_key_is() == IN_THE_ENVIRONMENT)
        and not arrived
        and not kept
        and job.request.sweep is None
        and not job.collected
        and not job.cancelling
    )


def _duration(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole} s" if whole < 60 else f"{whole // 60} min {whole % 60:02d} s"

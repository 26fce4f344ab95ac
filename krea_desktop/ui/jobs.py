"""The queue of running and finished jobs: one row each, with progress and its own cancel."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from krea_desktop.api.request import GenerationRequest


@dataclass
class JobInfo:
    job_id: int
    request: GenerationRequest
    received: int = 0
    cost: float = 0.0
    state: str = "running"  # running | finished | failed | cancelled


class JobRow(QFrame):
    cancelRequested = Signal(int)
    dismissRequested = Signal(int)

    def __init__(self, info: JobInfo, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("jobRow")
        self.info = info
        self.setFrameShape(QFrame.Shape.StyledPanel)
        prompt = info.request.prompt.replace("\n", " ")
        self.title = QLabel(prompt[:70] + ("…" if len(prompt) > 70 else ""), self)
        self.title.setToolTip(prompt[:500])
        self.status = QLabel("Queued", self)
        self.status.setObjectName("jobStatus")
        self.status.setWordWrap(True)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, info.request.number_results)
        self.progress.setValue(0)
        self.progress.setFormat(f"%v of {info.request.number_results}")
        self.progress.setToolTip("Images received for this job")
        self.cancel = QToolButton(self)
        self.cancel.setObjectName("jobCancelButton")
        self.cancel.setText("Cancel")
        self.cancel.setToolTip("Cancel this job; images already received are kept")
        self.cancel.clicked.connect(lambda: self.cancelRequested.emit(info.job_id))
        self.dismiss = QToolButton(self)
        self.dismiss.setText("✕")
        self.dismiss.setToolTip("Remove this finished job from the list")
        self.dismiss.setVisible(False)
        self.dismiss.clicked.connect(lambda: self.dismissRequested.emit(info.job_id))

        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.cancel)
        top.addWidget(self.dismiss)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.setSpacing(2)
        lay.addLayout(top)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    def image_received(self) -> None:
        self.info.received += 1
        self.progress.setValue(self.info.received)

    def end(self, state: str, text: str) -> None:
        self.info.state = state
        self.status.setText(text)
        self.cancel.setVisible(False)
        self.dismiss.setVisible(True)
        self.setProperty("state", state)
        self.style().unpolish(self)
        self.style().polish(self)


class JobList(QScrollArea):
    """Newest job on top. Finished rows stay (with their outcome) until dismissed."""

    cancelRequested = Signal(int)

    MAX_FINISHED = 20

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("jobList")
        self.setWidgetResizable(True)
        self.setToolTip("Jobs: each shows its progress and can be cancelled on its own")
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

    def add(self, info: JobInfo) -> JobRow:
        row = JobRow(info, self._box)
        row.cancelRequested.connect(self.cancelRequested)
        row.dismissRequested.connect(self.remove)
        self._layout.insertWidget(0, row)
        self.rows[info.job_id] = row
        self._empty.setVisible(False)
        self._trim()
        return row

    def remove(self, job_id: int) -> None:
        row = self.rows.pop(job_id, None)
        if row is not None:
            row.setParent(None)
            row.deleteLater()
        self._empty.setVisible(not self.rows)

    def running(self) -> list[int]:
        return [j for j, r in self.rows.items() if r.info.state == "running"]

    def _trim(self) -> None:
        finished = [j for j, r in sorted(self.rows.items()) if r.info.state != "running"]
        for job_id in finished[: max(0, len(finished) - self.MAX_FINISHED)]:
            self.remove(job_id)

"""The jobs list: a row as wide as the list gives it, whatever its prompt."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from krea_desktop.api import errors as E
from krea_desktop.api.request import GenerationRequest
from krea_desktop.models.jobs import JobQueue
from krea_desktop.ui.jobs.job_list import JobList


def test_a_long_prompt_is_cut_to_the_row_not_the_row_widened_past_the_list(qtbot: QtBot) -> None:
    # At 800 x 600 the row of a long prompt was wider than the list: a horizontal scroll
    # bar, and Cancel (or Try again) half off the edge.
    queue = JobQueue()
    jobs = JobList(queue)
    qtbot.addWidget(jobs)
    jobs.resize(430, 200)
    jobs.show()
    prompt = "a lighthouse in fog at dawn, gouache on toned paper, soft light, " * 4
    queue.add(1, GenerationRequest(prompt))
    row = jobs.rows[1]
    qtbot.waitUntil(lambda: row.isVisible() and row.width() > 0)
    failure = E.TaskError("The service failed while generating.")
    queue.failed(1, failure.message, failure)
    bar = jobs.horizontalScrollBar()
    qtbot.waitUntil(lambda: row.retry.isVisible() and row.dismiss.isVisible())
    assert not bar.isVisible() or bar.maximum() == 0
    assert row.width() <= jobs.viewport().width()
    for button in (row.retry, row.dismiss):
        assert button.geometry().right() < row.width()
    narrow = row.title.text()
    assert narrow.endswith("…") and prompt.startswith(narrow[:-1]) and row.title.toolTip().startswith("a lighthouse")
    jobs.resize(1400, 200)  # wider, more of it shows
    qtbot.waitUntil(lambda: len(row.title.text()) > len(narrow))
    assert prompt.startswith(row.title.text().removesuffix("…"))


def test_a_collected_job_with_nothing_left_shows_a_bar_not_a_busy_sweep(qtbot: QtBot) -> None:
    # A run killed after saving its last image but before removing its task's note: the
    # next start collects that task, expecting 4 - 4 = 0 images. Its bar's range became 0
    # to 0, Qt's busy indicator, which swept on in the row after the job had ended.
    queue = JobQueue()
    jobs = JobList(queue)
    qtbot.addWidget(jobs)
    queue.add(1, GenerationRequest("four lanterns", number_results=4), collected=True)
    queue.collecting(1, 4)
    queue.set_status(1, "Collecting the rest of an earlier job's images…")
    row = jobs.rows[1]
    assert (row.progress.minimum(), row.progress.maximum()) == (0, 1)
    assert row.progress.text().startswith("0 of 0")
    queue.finished(1)
    assert row.progress.maximum() == 1 and row.dismiss.isVisibleTo(jobs)

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

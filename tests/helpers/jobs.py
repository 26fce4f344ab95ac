"""Queueing generations through the real window, as a person pressing Generate would."""

from __future__ import annotations

from typing import Any


def queue_jobs(window: Any, n: int, label: str) -> list[int]:
    """Press Generate ``n`` times, each with its own prompt (``"<label> <i>: ..."``), and
    return the job ids in order. ``window`` is a ``MainWindow``."""
    ids = []
    for i in range(n):
        window.prompt_panel.promptEdit.setPlainText(f"{label} {i}: a lighthouse in fog")
        job = window.generate()
        assert job is not None, "Generate did not start a job"
        ids.append(job)
    return ids

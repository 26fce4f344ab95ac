"""Every fault the simulator can inject, through the real window against the simulator on
127.0.0.1: each ends in the complete result without a second submission, or in a clear
message with the images received so far kept, and the window keeps handling events."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from krea_desktop.api.client import PollPolicy, RetryPolicy
from krea_desktop.simulator.faults import parse_fault
from krea_desktop.ui.app import create_main_window
from krea_desktop.ui.compose import prompt_panel
from krea_desktop.ui.window.main_window import MainWindow
from tests.helpers.keyrings import MemoryKeyring
from tests.helpers.sim import Sim, running_simulator

# fault -> what must happen: "complete" or the phrase the message must carry
FAULTS = {
    "429:retry-after=0.1": "complete",
    "500": "complete",
    "502": "complete",
    "503x2": "complete",
    "504": "complete",
    "drop-before": "complete",
    "drop-after": "complete",
    "hang": "complete",
    "malformed-json": "complete",
    "bad-base64": "complete",
    "truncated-png": "complete",
    "wrong-size": "complete",
    "conflict": "complete",
    "fewer-images": "2 of 3",
    "task-error": "failed while generating",
    "503*": "busy",
    "hang*:on=any": "did not answer within",
    "bad-base64*:on=any": "not valid base64",
    "wrong-size*:on=any": "instead of 1024×1024",
}


@pytest.fixture
def window(qtbot: QtBot, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MainWindow, Sim]]:
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    with running_simulator() as sim:
        monkeypatch.setenv("RUNWARE_API_KEY", "fault-test-key")
        monkeypatch.setenv("RUNWARE_API_URL", sim.url)
        w = create_main_window()
        qtbot.addWidget(w)
        w.show()
        client: Any = w.client_thread.wait_ready()
        client.retry = RetryPolicy(attempts=4, base=0.02, cap=0.1, retry_after_cap=0.2)
        client.poll = PollPolicy(initial=0.02, factor=1.5, maximum=0.1, minimum=0.01)
        client.timeout = 0.5
        client.sync_timeout_per_image = 0.0
        yield w, sim
        w.close()
    keyring.set_keyring(previous)


@pytest.mark.parametrize("delivery", ["sync", "async"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_through_the_window(
    qtbot: QtBot, window: tuple[MainWindow, Sim], fault: str, delivery: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    w, sim = window
    if "base64" in fault:  # the window asks for URLs by default: ask for the data this fault spoils
        monkeypatch.setattr(prompt_panel, "DEFAULT_OUTPUT_TYPE", "base64Data")
    sim.service.inject(parse_fault(fault))
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(5)
    outcome: dict[str, Any] = {}
    w.client_thread.jobFinished.connect(lambda _j, n: outcome.update(state="finished", n=n))
    w.client_thread.jobFailed.connect(lambda _j, msg, _e: outcome.update(state="failed", message=msg))
    w.prompt_panel.promptEdit.setPlainText("a harbour at dawn")
    w.prompt_panel.countSpin.setValue(3)
    w.prompt_panel.deliveryCombo.setCurrentIndex(w.prompt_panel.deliveryCombo.findData(delivery))
    received: list[str] = []
    w.client_thread.imageReady.connect(lambda _j, entry, _t: received.append(entry.image_uuid))
    assert w.generate() is not None
    qtbot.waitUntil(lambda: "state" in outcome, timeout=30_000)
    timer.stop()

    expected = FAULTS[fault]
    if expected == "complete":
        assert outcome == {"state": "finished", "n": 3}, outcome
    else:
        assert outcome["state"] == "failed"
        message = outcome["message"]
        assert expected in message
        assert "\n" not in message and "Traceback" not in message and message.endswith(".")
        assert expected in w.message_banner.label.text()
    assert max(sim.service.submissions.values(), default=0) <= 1, "submitted twice"
    # everything received is kept, on disk and in the gallery
    entries = w.library.entries()
    assert sorted(e.image_uuid for e in entries) == sorted(received)
    assert all(e.path.exists() for e in entries)
    assert w.model.rowCount() == len(received)
    # the window went on handling events while the job ran (its longest pause is
    # measured in tests/benchmarks/bench_gui_stall.py, not asserted here)
    assert ticks
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    print(f"{fault} {delivery}: {outcome['state']}, longest GUI pause {max(gaps, default=0) * 1000:.0f} ms")


def test_a_connection_lost_while_following_a_task_says_its_images_are_collected_later(
    qtbot: QtBot, window: tuple[MainWindow, Sim], data_dir: Path
) -> None:
    """The window said only "The connection to the service broke off.", and kept the task
    to collect at the next start without saying so: the paid images looked lost."""
    w, sim = window
    sim.service.inject(parse_fault("drop-after*:on=getResponse"))
    failed: list[str] = []
    w.client_thread.jobFailed.connect(lambda _j, message, _e: failed.append(message))
    w.prompt_panel.promptEdit.setPlainText("a harbour at dawn")
    w.prompt_panel.deliveryCombo.setCurrentIndex(w.prompt_panel.deliveryCombo.findData("async"))
    assert w.generate() is not None
    qtbot.waitUntil(lambda: bool(failed), timeout=30_000)
    tries = w.client_thread.wait_ready().retry.attempts  # each try said as it happened; the last, how many
    said = f"The connection to the service broke off ({tries} times in a row); the task's images are collected later."
    assert failed == [said]
    assert w.message_banner.label.text() == said
    assert len(list((data_dir / "pending").glob("*.json"))) == 1

"""The main window end to end: widgets -> client thread -> simulator on 127.0.0.1 ->
library -> gallery."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QLabel, QPushButton
from pytestqt.qtbot import QtBot

from krea_desktop import keystore
from krea_desktop.api.client import RetryPolicy
from krea_desktop.library.store import Library
from krea_desktop.simulator.faults import parse_fault
from krea_desktop.ui.app import create_main_window
from krea_desktop.ui.window.main_window import MainWindow
from tests.helpers.images import distinct_png
from tests.helpers.index_damage import damage_a_page_of_the_table
from tests.helpers.keyrings import MemoryKeyring
from tests.helpers.sim import Sim, running_simulator

KEY = "sk-window-test-key"


@pytest.fixture
def sim() -> Iterator[Sim]:
    with running_simulator() as s:
        yield s


@pytest.fixture
def make_window(
    qtbot: QtBot, data_dir: Path, sim: Sim, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    windows: list[MainWindow] = []

    def make(key: str | None = KEY, *, stored: bool = False) -> MainWindow:
        """``stored``: the key set in Settings (the key store), not in the environment."""
        if key and not stored:
            monkeypatch.setenv("RUNWARE_API_KEY", key)
        else:
            monkeypatch.delenv("RUNWARE_API_KEY", raising=False)
        if key and stored:
            keystore.save_key(key, data_dir)
        monkeypatch.setenv("RUNWARE_API_URL", sim.url)
        w = create_main_window(demo_latency=0.0)
        qtbot.addWidget(w)
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.close()


@pytest.fixture
def window(make_window: Any) -> MainWindow:
    w: MainWindow = make_window()
    w.show()
    return w


def write_png(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (96, 64)) -> Path:
    Image.new("RGB", size, color).save(path)
    return path


def inference_tasks(sim: Sim) -> list[dict[str, Any]]:
    return [t for _, tasks in sim.service.requests for t in tasks if t.get("taskType") == "imageInference"]


def upload_tasks(sim: Sim) -> list[dict[str, Any]]:
    return [t for _, tasks in sim.service.requests for t in tasks if t.get("taskType") == "imageUpload"]


def generate_and_wait(qtbot: QtBot, w: MainWindow, timeout: int = 30000) -> Any:
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=timeout) as blocker:
        qtbot.mouseClick(w.prompt_panel.generateButton, Qt.MouseButton.LeftButton)
    return blocker.args


def test_composed_request_reaches_the_service_exactly(
    qtbot: QtBot, window: MainWindow, sim: Sim, tmp_path: Path
) -> None:
    w = window
    qtbot.mouseClick(w.findChild(QPushButton, "ratio_16_9") or w.ratio_bar.button("16:9"), Qt.MouseButton.LeftButton)
    assert w.ratio_bar.ratio() == "16:9"
    w.prompt_panel.promptEdit.setPlainText("a lighthouse in fog, gouache")
    w.prompt_panel.creativityCombo.setCurrentIndex(w.prompt_panel.creativityCombo.findData("high"))
    w.prompt_panel.countSpin.setValue(3)
    w.prompt_panel.seedEdit.setText("1234")
    red = write_png(tmp_path / "red.png", (220, 20, 20))
    blue = write_png(tmp_path / "blue.png", (20, 20, 220))
    assert w.tray.add_reference(red)
    assert w.tray.add_reference(blue)
    w.tray.wait_for_loads()
    qtbot.waitUntil(lambda: w.tray.count() == 2 and not w.tray.isBusy())
    items = w.tray.items()
    items[0].strengthSpin.setValue(1.25)
    items[1].strengthSpin.setValue(-0.8)

    _job_id, received = generate_and_wait(qtbot, w)
    assert received == 3

    (task,) = inference_tasks(sim)
    uploads = upload_tasks(sim)
    assert len(uploads) == 2
    colours = []
    for up in uploads:
        data = base64.b64decode(up["image"].split(",", 1)[1])
        with Image.open(io.BytesIO(data)) as im:
            colours.append(im.convert("RGB").getpixel((5, 5)))
    assert colours == [(220, 20, 20), (20, 20, 220)]
    upload_uuids = [item["imageUUID"] for item in _upload_answers(sim)]
    assert {k: task[k] for k in ("width", "height", "positivePrompt", "numberResults", "seed")} == {
        "width": 1376,
        "height": 768,
        "positivePrompt": "a lighthouse in fog, gouache",
        "numberResults": 3,
        "seed": 1234,
    }
    assert task["settings"] == {"creativity": "high"}
    assert task["model"] == "krea:krea@2-medium"
    assert task["inputs"]["referenceImages"] == [
        {"image": upload_uuids[0], "strength": 1.25},
        {"image": upload_uuids[1], "strength": -0.8},
    ]
    # every image is in the library and in the gallery, newest first
    assert w.model.rowCount() == 3
    assert w.library.count() == 3
    entry = w.model.data(w.model.index(0), w.model.EntryRole)
    assert entry.path.exists() and entry.ratio == "16:9"
    assert [r.strength for r in entry.references] == [1.25, -0.8]


def _upload_answers(sim: Sim) -> list[dict[str, Any]]:
    # The simulator's uploads, in the order they were made (their UUIDs as handed out).
    return [{"imageUUID": u} for u in sim.service.upload_order]


def two_async_jobs(w: MainWindow, sim: Sim, latency: float, *jobs: tuple[str, int]) -> list[int]:
    """Send ``jobs`` (prompt, count) with async delivery, the simulator taking ``latency``
    seconds an image; their ids."""
    sim.service.config.latency_per_image = latency
    w.prompt_panel.deliveryCombo.setCurrentIndex(w.prompt_panel.deliveryCombo.findData("async"))
    ids = []
    for prompt, count in jobs:
        w.prompt_panel.promptEdit.setPlainText(prompt)
        w.prompt_panel.countSpin.setValue(count)
        job_id = w.generate()
        assert job_id is not None
        ids.append(job_id)
    return ids


def test_images_appear_one_by_one_and_the_last_seed_can_be_reused(qtbot: QtBot, window: MainWindow, sim: Sim) -> None:
    w = window
    sim.service.config.latency_per_image = 0.15
    w.prompt_panel.promptEdit.setPlainText("a red kite over dunes")
    w.prompt_panel.countSpin.setValue(4)
    w.prompt_panel.deliveryCombo.setCurrentIndex(w.prompt_panel.deliveryCombo.findData("async"))
    arrivals: list[int] = []
    w.client_thread.imageReady.connect(lambda *_: arrivals.append(w.model.rowCount()))
    generate_and_wait(qtbot, w)
    assert arrivals == [1, 2, 3, 4]
    qtbot.mouseClick(w.prompt_panel.reuseSeedButton, Qt.MouseButton.LeftButton)
    assert w.prompt_panel.seed() == w.library.entries()[0].seed


def test_ctrl_enter_generates_and_escape_cancels_the_newest_job(qtbot: QtBot, window: MainWindow, sim: Sim) -> None:
    w = window
    sim.service.config.latency_per_image = 0.3
    w.prompt_panel.promptEdit.setPlainText("a slow batch of ten")
    w.prompt_panel.countSpin.setValue(10)
    w.prompt_panel.deliveryCombo.setCurrentIndex(w.prompt_panel.deliveryCombo.findData("async"))
    w.activateWindow()
    w.prompt_panel.promptEdit.setFocus()
    with qtbot.waitSignal(w.client_thread.imageReady, timeout=15000):
        qtbot.keyClick(w.prompt_panel.promptEdit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert w.cancel_button.isEnabled()
    with qtbot.waitSignal(w.client_thread.jobCancelled, timeout=10000) as blocker:
        qtbot.keyClick(w, Qt.Key.Key_Escape)
    job_id, received = blocker.args
    assert 1 <= received < 10
    # what arrived before cancelling is kept, on disk and in the gallery
    assert w.library.count() == received
    assert w.model.rowCount() == received
    assert w.job_list.rows[job_id].info.state == "cancelled"
    assert not w.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: w.statusBar().currentMessage() == f"Job {job_id} cancelled: {received} of 10 images saved.")


def test_a_job_cancelled_with_its_whole_answer_in_hand_keeps_every_image_of_it(
    qtbot: QtBot, window: MainWindow, sim: Sim
) -> None:
    w = window
    w.prompt_panel.promptEdit.setPlainText("eight at once, then cancelled")
    w.prompt_panel.countSpin.setValue(8)
    w.prompt_panel.deliveryCombo.setCurrentIndex(w.prompt_panel.deliveryCombo.findData("sync"))
    ended: list[tuple[str, int]] = []
    w.client_thread.jobFinished.connect(lambda _j, n: ended.append(("finished", n)))
    w.client_thread.jobCancelled.connect(lambda _j, n: ended.append(("cancelled", n)))
    shown: list[int] = []

    def cancel_at_the_first(job_id: int, *_rest: object) -> None:
        if not shown:
            w.client_thread.cancel(job_id)  # the answer, with all eight, has arrived
        shown.append(job_id)

    w.client_thread.imageReady.connect(cancel_at_the_first)
    w.generate()
    qtbot.waitUntil(lambda: bool(ended), timeout=20000)
    assert ended == [("finished", 8)]  # paid for and received: every one kept, and said
    assert w.library.count() == 8 and len(shown) == 8


def test_a_job_cancelled_while_the_service_makes_its_images_ends_at_once(
    qtbot: QtBot, window: MainWindow, sim: Sim
) -> None:
    w = window
    sim.service.config.latency_per_image = 20.0
    w.prompt_panel.promptEdit.setPlainText("a slow pair, called off")
    w.prompt_panel.countSpin.setValue(2)
    w.prompt_panel.deliveryCombo.setCurrentIndex(w.prompt_panel.deliveryCombo.findData("async"))
    job_id = w.generate()
    qtbot.waitUntil(lambda: bool(inference_tasks(sim)), timeout=10000)  # sent: now it is waited for
    started = time.monotonic()
    with qtbot.waitSignal(w.client_thread.jobCancelled, timeout=15_000) as blocker:
        w.client_thread.cancel(job_id)
    assert blocker.args == [job_id, 0]
    assert time.monotonic() - started < 10  # not after the next poll's answer, 20 s on


def test_cancelled_again_and_again_while_an_image_is_saved_the_job_still_ends_and_counts_it(
    qtbot: QtBot, window: MainWindow, sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from krea_desktop.ui.jobs import client_thread as ct

    w = window
    saving = threading.Event()
    real = ct.save_and_thumbnail

    def slow(*args: Any, **kwargs: Any) -> Any:
        saving.set()
        time.sleep(1.0)
        return real(*args, **kwargs)

    monkeypatch.setattr(ct, "save_and_thumbnail", slow)
    w.prompt_panel.promptEdit.setPlainText("two, saved slowly")
    w.prompt_panel.countSpin.setValue(2)
    w.prompt_panel.deliveryCombo.setCurrentIndex(w.prompt_panel.deliveryCombo.findData("sync"))
    job_id = w.generate()
    qtbot.waitUntil(saving.is_set, timeout=10000)
    with qtbot.waitSignal(w.client_thread.jobCancelled, timeout=8000) as blocker:
        for _ in range(3):  # the soft cancel, then two that end it at once
            w.client_thread.cancel(job_id)
            qtbot.wait(100)
    assert blocker.args[0] == job_id and blocker.args[1] >= 1  # the image being saved is counted
    assert w.library.count() == blocker.args[1]
    qtbot.waitUntil(lambda: not w.jobs.running())


def test_escape_twice_cancels_the_newest_job_then_the_one_before(qtbot: QtBot, window: MainWindow, sim: Sim) -> None:
    w = window
    older, newer = two_async_jobs(w, sim, 5.0, ("an older slow pair", 2), ("a newer slow pair", 2))
    ended: list[int] = []
    w.client_thread.jobCancelled.connect(lambda job_id, _n: ended.append(job_id))
    w.cancel_newest()
    job = w.jobs.get(newer)
    assert job is not None and job.cancelling and job.status.startswith("Cancelling")
    assert not w.job_list.rows[newer].cancel.isEnabled()  # asked once: not asked again from its row
    w.cancel_newest()  # the next Esc is the older job's
    qtbot.waitUntil(lambda: sorted(ended) == sorted([older, newer]), timeout=5000)
    assert not w.jobs.running() and not w.cancel_button.isEnabled()


def test_a_jobs_cancel_pressed_twice_from_the_keyboard_cancels_that_job_only(
    qtbot: QtBot, window: MainWindow, sim: Sim
) -> None:
    """Its Cancel, disabled while the job is cancelled, handed the focus to the next job's
    Cancel: the same key pressed again cut short a second, paid job."""
    w = window
    w.show()
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w)
    older, newer = two_async_jobs(w, sim, 5.0, ("an older slow pair", 2), ("a newer slow pair", 2))
    ended: list[int] = []
    w.client_thread.jobCancelled.connect(lambda job_id, _n: ended.append(job_id))
    row = w.job_list.rows[older]
    qtbot.waitUntil(lambda: all(r.cancel.isVisible() for r in w.job_list.rows.values()))
    row.cancel.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is row.cancel)
    qtbot.keyClick(row.cancel, Qt.Key.Key_Space)
    focused = QApplication.focusWidget()
    assert focused is row, focused  # the row itself, until the job ends
    qtbot.keyClick(focused, Qt.Key.Key_Space)  # again, at once
    qtbot.waitUntil(lambda: ended == [older], timeout=5000)
    qtbot.wait(200)
    assert ended == [older] and w.jobs.running() == [newer]
    assert QApplication.focusWidget() is row.dismiss  # the row's ✕, once it has ended
    w.cancel_newest()
    qtbot.waitUntil(lambda: not w.jobs.running(), timeout=5000)


def test_tab_goes_through_the_jobs_from_the_newest_on_top_down(qtbot: QtBot, window: MainWindow, sim: Sim) -> None:
    """The newest job is drawn on top, but Tab went from the oldest's Cancel up."""
    w = window
    w.show()
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w)
    ids = two_async_jobs(w, sim, 5.0, ("one", 1), ("two", 1), ("three", 1))
    qtbot.waitUntil(lambda: all(r.cancel.isVisible() for r in w.job_list.rows.values()))
    rows = [w.job_list.rows[i] for i in reversed(ids)]  # as drawn, top down
    assert [r.y() for r in rows] == sorted(r.y() for r in rows)
    rows[0].cancel.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is rows[0].cancel)
    seen = [rows[0].cancel.accessibleName()]
    for _ in range(2):
        focused = QApplication.focusWidget()
        assert focused is not None
        qtbot.keyClick(focused, Qt.Key.Key_Tab)
        seen.append(QApplication.focusWidget().accessibleName())  # type: ignore[union-attr]
    assert seen == [f"Cancel job {i}" for i in reversed(ids)]
    w.cancel_all_jobs()
    qtbot.waitUntil(lambda: not w.jobs.running(), timeout=5000)


def test_cancel_all_jobs_cancels_every_running_job_once(qtbot: QtBot, window: MainWindow, sim: Sim) -> None:
    w = window
    (action,) = [a for a in w.findChildren(QAction) if a.text() == "Cancel &all jobs"]
    # Offered only when there is something to cancel, as the Cancel button is: they did
    # nothing, and said nothing, with nothing running.
    assert not action.isEnabled() and not w.cancel_action.isEnabled()
    jobs = two_async_jobs(w, sim, 5.0, ("a first slow pair", 2), ("a second slow pair", 2))
    assert action.isEnabled() and w.cancel_action.isEnabled()
    ended: list[int] = []
    w.client_thread.jobCancelled.connect(lambda job_id, _n: ended.append(job_id))
    action.trigger()
    qtbot.waitUntil(lambda: sorted(ended) == sorted(jobs), timeout=5000)
    assert not w.jobs.running()
    qtbot.waitUntil(lambda: not action.isEnabled() and not w.cancel_action.isEnabled())


def test_escape_at_once_after_generate_ends_the_job_as_cancelled(qtbot: QtBot, window: MainWindow, sim: Sim) -> None:
    """Cancelled before the client thread had begun it, the job still says it ended: the
    window does not wait for it, nor show it running, for ever."""
    w = window
    w.prompt_panel.promptEdit.setPlainText("a batch called off at once")
    with qtbot.waitSignal(w.client_thread.jobCancelled, timeout=10000) as blocker:
        job_id = w.generate()
        w.cancel_newest()
    assert blocker.args == [job_id, 0]
    qtbot.waitUntil(lambda: not w.jobs.running())
    assert w.job_list.rows[job_id].info.state == "cancelled"
    assert not w.cancel_button.isEnabled()


def test_escape_in_the_search_clears_it_and_leaves_the_running_job(qtbot: QtBot, window: MainWindow, sim: Sim) -> None:
    w = window
    sim.service.config.latency_per_image = 0.5
    w.prompt_panel.promptEdit.setPlainText("a batch that must not be cut short")
    w.prompt_panel.countSpin.setValue(4)
    job_id = w.generate()
    w.activateWindow()
    search = w.filter_bar.search
    search.setFocus()
    qtbot.keyClicks(search, "fox")
    qtbot.keyClick(search, Qt.Key.Key_Escape)
    assert search.text() == ""
    assert job_id in w.jobs.running()  # Esc was the search's
    qtbot.keyClick(search, Qt.Key.Key_Escape)  # again, in the search now empty: still the search's
    job = w.jobs.get(job_id)
    assert job is not None and not job.cancelling
    w.cancel_newest()


def test_new_results_a_filter_hides_are_said_and_the_count_stays_true(
    qtbot: QtBot, window: MainWindow, sim: Sim
) -> None:
    w = window
    w.prompt_panel.promptEdit.setPlainText("a first harbour")
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
        w.generate()
    qtbot.waitUntil(lambda: w.model.rowCount() == 1)
    w.filter_bar.favourites.setChecked(True)  # no favourite yet: nothing shown
    qtbot.waitUntil(lambda: w.model.rowCount() == 0)
    assert w.filter_bar.count_label.text() == "0 of 1"
    w.prompt_panel.promptEdit.setPlainText("three more harbours")
    w.prompt_panel.countSpin.setValue(3)
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
        w.generate()
    qtbot.waitUntil(lambda: w.library.count() == 4)
    QApplication.processEvents()
    assert w.model.rowCount() == 0
    assert w.filter_bar.count_label.text() == "0 of 4"  # not the stale "0 of 1"
    assert w.message_banner.label.text() == "New images are hidden by the search or the filters."
    w.message_banner.action.click()  # Show all
    qtbot.waitUntil(lambda: w.model.rowCount() == 4)
    assert not w.filter_bar.favourites.isChecked()


def test_two_jobs_run_at_once_and_each_can_be_cancelled(qtbot: QtBot, window: MainWindow, sim: Sim) -> None:
    w = window
    first, second = two_async_jobs(w, sim, 0.2, ("first job, a harbour", 8), ("second job, a meadow", 2))
    assert first is not None and second is not None and first != second
    assert len(w.job_list.running()) == 2
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=15000, check_params_cb=lambda j, n: j == second):
        pass
    with qtbot.waitSignal(w.client_thread.jobCancelled, timeout=10000):
        w.job_list.rows[first].cancel.click()
    prompts = {e.prompt for e in w.library.entries()}
    assert "second job, a meadow" in prompts
    assert len(inference_tasks(sim)) == 2
    assert w.job_list.rows[second].info.state == "finished"
    assert w.job_list.rows[first].info.state == "cancelled"


def test_a_wrong_key_says_so_and_offers_settings(qtbot: QtBot, make_window: Any, sim: Sim) -> None:
    sim.service.config.api_key = "the-right-key"
    w = make_window("a-wrong-key", stored=True)
    w.show()
    w.prompt_panel.promptEdit.setPlainText("two words")
    with qtbot.waitSignal(w.client_thread.jobFailed, timeout=15000):
        w.generate()
    assert w.message_banner.isVisible()
    assert w.message_banner.label.text() == "The API key was not accepted; check it in Settings."
    # What a screen reader says of it as it comes (it had no name, and said nothing).
    assert w.message_banner.accessibleName() == "Error: The API key was not accepted; check it in Settings."
    assert w.message_banner.action.text() == "Open Settings"
    w.message_banner.action.click()
    qtbot.waitUntil(lambda: getattr(w, "settings_dialog", None) is not None and w.settings_dialog.isVisible())
    w.settings_dialog.reject()


def test_a_new_key_withdraws_what_was_said_of_the_old_one_and_nothing_else(
    qtbot: QtBot, make_window: Any, sim: Sim
) -> None:
    sim.service.config.api_key = "the-right-key"
    w = make_window("a-wrong-key", stored=True)
    w.show()
    qtbot.waitUntil(lambda: w.built)
    unrelated = "2 files could not be read, so they were left out."
    w.show_message(unrelated, error=True)  # shown first: it waits behind the key's failure
    w.prompt_panel.promptEdit.setPlainText("two words")
    with qtbot.waitSignal(w.client_thread.jobFailed, timeout=15000):
        w.generate()
    refused = "The API key was not accepted; check it in Settings."
    assert w.message_banner.label.text() == refused
    keystore.save_key("the-right-key", w.data_dir)
    w._credentials_changed(key_stored=True, key_changed=True)  # as the Settings dialog does once a key is saved
    # The refusal no longer holds and goes; the other message is still there to be read.
    qtbot.waitUntil(lambda: w.message_banner.isVisible() and w.message_banner.label.text() == unrelated)
    w.message_banner.dismiss()
    assert not w.message_banner.isVisible()  # and the refusal does not come back after it
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=15000):
        w.generate()


def test_a_new_key_withdraws_the_refusal_even_once_its_job_row_is_gone(
    qtbot: QtBot, make_window: Any, sim: Sim
) -> None:
    sim.service.config.api_key = "the-right-key"
    w = make_window("a-wrong-key", stored=True)
    w.show()
    qtbot.waitUntil(lambda: w.built)
    w.prompt_panel.promptEdit.setPlainText("two words")
    with qtbot.waitSignal(w.client_thread.jobFailed, timeout=15000) as failed:
        w.generate()
    assert w.message_banner.label.text() == "The API key was not accepted; check it in Settings."
    w.job_list.rows[failed.args[0]].dismiss.click()  # the row's ✕: the job leaves the list
    keystore.save_key("the-right-key", w.data_dir)
    w._credentials_changed(key_stored=True, key_changed=True)
    assert not w.message_banner.isVisible()


def _failing_at_once_with_one_reference(qtbot: QtBot, w: MainWindow, reference: Path, prompt: str) -> None:
    """No retry of a failed request (a job fails at the service's first refusal), one
    reference in the tray, loaded, and ``prompt`` written."""
    w.client_thread.wait_ready().retry = RetryPolicy(attempts=1, base=0.01)
    w.tray.add_paths([reference])
    qtbot.waitUntil(lambda: len(w.tray.references()) == 1 and not w.tray.isBusy(), timeout=10000)
    w.prompt_panel.promptEdit.setPlainText(prompt)


def test_a_failed_job_is_sent_again_with_try_again_as_a_new_task_with_the_same_settings(
    qtbot: QtBot, window: MainWindow, sim: Sim, tmp_path: Path
) -> None:
    w = window
    _failing_at_once_with_one_reference(qtbot, w, write_png(tmp_path / "ref.png", (200, 40, 40)), "a lighthouse in fog")
    w.prompt_panel.countSpin.setValue(2)
    sim.service.inject(parse_fault("503"))
    with qtbot.waitSignal(w.client_thread.jobFailed, timeout=15000) as failed:
        w.generate()
    job_id = failed.args[0]
    row = w.job_list.rows[job_id]
    assert row.retry.isVisibleTo(w) and not row.cancel.isVisibleTo(w)
    said = w.message_banner.label.text()
    assert w.message_banner.isVisible() and said == w.jobs.get(job_id).message
    assert w.message_banner.action.text() == "Try again"  # there too, beside what went wrong
    w.tray.clear()  # the controls changed since: the job is sent as it was, not as they are now
    w.prompt_panel.promptEdit.setPlainText("something else entirely")
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=15000) as finished:
        row.retry.click()
    new_id = finished.args[0]
    assert new_id != job_id and finished.args[1] == 2
    assert job_id not in w.job_list.rows and w.job_list.rows[new_id].info.state == "finished"
    assert not (w.message_banner.isVisible() and w.message_banner.label.text() == said)  # no longer true
    first, again = inference_tasks(sim)[-2:]
    assert again["taskUUID"] != first["taskUUID"]
    same = ("positivePrompt", "width", "height", "numberResults", "seed", "inputs")
    assert {k: again.get(k) for k in same} == {k: first.get(k) for k in same}
    assert again["positivePrompt"] == "a lighthouse in fog" and len(again["inputs"]["referenceImages"]) == 1
    assert {e.prompt for e in w.library.entries()} == {"a lighthouse in fog"}


def test_a_job_finished_kept_to_be_collected_or_a_sweeps_cell_offers_no_try_again(
    qtbot: QtBot, window: MainWindow, sim: Sim
) -> None:
    from dataclasses import replace

    from krea_desktop.api import errors as E
    from krea_desktop.api.record import SweepTag
    from krea_desktop.api.request import GenerationRequest
    from krea_desktop.ui.jobs.job_list import JobRow, may_try_again

    w = window
    w.prompt_panel.promptEdit.setPlainText("a calm sea")
    generate_and_wait(qtbot, w)
    (row,) = w.job_list.rows.values()
    assert row.dismiss.isVisibleTo(w) and not row.retry.isVisibleTo(w)
    assert w.job_routing.try_again(row.info.job_id) is None  # only a failed job is sent again
    # A task the service took too long over is kept, and its images collected later:
    # sent again, it would be paid for twice.
    sim.service.inject("task-error:code=timeoutProvider")
    with qtbot.waitSignal(w.client_thread.jobFailed, timeout=15000) as failed:
        w.generate()
    assert "collected later" in failed.args[1]
    assert not w.job_list.rows[failed.args[0]].retry.isVisibleTo(w)
    assert w.job_routing.try_again(failed.args[0]) is None and len(inference_tasks(sim)) == 2
    # A job that failed with some of its images in hand: sent again whole, with the same
    # seed, it would pay again for the pictures it has.
    w.client_thread.wait_ready().retry = RetryPolicy(attempts=1, base=0.01)
    w.prompt_panel.countSpin.setValue(3)
    sim.service.inject("fewer-images")
    with qtbot.waitSignal(w.client_thread.jobFailed, timeout=15000) as failed:
        w.generate()
    partial = w.jobs.get(failed.args[0])
    assert partial is not None and partial.received == 2 and partial.error is not None
    assert not getattr(partial.error, "record_kept", False)  # nothing to come: only the images in hand
    assert not w.job_list.rows[partial.job_id].retry.isVisibleTo(w)
    assert w.job_routing.try_again(partial.job_id) is None and len(inference_tasks(sim)) == 3
    job = w.jobs.get(row.info.job_id)
    assert job is not None
    in_a_sweep = replace(GenerationRequest("a cell"), sweep=SweepTag("sweep-1", (), (0,)))
    cell = replace(job, request=in_a_sweep, state="failed", entries=[], error=E.TaskError("The service failed."))
    assert may_try_again(replace(cell, request=GenerationRequest("a cell")))  # its sweep is what decides
    sweep_row = JobRow(cell, w)
    sweep_row.end()
    assert not sweep_row.retry.isVisibleTo(w)
    # A request the service refused (a parameter, a content check) would be refused again.
    no = E.ValidationError("The prompt was refused.", parameter="positivePrompt")
    refused = replace(job, state="failed", error=no)
    refused_row = JobRow(refused, w)
    refused_row.end()
    assert not refused_row.retry.isVisibleTo(w)
    # The same failure of the service may be sent again, but not once cancelled by the
    # person (an error answer arriving as Cancel was pressed), nor a task an earlier run
    # sent and this one collected (its record keeps neither its sweep nor what that run saved).
    busy = replace(job, state="failed", entries=[], error=E.ServiceBusyError("The service is busy."))
    assert may_try_again(busy)
    assert not may_try_again(replace(busy, cancelling=True)) and not may_try_again(replace(busy, collected=True))


def test_a_job_whose_images_came_but_could_not_be_saved_is_not_sent_again(
    qtbot: QtBot, window: MainWindow, sim: Sim, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Two of three images came and wait in memory for room in the library (saved: none):
    # Try again would have paid again for them.
    import tempfile

    w = window
    w.client_thread.wait_ready().retry = RetryPolicy(attempts=1, base=0.01)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the images wait at the end

    def disk_full(*_a: Any, **_k: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Library, "save", disk_full)
    w.prompt_panel.countSpin.setValue(3)
    w.prompt_panel.promptEdit.setPlainText("a paper boat")
    sim.service.inject("fewer-images")
    with qtbot.waitSignal(w.client_thread.jobFailed, timeout=15000) as failed:
        w.generate()
    job = w.jobs.get(failed.args[0])
    assert job is not None and job.received == 0 and len(w.client_thread._saver.held) == 2
    assert not w.job_list.rows[job.job_id].retry.isVisibleTo(w)
    assert w.job_routing.try_again(job.job_id) is None and len(inference_tasks(sim)) == 1


def test_a_job_collected_from_an_earlier_run_that_fails_is_not_sent_again(
    qtbot: QtBot, make_window: Any, sim: Sim, data_dir: Path
) -> None:
    import subprocess
    import sys
    import uuid

    from krea_desktop.api.record import GenerationRecord, SweepAxis, SweepTag
    from krea_desktop.api.request import GenerationRequest
    from krea_desktop.library.pending import PendingTasks

    # A sweep cell of four images, two of them saved by a run that ended; the service no
    # longer has the task. Sent again, its request (rebuilt from the record, without its
    # sweep) would pay again for those two and leave the sheet's cell empty.
    tag = SweepTag("sweep-1", (SweepAxis("seed", (1, 2)),), (1,))
    request = GenerationRequest("harbour at night", number_results=4, seed=2, delivery_method="async", sweep=tag)
    pending = PendingTasks(data_dir)
    task = pending.submitted(request, [], GenerationRecord(prompt="harbour at night", sweep=tag), sim.url)
    assert task is not None
    for _ in range(2):
        pending.received(task, str(uuid.uuid4()))
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    task.path.rename(task.path.with_name(f"{int(ended.stdout)}-{request.task_uuid}.json"))
    w = make_window()
    w.show()
    qtbot.waitUntil(lambda: any(j.state != "running" for j in w.jobs.jobs()), timeout=30000)
    (job,) = w.jobs.jobs()
    assert job.state == "failed" and job.collected
    assert not w.job_list.rows[job.job_id].retry.isVisibleTo(w)
    assert not (w.message_banner.isVisible() and w.message_banner.action.text() == "Try again")
    assert w.job_routing.try_again(job.job_id) is None and not inference_tasks(sim)


def test_the_demo_window_says_nothing_of_its_old_tasks_and_keeps_a_note_that_may_be_paid(
    qtbot: QtBot, make_window: Any, data_dir: Path
) -> None:
    import subprocess
    import sys

    from krea_desktop.api.record import GenerationRecord
    from krea_desktop.api.request import GenerationRequest
    from krea_desktop.backend import DEMO_SERVICE
    from krea_desktop.library.pending import PendingTasks

    # A demo task noted by an earlier version, and a task whose note does not say where it
    # went (it may have been paid for on Runware): the demo window collected both from its
    # own simulator, said twice "The service no longer has this job…" and deleted both.
    pending = PendingTasks(data_dir)
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    notes = []
    for prompt, service in (("a demo lantern", DEMO_SERVICE), ("a lantern sent somewhere", "")):
        request = GenerationRequest(prompt, number_results=2, delivery_method="async")
        task = pending.submitted(request, [], GenerationRecord(prompt=prompt), service)
        assert task is not None
        notes.append(task.path.rename(task.path.with_name(f"{int(ended.stdout)}-{request.task_uuid}.json")))
    demo, unsaid = notes
    w = make_window(None)
    w.show()
    qtbot.waitUntil(lambda: w.built and not demo.exists(), timeout=30000)
    qtbot.wait(200)
    assert w.jobs.jobs() == [] and unsaid.exists()
    assert not w.message_banner.isVisible() or "no longer" not in w.message_banner.label.text()


def test_esc_and_cancel_leave_a_job_collecting_what_an_earlier_run_paid_for(qtbot: QtBot, window: MainWindow) -> None:
    """Esc pressed as the window opened (or Cancel, or Cancel all jobs) ended the job the
    app began itself to collect an earlier run's images, and its record went with it: the
    images paid for were lost for good. Its own row's Cancel still ends it."""
    from krea_desktop.api.request import GenerationRequest

    w = window
    qtbot.waitUntil(lambda: w.built)
    w._job_started(9001, GenerationRequest("harbour at night", number_results=4))  # as the client thread begins it
    job = w.jobs.get(9001)
    assert job is not None and job.collected and job.running
    assert not w.cancel_button.isEnabled()
    w.prompt_panel.promptEdit.setFocus()
    qtbot.keyClick(w.prompt_panel.promptEdit, Qt.Key.Key_Escape)
    w.cancel_newest()
    w.cancel_all_jobs()
    assert not job.cancelling and job.running
    w.job_routing.cancel_row(9001)
    assert job.cancelling


def test_images_held_for_want_of_room_are_saved_once_there_is_some_and_their_job_says_so(
    qtbot: QtBot, window: MainWindow, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk as a job's images came: its row said "Done: 0 images saved."; freed,
    nothing was saved until another image came or the app quit, the sentence promising
    it stayed, its task's record stayed for the next start, and with its row dismissed
    the images saved later never reached the gallery."""
    from tests.helpers.disk import a_disk_that_fills

    full = a_disk_that_fills(monkeypatch, full=True)
    w = window
    qtbot.waitUntil(lambda: w.built)
    w.prompt_panel.promptEdit.setPlainText("three paper boats")
    w.prompt_panel.countSpin.setValue(3)
    job_id, _received = generate_and_wait(qtbot, w)
    job = w.jobs.get(job_id)
    assert job is not None and job.message == "Done: 0 images saved; 3 images are waiting to be saved."
    held = w.message_banner.label.text()
    assert held.startswith("3 paid images are kept in memory because the disk holding")
    assert len(list((data_dir / "pending").glob("*.json"))) == 1  # the next start would collect them
    w.jobs.remove(job_id)  # its row dismissed
    full["on"] = False  # room again, and no other image to come
    qtbot.waitUntil(lambda: w.model.rowCount() == 3, timeout=10000)
    assert w.library.count() == 3
    qtbot.waitUntil(lambda: w.message_banner.label.text() == "The images kept in memory are saved in the library now.")
    qtbot.waitUntil(lambda: not list((data_dir / "pending").glob("*.json")))
    # With its row kept, the row says so as each comes.
    full["on"] = True
    job_id, _received = generate_and_wait(qtbot, w)
    full["on"] = False
    job = w.jobs.get(job_id)
    assert job is not None and job.message == "Done: 0 images saved; 3 images are waiting to be saved."
    qtbot.waitUntil(lambda: job.received == 3, timeout=10000)
    assert job.message == "Done: 3 images saved." and w.library.count() == 6
    assert w.job_list.rows[job_id].status.text().startswith("Done: 3 images saved.")


def test_quitting_while_a_refused_task_waits_to_be_sent_again_leaves_nothing_to_collect(
    qtbot: QtBot, window: MainWindow, sim: Sim, data_dir: Path
) -> None:
    """Busy (503), the service never took the task; the app quit while it waited to send it
    again, and kept its record: the next start showed a failed job, "The service no longer
    has this job, so its images could not be collected"."""
    w = window
    qtbot.waitUntil(lambda: w.built)
    w.client_thread.wait_ready().retry = RetryPolicy(attempts=4, base=30.0, cap=30.0)
    sim.service.inject(parse_fault("503x2"))
    w.prompt_panel.promptEdit.setPlainText("two paper boats")
    job_id = w.generate()
    assert job_id is not None
    qtbot.waitUntil(lambda: "retrying" in (w.jobs.get(job_id).status or ""), timeout=15000)  # type: ignore[union-attr]
    assert len(list((data_dir / "pending").glob("*.json"))) == 1  # noted before it was sent
    assert w.client_thread.stop(10_000)
    assert not list((data_dir / "pending").glob("*.json"))
    assert not sim.service.submissions  # the service never took it


def test_quitting_while_a_task_whose_id_was_taken_waits_to_be_sent_again_leaves_nothing_to_collect(
    qtbot: QtBot, window: MainWindow, sim: Sim, data_dir: Path
) -> None:
    """Its ID taken (a conflict), and the service saying it has no task by that ID: the
    ID the window held was kept for the next start, the new one noted as never reached."""
    w = window
    qtbot.waitUntil(lambda: w.built)
    client = w.client_thread.wait_ready()
    client.retry = RetryPolicy(attempts=4, base=30.0, cap=30.0)
    sim.service.inject(parse_fault("conflict"))
    w.prompt_panel.promptEdit.setPlainText("two paper boats")
    job_id = w.generate()
    assert job_id is not None
    pending = data_dir / "pending"
    qtbot.waitUntil(lambda: bool(list(pending.glob("*.json"))), timeout=15000)
    (noted,) = [p.stem.split("-", 1)[1] for p in pending.glob("*.json")]  # the ID first sent
    qtbot.waitUntil(lambda: client.never_reached(noted), timeout=15000)  # waiting to send again
    assert w.client_thread.stop(10_000)
    assert not list((data_dir / "pending").glob("*.json"))


def test_try_again_with_a_reference_gone_says_which_and_another_jobs_offer_stays(
    qtbot: QtBot, window: MainWindow, sim: Sim, tmp_path: Path
) -> None:
    w = window
    _failing_at_once_with_one_reference(qtbot, w, write_png(tmp_path / "harbour.png", (20, 90, 160)), "a harbour")
    sim.service.inject("503x2")
    failed_ids = []
    for _ in range(2):  # two jobs failing with the same sentence
        with qtbot.waitSignal(w.client_thread.jobFailed, timeout=15000) as failed:
            w.generate()
        failed_ids.append(failed.args[0])
    first, second = failed_ids
    said = w.jobs.get(first).message
    assert w.jobs.get(second).message == said
    copy = w.tray.references()[0].image
    assert isinstance(copy, Path)
    copy.unlink()  # the kept copy deleted behind the app's back
    assert w.job_routing.try_again(first) is None
    gone = f"Reference 1 (harbour.png) of job {first} is no longer on disk, so the job cannot be sent again as it was."
    qtbot.waitUntil(lambda: w.message_banner.label.text() == gone)
    assert len(inference_tasks(sim)) == 2 and first in w.job_list.rows
    w.message_banner.dismiss()
    write_png(copy, (20, 90, 160))  # the same file back (named by its content, as kept)
    sent = len(inference_tasks(sim))
    row = w.job_list.rows[second]
    row.retry.setFocus()
    qtbot.keyClick(row.retry, Qt.Key.Key_Space)  # from the keyboard
    qtbot.waitUntil(lambda: len(inference_tasks(sim)) == sent + 1)
    # The first job's sentence is the same words; it stays, with its own Try again.
    qtbot.waitUntil(lambda: w.message_banner.isVisible() and w.message_banner.label.text() == said)
    assert w.message_banner.action.text() == "Try again"
    newest = w.job_list.rows[max(w.job_list.rows)]
    qtbot.waitUntil(lambda: QApplication.focusWidget() is newest.cancel)  # not the ratio buttons
    # The message's Try again is the first job's now (the job it was shown for went).
    qtbot.waitUntil(lambda: w.job_list.rows[max(w.job_list.rows)].info.state == "finished")
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=15000):
        w.message_banner.action.click()
    assert first not in w.job_list.rows and second not in w.job_list.rows
    assert len(inference_tasks(sim)) == sent + 2


def test_a_messages_try_again_pressed_from_the_keyboard_leaves_the_focus_on_the_new_jobs_row(
    qtbot: QtBot, window: MainWindow, sim: Sim
) -> None:
    w = window
    w.activateWindow()  # as a person's window is: Qt hands on the focus of a button that hides
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w)
    w.client_thread.wait_ready().retry = RetryPolicy(attempts=1, base=0.01)
    w.prompt_panel.promptEdit.setPlainText("a harbour")
    sim.service.inject("503")
    with qtbot.waitSignal(w.client_thread.jobFailed, timeout=15000) as failed:
        w.generate()
    assert w.message_banner.action.text() == "Try again"
    sim.service.config.latency_per_image = 0.5  # the new job still running when the focus is looked at
    w.message_banner.action.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is w.message_banner.action)
    qtbot.keyClick(w.message_banner.action, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: len(inference_tasks(sim)) == 2)
    assert failed.args[0] not in w.job_list.rows
    newest = w.job_list.rows[max(w.job_list.rows)]
    qtbot.wait(100)  # the old row goes when the loop next turns
    assert QApplication.focusWidget() is newest.cancel  # not the ratio buttons
    # The job ends: its Cancel goes, and the focus stays on its row (its ✕), not on
    # whatever comes next in the window's chain.
    sim.service.config.latency_per_image = 0.0
    qtbot.waitUntil(lambda: newest.info.state == "finished", timeout=15000)
    assert QApplication.focusWidget() is newest.dismiss
    # Clicked with the mouse, the focus is where it was: the prompt, say.
    sim.service.inject("503")
    with qtbot.waitSignal(w.client_thread.jobFailed, timeout=15000):
        w.generate()
    w.prompt_panel.promptEdit.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is w.prompt_panel.promptEdit)
    w.message_banner.action.click()
    qtbot.waitUntil(lambda: len(inference_tasks(sim)) == 4)
    assert QApplication.focusWidget() is w.prompt_panel.promptEdit


def test_a_messages_try_again_goes_to_a_job_that_still_says_it(qtbot: QtBot, window: MainWindow, sim: Sim) -> None:
    """Two jobs failing alike share one message: when the job it was shown for leaves the
    list, its Try again sends the other; when the other may not be sent again (a sweep's
    cell), the sentence stays without the button."""
    from dataclasses import replace

    from krea_desktop.api import errors as E
    from krea_desktop.api.record import SweepTag
    from krea_desktop.api.request import GenerationRequest

    w = window
    w.client_thread.wait_ready().retry = RetryPolicy(attempts=1, base=0.01)
    w.prompt_panel.promptEdit.setPlainText("a harbour")
    sim.service.inject("503x2")
    first, second = 0, 0
    for _ in range(2):
        with qtbot.waitSignal(w.client_thread.jobFailed, timeout=15000) as failed:
            w.generate()
        first, second = second, failed.args[0]
    said = w.jobs.get(second).message
    assert w.jobs.get(first).message == said and w.message_banner.action.text() == "Try again"
    w.job_list.rows[second].dismiss.click()  # the job the message was shown for leaves the list
    assert w.message_banner.isVisible() and w.message_banner.label.text() == said
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=15000):
        w.message_banner.action.click()
    assert len(inference_tasks(sim)) == 3 and first not in w.job_list.rows
    assert [e.prompt for e in w.library.entries()] == ["a harbour"]
    # A sweep's cell and a job failing with the same words: the job sent again, the cell's
    # failure is still said, with no button that would do nothing.
    task_failed = E.TaskError("The service failed while generating.")
    cell = w.jobs.add(99, replace(GenerationRequest("a cell"), sweep=SweepTag("sweep-1", (), (0,))))
    w.jobs.failed(cell.job_id, task_failed.message, task_failed)
    w.jobs.add(98, GenerationRequest("a job"))
    w.jobs.failed(98, task_failed.message, task_failed)
    assert w.message_banner.label.text() == task_failed.message and w.message_banner.action.isVisible()
    w.job_list.rows[98].dismiss.click()
    assert w.message_banner.isVisible() and w.message_banner.label.text() == task_failed.message
    assert not w.message_banner.action.isVisible()
    assert len(inference_tasks(sim)) == 3


def _fails_after_the_key_changed(qtbot: QtBot, w: MainWindow, sim: Sim, fail: Callable[[], None]) -> int:
    """Generate (async, images slow to come), and once the task is with the service, change
    the key in Settings and make the job fail with ``fail``; the failed job's id."""
    qtbot.waitUntil(lambda: w.built)
    w.prompt_panel.deliveryCombo.setCurrentIndex(w.prompt_panel.deliveryCombo.findData("async"))
    sim.service.config.latency_per_image = 0.5
    w.prompt_panel.promptEdit.setPlainText("two words")
    with qtbot.waitSignal(w.client_thread.jobFailed, timeout=15000) as failed:
        w.generate()
        qtbot.waitUntil(lambda: bool(inference_tasks(sim)))  # on its way, with the old key
        fail()
        keystore.save_key("the-new-key", w.data_dir)
        w._credentials_changed(key_stored=True, key_changed=True)
    sim.service.config.latency_per_image = 0.0
    return int(failed.args[0])


def _said_after_the_key_changed(
    qtbot: QtBot, make_window: Any, sim: Sim, fail: Callable[[], None], ending: str
) -> tuple[MainWindow, int, str]:
    """A window with a stored key whose job fails (``fail``) after the key changed, and
    what it says of that: "Job N was sent before … changed, and failed" and ``ending``."""
    w = make_window("the-old-key", stored=True)
    w.show()
    job_id = _fails_after_the_key_changed(qtbot, w, sim, fail)
    said = f"Job {job_id} was sent before the API key or the service's address changed, and failed{ending}"
    qtbot.waitUntil(lambda: w.message_banner.label.text() == said)
    return w, job_id, said


def test_a_job_sent_with_the_old_key_that_fails_after_the_change_offers_try_again_not_settings(
    qtbot: QtBot, make_window: Any, sim: Sim
) -> None:
    task_failed = lambda: sim.service.inject("task-error:on=getResponse")  # noqa: E731
    w, _job_id, said = _said_after_the_key_changed(qtbot, make_window, sim, task_failed, ".")
    assert w.message_banner.action.text() == "Try again"  # of the old key, not "check it in Settings"
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=15000):
        w.message_banner.action.click()
    assert [e.prompt for e in w.library.entries()] == ["two words"]  # the old job's none, the new one's
    assert not (w.message_banner.isVisible() and w.message_banner.label.text() == said)
    assert inference_tasks(sim)[0]["taskUUID"] != w.library.entries()[0].task_uuid


def test_a_job_refused_with_a_revoked_key_after_the_change_is_collected_later_not_sent_twice(
    qtbot: QtBot, make_window: Any, sim: Sim
) -> None:

    def revoke() -> None:  # the old key revoked and a new one made: its next poll is refused
        sim.service.config.api_key = "the-new-key"

    w, job_id, _said = _said_after_the_key_changed(
        qtbot, make_window, sim, revoke, "; the task's images are collected later."
    )
    assert not w.message_banner.action.isVisible()  # neither Settings (the key is fine) nor Try again
    assert not w.job_list.rows[job_id].retry.isVisibleTo(w)
    assert w.job_routing.try_again(job_id) is None and len(inference_tasks(sim)) == 1


def test_a_try_again_offered_for_a_job_goes_with_its_row_and_no_change_is_claimed_that_was_not(
    qtbot: QtBot, make_window: Any, sim: Sim
) -> None:
    from dataclasses import replace

    from krea_desktop.api import errors as E
    from krea_desktop.api.record import SweepTag
    from krea_desktop.api.request import GenerationRequest

    task_failed = lambda: sim.service.inject("task-error:on=getResponse")  # noqa: E731
    w, job_id, said = _said_after_the_key_changed(qtbot, make_window, sim, task_failed, ".")
    w.job_list.rows[job_id].dismiss.click()  # the row's ✕: the job leaves the list
    assert not (w.message_banner.isVisible() and w.message_banner.label.text() == said)  # its Try again with it
    # A sweep's cell failing after the change: said, neither sent again nor "collected later".
    shown: list[tuple[str, tuple[Any, ...]]] = []
    w.job_routing.show_message = lambda text, *a, **_k: shown.append((text, a))
    failed = E.TaskError("The service failed while generating.")
    cell = w.jobs.add(99, replace(GenerationRequest("a cell"), sweep=SweepTag("sweep-1", (), (0,))))
    cell.started_at = w.job_routing.credentials_changed_at - 1.0  # sent before the key changed
    w.jobs.failed(99, failed.message, failed)
    assert shown == [("Job 99 was sent before the API key or the service's address changed, and failed.", ())]
    # An address saved in Settings while RUNWARE_API_URL sets another: the one in use is
    # unchanged, and a job failing after says its own reason.
    before = w.job_routing.credentials_changed_at
    w._endpoint_changed("http://127.0.0.1:9/v1")
    assert w.endpoint == sim.url and w.job_routing.credentials_changed_at == before


def test_an_index_damaged_in_the_middle_is_said_once_the_window_is_up(
    qtbot: QtBot, make_window: Any, data_dir: Path
) -> None:
    """The opening reads too little of the index to see a bad page in the middle of its
    table; the check of every page after the folder's says it, in one sentence, and the
    next start rebuilds it (tests/unit/test_library_store.py)."""
    from krea_desktop.library.store import DAMAGED_INDEX

    with Library(data_dir) as library:
        for i in range(120):  # put there by hand, each named by its own id
            (library.images_dir / f"00000000-0000-4000-8000-{i:012d}.png").write_bytes(distinct_png(i))
        library.reconcile()
        assert library.count() == 120
    damage_a_page_of_the_table(data_dir / "library.sqlite", f"00000000-0000-4000-8000-{60:012d}")
    w = make_window()
    w.show()
    qtbot.waitUntil(lambda: w.message_banner.label.text() == DAMAGED_INDEX, timeout=15000)
    assert w.message_banner.error and w.message_banner.isVisible()
    assert (data_dir / "library.sqlite.damage-found").is_file()


def test_a_refused_key_from_the_environment_is_said_to_be_there_not_in_settings(
    qtbot: QtBot, make_window: Any, sim: Sim
) -> None:
    sim.service.config.api_key = "the-right-key"
    w = make_window("a-wrong-key")  # RUNWARE_API_KEY: Settings cannot change the key used
    w.show()
    qtbot.waitUntil(lambda: w.built)
    w.prompt_panel.promptEdit.setPlainText("two words")
    with qtbot.waitSignal(w.client_thread.jobFailed, timeout=15000) as failed:
        w.generate()
    said = "The API key was not accepted; check it in the RUNWARE_API_KEY environment variable."
    assert w.message_banner.label.text() == said
    assert not w.message_banner.action.isVisible()  # no "Open Settings": it would not help
    # Nor Try again on the job's row: the same key would be refused again.
    assert not w.job_list.rows[failed.args[0]].retry.isVisibleTo(w)
    assert w.job_routing.try_again(failed.args[0]) is None and len(inference_tasks(sim)) == 1
    w._endpoint_changed(sim.url)  # a change in Settings: the key used is the same, and still refused
    assert w.message_banner.isVisible() and w.message_banner.label.text() == said


def test_the_key_kept_in_a_file_is_said_when_a_key_goes_there_not_at_each_address_change(
    qtbot: QtBot, make_window: Any, sim: Sim, data_dir: Path
) -> None:
    import keyring.backends.fail

    keyring.set_keyring(keyring.backends.fail.Keyring())  # no system keyring: the key goes to a file
    w = make_window(None)
    w.show()
    qtbot.waitUntil(lambda: w.built)
    keystore.save_key(KEY, data_dir)
    w._credentials_changed(key_stored=True, key_changed=True)  # as the Settings dialog does once a key is saved
    assert w.message_banner.isVisible() and "kept in a file only you can read" in w.message_banner.label.text()
    w.message_banner.dismiss()
    w._endpoint_changed(sim.url)  # only the address changed: nothing new to say of the key
    assert not w.message_banner.isVisible()


def test_a_new_service_address_withdraws_what_the_old_one_answered(
    qtbot: QtBot, make_window: Any, sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = make_window()
    w.show()
    qtbot.waitUntil(lambda: w.built)
    monkeypatch.setenv("RUNWARE_API_URL", sim.url + "/nope")  # an address that offers no model
    w._credentials_changed()
    w.prompt_panel.promptEdit.setPlainText("two words")
    with qtbot.waitSignal(w.client_thread.jobFailed, timeout=15000):
        w.generate()
    assert w.message_banner.isVisible() and "has nothing there (HTTP 404)" in w.message_banner.label.text()
    monkeypatch.setenv("RUNWARE_API_URL", sim.url)
    w._endpoint_changed(sim.url)  # as the Settings dialog does
    assert not w.message_banner.isVisible()
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=15000):
        w.generate()


def test_a_keyring_locked_at_start_is_said_rather_than_looking_like_no_key(
    qtbot: QtBot, make_window: Any, memory_keyring: MemoryKeyring
) -> None:
    from krea_desktop import keystore
    from tests.helpers.keyrings import sealed_keyring_holding

    sealed = sealed_keyring_holding(KEY)
    w = make_window(None)
    w.show()
    assert w.demo  # no key could be read...
    assert w.message_banner.label.text() == keystore.KEYRING_UNREADABLE  # ...and the banner says why
    # Another endpoint set in Settings: the keyring is still locked, and still said so
    # (it was withdrawn, leaving the demo banner's "add your Runware API key").
    w._endpoint_changed("https://api.example.com/v1")
    assert w.demo and w.message_banner.isVisible()
    assert w.message_banner.label.text() == keystore.KEYRING_UNREADABLE
    sealed.locked = False  # unlocked: the key is found, and the sentence goes
    w.reread_key()
    assert not w.demo
    assert not w.message_banner.isVisible() or w.message_banner.label.text() != keystore.KEYRING_UNREADABLE


def test_a_keyring_slow_to_answer_leaves_the_window_free_and_generate_waits_for_its_key(
    qtbot: QtBot, make_window: Any, memory_keyring: MemoryKeyring, sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyring

    from krea_desktop import keystore
    from krea_desktop.ui.window import credentials
    from tests.helpers.keyrings import SlowKeyring

    sim.service.config.api_key = KEY  # only the key kept in the keyring is accepted
    slow = SlowKeyring()  # asking for its password, say
    slow.store[(keystore.SERVICE, keystore.USERNAME)] = KEY
    keyring.set_keyring(slow)
    monkeypatch.setattr(credentials, "KEYRING_WAIT_S", 0.05)
    try:
        w = make_window(None)
        w.show()
        # Built, shown and taking input while the keyring has not answered.
        assert slow.asked.is_set() and not slow.answered.is_set()
        assert w.built
        qtbot.waitUntil(lambda: w.message_banner.label.text() == credentials.KEYRING_SLOW)
        w.prompt_panel.promptEdit.setPlainText("a patient heron")
        assert w.prompt_panel.promptEdit.toPlainText() == "a patient heron"
        w.generate()
        qtbot.wait(300)
        assert inference_tasks(sim) == []  # waiting for the key: not sent to the simulator in its place
    finally:
        slow.release.set()
    qtbot.waitUntil(lambda: len(inference_tasks(sim)) == 1, timeout=15000)
    qtbot.waitUntil(lambda: w.library.count() == 1, timeout=15000)  # the service took the key
    assert not w.demo and not w.demo_banner.isVisible()
    assert w.message_banner.label.text() != credentials.KEYRING_SLOW or not w.message_banner.isVisible()


def test_a_keyring_that_never_answers_is_given_up_and_its_key_used_once_it_does(
    qtbot: QtBot, make_window: Any, memory_keyring: MemoryKeyring, sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyring

    from krea_desktop import keystore
    from krea_desktop.ui.window import credentials
    from tests.helpers.keyrings import SlowKeyring

    slow = SlowKeyring()
    slow.store[(keystore.SERVICE, keystore.USERNAME)] = KEY
    keyring.set_keyring(slow)
    monkeypatch.setattr(credentials, "KEYRING_WAIT_S", 0.05)
    monkeypatch.setattr(credentials, "KEYRING_GIVE_UP_S", 0.5)
    try:
        w = make_window(None)
        w.show()
        qtbot.waitUntil(lambda: w.message_banner.label.text() == credentials.KEYRING_SILENT, timeout=5000)
        assert w.demo and w.demo_banner.isVisible()
        w.prompt_panel.promptEdit.setPlainText("a heron, simulated")
        with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
            w.generate()
        assert inference_tasks(sim) == []  # the built-in simulator made it
        assert not slow.answered.is_set()
    finally:
        slow.release.set()
    # The keyring answers at last, with the key: used from now on.
    qtbot.waitUntil(lambda: not w.demo, timeout=10000)
    assert not w.demo_banner.isVisible()
    # The estimate is no longer the simulator's made-up amount: no cost reported with a key yet.
    assert w.cost_estimate.text() == "" and not w.cost_estimate.isVisibleTo(w)
    w.prompt_panel.promptEdit.setPlainText("a heron, paid for")
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
        w.generate()
    assert len(inference_tasks(sim)) == 1


def test_a_key_the_keyring_refuses_is_kept_in_a_file_and_the_window_says_so(
    qtbot: QtBot, make_window: Any, memory_keyring: MemoryKeyring
) -> None:
    import keyring

    from krea_desktop import keystore
    from tests.helpers.keyrings import LockedKeyring

    keyring.set_keyring(LockedKeyring())  # reads, refuses to store
    w = make_window(None)
    w.show()
    w.open_settings()
    qtbot.waitUntil(lambda: getattr(w, "settings_dialog", None) is not None and w.settings_dialog.isVisible())
    w.settings_dialog.keyEdit.setText("rw-typed-in-settings")
    w.settings_dialog.accept()
    assert keystore.key_source(w.data_dir) == "file" and not w.demo
    assert w.message_banner.isVisible()
    assert w.message_banner.label.text() == keystore.backend_description(w.data_dir)
    assert "because the system keyring refused it" in w.message_banner.label.text()


@pytest.mark.parametrize(
    ("fault", "kept", "phrase"),
    [
        ("fewer-images", 2, "2 of 3"),
        ("task-error", 0, "failed while generating"),
        ("500*:on=any", 0, "internal error"),
    ],
)
def test_service_errors_keep_received_images_and_never_show_a_traceback(
    qtbot: QtBot, window: MainWindow, sim: Sim, fault: str, kept: int, phrase: str
) -> None:
    w = window
    w.client_thread.wait_ready().retry = RetryPolicy(attempts=2, base=0.01)
    sim.service.inject(parse_fault(fault))
    w.prompt_panel.promptEdit.setPlainText("a harbour at dawn")
    w.prompt_panel.countSpin.setValue(3)
    with qtbot.waitSignal(w.client_thread.jobFailed, timeout=30000) as blocker:
        w.generate()
    _, message, _ = blocker.args
    assert phrase in message
    assert "Traceback" not in message and "\n" not in message
    assert w.library.count() == kept and w.model.rowCount() == kept
    assert phrase in w.message_banner.label.text()


def test_one_image_more_than_asked_is_kept_and_the_job_counts_it_not_3_of_2(
    qtbot: QtBot, window: MainWindow, sim: Sim
) -> None:
    w = window
    sim.service.inject(parse_fault("more-images"))
    w.prompt_panel.promptEdit.setPlainText("a harbour at dawn")
    w.prompt_panel.countSpin.setValue(2)
    combo = w.prompt_panel.deliveryCombo
    combo.setCurrentIndex(combo.findData("sync"))  # all in one answer
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
        w.generate()
    qtbot.waitUntil(lambda: w.library.count() == 3)
    row = next(iter(w.job_list.rows.values()))
    qtbot.waitUntil(lambda: row.progress.value() == 3)
    assert row.progress.maximum() == 3 and row.progress.text().startswith("3 of 3")


def test_invalid_controls_do_not_send_anything(qtbot: QtBot, window: MainWindow, sim: Sim) -> None:
    w = window
    w.prompt_panel.promptEdit.setPlainText("x")
    assert not w.prompt_panel.generateButton.isEnabled()
    assert w.generate() is None
    assert inference_tasks(sim) == []
    assert "2" in w.prompt_panel.hintLabel.text()


def test_demo_mode_is_clearly_marked(make_window: Any) -> None:
    w = make_window(None)
    w.show()
    assert w.demo
    assert w.demo_banner.isVisible()
    said = w.demo_banner.label.text()
    assert "Demo mode" in said and "SIMULATED" in said
    assert said.endswith(".") and ". " not in said  # one sentence
    assert "demo" in w.windowTitle().lower()
    w2 = make_window(KEY)
    w2.show()
    assert not w2.demo and not w2.demo_banner.isVisible()


def test_demo_mode_generates_with_the_built_in_simulator(qtbot: QtBot, make_window: Any, sim: Sim) -> None:
    w = make_window(None)
    w.show()
    w.prompt_panel.promptEdit.setPlainText("a demo picture")
    generate_and_wait(qtbot, w)
    assert w.library.count() == 1
    assert inference_tasks(sim) == []  # nothing went to the loopback service


def test_gallery_drag_into_the_tray_adds_a_reference(qtbot: QtBot, window: MainWindow) -> None:
    w = window
    w.prompt_panel.promptEdit.setPlainText("something to reuse")
    generate_and_wait(qtbot, w)
    mime = w.model.mimeData([w.model.index(0)])
    assert mime.hasUrls() and mime.urls()[0].toLocalFile() == str(w.library.entries()[0].path)
    assert mime.hasImage()
    assert w.tray.handle_mime(mime)
    w.tray.wait_for_loads()
    qtbot.waitUntil(lambda: w.tray.count() == 1 and not w.tray.isBusy())


def test_window_state_and_choices_survive_a_restart(qtbot: QtBot, make_window: Any, tmp_path: Path) -> None:
    w = make_window()
    w.show()
    w.resize(701, 503)  # within the offscreen screen, which restoreGeometry clamps to
    w.ratio_bar.setRatio("9:16")
    w.prompt_panel.promptEdit.setPlainText("remembered prompt")
    w.prompt_panel.addToHistory("remembered prompt")
    w.tray.add_reference(write_png(tmp_path / "g.png", (10, 200, 10)))
    w.tray.wait_for_loads()
    qtbot.waitUntil(lambda: w.tray.count() == 1)
    w.tray.items()[0].strengthSpin.setValue(-1.5)
    w.close()
    w2 = make_window()
    w2.show()
    assert w2.ratio_bar.ratio() == "9:16"
    assert (w2.width(), w2.height()) == (701, 503)
    assert "remembered prompt" in w2.prompt_panel.history()
    w2.tray.wait_for_loads()
    qtbot.waitUntil(lambda: w2.tray.count() == 1)
    assert w2.tray.references()[0].strength == -1.5


def test_the_controls_keep_their_width_in_a_larger_window_and_never_take_more_than_half(
    qtbot: QtBot, make_window: Any
) -> None:
    small = make_window()
    small.show()
    small.resize(800, 600)
    qtbot.waitUntil(lambda: small.split.width() > 700)
    small.split.setSizes([470, small.split.width() - 470 - small.split.handleWidth()])
    small.close()  # saves the columns as they were in an 800 px window
    # Restored in a 1600 px window (a larger screen, or maximized).
    large = make_window()
    large.resize(1600, 900)
    large._restore_state()
    large.show()
    qtbot.waitUntil(lambda: large.split.width() > 1500)
    assert large.split.sizes()[0] == 470  # not scaled to 940 with the window
    # A column wider than half the window it opens in is narrowed to half.
    large.split.setSizes([1200, large.split.width() - 1200 - large.split.handleWidth()])
    large.save_state()
    large.resize(1000, 700)
    large._restore_state()
    assert large.split.sizes()[0] == 500


def test_every_control_has_a_tooltip(window: MainWindow) -> None:
    from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit, QPlainTextEdit, QSlider

    missing = []
    for cls in (QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit, QPlainTextEdit, QSlider):
        for widget in window.findChildren(cls):
            if widget.objectName().startswith("qt_"):
                continue  # Qt's own parts of a composite control (the spin box's line edit)
            if widget.isVisibleTo(window) and not widget.toolTip():
                missing.append(f"{cls.__name__} {widget.objectName()!r}")
    assert missing == []


def test_each_jobs_cost_and_the_session_total_show_when_cost_reporting_is_on(
    qtbot: QtBot, window: MainWindow, sim: Sim
) -> None:
    w = window
    panel = w.prompt_panel
    assert panel.includeCostCheck.isChecked()  # on by default
    assert not w.cost_label.isVisible()  # nothing spent yet
    for prompt, count in (("a harbour in fog", 2), ("a heron at dawn", 3)):
        panel.promptEdit.setPlainText(prompt)
        panel.countSpin.setValue(count)
        generate_and_wait(qtbot, w)
    entries = w.library.entries()
    assert len(entries) == 5 and all(e.cost for e in entries)
    total = sum(e.cost or 0.0 for e in entries)
    qtbot.waitUntil(lambda: w.cost_label.isVisible())
    assert w.cost_label.text() == f"Session cost ${total:.4f}"
    statuses = [label.text() for label in w.job_list.findChildren(QLabel, "jobStatus")]
    for job_images in (entries[:3], entries[3:]):  # newest first: the second job, then the first
        job_cost = sum(e.cost or 0.0 for e in job_images)
        assert any(text.endswith(f"Cost ${job_cost:.4f}.") for text in statuses), statuses

    panel.includeCostCheck.setChecked(False)
    panel.promptEdit.setPlainText("a kite with no cost asked for")
    panel.countSpin.setValue(1)
    generate_and_wait(qtbot, w)
    assert inference_tasks(sim)[-1].get("includeCost") in (False, None)
    assert w.cost_label.text() == f"Session cost ${total:.4f}"  # unchanged


@pytest.mark.parametrize("focus", ["gallery", "tray", "ratio", "seed", "count", "search"])
def test_ctrl_v_adds_the_clipboard_image_wherever_the_focus_is(qtbot: QtBot, window: MainWindow, focus: str) -> None:
    from PySide6.QtGui import QGuiApplication, QImage

    qtbot.waitExposed(window)
    window.activateWindow()
    image = QImage(40, 30, QImage.Format.Format_RGB32)
    image.fill(Qt.GlobalColor.darkCyan)
    QGuiApplication.clipboard().setImage(image)
    panel = window.prompt_panel
    target = {
        "gallery": window.gallery,
        "tray": window.tray,
        "ratio": window.ratio_bar.buttons()[0],
        "seed": panel.seedEdit,
        "count": panel.countSpin,
        "search": window.filter_bar.search,
    }[focus]
    target.setFocus()
    qtbot.keyClick(target, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.tray.count() == 1, timeout=10000)


def test_ctrl_v_in_the_prompt_pastes_text_not_a_reference(qtbot: QtBot, window: MainWindow) -> None:
    from PySide6.QtGui import QGuiApplication

    qtbot.waitExposed(window)
    window.activateWindow()
    QGuiApplication.clipboard().setText("pasted words")
    edit = window.prompt_panel.promptEdit
    edit.setFocus()
    qtbot.keyClick(edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert "pasted words" in window.prompt_panel.prompt()
    qtbot.wait(200)
    assert window.tray.count() == 0 and not window.tray.isBusy()


def test_ctrl_v_in_the_prompt_adds_an_image_without_text_to_the_tray(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    from PySide6.QtCore import QMimeData, QUrl
    from PySide6.QtGui import QGuiApplication, QImage

    def copy_files(*paths: Path) -> None:
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
        QGuiApplication.clipboard().setMimeData(mime)

    qtbot.waitExposed(window)
    window.activateWindow()
    messages: list[str] = []
    window.tray.message.connect(messages.append)
    edit = window.prompt_panel.promptEdit
    edit.setPlainText("a lighthouse")
    edit.setFocus()
    image = QImage(40, 30, QImage.Format.Format_RGB32)
    image.fill(Qt.GlobalColor.darkCyan)
    QGuiApplication.clipboard().setImage(image)
    qtbot.keyClick(edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.tray.count() == 1 and not window.tray.isBusy(), timeout=10000)
    # Image files copied in a file manager, and a file that is no image, as the tray says.
    copy_files(write_png(tmp_path / "copied.png", (20, 200, 40)))
    qtbot.keyClick(edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.tray.count() == 2 and not window.tray.isBusy(), timeout=10000)
    notes = tmp_path / "notes.png"
    notes.write_bytes(b"these are words, not pixels")
    copy_files(notes)
    with qtbot.waitSignal(window.tray.message, timeout=10000) as signal:
        qtbot.keyClick(edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert "not an image" in signal.args[0]
    assert window.tray.count() == 2
    assert window.prompt_panel.prompt() == "a lighthouse" and window.focusWidget() is edit


def test_the_prompt_and_ratio_being_composed_survive_a_killed_window(qtbot: QtBot, make_window: Any) -> None:
    w = make_window()
    w.show()
    w.ratio_bar.setRatio("2.35:1")
    w.prompt_panel.promptEdit.setPlainText("a prompt typed just before a crash")
    assert w._composer_timer.isActive()  # kept a second after the last change
    qtbot.waitUntil(lambda: not w._composer_timer.isActive(), timeout=15_000)
    # The window is never closed (a crash or a kill): a new start finds what was composed.
    w2 = make_window()
    w2.show()
    assert w2.prompt_panel.prompt() == "a prompt typed just before a crash"
    assert w2.ratio_bar.ratio() == "2.35:1"


def test_generate_while_a_reference_downloads_names_the_host_it_waits_for(
    qtbot: QtBot, make_window: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtCore import QMimeData, QUrl

    from tests.helpers.images import Route, image_bytes, serving

    for var in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    w = make_window()
    w.prompt_panel.setPrompt("a harbour at dawn")
    with serving({"/slow.png": Route(image_bytes((30, 20)), delay=1.5)}) as web:
        mime = QMimeData()
        mime.setUrls([QUrl(f"{web.url}/slow.png")])
        assert w.tray.handle_mime(mime)
        assert w.generate() is None
        assert w.message_banner.label.text() == (
            "A reference is still downloading from 127.0.0.1; try again once it is in the tray."
        )
        qtbot.waitUntil(lambda: w.tray.count() == 1 and not w.tray.isBusy(), timeout=10_000)


def test_a_draft_left_to_look_through_the_prompt_history_is_kept_for_the_next_session(
    qtbot: QtBot, make_window: Any
) -> None:
    w = make_window()
    w.show()
    panel = w.prompt_panel
    panel.addToHistory("an old prompt about cats")
    panel.setPrompt("")
    qtbot.keyClicks(panel.promptEdit, "my careful unsent draft")
    qtbot.keyClick(panel.promptEdit, Qt.Key.Key_Up, Qt.KeyboardModifier.AltModifier)
    assert panel.prompt() == "an old prompt about cats"
    w.close()  # quit while the history is shown (a crash a second later keeps the same)
    w2 = make_window()
    w2.show()
    assert w2.prompt_panel.prompt() == "my careful unsent draft"
    assert w2.prompt_panel.history() == ["an old prompt about cats"]


def test_the_panels_choices_survive_a_killed_window_without_a_prompt_typed_after(
    qtbot: QtBot, make_window: Any
) -> None:
    """The count, seed, creativity, format, quality and the rest were kept only when the
    window closed, or with the next change of the prompt: a kill lost them."""
    w = make_window()
    w.show()
    panel = w.prompt_panel
    panel.countSpin.setValue(3)
    panel.seedEdit.setText("1234")
    panel.creativityCombo.setCurrentIndex(panel.creativityCombo.findData("high"))
    panel.formatCombo.setCurrentIndex(panel.formatCombo.findData("WEBP"))
    panel.qualitySpin.setValue(42)
    assert w._composer_timer.isActive()  # kept a second after the last change
    qtbot.waitUntil(lambda: not w._composer_timer.isActive(), timeout=15_000)
    w2 = make_window()  # the first is never closed: a crash or a kill
    w2.show()
    kept = w2.prompt_panel.parameters()
    assert (kept["number_results"], kept["seed"], kept["creativity"]) == (3, 1234, "high")
    assert (kept["output_format"], kept["output_quality"]) == ("WEBP", 42)


def test_an_endpoint_from_the_environment_that_breaks_the_rule_is_said_not_silently_ignored(
    qtbot: QtBot, data_dir: Path, sim: Sim, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The window still opens, on the endpoint chosen in Settings (here the simulator), and
    # says that the key goes there rather than where the environment pointed.
    (data_dir / "settings.ini").write_text(f"[api]\nendpoint={sim.url}\n", encoding="utf-8")
    monkeypatch.setenv("RUNWARE_API_KEY", KEY)
    monkeypatch.setenv("RUNWARE_API_URL", "http://api.example/v1")
    w = create_main_window(demo_latency=0.0)
    qtbot.addWidget(w)
    w.show()
    assert not w.demo
    assert w.message_banner.isVisible() and w.message_banner.label.text() == (
        f"The key goes to {sim.url}, not to RUNWARE_API_URL ('http://api.example/v1'): the endpoint must use "
        "HTTPS (https://), because the API key travels with every request; plain http:// is allowed only to "
        "this computer (localhost, 127.0.0.1 or [::1])."
    )
    w.close()
    # Without a key nothing is sent anywhere (the simulator in the app): nothing to say.
    monkeypatch.delenv("RUNWARE_API_KEY")
    demo = create_main_window(demo_latency=0.0)
    qtbot.addWidget(demo)
    demo.show()
    assert demo.demo and not demo.message_banner.isVisible()
    demo.close()


def test_an_endpoint_chosen_in_settings_under_one_from_the_environment_leaves_the_window_on_that_one(
    qtbot: QtBot, data_dir: Path, sim: Sim, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window took the endpoint typed in Settings as the one it used, while every
    request still went where RUNWARE_API_URL pointed."""
    monkeypatch.setenv("RUNWARE_API_KEY", KEY)
    monkeypatch.setenv("RUNWARE_API_URL", sim.url)
    w = create_main_window(demo_latency=0.0)
    qtbot.addWidget(w)
    w.show()
    assert w.endpoint == sim.url
    w._endpoint_changed("http://127.0.0.1:9/v1")  # as the Settings dialog's OK does
    assert w.endpoint == sim.url  # what the key test, and Settings opened again, now show
    w.close()


def test_settings_that_cannot_be_written_are_said_once(qtbot: QtBot, make_window: Any, data_dir: Path) -> None:
    """A full disk or a read-only settings file lost every change without a word."""
    w = make_window()
    w.show()
    said: list[tuple[str, bool]] = []
    show = w.show_message
    w.show_message = lambda text, *a, **k: said.append((text, k.get("error", False))) or show(text, *a, **k)  # type: ignore[method-assign]
    ini = Path(w.settings.fileName())
    ini.unlink(missing_ok=True)
    ini.mkdir()  # nothing can be written in its place
    w.prompt_panel.countSpin.setValue(3)
    qtbot.waitUntil(lambda: bool(said), timeout=5000)
    w.prompt_panel.countSpin.setValue(4)
    qtbot.waitUntil(lambda: not w._composer_timer.isActive(), timeout=15_000)  # its second is up
    assert said == [
        (
            f"Your prompt and settings could not be saved in {ini}; check that its folder is writable "
            "and the disk not full.",
            True,
        )
    ]
    ini.rmdir()


def test_a_damaged_settings_file_read_at_start_is_not_said_to_be_unwritable(
    qtbot: QtBot, make_window: Any, data_dir: Path
) -> None:
    """QSettings keeps the FormatError of the first read for good: every save was then said
    to have failed, though the file was written."""
    (data_dir / "settings.ini").write_text("[General\nratio=16:9\n", encoding="utf-8")
    w = make_window()
    w.show()
    said: list[str] = []
    show = w.show_message
    w.show_message = lambda text, *a, **k: said.append(text) or show(text, *a, **k)  # type: ignore[method-assign]
    w.prompt_panel.countSpin.setValue(3)
    qtbot.waitUntil(lambda: not w._composer_timer.isActive(), timeout=15_000)  # its second is up
    assert not [text for text in said if "could not be saved" in text]
    assert "[generation]" in (data_dir / "settings.ini").read_text(encoding="utf-8")  # written all the same

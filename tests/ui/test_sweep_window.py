"""Sweeps and lineage in the window, against the simulator on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QApplication, QLabel, QPushButton, QWidget
from pytestqt.qtbot import QtBot

from krea_desktop import keystore
from krea_desktop.api.record import SweepAxis, SweepTag
from krea_desktop.library.sheet import render, sheet_cells_of, sheet_uuid
from krea_desktop.library.store import Library
from krea_desktop.ui.app import create_main_window
from krea_desktop.ui.gallery.model import mime_for_entries
from krea_desktop.ui.sweep.dialog import SweepDialog
from krea_desktop.ui.sweep.sheet_view import ContactSheet
from krea_desktop.ui.viewer.viewer import ImageViewer, RelativeChip
from krea_desktop.ui.window.main_window import MainWindow
from tests.helpers.sim import Paced, Sim, running_simulator

KEY = "sk-test-window-sweep"


@pytest.fixture
def sim() -> Iterator[Sim]:
    with running_simulator() as s:
        yield s


@pytest.fixture
def make_window(
    qtbot: QtBot, data_dir: Path, memory_keyring: object, sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    monkeypatch.setenv("RUNWARE_API_KEY", KEY)
    monkeypatch.setenv("RUNWARE_API_URL", sim.url)
    windows: list[MainWindow] = []

    def make() -> MainWindow:
        w = create_main_window()
        qtbot.addWidget(w)
        windows.append(w)
        w.resize(1366, 768)
        w.show()
        qtbot.waitExposed(w)
        return w

    yield make
    for w in windows:
        w.close()


def tasks_of(sim: Sim, task_type: str) -> list[dict[str, Any]]:
    return [t for _h, tasks in sim.service.requests for t in tasks if t.get("taskType") == task_type]


def generate_one(qtbot: QtBot, w: MainWindow, prompt: str) -> Any:
    before = w.library.count()
    w.prompt_panel.setPrompt(prompt)
    assert w.generate() is not None
    qtbot.waitUntil(lambda: w.library.count() == before + 1 and not w.jobs.running(), timeout=20000)
    return w.library.entries(limit=1)[0]


def test_a_sweep_from_a_card_shows_its_plan_then_fills_its_sheet(
    qtbot: QtBot, make_window: Any, sim: Sim, tmp_path: Path
) -> None:
    w = make_window()
    generate_one(qtbot, w, "a first image, so a cost is known")
    for i, colour in enumerate(((200, 40, 40), (40, 40, 200))):
        path = tmp_path / f"ref{i}.png"
        Image.new("RGB", (96, 64), colour).save(path)
        w.tray.add_reference(path, 0.5)
    qtbot.waitUntil(lambda: w.tray.count() == 2 and not w.tray.isBusy())
    w.prompt_panel.setPrompt("a red fox in snow")
    sent_before = len(tasks_of(sim, "imageInference"))
    uploads_before = len(tasks_of(sim, "imageUpload"))

    w.tray.items()[0].sweepButton.click()
    dialog = w.sweeps.dialog
    assert isinstance(dialog, SweepDialog) and dialog.isVisible()
    assert dialog.axisCombos[0].currentData() == "ref1"
    assert dialog.valueEdits[0].text() == "-2, -1, 0, +1, +2"
    dialog.axisCombos[1].setCurrentIndex(dialog.axisCombos[1].findData("creativity"))
    dialog.valueEdits[1].setText("raw, high")
    # The plan, before anything is sent: the grid, the number of tasks, the estimated cost.
    assert dialog.gridPreview.columnCount() == 5 and dialog.gridPreview.rowCount() == 2
    # Each cell of the preview says what its image varies; a single row needs no name.
    assert dialog.gridPreview.item(1, 0).text() == "-2 · high"
    assert dialog.gridPreview.verticalHeader().isVisibleTo(dialog)
    dialog.axisCombos[1].setCurrentIndex(dialog.axisCombos[1].findData(None))
    assert dialog.gridPreview.rowCount() == 1 and not dialog.gridPreview.verticalHeader().isVisibleTo(dialog)
    assert [dialog.gridPreview.item(0, c).text() for c in range(5)] == ["-2", "-1", "0", "+1", "+2"]
    dialog.axisCombos[1].setCurrentIndex(dialog.axisCombos[1].findData("creativity"))
    dialog.valueEdits[1].setText("raw, high")
    summary = dialog.summaryLabel.text()
    assert "10 tasks" in summary and "estimated cost $" in summary
    assert dialog.sendButton.text() == "Send 10 tasks"
    assert len(tasks_of(sim, "imageInference")) == sent_before
    # An impossible value is said in one sentence and cannot be sent.
    dialog.valueEdits[0].setText("-2, 9")
    assert not dialog.sendButton.isEnabled() and "outside" in dialog.problemLabel.text()
    dialog.valueEdits[0].setText("-2, -1, 0, +1, +2")
    dialog.sendButton.click()

    sheets = [s for s in w.sweeps.sheets if isinstance(s, ContactSheet)]
    assert len(sheets) == 1
    sheet = sheets[0]
    qtbot.waitUntil(lambda: sheet.counts() == (10, 0, 0) and sheet.sheet_entry is not None, timeout=30000)
    sent = tasks_of(sim, "imageInference")[sent_before:]
    assert len(sent) == 10 and {t["numberResults"] for t in sent} == {1}
    assert len({t["seed"] for t in sent}) == 1
    assert sorted((t["inputs"]["referenceImages"][0]["strength"], t["settings"]["creativity"]) for t in sent) == sorted(
        (s, c) for s in (-2, -1, 0, 1, 2) for c in ("raw", "high")
    )
    assert len(tasks_of(sim, "imageUpload")) - uploads_before == 2
    # Every cell is a library image that knows its place; the sheet is one too.
    for place, cell in sheet.cells.items():
        assert cell.entry is not None and cell.entry.record.sweep is not None
        assert cell.entry.record.sweep.place == place
    assert sheet.sheet_entry.record.sweep.is_sheet

    # Found again from the gallery: the sweep's eleven images, and the sheet reopened.
    sheet.galleryButton.click()
    qtbot.waitUntil(lambda: w.model.rowCount() == 11)
    assert w.model.scope_label().startswith("Sweep")
    reopened = w.open_sheet(sheet.tag.id)
    assert reopened is not None and reopened.counts() == (10, 0, 0)
    # Its thumbnails are read on a worker and then shown.
    qtbot.waitUntil(lambda: all(c.pixmap() is not None and not c.pixmap().isNull() for c in reopened.cells.values()))


def send_seed_sweep(w: MainWindow, prompt: str, seeds: str) -> ContactSheet:
    """Plan a sweep of ``prompt`` over ``seeds`` ("1, 2, 3") and send it; its sheet."""
    w.prompt_panel.setPrompt(prompt)
    dialog = w.open_sweep("seed")
    assert isinstance(dialog, SweepDialog)
    dialog.valueEdits[0].setText(seeds)
    dialog.sendButton.click()
    return w.sweeps.sheets[-1]


def test_a_strength_axis_says_which_reference_by_name_and_thumbnail(
    qtbot: QtBot, make_window: Any, tmp_path: Path
) -> None:
    w = make_window()
    names = ("fox.png", "a very long name for the second reference image.png")
    for name, colour in zip(names, ((200, 40, 40), (40, 40, 200)), strict=True):
        Image.new("RGB", (96, 64), colour).save(tmp_path / name)
        w.tray.add_reference(tmp_path / name, 0.5)
    qtbot.waitUntil(lambda: w.tray.count() == 2 and not w.tray.isBusy())
    w.prompt_panel.setPrompt("a red fox in snow")
    w.tray.items()[1].sweepButton.click()
    dialog = w.sweeps.dialog
    assert isinstance(dialog, SweepDialog)
    for combo in dialog.axisCombos:
        first, second = (combo.findData(f"ref{i}") for i in (1, 2))
        assert combo.itemText(first) == "Reference 1 (fox.png) strength"
        # A long name keeps its start and its extension; the whole of it is the tooltip.
        assert combo.itemText(second) == "Reference 2 (a very long…e image.png) strength"
        assert combo.itemData(second, Qt.ItemDataRole.ToolTipRole) == names[1]
        assert not combo.itemIcon(first).isNull() and not combo.itemIcon(second).isNull()
    assert dialog.axisCombos[0].currentData() == "ref2"
    assert "Reference 2 (a very long…e image.png) strength" in dialog.summaryLabel.text()
    # The contact sheet, on screen and saved, names it too (the request holds the tray's
    # copies, whose file names the user never saw).
    dialog.axisCombos[1].setCurrentIndex(dialog.axisCombos[1].findData("ref1"))
    dialog.valueEdits[0].setText("0, 1")
    dialog.valueEdits[1].setText("-1, 1")
    dialog.sendButton.click()
    sheet = w.sweeps.sheets[-1]
    across = sheet.findChild(QLabel, "acrossAxisLabel")
    down = sheet.findChild(QLabel, "downAxisLabel")
    assert across is not None and across.text() == "Reference 2 (a very long…e image.png) strength"
    assert down is not None and down.text() == "Reference 1 (fox.png) strength"
    qtbot.waitUntil(lambda: sheet.sheet_entry is not None, timeout=30000)
    assert sheet.sheet_entry is not None
    record = sheet.sheet_entry.record
    assert record.sweep is not None and record.width and record.height
    size = (record.width, record.height)
    named = render(record.sweep.axes, [], size, record.prompt, ("fox.png", "a very long…e image.png"))
    unnamed = render(record.sweep.axes, [], size, record.prompt)
    titles = (0, 0, named.width, 80)  # the prompt and the first axis's title, above the cells
    with Image.open(sheet.sheet_entry.path) as saved:
        assert saved.convert("RGB").crop(titles).tobytes() == named.crop(titles).tobytes()
    assert named.crop(titles).tobytes() != unnamed.crop(titles).tobytes()
    # Reopened from the library, the sheet has the names still.
    reopened = w.open_sheet(record.sweep.id)
    assert reopened is not None
    label = reopened.findChild(QLabel, "acrossAxisLabel")
    assert label is not None and label.text() == "Reference 2 (a very long…e image.png) strength"


def test_the_dialogs_problems_name_the_axis_as_the_dialog_shows_it(
    qtbot: QtBot, make_window: Any, tmp_path: Path
) -> None:
    # They said "ref2 needs at least one value, as in ref2=V1,V2.": the command line's words.
    w = make_window()
    for i in range(2):
        Image.new("RGB", (96, 64), (60 * i, 40, 40)).save(tmp_path / f"r{i}.png")
        w.tray.add_reference(tmp_path / f"r{i}.png", 0.5)
    qtbot.waitUntil(lambda: w.tray.count() == 2 and not w.tray.isBusy())
    w.prompt_panel.setPrompt("a red fox in snow")
    w.tray.items()[1].sweepButton.click()
    dialog = w.sweeps.dialog
    assert isinstance(dialog, SweepDialog)
    title = "Reference 2 (r1.png) strength"
    assert dialog.axisCombos[0].currentText() == title
    for typed, said in (
        ("", f"{title} needs at least one value; separate values with commas."),
        ("1, 1", f"{title} repeats a value; give each value once."),
    ):
        dialog.valueEdits[0].setText(typed)
        assert dialog.problemLabel.text() == said and not dialog.sendButton.isEnabled()
    dialog.valueEdits[0].setText("0, 1")
    dialog.axisCombos[1].setCurrentIndex(dialog.axisCombos[1].findData("ref2"))
    assert dialog.problemLabel.text() == f"{title} is chosen twice; vary two different things."
    assert "ref2" not in dialog.problemLabel.text()
    dialog.reject()


def test_a_sweep_whose_reference_upload_meets_a_refused_key_says_where_to_set_it(
    qtbot: QtBot, make_window: Any, sim: Sim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    sim.service.config.api_key = "not-the-key-the-window-has"
    monkeypatch.delenv("RUNWARE_API_KEY")  # the key set in Settings (the key store)
    keystore.save_key(KEY, data_dir)
    w = make_window()
    Image.new("RGB", (96, 64), (200, 40, 40)).save(tmp_path / "fox.png")
    w.tray.add_reference(tmp_path / "fox.png", 0.5)
    qtbot.waitUntil(lambda: w.tray.count() == 1 and not w.tray.isBusy())
    w.prompt_panel.setPrompt("a red fox in snow")
    w.tray.items()[0].sweepButton.click()
    dialog = w.sweeps.dialog
    assert isinstance(dialog, SweepDialog)
    dialog.valueEdits[0].setText("-1, 1")
    dialog.sendButton.click()
    qtbot.waitUntil(lambda: not w.sweeps.runs and "could not be uploaded" in w.message_banner.label.text())
    assert w.message_banner.label.text() == (  # not "no cell made an image", which says less
        "The sweep was not sent because a reference could not be uploaded: "
        "The API key was not accepted; check it in Settings."
    )
    keystore.save_key(sim.service.config.api_key, data_dir)
    w._credentials_changed(
        key_stored=True, key_changed=True
    )  # a key saved in Settings: what was said of the old one goes
    assert not w.message_banner.isVisible()


def test_a_long_reference_name_on_the_sheet_wraps_between_words_never_within_one(qtbot: QtBot) -> None:
    axes = (SweepAxis("creativity", ("raw", "high")), SweepAxis("ref1", (-1.0, 1.0)))
    sheet = ContactSheet(SweepTag("s", axes), (1024, 1024), "a fox", ["IMG_20240101…3456789.jpg"])
    qtbot.addWidget(sheet)
    sheet.show()
    down = sheet.findChild(QLabel, "downAxisLabel")
    assert down is not None and down.text() == "Reference 1 (IMG_20240101…3456789.jpg) strength"
    word = down.fontMetrics().horizontalAdvance("(IMG_20240101…3456789.jpg)")
    assert word > 150  # wider than the column would be for words that fit
    assert down.width() >= word and down.toolTip() == down.text()
    assert down.height() >= down.heightForWidth(down.width())  # every wrapped line shown


def test_enter_on_a_cell_not_made_yet_opens_nothing_and_presses_no_button_of_the_sheet(qtbot: QtBot) -> None:
    # It pressed the sheet's default button, "Show in gallery": the gallery narrowed to the sweep.
    sheet = ContactSheet(SweepTag("s", (SweepAxis("creativity", ("raw", "high")),)), (1024, 1024), "a fox")
    qtbot.addWidget(sheet)
    sheet.show()
    qtbot.waitExposed(sheet)
    shown: list[str] = []
    opened: list[None] = []
    sheet.showInGallery.connect(shown.append)
    waiting, failed = sheet.cells[(0,)], sheet.cells[(1,)]
    failed.set_failed("The service is busy right now.")
    for cell in (waiting, failed):
        cell.openRequested.connect(lambda: opened.append(None))
        for key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            cell.setFocus()
            qtbot.keyClick(cell, key)
    assert shown == [] and opened == [] and sheet.isVisible()


def test_a_failed_cell_keeps_its_place_with_its_error(qtbot: QtBot, make_window: Any, sim: Sim) -> None:
    w = make_window()
    sim.service.inject("task-error")
    sheet = send_seed_sweep(w, "a lighthouse", "1, 2, 3")
    qtbot.waitUntil(lambda: sheet.sheet_entry is not None, timeout=30000)
    assert sheet.counts() == (2, 1, 0)
    failed = [c for c in sheet.cells.values() if c.state == "failed"]
    assert len(failed) == 1 and failed[0].error and "Failed" in failed[0].text()
    reopened = w.open_sheet(sheet.tag.id)
    assert reopened is not None and reopened.counts() == (2, 1, 0)


def test_a_sweep_passes_over_an_image_saved_for_a_job_no_longer_listed(
    qtbot: QtBot, make_window: Any, sim: Sim, caplog: pytest.LogCaptureFixture
) -> None:
    """An image held for want of room is saved after its job's row was dismissed, and is
    announced without its job: a sweep running then read its job's id, and raised."""
    w = make_window()
    sheet = send_seed_sweep(w, "a lighthouse", "1, 2, 3")
    qtbot.waitUntil(lambda: sheet.sheet_entry is not None, timeout=30000)
    entry = w.library.entries(limit=1)[0]
    sheet_two = send_seed_sweep(w, "a harbour", "4, 5")
    with caplog.at_level("ERROR"):
        w.jobs.image_saved(10_000, entry)  # no such job in the list
    assert "Traceback" not in caplog.text and not [r for r in caplog.records if r.levelname == "ERROR"]
    qtbot.waitUntil(lambda: sheet_two.sheet_entry is not None, timeout=30000)


def test_a_sweep_whose_every_cell_failed_saves_no_sheet_of_errors(qtbot: QtBot, make_window: Any, sim: Sim) -> None:
    w = make_window()
    sim.service.inject("task-error*")
    sheet = send_seed_sweep(w, "a lighthouse", "1, 2, 3")
    qtbot.waitUntil(lambda: sheet.counts() == (0, 3, 0) and not w.sweeps.runs, timeout=30000)
    assert sheet.sheet_entry is None
    assert w.library.count() == 0  # no contact sheet of errors alone
    assert w.message_banner.label.text() == "No cell of the sweep made an image, so no contact sheet was saved."


def test_esc_cancels_the_batch_sent_beside_a_sweep_and_then_the_whole_sweep(
    qtbot: QtBot, make_window: Any, sim: Sim
) -> None:
    w = make_window()
    sim.service.config.latency_per_image = 1.0
    w.prompt_panel.setPrompt("a harbour at night")
    w.prompt_panel.countSpin.setValue(4)
    batch = w.generate()
    assert batch is not None
    sheet = send_seed_sweep(w, "a lighthouse", "1, 2, 3, 4, 5, 6")  # its cells are newer jobs than the batch
    qtbot.waitUntil(lambda: len(w.jobs.running()) >= 3, timeout=10000)
    w.cancel_newest()  # the batch from the controls, not the newest cell of the sweep
    qtbot.waitUntil(lambda: batch not in w.jobs.running(), timeout=10000)
    job = w.jobs.get(batch)
    assert job is not None and job.state == "cancelled"
    assert sheet.counts()[1] == 0  # no cell failed
    w.cancel_newest()  # now the sweep, whole
    qtbot.waitUntil(lambda: not w.sweeps.runs, timeout=20000)
    done, failed, waiting = sheet.counts()
    assert waiting == 0 and done + failed == 6 and failed >= 2  # the cells not sent yet, at least
    assert all("Cancel" in (c.error or "") for c in sheet.cells.values() if c.state == "failed")


def test_a_running_sweeps_sheet_reopened_follows_it_and_its_gallery_scope_takes_its_later_images(
    qtbot: QtBot, make_window: Any, sim: Sim
) -> None:
    """Reopened from Recent sweeps while still sending, the sheet showed the cells not yet
    made as failed and never changed; and "Show in gallery" pressed midway kept to the
    images there were then, hiding the rest as they came."""
    w = make_window()
    sim.service.config.latency_per_image = 0.3
    sheet = send_seed_sweep(w, "a lighthouse, seed by seed", "1, 2, 3, 4, 5, 6, 7, 8")
    sweep_id = sheet.tag.id
    qtbot.waitUntil(lambda: sheet.counts()[0] >= 2, timeout=30000)
    assert w.open_sheet(sweep_id) is sheet  # on the screen: the same one, brought forward
    sheet.galleryButton.click()  # the gallery narrowed to the sweep, midway
    qtbot.waitUntil(lambda: w.model.has_scope() and w.model.rowCount() >= 2)
    sheet.close()
    qtbot.waitUntil(lambda: w.sweeps.runs[0].sheet is None)
    reopened = w.open_sheet(sweep_id)
    assert reopened is not None and reopened is not sheet
    done, failed, waiting = reopened.counts()
    assert failed == 0 and waiting > 0 and done + waiting == 8, reopened.counts()
    assert reopened.cancelButton.isVisibleTo(reopened)
    qtbot.waitUntil(lambda: not w.sweeps.runs, timeout=30000)
    assert reopened.counts() == (8, 0, 0)
    assert reopened.sheet_entry is not None  # the sheet saved, shown as saved
    # Every cell and the contact sheet are in the narrowed gallery.
    qtbot.waitUntil(lambda: w.model.rowCount() == 9)
    assert w.model.scope_label().startswith("Sweep")


def test_a_sweep_cancelled_before_any_image_says_so_without_an_error(qtbot: QtBot, make_window: Any, sim: Sim) -> None:
    w = make_window()
    sim.service.config.latency_per_image = 5.0
    sheet = send_seed_sweep(w, "a lighthouse", "1, 2, 3")
    assert w.cancel_button.isEnabled()
    sheet.cancelButton.click()
    qtbot.waitUntil(lambda: not w.sweeps.runs, timeout=20000)
    banner = w.message_banner
    assert banner.label.text() == "The sweep was cancelled before any image arrived; no contact sheet was saved."
    assert not banner.error
    assert not w.cancel_button.isEnabled()


def test_cancel_stays_on_while_a_sweep_uploads_and_a_cells_row_cancels_the_whole_sweep(
    qtbot: QtBot, make_window: Any, sim: Sim, tmp_path: Path
) -> None:
    w = make_window()
    path = tmp_path / "ref.png"
    Image.new("RGB", (96, 64), (200, 40, 40)).save(path)
    w.tray.add_reference(path, 1.0)
    qtbot.waitUntil(lambda: w.tray.count() == 1 and not w.tray.isBusy())
    sim.service.config.latency_per_image = 1.0
    sheet = send_seed_sweep(w, "a lighthouse", "1, 2, 3, 4, 5, 6")
    assert w.cancel_button.isEnabled()  # sending, though no job yet (its reference uploading)
    qtbot.waitUntil(lambda: bool(w.sweeps.runs and w.sweeps.runs[0].job_ids), timeout=20000)
    job_id = min(w.sweeps.runs[0].job_ids)
    w.job_list.cancelRequested.emit(job_id)  # one cell's row: the sweep as a whole
    qtbot.waitUntil(lambda: not w.sweeps.runs, timeout=20000)
    _done, failed, waiting = sheet.counts()
    assert waiting == 0 and failed >= 2  # the cells not yet sent, at least: no hole in a running sweep
    assert "Cancelled before it was sent." in {c.error for c in sheet.cells.values()}
    assert not w.cancel_button.isEnabled()


def test_a_sweep_cancelled_while_its_references_upload_says_nothing_of_their_upload_after(
    qtbot: QtBot, make_window: Any, sim: Sim, tmp_path: Path
) -> None:
    """Cancel works while the references upload; an upload failing after that said "The
    sweep was not sent because a reference could not be uploaded" as a lasting error."""
    from krea_desktop.api import errors as E

    w = make_window()
    path = tmp_path / "ref.png"
    Image.new("RGB", (96, 64), (200, 40, 40)).save(path)
    w.tray.add_reference(path, 1.0)
    qtbot.waitUntil(lambda: w.tray.count() == 1 and not w.tray.isBusy())
    send_seed_sweep(w, "a lighthouse", "1, 2, 3")
    (run,) = w.sweeps.runs
    errors: list[str] = []
    run.message.connect(errors.append)
    run.cancel()  # before the upload has answered
    run._primed(E.ServiceBusyError("The service is busy."))  # as the upload's failure arrives after
    assert errors == []
    assert w.message_banner.label.text() == (
        "The sweep was cancelled before any image arrived; no contact sheet was saved."
    )


def test_lineage_across_generate_drag_generate_and_a_restart(qtbot: QtBot, make_window: Any, data_dir: Path) -> None:
    w = make_window()
    parent = generate_one(qtbot, w, "a harbour at dawn")
    assert w.tray.handle_mime(mime_for_entries([parent]))  # dragged from the gallery
    qtbot.waitUntil(lambda: w.tray.count() == 1 and not w.tray.isBusy())
    card = w.tray.items()[0]
    assert card.library_image == parent.image_uuid and "One of your images" in card.thumbnailLabel.toolTip()
    child = generate_one(qtbot, w, "the same harbour at dusk")
    assert [r.parent for r in child.record.references] == [parent.image_uuid]

    def viewer_for(window: MainWindow, entry: Any) -> ImageViewer:
        window.gallery_actions.select_ids([entry.id])
        window.gallery_actions.view_selected()
        viewer = window.gallery_actions.viewer
        assert viewer is not None
        return viewer

    viewer = viewer_for(w, child)
    qtbot.waitUntil(lambda: bool(viewer.findChildren(RelativeChip)))
    made_from = [c for c in viewer.findChildren(RelativeChip) if c.objectName() == "madeFromChip"]
    assert [c.relative.image_uuid for c in made_from] == [parent.image_uuid]
    # From the keyboard: Tab reaches it from the picture, Return opens the parent.
    assert made_from[0].focusPolicy() == Qt.FocusPolicy.TabFocus
    made_from[0].setFocus()
    qtbot.keyClick(made_from[0], Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: viewer.entry is not None and viewer.entry.id == parent.id)
    qtbot.waitUntil(lambda: any(c.objectName() == "usedInChip" for c in viewer.findChildren(RelativeChip)))
    # The arrows still step through the gallery with a chip focused.
    chip = next(c for c in viewer.findChildren(RelativeChip) if c.objectName() == "usedInChip")
    chip.setFocus()
    shown = viewer.row
    qtbot.keyClick(chip, Qt.Key.Key_Left if shown else Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: viewer.row != shown)
    viewer.close()
    w.close()

    # After a restart the tray still knows its reference's parent, and the index its lineage.
    w2 = make_window()
    qtbot.waitUntil(lambda: w2.tray.count() == 1 and not w2.tray.isBusy())
    assert w2.tray.model[0].parent == parent.image_uuid
    w2.gallery_actions.show_lineage(w2.library.get(parent.id))
    qtbot.waitUntil(lambda: w2.model.scope_ids() is not None)
    assert set(w2.model.scope_ids() or ()) == {parent.id, child.id}
    viewer2 = viewer_for(w2, w2.library.get(parent.id))
    qtbot.waitUntil(lambda: any(c.objectName() == "usedInChip" for c in viewer2.findChildren(RelativeChip)))
    used_in = [c for c in viewer2.findChildren(RelativeChip) if c.objectName() == "usedInChip"]
    assert [c.relative.image_uuid for c in used_in] == [child.image_uuid]
    viewer2.close()


def test_generate_shows_the_estimated_cost_of_the_batch_before_sending(qtbot: QtBot, make_window: Any) -> None:
    w = make_window()
    assert w.cost_estimate.text() == ""  # nothing reported yet: no guess
    entry = generate_one(qtbot, w, "a price to learn")
    assert entry.cost is not None
    w.prompt_panel.countSpin.setValue(4)
    QApplication.processEvents()
    assert w.cost_estimate.text() == f"≈ ${entry.cost * 4:.4f}"
    assert w.cost_estimate.isVisible()


@pytest.mark.parametrize("sheet_closed_first", [False, True], ids=["sheet open", "sheet closed first"])
def test_a_sweep_cut_short_by_closing_the_window_keeps_a_sheet_of_what_arrived(
    qtbot: QtBot, data_dir: Path, memory_keyring: object, monkeypatch: pytest.MonkeyPatch, sheet_closed_first: bool
) -> None:
    with running_simulator() as slow:
        # The first cell comes soon, the second a while later (after the sheet is closed,
        # in that case), the others not before the window closes, however busy the machine.
        slow.service.config = Paced(slow.service.config, [0.4, 3.0])  # type: ignore[assignment]
        monkeypatch.setenv("RUNWARE_API_KEY", KEY)
        monkeypatch.setenv("RUNWARE_API_URL", slow.url)
        w = create_main_window()
        qtbot.addWidget(w)
        w.resize(1366, 768)
        w.show()
        sheet = send_seed_sweep(w, "a lighthouse, seed by seed", "1, 2, 3, 4, 5, 6, 7, 8")
        sweep_id = sheet.tag.id
        qtbot.waitUntil(lambda: sheet.counts()[0] >= 1, timeout=30000)
        assert sheet.sheet_entry is None and w.sweeps.runs  # still sending
        if sheet_closed_first:  # the sweep goes on without its view
            sheet.close()
            qtbot.waitUntil(lambda: w.sweeps.runs[0].sheet is None)
            done = len(w.library.sweep_entries(sweep_id))
            qtbot.waitUntil(lambda: len(w.library.sweep_entries(sweep_id)) > done, timeout=30000)
        from krea_desktop.ui.sweep import runner

        drawn_while_shown = []
        draw = runner.save_sheet

        def watched(*args: Any) -> Any:
            drawn_while_shown.append(w.isVisible())
            return draw(*args)

        monkeypatch.setattr(runner, "save_sheet", watched)
        w.close()
        assert not w.isVisible()
        assert drawn_while_shown == [False]  # the sheet is drawn once the window is gone

    with Library(data_dir) as library:
        saved = library.get_by_uuid(sheet_uuid(sweep_id))
        assert saved is not None and saved.record.sweep is not None and saved.record.sweep.is_sheet
        made = [e for e in library.sweep_entries(sweep_id) if e.record.sweep and not e.record.sweep.is_sheet]
        cells = sheet_cells_of(saved.record)
        assert len(cells) == 8
        # Every image that arrived is in its place; every other cell says why it is empty.
        assert {c.image_uuid for c in cells if c.image_uuid} == {e.image_uuid for e in made} != set()
        assert all(c.error == "The window was closed before it was made." for c in cells if not c.image_uuid)
        assert any(not c.image_uuid for c in cells)


def test_cells_collected_after_the_window_closed_are_drawn_into_the_sweeps_sheet(
    qtbot: QtBot, make_window: Any, sim: Sim, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing the window mid-sweep saves a sheet marking the cells still to come; the
    next start collected their images, and the saved sheet still said they failed."""
    # The first cell soon, those sent beside it a moment later, the rest at once.
    sim.service.config = Paced(sim.service.config, [0.3] + [5.0] * 4 + [0.2] * 10)  # type: ignore[assignment]
    w = make_window()
    sheet = send_seed_sweep(w, "a lighthouse, seed by seed", "1, 2, 3, 4, 5, 6")
    sweep_id = sheet.tag.id
    qtbot.waitUntil(lambda: sheet.counts()[0] >= 1, timeout=30000)
    w.close()
    with Library(data_dir) as library:
        saved = library.get_by_uuid(sheet_uuid(sweep_id))
        assert saved is not None
        closed = [c.place for c in sheet_cells_of(saved.record) if not c.image_uuid]
    assert closed
    from krea_desktop.library import pending

    monkeypatch.setattr(pending, "still_running", lambda *_args: False)  # as a process that ended
    again = make_window()  # collects what the first left
    redrawn: list[Any] = []
    again.client_thread.sheetRedrawn.connect(redrawn.append)

    def drawn() -> tuple[set[Any], dict[Any, Any]]:
        with Library(data_dir) as library:
            made = {e.record.sweep.place for e in library.sweep_entries(sweep_id) if not e.record.sweep.is_sheet}  # type: ignore[union-attr]
            cells = {c.place: c for c in sheet_cells_of(library.get_by_uuid(sheet_uuid(sweep_id)).record)}  # type: ignore[union-attr]
        return made, cells

    qtbot.waitUntil(lambda: not list((data_dir / "pending").glob("*.json")), timeout=30000)  # all collected
    qtbot.waitUntil(lambda: all(drawn()[1][place].image_uuid for place in drawn()[0]), timeout=30000)
    made, _cells = drawn()
    assert made > {(0,)}  # some of those cut off came, and the sheet shows them
    assert redrawn and again.model.row_of(redrawn[-1].id) is not None  # the gallery has the new sheet


@pytest.mark.parametrize(("screen", "size"), [((800, 600), (784, 552)), ((1366, 768), (1350, 720))])
def test_a_large_sheet_opens_whole_on_a_small_screen(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch, screen: tuple[int, int], size: tuple[int, int]
) -> None:
    # Eight seeds by five creativities: the sheet would be 1500x950, larger than the
    # screen, its Close button below the screen's edge. It opens as large as the screen
    # lets it, over its window, and scrolls.
    class Screen:
        def availableGeometry(self) -> QRect:
            return QRect(0, 0, *screen)

    monkeypatch.setattr(QWidget, "screen", lambda self: Screen())
    window = QWidget()
    qtbot.addWidget(window)
    window.setGeometry(0, 0, screen[0] - 16, screen[1] - 48)
    window.show()
    axes = (SweepAxis("seed", tuple(range(8))), SweepAxis("creativity", ("raw", "low", "medium", "high", "max")))
    sheet = ContactSheet(SweepTag("wide", axes), (1024, 1024), "a lighthouse", parent=window)
    qtbot.addWidget(sheet)
    sheet.show()
    qtbot.waitExposed(sheet)
    assert sheet.size() == QSize(*size)
    assert QRect(0, 0, *screen).contains(sheet.frameGeometry())
    buttons = [b for b in sheet.findChildren(QPushButton) if b.text() in ("Show in gallery", "Close")]
    assert len(buttons) == 2
    for button in buttons:
        assert QRect(0, 0, *screen).contains(QRect(button.mapToGlobal(QPoint(0, 0)), button.size()))

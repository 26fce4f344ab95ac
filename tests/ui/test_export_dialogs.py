"""Export from the gallery: a file already there is replaced only when the user says so,
an export into a folder never replaces anything, and what failed stays on screen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from krea_desktop.library import metadata
from krea_desktop.library.export import export_name
from krea_desktop.ui.gallery import export
from krea_desktop.ui.gallery.export_dialog import ExportDialog
from tests.ui.test_gallery import export_several, fill, make_image, make_window, no_trash, select

__all__ = ["make_window", "no_trash"]  # fixtures, used by name


def test_a_name_typed_without_its_suffix_does_not_replace_a_file_unasked(
    qtbot: QtBot, data_dir: Path, make_window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dialog asked about ``holiday``; the export wrote ``holiday.jpg`` over the one
    there without a word."""
    fill(data_dir, [make_image("a beach")])
    w = make_window()
    select(w, 0)
    mine = tmp_path / "holiday.jpg"
    mine.write_bytes(b"the user's own picture")
    monkeypatch.setattr(
        export.QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "holiday"), "JPEG image (*.jpg *.jpeg)")
    )
    asked: list[str] = []

    def answer(no_or_yes: QMessageBox.StandardButton) -> Any:
        return lambda _parent, _title, text, *a: asked.append(text) or no_or_yes

    monkeypatch.setattr(export.QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    w.gallery_actions.export_action.trigger()
    assert asked == [f"holiday.jpg already exists in {tmp_path}; replace it?"]
    qtbot.wait(200)
    assert mine.read_bytes() == b"the user's own picture"
    monkeypatch.setattr(export.QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    w.gallery_actions.export_action.trigger()
    qtbot.waitUntil(lambda: "Exported" in w.message_banner.label.text())
    record = metadata.read_record(mine)
    assert record is not None and record.prompt == "a beach"


def test_an_export_into_a_folder_replaces_nothing_and_names_each_copy(
    qtbot: QtBot, data_dir: Path, make_window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = fill(data_dir, [make_image("one"), make_image("two")])
    w = make_window()
    out = tmp_path / "out"
    out.mkdir()
    taken = out / f"{export_name(entries[0])}.png"  # "one-" and the start of its UUID
    taken.write_bytes(b"already here")
    export_several(w, monkeypatch, out, 0, 1)
    qtbot.waitUntil(lambda: "Exported 2 images" in w.message_banner.label.text())
    assert taken.read_bytes() == b"already here"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [taken.name, f"{export_name(entries[0])} (2).png", f"{export_name(entries[1])}.png"]
    )


def test_one_image_that_cannot_be_exported_leaves_the_others_and_says_so_until_seen(
    qtbot: QtBot, data_dir: Path, make_window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A picture Pillow refused once ended the whole export with Pillow's own words, and
    a failure faded away like news."""
    entries = fill(data_dir, [make_image("fine"), make_image("huge")])
    with Image.open(entries[1].path) as im:
        pixels = im.width * im.height
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pixels // 2 - 1)  # every one "too large"...
    big = Image.new("RGB", (4, 4))
    big.save(entries[0].path, "PNG")  # ...but this one, now 16 pixels
    w = make_window()
    said: list[tuple[str, bool]] = []
    exporter = w.gallery_actions.exporter
    show = exporter.show_message
    monkeypatch.setattr(
        exporter,
        "show_message",
        lambda text, *a, **k: said.append((text, k.get("error", False))) or show(text, *a, **k),
    )
    out = tmp_path / "out"
    export_several(w, monkeypatch, out, 0, 1)
    qtbot.waitUntil(lambda: bool(said))
    ((text, error),) = said
    assert error
    assert text == f"{entries[1].path.name} is too large a picture to export; the other image is in {out}."
    assert [p.name for p in out.iterdir()] == [f"fine-{entries[0].image_uuid[:8]}.png"]


def test_several_images_go_into_the_folder_and_format_chosen_and_the_next_export_starts_there(
    qtbot: QtBot, data_dir: Path, make_window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Several images could only be exported as PNG: a folder dialog has no file types.
    entries = fill(data_dir, [make_image("one"), make_image("two"), make_image("three")])
    w = make_window()
    out = tmp_path / "for the web"
    out.mkdir()
    opened: list[tuple[str, str, str]] = []

    def exec_choosing(dialog: ExportDialog, folder: Path | None, fmt: str | None) -> int:
        opened.append((dialog.windowTitle(), dialog.folderEdit.text(), dialog.format()))
        if folder is None:
            dialog.reject()
        else:
            dialog.folderEdit.setText(str(folder))
            dialog.formatCombo.setCurrentIndex(dialog.formatCombo.findData(fmt))
            dialog.exportButton.click()
        return dialog.result()

    monkeypatch.setattr(ExportDialog, "exec", lambda dialog: exec_choosing(dialog, out, "JPG"))
    select(w, 0, 1, 2)
    w.gallery_actions.export_action.trigger()
    qtbot.waitUntil(lambda: "Exported 3 images" in w.message_banner.label.text())
    assert opened[0][0] == "Export 3 images" and opened[0][2] == "PNG"  # PNG until another is chosen
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{export_name(e)}.jpg" for e in entries)
    for e in entries:
        with Image.open(out / f"{export_name(e)}.jpg") as im:
            assert im.format == "JPEG"
        record = metadata.read_record(out / f"{export_name(e)}.jpg")
        assert record is not None and record.prompt == e.prompt
    # The next export, of one or several, starts from that folder and that format.
    monkeypatch.setattr(ExportDialog, "exec", lambda dialog: exec_choosing(dialog, None, None))
    select(w, 0, 1)
    w.gallery_actions.export_plain_action.trigger()
    assert opened[1] == ("Export 2 images without their parameters", str(out), "JPG")
    offered: list[tuple[str, str]] = []
    monkeypatch.setattr(
        export.QFileDialog,
        "getSaveFileName",
        lambda _p, _t, name, _f, chosen, *a: offered.append((name, chosen)) or ("", ""),
    )
    select(w, 0)  # the newest
    w.gallery_actions.export_action.trigger()
    newest = next(e for e in entries if e.prompt == "three")
    assert offered == [(str(out / f"{export_name(newest)}.jpg"), "JPEG image (*.jpg *.jpeg)")]


def test_the_export_dialog_stays_open_saying_why_until_the_folder_is_one(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from krea_desktop.ui.gallery import export_dialog

    dialog = ExportDialog(4, str(tmp_path / "gone"), "WEBP")
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.format() == "WEBP"
    (folder_label,) = [label for label in dialog.findChildren(export_dialog.QLabel) if label.text() == "&Folder"]
    assert folder_label.buddy() is dialog.folderEdit  # Alt+F, not "&Folder" on screen
    dialog.exportButton.click()
    assert dialog.isVisible() and dialog.problem.isVisibleTo(dialog)
    assert dialog.problem.text() == f"{tmp_path / 'gone'} is not a folder on this computer; choose another."
    dialog.folderEdit.setText("  ")
    dialog.exportButton.click()
    assert dialog.isVisible() and dialog.problem.text() == "Choose a folder to export into."
    picked = tmp_path / "picked"
    picked.mkdir()
    monkeypatch.setattr(export_dialog.QFileDialog, "getExistingDirectory", lambda *a, **k: str(picked))
    dialog.findChild(export_dialog.QPushButton, "exportBrowseButton").click()
    assert dialog.folderEdit.text() == str(picked) and not dialog.problem.isVisibleTo(dialog)
    dialog.exportButton.click()
    assert not dialog.isVisible() and dialog.result() == export_dialog.QDialog.DialogCode.Accepted
    assert dialog.chosen() == (picked, "WEBP")


def test_a_folder_that_cannot_be_looked_at_or_is_only_part_of_a_path_is_said_not_ignored(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from krea_desktop.ui.gallery import export_dialog

    dialog = ExportDialog(2, "/tmp/" + "/".join(["b" * 200] * 25), "PNG", with_parameters=False)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.exportButton.click()  # is_dir() raised "File name too long": the click did nothing
    assert dialog.isVisible() and dialog.problem.isVisibleTo(dialog)
    assert dialog.problem.text().endswith("cannot be used as a folder (File name too long); choose another.")
    dialog.folderEdit.setText("Pictures")  # the folder the app was started from, not the one meant
    dialog.exportButton.click()
    assert dialog.isVisible()
    assert (
        dialog.problem.text()
        == "Give the whole path of the folder (“Pictures” is only part of one), or choose it with Browse."
    )
    assert "without" in dialog.formatCombo.toolTip()  # not "each keeps its prompt and settings"
    monkeypatch.setenv("HOME", str(tmp_path))
    started: list[str] = []
    monkeypatch.setattr(export_dialog.QFileDialog, "getExistingDirectory", lambda _p, _t, at: started.append(at) or "")
    dialog.folderEdit.setText("~/exports")
    dialog.findChild(export_dialog.QPushButton, "exportBrowseButton").click()
    assert started == [str(tmp_path / "exports")] and dialog.folderEdit.text() == "~/exports"

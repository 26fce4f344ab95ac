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
from tests.ui.test_gallery import fill, make_image, make_window, no_trash, select

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
    monkeypatch.setattr(export.QFileDialog, "getExistingDirectory", lambda *a, **k: str(out))
    select(w, 0, 1)
    w.gallery_actions.export_action.trigger()
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
    out.mkdir()
    monkeypatch.setattr(export.QFileDialog, "getExistingDirectory", lambda *a, **k: str(out))
    select(w, 0, 1)
    w.gallery_actions.export_action.trigger()
    qtbot.waitUntil(lambda: bool(said))
    ((text, error),) = said
    assert error
    assert text == f"{entries[1].path.name} is too large a picture to export; the other image is in {out}."
    assert [p.name for p in out.iterdir()] == [f"fine-{entries[0].image_uuid[:8]}.png"]

"""Text naming image files (a path, a ``~`` path, a ``file://`` address), pasted as a
reference: taken as the files themselves."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from krea_desktop.ui.references.sources import might_hold_image, sources_from_mime
from krea_desktop.ui.window.main_window import MainWindow
from tests.ui.test_compose_inputs import banner_messages
from tests.ui.test_new_images import window

__all__ = ["window"]  # a fixture, used by name

NOTHING_ADDED = "That is not an image, an image file or an image address, so nothing was added."


def picture(path: Path, shade: int) -> Path:
    Image.new("RGB", (40, 30), (shade, 90, 200 - shade)).save(path)
    return path


def paste_text(qtbot: QtBot, w: MainWindow, text: str) -> None:
    QGuiApplication.clipboard().setText(text)
    w.paste_action.trigger()
    w.tray.wait_for_loads()
    qtbot.waitUntil(lambda: not w.tray.isBusy(), timeout=10_000)


def text_mime(text: str) -> QMimeData:
    mime = QMimeData()
    mime.setText(text)
    return mime


def test_a_pasted_path_to_an_image_file_adds_that_file(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    files = [picture(tmp_path / f"ref{i}.png", 30 * i) for i in range(6)]
    said = banner_messages(window)
    pasted = [
        str(files[0]),  # a path
        QUrl.fromLocalFile(str(files[1])).toString(),  # a file:// address
        f"  {files[2]}\n",  # copied with the space and the line end around it
        "~/ref3.png",  # in the home folder
        f"{files[4]}\n{QUrl.fromLocalFile(str(files[5])).toString()}\n",  # several, one a line
    ]
    for text in pasted:
        paste_text(qtbot, window, text)
    assert said == []
    assert [r.source for r in window.tray.model] == [f.name for f in files]
    assert [Path(str(r.image)).read_bytes() for r in window.tray.references()] == [f.read_bytes() for f in files]


def test_a_pasted_path_is_checked_as_a_dropped_file_is(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    damaged = tmp_path / "damaged.png"
    damaged.write_bytes(b"\x89PNG\r\n\x1a\n" + b"junk" * 50)
    said = banner_messages(window)
    paste_text(qtbot, window, str(notes))
    paste_text(qtbot, window, str(damaged))
    assert [text for text, _action in said] == [
        "“notes.txt” is not an image Krea Desktop can read (PNG, JPEG, WEBP, GIF, BMP or TIFF).",
        "“damaged.png” is damaged and cannot be opened as an image.",
    ]
    assert window.tray.count() == 0


def test_text_that_names_no_file_is_still_refused(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    image = picture(tmp_path / "there.png", 5)
    said = banner_messages(window)
    for text in (
        str(tmp_path / "missing.png"),  # no such file
        "there.png",  # not a full path
        f"{image}\na lighthouse in fog",  # a file, then words
        str(tmp_path),  # a folder
    ):
        paste_text(qtbot, window, text)
    assert said == [(NOTHING_ADDED, None)] * 4
    assert window.tray.count() == 0


def test_text_naming_files_is_read_as_images_and_addresses_stay_addresses(tmp_path: Path) -> None:
    image = picture(tmp_path / "a.png", 9)
    mime = text_mime(f"https://example.com/b.png\n{QUrl.fromLocalFile(str(image)).toString()}")
    assert might_hold_image(mime)
    assert [(s.kind, s.value) for s in sources_from_mime(mime)] == [
        ("url", "https://example.com/b.png"),
        ("path", image),
    ]
    assert might_hold_image(text_mime(f" {image}\n"))
    assert not might_hold_image(text_mime(str(tmp_path / "missing.png")))
    assert sources_from_mime(text_mime("a lighthouse in fog")) == []

"""Image files dropped on the window (outside the tray): known as images by what they hold,
not by their names, and refused as the tray refuses them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QDropEvent
from pytestqt.qtbot import QtBot

from krea_desktop.library.inputs import MAX_FILE_BYTES
from krea_desktop.ui.window.main_window import MainWindow
from tests.ui.test_compose_inputs import banner_messages
from tests.ui.test_gallery import drop, mime_of
from tests.ui.test_new_images import window

__all__ = ["window"]  # a fixture, used by name


def drop_on_window(w: MainWindow, *paths: Path) -> QDropEvent:
    """A drag of ``paths`` that ends on the gallery, which leaves drops to the window."""
    return drop(w.gallery.viewport(), mime_of(*paths))


def tray_says(qtbot: QtBot, w: MainWindow, path: Path) -> list[str]:
    """What the tray says when ``path`` is dropped on it (it is then emptied again)."""
    said: list[str] = []
    w.tray.message.connect(said.append)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    w.tray.handle_mime(mime)
    w.tray.wait_for_loads()
    qtbot.waitUntil(lambda: not w.tray.isBusy(), timeout=10_000)
    w.tray.message.disconnect(said.append)
    w.tray.clear()
    return said


@pytest.mark.parametrize("name", ["download.jfif", "photo.jpe", "screenshot", "picture.data"])
def test_an_image_file_named_unlike_one_is_offered_as_a_reference(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, name: str
) -> None:
    plain = tmp_path / "plain.jpg"
    Image.new("RGB", (48, 32), (200, 10, 10)).save(plain)
    dropped = tmp_path / name
    shutil.copy(plain, dropped)
    said = banner_messages(window)
    assert drop_on_window(window, dropped).isAccepted()
    qtbot.waitUntil(lambda: bool(said))
    assert said == [(f"{name} carries no parameters.", "Add as reference")]
    window.message_banner.action.click()
    window.tray.wait_for_loads()
    qtbot.waitUntil(lambda: window.tray.count() == 1 and not window.tray.isBusy(), timeout=10_000)
    assert [r.source for r in window.tray.model] == [name]


def test_a_file_named_unlike_an_image_that_is_none_is_still_not_taken(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    notes = tmp_path / "notes"
    notes.write_text("not a picture")
    said = banner_messages(window)
    assert drop_on_window(window, notes).isAccepted()
    qtbot.waitUntil(lambda: bool(said))
    assert said == [("“notes” is not an image file, so nothing was taken.", None)]


def damaged(folder: Path) -> Path:
    path = folder / "corrupt.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0garbage" * 20)  # begins as a JPEG does, then is none
    return path


def too_large(folder: Path) -> Path:
    path = folder / "huge.png"
    with open(path, "wb") as f:  # sparse: takes no room on the disk
        f.write(b"\x89PNG\r\n\x1a\n")
        f.truncate(MAX_FILE_BYTES + 100_000_000)
    return path


@pytest.mark.parametrize("make", [damaged, too_large])
def test_an_image_the_tray_would_refuse_is_refused_with_the_trays_sentence(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, make: Any
) -> None:
    path = make(tmp_path)
    expected = tray_says(qtbot, window, path)
    assert len(expected) == 1 and path.name in expected[0]
    said = banner_messages(window)
    assert drop_on_window(window, path).isAccepted()
    qtbot.waitUntil(lambda: bool(said))
    qtbot.wait(50)
    assert said == [(expected[0], None)]  # one sentence, and nothing offered
    assert window.tray.count() == 0


def test_a_refused_image_dropped_with_a_good_one_is_left_out(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    Image.new("RGB", (30, 30), (1, 2, 3)).save(good)
    bad = damaged(tmp_path)
    said = banner_messages(window)
    assert drop_on_window(window, good, bad).isAccepted()
    qtbot.waitUntil(lambda: bool(said))
    assert said == [
        (
            "good.png carries no parameters; “corrupt.jpg” cannot be used as a reference and is left out.",
            "Add as reference",
        )
    ]
    window.message_banner.action.click()
    window.tray.wait_for_loads()
    qtbot.waitUntil(lambda: window.tray.count() == 1 and not window.tray.isBusy(), timeout=10_000)
    assert [r.source for r in window.tray.model] == ["good.png"]
    assert [text for text, _action in said[1:]] == []  # nothing failed on the way


def test_a_dropped_image_is_offered_from_its_header_without_decoding_its_pixels(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A dozen camera photos are offered at once, not after a decode of each (seconds).
    import krea_desktop.library.inputs as inputs

    paths = []
    for i in range(3):
        paths.append(tmp_path / f"photo{i}.jpg")
        Image.new("RGB", (64, 48), (i * 60, 90, 30)).save(paths[-1])
    decoded: list[str] = []
    real = inputs.decode_image
    monkeypatch.setattr(inputs, "decode_image", lambda data, label="": decoded.append(label) or real(data, label))
    said = banner_messages(window)
    assert drop_on_window(window, *paths).isAccepted()
    qtbot.waitUntil(lambda: bool(said))
    assert said == [("3 images carry no parameters.", "Add as reference")]
    assert decoded == []  # decoded when added, not to be offered
    window.message_banner.action.click()
    qtbot.waitUntil(lambda: window.tray.count() == 3 and not window.tray.isBusy(), timeout=10_000)


def test_a_file_named_unlike_an_image_is_read_no_further_than_its_first_bytes(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import krea_desktop.ui.gallery.drops as drops

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100_000)  # a video, not an image
    read: list[Path] = []
    monkeypatch.setattr(drops.metadata, "read_record", lambda path: read.append(path))
    said = banner_messages(window)
    assert drop_on_window(window, clip).isAccepted()
    qtbot.waitUntil(lambda: bool(said))
    assert said == [("“clip.mp4” is not an image file, so nothing was taken.", None)]
    assert read == []


def test_a_file_given_to_the_app_that_is_no_image_is_said_so_and_not_shown(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("just some notes\n")
    said = banner_messages(window)
    window.open_images([notes])  # krea-desktop notes.txt, or "Open with"
    qtbot.waitUntil(lambda: bool(said))
    qtbot.wait(50)
    assert said == [("None of the given files is an image the app can read.", None)]
    assert window.file_drops.file_viewer is None or not window.file_drops.file_viewer.isVisible()

"""Images given to the compose side in the less common ways: addresses written in HTML,
pastes into the advanced fields, drops that mix files and web addresses, drops on a tray
that is nearly full, files that are no image, and a window closed while an image downloads."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QByteArray, QMimeData, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from krea_desktop.api import spec
from krea_desktop.ui.mime import LIBRARY_IDS_MIME, encode_library_ids
from krea_desktop.ui.references.sources import sources_from_mime
from krea_desktop.ui.window.main_window import MainWindow
from tests.helpers.drag import drag_event
from tests.helpers.images import Route, distinct_png, serving
from tests.ui.test_gallery import _drop_on_window, make_window, no_trash
from tests.ui.test_reference_tray import Tray, make_tray, tray, write

__all__ = ["make_tray", "make_window", "no_trash", "tray"]  # fixtures, used by name


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


def banner_messages(w: MainWindow) -> list[tuple[str, str | None]]:
    """What the window's message banner says from now on: (text, action)."""
    said: list[tuple[str, str | None]] = []
    show = w.message_banner.show_message

    def spy(text: str, action: str | None = None, slot: Any = None, *, error: bool = False) -> None:
        said.append((text, action))
        show(text, action, slot, error=error)

    w.message_banner.show_message = spy  # type: ignore[method-assign]
    return said


def test_an_image_address_written_in_html_is_read_as_html(tray: Tray, no_proxy: None) -> None:
    """In HTML, "&" in an address is written "&amp;": the image is fetched from the address
    the page means."""
    mime = QMimeData()
    mime.setHtml('<p>a</p><img src="https://example.com/a.png?w=1&amp;h=2">')
    assert [(s.kind, s.value) for s in sources_from_mime(mime)] == [("url", "https://example.com/a.png?w=1&h=2")]

    png = distinct_png(3)
    with serving({"/a.png?w=1&h=2": Route(png)}) as web:
        pasted = QMimeData()
        pasted.setHtml(f'<img src="{web.url}/a.png?w=1&amp;h=2">')
        assert tray.drop(pasted)
    assert [Path(r.image).read_bytes() for r in tray.widget.references()] == [png]
    assert tray.messages == []


@pytest.mark.parametrize("field", ["webhookEdit", "uploadEndpointEdit"])
def test_ctrl_v_with_an_image_in_an_advanced_address_field_adds_it_to_the_tray(
    qtbot: QtBot, make_window: Callable[[], MainWindow], field: str
) -> None:
    w = make_window()
    w.prompt_panel.setAdvancedVisible(True)
    edit = getattr(w.prompt_panel, field)
    image = QImage(30, 20, QImage.Format.Format_RGB32)
    image.fill(Qt.GlobalColor.darkCyan)
    QGuiApplication.clipboard().setImage(image)
    edit.setFocus()
    qtbot.waitUntil(edit.hasFocus)
    qtbot.keyClick(edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: w.tray.count() == 1 and not w.tray.isBusy(), timeout=10_000)
    assert edit.text() == ""
    # An address copied as text is pasted into the field, as text.
    QGuiApplication.clipboard().setText("https://example.com/hook")
    qtbot.keyClick(edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert edit.text() == "https://example.com/hook"
    qtbot.wait(100)
    assert w.tray.count() == 1 and not w.tray.isBusy()
    # As a browser copies its address bar: a URL list, and the same address as text.
    edit.clear()
    address = QMimeData()
    address.setUrls([QUrl("https://hooks.example.com/krea/notify?token=abc")])
    address.setText("https://hooks.example.com/krea/notify?token=abc")
    QGuiApplication.clipboard().setMimeData(address)
    qtbot.keyClick(edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert edit.text() == "https://hooks.example.com/krea/notify?token=abc"
    qtbot.wait(100)
    assert w.tray.count() == 1 and not w.tray.isBusy()  # not downloaded as an image


def test_files_and_web_addresses_dropped_together_are_all_taken(tray: Tray, tmp_path: Path, no_proxy: None) -> None:
    local = write(tmp_path, "local.png", distinct_png(1))
    png = distinct_png(2)
    with serving({"/web.png": Route(png)}) as web:
        mime = QMimeData()
        mime.setUrls([QUrl(f"{web.url}/web.png"), QUrl.fromLocalFile(str(local))])
        assert [s.kind for s in sources_from_mime(mime)] == ["url", "path"]
        assert tray.drop(mime)
    assert [Path(r.image).read_bytes() for r in tray.widget.references()] == [png, local.read_bytes()]
    assert tray.messages == []


def test_a_duplicate_or_a_non_image_takes_no_room_from_a_new_image(tray: Tray, tmp_path: Path) -> None:
    files = [write(tmp_path, f"f{i}.png", distinct_png(i)) for i in range(11)]
    assert tray.drop_files(*files[:9])
    assert tray.widget.count() == 9
    assert tray.drop_files(files[0], files[9])  # one already in the tray, one new
    assert tray.widget.count() == 10
    assert Path(tray.widget.references()[-1].image).read_bytes() == files[9].read_bytes()
    assert tray.messages == ["“f0.png” is already in the tray, as reference 1."]

    tray.widget.remove(9)
    notes = write(tmp_path, "notes.png", b"these are words, not pixels")
    assert tray.drop_files(notes, files[10])
    assert tray.widget.count() == 10
    assert Path(tray.widget.references()[-1].image).read_bytes() == files[10].read_bytes()
    assert "“notes.png” is not an image" in tray.messages[-1]

    # Two new images for one place: neither is taken, as before.
    tray.widget.remove(9)
    extra = [write(tmp_path, f"x{i}.png", distinct_png(40 + i)) for i in range(2)]
    assert not tray.drop_files(*extra)
    assert tray.widget.count() == 9 and "Only 1 more reference fits" in tray.messages[-1]


def test_a_data_uri_dragged_as_text_is_accepted_as_its_paste_is(tray: Tray) -> None:
    uri = "data:image/png;base64," + base64.b64encode(distinct_png(4)).decode()
    mime = QMimeData()
    mime.setText(uri)
    enter = drag_event(QDragEnterEvent, 10, 20, mime, Qt.DropAction.CopyAction)
    QApplication.sendEvent(tray.widget, enter)
    assert enter.isAccepted()
    assert tray.drop(mime)
    assert [Path(r.image).read_bytes() for r in tray.widget.references()] == [distinct_png(4)]


def test_a_gallery_selection_larger_than_the_room_is_refused_without_looking_it_up(
    make_tray: Callable[..., Tray],
) -> None:
    asked: list[list[int]] = []

    def resolve(ids: list[int]) -> list[Path]:
        asked.append(ids)
        return []

    t = make_tray(resolve_library_ids=resolve)
    t.add(distinct_png(1))
    mime = QMimeData()
    mime.setData(LIBRARY_IDS_MIME, QByteArray(encode_library_ids(list(range(1, 4001)))))
    assert not t.drop(mime)
    assert asked == []
    assert t.messages[-1] == (
        f"Only {spec.MAX_REFERENCES - 1} more references fit in the tray (at most {spec.MAX_REFERENCES}), "
        "so none of these 4000 were added."
    )


def test_gallery_images_copied_then_deleted_are_said_to_be_gone_when_pasted(make_tray: Callable[..., Tray]) -> None:
    t = make_tray(resolve_library_ids=lambda ids: [])
    mime = QMimeData()
    mime.setData(LIBRARY_IDS_MIME, QByteArray(encode_library_ids([7])))
    assert not t.drop(mime)
    assert t.messages[-1] == "Those gallery images are no longer in the library (deleted since), so none was added."


def test_a_file_named_like_an_image_that_is_none_is_not_offered_as_a_reference(
    qtbot: QtBot, make_window: Callable[[], MainWindow], tmp_path: Path
) -> None:
    w = make_window()
    said = banner_messages(w)
    notes = write(tmp_path, "notes.png", b"hello words")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(notes))])
    assert _drop_on_window(w, mime).isAccepted()
    qtbot.waitUntil(lambda: bool(said))
    assert said == [("“notes.png” is not an image Krea Desktop can read, so nothing was taken.", None)]


def test_a_file_and_a_web_address_dropped_on_the_window_are_both_offered(
    qtbot: QtBot, make_window: Callable[[], MainWindow], tmp_path: Path, no_proxy: None
) -> None:
    w = make_window()
    said = banner_messages(w)
    plain = write(tmp_path, "plain.png", distinct_png(3))
    png = distinct_png(5)
    with serving({"/x.png": Route(png)}) as web:
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(plain)), QUrl(f"{web.url}/x.png")])
        assert _drop_on_window(w, mime).isAccepted()
        qtbot.waitUntil(lambda: bool(said))
        assert said == [
            (
                "plain.png carries no parameters; “x.png” is on the web and is downloaded first as a reference.",
                "Add as reference",
            )
        ]
        w.message_banner.action.click()
        qtbot.waitUntil(lambda: w.tray.count() == 2 and not w.tray.isBusy(), timeout=10_000)
    assert [Path(r.image).read_bytes() for r in w.tray.references()] == [plain.read_bytes(), png]


def test_closing_the_window_gives_up_an_image_still_downloading_at_once(
    qtbot: QtBot, make_window: Callable[[], MainWindow], tmp_path: Path, no_proxy: None
) -> None:
    w = make_window()
    w.tray.add_reference(write(tmp_path, "kept.png", distinct_png(1)), -0.5)
    qtbot.waitUntil(lambda: w.tray.count() == 1 and not w.tray.isBusy(), timeout=10_000)
    state_file = w.data_dir / "references" / "tray.json"
    slow = Route(distinct_png(7), gate=threading.Event())
    with serving({"/slow.png": slow}) as web:
        w.tray.add_reference(f"{web.url}/slow.png", 1.5)
        assert w.tray.isBusy()
        w.close()
        assert slow.answered == 0  # the window closed with the download still under way
        assert not w.isVisible()
        assert slow.gate is not None
        slow.gate.set()
        saved = json.loads(state_file.read_text())["references"]
        assert [(e["source"], e["strength"]) for e in saved] == [("kept.png", -0.5)]
        # The download ends after the window has closed: it is not added, nor saved.
        w.tray.wait_for_loads(10_000)
        qtbot.wait(400)
    assert w.tray.count() == 1
    assert json.loads(state_file.read_text())["references"] == saved


def test_a_reference_removed_by_mistake_comes_back_with_undo_at_its_place_and_strength(
    qtbot: QtBot, make_window: Callable[[], MainWindow], tmp_path: Path
) -> None:
    w = make_window()
    for i, strength in enumerate((0.7, -1.3, 1.9)):
        w.tray.add_reference(write(tmp_path, f"ref{i}.png", distinct_png(i)), strength)
    qtbot.waitUntil(lambda: w.tray.count() == 3 and not w.tray.isBusy(), timeout=10_000)
    before = w.tray.references()
    said = banner_messages(w)
    qtbot.mouseClick(w.tray.items()[1].removeButton, Qt.MouseButton.LeftButton)
    assert said == [("Removed “ref1.png” from the references.", "Undo")]
    assert [r.strength for r in w.tray.references()] == [0.7, 1.9]
    w.message_banner.action.click()
    assert w.tray.references() == before


def test_references_removed_one_after_another_come_back_together_with_one_undo(
    qtbot: QtBot, make_window: Callable[[], MainWindow], tmp_path: Path
) -> None:
    """Each removal's sentence took the Undo of the one before: of two removed, Undo
    brought back the second only, and nothing said the first was gone for good. And an
    Undo the tray no longer had room for said "remove one to add another", when removing
    one brought nothing back: the Undo had gone with its message."""
    w = make_window()
    for i, strength in enumerate((0.7, -1.3, 1.9, -0.4)):
        w.tray.add_reference(write(tmp_path, f"ref{i}.png", distinct_png(i)), strength)
    qtbot.waitUntil(lambda: w.tray.count() == 4 and not w.tray.isBusy(), timeout=10_000)
    before = w.tray.references()
    said = banner_messages(w)
    qtbot.mouseClick(w.tray.items()[0].removeButton, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(w.tray.items()[1].removeButton, Qt.MouseButton.LeftButton)  # ref2, now second
    assert said[-1] == ("Removed “ref2.png” and 1 other from the references.", "Undo")
    assert [r.strength for r in w.tray.references()] == [-1.3, -0.4]
    w.message_banner.action.click()
    assert w.tray.references() == before  # each at its place, with its strength
    # Removed, then the tray filled meanwhile: the Undo says what it could not do, no more.
    qtbot.mouseClick(w.tray.items()[3].removeButton, Qt.MouseButton.LeftButton)
    for i in range(4, 4 + spec.MAX_REFERENCES - 3):
        w.tray.add_reference(write(tmp_path, f"more{i}.png", distinct_png(i)), 0.5)
    qtbot.waitUntil(lambda: w.tray.count() == spec.MAX_REFERENCES and not w.tray.isBusy(), timeout=10_000)
    removed = [s for s in said if s[0].startswith("Removed")]
    assert removed[-1] == ("Removed “ref3.png” from the references.", "Undo")
    assert w.message_banner.label.text() == removed[-1][0]
    w.message_banner.action.click()  # its Undo, pressed once the tray is full
    assert w.tray.count() == spec.MAX_REFERENCES
    assert said[-1][0] == (
        "“ref3.png” could not be put back: the tray is full (10 references, the most a generation can use)."
    )


def test_a_reference_card_let_go_beside_the_tray_is_no_drop_on_the_window(
    qtbot: QtBot, make_window: Callable[[], MainWindow], tmp_path: Path
) -> None:
    # It used to be taken as a file dropped on the window: "….png carries no parameters."
    # with "Add as reference", for an image that is in the tray already.
    w = make_window()
    w.tray.add_reference(write(tmp_path, "ref.png", distinct_png(1)), 0.5)
    qtbot.waitUntil(lambda: w.tray.count() == 1 and not w.tray.isBusy(), timeout=10_000)
    said = banner_messages(w)
    assert not _drop_on_window(w, w.tray.items()[0].mime_data()).isAccepted()
    qtbot.wait(50)
    assert said == [] and w.tray.count() == 1


def test_a_file_copied_with_its_address_percent_encoded_as_text_is_an_image_not_text(tmp_path: Path) -> None:
    from krea_desktop.ui.references.sources import images_without_text

    folder = tmp_path / "my pics"
    folder.mkdir()
    path = write(folder, "a b.png", distinct_png(2))
    url = QUrl.fromLocalFile(str(path))
    for text in (bytes(url.toEncoded().data()).decode(), url.toString(), str(path)):
        mime = QMimeData()
        mime.setUrls([url])
        mime.setText(text)  # as one file manager or another writes it beside the URL list
        assert images_without_text(mime), text
    mime.setText("a b, a caption")
    assert not images_without_text(mime)


def test_an_image_copied_as_text_pasted_in_the_prompt_goes_to_the_tray_not_into_the_prompt(
    qtbot: QtBot, make_window: Callable[[], MainWindow], tmp_path: Path
) -> None:
    """With the prompt focused (at start and after each Generate), a data URI or an image
    file's path copied as text was pasted into the prompt: base64 or a path in the prompt,
    and Generate ready to send it."""
    import base64

    w = make_window()
    edit = w.prompt_panel.promptEdit
    path = write(tmp_path, "ref.png", distinct_png(3))
    texts = [
        "data:image/png;base64," + base64.b64encode(distinct_png(4)).decode(),
        str(path),
        QUrl.fromLocalFile(str(path)).toString(),
    ]
    for text in texts:
        w.tray.clear()
        edit.setPlainText("a red fox")
        QGuiApplication.clipboard().setText(text)
        edit.setFocus()
        qtbot.keyClick(edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(lambda: w.tray.count() == 1 and not w.tray.isBusy(), timeout=10_000)
        assert edit.toPlainText() == "a red fox", text[:40]
    # Words, an address on the web or a path that is no image are still the prompt's text.
    notes = write(tmp_path, "notes.txt", b"some words")
    for text in ("a fox at dawn", "https://example.com/fox.png", str(notes)):
        edit.setPlainText("")
        QGuiApplication.clipboard().setText(text)
        qtbot.keyClick(edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
        assert edit.toPlainText() == text

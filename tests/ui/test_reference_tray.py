from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QByteArray, QLocale, QMimeData, QPoint, QRect, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication, QScrollArea, QToolButton, QWidget
from pytestqt.qtbot import QtBot

from krea_desktop.api import spec
from krea_desktop.api.request import ReferenceImage
from krea_desktop.library.inputs import InvalidImageError
from krea_desktop.ui.mime import LIBRARY_IDS_MIME, encode_library_ids
from krea_desktop.ui.references.card import REFERENCE_MIME, ReferenceItem
from krea_desktop.ui.references.tray import ReferenceTray, not_put_back
from tests.helpers.drag import drag_event, leave
from tests.helpers.images import SVG, Route, distinct_png, huge_header_png, image_bytes, serving, truncated_png
from tests.helpers.wheel import wheel


class Tray:
    """A tray under test plus the messages it said."""

    def __init__(self, qtbot: QtBot, folder: Path, **kwargs: object) -> None:
        self.qtbot = qtbot
        self.folder = folder
        self.widget = ReferenceTray(folder, **kwargs)  # type: ignore[arg-type]
        qtbot.addWidget(self.widget)
        self.widget.resize(1400, 260)
        self.widget.show()
        self.messages: list[str] = []
        self.widget.message.connect(self.messages.append)

    def settle(self) -> None:
        self.qtbot.waitUntil(lambda: not self.widget.isBusy(), timeout=10_000)

    def drop(self, mime: QMimeData, x: float = 10, y: float = 20) -> bool:
        enter = drag_event(QDragEnterEvent, x, y, mime, Qt.DropAction.CopyAction | Qt.DropAction.MoveAction)
        QApplication.sendEvent(self.widget, enter)
        if not enter.isAccepted():
            return False
        drop = drag_event(QDropEvent, x, y, mime, Qt.DropAction.CopyAction | Qt.DropAction.MoveAction)
        QApplication.sendEvent(self.widget, drop)
        self.settle()
        return drop.isAccepted()

    def drop_files(self, *paths: Path) -> bool:
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
        return self.drop(mime)

    def add(self, data: bytes, strength: float = spec.DEFAULT_STRENGTH) -> None:
        self.widget.add_reference(data, strength)
        self.settle()

    def items(self) -> list[ReferenceItem]:
        return self.widget.items()


@pytest.fixture
def make_tray(qtbot: QtBot, tmp_path: Path) -> Callable[..., Tray]:
    def make(**kwargs: object) -> Tray:
        kwargs.setdefault("autosave", False)
        return Tray(qtbot, tmp_path / "references", **kwargs)

    return make


@pytest.fixture
def tray(make_tray: Callable[..., Tray]) -> Tray:
    return make_tray()


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def test_public_names(tray: Tray) -> None:
    assert tray.widget.objectName() == "referenceTray" and tray.widget.acceptDrops()
    assert tray.widget.references() == ()


def test_dropped_files_are_added_in_order(tray: Tray, tmp_path: Path) -> None:
    paths = [write(tmp_path, f"{i}.png", distinct_png(i)) for i in range(3)]
    with tray.qtbot.waitSignal(tray.widget.referencesChanged):
        assert tray.drop_files(*paths)
    refs = tray.widget.references()
    assert len(refs) == 3
    assert all(isinstance(r, ReferenceImage) and r.strength == spec.DEFAULT_STRENGTH for r in refs)
    assert [Path(r.image).read_bytes() for r in refs] == [p.read_bytes() for p in paths]
    assert all(Path(r.image).parent == tray.folder for r in refs)
    items = tray.widget.findChildren(QWidget, "referenceItem")
    assert len(items) == 3
    for item in tray.items():
        assert item.strengthSpin.objectName() == "strengthSpin"
        assert item.thumbnailLabel.pixmap() is not None and not item.thumbnailLabel.pixmap().isNull()
    assert tray.messages == []


def test_web_url_is_downloaded(tray: Tray, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    png = image_bytes((30, 20))
    with serving({"/a.png": Route(png), "/page": Route(b"<html/>", "text/html")}) as web:
        mime = QMimeData()
        mime.setUrls([QUrl(f"{web.url}/a.png")])
        assert tray.drop(mime)
        assert [Path(r.image).read_bytes() for r in tray.widget.references()] == [png]

        text = QMimeData()
        text.setText(f"{web.url}/page")
        tray.drop(text)
        assert tray.widget.count() == 1
        assert tray.messages and "not an image" in tray.messages[-1]


def test_browser_drag_prefers_the_image_data(tray: Tray) -> None:
    png = image_bytes((12, 34))
    mime = QMimeData()
    mime.setUrls([QUrl("http://127.0.0.1:9/never-fetched.png")])
    mime.setData("image/png", QByteArray(png))
    mime.setHtml('<img src="http://127.0.0.1:9/never-fetched.png">')
    assert tray.drop(mime)
    assert [Path(r.image).read_bytes() for r in tray.widget.references()] == [png]


def test_raw_image_data(tray: Tray) -> None:
    image = QImage(25, 15, QImage.Format.Format_RGB32)
    image.fill(Qt.GlobalColor.darkCyan)
    mime = QMimeData()
    mime.setImageData(image)
    assert tray.drop(mime)
    (item,) = tray.items()
    assert item.image_size == (25, 15)


def test_paste_from_clipboard(tray: Tray) -> None:
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.red)
    QGuiApplication.clipboard().setImage(image)
    assert tray.widget.paste_from_clipboard()
    tray.settle()
    assert tray.widget.count() == 1
    QGuiApplication.clipboard().setText("just words")
    assert not tray.widget.paste_from_clipboard()
    assert tray.widget.count() == 1 and "nothing was added" in tray.messages[-1]
    # An empty clipboard, as X11 gives it (data of no format, not none), is said to be empty.
    QGuiApplication.clipboard().setMimeData(QMimeData())
    assert not tray.widget.paste_from_clipboard()
    assert tray.messages[-1] == "The clipboard is empty; copy an image or an image address first."


class _NeverEncoded(QImage):
    """A pasted image that fails the test if it is encoded."""

    def save(self, *args: object) -> bool:  # type: ignore[override]
        raise AssertionError("an image too large to be a reference was encoded")


@pytest.mark.parametrize(
    "size, fmt",
    [((16_385, 2), QImage.Format.Format_ARGB32), ((8_001, 8_001), QImage.Format.Format_Mono)],
    ids=["a side too long", "too many pixels"],
)
def test_a_pasted_image_too_large_is_refused_by_its_size_before_it_is_encoded(
    tmp_path: Path, size: tuple[int, int], fmt: QImage.Format
) -> None:
    """Encoding a gigantic pasted image took seconds (which a closing window waited for)
    before it was refused; its size alone says it cannot be a reference, and is said."""
    from krea_desktop.ui.references.sources import Source, load_source

    image = _NeverEncoded(*size, fmt)
    with pytest.raises(InvalidImageError) as refused:
        load_source(Source("qimage", image), tmp_path)
    assert str(refused.value).startswith(f"“pasted image” is too large ({size[0]}×{size[1]}): references may have")
    assert not any(tmp_path.iterdir())  # nothing stored


BAD_FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "non-image": (lambda d: write(d, "notes.png", b"these are words, not pixels"), "not an image"),
    "empty": (lambda d: write(d, "empty.png", b""), "0 bytes"),
    "truncated": (lambda d: write(d, "cut.png", truncated_png()), "damaged"),
    "folder": (lambda d: d, "folder"),
    "missing": (lambda d: d / "gone.png", "does not exist"),
    "bomb": (lambda d: write(d, "bomb.png", huge_header_png()), "megapixels"),
    "svg": (lambda d: write(d, "logo.svg", SVG), "SVG"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_input_is_refused_and_the_tray_is_unchanged(tray: Tray, tmp_path: Path, case: str) -> None:
    tray.add(distinct_png(1), 1.5)
    before = tray.widget.references()
    files = tmp_path / "files"
    files.mkdir()
    make, words = BAD_FILES[case]
    with tray.qtbot.waitSignal(tray.widget.message) as signal:
        tray.drop_files(make(files))
        tray.settle()
    assert words in signal.args[0]
    assert tray.widget.references() == before
    assert sorted(p.name for p in tray.folder.iterdir()) == [Path(before[0].image).name]  # nothing kept


def test_eleventh_reference_is_refused(tray: Tray, tmp_path: Path) -> None:
    for i in range(spec.MAX_REFERENCES - 2):
        tray.widget.add_reference(distinct_png(i))
    tray.settle()
    assert tray.widget.count() == 8
    three = [write(tmp_path, f"x{i}.png", distinct_png(50 + i)) for i in range(3)]
    assert not tray.drop_files(*three)
    assert tray.widget.count() == 8 and "Only 2 more" in tray.messages[-1]
    assert tray.drop_files(*three[:2])
    assert tray.widget.count() == 10
    before = tray.widget.references()
    assert not tray.widget.add_reference(distinct_png(99))
    assert not tray.drop_files(three[2])
    assert tray.widget.references() == before
    assert "already holds 10" in tray.messages[-1]


def test_add_is_unavailable_while_the_tray_is_full_and_says_why(tray: Tray) -> None:
    add = tray.widget.addButton
    for i in range(spec.MAX_REFERENCES - 1):
        tray.widget.add_reference(distinct_png(i))
    tray.settle()
    assert add.isEnabled() and add.toolTip() == "Choose image files to add as references"
    tray.add(distinct_png(99))
    assert tray.widget.count() == 10
    assert not tray.widget.add_reference(distinct_png(100))
    assert not add.isEnabled() and add.toolTip() == tray.messages[-1]  # what adding says
    assert "already holds 10" in add.toolTip()
    tray.qtbot.mouseClick(tray.items()[0].removeButton, Qt.MouseButton.LeftButton)
    assert tray.widget.count() == 9
    assert add.isEnabled() and add.toolTip() == "Choose image files to add as references"


def test_duplicates_are_refused(tray: Tray) -> None:
    tray.add(distinct_png(3))
    tray.add(distinct_png(3))
    assert tray.widget.count() == 1 and "already in the tray" in tray.messages[-1]


def test_strength_spin_and_slider_stay_in_step(tray: Tray) -> None:
    tray.add(distinct_png(1))
    (item,) = tray.items()
    spin, slider = item.strengthSpin, item.strengthSlider
    assert (spin.minimum(), spin.maximum(), spin.singleStep(), spin.decimals()) == (-2.0, 2.0, 0.05, 2)
    assert (slider.minimum(), slider.maximum()) == (-200, 200)
    assert spin.value() == 0.7 and slider.value() == 70 and spin.text() == "+0.70"
    seen: list[float] = []
    item.strengthChanged.connect(seen.append)
    spin.setValue(1.25)
    assert slider.value() == 125 and seen == [1.25]
    slider.setValue(-50)
    assert spin.value() == -0.5 and seen == [1.25, -0.5] and spin.text() == "−0.50"  # a true minus
    assert item.direction() == "away"
    spin.stepUp()
    assert slider.value() == -45
    # Typed with a hyphen or with a minus, the same strength.
    for typed in ("-1.25", "−1.25"):
        spin.lineEdit().selectAll()
        spin.lineEdit().insert(typed)
        spin.interpretText()
        assert spin.value() == -1.25 and slider.value() == -125 and spin.text() == "−1.25"
    item.setStrength(0)
    assert item.direction() == "neutral" and slider.value() == 0 and spin.text() == "0.00"
    item.setStrength(9)
    assert item.strength() == 2.0 and spin.value() == 2.0
    assert tray.widget.references()[0].strength == 2.0


def test_a_strength_typed_where_the_system_writes_a_decimal_comma_is_the_strength_typed(tray: Tray) -> None:
    """Read the German way, "+0.70" as shown was no number (an edit of it was refused),
    "0.35" typed became 0.00 (the reference silently without effect) and "-1.25" −1.00."""
    before = QLocale()
    QLocale.setDefault(QLocale(QLocale.Language.German, QLocale.Country.Germany))
    try:
        tray.add(distinct_png(1))
        (item,) = tray.items()
        spin = item.strengthSpin
        assert spin.text() == "+0.70"
        for typed, wanted in (("0.35", 0.35), ("0,4", 0.4), ("-1.25", -1.25), ("-1,5", -1.5)):
            spin.lineEdit().selectAll()
            tray.qtbot.keyClicks(spin.lineEdit(), typed)
            tray.qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Return)
            assert (spin.value(), item.strength()) == (wanted, wanted), typed
        spin.lineEdit().end(False)  # the −1.50 shown, its last digit edited: −1.55
        tray.qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Backspace)
        tray.qtbot.keyClicks(spin.lineEdit(), "5")
        tray.qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Return)
        assert spin.value() == -1.55 and spin.text() == "−1.55"
    finally:
        QLocale.setDefault(before)


def test_direction_colours_differ(tray: Tray) -> None:
    tray.add(distinct_png(1))
    (item,) = tray.items()
    item.setStrength(1.0)
    toward = item.directionColor()
    item.setStrength(-1.0)
    away = item.directionColor()
    item.setStrength(0)
    neutral = item.directionColor()
    assert toward.red() > toward.blue() and away.blue() > away.red()
    assert neutral.red() == neutral.green() == neutral.blue()
    assert not item.grab().isNull()


def test_double_click_resets_strength(tray: Tray) -> None:
    tray.add(distinct_png(1), -1.5)
    (item,) = tray.items()
    assert item.strength() == -1.5
    tray.qtbot.mouseDClick(item.strengthSlider, Qt.MouseButton.LeftButton)
    assert item.strength() == 0.7 and item.strengthSpin.value() == 0.7
    item.setStrength(2)
    tray.qtbot.mouseDClick(item.thumbnailLabel, Qt.MouseButton.LeftButton)
    assert item.strength() == 0.7


def test_a_reference_removed_while_its_strength_is_typed_comes_back_with_it(tray: Tray) -> None:
    tray.add(distinct_png(0))
    (item,) = tray.items()
    item.strengthSpin.lineEdit().setText("1.50")  # typed, not yet taken (no Enter, no focus lost)
    with tray.qtbot.waitSignal(tray.widget.removed) as removed:
        item.removeButton.click()
    tray.widget.put_back(*removed.args)  # Undo
    assert [r.strength for r in tray.widget.model] == [1.5]


def test_remove(tray: Tray) -> None:
    for i in range(3):
        tray.add(distinct_png(i))
    middle = tray.items()[1]
    with tray.qtbot.waitSignal(tray.widget.referencesChanged):
        tray.qtbot.mouseClick(middle.removeButton, Qt.MouseButton.LeftButton)
    assert tray.widget.count() == 2 and middle not in tray.items()


def test_reorder_with_buttons_and_by_dragging(tray: Tray) -> None:
    for i in range(3):
        tray.add(distinct_png(i), i / 10)
    a, b, c = tray.items()
    assert not a.moveLeftButton.isEnabled() and not c.moveRightButton.isEnabled()
    tray.qtbot.mouseClick(a.moveRightButton, Qt.MouseButton.LeftButton)
    assert tray.items() == [b, a, c]
    tray.qtbot.mouseClick(c.moveLeftButton, Qt.MouseButton.LeftButton)
    assert tray.items() == [b, c, a]
    assert [r.strength for r in tray.widget.references()] == [0.1, 0.2, 0.0]

    # Drag the last item to the front: drop it left of the first item's centre.
    mime = a.mime_data()
    assert mime.hasFormat(REFERENCE_MIME)
    first_left = b.mapTo(tray.widget, QPoint(2, 2)).x()
    assert tray.drop(mime, x=first_left)
    assert tray.items() == [a, b, c]
    # ...and the first to the end.
    last_right = c.mapTo(tray.widget, QPoint(c.width() - 2, 2)).x()
    assert tray.drop(a.mime_data(), x=last_right)
    assert tray.items() == [b, c, a]
    assert tray.widget.count() == 3


def focused_tray(tray: Tray, strengths: list[float]) -> list[ReferenceItem]:
    for i, strength in enumerate(strengths):
        tray.add(distinct_png(i), strength)
    tray.widget.activateWindow()
    tray.qtbot.waitUntil(lambda: QApplication.activeWindow() is tray.widget.window())
    return tray.items()


def press_space(tray: Tray, button: QWidget) -> None:
    button.setFocus()
    tray.qtbot.waitUntil(button.hasFocus)
    tray.qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Space)


def test_delete_removes_the_reference_whose_control_has_the_focus_but_not_while_typing(tray: Tray) -> None:
    """Without a mouse, a reference could be removed only by tabbing to its ✕ and pressing
    Space; Delete, which removes images in the gallery, did nothing here."""
    a, b = focused_tray(tray, [0.5, -0.5])
    b.strengthSpin.lineEdit().setFocus()
    tray.qtbot.waitUntil(b.strengthSpin.lineEdit().hasFocus)
    tray.qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Home)
    tray.qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Delete)  # edits the strength's text: "-0.50" to "0.50"
    assert tray.widget.count() == 2 and [r.strength for r in tray.widget.references()] == [0.5, 0.5]
    a.strengthSlider.setFocus()
    tray.qtbot.waitUntil(a.strengthSlider.hasFocus)
    tray.qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Delete)
    tray.qtbot.waitUntil(lambda: tray.widget.count() == 1)
    assert [r.sha256 for r in tray.widget.model] == [b.sha256]


def test_a_card_moved_from_the_keyboard_keeps_the_focus_on_its_arrows_never_on_its_remove_button(tray: Tray) -> None:
    a, b, c = focused_tray(tray, [0.7, -1.3, 1.9])
    press_space(tray, b.moveRightButton)  # to the end: ▶ leads nowhere now
    assert tray.items() == [a, c, b]
    assert QApplication.focusWidget() is b.moveLeftButton  # the ✕ had it: a second Space removed the card
    tray.qtbot.keyClick(b.moveLeftButton, Qt.Key.Key_Space)
    assert tray.items() == [a, b, c] and b.moveLeftButton.hasFocus()  # ◀ still leads somewhere: kept
    press_space(tray, b.moveLeftButton)
    assert tray.items() == [b, a, c] and b.moveRightButton.hasFocus()
    assert [r.strength for r in tray.widget.references()] == [-1.3, 0.7, 1.9]


def test_a_card_removed_from_the_keyboard_hands_the_focus_to_the_next_cards_strength_then_to_add(tray: Tray) -> None:
    a, b, c = focused_tray(tray, [0.7, -1.3, 1.9])
    removed: list[tuple[int, object]] = []
    tray.widget.removed.connect(lambda index, ref: removed.append((index, ref)))
    press_space(tray, b.removeButton)
    assert tray.items() == [a, c]
    assert QApplication.focusWidget() is c.strengthSpin  # not the aspect ratios at the window's top
    press_space(tray, c.removeButton)
    assert QApplication.focusWidget() is a.strengthSpin  # the last one gone: the one before it
    press_space(tray, a.removeButton)
    assert tray.widget.count() == 0 and QApplication.focusWidget() is tray.widget.addButton
    assert [index for index, _ref in removed] == [1, 1, 0]


def test_a_removed_reference_is_put_back_at_its_place_with_its_strength(tray: Tray) -> None:
    focused_tray(tray, [0.7, -1.3, 1.9])
    removed: list[tuple[int, Any]] = []
    tray.widget.removed.connect(lambda index, ref: removed.append((index, ref)))
    before = tray.widget.references()
    tray.qtbot.mouseClick(tray.items()[1].removeButton, Qt.MouseButton.LeftButton)
    assert [r.strength for r in tray.widget.references()] == [0.7, 1.9]
    tray.widget.put_back(*removed[0])
    assert tray.widget.references() == before
    assert [card.strength() for card in tray.items()] == [0.7, -1.3, 1.9]
    tray.widget.put_back(*removed[0])  # twice (Undo pressed again): once in the tray
    assert tray.widget.references() == before and tray.messages == []


def test_a_removed_reference_that_no_longer_fits_is_said_in_one_sentence(tray: Tray) -> None:
    focused_tray(tray, [0.5])
    removed: list[tuple[int, Any]] = []
    tray.widget.removed.connect(lambda index, ref: removed.append((index, ref)))
    tray.qtbot.mouseClick(tray.items()[0].removeButton, Qt.MouseButton.LeftButton)
    for i in range(1, spec.MAX_REFERENCES + 1):
        tray.add(distinct_png(i))
    tray.widget.put_back(*removed[0])
    assert tray.widget.count() == spec.MAX_REFERENCES
    assert len(tray.messages) == 1 and tray.messages[0].count(".") == 1


def test_tab_goes_from_add_through_every_card_in_the_trays_order_then_on(tray: Tray) -> None:
    after = QWidget(tray.widget)  # what follows the tray in the window (the gallery's search)
    after.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    a, b = focused_tray(tray, [0.5, -0.5])
    tray.widget.set_tab_successor(after)
    tray.add(distinct_png(2), 1.0)  # a card made later joins the chain too
    c = tray.items()[2]
    tray.widget.move_reference(2, 0)  # and the chain follows the tray's order
    order = [tray.widget.addButton]
    while len(order) < 30 and order[-1] is not after:
        order.append(order[-1].nextInFocusChain())
        while not (order[-1].focusPolicy() & Qt.FocusPolicy.TabFocus) or not order[-1].isEnabled():
            order[-1] = order[-1].nextInFocusChain()
    spins = [w for w in order if w in (a.strengthSpin, b.strengthSpin, c.strengthSpin)]
    assert spins == [c.strengthSpin, a.strengthSpin, b.strengthSpin]
    assert order[-1] is after and order.index(c.removeButton) < order.index(c.strengthSpin)


def test_gallery_drop_uses_the_resolver(make_tray: Callable[..., Tray], tmp_path: Path) -> None:
    files = {i: write(tmp_path, f"lib{i}.png", distinct_png(i)) for i in (4, 5)}
    asked: list[list[int]] = []

    def resolve(ids: list[int]) -> list[Path]:
        asked.append(ids)
        return [files[i] for i in ids if i in files]

    tray = make_tray(resolve_library_ids=resolve)
    mime = QMimeData()
    mime.setData(LIBRARY_IDS_MIME, QByteArray(encode_library_ids([5, 4])))
    mime.setUrls([QUrl.fromLocalFile(str(files[i])) for i in (5, 4)])  # the same files, as the gallery writes
    assert tray.drop(mime)
    assert asked == [[5, 4]]
    assert [Path(r.image).read_bytes() for r in tray.widget.references()] == [
        files[5].read_bytes(),
        files[4].read_bytes(),
    ]


def test_a_gallery_drag_whose_ids_name_other_files_takes_the_files_it_names(
    make_tray: Callable[..., Tray], tmp_path: Path
) -> None:
    """Another window's library (or an id deleted and given again) has other images by the
    same ids: the drag's files are the ones dragged."""
    ours = {1: write(tmp_path, "ours1.png", distinct_png(1))}
    theirs = [write(tmp_path, "theirs1.png", distinct_png(2)), write(tmp_path, "theirs2.png", distinct_png(3))]
    tray = make_tray(resolve_library_ids=lambda ids: [ours[i] for i in ids if i in ours])
    mime = QMimeData()
    mime.setData(LIBRARY_IDS_MIME, QByteArray(encode_library_ids([1, 2])))
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in theirs])
    assert tray.drop(mime)
    assert [Path(r.image).read_bytes() for r in tray.widget.references()] == [p.read_bytes() for p in theirs]


def test_a_gallery_copy_some_of_whose_images_were_deleted_since_says_how_many(
    make_tray: Callable[..., Tray], tmp_path: Path
) -> None:
    """Three copied, one deleted before the paste: two were added and the third left out
    without a word."""
    files = {i: write(tmp_path, f"lib{i}.png", distinct_png(i)) for i in (1, 2, 3)}
    tray = make_tray(resolve_library_ids=lambda ids: [files[i] for i in ids if files[i].exists()])
    mime = QMimeData()
    mime.setData(LIBRARY_IDS_MIME, QByteArray(encode_library_ids([1, 2, 3])))
    mime.setUrls([QUrl.fromLocalFile(str(files[i])) for i in (1, 2, 3)])
    files[2].unlink()  # to the trash, after the copy
    assert tray.drop(mime)
    assert [Path(r.image).read_bytes() for r in tray.widget.references()] == [distinct_png(1), distinct_png(3)]
    assert tray.messages[-1] == "1 of the 3 gallery images was deleted since it was copied, so it was not added."


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (errno.EACCES, "{folder} cannot be written to; check its permissions or the disk it is on"),
        (errno.ENOSPC, "the disk holding {folder} is full; free some space"),
    ],
)
def test_a_references_folder_that_takes_no_copy_is_named_with_what_to_do(
    tray: Tray, monkeypatch: pytest.MonkeyPatch, error: int, said: str
) -> None:
    """It said "An image could not be added (PermissionError); try again.": no folder named,
    and trying again cannot help."""
    from krea_desktop.ui.references import sources

    def refused(_ref: object, folder: Path) -> Path:
        raise OSError(error, os.strerror(error), str(folder))

    monkeypatch.setattr(sources, "store_copy", refused)
    tray.widget.add_reference(write(tray.folder.parent, "fox.png", distinct_png(1)))
    tray.settle()
    assert tray.widget.count() == 0
    assert tray.messages[-1] == f"The image was not added: {said.format(folder=tray.folder)}."


def test_a_file_where_the_references_folder_goes_is_named_not_file_exists(tray: Tray) -> None:
    """It said "… could not be written (File exists)" of a references folder that was a file."""
    if tray.folder.is_dir():
        tray.folder.rmdir()
    tray.folder.write_text("in the way")
    tray.widget.add_reference(write(tray.folder.parent, "fox.png", distinct_png(1)))
    tray.settle()
    assert tray.widget.count() == 0
    assert tray.messages[-1] == (
        f"The image was not added: {tray.folder} is a file where a folder should be; move that file away."
    )
    assert tray.folder.read_text() == "in the way"


def test_files_in_the_tray_dropped_again_after_a_restart_with_a_new_one_make_room_for_it(
    make_tray: Callable[..., Tray], tmp_path: Path
) -> None:
    """Nine held: the same nine files and a new one dropped together were known after a
    restart no more, and were refused whole, "Only 1 more reference fits…"."""
    given = tmp_path / "given"
    given.mkdir()
    files = [write(given, f"r{i}.png", distinct_png(i)) for i in range(9)]
    first = make_tray()
    assert first.drop_files(*files)
    first.settle()
    first.widget.save_state()
    second = make_tray()
    second.widget.restore_state()
    second.settle()
    assert second.widget.count() == 9
    assert second.drop_files(*files, write(given, "new.png", distinct_png(9)))
    second.settle()
    assert second.widget.count() == 10
    assert second.messages[-1] == "“r0.png” is already in the tray, as reference 1 (and 8 more items refused)."


def test_gallery_drop_without_resolver_is_announced(tray: Tray) -> None:
    mime = QMimeData()
    mime.setData(LIBRARY_IDS_MIME, QByteArray(encode_library_ids([7])))
    with tray.qtbot.waitSignal(tray.widget.libraryIdsDropped) as signal:
        tray.drop(mime)
    assert signal.args == [[7]]


def test_unrelated_drags_are_not_accepted(tray: Tray) -> None:
    mime = QMimeData()
    mime.setText("hello world")
    assert not tray.drop(mime)


def test_state_survives_a_restart(make_tray: Callable[..., Tray]) -> None:
    first = make_tray()
    for i, strength in enumerate((0.7, -1.2, 2.0)):
        first.add(distinct_png(i), strength)
    first.widget.move_reference(2, 0)
    expected = first.widget.references()
    first.widget.save_state()
    state = json.loads(first.widget.state_file.read_text())
    assert [e["strength"] for e in state["references"]] == [2.0, 0.7, -1.2]
    assert not list(first.folder.glob("*.tmp"))

    second = make_tray()
    assert second.widget.restore_state()
    second.settle()
    assert second.widget.references() == expected
    assert second.messages == []


def test_restore_skips_missing_copies(make_tray: Callable[..., Tray]) -> None:
    first = make_tray()
    first.add(distinct_png(1), 0.3)
    first.add(distinct_png(2), -0.3)
    first.widget.save_state()
    Path(first.widget.references()[0].image).unlink()
    second = make_tray()
    second.widget.restore_state()
    second.settle()
    assert [r.strength for r in second.widget.references()] == [-0.3]
    assert "1 reference from the last session was missing" in second.messages[-1]


def test_restore_without_or_with_a_broken_state(make_tray: Callable[..., Tray]) -> None:
    tray = make_tray()
    assert not tray.widget.restore_state()
    tray.folder.mkdir(parents=True, exist_ok=True)
    tray.widget.state_file.write_text("{not json")
    assert not tray.widget.restore_state()
    assert tray.widget.count() == 0 and "could not be read" in tray.messages[-1]


def test_autosave(make_tray: Callable[..., Tray]) -> None:
    tray = make_tray(autosave=True)
    tray.add(distinct_png(1))
    state_file = tray.widget.state_file
    tray.qtbot.waitUntil(state_file.exists, timeout=3000)
    tray.items()[0].setStrength(-0.25)
    tray.qtbot.waitUntil(lambda: json.loads(state_file.read_text())["references"][0]["strength"] == -0.25, timeout=3000)


def test_an_edit_is_saved_while_a_reference_still_downloads(
    make_tray: Callable[..., Tray], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A slow download must not hold the tray's edits back from the disk: a crash meanwhile
    # would lose them. The image on its way was never in the tray, so it is not saved.
    for var in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    tray = make_tray(autosave=True)
    tray.add(distinct_png(1))
    state_file = tray.widget.state_file
    tray.qtbot.waitUntil(state_file.exists, timeout=3000)
    with serving({"/slow.png": Route(image_bytes((30, 20)), delay=3.0)}) as web:
        mime = QMimeData()
        mime.setUrls([QUrl(f"{web.url}/slow.png")])
        for kind in (QDragEnterEvent, QDropEvent):  # dropped, not waited for (as Tray.drop does)
            QApplication.sendEvent(tray.widget, drag_event(kind, 10, 20, mime, Qt.DropAction.CopyAction))
        assert tray.widget.isBusy()
        tray.items()[0].setStrength(1.5)

        def saved() -> list[float]:
            return [ref["strength"] for ref in json.loads(state_file.read_text())["references"]]

        tray.qtbot.waitUntil(lambda: saved() == [1.5], timeout=2000)
        assert tray.widget.isBusy()  # still downloading when the edit reached the disk
        tray.settle()
    tray.qtbot.waitUntil(lambda: len(saved()) == 2, timeout=3000)


def test_a_slow_download_holds_up_only_the_images_given_with_it(
    make_tray: Callable[..., Tray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An address pasted from a slow host held every file added after it (and Generate)
    # until the download ended or gave up, 20 seconds later.
    for var in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    tray = make_tray()
    assert tray.widget.downloading_from() is None
    with serving({"/slow.png": Route(image_bytes((30, 20)), delay=2.0)}) as web:
        mime = QMimeData()
        mime.setUrls([QUrl(f"{web.url}/slow.png")])
        assert tray.widget.handle_mime(mime)
        assert tray.widget.downloading_from() == "127.0.0.1"
        local = write(tmp_path, "local.png", distinct_png(3))
        assert tray.widget.add_reference(local, -0.5)
        tray.qtbot.waitUntil(lambda: tray.widget.count() == 1, timeout=1500)
        assert tray.widget.isBusy() and tray.widget.downloading_from() == "127.0.0.1"
        assert [r.strength for r in tray.widget.references()] == [-0.5]
        tray.settle()
    assert tray.widget.count() == 2 and tray.widget.downloading_from() is None
    assert [Path(r.source).name for r in tray.widget.model] == ["local.png", "slow.png"]
    assert tray.messages == []


def test_a_pasted_data_uri_still_decoding_is_not_named_as_a_host(tmp_path: Path) -> None:
    import base64

    from krea_desktop.models.references import ReferenceSet
    from krea_desktop.ui.references.loading import ReferenceLoader
    from krea_desktop.ui.references.sources import Source

    class Held:  # jobs that have not ended yet
        def __init__(self) -> None:
            self.jobs: list[Any] = []

        def submit(self, work: Any, done: Any, failed: Any = None) -> None:
            self.jobs.append((work, done, failed))

    loader = ReferenceLoader(ReferenceSet(tmp_path), tmp_path, runner=Held())
    loader._downloads = Held()  # as a window's loader has: a runner of their own
    uri = "data:image/png;base64," + base64.b64encode(distinct_png(1)).decode()
    assert loader.start([Source("url", uri)])
    assert loader.is_busy() and loader.downloading_from() is None  # not the whole data URI
    assert loader.start([Source("url", "https://images.example/a.png")])
    assert loader.downloading_from() == "images.example"


def in_sight(tray: Tray, item: ReferenceItem) -> bool:
    scroll = tray.widget.findChild(QScrollArea)
    assert scroll is not None
    return scroll.viewport().rect().contains(QRect(item.mapTo(scroll.viewport(), QPoint(0, 0)), item.size()))


def test_the_cards_wrap_into_rows_that_fill_the_tray_in_order(make_tray: Callable[..., Tray]) -> None:
    t = make_tray()
    t.widget.resize(440, 900)
    for i in range(5):
        t.add(distinct_png(i))
    items = t.items()
    t.qtbot.waitUntil(lambda: all(in_sight(t, item) for item in items))  # all five, no scrolling
    # Each card at its own height once the rows are laid out (none stretched to fill the tray).
    t.qtbot.waitUntil(lambda: all(item.height() == item.sizeHint().height() for item in items))
    places = [item.mapTo(t.widget, QPoint(0, 0)) for item in items]
    per_row = [sum(p.y() == y for p in places) for y in sorted({p.y() for p in places})]
    assert per_row == [2, 2, 1]  # two cards to a row at this width
    # Reading order: left to right, then the next row.
    assert places == sorted(places, key=lambda p: (p.y(), p.x()))
    assert t.widget.sizeHint().height() >= items[-1].mapTo(t.widget, QPoint(0, items[-1].height())).y()
    t.widget.resize(900, 900)  # wider: one row holds them all
    t.qtbot.waitUntil(lambda: len({item.mapTo(t.widget, QPoint(0, 0)).y() for item in items}) == 1)


def test_a_new_reference_comes_into_sight_in_a_short_tray(make_tray: Callable[..., Tray]) -> None:
    t = make_tray()
    t.widget.resize(420, 260)
    for i in range(5):
        t.add(distinct_png(i))
        last = t.items()[-1]
        t.qtbot.waitUntil(lambda last=last: in_sight(t, last))
    assert not in_sight(t, t.items()[0])  # five cards do not fit: the rows scrolled
    first = t.items()[0]
    first.moveRightButton.click()  # moved along, and kept in sight
    t.qtbot.waitUntil(lambda: in_sight(t, first))


def test_a_card_dropped_on_another_row_goes_where_it_was_dropped(make_tray: Callable[..., Tray]) -> None:
    t = make_tray()
    t.widget.resize(440, 900)
    for i in range(4):
        t.add(distinct_png(i), i / 10)
    a, b, c, d = t.items()
    t.qtbot.waitUntil(lambda: c.mapTo(t.widget, QPoint(0, 0)).y() > a.mapTo(t.widget, QPoint(0, 0)).y())
    # Left of the middle of the first card of the second row: before it.
    spot = c.mapTo(t.widget, QPoint(4, c.height() // 2))
    assert t.drop(a.mime_data(), x=spot.x(), y=spot.y())
    assert t.items() == [b, a, c, d]


def test_a_card_dragged_out_of_the_window_offers_its_file_to_copy_never_to_move(
    tray: Tray, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import krea_desktop.ui.references.card as card_module

    desktop = tmp_path / "desktop"
    desktop.mkdir()
    offered: list[tuple[Qt.DropAction, Qt.DropAction]] = []

    class FileManager:  # takes a Move when one is offered (Nautilus, Explorer on one disk)
        def __init__(self, _source: Any) -> None:
            self.mime: QMimeData | None = None

        def setMimeData(self, mime: QMimeData) -> None:
            self.mime = mime

        def setPixmap(self, _pixmap: Any) -> None:
            pass

        def exec(self, actions: Qt.DropAction, default: Qt.DropAction) -> Qt.DropAction:
            offered.append((actions, default))
            assert self.mime is not None
            for url in self.mime.urls():
                source = Path(url.toLocalFile())
                if actions & Qt.DropAction.MoveAction:
                    source.rename(desktop / source.name)
                else:
                    (desktop / source.name).write_bytes(source.read_bytes())
            return Qt.DropAction.MoveAction if actions & Qt.DropAction.MoveAction else Qt.DropAction.CopyAction

    monkeypatch.setattr(card_module, "QDrag", FileManager)
    tray.add(distinct_png(0), 1.5)
    (card,) = tray.items()
    kept = card.path
    start = card.thumbnailLabel.mapTo(card, card.thumbnailLabel.rect().center())
    tray.qtbot.mousePress(card, Qt.MouseButton.LeftButton, pos=start)
    tray.qtbot.mouseMove(card, start + QPoint(QApplication.startDragDistance() + 10, 0))
    assert offered == [(Qt.DropAction.CopyAction, Qt.DropAction.CopyAction)]
    assert kept.is_file()  # the tray's copy stays where every image made with it finds it
    assert (desktop / kept.name).read_bytes() == kept.read_bytes()
    assert [r.strength for r in tray.widget.references()] == [1.5]


def test_a_card_dragged_to_the_edge_of_the_rows_scrolls_them(make_tray: Callable[..., Tray]) -> None:
    t = make_tray()
    t.widget.resize(420, 260)
    for i in range(5):
        t.add(distinct_png(i))
    bar = t.widget.findChild(QScrollArea).verticalScrollBar()  # type: ignore[union-attr]
    t.qtbot.waitUntil(lambda: bar.value() > 0)  # at the newest card, the first rows out of sight
    mime = t.items()[-1].mime_data()
    top = bar.value()
    QApplication.sendEvent(t.widget, drag_event(QDragEnterEvent, 200, 130, mime, Qt.DropAction.CopyAction))
    for _ in range(3):  # moving along the top edge
        QApplication.sendEvent(t.widget, drag_event(QDragMoveEvent, 200, 8, mime, Qt.DropAction.CopyAction))
    assert bar.value() < top
    middle = bar.value()
    QApplication.sendEvent(t.widget, drag_event(QDragMoveEvent, 200, 130, mime, Qt.DropAction.CopyAction))
    assert bar.value() == middle  # away from the edges nothing moves
    QApplication.sendEvent(t.widget, drag_event(QDragMoveEvent, 200, 252, mime, Qt.DropAction.CopyAction))
    assert bar.value() > middle
    leave(t.widget)


def test_the_wheel_scrolls_the_rows_and_changes_a_strength_only_once_its_control_has_the_focus(
    make_tray: Callable[..., Tray],
) -> None:
    t = make_tray()
    t.widget.resize(420, 260)
    for i in range(5):
        t.add(distinct_png(i), 0.5)
    bar = t.widget.findChild(QScrollArea).verticalScrollBar()  # type: ignore[union-attr]
    t.qtbot.waitUntil(lambda: bar.value() > 0 and in_sight(t, t.items()[-1]))  # at the newest card

    viewport = t.widget.findChild(QScrollArea).viewport()  # type: ignore[union-attr]
    wheel(viewport)  # over the cards: one notch up moves the rows back
    assert 0 <= bar.value() < bar.maximum()
    card = next(  # one whose strength controls are in sight
        item
        for item in t.items()
        if viewport.rect().contains(item.strengthSpin.mapTo(viewport, item.strengthSpin.rect().center()))
    )
    before = bar.value()
    wheel(card.strengthSlider)  # over a slider nobody clicked: the rows move, the strength stays
    wheel(card.strengthSpin)
    assert bar.value() < before or bar.value() == 0
    assert [item.strength() for item in t.items()] == [0.5] * 5

    card.strengthSpin.setFocus()  # once clicked or tabbed to, the wheel is the control's
    t.qtbot.waitUntil(card.strengthSpin.hasFocus)
    scrolled = bar.value()
    wheel(card.strengthSpin)
    assert card.strength() == pytest.approx(0.55)
    assert bar.value() == scrolled


def test_refusals_are_said_in_the_order_the_files_were_given_not_as_their_loads_end(
    tray: Tray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from krea_desktop.ui.references import loading as loading_module

    load = loading_module.load_source

    def slow_first(source: Any, *args: Any) -> Any:
        if Path(str(source.value)).name == "first.png":
            import time

            time.sleep(0.3)  # the first file given is the last to be read
        return load(source, *args)

    monkeypatch.setattr(loading_module, "load_source", slow_first)
    first = write(tmp_path, "first.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    second = write(tmp_path, "second.png", b"\x89PNG\r\n\x1a\n" + b"\1" * 40)
    assert tray.drop_files(first, second)
    assert len(tray.messages) == 1
    assert tray.messages[0].startswith("“first.png”") and "(and 1 more item refused)" in tray.messages[0]


def test_a_kept_copy_brought_back_has_the_name_it_was_brought_in_by_in_this_session_and_the_next(
    make_tray: Callable[..., Tray], tmp_path: Path
) -> None:
    # "Use all parameters" brings a result's references back from their kept copies, named
    # by content hash: the cards, their tooltips and the sweep's axes read "ae7c9d9b….png".
    first = make_tray()
    fox = write(tmp_path, "fox.png", distinct_png(1))
    first.widget.add_reference(fox, 0.5)
    first.settle()
    kept = Path(first.widget.references()[0].image)
    assert kept.parent == first.folder and kept.name != "fox.png"
    first.widget.clear()
    first.widget.add_reference(kept, -1.0)
    first.settle()
    assert first.items()[0].source == "fox.png"
    first.widget.clear()
    first.widget.save_state()

    second = make_tray()
    second.widget.restore_state()
    second.settle()
    assert second.widget.count() == 0
    second.widget.add_reference(kept, 1.0)
    second.settle()
    assert second.items()[0].source == "fox.png"
    card = second.items()[0]
    assert card.accessibleName() == "Reference 1 of 1: fox.png"
    # Its controls carry its place and its name: with several cards, a screen reader tells
    # them apart, two pasted images ("pasted image" both) among them.
    assert card.strengthSlider.accessibleName() == card.strengthSpin.accessibleName()
    assert card.strengthSpin.accessibleName() == "Strength of reference 1 of 1: fox.png"
    assert card.removeButton.accessibleName() == "Remove reference 1 of 1: fox.png from the references"
    assert card.moveLeftButton.accessibleName() == "Move reference 1 of 1: fox.png one place to the left"
    assert card.sweepButton.accessibleName() == "Sweep the strength of reference 1 of 1: fox.png"
    second.add(distinct_png(7))
    second.add(distinct_png(8))
    names = [c.accessibleName() for c in second.items()]
    assert names[0] == "Reference 1 of 3: fox.png" and len(set(names)) == 3
    # Every button of every card is told apart (◀, ▶ and ▦ were named alike on each card).
    buttons = [b.accessibleName() for c in second.items() for b in c.findChildren(QToolButton)]
    assert len(buttons) == 4 * 3 and len(set(buttons)) == len(buttons), buttons
    second.widget.move_reference(0, 2)
    second.settle()
    assert second.items()[2].accessibleName() == "Reference 3 of 3: fox.png"


def test_undo_of_a_removal_leaves_the_place_of_an_image_still_loading_to_it(
    tray: Tray, monkeypatch: pytest.MonkeyPatch
) -> None:
    from krea_desktop.ui.references import loading as loading_module

    for i in range(spec.MAX_REFERENCES):
        tray.add(distinct_png(i))
    removed: list[tuple[int, Any]] = []
    tray.widget.removed.connect(lambda index, ref: removed.append((index, ref)))
    tray.qtbot.mouseClick(tray.items()[0].removeButton, Qt.MouseButton.LeftButton)
    load = loading_module.load_source

    def slow(source: Any, *args: Any) -> Any:
        import time

        time.sleep(0.3)
        return load(source, *args)

    monkeypatch.setattr(loading_module, "load_source", slow)
    assert tray.widget.add_reference(distinct_png(50))  # takes the free place, still loading
    tray.widget.put_back(*removed[0])
    assert tray.messages == [not_put_back([removed[0][1]])]  # the place is the loading image's
    tray.settle()
    assert tray.widget.count() == spec.MAX_REFERENCES
    assert len(tray.messages) == 1  # the Undo's refusal; the image loading was added


def test_a_cards_control_reached_with_tab_is_scrolled_into_sight(tray: Tray, tmp_path: Path) -> None:
    """Tab from Add, or Shift+Tab from what follows the tray, landed on a card scrolled
    out of sight: the scroll area follows only a Tab begun inside it."""
    tray.widget.resize(420, 240)  # one card a row: most are out of sight
    paths = [write(tmp_path, f"{i}.png", distinct_png(i)) for i in range(8)]
    assert tray.drop_files(*paths)
    tray.widget.activateWindow()
    tray.qtbot.waitUntil(lambda: QApplication.activeWindow() is tray.widget)
    cards = tray.widget.findChildren(ReferenceItem)
    assert len(cards) == 8
    scroll = tray.widget.findChild(QScrollArea)
    assert scroll is not None
    for card, scrolled_to in ((cards[0], "bottom"), (cards[-1], "top")):
        bar = scroll.verticalScrollBar()
        bar.setValue(bar.maximum() if scrolled_to == "bottom" else 0)
        tray.qtbot.waitUntil(lambda: card.visibleRegion().isEmpty())  # noqa: B023
        card.strengthSlider.setFocus(Qt.FocusReason.TabFocusReason)
        tray.qtbot.waitUntil(lambda: not card.visibleRegion().isEmpty())  # noqa: B023
        assert card.visibleRegion().boundingRect().height() == card.height()  # the whole card
    # A click, or the window coming back to the front, leaves the rows where they are: the
    # card pressed would move under the pointer.
    bar = scroll.verticalScrollBar()
    bar.setValue(bar.maximum())
    for reason in (Qt.FocusReason.MouseFocusReason, Qt.FocusReason.ActiveWindowFocusReason):
        tray.widget.addButton.setFocus()
        tray.qtbot.waitUntil(tray.widget.addButton.hasFocus)
        cards[0].moveRightButton.setFocus(reason)
        tray.qtbot.waitUntil(cards[0].moveRightButton.hasFocus)
        tray.qtbot.wait(20)
        assert bar.value() == bar.maximum(), reason
    tray.widget.addButton.setFocus()
    cards[0].moveRightButton.setFocus(Qt.FocusReason.BacktabFocusReason)  # and a button, by Tab
    tray.qtbot.waitUntil(lambda: cards[0].visibleRegion().boundingRect().height() == cards[0].height())


def test_a_strength_slider_says_its_value_as_the_card_shows_it_and_shows_its_focus(
    qtbot: QtBot, tmp_path: Path
) -> None:
    """A screen reader read the slider's value in hundredths ("-200" for −2.00), and the
    focused slider was marked only by a faint grey outline (its highlight is the groove's)."""
    from PySide6.QtGui import QColor

    from krea_desktop.ui import theme

    image = QImage(16, 16, QImage.Format.Format_RGB32)
    image.fill(QColor(90, 90, 90))
    host = QWidget()
    qtbot.addWidget(host)
    card = ReferenceItem(tmp_path / "ref.png", "0" * 64, image, -2.0, parent=host)
    other = QWidget(host)
    other.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    other.move(0, 300)
    host.resize(300, 320)
    host.show()
    host.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is host)
    slider = card.strengthSlider
    assert slider.accessibleDescription() == "Strength −2.00, away"
    card.setStrength(0.7)
    assert slider.accessibleDescription() == "Strength +0.70, toward"
    qtbot.keyClick(slider, Qt.Key.Key_Left)  # as the keys move it
    assert slider.accessibleDescription() == "Strength +0.65, toward"

    def accent_pixels() -> int:
        shot = slider.grab().toImage()
        return sum(
            1
            for x in range(shot.width())
            for y in range(shot.height())
            if abs(shot.pixelColor(x, y).hue() - theme.ACCENT.hue()) < 8 and shot.pixelColor(x, y).saturation() > 120
        )

    other.setFocus()
    qtbot.waitUntil(lambda: not slider.hasFocus())
    unfocused = accent_pixels()
    slider.setFocus()
    qtbot.waitUntil(slider.hasFocus)
    assert accent_pixels() > unfocused + 2 * slider.width()  # a ring around it

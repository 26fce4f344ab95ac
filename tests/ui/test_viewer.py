"""The viewer: full-size images decoded off the GUI thread, zoom and pan, stepping through
the gallery, the metadata panel, and files that cannot be read."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, QRect, QSize, Qt
from PySide6.QtGui import QColor, QImage, QWheelEvent
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from krea_desktop.library.store import Library
from krea_desktop.ui import theme
from krea_desktop.ui.background import ImmediateRunner, shared_pool
from krea_desktop.ui.gallery.model import GalleryModel
from krea_desktop.ui.viewer.canvas import ImageCanvas, ImageUnreadable, decode_image_file
from krea_desktop.ui.viewer.compare import CompareDialog
from krea_desktop.ui.viewer.viewer import ImageViewer
from tests.ui.test_gallery import T0, make_image


@pytest.fixture
def model(qapp: QApplication, tmp_path: Path) -> Iterator[GalleryModel]:
    refs = tmp_path / "refs"
    refs.mkdir()
    Image.new("RGB", (30, 30), (255, 0, 0)).save(refs / "toward.png")
    lib = Library(tmp_path / "lib")
    lib.save(make_image("oldest, wide", "16:9", seed=1), created_at=T0)
    lib.save(
        make_image(
            "middle, with references",
            "4:5",
            seed=2,
            creativity="high",
            references=[
                {"image": "u1", "strength": 0.7, "source": str(refs / "toward.png")},
                {"image": "u2", "strength": -1.25, "source": str(refs / "gone.png")},
            ],
        ),
        created_at=T0 + timedelta(minutes=1),
    )
    lib.save(make_image("newest", seed=3), created_at=T0 + timedelta(minutes=2))
    m = GalleryModel(lib)
    yield m
    m.loader.wait(5000)
    shared_pool().waitForDone(30_000)  # no gallery worker reads through it as it closes
    lib.close()


def open_viewer(qtbot: QtBot, model: GalleryModel, row: int) -> ImageViewer:
    viewer = ImageViewer(model.entry_at, model.rowCount, row)
    qtbot.addWidget(viewer)
    viewer.show()
    qtbot.waitExposed(viewer)
    qtbot.waitUntil(viewer.canvas.has_image)
    return viewer


def test_the_image_is_decoded_off_the_gui_thread_and_fitted(qtbot: QtBot, model: GalleryModel) -> None:
    viewer = open_viewer(qtbot, model, 0)
    assert viewer.canvas.image_size().width() == 64
    assert viewer.canvas.fitted
    rect = viewer.canvas.target_rect()
    canvas = viewer.canvas
    assert rect.width() == pytest.approx(canvas.width()) or rect.height() == pytest.approx(canvas.height())


def test_fit_actual_size_wheel_zoom_and_pan(qtbot: QtBot, model: GalleryModel) -> None:
    viewer = open_viewer(qtbot, model, 0)
    canvas = viewer.canvas
    qtbot.mouseClick(viewer.actual_button, Qt.MouseButton.LeftButton)
    assert canvas.scale == 1.0 and not canvas.fitted
    assert viewer.zoom_label.text() == "100 %"
    wheel = QWheelEvent(
        QPointF(canvas.width() / 2, canvas.height() / 2),
        QPointF(canvas.mapToGlobal(QPoint(0, 0))),
        QPoint(),
        QPoint(0, 120),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(canvas, wheel)
    assert canvas.scale == pytest.approx(1.25)
    canvas.set_scale(8.0)
    before = canvas.centre()
    start = QPoint(canvas.width() // 2, canvas.height() // 2)
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(canvas, start + QPoint(40, 0))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=start + QPoint(40, 0))
    assert canvas.centre().x() == pytest.approx(before.x() - 40 / (8.0 * 64))
    qtbot.mouseClick(viewer.fit_button, Qt.MouseButton.LeftButton)
    assert canvas.fitted


def test_the_zoom_shown_follows_a_resized_viewer(qtbot: QtBot, model: GalleryModel) -> None:
    viewer = open_viewer(qtbot, model, 0)
    qtbot.waitUntil(viewer.canvas.has_image)
    viewer.resize(1200, 800)
    qtbot.waitUntil(lambda: viewer.zoom_label.text().startswith("fitted"))
    before = viewer.zoom_label.text()
    viewer.resize(500, 400)
    qtbot.waitUntil(lambda: viewer.zoom_label.text() != before)
    assert viewer.zoom_label.text() == f"fitted, {viewer.canvas.scale * 100:.0f} %"


def test_zooming_keeps_the_point_under_the_pointer(qapp: QApplication) -> None:
    canvas = ImageCanvas()
    canvas.resize(400, 300)
    canvas.set_image(QImage(200, 100, QImage.Format.Format_RGB32))
    canvas.set_scale(1.0)
    anchor = QPointF(300, 100)
    before = canvas._image_point(anchor)
    canvas.zoom_by(2.0, anchor)
    after = canvas._image_point(anchor)
    assert (after.x(), after.y()) == pytest.approx((before.x(), before.y()))


@pytest.mark.parametrize(("width", "height"), [(8, 8), (60_000, 100)])
def test_fit_fits_and_zooming_goes_its_way_for_a_tiny_image_and_a_panorama(
    qapp: QApplication, width: int, height: int
) -> None:
    """An 8 × 8 image fitted at 8250 % shrank to 3200 % on "zoom in"; a 60,000 × 100
    panorama's Fit stopped at the 2 % limit, its ends cut off, and could not be zoomed out."""
    canvas = ImageCanvas()
    canvas.resize(660, 500)
    canvas.set_image(QImage(width, height, QImage.Format.Format_RGB32))
    canvas.fit()
    shown = canvas.target_rect()
    assert shown.width() <= 660.5 and shown.height() <= 500.5  # the whole of it
    assert max(shown.width() / 660, shown.height() / 500) == pytest.approx(1.0, abs=0.01)  # filling the canvas
    fitted = canvas.scale
    canvas.zoom_by(1.25)
    assert canvas.scale >= fitted
    canvas.fit()
    canvas.zoom_by(0.8)
    assert canvas.scale <= fitted


def test_arrow_keys_step_through_the_gallery(qtbot: QtBot, model: GalleryModel) -> None:
    viewer = open_viewer(qtbot, model, 0)
    rows: list[int] = []
    viewer.rowChanged.connect(rows.append)
    assert not viewer.prev_button.isEnabled()
    qtbot.keyClick(viewer, Qt.Key.Key_Right)
    qtbot.waitUntil(viewer.canvas.has_image)
    assert viewer.entry is not None and viewer.entry.prompt == "middle, with references"
    qtbot.keyClick(viewer, Qt.Key.Key_Right)
    assert viewer.row == 2 and not viewer.next_button.isEnabled()
    qtbot.keyClick(viewer, Qt.Key.Key_Right)
    assert viewer.row == 2
    qtbot.keyClick(viewer, Qt.Key.Key_Left)
    assert rows == [1, 2, 1]
    qtbot.keyClick(viewer, Qt.Key.Key_End)  # the oldest, then the newest, as in the gallery
    assert viewer.row == 2
    qtbot.keyClick(viewer, Qt.Key.Key_Home)
    assert viewer.row == 0 and rows == [1, 2, 1, 2, 0]


def test_after_a_click_in_the_prompt_or_details_the_arrows_still_step_through_the_images(
    qtbot: QtBot, model: GalleryModel
) -> None:
    viewer = open_viewer(qtbot, model, 0)
    viewer.activateWindow()
    for label, key, row in ((viewer.prompt_label, Qt.Key.Key_Right, 1), (viewer.facts_label, Qt.Key.Key_Left, 0)):
        qtbot.mouseClick(label, Qt.MouseButton.LeftButton)  # to select some of its text, say
        label.setFocus()
        qtbot.waitUntil(label.hasFocus)
        qtbot.keyClick(label, key)
        assert viewer.row == row


def test_the_prompt_and_details_are_reached_by_tab_and_copied_from_the_keyboard(
    qtbot: QtBot, model: GalleryModel
) -> None:
    # They could be selected with the mouse only; and with one focused by a click and
    # nothing selected, Ctrl+C copied nothing at all.
    viewer = open_viewer(qtbot, model, 1)
    viewer.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is viewer)
    reached = []
    for _ in range(3):
        qtbot.keyClick(QApplication.focusWidget() or viewer, Qt.Key.Key_Tab)
        reached.append(QApplication.focusWidget())
    assert viewer.prompt_label in reached and viewer.facts_label in reached
    copied: list[object] = []
    viewer.copyRequested.connect(copied.append)
    label = viewer.prompt_label
    label.setFocus()
    qtbot.waitUntil(label.hasFocus)
    qtbot.keyClick(label, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert copied == [viewer.entry]  # nothing selected: the image, as everywhere in the viewer
    QApplication.clipboard().clear()
    qtbot.keyClick(label, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(label, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.clipboard().text() == "middle, with references" and len(copied) == 1
    qtbot.keyClick(label, Qt.Key.Key_Home)  # no selection moved: the newest image
    assert viewer.row == 0
    label.setFocus()
    label.setSelection(0, 0)  # the text cursor at the start
    for _ in range(3):
        qtbot.keyClick(label, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert label.selectedText() == "new" and viewer.row == 0  # Shift+arrows select


def accent_pixels(widget: QWidget) -> int:
    image = widget.grab().toImage()
    accent = theme.ACCENT.rgb()
    return sum(1 for x in range(image.width()) for y in (1, image.height() - 2) if image.pixel(x, y) == accent)


def test_the_prompt_reached_by_tab_is_ringed_and_not_when_clicked(qtbot: QtBot, model: GalleryModel) -> None:
    # Reached by Tab, it showed only a thin text cursor at the end of the prompt.
    viewer = open_viewer(qtbot, model, 1)
    viewer.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is viewer)
    label = viewer.prompt_label
    assert accent_pixels(label) == 0
    viewer.canvas.setFocus()
    qtbot.keyClick(viewer.canvas, Qt.Key.Key_Tab)
    assert label.hasFocus() and accent_pixels(label) > label.width()
    qtbot.keyClick(label, Qt.Key.Key_Tab)
    assert not label.hasFocus() and accent_pixels(label) == 0
    qtbot.mouseClick(label, Qt.MouseButton.LeftButton)
    label.setFocus(Qt.FocusReason.MouseFocusReason)
    assert label.hasFocus() and accent_pixels(label) == 0  # a click shows where it is


def test_the_metadata_panel(qtbot: QtBot, model: GalleryModel) -> None:
    viewer = open_viewer(qtbot, model, 1)
    assert viewer.prompt_label.text() == "middle, with references"
    facts = viewer.facts_label.text()
    for text in ("4:5", "928 × 1152", "high", "Seed", ">2<", "PNG", "$0.0035", "2025-06-01"):
        assert text in facts
    strengths = [chip.strength_label.text() for chip in viewer.reference_chips]
    assert strengths == ["+0.70", "−1.25"]  # written as the tray writes them
    first, second = viewer.reference_chips
    qtbot.waitUntil(lambda: first.thumb.pixmap() is not None and not first.thumb.pixmap().isNull())
    assert second.thumb.text() == "no file"


def test_escape_closes(qtbot: QtBot, model: GalleryModel) -> None:
    viewer = open_viewer(qtbot, model, 0)
    qtbot.keyClick(viewer, Qt.Key.Key_Escape)
    assert not viewer.isVisible()


def test_a_broken_or_missing_file_never_crashes_the_viewer(qtbot: QtBot, model: GalleryModel) -> None:
    newest = model.entry_at(0)
    middle = model.entry_at(1)
    assert newest is not None and middle is not None
    newest.path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    middle.path.unlink()
    viewer = ImageViewer(model.entry_at, model.rowCount, 0, runner=ImmediateRunner())
    qtbot.addWidget(viewer)
    viewer.show()
    assert not viewer.canvas.has_image() and "could not be read" in viewer.canvas.message()
    viewer.next()
    assert "no longer in the library folder" in viewer.canvas.message()
    viewer.next()
    assert viewer.canvas.has_image()
    viewer.canvas.grab()  # painting the message works too
    with pytest.raises(ImageUnreadable):
        decode_image_file(newest.path)


# --- on a small screen ---------------------------------------------------------------------


class Screen:
    """A screen with ``area`` free (the offscreen platform's own is 1920x1080)."""

    def __init__(self, width: int, height: int) -> None:
        self.area = QRect(0, 0, width, height)

    def availableGeometry(self) -> QRect:
        return self.area


def main_window_on(qtbot: QtBot, monkeypatch: pytest.MonkeyPatch, width: int, height: int) -> tuple[QWidget, QRect]:
    """A window filling a ``width`` x ``height`` screen, as the main window opens on it,
    for the viewers to open from; and that screen's free area."""
    screen = Screen(width, height)
    monkeypatch.setattr(QWidget, "screen", lambda self: screen)
    window = QWidget()
    qtbot.addWidget(window)
    window.resize(width - 16, height - 48)
    window.move(0, 0)
    window.show()
    qtbot.waitExposed(window)
    return window, screen.area


def whole_on(area: QRect, widget: QWidget) -> bool:
    return widget.isVisible() and area.contains(QRect(widget.mapToGlobal(QPoint(0, 0)), widget.size()))


@pytest.mark.parametrize("screen", [(800, 600), (1366, 768)])
def test_the_viewer_opens_whole_on_a_small_screen(
    qtbot: QtBot, model: GalleryModel, monkeypatch: pytest.MonkeyPatch, screen: tuple[int, int]
) -> None:
    # At 1200x800 the bar with Previous, Next and the zoom went below a laptop screen's
    # edge, and on 800x600 the metadata panel went off its side.
    window, area = main_window_on(qtbot, monkeypatch, *screen)
    viewer = ImageViewer(model.entry_at, model.rowCount, 1, runner=ImmediateRunner(), parent=window)
    qtbot.addWidget(viewer)
    viewer.show()
    qtbot.waitExposed(viewer)
    assert area.contains(viewer.frameGeometry())
    assert viewer.width() <= screen[0] - 16 and viewer.height() <= screen[1] - 48
    for widget in (viewer.prev_button, viewer.next_button, viewer.fit_button, viewer.actual_button, viewer.canvas):
        assert whole_on(area, widget), widget.objectName()
    assert whole_on(area, viewer.prompt_label)  # the metadata panel beside the image
    assert viewer.canvas.width() > viewer.width() / 2  # the image keeps most of the window


def test_on_a_desktop_screen_the_viewer_opens_at_its_size_centred_on_the_window(
    qtbot: QtBot, model: GalleryModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    window, area = main_window_on(qtbot, monkeypatch, 1920, 1080)
    window.setGeometry(280, 110, 1360, 860)
    viewer = ImageViewer(model.entry_at, model.rowCount, 0, runner=ImmediateRunner(), parent=window)
    qtbot.addWidget(viewer)
    viewer.show()
    qtbot.waitExposed(viewer)
    assert viewer.size() == QSize(1200, 800)
    assert area.contains(viewer.frameGeometry())
    centre, middle = viewer.frameGeometry().center(), window.frameGeometry().center()
    assert abs(centre.x() - middle.x()) <= 8 and abs(centre.y() - middle.y()) <= 24


@pytest.mark.parametrize("screen", [(800, 600), (1366, 768)])
def test_compare_opens_whole_on_a_small_screen(
    qtbot: QtBot, model: GalleryModel, monkeypatch: pytest.MonkeyPatch, screen: tuple[int, int]
) -> None:
    # It opened 1400 wide or more (as wide as its captions), past a laptop screen's side.
    window, area = main_window_on(qtbot, monkeypatch, *screen)
    left, right = model.entry_at(1), model.entry_at(2)
    assert left is not None and right is not None
    dialog = CompareDialog(left, right, runner=ImmediateRunner(), parent=window)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert area.contains(dialog.frameGeometry())
    names = ("compareCanvas0", "compareCanvas1", "compareFitButton", "compareActualButton")
    for widget in (dialog.findChild(QWidget, name) for name in names):
        assert widget is not None and whole_on(area, widget), widget


def test_compare_with_an_unreadable_left_image_still_zooms_the_right_one(qtbot: QtBot, model: GalleryModel) -> None:
    left, right = model.entry_at(1), model.entry_at(2)
    assert left is not None and right is not None
    left.path.write_bytes(b"not a picture")
    dialog = CompareDialog(left, right, runner=ImmediateRunner())
    qtbot.addWidget(dialog)
    dialog.resize(1000, 600)
    dialog.show()
    qtbot.waitExposed(dialog)
    shown = dialog.canvases[1]
    qtbot.waitUntil(shown.has_image)
    assert not dialog.canvases[0].has_image()
    qtbot.keyClick(dialog, Qt.Key.Key_1)
    assert shown.scale == 1.0 and not shown.fitted
    dialog.findChild(QWidget, "compareFitButton").click()  # type: ignore[union-attr]
    assert shown.fitted


@pytest.mark.qt_log_ignore("Rejecting image as it exceeds the current allocation limit")
def test_compare_zooms_both_pictures_in_their_own_pixels_when_one_is_shown_from_a_reduced_copy(
    qtbot: QtBot, tmp_path: Path
) -> None:
    """Its 100 % showed the reduced copy's pixels, and the two sides followed each other's
    scale of their copies: the same zoom showed the two pictures at different sizes."""
    from PySide6.QtGui import QImageReader

    from krea_desktop.library.recall import entry_for_file

    large, small = tmp_path / "large.png", tmp_path / "small.png"
    Image.new("RGB", (2000, 1500), (30, 120, 200)).save(large, compress_level=1)  # 12 MB at 4 bytes a pixel
    Image.new("RGB", (400, 300), (200, 120, 30)).save(small)
    previous = QImageReader.allocationLimit()
    QImageReader.setAllocationLimit(10)
    try:
        dialog = CompareDialog(
            entry_for_file(large, None, (2000, 1500)), entry_for_file(small, None, (400, 300)), runner=ImmediateRunner()
        )
        qtbot.addWidget(dialog)
        dialog.resize(1000, 600)
        dialog.show()
        qtbot.waitUntil(lambda: all(c.has_image() for c in dialog.canvases))
    finally:
        QImageReader.setAllocationLimit(previous)
    reduced, whole = dialog.canvases
    assert reduced.image_size().width() < 2000
    qtbot.keyClick(dialog, Qt.Key.Key_1)  # 100 %
    assert reduced.zoom == pytest.approx(1.0) and whole.zoom == pytest.approx(1.0)
    assert reduced.target_rect().width() == pytest.approx(2000, rel=0.01)
    assert whole.target_rect().width() == pytest.approx(400, rel=0.01)


def test_a_reference_shows_its_strength_under_it_and_a_parent_gone_from_the_library_says_so(qtbot: QtBot) -> None:
    from PySide6.QtWidgets import QGridLayout

    from krea_desktop.api.record import ReferenceRecord
    from krea_desktop.library.lineage import Relative
    from krea_desktop.ui.viewer.viewer import ReferenceChip, RelativeChip

    holder = QWidget()
    qtbot.addWidget(holder)
    grid = QGridLayout(holder)  # as the viewer's panel lays its references out, three to a row
    chip = ReferenceChip(ReferenceRecord(image="u", strength=0.7, source="ref.png"), holder)
    grid.addWidget(chip, 0, 0)
    holder.resize(600, 200)
    holder.show()
    qtbot.waitExposed(holder)
    # However wide the panel, the chip is as wide as its thumbnail, the strength centred under it.
    assert chip.width() <= chip.thumb.width() + 8
    label = chip.strength_label.geometry()
    assert abs(label.center().x() - chip.thumb.geometry().center().x()) <= 2
    gone = RelativeChip(Relative("img-gone", 0.7, None), "parent")
    qtbot.addWidget(gone)
    assert gone.text() == "+0.70 · no longer in the library" and not gone.isEnabled()


def decoded_within(path: Path, *, megabytes: int) -> QImage:
    """``decode_image_file`` with Qt's reader allowed ``megabytes`` (256 by default)."""
    from PySide6.QtGui import QImageReader

    previous = QImageReader.allocationLimit()
    QImageReader.setAllocationLimit(megabytes)
    try:
        return decode_image_file(path)
    finally:
        QImageReader.setAllocationLimit(previous)


@pytest.mark.qt_log_ignore("Rejecting image as it exceeds the current allocation limit")
def test_a_picture_larger_than_qts_reader_takes_is_shown_at_the_largest_it_takes(
    qapp: QApplication, tmp_path: Path
) -> None:
    # Over Qt's allocation limit (256 MB by default: a 9000x8000 picture), the reader
    # refused it and the viewer said it was damaged. Here the limit is made 10 MB.
    path = tmp_path / "large.png"
    Image.new("RGB", (2000, 1500), (30, 120, 200)).save(path, compress_level=1)  # 12 MB at 4 bytes a pixel
    image = decoded_within(path, megabytes=10)
    assert not image.isNull()
    assert image.width() * image.height() * 4 <= 10 * 1024 * 1024
    assert image.width() / image.height() == pytest.approx(2000 / 1500, rel=0.01)
    assert image.pixelColor(10, 10).getRgb()[:3] == (30, 120, 200)


@pytest.mark.qt_log_ignore("Rejecting image as it exceeds the current allocation limit")
def test_a_picture_shown_from_a_reduced_copy_says_so_and_100_percent_is_its_own_pixels(
    qtbot: QtBot, tmp_path: Path
) -> None:
    """Over Qt's limit the viewer shows a reduced copy: its "100 %" was the copy's pixels
    (about 76 % of an 11,000 × 10,000 photo's), said to be actual size, and nothing said
    the picture was reduced."""
    from PySide6.QtGui import QImageReader

    from krea_desktop.library.recall import entry_for_file

    path = tmp_path / "large.png"
    Image.new("RGB", (2000, 1500), (30, 120, 200)).save(path, compress_level=1)  # 12 MB at 4 bytes a pixel
    previous = QImageReader.allocationLimit()
    QImageReader.setAllocationLimit(10)
    try:
        entries = [entry_for_file(path, None, (2000, 1500))]
        viewer = ImageViewer(lambda r: entries[r] if 0 <= r < 1 else None, lambda: 1, 0)
        qtbot.addWidget(viewer)
        viewer.show()
        qtbot.waitUntil(viewer.canvas.has_image)
    finally:
        QImageReader.setAllocationLimit(previous)
    shown = viewer.canvas.image_size()
    assert shown.width() < 2000
    assert viewer.hint_label.text() == (
        f"This picture, 2,000 × 1,500, is larger than the viewer holds, so a copy of "
        f"{shown.width():,} × {shown.height():,} is shown."
    )
    viewer.actual_button.click()
    assert viewer.zoom_label.text() == "100 %"
    assert viewer.canvas.target_rect().width() == pytest.approx(2000, rel=0.01)  # one of its pixels to one on screen
    viewer.canvas.fit()
    qtbot.mouseDClick(viewer.canvas, Qt.MouseButton.LeftButton)  # double-click: 100 % too
    assert viewer.zoom_label.text() == "100 %"
    viewer.close()


@pytest.mark.qt_log_ignore("Rejecting image as it exceeds the current allocation limit")
def test_a_picture_larger_than_qts_reader_takes_keeps_its_colour_profile_and_orientation(
    qapp: QApplication, tmp_path: Path
) -> None:
    """Decoded by Pillow, a picture too large for Qt's reader was shown with its numbers
    taken as sRGB (a Display P3 photo shifted in hue), and one with an oddly typed EXIF
    tag was called damaged: ImageOps.exif_transpose fails writing the EXIF again."""
    import struct

    from PySide6.QtGui import QColorSpace

    p3 = (200, 100, 50)
    profile = bytes(QColorSpace(QColorSpace.NamedColorSpace.DisplayP3).iccProfile().data())
    srgb = (
        QColorSpace(QColorSpace.NamedColorSpace.DisplayP3)
        .transformationToColorSpace(QColorSpace(QColorSpace.NamedColorSpace.SRgb))
        .map(QColor(*p3))
        .getRgb()[:3]
    )
    # Big-endian TIFF: BitsPerSample written as ASCII (as broken writers do), then Orientation 6.
    entries = struct.pack(">HHII", 0x0102, 2, 6, 8 + 2 + 2 * 12 + 4) + struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0)
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 2) + entries + struct.pack(">I", 0) + b"hello\x00"
    path = tmp_path / "large-p3.jpg"
    Image.new("RGB", (2000, 1500), p3).save(path, "JPEG", quality=100, icc_profile=profile, exif=b"Exif\x00\x00" + tiff)
    image = decoded_within(path, megabytes=10)
    assert image.width() * image.height() * 4 <= 10 * 1024 * 1024
    assert image.height() / image.width() == pytest.approx(2000 / 1500, rel=0.01)  # turned upright
    shown = image.pixelColor(image.width() // 2, image.height() // 2).getRgb()[:3]
    assert shown == pytest.approx(srgb, abs=4)
    assert shown != pytest.approx(p3, abs=8)


@pytest.mark.qt_log_ignore("Rejecting image as it exceeds the current allocation limit")
def test_a_grey_picture_larger_than_qts_reader_takes_is_shown_by_its_own_profile(
    qapp: QApplication, tmp_path: Path
) -> None:
    """A grey profile applies to grey pixels: Pillow's path for pictures too large for
    Qt's reader left it out, and the picture showed darker or lighter than the same one
    smaller (which Qt reads with its profile)."""
    import io

    from PIL import ImageCms
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QColorSpace

    grey = QColorSpace(QPointF(0.3127, 0.3290), QColorSpace.TransferFunction.Gamma, 1.8)
    profile = bytes(grey.iccProfile().data())
    img = Image.new("L", (2000, 1500), 100)
    path = tmp_path / "large-grey.png"
    img.save(path, icc_profile=profile, compress_level=1)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    small = Image.new("L", (4, 4), 100)
    expected = ImageCms.profileToProfile(small, ImageCms.ImageCmsProfile(io.BytesIO(profile)), srgb, outputMode="RGB")
    image = decoded_within(path, megabytes=10)
    assert image.width() * image.height() * 4 <= 10 * 1024 * 1024
    shown = image.pixelColor(image.width() // 2, image.height() // 2).getRgb()[:3]
    assert shown == pytest.approx(expected.getpixel((0, 0)), abs=2)
    assert shown != pytest.approx((100, 100, 100), abs=4)


@pytest.mark.qt_log_ignore("Rejecting image as it exceeds the current allocation limit")
def test_a_picture_larger_than_any_reader_takes_is_said_to_be_too_large_not_damaged(
    qapp: QApplication, tmp_path: Path
) -> None:
    """A 16,000 x 16,000 PNG of a few hundred kilobytes is refused by Qt's reader and by
    Pillow's guard against decompression bombs: the viewer said it was damaged."""
    path = tmp_path / "vast.png"
    path.write_bytes(_png_of_size(16_000, 16_000))
    with pytest.raises(ImageUnreadable) as raised:
        decode_image_file(path)
    assert str(raised.value) == "The file vast.png is too large to show (16,000 × 16,000 pixels)."


def _png_of_size(width: int, height: int) -> bytes:
    """A valid PNG header naming ``width`` x ``height`` (grey), with a short image stream."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )


@pytest.mark.qt_log_ignore("Corrupt JPEG data: premature end of data segment")
def test_a_jpeg_cut_short_is_shown_with_a_note_that_part_of_it_is_missing(
    qtbot: QtBot, model: GalleryModel, tmp_path: Path
) -> None:
    """Qt decodes a JPEG cut short, its missing part grey: shown without a word, it was
    taken for the picture as it is."""
    import dataclasses
    import io

    buf = io.BytesIO()
    Image.effect_noise((200, 160), 60).convert("RGB").save(buf, "JPEG", quality=90)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(buf.getvalue()[: len(buf.getvalue()) * 2 // 3])
    viewer = open_viewer(qtbot, model, 0)
    assert not viewer.hint_label.isVisible()
    whole = model.entry_at(0)
    assert whole is not None
    viewer.show_entry(dataclasses.replace(whole, file_name=cut.name, images_dir=tmp_path))
    qtbot.waitUntil(lambda: viewer.hint_label.isVisible())
    assert viewer.hint_label.text() == "This file ends early, so part of the picture is missing."
    assert viewer.canvas.has_image()


def test_only_a_jpeg_without_its_end_is_said_to_end_early(tmp_path: Path) -> None:
    """The check read the whole file and took any trouble reading its structure (a PNG's
    last checksum, a JPEG of many comments) for a file cut short."""
    import io

    from krea_desktop.ui.viewer.canvas import ends_early

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 120, 200)).save(buf, "JPEG")
    whole = buf.getvalue()
    (tmp_path / "whole.jpg").write_bytes(whole[:2] + (b"\xff\xfe\x00\x04ok") * 70_000 + whole[2:])  # many comments
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) - 40])
    png = io.BytesIO()
    Image.new("RGB", (40, 30)).save(png, "PNG")
    (tmp_path / "bad-end.png").write_bytes(png.getvalue()[:-4] + b"\0\0\0\0")  # IEND's checksum wrong
    assert [ends_early(tmp_path / n) for n in ("whole.jpg", "cut.jpg", "bad-end.png")] == [False, True, False]
    # A phone's motion photo (a video after the picture's end) and a maker's trailer were
    # said to end early: whole pictures, with more after their end.
    (tmp_path / "motion.jpg").write_bytes(whole + b"\0\0\0\x18ftypmp42" + bytes(range(256)) * 40)
    (tmp_path / "trailer.jpg").write_bytes(whole + bytes(16) + b"Image_UTC_Data1714550000000SEFH\0\0\0\0SEFT")
    (tmp_path / "cut-motion.jpg").write_bytes(whole[: len(whole) - 40] + b"\0\0\0\x18ftypmp42" + bytes(4000))
    assert [ends_early(tmp_path / n) for n in ("motion.jpg", "trailer.jpg", "cut-motion.jpg")] == [False, False, True]

"""The viewer: full-size images decoded off the GUI thread, zoom and pan, stepping through
the gallery, the metadata panel, and files that cannot be read."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QWheelEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from krea_desktop.library.store import Library
from krea_desktop.ui.background import ImmediateRunner
from krea_desktop.ui.gallery.model import GalleryModel
from krea_desktop.ui.viewer.canvas import ImageCanvas, ImageUnreadable, decode_image_file
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


def test_the_metadata_panel(qtbot: QtBot, model: GalleryModel) -> None:
    viewer = open_viewer(qtbot, model, 1)
    assert viewer.prompt_label.text() == "middle, with references"
    facts = viewer.facts_label.text()
    for text in ("4:5", "928 × 1152", "high", "Seed", ">2<", "PNG", "$0.0035", "2025-06-01"):
        assert text in facts
    strengths = [chip.strength_label.text() for chip in viewer.reference_chips]
    assert strengths == ["+0.70", "-1.25"]
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

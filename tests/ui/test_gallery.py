"""The gallery: model, thumbnails, actions, drag and drop, finding, and staying true to disk."""

from __future__ import annotations

import base64
import dataclasses
import io
import itertools
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin
from PySide6.QtCore import QItemSelectionModel, QMimeData, QPoint, QPointF, QRect, QSize, Qt, QUrl
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QRegion,
    QWheelEvent,
)
from PySide6.QtWidgets import QAbstractItemView, QApplication, QLineEdit, QWidget
from pytestqt.qtbot import QtBot

from krea_desktop.api import spec
from krea_desktop.api.record import GenerationRecord, ReferenceRecord
from krea_desktop.api.request import GenerationRequest
from krea_desktop.api.results import GeneratedImage
from krea_desktop.library import metadata, trash
from krea_desktop.library.export import ExportError, export_image
from krea_desktop.library.store import Library, LibraryEntry
from krea_desktop.ui.app import create_main_window
from krea_desktop.ui.background import shared_pool
from krea_desktop.ui.gallery import deleting, desktop, export, thumbnails
from krea_desktop.ui.gallery.export_dialog import ExportDialog
from krea_desktop.ui.gallery.model import GalleryModel
from krea_desktop.ui.gallery.recall import AWAY, TOWARD
from krea_desktop.ui.gallery.rows import RowReader
from krea_desktop.ui.gallery.thumbnails import ThumbnailLoader, fit_within
from krea_desktop.ui.gallery.view import GalleryView, runs_of
from krea_desktop.ui.mime import LIBRARY_IDS_MIME, decode_library_ids
from krea_desktop.ui.viewer import viewer as viewer_module
from krea_desktop.ui.viewer.viewer import NOT_IN_LIBRARY_DELETE, NOT_IN_LIBRARY_FAVOURITE, ImageViewer
from krea_desktop.ui.window.main_window import MainWindow
from tests.helpers.drag import drag_event, leave

T0 = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


# --- building libraries ----------------------------------------------------------------------------


def pixels(size: tuple[int, int], colour: tuple[int, int, int], fmt: str = "PNG", pattern: bool = False) -> bytes:
    im = Image.new("RGB", size, colour)
    if pattern:  # a checkerboard: sharp detail that a blur flattens
        for y in range(size[1]):
            for x in range(size[0]):
                if (x // 4 + y // 4) % 2:
                    im.putpixel((x, y), (255, 255, 255))
    buf = io.BytesIO()
    im.save(buf, spec.PIL_FORMATS[fmt])
    return buf.getvalue()


def make_image(
    prompt: str = "a quiet harbour",
    ratio: str = "1:1",
    seed: int = 1,
    *,
    colour: tuple[int, int, int] = (90, 120, 200),
    fmt: str = "PNG",
    nsfw: bool = False,
    references: list[dict[str, Any]] | None = None,
    creativity: str | None = "medium",
    pattern: bool = False,
) -> GeneratedImage:
    r = spec.RATIOS_BY_NAME[ratio]
    req = GenerationRequest(prompt=prompt, ratio=ratio, seed=seed, output_format=fmt, creativity=creativity)
    record = req.describe().replace(references=tuple(ReferenceRecord(**r) for r in references or []))
    # Small pixels keep the tests fast; the row takes the declared size.
    w, h = (64, max(8, round(64 * r.height / r.width)))
    return GeneratedImage(
        task_uuid=req.task_uuid,
        image_uuid=str(uuid.uuid4()),
        data=pixels((w, h), colour, fmt, pattern),
        format=fmt,
        width=r.width,
        height=r.height,
        seed=seed,
        cost=0.0035,
        nsfw=nsfw,
        record=record,
    )


def fill(folder: Path, images: list[GeneratedImage]) -> list[LibraryEntry]:
    """Save ``images`` oldest first (so the last is the newest) and return their entries."""
    with Library(folder) as lib:
        return [lib.save(im, created_at=T0 + timedelta(minutes=i)) for i, im in enumerate(images)]


@pytest.fixture
def library(qapp: QApplication, tmp_path: Path) -> Iterator[Library]:
    lib = Library(tmp_path / "lib")
    yield lib
    # A gallery on it may still read rows ahead on the shared pool: the library is closed
    # once no worker reads through it, as the window closes its own (close_library);
    # SQLite's module ends the process when a connection closes under a reader.
    shared_pool().waitForDone(30_000)
    lib.close()


@pytest.fixture
def no_trash(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """send2trash replaced: what would have gone to the system trash."""
    sent: list[str] = []

    def fake(path: str) -> None:
        sent.append(Path(path).name)
        Path(path).unlink()

    monkeypatch.setattr(trash, "send2trash", fake)
    return sent


@pytest.fixture
def make_window(qtbot: QtBot, data_dir: Path, no_trash: list[str]) -> Iterator[Any]:
    windows: list[MainWindow] = []

    def make() -> MainWindow:
        w = create_main_window(force_demo=True, demo_latency=0.0)
        qtbot.addWidget(w)
        w.resize(1000, 700)
        w.show()
        qtbot.waitExposed(w)
        w.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is w)  # shortcuts go to the active window
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.close()


def view_row(qtbot: QtBot, w: MainWindow, row: int) -> ImageViewer:
    """Open the gallery's row ``row`` in the viewer (as Space does) and wait for its picture."""
    select(w, row)
    w.gallery_actions.view_selected()
    viewer = w.gallery_actions.viewer
    assert viewer is not None
    qtbot.waitUntil(viewer.canvas.has_image)
    return viewer


def wait_thumbnails(qtbot: QtBot, w: MainWindow) -> None:
    def shown() -> bool:
        QApplication.processEvents()
        ids = w.gallery.visible_ids()
        return bool(ids) and all(w.model.has_thumbnail(i) for i in ids)

    qtbot.waitUntil(shown, timeout=10000)


def select(w: MainWindow, *rows: int) -> None:
    w.gallery_actions.select_ids(w.model.ids()[r] for r in rows)


def export_several(w: MainWindow, monkeypatch: pytest.MonkeyPatch, folder: Path, *rows: int) -> None:
    """Export the gallery's ``rows`` (Export…), the export dialog answered with ``folder``
    (made here if it is not there) and PNG."""
    folder.mkdir(exist_ok=True)
    monkeypatch.setattr(ExportDialog, "ask", staticmethod(lambda *_a, **_k: (folder, "PNG")))
    select(w, *rows)
    w.gallery_actions.export_action.trigger()


# --- 1. model, view, delegate ------------------------------------------------------------------------


def test_the_model_passes_the_model_tester_through_changes(qtmodeltester: Any, library: Library) -> None:
    entries = [library.save(make_image(f"picture {i}", seed=i), created_at=T0 + timedelta(minutes=i)) for i in range(6)]
    model = GalleryModel(library)
    qtmodeltester.check(model)
    assert model.rowCount() == 6
    assert [model.data(model.index(r), GalleryModel.IdRole) for r in range(6)] == [e.id for e in reversed(entries)]
    model.refresh(search="picture 3")
    qtmodeltester.check(model)
    model.refresh(search=None)
    newer = library.save(make_image("a new one"), created_at=T0 + timedelta(hours=1))
    model.add_entry(newer)
    assert model.data(model.index(0), GalleryModel.IdRole) == newer.id
    model.remove_ids({entries[0].id, entries[2].id, entries[3].id})
    qtmodeltester.check(model)
    assert model.rowCount() == 4
    assert all(model.row_of(i) == r for r, i in enumerate(model.ids()))
    model.loader.wait(5000)


def test_views_see_the_old_rows_before_a_change_and_the_new_ones_after(library: Library) -> None:
    entries = [library.save(make_image(f"row {i}", seed=i), created_at=T0 + timedelta(minutes=i)) for i in range(6)]
    model = GalleryModel(library)
    seen: list[tuple[str, list[int]]] = []

    def rows(when: str) -> None:
        ids = [model.data(model.index(r), GalleryModel.IdRole) for r in range(model.rowCount())]
        seen.append((when, ids))

    for name in ("rowsAboutToBeInserted", "rowsInserted", "rowsAboutToBeRemoved", "rowsRemoved"):
        getattr(model, name).connect(lambda *_args, name=name: rows(name))
    model.modelAboutToBeReset.connect(lambda: rows("modelAboutToBeReset"))
    model.modelReset.connect(lambda: rows("modelReset"))
    before = [e.id for e in reversed(entries)]

    newer = library.save(make_image("row new"), created_at=T0 + timedelta(hours=1))
    model.add_entry(newer)
    assert seen == [("rowsAboutToBeInserted", before), ("rowsInserted", [newer.id, *before])]

    seen.clear()
    model.remove_ids({entries[1].id, entries[2].id, entries[4].id})
    after = [newer.id, entries[5].id, entries[3].id, entries[0].id]
    assert seen[0] == ("rowsAboutToBeRemoved", [newer.id, *before])
    assert seen[-1] == ("rowsRemoved", after)
    for (when_a, ids_a), (when_b, ids_b) in itertools.pairwise(seen):
        if when_a == "rowsAboutToBeRemoved":
            assert when_b == "rowsRemoved" and len(ids_b) < len(ids_a) and set(ids_b) < set(ids_a)

    seen.clear()
    model.refresh(search="row 3")
    assert seen == [("modelAboutToBeReset", after), ("modelReset", [entries[3].id])]
    assert all(model.row_of(i) == r for r, i in enumerate(model.ids()))
    model.loader.wait(5000)


def save_numbered(library: Library, n: int) -> None:
    """Images p0 (the oldest) to p{n-1} (the newest, on top), a second apart."""
    for i in range(n):
        library.save(make_image(f"p{i}", seed=i), created_at=T0 + timedelta(seconds=i))


def settle(model: GalleryModel) -> None:
    """Wait for the rows read ahead and the thumbnails still being made."""
    model.rows.wait(5000)
    model.loader.wait(5000)


def record_reads(library: Library, monkeypatch: pytest.MonkeyPatch, hold: threading.Event | None = None) -> list[Any]:
    """``library.get_many`` noting (on the GUI thread?, how many ids) per call; with
    ``hold``, reads on other threads return only once it is set."""
    calls: list[tuple[bool, int]] = []
    real = library.get_many
    gui = threading.get_ident()

    def get_many(ids: Any) -> dict[int, LibraryEntry]:
        ids = list(ids)
        calls.append((threading.get_ident() == gui, len(ids)))
        found = real(ids)
        if hold is not None and threading.get_ident() != gui:
            hold.wait(10)
        return found

    monkeypatch.setattr(library, "get_many", get_many)
    return calls


def test_entries_are_read_lazily_a_page_at_a_time(library: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    save_numbered(library, 150)
    calls = record_reads(library, monkeypatch)
    model = GalleryModel(library)
    assert calls == []  # only ids until a row is looked at
    assert model.data(model.index(0), GalleryModel.EntryRole).prompt == "p149"
    assert model.data(model.index(50), GalleryModel.EntryRole).prompt == "p99"
    on_gui = [n for gui, n in calls if gui]
    assert len(on_gui) == 1 and on_gui[0] <= 100
    settle(model)


def test_rows_beside_the_ones_on_screen_are_read_ahead_on_a_worker(
    qapp: QApplication, library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A page of the index read on the GUI thread can wait on the disk while the view
    # scrolls: only the first row looked at is read there, the rest comes from a worker.
    save_numbered(library, 320)
    calls = record_reads(library, monkeypatch)
    model = GalleryModel(library)
    for row in range(320):
        assert model.entry_at(row).prompt == f"p{319 - row}"
        if row % 25 == 0:  # the time a few scroll steps take
            model.rows.wait(5000)
            qapp.processEvents()
    assert [gui for gui, _n in calls].count(True) == 1
    assert sum(n for gui, n in calls if not gui) >= 320 - 100
    settle(model)


def pages_read_by(reader: RowReader) -> list[list[int]]:
    """The pages of ids ``reader`` hands back, in order, as they come."""
    pages: list[list[int]] = []
    reader.read.connect(lambda _generation, ids, _entries: pages.append(ids))
    return pages


def until_a_worker_reads(calls: list[tuple[bool, int]]) -> None:
    """Wait (10 s at most) until ``record_reads`` has seen a read on a thread other than
    the GUI thread's."""
    deadline = time.monotonic() + 10
    while not any(not gui for gui, _n in calls) and time.monotonic() < deadline:
        time.sleep(0.01)


def test_rows_asked_for_while_the_reader_is_held_are_read_once_it_is_released(
    qapp: QApplication, library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_numbered(library, 30)
    calls = record_reads(library, monkeypatch)
    reader = RowReader(library)
    pages = pages_read_by(reader)
    ids = library.ids()
    reader.hold()
    reader.request(0, ids[:10])
    reader.request(0, ids[10:20])
    time.sleep(0.2)
    qapp.processEvents()
    assert calls == [] and pages == []  # nothing read while held
    reader.release()
    assert reader.wait(5000)
    qapp.processEvents()
    assert sorted(map(sorted, pages)) == sorted(map(sorted, [ids[:10], ids[10:20]]))
    assert [gui for gui, _n in calls] == [False, False]  # on the worker


def test_a_reader_held_while_its_worker_reads_reads_nothing_more_until_released(
    qapp: QApplication, library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_numbered(library, 30)
    reader = RowReader(library)
    pages = pages_read_by(reader)
    slow = threading.Event()
    calls = record_reads(library, monkeypatch, slow)
    ids = library.ids()
    reader.request(0, ids[:10])  # a worker takes it and waits in the read
    until_a_worker_reads(calls)
    reader.hold()
    reader.request(0, ids[10:20])
    slow.set()
    assert reader.wait(5000)
    qapp.processEvents()
    assert pages == [ids[:10]]  # the page asked for before the hold, and no other
    reader.release()
    assert reader.wait(5000)
    qapp.processEvents()
    assert pages == [ids[:10], ids[10:20]]
    assert len(calls) == 2


def test_a_page_read_ahead_before_its_entries_changed_is_dropped(
    qapp: QApplication, library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_numbered(library, 150)
    hold = threading.Event()
    calls = record_reads(library, monkeypatch, hold)
    model = GalleryModel(library)
    model.entry_at(0)  # reads rows 0 to 79 here, and asks for rows 80 to 149 ahead
    target = model.id_at(120)
    assert target is not None
    until_a_worker_reads(calls)
    library.set_favourite([target], True)  # after the worker read the row, before it is handed over
    model.forget({target})
    hold.set()
    model.rows.wait(5000)
    qapp.processEvents()
    entry = model.entry_at(120)
    assert entry is not None and entry.id == target and entry.favourite
    model.loader.wait(5000)


def grid_view(qtbot: QtBot, library: Library, n: int) -> tuple[GalleryView, GalleryModel]:
    for i in range(n):
        library.save(make_image(f"g{i}", seed=i), created_at=T0 + timedelta(minutes=i))
    view = GalleryView()
    qtbot.addWidget(view)
    model = GalleryModel(library)
    view.setModel(model)
    view.resize(500, 300)
    view.setThumbSide(100)
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: len(view.visible_rows()) > 0)
    return view, model


def test_cells_sit_on_a_grid_worked_out_from_the_row(qtbot: QtBot, library: Library) -> None:
    view, model = grid_view(qtbot, library, 23)
    width, height = view.viewport().width(), view.viewport().height()
    cols = (width - 3) // 110  # 108 px cells, 2 px apart, as QListView's icon mode lays them
    assert view.columns() == cols >= 2
    lines = -(-23 // cols)
    bar = view.verticalScrollBar()
    assert bar.maximum() == 2 + lines * 110 - height
    bar.setValue(37)
    for row in (0, 1, cols - 1, cols, 22):
        line, col = divmod(row, cols)
        rect = view.visualRect(model.index(row))
        assert rect == QRect(2 + col * 110, 2 + line * 110 - 37, 108, 108)
        assert view.indexAt(rect.center()).row() == row
        assert view.indexAt(rect.topLeft()).row() == row and view.indexAt(rect.bottomRight()).row() == row
    assert not view.indexAt(QPoint(1, 50)).isValid()  # the margin
    first = view.visualRect(model.index(0))
    assert not view.indexAt(first.topRight() + QPoint(1, 0)).isValid()  # between two cells
    bar.setValue(bar.maximum())
    last = view.visualRect(model.index(22))
    assert not view.indexAt(last.center() + QPoint(0, 110)).isValid()  # below the last line
    bar.setValue(37)
    assert view.visible_rows() == range(0, min(23, cols * (1 + (height + 37 - 3) // 110)))
    model.loader.wait(5000)


def test_keys_move_across_and_down_the_grid(qtbot: QtBot, library: Library) -> None:
    view, model = grid_view(qtbot, library, 23)
    cols = view.columns()
    view.setFocus()
    view.setCurrentIndex(model.index(0))
    moves = [
        (Qt.Key.Key_Right, 1),
        (Qt.Key.Key_Down, 1 + cols),
        (Qt.Key.Key_Left, cols),
        (Qt.Key.Key_Up, 0),
        (Qt.Key.Key_Up, 0),  # the top line: stays
        (Qt.Key.Key_End, 22),
        (Qt.Key.Key_Down, 22),  # nothing below: stays
        (Qt.Key.Key_Home, 0),
    ]
    for key, row in moves:
        qtbot.keyClick(view, key)
        assert view.currentIndex().row() == row, key
    qtbot.keyClick(view, Qt.Key.Key_End)
    # The current cell is scrolled into view.
    assert view.viewport().rect().contains(view.visualRect(model.index(22)))
    model.loader.wait(5000)


def test_shift_click_and_the_rubber_band_select_on_the_grid(qtbot: QtBot, library: Library) -> None:
    view, model = grid_view(qtbot, library, 23)
    cols = view.columns()

    def centre(row: int) -> QPoint:
        return view.visualRect(model.index(row)).center()

    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=centre(1))
    assert view.selected_rows() == [1]
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, centre(cols + 1))
    assert view.selected_rows() == list(range(1, cols + 2))  # in reading order, like text
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier, centre(3))
    assert 3 not in view.selected_rows()

    # A band dragged from the margin selects the cells it touches: two columns of two lines.
    qtbot.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(1, 1))
    qtbot.mouseMove(view.viewport(), centre(cols + 1))
    qtbot.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, pos=centre(cols + 1))
    assert view.selected_rows() == [0, 1, cols, cols + 1]

    qtbot.keyClick(view, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert view.selected_rows() == list(range(23))
    model.loader.wait(5000)


def test_the_cell_under_the_pointer_is_outlined(qtbot: QtBot, library: Library) -> None:
    view, model = grid_view(qtbot, library, 5)
    qtbot.waitUntil(lambda: all(model.has_thumbnail(i) for i in view.visible_ids()))
    rect = view.visualRect(model.index(1))
    edge = QPoint(rect.x() + 4, rect.y() + 40)  # where the cell's frame is drawn

    def colour() -> int:
        view.viewport().repaint()
        return view.viewport().grab().toImage().pixel(edge)

    qtbot.mouseMove(view.viewport(), QPoint(1, 1))  # wherever an earlier test left the pointer
    plain = colour()
    qtbot.mouseMove(view.viewport(), rect.center())
    assert colour() != plain
    qtbot.mouseMove(view.viewport(), QPoint(1, 1))  # the margin: no cell
    assert colour() == plain
    model.loader.wait(5000)


def test_a_repaint_draws_only_the_cells_it_covers(
    qtbot: QtBot, library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    view, model = grid_view(qtbot, library, 12)
    qtbot.waitUntil(lambda: all(model.has_thumbnail(i) for i in view.visible_ids()))
    model.loader.wait(5000)
    qtbot.wait(50)  # every thumbnail painted
    painted: list[int] = []
    delegate = view.itemDelegate()
    real = delegate.paint
    monkeypatch.setattr(delegate, "paint", lambda p, o, i: (painted.append(i.row()), real(p, o, i)))
    view.viewport().update(view.visualRect(model.index(1)))
    qtbot.waitUntil(lambda: bool(painted))
    assert painted == [1]
    painted.clear()
    # A thumbnail arriving (a favourite marked, an entry read again): its cell alone, not
    # the screen laid out again and repainted (QListView's dataChanged does both).
    laid_out: list[None] = []
    monkeypatch.setattr(view, "doItemsLayout", lambda: laid_out.append(None))
    model.dataChanged.emit(model.index(2), model.index(2))
    qtbot.waitUntil(lambda: bool(painted))
    qtbot.wait(20)
    assert painted == [2] and laid_out == []
    painted.clear()
    cols = view.columns()
    view.viewport().update(QRegion(view.visualRect(model.index(0))) + QRegion(view.visualRect(model.index(cols + 1))))
    qtbot.waitUntil(lambda: bool(painted))
    assert painted == [0, cols + 1]
    model.loader.wait(5000)


def test_a_new_row_on_top_moves_every_cell_along(qtbot: QtBot, library: Library) -> None:
    view, model = grid_view(qtbot, library, 7)
    cols = view.columns()
    before = [view.visualRect(model.index(r)) for r in range(7)]
    model.add_entry(library.save(make_image("newest"), created_at=T0 + timedelta(days=1)))
    assert model.rowCount() == 8
    after = [view.visualRect(model.index(r)) for r in range(8)]
    assert after[:7] == before and after[7].isValid()  # the grid stays; each image moved one cell on
    assert model.data(model.index(cols), GalleryModel.EntryRole).prompt == f"g{7 - cols}"
    model.remove_ids({model.id_at(0) or 0})
    assert not view.visualRect(model.index(7)).isValid()
    model.loader.wait(5000)


def test_images_arriving_leave_a_user_scrolled_down_looking_at_the_same_images(qtbot: QtBot, library: Library) -> None:
    """Each new image goes on top and moves every cell along by one: scrolled down, the
    images on screen crept down a line every few arrivals, under the user's eyes."""
    view, model = grid_view(qtbot, library, 60)
    cols, bar = view.columns(), view.verticalScrollBar()
    bar.setValue(3 * view._step() + 20)
    watched = model.id_at(3 * cols)  # the first image of the top line on screen
    top = view.visualRect(model.index(3 * cols)).top()
    for k in range(cols + 2):
        model.add_entry(library.save(make_image(f"new {k}"), created_at=T0 + timedelta(days=1, minutes=k)))
        row = model.row_of(watched or 0)
        assert row == 3 * cols + 1 + k
        assert view.visualRect(model.index(row)).top() == top, k
    # Rows taken away above the screen do not move it either.
    model.remove_ids({model.id_at(r) or 0 for r in range(cols + 1)})
    assert view.visualRect(model.index(model.row_of(watched or 0) or 0)).top() == top
    # At the top of the gallery, new images are what is seen.
    bar.setValue(0)
    model.add_entry(library.save(make_image("on top"), created_at=T0 + timedelta(days=2)))
    assert bar.value() == 0 and model.data(model.index(0), GalleryModel.EntryRole).prompt == "on top"
    model.loader.wait(5000)


def test_thumbnail_size_follows_the_slider_and_ctrl_wheel_and_is_remembered(qtbot: QtBot, make_window: Any) -> None:
    w = make_window()
    slider = w.filter_bar.size_slider
    slider.setValue(120)
    assert w.gallery.thumb_side == 120
    event = QWheelEvent(
        QPointF(10, 10),
        QPointF(w.gallery.mapToGlobal(QPoint(10, 10))),
        QPoint(),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.ControlModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(w.gallery.viewport(), event)
    assert w.gallery.thumb_side == 168
    assert slider.value() == 168
    # A touchpad's small steps add up (each alone came to less than a pixel, and to nothing).
    for _ in range(60):
        small = QWheelEvent(
            QPointF(10, 10),
            QPointF(w.gallery.mapToGlobal(QPoint(10, 10))),
            QPoint(),
            QPoint(0, -2),
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.ControlModifier,
            Qt.ScrollPhase.NoScrollPhase,
            False,
        )
        QApplication.sendEvent(w.gallery.viewport(), small)
    assert w.gallery.thumb_side == 168 - 24  # one notch's worth: 60 x 2 of 120
    w.gallery.setThumbSide(5000)
    assert w.gallery.thumb_side == 384
    w.gallery.setThumbSide(150)
    w.close()
    w2 = make_window()
    assert w2.gallery.thumb_side == 150 and w2.filter_bar.size_slider.value() == 150


def test_cells_take_the_thumbnail_size(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    fill(data_dir, [make_image(f"cell {i}") for i in range(3)])
    w = make_window()
    w.gallery.setThumbSide(100)
    qtbot.waitUntil(lambda: w.gallery.visualRect(w.model.index(0)).width() == 108)
    w.gallery.setThumbSide(300)
    qtbot.waitUntil(lambda: w.gallery.visualRect(w.model.index(0)).width() == 308)


def _variance(image: QImage, rect: Any) -> float:
    values = [
        QColorValue(image.pixel(x, y))
        for y in range(rect.top() + 20, rect.bottom() - 30, 3)
        for x in range(rect.left() + 20, rect.right() - 20, 3)
    ]
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / len(values)


def QColorValue(rgb: int) -> int:
    return (rgb >> 16 & 255) + (rgb >> 8 & 255) + (rgb & 255)


def test_nsfw_images_are_blurred_until_revealed(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    fill(data_dir, [make_image("flagged", nsfw=True, pattern=True, colour=(0, 0, 0))])
    w = make_window()
    wait_thumbnails(qtbot, w)
    rect = w.gallery.visualRect(w.model.index(0))
    blurred = _variance(w.gallery.viewport().grab().toImage(), rect)
    assert not w.gallery.reveal_nsfw
    w.gallery_actions.reveal_nsfw_action.trigger()
    assert w.gallery.reveal_nsfw
    revealed = _variance(w.gallery.viewport().grab().toImage(), rect)
    assert revealed > 4 * blurred


@given(st.integers(0, 5000), st.integers(0, 5000), st.integers(1, 800), st.integers(1, 800))
def test_cells_fit_images_exactly_as_qt_would(w: int, h: int, box_w: int, box_h: int) -> None:
    expected = QSize(w, h).scaled(box_w, box_h, Qt.AspectRatioMode.KeepAspectRatio)
    assert fit_within(w, h, box_w, box_h) == (expected.width(), expected.height())


def first_cell_shown(qtbot: QtBot, make_window: Any) -> tuple[Any, tuple[int, int, int], QImage]:
    """A window whose gallery shows its cells at 200 px, thumbnails in: the window, the
    first cell's inner square (x, y, side) and a grab of the gallery."""
    w = make_window()
    w.gallery.setThumbSide(200)
    wait_thumbnails(qtbot, w)
    cell = w.gallery.visualRect(w.model.index(0))
    return w, (cell.x() + 4, cell.y() + 4, cell.width() - 8), w.gallery.viewport().grab().toImage()


def test_a_cell_shows_the_image_its_badges_and_the_selection(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    entries = fill(data_dir, [make_image("badged", colour=(200, 40, 40))])
    with Library(data_dir) as lib:
        lib.set_favourite([entries[0].id], True)
    w, (x, y, side), plain = first_cell_shown(qtbot, make_window)
    assert QColor(plain.pixel(x + side // 2, y + side // 2)).getRgb()[:3] == (200, 40, 40)  # the image, centred
    # Badges along the bottom right, on a dark plate over the cell: the cost, then the star.
    metrics_h = w.gallery.itemDelegate()._badge_metrics.height()
    plate = QColor(plain.pixel(x + side - 7, y + side - 1 - metrics_h - 5))
    assert max(plate.getRgb()[:3]) < 100
    assert plain.pixel(x + 1, y + 1) != w.gallery.palette().highlight().color().rgb()
    # Each plate is drawn once (a demo window: the simulator's cost), and again for a new font.
    delegate = w.gallery.itemDelegate()
    assert {(text, pm.height()) for (text, _c, _r), (_w, pm) in delegate._badge_images.items()} == {
        ("★", metrics_h + 2),
        ("$0.0035 (simulated)", metrics_h + 2),
    }
    larger = w.gallery.font()
    larger.setPointSizeF(larger.pointSizeF() * 1.6)
    w.gallery.setFont(larger)
    w.gallery.viewport().repaint()
    taller = delegate._badge_metrics.height()
    assert taller > metrics_h
    assert {pm.height() for _w, pm in delegate._badge_images.values()} == {taller + 2}
    w.gallery.setFont(QApplication.font())

    select(w, 0)
    qtbot.waitUntil(lambda: w.gallery.selected_rows() == [0])
    selected = w.gallery.viewport().grab().toImage()
    highlight = w.gallery.palette().highlight().color()
    for px, py in ((x + 1, y + side // 2), (x + side // 2, y + 1), (x + side - 2, y + side // 2)):
        assert QColor(selected.pixel(px, py)).getRgb()[:3] == highlight.getRgb()[:3]


def test_the_badges_of_a_wide_image_sit_on_the_image(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    fill(data_dir, [make_image("wide", ratio="2.35:1", colour=(230, 230, 230))])
    w, (x, y, side), shot = first_cell_shown(qtbot, make_window)
    column = [QColor(shot.pixel(x + side // 2, row)).getRgb()[:3] for row in range(y, y + side)]
    picture = [row for row, rgb in enumerate(column) if rgb == (230, 230, 230)]
    bottom = y + picture[-1]  # the picture's last line of pixels
    assert side // 3 < len(picture) < side // 2  # a band across the middle of the cell
    badge_h = w.gallery.itemDelegate()._badge_metrics.height() + 2
    # The cost's plate darkens the bottom right of the picture, not the empty cell below it.
    on_picture = QColor(shot.pixel(x + side - 7, bottom - 4 - badge_h // 2))
    assert max(on_picture.getRgb()[:3]) < 120
    below = QColor(shot.pixel(x + side - 7, y + side - 5 - badge_h // 2))
    assert below.getRgb()[:3] == (40, 40, 44)  # the cell's own colour


def test_cells_cannot_be_edited_in_place(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    fill(data_dir, [make_image("not editable")])
    w = make_window()
    w.gallery.setFocus()
    select(w, 0)
    w.gallery.setCurrentIndex(w.model.index(0))
    qtbot.keyClick(w.gallery, Qt.Key.Key_F2)
    assert w.gallery.state() != QAbstractItemView.State.EditingState
    assert QApplication.focusWidget() is w.gallery
    assert not w.model.setData(w.model.index(0), "renamed")
    assert w.model.entry_at(0).prompt == "not editable"


# --- 2. thumbnails ------------------------------------------------------------------------------------


def test_thumbnails_come_at_the_size_asked_made_or_read_from_the_cache(library: Library) -> None:
    entry = library.save(make_image("sized", ratio="16:9", colour=(30, 160, 90)))
    cache = library.thumb_path(entry.image_uuid, 256)
    made = thumbnails.make_thumbnail(entry.path, cache, 256, side=120)  # made: cached at 256, given at 120
    assert cache.exists() and QImage(str(cache)).width() == 256
    read = thumbnails.make_thumbnail(entry.path, cache, 256, side=120)  # read from the cache, scaled as decoded
    for image in (made, read):
        assert (image.width(), image.height()) == fit_within(256, QImage(str(cache)).height(), 120, 120)
        assert QColor(image.pixel(60, image.height() // 2)).getRgb()[:3] == pytest.approx((30, 160, 90), abs=6)
    assert thumbnails.make_thumbnail(entry.path, cache, 256).width() == 256  # no side: as cached


@pytest.mark.qt_log_ignore("Rejecting image as it exceeds the current allocation limit")
def test_a_picture_larger_than_qts_reader_takes_gets_a_thumbnail_not_a_broken_tile(tmp_path: Path) -> None:
    """A PNG of more than about 64 megapixels (decoded whole before Qt scales it, past its
    256 MB limit) had no thumbnail: the gallery drew it as damaged while the viewer showed it."""
    from PySide6.QtGui import QImageReader

    large = tmp_path / "scan.png"
    Image.new("RGB", (2000, 1500), (30, 120, 200)).save(large, compress_level=1)  # 12 MB at 4 bytes a pixel
    previous = QImageReader.allocationLimit()
    QImageReader.setAllocationLimit(10)  # as 256 MB are to a scan of 80 megapixels
    try:
        image = thumbnails.make_thumbnail(large, tmp_path / "thumb.jpg", 256)
    finally:
        QImageReader.setAllocationLimit(previous)
    assert (image.width(), image.height()) == (256, 192)
    assert QColor(image.pixel(128, 96)).getRgb()[:3] == pytest.approx((30, 120, 200), abs=6)


def test_a_strip_one_pixel_across_gets_a_thumbnail_not_a_broken_tile(tmp_path: Path) -> None:
    """A 1 x 10,000 image was asked for at 0 x 256, of which Qt makes nothing: the gallery
    drew it as damaged while the viewer showed it."""
    for size in ((1, 10_000), (10_000, 1)):
        source = tmp_path / f"strip-{size[0]}.png"
        Image.new("RGB", size, (200, 50, 50)).save(source)
        cache = tmp_path / "thumbs" / f"{source.stem}.jpg"
        made = thumbnails.make_thumbnail(source, cache, 256, side=120)
        read = thumbnails.make_thumbnail(source, cache, 256, side=120)
        expected = (1, 120) if size[0] == 1 else (120, 1)
        assert [(made.width(), made.height()), (read.width(), read.height())] == [expected, expected]


def test_what_is_transparent_shows_over_checks_in_a_thumbnail_not_black(tmp_path: Path) -> None:
    """Thumbnails are kept as JPEG: made opaque as they were, transparent parts came out
    black (a black logo on nothing was a black square)."""
    source = tmp_path / "logo.png"
    logo = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    logo.paste((0, 0, 0, 255), (16, 16, 48, 48))
    logo.save(source)
    thumb = thumbnails.make_thumbnail(source, tmp_path / "thumbs" / "logo.jpg", 256)
    corners = {QColor(thumb.pixel(x, y)).getRgb()[:3] for x, y in ((2, 2), (thumb.width() - 3, 12))}
    light, dark = thumbnails.CHECK_LIGHT, thumbnails.CHECK_DARK
    assert all(c == pytest.approx(light, abs=8) or c == pytest.approx(dark, abs=8) for c in corners), corners
    assert centre_colour(thumb) == pytest.approx((0, 0, 0), abs=8)  # the logo itself stays black


def rewrite_in_place(path: Path, colour: tuple[int, int, int], *, ahead_s: float = 0.0) -> None:
    """What another program does when it saves over a library image (a touch-up): the
    same name, new pixels, a later modification time (``ahead_s`` past the clock)."""
    with Image.open(path) as im:
        size, fmt = im.size, im.format
    Image.new("RGB", size, colour).save(path, fmt)
    later = time.time() + max(ahead_s, 1.0)
    os.utime(path, (later, later))


def centre_colour(image: QImage) -> tuple[int, int, int]:
    return QColor(image.pixel(image.width() // 2, image.height() // 2)).getRgb()[:3]


def test_a_thumbnail_older_than_its_image_is_made_again_and_then_read_from_the_cache(library: Library) -> None:
    """An image changed in place by another program kept its old thumbnail for ever."""
    entry = library.save(make_image("touched up", colour=(30, 160, 90)))
    cache = library.thumb_path(entry.image_uuid, 256)
    assert centre_colour(thumbnails.make_thumbnail(entry.path, cache, 256)) == pytest.approx((30, 160, 90), abs=6)
    rewrite_in_place(entry.path, (200, 40, 40), ahead_s=3600)  # dated an hour ahead of this clock
    assert centre_colour(thumbnails.make_thumbnail(entry.path, cache, 256)) == pytest.approx((200, 40, 40), abs=6)
    made = cache.stat().st_mtime_ns
    assert made >= entry.path.stat().st_mtime_ns  # current now, though its source is dated ahead
    assert centre_colour(thumbnails.make_thumbnail(entry.path, cache, 256)) == pytest.approx((200, 40, 40), abs=6)
    assert cache.stat().st_mtime_ns == made  # read back, not made at every look
    entry.path.unlink()  # a missing image still shows what it was
    assert centre_colour(thumbnails.make_thumbnail(entry.path, cache, 256)) == pytest.approx((200, 40, 40), abs=6)


def test_a_thumbnail_that_cannot_be_kept_is_shown_all_the_same(
    library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A library on a read-only disk: an image changed in place showed as damaged, its
    new thumbnail made but refused by the disk."""
    entry = library.save(make_image("on a read-only disk", colour=(30, 160, 90)))
    cache = library.thumb_path(entry.image_uuid, 256)
    thumbnails.make_thumbnail(entry.path, cache, 256)
    rewrite_in_place(entry.path, (200, 40, 40))

    def read_only(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(thumbnails.tempfile, "mkstemp", read_only)
    image = thumbnails.make_thumbnail(entry.path, cache, 256, side=120)
    assert not image.isNull() and max(image.width(), image.height()) == 120
    assert centre_colour(image) == pytest.approx((200, 40, 40), abs=6)


def test_an_image_the_folders_check_finds_changed_gets_a_new_thumbnail_whatever_its_date(library: Library) -> None:
    """A copy that keeps its date (cp -p, rsync -a, a restore) is no newer than the cached
    thumbnail: the check said "changed" and the old picture stayed."""
    entry = library.save(make_image("restored from a backup", colour=(200, 0, 0)))
    cache = library.thumb_path(entry.image_uuid, 256)
    thumbnails.make_thumbnail(entry.path, cache, 256)
    older = entry.path.stat().st_mtime_ns - 10**9
    Image.new("RGB", (64, 48), (0, 0, 200)).save(entry.path, "PNG", compress_level=0)  # another size
    os.utime(entry.path, ns=(older, older))
    assert library.reconcile().rewritten == [entry.id]
    assert centre_colour(thumbnails.make_thumbnail(entry.path, cache, 256)) == pytest.approx((0, 0, 200), abs=6)


def test_refresh_shows_an_image_changed_in_place_as_it_is_now(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    entries = fill(
        data_dir, [make_image("unchanged", colour=(20, 20, 200)), make_image("touched up", colour=(30, 160, 90))]
    )
    w = make_window()
    model = w.model
    wait_thumbnails(qtbot, w)
    assert centre_colour(model.data(model.index(0), Qt.ItemDataRole.DecorationRole).toImage()) == pytest.approx(
        (30, 160, 90), abs=6
    )
    Image.new("RGB", (400, 300), (200, 40, 40)).save(entries[1].path, "PNG")  # another size, new pixels
    os.utime(entries[1].path, (time.time() + 2, time.time() + 2))
    w.gallery_actions.refresh_action.trigger()
    qtbot.waitUntil(lambda: "1 changed" in w.statusBar().currentMessage())
    wait_thumbnails(qtbot, w)

    def shown() -> tuple[int, int, int]:
        return centre_colour(model.data(model.index(0), Qt.ItemDataRole.DecorationRole).toImage())

    qtbot.waitUntil(lambda: shown() == pytest.approx((200, 40, 40), abs=6))
    assert centre_colour(model.data(model.index(1), Qt.ItemDataRole.DecorationRole).toImage()) == pytest.approx(
        (20, 20, 200), abs=6
    )


def test_thumbnails_are_made_for_visible_rows_only_and_cached(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    fill(data_dir, [make_image(f"many {i}", seed=i, colour=(i, 100, 150)) for i in range(120)])
    w = make_window()
    w.gallery.setThumbSide(120)
    wait_thumbnails(qtbot, w)
    w.wait_idle()
    cached = list((data_dir / "thumbs" / "256").glob("*.jpg"))
    visible = w.gallery.visible_ids()
    assert len(visible) <= len(cached) < 120  # not the whole library
    # a cached thumbnail is read back, not made again
    model = w.model
    first = model.entry_at(0)
    assert first is not None
    before = w.library.thumb_path(first.image_uuid, 256).stat().st_mtime_ns
    model.forget({first.id})
    model.data(model.index(0), Qt.ItemDataRole.DecorationRole)
    qtbot.waitUntil(lambda: model.has_thumbnail(first.id))
    assert w.library.thumb_path(first.image_uuid, 256).stat().st_mtime_ns == before


def test_pending_thumbnails_for_rows_scrolled_away_are_dropped(
    qtbot: QtBot, library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = [library.save(make_image(f"q{i}", seed=i)) for i in range(8)]
    gate = threading.Event()
    made: list[str] = []

    def slow(source: Path, cache: Path, size: int = 256, side: int = 0) -> QImage:
        gate.wait(5)
        made.append(source.stem)
        return QImage(4, 4, QImage.Format.Format_RGB32)

    monkeypatch.setattr("krea_desktop.ui.gallery.thumbnails.make_thumbnail", slow)
    loader = ThumbnailLoader(library)
    loaded: list[int] = []
    loader.loaded.connect(lambda i, _img: loaded.append(i))
    for e in entries:
        loader.request(e)
    keep = {entries[-1].id, entries[-2].id}
    loader.keep_only(keep)
    gate.set()
    loader.wait(5000)
    qtbot.waitUntil(lambda: len(loaded) == len(made))
    # the first two were already running when the rows left the screen; the rest never ran
    assert set(loaded) <= keep | {entries[0].id, entries[1].id}
    assert keep <= set(loaded)
    assert len(made) <= 4


def test_the_newest_request_is_served_first(qtbot: QtBot, library: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    entries = [library.save(make_image(f"r{i}", seed=i)) for i in range(6)]
    started, gate = threading.Event(), threading.Event()
    order: list[str] = []

    def slow(source: Path, cache: Path, size: int = 256, side: int = 0) -> QImage:
        started.set()
        gate.wait(5)
        order.append(source.stem)
        return QImage(4, 4, QImage.Format.Format_RGB32)

    monkeypatch.setattr("krea_desktop.ui.gallery.thumbnails.make_thumbnail", slow)
    loader = ThumbnailLoader(library)
    loader._threads = 1
    loader.request(entries[0])
    assert started.wait(5)  # the worker is busy with the first
    for e in entries[1:]:
        loader.request(e)
    gate.set()
    loader.wait(5000)
    assert order == [entries[0].image_uuid] + [e.image_uuid for e in reversed(entries[1:])]


def test_a_held_loader_starts_nothing_and_on_release_makes_only_the_rows_on_screen(
    qtbot: QtBot, library: Library
) -> None:
    entries = [library.save(make_image(f"h{i}", seed=i)) for i in range(6)]
    loader = ThumbnailLoader(library)
    loaded: list[int] = []
    loader.loaded.connect(lambda i, _img: loaded.append(i))
    loader.hold()
    for e in entries:
        loader.request(e)
    qtbot.wait(150)
    assert loaded == [] and loader.pending() == len(entries)  # asked for, none started
    on_screen = {entries[-1].id, entries[-2].id}
    loader.release(on_screen)
    qtbot.waitUntil(lambda: set(loaded) == on_screen)
    loader.wait(5000)
    assert sorted(loaded) == sorted(on_screen) and loader.pending() == 0
    loader.request(entries[0])  # released: requests start at once again
    qtbot.waitUntil(lambda: entries[0].id in loaded)


def test_a_fling_makes_no_thumbnails_until_it_slows_then_those_on_screen(qtbot: QtBot, library: Library) -> None:
    view, model = grid_view(qtbot, library, 240)
    qtbot.waitUntil(lambda: all(model.has_thumbnail(i) for i in view.visible_ids()))
    model.loader.wait(5000)
    bar = view.verticalScrollBar()
    made: list[int] = []
    model.loader.loaded.connect(lambda i, _img: made.append(i))
    # A screen or more a step, every 16 ms: a fling.
    for _ in range(6):
        bar.setValue(bar.value() + view.viewport().height() + 40)
        qtbot.wait(16)
    assert model.loader.held
    passed = set(made)
    assert len(passed) <= 2 * len(view.visible_ids())  # at most what was already under way
    qtbot.waitUntil(lambda: not model.loader.held, timeout=2000)
    on_screen = view.visible_ids()
    qtbot.waitUntil(lambda: all(model.has_thumbnail(i) for i in on_screen))
    # A slow scroll (a few rows a step) never holds them back.
    for _ in range(4):
        bar.setValue(bar.value() + 30)
        qtbot.wait(40)
    assert not model.loader.held
    model.loader.wait(5000)


# --- 4. actions -------------------------------------------------------------------------------------


@pytest.fixture
def refs_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "refs"
    folder.mkdir()
    Image.new("RGB", (40, 30), (250, 10, 10)).save(folder / "red.png")
    Image.new("RGB", (40, 30), (10, 10, 250)).save(folder / "blue.png")
    return folder


def test_use_all_parameters_sets_prompt_ratio_seed_and_existing_references(
    qtbot: QtBot, data_dir: Path, make_window: Any, refs_dir: Path
) -> None:
    refs = [
        {"image": "u1", "strength": 1.2, "source": str(refs_dir / "red.png")},
        {"image": "u2", "strength": -0.6, "source": str(refs_dir / "blue.png")},
        {"image": "u3", "strength": 0.4, "source": str(refs_dir / "gone.png")},
    ]
    fill(data_dir, [make_image("a lighthouse in fog", "16:9", seed=4242, creativity="high", references=refs)])
    w = make_window()
    w.ratio_bar.setRatio("1:1")
    select(w, 0)
    w.gallery_actions.use_all_action.trigger()
    assert w.prompt_panel.prompt() == "a lighthouse in fog"
    assert w.prompt_panel.seed() == 4242
    assert w.prompt_panel.creativityCombo.currentData() == "high"
    assert w.ratio_bar.ratio() == "16:9"
    w.tray.wait_for_loads()
    qtbot.waitUntil(lambda: w.tray.count() == 2 and not w.tray.isBusy())
    assert [r.strength for r in w.tray.references()] == [1.2, -0.6]
    assert "; 1 of 3 references is no longer on this computer." in w.message_banner.label.text()


def test_use_all_parameters_of_a_contact_sheet_sets_only_what_its_cells_shared(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    """A sheet written before kept the request's own seed and creativity, which no cell
    used when they were its axes: Use all set them, and said the parameters restored."""
    from krea_desktop.api.record import SweepAxis, SweepTag

    axes = (SweepAxis("seed", (1, 2)), SweepAxis("creativity", ("raw", "high")))
    sheet = make_image("a fox in snow", "4:3", seed=2785141677, creativity="medium")
    sheet = dataclasses.replace(sheet, record=sheet.record.replace(sweep=SweepTag("sw1", axes)))
    fill(data_dir, [sheet])
    w = make_window()
    w.prompt_panel.setSeed(99)
    w.prompt_panel.creativityCombo.setCurrentIndex(w.prompt_panel.creativityCombo.findData("raw"))
    select(w, 0)
    w.gallery_actions.use_all_action.trigger()
    assert w.prompt_panel.prompt() == "a fox in snow" and w.ratio_bar.ratio() == "4:3"
    assert w.prompt_panel.seed() == 99  # the axes' settings stay as they were
    assert w.prompt_panel.creativityCombo.currentData() == "raw"


def test_use_all_parameters_of_a_sheet_that_swept_a_reference_keeps_its_direction_and_says_what_it_kept(
    qtbot: QtBot, data_dir: Path, make_window: Any, refs_dir: Path
) -> None:
    """A sheet that swept a reference from −1.5 to −0.5 (away from it, in every cell) put it
    back at +0.70, toward it, and said only "Parameters restored"; so too the seed it swept:
    the one in the window stayed, and nothing said so."""
    from krea_desktop.api.record import SweepAxis, SweepTag

    refs = [{"image": "u1", "strength": -1.5, "source": str(refs_dir / "red.png")}]
    axes = (SweepAxis("ref1", (-1.5, -1.0, -0.5)), SweepAxis("seed", (1, 2)))
    sheet = make_image("a fox in snow", "4:3", seed=5, references=refs)
    fill(data_dir, [dataclasses.replace(sheet, record=sheet.record.replace(sweep=SweepTag("sw1", axes)))])
    w = make_window()
    w.prompt_panel.setSeed(99)
    select(w, 0)
    w.gallery_actions.use_all_action.trigger()
    w.tray.wait_for_loads()
    qtbot.waitUntil(lambda: w.tray.count() == 1 and not w.tray.isBusy())
    assert [r.strength for r in w.tray.references()] == [-1.0]  # the middle of its row: still away
    assert w.prompt_panel.seed() == 99
    said = w.message_banner.label.text()
    assert said.startswith("Parameters restored from “a fox in snow”; its cells differ in seed, so yours was kept;")
    assert said.endswith("; reference 1's strength varied across the sheet, so it is −1.00, the middle of its row.")


def test_use_all_parameters_says_each_value_it_could_not_restore(
    qtbot: QtBot, data_dir: Path, make_window: Any, refs_dir: Path, tmp_path: Path
) -> None:
    """Strengths beyond −2 to +2 came back as +0.70, a seed, a number of images and a
    quality the model does not take were left as they were, all under "Parameters
    restored", and the next batch used the window's values, not the image's."""
    w = make_window()
    panel = w.prompt_panel
    panel.setSeed(42)
    panel.countSpin.setValue(3)
    panel.qualitySpin.setValue(80)
    record = GenerationRecord(
        prompt="a lighthouse",
        ratio="1:1",
        seed=-5,
        number_results=50,
        output_quality=10,
        references=(
            ReferenceRecord("u1", None, str(refs_dir / "red.png")),  # −2.5 in the file: not a strength
            ReferenceRecord("u2", -1.0, str(refs_dir / "blue.png")),
        ),
    )
    w.gallery_actions.recall.apply_record(record, "x.png")
    w.tray.wait_for_loads()
    qtbot.waitUntil(lambda: w.tray.count() == 2 and not w.tray.isBusy())
    assert [r.strength for r in w.tray.references()] == [0.7, -1.0]
    assert (panel.seed(), panel.countSpin.value(), panel.qualitySpin.value()) == (42, 3, 80)
    assert w.message_banner.label.text() == (
        "Parameters restored from “a lighthouse”; its number of images (50), seed (-5) and quality (10) are "
        "beyond Krea 2 Medium's, so yours were kept; the strength of reference 1 is not known, so it is +0.70."
    )
    # Another tool's image with a random seed (-1): no seed of its own to restore.
    path = tmp_path / "a1111.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a red fox\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: -1, Size: 832x1216")
    Image.new("RGB", (832, 1216)).save(path, pnginfo=info)
    record = metadata.read_record(path)
    assert record is not None and record.seed is None
    w.gallery_actions.recall.apply_record(record, path.name)
    assert panel.seed() == 42 and "; it has no recorded seed, so the seed is as it was" in w.message_banner.label.text()


def test_use_all_parameters_of_a_file_that_names_none_of_its_references_leaves_the_tray(
    qtbot: QtBot, data_dir: Path, make_window: Any, refs_dir: Path, tmp_path: Path
) -> None:
    """A file of ours that kept only its parameters line ("References: 2"): the recall
    emptied the tray and said nothing of the two references."""
    with Library(tmp_path / "other") as other:
        refs = [
            {"image": "u1", "strength": 1.2, "source": "/elsewhere/a.png"},
            {"image": "u2", "strength": -0.8, "source": "/elsewhere/b.png"},
        ]
        made = other.save(make_image("a harbour with two references", seed=9, references=refs))
        with Image.open(made.path) as kept:
            line = kept.info["parameters"]
            info = PngImagePlugin.PngInfo()
            info.add_text("parameters", line)
            shared = tmp_path / "shared.png"
            kept.save(shared, pnginfo=info)
    assert "References: 2" in line
    record = metadata.read_record(shared)
    assert record is not None and record.references == ()
    w = make_window()
    w.tray.add_reference(refs_dir / "red.png", 1.0)
    w.tray.wait_for_loads()
    qtbot.waitUntil(lambda: w.tray.count() == 1 and not w.tray.isBusy())
    w.gallery_actions.recall.apply_record(record, shared.name)
    assert w.prompt_panel.prompt() == "a harbour with two references" and w.prompt_panel.seed() == 9
    assert [r.strength for r in w.tray.references()] == [1.0]
    assert w.message_banner.label.text().endswith(
        "; it was made with 2 references its file does not name, so the tray is as it was."
    )


def test_use_prompt_and_use_seed(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    fill(data_dir, [make_image("older", seed=11), make_image("newer prompt", seed=22)])
    w = make_window()
    w.prompt_panel.setPrompt("something else")
    w.prompt_panel.setSeed(None)
    select(w, 0)
    w.gallery_actions.use_prompt_action.trigger()
    assert w.prompt_panel.prompt() == "newer prompt"
    assert w.prompt_panel.seed() is None
    select(w, 1)
    w.gallery_actions.use_seed_action.trigger()
    assert w.prompt_panel.seed() == 11
    assert w.prompt_panel.prompt() == "newer prompt"


@pytest.mark.parametrize(("action", "strength"), [("toward_action", TOWARD), ("away_action", AWAY)])
def test_add_as_reference_toward_or_away(
    qtbot: QtBot, data_dir: Path, make_window: Any, action: str, strength: float
) -> None:
    fill(data_dir, [make_image("a", colour=(200, 0, 0)), make_image("b", colour=(0, 200, 0))])
    w = make_window()
    select(w, 0, 1)
    getattr(w.gallery_actions, action).trigger()
    w.tray.wait_for_loads()
    qtbot.waitUntil(lambda: w.tray.count() == 2 and not w.tray.isBusy())
    assert [r.strength for r in w.tray.references()] == [strength, strength]


def test_images_that_do_not_fit_in_the_tray_are_counted_in_the_message(
    qtbot: QtBot, data_dir: Path, make_window: Any, refs_dir: Path
) -> None:
    fill(data_dir, [make_image(f"i{k}", colour=(40 * k, 0, 0)) for k in range(3)])
    w = make_window()
    for k in range(9):  # nine different images: the tray takes an image once
        Image.new("RGB", (40, 30), (10, 20 * k, 10)).save(refs_dir / f"ref{k}.png")
        w.tray.add_reference(refs_dir / f"ref{k}.png", 0.5)
    w.tray.wait_for_loads()
    qtbot.waitUntil(lambda: w.tray.count() == 9 and not w.tray.isBusy())
    select(w, 0, 1, 2)
    w.gallery_actions.toward_action.trigger()
    w.tray.wait_for_loads()
    qtbot.waitUntil(lambda: w.tray.count() == 10 and not w.tray.isBusy())
    assert w.message_banner.label.text() == "Only 1 of 3 images was added: the tray holds 10."


def test_copy_puts_pixels_and_the_file_on_the_clipboard(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    (entry,) = fill(data_dir, [make_image("copy me", colour=(10, 220, 30))])
    w = make_window()
    QGuiApplication.clipboard().clear()  # not an earlier test's image
    select(w, 0)
    w.gallery.setFocus()
    qtbot.keyClick(w.gallery, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(
        lambda: QGuiApplication.clipboard().mimeData() is not None and QGuiApplication.clipboard().mimeData().hasImage()
    )
    mime = QGuiApplication.clipboard().mimeData()
    image = QGuiApplication.clipboard().image()
    assert image.width() == 64 and QColorValue(image.pixel(5, 5)) == 10 + 220 + 30
    assert [u.toLocalFile() for u in mime.urls()] == [str(entry.path)]


@pytest.mark.parametrize("fmt", ["PNG", "JPG", "WEBP"])
def test_a_copied_picture_pasted_as_a_picture_keeps_its_parameters(
    qtbot: QtBot, data_dir: Path, make_window: Any, fmt: str
) -> None:
    """Programs that paste a picture, not a file, take the clipboard's PNG: a JPG's or a
    WEBP's was Qt's own, without the prompt, seed and references of the image."""
    from krea_desktop.library import metadata

    fill(data_dir, [make_image("a lighthouse at dusk", seed=42, fmt=fmt)])
    w = make_window()
    QGuiApplication.clipboard().clear()
    select(w, 0)
    w.gallery.setFocus()
    qtbot.keyClick(w.gallery, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: (m := QGuiApplication.clipboard().mimeData()) is not None and m.hasImage())
    png = bytes(QGuiApplication.clipboard().mimeData().data("image/png").data())
    assert metadata.sniff_format(png) == "PNG"
    record = metadata.read_record(png)
    assert record is not None and (record.prompt, record.seed) == ("a lighthouse at dusk", 42)


def test_copy_looks_for_the_files_beside_the_gui_thread_and_copies_those_on_disk(
    qtbot: QtBot, data_dir: Path, make_window: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thousands selected, or a slow drive: a stat per image on the GUI thread held the
    window (about a second for 20,000)."""
    entries = fill(data_dir, [make_image(f"copy {k}", colour=(10, 20 * k, 30)) for k in range(3)])
    w = make_window()
    entries[1].path.unlink()
    looked_on: list[bool] = []
    exists = Path.exists

    def watched(path: Path, *args: Any, **kwargs: Any) -> bool:
        if path.parent == data_dir / "images":
            looked_on.append(threading.current_thread() is threading.main_thread())
        return exists(path, *args, **kwargs)

    QGuiApplication.clipboard().clear()
    monkeypatch.setattr(Path, "exists", watched)
    select(w, 0, 1, 2)
    w.gallery_actions.copy_action.trigger()
    qtbot.waitUntil(
        lambda: (
            QGuiApplication.clipboard().mimeData() is not None and bool(QGuiApplication.clipboard().mimeData().urls())
        )
    )
    monkeypatch.setattr(Path, "exists", exists)
    urls = sorted(u.toLocalFile() for u in QGuiApplication.clipboard().mimeData().urls())
    assert urls == sorted([str(entries[0].path), str(entries[2].path)])
    assert looked_on and not any(looked_on)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_export_keeps_the_embedded_parameters(tmp_path: Path, library: Library, fmt: str) -> None:
    entry = library.save(
        make_image(
            "exported harbour",
            "4:3",
            seed=77,
            references=[{"image": "u1", "strength": -0.7, "source": "/somewhere/ref.png"}],
        )
    )
    target = export_image(entry, tmp_path / f"out.{fmt.lower()}", fmt)
    data = target.read_bytes()
    assert metadata.sniff_format(data) == ("JPG" if fmt == "JPEG" else fmt)
    with Image.open(target) as im:
        assert im.size == (64, 48)
    record = metadata.read_record(target)
    assert record is not None
    assert record.prompt == "exported harbour" and record.seed == 77 and record.ratio == "4:3"
    assert record.references[0].strength == -0.7


def test_export_of_a_missing_file_says_so(tmp_path: Path, library: Library) -> None:
    entry = library.save(make_image("gone"))
    entry.path.unlink()
    with pytest.raises(ExportError, match="no longer in the library folder"):
        export_image(entry, tmp_path / "x.png", "PNG")


def test_export_action_writes_off_the_gui_thread(
    qtbot: QtBot, data_dir: Path, make_window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(data_dir, [make_image("one"), make_image("two")])
    w = make_window()
    select(w, 0)
    monkeypatch.setattr(
        export.QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "picked.webp"), "WEBP image (*.webp)")
    )
    w.gallery_actions.export_action.trigger()
    qtbot.waitUntil(lambda: (tmp_path / "picked.webp").exists() and "Exported" in w.message_banner.label.text())
    exported = metadata.read_record(tmp_path / "picked.webp")
    assert exported is not None and exported.prompt == "two"
    out = tmp_path / "many"
    export_several(w, monkeypatch, out, 0, 1)
    qtbot.waitUntil(lambda: len(list(out.glob("*.png"))) == 2)


def test_reveal_opens_the_folder(data_dir: Path, make_window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    (entry,) = fill(data_dir, [make_image("where is it")])
    opened: list[str] = []
    monkeypatch.setattr(desktop, "open_url", lambda url: opened.append(url.toLocalFile()) or True)
    w = make_window()
    select(w, 0)
    w.gallery_actions.reveal_action.trigger()
    assert opened == [str(entry.path.parent)]


def test_favourite_toggles_with_f_and_the_filter_follows(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    entries = fill(data_dir, [make_image("a"), make_image("b"), make_image("c")])
    w = make_window()
    select(w, 0, 2)
    w.activateWindow()
    w.gallery.setFocus()
    qtbot.keyClick(w.gallery, Qt.Key.Key_F)  # written off the GUI thread
    qtbot.waitUntil(lambda: w.model.data(w.model.index(0), GalleryModel.EntryRole).favourite)
    assert {e.id for e in w.library.entries(favourites_only=True)} == {entries[2].id, entries[0].id}
    qtbot.mouseClick(w.filter_bar.favourites, Qt.MouseButton.LeftButton)
    assert w.model.rowCount() == 2
    select(w, 0)
    w.gallery_actions.favourite_action.trigger()  # unmark: it leaves the favourites view
    qtbot.waitUntil(lambda: w.model.rowCount() == 1)


def test_the_gallery_reached_with_tab_selects_the_image_it_frames(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    """Tab into the gallery framed the first image without selecting it: F, Delete and
    Ctrl+C, which act on the selection, did nothing."""
    entries = fill(data_dir, [make_image("a"), make_image("b"), make_image("c")])
    w = make_window()
    w.show()
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w)
    assert not w.gallery.selectionModel().hasSelection()
    w.gallery.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(lambda: w.gallery.hasFocus())
    assert w.gallery_actions.favourite_action.isEnabled()
    qtbot.keyClick(w.gallery, Qt.Key.Key_F)
    newest = entries[-1].id
    qtbot.waitUntil(lambda: w.library.get(newest) is not None and w.library.get(newest).favourite)  # type: ignore[union-attr]
    assert [e.id for e in w.library.entries(favourites_only=True)] == [newest]
    # Clicked into, it is the click that chooses; and a selection made is kept on the way back.
    select(w, 1)
    w.prompt_panel.promptEdit.setFocus()
    w.gallery.setFocus(Qt.FocusReason.BacktabFocusReason)
    qtbot.waitUntil(lambda: w.gallery.hasFocus())
    assert w.gallery_actions.selected_rows() == [1]


def test_f_favourites_the_image_shown_in_the_viewer_as_in_the_gallery_and_0_fits(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    entries = fill(data_dir, [make_image("older"), make_image("shown")])
    w = make_window()
    viewer = view_row(qtbot, w, 0)
    viewer.canvas.actual_size()
    qtbot.keyClick(viewer, Qt.Key.Key_F)  # written off the GUI thread
    assert not viewer.canvas.fitted  # F is not a zoom key
    qtbot.waitUntil(lambda: w.model.data(w.model.index(0), GalleryModel.EntryRole).favourite)
    assert {e.id for e in w.library.entries(favourites_only=True)} == {entries[1].id}
    assert viewer.favourite_button.text().startswith("★")
    assert "(F)" in viewer.favourite_button.toolTip() and "(0)" in viewer.fit_button.toolTip()
    qtbot.keyClick(viewer, Qt.Key.Key_0)
    assert viewer.canvas.fitted
    qtbot.keyClick(viewer, Qt.Key.Key_Right)  # the older image, not a favourite
    assert viewer.favourite_button.text().startswith("☆")
    qtbot.keyClick(viewer, Qt.Key.Key_Left)
    qtbot.keyClick(viewer, Qt.Key.Key_F)  # unmark: the button says so at once
    assert viewer.favourite_button.text().startswith("☆")
    qtbot.waitUntil(lambda: w.library.entries(favourites_only=True) == [])
    # Twice quickly, before the first write lands: marked, then unmarked, in that order.
    for _ in range(3):
        qtbot.keyClick(viewer, Qt.Key.Key_F)
        qtbot.keyClick(viewer, Qt.Key.Key_F)
    qtbot.keyClick(viewer, Qt.Key.Key_F)
    assert viewer.favourite_button.text().startswith("★")
    qtbot.waitUntil(lambda: {e.id for e in w.library.entries(favourites_only=True)} == {entries[1].id})
    assert shared_pool().waitForDone(5000)
    QApplication.processEvents()
    assert {e.id for e in w.library.entries(favourites_only=True)} == {entries[1].id}
    assert viewer.favourite_button.text().startswith("★")
    assert w.model.data(w.model.index(0), GalleryModel.EntryRole).favourite
    viewer.close()


def test_the_viewer_follows_its_rows_when_unmarking_empties_a_place_in_the_favourites(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    entries = fill(data_dir, [make_image("first"), make_image("second"), make_image("third")])
    w = make_window()
    select(w, 0, 1, 2)
    w.gallery_actions.favourite_action.trigger()
    qtbot.waitUntil(lambda: len(w.library.entries(favourites_only=True)) == 3)
    qtbot.mouseClick(w.filter_bar.favourites, Qt.MouseButton.LeftButton)
    select(w, 1)  # "second": rows are newest first
    w.gallery_actions.view_selected()
    viewer = w.gallery_actions.viewer
    assert viewer is not None and viewer.entry is not None and viewer.entry.id == entries[1].id
    qtbot.keyClick(viewer, Qt.Key.Key_F)  # unmarked: it leaves the favourites' rows
    qtbot.waitUntil(lambda: w.model.rowCount() == 2)
    qtbot.keyClick(viewer, Qt.Key.Key_Right)  # the older image, which took its place
    assert viewer.entry is not None and viewer.entry.id == entries[0].id
    assert viewer.windowTitle().endswith("image 2 of 2")
    # The picture, which keeps the focus, is named for a screen reader as the title is.
    assert viewer.canvas.accessibleName() == f"Image: {viewer.entry.prompt}"
    assert viewer.canvas.accessibleDescription() == "Image 2 of 2"
    qtbot.keyClick(viewer, Qt.Key.Key_Left)
    assert viewer.entry is not None and viewer.entry.id == entries[2].id
    viewer.show_entry(w.library.get(entries[1].id))  # back to it, and marked again
    qtbot.keyClick(viewer, Qt.Key.Key_F)
    qtbot.waitUntil(lambda: w.model.rowCount() == 3)  # it comes back among the favourites
    viewer.close()


def test_an_image_deleted_in_the_gallery_leaves_the_viewer_for_the_one_that_took_its_place(
    qtbot: QtBot, data_dir: Path, make_window: Any, no_trash: list[str]
) -> None:
    """The viewer went on showing a deleted image, and F there showed a star the index
    never kept (the row was gone)."""
    entries = fill(data_dir, [make_image("oldest"), make_image("shown"), make_image("newest")])
    w = make_window()
    select(w, 1)
    w.gallery_actions.view_selected()
    viewer = w.gallery_actions.viewer
    assert viewer is not None and viewer.entry is not None and viewer.entry.id == entries[1].id
    qtbot.waitUntil(viewer.canvas.has_image)
    select(w, 0, 1)  # the newest and the one shown, deleted from the gallery
    w.gallery_actions.delete_action.trigger()
    qtbot.waitUntil(lambda: w.model.rowCount() == 1)
    assert viewer.entry is not None and viewer.entry.id == entries[0].id  # the older one took its place
    qtbot.waitUntil(viewer.canvas.has_image)
    qtbot.keyClick(viewer, Qt.Key.Key_F)
    qtbot.waitUntil(lambda: [e.id for e in w.library.entries(favourites_only=True)] == [entries[0].id])
    assert viewer.favourite_button.text().startswith("★")
    select(w, 0)
    w.gallery_actions.delete_action.trigger()  # the last image: nothing left to show
    qtbot.waitUntil(lambda: w.model.rowCount() == 0)
    assert viewer.entry is None and not viewer.favourite_button.isEnabled()
    assert viewer.canvas.message() == "The gallery is empty." and viewer.windowTitle() == "The gallery is empty"
    viewer.close()


def test_the_viewer_with_every_image_filtered_out_says_so_not_that_the_gallery_is_empty(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    fill(data_dir, [make_image("first"), make_image("second")])
    w = make_window()
    select(w, 0)
    w.gallery_actions.favourite_action.trigger()
    qtbot.waitUntil(lambda: len(w.library.entries(favourites_only=True)) == 1)
    qtbot.mouseClick(w.filter_bar.favourites, Qt.MouseButton.LeftButton)
    select(w, 0)
    w.gallery_actions.view_selected()
    viewer = w.gallery_actions.viewer
    assert viewer is not None and viewer.entry is not None
    qtbot.keyClick(viewer, Qt.Key.Key_F)  # unmarked: the last favourite leaves the rows
    qtbot.waitUntil(lambda: w.model.rowCount() == 0)
    qtbot.keyClick(viewer, Qt.Key.Key_Right)
    said = "No image in the gallery matches the search or the filters"
    assert viewer.canvas.message() == said + ".", viewer.canvas.message()
    assert viewer.windowTitle() == said
    assert w.library.count() == 2
    viewer.close()


def test_delete_in_the_viewer_moves_the_shown_image_to_the_trash_and_ctrl_z_shows_it_again(
    qtbot: QtBot, data_dir: Path, make_window: Any, no_trash: list[str]
) -> None:
    entries = fill(data_dir, [make_image("older"), make_image("culled"), make_image("newer")])
    w = make_window()
    viewer = view_row(qtbot, w, 1)
    qtbot.keyClick(viewer, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: w.library.get(entries[1].id) is None)
    assert not entries[1].path.exists()
    assert viewer.entry is not None and viewer.entry.id == entries[0].id
    assert viewer.hint_label.text() == "Moved 1 image to the trash; Ctrl+Z brings it back."
    assert w.message_banner.action.text() == "Undo"
    qtbot.keyClick(viewer, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: w.library.get(entries[1].id) is not None)
    assert entries[1].path.exists() and no_trash == []
    qtbot.waitUntil(lambda: viewer.entry is not None and viewer.entry.id == entries[1].id)
    assert w.model.rowCount() == 3
    viewer.close()


def _on_a_shown_button(w: MainWindow) -> bool:
    from PySide6.QtWidgets import QToolButton

    return any(isinstance(o, QToolButton) and o.isVisible() for o in w.gallery_actions.view_action.associatedObjects())


def test_space_in_the_gallery_opens_the_current_image_as_its_tooltip_says(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    """Space did nothing in the gallery (Return and Enter opened the viewer): the View
    action's Space did not reach the view once the action was on the toolbar too."""
    fill(data_dir, [make_image(f"space {i}") for i in range(3)])
    w = make_window()
    w.resize(1600, 900)  # the toolbar shows every button, View's among them
    qtbot.waitUntil(lambda: _on_a_shown_button(w))
    w.gallery.setFocus()
    qtbot.keyClick(w.gallery, Qt.Key.Key_Home)
    qtbot.keyClick(w.gallery, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: w.gallery_actions.viewer is not None)
    viewer = w.gallery_actions.viewer
    assert viewer is not None and viewer.entry is not None and viewer.entry.prompt == "space 2"
    viewer.close()


def test_next_after_a_search_took_the_shown_image_out_goes_to_the_next_older_match(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    """Next went to the oldest match: the viewer stepped from the row the image had before
    the search (clamped to the last row of the matches)."""
    prompts = ["moth 0", "kite 1", "moth 2", "kite 3", "kite 4", "moth 5", "kite 6", "kite 7"]
    fill(data_dir, [make_image(p) for p in prompts])
    w = make_window()
    viewer = view_row(qtbot, w, 3)  # "kite 4"
    w.model.refresh(search="moth")  # newest first: moth 5, moth 2, moth 0
    assert viewer.windowTitle() == "kite 4 — not among the gallery's images now"
    assert viewer.prev_button.isEnabled() and viewer.next_button.isEnabled()
    qtbot.keyClick(viewer, Qt.Key.Key_Right)
    assert viewer.entry is not None and viewer.entry.prompt == "moth 2"
    assert viewer.windowTitle() == "moth 2 — image 2 of 3"
    w.model.refresh(search="moth 5 kite")  # nothing matches: the picture stays, and Next says so
    assert viewer.entry is not None and viewer.entry.prompt == "moth 2"
    assert not viewer.prev_button.isEnabled() and not viewer.next_button.isEnabled()
    w.model.refresh(search="kite")  # newest first: kite 7, 6, 4, 3, 1
    qtbot.keyClick(viewer, Qt.Key.Key_Left)
    assert viewer.entry is not None and viewer.entry.prompt == "kite 3"
    viewer.close()


def test_the_viewers_title_and_buttons_follow_images_arriving_while_it_is_open(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    """Before, the title kept "image 1 of 3" and Previous stayed off after a new image came
    in above the one shown (the Left key showed it all the same)."""
    fill(data_dir, [make_image(f"old {i}") for i in range(3)])
    w = make_window()
    viewer = view_row(qtbot, w, 0)
    assert viewer.windowTitle() == "old 2 — image 1 of 3" and not viewer.prev_button.isEnabled()
    w.model.add_entry(w.library.save(make_image("arrived")))
    assert viewer.windowTitle() == "old 2 — image 2 of 4" and viewer.prev_button.isEnabled()
    qtbot.keyClick(viewer, Qt.Key.Key_Left)
    assert viewer.entry is not None and viewer.entry.prompt == "arrived"
    viewer.close()


def test_undo_in_the_viewer_keeps_every_image_it_brought_back_selected(
    qtbot: QtBot, data_dir: Path, make_window: Any, no_trash: list[str]
) -> None:
    """The viewer showing the first image undo brought back made it the gallery's current
    image as a click would, which left the others unselected."""
    fill(data_dir, [make_image(f"kept {i}") for i in range(8)])
    w = make_window()
    viewer = view_row(qtbot, w, 6)
    select(w, 1, 3, 6)
    w.gallery_actions.delete_selected()
    qtbot.waitUntil(lambda: w.model.rowCount() == 5)
    qtbot.keyClick(viewer, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: w.model.rowCount() == 8)
    qtbot.waitUntil(lambda: viewer.entry is not None and viewer.row == 1)
    assert w.gallery.selected_rows() == [1, 3, 6]
    assert w.gallery.currentIndex().row() == 1
    viewer.close()


def test_delete_pressed_again_before_the_first_is_done_is_one_delete_and_one_undo(
    qtbot: QtBot, data_dir: Path, make_window: Any, no_trash: list[str]
) -> None:
    """Delete pressed twice quickly sent the same images twice: the second found them gone,
    said they "could not be moved to the trash", and left an empty step on the undo list,
    so the next Ctrl+Z brought back nothing."""
    entries = fill(data_dir, [make_image(f"twice {i}") for i in range(6)])
    w = make_window()
    said: list[str] = []
    w.message_banner.label.setText = lambda text: said.append(text)  # type: ignore[method-assign]
    select(w, 0, 2, 4)
    w.gallery_actions.delete_selected()
    w.gallery_actions.delete_selected()
    qtbot.waitUntil(lambda: w.model.rowCount() == 3)
    qtbot.wait(200)  # the second request's answer, if one were to come
    assert [t for t in said if "could not" in t] == []
    assert [len(b.entries) for b in w.gallery_actions.deleting.trash.batches] == [3]
    w.gallery_actions.undo_delete()
    qtbot.waitUntil(lambda: w.model.rowCount() == 6)
    assert all(e.path.exists() for e in entries)
    assert not w.gallery_actions.deleting.can_undo()


def one_deleted(qtbot: QtBot, data_dir: Path, make_window: Any, images: int) -> tuple[MainWindow, LibraryEntry]:
    """A window on ``images`` images, the newest deleted (its Undo on the undo list): the
    window and that image's entry."""
    entries = fill(data_dir, [make_image(f"undo race {i}") for i in range(images)])
    w = make_window()
    select(w, 0)
    w.gallery_actions.delete_selected()
    qtbot.waitUntil(lambda: w.model.rowCount() == images - 1)
    return w, next(e for e in entries if w.library.get(e.id) is None)


def test_undo_pressed_while_a_delete_is_under_way_brings_back_that_delete(
    qtbot: QtBot, data_dir: Path, make_window: Any, no_trash: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl+Z 50 ms after deleting 2,500 images brought back the one image deleted before
    ("Brought back 1 image."), and the 2,500 stayed deleted."""
    import threading

    from krea_desktop.library.trash import PendingTrash

    w, first = one_deleted(qtbot, data_dir, make_window, 4)
    go_on = threading.Event()
    real_delete = PendingTrash.delete

    def slow_delete(self: PendingTrash, chosen: Any) -> Any:
        go_on.wait(10)
        return real_delete(self, chosen)

    monkeypatch.setattr(PendingTrash, "delete", slow_delete)
    select(w, 0, 1)
    w.gallery_actions.delete_selected()
    w.gallery_actions.undo_action.trigger()  # the delete is not done yet
    qtbot.wait(100)
    assert w.library.get(first.id) is None  # not the delete before
    go_on.set()
    qtbot.waitUntil(lambda: w.model.rowCount() == 3 and w.library.count() == 3, timeout=10000)
    qtbot.wait(100)
    assert w.library.get(first.id) is None and w.library.count() == 3
    assert [len(b.entries) for b in w.gallery_actions.deleting.trash.batches] == [1]


def test_undo_pressed_while_many_selected_images_are_read_for_a_delete_brings_back_that_delete(
    qtbot: QtBot, data_dir: Path, make_window: Any, no_trash: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past FEW_ROWS the selection's entries are read off the GUI thread before the delete
    starts: an Undo in between found no delete under way and undid the one before."""
    import threading

    from krea_desktop.ui.gallery import actions

    monkeypatch.setattr(actions, "FEW_ROWS", 2)
    w, first = one_deleted(qtbot, data_dir, make_window, 6)
    go_on = threading.Event()
    real_get_many = type(w.library).get_many

    def slow_get_many(library: Any, ids: Any) -> Any:
        go_on.wait(10)
        return real_get_many(library, ids)

    monkeypatch.setattr(type(w.library), "get_many", slow_get_many)
    select(w, 0, 1, 2)  # more than FEW_ROWS: read first
    w.gallery_actions.delete_selected()
    w.gallery_actions.undo_action.trigger()  # the entries are still being read
    qtbot.wait(100)
    assert w.library.get(first.id) is None
    go_on.set()
    qtbot.waitUntil(lambda: w.model.rowCount() == 5 and w.library.count() == 5, timeout=10000)
    qtbot.wait(100)
    assert w.library.get(first.id) is None and w.library.count() == 5


def test_delete_pressed_three_times_in_the_viewer_deletes_the_shown_image_once(
    qtbot: QtBot, data_dir: Path, make_window: Any, no_trash: list[str]
) -> None:
    entries = fill(data_dir, [make_image("older"), make_image("culled"), make_image("newer")])
    w = make_window()
    viewer = view_row(qtbot, w, 1)
    for _ in range(3):
        viewer.delete_shown()  # before the first delete has come back
    qtbot.waitUntil(lambda: w.library.get(entries[1].id) is None)
    qtbot.wait(200)
    assert w.model.rowCount() == 2 and entries[0].path.exists() and entries[2].path.exists()
    assert [len(b.entries) for b in w.gallery_actions.deleting.trash.batches] == [1]
    qtbot.keyClick(viewer, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: w.model.rowCount() == 3)
    assert entries[1].path.exists()
    viewer.close()


def test_the_last_image_deleted_in_the_viewer_leaves_nothing_of_it_on_screen(
    qtbot: QtBot, data_dir: Path, make_window: Any, no_trash: list[str]
) -> None:
    entries = fill(data_dir, [make_image("a heron at dawn")])
    w = make_window()
    viewer = view_row(qtbot, w, 0)
    assert "a heron at dawn" in viewer.windowTitle() and viewer.prompt_label.text() == "a heron at dawn"
    qtbot.keyClick(viewer, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: w.library.get(entries[0].id) is None)
    qtbot.waitUntil(lambda: viewer.entry is None)
    assert "heron" not in viewer.windowTitle()
    assert viewer.prompt_label.text() == "" and viewer.facts_label.text() == ""
    assert not viewer.prev_button.isEnabled() and not viewer.next_button.isEnabled()
    viewer.close()


def test_a_new_image_given_a_deleted_images_id_shows_its_own_thumbnail_and_no_star_of_the_old(
    qtbot: QtBot, data_dir: Path, make_window: Any, no_trash: list[str]
) -> None:
    """The index gives the id of the newest image deleted to the next one saved: the
    gallery showed the deleted image's thumbnail on it, and the viewer its star."""
    fill(data_dir, [make_image(f"red {i}", seed=i, colour=(200, 0, 0)) for i in range(4)])
    w = make_window()
    wait_thumbnails(qtbot, w)
    select(w, 0)
    w.gallery_actions.view_selected()
    viewer = w.gallery_actions.viewer
    assert viewer is not None and viewer.entry is not None
    deleted = viewer.entry.id
    qtbot.waitUntil(viewer.canvas.has_image)
    qtbot.keyClick(viewer, Qt.Key.Key_F)
    qtbot.waitUntil(lambda: [e.id for e in w.library.entries(favourites_only=True)] == [deleted])
    qtbot.keyClick(viewer, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: w.model.rowCount() == 3)
    with Library(data_dir) as other:  # another process: `krea-desktop generate`
        new = other.save(make_image("green, new", seed=9, colour=(0, 200, 0)), created_at=T0 + timedelta(hours=1))
    assert new.id == deleted
    w.gallery_actions.refresh()
    qtbot.waitUntil(lambda: w.model.rowCount() == 4)
    wait_thumbnails(qtbot, w)
    shown = w.model.data(w.model.index(0), Qt.ItemDataRole.DecorationRole).toImage()
    assert centre_colour(shown) == pytest.approx((0, 200, 0), abs=8)
    qtbot.keyClick(viewer, Qt.Key.Key_Left)
    assert viewer.entry is not None and viewer.entry.prompt == "green, new"
    assert viewer.favourite_button.text().startswith("☆")
    viewer.close()


def test_unmarking_among_the_favourites_keeps_n_of_m_true(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    entries = fill(data_dir, [make_image(f"image {i}", seed=i) for i in range(8)])
    with Library(data_dir) as lib:
        lib.set_favourite([e.id for e in entries[-3:]], True)
    w = make_window()
    w.filter_bar.favourites.setChecked(True)
    qtbot.waitUntil(lambda: w.filter_bar.count_label.text() == "3 of 8")
    select(w, 0)
    w.gallery_actions.favourite_action.trigger()  # unmarked in the gallery
    qtbot.waitUntil(lambda: w.model.rowCount() == 2)
    qtbot.waitUntil(lambda: w.filter_bar.count_label.text() == "2 of 8")
    select(w, 0)
    w.gallery_actions.view_selected()
    viewer = w.gallery_actions.viewer
    assert viewer is not None
    qtbot.keyClick(viewer, Qt.Key.Key_F)  # and in the viewer
    qtbot.waitUntil(lambda: w.model.rowCount() == 1)
    qtbot.waitUntil(lambda: w.filter_bar.count_label.text() == "1 of 8")
    viewer.close()


def test_a_click_beside_the_parameters_leaves_the_arrow_keys_stepping_through_the_images(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    fill(data_dir, [make_image(f"image {i}", seed=i) for i in range(4)])
    w = make_window()
    viewer = view_row(qtbot, w, 0)
    viewer.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is viewer)
    panel = viewer.findChild(QWidget, "viewerMetadata")
    assert panel is not None
    area = panel.parentWidget().parentWidget()  # the scroll area's viewport, then the area
    qtbot.mouseClick(area, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    qtbot.mouseClick(panel, Qt.MouseButton.LeftButton, pos=QPoint(5, panel.height() - 5))
    target = QApplication.focusWidget() or viewer
    qtbot.keyClick(target, Qt.Key.Key_Right)
    assert viewer.row == 1
    qtbot.keyClick(QApplication.focusWidget() or viewer, Qt.Key.Key_Left)
    assert viewer.row == 0
    viewer.close()


def test_ctrl_z_in_the_viewer_with_nothing_deleted_says_so_there(
    qtbot: QtBot, data_dir: Path, make_window: Any, no_trash: list[str]
) -> None:
    fill(data_dir, [make_image("older"), make_image("newer")])
    w = make_window()
    select(w, 0)
    w.gallery_actions.view_selected()
    viewer = w.gallery_actions.viewer
    assert viewer is not None
    qtbot.keyClick(viewer, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert viewer.hint_label.text() == "There is nothing to undo."  # nothing was deleted, nothing is in a trash
    assert not w.message_banner.isVisible() or "undo" not in w.message_banner.label.text()
    viewer.close()


def test_delete_in_the_viewer_of_a_file_from_outside_the_library_says_why_nothing_happened(
    qtbot: QtBot, data_dir: Path, tmp_path: Path, make_window: Any
) -> None:
    outside = tmp_path / "outside.png"
    Image.new("RGB", (32, 32), (0, 90, 200)).save(outside)
    w = make_window()
    w.open_images([outside])
    qtbot.waitUntil(lambda: w.file_drops.file_viewer is not None)
    viewer = w.file_drops.file_viewer
    assert viewer is not None
    qtbot.waitUntil(viewer.canvas.has_image)
    qtbot.keyClick(viewer, Qt.Key.Key_Delete)
    assert viewer.hint_label.text() == NOT_IN_LIBRARY_DELETE
    assert outside.exists()
    viewer.close()


def test_a_file_from_outside_the_library_gone_while_viewed_is_said_gone_from_its_folder_and_not_copied(
    qtbot: QtBot, data_dir: Path, tmp_path: Path, make_window: Any
) -> None:
    """It was said to be "no longer in the library folder", where it had never been, and
    Ctrl+C put its address on the clipboard with "Copied to the clipboard."."""
    downloads = tmp_path / "Downloads"
    downloads.mkdir()
    a, b = downloads / "a.png", downloads / "b.png"
    Image.new("RGB", (30, 20), (255, 0, 0)).save(a)
    Image.new("RGB", (30, 20), (0, 255, 0)).save(b)
    w = make_window()
    w.open_images([a, b])
    qtbot.waitUntil(lambda: w.file_drops.file_viewer is not None)
    viewer = w.file_drops.file_viewer
    assert viewer is not None
    qtbot.waitUntil(viewer.canvas.has_image)
    QGuiApplication.clipboard().clear()
    b.unlink()  # deleted, or moved, while the viewer is open
    qtbot.keyClick(viewer, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: "no longer" in viewer.canvas.message())
    assert viewer.canvas.message() == f"The file b.png is no longer in {downloads}."
    qtbot.keyClick(viewer, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: "nothing was copied" in viewer.hint_label.text())  # looked at beside the GUI thread
    assert viewer.hint_label.text() == f"The file b.png is no longer in {downloads}, so nothing was copied."
    mime = QGuiApplication.clipboard().mimeData()
    assert mime is None or not mime.urls()
    viewer.close()


def test_a_file_from_outside_the_library_copied_in_the_viewer_is_a_picture_with_what_it_carries(
    qtbot: QtBot, tmp_path: Path, make_window: Any
) -> None:
    """Ctrl+C put only the file's address on the clipboard, with "Copied to the clipboard.":
    programs that paste a picture (an editor, a browser, a chat) got nothing."""
    from krea_desktop.library import metadata

    w = make_window()
    outside = tmp_path / "from-a-friend.jpg"
    (entry,) = fill(tmp_path / "theirs", [make_image("a lighthouse at dusk", seed=7, fmt="JPG")])
    outside.write_bytes(entry.path.read_bytes())
    w.open_images([outside])
    qtbot.waitUntil(lambda: w.file_drops.file_viewer is not None)
    viewer = w.file_drops.file_viewer
    assert viewer is not None
    qtbot.waitUntil(viewer.canvas.has_image)
    QGuiApplication.clipboard().clear()
    qtbot.keyClick(viewer, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: viewer.hint_label.text() == "Copied to the clipboard.")
    mime = QGuiApplication.clipboard().mimeData()
    assert mime is not None and mime.hasImage() and [u.toLocalFile() for u in mime.urls()] == [str(outside)]
    record = metadata.read_record(bytes(mime.data("image/png").data()))
    assert record is not None and (record.prompt, record.seed) == ("a lighthouse at dusk", 7)
    viewer.close()


def test_a_messages_undo_or_dismiss_pressed_from_the_keyboard_gives_the_focus_back_to_the_gallery(
    qtbot: QtBot, data_dir: Path, make_window: Any, no_trash: list[str]
) -> None:
    """The message hid with the focus on its button, and Qt handed the focus to the ratio
    buttons: the next arrow key changed the ratio of the next generation."""
    fill(data_dir, [make_image(f"d{i}") for i in range(4)])
    w = make_window()
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w)
    ratio = w.ratio_bar.ratio()
    banner = w.message_banner
    other = QWidget()
    qtbot.addWidget(other)
    other.show()
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w)
    for button in ("action", "close_button"):  # Undo, then Dismiss
        select(w, 0)
        w.gallery.setFocus()
        qtbot.waitUntil(lambda: QApplication.focusWidget() is w.gallery)
        qtbot.keyClick(w.gallery, Qt.Key.Key_Delete)
        qtbot.waitUntil(lambda: banner.isVisible() and banner.action.text() == "Undo")
        pressed = getattr(banner, button)
        pressed.setFocus()  # as Tab brings it there
        qtbot.waitUntil(lambda: QApplication.focusWidget() is pressed)  # noqa: B023
        if button == "close_button":  # another window in between: the focus comes back from nowhere
            other.activateWindow()
            qtbot.waitUntil(lambda: QApplication.activeWindow() is other)
            w.activateWindow()
            qtbot.waitUntil(lambda: QApplication.focusWidget() is pressed)  # noqa: B023
        qtbot.keyClick(pressed, Qt.Key.Key_Space)
        qtbot.waitUntil(lambda: not banner.isVisible() or banner.action.text() != "Undo")
        assert QApplication.focusWidget() is w.gallery, QApplication.focusWidget()
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Right)
        assert w.ratio_bar.ratio() == ratio
    qtbot.waitUntil(lambda: w.model.rowCount() == 3)  # one brought back by Undo, one deleted


def test_delete_moves_files_aside_and_undo_brings_them_back(
    qtbot: QtBot, data_dir: Path, make_window: Any, no_trash: list[str]
) -> None:
    entries = fill(data_dir, [make_image(f"d{i}") for i in range(4)])
    w = make_window()
    select(w, 0, 1)  # the two newest
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w)  # where shortcuts go
    w.gallery.setFocus()
    qtbot.keyClick(w.gallery, Qt.Key.Key_Delete)
    gone = [entries[3], entries[2]]
    qtbot.waitUntil(lambda: w.model.rowCount() == 2)
    assert w.library.count() == 2
    assert not any(e.path.exists() for e in gone)
    held = list((data_dir / ".trash-pending").rglob("*.png"))
    assert sorted(p.name for p in held) == sorted(e.file_name for e in gone)
    assert w.message_banner.action.text() == "Undo"
    assert no_trash == []
    qtbot.keyClick(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: w.model.rowCount() == 4)
    assert w.library.count() == 4
    assert all(e.path.exists() for e in gone)
    assert not list((data_dir / ".trash-pending").rglob("*.png"))
    restored = w.library.get(entries[3].id)
    assert restored is not None and restored.prompt == "d3" and not restored.missing
    # Undone with Ctrl+Z, the delete's message and its Undo do not come back once the
    # "Brought back" has gone.
    banner = w.message_banner
    assert banner.label.text() == "Brought back 2 images."
    banner.dismiss()
    assert not banner.isVisible(), banner.label.text()
    # the banner's button undoes too
    select(w, 3)
    w.gallery_actions.delete_action.trigger()
    # The rows go on a worker; the message with its Undo comes once the window hears of it.
    qtbot.waitUntil(lambda: banner.label.text() == "Moved 1 image to the trash." and banner.action.isVisibleTo(banner))
    assert w.library.count() == 3
    banner.action.click()
    qtbot.waitUntil(lambda: w.library.count() == 4)
    assert no_trash == []


def test_deleting_images_whose_files_are_gone_says_so_rather_than_moved_to_the_trash(
    qtbot: QtBot, data_dir: Path, make_window: Any, no_trash: list[str]
) -> None:
    entries = fill(data_dir, [make_image(f"g{i}") for i in range(3)])
    w = make_window()
    banner = w.message_banner
    entries[2].path.unlink()  # removed outside the app while it runs
    select(w, 0)
    w.gallery_actions.delete_action.trigger()
    qtbot.waitUntil(lambda: w.library.count() == 2)
    qtbot.waitUntil(lambda: banner.label.text() == "Removed 1 image whose file was already gone.")
    assert banner.action.text() == "Undo"
    entries[1].path.unlink()
    select(w, 0, 1)  # one file gone, one there
    w.gallery_actions.delete_action.trigger()
    qtbot.waitUntil(lambda: w.library.count() == 0)
    qtbot.waitUntil(
        lambda: banner.label.text() == "Moved 1 image to the trash and removed 1 whose file was already gone."
    )
    assert not entries[0].path.exists()
    assert no_trash == []


def test_the_viewer_says_an_image_whose_file_was_gone_was_removed_not_moved_to_the_trash(
    qtbot: QtBot, data_dir: Path, make_window: Any, no_trash: list[str]
) -> None:
    entries = fill(data_dir, [make_image(f"g{i}") for i in range(3)])
    w = make_window()
    viewer = view_row(qtbot, w, 0)
    assert viewer.entry is not None
    next(e for e in entries if e.id == viewer.entry.id).path.unlink()  # removed outside the app
    w.gallery_actions.delete_action.trigger()
    qtbot.waitUntil(lambda: w.library.count() == 2)
    qtbot.waitUntil(lambda: "already gone" in viewer.hint_label.text())
    assert viewer.hint_label.text() == "Removed 1 image whose file was already gone; Ctrl+Z brings it back."
    viewer.close()


def test_an_undo_cut_short_by_a_kill_is_finished_when_the_window_opens(
    qtbot: QtBot, data_dir: Path, make_window: Any, no_trash: list[str]
) -> None:
    import subprocess
    import sys

    (entry,) = fill(data_dir, [make_image("asked back")])
    with Library(data_dir) as lib:
        lib.remove([entry.id])
    # As a killed Undo left it: the file still held in the batch of a process that has
    # ended, marked as being undone, its row not yet back.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    batch = data_dir / trash.PENDING_FOLDER / f"batch-{int(dead.stdout)}-x1y2z3"
    batch.mkdir(parents=True)
    (batch / trash.UNDOING).touch()
    entry.path.rename(batch / entry.file_name)
    w = make_window()
    qtbot.waitUntil(lambda: w.model.rowCount() == 1, timeout=10_000)
    assert entry.path.is_file() and no_trash == []
    assert w.model.entry_at(0).prompt == "asked back"


def test_the_words_of_a_delete_count_what_moved_what_was_gone_and_what_was_kept() -> None:
    from krea_desktop.ui.gallery.actions import _deleted_text

    assert _deleted_text(3, 3, 0) == "Moved 3 images to the trash."
    assert _deleted_text(2, 2, 1) == "Moved 2 images to the trash; 1 could not be moved and was kept."
    assert _deleted_text(4, 1, 0) == "Moved 1 image to the trash and removed 3 whose files were already gone."
    kept = "Removed 2 images whose files were already gone; 2 could not be moved and were kept."
    assert _deleted_text(2, 0, 2) == kept


class HeldJobs:
    """A runner whose jobs wait until the test runs them, in the order it chooses."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Any, Any, Any]] = []

    def submit(self, work: Any, done: Any, failed: Any = None) -> None:
        self.jobs.append((work, done, failed))

    def run(self, index: int) -> None:
        work, done, failed = self.jobs.pop(index)
        try:
            result = work()
        except Exception as exc:
            failed(exc)
        else:
            done(result)


@pytest.mark.parametrize("delete_first", [True, False])
def test_f_then_delete_then_undo_brings_the_image_back_marked_whichever_write_lands_first(
    qtbot: QtBot, data_dir: Path, make_window: Any, delete_first: bool
) -> None:
    entries = fill(data_dir, [make_image(f"f{i}") for i in range(2)])
    w = make_window()
    held = HeldJobs()
    w.gallery_actions.runner = held
    select(w, 0)  # the newest
    w.gallery_actions.favourite_action.trigger()
    w.gallery_actions.delete_action.trigger()
    assert len(held.jobs) == 2  # the favourite's write, then the delete
    held.run(1 if delete_first else 0)
    held.run(0)
    assert w.library.get(entries[1].id) is None
    w.gallery_actions.undo_delete()
    held.run(0)
    back = w.library.get(entries[1].id)
    assert back is not None and back.favourite
    assert w.model.data(w.model.index(0), GalleryModel.EntryRole).favourite


def test_undo_brings_back_the_newest_image_after_another_has_come(
    qtbot: QtBot, data_dir: Path, make_window: Any, no_trash: list[str]
) -> None:
    """A new image takes the id of the newest one deleted (SQLite's way): Undo said
    "Brought back 1 image." and the gallery did not show it until a restart."""
    entries = fill(data_dir, [make_image(f"d{i}") for i in range(2)])
    w = make_window()
    select(w, 0)  # the newest
    w.gallery_actions.delete_action.trigger()
    banner = w.message_banner
    qtbot.waitUntil(lambda: banner.label.text() == "Moved 1 image to the trash." and banner.action.isVisibleTo(banner))
    newer = w.library.save(make_image("made after the delete"))
    assert newer.id == entries[1].id
    w.model.add_entry(newer)
    banner.action.click()
    qtbot.waitUntil(lambda: w.model.rowCount() == 3)
    assert [w.model.entry_at(r).prompt for r in range(3)] == ["made after the delete", "d1", "d0"]
    assert [w.model.entry_at(r).prompt for r in w.gallery.selected_rows()] == ["d1"]
    assert banner.label.text() == "Brought back 1 image."


def test_an_image_a_delete_cut_short_left_aside_is_shown_again_as_it_is(
    qtbot: QtBot, data_dir: Path, make_window: Any, no_trash: list[str]
) -> None:
    (entry,) = fill(data_dir, [make_image("left aside")])
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    aside = data_dir / trash.PENDING_FOLDER / f"batch-{int(ended.stdout)}-0"  # a process that has ended
    aside.mkdir(parents=True)
    entry.path.rename(aside / entry.file_name)  # killed before the row left the index
    with Library(data_dir) as lib:
        lib.reconcile()  # a check of the folder that came first: "file missing"
        assert lib.get(entry.id).missing
    w = make_window()
    qtbot.waitUntil(lambda: entry.path.is_file())  # put back at the start
    qtbot.waitUntil(lambda: not w.model.entry_at(0).missing)
    assert not w.library.get(entry.id).missing and no_trash == []


def test_deleted_files_reach_the_system_trash_after_the_undo_window_and_on_exit(
    qtbot: QtBot, data_dir: Path, make_window: Any, no_trash: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = fill(data_dir, [make_image(f"t{i}") for i in range(3)])
    monkeypatch.setattr(deleting, "UNDO_WINDOW_MS", 50)
    w = make_window()
    select(w, 0)
    w.gallery_actions.delete_action.trigger()
    qtbot.waitUntil(lambda: no_trash == [entries[2].file_name])
    assert not w.gallery_actions.undo_action.isEnabled()
    monkeypatch.setattr(deleting, "UNDO_WINDOW_MS", 60_000)
    select(w, 0)
    w.gallery_actions.delete_action.trigger()
    w.close()
    assert no_trash == [entries[2].file_name, entries[1].file_name]
    assert not list((data_dir / ".trash-pending").rglob("*.png"))
    assert not w.library.thumb_path(entries[1].image_uuid, 256).exists()


def test_files_held_by_a_crashed_run_go_to_the_trash_at_the_next_start(
    qtbot: QtBot, data_dir: Path, make_window: Any, no_trash: list[str]
) -> None:
    (entry,) = fill(data_dir, [make_image("crash")])
    # A run that deleted it and then died before the undo window closed: its own process.
    code = (
        "from krea_desktop.library.store import Library\n"
        "from krea_desktop.library.trash import PendingTrash\n"
        f"lib = Library({str(data_dir)!r}); PendingTrash(lib).delete([lib.get({entry.id})]); lib.close()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
    assert not entry.path.exists()
    make_window()
    qtbot.waitUntil(lambda: no_trash == [entry.file_name])


def test_compare_two_images_zooms_and_pans_both(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    fill(data_dir, [make_image("left", colour=(200, 0, 0)), make_image("right", "16:9", colour=(0, 0, 200))])
    w = make_window()
    select(w, 0)
    assert not w.gallery_actions.compare_action.isEnabled()
    select(w, 0, 1)
    assert w.gallery_actions.compare_action.isEnabled()
    w.gallery_actions.compare_action.trigger()
    dialog = w.gallery_actions.compare_dialog
    assert dialog is not None
    qtbot.waitUntil(lambda: all(c.has_image() for c in dialog.canvases))
    left, right = dialog.canvases
    left.set_scale(3.0, QPointF(10, 10))
    assert right.scale == pytest.approx(3.0) and not right.fitted
    assert (right.centre().x(), right.centre().y()) == pytest.approx((left.centre().x(), left.centre().y()))
    right.pan_by(-30, 12)
    assert left.centre().x() == pytest.approx(right.centre().x())
    left.fit()
    assert right.fitted
    dialog.close()


def test_context_menu_and_toolbar_hold_the_actions(data_dir: Path, make_window: Any) -> None:
    fill(data_dir, [make_image("menu")])
    w = make_window()
    texts = {a.text() for a in w.gallery_toolbar.actions()}
    ga = w.gallery_actions
    for action in (
        ga.view_action,
        ga.use_all_action,
        ga.toward_action,
        ga.away_action,
        ga.favourite_action,
        ga.delete_action,
        ga.export_action,
        ga.compare_action,
        ga.refresh_action,
    ):
        assert action.text() in texts
    from PySide6.QtWidgets import QMenu

    menu = QMenu()
    ga.fill_menu(menu)
    in_menu = {a for a in menu.actions() if not a.isSeparator()}
    assert {ga.use_prompt_action, ga.use_seed_action, ga.copy_action, ga.reveal_action} <= in_menu
    assert not ga.delete_action.isEnabled()
    select(w, 0)
    assert ga.delete_action.isEnabled()


def test_a_floating_message_is_not_repeated_in_the_status_bar(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    fill(data_dir, [make_image("alone")])
    w = make_window()
    select(w, 0)
    w.gallery_actions.lineage_action.trigger()  # an image with no lineage says so
    said = "This image was not made from a library image, and none was made from it yet."
    qtbot.waitUntil(lambda: w.message_banner.isVisible() and w.message_banner.label.text() == said)
    assert w.statusBar().currentMessage() == ""
    w.gallery_actions.refresh_action.trigger()  # a passing note: the status bar's alone
    qtbot.waitUntil(lambda: w.statusBar().currentMessage().startswith("Gallery refreshed"))
    assert w.message_banner.label.text() == said


def test_space_opens_the_viewer_and_ctrl_f_focuses_search(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    fill(data_dir, [make_image("view me")])
    w = make_window()
    select(w, 0)
    w.activateWindow()
    w.gallery.setFocus()
    qtbot.keyClick(w.gallery, Qt.Key.Key_Space)
    viewer = w.gallery_actions.viewer
    assert viewer is not None and viewer.isVisible()
    qtbot.waitUntil(viewer.canvas.has_image)
    viewer.close()
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w)
    w.gallery.setFocus()
    qtbot.keyClick(w.gallery, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.focusWidget() is w.findChild(QLineEdit, "gallerySearch")


# --- 5. drag and drop -----------------------------------------------------------------------------------


def test_drag_out_carries_ids_file_urls_and_pixels(data_dir: Path, make_window: Any) -> None:
    entries = fill(data_dir, [make_image("one", colour=(1, 2, 3)), make_image("two")])
    w = make_window()
    mime = w.model.mimeData([w.model.index(1)])
    assert decode_library_ids(bytes(mime.data(LIBRARY_IDS_MIME).data())) == [entries[0].id]
    assert [u.toLocalFile() for u in mime.urls()] == [str(entries[0].path)]
    assert mime.hasImage()
    image = mime.imageData()
    assert isinstance(image, QImage) and image.width() == 64
    both = w.model.mimeData([w.model.index(0), w.model.index(1)])
    assert [u.toLocalFile() for u in both.urls()] == [str(entries[1].path), str(entries[0].path)]
    assert w.model.supportedDragActions() == Qt.DropAction.CopyAction


def test_drag_from_the_gallery_into_the_tray(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    fill(data_dir, [make_image("reuse me")])
    w = make_window()
    mime = w.model.mimeData([w.model.index(0)])
    assert drop(w.tray, mime).isAccepted()
    w.tray.wait_for_loads()
    qtbot.waitUntil(lambda: w.tray.count() == 1 and not w.tray.isBusy())


def test_an_image_brought_into_the_tray_again_is_named_as_the_tray_names_it(
    qtbot: QtBot, data_dir: Path, make_window: Any, tmp_path: Path
) -> None:
    """Not by the file behind it: a gallery image's is its id, a kept copy's its content
    hash. And where it is in the tray."""
    fill(data_dir, [make_image("reuse me")])
    w = make_window()
    said: list[str] = []
    w.tray.message.connect(said.append)

    def dropped(mime: QMimeData) -> None:
        drop(w.tray, mime)
        w.tray.wait_for_loads()
        qtbot.waitUntil(lambda: not w.tray.isBusy())

    outside = tmp_path / "from-a-friend.png"
    Image.new("RGB", (40, 30), (9, 90, 9)).save(outside)
    dropped(mime_of(outside))
    dropped(w.model.mimeData([w.model.index(0)]))
    assert w.tray.count() == 2 and said == []
    dropped(w.model.mimeData([w.model.index(0)]))
    assert said == ["That gallery image is already in the tray, as reference 2."]
    dropped(mime_of(w.tray.model[0].path))  # the tray's own copy of the first
    assert said[-1] == "“from-a-friend.png” is already in the tray, as reference 1."
    assert w.tray.count() == 2


def drop(target: QWidget, mime: QMimeData) -> QDropEvent:
    """What a drag that ends on ``target`` delivers: an enter (which picks the receiver), then the drop."""
    centre = target.rect().center()
    QApplication.sendEvent(target, drag_event(QDragEnterEvent, centre.x(), centre.y(), mime))
    event = drag_event(QDropEvent, centre.x(), centre.y(), mime)
    QApplication.sendEvent(target, event)
    assert isinstance(event, QDropEvent)
    return event


def mime_of(*paths: Path) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def _drop_on_window(w: MainWindow, mime: QMimeData) -> QDropEvent:
    return drop(w.gallery.viewport(), mime)  # the gallery takes no drops: the window does


def test_dropping_an_image_with_parameters_offers_to_restore_them(
    qtbot: QtBot, make_window: Any, tmp_path: Path, library: Library
) -> None:
    entry = library.save(make_image("a dropped heron", "2:3", seed=99, creativity="low"))
    outside = tmp_path / "from-a-friend.png"
    outside.write_bytes(entry.path.read_bytes())
    w = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(outside))])
    assert _drop_on_window(w, mime).isAccepted()
    qtbot.waitUntil(lambda: w.message_banner.action.text() == "Restore parameters" and w.message_banner.isVisible())
    assert "a dropped heron" in w.message_banner.label.text()
    assert w.prompt_panel.prompt() != "a dropped heron"  # offered, not done
    w.message_banner.action.click()
    assert w.prompt_panel.prompt() == "a dropped heron"
    assert w.prompt_panel.seed() == 99 and w.ratio_bar.ratio() == "2:3"


def generated_and_plain(library: Library, folder: Path) -> tuple[Path, Path]:
    """An image with parameters (a copy of a library image) and one without, outside the library."""
    entry = library.save(make_image("a dropped heron", "2:3", seed=99))
    outside = folder / "generated.png"
    outside.write_bytes(entry.path.read_bytes())
    photo = folder / "photo.png"
    Image.new("RGB", (32, 32), (1, 2, 3)).save(photo)
    return outside, photo


def test_a_plain_image_dropped_beside_one_with_parameters_is_said_to_be_left_aside(
    qtbot: QtBot, make_window: Any, tmp_path: Path, library: Library
) -> None:
    outside, photo = generated_and_plain(library, tmp_path)
    w = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(outside)), QUrl.fromLocalFile(str(photo))])
    assert _drop_on_window(w, mime).isAccepted()
    qtbot.waitUntil(lambda: w.message_banner.action.text() == "Restore parameters" and w.message_banner.isVisible())
    assert w.message_banner.label.text() == (
        "generated.png carries the parameters that made it: “a dropped heron”; "
        "“photo.png” was left aside (drop it on References to use it)."
    )


def test_files_opened_with_the_app_are_none_left_aside_and_a_web_image_dropped_beside_is(
    qtbot: QtBot, make_window: Any, tmp_path: Path, library: Library
) -> None:
    outside, photo = generated_and_plain(library, tmp_path)
    w = make_window()
    w.open_images([outside, photo])  # both shown in the viewer: neither is left aside
    qtbot.waitUntil(lambda: w.message_banner.action.text() == "Restore parameters" and w.message_banner.isVisible())
    assert w.message_banner.label.text() == "generated.png carries the parameters that made it: “a dropped heron”."
    mime = mime_of(outside)
    mime.setUrls([*mime.urls(), QUrl("https://example.com/pictures/sky.png")])
    assert _drop_on_window(w, mime).isAccepted()
    qtbot.waitUntil(lambda: "sky.png" in w.message_banner.label.text())
    assert w.message_banner.label.text().endswith("; “sky.png” was left aside (drop it on References to use it).")


@pytest.mark.parametrize(
    ("size", "ratio", "said"),
    [
        ("512x768", "2:3", "its size, 512×768, is taken as 2:3, the nearest of Krea 2 Medium's ratios."),
        ("1000x300", "16:9", "its size, 1000×300, is near none of Krea 2 Medium's ratios, so the ratio is as it was."),
    ],
)
def test_another_tools_size_is_recalled_as_the_nearest_ratio_or_said_to_be_none(
    qtbot: QtBot, make_window: Any, tmp_path: Path, size: str, ratio: str, said: str
) -> None:
    path = tmp_path / "sd.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", f"a castle at dusk, oil\nSteps: 20, Seed: 31337, Size: {size}")
    Image.new("RGB", (32, 32), (1, 2, 3)).save(path, pnginfo=info)
    w = make_window()
    w.ratio_bar.setRatio("16:9")
    _drop_on_window(w, mime_of(path))
    qtbot.waitUntil(lambda: w.message_banner.action.text() == "Restore parameters")
    w.message_banner.action.click()
    assert w.ratio_bar.ratio() == ratio
    assert w.message_banner.label.text().endswith(said)


def test_use_all_parameters_of_a_photo_in_the_library_changes_nothing_and_says_so(
    qtbot: QtBot, data_dir: Path, make_window: Any, tmp_path: Path
) -> None:
    """A photo indexed from the images folder has a record naming the file alone: "Use all
    parameters" emptied the tray and said the parameters were restored."""
    images = data_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (48, 32), (10, 200, 30)).save(images / "holiday.png")
    reference = tmp_path / "kept.png"
    Image.new("RGB", (16, 16), (200, 10, 10)).save(reference)
    w = make_window()
    w.reconcile_library()
    qtbot.waitUntil(lambda: w.model.rowCount() == 1)
    w.tray.add_paths([reference])
    w.tray.wait_for_loads()
    qtbot.waitUntil(lambda: w.tray.count() == 1)
    w.prompt_panel.setPrompt("my draft")
    select(w, 0)
    w.gallery_actions.use_all_action.trigger()
    assert w.message_banner.label.text() == "No parameters were found in holiday.png."
    w.tray.wait_for_loads()
    assert w.tray.count() == 1 and w.prompt_panel.prompt() == "my draft"


def test_dropping_an_a1111_image_restores_its_prompt_and_seed(qtbot: QtBot, make_window: Any, tmp_path: Path) -> None:
    path = tmp_path / "sd.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a castle at dusk, oil\nNegative prompt: blur\nSteps: 20, Seed: 31337, Size: 1024x1024")
    Image.new("RGB", (32, 32), (1, 2, 3)).save(path, pnginfo=info)
    w = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    _drop_on_window(w, mime)
    qtbot.waitUntil(lambda: w.message_banner.action.text() == "Restore parameters")
    w.message_banner.action.click()
    assert w.prompt_panel.prompt() == "a castle at dusk, oil"
    assert w.prompt_panel.seed() == 31337
    assert w.ratio_bar.ratio() == "1:1"


def test_dropping_an_image_without_parameters_offers_it_as_a_reference(
    qtbot: QtBot, make_window: Any, tmp_path: Path
) -> None:
    path = tmp_path / "plain.png"
    Image.new("RGB", (32, 32), (100, 2, 3)).save(path)
    w = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    _drop_on_window(w, mime)
    qtbot.waitUntil(lambda: w.message_banner.action.text() == "Add as reference")
    w.message_banner.action.click()
    w.tray.wait_for_loads()
    qtbot.waitUntil(lambda: w.tray.count() == 1 and not w.tray.isBusy())


def test_an_image_dropped_on_the_prompt_is_offered_not_typed(qtbot: QtBot, make_window: Any, tmp_path: Path) -> None:
    """Its file name is no prompt: the drop goes to the window, which offers it as a
    reference, and the prompt is as it was."""
    path = tmp_path / "plain.png"
    Image.new("RGB", (32, 32), (100, 2, 3)).save(path)
    w = make_window()
    w.prompt_panel.setPrompt("a lighthouse in fog")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    assert drop(w.prompt_panel.promptEdit.viewport(), mime).isAccepted()
    qtbot.waitUntil(lambda: w.message_banner.action.text() == "Add as reference")
    assert w.prompt_panel.prompt() == "a lighthouse in fog"
    # Text dropped on it is still text.
    text = QMimeData()
    text.setText(", gouache")
    drop(w.prompt_panel.promptEdit.viewport(), text)
    assert "gouache" in w.prompt_panel.prompt()


def _given_otherwise(kind: str, path: Path) -> QMimeData:
    """An image given to a drop otherwise than as a file or as image data."""
    mime = QMimeData()
    uri = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
    if kind == "a path as text":  # selected in a terminal or an editor
        mime.setText(str(path))
    elif kind == "a data URI as text":
        mime.setText(uri)
    elif kind == "a web page's <img>":
        mime.setHtml(f'<p><img src="{uri}"></p>')
    else:  # image bytes of one type alone
        mime.setData("image/png", path.read_bytes())
    return mime


@pytest.mark.parametrize("kind", ["a path as text", "a data URI as text", "a web page's <img>", "PNG bytes"])
def test_an_image_given_otherwise_than_as_a_file_dropped_on_the_prompt_is_offered(
    qtbot: QtBot, make_window: Any, tmp_path: Path, kind: str
) -> None:
    """The prompt leaves these to the window, as it does files: the window offers them,
    rather than turning the drop away without a word."""
    path = tmp_path / "plain.png"
    Image.new("RGB", (32, 32), (100, 2, 3)).save(path)
    w = make_window()
    w.prompt_panel.setPrompt("a lighthouse in fog")
    said: list[tuple[str, str | None]] = []
    show = w.message_banner.show_message
    w.message_banner.show_message = lambda text, action=None, slot=None, **kw: (  # type: ignore[method-assign]
        said.append((text, action)),
        show(text, action, slot, **kw),
    )
    assert drop(w.prompt_panel.promptEdit.viewport(), _given_otherwise(kind, path)).isAccepted()
    qtbot.waitUntil(lambda: bool(said))
    offer = "plain.png carries no parameters." if kind == "a path as text" else "Add the dropped image as a reference?"
    assert said == [(offer, "Add as reference")]
    assert w.prompt_panel.prompt() == "a lighthouse in fog"
    w.message_banner.action.click()  # the drop has ended: its data was kept for this
    w.tray.wait_for_loads()
    qtbot.waitUntil(lambda: w.tray.count() == 1 and not w.tray.isBusy(), timeout=10_000)
    assert w.tray.model.items()[0].width == 32


def test_a_text_drag_looks_at_the_files_it_names_once_not_at_every_move(
    qtbot: QtBot, make_window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Text that may name image files is looked at on the GUI thread (a stat, an open of
    each): at every move of the mouse it cost tens of milliseconds a move for a few
    hundred paths, and a path on a mount that hangs froze the window."""
    from krea_desktop.ui.references import sources

    path = tmp_path / "plain.png"
    Image.new("RGB", (32, 32), (100, 2, 3)).save(path)
    w = make_window()
    looked: list[str] = []
    real = sources.local_file
    monkeypatch.setattr(sources, "local_file", lambda text: (looked.append(text), real(text))[1])
    mime = QMimeData()
    mime.setText(str(path))
    for target in (w.gallery.viewport(), w.prompt_panel.promptEdit.viewport()):
        centre = target.rect().center()
        enter = drag_event(QDragEnterEvent, centre.x(), centre.y(), mime)
        QApplication.sendEvent(target, enter)
        assert enter.isAccepted()
        entered = len(looked)
        for dx in range(20):
            move = drag_event(QDragMoveEvent, centre.x() + dx, centre.y(), mime)
            QApplication.sendEvent(target, move)
            assert move.isAccepted()
        leave(target)
        assert len(looked) == entered, target  # nothing looked at again as it moves
    huge = QMimeData()
    huge.setText("\n".join([str(path)] * 5000))  # past what names of images can be: text
    looked.clear()
    enter = drag_event(QDragEnterEvent, 10, 10, huge)
    QApplication.sendEvent(w.gallery.viewport(), enter)
    assert not enter.isAccepted() and len(looked) <= 1


def test_text_naming_no_image_dropped_beside_the_prompt_is_not_taken(
    qtbot: QtBot, make_window: Any, tmp_path: Path
) -> None:
    """Words, or the path of a file that is no image, are no image: the window does not
    take them, so a drag of them shows that it cannot be dropped there."""
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    w = make_window()
    for text in ("a cat on a mat", str(notes), str(tmp_path / "gone.png")):
        mime = QMimeData()
        mime.setText(text)
        assert not drop(w.gallery.viewport(), mime).isAccepted(), text


def test_a_drop_that_is_taken_for_nothing_says_why(qtbot: QtBot, make_window: Any, tmp_path: Path) -> None:
    notes, folder, gone = tmp_path / "notes.txt", tmp_path / "folder.png", tmp_path / "gone.png"
    notes.write_text("not a picture")
    folder.mkdir()
    w = make_window()
    cases = [
        ([notes], "“notes.txt” is not an image file, so nothing was taken."),
        ([notes, notes, notes], "None of the 3 dropped items is an image file, so nothing was taken."),
        ([tmp_path], f"“{tmp_path.name}” is a folder, so nothing was taken."),
        ([folder], "“folder.png” is not a file, so nothing was taken."),
        ([gone], "“gone.png” no longer exists, so nothing was taken."),
    ]
    cases.append(([tmp_path, notes], "None of the 2 dropped items is an image file, so nothing was taken."))
    for paths, said in cases:
        w.message_banner.hide()
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
        assert _drop_on_window(w, mime).isAccepted()
        qtbot.waitUntil(lambda: w.message_banner.isVisible())
        assert w.message_banner.label.text() == said
    web = QMimeData()
    web.setUrls([QUrl("https://example.com/pictures/heron.png")])
    w.message_banner.hide()
    assert _drop_on_window(w, web).isAccepted()
    assert w.message_banner.label.text().startswith("“heron.png” is an address on the web")
    assert w.message_banner.action.text() == "Add as reference"
    assert w.tray.count() == 0  # offered, not fetched


def test_images_without_parameters_that_do_not_all_fit_are_said_to(
    qtbot: QtBot, make_window: Any, tmp_path: Path
) -> None:
    w = make_window()
    paths = []
    for i in range(spec.MAX_REFERENCES + 2):
        path = tmp_path / f"plain{i}.png"
        Image.new("RGB", (32, 32), (10 * i, 2, 3)).save(path)
        paths.append(path)
    w.tray.add_paths(paths[: spec.MAX_REFERENCES - 1])
    w.tray.wait_for_loads()
    qtbot.waitUntil(lambda: w.tray.count() == spec.MAX_REFERENCES - 1 and not w.tray.isBusy())
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths[-3:]])
    _drop_on_window(w, mime)
    qtbot.waitUntil(lambda: w.message_banner.action.text() == "Add as reference")
    w.message_banner.action.click()
    qtbot.waitUntil(lambda: "Only 1 more reference fits" in w.message_banner.label.text())
    assert w.tray.count() == spec.MAX_REFERENCES - 1


def test_images_opened_with_the_app_are_offered_like_drops(
    qtbot: QtBot, make_window: Any, tmp_path: Path, library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(viewer_module, "HINT_MS", 300)
    entry = library.save(make_image("opened from the file manager", seed=5))
    w = make_window()
    outside = tmp_path / "elsewhere.png"  # a copy outside the library, as a file manager opens it
    outside.write_bytes(entry.path.read_bytes())
    w.open_images([outside])
    qtbot.waitUntil(lambda: w.message_banner.action.text() == "Restore parameters")
    # it is shown, with the parameters it carries
    viewer = w.file_drops.file_viewer
    assert viewer is not None and viewer.isVisible()
    qtbot.waitUntil(lambda: viewer.entry is not None)
    assert viewer.entry.path == outside
    assert viewer.entry.prompt == "opened from the file manager" and viewer.entry.seed == 5
    # F, the favourite key, says in a sentence under the picture why it does nothing to a
    # file from outside, still there once the key is up.
    assert not viewer.hint_label.isVisible()
    qtbot.keyClick(viewer, Qt.Key.Key_F)
    assert viewer.hint_label.isVisible() and viewer.hint_label.text() == NOT_IN_LIBRARY_FAVOURITE
    assert not viewer.favourite_button.isVisible()
    qtbot.waitUntil(lambda: not viewer.hint_label.isVisible(), timeout=3000)  # then it goes
    w.message_banner.action.click()
    assert w.prompt_panel.prompt() == "opened from the file manager" and w.prompt_panel.seed() == 5
    viewer.close()


def test_an_image_opened_with_the_app_is_not_refused_as_a_reference_it_was_not_asked_to_be(
    qtbot: QtBot, make_window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import krea_desktop.library.inputs as inputs

    monkeypatch.setattr(inputs, "MAX_PIXELS", 100)  # as a photo of 108 megapixels is to the real limit
    photo = tmp_path / "panorama.png"
    Image.new("RGB", (30, 20), (10, 120, 200)).save(photo)
    w = make_window()
    w.message_banner.hide()
    w.open_images([photo])
    qtbot.waitUntil(lambda: w.file_drops.file_viewer is not None)  # once what the file carries was read
    viewer = w.file_drops.file_viewer
    assert viewer is not None
    qtbot.waitUntil(viewer.canvas.has_image)
    assert not w.message_banner.isVisible(), w.message_banner.label.text()
    viewer.close()
    # Opened with another that may be a reference, only that one is offered.
    small = tmp_path / "small.png"
    Image.new("RGB", (8, 8), (200, 20, 20)).save(small)
    w.file_drops.file_viewer = None
    w.open_images([small, photo])
    qtbot.waitUntil(lambda: w.file_drops.file_viewer is not None)
    assert w.message_banner.label.text() == "small.png carries no parameters."
    w.file_drops.file_viewer.close()
    # Dropped, it is offered as a reference, and so refused as one, with why.
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photo))])
    assert w.file_drops.handle_drop(mime)
    qtbot.waitUntil(lambda: "too large" in w.message_banner.label.text())


def test_the_gallerys_own_drag_is_not_offered_back(data_dir: Path, make_window: Any) -> None:
    fill(data_dir, [make_image("mine")])
    w = make_window()
    w.message_banner.hide()
    assert not w.file_drops.handle_drop(w.model.mimeData([w.model.index(0)]))


# --- 6. finding -------------------------------------------------------------------------------------------


def test_search_filters_as_you_type_through_the_index(
    qtbot: QtBot, data_dir: Path, make_window: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(data_dir, [make_image("a red kite over dunes"), make_image("a blue whale"), make_image("red barn, winter")])
    w = make_window()
    calls: list[dict[str, Any]] = []
    real = w.library.ids
    monkeypatch.setattr(w.library, "ids", lambda **f: (calls.append(f), real(**f))[1])
    search = w.findChild(QLineEdit, "gallerySearch")
    qtbot.keyClicks(search, "red")
    assert w.model.rowCount() == 3  # debounced: nothing yet
    qtbot.waitUntil(lambda: w.model.rowCount() == 2)
    assert len(calls) == 1 and calls[0]["search"] == "red"
    qtbot.keyClicks(search, " kite")
    qtbot.waitUntil(lambda: w.model.rowCount() == 1)
    assert w.model.data(w.model.index(0), GalleryModel.EntryRole).prompt == "a red kite over dunes"
    assert w.filter_bar.count_label.text() == "1 of 3"
    w.filter_bar.set_counts(1234, 100_000)
    assert w.filter_bar.count_label.text() == "1,234 of 100,000"
    search.clear()
    qtbot.waitUntil(lambda: w.model.rowCount() == 3)


def test_a_damaged_index_answers_searches_without_its_search_index_and_says_what_it_cannot(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    """A bad sector in the index's search part, or in the part a filter reads: each key
    typed raised SQLite's "malformed" in the window, and the gallery stood still, unexplained,
    until a restart."""
    from krea_desktop.library.store import DAMAGED_INDEX
    from tests.helpers.index_damage import damage_every_page_of

    prompts = [f"harbour at dawn {i}" if i % 2 else f"field {i}" for i in range(200)]
    fill(data_dir, [make_image(p, "16:9" if i % 3 else "1:1", seed=i) for i, p in enumerate(prompts)])
    damage_every_page_of(data_dir / "library.sqlite", "images_fts_data")
    damage_every_page_of(data_dir / "library.sqlite", "images_by_ratio")
    w = make_window()
    assert w.model.rowCount() == 200
    search = w.findChild(QLineEdit, "gallerySearch")
    qtbot.keyClicks(search, "harbour")
    qtbot.waitUntil(lambda: w.model.rowCount() == 100)  # found all the same, reading the prompts
    assert {w.model.data(w.model.index(r), GalleryModel.EntryRole).prompt for r in range(3)} <= set(prompts[1::2])
    combo = w.filter_bar.ratio
    combo.setCurrentIndex(combo.findData("1:1"))  # a filter that meets the damage
    qtbot.waitUntil(lambda: w.message_banner.label.text() == DAMAGED_INDEX)
    assert w.message_banner.error and w.model.rowCount() == 100  # the rows shown are kept
    assert w.model.filters["ratio"] is None and w.model.filters["search"] == "harbour"
    assert combo.currentData() is None  # taken back: a search typed next does not carry it
    search.clear()
    qtbot.waitUntil(lambda: w.model.rowCount() == 200)
    qtbot.keyClicks(search, "dawn")
    qtbot.waitUntil(lambda: w.model.rowCount() == 100)
    search.clear()
    qtbot.waitUntil(lambda: w.model.rowCount() == 200)
    assert (data_dir / "library.sqlite.damage-found").is_file()  # the next start rebuilds it


def test_the_selection_outlives_a_search_a_filter_and_a_refresh(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    """The rows are read again for each: the selection and the current image went with
    them, and Space then opened the top image, Delete and F did nothing."""
    entries = fill(
        data_dir,
        [
            make_image("red fox in snow", "16:9"),
            make_image("red fox asleep", "1:1"),
            make_image("blue whale", "16:9"),
            make_image("red kite", "16:9"),
        ],
    )
    w = make_window()
    fox, asleep = (e.id for e in entries[:2])

    def current_id() -> int | None:
        index = w.gallery.currentIndex()
        return w.model.id_at(index.row()) if index.isValid() else None

    def selected_ids() -> set[int | None]:
        return {w.model.id_at(r) for r in w.gallery.selected_rows()}

    w.gallery_actions.select_ids([fox, asleep])
    assert current_id() == fox
    w.filter_bar.search.setText("fox")
    w.filter_bar.search.returnPressed.emit()
    qtbot.waitUntil(lambda: w.model.rowCount() == 2)
    assert (current_id(), selected_ids()) == (fox, {fox, asleep})
    combo = w.filter_bar.ratio
    combo.setCurrentIndex(combo.findData("16:9"))  # the sleeping fox is hidden: the other stays
    qtbot.waitUntil(lambda: w.model.rowCount() == 1)
    assert (current_id(), selected_ids()) == (fox, {fox})
    w.filter_bar.clear()
    qtbot.waitUntil(lambda: w.model.rowCount() == 4)
    assert (current_id(), selected_ids()) == (fox, {fox})
    w.gallery_actions.refresh()  # F5, nothing changed on disk
    qtbot.waitUntil(lambda: w.gallery_actions.refresh_action.isEnabled())
    assert (current_id(), selected_ids()) == (fox, {fox})
    w.activateWindow()
    w.gallery.setFocus()
    qtbot.keyClick(w.gallery, Qt.Key.Key_Space)
    viewer = w.gallery_actions.viewer
    assert viewer is not None and viewer.entry is not None and viewer.entry.id == fox
    viewer.close()


def test_the_selection_kept_over_a_refresh_leaves_the_view_where_the_user_scrolled(
    qtbot: QtBot, library: Library
) -> None:
    """Made current again, the image scrolled the view back to it at each F5, search or
    folder check, away from where the user had scrolled."""
    view, model = grid_view(qtbot, library, 120)
    view.setCurrentIndex(model.index(0))
    bar = view.verticalScrollBar()
    bar.setValue(bar.maximum() // 2)
    where = bar.value()
    model.refresh()
    assert bar.value() == where and view.currentIndex().row() == 0 and view.selected_rows() == [0]
    model.loader.wait(5000)


def test_a_refresh_that_finds_new_images_leaves_a_user_scrolled_down_on_the_same_images(
    qtbot: QtBot, library: Library
) -> None:
    """F5 (or the folder's check) finding images copied in read the rows again, and the
    same scroll value showed other images: 0 of 25 the same. The image read stays at its
    height on screen, as when the app adds images itself."""
    view, model = grid_view(qtbot, library, 120)
    cols, bar = view.columns(), view.verticalScrollBar()
    bar.setValue(bar.maximum() // 2)
    watched = model.id_at((bar.value() - 8) // view._step() * cols + cols)  # on the second line on screen
    assert watched is not None
    top = view.visualRect(model.index(model.row_of(watched) or 0)).top()
    for k in range(cols * 3 + 1):  # newer than every image shown: they go above it
        library.save(make_image(f"copied in {k}"), created_at=T0 + timedelta(days=1, minutes=k))
    model.refresh()
    row = model.row_of(watched)
    assert row is not None and row > 3 * cols
    assert view.visualRect(model.index(row)).top() == top
    # An image that is no longer among the rows (a search): the view is left where it is.
    where = bar.value()
    model.refresh(search="copied in")
    assert model.row_of(watched) is None and bar.value() <= where
    model.loader.wait(5000)


def test_a_new_image_given_a_deleted_ones_id_before_the_delete_is_told_stays_in_view(
    qtbot: QtBot, library: Library
) -> None:
    """The newest image deleted, its row gone from the index; a new image saved meanwhile
    takes its id (SQLite gives the highest id again), and reaches the gallery before the
    delete's word: it was taken for the same image saved anew, then removed with it."""
    _view, model = grid_view(qtbot, library, 3)
    newest = model.entry_at(0)
    assert newest is not None
    library.remove([newest.id])  # the delete's worker; its word to the window still queued
    new = library.save(make_image("just generated"), created_at=T0 + timedelta(days=1))
    assert new.id == newest.id and new.image_uuid != newest.image_uuid
    model.add_entry(new)
    model.deleted([newest])  # the delete's word arrives
    shown = [e.prompt for e in (model.entry_at(r) for r in range(model.rowCount())) if e is not None]
    assert shown[0] == "just generated" and model.rowCount() == 3
    assert [e.prompt for e in library.entries()] == shown
    # Within a lineage (a scope no new image belongs to), the same: the new image stays
    # out, and the deleted one comes back with Undo.
    ids = set(model.ids())
    model.set_scope(ids, "Lineage of one")
    newest = model.entry_at(0)
    assert newest is not None
    library.remove([newest.id])
    unrelated = library.save(make_image("unrelated new job"), created_at=T0 + timedelta(days=2))
    assert unrelated.id == newest.id
    model.add_entry(unrelated)
    model.deleted([newest])
    shown = [e.prompt for e in (model.entry_at(r) for r in range(model.rowCount())) if e is not None]
    assert "unrelated new job" not in shown and len(shown) == 2
    (back,) = library.restore([newest])
    model.restored([back])
    model.refresh()  # as Undo does: the rows read again
    shown = [e.prompt for e in (model.entry_at(r) for r in range(model.rowCount())) if e is not None]
    assert "just generated" in shown and "unrelated new job" not in shown and len(shown) == 3
    model.loader.wait(5000)


def test_a_selection_spread_all_over_is_not_made_again_after_a_refresh(
    qtbot: QtBot, library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl+A, a search, the search cleared: the matches, selected, are spread all over,
    and making that selection again cost a second at each refresh of 100,000 images (a
    step per run of rows). Beyond a few hundred runs the current image alone is kept."""
    from krea_desktop.ui.gallery import view as view_module

    monkeypatch.setattr(view_module, "KEPT_RUNS_MOST", 3)
    view, model = grid_view(qtbot, library, 20)
    view.setCurrentIndex(model.index(4))
    view.selectionModel().select(runs_of(model, [0, 1, 4, 8]), QItemSelectionModel.SelectionFlag.Select)
    model.refresh()
    assert view.selected_rows() == [0, 1, 4, 8] and view.currentIndex().row() == 4  # three runs: kept
    view.selectionModel().select(model.index(12), QItemSelectionModel.SelectionFlag.Select)
    model.refresh()
    assert view.selected_rows() == [] and view.currentIndex().row() == 4
    model.loader.wait(5000)


def test_ratio_and_favourite_filters(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    entries = fill(data_dir, [make_image("wide", "16:9"), make_image("tall", "9:16"), make_image("wide too", "16:9")])
    with Library(data_dir) as lib:
        lib.set_favourite([entries[0].id], True)
    w = make_window()
    combo = w.filter_bar.ratio
    combo.setCurrentIndex(combo.findData("16:9"))
    assert w.model.rowCount() == 2
    w.filter_bar.favourites.setChecked(True)
    assert w.model.ids() == [entries[0].id]
    combo.setCurrentIndex(combo.findData("9:16"))
    assert w.model.rowCount() == 0
    combo.setCurrentIndex(0)
    w.filter_bar.favourites.setChecked(False)
    assert w.model.rowCount() == 3


def test_new_images_respect_the_active_filter(library: Library) -> None:
    model = GalleryModel(library)
    model.refresh(search="harbour")
    model.add_entry(library.save(make_image("a mountain")))
    assert model.rowCount() == 0
    model.add_entry(library.save(make_image("the harbour at night")))
    assert model.rowCount() == 1
    model.loader.wait(5000)


# --- 7. staying true to the disk ---------------------------------------------------------------------------


def test_a_library_with_missing_and_corrupt_files(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    entries = fill(data_dir, [make_image("fine"), make_image("will vanish"), make_image("will be damaged")])
    entries[1].path.unlink()
    entries[2].path.write_bytes(entries[2].path.read_bytes()[:60])
    w = make_window()
    wait_thumbnails(qtbot, w)

    def rows() -> dict[str, Any]:
        return {w.model.entry_at(r).prompt: w.model.entry_at(r) for r in range(3)}  # type: ignore[union-attr]

    # The check of the folder runs beside the GUI thread after start-up: on a busy machine
    # its findings come after the thumbnails.
    qtbot.waitUntil(lambda: rows()["will vanish"].missing and rows()["will be damaged"].broken)
    by_prompt = rows()
    assert by_prompt["will vanish"].missing
    assert by_prompt["will be damaged"].broken
    vanished = w.model.index(w.model.row_of(entries[1].id) or 0)
    assert "file missing" in w.model.data(vanished, Qt.ItemDataRole.ToolTipRole)
    w.gallery.viewport().grab()  # drawing the badges must not fail
    for prompt in ("will vanish", "will be damaged"):
        select(w, w.model.row_of(by_prompt[prompt].id) or 0)
        w.gallery_actions.view_action.trigger()
        viewer = w.gallery_actions.viewer
        assert viewer is not None
        qtbot.waitUntil(lambda v=viewer: bool(v.canvas.message()) and v.canvas.message() != "Loading…")
        assert not viewer.canvas.has_image()
        viewer.close()
        qtbot.waitUntil(lambda: w.gallery_actions.viewer is None)


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="needs a file system that takes any bytes in a name")
def test_the_start_up_check_says_which_files_it_left_out_and_redraws_a_file_that_came_back(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    entries = fill(data_dir, [make_image("away for a while")])
    w = make_window()
    wait_thumbnails(qtbot, w)
    assert w.model.pixmap_for(entries[0]) is not None
    moved = entries[0].path.with_suffix(".away")
    entries[0].path.rename(moved)
    w.reconcile_library()
    qtbot.waitUntil(lambda: w.model.entry_for(entries[0].id).missing)  # type: ignore[union-attr]
    away = w.model.entry_for(entries[0].id)
    assert away is not None and w.model.pixmap_for(away) is w.model._broken_pixmap  # drawn as missing
    # It comes back, and a file whose name is no UTF-8 comes with it.
    moved.rename(entries[0].path)
    with open(os.fsencode(data_dir / "images") + b"/caf\xe9.png", "wb") as f:
        f.write(entries[0].path.read_bytes())
    w.reconcile_library()
    qtbot.waitUntil(lambda: not w.model.entry_for(entries[0].id).missing)  # type: ignore[union-attr]
    assert w.message_banner.label.text() == (
        "“caf\ufffd.png” in the images folder is not in the gallery because its name cannot be stored; "
        "rename it and press F5."
    )
    back = w.model.entry_for(entries[0].id)
    assert back is not None and w.model.pixmap_for(back) is not w.model._broken_pixmap  # not as while away
    qtbot.waitUntil(lambda: entries[0].id in w.model._pixmaps)  # its thumbnail again


def test_refresh_notices_files_removed_and_added_behind_the_apps_back(
    qtbot: QtBot, data_dir: Path, make_window: Any, tmp_path: Path
) -> None:
    entries = fill(data_dir, [make_image("stays"), make_image("removed outside")])
    w = make_window()
    wait_thumbnails(qtbot, w)
    entries[1].path.unlink()
    # an image copied in from elsewhere (with its parameters) gets indexed
    other = Library(tmp_path / "other")
    newcomer = other.save(make_image("copied in"), created_at=T0 + timedelta(days=1))
    other.close()
    (data_dir / "images" / newcomer.file_name).write_bytes(newcomer.path.read_bytes())
    w.activateWindow()
    qtbot.keyClick(w, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: w.model.rowCount() == 3)
    assert w.model.data(w.model.index(0), GalleryModel.EntryRole).prompt == "copied in"
    gone = w.model.entry_for(entries[1].id)
    assert gone is not None and gone.missing  # kept in the index, marked
    assert w.library.count() == 3


def test_refresh_after_the_images_folder_was_deleted_marks_every_image_missing_and_generating_goes_on(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    import shutil

    entries = fill(data_dir, [make_image("before")])
    w = make_window()
    wait_thumbnails(qtbot, w)
    shutil.rmtree(data_dir / "images")
    w.activateWindow()
    qtbot.keyClick(w, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: bool((e := w.model.entry_for(entries[0].id)) and e.missing))
    assert "Errno" not in w.message_banner.label.text()
    w.prompt_panel.setPrompt("after the folder went")
    w.generate()
    qtbot.waitUntil(lambda: w.library.count() == 2, timeout=10000)
    assert (data_dir / "images").is_dir() and len(list((data_dir / "images").iterdir())) == 1


def test_a_refresh_that_cannot_read_the_folder_says_why_in_one_sentence(
    qtbot: QtBot, data_dir: Path, make_window: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    fill(data_dir, [make_image("stays")])
    w = make_window()

    def refuse() -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(w.library, "reconcile", refuse)
    w.gallery_actions.refresh()
    said = "The library folder could not be read again (Input/output error); nothing was changed."
    qtbot.waitUntil(lambda: w.message_banner.label.text() == said)


def test_the_view_reports_visible_rows(qtbot: QtBot, library: Library) -> None:
    for i in range(40):
        library.save(make_image(f"v{i}", seed=i))
    view = GalleryView()
    qtbot.addWidget(view)
    model = GalleryModel(library)
    view.setModel(model)
    view.resize(500, 300)
    view.setThumbSide(100)
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: len(view.visible_rows()) > 0)
    rows = view.visible_rows()
    assert rows.start == 0 and 4 <= len(rows) < 40
    view.verticalScrollBar().setValue(view.verticalScrollBar().maximum())
    rows = view.visible_rows()
    assert rows.stop == 40
    model.loader.wait(5000)


def test_a_cell_whose_thumbnail_is_to_come_shows_the_placeholder_square_and_then_the_image(
    qtbot: QtBot, library: Library
) -> None:
    entry = library.save(make_image("waiting", colour=(250, 20, 20)))
    view = GalleryView()
    qtbot.addWidget(view)
    model = GalleryModel(library)
    model.loader.hold()  # the thumbnail waits, as during a fling
    view.setModel(model)
    view.resize(300, 300)
    view.setThumbSide(100)
    view.show()
    qtbot.waitExposed(view)
    cell = view.visualRect(model.index(0))
    inner = cell.adjusted(4, 4, -4, -4)  # the delegate's margin
    shot = view.viewport().grab().toImage()
    placeholder = QColor(58, 58, 62)
    for point in (inner.center(), inner.topLeft() + QPoint(1, 1), inner.bottomRight() - QPoint(1, 1)):
        assert shot.pixelColor(point) == placeholder, point
    assert shot.pixelColor(cell.topLeft()) != placeholder  # the cell's margin is not covered
    model.loader.release({entry.id})
    qtbot.waitUntil(lambda: model.has_thumbnail(entry.id))
    qtbot.waitUntil(lambda: view.viewport().grab().toImage().pixelColor(inner.center()).red() > 200)


def test_an_entry_with_an_unusable_image_id_shows_as_broken(qtbot: QtBot, library: Library) -> None:
    saved = library.save(make_image("fine"))
    odd = dataclasses.replace(saved, image_uuid="../../etc/passwd")
    loader = ThumbnailLoader(library)
    loaded: list[tuple[int, bool]] = []
    loader.loaded.connect(lambda i, img: loaded.append((i, img.isNull())))
    loader.request(odd)  # asked for while painting: nothing is worked out there
    qtbot.waitUntil(lambda: loaded == [(saved.id, True)])  # a null image: drawn as broken
    loader.wait(5000)


def test_a_deleted_images_id_given_to_a_new_one_brings_neither_its_scope_nor_its_thumbnail(
    qtbot: QtBot, library: Library
) -> None:
    """SQLite gives the highest id again once its row is gone: the next new image takes a
    deleted newest image's id. Within a scope (a lineage), the new, unrelated image showed
    in it; a thumbnail of the deleted image still being made landed on the new one, for
    good. An undo brings the deleted image back into its scope, under whatever id."""
    a = library.save(make_image("a lighthouse"), created_at=T0)
    library.save(make_image("an unrelated portrait"), created_at=T0 + timedelta(minutes=1))
    x = library.save(make_image("a lighthouse, in fog", colour=(220, 20, 20)), created_at=T0 + timedelta(minutes=2))
    model = GalleryModel(library)
    model.set_scope({a.id, x.id}, "Lineage")
    loader = model.loader
    # x's thumbnail is being made (a worker has taken it) when x is deleted.
    loader.hold()
    loader.request(x)
    loader._held = False
    taken = loader._next_job()
    assert taken is not None and taken[0] == x.id
    loader.hold()
    pending = trash.PendingTrash(library)
    batch = pending.delete([x])
    assert batch is not None
    model.deleted(batch.entries)
    new = library.save(make_image("a bowl of soup", colour=(20, 20, 220)), created_at=T0 + timedelta(minutes=3))
    assert new.id == x.id  # the id the index gives again
    model.add_entry(new)
    assert [model.entry_at(r).prompt for r in range(model.rowCount())] == ["a lighthouse"]  # type: ignore[union-attr]
    loader.request(new)  # its own thumbnail is asked for while x's is still being made
    delivered: list[int] = []
    loader.loaded.connect(lambda entry_id, image: delivered.append(image.pixelColor(0, 0).red()))
    red = QImage(8, 8, QImage.Format.Format_RGB32)
    red.fill(QColor(220, 20, 20))
    loader._done(x.id, taken[3], red)  # x's, made: not delivered as the new image's
    loader.release({new.id})
    qtbot.waitUntil(lambda: bool(delivered), timeout=5000)
    assert delivered[0] < 100  # the new image's own (blue), never x's red
    # Undo: x is back, in its scope, though its id is taken.
    restored = pending.undo(batch)
    assert restored is not None and restored.entries[0].id != x.id
    model.restored(restored.entries)
    model.refresh()
    prompts = [model.entry_at(r).prompt for r in range(model.rowCount())]  # type: ignore[union-attr]
    assert prompts == ["a lighthouse, in fog", "a lighthouse"]
    loader.wait(5000)


def test_a_thumbnail_made_again_while_the_first_is_made_delivers_only_the_new_one(
    qtbot: QtBot, library: Library
) -> None:
    """A file changed in place keeps its row's id and image id: its thumbnail is asked for
    again while the first is still being made. Whichever finishes first, only the second
    is delivered, and the count of work in hand stays true."""
    entry = library.save(make_image("changed in place"), created_at=T0)
    shared_pool()  # what hands results to the GUI thread
    loader = ThumbnailLoader(library)
    delivered: list[int] = []
    loader.loaded.connect(lambda entry_id, image: delivered.append(image.width()))

    def start() -> tuple[int, LibraryEntry, int, int]:
        loader.hold()
        loader.request(entry)
        loader._held = False
        job = loader._next_job()
        loader.hold()
        assert job is not None
        return job

    first = start()
    loader.forget({entry.id})
    second = start()
    assert loader.pending() == 2
    loader._done(entry.id, second[3], QImage(20, 20, QImage.Format.Format_RGB32))  # the new one, first
    loader._done(entry.id, first[3], QImage(10, 10, QImage.Format.Format_RGB32))  # then the old one
    qtbot.wait(50)
    assert delivered == [20] and loader.pending() == 0


def test_a_row_leaving_the_filters_stays_in_the_scope(qtbot: QtBot, library: Library) -> None:
    """Unmarked as a favourite with the favourites filter on, an image leaves the rows,
    not the scope: with the filter off it is there again."""
    ids = [library.save(make_image(f"kept {k}"), created_at=T0 + timedelta(minutes=k)).id for k in range(3)]
    library.set_favourite(ids, True)
    model = GalleryModel(library)
    model.set_scope(ids, "Lineage")
    model.refresh(favourites_only=True)
    library.set_favourite([ids[0]], False)
    model.remove_ids({ids[0]})  # what unmarking does to the rows shown
    model.refresh(favourites_only=False)
    assert model.rowCount() == 3 and model.scope_ids() == frozenset(ids)
    model.loader.wait(5000)

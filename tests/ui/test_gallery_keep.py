"""What the gallery keeps through a change: the selection and the current image through a
search that briefly matches nothing, and the current image on screen through a change of
thumbnail size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QItemSelectionModel, QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from krea_desktop.library.store import Library
from krea_desktop.ui.gallery import view as view_module
from krea_desktop.ui.gallery.view import CELL_MARGIN, SPACING, THUMB_SIDE_MAX, GalleryView, runs_of
from krea_desktop.ui.window.main_window import MainWindow
from tests.ui.test_gallery import fill, grid_view, library, make_image, make_window, no_trash, select

__all__ = ["library", "make_window", "no_trash"]  # fixtures, used by name


def current_id(w: MainWindow) -> int | None:
    index = w.gallery.currentIndex()
    return w.model.id_at(index.row()) if index.isValid() else None


def selected_ids(w: MainWindow) -> list[int | None]:
    return [w.model.id_at(r) for r in w.gallery.selected_rows()]


def current_on_screen(view: GalleryView) -> bool:
    rect = view.visualRect(view.currentIndex())
    return rect.isValid() and view.viewport().rect().contains(rect)


# --- the selection through a search that matches nothing ----------------------------------------


def test_a_typo_in_the_search_gives_the_selection_back_once_fixed(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    """A keystroke that matches nothing left no rows to read the selection from: the next
    rows came back with nothing selected, and Space, Delete and F had nothing to act on."""
    fill(data_dir, [make_image(f"harbour {i}", seed=i) for i in range(6)])
    w = make_window()
    search = w.filter_bar.search
    select(w, 3)
    chosen = w.model.ids()[3]
    search.setFocus()
    qtbot.keyClicks(search, "harbour")
    qtbot.waitUntil(lambda: w.filter_bar.filters()["search"] == "harbour")
    qtbot.waitUntil(lambda: selected_ids(w) == [chosen])
    qtbot.keyClicks(search, "x")  # nothing matches
    qtbot.waitUntil(lambda: w.model.rowCount() == 0)
    qtbot.keyClick(search, Qt.Key.Key_Backspace)
    qtbot.waitUntil(lambda: w.model.rowCount() == 6)
    assert (current_id(w), selected_ids(w)) == (chosen, [chosen])
    qtbot.keyClick(search, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: w.filter_bar.filters()["search"] is None)
    qtbot.waitUntil(lambda: w.model.rowCount() == 6)
    assert (current_id(w), selected_ids(w)) == (chosen, [chosen])
    assert w.gallery_actions.delete_action.isEnabled()


def test_images_hidden_by_a_search_are_selected_again_when_it_is_cleared(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    entries = fill(data_dir, [make_image("red fox"), make_image("blue whale"), make_image("red kite")])
    w = make_window()
    whale = entries[1].id
    w.gallery_actions.select_ids([whale])
    w.filter_bar.search.setText("red")  # the whale is not among these rows
    w.filter_bar.search.returnPressed.emit()
    qtbot.waitUntil(lambda: w.model.rowCount() == 2)
    assert selected_ids(w) == [] and current_id(w) is None
    w.filter_bar.clear()
    qtbot.waitUntil(lambda: w.model.rowCount() == 3)
    assert (current_id(w), selected_ids(w)) == (whale, [whale])


def test_what_the_user_selects_in_between_is_kept_instead(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    entries = fill(data_dir, [make_image("red fox"), make_image("blue whale"), make_image("red kite")])
    w = make_window()
    fox, whale = entries[0].id, entries[1].id
    w.gallery_actions.select_ids([whale])
    w.filter_bar.search.setText("red")
    w.filter_bar.search.returnPressed.emit()
    qtbot.waitUntil(lambda: w.model.rowCount() == 2)
    w.gallery_actions.select_ids([fox])
    w.filter_bar.clear()
    qtbot.waitUntil(lambda: w.model.rowCount() == 3)
    assert (current_id(w), selected_ids(w)) == (fox, [fox])


def test_a_selection_spread_all_over_is_not_made_again_after_a_search_that_matched_nothing(
    qtbot: QtBot, library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The selection kept through the empty rows meets the same limit as any other: beyond
    a few runs of rows only the current image is made so again."""
    monkeypatch.setattr(view_module, "KEPT_RUNS_MOST", 3)
    view, model = grid_view(qtbot, library, 20)
    view.setCurrentIndex(model.index(4))
    view.selectionModel().select(runs_of(model, [0, 1, 4, 8, 12]), QItemSelectionModel.SelectionFlag.Select)
    current = model.id_at(4)
    model.refresh(search="nothing is called this")
    assert model.rowCount() == 0
    model.refresh(search=None)
    assert view.selected_rows() == [] and model.id_at(view.currentIndex().row()) == current
    model.loader.wait(5000)


def test_a_few_runs_kept_through_a_search_that_matched_nothing_are_selected_again(
    qtbot: QtBot, library: Library
) -> None:
    view, model = grid_view(qtbot, library, 20)
    view.setCurrentIndex(model.index(4))
    view.selectionModel().select(runs_of(model, [0, 1, 4, 8]), QItemSelectionModel.SelectionFlag.Select)
    model.refresh(search="nothing is called this")
    model.refresh(search="nor this")  # empty again: still kept
    model.refresh(search=None)
    assert view.selected_rows() == [0, 1, 4, 8] and view.currentIndex().row() == 4
    model.loader.wait(5000)


# --- the current image through a change of size ---------------------------------------------------


def test_a_larger_size_from_the_slider_keeps_the_current_image_on_screen(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    """The view was scrolled to the current image before the scroll bar had the new size's
    range: held to the old end, the image stayed below the screen."""
    fill(data_dir, [make_image(f"img {i}", seed=i) for i in range(12)])
    w = make_window()
    g = w.gallery
    select(w, 5)
    g.setFocus()
    assert current_on_screen(g)
    w.filter_bar.size_slider.setValue(THUMB_SIDE_MAX)
    assert g.thumb_side == THUMB_SIDE_MAX
    qtbot.wait(100)
    assert g.verticalScrollBar().value() > 0
    assert current_on_screen(g)


def test_ctrl_wheel_to_a_larger_size_keeps_the_current_image_on_screen(qtbot: QtBot, library: Library) -> None:
    view, model = grid_view(qtbot, library, 30)
    view.resize(600, 500)  # a whole cell of the largest size fits on screen
    qtbot.waitUntil(lambda: view.viewport().height() > THUMB_SIDE_MAX + CELL_MARGIN + 2 * SPACING)
    view.setCurrentIndex(model.index(7))
    assert current_on_screen(view)
    for _ in range(3):
        event = QWheelEvent(
            QPointF(10, 10),
            QPointF(view.mapToGlobal(QPoint(10, 10))),
            QPoint(),
            QPoint(0, 1200),
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.ControlModifier,
            Qt.ScrollPhase.NoScrollPhase,
            False,
        )
        QApplication.sendEvent(view.viewport(), event)
    assert view.thumb_side == THUMB_SIDE_MAX
    qtbot.wait(100)
    assert current_on_screen(view)
    model.loader.wait(5000)

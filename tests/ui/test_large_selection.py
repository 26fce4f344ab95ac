"""A selection of thousands (Ctrl+A over the whole library): what an action does with it
is read off the GUI thread, and a drag names its files without reading a row each.

``FEW_ROWS`` is lowered here so that a handful of images stands for the many."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from krea_desktop.library.store import Library
from krea_desktop.ui.gallery import actions as actions_module
from krea_desktop.ui.gallery import model as model_module
from krea_desktop.ui.mime import LIBRARY_IDS_MIME, decode_library_ids
from tests.ui.test_gallery import fill, make_image, make_window, no_trash, select

__all__ = ["make_window", "no_trash"]  # fixtures, used by name

FEW = 3


@pytest.fixture
def few_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_module, "FEW_ROWS", FEW, raising=False)
    monkeypatch.setattr(actions_module, "FEW_ROWS", FEW, raising=False)


def rows_read_on_gui_thread(w: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every row the model reads for anyone on the GUI thread, from now on."""
    read: list[int] = []
    entry_at = w.model.entry_at

    def watched(row: int) -> Any:
        if threading.current_thread() is threading.main_thread():
            read.append(row)
        return entry_at(row)

    monkeypatch.setattr(w.model, "entry_at", watched)
    return read


def test_many_selected_are_marked_favourite_without_reading_them_on_the_gui_thread(
    qtbot: QtBot, data_dir: Path, make_window: Any, few_rows: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, Ctrl+A over 100,000 images then F held the window for 3.5 s: each row read
    on the GUI thread, then each read again once written."""
    fill(data_dir, [make_image(f"many {k}", seed=k) for k in range(6)])
    w = make_window()
    select(w, *range(6))
    read = rows_read_on_gui_thread(w, monkeypatch)
    w.gallery_actions.favourite_action.trigger()
    assert read == []  # the selection is read by a worker
    with Library(data_dir) as other:
        qtbot.waitUntil(lambda: len(other.entries(favourites_only=True)) == 6)
    qtbot.waitUntil(lambda: all(getattr(w.model.entry_at(r), "favourite", False) for r in range(6)))


def test_many_selected_are_deleted_and_copied_from_rows_read_off_the_gui_thread(
    qtbot: QtBot, data_dir: Path, make_window: Any, few_rows: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = fill(data_dir, [make_image(f"many {k}", seed=k) for k in range(5)])
    w = make_window()
    read = rows_read_on_gui_thread(w, monkeypatch)
    QGuiApplication.clipboard().clear()
    select(w, *range(5))
    read.clear()  # the selection's own (the current image, for the menus)
    w.gallery_actions.copy_action.trigger()
    assert read == []

    def copied() -> list[str]:
        mime = QGuiApplication.clipboard().mimeData()
        return [] if mime is None else [u.toLocalFile() for u in mime.urls()]

    qtbot.waitUntil(lambda: bool(copied()))
    urls = copied()
    assert urls == [str(e.path) for e in reversed(entries)]  # in the gallery's order
    select(w, 0, 1, 2, 3)
    read.clear()
    w.gallery_actions.delete_action.trigger()
    assert read == []
    qtbot.waitUntil(lambda: w.model.rowCount() == 1)
    assert w.model.entry_at(0).id == entries[0].id
    assert "Moved 4 images to the trash." in w.message_banner.label.text()


def test_a_drag_of_many_names_their_files_without_reading_their_rows(
    data_dir: Path, make_window: Any, few_rows: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, a drag of 100,000 took 4.6 s to start: a row object and a Path each."""
    entries = fill(data_dir, [make_image(f"drag {k}", seed=k) for k in range(5)])
    w = make_window()
    read = rows_read_on_gui_thread(w, monkeypatch)
    mime = w.model.mimeData([w.model.index(r) for r in range(5)])
    assert read == []
    newest_first = list(reversed(entries))
    assert decode_library_ids(bytes(mime.data(LIBRARY_IDS_MIME).data())) == [e.id for e in newest_first]
    assert [u.toLocalFile() for u in mime.urls()] == [str(e.path) for e in newest_first]
    assert not mime.hasImage()  # pixels go with a single image only
    one = w.model.mimeData([w.model.index(0)])
    assert one.hasImage()


def test_adding_thousands_as_references_looks_for_files_only_until_the_tray_is_full(
    qtbot: QtBot, data_dir: Path, make_window: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A look on disk per selected image, all of them on the GUI thread, before: the tray
    takes ten."""
    entries = fill(data_dir, [make_image(f"ref {k}", seed=k) for k in range(20)])
    w = make_window()
    looked: list[Path] = []
    exists = Path.exists

    def watched(path: Path, *args: Any, **kwargs: Any) -> bool:
        if path.parent == data_dir / "images":
            looked.append(path)
        return exists(path, *args, **kwargs)

    entries[19].path.unlink()  # the newest: the first selected, gone
    select(w, *range(20))
    monkeypatch.setattr(Path, "exists", watched)
    w.gallery_actions.toward_action.trigger()
    monkeypatch.setattr(Path, "exists", exists)
    assert len(looked) <= 13  # up to the first on disk, then one each until ten are in
    w.tray.wait_for_loads()
    qtbot.waitUntil(lambda: w.tray.count() == 10 and not w.tray.isBusy())
    assert w.message_banner.label.text() == "Only 10 of 19 images were added: the tray holds 10."


def test_the_model_reads_again_only_the_changed_entries_it_holds(qapp: Any, data_dir: Path) -> None:
    """After 100,000 are marked favourite, reading each again on the GUI thread took
    seconds; those the model does not hold are read when next drawn."""
    fill(data_dir, [make_image(f"held {k}", seed=k) for k in range(6)])
    with Library(data_dir) as library:
        model = model_module.GalleryModel(library)
        for r in range(6):
            model.entry_at(r)
        ids = model.ids()
        model._entries.pop(ids[5])
        library.set_favourite(ids, True)
        asked: list[int] = []
        get_many = library.get_many

        def watched(wanted: Any) -> Any:
            wanted = list(wanted)
            asked.extend(wanted)
            return get_many(wanted)

        library.get_many = watched  # type: ignore[method-assign,assignment]
        model.reload_entries(set(ids))
        assert sorted(asked) == sorted(ids[:5])
        assert all(getattr(model.entry_at(r), "favourite", False) for r in range(6))


def test_an_image_already_in_the_tray_takes_no_room_from_a_new_one(
    qtbot: QtBot, data_dir: Path, make_window: Any, tmp_path: Path
) -> None:
    """With nine in the tray, one of them a library image, adding it again with a new one
    added nothing new: the one already there took the last place."""
    entries = fill(data_dir, [make_image(f"in tray {k}", colour=(40 * k, 0, 0)) for k in range(2)])
    w = make_window()
    for k in range(8):
        path = tmp_path / f"ref{k}.png"
        Image.new("RGB", (40, 30), (10, 20 * k, 10)).save(path)
        w.tray.add_reference(path, 0.5)
    select(w, 0)  # the newest image, first in the selection below: in the tray as a library image
    w.gallery_actions.toward_action.trigger()
    w.tray.wait_for_loads()
    qtbot.waitUntil(lambda: w.tray.count() == 9 and not w.tray.isBusy())
    select(w, 0, 1)
    w.gallery_actions.toward_action.trigger()
    w.tray.wait_for_loads()
    qtbot.waitUntil(lambda: w.tray.count() == 10 and not w.tray.isBusy())
    assert {r.parent for r in w.tray.model.items()} >= {entries[0].image_uuid, entries[1].image_uuid}
    select(w, 0)
    w.gallery_actions.toward_action.trigger()  # full, and already there
    assert w.message_banner.label.text() == "That image is already in the tray."


def test_undo_of_a_large_delete_selects_what_came_back_in_one_step(
    qtbot: QtBot, data_dir: Path, make_window: Any, no_trash: list[str]
) -> None:
    """Undo selected the images it brought back one index at a time, each step told to
    the actions, which read every range so far: 20,000 images held the window for many
    minutes (4,000 for 48 s). Now one selection of runs of rows, made in one step."""
    entries = fill(data_dir, [make_image(f"many {k}", seed=k) for k in range(40)])
    w = make_window()
    select(w, *range(5, 35))  # thirty in a row, in the middle
    w.gallery_actions.delete_action.trigger()
    qtbot.waitUntil(lambda: w.model.rowCount() == 10)
    changes: list[None] = []
    selection = w.gallery.selectionModel()
    selection.selectionChanged.connect(lambda *_args: changes.append(None))
    w.gallery_actions.undo_delete()
    qtbot.waitUntil(lambda: w.model.rowCount() == 40)
    assert w.gallery.selected_rows() == list(range(5, 35))
    assert selection.selection().count() == 1 and len(changes) == 1
    current = w.model.entry_at(selection.currentIndex().row())
    assert current is not None and current.id in {e.id for e in entries}


def test_images_deleted_from_all_over_the_gallery_leave_in_two_steps_and_come_back_in_place(
    qtbot: QtBot, data_dir: Path, make_window: Any, no_trash: list[str]
) -> None:
    """Every fifth of 10,000 images deleted held the window for 15 s: each run of rows
    was a step of Qt's, and at each step the selection and the actions went through
    every row left. Now the stretch they span goes in one step, and the rows between
    them come back in another."""
    fill(data_dir, [make_image(f"spread {k}", seed=k) for k in range(60)])
    w = make_window()
    uuids = [w.model.entry_at(r).image_uuid for r in range(60)]
    doomed = list(range(1, 59, 3))  # twenty runs of one row, with rows kept between them
    select(w, *doomed)
    steps: list[str] = []
    w.model.rowsRemoved.connect(lambda *_args: steps.append("removed"))
    w.model.rowsInserted.connect(lambda *_args: steps.append("inserted"))
    w.gallery_actions.delete_action.trigger()
    qtbot.waitUntil(lambda: w.model.rowCount() == 40)
    assert steps == ["inserted", "removed"]
    kept = [u for r, u in enumerate(uuids) if r not in doomed]
    assert [w.model.entry_at(r).image_uuid for r in range(40)] == kept
    assert all(w.model.row_of(w.model.id_at(r)) == r for r in range(40))
    assert w.gallery.currentIndex().row() == doomed[0]  # where the first deleted image was
    w.gallery_actions.undo_delete()
    qtbot.waitUntil(lambda: w.model.rowCount() == 60)
    assert [w.model.entry_at(r).image_uuid for r in range(60)] == uuids
    assert w.gallery.selected_rows() == doomed


def test_rows_taken_from_all_over_the_gallery_leave_it_scrolled_where_it_was(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    """In two steps the row count only grows, then shrinks to what it ends at: the view
    is not sent to the top on the way (as it would be if it first lost the whole stretch)."""
    fill(data_dir, [make_image(f"far {k}", seed=k) for k in range(300)])
    w = make_window()
    bar = w.gallery.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    bar.setValue(bar.maximum() // 3)
    before = bar.value()
    w.model.remove_ids({w.model.id_at(r) for r in range(0, 300, 15)})  # twenty runs, top to bottom
    assert w.model.rowCount() == 280
    assert bar.value() == before, (bar.value(), before, bar.maximum())


@pytest.mark.parametrize("current", [16, 15], ids=["kept", "taken-away"])
def test_rows_taken_from_all_over_keep_the_current_image_or_its_place(
    qtbot: QtBot, data_dir: Path, make_window: Any, current: int
) -> None:
    """In two steps, the current image went with the stretch and the selection made the
    stretch's neighbour (far below) current, and the view scrolled down to it; now the
    current image stays current, or, taken away, the one that takes its place is."""
    fill(data_dir, [make_image(f"far {k}", seed=k) for k in range(300)])
    w = make_window()
    bar = w.gallery.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    w.gallery.setCurrentIndex(w.model.index(current))
    bar.setValue(0)
    shown = w.model.id_at(current)
    doomed = list(range(0, 300, 15))  # twenty runs, row 15 among them, row 16 not
    w.model.remove_ids({w.model.id_at(r) for r in doomed})
    now = w.gallery.currentIndex().row()
    if current == 16:
        assert w.model.id_at(now) == shown
    else:
        assert now == current - sum(1 for r in doomed if r < current)
    assert bar.value() == 0


def test_rows_taken_from_all_over_never_leave_an_image_selected_that_was_not(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    """A selected run of rows that held rows going and rows staying must not turn, through
    the two steps, into a selection of images it never held: the next Delete would take
    them."""
    fill(data_dir, [make_image(f"far {k}", seed=k) for k in range(120)])
    w = make_window()
    select(w, *range(20, 25))  # one run of five, two of which go below
    before = {w.model.id_at(r) for r in w.gallery.selected_rows()}
    w.model.remove_ids({w.model.id_at(r) for r in range(0, 120, 3)})  # 21 and 24 among them
    after = {w.model.id_at(r) for r in w.gallery.selected_rows()}
    assert after <= before, sorted(after - before)


def test_rows_taken_from_all_over_leave_the_selected_images_that_stay_selected(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    """In two steps, a selected image that stayed lost its selection (run by run it kept
    it): Delete or F then did nothing until it was clicked again."""
    fill(data_dir, [make_image(f"far {k}", seed=k) for k in range(120)])
    w = make_window()
    select(w, 16, 40)
    kept = {w.model.id_at(16), w.model.id_at(40)}
    w.model.remove_ids({w.model.id_at(r) for r in range(0, 120, 3)})  # 16 and 40 stay
    assert {w.model.id_at(r) for r in w.gallery.selected_rows()} == kept

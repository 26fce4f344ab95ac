"""The gallery's scope (only some images: a sweep's, an image's lineage) and the row
bookkeeping that keeps a new image's cost the same whatever the library's size."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel
from pytestqt.qtbot import QtBot

from krea_desktop.library.store import Library, LibraryEntry
from krea_desktop.ui.background import shared_pool
from krea_desktop.ui.gallery.filter_bar import GalleryFilterBar
from krea_desktop.ui.gallery.model import GalleryModel
from krea_desktop.ui.gallery.view import GalleryView
from tests.ui.test_gallery import T0, make_image, make_window, no_trash

__all__ = ["make_window", "no_trash"]  # fixtures, used by name

PROMPTS = ["red harbour", "blue harbour", "red mountain", "blue mountain", "red forest", "blue forest"]


@pytest.fixture
def library(qapp: QApplication, tmp_path: Path) -> Iterator[Library]:
    lib = Library(tmp_path / "lib")
    yield lib
    shared_pool().waitForDone(30_000)  # no gallery worker reads through it as it closes
    lib.close()


def save_all(library: Library) -> list[LibraryEntry]:
    """Six images, oldest first; the odd ones favourites, every third one 16:9."""
    entries = [
        library.save(make_image(p, ratio="16:9" if i % 3 == 0 else "1:1", seed=i), created_at=T0 + timedelta(minutes=i))
        for i, p in enumerate(PROMPTS)
    ]
    library.set_favourite([e.id for e in entries[1::2]], True)
    return entries


def shown(model: GalleryModel) -> list[int]:
    return [model.data(model.index(r), GalleryModel.IdRole) for r in range(model.rowCount())]


# --- the model -------------------------------------------------------------------------------------


@pytest.mark.parametrize("small_scope", [1000, 0], ids=["read by id", "filtered from every id"])
def test_a_scope_shows_only_its_images_newest_first_within_the_filters(
    library: Library, monkeypatch: pytest.MonkeyPatch, small_scope: int
) -> None:
    monkeypatch.setattr("krea_desktop.ui.gallery.model.SMALL_SCOPE", small_scope)
    entries = save_all(library)
    twin = library.save(make_image("red forest twin"), created_at=T0 + timedelta(minutes=5))  # same time as [5]
    model = GalleryModel(library)
    scope = [entries[0].id, entries[2].id, entries[3].id, entries[5].id]
    model.set_scope(reversed(scope), "Sweep 7")  # any order, any collection
    assert shown(model) == [entries[5].id, entries[3].id, entries[2].id, entries[0].id]
    model.extend_scope([twin.id])  # as new as [5]: ties go by id, as in the index
    assert shown(model) == [twin.id, entries[5].id, entries[3].id, entries[2].id, entries[0].id]
    model.refresh()
    assert shown(model) == [twin.id, entries[5].id, entries[3].id, entries[2].id, entries[0].id]
    row = model.entry_at(1)
    assert row is not None and row.id == entries[5].id and row.favourite  # read from the index
    model.set_scope(scope, "Sweep 7")
    assert model.scope_label() == "Sweep 7"
    assert model.scope_ids() == frozenset(scope)
    assert model.has_scope()

    model.refresh(search="blue")
    assert shown(model) == [entries[5].id, entries[3].id]
    model.refresh(search=None, favourites_only=True)
    assert shown(model) == [entries[5].id, entries[3].id]
    model.refresh(favourites_only=False, ratio="16:9")
    assert shown(model) == [entries[3].id, entries[0].id]

    model.set_scope(None)
    assert shown(model) == [entries[3].id, entries[0].id]  # the filters stay
    assert model.scope_label() == "" and model.scope_ids() is None and not model.has_scope()
    model.refresh(ratio=None)
    assert shown(model) == [twin.id] + [e.id for e in reversed(entries)]
    model.loader.wait(5000)


def test_an_empty_scope_shows_nothing_and_ids_not_in_the_library_are_ignored(library: Library) -> None:
    entries = save_all(library)
    model = GalleryModel(library)
    model.set_scope([], "Nothing yet")
    assert model.rowCount() == 0 and model.has_scope()
    model.set_scope([entries[1].id, 999_999], "One real")
    assert shown(model) == [entries[1].id]
    model.loader.wait(5000)


def test_the_scope_passes_the_model_tester_and_tells_when_it_changes(qtmodeltester: Any, library: Library) -> None:
    entries = save_all(library)
    model = GalleryModel(library)
    told: list[str] = []
    model.scopeChanged.connect(lambda: told.append(model.scope_label()))
    model.set_scope([e.id for e in entries[:3]], "first three")
    qtmodeltester.check(model)
    model.extend_scope([entries[4].id])
    qtmodeltester.check(model)
    model.set_scope(None)
    qtmodeltester.check(model)
    assert told == ["first three", "first three", ""]
    model.loader.wait(5000)


def test_new_images_show_in_a_scope_only_when_they_belong_to_it(library: Library) -> None:
    entries = save_all(library)
    model = GalleryModel(library)
    model.set_scope([entries[0].id, entries[1].id], "Sweep")
    outsider = library.save(make_image("red kite"), created_at=T0 + timedelta(hours=1))
    model.add_entry(outsider)
    assert shown(model) == [entries[1].id, entries[0].id]

    # The code that set the scope takes a new image in after the gallery was told of it.
    model.extend_scope([outsider.id])
    assert shown(model) == [outsider.id, entries[1].id, entries[0].id]
    member = library.save(make_image("red kite again"), created_at=T0 + timedelta(hours=2))
    model.add_entry(member)
    assert member.id not in shown(model)
    model.extend_scope([member.id, outsider.id])
    model.add_entry(member)  # told again: still one row
    newer = library.save(make_image("red kite, third"), created_at=T0 + timedelta(hours=3))
    model.extend_scope([newer.id])  # taken in before the gallery is told: shows at once
    model.add_entry(newer)
    assert shown(model) == [newer.id, member.id, outsider.id, entries[1].id, entries[0].id]
    assert model.row_of(newer.id) == 0 and model.row_of(entries[0].id) == 4
    assert model.entry_at(0) == newer

    # An older image taken in goes where it belongs, not on top.
    model.extend_scope([entries[3].id])
    assert shown(model) == [newer.id, member.id, outsider.id, entries[3].id, entries[1].id, entries[0].id]
    # Filters still apply to what is taken in.
    model.refresh(search="mountain")
    model.extend_scope([entries[2].id, entries[4].id])
    assert shown(model) == [entries[3].id, entries[2].id]
    model.loader.wait(5000)


def test_extending_without_a_scope_changes_nothing(library: Library) -> None:
    entries = save_all(library)
    model = GalleryModel(library)
    model.extend_scope([entries[0].id])
    assert not model.has_scope()
    assert shown(model) == [e.id for e in reversed(entries)]
    model.loader.wait(5000)


def test_rows_and_ids_stay_in_step_through_adds_and_removals(library: Library) -> None:
    """New images go on top without renumbering the rest in memory; whatever mix of
    additions and removals follows, row <-> id lookups agree with the rows shown."""
    base = [library.save(make_image(f"base {i}", seed=i), created_at=T0 + timedelta(minutes=i)) for i in range(12)]
    model = GalleryModel(library)
    expected = [e.id for e in reversed(base)]
    rng = random.Random(7)
    for step in range(40):
        if expected and rng.random() < 0.4:
            gone = set(rng.sample(expected, rng.randint(1, min(4, len(expected)))))
            model.remove_ids(gone)
            expected = [i for i in expected if i not in gone]
        else:
            entry = library.save(make_image(f"new {step}", seed=step), created_at=T0 + timedelta(hours=1 + step))
            model.add_entry(entry)
            expected.insert(0, entry.id)
        assert shown(model) == expected
        assert model.ids() == expected
        assert all(model.row_of(i) == r for r, i in enumerate(expected))
        assert all(model.id_at(r) == i for r, i in enumerate(expected))
    assert model.id_at(len(expected)) is None and model.id_at(-1) is None
    assert model.row_of(base[0].id) in (None, len(expected) - 1)
    # A row looked up after all that is the right image.
    for r in (0, len(expected) // 2, len(expected) - 1):
        entry = model.entry_at(r)
        assert entry is not None and entry.id == expected[r]
    model.loader.wait(5000)


# --- the filter bar's chip ---------------------------------------------------------------------------


def test_the_chip_shows_the_scope_and_its_button_clears_it(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    entries = save_all(Library(data_dir))
    w = make_window()
    chip = w.findChild(QLabel, "galleryScopeLabel").parentWidget()
    assert chip.objectName() == "galleryScope"
    assert not chip.isVisible()
    assert w.model.rowCount() == 6

    w.model.set_scope([entries[0].id, entries[4].id], "Sweep of ref1")
    assert chip.isVisible()
    assert chip.findChild(QLabel, "galleryScopeLabel").text() == "Sweep of ref1"
    assert w.model.rowCount() == 2
    assert w.filter_bar.count_label.text() == "2 of 6"

    qtbot.mouseClick(w.filter_bar.scope_chip.clear_button, Qt.MouseButton.LeftButton)
    assert not chip.isVisible()
    assert not w.model.has_scope()
    assert shown(w.model) == [e.id for e in reversed(entries)]
    assert w.filter_bar.count_label.text() == ""


def test_clearing_the_scope_keeps_the_search(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    entries = save_all(Library(data_dir))
    w = make_window()
    w.model.set_scope([entries[0].id, entries[1].id], "Two")
    w.filter_bar.search.setText("red")
    w.filter_bar.search.returnPressed.emit()
    assert shown(w.model) == [entries[0].id]
    w.filter_bar.scope_chip.clear_button.click()
    assert shown(w.model) == [entries[4].id, entries[2].id, entries[0].id]
    assert w.filter_bar.count_label.text() == "3 of 6"


def test_an_empty_scope_says_so_and_clear_the_filters_shows_everything(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    entries = save_all(Library(data_dir))
    w = make_window()
    w.model.set_scope([entries[2].id], "Lineage of red mountain")
    w.filter_bar.search.setText("blue")
    w.filter_bar.search.returnPressed.emit()
    assert w.model.rowCount() == 0
    assert "No images in “Lineage of red mountain” match “blue”." in w.gallery.empty_text()
    button = w.gallery.clear_filters_button
    assert button.isVisible()
    button.click()
    assert w.model.rowCount() == 6
    assert not w.model.has_scope() and not w.filter_bar.scope_chip.isVisible()
    assert w.filter_bar.search.text() == ""


def test_a_bar_made_on_its_own_finds_no_model_until_given_one(qtbot: QtBot, library: Library) -> None:
    entries = save_all(library)
    holder = GalleryView()
    qtbot.addWidget(holder)
    bar = GalleryFilterBar(holder)  # the view holds no GalleryModel child: no chip to drive
    model = GalleryModel(library)
    model.set_scope([entries[0].id], "One")
    assert not bar.scope_chip.isVisibleTo(bar)
    bar.set_model(model)
    assert bar.scope_chip.isVisibleTo(bar)
    bar.clear_scope()
    assert not bar.scope_chip.isVisibleTo(bar) and model.rowCount() == 6
    model.loader.wait(5000)

"""The gallery as an artist iterating meets it: a toolbar that stays put, empty states
that say what to do, costs that say when they are simulated, and one colour language
for toward and away."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QMenu, QPushButton, QToolButton
from pytestqt.qtbot import QtBot

from krea_desktop.api import spec
from krea_desktop.api.record import ReferenceRecord
from krea_desktop.library.store import Library
from krea_desktop.ui import theme
from krea_desktop.ui.background import ImmediateRunner
from krea_desktop.ui.money import format_cost
from krea_desktop.ui.references.card import ReferenceItem
from krea_desktop.ui.viewer import compare
from krea_desktop.ui.viewer.viewer import ReferenceChip, entry_facts
from krea_desktop.ui.window.main_window import MainWindow
from tests.ui.test_gallery import fill, make_image, make_window, no_trash, select, wait_thumbnails

__all__ = ["make_window", "no_trash"]  # fixtures, used by name


def toolbar_buttons(w: MainWindow) -> dict[str, QToolButton]:
    bar = w.gallery_toolbar
    found = {}
    for action in bar.actions():
        button = bar.widgetForAction(action)
        assert isinstance(button, QToolButton)
        found[action.text()] = button
    return found


def gallery_menu(w: MainWindow) -> QMenu:
    for action in w.menuBar().actions():
        if action.text().replace("&", "") == "Gallery":
            menu = action.menu()
            assert isinstance(menu, QMenu)
            return menu
    raise AssertionError("no Gallery menu")


# --- a toolbar that stays put -------------------------------------------------------------------


def test_toolbar_buttons_keep_their_icons_labels_and_widths_whatever_is_selected(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    fill(data_dir, [make_image(f"steady {i}", seed=i) for i in range(4)])
    w = make_window()
    w.resize(1600, 800)
    qtbot.waitUntil(lambda: all(b.isVisible() for b in toolbar_buttons(w).values()))

    def snapshot() -> dict[str, tuple[str, int]]:
        QApplication.processEvents()
        return {name: (b.text(), b.sizeHint().width()) for name, b in toolbar_buttons(w).items()}

    before = snapshot()
    select(w, 0)
    qtbot.waitUntil(lambda: w.gallery_actions.delete_action.isEnabled())
    one = snapshot()
    select(w, 0, 1, 2)
    qtbot.waitUntil(lambda: len(w.gallery.selected_rows()) == 3)
    three = snapshot()
    assert before == one == three
    assert w.gallery_toolbar.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonTextBesideIcon
    for button in toolbar_buttons(w).values():
        assert not button.icon().isNull()
        assert 0 < len(button.text()) <= 12  # a short label, not the menu's sentence
    # What depends on the selection is said in the tooltip instead.
    assert "3" in w.gallery_actions.delete_action.toolTip()


def test_every_toolbar_action_is_in_the_menu_bar_and_the_context_menu(data_dir: Path, make_window: Any) -> None:
    fill(data_dir, [make_image("menus")])
    w = make_window()
    toolbar = set(w.gallery_toolbar.actions())
    assert len(toolbar) >= 10
    in_menu_bar = set(gallery_menu(w).actions())
    context = w.gallery_actions.context_menu()  # what a right-click pops up
    in_context = set(context.actions())
    context.deleteLater()
    assert toolbar - in_menu_bar == set()
    assert toolbar - in_context == set()


def test_a_narrow_gallery_folds_the_rest_of_the_toolbar_into_its_overflow_menu(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    fill(data_dir, [make_image("narrow")])
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    light = app.palette()
    app.setPalette(theme.dark_palette())  # as the app runs
    try:
        w = make_window()
    finally:
        app.setPalette(light)
    w.resize(760, 700)
    w.split.setSizes([600, 160])
    bar = w.gallery_toolbar
    extension = bar.findChild(QToolButton, "qt_toolbar_ext_button")
    assert extension is not None
    qtbot.waitUntil(extension.isVisible)
    hidden = [a for a in bar.actions() if not bar.widgetForAction(a).isVisible()]
    shown = [a for a in bar.actions() if bar.widgetForAction(a).isVisible()]
    assert hidden and shown
    # The » is drawn to be seen on the dark toolbar.
    background = theme.dark_palette().color(QPalette.ColorRole.Window).lightness()
    glyph = extension.icon().pixmap(16, 16).toImage()
    inked = [
        glyph.pixelColor(x, y).lightness()
        for x in range(glyph.width())
        for y in range(glyph.height())
        if glyph.pixelColor(x, y).alpha() > 200
    ]
    assert inked and max(inked) - background > 100
    # The » button's menu lists what did not fit, in order.
    menu = extension.menu()
    assert menu is not None
    overflow = [a for a in menu.actions() if not a.isSeparator()]
    assert overflow == hidden
    assert set(overflow) | set(shown) == set(bar.actions())
    # The filters' » offers what its hidden controls do, as menu items.
    filters = w.filter_bar
    qtbot.waitUntil(lambda: not filters.size_slider.isVisible())
    more = filters.more_menu
    assert filters.findChild(QToolButton, "qt_toolbar_ext_button").menu() is more
    more.aboutToShow.emit()
    items = {a.text(): a for a in more.actions()}
    assert "Larger thumbnails" in items and "Smaller thumbnails" in items
    before = filters.size_slider.value()
    items["Larger thumbnails"].trigger()
    assert filters.size_slider.value() == before + filters.size_slider.pageStep()
    assert w.gallery.thumb_side == filters.size_slider.value()
    if not filters.favourites.isVisible():
        items[filters.favourites.text()].trigger()
        assert filters.favourites.isChecked()


# --- empty states -----------------------------------------------------------------------------------


def test_an_empty_library_says_what_to_do_first(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    w = make_window()
    assert w.model.rowCount() == 0
    blank = QImage(w.gallery.viewport().size(), QImage.Format.Format_RGB32)
    blank.fill(w.gallery.palette().color(QPalette.ColorRole.Base))
    painted = w.gallery.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    assert painted != blank  # the text is drawn on the empty grid
    text = w.gallery.empty_text()
    assert "Generate" in text and "Ctrl+Enter" in text and "References" in text
    clear = w.gallery.findChild(QPushButton, "galleryClearFilters")
    assert clear is not None and not clear.isVisible()  # nothing to clear


def test_a_search_with_no_matches_says_so_and_offers_to_clear(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    fill(data_dir, [make_image("a harbour"), make_image("a heron")])
    w = make_window()
    assert w.gallery.empty_text() == ""
    w.filter_bar.search.setText("xyz")
    qtbot.waitUntil(lambda: w.model.rowCount() == 0)
    assert "No images match “xyz”" in w.gallery.empty_text()
    before = w.gallery.viewport().grab().toImage()
    clear = w.gallery.findChild(QPushButton, "galleryClearFilters")
    assert clear is not None
    qtbot.waitUntil(clear.isVisible)
    assert clear.toolTip()
    qtbot.mouseClick(clear, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.model.rowCount() == 2)
    assert w.filter_bar.search.text() == ""
    assert w.gallery.empty_text() == "" and not clear.isVisible()
    assert not before.isNull()


def test_favourites_only_with_none_says_so(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    fill(data_dir, [make_image("plain")])
    w = make_window()
    w.filter_bar.favourites.setChecked(True)
    qtbot.waitUntil(lambda: w.model.rowCount() == 0)
    assert "No favourite images" in w.gallery.empty_text()


# --- honest money -----------------------------------------------------------------------------------


def test_format_cost_uses_one_precision_and_says_simulated() -> None:
    assert format_cost(0.0045, simulated=False) == "$0.0045"
    assert format_cost(0.018, simulated=True) == "$0.0180 (simulated)"


def _amount(text: str) -> Decimal:
    match = re.search(r"\$(\d+\.\d+)", text)
    assert match, text
    return Decimal(match.group(1))


def test_demo_costs_say_simulated_and_add_up_to_the_cent_fraction_shown(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    w = make_window()
    assert w.demo
    w.prompt_panel.promptEdit.setPlainText("four simulated kites")
    w.prompt_panel.countSpin.setValue(4)
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
        qtbot.mouseClick(w.prompt_panel.generateButton, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.model.rowCount() == 4)
    wait_thumbnails(qtbot, w)
    delegate = w.gallery.itemDelegate()
    w.gallery.viewport().repaint()
    painted = [text for text, _colour, _ratio in delegate._badge_images if "$" in text]
    assert painted and all("simulated" in text for text in painted), painted
    badges = []
    for row in range(4):
        entry = w.model.entry_at(row)
        assert entry is not None and entry.cost
        (cost,) = [t for t in delegate.badge_texts(entry) if "$" in t]
        badges.append(cost)
    assert all("simulated" in b for b in badges), badges
    (row,) = w.job_list.rows.values()
    status = row.status.text()
    assert "simulated" in status, status
    qtbot.waitUntil(w.cost_label.isVisible)
    session = w.cost_label.text()
    assert "simulated" in session, session
    assert sum(_amount(b) for b in badges) == _amount(status) == _amount(session)


def test_costs_with_a_key_are_not_called_simulated(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    fill(data_dir, [make_image("paid for")])
    w = make_window()
    w.gallery.costs_simulated = False
    entry = w.model.entry_at(0)
    assert entry is not None
    assert w.gallery.itemDelegate().badge_texts(entry) == ["$0.0035"]


def test_each_cost_says_whether_it_was_made_up_whatever_mode_the_window_is_in_now(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    paid = make_image("paid for", "16:9")
    assert paid.record is not None
    paid = dataclasses.replace(paid, record=paid.record.replace(simulated=False))  # as a client with a key records it
    fill(data_dir, [paid])
    w = make_window()
    assert w.demo
    w.prompt_panel.promptEdit.setPlainText("two simulated kites")
    w.prompt_panel.countSpin.setValue(2)
    w.ratio_bar.setRatio("1:1")
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
        qtbot.mouseClick(w.prompt_panel.generateButton, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.model.rowCount() == 3)
    delegate = w.gallery.itemDelegate()

    def costs() -> dict[str, str]:
        entries = [w.model.entry_at(row) for row in range(3)]
        return {e.prompt: next(t for t in delegate.badge_texts(e) if "$" in t) for e in entries if e is not None}

    def viewer_cost(prompt: str) -> str:
        entry = next(e for e in (w.model.entry_at(row) for row in range(3)) if e is not None and e.prompt == prompt)
        return dict(entry_facts(entry, w.demo))["Cost"]

    # In demo mode the image paid for with a key is not called simulated.
    assert costs()["paid for"] == "$0.0035"
    assert viewer_cost("paid for") == "$0.0035"
    assert costs()["two simulated kites"].endswith("(simulated)")
    # A key added: the simulator's amounts still say so, in the gallery, the viewer and the
    # job's row; and its cost is no estimate of what Runware charges for a square image,
    # for which the library has no cost reported with a key.
    w._set_demo(False)  # as once a key is saved (Settings) or found late (a slow keyring)
    assert costs()["two simulated kites"] == "$0.0045 (simulated)", costs()
    assert viewer_cost("two simulated kites") == "$0.0045 (simulated)"
    (row,) = w.job_list.rows.values()
    row.end()
    assert "(simulated)" in row.status.text(), row.status.text()
    # The only amount reported with a key is for 16:9: the estimate is from it, not made up.
    square = spec.RATIOS_BY_NAME["1:1"]
    assert w.library.last_cost(square.width, square.height, simulated=False) == 0.0035
    assert w.cost_estimate.text() == "≈ $0.0070", w.cost_estimate.text()
    # Nothing was charged in this session: the simulator's $0.0090 is no session cost
    # with a key, only said beside it.
    assert not w.cost_label.isVisible(), w.cost_label.text()
    assert "$0.0090 (simulated) in demo mode" in w.cost_label.toolTip(), w.cost_label.toolTip()
    w._set_demo(True)
    assert w.cost_estimate.text() == "≈ $0.0090 (simulated)", w.cost_estimate.text()
    assert w.cost_label.isVisible() and w.cost_label.text() == "Session cost $0.0090 (simulated)"


# --- one colour language -------------------------------------------------------------------------------


def test_toward_and_away_wear_the_same_colours_everywhere(qtbot: QtBot, data_dir: Path, tmp_path: Path) -> None:
    image = QImage(16, 16, QImage.Format.Format_RGB32)
    image.fill(QColor(90, 90, 90))
    references = [
        {"image": "u1", "strength": 1.0, "source": "a.png"},
        {"image": "u2", "strength": -1.0, "source": "b.png"},
    ]
    with Library(data_dir) as lib:
        entry = lib.save(make_image("both ways", references=references))
    for strength in (1.0, -1.0):
        expected = theme.strength_color(strength)
        text = theme.strength_text_color(strength)
        card = ReferenceItem(tmp_path / "ref.png", "0" * 64, image, strength)
        qtbot.addWidget(card)
        chip = ReferenceChip(ReferenceRecord(image="u", strength=strength, source="ref.png"))
        qtbot.addWidget(chip)
        assert card.directionColor() == expected == chip.directionColor()
        assert card.directionLabel.palette().color(QPalette.ColorRole.WindowText) == text
        assert chip.strength_label.palette().color(QPalette.ColorRole.WindowText) == text
        # The compare dialog's caption writes each strength in the same colour.
        caption = compare.caption_html(entry)
        assert f"color:{text.name()}" in caption
    assert theme.strength_text_color(1.0) != theme.strength_text_color(-1.0)
    dialog = compare.CompareDialog(entry, entry, runner=ImmediateRunner())
    qtbot.addWidget(dialog)
    captions = [label.text() for label in dialog.findChildren(QLabel, "compareFacts")]
    assert len(captions) == 2 and all(theme.strength_text_color(-1.0).name() in c for c in captions)

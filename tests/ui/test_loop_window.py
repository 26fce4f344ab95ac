"""The loop the app exists for, as an artist meets it: everything in sight at a laptop's
size, results one by one, messages that do not move the window, the keyboard, and recall
that restores exactly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QDoubleSpinBox, QLineEdit, QScrollArea, QStyle, QWidget
from pytestqt.qtbot import QtBot

from krea_desktop import config
from krea_desktop.api.record import GenerationRecord
from krea_desktop.ui import theme
from krea_desktop.ui.app import build_main_window, create_main_window, open_main_window
from krea_desktop.ui.compose.prompt_panel import PromptPanel
from krea_desktop.ui.gallery.filter_bar import SearchField
from krea_desktop.ui.gallery.view import SPACING
from krea_desktop.ui.window.banner import MessageToast
from krea_desktop.ui.window.main_window import MainWindow
from krea_desktop.ui.window.opening import first_size
from tests.helpers.wheel import wheel


@pytest.fixture
def make_window(qtbot: QtBot, data_dir: Path, memory_keyring: object) -> Iterator[Any]:
    windows: list[MainWindow] = []

    def make(size: tuple[int, int] = (1366, 768), latency: float = 0.0) -> MainWindow:
        w = create_main_window(demo_latency=latency)
        qtbot.addWidget(w)
        windows.append(w)
        w.resize(*size)
        w.show()
        qtbot.waitExposed(w)
        return w

    yield make
    for w in windows:
        w.close()


def add_references(qtbot: QtBot, w: MainWindow, folder: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        path = folder / f"ref{i}.png"
        Image.new("RGB", (64, 48), (40 * i % 256, 120, 200)).save(path)
        paths.append(path)
        w.tray.add_reference(path, 0.7 - i)
    qtbot.waitUntil(lambda: w.tray.count() == n and not w.tray.isBusy())
    QApplication.processEvents()
    return paths


def left_column(w: MainWindow) -> QScrollArea:
    scroll = w.split.widget(0)
    assert isinstance(scroll, QScrollArea)
    return scroll


def in_sight(w: MainWindow, widget: QWidget) -> bool:
    """Whether all of ``widget`` is inside the left column's visible area."""
    viewport = left_column(w).viewport()
    top_left = widget.mapTo(viewport, QPoint(0, 0))
    return widget.isVisible() and viewport.rect().contains(QRect(top_left, widget.size()))


# -- 1. layout for the loop -------------------------------------------------------------------


def test_at_1366x768_the_whole_loop_is_in_sight(qtbot: QtBot, make_window: Any, tmp_path: Path) -> None:
    w = make_window((1366, 768))
    add_references(qtbot, w, tmp_path, 3)
    panel = w.prompt_panel
    assert left_column(w).verticalScrollBar().value() == 0
    for widget in (panel.promptEdit, panel.generateButton, *w.ratio_bar.buttons(), w.tray):
        assert in_sight(w, widget), widget.objectName()
    for card in w.tray.items():
        assert in_sight(w, card.strengthSlider) and in_sight(w, card.strengthSpin)
    assert not panel.advancedSection.isVisible()  # folded away
    assert w.gallery.width() > w.width() / 2  # the gallery keeps most of the window


@pytest.mark.parametrize(
    ("screen", "size"),
    [((1920, 1080), (1360, 860)), ((1366, 768), (1350, 720)), ((800, 600), (784, 552)), ((0, 0), (1360, 860))],
)
def test_the_first_windows_size_leaves_room_for_its_frame_on_the_screen(
    screen: tuple[int, int], size: tuple[int, int]
) -> None:
    assert first_size(QSize(*screen)) == QSize(*size)


def test_a_first_start_on_a_laptop_screen_opens_whole_on_it(
    qtbot: QtBot, data_dir: Path, memory_keyring: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing saved yet, a 1366x768 screen: the window, its job panel and its status bar
    # fit on it (a 1360x860 window had the bottom 100 px below the screen's edge).
    class Laptop:
        def availableGeometry(self) -> QRect:
            return QRect(0, 0, 1366, 768)

    monkeypatch.setattr(MainWindow, "screen", lambda self: Laptop())
    w = create_main_window(demo_latency=0.0)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    assert w.width() <= 1366 - 16 and w.height() <= 768 - 48
    for widget in (w.statusBar(), w.job_list, w.prompt_panel.generateButton):
        assert widget.isVisible()
        assert w.rect().contains(QRect(widget.mapTo(w, QPoint(0, 0)), widget.size())), widget.objectName()
    w.close()


def test_references_wrap_into_the_columns_height_and_scroll_inside_the_tray(
    qtbot: QtBot, make_window: Any, tmp_path: Path
) -> None:
    def shown(card: QWidget) -> bool:  # in sight in the tray's own scrolled area
        area = w.tray.findChild(QScrollArea)
        assert area is not None
        return in_sight(w, card) and area.viewport().rect().contains(
            QRect(card.mapTo(area.viewport(), QPoint(0, 0)), card.size())
        )

    # A wide screen: the controls widen with the window, and eight references sit in two
    # rows of four, every card with its strength in sight.
    w = make_window((1920, 1080))
    add_references(qtbot, w, tmp_path, 8)
    qtbot.waitUntil(lambda: all(shown(card) for card in w.tray.items()))
    assert len({card.mapTo(w.tray, QPoint(0, 0)).y() for card in w.tray.items()}) == 2
    assert w.gallery.width() > w.width() / 2  # the gallery keeps most of the window
    # A laptop: the rows that do not fit scroll inside the tray; the column with the
    # prompt and Generate stays put, and the newest card is the one in sight.
    w.resize(1366, 768)
    path = tmp_path / "newest.png"
    Image.new("RGB", (64, 48), (250, 20, 20)).save(path)
    w.tray.add_reference(path)
    qtbot.waitUntil(lambda: w.tray.count() == 9 and shown(w.tray.items()[-1]))
    assert left_column(w).verticalScrollBar().maximum() == 0
    assert in_sight(w, w.prompt_panel.generateButton) and in_sight(w, w.tray)
    assert not shown(w.tray.items()[0])


def test_the_wheel_scrolls_the_column_over_its_controls_and_past_the_trays_last_row(
    qtbot: QtBot, make_window: Any, tmp_path: Path
) -> None:
    w = make_window((800, 600))
    add_references(qtbot, w, tmp_path, 2)  # one row: the tray itself has nothing to scroll
    column = left_column(w).verticalScrollBar()
    column.setValue(0)  # (the column came down to the cards as they were added)
    assert column.maximum() > 0
    wheel(left_column(w).viewport(), -1)  # over the prompt and the headings
    assert column.value() > 0
    column.setValue(0)
    card = w.tray.items()[0]
    strength = card.strength()
    wheel(card.strengthSlider, -1)  # over a strength nobody clicked
    assert column.value() > 0 and card.strength() == strength


def test_at_800x600_a_reference_brought_in_is_shown_and_one_given_back_moves_nothing(
    qtbot: QtBot, make_window: Any, tmp_path: Path
) -> None:
    # The tray begins near the column's bottom edge on a short screen: a card the person
    # adds (a drop, a paste, Add, a result dragged back) would land out of sight.
    w = make_window((800, 600))
    column = left_column(w).verticalScrollBar()
    assert column.value() == 0 and column.maximum() > 0
    add_references(qtbot, w, tmp_path, 1)
    card = w.tray.items()[0]
    qtbot.waitUntil(lambda: in_sight(w, card))
    assert column.value() > 0
    # The next start gives the tray back as it was, with the column at its top.
    w.close()
    again = make_window((800, 600))
    qtbot.waitUntil(lambda: again.tray.count() == 1 and not again.tray.isBusy())
    qtbot.wait(50)
    assert left_column(again).verticalScrollBar().value() == 0
    assert in_sight(again, again.prompt_panel.promptEdit)
    # Setting the tray from an image's record ("Use all parameters") keeps the prompt,
    # which it also set, in sight.
    again.prompt_panel.setPrompt("a harbour with one reference")
    with qtbot.waitSignal(again.client_thread.jobFinished, timeout=30000):
        again.generate()
    again.tray.clear()
    left_column(again).verticalScrollBar().setValue(0)
    again.recall.use_all_parameters(again.library.entries()[0])
    qtbot.waitUntil(lambda: again.tray.count() == 1 and not again.tray.isBusy())
    qtbot.wait(50)
    assert left_column(again).verticalScrollBar().value() == 0
    assert in_sight(again, again.prompt_panel.promptEdit)
    assert again.tray.items()[0].source == "ref0.png"  # its name, not its kept copy's hash


def test_a_reference_still_loading_when_the_window_closes_is_in_the_tray_next_time(
    qtbot: QtBot, make_window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from krea_desktop.ui.references import loading as loading_module

    real = loading_module.load_source

    def slow(*args: Any, **kwargs: Any) -> Any:  # a large file, or a web image on its way
        time.sleep(0.4)
        return real(*args, **kwargs)

    monkeypatch.setattr(loading_module, "load_source", slow)
    w = make_window()
    path = tmp_path / "dropped.png"
    Image.new("RGB", (64, 48), (200, 40, 40)).save(path)
    w.tray.add_reference(path, -1.5)
    assert w.tray.isBusy()
    w.close()  # at once, before it has loaded
    monkeypatch.setattr(loading_module, "load_source", real)
    again = make_window()
    qtbot.waitUntil(lambda: again.tray.count() == 1 and not again.tray.isBusy())
    assert [r.strength for r in again.tray.references()] == [-1.5]


def test_a_window_a_little_shorter_than_the_controls_ease_gives_the_prompt_less_room_instead_of_a_scroll_bar(
    qtbot: QtBot, make_window: Any
) -> None:
    w = make_window((1366, 768))
    scroll = left_column(w)
    content = scroll.widget()
    QApplication.processEvents()
    preferred = content.sizeHint().height()
    least = content.minimumSizeHint().height()
    assert least < preferred - 20  # the prompt can give up some of its height
    # The window a few pixels short of the controls' preferred height (as a laptop's
    # screen, less the title bar and the panel, leaves it).
    target = w.height() - (scroll.viewport().height() - (preferred - 6))
    w.resize(1366, target)
    qtbot.waitUntil(lambda: w.height() == target)
    QApplication.processEvents()
    assert least < scroll.viewport().height() < preferred
    assert scroll.verticalScrollBar().maximum() == 0
    assert content.height() == scroll.viewport().height()
    panel = w.prompt_panel
    for widget in (panel.promptEdit, panel.hintLabel, panel.generateButton, w.tray):
        assert in_sight(w, widget), widget.objectName()
        assert widget.height() >= widget.minimumSizeHint().height(), widget.objectName()
    # Shorter than the least the controls need, the column scrolls, by only what is missing
    # (not by all the prompt's ease as well).
    target = w.height() - (scroll.viewport().height() - (least - 40))
    w.resize(1366, target)
    qtbot.waitUntil(lambda: w.height() == target and scroll.verticalScrollBar().maximum() > 0)
    assert content.height() == least
    assert scroll.verticalScrollBar().maximum() == least - scroll.viewport().height()


def test_at_800x600_the_prompt_stays_in_sight_beside_the_references_brought_in(
    qtbot: QtBot, make_window: Any, tmp_path: Path
) -> None:
    # The window as a window manager leaves it on an 800x600 screen, the demo banner shown:
    # the column cannot show every control, and scrolls to a card the person adds. It
    # scrolled by the prompt's whole ease as well, and the prompt left the screen.
    w = make_window((800, 570))
    w.prompt_panel.setPrompt("a lighthouse in fog, gouache, warm light")
    add_references(qtbot, w, tmp_path, 2)
    column = left_column(w).verticalScrollBar()
    qtbot.waitUntil(lambda: all(in_sight(w, card) for card in w.tray.items()))
    assert column.value() > 0  # it did have to scroll
    panel = w.prompt_panel
    for widget in (panel.promptEdit, panel.generateButton, *(c.strengthSpin for c in w.tray.items())):
        assert in_sight(w, widget), widget.objectName()


def typing_a_strength(qtbot: QtBot, w: MainWindow, folder: Path, text: str) -> QDoubleSpinBox:
    """One reference in the tray, and ``text`` typed into its strength box (no Enter)."""
    add_references(qtbot, w, folder, 1)
    spin = w.tray.items()[0].strengthSpin
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, text)
    return spin


def test_a_strength_still_being_typed_is_the_one_sent_and_kept(qtbot: QtBot, make_window: Any, tmp_path: Path) -> None:
    """Typed into the box and sent with Ctrl+Enter (no Enter, no click elsewhere), or left
    there as the window closes: the strength shown is the one used and kept."""
    w = make_window((1366, 768))
    spin = typing_a_strength(qtbot, w, tmp_path, "-1.5")
    assert w.tray.model.items()[0].strength != -1.5  # not taken yet: no Enter
    w.prompt_panel.setPrompt("a strength typed, then sent")
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
        qtbot.keyClick(spin, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: w.library.count() == 1)
    assert [r.strength for r in w.library.entries()[0].record.references] == [-1.5]

    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, "1.25")
    w.close()
    again = make_window((1366, 768))
    qtbot.waitUntil(lambda: again.tray.count() == 1 and not again.tray.isBusy())
    assert again.tray.model.items()[0].strength == 1.25


def test_a_references_kept_copy_deleted_behind_the_apps_back_is_named_as_the_person_added_it(
    qtbot: QtBot, make_window: Any, tmp_path: Path
) -> None:
    w = make_window((1366, 768))
    add_references(qtbot, w, tmp_path, 2)
    kept = w.tray.model.items()[1]
    kept.path.unlink()
    w.prompt_panel.setPrompt("a harbour, two references")
    assert w.generate() is None
    assert w.message_banner.label.text() == (
        f"Reference 2 ({kept.source}) is no longer on disk; remove it and add the image again."
    )
    assert "ref1.png" in kept.source and not w.jobs.running()


def test_the_trays_own_saving_leaves_a_strength_being_typed_as_it_is(
    qtbot: QtBot, make_window: Any, tmp_path: Path
) -> None:
    w = make_window((1366, 768))
    spin = typing_a_strength(qtbot, w, tmp_path, "-")
    w.tray.save_state()  # as the tray saves itself a moment after any change
    assert spin.text() == "-"
    qtbot.keyClicks(spin, "1.25")
    w.prompt_panel.setPrompt("a strength typed across a save")
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
        qtbot.keyClick(spin, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: w.library.count() == 1)
    assert [r.strength for r in w.library.entries()[0].record.references] == [-1.25]


def test_a_message_with_another_action_does_not_take_a_recalls_undo_away(qtbot: QtBot, make_window: Any) -> None:
    w = make_window()
    w.prompt_panel.setPrompt("my unsent prompt")
    w.recall.apply_record(GenerationRecord(prompt="a red fox in snow", seed=5), source="fox.png")
    w.show_message("New images are hidden by the search or the filters.", "Show all", lambda: None)
    w.message_banner.dismiss()
    assert w.message_banner.action.text() == "Undo" and w.message_banner.action.isVisible()
    w.message_banner.action.click()
    assert w.prompt_panel.prompt() == "my unsent prompt"


def test_at_800x600_every_control_is_reachable_and_unclipped(qtbot: QtBot, make_window: Any, tmp_path: Path) -> None:
    w = make_window((800, 600))
    add_references(qtbot, w, tmp_path, 2)
    scroll = left_column(w)
    panel = w.prompt_panel
    controls = [
        panel.promptEdit,
        panel.generateButton,
        panel.seedEdit,
        panel.countSpin,
        w.tray,
        *w.ratio_bar.buttons(),
        *(c.strengthSpin for c in w.tray.items()),
    ]
    content = scroll.widget()
    viewport = scroll.viewport()
    for widget in controls:
        # Reachable: inside the scrolled column, and small enough to be seen whole.
        rect = QRect(widget.mapTo(content, QPoint(0, 0)), widget.size())
        assert content.rect().contains(rect), widget.objectName()
        assert rect.height() <= viewport.height() and rect.width() <= viewport.width(), widget.objectName()
        # No smaller than its least: the minimum it was given, else the one it hints at
        # (as Qt's layouts take it; the prompt is given three lines of text).
        hint = widget.minimumSizeHint()
        least = QSize(widget.minimumWidth() or hint.width(), widget.minimumHeight() or hint.height())
        assert widget.width() >= least.width() and widget.height() >= least.height(), widget.objectName()
    lines = panel.promptEdit.viewport().height() // panel.promptEdit.fontMetrics().lineSpacing()
    assert lines >= 3


@pytest.mark.parametrize("first", [(1366, 768), (1000, 700)])
def test_at_800x600_the_gallery_shows_two_columns_beside_controls_none_of_them_cut(
    qtbot: QtBot, make_window: Any, tmp_path: Path, first: tuple[int, int]
) -> None:
    w = make_window(first)
    add_references(qtbot, w, tmp_path, 2)
    panel = w.prompt_panel
    panel.setPrompt("a harbour at dusk")
    panel.countSpin.setValue(4)  # two rows of two: the gallery scrolls, with its scroll bar
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
        w.generate()
    qtbot.waitUntil(lambda: w.model.rowCount() == 4)
    panel.advancedToggle.setChecked(True)  # the column at its widest content
    assert w.cost_estimate.text()  # known from the job: it takes room too
    w.resize(780, 560)  # what a window manager's frame leaves of an 800x600 screen
    qtbot.waitUntil(lambda: w.split.width() <= 780)
    QApplication.processEvents()
    gallery = w.gallery
    step = gallery.cell_side() + SPACING
    assert (gallery.viewport().width() - SPACING) // step >= 2
    first_cell, second_cell = (gallery.visualRect(w.model.index(row)) for row in (0, 1))
    assert second_cell.top() == first_cell.top() and second_cell.left() > first_cell.right()
    first_card, second_card = (item.geometry() for item in w.tray.items())
    assert second_card.top() == first_card.top()  # the references side by side, in sight
    scroll = left_column(w)
    assert not scroll.horizontalScrollBar().isVisible()
    cut = [
        f"{type(widget).__name__} {widget.objectName()!r}: {widget.width()} < {widget.minimumSizeHint().width()}"
        for widget in scroll.widget().findChildren(QWidget)
        if widget.isVisibleTo(w)
        and not widget.objectName().startswith("qt_")  # Qt's own parts of a composite control
        and widget.width() < widget.minimumSizeHint().width()
    ]
    assert cut == []


def test_the_first_cost_moves_nothing_in_the_column(qtbot: QtBot, make_window: Any, tmp_path: Path) -> None:
    """The estimate under Generate comes after the first batch: its line is there before,
    so the references below do not move, nor does the column narrow for a scroll bar."""
    w = make_window((1366, 768))
    add_references(qtbot, w, tmp_path, 2)
    panel = w.prompt_panel
    panel.setPrompt("a harbour at dusk")
    assert not w.cost_estimate.isVisible()
    scroll = left_column(w)

    def layout() -> tuple[QPoint, QPoint, int, bool]:
        QApplication.processEvents()
        return (
            w.tray.mapTo(w, QPoint(0, 0)),
            panel.generateButton.mapTo(w, QPoint(0, 0)),
            panel.promptEdit.width(),
            scroll.verticalScrollBar().isVisible(),
        )

    before = layout()
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
        w.generate()
    qtbot.waitUntil(lambda: w.cost_estimate.isVisible())
    assert w.cost_estimate.text().startswith("≈ $")
    assert layout() == before
    assert w.cost_estimate.height() >= w.cost_estimate.sizeHint().height()  # not cut


def test_in_the_narrowest_column_a_refused_seed_moves_neither_generate_nor_the_estimate(
    qtbot: QtBot, make_window: Any
) -> None:
    w = make_window((780, 560))
    panel = w.prompt_panel
    panel.setPrompt("a harbour at dusk")
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
        w.generate()
    qtbot.waitUntil(lambda: w.cost_estimate.isVisible())  # known from the job
    QApplication.processEvents()
    assert w.split.sizes()[0] == w.split.widget(0).minimumSizeHint().width()  # at its narrowest
    where = (panel.generateButton.mapTo(w, QPoint(0, 0)), w.cost_estimate.mapTo(w, QPoint(0, 0)))
    for message in (PromptPanel.SEED_RANGE_MESSAGE, panel.hintLabel.text()):
        panel.seedEdit.clear()
        panel.seedEdit.setFocus()
        qtbot.keyClicks(panel.seedEdit, "abc" if message == PromptPanel.SEED_RANGE_MESSAGE else "7")
        QApplication.processEvents()
        assert (panel.generateButton.mapTo(w, QPoint(0, 0)), w.cost_estimate.mapTo(w, QPoint(0, 0))) == where
        assert w.cost_estimate.width() >= w.cost_estimate.sizeHint().width()  # not cut


def test_a_window_opened_small_with_a_wide_column_saved_keeps_two_gallery_columns(
    qtbot: QtBot, make_window: Any
) -> None:
    w = make_window((1000, 700))
    w.split.moveSplitter(700, 1)  # the user drags the column wide
    QApplication.processEvents()
    w.resize(999, 700)  # a pixel less: the column gives that pixel, not its whole width
    QApplication.processEvents()
    assert 690 <= w.split.sizes()[0] <= 699 and w.split.sizes()[1] >= 290
    gallery = w.split.sizes()[1]
    w.resize(900, 700)  # the column the user chose gives what the window loses
    QApplication.processEvents()
    assert w.split.sizes()[1] >= gallery - 2
    w.resize(1366, 768)
    w.split.moveSplitter(700, 1)
    QApplication.processEvents()
    w.close()  # closed wide with a wide column; opened next on a small screen
    probe = QWidget()
    probe.resize(780, 560)
    w.options.set(config.WINDOW_GEOMETRY, bytes(probe.saveGeometry().data()))
    again = create_main_window(demo_latency=0.0)
    qtbot.addWidget(again)
    assert again.width() == 780
    again.show()
    qtbot.waitExposed(again)
    QApplication.processEvents()
    assert again.gallery.columns() >= 2
    assert not left_column(again).horizontalScrollBar().isVisible()
    again.close()


@pytest.mark.parametrize(("size", "placeholder"), [((640, 600), "Search…"), ((1366, 768), "Search prompts…")])
def test_the_gallery_search_says_what_fits_and_never_a_cut_placeholder(
    qtbot: QtBot, make_window: Any, size: tuple[int, int], placeholder: str
) -> None:
    w = make_window(size)
    search = w.filter_bar.search
    qtbot.waitUntil(lambda: search.isVisible() and search.placeholderText() == placeholder)
    # The field as laid out, against the same field given all the room it could want: the
    # placeholder's pixels are the same unless the narrow one cut it ("Search prom…").
    roomy = QLineEdit(search.parentWidget())  # styled as the search is
    roomy.setPlaceholderText(search.placeholderText())
    roomy.setClearButtonEnabled(True)
    roomy.resize(search.width() + 300, search.height())
    shown = search.grab().toImage().convertToFormat(QImage.Format.Format_ARGB32)
    ample = roomy.grab().toImage().convertToFormat(QImage.Format.Format_ARGB32)
    text = search.fontMetrics().horizontalAdvance(search.placeholderText())
    strip = QRect(0, 0, min(shown.width(), text + 8), shown.height())
    assert shown.copy(strip) == ample.copy(strip), f"the placeholder is cut at {search.width()} px"


def test_the_search_says_search_prompts_at_every_width_that_shows_it_whole(qtbot: QtBot) -> None:
    """Width by width, the long placeholder where it is painted whole, the short one only
    where the long one would be cut: compared with the long one in a field with ample room."""
    host = QWidget()
    qtbot.addWidget(host)
    host.resize(600, 100)
    search = SearchField(host)
    search.setClearButtonEnabled(True)
    probe = QLineEdit(host)  # the long placeholder at the same width, whatever the search chose
    probe.setClearButtonEnabled(True)
    probe.setPlaceholderText(SearchField.LONG)
    ample = QLineEdit(host)
    ample.setClearButtonEnabled(True)
    ample.setPlaceholderText(SearchField.LONG)
    ample.resize(500, 24)
    host.show()
    qtbot.waitExposed(host)
    frame = search.style().pixelMetric(QStyle.PixelMetric.PM_DefaultFrameWidth, None, search)
    text = QRect(0, 0, frame + 2 + search.fontMetrics().horizontalAdvance(SearchField.LONG), 24)
    whole_image = ample.grab().toImage().convertToFormat(QImage.Format.Format_ARGB32).copy(text)
    chosen = []
    for width in range(80, 160):
        search.resize(width, 24)
        probe.resize(width, 24)
        QApplication.processEvents()
        painted = probe.grab().toImage().convertToFormat(QImage.Format.Format_ARGB32).copy(text)
        whole = painted == whole_image
        long = search.placeholderText() == SearchField.LONG
        assert long == whole, f"at {width} px: {search.placeholderText()!r}, the long one {'whole' if whole else 'cut'}"
        chosen.append(long)
    assert chosen[0] is False and chosen[-1] is True  # both were seen
    search.resize(125, 24)
    assert search.placeholderText() == SearchField.LONG
    bigger = search.font()
    bigger.setPointSizeF(bigger.pointSizeF() * 1.5)
    search.setFont(bigger)  # the same width, a larger text: the long one no longer fits
    assert search.placeholderText() == SearchField.SHORT


# -- 2. results one by one by default ---------------------------------------------------------


def test_a_new_users_first_batch_arrives_image_by_image(qtbot: QtBot, make_window: Any) -> None:
    assert PromptPanel().deliveryCombo.currentData() == "async"
    w = make_window(latency=0.25)
    w.prompt_panel.setPrompt("four paper boats")
    w.prompt_panel.countSpin.setValue(4)
    arrivals: list[float] = []
    w.client_thread.imageReady.connect(lambda *_: arrivals.append(time.monotonic()))
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
        w.generate()
    assert len(arrivals) == 4
    # Each image shows as the service finishes it, not all together at the end.
    assert arrivals[-1] - arrivals[0] > 0.4, arrivals
    row = w.job_list.rows[w.jobs.jobs()[0].job_id]
    assert row.progress.value() == 4 and row.progress.format().startswith("%v of 4  ·  ")
    assert row.progress.format().endswith(" s")  # and the time it took


def test_one_image_is_said_in_the_singular_in_the_job_and_the_status_bar(qtbot: QtBot, make_window: Any) -> None:
    w = make_window()
    w.prompt_panel.setPrompt("one paper boat")
    w.prompt_panel.countSpin.setValue(1)
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
        w.generate()
    qtbot.waitUntil(lambda: w.count_label.text() == "1 image", timeout=5000)
    job = w.jobs.jobs()[0]
    assert job.message.startswith("Done: 1 image saved.")
    assert w.job_list.rows[job.job_id].status.text().startswith("Done: 1 image saved. Cost $")


def test_a_running_jobs_elapsed_time_moves(qtbot: QtBot, make_window: Any) -> None:
    w = make_window(latency=0.6)
    w.prompt_panel.setPrompt("three slow lanterns")
    w.prompt_panel.countSpin.setValue(3)
    w.generate()
    (job,) = w.jobs.jobs()
    row = w.job_list.rows[job.job_id]
    assert row.progress.format().endswith("  0 s")
    qtbot.waitUntil(lambda: row.progress.format().endswith("  1 s"), timeout=5000)
    qtbot.waitUntil(lambda: not job.running, timeout=30000)


def test_focus_is_visible_on_generate_and_on_gallery_cells(qtbot: QtBot, make_window: Any) -> None:
    w = make_window()
    w.prompt_panel.setPrompt("something to generate")
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
        w.generate()
    qtbot.waitUntil(lambda: w.model.rowCount() == 1)
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    style, palette = app.style().name(), app.palette()
    theme.apply_dark_palette(app)  # as run_app does
    try:
        w.activateWindow()
        button = w.prompt_panel.generateButton
        w.prompt_panel.promptEdit.setFocus()
        without = button.grab().toImage()
        # Shift+Tab from the tray's Add button: focus that came from the keyboard is drawn.
        w.tray.addButton.setFocus()
        qtbot.keyClick(w.tray.addButton, Qt.Key.Key_Backtab, Qt.KeyboardModifier.ShiftModifier)
        assert QApplication.focusWidget() is button
        assert button.grab().toImage() != without
        w.gallery.setCurrentIndex(w.model.index(0))
        w.prompt_panel.promptEdit.setFocus()
        cell = w.gallery.visualRect(w.model.index(0))
        unfocused = w.gallery.viewport().grab(cell).toImage()
        w.gallery.setFocus()
        w.gallery.viewport().repaint()
        assert w.gallery.viewport().grab(cell).toImage() != unfocused
    finally:
        app.setStyle(style)
        app.setPalette(palette)


# -- 5. messages that do not move the window ----------------------------------------------------


def test_messages_float_and_information_fades(qtbot: QtBot, make_window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MessageToast, "FADE_AFTER_MS", 100)
    monkeypatch.setattr(MessageToast, "FADE_MS", 50)
    w = make_window()
    before = (w.split.geometry(), w.gallery.geometry(), w.prompt_panel.geometry())
    w.show_message("Exported 2 image(s).")
    assert w.message_banner.isVisible()
    assert (w.split.geometry(), w.gallery.geometry(), w.prompt_panel.geometry()) == before
    qtbot.waitUntil(lambda: not w.message_banner.isVisible(), timeout=3000)
    w.show_message("The network went away.", error=True)
    qtbot.wait(400)
    assert w.message_banner.isVisible() and w.message_banner.stays
    assert (w.split.geometry(), w.gallery.geometry(), w.prompt_panel.geometry()) == before
    w.show_message("Moved 1 image to the trash.", "Undo", lambda: None)
    qtbot.wait(400)
    assert w.message_banner.isVisible()  # with its action, it waits to be dealt with
    w.message_banner.close_button.click()
    # The error it covered was never dismissed: it comes back, once, until dismissed.
    assert w.message_banner.isVisible() and w.message_banner.label.text() == "The network went away."
    w.show_message("Exported 2 image(s).")  # information over it fades, and the error returns
    qtbot.waitUntil(lambda: w.message_banner.label.text() == "The network went away.", timeout=3000)
    assert w.message_banner.stays
    w.message_banner.close_button.click()
    assert not w.message_banner.isVisible()


def test_a_refused_seed_says_why_within_the_column_until_the_field_is_edited(qtbot: QtBot, make_window: Any) -> None:
    w = make_window((1366, 768))
    panel = w.prompt_panel
    column = left_column(w)
    panel.setPrompt("a lighthouse in fog")
    hint = panel.hintLabel
    two_lines = hint.fontMetrics().lineSpacing() * 2
    for typed, kept in (("abc", ""), ("9" * 20, "9" * 18)):
        panel.seedEdit.clear()
        panel.seedEdit.setFocus()
        qtbot.keyClicks(panel.seedEdit, typed)
        assert panel.seedEdit.text() == kept
        assert hint.text() == PromptPanel.SEED_RANGE_MESSAGE
        QApplication.processEvents()
        # The message wraps in the column: nothing is pushed out of sight sideways.
        assert not column.horizontalScrollBar().isVisible()
        assert hint.heightForWidth(hint.width()) <= two_lines + 1
        controls = (*w.ratio_bar.buttons(), panel.countSpin, panel.randomSeedButton, panel.generateButton)
        for widget in (*controls, w.tray.addButton):
            assert in_sight(w, widget), widget.objectName()
    # The message stays while the typing goes on; left, or emptied, the field takes it away.
    panel.seedEdit.backspace()
    assert hint.text() == PromptPanel.SEED_RANGE_MESSAGE
    panel.seedEdit.editingFinished.emit()
    assert hint.text() == "19 / 3,000 characters"
    qtbot.keyClicks(panel.seedEdit, "x")
    assert hint.text() == PromptPanel.SEED_RANGE_MESSAGE
    panel.seedEdit.clear()
    assert panel.seed() is None and hint.text() == "19 / 3,000 characters"


def test_the_hint_under_the_settings_wraps_across_the_column_and_moves_nothing_below_it(
    qtbot: QtBot, make_window: Any
) -> None:
    w = make_window((1366, 768))
    panel = w.prompt_panel
    hint = panel.hintLabel

    def tray_top() -> int:
        QApplication.processEvents()
        return w.tray.mapTo(w, QPoint(0, 0)).y()

    panel.setPrompt("")
    assert "at least" in hint.text()
    top = tray_top()
    assert hint.width() == panel.width()  # a row of its own, the column's whole width
    for prompt, said in (("a lighthouse in fog", "19 / 3,000"), ("a lighthouse in fog, gouache, " * 103, "3,089")):
        panel.setPrompt(prompt)
        assert said in hint.text()
        assert tray_top() == top
        assert hint.heightForWidth(hint.width()) <= hint.height()  # all of it in sight
    assert in_sight(w, panel.generateButton) and in_sight(w, w.tray)


# -- 6. keyboard -------------------------------------------------------------------------------


def test_the_prompt_has_the_focus_and_keys_typed_while_opening_land_in_it(
    qtbot: QtBot, data_dir: Path, memory_keyring: object
) -> None:
    frame = open_main_window()
    qtbot.addWidget(frame)
    frame.show()
    qtbot.waitExposed(frame)
    for key in "a fx":
        qtbot.keyClicks(frame, key)
    qtbot.keyClick(frame, Qt.Key.Key_Backspace)
    qtbot.keyClicks(frame, "ox")
    build_main_window(frame, demo_latency=0.0)
    try:
        assert frame.prompt_panel.prompt() == "a fox"
        assert frame.focusWidget() is frame.prompt_panel.promptEdit
    finally:
        frame.close()


def test_after_generate_is_clicked_typing_goes_on_in_the_prompt(qtbot: QtBot, make_window: Any) -> None:
    w = make_window()
    w.activateWindow()
    panel = w.prompt_panel
    panel.promptEdit.setFocus()
    qtbot.keyClicks(panel.promptEdit, "a lighthouse")
    qtbot.mouseClick(panel.generateButton, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.model.rowCount() == 1)
    assert w.focusWidget() is panel.promptEdit
    qtbot.keyClicks(w.focusWidget(), " at dawn")
    assert panel.prompt() == "a lighthouse at dawn"


def test_tab_follows_the_visual_order(qtbot: QtBot, make_window: Any) -> None:
    w = make_window()
    w.prompt_panel.setPrompt("a lighthouse")  # so that Generate can take the focus
    w.activateWindow()
    first = w.ratio_bar.buttons()[0]
    first.setFocus()
    seen = [first.objectName()]
    for _ in range(30):
        current = w.focusWidget()
        assert current is not None
        qtbot.keyClick(current, Qt.Key.Key_Tab)
        seen.append(w.focusWidget().objectName())
    # The ratios are one stop, the chosen one (the arrow keys choose among them).
    assert first is w.ratio_bar.button(w.ratio_bar.ratio())
    expected = [
        first.objectName(),
        "promptEdit",
        "creativityCombo",
        "countSpin",
        "seedEdit",
        "randomSeedButton",
        "advancedToggle",
    ]
    assert seen[: len(expected)] == expected, seen  # the Last seed button is disabled until an image arrives
    assert seen.index("generateButton") < seen.index("addReferenceButton") < seen.index("gallery")


def test_every_stop_of_tab_is_a_control_with_a_name(qtbot: QtBot, make_window: Any) -> None:
    """Tab stopped on the controls column, the tray's scroll area and the job list, which
    showed nothing for it and had no name; the thumbnail-size slider had no name either."""
    from PySide6.QtGui import QAccessible
    from PySide6.QtWidgets import QScrollArea

    w = make_window()
    w.prompt_panel.setPrompt("a lighthouse")
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
        w.generate()  # a job row, with its own button
    w.activateWindow()
    first = w.ratio_bar.buttons()[0]
    first.setFocus()
    stops = [first]
    for _ in range(60):
        qtbot.keyClick(w.focusWidget(), Qt.Key.Key_Tab)
        stops.append(w.focusWidget())
    dead = [type(s).__name__ for s in stops if isinstance(s, QScrollArea)]
    assert dead == []
    unnamed = [
        s.objectName() or type(s).__name__
        for s in stops
        if not QAccessible.queryAccessibleInterface(s).text(QAccessible.Text.Name).strip()
    ]
    assert unnamed == [], unnamed


# -- 7. recall restores exactly ----------------------------------------------------------------


def test_use_all_parameters_makes_the_tray_the_images_references_with_undo(
    qtbot: QtBot, make_window: Any, tmp_path: Path
) -> None:
    w = make_window()
    refs = add_references(qtbot, w, tmp_path, 2)
    w.prompt_panel.setPrompt("a harbour with two references")
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
        w.generate()
    with_refs = w.library.entries()[0]
    w.tray.clear()
    w.prompt_panel.setPrompt("no references this time")
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
        w.generate()
    without = next(e for e in w.library.entries() if e.prompt == "no references this time")
    add_references(qtbot, w, tmp_path / ".." / tmp_path.name, 3)  # the tray the person has now
    before = w.tray.model.items()

    w.recall.use_all_parameters(without)
    assert w.tray.count() == 0  # equal to the image's references: none
    assert w.message_banner.label.text().startswith("Parameters restored from “no references this time”")
    w.message_banner.action.click()  # Undo
    qtbot.waitUntil(lambda: w.tray.model.items() == before)

    w.recall.use_all_parameters(with_refs)
    qtbot.waitUntil(lambda: w.tray.count() == 2 and not w.tray.isBusy())
    assert [r.strength for r in w.tray.references()] == [0.7, -0.3]
    assert [r.sha256 for r in w.tray.model] != [r.sha256 for r in before]
    del refs


def test_undo_after_a_recall_gives_back_a_strength_that_was_being_typed(
    qtbot: QtBot, make_window: Any, tmp_path: Path
) -> None:
    w = make_window()
    w.prompt_panel.setPrompt("a harbour")
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
        w.generate()
    add_references(qtbot, w, tmp_path, 2)
    w.tray.items()[0].strengthSpin.lineEdit().setText("1.50")  # typed, not yet taken
    w.recall.use_all_parameters(w.library.entries()[0])  # from the keyboard: the box keeps the focus
    w.message_banner.action.click()  # Undo
    qtbot.waitUntil(lambda: w.tray.count() == 2 and not w.tray.isBusy())
    assert [r.strength for r in w.tray.model] == [1.5, -0.3]


def test_undo_after_a_recall_puts_back_the_unsent_prompt_seed_ratio_and_tray(
    qtbot: QtBot, make_window: Any, tmp_path: Path
) -> None:
    w = make_window()
    add_references(qtbot, w, tmp_path, 2)
    panel = w.prompt_panel
    panel.setPrompt("my careful unsent prompt")
    panel.setSeed(777)
    panel.countSpin.setValue(3)
    w.ratio_bar.setRatio("16:9")
    before = (panel.parameters(), w.ratio_bar.ratio(), w.tray.model.items())
    record = GenerationRecord(prompt="someone else's heron", seed=5, ratio="2:3", width=896, height=1344)
    w.recall.apply_record(record, source="heron.png")
    assert (panel.prompt(), panel.seed(), w.ratio_bar.ratio(), w.tray.count()) == ("someone else's heron", 5, "2:3", 0)
    assert w.message_banner.action.text() == "Undo"
    w.message_banner.action.click()
    qtbot.waitUntil(lambda: w.tray.model.items() == before[2])
    assert (panel.parameters(), w.ratio_bar.ratio()) == before[:2]
    assert w.message_banner.label.text() == "The prompt, the settings and the references are as they were."


def test_the_undo_of_a_recall_outlasts_a_message_that_comes_after_it(qtbot: QtBot, make_window: Any) -> None:
    w = make_window()
    w.prompt_panel.setPrompt("my long unsent prompt, worked on all morning")
    w.recall.apply_record(GenerationRecord(prompt="a red fox in snow", seed=5), source="fox.png")
    w.show_message("“bad.png” is damaged and cannot be opened as an image.", error=True)  # a drop refused
    w.message_banner.dismiss()
    assert w.message_banner.action.text() == "Undo" and w.message_banner.action.isVisible()
    w.message_banner.action.click()
    assert w.prompt_panel.prompt() == "my long unsent prompt, worked on all morning"


def test_use_prompt_can_be_undone_and_an_image_without_one_keeps_yours(qtbot: QtBot, make_window: Any) -> None:
    import dataclasses

    w = make_window()
    panel = w.prompt_panel
    panel.setPrompt("a red fox in snow")
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
        w.generate()
    with_prompt = w.library.entries()[0]
    panel.setPrompt("my own prompt")
    w.recall.use_prompt(with_prompt)
    assert panel.prompt() == "a red fox in snow"
    w.message_banner.action.click()  # Undo
    assert panel.prompt() == "my own prompt"
    w.recall.use_prompt(with_prompt)
    panel.promptEdit.undo()  # Ctrl+Z in the prompt takes it back too
    assert panel.prompt() == "my own prompt"
    w.recall.use_prompt(dataclasses.replace(with_prompt, prompt=""))
    assert panel.prompt() == "my own prompt"
    assert w.message_banner.label.text() == "This image has no prompt, so yours was kept."


def test_use_all_while_a_reference_loads_keeps_it_for_undo_and_out_of_the_images_references(
    qtbot: QtBot, make_window: Any, tmp_path: Path
) -> None:
    w = make_window()
    kept = add_references(qtbot, w, tmp_path, 1)[0]
    big = tmp_path / "big.png"
    Image.effect_noise((3000, 2000), 64).convert("RGB").save(big)  # a few moments to load
    w.tray.add_reference(big, 0.5)
    assert w.tray.isBusy()
    w.recall.apply_record(GenerationRecord(prompt="made with nothing", seed=5), source="plain.png")
    # The window is not held up meanwhile: the recall waits for the load, and says so.
    assert w.tray.isBusy() and w.prompt_panel.prompt() != "made with nothing"
    assert w.message_banner.label.text() == "A reference is still loading; the image's parameters come once it has."
    qtbot.waitUntil(lambda: not w.tray.isBusy())
    QApplication.processEvents()
    assert w.tray.count() == 0  # the image had no references: none landed after the recall
    w.message_banner.action.click()  # Undo
    qtbot.waitUntil(lambda: w.tray.count() == 2)
    assert [r.strength for r in w.tray.model.items()] == [0.7, 0.5]
    del kept


def test_a_record_without_a_prompt_keeps_the_persons_prompt(qtbot: QtBot, make_window: Any) -> None:
    w = make_window()
    w.prompt_panel.setPrompt("my careful prompt")
    w.recall.apply_record(GenerationRecord(seed=42, width=1024, height=1024), source="found.png")
    assert w.prompt_panel.prompt() == "my careful prompt" and w.prompt_panel.seed() == 42
    assert "found.png; it has no prompt, so yours was kept" in w.message_banner.label.text()

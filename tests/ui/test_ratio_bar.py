from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QAbstractButton
from pytestqt.qtbot import QtBot

from krea_desktop.api import spec
from krea_desktop.ui.compose.ratio_bar import RatioBar

NAMES = ["ratio_1_1", "ratio_4_3", "ratio_3_2", "ratio_16_9", "ratio_2_35_1", "ratio_4_5", "ratio_2_3", "ratio_9_16"]


@pytest.fixture
def bar(qtbot: QtBot) -> RatioBar:
    widget = RatioBar()
    qtbot.addWidget(widget)
    widget.show()
    return widget


def test_one_checkable_button_per_ratio(bar: RatioBar) -> None:
    buttons = bar.findChildren(QAbstractButton)
    assert sorted(b.objectName() for b in buttons) == sorted(NAMES)
    for ratio in spec.ASPECT_RATIOS:
        button = bar.findChild(QAbstractButton, f"ratio_{ratio.key}")
        assert button is not None and button.isCheckable()
        assert button.text() == ratio.label
        assert f"{ratio.width} × {ratio.height}" in button.toolTip()
    assert bar.ratio() == spec.DEFAULT_RATIO
    assert [b.isChecked() for b in buttons].count(True) == 1
    assert bar.findChild(QAbstractButton, "ratio_16_9").text() == "16:9 · 1376×768"  # type: ignore[union-attr]


def test_clicking_changes_the_ratio_once(bar: RatioBar, qtbot: QtBot) -> None:
    seen: list[str] = []
    bar.ratioChanged.connect(seen.append)
    button = bar.findChild(QAbstractButton, "ratio_2_35_1")
    assert button is not None
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert bar.ratio() == "2.35:1" and seen == ["2.35:1"]
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)  # exclusive: clicking again keeps it checked
    assert button.isChecked() and seen == ["2.35:1"]
    assert not bar.button("1:1").isChecked()


def test_set_ratio(bar: RatioBar) -> None:
    seen: list[str] = []
    bar.ratioChanged.connect(seen.append)
    bar.setRatio("9:16")
    bar.setRatio("9:16")
    assert bar.ratio() == "9:16" and bar.button("9:16").isChecked() and seen == ["9:16"]
    with pytest.raises(ValueError):
        bar.setRatio("5:4")
    assert bar.ratio() == "9:16"


def test_buttons_paint(bar: RatioBar) -> None:
    for button in bar.buttons():
        image = button.grab().toImage()
        assert not image.isNull() and image.width() >= button.SHAPE_BOX


def test_a_screen_reader_hears_radio_buttons_one_of_them_chosen(bar: RatioBar, qtbot: QtBot) -> None:
    """They were said to be check boxes: each on or off by itself, not one of eight."""
    from PySide6.QtGui import QAccessible

    for button in bar.buttons():
        said = QAccessible.queryAccessibleInterface(button)
        assert said.role() == QAccessible.Role.RadioButton
        assert said.state().checked == (button.aspect.name == spec.DEFAULT_RATIO)
    # The whole tile is the button, not a radio button's dot and text.
    far = bar.button("9:16")
    qtbot.mouseClick(far, Qt.MouseButton.LeftButton, pos=far.rect().bottomRight() - far.rect().topLeft() / 2)
    assert bar.ratio() == "9:16"
    corner = bar.button("4:3")
    qtbot.mouseClick(corner, Qt.MouseButton.LeftButton, pos=corner.rect().bottomRight())
    assert bar.ratio() == "4:3"


def test_tab_stops_at_the_chosen_ratio_whichever_way_it_was_chosen(qtbot: QtBot) -> None:
    """Tab stopped at every ratio at first, then at the last one focused: Shift+Tab from
    the prompt landed on 9:16 with 1:1 chosen, and after a ratio set from a recalled image
    on the one chosen before, where an arrow key moved the focus and chose nothing."""
    from PySide6.QtWidgets import QApplication, QLineEdit, QVBoxLayout, QWidget

    host = QWidget()
    qtbot.addWidget(host)
    layout = QVBoxLayout(host)
    before, bar, after = QLineEdit(host), RatioBar(host), QLineEdit(host)
    for widget in (before, bar, after):
        layout.addWidget(widget)
    host.show()
    host.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is host)

    def tab_from(widget: QWidget, back: bool = False) -> QWidget | None:
        widget.setFocus()
        qtbot.waitUntil(lambda: QApplication.focusWidget() is widget)
        qtbot.keyClick(widget, Qt.Key.Key_Backtab if back else Qt.Key.Key_Tab)
        return QApplication.focusWidget()

    assert tab_from(after, back=True) is bar.button(spec.DEFAULT_RATIO)
    assert tab_from(before) is bar.button(spec.DEFAULT_RATIO)
    qtbot.keyClick(bar.button(spec.DEFAULT_RATIO), Qt.Key.Key_Right)  # the arrow keys choose
    assert bar.ratio() == "4:3" and QApplication.focusWidget() is bar.button("4:3")
    bar.setRatio("2:3")  # as recalled from an image
    assert tab_from(before) is bar.button("2:3")
    assert tab_from(after, back=True) is bar.button("2:3")
    qtbot.keyClick(bar.button("2:3"), Qt.Key.Key_Right)
    assert bar.ratio() == "9:16"
    qtbot.mouseClick(bar.button("16:9"), Qt.MouseButton.LeftButton)
    assert bar.ratio() == "16:9" and tab_from(after, back=True) is bar.button("16:9")
    # Pressed, then let go outside it: nothing chosen, and the stop stays at the chosen one.
    qtbot.mousePress(bar.button("4:5"), Qt.MouseButton.LeftButton)
    qtbot.mouseRelease(bar.button("4:5"), Qt.MouseButton.LeftButton, pos=QPoint(-50, -50))
    assert bar.ratio() == "16:9"
    assert tab_from(before) is bar.button("16:9")

"""No layout item of the window is known to Python.

PySide6 makes a Python object for each item already in a layout when that layout is put
into another one (``addLayout`` or ``QFormLayout.addRow`` of a filled layout). Those items
are not QObjects: when Qt deletes one (its card removed, its widget moved elsewhere, its
window closed), the Python object outlives it and keeps its address. The next Qt object
made at that address then comes back to Python as that stale item: a menu bar that was a
``QSpacerItem`` and had no ``addMenu``, or a crash. So every nested layout is put in its
place before it is filled, and these tests hold the whole window to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shiboken6
from PIL import Image
from PySide6.QtWidgets import QApplication, QLayout, QLayoutItem
from pytestqt.qtbot import QtBot

from krea_desktop.ui.app import create_main_window
from krea_desktop.ui.window.main_window import MainWindow


def item_objects() -> list[str]:
    """Where each layout item (not a layout) Python knows of sits, by its widget's class."""
    found = []
    for obj in shiboken6.getAllValidWrappers():
        if isinstance(obj, QLayoutItem) and not isinstance(obj, QLayout):
            found.append(type(obj).__name__)
    return found


@pytest.fixture
def window(qtbot: QtBot, data_dir: Path, memory_keyring: object) -> Iterator[MainWindow]:
    w = create_main_window(force_demo=True, demo_latency=0.0)
    qtbot.addWidget(w)
    w.resize(1366, 768)
    w.show()
    yield w
    w.close()


def test_the_window_its_cards_and_job_rows_leave_no_layout_item_to_python(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    before = item_objects()
    path = tmp_path / "ref.png"
    Image.new("RGB", (64, 48), (200, 60, 60)).save(path)
    window.tray.add_reference(path)
    qtbot.waitUntil(lambda: window.tray.count() == 1 and not window.tray.isBusy())
    window.prompt_panel.setPrompt("two paper boats")
    window.prompt_panel.countSpin.setValue(2)
    with qtbot.waitSignal(window.client_thread.jobFinished, timeout=30000):
        window.generate()
    qtbot.waitUntil(lambda: window.model.rowCount() == 2)
    assert item_objects() == before == []


def test_the_viewer_compare_settings_and_sweeps_leave_no_layout_item_to_python(
    qtbot: QtBot, window: MainWindow
) -> None:
    window.prompt_panel.setPrompt("a lantern")
    window.prompt_panel.countSpin.setValue(2)
    with qtbot.waitSignal(window.client_thread.jobFinished, timeout=30000):
        window.generate()
    qtbot.waitUntil(lambda: window.model.rowCount() == 2)
    actions: Any = window.gallery_actions
    window.gallery.setCurrentIndex(window.model.index(0))
    window.gallery.selectAll()
    actions.view_selected()
    actions.compare_selected()
    window.open_settings()
    sweep = window.open_sweep("seed")
    assert sweep is not None and actions.viewer is not None and actions.compare_dialog is not None
    sweep.valueEdits[0].setText("1, 2")
    sweep.sendButton.click()
    sheet = window.sweeps.sheets[-1]
    qtbot.waitUntil(lambda: sheet.sheet_entry is not None, timeout=30000)
    QApplication.processEvents()
    assert item_objects() == []

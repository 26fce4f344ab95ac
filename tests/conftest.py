from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.screen import use_offscreen_desktop

# Widgets are tested without a display, on a desktop-sized screen; set before anything
# imports Qt.
use_offscreen_desktop()
# qasync picks its Qt binding from this (or from whatever was imported first).
os.environ.setdefault("QT_API", "pyside6")


@pytest.fixture(autouse=True)
def _each_test_its_own_log_file() -> Iterator[None]:
    """A window opens the process's log file in its data folder and keeps it open, as a
    process of the app has one window's life. Closed after each test, so that the next
    test's window or command writes to its own data folder, not to a folder long gone."""
    import logging

    from krea_desktop.logfile import LogFile

    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, LogFile)]:
        root.removeHandler(handler)
        handler.close()


@pytest.fixture(autouse=True)
def _garbage_collected_on_the_main_thread() -> Iterator[None]:
    """As in the app: once Qt's application exists, the cyclic collector runs on the main
    thread only (krea_desktop/ui/collector.py), whatever the order the tests run in. What a
    test that never runs the event loop left is collected after it, as the timer would."""
    import sys

    def collector() -> Any:
        core = sys.modules.get("PySide6.QtCore")
        if core is None or core.QCoreApplication.instance() is None:
            return None
        from krea_desktop.ui.collector import collect_on_gui_thread

        return collect_on_gui_thread()

    collector()
    yield
    after = collector()
    if after is not None:
        after.collect_if_due()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh data folder, set as KREA_DESKTOP_DATA_DIR."""
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setenv("KREA_DESKTOP_DATA_DIR", str(folder))
    yield folder


@pytest.fixture
def memory_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """An in-memory OS keyring (never the real one), and no RUNWARE_API_KEY."""
    import keyring

    from tests.helpers.keyrings import MemoryKeyring

    monkeypatch.delenv("RUNWARE_API_KEY", raising=False)
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment for running the command line as a subprocess: this one without any
    key, endpoint or data folder of its own, a fresh data folder, and no OS keyring."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("RUNWARE_", "KREA_DESKTOP_"))}
    e["KREA_DESKTOP_DATA_DIR"] = str(tmp_path / "data")
    e["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    return e


def pytest_unconfigure(config: pytest.Config) -> None:
    """The clipboard emptied before the process ends: data left on it (an image a test
    copied, data of no format) made the offscreen platform's teardown crash the process
    after every test had passed."""
    import sys

    if "PySide6.QtGui" not in sys.modules:
        return
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance()
    if isinstance(app, QGuiApplication):
        app.clipboard().clear()

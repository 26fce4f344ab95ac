"""The settings file behind the typed options: QtSettingsStore over an INI QSettings."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, QSize, Qt
from PySide6.QtWidgets import QApplication, QLabel, QSplitter
from pytestqt.qtbot import QtBot

from krea_desktop import config
from krea_desktop.api import spec
from krea_desktop.ui.app import api_endpoint
from krea_desktop.ui.settings import QtSettingsStore
from krea_desktop.ui.window.main_window import MainWindow
from krea_desktop.ui.window.opening import DEFAULT_LEFT_WIDTH

# What an INI file written by an earlier version holds: every value as text.
OLD_FILE = r"""[api]
endpoint=https://proxy.example/v1

[gallery]
exportFolder=/tmp/exports
thumbSide=240

[generation]
promptHistory=a lighthouse in fog
ratio=16:9

[window]
rightSplitter=@ByteArray(\0\x1)
"""


def ini(path: Path, text: str | None = None) -> QSettings:
    if text is not None:
        path.write_text(text, encoding="utf-8")
    return QSettings(str(path), QSettings.Format.IniFormat)


def test_values_written_as_text_by_an_earlier_version_load(tmp_path: Path) -> None:
    store = QtSettingsStore(ini(tmp_path / "old.ini", OLD_FILE), env={})
    assert store.get(config.API_ENDPOINT) == "https://proxy.example/v1"
    assert store.get(config.EXPORT_FOLDER) == "/tmp/exports"
    assert store.get(config.THUMB_SIDE) == 240  # INI gives "240"
    assert store.get(config.PROMPT_HISTORY) == ["a lighthouse in fog"]  # one item: a bare string
    assert store.get(config.RATIO) == "16:9"
    assert store.get(config.RIGHT_SPLITTER) == b"\x00\x01"  # QByteArray
    assert store.get(config.MAIN_SPLITTER) == b""  # absent: the default
    assert store.get(config.PARAMETERS) == {}


def test_unusable_stored_values_give_the_defaults(tmp_path: Path) -> None:
    text = (
        "[api]\nendpoint=http://app.localhost:8765/v1\n[gallery]\nthumbSide=huge\n"
        "[generation]\nratio=5:7\nparameters=seed\n[window]\ngeometry=not a blob\n"
    )
    store = QtSettingsStore(ini(tmp_path / "bad.ini", text), env={})
    assert store.get(config.API_ENDPOINT) == spec.DEFAULT_API_URL
    assert store.get(config.THUMB_SIDE) is None
    assert store.get(config.RATIO) == spec.DEFAULT_RATIO
    assert store.get(config.PARAMETERS) == {}
    assert store.get(config.WINDOW_GEOMETRY) == b""


def test_round_trip_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.ini"
    store = QtSettingsStore(ini(path), env={})
    store.set(config.WINDOW_GEOMETRY, b"\x00\x01\xff")
    store.set(config.PROMPT_HISTORY, ["only"])
    store.set(config.PARAMETERS, {"seed": 7, "creativity": "high", "webhook_url": None})
    store.set(config.THUMB_SIDE, 300)
    store.set(config.RATIO, "2.35:1")
    store.sync()
    text = path.read_text(encoding="utf-8")
    assert "geometry=@ByteArray(" in text  # Qt's own form, readable by any Qt version
    assert "PyObjectWrapper" not in text  # never a pickled Python object
    again = QtSettingsStore(ini(path), env={})
    assert again.get(config.WINDOW_GEOMETRY) == b"\x00\x01\xff"
    assert again.get(config.PROMPT_HISTORY) == ["only"]
    assert again.get(config.PARAMETERS) == {"seed": 7, "creativity": "high", "webhook_url": None}
    assert again.get(config.THUMB_SIDE) == 300
    assert again.get(config.RATIO) == "2.35:1"
    with pytest.raises(ValueError):
        again.set(config.RATIO, "5:7")
    assert again.get(config.RATIO) == "2.35:1"


def test_the_window_endpoint_environment_first_then_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ini(tmp_path / "settings.ini", OLD_FILE)
    monkeypatch.delenv("RUNWARE_API_URL", raising=False)
    assert api_endpoint(settings) == "https://proxy.example/v1"
    monkeypatch.setenv("RUNWARE_API_URL", "http://127.0.0.1:9/v1")
    assert api_endpoint(settings) == "http://127.0.0.1:9/v1"
    # one that breaks the rule is not used: the window opens on the stored endpoint
    monkeypatch.setenv("RUNWARE_API_URL", "http://api.example/v1")
    assert api_endpoint(settings) == "https://proxy.example/v1"


def test_the_frame_opens_at_the_saved_size_and_split(qtbot: QtBot, qapp: QApplication, tmp_path: Path) -> None:
    splitter = QSplitter(Qt.Orientation.Horizontal)
    splitter.addWidget(QLabel("left"))
    splitter.addWidget(QLabel("right"))
    splitter.resize(640, 400)  # saved in a window as wide as the one that opens
    splitter.setSizes([333, 307])
    first = MainWindow(data_dir=tmp_path, settings=ini(tmp_path / "a.ini"))
    qtbot.addWidget(first)
    first.resize(640, 480)  # within the offscreen screen, so Qt keeps it
    first.options.set(config.WINDOW_GEOMETRY, bytes(first.saveGeometry().data()))
    first.options.set(config.MAIN_SPLITTER, bytes(splitter.saveState().data()))
    first.options.sync()

    second = MainWindow(data_dir=tmp_path, settings=ini(tmp_path / "a.ini"))
    qtbot.addWidget(second)
    assert second.size() == first.size() == QSize(640, 480)
    assert second.centralWidget()._left == 333  # type: ignore[attr-defined]

    fresh = MainWindow(data_dir=tmp_path, settings=ini(tmp_path / "b.ini"))
    qtbot.addWidget(fresh)
    assert fresh.centralWidget()._left == DEFAULT_LEFT_WIDTH  # type: ignore[attr-defined]
    assert fresh.size() != first.size()
    assert isinstance(fresh.settings, QSettings)

"""The settings file behind :mod:`krea_desktop.config`'s options: a QSettings store.

QSettings (the INI format in particular) does not give back what was put in: numbers and
booleans come back as strings, a one-item list as that item's string, an empty list as
nothing, bytes as QByteArray. :class:`QtSettingsStore` converts both ways so that the
options' types and checks see plain Python values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QByteArray, QSettings

from krea_desktop.config import Option, resolve, value_to_store

T = TypeVar("T")


def from_qt(option: Option[Any], raw: object) -> object:
    """A value read from QSettings, as a plain Python value for ``option``."""
    if isinstance(raw, QByteArray):
        return bytes(raw.data())
    if option.type is list and isinstance(raw, str):
        return [raw]  # INI writes a one-item list as the bare item
    return raw


def to_qt(value: object) -> object:
    """A plain Python value as QSettings keeps it."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return QByteArray(bytes(value))
    if isinstance(value, Path):
        return str(value)
    return value


class QtSettingsStore:
    """:class:`krea_desktop.config.SettingsStore` over a QSettings (the window's INI file)."""

    def __init__(self, settings: QSettings, *, env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.env: Mapping[str, str] = os.environ if env is None else env

    def stored(self, option: Option[Any]) -> object:
        """What the file holds for ``option`` (converted, not checked), or None."""
        if option.key is None:
            return None
        return from_qt(option, self.settings.value(option.key))

    def get(self, option: Option[T]) -> T:
        return resolve(option, env=self.env, stored=self.stored(option))

    def set(self, option: Option[T], value: T) -> None:
        checked = value_to_store(option, value)
        assert option.key is not None
        self.settings.setValue(option.key, to_qt(checked))

    def sync(self) -> bool:
        self.settings.sync()
        # Not FormatError: it says the file was damaged when it was read, and stays so
        # after a write that puts it right.
        return self.settings.status() != QSettings.Status.AccessError

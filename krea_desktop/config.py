"""The user's settings: one :class:`Option` per stored value, and how a value is chosen.

Each option names its key in the settings file (the window's INI file; the keys are those
the app has always written, so existing files still load), its type, its default, the
environment variable that overrides it (if any) and a check that normalises a value or
rejects it. :func:`resolve` picks the value: the environment, else the stored value when
it has the right type and passes the check, else the default. A :class:`SettingsStore`
keeps the stored values: :class:`MemorySettingsStore` here (tests, the command line), the
QSettings-backed one in ``krea_desktop.ui.settings``.

Window and splitter states are Qt's own serialised blobs: they are declared as ``bytes``
and kept opaque (only "non-empty bytes" is checked); the Qt store converts them to and
from QByteArray, and only Qt reads what is inside.

No Qt here: the command line and the tests use this module without a display.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from krea_desktop.api import spec
from krea_desktop.api.endpoint import endpoint_problem
from krea_desktop.wording import within

T = TypeVar("T")

PROMPT_HISTORY_LIMIT = 200  # prompts kept between sessions, newest last


class OptionError(ValueError):
    """An environment variable overrides an option with a value that cannot be used:
    ``variable`` is set to ``raw``, refused for ``reason`` (a sentence of its own)."""

    def __init__(self, variable: str, raw: str, reason: str) -> None:
        super().__init__(f"{variable} is set to {raw!r}, which cannot be used: {within(reason)}.")
        self.variable = variable
        self.raw = raw
        self.reason = reason


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: each is declared once
class Option(Generic[T]):
    """One setting. ``key`` is its name in the settings file, or None for a setting that
    only the environment can give (the data folder: the settings file lives in it).

    ``check`` receives a value already of ``type`` and returns it (possibly normalised),
    or None to reject it; it may also raise ``ValueError`` whose message says why."""

    key: str | None
    type: type[Any]
    default: T
    env: str | None = None
    check: Callable[[Any], Any] | None = None
    doc: str = ""

    @property
    def name(self) -> str:
        return self.key or self.env or "?"


# --- checks ------------------------------------------------------------------------------


def _non_empty_bytes(value: bytes) -> bytes | None:
    return value or None


def _ratio(value: str) -> str | None:
    value = value.strip()
    return value if value in spec.RATIOS_BY_NAME else None


def _prompt_history(value: list[Any]) -> list[str]:
    """Non-blank prompts only, each once (its latest place), the newest ones kept."""
    cleaned: list[str] = []
    for item in value:
        if isinstance(item, str) and item.strip():
            if item in cleaned:
                cleaned.remove(item)
            cleaned.append(item)
    return cleaned[-PROMPT_HISTORY_LIMIT:]


def _parameters(value: dict[Any, Any]) -> dict[str, Any]:
    return {key: item for key, item in value.items() if isinstance(key, str)}


def _endpoint(value: str) -> str:
    problem = endpoint_problem(value)
    if problem:
        raise ValueError(problem)
    return value.strip()


def _folder(value: str) -> str | None:
    return value.strip() or None


def _positive(value: int) -> int | None:
    return value if value > 0 else None


# --- the options -----------------------------------------------------------------------

WINDOW_GEOMETRY: Option[bytes] = Option(
    "window/geometry", bytes, b"", check=_non_empty_bytes, doc="the main window's size and place (Qt's blob)"
)
MAIN_SPLITTER: Option[bytes] = Option(
    "window/mainSplitter", bytes, b"", check=_non_empty_bytes, doc="the controls/gallery split (Qt's blob)"
)
RIGHT_SPLITTER: Option[bytes] = Option(
    "window/rightSplitter", bytes, b"", check=_non_empty_bytes, doc="the gallery/jobs split (Qt's blob)"
)
RATIO: Option[str] = Option(
    "generation/ratio", str, spec.DEFAULT_RATIO, check=_ratio, doc="the aspect ratio last chosen"
)
PROMPT_HISTORY: Option[list[str]] = Option(
    "generation/promptHistory", list, [], check=_prompt_history, doc="earlier prompts, oldest first"
)
PARAMETERS: Option[dict[str, Any]] = Option(
    "generation/parameters", dict, {}, check=_parameters, doc="the prompt panel's last settings"
)
API_ENDPOINT: Option[str] = Option(
    "api/endpoint",
    str,
    spec.DEFAULT_API_URL,
    env="RUNWARE_API_URL",
    check=_endpoint,
    doc="the Runware API address (https://, or http:// to this computer)",
)
EXPORT_FOLDER: Option[str] = Option(
    "gallery/exportFolder", str, "", check=_folder, doc="the folder last exported to (empty: none yet)"
)
EXPORT_FORMAT: Option[str] = Option(
    "gallery/exportFormat",
    str,
    "PNG",
    check=spec.normalize_output_format,
    doc="the format last exported to (PNG, JPG or WEBP)",
)
THUMB_SIDE: Option[int | None] = Option(
    "gallery/thumbSide", int, None, check=_positive, doc="the gallery's thumbnail side in pixels (None: its default)"
)
DATA_DIR: Option[Path | None] = Option(
    None,
    Path,
    None,
    env="KREA_DESKTOP_DATA_DIR",
    doc="the folder of the library, settings and logs (None: the platform's)",
)

OPTIONS: tuple[Option[Any], ...] = (
    WINDOW_GEOMETRY,
    MAIN_SPLITTER,
    RIGHT_SPLITTER,
    RATIO,
    PROMPT_HISTORY,
    PARAMETERS,
    API_ENDPOINT,
    EXPORT_FOLDER,
    EXPORT_FORMAT,
    THUMB_SIDE,
    DATA_DIR,
)


# --- choosing a value ------------------------------------------------------------------------

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def coerce(kind: type[Any], raw: object) -> Any | None:
    """``raw`` as a value of ``kind``, or None when it cannot be one. Strings (what the
    environment and INI files hold) are parsed for numbers, booleans and paths."""
    if raw is None:
        return None
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str):
            text = raw.strip().lower()
            return True if text in _TRUE else False if text in _FALSE else None
        return None
    if kind is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, str):
            try:
                return int(raw.strip())
            except ValueError:
                return None
        return None
    if kind is float:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            number = float(raw)
        elif isinstance(raw, str):
            try:
                number = float(raw.strip())
            except ValueError:
                return None
        else:
            return None
        return number if math.isfinite(number) else None
    if kind is str:
        return raw if isinstance(raw, str) else None
    if kind is bytes:
        return bytes(raw) if isinstance(raw, (bytes, bytearray, memoryview)) else None
    if kind is list:
        return list(raw) if isinstance(raw, (list, tuple)) else None
    if kind is dict:
        return dict(raw) if isinstance(raw, Mapping) else None
    if kind is Path:
        if isinstance(raw, Path):
            return raw
        if isinstance(raw, str) and raw.strip():
            return Path(raw.strip()).expanduser()
        return None
    return raw if isinstance(raw, kind) else None


def accept(option: Option[T], raw: object) -> T | None:
    """``raw`` as a value of ``option`` (its type, then its check), or None if rejected."""
    try:
        return _accept(option, raw)
    except ValueError:
        return None


def _accept(option: Option[T], raw: object) -> T | None:
    value = coerce(option.type, raw)
    if value is None:
        return None
    if option.check is not None:
        value = option.check(value)
    return value


def resolve(option: Option[T], *, env: Mapping[str, str], stored: object | None) -> T:
    """The value of ``option``: its environment variable when set (blank counts as unset),
    else ``stored`` when it has the option's type and passes its check, else the default.

    A set environment variable is an explicit choice: a value that cannot be used raises
    :class:`OptionError` rather than being silently replaced."""
    if option.env:
        raw = env.get(option.env, "")
        if raw.strip():
            try:
                value = _accept(option, raw)
                reason = "" if value is not None else f"it is not {option.doc or 'a valid value'}"
            except ValueError as exc:
                value, reason = None, str(exc)
            if value is None:
                raise OptionError(option.env, raw, reason)
            return value
    value = accept(option, stored)
    if value is not None:
        return value
    return copy.deepcopy(option.default)


# --- stores ----------------------------------------------------------------------------------


class SettingsStore(Protocol):
    """Where stored values live. ``get`` gives the effective value (see :func:`resolve`)."""

    def get(self, option: Option[T]) -> T: ...

    def set(self, option: Option[T], value: T) -> None: ...

    def sync(self) -> bool:
        """Write what was set; False when it could not be (a full disk, a read-only file)."""
        ...


def value_to_store(option: Option[T], value: T) -> Any:
    """``value`` checked for ``option``'s key; ``ValueError`` for an env-only option or a
    value the option rejects (a bug in the caller, never a user's mistake)."""
    if option.key is None:
        raise ValueError(f"{option.name} is not kept in the settings file")
    checked = accept(option, value)
    if checked is None:
        raise ValueError(f"{value!r} is not a valid value for {option.key}")
    return checked


class MemorySettingsStore:
    """Settings kept in a dict, for tests and the command line."""

    def __init__(self, values: Mapping[str, object] | None = None, *, env: Mapping[str, str] | None = None) -> None:
        self.values: dict[str, object] = dict(values or {})
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.synced = 0

    def get(self, option: Option[T]) -> T:
        stored = self.values.get(option.key) if option.key is not None else None
        return resolve(option, env=self.env, stored=copy.deepcopy(stored))

    def set(self, option: Option[T], value: T) -> None:
        checked = value_to_store(option, value)
        assert option.key is not None
        self.values[option.key] = copy.deepcopy(checked)

    def sync(self) -> bool:
        self.synced += 1
        return True


__all__ = [
    "OPTIONS",
    "MemorySettingsStore",
    "Option",
    "OptionError",
    "SettingsStore",
    "accept",
    "coerce",
    "resolve",
]

"""Where results live: image files with embedded generation records, and a SQLite index. No Qt.

The file formats' functions (``embed``, ``read_record``, ``record_for``, ``parse_a1111``,
``to_a1111``) are imported from :mod:`krea_desktop.library.metadata` when first asked for:
opening a library does not need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from krea_desktop.api.record import GenerationRecord, ReferenceRecord, parse_record
from krea_desktop.library.paths import data_dir
from krea_desktop.library.store import Library, LibraryEntry, LibraryError, LibraryReferenceCache, ReconcileReport

if TYPE_CHECKING:
    from krea_desktop.library.metadata import embed, parse_a1111, read_record, record_for, to_a1111

_FROM_METADATA = frozenset({"embed", "parse_a1111", "read_record", "record_for", "to_a1111"})

__all__ = [
    "GenerationRecord",
    "Library",
    "LibraryEntry",
    "LibraryError",
    "LibraryReferenceCache",
    "ReconcileReport",
    "ReferenceRecord",
    "data_dir",
    "embed",
    "parse_a1111",
    "parse_record",
    "read_record",
    "record_for",
    "to_a1111",
]


def __dir__() -> list[str]:
    return sorted({*globals(), *_FROM_METADATA})


def __getattr__(name: str) -> Any:
    if name in _FROM_METADATA:
        from krea_desktop.library import metadata

        return getattr(metadata, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

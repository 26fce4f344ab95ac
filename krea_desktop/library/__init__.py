"""Where results live: image files with embedded generation records, and a SQLite index. No Qt."""

from krea_desktop.api.record import GenerationRecord, ReferenceRecord, parse_record
from krea_desktop.library.metadata import embed, parse_a1111, read_record, record_for, to_a1111
from krea_desktop.library.paths import data_dir
from krea_desktop.library.store import Library, LibraryEntry, LibraryError, LibraryReferenceCache, ReconcileReport

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

"""Lineage: which library images an image was made from, and which were made from it.

A reference that is a library image (dragged from the gallery, pasted from a library
file, or any file whose embedded imageUUID or bytes match a library image) records that
image's imageUUID as its ``parent``; the index keeps a row per such reference (see the
``lineage`` table in :mod:`krea_desktop.library.store`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from krea_desktop.library.inputs import LoadedReference
from krea_desktop.library.store import Library, LibraryEntry


def parent_of(library: Library, loaded: LoadedReference, path: Path | None = None) -> str | None:
    """The imageUUID of the library image that ``loaded`` is, or None. ``path`` is the
    file it was read from, when it was one."""
    for query in (
        {"path": path, "image_uuid": loaded.origin_uuid, "sha256": loaded.origin_sha256 or None},
        {"sha256": loaded.sha256},
    ):
        entry = library.find_image(**query)
        if entry is not None:
            return entry.image_uuid
    return None


@dataclass(frozen=True)
class Relative:
    """An image on the other end of a lineage link: ``entry`` is None when the image has
    left the library (its imageUUID is still known)."""

    image_uuid: str
    strength: float | None
    entry: LibraryEntry | None


def made_from(library: Library, entry: LibraryEntry) -> list[Relative]:
    """The library images ``entry`` was made from, in the order of its references."""
    if entry.id < 0:  # a file outside the library: its record still names its parents
        links = [(r.parent, r.strength) for r in entry.record.references if r.parent]
    else:
        links = [(uuid, strength) for uuid, strength in library.parents(entry.id)]
    return [Relative(uuid, strength, library.get_by_uuid(uuid)) for uuid, strength in links if uuid]


def used_in(library: Library, entry: LibraryEntry, limit: int = 200) -> list[Relative]:
    """The images made with ``entry`` as a reference, newest first."""
    links = library.children(entry.image_uuid)[:limit]
    found = library.get_many(child for child, _ in links)
    return [Relative(found[child].image_uuid, strength, found[child]) for child, strength in links if child in found]

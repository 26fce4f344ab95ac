"""Reading an image's record back for reuse: the library's images and files from anywhere."""

from __future__ import annotations

import re
from pathlib import Path

from krea_desktop.api.record import GenerationRecord, record_json_text
from krea_desktop.library import metadata
from krea_desktop.library.store import LibraryEntry


def record_of(entry: LibraryEntry) -> GenerationRecord:
    """The image's generation record: as indexed, else as embedded in its file."""
    if entry.record.says_how_made:
        return entry.record
    return metadata.read_record(entry.path) or GenerationRecord()


def reference_sources(
    record: GenerationRecord, references_dir: Path | None = None
) -> tuple[list[tuple[int, Path, float | None]], int]:
    """The record's references whose files are still on this computer: each one's place
    among the record's (from 1), its file and its strength (None where the record does not
    know it); and how many could not be found.

    Files name a reference by its file name alone (the copy kept in the data folder's
    ``references/``, named by content hash): with ``references_dir``, the name is looked
    up there, whatever folder the record names. Without it, the source is taken as a path.
    """
    found: list[tuple[int, Path, float | None]] = []
    lost = 0
    for place, ref in enumerate(record.references, 1):
        path = _kept_copy(ref.source, references_dir)
        if path is not None:
            found.append((place, path, ref.strength))
        else:
            lost += 1
    return found, lost


def _kept_copy(source: str | None, references_dir: Path | None) -> Path | None:
    if not source or "://" in source or source.startswith(("data:", "sha256:")):
        return None
    candidates: list[Path] = []
    if references_dir is not None:
        name = re.split(r"[\\/]", source)[-1]
        if name not in ("", ".", ".."):
            candidates.append(references_dir / name)
    # The library's own index keeps the full path (it never leaves this computer): a
    # reference kept elsewhere by an earlier version is still found there.
    if references_dir is None or Path(source).is_absolute():
        candidates.append(Path(source))
    for path in candidates:
        try:
            if path.is_file():
                return path
        except OSError:
            continue
    return None


def entry_for_file(path: Path, record: GenerationRecord | None, pixels: tuple[int, int] | None = None) -> LibraryEntry:
    """A library-like entry for an image file that is not in the library (id -1); its size
    is the record's, else ``pixels`` (the file's own, from its header)."""
    record = record or GenerationRecord()
    try:
        size: int | None = path.stat().st_size
    except OSError:
        size = None
    return LibraryEntry(
        id=-1,
        image_uuid=record.image_uuid or path.stem,
        task_uuid=record.task_uuid,
        file_name=path.name,
        format=record.output_format or (path.suffix.lstrip(".").upper()),
        width=record.width or (pixels[0] if pixels else 0),
        height=record.height or (pixels[1] if pixels else 0),
        ratio=record.ratio,
        prompt=record.prompt,
        creativity=record.creativity,
        seed=record.seed,
        number_results=record.number_results,
        output_quality=record.output_quality,
        cost=record.cost,
        nsfw=record.nsfw,
        created_at=record.created_at or "",
        favourite=False,
        missing=False,
        broken=False,
        file_size=size,
        record_json=record_json_text(record),
        images_dir=path.parent,
        simulated=record.simulated,
    )

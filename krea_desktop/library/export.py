"""Saving a copy of a library image as PNG, JPEG or WEBP, with its generation record embedded."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from krea_desktop.api import spec
from krea_desktop.api.record import GenerationRecord
from krea_desktop.fsutil import atomic_write
from krea_desktop.library import metadata
from krea_desktop.library.recall import record_of
from krea_desktop.library.store import LibraryEntry

# The formats images can be exported to, by the service's name, with their file suffix.
EXPORT_FORMATS = {"PNG": "png", "JPG": "jpg", "WEBP": "webp"}


class ExportError(Exception):
    """An export failed; the message says why, in one sentence."""


def export_format(fmt: str) -> str:
    """The service's name ("PNG", "JPG", "WEBP") of an export format in any common spelling."""
    name = spec.normalize_output_format(fmt)
    if name is None or name not in EXPORT_FORMATS:
        raise ExportError(f"{fmt} is not a format images can be exported to; choose PNG, JPEG or WEBP.")
    return name


def export_suffix(fmt: str) -> str:
    """The file suffix, with its dot, that an export in ``fmt`` is given."""
    return "." + EXPORT_FORMATS[export_format(fmt)]


def export_image(entry: LibraryEntry, target_path: Path | str, fmt: str, *, with_parameters: bool = True) -> Path:
    """Write ``entry``'s image to ``target_path`` as PNG, JPG (JPEG) or WEBP, re-encoded,
    with its generation record embedded as in the library, or, ``with_parameters=False``,
    with no metadata at all (nothing of the source file's is carried over either).
    Raises :class:`ExportError`."""
    from PIL import Image  # imported on first export, not with the window

    name = export_format(fmt)
    target = Path(target_path)
    try:
        with Image.open(entry.path) as im:
            im.load()
            if name == "JPG" and im.mode not in ("RGB", "L"):
                im = im.convert("RGB")
            elif im.mode not in ("RGB", "RGBA", "L", "LA"):
                im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
            buf = io.BytesIO()
            options: dict[str, Any] = {"quality": 95} if name in ("JPG", "WEBP") else {"optimize": False}
            # Only what is passed here is written: the source's EXIF, XMP and text stay behind.
            options.update(exif=b"", xmp=b"")
            im.save(buf, spec.PIL_FORMATS[name], **options)
    except FileNotFoundError as exc:
        raise ExportError(f"{entry.path.name} is no longer in the library folder, so it cannot be exported.") from exc
    except OSError as exc:
        raise ExportError(f"{entry.path.name} could not be read ({exc}), so it was not exported.") from exc
    data = buf.getvalue()
    record = record_of(entry) if with_parameters else GenerationRecord()
    if not record.is_empty:
        try:
            data = metadata.embed(data, name, record)
        except metadata.MetadataError as exc:
            raise ExportError(f"The parameters could not be written into the exported file ({exc}).") from exc
    try:
        atomic_write(target, data)
    except OSError as exc:
        raise ExportError(f"{target} could not be written ({exc.strerror or exc}).") from exc
    return target

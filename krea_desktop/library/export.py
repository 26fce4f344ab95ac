"""Saving a copy of a library image as PNG, JPEG or WEBP, with its generation record embedded."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

from krea_desktop.api import spec
from krea_desktop.api.record import GenerationRecord
from krea_desktop.fsutil import write_among_users_files, write_under_a_free_name
from krea_desktop.library import metadata
from krea_desktop.library.recall import record_of
from krea_desktop.library.store import LibraryEntry
from krea_desktop.wording import shortened

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


def with_export_suffix(target: Path, fmt: str) -> Path:
    """``target`` with the suffix of ``fmt``: its own kept when it is one of the format's,
    another export format's replaced, anything else (``my.photo``) kept and added to."""
    suffix = export_suffix(fmt)
    if target.suffix.lower() in (suffix, ".jpeg" if suffix == ".jpg" else suffix):
        return target
    if target.suffix.lower() in _EXPORT_SUFFIXES:
        return target.with_suffix(suffix)
    return target.with_name(target.name + suffix)


_EXPORT_SUFFIXES = {f".{ext}" for ext in EXPORT_FORMATS.values()} | {".jpeg"}
_NAME_FROM_PROMPT_CHARS = 48


def export_name(entry: LibraryEntry) -> str:
    """The name an export of ``entry`` is offered (without a suffix). The library names its
    own images by their imageUUID, which says nothing to a person looking through a folder:
    a file named by a UUID is offered the prompt's first words, joined by hyphens, and the
    UUID's first eight characters, which keep two images of one prompt apart
    (``lighthouse-in-fog-3f2a1c9e``). A file named otherwise (another tool's) keeps its
    name, made one every system takes (:func:`_portable`), as does an image whose prompt
    has no letter or digit."""
    import unicodedata  # neither on the way to a ready window (this module is)
    import uuid

    stem = Path(entry.file_name).stem
    try:
        uuid.UUID(stem)
    except ValueError:
        return _portable(stem)  # a name someone gave it
    # Letters, digits and the marks written with them (a Devanagari vowel sign, an accent
    # typed apart as macOS writes it): composed first, so "é" stays one letter.
    prompt = unicodedata.normalize("NFC", entry.prompt.casefold())
    words = [
        "".join(ch for ch in word if ch.isalnum() or unicodedata.category(ch)[0] == "M") for word in prompt.split()
    ]
    name = ""
    for word in filter(None, words):
        if name and len(name) + 1 + len(word) > _NAME_FROM_PROMPT_CHARS:
            break
        name = f"{name}-{word}" if name else word[:_NAME_FROM_PROMPT_CHARS]
    return f"{name}-{stem[:8]}" if name else stem


# What Windows refuses in a name, and the names of its devices (with any suffix).
_NOT_IN_NAMES = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_DEVICES = frozenset({"CON", "PRN", "AUX", "NUL", *(f"{d}{i}" for d in ("COM", "LPT") for i in range(1, 10))})
# Bytes of a name offered for an export: room left within a file system's 255 for the
# suffix and a " (1000)" that keeps it from another's.
_NAME_BYTES = 200


def _portable(stem: str) -> str:
    """A file's own name, made one that Windows, macOS and Linux all take: what Windows
    refuses in a name turned into "-", no dot or space at its end, a device's name
    ("CON") led by "_", and short enough for the suffix and a number to be added."""
    name = _NOT_IN_NAMES.sub("-", stem)
    while len(os.fsencode(name)) > _NAME_BYTES:
        name = name[:-1]
    name = name.rstrip(" .")
    if name.split(".", 1)[0].rstrip(" ").upper() in _DEVICES:
        name = "_" + name
    return name or "image"


def export_image(
    entry: LibraryEntry,
    target_path: Path | str,
    fmt: str,
    *,
    with_parameters: bool = True,
    replace: bool = True,
    unique: bool = False,
) -> Path:
    """Write ``entry``'s image to ``target_path`` as PNG, JPG (JPEG) or WEBP, re-encoded,
    with its generation record embedded as in the library, or, ``with_parameters=False``,
    with no metadata at all (nothing of the source file's is carried over either). An
    image another tool made keeps that tool's own texts too (A1111's ``parameters``,
    ComfyUI's ``prompt`` and ``workflow``: into a PNG all of them, into a JPEG or WEBP the
    parameters line and ComfyUI's graphs in EXIF Make and Model, as its WEBP saver writes
    them), so that tool can read its copy back.

    The picture is the one a viewer shows: turned as its EXIF orientation says (the tag
    itself is not carried over), with its transparency, and a 16-bit PNG kept 16-bit
    (scaled to 8 bits for JPEG and WEBP).

    ``replace=False`` raises FileExistsError rather than take the place of a file there;
    ``unique=True`` never does either, and writes ``NAME (2).png`` and so on instead.
    Returns the file written. Raises :class:`ExportError`."""
    name = export_format(fmt)
    data = _encoded(entry, name, with_parameters)
    target = Path(target_path)
    if not unique:
        return _write(target, data, replace=replace)
    written = write_under_a_free_name(target, lambda path: _write(path, data, replace=False), _MAX_SAME_NAMES)
    if written is not None:
        return written
    raise ExportError(
        f"{shortened(str(target.parent))} already holds {_MAX_SAME_NAMES} images named like {shortened(target.name)}."
    )


_MAX_SAME_NAMES = 1000


def _write(target: Path, data: bytes, *, replace: bool) -> Path:
    try:
        write_among_users_files(target, data, replace=replace)
    except OSError as exc:
        if isinstance(exc, FileExistsError) and not replace:
            raise  # the caller picks another name
        raise ExportError(
            f"{shortened(target.name)} could not be written in {shortened(str(target.parent))} ({exc.strerror or exc})."
        ) from exc
    return target


def _encoded(entry: LibraryEntry, name: str, with_parameters: bool) -> bytes:
    """The file's bytes: the picture re-encoded as ``name``, and what it carries."""
    from krea_desktop.pillow import Image, open_image  # imported on first export, not with the window

    try:
        with open_image(entry.path) as source:
            source.load()
            texts = _tool_texts(entry) if with_parameters else {}
            im = _exportable(source, name)
            buf = io.BytesIO()
            options: dict[str, Any] = {"quality": 95} if name in ("JPG", "WEBP") else {"optimize": False}
            # Only what is passed here is written: the source's EXIF, XMP, text and JPEG
            # comment (where some tools write their parameters) stay behind. Its colour
            # profile goes along, in every format, where the colours are still its own.
            options.update(exif=b"", xmp=b"", comment=b"", icc_profile=_profile_kept(source, im))
            im.save(buf, spec.PIL_FORMATS[name], **options)
    except FileNotFoundError as exc:
        raise ExportError(f"{entry.path.name} is no longer in the library folder, so it cannot be exported.") from exc
    except Image.DecompressionBombError as exc:
        raise ExportError(f"{entry.path.name} is too large a picture to export.") from exc
    except MemoryError as exc:
        raise ExportError(f"{entry.path.name} is too large a picture to export in the memory there is.") from exc
    except OSError as exc:
        if exc.strerror is None:  # Pillow's: not a picture it knows (UnidentifiedImageError), or cut short
            raise ExportError(f"{entry.path.name} could not be read as an image, so it was not exported.") from exc
        raise ExportError(f"{entry.path.name} could not be read ({exc.strerror}), so it was not exported.") from exc
    except Exception as exc:  # a file Pillow cannot make sense of: ValueError, SyntaxError, struct.error
        raise ExportError(f"{entry.path.name} could not be read as an image, so it was not exported.") from exc
    data = buf.getvalue()
    record = record_of(entry) if with_parameters else GenerationRecord()
    if record.says_how_made or texts:
        try:
            data = metadata.embed(data, name, record, carried=texts)
        except metadata.MetadataError as exc:
            raise ExportError(f"The parameters could not be written into the exported file ({exc}).") from exc
    return data


def _tool_texts(entry: LibraryEntry) -> dict[str, str]:
    """What another tool wrote into ``entry``'s file, to be carried into its export
    (nothing for this app's own images: their record is written anew)."""
    try:
        return metadata.tool_texts(metadata.read_bytes(entry.path))
    except (OSError, ValueError):
        return {}


def _profile_kept(source: Any, im: Any) -> bytes | None:
    """``source``'s ICC profile, for ``im`` (``source`` made exportable) if its colours are
    still in the profile's terms: grey stays grey, RGB (or a palette) stays RGB. A CMYK
    picture turned into RGB has lost them, and its profile would mislead a viewer."""
    profile = source.info.get("icc_profile")
    return profile if profile and _colours(source.mode) == _colours(im.mode) else None


def _colours(mode: str) -> str:
    if mode in ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F"):
        return "grey"
    if mode in ("RGB", "RGBA", "RGBa", "RGBX", "P", "PA"):
        return "RGB"
    return mode


def _exportable(im: Any, name: str) -> Any:
    """``im`` as ``name`` can hold it, looking as a viewer shows it."""
    from krea_desktop.pillow import upright

    im = upright(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        if name == "PNG":
            return im  # 16 bits a channel: PNG keeps them
        return im.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if im.mode == "P" or im.mode == "PA":
        im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
    if name == "JPG":
        return im if im.mode in ("RGB", "L") else im.convert("RGB")
    if name == "WEBP" and im.mode in ("L", "LA"):  # WEBP has no grey: its encoder would make it RGB unseen
        return im.convert("RGBA" if im.mode == "LA" else "RGB")
    if im.mode not in ("RGB", "RGBA", "L", "LA"):
        im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
    return im

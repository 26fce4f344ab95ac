"""``krea-desktop info IMAGE... [--json]``: what the app recalls from each file.

Readable lines by default; with ``--json`` one JSON object per file, in the order given.
Exits 0 when every file was read, 1 otherwise, with one sentence per unreadable file on
stderr. Files are read without waiting on FIFOs or devices and without decoding pixels.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from krea_desktop import console
from krea_desktop.api.record import APP, GenerationRecord
from krea_desktop.fsutil import NotARegularFile
from krea_desktop.library import metadata
from krea_desktop.library.readers.base import foreign_seed
from krea_desktop.wording import counted

MAX_BYTES = 200 * 1024 * 1024
_UUID_CHARS = frozenset("0123456789abcdef-")


class Unreadable(Exception):
    """A file that could not be read as an image; the message says why, in one sentence."""


def _reference_name(source: str | None) -> str | None:
    return metadata.shareable_reference(source)


def _is_uuid(text: str | None) -> bool:
    return bool(text) and len(text or "") == 36 and set((text or "").lower()) <= _UUID_CHARS


def describe(record: GenerationRecord, file: str, size: tuple[int, int] | None) -> dict[str, Any]:
    """The JSON object ``info --json`` prints for one file."""
    source = record.extras.get("source")
    if not isinstance(source, str):
        source = APP if record.app == APP else None
    width, height = record.width, record.height
    if (width is None or height is None) and size is not None:
        width, height = size
    sheet = record.sweep is not None and record.sweep.is_sheet
    if sheet:
        # A contact sheet: its own size, no preset's ratio, and nothing its axes varied
        # (the request it was composed from had one creativity or seed; no cell used it).
        if size is not None:
            width, height = size
        record = record.shared_by_cells().replace(width=None, height=None, ratio=None)
    return {
        "file": file,
        "source": source,
        "prompt": record.prompt if record.has_prompt else None,
        "negativePrompt": record.negative_prompt,
        "seed": record.seed,
        "width": width,
        "height": height,
        "ratio": None if sheet else record.replace(width=width, height=height).ratio,
        "creativity": record.creativity,
        "model": record.model,
        "imageUUID": record.image_uuid,
        "references": [
            {
                "name": _reference_name(ref.source) or (None if _is_uuid(ref.image) else _reference_name(ref.image)),
                "strength": ref.strength,
                "imageUUID": ref.image if _is_uuid(ref.image) else None,
                # The imageUUID of the library image the reference was (its lineage), if any.
                "parent": ref.parent,
            }
            for ref in record.references
        ],
        "sweep": record.sweep.to_json() if record.sweep is not None else None,
        "foreign": record.extras.get("foreign") if isinstance(record.extras.get("foreign"), dict) else None,
    }


def _shown_name(path: Path) -> str:
    """``path`` as text any output can take: bytes of the name that are not valid in the file
    system's encoding (which Python keeps as lone surrogates) are written as ``\\xNN``."""
    try:
        raw = os.fsencode(path)
    except UnicodeEncodeError:  # surrogates that stand for no byte
        return str(path).encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode(sys.getfilesystemencoding(), "backslashreplace")


def read(path: Path) -> tuple[dict[str, Any], bool]:
    """What the app recalls from ``path``, and whether the file ends early (its metadata
    may be whole while its pixels are cut short). Raises :class:`Unreadable`."""
    name = _shown_name(path)
    said = console.one_line(name)  # in a sentence: a line break in the name would forge another line
    try:
        if path.is_dir():
            raise Unreadable(f"{said} is a folder, not an image.")
        data = metadata.read_bytes(path, MAX_BYTES)
    except FileNotFoundError:
        raise Unreadable(f"{said} does not exist.") from None
    except IsADirectoryError:
        raise Unreadable(f"{said} is a folder, not an image.") from None
    except NotARegularFile:
        raise Unreadable(f"{said} is not a regular file, so it was not read.") from None
    except PermissionError:
        raise Unreadable(f"{said} cannot be read: permission denied.") from None
    except metadata.MetadataError:
        raise Unreadable(f"{said} is larger than {MAX_BYTES // (1024 * 1024)} MB, so it was not read.") from None
    except OSError as exc:
        raise Unreadable(f"{said} cannot be read ({exc.strerror or exc}).") from None
    if not data:
        raise Unreadable(f"{said} is empty (0 bytes), so it holds no image.")
    fmt = metadata.sniff_format(data)
    if fmt is None:
        raise Unreadable(f"{said} is not a PNG, JPEG or WEBP image.")
    if fmt == "WEBP" and min(len(data), int.from_bytes(data[4:8], "little") + 8) < 20:  # no room for a chunk
        raise Unreadable(f"{said} is a WEBP header with nothing in it, so it holds no image.")
    if metadata.has_too_many_parts(data):
        raise Unreadable(
            f"{said} has more than {metadata.MAX_PARTS:,} blocks of metadata, which no real image has, "
            "so it was not read."
        )
    record = metadata.read_record(data, max_bytes=MAX_BYTES) or GenerationRecord()
    return describe(record, name, metadata.image_size(data)), metadata.ends_early(data)


def _line(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else "—"


def _readable(info: dict[str, Any]) -> str:
    size = f"{info['width']}x{info['height']}" if info["width"] and info["height"] else None
    if size and info["ratio"]:
        size += f" ({info['ratio']})"
    lines = [
        console.one_line(info["file"]),
        f"  made by:         {_line(info['source'] or 'unknown')}",
        f"  prompt:          {_line(info['prompt'])}",
    ]
    if info["negativePrompt"]:
        lines.append(f"  negative prompt: {_line(info['negativePrompt'])}")
    foreign = info.get("foreign") or {}
    seed = _line(info["seed"])
    theirs = foreign_seed({"foreign": foreign})
    if info["seed"] is None and theirs is not None:
        tool = _line(info["source"] or "the other tool")
        seed = f"{theirs} ({tool}'s, beyond Krea 2 Medium's range, so not recalled)"
    lines += [
        f"  seed:            {seed}",
        f"  size:            {_line(size)}",
        f"  creativity:      {_line(info['creativity'])}",
        f"  model:           {_line(info['model'])}",
    ]
    if info["imageUUID"]:
        lines.append(f"  imageUUID:       {info['imageUUID']}")
    sweep = info.get("sweep")
    if isinstance(sweep, dict):
        lines.append(f"  sweep:           {_line(_sweep_line(sweep))}")
    for key in ("sampler", "scheduler", "steps", "cfg"):
        if key in foreign:
            lines.append(f"  {key + ':':<16} {_line(foreign[key])}")
    for i, ref in enumerate(info["references"], 1):
        strength = f"{ref['strength']:+.2f}" if isinstance(ref["strength"], (int, float)) else "?"
        what = ref["name"] or ref["imageUUID"] or "unknown"
        lines.append(f"  reference {i}:     {_line(what)} ({strength})")
    return "\n".join(lines)


def _sweep_line(sweep: dict[str, Any]) -> str:
    """What a sweep tag says, in words: the sheet's axes, or a cell's values."""
    axes = [a for a in sweep.get("axes", []) if isinstance(a, dict)]
    place = sweep.get("place")
    if not place:
        cells = 1
        for axis in axes:
            cells *= len(axis.get("values", []))
        return f"contact sheet of {counted(cells, 'cell')}, varying {' and '.join(str(a.get('name')) for a in axes)}"
    values = []
    for axis, i in zip(axes, place, strict=False):
        name, options = str(axis.get("name")), axis.get("values", [])
        value = options[i] if isinstance(i, int) and 0 <= i < len(options) else "?"
        shown = f"{value:+.2f}" if name.startswith("ref") and isinstance(value, (int, float)) else value
        values.append(f"{name} {shown}")
    return f"one cell of sweep {sweep.get('id')}: {', '.join(values)}"


def _shown(text: str) -> str:
    """``text`` with every character a terminal would act on written as an escape (line
    breaks kept): :func:`console.shown`."""
    return console.shown(text)


def _encodable(text: str, stream: TextIO) -> bool:
    """Whether ``stream`` can write ``text`` (a terminal's encoding may lack some characters)."""
    try:
        text.encode(getattr(stream, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def run(paths: list[Path], *, as_json: bool, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print what is recalled from each of ``paths``; 0 when all were read, else 1."""
    out = out or sys.stdout
    err = err or sys.stderr
    if out is None:  # started with it closed (">&-"): nothing printed would be read
        print("krea-desktop: the output could not be written (it is closed).", file=err, flush=True)
        return 1
    failed = 0
    first = True
    try:
        for path in paths:
            try:
                info, ends_early = read(path)
            except Unreadable as exc:
                failed += 1
                print(f"krea-desktop: {_shown(str(exc))}", file=err, flush=True)
                if not as_json:
                    continue
                # Its line all the same, so that line N is the Nth file: nothing recalled,
                # and the sentence under "error".
                info = describe(GenerationRecord(), _shown_name(path), None) | {"error": str(exc)}
                ends_early = False
            if as_json:
                text = _shown(json.dumps(info, ensure_ascii=False))
                if not _encodable(text, out):
                    text = json.dumps(info)  # \u escapes: the same JSON, in ASCII
                print(text, file=out, flush=True)
            else:
                if not first:
                    print(file=out)
                text = _shown(_readable(info))
                if not _encodable(text, out):
                    text = text.encode("ascii", "backslashreplace").decode("ascii")
                print(text, file=out, flush=True)
            if ends_early:
                # What it recalls was read (its metadata comes before its pixels), so it
                # counts as read; the damage is worth a word all the same.
                print(
                    f"krea-desktop: {_shown(console.one_line(info['file']))} ends early, so its picture is cut short "
                    "(what it recalls was read from the part that is there).",
                    file=err,
                    flush=True,
                )
            first = False
    except BrokenPipeError:
        # The reader went away (``info *.png | head -1``): what it read is all it wanted,
        # and nothing more is read for it.
        console.silence(out)
    except OSError as exc:  # a full disk under a redirection
        console.silence(out)
        print(f"krea-desktop: the output could not be written ({exc.strerror or exc}).", file=err, flush=True)
        return 1
    return 1 if failed else 0

"""Generation parameters embedded in every saved image, and read back from any image.

Every saved file carries its :class:`~krea_desktop.api.record.GenerationRecord` twice:

* as the widely read Automatic1111 ``parameters`` text (prompt, then a line of
  ``Key: value`` pairs), which other tools and sites understand, and
* as the full JSON record, which this application reads back exactly.

Per format:

* PNG: a ``parameters`` text chunk (tEXt, or iTXt when the text is not Latin-1) and a
  ``krea-desktop`` iTXt chunk holding the JSON. The chunks are spliced into the existing
  byte stream just before the first IDAT chunk (where readers that stop at the image data
  still see them); the image data is not touched.
* JPEG: an APP1 ``Exif`` segment whose UserComment holds the A1111 text (``UNICODE\\0``
  prefix + UTF-16BE, as A1111 writes it) and an APP1 XMP segment holding the JSON record
  and the A1111 text. The segments are inserted after SOI/APP0; the compressed scan data
  is copied byte for byte.
* WEBP: ``EXIF`` and ``XMP `` RIFF chunks with the same content, appended after the image
  data; a simple (VP8/VP8L) file gains the ``VP8X`` header the extended format requires.
  The bitstream is copied byte for byte.

:func:`read_record` parses containers at the byte level, never decodes pixels, bounds
every size it trusts, and returns ``None`` for anything malformed.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import os
import re
import struct
import zlib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from krea_desktop import __version__
from krea_desktop.api import spec
from krea_desktop.api.record import (
    APP,
    RECORD_VERSION,
    GenerationRecord,
    ReferenceRecord,
    iso_utc,
    parse_record,
)
from krea_desktop.api.results import GeneratedImage
from krea_desktop.fsutil import read_regular_file
from krea_desktop.library.readers import Embedded, read_foreign
from krea_desktop.library.readers.a1111 import MODEL_LABEL, NOT_APPLICABLE
from krea_desktop.library.readers.a1111 import parse_a1111 as parse_a1111  # lives with the other readers
from krea_desktop.library.readers.base import MAX_JSON, as_int, as_number, foreign_seed
from krea_desktop.library.readers.easydiffusion import KEYWORDS as EASY_DIFFUSION_KEYWORDS

log = logging.getLogger(__name__)

JSON_KEY = "krea-desktop"  # PNG text keyword and XMP element name for the JSON record
PARAMETERS_KEY = "parameters"  # the A1111 keyword

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EXIF_HEADER = b"Exif\x00\x00"
_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_XMP_NS = "https://krea.ai/ns/krea-desktop/1.0/"
_UC_UNICODE = b"UNICODE\x00"
_UC_ASCII = b"ASCII\x00\x00\x00"
_UC_UNDEFINED = b"\x00" * 8
_UC_JIS = b"JIS\x00\x00\x00\x00\x00"
_JPEG_SEGMENT_MAX = 65533  # payload bytes in one marker segment (length field includes itself)
_WEBP_METADATA_MAX = 1024 * 1024  # bytes of this app's own record and line in a WEBP's EXIF or XMP chunk


_TAG_IMAGE_DESCRIPTION = 0x010E
_TAG_MAKE = 0x010F
_TAG_MODEL = 0x0110
_TAG_SOFTWARE = 0x0131
_TAG_ORIENTATION = 0x0112
_TAG_EXIF_IFD = 0x8769
_TAG_EXIF_VERSION = 0x9000
_TAG_USER_COMMENT = 0x9286


class MetadataError(ValueError):
    """The image bytes cannot carry metadata (not the format they claim to be, or malformed)."""


# ---------------------------------------------------------------------------------------------
# Records


def record_for(image: GeneratedImage, created_at: datetime) -> GenerationRecord:
    """The record embedded in ``image``'s file and stored in the library: the record the
    request and client made, completed by what the service answered (the seed it used,
    the format and size it produced, the cost) and by when it was saved."""
    base = image.record or GenerationRecord()
    return base.replace(
        width=image.width,
        height=image.height,
        seed=image.seed if image.seed is not None else base.seed,
        output_format=spec.normalize_output_format(image.format) or base.output_format,
        model=base.model or spec.MODEL_ID,
        task_uuid=image.task_uuid,
        image_uuid=image.image_uuid,
        index=image.index,
        cost=image.cost,
        nsfw=image.nsfw,
        created_at=iso_utc(created_at),
        app=APP,
        version=__version__,
        record_version=RECORD_VERSION,
    )


# ---------------------------------------------------------------------------------------------
# Automatic1111 "parameters" text


def _a1111_value(value: Any) -> str:
    """A value quoted as A1111's ``quote()`` quotes it: as a JSON string when it contains a
    ``,``, a newline or a ``:``, else as is."""
    text = str(value)
    if "," not in text and "\n" not in text and ":" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def to_a1111(record: GenerationRecord) -> str:
    """The A1111 ``parameters`` text: the prompt, then one line of ``Key: value`` pairs.

    The line starts ``Steps: n/a, Sampler: n/a``: the model has neither, but the readers
    of this format only recognise the line when it has them (sd-prompt-reader needs a line
    starting with ``Steps:``, sd-parsers a ``Sampler``). ``n/a`` is not a number, so A1111
    leaves its Steps setting as it is when it applies the line, and it falls back to its
    default sampler for a sampler it does not know. The model is named ``Krea 2 Medium``
    (its id has a ``:``, which A1111 quotes and some readers then cut apart).

    Another tool's image has that tool's own settings there instead, as its record keeps
    them under ``extras["foreign"]``: Steps, Sampler, Schedule type, CFG scale, and its
    seed where Krea 2 Medium cannot take it; and no ``References`` count when it has none.
    """
    return _a1111_text(record, tool_settings=True)


def _a1111_text(record: GenerationRecord, *, tool_settings: bool, model_always: bool = False) -> str:
    """:func:`to_a1111`'s text; without ``tool_settings``, the line as earlier versions
    wrote it for every image (``Steps: n/a, Sampler: n/a``, a ``References`` count);
    ``model_always``, as they named this model for another tool's image of no known model."""
    foreign = record.extras.get("foreign") if tool_settings else None
    settings = foreign if isinstance(foreign, Mapping) else {}
    steps = as_int(settings.get("steps"))
    sampler = _setting_text(settings.get("sampler"))
    scheduler = _setting_text(settings.get("scheduler"))
    cfg = as_number(settings.get("cfg"))
    pairs: list[tuple[str, Any]] = [
        ("Steps", NOT_APPLICABLE if steps is None else steps),
        ("Sampler", sampler or NOT_APPLICABLE),
    ]
    if scheduler:
        pairs.append(("Schedule type", scheduler))
    if cfg is not None:
        pairs.append(("CFG scale", cfg))
    seed = record.seed if record.seed is not None else foreign_seed({"foreign": settings})
    if seed is not None:
        pairs.append(("Seed", seed))
    if record.width and record.height:
        pairs.append(("Size", f"{record.width}x{record.height}"))
    # Another tool's image whose model its reader did not find names none (not this one's).
    if record.model or model_always or not (tool_settings and _other_tools(record)):
        model = record.model or spec.MODEL_ID
        pairs.append(("Model", MODEL_LABEL if model == spec.MODEL_ID else model))
    if record.creativity:
        pairs.append(("Creativity", record.creativity))
    if record.ratio and not (record.sweep is not None and record.sweep.is_sheet):  # a sheet's size is its own
        pairs.append(("Ratio", record.ratio))
    if record.references or not (tool_settings and _other_tools(record)):
        pairs.append(("References", len(record.references)))
    if record.app == APP:
        pairs.append(("Version", f"{APP} {record.version or __version__}"))
    line = ", ".join(f"{k}: {_a1111_value(v)}" for k, v in pairs)
    prompt = record.prompt
    if record.negative_prompt:
        prompt += f"\nNegative prompt: {record.negative_prompt}"
    return f"{prompt}\n{line}"


def _setting_text(value: Any) -> str | None:
    """Another tool's sampler or scheduler name as the line can hold it, or None."""
    return (value.strip() or None) if isinstance(value, str) else None


def _other_tools(record: GenerationRecord) -> bool:
    """Whether ``record`` is of an image another tool made (its reader named the tool)."""
    source = record.extras.get("source")
    return isinstance(source, str) and source != APP and record.app != APP


# ---------------------------------------------------------------------------------------------
# What an embedded record may say


def _public_reference(text: str | None) -> str | None:
    """A reference as it may leave this computer: a URL without its query, fragment or
    credentials; a file by its name alone (the kept copies are named by content hash)."""
    if text is None or text.startswith(("sha256:", "data:")):
        return text
    if "://" in text:
        try:
            parts = urlsplit(text)
            if parts.scheme.lower() == "file":
                return _file_name(unquote(parts.path)) or None
            host = parts.hostname or ""
            netloc = f"{host}:{parts.port}" if parts.port else host
        except ValueError:  # no address (a port of 99999, a bracket unclosed): its file name
            return _file_name(text.split("?", 1)[0].split("#", 1)[0]) or None
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return _file_name(text) or None


def shareable_reference(text: str | None) -> str | None:
    """A reference's source or image as :func:`shareable` writes it."""
    return _public_reference(text)


def _file_name(path: str) -> str:
    return re.split(r"[\\/]", path)[-1]


def shareable(record: GenerationRecord) -> GenerationRecord:
    """``record`` as it is embedded in files that may be shared: each reference by its file
    name (or content hash, imageUUID, URL without query), strength and lineage, never its folder."""
    refs = tuple(
        ReferenceRecord(
            image=_public_reference(r.image),
            strength=r.strength,
            source=_public_reference(r.source),
            parent=r.parent,
        )
        for r in record.references
    )
    return record.replace(references=refs)


# ---------------------------------------------------------------------------------------------
# Shared encoders


def _record_json(record: dict[str, Any]) -> str:
    # ASCII only: survives every container unchanged.
    return json.dumps(record, ensure_ascii=True, separators=(",", ":"), default=str)


def _user_comment(text: str) -> bytes:
    return _UC_UNICODE + text.encode("utf-16-be", "surrogatepass")


# What XML 1.0 has no place for, even as a character reference.
_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xmp_packet(record_json: str, parameters: str, prompt: str = "") -> bytes:
    """The XMP packet: the prompt as dc:description, the app as xmp:CreatorTool, the JSON
    record and the A1111 text. Characters XML cannot hold at all (most controls, U+FFFE)
    become U+FFFD there, so that every XMP reader can parse it; the JSON record is ASCII
    with escapes, and keeps them."""

    def esc(text: str, quote: bool = False) -> str:
        return html.escape(_NOT_IN_XML.sub("\ufffd", text), quote=quote)

    body = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
        f'    xmlns:kd="{_XMP_NS}">\n'
        f"   <xmp:CreatorTool>{esc(_creator_tool(), quote=False)}</xmp:CreatorTool>\n"
        "   <dc:description>\n"
        "    <rdf:Alt>\n"
        f'     <rdf:li xml:lang="x-default">{esc(prompt, quote=False)}</rdf:li>\n'
        "    </rdf:Alt>\n"
        "   </dc:description>\n"
        f"   <kd:record>{esc(record_json, quote=False)}</kd:record>\n"
        f"   <kd:parameters>{esc(parameters, quote=False)}</kd:parameters>\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )
    return body.encode("utf-8", "replace")


def _creator_tool() -> str:
    return f"{APP} {__version__}"


def _tiff_with_user_comment(comment: bytes, description: str = "", graphs: Mapping[str, str] | None = None) -> bytes:
    """A minimal big-endian TIFF/EXIF block: IFD0 (ImageDescription: the prompt, Software,
    ExifIFD pointer) and an Exif IFD (ExifVersion, UserComment). Big-endian matches what
    A1111 (piexif) writes. ImageDescription is ASCII by type; non-ASCII text is written as
    UTF-8, as exiftool writes and reads it (Pillow shows such bytes as Latin-1).

    ``graphs`` are ComfyUI's ``workflow`` and ``prompt`` texts, written where its WEBP
    saver writes them: Make = ``workflow:`` + the editor's graph, Model = ``prompt:`` +
    the API graph."""
    fields = [(_TAG_IMAGE_DESCRIPTION, description.encode("utf-8", "replace") + b"\x00")]
    for tag, key in ((_TAG_MAKE, "workflow"), (_TAG_MODEL, "prompt")):
        if graphs and key in graphs:
            fields.append((tag, f"{key}:{graphs[key]}".encode("utf-8", "replace") + b"\x00"))
    fields.append((_TAG_SOFTWARE, _creator_tool().encode("ascii") + b"\x00"))
    ifd0_at = 8
    at = ifd0_at + 2 + (len(fields) + 1) * 12 + 4  # where the values too long to stand in an entry go
    entries, values = bytearray(), bytearray()
    for tag, value in fields:
        if len(value) <= 4:  # a value of four bytes or fewer stands in the entry itself
            entries += struct.pack(">HHI", tag, 2, len(value)) + value.ljust(4, b"\x00")
            continue
        entries += struct.pack(">HHII", tag, 2, len(value), at + len(values))
        values += value + (b"\x00" if len(value) & 1 else b"")
    exif_at = at + len(values)
    exif_len = 2 + 2 * 12 + 4
    comment_at = exif_at + exif_len
    out = bytearray(b"MM\x00\x2a" + struct.pack(">I", ifd0_at))
    out += struct.pack(">H", len(fields) + 1) + entries
    out += struct.pack(">HHII", _TAG_EXIF_IFD, 4, 1, exif_at)
    out += struct.pack(">I", 0)
    out += values
    out += struct.pack(">H", 2)
    out += struct.pack(">HHI", _TAG_EXIF_VERSION, 7, 4) + b"0232"
    out += struct.pack(">HHII", _TAG_USER_COMMENT, 7, len(comment), comment_at)
    out += struct.pack(">I", 0)
    out += comment
    return bytes(out)


def _fit_record(record: GenerationRecord, parameters: str, limit: int) -> tuple[str, str, str]:
    """Shrink what goes into a size-limited container (a JPEG segment holds 64 KB): the JSON
    record, the A1111 text and the prompt for the description fields. The A1111 text keeps
    its settings line (seed, size, steps) and the start of its prompts; the record keeps
    the other tool's settings where it can. Only when even that does not fit (another
    tool's prompt of thousands of characters outside ASCII, each written as six bytes) is
    the record's own prompt cut short, with "…"."""

    def fits(record_json: str, parameters: str, prompt: str) -> bool:
        exif = _tiff_with_user_comment(_user_comment(parameters), prompt)
        return len(_xmp_packet(record_json, parameters, prompt)) <= limit and len(exif) <= limit

    record_json = _record_json(record.to_json())
    if fits(record_json, parameters, record.prompt):
        return record_json, parameters, record.prompt
    slim = record.replace(references=tuple(ReferenceRecord(strength=r.strength) for r in record.references))
    candidates = [slim, slim.replace(extras={})]
    for share in (8, 32, 128):  # the descriptions shorter and shorter, the record whole
        short_parameters = _shortened_a1111(parameters, limit // share)
        short_prompt = record.prompt[: limit // (2 * share)]
        for candidate in candidates:
            record_json = _record_json(candidate.to_json())
            if fits(record_json, short_parameters, short_prompt):
                return record_json, short_parameters, short_prompt
    cut = slim.replace(
        extras={}, prompt=_cut(record.prompt, limit // 32), negative_prompt=_cut(record.negative_prompt, limit // 64)
    )
    record_json = _record_json(cut.to_json())
    if fits(record_json, short_parameters, short_prompt):
        return record_json, short_parameters, short_prompt
    raise MetadataError("the generation record is too large to embed")


def _cut(text: str | None, limit: int) -> str | None:
    """``text`` within ``limit`` characters, cut with "…"."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def _shortened_a1111(text: str, limit: int) -> str:
    """An A1111 text within ``limit`` characters: its settings line whole, the start of
    the prompt and of the negative prompt (each cut with "…")."""
    if len(text) <= limit:
        return text
    head, sep, settings = text.rpartition("\nSteps: ")
    if not sep:
        return text[: limit - 1] + "…"
    settings = "Steps: " + settings
    room = limit - len(settings) - 1
    if room < 64:
        return settings[:limit]
    positive, neg_sep, negative = head.partition("\nNegative prompt: ")
    cut_negative = min(len(negative), room // 3)
    room_positive = room - (len(neg_sep) + cut_negative if neg_sep else 0)

    def cut(words: str, n: int) -> str:
        return words if len(words) <= n else words[: max(0, n - 1)] + "…"

    shortened = cut(positive, room_positive)
    if neg_sep:
        shortened += neg_sep + cut(negative, cut_negative)
    return shortened + "\n" + settings


# ---------------------------------------------------------------------------------------------
# Format sniffing


def sniff_format(data: bytes) -> str | None:
    """ "PNG", "JPG" or "WEBP" from the file signature, or None."""
    if data.startswith(PNG_SIGNATURE):
        return "PNG"
    if data[:3] == b"\xff\xd8\xff":
        return "JPG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


# ---------------------------------------------------------------------------------------------
# PNG


# Chunks or segments besides the pixel data a file may have: real images have tens. A file
# of millions of empty ones (20 MB makes five million) is made to make readers crawl and
# fill memory with their lists; past this many, reading stops.
MAX_PARTS = 50_000
_FILL = re.compile(rb"\xff+")  # a JPEG's fill bytes before a marker


class TooManyParts(MetadataError):
    """More than :data:`MAX_PARTS` chunks or segments."""


def has_too_many_parts(data: bytes) -> bool:
    """Whether ``data`` (PNG, JPEG or WEBP) has more than :data:`MAX_PARTS` chunks or
    segments besides its pixel data. A large PNG may split its pixels into thousands of
    IDAT chunks (encoders write 8 to 64 KB each), so a PNG may have one more for each KB
    of the file; empty or tiny ones beyond that count too. Other damage is left for the
    decoder to find."""
    fmt = sniff_format(data)
    try:
        if fmt == "PNG":
            pos, n, parts = len(PNG_SIGNATURE), len(data), 0
            allowed = MAX_PARTS + n // 1024
            while pos + 12 <= n:
                (length,) = struct.unpack_from(">I", data, pos)
                parts += 1
                if parts > allowed:
                    return True
                pos += 12 + length
        elif fmt == "JPG":
            _jpeg_segments(data)
        elif fmt == "WEBP":
            _riff_chunks(data)
    except TooManyParts:
        return True
    except MetadataError:
        pass
    return False


def _png_chunks(data: bytes) -> list[tuple[int, bytes, int, int]]:
    """(start offset, type, data start, data end) of every chunk up to and including IEND."""
    if not data.startswith(PNG_SIGNATURE):
        raise MetadataError("not a PNG file")
    chunks = []
    pos = len(PNG_SIGNATURE)
    n = len(data)
    while True:
        if pos + 12 > n:
            raise MetadataError("truncated PNG chunk")
        (length,) = struct.unpack_from(">I", data, pos)
        ctype = data[pos + 4 : pos + 8]
        start, end = pos + 8, pos + 8 + length
        if length > 0x7FFFFFFF or end + 4 > n:
            raise MetadataError("PNG chunk overruns the file")
        chunks.append((pos, ctype, start, end))
        pos = end + 4
        if ctype == b"IEND":
            return chunks


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF)


def _png_text_chunk(keyword: str, text: str, *, force_itxt: bool = False) -> bytes:
    key = keyword.encode("latin-1")
    if not force_itxt:
        try:
            return _png_chunk(b"tEXt", key + b"\x00" + text.encode("latin-1"))
        except UnicodeEncodeError:
            pass
    return _png_chunk(b"iTXt", key + b"\x00\x00\x00" + b"\x00" + b"\x00" + text.encode("utf-8", "replace"))


def _embed_png(
    data: bytes, record_json: str | None, parameters: str | None, carried: dict[str, str] | None = None
) -> bytes:
    """``record_json`` None: no record of this app's (a picture it knows nothing of how
    was made), and its name as the Software only where another tool's is carried."""
    chunks = _png_chunks(data)
    ours = {PARAMETERS_KEY.encode(), JSON_KEY.encode(), b"Software"}
    software = (carried or {}).get("Software") or (_creator_tool() if record_json is not None else None)
    new = (
        (_png_text_chunk(PARAMETERS_KEY, parameters) if parameters is not None else b"")
        + (_png_text_chunk("Software", software) if software is not None else b"")
        + (_png_text_chunk(JSON_KEY, record_json, force_itxt=True) if record_json is not None else b"")
    )
    for key, text in (carried or {}).items():
        if key.encode("latin-1", "replace") not in ours and _PNG_KEYWORD.fullmatch(key):
            new += _png_text_chunk(key, text)
            ours.add(key.encode("latin-1"))
    out = bytearray(data[: len(PNG_SIGNATURE)])
    inserted = False
    for pos, ctype, start, end in chunks:
        if ctype in (b"tEXt", b"iTXt", b"zTXt") and data[start:end].split(b"\x00", 1)[0] in ours:
            continue  # replaced by the new ones
        if not inserted and ctype in (b"IDAT", b"IEND"):
            out += new
            inserted = True
        out += data[pos : end + 4]
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# JPEG


def _jpeg_segments(data: bytes, *, partial: bool = False) -> tuple[list[tuple[int, int, int]], int]:
    """(marker, segment start, segment end) for every marker segment before the scan data,
    and the offset where the rest of the file (SOS onwards) begins. With ``partial``, a
    file cut short (or damaged) after its first segments gives those it has whole, where
    the metadata is, rather than none."""
    if data[:2] != b"\xff\xd8":
        raise MetadataError("not a JPEG file")
    pos, n = 2, len(data)
    segments: list[tuple[int, int, int]] = []

    def cut(reason: str) -> tuple[list[tuple[int, int, int]], int]:
        if partial:
            return segments, n
        raise MetadataError(reason)

    while pos < n:
        if data[pos] != 0xFF:
            return cut("bad JPEG marker")
        if len(segments) > MAX_PARTS:
            raise TooManyParts("too many JPEG segments")
        fill_end = _FILL.match(data, pos).end()  # type: ignore[union-attr]  # data[pos] is 0xFF
        if fill_end - pos > MAX_PARTS:  # a real file has a few fill bytes, if any
            raise TooManyParts("too many JPEG fill bytes")
        pos = fill_end
        if pos >= n:
            break
        marker = data[pos]
        start = pos - 1
        pos += 1
        if marker == 0xDA or marker == 0xD9:  # SOS or EOI: the rest is copied as is
            return segments, start
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            segments.append((marker, start, pos))
            continue
        if pos + 2 > n:
            return cut("truncated JPEG segment")
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2 or pos + length > n:
            return cut("JPEG segment overruns the file")
        pos += length
        segments.append((marker, start, pos))
    return cut("JPEG has no scan data")


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    if len(payload) > _JPEG_SEGMENT_MAX:
        raise MetadataError("JPEG segment too large")
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def _embed_jpeg(
    data: bytes, record_json: str, parameters: str, prompt: str, graphs: Mapping[str, str] | None = None
) -> bytes:
    """``graphs`` (ComfyUI's) go into the EXIF segment as far as it holds them: both, else
    the editor's graph alone (what ComfyUI loads), else the API graph alone, else neither."""
    segments, rest = _jpeg_segments(data)
    tries: list[dict[str, str]] = [dict(graphs or {})]
    tries += [{key: graphs[key]} for key in ("workflow", "prompt") if graphs and key in graphs and len(graphs) > 1]
    tries.append({})
    for kept in tries:
        tiff = _tiff_with_user_comment(_user_comment(parameters), prompt, kept)
        if len(_EXIF_HEADER) + len(tiff) <= _JPEG_SEGMENT_MAX:
            break
    exif = _jpeg_segment(0xE1, _EXIF_HEADER + tiff)
    xmp = _jpeg_segment(0xE1, _XMP_HEADER + _xmp_packet(record_json, parameters, prompt))
    out = bytearray(b"\xff\xd8")
    inserted = False
    for marker, start, end in segments:
        body = data[start + 4 : end]
        if marker == 0xE1 and (body.startswith(_EXIF_HEADER) or body.startswith(_XMP_HEADER)):
            continue  # replaced
        if not inserted and marker != 0xE0:  # after the JFIF APP0, which must come first
            out += exif + xmp
            inserted = True
        out += data[start:end]
    if not inserted:
        out += exif + xmp
    out += data[rest:]
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# WEBP


def _riff_chunks(data: bytes) -> list[tuple[bytes, int, int, int]]:
    """(fourcc, chunk start, data start, data end) of every top-level chunk."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise MetadataError("not a WEBP file")
    (riff_size,) = struct.unpack_from("<I", data, 4)
    n = min(len(data), riff_size + 8)
    pos = 12
    chunks = []
    while pos + 8 <= n:
        fourcc = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        start, end = pos + 8, pos + 8 + size
        if end > n:
            raise MetadataError("WEBP chunk overruns the file")
        chunks.append((fourcc, pos, start, end))
        if len(chunks) > MAX_PARTS:
            raise TooManyParts("too many WEBP chunks")
        pos = end + (size & 1)
    if not chunks:
        raise MetadataError("WEBP file has no chunks")
    return chunks


def _riff_chunk(fourcc: bytes, body: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) & 1 else b"")


def _webp_canvas(fourcc: bytes, body: bytes) -> tuple[int, int, bool]:
    if fourcc == b"VP8L":
        if len(body) < 5 or body[0] != 0x2F:
            raise MetadataError("bad VP8L header")
        (bits,) = struct.unpack_from("<I", body, 1)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)
    if fourcc == b"VP8 ":
        if len(body) < 10 or body[3:6] != b"\x9d\x01\x2a":
            raise MetadataError("bad VP8 header")
        width, height = struct.unpack_from("<HH", body, 6)
        return width & 0x3FFF, height & 0x3FFF, False
    raise MetadataError("unknown WEBP image chunk")


def _embed_webp(
    data: bytes, record_json: str, parameters: str, prompt: str, graphs: Mapping[str, str] | None = None
) -> bytes:
    chunks = _riff_chunks(data)
    body = bytearray()
    first, _, fstart, fend = chunks[0]
    if first == b"VP8X":
        if fend - fstart < 10:
            raise MetadataError("bad VP8X chunk")
        header = bytearray(data[fstart:fend])
        header[0] |= 0x08 | 0x04  # EXIF and XMP present
        body += _riff_chunk(b"VP8X", bytes(header))
        rest = chunks[1:]
    else:
        width, height, alpha = _webp_canvas(first, data[fstart:fend])
        flags = 0x08 | 0x04 | (0x10 if alpha else 0)
        vp8x = bytes((flags, 0, 0, 0)) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        body += _riff_chunk(b"VP8X", vp8x)
        rest = chunks
    for fourcc, pos, start, end in rest:
        if fourcc in (b"EXIF", b"XMP "):
            continue  # replaced
        body += data[pos:end] + (b"\x00" if (end - start) & 1 else b"")
    body += _riff_chunk(b"EXIF", _tiff_with_user_comment(_user_comment(parameters), prompt, graphs))
    body += _riff_chunk(b"XMP ", _xmp_packet(record_json, parameters, prompt))
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + bytes(body)


# A PNG text keyword: 1 to 79 Latin-1 characters, no NUL (the specification's rule).
_PNG_KEYWORD = re.compile(r"[\x20-\x7e\xa1-\xff]{1,79}")


def _about_the_file(keyword: str) -> bool:
    """Whether a PNG text of ``keyword`` describes the file rather than how the picture was
    made: XMP and the raw EXIF, XMP and IPTC profiles ImageMagick writes. An export turns the
    picture as their orientation says and writes its own; carried over, they would turn it
    a second time."""
    return keyword == "XML:com.adobe.xmp" or keyword.lower().startswith("raw profile type")


# Another tool's texts are carried up to this size each: a ComfyUI workflow with its notes
# and groups runs to megabytes, well past what a reader parses (MAX_JSON).
MAX_CARRIED_TEXT = 32 * 1024 * 1024
# And up to this much in all (characters, as Pillow counts them): the copy stays one that
# Pillow, and tools built on it, will open (they refuse a PNG whose texts pass 64 MB),
# and a picture of a few kilobytes whose compressed texts inflate to a hundred megabytes
# is not written out as one of that size.
MAX_CARRIED_TOTAL = 48 * 1024 * 1024


def tool_texts(data: bytes, max_text: int = MAX_CARRIED_TEXT) -> dict[str, str]:
    """The texts another tool wrote into an image file (``data``), by keyword, for an
    export to carry: a PNG's text chunks (A1111's ``parameters``, ComfyUI's ``prompt``
    and ``workflow``, InvokeAI's ``invokeai_metadata``, NovelAI's ``Software``…), or the
    A1111 ``parameters`` line a JPEG or WEBP keeps in its EXIF UserComment, and ComfyUI's
    ``workflow`` and ``prompt`` a WEBP keeps in its EXIF Make and Model (``workflow:{…}``,
    ``prompt:{…}``). Nothing of this app's own (its record, the line it makes from it,
    its name): an export writes them anew. A file this app exported from another tool's
    keeps that tool's texts, so they go along again. Nothing for a file that cannot be
    read."""
    try:
        found = _scan(data, max_text)
    except Exception:
        return {}
    if found is None:
        return {}
    texts = {k: v for k, v in found.texts.items() if k != JSON_KEY and not _about_the_file(k)}
    if texts.get("Software", "").startswith(f"{APP} "):
        del texts["Software"]
    if PARAMETERS_KEY not in texts and found.user_comment and "Steps:" in found.user_comment:
        texts[PARAMETERS_KEY] = found.user_comment
    for key, field in zip(_COMFYUI_GRAPHS, (found.exif_make, found.exif_model), strict=True):
        graph = field[len(key) + 1 :] if field is not None and field.startswith(f"{key}:") else None
        if key not in texts and graph is not None and _is_graph(graph):
            texts[key] = graph
    if found.json_text is not None and PARAMETERS_KEY in texts:
        # The line this app made from its record goes: always for an image it made (its
        # record names no other tool), and for another tool's where the line is this app's.
        ours = _record_in(found)
        if ours is None or "source" not in ours.extras or _ours(texts[PARAMETERS_KEY], shareable(ours)):
            del texts[PARAMETERS_KEY]
    return _within_total(texts)


def _within_total(texts: dict[str, str]) -> dict[str, str]:
    """``texts`` within :data:`MAX_CARRIED_TOTAL`: those readers take parameters from
    first, then the smaller ones; what does not fit is left out (and logged)."""
    order = sorted(texts, key=lambda k: (k not in _PARAMETER_KEYWORDS, len(texts[k])))
    kept: dict[str, str] = {}
    total = 0
    for key in order:
        if total + len(texts[key]) > MAX_CARRIED_TOTAL:
            log.info("left out the %s text of a copy (%d characters): too large in all", key, len(texts[key]))
            continue
        kept[key] = texts[key]
        total += len(texts[key])
    return {k: v for k, v in texts.items() if k in kept}  # in the file's order


# ComfyUI's texts, in the order its WEBP saver writes them into EXIF Make and Model.
_COMFYUI_GRAPHS = ("workflow", "prompt")


def _is_graph(text: str | None) -> bool:
    """Whether ``text`` may be one of ComfyUI's graphs: a JSON object (Easy Diffusion's
    ``prompt`` text is the prompt itself)."""
    return text is not None and text.lstrip().startswith("{")


def _ours(line: str, record: GenerationRecord) -> bool:
    """Whether the parameters ``line`` is the one this app makes from ``record``, now or
    as earlier versions made it (``Steps: n/a`` for another tool's image too, or its own
    settings with ``Model: Krea 2 Medium`` where its model was not known)."""
    return line in (
        to_a1111(record),
        _a1111_text(record, tool_settings=False),
        _a1111_text(record, tool_settings=True, model_always=True),
    )


def _record_in(found: _Found) -> GenerationRecord | None:
    """This app's record in a scanned file, if it can be read."""
    if len(found.json_text or "") > MAX_JSON:
        return None  # no record of this app's is that large
    try:
        record = _load_json(found.json_text or "")
    except ValueError:
        return None
    return parse_record(record) if isinstance(record, dict) else None


def embed(data: bytes, fmt: str, record: GenerationRecord, *, carried: dict[str, str] | None = None) -> bytes:
    """``data`` (an encoded PNG, JPG or WEBP file) with ``record`` embedded.

    Pixels are never re-encoded: metadata is spliced into the container. References are
    written as :func:`shareable` gives them (no folder, no URL query). ``carried`` are
    another tool's texts (:func:`tool_texts`) that go along: into a PNG each as its own
    chunk; into a JPEG or WEBP the A1111 ``parameters`` line, written where ours would
    have been, and ComfyUI's ``workflow`` and ``prompt`` graphs as EXIF Make and Model,
    where ComfyUI's WEBP saver writes them (a JPEG's only as far as its 64 KB segment
    holds them). Raises :class:`MetadataError` if ``data`` is not a well-formed file
    of format ``fmt``.
    """
    fmt = spec.normalize_output_format(fmt) or fmt
    actual = sniff_format(data)
    if actual != fmt:
        raise MetadataError(f"the data is {actual or 'not an image'}, not {fmt}")
    record = shareable(record)
    carried = carried or {}
    if not record.says_how_made and PARAMETERS_KEY not in carried:
        # Nothing known of how the picture was made (a photo, say): no parameters made up
        # for it, only the texts it had.
        if fmt == "PNG":
            return _embed_png(data, None, None, carried)
        if fmt == "JPG":  # still a well-formed file, or MetadataError, as for any record
            _jpeg_segments(data)
        else:
            _riff_chunks(data)
        return data
    parameters = carried.get(PARAMETERS_KEY) or to_a1111(record)
    if fmt == "PNG":
        # Another tool's own texts speak for its image: a line made up beside them ("Steps:
        # n/a") would be what other readers take first. An image this app made (its record
        # names no other tool) has its line whatever other texts it carries.
        made_up = "source" in record.extras and bool(carried) and PARAMETERS_KEY not in carried
        return _embed_png(data, _record_json(record.to_json()), None if made_up else parameters, carried)
    # A JPEG segment holds 64 KB; a WEBP chunk has no such bound, only the readers' own.
    limit = _JPEG_SEGMENT_MAX - len(_XMP_HEADER) if fmt == "JPG" else _WEBP_METADATA_MAX
    record_json, parameters, prompt = _fit_record(record, parameters, limit)
    graphs = {key: carried[key] for key in _COMFYUI_GRAPHS if _is_graph(carried.get(key))}
    if fmt == "JPG":
        return _embed_jpeg(data, record_json, parameters, prompt, graphs)
    return _embed_webp(data, record_json, parameters, prompt, graphs)


# ---------------------------------------------------------------------------------------------
# Reading back


_MAX_TEXT_CHUNKS = 1024  # text chunks read per PNG, a repeated keyword counting each time
# The keywords a reader takes parameters from: read wherever they stand, past the cap
# above too (a PNG whose other tools' texts come first still gives its parameters).
_PARAMETER_KEYWORDS = frozenset(
    {JSON_KEY, PARAMETERS_KEY, "prompt", "workflow", "invokeai_metadata", "sd-metadata", "Dream", "Comment"}
    | {"Description", "Software", "fooocus_scheme", "XML:com.adobe.xmp"}
    | EASY_DIFFUSION_KEYWORDS
)
_MAX_INFLATED = 4  # the compressed texts of a PNG inflate to at most this many times max_text in all


class _Found(Embedded):
    """What the scanners found: the texts every reader sees, and this app's JSON record."""

    def __init__(self) -> None:
        super().__init__()
        self.json_text: str | None = None


def _decode_text(raw: bytes, max_text: int) -> str:
    """An iTXt chunk's text: UTF-8, a stray invalid byte shown as U+FFFD rather than the
    whole text (and the parameters in it) lost. Text with no UTF-8 character in it at all,
    only bytes that cannot be UTF-8 ("café" from a tool that wrote Latin-1 where the
    standard says UTF-8), is read as Latin-1, as a tEXt chunk's is."""
    if len(raw) > max_text:
        raise MetadataError("text too large")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    text = raw.decode("utf-8", "replace")
    if all(c < "\x80" or c == "\ufffd" for c in text):
        return raw.decode("latin-1")
    return text


def _latin1_text(raw: bytes) -> str:
    """A tEXt or zTXt chunk's text. The PNG standard says Latin-1, but several tools write
    UTF-8 there ("一只猫 café" would read as "ä¸\x80åª\x8fç\x8c« cafÃ©"): text that is
    valid UTF-8 and not plain ASCII is read as UTF-8, anything else as Latin-1."""
    if raw.isascii():
        return raw.decode("ascii")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class _Budget:
    """How many more bytes the compressed texts of one file may inflate to."""

    def __init__(self, left: int) -> None:
        self.left = left


def _inflate(raw: bytes, max_text: int, budget: _Budget) -> bytes:
    limit = min(max_text, budget.left)
    if limit <= 0:
        raise MetadataError("compressed texts too large")
    inflater = zlib.decompressobj()
    out = inflater.decompress(raw, limit + 1)
    budget.left -= len(out)
    if len(out) > limit or inflater.unconsumed_tail:
        raise MetadataError("compressed text too large")
    return out


def _png_text(ctype: bytes, body: bytes, max_text: int, budget: _Budget) -> tuple[str, str] | None:
    keyword, sep, rest = body.partition(b"\x00")
    if not sep or len(keyword) > 79:
        return None
    key = keyword.decode("latin-1")
    if ctype == b"tEXt":
        if len(rest) > max_text:
            return None
        return key, _latin1_text(rest)
    if ctype == b"zTXt":
        if not rest or rest[0] != 0:
            return None
        return key, _latin1_text(_inflate(rest[1:], max_text, budget))
    # iTXt: flag, method, language\0, translated keyword\0, text
    if len(rest) < 2:
        return None
    flag, method = rest[0], rest[1]
    parts = rest[2:].split(b"\x00", 2)
    if len(parts) != 3:
        return None
    text = parts[2]
    if flag:
        if method != 0:
            return None
        text = _inflate(text, max_text, budget)
    return key, _decode_text(text, max_text)


def _scan_png(data: bytes, found: _Found, max_text: int) -> None:
    _scan_png_chunks(data, found, max_text)
    xmp = found.texts.get("XML:com.adobe.xmp")
    if xmp is not None:
        # XMP kept by a conversion from a JPEG or WEBP: read once every chunk has been, so
        # that the PNG's own record and parameters come first wherever they stand.
        _scan_xmp(xmp.encode(), found, max_text)


def _scan_png_chunks(data: bytes, found: _Found, max_text: int) -> None:
    pos, n = len(PNG_SIGNATURE), len(data)
    chunks, parts, budget = 0, 0, _Budget(_MAX_INFLATED * max_text)
    kept = 0  # characters of the texts kept, within the same allowance as the inflated ones
    while pos + 12 <= n:
        (length,) = struct.unpack_from(">I", data, pos)
        ctype = data[pos + 4 : pos + 8]
        start, end = pos + 8, pos + 8 + length
        if end + 4 > n:
            return
        if ctype != b"IDAT":
            parts += 1
            if parts > MAX_PARTS:
                return
        if ctype == b"IHDR" and length >= 8:
            found.width, found.height = struct.unpack_from(">II", data, start)
        if ctype in (b"tEXt", b"zTXt", b"iTXt") and length <= max_text + 128:
            body = data[start:end]
            (crc,) = struct.unpack_from(">I", data, end)
            # The first readable text of a keyword is the one kept: a later one is not even inflated.
            keyword = body[:80].partition(b"\x00")[0].decode("latin-1")
            chunks += 1
            wanted = chunks <= _MAX_TEXT_CHUNKS or keyword in _PARAMETER_KEYWORDS
            if wanted and keyword not in found.texts and zlib.crc32(ctype + body) & 0xFFFFFFFF == crc:
                try:
                    item = _png_text(ctype, body, max_text, budget)
                except (MetadataError, UnicodeDecodeError, zlib.error):
                    item = None
                if item is not None and kept + len(item[1]) <= _MAX_INFLATED * max_text:
                    key, text = item
                    kept += len(text)
                    found.texts.setdefault(key, text)
                    if key == JSON_KEY and found.json_text is None:
                        found.json_text = text
        if ctype == b"eXIf" and length <= max_text * 2 + 1024:
            # EXIF in a PNG (PNG 1.5): a JPEG or WEBP turned into a PNG by Pillow, ImageMagick
            # or exiftool keeps its UserComment (A1111's line, ours) there.
            (crc,) = struct.unpack_from(">I", data, end)
            if zlib.crc32(ctype + data[start:end]) & 0xFFFFFFFF == crc:
                _scan_exif(data[start:end], found, max_text)
        if ctype == b"IEND":
            return
        pos = end + 4


def _decode_user_comment(raw: bytes, big_endian: bool) -> str | None:
    prefix, body = raw[:8], raw[8:]
    if prefix == _UC_UNICODE:
        if body[:2] in (b"\xfe\xff", b"\xff\xfe"):
            return body[: len(body) & ~1].decode("utf-16", "replace").rstrip("\x00")
        # A1111 writes UTF-16BE whatever the EXIF byte order; other tools follow the byte
        # order. ASCII-heavy text has its zero bytes at even offsets in big-endian.
        even_zeros = body[0::2].count(0)
        odd_zeros = body[1::2].count(0)
        be = even_zeros > odd_zeros or (even_zeros == odd_zeros and big_endian)
        body = body[: len(body) & ~1]
        return body.decode("utf-16-be" if be else "utf-16-le", "replace").rstrip("\x00")
    if prefix == _UC_ASCII:
        return _utf8_else_latin1(body).rstrip("\x00")  # tools write UTF-8 under "ASCII" too
    if prefix == _UC_UNDEFINED:
        return body.decode("utf-8", "replace").rstrip("\x00")
    if prefix == _UC_JIS:
        return body.decode("shift_jis", "replace").rstrip("\x00")
    if raw[:1] in (b"{", b"[") or (raw and b"\x00" not in raw[:8]):
        # No character code at all, the text straight in (Fooocus writes its JSON so).
        return _utf8_else_latin1(raw).rstrip("\x00")
    return None


def _utf8_else_latin1(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _tiff_fields(tiff: bytes, found: Embedded, max_text: int) -> None:
    """UserComment (Exif IFD), ImageDescription, Model and Software (IFD0) of an EXIF block."""
    if tiff.startswith(_EXIF_HEADER):
        tiff = tiff[len(_EXIF_HEADER) :]
    if len(tiff) < 8:
        return
    if tiff[:4] == b"MM\x00\x2a":
        endian = ">"
    elif tiff[:4] == b"II\x2a\x00":
        endian = "<"
    else:
        return
    n = len(tiff)

    def entries(offset: int) -> list[tuple[int, int, int, int, int]]:
        """(tag, type, count, value, entry offset) of an IFD's entries."""
        if offset < 8 or offset + 2 > n:
            return []
        (count,) = struct.unpack_from(endian + "H", tiff, offset)
        count = min(count, (n - offset - 2) // 12, 512)
        return [
            (*struct.unpack_from(endian + "HHII", tiff, offset + 2 + 12 * i), offset + 2 + 12 * i) for i in range(count)
        ]

    def raw_value(typ: int, count: int, value: int, at: int) -> bytes | None:
        if typ not in (1, 2, 7) or count > max_text * 2 + 8:  # BYTE, ASCII, UNDEFINED
            return None
        if count <= 4:
            return tiff[at + 8 : at + 8 + count]
        if value + count > n:
            return None
        return tiff[value : value + count]

    def ascii_text(raw: bytes | None) -> str | None:
        if raw is None:
            return None
        return raw.split(b"\x00", 1)[0].decode("utf-8", "replace")

    ifd0 = entries(struct.unpack_from(endian + "I", tiff, 4)[0])
    for tag, typ, count, value, at in ifd0:
        if tag == _TAG_IMAGE_DESCRIPTION and found.description is None:
            found.description = ascii_text(raw_value(typ, count, value, at))
        elif tag == _TAG_MODEL and found.exif_model is None:
            found.exif_model = ascii_text(raw_value(typ, count, value, at))
        elif tag == _TAG_MAKE and found.exif_make is None:
            found.exif_make = ascii_text(raw_value(typ, count, value, at))
        elif tag == _TAG_SOFTWARE and found.software is None:
            found.software = ascii_text(raw_value(typ, count, value, at))
        elif tag == _TAG_ORIENTATION and found.orientation is None and typ == 3 and count == 1:  # one SHORT
            found.orientation = value >> 16 if endian == ">" else value & 0xFFFF
    # The Exif IFD (a block has one: the first pointer to it), then IFD0; in each, its first
    # UserComment. Every pointer and every entry tried, a crafted block of a few MB named
    # the same megabytes hundreds of thousands of times over (minutes to read one file).
    exif_ifd = next((value for tag, _t, _c, value, _a in ifd0 if tag == _TAG_EXIF_IFD), None)
    places = ([entries(exif_ifd)] if exif_ifd is not None else []) + [ifd0]
    for items in places:
        comment = next((entry for entry in items if entry[0] == _TAG_USER_COMMENT), None)
        if comment is not None and found.user_comment is None:
            _tag, typ, count, value, at = comment
            raw = raw_value(typ, count, value, at)
            if raw is not None:
                found.user_comment = _decode_user_comment(raw, endian == ">")


_RE_XMP_RECORD = re.compile(r"<kd:record>([^<]*)</kd:record>")
_RE_XMP_PARAMS = re.compile(r"<kd:parameters>([^<]*)</kd:parameters>")


def _scan_xmp(raw: bytes, found: _Found, max_text: int) -> None:
    if len(raw) > max_text * 8 or found.xmp is not None:
        return
    text = raw.decode("utf-8", "replace")
    found.xmp = text
    # A text longer than a record may be is refused before its entities are resolved: a
    # packet of millions of "&amp;" would hold Python's lock for seconds.
    m = _RE_XMP_RECORD.search(text)
    if m and found.json_text is None and len(m.group(1)) <= max_text:
        found.json_text = html.unescape(m.group(1))
    m = _RE_XMP_PARAMS.search(text)
    if m and len(m.group(1)) <= max_text:
        found.texts.setdefault(PARAMETERS_KEY, html.unescape(m.group(1)))


def exif_orientation(raw: bytes) -> int | None:
    """The Orientation tag of an EXIF block (a PNG's eXIf, a WEBP's EXIF chunk), or None."""
    found = _Found()
    _scan_exif(raw, found, 1024)
    return found.orientation


def _scan_exif(raw: bytes, found: _Found, max_text: int) -> None:
    with contextlib.suppress(struct.error, UnicodeDecodeError):
        _tiff_fields(raw, found, max_text)


def _scan_jpeg(data: bytes, found: _Found, max_text: int) -> None:
    try:
        segments, _ = _jpeg_segments(data, partial=True)  # a file cut short keeps what it has
    except MetadataError:
        return
    for marker, start, end in segments:
        body = data[start + 4 : end]
        if marker == 0xE1:
            if body.startswith(_XMP_HEADER):
                _scan_xmp(body[len(_XMP_HEADER) :], found, max_text)
            elif body.startswith(_EXIF_HEADER):
                _scan_exif(body, found, max_text)
        elif marker == 0xFE and found.comment is None:  # COM
            found.comment = body.decode("utf-8", "replace")
        elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and len(body) >= 5:  # SOFn
            found.height, found.width = struct.unpack_from(">HH", body, 1)


def _scan_webp(data: bytes, found: _Found, max_text: int) -> None:
    try:
        chunks = _riff_chunks(data)
    except MetadataError:
        return
    for fourcc, _pos, start, end in chunks:
        if fourcc == b"XMP ":
            _scan_xmp(data[start:end], found, max_text)
        elif fourcc == b"EXIF":
            _scan_exif(data[start:end], found, max_text)
        elif fourcc == b"VP8X" and end - start >= 10:
            found.width = int.from_bytes(data[start + 4 : start + 7], "little") + 1
            found.height = int.from_bytes(data[start + 7 : start + 10], "little") + 1
        elif fourcc in (b"VP8 ", b"VP8L") and found.width is None:
            with contextlib.suppress(MetadataError, struct.error):
                found.width, found.height, _ = _webp_canvas(fourcc, data[start:end])


def _load_json(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError as exc:  # deeply nested arrays
        raise MetadataError("JSON nested too deeply") from exc


def _scan(data: bytes, max_text: int) -> _Found | None:
    found = _Found()
    fmt = sniff_format(data)
    if fmt == "PNG":
        _scan_png(data, found, max_text)
    elif fmt == "JPG":
        _scan_jpeg(data, found, max_text)
    elif fmt == "WEBP":
        _scan_webp(data, found, max_text)
    else:
        return None
    if found.orientation in _QUARTER_TURNS and found.width and found.height:
        # A phone's portrait photo is stored on its side: shown (and so its ratio) upright.
        found.width, found.height = found.height, found.width
    return found


_QUARTER_TURNS = (5, 6, 7, 8)  # EXIF orientations that show the stored picture turned a quarter


def _read_record(data: bytes, max_text: int) -> GenerationRecord | None:
    """The parsing behind :func:`read_record`; raises only ValueError or struct.error."""
    found = _scan(data, max_text)
    if found is None:
        return None
    if found.json_text is not None and len(found.json_text) <= max_text:
        try:
            record = _load_json(found.json_text)
        except ValueError:
            record = None
        if isinstance(record, dict):
            return parse_record(record)
    foreign = read_foreign(found)
    if foreign is None:
        return None
    return parse_record(foreign)


def ends_early(data: bytes) -> bool:
    """Whether ``data`` (PNG, JPEG or WEBP) stops before its end: a PNG without its last
    chunk, a JPEG without its end marker after the scan, a WEBP shorter than its header
    says. Such a file's metadata may still be whole (it comes first) while its pixels are
    not."""
    fmt = sniff_format(data)
    try:
        if fmt == "PNG":
            _png_chunks(data)
        elif fmt == "JPG":
            _, scan = _jpeg_segments(data)
            return data.rfind(b"\xff\xd9", scan) < 0
        elif fmt == "WEBP":
            return struct.unpack_from("<I", data, 4)[0] + 8 > len(data)
    except MetadataError:
        return True
    return False


def image_size(data: bytes) -> tuple[int, int] | None:
    """The pixel size of a PNG, JPEG or WEBP file from its header, without decoding it."""
    try:
        found = _scan(data, 1024)
    except (ValueError, struct.error):
        return None
    if found is None or not found.width or not found.height:
        return None
    return found.width, found.height


def image_size_of(path: Path) -> tuple[int, int] | None:
    """The pixel size of an image file from its header, or None; never raises. The first
    megabyte, else (a phone's JPEG keeps megabytes of XMP and depth maps before its frame)
    up to 16 MB."""
    for limit in (1 << 20, 16 << 20):
        try:
            data = read_regular_file(Path(path), limit)
        except OSError:
            return None
        size = image_size(data[:limit])
        if size is not None or len(data) <= limit:
            return size
    return None


def read_bytes(path: Path, max_bytes: int = 200 * 1024 * 1024) -> bytes:
    """A file's bytes for :func:`read_record`, never waiting on a FIFO or device. Raises
    OSError (including :class:`~krea_desktop.fsutil.NotARegularFile`) or :class:`MetadataError`
    when the file is larger than ``max_bytes``."""
    try:
        size = os.stat(path).st_size
    except OSError:
        size = 0  # opening it says why (or reads what it can)
    if size > max_bytes:  # refused without reading it (a video on a network drive, say)
        raise MetadataError("file too large")
    data = read_regular_file(Path(path), max_bytes)
    if len(data) > max_bytes:
        raise MetadataError("file too large")
    return data


def read_record(
    source: Path | bytes, *, max_bytes: int = 200 * 1024 * 1024, max_text: int = MAX_JSON
) -> GenerationRecord | None:
    """The generation record embedded in an image file, or None.

    Prefers this application's JSON record; otherwise reads what other tools write (A1111
    and its family, ComfyUI, InvokeAI, NovelAI, SwarmUI, Fooocus, Easy Diffusion: see
    :mod:`krea_desktop.library.readers`) into a partial record that names the tool in
    ``extras["source"]`` and keeps its settings in ``extras["foreign"]``. Reads PNG, JPEG
    and WEBP containers without decoding pixels; refuses files over ``max_bytes`` and texts
    over ``max_text``; returns None for anything missing, oversized or malformed and never raises.

    References come by file name, as :func:`shareable` writes them: a file is no word on
    which files of this computer to take (a downloaded image naming
    ``/home/me/Pictures/passport.png`` would have put it in the tray, to be uploaded).
    """
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            if len(data) > max_bytes:
                return None
        else:
            data = read_bytes(Path(source), max_bytes)  # never waits on a FIFO
        record = _read_record(data, max_text)
        return shareable(record) if record is not None and record.references else record
    except Exception:
        return None

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
import re
import struct
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

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

JSON_KEY = "krea-desktop"  # PNG text keyword and XMP element name for the JSON record
PARAMETERS_KEY = "parameters"  # the A1111 keyword

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EXIF_HEADER = b"Exif\x00\x00"
_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_XMP_NS = "https://krea.ai/ns/krea-desktop/1.0/"
_UC_UNICODE = b"UNICODE\x00"
_UC_ASCII = b"ASCII\x00\x00\x00"
_UC_UNDEFINED = b"\x00" * 8
_JPEG_SEGMENT_MAX = 65533  # payload bytes in one marker segment (length field includes itself)


_TAG_SOFTWARE = 0x0131
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

# A1111's own pattern, with the key length bounded so a long line cannot make it quadratic.
_RE_PARAM = re.compile(r'\s*(\w[\w \-/]{0,62}):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_RE_SIZE = re.compile(r"^\s*(\d{1,6})\s*[xX×]\s*(\d{1,6})\s*$")
_MAX_PARAM_LINE = 16 * 1024


def _a1111_value(value: Any) -> str:
    text = str(value)
    if "," in text or "\n" in text or '"' in text:
        return json.dumps(text, ensure_ascii=False)
    return text


def to_a1111(record: GenerationRecord) -> str:
    """The A1111 ``parameters`` text: the prompt, then one line of ``Key: value`` pairs.

    ``Steps: 1`` is there because many readers only recognise the parameter line when it
    starts with Steps; Seed, Size and Model are the keys other tools pick up.
    """
    pairs: list[tuple[str, Any]] = [("Steps", 1)]
    if record.seed is not None:
        pairs.append(("Seed", record.seed))
    if record.width and record.height:
        pairs.append(("Size", f"{record.width}x{record.height}"))
    pairs.append(("Model", record.model or spec.MODEL_ID))
    if record.creativity:
        pairs.append(("Creativity", record.creativity))
    if record.ratio:
        pairs.append(("Ratio", record.ratio))
    pairs.append(("References", len(record.references)))
    if record.app == APP:
        pairs.append(("Version", f"{APP} {record.version or __version__}"))
    line = ", ".join(f"{k}: {_a1111_value(v)}" for k, v in pairs)
    return f"{record.prompt}\n{line}"


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        try:
            unquoted = json.loads(value)
        except ValueError:
            return value
        if isinstance(unquoted, str):
            return unquoted
    return value


def _a1111_params(line: str) -> dict[str, str]:
    if len(line) > _MAX_PARAM_LINE:
        return {}
    return {k.strip(): _unquote(v) for k, v in _RE_PARAM.findall(line)}


def parse_a1111(text: str) -> dict[str, Any]:
    """Parse A1111 ``parameters`` text (ours or any other tool's) into a partial record.

    Gives ``prompt`` always, and whatever else it finds: ``negative_prompt``, ``seed``,
    ``width``/``height``, ``ratio`` (when the size is one of Krea 2 Medium's eight),
    ``creativity``, ``model``, ``steps``, and every raw pair under ``a1111``.
    """
    lines = text.strip().replace("\r\n", "\n").split("\n")
    last = lines[-1].strip() if lines else ""
    params = _a1111_params(last)
    if len(params) >= 3 or (len(lines) > 1 and params and re.match(r"\s*Steps\s*:", last)):
        lines = lines[:-1]
    else:
        params = {}
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    in_negative = False
    for raw in lines:
        line = raw.strip()
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:") :].strip()
        (negative_lines if in_negative else prompt_lines).append(line)
    record: dict[str, Any] = {"prompt": "\n".join(prompt_lines).strip()}
    if in_negative:
        record["negative_prompt"] = "\n".join(negative_lines).strip()
    seed = params.get("Seed")
    if seed is not None and re.fullmatch(r"-?\d{1,20}", seed.strip()):
        record["seed"] = int(seed)
    size = _RE_SIZE.match(params.get("Size", ""))
    if size:
        width, height = int(size.group(1)), int(size.group(2))
        record["width"], record["height"] = width, height
        ratio = spec.RATIOS_BY_SIZE.get((width, height))
        if ratio is not None:
            record["ratio"] = ratio.name
    creativity = params.get("Creativity", "").strip().lower()
    if creativity in spec.CREATIVITY_LEVELS:
        record["creativity"] = creativity
    if params.get("Model"):
        record["model"] = params["Model"]
    steps = params.get("Steps", "").strip()
    if steps.isdigit() and len(steps) < 10:
        record["steps"] = int(steps)
    refs = params.get("References", "").strip()
    if refs.isdigit() and len(refs) < 4:
        record["reference_count"] = int(refs)
    if params:
        record["a1111"] = params
    return record


# ---------------------------------------------------------------------------------------------
# Shared encoders


def _record_json(record: dict[str, Any]) -> str:
    # ASCII only: survives every container unchanged.
    return json.dumps(record, ensure_ascii=True, separators=(",", ":"), default=str)


def _user_comment(text: str) -> bytes:
    return _UC_UNICODE + text.encode("utf-16-be", "surrogatepass")


def _xmp_packet(record_json: str, parameters: str) -> bytes:
    esc = html.escape
    body = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        f'  <rdf:Description rdf:about="" xmlns:kd="{_XMP_NS}">\n'
        f"   <kd:record>{esc(record_json, quote=False)}</kd:record>\n"
        f"   <kd:parameters>{esc(parameters, quote=False)}</kd:parameters>\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )
    return body.encode("utf-8", "replace")


def _tiff_with_user_comment(comment: bytes) -> bytes:
    """A minimal big-endian TIFF/EXIF block: IFD0 (Software, ExifIFD pointer) and an Exif
    IFD (ExifVersion, UserComment). Big-endian matches what A1111 (piexif) writes."""
    software = f"{APP} {__version__}".encode("ascii") + b"\x00"
    ifd0_at = 8
    ifd0_len = 2 + 2 * 12 + 4
    software_at = ifd0_at + ifd0_len
    exif_at = software_at + len(software) + (len(software) & 1)
    exif_len = 2 + 2 * 12 + 4
    comment_at = exif_at + exif_len
    out = bytearray(b"MM\x00\x2a" + struct.pack(">I", ifd0_at))
    out += struct.pack(">H", 2)
    out += struct.pack(">HHII", _TAG_SOFTWARE, 2, len(software), software_at)
    out += struct.pack(">HHII", _TAG_EXIF_IFD, 4, 1, exif_at)
    out += struct.pack(">I", 0)
    out += software + (b"\x00" if len(software) & 1 else b"")
    out += struct.pack(">H", 2)
    out += struct.pack(">HHI", _TAG_EXIF_VERSION, 7, 4) + b"0232"
    out += struct.pack(">HHII", _TAG_USER_COMMENT, 7, len(comment), comment_at)
    out += struct.pack(">I", 0)
    out += comment
    return bytes(out)


def _fit_record(record: GenerationRecord, parameters: str, limit: int) -> tuple[str, str]:
    """Shrink what goes into a size-limited container (a JPEG segment holds 64 KB)."""
    record_json = _record_json(record.to_json())
    if len(_xmp_packet(record_json, parameters)) <= limit:
        return record_json, parameters
    slim = record.replace(references=tuple(ReferenceRecord(strength=r.strength) for r in record.references), extras={})
    record_json = _record_json(slim.to_json())
    parameters = parameters[: limit // 8]
    if len(_xmp_packet(record_json, parameters)) <= limit:
        return record_json, parameters
    raise MetadataError("the generation record is too large to embed")


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


def _embed_png(data: bytes, record_json: str, parameters: str) -> bytes:
    chunks = _png_chunks(data)
    ours = {PARAMETERS_KEY.encode(), JSON_KEY.encode()}
    new = _png_text_chunk(PARAMETERS_KEY, parameters) + _png_text_chunk(JSON_KEY, record_json, force_itxt=True)
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


def _jpeg_segments(data: bytes) -> tuple[list[tuple[int, int, int]], int]:
    """(marker, segment start, segment end) for every marker segment before the scan data,
    and the offset where the rest of the file (SOS onwards) begins."""
    if data[:2] != b"\xff\xd8":
        raise MetadataError("not a JPEG file")
    pos, n = 2, len(data)
    segments: list[tuple[int, int, int]] = []
    while pos < n:
        if data[pos] != 0xFF:
            raise MetadataError("bad JPEG marker")
        while pos < n and data[pos] == 0xFF:
            pos += 1  # fill bytes
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
            raise MetadataError("truncated JPEG segment")
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2 or pos + length > n:
            raise MetadataError("JPEG segment overruns the file")
        pos += length
        segments.append((marker, start, pos))
    raise MetadataError("JPEG has no scan data")


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    if len(payload) > _JPEG_SEGMENT_MAX:
        raise MetadataError("JPEG segment too large")
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def _embed_jpeg(data: bytes, record_json: str, parameters: str) -> bytes:
    segments, rest = _jpeg_segments(data)
    exif = _jpeg_segment(0xE1, _EXIF_HEADER + _tiff_with_user_comment(_user_comment(parameters)))
    xmp = _jpeg_segment(0xE1, _XMP_HEADER + _xmp_packet(record_json, parameters))
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


def _embed_webp(data: bytes, record_json: str, parameters: str) -> bytes:
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
    body += _riff_chunk(b"EXIF", _tiff_with_user_comment(_user_comment(parameters)))
    body += _riff_chunk(b"XMP ", _xmp_packet(record_json, parameters))
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + bytes(body)


def embed(data: bytes, fmt: str, record: GenerationRecord) -> bytes:
    """``data`` (an encoded PNG, JPG or WEBP file) with ``record`` embedded.

    Pixels are never re-encoded: metadata is spliced into the container. Raises
    :class:`MetadataError` if ``data`` is not a well-formed file of format ``fmt``.
    """
    fmt = spec.normalize_output_format(fmt) or fmt
    actual = sniff_format(data)
    if actual != fmt:
        raise MetadataError(f"the data is {actual or 'not an image'}, not {fmt}")
    parameters = to_a1111(record)
    if fmt == "PNG":
        return _embed_png(data, _record_json(record.to_json()), parameters)
    record_json, parameters = _fit_record(record, parameters, _JPEG_SEGMENT_MAX - len(_XMP_HEADER))
    if fmt == "JPG":
        return _embed_jpeg(data, record_json, parameters)
    return _embed_webp(data, record_json, parameters)


# ---------------------------------------------------------------------------------------------
# Reading back


class _Found:
    def __init__(self) -> None:
        self.json_text: str | None = None
        self.parameters: str | None = None


def _decode_text(raw: bytes, max_text: int) -> str:
    if len(raw) > max_text:
        raise MetadataError("text too large")
    return raw.decode("utf-8")


def _inflate(raw: bytes, max_text: int) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(raw, max_text + 1)
    if len(out) > max_text or inflater.unconsumed_tail:
        raise MetadataError("compressed text too large")
    return out


def _png_text(ctype: bytes, body: bytes, max_text: int) -> tuple[str, str] | None:
    keyword, sep, rest = body.partition(b"\x00")
    if not sep:
        return None
    key = keyword.decode("latin-1")
    if key not in (JSON_KEY, PARAMETERS_KEY):
        return None
    if ctype == b"tEXt":
        if len(rest) > max_text:
            return None
        return key, rest.decode("latin-1")
    if ctype == b"zTXt":
        if not rest or rest[0] != 0:
            return None
        return key, _inflate(rest[1:], max_text).decode("latin-1")
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
        text = _inflate(text, max_text)
    return key, _decode_text(text, max_text)


def _scan_png(data: bytes, found: _Found, max_text: int) -> None:
    pos, n = len(PNG_SIGNATURE), len(data)
    while pos + 12 <= n:
        (length,) = struct.unpack_from(">I", data, pos)
        ctype = data[pos + 4 : pos + 8]
        start, end = pos + 8, pos + 8 + length
        if end + 4 > n:
            return
        if ctype in (b"tEXt", b"zTXt", b"iTXt") and length <= max_text + 64:
            body = data[start:end]
            (crc,) = struct.unpack_from(">I", data, end)
            if zlib.crc32(ctype + body) & 0xFFFFFFFF == crc:
                try:
                    item = _png_text(ctype, body, max_text)
                except (MetadataError, UnicodeDecodeError, zlib.error):
                    item = None
                if item is not None:
                    key, text = item
                    if key == JSON_KEY and found.json_text is None:
                        found.json_text = text
                    elif key == PARAMETERS_KEY and found.parameters is None:
                        found.parameters = text
        if ctype == b"IEND":
            return
        pos = end + 4


def _decode_user_comment(raw: bytes, big_endian: bool) -> str | None:
    prefix, body = raw[:8], raw[8:]
    if prefix == _UC_UNICODE:
        if body[:2] in (b"\xfe\xff", b"\xff\xfe"):
            return body.decode("utf-16")
        # A1111 writes UTF-16BE whatever the EXIF byte order; other tools follow the byte
        # order. ASCII-heavy text has its zero bytes at even offsets in big-endian.
        even_zeros = body[0::2].count(0)
        odd_zeros = body[1::2].count(0)
        be = even_zeros > odd_zeros or (even_zeros == odd_zeros and big_endian)
        body = body[: len(body) & ~1]
        return body.decode("utf-16-be" if be else "utf-16-le", "replace").rstrip("\x00")
    if prefix == _UC_ASCII:
        return body.decode("latin-1").rstrip("\x00")
    if prefix == _UC_UNDEFINED:
        return body.decode("utf-8", "replace").rstrip("\x00")
    return None


def _tiff_user_comment(tiff: bytes, max_text: int) -> str | None:
    if tiff.startswith(_EXIF_HEADER):
        tiff = tiff[len(_EXIF_HEADER) :]
    if len(tiff) < 8:
        return None
    if tiff[:4] == b"MM\x00\x2a":
        endian = ">"
    elif tiff[:4] == b"II\x2a\x00":
        endian = "<"
    else:
        return None
    n = len(tiff)

    def entries(offset: int) -> list[tuple[int, int, int, int]]:
        if offset < 8 or offset + 2 > n:
            return []
        (count,) = struct.unpack_from(endian + "H", tiff, offset)
        count = min(count, (n - offset - 2) // 12, 512)
        return [struct.unpack_from(endian + "HHII", tiff, offset + 2 + 12 * i) for i in range(count)]

    def comment(items: list[tuple[int, int, int, int]], base: int) -> str | None:
        for i, (tag, typ, count, value) in enumerate(items):
            if tag != _TAG_USER_COMMENT or typ not in (1, 2, 7):  # BYTE, ASCII, UNDEFINED
                continue
            if count > max_text * 2 + 8:
                return None
            if count <= 4:
                raw = tiff[base + 2 + 12 * i + 8 : base + 2 + 12 * i + 8 + count]
            else:
                if value + count > n:
                    return None
                raw = tiff[value : value + count]
            return _decode_user_comment(raw, endian == ">")
        return None

    (ifd0,) = struct.unpack_from(endian + "I", tiff, 4)
    ifd0_entries = entries(ifd0)
    for tag, _typ, _count, value in ifd0_entries:
        if tag == _TAG_EXIF_IFD:
            text = comment(entries(value), value)
            if text is not None:
                return text
    return comment(ifd0_entries, ifd0)


_RE_XMP_RECORD = re.compile(r"<kd:record>([^<]*)</kd:record>")
_RE_XMP_PARAMS = re.compile(r"<kd:parameters>([^<]*)</kd:parameters>")


def _scan_xmp(raw: bytes, found: _Found, max_text: int) -> None:
    if len(raw) > max_text * 8:
        return
    text = raw.decode("utf-8", "replace")
    if found.json_text is None:
        m = _RE_XMP_RECORD.search(text)
        if m:
            found.json_text = html.unescape(m.group(1))
    if found.parameters is None:
        m = _RE_XMP_PARAMS.search(text)
        if m:
            found.parameters = html.unescape(m.group(1))


def _scan_exif(raw: bytes, found: _Found, max_text: int) -> None:
    if found.parameters is None:
        with contextlib.suppress(struct.error, UnicodeDecodeError):
            found.parameters = _tiff_user_comment(raw, max_text)


def _scan_jpeg(data: bytes, found: _Found, max_text: int) -> None:
    try:
        segments, _ = _jpeg_segments(data)
    except MetadataError:
        return
    for marker, start, end in segments:
        if marker != 0xE1:
            continue
        body = data[start + 4 : end]
        if body.startswith(_XMP_HEADER):
            _scan_xmp(body[len(_XMP_HEADER) :], found, max_text)
        elif body.startswith(_EXIF_HEADER):
            _scan_exif(body, found, max_text)


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


def _load_json(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError as exc:  # deeply nested arrays
        raise MetadataError("JSON nested too deeply") from exc


def _read_record(data: bytes, max_text: int) -> GenerationRecord | None:
    """The parsing behind :func:`read_record`; raises only ValueError or struct.error."""
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
    if found.json_text is not None and len(found.json_text) <= max_text:
        try:
            record = _load_json(found.json_text)
        except ValueError:
            record = None
        if isinstance(record, dict):
            return parse_record(record)
    if found.parameters is not None and found.parameters.strip() and len(found.parameters) <= max_text:
        return parse_record(parse_a1111(found.parameters))
    return None


def read_record(
    source: Path | bytes, *, max_bytes: int = 200 * 1024 * 1024, max_text: int = 1024 * 1024
) -> GenerationRecord | None:
    """The generation record embedded in an image file, or None.

    Prefers this application's JSON record; otherwise parses A1111 ``parameters`` (PNG
    text chunks, EXIF UserComment, XMP) into a partial record. Reads PNG, JPEG and WEBP
    containers without decoding pixels; refuses files over ``max_bytes`` and texts over
    ``max_text``; returns None for anything missing, oversized or malformed and never raises.
    """
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            if len(data) > max_bytes:
                return None
        else:
            data = read_regular_file(Path(source), max_bytes)  # never waits on a FIFO
            if len(data) > max_bytes:
                return None
        return _read_record(data, max_text)
    except Exception:
        return None

"""read_record on hostile input: it returns a dict or None and never raises."""

from __future__ import annotations

import contextlib
import io
import json
import re
import struct
import zlib
from datetime import datetime, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from krea_desktop.api.record import GenerationRecord
from krea_desktop.api.results import GeneratedImage
from krea_desktop.library import metadata

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _encode(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 12), (10, 200, 30)).save(buf, fmt)
    return buf.getvalue()


PNG, JPEG, WEBP = _encode("PNG"), _encode("JPEG"), _encode("WEBP")
RECORD = metadata.record_for(
    GeneratedImage("t", "u", PNG, "PNG", 16, 12, 5, record=GenerationRecord(prompt="a test prompt", ratio="1:1")),
    datetime(2025, 1, 1, tzinfo=timezone.utc),
)
EMBEDDED = {fmt: metadata.embed(data, fmt, RECORD) for fmt, data in (("PNG", PNG), ("JPG", JPEG), ("WEBP", WEBP))}


def check(data: bytes) -> None:
    """The public function never raises; the parser behind it raises only ValueError/struct.error."""
    result = metadata.read_record(data, max_text=64 * 1024)
    assert result is None or isinstance(result, GenerationRecord)
    if result is not None:
        # What was read can be stored and written again: JSON, valid UTF-8 text.
        json.dumps(result.to_json(), ensure_ascii=False).encode("utf-8")
    with contextlib.suppress(ValueError, struct.error):
        metadata._read_record(data, 64 * 1024)


def png_chunk(ctype: bytes, body: bytes, good_crc: bool = True, length: int | None = None) -> bytes:
    crc = zlib.crc32(ctype + body) & 0xFFFFFFFF if good_crc else 0xDEADBEEF
    return struct.pack(">I", len(body) if length is None else length) + ctype + body + struct.pack(">I", crc)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
keywords = st.sampled_from([b"parameters", b"krea-desktop", b"Comment", b""]) | st.binary(max_size=12)
texts = (
    st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.integers(1, 5000).map(lambda n: b"[" * n + b"]" * (n % 7))
    | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass"))
)


@st.composite
def text_chunk(draw: Any) -> bytes:
    ctype = draw(st.sampled_from([b"tEXt", b"iTXt", b"zTXt"]) | st.binary(min_size=4, max_size=4))
    key = draw(keywords)
    text = draw(texts)
    if ctype == b"zTXt":
        body = key + b"\x00" + bytes([draw(st.integers(0, 2))]) + (zlib.compress(text) if draw(st.booleans()) else text)
    elif ctype == b"iTXt":
        flag = draw(st.integers(0, 2))
        payload = zlib.compress(text) if flag == 1 and draw(st.booleans()) else text
        header = bytes([flag, draw(st.integers(0, 1))]) + draw(st.binary(max_size=3)) + b"\x00\x00"
        body = key + b"\x00" + header + payload
    else:
        body = key + draw(st.sampled_from([b"\x00", b""])) + text
    length = draw(st.none() | st.integers(0, 2**32 - 1))
    return png_chunk(ctype, body, draw(st.booleans()), length)


@FUZZ
@given(st.lists(text_chunk(), max_size=5), st.booleans())
def test_png_text_chunks(chunks: list[bytes], after_idat: bool) -> None:
    cut = PNG.index(b"IEND") - 4 if after_idat else 33
    check(PNG[:cut] + b"".join(chunks) + PNG[cut:])


@st.composite
def tiff_blob(draw: Any) -> bytes:
    endian = draw(st.sampled_from([">", "<"]))
    head = (b"MM\x00\x2a" if endian == ">" else b"II\x2a\x00") + struct.pack(endian + "I", draw(st.integers(0, 64)))
    entries = draw(
        st.lists(
            st.tuples(
                st.sampled_from([0x8769, 0x9286, 0x0131]) | st.integers(0, 0xFFFF),
                st.integers(0, 12),
                st.integers(0, 2**32 - 1),
                st.integers(0, 2**32 - 1),
            ),
            max_size=6,
        )
    )
    ifd = struct.pack(endian + "H", draw(st.integers(0, 0xFFFF)) if draw(st.booleans()) else len(entries))
    ifd += b"".join(struct.pack(endian + "HHII", *e) for e in entries)
    tail = draw(st.binary(max_size=200) | st.sampled_from([b"UNICODE\x00", b"ASCII\x00\x00\x00", b"\x00" * 8]))
    return draw(st.sampled_from([b"Exif\x00\x00", b""])) + head + ifd + tail


xmp_blob = st.builds(
    lambda a, b, c: metadata._XMP_HEADER + a + b"<kd:record>" + b + b"</kd:record><kd:parameters>" + c,
    st.binary(max_size=30),
    texts,
    st.binary(max_size=60),
)


def jpeg_segment(payload: bytes, length: int | None) -> bytes:
    return b"\xff\xe1" + struct.pack(">H", (len(payload) + 2 if length is None else length) & 0xFFFF) + payload


@FUZZ
@given(
    st.lists(
        st.tuples(tiff_blob() | xmp_blob | st.binary(max_size=100), st.none() | st.integers(0, 0xFFFF)), max_size=4
    )
)
def test_jpeg_exif_and_xmp(segments: list[tuple[bytes, int | None]]) -> None:
    check(JPEG[:2] + b"".join(jpeg_segment(p, n) for p, n in segments) + JPEG[2:])


@FUZZ
@given(
    st.lists(st.tuples(st.sampled_from([b"EXIF", b"XMP ", b"VP8X"]), tiff_blob() | xmp_blob), max_size=3),
    st.integers(0, 2**32 - 1) | st.none(),
)
def test_webp_exif_and_xmp(chunks: list[tuple[bytes, bytes]], riff_size: int | None) -> None:
    body = WEBP[12:] + b"".join(metadata._riff_chunk(f, b) for f, b in chunks)
    size = len(body) + 4 if riff_size is None else riff_size
    check(b"RIFF" + struct.pack("<I", size) + b"WEBP" + body)


@FUZZ
@given(texts)
def test_json_chunk(text: bytes) -> None:
    body = b"krea-desktop\x00\x00\x00\x00\x00" + text
    check(PNG[:33] + png_chunk(b"iTXt", body) + PNG[33:])


@FUZZ
@given(st.sampled_from(sorted(EMBEDDED)), st.data())
def test_mutated_files(fmt: str, data: st.DataObject) -> None:
    blob = bytearray(EMBEDDED[fmt])
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(blob) - 1))
        op = data.draw(st.integers(0, 2))
        if op == 0:
            blob[i] = data.draw(st.integers(0, 255))
        elif op == 1:
            del blob[i : i + data.draw(st.integers(1, 64))]
        else:
            blob[i:i] = data.draw(st.binary(min_size=1, max_size=16))
        if not blob:
            break
    check(bytes(blob))


@FUZZ
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(blob: bytes) -> None:
    for prefix in (b"", metadata.PNG_SIGNATURE, b"\xff\xd8\xff", b"RIFF\x00\x00\x00\x00WEBP"):
        check(prefix + blob)


@FUZZ
@given(st.text(max_size=400))
def test_parse_a1111_total(text: str) -> None:
    result = metadata.parse_a1111(text)
    assert isinstance(result["prompt"], str)
    json.dumps(result)


def test_deeply_nested_json_is_refused() -> None:
    body = b"krea-desktop\x00\x00\x00\x00\x00" + b"[" * 200_000 + b"]" * 200_000
    assert metadata._read_record(PNG[:33] + png_chunk(b"iTXt", body) + PNG[33:], 1024 * 1024) is None


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", " ", "\t", ":", ",", '"', "\\", "Seed", ": ", "x y", "é"]), max_size=40))
def test_the_parameters_are_the_pairs_a1111s_pattern_finds(pieces: list[str]) -> None:
    """The bounded search finds exactly what A1111's ``findall`` does."""
    from krea_desktop.library.readers import a1111

    line = "".join(pieces)
    expected = {k.strip(): a1111._unquote(v) for k, v in A1111_PATTERN.findall(line)}
    assert a1111._params(line) == expected


# A1111's pattern as it writes it (the key bounded to 63 characters, as the reader does).
A1111_PATTERN = re.compile(r'\s*(\w[\w \-/]{0,62}):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')

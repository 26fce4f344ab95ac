"""Embedding generation records into PNG/JPEG/WEBP and reading them back."""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from datetime import datetime, timezone
from typing import Any

import pytest
from PIL import Image

from krea_desktop.api import spec
from krea_desktop.api.record import GenerationRecord, ReferenceRecord
from krea_desktop.api.request import GenerationRequest
from krea_desktop.api.results import GeneratedImage
from krea_desktop.library import metadata
from krea_desktop.library.metadata import embed, parse_a1111, read_record, record_for, to_a1111

WHEN = datetime(2025, 3, 4, 5, 6, 7, 891000, tzinfo=timezone.utc)


def encode(fmt: str, size: tuple[int, int] = (64, 48), mode: str = "RGB", **kw: Any) -> bytes:
    im = Image.new(mode, size)
    im.putdata([((x * 7) % 256, (x * 13) % 256, (x * 3) % 256, 255)[: len(mode)] for x in range(size[0] * size[1])])
    buf = io.BytesIO()
    im.save(buf, spec.PIL_FORMATS[fmt], **kw)
    return buf.getvalue()


def make_image(fmt: str = "PNG", prompt: str = "a lighthouse at dusk, oil paint", **kw: Any) -> GeneratedImage:
    size = kw.pop("size", (64, 48))
    data = kw.pop("data", None) or encode(fmt, size)
    req = GenerationRequest(prompt=prompt, ratio="16:9", seed=7, creativity="high", output_format=fmt)
    refs = kw.pop("references", None) or (
        ReferenceRecord("0b7e3c1a-1111-4222-8333-944455556666", 0.7, "/pics/ref.png"),
        ReferenceRecord("https://example.com/a.png", -1.25),
    )
    record = req.describe().replace(references=tuple(refs))
    return GeneratedImage(
        task_uuid=req.task_uuid,
        image_uuid=kw.pop("image_uuid", "5d5a2c0e-4b1f-4c56-9a0e-1f2e3d4c5b6a"),
        data=data,
        format=fmt,
        width=size[0],
        height=size[1],
        seed=kw.pop("seed", 123456789),
        cost=0.0042,
        nsfw=False,
        record=record,
        **kw,
    )


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """A plain PNG chunk walker, independent of the code under test (checks every CRC)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, out = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(ctype + body) & 0xFFFFFFFF == crc
        out.append((ctype, body))
        pos += 12 + length
    return out


# -- records -------------------------------------------------------------------------------------


def test_record_has_every_field() -> None:
    rec = record_for(make_image(), WHEN).to_json()
    for key in (
        "prompt",
        "ratio",
        "width",
        "height",
        "seed",
        "creativity",
        "output_format",
        "output_quality",
        "number_results",
        "references",
        "model",
        "task_uuid",
        "image_uuid",
        "cost",
        "nsfw",
        "created_at",
        "app",
        "version",
    ):
        assert key in rec, key
    assert rec["created_at"] == "2025-03-04T05:06:07.891Z"
    assert rec["app"] == "krea-desktop"
    assert rec["seed"] == 123456789  # the image's seed wins over the requested one
    assert rec["model"] == spec.MODEL_ID
    assert rec["references"][0] == {
        "image": "0b7e3c1a-1111-4222-8333-944455556666",
        "strength": 0.7,
        "source": "/pics/ref.png",
    }
    assert rec["references"][1] == {"image": "https://example.com/a.png", "strength": -1.25}


def test_record_shortens_inline_reference_data() -> None:
    img = make_image(references=[ReferenceRecord("data:image/png;base64," + "A" * 100_000, 1.0)])
    rec = record_for(img, WHEN)
    assert rec.references[0].image is not None and rec.references[0].image.startswith("sha256:")
    assert rec.references[0].strength == 1.0


def test_record_ratio_from_real_size() -> None:
    img = make_image(size=(1568, 672), data=b"x")
    assert record_for(img, WHEN).ratio == "2.35:1"


# -- A1111 text ----------------------------------------------------------------------------------


def test_to_a1111_shape() -> None:
    rec = record_for(make_image(size=(1376, 768), data=b"x"), WHEN)
    text = to_a1111(rec)
    prompt, last = text.rsplit("\n", 1)
    assert prompt == rec.prompt
    # Steps and Sampler say the model has none (readers need them); values with ":" are
    # quoted as A1111 quotes them.
    assert last.startswith("Steps: n/a, Sampler: n/a, Seed: 123456789, Size: 1376x768, Model: Krea 2 Medium, ")
    assert "Creativity: high" in last and 'Ratio: "16:9"' in last and "References: 2" in last


def test_a1111_round_trip_of_ours() -> None:
    rec = record_for(make_image(prompt="line one\nline two, with commas", size=(768, 1376), data=b"x"), WHEN)
    back = parse_a1111(to_a1111(rec))
    assert back["prompt"] == "line one\nline two, with commas"
    assert back["seed"] == 123456789
    assert (back["width"], back["height"], back["ratio"]) == (768, 1376, "9:16")
    assert back["creativity"] == "high"
    assert back["model"] == spec.MODEL_ID
    assert back["reference_count"] == 2


FOREIGN = (
    "masterpiece, best quality, (a cat:1.2) sitting on a windowsill,\n"
    "soft light\n"
    "Negative prompt: lowres, bad anatomy, worst quality\n"
    "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 3141592653, Size: 1024x1024, "
    'Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Lora hashes: "detail: abc123, style: def456", '
    "Version: v1.9.4"
)


def test_parse_foreign_a1111() -> None:
    rec = parse_a1111(FOREIGN)
    assert rec["prompt"] == "masterpiece, best quality, (a cat:1.2) sitting on a windowsill,\nsoft light"
    assert rec["negative_prompt"] == "lowres, bad anatomy, worst quality"
    assert rec["seed"] == 3141592653
    assert (rec["width"], rec["height"], rec["ratio"]) == (1024, 1024, "1:1")
    assert rec["model"] == "sd_xl_base_1.0"
    assert rec["source"] == "A1111"
    assert rec["foreign"]["steps"] == 28
    assert rec["foreign"]["sampler"] == "DPM++ 2M Karras"
    assert rec["foreign"]["cfg"] == 7
    assert rec["foreign"]["settings"]["Lora hashes"] == "detail: abc123, style: def456"
    assert "creativity" not in rec


def test_parse_foreign_size_not_a_krea_ratio() -> None:
    rec = parse_a1111("a dog\nSteps: 20, Sampler: Euler a, Seed: 1, Size: 512x768")
    assert (rec["width"], rec["height"]) == (512, 768)
    assert "ratio" not in rec


def test_parse_prompt_only_and_empty_negative() -> None:
    assert parse_a1111("just a prompt, nothing else") == {"prompt": "just a prompt, nothing else"}
    rec = parse_a1111("Negative prompt: blurry\nSteps: 20, Seed: 5, Size: 1184x896")
    assert rec["prompt"] == "" and rec["negative_prompt"] == "blurry"
    assert rec["ratio"] == "4:3"


def test_parse_a1111_long_adversarial_line_is_fast() -> None:
    import time

    start = time.perf_counter()
    parse_a1111("p\n" + "a" * 200_000 + ":")
    parse_a1111("p\n" + "a b " * 4000 + "Steps: 1")
    # A run of blanks after the last pair: each place in it was read to its end (4 s at 16 KB).
    parse_a1111("p\nSteps: 1, Seed: 5, Size: 2x2, " + "\t" * 16_000 + "z")
    parse_a1111("p\nSteps: 1, Seed: 5, Size: 2x2, " + "\t" * 2_000_000 + "z")
    parse_a1111("p\nSteps: 1, " + 'a: "' + '\\"' * 1_000_000)  # a quote never closed
    assert time.perf_counter() - start < 10  # read place by place, the two million blanks take hours


def test_a_parameters_line_longer_than_the_parsed_length_still_gives_its_settings() -> None:
    """Extensions append kilobytes of hashes after the settings: the settings are read,
    and the line stays out of the prompts."""
    hashes = ", ".join(f'Lora hash {i}: "{i:08x}"' for i in range(1000))
    text = f"a cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, Seed: 42, Size: 512x768, {hashes}"
    assert len(text) > 20_000
    rec = parse_a1111(text)
    assert (rec["prompt"], rec["negative_prompt"]) == ("a cat", "dog")
    assert (rec["seed"], rec["width"], rec["height"]) == (42, 512, 768)
    assert rec["foreign"]["steps"] == 20 and rec["foreign"]["settings"]["Lora hash 0"] == "00000000"


@pytest.mark.parametrize("inside", ["x", '\\"'], ids=["characters", "escaped quotes"])
def test_a_quote_that_never_closes_costs_no_memory_to_speak_of(inside: str) -> None:
    """Read as A1111's pattern reads it, without keeping a place to go back to for every
    character (650 MB from a 4 KB compressed PNG of 4 MB of "x"; 330 MB of 2 million "\\"")."""
    import tracemalloc

    text = 'a cat\nSteps: 20, Seed: 1, Size: 8x8, ADetailer prompt: "' + inside * (4_000_000 // len(inside))
    tracemalloc.start()
    try:
        rec = parse_a1111(text)
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rec["seed"] == 1 and rec["foreign"]["settings"]["ADetailer prompt"].startswith('"' + inside * 3)
    assert peak < 40_000_000  # the settings' own strings: a few copies of the 4 MB value at most


def test_a_quoted_value_across_the_parsed_length_is_read_whole_and_nothing_in_it_as_settings() -> None:
    inner = "1girl, solo, " * 1200 + "Seed: 7, Size: 64x64, Model: evil, " + "x, " * 4000
    line = f"Steps: 20, Seed: 42, Size: 512x768, Model: sd15, ADetailer prompt: {json.dumps(inner)}, Version: v1"
    assert line.index("Seed: 7") < 16 * 1024 < len(line)
    rec = parse_a1111("a cat\n" + line)
    assert (rec["seed"], rec["width"], rec["height"], rec["model"]) == (42, 512, 768, "sd15")
    assert rec["foreign"]["settings"]["ADetailer prompt"] == inner


def test_a_quoted_value_of_any_length_is_read_whole_as_a1111_reads_it() -> None:
    inner = "style, Seed: 999, Size: 64x64, " + "word " * 20_000  # 100 KB
    line = f"Steps: 20, Seed: 1, Size: 1024x1024, Wildcard prompt: {json.dumps(inner)}, Version: v1"
    rec = parse_a1111("a cat\n" + line)
    assert (rec["seed"], rec["width"], rec["height"]) == (1, 1024, 1024)
    assert rec["foreign"]["settings"]["Wildcard prompt"] == inner


@pytest.mark.parametrize("length", [1, 400])
def test_a_weighted_prompt_is_a_prompt_not_settings(length: int) -> None:
    prompt = "(masterpiece:1.2), (best quality:1.1), (a cat:1.3), " + "red fox, " * length
    assert parse_a1111(prompt) == {"prompt": prompt.strip()}


# -- embedding ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mode", "kw"),
    [
        ("PNG", "RGB", {}),
        ("PNG", "RGBA", {}),
        ("JPG", "RGB", {"quality": 90}),
        ("WEBP", "RGB", {"quality": 80}),
        ("WEBP", "RGBA", {"lossless": True}),
        ("WEBP", "RGBA", {"quality": 80}),
    ],
)
def test_round_trip(fmt: str, mode: str, kw: dict[str, Any]) -> None:
    data = encode(fmt, mode=mode, **kw)
    img = make_image(fmt, prompt='ünïcödé 猫 "quotes", commas\nand lines', data=data)
    rec = record_for(img, WHEN)
    out = embed(data, fmt, rec)
    assert read_record(out) == metadata.shareable(rec)
    with Image.open(io.BytesIO(data)) as a, Image.open(io.BytesIO(out)) as b:
        assert b.size == a.size and b.mode == a.mode
        assert a.tobytes() == b.tobytes()  # the pixels are untouched (no re-encoding)
    # Embedding again replaces rather than duplicates.
    again = embed(out, fmt, rec)
    assert len(again) == len(out)
    assert read_record(again) == metadata.shareable(rec)


def test_png_chunks_visible_to_pillow_and_plain_parser() -> None:
    data = encode("PNG")
    rec = record_for(make_image(data=data), WHEN)
    out = embed(data, "PNG", rec)
    chunks = png_chunks(out)
    types = [c for c, _ in chunks]
    assert types.index(b"tEXt") < types.index(b"IDAT")  # before the image data
    texts = {body.split(b"\x00", 1)[0]: (ctype, body) for ctype, body in chunks if ctype in (b"tEXt", b"iTXt")}
    assert texts[b"parameters"][0] == b"tEXt"
    assert texts[b"parameters"][1].split(b"\x00", 1)[1].decode("latin-1") == to_a1111(rec)
    assert texts[b"krea-desktop"][0] == b"iTXt"
    # Every original chunk is there, unchanged and in order.
    original = png_chunks(data)
    assert [c for c in chunks if c[0] not in (b"tEXt", b"iTXt")] == original
    with Image.open(io.BytesIO(out)) as im:  # seen without loading the pixels
        assert im.info["parameters"] == to_a1111(rec)
        assert metadata.json.loads(im.info["krea-desktop"]) == metadata.shareable(rec).to_json()
        assert im.info["Software"].startswith("krea-desktop ")


def test_png_non_latin_parameters_use_itxt() -> None:
    data = encode("PNG")
    rec = record_for(make_image(data=data, prompt="猫 on a roof"), WHEN)
    out = embed(data, "PNG", rec)
    with Image.open(io.BytesIO(out)) as im:
        assert im.info["parameters"].startswith("猫 on a roof\n")


@pytest.mark.parametrize("fmt", ["JPG", "WEBP"])
def test_exif_user_comment_like_a1111(fmt: str) -> None:
    data = encode(fmt)
    rec = record_for(make_image(fmt, data=data, prompt="ünï 猫"), WHEN)
    out = embed(data, fmt, rec)
    with Image.open(io.BytesIO(out)) as im:
        comment = im.getexif().get_ifd(0x8769)[0x9286]
        assert comment.startswith(b"UNICODE\x00")
        assert comment[8:].decode("utf-16-be") == to_a1111(rec)
        xmp = im.info["xmp"]
        assert b"kd:record" in xmp


def test_jpeg_scan_data_copied_byte_for_byte() -> None:
    data = encode("JPG")
    out = embed(data, "JPG", record_for(make_image("JPG", data=data), WHEN))
    sos = data.index(b"\xff\xda")
    assert out.endswith(data[sos:])
    assert out[:4] == data[:4]  # SOI, then the JFIF APP0 stays first


def test_jpeg_record_too_large_is_slimmed() -> None:
    data = encode("JPG")
    img = make_image("JPG", data=data, references=[ReferenceRecord("x" * 500, 1.0, "y" * 500)] * 200)
    rec = record_for(img, WHEN)
    out = embed(data, "JPG", rec)
    back = read_record(out)
    assert back is not None and back.prompt == rec.prompt and len(back.references) == 200


def test_embed_rejects_wrong_format() -> None:
    with pytest.raises(metadata.MetadataError):
        embed(encode("PNG"), "JPG", GenerationRecord())
    with pytest.raises(metadata.MetadataError):
        embed(b"not an image", "PNG", GenerationRecord())
    with pytest.raises(metadata.MetadataError):
        embed(encode("PNG")[:40], "PNG", GenerationRecord())


# -- reading foreign files -----------------------------------------------------------------------


def test_read_foreign_png_parameters() -> None:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", FOREIGN, zip=True)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG", pnginfo=info)
    rec = read_record(buf.getvalue())
    assert rec is not None and rec.seed == 3141592653 and rec.negative_prompt


def test_read_foreign_jpeg_user_comment_little_endian() -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + "a fox\nSteps: 20, Seed: 9, Size: 1024x1024".encode("utf-16-le")
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "JPEG", exif=exif)
    rec = read_record(buf.getvalue())
    assert rec is not None and rec.prompt == "a fox" and rec.seed == 9 and rec.ratio == "1:1"


def test_read_from_path_and_limits(tmp_path: Any) -> None:
    data = encode("PNG")
    rec = record_for(make_image(data=data), WHEN)
    path = tmp_path / "x.png"
    path.write_bytes(embed(data, "PNG", rec))
    assert read_record(path) == metadata.shareable(rec)
    assert read_record(path, max_bytes=100) is None
    assert read_record(path, max_text=10) is None
    assert read_record(tmp_path / "missing.png") is None
    assert read_record(tmp_path) is None
    assert read_record(encode("PNG")) is None  # no metadata at all
    assert read_record(b"") is None


def test_read_ignores_chunk_with_bad_crc() -> None:
    data = encode("PNG")
    rec = record_for(make_image(data=data), WHEN)
    out = bytearray(embed(data, "PNG", rec))
    i = out.index(b"iTXtkrea-desktop")
    out[i + 40] ^= 0x01
    back = read_record(bytes(out))
    # The damaged JSON chunk is ignored; the A1111 text still gives the essentials.
    assert back is not None and back.seed == rec.seed and back.app is None


def itxt_chunk(keyword: bytes, text: bytes) -> bytes:
    body = keyword + b"\x00\x00\x00\x00\x00" + text
    return struct.pack(">I", len(body)) + b"iTXt" + body + struct.pack(">I", zlib.crc32(b"iTXt" + body) & 0xFFFFFFFF)


@pytest.mark.parametrize(
    "written, read",
    [
        ("café 一只猫".encode(), "café 一只猫"),  # UTF-8, as the standard says
        ("café crème".encode("latin-1"), "café crème"),  # Latin-1 where UTF-8 belongs: read as a tEXt's is
        ("café".encode() + b" \xff", "café \ufffd"),  # UTF-8 with one stray byte: the rest kept
    ],
    ids=["utf-8", "latin-1", "a stray byte"],
)
def test_an_itxt_chunks_parameters_are_read_whatever_the_tool_encoded_them_in(written: bytes, read: str) -> None:
    data = encode("PNG")
    parameters = itxt_chunk(b"parameters", written + b"\nSteps: 20, Seed: 9, Size: 64x48")
    back = read_record(data[:33] + parameters + data[33:])
    assert back is not None and back.prompt == read and back.seed == 9


def test_zip_bomb_text_chunk_is_refused() -> None:
    bomb = zlib.compress(b"{" + b" " * (20 * 1024 * 1024) + b"}", 9)
    body = b"krea-desktop\x00\x01\x00\x00\x00" + bomb
    chunk = struct.pack(">I", len(body)) + b"iTXt" + body + struct.pack(">I", zlib.crc32(b"iTXt" + body) & 0xFFFFFFFF)
    data = encode("PNG")
    evil = data[:33] + chunk + data[33:]
    assert read_record(evil) is None


def ztxt_chunk(keyword: bytes, text: bytes) -> bytes:
    body = keyword + b"\x00\x00" + zlib.compress(text, 9)
    return struct.pack(">I", len(body)) + b"zTXt" + body + struct.pack(">I", zlib.crc32(b"zTXt" + body) & 0xFFFFFFFF)


def test_many_compressed_text_chunks_inflate_little(monkeypatch: pytest.MonkeyPatch) -> None:
    inflated: list[int] = []
    real_inflate = metadata._inflate

    def counting(*args: Any) -> bytes:
        out = real_inflate(*args)
        inflated.append(len(out))
        return out

    monkeypatch.setattr(metadata, "_inflate", counting)
    data = encode("PNG")
    parameters = ztxt_chunk(b"parameters", b"a fox\nSteps: 20, Seed: 9, Size: 64x48")
    # One keyword over and over: its first text is kept, the others are not even inflated.
    repeated = ztxt_chunk(b"parameters", b"\x00" * 60_000) * 100
    rec = read_record(data[:33] + parameters + repeated + data[33:])
    assert rec is not None and rec.prompt == "a fox" and rec.seed == 9
    assert len(inflated) == 1
    # Many keywords: all their texts together inflate to a few times the text limit at most.
    inflated.clear()
    many = b"".join(ztxt_chunk(b"k%d" % i, b"\x00" * 4000) for i in range(60))
    rec = read_record(data[:33] + parameters + many + data[33:], max_text=4096)
    assert rec is not None and rec.prompt == "a fox" and rec.seed == 9
    assert sum(inflated) <= 4 * 4096


def _small(fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(buf, fmt, **kw)
    return buf.getvalue()


def _crawling(kind: str, parts: int) -> bytes:
    """A tiny image padded with ``parts`` empty chunks or segments (or fill bytes)."""
    jpeg, png, webp = _small("JPEG"), _small("PNG"), _small("WEBP", lossless=True)
    if kind == "jpeg comments":
        return jpeg[:2] + b"\xff\xfe\x00\x02" * parts + jpeg[2:]
    if kind == "jpeg fill":
        return jpeg[:2] + b"\xff" * parts + jpeg[2:]
    if kind == "webp chunks":
        body = webp[12:] + b"JUNK\0\0\0\0" * parts
        return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body
    empty = struct.pack(">I", 0) + b"prVt" + struct.pack(">I", zlib.crc32(b"prVt"))
    return png[:33] + empty * parts + png[33:]


KINDS = ["jpeg comments", "jpeg fill", "webp chunks", "png chunks"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_file_of_many_more_parts_than_any_real_image_is_known_as_such(kind: str) -> None:
    # A PNG may have a chunk more per KB of file besides (pixels split into IDAT chunks).
    extra = len(_crawling(kind, metadata.MAX_PARTS)) // 1024 if kind == "png chunks" else 0
    assert metadata.has_too_many_parts(_crawling(kind, metadata.MAX_PARTS + extra + 10))
    assert not metadata.has_too_many_parts(_crawling(kind, metadata.MAX_PARTS - 10))


def test_a_large_png_of_many_pixel_chunks_is_not_taken_for_a_crawling_one_but_empty_ones_are() -> None:
    png = _small("PNG")

    def idat(body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + b"IDAT" + body + struct.pack(">I", zlib.crc32(b"IDAT" + body))

    pixels = idat(bytes(1024)) * (metadata.MAX_PARTS + 5_000)  # 1 KB each: 56 MB, as encoders split them
    assert not metadata.has_too_many_parts(png[:33] + pixels + png[33:])
    padded = idat(b"") * (2 * metadata.MAX_PARTS)  # empty ones, 1.2 MB: no encoder writes those
    assert metadata.has_too_many_parts(png[:33] + padded + png[33:])


def test_a_file_names_its_references_by_file_name_alone_whatever_it_says() -> None:
    """This app embeds references by name; a file that names one by its full path (made to,
    from elsewhere) is read as naming the file only, so no file of this computer outside
    the kept copies is taken for a reference and uploaded."""
    record = GenerationRecord(
        prompt="a harmless landscape",
        references=(
            ReferenceRecord(source="/home/me/Pictures/passport-scan.png", strength=1.5),
            ReferenceRecord(source="file:///home/me/Pictures/id%20card.jpg", image="C:\\Users\\me\\secret.webp"),
            ReferenceRecord(source="https://user:pw@example.com/a.png?token=1", strength=-1.0),
        ),
    )
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    raw = metadata._embed_png(buf.getvalue(), metadata._record_json(record.to_json()), to_a1111(record))
    read = read_record(raw)
    assert read is not None and read.prompt == "a harmless landscape"
    assert [(r.source, r.image, r.strength) for r in read.references] == [
        ("passport-scan.png", None, 1.5),
        ("id card.jpg", "secret.webp", None),
        ("https://example.com/a.png", None, -1.0),
    ]
    # An address that is none (a port of 99999) costs its reference its host, not the
    # record its prompt.
    odd = GenerationRecord(
        prompt="a heron", references=(ReferenceRecord(source="https://cdn.example.com:99999/r.png?t=1"),)
    )
    raw = metadata._embed_png(buf.getvalue(), metadata._record_json(odd.to_json()), to_a1111(odd))
    read = read_record(raw)
    assert read is not None and read.prompt == "a heron" and read.references[0].source == "r.png"


def test_a_file_larger_than_the_limit_is_refused_without_being_read(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "huge.png"
    with path.open("wb") as f:  # sparse: 300 MB that take no room
        f.write(encode("PNG"))
        f.truncate(300 * 1024 * 1024)
    reads: list[int] = []
    real_read = os.read

    def counting_read(fd: int, n: int) -> bytes:
        chunk = real_read(fd, n)
        reads.append(len(chunk))
        return chunk

    monkeypatch.setattr(os, "read", counting_read)
    with pytest.raises(metadata.MetadataError, match="too large"):
        metadata.read_bytes(path)
    assert sum(reads) == 0
    assert metadata.read_bytes(path, max_bytes=400 * 1024 * 1024)[:8] == b"\x89PNG\r\n\x1a\n"

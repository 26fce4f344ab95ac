"""The app's files as other tools read them (sd-parsers, sd-prompt-reader, A1111's rules),
and what they never carry: the folders of references and the query of their URLs."""

from __future__ import annotations

import contextlib
import io
import json
import re
import struct
import zlib
from datetime import datetime, timezone
from pathlib import Path

import pytest
from PIL import Image

from krea_desktop.api import spec
from krea_desktop.api.record import GenerationRecord, ReferenceRecord
from krea_desktop.api.request import GenerationRequest
from krea_desktop.api.results import GeneratedImage
from krea_desktop.library import metadata
from krea_desktop.library.metadata import embed, read_record, record_for, to_a1111
from krea_desktop.library.recall import entry_for_file, reference_sources

WHEN = datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
FOLDER = "/home/artist/Private Projects/client-x"
TOKEN = "sig=SECRETTOKEN123"
PROMPT = 'a red fox in the snow, "golden hour": 35mm'


def encode(fmt: str, size: tuple[int, int] = (16, 12)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buf, spec.PIL_FORMATS[fmt])
    return buf.getvalue()


def our_record(fmt: str, prompt: str = PROMPT) -> GenerationRecord:
    req = GenerationRequest(prompt=prompt, ratio="1:1", seed=7, creativity="high", output_format=fmt)
    refs = (
        ReferenceRecord("0b7e3c1a-1111-4222-8333-944455556666", 0.7, f"{FOLDER}/ab12cd.png"),
        ReferenceRecord(
            f"https://cdn.example.com/pics/cat.png?{TOKEN}#frag{TOKEN}",
            -1.25,
            f"https://user:pw@cdn.example.com/pics/cat.png?{TOKEN}",
        ),
        ReferenceRecord("e1", 0.3, "C:\\Users\\artist\\Private Projects\\client-x\\win.png"),
    )
    image = GeneratedImage(
        task_uuid=req.task_uuid,
        image_uuid="5d5a2c0e-4b1f-4c56-9a0e-1f2e3d4c5b6a",
        data=b"",
        format=fmt,
        width=1024,
        height=1024,
        seed=123456789,
        cost=0.004,
        nsfw=False,
        record=req.describe().replace(references=refs),
    )
    return record_for(image, WHEN)


def write(tmp_path: Path, fmt: str, record: GenerationRecord) -> Path:
    path = tmp_path / f"out.{fmt.lower()}"
    path.write_bytes(embed(encode(fmt), fmt, record))
    return path


FORMATS = ["PNG", "JPG", "WEBP"]


# -- other tools read the app's files -------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_sd_parsers_reads_prompt_seed_size_and_model(tmp_path: Path, fmt: str) -> None:
    sd_parsers = pytest.importorskip("sd_parsers")
    info = sd_parsers.ParserManager().parse(str(write(tmp_path, fmt, our_record(fmt))))
    assert info is not None and info.generator.name == "AUTOMATIC1111"
    sampler = info.samplers[0]
    assert sampler.prompts[0].value == PROMPT
    assert sampler.parameters["seed"] == "123456789"
    assert sampler.model.name == "Krea 2 Medium"
    assert info.metadata["Size"] == "1024x1024"


@pytest.mark.parametrize("fmt", FORMATS)
def test_sd_prompt_reader_reads_prompt_seed_size_and_model(tmp_path: Path, fmt: str) -> None:
    reader = pytest.importorskip("sd_prompt_reader.image_data_reader")
    with contextlib.redirect_stdout(io.StringIO()):
        data = reader.ImageDataReader(str(write(tmp_path, fmt, our_record(fmt))))
    assert data.tool == "A1111 webUI"
    assert data.positive == PROMPT and data.negative == ""
    assert data.parameter["seed"] == "123456789"
    assert data.parameter["size"] == "1024x1024"
    assert data.parameter["model"] == "Krea 2 Medium"


def a1111_parse(text: str) -> dict[str, str]:
    """A1111's own reading of a parameters line (re_param and unquote of infotext_utils.py)."""
    re_param = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
    out = {}
    for k, v in re_param.findall(text.strip().split("\n")[-1]):
        out[k] = json.loads(v) if v[:1] == '"' and v[-1:] == '"' else v
    return out


def test_a1111_reads_the_line_as_written() -> None:
    rec = our_record("PNG")
    params = a1111_parse(to_a1111(rec))
    assert params["Seed"] == "123456789" and params["Size"] == "1024x1024"
    assert params["Model"] == "Krea 2 Medium" and params["Ratio"] == "1:1"
    # Neither is a number: A1111 keeps its own Steps when it applies the line.
    assert params["Steps"] == params["Sampler"] == "n/a"


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("plain", "plain"),
        ("a, b", '"a, b"'),
        ("16:9", '"16:9"'),
        ("two\nlines", '"two\\nlines"'),
        ('say "hi"', 'say "hi"'),  # A1111 quotes only for , : and newline
        ('x: "y"', '"x: \\"y\\""'),
        ("ünï", "ünï"),
    ],
)
def test_values_are_quoted_as_a1111_quotes_them(value: str, written: str) -> None:
    assert metadata._a1111_value(value) == written


@pytest.mark.parametrize("fmt", ["JPG", "WEBP"])
def test_prompt_in_image_description_and_xmp(tmp_path: Path, fmt: str) -> None:
    path = write(tmp_path, fmt, our_record(fmt))
    with Image.open(path) as im:
        exif = im.getexif()
        assert exif[0x010E] == PROMPT
        assert exif[0x0131].startswith("krea-desktop ")
    data = path.read_bytes()
    xmp = data[data.index(b"<x:xmpmeta") : data.index(b"</x:xmpmeta>")].decode()
    assert "<xmp:CreatorTool>krea-desktop " in xmp
    assert '<rdf:li xml:lang="x-default">a red fox in the snow, "golden hour": 35mm</rdf:li>' in xmp


# -- nothing private leaves ----------------------------------------------------------------------


def every_text(data: bytes) -> bytes:
    """The file's bytes and every zlib stream inside it, inflated (PNG zTXt/iTXt/IDAT...)."""
    out = [data]
    for m in re.finditer(rb"\x78[\x01\x5e\x9c\xda]", data):
        with contextlib.suppress(zlib.error):
            out.append(zlib.decompressobj().decompress(data[m.start() :], 1 << 24))
    if data.startswith(b"\x89PNG"):
        pos = 8
        while pos + 12 <= len(data):
            (length,) = struct.unpack(">I", data[pos : pos + 4])
            body = data[pos + 8 : pos + 8 + length]
            for i in range(len(body)):
                with contextlib.suppress(zlib.error):
                    out.append(zlib.decompress(body[i:]))
                    break
            pos += 12 + length
    return b"\n".join(out)


def assert_nothing_private(data: bytes) -> None:
    blob = every_text(data)
    for secret in ("Private Projects", "client-x", "/home/artist", "SECRETTOKEN123", "user:pw", "frag"):
        for encoding in ("utf-8", "utf-16-be", "utf-16-le"):
            assert secret.encode(encoding) not in blob, (secret, encoding)


@pytest.mark.parametrize("fmt", FORMATS)
def test_embedded_record_names_references_without_folders_or_queries(tmp_path: Path, fmt: str) -> None:
    path = write(tmp_path, fmt, our_record(fmt))
    assert_nothing_private(path.read_bytes())
    back = read_record(path)
    assert back is not None
    assert [(r.image, r.source, r.strength) for r in back.references] == [
        ("0b7e3c1a-1111-4222-8333-944455556666", "ab12cd.png", 0.7),
        ("https://cdn.example.com/pics/cat.png", "https://cdn.example.com/pics/cat.png", -1.25),
        ("e1", "win.png", 0.3),
    ]


def test_compressed_text_chunks_are_searched_too() -> None:
    # The search itself: a secret in a zTXt chunk is found.
    body = b"Comment\x00\x00" + zlib.compress(FOLDER.encode())
    chunk = struct.pack(">I", len(body)) + b"zTXt" + body + struct.pack(">I", zlib.crc32(b"zTXt" + body))
    data = encode("PNG")
    with pytest.raises(AssertionError):
        assert_nothing_private(data[:33] + chunk + data[33:])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("with_parameters", [True, False])
def test_export_with_and_without_parameters(tmp_path: Path, fmt: str, with_parameters: bool) -> None:
    from krea_desktop.library.export import export_image

    source = write(tmp_path, "PNG", our_record("PNG"))
    entry = entry_for_file(source, read_record(source))
    target = export_image(entry, tmp_path / f"export.{fmt.lower()}", fmt, with_parameters=with_parameters)
    data = target.read_bytes()
    assert_nothing_private(data)
    back = read_record(data)
    if with_parameters:
        assert back is not None and back.prompt == PROMPT
    else:
        assert back is None
        blob = every_text(data)
        assert b"red fox" not in blob and "red fox".encode("utf-16-be") not in blob
        assert b"krea-desktop" not in blob


# -- recall finds the kept copies again ----------------------------------------------------------


def test_reference_sources_looks_names_up_in_the_references_folder(tmp_path: Path) -> None:
    refs_dir = tmp_path / "data" / "references"
    refs_dir.mkdir(parents=True)
    (refs_dir / "ab12cd.png").write_bytes(encode("PNG"))
    back = read_record(write(tmp_path, "PNG", our_record("PNG")))
    assert back is not None
    found, lost = reference_sources(back, refs_dir)
    assert found == [(1, refs_dir / "ab12cd.png", 0.7)] and lost == 2  # the first of three
    # An index record naming the old folder finds the copy by its name too.
    moved = back.replace(references=(ReferenceRecord("u", 0.5, "/old/data/references/ab12cd.png"),))
    assert reference_sources(moved, refs_dir) == ([(1, refs_dir / "ab12cd.png", 0.5)], 0)
    # A strength the record does not know is said to be unknown, not made up.
    unknown = back.replace(references=(ReferenceRecord("u", None, "ab12cd.png"),))
    assert reference_sources(unknown, refs_dir) == ([(1, refs_dir / "ab12cd.png", None)], 0)
    # Nothing outside the folder is reached through a name.
    for hostile in ("..", "../data/references/ab12cd.png/..", "", "sha256:ab", "data:image/png;base64,AA"):
        assert reference_sources(GenerationRecord(references=(ReferenceRecord("u", 1.0, hostile),)), refs_dir)[0] == []


def test_shared_record_round_trips_through_the_index_json() -> None:
    from krea_desktop.api.record import parse_record, record_json_text

    rec = our_record("PNG")
    assert parse_record(json.loads(record_json_text(rec))) == rec

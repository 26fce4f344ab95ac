"""`krea-desktop info IMAGE... [--json]` as a person runs it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from krea_desktop.api.record import GenerationRecord, ReferenceRecord
from krea_desktop.info import run as run_info
from krea_desktop.library.metadata import embed
from tests.corpus.make_corpus import HERE, SAMPLES, Sample

KEYS = {
    "file",
    "source",
    "prompt",
    "negativePrompt",
    "seed",
    "width",
    "height",
    "ratio",
    "creativity",
    "model",
    "imageUUID",
    "references",
    "sweep",  # beyond DESIGN.md's list: where the image stands in a sweep, or null
}


def info(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "krea_desktop", "info", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )


def ours(tmp_path: Path) -> Path:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    record = GenerationRecord(
        prompt="a lighthouse at dusk",
        seed=42,
        width=1376,
        height=768,
        creativity="high",
        model="krea:krea@2-medium",
        image_uuid="5d5a2c0e-4b1f-4c56-9a0e-1f2e3d4c5b6a",
        app="krea-desktop",
        version="0.1.0",
        created_at=None,
        references=(ReferenceRecord("0b7e3c1a-1111-4222-8333-944455556666", -0.5, "/home/me/refs/ab.png"),),
    ).replace(created_at=datetime(2025, 1, 1, tzinfo=timezone.utc).isoformat())
    path = tmp_path / "ours.png"
    path.write_bytes(embed(buf.getvalue(), "PNG", record))
    return path


def test_json_one_object_per_file_in_order(tmp_path: Path) -> None:
    mine = ours(tmp_path)
    comfy = HERE / "comfyui/api_and_workflow.png"
    plain = tmp_path / "plain.jpg"
    Image.new("RGB", (5, 3)).save(plain, "JPEG")
    r = info("--json", str(mine), str(comfy), str(plain))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["file"] for row in rows] == [str(mine), str(comfy), str(plain)]
    assert all(row.keys() >= KEYS for row in rows)
    assert rows[0] | {"foreign": None} == {
        "file": str(mine),
        "source": "krea-desktop",
        "prompt": "a lighthouse at dusk",
        "negativePrompt": None,
        "seed": 42,
        "width": 1376,
        "height": 768,
        "ratio": "16:9",
        "creativity": "high",
        "model": "krea:krea@2-medium",
        "imageUUID": "5d5a2c0e-4b1f-4c56-9a0e-1f2e3d4c5b6a",
        "sweep": None,
        "foreign": None,
        "references": [
            {"name": "ab.png", "strength": -0.5, "imageUUID": "0b7e3c1a-1111-4222-8333-944455556666", "parent": None}
        ],
    }
    assert rows[1]["source"] == "ComfyUI" and rows[1]["seed"] == 156680208700286
    assert (rows[1]["width"], rows[1]["height"]) == (512, 768)
    assert rows[2] | {"file": None} == {k: None for k in KEYS} | {
        "references": [],
        "width": 5,
        "height": 3,
        "foreign": None,
    }


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.path for s in SAMPLES])
def test_every_corpus_file_is_read(sample: Sample) -> None:
    path = HERE / sample.path
    r = info("--json", str(path))
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    assert row["source"] == sample.expected["source"]
    assert row["prompt"] == sample.expected["prompt"]


def test_readable_lines(tmp_path: Path) -> None:
    r = info(str(ours(tmp_path)), str(HERE / "a1111/txt2img.png"))
    assert r.returncode == 0, r.stderr
    assert "prompt:          a lighthouse at dusk" in r.stdout
    assert "size:            1376x768 (16:9)" in r.stdout
    assert "reference 1:     ab.png (-0.50)" in r.stdout
    assert "made by:         A1111" in r.stdout and "sampler:         DPM++ 2M" in r.stdout


def test_a_seed_beyond_the_models_is_shown_as_the_other_tools(tmp_path: Path) -> None:
    path = tmp_path / "comfy.png"
    text = "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 18446744073709551615, Size: 512x512"
    chunks = PngInfo()
    chunks.add_text("parameters", text)
    Image.new("RGB", (8, 8)).save(path, pnginfo=chunks)
    r = info(str(path))
    assert r.returncode == 0, r.stderr
    assert "seed:            18446744073709551615 (A1111's, beyond Krea 2 Medium's range, so not recalled)" in r.stdout
    row = json.loads(info("--json", str(path)).stdout)
    assert row["seed"] is None and row["foreign"]["seed"] == "18446744073709551615"


def test_unreadable_files_one_sentence_each_exit_1(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    fifo = tmp_path / "pipe.png"
    if hasattr(os, "mkfifo"):
        os.mkfifo(fifo)
    good = ours(tmp_path)
    args = [str(tmp_path / "missing.png"), str(text), str(tmp_path), str(good)]
    if fifo.exists():
        args.append(str(fifo))
    r = info("--json", *args)  # a FIFO nobody writes to must not hang it
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == len(args) - 1
    assert lines[0] == f"krea-desktop: {tmp_path / 'missing.png'} does not exist."
    assert lines[1] == f"krea-desktop: {text} is not a PNG, JPEG or WEBP image."
    assert lines[2] == f"krea-desktop: {tmp_path} is a folder, not an image."
    if fifo.exists():
        assert lines[3] == f"krea-desktop: {fifo} is not a regular file, so it was not read."
    # One line a file, in the order given: an unreadable one's says why, and recalls nothing.
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert [row["file"] for row in rows] == args
    assert [row.get("error") for row in rows[:3]] == [line.removeprefix("krea-desktop: ") for line in lines[:3]]
    assert "error" not in rows[3] and rows[3]["prompt"]
    nothing = {k: None for k in KEYS} | {"references": [], "foreign": None}
    for row in rows[:3] + rows[4:]:
        assert row == nothing | {"file": row["file"], "error": row["error"]}


@pytest.mark.parametrize(
    "data", [b"RIFF\x04\x00\x00\x00WEBP", b"RIFF\x04\x00\x00\x00WEBP" + b"VP8 " * 10], ids=["alone", "said-empty"]
)
def test_a_webp_header_with_nothing_in_it_is_one_sentence_and_exit_1(tmp_path: Path, data: bytes) -> None:
    # It was "read": an empty description, and exit 0, of a file no program can open.
    path = tmp_path / "tiny.webp"
    path.write_bytes(data)
    out, err = strict_stream("utf-8"), strict_stream("utf-8")
    assert run_info([path], as_json=False, out=out, err=err) == 1
    assert printed(out) == ""
    assert printed(err) == f"krea-desktop: {path} is a WEBP header with nothing in it, so it holds no image.\n"


def strict_stream(encoding: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding=encoding, errors="strict", newline="\n")


def printed(stream: io.TextIOWrapper) -> str:
    stream.flush()
    buffer = stream.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue().decode(stream.encoding)


def test_a_name_that_is_not_utf8_is_printed_escaped(tmp_path: Path) -> None:
    latin1 = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.png"))  # as a Latin-1 archive names it
    latin1.write_bytes(ours(tmp_path).read_bytes())
    shown = f"{tmp_path}/caf\\xe9.png"
    out = strict_stream("utf-8")  # what a UTF-8 terminal gives Python
    assert run_info([latin1], as_json=True, out=out) == 0
    row = json.loads(printed(out))
    assert (row["file"], row["prompt"]) == (shown, "a lighthouse at dusk")
    out = strict_stream("utf-8")
    assert run_info([latin1], as_json=False, out=out) == 0
    assert printed(out).splitlines()[:3] == [
        shown,
        "  made by:         krea-desktop",
        "  prompt:          a lighthouse at dusk",
    ]
    err = strict_stream("utf-8")
    assert run_info([latin1.with_name("caf\udce9.jpg")], as_json=False, out=out, err=err) == 1
    assert printed(err) == f"krea-desktop: {tmp_path}/caf\\xe9.jpg does not exist.\n"


def test_a_line_break_in_a_files_name_cannot_forge_a_line_of_the_report(tmp_path: Path) -> None:
    forged = tmp_path / "x\n  made by:         krea-desktop.png"
    forged.write_bytes(ours(tmp_path).read_bytes())
    out = strict_stream("utf-8")
    assert run_info([forged], as_json=False, out=out) == 0
    lines = printed(out).splitlines()
    assert lines[0] == f"{tmp_path}/x\\n  made by:         krea-desktop.png"
    assert lines[1] == "  made by:         krea-desktop" and lines[2].startswith("  prompt:")
    out = strict_stream("utf-8")
    assert run_info([forged], as_json=True, out=out) == 0
    assert json.loads(printed(out))["file"] == str(forged)  # JSON keeps the name as it is
    err = strict_stream("utf-8")
    gone = tmp_path / "gone\nkrea-desktop: all fine.png"
    assert run_info([gone], as_json=False, out=out, err=err) == 1
    assert printed(err) == f"krea-desktop: {tmp_path}/gone\\nkrea-desktop: all fine.png does not exist.\n"


def test_text_the_terminal_cannot_encode_is_escaped(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    path = tmp_path / "fox.png"
    path.write_bytes(embed(buf.getvalue(), "PNG", GenerationRecord(prompt="café au lait, 狐")))
    out = strict_stream("ascii")
    assert run_info([path], as_json=True, out=out) == 0
    assert json.loads(printed(out))["prompt"] == "café au lait, 狐"
    out = strict_stream("ascii")
    assert run_info([path], as_json=False, out=out) == 0
    assert "  prompt:          caf\\xe9 au lait, \\u72d0" in printed(out).splitlines()


def test_escape_sequences_in_an_images_metadata_never_reach_the_terminal(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    hostile = "a cat \x1b]52;c;ZWNobw==\x07\x1b[2J\x9b31m \u202etxt.exe"
    path = tmp_path / "cat\x1b[8m.png"
    path.write_bytes(embed(buf.getvalue(), "PNG", GenerationRecord(prompt=hostile)))
    r = info(str(path))
    assert r.returncode == 0, r.stderr
    shown = "a cat \\u001b]52;c;ZWNobw==\\u0007\\u001b[2J\\u009b31m \\u202etxt.exe"
    assert f"  prompt:          {shown}" in r.stdout.splitlines()
    assert r.stdout.splitlines()[0] == str(tmp_path / "cat\\u001b[8m.png")
    r = info("--json", str(path))
    assert not any(ch in r.stdout for ch in "\x1b\x07\x9b\u202e")
    assert json.loads(r.stdout)["prompt"] == hostile  # the same text, escaped
    r = info(str(path.with_name("gone\x1b[2J.png")))
    assert r.stderr == f"krea-desktop: {tmp_path}/gone\\u001b[2J.png does not exist.\n"


def test_a_name_too_long_is_one_sentence_and_the_next_file_is_still_read(tmp_path: Path) -> None:
    good = ours(tmp_path)
    too_long = tmp_path / ("x" * 300) / "y.png"
    r = info(str(good), str(too_long), str(good))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert r.stderr == f"krea-desktop: {too_long} cannot be read (File name too long).\n"
    assert r.stdout.count("a lighthouse at dusk") == 2


def test_a_reader_that_stops_early_ends_it_quietly(tmp_path: Path) -> None:
    good = ours(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "krea_desktop", "info", *[str(good)] * 400],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().decode().strip() == str(good)  # as `| head -1` reads
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 0
    assert err == ""


def test_a_file_padded_with_empty_chunks_is_one_sentence(tmp_path: Path) -> None:
    import struct
    import zlib

    from krea_desktop.library.metadata import MAX_PARTS

    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    png = buf.getvalue()
    empty = struct.pack(">I", 0) + b"prVt" + struct.pack(">I", zlib.crc32(b"prVt"))
    path = tmp_path / "crawl.png"
    path.write_bytes(png[:33] + empty * (2 * MAX_PARTS) + png[33:])
    r = info(str(path))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == (
        f"krea-desktop: {path} has more than 50,000 blocks of metadata, which no real image has, so it was not read.\n"
    )


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_file_that_ends_early_is_read_and_said_to_be_cut_short(tmp_path: Path, fmt: str) -> None:
    """What it recalls is printed (exit 0), and one sentence says the picture is cut
    short; a PNG's and a JPEG's metadata come before their pixels, so it is all there, a
    WEBP's after them, so it is lost with the end. A whole file gets no such sentence."""
    buf = io.BytesIO()
    Image.effect_noise((64, 64), 60).convert("RGB").save(buf, fmt)
    whole = embed(buf.getvalue(), "JPG" if fmt == "JPEG" else fmt, GenerationRecord(prompt="a lighthouse at dusk"))
    for name, data, cut in (("whole", whole, False), ("cut", whole[: len(whole) - 200], True)):
        path = tmp_path / f"{name}.{fmt.lower()}"
        path.write_bytes(data)
        out, err = strict_stream("utf-8"), strict_stream("utf-8")
        assert run_info([path], as_json=True, out=out, err=err) == 0
        row = json.loads(printed(out))
        assert set(row) >= KEYS
        assert row["prompt"] == (None if cut and fmt == "WEBP" else "a lighthouse at dusk")
        said = printed(err)
        if cut:
            assert said == (
                f"krea-desktop: {path} ends early, so its picture is cut short "
                "(what it recalls was read from the part that is there).\n"
            )
        else:
            assert said == ""


def test_a_random_seed_kept_by_an_earlier_version_is_no_seed(tmp_path: Path) -> None:
    """Earlier versions kept another tool's -1 ("random") as its seed beyond the model's."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    path = tmp_path / "imported.png"
    path.write_bytes(embed(buf.getvalue(), "PNG", GenerationRecord(prompt="a cat", extras={"foreign": {"seed": "-1"}})))
    out = strict_stream("utf-8")
    assert run_info([path], as_json=False, out=out) == 0
    assert "  seed:            —" in printed(out).splitlines()


def test_output_that_cannot_be_written_is_one_sentence(tmp_path: Path) -> None:
    class Full(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

    err = strict_stream("utf-8")
    assert run_info([ours(tmp_path)], as_json=True, out=Full(), err=err) == 1
    assert printed(err) == "krea-desktop: the output could not be written (No space left on device).\n"


def test_a_contact_sheet_says_it_is_one_and_not_a_setting_its_cells_varied(tmp_path: Path) -> None:
    import uuid

    from krea_desktop.api.record import SweepAxis, SweepTag
    from krea_desktop.api.request import GenerationRequest
    from krea_desktop.library.sheet import SheetCell, save_sheet
    from krea_desktop.library.store import Library

    base = GenerationRequest("a fox", ratio="16:9", creativity="medium", seed=7).describe()
    tag = SweepTag(str(uuid.uuid4()), (SweepAxis("creativity", ("low", "high")),))
    cells = [SheetCell((0,), error="Failed."), SheetCell((1,), error="Failed.")]
    with Library(tmp_path / "lib") as library:
        sheet = save_sheet(library, base, tag, cells, (1376, 768))
        with Image.open(sheet.path) as picture:
            size = picture.size
    out, err = io.StringIO(), io.StringIO()
    assert run_info([sheet.path], as_json=True, out=out, err=err) == 0
    found = json.loads(out.getvalue())
    assert (found["width"], found["height"]) == size and found["ratio"] is None
    assert found["creativity"] is None  # the cells were low and high; no cell was "medium"
    assert found["seed"] == 7  # the one seed every cell was made at
    out = io.StringIO()
    assert run_info([sheet.path], as_json=False, out=out, err=err) == 0
    assert "  sweep:           contact sheet of 2 cells, varying creativity" in out.getvalue()
    assert f"  size:            {size[0]}x{size[1]}\n" in out.getvalue()


def test_an_empty_file_is_said_to_be_empty(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    out, err = io.StringIO(), io.StringIO()
    assert run_info([empty], as_json=False, out=out, err=err) == 1
    assert err.getvalue() == f"krea-desktop: {empty} is empty (0 bytes), so it holds no image.\n"

"""Exporting a copy: never in the place of a file already there, the picture as a viewer
shows it, another tool's texts kept, one clear sentence for a file that cannot be read;
and a contact sheet drawn again that never loses the old one on a failed write."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import struct
import xml.etree.ElementTree as ET
import zlib
from datetime import datetime, timezone
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from krea_desktop.api.record import GenerationRecord
from krea_desktop.api.results import GeneratedImage
from krea_desktop.fsutil import atomic_write
from krea_desktop.library import metadata, store
from krea_desktop.library.export import ExportError, export_image
from krea_desktop.library.recall import entry_for_file
from krea_desktop.library.store import Library, LibraryEntry

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


def png_file(path: Path, im: Image.Image, info: PngInfo | None = None) -> Path:
    im.save(path, "PNG", pnginfo=info)
    return path


def entry_of(path: Path) -> LibraryEntry:
    return entry_for_file(path, metadata.read_record(path))


def png_texts(path: Path) -> dict[str, str]:
    with Image.open(path) as im:
        im.load()
        return dict(getattr(im, "text", {}))


# --- nothing replaced ----------------------------------------------------------------------------


def test_a_write_that_may_not_replace_leaves_the_file_there_whole(tmp_path: Path) -> None:
    target = tmp_path / "holiday.png"
    target.write_bytes(b"the user's own")
    with pytest.raises(FileExistsError):
        atomic_write(target, b"an export", replace=False)
    assert target.read_bytes() == b"the user's own"
    assert os.listdir(tmp_path) == ["holiday.png"]  # no temporary file left
    atomic_write(tmp_path / "new.png", b"an export", replace=False)
    assert (tmp_path / "new.png").read_bytes() == b"an export"


def test_an_export_killed_midway_leaves_no_hidden_file_in_the_folder_after_the_next_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A killed export left its temporary file (".NAME.XXXX.tmp") in the user's folder for
    good: the app never cleans a folder of theirs."""
    import subprocess
    import sys

    from krea_desktop import fsutil

    monkeypatch.setattr(fsutil, "_SWEPT", set(), raising=False)  # as a new process
    dead = int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout
    )
    killed = tmp_path / f".harbour-1.png.krea-{dead}-x1y2z3.tmp"  # a killed process's
    running = tmp_path / f".harbour-2.png.krea-{os.getpid()}-a1b2c3.tmp"  # this one's, under way
    mine = tmp_path / ".my-notes.krea-1-.tmp.txt"  # the user's own, named nothing like them
    for path in (killed, running, mine):
        path.write_bytes(b"part of an image")
    source = png_file(tmp_path / "source.png", Image.new("RGB", (8, 8), (10, 20, 30)))
    folder = tmp_path / "exports"
    folder.mkdir()
    for path in (killed, running):
        path.rename(folder / path.name)
    mine.rename(folder / mine.name)
    written = export_image(entry_of(source), folder / "harbour.png", "PNG")
    assert sorted(p.name for p in folder.iterdir()) == sorted([written.name, running.name, mine.name])


def test_a_long_name_the_file_system_takes_is_written(tmp_path: Path) -> None:
    """Its temporary name once added 14 bytes to it: names over 241 bytes failed."""
    name = "é" * 125 + ".png"  # 254 bytes
    assert len(os.fsencode(name)) == 254
    atomic_write(tmp_path / name, b"data")
    assert (tmp_path / name).read_bytes() == b"data"
    assert os.listdir(tmp_path) == [name]


def test_unique_exports_get_a_name_of_their_own(tmp_path: Path) -> None:
    source = png_file(tmp_path / "cat.png", Image.new("RGB", (8, 8), (200, 10, 10)))
    entry = entry_of(source)
    out = tmp_path / "out"
    out.mkdir()
    (out / "cat.png").write_bytes(b"already here")
    first = export_image(entry, out / "cat.png", "PNG", unique=True)
    second = export_image(entry, out / "cat.png", "PNG", unique=True)
    assert (first.name, second.name) == ("cat (2).png", "cat (3).png")
    assert (out / "cat.png").read_bytes() == b"already here"
    with pytest.raises(FileExistsError):
        export_image(entry, out / "cat.png", "PNG", replace=False)


# --- one sentence for a file that cannot be exported ----------------------------------------------


def test_a_picture_too_large_is_refused_in_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow's DecompressionBombError once escaped and ended the whole export."""
    big = png_file(tmp_path / "big.png", Image.new("RGB", (100, 100)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ExportError) as caught:
        export_image(entry_of(big), tmp_path / "out.png", "PNG")
    assert str(caught.value) == "big.png is too large a picture to export."


def test_a_file_pillow_cannot_make_sense_of_is_refused_in_one_sentence(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    good = png_file(tmp_path / "good.png", Image.new("RGB", (8, 8)))
    entry = entry_of(good)
    data = good.read_bytes()
    bad.write_bytes(data[:40] + b"\x00" * 30)  # its header, then nothing that decodes
    broken = entry_for_file(bad, None)
    with pytest.raises(ExportError) as caught:
        export_image(broken, tmp_path / "out.png", "PNG")
    assert str(caught.value) == "bad.png could not be read as an image, so it was not exported."
    assert export_image(entry, tmp_path / "fine.png", "PNG").exists()


# --- the picture as a viewer shows it ------------------------------------------------------------


def test_transparency_and_sixteen_bits_are_kept(tmp_path: Path) -> None:
    palette = Image.new("P", (10, 10), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.paste(1, (0, 0, 5, 10))
    palette.info["transparency"] = 0
    source = tmp_path / "cut-out.png"
    palette.save(source, "PNG", transparency=0)
    out = export_image(entry_of(source), tmp_path / "cut-out-export.png", "PNG")
    with Image.open(out) as im:
        rgba = im.convert("RGBA")
        assert rgba.getpixel((8, 5))[3] == 0  # still see-through, not black
        assert rgba.getpixel((2, 5)) == (255, 0, 0, 255)

    ramp = Image.new("I;16", (256, 1))
    ramp.putdata([v * 257 for v in range(256)])
    deep = tmp_path / "deep.png"
    ramp.save(deep, "PNG")
    kept = export_image(entry_of(deep), tmp_path / "deep-export.png", "PNG")
    with Image.open(kept) as im:
        assert im.mode.startswith("I")
        assert im.getpixel((40, 0)) == 40 * 257  # every one of the 16 bits
    small = export_image(entry_of(deep), tmp_path / "deep-export.webp", "WEBP")
    with Image.open(small) as im:
        assert abs(im.convert("L").getpixel((40, 0)) - 40) <= 2  # scaled, not clipped to white


def test_an_exported_picture_is_turned_as_its_exif_says(tmp_path: Path) -> None:
    source = tmp_path / "sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # turned 90° clockwise to be seen
    Image.new("RGB", (40, 20), (10, 200, 10)).save(source, "JPEG", exif=exif)
    out = export_image(entry_of(source), tmp_path / "upright.png", "PNG")
    with Image.open(out) as im:
        assert im.size == (20, 40)
        assert im.getexif().get(0x0112) is None  # turned once, not again by a viewer


# --- other tools' texts --------------------------------------------------------------------------


def test_an_a1111_image_exported_keeps_its_own_parameters_line(tmp_path: Path) -> None:
    """Before, the line was written anew as ``Steps: n/a, Sampler: n/a``: A1111 read
    back none of its own settings."""
    source = CORPUS / "a1111" / "txt2img.png"
    original = png_texts(source)["parameters"]
    assert "Sampler: " in original and "CFG scale" in original
    entry = entry_of(source)
    png = export_image(entry, tmp_path / "shared.png", "PNG")
    assert png_texts(png)["parameters"] == original
    record = metadata.read_record(png)
    assert record is not None and record.prompt == entry.record.prompt
    jpg = export_image(entry, tmp_path / "shared.jpg", "JPG")
    found = metadata._scan(jpg.read_bytes(), metadata.MAX_JSON)
    assert found is not None and found.user_comment == original


def test_a_comfyui_image_exported_keeps_its_prompt_and_workflow(tmp_path: Path) -> None:
    source = CORPUS / "comfyui" / "api_and_workflow.png"
    texts = png_texts(source)
    assert {"prompt", "workflow"} <= set(texts)
    out = export_image(entry_of(source), tmp_path / "shared.png", "PNG")
    exported = png_texts(out)
    assert exported["prompt"] == texts["prompt"] and exported["workflow"] == texts["workflow"]
    plain = export_image(entry_of(source), tmp_path / "plain.png", "PNG", with_parameters=False)
    assert png_texts(plain) == {}


@pytest.mark.parametrize("tool", ["comfyui/api_and_workflow.png", "invokeai/v3.png", "novelai/nai.png"])
def test_another_tools_png_exported_gets_no_made_up_a1111_line_beside_its_own_texts(tmp_path: Path, tool: str) -> None:
    # A "parameters" line made from the partial record ("Steps: n/a, Sampler: n/a") is what
    # other readers take first: they then named the image A1111's, with none of its settings.
    source = CORPUS / tool
    texts = png_texts(source)
    assert "parameters" not in texts
    out = export_image(entry_of(source), tmp_path / "shared.png", "PNG")
    exported = png_texts(out)
    assert "parameters" not in exported
    assert {k: exported[k] for k in texts} == texts  # NovelAI's "Software" among them
    record = metadata.read_record(out)
    assert record is not None and record.prompt == entry_of(source).record.prompt


@pytest.mark.parametrize("tool", ["comfyui/api_and_workflow.png", "a1111/txt2img.png", "novelai/nai.png"])
def test_an_export_exported_again_still_carries_the_other_tools_texts(tmp_path: Path, tool: str) -> None:
    source = CORPUS / tool
    texts = png_texts(source)
    first = export_image(entry_of(source), tmp_path / "first.png", "PNG")
    again = export_image(entry_of(first), tmp_path / "again.png", "PNG")
    exported = png_texts(again)
    assert {k: exported[k] for k in texts} == texts
    assert exported[metadata.JSON_KEY] == png_texts(first)[metadata.JSON_KEY]
    assert set(exported) == set(png_texts(first))


def test_our_own_image_exported_carries_our_record_alone(tmp_path: Path) -> None:
    record = GenerationRecord(prompt="a lighthouse", seed=7, width=8, height=8)
    data = metadata.embed(_png_bytes(), "PNG", record)
    source = tmp_path / "ours.png"
    source.write_bytes(data)
    assert metadata.tool_texts(data) == {}
    out = export_image(entry_of(source), tmp_path / "export.png", "PNG")
    assert set(png_texts(out)) == {"parameters", "Software", metadata.JSON_KEY}
    assert png_texts(out)["parameters"] == metadata.to_a1111(record)
    assert metadata.tool_texts(out.read_bytes()) == {}  # exported again, nothing of ours is carried


def _png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, "PNG")
    return buf.getvalue()


def test_the_xmp_packet_is_well_formed_whatever_the_prompt_holds() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "JPEG")
    prompt = "a red\x0cpage break cat\x01 \ufffe end"
    data = metadata.embed(buf.getvalue(), "JPG", GenerationRecord(prompt=prompt, seed=1))
    packet = re.search(rb"<x:xmpmeta.*</x:xmpmeta>", data, re.S)
    assert packet is not None
    ET.fromstring(packet.group(0))  # raised "not well-formed (invalid token)" before
    back = metadata.read_record(data)
    assert back is not None and back.prompt == prompt  # the JSON record keeps every character


# --- a contact sheet drawn again -----------------------------------------------------------------


def sheet_image(colour: tuple[int, int, int]) -> GeneratedImage:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buf, "PNG")
    return GeneratedImage(
        task_uuid="sweep-1",
        image_uuid="sweep-1-sheet",
        data=buf.getvalue(),
        format="PNG",
        width=16,
        height=16,
        seed=1,
    )


def test_a_sheet_drawn_again_takes_the_old_ones_place(tmp_path: Path) -> None:
    with Library(tmp_path / "data") as lib:
        old = lib.save(sheet_image((200, 0, 0)), datetime(2026, 1, 1, tzinfo=timezone.utc))
        new = lib.save(sheet_image((0, 0, 200)), datetime(2026, 1, 2, tzinfo=timezone.utc), replace=True)
        assert new.id == old.id and new.path == old.path and lib.count() == 1
        with Image.open(new.path) as im:
            assert im.convert("RGB").getpixel((3, 3)) == (0, 0, 200)
        assert new.created_at == old.created_at  # where it was in the gallery


def test_a_sheet_drawn_again_onto_a_full_disk_leaves_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, the old sheet's row and file were removed first, and a failed save of the
    new one lost both."""
    with Library(tmp_path / "data") as lib:
        old = lib.save(sheet_image((200, 0, 0)))
        before = old.path.read_bytes()

        def full(*_args: object, **_kwargs: object) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(store, "_write_atomic", full)
        with pytest.raises(OSError):
            lib.save(sheet_image((0, 0, 200)), replace=True)
        assert old.path.read_bytes() == before
        again = lib.get(old.id)
        assert again is not None and not again.missing and again.file_size == old.file_size


def test_a_png_turned_by_its_xmp_is_turned_once(tmp_path: Path) -> None:
    """The XMP that says how to turn the picture was carried into the copy with the other
    tools' texts, after the picture had been turned by it: viewers turned it again."""
    from PIL import ImageOps

    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/>'
        "</rdf:RDF></x:xmpmeta>"
    )
    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp)
    info.add_text("parameters", "a tower\nSteps: 20, Sampler: Euler, Seed: 3")
    source = png_file(tmp_path / "tower.png", Image.new("RGB", (64, 48)), info)
    with Image.open(source) as im:
        shown = ImageOps.exif_transpose(im).size
    assert shown == (48, 64)
    out = export_image(entry_of(source), tmp_path / "copy.png", "PNG")
    with Image.open(out) as im:
        assert ImageOps.exif_transpose(im).size == shown
        assert "XML:com.adobe.xmp" not in getattr(im, "text", {})
    assert png_texts(out)["parameters"] == "a tower\nSteps: 20, Sampler: Euler, Seed: 3"


# --- what goes along, and what stays behind -------------------------------------------------------


def _profile(name: str) -> bytes:
    from PIL import ImageCms

    return bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile(name)).tobytes())


def test_an_export_without_parameters_leaves_a_jpegs_comment_behind(tmp_path: Path) -> None:
    # Fooocus and others write their parameters into a JPEG's comment; Pillow carries a
    # source's comment into a JPEG it writes unless told otherwise.
    source = tmp_path / "fooocus.jpg"
    said = b'{"prompt": "my private prompt", "seed": 5}'
    Image.new("RGB", (16, 16), (200, 30, 30)).save(source, "JPEG", comment=said)
    for fmt in ("JPG", "PNG", "WEBP"):
        out = export_image(entry_of(source), tmp_path / f"plain.{fmt.lower()}", fmt, with_parameters=False)
        assert b"my private prompt" not in out.read_bytes(), fmt
        with Image.open(out) as im:
            assert not im.info.get("comment"), fmt


@pytest.mark.parametrize("source_format", ["PNG", "JPEG", "WEBP"])
def test_the_colour_profile_goes_along_into_every_format(tmp_path: Path, source_format: str) -> None:
    profile = _profile("sRGB")
    source = tmp_path / f"wide.{source_format.lower()}"
    Image.new("RGB", (16, 16), (20, 180, 60)).save(source, source_format, icc_profile=profile)
    for fmt in ("PNG", "JPG", "WEBP"):
        out = export_image(entry_of(source), tmp_path / f"out-{source_format}.{fmt.lower()}", fmt)
        with Image.open(out) as im:
            assert im.info.get("icc_profile") == profile, fmt


def test_a_cmyk_profile_stays_behind_once_the_colours_are_rgb(tmp_path: Path) -> None:
    source = tmp_path / "print.jpg"
    Image.new("CMYK", (16, 16), (0, 80, 80, 0)).save(source, "JPEG", icc_profile=b"\0" * 128 + b"not an RGB profile")
    for fmt in ("PNG", "JPG", "WEBP"):
        out = export_image(entry_of(source), tmp_path / f"print.{fmt.lower()}", fmt)
        with Image.open(out) as im:
            assert im.mode in ("RGB", "RGBA") and not im.info.get("icc_profile"), fmt


def test_a_png_with_a_workflow_of_megabytes_in_a_compressed_text_is_a_picture_like_any_other(tmp_path: Path) -> None:
    # Pillow refused a whole PNG whose compressed text inflates past 1 MB: such a file was
    # "damaged" as a reference, a broken row in the library, and could not be exported.
    from krea_desktop.library.inputs import load_reference

    workflow = json.dumps({"nodes": [{"id": i, "widgets_values": [f"note {i} " + "lorem " * 40]} for i in range(8000)]})
    assert 1.5 * 2**20 < len(workflow) < 4 * 2**20
    info = PngInfo()
    info.add_text("prompt", json.dumps({"6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox"}}}))
    info.add_text("workflow", workflow, zip=True)  # zTXt, as ImageMagick writes any long text
    library = Library(tmp_path / "library")
    source = png_file(library.images_dir / "comfy.png", Image.new("RGB", (24, 16), (9, 9, 9)), info)
    assert len(source.read_bytes()) < 2**20
    assert load_reference(str(source)).thumbnail  # a reference, not "damaged"
    library.reconcile()
    (entry,) = library.entries()
    assert not entry.broken and (entry.width, entry.height) == (24, 16)
    out = export_image(entry, tmp_path / "shared.png", "PNG")
    assert png_texts(out)["workflow"] == workflow


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _with_texts(png: bytes, texts: list[bytes], after_pixels: bool) -> bytes:
    """``png`` with the text chunks ``texts`` put before its first IDAT, or before IEND."""
    at = png.index(b"IEND" if after_pixels else b"IDAT") - 4
    return png[:at] + b"".join(texts) + png[at:]


_ZTXT_BOMB = _chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"x" * (12 << 20), 9))  # 12 MB in 12 KB
_ITXT_BOMB = _chunk(b"iTXt", b"workflow\0\1\0\0\0" + zlib.compress(b"{" * (12 << 20), 9))
# Each inflates to 7 MB, within Pillow's limit for one text; ten of them, past its 64 MB in all.
_MANY_TEXTS = [_chunk(b"zTXt", b"note%d\0\0" % i + zlib.compress(b"y" * (7 << 20), 9)) for i in range(10)]


@pytest.mark.parametrize(
    ("texts", "after_pixels"),
    [([_ZTXT_BOMB], False), ([_ZTXT_BOMB], True), ([_ITXT_BOMB], False), (_MANY_TEXTS, True)],
    ids=["ztxt-before-pixels", "ztxt-after-pixels", "itxt", "many-texts"],
)
def test_a_png_whose_texts_pillow_refuses_to_inflate_is_still_a_picture(
    tmp_path: Path, texts: list[bytes], after_pixels: bool
) -> None:
    # Pillow refuses a whole PNG whose text inflates past its limits (8 MB in one text, as
    # the app sets it; 64 MB in all): such a file was a broken row in the library, a
    # "damaged" reference, and could not be exported, while `info` read it.
    from krea_desktop.library.inputs import load_reference
    from krea_desktop.pillow import Image as Pillow
    from krea_desktop.pillow import open_image

    buf = io.BytesIO()
    Image.new("RGB", (40, 24), (200, 30, 30)).save(buf, "PNG")
    data = _with_texts(buf.getvalue(), texts, after_pixels)
    with pytest.raises(ValueError), Pillow.open(io.BytesIO(data)) as refused:
        refused.load()  # as Pillow has it: refused whole, at open or at load
    library = Library(tmp_path / "library")
    source = library.images_dir / "bomb.png"
    source.write_bytes(data)
    with open_image(source) as im:
        im.load()
        assert im.size == (40, 24) and im.getpixel((3, 3)) == (200, 30, 30)
    loaded = load_reference(str(source))
    assert loaded.thumbnail and loaded.width == 40
    library.reconcile()
    (entry,) = library.entries()
    assert not entry.broken and (entry.width, entry.height) == (40, 24)
    out = export_image(entry, tmp_path / "shared.webp", "WEBP")
    with Image.open(out) as im:
        assert im.size == (40, 24)


def _png(size: tuple[int, int] = (40, 24)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def test_only_the_texts_pillow_refuses_are_left_out_and_the_others_kept() -> None:
    from krea_desktop.pillow import open_image, png_without_refused_texts

    settings = _chunk(b"tEXt", b"parameters\0a red fox\nSteps: 30")
    xmp = _chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta tiff:Orientation='6'/>")
    data = _with_texts(_png(), [settings, _ZTXT_BOMB, xmp], after_pixels=False)
    kept = png_without_refused_texts(data)
    assert kept is not None and _ZTXT_BOMB not in kept and settings in kept and xmp in kept
    with open_image(io.BytesIO(data)) as im:
        im.load()
        assert im.text == {
            "parameters": "a red fox\nSteps: 30",
            "XML:com.adobe.xmp": "<x:xmpmeta tiff:Orientation='6'/>",
        }


def test_a_text_compressed_in_a_way_pillow_leaves_alone_leaves_the_picture_as_it_is() -> None:
    from krea_desktop.pillow import png_without_refused_texts

    # An iTXt marked compressed by a method other than deflate: Pillow keeps it as it
    # is, however large it looks, and it must not make the others go with it.
    odd = _chunk(b"iTXt", b"note\0\1\5\0\0" + os.urandom(64 << 10))
    data = _with_texts(_png(), [odd, _chunk(b"tEXt", b"Comment\0kept")], after_pixels=True)
    assert png_without_refused_texts(data) is None
    with Image.open(io.BytesIO(data)) as im:
        im.load()  # as Pillow has it: taken
        assert im.text["Comment"] == "kept"


def test_texts_that_fail_to_inflate_are_inflated_within_pillows_limits_not_each_at_the_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each inflates to 7.9 MB and then fails its checksum: Pillow reads it as empty after
    # inflating it, and counts nothing for it; 300 of them (2 MB of file) were 2.4 GB of
    # inflating, twice (once here, once in Pillow), for a picture of 40 x 24.
    from krea_desktop.pillow import PngImagePlugin, open_image

    stream = zlib.compress(b"z" * (PngImagePlugin.MAX_TEXT_CHUNK - 100_000), 9)
    broken = stream[:-4] + bytes(4 - i for i in range(4))  # the Adler-32 spoiled
    texts = [_chunk(b"zTXt", b"k%d\0\0" % i + broken) for i in range(300)]
    data = _with_texts(_png(), texts, after_pixels=True)
    inflated = [0]
    real = zlib.decompressobj

    class Counting:
        def __init__(self) -> None:
            self.inner = real()

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            try:
                made = self.inner.decompress(data, max_length)
            except zlib.error:  # the most it may have made before it failed
                inflated[0] += min(max_length or 1 << 62, len(data) * 1032)
                raise
            inflated[0] += len(made)
            return made

        @property
        def unconsumed_tail(self) -> bytes:
            return self.inner.unconsumed_tail

    monkeypatch.setattr(zlib, "decompressobj", Counting)
    with open_image(io.BytesIO(data)) as im:
        im.load()
        assert im.size == (40, 24) and not im.text
    assert inflated[0] <= PngImagePlugin.MAX_TEXT_MEMORY + 2 * PngImagePlugin.MAX_TEXT_CHUNK


def test_a_chunk_that_says_it_is_gigabytes_long_is_not_read_in_one_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from krea_desktop import pillow, png_texts

    png = _png()
    at = png.index(b"IEND") - 4
    lying = struct.pack(">I", 0xFFFFFFF0) + b"zTXt" + b"Comment\0\0" + zlib.compress(b"x" * 1000)
    path = tmp_path / "lying.png"
    path.write_bytes(png[:at] + lying)
    asked: list[int] = []
    real = png_texts._Reader.at
    monkeypatch.setattr(png_texts._Reader, "at", lambda self, pos, n: asked.append(n) or real(self, pos, n))
    with pytest.raises((OSError, SyntaxError)), pillow.open_image(path) as im:  # as Pillow says: cut short
        im.load()
    assert asked and max(asked) <= path.stat().st_size


@pytest.mark.parametrize(
    "text",
    [
        _chunk(b"iTXt", b"k" * 80 + b"\0\1\0\0\0" + zlib.compress(b"x" * (12 << 20), 9)),
        _chunk(b"zTXt", b"k" * 81 + b"\0\1" + zlib.compress(b"hi")),  # a method Pillow refuses the file for
    ],
    ids=["itxt-bomb", "ztxt-unknown-method"],
)
def test_a_keyword_longer_than_the_standard_allows_hides_nothing(text: bytes) -> None:
    # The standard's keywords end within 79 bytes, and only that much of a text was read
    # to tell whether it is compressed; Pillow reads keywords of any length.
    from krea_desktop.pillow import open_image

    data = _with_texts(_png(), [text], after_pixels=False)
    with pytest.raises((ValueError, OSError)), Image.open(io.BytesIO(data)) as refused:
        refused.load()
    with open_image(io.BytesIO(data)) as im:
        im.load()
        assert im.size == (40, 24)


def test_a_bomb_after_a_hundred_thousand_empty_chunks_is_still_found() -> None:
    from krea_desktop.pillow import open_image

    empty = [_chunk(b"teXt", b"")] * 100_000  # private, ancillary, and empty
    data = _with_texts(_png(), [*empty, _ZTXT_BOMB], after_pixels=True)
    with open_image(io.BytesIO(data)) as im:
        im.load()
        assert im.size == (40, 24)


def test_only_the_chunk_headers_of_a_picture_are_read_to_open_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Read through a 64 KB buffer, the walk read the whole file when its chunks were 64 KB
    # (as Pillow writes them): 34 MB to open a 34 MB picture.
    from krea_desktop import pillow, png_texts

    path = tmp_path / "noise.png"
    Image.frombytes("RGB", (1024, 1024), os.urandom(1024 * 1024 * 3)).save(path, "PNG", compress_level=1)
    assert path.stat().st_size > 3 << 20
    read = [0]
    real = os.pread
    monkeypatch.setattr(png_texts.os, "pread", lambda fd, n, at: read.__setitem__(0, read[0] + n) or real(fd, n, at))
    with pillow.open_image(path) as im:
        assert im.size == (1024, 1024)
    assert 0 < read[0] < 4096


def test_a_reference_whose_text_the_service_would_refuse_is_kept_and_sent_without_it(tmp_path: Path) -> None:
    from krea_desktop.api.client import prepare_upload
    from krea_desktop.library.inputs import load_reference

    data = _with_texts(_png((64, 64)), [_ZTXT_BOMB], after_pixels=False)
    source = tmp_path / "bomb.png"
    source.write_bytes(data)
    loaded = load_reference(str(source))
    sent = prepare_upload(data)
    for kept in (loaded.data, sent):
        assert _ZTXT_BOMB not in kept
        with Image.open(io.BytesIO(kept)) as im:  # Pillow as it stands: the service's reading
            im.load()
            assert im.size == (64, 64)


def test_a_png_pillow_reads_is_opened_as_it_is_texts_and_all(tmp_path: Path) -> None:
    from krea_desktop.pillow import open_image

    info = PngInfo()
    info.add_text("workflow", "z" * (6 << 20), zip=True)  # within the limit for one text
    source = png_file(tmp_path / "fine.png", Image.new("RGB", (8, 8), (1, 2, 3)), info)
    with open(source, "rb") as f, open_image(f) as im:
        assert im.text["workflow"] == "z" * (6 << 20)
    with open_image(source) as im:
        im.load()
        assert im.info["workflow"] == "z" * (6 << 20)


def test_a_long_a1111_text_exported_keeps_its_settings_whole_in_a_jpeg_and_all_of_it_in_a_webp(
    tmp_path: Path,
) -> None:
    # A JPEG segment holds 64 KB: the text was cut to its first 8,188 characters, and the
    # negative prompt, the seed, the size and the other tool's settings went with the rest.
    prompt = ", ".join(f"tag_{i}" for i in range(2500))
    settings = "Steps: 30, Sampler: DPM++ 2M, CFG scale: 6, Seed: 987654321, Size: 832x1216, Model: ponyXL"
    text = f"{prompt}\nNegative prompt: bad_0, bad_1\n{settings}"
    assert len(text) > 17_000
    info = PngInfo()
    info.add_text("parameters", text)
    source = png_file(tmp_path / "long.png", Image.new("RGB", (32, 32), (9, 9, 9)), info)
    jpg = export_image(entry_of(source), tmp_path / "long.jpg", "JPG")
    found = metadata._scan(jpg.read_bytes(), metadata.MAX_JSON)
    assert found is not None and found.user_comment is not None
    assert found.user_comment.endswith("\n" + settings) and found.user_comment.startswith("tag_0, tag_1")
    assert "\nNegative prompt: bad_0, bad_1\n" in found.user_comment
    record = metadata.read_record(jpg)
    assert record is not None and (record.seed, record.width, record.height) == (987654321, 832, 1216)
    assert record.negative_prompt == "bad_0, bad_1"
    assert record.extras["foreign"]["steps"] == 30
    webp = export_image(entry_of(source), tmp_path / "long.webp", "WEBP")
    found = metadata._scan(webp.read_bytes(), metadata.MAX_JSON)
    assert found is not None and found.user_comment == text


def test_a_grey_picture_keeps_its_grey_profile_where_it_stays_grey_and_not_in_a_webp(tmp_path: Path) -> None:
    profile = _profile("sRGB")  # any profile: what matters is which pictures carry it
    source = tmp_path / "grey.png"
    Image.new("L", (16, 16), 120).save(source, "PNG", icc_profile=profile)
    for fmt, mode in (("PNG", "L"), ("JPG", "L"), ("WEBP", "RGB")):
        out = export_image(entry_of(source), tmp_path / f"grey.{fmt.lower()}", fmt)
        with Image.open(out) as im:
            assert im.mode == mode, fmt
            assert bool(im.info.get("icc_profile")) == (mode == "L"), fmt  # WEBP has no grey: made RGB


@pytest.mark.parametrize("fmt", ["PNG", "JPG", "WEBP"])
def test_a_photo_with_an_oddly_typed_exif_tag_is_exported_upright(tmp_path: Path, fmt: str) -> None:
    """ImageOps.exif_transpose writes the EXIF again after turning the picture, and fails
    (struct.error) on a tag of an unexpected type: such a photo, which every viewer shows,
    "could not be read as an image, so it was not exported"."""
    import struct

    # Big-endian TIFF: BitsPerSample written as ASCII (as broken writers do), then Orientation 6.
    entries = struct.pack(">HHII", 0x0102, 2, 6, 8 + 2 + 2 * 12 + 4) + struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0)
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 2) + entries + struct.pack(">I", 0) + b"hello\x00"
    source = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 48), (120, 30, 200)).save(source, "JPEG", exif=b"Exif\x00\x00" + tiff)
    out = export_image(entry_of(source), tmp_path / f"copy.{fmt.lower()}", fmt)
    with Image.open(out) as im:
        assert im.size == (48, 64)
        assert im.getexif().get(0x0112) is None  # turned: the tag itself is not carried over


# --- the name offered ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "offered"),
    [
        ("A lighthouse in fog, gouache", "a-lighthouse-in-fog-gouache-3f2a1c9e"),
        # Cut at a word, never in one; what no file system takes is left out.
        (
            "Harbour at dawn: boats / gulls / nets * drying on the quay, long shadows over wet stone",
            "harbour-at-dawn-boats-gulls-nets-drying-on-the-3f2a1c9e",
        ),
        ("Café au lait — étude", "café-au-lait-étude-3f2a1c9e"),
        # Accents typed apart (as macOS writes names) composed; a script's vowel signs kept.
        ("cafe\u0301 cre\u0300me", "café-crème-3f2a1c9e"),
        ("नमस्ते दुनिया", "नमस्ते-दुनिया-3f2a1c9e"),
        ("!!! ??? ***", "3f2a1c9e-0000-4000-8000-00000000abcd"),  # no word: the name it has
        ("", "3f2a1c9e-0000-4000-8000-00000000abcd"),
    ],
)
def test_an_export_is_offered_a_name_from_its_prompt(tmp_path: Path, prompt: str, offered: str) -> None:
    from dataclasses import replace

    from krea_desktop.library.export import export_name

    image_uuid = "3f2a1c9e-0000-4000-8000-00000000abcd"
    entry = replace(entry_of(png_file(tmp_path / f"{image_uuid}.png", Image.new("RGB", (8, 8)))), prompt=prompt)
    entry = replace(entry, image_uuid=image_uuid)
    name = export_name(entry)
    assert name == offered
    assert len(name) <= 48 + 9


def test_another_tools_file_keeps_its_own_name_when_exported(tmp_path: Path) -> None:
    from dataclasses import replace

    from krea_desktop.library.export import export_name

    entry = entry_of(png_file(tmp_path / "ComfyUI_00012_.png", Image.new("RGB", (8, 8))))
    assert export_name(replace(entry, prompt="a lighthouse in fog")) == "ComfyUI_00012_"


@pytest.mark.parametrize(
    ("file_stem", "offered"),
    [
        ("CON", "_CON"),  # a device's name on Windows, with or without a suffix
        ("lpt1.backup", "_lpt1.backup"),
        ("what? final*", "what- final-"),
        ('a "quoted" <draft>: v2|v3', "a -quoted- -draft-- v2-v3"),
        ("ends with dots.. ", "ends with dots"),
        ("x" * 251, "x" * 200),
        ("é" * 120, "é" * 100),  # 200 bytes, cut between two letters
        ("...", "image"),
    ],
)
def test_another_tools_name_is_offered_as_every_system_takes_it(tmp_path: Path, file_stem: str, offered: str) -> None:
    # Passed through as it was, "CON" or "what? final*" made a file a Windows share could
    # not open, and a name of 251 bytes could not take ".webp" or " (2)" at all.
    from krea_desktop.library.export import export_name, export_suffix

    entry = entry_of(png_file(tmp_path / f"{file_stem}.png", Image.new("RGB", (8, 8))))
    assert export_name(entry) == offered
    out = tmp_path / "out"
    out.mkdir()
    for _ in range(2):
        written = export_image(entry, out / f"{export_name(entry)}{export_suffix('WEBP')}", "WEBP", unique=True)
        assert written.parent == out and written.name.startswith(offered)
    assert len(list(out.iterdir())) == 2


def test_a_file_rewritten_while_it_is_opened_is_judged_as_it_now_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another program writes the file again (opening it empties it first) between the
    # size taken and the chunks read: a short read was a struct.error, which no caller
    # takes for a picture that cannot be read.
    from krea_desktop import pillow, png_texts

    path = tmp_path / "rewritten.png"
    path.write_bytes(_with_texts(_png(), [_chunk(b"prVt", b"")] * 1000, after_pixels=True))
    real = png_texts._Reader.at
    calls = [0]

    def at(self: png_texts._Reader, pos: int, n: int) -> bytes:
        calls[0] += 1
        if calls[0] == 2:  # the signature read: the file is emptied now
            os.truncate(path, 100)
        return real(self, pos, n)

    monkeypatch.setattr(png_texts._Reader, "at", at)
    try:
        with pillow.open_image(path) as im:
            im.load()
    except (OSError, SyntaxError, ValueError):  # Pillow's word on what the file holds now
        pass
    assert calls[0] >= 2 and path.stat().st_size == 100


def test_a_png_signature_before_anything_but_chunks_is_not_walked_through() -> None:
    # Pillow stops at the first "chunk" whose type is no type; so does the walk, rather
    # than stepping through a million of them.
    from krea_desktop import png_texts

    asked: list[int] = []
    data = b"\x89PNG\r\n\x1a\n" + bytes(1 << 20)
    real = png_texts._Reader.at
    reader_at = lambda self, pos, n: asked.append(pos) or real(self, pos, n)  # noqa: E731
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(png_texts._Reader, "at", reader_at)
        assert png_texts.png_without_refused_texts(data) is None
    assert len(asked) <= 2


def test_a_png_of_countless_tiny_texts_is_left_to_pillow_without_noting_each() -> None:
    import tracemalloc

    from krea_desktop import png_texts

    tiny = _chunk(b"zTXt", b"k\0\0" + zlib.compress(b""))
    data = _with_texts(_png(), [tiny] * 200_000, after_pixels=True)
    tracemalloc.start()
    try:
        assert png_texts.png_without_refused_texts(data) is None  # more than it looks at: Pillow judges
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20  # a place for each of 200,000 texts was 240 MB at a million


def test_damaged_texts_cost_what_they_inflated_to_and_leave_the_others_be() -> None:
    # Damaged from their first bytes, they inflate to nothing (Pillow reads them as
    # empty); each was counted as the most it might have made, 8 MB, and nine of them
    # left no room for the texts after them.
    import random

    from krea_desktop.pillow import open_image

    noise = random.Random(7)
    junk = [_chunk(b"zTXt", b"junk%d\0\0" % i + noise.randbytes(9000)) for i in range(9)]
    settings = _chunk(b"zTXt", b"parameters\0\0" + zlib.compress(b"a cat, Steps: 20"))
    data = _with_texts(_png(), [*junk, settings], after_pixels=True)
    with open_image(io.BytesIO(data)) as im:
        im.load()
        assert im.text["parameters"] == "a cat, Steps: 20"


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 32 32\n1 0 0 setrgbcolor 0 0 32 32 rectfill\nshowpage\n"


def test_postscript_is_no_picture_anywhere_and_never_handed_to_ghostscript(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import EpsImagePlugin

    from krea_desktop.api import errors as E
    from krea_desktop.api.client import prepare_upload
    from krea_desktop.pillow import UnidentifiedImageError, open_image

    opened: list[object] = []
    real_open = EpsImagePlugin.EpsImageFile._open
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", lambda self: opened.append(self) or real_open(self))
    with pytest.raises(E.ValidationError, match="not a readable image"):
        prepare_upload(EPS)  # a reference given by path or bytes through the library API
    path = tmp_path / "drawing.png"
    path.write_bytes(EPS)
    with pytest.raises(UnidentifiedImageError):
        open_image(path)  # the viewer, the library's check, a contact sheet, an export
    assert not opened

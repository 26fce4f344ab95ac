"""Reading parameters back from files that are cut short or carry two tools' texts."""

from __future__ import annotations

import io
import json
import struct
import threading
import zlib
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from krea_desktop.api.record import GenerationRecord
from krea_desktop.library import metadata

A1111 = (
    "a lighthouse at dusk\nNegative prompt: fog\n"
    "Steps: 28, Sampler: Euler a, CFG scale: 6.5, Seed: 424242, Size: 64x48, Model: flux1-dev"
)


def test_a_jpeg_cut_before_its_picture_still_gives_its_parameters() -> None:
    """The record is in the segments before the picture: a file cut anywhere after them
    and before the picture's data was read as having none."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (9, 9, 9)).save(buf, "JPEG")
    data = metadata.embed(buf.getvalue(), "JPG", GenerationRecord(prompt="a fox in snow", seed=77))
    xmp_end = data.index(b"</x:xmpmeta>") + len(b"</x:xmpmeta>")
    scan = data.index(b"\xff\xda")
    packet_end = data.index(b'<?xpacket end="w"?>') + len(b'<?xpacket end="w"?>')
    for cut in (packet_end, (packet_end + scan) // 2, scan - 1, scan + 2):
        assert xmp_end < cut
        record = metadata.read_record(data[:cut])
        assert record is not None and (record.prompt, record.seed) == ("a fox in snow", 77), cut


def test_a_workflow_whose_sampler_is_unknown_does_not_hide_a1111s_parameters(tmp_path: Path) -> None:
    """A ComfyUI workflow with a custom sampler (Flux's SamplerCustomAdvanced) named the
    tool and nothing else, and the A1111 text in the same file went unread."""
    workflow = {
        "nodes": [{"id": 1, "type": "SamplerCustomAdvanced", "inputs": [], "widgets_values": []}],
        "links": [],
    }
    info = PngInfo()
    info.add_text("workflow", json.dumps(workflow))
    info.add_text("parameters", A1111)
    path = tmp_path / "both.png"
    Image.new("RGB", (64, 48)).save(path, "PNG", pnginfo=info)
    record = metadata.read_record(path)
    assert record is not None
    assert (record.prompt, record.negative_prompt, record.seed) == ("a lighthouse at dusk", "fog", 424242)


def test_a_workflow_alone_whose_sampler_is_unknown_still_names_comfyui(tmp_path: Path) -> None:
    info = PngInfo()
    info.add_text("workflow", json.dumps({"nodes": [{"id": 1, "type": "SamplerCustomAdvanced"}], "links": []}))
    path = tmp_path / "comfy.png"
    Image.new("RGB", (64, 48)).save(path, "PNG", pnginfo=info)
    record = metadata.read_record(path)
    assert record is not None and record.extras.get("source") == "ComfyUI"
    assert (record.width, record.height) == (64, 48)


def _jpeg_with(exif: bytes) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (9, 9, 9)).save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def test_a_jpegs_exif_kept_in_a_png_it_was_turned_into_gives_its_parameters() -> None:
    # Pillow, ImageMagick and exiftool keep a JPEG's EXIF in the PNG's eXIf chunk.
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + A1111.encode("utf-16-be")
    with Image.open(io.BytesIO(_jpeg_with(exif.tobytes()))) as jpeg:
        buf = io.BytesIO()
        jpeg.save(buf, "PNG", exif=jpeg.info["exif"])
    assert b"eXIf" in buf.getvalue()
    record = metadata.read_record(buf.getvalue())
    assert record is not None
    assert (record.prompt, record.negative_prompt, record.seed) == ("a lighthouse at dusk", "fog", 424242)


def _png_with_exif(tiff: bytes) -> bytes:
    def chunk(ctype: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00\x00")
    chunks = chunk(b"IHDR", ihdr) + chunk(b"eXIf", tiff) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def test_an_exif_block_naming_its_megabytes_over_and_over_is_read_at_once() -> None:
    # 512 pointers to one Exif IFD of 512 UserComments, each naming the same 8 MB of no
    # known encoding: read for every pointer and every entry, hundreds of thousands of
    # copies of it (hours; were it so here, far past the minute). Its first UserComment
    # is the one: read once, and found to say nothing.
    pointers, comments, size = 512, 512, 2 * metadata.MAX_JSON - 16 * 1024  # the most an eXIf chunk may be
    ifd0 = 8
    exif_ifd = ifd0 + 2 + pointers * 12 + 4
    data_at = exif_ifd + 2 + comments * 12 + 4
    tiff = b"MM\x00\x2a" + struct.pack(">I", ifd0)
    tiff += struct.pack(">H", pointers) + struct.pack(">HHII", 0x8769, 4, 1, exif_ifd) * pointers + b"\0" * 4
    tiff += struct.pack(">H", comments) + struct.pack(">HHII", 0x9286, 7, size, data_at) * comments + b"\0" * 4
    tiff += b"\x01" + b"\x00" * (size - 1)
    data = _png_with_exif(tiff)
    read: list[GenerationRecord | None] = []
    worker = threading.Thread(target=lambda: read.append(metadata.read_record(data)), daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive()
    assert read == [None]


def test_the_first_user_comment_of_the_exif_ifd_is_the_one_read() -> None:
    text = b"ASCII\x00\x00\x00" + A1111.encode()
    ifd0 = 8
    exif_ifd = ifd0 + 2 + 2 * 12 + 4  # IFD0 points to it twice
    data_at = exif_ifd + 2 + 2 * 12 + 4
    tiff = b"MM\x00\x2a" + struct.pack(">I", ifd0)
    tiff += struct.pack(">H", 2) + struct.pack(">HHII", 0x8769, 4, 1, exif_ifd) * 2 + b"\0" * 4
    tiff += struct.pack(">H", 2) + struct.pack(">HHII", 0x9286, 7, len(text), data_at) * 2 + b"\0" * 4
    record = metadata.read_record(_png_with_exif(tiff + text))
    assert record is not None
    assert (record.prompt, record.negative_prompt, record.seed) == ("a lighthouse at dusk", "fog", 424242)


def test_our_jpeg_turned_into_a_png_with_its_exif_and_xmp_keeps_its_whole_record() -> None:
    ours = GenerationRecord(prompt="a fox in snow", seed=77, creativity="high", ratio="4:3", width=64, height=48)
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (9, 9, 9)).save(buf, "JPEG")
    data = metadata.embed(buf.getvalue(), "JPG", ours)
    with Image.open(io.BytesIO(data)) as jpeg:
        info = PngInfo()
        info.add_itxt("XML:com.adobe.xmp", jpeg.info["xmp"].decode())  # as ImageMagick keeps it
        out = io.BytesIO()
        jpeg.save(out, "PNG", exif=jpeg.info["exif"], pnginfo=info)
    record = metadata.read_record(out.getvalue())
    assert record is not None
    assert (record.prompt, record.seed, record.creativity, record.ratio) == ("a fox in snow", 77, "high", "4:3")
    assert "source" not in record.extras  # ours, not read as another tool's


def test_the_size_of_a_jpeg_with_megabytes_before_its_frame_is_read(tmp_path: Path) -> None:
    # A phone's portrait photo keeps extended XMP and a depth map in APP segments before
    # the frame: the size was looked for in the first megabyte only.
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (9, 9, 9)).save(buf, "JPEG")
    data = buf.getvalue()
    app = b"\xff\xe2" + (65535).to_bytes(2, "big") + b"\x01" * 65533  # one whole APP2 segment
    path = tmp_path / "portrait.jpg"
    path.write_bytes(data[:2] + app * 24 + data[2:])
    assert path.stat().st_size > 1.5 * 2**20
    assert metadata.image_size_of(path) == (640, 480)
    with Image.open(path) as im:
        assert im.size == (640, 480)  # a picture as any reader takes it


def _plain_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (9, 9, 9)).save(buf, "PNG")
    return buf.getvalue()


def test_a_pngs_own_record_comes_before_an_xmp_packet_written_ahead_of_it() -> None:
    old = GenerationRecord(prompt="the prompt of another picture", seed=1)
    new = GenerationRecord(prompt="the prompt of this one", seed=2)
    png = metadata.embed(_plain_png(), "PNG", new)
    xmp = metadata._xmp_packet(metadata._record_json(old.to_json()), metadata.to_a1111(old), old.prompt).decode()
    chunk = metadata._png_text_chunk("XML:com.adobe.xmp", xmp, force_itxt=True)
    tagged = png[:33] + chunk + png[33:]  # right after IHDR, as exiftool writes XMP
    record = metadata.read_record(tagged)
    assert record is not None and (record.prompt, record.seed) == ("the prompt of this one", 2)
    found = metadata._scan(tagged, metadata.MAX_JSON)
    assert found is not None and found.texts["parameters"].startswith("the prompt of this one")


def test_an_image_this_app_made_keeps_its_parameters_line_whatever_other_texts_it_carries(tmp_path: Path) -> None:
    # A title added by a tagging tool made the export take it for another tool's image,
    # and write no parameters line at all.
    from krea_desktop.library.export import export_image
    from krea_desktop.library.recall import entry_for_file

    ours = GenerationRecord(prompt="a fox \x1b[0min snow", seed=7, width=8, height=8)  # ESC: no XML character
    data = metadata.embed(_plain_png(), "PNG", ours)
    titled = data[:33] + metadata._png_text_chunk("Title", "Fox, final") + data[33:]
    source = tmp_path / "ours.png"
    source.write_bytes(titled)
    assert metadata.tool_texts(titled) == {"Title": "Fox, final"}
    out = export_image(entry_for_file(source, metadata.read_record(source)), tmp_path / "shared.png", "PNG")
    with Image.open(out) as im:
        im.load()
        texts = dict(getattr(im, "text", {}))
    assert texts["parameters"].startswith("a fox") and texts["Title"] == "Fox, final"
    for fmt in ("JPG", "WEBP"):  # the line in its EXIF (the ESC escaped in its XMP) is ours too
        exported = export_image(entry_for_file(source, metadata.read_record(source)), tmp_path / f"s.{fmt}", fmt)
        assert "parameters" not in metadata.tool_texts(exported.read_bytes())


def test_a_photo_exported_keeps_its_own_texts_and_is_credited_to_no_model(tmp_path: Path) -> None:
    """A picture nothing says how it was made (a photo with a title) was exported with a
    made-up "Steps: n/a, …, Model: Krea 2 Medium" line and this app's record."""
    from krea_desktop.library.export import export_image
    from krea_desktop.library.recall import entry_for_file, record_of

    info = PngInfo()
    info.add_text("Title", "Holiday photo")
    info.add_text("Author", "Me")
    source = tmp_path / "photo.png"
    Image.new("RGB", (32, 32)).save(source, pnginfo=info)
    entry = entry_for_file(source, metadata.read_record(source))
    assert not record_of(entry).says_how_made  # it names the file (its id, format), nothing more
    png = export_image(entry, tmp_path / "photo-export.png", "PNG")
    with Image.open(png) as im:
        im.load()
        assert dict(im.text) == {"Title": "Holiday photo", "Author": "Me"}
    assert metadata.read_record(png) is None
    for fmt in ("JPG", "WEBP"):
        exported = export_image(entry, tmp_path / f"photo-export.{fmt.lower()}", fmt)
        data = exported.read_bytes()
        assert metadata.read_record(data) is None
        assert b"Krea 2 Medium" not in data and b"krea-desktop" not in data
    # A record that says how it was made is still written whole.
    made = GenerationRecord(prompt="a fox", seed=7, width=32, height=32, image_uuid="u1", output_format="PNG")
    assert made.says_how_made
    back = metadata.read_record(metadata.embed(_plain_png(), "PNG", made))
    assert back is not None and back.prompt == "a fox" and back.seed == 7


def test_parameters_after_many_other_texts_are_still_read_and_exported(tmp_path: Path) -> None:
    """Only the first 64 text chunks were read: A1111's line after 70 others was lost, and
    the export then wrote a made-up line in its place."""
    from krea_desktop.library.export import export_image
    from krea_desktop.library.recall import entry_for_file

    info = PngInfo()
    for i in range(1100):  # past the cap on other texts too
        info.add_text(f"k{i}", "v")
    info.add_text("parameters", A1111)
    source = tmp_path / "many.png"
    Image.new("RGB", (16, 16)).save(source, pnginfo=info)
    record = metadata.read_record(source)
    assert record is not None and record.prompt == "a lighthouse at dusk" and record.seed == 424242
    assert metadata.tool_texts(source.read_bytes())["parameters"] == A1111
    out = export_image(entry_for_file(source, record), tmp_path / "out.png", "PNG")
    with Image.open(out) as im:
        im.load()
        assert im.text["parameters"] == A1111


def test_a_workflow_of_megabytes_goes_along_into_a_png_export(tmp_path: Path) -> None:
    from krea_desktop.library.export import export_image
    from krea_desktop.library.recall import entry_for_file

    workflow = json.dumps({"nodes": [], "extra": {"notes": "x" * (5 * 1024 * 1024)}})
    info = PngInfo()
    info.add_text("parameters", A1111)
    info.add_text("workflow", workflow, zip=True)
    source = tmp_path / "big.png"
    Image.new("RGB", (16, 16)).save(source, pnginfo=info)
    out = export_image(entry_for_file(source, metadata.read_record(source)), tmp_path / "out.png", "PNG")
    with Image.open(out) as im:
        im.load()
        assert im.text["workflow"] == workflow and im.text["parameters"] == A1111


def test_another_tools_long_prompt_outside_ascii_still_exports_to_jpeg(tmp_path: Path) -> None:
    """Every character outside ASCII takes six bytes in the record (twelve for an emoji):
    a JPEG export of an A1111 image with a 6,000-character Japanese prompt was refused
    outright (a JPEG segment holds 64 KB)."""
    from krea_desktop.library.export import export_image
    from krea_desktop.library.recall import entry_for_file

    settings = "\nSteps: 28, Sampler: Euler a, CFG scale: 5, Seed: 123, Size: 832x1216, Model: anime"
    for prompt, whole in (("桜の木の下で本を読む少女、" * 460, True), ("😀🌸" * 4600, False)):
        info = PngInfo()
        info.add_itxt("parameters", prompt + settings)
        source = tmp_path / "long.png"
        Image.new("RGB", (32, 32)).save(source, pnginfo=info)
        record = metadata.read_record(source)
        assert record is not None and record.prompt == prompt
        out = export_image(entry_for_file(source, record), tmp_path / "long.jpg", "JPG")
        back = metadata.read_record(out)
        assert back is not None and back.seed == 123 and back.width == 832
        if whole:  # the descriptions beside the record are shortened, the record kept whole
            assert back.prompt == prompt
        else:  # past even that: the record's prompt, cut short and saying so
            assert prompt.startswith(back.prompt[:-1]) and back.prompt.endswith("…")
        out.unlink()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize(("orientation", "shown"), [(1, (300, 200)), (3, (300, 200)), (6, (200, 300)), (8, (200, 300))])
def test_a_picture_stored_on_its_side_has_the_size_it_is_shown_at(
    tmp_path: Path, fmt: str, orientation: int, shown: tuple[int, int]
) -> None:
    """A phone's portrait photo (stored 300 x 200, orientation 6) was said to be 300 x 200,
    in the viewer's facts, in the index and by `info`, while it is shown 200 x 300."""
    from krea_desktop.library.store import Library

    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"phone.{fmt.lower()}"
    Image.new("RGB", (300, 200), (90, 60, 30)).save(path, fmt, exif=exif)
    assert metadata.image_size_of(path) == shown
    library = Library(tmp_path / "library")
    try:
        (library.images_dir / path.name).write_bytes(path.read_bytes())
        (row,) = library.reconcile().indexed
        entry = library.get(row)
        assert entry is not None and (entry.width, entry.height) == shown
    finally:
        library.close()


def test_a_png_whose_exif_pillow_cannot_read_is_still_a_good_picture(tmp_path: Path) -> None:
    """Some tools start a PNG's eXIf with "Exif\\0\\0", which Pillow refuses ("not a TIFF
    file"): reading its orientation failed the whole check, and the picture, which decodes,
    was marked damaged in the library."""
    import struct
    import zlib

    from krea_desktop.library.store import Library

    buf = io.BytesIO()
    Image.new("RGB", (30, 20), (90, 60, 30)).save(buf, "PNG")
    png = buf.getvalue()
    exif = Image.Exif()
    exif[0x0112] = 6
    body = b"Exif\x00\x00" + exif.tobytes()
    chunk = struct.pack(">I", len(body)) + b"eXIf" + body + struct.pack(">I", zlib.crc32(b"eXIf" + body))
    at = 8 + 25  # after the signature and IHDR
    library = Library(tmp_path / "library")
    try:
        (library.images_dir / "odd-exif.png").write_bytes(png[:at] + chunk + png[at:])
        report = library.reconcile()
        (row,) = report.indexed
        entry = library.get(row)
        assert report.broken == [] and entry is not None and not entry.broken
    finally:
        library.close()

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from krea_desktop.api import spec
from krea_desktop.api.errors import KreaError
from krea_desktop.library import inputs
from krea_desktop.library.inputs import (
    InvalidImageError,
    fetch_url,
    load_reference,
    store_copy,
)
from krea_desktop.wording import short_reference_name
from tests.helpers.images import SVG, Route, huge_header_png, image_bytes, serving, truncated_png


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_png_is_kept_as_it_is() -> None:
    data = image_bytes((40, 30))
    ref = load_reference(data)
    assert ref.data == data
    assert (ref.width, ref.height, ref.extension) == (40, 30, "png")
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert ref.file_name == f"{ref.sha256}.png"
    thumb = _open(ref.thumbnail)
    assert thumb.format == "PNG" and max(thumb.size) <= inputs.THUMBNAIL_SIDE


def test_jpeg_and_webp_pass_through(tmp_path: Path) -> None:
    for fmt, ext in (("JPEG", "jpg"), ("WEBP", "webp")):
        path = tmp_path / f"a.{ext}"
        path.write_bytes(image_bytes((50, 20), fmt=fmt))
        ref = load_reference(path)
        assert ref.extension == ext and ref.data == path.read_bytes()
        assert ref.source == path.name


def test_exif_rotation_is_applied() -> None:
    img = Image.new("RGB", (60, 20), (10, 200, 10))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    ref = load_reference(buf.getvalue())
    assert (ref.width, ref.height) == (20, 60)
    assert _open(ref.data).size == (20, 60)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_shown_upright(orientation: int) -> None:
    from PIL import ImageOps

    img = Image.new("RGB", (6, 4))
    img.putdata([(x * 40, y * 60, 0) for y in range(4) for x in range(6)])
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, "PNG", exif=exif)
    with Image.open(io.BytesIO(buf.getvalue())) as stored:
        upright = ImageOps.exif_transpose(stored).convert("RGB")
    ref = load_reference(buf.getvalue())
    shown = _open(ref.data).convert("RGB")
    assert (shown.size, shown.tobytes()) == (upright.size, upright.tobytes())


def test_exif_rotation_with_an_oddly_typed_tag_is_applied() -> None:
    # Big-endian TIFF: BitsPerSample written as ASCII (as broken writers do), then Orientation 6.
    entries = struct.pack(">HHII", 0x0102, 2, 6, 8 + 2 + 2 * 12 + 4) + struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0)
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 2) + entries + struct.pack(">I", 0) + b"hello\x00"
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 30, 200)).save(buf, "JPEG", exif=b"Exif\x00\x00" + tiff)
    ref = load_reference(buf.getvalue())
    assert (ref.width, ref.height) == (48, 64)
    assert _open(ref.data).size == (48, 64)


def test_exif_that_cannot_be_read_leaves_the_picture_as_stored(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable(self: Image.Image) -> Image.Exif:
        raise struct.error("unpack requires a buffer of 4 bytes")

    monkeypatch.setattr(Image.Image, "getexif", unreadable)
    data = image_bytes((64, 48), fmt="JPEG")
    ref = load_reference(data)
    assert (ref.width, ref.height) == (64, 48)
    assert ref.data == data


@pytest.mark.parametrize("size", [(2 * spec.UPLOAD_MAX_SIDE, 2 * spec.UPLOAD_MAX_SIDE), (4096, 2160), (3000, 1000)])
def test_a_large_jpeg_is_sent_at_the_upload_limit_even_where_it_decodes_at_half_its_size(
    size: tuple[int, int],
) -> None:
    # A JPEG decoded at half its size (draft) fitted the limit, so its bytes were kept and
    # sent as they were: 4096 px wide while the reference said 2048.
    buf = io.BytesIO()
    Image.new("RGB", size, (30, 140, 90)).save(buf, "JPEG", quality=80)
    ref = load_reference(buf.getvalue())
    with Image.open(io.BytesIO(ref.data)) as im:
        assert im.size == (ref.width, ref.height)
        assert max(im.size) == spec.UPLOAD_MAX_SIDE


def test_large_images_are_scaled_to_the_upload_limit() -> None:
    ref = load_reference(image_bytes((spec.UPLOAD_MAX_SIDE * 2, 40)))
    assert ref.width == spec.UPLOAD_MAX_SIDE
    assert _open(ref.data).size == (ref.width, ref.height)


@pytest.mark.parametrize(
    ("mode", "size", "orientation"),
    [
        ("RGB", (spec.UPLOAD_MAX_SIDE * 2 + 37, 900), 1),
        ("RGBA", (900, spec.UPLOAD_MAX_SIDE + 301), 1),  # with transparency
        ("RGBA opaque", (spec.UPLOAD_MAX_SIDE + 5, spec.UPLOAD_MAX_SIDE + 5), 1),
        ("RGB", (spec.UPLOAD_MAX_SIDE + 99, 700), 6),  # stored on its side
    ],
)
def test_a_large_reference_has_the_pixels_pillows_thumbnail_gives(
    mode: str, size: tuple[int, int], orientation: int
) -> None:
    """The picture is shrunk without a full-size copy first; what is sent and what the tray
    shows are still exactly what Pillow's own thumbnail makes of the upright picture."""
    picture = Image.linear_gradient("L").resize(size).convert("RGB")
    if mode.startswith("RGBA"):
        picture.putalpha(255 if "opaque" in mode else Image.linear_gradient("L").resize(size))
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = orientation
    picture.save(buf, "PNG", exif=exif.tobytes())
    ref = load_reference(buf.getvalue())

    upright = picture if orientation == 1 else picture.transpose(Image.Transpose.ROTATE_270)
    if "opaque" in mode:
        upright = upright.convert("RGB")
    expected = upright.copy()
    expected.thumbnail((spec.UPLOAD_MAX_SIDE, spec.UPLOAD_MAX_SIDE), Image.Resampling.LANCZOS, reducing_gap=3.0)
    sent = _open(ref.data)
    assert sent.size == expected.size == (ref.width, ref.height)
    assert sent.mode == expected.mode
    assert sent.tobytes() == expected.tobytes()
    thumb = expected.copy()
    thumb.thumbnail((inputs.THUMBNAIL_SIDE, inputs.THUMBNAIL_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    assert _open(ref.thumbnail).tobytes() == thumb.tobytes()


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 4000), st.integers(1, 4000), st.sampled_from([inputs.THUMBNAIL_SIDE, spec.UPLOAD_MAX_SIDE]))
def test_a_picture_is_shrunk_to_the_size_pillows_thumbnail_gives(width: int, height: int, side: int) -> None:
    picture = Image.new("1", (width, height))  # the smallest picture of that size: sizes are what matter
    picture.thumbnail((side, side))
    fits = width <= side and height <= side
    assert inputs._thumbnail_size(width, height, side) == (None if fits else picture.size)


@pytest.mark.parametrize("step", ["resize", "save"])  # shrinking it, or encoding what is sent
def test_a_picture_too_large_for_the_memory_left_says_so(monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    def no_memory(*_args: Any, **_kwargs: Any) -> Image.Image:
        raise MemoryError

    data = image_bytes((spec.UPLOAD_MAX_SIDE + 10, 40))
    monkeypatch.setattr(Image.Image, step, no_memory)
    with pytest.raises(InvalidImageError) as refused:
        load_reference(data)
    assert "needs more memory to open than this computer has free" in str(refused.value)


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("P", (20, 20), i) for i in (1, 2, 3)]
    for i, frame in enumerate(frames):
        frame.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
        frames[i] = frame
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    ref = load_reference(buf.getvalue())
    out = _open(ref.data)
    assert ref.extension == "png" and out.mode == "RGB"
    assert out.getpixel((5, 5)) == (255, 0, 0)


def test_animated_webp_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (20, 20), c) for c in ((250, 0, 0), (0, 250, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], duration=50, lossless=True)
    ref = load_reference(buf.getvalue())
    out = _open(ref.data).convert("RGB")
    assert ref.extension == "png"
    assert out.getpixel((5, 5))[0] > 200


def test_sixteen_bit_palette_and_cmyk_become_rgb() -> None:
    buf = io.BytesIO()
    Image.new("I;16", (10, 10), 65535).save(buf, "PNG")
    ref = load_reference(buf.getvalue())
    out = _open(ref.data)
    assert out.mode == "RGB" and out.getpixel((0, 0)) == (255, 255, 255)
    for sample, grey in ((200, 0), (255, 0), (256, 1), (32768, 128)):  # near black stays near black
        buf = io.BytesIO()
        Image.new("I;16", (10, 10), sample).save(buf, "PNG")
        assert _open(load_reference(buf.getvalue()).data).getpixel((0, 0)) == (grey, grey, grey), sample

    pal = Image.new("P", (10, 10), 0)
    pal.info["transparency"] = 0
    buf = io.BytesIO()
    pal.save(buf, "PNG", transparency=0)
    assert _open(load_reference(buf.getvalue()).data).mode == "RGBA"

    cmyk = load_reference(image_bytes((10, 10), (0, 255, 255, 0), fmt="JPEG", mode="CMYK"))
    assert cmyk.extension == "jpg" and _open(cmyk.data).mode == "RGB"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"hello, this is text", "not an image"),
        (b"", "empty"),
        (SVG, "SVG"),
        (b"  <svg xmlns='http://www.w3.org/2000/svg'/>", "SVG"),
        (huge_header_png(), "megapixels"),
        (huge_header_png(12000, 10000), "12000×10000"),
        (truncated_png(), "damaged"),
        (b"GIF89a" + b"\x00" * 20, "damaged"),
    ],
    ids=["text", "empty", "svg", "bare-svg", "bomb", "over-cap", "truncated", "bad-gif"],
)
def test_bad_data_is_refused_with_one_sentence(data: bytes, words: str) -> None:
    with pytest.raises(InvalidImageError) as info:
        load_reference(data)
    message = str(info.value)
    assert words in message
    assert isinstance(info.value, KreaError)
    assert message.endswith(".") and message.count(". ") == 0


ROOT_DIR = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("tail", "words"),
    [(b"x", "not an image"), (b"<html><body></body></html>", "web page"), (b"<svg xmlns='w3'/>", "SVG")],
    ids=["text", "page", "drawing"],
)
def test_a_file_of_many_comments_is_refused_at_once(tail: bytes, words: str, tmp_path: Path) -> None:
    # Each comment doubled the work of the check for a page or a drawing, which a file of
    # a few hundred bytes kept busy for hours, holding Python's lock all along: here, were
    # it so, the process looking at it would be stopped after a minute.
    path = tmp_path / "comments.png"
    path.write_bytes(b"<!---->" * 500 + tail)
    look = (
        "import sys\n"
        "from krea_desktop.library.inputs import InvalidImageError, load_reference\n"
        "try:\n"
        "    load_reference(sys.argv[1])\n"
        "except InvalidImageError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", look, str(path)], capture_output=True, text=True, timeout=60, cwd=ROOT_DIR, check=True
    )
    assert words in done.stdout and done.stdout.count("\n") == 1


@pytest.mark.parametrize(
    "data",
    [
        b'<?xml version="1.0"?>\n<!-- drawn by hand -->\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN">\n<svg>',
        b"<?XML version='1.0'?><!----><!-- two --><svg\n/>",
    ],
    ids=["declaration-comment-doctype", "upper-case-declaration"],
)
def test_a_drawing_after_its_prologue_is_known(data: bytes) -> None:
    assert inputs._looks_like_svg(data)
    assert not inputs._looks_like_html(data)


def test_comments_end_at_their_first_close() -> None:
    assert inputs._looks_like_html(b"  <!-- a -- b -->\n<!---->\r\n<!DOCTYPE HTML><p>")
    assert not inputs._looks_like_html(b"<!-- a --> text --> <html>")  # text between: no page's start
    assert not inputs._looks_like_html(b"<!-- never closed <html>")


def test_corrupt_png_checksum_is_refused() -> None:
    data = bytearray(image_bytes((30, 30)))
    idat = data.index(b"IDAT")
    data[idat + 6] ^= 0xFF
    with pytest.raises(InvalidImageError, match="damaged"):
        load_reference(bytes(data))


def test_bad_paths(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    svg = tmp_path / "drawing.svg"
    svg.write_bytes(SVG)
    cases = {
        tmp_path / "missing.png": "does not exist",
        tmp_path: "is a folder",
        empty: r"empty \(0 bytes\)",
        svg: "SVG",
    }
    for path, words in cases.items():
        with pytest.raises(InvalidImageError, match=words):
            load_reference(path)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.png"
    path.write_bytes(image_bytes())
    path.chmod(0)
    if os.name != "posix" or os.geteuid() == 0:
        # Permissions do not bind root (CI runs as root): refuse the read the way the OS would.
        from krea_desktop.library import inputs

        real = inputs.read_regular_file

        def denied(target: Path, max_bytes: int) -> bytes:
            if target == path:
                raise PermissionError(13, "Permission denied", str(target))
            return real(target, max_bytes)

        monkeypatch.setattr(inputs, "read_regular_file", denied)
    with pytest.raises(InvalidImageError, match="cannot be read"):
        load_reference(path)


def test_too_large_file_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "MAX_FILE_BYTES", 100)
    path = tmp_path / "big.png"
    path.write_bytes(image_bytes((64, 64)))
    size = path.stat().st_size
    with pytest.raises(InvalidImageError) as caught:
        load_reference(path)
    assert str(caught.value) == (
        f"“big.png” is {size:,} bytes, more than the 100 bytes a reference may be; save a smaller copy and use that."
    )


def test_a_file_just_over_the_limit_never_reads_as_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    with path.open("wb") as f:  # sparse: no disk used
        f.truncate(inputs.MAX_FILE_BYTES + 1)
    said = "“huge.png” is 201 MB, more than the 200 MB a reference may be"
    with pytest.raises(InvalidImageError, match=re.escape(said)):
        load_reference(path)


def test_data_uri() -> None:
    data = image_bytes()
    ref = load_reference("data:image/png;base64," + base64.b64encode(data).decode())
    assert ref.data == data
    with pytest.raises(InvalidImageError, match="SVG"):
        load_reference("data:image/svg+xml;base64," + base64.b64encode(SVG).decode())
    with pytest.raises(InvalidImageError, match="not an image"):
        load_reference("data:text/plain,hello")


def test_a_reference_is_named_as_it_would_be_loaded_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "what?.png"
    Image.new("RGB", (8, 8)).save(path)
    assert inputs.reference_label(path) == load_reference(path).source == "what?.png"
    uri = "data:image/png;base64," + base64.b64encode(image_bytes()).decode()
    assert inputs.reference_label(uri) == load_reference(uri).source == "embedded image"
    assert inputs.reference_label("https://example.com/a/cat.png?v=2#f") == "example.com/…/cat.png"
    # credentials written into an address are never repeated in a message
    assert inputs.reference_label("https://ann:hunter2@example.com/a/cat.png") == "example.com/…/cat.png"
    assert inputs.reference_label("https://ann:hunter2@example.com") == "example.com"
    assert inputs.reference_label("0b5e1c2a-3f4d-4e5f-8a9b-0c1d2e3f4a5b") == "0b5e1c2a-3f4d-4e5f-8a9b-0c1d2e3f4a5b"
    # On a sweep's axis: the file's whole name, the address's last part.
    assert short_reference_name(inputs.reference_label(path)) == "what?.png"
    assert short_reference_name(inputs.reference_label("https://example.com/a/cat.png?v=2")) == "cat.png"
    assert short_reference_name("two\nlines\t.png") == "two lines .png"


def test_fetch_url_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    png = image_bytes((33, 22))
    routes = {
        "/cat.png": Route(png),
        "/unlabelled": Route(png, "application/octet-stream"),
        "/s3": Route(png, "binary/octet-stream"),  # Amazon S3's type for an object stored without one
        "/binary": Route(png, "application/binary"),
        "/movie": Route(b"\x00\x00\x00\x18ftypmp42", "video/mp4"),
        "/php": Route(b"<!DOCTYPE html><html><body><svg></svg></body></html>", "application/x-httpd-php"),
        "/wap": Route(b"<html><svg></svg></html>", "application/vnd.wap.xhtml+xml"),
        "/camera": Route(b"--frame\r\nContent-Type: image/jpeg\r\n\r\n", "multipart/x-mixed-replace; boundary=frame"),
        "/untyped-page": Route(b"\n<!-- a page -->\n<html><body><svg></svg></body></html>", "binary/octet-stream"),
        "/page.html": Route(b"<html></html>", "text/html"),
        "/gone.png": Route(b"", "text/plain", 404),
        "/logo.svg": Route(SVG, "image/svg+xml"),
        "/fake.png": Route(b"not really", "image/png"),
        "/slow.png": Route(png, delay=1.0),
    }
    with serving(routes) as web:
        ref = load_reference(f"{web.url}/cat.png")
        assert (ref.width, ref.height) == (33, 22) and ref.source.endswith("cat.png")
        assert load_reference(f"{web.url}/unlabelled").data == png
        assert load_reference(f"{web.url}/s3").data == png
        assert load_reference(f"{web.url}/binary").data == png
        for path, words in {
            "/page.html": "not an image",
            "/movie": "web page or other document",
            "/php": "web page or other document",
            "/wap": "web page or other document",
            "/camera": "web page or other document",
            "/untyped-page": "web page or other document",
            "/gone.png": "404",
            "/logo.svg": "SVG",
            "/fake.png": "not an image Krea Desktop can read",
        }.items():
            with pytest.raises(InvalidImageError, match=words):
                load_reference(f"{web.url}{path}")
        with pytest.raises(InvalidImageError, match="larger than"):
            fetch_url(f"{web.url}/cat.png", max_bytes=10)
        with pytest.raises(InvalidImageError, match="took longer"):
            fetch_url(f"{web.url}/slow.png", timeout=0.2)
    with pytest.raises(InvalidImageError, match="could not be downloaded"):
        fetch_url(web.url + "/cat.png", timeout=2)  # the server is gone


def test_a_reference_on_this_computer_is_fetched_past_a_proxy_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTP_PROXY names a proxy (one that is down, here): an address on this computer is
    not sent through it, as the service's client sends nothing for loopback through it."""
    for var in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # the discard port: nothing answers
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with serving({"/cat.png": Route(image_bytes((33, 22)))}) as web:
        assert fetch_url(f"{web.url}/cat.png", timeout=5) == image_bytes((33, 22))


def test_store_copy_is_named_by_content(tmp_path: Path) -> None:
    ref = load_reference(image_bytes())
    path = store_copy(ref, tmp_path / "refs")
    assert path == tmp_path / "refs" / ref.file_name
    assert path.read_bytes() == ref.data
    assert store_copy(ref, tmp_path / "refs") == path
    assert [p.name for p in (tmp_path / "refs").iterdir()] == [ref.file_name]  # no temporary files left


def _gif_with_a_second_frame_cut_short() -> bytes:
    buf = io.BytesIO()
    Image.new("P", (4, 4)).save(buf, "GIF")
    return buf.getvalue()[:-1] + b",\0\0\0\0\4\0\4\0\0"  # a frame's descriptor, then nothing


def _tiff_with_strip_offsets_of_the_wrong_type() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (4, 4)).save(buf, "TIFF")
    data = bytearray(buf.getvalue())
    ifd = struct.unpack_from("<I", data, 4)[0]
    for i in range(struct.unpack_from("<H", data, ifd)[0]):
        at = ifd + 2 + 12 * i
        if struct.unpack_from("<H", data, at)[0] == 0x0111:  # StripOffsets, made a FLOAT
            struct.pack_into("<HHI", data, at, 0x0111, 11, 1)
    return bytes(data)


@pytest.mark.parametrize(
    ("name", "make"),
    [("cut.gif", _gif_with_a_second_frame_cut_short), ("odd.tif", _tiff_with_strip_offsets_of_the_wrong_type)],
)
def test_a_file_that_trips_the_decoder_in_other_ways_is_refused_in_one_sentence(
    tmp_path: Path, name: str, make: Any
) -> None:
    path = tmp_path / name
    path.write_bytes(make())
    with pytest.raises(InvalidImageError, match=re.escape(f"“{name}” is damaged")):
        load_reference(path)


@pytest.mark.parametrize("padding", [b"\xff\xfe\x00\x02", b"\xff"])  # empty comments; fill bytes
def test_a_jpeg_padded_to_make_the_decoder_crawl_is_refused_at_once(tmp_path: Path, padding: bytes) -> None:
    from krea_desktop.library.metadata import MAX_PARTS

    jpeg = image_bytes((8, 8), fmt="JPEG")
    path = tmp_path / "crawl.jpg"
    path.write_bytes(jpeg[:2] + padding * (MAX_PARTS + 10) + jpeg[2:])
    said = "“crawl.jpg” has more than 50,000 blocks of metadata, which no real image has, so it was not opened."
    with pytest.raises(InvalidImageError, match=re.escape(said)):
        load_reference(path)


def _display_p3() -> bytes:
    from PySide6.QtGui import QColorSpace  # a profile Qt makes: no file of one is needed

    return bytes(QColorSpace(QColorSpace.NamedColorSpace.DisplayP3).iccProfile().data())


@pytest.mark.parametrize("orientation", [1, 6])
def test_a_reference_with_another_colour_profile_is_sent_in_srgb(orientation: int) -> None:
    """A picture made in Display P3 or Adobe RGB was sent with its numbers as they were,
    its profile left behind wherever it was encoded again (turned upright, made smaller):
    the service, which takes pixels as sRGB, got its colours shifted."""
    from PIL import ImageCms

    p3 = (200, 100, 50)
    img = Image.new("RGB", (60, 20), p3)
    exif = img.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, "PNG", icc_profile=_display_p3(), exif=exif)
    source = ImageCms.ImageCmsProfile(io.BytesIO(_display_p3()))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    expected = ImageCms.profileToProfile(img, source, srgb, outputMode="RGB").getpixel((0, 0))
    ref = load_reference(buf.getvalue())
    sent = _open(ref.data).convert("RGB")
    assert sent.getpixel((0, 0)) == pytest.approx(expected, abs=2)
    assert sent.getpixel((0, 0)) != pytest.approx(p3, abs=6)
    thumbnail = _open(ref.thumbnail).convert("RGB")
    assert thumbnail.getpixel((0, 0)) == pytest.approx(expected, abs=3)


def test_a_grey_picture_with_its_own_profile_is_sent_as_it_is_shown() -> None:
    """A grey profile applies to grey pixels, not to the RGB made of them: it was left out,
    and the picture sent darker or lighter than shown (and carrying a grey profile on RGB
    pixels, which readers refuse)."""
    from PIL import ImageCms
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QColorSpace

    grey = QColorSpace(QPointF(0.3127, 0.3290), QColorSpace.TransferFunction.Gamma, 1.8)
    profile = bytes(grey.iccProfile().data())
    img = Image.new("L", (30, 20), 100)
    buf = io.BytesIO()
    img.save(buf, "PNG", icc_profile=profile)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    expected = ImageCms.profileToProfile(img, ImageCms.ImageCmsProfile(io.BytesIO(profile)), srgb, outputMode="RGB")
    sent = _open(load_reference(buf.getvalue()).data)
    assert sent.getpixel((0, 0)) == pytest.approx(expected.getpixel((0, 0)), abs=2)
    assert sent.getpixel((0, 0)) != pytest.approx((100, 100, 100), abs=4)
    assert "icc_profile" not in sent.info


@pytest.mark.parametrize("mode", ["P", "I;16"])
def test_a_palette_or_16_bit_picture_with_a_profile_is_sent_as_it_is_shown(mode: str) -> None:
    """A palette picture's colours, and a 16-bit grey one's, are in its profile's space:
    the screen converted them, the reference went out as its numbers were."""
    from PIL import ImageCms
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QColorSpace

    if mode == "P":
        profile = _display_p3()
        img = Image.new("RGB", (30, 20), (200, 100, 50)).convert("P")
        reference = img.convert("RGB")
    else:
        grey = QColorSpace(QPointF(0.3127, 0.3290), QColorSpace.TransferFunction.Gamma, 1.8)
        profile = bytes(grey.iccProfile().data())
        img = Image.new("I;16", (30, 20), 100 * 257)
        reference = Image.new("L", (30, 20), 100)
    buf = io.BytesIO()
    img.save(buf, "PNG", icc_profile=profile)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    expected = ImageCms.profileToProfile(
        reference, ImageCms.ImageCmsProfile(io.BytesIO(profile)), srgb, outputMode="RGB"
    )
    sent = _open(load_reference(buf.getvalue()).data).convert("RGB")
    assert sent.getpixel((0, 0)) == pytest.approx(expected.getpixel((0, 0)), abs=3)
    assert sent.getpixel((0, 0)) != pytest.approx(reference.convert("RGB").getpixel((0, 0)), abs=4)

"""Image files read on workers: by their bytes, never by Qt probing a path."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from PySide6.QtCore import QSize

from krea_desktop.ui import pixels
from krea_desktop.ui.pixels import image_format, read_image_file
from krea_desktop.ui.viewer.canvas import ImageUnreadable, decode_image_file, decode_thumbnail_file
from tests.helpers.images import SVG, huge_header_png, image_bytes


@pytest.mark.parametrize(
    ("fmt", "name"),
    [("PNG", b"png"), ("JPEG", b"jpeg"), ("WEBP", b"webp"), ("GIF", b"gif"), ("BMP", b"bmp")],
)
def test_each_format_a_library_holds_is_known_by_its_first_bytes(fmt: str, name: bytes) -> None:
    assert image_format(image_bytes(fmt=fmt)[:16]) == name


def test_bytes_that_are_no_such_image_have_no_format() -> None:
    assert image_format(SVG[:16]) is None
    assert image_format(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None  # a sound, not a WebP
    assert image_format(b"") is None
    assert image_format(image_bytes(fmt="TIFF")[:16]) is None  # no library holds one


def test_a_jpegs_size_is_read_from_its_frame_header() -> None:
    data = image_bytes((300, 200), fmt="JPEG")
    assert pixels.jpeg_size(data) == QSize(300, 200)
    assert pixels.jpeg_size(data[:20]) is None  # ends before it
    # Stray bytes between segments are skipped, as decoders skip them.
    assert pixels.jpeg_size(data[:20] + b"\x00\x00" + data[20:]) == QSize(300, 200)
    assert pixels.jpeg_size(b"\xff\xd8" + b"\x00" * 20) is None  # no marker yet
    # Thousands of segments before a frame: taken for no JPEG, not walked for seconds.
    assert pixels.jpeg_size(b"\xff\xd8" + b"\xff\xfe\x00\x02" * 100_000 + data[2:]) == QSize()
    assert pixels.jpeg_size(b"\xff\xd8\xff\xd9") == QSize()  # ends with no frame


def test_a_file_is_read_as_what_its_bytes_are_whatever_its_name_says(tmp_path: Path) -> None:
    png_named_jpg = tmp_path / "really-a.jpg"
    png_named_jpg.write_bytes(image_bytes((60, 40), fmt="PNG"))
    jpeg_named_png = tmp_path / "really-a.png"
    jpeg_named_png.write_bytes(image_bytes((60, 40), fmt="JPEG"))
    for path in (png_named_jpg, jpeg_named_png):
        image = read_image_file(path)
        assert (image.width(), image.height()) == (60, 40)
        red, green, blue = image.pixelColor(30, 20).getRgb()[:3]
        assert red > 180 and green < 70 and blue < 60


def test_a_file_whose_bytes_are_no_library_image_is_not_probed_by_qt(tmp_path: Path) -> None:
    """Probing runs every plugin over the file (Qt's SVG plugin, which takes one of Qt's
    shared locks, among them): a drawing named ``.png`` is left unread, not rendered."""
    disguised = tmp_path / "drawing.png"
    disguised.write_bytes(SVG)
    assert read_image_file(disguised).isNull()
    with pytest.raises(ImageUnreadable, match=r"^drawing\.png could not be read\.$"):
        decode_thumbnail_file(disguised, 56)
    with pytest.raises(ImageUnreadable, match=r"it is damaged or not an image\.$"):
        decode_image_file(disguised)


def test_fit_gives_the_size_the_image_is_decoded_at(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(image_bytes((300, 200), fmt="PNG"))
    seen: list[QSize] = []

    def fit(size: QSize) -> QSize:
        seen.append(size)
        return QSize(150, 100)

    image = read_image_file(path, fit)
    assert seen == [QSize(300, 200)]
    assert (image.width(), image.height()) == (150, 100)
    assert read_image_file(path, lambda _size: None).size() == QSize(300, 200)  # None: its own size
    thumbnail = decode_thumbnail_file(path, 60)
    assert (thumbnail.width(), thumbnail.height()) == (60, 40)


def test_a_size_found_past_the_first_bytes_is_found(tmp_path: Path) -> None:
    """A JPEG's metadata (a camera's, say) can come before its size: 100 KB of it here."""
    path = tmp_path / "camera.jpg"
    plain = image_bytes((300, 200), fmt="JPEG")
    comment = b"\xff\xfe" + (50_002).to_bytes(2, "big") + b"x" * 50_000  # two comment segments
    path.write_bytes(plain[:2] + comment * 2 + plain[2:])
    assert pixels.HEAD_BYTES < 100_000
    assert pixels.jpeg_size(path.read_bytes()[: pixels.HEAD_BYTES]) is None  # not in the first bytes
    image = read_image_file(path, lambda size: QSize(size.width() // 2, size.height() // 2))
    assert (image.width(), image.height()) == (150, 100)


def test_a_damaged_or_missing_file_says_so(tmp_path: Path) -> None:
    cut = tmp_path / "cut.png"
    cut.write_bytes(image_bytes((300, 200), fmt="PNG")[:40])  # the header, and no pixels
    with pytest.raises(ImageUnreadable, match=r"^The file cut\.png could not be read: it is damaged"):
        decode_image_file(cut)
    with pytest.raises(ImageUnreadable, match=r"^The file gone\.png is no longer in the library folder\.$"):
        decode_image_file(tmp_path / "gone.png")
    with pytest.raises(FileNotFoundError):
        read_image_file(tmp_path / "gone.png")


@given(st.binary(max_size=300))
def test_any_bytes_give_a_jpeg_size_or_none_and_never_an_error(data: bytes) -> None:
    found = pixels.jpeg_size(b"\xff\xd8" + data)
    assert found is None or isinstance(found, QSize)


def test_a_file_of_any_bytes_named_like_an_image_is_read_or_left_null(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    for data in (
        b"",
        b"\xff\xd8",
        b"\xff\xd8\xff\xc0\x00",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 8,
        b"RIFF\x00\x00\x00\x00WEBP",
    ):
        broken.write_bytes(data)
        assert read_image_file(broken, lambda size: size).isNull()


def test_a_png_with_much_text_before_its_pixels_is_read(tmp_path: Path) -> None:
    """Another tool's workflow, hundreds of KB of text chunks, comes before the pixels:
    the size is in the header chunk, which always comes first."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("workflow", "x" * 300_000)
    path = tmp_path / "workflow.png"
    Image.new("RGB", (300, 200), (200, 40, 30)).save(path, pnginfo=info)
    image = read_image_file(path, lambda size: QSize(size.width() // 2, size.height() // 2))
    assert (image.width(), image.height()) == (150, 100)
    assert decode_thumbnail_file(path, 60).size() == QSize(60, 40)


def test_an_animated_webp_larger_than_its_first_bytes_is_read(tmp_path: Path) -> None:
    frames = [Image.effect_noise((300, 200), 80 + 20 * i).convert("RGB") for i in range(3)]
    path = tmp_path / "loop.webp"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, lossless=True)
    assert path.stat().st_size > pixels.HEAD_BYTES
    assert decode_thumbnail_file(path, 60).size() == QSize(60, 40)


@pytest.mark.skipif(os.name == "nt", reason="Windows refuses to delete a file that is open")
def test_a_file_deleted_while_it_is_read_is_still_read_whole(tmp_path: Path) -> None:
    """Between the first bytes and the pixels, the file is renamed or deleted (the gallery
    deleting it, a sync tool replacing it): what was opened is what is read, and Qt has
    nothing to complain of."""
    path = tmp_path / "going.png"
    path.write_bytes(image_bytes((300, 200), fmt="PNG"))

    def gone(size: QSize) -> QSize:
        path.unlink()
        return size

    image = read_image_file(path, gone)
    assert image.size() == QSize(300, 200) and not path.exists()


@pytest.mark.qt_log_ignore(r"Corrupt JPEG data: 2 extraneous bytes before marker")
def test_a_jpeg_with_stray_bytes_between_segments_is_read(tmp_path: Path) -> None:
    """As decoders read it (libjpeg says what it skipped, in the log)."""
    data = image_bytes((300, 200), fmt="JPEG")
    path = tmp_path / "stray.jpg"
    path.write_bytes(data[:20] + b"\x00\x00" + data[20:])
    image = read_image_file(path, lambda size: size)
    assert image.size() == QSize(300, 200)


def test_a_png_whose_header_gives_a_side_beyond_any_image_is_left_null(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    path.write_bytes(huge_header_png(2**31, 10))
    assert read_image_file(path, lambda size: size).isNull()
    with pytest.raises(ImageUnreadable, match=r"^wide\.png could not be read\.$"):
        decode_thumbnail_file(path, 56)


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("lossy", {"quality": 80}),
        ("lossless", {"lossless": True}),
        ("lossy with alpha", {"quality": 80, "alpha": True}),
        ("animated", {"save_all": True, "frames": 3}),
    ],
)
def test_a_webps_size_is_read_from_its_first_chunk(kind: str, options: dict[str, object]) -> None:
    """As Pillow reads it, for each kind of WebP; an animated one without Qt reading the
    whole file to find it."""
    opts = dict(options)
    frames = [Image.effect_noise((301, 203), 60 + 10 * i).convert("RGBA") for i in range(int(opts.pop("frames", 1)))]
    if opts.pop("alpha", False):
        frames[0].putalpha(0)  # see-through, but for an opaque corner
        frames[0].paste((200, 40, 30, 255), (0, 0, 150, 100))
    else:
        frames = [frame.convert("RGB") for frame in frames]
    out = io.BytesIO()
    frames[0].save(out, "WEBP", append_images=frames[1:], **opts)
    data = out.getvalue()
    assert data[12:16] == {"lossy": b"VP8 ", "lossless": b"VP8L"}.get(kind, b"VP8X")  # each kind of first chunk
    with Image.open(io.BytesIO(data)) as im:
        assert pixels.webp_size(data[: pixels.HEAD_BYTES]) == QSize(*im.size) == QSize(301, 203)
    assert pixels.webp_size(data[:20]) == QSize()  # too short to say


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_in_an_images_place_is_refused_at_once(tmp_path: Path) -> None:
    """A named pipe under an image's name (a sync tool, a hostile archive): reading it
    would wait for a writer that never comes, holding a worker, and the window's close
    waits for the workers. It is refused as no regular file, at once."""
    import threading

    from krea_desktop.fsutil import NotARegularFile
    from krea_desktop.ui.gallery.model import ImageMimeData

    path = tmp_path / "pipe.png"
    os.mkfifo(path)
    outcome: list[object] = []

    def read() -> None:
        try:
            outcome.append(read_image_file(path, lambda size: size))
        except OSError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(5)
    if worker.is_alive():  # a writer ends the wait, so that the test ends too
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(5)
    assert len(outcome) == 1 and isinstance(outcome[0], NotARegularFile), outcome
    # A drop target asking a dragged image for its pixels: nothing, at once.
    assert ImageMimeData([path]).retrieveData(ImageMimeData.IMAGE_FORMAT, None) is None


def _display_p3() -> bytes:
    from PySide6.QtGui import QColorSpace

    return bytes(QColorSpace(QColorSpace.NamedColorSpace.DisplayP3).iccProfile().data())


def _as_srgb(p3: tuple[int, int, int]) -> tuple[int, int, int]:
    from PySide6.QtGui import QColor, QColorSpace

    to_srgb = QColorSpace(QColorSpace.NamedColorSpace.DisplayP3).transformationToColorSpace(
        QColorSpace(QColorSpace.NamedColorSpace.SRgb)
    )
    return to_srgb.map(QColor(*p3)).getRgb()[:3]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_picture_with_another_colour_profile_is_shown_in_its_own_colours(
    qapp: object, tmp_path: Path, fmt: str
) -> None:
    """A picture made in Display P3 (a Mac's, a phone's) or Adobe RGB was shown with its
    numbers taken as sRGB: shifted in hue and saturation."""
    p3 = (200, 100, 50)
    path = tmp_path / f"p3.{fmt.lower()}"
    Image.new("RGB", (40, 30), p3).save(path, fmt, icc_profile=_display_p3(), quality=100)
    image = read_image_file(path)
    shown = image.pixelColor(20, 15).getRgb()[:3]
    assert shown == pytest.approx(_as_srgb(p3), abs=3)
    assert shown != pytest.approx(p3, abs=6)  # not the file's numbers as they are
    thumb = decode_thumbnail_file(path, 16)
    assert thumb.pixelColor(8, 6).getRgb()[:3] == pytest.approx(_as_srgb(p3), abs=4)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_png_or_webp_is_shown_as_its_exif_orientation_says(
    qapp: object, tmp_path: Path, fmt: str, orientation: int
) -> None:
    """Qt turns only a JPEG by its orientation: a PNG or a WEBP was shown on its side in the
    gallery and the viewer, while the reference sent was upright."""
    from PIL import ImageOps

    img = Image.new("RGB", (6, 4))
    img.putdata([(x * 40, y * 60, 0) for y in range(4) for x in range(6)])
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"turned.{fmt.lower()}"
    img.save(path, fmt, exif=exif, lossless=True)
    with Image.open(path) as stored:
        upright = ImageOps.exif_transpose(stored).convert("RGB")
    shown = read_image_file(path, auto_transform=True)
    assert (shown.width(), shown.height()) == upright.size
    pixels = [shown.pixelColor(x, y).getRgb()[:3] for y in range(shown.height()) for x in range(shown.width())]
    assert bytes(v for p in pixels for v in p) == upright.tobytes()


def _with_chunk(png: bytes, kind: bytes, body: bytes, *, after_pixels: bool) -> bytes:
    import struct
    import zlib

    chunk = struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    at = len(png) - 12 if after_pixels else 8 + 25  # before IEND, or right after IHDR
    return png[:at] + chunk + png[at:]


def test_a_png_whose_orientation_comes_after_its_pixels_is_shown_turned(qapp: object, tmp_path: Path) -> None:
    """eXIf belongs before the pixels, but some files carry it after them: Pillow finds it
    there (the reference sent, the size stored were turned) and the screen did not."""
    buf = io.BytesIO()
    Image.new("RGB", (30, 20), (200, 40, 40)).save(buf, "PNG")
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "late.png"
    path.write_bytes(_with_chunk(buf.getvalue(), b"eXIf", exif.tobytes(), after_pixels=True))
    shown = read_image_file(path, auto_transform=True)
    assert (shown.width(), shown.height()) == (20, 30)


def test_a_png_with_a_gamma_is_shown_alike_whatever_its_size(qapp: object, tmp_path: Path) -> None:
    """Qt makes a colour space of a PNG's gAMA too: a small file with one was shown
    unconverted and the same picture past 64 KiB converted."""
    import struct

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (100, 100, 100)).save(buf, "PNG")
    gamma = struct.pack(">I", 100_000)  # 1.0
    small = _with_chunk(buf.getvalue(), b"gAMA", gamma, after_pixels=False)
    padded = _with_chunk(small, b"tEXt", b"note\x00" + b"x" * 70_000, after_pixels=False)
    (tmp_path / "small.png").write_bytes(small)
    (tmp_path / "padded.png").write_bytes(padded)
    colours = [read_image_file(tmp_path / n).pixelColor(4, 4).getRgb()[:3] for n in ("small.png", "padded.png")]
    assert colours[0] == colours[1] and colours[0] != (100, 100, 100), colours

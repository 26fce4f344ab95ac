"""Files that cannot be opened are refused with the reason that fits: a link that loops, a
link to nothing, no permission, or another error the system gives."""

from __future__ import annotations

import errno
import io
import os
import struct
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from krea_desktop.library import inputs
from krea_desktop.library.inputs import InvalidImageError, load_reference
from tests.helpers.images import image_bytes

pytestmark = pytest.mark.skipif(os.name != "posix", reason="symbolic links and errno values as POSIX has them")


def refusal(path: Path) -> str:
    with pytest.raises(InvalidImageError) as caught:
        load_reference(path)
    return str(caught.value)


def test_a_link_that_loops_is_not_called_a_permission_problem(tmp_path: Path) -> None:
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.symlink_to(b)
    b.symlink_to(a)
    for path in (loop, a):
        text = refusal(path)
        assert "permission" not in text
        circle = "is a link that goes round in a circle and leads to no file"
        assert text == f"“{path.name}” {circle}; use the image itself instead."


def test_a_link_to_nothing_says_so(tmp_path: Path) -> None:
    dangling = tmp_path / "dangling.png"
    dangling.symlink_to(tmp_path / "nowhere.png")
    assert refusal(dangling) == (
        "“dangling.png” is a link to a file that does not exist; use the image it was meant to lead to."
    )
    assert refusal(tmp_path / "gone.png") == "“gone.png” does not exist; it may have been moved or deleted."


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.EACCES, "check that you have permission to open it"),
        (errno.EPERM, "check that you have permission to open it"),
        (errno.EIO, "cannot be read (Input/output error); check that it is still there and try again"),
    ],
)
def test_a_read_that_fails_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, words: str) -> None:
    path = tmp_path / "picture.png"
    path.write_bytes(image_bytes())

    def failing(target: Path, max_bytes: int) -> bytes:
        raise OSError(code, os.strerror(code), str(target))

    monkeypatch.setattr(inputs, "read_regular_file", failing)
    text = refusal(path)
    assert text.startswith("“picture.png” cannot be read") and words in text
    assert ("permission" in text) == (code in (errno.EACCES, errno.EPERM))


def test_looks_like_image_file(tmp_path: Path) -> None:
    looks_like_image_file = inputs.looks_like_image_file
    png = tmp_path / "a.png"
    png.write_bytes(image_bytes())
    jpeg = tmp_path / "b.jpg"
    jpeg.write_bytes(image_bytes(fmt="JPEG"))
    words = tmp_path / "notes.png"
    words.write_bytes(b"hello words")
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    assert looks_like_image_file(png) and looks_like_image_file(jpeg)
    assert not looks_like_image_file(words)
    assert not looks_like_image_file(fifo)  # without waiting for a writer
    assert not looks_like_image_file(tmp_path / "missing.png")
    assert not looks_like_image_file(tmp_path)


def test_only_temporary_files_nobody_writes_are_removed(tmp_path: Path) -> None:
    """Every ``.*.tmp`` in references/ was removed as the window opened, a copy another
    process (a command line run beside it) was writing that moment too."""
    import subprocess
    import sys
    import time

    dead = int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout
    )
    names = {
        "ended": f".copy-{dead}-a1b2c3.tmp",
        "running": f".copy-{os.getpid()}-d4e5f6.tmp",
        "unsaid, fresh": ".photo.png.g7h8i9.tmp",
        "unsaid, old": ".photo.png.j1k2l3.tmp",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"half")
    two_hours_ago = time.time() - 7200
    os.utime(tmp_path / names["unsaid, old"], (two_hours_ago, two_hours_ago))
    removed = inputs.remove_stale_temp_files(tmp_path)
    assert sorted(p.name for p in removed) == sorted([names["ended"], names["unsaid, old"]])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([names["running"], names["unsaid, fresh"]])


def test_a_copy_is_written_through_a_temporary_file_named_for_its_process(tmp_path: Path) -> None:
    seen: list[str] = []
    real = inputs.atomic_write

    def watched(path: Path, data: bytes, **kwargs: object) -> None:
        seen.append(str(kwargs.get("prefix")))
        real(path, data, **kwargs)  # type: ignore[arg-type]

    source = tmp_path / "photo.png"
    source.write_bytes(image_bytes())
    folder = tmp_path / "references"
    folder.mkdir()
    inputs.atomic_write = watched  # type: ignore[assignment]
    try:
        inputs.store_copy(load_reference(source), folder)
    finally:
        inputs.atomic_write = real
    assert seen == [f".copy-{os.getpid()}-"]


def test_an_avif_of_the_heif_brand_looks_like_an_image(tmp_path: Path) -> None:
    """Many AVIF files name HEIF's brand (mif1) first, with avif among the compatible ones."""
    path = tmp_path / "photo.avif"
    path.write_bytes(b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf" + b"\x00" * 64)
    assert inputs.looks_like_image_file(path)


def _many_parts_png() -> bytes:
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    png = buf.getvalue()
    return png[:33] + b"".join(chunk(b"tEXt", b"k\x00v") for _ in range(60_000)) + png[33:]


def _cut_short(fmt: str) -> bytes:
    """A picture whose header is whole and whose pixels stop halfway (a copy that stopped)."""
    buf = io.BytesIO()
    Image.effect_noise((96, 64), 60).convert("RGB").save(buf, fmt)
    return buf.getvalue()[: buf.tell() // 2]


def _flipped_png() -> bytes:
    """A PNG of the right length with one byte of its pixels changed (its checksum wrong)."""
    buf = io.BytesIO()
    Image.effect_noise((96, 64), 60).convert("RGB").save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[data.index(b"IDAT") + 40] ^= 0xFF
    return bytes(data)


def _camera_photo() -> bytes:
    """A JPEG as a camera writes it: an EXIF block holding a thumbnail, itself a JPEG with
    its own end marker, before the photo's pixels."""
    thumb_buf = io.BytesIO()
    Image.effect_noise((160, 120), 60).convert("RGB").save(thumb_buf, "JPEG")
    thumb = thumb_buf.getvalue()
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 0) + struct.pack("<I", 14)  # IFD0, then IFD1
    tiff += (
        struct.pack("<H", 2) + struct.pack("<HHII", 0x0201, 4, 1, 44) + struct.pack("<HHII", 0x0202, 4, 1, len(thumb))
    )
    tiff += struct.pack("<I", 0) + thumb
    buf = io.BytesIO()
    Image.effect_noise((400, 300), 60).convert("RGB").save(buf, "JPEG", exif=b"Exif\x00\x00" + tiff)
    return buf.getvalue()


def _png_with_a_text_pillow_refuses() -> bytes:
    """A PNG whose compressed text inflates past Pillow's limit (a large workflow, an
    ImageMagick comment): loaded without that text, as a reference it is fine."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(buf, "PNG")
    png = buf.getvalue()
    return png[:33] + chunk(b"zTXt", b"comment\x00\x00" + zlib.compress(b"a" * (9 << 20))) + png[33:]


@pytest.mark.parametrize("content", [_camera_photo, _png_with_a_text_pillow_refuses])
def test_a_whole_image_a_decode_would_take_is_not_refused_by_its_header(tmp_path: Path, content: Any) -> None:
    from krea_desktop.library.inputs import header_refusal

    path = tmp_path / "whole.img"
    path.write_bytes(content())
    assert load_reference(path).width > 0
    assert header_refusal(path) is None


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("many.png", _many_parts_png),
        ("page.png", lambda: b"<!DOCTYPE html><html><body>not found</body></html>"),
        ("drawing.png", lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"></svg>'),
        ("empty.png", lambda: b""),
        ("words.png", lambda: b"these are words, not pixels"),
        ("cut.jpg", lambda: b"\xff\xd8\xff\xe0garbage" * 20),
        ("half.png", lambda: _cut_short("PNG")),
        ("half.jpg", lambda: _cut_short("JPEG")),
        ("flipped.png", _flipped_png),
        ("camera.jpg", lambda: _camera_photo()[: len(_camera_photo()) // 2]),
    ],
)
def test_a_dropped_files_header_is_judged_in_the_sentence_loading_it_gives(
    tmp_path: Path, name: str, content: Any
) -> None:
    # The offer of a drop says at once what adding the file would say after a decode.
    from krea_desktop.library.inputs import header_refusal

    path = tmp_path / name
    path.write_bytes(content())
    with pytest.raises(InvalidImageError) as refused:
        load_reference(path)
    assert header_refusal(path) == str(refused.value)

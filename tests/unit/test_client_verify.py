"""The client's check of a finished image (``response.verify_image``) reads PNG, JPEG and
WEBP containers itself: it must agree with Pillow on every image Pillow writes, and refuse
every image cut short."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from krea_desktop.api import errors as E
from krea_desktop.api.response import verify_image

SIZES = [(1, 1), (8, 6), (300, 200), (1568, 672)]
WRITERS = [
    ("PNG", "PNG", {}),
    ("JPG", "JPEG", {"quality": 90}),
    ("JPG", "JPEG", {"progressive": True}),
    ("WEBP", "WEBP", {"quality": 80}),  # VP8
    ("WEBP", "WEBP", {"lossless": True}),  # VP8L
]


def encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **kw)
    return out.getvalue()


def cases() -> list[tuple[str, int, int, bytes]]:
    out = []
    for w, h in SIZES:
        for mode in ("RGB", "L", "RGBA"):
            im = Image.effect_noise((w, h), 40).convert(mode)
            for name, fmt, kw in WRITERS:
                if fmt == "JPEG" and mode == "RGBA":
                    continue
                out.append((name, w, h, encode(im, fmt, **kw)))
    out.append(("WEBP", 50, 40, encode(Image.new("RGBA", (50, 40), (1, 2, 3, 100)), "WEBP", quality=80)))  # VP8X
    out.append(("JPG", 64, 48, encode(Image.new("RGB", (64, 48)), "JPEG", exif=b"Exif\x00\x00" + b"\x00" * 64)))
    return out


CASES = cases()
IDS = [f"{c[0]}-{c[1]}x{c[2]}-{i}" for i, c in enumerate(CASES)]


@pytest.mark.parametrize(("fmt", "w", "h", "data"), CASES, ids=IDS)
def test_agrees_with_pillow_and_refuses_every_cut(fmt: str, w: int, h: int, data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (w, h)
    checked = verify_image(data, w, h)
    assert (checked.format, checked.width, checked.height) == (fmt, w, h)
    with pytest.raises(E.MalformedResponseError, match=f"{w}×{h} instead of {w + 1}×{h}"):
        verify_image(data, w + 1, h)
    rng = random.Random(len(data))
    for cut in {1, 12, len(data) // 2, len(data) - 2, len(data) - 1, *(rng.randrange(1, len(data)) for _ in range(8))}:
        with pytest.raises(E.MalformedResponseError):
            verify_image(data[:cut], w, h)


def test_a_damaged_png_chunk_is_found_by_its_crc() -> None:
    data = bytearray(encode(Image.effect_noise((64, 64), 40).convert("RGB"), "PNG"))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(E.MalformedResponseError, match="damaged or incomplete"):
        verify_image(bytes(data), 64, 64)


@pytest.mark.parametrize(("data", "name"), [(b"GIF89a" + b"\x00" * 20, "GIF"), (b"BM" + b"\x00" * 40, "BMP"),
                                            (b"not an image at all", "not PNG, JPEG or WEBP")])  # fmt: skip
def test_other_formats_are_named(data: bytes, name: str) -> None:
    with pytest.raises(E.MalformedResponseError, match=f"unexpected format \\({name}\\)"):
        verify_image(data, 1, 1)

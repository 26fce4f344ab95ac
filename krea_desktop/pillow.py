"""Pillow, as the app opens pictures with it: ``from krea_desktop.pillow import Image``.

Pillow refuses a whole PNG whose compressed text chunk (zTXt, or compressed iTXt) inflates
to more than 1 MB, as a guard against text bombs: a ComfyUI image with a large workflow,
or any text of 128 characters or more written by ImageMagick, then could not be opened,
and was called damaged. The app reads those texts itself, within its own limits
(``library.metadata``); here one such text may inflate to 8 MB, all of a picture's texts
still to Pillow's 64 MB at most (``MAX_TEXT_MEMORY``, which it keeps). A PNG whose texts go
beyond even that (a text bomb, a workflow of tens of megabytes) is opened without its texts
(:func:`open_image`): its pixels are the picture all the same."""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator
from typing import IO, Any

from PIL import Image, PngImagePlugin, UnidentifiedImageError

TEXT_CHUNK_BYTES = 8 * 1024 * 1024

if PngImagePlugin.MAX_TEXT_CHUNK < TEXT_CHUNK_BYTES:
    PngImagePlugin.MAX_TEXT_CHUNK = TEXT_CHUNK_BYTES

__all__ = [
    "Image",
    "UnidentifiedImageError",
    "exif_orientation",
    "grey_8",
    "in_srgb",
    "open_image",
    "png_without_refused_texts",
    "to_rgb",
    "upright",
]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
# Chunks looked at in one PNG (200 MB of the 8 KB pieces libpng writes comes to 25,000; a
# million takes about a second to walk, and Pillow several to load); past them Pillow
# decides, as it would have.
_MOST_CHUNKS = 1 << 20
_DEFLATE_MOST = 1032  # deflate makes 1 byte of 1,032 at best


def open_image(source: str | os.PathLike[str] | IO[bytes], formats: tuple[str, ...] | None = None) -> Image.Image:
    """``Image.open(source, formats)``; but a PNG holding texts Pillow would refuse (a
    compressed text inflating past ``MAX_TEXT_CHUNK``, or more than ``MAX_TEXT_MEMORY`` of
    text in all, before its pixels or after them) is opened without those texts
    (:func:`png_without_refused_texts`), rather than refused whole, at open or at
    ``load()``, as damaged. ``source``: a path or a binary file open for reading (read
    from where it stands, and put back there)."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb", buffering=0) as f:  # a chunk header read at a time, not the file around it
            data = png_without_refused_texts(f)
    else:
        data = png_without_refused_texts(source)
    return Image.open(source if data is None else io.BytesIO(data), formats=formats)


class _Reader:
    """Bytes of a file at places counted from where it stood (put back there at the end);
    a chunk is read only where it must be, in one call where the system has one for it."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.start = f.tell()
        self.size = f.seek(0, os.SEEK_END) - self.start
        self.fd: int | None = None
        if hasattr(os, "pread") and not isinstance(f, io.BytesIO):
            try:
                self.fd = f.fileno()
            except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation included
                self.fd = None

    def at(self, pos: int, n: int) -> bytes:
        if self.fd is not None:
            return os.pread(self.fd, n, self.start + pos)
        self.f.seek(self.start + pos)
        return self.f.read(n)


def png_without_refused_texts(png: bytes | IO[bytes]) -> bytes | None:
    """The PNG ``png`` (bytes, or a binary file from where it stands, put back there)
    without the text chunks Pillow would refuse, when it holds any; otherwise None (not a
    PNG, or one Pillow takes as it is).

    Chunk headers are read and the rest skipped. Only when a compressed text could inflate
    past the limit on its own, or the texts past the limit in all, are they inflated, as
    far as the limits and no further (all of them together within ``MAX_TEXT_MEMORY`` and
    ``MAX_TEXT_CHUNK`` more). Left out are: a text that inflates past ``MAX_TEXT_CHUNK``;
    one that does not inflate (Pillow reads it as empty, after inflating it all the same);
    one compressed in a way Pillow refuses; those the limit in all leaves no time to
    inflate; and then the largest, until the rest come within ``MAX_TEXT_MEMORY``. Every
    other chunk is kept as it was, its checksum with it."""
    f = io.BytesIO(png) if isinstance(png, (bytes, bytearray)) else png
    reader = _Reader(f)
    try:
        if reader.at(0, 8) != _PNG_SIGNATURE:
            return None
        texts = [(pos, length, kind) for pos, length, kind in _chunks(reader) if kind in _TEXT_CHUNKS]
        if not _may_be_refused(reader, texts):
            return None
        left_out = _texts_refused(reader, texts)
        if not left_out:
            return None
        out = bytearray()
        kept_from = 0
        for pos, length in sorted(left_out):
            out += reader.at(kept_from, pos - kept_from)
            kept_from = pos + 12 + length
        out += reader.at(kept_from, reader.size - kept_from)
        return bytes(out)
    finally:
        f.seek(reader.start)


def _chunks(reader: _Reader) -> Iterator[tuple[int, int, bytes]]:
    """Each whole chunk's place, data length and type, up to IEND; a chunk cut short ends
    them (Pillow judges it)."""
    pos = 8
    for _ in range(_MOST_CHUNKS):
        if pos + 12 > reader.size:
            return
        length, kind = struct.unpack(">I4s", reader.at(pos, 8))
        if pos + 12 + length > reader.size:
            return
        yield pos, length, kind
        if kind == b"IEND":
            return
        pos += 12 + length


def _may_be_refused(reader: _Reader, texts: list[tuple[int, int, bytes]]) -> bool:
    """Whether ``texts`` could, at the most they might inflate to, be refused."""
    most_each, most_all = PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY
    bound = 0
    for pos, length, kind in texts:
        deflated = _deflated(reader, pos, length, kind, head_only=True)
        if deflated is _REFUSED:
            return True
        if deflated is None:
            bound += length
        elif length * _DEFLATE_MOST > most_each:
            return True
        else:
            bound += length * _DEFLATE_MOST
        if bound > most_all:
            return True
    return False


def _texts_refused(reader: _Reader, texts: list[tuple[int, int, bytes]]) -> set[tuple[int, int]]:
    """The (place, length) of each text chunk to leave out (see
    :func:`png_without_refused_texts`)."""
    import zlib

    most_each, most_all = PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY
    budget = most_all + most_each  # bytes inflated in all
    left_out: set[tuple[int, int]] = set()
    sizes: dict[tuple[int, int], int] = {}
    for pos, length, kind in texts:
        deflated = _deflated(reader, pos, length, kind)
        if deflated is None:
            sizes[pos, length] = length
            continue
        if deflated is _REFUSED or budget <= 0:
            left_out.add((pos, length))
            continue
        inflating = zlib.decompressobj()
        most = min(most_each, budget)
        try:
            size = len(inflating.decompress(deflated, most))
        except zlib.error:  # it may have inflated as far as it could before failing
            budget -= min(most, len(deflated) * _DEFLATE_MOST)
            left_out.add((pos, length))
            continue
        budget -= size
        if inflating.unconsumed_tail:  # past the limit for one text, or for all
            left_out.add((pos, length))
        else:
            sizes[pos, length] = size
    total = sum(sizes.values())
    for chunk in sorted(sizes, key=sizes.__getitem__, reverse=True):
        if total <= most_all:
            break
        left_out.add(chunk)
        total -= sizes[chunk]
    return left_out


_REFUSED = b"\0refused"  # a compression Pillow refuses the whole picture for


def _deflated(reader: _Reader, pos: int, length: int, kind: bytes, head_only: bool = False) -> bytes | None:
    """The deflated text of a zTXt chunk, or of an iTXt chunk marked compressed with
    deflate; None for a text Pillow does not inflate; :data:`_REFUSED` for a zTXt chunk
    compressed otherwise. ``head_only``: whether it is one of these is all that is asked
    (the chunk's first bytes are read, and what is returned is not the text)."""
    if kind == b"tEXt":
        return None
    # The keyword (1 to 79 bytes by the standard, any length as Pillow reads it), NUL,
    # then zTXt's method, or iTXt's flag and method.
    body = reader.at(pos + 8, min(length, 82) if head_only else length)
    if len(body) < length and not 0 <= body.find(b"\0") < len(body) - 2:
        body = reader.at(pos + 8, length)  # a longer keyword: the chunk as it is
    _keyword, _, rest = body.partition(b"\0")
    if kind == b"zTXt":
        return rest[1:] if rest[:1] in (b"", b"\0") else _REFUSED
    if len(rest) < 2 or rest[0] == 0 or rest[1] != 0:
        return None  # not compressed, or by a method Pillow leaves as it is
    _language, _, rest = rest[2:].partition(b"\0")
    _translated, _, text = rest.partition(b"\0")
    return text


def exif_orientation(img: Image.Image) -> int:
    """The EXIF Orientation (1 to 8) of the open picture ``img``; 1 (as stored) when it is
    missing, invalid or unreadable (some tools start a PNG's eXIf with "Exif\\0\\0",
    which Pillow refuses): an EXIF block says nothing of whether the pixels decode."""
    try:
        value = img.getexif().get(0x0112, 1)
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError, struct.error):
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


# EXIF Orientation -> the transpose that shows the picture upright.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def upright(img: Image.Image, orientation: int | None = None) -> Image.Image:
    """``img`` turned as its EXIF orientation (or ``orientation``, read before) says: the
    pixels alone. ImageOps.exif_transpose also writes the EXIF again, which fails
    (struct.error) on a tag of an unexpected type, and a picture that decodes well was
    then refused."""
    turn = _UPRIGHT.get(exif_orientation(img) if orientation is None else orientation)
    return img if turn is None else img.transpose(turn)


_CMS_MODES = {"RGB": "RGB", "RGBA": "RGBA", "L": "RGB", "CMYK": "RGB"}


def in_srgb(frame: Image.Image, profile: object) -> tuple[Image.Image, bool]:
    """``frame`` in sRGB (RGB or RGBA), and whether it was converted, by its embedded
    ``profile``. The service takes pixels as sRGB, as screens and most programs do: a
    picture whose profile is another (Adobe RGB, Display P3, a grey or a CMYK one) was sent
    with its colours shifted wherever it was encoded again (turned upright, made smaller)
    and its profile left behind, and shown so where Pillow decodes it. A profile that
    cannot be read, or does not fit the pixels' mode, leaves them as they are (taken as
    sRGB)."""
    if not isinstance(profile, bytes) or not profile:
        return frame, False
    pixels = frame
    if frame.mode == "P":  # a palette's colours are in the profile's space, as RGB
        pixels = frame.convert("RGBA" if "transparency" in frame.info else "RGB")
    elif frame.mode == "PA":
        pixels = frame.convert("RGBA")
    elif frame.mode in _WIDE_GREY:  # 16-bit grey, as the screen takes it: 8-bit grey first
        pixels = grey_8(frame)
    if pixels.mode not in _CMS_MODES:
        return frame, False
    from PIL import ImageCms

    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        if "srgb" in ImageCms.getProfileDescription(source).lower() and pixels.mode in ("RGB", "RGBA"):
            return frame, False
        srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
        converted = ImageCms.profileToProfile(pixels, source, srgb, outputMode=_CMS_MODES[pixels.mode])
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return frame, False
    if converted is None:
        return frame, False
    converted.info.pop("icc_profile", None)  # its pixels are sRGB now, whatever profile came with them
    return converted, True


_WIDE_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def grey_8(img: Image.Image) -> Image.Image:
    """A 16-bit (or 32-bit integer) grey picture as 8-bit grey, keeping its tonal range."""
    wide = img.convert("I") if img.mode != "I" else img
    extrema: Any = wide.getextrema()
    scale = 1 / 256 if extrema[1] > 255 else 1
    return wide.point(lambda v: v * scale).convert("L")


def to_rgb(img: Image.Image) -> Image.Image:
    """Any mode -> RGB or RGBA, keeping transparency and the tonal range of 16-bit images."""
    mode = img.mode
    if mode in ("RGB", "RGBA"):
        return img
    if mode in _WIDE_GREY:
        return grey_8(img).convert("RGB")
    if mode == "F":
        return img.convert("L").convert("RGB")
    if mode == "P":
        return img.convert("RGBA" if "transparency" in img.info else "RGB")
    if mode in ("LA", "La", "PA", "RGBa"):
        return img.convert("RGBA")
    if mode == "L" and "transparency" in img.info:
        return img.convert("RGBA")
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV

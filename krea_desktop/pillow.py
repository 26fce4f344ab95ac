"""Pillow, as the app opens pictures with it: ``from krea_desktop.pillow import Image``.

Pillow refuses a whole PNG whose compressed text chunk (zTXt, or compressed iTXt) inflates
to more than 1 MB, as a guard against text bombs: a ComfyUI image with a large workflow,
or any text of 128 characters or more written by ImageMagick, then could not be opened,
and was called damaged. The app reads those texts itself, within its own limits
(``library.metadata``); here one such text may inflate to 8 MB, all of a picture's texts
still to Pillow's 64 MB at most (``MAX_TEXT_MEMORY``, which it keeps). A PNG whose texts go
beyond even that (a text bomb, a workflow of tens of megabytes) is opened without those
texts (:func:`open_image`, :mod:`krea_desktop.png_texts`): its pixels are the picture all the
same."""

from __future__ import annotations

import io
import os
import struct
import threading
from typing import IO, Any

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from krea_desktop.png_texts import png_without_refused_texts

TEXT_CHUNK_BYTES = 8 * 1024 * 1024

if PngImagePlugin.MAX_TEXT_CHUNK < TEXT_CHUNK_BYTES:
    PngImagePlugin.MAX_TEXT_CHUNK = TEXT_CHUNK_BYTES

# The raster formats Pillow decodes on its own: a picture is opened as one of these or not
# at all (Pillow hands an EPS or PDF file to Ghostscript, and opens dozens of formats no
# one means by a picture). Multi-picture JPEGs from phones open through "JPEG", as "MPO".
PICTURE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")

__all__ = [
    "PICTURE_FORMATS",
    "Image",
    "UnidentifiedImageError",
    "exif_orientation",
    "grey_8",
    "in_srgb",
    "open_image",
    "picture_formats",
    "png_without_refused_texts",
    "to_rgb",
    "upright",
]


_INIT_LOCK = threading.Lock()
_picture_formats: tuple[str, ...] = ()


def picture_formats() -> tuple[str, ...]:
    """:data:`PICTURE_FORMATS` this Pillow opens (AVIF needs a build that has it)."""
    global _picture_formats
    if not _picture_formats:
        # Pillow imports its format plugins on first use; two workers doing that at once,
        # while the client thread imports its own modules, can stop on each other's
        # import locks.
        with _INIT_LOCK:
            Image.init()
            _picture_formats = tuple(f for f in PICTURE_FORMATS if f in Image.OPEN)
    return _picture_formats


def open_image(source: str | os.PathLike[str] | IO[bytes], formats: tuple[str, ...] | None = None) -> Image.Image:
    """``Image.open(source, formats)``, ``formats`` being :func:`picture_formats` unless
    given; but a PNG holding texts Pillow would refuse (a compressed text inflating past
    ``MAX_TEXT_CHUNK``, or more than ``MAX_TEXT_MEMORY`` of text in all, before its pixels
    or after them) is opened without those texts (:func:`png_without_refused_texts`),
    rather than refused whole, at open or at ``load()``, as damaged. ``source``: a path or
    a binary file open for reading (read from where it stands, and put back there)."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb", buffering=0) as f:  # a chunk header read at a time, not the file around it
            data = png_without_refused_texts(f)
    else:
        data = png_without_refused_texts(source)
    return Image.open(source if data is None else io.BytesIO(data), formats=formats or picture_formats())


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
    """A 16-bit (or 32-bit integer) grey picture as 8-bit grey, keeping its tonal range. A
    16-bit one is 16-bit whatever its values: a dark one (every sample 255 or less of
    65535) is near black, not light grey. A 32-bit one says nothing of its depth: values
    up to 255 are taken as 8-bit ones."""
    wide = img.convert("I") if img.mode != "I" else img
    extrema: Any = wide.getextrema()
    scale = 1 / 256 if img.mode.startswith("I;16") or extrema[1] > 255 else 1
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

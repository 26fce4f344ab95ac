"""Pillow, as the app opens pictures with it: ``from krea_desktop.pillow import Image``.

Pillow refuses a whole PNG whose compressed text chunk (zTXt, or compressed iTXt) inflates
to more than 1 MB, as a guard against text bombs: a ComfyUI image with a large workflow,
or any text of 128 characters or more written by ImageMagick, then could not be opened,
and was called damaged. The app reads those texts itself, within its own limits
(``library.metadata``); here one such text may inflate to 8 MB, all of a picture's texts
still to Pillow's 64 MB at most (``MAX_TEXT_MEMORY``, which it keeps)."""

from __future__ import annotations

import struct

from PIL import Image, PngImagePlugin, UnidentifiedImageError

TEXT_CHUNK_BYTES = 8 * 1024 * 1024

if PngImagePlugin.MAX_TEXT_CHUNK < TEXT_CHUNK_BYTES:
    PngImagePlugin.MAX_TEXT_CHUNK = TEXT_CHUNK_BYTES

__all__ = ["Image", "UnidentifiedImageError", "exif_orientation", "upright"]


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

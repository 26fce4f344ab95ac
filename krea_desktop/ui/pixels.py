"""Pillow's pixels as QImages, safe on any thread.

A worker that holds Python's lock must not run Qt's image format detection
(``QImage.fromData``, ``QImage.loadFromData`` without a format): Qt's SVG plugin probes
the data through a ``QTextStream``, whose ``QObject::connect`` takes one of Qt's shared
signal-slot locks. The GUI thread, destroying a widget, can hold that same lock while it
waits for Python's: each then waits for the other for good. Decoding with Pillow and
copying the pixels into a QImage takes no Qt lock.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from PySide6.QtGui import QImage

if TYPE_CHECKING:
    from PIL import Image


def qimage_of(im: Image.Image) -> QImage:
    """A QImage owning a copy of an RGB or RGBA Pillow image's pixels."""
    rgba = im.mode == "RGBA"
    raw = im.tobytes()
    fmt = QImage.Format.Format_RGBA8888 if rgba else QImage.Format.Format_RGB888
    qimg = QImage(raw, im.width, im.height, im.width * (4 if rgba else 3), fmt)
    return qimg.copy()  # own the pixels: ``raw`` goes away


def decoded(data: bytes) -> QImage:
    """Encoded image bytes (a thumbnail, say) as a QImage, decoded by Pillow; a null QImage
    when they are not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            return qimage_of(im.convert("RGBA"))
    except (UnidentifiedImageError, OSError, ValueError):
        return QImage()

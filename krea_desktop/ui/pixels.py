"""Images made on any thread: Pillow's pixels as QImages, and image files read by their bytes.

A worker that holds Python's lock must not run Qt's image format detection
(``QImage.fromData``, ``QImage.loadFromData`` without a format): Qt's SVG plugin probes
the data through a ``QTextStream``, whose ``QObject::connect`` takes one of Qt's shared
signal-slot locks. The GUI thread, destroying a widget, can hold that same lock while it
waits for Python's: each then waits for the other for good. Decoding with Pillow and
copying the pixels into a QImage takes no Qt lock.

Image files are read the same way on workers (:func:`read_image_file`): Python reads
their first bytes, letting go of its lock while the disk answers, and Qt's reader is told
the format they give. ``QImageReader.size()`` on a path holds Python's lock while it
opens and reads the file, so a file on a stalled network drive froze the window for as
long as the drive did, and a file whose name lies about its format had Qt probe it with
every plugin while holding it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QBuffer, QIODeviceBase, QSize
from PySide6.QtGui import QImage, QImageReader

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


# Where an image's size is found: in its first bytes, or (a JPEG's metadata can come before
# it) within the first few megabytes.
HEAD_BYTES = 64 * 1024
MAX_HEAD_BYTES = 16 * 1024 * 1024

# The formats a library file may hold, by their first bytes (WebP: "RIFF", size, "WEBP").
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", b"png"),
    (b"\xff\xd8\xff", b"jpeg"),
    (b"GIF87a", b"gif"),
    (b"GIF89a", b"gif"),
    (b"BM", b"bmp"),
)


def image_format(head: bytes) -> bytes | None:
    """The Qt format name of the image whose file starts with ``head`` (16 bytes or
    more), or None when it is none of the formats a library holds."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return b"webp"
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    return None


def read_image_file(
    path: Path, fit: Callable[[QSize], QSize | None] | None = None, *, auto_transform: bool = False
) -> QImage:
    """The image in the file ``path``, on any thread; with ``fit``, decoded at the size it
    gives for the image's own (None: its own). A null QImage when the file is no image of
    a format a library holds, or is damaged; OSError when it cannot be read.

    Python reads the file's first bytes (letting go of its lock while the disk answers),
    which give the format Qt's reader is told (it probes nothing) and the image's size
    (found in memory); ``QImageReader.read`` then decodes without Python's lock."""
    with open(path, "rb") as file:
        head = file.read(HEAD_BYTES)
        found = image_format(head[:16])
        if found is None:
            return QImage()
        scaled: QSize | None = None
        if fit is not None:
            size = _size_in(head, found)
            if size is None and len(head) == HEAD_BYTES:  # a JPEG's metadata came first
                size = _size_in(head + file.read(MAX_HEAD_BYTES - HEAD_BYTES), found)
            if size is None or not size.isValid():
                return QImage()
            scaled = fit(size)
    reader = QImageReader(str(path), found)
    reader.setDecideFormatFromContent(False)
    reader.setAutoDetectImageFormat(False)
    reader.setAutoTransform(auto_transform)
    if scaled is not None:
        reader.setScaledSize(scaled)
    return reader.read()


def _size_in(head: bytes, found: bytes) -> QSize | None:
    """The size of the image of format ``found`` whose file starts with ``head``; None
    when ``head`` ends before the size is given (a JPEG's comes after its metadata)."""
    if found == b"jpeg":
        return jpeg_size(head)
    buffer = QBuffer()  # the other formats give it in their first few bytes
    buffer.setData(head)
    buffer.open(QIODeviceBase.OpenModeFlag.ReadOnly)
    size = QImageReader(buffer, found).size()
    buffer.close()
    return size


# The start-of-frame markers, which give a JPEG's size: C0 to CF but for C4 (Huffman
# tables), C8 (reserved) and CC (arithmetic coding conditioning).
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_size(data: bytes) -> QSize | None:
    """The size a JPEG file starting with ``data`` gives in its frame header; None when
    ``data`` ends before it; an invalid QSize when the markers are not a JPEG's."""
    at = 2  # after the start-of-image marker
    while at + 2 <= len(data):
        if data[at] != 0xFF:
            return QSize()
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            at += 2
            continue
        if marker == 0xD9 or marker == 0xDA:  # the end, or the pixels, and no frame header
            return QSize()
        if at + 4 > len(data):
            return None
        if marker in _JPEG_FRAMES:
            if at + 9 > len(data):
                return None
            return QSize(int.from_bytes(data[at + 7 : at + 9], "big"), int.from_bytes(data[at + 5 : at + 7], "big"))
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return None

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

import contextlib
import io
import os
import re
import struct
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage, QImageReader

from krea_desktop.fsutil import open_regular_file

if TYPE_CHECKING:
    from krea_desktop.pillow import Image


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
    from krea_desktop.pillow import UnidentifiedImageError, open_image

    try:
        with open_image(io.BytesIO(data)) as im:
            return qimage_of(im.convert("RGBA"))
    except (UnidentifiedImageError, OSError, ValueError):
        return QImage()


# Where an image's size is found: in its first bytes, or (a JPEG's metadata can come before
# its frame header) within the first few megabytes.
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
    a format a library holds, or is damaged; OSError when it cannot be opened.

    Python opens the file and reads its first bytes (letting go of its lock while the disk
    answers): they give the format Qt's reader is told (it probes nothing) and the
    image's size (found in memory). Qt then decodes the same open file, without Python's
    lock, through a file of its own (:func:`_qt_path`): a device made in Python would
    have Qt take Python's lock for each read, inside the lock Qt's image readers share,
    and a GUI thread making an icon (which holds Python's lock and wants that one) would
    wait for it for good. A file renamed or deleted meanwhile is still the one read, on
    Linux. A FIFO or a device in the file's place is refused at once
    (:class:`~krea_desktop.fsutil.NotARegularFile`), never waited on."""
    with open_regular_file(path) as file:
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
        reader = QImageReader(_qt_path(file, path), found)
        reader.setDecideFormatFromContent(False)
        reader.setAutoDetectImageFormat(False)
        reader.setAutoTransform(auto_transform)
        if scaled is not None:
            reader.setScaledSize(scaled)
        image = reader.read()
        if auto_transform and found in (b"png", b"webp") and not image.isNull():
            # Qt turns a JPEG by its EXIF orientation, not a PNG or a WEBP: shown on its side
            # here, it was sent upright as a reference (library.inputs turns every format).
            image = _upright(image, _orientation_in(file, head, found))
        return in_srgb(image) if _may_have_a_profile(head) else image


# Where a PNG (iCCP), a JPEG (APP2 ICC_PROFILE) or a WEBP (ICCP) keeps its colour profile.
# A PNG's gAMA, cHRM or sRGB chunk also gives Qt a colour space.
_PROFILE_MARKS = (b"iCCP", b"ICC_PROFILE", b"ICCP", b"gAMA", b"cHRM", b"sRGB")


def _may_have_a_profile(head: bytes) -> bool:
    """Whether the file whose first bytes are ``head`` may carry a colour profile: one of
    the places profiles are kept is among them, or they are too few to tell (a JPEG's
    EXIF can fill the first 64 KiB). Asked first, so that pictures without one (nearly
    all, every cached thumbnail) never make Qt's colour-space class on the way to the
    window's first screen."""
    return len(head) >= HEAD_BYTES or any(mark in head for mark in _PROFILE_MARKS)


def _orientation_in(file: BinaryIO, head: bytes, found: bytes) -> int:
    """The EXIF orientation of the PNG or WEBP open as ``file`` (1 when none is found):
    its eXIf or EXIF chunk wherever it is (the chunks' headers read, their contents
    skipped)."""
    blob: bytes | None = None
    with contextlib.suppress(OSError, ValueError, struct.error):
        if found == b"png":
            # Its chunks' headers, their contents skipped: eXIf belongs before the pixels,
            # but some files carry it after them, where Pillow (and so the reference sent)
            # finds it too.
            pos = 8
            for _ in range(1 << 20):
                file.seek(pos)
                header = file.read(8)
                if len(header) < 8:
                    break
                length, kind = struct.unpack(">I4s", header)
                if kind == b"IEND":
                    break
                if kind == b"eXIf":
                    blob = file.read(min(length, 1 << 20))
                    break
                pos += 12 + length
        elif len(head) >= 30 and head[12:16] == b"VP8X" and head[20] & 0x08:  # says it has EXIF
            pos = 12
            for _ in range(64):
                file.seek(pos)
                header = file.read(8)
                if len(header) < 8:
                    break
                kind, size = header[:4], int.from_bytes(header[4:], "little")
                if kind == b"EXIF":
                    blob = file.read(min(size, 1 << 20))
                    break
                pos += 8 + size + (size & 1)
    if not blob:
        return 1
    from krea_desktop.library.metadata import exif_orientation

    return exif_orientation(blob) or 1


def _upright(image: QImage, orientation: int) -> QImage:
    """``image`` turned and flipped as its EXIF ``orientation`` says it is shown."""
    if orientation in (2, 4):
        return image.flipped(Qt.Orientation.Horizontal if orientation == 2 else Qt.Orientation.Vertical)
    turn = {3: 180, 5: 90, 6: 90, 7: 270, 8: 270}.get(orientation)
    if turn is None:
        return image
    from PySide6.QtGui import QTransform  # a rare picture's: not loaded before the window is up

    image = image.transformed(QTransform().rotate(turn))
    return image.flipped(Qt.Orientation.Horizontal) if orientation in (5, 7) else image


def in_srgb(image: QImage) -> QImage:
    """``image`` with its colours as an sRGB screen shows them. A picture whose embedded
    profile is another (Adobe RGB, Display P3: a camera's or a Mac's) was shown with its
    numbers taken as sRGB, shifted in hue and saturation; Qt reads the profile, and the
    picture is converted from it. One without a profile, or with one Qt cannot use, is
    taken as sRGB, as before."""
    if image.isNull():
        return image
    space = image.colorSpace()
    if not space.isValid():
        return image
    srgb = type(space)(type(space).NamedColorSpace.SRgb)  # QColorSpace, made once it is needed
    if space != srgb:
        image.convertToColorSpace(srgb)
    return image


def _qt_path(file: BinaryIO, path: Path) -> str:
    """The name by which Qt opens the file Python has open: on Linux the open file itself
    (``/proc/self/fd``: the same file whatever the name now holds, never a FIFO put in
    its place), elsewhere its name."""
    proc = f"/proc/self/fd/{file.fileno()}"
    return proc if os.path.exists(proc) else os.fspath(path)


def _size_in(head: bytes, found: bytes) -> QSize | None:
    """The size of the image of format ``found`` whose file starts with ``head``: invalid
    when the file is damaged; None when ``head`` ends before a JPEG's frame header."""
    if found == b"jpeg":
        return jpeg_size(head)
    if found == b"png":  # the header chunk always comes first
        if len(head) < 24 or head[12:16] != b"IHDR":
            return QSize()
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        return QSize(width, height) if max(width, height) <= _PNG_MAX_SIDE else QSize()
    if found == b"webp":
        return webp_size(head)
    # GIF and BMP give it in their first bytes (read here, not by Qt: see read_image_file).
    if found == b"gif":
        if len(head) < 10:
            return QSize()
        width, height = struct.unpack_from("<HH", head, 6)
        return QSize(width, height)
    if len(head) < 26:  # BMP: a BITMAPINFOHEADER's width, then its height (below zero: top-down)
        return QSize()
    if int.from_bytes(head[14:18], "little") == 12:  # the old BITMAPCOREHEADER: 16-bit sides
        width, height = struct.unpack_from("<HH", head, 18)
    else:
        width, height = struct.unpack_from("<ii", head, 18)
    return QSize(width, abs(height)) if width > 0 and height != 0 else QSize()


# The largest side a PNG may give (its header's fields are unsigned 32-bit, Qt's sizes signed).
_PNG_MAX_SIDE = 2**31 - 1

# The start-of-frame markers, which give a JPEG's size: C0 to CF but for C4 (Huffman
# tables), C8 (reserved) and CC (arithmetic coding conditioning).
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# A JPEG has a few dozen segments before its frame header; a file with many more is taken
# for no JPEG rather than walked for seconds.
_JPEG_MAX_STEPS = 4096
_NOT_FILL = re.compile(b"[^\xff]")


def jpeg_size(data: bytes) -> QSize | None:
    """The size a JPEG file starting with ``data`` gives in its frame header; None when
    ``data`` ends before it; an invalid QSize when the pixels or the end come first, or
    thousands of segments do. Bytes between segments are skipped, as decoders skip them."""
    at = 2  # after the start-of-image marker
    for _step in range(_JPEG_MAX_STEPS):
        at = data.find(b"\xff", at)
        if at < 0 or at + 2 > len(data):
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill bytes: the marker is the first byte after them
            after = _NOT_FILL.search(data, at + 1)
            if after is None:
                return None
            at = after.start() - 1
            continue
        if marker == 0x00 or marker == 0x01 or 0xD0 <= marker <= 0xD8:  # no length follows
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
    return QSize()


def webp_size(head: bytes) -> QSize:
    """The size a WebP file starting with ``head`` gives in its first chunk: the canvas of
    an extended file (animated, or with alpha or metadata), else the frame of a lossy or
    lossless one. Qt reads an animated file through to its end to find it. An invalid
    QSize when the chunk is none of these."""
    if len(head) < 30:
        return QSize()
    chunk = head[12:16]
    if chunk == b"VP8X":
        return QSize(1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little"))
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        return QSize(int.from_bytes(head[26:28], "little") & 0x3FFF, int.from_bytes(head[28:30], "little") & 0x3FFF)
    if chunk == b"VP8L" and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return QSize((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    return QSize()

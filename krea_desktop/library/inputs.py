"""Turning a file, a web address, a data URI or pasted bytes into a reference image, or a
clear refusal.

Free of Qt: the reference tray runs these functions on a worker thread, and
``krea-desktop generate --ref`` calls them directly. Every refusal is an
:class:`InvalidImageError` whose message is one sentence saying what was wrong and what to
do, and nothing is kept from an input that is refused.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import hashlib
import io
import math
import os
import re
import stat
import struct
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote_to_bytes, urlsplit

from krea_desktop.api import spec
from krea_desktop.api.errors import KreaError
from krea_desktop.api.request import ReferenceImage
from krea_desktop.fsutil import NotARegularFile, atomic_write, is_abandoned, owned_name, read_regular_file
from krea_desktop.library.metadata import MAX_PARTS, ends_early, has_too_many_parts, read_record
from krea_desktop.wording import size_over

if TYPE_CHECKING:
    import httpx

    from krea_desktop.pillow import Image

# Pillow is imported where images are decoded, not with this module: the window imports it
# (for its drop targets) before its first full paint, and Pillow costs about 12 ms.

# Refuse anything with more pixels than this, or a longer side, before decoding it (the
# library API's limits too: spec.REFERENCE_MAX_PIXELS).
MAX_PIXELS = spec.REFERENCE_MAX_PIXELS
MAX_SIDE = spec.REFERENCE_MAX_SIDE
PASTED = "pasted image"  # what an image given as data, not as a file or address, is called
# Larger files are refused before they are read.
MAX_FILE_BYTES = 200_000_000  # decimal, as the sizes the user is shown
# Downloads stop at this many bytes, or after this many seconds.
MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024
DOWNLOAD_TIMEOUT_S = 20.0
# Thumbnails are at most this large on the long side (enough for a HiDPI tray).
THUMBNAIL_SIDE = 256

# Formats whose bytes can be sent as they are when nothing needs converting.
_PASS_THROUGH = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}

_READABLE = "PNG, JPEG, WEBP, GIF, BMP or TIFF"


class InvalidImageError(KreaError):
    """An input that cannot be used as a reference image; the message says why."""


@dataclass(frozen=True)
class LoadedReference:
    """A decoded, checked and normalised reference image."""

    data: bytes  # encoded image to keep and upload (PNG, JPEG or WEBP; RGB or RGBA)
    thumbnail: bytes  # PNG, at most THUMBNAIL_SIDE on the long side
    width: int  # of ``data``
    height: int
    sha256: str  # of ``data``; names the kept copy and matches the upload cache's key
    extension: str  # "png" | "jpg" | "webp", matching ``data``
    source: str = ""  # a short description of where it came from, for tooltips
    # The bytes as given (before normalising), to tell which library image this is: their
    # hash, and the imageUUID of the record embedded in them.
    origin_sha256: str = ""
    origin_uuid: str | None = None

    @property
    def file_name(self) -> str:
        return f"{self.sha256}.{self.extension}"


def is_web_url(text: str) -> bool:
    parts = urlsplit(text.strip())
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def is_data_uri(text: str) -> bool:
    return text.strip()[:5].lower() == "data:"


def load_reference(source: bytes | bytearray | memoryview | str | os.PathLike[str]) -> LoadedReference:
    """Read, fully decode and normalise one image.

    ``source`` is encoded image bytes, a file path, an http(s) URL (fetched here, so call
    this off the GUI thread) or a ``data:`` URI. Raises :class:`InvalidImageError`.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_image(bytes(source), PASTED)
    text = os.fspath(source)
    if isinstance(source, str) and is_web_url(text):
        return decode_image(fetch_url(text), reference_label(source))
    if isinstance(source, str) and is_data_uri(text):
        return decode_image(decode_data_uri(text), reference_label(source))
    path = Path(text)
    return decode_image(read_image_file(path), reference_label(path))


def reference_label(source: str | os.PathLike[str]) -> str:
    """What a reference from ``source`` is called (as :func:`load_reference` names it,
    without reading it): a file's name, a web address's host and last part, "embedded
    image" for a ``data:`` URI; any other text (an imageUUID) as it is."""
    text = os.fspath(source)
    if isinstance(source, str) and is_web_url(text):
        return _url_label(text)
    if isinstance(source, str) and is_data_uri(text):
        return "embedded image"
    return Path(text).name or text


def read_image_file(path: Path) -> bytes:
    name = path.name or str(path)
    _check_file(path)
    try:
        return read_regular_file(path, MAX_FILE_BYTES)
    except NotARegularFile:
        raise InvalidImageError(f"“{name}” is not a file (a pipe or a device), so it holds no image.") from None
    except OSError as exc:
        raise InvalidImageError(_unreadable(path, exc)) from None


def header_refusal(path: Path) -> str | None:
    """Why :func:`load_reference` would refuse the image file at ``path``, as far as the
    file, its structure and its image header tell, in the sentence it would give; None
    when they say nothing against it. No pixel is decoded (a dozen photos dropped are
    offered at once, not after a decode of each), but a file cut short or damaged is found
    where that costs no decode: a file that ends early (:func:`metadata.ends_early`), a
    PNG's chunks' checksums (nothing inflated, as :func:`decode_image` checks it). Other
    damage is found when the image is loaded. Never raises."""
    from krea_desktop.pillow import Image, UnidentifiedImageError, open_image, png_without_refused_texts

    label = reference_label(path)
    damaged = f"“{label}” is damaged and cannot be opened as an image."
    try:
        data = read_image_file(path)
    except InvalidImageError as exc:
        return str(exc)
    refusal = _structure_refusal(data, label)
    if refusal is not None:
        return refusal
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with open_image(io.BytesIO(data)) as img:
                width, height = img.size
                fmt = img.format
        except Image.DecompressionBombError:
            return _bomb_message(label)
        except UnidentifiedImageError:
            if _has_image_signature(data):
                return damaged
            return f"“{label}” is not an image Krea Desktop can read ({_READABLE})."
        except (OSError, SyntaxError, ValueError, TypeError, IndexError, struct.error, EOFError):
            return damaged
        if width <= 0 or height <= 0:
            return f"“{label}” has no pixels."
        if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
            return _bomb_message(label, width, height)
        incomplete = f"“{label}” is damaged or incomplete; open it in an image editor and save it again."
        if ends_early(data):  # a PNG without its last chunk, a JPEG without its end after the scan
            return incomplete
        try:
            if fmt == "PNG":  # as decode_image checks it: without a text Pillow would refuse
                Image.open(io.BytesIO(png_without_refused_texts(data) or data), formats=("PNG",)).verify()
        except (OSError, SyntaxError, ValueError, TypeError, IndexError, struct.error, EOFError):
            return incomplete
    return None


def _check_file(path: Path) -> None:
    """Raise :class:`InvalidImageError` when ``path`` is no file a reference may be read
    from: missing, unreadable, a folder, a pipe, empty or too large."""
    name = path.name or str(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise InvalidImageError(_unreadable(path, exc)) from None
    if path.is_dir():
        raise InvalidImageError(f"“{name}” is a folder, not an image; use the image files inside it instead.")
    if not stat.S_ISREG(st.st_mode):
        raise InvalidImageError(f"“{name}” is not a file (a pipe or a device), so it holds no image.")
    if st.st_size == 0:
        raise InvalidImageError(f"“{name}” is empty (0 bytes), so it holds no image.")
    if st.st_size > MAX_FILE_BYTES:
        size, limit = size_over(st.st_size, MAX_FILE_BYTES)
        raise InvalidImageError(
            f"“{name}” is {size}, more than the {limit} a reference may be; save a smaller copy and use that."
        )


def _unreadable(path: Path, exc: OSError) -> str:
    """Why the file at ``path`` could not be opened, from the error the system gave (in
    words for the window and the command line alike: "use", not "drop")."""
    name = path.name or str(path)
    if exc.errno == errno.ENOENT:
        if path.is_symlink():
            return f"“{name}” is a link to a file that does not exist; use the image it was meant to lead to."
        return f"“{name}” does not exist; it may have been moved or deleted."
    if exc.errno == errno.ELOOP:
        return f"“{name}” is a link that goes round in a circle and leads to no file; use the image itself instead."
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"“{name}” cannot be read; check that you have permission to open it."
    reason = exc.strerror or type(exc).__name__
    return f"“{name}” cannot be read ({reason}); check that it is still there and try again."


# Besides _SIGNATURES: BigTIFF's, and AVIF's (an ISO box naming its brand).
_BIG_TIFF = (b"II+\x00", b"MM\x00+")
_AVIF_BRANDS = (b"avif", b"avis", b"mif1", b"msf1")  # AVIF's, and HEIF's that AVIF files use too


def looks_like_image_file(path: Path) -> bool:
    """Whether the file at ``path`` begins as an image Krea Desktop reads does (its first
    few bytes, read without waiting on a pipe or a device); False for anything that cannot
    be read. An image that fails to decode later may still say True."""
    try:
        head = read_regular_file(Path(path), 31)
    except OSError:
        return False
    if _has_image_signature(head) or head.startswith(_BIG_TIFF):
        return True
    return head[4:8] == b"ftyp" and head[8:12] in _AVIF_BRANDS


def fetch_url(
    url: str,
    *,
    timeout: float | None = None,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
    client: httpx.Client | None = None,
) -> bytes:
    """Download an image (blocking: call it off the GUI thread); refuses anything else."""
    import httpx  # imported on first download, not at start-up

    if timeout is None:
        timeout = DOWNLOAD_TIMEOUT_S
    label = _url_label(url)
    if not is_web_url(url):
        raise InvalidImageError(f"“{label}” is not a web address Krea Desktop can download from.")
    own = client is None
    from krea_desktop.api.endpoint import is_loopback

    # A proxy named in the environment is not asked for this computer's own addresses, as
    # the service's client does not ask it (it cannot reach them).
    http = client or httpx.Client(follow_redirects=True, timeout=timeout, trust_env=not is_loopback(url.strip()))
    deadline = time.monotonic() + timeout
    try:
        with http.stream("GET", url.strip(), headers={"Accept": "image/*"}) as response:
            if response.status_code >= 400:
                raise InvalidImageError(
                    f"Downloading “{label}” failed (the server answered {response.status_code}); "
                    "check the address or save the image and drop the file."
                )
            ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype == "image/svg+xml":
                raise InvalidImageError(_svg_message(label))
            if _is_document_type(ctype):
                raise InvalidImageError(_page_message(label))
            length = response.headers.get("content-length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise InvalidImageError(_too_large_download(label, max_bytes))
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise InvalidImageError(_too_large_download(label, max_bytes))
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("download took too long")
                chunks.append(chunk)
    except httpx.TimeoutException:
        raise InvalidImageError(
            f"Downloading “{label}” took longer than {timeout:g} seconds; "
            "try again, or save the image and drop the file."
        ) from None
    except (httpx.HTTPError, httpx.InvalidURL, ValueError):  # UnicodeError (a host IDNA refuses) is a ValueError
        raise InvalidImageError(f"“{label}” could not be downloaded; check the address and your connection.") from None
    finally:
        if own:
            http.close()
    data = b"".join(chunks)
    if not data:
        raise InvalidImageError(f"“{label}” gave an empty answer instead of an image.")
    return data


def decode_data_uri(uri: str) -> bytes:
    head, sep, payload = uri.strip().partition(",")
    if not sep or not head.lower().startswith("data:"):
        raise InvalidImageError("The embedded image could not be read; save it as a file and drop that instead.")
    media = head[5:].split(";")[0].strip().lower()
    if media == "image/svg+xml":
        raise InvalidImageError(_svg_message("The embedded image"))
    if media and not media.startswith("image/"):
        raise InvalidImageError("The dropped data is not an image; drag the image itself instead.")
    try:
        if head.lower().endswith(";base64"):
            return base64.b64decode(payload, validate=False)
        return unquote_to_bytes(payload)
    except (binascii.Error, ValueError):
        raise InvalidImageError("The embedded image is damaged; save it as a file and drop that instead.") from None


# Types of what is not a picture, said at once rather than after the download. Any other
# type is downloaded and its bytes decide: storage hosts send pictures as S3's default
# "binary/octet-stream", "application/binary", "application/x-download" and the like.
_DOCUMENT_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/pdf",
        "application/javascript",
        "application/x-httpd-php",
        "application/zip",
    }
)


def _is_document_type(ctype: str) -> bool:
    return (
        ctype.startswith(("text/", "audio/", "video/", "font/", "multipart/", "model/"))
        or ctype.endswith(("+xml", "+json"))
        or ctype in _DOCUMENT_TYPES
    )


def _structure_refusal(data: bytes, label: str) -> str | None:
    """Why ``data`` is refused before any decoder sees it (empty, a page, a drawing, a
    file of more blocks than any image has), or None."""
    if not data:
        return f"“{label}” is empty (0 bytes), so it holds no image."
    if _looks_like_html(data):  # a page sent under a type that did not say so
        return _page_message(label)
    if _looks_like_svg(data):
        return _svg_message(label)
    if has_too_many_parts(data):  # the decoder would take seconds and gigabytes over it
        return (
            f"“{label}” has more than {MAX_PARTS:,} blocks of metadata, which no real image has, so it was not opened."
        )
    return None


def decode_image(data: bytes, label: str = "The image") -> LoadedReference:
    """Check and normalise encoded image bytes; see :func:`load_reference`."""
    from krea_desktop.pillow import (
        Image,
        UnidentifiedImageError,
        exif_orientation,
        in_srgb,
        picture_formats,
        png_without_refused_texts,
        to_rgb,
        upright,
    )

    label = label or "The image"
    refusal = _structure_refusal(data, label)
    if refusal is not None:
        raise InvalidImageError(refusal)
    # The picture as it is kept and sent: without a text Pillow, and so the service,
    # would refuse it whole for (its own texts are read from ``data`` all the same).
    picture = png_without_refused_texts(data) or data
    with warnings.catch_warnings():
        # Pillow warns below its own bomb limit; the pixel cap here decides instead.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(picture), formats=picture_formats())  # its texts already seen to
        except Image.DecompressionBombError:
            raise InvalidImageError(_bomb_message(label)) from None
        except UnidentifiedImageError:
            if _has_image_signature(data):
                raise InvalidImageError(f"“{label}” is damaged and cannot be opened as an image.") from None
            raise InvalidImageError(f"“{label}” is not an image Krea Desktop can read ({_READABLE}).") from None
        except (OSError, SyntaxError, ValueError, TypeError, IndexError, struct.error):
            raise InvalidImageError(f"“{label}” is damaged and cannot be opened as an image.") from None
        width, height = img.size
        if width <= 0 or height <= 0:
            raise InvalidImageError(f"“{label}” has no pixels.")
        refuse_oversized(label, width, height)
        fmt = img.format or ""
        try:
            animated = bool(getattr(img, "is_animated", False))  # a GIF's frames are counted here
            if fmt == "PNG":
                # verify() checks every chunk's checksum; it leaves its image unusable, hence a second one.
                Image.open(io.BytesIO(picture), formats=("PNG",)).verify()
            if animated:
                img.seek(0)  # the first frame stands for the whole animation
            if fmt == "JPEG" and max(width, height) > spec.UPLOAD_MAX_SIDE:
                img.draft("RGB", (spec.UPLOAD_MAX_SIDE, spec.UPLOAD_MAX_SIDE))
            img.load()
            original_mode = img.mode
            orientation = exif_orientation(img)
            profile = img.info.get("icc_profile")
            # Each step below replaces the picture it started from, and nothing else holds
            # the one before (a 64-megapixel image is 256 MB decoded; two or three of them at
            # once is what a gigantic reference used to cost).
            # Into sRGB by its own profile first, in its own mode (a grey or a CMYK profile
            # applies to grey or CMYK pixels, not to the RGB made of them), then RGB(A).
            frame, recoloured = in_srgb(img, profile)
            del img
            frame = to_rgb(frame)
            frame = upright(frame, orientation)
            if frame.mode == "RGBA" and cast(Any, frame.getextrema())[3][0] == 255:
                frame = frame.convert("RGB")  # an alpha channel that is opaque everywhere adds nothing
            if max(frame.size) > spec.UPLOAD_MAX_SIDE:
                frame = _shrunk(frame, spec.UPLOAD_MAX_SIDE, Image.Resampling.LANCZOS, reducing_gap=3.0)
            # The file's own size: a JPEG decoded at half its size (draft) may already fit,
            # while its bytes, which would otherwise be sent as they are, do not.
            too_big = max(width, height) > spec.UPLOAD_MAX_SIDE
        except Image.DecompressionBombError:
            raise InvalidImageError(_bomb_message(label)) from None
        except MemoryError:
            raise InvalidImageError(_no_memory_message(label)) from None
        except (OSError, SyntaxError, ValueError, EOFError, TypeError, IndexError, struct.error):
            # Pillow's decoders raise more than OSError on a damaged file: a tag of the wrong
            # type (TypeError), a frame cut short (IndexError), a header too short (struct.error).
            raise InvalidImageError(
                f"“{label}” is damaged or incomplete; open it in an image editor and save it again."
            ) from None
    try:
        loaded = _normalise(picture, frame, fmt, original_mode, animated, orientation, too_big, label, recoloured)
    except MemoryError:
        raise InvalidImageError(_no_memory_message(label)) from None
    record = read_record(data)
    return replace(
        loaded,
        origin_sha256=hashlib.sha256(data).hexdigest(),
        origin_uuid=record.image_uuid if record is not None else None,
    )


# The modes LittleCMS converts from, and the mode each becomes in sRGB.
def _thumbnail_size(width: int, height: int, side: int) -> tuple[int, int] | None:
    """The size ``Image.thumbnail((side, side))`` gives a ``width`` × ``height`` picture
    (the aspect kept, rounded as Pillow rounds it), or None when it already fits."""
    if width <= side and height <= side:
        return None
    aspect = width / height
    x, y = side, side
    if x / y >= aspect:
        x = max(min(math.floor(y * aspect), math.ceil(y * aspect), key=lambda n: abs(aspect - n / y)), 1)
    else:
        y = max(
            min(math.floor(x / aspect), math.ceil(x / aspect), key=lambda n: 0 if n == 0 else abs(aspect - x / n)),
            1,
        )
    return x, y


def _shrunk(frame: Image.Image, side: int, resample: Image.Resampling, reducing_gap: float) -> Image.Image:
    """``frame`` fitted within ``side`` × ``side``: the pixels ``Image.thumbnail`` gives,
    as a new picture, without first copying the full-size one (``frame`` itself when it fits)."""
    size = _thumbnail_size(frame.width, frame.height, side)
    if size is None or size == frame.size:
        return frame
    return frame.resize(size, resample, reducing_gap=reducing_gap)


def _normalise(
    data: bytes,
    frame: Image.Image,
    fmt: str,
    original_mode: str,
    animated: bool,
    orientation: object,
    too_big: bool,
    label: str,
    recoloured: bool = False,
) -> LoadedReference:
    """The bytes to send and the tray's thumbnail, for ``frame``: the picture upright, in
    RGB or RGBA, and already within the upload size."""
    from krea_desktop.pillow import Image

    keep = (
        fmt in _PASS_THROUGH
        and not animated
        and not too_big
        and original_mode in ("RGB", "RGBA")
        and orientation in (None, 1)
        and not recoloured  # converted to sRGB: the file's own numbers are in another space
    )
    if keep:
        encoded, ext = data, _PASS_THROUGH[fmt]
    else:
        buf = io.BytesIO()
        # No profile goes with them: the pixels are sRGB (converted from theirs), and one
        # carried over would no longer describe them (a grey one on RGB pixels, say).
        if fmt in ("JPEG", "MPO") and frame.mode == "RGB":
            frame.save(buf, "JPEG", quality=95, subsampling=0, icc_profile=None)
            ext = "jpg"
        else:
            frame.save(buf, "PNG", compress_level=3, icc_profile=None)
            ext = "png"
        encoded = buf.getvalue()
    thumb = _shrunk(frame, THUMBNAIL_SIDE, Image.Resampling.BILINEAR, reducing_gap=2.0)
    tbuf = io.BytesIO()
    thumb.save(tbuf, "PNG", compress_level=1)
    return LoadedReference(
        data=encoded,
        thumbnail=tbuf.getvalue(),
        width=frame.width,
        height=frame.height,
        sha256=hashlib.sha256(encoded).hexdigest(),
        extension=ext,
        source=label,
    )


def store_copy(ref: LoadedReference, folder: Path) -> Path:
    """Keep the reference in ``folder`` named by its content hash (written atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / ref.file_name
    try:
        if target.stat().st_size == len(ref.data):
            return target
    except FileNotFoundError:
        pass
    # Named for this process: another one (a command line run beside the window) must not
    # take it for a leftover while it is written.
    atomic_write(target, ref.data, prefix=owned_name(TEMP_PREFIX))
    return target


TEMP_PREFIX = ".copy-"  # a copy being written: .copy-PID-XXXX.tmp


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete what an interrupted :func:`atomic_write` left behind (``.NAME.XXXX.tmp``):
    the files of processes that have ended; one whose name says no process, once it is an
    hour old (a process may be writing it this moment)."""
    removed: list[Path] = []
    try:
        candidates = list(folder.glob(".*.tmp"))
    except OSError:
        return removed
    for path in candidates:
        if not is_abandoned(path):
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed


_SVG_DOCTYPE_RE = re.compile(rb"<!DOCTYPE\s+svg[^>]*>\s*", re.I)
_SVG_START_RE = re.compile(rb"<svg[\s>]", re.I)
_HTML_START_RE = re.compile(rb"<(!DOCTYPE\s+html|html[\s>]|head[\s>]|body[\s>])", re.I)
_SPACE = b" \t\n\r\f\v"


def _past_prologue(head: bytes, *, xml_declaration: bool = False) -> bytes:
    """``head`` past its leading blanks, its XML declaration (if ``xml_declaration``) and
    its comments, each ending at the first ``-->``. A scan, not a regular expression: one
    that matched the comments with a repeated group tried every way of splitting them,
    twice as many with each comment more (a file of a few hundred bytes took hours)."""
    rest = head.lstrip(_SPACE)
    if xml_declaration and rest[:5].lower() == b"<?xml":
        end = rest.find(b">")
        if end >= 0:
            rest = rest[end + 1 :].lstrip(_SPACE)
    while rest.startswith(b"<!--"):
        end = rest.find(b"-->", 4)
        if end < 0:
            break
        rest = rest[end + 3 :].lstrip(_SPACE)
    return rest


def _looks_like_html(data: bytes) -> bool:
    """Whether ``data`` begins as a web page does (an SVG drawing inside one makes it no drawing)."""
    return bool(_HTML_START_RE.match(_past_prologue(data[:4096].lstrip(b"\xef\xbb\xbf"))))


def _looks_like_svg(data: bytes) -> bool:
    head = data[:4096].lstrip(b"\xef\xbb\xbf")
    rest = _past_prologue(head, xml_declaration=True)
    doctype = _SVG_DOCTYPE_RE.match(rest)
    if doctype is not None:
        rest = rest[doctype.end() :]
    return bool(_SVG_START_RE.match(rest)) or (head.lstrip()[:1] == b"<" and b"<svg" in head.lower())


_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")


def _has_image_signature(data: bytes) -> bool:
    return data.startswith(_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _page_message(label: str) -> str:
    return f"“{label}” is a web page or other document, not an image; use the image itself instead."


def _svg_message(label: str) -> str:
    return f"“{label}” is an SVG drawing, which the model cannot use; export it as PNG or JPEG first."


def refuse_oversized(label: str, width: int, height: int) -> None:
    """Refuse (:class:`InvalidImageError`, with its size) an image larger than a reference
    may be, before any of its pixels is encoded or decoded."""
    if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
        raise InvalidImageError(_bomb_message(label, width, height))


def _bomb_message(label: str, width: int | None = None, height: int | None = None) -> str:
    size = f" ({width}×{height})" if width and height else ""
    return (
        f"“{label}” is too large{size}: references may have at most {MAX_PIXELS // 1_000_000} megapixels "
        f"and {MAX_SIDE:,} pixels on a side, so save a smaller copy and use that."
    )


def _no_memory_message(label: str) -> str:
    return (
        f"“{label}” needs more memory to open than this computer has free; "
        "save a smaller copy and use that, or close other programs."
    )


def _too_large_download(label: str, max_bytes: int) -> str:
    return f"“{label}” is larger than {max_bytes // (1024 * 1024)} MB; save a smaller copy and drop the file."


def _url_label(url: str) -> str:
    """A web address as messages name it: its host (never a user name or password written
    into it) and the last part of its path."""
    parts = urlsplit(url.strip())
    name = parts.path.rstrip("/").rsplit("/", 1)[-1]
    host = parts.netloc.rpartition("@")[2]
    label = f"{host}/…/{name}" if name else host or "the web address"
    return label if len(label) <= 80 else label[:77] + "…"


# Which library image a loaded reference is (its imageUUID), given the file it was read from.
FindParent = Callable[[LoadedReference, "Path | None"], "str | None"]


@dataclass(frozen=True)
class KeptReference:
    """A reference read, checked and kept: what to send, what was read, and from where."""

    reference: ReferenceImage  # refers to the kept copy
    loaded: LoadedReference
    origin: Path | None  # the file it was read from, when it was one


def keep_references(refs: Sequence[ReferenceImage], folder: Path) -> list[KeptReference]:
    """Read, check and normalise each reference as the window's reference tray does (a URL
    is downloaded here) and keep a copy in ``folder`` named by its content. Raises
    :class:`InvalidImageError`."""
    kept = []
    for ref in refs:
        loaded = load_reference(ref.image)
        try:
            path = store_copy(loaded, folder)
        except OSError as exc:
            from krea_desktop.library.saving import describe_failure  # only when it fails

            raise KreaError(f"The reference could not be kept: {describe_failure(exc, folder)}.") from None
        origin = ref.image if isinstance(ref.image, Path) else None
        kept.append(KeptReference(ReferenceImage(path, ref.strength), loaded, origin))
    return kept


async def keep_references_aside(refs: Sequence[ReferenceImage], folder: Path) -> list[KeptReference]:
    """:func:`keep_references` on a thread of its own, for a command that may be cancelled
    (Ctrl+C) while a web address is downloaded: the command ends at once instead of waiting
    for a download that has stalled (up to its timeout). The thread is left to end with
    the process: its copies are written atomically, and a temporary file it leaves is
    removed at the window's next start."""
    import asyncio
    import threading

    loop = asyncio.get_running_loop()
    done: asyncio.Future[list[KeptReference]] = loop.create_future()

    def settle(kept: list[KeptReference] | None, error: BaseException | None) -> None:
        if done.done():  # cancelled meanwhile
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(kept or [])

    def work() -> None:
        kept: list[KeptReference] | None = None
        error: BaseException | None = None
        try:
            kept = keep_references(refs, folder)
        except BaseException as exc:  # handed to the command, which says what it was
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed: the command ended without it
            loop.call_soon_threadsafe(settle, kept, error)

    threading.Thread(target=work, name="keep references", daemon=True).start()
    return await done


def with_parents(kept: Sequence[KeptReference], find_parent: FindParent) -> tuple[ReferenceImage, ...]:
    """The kept references, each naming the library image it is (its lineage), if any."""
    return tuple(replace(k.reference, parent=find_parent(k.loaded, k.origin)) for k in kept)

"""Turning what is dropped or pasted (files, web images and addresses, raw image data)
into sources, and loading a source on a worker: decoded, checked, copied into the
references folder under its content hash, with its thumbnail."""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QBuffer, QIODevice, QMimeData, QUrl
from PySide6.QtGui import QImage, QPixmap

from krea_desktop.api import spec
from krea_desktop.library.inputs import (
    PASTED,
    FindParent,
    InvalidImageError,
    LoadedReference,
    is_data_uri,
    is_web_url,
    load_reference,
    looks_like_image_file,
    refuse_oversized,
    store_copy,
)
from krea_desktop.library.saving import describe_failure
from krea_desktop.models.references import FileKey
from krea_desktop.ui.mime import LIBRARY_IDS_MIME
from krea_desktop.ui.pixels import decoded

RAW_IMAGE_TYPES = (
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/gif",
    "image/bmp",
    "image/tiff",
    "image/avif",
    "image/svg+xml",  # last: only so that an SVG is refused with the right reason
)
# The addresses a drop can name for an image besides files: downloaded, or the image itself.
WEB_SCHEMES = ("http", "https", "data")
_IMG_SRC_RE = re.compile(r"""<img\b[^>]*?\bsrc\s*=\s*["']([^"']+)["']""", re.I)


def file_key(path: Path) -> FileKey | None:
    """The key of the file at ``path`` (one stat), or None when there is none: the same key
    means the same bytes, without reading them."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass
class Source:
    """One image to load, as it was given."""

    kind: str  # "path" | "url" | "bytes" | "qimage"
    value: Any
    strength: float = spec.DEFAULT_STRENGTH
    label: str | None = None  # where it came from, when known better than the value says
    parent: str = ""  # the library image it is, when already known (a restored tray)


@dataclass
class Loaded:
    """A source loaded: checked, copied into the references folder, with its thumbnail."""

    ref: LoadedReference
    path: Path
    thumbnail: QImage
    strength: float
    parent: str = ""  # the imageUUID of the library image it is, if any
    origin: FileKey | None = None  # the file it was read from, when it was one


@dataclass
class Batch:
    """Sources added together, shown in the order they were given whatever order they load in."""

    slots: list[Loaded | InvalidImageError | None]
    restoring: bool = False
    reveal: bool = True  # bring the column to each new card (brought in by the person, not set)
    shown: int = 0  # slots before this one have been dealt with
    errors: list[str] = field(default_factory=list)
    missing: int = 0
    # Slots on the downloads' runner: the host each comes from ("" for a pasted data URI).
    downloading: dict[int, str] = field(default_factory=dict)


def load_source(source: Source, folder: Path, find_parent: FindParent | None = None) -> Loaded:
    """Runs on a worker thread: decode, check, copy into the folder, make the thumbnail,
    and (with ``find_parent``) tell which library image it is."""
    value: Any = source.value
    # Taken before the file is read: a file changed meanwhile has a key that matches it no more.
    origin = file_key(value) if source.kind == "path" else None
    if source.kind == "qimage":
        # Refused by its size at once, not after seconds of encoding it (which a closing
        # window would wait for).
        refuse_oversized(source.label or PASTED, value.width(), value.height())
        buffer = QBuffer()
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        if not value.save(buffer, "PNG"):
            raise InvalidImageError("The dropped image could not be read; save it as a file and drop that instead.")
        value = bytes(buffer.data().data())
    ref = load_reference(value)
    if source.label:
        ref = replace(ref, source=source.label)
    try:
        path = store_copy(ref, folder)
    except OSError as exc:  # the folder, not the image: said so, with what to do
        raise InvalidImageError(f"The image was not added: {describe_failure(exc, folder)}.") from exc
    thumbnail = decoded(ref.thumbnail)  # not QImage.fromData: see ui.pixels
    parent = source.parent
    if not parent and find_parent is not None:
        try:
            parent = find_parent(ref, source.value if source.kind == "path" else None) or ""
        except Exception:  # lineage is a courtesy: a busy or damaged index must not refuse the image
            parent = ""
    return Loaded(ref, path, thumbnail, source.strength, parent, origin)


def local_file(text: str) -> Path | None:
    """The file that pasted ``text`` names (an absolute path, one beginning with ``~``, or a
    ``file://`` address) when there is one (one stat), else None."""
    text = text.strip()
    if text[:7].lower() == "file://":
        url = QUrl(text)
        if not url.isValid() or not url.isLocalFile():
            return None
        text = url.toLocalFile()
    elif not text.startswith(("/", "~")) and not os.path.isabs(text):
        return None
    try:
        path = Path(text).expanduser()
    except RuntimeError:  # "~someone" with no such user
        return None
    if not path.is_absolute():
        return None
    try:
        return path if path.is_file() else None
    except (OSError, ValueError):
        return None


def _names_an_image_file(text: str) -> bool:
    """Whether ``text`` is the path or ``file://`` address of an image file that is there."""
    path = local_file(text)
    return path is not None and looks_like_image_file(path)


def might_hold_image(mime: QMimeData) -> bool:
    if mime.hasFormat(LIBRARY_IDS_MIME) or mime.hasUrls() or mime.hasImage():
        return True
    if any(mime.hasFormat(t) for t in RAW_IMAGE_TYPES):
        return True
    if mime.hasText():
        text = mime.text().strip()
        first = text.splitlines()[0] if text else ""
        # As sources_from_mime takes them.
        return is_web_url(first) or is_data_uri(first) or local_file(first) is not None
    return mime.hasHtml()


# Text longer than this is taken for text, never for names of image files or addresses.
MAX_NAMES_TEXT = 64 * 1024


def images_without_text(mime: QMimeData) -> bool:
    """Whether ``mime`` may hold images (image data, files or addresses) and no text but
    those files' and addresses' own names: pasted into a text field, it is no text."""
    if not might_hold_image(mime):
        return False
    if not any(f == "text/plain" or f.startswith("text/plain;") for f in mime.formats()):
        return True  # Qt offers a URL list as text too; that alone is not text
    text = mime.text()
    if len(text) > MAX_NAMES_TEXT:  # far more than names of images: words (and not looked at line by line)
        return False
    lines = {line.strip() for line in text.splitlines() if line.strip()}
    urls = mime.urls()
    if not urls and lines and all(is_data_uri(line) or _names_an_image_file(line) for line in lines):
        return True  # images copied as text (a data URI, an image file's path): no words for a prompt
    # A file manager may write each address as the URL list has it (percent-encoded:
    # "my%20pics/a%20b.png"), as shown ("my pics/a b.png") or as a path.
    names = {u.toString() for u in urls} | {u.toLocalFile() for u in urls if u.isLocalFile()}
    names |= {bytes(u.toEncoded().data()).decode("ascii", "replace") for u in urls}
    return bool(names) and lines <= names


def sources_from_mime(mime: QMimeData) -> list[Source]:
    """What to load from a drop or paste, preferring data at hand over downloads."""
    urls = [u for u in mime.urls() if u.isValid()] if mime.hasUrls() else []
    if any(u.isLocalFile() for u in urls):
        # Files, and the web addresses given with them, in the order given.
        return [
            Source("path", Path(u.toLocalFile())) if u.isLocalFile() else Source("url", u.toString())
            for u in urls
            if u.isLocalFile() or u.scheme() in WEB_SCHEMES
        ]
    for kind in RAW_IMAGE_TYPES:
        if mime.hasFormat(kind):
            data = bytes(mime.data(kind).data())
            if data:
                return [Source("bytes", data)]
    if mime.hasImage():
        image = mime.imageData()
        if isinstance(image, QImage) and not image.isNull():
            return [Source("qimage", QImage(image))]
        if isinstance(image, QPixmap) and not image.isNull():
            return [Source("qimage", image.toImage())]
    web = [u.toString() for u in urls if u.scheme() in WEB_SCHEMES]
    if web:
        return [Source("url", w) for w in web]
    if mime.hasText():
        # Addresses and files named one a line, as a file manager copies them as text: all
        # of them, or the text is no list of images.
        lines = [line.strip() for line in mime.text().splitlines() if line.strip()]
        found: list[Source] = []
        for line in lines:
            if is_web_url(line) or is_data_uri(line):
                found.append(Source("url", line))
            elif (path := local_file(line)) is not None:
                found.append(Source("path", path))
            else:
                break
        if found and len(found) == len(lines):
            return found
    if mime.hasHtml():
        match = _IMG_SRC_RE.search(mime.html())
        address = html.unescape(match.group(1)).strip() if match else ""  # "&amp;" in HTML is "&"
        if is_web_url(address) or is_data_uri(address):
            return [Source("url", address)]
    return []

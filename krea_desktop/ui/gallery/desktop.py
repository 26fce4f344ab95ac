"""Handing gallery images to the rest of the desktop: the clipboard and the file manager."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMimeData, QUrl
from PySide6.QtGui import QGuiApplication, QImage

from krea_desktop.library.store import LibraryEntry
from krea_desktop.ui.mime import LIBRARY_IDS_MIME, encode_library_ids

if TYPE_CHECKING:
    from krea_desktop.api.record import GenerationRecord


def file_urls(entries: list[LibraryEntry]) -> list[QUrl]:
    """Each entry's file as a URL (made off the GUI thread for many: 100,000 take a
    third of a second)."""
    return [QUrl.fromLocalFile(f"{e.images_dir}{os.sep}{e.file_name}") for e in entries]


def copy_entries(
    entries: list[LibraryEntry], urls: list[QUrl], image: QImage | None = None, png: bytes | None = None
) -> None:
    """Put the images on the clipboard: their library ids, ``urls`` (their files, as
    :func:`file_urls` makes them, beside the GUI thread, for images found on disk there),
    and ``image`` (the first one's pixels, decoded by the caller) when given, with ``png``
    (:func:`png_with_record`) as the PNG that programs pasting a picture receive."""
    put_on_clipboard(urls, image, png, library_ids=[e.id for e in entries])


def put_on_clipboard(
    urls: list[QUrl], image: QImage | None = None, png: bytes | None = None, *, library_ids: list[int] | None = None
) -> None:
    """Put files (``urls``) on the clipboard, with the picture of the first (``image``,
    and ``png`` as the PNG programs pasting a picture receive) and, for gallery images,
    their ``library_ids``."""
    mime = QMimeData()  # a plain one: the clipboard may outlive every Python object
    if library_ids is not None:
        mime.setData(LIBRARY_IDS_MIME, QByteArray(encode_library_ids(library_ids)))
    mime.setUrls(urls)
    if image is not None and not image.isNull():
        mime.setImageData(image)
        if png:
            mime.setData("image/png", QByteArray(png))
    QGuiApplication.clipboard().setMimeData(mime)


# A picture's PNG for the clipboard is made up to this size (a larger one is offered as Qt
# encodes it, without its record).
MAX_CLIPBOARD_PNG = 64 * 1024 * 1024


def png_with_record(entry: LibraryEntry, image: QImage) -> bytes | None:
    """``entry``'s picture as a PNG that carries its parameters, for programs that paste a
    picture rather than a file (any thread): see :func:`png_of_file`, with the record as
    the library has it."""
    from krea_desktop.library.recall import record_of

    return png_of_file(entry.path, image, lambda _data: record_of(entry))


def png_of_file(
    path: Path, image: QImage | None = None, record: Callable[[bytes], GenerationRecord | None] | None = None
) -> bytes | None:
    """The picture of the image file at ``path`` as a PNG carrying what the file carries,
    as an export to PNG would (any thread): a PNG file as it is; a JPG's or a WEBP's pixels
    (``image``, decoded, else decoded here) as a PNG with the file's record (or
    ``record``'s, given the file's bytes) and another tool's texts (its A1111 line whole,
    ComfyUI's graphs). None when it cannot be made (Qt's own PNG of the picture is offered
    then)."""
    from krea_desktop.api.record import GenerationRecord
    from krea_desktop.library import metadata

    try:
        data = metadata.read_bytes(path, MAX_CLIPBOARD_PNG)
        if metadata.sniff_format(data) == "PNG":
            return data
        if image is None:
            from krea_desktop.ui.pixels import read_image_file

            image = read_image_file(path, auto_transform=True)
        buffer = QBuffer()
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        if image.isNull() or not image.save(buffer, "PNG"):  # type: ignore[call-overload]  # str, as PySide takes it
            return None
        png = bytes(buffer.data().data())
        if len(png) > MAX_CLIPBOARD_PNG:
            return None
        texts = metadata.tool_texts(data)
        made = (record(data) if record is not None else metadata.read_record(data)) or GenerationRecord()
        if not made.says_how_made and not texts:
            return png
        return metadata.embed(png, "PNG", made, carried=texts)
    except (OSError, ValueError, metadata.MetadataError):
        return None


def open_url(url: QUrl) -> bool:
    """Open ``url`` (a file, a folder or a web address) in the user's program for it,
    started with the user's environment, never the bundle's."""
    from krea_desktop.external import open_path_or_url  # subprocess and friends, on first use

    return open_path_or_url(url.toLocalFile() if url.isLocalFile() else url.toString())


def reveal_in_file_manager(path: Path) -> bool:
    """Open the folder holding ``path`` in the file manager (selecting a file needs
    desktop-specific calls; the folder opens everywhere)."""
    return open_url(QUrl.fromLocalFile(str(path.parent)))

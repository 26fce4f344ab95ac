"""Handing gallery images to the rest of the desktop: the clipboard and the file manager."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QMimeData, QUrl
from PySide6.QtGui import QGuiApplication, QImage

from krea_desktop.library.store import LibraryEntry
from krea_desktop.ui.mime import LIBRARY_IDS_MIME, encode_library_ids


def file_urls(entries: list[LibraryEntry]) -> list[QUrl]:
    """Each entry's file as a URL (made off the GUI thread for many: 100,000 take a
    third of a second)."""
    return [QUrl.fromLocalFile(f"{e.images_dir}{os.sep}{e.file_name}") for e in entries]


def copy_entries(entries: list[LibraryEntry], urls: list[QUrl], image: QImage | None = None) -> None:
    """Put the images on the clipboard: their library ids, ``urls`` (their files, as
    :func:`file_urls` makes them, beside the GUI thread, for images found on disk there),
    and ``image`` (the first one's pixels, decoded by the caller) when given."""
    mime = QMimeData()  # a plain one: the clipboard may outlive every Python object
    mime.setData(LIBRARY_IDS_MIME, QByteArray(encode_library_ids([e.id for e in entries])))
    mime.setUrls(urls)
    if image is not None and not image.isNull():
        mime.setImageData(image)
    QGuiApplication.clipboard().setMimeData(mime)


def open_url(url: QUrl) -> bool:
    """Open ``url`` (a file, a folder or a web address) in the user's program for it,
    started with the user's environment, never the bundle's."""
    from krea_desktop.external import open_path_or_url  # subprocess and friends, on first use

    return open_path_or_url(url.toLocalFile() if url.isLocalFile() else url.toString())


def reveal_in_file_manager(path: Path) -> bool:
    """Open the folder holding ``path`` in the file manager (selecting a file needs
    desktop-specific calls; the folder opens everywhere)."""
    return open_url(QUrl.fromLocalFile(str(path.parent)))

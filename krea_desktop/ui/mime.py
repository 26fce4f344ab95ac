"""What the gallery's own drags and copies carry (a JSON array of library ids), and images
pasted from the clipboard into whichever field has the focus."""

from __future__ import annotations

import json

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QGuiApplication, QKeyEvent, QKeySequence
from PySide6.QtWidgets import QWidget

# The app's own gallery drags its images with this type.
LIBRARY_IDS_MIME = "application/x-krea-desktop-image-ids"


def encode_library_ids(ids: list[int]) -> bytes:
    return json.dumps([int(i) for i in ids]).encode()


def decode_library_ids(data: bytes) -> list[int]:
    """Library ids from a gallery drag; refuses anything that is not a list of whole numbers."""
    try:
        value = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        value = None
    if not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
        from krea_desktop.library.inputs import InvalidImageError

        raise InvalidImageError("The dragged gallery items could not be read; try dragging them again.")
    return value


def clipboard_has_images_only(*, addresses_are_text: bool = False) -> bool:
    """Whether the clipboard holds an image (or image files or addresses) and no text.
    With ``addresses_are_text`` (a field for a web address), a web address on it is text to
    paste, not an image to download."""
    # Imported here: the tray's loading code (and the library's behind it) comes after
    # the window is first shown.
    from krea_desktop.ui.references.sources import images_without_text

    mime = QGuiApplication.clipboard().mimeData()
    if mime is None or not images_without_text(mime):
        return False
    if addresses_are_text:
        return mime.hasImage() or (mime.hasUrls() and all(u.isLocalFile() for u in mime.urls()))
    return True


class _ImagePasteToWindow(QObject):
    """Lets Ctrl+V through to the window (which adds a pasted image to the tray) from a
    field that would take it and paste nothing, while the clipboard holds no text."""

    def __init__(self, parent: QObject, *, addresses_are_text: bool = False) -> None:
        super().__init__(parent)
        self.addresses_are_text = addresses_are_text

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            event.type() == QEvent.Type.ShortcutOverride
            and isinstance(event, QKeyEvent)
            and event.matches(QKeySequence.StandardKey.Paste)
            and clipboard_has_images_only(addresses_are_text=self.addresses_are_text)
        ):
            event.ignore()
            return True
        return False


def paste_images_to_window(*fields: QWidget, address_fields: tuple[QWidget, ...] = ()) -> None:
    """Ctrl+V with an image on the clipboard, in any of ``fields`` (a line edit, a spin
    box), adds it to the tray as it does from the prompt: "paste anywhere". In
    ``address_fields`` (for web addresses) the same, but a web address copied from a
    browser is pasted there as text."""
    for field in fields:
        field.installEventFilter(_ImagePasteToWindow(field))
    for field in address_fields:
        field.installEventFilter(_ImagePasteToWindow(field, addresses_are_text=True))

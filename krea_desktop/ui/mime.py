"""What the gallery's own drags and copies carry: a JSON array of library ids."""

from __future__ import annotations

import json

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

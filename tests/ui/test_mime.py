"""What the gallery's drags and copies carry."""

from __future__ import annotations

import pytest

from krea_desktop.library.inputs import InvalidImageError
from krea_desktop.ui.mime import decode_library_ids, encode_library_ids


def test_library_ids_round_trip() -> None:
    assert decode_library_ids(encode_library_ids([3, 1, 2])) == [3, 1, 2]
    for bad in (b"nonsense", b'{"a": 1}', b'[1, "2"]', b"[true]", b"\xff"):
        with pytest.raises(InvalidImageError):
            decode_library_ids(bad)

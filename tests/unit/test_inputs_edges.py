"""Files that cannot be opened are refused with the reason that fits: a link that loops, a
link to nothing, no permission, or another error the system gives."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from krea_desktop.library import inputs
from krea_desktop.library.inputs import InvalidImageError, load_reference
from tests.helpers.images import image_bytes

pytestmark = pytest.mark.skipif(os.name != "posix", reason="symbolic links and errno values as POSIX has them")


def refusal(path: Path) -> str:
    with pytest.raises(InvalidImageError) as caught:
        load_reference(path)
    return str(caught.value)


def test_a_link_that_loops_is_not_called_a_permission_problem(tmp_path: Path) -> None:
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.symlink_to(b)
    b.symlink_to(a)
    for path in (loop, a):
        text = refusal(path)
        assert "permission" not in text
        circle = "is a link that goes round in a circle and leads to no file"
        assert text == f"“{path.name}” {circle}; drop the image itself instead."


def test_a_link_to_nothing_says_so(tmp_path: Path) -> None:
    dangling = tmp_path / "dangling.png"
    dangling.symlink_to(tmp_path / "nowhere.png")
    assert refusal(dangling) == (
        "“dangling.png” is a link to a file that does not exist; drop the image it was meant to lead to."
    )
    assert refusal(tmp_path / "gone.png") == "“gone.png” does not exist; it may have been moved or deleted."


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.EACCES, "check that you have permission to open it"),
        (errno.EPERM, "check that you have permission to open it"),
        (errno.EIO, "cannot be read (Input/output error); check that it is still there and try again"),
    ],
)
def test_a_read_that_fails_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, words: str) -> None:
    path = tmp_path / "picture.png"
    path.write_bytes(image_bytes())

    def failing(target: Path, max_bytes: int) -> bytes:
        raise OSError(code, os.strerror(code), str(target))

    monkeypatch.setattr(inputs, "read_regular_file", failing)
    text = refusal(path)
    assert text.startswith("“picture.png” cannot be read") and words in text
    assert ("permission" in text) == (code in (errno.EACCES, errno.EPERM))


def test_looks_like_image_file(tmp_path: Path) -> None:
    looks_like_image_file = inputs.looks_like_image_file
    png = tmp_path / "a.png"
    png.write_bytes(image_bytes())
    jpeg = tmp_path / "b.jpg"
    jpeg.write_bytes(image_bytes(fmt="JPEG"))
    words = tmp_path / "notes.png"
    words.write_bytes(b"hello words")
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    assert looks_like_image_file(png) and looks_like_image_file(jpeg)
    assert not looks_like_image_file(words)
    assert not looks_like_image_file(fifo)  # without waiting for a writer
    assert not looks_like_image_file(tmp_path / "missing.png")
    assert not looks_like_image_file(tmp_path)

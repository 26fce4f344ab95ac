"""Writing files whole (``fsutil.atomic_write``): permissions as the user's own files have."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from krea_desktop import fsutil
from krea_desktop.fsutil import atomic_write

posix_only = pytest.mark.skipif(os.name != "posix", reason="permission bits and the umask are POSIX's")


@posix_only
@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_a_written_file_gets_the_permissions_any_new_file_of_the_user_gets(tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    fsutil.umask.cache_clear()
    try:
        atomic_write(tmp_path / "image.png", b"\x89PNG")
        (tmp_path / "plain").write_bytes(b"")  # what open() gives a new file
    finally:
        os.umask(old)
        fsutil.umask.cache_clear()
    written = stat.S_IMODE((tmp_path / "image.png").stat().st_mode)
    assert written == stat.S_IMODE((tmp_path / "plain").stat().st_mode) == 0o666 & ~mask
    assert (tmp_path / "image.png").read_bytes() == b"\x89PNG"


@posix_only
def test_a_mode_given_is_the_mode_whatever_the_umask(tmp_path: Path) -> None:
    atomic_write(tmp_path / "key", b"secret", mode=0o600)
    atomic_write(tmp_path / "app.desktop", b"[Desktop Entry]", mode=0o644)
    assert stat.S_IMODE((tmp_path / "key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "app.desktop").stat().st_mode) == 0o644


def test_the_umask_is_read_without_being_changed() -> None:
    fsutil.umask.cache_clear()
    seen = fsutil.umask()
    now = os.umask(seen)  # set it to what was read: it comes back as it was
    os.umask(now)
    assert now == seen


def test_a_file_is_read_whole_in_one_piece_and_up_to_one_byte_past_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One read of the whole file: joining one piece is no copy, so reading a file costs
    its size in memory once, not twice."""
    path = tmp_path / "big.bin"
    data = os.urandom(3 * 1024 * 1024 + 17)
    path.write_bytes(data)
    asked: list[int] = []
    real_read = os.read

    def read(fd: int, n: int) -> bytes:
        asked.append(n)
        return real_read(fd, n)

    monkeypatch.setattr(fsutil.os, "read", read)
    assert fsutil.read_regular_file(path, 10 * 1024 * 1024) == data
    assert asked[0] >= len(data) and len(asked) == 2  # the file, then the end of it
    asked.clear()
    assert fsutil.read_regular_file(path, 1000) == data[:1001]
    assert asked == [1001]

"""Writing files so that a crash leaves the old content or the new, never a part."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# A temporary file no write lasts this long: past it, its writer is gone whatever its id says.
STALE_AFTER_S = 24 * 3600
_OWNER = re.compile(r"-(\d{1,10})-")


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; Windows cannot open folders for this)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# A temporary file's name keeps at most this many bytes of the final name: with its dot,
# random part and suffix it must fit where the final name fits (255 bytes, most systems).
_TEMP_NAME_BYTES = 200


def _temp_prefix(name: str) -> str:
    raw = os.fsencode(name)
    if len(raw) > _TEMP_NAME_BYTES:
        name = raw[:_TEMP_NAME_BYTES].decode("utf-8", "ignore")  # no character cut in two
    return f".{name}."


def atomic_write(
    path: Path,
    data: bytes,
    *,
    prefix: str | None = None,
    suffix: str = ".tmp",
    mode: int | None = None,
    replace: bool = True,
) -> None:
    """Write ``data`` to a temporary file beside ``path`` (named ``prefix…suffix``, by default
    ``.NAME.XXXX.tmp``, NAME cut short for a long name), fsync it, rename it over ``path``
    and fsync the folder. ``mode`` sets the permissions before anything is written (e.g.
    0o600 for a secret); without it the file gets what ``open()`` would give a new file
    (0o666 less the umask), not the owner-only 0o600 of a temporary file: an image saved to
    a shared or served folder is readable there as any other file the user saves.

    ``replace=False`` never puts it in the place of a file already there: it raises
    FileExistsError instead (a hard link, which fails on an existing name, where the file
    system has them; elsewhere a look first)."""
    folder = path.parent
    fd, tmp = tempfile.mkstemp(
        prefix=prefix if prefix is not None else _temp_prefix(path.name), suffix=suffix, dir=folder
    )
    try:
        with os.fdopen(fd, "wb") as fh:
            if os.name == "posix":
                os.fchmod(fh.fileno(), mode if mode is not None else 0o666 & ~umask())
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            put_new(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(folder)


# A temporary file :func:`write_among_users_files` makes: ".NAME.krea-PID-XXXX.tmp".
_USERS_TEMP = re.compile(r"^\..*\.krea-(\d{1,10})-[^./]*\.tmp$", re.DOTALL)
_SWEPT: set[str] = set()  # folders cleared of them by this process


def write_among_users_files(path: Path, data: bytes, *, replace: bool = True) -> None:
    """:func:`atomic_write` into a folder of the user's own (an export, ``--out``): its
    temporary file is named for this process, and those a killed process left in the
    folder (hidden, and there for good otherwise) are removed, once a process per folder."""
    folder = os.path.abspath(path.parent)
    if folder not in _SWEPT:
        _SWEPT.add(folder)
        _remove_abandoned_temporaries(Path(folder))
    atomic_write(path, data, prefix=owned_name(f"{_temp_prefix(path.name)}krea-"), replace=replace)


def _remove_abandoned_temporaries(folder: Path) -> None:
    try:
        with os.scandir(folder) as names:
            for de in names:
                match = _USERS_TEMP.match(de.name)
                if match is None or not de.is_file(follow_symlinks=False):
                    continue
                with contextlib.suppress(OSError):
                    stale = time.time() - de.stat(follow_symlinks=False).st_mtime > STALE_AFTER_S
                    if stale or not process_alive(int(match.group(1))):
                        os.unlink(de.path)
    except OSError:
        pass  # a folder that cannot be listed: the write says what is wrong with it


def put_new(tmp: str | Path, path: Path) -> None:
    """Rename ``tmp`` to ``path`` unless ``path`` exists (FileExistsError)."""
    if os.name == "nt":
        os.rename(tmp, path)  # refuses an existing name there
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system (FAT, some shares): look, then rename
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
        os.replace(tmp, path)
        return
    with contextlib.suppress(OSError):  # the file is in place; a leftover link is only clutter
        os.unlink(tmp)


def write_under_a_free_name(target: Path, write: Callable[[Path], object], tries: int = 1000) -> Path | None:
    """Call ``write`` with ``target``, else with ``NAME (2).ext``, ``NAME (3).ext``... until a
    call does not raise FileExistsError (``write`` never takes the place of a file there);
    the path written, or None when the first ``tries`` names are all taken."""
    for n in range(1, tries + 1):
        candidate = target if n == 1 else target.with_name(f"{target.stem} ({n}){target.suffix}")
        try:
            write(candidate)
        except FileExistsError:
            continue
        return candidate
    return None


@functools.cache
def umask() -> int:
    """The process's umask (read once: it is set at start and not changed after)."""
    with contextlib.suppress(OSError, ValueError):  # Linux says it without changing it
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere the only way to read it is to set it, and back at once
    os.umask(mask)
    return mask


if not Path("/proc/self/status").exists():
    umask()  # read at import, on the main thread: elsewhere reading it sets it for a moment


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (POSIX; elsewhere every process counts as alive, and
    only age makes its files stale)."""
    if pid <= 0:
        return False
    if pid == os.getpid() or os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, but belongs to someone else
        return True
    except (OverflowError, ValueError):  # a number no process has (a name written by hand)
        return False
    return True


@functools.cache
def _boot_id() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return ""


def process_identity(pid: int) -> str | None:
    """What tells process ``pid`` from a later one given the same id after it ended (the
    boot, and the moment it started: Linux's /proc); None where that cannot be told, or
    when no such process runs."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        started = text.rsplit(")", 1)[1].split()[19]  # field 22: start time, in ticks since boot
    except (OSError, IndexError):
        return None
    return f"{_boot_id()}:{started}"


def still_running(pid: int, identity: str | None) -> bool:
    """Whether the process that was ``pid`` when it noted ``identity`` (see
    :func:`process_identity`; None: not noted) is still running, not merely a process that
    has its id now: in a container or a sandbox the app may well start with the same id
    each time, and on any system ids are used again."""
    if not process_alive(pid):
        return False
    if not identity:
        return True
    now = process_identity(pid)
    return now is None or now == identity


def owned_name(prefix: str) -> str:
    """``prefix`` plus this process's id, for files and folders that others must leave alone
    while it runs (see :func:`is_abandoned`)."""
    return f"{prefix}{os.getpid()}-"


def is_abandoned(path: Path, now: float | None = None) -> bool:
    """Whether a temporary file or folder named by :func:`owned_name` was left by a process
    that has ended (or is older than any write), so it may be removed. A name without an
    owner counts as abandoned once it is an hour old."""
    try:
        age = (time.time() if now is None else now) - path.lstat().st_mtime
    except OSError:
        return False
    if age > STALE_AFTER_S:
        return True
    match = _OWNER.search(path.name)
    if match is None:
        return age > 3600
    return not process_alive(int(match.group(1)))


class NotARegularFile(OSError):
    """The path is a pipe, a device, a socket or a folder: nothing to read as a file."""


def _regular_fd(path: Path) -> tuple[int, os.stat_result]:
    """A descriptor of ``path`` opened for reading without waiting, and its status; refused
    with :class:`NotARegularFile` (closed) unless it is a regular file, where not waiting
    changes nothing."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotARegularFile(f"{path} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def open_regular_file(path: Path) -> BinaryIO:
    """``path`` opened for reading in binary, never blocking on a FIFO or a device: it is
    refused with :class:`NotARegularFile` unless it is a regular file."""
    fd, _st = _regular_fd(path)
    try:
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """Up to ``max_bytes + 1`` bytes of ``path`` (so the caller can tell a larger file),
    never blocking on a FIFO or a device: it is refused with :class:`NotARegularFile`
    unless it is a regular file."""
    fd, st = _regular_fd(path)
    try:
        chunks: list[bytes] = []
        left = max_bytes + 1
        # The whole file in one read where it can be (joining one piece is no copy, so a
        # 200 MB file costs 200 MB, not twice that); then on, for a file still growing.
        size = st.st_size + 1
        while left > 0:
            chunk = os.read(fd, min(left, max(size, 1 << 16)))
            size = 1 << 20
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)

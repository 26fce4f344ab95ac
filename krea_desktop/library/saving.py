"""Saving paid images so that a failed save loses nothing.

An image the library cannot take (disk full, read-only folder, the index busy or failing
to commit) is held in memory and written by a later :meth:`SaveQueue.retry`, so the rest
of the batch still arrives; :meth:`SaveQueue.spill` writes what is still held to a
fallback folder when the process must end. Before a paid request, :func:`check_writable`
says in one sentence what to fix.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path

from krea_desktop.api import spec
from krea_desktop.api.results import GeneratedImage
from krea_desktop.fsutil import atomic_write, write_under_a_free_name
from krea_desktop.library import metadata
from krea_desktop.library.store import Library, LibraryBusy, LibraryEntry, LibraryError
from krea_desktop.wording import counted, for_count, shortened, within

log = logging.getLogger(__name__)

# Room asked for before a request: the index and thumbnails, plus this much per image.
MIN_FREE_BYTES = 32 * 1024 * 1024
PER_IMAGE_BYTES = 8 * 1024 * 1024


def describe_failure(exc: BaseException, folder: Path) -> str:
    """Why writing into ``folder`` failed, and what to do, as the end of a sentence."""
    if isinstance(exc, LibraryBusy):  # not "try again": the images held are tried again by themselves
        return "another Krea Desktop window or command is writing to the library"
    if isinstance(exc, LibraryError):
        return within(str(exc))
    if isinstance(exc, OSError):
        if exc.errno == errno.ENAMETOOLONG:
            return f"{shortened(str(folder))} is a name too long for the disk; choose a shorter one"
        dangling = dangling_link(folder)
        if dangling is not None:  # makedirs says "File exists" of a link to nowhere
            target = os.readlink(dangling)
            return f"{dangling} is a link to {target}, which is not there (a drive not connected?)"
        in_the_way = file_in_the_way(folder)
        if in_the_way is not None:  # EEXIST or ENOTDIR from a makedirs, "File exists" said as such
            return f"{in_the_way} is a file where a folder should be; move that file away"
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"the disk holding {folder} is full; free some space"
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return f"{folder} cannot be written to; check its permissions or the disk it is on"
        return f"{folder} could not be written ({exc.strerror or exc})"
    return f"{folder} could not be written ({type(exc).__name__})"


def dangling_link(folder: Path) -> Path | None:
    """``folder``, or a folder above it, when it is a link to a place that is not there."""
    for place in (folder, *folder.parents):
        try:
            if place.is_symlink() and not place.exists():
                return place
        except OSError:
            return None
    return None


def file_in_the_way(folder: Path) -> Path | None:
    """The file standing where ``folder`` or one of the folders above it should be, if any."""
    for place in (folder, *folder.parents):
        try:
            if place.exists() and not place.is_dir():
                return place
        except OSError:  # cannot be looked at: not a file known to be in the way
            return None
    return None


def check_folder_writable(folder: Path) -> None:
    """Raise OSError unless ``folder`` takes a new file."""
    fd, probe = tempfile.mkstemp(prefix=".probe-", dir=folder)
    os.close(fd)
    os.unlink(probe)


def prepare_out_folder(folder: Path) -> None:
    """Make ``folder`` (``--out``) and check it takes files; :class:`LibraryError` in one
    sentence, before anything is sent, when it cannot."""
    try:
        if folder.exists() and not folder.is_dir():
            raise LibraryError(
                f"Nothing was sent: {folder} is a file, and --out names the folder to copy the images into."
            )
        folder.mkdir(parents=True, exist_ok=True)
        check_folder_writable(folder)
    except OSError as exc:
        raise LibraryError(f"Nothing was sent: {describe_failure(exc, folder)}.") from exc


def check_writable(library: Library, images: int = 1, *, notes: bool = True) -> None:
    """Raise :class:`LibraryError` (one sentence) unless ``images`` new images fit in the
    library: the folder takes a file, the index takes a write, and the disk has room; and,
    with ``notes`` (a service whose tasks can be collected later: not the demo's), that the
    note of the task can be kept."""
    folder = library.images_dir
    if not folder.is_dir():
        library.ensure_images_dir()  # deleted or moved by hand while the window was open
    try:
        check_folder_writable(folder)
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        raise LibraryError(f"Nothing was sent: {describe_failure(exc, folder)}.") from exc
    if notes:
        _check_notes(library)
    try:
        library.check_writable()  # the index too: the images would be paid for, and not indexed
    except LibraryBusy:
        pass  # another process writing a moment: the save waits its turn
    except LibraryError as exc:
        raise LibraryError(f"Nothing was sent: {within(str(exc))}.") from exc
    needed = MIN_FREE_BYTES + PER_IMAGE_BYTES * max(1, images)
    if free < needed:
        raise LibraryError(
            f"Nothing was sent: the disk holding {folder} has {free // 2**20} MB free and "
            f"{counted(images, 'image')} {for_count(images, 'needs', 'need')} about {needed // 2**20} MB; "
            "free some space."
        )


def _check_notes(library: Library) -> None:
    """The note of a task is kept in ``pending/`` until its images are in: without it a
    task cut short (the process killed, the network gone) would be paid for and never
    collected. :class:`LibraryError` when the folder cannot take one."""
    from krea_desktop.library.pending import PENDING_DIR

    pending = library.root / PENDING_DIR
    if pending.exists() and not pending.is_dir():
        raise LibraryError(
            f"Nothing was sent: {pending} is a file where the library keeps its notes of the tasks under way "
            "(so that one cut short is collected later); move it away."
        )
    try:
        pending.mkdir(parents=True, exist_ok=True)
        check_folder_writable(pending)
    except OSError as exc:
        raise LibraryError(f"Nothing was sent: {describe_failure(exc, pending)}.") from exc


class SaveQueue:
    """Saves images in arrival order; holds those that cannot be saved yet."""

    def __init__(self, library: Library) -> None:
        self.library = library
        self.held: list[GeneratedImage] = []
        self.problem: str | None = None  # one sentence while images are held
        self.reason = "the library could not take them"
        self._until = "that is fixed"  # what the images held wait for
        self._lock = threading.Lock()

    def save(self, image: GeneratedImage) -> list[LibraryEntry]:
        """Save any images held before ``image``, then ``image``; returns the entries saved
        now, in order (empty when ``image`` is held too)."""
        with self._lock:
            saved = self._retry_locked() if self.held else []
            if self.held:
                self.held.append(image)
                self._say()
                return saved
            try:
                saved.append(self.library.save(image))
            except (OSError, LibraryError) as exc:
                log.warning("could not save %s: %s", image.image_uuid, exc)
                self.held.append(image)
                self._say(exc)
            return saved

    def retry(self) -> list[LibraryEntry]:
        """Save what is held, in order, until one fails; returns what was saved."""
        with self._lock:
            return self._retry_locked()

    def _retry_locked(self) -> list[LibraryEntry]:
        saved: list[LibraryEntry] = []
        while self.held:
            try:
                saved.append(self.library.save(self.held[0]))
            except (OSError, LibraryError) as exc:
                self._say(exc)
                break
            self.held.pop(0)
        if not self.held:
            self.problem = None
        return saved

    def _say(self, exc: BaseException | None = None) -> None:
        if exc is not None:
            self.reason = describe_failure(exc, self.library.images_dir)
            self._until = "it is done" if isinstance(exc, LibraryBusy) else "that is fixed"
        n = len(self.held)
        self.problem = (
            f"{counted(n, 'paid image')} {for_count(n, 'is', 'are')} kept in memory because {self.reason}; "
            f"{for_count(n, 'it is', 'they are')} saved as soon as {self._until}."
        )

    def spill(self, folder: Path | None = None) -> Path | None:
        """Write what is still held (with records embedded) into ``folder`` (default: a new
        folder in the system's temporary folder); returns the folder, or None if nothing was
        held or nothing could be written there either."""
        with self._lock:
            if not self.held:
                return None
            target = folder or Path(tempfile.mkdtemp(prefix="krea-desktop-unsaved-"))
            written = 0
            for image in list(self.held):
                data = image.data
                record = metadata.record_for(image, datetime.now(timezone.utc))
                with contextlib.suppress(metadata.MetadataError):
                    data = metadata.embed(image.data, image.format, record)
                ext = spec.FORMAT_EXTENSIONS.get(spec.normalize_output_format(image.format) or "", "png")
                try:
                    target.mkdir(parents=True, exist_ok=True)
                    _write_beside(target, image.image_uuid, ext, data)
                except OSError as exc:
                    log.error("could not write %s to %s: %s", image.image_uuid, target, exc)
                    continue
                self.held.remove(image)
                written += 1
            return target if written else None


_SPILL_NAMES = 1000  # names tried for one image: NAME.png, NAME (2).png...


def _write_beside(folder: Path, stem: str, ext: str, data: bytes) -> Path:
    """Write ``data`` as ``stem.ext`` in ``folder``, or ``stem (2).ext`` and so on: never
    in the place of a file already there (a service may send one imageUUID in two tasks,
    and a folder given may hold an earlier run's images)."""
    written = write_under_a_free_name(
        folder / f"{stem}.{ext}", lambda path: atomic_write(path, data, replace=False), _SPILL_NAMES
    )
    if written is None:
        raise FileExistsError(errno.EEXIST, f"{_SPILL_NAMES} files named {stem} are there already", str(folder))
    return written

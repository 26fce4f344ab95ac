"""Deleting images with undo: files wait in a holding folder until the undo window closes,
then go to the system trash."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from send2trash import send2trash

from krea_desktop.fsutil import is_abandoned, owned_name, put_new
from krea_desktop.library.saving import describe_failure
from krea_desktop.library.store import Library, LibraryEntry, LibraryError
from krea_desktop.wording import for_count

log = logging.getLogger(__name__)

# The holding folder, inside the library folder.
PENDING_FOLDER = ".trash-pending"
# Put in a batch's folder while its Undo moves the files back: a process killed meanwhile
# leaves the rest to be put back by the next start, not sent to the system trash.
UNDOING = "undoing"


@dataclass
class TrashBatch:
    """Images deleted together: their rows, and their files held until the undo window closes."""

    folder: Path
    entries: list[LibraryEntry]
    held: dict[int, Path] = field(default_factory=dict)  # entry id -> file in the holding folder


def _not_moved(exc: OSError, folder: Path) -> str:
    return f"The selected images were not moved to the trash: {describe_failure(exc, folder)}."


class PendingTrash:
    """Deleting is undoable while the app runs: files first move into a private holding
    folder (``<library>/.trash-pending/``) and their rows leave the index; undo moves them
    back and restores the rows; :meth:`flush` hands held files to the system trash (after
    the undo window, on exit, and at the next start for anything a crash left behind).

    Just before going to the system trash a file returns to ``images/``, so the trash
    remembers that as its place: restoring it from there brings it back into the library
    at the next refresh (its parameters are embedded).
    """

    def __init__(self, library: Library, folder: Path | None = None) -> None:
        self.library = library
        self.folder = folder or library.root / PENDING_FOLDER
        self.batches: list[TrashBatch] = []
        self.returned: list[int] = []  # rows whose files flush_leftovers put back in images/
        # Files flush_leftovers put back in images/ without a row (an Undo cut short): the
        # next check of the folder indexes them from the records they carry.
        self.undone_files: list[str] = []
        self._lock = threading.RLock()

    def delete(self, entries: Iterable[LibraryEntry]) -> TrashBatch | None:
        wanted = list({e.id: e for e in entries}.values())
        if not wanted:
            return None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            # Named for this process: another instance's start-up leaves it (and this one's undo) alone.
            batch = TrashBatch(Path(tempfile.mkdtemp(prefix=owned_name("batch-"), dir=self.folder)), [])
        except OSError as exc:  # a read-only library, a full disk: nothing has moved
            raise LibraryError(_not_moved(exc, self.library.root)) from exc
        kept: list[LibraryEntry] = []
        refused: OSError | None = None
        with self.library.moving_files():
            for entry in wanted:
                held = batch.folder / entry.file_name
                try:
                    os.replace(entry.path, held)
                    batch.held[entry.id] = held
                except FileNotFoundError:
                    pass  # already gone: only the row goes
                except OSError as exc:
                    log.warning("could not move %s aside: %s", entry.path, exc)
                    refused = refused or exc
                    continue
                kept.append(entry)
            if not kept and refused is not None:  # not one could move: why, rather than nothing
                shutil.rmtree(batch.folder, ignore_errors=True)
                raise LibraryError(_not_moved(refused, self.library.images_dir))
            try:
                batch.entries = self.library.remove(e.id for e in kept)
            except BaseException:
                # The index refused (busy, or failing): put the files back, so nothing changed.
                for entry in kept:
                    moved = batch.held.get(entry.id)
                    if moved is not None:
                        with contextlib.suppress(OSError):
                            os.replace(moved, entry.path)
                shutil.rmtree(batch.folder, ignore_errors=True)
                raise
        if not batch.entries:
            # Nothing left the index (each was deleted already, by another window or a delete
            # asked twice): nothing to undo, so no batch stands on the undo list for it.
            shutil.rmtree(batch.folder, ignore_errors=True)
            return batch
        with self._lock:
            self.batches.append(batch)
        return batch

    def undo(self, batch: TrashBatch | None = None) -> TrashBatch | None:
        """Put ``batch`` (default: the latest) back: files into images/, rows into the index."""
        with self._lock:
            if batch is None:
                if not self.batches:
                    return None
                batch = self.batches[-1]
            if batch not in self.batches:
                return None
            self.batches.remove(batch)
        marker = batch.folder / UNDOING
        try:
            marker.touch()
        except OSError as exc:  # the undo goes on; only a kill during it would lose its way
            log.warning("could not mark %s as being undone: %s", batch.folder, exc)
        with self.library.moving_files():  # the files and their rows back together
            moved: list[LibraryEntry] = []
            back: list[LibraryEntry] = []  # the rows to restore, named as their files are now
            refused: OSError | None = None
            for entry in batch.entries:
                held = batch.held.get(entry.id)
                if held is None or not held.exists():
                    back.append(entry)  # its file was gone before the delete: the row alone
                    continue
                try:
                    # Under its own name, or, when another file took that name meanwhile
                    # (saved or copied in), the first free one beside it: never over it.
                    returned = _put_back(held, entry)
                except OSError as exc:
                    log.warning("could not move %s back: %s", held, exc)
                    refused = refused or exc
                    back.append(entry)
                    continue
                moved.append(returned)
                back.append(returned)
            try:
                if refused is not None:
                    # Rows without their files would read "file missing", and the holding
                    # folder would be removed with the files in it: nothing is restored.
                    n = len(batch.entries)
                    what = "The deleted image" if n == 1 else f"The {n:,} deleted images"
                    where = for_count(n, "it is", "they are")
                    raise LibraryError(
                        f"{what} could not be put back: {describe_failure(refused, self.library.images_dir)}; "
                        f"{where} still held in {batch.folder}, and Undo can be tried again."
                    ) from refused
                restored = self.library.restore(back)
            except BaseException:
                # Refused (a file, or the index): the batch stays undoable, its files held as they were.
                for entry in moved:
                    aside = batch.held[entry.id]
                    if entry.path.exists() and not aside.exists():
                        with contextlib.suppress(OSError):
                            os.replace(entry.path, aside)
                with self._lock:
                    self.batches.append(batch)
                with contextlib.suppress(OSError):
                    marker.unlink()
                raise
        self._remove_folder(batch)
        batch.entries = restored  # as indexed now: an id a newer image took is a new one
        return batch

    def _remove_folder(self, batch: TrashBatch) -> None:
        """The batch's holding folder goes; a file still in it goes to the system trash
        first, never with the folder (it is someone's image)."""
        for entry in batch.entries:
            held = batch.held.get(entry.id)
            if held is not None and held.exists():
                self._trash(held, entry.path)
        shutil.rmtree(batch.folder, ignore_errors=True)

    def release(self, batch: TrashBatch) -> bool:
        """End ``batch``'s undo window; False if it was undone already."""
        with self._lock:
            if batch not in self.batches:
                return False
            self.batches.remove(batch)
            return True

    def flush(self, batch: TrashBatch | None = None) -> list[str]:
        """Send held files to the system trash (``batch``, or every batch). Returns the
        names that could not be trashed (they are deleted instead: the person asked)."""
        with self._lock:
            batches = [batch] if batch is not None else list(self.batches)
            for b in batches:
                if b in self.batches:
                    self.batches.remove(b)
        failed: list[str] = []
        for b in batches:
            for entry in b.entries:
                held = b.held.get(entry.id)
                if held is not None and held.exists():
                    failed += self._trash(held, entry.path)
                self.library.drop_thumbnails(entry.image_uuid)
            shutil.rmtree(b.folder, ignore_errors=True)
        return failed

    def flush_leftovers(self) -> list[str]:
        """Trash what an earlier run left in the holding folder. Batches of a process still
        running are its own, still undoable: they stay. A file whose row is still in the
        index was never deleted (that run ended between moving the files aside and removing
        the rows): it goes back to ``images/``."""
        with self._lock:
            current = {b.folder for b in self.batches}
        failed: list[str] = []
        if not self.folder.is_dir():
            return failed
        back: list[int] = []  # rows whose files went back to images/
        undone: list[str] = []  # files an Undo cut short had not yet put back
        for sub in self.folder.iterdir():
            if sub in current or not sub.is_dir() or not is_abandoned(sub):
                continue
            stuck = False
            undoing = (sub / UNDOING).exists()
            for held in sub.iterdir():
                if not held.is_file() or held.name == UNDOING:
                    continue
                original = self.library.images_dir / held.name
                row = self._row_of(held)
                if (row is not None and not original.exists()) or (undoing and row is None):
                    try:
                        if row is not None:
                            os.replace(held, original)
                            back.append(row)
                        else:  # asked back: in images/ again, under a free name, indexed by the next check
                            undone.append(_put_back_file(held, original).name)
                    except OSError as exc:
                        log.warning("could not move %s back: %s; it stays held", held, exc)
                        stuck = True  # tried again at the next start
                    continue
                failed += self._trash(held, original)
            if not stuck:
                shutil.rmtree(sub, ignore_errors=True)
        if back:  # a check of the folder that ran before may have called them missing
            self.library.mark_present(back)
        self.returned = back
        self.undone_files = undone
        return failed

    def _row_of(self, held: Path) -> int | None:
        """The id of the row ``held`` still has in the index, or None."""
        entry = self.library.get_by_file_name(held.name)
        return entry.id if entry is not None else None

    def _trash(self, held: Path, original: Path) -> list[str]:
        # The file is back in images/ without a row for as long as the system trash takes:
        # the check of the folder must not find it there and index it as an image again.
        with self.library.moving_files():
            target = held
            if not original.exists() and self.library.get_by_file_name(original.name) is None:
                try:
                    os.replace(held, original)
                    target = original
                except OSError:
                    target = held
            try:
                send2trash(str(target))
                return []
            except Exception as exc:  # no trash on this system: delete, as asked
                log.warning("system trash refused %s (%s); deleting it", target, exc)
                with contextlib.suppress(OSError):
                    target.unlink()
                return [target.name]


def _put_back(held: Path, entry: LibraryEntry) -> LibraryEntry:
    """Move ``held`` back to ``entry``'s place in images/, or, that name taken, to the
    first free "NAME (2)" beside it; ``entry`` as named there."""
    target = _put_back_file(held, entry.path)
    return entry if target == entry.path else replace(entry, file_name=target.name)


def _put_back_file(held: Path, place: Path) -> Path:
    """Move ``held`` to ``place``, or, that name taken, to the first free "NAME (2)"
    beside it; the path it has now."""
    for n in range(1, _MOST_SAME_NAMES + 1):
        target = place if n == 1 else place.with_name(f"{place.stem} ({n}){place.suffix}")
        try:
            put_new(held, target)
        except FileExistsError:
            continue
        return target
    raise FileExistsError(errno.EEXIST, "no free name beside it", str(place))


_MOST_SAME_NAMES = 1000

"""Loading references into a :class:`ReferenceSet` in the background, in the order given.

Each image given (a file, a web address, pasted data) is decoded, checked and copied on a
worker (:func:`sources.load_source`); the set changes on the GUI thread only when it is
ready, and only in the order the images were given: a batch waits for its earlier slots,
and for the batches given before it, but for one still downloading (a slow host holds up
only the images given with it).
Whatever is refused leaves the set as it was and is said in one sentence through
:attr:`ReferenceLoader.message`, once per batch.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from krea_desktop.api import spec
from krea_desktop.library.inputs import InvalidImageError, looks_like_image_file
from krea_desktop.models.references import Reference, ReferenceSet, SavedReference
from krea_desktop.ui.background import BackgroundRunner, Runner, deliver_posted
from krea_desktop.ui.references.sources import Batch, FindParent, Loaded, Source, file_key, load_source
from krea_desktop.wording import counted, for_count, within

FULL = (
    f"The tray already holds {spec.MAX_REFERENCES} references, the most a generation can use; "
    "remove one to add another."
)


class ReferenceLoader(QObject):
    """Loads sources into ``model`` (whose copies go to ``references_dir``).

    ``busyChanged`` says when loads start and when the last has ended; ``pendingChanged``
    whenever the number of images still loading changes (they count against the room
    left). ``runner`` runs the loads (by default a thread pool of its own, and one more for
    downloads, which a closing window does not wait for).
    """

    message = Signal(str)  # a one-sentence explanation of something refused
    busyChanged = Signal(bool)
    pendingChanged = Signal()

    def __init__(
        self,
        model: ReferenceSet,
        references_dir: Path,
        *,
        find_parent: FindParent | None = None,
        runner: Runner | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.model = model
        self.references_dir = references_dir
        self._find_parent = find_parent
        self._runner: Runner = runner if runner is not None else BackgroundRunner(parent=self)
        # Downloads on a runner of their own: closing the window waits for the files and
        # pasted images still loading, and leaves a download (seconds, or a server that never
        # answers) behind.
        self._downloads: Runner = runner if runner is not None else BackgroundRunner(parent=self)
        self._thumbnails: dict[str, QImage] = {}  # decoded on a worker, for cards not yet made
        self._pending = 0  # slots reserved by loads in progress
        self._batches: list[Batch] = []
        self._restoring: dict[int, list[Source]] = {}  # by id(batch): the last session's tray
        # Whether the reference being added is one the person just brought in (shown even
        # where the column must scroll to it), not one the last session's tray gave back.
        self.reveal = False

    # --- reading ----------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Images still loading."""
        return self._pending

    def is_busy(self) -> bool:
        return self._pending > 0

    def downloading_from(self) -> str | None:
        """The host of the first image still downloading from the web, if one is."""
        for batch in self._batches:
            for index in sorted(batch.downloading):
                if batch.downloading[index]:
                    return batch.downloading[index]
        return None

    def room(self) -> int:
        """How many more references fit, counting those still loading."""
        return self.model.room(self._pending)

    def take_thumbnail(self, sha256: str) -> QImage | None:
        """The thumbnail decoded on the worker for the reference ``sha256``, once."""
        return self._thumbnails.pop(sha256, None)

    def no_room(self, count: int) -> str:
        """Why none of ``count`` images given together was added: they do not all fit."""
        room = self.room()
        if room <= 0:
            return FULL
        return (
            f"Only {counted(room, 'more reference')} {for_count(room, 'fits', 'fit')} in the tray "
            f"(at most {spec.MAX_REFERENCES}), so none of these {count} were added."
        )

    # --- loading ----------------------------------------------------------------------

    def start(
        self, sources: list[Source], restoring: bool = False, reveal: bool = True, said: list[str] | None = None
    ) -> bool:
        """Load ``sources`` as one batch: all of them, or (saying how many fit) none when
        there is not room for all. ``restoring``: the last session's tray, whose missing
        files are counted rather than each refused. ``said``: what was refused of what the
        person gave before these sources were made of it, said with the batch's own."""
        if not sources:
            return False
        if len(sources) > self.room() and (restoring or not self._fits(sources)):
            self.message.emit(self.no_room(len(sources)))
            return False
        batch = Batch(
            slots=[None] * len(sources), restoring=restoring, reveal=reveal and not restoring, errors=list(said or ())
        )
        self._batches.append(batch)
        if restoring:
            self._restoring[id(batch)] = list(sources)
        was_busy = self.is_busy()
        self._pending += len(sources)
        if not was_busy:
            self.busyChanged.emit(True)
        self.pendingChanged.emit()
        folder = self.references_dir
        for index, source in enumerate(sources):
            self._load(batch, index, source, folder)
        return True

    def _fits(self, sources: list[Source]) -> bool:
        """Whether the new images among ``sources`` fit, leaving out the files already known
        to be in the tray and those that are no image (each is still loaded, to say so).
        Reads no more than the first bytes of a file, and stops at the first that does not fit."""
        room = self.room()
        new = 0
        for source in sources:
            if source.kind == "path":
                path = Path(source.value)
                key = file_key(path)
                # Read before (this session or one before it), and its image is in the tray.
                known = self.model.read_from(key) if key is not None else None
                if known is not None and self.model.index_of(known) is not None:
                    continue  # read before, and its image is in the tray
                if path.parent == self.references_dir and self.model.index_of(path.stem) is not None:
                    continue  # a reference's kept copy, dragged in again
                if not looks_like_image_file(path):
                    continue
            new += 1
            if new > room:
                return False
        return True

    def _load(self, batch: Batch, index: int, source: Source, folder: Path) -> None:
        runner = self._downloads if source.kind == "url" else self._runner
        if runner is not self._runner:
            url = QUrl(str(source.value))
            batch.downloading[index] = url.host() if url.scheme() in ("http", "https") else ""  # "": pasted data
        runner.submit(
            lambda: load_source(source, folder, self._find_parent),
            lambda loaded: self._loaded(batch, index, loaded, None),
            lambda error: self._loaded(batch, index, None, error),
        )

    def _loaded(self, batch: Batch, index: int, result: Loaded | None, error: BaseException | None) -> None:
        if batch.slots[index] is not None:
            return  # abandoned as the window closed
        batch.downloading.pop(index, None)
        if isinstance(error, InvalidImageError):
            batch.slots[index] = error
        elif error is not None:
            batch.slots[index] = InvalidImageError(f"An image could not be added ({type(error).__name__}); try again.")
        else:
            batch.slots[index] = result
        self._flush()

    def _flush(self) -> None:
        """Add finished loads in order: a batch waits for its earlier slots, and for the
        batches before it but one waiting for a download."""
        position = 0
        while position < len(self._batches):
            batch = self._batches[position]
            while batch.shown < len(batch.slots) and batch.slots[batch.shown] is not None:
                slot = batch.slots[batch.shown]
                batch.shown += 1
                self._pending -= 1
                if slot is _GIVEN_UP:
                    continue  # a download the closing window does not wait for: nothing to say
                if isinstance(slot, InvalidImageError):  # said in the order given, not as loads end
                    if batch.restoring and "does not exist" in str(slot):
                        batch.missing += 1
                    else:
                        batch.errors.append(str(slot))
                elif isinstance(slot, Loaded):
                    self._add(batch, slot)
            if batch.shown < len(batch.slots):
                if batch.restoring or batch.shown not in batch.downloading:
                    break
                position += 1  # a slow host holds up only the images given with it
                continue
            self._batches.pop(position)
            self._restoring.pop(id(batch), None)
            self._report(batch)
        self.pendingChanged.emit()
        if not self.is_busy():
            self.busyChanged.emit(False)

    def _add(self, batch: Batch, slot: Loaded) -> None:
        if slot.origin is not None:  # a file dropped again is known before it is read
            self.model.note_origin(slot.ref.sha256, slot.origin)
        held = self.model.index_of(slot.ref.sha256)
        if held is not None:
            if not batch.restoring:
                batch.errors.append(f"{self._named(slot, held)} is already in the tray, as reference {held + 1}.")
            return
        if self.model.room() <= 0:
            batch.errors.append(f"“{slot.ref.source}” was not added: {within(FULL)}.")
            return
        self._thumbnails[slot.ref.sha256] = slot.thumbnail
        self.reveal = batch.reveal
        label = slot.ref.source
        if Path(label).stem == slot.ref.sha256:  # a kept copy (a recall, say): its own name back
            label = self.model.label_of(slot.ref.sha256) or label
        self.model.add(
            Reference(
                slot.path,
                slot.ref.sha256,
                slot.strength,
                label,
                slot.ref.width,
                slot.ref.height,
                slot.ref.thumbnail,
                slot.parent,
            )
        )

    def _named(self, slot: Loaded, held: int) -> str:
        """An image brought in again, as the tray names it: a gallery image as such (its
        file's name is its id), anything else by the name the tray shows for it (a kept
        copy's is its content hash)."""
        if slot.parent and Path(slot.ref.source).stem == slot.parent:
            return "That gallery image"
        return f"“{self.model[held].source or slot.ref.source}”"

    def _report(self, batch: Batch) -> None:
        if batch.missing:
            self.message.emit(
                f"{counted(batch.missing, 'reference')} from the last session "
                f"{for_count(batch.missing, 'was', 'were')} missing from {self.references_dir} and left out."
            )
        if batch.errors:
            first = batch.errors[0]
            if len(batch.errors) > 1:
                more = len(batch.errors) - 1
                first = f"{first.rstrip('.')} (and {counted(more, 'more item')} refused)."
            self.message.emit(first)

    def on_their_way(self) -> list[SavedReference]:
        """The references loaded but not yet in the tray (each batch waits for the one
        before it), and the last session's still being read, in the order they will take:
        a tray saved before they are in (the window closed while a slow disk read them)
        keeps them after those it holds, rather than losing them. Files found missing or
        unreadable are not kept, nor those brought in this session that are still loading
        (never shown, they were never in the tray)."""
        kept: list[SavedReference] = []
        # An image is kept once, as the tray takes it once: the held ones, then the first
        # on its way (a file brought in again while the last session's copy of it loads).
        seen = {ref.sha256 for ref in self.model.items()}
        for batch in self._batches:
            restoring = self._restoring.get(id(batch))
            for index in range(batch.shown, len(batch.slots)):
                slot = batch.slots[index]
                if isinstance(slot, Loaded) and slot.ref.sha256 not in seen:
                    seen.add(slot.ref.sha256)
                    kept.append(SavedReference(slot.path, slot.strength, slot.ref.source, slot.parent))
                elif slot is None and restoring is not None:
                    source = restoring[index]
                    path = Path(source.value)
                    if path.stem not in seen:  # a kept copy is named by its image's hash
                        seen.add(path.stem)
                        kept.append(SavedReference(path, source.strength, source.label or "", source.parent))
        return kept

    # --- closing ----------------------------------------------------------------------

    def finish(self, msecs: int = 5000) -> None:
        """The window is closing: let the files and pasted images still loading (up to
        ``msecs``) take their places, so that the tray saved now holds them. Images still
        downloading are given up (they were never in the tray): a download can take many
        seconds, and the window would stay on the screen, frozen, meanwhile."""
        if not self.is_busy():
            return
        if isinstance(self._runner, BackgroundRunner):
            self._runner.wait(msecs)
            deliver_posted(self._runner)
        for batch in self._batches:
            for index in sorted(batch.downloading):
                batch.slots[index] = _GIVEN_UP
            batch.downloading.clear()
        self._flush()

    def wait(self, msecs: int = 10_000) -> None:
        """Block until background loads finish (tests and shutdown)."""
        for runner in {id(r): r for r in (self._runner, self._downloads)}.values():
            if isinstance(runner, BackgroundRunner):
                runner.wait(msecs)
        with contextlib.suppress(RuntimeError):
            QApplication.processEvents()


_GIVEN_UP = InvalidImageError("given up as the window closed")  # a download the closing window does not wait for

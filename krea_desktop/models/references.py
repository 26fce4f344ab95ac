"""The reference set: up to ten images, in order, each pulling the result toward it (+)
or pushing it away (−), kept across restarts.

Each reference is a copy of the image in the references folder, named by its content
hash, so the set survives the original being moved or deleted. The set is saved as a
small JSON file (the copies' names, strengths and where each came from).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from krea_desktop.api import spec
from krea_desktop.api.record import image_id
from krea_desktop.api.request import ReferenceImage
from krea_desktop.fsutil import atomic_write, owned_name
from krea_desktop.models.events import Event

STATE_VERSION = 1


MAX_LABELS = 500  # names remembered for kept copies (a few tens of KB in the saved state)


FileKey = tuple[int, int, int, int]  # a file as the system knows it: device, inode, size, modification time


class StateError(Exception):
    """The saved set cannot be read; the message says so in one sentence."""


def clamp_strength(value: float) -> float:
    """A strength within −2..+2, in hundredths (what the controls show and the service gets)."""
    if not math.isfinite(value):
        return spec.DEFAULT_STRENGTH
    return max(spec.STRENGTH_MIN, min(spec.STRENGTH_MAX, round(value * 100) / 100))


@dataclass(frozen=True)
class Reference:
    path: Path  # the kept copy
    sha256: str
    strength: float = spec.DEFAULT_STRENGTH
    source: str = ""  # where it came from: a file name, an address, "pasted image"
    width: int = 0
    height: int = 0
    thumbnail: bytes = b""  # a small encoded image for views (not saved with the set)
    parent: str = ""  # the imageUUID of the library image this is, if it is one (lineage)

    def with_strength(self, value: float) -> Reference:
        return replace(self, strength=clamp_strength(value))


@dataclass(frozen=True)
class SavedReference:
    """One entry of the saved set, before its file is loaded again."""

    path: Path
    strength: float
    source: str
    parent: str = ""


class ReferenceSet:
    """The references, in order; a content hash appears at most once.

    Events: ``changed`` (membership or order), ``strength_changed`` (index, value).
    """

    def __init__(self, folder: Path, state_file: Path | None = None) -> None:
        self.folder = Path(folder)
        self.state_file = Path(state_file) if state_file else self.folder / "tray.json"
        self._items: list[Reference] = []
        # The names references were brought in by (a file's, "pasted image"), by content
        # hash, the latest last: a kept copy taken up again (recall, a sweep) is named by
        # its hash, and is given back its name.
        self._labels: dict[str, str] = {}
        # The files images were read from (device, inode, size, modification time) and the
        # content hash each gave, the latest last, kept with the set: a file dropped again
        # after a restart is known as an image in the tray before it is read (a drop of the
        # same nine files and a new one was refused whole, "only 1 more fits").
        self._by_origin: dict[FileKey, str] = {}
        self.changed: Event[[]] = Event()
        self.strength_changed: Event[[int, float]] = Event()

    # -- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Reference]:
        return iter(list(self._items))

    def __getitem__(self, index: int) -> Reference:
        return self._items[index]

    def items(self) -> tuple[Reference, ...]:
        return tuple(self._items)

    def index_of(self, sha256: str) -> int | None:
        return next((i for i, r in enumerate(self._items) if r.sha256 == sha256), None)

    def read_from(self, key: FileKey) -> str | None:
        """The content hash of the image the file ``key`` was read as, if it was."""
        return self._by_origin.get(key)

    def note_origin(self, sha256: str, key: FileKey) -> None:
        """The image ``sha256`` was read from the file ``key`` (kept with the set)."""
        self._by_origin.pop(key, None)
        self._by_origin[key] = sha256
        while len(self._by_origin) > MAX_LABELS:
            del self._by_origin[next(iter(self._by_origin))]

    def room(self, pending: int = 0) -> int:
        """How many more references fit, less ``pending`` ones still loading."""
        return spec.MAX_REFERENCES - len(self._items) - pending

    def requests(self) -> tuple[ReferenceImage, ...]:
        """The set as the request's references."""
        return tuple(ReferenceImage(r.path, r.strength, r.parent or None) for r in self._items)

    # -- changing ------------------------------------------------------------------------

    def label_of(self, sha256: str) -> str | None:
        """The name the image was brought in by, when it was in the set once."""
        return self._labels.get(sha256)

    def _remember(self, reference: Reference) -> None:
        label = reference.source
        if label and Path(label).stem != reference.sha256:  # a name, not the kept copy's hash
            self._labels.pop(reference.sha256, None)
            self._labels[reference.sha256] = label
            while len(self._labels) > MAX_LABELS:
                del self._labels[next(iter(self._labels))]

    def add(self, reference: Reference) -> bool:
        """Append ``reference``; False when its image is already in the set or the set is full."""
        return self.insert(len(self._items), reference)

    def insert(self, index: int, reference: Reference) -> bool:
        """Put ``reference`` at ``index`` (one removed, brought back, say); False when its
        image is already in the set or the set is full."""
        if self.index_of(reference.sha256) is not None or self.room() <= 0:
            return False
        self._remember(reference)
        index = max(0, min(len(self._items), index))
        self._items.insert(index, replace(reference, strength=clamp_strength(reference.strength)))
        self.changed.emit()
        return True

    def remove(self, index: int) -> None:
        if 0 <= index < len(self._items):
            del self._items[index]
            self.changed.emit()

    def clear(self) -> None:
        if self._items:
            self._items.clear()
            self.changed.emit()

    def replace_all(self, references: Sequence[Reference]) -> None:
        """Make the set exactly ``references`` (duplicates and any past ten left out)."""
        seen: set[str] = set()
        items: list[Reference] = []
        for ref in references:
            if ref.sha256 not in seen and len(items) < spec.MAX_REFERENCES:
                seen.add(ref.sha256)
                items.append(replace(ref, strength=clamp_strength(ref.strength)))
        self._items = items
        self.changed.emit()

    def move(self, source: int, target: int) -> None:
        """Move the reference at ``source`` so that it ends up at index ``target``."""
        n = len(self._items)
        if not (0 <= source < n):
            return
        target = max(0, min(n - 1, target))
        if source == target:
            return
        self._items.insert(target, self._items.pop(source))
        self.changed.emit()

    def set_strength(self, index: int, value: float) -> None:
        if not (0 <= index < len(self._items)):
            return
        ref = self._items[index]
        updated = ref.with_strength(value)
        if updated.strength != ref.strength:
            self._items[index] = updated
            self.strength_changed.emit(index, updated.strength)

    # -- across restarts -------------------------------------------------------------------

    def state_bytes(self, to_come: Sequence[SavedReference] = ()) -> bytes:
        """The set as saved; ``to_come``: saved entries not yet loaded again, kept after
        the references held (as many as there is room for)."""
        entries = []
        held = [(ref.path, ref.strength, ref.source, ref.parent) for ref in self._items]
        coming = [(s.path, s.strength, s.source, s.parent) for s in to_come]
        for path, strength, source, parent in (held + coming)[: max(len(held), spec.MAX_REFERENCES)]:
            try:
                name = str(path.relative_to(self.folder))
            except ValueError:
                name = str(path)
            entry: dict[str, object] = {"file": name, "strength": strength, "source": source}
            if parent:
                entry["parent"] = parent
            entries.append(entry)
        origins = [[*key, sha] for key, sha in self._by_origin.items()]
        state = {"version": STATE_VERSION, "references": entries, "labels": self._labels, "origins": origins}
        return json.dumps(state, indent=1).encode()

    def save(self, to_come: Sequence[SavedReference] = ()) -> None:
        """Write the set atomically (with ``to_come``: see :meth:`state_bytes`); raises
        OSError when the folder cannot be written."""
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        prefix = owned_name(".tray-")  # see remove_stale_temp_files
        atomic_write(self.state_file, self.state_bytes(to_come), prefix=prefix)

    def _unreadable(self) -> StateError:
        """The saved set cannot be read: the file is kept aside (the next save would
        replace it with the empty tray), and the error says where."""
        aside = self.state_file.with_name(f"{self.state_file.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(self.state_file, aside)
        except OSError:
            return StateError("The saved reference tray could not be read, so it starts empty.")
        return StateError(f"The saved reference tray could not be read, so it starts empty (kept as {aside.name}).")

    def read_saved(self) -> list[SavedReference]:
        """The entries of the saved set, in order (empty when none was saved); raises
        :class:`StateError` when the file cannot be read."""
        try:
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise self._unreadable() from exc
        entries = state.get("references") if isinstance(state, dict) else None
        if not isinstance(entries, list):
            raise self._unreadable()
        labels = state.get("labels")
        if isinstance(labels, dict):
            known = {k: v for k, v in list(labels.items())[-MAX_LABELS:] if isinstance(k, str) and isinstance(v, str)}
            self._labels = {**known, **self._labels}
        origins = state.get("origins")
        if isinstance(origins, list):
            noted = dict(self._by_origin)  # this session's own, newer, win
            self._by_origin = {}
            for entry in origins[-MAX_LABELS:]:
                if _is_origin(entry):
                    self.note_origin(entry[4], (entry[0], entry[1], entry[2], entry[3]))
            for key, sha in noted.items():
                self.note_origin(sha, key)
        saved: list[SavedReference] = []
        for entry in entries[: spec.MAX_REFERENCES]:
            if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
                continue
            strength = entry.get("strength", spec.DEFAULT_STRENGTH)
            if isinstance(strength, bool) or not isinstance(strength, (int, float)):
                strength = spec.DEFAULT_STRENGTH
            source = entry.get("source")
            source = source if isinstance(source, str) else ""
            parent = image_id(entry.get("parent")) or ""
            saved.append(SavedReference(self.folder / entry["file"], clamp_strength(float(strength)), source, parent))
        return saved


def _is_origin(value: object) -> bool:
    """Whether ``value`` is a saved origin: a file's four numbers, then a content hash."""
    return (
        isinstance(value, list)
        and len(value) == 5
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value[:4])
        and isinstance(value[4], str)
        and len(value[4]) <= 128
    )

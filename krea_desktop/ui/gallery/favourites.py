"""Favourites as last asked for, while their writes are under way.

The gallery writes favourites on the shared pool, where writes run in any order and
land later than the key press: F pressed twice quickly would otherwise read an image's
state before the first write landed, and the second write could land first. Each image's
wanted state is kept here from the press until its last write is done, and every write
applies what is wanted when it runs. A delete runs between writes, never beside one, and
the rows it removes carry the favourite last asked for: F then Delete then Undo brings the
image back marked, whichever of the two reached the index first. No Qt.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from krea_desktop.library.store import Library, LibraryEntry

if TYPE_CHECKING:
    from krea_desktop.library.trash import TrashBatch


class WantedFavourites:
    def __init__(self) -> None:
        self._wanted: dict[int, bool] = {}
        self._writes: dict[int, int] = {}  # writes not yet done, by image
        self._lock = threading.Lock()  # the two maps (held briefly: the GUI thread takes it)
        self._writing = threading.Lock()  # one write or delete at a time (on workers)

    def is_favourite(self, entry: LibraryEntry) -> bool:
        """``entry``'s favourite as last asked for (its row's, with no write under way)."""
        return self._wanted.get(entry.id, entry.favourite)

    def ask(self, ids: Collection[int], favourite: bool) -> None:
        """``ids`` are to be marked (True) or unmarked (False): one more write of each."""
        with self._lock:
            for i in ids:
                self._wanted[i] = favourite
                self._writes[i] = self._writes.get(i, 0) + 1

    def write(self, ids: Collection[int], library: Library) -> dict[bool, set[int]]:
        """Write what is wanted now for ``ids`` (a later press may have changed it); the
        ids marked (True) and unmarked (False). On a worker."""
        with self._writing:
            with self._lock:
                wanted = {value: {i for i in ids if self._wanted[i] is value} for value in (True, False)}
            for value, chosen in wanted.items():
                if chosen:
                    library.set_favourite(chosen, value)
        return wanted

    def deleting(self, delete: Callable[[], TrashBatch | None]) -> TrashBatch | None:
        """Run ``delete`` with no favourite write under way; the rows it removed keep the
        favourite last asked for (a write still to come finds no row, and Undo brings the
        row back as it was asked to be). On a worker."""
        with self._writing:
            batch = delete()
            if batch is not None:
                with self._lock:
                    batch.entries = [
                        dataclasses.replace(e, favourite=self._wanted[e.id]) if e.id in self._wanted else e
                        for e in batch.entries
                    ]
        return batch

    def settled(self, ids: Collection[int]) -> None:
        """One write of ``ids`` is over (done or failed): an image with none left reads
        its favourite from its row again."""
        with self._lock:
            for i in ids:
                self._writes[i] -= 1
                if not self._writes[i]:
                    del self._writes[i], self._wanted[i]

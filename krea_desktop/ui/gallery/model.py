"""The gallery's rows: a list model over the library, newest first, with a thumbnail
per row, and what a drag or copy of its images carries.

Only rows the view asks for are looked up (a few at a time, cached) and only their
thumbnails are loaded, within a memory budget. A new image costs the same whatever the
size of the library: row ids are kept oldest first, so the newest row is an append.
"""

from __future__ import annotations

import itertools
import os
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QByteArray,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QStringListModel,
    Qt,
    QUrl,
    Signal,
)
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap

from krea_desktop.library.store import Library, LibraryEntry, LibraryError
from krea_desktop.ui.gallery.rows import RowReader
from krea_desktop.ui.gallery.thumbnails import THUMB_SIZE, ThumbnailLoader
from krea_desktop.ui.mime import LIBRARY_IDS_MIME, encode_library_ids
from krea_desktop.ui.pixels import read_image_file

ModelIndex = QModelIndex | QPersistentModelIndex
SMALL_SCOPE = 1000  # scopes up to this many images are read by id, not filtered from every id
READ_BLOCK = 100  # rows are read ahead of the view a block of this many at a time
# Rows removed in more runs than this go in two steps, not one per run (remove_ids).
MANY_RUNS = 16
# A selection of up to this many rows is read row by row, at once; more are read otherwise
# (a drag's file names in one query, an action's rows off the GUI thread).
FEW_ROWS = 500


PLACEHOLDER_COLOUR = QColor(58, 58, 62)  # a cell whose thumbnail is still to come


def _placeholder(size: int, broken: bool = False) -> QPixmap:
    pm = QPixmap(size, size)
    pm.fill(PLACEHOLDER_COLOUR)
    if broken:
        p = QPainter(pm)
        p.setPen(QColor(200, 90, 90))
        p.drawText(pm.rect(), Qt.AlignmentFlag.AlignCenter, "broken")
        p.end()
    return pm


class ImageMimeData(QMimeData):
    """Library ids and file URLs at once; the pixels of a single image only when a
    receiver asks for them (a drop target or a paste), so a drag never decodes on start:
    as a picture, and as a PNG that carries the file's parameters (a JPG's or WEBP's too,
    as the clipboard's PNG does; Qt's own PNG of the picture would carry none)."""

    IMAGE_FORMAT = "application/x-qt-image"
    PNG_FORMAT = "image/png"

    def __init__(self, paths: Sequence[str | Path]) -> None:
        super().__init__()
        self.paths = paths

    def formats(self) -> list[str]:
        found = list(super().formats())
        if len(self.paths) == 1:
            found += [f for f in (self.IMAGE_FORMAT, self.PNG_FORMAT) if f not in found]
        return found

    def hasFormat(self, mimetype: str) -> bool:
        return mimetype in self.formats()

    def retrieveData(self, mimetype: str, preferredType: Any) -> Any:
        if mimetype == self.IMAGE_FORMAT and len(self.paths) == 1:
            try:  # never waiting on a FIFO put in the image's place
                image = read_image_file(Path(self.paths[0]), auto_transform=True)
            except OSError:
                return None
            return None if image.isNull() else image
        if mimetype == self.PNG_FORMAT and len(self.paths) == 1:
            from krea_desktop.ui.gallery.desktop import png_of_file

            png = png_of_file(Path(self.paths[0]))
            return QByteArray(png) if png else None
        return super().retrieveData(mimetype, preferredType)


def mime_for_entries(entries: list[LibraryEntry]) -> ImageMimeData:
    """What a drag or a copy of ``entries`` carries: their library ids (for the tray),
    file URLs (for file managers and other programs) and, for one image, its pixels."""
    return mime_for_files([(e.id, str(e.path)) for e in entries])


def mime_for_files(files: list[tuple[int, str]]) -> ImageMimeData:
    """:func:`mime_for_entries` from each image's library id and file (a string: a
    ``Path`` each costs seconds at 100,000)."""
    mime = ImageMimeData([path for _id, path in files])
    mime.setData(LIBRARY_IDS_MIME, QByteArray(encode_library_ids([i for i, _path in files])))
    mime.setUrls([QUrl.fromLocalFile(path) for _id, path in files])
    return mime


class GalleryModel(QStringListModel):
    """One row per library image, newest first.

    Holds only row ids; entries are looked up a page at a time when the view asks for a
    row, and thumbnails are kept within a memory budget (least recently drawn go first).

    The rows themselves are a QStringListModel's (empty strings, one per image), so the
    view's many row counts, indexes and flags per layout and repaint are answered in C++:
    every call from C++ into a Python ``rowCount`` is a chance for a busy background
    thread to take the GIL from the GUI thread. The delegate reads rows through
    :meth:`entry_at` directly.

    Row ids are held oldest first (``_rev``; row ``r`` is ``_rev[-1 - r]``) with each id's
    place in that list (``_pos``), so the new image that goes on top is an append and
    nothing else moves: adding costs the same at 100 rows as at 100,000.

    A *scope* (:meth:`set_scope`) narrows the rows to a set of entry ids, on top of the
    filters: a sweep's images, an image's ancestors. :attr:`scopeChanged` says when it is
    set, extended or cleared.
    """

    scopeChanged = Signal()
    # Rows spread over many runs are about to go in two steps (their rows, descending), and
    # have gone: a view keeps its current image's place and its scroll through them.
    scatteredRemoval = Signal(list)
    scatteredRemovalDone = Signal()
    # The index could not say which rows match (it is damaged): the sentence that says so.
    # The rows shown, and the filters they were read with, are kept.
    unanswered = Signal(str)

    EntryRole = Qt.ItemDataRole.UserRole + 1
    IdRole = Qt.ItemDataRole.UserRole + 2

    def __init__(self, library: Library, loader: ThumbnailLoader | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.loader = loader or ThumbnailLoader(library, parent=self)
        self.loader.loaded.connect(self._thumbnail_loaded)
        self._rev: list[int] = []  # row ids, oldest first: row r is _rev[-1 - r]
        self._pos: dict[int, int] = {}  # id -> its index in _rev
        self._scope: set[int] | None = None
        self._scope_admits: Callable[[LibraryEntry], bool] | None = None  # new images that join it
        self._scope_label = ""
        self._scope_gone: set[str] = set()  # images deleted from the scope, by imageUUID
        self._entries: OrderedDict[int, LibraryEntry] = OrderedDict()
        self._pixmaps: OrderedDict[int, QPixmap] = OrderedDict()
        self._stale: set[int] = set()  # pixmaps made for another cell size (shown until replaced)
        self._pixmap_bytes = 0
        self._broken: set[int] = set()
        self._filters: dict[str, Any] = {"search": None, "favourites_only": False, "ratio": None}
        self._placeholder = _placeholder(THUMB_SIZE)
        self._broken_pixmap = _placeholder(THUMB_SIZE, broken=True)
        self.max_cached = 1000  # entries
        # Entries of the blocks of rows beside the one painted are read on a worker.
        self.rows = RowReader(library, parent=self)
        self.rows.read.connect(self._rows_read)
        self._generation = 0  # changes when rows or entries change: pages read before are dropped
        self._reading: set[int] = set()  # ids asked of the worker, not yet come
        self._read_around: OrderedDict[int, None] = OrderedDict()  # blocks whose neighbours were asked for
        self._last_block = 0
        self.pixmap_budget = 96 * 1024 * 1024  # bytes of thumbnails kept in memory
        self.device_pixel_ratio = 1.0
        # The row list changes between Qt's "about to" and "done" signals, as the model
        # contract wants: connected before any view, this runs first on each "done".
        self._pending: Callable[[], None] | None = None
        for done in (self.rowsInserted, self.rowsRemoved, self.modelReset):
            done.connect(self._apply_pending)
        self.refresh()

    # --- contents --------------------------------------------------------------------

    def refresh(self, **filters: Any) -> None:
        """Read the rows again from the index, with ``filters`` changed (search,
        favourites_only, ratio) and within the scope; thumbnails already made are kept."""
        before = dict(self._filters)
        self._filters.update(filters)
        scope = self._scope
        prefetched: list[LibraryEntry] = []
        if scope is not None and len(scope) <= SMALL_SCOPE and not self._filters["search"]:
            # A few images (a sweep's, a lineage): read just those, not every id in the index.
            # The favourite and ratio filters are exact, so they are applied here the way
            # the index applies them; a search goes through the index's own matching.
            found = [e for e in self.library.get_many(scope).values() if self._matches(e)]
            found.sort(key=lambda e: (e.created_at, e.id))  # the index's order, oldest first
            ids = [e.id for e in found]
            prefetched = found[-self.max_cached :]
        else:
            try:
                ids = self.library.ids(**self._filters)
            except LibraryError as exc:
                self._filters = before
                self.unanswered.emit(str(exc))
                return
            if scope is not None:
                ids = [i for i in ids if i in scope]
            ids.reverse()

        def reset() -> None:
            self._rev = ids
            self._pos = dict(zip(ids, range(len(ids)), strict=True))
            self._entries.clear()
            self._entries_changed()
            for entry in prefetched:
                self._remember(entry)

        self._change_rows(reset, lambda: self.setStringList([""] * len(ids)))

    @property
    def filters(self) -> dict[str, Any]:
        return dict(self._filters)

    def narrowed(self) -> bool:
        """Whether a search, a filter or a scope may hide some of the library's images."""
        f = self._filters
        return self._scope is not None or bool(f["search"] or f["favourites_only"] or f["ratio"])

    # --- scope -----------------------------------------------------------------------

    def set_scope(
        self,
        ids: Collection[int] | None,
        label: str = "",
        *,
        refresh: bool = True,
        admits: Callable[[LibraryEntry], bool] | None = None,
    ) -> None:
        """Show only the entries ``ids`` (in the usual order, within the filters), called
        ``label`` where the scope is shown; ``None`` shows every image again. New images
        outside the scope are not shown until :meth:`extend_scope` takes them in, or
        ``admits(entry)`` says they belong (a sweep's images still arriving).
        ``refresh=False`` leaves the rows as they are until the next :meth:`refresh`."""
        self._scope = None if ids is None else set(ids)
        self._scope_admits = None if ids is None else admits
        self._scope_label = "" if ids is None else label
        self._scope_gone.clear()
        if refresh:
            self.refresh()
        self.scopeChanged.emit()

    def extend_scope(self, ids: Iterable[int]) -> None:
        """Take ``ids`` into the scope (nothing happens without one). Those already in the
        library that pass the filters show at once: on top when they are newer than every
        row shown (new images), else where they belong (by reading the rows again)."""
        if self._scope is None:
            return
        fresh = [i for i in dict.fromkeys(ids) if i not in self._scope]
        if not fresh:
            return
        self._scope.update(fresh)
        unseen = self.library.get_many(i for i in fresh if i not in self._pos)
        entries = [e for e in unseen.values() if self._matches(e)]
        if entries:
            entries.sort(key=lambda e: (e.created_at, e.id))
            top = self.entry_at(0)
            if top is None or (entries[0].created_at, entries[0].id) > (top.created_at, top.id):
                for entry in entries:  # oldest first, so the newest ends on top
                    self._insert_on_top(entry)
            else:
                self.refresh()
        self.scopeChanged.emit()

    def restored(self, entries: Iterable[LibraryEntry]) -> None:
        """Deleted images are back (an undo), perhaps under new ids: those deleted from the
        scope are in it again. The rows themselves are read by the next :meth:`refresh`."""
        if self._scope is None:
            return
        for entry in entries:
            if entry.image_uuid in self._scope_gone:
                self._scope_gone.discard(entry.image_uuid)
                self._scope.add(entry.id)

    def scope_label(self) -> str:
        """What the scope is called ("" without one)."""
        return self._scope_label

    def scope_ids(self) -> frozenset[int] | None:
        """The entry ids the rows are narrowed to, or None when every image is shown."""
        return None if self._scope is None else frozenset(self._scope)

    def has_scope(self) -> bool:
        return self._scope is not None

    def forget(self, ids: set[int] | None = None) -> None:
        """Drop what is known about ``ids`` (all when None): their files changed on disk."""
        if ids is None:
            self._pixmaps.clear()
            self._pixmap_bytes = 0
            self._broken.clear()
            self._entries.clear()
            self._entries_changed()
            return
        self.loader.forget(ids)
        for entry_id in ids:
            pm = self._pixmaps.pop(entry_id, None)
            if pm is not None:
                self._pixmap_bytes -= _pixmap_cost(pm)
            self._broken.discard(entry_id)
            self._stale.discard(entry_id)
            self._entries.pop(entry_id, None)
        self._entries_changed()

    def set_display_side(self, side: int, device_pixel_ratio: float = 1.0) -> None:
        """Thumbnails are delivered ``side`` device pixels across; those made for another
        size stay on screen until their replacement arrives."""
        side = round(side * device_pixel_ratio)
        if side == self.loader.display_side:
            return
        self.loader.display_side = side
        self.device_pixel_ratio = device_pixel_ratio
        self._stale = set(self._pixmaps)

    def _change_rows(self, change: Callable[[], None], qt_change: Callable[[], object]) -> None:
        """Make ``qt_change`` to the C++ rows; ``change`` to the Python ones follows once
        Qt has said "about to" (at the "done" signal, or after, if signals are blocked)."""
        self._pending = change
        qt_change()
        self._apply_pending()

    def _apply_pending(self, *_signal_args: object) -> None:
        change, self._pending = self._pending, None
        if change is not None:
            change()

    def _id_at(self, row: int) -> int:
        return self._rev[-1 - row]

    def _ids_between(self, first: int, stop: int) -> list[int]:
        """The ids of rows ``first`` up to (not including) ``stop``, top down."""
        n = len(self._rev)
        first, stop = max(0, first), min(n, stop)
        if first >= stop:
            return []
        return self._rev[n - stop : n - first][::-1]

    def _matches(self, entry: LibraryEntry) -> bool:
        f = self._filters
        if f["favourites_only"] and not entry.favourite:
            return False
        if f["ratio"] and entry.ratio != f["ratio"]:
            return False
        prompt = entry.prompt.lower()
        return all(term.lower() in prompt for term in (f["search"] or "").split())

    def add_entry(self, entry: LibraryEntry, thumbnail: QImage | None = None) -> None:
        """A new image was saved: show it at the top (if it passes the filters and is in
        the scope, when there is one). Costs the same whatever the number of rows."""
        if entry.id in self._pos:
            known = self._entries.get(entry.id)
            if known is None or known.image_uuid == entry.image_uuid:
                if entry != known:  # the same image, saved anew (a sheet drawn again)
                    self.forget({entry.id})
                    self.entry_changed(entry)
                return
            # A deleted image's id, given to this new one (the index gives the highest id
            # again) before the delete was told here: the old row goes, and leaves the
            # scope as a deleted image does (Undo brings it back); the new one comes as
            # any new image, into the scope only if the scope admits it.
            if self._scope is not None and entry.id in self._scope:
                self._scope.discard(entry.id)
                self._scope_gone.add(known.image_uuid)
            self.remove_ids({entry.id})
            self.forget({entry.id})
        if not self._matches(entry):
            return
        if self._scope is not None and entry.id not in self._scope:
            if self._scope_admits is None or not self._scope_admits(entry):
                return
            self._scope.add(entry.id)
        if thumbnail is not None and not thumbnail.isNull():
            pm = QPixmap.fromImage(thumbnail)
            side = self.loader.display_side
            if side and max(pm.width(), pm.height()) <= side:
                pm.setDevicePixelRatio(self.device_pixel_ratio)  # made at the cell's size
            else:
                self._stale.add(entry.id)  # made at another size: replaced when next painted
            self._keep_pixmap(entry.id, pm)
        self._insert_on_top(entry)

    def _insert_on_top(self, entry: LibraryEntry) -> None:
        self._remember(entry)

        def insert() -> None:
            self._pos[entry.id] = len(self._rev)
            self._rev.append(entry.id)

        self._change_rows(insert, lambda: self.insertRows(0, 1))

    def deleted(self, entries: Iterable[LibraryEntry]) -> None:
        """``entries`` were deleted from the library: their rows go, and they leave the
        scope too (the index gives a deleted image's id to the next new one, which would
        otherwise show in it); :meth:`restored` takes them back in."""
        # Not a row whose id a new image has taken since (see add_entry): that one stays.
        entries = [e for e in entries if (known := self._entries.get(e.id)) is None or known.image_uuid == e.image_uuid]
        ids = {e.id for e in entries}
        if self._scope is not None:
            self._scope_gone.update(e.image_uuid for e in entries if e.id in self._scope)
            self._scope -= ids
        self.remove_ids(ids)

    def remove_ids(self, ids: set[int]) -> None:
        """Take the rows ``ids`` away (no longer matching the filters, or deleted: then
        through :meth:`deleted`)."""
        rows = sorted((r for r in (self.row_of(i) for i in ids) if r is not None), reverse=True)
        runs = 1 + sum(1 for a, b in itertools.pairwise(rows) if b != a - 1) if rows else 0
        if runs > MANY_RUNS:
            self._remove_scattered(rows)
            self.forget(ids)
            return
        # Bottom up, so the rows still to remove keep their numbers; contiguous runs at once.
        i = 0
        while i < len(rows):
            last = first = rows[i]
            while i + 1 < len(rows) and rows[i + 1] == first - 1:
                i += 1
                first = rows[i]

            def cut(first: int = first, last: int = last) -> None:
                n = len(self._rev)
                start, stop = n - 1 - last, n - first  # rows first..last in _rev
                for entry_id in self._rev[start:stop]:
                    del self._pos[entry_id]
                del self._rev[start:stop]
                # Only the rows above the cut (newer, later in _rev) change places.
                for pos in range(start, len(self._rev)):
                    self._pos[self._rev[pos]] = pos

            def remove(first: int = first, last: int = last) -> bool:
                return self.removeRows(first, last - first + 1)

            self._change_rows(cut, remove)
            i += 1
        # Their thumbnails too: the index gives a deleted image's id to the next new one.
        self.forget(ids)

    def _remove_scattered(self, rows: list[int]) -> None:
        """Take away ``rows`` (descending), spread in many runs, in two of Qt's steps: the
        rows to keep of the stretch they span are put in again above it, then the whole
        stretch goes. Each run on its own was a step, and at each step the selection and
        the views worked through every row left: 2,000 images deleted from every fifth row
        of 10,000 held the window for 15 s. The row count only grows and then shrinks to
        what it ends at, so the view keeps its scroll position as it would run by run. The
        images kept in the stretch are no longer selected (the selection was, nearly
        always, what went): moving the selection's marks to their copies could select
        images it never held, where a selected run of rows held both kinds. The view keeps
        its current image through :attr:`scatteredRemoval`."""
        lowest, highest = rows[-1], rows[0]
        n = len(self._rev)
        start, stop = n - 1 - highest, n - lowest  # rows lowest..highest in _rev
        gone = {self._rev[n - 1 - r] for r in rows}
        stretch = self._rev[start:stop]
        kept = [entry_id for entry_id in stretch if entry_id not in gone]

        def renumber_from(first: int) -> None:
            for pos in range(first, len(self._rev)):
                self._pos[self._rev[pos]] = pos

        def put_above() -> None:  # in _rev, after the stretch: above it in the rows
            self._rev[stop:stop] = kept
            renumber_from(stop)

        def cut() -> None:
            for entry_id in gone:
                del self._pos[entry_id]
            del self._rev[start:stop]
            renumber_from(start)

        self.scatteredRemoval.emit(rows)
        if kept:
            self._change_rows(put_above, lambda: self.insertRows(lowest, len(kept)))
        self._change_rows(cut, lambda: self.removeRows(lowest + len(kept), highest - lowest + 1))
        self.scatteredRemovalDone.emit()

    def entry_changed(self, entry: LibraryEntry) -> None:
        self._remember(entry)
        self._entries_changed()
        row = self.row_of(entry.id)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx)

    def reload_entries(self, ids: set[int]) -> None:
        """Read ``ids`` again from the index (after changing them) and redraw their rows.
        Only the entries this model holds are read now; the others are read when next
        drawn (100,000 marked favourite at once would hold the GUI thread for seconds)."""
        held = [i for i in ids if i in self._entries]
        for i in held:
            del self._entries[i]
        self._entries_changed()  # pages being read may hold the old values
        for entry in self.library.get_many(held).values():
            self._remember(entry)
        for i in held:
            row = self.row_of(i)
            if row is not None:
                idx = self.index(row)
                self.dataChanged.emit(idx, idx)

    def entry_at(self, row: int) -> LibraryEntry | None:
        if not 0 <= row < len(self._rev):
            return None
        entry_id = self._id_at(row)
        entry = self._entries.get(entry_id)
        if entry is None:
            # Fetch a page around the row: scrolling asks for neighbours next.
            page = [i for i in self._ids_between(row - 20, row + 80) if i not in self._entries]
            fetched = self.library.get_many(page)
            for e in fetched.values():
                self._remember(e)
            entry = fetched.get(entry_id)
        else:
            self._entries.move_to_end(entry_id)
        self._read_ahead(row)
        return entry

    def _read_ahead(self, row: int) -> None:
        """Have the worker read the entries of the blocks of rows around ``row``'s that
        are not known yet, the next block in the direction the view moves first."""
        block = row // READ_BLOCK
        if block in self._read_around:
            return
        self._read_around[block] = None
        while len(self._read_around) > 4:
            self._read_around.popitem(last=False)
        step = 1 if block >= self._last_block else -1
        self._last_block = block
        # The worker reads the newest request first: the next block goes in last.
        for b in (block, block - step, block + 2 * step, block + step):
            ids = [
                i
                for i in self._ids_between(b * READ_BLOCK, (b + 1) * READ_BLOCK)
                if i not in self._entries and i not in self._reading
            ]
            if ids:
                self._reading.update(ids)
                for dropped in self.rows.request(self._generation, ids):
                    self._reading.difference_update(dropped)

    def _rows_read(self, generation: int, ids: list[int], entries: list[LibraryEntry]) -> None:
        self._reading.difference_update(ids)
        if generation != self._generation:
            return  # read before the rows or entries changed: it may be out of date
        for entry in entries:
            if entry.id in self._pos and entry.id not in self._entries:
                self._remember(entry)

    def _entries_changed(self) -> None:
        """Rows or entries changed: pages being read are out of date, and the blocks
        around the view are looked at again."""
        self._generation += 1
        self._reading.clear()
        self._read_around.clear()

    def entry_for(self, entry_id: int) -> LibraryEntry | None:
        row = self.row_of(entry_id)
        if row is not None:
            return self.entry_at(row)
        return self.library.get(entry_id)

    def row_of(self, entry_id: int) -> int | None:
        pos = self._pos.get(entry_id)
        return None if pos is None else len(self._rev) - 1 - pos

    def id_at(self, row: int) -> int | None:
        """The entry id of ``row`` (None past the rows)."""
        return self._id_at(row) if 0 <= row < len(self._rev) else None

    def ids(self) -> list[int]:
        """Every row's entry id, top down."""
        return self._rev[::-1]

    def ids_at(self, rows: Iterable[int]) -> list[int]:
        """The entry ids of ``rows``, in their order (rows past the end are left out).
        Nothing is read from the library."""
        n = len(self._rev)
        return [self._rev[-1 - r] for r in rows if 0 <= r < n]

    def _remember(self, entry: LibraryEntry) -> None:
        self._entries[entry.id] = entry
        self._entries.move_to_end(entry.id)
        while len(self._entries) > self.max_cached:
            self._entries.popitem(last=False)

    def _keep_pixmap(self, entry_id: int, pm: QPixmap) -> None:
        old = self._pixmaps.pop(entry_id, None)
        if old is not None:
            self._pixmap_bytes -= _pixmap_cost(old)
        self._pixmaps[entry_id] = pm
        self._pixmap_bytes += _pixmap_cost(pm)
        while self._pixmap_bytes > self.pixmap_budget and len(self._pixmaps) > 1:
            _, dropped = self._pixmaps.popitem(last=False)
            self._pixmap_bytes -= _pixmap_cost(dropped)

    @property
    def pixmap_bytes(self) -> int:
        """Bytes of thumbnails held in memory (within :attr:`pixmap_budget`)."""
        return self._pixmap_bytes

    # --- Qt model interface ------------------------------------------------------------

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rev):
            return None
        if role == self.IdRole:
            return self._id_at(index.row())
        if role not in _ENTRY_ROLES:
            return None
        entry = self.entry_at(index.row())
        if entry is None:
            return None
        if role == Qt.ItemDataRole.DecorationRole:
            return self.pixmap_for(entry)
        if role == Qt.ItemDataRole.ToolTipRole:
            ratio = entry.ratio or f"{entry.width}×{entry.height}"
            state = " · file missing" if entry.missing else (" · file broken" if entry.broken else "")
            return (
                f"{entry.prompt[:300]}\n{ratio} · seed {entry.seed} · {entry.created_at[:16].replace('T', ' ')}{state}"
            )
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return entry.prompt[:200]
        if role == self.EntryRole:
            return entry
        return None

    def setData(self, index: ModelIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        return False  # rows are library images: changed through the library, never in place

    def has_thumbnail(self, entry_id: int) -> bool:
        """Whether the row shows its real thumbnail (or is known broken), not the placeholder."""
        return entry_id in self._pixmaps or entry_id in self._broken

    def is_placeholder(self, pixmap: QPixmap) -> bool:
        """Whether ``pixmap`` is the one shown while a thumbnail is still to come (a square
        of :data:`PLACEHOLDER_COLOUR`, which a view may fill instead of scaling it)."""
        return pixmap is self._placeholder

    def pixmap_for(self, entry: LibraryEntry) -> QPixmap:
        pm = self._pixmaps.get(entry.id)
        if pm is not None:
            self._pixmaps.move_to_end(entry.id)
            if entry.id in self._stale:
                self._stale.discard(entry.id)
                self.loader.request(entry)
            return pm
        if entry.id in self._broken or entry.missing or entry.broken:
            self._broken.add(entry.id)
            return self._broken_pixmap
        self.loader.request(entry)
        return self._placeholder

    def _thumbnail_loaded(self, entry_id: int, image: QImage) -> None:
        row = self.row_of(entry_id)
        if image.isNull():
            self._broken.add(entry_id)
        elif row is not None:
            pm = QPixmap.fromImage(image)
            pm.setDevicePixelRatio(self.device_pixel_ratio)
            self._keep_pixmap(entry_id, pm)
            self._stale.discard(entry_id)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])

    # --- drag out ----------------------------------------------------------------------

    def mimeTypes(self) -> list[str]:
        return [LIBRARY_IDS_MIME, "text/uri-list", ImageMimeData.IMAGE_FORMAT]

    def mimeData(self, indexes: Any) -> QMimeData:
        rows = sorted({i.row() for i in indexes if i.isValid()})
        if len(rows) <= FEW_ROWS:
            return mime_for_entries([e for e in (self.entry_at(r) for r in rows) if e is not None])
        # Many (Ctrl+A, then a drag): each file's name in one query, not a row object each
        # (100,000 would hold the GUI thread for seconds).
        ids = self.ids_at(rows)
        names = self.library.file_names(ids)
        folder = os.path.join(self.library.images_dir, "")
        return mime_for_files([(i, folder + names[i]) for i in ids if i in names])

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction


_ENTRY_ROLES = {
    Qt.ItemDataRole.DecorationRole,
    Qt.ItemDataRole.ToolTipRole,
    Qt.ItemDataRole.AccessibleTextRole,
    GalleryModel.EntryRole,
}


def _pixmap_cost(pm: QPixmap) -> int:
    return pm.width() * pm.height() * max(1, pm.depth() // 8)

"""The gallery: a list model over the library, thumbnails loaded off the GUI thread, and
the view that shows them.

Only rows the view asks for are looked up (a few at a time, cached) and only their
thumbnails are loaded; pending loads for rows scrolled away are dropped. Thumbnails are
read from the library's ``thumbs/`` cache (written by the client thread for new images,
made here on first use for any other), decoded as QImage on a worker, and turned into a
QPixmap on the GUI thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QByteArray,
    QEvent,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QRunnable,
    QSize,
    QStringListModel,
    Qt,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QImage,
    QImageReader,
    QPainter,
    QPalette,
    QPen,
    QPixmap,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from krea_desktop.library.store import Library, LibraryEntry
from krea_desktop.ui.background import lower_priority, shared_pool
from krea_desktop.ui.mime import LIBRARY_IDS_MIME, encode_library_ids

log = logging.getLogger(__name__)

THUMB_SIZE = 256
ModelIndex = QModelIndex | QPersistentModelIndex


def make_thumbnail(source: Path, cache: Path, size: int = THUMB_SIZE) -> QImage:
    """Read the cached thumbnail, or make it from ``source`` and cache it. Any thread."""
    if cache.exists():
        reader = QImageReader(str(cache))
        image = reader.read()
        if not image.isNull():
            return image
    reader = QImageReader(str(source))
    reader.setAutoTransform(True)
    full = reader.size()
    if not full.isValid():
        return QImage()
    reader.setScaledSize(QSize(*cached_size(full.width(), full.height(), size)))
    image = reader.read()
    if image.isNull():
        return image
    return store_thumbnail(image, cache)


def cached_size(width: int, height: int, size: int = THUMB_SIZE) -> tuple[int, int]:
    """The pixel size of the cached thumbnail of a ``width`` x ``height`` image."""
    return _fit(width, height, size, size)


def store_thumbnail(image: QImage, cache: Path) -> QImage:
    """Write ``image`` (made at :func:`cached_size`) as the cached thumbnail ``cache``, the
    way :func:`make_thumbnail` reads it back; returns the image as written. Any thread."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".jpg", dir=cache.parent)
    os.close(fd)
    if image.hasAlphaChannel():
        image = image.convertToFormat(QImage.Format.Format_RGB32)
    if image.save(tmp, "JPG", 88):  # type: ignore[call-overload]  # the stubs say bytes; only str works
        os.replace(tmp, cache)
    else:
        os.unlink(tmp)
    return image


class _ThumbWorker(QRunnable):
    """Takes requests from the loader until none is left (newest first)."""

    def __init__(self, loader: ThumbnailLoader) -> None:
        super().__init__()
        self.loader = loader

    def run(self) -> None:
        lower_priority()  # never ahead of the GUI thread for the CPU
        while (job := self.loader._next_job()) is not None:
            entry_id, source, cache, side = job
            try:
                image = make_thumbnail(source, cache, self.loader.size)
                if side and not image.isNull() and max(image.width(), image.height()) != side:
                    # At the size it is drawn: painting then copies pixels instead of scaling them.
                    image = image.scaled(
                        side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
                    )
            except Exception:  # a broken file shows as broken, never as a crash
                log.exception("thumbnail of %s failed", source)
                image = QImage()
            self.loader._done(entry_id, image)


class ThumbnailLoader(QObject):
    """Loads thumbnails on a small pool of workers; the most recent request goes first,
    since it is for the rows on screen now, and requests for rows gone from the screen
    are dropped with :meth:`keep_only` before they are started."""

    loaded = Signal(int, QImage)  # entry id, image (null if the file is broken)

    def __init__(self, library: Library, size: int = THUMB_SIZE, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.size = size
        self._threads = 2  # workers at most; they run on the window's shared pool
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self.display_side = 0  # pixels the thumbnails are delivered at (0: as cached)
        self._queue: OrderedDict[int, tuple[Path, Path, int]] = OrderedDict()  # waiting, oldest first
        self._running: set[int] = set()
        self._workers = 0

    def request(self, entry: LibraryEntry) -> None:
        cache = self.library.thumb_path(entry.image_uuid, self.size)
        with self._lock:
            if entry.id in self._running:
                return
            self._queue[entry.id] = (entry.path, cache, self.display_side)
            self._queue.move_to_end(entry.id)
            start = self._workers < self._threads
            if start:
                self._workers += 1
        if start:
            shared_pool().start(_ThumbWorker(self))

    def keep_only(self, ids: set[int]) -> None:
        """Drop pending work for rows no longer on screen."""
        with self._lock:
            for entry_id in [i for i in self._queue if i not in ids]:
                del self._queue[entry_id]

    def pending(self) -> int:
        with self._lock:
            return len(self._queue) + len(self._running)

    def _next_job(self) -> tuple[int, Path, Path, int] | None:
        with self._lock:
            if not self._queue:
                self._workers -= 1
                self._idle.notify_all()
                return None
            entry_id, (source, cache, side) = self._queue.popitem(last=True)
            self._running.add(entry_id)
            return entry_id, source, cache, side

    def _done(self, entry_id: int, image: QImage) -> None:
        with self._lock:
            self._running.discard(entry_id)
        with contextlib.suppress(RuntimeError):  # the gallery closed while this one was made
            self.loaded.emit(entry_id, image)

    def wait(self, msecs: int = -1) -> bool:
        """Block until no thumbnail is being made (tests and shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._workers == 0, None if msecs < 0 else msecs / 1000)


def _placeholder(size: int, broken: bool = False) -> QPixmap:
    pm = QPixmap(size, size)
    pm.fill(QColor(58, 58, 62))
    if broken:
        p = QPainter(pm)
        p.setPen(QColor(200, 90, 90))
        p.drawText(pm.rect(), Qt.AlignmentFlag.AlignCenter, "broken")
        p.end()
    return pm


class ImageMimeData(QMimeData):
    """Library ids and file URLs at once; the pixels of a single image only when a
    receiver asks for them (a drop target or a paste), so a drag never decodes on start."""

    IMAGE_FORMAT = "application/x-qt-image"

    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        self.paths = paths

    def formats(self) -> list[str]:
        found = list(super().formats())
        if len(self.paths) == 1 and self.IMAGE_FORMAT not in found:
            found.append(self.IMAGE_FORMAT)
        return found

    def hasFormat(self, mimetype: str) -> bool:
        return mimetype in self.formats()

    def retrieveData(self, mimetype: str, preferredType: Any) -> Any:
        if mimetype == self.IMAGE_FORMAT and len(self.paths) == 1:
            reader = QImageReader(str(self.paths[0]))
            reader.setAutoTransform(True)
            image = reader.read()
            return None if image.isNull() else image
        return super().retrieveData(mimetype, preferredType)


def mime_for_entries(entries: list[LibraryEntry]) -> ImageMimeData:
    """What a drag or a copy of ``entries`` carries: their library ids (for the tray),
    file URLs (for file managers and other programs) and, for one image, its pixels."""
    mime = ImageMimeData([e.path for e in entries])
    mime.setData(LIBRARY_IDS_MIME, QByteArray(encode_library_ids([e.id for e in entries])))
    mime.setUrls([QUrl.fromLocalFile(str(e.path)) for e in entries])
    return mime


class GalleryModel(QStringListModel):
    """One row per library image, newest first.

    Holds only row ids; entries are looked up a page at a time when the view asks for a
    row, and thumbnails are kept within a memory budget (least recently drawn go first).

    The rows themselves are a QStringListModel's (empty strings, one per image), so the
    view's many row counts, indexes and flags per layout and repaint are answered in C++:
    a Python ``rowCount`` was called some 200 times per inserted image, and every such
    call from C++ into Python is a chance for a busy background thread to take the GIL
    from the GUI thread. The delegate reads rows through :meth:`entry_at` directly.
    """

    EntryRole = Qt.ItemDataRole.UserRole + 1
    IdRole = Qt.ItemDataRole.UserRole + 2

    def __init__(self, library: Library, loader: ThumbnailLoader | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.loader = loader or ThumbnailLoader(library, parent=self)
        self.loader.loaded.connect(self._thumbnail_loaded)
        self._ids: list[int] = []
        self._row_of: dict[int, int] = {}
        self._entries: OrderedDict[int, LibraryEntry] = OrderedDict()
        self._pixmaps: OrderedDict[int, QPixmap] = OrderedDict()
        self._stale: set[int] = set()  # pixmaps made for another cell size (shown until replaced)
        self._pixmap_bytes = 0
        self._broken: set[int] = set()
        self._filters: dict[str, Any] = {"search": None, "favourites_only": False, "ratio": None}
        self._placeholder = _placeholder(THUMB_SIZE)
        self._broken_pixmap = _placeholder(THUMB_SIZE, broken=True)
        self.max_cached = 1000  # entries
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
        favourites_only, ratio); thumbnails already made are kept."""
        self._filters.update(filters)
        ids = self.library.ids(**self._filters)

        def reset() -> None:
            self._ids = ids
            self._reindex()
            self._entries.clear()

        self._change_rows(reset, lambda: self.setStringList([""] * len(ids)))

    @property
    def filters(self) -> dict[str, Any]:
        return dict(self._filters)

    def forget(self, ids: set[int] | None = None) -> None:
        """Drop what is known about ``ids`` (all when None): their files changed on disk."""
        if ids is None:
            self._pixmaps.clear()
            self._pixmap_bytes = 0
            self._broken.clear()
            self._entries.clear()
            return
        for entry_id in ids:
            pm = self._pixmaps.pop(entry_id, None)
            if pm is not None:
                self._pixmap_bytes -= _pixmap_cost(pm)
            self._broken.discard(entry_id)
            self._entries.pop(entry_id, None)

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

    def _reindex(self) -> None:
        self._row_of = {entry_id: row for row, entry_id in enumerate(self._ids)}

    def _matches(self, entry: LibraryEntry) -> bool:
        f = self._filters
        if f["favourites_only"] and not entry.favourite:
            return False
        if f["ratio"] and entry.ratio != f["ratio"]:
            return False
        prompt = entry.prompt.lower()
        return all(term.lower() in prompt for term in (f["search"] or "").split())

    def add_entry(self, entry: LibraryEntry, thumbnail: QImage | None = None) -> None:
        """A new image was saved: show it at the top (if it passes the filters)."""
        if entry.id in self._row_of or not self._matches(entry):
            return
        self._remember(entry)
        if thumbnail is not None and not thumbnail.isNull():
            pm = QPixmap.fromImage(thumbnail)
            side = self.loader.display_side
            if side and max(pm.width(), pm.height()) <= side:
                pm.setDevicePixelRatio(self.device_pixel_ratio)  # made at the cell's size
            else:
                self._stale.add(entry.id)  # made at another size: replaced when next painted
            self._keep_pixmap(entry.id, pm)

        def insert() -> None:
            self._ids.insert(0, entry.id)
            self._reindex()

        self._change_rows(insert, lambda: self.insertRows(0, 1))

    def remove_ids(self, ids: set[int]) -> None:
        rows = sorted((r for r in (self._row_of.get(i) for i in ids) if r is not None), reverse=True)
        # Bottom up, so the rows still to remove keep their numbers; contiguous runs at once.
        i = 0
        while i < len(rows):
            last = first = rows[i]
            while i + 1 < len(rows) and rows[i + 1] == first - 1:
                i += 1
                first = rows[i]

            def cut(first: int = first, last: int = last) -> None:
                del self._ids[first : last + 1]
                self._reindex()

            def remove(first: int = first, last: int = last) -> bool:
                return self.removeRows(first, last - first + 1)

            self._change_rows(cut, remove)
            i += 1
        for entry_id in ids:
            self._entries.pop(entry_id, None)

    def entry_changed(self, entry: LibraryEntry) -> None:
        self._remember(entry)
        row = self._row_of.get(entry.id)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx)

    def reload_entries(self, ids: set[int]) -> None:
        """Read ``ids`` again from the index (after changing them) and redraw their rows."""
        for entry in self.library.get_many(ids).values():
            self.entry_changed(entry)

    def entry_at(self, row: int) -> LibraryEntry | None:
        if not 0 <= row < len(self._ids):
            return None
        entry_id = self._ids[row]
        entry = self._entries.get(entry_id)
        if entry is None:
            # Fetch a page around the row: scrolling asks for neighbours next.
            page = [i for i in self._ids[max(0, row - 20) : row + 80] if i not in self._entries]
            fetched = self.library.get_many(page)
            for e in fetched.values():
                self._remember(e)
            entry = fetched.get(entry_id)
        else:
            self._entries.move_to_end(entry_id)
        return entry

    def entry_for(self, entry_id: int) -> LibraryEntry | None:
        row = self._row_of.get(entry_id)
        if row is not None:
            return self.entry_at(row)
        return self.library.get(entry_id)

    def row_of(self, entry_id: int) -> int | None:
        return self._row_of.get(entry_id)

    def ids(self) -> list[int]:
        return list(self._ids)

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
        if not index.isValid() or not 0 <= index.row() < len(self._ids):
            return None
        if role == self.IdRole:
            return self._ids[index.row()]
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
        row = self._row_of.get(entry_id)
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
        entries = [e for e in (self.entry_at(r) for r in rows) if e is not None]
        return mime_for_entries(entries)

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


def _fit(w: int, h: int, box_w: int, box_h: int) -> tuple[int, int]:
    """``QSize(w, h).scaled(box_w, box_h, KeepAspectRatio)`` in integers."""
    if w <= 0 or h <= 0:
        return box_w, box_h
    scaled_w = box_h * w // h
    if scaled_w <= box_w:
        return scaled_w, box_h
    return box_w, box_w * h // w


_CELL = QColor(40, 40, 44)
_BADGE_BACK = QColor(0, 0, 0, 150)
_HOVER_PEN = QPen(QColor(255, 255, 255, 90), 1)
_FAVOURITE = QColor(240, 190, 60)
_WARNING = QColor(210, 80, 80)
_COST = QColor(120, 160, 120)
_CENTRED = int(Qt.AlignmentFlag.AlignCenter.value)


class GalleryDelegate(QStyledItemDelegate):
    """Draws each image fitted into a square cell, with small badges: favourite, NSFW
    (blurred until revealed), cost, and a mark for missing or broken files.

    Painting runs for every visible cell on every repaint, so it reads the row straight
    from the model and draws with integer coordinates and Qt objects made once: each
    temporary Qt value (a QRect, QColor, QFont...) is a C++ object whose destruction lets
    the background threads take the GIL, and a repaint that made hundreds of them waited
    for those threads that many times.
    """

    def __init__(self, view: GalleryView) -> None:
        super().__init__(view)
        self.view = view
        self._blurred: OrderedDict[int, QPixmap] = OrderedDict()
        self._badge_font: QFont | None = None
        self._badge_metrics: QFontMetrics | None = None
        self._badge_widths: dict[str, int] = {}
        self._selection_pens: dict[bool, QPen] = {}  # by whether the view is enabled

    def sizeHint(self, option: QStyleOptionViewItem, index: ModelIndex) -> QSize:
        side = self.view.thumb_side
        return QSize(side + 8, side + 8)

    def _blur(self, entry_id: int, pixmap: QPixmap) -> QPixmap:
        """A tiny copy, drawn enlarged with smoothing: nothing recognisable survives."""
        small = self._blurred.get(entry_id)
        if small is None:
            w, h = max(1, pixmap.width() // 24), max(1, pixmap.height() // 24)
            small = pixmap.scaled(
                w, h, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
            self._blurred[entry_id] = small
            while len(self._blurred) > 500:
                self._blurred.popitem(last=False)
        return small

    def style_changed(self) -> None:
        """The view's font or palette changed: make the badge font and selection pen again."""
        self._badge_font = self._badge_metrics = None
        self._badge_widths.clear()
        self._selection_pens.clear()

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: ModelIndex) -> None:
        cell = option.rect
        x, y, w, h = cell.x() + 4, cell.y() + 4, cell.width() - 8, cell.height() - 8
        state = option.state
        painter.save()
        painter.fillRect(x, y, w, h, _CELL)
        model = self.view.model()
        if isinstance(model, GalleryModel) and (entry := model.entry_at(index.row())) is not None:
            pixmap = model.pixmap_for(entry)
            if not pixmap.isNull():
                ratio = pixmap.devicePixelRatio()
                # device-independent size rounded as QSizeF.toSize() does (halves up)
                tw, th = _fit(int(pixmap.width() / ratio + 0.5), int(pixmap.height() / ratio + 0.5), w, h)
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
                if entry.nsfw and not self.view.reveal_nsfw:
                    pixmap = self._blur(entry.id, pixmap)
                painter.drawPixmap(x + (w - tw) // 2, y + (h - th) // 2, tw, th, pixmap)
            self._badges(painter, x, y, w, h, entry)
        if state & QStyle.StateFlag.State_Selected:
            enabled = self.view.isEnabled()
            pen = self._selection_pens.get(enabled)
            if pen is None:  # the colour the view's own items get: active, or disabled
                group = QPalette.ColorGroup.Active if enabled else QPalette.ColorGroup.Disabled
                pen = self._selection_pens[enabled] = QPen(
                    self.view.palette().color(group, QPalette.ColorRole.Highlight), 3
                )
            painter.setPen(pen)
            painter.drawRect(x + 1, y + 1, w - 3, h - 3)
        elif state & QStyle.StateFlag.State_MouseOver:
            painter.setPen(_HOVER_PEN)
            painter.drawRect(x, y, w - 1, h - 1)
        painter.restore()

    def _badges(self, painter: QPainter, x: int, y: int, w: int, h: int, entry: LibraryEntry) -> None:
        badges: list[tuple[str, QColor]] = []
        if entry.favourite:
            badges.append(("★", _FAVOURITE))
        if entry.nsfw:
            badges.append(("NSFW", _WARNING))
        if entry.missing:
            badges.append(("missing", _WARNING))
        elif entry.broken:
            badges.append(("broken", _WARNING))
        if entry.cost:
            badges.append((f"${entry.cost:.3f}", _COST))
        if not badges:
            return
        if self._badge_font is None or self._badge_metrics is None:
            font = self.view.font()
            font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
            self._badge_font, self._badge_metrics = font, QFontMetrics(font)
        painter.setFont(self._badge_font)
        text_h = self._badge_metrics.height()
        right = x + w - 1 - 4
        top = y + h - 1 - text_h - 6
        for text, colour in badges:
            bw = self._badge_widths.get(text)
            if bw is None:
                if len(self._badge_widths) > 256:
                    self._badge_widths.clear()
                bw = self._badge_widths[text] = self._badge_metrics.horizontalAdvance(text) + 8
            painter.fillRect(right - bw, top, bw, text_h + 2, _BADGE_BACK)
            painter.setPen(colour)
            painter.drawText(right - bw, top, bw, text_h + 2, _CENTRED, text)
            right -= bw + 3


THUMB_SIDE_MIN = 96
THUMB_SIDE_MAX = 384
THUMB_SIDE_DEFAULT = 200


class GalleryView(QListView):
    """The gallery: a grid of thumbnails, newest first.

    Ctrl+wheel changes the cell size; while scrolling, pending thumbnails for rows that
    left the screen are dropped (checked a few times a second, not on every step).
    """

    thumbSideChanged = Signal(int)
    viewRequested = Signal()  # double-click on an image

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gallery")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setSpacing(2)
        self._thumb_side = THUMB_SIDE_DEFAULT
        self._reveal_nsfw = False
        self.setItemDelegate(GalleryDelegate(self))
        self.setMouseTracking(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setToolTip(
            "Every image you have made, newest first. Double-click or press Space to view one; "
            "drag one into the references to reuse it; Ctrl+wheel changes the size."
        )
        self.setAccessibleName("Gallery")
        self.doubleClicked.connect(lambda _index: self.viewRequested.emit())
        self._visible_timer = QTimer(self)
        self._visible_timer.setSingleShot(True)
        self._visible_timer.setInterval(60)
        self._visible_timer.timeout.connect(self.drop_offscreen_work)
        self.verticalScrollBar().valueChanged.connect(self._scrolled)

    # --- size and NSFW ---------------------------------------------------------------

    @property
    def thumb_side(self) -> int:
        return self._thumb_side

    @thumb_side.setter
    def thumb_side(self, side: int) -> None:
        self.setThumbSide(side)

    def setThumbSide(self, side: int) -> None:
        side = max(THUMB_SIDE_MIN, min(THUMB_SIDE_MAX, int(side)))
        if side == self._thumb_side:
            return
        current = self.currentIndex()
        self._thumb_side = side
        self._tell_model()
        self.scheduleDelayedItemsLayout()  # uniform item sizes: the cached size is measured again
        if current.isValid():
            QTimer.singleShot(0, lambda: self.scrollTo(current))
        self.thumbSideChanged.emit(side)

    def setModel(self, model: Any) -> None:
        super().setModel(model)
        self._tell_model()

    def _tell_model(self) -> None:
        model = self.model()
        if isinstance(model, GalleryModel):
            model.set_display_side(self._thumb_side, self.devicePixelRatioF())

    @property
    def reveal_nsfw(self) -> bool:
        return self._reveal_nsfw

    @reveal_nsfw.setter
    def reveal_nsfw(self, reveal: bool) -> None:
        self._reveal_nsfw = bool(reveal)
        self.viewport().update()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.PaletteChange, QEvent.Type.StyleChange):
            delegate = self.itemDelegate()
            if isinstance(delegate, GalleryDelegate):
                delegate.style_changed()
        super().changeEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            steps = event.angleDelta().y() / 120
            if steps:
                self.setThumbSide(self._thumb_side + round(steps * 24))
            event.accept()
            return
        super().wheelEvent(event)

    # --- what is on screen --------------------------------------------------------------

    def _scrolled(self) -> None:
        if not self._visible_timer.isActive():  # throttled, not debounced: runs while scrolling
            self._visible_timer.start()

    def drop_offscreen_work(self) -> None:
        model = self.model()
        if isinstance(model, GalleryModel):
            model.loader.keep_only(self.visible_ids())

    def visible_rows(self) -> range:
        """The rows whose cells show in the viewport: rows flow in order, so the first and
        last found on a grid of probe points bound them."""
        model = self.model()
        if model is None or model.rowCount() == 0:
            return range(0)
        rect = self.viewport().rect()
        step = max(8, (self._thumb_side + 8) // 2)
        rows: list[int] = []
        for y in (*range(rect.top(), rect.bottom(), step), rect.bottom()):
            for x in (*range(rect.left(), rect.right(), step), rect.right()):
                index = self.indexAt(QPoint(x, y))
                if index.isValid():
                    rows.append(index.row())
        return range(min(rows), max(rows) + 1) if rows else range(0)

    def visible_ids(self) -> set[int]:
        model = self.model()
        return {int(model.data(model.index(r, 0), GalleryModel.IdRole)) for r in self.visible_rows()}

    def selected_rows(self) -> list[int]:
        return sorted(i.row() for i in self.selectionModel().selectedIndexes()) if self.selectionModel() else []

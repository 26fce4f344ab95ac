"""The gallery: a list model over the library, thumbnails loaded off the GUI thread, and
the view that shows them.

Only rows the view asks for are looked up (a few at a time, cached) and only their
thumbnails are loaded; pending loads for rows scrolled away are dropped. Thumbnails are
read from the library's ``thumbs/`` cache, made there on first use, decoded as QImage on a
worker, and turned into a QPixmap on the GUI thread.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    QUrl,
    Signal,
)
from PySide6.QtGui import QColor, QImage, QImageReader, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from krea_desktop.library.store import Library, LibraryEntry
from krea_desktop.ui.image_input import LIBRARY_IDS_MIME, encode_library_ids

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
    scaled = full.scaled(QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio)
    reader.setScaledSize(scaled)
    image = reader.read()
    if image.isNull():
        return image
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


class _ThumbJob(QRunnable):
    def __init__(self, loader: ThumbnailLoader, entry_id: int, source: Path, cache: Path) -> None:
        super().__init__()
        self.loader, self.entry_id, self.source, self.cache = loader, entry_id, source, cache

    def run(self) -> None:
        if not self.loader._still_wanted(self.entry_id):
            return
        try:
            image = make_thumbnail(self.source, self.cache, self.loader.size)
        except Exception:  # a broken file shows as broken, never as a crash
            log.exception("thumbnail of %s failed", self.source)
            image = QImage()
        self.loader._done(self.entry_id, image)


class ThumbnailLoader(QObject):
    loaded = Signal(int, QImage)  # entry id, image (null if the file is broken)

    def __init__(self, library: Library, size: int = THUMB_SIZE, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.size = size
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._lock = threading.Lock()
        self._wanted: set[int] = set()

    def request(self, entry: LibraryEntry) -> None:
        with self._lock:
            if entry.id in self._wanted:
                return
            self._wanted.add(entry.id)
        cache = self.library.thumb_path(entry.image_uuid, self.size)
        # Newest requests first: the rows on screen now matter more than earlier ones.
        self._pool.start(_ThumbJob(self, entry.id, entry.path, cache), priority=entry.id % 1000)

    def keep_only(self, ids: set[int]) -> None:
        """Drop pending work for rows no longer on screen."""
        with self._lock:
            self._wanted &= ids

    def _still_wanted(self, entry_id: int) -> bool:
        with self._lock:
            return entry_id in self._wanted

    def _done(self, entry_id: int, image: QImage) -> None:
        with self._lock:
            if entry_id not in self._wanted:
                return
            self._wanted.discard(entry_id)
        self.loaded.emit(entry_id, image)

    def wait(self, msecs: int = -1) -> bool:
        return self._pool.waitForDone(msecs)


def _placeholder(size: int, broken: bool = False) -> QPixmap:
    pm = QPixmap(size, size)
    pm.fill(QColor(58, 58, 62))
    if broken:
        p = QPainter(pm)
        p.setPen(QColor(200, 90, 90))
        p.drawText(pm.rect(), Qt.AlignmentFlag.AlignCenter, "broken")
        p.end()
    return pm


class GalleryModel(QAbstractListModel):
    """One row per library image, newest first."""

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
        self._broken: set[int] = set()
        self._filters: dict[str, Any] = {"search": None, "favourites_only": False, "ratio": None}
        self._placeholder = _placeholder(THUMB_SIZE)
        self._broken_pixmap = _placeholder(THUMB_SIZE, broken=True)
        self.max_cached = 2000
        self.refresh()

    # --- contents --------------------------------------------------------------------

    def refresh(self, **filters: Any) -> None:
        self._filters.update(filters)
        self.beginResetModel()
        self._ids = self.library.ids(**self._filters)
        self._reindex()
        self._entries.clear()
        self.endResetModel()

    @property
    def filters(self) -> dict[str, Any]:
        return dict(self._filters)

    def _reindex(self) -> None:
        self._row_of = {entry_id: row for row, entry_id in enumerate(self._ids)}

    def _matches(self, entry: LibraryEntry) -> bool:
        f = self._filters
        if f["favourites_only"] and not entry.favourite:
            return False
        if f["ratio"] and entry.ratio != f["ratio"]:
            return False
        return not (f["search"] and f["search"].lower() not in entry.prompt.lower())

    def add_entry(self, entry: LibraryEntry, thumbnail: QImage | None = None) -> None:
        """A new image was saved: show it at the top (if it passes the filters)."""
        if entry.id in self._row_of or not self._matches(entry):
            return
        self._remember(entry)
        if thumbnail is not None and not thumbnail.isNull():
            self._pixmaps[entry.id] = QPixmap.fromImage(thumbnail)
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._ids.insert(0, entry.id)
        self._reindex()
        self.endInsertRows()

    def remove_ids(self, ids: set[int]) -> None:
        for entry_id in ids:
            row = self._row_of.get(entry_id)
            if row is None:
                continue
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._ids[row]
            self._reindex()
            self.endRemoveRows()
            self._entries.pop(entry_id, None)
            self._pixmaps.pop(entry_id, None)

    def entry_changed(self, entry: LibraryEntry) -> None:
        self._remember(entry)
        row = self._row_of.get(entry.id)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx)

    def entry_at(self, row: int) -> LibraryEntry | None:
        if not 0 <= row < len(self._ids):
            return None
        entry_id = self._ids[row]
        entry = self._entries.get(entry_id)
        if entry is None:
            # Fetch a page around the row: scrolling asks for neighbours next.
            page = self._ids[max(0, row - 20) : row + 80]
            fetched = self.library.get_many(page)
            for e in fetched.values():
                self._remember(e)
            entry = fetched.get(entry_id)
        else:
            self._entries.move_to_end(entry_id)
        return entry

    def row_of(self, entry_id: int) -> int | None:
        return self._row_of.get(entry_id)

    def ids(self) -> list[int]:
        return list(self._ids)

    def _remember(self, entry: LibraryEntry) -> None:
        self._entries[entry.id] = entry
        self._entries.move_to_end(entry.id)
        while len(self._entries) > self.max_cached:
            self._entries.popitem(last=False)

    # --- Qt model interface ------------------------------------------------------------

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._ids)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._ids):
            return None
        if role == self.IdRole:
            return self._ids[index.row()]
        entry = self.entry_at(index.row())
        if entry is None:
            return None
        if role == Qt.ItemDataRole.DecorationRole:
            return self.pixmap_for(entry)
        if role == Qt.ItemDataRole.ToolTipRole:
            ratio = entry.ratio or f"{entry.width}×{entry.height}"
            return f"{entry.prompt[:300]}\n{ratio} · seed {entry.seed} · {entry.created_at[:16].replace('T', ' ')}"
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return entry.prompt[:200]
        if role == self.EntryRole:
            return entry
        return None

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        base = super().flags(index)
        if index.isValid():
            base |= Qt.ItemFlag.ItemIsDragEnabled
        return base

    def pixmap_for(self, entry: LibraryEntry) -> QPixmap:
        pm = self._pixmaps.get(entry.id)
        if pm is not None:
            self._pixmaps.move_to_end(entry.id)
            return pm
        if entry.id in self._broken or entry.missing or entry.broken:
            return self._broken_pixmap
        self.loader.request(entry)
        return self._placeholder

    def _thumbnail_loaded(self, entry_id: int, image: QImage) -> None:
        if image.isNull():
            self._broken.add(entry_id)
        else:
            self._pixmaps[entry_id] = QPixmap.fromImage(image)
            while len(self._pixmaps) > self.max_cached:
                self._pixmaps.popitem(last=False)
        row = self._row_of.get(entry_id)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])

    # --- drag out ----------------------------------------------------------------------

    def mimeTypes(self) -> list[str]:
        return [LIBRARY_IDS_MIME, "text/uri-list"]

    def mimeData(self, indexes: Any) -> QMimeData:
        mime = QMimeData()
        entries = [e for e in (self.entry_at(i.row()) for i in indexes if i.isValid()) if e is not None]
        mime.setData(LIBRARY_IDS_MIME, QByteArray(encode_library_ids([e.id for e in entries])))
        mime.setUrls([QUrl.fromLocalFile(str(e.path)) for e in entries])
        if len(entries) == 1:
            image = QImage(str(entries[0].path))
            if not image.isNull():
                mime.setImageData(image)
        return mime

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction


class GalleryDelegate(QStyledItemDelegate):
    """Draws each image fitted into a square cell, with small badges: favourite, NSFW
    (blurred until revealed), cost, and a mark for missing or broken files."""

    def __init__(self, view: GalleryView) -> None:
        super().__init__(view)
        self.view = view

    def sizeHint(self, option: QStyleOptionViewItem, index: ModelIndex) -> QSize:
        side = self.view.thumb_side
        return QSize(side + 8, side + 8)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: ModelIndex) -> None:
        painter.save()
        rect = option.rect.adjusted(4, 4, -4, -4)
        state = option.state
        painter.fillRect(rect, QColor(40, 40, 44))
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        entry = index.data(GalleryModel.EntryRole)
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            scaled = pixmap.size().scaled(rect.size(), Qt.AspectRatioMode.KeepAspectRatio)
            x = rect.x() + (rect.width() - scaled.width()) // 2
            y = rect.y() + (rect.height() - scaled.height()) // 2
            target = QRect(x, y, scaled.width(), scaled.height())
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            if entry is not None and entry.nsfw and not self.view.reveal_nsfw:
                small = pixmap.scaled(12, 12, Qt.AspectRatioMode.KeepAspectRatio)
                painter.drawPixmap(target, small)  # blurred by extreme downscaling
            else:
                painter.drawPixmap(target, pixmap)
        if entry is not None:
            self._badges(painter, rect, entry)
        if state & QStyle.StateFlag.State_Selected:
            pen = QPen(option.palette.highlight().color(), 3)
            painter.setPen(pen)
            painter.drawRect(rect.adjusted(1, 1, -2, -2))
        elif state & QStyle.StateFlag.State_MouseOver:
            painter.setPen(QPen(QColor(255, 255, 255, 90), 1))
            painter.drawRect(rect.adjusted(0, 0, -1, -1))
        painter.restore()

    @staticmethod
    def _badges(painter: QPainter, rect: QRect, entry: LibraryEntry) -> None:
        badges: list[tuple[str, QColor]] = []
        if entry.favourite:
            badges.append(("★", QColor(240, 190, 60)))
        if entry.nsfw:
            badges.append(("NSFW", QColor(210, 80, 80)))
        if entry.missing:
            badges.append(("missing", QColor(210, 80, 80)))
        elif entry.broken:
            badges.append(("broken", QColor(210, 80, 80)))
        if entry.cost:
            badges.append((f"${entry.cost:.3f}", QColor(120, 160, 120)))
        font = painter.font()
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        painter.setFont(font)
        metrics = painter.fontMetrics()
        x = rect.right() - 4
        for text, colour in badges:
            w = metrics.horizontalAdvance(text) + 8
            box = QRect(x - w, rect.bottom() - metrics.height() - 6, w, metrics.height() + 2)
            painter.fillRect(box, QColor(0, 0, 0, 150))
            painter.setPen(colour)
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
            x -= w + 3


class GalleryView(QListView):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gallery")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setSpacing(2)
        self.thumb_side = 200
        self.reveal_nsfw = False
        self.setItemDelegate(GalleryDelegate(self))
        self.setMouseTracking(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setToolTip("Every image you have made, newest first. Drag one into the references to reuse it.")
        self.setAccessibleName("Gallery")

    def visible_ids(self) -> set[int]:
        model = self.model()
        ids: set[int] = set()
        rect = self.viewport().rect()
        top = self.indexAt(rect.topLeft())
        row = top.row() if top.isValid() else 0
        while row < model.rowCount():
            idx = model.index(row, 0)
            if not self.visualRect(idx).intersects(rect):
                if ids:
                    break
            else:
                ids.add(int(model.data(idx, GalleryModel.IdRole)))
            row += 1
            if row - (top.row() if top.isValid() else 0) > 400:
                break
        return ids

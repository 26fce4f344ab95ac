"""The gallery on screen: a grid of thumbnails, newest first."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QPoint, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QPainter, QPaintEvent, QPalette, QResizeEvent, QWheelEvent
from PySide6.QtWidgets import QAbstractItemView, QListView, QPushButton, QWidget

from krea_desktop.ui.gallery.delegate import GalleryDelegate
from krea_desktop.ui.gallery.model import GalleryModel

THUMB_SIDE_MIN = 96
THUMB_SIDE_MAX = 384
THUMB_SIDE_DEFAULT = 200

FIRST_STEPS = (
    "Write a prompt and press Generate (Ctrl+Enter) — your images appear here.\n"
    "Drop images on References to steer them: toward (+) or away (−)."
)


class GalleryView(QListView):
    """The gallery: a grid of thumbnails, newest first.

    Ctrl+wheel changes the cell size; while scrolling, pending thumbnails for rows that
    left the screen are dropped (checked a few times a second, not on every step).

    With no rows it says why: what to do first in an empty library, or that nothing
    matches the filters, with a button to clear them.
    """

    thumbSideChanged = Signal(int)
    viewRequested = Signal()  # double-click on an image
    clearFiltersRequested = Signal()  # the empty state's "Clear the filters" button

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
        self._costs_simulated = False
        self.clear_filters_button = QPushButton("Clear the filters", self.viewport())
        self.clear_filters_button.setObjectName("galleryClearFilters")
        self.clear_filters_button.setToolTip("Show every image again: empty the search and turn off the filters")
        self.clear_filters_button.hide()
        self.clear_filters_button.clicked.connect(self.clearFiltersRequested)
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
        if model is not None:
            for changed in (model.modelReset, model.rowsInserted, model.rowsRemoved):
                changed.connect(self._update_empty_state)
            if isinstance(model, GalleryModel):
                model.scopeChanged.connect(self._update_empty_state)
        self._update_empty_state()

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

    @property
    def costs_simulated(self) -> bool:
        """Whether costs are the simulator's (demo mode): badges then say so."""
        return self._costs_simulated

    @costs_simulated.setter
    def costs_simulated(self, simulated: bool) -> None:
        if bool(simulated) != self._costs_simulated:
            self._costs_simulated = bool(simulated)
            self.viewport().update()

    # --- empty states ----------------------------------------------------------------

    def _filters(self) -> dict[str, Any]:
        model = self.model()
        return model.filters if isinstance(model, GalleryModel) else {}

    def _scope(self) -> str | None:
        """The scope's label ("" if it has none), or None when the gallery has no scope."""
        model = self.model()
        return model.scope_label() if isinstance(model, GalleryModel) and model.has_scope() else None

    def empty_text(self) -> str:
        """What the grid says when it has no rows ("" when it has some)."""
        model = self.model()
        if model is not None and model.rowCount() > 0:
            return ""
        filters = self._filters()
        search, favourites, ratio = filters.get("search"), filters.get("favourites_only"), filters.get("ratio")
        scope = self._scope()
        if not (search or favourites or ratio) and scope is None:
            return FIRST_STEPS
        kind = ("favourite " if favourites else "") + (f"{ratio} " if ratio else "")
        text = f"No {kind}images"
        if scope is not None:
            text += f" in “{scope}”" if scope else " in this selection"
        text += f" match “{search}”." if search else "."
        return text + "\nClear the filters to see every image."

    def _is_filtered(self) -> bool:
        return any(self._filters().get(k) for k in ("search", "favourites_only", "ratio")) or self._scope() is not None

    def _update_empty_state(self, *_args: object) -> None:
        model = self.model()
        empty = model is None or model.rowCount() == 0
        self.clear_filters_button.setVisible(empty and self._is_filtered())
        self._place_clear_button()
        self.viewport().update()

    def _empty_text_rect(self) -> QRect:
        rect = self.viewport().rect().adjusted(24, 24, -24, -24)
        return QRect(rect.x(), rect.y(), rect.width(), max(0, rect.height() // 2))

    def _place_clear_button(self) -> None:
        button = self.clear_filters_button
        if not button.isVisible():
            return
        button.adjustSize()
        text = self._empty_text_rect()
        button.move(self.viewport().width() // 2 - button.width() // 2, text.bottom() + 8)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._place_clear_button()

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        text = self.empty_text()
        if not text:
            return
        painter = QPainter(self.viewport())
        painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
        flags = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom | Qt.TextFlag.TextWordWrap
        painter.drawText(self._empty_text_rect(), int(flags), text)
        painter.end()

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

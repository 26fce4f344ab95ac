"""The gallery on screen: a grid of thumbnails, newest first."""

from __future__ import annotations

import contextlib
import itertools
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import (
    QAbstractItemModel,
    QEvent,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QRegion,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemDelegate,
    QAbstractItemView,
    QListView,
    QPushButton,
    QRubberBand,
    QStyle,
    QStyleOptionRubberBand,
    QStyleOptionViewItem,
    QWidget,
)

from krea_desktop.ui.gallery.delegate import GalleryDelegate
from krea_desktop.ui.gallery.model import GalleryModel

if TYPE_CHECKING:  # its type is made only when a focus event comes
    from PySide6.QtGui import QFocusEvent

THUMB_SIDE_MIN = 96
THUMB_SIDE_MAX = 384
THUMB_SIDE_DEFAULT = 200
SPACING = 2  # pixels around each cell
FLING_WINDOW_S = 0.1  # a screen of rows within this is a fling: no thumbnails are made
FLING_SETTLE_MS = 80  # after the last such step, the rows on screen get theirs
CELL_MARGIN = 8  # a cell is the thumbnail side plus this
_ENSURE_VISIBLE = QAbstractItemView.ScrollHint.EnsureVisible
_NO_UPDATE = QItemSelectionModel.SelectionFlag.NoUpdate
# The most runs of rows a selection is made again in after the rows are read again (see
# GalleryView._after_reset).
KEPT_RUNS_MOST = 200

FIRST_STEPS = (
    "Write a prompt and press Generate (Ctrl+Enter) — your images appear here.\n"
    "Drop images on References to steer them: toward (+) or away (−)."
)


def runs_of(model: GalleryModel, rows: Iterable[int]) -> QItemSelection:
    """``rows`` as one selection of runs of rows, to be made in one step: one index at a
    time, each step is told to the actions, which read every range so far (20,000 images
    selected that way held the window for many minutes)."""
    runs = QItemSelection()
    for _, group in itertools.groupby(enumerate(sorted(set(rows))), key=lambda pair: pair[1] - pair[0]):
        block = [row for _i, row in group]
        runs.select(model.index(block[0], 0), model.index(block[-1], 0))
    return runs


class GalleryView(QListView):
    """The gallery: a grid of thumbnails, newest first.

    Ctrl+wheel changes the cell size; while scrolling, pending thumbnails for rows that
    left the screen are dropped (checked a few times a second, not on every step).

    With no rows it says why: what to do first in an empty library, or that nothing
    matches the filters, with a button to clear them.

    The cells are a grid of equal squares, so where a row is drawn is worked out from its
    number; QListView's own layout, which stores a position for every row and is made
    again on every new row (about 14 ms at 100,000 rows), is never run. A new image on
    top therefore costs the same at any library size. The geometry methods of
    QAbstractItemView (visualRect, indexAt, moveCursor, setSelection, scrolling and
    painting) answer from the grid; everything else (selection model, keys, mouse,
    dragging, hover, tool tips) is QAbstractItemView's.
    """

    thumbSideChanged = Signal(int)
    viewRequested = Signal()  # double-click on an image
    clearFiltersRequested = Signal()  # the empty state's "Clear the filters" button

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gallery")
        # A viewport made here, as Qt makes its own: the first time Python is handed a
        # widget that Qt made, the binding works out its class by loading every widget
        # class it has (about 9 ms, before the window is ready).
        viewport = QWidget(self)
        viewport.setObjectName("qt_scrollarea_viewport")  # the name Qt gives its own
        viewport.setBackgroundRole(QPalette.ColorRole.Base)
        viewport.setAutoFillBackground(True)
        viewport.setAttribute(Qt.WidgetAttribute.WA_AcceptTouchEvents)
        self.setViewport(viewport)
        # Row after row, left to right, wrapping (what the grid below draws); QListView's
        # layout is never run, so these only describe it.
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setSpacing(SPACING)
        self.setSelectionRectVisible(False)  # the band is drawn here (paintEvent)
        self._band: QRect | None = None  # the rubber band, in contents coordinates
        self._press = QPoint()  # where the last press was, in contents coordinates
        self._hover_row = -1
        self._thumb_side = THUMB_SIDE_DEFAULT
        self._wheel_pixels = 0.0  # Ctrl+wheel's steps not yet a whole pixel of the thumbnails' side
        self._reveal_nsfw = False
        self._held_scroll = 0  # through a scattered removal (see _scattered_removal)
        self._current_place: int | None = None
        self._current_id: int | None = None
        self._kept_selected: list[int | None] = []
        self._in_scattered_removal = False
        self._reading: tuple[int, int, int, int] | None = None  # see _reading_row
        self._removal_shift: tuple[tuple[int, int], int] | None = None  # see rowsAboutToBeRemoved
        self._over_reset: tuple[int | None, list[int]] | None = None  # see _before_reset
        self._place_over_reset: tuple[int, tuple[int, int]] | None = None  # the image read, and where
        self._keep_over_reset = True
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
        # A fling (a screen or more of rows within FLING_WINDOW_S) passes rows faster than
        # their thumbnails could be shown: none are made until it slows down, so that the
        # workers do not take the CPU from the scrolling itself (bench_gallery.py).
        self._scroll_marks: deque[tuple[float, int]] = deque()
        self._fling_timer = QTimer(self)
        self._fling_timer.setSingleShot(True)
        self._fling_timer.setInterval(FLING_SETTLE_MS)
        self._fling_timer.timeout.connect(self._fling_ended)
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
        current = QPersistentModelIndex(self.currentIndex())
        self._thumb_side = side
        self._tell_model()
        self.scheduleDelayedItemsLayout()  # uniform item sizes: the cached size is measured again
        if current.isValid():
            QTimer.singleShot(0, lambda: self._scroll_to_current(current))
        self.thumbSideChanged.emit(side)

    def _scroll_to_current(self, current: QPersistentModelIndex) -> None:
        """After a change of size, the current image is scrolled into view. The layout
        pass is made first (once, if still pending; on the grid it is the scroll bars
        alone): the scroll bar kept the old size's range until then, and the image, now
        further down, was scrolled to no further than the old end."""
        if not current.isValid():
            return
        self.executeDelayedItemsLayout()
        self.updateGeometries()
        self.scrollTo(current)

    def setModel(self, model: Any) -> None:
        self._over_reset = None  # ids of the model before
        super().setModel(model)
        self._tell_model()
        if model is not None:
            for changed in (model.modelReset, model.rowsInserted, model.rowsRemoved):
                changed.connect(self._update_empty_state)
            model.rowsRemoved.connect(self._rows_removed)
            model.layoutChanged.connect(self._contents_changed)
            for moved in (model.modelReset, model.layoutChanged):
                moved.connect(self._forget_reading_place)
            model.modelAboutToBeReset.connect(self._before_reset)
            model.modelReset.connect(self._after_reset)
            if isinstance(model, GalleryModel):
                model.scopeChanged.connect(self._update_empty_state)
                model.scatteredRemoval.connect(self._scattered_removal)
                model.scatteredRemovalDone.connect(self._scattered_removal_done)
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
        QAbstractItemView.resizeEvent(self, event)  # the grid needs no layout pass: just the scroll bars
        self.viewport().update()
        self._place_clear_button()

    def paintEvent(self, event: QPaintEvent) -> None:
        self._paint_cells(event)
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
            # 24 pixels a notch; a touchpad's or a free wheel's small steps add up (each
            # alone, rounded, came to nothing).
            self._wheel_pixels += event.angleDelta().y() / 120 * 24
            whole = int(self._wheel_pixels)
            if whole:
                self._wheel_pixels -= whole
                self.setThumbSide(self._thumb_side + whole)
            event.accept()
            return
        super().wheelEvent(event)

    # --- what is on screen --------------------------------------------------------------

    def _scrolled(self, value: int) -> None:
        if not self._visible_timer.isActive():  # throttled, not debounced: runs while scrolling
            self._visible_timer.start()
        now = time.monotonic()
        marks = self._scroll_marks
        marks.append((now, value))
        while marks and now - marks[0][0] > FLING_WINDOW_S:
            marks.popleft()
        model = self.model()
        if not isinstance(model, GalleryModel):
            return
        if abs(value - marks[0][1]) >= self.viewport().height():
            model.loader.hold()
            self._fling_timer.start()  # again: it ends once the scrolling slows

    def _fling_ended(self) -> None:
        self._scroll_marks.clear()
        model = self.model()
        if isinstance(model, GalleryModel) and model.loader.held:
            model.loader.release(self.visible_ids())
            self.viewport().update()  # the rows on screen ask for their thumbnails again

    def drop_offscreen_work(self) -> None:
        model = self.model()
        if isinstance(model, GalleryModel):
            model.loader.keep_only(self.visible_ids())

    def visible_rows(self) -> range:
        """The rows whose cells show in the viewport (rows flow in order, so a range)."""
        return self._rows_in(self.viewport().rect())

    def visible_ids(self) -> set[int]:
        model = self.model()
        return {int(model.data(model.index(r, 0), GalleryModel.IdRole)) for r in self.visible_rows()}

    def selected_rows(self) -> list[int]:
        """The selected rows in order. Read from the selection's ranges: after Ctrl+A on
        100,000 images, asking for every selected index takes a tenth of a second, and
        this is asked on each change of the selection."""
        selection: QItemSelectionModel | None = self.selectionModel()
        if selection is None:
            return []
        spans = selection.selection()
        rows: set[int] = set()
        for k in range(spans.count()):
            span = spans.at(k)
            rows.update(range(span.top(), span.bottom() + 1))
        return sorted(rows)

    # --- the grid ------------------------------------------------------------------------
    #
    # Contents coordinates: the whole grid, row 0 at the top left; the viewport shows it
    # from (horizontalOffset(), verticalOffset()). Cell k of line j sits at
    # (SPACING + k * step, SPACING + j * step), step being the cell side plus SPACING, and
    # as many cells fit on a line as QListView's icon mode would put there.

    def cell_side(self) -> int:
        return self._thumb_side + CELL_MARGIN

    def _step(self) -> int:
        return self.cell_side() + SPACING

    def columns(self) -> int:
        """Cells on one line of the grid at the viewport's width."""
        return max(1, (self.viewport().width() - SPACING - 1) // self._step())

    def _row_count(self) -> int:
        model = self.model()
        return model.rowCount() if model is not None else 0

    def _cell_rect(self, row: int) -> QRect:
        """Where ``row`` is drawn, in contents coordinates."""
        cols, step = self.columns(), self._step()
        line, col = divmod(row, cols)
        side = self.cell_side()
        return QRect(SPACING + col * step, SPACING + line * step, side, side)

    def _offset(self) -> QPoint:
        return QPoint(self.horizontalOffset(), self.verticalOffset())

    def _row_at(self, x: int, y: int) -> int:
        """The row whose cell holds the contents point (x, y), or -1 (between cells too)."""
        step, side, cols = self._step(), self.cell_side(), self.columns()
        x, y = x - SPACING, y - SPACING
        if x < 0 or y < 0 or x % step >= side or y % step >= side:
            return -1
        col, line = x // step, y // step
        row = line * cols + col
        return row if col < cols and row < self._row_count() else -1

    def _rows_in(self, rect: QRect) -> range:
        """Rows whose cells meet ``rect`` (viewport coordinates), first to last; on a grid
        that is a run of whole lines, of which only some columns may show."""
        n = self._row_count()
        if n == 0 or rect.isEmpty():
            return range(0)
        area = rect.translated(self._offset())
        step, cols = self._step(), self.columns()
        first_line = max(0, (area.top() - SPACING) // step)
        last_line = max(0, (area.bottom() - SPACING) // step)
        first = first_line * cols
        stop = min(n, (last_line + 1) * cols)
        return range(first, stop) if first < stop else range(0)

    def _cells_in(self, rect: QRect) -> list[int]:
        """Rows whose cells meet ``rect`` (contents coordinates), top down."""
        n = self._row_count()
        if n == 0 or rect.isEmpty():
            return []
        step, side, cols = self._step(), self.cell_side(), self.columns()
        rows: list[int] = []
        first_line = max(0, (rect.top() - SPACING) // step)
        last_line = max(0, (rect.bottom() - SPACING) // step)
        first_col = max(0, (rect.left() - SPACING) // step)
        last_col = min(cols - 1, max(0, (rect.right() - SPACING) // step))
        for line in range(first_line, last_line + 1):
            top = SPACING + line * step
            if top > rect.bottom() or top + side - 1 < rect.top():
                continue
            for col in range(first_col, last_col + 1):
                left = SPACING + col * step
                if left > rect.right() or left + side - 1 < rect.left():
                    continue
                row = line * cols + col
                if row < n:
                    rows.append(row)
        return rows

    def _contents_height(self) -> int:
        n = self._row_count()
        if n == 0:
            return 0
        lines = (n + self.columns() - 1) // self.columns()
        return SPACING + lines * self._step()

    # QAbstractItemView's geometry, answered from the grid.

    def visualRect(self, index: QModelIndex | QPersistentModelIndex) -> QRect:
        if not index.isValid() or index.parent().isValid() or not 0 <= index.row() < self._row_count():
            return QRect()
        return self._cell_rect(index.row()).translated(-self._offset())

    def indexAt(self, point: QPoint) -> QModelIndex:
        model: QAbstractItemModel | None = self.model()  # None before setModel
        if model is None:
            return QModelIndex()
        row = self._row_at(point.x() + self.horizontalOffset(), point.y() + self.verticalOffset())
        return model.index(row, 0) if row >= 0 else QModelIndex()

    def horizontalOffset(self) -> int:
        return self.horizontalScrollBar().value()

    def verticalOffset(self) -> int:
        return self.verticalScrollBar().value()

    def scrollTo(
        self, index: QModelIndex | QPersistentModelIndex, hint: QAbstractItemView.ScrollHint = _ENSURE_VISIBLE
    ) -> None:
        rect = self.visualRect(index)
        if not rect.isValid():
            return
        area = self.viewport().rect()
        if hint == QAbstractItemView.ScrollHint.EnsureVisible and area.contains(rect):
            self.viewport().update(rect)
            return
        bar = self.verticalScrollBar()
        value = bar.value()
        cell = rect.adjusted(-SPACING, -SPACING, SPACING, SPACING)
        hints = QAbstractItemView.ScrollHint
        above, below = rect.top() < area.top(), rect.bottom() > area.bottom()
        if hint == hints.PositionAtTop or (hint == hints.EnsureVisible and above):
            value += cell.top()
        elif hint == hints.PositionAtBottom or (hint == hints.EnsureVisible and below):
            value += min(cell.top(), cell.bottom() - area.height() + 1)
        elif hint == hints.PositionAtCenter:
            value += cell.top() - (area.height() - cell.height()) // 2
        bar.setValue(value)

    def moveCursor(self, action: QAbstractItemView.CursorAction, modifiers: Qt.KeyboardModifier) -> QModelIndex:
        model = self.model()
        n = self._row_count()
        if model is None or n == 0:
            return QModelIndex()
        current = self.currentIndex()
        if not current.isValid():
            return model.index(0, 0)
        row, cols = current.row(), self.columns()
        lines_per_page = max(1, self.viewport().height() // self._step())
        act = QAbstractItemView.CursorAction
        if action in (act.MoveLeft, act.MovePrevious):
            row = max(0, row - 1)
        elif action in (act.MoveRight, act.MoveNext):
            row = min(n - 1, row + 1)
        elif action == act.MoveUp:
            row = row - cols if row >= cols else row
        elif action == act.MoveDown:
            row = row + cols if row + cols < n else row
        elif action == act.MoveHome:
            row = 0
        elif action == act.MoveEnd:
            row = n - 1
        elif action == act.MovePageUp:
            row = max(row % cols, row - lines_per_page * cols)
        elif action == act.MovePageDown:
            row = min(n - 1, row + lines_per_page * cols)
        return model.index(row, 0)

    def setSelection(self, rect: QRect, command: QItemSelectionModel.SelectionFlag) -> None:
        selection_model: QItemSelectionModel | None = self.selectionModel()
        model: QAbstractItemModel | None = self.model()
        if selection_model is None or model is None:
            return
        selection = QItemSelection()
        offset = self._offset()
        if rect.width() == 1 and rect.height() == 1:  # a click: the cell under it
            row = self._row_at(rect.left() + offset.x(), rect.top() + offset.y())
            if row >= 0:
                selection.select(model.index(row, 0), model.index(row, 0))
        elif self.state() == QAbstractItemView.State.DragSelectingState:  # the rubber band: what it touches
            for first, last in _runs(self._cells_in(rect.normalized().translated(offset))):
                selection.select(model.index(first, 0), model.index(last, 0))
        else:  # Shift+click or Shift+arrow: every row from one corner's to the other's, in order
            a = self._row_at(rect.left() + offset.x(), rect.top() + offset.y())
            b = self._row_at(rect.right() + offset.x(), rect.bottom() + offset.y())
            if a >= 0 and b >= 0:
                selection.select(model.index(min(a, b), 0), model.index(max(a, b), 0))
        selection_model.select(selection, command)

    def visualRegionForSelection(self, selection: QItemSelection) -> QRegion:
        region = QRegion()
        area = self.viewport().rect()
        for i in range(selection.count()):
            span = selection.at(i)
            top, bottom = span.top(), span.bottom()
            first, last = self.visualRect(self.model().index(top, 0)), self.visualRect(self.model().index(bottom, 0))
            if first.top() == last.top():  # one line: the cells themselves
                rect = first.united(last)
            else:  # several lines: their whole width
                rect = QRect(area.left(), first.top(), area.width(), last.bottom() - first.top() + 1)
            region += rect.intersected(area)
        return region

    def isIndexHidden(self, index: QModelIndex | QPersistentModelIndex) -> bool:
        return False

    def doItemsLayout(self) -> None:
        QAbstractItemView.doItemsLayout(self)  # scroll bars and a repaint; nothing per row

    def updateGeometries(self) -> None:
        step = self._step()
        height = self.viewport().height()
        bar = self.verticalScrollBar()
        bar.setSingleStep(step)
        bar.setPageStep(height)
        bar.setRange(0, max(0, self._contents_height() - height))
        hbar = self.horizontalScrollBar()
        hbar.setSingleStep(step)
        hbar.setPageStep(self.viewport().width())
        wide = SPACING + self.cell_side() if self._row_count() else 0
        hbar.setRange(0, max(0, wide - self.viewport().width()))
        QAbstractItemView.updateGeometries(self)

    def _scattered_removal(self, rows: list[int]) -> None:
        """Rows spread over many runs go (GalleryModel._remove_scattered): where the current
        image's place will be if it goes with them (the row of the image that takes its
        place, as when they go one by one), and the scroll, kept through the two steps (in
        between, the selection makes the stretch's neighbour current, and the view would
        scroll to it)."""
        self._held_scroll = self.verticalScrollBar().value()
        self._in_scattered_removal = True
        current = self.currentIndex()
        self._current_place = None
        self._current_id = None
        model = self.model()
        if not isinstance(model, GalleryModel):
            return
        going = set(rows)
        if current.isValid():
            if current.row() in going:
                self._current_place = current.row() - sum(1 for r in rows if r < current.row())
            else:
                self._current_id = model.id_at(current.row())
        # The selected images that stay (in two steps, those of the stretch would lose it).
        self._kept_selected = [model.id_at(r) for r in self.selected_rows() if r not in going]

    def _scattered_removal_done(self) -> None:
        model = self.model()
        row = self._current_place
        if self._current_id is not None and isinstance(model, GalleryModel):
            row = model.row_of(self._current_id)  # kept: the same image stays current
        if row is not None and model is not None and model.rowCount() > 0:
            selection = self.selectionModel()
            selection.setCurrentIndex(model.index(min(row, model.rowCount() - 1), 0), _NO_UPDATE)
        if self._kept_selected and isinstance(model, GalleryModel):
            again = [model.row_of(i) for i in self._kept_selected if i is not None]
            rows = [r for r in again if r is not None]
            self.selectionModel().select(runs_of(model, rows), QItemSelectionModel.SelectionFlag.Select)
        self._current_place = self._current_id = None
        self._kept_selected = []
        self._in_scattered_removal = False
        self.verticalScrollBar().setValue(self._held_scroll)

    def focusInEvent(self, event: QFocusEvent) -> None:
        """Reached with Tab and nothing selected, the current image (the first, unless one
        was current) is selected too: it was framed only, and F, Delete and Ctrl+C, which
        act on the selection, did nothing."""
        super().focusInEvent(event)
        keyboard = event.reason() in (Qt.FocusReason.TabFocusReason, Qt.FocusReason.BacktabFocusReason)
        selection = self.selectionModel()
        current = self.currentIndex()
        if keyboard and selection is not None and current.isValid() and not selection.hasSelection():
            selection.select(current, QItemSelectionModel.SelectionFlag.ClearAndSelect)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Space opens the current image, as the View action says: that action's shortcut did
        not reach this view once the action was on the toolbar too, and the item view's own
        Space (select the current image) took the key instead."""
        if event.key() == Qt.Key.Key_Space and not event.modifiers() and self.currentIndex().isValid():
            event.accept()
            self.viewRequested.emit()
            return
        super().keyPressEvent(event)

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        self.viewport().scroll(dx, dy)  # only the newly exposed strip is painted

    def _reading_row(self) -> tuple[int, int] | None:
        """Where the user is reading, when scrolled down: the row of the image kept at the
        same height on screen while rows come and go above it, and the scroll value. That
        image is the first on the top line when the user last scrolled (not picked again
        at each change: one image at a time, the first of the line is another each time,
        and the screen would still creep a line every few). None at the top of the
        gallery, where new images are to be seen as they come."""
        value = self.verticalScrollBar().value()
        if value <= 0 or self._in_scattered_removal:  # that one keeps its own scroll
            self._reading = None
            return None
        cols, step = self.columns(), self._step()
        held = self._reading
        if held is not None and held[1:] == (value, cols, step):
            return held[0], value
        return (max(0, value - SPACING) // step) * cols, value

    def _keep_reading_place(self, before: tuple[int, int] | None, row: int) -> None:
        """The image read at ``before`` is now at ``row``: scroll by the lines it moved."""
        if before is None:
            return
        old_row, value = before
        cols, step = self.columns(), self._step()
        value += (row // cols - old_row // cols) * step
        self.verticalScrollBar().setValue(value)
        self._reading = (row, self.verticalScrollBar().value(), cols, step)

    def rowsInserted(self, parent: QModelIndex | QPersistentModelIndex, start: int, end: int) -> None:
        reading = self._reading_row()
        QAbstractItemView.rowsInserted(self, parent, start, end)
        self._contents_changed()
        if reading is not None:
            row = reading[0]
            self._keep_reading_place(reading, row + (end - start + 1 if start <= row else 0))

    def rowsAboutToBeRemoved(self, parent: QModelIndex | QPersistentModelIndex, start: int, end: int) -> None:
        reading = self._reading_row()
        self._removal_shift = None
        if reading is not None:
            row = reading[0]
            after = row - (end - start + 1) if end < row else min(row, start)
            self._removal_shift = (reading, after)
        QAbstractItemView.rowsAboutToBeRemoved(self, parent, start, end)

    def _before_reset(self) -> None:
        """The rows are read again (a search typed, a filter changed, F5, a scope): which
        images are selected and current, by id, to be so again among the new rows. Qt
        drops the selection with the rows, and Space then opened the top image, Delete
        and F did nothing. What is kept stays until the next reset (see below)."""
        model = self.model()
        before, self._over_reset = self._over_reset, None
        self._place_over_reset = None
        if not isinstance(model, GalleryModel) or not self._keep_over_reset:
            return
        # Where the user reads, by the image there: F5 or the folder's check finding new
        # images read the rows again, and the same scroll value showed other images.
        reading = self._reading_row()
        read_id = model.id_at(reading[0]) if reading is not None else None
        if reading is not None and read_id is not None:
            self._place_over_reset = (read_id, reading)
        current = self.currentIndex()
        current_id = model.id_at(current.row()) if current.isValid() else None
        spans = self.selectionModel().selection()
        ids: list[int] = []
        for k in range(spans.count()):
            span = spans.at(k)
            ids.extend(model.ids_at(range(span.top(), span.bottom() + 1)))
        if current_id is not None or ids:
            self._over_reset = (current_id, ids)
        elif before is not None and not self._shows_any(model, before):
            # Nothing selected or current, and none of the images kept at the reset before
            # among these rows (a search that matched nothing for a keystroke, a filter
            # that hid them): they are kept on, to be selected again when they come back.
            # Anything the user selects or makes current in between is kept instead.
            self._over_reset = before

    @staticmethod
    def _shows_any(model: GalleryModel, kept: tuple[int | None, list[int]]) -> bool:
        """Whether any image of ``kept`` (the current one's id, the selected ones') is
        among the model's rows."""
        if model.rowCount() == 0:
            return False
        current_id, ids = kept
        if current_id is not None and model.row_of(current_id) is not None:
            return True
        return any(model.row_of(i) is not None for i in ids)

    @contextlib.contextmanager
    def selecting_anew(self) -> Iterator[None]:
        """Rows read again within this, whose selection the caller makes itself (Undo
        selects what came back): the one before is not made again first, which would be
        one more change of the selection told to everything that follows it."""
        self._keep_over_reset = False
        try:
            yield
        finally:
            self._keep_over_reset = True

    def _after_reset(self) -> None:
        kept = self._over_reset  # held on to: see _before_reset
        model = self.model()
        place, self._place_over_reset = self._place_over_reset, None
        if place is not None and isinstance(model, GalleryModel):
            row = model.row_of(place[0])
            if row is not None:  # still among the rows: kept at its height on screen
                self.updateGeometries()  # the scroll bar's range for the rows as they are now
                self._keep_reading_place(place[1], row)
        if kept is None or not isinstance(model, GalleryModel):
            return
        current_id, ids = kept
        selection = self.selectionModel()
        rows = sorted(row for row in map(model.row_of, ids) if row is not None)
        runs = 1 + sum(1 for a, b in itertools.pairwise(rows) if b != a + 1) if rows else 0
        if runs > KEPT_RUNS_MOST:
            # Spread all over (Ctrl+A, then a search cleared): each run of rows costs the
            # view and the actions a step at every change, and the window would stall for
            # seconds at each refresh after. The current image alone is kept.
            rows = []
        if rows:
            selection.select(runs_of(model, rows), QItemSelectionModel.SelectionFlag.Select)
        row = model.row_of(current_id) if current_id is not None else None
        if row is not None:  # made current where it is: the view is not scrolled to it
            scrolls = self.hasAutoScroll()
            self.setAutoScroll(False)
            try:
                selection.setCurrentIndex(model.index(row, 0), _NO_UPDATE)
            finally:
                self.setAutoScroll(scrolls)

    def dataChanged(
        self,
        top_left: QModelIndex | QPersistentModelIndex,
        bottom_right: QModelIndex | QPersistentModelIndex,
        roles: Any = (),
    ) -> None:
        # QAbstractItemView's: the changed cells are repainted. QListView's would lay the
        # items out again and repaint the whole screen for each thumbnail that arrives.
        QAbstractItemView.dataChanged(self, top_left, bottom_right, roles)

    def _forget_reading_place(self, *_args: object) -> None:
        self._reading = None

    def _rows_removed(self, *_args: object) -> None:
        self._contents_changed()
        shift, self._removal_shift = self._removal_shift, None
        if shift is not None:
            self._keep_reading_place(*shift)

    def _contents_changed(self, *_args: object) -> None:
        self.updateGeometries()
        self.viewport().update()

    # --- mouse: hover and the rubber band ---------------------------------------------

    def viewportEvent(self, event: QEvent) -> bool:
        if event.type() in (QEvent.Type.HoverLeave, QEvent.Type.Leave) and self._hover_row >= 0:
            model = self.model()
            if model is not None:
                self.viewport().update(self.visualRect(model.index(self._hover_row, 0)))
            self._hover_row = -1
        return super().viewportEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self._press = event.position().toPoint() + self._offset()
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position().toPoint()
        # The cell under the pointer (QAbstractItemView repaints the old and new one).
        self._hover_row = self._row_at(pos.x() + self.horizontalOffset(), pos.y() + self.verticalOffset())
        super().mouseMoveEvent(event)
        if self.state() == QAbstractItemView.State.DragSelectingState and self.selectionMode() not in (
            QAbstractItemView.SelectionMode.SingleSelection,
            QAbstractItemView.SelectionMode.NoSelection,
        ):
            band = QRect(self._press, event.position().toPoint() + self._offset()).normalized()
            old, self._band = self._band, band
            dirty = band if old is None else band.united(old)
            self.viewport().update(dirty.adjusted(-4, -4, 4, 4).translated(-self._offset()))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        if self._band is not None:
            self.viewport().update(self._band.adjusted(-4, -4, 4, 4).translated(-self._offset()))
            self._band = None

    # --- painting ---------------------------------------------------------------------------

    def _paint_cells(self, event: QPaintEvent) -> None:
        model: QAbstractItemModel | None = self.model()
        delegate: QAbstractItemDelegate | None = self.itemDelegate()
        selections: QItemSelectionModel | None = self.selectionModel()
        if model is None or delegate is None:
            return
        # Only the cells in the parts to paint: one thumbnail that arrived is one cell, and
        # a thumbnail at the top plus a strip scrolled in at the bottom are two small
        # rectangles, not the whole viewport between them.
        offset = self._offset()
        parts = list(cast(Iterable[QRect], event.region()))
        if len(parts) > 8:
            parts = [event.rect()]
        if len(parts) == 1:
            rows = self._cells_in(parts[0].translated(offset))
        else:
            rows = sorted({row for part in parts for row in self._cells_in(part.translated(offset))})
        if not rows and self._band is None:
            return
        painter = QPainter(self.viewport())
        option = QStyleOptionViewItem()
        self.initViewItemOption(option)
        base = option.state
        current = self.currentIndex()
        focus_row = current.row() if current.isValid() and (self.hasFocus() or self.viewport().hasFocus()) else -1
        if base & QStyle.StateFlag.State_Enabled:
            option.palette.setCurrentColorGroup(QPalette.ColorGroup.Normal)
        editing = self.state() == QAbstractItemView.State.EditingState
        hover = self._hover_row
        for row in rows:
            index = model.index(row, 0)
            option.rect = self._cell_rect(row).translated(-offset)
            state = base
            if selections is not None and selections.isSelected(index):
                state |= QStyle.StateFlag.State_Selected
            if row == focus_row:
                state |= QStyle.StateFlag.State_HasFocus
                if editing:
                    state |= QStyle.StateFlag.State_Editing
            if row == hover:
                state |= QStyle.StateFlag.State_MouseOver
            option.state = state
            delegate.paint(painter, option, index)
        if self._band is not None:
            band = QStyleOptionRubberBand()
            band.initFrom(self)
            band.shape = QRubberBand.Shape.Rectangle
            band.opaque = False
            band.rect = self._band.translated(-offset).intersected(self.viewport().rect().adjusted(-16, -16, 16, 16))
            painter.save()
            self.style().drawControl(QStyle.ControlElement.CE_RubberBand, band, painter)
            painter.restore()
        painter.end()


def _runs(rows: list[int]) -> list[tuple[int, int]]:
    """Consecutive rows as (first, last) pairs."""
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and runs[-1][1] == row - 1:
            runs[-1] = (runs[-1][0], row)
        else:
            runs.append((row, row))
    return runs

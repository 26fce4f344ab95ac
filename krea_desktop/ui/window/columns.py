"""The window's two columns side by side: the controls column, as narrow as its controls
allow, and the widths it gets when the window opens or narrows, so that the gallery
beside it keeps its two columns of thumbnails where it can."""

from __future__ import annotations

from PySide6 import QtCore
from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QScrollArea, QWidget

from krea_desktop.ui.window.opening import DEFAULT_LEFT_WIDTH


class ControlsScroll(QScrollArea):
    """The controls column: as narrow as its controls allow (with room for the scroll
    bar), so that a small window leaves the gallery its room, and no narrower, so that
    nothing in it is cut."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # The controls in it take the focus, not the column: Tab stopped on it with nothing
        # to show for it (a scroll area takes the focus by default).
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        # A viewport made here, as Qt makes its own: the first time Python is handed a
        # widget that Qt made (the controls asking for the height they are shown in, say),
        # the binding works out its class by loading every widget class it has (about
        # 9 ms, before the window is ready).
        viewport = QWidget(self)
        viewport.setObjectName("qt_scrollarea_viewport")  # the name Qt gives its own
        viewport.setAutoFillBackground(True)
        viewport.setAttribute(QtCore.Qt.WidgetAttribute.WA_AcceptTouchEvents)
        self.setViewport(viewport)

    def setWidget(self, widget: QWidget) -> None:
        super().setWidget(widget)
        widget.installEventFilter(self)

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:
        if watched is self.widget() and event.type() == QtCore.QEvent.Type.LayoutRequest:
            self.updateGeometry()  # the controls changed (the tray built, say): so may the minimum
        return super().eventFilter(watched, event)

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        inner = self.widget()
        if inner is None:
            return hint
        bar = self.verticalScrollBar().sizeHint().width()
        return QSize(inner.minimumSizeHint().width() + bar + 2 * self.frameWidth(), hint.height())


class ControlsContent(QWidget):
    """What the controls column scrolls. A scroll area makes its widget at least as tall as
    the widget's height for its width; with the controls' preferred height, a window a few
    pixels shorter than that scrolls a column that could simply give the prompt less room.
    So the height for the width is the least the controls need: a column that shows more
    gives the prompt the rest (up to its ease), and one that shows less scrolls by only
    what is missing, which keeps the prompt and the references as close together as the
    screen allows (on 800x600, the prompt stays in sight beside a card just added)."""

    def heightForWidth(self, width: int) -> int:
        layout = self.layout()
        if layout is None or not layout.hasHeightForWidth():
            return super().heightForWidth(width)
        preferred = layout.heightForWidth(width)
        # The least, with what wrapped lines need beyond their one-line height at this width.
        return self.minimumSizeHint().height() + max(0, preferred - layout.sizeHint().height())


def room_beside_gallery(width: int) -> int:
    """The widest the controls column may be in ``width`` pixels and leave the gallery
    the default column width (two columns of thumbnails of the default size)."""
    return max(0, width - DEFAULT_LEFT_WIDTH)


def opening_width(width: int, saved: tuple[int, int] | None) -> int:
    """The controls column's width in a window opening ``width`` pixels wide, with the
    two columns' widths ``saved`` when it last closed (if any): as the user left it (in
    pixels, not scaled with the window), at most half the window or the default width,
    whichever is more, so that a width saved in a small window does not starve the
    gallery of a large one. In a window opened narrower than it was closed (another
    screen, say), as a narrowing window would have it (:func:`narrowed_width`). The
    splitter keeps the column as wide as its controls need."""
    if saved is None:
        return min(DEFAULT_LEFT_WIDTH, room_beside_gallery(width))
    left = min(saved[0], max(DEFAULT_LEFT_WIDTH, width // 2))
    if width < sum(saved):
        left = min(left, narrowed_width(saved[0], sum(saved) - width, width))
    return left


def narrowed_width(before: int, lost: int, width: int) -> int:
    """The controls column's width once the columns, ``width`` pixels together, have lost
    ``lost`` pixels, the column having been ``before`` pixels wide: a narrowing that would
    leave the gallery less than its two columns takes its width from the controls, down
    to the room beside the gallery, so the gallery keeps what it had, and a wide column
    the user chose shrinks only by what the window lost."""
    return max(room_beside_gallery(width), before - lost)

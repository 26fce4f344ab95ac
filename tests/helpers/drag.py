"""Drag-and-drop events for tests, built the way the installed binding accepts them."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent

DragEvent = QDragEnterEvent | QDragMoveEvent | QDropEvent


def drag_event(
    cls: type[QDragEnterEvent] | type[QDragMoveEvent] | type[QDropEvent],
    x: float,
    y: float,
    mime: QMimeData,
    actions: Qt.DropAction = Qt.DropAction.CopyAction,
) -> DragEvent:
    """``cls(pos, ...)``: PySide6 up to 6.11 takes a QPoint, 6.12 a QPointF."""
    args = (actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    try:
        return cls(QPointF(x, y), *args)  # type: ignore[arg-type]
    except TypeError:
        return cls(QPoint(round(x), round(y)), *args)  # type: ignore[arg-type]

"""Drag-and-drop events for tests, built the way the installed binding accepts them.

A drag enter that a widget accepts, sent through ``QApplication.sendEvent``, makes that
widget Qt's drop target (a plain pointer in its drag manager) until a drop or a leave is
sent the same way. A test that stops after an enter or moves must end its drag with
:func:`leave`: else the target outlives its widget, and the next test's drop, sent after
an enter that nothing accepted, goes to a widget that is gone (a segmentation fault).
"""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget

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


def leave(target: QWidget) -> None:
    """End a drag over ``target`` as the pointer leaving it does (see the module's note)."""
    QApplication.sendEvent(target, QDragLeaveEvent())

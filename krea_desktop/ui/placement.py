"""The size and place a window opens at: its preferred size where the screen it opens on
has room for it, less where it has not, and wholly on that screen."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize
from PySide6.QtWidgets import QWidget

# What a window's frame takes around its inside (a title bar, borders), which the size
# given to resize() does not count: so that a window fits on a small screen.
FRAME_ALLOWANCE = QSize(16, 48)


def fit_size(preferred: QSize, available: QSize) -> QSize:
    """``preferred``, or less where the screen's free area (``available``) cannot hold it
    with its frame; ``preferred`` where that area is unknown (empty)."""
    room = available - FRAME_ALLOWANCE
    return preferred.boundedTo(room) if room.isValid() else preferred


def open_on_screen(window: QWidget, preferred: QSize) -> None:
    """Size ``window`` (a top-level window not yet shown) to ``preferred``, or less where
    the free area of the screen it opens on (its parent's) is smaller, and place it
    centred on its parent window, or on that screen, with its frame inside that area."""
    parent = window.parentWidget()
    anchor = parent.window() if parent is not None else None
    area = (anchor if anchor is not None else window).screen().availableGeometry()
    window.resize(fit_size(preferred, area.size()))
    if area.isEmpty():
        return
    frame = QRect(QPoint(0, 0), window.size().expandedTo(window.minimumSizeHint()) + FRAME_ALLOWANCE)
    centre = area.center()
    if anchor is not None and anchor.isVisible():
        centre = anchor.frameGeometry().center()
    frame.moveCenter(centre)
    x = max(area.left(), min(frame.left(), area.right() + 1 - frame.width()))
    y = max(area.top(), min(frame.top(), area.bottom() + 1 - frame.height()))
    window.move(x, y)

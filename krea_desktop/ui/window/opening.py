"""What the window's frame shows until the panels are built, where the saved split
will put them, at the size a first start gives it."""

from __future__ import annotations

import struct

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QWidget

from krea_desktop import config
from krea_desktop.ui.placement import fit_size


class OpeningPlaceholder(QWidget):
    """What the frame shows until the panels are built (a fraction of a second): the
    window's two columns where the splitter will put them, and a word on what is
    happening, so that the built window replaces it without a jump."""

    def __init__(self, left_width: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("openingPlaceholder")
        self._left = left_width
        self.problem: str | None = None

    def set_problem(self, text: str) -> None:
        """The library cannot be opened: say why, in place of the gallery."""
        self.problem = text
        self.setAccessibleDescription(text)
        self.update()

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        palette = self.palette()
        right = self.rect().adjusted(self._left, 0, 0, 0)
        painter.fillRect(right, palette.color(QPalette.ColorRole.Base))
        if self.problem:
            painter.setPen(palette.color(QPalette.ColorRole.Text))
            box = right.adjusted(40, 0, -40, 0)
            flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
            painter.drawText(box, int(flags.value), f"Krea Desktop cannot open your library.\n\n{self.problem}")
            painter.end()
            return
        text = "Opening your library…"
        metrics = painter.fontMetrics()
        painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
        x = right.center().x() - metrics.horizontalAdvance(text) // 2
        painter.drawText(x, right.center().y(), text)
        painter.end()


DEFAULT_LEFT_WIDTH = 480


def saved_split_sizes(options: config.SettingsStore) -> tuple[int, int] | None:
    """The two columns' widths saved by the main splitter (QSplitter::saveState: a
    marker, a version, then the sizes as a list of 32-bit ints), if any; together they
    say how wide the window was when they were saved."""
    state = options.get(config.MAIN_SPLITTER)
    if len(state) >= 20:
        marker, _version, count, first, second = struct.unpack(">5i", state[:20])
        if marker == 0xFF and count >= 2 and 0 < first < 10_000 and 0 <= second < 100_000:
            return first, second
    return None


FIRST_SIZE = QSize(1360, 860)


def first_size(available: QSize) -> QSize:
    """The window's size at its first start (nothing saved): :data:`FIRST_SIZE`, or less
    where the screen's free area (``available``) is smaller, so that the status bar and
    the job panel are on the screen."""
    return fit_size(FIRST_SIZE, available)

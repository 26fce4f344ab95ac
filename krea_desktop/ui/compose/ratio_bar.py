"""The eight aspect-ratio presets as radio buttons (one of them is chosen), each drawn as its
own shape."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QAbstractButton, QButtonGroup, QGridLayout, QRadioButton, QSizePolicy, QWidget

from krea_desktop.api import spec

if TYPE_CHECKING:  # its type is made only when a focus event comes
    from PySide6.QtGui import QFocusEvent

_DESCRIPTIONS = {
    "1:1": "square",
    "4:3": "classic landscape",
    "3:2": "photo landscape",
    "16:9": "widescreen",
    "2.35:1": "cinema widescreen",
    "4:5": "portrait, as for social posts",
    "2:3": "photo portrait",
    "9:16": "tall, as for phone screens",
}


class RatioButton(QRadioButton):
    """A button showing a ratio's shape, its name and its pixel size. A radio button, so
    that a screen reader says "radio button, 3 of 8" (one of them is chosen), not "check
    box" (as for a button that is on or off by itself); drawn here, not by the style."""

    SHAPE_BOX = 30  # the shape is drawn to fit a square this many pixels wide
    COMPACT_BOX = 20

    def __init__(self, ratio: spec.AspectRatio, parent: QWidget | None = None, *, compact: bool = False) -> None:
        super().__init__(parent)
        self.aspect = ratio
        # Compact: the shape and the name only (the size is in the tooltip and the heading),
        # so that all eight fit in one row of the window's left column.
        self.compact = compact
        self.setObjectName(f"ratio_{ratio.key}")
        self.setCheckable(True)
        self.setText(ratio.label)
        self.setAccessibleName(f"Aspect ratio {ratio.label}")
        self.setToolTip(
            f"{ratio.name} ({_DESCRIPTIONS.get(ratio.name, 'aspect ratio')}): "
            f"images are {ratio.width} × {ratio.height} pixels"
        )
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setAttribute(Qt.WidgetAttribute.WA_Hover)  # repaint on hover
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def focusInEvent(self, event: QFocusEvent) -> None:
        # Qt makes a radio button that takes the focus its group's one Tab stop, the
        # unchosen one pressed and let go outside it too: the stop stays at the chosen one.
        super().focusInEvent(event)
        bar = self.parentWidget()
        if isinstance(bar, RatioBar):
            bar._tab_stop_on_checked()

    def hitButton(self, pos: QPoint) -> bool:
        return self.rect().contains(pos)  # the whole tile, not a radio button's dot and text

    def _box(self) -> int:
        return self.COMPACT_BOX if self.compact else self.SHAPE_BOX

    def sizeHint(self) -> QSize:
        fm = self.fontMetrics()
        bold = QFont(self.font())
        bold.setBold(True)
        name_w = QFontMetrics(bold).horizontalAdvance(self.aspect.name)
        if self.compact:
            return QSize(max(self._box() + 10, name_w + 10), self._box() + fm.height() + 14)
        text_w = max(name_w, fm.horizontalAdvance(self._size_text())) + 16
        return QSize(max(self.SHAPE_BOX + 16, text_w), self.SHAPE_BOX + 2 * fm.height() + 14)

    def minimumSizeHint(self) -> QSize:
        """As wide as the name with a little room, so that a narrow column gives its
        spare padding first (a small window then leaves the gallery two columns)."""
        hint = self.sizeHint()
        if not self.compact:
            return hint
        bold = QFont(self.font())
        bold.setBold(True)
        name_w = QFontMetrics(bold).horizontalAdvance(self.aspect.name)
        return QSize(max(self._box() + 4, name_w + 6), hint.height())

    def _size_text(self) -> str:
        return f"{self.aspect.width}×{self.aspect.height}"

    def paintEvent(self, event: QPaintEvent) -> None:
        pal = self.palette()
        checked = self.isChecked()
        accent = pal.color(QPalette.ColorRole.Highlight)
        text = pal.color(QPalette.ColorRole.ButtonText)
        if not self.isEnabled():
            text = pal.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        frame = QRectF(self.rect()).adjusted(1, 1, -1, -1)
        bg = pal.color(QPalette.ColorRole.Button)
        if checked:
            bg = QColor(accent)
            bg.setAlpha(60)
        elif self.underMouse():
            bg = bg.lighter(115)
        p.setPen(QPen(accent if checked else pal.color(QPalette.ColorRole.Mid), 2 if checked else 1))
        p.setBrush(bg)
        p.drawRoundedRect(frame, 5, 5)
        if self.hasFocus():
            focus = QPen(accent, 1, Qt.PenStyle.DotLine)
            p.setPen(focus)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(frame.adjusted(3, 3, -3, -3), 3, 3)

        # The shape, to scale: the longer side fills the box.
        box = self._box()
        w, h = self.aspect.width, self.aspect.height
        sw, sh = (box, box * h / w) if w >= h else (box * w / h, box)
        top = 6 + (box - sh) / 2
        shape = QRectF((self.width() - sw) / 2, top, sw, sh)
        shape_colour = accent if checked else text
        p.setPen(QPen(shape_colour, 1.5))
        fill = QColor(shape_colour)
        fill.setAlpha(70 if checked else 30)
        p.setBrush(fill)
        p.drawRect(shape)

        fm = self.fontMetrics()
        y = 6 + box + 4
        bold = QFont(self.font())
        bold.setBold(True)
        p.setFont(bold)
        p.setPen(text)
        p.drawText(QRectF(0, y, self.width(), fm.height()), Qt.AlignmentFlag.AlignCenter, self.aspect.name)
        if self.compact:
            p.end()
            return
        small = QFont(self.font())
        small.setPointSizeF(max(6.0, self.font().pointSizeF() * 0.85))
        p.setFont(small)
        dim = QColor(text)
        dim.setAlpha(170)
        p.setPen(dim)
        size_rect = QRectF(0, y + fm.height(), self.width(), fm.height())
        p.drawText(size_rect, Qt.AlignmentFlag.AlignCenter, self._size_text())
        p.end()


class RatioBar(QWidget):
    """One radio button per aspect ratio; exactly one is checked at a time."""

    ratioChanged = Signal(str)  # the ratio's name, e.g. "16:9"

    def __init__(
        self, parent: QWidget | None = None, *, columns: int = len(spec.ASPECT_RATIOS), compact: bool = False
    ) -> None:
        super().__init__(parent)
        self.setObjectName("ratioBar")
        self.setToolTip("Aspect ratio and size of the generated images")
        self._group = QButtonGroup(self)
        self._group.setExclusive(True)
        self._buttons: dict[str, RatioButton] = {}
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        columns = max(1, columns)
        for i, ratio in enumerate(spec.ASPECT_RATIOS):
            button = RatioButton(ratio, self, compact=compact)
            self._group.addButton(button)
            self._buttons[ratio.name] = button
            layout.addWidget(button, i // columns, i % columns)
        self._current = spec.DEFAULT_RATIO
        self._buttons[self._current].setChecked(True)
        self._tab_stop_on_checked()
        self._group.buttonToggled.connect(self._on_toggled)

    def ratio(self) -> str:
        return self._current

    def setRatio(self, name: str) -> None:
        """Check the button for ``name`` (e.g. "2.35:1"); raises ValueError for an unknown one."""
        if name not in self._buttons:
            raise ValueError(f"{name!r} is not one of the aspect ratios {' '.join(self._buttons)}.")
        self._buttons[name].setChecked(True)

    def button(self, name: str) -> RatioButton:
        return self._buttons[name]

    def buttons(self) -> list[RatioButton]:
        return list(self._buttons.values())

    def _tab_stop_on_checked(self) -> None:
        """Tab stops at the chosen ratio only, as in any group of radio buttons (the arrow
        keys move among them): at the last one focused, Qt's way, it was often another
        one, which a screen reader then named, and whose arrow keys moved the focus alone."""
        for name, button in self._buttons.items():
            policy = Qt.FocusPolicy.StrongFocus if name == self._current else Qt.FocusPolicy.ClickFocus
            button.setFocusPolicy(policy)

    def _on_toggled(self, button: QAbstractButton, checked: bool) -> None:
        if not checked or not isinstance(button, RatioButton):
            return
        if button.aspect.name != self._current:
            self._current = button.aspect.name
            self._tab_stop_on_checked()
            self.ratioChanged.emit(self._current)

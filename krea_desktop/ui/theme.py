"""A dark, neutral look for image work: mid-grey surfaces so colours are judged fairly."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPaintEvent, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QApplication, QPushButton, QToolBar, QToolButton, QToolTip, QWidget

ACCENT = QColor("#5b8def")
# A reference's pull: warm for toward (+), cool for away (−), grey at 0. Orange and blue
# stay apart for the common forms of colour blindness, and the sign is also written out.
TOWARD = QColor("#f0a040")
AWAY = QColor("#6f8cff")
NEUTRAL = QColor("#6a6a6a")
OK_TEXT = QColor("#7fd18b")
ERROR_TEXT = QColor("#ff8a80")
WARNING_TEXT = QColor("#ffcc66")

# What a label says by its colour: set with :func:`set_role`, never with a style sheet. An
# application-wide style sheet makes Qt match its rules against every widget as it is
# made, laid out and painted (about 30 ms more before the window is ready, figures:
# tests/benchmarks/README.md); the palette costs nothing per widget.
ROLE_COLORS = {
    "hint": QColor("#a8a8a8"),
    "error": ERROR_TEXT,
    "warning": WARNING_TEXT,
    "ok": OK_TEXT,
}
SURFACE = QColor("#3a3b3f")  # floating messages
PRIMARY = QColor("#34508a")  # the one button a panel is for (Generate, Send)
FOCUS_RING = QColor("#f0f0f0")


def dark_palette() -> QPalette:
    p = QPalette()
    window, base, alt = QColor("#2f3033"), QColor("#26272a"), QColor("#34353a")
    text, dim = QColor("#e6e6e6"), QColor("#8a8a8a")
    button = QColor("#3a3b3f")
    roles = {
        QPalette.ColorRole.Window: window,
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: alt,
        QPalette.ColorRole.ToolTipBase: QColor("#3a3a3a"),
        QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.PlaceholderText: dim,
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: button,
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.BrightText: QColor("#ffffff"),
        QPalette.ColorRole.Light: QColor("#4a4b50"),
        QPalette.ColorRole.Midlight: QColor("#414247"),
        QPalette.ColorRole.Mid: QColor("#2a2b2e"),
        QPalette.ColorRole.Dark: QColor("#1f2022"),
        QPalette.ColorRole.Shadow: QColor("#151515"),
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: QColor("#ffffff"),
        QPalette.ColorRole.Link: ACCENT.lighter(120),
        QPalette.ColorRole.LinkVisited: ACCENT,
    }
    for role, color in roles.items():
        p.setColor(role, color)
    disabled = QPalette.ColorGroup.Disabled
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(disabled, role, QColor("#7a7a7a"))
    p.setColor(disabled, QPalette.ColorRole.Button, QColor("#333437"))
    p.setColor(disabled, QPalette.ColorRole.Highlight, QColor("#4a4b50"))
    return p


def apply_dark_palette(app: QApplication) -> None:
    """Fusion style and the dark palette, tooltips included. No style sheet: see
    :data:`ROLE_COLORS`."""
    app.setStyle("Fusion")
    palette = dark_palette()
    app.setPalette(palette)
    QToolTip.setPalette(palette)


def set_role(widget: QWidget, role: str | None) -> None:
    """Colour ``widget``'s text for what it says: ``hint``, ``error``, ``warning``, ``ok``,
    or anything else (``None``, ``info``) for the normal text colour. The role is kept as
    the widget's ``role`` property too."""
    widget.setProperty("role", role)
    palette = QPalette(widget.palette())
    color = ROLE_COLORS.get(role or "")
    if color is None:
        parent = widget.parentWidget()
        color = (parent.palette() if parent is not None else QApplication.palette()).color(
            QPalette.ColorRole.WindowText
        )
    for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
        palette.setColor(group, QPalette.ColorRole.WindowText, color)
        palette.setColor(group, QPalette.ColorRole.Text, color)
    widget.setPalette(palette)


class PrimaryButton(QPushButton):
    """The button a panel is for (Generate, Send): in the accent's colour so that the eye
    finds it, with a light ring while it has the focus (the style draws the focus of a
    default button no differently from the button itself)."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        palette = QPalette(self.palette())
        for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
            palette.setColor(group, QPalette.ColorRole.Button, PRIMARY)
            palette.setColor(group, QPalette.ColorRole.ButtonText, QColor("#ffffff"))
        self.setPalette(palette)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.hasFocus():
            paint_focus_ring(self, FOCUS_RING, 3)


def paint_focus_ring(widget: QWidget, colour: QColor, radius: float) -> None:
    """A ring of ``colour`` inside ``widget``'s edge: the keyboard's focus, for a control
    whose style draws it too faintly (called at the end of its paintEvent)."""
    painter = QPainter(widget)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(colour, 2))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawRoundedRect(QRectF(widget.rect()).adjusted(1, 1, -1, -1), radius, radius)
    painter.end()


def strength_color(strength: float) -> QColor:
    """The colour of a reference's strength wherever one is shown (tray, viewer, compare):
    hue for the direction, intensity for the amount."""
    if abs(strength) < 0.005:
        return QColor(NEUTRAL)
    target = TOWARD if strength > 0 else AWAY
    t = min(1.0, 0.35 + 0.65 * abs(strength) / 2.0)
    return QColor(
        round(NEUTRAL.red() + (target.red() - NEUTRAL.red()) * t),
        round(NEUTRAL.green() + (target.green() - NEUTRAL.green()) * t),
        round(NEUTRAL.blue() + (target.blue() - NEUTRAL.blue()) * t),
    )


MINUS = "\u2212"  # the minus sign, not the hyphen, before a negative strength


def signed_strength(strength: float) -> str:
    """A strength as it is written everywhere: its sign always (the direction is the
    point), a true minus, and 0.00 without one."""
    return "0.00" if round(strength, 2) == 0 else f"{strength:+.2f}".replace("-", MINUS)


def strength_text_color(strength: float) -> QColor:
    """:func:`strength_color` made lighter, for a strength written as text on a dark surface."""
    return strength_color(strength).lighter(125)


def show_overflow_button(bar: QToolBar, tip: str) -> None:
    """Make a tool bar's » button (which holds what does not fit) visible on a dark
    surface: the style's own arrow is dark grey, drawn here in the bar's text colour."""
    button = bar.findChild(QToolButton, "qt_toolbar_ext_button")
    if button is None:
        return
    colour = bar.palette().color(QPalette.ColorRole.ButtonText)
    icon = QIcon()
    for side in (16, 32):
        pixmap = QPixmap(side // 2 + 2, side)
        pixmap.fill(Qt.GlobalColor.transparent)
        p = QPainter(pixmap)
        font = QFont()
        font.setBold(True)
        font.setPixelSize(side)
        p.setFont(font)
        p.setPen(colour)
        p.drawText(pixmap.rect(), int(Qt.AlignmentFlag.AlignCenter), "»")
        p.end()
        icon.addPixmap(pixmap)
    button.setIcon(icon)
    button.setToolTip(tip)

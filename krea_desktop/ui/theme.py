"""A dark, neutral look for image work: mid-grey surfaces so colours are judged fairly."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QApplication, QToolBar, QToolButton

ACCENT = QColor("#5b8def")
# A reference's pull: warm for toward (+), cool for away (−), grey at 0. Orange and blue
# stay apart for the common forms of colour blindness, and the sign is also written out.
TOWARD = QColor("#f0a040")
AWAY = QColor("#6f8cff")
NEUTRAL = QColor("#6a6a6a")
OK_TEXT = QColor("#7fd18b")
ERROR_TEXT = QColor("#ff8a80")
WARNING_TEXT = QColor("#ffcc66")

STYLESHEET = """
QToolTip { color: #e8e8e8; background-color: #3a3a3a; border: 1px solid #555; }
QLabel[role="hint"] { color: #a8a8a8; }
QLabel[role="error"] { color: #ff8a80; }
QLabel[role="warning"] { color: #ffcc66; }
QLabel[role="ok"] { color: #7fd18b; }
QPushButton { background-color: #3a3b3f; color: #e6e6e6; border: 2px solid #4a4c51; border-radius: 4px;
              padding: 3px 12px; }
QPushButton:hover { background-color: #44464b; }
QPushButton:pressed { background-color: #2f3033; }
QPushButton:default { border-color: #5b8def; }
QPushButton:focus { border-color: #f0f0f0; background-color: #44464b; }
QPushButton:disabled { color: #777777; border-color: #3d3f43; }
QFrame#messageBanner { background-color: #3a3b3f; border: 1px solid #5b8def; border-radius: 6px; }
QFrame#messageBanner[role="error"] { border: 1px solid #ff8a80; }
"""


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
    """Fusion style, the dark palette and the small stylesheet the widgets rely on."""
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    app.setStyleSheet(STYLESHEET)


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

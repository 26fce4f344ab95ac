"""One reference in the tray: its thumbnail, a strength slider and spin box kept in
step, and the buttons to move or remove it; it can be dragged to reorder the tray."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, QLocale, QMimeData, QObject, QPoint, QRectF, Qt, QUrl, Signal
from PySide6.QtGui import (
    QColor,
    QDrag,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QPixmap,
    QValidator,
)
from PySide6.QtWidgets import (
    QApplication,
    QDoubleSpinBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from krea_desktop.api import spec
from krea_desktop.ui import theme
from krea_desktop.ui.mime import paste_images_to_window

# Dragging an item within the tray carries its content hash under this type.
REFERENCE_MIME = "application/x-krea-desktop-reference"


class StrengthSpinBox(QDoubleSpinBox):
    """Shows the sign always (+0.70, −0.50), since the direction is the point; takes a
    typed hyphen or minus alike, and a decimal comma or point alike. The strength is
    written with a point everywhere (:func:`theme.signed_strength`), so it is read with
    one whatever the system's language: read the German way, "+0.70" was no number, and
    "0.35" typed became 0.00."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setLocale(QLocale.c())

    @staticmethod
    def _plain(text: str) -> str:
        return text.replace(theme.MINUS, "-").replace(",", ".")

    def textFromValue(self, value: float) -> str:
        return theme.signed_strength(value)

    def valueFromText(self, text: str) -> float:
        return super().valueFromText(self._plain(text))

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:
        state, _read, _pos = super().validate(self._plain(text), pos)
        return state, text, pos  # the text as shown, its minus kept


class StrengthSlider(QSlider):
    """The strength's slider, ringed in the accent colour while it has the keyboard focus:
    its palette's highlight is given to the groove (see ReferenceItem), and the style's
    own focus mark, drawn in that colour, was a faint grey outline."""

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.hasFocus():
            theme.paint_focus_ring(self, theme.ACCENT, 4)


class ReferenceItem(QFrame):
    """One reference in the tray: thumbnail, strength slider and spin, and its controls."""

    strengthChanged = Signal(float)
    removeRequested = Signal()
    moveRequested = Signal(int)  # -1 left, +1 right
    sweepRequested = Signal()  # try a row of strengths for this reference

    THUMB_SIDE = 104

    @classmethod
    def card_width(cls) -> int:
        """Every card's width: the thumbnail and the frame around it."""
        return cls.THUMB_SIDE + 28

    def __init__(
        self,
        path: Path,
        sha256: str,
        thumbnail: QImage,
        strength: float = spec.DEFAULT_STRENGTH,
        *,
        source: str = "",
        size: tuple[int, int] = (0, 0),
        library_image: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("referenceItem")
        self.path = path
        self.sha256 = sha256
        self.source = source or path.name
        self.image_size = size
        self.library_image = library_image  # the imageUUID of the library image it is, if any
        self._value = 0  # the one source of truth: strength in hundredths
        self._press_pos: QPoint | None = None
        self.setFixedWidth(self.card_width())
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)

        self.thumbnailLabel = QLabel(self)
        self.thumbnailLabel.setObjectName("thumbnail")
        self.thumbnailLabel.setFixedSize(self.THUMB_SIDE, self.THUMB_SIDE)
        self.thumbnailLabel.setAlignment(Qt.AlignmentFlag.AlignCenter)
        dims = f" ({size[0]}×{size[1]})" if size[0] else ""
        lineage = "\nOne of your images: results made with it show it as their parent." if library_image else ""
        self.thumbnailLabel.setToolTip(
            f"{self.source}{dims}{lineage}\nDrag to reorder; double-click to reset the strength."
        )
        self._set_thumbnail(thumbnail)

        self.moveLeftButton = self._tool_button("moveLeftButton", "◀", "Move this reference one place to the left")
        self.moveLeftButton.clicked.connect(lambda: self.moveRequested.emit(-1))
        self.moveRightButton = self._tool_button("moveRightButton", "▶", "Move this reference one place to the right")
        self.moveRightButton.clicked.connect(lambda: self.moveRequested.emit(1))
        self.removeButton = self._tool_button("removeButton", "✕", "Remove this reference from the tray")
        self.removeButton.clicked.connect(self.removeRequested)
        self.sweepButton = self._tool_button(
            "sweepButton", "▦", "Sweep: try a row of strengths for this reference, at one seed"
        )
        self.sweepButton.clicked.connect(self.sweepRequested)

        self.directionLabel = QLabel(self)
        self.directionLabel.setObjectName("directionLabel")
        self.directionLabel.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.directionLabel.setToolTip("Whether this reference pulls the result toward it or pushes it away")

        self.strengthSlider = StrengthSlider(Qt.Orientation.Horizontal, self)
        self.strengthSlider.setObjectName("strengthSlider")
        self.strengthSlider.setRange(round(spec.STRENGTH_MIN * 100), round(spec.STRENGTH_MAX * 100))
        self.strengthSlider.setSingleStep(5)
        self.strengthSlider.setPageStep(25)
        self.strengthSlider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.strengthSlider.setTickInterval(100)
        self.strengthSlider.setToolTip(
            "Strength: right pulls the result toward this image, left pushes it away. Double-click resets to +0.70."
        )
        # Named by its reference: with three cards, three controls called "Strength" alone
        # could not be told apart by a screen reader.
        self.strengthSlider.installEventFilter(self)
        self._delete_removes = (
            self.strengthSlider,
            self.moveLeftButton,
            self.moveRightButton,
            self.removeButton,
            self.sweepButton,
        )
        for control in self._delete_removes[1:]:
            control.installEventFilter(self)
        # The wheel changes a strength only once its control has the focus (a click or Tab):
        # turned to scroll the tray while the pointer crosses a card, it scrolls the tray.
        self.strengthSlider.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        # Fusion fills the groove from the left end, which would read as "more" for a
        # negative strength; the item's colour shows direction and amount instead.
        slider_palette = self.strengthSlider.palette()
        slider_palette.setColor(QPalette.ColorRole.Highlight, slider_palette.color(QPalette.ColorRole.Dark))
        self.strengthSlider.setPalette(slider_palette)

        self.strengthSpin = StrengthSpinBox(self)
        self.strengthSpin.setObjectName("strengthSpin")
        self.strengthSpin.setRange(spec.STRENGTH_MIN, spec.STRENGTH_MAX)
        self.strengthSpin.setSingleStep(0.05)
        self.strengthSpin.setDecimals(2)
        self.strengthSpin.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.strengthSpin.setKeyboardTracking(False)
        self.strengthSpin.setToolTip("Strength from −2.00 (push away) to +2.00 (pull toward); the default is +0.70")
        spin_edit = self.strengthSpin.findChild(QLineEdit)
        if spin_edit is not None:
            spin_edit.setAcceptDrops(False)  # drops anywhere on the item go to the tray
        self.strengthSpin.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        paste_images_to_window(self.strengthSpin)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.setSpacing(3)
        buttons = QHBoxLayout()
        layout.addLayout(buttons)  # in place before it is filled (tests/ui/test_layout_items.py)
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.setSpacing(2)
        buttons.addWidget(self.moveLeftButton)
        buttons.addWidget(self.moveRightButton)
        buttons.addStretch(1)
        buttons.addWidget(self.sweepButton)
        buttons.addWidget(self.removeButton)
        layout.addWidget(self.thumbnailLabel, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.directionLabel)
        layout.addWidget(self.strengthSlider)
        layout.addWidget(self.strengthSpin)

        self.strengthSlider.valueChanged.connect(lambda v: self.setStrength(v / 100))
        self.strengthSpin.valueChanged.connect(self.setStrength)
        self._value = max(round(spec.STRENGTH_MIN * 100), min(round(spec.STRENGTH_MAX * 100), round(strength * 100)))
        self._sync_controls()
        self._name_controls()  # its place in the tray added by setPosition

    def _tool_button(self, name: str, text: str, tip: str) -> QToolButton:
        button = QToolButton(self)
        button.setObjectName(name)
        button.setText(text)
        button.setToolTip(tip)
        button.setAccessibleName(tip)
        button.setAutoRaise(True)
        return button

    def _set_thumbnail(self, image: QImage) -> None:
        if image.isNull():
            self.thumbnailLabel.setText("?")
            return
        ratio = self.devicePixelRatioF() or 1.0
        side = round(self.THUMB_SIDE * ratio)
        pixmap = QPixmap.fromImage(image).scaled(
            side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
        pixmap.setDevicePixelRatio(ratio)
        self.thumbnailLabel.setPixmap(pixmap)

    def strength(self) -> float:
        return self._value / 100

    def setStrength(self, value: float, notify: bool = True) -> None:
        hundredths = max(round(spec.STRENGTH_MIN * 100), min(round(spec.STRENGTH_MAX * 100), round(value * 100)))
        if hundredths == self._value:
            return
        self._value = hundredths
        self._sync_controls()
        if notify:
            self.strengthChanged.emit(self.strength())

    def _sync_controls(self) -> None:
        # Show the value in both controls without either reporting back.
        blocked = self.strengthSlider.blockSignals(True)
        self.strengthSlider.setValue(self._value)
        self.strengthSlider.blockSignals(blocked)
        blocked = self.strengthSpin.blockSignals(True)
        self.strengthSpin.setValue(self._value / 100)
        self.strengthSpin.blockSignals(blocked)
        # A screen reader reads the slider's own value in hundredths ("70"): the strength
        # as the card shows it is said with it.
        self.strengthSlider.setAccessibleDescription(f"Strength {self.strengthSpin.text()}, {self.direction()}")
        self._update_direction()

    def resetStrength(self) -> None:
        self.setStrength(spec.DEFAULT_STRENGTH)

    def direction(self) -> str:
        """ "toward", "away" or "neutral"."""
        return "toward" if self._value > 0 else "away" if self._value < 0 else "neutral"

    def directionColor(self) -> QColor:
        return theme.strength_color(self.strength())

    def _update_direction(self) -> None:
        text = {"toward": "toward (+)", "away": "away (−)", "neutral": "neutral (0)"}[self.direction()]
        self.directionLabel.setText(text)
        pal = self.directionLabel.palette()
        pal.setColor(QPalette.ColorRole.WindowText, theme.strength_text_color(self.strength()))
        self.directionLabel.setPalette(pal)
        self.update()

    def focus_chain(self) -> list[QWidget]:
        """The card's controls in the order Tab visits them: as the eye reads the card."""
        return [
            self.moveLeftButton,
            self.moveRightButton,
            self.sweepButton,
            self.removeButton,
            self.strengthSlider,
            self.strengthSpin,
        ]

    def setPosition(self, index: int, count: int) -> None:
        self.moveLeftButton.setEnabled(index > 0)
        self.moveRightButton.setEnabled(index < count - 1)
        self._name_controls(f"reference {index + 1} of {count}")

    def _name_controls(self, place: str = "") -> None:
        """The card and its controls named for a screen reader by its place in the tray and
        its image's name: two pasted images (both "pasted image") are told apart by place."""
        name = f"{place}: {self.source}" if place else self.source
        self.setAccessibleName(f"{name[0].upper()}{name[1:]}" if place else f"Reference {name}")
        self.removeButton.setAccessibleName(f"Remove {name} from the references")
        self.moveLeftButton.setAccessibleName(f"Move {name} one place to the left")
        self.moveRightButton.setAccessibleName(f"Move {name} one place to the right")
        self.sweepButton.setAccessibleName(f"Sweep the strength of {name}")
        self.strengthSlider.setAccessibleName(f"Strength of {name}")
        self.strengthSpin.setAccessibleName(f"Strength of {name}")

    def paintEvent(self, event: QPaintEvent) -> None:
        colour = self.directionColor()
        amount = abs(self.strength()) / spec.STRENGTH_MAX
        fill = QColor(colour)
        fill.setAlpha(round(18 + 50 * amount) if self._value else 10)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        width = 1.5 + 2.5 * amount
        p.setPen(QPen(colour, width))
        p.setBrush(fill)
        inset = width / 2 + 0.5
        p.drawRoundedRect(QRectF(self.rect()).adjusted(inset, inset, -inset, -inset), 6, 6)
        p.end()

    # Double-click anywhere but the number field resets; the slider needs a filter because
    # it takes double-clicks as presses.
    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.resetStrength()
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and watched in self._delete_removes:
            assert isinstance(event, QKeyEvent)
            if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and not event.modifiers():
                # Delete removes the reference whose slider or button has the focus, as it
                # removes images in the gallery (not in the strength's text, which it edits).
                self.removeRequested.emit()
                return True
        if watched is self.strengthSlider and event.type() == QEvent.Type.MouseButtonDblClick:
            assert isinstance(event, QMouseEvent)
            if event.button() == Qt.MouseButton.LeftButton:
                self.resetStrength()
                return True
        return super().eventFilter(watched, event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._press_pos = event.position().toPoint()
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if (
            self._press_pos is not None
            and event.buttons() & Qt.MouseButton.LeftButton
            and (event.position().toPoint() - self._press_pos).manhattanLength() >= QApplication.startDragDistance()
        ):
            self._press_pos = None
            self._start_drag()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._press_pos = None
        super().mouseReleaseEvent(event)

    def mime_data(self) -> QMimeData:
        mime = QMimeData()
        mime.setData(REFERENCE_MIME, QByteArray(self.sha256.encode()))
        mime.setUrls([QUrl.fromLocalFile(str(self.path))])  # so it can also be dropped elsewhere
        return mime

    def _start_drag(self) -> None:
        drag = QDrag(self)
        drag.setMimeData(self.mime_data())
        pixmap = self.thumbnailLabel.pixmap()
        if pixmap is not None and not pixmap.isNull():
            drag.setPixmap(pixmap.scaledToWidth(64, Qt.TransformationMode.SmoothTransformation))
        # Copy only: the file is the tray's own kept copy (shared by every image made with
        # it), so a file manager offered a Move would take it out of the data folder. In
        # the tray a copy dropped is a reorder.
        drag.exec(Qt.DropAction.CopyAction, Qt.DropAction.CopyAction)

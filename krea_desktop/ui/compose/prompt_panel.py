"""The prompt and every generation setting except the aspect ratio and the references."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QKeyEvent, QTextCursor, QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from krea_desktop.api import spec
from krea_desktop.api.record import GenerationRecord
from krea_desktop.ui.mime import paste_images_to_window
from krea_desktop.ui.theme import PrimaryButton, set_role

if TYPE_CHECKING:  # the request is made at Generate, after start-up
    from krea_desktop.api.request import GenerationRequest, ReferenceImage

MAX_HISTORY = 200

_FORMAT_TIPS = {
    "PNG": "PNG: lossless, largest files; quality does not apply",
    "JPG": "JPG: small files, no transparency; set the quality",
    "WEBP": "WEBP: small files with transparency; set the quality",
}
_DELIVERY_TIPS = {
    "sync": "Keep the connection open until every image is ready; they all arrive together",
    "async": "Submit the job and poll for results: each image appears as soon as it is ready (the default)",
}
# Images one by one as the service finishes them, each downloaded once (a poll of an async
# base64 task carries every finished image again): tests/benchmarks/README.md, bench_delivery.
DEFAULT_DELIVERY = "async"
DEFAULT_OUTPUT_TYPE = "URL"


class SeedValidator(QValidator):
    """Empty (a random seed) or a whole number from 0 to 2^63 − 1. Spaces and a line
    break around it (a seed copied from a file, a terminal or a chat) are left out."""

    def validate(self, text: str, pos: int) -> QValidator.State | tuple[QValidator.State, str, int]:
        trimmed = text.strip()
        if trimmed != text:
            lead = len(text) - len(text.lstrip())  # the cursor stays by the digits it was by
            return self._state(trimmed), trimmed, max(0, min(pos - lead, len(trimmed)))
        return self._state(text)

    @staticmethod
    def _state(text: str) -> QValidator.State:
        if text == "":
            return QValidator.State.Acceptable
        number = _seed_number(text)
        if number is None or number > spec.SEED_MAX:
            return QValidator.State.Invalid
        return QValidator.State.Acceptable


def _seed_number(text: str) -> int | None:
    """``text``'s whole number if it is one of digits only, else None. Leading zeros aside,
    one longer than the largest seed is any number over it: Python refuses to read one of
    over 4,300 digits (ValueError), which raised inside Qt's call of the validator ends
    the process."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    digits = text.lstrip("0") or "0"
    return int(digits) if len(digits) <= len(str(spec.SEED_MAX)) else spec.SEED_MAX + 1


class HintLine(QLabel):
    """A line of text that wraps, and keeps the height of two lines whatever it says: a
    message that grows from one line to two moves nothing below it."""

    LINES = 2

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        # Never wider than the column gives it: long words wrap or are cut, never widen it.
        policy = QSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum, QSizePolicy.ControlType.Label)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self._keep_height()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._keep_height()

    def _keep_height(self) -> None:
        margins = self.contentsMargins()
        self.setMinimumHeight(self.fontMetrics().lineSpacing() * self.LINES + margins.top() + margins.bottom())


def _images_only(event: QDropEvent) -> bool:
    from krea_desktop.ui.references.sources import images_without_text

    mime = event.mimeData()
    return mime is not None and images_without_text(mime)


class PromptEdit(QPlainTextEdit):
    """The prompt's text box. Images dropped on it, not text, are left to the window,
    which takes images dropped outside the tray: their file names are no prompt.

    The drops are caught here rather than by a filter on the viewport: asking Qt for the
    viewport it made would have the binding load every widget class it has to find the
    viewport's (about 9 ms, before the window is ready)."""

    _left_to_the_window = False  # the drag now over it holds images, not text (told on its entering)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        # Told once, as the drag comes in: text may name files, looked at on this thread.
        self._left_to_the_window = _images_only(event)
        if self._left_to_the_window:
            event.ignore()
            return
        super().dragEnterEvent(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if self._left_to_the_window:
            event.ignore()
            return
        super().dragMoveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        if _images_only(event):
            event.ignore()
            return
        super().dropEvent(event)


class PromptPanel(QWidget):
    """Prompt with history, creativity, count, seed, format and the advanced options.

    The window binds Ctrl+Enter to ``generateButton`` (and calls :meth:`addToHistory`
    with each prompt it sends); the panel emits :attr:`generateRequested` when the button
    is pressed, then gives the prompt the focus back, and keeps the button disabled, with
    a hint, while the prompt cannot be sent.

    Paste (Ctrl+V) in the prompt pastes text; with an image and no text on the clipboard
    the prompt lets the key through to the window's Paste action, which adds the image to
    the reference tray.
    """

    generateRequested = Signal()
    validityChanged = Signal(bool)
    historyChanged = Signal()
    # Any of :meth:`parameters` but the prompt changed (the window keeps them a moment later).
    parametersChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("promptPanel")
        self._history: list[str] = []
        self._history_pos: int | None = None
        self._draft = ""
        self._recalling = False
        self._last_seed: int | None = None
        self._valid = False

        self.promptEdit = PromptEdit(self)
        self.promptEdit.setObjectName("promptEdit")
        self.promptEdit.setPlaceholderText("Describe the image you want…")
        self.promptEdit.setToolTip(
            f"What to generate ({spec.PROMPT_MIN} to {spec.PROMPT_MAX} characters). "
            "Alt+Up and Alt+Down walk through earlier prompts; Ctrl+Enter generates."
        )
        self.promptEdit.setAccessibleName("Prompt")
        self.promptEdit.setTabChangesFocus(True)
        self.promptEdit.installEventFilter(self)
        self.promptEdit.textChanged.connect(self._on_prompt_changed)

        self.creativityCombo = QComboBox(self)
        self.creativityCombo.setObjectName("creativityCombo")
        self.creativityCombo.setToolTip("How freely the model interprets the prompt")
        for level in spec.CREATIVITY_LEVELS:
            self.creativityCombo.addItem(level.capitalize(), level)
            self.creativityCombo.setItemData(
                self.creativityCombo.count() - 1, spec.CREATIVITY_HELP[level], Qt.ItemDataRole.ToolTipRole
            )
        self.creativityHelp = QLabel(self)
        self.creativityHelp.setObjectName("creativityHelp")
        self.creativityHelp.setWordWrap(True)
        set_role(self.creativityHelp, "hint")
        self.creativityHelp.setToolTip("What the chosen creativity level does")
        self.creativityCombo.currentIndexChanged.connect(self._on_creativity_changed)

        self.countSpin = QSpinBox(self)
        self.countSpin.setObjectName("countSpin")
        self.countSpin.setRange(spec.RESULTS_MIN, spec.RESULTS_MAX)
        self.countSpin.setValue(1)
        self.countSpin.setToolTip(f"How many images to generate ({spec.RESULTS_MIN} to {spec.RESULTS_MAX})")
        self.countSpin.setAccessibleName("Number of images")

        self.seedEdit = QLineEdit(self)
        self.seedEdit.setObjectName("seedEdit")
        self.seedEdit.setValidator(SeedValidator(self.seedEdit))
        self.seedEdit.inputRejected.connect(self._seed_rejected)
        self.seedEdit.textChanged.connect(self._seed_edited)
        self.seedEdit.editingFinished.connect(self._update_validity)  # the refusal's message goes
        self.seedEdit.setPlaceholderText("random")
        self.seedEdit.setClearButtonEnabled(True)
        self.seedEdit.setToolTip(
            "The seed makes a result repeatable: the same prompt, settings and seed give the same image. "
            "Leave empty for a random seed."
        )
        self.seedEdit.setAccessibleName("Seed")
        self.reuseSeedButton = QToolButton(self)
        self.reuseSeedButton.setObjectName("reuseSeedButton")
        self.reuseSeedButton.setText("Last")
        self.reuseSeedButton.setToolTip("Reuse the seed of the last generated image")
        self.reuseSeedButton.setEnabled(False)
        self.reuseSeedButton.clicked.connect(self.reuseLastSeed)
        self.randomSeedButton = QToolButton(self)
        self.randomSeedButton.setObjectName("randomSeedButton")
        self.randomSeedButton.setText("New")
        self.randomSeedButton.setToolTip("Fill in a new random seed, so it can be reused later")
        self.randomSeedButton.clicked.connect(self.newRandomSeed)

        self.formatCombo = QComboBox(self)
        self.formatCombo.setObjectName("formatCombo")
        self.formatCombo.setToolTip("File format of the generated images")
        for fmt in spec.OUTPUT_FORMATS:
            self.formatCombo.addItem(fmt, fmt)
            self.formatCombo.setItemData(self.formatCombo.count() - 1, _FORMAT_TIPS[fmt], Qt.ItemDataRole.ToolTipRole)
        self.qualitySpin = QSpinBox(self)
        self.qualitySpin.setObjectName("qualitySpin")
        self.qualitySpin.setRange(spec.QUALITY_MIN, spec.QUALITY_MAX)
        self.qualitySpin.setValue(spec.DEFAULT_QUALITY)
        self.qualitySpin.setToolTip(
            f"Compression quality for JPG and WEBP ({spec.QUALITY_MIN} to {spec.QUALITY_MAX}; higher is better)"
        )
        self.qualitySpin.setAccessibleName("Quality")
        self.formatCombo.currentIndexChanged.connect(self._on_format_changed)

        # Advanced options, folded away by default.
        self.advancedToggle = QToolButton(self)
        self.advancedToggle.setObjectName("advancedToggle")
        self.advancedToggle.setText("Advanced")
        self.advancedToggle.setCheckable(True)
        self.advancedToggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advancedToggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advancedToggle.setAutoRaise(True)
        self.advancedToggle.setToolTip("Show or hide safety, cost, delivery and pass-through options")
        self.advancedToggle.toggled.connect(self.setAdvancedVisible)
        self.advancedSection = QWidget(self)
        self.advancedSection.setObjectName("advancedSection")

        self.safetyCheck = QCheckBox("Check content for safety", self.advancedSection)
        self.safetyCheck.setObjectName("safetyCheck")
        self.safetyCheck.setToolTip("Ask the service to check each image for unsafe content and flag it")
        self.includeCostCheck = QCheckBox("Report the cost of each job", self.advancedSection)
        self.includeCostCheck.setObjectName("includeCostCheck")
        self.includeCostCheck.setChecked(True)
        self.includeCostCheck.setToolTip("Ask the service for the cost of each job, shown in the status bar")
        self.deliveryCombo = QComboBox(self.advancedSection)
        self.deliveryCombo.setObjectName("deliveryCombo")
        self.deliveryCombo.setToolTip("How results come back from the service")
        for method in spec.DELIVERY_METHODS:
            self.deliveryCombo.addItem(method, method)
            self.deliveryCombo.setItemData(
                self.deliveryCombo.count() - 1, _DELIVERY_TIPS[method], Qt.ItemDataRole.ToolTipRole
            )
        self.webhookEdit = QLineEdit(self.advancedSection)
        self.webhookEdit.setObjectName("webhookEdit")
        self.webhookEdit.setPlaceholderText("https://… (optional)")
        self.webhookEdit.setToolTip("Also send each result to this address (webhookURL); passed through unchanged")
        self.uploadEndpointEdit = QLineEdit(self.advancedSection)
        self.uploadEndpointEdit.setObjectName("uploadEndpointEdit")
        self.uploadEndpointEdit.setPlaceholderText("https://… (optional)")
        self.uploadEndpointEdit.setToolTip(
            "Have the service upload each result to this address (uploadEndpoint); passed through unchanged"
        )
        for edit in (self.webhookEdit, self.uploadEndpointEdit):
            edit.setClearButtonEnabled(True)
            edit.textChanged.connect(self._update_validity)

        self.hintLabel = HintLine(self)
        self.hintLabel.setObjectName("generateHint")
        self.hintLabel.setToolTip("Why Generate is unavailable, or how long the prompt is")
        self.generateButton = PrimaryButton("Generate", self)
        self.generateButton.setObjectName("generateButton")
        self.generateButton.setDefault(True)
        self.generateButton.setToolTip("Generate images with these settings (Ctrl+Enter)")
        self.generateButton.clicked.connect(self._generate_clicked)

        # No text to paste: the window's Paste shortcut adds the image to the tray.
        paste_images_to_window(
            self.promptEdit,
            self.seedEdit,
            self.countSpin,
            self.qualitySpin,
            address_fields=(self.webhookEdit, self.uploadEndpointEdit),
        )
        for changed in (
            self.countSpin.valueChanged,
            self.seedEdit.textChanged,
            self.creativityCombo.currentIndexChanged,
            self.formatCombo.currentIndexChanged,
            self.qualitySpin.valueChanged,
            self.deliveryCombo.currentIndexChanged,
            self.safetyCheck.toggled,
            self.includeCostCheck.toggled,
            self.webhookEdit.textChanged,
            self.uploadEndpointEdit.textChanged,
        ):
            changed.connect(self.parametersChanged)
        self._build_layout()
        self._on_creativity_changed()
        self.creativityCombo.setCurrentIndex(spec.CREATIVITY_LEVELS.index(spec.DEFAULT_CREATIVITY))
        self._on_format_changed()
        self.deliveryCombo.setCurrentIndex(self.deliveryCombo.findData(DEFAULT_DELIVERY))
        self.setAdvancedVisible(False)
        self._update_validity()

    def _build_layout(self) -> None:
        # Each nested layout is put in its place before it is filled: PySide6 otherwise
        # keeps Python objects for the items already in it, which outlive them
        # (tests/ui/test_layout_items.py).
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._label("&Prompt", self.promptEdit))
        layout.addWidget(self.promptEdit, 1)

        # What changes the picture stays in sight; the rest folds away under Advanced.
        # The creativity levels' help is on the combo's items and in its tooltip.
        form = QFormLayout()
        layout.addLayout(form)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        creativity_row = QHBoxLayout()
        form.addRow(self._label("&Creativity", self.creativityCombo), creativity_row)
        creativity_row.setContentsMargins(0, 0, 0, 0)
        creativity_row.addWidget(self.creativityCombo, 1)
        creativity_row.addWidget(self._label("&Images", self.countSpin))
        creativity_row.addWidget(self.countSpin)
        seed_row = QHBoxLayout()
        form.addRow(self._label("&Seed", self.seedEdit), seed_row)
        seed_row.setContentsMargins(0, 0, 0, 0)
        seed_row.addWidget(self.seedEdit, 1)
        seed_row.addWidget(self.reuseSeedButton)
        seed_row.addWidget(self.randomSeedButton)
        self.creativityHelp.setVisible(False)

        # Under the settings, the hint (why Generate is unavailable, or the prompt's
        # length) on a row of its own, to wrap over the column's whole width; then the
        # Advanced toggle with Generate at the far end, and under Generate what it would
        # cost (a row of its own: a narrow column has no width to spare beside either):
        # unfolding Advanced moves none of them.
        layout.addWidget(self.hintLabel)
        toggle_row = QHBoxLayout()
        layout.addLayout(toggle_row)
        toggle_row.setContentsMargins(0, 0, 0, 0)
        toggle_row.addWidget(self.advancedToggle)
        actions = QHBoxLayout()
        toggle_row.addLayout(actions, 1)
        actions.setContentsMargins(0, 0, 0, 0)
        actions.addStretch(1)
        actions.addWidget(self.generateButton)
        self.actionRow = actions  # the window puts its Cancel button here, beside Generate
        self.estimateRow = QHBoxLayout()  # the window puts its cost estimate here
        layout.addLayout(self.estimateRow)
        self.estimateRow.setContentsMargins(0, 0, 0, 0)
        self.estimateRow.addStretch(1)
        layout.addWidget(self.advancedSection)
        adv = QFormLayout(self.advancedSection)
        adv.setContentsMargins(12, 0, 0, 0)
        format_row = QHBoxLayout()
        adv.addRow(self._label("&Format", self.formatCombo), format_row)
        format_row.setContentsMargins(0, 0, 0, 0)
        format_row.addWidget(self.formatCombo, 1)
        quality_label = QLabel("Quality", self.advancedSection)
        quality_label.setBuddy(self.qualitySpin)
        quality_label.setToolTip(self.qualitySpin.toolTip())
        format_row.addWidget(quality_label)
        format_row.addWidget(self.qualitySpin)
        adv.addRow(self.safetyCheck)
        adv.addRow(self.includeCostCheck)
        adv.addRow(self._label("&Delivery", self.deliveryCombo), self.deliveryCombo)
        adv.addRow(self._label("&Webhook URL", self.webhookEdit), self.webhookEdit)
        adv.addRow(self._label("&Upload endpoint", self.uploadEndpointEdit), self.uploadEndpointEdit)

        self.promptEdit.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def _label(self, text: str, buddy: QWidget) -> QLabel:
        label = QLabel(text, self)
        label.setBuddy(buddy)
        label.setToolTip(buddy.toolTip())
        return label

    # --- the prompt and its history ---------------------------------------------------

    def prompt(self) -> str:
        return self.promptEdit.toPlainText()

    def setPrompt(self, text: str) -> None:
        self.promptEdit.setPlainText(text)
        self._history_pos = None

    def replacePrompt(self, text: str) -> None:
        """The prompt becomes ``text`` as one edit that Ctrl+Z in the prompt takes back
        (setPrompt starts the prompt's history afresh)."""
        self._replace_text(text)
        self._history_pos = None

    def _replace_text(self, text: str) -> None:
        """The whole prompt replaced by ``text`` in one undoable edit, the cursor at its end."""
        if text == self.prompt():
            return  # nothing to take back: the undo history stays as it is
        cursor = self.promptEdit.textCursor()
        cursor.beginEditBlock()
        cursor.select(QTextCursor.SelectionType.Document)
        cursor.insertText(text)
        cursor.endEditBlock()
        self.promptEdit.setTextCursor(cursor)

    def history(self) -> list[str]:
        """Earlier prompts, oldest first (for the window to persist)."""
        return list(self._history)

    def setHistory(self, items: list[str]) -> None:
        cleaned: list[str] = []
        for item in items:
            if isinstance(item, str) and item.strip():
                if item in cleaned:
                    cleaned.remove(item)
                cleaned.append(item)
        self._history = cleaned[-MAX_HISTORY:]
        self._history_pos = None
        self.historyChanged.emit()

    def addToHistory(self, text: str) -> None:
        if not text.strip():
            return
        browsing = self._history_pos is not None
        if text in self._history:
            self._history.remove(text)
        self._history.append(text)
        del self._history[:-MAX_HISTORY]
        # A prompt from the history sent as it was: Alt+Down still goes on to the draft
        # that was being written before Alt+Up.
        self._history_pos = len(self._history) - 1 if browsing else None
        self.historyChanged.emit()

    def historyBack(self) -> None:
        if not self._history:
            return
        if self._history_pos is None:
            self._draft = self.prompt()
            pos = len(self._history) - 1
        else:
            pos = max(0, self._history_pos - 1)
        self._recall(pos)

    def historyForward(self) -> None:
        if self._history_pos is None:
            return
        pos = self._history_pos + 1
        if pos >= len(self._history):
            self._recalling = True
            self._replace_text(self._draft)
            self._recalling = False
            self._history_pos = None
        else:
            self._recall(pos)

    def _recall(self, pos: int) -> None:
        # Undoable, as every step through the history: Ctrl+Z brings back what the prompt
        # held before, the draft included.
        self._recalling = True
        self._replace_text(self._history[pos])
        self._recalling = False
        self._history_pos = pos

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.promptEdit and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            if event.modifiers() == Qt.KeyboardModifier.AltModifier:
                if event.key() == Qt.Key.Key_Up:
                    self.historyBack()
                    return True
                if event.key() == Qt.Key.Key_Down:
                    self.historyForward()
                    return True
        return super().eventFilter(watched, event)

    def _on_prompt_changed(self) -> None:
        if not self._recalling:
            self._history_pos = None
        self._update_validity()

    def _generate_clicked(self) -> None:
        # Back to the prompt (before any dialog the request opens takes the focus), so
        # that typing goes on there: type, generate, type again.
        self.promptEdit.setFocus(Qt.FocusReason.OtherFocusReason)
        self.generateRequested.emit()

    # --- seeds ----------------------------------------------------------------------

    def seed(self) -> int | None:
        """The seed typed, or None for a random one (text that is no seed cannot be typed
        or pasted: the validator refuses it)."""
        number = _seed_number(self.seedEdit.text().strip())
        return number if number is not None and number <= spec.SEED_MAX else None

    def setSeed(self, seed: int | None) -> None:
        self.seedEdit.setText("" if seed is None else str(seed))

    def setLastSeed(self, seed: int | None) -> None:
        """The seed of the latest result, offered by the "reuse last seed" button."""
        self._last_seed = seed
        self.reuseSeedButton.setEnabled(seed is not None)
        if seed is not None:
            self.reuseSeedButton.setToolTip(f"Reuse the seed of the last generated image ({seed})")

    def reuseLastSeed(self) -> None:
        if self._last_seed is not None:
            self.setSeed(self._last_seed)

    def newRandomSeed(self) -> None:
        import secrets

        self.setSeed(secrets.randbelow(spec.RANDOM_SEED_MAX + 1))

    # --- other settings ---------------------------------------------------------------

    def setAdvancedVisible(self, visible: bool) -> None:
        self.advancedSection.setVisible(visible)
        self.advancedToggle.setArrowType(Qt.ArrowType.DownArrow if visible else Qt.ArrowType.RightArrow)
        if self.advancedToggle.isChecked() != visible:
            self.advancedToggle.setChecked(visible)

    def _on_creativity_changed(self) -> None:
        level = self.creativityCombo.currentData() or spec.DEFAULT_CREATIVITY
        self.creativityHelp.setText(spec.CREATIVITY_HELP[level])
        self.creativityCombo.setToolTip(f"How freely the model interprets the prompt: {spec.CREATIVITY_HELP[level]}")

    def _on_format_changed(self) -> None:
        self.qualitySpin.setEnabled(self.formatCombo.currentData() in ("JPG", "WEBP"))

    def canGenerate(self) -> bool:
        return self._valid

    def problem(self) -> str | None:
        """Why Generate is unavailable, as one sentence, or None."""
        text = self.prompt().strip()
        if len(text) < spec.PROMPT_MIN:
            return f"Write a prompt of at least {spec.PROMPT_MIN} characters to generate."
        if len(text) > spec.PROMPT_MAX:
            return f"The prompt has {len(text):,} characters; shorten it to {spec.PROMPT_MAX:,} or fewer."
        for name, edit in (("webhook URL", self.webhookEdit), ("upload endpoint", self.uploadEndpointEdit)):
            value = edit.text().strip()
            if value and not _is_url(value):
                return f"The {name} must be a web address starting with http:// or https://."
        return None

    SEED_RANGE_MESSAGE = "A seed is a whole number from 0 to 2⁶³ − 1; leave it empty for a random one."

    def _seed_rejected(self) -> None:
        """Typed or pasted text that is no seed is refused; say why instead of ignoring it,
        while the typing goes on, until the field is emptied or left."""
        self.hintLabel.setText(self.SEED_RANGE_MESSAGE)
        set_role(self.hintLabel, "warning")

    def _seed_edited(self, text: str) -> None:
        if not text or self.hintLabel.text() != self.SEED_RANGE_MESSAGE:
            self._update_validity()

    def _update_validity(self) -> None:
        problem = self.problem()
        valid = problem is None
        self.generateButton.setEnabled(valid)
        if problem:
            self.hintLabel.setText(problem)
            role = "warning"
        else:
            self.hintLabel.setText(f"{len(self.prompt().strip()):,} / {spec.PROMPT_MAX:,} characters")
            role = "hint"
        if self.hintLabel.property("role") != role:
            set_role(self.hintLabel, role)
        if valid != self._valid:
            self._valid = valid
            self.validityChanged.emit(valid)

    # --- requests and records ---------------------------------------------------------

    def build_request(self, ratio: str, references: tuple[ReferenceImage, ...] = ()) -> GenerationRequest:
        """The request these settings describe; raises ``ValidationError`` if one is out of range."""
        from krea_desktop.api.request import GenerationRequest

        request = GenerationRequest(
            prompt=self.prompt().strip(),
            ratio=ratio,
            number_results=self.countSpin.value(),
            seed=self.seed(),
            creativity=self.creativityCombo.currentData(),
            references=tuple(references),
            output_type=DEFAULT_OUTPUT_TYPE,
            output_format=self.formatCombo.currentData(),
            output_quality=self.qualitySpin.value(),
            delivery_method=self.deliveryCombo.currentData(),
            check_content=self.safetyCheck.isChecked(),
            include_cost=self.includeCostCheck.isChecked(),
            webhook_url=self.webhookEdit.text().strip() or None,
            upload_endpoint=self.uploadEndpointEdit.text().strip() or None,
        )
        request.validate()
        return request

    def parameters(self) -> dict[str, Any]:
        """The panel's settings, as saved between sessions (keys named as the record's fields)."""
        return {
            "prompt": self.prompt(),
            "number_results": self.countSpin.value(),
            "seed": self.seed(),
            "creativity": self.creativityCombo.currentData(),
            "output_format": self.formatCombo.currentData(),
            "output_quality": self.qualitySpin.value(),
            "delivery_method": self.deliveryCombo.currentData(),
            "check_content": self.safetyCheck.isChecked(),
            "include_cost": self.includeCostCheck.isChecked(),
            "webhook_url": self.webhookEdit.text().strip() or None,
            "upload_endpoint": self.uploadEndpointEdit.text().strip() or None,
        }

    def kept_parameters(self) -> dict[str, Any]:
        """:meth:`parameters` as kept for the next session: with the prompt being written,
        even while an earlier one from the history is shown in its place (Alt+Up), which
        is in the history anyway."""
        kept = self.parameters()
        if self._history_pos is not None:
            kept["prompt"] = self._draft
        return kept

    def apply_record(self, record: GenerationRecord) -> list[str]:
        """Set the panel from how an image was made. What the record does not say is left
        as it is (a record without a prompt never replaces the prompt); the aspect ratio
        and references belong to the ratio bar and the tray. Returns the parameters the
        record gives that the model does not take (:meth:`apply_parameters`)."""
        said = {
            "prompt": record.prompt if record.has_prompt else None,
            "number_results": record.number_results,
            "seed": record.seed,
            "creativity": record.creativity,
            "output_format": record.output_format,
            "output_quality": record.output_quality,
            "delivery_method": record.delivery_method,
            "check_content": record.check_content,
            "include_cost": record.include_cost,
        }
        return self.apply_parameters({k: v for k, v in said.items() if v is not None}, undoable=True)

    def apply_parameters(self, params: Mapping[str, Any], *, undoable: bool = False) -> list[str]:
        """Set the panel from :meth:`parameters` (the state saved between sessions).

        Keys that are missing are left alone; values outside what the model accepts are
        left out, and their keys returned (a recall says them); a seed of None means a
        random seed. ``undoable``: the prompt replaced as one edit that Ctrl+Z in the
        prompt takes back (a recall), not started afresh.
        """
        refused: list[str] = []

        def pick(key: str) -> Any:
            return params.get(key, _MISSING)

        def within(key: str, low: int, high: int) -> int | None:
            value = pick(key)
            if _is_int(value) and low <= value <= high:
                return int(value)
            if value is not _MISSING and not (key == "seed" and value is None):
                refused.append(key)
            return None

        def select(combo: QComboBox, key: str, value: Any) -> None:
            if value is not _MISSING and value is not None and not _select(combo, value):
                refused.append(key)

        prompt = pick("prompt")
        if isinstance(prompt, str):
            if undoable:
                self.replacePrompt(prompt)
            else:
                self.setPrompt(prompt)
        count = within("number_results", spec.RESULTS_MIN, spec.RESULTS_MAX)
        if count is not None:
            self.countSpin.setValue(count)
        seed = within("seed", spec.SEED_MIN, spec.SEED_MAX)
        if seed is not None or pick("seed") is None:
            self.setSeed(seed)
        select(self.creativityCombo, "creativity", pick("creativity"))
        fmt = pick("output_format")
        select(self.formatCombo, "output_format", spec.normalize_output_format(fmt) if isinstance(fmt, str) else fmt)
        quality = within("output_quality", spec.QUALITY_MIN, spec.QUALITY_MAX)
        if quality is not None:
            self.qualitySpin.setValue(quality)
        select(self.deliveryCombo, "delivery_method", pick("delivery_method"))
        check = pick("check_content")
        if isinstance(check, bool):
            self.safetyCheck.setChecked(check)
        cost = pick("include_cost")
        if isinstance(cost, bool):
            self.includeCostCheck.setChecked(cost)
        for edit, key in ((self.webhookEdit, "webhook_url"), (self.uploadEndpointEdit, "upload_endpoint")):
            value = pick(key)
            if value is None or isinstance(value, str):
                edit.setText(value or "")
        return refused


_MISSING = object()


def _is_url(value: str) -> bool:
    from krea_desktop.api.request import is_url  # loaded at first need, after start-up

    return is_url(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _select(combo: QComboBox, value: Any) -> bool:
    """Choose ``value`` in ``combo``; whether it is one of its choices."""
    index = combo.findData(value)
    if index >= 0:
        combo.setCurrentIndex(index)
    return index >= 0

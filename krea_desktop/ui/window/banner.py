"""A strip across the top of the window: demo mode, or a message to act on."""

from __future__ import annotations

from collections.abc import Callable

from PySide6 import QtCore
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget


class Banner(QFrame):
    """A strip across the top of the window: demo mode, or a message to act on."""

    def __init__(self, object_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(object_name)
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.action = QPushButton(self)
        self.close_button = QPushButton("Dismiss", self)
        self.close_button.setToolTip("Hide this message")
        self.close_button.clicked.connect(self.hide)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 10, 6)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.action)
        lay.addWidget(self.close_button)
        self._slot: Callable[[], None] | None = None
        self.action.clicked.connect(self._act)

    def show_message(self, text: str, action: str | None = None, slot: Callable[[], None] | None = None) -> None:
        self.label.setText(text)
        self.action.setVisible(action is not None)
        if action:
            self.action.setText(action)
        self._slot = slot
        self.show()

    def _act(self) -> None:
        if self._slot is not None:
            self._slot()

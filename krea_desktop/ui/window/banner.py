"""The window's strips and messages: the demo-mode strip across the top, and messages
that float over the gallery."""

from __future__ import annotations

from collections.abc import Callable

import shiboken6
from PySide6 import QtCore
from PySide6.QtCore import QPropertyAnimation, QRectF, QTimer
from PySide6.QtGui import QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QApplication, QFrame, QGraphicsOpacityEffect, QHBoxLayout, QLabel, QPushButton, QWidget

from krea_desktop.ui import theme


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


class MessageToast(QFrame):
    """A message floating over the bottom of the gallery, so that it never moves the
    layout: information fades by itself; an error, or a message with an action to take
    (Undo, Open Settings), stays until dealt with or dismissed. A message that arrives
    while an error waits takes its place, and the error comes back once that one goes:
    no error is lost unread."""

    KEPT_ERRORS = 5  # errors and actions waiting behind the message shown, the newest kept

    FADE_AFTER_MS = 6000
    FADE_MS = 400

    def __init__(self, host: QWidget) -> None:
        super().__init__(host)
        self.setObjectName("messageBanner")
        self.label = QLabel(self)
        self.label.setObjectName("messageText")
        self.label.setWordWrap(True)
        self.label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.action = QPushButton(self)
        self.close_button = QPushButton("Dismiss", self)
        self.close_button.setToolTip("Hide this message")
        self.close_button.clicked.connect(self.dismiss)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(12, 8, 8, 8)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.action)
        lay.addWidget(self.close_button)
        self._slot: Callable[[], None] | None = None
        self.action.clicked.connect(self._act)
        self.acted_with_focus = False  # while an action runs: its button had the keyboard focus
        # Where the keyboard was when the message came (given back when it goes). Noted
        # then, not by following the application's every focus change: a handler of that
        # is called with widgets being destroyed.
        self._focus_before: QWidget | None = None
        self.error = False
        self._opacity = QGraphicsOpacityEffect(self)
        self._opacity.setOpacity(1.0)
        self.setGraphicsEffect(self._opacity)
        self._fade = QPropertyAnimation(self._opacity, b"opacity", self)
        self._fade.setDuration(self.FADE_MS)
        self._fade.setStartValue(1.0)
        self._fade.setEndValue(0.0)
        self._fade.finished.connect(self._gone)
        self._waiting: list[tuple[str, str | None, Callable[[], None] | None, bool]] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._fade.start)
        host.installEventFilter(self)
        self.hide()

    def show_message(
        self, text: str, action: str | None = None, slot: Callable[[], None] | None = None, *, error: bool = False
    ) -> None:
        # An error still waiting to be dealt with comes back once the new message has gone;
        # so does a message's action (Undo), unless the new message offers the same action
        # (the newest Undo is the one offered).
        waits = self.error or (self._slot is not None and action != self.action.text())
        if waits and self.stays and self.label.text() != text:
            self._waiting = [w for w in self._waiting if w[0] != self.label.text()]
            action_text = self.action.text() if self._slot else None
            self._waiting.append((self.label.text(), action_text, self._slot, self.error))
            del self._waiting[: -self.KEPT_ERRORS]
        self._waiting = [w for w in self._waiting if w[0] != text]
        self._fade.stop()
        self._timer.stop()
        self._opacity.setOpacity(1.0)
        focused = QApplication.focusWidget()
        if focused is not None and not self.isAncestorOf(focused) and focused.window() is self.window():
            self._focus_before = focused
        self.label.setText(text)
        # Said by a screen reader as it comes (an alert), not only when looked for.
        self.setAccessibleName(f"Error: {text}" if error else text)
        self.action.setVisible(action is not None)
        if action:
            self.action.setText(action)
        self._slot = slot
        self.error = error
        self.setProperty("role", "error" if error else "info")
        self.update()
        self._place()
        self.show()
        self.raise_()
        # Imported here: making their types (and their many enums) costs 2 ms, not to be
        # spent before the window is ready.
        from PySide6.QtGui import QAccessible, QAccessibleEvent

        QAccessible.updateAccessibility(QAccessibleEvent(self, QAccessible.Event.Alert))
        if not error and action is None:
            self._timer.start(self.FADE_AFTER_MS)

    def supersede(self, old: str, text: str, *, error: bool = False) -> None:
        """Show ``text`` in the place of ``old`` (shown or waiting), which is no longer
        true: it does not come back once ``text`` has gone."""
        self.show_message(text, error=error)
        self._waiting = [w for w in self._waiting if w[0] != old]

    def withdraw(self, text: str) -> None:
        """``text`` is no longer true (an Undo done another way, say): it does not come
        back, and goes at once if it is the message shown."""
        self._waiting = [w for w in self._waiting if w[0] != text]
        if self.isVisible() and self.label.text() == text:
            self.dismiss()

    @property
    def stays(self) -> bool:
        """Whether the message waits to be dealt with (no fading)."""
        fading = self._timer.isActive() or self._fade.state() == QPropertyAnimation.State.Running
        return self.isVisible() and not fading

    def dismiss(self) -> None:
        self._timer.stop()
        self._fade.stop()
        self._gone()

    def _gone(self) -> None:
        """The message shown went: the newest one still waiting comes back."""
        self._give_back_focus()
        self.hide()
        if self._waiting:
            text, action, slot, error = self._waiting.pop()
            self.show_message(text, action, slot, error=error)

    def drop_action(self, text: str) -> None:
        """``text`` stays true but its action no longer does anything (what it would act on
        went): the sentence is kept, shown or waiting, without the button."""
        self._waiting = [(t, None, None, e) if t == text else (t, a, s, e) for t, a, s, e in self._waiting]
        if self.isVisible() and self.label.text() == text and self._slot is not None:
            self._slot = None
            self.action.setVisible(False)
            if not self.error:  # information with nothing left to act on fades, as it would have
                self._timer.start(self.FADE_AFTER_MS)

    def _give_back_focus(self) -> None:
        """Before the message hides with the focus on one of its buttons (Undo, Dismiss,
        pressed or clicked): the focus goes back where it was when the message came. Else
        Qt hands it to the next widget of the window's chain, the ratio buttons, where the
        next arrow key changed the ratio."""
        focused = QApplication.focusWidget()
        if focused is None or not self.isAncestorOf(focused):
            return
        before = self._focus_before
        usable = (
            before is not None
            and shiboken6.isValid(before)
            and before.isVisible()
            and before.isEnabled()
            and not self.isAncestorOf(before)
            and before.window() is self.window()
        )
        target = before if usable else self.parentWidget()
        if target is not None:
            target.setFocus(QtCore.Qt.FocusReason.OtherFocusReason)

    def _act(self) -> None:
        slot = self._slot
        # Pressed from the keyboard, the button hides with the focus in it; the action may
        # say where the focus goes next (see acted_with_focus), else Qt hands it on.
        self.acted_with_focus = self.action.hasFocus()
        try:
            self.dismiss()
            if slot is not None:
                slot()
        finally:
            self.acted_with_focus = False

    def paintEvent(self, _event: QPaintEvent) -> None:
        """A rounded card: the accent's outline, or the error colour's for an error."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(theme.ERROR_TEXT if self.error else theme.ACCENT, 1))
        painter.setBrush(theme.SURFACE)
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 6, 6)
        painter.end()

    def _place(self) -> None:
        host = self.parentWidget()
        if host is None:
            return
        width = min(host.width() - 24, 720)
        self.setFixedWidth(max(200, width))
        self.adjustSize()
        x = (host.width() - self.width()) // 2
        y = host.height() - self.height() - 12
        self.move(max(0, x), max(0, y))

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:
        if watched is self.parentWidget() and event.type() == QtCore.QEvent.Type.Resize and self.isVisible():
            self._place()
        return False

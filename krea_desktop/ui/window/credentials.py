"""The API key looked up beside the GUI thread.

A desktop keyring can take its time: one that is locked asks for its password first, and
one whose service hangs answers after D-Bus gives up (25 s). The window asked it on the
GUI thread at every start and froze meanwhile. Now the lookup runs on a thread of its own;
the window waits a moment for it (a keyring that answers at once changes nothing), and
past that goes on showing what it showed last time, while the client thread, not the
window, waits for the answer before the first request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer

from krea_desktop import keystore

# How long the window waits for the key store before going on without its answer.
KEYRING_WAIT_S = 0.5
# How long the client thread waits for it before generating in demo mode.
KEYRING_GIVE_UP_S = 120.0

KEYRING_SLOW = (
    "Waiting for the system keyring to give the API key (it may be asking for its password); "
    "images are requested once it answers."
)
KEYRING_SILENT = (
    "The system keyring did not answer within 2 minutes, so images come from the built-in simulator "
    "until it does; unlock the keyring, or add the key again in Settings."
)

Answer = tuple[str | None, str | None]  # the key (None: none), and why there is none when that is not known


class KeyLookup:
    """:func:`keystore.find_key` on a daemon thread (one that never answers is left behind
    when the process ends). Its outcome is decided once, by whichever asks first after the
    answer or after ``give_up_s``: the client thread and the window never disagree."""

    def __init__(self, data_dir: Path | None, give_up_s: float | None = None) -> None:
        self._data_dir = data_dir
        self._answered = threading.Event()
        self._answer: Answer = (None, None)
        self._give_up_at = time.monotonic() + (KEYRING_GIVE_UP_S if give_up_s is None else give_up_s)
        self._lock = threading.Lock()
        self._outcome: Answer | None = None
        self.gave_up = False
        threading.Thread(target=self._ask, name="krea-keyring", daemon=True).start()

    def _ask(self) -> None:
        try:
            answer = keystore.find_key(self._data_dir)
        except Exception:  # a keyring backend that fails in its own way: as one that cannot be read
            answer = (None, keystore.KEYRING_UNREADABLE)
        self._answer = answer
        self._answered.set()

    @property
    def answered(self) -> bool:
        return self._answered.is_set()

    @property
    def answer(self) -> Answer:
        """What the key store said (once :attr:`answered`)."""
        return self._answer

    def wait(self, timeout_s: float) -> bool:
        return self._answered.wait(timeout_s)

    def outcome(self) -> Answer | None:
        """The answer, or once past the time allowed, none (with the sentence saying so);
        None while it is still awaited."""
        with self._lock:
            if self._outcome is None:
                if self._answered.is_set():
                    self._outcome = self._answer
                elif time.monotonic() >= self._give_up_at:
                    self.gave_up = True
                    self._outcome = (None, KEYRING_SILENT)
            return self._outcome

    def wait_outcome(self, stopping: Callable[[], bool]) -> Answer:
        """Block (on the client thread) until :meth:`outcome` is known, or ``stopping()``
        (the window closing: no key, nothing said)."""
        while (outcome := self.outcome()) is None:
            if stopping():
                return (None, None)
            self._answered.wait(0.1)
        return outcome


def follow(
    lookup: KeyLookup,
    parent: QObject,
    answered: Callable[[Answer], None],
    late_key: Callable[[], None],
    interval_ms: int = 100,
) -> QTimer:
    """On the GUI thread: ``answered(outcome)`` once the lookup's outcome is known, then,
    if that was giving up and the keyring answers later with a key, ``late_key()``. Polled
    (the thread touches no Qt object, so nothing crosses to a window already gone)."""
    timer = QTimer(parent)
    timer.setInterval(interval_ms)
    said = False

    def check() -> None:
        nonlocal said
        outcome = lookup.outcome()
        if outcome is None:
            return
        if not said:
            said = True
            answered(outcome)
        if not lookup.gave_up or lookup.answered:
            timer.stop()
            timer.deleteLater()
            if lookup.gave_up and lookup.answer[0]:
                late_key()

    timer.timeout.connect(check)
    timer.start()
    return timer

"""A minimal observer: what a Qt signal is for widgets, without Qt."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, ParamSpec

P = ParamSpec("P")

log = logging.getLogger(__name__)


class Event(Generic[P]):
    """Listeners called in the order they subscribed, on the thread that emits.

    A listener that raises is logged and does not stop the others: one broken view must
    not keep the rest of the window from hearing about a saved image.
    """

    def __init__(self) -> None:
        self._listeners: list[Callable[P, object]] = []

    def connect(self, listener: Callable[P, object]) -> Callable[[], None]:
        """Subscribe; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self.disconnect(listener)

    def disconnect(self, listener: Callable[P, object]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def emit(self, *args: P.args, **kwargs: P.kwargs) -> None:
        for listener in list(self._listeners):
            try:
                listener(*args, **kwargs)
            except Exception:
                log.exception("a listener of %r failed", self)

"""A library whose disk fills and empties at a test's word."""

from __future__ import annotations

import errno
from typing import Any

import pytest

from krea_desktop.library.store import Library


def a_disk_that_fills(monkeypatch: pytest.MonkeyPatch, *, full: bool) -> dict[str, int]:
    """Every ``Library.save`` refused with "No space left on device" while the switch
    returned says ``"on"`` (true), but for as many images as it has ``"room"`` for; the
    window's client thread tries held images again every 0.2 s (rather than 5 s)."""
    from krea_desktop.ui.jobs import client_thread

    monkeypatch.setattr(client_thread, "HELD_RETRY_S", 0.2)
    switch = {"on": int(full), "room": 0}
    real = Library.save

    def save(library: Library, image: Any, *args: Any, **kwargs: Any) -> Any:
        if switch["on"]:
            if switch["room"] <= 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            switch["room"] -= 1
        return real(library, image, *args, **kwargs)

    monkeypatch.setattr(Library, "save", save)
    return switch

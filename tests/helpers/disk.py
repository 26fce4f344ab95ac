"""A library whose disk fills and empties at a test's word."""

from __future__ import annotations

import errno
from typing import Any

import pytest

from krea_desktop.library.store import Library


def a_disk_that_fills(monkeypatch: pytest.MonkeyPatch, *, full: bool) -> dict[str, bool]:
    """Every ``Library.save`` refused with "No space left on device" while the switch
    returned is ``{"on": True}``; the window's client thread tries held images again every
    0.2 s (rather than 5 s)."""
    from krea_desktop.ui.jobs import client_thread

    monkeypatch.setattr(client_thread, "HELD_RETRY_S", 0.2)
    switch = {"on": full}
    real = Library.save

    def save(library: Library, image: Any, *args: Any, **kwargs: Any) -> Any:
        if switch["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(library, image, *args, **kwargs)

    monkeypatch.setattr(Library, "save", save)
    return switch

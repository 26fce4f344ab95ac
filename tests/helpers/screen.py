"""The screen that tests and benchmarks give Qt's offscreen platform: a desktop's
1920x1080 at 96 dpi (the platform's own is 800x800, smaller than the sizes the window is
tested at, and the window's first size follows the screen)."""

from __future__ import annotations

import os
from pathlib import Path

SCREEN_CONFIG = Path(__file__).with_name("offscreen-screen.json")


def offscreen_platform() -> str:
    """A QT_QPA_PLATFORM value for the offscreen platform on that screen (plain
    ``offscreen`` where the file's path cannot be passed: Qt splits options at ``:``
    and ``,``)."""
    if set(":,") & set(str(SCREEN_CONFIG)):
        return "offscreen"
    return f"offscreen:configfile={SCREEN_CONFIG}"


def use_offscreen_desktop() -> None:
    """Set QT_QPA_PLATFORM to :func:`offscreen_platform` unless another platform is set
    (before anything imports Qt)."""
    if os.environ.get("QT_QPA_PLATFORM", "offscreen") == "offscreen":
        os.environ["QT_QPA_PLATFORM"] = offscreen_platform()

"""The Qt shell: every Qt import in the program lives in this package.

``create_main_window`` is imported on first use, so that importing this package costs
nothing before the window's first paint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from krea_desktop.ui.app import create_main_window

__all__ = ["create_main_window"]


def __getattr__(name: str) -> Any:
    if name == "create_main_window":
        from krea_desktop.ui.app import create_main_window

        return create_main_window
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

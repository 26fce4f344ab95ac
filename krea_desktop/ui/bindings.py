"""Qt's bindings, made ready for the window before any of its modules is imported."""

from __future__ import annotations

import sys


def load_for_window() -> None:
    """Import PySide6 and skip its source scan (``skip_pyside_source_scan``), so that
    none of the window's modules, imported next, is scanned."""
    import PySide6  # noqa: F401 (installs the binding's import hook that the scan runs in)

    skip_pyside_source_scan()


def skip_pyside_source_scan() -> None:
    """PySide reads the source of every module imported after it (``inspect.getsource``)
    to find those that mention PySide6, for its opt-in ``from __feature__ import ...``
    syntax; the app never uses that, and the scan costs about 15 ms of CPU before the
    window is ready. Every module is taken as one that uses PySide without features,
    which is what the scan concludes for the app's own Qt modules. Does nothing where the
    binding has no such scan."""
    feature = sys.modules.get("shibokensupport.feature")
    if feature is not None and callable(getattr(feature, "_mod_uses_pyside", None)):
        setattr(feature, "_mod_uses_pyside", lambda _module: True)  # noqa: B010 (a module of the binding)

"""Where the library, settings and logs live.

``KREA_DESKTOP_DATA_DIR`` wins when set. Otherwise the folder is the one Qt's
``QStandardPaths.AppDataLocation`` names for an application called "krea-desktop"
with no organisation, computed here without Qt so the command line and the tests
agree with the window on one location.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_DIR_NAME = "krea-desktop"
ENV_DATA_DIR = "KREA_DESKTOP_DATA_DIR"


def _platform_data_root() -> Path:
    home = Path.home()
    if sys.platform == "win32":
        appdata = os.environ.get("APPDATA")
        return Path(appdata) if appdata else home / "AppData" / "Roaming"
    if sys.platform == "darwin":
        return home / "Library" / "Application Support"
    xdg = os.environ.get("XDG_DATA_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    if xdg and os.path.isabs(xdg):
        return Path(xdg)
    return home / ".local" / "share"


def data_dir() -> Path:
    """The folder holding the library (``images/``, ``library.sqlite``, ``thumbs/``) and settings."""
    override = os.environ.get(ENV_DATA_DIR, "").strip()
    if override:
        # Made absolute once, here: a relative folder would otherwise mean another one
        # after a change of directory, and SQLite is opened by URI, which must be absolute.
        return Path(os.path.abspath(Path(override).expanduser()))
    return _platform_data_root() / APP_DIR_NAME

"""The log file in the data folder (``logs/krea-desktop.log``): what the window and the
command line note of their own working. What the user is told is shown or printed as a
sentence; the log is for finding out afterwards what happened.

Standard library only: the window and the command line both write it.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NAME = "krea-desktop.log"


class LogFile(logging.handlers.RotatingFileHandler):
    """A line that cannot be written (the disk is full) is left out, not reported on
    stderr with a traceback: the user hears of the disk from what they were doing. A
    mistake in a logging call is still reported."""

    def handleError(self, record: logging.LogRecord) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handleError(record)


def open_log(folder: Path) -> LogFile | None:
    """Send the process's log records of INFO and above to ``folder``'s log file from now
    on. None when one is open already, or when the folder or the file cannot be made
    (nothing to do about it but go on)."""
    root = logging.getLogger()
    if any(isinstance(h, LogFile) for h in root.handlers):
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler = LogFile(folder / NAME, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return handler


@contextmanager
def logging_to(folder: Path) -> Iterator[None]:
    """:func:`open_log` for the length of a command: its records go to the log file, not
    to the terminal (where Python prints them when nothing else takes them), and the
    process's logging is as it was afterwards."""
    root = logging.getLogger()
    level = root.level
    handler = open_log(folder)
    try:
        yield
    finally:
        if handler is not None:
            root.removeHandler(handler)
            handler.close()
            root.setLevel(level)

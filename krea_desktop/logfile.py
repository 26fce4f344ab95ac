"""The log file in the data folder (``logs/krea-desktop.log``): what the window and the
command line note of their own working. What the user is told is shown or printed as a
sentence; the log is for finding out afterwards what happened.

Standard library only: the window and the command line both write it.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NAME = "krea-desktop.log"


MAX_BYTES = 2_000_000  # a file's size before it is set aside for a new one
BACKUPS = 3  # files set aside: krea-desktop.log.1 to .3

# Loggers of libraries that note every ordinary step at INFO (httpx a line per request,
# so one per poll of an async batch): only their warnings are worth the log's room.
_CHATTY = ("httpx", "httpcore", "hpack", "PIL")


class LogFile(logging.handlers.RotatingFileHandler):
    """A line that cannot be written (the disk is full) is left out, not reported on
    stderr with a traceback: the user hears of the disk from what they were doing. A
    mistake in a logging call is still reported.

    When the full file cannot be set aside (on Windows, while another process, such as a
    command run beside the window, has it open), lines go on into it, none lost, and the
    next try is after another :data:`MAX_BYTES`."""

    def handleError(self, record: logging.LogRecord) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handleError(record)

    def flush(self) -> None:
        with contextlib.suppress(OSError):
            super().flush()

    def close(self) -> None:
        # Lines still in the buffer when the disk is full are lost here, not raised: an
        # OSError from the log would take the place of what the command was ending with
        # (the sentence saying where its images went, or its success).
        with contextlib.suppress(OSError):
            super().close()

    def doRollover(self) -> None:
        try:
            super().doRollover()
        except OSError:
            if self.stream is None:
                self.stream = self._open()  # raises OSError on: the line is left out
            self.maxBytes = self.stream.seek(0, 2) + MAX_BYTES
        else:
            self.maxBytes = MAX_BYTES


def open_log(folder: Path) -> LogFile | None:
    """Send the process's log records of INFO and above to ``folder``'s log file from now
    on. None when one is open already, or when the folder or the file cannot be made
    (nothing to do about it but go on)."""
    root = logging.getLogger()
    if any(isinstance(h, LogFile) for h in root.handlers):
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler = LogFile(folder / NAME, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in _CHATTY:
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(logging.WARNING)
    return handler


@contextmanager
def logging_to(folder: Path) -> Iterator[None]:
    """:func:`open_log` for the length of a command: its records go to the log file, not
    to the terminal (where Python prints them when nothing else takes them), and the
    process's logging is as it was afterwards."""
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *_CHATTY)}
    handler = open_log(folder)
    try:
        yield
    finally:
        if handler is not None:
            root.removeHandler(handler)
            handler.close()
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)

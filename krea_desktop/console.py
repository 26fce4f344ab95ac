"""Lines for whoever reads the command line's output, who may stop reading at any time.

``krea-desktop generate ... | head -1`` closes the pipe after the first path: the next
line written would raise ``BrokenPipeError`` and stop a batch the user has paid for, its
remaining images left for a later run. A reader that went away instead stops getting
lines, and the work goes on to the end: every image is still saved in the library.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TextIO


def line(text: str, *, err: bool = False) -> None:
    """Print ``text`` on stdout (stderr with ``err``); nothing if its reader has gone."""
    stream: TextIO = sys.stderr if err else sys.stdout
    try:
        print(text, file=stream, flush=True)
    except BrokenPipeError:
        silence(stream)


def silence(stream: TextIO) -> None:
    """Send what is written to ``stream`` from now on (and at exit, when Python flushes it)
    to nowhere, so that a closed pipe is not an error again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)

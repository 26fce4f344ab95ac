"""Lines for whoever reads the command line's output, who may stop reading at any time.

``krea-desktop generate ... | head -1`` closes the pipe after the first path: the next
line written would raise ``BrokenPipeError`` and stop a batch the user has paid for, its
remaining images left for a later run. A reader that went away instead stops getting
lines, and the work goes on to the end: every image is still saved in the library.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from typing import TextIO

# Characters a terminal acts on instead of showing: the C0 and C1 controls (an image's
# metadata or a service's message may carry escape sequences that clear the screen, hide
# text or set the clipboard) and the bidirectional overrides and isolates (which make text
# read other than it is). Printed as \\u escapes, which in JSON mean the same character.
_UNSHOWN = {
    c: f"\\u{c:04x}"
    for c in (*range(0x20), 0x7F, *range(0x80, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A))
    if c != 0x0A
}

# The first error writing stdout other than a reader gone (a full disk under a
# redirection, "> /dev/full"): the command goes on without its output and says so at the end.
_unwritten: list[OSError] = []


def shown(text: str) -> str:
    """``text`` with every character a terminal would act on written as an escape (line
    breaks kept)."""
    return text.translate(_UNSHOWN)


def one_line(text: str) -> str:
    """``text`` (a file's name or path) on one line: its line breaks written as escapes, so
    that an output of one path per line stays one."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _write_bytes_of(text: str, stream: TextIO) -> None:
    """Write ``text`` and a line break to ``stream`` as the bytes a file name of it has
    (undecodable bytes as they were), for a stream whose encoding has no place for them;
    with escapes where the stream takes no bytes."""
    try:
        raw = os.fsencode(text)
    except UnicodeError:
        raw = text.encode("utf-8", "backslashreplace")
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        encoding = getattr(stream, "encoding", None) or "ascii"
        print(text.encode(encoding, "backslashreplace").decode(encoding, "replace"), file=stream, flush=True)
        return
    stream.flush()
    buffer.write(raw + b"\n")
    buffer.flush()


def line(text: str, *, err: bool = False) -> None:
    """Print ``text`` on stdout (stderr with ``err``, made safe to show: a service's
    message is among them); nothing if its reader has gone or it cannot be written."""
    stream: TextIO | None = sys.stderr if err else sys.stdout
    if stream is None:  # closed when the command started: print() would fall back to stdout
        if not err and not _unwritten:
            _unwritten.append(OSError(errno.EBADF, "standard output is closed"))
        return
    text = shown(text) if err else text
    try:
        try:
            print(text, file=stream, flush=True)
        except UnicodeEncodeError:  # a path's bytes the stream's encoding has no place for
            _write_bytes_of(text, stream)
    except BrokenPipeError:
        silence(stream)
    except OSError as exc:
        if not err and not _unwritten:
            _unwritten.append(exc)
        silence(stream)


def output_problem() -> str | None:
    """Why stdout could not be written, as the end of a sentence, or None."""
    if not _unwritten:
        return None
    exc = _unwritten[0]
    return exc.strerror or str(exc)


def silence(stream: TextIO) -> None:
    """Send what is written to ``stream`` from now on (and at exit, when Python flushes it)
    to nowhere, so that a closed pipe is not an error again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)

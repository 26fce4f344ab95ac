"""Large base64 payloads decoded in a helper process.

A 2.8 MB PNG arrives as 3.7 MB of base64. ``binascii`` decodes it in about 9 ms and holds
the GIL throughout; the standard library has no decoder that lets go of it. Decoded in
slices of half a millisecond on a worker thread, it still costs the window: the GUI
thread takes the GIL back at every call from Qt into Python (a delegate's ``paint``, a
model's ``data``, a timer's slot), many times per frame, and each time it waits behind
the slice being decoded plus the interpreter's switch interval. A batch of twenty such
images then stalls the window for more than a frame.

In a helper process the decoding takes none of this process's GIL: here the text is only
written to a pipe and the bytes read back, and both release the GIL while they wait. The
helper is one small Python process (``python -m krea_desktop.api.b64helper``, or the
bundle's own executable with ``--base64-helper``) started on first use, at a lower
priority, and it ends when this process ends (its input closes). If it cannot be started
or dies, the payload is decoded here as before: nothing is lost, only that stall comes back.

Protocol on the helper's stdin/stdout: a request is an 8-byte big-endian length and that
many bytes of base64; the answer is an 8-byte length and the decoded bytes, or the length
``INVALID`` alone when the text is not valid base64 (strict: ``validate=True``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import struct
import subprocess
import sys
import threading
from typing import IO

log = logging.getLogger(__name__)

# Smaller payloads are decoded in this process: they hold the GIL for a fraction of a millisecond.
MIN_SIZE = 256 * 1024
INVALID = (1 << 64) - 1
HELPER_FLAG = "--base64-helper"
# After this many failures to start or talk to the helper, stop trying for this session.
MAX_FAILURES = 3

_HEADER = struct.Struct(">Q")


class InvalidBase64(ValueError):
    """The helper found the text is not valid base64."""


def helper_command() -> list[str]:
    if getattr(sys, "frozen", False):  # the bundle: its executable runs the helper itself
        return [sys.executable, HELPER_FLAG]
    return [sys.executable, "-m", "krea_desktop.api.b64helper"]


class Base64Helper:
    """One helper process, used by one caller at a time (a lock serialises the calls)."""

    def __init__(self, command: list[str] | None = None) -> None:
        self._command = command
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self.failures = 0
        self.decoded = 0  # payloads decoded by the helper, for tests and benchmarks

    @property
    def usable(self) -> bool:
        return self.failures < MAX_FAILURES

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def decode(self, data: bytes | bytearray | memoryview) -> bytes | None:
        """The decoded bytes; None when the helper cannot be used (decode it yourself).
        Raises InvalidBase64 when the text is not valid base64."""
        with self._lock:
            if not self.usable:
                return None
            try:
                proc = self._running()
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(_HEADER.pack(len(data)))
                proc.stdin.write(data)
                proc.stdin.flush()
                size = _HEADER.unpack(_read_exactly(proc.stdout, _HEADER.size))[0]
                if size == INVALID:
                    raise InvalidBase64("not valid base64")
                out = _read_exactly(proc.stdout, size)
            except InvalidBase64:
                raise
            except (OSError, EOFError, ValueError, struct.error) as exc:
                self.failures += 1
                log.warning("the base64 helper failed (%s); decoding in the app instead", type(exc).__name__)
                self._stop()
                return None
            self.decoded += 1
            return out

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _running(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._stop()
        kwargs: dict = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = subprocess.BELOW_NORMAL_PRIORITY_CLASS | subprocess.CREATE_NO_WINDOW
        self._proc = subprocess.Popen(
            self._command or helper_command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            **kwargs,
        )
        return self._proc

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _read_exactly(stream: IO[bytes], n: int) -> bytes:
    data = stream.read(n)
    if data is None or len(data) != n:
        raise EOFError("the helper's answer ended early")
    return data


_shared: Base64Helper | None = None
_shared_lock = threading.Lock()


def shared() -> Base64Helper:
    """The process's helper, made on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Base64Helper()
        return _shared


# --- the helper's side ---------------------------------------------------------------------------------


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """Answer requests until stdin closes."""
    while True:
        head = stdin.read(_HEADER.size)
        if not head or len(head) != _HEADER.size:
            return
        data = stdin.read(_HEADER.unpack(head)[0])
        try:
            out = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            stdout.write(_HEADER.pack(INVALID))
        else:
            stdout.write(_HEADER.pack(len(out)))
            stdout.write(out)
        stdout.flush()


def main() -> int:
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(10)  # behind the window, like the app's other background work
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
        serve(sys.stdin.buffer, sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

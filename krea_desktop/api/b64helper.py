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

Protocol on the helper's stdin/stdout: the helper first writes ``HELLO``; a request is an
8-byte big-endian length and that many bytes of base64; the answer is an 8-byte length and
the decoded bytes, or the length ``INVALID`` alone when the text is not valid base64
(strict: ``validate=True``). Each exchange has a deadline; a helper that misses it is
killed and the payload decoded in the app.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import contextlib
import logging
import os
import struct
import subprocess
import sys
import threading
import time
from typing import IO, Any

log = logging.getLogger(__name__)

# Smaller payloads are decoded in this process: they hold the GIL for a fraction of a millisecond.
MIN_SIZE = 256 * 1024
INVALID = (1 << 64) - 1
HELPER_FLAG = "--base64-helper"
HELLO = b"KREA-B64"  # the helper's first words, before any request
START_TIMEOUT = 10.0  # seconds for the helper to start and say hello
MAX_REQUEST = 1 << 30
WATCH_PERIOD = 0.5  # how often the watchdog looks at the deadline, in seconds
# After this many failures to start or talk to the helper, stop trying for this session.
MAX_FAILURES = 3

_HEADER = struct.Struct(">Q")


class InvalidBase64(ValueError):
    """The helper found the text is not valid base64."""


def helper_command() -> list[str] | None:
    """How to start the helper; None where this process cannot start one."""
    if not sys.executable:  # an embedding host that reports no interpreter
        return None
    if getattr(sys, "frozen", False):  # the bundle: its executable runs the helper itself
        return [sys.executable, HELPER_FLAG]
    return [sys.executable, "-m", "krea_desktop.api.b64helper"]


def deadline_for(size: int) -> float:
    """Seconds an exchange may take before the helper counts as hung: generous (the
    helper runs at a low priority on a possibly busy machine), and bounded."""
    return START_TIMEOUT + size / (4 << 20)  # at least 4 MB a second


class Base64Helper:
    """One helper process, used by one caller at a time (a lock serialises the calls).

    Every exchange has a deadline, kept by one watchdog thread per helper that looks
    twice a second (arming it is setting a number: no thread is made per image). A helper
    that misses its deadline (hung, stopped, or not the helper at all) is killed, which
    ends the blocked read or write, and the caller decodes the payload itself."""

    def __init__(self, command: list[str] | None = None) -> None:
        self._command = command
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self.failures = 0  # in a row; a success starts the count again
        self.decoded = 0  # payloads decoded by the helper, for tests and benchmarks
        self._deadline: float | None = None  # monotonic; None when no exchange is under way
        self._watchdog: threading.Thread | None = None
        self._closing = threading.Event()

    @property
    def usable(self) -> bool:
        return self.failures < MAX_FAILURES

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def decode(self, data: bytes | bytearray | memoryview) -> bytes | None:
        """The decoded bytes; None when the helper cannot be used (decode it yourself).
        Raises InvalidBase64 when the text is not valid base64."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("base64 text must be bytes-like")
        view = memoryview(data).cast("B")
        with self._lock:
            if not self.usable:
                return None
            try:
                proc = self._running()
                if proc is None:
                    return None
                out = self._exchange(proc, view)
            except InvalidBase64:
                self.failures = 0
                raise
            except (OSError, EOFError, ValueError, struct.error) as exc:
                self._failed(type(exc).__name__)
                return None
            except BaseException:
                # Interrupted half-way (a cancelled thread, KeyboardInterrupt, no memory):
                # the pipe may be out of step, so this helper is not used again.
                self._stop()
                raise
            self.failures = 0
            self.decoded += 1
            return out

    def close(self) -> None:
        self._closing.set()  # ends the watchdog; a later decode starts a new one
        self._watchdog = None
        proc = self._proc
        if proc is not None:  # unblocks a caller stuck on the pipe, without its lock
            with contextlib.suppress(OSError):
                proc.kill()
        with self._lock:
            self._stop()

    def _exchange(self, proc: subprocess.Popen[bytes], view: memoryview) -> bytes:
        assert proc.stdin is not None and proc.stdout is not None
        self._deadline = time.monotonic() + deadline_for(view.nbytes)
        try:
            proc.stdin.write(_HEADER.pack(view.nbytes))
            proc.stdin.write(view)
            proc.stdin.flush()
            size = _HEADER.unpack(_read_exactly(proc.stdout, _HEADER.size))[0]
            if size == INVALID:
                raise InvalidBase64("not valid base64")
            if size > view.nbytes:  # base64 never decodes to more than it is long
                raise ValueError("the helper's answer is longer than possible")
            return _read_exactly(proc.stdout, size)
        finally:
            self._deadline = None

    def _failed(self, why: str) -> None:
        self.failures += 1
        log.warning("the base64 helper failed (%s); decoding in the app instead", why)
        self._stop()

    def _running(self) -> subprocess.Popen[bytes] | None:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._stop()
        command = self._command or helper_command()
        if command is None:
            self.failures = MAX_FAILURES
            return None
        kwargs: dict[str, Any] = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = subprocess.BELOW_NORMAL_PRIORITY_CLASS | subprocess.CREATE_NO_WINDOW
        proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            **kwargs,
        )
        self._proc = proc
        if self._watchdog is None:
            self._closing = threading.Event()
            self._watchdog = threading.Thread(
                target=self._watch, args=(self._closing,), name="krea-base64-watchdog", daemon=True
            )
            self._watchdog.start()
        # The helper says hello first: a program that is not the helper is found out here.
        assert proc.stdout is not None
        self._deadline = time.monotonic() + START_TIMEOUT
        try:
            if _read_exactly(proc.stdout, len(HELLO)) != HELLO:
                raise ValueError("the helper did not introduce itself")
        finally:
            self._deadline = None
        return proc

    def _watch(self, closing: threading.Event) -> None:
        while not closing.wait(WATCH_PERIOD):
            proc, deadline = self._proc, self._deadline
            if proc is not None and deadline is not None and time.monotonic() > deadline:
                self._deadline = None
                _kill(proc)

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.close()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _kill(proc: subprocess.Popen[bytes]) -> None:
    log.warning("the base64 helper did not answer in time; stopping it")
    with contextlib.suppress(OSError):
        proc.kill()


def _read_exactly(stream: IO[bytes], n: int) -> bytes:
    data = stream.read(n)
    if data is None or len(data) != n:
        raise EOFError("the helper's answer ended early")
    return data


_shared: Base64Helper | None = None
_shared_lock = threading.Lock()


def shared() -> Base64Helper:
    """The process's helper, made on first use (and stopped when the process exits)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Base64Helper()
            atexit.register(_shared.close)
        return _shared


# --- the helper's side ---------------------------------------------------------------------------------


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """Say hello, then answer requests until stdin closes."""
    stdout.write(HELLO)
    stdout.flush()
    while True:
        head = stdin.read(_HEADER.size)
        if not head or len(head) != _HEADER.size:
            return
        size = _HEADER.unpack(head)[0]
        if size > MAX_REQUEST:
            return  # not a request this protocol makes: end, and the app decodes itself
        data = stdin.read(size)
        if len(data) != size:
            return
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
    # A background process has no one to show an error to: any failure ends it quietly,
    # and the app, finding the pipe closed, decodes in-process.
    with contextlib.suppress(Exception, KeyboardInterrupt):
        serve(sys.stdin.buffer, sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

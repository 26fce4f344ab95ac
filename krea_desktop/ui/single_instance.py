"""One window per library: a second start hands its image paths to the running window.

The running window listens on a local socket (a Unix domain socket, a named pipe on
Windows) whose name is derived from the data folder, so two data folders are two
libraries, each with its own window. A start first tries to hand off to it; only when
nobody listens does it become the running window itself. A socket file left behind by a
window that crashed is found (nobody answers on it) and removed.

The protocol is one JSON object per line. The start sends
``{"open": ["/absolute/path", ...], "activation": "<XDG activation token or empty>"}``;
the running window answers ``{"ok": true}`` once it has taken the request, and the start
then exits. A running window that does not answer within ``HANDOFF_TIMEOUT_MS`` (hung, or
stopped) is reported, and the start exits without opening the library a second time, or
ends that window when the user asks (:func:`end_unresponsive`): the listening window
leaves a note beside its socket saying which process it is (:func:`note_path`).
"""

from __future__ import annotations

import contextlib
import enum
import importlib
import json
import logging
import os
import stat
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QDeadlineTimer, QLockFile, QObject, Signal, Slot

from krea_desktop.fsutil import process_identity, still_running

# QtNetwork is imported where a socket is used: a first start that finds no socket file
# (the usual case) does not load it before its window is ready (see claim's listen_later).
if TYPE_CHECKING:
    from PySide6.QtNetwork import QLocalSocket

log = logging.getLogger(__name__)

HANDOFF_TIMEOUT_MS = 5000  # connect, send and hear the answer, in all
CLAIM_LOCK_TIMEOUT_MS = 5000
END_WAIT_S = 2.0  # how long a window being ended is given, once asked and once made to
RECHECK_MS = 1000  # how long it is given to answer, asked once more just before it is ended
# A request longer than this is refused: far more than a command line carries (2 MB on
# Linux, up to six times that once each name beyond ASCII is escaped).
MAX_LINE_BYTES = 32 << 20
ACK = b'{"ok": true}\n'


# --- names ---------------------------------------------------------------------------------


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data`` in hex, by CPython's own module when it has one: hashlib loads
    OpenSSL (3 to 8 ms), which nothing else needs before the window is ready."""
    for name in ("_sha2", "_sha256"):  # Python 3.12+, 3.11
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        return str(module.sha256(data).hexdigest())
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _user_id() -> str:
    getuid = getattr(os, "getuid", None)
    if getuid is not None:
        return str(getuid())
    return os.environ.get("USERNAME", "user")


SHARED_TEMP = "/tmp"  # never $TMPDIR, which differs between a terminal and the file manager


def server_name(data_dir: Path) -> str:
    """The local socket of the window that has ``data_dir`` open.

    The same folder, however it is spelled (relative, through a symbolic link, with a
    trailing slash), gives the same name; another folder gives another name. On Unix the
    name is a full path: in ``$XDG_RUNTIME_DIR`` (private to the user) when there is one,
    else in a folder of ``/tmp`` that is the user's alone (:func:`_private_folder`), and
    never under ``$TMPDIR``, which differs between a terminal and the file manager on
    some systems.
    """
    folder = os.path.normcase(str(Path(data_dir).expanduser().resolve()))
    digest = sha256_hex(folder.encode("utf-8", "surrogatepass"))[:20]
    base = f"krea-desktop-{_user_id()}-{digest}"
    if sys.platform == "win32":
        return base
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        name = os.path.join(runtime, base)
        # One it cannot listen on there (a folder it may not write to, a path too long
        # for a socket) made every start a window of its own on the same library.
        if os.access(runtime, os.W_OK | os.X_OK) and _fits_a_socket(name):
            return name
    return os.path.join(_private_folder(), base)


# The longest path a local socket takes, less its end: 108 bytes on Linux, 104 on macOS.
SOCKET_PATH_MAX = 103


def _fits_a_socket(name: str) -> bool:
    return len(os.fsencode(name)) <= SOCKET_PATH_MAX


def _private_folder() -> str:
    """Where the socket and its lock go without ``$XDG_RUNTIME_DIR`` (macOS, some SSH or
    cron sessions): a folder in ``/tmp`` that only this user may enter, so that no other
    user can listen in the window's place and be handed the paths it is asked to open.
    One another user made first (or a symbolic link) is not used: the user's cache folder
    in the home folder is."""
    uid = os.getuid()
    folder = os.path.join(SHARED_TEMP, f"krea-desktop-{uid}")
    with contextlib.suppress(OSError):  # there already, or the folder refuses
        os.mkdir(folder, 0o700)
    with contextlib.suppress(OSError):
        st = os.lstat(folder)
        if stat.S_ISDIR(st.st_mode) and st.st_uid == uid:
            if st.st_mode & 0o077:
                os.chmod(folder, 0o700)
            return folder
    cache = Path.home() / ".cache"
    return str(cache if cache.is_dir() else Path.home())


def _lock_path(name: str) -> str:
    if os.path.isabs(name):
        return name + ".lock"
    import tempfile

    return os.path.join(tempfile.gettempdir(), name + ".lock")


def note_path(name: str) -> str:
    """The note of which process listens on ``name``: beside the socket (beside the lock on
    Windows, where the name is a pipe's), holding that process's id and
    :func:`~krea_desktop.fsutil.process_identity`."""
    return _lock_path(name).removesuffix(".lock") + ".pid"


# --- the protocol ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """What a second start asks of the running window."""

    paths: list[Path] = field(default_factory=list)
    activation: str = ""  # the start's XDG activation token, to raise the window on Wayland


def encode_request(paths: Sequence[Path], activation: str = "") -> bytes:
    """One line: the paths made absolute (the running window has another working folder)."""
    message = {"open": [os.path.abspath(os.fspath(p)) for p in paths], "activation": activation}
    # ASCII: a file name that is not valid UTF-8 holds surrogates for its bytes, which
    # travel as \udcXX escapes and come back as the same name.
    return json.dumps(message).encode("ascii") + b"\n"


def decode_request(line: bytes) -> Request | None:
    """The request on one line, or None when it is not one. Paths that are not absolute
    strings are left out."""
    try:
        message = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested beyond reason
        return None
    if not isinstance(message, dict) or not isinstance(message.get("open"), list):
        return None
    paths = [Path(p) for p in message["open"] if isinstance(p, str) and p and os.path.isabs(p)]
    activation = message.get("activation")
    return Request(paths, activation if isinstance(activation, str) else "")


# --- the second start -------------------------------------------------------------------------


class HandOff(enum.Enum):
    DONE = "done"  # the running window took the paths
    NO_INSTANCE = "no instance"  # nobody listens (or only a stale socket is left)
    NO_ANSWER = "no answer"  # something listens but did not answer in time


@dataclass(frozen=True)
class Refusal:
    """The running window answered that it cannot open the images it was given: ``why``
    (its library cannot be opened, say), in one sentence."""

    why: str
    whole: bool = False  # ``why`` is the whole sentence to say (not about the library)


# Said to a start that handed over more names than a request may hold.
TOO_MANY_NAMES = (
    "The Krea Desktop window already open was handed more file names at once than it takes; "
    "open fewer images at a time."
)


def refusal_line(why: str, *, whole: bool = False) -> bytes:
    answer: dict[str, object] = {"ok": False, "why": why}
    if whole:
        answer["whole"] = True
    return json.dumps(answer, ensure_ascii=True).encode("ascii") + b"\n"


def _refusal_of(line: bytes) -> Refusal | None:
    try:
        answer = json.loads(line.decode("ascii"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if isinstance(answer, dict) and answer.get("ok") is False and isinstance(answer.get("why"), str):
        return Refusal(answer["why"][:2000], whole=answer.get("whole") is True)
    return None


def _remaining(deadline: QDeadlineTimer) -> int:
    return max(0, int(deadline.remainingTime()))


def hand_off(
    name: str, paths: Sequence[Path], *, activation: str = "", timeout_ms: int = HANDOFF_TIMEOUT_MS
) -> HandOff | Refusal:
    """Give ``paths`` to the window listening on ``name``; never waits longer than
    ``timeout_ms`` in all. A :class:`Refusal` when the window cannot open them."""
    from PySide6.QtNetwork import QLocalSocket

    deadline = QDeadlineTimer(timeout_ms)
    socket = QLocalSocket()
    try:
        socket.connectToServer(name)
        if not socket.waitForConnected(_remaining(deadline)):
            if socket.error() == QLocalSocket.LocalSocketError.SocketTimeoutError:
                return HandOff.NO_ANSWER
            return HandOff.NO_INSTANCE
        socket.write(encode_request(paths, activation))
        socket.flush()
        answer = b""
        while b"\n" not in answer:
            if socket.bytesAvailable() <= 0 and not socket.waitForReadyRead(_remaining(deadline)):
                return HandOff.NO_ANSWER
            answer += bytes(socket.readAll().data())
            if deadline.hasExpired() and b"\n" not in answer:
                return HandOff.NO_ANSWER
        line = answer.partition(b"\n")[0].strip()
        if line == ACK.strip():
            return HandOff.DONE
        return _refusal_of(line) or HandOff.NO_ANSWER
    finally:
        socket.abort()  # owned by Python: deleted with its last reference


def is_listening(name: str, timeout_ms: int = 1000) -> bool:
    """Whether something accepts connections on ``name`` (sends nothing)."""
    from PySide6.QtNetwork import QLocalSocket

    socket = QLocalSocket()
    try:
        socket.connectToServer(name)
        return bool(socket.waitForConnected(timeout_ms))
    finally:
        socket.abort()  # owned by Python: deleted with its last reference


# --- the running window -----------------------------------------------------------------------


class Listen(enum.Enum):
    LISTENING = "listening"
    TAKEN = "taken"  # another window listens on the name
    FAILED = "failed"  # the socket cannot be made (said in the log)


class InstanceServer(QObject):
    """Listens for later starts and emits ``requested`` with each one's ``Request``."""

    requested = Signal(object)  # Request

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        from PySide6.QtNetwork import QLocalServer

        super().__init__(parent)
        self.name = name
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._accept)
        self._buffers: dict[QLocalSocket, bytes] = {}
        # Sockets whose request went past MAX_LINE_BYTES: the rest of it is read and left,
        # then the start is told (dropped, it took the window for one that hangs).
        self._overlong: set[QLocalSocket] = set()
        self._noted = False  # the note of who listens is this server's (removed on closing)
        # Why the window cannot open images now (its library cannot be opened): a start that
        # brings some hears it (and says it), rather than an answer that they were taken.
        self.refusal: str | None = None

    def listen(self) -> Listen:
        """Start listening, unless another window already does. A socket left by a window
        that ended without closing it (nobody answers on it) is removed first."""
        from PySide6.QtNetwork import QAbstractSocket, QLocalServer

        if is_listening(self.name):  # checked first: Qt replaces a live socket file too
            return Listen.TAKEN
        if self._server.listen(self.name):
            self._note()
            return Listen.LISTENING
        if self._server.serverError() == QAbstractSocket.SocketError.AddressInUseError:
            if is_listening(self.name):
                return Listen.TAKEN
            log.info("removing the socket a previous start left: %s", self.name)
            QLocalServer.removeServer(self.name)
            if self._server.listen(self.name):
                self._note()
                return Listen.LISTENING
        log.warning("cannot listen for other starts on %s: %s", self.name, self._server.errorString())
        return Listen.FAILED

    def isListening(self) -> bool:
        return bool(self._server.isListening())

    def _note(self) -> None:
        """Note which process listens, replacing a note a window that ended without closing
        its socket left: a later start that finds this one not answering can tell it."""
        pid = os.getpid()
        path = note_path(self.name)
        partial = f"{path}.{pid}.tmp"
        try:
            Path(partial).write_text(f"{pid}\n{process_identity(pid) or ''}\n")
            os.replace(partial, path)  # whole or not at all: a later start may read it any moment
        except OSError as err:
            log.info("cannot note which process listens on %s: %s", self.name, err)
            with contextlib.suppress(OSError):
                os.unlink(partial)
            return
        self._noted = True

    def close(self) -> None:
        if self._noted:
            self._noted = False
            path = note_path(self.name)
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(Path(path).read_text().split("\n")[0]) == os.getpid():  # not a later window's
                    os.unlink(path)
        if self._server.isListening():
            self._server.close()  # removes the socket file on Unix
        for socket in list(self._buffers):
            with contextlib.suppress(RuntimeError):  # already deleted by Qt: nothing to end
                socket.abort()
        self._buffers.clear()
        self._overlong.clear()

    @Slot()
    def _accept(self) -> None:
        while self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()  # a child of the server
            self._buffers[socket] = b""
            socket.readyRead.connect(self._ready_read)
            socket.disconnected.connect(self._disconnected)
            socket.disconnected.connect(socket.deleteLater)
            if socket.bytesAvailable() > 0:
                self._read(socket)

    @Slot()
    def _ready_read(self) -> None:
        from PySide6.QtNetwork import QLocalSocket

        socket = self.sender()
        if isinstance(socket, QLocalSocket):
            self._read(socket)

    @Slot()
    def _disconnected(self) -> None:
        from PySide6.QtNetwork import QLocalSocket

        socket = self.sender()
        if isinstance(socket, QLocalSocket):
            self._buffers.pop(socket, None)
            self._overlong.discard(socket)

    def _read(self, socket: QLocalSocket) -> None:
        if socket not in self._buffers:
            return
        data = bytes(socket.readAll().data())
        if socket in self._overlong:
            if b"\n" not in data:
                return
            data = data.partition(b"\n")[2]
            self._overlong.discard(socket)
            socket.write(refusal_line(TOO_MANY_NAMES, whole=True))
            socket.flush()
            if socket not in self._buffers:
                return  # disconnected meanwhile
        buffer = self._buffers[socket] + data
        while b"\n" in buffer:
            line, _, buffer = buffer.partition(b"\n")
            if len(line) > MAX_LINE_BYTES:  # come whole in one read: refused all the same
                log.warning("refused a request from another start: it is too long")
                socket.write(refusal_line(TOO_MANY_NAMES, whole=True))
                socket.flush()
                if socket not in self._buffers:
                    return
                continue
            request = decode_request(line)
            if request is None:
                log.warning("ignored a message from another start that is not a request")
                continue
            if self.refusal is not None and request.paths:
                socket.write(refusal_line(self.refusal))
                request = Request([], request.activation)  # the window still comes to the front
            else:
                socket.write(ACK)
            socket.flush()  # a start gone meanwhile: its socket says so here (_disconnected)
            if socket not in self._buffers:
                # Gone before the answer: it gave up waiting (a window stopped, then let go
                # on) and told its user the images were not handed over, or was ended. Its
                # images are not opened behind the user's back. The socket is being
                # deleted, and never kept again.
                log.info("a start left before its answer: the images it brought are not opened")
                return
            self.requested.emit(request)
        if len(buffer) > MAX_LINE_BYTES:
            log.warning("refused a request from another start: it is too long")
            self._overlong.add(socket)
            buffer = b""
        self._buffers[socket] = buffer


# --- both -------------------------------------------------------------------------------------


@dataclass
class Claim:
    """The outcome of :func:`claim`: ``server`` is listening (this start is the window),
    or ``handed_off`` (a running window took the paths), or neither (``problem`` says why
    this start must not open the library). When the problem is a window that has the
    library but does not answer, ``unresponsive_pid`` is its process when known (another
    process, still the one that noted it, with ``unresponsive_identity``): see
    :func:`end_unresponsive`. A claim made with ``listen_later`` that found no window has
    neither server nor problem yet: it holds the claim lock until :meth:`listen`, or
    :meth:`release`."""

    server: InstanceServer | None = None
    handed_off: bool = False
    problem: str = ""
    unresponsive_pid: int | None = None
    unresponsive_identity: str = ""
    _later: _Later | None = field(default=None, repr=False)

    def listen(self) -> InstanceServer | None:
        """Start listening (for a ``listen_later`` claim; otherwise the server it has), then
        let later starts in: they waited on the lock, and now find this window."""
        later, self._later = self._later, None
        if later is None:
            return self.server
        try:
            outcome = _listen_or_hand_off(later.name, [], later.activation, later.timeout_ms, later.data_dir)
        finally:
            later.unlock()
        if outcome.server is None:  # someone listened without the lock: this window goes on alone
            log.warning("another window listens for starts on %s; this one does not", later.name)
        self.server = outcome.server
        return self.server

    def release(self) -> None:
        """Give up a ``listen_later`` claim that will not listen (the window was closed first)."""
        later, self._later = self._later, None
        if later is not None:
            later.unlock()


@dataclass
class _Later:
    name: str
    activation: str
    timeout_ms: int
    data_dir: Path
    lock: QLockFile | None

    def unlock(self) -> None:
        if self.lock is not None:
            _release(self.lock)


def _may_be_listening(name: str) -> bool:
    """Whether a window may listen on ``name``: on Unix only if its socket file is there."""
    return sys.platform == "win32" or os.path.lexists(name)


def claim(
    data_dir: Path, paths: Sequence[Path], *, timeout_ms: int = HANDOFF_TIMEOUT_MS, listen_later: bool = False
) -> Claim:
    """Hand ``paths`` to the window that has ``data_dir`` open, or become that window.

    Starts at the same moment take turns (a lock file beside the socket), so exactly one
    of them listens and the others hand off to it. With ``listen_later``, a start that
    becomes the window keeps the lock and listens when it calls :meth:`Claim.listen`
    (once its window is up: the network module is not loaded before); starts meanwhile
    wait for the lock, then hand off to it.
    """
    name = server_name(data_dir)
    activation = os.environ.get("XDG_ACTIVATION_TOKEN", "")
    lock = QLockFile(_lock_path(name))
    lock.setStaleLockTime(0)  # only a lock whose process has ended is stale
    locked = _take(lock)
    # Held by a process it names; not a lock that cannot be made there at all (a folder in
    # its place, a full or read-only folder), which holds no one back.
    held_elsewhere = not locked and lock.error() == QLockFile.LockError.LockFailedError and lock.getLockInfo()[0] > 0
    if not locked:
        # The start holding it hangs, or is slow to open its window. What the user is told
        # comes from the outcome below; this start runs before logging is set up, so a
        # warning here would reach the terminal as a second, technical line.
        log.info("could not take %s", lock.fileName())
    keep_lock = False
    try:
        if _may_be_listening(name):
            outcome = hand_off(name, paths, activation=activation, timeout_ms=timeout_ms)
            if outcome is HandOff.DONE:
                return Claim(handed_off=True)
            if isinstance(outcome, Refusal):
                return Claim(problem=_refused(paths, outcome))
            if outcome is HandOff.NO_ANSWER:
                return _unanswered(data_dir, _listener(name))
        if held_elsewhere:
            # A start that holds the lock is running and has not listened yet (stopped, or
            # slow to open its window): going on would open a second window on the library.
            # It is not offered for ending: opening a large or damaged library takes its time.
            return Claim(problem=_opening(data_dir, _holder(lock)))
        if listen_later:
            keep_lock = True
            return Claim(_later=_Later(name, activation, timeout_ms, data_dir, lock if locked else None))
        return _listen_or_hand_off(name, paths, activation, timeout_ms, data_dir)
    finally:
        if locked and not keep_lock:
            _release(lock)


def _take(lock: QLockFile) -> bool:
    """Take the claim lock, waiting up to CLAIM_LOCK_TIMEOUT_MS for the start that holds it.
    A lock whose holder has ended while its process id went to another program is taken
    at once: Qt tells a live holder by its id and program name, the same for any Python
    program, so it would wait out the timeout at every start while that program runs."""
    if not lock.tryLock(0):
        if lock.error() != QLockFile.LockError.LockFailedError or not os.path.isfile(lock.fileName()):
            return False  # no lock can be made there at all (a folder in its place): nobody holds one
        if _holder_gone(lock) or _names_no_one(lock):
            lock.removeStaleLockFile()
        if not lock.tryLock(0) and not lock.tryLock(CLAIM_LOCK_TIMEOUT_MS):
            return False
    with contextlib.suppress(OSError):  # who holds it, as a later process can tell it from another
        Path(lock.fileName() + ".who").write_text(f"{os.getpid()}\n{process_identity(os.getpid()) or ''}\n")
    return True


def _release(lock: QLockFile) -> None:
    """Unlock, and remove the note of who held it first (the next holder writes its own)."""
    with contextlib.suppress(OSError):
        os.unlink(lock.fileName() + ".who")
    lock.unlock()


def _names_no_one(lock: QLockFile) -> bool:
    """Whether the lock file names no process (damaged, or cut short by a full disk) and has
    not been written for a while (one being written this moment names none yet). Qt keeps
    such a file as held for good."""
    if lock.getLockInfo()[0] > 0:
        return False
    try:
        return time.time() - os.stat(lock.fileName()).st_mtime > 10
    except OSError:
        return False


def _holder_gone(lock: QLockFile) -> bool:
    """Whether the process the lock names is surely not the one that took it."""
    try:
        pid_text, identity = Path(lock.fileName() + ".who").read_text().split("\n")[:2]
        pid = int(pid_text)
    except (OSError, ValueError):
        return False
    held_by = lock.getLockInfo()[0]
    if pid != held_by or not identity:  # written by an earlier holder, or nothing to tell by
        return False
    return not still_running(pid, identity)


def _listen_or_hand_off(name: str, paths: Sequence[Path], activation: str, timeout_ms: int, data_dir: Path) -> Claim:
    server = InstanceServer(name)
    listening = server.listen()
    if listening is Listen.LISTENING:
        return Claim(server=server)
    if listening is Listen.FAILED:
        # Later starts cannot find this one; the window opens all the same.
        return Claim(server=server)
    server.close()
    # Someone started listening in between (without the lock): hand off to it.
    outcome = hand_off(name, paths, activation=activation, timeout_ms=timeout_ms)
    if outcome is HandOff.DONE:
        return Claim(handed_off=True)
    if isinstance(outcome, Refusal):
        return Claim(problem=_refused(paths, outcome))
    return _unanswered(data_dir, _listener(name))


# --- a window that does not answer -----------------------------------------------------------


def _noted(path: str, held_by: int | None = None) -> tuple[int, str] | None:
    """The process a note (``pid`` and identity, a line each) names, if it is still the one
    that wrote it and is not this process; with ``held_by``, only if it is that process."""
    try:
        pid_text, identity = Path(path).read_text().split("\n")[:2]
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    if pid <= 0 or pid == os.getpid() or (held_by is not None and pid != held_by):
        return None
    if not still_running(pid, identity or None):
        return None
    return pid, identity


def _listener(name: str) -> tuple[int, str] | None:
    """The process that noted it listens on ``name``, if it still runs and can be told
    from a later process given its id (:func:`~krea_desktop.fsutil.process_identity`):
    only such a process is offered for ending."""
    noted = _noted(note_path(name))
    return noted if noted is not None and noted[1] else None


def _holder(lock: QLockFile) -> tuple[int, str] | None:
    """The process that holds the claim lock, if its note says so (see :func:`_take`)."""
    return _noted(lock.fileName() + ".who", held_by=lock.getLockInfo()[0])


def _unanswered(data_dir: Path, process: tuple[int, str] | None) -> Claim:
    pid, identity = process or (None, "")
    return Claim(problem=_busy(data_dir, pid), unresponsive_pid=pid, unresponsive_identity=identity)


def _opening(data_dir: Path, holder: tuple[int, str] | None) -> str:
    which = "" if holder is None else f" (process {holder[0]})"
    return (
        f"Another Krea Desktop{which} has been opening the library in {data_dir} for more than "
        f"{CLAIM_LOCK_TIMEOUT_MS // 1000} seconds; wait for it, then start again."
    )


def _busy(data_dir: Path, pid: int | None = None) -> str:
    which = "it" if pid is None else f"it (process {pid})"
    return (
        f"Another Krea Desktop is using the library in {data_dir} but did not answer; "
        f"wait for it, or end {which} if it stays frozen, then start again."
    )


def end_offer(data_dir: Path, pid: int) -> str:
    """The question put to the user before ending the window ``pid`` that does not answer."""
    seconds = HANDOFF_TIMEOUT_MS // 1000
    return (
        f"Another Krea Desktop (process {pid}) has the library in {data_dir} open but has not answered "
        f"for {seconds} seconds; ending it keeps every image and job already saved."
    )


def not_ended(pid: int) -> str:
    return (
        f"The other Krea Desktop (process {pid}) could not be ended, so the library stays with it; "
        "end it with the system's task manager, then start again."
    )


def end_unresponsive(pid: int, identity: str, *, wait_s: float = END_WAIT_S) -> bool:
    """End the window ``pid`` (noted as ``identity``) that does not answer: asked to end
    (SIGTERM, which a frozen window never gets to), then, if still there after ``wait_s``,
    made to (SIGKILL; on Windows the first already ends it). True once it has ended; False
    when it cannot be (another user's, or still running after both). Each signal goes only
    to the process noted: one that now has its id is left alone. Images and jobs are lost
    only if not yet saved, and the app saves each image as it arrives; the jobs it had not
    finished are collected at the next start."""
    import signal

    if pid <= 0 or pid == os.getpid():
        return False
    numbers: list[int] = [signal.SIGTERM]
    sigkill: int | None = getattr(signal, "SIGKILL", None)  # not on Windows
    if sigkill is not None:
        numbers.append(sigkill)
    for number in numbers:
        if _ended(pid, identity):
            return True
        try:
            os.kill(pid, number)
        except ProcessLookupError:
            return True
        except OSError as err:  # PermissionError: another user's
            log.warning("cannot end process %d: %s", pid, err)
            return False
        if os.name != "posix":
            return True  # terminated; whether the library is free now, the next claim finds
        deadline = time.monotonic() + wait_s
        while not _ended(pid, identity) and time.monotonic() < deadline:
            time.sleep(0.02)
    return _ended(pid, identity)


def _ended(pid: int, identity: str) -> bool:
    """Whether the process noted as ``pid`` and ``identity`` has ended: gone, its id another
    process's, or a zombie (ended; its parent has yet to collect it) with no thread left.
    The main thread of a process being killed is a zombie while its other threads still
    end, and they hold its files, the listening socket among them, until the last has."""
    if not still_running(pid, identity or None):
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        threads = len(os.listdir(f"/proc/{pid}/task"))
    except (OSError, IndexError):
        return False
    return state in ("Z", "X") and threads <= 1


def _refused(paths: Sequence[Path], refusal: Refusal) -> str:
    if refusal.whole:
        return refusal.why
    what = "this image" if len(paths) == 1 else f"these {len(paths)} images"
    return (
        f"The Krea Desktop window already open cannot open {what} because it cannot open its library "
        f"({refusal.why.rstrip('.')})."
    )

"""One window per library: a second start hands its images to the running window.

The first tests drive the protocol and the socket in this process; the last ones start
the real app twice, as a user would, each time a fresh Python process."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QLockFile
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from krea_desktop.library.schema import SCHEMA_VERSION
from krea_desktop.ui import single_instance
from krea_desktop.ui.single_instance import (
    ACK,
    HandOff,
    InstanceServer,
    Listen,
    Request,
    claim,
    decode_request,
    encode_request,
    hand_off,
    is_listening,
    server_name,
    sha256_hex,
)
from tests.helpers.images import image_bytes

ROOT = Path(__file__).resolve().parents[2]
unix_only = pytest.mark.skipif(sys.platform == "win32", reason="Unix domain sockets and signals")


@pytest.fixture
def name(tmp_path: Path, qapp: QApplication) -> Iterator[str]:
    chosen = server_name(tmp_path / "library")
    yield chosen
    QLocalServer.removeServer(chosen)


# --- names and messages ----------------------------------------------------------------------


@unix_only
def test_without_a_runtime_folder_the_socket_is_in_a_folder_only_the_user_may_enter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stat

    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(single_instance, "SHARED_TEMP", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir(mode=0o1777)
    name = Path(server_name(tmp_path / "library"))
    folder = name.parent
    assert folder == tmp_path / "tmp" / f"krea-desktop-{os.getuid()}"
    st = folder.lstat()
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) == 0o700
    assert Path(single_instance._lock_path(str(name))).parent == folder


@unix_only
@pytest.mark.parametrize("runtime_is", ["read-only", "too deep for a socket"])
def test_a_runtime_folder_the_socket_cannot_be_made_in_is_passed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime_is: str, qapp: QApplication
) -> None:
    """Listening there failed ("Name error"), and each start opened a window of its own on
    the same library: the socket goes in the private folder of /tmp instead."""
    runtime = tmp_path / ("r" * 90 if runtime_is == "too deep for a socket" else "runtime")
    runtime.mkdir()
    if runtime_is == "read-only":
        monkeypatch.setattr(os, "access", lambda path, mode: os.fspath(path) != str(runtime))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    shared = Path(tempfile.mkdtemp(prefix="ki-", dir="/tmp"))  # short, as /tmp is
    monkeypatch.setattr(single_instance, "SHARED_TEMP", str(shared))
    try:
        name = server_name(tmp_path / "library")
        assert Path(name).parent == shared / f"krea-desktop-{os.getuid()}"
        assert len(os.fsencode(name)) <= single_instance.SOCKET_PATH_MAX
        server = single_instance.InstanceServer(name)
        try:
            assert server.listen() is Listen.LISTENING
        finally:
            server.close()
    finally:
        shutil.rmtree(shared, ignore_errors=True)


@unix_only
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="making a folder another user owns")
def test_a_folder_another_user_made_in_its_place_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another local user could otherwise listen in the window's place and be handed the
    paths it is asked to open."""
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(single_instance, "SHARED_TEMP", str(tmp_path / "tmp"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / ".cache").mkdir(parents=True)
    squatted = tmp_path / "tmp" / f"krea-desktop-{os.getuid()}"
    squatted.mkdir(parents=True, mode=0o777)
    os.chown(squatted, 65534, 65534)  # nobody's
    name = Path(server_name(tmp_path / "library"))
    assert name.parent == tmp_path / "home" / ".cache"
    squatted.rmdir()
    (tmp_path / "tmp" / f"krea-desktop-{os.getuid()}").symlink_to(tmp_path / "elsewhere")  # nor a link
    assert Path(server_name(tmp_path / "library")).parent == tmp_path / "home" / ".cache"


@pytest.mark.parametrize("data", [b"", b"/home/artist/.local/share/krea-desktop", "caf\u00e9 \U0001f3a8".encode()])
def test_the_names_digest_is_sha256(data: bytes) -> None:
    import hashlib

    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()


def test_the_server_name_is_one_per_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    library = tmp_path / "library"
    library.mkdir()
    (tmp_path / "link").symlink_to(library)
    monkeypatch.chdir(tmp_path)
    same = {
        server_name(library),
        server_name(Path("library")),
        server_name(Path(f"{library}/")),
        server_name(tmp_path / "link"),
        server_name(tmp_path / "other" / ".." / "library"),
    }
    assert len(same) == 1
    assert server_name(tmp_path / "other") != server_name(library)
    name = same.pop()
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # a terminal's TMPDIR is not the file manager's
    assert server_name(library) == name
    if sys.platform != "win32":
        assert os.path.isabs(name) and len(name.encode()) < 104  # a Unix socket path's limit
        assert str(os.getuid()) in Path(name).name or name.startswith(os.environ.get("XDG_RUNTIME_DIR") or "/tmp")


def test_a_request_carries_absolute_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    line = encode_request([Path("some.png"), tmp_path / "ünïcode" / "b.webp"], activation="token-1")
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    request = decode_request(line.rstrip(b"\n"))
    assert request == Request([tmp_path / "some.png", tmp_path / "ünïcode" / "b.webp"], "token-1")
    assert decode_request(encode_request([])) == Request([], "")


def test_a_file_name_that_is_not_utf8_travels_to_the_running_window_as_it_is(tmp_path: Path) -> None:
    # Such a name reaches Python with surrogates for its bytes; the request could not be
    # written, and the second start ended with a traceback.
    odd = tmp_path / os.fsdecode(b"real\xffname.png")
    request = decode_request(encode_request([odd]).rstrip(b"\n"))
    assert request == Request([odd], "")
    assert os.fsencode(request.paths[0]).endswith(b"real\xffname.png")


@pytest.mark.parametrize(
    "line",
    [b"", b"not json", b"\xff\xfe", b"[1, 2]", b'{"close": []}', b'{"open": "/a.png"}', b"[" * 100_000],
    ids=lambda line: repr(line[:12]),
)
def test_what_is_not_a_request_is_refused(line: bytes) -> None:
    assert decode_request(line) is None  # nested past reason: not a RecursionError in the window's slot
    assert single_instance._refusal_of(line) is None


def test_only_absolute_string_paths_are_taken() -> None:
    root = os.path.abspath(os.sep)
    line = (
        '{"open": ["relative.png", 3, null, "", "' + os.path.join(root, "a.png").replace("\\", "\\\\") + '"]}'
    ).encode()
    assert decode_request(line) == Request([Path(root) / "a.png"], "")


# --- the socket, in this process ----------------------------------------------------------------


def test_the_running_window_takes_a_request_and_answers(qtbot: QtBot, name: str) -> None:
    server = InstanceServer(name)
    assert server.listen() is Listen.LISTENING
    client = QLocalSocket()
    client.connectToServer(name)
    assert client.waitForConnected(2000)
    line = encode_request([Path("/pictures/a.png"), Path("/pictures/b.png")])
    with qtbot.waitSignal(server.requested, timeout=5000) as arrived:
        client.write(line[:7])  # a request may come in pieces
        client.flush()
        qtbot.wait(50)
        client.write(line[7:])
        client.flush()
    assert arrived.args == [Request([Path("/pictures/a.png"), Path("/pictures/b.png")], "")]
    qtbot.waitUntil(lambda: client.bytesAvailable() >= len(ACK), timeout=5000)
    assert bytes(client.readAll().data()) == ACK
    client.abort()
    server.close()
    assert not is_listening(name)


def test_a_start_gone_before_its_answer_has_its_images_left_and_the_window_closes_cleanly(
    qtbot: QtBot, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A start that gave up (5 s) or was killed after sending: the answer found its socket
    # gone, the server kept it all the same, and closing the window aborted a deleted
    # socket (a traceback, exit 1, the library not closed). And the window opened the
    # images that start had told its user were not handed over.
    import socket as sockets

    server = InstanceServer(name)
    assert server.listen() is Listen.LISTENING
    requested: list[Request] = []
    server.requested.connect(requested.append)
    with sockets.socket(sockets.AF_UNIX) as raw:
        raw.connect(name)
        raw.sendall(encode_request([Path("/pictures/a.png")]))
    with caplog.at_level(logging.INFO, logger=single_instance.__name__):
        qtbot.waitUntil(lambda: "a start left before its answer" in caplog.text, timeout=5000)
    qtbot.wait(100)  # the socket's deferred deletion
    assert requested == []
    server.close()  # no RuntimeError from a deleted socket
    assert not is_listening(name)


def _send_and_hear(name: str, *lines: bytes) -> tuple[list[bytes], threading.Thread]:
    """Send each of ``lines`` over one raw socket from a thread, each after the answer to
    the one before (the server answers on this thread's event loop); the answers arrive
    in the list, one line each."""
    heard: list[bytes] = []

    def run() -> None:
        with socket.socket(socket.AF_UNIX) as raw:
            raw.settimeout(20)
            raw.connect(name)
            pending = b""
            for line in lines:
                raw.sendall(line)
                while b"\n" not in pending:
                    got = raw.recv(65536)
                    if not got:
                        return
                    pending += got
                answer, _, pending = pending.partition(b"\n")
                heard.append(answer + b"\n")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return heard, thread


def test_nine_thousand_files_named_in_japanese_reach_the_running_window(qtbot: QtBot, name: str) -> None:
    # Escaped for the line, their names passed the 1 MB a request could hold: the window
    # dropped the connection, and the start said the window did not answer and offered to
    # end it.
    server = InstanceServer(name)
    assert server.listen() is Listen.LISTENING
    paths = [Path(f"/ホーム/写真/二〇二六年夏の旅行/海辺の灯台と夕暮れの空と波_{n:05d}.png") for n in range(9000)]
    line = encode_request(paths)
    assert len(line) > 3 << 19  # 1.5 MB
    with qtbot.waitSignal(server.requested, timeout=15000) as arrived:
        heard, thread = _send_and_hear(name, line)
    qtbot.waitUntil(lambda: not thread.is_alive(), timeout=15000)
    assert arrived.args[0].paths == paths and heard == [ACK]
    server.close()


def test_a_request_past_the_limit_is_refused_in_one_sentence_not_dropped(
    qtbot: QtBot, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(single_instance, "MAX_LINE_BYTES", 4096)
    server = InstanceServer(name)
    assert server.listen() is Listen.LISTENING
    requests: list[Request] = []
    server.requested.connect(requests.append)
    too_many = encode_request([Path(f"/pictures/{n}.png") for n in range(2000)])
    # The same connection takes a request of the right size after it.
    heard, thread = _send_and_hear(name, too_many, encode_request([Path("/pictures/a.png")]))
    qtbot.waitUntil(lambda: not thread.is_alive(), timeout=15000)
    refused, answered = heard
    refusal = single_instance._refusal_of(refused.strip())
    assert refusal == single_instance.Refusal(single_instance.TOO_MANY_NAMES, whole=True)
    assert single_instance._refused([Path("/a.png")] * 2000, refusal) == single_instance.TOO_MANY_NAMES
    # Nothing of the long one was opened, and the window is not taken for one that hangs.
    assert answered == ACK and requests == [Request([Path("/pictures/a.png")], "")]
    server.close()


def test_a_start_with_nobody_running_is_told_so_at_once(name: str) -> None:
    started = time.monotonic()
    assert hand_off(name, [Path("/a.png")], timeout_ms=60_000) is HandOff.NO_INSTANCE
    assert time.monotonic() - started < 30  # not the minute it may wait for an answer


def test_a_window_that_does_not_answer_does_not_hold_the_start(name: str) -> None:
    # A server whose event loop does not run (as in a hung window): the connection is
    # accepted by the system, but nothing ever answers.
    hung = QLocalServer()
    assert hung.listen(name)
    started = time.monotonic()
    assert hand_off(name, [Path("/a.png")], timeout_ms=300) is HandOff.NO_ANSWER
    assert time.monotonic() - started < 30  # its time, not forever
    hung.close()


def test_a_second_server_on_the_same_library_is_refused(name: str) -> None:
    first = InstanceServer(name)
    assert first.listen() is Listen.LISTENING
    second = InstanceServer(name)
    assert second.listen() is Listen.TAKEN
    assert first.isListening()
    first.close()


@unix_only
def test_a_socket_left_by_a_crash_is_replaced(name: str) -> None:
    left = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    left.bind(name)  # bound and closed without unlinking: the file stays, nobody answers
    left.close()
    assert os.path.exists(name) and not is_listening(name)
    assert hand_off(name, [], timeout_ms=1000) is HandOff.NO_INSTANCE
    server = InstanceServer(name)
    assert server.listen() is Listen.LISTENING
    assert is_listening(name)
    server.close()
    assert not os.path.exists(name)


def test_claim_listens_once_and_refuses_a_second_window(tmp_path: Path, name: str) -> None:
    library = tmp_path / "library"
    first = claim(library, [])
    assert first.server is not None and first.server.isListening() and not first.problem
    # This process cannot answer itself while it waits, so the second claim meets a
    # window that does not answer, and must not open the library.
    second = claim(library, [Path("/a.png")], timeout_ms=300)
    assert second.server is None and not second.handed_off
    assert "Another Krea Desktop is using the library" in second.problem and str(library) in second.problem
    first.server.close()
    third = claim(library, [])  # closed: the next start is the window
    assert third.server is not None and third.server.isListening()
    third.server.close()


@unix_only
def test_a_start_while_the_window_gets_ready_waits_for_it_then_hands_off(tmp_path: Path) -> None:
    """The window listens once it is ready (listen_later): it holds the claim's lock until
    then, so a start meanwhile waits for it and hands off instead of opening a second
    window; and the first start does not load the network module before it listens."""
    library = tmp_path / "library"
    first = subprocess.Popen(
        [
            sys.executable,
            "-c",
            """
import sys, time
from pathlib import Path
from PySide6.QtCore import QCoreApplication, QTimer
from krea_desktop.ui import single_instance as si
app = QCoreApplication(sys.argv)
claim = si.claim(Path(sys.argv[1]), [], listen_later=True)
print("claimed", claim.server, claim.handed_off, repr(claim.problem), "PySide6.QtNetwork" in sys.modules, flush=True)
ready = Path(sys.argv[2])
for _ in range(600):  # the window getting ready, until the test says it is (or a minute)
    if ready.exists():
        break
    time.sleep(0.05)
server = claim.listen()
got = []
server.requested.connect(lambda request: (got.extend(request.paths), app.quit()))
QTimer.singleShot(20000, app.quit)
app.exec()
print("got", [str(p) for p in got], flush=True)
server.close()
""",
            str(library),
            str(tmp_path / "ready"),
        ],
        env=child_env(library),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert first.stdout is not None
        assert first.stdout.readline().split() == ["claimed", "None", "False", "''", "False"]
        # Ready half a second after the second start begins: it cannot have been handed
        # over sooner.
        threading.Timer(0.5, (tmp_path / "ready").touch).start()
        started = time.monotonic()
        second = claim(library, [Path("/pictures/a.png")])
        waited = time.monotonic() - started
        assert second.handed_off and second.server is None and not second.problem
        assert waited > 0.3  # it waited for the first to listen
        out, _ = first.communicate(timeout=30)
        assert out.split("\n")[0] == "got ['/pictures/a.png']"
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=10)


@unix_only
def test_a_lock_held_by_a_start_that_hangs_adds_no_line_to_what_the_user_reads(
    tmp_path: Path, qapp: QApplication
) -> None:
    """A start that cannot take the lock (the start holding it hangs) says nothing of the
    lock on the terminal: the user reads one sentence, the outcome's, or nothing."""
    library = tmp_path / "library"
    held = QLockFile(single_instance._lock_path(server_name(library)))
    assert held.tryLock(0)
    try:
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                """
import sys
from pathlib import Path
from PySide6.QtCore import QCoreApplication
from krea_desktop.ui import single_instance as si
app = QCoreApplication(sys.argv)
si.CLAIM_LOCK_TIMEOUT_MS = 100
claim = si.claim(Path(sys.argv[1]), [])
print("listening" if claim.server is not None else "problem" if claim.problem else "?", flush=True)
""",
                str(library),
            ],
            env=child_env(library),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        held.unlock()
    assert child.returncode == 0, child.stderr
    # The start holding the lock has not listened yet: a second window would open on the
    # same library (it used to go on alone), so this one says so and ends.
    assert child.stdout.split() == ["problem"]
    assert child.stderr == ""


def test_a_claim_to_listen_later_that_is_released_lets_the_next_start_be_the_window(
    tmp_path: Path, qapp: QApplication
) -> None:
    library = tmp_path / "library"
    first = claim(library, [], listen_later=True)
    assert first.server is None and not first.handed_off and not first.problem
    assert not os.path.exists(server_name(library))  # nothing listens yet
    first.release()  # the window was closed before it was ready
    second = claim(library, [])
    assert second.server is not None and second.server.isListening()
    second.server.close()


# --- two real starts ---------------------------------------------------------------------------


def child_env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["KREA_DESKTOP_DATA_DIR"] = str(data_dir)
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    env.pop("RUNWARE_API_KEY", None)
    env.pop("RUNWARE_API_URL", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            said = OUTPUTS[proc.pid].read_text(errors="replace")[-2000:] if proc.pid in OUTPUTS else ""
            pytest.fail(f"the first window ended ({proc.returncode}) before {what}: {said}")
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.1)


OUTPUTS: dict[int, Path] = {}  # what each started window printed


def log_text(data_dir: Path) -> str:
    try:
        return (data_dir / "logs" / "krea-desktop.log").read_text(encoding="utf-8")
    except OSError:
        return ""


@pytest.fixture
def windows(tmp_path: Path, qapp: QApplication) -> Iterator[Callable[[Path], subprocess.Popen[bytes]]]:
    """Starts the app (``python -m krea_desktop``) on a data folder; ends what it started."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(data_dir: Path) -> subprocess.Popen[bytes]:
        output = tmp_path / f"window-{len(started)}.out"
        with output.open("wb") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "krea_desktop"],
                env=child_env(data_dir),
                cwd=tmp_path,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        OUTPUTS[proc.pid] = output
        started.append((proc, data_dir))
        wait_for(lambda: is_listening(server_name(data_dir), 200), 60, "the first window listens", proc)
        return proc

    yield start
    for proc, data_dir in started:
        if proc.poll() is None:
            if sys.platform != "win32":
                proc.send_signal(signal.SIGCONT)
            proc.kill()
        proc.wait(timeout=30)
        OUTPUTS.pop(proc.pid, None)
        QLocalServer.removeServer(server_name(data_dir))
        Path(single_instance.note_path(server_name(data_dir))).unlink(missing_ok=True)  # a killed window's


def start_again(data_dir: Path, *args: str, cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "krea_desktop", *args],
        env=child_env(data_dir),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_second_start_hands_its_images_to_the_running_window(
    tmp_path: Path, windows: Callable[[Path], subprocess.Popen[bytes]]
) -> None:
    data_dir = tmp_path / "library"
    (tmp_path / "some.png").write_bytes(image_bytes((64, 48)))
    first = windows(data_dir)
    started = time.monotonic()
    second = start_again(data_dir, "some.png", "missing.png", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert time.monotonic() - started < 15
    assert second.stdout == ""
    # The first window (built by now, or as soon as it is) opens both: the picture in the
    # viewer, and a one-sentence message for the missing one.
    wait_for(lambda: "opened from another start: 2 file(s)" in log_text(data_dir), 60, "the paths arrive", first)
    assert first.poll() is None
    # One library, one window: there is no second library process, and a plain second
    # start just raises the window.
    assert start_again(data_dir, cwd=tmp_path).returncode == 0
    wait_for(lambda: "raised by another start" in log_text(data_dir), 30, "the window is raised", first)


def test_a_second_start_whose_images_the_window_cannot_open_is_told_why(
    tmp_path: Path, windows: Callable[[Path], subprocess.Popen[bytes]]
) -> None:
    """The window open on a library it could not open took the images of a second start
    and kept them waiting for a gallery that never came; the second start said nothing
    and ended as if they had been opened."""
    import sqlite3

    data_dir = tmp_path / "library"
    data_dir.mkdir()
    with sqlite3.connect(data_dir / "library.sqlite") as db:
        db.execute("PRAGMA user_version = 999")  # made by a later version: it cannot be opened
    (tmp_path / "some.png").write_bytes(image_bytes((64, 48)))
    first = windows(data_dir)
    second = start_again(data_dir, "some.png", cwd=tmp_path)
    assert second.returncode == 1 and second.stdout == ""
    assert second.stderr.strip() == (
        "krea-desktop: The Krea Desktop window already open cannot open this image because it cannot open its "
        "library (This library was written by a newer version of Krea Desktop (schema 999; this version knows "
        f"{SCHEMA_VERSION}), so it was left untouched: update Krea Desktop to open it)."
    ), second.stderr
    assert first.poll() is None
    assert start_again(data_dir, cwd=tmp_path).returncode == 0  # a plain start only raises that window


def test_another_library_is_another_window(tmp_path: Path, windows: Callable[[Path], subprocess.Popen[bytes]]) -> None:
    first = windows(tmp_path / "one")
    second = windows(tmp_path / "two")  # listens on its own: it did not hand off and exit
    assert first.poll() is None and second.poll() is None


@unix_only
def test_a_hung_window_makes_a_second_start_give_up_and_say_so(
    tmp_path: Path, windows: Callable[[Path], subprocess.Popen[bytes]]
) -> None:
    data_dir = tmp_path / "library"
    first = windows(data_dir)
    first.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        second = start_again(data_dir, "some.png", cwd=tmp_path)
        took = time.monotonic() - started
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 1
    assert took < single_instance.HANDOFF_TIMEOUT_MS / 1000 + 10
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "Another Krea Desktop is using the library" in lines[0], second.stderr
    assert f"end it (process {first.pid}) if it stays frozen" in lines[0]  # no screen: no box waits
    # Let go on, the window does not open the image that start said it could not hand over.
    wait_for(lambda: "a start left before its answer" in log_text(data_dir), 60, "the request is read", first)
    assert "opened from another start" not in log_text(data_dir)


@unix_only
def test_a_socket_left_by_a_killed_window_does_not_stop_the_next_start(
    tmp_path: Path, windows: Callable[[Path], subprocess.Popen[bytes]]
) -> None:
    data_dir = tmp_path / "library"
    name = server_name(data_dir)
    first = windows(data_dir)
    first.kill()
    first.wait(timeout=30)
    assert os.path.exists(name) and not is_listening(name)  # left behind, nobody answers

    again = windows(data_dir)  # starts as the window, on the same name
    (tmp_path / "some.png").write_bytes(image_bytes((32, 32)))
    assert start_again(data_dir, "some.png", cwd=tmp_path).returncode == 0
    wait_for(lambda: "opened from another start: 1 file(s)" in log_text(data_dir), 60, "the path arrives", again)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_closes_the_running_window_as_its_close_button_does(
    tmp_path: Path, windows: Callable[[Path], subprocess.Popen[bytes]], number: int
) -> None:
    data = tmp_path / "library"
    proc = windows(data)
    wait_for(lambda: "Ctrl+C and SIGTERM close the window" in log_text(data), 60, "the loop takes signals", proc)
    proc.send_signal(number)
    assert proc.wait(timeout=60) == 0
    said = OUTPUTS[proc.pid].read_text(errors="replace")
    assert "Traceback" not in said and "KeyboardInterrupt" not in said
    assert "mainSplitter" in (data / "settings.ini").read_text()  # its state kept, as on closing


@unix_only
def test_a_lock_left_by_a_start_whose_process_id_another_program_has_now_is_taken_at_once(
    tmp_path: Path, qapp: QApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Qt tells a live holder by its process id and program name, the same for every
    Python program: a lock left by a killed start, its id now another Python program's,
    held every later start for the whole timeout."""
    library = tmp_path / "library"
    lock_path = single_instance._lock_path(server_name(library))
    killed = subprocess.Popen(
        [sys.executable, "-c", _TAKE_AND_WAIT, str(library)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert killed.stdout is not None and killed.stdout.readline().strip() == "held"
    killed.kill()
    killed.wait()
    other = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        # The id the killed start had is now the other program's.
        lines = Path(lock_path).read_text().split("\n")
        Path(lock_path).write_text("\n".join([str(other.pid), *lines[1:]]))
        Path(lock_path + ".who").write_text(f"{other.pid}\nboot:1\n")
        monkeypatch.setattr(single_instance, "CLAIM_LOCK_TIMEOUT_MS", 20000)
        started = time.monotonic()
        claim = single_instance.claim(library, [])
        took = time.monotonic() - started
        assert claim.server is not None and claim.server.isListening(), claim.problem
        assert took < 5
        claim.server.close()
    finally:
        other.kill()
        other.wait()


_TAKE_AND_WAIT = """
import sys
from pathlib import Path
from PySide6.QtCore import QCoreApplication
from krea_desktop.ui import single_instance as si
app = QCoreApplication(sys.argv)
claim = si.claim(Path(sys.argv[1]), [], listen_later=True)
print("held", flush=True)
sys.stdin.read()
"""


# A Ctrl+C (or SIGTERM) that arrives while Qt runs one of the app's Python callbacks, as
# the window opens: here, at its frame's first paint.
_SIGNAL_AT_FIRST_PAINT = """
import os, sys
from PySide6.QtCore import QEvent
from krea_desktop.ui import app
watch = app._PaintWatcher.eventFilter
sent = []
def event_filter(self, obj, event):
    if not sent and event.type() == QEvent.Type.Paint:
        sent.append(1)
        os.kill(os.getpid(), int(sys.argv[1]))
    return watch(self, obj, event)
app._PaintWatcher.eventFilter = event_filter
from krea_desktop.cli import main
sys.exit(main([]))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_while_the_window_opens_ends_the_start(tmp_path: Path, number: int) -> None:
    """Python's own Ctrl+C handler raised KeyboardInterrupt inside the Qt callback that ran
    at that moment, where the bindings print it and carry on: the window opened anyway and
    stayed until a second Ctrl+C (SIGTERM ended the process on the spot, its state lost)."""
    data = tmp_path / "library"
    proc = subprocess.run(
        [sys.executable, "-c", _SIGNAL_AT_FIRST_PAINT, str(int(number))],
        env=child_env(data),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 128 + number, proc.stderr
    assert "KeyboardInterrupt" not in proc.stderr and "Traceback" not in proc.stderr


@unix_only
def test_a_claim_lock_that_cannot_be_made_at_all_holds_no_start_back(
    tmp_path: Path, qapp: QApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder where the lock file goes (or a full, read-only runtime folder): nobody holds
    the lock, so the start goes on, as it did before starts that find it held were refused."""
    monkeypatch.setattr(single_instance, "CLAIM_LOCK_TIMEOUT_MS", 60_000)
    library = tmp_path / "library"
    Path(single_instance._lock_path(server_name(library))).mkdir(parents=True)
    started = time.monotonic()
    claim = single_instance.claim(library, [])
    assert claim.problem == "" and claim.server is not None and claim.server.isListening()
    assert time.monotonic() - started < 30  # not the minute a held lock is waited for
    claim.server.close()


@unix_only
def test_a_damaged_claim_lock_that_names_no_one_is_taken(tmp_path: Path, qapp: QApplication) -> None:
    """Qt keeps a lock file that names no process (cut short by a full disk) as held for
    good: every later start would be told another one did not answer."""
    library = tmp_path / "library"
    lock_path = Path(single_instance._lock_path(server_name(library)))
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock_path.write_text("")
    a_minute_ago = time.time() - 60
    os.utime(lock_path, (a_minute_ago, a_minute_ago))
    claim = single_instance.claim(library, [])
    assert claim.problem == "" and claim.server is not None and claim.server.isListening()
    claim.server.close()


_SIGNAL_WHILE_THE_LIBRARY_OPENS = """
import os, sys
from krea_desktop.ui import app
open_library = app.open_library
def signalled(window):
    os.kill(os.getpid(), int(sys.argv[1]))
    return open_library(window)
app.open_library = signalled
from krea_desktop.cli import main
sys.exit(main([]))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_while_a_library_that_cannot_be_opened_opens_ends_the_start(tmp_path: Path) -> None:
    import sqlite3

    data = tmp_path / "library"
    data.mkdir()
    with sqlite3.connect(data / "library.sqlite") as db:
        db.execute("PRAGMA user_version = 999")  # made by a later version: it cannot be opened
    proc = subprocess.run(
        [sys.executable, "-c", _SIGNAL_WHILE_THE_LIBRARY_OPENS, str(int(signal.SIGINT))],
        env=child_env(data),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 130, proc.stderr


def test_the_note_of_who_holds_the_claim_lock_goes_with_the_lock(tmp_path: Path, qapp: QApplication) -> None:
    """Every library's note stayed in the runtime folder for good, one more file each."""
    library = tmp_path / "library"
    who = Path(single_instance._lock_path(server_name(library)) + ".who")
    claim = single_instance.claim(library, [], listen_later=True)
    assert who.read_text().split("\n")[0] == str(os.getpid())  # held: the note says by whom
    claim.listen()
    assert not who.exists()
    assert claim.server is not None
    claim.server.close()
    again = single_instance.claim(library, [])
    assert not who.exists() and again.server is not None
    again.server.close()

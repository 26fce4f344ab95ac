"""A window that has the library open but does not answer (hung, or stopped): a later start
tells which process it is, says so on the screen as well as on the terminal, and may end
it and open the library itself.

The frozen window is a child process that listens, then is stopped with SIGSTOP: it keeps
its socket (connections are accepted by the system) but never answers, and SIGTERM waits
for it as long as it is stopped, as for a hung window that never runs Python's handler."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtNetwork import QLocalServer
from PySide6.QtWidgets import QApplication, QMessageBox

from krea_desktop import APP_NAME
from krea_desktop.fsutil import process_identity
from krea_desktop.ui import app as app_module
from krea_desktop.ui import single_instance
from krea_desktop.ui.single_instance import Claim, claim, end_unresponsive, note_path, server_name
from tests.ui.test_single_instance import _TAKE_AND_WAIT, child_env

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
has_identity = pytest.mark.skipif(process_identity(os.getpid()) is None, reason="no process identity (no /proc)")

QUICK_MS = 300  # how long a start waits for an answer here (5 s in the app)

_LISTEN = """
import sys
from pathlib import Path
from PySide6.QtCore import QCoreApplication, QTimer
from krea_desktop.ui import single_instance as si
app = QCoreApplication(sys.argv)
claim = si.claim(Path(sys.argv[1]), [])
print("listening" if claim.server is not None and claim.server.isListening() else "not listening", flush=True)
QTimer.singleShot(60000, app.quit)
app.exec()
"""


@pytest.fixture
def frozen(tmp_path: Path, qapp: QApplication) -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    """Starts a process on ``tmp_path / "library"`` (the window listening, by default) and
    stops it once it is there; ends what it started."""
    library = tmp_path / "library"
    started: list[subprocess.Popen[str]] = []

    def start(script: str = _LISTEN) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-c", script, str(library)],
            env=child_env(library),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(child)
        assert child.stdout is not None
        assert child.stdout.readline().strip() in ("listening", "held")
        child.send_signal(signal.SIGSTOP)
        return child

    yield start
    for child in started:
        if child.poll() is None:
            child.send_signal(signal.SIGCONT)
            child.kill()
        child.wait(timeout=30)
    QLocalServer.removeServer(server_name(library))
    Path(note_path(server_name(library))).unlink(missing_ok=True)  # a killed window's


def collected(child: subprocess.Popen[str]) -> None:
    """Linux tells an ended child its parent has not collected yet (a zombie) from a running
    one; elsewhere it is collected as it ends, as a window's launcher does."""
    if not sys.platform.startswith("linux"):
        threading.Thread(target=child.wait, daemon=True).start()


# --- which process does not answer ------------------------------------------------------------


def test_the_listening_window_notes_which_process_it_is_until_it_closes(tmp_path: Path, qapp: QApplication) -> None:
    library = tmp_path / "library"
    note = Path(note_path(server_name(library)))
    first = claim(library, [], listen_later=True)
    assert not note.exists()  # not listening yet
    server = first.listen()
    assert server is not None and server.isListening()
    assert note.read_text().split("\n")[:2] == [str(os.getpid()), process_identity(os.getpid()) or ""]
    assert note.parent == Path(server_name(library)).parent  # beside the socket
    server.close()
    assert not note.exists()


def test_a_window_that_does_not_answer_is_named_by_its_process(
    tmp_path: Path, frozen: Callable[..., subprocess.Popen[str]]
) -> None:
    library = tmp_path / "library"
    child = frozen()
    started = time.monotonic()
    outcome = claim(library, [Path("/pictures/a.png")], timeout_ms=QUICK_MS)
    assert time.monotonic() - started < 3
    assert outcome.server is None and not outcome.handed_off
    assert outcome.unresponsive_pid == child.pid
    assert outcome.problem == (
        f"Another Krea Desktop is using the library in {library} but did not answer; "
        f"wait for it, or end it (process {child.pid}) if it stays frozen, then start again."
    )


def test_a_start_still_opening_the_library_is_named_but_not_offered_for_ending(
    tmp_path: Path, frozen: Callable[..., subprocess.Popen[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # It took the claim and has not listened yet: it may be opening a large library, or
    # repairing one, and be well; it is said to be opening, and not offered for ending.
    child = frozen(_TAKE_AND_WAIT)
    monkeypatch.setattr(single_instance, "CLAIM_LOCK_TIMEOUT_MS", 100)
    outcome = claim(tmp_path / "library", [], timeout_ms=QUICK_MS)
    assert outcome.server is None and outcome.unresponsive_pid is None
    assert outcome.problem == (
        f"Another Krea Desktop (process {child.pid}) has been opening the library in {tmp_path / 'library'} "
        "for more than 0 seconds; wait for it, then start again."
    )


@has_identity
@pytest.mark.parametrize("left_by", ["a process that has ended", "a process whose id another has now"])
def test_a_note_left_by_a_process_no_longer_there_names_no_one(
    tmp_path: Path, frozen: Callable[..., subprocess.Popen[str]], left_by: str
) -> None:
    library = tmp_path / "library"
    child = frozen()
    note = Path(note_path(server_name(library)))
    if left_by == "a process that has ended":
        ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        note.write_text(f"{int(ended.stdout)}\nboot:1\n")
    else:
        note.write_text(f"{child.pid}\nboot:1\n")  # started at another moment: not the one that listens
    outcome = claim(library, [], timeout_ms=QUICK_MS)
    assert outcome.problem and outcome.unresponsive_pid is None
    assert "(process " not in outcome.problem


def test_this_process_is_never_the_one_named(tmp_path: Path, qapp: QApplication) -> None:
    library = tmp_path / "library"
    first = claim(library, [])
    assert first.server is not None
    # This process cannot answer itself while it waits: it does not answer, but is not ended.
    second = claim(library, [], timeout_ms=QUICK_MS)
    assert second.problem and second.unresponsive_pid is None
    assert not end_unresponsive(os.getpid(), process_identity(os.getpid()) or "")
    first.server.close()


# --- ending it -----------------------------------------------------------------------------------


def test_a_frozen_window_is_ended_and_the_next_start_takes_its_place(
    tmp_path: Path, frozen: Callable[..., subprocess.Popen[str]]
) -> None:
    library = tmp_path / "library"
    child = frozen()
    outcome = claim(library, [], timeout_ms=QUICK_MS)
    assert outcome.unresponsive_pid == child.pid
    collected(child)
    started = time.monotonic()
    assert end_unresponsive(child.pid, outcome.unresponsive_identity, wait_s=0.3)
    assert time.monotonic() - started < 3
    # Stopped, it never took the SIGTERM: SIGKILL ended it.
    assert child.wait(timeout=5) == -signal.SIGKILL
    assert os.path.exists(server_name(library))  # its socket is left behind
    again = claim(library, [], timeout_ms=QUICK_MS)
    assert not again.problem and again.server is not None and again.server.isListening()
    assert Path(note_path(server_name(library))).read_text().split("\n")[0] == str(os.getpid())
    again.server.close()


_LEADER_GONE_FIRST = """
import ctypes, socket, sys, threading, time
listener = socket.socket(socket.AF_UNIX)
listener.bind(sys.argv[1])
listener.listen()
threading.Thread(target=time.sleep, args=(60,)).start()
print("listening", flush=True)
ctypes.CDLL(None).pthread_exit(None)  # the main thread ends; the other, and the socket, stay
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="threads told by /proc")
@has_identity
def test_a_process_is_not_ended_while_a_thread_of_it_still_holds_its_socket(tmp_path: Path) -> None:
    # A window being killed shows its main thread as a zombie while its other threads end,
    # and they hold its listening socket until the last has: the next claim, made at that
    # moment, found the socket still answering and named the window again.
    path = str(tmp_path / "s")
    child = subprocess.Popen([sys.executable, "-c", _LEADER_GONE_FIRST, path], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "listening"
        identity = process_identity(child.pid) or ""
        deadline = time.monotonic() + 5
        while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not single_instance._ended(child.pid, identity)  # a zombie, but its thread holds the socket
        child.kill()
        assert child.wait(timeout=5) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


@has_identity
def test_a_process_that_is_not_the_noted_one_is_never_signalled(qapp: QApplication) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        # Its id, noted by a window that started at another moment: that window has ended.
        assert end_unresponsive(other.pid, "boot:1", wait_s=0.1)
        time.sleep(0.2)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


# --- what the user sees ------------------------------------------------------------------------


def answer_boxes(choices: list[str], before_click: Callable[[], None] = lambda: None) -> list[dict[str, object]]:
    """Click ``choices`` in the message boxes as they come, one each (``before_click`` run
    first, the box still up); what each box showed."""
    seen: list[dict[str, object]] = []
    left = list(choices)

    def look() -> None:
        boxes = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
        if boxes:
            box = boxes[0]
            buttons = {b.text().replace("&", ""): b for b in box.buttons()}
            seen.append(
                {
                    "text": box.text(),
                    "title": box.windowTitle(),
                    "icon": box.icon(),
                    "buttons": sorted(buttons),
                    "default": box.defaultButton().text().replace("&", "") if box.defaultButton() else None,
                    "escape": box.escapeButton().text().replace("&", "") if box.escapeButton() else None,
                }
            )
            before_click()
            buttons[left.pop(0)].click()
        if left:
            QTimer.singleShot(20, look)

    QTimer.singleShot(0, look)
    return seen


@pytest.fixture
def start_app(
    tmp_path: Path, qapp: QApplication, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Callable[[], int], list[bool]]]:
    """Runs the start (``_run_app``) on ``tmp_path / "library"`` as on a screen, with short
    waits; the window itself is not opened: whether it would listen for later starts is
    kept instead, one entry per window."""
    monkeypatch.setenv("KREA_DESKTOP_DATA_DIR", str(tmp_path / "library"))
    monkeypatch.setenv("RESOURCE_NAME", "krea-desktop-test")
    monkeypatch.setenv("QT_API", "pyside6")
    monkeypatch.setattr(
        app_module, "answer_problem", functools.partial(app_module.answer_problem, on_screen=True, wait_s=0.3)
    )
    monkeypatch.setattr(single_instance, "claim", functools.partial(claim, timeout_ms=QUICK_MS))
    monkeypatch.setattr(single_instance, "RECHECK_MS", QUICK_MS)
    windows: list[bool] = []

    def run_window(_app: QApplication, *, smoke_test: bool, open_paths: object, claim: Claim | None) -> int:
        assert claim is not None and not claim.problem
        server = claim.listen()
        windows.append(server is not None and server.isListening())
        return 0

    monkeypatch.setattr(app_module, "_run_window", run_window)
    names = (qapp.applicationName(), qapp.organizationName(), qapp.applicationDisplayName(), qapp.desktopFileName())
    yield (lambda: app_module._run_app(smoke_test=False, open_paths=[])), windows
    qapp.setApplicationName(names[0])
    qapp.setOrganizationName(names[1])
    qapp.setApplicationDisplayName(names[2])
    qapp.setDesktopFileName(names[3])


def test_cancel_leaves_the_frozen_window_alone_and_the_start_ends(
    tmp_path: Path,
    frozen: Callable[..., subprocess.Popen[str]],
    start_app: tuple[Callable[[], int], list[bool]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    library = tmp_path / "library"
    child = frozen()
    run, windows = start_app
    seen = answer_boxes(["Cancel"])
    assert run() == 1
    assert seen == [
        {
            "text": (
                f"Another Krea Desktop (process {child.pid}) has the library in {library} open but has not answered "
                "for 5 seconds; ending it keeps every image and job already saved."
            ),
            "title": APP_NAME,
            "icon": QMessageBox.Icon.Warning,
            "buttons": ["Cancel", "End It and Open"],
            "default": "Cancel",
            "escape": "Cancel",
        }
    ]
    assert windows == []
    time.sleep(0.2)
    assert child.poll() is None  # not ended
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and said[0].startswith("krea-desktop: Another Krea Desktop is using the library")


def test_end_it_and_open_ends_the_frozen_window_and_the_start_opens_the_library(
    tmp_path: Path,
    frozen: Callable[..., subprocess.Popen[str]],
    start_app: tuple[Callable[[], int], list[bool]],
) -> None:
    library = tmp_path / "library"
    child = frozen()
    collected(child)
    run, windows = start_app
    seen = answer_boxes(["End It and Open"])
    assert run() == 0
    assert len(seen) == 1
    assert child.wait(timeout=5) == -signal.SIGKILL
    assert windows == [True]  # the window opened, in the frozen one's place
    assert not Path(note_path(server_name(library))).exists()  # and closed
    assert not single_instance.is_listening(server_name(library))


def test_a_window_that_answers_again_while_the_box_is_up_is_not_ended(
    frozen: Callable[..., subprocess.Popen[str]], start_app: tuple[Callable[[], int], list[bool]]
) -> None:
    # The box may stay up for minutes: the window is asked once more before it is ended,
    # and one that answers now takes the start's request, as any running window does.
    child = frozen()
    run, windows = start_app

    def recovers() -> None:
        child.send_signal(signal.SIGCONT)
        time.sleep(0.2)

    seen = answer_boxes(["End It and Open"], before_click=recovers)
    assert run() == 0  # handed to it
    assert len(seen) == 1 and windows == []
    time.sleep(0.2)
    assert child.poll() is None  # not ended


def test_a_window_that_cannot_be_ended_is_said_and_the_start_ends(
    frozen: Callable[..., subprocess.Popen[str]],
    start_app: tuple[Callable[[], int], list[bool]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    child = frozen()

    kill = os.kill

    def refused(pid: int, number: int) -> None:
        if number == 0:  # asked whether it runs: it does
            return kill(pid, number)
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "kill", refused)  # another user's
    run, windows = start_app
    seen = answer_boxes(["End It and Open", "OK"])
    assert run() == 1
    monkeypatch.undo()
    failed = (
        f"The other Krea Desktop (process {child.pid}) could not be ended, so the library stays with it; "
        "end it with the system's task manager, then start again."
    )
    assert [box["text"] for box in seen][1:] == [failed] and seen[1]["buttons"] == ["OK"]
    assert windows == [] and child.poll() is None
    assert capsys.readouterr().err.strip().splitlines()[1:] == [f"krea-desktop: {failed}"]


def test_without_its_process_the_box_says_the_sentence_with_ok(
    tmp_path: Path, qapp: QApplication, capsys: pytest.CaptureFixture[str]
) -> None:
    problem = single_instance._busy(tmp_path / "library")
    seen = answer_boxes(["OK"])
    answer = app_module.answer_problem(Claim(problem=problem), tmp_path / "library", lambda *_: Claim(), on_screen=True)
    assert answer is None
    assert [(box["text"], box["buttons"], box["title"]) for box in seen] == [(problem, ["OK"], APP_NAME)]
    assert "close it" not in problem and "wait for it, or end it if it stays frozen" in problem
    assert capsys.readouterr().err == f"krea-desktop: {problem}\n"


def test_without_a_screen_the_sentence_goes_to_the_terminal_only(
    tmp_path: Path, qapp: QApplication, capsys: pytest.CaptureFixture[str]
) -> None:
    problem = single_instance._busy(tmp_path / "library", 4321)
    unresponsive = Claim(problem=problem, unresponsive_pid=4321)
    assert QApplication.platformName() == "offscreen"
    assert app_module.answer_problem(unresponsive, tmp_path / "library", lambda *_: Claim()) is None  # no box waits
    assert capsys.readouterr().err == f"krea-desktop: {problem}\n"

"""The window on a library in trouble: hostile files, a damaged or newer index, a folder
that is a file, a failing disk, a held write lock, a FIFO, and paid work left by a
window that was killed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from krea_desktop.library import metadata
from krea_desktop.library.store import Library, LibraryError
from krea_desktop.ui.app import create_main_window
from krea_desktop.ui.window.main_window import MainWindow
from krea_desktop.ui.window.opening import OpeningPlaceholder
from tests.helpers.images import image_bytes
from tests.helpers.sim import simulator_process
from tests.reliability.test_library_faults import write_lock_held

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("crash_child.py")
KEY = "sk-window-library"


@pytest.fixture
def window_env(data_dir: Path, memory_keyring: object, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("RUNWARE_API_KEY", raising=False)
    return data_dir


@pytest.fixture
def make_window(qtbot: QtBot, window_env: Path) -> Iterator[Any]:
    windows: list[MainWindow] = []

    def make() -> MainWindow:
        w = create_main_window(demo_latency=0.05)
        qtbot.addWidget(w)
        windows.append(w)
        w.show()
        return w

    yield make
    for w in windows:
        w.close()


def hostile_png(folder: Path, name: str, record: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data = metadata._embed_png(image_bytes(), json.dumps(record, ensure_ascii=True), "x\nSteps: 1")
    (folder / name).write_bytes(data)


def test_the_window_opens_whatever_the_files_hold(qtbot: QtBot, window_env: Path, make_window: Any) -> None:
    hostile_png(
        window_env / "images",
        "11111111-1111-4111-8111-111111111111.png",
        {"prompt": "lone \ud800 surrogate", "created_at": "0001-01-01T00:00:00+05:00"},
    )
    hostile_png(
        window_env / "images",
        "22222222-2222-4222-8222-222222222222.png",
        {"prompt": {"nested": True}, "seed": "not a number", "references": "x"},
    )
    w = make_window()
    qtbot.waitUntil(lambda: w.model.rowCount() == 2)  # found by the folder check, on a worker
    assert sorted(e.prompt for e in w.library.entries()) == ["", "lone \ufffd surrogate"]


def test_a_damaged_index_is_rebuilt_beside_the_gui_thread_and_said_in_the_window(
    qtbot: QtBot, window_env: Path, make_window: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rebuilding reads and decodes every file: at 100,000 images many minutes, which the
    window spent frozen, opening its library on the GUI thread."""
    hostile_png(window_env / "images", "33333333-3333-4333-8333-333333333333.png", {"prompt": "kept"})
    (window_env / "library.sqlite").write_bytes(b"this is not a database" * 50)
    checked_on: list[bool] = []
    reconcile = Library.reconcile

    def watched(lib: Library) -> Any:
        checked_on.append(threading.current_thread() is threading.main_thread())
        return reconcile(lib)

    monkeypatch.setattr(Library, "reconcile", watched)
    w = make_window()
    text = w.message_banner.label.text()
    assert "kept aside as library.sqlite.damaged-" in text and "is being rebuilt from the images folder" in text
    qtbot.waitUntil(lambda: w.model.rowCount() == 1)
    assert [e.prompt for e in w.library.entries()] == ["kept"]
    assert checked_on and not any(checked_on)  # never on the GUI thread
    assert w.message_banner.label.text() == "The gallery was rebuilt from the images folder: 1 image."
    assert not w.library.needs_rebuild
    w.message_banner.dismiss()  # gone: the notice that it was being rebuilt does not come back
    assert not w.message_banner.isVisible()


def test_an_images_folder_that_cannot_be_read_is_said_in_place_of_the_rebuild(
    qtbot: QtBot, window_env: Path, make_window: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder another user's (0700): the index rebuilt from it was left empty under
    "is being rebuilt" for good, the reason only in the log. Now the window says it, in
    the place of that notice, and a refresh once it can be read brings the images."""
    hostile_png(window_env / "images", "33333333-3333-4333-8333-333333333333.png", {"prompt": "kept"})
    (window_env / "library.sqlite").write_bytes(b"this is not a database" * 50)
    images = window_env / "images"
    real_scandir = os.scandir
    denied = [True]

    def scandir(path: Any = ".") -> Any:
        if denied[0] and Path(path) == images:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr("krea_desktop.library.store.os.scandir", scandir)
    w = make_window()
    assert "is being rebuilt from the images folder" in w.message_banner.label.text()
    said = (
        f"The images folder {images} cannot be read (Permission denied), so the gallery may not show every "
        "image in it; check its permissions, then refresh the gallery."
    )
    qtbot.waitUntil(lambda: w.message_banner.label.text() == said)
    assert w.model.rowCount() == 0
    w.message_banner.dismiss()  # the notice that it was being rebuilt does not come back
    assert not w.message_banner.isVisible()
    denied[0] = False
    w.gallery_actions.refresh_action.trigger()  # F5
    qtbot.waitUntil(lambda: w.model.rowCount() == 1)


def run_window(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "krea_desktop"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def clean_env(data: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("RUNWARE_", "KREA_DESKTOP_"))}
    e.update(
        KREA_DESKTOP_DATA_DIR=str(data),
        QT_QPA_PLATFORM="offscreen",
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    return e


@pytest.mark.parametrize("trouble", ["newer", "file"])
def test_a_library_that_cannot_be_opened_is_one_sentence_in_the_window(tmp_path: Path, trouble: str) -> None:
    data = tmp_path / "data"
    if trouble == "newer":
        Library(data).close()
        conn = sqlite3.connect(data / "library.sqlite")
        conn.execute("PRAGMA user_version = 5")
        conn.commit()
        conn.close()
        before = (data / "library.sqlite").read_bytes()
    else:
        data.write_text("a file where the data folder should be")
    proc = run_window(clean_env(data))
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        # The window stays open, saying why, until it is closed: it is still running.
        time.sleep(0.5)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, rest = proc.communicate(timeout=20)
    assert line.startswith("krea-desktop: ") and "Traceback" not in line + rest, line + rest
    if trouble == "newer":
        assert "newer version of Krea Desktop" in line
        assert (data / "library.sqlite").read_bytes() == before
    else:
        assert str(data) in line and "is a file" in line


def test_the_frame_shows_the_problem(qtbot: QtBot, window_env: Path) -> None:
    from krea_desktop.ui.app import build_main_window, open_main_window

    Library(window_env).close()
    conn = sqlite3.connect(window_env / "library.sqlite")
    conn.execute("PRAGMA user_version = 5")
    conn.commit()
    conn.close()
    w = open_main_window()
    qtbot.addWidget(w)
    with pytest.raises(LibraryError) as err:
        build_main_window(w)
    w.show_problem(str(err.value))
    placeholder = w.centralWidget()
    assert isinstance(placeholder, OpeningPlaceholder) and "newer version" in (placeholder.problem or "")


def test_saves_that_fail_midway_lose_nothing(
    qtbot: QtBot, window_env: Path, make_window: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real = Library.save

    def flaky(lib: Library, image: Any, created_at: Any = None) -> Any:
        calls["n"] += 1
        if calls["n"] in (2, 3):
            raise OSError(28, "No space left on device")
        return real(lib, image, created_at)

    monkeypatch.setattr(Library, "save", flaky)
    w = make_window()
    banners: list[str] = []
    w.client_thread.saveProblem.connect(lambda text: text and banners.append(text))
    w.prompt_panel.setPrompt("four paper boats")
    w.prompt_panel.countSpin.setValue(4)
    w.prompt_panel.deliveryCombo.setCurrentIndex(w.prompt_panel.deliveryCombo.findData("async"))
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
        w.generate()
    qtbot.waitUntil(lambda: w.model.rowCount() == 4)
    assert w.library.count() == 4
    assert any("kept in memory because the disk holding" in b for b in banners)
    (job,) = w.jobs.jobs()
    assert job.received == 4 and job.state == "finished"


def window_with_a_library_lock_waited(window_env: Path, make_window: Any, seconds: float) -> Any:
    """A window on a library of one image whose writes wait ``seconds`` for a lock."""
    with Library(window_env) as lib:
        from tests.reliability.test_library_faults import image

        lib.save(image(1))
    w = make_window()
    w.library.busy_timeout = seconds  # the default is 5 s
    for conn in list(w.library._connections.values()):
        conn.execute(f"PRAGMA busy_timeout = {int(w.library.busy_timeout * 1000)}")
    return w


def test_a_held_write_lock_never_freezes_the_window(qtbot: QtBot, window_env: Path, make_window: Any) -> None:
    # The write waits for the lock off the GUI thread: once the lock is let go, it is made.
    # Had the GUI thread waited, it would have held the window for the whole minute, and
    # the lock, held on this same thread, would never have been let go in time.
    w = window_with_a_library_lock_waited(window_env, make_window, 60)
    with write_lock_held(window_env):
        w.gallery.setCurrentIndex(w.model.index(0))
        w.gallery_actions.favourite_action.trigger()
    qtbot.waitUntil(lambda: w.library.entries()[0].favourite, timeout=30000)
    assert "The library is busy" not in w.message_banner.label.text()


def test_a_write_lock_held_too_long_is_said_and_nothing_is_half_done(
    qtbot: QtBot, window_env: Path, make_window: Any
) -> None:
    w = window_with_a_library_lock_waited(window_env, make_window, 0.5)
    with write_lock_held(window_env):
        w.gallery.setCurrentIndex(w.model.index(0))
        w.gallery_actions.favourite_action.trigger()
        qtbot.waitUntil(lambda: "The library is busy" in w.message_banner.label.text(), timeout=10000)
    assert not w.library.entries()[0].favourite  # refused whole, nothing half-done


def test_a_fifo_or_a_missing_file_opened_with_the_app_is_one_sentence(
    qtbot: QtBot, window_env: Path, make_window: Any, tmp_path: Path
) -> None:
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    w = make_window()
    w.open_images([fifo])
    qtbot.waitUntil(lambda: w.message_banner.label.text() == "“x.png” is not a file, so it was not opened.")
    w.open_images([tmp_path / "gone.png"])
    qtbot.waitUntil(lambda: w.message_banner.label.text() == "“gone.png” does not exist, so it was not opened.")
    metadata.read_record(fifo)  # reading its record directly does not wait either
    started = time.monotonic()
    w.close()  # the workers are free: closing does not wait on the FIFO
    assert time.monotonic() - started < 20  # a read of it waits for ever


def test_a_killed_window_s_batch_is_collected_by_the_next_window(
    qtbot: QtBot, window_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = tmp_path / "refs"
    refs.mkdir()
    env = clean_env(window_env)
    with simulator_process("--key", KEY, "--latency", "0.1", env=env) as url:
        env.update(RUNWARE_API_KEY=KEY, RUNWARE_API_URL=url)
        proc = subprocess.Popen(
            [sys.executable, str(CHILD), str(refs)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("ready")
        seen = [proc.stdout.readline() for _ in range(3)]
        assert all(s.startswith("saved ") for s in seen), seen
        proc.kill()
        proc.communicate(timeout=30)
        with Library(window_env) as lib:
            before = lib.count()
        assert 3 <= before < 20

        monkeypatch.setenv("RUNWARE_API_KEY", KEY)
        monkeypatch.setenv("RUNWARE_API_URL", url)
        w = create_main_window()
        qtbot.addWidget(w)
        try:
            qtbot.waitUntil(lambda: w.library.count() == 20, timeout=60000)
            qtbot.waitUntil(lambda: any(j.state == "finished" for j in w.jobs.jobs()), timeout=10000)
            (job,) = w.jobs.jobs()
            assert job.received == 20 - before and job.request.number_results == 20
            # "17 of 17", not "17 of 20": the images the killed window saved are not said missing.
            assert job.expected == 20 - before
            assert w.job_list.rows[job.job_id].progress.maximum() == 20 - before
            assert w.model.rowCount() == 20
            uuids = [e.image_uuid for e in w.library.entries()]
            assert len(set(uuids)) == 20
        finally:
            w.close()
    assert not list((window_env / "pending").glob("*.json"))


def test_a_killed_demo_batch_an_earlier_version_noted_is_forgotten_without_a_word(
    qtbot: QtBot, make_window: Any, window_env: Path
) -> None:
    # In demo mode the simulator lives in the app: a batch the killed app sent is gone
    # with it. Such a batch is no longer noted (tests/ui/test_new_images.py); one an
    # earlier version noted has nothing to collect, and goes at the next start with no job
    # and no sentence ("The service no longer has this job…" was said of it).
    from krea_desktop.api.record import GenerationRecord
    from krea_desktop.api.request import GenerationRequest
    from krea_desktop.backend import DEMO_SERVICE
    from krea_desktop.library.pending import PendingTasks

    request = GenerationRequest("harbour at night, fog", number_results=4, delivery_method="async")
    record = GenerationRecord(prompt="harbour at night, fog")
    task = PendingTasks(window_env).submitted(request, [], record, DEMO_SERVICE)
    assert task is not None
    dead = int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout
    )
    task.path.rename(task.path.with_name(f"{dead}-{request.task_uuid}.json"))
    w = make_window()
    qtbot.waitUntil(lambda: w.built and not list((window_env / "pending").glob("*.json")), timeout=30000)
    qtbot.wait(200)
    assert w.jobs.jobs() == [] and w.library.count() == 0


def noted_received(pending: Path) -> bool:
    """Whether a task's record in ``pending`` notes an image received (each is written whole)."""
    return any(json.loads(p.read_text()).get("received") for p in pending.glob("*.json"))


def test_a_batch_sent_to_runware_waits_through_a_start_in_demo_mode_and_comes_with_the_key(
    qtbot: QtBot, window_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command line is killed in the middle of a paid batch; the next start has no key
    # (demo mode). The batch is not asked of the simulator, which never had it, nor
    # forgotten: it waits, and comes once the key is given.
    env = clean_env(window_env)
    with simulator_process("--key", KEY, "--latency", "0.1", env=env) as url:
        command = [sys.executable, "-m", "krea_desktop", "generate", "paid lanterns", "--count", "8"]
        proc = subprocess.Popen(
            [*command, "--delivery", "async"],
            env={**env, "RUNWARE_API_KEY": KEY, "RUNWARE_API_URL": url},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        try:
            assert proc.stdout.readline()  # one image saved (its line printed, then noted), then killed
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not noted_received(window_env / "pending"):
                time.sleep(0.01)
        finally:
            proc.kill()
            proc.wait()
        (kept,) = list((window_env / "pending").glob("*.json"))
        monkeypatch.setenv("RUNWARE_API_URL", url)
        w = create_main_window(demo_latency=0.05)
        qtbot.addWidget(w)
        try:
            assert w.demo
            w.show()
            qtbot.waitUntil(lambda: w.client_thread.isRunning())
            # The claim runs on the thread's one worker: whatever is queued after it comes after.
            w.client_thread.run_coroutine(lambda _client: asyncio.to_thread(lambda: None)).result(timeout=10)
            qtbot.wait(200)
            assert w.jobs.jobs() == [] and kept.exists()  # left alone, not failed
            monkeypatch.setenv("RUNWARE_API_KEY", KEY)
            w._credentials_changed()  # as the Settings dialog does once a key is saved
            qtbot.waitUntil(lambda: [j.state for j in w.jobs.jobs()] == ["finished"], timeout=60000)
            assert not w.demo and w.library.count() == 8 and w.jobs.jobs()[0].received == 7
        finally:
            w.close()
    assert not list((window_env / "pending").glob("*.json"))


@contextmanager
def _an_async_batch(
    qtbot: QtBot,
    window_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    prompt: str,
    count: int,
    latency: str,
    delivery: str = "async",
) -> Iterator[MainWindow]:
    """A window sending ``count`` images of ``prompt`` (``delivery``, async by default) to a
    simulator of the service (``latency`` seconds an image), not the demo's: its tasks
    outlive the window."""
    with simulator_process("--key", KEY, "--latency", latency, env=clean_env(window_env)) as url:
        monkeypatch.setenv("RUNWARE_API_KEY", KEY)
        monkeypatch.setenv("RUNWARE_API_URL", url)
        w = create_main_window()
        qtbot.addWidget(w)
        w.prompt_panel.setPrompt(prompt)
        w.prompt_panel.countSpin.setValue(count)
        w.prompt_panel.deliveryCombo.setCurrentIndex(w.prompt_panel.deliveryCombo.findData(delivery))
        w.generate()
        yield w


def _collected_at_the_next_start(qtbot: QtBot, window_env: Path, count: int) -> None:
    """The one task's note kept, made to look as the next start sees it (left by a process
    that has ended), then that start: it collects the library's ``count`` images, and
    leaves nothing to collect."""
    (kept,) = list((window_env / "pending").glob("*.json"))
    dead = int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout
    )
    kept.rename(kept.with_name(f"{dead}-{kept.name.split('-', 1)[1]}"))
    again = create_main_window()
    qtbot.addWidget(again)
    try:
        qtbot.waitUntil(lambda: again.library.count() == count, timeout=60000)
        qtbot.waitUntil(lambda: [j.state for j in again.jobs.jobs()] == ["finished"], timeout=10000)
    finally:
        again.close()
    assert not list((window_env / "pending").glob("*.json"))


def test_quitting_keeps_an_unfinished_async_job_for_the_next_start(
    qtbot: QtBot, window_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _an_async_batch(qtbot, window_env, monkeypatch, "twelve kites", 12, "0.1") as w:
        qtbot.waitUntil(lambda: w.library.count() >= 2, timeout=30000)
        w.close()  # a clean quit in the middle of the batch
        _collected_at_the_next_start(qtbot, window_env, 12)


def test_cancelling_a_job_the_service_has_taken_keeps_its_images_for_the_next_start(
    qtbot: QtBot, window_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancel stopped following the task and dropped its note: the images the service went
    on making, and charged for, were never collected. The note is kept now, and said."""
    with _an_async_batch(qtbot, window_env, monkeypatch, "eight kites", 8, "0.3") as w:
        qtbot.waitUntil(lambda: w.library.count() >= 1, timeout=30000)
        with qtbot.waitSignal(w.client_thread.jobCancelled, timeout=10000) as ended:
            w.cancel_button.click()
        job_id, received = ended.args
        assert received < 8
        (job,) = [j for j in w.jobs.jobs() if j.job_id == job_id]
        assert job.state == "cancelled" and job.message.endswith(
            "; the images the service was already making are collected at the next start."
        )
        w.close()
        _collected_at_the_next_start(qtbot, window_env, 8)


def test_cancelling_a_sync_job_while_the_service_makes_it_keeps_it_for_the_next_start(
    qtbot: QtBot, window_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With sync delivery the service makes the images once the task has gone out, and the
    answer brings them all: a Cancel before it came dropped the task's note."""
    with _an_async_batch(qtbot, window_env, monkeypatch, "three kites", 3, "0.5", delivery="sync") as w:
        qtbot.waitUntil(lambda: any(j.status == "Generating…" for j in w.jobs.jobs()), timeout=30000)
        with qtbot.waitSignal(w.client_thread.jobCancelled, timeout=10000):
            w.cancel_button.click()
        (job,) = w.jobs.jobs()
        assert job.received == 0 and job.message.endswith("are collected at the next start.")
        w.close()
        _collected_at_the_next_start(qtbot, window_env, 3)


def test_a_shutdown_that_fails_still_ends_the_client_thread(
    qtbot: QtBot, window_env: Path, make_window: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # An image held in memory (the disk refused it) and, at close, a disk that refuses
    # the fallback folder too: the thread must still end. A QThread destroyed while it
    # runs aborts the process ("Destroyed while thread is still running"), losing what
    # the next start could otherwise collect.
    from krea_desktop.library.saving import SaveQueue

    real = Library.save

    def refused(lib: Library, image: Any, created_at: Any = None) -> Any:
        raise OSError(28, "No space left on device")

    # The service, not the demo's simulator: a task sent to it outlives the process.
    with simulator_process("--key", KEY, env=clean_env(window_env)) as url:
        monkeypatch.setenv("RUNWARE_API_KEY", KEY)
        monkeypatch.setenv("RUNWARE_API_URL", url)
        w = make_window()
        monkeypatch.setattr(Library, "save", refused)
        monkeypatch.setattr(SaveQueue, "spill", lambda self, folder=None: (_ for _ in ()).throw(OSError(28, "full")))
        w.prompt_panel.setPrompt("a paper boat")
        with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
            w.generate()
        assert w.client_thread._saver.held
        started = time.monotonic()
        with caplog.at_level("ERROR"):
            assert w.client_thread.stop(10_000)
        assert not w.client_thread.isRunning() and time.monotonic() - started < 5
        assert "could not finish cleanly" in caplog.text
    # The task's record stays, so the next start asks the service for its image again.
    assert list((window_env / "pending").glob("*.json"))
    monkeypatch.setattr(Library, "save", real)


def test_the_library_is_closed_only_once_its_readers_are_done(qtbot: QtBot, window_env: Path, make_window: Any) -> None:
    import threading

    from krea_desktop.ui.app import close_library
    from krea_desktop.ui.background import shared_pool

    w = make_window()
    w.close()
    gate = threading.Event()
    reads: list[int] = []

    def reader() -> None:  # a worker in the middle of reading the library (a page of rows, say)
        gate.wait(5)
        reads.append(w.library.count())

    shared_pool().start(reader)
    assert not w.wait_for_work(100)  # still reading
    threading.Timer(0.3, gate.set).start()
    close_library(w, 10_000)  # waits for the reader, then closes
    assert reads == [0]
    with pytest.raises(LibraryError):
        w.library.count()


def test_workers_that_outlast_the_wait_are_left_the_library_open(
    qtbot: QtBot, window_env: Path, make_window: Any
) -> None:
    import threading

    from krea_desktop.ui.app import close_library
    from krea_desktop.ui.background import shared_pool

    w = make_window()
    w.close()
    gate = threading.Event()
    reads: list[int] = []
    shared_pool().start(lambda: (gate.wait(10), reads.append(w.library.count())))
    close_library(w, 200)  # a long export, say: not cut off, and the library stays open for it
    gate.set()
    assert shared_pool().waitForDone(5000)
    assert reads == [0]
    w.library.close()


def test_a_client_thread_that_outlasts_the_wait_ends_the_process_without_closing_the_library(tmp_path: Path) -> None:
    script = """
import sys
import threading
from PySide6.QtWidgets import QApplication
from krea_desktop.ui import app as app_module
app = QApplication(sys.argv)
window = app_module.create_main_window(force_demo=True)
window.close()
closed = []
window.library.close = lambda: closed.append(True)
window.wait_for_work = lambda msecs: False  # still saving the last images...
window.client_thread.isRunning = lambda: True  # ...on a thread that has not ended
print("ending", flush=True)
app_module.close_library(window, 300)
print("not reached", closed, flush=True)
"""
    env = {**os.environ, "KREA_DESKTOP_DATA_DIR": str(tmp_path), "QT_QPA_PLATFORM": "offscreen"}
    env.pop("RUNWARE_API_KEY", None)
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    child = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout.split("\n")[0] == "ending" and "not reached" not in child.stdout
    assert "Destroyed while thread" not in child.stderr
    assert "client thread was still running" in (tmp_path / "logs" / "krea-desktop.log").read_text()


def test_an_unreadable_note_of_paid_work_is_said_in_the_window(
    qtbot: QtBot, make_window: Any, window_env: Path
) -> None:
    pending = window_env / "pending"
    pending.mkdir(parents=True, exist_ok=True)
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    noted = pending / f"{int(ended.stdout)}-0b5e8f5e-3c1a-4d5e-9a43-6c1f7e2d9a10.json"  # a process that ended
    noted.write_text('{"request": {"positivePrompt": "eight paid ki')  # cut in half
    w = make_window()
    w.show()
    qtbot.waitUntil(lambda: "could not be read, so the rest of its images" in w.message_banner.label.text())
    said = w.message_banner.label.text()
    assert said.startswith("An unfinished generation noted by an earlier run") and said.count(". ") == 0
    assert w.message_banner.isVisible()
    (aside,) = pending.glob("*.unreadable")
    assert str(aside) in said


def test_an_index_deleted_while_the_window_is_open_is_written_again_and_said(
    qtbot: QtBot, window_env: Path, make_window: Any
) -> None:
    hostile_png(window_env / "images", "44444444-4444-4444-8444-444444444444.png", {"prompt": "a kept lantern"})
    w = make_window()
    qtbot.waitUntil(lambda: w.model.rowCount() == 1)
    (entry,) = w.library.entries()
    w.library.set_favourite([entry.id], True)
    (window_env / "library.sqlite").unlink()  # a cleaning tool, say
    w.gallery_actions.refresh()  # the folder's check, on a worker, finds it gone
    said = (
        "The library index was deleted while Krea Desktop had it open, so it was written again with everything in it."
    )
    qtbot.waitUntil(lambda: w.message_banner.label.text() == said, timeout=10000)
    assert (window_env / "library.sqlite").exists()
    w.close()
    again = Library(window_env)
    try:
        assert again.notice is None and again.ids(favourites_only=True) == [entry.id]
    finally:
        again.close()

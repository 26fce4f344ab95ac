"""The library never locks the person out and loses nothing paid for: hostile files,
damaged or newer indexes, several processes, a full or read-only disk.

Where a real small or read-only file system is needed, a tmpfs is mounted (root can);
elsewhere the same failure is made with a simulated ENOSPC/EROFS.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from krea_desktop import logfile
from krea_desktop.api.record import GenerationRecord
from krea_desktop.api.results import GeneratedImage
from krea_desktop.library import metadata
from krea_desktop.library import store as store_module
from krea_desktop.library.saving import SaveQueue, check_writable
from krea_desktop.library.store import Library, LibraryEntry, LibraryError
from krea_desktop.library.trash import PendingTrash
from tests.helpers.sim import simulator_process


def run_cli(args: list[str | bytes], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "krea_desktop", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def one_sentence(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("krea-desktop: ")]
    assert lines, stderr
    assert "Traceback" not in stderr, stderr
    return lines[-1]


def png(size: tuple[int, int] = (32, 24), colour: tuple[int, int, int] = (90, 140, 60)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def image(n: int, prompt: str = "a quiet harbour") -> GeneratedImage:
    return GeneratedImage(
        task_uuid="6c1a2b3c-0000-4000-8000-000000000000",
        image_uuid=f"0000000{n}-aaaa-4bbb-8ccc-dddddddddddd",
        data=png(colour=(n * 20 % 256, 80, 120)),
        format="PNG",
        width=32,
        height=24,
        seed=n,
        record=GenerationRecord(prompt=f"{prompt} {n}", ratio="1:1"),
    )


def hostile_file(folder: Path, name: str, record: dict[str, Any]) -> Path:
    """A PNG whose embedded JSON record holds ``record`` as written, escapes included."""
    text = json.dumps(record, ensure_ascii=True)
    data = metadata._embed_png(png(), text, "hostile\nSteps: 1")
    path = folder / name
    path.write_bytes(data)
    return path


# -- 1. the files are the truth ---------------------------------------------------------------


def test_hostile_records_never_lock_the_library(tmp_path: Path, env: dict[str, str]) -> None:
    lib = Library(tmp_path / "data")
    hostile_file(
        lib.images_dir,
        "11111111-1111-4111-8111-111111111111.png",
        {"prompt": "bad \ud800 surrogate", "created_at": "0001-01-01T00:00:00+05:00", "seed": 2**70},
    )
    hostile_file(
        lib.images_dir,
        "22222222-2222-4222-8222-222222222222.png",
        {"prompt": ["not", "text"], "created_at": "9999-12-31T23:59:59-05:00", "width": "huge"},
    )
    report = lib.reconcile()
    assert len(report.indexed) == 2 and not report.skipped
    rows = lib.entries()
    assert sorted(e.prompt for e in rows) == ["", "bad \ufffd surrogate"]
    for entry in rows:
        entry.record.to_json()
        assert entry.created_at  # the file's time stands in for a date that cannot be used
        json.dumps(entry.record.to_json(), ensure_ascii=False).encode("utf-8")
    lib.close()
    # The command line still works on that library, and so does a second start-up check.
    result = run_cli(["generate", "a lighthouse", "--demo"], env)
    assert result.returncode == 0, result.stderr
    assert Library(tmp_path / "data").reconcile().skipped == []


def test_a_prompt_that_is_not_text_is_refused_before_anything_is_sent(tmp_path: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "krea_desktop", "generate", b"caf\xe9 au lait, gouache", "--demo"],
        env={**env, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2  # a value the model does not take: the command's use
    assert "not valid text" in one_sentence(result.stderr)
    assert not list((tmp_path / "data").rglob("*.png"))


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated", "no tables", "missing"])
def test_a_damaged_index_is_kept_aside_and_rebuilt_from_the_files(
    tmp_path: Path, env: dict[str, str], damage: str
) -> None:
    folder = tmp_path / "data"
    lib = Library(folder)
    for n in range(1, 4):
        lib.save(image(n))
    lib.set_favourite([1], True)
    lib.close()
    db = folder / "library.sqlite"
    if damage == "garbage":
        db.write_bytes(os.urandom(8192))
    elif damage == "empty":
        db.write_bytes(b"")
    elif damage == "truncated":
        db.write_bytes(db.read_bytes()[:100])
    elif damage == "missing":  # deleted, or the folder copied without it
        db.unlink()
    else:
        conn = sqlite3.connect(db)
        conn.execute("DROP TABLE images")
        conn.commit()
        conn.close()
    damaged = db.read_bytes() if db.exists() else b""
    result = run_cli(["generate", "one more", "--demo"], env)
    assert result.returncode == 0, result.stderr
    assert "rebuilt from the images folder" in result.stderr
    if damage in ("empty", "missing"):  # nothing in it to keep
        assert "kept aside" not in result.stderr and not list(folder.glob("library.sqlite.damaged-*"))
    else:
        assert "kept aside as library.sqlite.damaged-" in result.stderr
        (aside,) = folder.glob("library.sqlite.damaged-*[0-9]")
        assert aside.read_bytes() == damaged  # byte for byte
    with Library(folder) as again:
        assert again.notice is None
        assert sorted(e.prompt for e in again.entries()) == [
            "a quiet harbour 1",
            "a quiet harbour 2",
            "a quiet harbour 3",
            "one more",
        ]


@pytest.mark.parametrize("rebuild", [True, False])
def test_a_library_whose_index_is_gone_is_made_again_from_its_images(tmp_path: Path, rebuild: bool) -> None:
    # The files are the truth, the index disposable: one deleted (or a folder copied
    # without it) is not an empty library, whoever opens it.
    folder = tmp_path / "data"
    with Library(folder) as lib:
        for n in range(1, 4):
            lib.save(image(n))
    for name in ("library.sqlite", "library.sqlite-wal", "library.sqlite-shm"):
        (folder / name).unlink(missing_ok=True)
    with Library(folder, rebuild=rebuild) as lib:
        if rebuild:
            assert lib.count() == 3 and not lib.needs_rebuild
            assert lib.notice == "The library index was missing, so it was rebuilt from the images folder."
        else:  # a window: the check of the folder runs on a worker, and says so
            assert lib.needs_rebuild
            assert lib.notice == "The library index was missing, so it is being rebuilt from the images folder."
            lib.reconcile()
            assert lib.count() == 3
    with Library(tmp_path / "new") as fresh:  # a new library has no index and nothing to say
        assert fresh.notice is None and fresh.count() == 0


def test_libraries_opened_for_the_first_time_by_several_processes_at_once_lose_nothing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """An index file is empty for a moment after it is made and before its first write: a
    process opening it then must not take it for an empty index to set aside."""
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "library.sqlite").write_bytes(b"")  # as another process has just made it
    with Library(folder) as first:
        assert first.notice is None
        assert not list(folder.glob("library.sqlite.damaged-*"))
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "krea_desktop", "generate", f"fox {i}", "--demo"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(4)
        ]
        results = [(p.wait(120), p.stderr.read() if p.stderr else "") for p in procs]
    assert all(code == 0 for code, _err in results), results
    assert not any("kept aside" in err or "rebuilt" in err for _code, err in results)
    assert not list(folder.glob("library.sqlite.damaged-*"))
    with Library(folder) as lib:
        assert sorted(e.prompt for e in lib.entries()) == [f"fox {i}" for i in range(4)]


_OPEN_AND_SAVE = """
import sys, time
from pathlib import Path
from krea_desktop.api.results import GeneratedImage
from krea_desktop.library.store import Library
from PIL import Image
import io
start = float(sys.argv[2])
while time.time() < start:
    pass
buf = io.BytesIO()
Image.new("RGB", (8, 8), (int(sys.argv[3]) * 20, 0, 0)).save(buf, "PNG")
with Library(Path(sys.argv[1])) as lib:
    lib.save(GeneratedImage("t-" + sys.argv[3], "00000000-0000-4000-8000-00000000000" + sys.argv[3],
                            buf.getvalue(), "PNG", 8, 8, 1))
    print(lib.notice or "", end="")
"""


def test_a_new_library_opened_by_eight_processes_at_the_same_moment_keeps_every_image(tmp_path: Path) -> None:
    """Each turns write-ahead logging on as it opens the new index, which takes the file for a
    moment: none fails for it, sets the index aside, or loses its image."""
    import time

    for trial in range(3):
        folder = tmp_path / f"data{trial}"
        folder.mkdir()
        start = time.time() + 1.0
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _OPEN_AND_SAVE, str(folder), str(start), str(i)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=Path(__file__).resolve().parents[2],
            )
            for i in range(8)
        ]
        said = [p.communicate(timeout=120)[0] for p in procs]
        assert all(p.returncode == 0 for p in procs) and not any(said), said
        assert not list(folder.glob("library.sqlite.damaged-*"))
        with Library(folder) as lib:
            assert lib.count() == 8


def test_an_index_damaged_in_the_middle_is_kept_aside_and_rebuilt_not_a_window_that_cannot_open(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "data"
    with Library(folder) as lib:
        for n in range(1, 4):
            lib.save(image(n))
    db = folder / "library.sqlite"
    conn = sqlite3.connect(db)
    with conn:  # a large index: rows that stand for images gone long ago
        conn.executemany(
            "INSERT INTO images (image_uuid, file_name, format, created_at, prompt, params) VALUES (?,?,?,?,?,?)",
            [(f"x{i:05d}", f"x{i:05d}.png", "PNG", "2020-01-01T00:00:00.000Z", f"prompt {i} " * 5, "{}")
             for i in range(3000)],
        )  # fmt: skip
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = db.stat().st_size
    with db.open("r+b") as f:  # a few bad sectors in the middle of the file
        f.seek(size // 2)
        f.write(b"\xa5" * 8192)
    with Library(folder) as lib:
        assert lib.notice is not None and "damaged" in lib.notice and "rebuilt" in lib.notice
        assert sorted(e.prompt for e in lib.entries()) == [f"a quiet harbour {n}" for n in range(1, 4)]
        assert len(lib.ids()) == 3


def test_a_newer_library_is_refused_and_left_untouched(tmp_path: Path, env: dict[str, str]) -> None:
    folder = tmp_path / "data"
    Library(folder).close()
    db = folder / "library.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 9")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    result = run_cli(["generate", "a lighthouse", "--demo"], env)
    assert result.returncode == 1
    assert "newer version of Krea Desktop" in one_sentence(result.stderr)
    assert db.read_bytes() == before and not list(folder.glob("*.damaged-*"))


def test_a_data_folder_that_is_a_file_is_named_in_one_sentence(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "data").write_text("not a folder")
    result = run_cli(["generate", "a lighthouse", "--demo"], env)
    assert result.returncode == 1
    line = one_sentence(result.stderr)
    assert str(tmp_path / "data") in line and "is a file" in line


def test_a_data_folder_that_cannot_even_be_looked_at_is_one_sentence(tmp_path: Path) -> None:
    """A name too long (or a folder of another user's): looking for why the folder could not
    be made raised again, and the window showed a traceback."""
    folder = tmp_path / ("a" * 300)
    with pytest.raises(LibraryError) as raised:
        Library(folder)
    said = str(raised.value)
    assert said == (
        f"The data folder {folder} cannot be used (File name too long); check that it exists and that you "
        "may write to it."
    )


def test_a_closed_library_needs_no_write_ahead_log(tmp_path: Path) -> None:
    lib = Library(tmp_path / "data")
    for n in range(1, 4):
        lib.save(image(n))
    lib.close()
    wal = tmp_path / "data" / "library.sqlite-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "library.sqlite").write_bytes((tmp_path / "data" / "library.sqlite").read_bytes())
    conn = sqlite3.connect(backup / "library.sqlite")
    assert conn.execute("SELECT COUNT(*) FROM images").fetchone() == (3,)
    conn.close()


# -- 2. many processes, one library -----------------------------------------------------------


def _dead_pid() -> int:
    return int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout
    )


def test_another_process_never_touches_a_live_writers_temp_files(tmp_path: Path) -> None:
    """A writer elsewhere has its temporary file open; a start-up check here must leave it."""
    folder = tmp_path / "data"
    Library(folder).close()
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys, time\n"
            f"p = os.path.join({str(folder / 'images')!r}, '.tmp-%d-x.part' % os.getpid())\n"
            "open(p, 'wb').write(b'half'); print(p, flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        live = Path(writer.stdout.readline().strip())
        dead = folder / "images" / f".tmp-{_dead_pid()}-y.part"
        dead.write_bytes(b"left by a crash")
        with Library(folder) as lib:
            report = lib.reconcile()
        assert live.exists() and not dead.exists()
        assert report.temp_files_removed == [dead.name]
    finally:
        writer.kill()
        writer.wait()


def test_pending_deletes_belong_to_the_instance_that_made_them(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    with Library(folder) as lib:
        mine, theirs = lib.save(image(1)), lib.save(image(2))
        PendingTrash(lib).delete([mine])  # this process: alive, its undo must survive
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parents[2])!r})\n"
        "from krea_desktop.library.store import Library\n"
        "from krea_desktop.library.trash import PendingTrash\n"
        f"lib = Library({str(folder)!r}); PendingTrash(lib).delete([lib.get({theirs.id})]); lib.close()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)  # a run that ended without flushing
    trashed: list[str] = []
    with Library(folder) as lib:
        trash = PendingTrash(lib)
        trash._trash = lambda held, original: trashed.append(held.name) or []  # type: ignore[method-assign]
        trash.flush_leftovers()
    assert trashed == [theirs.file_name]
    assert len(list((folder / ".trash-pending").rglob("*.png"))) == 1  # ours, still undoable


@contextmanager
def write_lock_held(folder: Path, begin: str = "BEGIN IMMEDIATE") -> Iterator[None]:
    """The index of a new library in ``folder``, its write lock held by another connection
    (another program) meanwhile."""
    Library(folder).close()
    holder = sqlite3.connect(folder / "library.sqlite", isolation_level=None)
    holder.execute(begin)
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_held_write_lock_is_a_short_wait_and_one_sentence(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    with write_lock_held(folder), Library(folder, busy_timeout=0.3) as lib:
        started = time.monotonic()
        with pytest.raises(LibraryError, match=r"^The library is busy: .*try again in a moment\.$"):
            lib.set_favourite([1], True)
        assert time.monotonic() - started < 4  # not the 5 s the library waits by default
        assert lib.count() == 0  # reading is never blocked (write-ahead log)


# -- 3. a failed save keeps the rest of the batch ----------------------------------------------


class FailingSaves:
    """Makes ``Library.save`` fail with ``errno`` for the calls in ``failing`` (1-based)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, failing: set[int], code: int = errno.ENOSPC) -> None:
        self.calls = 0
        real = Library.save

        def save(lib: Library, img: GeneratedImage, created_at: Any = None) -> Any:
            self.calls += 1
            if self.calls in failing:
                raise OSError(code, os.strerror(code))
            return real(lib, img, created_at)

        monkeypatch.setattr(Library, "save", save)


def test_images_that_cannot_be_saved_are_held_and_saved_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FailingSaves(monkeypatch, failing={2, 3})
    with Library(tmp_path / "data") as lib:
        queue = SaveQueue(lib)
        assert [e.prompt for e in queue.save(image(1))] == ["a quiet harbour 1"]
        assert queue.save(image(2)) == []
        assert queue.problem is not None and "disk holding" in queue.problem and "1 paid image is" in queue.problem
        assert queue.save(image(3)) == []  # the retry of 2 fails too: 3 waits behind it
        assert "2 paid images are" in (queue.problem or "")
        saved = queue.save(image(4))  # the disk has room again: 2, 3, then 4
        assert [e.prompt for e in saved] == [f"a quiet harbour {n}" for n in (2, 3, 4)]
        assert not queue.held and queue.problem is None
        assert sorted(e.prompt for e in lib.entries()) == [f"a quiet harbour {n}" for n in range(1, 5)]


def test_images_held_while_another_process_writes_say_so_in_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from krea_desktop.library.store import BUSY_MESSAGE, LibraryBusy

    real = Library.save
    busy = {"on": True}

    def save(lib: Library, img: Any, created_at: Any = None) -> Any:
        if busy["on"]:
            raise LibraryBusy(BUSY_MESSAGE)
        return real(lib, img, created_at)

    monkeypatch.setattr(Library, "save", save)
    with Library(tmp_path / "data") as lib:
        queue = SaveQueue(lib)
        assert queue.save(image(1)) == [] and queue.save(image(2)) == []
        assert queue.problem == (
            "2 paid images are kept in memory because another Krea Desktop window or command is writing to "
            "the library; they are saved as soon as it is done."
        )
        busy["on"] = False
        assert [e.prompt for e in queue.save(image(3))] == [f"a quiet harbour {n}" for n in (1, 2, 3)]


def test_what_still_cannot_be_saved_is_written_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FailingSaves(monkeypatch, failing=set(range(1, 100)), code=errno.EROFS)
    with Library(tmp_path / "data") as lib:
        queue = SaveQueue(lib)
        for n in (1, 2):
            queue.save(image(n))
        assert "cannot be written to" in (queue.problem or "")
        folder = queue.spill(tmp_path / "fallback")
    assert folder is not None and not queue.held
    files = sorted(folder.iterdir())
    assert len(files) == 2
    record = metadata.read_record(files[0])
    assert record is not None and record.prompt == "a quiet harbour 1"


def test_two_held_images_of_one_image_uuid_are_both_written_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A service may send one imageUUID in two tasks (the library keeps both apart): written
    # out under that name, the second took the place of the first, which was lost.
    FailingSaves(monkeypatch, failing=set(range(1, 100)), code=errno.ENOSPC)
    first, second = image(1), image(2)
    second = GeneratedImage(
        task_uuid="7d2b3c4d-0000-4000-8000-000000000000", image_uuid=first.image_uuid, data=second.data,
        format="PNG", width=32, height=24, seed=2, record=second.record,
    )  # fmt: skip
    fallback = tmp_path / "fallback"
    fallback.mkdir()
    earlier = fallback / f"{first.image_uuid}.png"  # an earlier run's, in a folder given
    earlier.write_bytes(b"an earlier run's image")
    with Library(tmp_path / "data") as lib:
        queue = SaveQueue(lib)
        queue.save(first)
        queue.save(second)
        assert queue.spill(fallback) == fallback
    assert not queue.held
    assert earlier.read_bytes() == b"an earlier run's image"
    prompts = set()
    for path in fallback.iterdir():
        if path != earlier:
            record = metadata.read_record(path)
            assert record is not None
            prompts.add(record.prompt)
    assert prompts == {"a quiet harbour 1", "a quiet harbour 2"}
    assert sorted(p.name for p in fallback.iterdir()) == [
        f"{first.image_uuid} (2).png", f"{first.image_uuid} (3).png", f"{first.image_uuid}.png",
    ]  # fmt: skip


def test_an_image_whose_row_a_locked_index_refused_stays_in_the_library_folder(tmp_path: Path) -> None:
    """The copy written outside the library is in the system's temporary folder, which a
    restart may clear: the file the save wrote into images/ stays, and the next check of
    the folder (the window's start) puts it in the gallery."""
    folder = tmp_path / "data"
    with write_lock_held(folder, "BEGIN EXCLUSIVE"), Library(folder, busy_timeout=0.2) as lib:
        queue = SaveQueue(lib)
        assert queue.save(image(1)) == []
        spilled = queue.spill(tmp_path / "fallback")
    assert spilled is not None and len(list(spilled.iterdir())) == 1
    with Library(folder) as lib:
        lib.reconcile()
        assert [e.prompt for e in lib.entries()] == ["a quiet harbour 1"]


def test_the_command_line_keeps_a_batch_whose_saves_fail_midway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from krea_desktop import cli

    monkeypatch.setenv("KREA_DESKTOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("RUNWARE_API_KEY", raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    FailingSaves(monkeypatch, failing={2, 3})
    assert cli.main(["generate", "a row of lanterns", "--demo", "--count", "4"]) == 0
    out, err = capsys.readouterr()
    assert len(out.split()) == 4 and "kept in memory because the disk holding" in err
    # The library's own note of the failure goes to the log file, not beside the sentence.
    assert "could not save" not in err and "Errno" not in err
    assert "could not save" in (tmp_path / "data" / "logs" / "krea-desktop.log").read_text(encoding="utf-8")
    assert not any(isinstance(h, logfile.LogFile) for h in logging.getLogger().handlers)  # closed after the command
    with Library(tmp_path / "data") as lib:
        assert lib.count() == 4


def test_a_cancel_that_reaches_the_closing_of_the_client_still_ends_the_run_as_it_should(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl+C can reach httpx's own waits as the client closes, and cancel the run a second
    # time: what came after the closing was skipped. The paid images held for want of room
    # were not written out, and the run said "cancelled." where its task was kept.
    import asyncio

    from krea_desktop import cli
    from krea_desktop.api.client import RunwareClient

    monkeypatch.setenv("KREA_DESKTOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("RUNWARE_API_KEY", raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where what cannot be saved is written
    FailingSaves(monkeypatch, failing=set(range(1, 100)))  # the disk stays full
    real_aclose = RunwareClient.aclose

    async def cancelled_as_it_closes(self: RunwareClient) -> None:
        await real_aclose(self)
        raise asyncio.CancelledError

    monkeypatch.setattr(RunwareClient, "aclose", cancelled_as_it_closes)
    args = cli.build_parser().parse_args(["generate", "two lanterns", "--demo", "--count", "2"])
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(cli._generate(args))
    (spilled,) = tmp_path.glob("krea-desktop-unsaved-*")
    assert len(list(spilled.glob("*.png"))) == 2  # written out, with their records
    assert args.kept_for_later is False  # said: a demo task leaves nothing to collect


@contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    mounted = (
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
        if os.geteuid() == 0
        else None
    )
    if mounted is None or mounted.returncode != 0:
        pytest.skip("needs root to mount a small tmpfs (the simulated-ENOSPC tests above cover the logic)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_is_found_before_anything_is_sent(tmp_path: Path, env: dict[str, str]) -> None:
    with small_disk(tmp_path / "disk", "4m") as disk:
        env["KREA_DESKTOP_DATA_DIR"] = str(disk / "data")
        result = run_cli(["generate", "a lighthouse", "--demo", "--count", "2"], env)
        assert result.returncode == 1
        line = one_sentence(result.stderr)
        assert line.startswith("krea-desktop: Nothing was sent: the disk holding") and "free some space" in line
        with Library(disk / "data") as lib, pytest.raises(LibraryError, match="Nothing was sent"):
            check_writable(lib, 1)


def test_out_on_a_full_disk_leaves_no_truncated_copy(tmp_path: Path, env: dict[str, str]) -> None:
    with small_disk(tmp_path / "disk", "300k") as disk:
        (disk / "filler").write_bytes(b"\0" * (280 * 1024))
        result = run_cli(["generate", "a lighthouse", "--demo", "--out", str(disk / "out")], env)
        assert result.returncode == 1
        line = one_sentence(result.stderr)
        assert line.startswith("krea-desktop: The images are in the library, but some could not be copied into --out: ")
        assert line.endswith("is full; free some space.")
        assert not [p for p in (disk / "out").iterdir() if not p.name.startswith(".")]
        assert not list((disk / "out").iterdir())  # no temporary file left either
        with Library(tmp_path / "data") as lib:
            assert lib.count() == 1  # the paid image is kept in the library


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_a_read_only_library_is_refused_before_anything_is_sent(
    tmp_path: Path, env: dict[str, str], journal: str
) -> None:
    """On read-only storage the library is refused as such, whatever its journal (one
    made elsewhere may not be in WAL mode): never as damaged, never with a traceback."""
    with small_disk(tmp_path / "disk", "64m") as disk:
        Library(disk / "data").close()
        conn = sqlite3.connect(disk / "data" / "library.sqlite")
        assert conn.execute(f"PRAGMA journal_mode={journal}").fetchone()[0] == journal
        conn.close()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        env["KREA_DESKTOP_DATA_DIR"] = str(disk / "data")
        result = run_cli(["generate", "a lighthouse", "--demo"], env)
        assert result.returncode == 1
        line = one_sentence(result.stderr)
        assert str(disk / "data") in line and "Read-only file system" in line and "damaged" not in line
        with pytest.raises(LibraryError, match="cannot be used"):
            Library(disk / "data")


# -- 4. a delete cut short, or undone on a full disk, loses nothing ----------------------------


def test_a_delete_between_the_folders_listing_and_its_check_leaves_no_ghost_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The start-up check lists the folder before it reads the index: an image deleted in
    between came back as a row of its own, a damaged image with no parameters."""
    from krea_desktop.library import store

    with Library(tmp_path / "lib") as lib:
        kept, deleted = lib.save(image(1, "kept")), lib.save(image(2, "deleted"))
        listing = store.os.scandir

        @contextmanager
        def listed_then_deleted(path: Any) -> Iterator[Any]:
            with listing(path) as it:
                yield list(it)
            PendingTrash(lib).delete([deleted])  # as the gallery does, beside the check

        monkeypatch.setattr(store.os, "scandir", listed_then_deleted)
        report = lib.reconcile()
        monkeypatch.undo()
        assert report.indexed == [] and report.broken == []
        assert [e.prompt for e in lib.entries()] == ["kept 1"] and lib.get(kept.id) is not None


def test_an_undo_beside_the_folders_check_brings_back_the_image_with_its_parameters(tmp_path: Path) -> None:
    """Undo puts the files back, then the rows: the check, run in between, indexed the file
    as an image of its own, and the undo's row (favourite, references, cost) was refused."""
    import threading

    with Library(tmp_path / "lib") as lib:
        entry = lib.save(image(1, "brought back"))
        lib.set_favourite([entry.id], True)
        entry = lib.get(entry.id)
        assert entry is not None
        trash = PendingTrash(lib)
        batch = trash.delete([entry])
        assert batch is not None and lib.count() == 0
        files_back = threading.Event()
        restore = lib.restore

        def slow_restore(entries: Any) -> Any:
            files_back.set()
            time.sleep(0.4)  # the check runs now, if it can
            return restore(entries)

        lib.restore = slow_restore  # type: ignore[method-assign]
        reports: list[Any] = []
        checker = threading.Thread(target=lambda: (files_back.wait(10), reports.append(lib.reconcile())))
        checker.start()
        undone = trash.undo(batch)
        checker.join(10)
        assert undone is not None and reports and reports[0].indexed == []
        back = lib.entries()
        assert len(back) == 1 and back[0].prompt == "brought back 1" and back[0].favourite


@pytest.mark.parametrize("checked_between", [False, True], ids=["at-once", "after-a-check-of-the-folder"])
def test_an_undo_whose_name_another_file_took_brings_the_image_back_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checked_between: bool
) -> None:
    """Deleted, then another picture saved under its name, then Undo: the deleted one
    was skipped, its row pointed at the other picture, and its file went with the holding
    folder (or, the folder checked in between, neither row nor file came back)."""
    from krea_desktop.library import trash as trash_module

    monkeypatch.setattr(trash_module, "send2trash", lambda path: pytest.fail(f"{path} sent to the trash"))
    with Library(tmp_path / "lib") as lib:
        Image.new("RGB", (32, 32), (255, 0, 0)).save(lib.images_dir / "holiday.png")  # put there by hand
        lib.reconcile()
        entry = lib.get_by_file_name("holiday.png")
        assert entry is not None
        lib.set_favourite([entry.id], True)
        entry = lib.get(entry.id)
        assert entry is not None
        deleted = entry.path.read_bytes()
        trash = PendingTrash(lib)
        batch = trash.delete([entry])
        assert batch is not None and lib.count() == 0
        other = io.BytesIO()
        Image.new("RGB", (32, 32), (0, 0, 255)).save(other, "PNG")
        entry.path.write_bytes(other.getvalue())  # another picture, saved under its name
        if checked_between:
            lib.reconcile()  # F5: the other picture indexed under that name
        undone = trash.undo(batch)
        assert undone is not None and len(undone.entries) == 1
        back = undone.entries[0]
        assert back.file_name == "holiday (2).png"
        assert back.path.read_bytes() == deleted and entry.path.read_bytes() == other.getvalue()
        row = lib.get_by_file_name("holiday (2).png")
        assert row is not None and row.favourite and row.width == 32
        assert not batch.folder.exists()
        lib.reconcile()  # and the check of the folder takes both as they are
        assert sorted((e.file_name, e.favourite) for e in lib.entries()) == [
            ("holiday (2).png", True),
            ("holiday.png", False),
        ]


def test_a_deleted_image_on_its_way_to_the_system_trash_is_not_indexed_by_the_folders_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file goes back to images/ (its place, for the system trash to remember) just
    before it is trashed: a check of the folder in between indexed it as a new image."""
    import threading

    from krea_desktop.library import trash as trash_module

    with Library(tmp_path / "lib") as lib:
        kept, deleted = lib.save(image(1, "kept")), lib.save(image(2, "deleted"))
        trash = PendingTrash(lib)
        batch = trash.delete([deleted])
        assert batch is not None
        reports: list[Any] = []

        def slow_system_trash(path: str) -> None:  # the system trash takes a moment; a check runs meanwhile
            checker = threading.Thread(target=lambda: reports.append(lib.reconcile()))
            checker.start()
            time.sleep(0.4)
            Path(path).unlink()
            slow_system_trash.checker = checker  # type: ignore[attr-defined]

        monkeypatch.setattr(trash_module, "send2trash", slow_system_trash)
        assert trash.flush(batch) == []
        slow_system_trash.checker.join(10)  # type: ignore[attr-defined]
        assert reports and reports[0].indexed == []
        assert [e.id for e in lib.entries()] == [kept.id]


def test_a_delete_killed_before_its_rows_left_the_index_is_undone_at_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "data"
    with Library(folder) as lib:
        first, second = lib.save(image(1)), lib.save(image(2))
    code = (
        f"import os, signal, sys; sys.path.insert(0, {str(Path(__file__).parents[2])!r})\n"
        "from krea_desktop.library.store import Library\n"
        "from krea_desktop.library.trash import PendingTrash\n"
        f"lib = Library({str(folder)!r})\n"
        "lib.remove = lambda ids: os.kill(os.getpid(), signal.SIGKILL)\n"  # killed before the rows go
        f"PendingTrash(lib).delete([lib.get({first.id}), lib.get({second.id})])\n"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == -signal.SIGKILL
    assert not first.path.exists() and not second.path.exists()  # held aside, rows still there
    trashed: list[str] = []
    monkeypatch.setattr("krea_desktop.library.trash.send2trash", lambda path: trashed.append(Path(path).name))
    with Library(folder) as lib:
        assert sorted(lib.reconcile().newly_missing) == sorted([first.id, second.id])  # the start-up check first
        pending = PendingTrash(lib)
        assert pending.flush_leftovers() == []
        assert trashed == []
        assert sorted(pending.returned) == sorted([first.id, second.id])
        for entry in (first, second):  # back, and no longer read "file missing"
            assert entry.path.is_file()
            row = lib.get(entry.id)
            assert row is not None and row.prompt == entry.prompt and not row.missing
        assert not list((folder / ".trash-pending").rglob("*.png"))


def test_an_undo_killed_midway_puts_the_rest_back_at_the_next_start_not_in_the_trash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Undo moves the files back, then the rows: killed between the two, the next start
    took the files still held for a finished delete and sent them to the system trash."""
    folder = tmp_path / "data"
    with Library(folder) as lib:
        entries = [lib.save(image(n)) for n in (1, 2, 3)]
    code = (
        f"import os, signal, sys; sys.path.insert(0, {str(Path(__file__).parents[2])!r})\n"
        "from krea_desktop.library.store import Library\n"
        "from krea_desktop.library import trash\n"
        f"lib = Library({str(folder)!r})\n"
        "pending = trash.PendingTrash(lib)\n"
        f"batch = pending.delete([lib.get(i) for i in {[e.id for e in entries]!r}])\n"
        "put_back = trash._put_back\n"
        "def killed_after_one(held, entry):\n"
        "    moved = put_back(held, entry)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "trash._put_back = killed_after_one\n"
        "pending.undo(batch)\n"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == -signal.SIGKILL
    assert sum(e.path.exists() for e in entries) == 1  # one back, two still held, no row for any
    trashed: list[str] = []
    monkeypatch.setattr("krea_desktop.library.trash.send2trash", lambda path: trashed.append(Path(path).name))
    with Library(folder) as lib:
        lib.reconcile()  # the start-up check first, as the window does it
        pending = PendingTrash(lib)
        assert pending.flush_leftovers() == []
        assert trashed == []
        assert len(pending.undone_files) == 2 and all(e.path.is_file() for e in entries)
        lib.reconcile()  # the check the window runs once they are back
        assert sorted(e.prompt for e in lib.entries()) == sorted(e.prompt for e in entries)
        assert not list((folder / ".trash-pending").rglob("*"))


def test_an_undo_that_cannot_put_the_files_back_keeps_them_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Library(tmp_path / "data") as lib:
        first, second = lib.save(image(1)), lib.save(image(2))
        pending = PendingTrash(lib)
        batch = pending.delete([first, second])
        assert batch is not None
        real_replace, real_link = os.replace, os.link
        moved_back: list[str] = []

        def second_finds_the_disk_full(real: Any) -> Any:
            def move(src: Any, dst: Any) -> None:
                if Path(dst).parent == lib.images_dir:
                    if Path(dst).name not in moved_back:
                        moved_back.append(Path(dst).name)
                    if moved_back.index(Path(dst).name) == 1:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                real(src, dst)

            return move

        monkeypatch.setattr(os, "replace", second_finds_the_disk_full(real_replace))
        monkeypatch.setattr(os, "link", second_finds_the_disk_full(real_link))
        with pytest.raises(
            LibraryError,
            match=r"^The 2 deleted images could not be put back: the disk holding .+ is full; free some space; "
            r"they are still held in .+, and Undo can be tried again\.$",
        ):
            pending.undo(batch)
        # Nothing changed: both files held (the first moved aside again), no row back, still undoable.
        assert sorted(p.name for p in batch.folder.iterdir()) == sorted([first.file_name, second.file_name])
        assert not first.path.exists() and lib.count() == 0
        assert pending.batches == [batch]
        monkeypatch.setattr(os, "replace", real_replace)  # room again
        monkeypatch.setattr(os, "link", real_link)
        assert pending.undo() is batch
        assert first.path.is_file() and second.path.is_file() and lib.count() == 2
        assert not batch.folder.exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="/dev/full makes every write fail with ENOSPC")
def test_a_log_line_the_full_disk_refuses_is_left_out_without_a_traceback(tmp_path: Path) -> None:
    """The window's log on a full disk: the lines are lost, the app goes on, and nothing
    (no "--- Logging error ---" and traceback) is printed to the terminal it was started from."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "krea-desktop.log").symlink_to("/dev/full")
    child = (
        "import logging, sys\n"
        "from pathlib import Path\n"
        "from krea_desktop.ui.app import setup_logging\n"
        "setup_logging(Path(sys.argv[1]))\n"
        "logging.getLogger('krea').warning('one line')\n"
        "logging.getLogger('krea').warning('and another')\n"
        "try:\n"
        "    logging.getLogger('krea').warning('%d', 'not a number')  # a bug in a call is still told\n"
        "except Exception:\n"
        "    pass\n"
        "print('went on')\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-c", child, str(logs)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "went on\n", done.stderr
    assert "No space left" not in done.stderr and "OSError" not in done.stderr
    assert done.stderr.count("--- Logging error ---") == 1 and "TypeError" in done.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, a file every write to fails with ENOSPC")
def test_a_full_disk_under_the_log_leaves_the_commands_own_ending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The log's last lines fail to reach the disk when the command closes it: that is not
    what the user hears. They hear where the images that could not be saved went; a batch
    saved whole is a success."""
    from krea_desktop import cli

    data = tmp_path / "data"
    (data / "logs").mkdir(parents=True)
    (data / "logs" / logfile.NAME).symlink_to("/dev/full")
    monkeypatch.setenv("KREA_DESKTOP_DATA_DIR", str(data))
    monkeypatch.delenv("RUNWARE_API_KEY", raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where what cannot be saved goes

    assert cli.main(["generate", "a row of lanterns", "--demo"]) == 0
    out, err = capsys.readouterr()
    assert len(out.split()) == 1 and "No space left" not in err

    FailingSaves(monkeypatch, failing=set(range(1, 100)))
    assert cli.main(["generate", "a row of lanterns", "--demo", "--count", "2"]) == 1
    out, err = capsys.readouterr()
    line = one_sentence(err)
    assert "No space left" not in line and "written to" in line, line
    spilled = [p for p in tmp_path.glob("krea-desktop-unsaved-*/*") if p.is_file()]
    assert len(spilled) == 2
    assert not any(isinstance(h, logfile.LogFile) for h in logging.getLogger().handlers)


def test_nothing_is_sent_when_the_note_of_the_task_could_not_be_kept(tmp_path: Path, env: dict[str, str]) -> None:
    """The note that lets a later run collect a task cut short (pending/) could not be
    written, and the task was sent all the same: killed, its paid images were lost without
    a word (a warning in the log). Now it is found before anything is sent."""
    root = tmp_path / "data"
    with Library(root) as lib:
        check_writable(lib, 2)
        assert (root / "pending").is_dir()
        (root / "pending").rmdir()
        (root / "pending").write_text("in the way")
        with pytest.raises(LibraryError) as refused:
            check_writable(lib, 2)
    assert str(refused.value) == (
        f"Nothing was sent: {root / 'pending'} is a file where the library keeps its notes of the tasks under way "
        "(so that one cut short is collected later); move it away."
    )
    with simulator_process("--key", "sk-notes", env=env) as url:
        run_env = {**env, "KREA_DESKTOP_DATA_DIR": str(root), "RUNWARE_API_KEY": "sk-notes", "RUNWARE_API_URL": url}
        result = run_cli(["generate", "a lighthouse"], run_env)
    assert result.returncode == 1
    assert one_sentence(result.stderr) == f"krea-desktop: {refused.value}"
    with Library(root) as lib:
        assert lib.count() == 0
    # The demo's simulator keeps no notes (its tasks end with the process): not refused.
    env["KREA_DESKTOP_DATA_DIR"] = str(root)
    assert run_cli(["generate", "a lighthouse", "--demo"], env).returncode == 0


def test_nothing_is_sent_when_the_index_would_not_take_the_images(tmp_path: Path) -> None:
    """An index that refuses writes (another user's file, a read-only folder) is found
    before a paid request, not after: the images would be paid for and not indexed."""
    with Library(tmp_path / "data") as lib:
        check_writable(lib, 4)  # a library that takes writes passes
        lib._conn().execute("PRAGMA query_only = ON")  # what a read-only index answers to a write
        with pytest.raises(LibraryError) as refused:
            check_writable(lib, 4)
        assert str(refused.value) == (
            "Nothing was sent: the library index cannot be written to; "
            "check the permissions of the data folder and of library.sqlite."
        )
        lib._conn().execute("PRAGMA query_only = OFF")
        assert lib.count() == 0 and lib.save(image(1)).prompt == "a quiet harbour 1"  # the probe left nothing


def test_paid_images_spilled_outside_the_library_keep_their_task_for_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from krea_desktop import cli
    from tests.helpers.sim import running_simulator

    data = tmp_path / "data"
    monkeypatch.setenv("KREA_DESKTOP_DATA_DIR", str(data))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where what cannot be saved goes
    FailingSaves(monkeypatch, failing=set(range(1, 100)))
    with running_simulator() as sim:
        monkeypatch.setenv("RUNWARE_API_KEY", "sk-spilled")
        monkeypatch.setenv("RUNWARE_API_URL", sim.url)
        assert cli.main(["generate", "a row of lanterns", "--count", "2"]) == 1
    assert "written to" in capsys.readouterr().err
    assert len([p for p in tmp_path.glob("krea-desktop-unsaved-*/*") if p.is_file()]) == 2
    assert len(list((data / "pending").glob("*.json"))) == 1  # collected into the library by the next run


def test_images_put_in_the_folder_under_names_of_their_own_are_indexed(tmp_path: Path) -> None:
    """Copies made in a file manager ("My Photo (1).png", "café.png") give rows, with their
    parameters and their names, as any readable image does."""
    import shutil

    with Library(tmp_path / "data") as lib:
        made = lib.save(image(1))
        for name in ("My Photo (1).png", "café.png"):
            shutil.copyfile(made.path, lib.images_dir / name)
        report = lib.reconcile()
        assert len(report.indexed) == 2 and not report.skipped
        rows = {e.file_name: e for e in lib.entries()}
        assert set(rows) == {made.file_name, "My Photo (1).png", "café.png"}
        for name in ("My Photo (1).png", "café.png"):
            copy = rows[name]
            assert copy.prompt == "a quiet harbour 1" and copy.path == lib.images_dir / name
            assert lib.thumb_path(copy.image_uuid, 256).parent == lib.thumbs_dir / "256"
        again = lib.reconcile()
        assert not again.indexed and not again.skipped


def test_a_file_of_its_own_name_left_aside_by_a_crash_comes_back_not_to_the_trash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after a delete moved files aside, before their rows went: each file whose row
    is still there comes back, whatever its name (not only ``<imageUUID>.png``)."""
    from krea_desktop.library import trash

    trashed: list[str] = []
    monkeypatch.setattr(trash, "send2trash", lambda p: trashed.append(Path(p).name))
    with Library(tmp_path / "data") as lib:
        for name in ("My Photo (1).png", "abc123.png"):
            Image.new("RGB", (32, 32), (9, 9, 9)).save(lib.images_dir / name)
        assert len(lib.reconcile().indexed) == 2
        ended = subprocess.Popen([sys.executable, "-c", "pass"])
        ended.wait()  # the id of a process that has ended: the crashed one
        held = lib.root / trash.PENDING_FOLDER / f"batch-{ended.pid}-x"
        held.mkdir(parents=True)
        for name in ("My Photo (1).png", "abc123.png"):
            os.replace(lib.images_dir / name, held / name)
        trash.PendingTrash(lib).flush_leftovers()
        assert sorted(p.name for p in lib.images_dir.iterdir()) == ["My Photo (1).png", "abc123.png"]
        assert trashed == [] and lib.count() == 2


@pytest.mark.parametrize("where", ["holding-folder", "each-file"])
def test_a_delete_the_library_folder_refuses_says_why_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    # A library on a disk remounted read-only: the window said "The library could not be
    # changed (OSError); nothing was lost." (no holding folder could be made), or, with the
    # holding folder there, "The selected images could not be moved to the trash." and no why.
    with Library(tmp_path / "data") as lib:
        first, second = lib.save(image(1)), lib.save(image(2))
        trash = PendingTrash(lib)
        read_only = OSError(errno.EROFS, os.strerror(errno.EROFS))

        def refuse(*_args: Any, **_kwargs: Any) -> Any:
            raise read_only

        if where == "holding-folder":
            monkeypatch.setattr(tempfile, "mkdtemp", refuse)
            folder = lib.root
        else:
            monkeypatch.setattr(os, "replace", refuse)
            folder = lib.images_dir
        with pytest.raises(LibraryError) as caught:
            trash.delete([first, second])
        assert str(caught.value) == (
            f"The selected images were not moved to the trash: {folder} cannot be written to; "
            "check its permissions or the disk it is on."
        )
        assert first.path.is_file() and second.path.is_file() and lib.count() == 2
        assert trash.batches == [] and not any(trash.folder.glob("*/*"))


def test_deleting_images_already_deleted_leaves_nothing_on_the_undo_list(tmp_path: Path) -> None:
    """Another window (or a second Delete) got there first: nothing left the index, so no
    empty step stands on the undo list before the real one, and no holding folder is left."""
    with Library(tmp_path / "data") as lib:
        entry = lib.save(image(1))
        trash = PendingTrash(lib)
        first = trash.delete([entry])
        again = trash.delete([entry])
        assert first is not None and [e.id for e in first.entries] == [entry.id]
        assert again is not None and again.entries == []
        assert trash.batches == [first]
        assert sorted(p.name for p in trash.folder.iterdir()) == [first.folder.name]
        assert trash.undo() is first and lib.get(entry.id) is not None


def test_a_full_disk_is_not_taken_for_a_damaged_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a full disk, SQLite could not make the files it reads beside the index, and the
    healthy index was set aside as damaged and rebuilt: every favourite was lost. Now it
    is said, and the index is left as it is for when there is room again."""
    folder = tmp_path / "data"
    with Library(folder) as lib:
        entry = lib.save(image(1))
        lib.set_favourite([entry.id], True)
    real_connect = sqlite3.connect

    class FullDisk:
        def execute(self, *_args: Any) -> Any:
            full = sqlite3.OperationalError("database or disk is full")
            full.sqlite_errorcode = 13  # type: ignore[attr-defined]  # SQLITE_FULL
            raise full

        def close(self) -> None:
            pass

    def connect(database: Any, *args: Any, **kwargs: Any) -> Any:
        return FullDisk() if "mode=ro" in str(database) else real_connect(database, *args, **kwargs)

    monkeypatch.setattr(store_module.sqlite3, "connect", connect)
    with pytest.raises(LibraryError, match=r"^The disk that holds the library \(.*\) is full, so its index cannot"):
        Library(folder)
    monkeypatch.undo()
    assert not list(folder.glob("library.sqlite.damaged-*"))
    with Library(folder) as lib:
        kept = lib.get(entry.id)
        assert kept is not None and kept.favourite


def test_a_journal_that_cannot_be_opened_is_not_taken_for_a_damaged_index(tmp_path: Path) -> None:
    """The write-ahead log beside the index another user's (a killed ``sudo`` run), or a
    folder in its place: SQLite cannot open it, and the healthy index was set aside as
    damaged and rebuilt, every favourite lost (the salvage cannot read it either). Now it
    is said, and the index is left as it is."""
    folder = tmp_path / "data"
    with Library(folder) as lib:
        entry = lib.save(image(1))
        lib.set_favourite([entry.id], True)
    journal = folder / "library.sqlite-wal"
    journal.mkdir()  # a folder in its place: refused as another user's file is, even to root
    with pytest.raises(LibraryError) as refused:
        Library(folder)
    assert str(refused.value) == (
        f"The library index {folder / 'library.sqlite'} cannot be opened (unable to open database file): the files "
        "beside it, library.sqlite-wal and library.sqlite-shm, must be files you can read and write "
        "(nothing in the library was changed)."
    )
    assert not list(folder.glob("library.sqlite.damaged-*"))
    journal.rmdir()
    with Library(folder) as lib:
        kept = lib.get(entry.id)
        assert kept is not None and kept.favourite


def a_favourite(
    root: Path, told: list[str] | None = None, prompt: str = "a quiet harbour"
) -> tuple[Library, LibraryEntry]:
    """A library open at ``root`` with one image, a favourite; its news go into ``told``."""
    lib = Library(root)
    if told is not None:
        lib.on_news = told.append
    first = lib.save(image(1, prompt))
    lib.set_favourite([first.id], True)
    return lib, first


def a_favourite_then_the_index_deleted(root: Path) -> tuple[Library, LibraryEntry]:
    """A library open at ``root`` with one image, a favourite, whose index was then deleted."""
    lib, first = a_favourite(root)
    lib.db_path.unlink()
    return lib, first


def found_at_next_start(root: Path) -> tuple[list[int], list[int]]:
    """What the next start finds in the library at ``root``, its index opened as it is (not
    rebuilt): every row's id and the favourites', newest first."""
    again = Library(root)
    try:
        assert again.notice is None
        return again.ids(), again.ids(favourites_only=True)
    finally:
        again.close()


@pytest.mark.parametrize("also_its_log", [False, True])
def test_an_index_deleted_while_the_library_is_open_is_written_again_with_everything_in_it(
    tmp_path: Path, also_its_log: bool
) -> None:
    # Deleted by hand or by a cleaning tool while the window ran: SQLite went on writing to
    # a file without a name, and the next start rebuilt the index from the images, their
    # favourites gone. The open copy is written back at the next write (or check), and
    # what is written from then on is in the file at the index's path.
    told: list[str] = []
    lib, first = a_favourite(tmp_path / "lib", told, "a lantern in the rain")
    index = lib.db_path
    for extra in ("", "-wal", "-shm") if also_its_log else ("",):
        index.with_name(index.name + extra).unlink(missing_ok=True)
    second = lib.save(image(2, "a kite over dunes"))  # the first write after it went
    assert index.exists()
    lib.set_favourite([second.id], True)
    third = lib.save(image(3, "a fox in snow"))
    assert told == [
        "The library index was deleted while Krea Desktop had it open, so it was written again with everything in it."
    ]
    lib.close()

    again = Library(tmp_path / "lib")
    try:
        assert again.notice is None  # not rebuilt: the index was there, whole
        assert set(again.ids()) == {first.id, second.id, third.id}
        assert set(again.ids(favourites_only=True)) == {first.id, second.id}
        assert again.ids(search="kite") == [second.id]
        assert again._conn().execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        again.close()


def test_a_file_that_is_not_an_index_put_in_its_place_is_kept_aside_and_the_index_written_again(
    tmp_path: Path,
) -> None:
    told: list[str] = []
    lib, first = a_favourite(tmp_path / "lib", told)
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE elsewhere (x)").connection.close()
    os.replace(other, lib.db_path)
    second = lib.save(image(2))
    (aside,) = [p for p in lib.root.iterdir() if p.name.startswith("library.sqlite.replaced-")]
    assert told == [
        "The library index was replaced while Krea Desktop had it open by a file that is not one, so that file was "
        f"kept as {aside.name} and the index written again with everything in it."
    ]
    kept = sqlite3.connect(aside)
    assert kept.execute("SELECT name FROM sqlite_master").fetchall() == [("elsewhere",)]
    kept.close()
    lib.close()
    assert found_at_next_start(tmp_path / "lib") == ([second.id, first.id], [first.id])


def test_an_index_gone_with_its_whole_folder_is_not_made_again(tmp_path: Path) -> None:
    # A drive taken away: nothing is made where the library was.
    import shutil

    lib = Library(tmp_path / "lib")
    lib.save(image(1))
    moved = tmp_path / "elsewhere"
    shutil.move(str(lib.root), moved)
    try:
        assert lib.keep_index() is None
        assert not lib.root.exists()
    finally:
        lib.close()


def test_every_thread_reads_the_index_written_again(tmp_path: Path) -> None:
    # Each thread has its own connection: one opened before the index went reads the file
    # written again from then on, and sees what was saved after it.
    import threading
    from concurrent.futures import ThreadPoolExecutor

    lib = Library(tmp_path / "lib")
    with ThreadPoolExecutor(1) as reader:
        first = lib.save(image(1))
        assert reader.submit(lib.ids).result() == [first.id]  # the reader's own connection
        lib.db_path.unlink()
        second = lib.save(image(2))
        lib.set_favourite([first.id], True)
        assert reader.submit(lib.ids).result() == [second.id, first.id]
        assert reader.submit(lambda: lib.ids(favourites_only=True)).result() == [first.id]
        assert threading.active_count() >= 2
    lib.close()
    assert found_at_next_start(tmp_path / "lib") == ([second.id, first.id], [first.id])


def test_a_thread_that_never_read_the_index_writes_it_again_from_one_that_did(tmp_path: Path) -> None:
    # A new connection, made by the index's path, would make a new empty file there: the
    # copy is made through one already open on the file that went.
    import threading

    lib, first = a_favourite_then_the_index_deleted(tmp_path / "lib")
    checking = threading.Thread(target=lib.reconcile)
    checking.start()
    checking.join(30)
    copy = sqlite3.connect(lib.db_path)
    try:
        assert copy.execute("SELECT id, favourite FROM images").fetchall() == [(first.id, 1)]
    finally:
        copy.close()
        lib.close()


def test_a_thread_that_first_reads_after_the_index_went_reads_it_written_again(tmp_path: Path) -> None:
    # Its first connection, opened by the index's path, would have made an empty index
    # there (and every thread after it would have read nothing).
    from concurrent.futures import ThreadPoolExecutor

    lib, first = a_favourite_then_the_index_deleted(tmp_path / "lib")
    with ThreadPoolExecutor(1) as reader:
        assert reader.submit(lambda: lib.ids(favourites_only=True)).result() == [first.id]
    second = lib.save(image(2))
    lib.close()
    assert found_at_next_start(tmp_path / "lib") == ([second.id, first.id], [first.id])


def test_an_index_deleted_under_two_processes_keeps_what_both_wrote(tmp_path: Path) -> None:
    # The window and a command on one library: the first to write after the index went
    # writes it again; the other uses that file from then on (its own copy kept beside).
    # A command that went on with the file that went emptied, when it closed, the log the
    # window's new file shares by name: rows and favourites lost.
    root = tmp_path / "lib"
    window = Library(root)
    first = window.save(image(1))
    window.set_favourite([first.id], True)
    peer_code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from tests.reliability.test_library_faults import image\n"
        "from krea_desktop.library.store import Library\n"
        "lib = Library(Path(sys.argv[1]), rebuild=False)\n"
        "print('ready', flush=True)\n"
        "for line in sys.stdin:\n"
        "    word, _, n = line.strip().partition(' ')\n"
        "    if word == 'save':\n"
        "        print(lib.save(image(int(n))).id, flush=True)\n"
        "    elif word == 'close':\n"
        "        lib.close()\n"
        "        print('closed', flush=True)\n"
        "        break\n"
    )
    peer = subprocess.Popen(
        [sys.executable, "-c", peer_code, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert peer.stdin is not None and peer.stdout is not None

    def ask(line: str) -> str:
        assert peer.stdin is not None and peer.stdout is not None
        peer.stdin.write(line + "\n")
        peer.stdin.flush()
        return peer.stdout.readline().strip()

    try:
        assert peer.stdout.readline().strip() == "ready"
        ask("save 2")
        window.db_path.unlink()  # a cleaning tool
        third = window.save(image(3))  # the window writes it again
        window.set_favourite([third.id], True)
        ask("save 4")  # the command finds another file there, and uses it
        assert ask("close") == "closed"
        assert peer.wait(30) == 0
        window.save(image(5))
    finally:
        if peer.poll() is None:
            peer.kill()
        window.close()
    again = Library(root)
    try:
        assert again.notice is None
        assert sorted(e.seed for e in again.entries()) == [1, 2, 3, 4, 5]
        assert sorted(again.ids(favourites_only=True)) == sorted([first.id, third.id])
        assert again._conn().execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        again.close()


def test_an_index_that_cannot_be_written_again_is_said_nothing_made_in_its_place_and_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    told: list[str] = []
    lib, first = a_favourite(tmp_path / "lib", told)
    copy = Library._copy_open_index

    def full(self: Library, conn: sqlite3.Connection, dest: Path) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Library, "_copy_open_index", full)
    lib.db_path.unlink()
    with pytest.raises(LibraryError) as raised:
        lib.save(image(2))
    said = (
        "The library index was deleted while Krea Desktop had it open and could not be written again (the disk is "
        "full); nothing more is saved until it is: free some space or check the folder, and it is tried again at "
        "the next save."
    )
    assert told == [said] and str(raised.value) == said
    assert not lib.db_path.exists()  # no empty index made in its place
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as reader, pytest.raises(LibraryError):
        reader.submit(lib.ids).result()  # a thread's first connection: said, not an empty index
    assert not lib.db_path.exists()
    monkeypatch.setattr(Library, "_copy_open_index", copy)  # space freed
    second = lib.save(image(2))
    assert told[-1] == (
        "The library index was deleted while Krea Desktop had it open, so it was written again with everything in it."
    )
    lib.close()
    assert found_at_next_start(tmp_path / "lib") == ([second.id, first.id], [first.id])


def test_the_check_of_every_page_does_not_take_a_deleted_index_for_a_damaged_one(tmp_path: Path) -> None:
    lib, first = a_favourite_then_the_index_deleted(tmp_path / "lib")
    assert lib.check_index() is None  # written again first, then checked: whole
    lib.close()
    assert found_at_next_start(tmp_path / "lib")[1] == [first.id]


def test_an_index_that_goes_while_its_every_page_is_checked_is_not_taken_for_damaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The check opens the index by its path, after keep_index() found it there: deleted in
    # between, the open failed and was noted as damage, and the next start set aside the
    # healthy index written again meanwhile.
    lib = Library(tmp_path / "lib")
    first = lib.save(image(1))
    lib.set_favourite([first.id], True)
    opened = store_module._read_only

    def deleted_first(index: Path, timeout: float = 5.0) -> sqlite3.Connection:
        index.unlink(missing_ok=True)
        return opened(index, timeout=timeout)

    monkeypatch.setattr(store_module, "_read_only", deleted_first)
    assert lib.check_index() is None
    monkeypatch.setattr(store_module, "_read_only", opened)
    lib.save(image(2))
    lib.close()
    assert found_at_next_start(tmp_path / "lib")[1] == [first.id]

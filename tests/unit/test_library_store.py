"""The library: atomic saves, the SQLite index, queries, undo and start-up reconciliation."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFile

from krea_desktop import fsutil
from krea_desktop.api import spec
from krea_desktop.api.record import ReferenceRecord
from krea_desktop.api.refcache import ReferenceCache, content_hash
from krea_desktop.api.request import GenerationRequest
from krea_desktop.api.results import GeneratedImage
from krea_desktop.library import metadata, store
from krea_desktop.library.schema import ensure_indexes
from krea_desktop.library.store import SCHEMA_VERSION, Library, LibraryError, LibraryReferenceCache, migrate
from tests.helpers.index_damage import damage_a_page_of_the_table, damage_every_page_of

T0 = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
_ENCODED: dict[tuple[str, tuple[int, int]], bytes] = {}


def encoded(fmt: str, size: tuple[int, int]) -> bytes:
    key = (fmt, size)
    if key not in _ENCODED:
        buf = io.BytesIO()
        Image.new("RGB", size, (90, 120, 200)).save(buf, spec.PIL_FORMATS[fmt])
        _ENCODED[key] = buf.getvalue()
    return _ENCODED[key]


def image(
    prompt: str = "a quiet harbour", ratio: str = "1:1", fmt: str = "PNG", seed: int = 1, real_size: bool = False
) -> GeneratedImage:
    r = spec.RATIOS_BY_NAME[ratio]
    req = GenerationRequest(prompt=prompt, ratio=ratio, seed=seed, output_format=fmt)
    record = req.describe().replace(references=(ReferenceRecord(str(uuid.uuid4()), 0.5, "ref.png"),))
    # Tiny pixels keep the tests fast; the row takes the declared (real) size.
    data = encoded(fmt, (r.width, r.height) if real_size else (8, 8))
    return GeneratedImage(
        task_uuid=req.task_uuid,
        image_uuid=str(uuid.uuid4()),
        data=data,
        format=fmt,
        width=r.width,
        height=r.height,
        seed=seed,
        cost=0.003,
        nsfw=False,
        record=record,
    )


@pytest.fixture
def lib(tmp_path: Path) -> Any:
    library = Library(tmp_path / "lib")
    yield library
    library.close()


def test_layout_and_pragmas(lib: Library) -> None:
    assert (lib.root / "images").is_dir() and (lib.root / "thumbs").is_dir()
    assert (lib.root / "library.sqlite").exists()
    conn = lib._conn()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert lib.integrity_ok()
    assert lib.has_fts  # SQLite here has FTS5; test_search_without_fts covers the fallback


def test_save_is_atomic_and_indexed(lib: Library) -> None:
    img = image("a red bicycle", "16:9", seed=42)
    entry = lib.save(img, created_at=T0)
    files = os.listdir(lib.images_dir)
    assert files == [f"{img.image_uuid}.png"]  # no .tmp-* left behind
    assert entry.path == lib.images_dir / files[0]
    with Image.open(entry.path) as im:
        im.load()
    rec = metadata.read_record(entry.path)
    assert rec is not None and rec == entry.record
    assert rec.prompt == "a red bicycle" and rec.seed == 42
    assert entry.prompt == "a red bicycle" and entry.ratio == "16:9" and entry.seed == 42
    assert (entry.width, entry.height) == (1376, 768)
    assert entry.format == "PNG" and entry.creativity == "medium" and entry.number_results == 1
    assert entry.output_quality == 95 and entry.cost == pytest.approx(0.003) and entry.nsfw is False
    assert entry.created_at == "2025-06-01T12:00:00.000Z"
    assert entry.references[0].strength == 0.5
    assert entry.file_size == entry.path.stat().st_size
    assert not entry.favourite and not entry.missing and not entry.broken
    assert lib.get(entry.id) == entry and lib.get_by_uuid(img.image_uuid) == entry


@pytest.mark.parametrize("fmt", ["JPG", "WEBP"])
def test_save_other_formats(lib: Library, fmt: str) -> None:
    entry = lib.save(image(fmt=fmt))
    assert entry.path.suffix == "." + spec.FORMAT_EXTENSIONS[fmt]
    assert metadata.read_record(entry.path) == entry.record


def test_save_is_idempotent(lib: Library) -> None:
    img = image()
    first = lib.save(img)
    second = lib.save(img)
    assert first == second
    assert lib.count() == 1 and len(os.listdir(lib.images_dir)) == 1


def test_save_rewrites_a_missing_file(lib: Library) -> None:
    img = image()
    entry = lib.save(img)
    entry.path.unlink()
    lib.reconcile()
    assert lib.get(entry.id).missing  # type: ignore[union-attr]
    again = lib.save(img)
    assert again.id == entry.id and not again.missing and again.path.exists()


def test_save_rejects_unsafe_uuid(lib: Library) -> None:
    img = image()
    bad = GeneratedImage(
        task_uuid="t", image_uuid="../../etc/x", data=img.data, format="PNG", width=1, height=1, seed=1
    )
    with pytest.raises(ValueError):
        lib.save(bad)


def test_save_failure_leaves_nothing(lib: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        lib.save(image())
    assert os.listdir(lib.images_dir) == [] and lib.count() == 0


def test_concurrent_saves_while_reading(lib: Library) -> None:
    images = [image(f"prompt number {i}", seed=i) for i in range(40)]
    errors: list[BaseException] = []
    stop = threading.Event()
    seen_counts: list[int] = []

    def writer(chunk: list[GeneratedImage]) -> None:
        try:
            for img in chunk:
                entry = lib.save(img)
                assert entry.path.exists()
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        try:
            while not stop.is_set():
                n = lib.count()
                ids = lib.ids()
                assert len(ids) >= n
                for e in lib.entries(limit=5):
                    assert e.path.exists()  # nothing is indexed before its file is in place
                seen_counts.append(n)
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(images[i::3] + images[:3],)) for i in range(3)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert not errors, errors
    assert lib.count() == 40 and len(os.listdir(lib.images_dir)) == 40
    assert seen_counts == sorted(seen_counts) or max(seen_counts) <= 40


def _fill(lib: Library) -> list[int]:
    ids = []
    specs = [
        ("a red fox in snow", "1:1"),
        ("a blue whale", "16:9"),
        ("Red sunset over the sea", "16:9"),
        ("portrait of a fox, 100% red", "4:5"),
        ("under_score and back\\slash", "1:1"),
    ]
    for i, (prompt, ratio) in enumerate(specs):
        ids.append(lib.save(image(prompt, ratio, seed=i), created_at=T0 + timedelta(minutes=i)).id)
    return ids


def test_queries_and_filters(lib: Library) -> None:
    ids = _fill(lib)
    assert lib.ids() == ids[::-1]  # newest first
    assert [e.id for e in lib.entries()] == ids[::-1]
    assert [e.id for e in lib.entries(offset=1, limit=2)] == ids[3:1:-1]
    assert lib.count() == 5
    assert lib.count(ratio="16:9") == 2 and lib.ids(ratio="16:9") == [ids[2], ids[1]]
    assert lib.count(search="red") == 3  # case-insensitive substring
    assert lib.count(search="fox red") == 2  # every word
    assert lib.count(search="FOX") == 2
    assert lib.count(search="ox") == 2  # shorter than a trigram: LIKE
    assert lib.count(search="100%") == 1 and lib.count(search="%") == 1  # LIKE wildcards are literal
    assert lib.count(search="_") == 1 and lib.count(search="\\") == 1
    assert lib.count(search='"quoted"') == 0
    assert lib.count(search="   ") == 5
    lib.set_favourite([ids[0], ids[2]], True)
    assert lib.ids(favourites_only=True) == [ids[2], ids[0]]
    assert lib.count(favourites_only=True, search="fox") == 1
    assert lib.count(favourites_only=True, ratio="16:9", search="sunset") == 1
    lib.set_favourite([ids[0]], False)
    assert lib.ids(favourites_only=True) == [ids[2]]
    assert lib.get(999_999) is None and lib.get_by_uuid("nope") is None


def test_every_id_is_read_again_only_after_the_index_changed(lib: Library, tmp_path: Path) -> None:
    """Clearing a search shows every image: the list is kept between calls and read again
    once anything (this thread, another thread, another process's connection) has added
    or removed an image."""
    ids = _fill(lib)
    reads: list[str] = []
    lib._conn().set_trace_callback(lambda sql: reads.append(sql) if sql.startswith("SELECT id FROM images") else None)
    assert lib.ids() == ids[::-1]
    assert lib.ids() == ids[::-1] and len(reads) == 1  # nothing changed: not read again
    got = lib.ids()
    got.append(-1)  # a caller's copy: changing it changes nothing kept
    assert lib.ids() == ids[::-1]

    newer = lib.save(image("a newer one"), created_at=T0 + timedelta(hours=1)).id  # this thread
    assert lib.ids() == [newer, *ids[::-1]]
    lib.remove([ids[0]])
    assert lib.ids() == [newer, *ids[:0:-1]]
    lib.set_favourite([newer], True)  # a write, though the list is the same
    assert lib.ids() == [newer, *ids[:0:-1]]

    def from_a_worker() -> None:
        nonlocal by_worker
        by_worker = lib.save(image("from a worker"), created_at=T0 + timedelta(hours=2)).id

    by_worker = 0
    worker = threading.Thread(target=from_a_worker)
    worker.start()
    worker.join()
    assert lib.ids() == [by_worker, newer, *ids[:0:-1]]

    other = Library(tmp_path / "lib")  # as another process would: its own connection
    try:
        elsewhere = other.save(image("from elsewhere"), created_at=T0 + timedelta(hours=3)).id
        assert lib.ids() == [elsewhere, by_worker, newer, *ids[:0:-1]]
        other.remove([elsewhere])
        assert lib.ids() == [by_worker, newer, *ids[:0:-1]]
    finally:
        other.close()
    assert lib.ids() == [by_worker, newer, *ids[:0:-1]]
    before = len(reads)
    assert lib.ids() == [by_worker, newer, *ids[:0:-1]] and len(reads) == before

    # Read in the middle of a write that is then undone: what it read is not kept.
    with pytest.raises(RuntimeError), lib._transaction() as conn:
        conn.execute("DELETE FROM images")
        assert lib.ids() == []
        raise RuntimeError("undone")
    assert lib.ids() == [by_worker, newer, *ids[:0:-1]]


def test_search_without_fts(lib: Library) -> None:
    ids = _fill(lib)
    lib.has_fts = False
    assert lib.ids(search="red fox") == [ids[3], ids[0]]


def test_a_search_of_a_thousand_words_or_a_pasted_paragraph_answers(lib: Library) -> None:
    """Each short word was one more AND in a chain SQLite refuses beyond 1,000 deep
    ("Expression tree is too large"): the search raised, and the gallery kept its old rows."""
    fox = lib.save(image("a b c d e f g h i j k l m n o p q r s t u v w x y z fox"), created_at=T0).id
    lib.save(image("of in to an is at"), created_at=T0 + timedelta(hours=1))
    letters = " ".join("abcdefghijklmnopqrstuvwxyz"[i % 26] for i in range(1100))
    assert lib.ids(search=letters) == [fox] and lib.count(search=letters) == 1
    distinct = " ".join(f"{a}{b}" for a in "abcdefghijklmnopqrstuvwxyz" for b in "abcdefghijklmnopqrstuvwxyz")
    assert lib.ids(search=distinct) == [] and lib.count(search=distinct) == 0  # 676 words, each once
    assert lib.ids(search=" ".join(["fox"] * 5000 + ["A", "a"])) == [fox]


@pytest.mark.parametrize(("term", "found"), [("éc", True), ("ÉC", True), ("üB", True), ("ÜB", True), ("éz", False)])
def test_a_short_search_ignores_the_case_of_every_letter_not_only_ascii(lib: Library, term: str, found: bool) -> None:
    """Words of one or two letters are matched by LIKE, which ignores the case of ASCII
    letters only: "éc" missed "École", which the gallery itself matches for a new image."""
    ids = [
        lib.save(image("École d'été"), created_at=T0).id,
        lib.save(image("über alles"), created_at=T0 + timedelta(hours=1)).id,
    ]
    expected = [i for i, prompt in zip(ids, ("école d'été", "über alles"), strict=True) if term.lower() in prompt]
    assert lib.ids(search=term) == expected[::-1] and bool(expected) is found


def test_a_short_word_and_the_whole_list_read_the_ordering_index_alone(lib: Library) -> None:
    """Words of one or two letters are matched by a scan; it reads the index that orders
    the images (which holds each prompt), never each matching row of the table."""
    ids = _fill(lib)
    assert lib.ids(search="fo") == [ids[3], ids[0]] and lib.count(search="fo") == 2
    where, args = lib._where("fo", False, None)
    for sql, values in (
        (f"SELECT id FROM images{where} ORDER BY created_at DESC, id DESC", args),
        (f"SELECT COUNT(*) FROM images{where}", args),
        ("SELECT id FROM images ORDER BY created_at DESC, id DESC", []),
    ):
        plan = " ".join(row[-1] for row in lib._conn().execute(f"EXPLAIN QUERY PLAN {sql}", values))
        assert "COVERING INDEX images_by_created_prompt" in plan, (sql, plan)


def test_a_library_without_the_prompt_in_its_ordering_index_gets_it_and_stays_readable(tmp_path: Path) -> None:
    with Library(tmp_path) as library:
        ids = _fill(library)
    conn = sqlite3.connect(tmp_path / "library.sqlite")
    conn.executescript(  # as the versions before it left the library
        """
        DROP INDEX images_by_created_prompt;
        CREATE INDEX images_by_created ON images(created_at DESC, id DESC);
        """
    )
    conn.close()
    with Library(tmp_path) as library:
        conn = library._conn()
        # Not a schema step: a version before this one still opens the library.
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "images_by_created_prompt" in names and "images_by_created" not in names
        assert library.ids() == ids[::-1] and library.ids(search="fo") == [ids[3], ids[0]]


def test_a_library_that_cannot_take_the_index_now_opens_without_it(tmp_path: Path) -> None:
    with Library(tmp_path) as library:
        ids = _fill(library)
    conn = sqlite3.connect(tmp_path / "library.sqlite", isolation_level=None)
    conn.execute("DROP INDEX images_by_created_prompt")
    conn.execute("BEGIN IMMEDIATE")  # another process is writing
    try:
        other = sqlite3.connect(tmp_path / "library.sqlite", isolation_level=None, timeout=30)
        started = time.monotonic()
        ensure_indexes(other)
        assert time.monotonic() - started < 5  # it does not wait for the other writer
        assert other.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000  # and leaves the wait as it was
        assert (
            other.execute("SELECT name FROM sqlite_master WHERE name = 'images_by_created_prompt'").fetchone() is None
        )
        other.close()
    finally:
        conn.execute("ROLLBACK")
        conn.close()
    with Library(tmp_path) as library:  # the next open makes it
        assert library.ids(search="fo") == [ids[3], ids[0]]
        assert library._conn().execute("SELECT 1 FROM sqlite_master WHERE name = 'images_by_created_prompt'").fetchone()


def test_remove_and_restore(lib: Library) -> None:
    ids = _fill(lib)
    lib.set_favourite([ids[1]], True)
    before = lib.entries()
    removed = lib.remove([ids[1], ids[3], 12345])
    assert [e.id for e in removed] == [ids[1], ids[3]]
    assert lib.count() == 3 and lib.count(search="whale") == 0
    assert all(e.path.exists() for e in removed)  # files are the caller's business
    lib.restore(removed)
    assert lib.entries() == before
    assert lib.count(search="whale") == 1 and lib.ids(favourites_only=True) == [ids[1]]
    # A copy of a restored image is still known as it by its bytes.
    copy = removed[0].path.read_bytes()
    import hashlib

    assert lib.find_image(sha256=hashlib.sha256(copy).hexdigest()) == lib.get(ids[1])


def test_a_restored_image_whose_id_a_newer_one_took_comes_back_with_a_new_one(lib: Library) -> None:
    """SQLite gives the highest id again once its row is gone: the newest image, deleted,
    then a new one made, and Undo put nothing back (the row was ignored)."""
    ids = _fill(lib)
    (removed,) = lib.remove([ids[-1]])
    newer = lib.save(image("made after the delete", seed=9), created_at=T0 + timedelta(hours=1))
    assert newer.id == removed.id  # what SQLite does
    restored = lib.restore([removed])
    assert len(restored) == 1 and restored[0].id not in (removed.id, *ids)
    back = lib.get(restored[0].id)
    assert back is not None and (back.image_uuid, back.prompt) == (removed.image_uuid, removed.prompt)
    assert lib.get(newer.id) == newer
    # Its place is by its date: under the image made after it, as before the delete.
    assert lib.ids()[:2] == [newer.id, restored[0].id]
    assert lib.count() == len(ids) + 1
    # An image indexed again already (a check of the folder came first) is left as it is.
    assert lib.restore([removed]) == []


def test_an_index_that_cannot_be_written_says_why_and_the_image_is_held(lib: Library) -> None:
    from krea_desktop.library.saving import SaveQueue

    conn = lib._conn()  # this thread's connection, the one saves write through
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count = {pages}")  # the index cannot grow: "database or disk is full"
    big = [image(prompt="harbour " * 400 + str(i)) for i in range(5)]
    with pytest.raises(LibraryError, match=r"^The disk holding the library index is full; free some space\.$"):
        lib.save(image(prompt="harbour " * 2000))
    assert not lib._conn().in_transaction
    saver = SaveQueue(lib)
    saved = [e for one in big for e in saver.save(one)]
    assert saver.held and saver.problem is not None
    assert saver.problem.endswith(
        "kept in memory because the disk holding the library index is full; free some space; "
        "they are saved as soon as that is fixed."
    )
    conn.execute("PRAGMA max_page_count = 1073741823")  # space freed
    saved += saver.retry()
    assert not saver.held and saver.problem is None
    assert sorted(e.image_uuid for e in saved) == sorted(one.image_uuid for one in big)
    assert all(lib.get_by_uuid(one.image_uuid) is not None for one in big)


def test_an_index_that_cannot_be_read_while_saving_says_why(lib: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable(_image_uuid: str) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(lib, "get_by_uuid", unreadable)
    with pytest.raises(LibraryError, match=r"^The disk holding the library index reported an error; check the disk\.$"):
        lib.save(image())


def test_a_save_finds_the_row_another_process_indexed_from_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each Library stands for a process: its own connections and write lock.
    window, command = Library(tmp_path / "lib"), Library(tmp_path / "lib")
    write = store._write_atomic

    def write_then_the_window_refreshes(folder: Path, name: str, data: bytes) -> None:
        write(folder, name, data)
        window.reconcile()  # between the file's rename into place and the row's commit

    monkeypatch.setattr(store, "_write_atomic", write_then_the_window_refreshes)
    one = image()
    entry = command.save(one)
    assert entry.image_uuid == one.image_uuid and entry.path.is_file() and not entry.missing
    assert window.ids() == command.ids() == [entry.id]
    window.close()
    command.close()


def test_a_refresh_does_not_call_an_image_saved_while_it_ran_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window, command = Library(tmp_path / "lib"), Library(tmp_path / "lib")
    scandir = os.scandir
    saved: list[Any] = []

    class ListedThenSaved:
        """The folder's listing, after which the other process saves an image."""

        def __init__(self, path: Any) -> None:
            self._listing = scandir(path)

        def __enter__(self) -> Any:
            return self._listing.__enter__()

        def __exit__(self, *exc: object) -> None:
            self._listing.__exit__(*exc)
            if not saved:
                saved.append(command.save(image()))

    monkeypatch.setattr(store.os, "scandir", ListedThenSaved)
    report = window.reconcile()
    entry = window.get(saved[0].id)
    assert entry is not None and entry.path.is_file()
    assert not entry.missing and report.newly_missing == []
    window.close()
    command.close()


def _counted(lib: Library) -> int:
    """The number of images as SQLite counts them, to check the one the index keeps."""
    (n,) = lib._conn().execute("SELECT COUNT(*) FROM images").fetchone()
    return int(n)


def test_the_count_of_every_image_is_kept_through_saves_removals_restores_and_reconciles(
    lib: Library, tmp_path: Path
) -> None:
    ids = _fill(lib)
    assert lib.count() == _counted(lib) == len(ids)
    lib.save(image("one more", "1:1"))
    assert lib.count() == _counted(lib) == len(ids) + 1
    removed = lib.remove([ids[0], ids[2]])
    assert lib.count() == _counted(lib) == len(ids) - 1
    lib.restore(removed)
    assert lib.count() == _counted(lib) == len(ids) + 1
    other = Library(tmp_path / "other")
    foreign = other.save(image("copied from elsewhere", "2:3", seed=77))
    other.close()
    (lib.images_dir / foreign.file_name).write_bytes(foreign.path.read_bytes())
    assert lib.reconcile().indexed
    assert lib.count() == _counted(lib) == len(ids) + 2
    (in_2_3,) = lib._conn().execute("SELECT COUNT(*) FROM images WHERE ratio = '2:3'").fetchone()
    # Every image is the number kept (not counted again); a filter still counts its rows.
    lib._conn().execute("UPDATE image_count SET n = 99")
    assert lib.count() == 99 and lib.count(ratio="2:3") == in_2_3 > 0


def test_reconcile(lib: Library) -> None:
    ids = _fill(lib)
    gone = lib.get(ids[0])
    assert gone is not None
    gone_bytes = gone.path.read_bytes()
    gone.path.unlink()
    # A leftover temp file from an interrupted save by a process that has ended, one being
    # written by a live process (this one), and an unowned one of an older version.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (lib.images_dir / f".tmp-{int(dead.stdout)}-abc.part").write_bytes(b"half")
    (lib.images_dir / f".tmp-{os.getpid()}-live.part").write_bytes(b"being written")
    (lib.images_dir / ".tmp-fresh.part").write_bytes(b"maybe live")
    old = lib.images_dir / ".tmp-old.part"
    old.write_bytes(b"long dead")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    # A file with an embedded record but no row (e.g. copied from another library).
    other = Library(lib.root.parent / "other")
    foreign = other.save(image("copied from elsewhere", "2:3", seed=77), created_at=T0 - timedelta(days=1))
    other.close()
    (lib.images_dir / foreign.file_name).write_bytes(foreign.path.read_bytes())
    # A plain image without a record, and a corrupt one.
    stray_uuid = str(uuid.uuid4())
    (lib.images_dir / f"{stray_uuid}.jpg").write_bytes(encoded("JPG", (20, 10)))
    corrupt_uuid = str(uuid.uuid4())
    (lib.images_dir / f"{corrupt_uuid}.png").write_bytes(metadata.PNG_SIGNATURE + b"garbage" * 10)
    # An indexed file overwritten with garbage.
    damaged = lib.get(ids[1])
    assert damaged is not None
    damaged.path.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (lib.images_dir / "notes.txt").write_text("ignored")

    report = lib.reconcile()
    assert sorted(report.temp_files_removed) == [f".tmp-{int(dead.stdout)}-abc.part", ".tmp-old.part"]
    assert (lib.images_dir / f".tmp-{os.getpid()}-live.part").exists()
    assert (lib.images_dir / ".tmp-fresh.part").exists()
    assert report.newly_missing == [ids[0]]
    row = lib.get(ids[0])
    assert row is not None and row.missing and row.prompt == "a red fox in snow"  # kept, flagged
    assert ids[1] in report.broken and lib.get(ids[1]).broken  # type: ignore[union-attr]
    assert len(report.indexed) == 3
    copied = lib.get_by_uuid(foreign.image_uuid)
    assert copied is not None and copied.prompt == "copied from elsewhere" and copied.seed == 77
    assert copied.ratio == "2:3" and copied.created_at == foreign.created_at and not copied.broken
    stray = lib.get_by_uuid(stray_uuid)
    assert stray is not None and stray.prompt == "" and (stray.width, stray.height) == (20, 10)
    assert stray.format == "JPG" and not stray.broken
    bad = lib.get_by_uuid(corrupt_uuid)
    assert bad is not None and bad.broken and bad.id in report.broken

    # Nothing changes on a second run; a returning file clears the flag.
    assert not lib.reconcile().changed
    gone.path.write_bytes(gone_bytes)
    report = lib.reconcile()
    assert report.found_again == [ids[0]] and not lib.get(ids[0]).missing  # type: ignore[union-attr]


def test_reference_cache(lib: Library) -> None:
    cache: ReferenceCache = LibraryReferenceCache(lib)
    digest = content_hash(b"some image bytes")
    assert cache.lookup(digest) is None
    cache.remember(digest, "uuid-1", when=1000.0)
    assert cache.lookup(digest) is None  # older than the service keeps uploads
    now = time.time()
    cache.remember(digest, "uuid-1", when=now)
    assert cache.lookup(digest) == ("uuid-1", now)
    cache.remember(digest, "uuid-2")
    found = cache.lookup(digest)
    assert found is not None and found[0] == "uuid-2"
    # Persistent across reopening.
    lib.close()
    reopened = Library(lib.root)
    try:
        assert LibraryReferenceCache(reopened).lookup(digest) == found
        LibraryReferenceCache(reopened).forget(digest)
        assert LibraryReferenceCache(reopened).lookup(digest) is None
        assert reopened.reference_prune(time.time() + 1) == 0
    finally:
        reopened.close()


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_thumbnails_made_another_way_are_made_again_and_the_old_ones_removed(tmp_path: Path) -> None:
    """Thumbnails from before colour profiles, orientation and transparency were heeded
    (no format mark) showed off colours, sideways or black; they are set aside at once and
    removed beside the opening, those of the current format kept."""
    name = "5d5a2c0e-4b1f-4c56-9a0e-1f2e3d4c5b6a"
    old = tmp_path / "thumbs" / "256" / f"{name}.jpg"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"drawn the old way")
    with Library(tmp_path) as lib:
        cached = lib.thumb_path(name, 256)
        assert not cached.exists()
        assert (lib.thumbs_dir / store.THUMBS_MARK).read_text().strip() == store.THUMBS_FORMAT
        wait_for(lambda: not any(p.name.startswith("thumbs-old-") for p in tmp_path.iterdir()))
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(b"drawn now")
    with Library(tmp_path) as lib:
        assert lib.thumb_path(name, 256).read_bytes() == b"drawn now"


def test_thumbnails_that_could_not_be_set_aside_are_not_marked_as_made_this_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder held open by another program (Windows) or a mount point cannot be renamed:
    the old thumbnails were marked current all the same, and stayed for good."""
    old = tmp_path / "thumbs" / "256" / "old.jpg"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"drawn the old way")
    real_rename = os.rename

    def refused(src: Any, dst: Any) -> None:
        raise PermissionError(13, "Permission denied", str(src))

    monkeypatch.setattr(os, "rename", refused)
    with Library(tmp_path):
        assert not (tmp_path / "thumbs" / store.THUMBS_MARK).exists()
    monkeypatch.setattr(os, "rename", real_rename)
    with Library(tmp_path):
        assert not old.exists()
        assert (tmp_path / "thumbs" / store.THUMBS_MARK).exists()


def test_old_thumbnails_left_by_a_process_ended_while_removing_them_are_removed_next_time(tmp_path: Path) -> None:
    with Library(tmp_path):
        pass
    left = tmp_path / "thumbs-old-0123" / "256"
    left.mkdir(parents=True)
    (left / "a.jpg").write_bytes(b"x")
    with Library(tmp_path):
        wait_for(lambda: not (tmp_path / "thumbs-old-0123").exists())


def test_a_thumbs_folder_of_another_program_keeps_everything_but_this_apps_thumbnails(tmp_path: Path) -> None:
    """A data folder chosen where a photo program keeps its own ``thumbs`` folder: with no
    format mark, the whole folder was set aside and deleted, the other program's files too.
    Each file of theirs stays where it was; this app's old thumbnails, those it was still
    writing when a process ended (``.tmp-*.jpg``), and a file manager's litter go, and so
    does the folder they were set aside in."""
    name = "5d5a2c0e-4b1f-4c56-9a0e-1f2e3d4c5b6a"
    thumbs = tmp_path / "thumbs"
    theirs = {
        thumbs / "2023-holiday" / "t0.jpg": b"their thumbnail",
        thumbs / "notes.txt": b"their notes",
        thumbs / "256" / "cover.png": b"theirs, in a folder named as ours are",
        tmp_path / "thumbs-old-mine" / "keep.txt": b"a folder of theirs named as ours set aside are",
    }
    ours = [thumbs / "256" / f"{name}.jpg", thumbs / "256" / ".tmp-k3j2.jpg", thumbs / "512" / ".DS_Store"]
    for path, data in [*theirs.items(), *((p, b"made here") for p in ours)]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def set_aside() -> list[Path]:
        return [p for p in tmp_path.iterdir() if p.name.startswith("thumbs-old-") and p.name != "thumbs-old-mine"]

    with Library(tmp_path) as lib:
        assert not lib.thumb_path(name, 256).exists()  # made again when next shown
        wait_for(lambda: not set_aside())
    for path, data in theirs.items():
        assert path.read_bytes() == data, path  # each where it was
    assert not any(p.exists() for p in ours)
    assert (thumbs / store.THUMBS_MARK).read_text().strip() == store.THUMBS_FORMAT


def test_thumb_path(lib: Library) -> None:
    p = lib.thumb_path("5d5a2c0e-4b1f-4c56-9a0e-1f2e3d4c5b6a", 256)
    assert p.parent.parent == lib.thumbs_dir and p.parent.name == "256"
    with pytest.raises(ValueError):
        lib.thumb_path("../x", 256)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Library(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "library.sqlite")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(LibraryError):
        Library(tmp_path)


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.sqlite", isolation_level=None)
    assert migrate(conn) == 0
    assert migrate(conn) == SCHEMA_VERSION
    conn.close()


def test_closed_library_refuses(tmp_path: Path) -> None:
    library = Library(tmp_path)
    library.close()
    with pytest.raises(LibraryError):
        library.count()


def test_ten_thousand_rows(lib: Library) -> None:
    conn = lib._conn()
    base = T0
    rows = [
        (
            f"{i:08d}-0000-4000-8000-000000000000",
            f"{i:08d}-0000-4000-8000-000000000000.png",
            "PNG",
            1024,
            1024,
            ("1:1", "16:9")[i % 2],
            f"prompt {i} {'fox' if i % 10 == 0 else 'owl'}",
            metadata.iso_utc(base + timedelta(seconds=i)),
            i % 7 == 0,
        )
        for i in range(10_000)
    ]
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO images (image_uuid, file_name, format, width, height, ratio, prompt, created_at, favourite) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.execute("COMMIT")
    timings = {}
    for label, fn in {
        "ids()": lambda: lib.ids(),
        "count()": lambda: lib.count(),
        "ids(search)": lambda: lib.ids(search="fox"),
        "ids(fav, ratio)": lambda: lib.ids(favourites_only=True, ratio="16:9"),
        "entries(limit=200)": lambda: lib.entries(limit=200),
    }.items():
        start = time.perf_counter()
        fn()
        timings[label] = (time.perf_counter() - start) * 1000
    assert len(lib.ids()) == 10_000 and lib.count(search="fox") == 1000
    assert lib.ids()[0] == 10_000  # newest first
    start = time.perf_counter()
    report = lib.reconcile()  # every file is missing: stat-only pass over 10,000 rows
    timings["reconcile()"] = (time.perf_counter() - start) * 1000
    assert len(report.newly_missing) == 10_000
    print(" ".join(f"{k}={v:.1f}ms" for k, v in timings.items()))


def test_entries_are_hashable(lib: Library) -> None:
    entry = lib.save(image())
    assert {entry, lib.get(entry.id)} == {entry}


def test_images_folder_deleted_while_open_is_made_again_and_its_rows_shown_missing(lib: Library) -> None:
    from krea_desktop.library.saving import check_writable

    first = lib.save(image("before"))
    import shutil

    shutil.rmtree(lib.images_dir)  # by hand, while the window is open
    check_writable(lib)  # generating goes on: nothing refused before sending
    after = lib.save(image("after"))
    assert after.path.is_file()
    report = lib.reconcile()
    assert report.newly_missing == [first.id]
    kept = lib.get(first.id)
    assert kept is not None and kept.missing and kept.prompt == "before"
    back = lib.get(after.id)
    assert back is not None and not back.missing


def test_a_library_folder_gone_is_said_in_one_sentence_and_not_made_again(tmp_path: Path) -> None:
    import shutil

    library = Library(tmp_path / "drive" / "lib")
    try:
        entry = library.save(image("on a drive"))
        shutil.rmtree(tmp_path / "drive")  # the drive taken away
        with pytest.raises(LibraryError) as err:
            library.reconcile()
        said = str(err.value)
        assert said.count(". ") == 0 and said.endswith(".") and "no longer there" in said
        assert not (tmp_path / "drive").exists()  # nothing made where its images were
        with pytest.raises(OSError):
            library.save(image("not kept here"))
        assert not (tmp_path / "drive").exists()
        assert entry.id
    finally:
        library.close()


@pytest.mark.parametrize("rebuild", [True, False])
def test_favourites_still_readable_in_a_damaged_index_come_back_with_the_rebuild(tmp_path: Path, rebuild: bool) -> None:
    root = tmp_path / "lib"
    with Library(root) as library:
        saved = [library.save(image(f"kept {i}", seed=i)) for i in range(4)]
        library.set_favourite([saved[1].id, saved[3].id], True)
    conn = sqlite3.connect(root / "library.sqlite")
    conn.execute("DROP TABLE reference_uploads")  # a part of it unreadable: the whole index is damaged
    conn.commit()
    conn.close()
    library = Library(root, rebuild=rebuild)
    try:
        assert library.notice is not None and "kept aside" in library.notice
        if not rebuild:
            library.reconcile()  # the window's rebuild, on a worker
        assert library.count() == 4
        assert sorted(e.prompt for e in library.entries(favourites_only=True)) == ["kept 1", "kept 3"]
        library.reconcile()  # once given back, not again: an unmarked one stays unmarked
        (first,) = [e for e in library.entries() if e.prompt == "kept 1"]
        library.set_favourite([first.id], False)
        library.reconcile()
        assert [e.prompt for e in library.entries(favourites_only=True)] == ["kept 3"]
    finally:
        library.close()


def test_a_damaged_page_in_the_middle_of_the_index_is_found_and_rebuilt_with_the_favourites_after_it(
    tmp_path: Path,
) -> None:
    """A bad sector in the middle of the index's table went unnoticed at the opening (which
    reads the newest row and the gallery's order), new images then could not be indexed,
    and a rebuild read the favourites in one walk of the table, which broke off at the
    damaged page and lost every one after it."""
    root = tmp_path / "lib"
    with Library(root) as library:
        saved = [library.save(image(f"p{i}", seed=i)) for i in range(240)]
        library.set_favourite([e.id for e in saved[::5]], True)
        assert library.check_index() is None  # a healthy index: nothing said, nothing noted
    index = root / "library.sqlite"
    damage_a_page_of_the_table(index, saved[120].image_uuid)
    # What can still be read of the damaged index, a row at a time.
    readable: set[str] = set()
    conn = sqlite3.connect(f"{index.as_uri()}?mode=ro", uri=True)
    for e in saved[::5]:
        with contextlib.suppress(sqlite3.Error):
            if conn.execute("SELECT image_uuid FROM images NOT INDEXED WHERE rowid = ?", (e.id,)).fetchone():
                readable.add(e.image_uuid)
    conn.close()
    assert 0 < len(readable) < len(saved[::5])  # some lost with the page, the others after it
    with Library(root) as library:
        assert library.notice is None  # the opening reads too little of it to tell
        assert library.check_index() == store.DAMAGED_INDEX  # the whole of it, beside the window
    library = Library(root)  # the next start
    try:
        assert library.notice is not None and "kept aside" in library.notice
        library.reconcile()
        assert library.count() == 240 and library.check_index() is None
        assert {e.image_uuid for e in library.entries(favourites_only=True)} >= readable
        library.save(image("after", seed=999))  # new images are indexed again
    finally:
        library.close()
    with Library(root) as library:  # and once rebuilt, the index is not set aside again
        assert library.notice is None and library.count() == 241


def test_a_write_that_meets_a_damaged_page_says_so_and_the_next_opening_rebuilds(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    with Library(root) as library:
        saved = [library.save(image(f"p{i}", seed=i)) for i in range(120)]
    damage_a_page_of_the_table(root / "library.sqlite", saved[60].image_uuid)
    with Library(root) as library:
        with pytest.raises(LibraryError) as said:
            library.set_favourite([saved[60].id], True)
        assert str(said.value) == store.DAMAGED_INDEX  # not "could not be written (malformed)"
    with Library(root) as library:  # the next start: set aside and rebuilt from the files
        assert library.notice is not None and "kept aside" in library.notice
        assert library.count() == 120 and library.check_index() is None


def test_a_search_that_meets_a_damaged_search_index_answers_without_it(tmp_path: Path) -> None:
    """A bad sector in the prompts' search index made every search of three letters or
    more raise (SQLite's "malformed"), key after key, until a restart."""
    root = tmp_path / "lib"
    with Library(root) as library:
        saved = [library.save(image(f"harbour at dawn {i}" if i % 2 else f"field {i}", seed=i)) for i in range(200)]
    damage_every_page_of(root / "library.sqlite", "images_fts_data")
    harbours = [e.id for e in saved[1::2]][::-1]  # newest first
    with Library(root) as library:
        assert library.has_fts and library.notice is None
        assert library.ids(search="harbour") == harbours  # the prompts read without the search index
        assert library.count(search="DAWN harbour") == 100
        assert [e.id for e in library.entries(search="harbour", limit=3)] == harbours[:3]
        assert library.count(search="field 10") == sum("10" in f"field {i}" for i in range(0, 200, 2))  # both words
        assert (root / "library.sqlite.damage-found").is_file()  # noted: the next start rebuilds it
    with Library(root) as library:
        assert library.notice is not None and "kept aside" in library.notice
        library.reconcile()
        assert (
            library.has_fts
            and library.ids(search="harbour") == [e.id for e in library.entries(search="harbour")]
            and library.count(search="harbour") == 100
        )


def test_a_filter_that_meets_damage_elsewhere_says_so_in_one_sentence(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    with Library(root) as library:
        for i in range(200):
            library.save(image(f"p{i}", ratio="16:9" if i % 3 else "1:1", seed=i))
    damage_every_page_of(root / "library.sqlite", "images_by_ratio")
    with Library(root) as library:
        for read in (lambda: library.ids(ratio="1:1"), lambda: library.count(ratio="1:1")):
            with pytest.raises(LibraryError) as said:
                read()
            assert str(said.value) == store.DAMAGED_INDEX  # not sqlite3's "malformed"
        assert library.count() == 200 and len(library.ids()) == 200  # what does not meet it still answers
        assert (root / "library.sqlite.damage-found").is_file()


def test_an_index_that_is_no_database_at_all_is_not_read_id_by_id_for_its_favourites(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Its header zeroed, every read of it fails, its highest id with them: the salvage
    read two million ids one at a time, 35 s on the window's thread."""
    root = tmp_path / "lib"
    with Library(root) as library:
        for i in range(20):
            library.save(image(f"kept {i}", seed=i))
    index = root / "library.sqlite"
    data = bytearray(index.read_bytes())
    data[:100] = bytes(100)
    index.write_bytes(bytes(data))
    with caplog.at_level("WARNING"), Library(root) as library:
        assert library.notice is not None and "kept aside" in library.notice and library.count() == 20
    tried = [int(m.group(1)) for r in caplog.records if (m := re.search(r"; (\d+) rows unreadable", r.getMessage()))]
    assert tried and max(tried) <= store._SALVAGE_GIVE_UP + store._SALVAGE_STEP


def test_a_damage_mark_of_a_process_still_running_leaves_the_index_it_has_open(tmp_path: Path) -> None:
    """The window marked its index damaged; a command opening the library beside it set
    the index aside from under the window, whose writes then went into the copy."""
    root = tmp_path / "lib"
    with Library(root) as library:
        library.save(image("kept"))
    mark = root / f"library.sqlite{store.DAMAGE_MARK_SUFFIX}"
    window = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        identity = fsutil.process_identity(window.pid) or ""
        mark.write_text(f"{window.pid} {identity}\n*** in database main ***")
        with Library(root) as beside:  # the command, while the window runs
            assert beside.notice is None and beside.count() == 1
        assert mark.is_file()
    finally:
        window.kill()
        window.wait()
    with Library(root) as library:  # the window's next start
        assert library.notice == (
            "The library index was damaged (found by its check at the last start), so it was kept aside as "
            f"{library.notice.split(' kept aside as ', 1)[1].split(' and ', 1)[0]} and rebuilt from the images folder."
        )
        assert not mark.exists() and library.count() == 1


def test_a_damage_mark_goes_with_an_index_deleted_by_hand(tmp_path: Path) -> None:
    """Deleted by hand, the damaged index is made again from the files; the mark stayed,
    and the next start set the new, healthy index aside."""
    root = tmp_path / "lib"
    with Library(root) as library:
        library.save(image("kept"))
    (root / f"library.sqlite{store.DAMAGE_MARK_SUFFIX}").write_text(f"{os.getpid()}\nPage 39: damaged")
    for name in ("library.sqlite", "library.sqlite-wal", "library.sqlite-shm"):
        (root / name).unlink(missing_ok=True)
    with Library(root) as library:
        assert library.notice is not None and "was missing" in library.notice and library.count() == 1
    assert not (root / f"library.sqlite{store.DAMAGE_MARK_SUFFIX}").exists()
    with Library(root) as library:
        assert library.notice is None and library.count() == 1


def test_favourites_of_a_damaged_index_survive_a_rebuild_cut_short(tmp_path: Path) -> None:
    """The window opens the library, sets the damaged index aside, and is killed before its
    rebuild ends: the next start finds a healthy new index and must still give them back."""
    root = tmp_path / "lib"
    with Library(root) as library:
        saved = [library.save(image(f"kept {i}", seed=i)) for i in range(3)]
        library.set_favourite([saved[0].id, saved[2].id], True)
    conn = sqlite3.connect(root / "library.sqlite")
    conn.execute("DROP TABLE reference_uploads")
    conn.commit()
    conn.close()
    cut_short = Library(root, rebuild=False)  # the window's open; its rebuild never runs
    assert cut_short.notice is not None and "kept aside" in cut_short.notice
    cut_short.close()
    library = Library(root, rebuild=False)
    try:
        assert library.notice is None  # the new index is healthy: nothing to set aside again
        library.reconcile()  # the next start's check of the folder
        assert library.count() == 3
        assert sorted(e.prompt for e in library.entries(favourites_only=True)) == ["kept 0", "kept 2"]
        assert not list(root.glob("*.favourites.json"))  # given back: not again
        (first,) = [e for e in library.entries() if e.prompt == "kept 0"]
        library.set_favourite([first.id], False)
    finally:
        library.close()
    with Library(root) as again:
        again.reconcile()
        assert [e.prompt for e in again.entries(favourites_only=True)] == ["kept 2"]


@pytest.mark.parametrize("between_checks", [False, True])
def test_a_file_renamed_in_the_images_folder_keeps_its_row(lib: Library, between_checks: bool) -> None:
    entry = lib.save(image("renamed by hand"))
    other = lib.save(image("left alone", seed=2))
    lib.set_favourite([entry.id], True)
    renamed = lib.images_dir / "sunset.png"
    if between_checks:  # seen missing first (moved out), then back under another name
        outside = lib.root / "elsewhere.png"
        entry.path.rename(outside)
        assert lib.reconcile().newly_missing == [entry.id]
        outside.rename(renamed)
    else:
        entry.path.rename(renamed)
    report = lib.reconcile()
    assert report.indexed == [] and report.newly_missing == [] and report.found_again == [entry.id]
    assert lib.count() == 2
    moved = lib.get(entry.id)
    assert moved is not None and moved.file_name == "sunset.png" and not moved.missing
    assert moved.favourite and moved.prompt == "renamed by hand" and moved.created_at == entry.created_at
    assert lib.get(other.id) == other


def test_a_renamed_favourite_keeps_its_mark_through_a_rebuild_of_the_index(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    with Library(root) as library:
        entry = library.save(image("renamed, then rebuilt"))
        library.save(image("left alone", seed=2))
        library.set_favourite([entry.id], True)
        entry.path.rename(library.images_dir / "sunset.png")
        library.reconcile()
    conn = sqlite3.connect(root / "library.sqlite")
    conn.execute("DROP TABLE reference_uploads")
    conn.commit()
    conn.close()
    with Library(root) as library:
        assert [e.file_name for e in library.entries(favourites_only=True)] == ["sunset.png"]


def test_many_files_renamed_at_once_are_matched_in_one_pass(lib: Library) -> None:
    entries = [lib.save(image(f"n{i}", seed=i)) for i in range(300)]
    for e in reversed(entries):  # renamed in another order than their names'
        e.path.rename(lib.images_dir / f"renamed-{e.id:04d}.png")
    report = lib.reconcile()
    assert report.indexed == [] and report.newly_missing == []
    assert report.found_again == sorted(e.id for e in entries)
    assert all(not e.missing and e.file_name.startswith("renamed-") for e in lib.entries())


def test_a_copy_of_an_image_whose_row_is_there_gets_a_row_of_its_own(lib: Library) -> None:
    entry = lib.save(image("copied"))
    (lib.images_dir / "copy.png").write_bytes(entry.path.read_bytes())
    report = lib.reconcile()
    assert len(report.indexed) == 1 and lib.count() == 2
    kept = lib.get(entry.id)
    assert kept is not None and kept.file_name == entry.file_name and not kept.missing


def test_another_tasks_image_under_an_imageuuid_already_kept_is_kept_too(lib: Library) -> None:
    from dataclasses import replace

    first = image("the first task", seed=1)
    kept = lib.save(first)
    again = replace(image("a second task", seed=2, fmt="JPG"), image_uuid=first.image_uuid)  # the service repeated it
    second = lib.save(again)
    assert second.id != kept.id and second.image_uuid != first.image_uuid
    assert second.task_uuid == again.task_uuid and second.prompt == "a second task" and second.path.is_file()
    assert lib.get(kept.id) == kept and kept.path.is_file()
    assert lib.save(again) == second  # the same image of the same task: kept once
    assert lib.save(first) == kept
    assert lib.count() == 2


def test_reconcile_empties_its_maps_of_every_file_and_row_before_returning(
    lib: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _fill(lib)
    emptied: list[tuple[str, int, int]] = []
    real = store._empty_gradually

    def watched(items: dict[Any, Any] | set[Any]) -> None:
        before = len(items)
        real(items)
        emptied.append((type(items).__name__, before, len(items)))

    monkeypatch.setattr(store, "_empty_gradually", watched)
    lib.reconcile()
    # one map of the files on disk, one set of the names with a row: every one of them,
    # emptied entry by entry (freed at once, 100,000 of them held Python's lock for 25 ms)
    assert emptied == [("dict", len(ids), 0), ("set", len(ids), 0)]


def test_emptying_gradually_empties_dicts_and_sets() -> None:
    names = {f"{i}.png": (i, float(i)) for i in range(1000)}
    seen = set(names)
    store._empty_gradually(names)
    store._empty_gradually(seen)
    assert names == {} and seen == set()


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="needs a file system that takes any bytes in a name")
def test_a_file_whose_name_is_no_utf8_is_left_out_and_every_other_file_is_indexed(tmp_path: Path) -> None:
    """A name from an old archive or a FAT disk ("caf\\xe9.png"): the index cannot store
    it. It is left out, said, and the folder's other new files are indexed all the same;
    an index being rebuilt from the folder is too."""
    lib = Library(tmp_path / "data")
    odd = os.fsencode(lib.images_dir) + b"/caf\xe9.png"
    with open(odd, "wb") as f:
        f.write(encoded("PNG", (12, 8)))
    (lib.images_dir / "dropped-in.png").write_bytes(encoded("PNG", (12, 8)))
    report = lib.reconcile()
    assert report.skipped == ["caf\ufffd.png"] and len(report.indexed) == 1
    assert [e.file_name for e in lib.entries()] == ["dropped-in.png"]
    lib.close()
    (tmp_path / "data" / "library.sqlite").write_bytes(b"not an index at all")
    with Library(tmp_path / "data") as rebuilt:
        assert [e.file_name for e in rebuilt.entries()] == ["dropped-in.png"]


def test_two_hand_placed_files_with_one_stem_are_both_indexed(lib: Library) -> None:
    """ "sunset.png" and "sunset.jpg": both images, each under an id of its own; the one
    the stem's id went to keeps it."""
    (lib.images_dir / "sunset.png").write_bytes(encoded("PNG", (12, 8)))
    (lib.images_dir / "sunset.jpg").write_bytes(encoded("JPG", (12, 8)))
    report = lib.reconcile()
    assert len(report.indexed) == 2 and report.skipped == []
    ids = {e.file_name: e.image_uuid for e in lib.entries()}
    assert ids["sunset.jpg"] == "sunset" and ids["sunset.png"].startswith("file-")
    assert lib.reconcile().changed is False  # nothing read again at the next check


def test_a_file_replaced_put_back_different_or_made_readable_is_read_whole_again(lib: Library) -> None:
    """The check of the folder read a known file's size alone: a different image under
    its name (replaced in place, or put back while missing) kept the old prompt, size,
    ratio and references in the index, and its old cached thumbnail; a damaged file put
    right stayed damaged, 0x0, for good."""
    poster = lib.save(image("a square red poster"), created_at=T0)
    parent = lib.save(image("the parent"), created_at=T0 + timedelta(hours=1))
    other = Library(lib.root.parent / "other")
    banner_req = GenerationRequest(prompt="a wide blue banner", ratio="16:9", seed=3)
    banner_record = banner_req.describe().replace(references=(ReferenceRecord("u", 0.8, "p.png", parent.image_uuid),))
    banner = GeneratedImage(
        task_uuid=banner_req.task_uuid, image_uuid=str(uuid.uuid4()), data=encoded("PNG", (16, 9)), format="PNG",
        width=1568, height=882, seed=3, cost=0.003, nsfw=False, record=banner_record,
    )  # fmt: skip
    made = other.save(banner)
    other.close()
    thumb = lib.thumb_path(poster.image_uuid, 256)
    thumb.parent.mkdir(parents=True, exist_ok=True)
    thumb.write_bytes(b"the old picture")
    # Put back, while missing, as another picture (older than its cached thumbnail).
    poster.path.unlink()
    assert lib.reconcile().newly_missing == [poster.id]
    poster.path.write_bytes(made.path.read_bytes())
    os.utime(poster.path, (time.time() - 86400, time.time() - 86400))
    report = lib.reconcile()
    assert report.found_again == [poster.id] and report.rewritten == [poster.id]
    row = lib.get(poster.id)
    assert row is not None and (row.prompt, row.width, row.height) == ("a wide blue banner", 16, 9)
    assert row.created_at == poster.created_at and row.image_uuid == poster.image_uuid  # its place kept
    assert lib.ids(search="banner") == [poster.id] and lib.ids(search="poster") == []
    assert [child for child, _ in lib.children(parent.image_uuid)] == [poster.id]  # its references now
    assert not thumb.exists()  # made again from the picture as it is
    # Damaged, then put right: read whole again, and said.
    good = poster.path.read_bytes()
    poster.path.write_bytes(good[:40])
    assert lib.reconcile().broken == [poster.id]
    assert lib.reconcile().changed is False  # still damaged: nothing new to say
    poster.path.write_bytes(good)
    report = lib.reconcile()
    assert report.rewritten == [poster.id] and report.broken == []
    row = lib.get(poster.id)
    assert row is not None and not row.broken and row.prompt == "a wide blue banner"


def test_a_file_saved_again_without_its_record_keeps_the_rows_parameters(lib: Library) -> None:
    """An editor that keeps no metadata saved the image again: what the file says (its
    size, format, bytes) is read again, and the prompt, seed and references stand."""
    entry = lib.save(image("a red fox in snow", seed=42), created_at=T0)
    entry.path.write_bytes(encoded("PNG", (30, 20)))  # no record in it
    report = lib.reconcile()
    assert report.rewritten == [entry.id]
    row = lib.get(entry.id)
    assert row is not None and (row.prompt, row.seed, row.width, row.height) == ("a red fox in snow", 42, 30, 20)
    assert len(row.references) == 1


def test_a_damaged_file_is_read_again_only_when_it_changes(lib: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every check (each start, each F5) decoded every damaged file again, with the index's
    write lock held; and an empty file was said to be damaged at every check."""
    damaged = lib.save(image("cut short"), created_at=T0)
    empty = lib.save(image("emptied"), created_at=T0 + timedelta(hours=1))
    damaged.path.write_bytes(damaged.path.read_bytes()[:40])
    empty.path.write_bytes(b"")
    assert sorted(lib.reconcile().broken) == sorted([damaged.id, empty.id])
    decoded: list[Path] = []
    check = store._check_decodes
    monkeypatch.setattr(store, "_check_decodes", lambda path: decoded.append(path) or check(path))
    for _ in range(3):
        assert lib.reconcile().changed is False
    assert decoded == []
    os.utime(damaged.path, (time.time() + 5, time.time() + 5))  # written again, the same size
    assert lib.reconcile().changed is False and decoded == [damaged.path]  # looked at, still damaged


@pytest.mark.parametrize("folder", ["images", "thumbs"])
def test_a_library_folder_that_is_a_link_to_a_drive_not_connected_is_named_not_the_data_folder(
    tmp_path: Path, folder: str
) -> None:
    """The images kept on another drive through a link: with the drive not connected, the
    data folder itself was said to be "a file, not a folder" (move that file away)."""
    root = tmp_path / "lib"
    Library(root).close()
    shutil.rmtree(root / folder)
    (root / folder).symlink_to(tmp_path / "usb" / folder)
    with pytest.raises(LibraryError) as err:
        Library(root)
    assert str(err.value) == (
        f"The library's {folder} folder {root / folder} cannot be reached: {root / folder} is a link to "
        f"{tmp_path / 'usb' / folder}, which is not there (a drive not connected?); connect it or set "
        "KREA_DESKTOP_DATA_DIR."
    )
    assert (root / folder).is_symlink()  # left as it was
    (root / folder).unlink()
    (root / folder).write_bytes(b"")  # a file where the folder goes
    with pytest.raises(LibraryError, match=rf"^The library's {folder} folder .* is a file, not a folder; "):
        Library(root)


def test_a_file_given_the_name_of_one_renamed_before_it_is_indexed_not_skipped(lib: Library) -> None:
    """A file put in by hand keeps the id its first name made when renamed (its row follows
    it); a new picture given that name was never indexed, said to have "a name that cannot
    be stored", at every check."""
    Image.new("RGB", (40, 30), (200, 0, 0)).save(lib.images_dir / "My Photo.png")
    assert len(lib.reconcile().indexed) == 1
    os.rename(lib.images_dir / "My Photo.png", lib.images_dir / "Holiday.png")
    assert len(lib.reconcile().found_again) == 1
    for n in range(2):  # and again, once the second has been renamed in turn
        Image.new("RGB", (40, 30), (0, 0, 200 - n)).save(lib.images_dir / "My Photo.png")
        report = lib.reconcile()
        assert report.skipped == [] and len(report.indexed) == 1
        if n == 0:
            os.rename(lib.images_dir / "My Photo.png", lib.images_dir / "Beach.png")
            assert len(lib.reconcile().found_again) == 1
    names = sorted(e.file_name for e in lib.entries())
    assert names == ["Beach.png", "Holiday.png", "My Photo.png"]
    assert len({e.image_uuid for e in lib.entries()}) == 3


def test_an_index_that_is_a_link_to_nothing_is_said_in_one_sentence_and_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    (root / "library.sqlite").symlink_to(tmp_path / "drive" / "library.sqlite")  # a drive not connected
    with pytest.raises(LibraryError) as err:
        Library(root)
    said = str(err.value)
    assert "is a link to" in said and "which is not there" in said and said.count(". ") == 0
    assert (root / "library.sqlite").is_symlink() and not (tmp_path / "drive").exists()  # nothing made in its place


def test_a_file_past_the_size_checked_is_indexed_as_broken_without_reading_it_whole(
    lib: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link in the images folder to a disk image of gigabytes took a check of the folder
    minutes of reading, to hash a file that cannot be one of the library's images."""
    monkeypatch.setattr(store, "MAX_CHECK_BYTES", 4096)
    read: list[Path] = []
    real = store._file_sha256
    monkeypatch.setattr(store, "_file_sha256", lambda path: read.append(path) or real(path))
    (lib.images_dir / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 8192)
    Image.new("RGB", (8, 8), (20, 90, 200)).save(lib.images_dir / "small.png")
    report = lib.reconcile()
    assert len(report.indexed) == 2
    rows = {e.file_name: e for e in lib.entries()}
    assert rows["huge.png"].broken and not rows["small.png"].broken
    assert [p.name for p in read] == ["small.png"]


def test_a_picture_past_the_pixels_checked_is_checked_without_decoding_it_whole_not_called_damaged(
    lib: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 108-megapixel photo put in the images folder by hand was indexed as damaged (the
    gallery's broken tile, "damaged: it does not decode" in the viewer) for its size alone."""
    monkeypatch.setattr(store, "MAX_CHECK_PIXELS", 64 * 48 - 1)
    picture = Image.effect_noise((64, 48), 60).convert("RGB")
    for name, fmt in (("photo.jpg", "JPEG"), ("scan.png", "PNG"), ("shot.webp", "WEBP")):
        picture.save(lib.images_dir / name, fmt)
    for name in ("photo.jpg", "scan.png"):  # and two of them cut short, as a copy that stopped
        data = (lib.images_dir / name).read_bytes()
        (lib.images_dir / f"cut-{name}").write_bytes(data[: len(data) * 2 // 3])
    decoded: list[tuple[int, int]] = []
    real_load = ImageFile.ImageFile.load

    def load(im: Any) -> Any:
        decoded.append(im.size)
        return real_load(im)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    report = lib.reconcile()
    assert len(report.indexed) == 5
    rows = {e.file_name: e for e in lib.entries()}
    assert [name for name, e in sorted(rows.items()) if e.broken] == ["cut-photo.jpg", "cut-scan.png"]
    assert (rows["photo.jpg"].width, rows["photo.jpg"].height) == (64, 48)
    assert (rows["scan.png"].format, rows["shot.webp"].format) == ("PNG", "WEBP")
    assert (64, 48) not in decoded  # the JPEGs decoded at an eighth, nothing whole


def test_a_picture_past_pillows_own_limit_is_taken_on_its_header_not_called_damaged(
    lib: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pillow refuses to open a picture of more than about 179 megapixels at all
    (DecompressionBombError): such a photo was indexed as damaged."""
    import krea_desktop.pillow  # noqa: F401  (its limits are set on import)

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 48 // 2 - 1)  # as 179 megapixels are to the real one
    for name, fmt in (("pano.jpg", "JPEG"), ("scan.png", "PNG"), ("shot.webp", "WEBP")):
        Image.effect_noise((64, 48), 60).convert("RGB").save(lib.images_dir / name, fmt)
    report = lib.reconcile()
    assert len(report.indexed) == 3 and report.broken == []
    rows = {e.file_name: (e.format, e.width, e.height, e.broken) for e in lib.entries()}
    assert rows == {
        "pano.jpg": ("JPG", 64, 48, False),
        "scan.png": ("PNG", 64, 48, False),
        "shot.webp": ("WEBP", 64, 48, False),
    }


def test_a_file_another_process_indexes_while_reconcile_runs_is_indexed_not_left_out(
    lib: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A generate beside the window saved a file and indexed it between the window's look
    at the folder and its own indexing: the window said the file was "not in the gallery
    because its name cannot be stored"."""
    other = Library(lib.root.parent / "other")
    saved = other.save(image("made by a generate beside the window"))
    other.close()
    (lib.images_dir / saved.file_name).write_bytes(saved.path.read_bytes())  # renamed into place
    check_decodes = store._check_decodes
    indexed_beside: list[int] = []
    asked: list[Path] = []

    def meanwhile(path: Path) -> Any:
        asked.append(path)
        if len(asked) == 1:  # the other process indexes it now
            with Library(lib.root) as beside:
                indexed_beside.extend(beside.reconcile().indexed)
        return check_decodes(path)

    monkeypatch.setattr(store, "_check_decodes", meanwhile)
    report = lib.reconcile()
    assert len(indexed_beside) == 1
    assert report.skipped == []
    assert report.indexed == indexed_beside  # the window shows it as a new image
    entry = lib.get(indexed_beside[0])
    assert entry is not None and entry.prompt == "made by a generate beside the window"
    assert lib.count() == 1


def test_without_sqlite_s_result_code_damage_is_told_by_its_words_and_a_search_index_by_a_check(
    tmp_path: Path,
) -> None:
    # Python 3.10's sqlite3 gives no result code: "malformed" is damage; a search index
    # that cannot be opened ("vtable constructor failed") is said alike when the index is
    # only busy, so it is damage only where SQLite's own check of the file finds some (a
    # busy index taken for a damaged one would be set aside and rebuilt at the next start).
    from krea_desktop.library.store import _is_damage

    assert _is_damage(sqlite3.DatabaseError("database disk image is malformed"))
    assert not _is_damage(sqlite3.DatabaseError("database is locked"))
    unopened = sqlite3.DatabaseError("vtable constructor failed: images_fts")
    root = tmp_path / "lib"
    with Library(root) as library:
        for i in range(200):
            library.save(image(f"harbour at dawn {i}", seed=i))
        assert not library._damaged(unopened)
    damage_every_page_of(root / "library.sqlite", "images_fts_data")
    with Library(root) as library:
        assert library._damaged(unopened)

"""The image library: files in ``images/`` plus a SQLite index, safe to use from several threads.

Layout of the library folder::

    images/<imageUUID>.<ext>   every saved image, with its generation record embedded
    library.sqlite             the index (WAL journal), one row per image
    thumbs/<size>/<imageUUID>.jpg
    thumbs/format              which way the thumbnails were made (see THUMBS_FORMAT)

An image is written to a temporary file, fsync'd and renamed into place, and only then
indexed, so anything that reads the index finds a complete file behind every row.

``synchronous=FULL``: in WAL mode that costs one fsync of the WAL per commit. The library
commits once per saved image (a few per second at most), so the cost is invisible, and in
exchange a row that :meth:`Library.save` has returned survives a power cut, matching the
fsync'd file it points to. (NORMAL could lose the last commits, leaving files that the
next start-up would have to re-index from their embedded records.)
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import sqlite3
import stat
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from dataclasses import replace as replace_field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from krea_desktop.api import spec
from krea_desktop.api.record import (
    GenerationRecord,
    ReferenceRecord,
    derive_ratio,
    iso_utc,
    parse_record,
    record_json_text,
)
from krea_desktop.fsutil import atomic_write, is_abandoned, owned_name, process_identity, still_running
from krea_desktop.library.schema import (
    ORDERING_INDEX,
    SCHEMA_VERSION,
    LibraryBusy,
    LibraryError,
    ensure_indexes,
    migrate,
)

if TYPE_CHECKING:  # an annotation only: the window reads its first rows without it
    from krea_desktop.api.results import GeneratedImage

__all__ = ["SCHEMA_VERSION", "Library", "LibraryBusy", "LibraryEntry", "LibraryError", "migrate"]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".png": "PNG", ".jpg": "JPG", ".jpeg": "JPG", ".webp": "WEBP"}
TEMP_PREFIX = ".tmp-"
INDEX_WRITTEN_AGAIN = (
    "The library index was deleted while Krea Desktop had it open, so it was written again with everything in it."
)
INDEX_REPLACED = (
    "The library index was replaced while Krea Desktop had it open: the one in its place is used from now on, "
    "and the one that was open was kept as {name}."
)
INDEX_SET_ASIDE = (
    "The library index was replaced while Krea Desktop had it open by a file that is not one, so that file was "
    "kept as {name} and the index written again with everything in it."
)
INDEX_NOT_WRITTEN_AGAIN = (
    "The library index was deleted while Krea Desktop had it open and could not be written again ({reason}); "
    "nothing more is saved until it is: free some space or check the folder, and it is tried again at the next save."
)
# Files larger than this, or with more pixels, are not decoded when checking them.
MAX_CHECK_BYTES = 200 * 1024 * 1024
MAX_CHECK_PIXELS = 64 * 1024 * 1024

# The way thumbnails are made; those made another way (none of this mark, from versions
# that drew them before colour profiles, EXIF orientation and transparency were heeded:
# off colours, sideways, black where clear) are all made again, as they are shown.
THUMBS_FORMAT = "2"
THUMBS_MARK = "format"
_OLD_THUMBS = "thumbs-old-"

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
# The ids of files put into images/ by hand under names that are not ids of their own, in
# the namespace of this UUID (uuid is imported only then: it imports platform, 4 ms of a
# window's start).
_OWN_FILES = "6f0c5f2e-3b1d-4c8e-9a57-2d4b7e1f0a93"


def _repeated_id(task_uuid: str, image_uuid: str) -> str:
    """The image id of ``image_uuid`` of task ``task_uuid`` when another task's image has it."""
    import uuid

    return str(uuid.uuid5(uuid.UUID(_OWN_FILES), f"{task_uuid}/{image_uuid}"))


def _own_file_id(name: str) -> str:
    """The image id of a file put into images/ by hand as ``name``."""
    import uuid

    return f"file-{uuid.uuid5(uuid.UUID(_OWN_FILES), name)}"


def _free_own_file_id(conn: sqlite3.Connection, name: str) -> str | None:
    """An image id for a file put into images/ by hand as ``name`` that no row has: the
    one its name makes, or, when a row has that (its file renamed since, the row with
    it, and another file given the old name), one made from the name and a number."""
    for n in range(1000):
        image_id = _own_file_id(name if n == 0 else f"{name}\0{n}")
        if conn.execute("SELECT 1 FROM images WHERE image_uuid=?", (image_id,)).fetchone() is None:
            return image_id
    return None


def _all_of(clauses: list[str]) -> str:
    """``clauses`` joined by AND, nested as a balanced tree: SQLite refuses an expression
    more than 1,000 deep, and a chain of ANDs is as deep as it is long (a search of a
    thousand short words, each a LIKE)."""
    if len(clauses) <= 8:
        return " AND ".join(clauses)
    half = len(clauses) // 2
    return f"({_all_of(clauses[:half])}) AND ({_all_of(clauses[half:])})"


def _storable_name(name: str) -> bool:
    """Whether a file name from the folder can be kept in the index: not one whose bytes
    are no UTF-8 (Python hands those over with surrogates, which SQLite refuses)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_COLUMNS = (
    "id, image_uuid, task_uuid, file_name, format, width, height, ratio, prompt, creativity, seed, "
    "number_results, output_quality, refs, params, cost, nsfw, created_at, favourite, missing, broken, file_size, "
    # Whether the built-in simulator made the cost up (what the record says; NULL when it
    # does not say): read for the rows that have a cost, which is all it is shown with.
    "CASE WHEN cost IS NOT NULL AND json_valid(params) THEN json_extract(params, '$.simulated') END"
)


# Said when the check of the whole index (Library.check_index) finds damage: the index is
# set aside and rebuilt at the next opening, as one found damaged then is.
DAMAGED_INDEX = (
    "The library index is damaged in places; restart Krea Desktop to rebuild it from the images folder "
    "(favourites are kept)."
)
# Beside the index, named after it: its check found damage (the first problem SQLite named).
DAMAGE_MARK_SUFFIX = ".damage-found"
_SQLITE_CORRUPT = 11  # SQLite's result code for a damaged database file
BUSY_MESSAGE = "The library is busy: another Krea Desktop window or command is writing to it; try again in a moment."
DAMAGED_INFIX = ".damaged-"


T = TypeVar("T")


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    """Whether SQLite refused because the index file is damaged (its extended codes too;
    before Python 3.11, which does not give the code, its words for it)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # "database disk image is malformed", "malformed database schema (...)"
        return "malformed" in str(exc).lower()
    return code & 0xFF == _SQLITE_CORRUPT


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


_SQLITE_IOERR, _SQLITE_FULL = 10, 13  # SQLite's result codes (sqlite3 names them from Python 3.11 on)
_SQLITE_CANTOPEN, _SQLITE_IOERR_SHMOPEN = 14, 10 | (18 << 8)


def _disk_full(exc: sqlite3.Error, folder: Path) -> bool:
    """Whether ``exc`` is SQLite finding no room on the disk of ``folder``: said so
    (SQLITE_FULL), or an I/O error where the disk has no space left."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return "disk is full" in str(exc)
    if code & 0xFF == _SQLITE_FULL:
        return True
    if code & 0xFF == _SQLITE_IOERR:
        try:
            return shutil.disk_usage(folder).free < 1024 * 1024
        except OSError:
            return False
    return False


def _cannot_open_beside(exc: sqlite3.Error) -> bool:
    """Whether SQLite could not open a file it reads beside an index it has opened (its
    write-ahead log or shared memory): no file to open, rather than a damaged one."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return "unable to open database file" in str(exc)
    return code & 0xFF == _SQLITE_CANTOPEN or code == _SQLITE_IOERR_SHMOPEN


def _refused(exc: BaseException) -> bool:
    """Whether SQLite could not write (the disk, the folder's permissions, a damaged or
    busy file), as against a statement's mistake or a broken constraint (the code's)."""
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(
        exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError)
    )


def _write_failure(exc: sqlite3.Error) -> LibraryError:
    """A write to the index that SQLite refused, as a :class:`LibraryError` whose message
    says why in one sentence (a busy index is :class:`LibraryBusy`)."""
    if _is_busy(exc):
        return LibraryBusy(BUSY_MESSAGE)
    text = str(exc).lower()
    if "full" in text:
        return LibraryError("The disk holding the library index is full; free some space.")
    if "readonly" in text or "read-only" in text:
        return LibraryError(
            "The library index cannot be written to; check the permissions of the data folder and of library.sqlite."
        )
    if "i/o" in text:
        return LibraryError("The disk holding the library index reported an error; check the disk.")
    return LibraryError(f"The library index could not be written ({exc}).")


@contextmanager
def _refusals_said() -> Iterator[None]:
    """What SQLite refuses within (see :func:`_refused`) raised as :func:`_write_failure`."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if _refused(exc):
            raise _write_failure(exc) from exc
        raise


def _is_size_folder(path: Path) -> bool:
    """Whether ``path`` is a folder of thumbnails of one size, as :meth:`Library.thumb_path`
    names them."""
    return path.name.isascii() and path.name.isdigit() and path.is_dir() and not path.is_symlink()


# Files a file manager leaves in any folder it shows; removed with the thumbnails.
_FOLDER_LITTER = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", ".directory"})


def _is_own_thumbnail(name: str) -> bool:
    """Whether a file named ``name`` in a size folder is one this app wrote there: a
    thumbnail (``<imageUUID>.jpg``) or one being written (``.tmp-XXXX.jpg``), or litter."""
    if name in _FOLDER_LITTER:
        return True
    if not name.endswith(".jpg"):
        return False
    return name.startswith(TEMP_PREFIX) or _SAFE_NAME.match(name[:-4]) is not None


def _remove_old_thumbnails(folders: list[Path], thumbs_dir: Path) -> None:
    """Remove the thumbnails set aside in ``folders`` (``thumbs-old-*``): the files this
    app writes in its size folders. Anything else found there (another program's, in a
    folder named as a size is) goes back where it was, in ``thumbs_dir``; what cannot go
    back stays, and so does the folder that holds it."""
    for folder in folders:
        try:
            for size_dir in [p for p in folder.iterdir() if _is_size_folder(p)]:
                with os.scandir(size_dir) as it:
                    entries = list(it)
                for de in entries:
                    if de.is_file(follow_symlinks=False) and _is_own_thumbnail(de.name):
                        with suppress(OSError):
                            os.unlink(de.path)
                        continue
                    home = thumbs_dir / size_dir.name
                    with suppress(OSError):
                        home.mkdir(exist_ok=True)
                        if not os.path.lexists(home / de.name):
                            os.rename(de.path, home / de.name)
                with suppress(OSError):
                    size_dir.rmdir()
            folder.rmdir()
        except OSError as exc:
            log.info("old thumbnails in %s stay for now: %s", folder, exc)


def _folder_problem(folder: Path, exc: OSError, root: Path | None = None) -> str:
    """Why ``folder`` (the data folder ``root``, or one of its own folders) could not be
    made or used, in a sentence."""
    try:
        return _folder_problem_found(folder, exc, root or folder)
    except OSError:  # the folder cannot even be looked at (another user's, a name too long)
        reason = exc.strerror or type(exc).__name__
        label = _folder_label(folder, root or folder)
        return f"{label} {folder} cannot be used ({reason}); check that it exists and that you may write to it."


def _folder_label(folder: Path, root: Path) -> str:
    return "The data folder" if folder == root else f"The library's {folder.name} folder"


def _folder_problem_found(folder: Path, exc: OSError, root: Path) -> str:
    label = _folder_label(folder, root)
    # A link to a place that is not there (a drive not mounted, say), the folder or one above it.
    dangling = next((p for p in (folder, *folder.parents) if p.is_symlink() and not p.exists()), None)
    if dangling is not None:
        target = os.readlink(dangling)
        return (
            f"{label} {folder} cannot be reached: {dangling} is a link to {target}, which is not there "
            "(a drive not connected?); connect it or set KREA_DESKTOP_DATA_DIR."
        )
    if isinstance(exc, (FileExistsError, NotADirectoryError)) or (folder.exists() and not folder.is_dir()):
        # The file in the way may be the folder itself or a folder above it.
        in_the_way = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), folder)
        if in_the_way != folder:
            return (
                f"{label} {folder} cannot be made: {in_the_way} is a file, not a folder; "
                "move that file away or set KREA_DESKTOP_DATA_DIR."
            )
        return f"{label} {folder} is a file, not a folder; move that file away or set KREA_DESKTOP_DATA_DIR."
    reason = exc.strerror or type(exc).__name__
    return f"{label} {folder} cannot be used ({reason}); check that it exists and that you may write to it."


@dataclass(frozen=True)
class LibraryEntry:
    id: int
    image_uuid: str
    task_uuid: str | None
    file_name: str
    format: str
    width: int
    height: int
    ratio: str | None
    prompt: str
    creativity: str | None
    seed: int | None
    number_results: int | None
    output_quality: int | None
    cost: float | None
    nsfw: bool | None
    created_at: str
    favourite: bool
    missing: bool
    broken: bool
    file_size: int | None
    record_json: str = field(repr=False, compare=False)  # the record as indexed, parsed on first use
    images_dir: Path = field(repr=False, compare=False)
    # The cost was made up by the built-in simulator (demo mode); None when the record does
    # not say (another tool's file, or one written before this was kept).
    simulated: bool | None = None

    @property
    def path(self) -> Path:
        return self.images_dir / self.file_name

    @cached_property
    def record(self) -> GenerationRecord:
        """How the image was made, as indexed (the columns, when the row has no record)."""
        try:
            record = parse_record(json.loads(self.record_json))
        except (ValueError, RecursionError):
            record = GenerationRecord()
        if record.is_empty:
            record = GenerationRecord(
                prompt=self.prompt,
                ratio=self.ratio,
                width=self.width or None,
                height=self.height or None,
                seed=self.seed,
                creativity=self.creativity,
                output_format=self.format,
                output_quality=self.output_quality,
                number_results=self.number_results,
                task_uuid=self.task_uuid,
                image_uuid=self.image_uuid,
                cost=self.cost,
                nsfw=self.nsfw,
                created_at=self.created_at,
            )
        return record

    @property
    def references(self) -> tuple[ReferenceRecord, ...]:
        return self.record.references

    def __hash__(self) -> int:  # the dict/list fields are not hashable; the identity is
        return hash((self.id, self.image_uuid))


@dataclass
class ReconcileReport:
    temp_files_removed: list[str] = field(default_factory=list)
    newly_missing: list[int] = field(default_factory=list)  # row ids whose file is gone
    found_again: list[int] = field(default_factory=list)  # row ids whose file came back (or under another name)
    indexed: list[int] = field(default_factory=list)  # new rows for files that had none
    broken: list[int] = field(default_factory=list)  # row ids whose file does not decode
    skipped: list[str] = field(default_factory=list)  # files that could not be indexed
    rewritten: list[int] = field(default_factory=list)  # row ids whose file changed in place

    @property
    def changed(self) -> bool:
        return bool(self.newly_missing or self.found_again or self.indexed or self.broken or self.rewritten)

    @property
    def redrawn(self) -> set[int]:
        """The known rows whose files are not as the gallery last drew them."""
        return {*self.newly_missing, *self.found_again, *self.broken, *self.rewritten}


# ---------------------------------------------------------------------------------------------
# Helpers


# Every id, newest first: the gallery's order, along ORDERING_INDEX.
_EVERY_ID = "SELECT id FROM images ORDER BY created_at DESC, id DESC"
_EVERY_ID_COUNTED = f"SELECT count(id) FROM images INDEXED BY {ORDERING_INDEX}"


def _has_index(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the index file has the index ``name`` (one written by an older version may not)."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)).fetchone() is not None


def _metadata() -> ModuleType:
    """The file formats' code (records embedded in PNG, JPEG and WebP, other tools'
    records): needed to save an image or index a new file, not to open the library and
    show it, so the window's first screen does not wait for it."""
    from krea_desktop.library import metadata

    return metadata


def _write_atomic(directory: Path, name: str, data: bytes) -> None:
    # The temporary name carries this process's id: another process's start-up check or
    # refresh leaves it alone while this process lives (see reconcile).
    atomic_write(directory / name, data, prefix=owned_name(TEMP_PREFIX), suffix=".part")


def _read_only(index: Path, *, timeout: float) -> sqlite3.Connection:
    """A connection that only reads ``index`` (what the opening's checks and the salvage
    read: nothing they do may write to an index that may be damaged)."""
    return sqlite3.connect(f"{index.as_uri()}?mode=ro", uri=True, timeout=timeout)


def _favourites_in(index: Path) -> set[tuple[str, str]]:
    """The favourites (imageUUID, file name) that can still be read from a damaged index
    (read-only), else none. The table is read a range of row ids at a time, and a range
    that meets a damaged page one row at a time: a walk that broke off at the first
    damaged page lost the favourites of every page after it."""
    found: set[tuple[str, str]] = set()
    try:
        conn = _read_only(index, timeout=1)
    except sqlite3.Error:
        return found
    # The table itself, not an index of it: the damage may be in an index.
    query = "SELECT image_uuid, file_name FROM images NOT INDEXED WHERE rowid BETWEEN ? AND ? AND favourite = 1"
    damaged = 0
    unread = 0  # ids unreadable one after another: past a damaged page's worth, the rest is too
    try:
        try:
            top = int(conn.execute("SELECT max(rowid) FROM images NOT INDEXED").fetchone()[0] or 0)
        except (sqlite3.Error, TypeError, ValueError):
            top = _SALVAGE_IDS  # the table's last page unreadable: as far as ids usually go
        for low in range(1, top + 1, _SALVAGE_STEP):
            if unread >= _SALVAGE_GIVE_UP:  # a file that is no index at all, read id by id
                break
            try:
                found.update((str(u), str(n)) for u, n in conn.execute(query, (low, low + _SALVAGE_STEP - 1)))
                unread = 0
            except sqlite3.Error:
                for row_id in range(low, low + _SALVAGE_STEP):
                    try:
                        found.update((str(u), str(n)) for u, n in conn.execute(query, (row_id, row_id)))
                        unread = 0
                    except sqlite3.Error:
                        damaged += 1
                        unread += 1
    except sqlite3.Error as exc:  # the connection itself gave up
        log.warning("favourites read from the damaged index %s: %d, then %s", index.name, len(found), exc)
    finally:
        conn.close()
    if damaged:
        log.warning(
            "favourites read from the damaged index %s: %d; %d rows unreadable", index.name, len(found), damaged
        )
    return found


_SALVAGE_STEP = 64  # row ids read at once from a damaged index
_SALVAGE_IDS = 1 << 21  # ids looked at when the damaged index cannot say its highest
_SALVAGE_GIVE_UP = 4096  # unreadable ids in a row after which the rest is taken to be too


def _file_time(mtime: float) -> str:
    """A file's modification time as a record time (a clock set to nonsense gives the epoch)."""
    try:
        return iso_utc(datetime.fromtimestamp(mtime, timezone.utc))
    except (ValueError, OverflowError, OSError):
        return iso_utc(datetime.fromtimestamp(0, timezone.utc))


def _check_decodes(path: Path) -> tuple[bool, str | None, int, int]:
    """Whether the file fully decodes (bounded), with its format and size. A picture of
    more than :data:`MAX_CHECK_PIXELS` (a photo put in by hand) is checked without holding
    its pixels: a JPEG decoded at an eighth of its size, a PNG's every chunk read and its
    checksum checked (its size as stored), a WEBP, or any picture past Pillow's own limit,
    taken on its header; not called damaged for its size."""
    from krea_desktop.pillow import Image, exif_orientation, open_image  # late: only for files found without a row

    try:
        if path.stat().st_size > MAX_CHECK_BYTES:
            return False, None, 0, 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # its size is what is checked here
            try:
                im = open_image(path)
            except Image.DecompressionBombError:  # past Pillow's own limit: taken on its header
                return _taken_on_its_header(path)
        with im:
            width, height = im.size
            fmt = {"PNG": "PNG", "JPEG": "JPG", "WEBP": "WEBP"}.get(im.format or "")
            if fmt is None:
                return False, fmt, width, height
            if width * height <= MAX_CHECK_PIXELS:
                im.load()
                orientation = exif_orientation(im)
            elif fmt == "JPG" and width * height <= MAX_CHECK_PIXELS * 64:
                im.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                im.load()
                orientation = exif_orientation(im)
            elif fmt == "PNG":
                im.verify()  # not its EXIF: Pillow reads a PNG's by decoding it
                orientation = 1
            else:
                orientation = exif_orientation(im)
            if orientation in (5, 6, 7, 8):  # stored on its side: its size as shown
                width, height = height, width
            return True, fmt, width, height
    except Exception:
        return False, None, 0, 0


def _taken_on_its_header(path: Path) -> tuple[bool, str | None, int, int]:
    """:func:`_check_decodes` of a picture too large to open (its format by its first
    bytes, its size by its header): not called damaged for its size."""
    with open(path, "rb") as f:
        fmt = _metadata().sniff_format(f.read(12))
    size = _metadata().image_size_of(path)
    if fmt is None or size is None:
        return False, fmt, 0, 0
    return True, fmt, size[0], size[1]


def _stat_of(path: Path) -> tuple[int, float] | None:
    """A file's size and mtime, or None when it is not there (or not a file)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime) if stat.S_ISREG(st.st_mode) else None


def _file_sha256(path: Path) -> str | None:
    import hashlib  # here, not at the top: OpenSSL's load is not on the window's way to ready

    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _empty_gradually(items: dict[Any, Any] | set[Any]) -> None:
    """Empty ``items`` one entry at a time: Python's lock can change hands between two."""
    pop = items.popitem if isinstance(items, dict) else items.pop
    while items:
        pop()


def _contains(text: str | None, term: str) -> int:
    """SQL ``krea_contains(prompt, term)``: whether ``text`` has ``term`` (lower case), in
    any case, as the gallery matches a new image's prompt."""
    return int(text is not None and term in text.lower())


def _like_pattern(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# ---------------------------------------------------------------------------------------------
# The library


class Library:
    """The image folder and its index. Every method may be called from any thread."""

    def __init__(self, root: Path, *, busy_timeout: float = 5.0, rebuild: bool = True) -> None:
        """Open (or make) the library in ``root``. An index found damaged or empty is set
        aside and made anew; with ``rebuild`` it is filled from the images folder before
        this returns (a file's worth of reading and decoding per image), else
        :attr:`needs_rebuild` says that :meth:`reconcile` is still to run (a window runs
        it beside its GUI thread)."""
        self.root = Path(os.path.abspath(root))  # the index is opened by URI, which must be absolute
        self.needs_rebuild = False
        # Damaged rows' files as the folder check last saw them (size, date), by row id.
        self._broken_seen: dict[int, tuple[int, float]] = {}
        # Favourites read from a damaged index kept aside: the files carry every record but
        # not these, which the rebuild gives back to the rows it makes.
        self._salvaged_favourites: set[tuple[str, str]] = set()  # (imageUUID, file name)
        self.images_dir = self.root / "images"
        self.thumbs_dir = self.root / "thumbs"
        self.db_path = self.root / "library.sqlite"
        self.busy_timeout = busy_timeout
        # One sentence for the person when opening had to repair something (else None).
        self.notice: str | None = None
        failed = self.root  # the folder said to be the trouble
        try:
            for d in (self.root, self.images_dir, self.thumbs_dir):
                failed = d
                d.mkdir(parents=True, exist_ok=True)
            failed = self.root
            # A folder that is there but cannot be written to (read-only storage, another
            # user's folder): said as such now, not later as a damaged index.
            with tempfile.TemporaryFile(dir=self.root):
                pass
        except OSError as exc:
            raise LibraryError(_folder_problem(failed, exc, self.root)) from exc
        self._check_thumbnails()
        # One connection per thread, by the thread's id rather than in a threading.local:
        # a pool thread (QThreadPool) gets a new Python thread state, and so an empty
        # threading.local, for each task it runs, and would open a connection each time.
        self._connections: dict[int, sqlite3.Connection] = {}
        # Connections to an index file that went from under the library (see
        # keep_index()), closed with the library: never read from or written through again.
        self._retired: list[sqlite3.Connection] = []
        # The index file open, held by a descriptor of its own: its count of names says
        # whether it is still the one at its path (a file's number can be reported anew
        # by a network drive; its names cannot). Those of earlier files stay open (a
        # number a check may still be reading) until the library is closed.
        self._index_fd: int | None = None
        self._retired_fds: list[int] = []
        self._written_on: sqlite3.Connection | None = None  # the connection of the latest write
        self._failure = ""  # why the index could not be written again (said once), else ""
        # Told (from whichever thread noticed) the sentence of an index written again.
        self.on_news: Callable[[str], None] | None = None
        self._connections_lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._closed = False
        self._unreadable_said = False  # rows on a damaged page were left out (logged once)
        # Every id, newest first, as last read (see ids()): what clearing a search shows.
        self._writes = 0  # write transactions of this process, on any of its connections
        self._every_id: tuple[sqlite3.Connection, int, int, list[int]] | None = None  # read on, data_version, writes
        self._open_index(rebuild)

    # -- opening -------------------------------------------------------------------------------

    def _check_thumbnails(self) -> None:
        """Thumbnails made another way (:data:`THUMBS_FORMAT`) are set aside, a rename for
        each size, so each is made again when next shown, and removed beside the opening
        (thousands of files; a process ended on the way leaves the rest to the next one)."""
        mark = self.thumbs_dir / THUMBS_MARK
        try:
            current = mark.read_bytes().strip() == THUMBS_FORMAT.encode()
        except OSError:
            current = False
        if not current:
            try:
                # Only the folders of one size each that this app makes: a data folder
                # chosen where another program keeps a thumbs folder of its own keeps
                # everything else in it.
                ours = [p for p in self.thumbs_dir.iterdir() if _is_size_folder(p)]
                if ours:
                    aside = self.root / f"{_OLD_THUMBS}{os.getpid()}-{time.time_ns()}"
                    aside.mkdir()
                    for size_dir in ours:
                        os.rename(size_dir, aside / size_dir.name)
                # Only once they are aside (else they would be taken as made this way);
                # unmarked, they are set aside at the next opening.
                atomic_write(mark, THUMBS_FORMAT.encode() + b"\n")
            except OSError as exc:
                log.info("thumbnails made another way stay for now: %s", exc)
        try:
            old = [p for p in self.root.iterdir() if p.name.startswith(_OLD_THUMBS)]
        except OSError:
            return
        if old:
            threading.Thread(
                target=_remove_old_thumbnails, args=(old, self.thumbs_dir), name="old-thumbnails", daemon=True
            ).start()

    def _open_index(self, rebuild: bool) -> None:
        """Open the index; one that is damaged or empty is kept aside and rebuilt from the
        files (they carry their records). One from a newer version is left untouched."""
        # Those of an earlier rebuild cut short (a process killed, a full disk) before it
        # gave them back: the index made since holds none of them.
        self._salvaged_favourites = self._kept_salvaged_favourites()
        problem = self._index_problem()
        rebuilt = "rebuilt from the images folder" if rebuild else "is being rebuilt from the images folder"
        if problem in ("empty", "missing"):
            # Nothing to keep aside: a new index (made at this moment by another process,
            # say, which an empty file is just before its first write; or a library's
            # folder copied without it, or its index deleted), made from the files if
            # there are any.
            said, problem = problem, None
            self._damage_mark.unlink(missing_ok=True)  # it spoke of an index no longer there
            if self._has_image_files():
                problem = said
                self.notice = f"The library index was {said}, so it {'was ' if rebuild else ''}{rebuilt}."
        elif problem is not None:
            aside = self._set_index_aside()
            self._damage_mark.unlink(missing_ok=True)  # it spoke of the index set aside
            self._salvaged_favourites |= _favourites_in(aside)
            self._keep_salvaged_favourites()
            self.notice = f"The library index was {problem}, so it was kept aside as {aside.name} and {rebuilt}."
        conn = self._conn()
        try:
            migrate(conn)
            ensure_indexes(conn)
        except sqlite3.DatabaseError as exc:
            if _is_busy(exc):
                raise LibraryBusy(BUSY_MESSAGE) from exc
            raise LibraryError(f"The library index {self.db_path} cannot be opened ({exc}).") from exc
        self.has_fts = (
            conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='images_fts'").fetchone() is not None
        )
        self._index_fd = self._open_fd()
        if problem is not None:
            if rebuild:
                self.reconcile()
            else:
                self.needs_rebuild = True

    def _open_fd(self) -> int | None:
        try:
            return os.open(self.db_path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
        except OSError as exc:
            log.info("the library index is not watched for its deletion: %s", exc)
            return None

    def _index_gone(self) -> bool:
        """Whether the index file open no longer has a name (deleted, or another put in
        its place). A stat of a descriptor: nothing else when it is there."""
        fd = self._index_fd
        if fd is None:
            return False
        try:
            return os.fstat(fd).st_nlink == 0
        except OSError:
            return False

    def _file_at_path(self) -> bool:
        """Whether a file with something in it is at the index's path (SQLite makes an
        empty one where a connection is opened and none is)."""
        try:
            return os.stat(self.db_path).st_size > 0
        except OSError:
            return False

    def keep_index(self) -> str | None:
        """When the index file open went from under the library while it was open
        (deleted by hand or by a cleaning tool), write it there again: the open copy,
        favourites and all. Otherwise everything written from then on would go to a file
        without a name, and the next start would rebuild the index from the images without
        their favourites. When another file is in its place (another Krea Desktop process
        on this library wrote it there first; a sync tool's copy), that one is used from
        then on and the open one is kept beside it. Not when the library's folder went too
        (a drive taken away). :attr:`on_news` is told, and the sentence returned; None
        when nothing went (a stat of a descriptor). Called before each write, by
        :meth:`check_writable`, :meth:`reconcile`, :meth:`check_index` and :meth:`close`,
        and before a thread's first connection."""
        if self._closed or not self._index_gone():
            return None
        with self._write_lock:
            if self._closed or not self._index_gone() or not self.root.is_dir():
                return None
            try:
                source = self._source_connection()
                if self._file_at_path() and self._usable_at_path():
                    # Another process of this library wrote it there first, say: used from
                    # now on, this one's view kept beside it. No checkpoint through the file
                    # that went: the log named beside the index is the new file's now, and
                    # would be emptied into the old one.
                    said = INDEX_REPLACED.format(name=self._copy_open_index(source, self._aside_name(".kept-")).name)
                else:
                    aside = None
                    if self._file_at_path():  # something else: kept aside, the index written again
                        aside = self._aside_name(".replaced-")
                        os.replace(self.db_path, aside)
                    # What the log holds into the open file first, so that the copy is
                    # whole and the log holds nothing only the file that went had.
                    with suppress(sqlite3.Error):
                        source.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    self._copy_open_index(source, self.db_path)
                    said = INDEX_WRITTEN_AGAIN if aside is None else INDEX_SET_ASIDE.format(name=aside.name)
                self._use_index_at_path()
            except (OSError, sqlite3.Error) as exc:
                log.warning("the library index that went could not be written again: %s", exc)
                said_before = bool(self._failure)  # once: the next save says it again, in its own words
                full = (
                    exc.errno in (errno.ENOSPC, errno.EDQUOT)
                    if isinstance(exc, OSError)
                    else _disk_full(exc, self.root)
                )
                self._failure = "the disk is full" if full else str(exc)
                if said_before:
                    return None
                said = INDEX_NOT_WRITTEN_AGAIN.format(reason=self._failure)
            else:
                self._failure = ""
        log.warning("%s", said)
        if self.on_news is not None:
            self.on_news(said)
        return said

    def _index_in_place(self) -> None:
        """:meth:`keep_index`, raising :class:`LibraryError` (one sentence) while the index
        could not be written again: a write would go to a file without a name."""
        self.keep_index()
        if self._index_gone():
            raise LibraryError(INDEX_NOT_WRITTEN_AGAIN.format(reason=self._failure or "see the log"))

    def _aside_name(self, infix: str) -> Path:
        """A free name beside the index: ``library.sqlite{infix}{date-time}[-n]``."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.db_path.with_name(f"{self.db_path.name}{infix}{stamp}")
        n = 1
        while aside.exists():
            n += 1
            aside = self.db_path.with_name(f"{self.db_path.name}{infix}{stamp}-{n}")
        return aside

    def _source_connection(self) -> sqlite3.Connection:
        """A connection already open on the index file that went (a new one, made by its
        path, would be on whatever is there): this thread's, else the one the latest write
        went through, else any."""
        with self._connections_lock:
            conn = (
                self._connections.get(threading.get_ident())
                or self._written_on
                or next(iter(self._connections.values()), None)
            )
        if conn is None:
            raise sqlite3.OperationalError("no connection is open on the index")
        return conn

    def _usable_at_path(self) -> bool:
        """Whether the file at the index's path is an index of this version, by its header
        alone: opened by SQLite, it would be read with the log named beside it, which may
        be the file that went's."""
        try:
            with open(self.db_path, "rb") as found:
                header = found.read(100)
        except OSError:
            return False
        return header[:16] == b"SQLite format 3\0" and int.from_bytes(header[60:64], "big") == SCHEMA_VERSION

    def _copy_open_index(self, conn: sqlite3.Connection, dest: Path) -> Path:
        """Write the index open on ``conn`` to ``dest``, whole (under the write lock)."""
        copy = self.root / f"{TEMP_PREFIX}index-{os.getpid()}-{time.time_ns()}"
        try:
            target = sqlite3.connect(copy)
            try:
                conn.backup(target)
            finally:
                target.close()
            with open(copy, "rb+") as written:
                os.fsync(written.fileno())
            os.replace(copy, dest)
        finally:
            with suppress(OSError):
                copy.unlink()
        return dest

    def _use_index_at_path(self) -> None:
        """Read and write the file at the index's path from now on (under the write lock):
        every thread's connection is retired (each thread opens a new one at its next use)."""
        fd = self._open_fd()
        if fd is None:
            raise OSError(f"the index at {self.db_path} cannot be opened")
        with self._connections_lock:
            self._retired.extend(self._connections.values())
            self._connections = {}
            self._every_id = None
            self._written_on = None
            if self._index_fd is not None:
                self._retired_fds.append(self._index_fd)
            self._index_fd = fd
        self._conn()

    def _has_image_files(self) -> bool:
        try:
            with os.scandir(self.images_dir) as found:
                return any(
                    not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS
                    for e in found
                )
        except OSError:
            return False

    def _index_problem(self) -> str | None:
        """Why the index file cannot be used as it is ("damaged (…)", "empty", "missing"),
        or None when it is fine. Raises :class:`LibraryError` for one this version must not
        touch."""
        try:
            found = self.db_path.stat()
            if stat.S_ISDIR(found.st_mode):  # which SQLite calls a "disk I/O error"
                raise LibraryError(
                    f"The library index {self.db_path} is a folder, not a file; move that folder away, "
                    "and a new index is made from the images."
                )
            if found.st_size == 0:
                return "empty"
        except FileNotFoundError:
            if self.db_path.is_symlink():  # a link to an index on a drive not connected now, say
                raise LibraryError(
                    f"The library index {self.db_path} is a link to {os.readlink(self.db_path)}, which is not there; "
                    "connect what holds it, or remove the link to start a new index."
                ) from None
            return "missing"
        except OSError as exc:
            raise LibraryError(f"The library index {self.db_path} cannot be read ({exc.strerror or exc}).") from exc
        try:
            probe = _read_only(self.db_path, timeout=self.busy_timeout)
        except sqlite3.Error as exc:
            raise LibraryError(
                f"The library index {self.db_path} cannot be opened ({exc}); check its permissions."
            ) from exc
        try:
            (version,) = probe.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise LibraryError(
                    f"This library was written by a newer version of Krea Desktop (schema {version}; this version "
                    f"knows {SCHEMA_VERSION}), so it was left untouched: update Krea Desktop to open it."
                )
            if self._damage_found():  # by the check of every page, or a write, at the last start
                return "damaged (found by its check at the last start)"
            if version >= 1:
                probe.execute("SELECT id, params FROM images ORDER BY id DESC LIMIT 1").fetchall()
                probe.execute("SELECT digest FROM reference_uploads LIMIT 1").fetchall()
                # Every row's place, as the gallery reads them first: a page of that index
                # damaged in the middle of the file (a bad sector, a sync tool) shows here,
                # not as a window that cannot open. Counted along the gallery's own index,
                # which walks its every page without making 100,000 Python numbers (about
                # 18 ms at 100,000 images, against 44 ms to read them); the gallery's read
                # that follows finds the pages in the system's cache.
                probe.execute(_EVERY_ID_COUNTED if _has_index(probe, ORDERING_INDEX) else _EVERY_ID).fetchall()
        except sqlite3.DatabaseError as exc:
            if _is_busy(exc):
                return None  # in use by another process, which is fine
            if _disk_full(exc, self.root):
                # Not damage: SQLite could not make the files it reads beside the index.
                # Set aside, the index would be rebuilt (on a full disk, at that) and every
                # favourite in it lost.
                raise LibraryError(
                    f"The disk that holds the library ({self.root}) is full, so its index cannot be opened; "
                    "free some space and try again (nothing in the library was changed)."
                ) from exc
            if _cannot_open_beside(exc):
                # Not damage either: the journal beside the index (-wal, -shm) cannot be
                # opened (another user's, a folder in its place). Set aside, the index
                # would be rebuilt, and its favourites, unreadable there too, lost.
                raise LibraryError(
                    f"The library index {self.db_path} cannot be opened ({exc}): the files beside it, "
                    f"{self.db_path.name}-wal and {self.db_path.name}-shm, must be files you can read and write "
                    "(nothing in the library was changed)."
                ) from exc
            return f"damaged ({exc})"
        finally:
            probe.close()
        return None

    @property
    def _damage_mark(self) -> Path:
        return self.db_path.with_name(self.db_path.name + DAMAGE_MARK_SUFFIX)

    def _damage_found(self) -> bool:
        """Whether the index is marked damaged by this process or by one that has ended:
        one still running (a window, while a command opens the library beside it) has the
        index open, and setting it aside under it would leave its writes in the copy."""
        try:
            owner = self._damage_mark.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0].split()
        except OSError:
            return False
        try:
            pid = int(owner[0])
        except (IndexError, ValueError):
            return True  # no owner named: a mark from before, or written by hand
        identity = owner[1] if len(owner) > 1 else None
        return pid == os.getpid() or not still_running(pid, identity)

    def check_index(self) -> str | None:
        """Read every page of the index (SQLite's quick_check, on a connection of its own,
        which lets Python's lock go: about a quarter to half a second at 100,000 images,
        beside the window). Damage there (a bad sector, a sync tool) shows nowhere else
        until a save or a search meets it, and is noted beside the index, so that the next
        opening sets it aside and rebuilds it, with the favourites still readable; returns
        the sentence that says so (:data:`DAMAGED_INDEX`), else None."""
        self.keep_index()
        if self._index_gone():  # it could not be written again: nothing there to check
            return None
        try:
            rows = self._quick_check()
        except sqlite3.DatabaseError as exc:
            if _is_busy(exc) or _disk_full(exc, self.root):
                return None  # not damage: checked at another start
            rows = [(str(exc),)]
        except sqlite3.Error as exc:
            log.warning("the library index could not be checked: %s", exc)
            return None
        if rows == [("ok",)]:
            return None
        if self._index_gone() or not self._file_at_path():
            return None  # it went while it was checked: not damage (written again at the next write)
        self._note_damage(str(rows[0][0]) if rows and rows[0] else "unreadable")
        return DAMAGED_INDEX

    def _note_damage(self, found: str) -> None:
        """Note beside the index that it is damaged: the next opening sets it aside."""
        log.warning("the library index is damaged: %s", found)
        pid = os.getpid()
        owner = f"{pid} {process_identity(pid) or ''}".strip()
        try:
            _write_atomic(self.root, self._damage_mark.name, f"{owner}\n{found}".encode("utf-8", "replace")[:2000])
        except OSError as exc:  # said all the same; the next check finds it again
            log.warning("the library index's damage could not be noted: %s", exc)

    def _damaged(self, exc: sqlite3.DatabaseError) -> bool:
        """Whether ``exc`` says the index is damaged. Before Python 3.11 (no result code), a
        search index that cannot be opened ("vtable constructor failed") is damage only if
        SQLite's own check of the file finds some: a busy index is said in the same words."""
        if _is_damage(exc):
            return True
        if getattr(exc, "sqlite_errorcode", None) is not None or "vtable constructor failed" not in str(exc):
            return False
        try:
            return self._quick_check() != [("ok",)]
        except sqlite3.DatabaseError as check:
            return _is_damage(check)

    def _quick_check(self) -> list[Any]:
        """SQLite's quick_check(1) of the index file, on a read-only connection of its own."""
        probe = _read_only(self.db_path, timeout=self.busy_timeout)
        try:
            return probe.execute("PRAGMA quick_check(1)").fetchall()
        finally:
            probe.close()

    @contextmanager
    def _damage_said(self) -> Iterator[None]:
        """A write SQLite refuses because the index is damaged raises :class:`LibraryError`
        with :data:`DAMAGED_INDEX`, and the damage is noted for the next opening (the
        image's file is kept: the rebuild indexes it)."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if not self._damaged(exc):
                raise
            self._note_damage(str(exc))
            raise LibraryError(DAMAGED_INDEX) from exc

    def _filtered(self, read: Callable[[], T], search: str | None = None) -> T:
        """``read`` (a query that narrows the rows by ``_where`` for ``search``) answered in
        spite of a damaged search index: the prompts are searched without it from then on
        (the damage is noted, and the next opening rebuilds the index). Damage elsewhere
        raises :class:`LibraryError` with :data:`DAMAGED_INDEX` (the gallery keeps the rows
        it shows) rather than a search that raises at every key typed until a restart."""
        try:
            return read()
        except sqlite3.DatabaseError as exc:
            if not self._damaged(exc):
                raise
            self._note_damage(str(exc))
            if not (self.has_fts and any(len(t) >= 3 for t in (search or "").split())):
                raise LibraryError(DAMAGED_INDEX) from exc
            self.has_fts = False
        try:
            return read()
        except sqlite3.DatabaseError as exc:
            if not self._damaged(exc):
                raise
            raise LibraryError(DAMAGED_INDEX) from exc

    @property
    def _salvage_path(self) -> Path:
        return self.db_path.with_name(f"{self.db_path.name}.favourites.json")

    def _keep_salvaged_favourites(self) -> None:
        """Write the favourites read from a damaged index beside the new one, until the
        rebuild gives them back: a rebuild cut short would otherwise lose them, the next
        start finding a healthy (partial, or empty) index and no reason to read the copy."""
        if not self._salvaged_favourites:
            return
        data = json.dumps(sorted(self._salvaged_favourites), ensure_ascii=True).encode()
        try:
            _write_atomic(self.root, self._salvage_path.name, data)
        except OSError as exc:  # a full disk: they are given back if this run's rebuild ends
            log.warning("favourites read from the damaged index not kept aside: %s", exc)

    def _kept_salvaged_favourites(self) -> set[tuple[str, str]]:
        try:
            kept = json.loads(self._salvage_path.read_bytes())
        except FileNotFoundError:
            return set()
        except (OSError, ValueError) as exc:
            log.warning("favourites kept from a damaged index unreadable: %s", exc)
            return set()
        pairs = kept if isinstance(kept, list) else []
        return {
            (p[0], p[1]) for p in pairs if isinstance(p, list) and len(p) == 2 and all(isinstance(v, str) for v in p)
        }

    def _set_index_aside(self) -> Path:
        """Rename the index (and its journal files) out of the way, byte for byte."""
        aside = self._aside_name(DAMAGED_INFIX)
        try:
            os.replace(self.db_path, aside)
            for extra in ("-wal", "-shm"):
                journal = self.db_path.with_name(self.db_path.name + extra)
                if journal.exists():
                    os.replace(journal, aside.with_name(aside.name + extra))
        except OSError as exc:
            raise LibraryError(
                f"The library index {self.db_path} is damaged and could not be moved aside ({exc.strerror or exc})."
            ) from exc
        return aside

    # -- connections ---------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise LibraryError("the library is closed")
        thread = threading.get_ident()
        conn = self._connections.get(thread)
        if conn is None and self._index_gone():
            # Opened by its path, a new connection would be on another file, or make an
            # empty index where there is none.
            self._index_in_place()
            conn = self._connections.get(thread)
        if conn is None:
            # Autocommit mode; transactions are explicit. Each thread has its own connection,
            # so readers never wait for the writer (WAL), and close() can close them all. A
            # thread that ends leaves its connection to the next thread given its id. Once
            # the index is open, a connection never makes one (``mode=rw``).
            try:
                conn = sqlite3.connect(
                    f"{self.db_path.as_uri()}?mode=rw" if self._index_fd is not None else str(self.db_path),
                    timeout=self.busy_timeout,
                    isolation_level=None,
                    check_same_thread=False,
                    uri=self._index_fd is not None,
                )
            except sqlite3.Error as exc:
                raise LibraryError(f"The library index {self.db_path} cannot be opened ({exc}).") from exc
            try:
                self._use_wal(conn)
            except sqlite3.OperationalError as exc:
                conn.close()
                if _is_busy(exc):
                    raise LibraryBusy(BUSY_MESSAGE) from exc
                raise LibraryError(f"The library index {self.db_path} cannot be opened ({exc}).") from exc
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.create_function("krea_contains", 2, _contains, deterministic=True)
            with self._connections_lock:
                still_open = not self._closed  # close() may have come from another thread meanwhile
                if still_open:
                    self._connections[thread] = conn
            if not still_open:
                conn.close()
                raise LibraryError("the library is closed")
        return conn

    def ensure_images_dir(self) -> bool:
        """Make images/ again if it went while the library was open (deleted or moved by
        hand): its rows then show their files as missing, and new images are kept. Not
        when the library's own folder went too (a drive taken away): its images may come
        back with it, and nothing is made where they were. Whether images/ is there."""
        if not self.root.is_dir():
            return False
        try:
            self.images_dir.mkdir(exist_ok=True)
        except OSError:
            return False
        return self.images_dir.is_dir()

    def check_writable(self) -> None:
        """Raise :class:`LibraryError` (one sentence) unless a write to the index would be
        taken: one written by nothing here, rolled back (an index another user owns, a
        read-only folder, a disk that refuses writes)."""
        self._index_in_place()
        # Not a counted transaction: nothing changes, so what was read stays good.
        with self._write_lock, _refusals_said():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                (version,) = conn.execute("PRAGMA user_version").fetchone()
                conn.execute(f"PRAGMA user_version = {int(version)}")
            finally:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")  # nothing is written

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Write-ahead logging, so readers never wait for the writer. Turning it on takes the
        file for a moment, and SQLite does not wait for that as it waits for a write: a
        process opening a new library while others do (each turning it on) waits its turn."""
        if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
            return  # kept in the file: nothing to take
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.02)

    @contextmanager
    def moving_files(self) -> Iterator[None]:
        """Hold this process's writes to the index while files are moved into or out of
        ``images/`` along with their rows (a delete, an undo), so that the check of the
        folder (:meth:`reconcile`) finds both moved or neither: never a file without its
        row, which it would index again as an image of its own."""
        with self._write_lock:
            yield

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, rolled back whole if anything in it fails. Another process
        holding the write lock past the busy timeout raises :class:`LibraryBusy`; a write
        SQLite refuses (a full disk, a read-only folder, a disk error) raises
        :class:`LibraryError` saying so (and nothing is written either way)."""
        self._index_in_place()
        with self._write_lock, _refusals_said(), self._damage_said():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                try:
                    yield conn
                    conn.execute("COMMIT")
                    self._written_on = conn
                except BaseException:
                    if conn.in_transaction:
                        with suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
            finally:
                self._writes += 1  # under the write lock, once the transaction has ended

    def checkpoint(self) -> None:
        """Move the write-ahead log into the index and empty it, so that ``library.sqlite``
        alone holds everything (a backup of it is complete). A busy index is left as it is."""
        with suppress(sqlite3.Error, LibraryError):
            self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        """Close every connection, first checkpointing (see :meth:`checkpoint`). Only once
        no other thread is using the library: SQLite's module crashes the process if a
        connection is closed while another thread reads through it (the window waits for
        its workers and its client thread first: ``krea_desktop.ui.app.close_library``)."""
        if not self._closed:
            self.keep_index()  # first: a checkpoint through a file that went would empty the log of the one there
        with self._connections_lock:
            if self._closed:
                return
            self._closed = True
            connections, self._connections = list(self._connections.values()), {}
            retired, self._retired = self._retired, []
            fds, self._retired_fds = [*self._retired_fds, self._index_fd], []
            self._every_id = None
        if connections and not self._index_gone():
            with suppress(sqlite3.Error):
                connections[0].execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for fd in fds:
            if fd is not None:
                with suppress(OSError):
                    os.close(fd)
        self._index_fd = None
        # Those of an index file that went last: the log they share by name with the index
        # in its place is empty by now, so what closing them does to it takes nothing.
        for conn in connections + retired:
            with suppress(sqlite3.Error):
                conn.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- rows ----------------------------------------------------------------------------------

    def _entry(self, row: Sequence[Any]) -> LibraryEntry:
        return LibraryEntry(
            id=row[0],
            image_uuid=row[1],
            task_uuid=row[2],
            file_name=row[3],
            format=row[4],
            width=row[5],
            height=row[6],
            ratio=row[7],
            prompt=row[8],
            creativity=row[9],
            seed=row[10],
            number_results=row[11],
            output_quality=row[12],
            cost=row[15],
            nsfw=None if row[16] is None else bool(row[16]),
            created_at=row[17],
            favourite=bool(row[18]),
            missing=bool(row[19]),
            broken=bool(row[20]),
            file_size=row[21],
            simulated=None if row[22] not in (0, 1) else bool(row[22]),
            record_json=row[14] or "{}",
            images_dir=self.images_dir,
        )

    @staticmethod
    def _row_values(
        record: GenerationRecord,
        *,
        image_uuid: str,
        file_name: str,
        fmt: str,
        width: int,
        height: int,
        file_size: int | None,
        mtime: float,
    ) -> dict[str, Any]:
        return {
            "image_uuid": image_uuid,
            "task_uuid": record.task_uuid,
            "file_name": file_name,
            "format": fmt,
            "width": width,
            "height": height,
            "ratio": derive_ratio(width, height, record.ratio),
            "prompt": record.prompt,
            "creativity": record.creativity,
            "seed": record.seed,
            "number_results": record.number_results,
            "output_quality": record.output_quality,
            "refs": json.dumps([r.to_json() for r in record.references]),
            "params": record_json_text(record),
            "cost": record.cost,
            "nsfw": None if record.nsfw is None else int(record.nsfw),
            "created_at": record.created_at or _file_time(mtime),
            "file_size": file_size,
        }

    def _reread_values(
        self, row_id: int, name: str, fmt: str | None, width: int, height: int, disk: tuple[int, float]
    ) -> dict[str, Any] | None:
        """The columns of row ``row_id`` as its file ``name`` gives them now (its place in
        the gallery, its date, kept); None if the file went meanwhile. A file that carries
        no record (an editor that keeps no metadata saved it) keeps the row's parameters:
        only what the file itself says (its format, size and bytes) is read again."""
        path = self.images_dir / name
        digest = _file_sha256(path)
        if digest is None:
            return None  # gone since it was checked: the next check finds it missing
        fmt = fmt or IMAGE_EXTENSIONS[os.path.splitext(name)[1].lower()]
        record = _metadata().read_record(path)
        if record is None:
            return {
                "format": fmt,
                "width": width,
                "height": height,
                "file_size": disk[0],
                "content_sha256": digest,
                "id": row_id,
            }
        values = self._row_values(
            record,
            image_uuid="",
            file_name=name,
            fmt=fmt,
            width=width or record.width or 0,
            height=height or record.height or 0,
            file_size=disk[0],
            mtime=disk[1],
        )
        for kept in ("image_uuid", "file_name", "created_at"):
            del values[kept]
        values["content_sha256"] = digest
        values["id"] = row_id
        return values

    @staticmethod
    def _update_read_again(conn: sqlite3.Connection, values: dict[str, Any]) -> None:
        """Write a row read whole again, and its lineage (kept by triggers on insert and
        delete only) from its references as they are now."""
        columns = ", ".join(f"{k} = :{k}" for k in values if k != "id")
        conn.execute(f"UPDATE images SET {columns} WHERE id = :id", values)
        if "refs" not in values:  # the file carries no record: the row's references stand
            return
        conn.execute("DELETE FROM lineage WHERE child_id = ?", (values["id"],))
        conn.execute(
            "INSERT INTO lineage(child_id, parent_uuid, position, strength) "
            "SELECT ?, json_extract(value, '$.parent'), CAST(key AS INTEGER), json_extract(value, '$.strength') "
            "FROM json_each(?) WHERE json_type(value) = 'object' AND json_type(value, '$.parent') = 'text'",
            (values["id"], values["refs"]),
        )

    @staticmethod
    def _insert(conn: sqlite3.Connection, values: dict[str, Any], extra: dict[str, Any] | None = None) -> int:
        values = {**values, **(extra or {})}
        names = ", ".join(values)
        marks = ", ".join(f":{k}" for k in values)
        cur = conn.execute(f"INSERT INTO images ({names}) VALUES ({marks})", values)
        assert cur.lastrowid is not None
        return cur.lastrowid

    # -- saving --------------------------------------------------------------------------------

    def save(self, image: GeneratedImage, created_at: datetime | None = None, *, replace: bool = False) -> LibraryEntry:
        """Write ``image`` (with its record embedded) into images/ and index it.

        Returns once the file is fsync'd in place and its row committed. Saving an image
        whose imageUUID is already in the library returns the existing entry (rewriting
        the file only if it has gone missing); with ``replace``, the new picture and record
        take the old one's place, file and row (a contact sheet drawn again). The old file
        stays whole until the new one is in place: a write that fails leaves it as it was.
        """
        if not _SAFE_NAME.match(image.image_uuid):
            raise ValueError(f"unusable imageUUID {image.image_uuid!r}")
        metadata = _metadata()
        fmt = metadata.sniff_format(image.data) or image.format.upper()
        ext = spec.FORMAT_EXTENSIONS.get(fmt)
        if ext is None:
            raise ValueError(f"unknown image format {image.format!r}")
        file_name = f"{image.image_uuid}.{ext}"
        with self._write_lock, _refusals_said(), self._damage_said():  # the reads on the way too
            existing = self.get_by_uuid(image.image_uuid)
            if (
                existing is not None
                and not replace
                and image.task_uuid
                and existing.task_uuid
                and existing.task_uuid != image.task_uuid
            ):
                # Another task's image under an imageUUID already kept (a service that sent
                # it twice): a new paid image, kept under an id made from both.
                image = replace_field(image, image_uuid=_repeated_id(image.task_uuid, image.image_uuid))
                file_name = f"{image.image_uuid}.{ext}"
                existing = self.get_by_uuid(image.image_uuid)
            if existing is not None and replace:
                return self._replace(existing, image, fmt, file_name, created_at)
            if existing is not None and not existing.missing and existing.path.exists():
                return existing
            if existing is not None and not existing.record.is_empty:
                record = existing.record  # the file came back under the record it was indexed with
            else:
                record = metadata.record_for(image, created_at or datetime.now(timezone.utc))
            data, values, digest = self._write_image(image, fmt, file_name, record)
            with self._transaction() as conn:
                # Looked up again under the index's write lock: another process's refresh
                # may have indexed the file since it was renamed into place.
                found = conn.execute("SELECT id FROM images WHERE image_uuid = ?", (image.image_uuid,)).fetchone()
                if found is not None:
                    row_id = found[0]
                    conn.execute(
                        "UPDATE images SET file_name=?, format=?, missing=0, broken=0, file_size=?, content_sha256=? "
                        "WHERE id=?",
                        (file_name, fmt, len(data), digest, row_id),
                    )
                else:
                    row_id = self._insert(conn, values, {"content_sha256": digest})
            entry = self.get(row_id)
            assert entry is not None
            return entry

    def _write_image(
        self, image: GeneratedImage, fmt: str, file_name: str, record: GenerationRecord
    ) -> tuple[bytes, dict[str, Any], str]:
        """Write ``image`` with ``record`` embedded as ``file_name`` in images/; the bytes
        written, the row's columns and their SHA-256."""
        metadata = _metadata()
        try:
            data = metadata.embed(image.data, fmt, record)
        except metadata.MetadataError:
            data = image.data  # keep the image even if its container resists; the index has the record
        try:
            _write_atomic(self.images_dir, file_name, data)
        except FileNotFoundError:
            if not self.ensure_images_dir():
                raise
            _write_atomic(self.images_dir, file_name, data)
        values = self._row_values(
            record,
            image_uuid=image.image_uuid,
            file_name=file_name,
            fmt=fmt,
            width=image.width,
            height=image.height,
            file_size=len(data),
            mtime=time.time(),
        )
        import hashlib

        return data, values, hashlib.sha256(data).hexdigest()

    def _replace(
        self, existing: LibraryEntry, image: GeneratedImage, fmt: str, file_name: str, created_at: datetime | None
    ) -> LibraryEntry:
        record = _metadata().record_for(image, created_at or datetime.now(timezone.utc))
        _data, values, digest = self._write_image(image, fmt, file_name, record)  # over the old file, in one rename
        values.update(content_sha256=digest, missing=0, broken=0, id=existing.id)
        del values["image_uuid"], values["created_at"]  # its place in the gallery is kept
        with self._transaction() as conn:
            self._update_read_again(conn, values)
        if existing.file_name != file_name:
            with contextlib.suppress(OSError):
                existing.path.unlink()
        entry = self.get(existing.id)
        assert entry is not None
        return entry

    # -- queries -------------------------------------------------------------------------------

    def _where(self, search: str | None, favourites_only: bool, ratio: str | None) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if favourites_only:
            clauses.append("favourite = 1")
        if ratio is not None:
            clauses.append("ratio = ?")
            args.append(ratio)
        # Each word once: a pasted paragraph repeats "of" and "in" hundreds of times.
        terms = list({t.lower(): t for t in reversed((search or "").split())}.values())[::-1]
        if terms:
            fts_terms = [t for t in terms if len(t) >= 3] if self.has_fts else []
            if fts_terms:
                clauses.append("id IN (SELECT rowid FROM images_fts WHERE images_fts MATCH ?)")
                args.append(" AND ".join('"' + t.replace('"', '""') + '"' for t in fts_terms))
            for t in terms:
                if t in fts_terms:
                    continue
                if t.isascii():
                    clauses.append("prompt LIKE ? ESCAPE '\\'")
                    args.append(_like_pattern(t))
                else:  # LIKE ignores the case of ASCII letters alone: "éc" would miss "École"
                    clauses.append("krea_contains(prompt, ?)")
                    args.append(t.lower())
        return (" WHERE " + _all_of(clauses)) if clauses else "", args

    def count(self, search: str | None = None, favourites_only: bool = False, ratio: str | None = None) -> int:
        if not self._where(search, favourites_only, ratio)[0]:  # every image: the count the triggers keep (O(1))
            row = self._conn().execute("SELECT n FROM image_count").fetchone()
            if row is not None:
                return int(row[0])

        def read() -> int:
            where, args = self._where(search, favourites_only, ratio)
            (n,) = self._conn().execute(f"SELECT COUNT(*) FROM images{where}", args).fetchone()
            return int(n)

        return self._filtered(read, search)

    def entries(
        self,
        search: str | None = None,
        favourites_only: bool = False,
        ratio: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[LibraryEntry]:
        """Matching entries, newest first. ``search`` matches prompts containing every word."""

        def read() -> list[Any]:
            where, args = self._where(search, favourites_only, ratio)
            sql = f"SELECT {_COLUMNS} FROM images{where} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
            return self._conn().execute(sql, [*args, -1 if limit is None else limit, offset]).fetchall()

        return [self._entry(r) for r in self._filtered(read, search)]

    def ids(self, search: str | None = None, favourites_only: bool = False, ratio: str | None = None) -> list[int]:
        """Matching row ids, newest first (what a gallery model needs to know its rows)."""
        if not self._where(search, favourites_only, ratio)[0]:
            return self._filtered(self._every_id_list)

        def read() -> list[int]:
            where, args = self._where(search, favourites_only, ratio)
            rows = self._conn().execute(f"SELECT id FROM images{where} ORDER BY created_at DESC, id DESC", args)
            return [r[0] for r in rows]

        return self._filtered(read, search)

    def _every_id_list(self) -> list[int]:
        """Every id, newest first: read again only when the index has changed since it was
        last read (a new image, a deletion, by this process or another), so that clearing a
        search in a large library does not read 100,000 ids again (40 ms)."""
        conn = self._conn()
        # data_version changes when another connection (another thread's or process's) has
        # committed; this process's own writes are counted by _transaction.
        if conn.in_transaction:  # what it reads may yet be rolled back: not kept
            return [r[0] for r in conn.execute(_EVERY_ID)]
        writes = self._writes
        (version,) = conn.execute("PRAGMA data_version").fetchone()
        kept = self._every_id
        if kept is not None and kept[0] is conn and kept[1:3] == (version, writes):
            return list(kept[3])
        ids = [r[0] for r in conn.execute(_EVERY_ID)]
        self._every_id = (conn, version, writes, ids)
        return list(ids)

    def get(self, entry_id: int) -> LibraryEntry | None:
        row = self._conn().execute(f"SELECT {_COLUMNS} FROM images WHERE id = ?", (entry_id,)).fetchone()
        return None if row is None else self._entry(row)

    def get_many(self, entry_ids: Iterable[int]) -> dict[int, LibraryEntry]:
        return {row[0]: self._entry(row) for row in self._rows_of(_COLUMNS, entry_ids)}

    def file_names(self, entry_ids: Iterable[int]) -> dict[int, str]:
        """Each id's file name in images/ (ids without a row are left out): a drag of
        100,000 images needs their files, not their rows."""
        return dict(self._rows_of("id, file_name", entry_ids))

    def _rows_of(self, columns: str, entry_ids: Iterable[int]) -> Iterator[Any]:
        """``columns`` (the id first) of the rows of ``entry_ids``, 500 ids a query. Rows on
        a damaged page of the index are left out (the gallery painting them raised, cell
        after cell), the others read one by one; the check of the index says it is damaged."""
        wanted = list(entry_ids)
        conn = self._conn()
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            marks = ",".join("?" * len(chunk))
            try:
                rows = conn.execute(f"SELECT {columns} FROM images WHERE id IN ({marks})", chunk).fetchall()
            except sqlite3.DatabaseError as exc:
                if _is_busy(exc):
                    raise
                rows = []
                for entry_id in chunk:
                    try:
                        rows += conn.execute(f"SELECT {columns} FROM images WHERE id = ?", (entry_id,)).fetchall()
                    except sqlite3.DatabaseError as one:
                        if _is_busy(one):
                            raise
                if not self._unreadable_said:  # once: each paint of such a cell asks again
                    self._unreadable_said = True
                    log.warning("rows of the library index left out, unreadable: %s", exc)
            yield from rows

    def get_by_uuid(self, image_uuid: str) -> LibraryEntry | None:
        row = self._conn().execute(f"SELECT {_COLUMNS} FROM images WHERE image_uuid = ?", (image_uuid,)).fetchone()
        return None if row is None else self._entry(row)

    def get_by_file_name(self, file_name: str) -> LibraryEntry | None:
        """The row of the file ``file_name`` in images/ (a file put there by hand has an id
        that is not its name)."""
        row = self._conn().execute(f"SELECT {_COLUMNS} FROM images WHERE file_name = ?", (file_name,)).fetchone()
        return None if row is None else self._entry(row)

    # -- changes -------------------------------------------------------------------------------

    def set_favourite(self, entry_ids: Iterable[int], favourite: bool) -> None:
        with self._transaction() as conn:
            conn.executemany("UPDATE images SET favourite = ? WHERE id = ?", [(int(favourite), i) for i in entry_ids])

    def remove(self, entry_ids: Iterable[int]) -> list[LibraryEntry]:
        """Delete rows and return them (for :meth:`restore`). Files are left for the caller."""
        wanted = list(dict.fromkeys(entry_ids))
        with self._transaction():
            found = self.get_many(wanted)
            removed = [found[i] for i in wanted if i in found]
            self._conn().executemany("DELETE FROM images WHERE id = ?", [(e.id,) for e in removed])
        return removed

    def restore(self, entries: Iterable[LibraryEntry]) -> list[LibraryEntry]:
        """Put removed rows back (undo of :meth:`remove`), each with its file's content
        hash, so that a copy of it is still known as this image; returns them as indexed
        now. Each keeps its id unless a newer image has taken it (SQLite gives the highest
        id again once its row is gone), when it gets a new one: its place in the gallery
        is by its date. A row whose image is indexed again already is left as it is."""
        entries = list(entries)
        digests = {e.id: _file_sha256(e.path) for e in entries}
        restored: list[LibraryEntry] = []
        with self._transaction() as conn:
            for e in entries:
                image_uuid = e.image_uuid
                named = conn.execute("SELECT file_name FROM images WHERE image_uuid = ?", (image_uuid,)).fetchone()
                if named is not None and named[0] != e.file_name:
                    # Another file took the image's name while it was deleted, and with it
                    # the id that name makes (the folder's check indexed it): the image,
                    # back beside it under a name of its own, gets that name's id, as the
                    # check names a file beside another of the same stem.
                    image_uuid = _own_file_id(e.file_name)
                taken = conn.execute("SELECT image_uuid FROM images WHERE id = ?", (e.id,)).fetchone()
                values = {
                    "content_sha256": digests[e.id],
                    "id": e.id,
                    "image_uuid": image_uuid,
                    "task_uuid": e.task_uuid,
                    "file_name": e.file_name,
                    "format": e.format,
                    "width": e.width,
                    "height": e.height,
                    "ratio": e.ratio,
                    "prompt": e.prompt,
                    "creativity": e.creativity,
                    "seed": e.seed,
                    "number_results": e.number_results,
                    "output_quality": e.output_quality,
                    "refs": json.dumps([r.to_json() for r in e.references]),
                    "params": e.record_json,
                    "cost": e.cost,
                    "nsfw": None if e.nsfw is None else int(e.nsfw),
                    "created_at": e.created_at,
                    "favourite": int(e.favourite),
                    "missing": int(not e.path.exists()),
                    "broken": int(e.broken),
                    "file_size": e.file_size,
                }
                if taken is not None and taken[0] != image_uuid:
                    del values["id"]
                names = ", ".join(values)
                marks = ", ".join(f":{k}" for k in values)
                cur = conn.execute(f"INSERT OR IGNORE INTO images ({names}) VALUES ({marks})", values)
                if cur.rowcount == 1 and cur.lastrowid is not None:
                    restored.append(replace(e, id=cur.lastrowid, image_uuid=image_uuid))
        return restored

    def mark_present(self, entry_ids: Iterable[int]) -> None:
        """The files of these rows are in images/ again (put back by this process)."""
        with self._transaction() as conn:
            conn.executemany("UPDATE images SET missing = 0 WHERE id = ?", [(i,) for i in entry_ids])

    def integrity_ok(self) -> bool:
        try:
            rows = self._conn().execute("PRAGMA integrity_check").fetchall()
        except sqlite3.DatabaseError:
            return False
        return rows == [("ok",)]

    def thumb_path(self, image_uuid: str, size: int) -> Path:
        if not _SAFE_NAME.match(image_uuid):
            raise ValueError(f"unusable imageUUID {image_uuid!r}")
        return self.thumbs_dir / str(int(size)) / f"{image_uuid}.jpg"

    def drop_thumbnails(self, image_uuid: str) -> None:
        """Remove the cached thumbnails of ``image_uuid`` at every size (they are made again
        from the image when next shown)."""
        if not _SAFE_NAME.match(image_uuid) or not self.thumbs_dir.is_dir():
            return
        for size_dir in self.thumbs_dir.iterdir():
            if _is_size_folder(size_dir):
                with suppress(OSError):
                    (size_dir / f"{image_uuid}.jpg").unlink(missing_ok=True)

    # -- start-up check ------------------------------------------------------------------------

    def _read_images_folder(self, report: ReconcileReport, on_disk: dict[str, tuple[int, float]]) -> None:
        """List images/ into ``on_disk`` (name -> size, mtime), removing what writers that
        have ended left behind. Raises OSError when the folder cannot be read."""
        with os.scandir(self.images_dir) as it:
            for de in it:
                if de.name.startswith(TEMP_PREFIX):
                    # Only what a writer that has ended left behind: a live writer's file
                    # is about to be renamed into place.
                    if is_abandoned(Path(de.path)):
                        try:
                            os.unlink(de.path)
                            report.temp_files_removed.append(de.name)
                        except OSError:
                            pass
                    continue
                if de.name.startswith(".") or os.path.splitext(de.name)[1].lower() not in IMAGE_EXTENSIONS:
                    continue
                if not _storable_name(de.name):  # bytes that are no UTF-8 (an old archive's names)
                    report.skipped.append(de.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
                    continue
                try:
                    if de.is_file():
                        st = de.stat()
                        on_disk[de.name] = (st.st_size, st.st_mtime)
                except OSError:
                    continue

    def reconcile(self) -> ReconcileReport:
        """Make the index agree with images/: remove leftover temp files, flag rows whose
        file is missing (kept, so nothing is lost if it returns) or changed and no longer
        decodes, and index files that have no row. Known files are only stat'ed."""
        report = ReconcileReport()
        self.keep_index()
        # name -> (size, mtime): plain numbers, which the cyclic garbage collector leaves
        # alone (100,000 stat results made it pause the whole process for tens of ms).
        on_disk: dict[str, tuple[int, float]] = {}
        if not self.images_dir.is_dir() and not self.ensure_images_dir():
            raise LibraryError(
                f"The library folder {self.root} is no longer there; "
                "put it back (or attach its drive again) and refresh the gallery."
            )
        try:
            self._read_images_folder(report, on_disk)
        except OSError as exc:
            raise LibraryError(
                f"The images folder {self.images_dir} cannot be read ({exc.strerror or exc}), so the gallery "
                "may not show every image in it; check its permissions, then refresh the gallery."
            ) from exc

        with self._write_lock:
            conn = self._conn()
            rows = conn.execute("SELECT id, file_name, missing, broken, file_size, image_uuid FROM images")
            known_names = set()
            updates: list[tuple[int, int, int | None, int]] = []  # missing, broken, size, id
            rewritten: list[str] = []  # their imageUUIDs
            reread: list[tuple[int, str, str | None, int, int, tuple[int, float]]] = []  # read whole again
            for row_id, name, missing, broken, size, image_uuid in rows:
                known_names.add(name)
                disk = on_disk.get(name)
                if disk is None and not missing:
                    # Saved since the folder was listed (by this process or another)?
                    disk = _stat_of(self.images_dir / name)
                if disk is None:
                    if not missing:
                        report.newly_missing.append(row_id)
                        updates.append((1, broken, size, row_id))
                    continue
                new_broken = broken
                if missing:
                    report.found_again.append(row_id)
                recheck = missing or disk[0] != size or (disk[0] == 0 and not broken)
                # A damaged file may have been put right (written again at the same size):
                # read again when its size or date moved since this process last saw it
                # damaged, not at every check. (A permission changed moves neither.)
                put_right = bool(broken) and self._broken_seen.get(row_id, disk) != disk
                if broken:
                    self._broken_seen[row_id] = disk
                if recheck or put_right:
                    ok, fmt, width, height = _check_decodes(self.images_dir / name)
                    new_broken = 0 if ok else 1
                    if not ok and recheck:
                        report.broken.append(row_id)
                    if ok and (disk[0] != size or broken):
                        # Another file under its name, or one readable again: read whole again.
                        reread.append((row_id, name, fmt, width, height, disk))
                        report.rewritten.append(row_id)
                        rewritten.append(image_uuid)
                if missing or new_broken != broken or disk[0] != size:
                    updates.append((0, new_broken, disk[0], row_id))

            new_rows: list[dict[str, Any]] = []
            # Only the files without a row are sorted (indexed in name order): sorting every
            # name holds Python's lock for tens of milliseconds at 100,000 images, and so
            # does a set difference of them all (one call); a loop lets the lock go.
            for name in sorted([name for name in on_disk if name not in known_names]):
                file_size, mtime = on_disk[name]
                path = self.images_dir / name
                if not path.is_file():
                    continue  # gone since the folder was listed (deleted with its row meanwhile)
                stem, ext = os.path.splitext(name)
                # A file of the person's own, named as file managers name copies ("My Photo
                # (1).png", "café.png"), is indexed too, under an id made from its name.
                image_uuid = stem if _SAFE_NAME.match(stem) else _own_file_id(name)
                ok, fmt, width, height = _check_decodes(path)
                record = _metadata().read_record(path) or GenerationRecord()
                values = self._row_values(
                    record,
                    image_uuid=image_uuid,
                    file_name=name,
                    fmt=fmt or IMAGE_EXTENSIONS[ext.lower()],
                    width=width or record.width or 0,
                    height=height or record.height or 0,
                    file_size=file_size,
                    mtime=mtime,
                )
                values["broken"] = 0 if ok else 1
                # Not hashed past the size checked for decoding: such a file is none of this
                # library's images (a link to a disk image, say, read whole for minutes).
                values["content_sha256"] = _file_sha256(path) if file_size <= MAX_CHECK_BYTES else None
                new_rows.append(values)

            changed_rows = [
                self._reread_values(row_id, name, fmt, width, height, disk)
                for row_id, name, fmt, width, height, disk in reread
            ]

            with self._transaction() as conn:
                conn.executemany("UPDATE images SET missing=?, broken=?, file_size=? WHERE id=?", updates)
                for changed in changed_rows:
                    if changed is not None:
                        self._update_read_again(conn, changed)
                # A file renamed in images/ (by hand, or a sync tool) is its row's image under
                # another name: the row follows it, with its favourite, place and lineage.
                moved_from: dict[str, int] = {}
                moved: set[int] = set()
                if new_rows:
                    for row_id, digest in conn.execute("SELECT id, content_sha256 FROM images WHERE missing=1"):
                        if digest:
                            moved_from.setdefault(digest, row_id)
                for values in new_rows:
                    row_id = moved_from.pop(values["content_sha256"], None)
                    if row_id is not None:
                        conn.execute(
                            "UPDATE images SET file_name=?, format=?, missing=0, broken=?, file_size=? WHERE id=?",
                            (values["file_name"], values["format"], values["broken"], values["file_size"], row_id),
                        )
                        moved.add(row_id)
                        continue
                    indexed = conn.execute("SELECT id FROM images WHERE file_name=?", (values["file_name"],)).fetchone()
                    if indexed:
                        # Indexed since the folder was listed, by the process that saved it
                        # (a generate beside the window): in the library, and shown as new.
                        report.indexed.append(indexed[0])
                        continue
                    taken = conn.execute(
                        "SELECT file_name FROM images WHERE image_uuid=?", (values["image_uuid"],)
                    ).fetchone()
                    if taken and taken[0] != values["file_name"]:
                        # Another file has the id its stem makes ("sunset.png" beside
                        # "sunset.jpg"): this one goes under an id made from its whole name.
                        values["image_uuid"] = _free_own_file_id(conn, values["file_name"])
                        taken = values["image_uuid"] is None
                    if taken:
                        report.skipped.append(values["file_name"])
                        continue
                    row_id = self._insert(conn, values)
                    report.indexed.append(row_id)
                    if values["broken"]:
                        report.broken.append(row_id)
        if moved:  # each once, in one pass (a list's remove, once a file, is quadratic)
            report.newly_missing = [i for i in report.newly_missing if i not in moved]
            report.found_again.extend(sorted(moved))
        for image_uuid in rewritten:  # made again from the image as it is now, whatever its date
            self.drop_thumbnails(image_uuid)
        # Freed at once when this returns, 100,000 names and sizes would be one long
        # deallocation holding Python's lock (up to 25 ms with the window scrolling beside
        # it); emptied step by step, the lock changes hands as usual.
        _empty_gradually(on_disk)
        _empty_gradually(known_names)
        if self._salvaged_favourites:
            # By file name too: a file renamed by hand kept its row's id, which the rebuild
            # (reading the file) does not know.
            with self._transaction() as conn:
                conn.executemany(
                    "UPDATE images SET favourite = 1 WHERE image_uuid = ? OR file_name = ?",
                    sorted(self._salvaged_favourites),
                )
            self._salvaged_favourites = set()
            with suppress(OSError):
                self._salvage_path.unlink(missing_ok=True)
        self.needs_rebuild = False  # every file has its row now
        return report

    # -- lineage and sweeps --------------------------------------------------------------------

    def find_image(
        self, *, path: Path | None = None, image_uuid: str | None = None, sha256: str | None = None
    ) -> LibraryEntry | None:
        """The library image that a file is: the file itself (in ``images/``), a file whose
        embedded imageUUID is a library image's, or a copy with the same bytes."""
        if path is not None:
            try:
                inside = Path(path).resolve().parent == self.images_dir.resolve()
            except OSError:
                inside = False
            if inside:
                row = (
                    self._conn()
                    .execute(f"SELECT {_COLUMNS} FROM images WHERE file_name = ?", (Path(path).name,))
                    .fetchone()
                )
                if row is not None:
                    return self._entry(row)
        if image_uuid:
            entry = self.get_by_uuid(image_uuid)
            if entry is not None:
                return entry
        if sha256:
            row = (
                self._conn()
                .execute(f"SELECT {_COLUMNS} FROM images WHERE content_sha256 = ? LIMIT 1", (sha256,))
                .fetchone()
            )
            if row is not None:
                return self._entry(row)
        return None

    def parents(self, entry_id: int) -> list[tuple[str, float | None]]:
        """The library images ``entry_id`` was made from (imageUUID, strength), in the
        order of its references; an image since deleted is still named."""
        rows = self._conn().execute(
            "SELECT parent_uuid, strength FROM lineage WHERE child_id = ? ORDER BY position", (entry_id,)
        )
        return [(r[0], r[1]) for r in rows]

    def children(self, image_uuid: str) -> list[tuple[int, float | None]]:
        """The images made with ``image_uuid`` as a reference (row id, strength), newest first."""
        rows = self._conn().execute(
            "SELECT lineage.child_id, lineage.strength FROM lineage JOIN images ON images.id = lineage.child_id "
            "WHERE lineage.parent_uuid = ? ORDER BY images.created_at DESC, images.id DESC",
            (image_uuid,),
        )
        return [(r[0], r[1]) for r in rows]

    def ancestors(self, entry_id: int, limit: int = 10_000) -> list[int]:
        """Row ids of every image ``entry_id`` descends from (parents, their parents…)."""
        rows = self._conn().execute(
            """
            WITH RECURSIVE up(id) AS (
                SELECT images.id FROM lineage JOIN images ON images.image_uuid = lineage.parent_uuid
                WHERE lineage.child_id = ?
                UNION
                SELECT images.id FROM up JOIN lineage ON lineage.child_id = up.id
                JOIN images ON images.image_uuid = lineage.parent_uuid
            )
            SELECT id FROM up WHERE id != ? LIMIT ?
            """,
            (entry_id, entry_id, limit),
        )
        return [r[0] for r in rows]

    def descendants(self, entry_id: int, limit: int = 10_000) -> list[int]:
        """Row ids of every image made from ``entry_id`` (children, their children…)."""
        rows = self._conn().execute(
            """
            WITH RECURSIVE down(id) AS (
                SELECT lineage.child_id FROM lineage JOIN images ON images.image_uuid = lineage.parent_uuid
                WHERE images.id = ?
                UNION
                SELECT lineage.child_id FROM down JOIN images ON images.id = down.id
                JOIN lineage ON lineage.parent_uuid = images.image_uuid
            )
            SELECT id FROM down WHERE id != ? LIMIT ?
            """,
            (entry_id, entry_id, limit),
        )
        return [r[0] for r in rows]

    def sweep_entries(self, sweep_id: str) -> list[LibraryEntry]:
        """Every image of one sweep (its cells and its contact sheet), oldest first."""
        rows = self._conn().execute(
            f"SELECT {_COLUMNS} FROM images WHERE sweep_id = ? ORDER BY created_at, id", (sweep_id,)
        )
        return [self._entry(r) for r in rows]

    def sweeps(self) -> list[tuple[str, int, str]]:
        """Every sweep in the library: (id, images, when it started), newest first."""
        rows = self._conn().execute(
            "SELECT sweep_id, COUNT(*), MIN(created_at) FROM images WHERE sweep_id IS NOT NULL "
            "GROUP BY sweep_id ORDER BY MIN(created_at) DESC"
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def last_cost(
        self, width: int | None = None, height: int | None = None, *, simulated: bool = False
    ) -> float | None:
        """The cost the service last reported for one image of this size (of any size when
        none of this size has one), or None when it never reported one. Only from the
        simulator with ``simulated`` (demo mode), never from it without: a made-up amount
        is no estimate of what Runware charges (records that do not say count as either)."""
        conn = self._conn()
        other = 0 if simulated else 1  # the flag of the rows left out
        kept = "AND (CASE WHEN json_valid(params) THEN json_extract(params, '$.simulated') END) IS NOT ?"
        if width is not None and height is not None:
            row = conn.execute(
                f"SELECT cost FROM images WHERE cost IS NOT NULL AND width = ? AND height = ? {kept} "
                "ORDER BY created_at DESC, id DESC LIMIT 1",
                (width, height, other),
            ).fetchone()
            if row is not None:
                return float(row[0])
        row = conn.execute(
            f"SELECT cost FROM images WHERE cost IS NOT NULL {kept} ORDER BY created_at DESC, id DESC LIMIT 1",
            (other,),
        ).fetchone()
        return None if row is None else float(row[0])

    # -- reference uploads ---------------------------------------------------------------------

    def reference_lookup(self, digest: str) -> tuple[str, float] | None:
        row = (
            self._conn()
            .execute("SELECT image_uuid, last_used FROM reference_uploads WHERE digest = ?", (digest,))
            .fetchone()
        )
        return None if row is None else (row[0], float(row[1]))

    def reference_remember(self, digest: str, image_uuid: str, when: float | None = None) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO reference_uploads (digest, image_uuid, last_used) VALUES (?, ?, ?) "
                "ON CONFLICT(digest) DO UPDATE SET image_uuid = excluded.image_uuid, last_used = excluded.last_used",
                (digest, image_uuid, time.time() if when is None else when),
            )

    def reference_forget(self, digest: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM reference_uploads WHERE digest = ?", (digest,))

    def reference_prune(self, older_than: float) -> int:
        """Drop uploads last used before ``older_than`` (epoch seconds); the service has forgotten them."""
        with self._transaction() as conn:
            return conn.execute("DELETE FROM reference_uploads WHERE last_used < ?", (older_than,)).rowcount


class LibraryReferenceCache:
    """The persistent :class:`krea_desktop.api.refcache.ReferenceCache`, kept in the library index.

    Entries older than the service's upload lifetime are treated as unknown.
    """

    def __init__(self, library: Library, lifetime_s: float = spec.UPLOAD_LIFETIME_S) -> None:
        self._library = library
        self._lifetime = lifetime_s

    def lookup(self, digest: str) -> tuple[str, float] | None:
        found = self._library.reference_lookup(digest)
        if found is None or found[1] < time.time() - self._lifetime:
            return None
        return found

    def remember(self, digest: str, image_uuid: str, when: float | None = None) -> None:
        self._library.reference_remember(digest, image_uuid, when)

    def forget(self, digest: str) -> None:
        self._library.reference_forget(digest)

"""The library index's schema and its migrations, one step per ``PRAGMA user_version``.

Schema 1 is the images table (with its trigram prompt index where SQLite has FTS5) and
the reference upload cache; schema 2 adds lineage and sweeps; schema 3 keeps the number
of images in a row of its own. A library written by a newer version is refused in one
sentence and left untouched. Indexes that only make queries faster, which no version names
in its queries, are made outside the steps (:func:`ensure_indexes`), so that a library
opened by this version still opens with the versions before it.
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 3


class LibraryError(Exception):
    """The library cannot be opened or used; the message says why in one sentence."""


class LibraryBusy(LibraryError):
    """Another process held the index's write lock for longer than the busy timeout."""


def _fts5_available(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("CREATE VIRTUAL TABLE temp._fts_probe USING fts5(x, tokenize='trigram')")
        conn.execute("DROP TABLE temp._fts_probe")
        return True
    except sqlite3.Error:
        return False


_SCHEMA_1 = (
    """
    CREATE TABLE images (
        id             INTEGER PRIMARY KEY,
        image_uuid     TEXT NOT NULL UNIQUE,
        task_uuid      TEXT,
        file_name      TEXT NOT NULL,
        format         TEXT NOT NULL,
        width          INTEGER NOT NULL DEFAULT 0,
        height         INTEGER NOT NULL DEFAULT 0,
        ratio          TEXT,
        prompt         TEXT NOT NULL DEFAULT '',
        creativity     TEXT,
        seed           INTEGER,
        number_results INTEGER,
        output_quality INTEGER,
        refs           TEXT NOT NULL DEFAULT '[]',   -- JSON list of {image, strength, source?}
        params         TEXT NOT NULL DEFAULT '{}',   -- the full embedded record (JSON)
        cost           REAL,
        nsfw           INTEGER,
        created_at     TEXT NOT NULL,                -- ISO 8601 UTC, fixed width
        favourite      INTEGER NOT NULL DEFAULT 0,
        missing        INTEGER NOT NULL DEFAULT 0,   -- the file is not in images/
        broken         INTEGER NOT NULL DEFAULT 0,   -- the file does not decode
        file_size      INTEGER
    )
    """,
    "CREATE INDEX images_by_created ON images(created_at DESC, id DESC)",
    "CREATE INDEX images_by_favourite ON images(favourite, created_at DESC, id DESC)",
    "CREATE INDEX images_by_ratio ON images(ratio, created_at DESC, id DESC)",
    "CREATE INDEX images_by_file_name ON images(file_name)",
    """
    CREATE TABLE reference_uploads (
        digest     TEXT PRIMARY KEY,                 -- sha256 of the uploaded content
        image_uuid TEXT NOT NULL,
        last_used  REAL NOT NULL                     -- epoch seconds
    )
    """,
)

# Trigram tokens give substring search (any three or more characters), as LIKE does.
_FTS_1 = (
    "CREATE VIRTUAL TABLE images_fts USING fts5(prompt, content='images', content_rowid='id', tokenize='trigram')",
    """
    CREATE TRIGGER images_fts_insert AFTER INSERT ON images BEGIN
        INSERT INTO images_fts(rowid, prompt) VALUES (new.id, new.prompt);
    END
    """,
    """
    CREATE TRIGGER images_fts_delete AFTER DELETE ON images BEGIN
        INSERT INTO images_fts(images_fts, rowid, prompt) VALUES ('delete', old.id, old.prompt);
    END
    """,
    """
    CREATE TRIGGER images_fts_update AFTER UPDATE OF prompt ON images BEGIN
        INSERT INTO images_fts(images_fts, rowid, prompt) VALUES ('delete', old.id, old.prompt);
        INSERT INTO images_fts(rowid, prompt) VALUES (new.id, new.prompt);
    END
    """,
)


def _migrate_to_1(conn: sqlite3.Connection, fts: bool) -> None:
    for statement in _SCHEMA_1 + (_FTS_1 if fts else ()):
        conn.execute(statement)


# Schema 2: lineage and sweeps. ``content_sha256`` is the hash of the file as written (a
# copy of it found elsewhere is known by it); ``sweep_id`` is read from the record, so a
# row restored or re-indexed from its file needs nothing more; ``lineage`` has one row per
# reference that was a library image, kept by triggers in step with ``images``.
_SCHEMA_2 = (
    "ALTER TABLE images ADD COLUMN content_sha256 TEXT",
    "ALTER TABLE images ADD COLUMN sweep_id TEXT GENERATED ALWAYS AS "
    "(CASE WHEN json_valid(params) THEN json_extract(params, '$.sweep.id') END) VIRTUAL",
    "CREATE INDEX images_by_sweep ON images(sweep_id) WHERE sweep_id IS NOT NULL",
    "CREATE INDEX images_by_content ON images(content_sha256) WHERE content_sha256 IS NOT NULL",
    """
    CREATE TABLE lineage (
        child_id    INTEGER NOT NULL,                -- images.id of the image made
        parent_uuid TEXT NOT NULL,                   -- imageUUID of the reference's library image
        position    INTEGER NOT NULL,                -- the reference's place in the request
        strength    REAL
    )
    """,
    "CREATE INDEX lineage_by_parent ON lineage(parent_uuid)",
    "CREATE INDEX lineage_by_child ON lineage(child_id)",
    """
    CREATE TRIGGER images_lineage_insert AFTER INSERT ON images WHEN json_valid(new.refs) BEGIN
        INSERT INTO lineage(child_id, parent_uuid, position, strength)
        SELECT new.id, json_extract(value, '$.parent'), CAST(key AS INTEGER), json_extract(value, '$.strength')
        FROM json_each(new.refs)
        WHERE json_type(value) = 'object' AND json_type(value, '$.parent') = 'text';
    END
    """,
    """
    CREATE TRIGGER images_lineage_delete AFTER DELETE ON images BEGIN
        DELETE FROM lineage WHERE child_id = old.id;
    END
    """,
    """
    INSERT INTO lineage(child_id, parent_uuid, position, strength)
    SELECT images.id, json_extract(value, '$.parent'), CAST(key AS INTEGER), json_extract(value, '$.strength')
    FROM images, json_each(images.refs)
    WHERE json_valid(images.refs) AND json_type(value) = 'object' AND json_type(value, '$.parent') = 'text'
    """,
)


def _migrate_to_2(conn: sqlite3.Connection, fts: bool) -> None:
    for statement in _SCHEMA_2:
        conn.execute(statement)


# Schema 3: the number of images, kept by triggers. SQLite counts a table by walking an
# index (1.3 ms at 100,000 rows), and the window shows the count after every new image.
_SCHEMA_3 = (
    "CREATE TABLE image_count (n INTEGER NOT NULL)",
    "INSERT INTO image_count(n) SELECT COUNT(*) FROM images",
    "CREATE TRIGGER images_count_insert AFTER INSERT ON images BEGIN UPDATE image_count SET n = n + 1; END",
    "CREATE TRIGGER images_count_delete AFTER DELETE ON images BEGIN UPDATE image_count SET n = n - 1; END",
)


def _migrate_to_3(conn: sqlite3.Connection, fts: bool) -> None:
    for statement in _SCHEMA_3:
        conn.execute(statement)


_MIGRATIONS = {1: _migrate_to_1, 2: _migrate_to_2, 3: _migrate_to_3}

# The index that orders the images newest first carries each prompt too. A search for a word
# of one or two letters (which the trigram index cannot answer) then reads that index alone
# instead of each matching row of the table: the ids of 60,000 matches of 100,000 in 22 ms
# instead of 55 (bench_gallery.py), for about the prompts' length again in the file. The
# order is the same, so it takes the place of the index without the prompt.
ORDERING_INDEX = "images_by_created_prompt"
_ORDERING = (
    f"CREATE INDEX IF NOT EXISTS {ORDERING_INDEX} ON images(created_at DESC, id DESC, prompt)",
    "DROP INDEX IF EXISTS images_by_created",
)


def ensure_indexes(conn: sqlite3.Connection) -> None:
    """Make the indexes that only speed queries up, once (about 0.15 s at 100,000 images).
    A library that cannot take them now (read-only, or another process writing) is used
    without them: the queries are the same, only slower. ``conn`` must be in autocommit mode."""
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (ORDERING_INDEX,))
    if found.fetchone() is not None:
        return
    # Never wait for another writer here (this runs while the window opens): a library
    # busy now gets the index at a later open.
    (waits,) = conn.execute("PRAGMA busy_timeout").fetchone()
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(waits)}")
    try:
        for statement in _ORDERING:
            conn.execute(statement)
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        if conn.in_transaction:  # SQLite may have ended it already (I/O error, disk full)
            conn.execute("ROLLBACK")
        if not isinstance(exc, sqlite3.OperationalError):  # damage: the caller says so
            raise


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to :data:`SCHEMA_VERSION` (tracked in ``PRAGMA user_version``),
    one step per transaction; safe if another process migrates at the same time.
    Returns the version found before migrating. ``conn`` must be in autocommit mode."""
    (found,) = conn.execute("PRAGMA user_version").fetchone()
    if found > SCHEMA_VERSION:
        raise LibraryError(
            f"The library was written by a newer version of Krea Desktop "
            f"(schema {found}; this version knows {SCHEMA_VERSION})."
        )
    if found == SCHEMA_VERSION:
        return int(found)  # nothing to write: a library busy with another writer still opens
    fts = _fts5_available(conn)
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version >= SCHEMA_VERSION:
                conn.execute("COMMIT")
                return int(found)
            _MIGRATIONS[version + 1](conn, fts)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

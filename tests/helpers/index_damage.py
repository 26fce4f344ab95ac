"""Damage to a library's index as a bad sector leaves it."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path


def damage_a_page_of_the_table(index: Path, image_uuid: str) -> None:
    """Random bytes over the page of the index's table that holds ``image_uuid``'s row (a
    table's leaf page: type 13), the rest of the file as it was."""
    data = bytearray(index.read_bytes())
    size = int.from_bytes(data[16:18], "big")
    wanted = image_uuid.encode()
    hit = next(at for at in range(size, len(data), size) if data[at] == 13 and wanted in data[at : at + size])
    data[hit : hit + size] = random.Random(3).randbytes(size)
    index.write_bytes(bytes(data))


def damage_every_page_of(index: Path, name: str) -> None:
    """Random bytes over every page of the index's table or index ``name`` (as SQLite's
    dbstat names it: ``images_fts_data``, ``images_by_ratio``…), the rest as it was."""
    conn = sqlite3.connect(index)
    try:
        pages = [p for (p,) in conn.execute("SELECT pageno FROM dbstat WHERE name = ?", (name,))]
    finally:
        conn.close()
    assert pages, f"no pages of {name} in {index}"
    data = bytearray(index.read_bytes())
    size = int.from_bytes(data[16:18], "big")
    noise = random.Random(5)
    for page in pages:
        data[(page - 1) * size : page * size] = noise.randbytes(size)
    index.write_bytes(bytes(data))

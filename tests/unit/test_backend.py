"""Putting the core together: opening a backend tidies the library's record of uploads."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from krea_desktop.api import spec
from krea_desktop.backend import make_client, open_backend
from krea_desktop.library.store import Library

OLD, RECENT = "a" * 64, "b" * 64


def remember_uploads(folder: Path) -> None:
    with Library(folder) as lib:
        now = time.time()
        lib.reference_remember(OLD, "uuid-old", when=now - spec.UPLOAD_LIFETIME_S - 60)
        lib.reference_remember(RECENT, "uuid-recent", when=now - 60)


def test_opening_a_backend_drops_uploads_the_service_has_forgotten(tmp_path: Path) -> None:
    remember_uploads(tmp_path)
    backend = open_backend(data_dir=tmp_path, demo=True)
    try:
        assert backend.library.reference_lookup(OLD) is None
        assert backend.library.reference_lookup(RECENT) is not None
    finally:
        asyncio.run(backend.aclose())
        backend.library.close()


def test_the_windows_client_drops_them_too(tmp_path: Path) -> None:
    remember_uploads(tmp_path)
    with Library(tmp_path) as lib:
        client, demo = make_client(None, None, lib)  # as the window's client thread makes it
        try:
            assert demo
            assert lib.reference_lookup(OLD) is None
            assert lib.reference_lookup(RECENT) is not None
        finally:
            asyncio.run(client.aclose())

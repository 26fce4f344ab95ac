"""Putting the core together: opening a backend tidies the library's record of uploads,
which only the service's uploads go into."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from PIL import Image

from krea_desktop.api import spec
from krea_desktop.api.refcache import content_hash
from krea_desktop.api.request import GenerationRequest, ReferenceImage
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


def test_the_demos_uploads_are_not_kept_with_the_services(tmp_path: Path) -> None:
    """Each start has a new simulator: a reference uploaded to the last one is uploaded
    again without first being refused, and nothing of the demo's is offered to the service."""
    Image.new("RGB", (64, 64), (200, 40, 40)).save(tmp_path / "fox.png")
    request = GenerationRequest(
        prompt="a fox", ratio="1:1", seed=7, references=(ReferenceImage(tmp_path / "fox.png", 0.5),)
    )

    async def generate(lib: Library) -> list[str]:
        client, demo = make_client(None, None, lib, demo_latency=0.0)
        said: list[str] = []
        try:
            assert demo
            images = [image async for image in client.generate(request, on_status=said.append)]
            assert len(images) == 1
        finally:
            await client.aclose()
        return said

    with Library(tmp_path / "data") as lib:
        for _start in range(2):
            said = asyncio.run(generate(lib))
            assert "Uploading references again…" not in said, said
        assert lib.reference_lookup(content_hash((tmp_path / "fox.png").read_bytes())) is None

"""Putting the core together: opening a backend tidies the library's record of uploads,
which only the service's uploads go into."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
from PIL import Image

from krea_desktop.api import spec
from krea_desktop.api.client import RunwareClient
from krea_desktop.api.refcache import content_hash
from krea_desktop.api.request import GenerationRequest, ReferenceImage
from krea_desktop.backend import demo_transport, make_client, open_backend
from krea_desktop.library.metadata import read_record
from krea_desktop.library.store import Library, LibraryEntry

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


def test_the_demos_images_say_in_their_records_that_the_simulator_made_them(tmp_path: Path) -> None:
    """So that a cost the simulator made up is never shown, or used for an estimate, as
    one Runware charged, once a key is added (or the other way round)."""
    request = GenerationRequest(prompt="a heron", ratio="1:1", seed=3, number_results=2, include_cost=True)

    class ThroughAnotherService(httpx.AsyncBaseTransport):
        """The simulator's answers, as a client with a key gets the service's."""

        def __init__(self) -> None:
            self.inner = demo_transport(0.0)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return await self.inner.handle_async_request(request)

    async def generate(client: RunwareClient, lib: Library) -> list[LibraryEntry]:
        try:
            return [lib.save(image) async for image in client.generate(request)]
        finally:
            await client.aclose()

    with Library(tmp_path) as lib:
        client, demo = make_client(None, None, lib, demo_latency=0.0)
        assert demo and client.simulated
        made_up = asyncio.run(generate(client, lib))
        paid = asyncio.run(generate(RunwareClient("key", transport=ThroughAnotherService()), lib))
        assert [e.simulated for e in made_up] == [True, True]
        assert [e.simulated for e in paid] == [False, False]
        # Said in the file too: read back from it, as another library would index it.
        assert read_record(made_up[0].path).simulated is True
        assert read_record(paid[0].path).simulated is False
        again = lib.get(made_up[0].id)
        assert again is not None and again.simulated is True and again.cost is not None
        # Estimates: the simulator's cost in demo mode only, Runware's with a key only.
        made_up_cost, paid_cost = made_up[0].cost, paid[0].cost
        assert made_up_cost is not None and paid_cost is not None
        with lib._conn() as conn:  # paid amounts different from the simulator's
            conn.executemany("UPDATE images SET cost = 0.01 WHERE id = ?", [(e.id,) for e in paid])
        assert lib.last_cost(1024, 1024, simulated=False) == 0.01
        assert lib.last_cost(1024, 1024, simulated=True) == made_up_cost

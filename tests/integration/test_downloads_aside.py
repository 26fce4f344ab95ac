"""Image URLs are downloaded on a thread of the client's own: a caller that holds its loop
while it saves an image (a plain file write in ``async for``) does not hold up the next
download, and closing the client ends that thread."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from krea_desktop.api import errors as E
from krea_desktop.api.client import RunwareClient
from krea_desktop.api.request import GenerationRequest
from krea_desktop.simulator.service import Reply
from tests.helpers.sim import Sim

HOLD = 0.5  # how long the caller keeps its loop busy with each image


def served_at(sim: Sim, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """When each image download was answered (monotonic), in order."""
    times: list[float] = []
    answer = sim.service.image_reply

    async def noting(name: str, fault: str | None = None) -> Reply:
        reply = await answer(name, fault)
        times.append(time.monotonic())
        return reply

    monkeypatch.setattr(sim.service, "image_reply", noting)
    return times


def download_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "krea-downloads"]


def test_the_next_image_downloads_while_the_caller_holds_its_loop(sim: Sim, monkeypatch: pytest.MonkeyPatch) -> None:
    served = served_at(sim, monkeypatch)
    request = GenerationRequest("a kite over dunes", number_results=3, output_type="URL")
    held: list[tuple[float, float]] = []

    async def go() -> list[int]:
        indexes = []
        async with RunwareClient("k", base_url=sim.url) as client:
            async for image in client.generate(request):
                indexes.append(image.index)
                start = time.monotonic()
                time.sleep(HOLD)  # blocking, as a file write is
                held.append((start, time.monotonic()))
        return indexes

    assert asyncio.run(go()) == [0, 1, 2]
    assert len(served) == 3
    # The second and third images were on their way while the caller held the one before.
    for (start, end), answered in zip(held, served[1:], strict=False):
        assert start < answered < end
    assert not download_threads()  # closing the client ended its downloads' thread


def test_a_download_cancelled_with_its_batch_ends_with_the_client(sim: Sim) -> None:
    request = GenerationRequest("a kite over dunes", number_results=4, output_type="URL")

    async def go() -> int:
        got = 0
        async with RunwareClient("k", base_url=sim.url) as client:
            async for _image in client.generate(request):
                got += 1
                break  # the next download is under way on the other thread
        return got

    assert asyncio.run(go()) == 1
    assert not download_threads()


def test_a_closed_client_downloads_nothing(sim: Sim) -> None:
    async def go() -> Any:
        client = RunwareClient("k", base_url=sim.url)
        await client.aclose()
        request = GenerationRequest("a kite", output_type="URL")
        with pytest.raises(E.KreaError, match="This client is closed"):
            async for _image in client.generate(request):
                pass

    asyncio.run(go())
    assert not download_threads()


def test_a_client_closed_while_a_batch_is_followed_says_so(sim: Sim) -> None:
    request = GenerationRequest("a kite over dunes", number_results=3, output_type="URL")

    async def go() -> int:
        got = 0
        client = RunwareClient("k", base_url=sim.url)
        with pytest.raises(E.KreaError, match="This client is closed"):
            async for _image in client.generate(request):
                got += 1
                await asyncio.sleep(HOLD)  # the next image is downloaded meanwhile
                await client.aclose()  # by another part of the caller's program
        return got

    assert asyncio.run(go()) == 1
    assert not download_threads()

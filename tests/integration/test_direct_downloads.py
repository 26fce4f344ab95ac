"""Image URLs through the real client over loopback: a plain answer is read straight into
the image's buffer (``api.direct``) and httpx never asks; a busy or missing image is
handled from that answer, asked for once per attempt; a 200 of another kind goes to httpx,
which says what was wrong with it."""

from __future__ import annotations

import asyncio
import gzip
import io
from typing import Any

import httpx
import pytest
from PIL import Image

from krea_desktop.api import errors as E
from krea_desktop.api.client import RetryPolicy, RunwareClient
from krea_desktop.api.direct import DirectDownloads
from krea_desktop.api.request import GenerationRequest
from krea_desktop.simulator.service import Reply
from tests.helpers.sim import Sim


class Spy:
    """Counts the image downloads the simulator answered, httpx's GETs and the images read
    straight into their buffers."""

    def __init__(self, sim: Sim, monkeypatch: pytest.MonkeyPatch, replies: dict[int, Reply] | None = None) -> None:
        self.image_requests = 0
        self.httpx_gets = 0
        self.direct_images = 0
        answer = sim.service.image_reply
        stream = httpx.AsyncClient.stream
        get = DirectDownloads.get

        async def replying(name: str, fault: str | None = None) -> Reply:
            self.image_requests += 1
            instead = (replies or {}).get(self.image_requests)
            return instead if instead is not None else await answer(name, fault)

        def counting_stream(client: httpx.AsyncClient, method: str, url: Any, **kw: Any) -> Any:
            if method == "GET":
                self.httpx_gets += 1
            return stream(client, method, url, **kw)

        async def counting_get(downloads: DirectDownloads, url: str, limit: int) -> Any:
            got = await get(downloads, url, limit)
            if isinstance(got, bytes):
                self.direct_images += 1
            return got

        monkeypatch.setattr(sim.service, "image_reply", replying)
        monkeypatch.setattr(httpx.AsyncClient, "stream", counting_stream)
        monkeypatch.setattr(DirectDownloads, "get", counting_get)


async def collect(client: RunwareClient, request: GenerationRequest) -> list[Any]:
    try:
        return [image async for image in client.generate(request)]
    finally:
        await client.aclose()


@pytest.mark.parametrize("delivery", ["sync", "async"])
@pytest.mark.parametrize("gui", [False, True])
def test_plain_image_answers_are_read_without_httpx(
    sim: Sim, monkeypatch: pytest.MonkeyPatch, delivery: str, gui: bool
) -> None:
    spy = Spy(sim, monkeypatch)
    request = GenerationRequest("a kite over dunes", number_results=3, output_type="URL", delivery_method=delivery)
    images = asyncio.run(collect(RunwareClient("k", base_url=sim.url, gui=gui), request))
    assert len(images) == 3
    for image in images:
        with Image.open(io.BytesIO(image.data)) as picture:
            picture.load()  # whole and readable
            assert picture.size == (image.width, image.height)
    assert spy.direct_images == 3 and spy.httpx_gets == 0 and spy.image_requests == 3


def test_a_busy_image_host_is_asked_again_as_it_said_and_once_each_time(
    sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    busy = Reply.json(503, {"errors": []}, headers={"Retry-After": "4"})
    spy = Spy(sim, monkeypatch, {1: busy, 2: busy})
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    client = RunwareClient("k", base_url=sim.url, sleep=sleep, retry=RetryPolicy(attempts=3))
    images = asyncio.run(collect(client, GenerationRequest("a kite over dunes", output_type="URL")))
    assert len(images) == 1
    assert sleeps == [4.0, 4.0]
    assert spy.image_requests == 3 and spy.httpx_gets == 0


def test_a_missing_image_is_said_in_one_sentence_after_one_request(sim: Sim, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy(sim, monkeypatch, {n: Reply.json(404, {"errors": []}) for n in range(1, 10)})
    client = RunwareClient("k", base_url=sim.url, retry=RetryPolicy(attempts=2))
    with pytest.raises(E.MalformedResponseError) as raised:
        asyncio.run(collect(client, GenerationRequest("a kite over dunes", output_type="URL")))
    assert "HTTP 404" in str(raised.value)
    # Damaged data is fetched again with the next answer (at most twice): each time one request.
    assert spy.httpx_gets == 0 and spy.image_requests == 3


def test_a_compressed_image_goes_to_httpx_which_refuses_it(sim: Sim, monkeypatch: pytest.MonkeyPatch) -> None:
    compressed = Reply(200, {"Content-Type": "image/png", "Content-Encoding": "gzip"}, gzip.compress(bytes(1000)))
    spy = Spy(sim, monkeypatch, {n: compressed for n in range(1, 10)})
    client = RunwareClient("k", base_url=sim.url, retry=RetryPolicy(attempts=2))
    with pytest.raises(E.MalformedResponseError) as raised:
        asyncio.run(collect(client, GenerationRequest("a kite over dunes", output_type="URL")))
    assert "compressed" in str(raised.value)
    assert spy.httpx_gets >= 1 and spy.direct_images == 0


def test_downloads_through_a_proxy_are_all_httpx_s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    client = RunwareClient("k", base_url="https://api.runware.ai/v1")
    try:
        assert client._direct is None
    finally:
        asyncio.run(client.aclose())
    monkeypatch.delenv("HTTPS_PROXY")
    client = RunwareClient("k", base_url="https://api.runware.ai/v1")
    try:
        assert client._direct is not None
    finally:
        asyncio.run(client.aclose())


def test_an_image_the_direct_way_could_not_get_is_asked_for_through_httpx_at_once(
    sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The connection dropped without an answer: httpx asks again in the same attempt, no
    # wait, and handles the image from then on.
    spy = Spy(sim, monkeypatch, {1: Reply(action="drop")})
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    client = RunwareClient("k", base_url=sim.url, sleep=sleep, retry=RetryPolicy(attempts=3))
    images = asyncio.run(collect(client, GenerationRequest("a kite over dunes", output_type="URL")))
    assert len(images) == 1
    assert sleeps == []
    assert spy.image_requests == 2 and spy.httpx_gets == 1 and spy.direct_images == 0

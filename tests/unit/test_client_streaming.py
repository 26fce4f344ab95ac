"""Images are handed over as they arrive: from an answer still being received, ahead of a
slow caller, and with polls timed to the service's pace; the window's costs (GIL pacing,
the base64 helper process) are paid only by a client that asks for them."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image

from krea_desktop.api import b64helper, pacing
from krea_desktop.api import body as body_mod
from krea_desktop.api.client import RunwareClient, _Context, sent_record
from krea_desktop.api.request import GenerationRequest
from krea_desktop.api.response import Blob, ItemScanner, parse_body
from krea_desktop.api.results import GeneratedImage

URL = "https://api.example.test/v1"


def png(w: int, h: int, grey: int | None = None) -> bytes:
    """An uncompressed PNG (3 MB at 1024x1024): random pixels, or all ``grey``."""
    pixels = os.urandom(w * h * 3) if grey is None else bytes([grey]) * (w * h * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (w, h), pixels).save(out, "PNG", compress_level=0)
    return out.getvalue()


def item(task_uuid: str, i: int, data: bytes) -> dict[str, Any]:
    return {
        "taskType": "imageInference",
        "taskUUID": task_uuid,
        "imageUUID": str(uuid.UUID(int=i + 1)),
        "seed": i,
        "status": "success",
        "imageBase64Data": base64.b64encode(data).decode(),
    }


def plain(value: Any) -> Any:
    """``value`` with each lifted string (a Blob) as the text it stands for."""
    if isinstance(value, Blob):
        return bytes(value.raw()).decode()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


# --- the scanner ---------------------------------------------------------------------------------


def test_the_scanner_finds_each_item_as_soon_as_it_is_complete_whatever_the_pieces() -> None:
    items = [
        {"imageUUID": f"u{i}", "imageBase64Data": base64.b64encode(os.urandom(300)).decode(), "x": {"a": [1, ']}\\"']}}
        for i in range(4)
    ]
    body = json.dumps({"data": items, "errors": [{"code": "x", "message": "a } in text"}]}, indent=1).encode()
    ends = [body.index(b'"u%d"' % i) for i in range(1, 4)] + [body.index(b'"errors"')]
    for step in (1, 13, 4096, len(body)):
        scanner = ItemScanner(body)
        found: list[tuple[int, int]] = []
        for end in range(step, len(body) + step, step):
            for span in scanner.feed(min(end, len(body))):
                assert span[1] <= min(end, len(body))  # reported once in, never before
                found.append(span)
        assert [plain(parse_body(body, a, b)) for a, b in found] == items
        assert all(b <= e for (_, b), e in zip(found, ends, strict=True))  # each before the next begins
        assert not scanner.broken


@pytest.mark.parametrize("body", [b"[1, 2, 3]", b'{"data": {"imageUUID": "u"}}', b'{"other": [{"a": 1}]}'])
def test_the_scanner_hands_over_nothing_from_answers_of_other_shapes(body: bytes) -> None:
    assert ItemScanner(body).feed(len(body)) == []


@pytest.mark.parametrize("piece", [4096, 1 << 30])
@pytest.mark.parametrize(
    "body",
    [b'{"data": [' + b"[" * 100_000, b'{"data": [' + b"1, " * 400_000 + b"1]}"],
    ids=["nested-without-end", "megabytes-of-numbers"],
)
def test_the_scanner_gives_up_on_an_answer_made_of_structure_alone(body: bytes, piece: int) -> None:
    # Looked at byte by byte, such an answer would hold the loop for seconds: the scanner
    # stops early (within its budget, counted across pieces) and leaves it to the whole parse.
    scanner = ItemScanner(body)
    for end in range(piece, len(body) + piece, piece):
        assert scanner.feed(min(end, len(body))) == []
    assert scanner.broken
    assert scanner.pos <= ItemScanner.MOST_STEPPED + len(b'{"data"')  # its one string skipped


# --- an answer still arriving ------------------------------------------------------------------


class HeldBody(httpx.AsyncByteStream):
    """A body sent in two parts: the second only once ``release`` is set."""

    def __init__(self, first: bytes, rest: bytes, release: asyncio.Event, events: list[str] | None = None) -> None:
        self.first, self.rest, self.release = first, rest, release
        self.events = events if events is not None else []

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self.first), 65536):
            yield self.first[i : i + 65536]
        await self.release.wait()
        self.events.append("rest of the answer")
        yield self.rest


@pytest.mark.parametrize("grown", [False, True], ids=["as-this-python-receives", "grown"])
def test_an_image_is_handed_over_before_the_rest_of_its_answer_arrives(
    grown: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer's second half is held back until the test has the first image: a client
    that waited for the whole answer would never get it. So too in an answer's buffer that
    grows as it arrives (Python 3.10's)."""
    if grown:
        monkeypatch.setattr(body_mod, "_MAPPING_SEARCHES_FAST", False)
    images = [png(1024, 1024) for _ in range(2)]

    async def go() -> list[GeneratedImage]:
        release = asyncio.Event()
        got: list[GeneratedImage] = []

        def answer(request: httpx.Request) -> httpx.Response:
            task = json.loads(request.content)[0]
            body = json.dumps({"data": [item(task["taskUUID"], i, d) for i, d in enumerate(images)]}).encode()
            split = body.index(b'"imageUUID": "%s"' % str(uuid.UUID(int=2)).encode()) - 40
            return httpx.Response(
                200,
                headers={"Content-Length": str(len(body)), "Content-Type": "application/json"},
                stream=HeldBody(body[:split], body[split:], release),
            )

        client = RunwareClient("k", base_url=URL, transport=httpx.MockTransport(answer))
        async with client:
            async for image in client.generate(GenerationRequest("two words", number_results=2)):
                got.append(image)
                release.set()  # only now may the rest of the answer come
        return got

    got = asyncio.run(asyncio.wait_for(go(), 30))
    assert [g.data for g in got] == images
    assert [g.index for g in got] == [0, 1]


@pytest.mark.parametrize("gui", [False, True])
def test_only_a_client_for_the_window_receives_an_answer_whole_first(gui: bool) -> None:
    """In the window, decoding while the answer arrives would put two threads against the
    GUI thread for the GIL; elsewhere the first image comes before the rest of its answer."""
    images = [png(1024, 1024) for _ in range(2)]
    events: list[str] = []

    async def go() -> None:
        release = asyncio.Event()
        asyncio.get_running_loop().call_later(0.5, release.set)  # at the latest

        def answer(request: httpx.Request) -> httpx.Response:
            task = json.loads(request.content)[0]
            body = json.dumps({"data": [item(task["taskUUID"], i, d) for i, d in enumerate(images)]}).encode()
            split = body.index(b'"imageUUID": "%s"' % str(uuid.UUID(int=2)).encode()) - 40
            stream = HeldBody(body[:split], body[split:], release, events)
            return httpx.Response(200, headers={"Content-Length": str(len(body))}, stream=stream)

        async with RunwareClient("k", base_url=URL, transport=httpx.MockTransport(answer), gui=gui) as client:
            async for image in client.generate(GenerationRequest("two words", number_results=2)):
                events.append(f"image {image.index}")
                release.set()

    asyncio.run(asyncio.wait_for(go(), 30))
    if gui:
        assert events == ["rest of the answer", "image 0", "image 1"]
    else:
        assert events == ["image 0", "rest of the answer", "image 1"]


def test_images_are_made_ready_while_the_caller_is_busy_with_one() -> None:
    """While the caller handles the first image, the next is already decoded."""
    images = [png(1024, 1024, i) for i in range(3)]
    decoded: list[float] = []

    async def go() -> list[float]:
        def answer(request: httpx.Request) -> httpx.Response:
            task = json.loads(request.content)[0]
            return httpx.Response(200, json={"data": [item(task["taskUUID"], i, d) for i, d in enumerate(images)]})

        client = RunwareClient("k", base_url=URL, transport=httpx.MockTransport(answer))
        original = client._decode_inline

        def decode(*args: Any) -> Any:
            out = original(*args)
            decoded.append(time.monotonic())
            return out

        client._decode_inline = decode  # type: ignore[method-assign]
        handed: list[float] = []
        async with client:
            async for _image in client.generate(GenerationRequest("two words", number_results=3)):
                handed.append(time.monotonic())
                await asyncio.sleep(0.3)  # a slow caller
        return handed

    handed = asyncio.run(go())
    assert len(decoded) == 3
    # the second image was decoded while the caller still held the first
    assert decoded[1] < handed[0] + 0.3 <= handed[1]


# --- flat out by default; the window's costs on request ----------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def thread_time(self) -> float:
        self.now += 0.001  # every step looks like a millisecond of work
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def generate_large(gui: bool) -> list[GeneratedImage]:
    images = [png(1024, 1024) for _ in range(2)]

    def answer(request: httpx.Request) -> httpx.Response:
        task = json.loads(request.content)[0]
        return httpx.Response(200, json={"data": [item(task["taskUUID"], i, d) for i, d in enumerate(images)]})

    async def go() -> list[GeneratedImage]:
        client = RunwareClient("k", base_url=URL, transport=httpx.MockTransport(answer), gui=gui)
        async with client:
            return [image async for image in client.generate(GenerationRequest("two words", number_results=2))]

    got = asyncio.run(go())
    assert [g.data for g in got] == images
    return got


def test_a_plain_client_neither_paces_nor_uses_the_helper(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(pacing, "_clock", clock.thread_time)
    monkeypatch.setattr(pacing, "_sleep", clock.sleep)
    helper = b64helper.shared()
    before = helper.decoded
    generate_large(gui=False)
    assert clock.sleeps == []
    assert helper.decoded == before


def test_a_client_for_the_window_paces_and_decodes_in_the_helper(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(pacing, "_clock", clock.thread_time)
    monkeypatch.setattr(pacing, "_sleep", clock.sleep)
    helper = b64helper.shared()
    if not helper.usable:
        pytest.skip("the helper process cannot run here")
    before = helper.decoded
    generate_large(gui=True)
    assert helper.decoded == before + 2  # both 4 MB payloads went to the helper
    assert clock.sleeps  # the answer was searched on a worker thread, handing the GIL over


# --- when to poll ------------------------------------------------------------------------------


def context(output_type: str, waited: float, seen: int = 0, polled: float | None = None) -> _Context:
    request = GenerationRequest("two words", number_results=20, delivery_method="async", output_type=output_type)
    now = time.monotonic()
    ctx = _Context(request, set(), sent_record(request, []), submitted_at=now - waited)
    ctx.polls = 1
    ctx.seen_count = seen
    ctx.polled_at = None if polled is None else now - waited + polled
    return ctx


def test_before_any_image_each_poll_comes_at_most_factor_times_the_time_waited() -> None:
    client = RunwareClient("k", base_url=URL)
    policy = client.poll
    request = GenerationRequest("two words")
    first = _Context(request, set(), sent_record(request, []))
    assert client._poll_delay(first, 0) == policy.initial
    for waited in (0.3, 1.0, 4.0):
        delay = client._poll_delay(context("base64Data", waited), 0)
        assert delay == pytest.approx((policy.factor - 1) * waited, rel=0.05)
        assert waited + delay <= policy.factor * waited * 1.01
    assert client._poll_delay(context("URL", 100.0), 0) == policy.maximum


def test_once_images_come_urls_are_polled_per_image_and_image_data_less_often() -> None:
    client = RunwareClient("k", base_url=URL)
    # 4 of 20 finished 1 s after submitting: about 0.25 s an image, 4 s to go
    url = client._poll_delay(context("URL", 1.0, seen=4, polled=1.0), 0)
    assert url == pytest.approx(0.25, rel=0.05)
    inline = client._poll_delay(context("base64Data", 1.0, seen=4, polled=1.0), 0)
    assert inline == pytest.approx((client.poll.inline_factor - 1) * 1.0, rel=0.05)  # every image comes again
    # 18 of 20 after 3.6 s: the last two are due in about 0.4 s, sooner than doubling the wait;
    # the poll comes a tenth of an image later, lest it find them not quite done
    near_end = client._poll_delay(context("base64Data", 3.6, seen=18, polled=3.6), 0)
    assert near_end == pytest.approx(0.42, rel=0.05)


def test_with_urls_the_next_poll_counts_from_when_the_last_one_went_out() -> None:
    # Downloading the images a poll brought takes time (on a real network, about as long
    # as making one): it is part of the interval, not added to it.
    client = RunwareClient("k", base_url=URL)
    # 4 of 20 by the poll sent 1 s after submitting (0.25 s an image), 0.1 s of downloads since
    assert client._poll_delay(context("URL", 1.1, seen=4, polled=1.0), 0) == pytest.approx(0.15, abs=0.01)
    # the downloads took longer than the interval: the next poll goes out at once
    assert client._poll_delay(context("URL", 1.5, seen=4, polled=1.0), 0) == 0.0
    # with image data every poll carries every image again: the interval stays whole
    inline = client._poll_delay(context("base64Data", 1.1, seen=4, polled=1.0), 0)
    assert inline == pytest.approx((client.poll.inline_factor - 1) * 1.1, rel=0.05)
    # after a failed poll the back-off is not shortened
    assert client._poll_delay(context("URL", 1.5, seen=4, polled=1.0), 1) >= client.poll.minimum

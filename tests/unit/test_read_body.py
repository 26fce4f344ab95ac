"""Receiving an answer's body (``body.read_body``): every byte, whatever the framing."""

from __future__ import annotations

import asyncio
import gzip
import mmap
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from krea_desktop.api import body as body_mod
from krea_desktop.api.response import parse_body


class Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for c in self.chunks:
            yield c


# The mapping is how Python 3.11 and later receive a large answer; before, a bytearray that
# grows (see test_without_a_fast_mapping_search_the_body_grows).
MAPPED = pytest.mark.skipif(not body_mod._MAPPING_SEARCHES_FAST, reason="answers are mapped from Python 3.11 on")


def receive(headers: dict[str, str], chunks: list[bytes]) -> bytes | bytearray | mmap.mmap:
    async def go() -> bytes | bytearray | mmap.mmap:
        def handler(_req: httpx.Request) -> httpx.Response:
            return httpx.Response(200, headers=headers, stream=Chunks(chunks))

        async with (
            httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http,
            http.stream("POST", "http://127.0.0.1/v1") as resp,
        ):
            return await body_mod.read_body(resp)

    return asyncio.run(go())


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


BIG = bytes(range(256)) * 20_000  # 5 MB, over the size that gets a buffer of its own


@MAPPED
def test_a_large_announced_body_arrives_whole_in_a_buffer_of_its_own() -> None:
    body = receive({"Content-Length": str(len(BIG))}, pieces(BIG, 65536))
    assert isinstance(body, mmap.mmap)
    assert len(body) == len(BIG) and body[:] == BIG


def test_an_unannounced_body_arrives_whole() -> None:
    body = receive({}, pieces(BIG, 65536))  # chunked transfer: no length known up front
    assert isinstance(body, bytearray) and bytes(body) == BIG


def test_a_small_body_is_not_given_a_mapping() -> None:
    body = receive({"Content-Length": "11"}, [b"hello ", b"world"])
    assert not isinstance(body, mmap.mmap) and bytes(body) == b"hello world"


def test_a_compressed_body_is_decoded_whatever_its_announced_length() -> None:
    packed = gzip.compress(BIG)
    body = receive({"Content-Length": str(len(packed)), "Content-Encoding": "gzip"}, pieces(packed, 65536))
    assert bytes(body) == BIG  # decoded: longer than the announced length


@pytest.mark.parametrize("framing", ["shorter", "longer"])
def test_a_body_that_does_not_match_its_announced_length_is_kept_as_received(framing: str) -> None:
    announced = len(BIG) + 4096 if framing == "shorter" else len(BIG) - 4096
    body = receive({"Content-Length": str(announced)}, pieces(BIG, 65536))
    assert bytes(body) == BIG


def test_an_absurd_announced_length_is_not_reserved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(body_mod, "_MAPPED_BODY_MAX", len(BIG) - 1)
    body = receive({"Content-Length": str(len(BIG))}, pieces(BIG, 65536))
    assert not isinstance(body, mmap.mmap) and bytes(body) == BIG


@MAPPED
def test_an_answer_received_into_a_mapping_parses_like_bytes() -> None:
    import base64
    import json

    items = [{"imageUUID": f"u{i}", "imageBase64Data": base64.b64encode(BIG[i:]).decode()} for i in range(2)]
    raw = json.dumps({"data": items}).encode()
    body = receive({"Content-Length": str(len(raw))}, pieces(raw, 65536))
    assert isinstance(body, mmap.mmap)
    parsed = parse_body(body)
    assert [bytes(x["imageBase64Data"].raw()) for x in parsed["data"]] == [base64.b64encode(BIG[i:]) for i in range(2)]


@MAPPED
def test_a_mapping_the_system_refuses_falls_back_to_growing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> mmap.mmap:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(body_mod.mmap, "mmap", refuse)
    body = receive({"Content-Length": str(len(BIG))}, pieces(BIG, 65536))
    assert isinstance(body, bytearray) and bytes(body) == BIG


@MAPPED
@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads the process's mappings from /proc")
def test_the_buffer_of_a_large_body_is_private_memory_not_shared() -> None:
    import ctypes

    body = receive({"Content-Length": str(len(BIG))}, pieces(BIG, 65536))
    assert isinstance(body, mmap.mmap)
    address = ctypes.addressof(ctypes.c_char.from_buffer(body))
    for line in Path("/proc/self/maps").read_text().splitlines():
        span, perms, *_rest = line.split()
        start, end = (int(x, 16) for x in span.split("-"))
        if start <= address < end:
            # "rw-s" with "/dev/zero (deleted)" is a shared mapping, backed by tmpfs
            assert perms == "rw-p" and "/dev/zero" not in line
            break
    else:
        pytest.fail("the buffer is in none of the process's mappings")


def test_without_a_fast_mapping_search_the_body_grows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(body_mod, "_MAPPING_SEARCHES_FAST", False)  # Python 3.10
    body = receive({"Content-Length": str(len(BIG))}, pieces(BIG, 65536))
    assert isinstance(body, bytearray) and bytes(body) == BIG


def test_cancelling_mid_body_releases_the_mapping_cleanly() -> None:
    import gc
    import sys

    unraisable: list[object] = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append

    class Stalls(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield BIG[:65536]
            await asyncio.Event().wait()  # the rest never comes
            yield b""

    async def go() -> None:
        def handler(_req: httpx.Request) -> httpx.Response:
            return httpx.Response(200, headers={"Content-Length": str(len(BIG))}, stream=Stalls())

        async with (
            httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http,
            http.stream("POST", "http://127.0.0.1/v1") as resp,
        ):
            task = asyncio.ensure_future(body_mod.read_body(resp))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    try:
        asyncio.run(go())
        gc.collect()
    finally:
        sys.unraisablehook = old_hook
    assert unraisable == []

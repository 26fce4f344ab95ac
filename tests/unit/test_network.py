"""The client's transport (``api.network``): reads of up to 1 MiB, everything else as httpx's."""

from __future__ import annotations

import asyncio
import importlib.machinery
import importlib.util
import logging
import socket
import sys
import threading
from typing import Any

import httpcore
import httpx
import pytest

from krea_desktop.api import errors as E
from krea_desktop.api import network
from krea_desktop.api.client import RetryPolicy, RunwareClient


class Recorded(httpcore.AsyncNetworkStream):
    """A network stream that records what it was asked for."""

    def __init__(self) -> None:
        self.asked: list[int] = []
        self.calls: list[str] = []

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.asked.append(max_bytes)
        return b"x" * min(max_bytes, 300_000)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.calls.append(f"write {buffer!r} {timeout}")

    async def aclose(self) -> None:
        self.calls.append("close")

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        self.calls.append(f"tls {server_hostname} {timeout}")
        return self

    def get_extra_info(self, info: str) -> Any:
        return f"info {info}"


def test_a_read_asks_for_up_to_a_mebibyte_whatever_smaller_size_httpcore_asks() -> None:
    inner = Recorded()
    stream = network._LargeReads(inner)

    async def go() -> list[bytes]:
        return [await stream.read(65536), await stream.read(4 << 20)]

    got = asyncio.run(go())
    assert inner.asked == [network.READ_BYTES, 4 << 20]
    assert [len(g) for g in got] == [300_000, 300_000]


def test_everything_but_reads_goes_through_unchanged_and_tls_keeps_the_large_reads() -> None:
    inner = Recorded()
    stream = network._LargeReads(inner)

    async def go() -> httpcore.AsyncNetworkStream:
        await stream.write(b"GET", 2.0)
        secured = await stream.start_tls(None, "api.runware.ai", 3.0)
        await secured.aclose()
        return secured

    secured = asyncio.run(go())
    assert isinstance(secured, network._LargeReads)
    assert inner.calls == ["write b'GET' 2.0", "tls api.runware.ai 3.0", "close"]
    assert stream.get_extra_info("socket") == "info socket"


class BodyServer:
    """A plain HTTP server on 127.0.0.1 answering every request with ``body``."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with self.sock:
            conn, _ = self.sock.accept()
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(self.body)
                conn.sendall(head + self.body)


def test_the_transport_delivers_a_large_body_whole_in_pieces_larger_than_httpcores_own() -> None:
    body = bytes(range(256)) * 32_768  # 8 MiB
    server = BodyServer(body)

    async def go() -> tuple[bytes, int]:
        async with (
            httpx.AsyncClient(transport=network.make_transport()) as http,
            http.stream("GET", server.url) as resp,
        ):
            await asyncio.sleep(0.2)  # the answer waits in the socket, as a fast one does
            pieces = [piece async for piece in resp.aiter_raw()]
        return b"".join(pieces), max(len(p) for p in pieces)

    received, largest = asyncio.run(go())
    server.thread.join(5)
    assert received == body
    assert largest > 65536  # httpcore alone reads 64 KiB at a time


def test_an_httpcore_whose_backend_cannot_be_wrapped_gets_the_stock_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Plain(httpx.AsyncHTTPTransport):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            del self._pool._network_backend  # as a future httpcore might have it

    monkeypatch.setattr(network.httpx, "AsyncHTTPTransport", Plain)
    transport = network.make_transport()
    assert isinstance(transport, Plain)
    assert not hasattr(transport._pool, "_network_backend")


def test_the_client_uses_the_transport_unless_given_one() -> None:
    async def go() -> tuple[Any, Any]:
        own = RunwareClient("key")
        given = httpx.MockTransport(lambda _req: httpx.Response(200))
        other = RunwareClient("key", transport=given)
        try:
            return own._http._transport, other._http._transport
        finally:
            await own.aclose()
            await other.aclose()

    own, other = asyncio.run(go())
    assert isinstance(own._pool._network_backend, network._LargeReadsBackend)
    assert isinstance(other, httpx.MockTransport)


def test_a_request_does_not_search_the_path_for_sniffio_when_it_is_not_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "sniffio", None)  # put back as it was afterwards
    del sys.modules["sniffio"]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)  # not installed
    searched: list[str] = []
    real_find_spec = importlib.machinery.PathFinder.find_spec

    def counting(name: str, path: Any = None, target: Any = None) -> Any:
        searched.append(name)
        return real_find_spec(name, path, target)

    monkeypatch.setattr(importlib.machinery.PathFinder, "find_spec", counting)
    server = BodyServer(b"picture")

    async def go() -> bytes:
        async with httpx.AsyncClient(transport=network.make_transport()) as http:
            return (await http.get(server.url)).content

    assert asyncio.run(go()) == b"picture"
    server.thread.join(5)
    assert sys.modules["sniffio"] is None  # absent, so an import of it fails at once
    assert "sniffio" not in searched  # httpcore asks for it on every request


def test_an_installed_sniffio_is_left_to_be_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sniffio", None)
    del sys.modules["sniffio"]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())  # installed
    network.make_transport()
    assert "sniffio" not in sys.modules


def stand_in_proxy() -> tuple[socket.socket, list[bytes], threading.Thread]:
    """A proxy that notes the first line of the one request it gets and refuses it."""
    request_lines: list[bytes] = []
    proxy = socket.socket()
    proxy.bind(("127.0.0.1", 0))
    proxy.listen(1)

    def serve() -> None:
        conn, _addr = proxy.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(65536)
            request_lines.append(request.split(b"\r\n", 1)[0])
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    return proxy, request_lines, server


def clear_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for scheme in ("NO", "ALL", "HTTPS", "HTTP"):
        monkeypatch.delenv(f"{scheme}_PROXY", raising=False)
        monkeypatch.delenv(f"{scheme.lower()}_proxy", raising=False)


def test_a_proxy_named_in_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx reads the proxy variables only for a client made without a transport: the
    client then leaves its own transport aside rather than go straight to the host."""
    proxy, request_lines, server = stand_in_proxy()
    clear_proxy_variables(monkeypatch)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.getsockname()[1]}")

    async def go() -> None:
        retry = RetryPolicy(attempts=1)
        async with RunwareClient("key", base_url="https://api.example.test/v1", retry=retry) as client:
            with pytest.raises(E.NetworkError):
                await client.test_key()

    try:
        asyncio.run(go())
    finally:
        proxy.close()
    server.join(5)
    assert request_lines == [b"CONNECT api.example.test:443 HTTP/1.1"]


def test_a_proxy_httpx_cannot_use_is_passed_by_and_said_in_the_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Some desktops export their proxy as ``socks://`` (httpx needs ``socksio`` for it),
    or with a scheme httpx does not know: the client goes straight to the host, as it did
    before it read the proxy variables, rather than fail to be made."""
    clear_proxy_variables(monkeypatch)
    monkeypatch.setenv("ALL_PROXY", "ftp://127.0.0.1:21")

    async def go() -> Any:
        async with RunwareClient("key", base_url="https://api.example.test/v1") as client:
            return client._http._transport

    with caplog.at_level(logging.WARNING, logger="krea_desktop.api.client"):
        transport = asyncio.run(go())
    assert isinstance(transport._pool._network_backend, network._LargeReadsBackend)  # the client's own
    assert "The proxy named in the environment cannot be used" in caplog.text

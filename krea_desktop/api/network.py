"""The client's HTTP transport: httpx's own, reading what has arrived in larger pieces.

httpcore asks its network stream for at most 64 KiB at a time. Over a fast connection the
socket holds far more than that, and the stream then hands the rest back in 64 KiB slices
(copying what is left each time), each slice going once round h11, httpx and the client's
loop: a sync answer of 20 images in base64 (about 80 MB) took about 150 ms of CPU to
receive that way on loopback, and about 55 ms when each read takes up to 1 MiB
(``tests/benchmarks/README.md``, bench_clients.py). h11 takes data of any size, so nothing
else changes: TLS still gives at most a record per read, and a slow network what it has.

It also spares each request httpcore's search for ``sniffio`` where that is not installed
(:func:`note_sniffio_absent`).
"""

from __future__ import annotations

import importlib.util
import logging
import ssl
import sys
import typing
from urllib.request import getproxies

import httpcore
import httpx

log = logging.getLogger(__name__)

READ_BYTES = 1 << 20  # at most this much per read, whatever smaller size httpcore asks for


class _LargeReads(httpcore.AsyncNetworkStream):
    """A network stream whose reads return up to :data:`READ_BYTES` of what has arrived."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max(max_bytes, READ_BYTES), timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: typing.Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _LargeReads(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class _LargeReadsBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, its streams wrapped in :class:`_LargeReads`."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        self._backend = backend

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _LargeReads(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _LargeReads(await self._backend.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def make_transport(ssl_context: ssl.SSLContext | None = None) -> httpx.AsyncHTTPTransport:
    """httpx's default transport, reading in pieces of up to :data:`READ_BYTES` where this
    httpcore lets its backend be wrapped; as it is otherwise. It goes straight to the
    host: a client given a transport does not read the proxy variables
    (:func:`environment_proxies`). ``ssl_context``: httpx's default
    context (see :func:`new_ssl_context`), made once for transports that share it rather
    than anew for each (about 30 ms)."""
    note_sniffio_absent()
    transport = httpx.AsyncHTTPTransport(verify=ssl_context or new_ssl_context())
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if isinstance(pool, httpcore.AsyncConnectionPool) and isinstance(backend, httpcore.AsyncNetworkBackend):
        pool._network_backend = _LargeReadsBackend(backend)
    else:  # another httpx or httpcore: the stock transport, which only reads in smaller pieces
        log.debug("httpcore's network backend could not be wrapped; reading in its own pieces")
    return transport


def new_ssl_context() -> ssl.SSLContext:
    """The TLS context httpx makes by default (certifi's roots, or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR`` where set)."""
    return httpx.create_ssl_context()


def environment_proxies() -> bool:
    """Whether the environment (or the system, where Python reads it there) names an HTTP
    proxy, as httpx would find it."""
    return any(scheme in ("http", "https", "all") for scheme in getproxies())


def note_sniffio_absent() -> None:
    """httpcore imports ``sniffio`` on each request to learn which event loop runs it
    (four times for an image download). When sniffio is not installed, each of those
    imports fails anew after searching every entry of ``sys.path``, about 0.2 ms a time.
    Recorded as absent (``None`` in ``sys.modules``, Python's own way of saying so), the
    import fails at once and httpcore takes asyncio straight away. Where sniffio is
    installed nothing changes."""
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]

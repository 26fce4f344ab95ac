"""Plain image downloads read straight into the image's buffer (``api.direct``), against a
host on 127.0.0.1 that answers as each test scripts it: the plain answer read whole, every
other kind declined with what it was, the network's failures raised as httpx's, and
connections kept, replaced and closed as they should be."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from krea_desktop.api import direct
from krea_desktop.api.direct import HEAD_MAX, Declined, DirectDownloads

TLS = Path(__file__).resolve().parents[1] / "helpers" / "tls"
BODY = os.urandom(3 * 1024 * 1024 + 17)  # an image's worth of bytes, not a multiple of any read
LIMIT = 64 * 1024 * 1024

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


@dataclass
class Host:
    """A scripted image host: ``handler(reader, writer, request_number)`` answers each
    request; the host notes each connection and each request's head."""

    handler: Handler
    port: int = 0
    connections: int = 0
    heads: list[bytes] = field(default_factory=list)
    ended: list[asyncio.Event] = field(default_factory=list)  # set when each connection's client went

    def url(self, path: str = "/images/9.png", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        ended = asyncio.Event()
        self.ended.append(ended)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.heads.append(head)
                await self.handler(reader, writer, len(self.heads))
                if writer.is_closing():
                    return
        finally:
            ended.set()
            writer.close()


@contextlib.asynccontextmanager
async def host(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[Host]:
    h = Host(handler)
    server = await asyncio.start_server(h.serve, "127.0.0.1", 0, ssl=tls)
    h.port = server.sockets[0].getsockname()[1]
    try:
        yield h
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)


def answer(body: bytes = BODY, *, status: str = "200 OK", headers: str | None = None, pieces: int = 4) -> Handler:
    """A handler that answers every request with ``status``, ``headers`` (by default the
    body's length) and ``body``, written in ``pieces``."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        head = headers if headers is not None else f"Content-Length: {len(body)}\r\n"
        writer.write(f"HTTP/1.1 {status}\r\n{head}\r\n".encode("latin-1"))
        step = max(1, len(body) // pieces)
        for start in range(0, len(body), step):
            writer.write(body[start : start + step])
            await writer.drain()

    return handler


def then_nothing(sent: bytes) -> Handler:
    """A handler that sends ``sent`` and then nothing more, the connection held open until
    the client goes."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(sent)
        await writer.drain()
        await reader.read()

    return handler


async def two_images_on_two_connections(handler: Handler) -> None:
    """Two images from a host answering with ``handler``, each whole, the second asked for
    on a new connection."""
    async with host(handler) as h:
        d = downloads()
        assert await d.get(h.url(), LIMIT) == b"abc"
        assert await d.get(h.url(), LIMIT) == b"abc"
        assert h.connections == 2
        d.close()


def downloads(**kwargs: float) -> DirectDownloads:
    return DirectDownloads(None, read_timeout=kwargs.get("read_timeout", 5.0), connect_timeout=5.0)


def run(coro: Awaitable[object]) -> object:
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_a_plain_answer_is_read_whole_as_the_image_s_bytes() -> None:
    async def go() -> None:
        async with host(answer(pieces=7)) as h:
            d = downloads()
            got = await d.get(h.url(), LIMIT)
            assert type(got) is bytes and got == BODY
            d.close()

    run(go())


def test_the_request_asks_for_the_image_as_it_is_at_its_address() -> None:
    async def go() -> None:
        async with host(answer(b"x")) as h:
            d = downloads()
            assert await d.get(h.url("/images/9.png?sig=a%2Fb&v=1"), LIMIT) == b"x"
            d.close()
            (head,) = h.heads
            lines = head.decode("ascii").split("\r\n")
            assert lines[0] == "GET /images/9.png?sig=a%2Fb&v=1 HTTP/1.1"
            fields = dict(line.split(": ", 1) for line in lines[1:] if line)
            assert fields["Host"] == f"127.0.0.1:{h.port}"
            assert fields["Accept-Encoding"] == "identity"
            assert fields["User-Agent"] == "krea-desktop"

    run(go())


def test_a_connection_the_host_keeps_serves_the_next_images() -> None:
    async def go() -> None:
        async with host(answer()) as h:
            d = downloads()
            for _ in range(3):
                assert await d.get(h.url(), LIMIT) == BODY
            assert h.connections == 1 and d.connections_made == 1
            d.close()

    run(go())


def test_a_host_that_says_it_closes_the_connection_is_asked_on_a_new_one() -> None:
    closing = answer(b"abc", headers="Content-Length: 3\r\nConnection: close\r\n")

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await closing(reader, writer, n)
        writer.close()

    run(two_images_on_two_connections(handler))


def test_a_kept_connection_the_host_has_since_closed_is_replaced_at_once() -> None:
    # The host closes an idle connection without a word (as hosts do after a while): the
    # next image is asked for on a new connection, with no error.
    plain = answer(b"abc")

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await plain(reader, writer, n)
        if n == 1:
            writer.close()

    async def go() -> None:
        async with host(handler) as h:
            d = downloads()
            assert await d.get(h.url(), LIMIT) == b"abc"
            await h.ended[0].wait()
            assert await d.get(h.url(), LIMIT) == b"abc"
            assert h.connections == 2
            d.close()

    run(go())


@pytest.mark.parametrize(
    ("status", "headers", "declined"),
    [
        ("503 Service Unavailable", "Retry-After: 4\r\nContent-Length: 4\r\n", Declined(503, "4")),
        ("429 Too Many Requests", "Content-Length: 4\r\n", Declined(429)),
        ("404 Not Found", "Content-Length: 4\r\n", Declined(404)),
        ("302 Found", "Location: /elsewhere.png\r\nContent-Length: 4\r\n", Declined(302)),
        ("200 OK", "Transfer-Encoding: chunked\r\n", Declined(200)),
        ("200 OK", "Content-Encoding: gzip\r\nContent-Length: 4\r\n", Declined(200)),
        ("200 OK", "Connection: close\r\n", Declined(200)),  # no length: until the host closes
        ("200 OK", "Content-Length: 4\r\nContent-Length: 5\r\n", Declined(200)),
        ("200 OK", "Content-Length: -4\r\n", Declined(200)),
        ("200 OK", "Content-Length: 4\r\n folded: line\r\n", Declined(None)),
        ("200 OK", "No colon here\r\n", Declined(None)),
        ("2OO OK", "Content-Length: 4\r\n", Declined(None)),
        ("103 Early Hints", "Link: </style.css>\r\n", Declined(None)),
    ],
)
def test_an_answer_of_another_kind_is_declined_with_what_it_was(status: str, headers: str, declined: Declined) -> None:
    async def go() -> None:
        async with host(answer(b"body", status=status, headers=headers)) as h:
            d = downloads()
            assert await d.get(h.url(), LIMIT) == declined
            assert await d.get(h.url(), LIMIT) == declined
            assert h.connections == 2  # a connection left mid-answer is not used again
            d.close()

    run(go())


def test_an_image_larger_than_the_limit_is_declined_before_its_body_is_read() -> None:
    async def go() -> None:
        async with host(answer()) as h:
            d = downloads()
            assert await d.get(h.url(), len(BODY) - 1) == Declined(200)
            assert await d.get(h.url(), len(BODY)) == BODY
            d.close()

    run(go())


def test_a_head_without_end_is_declined_once_it_passes_its_limit() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\n")
        with contextlib.suppress(ConnectionError):
            for _ in range(HEAD_MAX // 1000 + 2):
                writer.write(b"X-Filler: " + b"f" * 988 + b"\r\n")
                await writer.drain()
            await asyncio.sleep(10)  # the head never ends: the client does not wait for it

    async def go() -> None:
        async with host(handler) as h:
            d = downloads()
            assert await d.get(h.url(), LIMIT) == Declined(None)
            d.close()

    run(go())


def test_a_body_cut_short_is_a_transport_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(BODY)}\r\n\r\n".encode())
        writer.write(BODY[: len(BODY) // 2])
        await writer.drain()
        writer.close()

    async def go() -> None:
        async with host(handler) as h:
            d = downloads()
            with pytest.raises(httpx.RemoteProtocolError):
                await d.get(h.url(), LIMIT)
            assert h.connections == 1  # a cut that came after part of the answer is not asked again here
            d.close()

    run(go())


def test_a_host_that_goes_silent_mid_image_times_out() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(BODY)}\r\n\r\n".encode() + BODY[:1000])
        await writer.drain()
        await asyncio.sleep(10)

    async def go() -> None:
        async with host(handler) as h:
            d = downloads(read_timeout=0.3)
            with pytest.raises(httpx.ReadTimeout):
                await d.get(h.url(), LIMIT)
            d.close()

    run(go())


def test_a_host_that_trickles_is_not_timed_out_while_bytes_keep_coming() -> None:
    # Each pause is shorter than the read timeout, all of them together much longer.
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(BODY)}\r\n\r\n".encode())
        step = len(BODY) // 12 + 1
        for start in range(0, len(BODY), step):
            writer.write(BODY[start : start + step])
            await writer.drain()
            await asyncio.sleep(0.1)

    async def go() -> None:
        async with host(handler) as h:
            d = downloads(read_timeout=0.6)
            assert await d.get(h.url(), LIMIT) == BODY
            d.close()

    run(go())


def test_a_host_that_refuses_the_connection_is_a_connect_error() -> None:
    async def go() -> None:
        async with host(answer()) as h:
            url = h.url()
        d = downloads()  # the host has gone: nothing listens there
        with pytest.raises(httpx.ConnectError):
            await d.get(url, LIMIT)

    run(go())


def test_a_download_cancelled_mid_image_closes_its_connection() -> None:
    handler = then_nothing(f"HTTP/1.1 200 OK\r\nContent-Length: {len(BODY)}\r\n\r\n".encode() + BODY[:1000])

    async def go() -> None:
        async with host(handler) as h:
            d = downloads()
            fetch = asyncio.ensure_future(d.get(h.url(), LIMIT))
            while not h.heads:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            fetch.cancel()
            with pytest.raises(asyncio.CancelledError):
                await fetch
            await asyncio.wait_for(h.ended[0].wait(), 5)  # the host saw the connection go
            d.close()

    run(go())


def test_closing_ends_a_download_under_way_and_the_connections_kept() -> None:
    slow_second = answer(b"abc")

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        if n == 1:
            await slow_second(reader, writer, n)
            return
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        await reader.read()

    async def go() -> None:
        async with host(handler) as h:
            d = downloads()
            assert await d.get(h.url(), LIMIT) == b"abc"  # its connection is kept
            under_way = asyncio.ensure_future(downloads_of(d, h.url()))
            while len(h.heads) < 1 or h.connections < 1:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            d.close()
            with pytest.raises(httpx.TransportError):
                await under_way
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in h.ended)), 5)
            with pytest.raises(httpx.ConnectError):
                await d.get(h.url(), LIMIT)  # closed: nothing more is asked

    async def downloads_of(d: DirectDownloads, url: str) -> object:
        return await d.get(url, LIMIT)

    run(go())


def test_closing_from_another_thread_ends_the_downloads_on_their_own_loop() -> None:
    handler = then_nothing(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")

    async def go() -> None:
        async with host(handler) as h:
            d = downloads()
            fetch = asyncio.ensure_future(d.get(h.url(), LIMIT))
            while not h.heads:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(d.close)
            with pytest.raises(httpx.TransportError):
                await fetch

    run(go())


@pytest.mark.parametrize(
    "url",
    [
        "http://user:secret@127.0.0.1:1/9.png",  # user info: left to httpx
        "ftp://127.0.0.1:1/9.png",
        "http://127.0.0.1:99999/9.png",
        "http://[::1/9.png",
    ],
)
def test_an_address_of_another_kind_is_left_to_httpx_without_connecting(url: str) -> None:
    async def go() -> None:
        d = downloads()
        assert await d.get(url, LIMIT) == Declined(None)
        assert d.connections_made == 0

    run(go())


def _server_tls() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(TLS / "cert.pem", TLS / "key.pem")
    return context


def test_an_https_image_comes_over_tls_with_the_host_s_certificate_checked() -> None:
    async def go() -> None:
        async with host(answer(pieces=5), tls=_server_tls()) as h:
            trusting = ssl.create_default_context(cafile=str(TLS / "cert.pem"))
            d = DirectDownloads(trusting, read_timeout=5.0, connect_timeout=5.0)
            assert await d.get(h.url(scheme="https"), LIMIT) == BODY
            assert await d.get(h.url(scheme="https"), LIMIT) == BODY
            assert h.connections == 1
            d.close()
            # A certificate the client's own roots do not vouch for: refused.
            stranger = DirectDownloads(ssl.create_default_context(), read_timeout=5.0, connect_timeout=5.0)
            with pytest.raises(httpx.ConnectError):
                await stranger.get(h.url(scheme="https"), LIMIT)

    run(go())


@pytest.mark.parametrize(
    "sent",
    [b"HTTP/1.1 200 OK\nContent-Length: 3\n\nabc", b"HTTP/1.1 200 OK\r\nContent-Length: 3\n\r\nabc"],
    ids=["every line", "the last line"],
)
def test_a_head_whose_lines_end_without_cr_is_left_to_httpx_at_once(sent: bytes) -> None:
    # Not waited on until the read timeout, as a head that has not ended yet would be.
    handler = then_nothing(sent)

    async def go() -> None:
        async with host(handler) as h:
            d = downloads(read_timeout=30)
            assert await asyncio.wait_for(d.get(h.url(), LIMIT), 5) == Declined(None)
            d.close()

    run(go())


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ('/img/a{1}"b".png?x=<y>', "/img/a%7B1%7D%22b%22.png?x=%3Cy%3E"),
        ("/an image.png", "/an%20image.png"),
        ("/imagé.png", "/imag%C3%A9.png"),
    ],
)
def test_the_path_is_sent_encoded_as_httpx_sends_it(path: str, sent: str) -> None:
    # A strict host (Tomcat's default) answers 400 to a path with these characters as they are.
    async def go() -> None:
        async with host(answer(b"x")) as h:
            d = downloads()
            assert await d.get(h.url(path), LIMIT) == b"x"
            d.close()
            assert h.heads[0].split(b"\r\n")[0] == f"GET {sent} HTTP/1.1".encode()

    run(go())


def test_a_head_longer_than_one_read_is_read_as_a_whole() -> None:
    filler = "".join(f"X-Filler-{i}: {'f' * 200}\r\n" for i in range(150))  # about 32 KB
    assert len(filler) > 16 * 1024

    async def go() -> None:
        async with host(answer(headers=f"{filler}Content-Length: {len(BODY)}\r\n")) as h:
            d = downloads()
            assert await d.get(h.url(), LIMIT) == BODY
            d.close()

    run(go())


def test_a_long_head_fed_in_the_way_of_python_3_10_s_tls_and_windows_is_read_as_a_whole() -> None:
    # Python 3.10's TLS transport and Windows' proactor copy what they read into the
    # protocol's buffers with asyncio.protocols._feed_data_to_buffered_proto, which still
    # holds the buffer of one step when it asks for the next: a head buffer that grew in
    # place then raised BufferError, and every download with a head of over 16 KB failed.
    from asyncio.protocols import _feed_data_to_buffered_proto  # type: ignore[attr-defined]

    filler = "".join(f"X-Filler-{i}: {'f' * 200}\r\n" for i in range(150))
    answer_bytes = f"HTTP/1.1 200 OK\r\n{filler}Content-Length: {len(BODY)}\r\n\r\n".encode() + BODY

    class Transport(asyncio.Transport):
        def write(self, data: bytes | bytearray | memoryview) -> None:
            pass

        def abort(self) -> None:
            pass

        def is_closing(self) -> bool:
            return False

    async def go() -> bytes:
        receiver = direct._Receiver(asyncio.get_running_loop(), 5.0)
        receiver.connection_made(Transport())
        done = receiver.ask(b"GET / HTTP/1.1\r\n\r\n", LIMIT)
        for start in range(0, len(answer_bytes), 256 * 1024):
            _feed_data_to_buffered_proto(receiver, answer_bytes[start : start + 256 * 1024])
        return (await done).getvalue()

    assert asyncio.run(go()) == BODY


def test_a_connection_kept_longer_than_its_expiry_is_not_used_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # A connection quiet for a while may have died on the way without a word (a router's
    # timeout, a computer waking from sleep): asked on it, the image would wait out the
    # whole read timeout.
    monkeypatch.setattr(direct, "IDLE_EXPIRY", 0.1)

    async def go() -> None:
        async with host(answer(b"abc")) as h:
            d = downloads()
            assert await d.get(h.url(), LIMIT) == b"abc"
            assert await d.get(h.url(), LIMIT) == b"abc"
            assert h.connections == 1
            await asyncio.sleep(0.3)
            assert await d.get(h.url(), LIMIT) == b"abc"
            assert h.connections == 2
            await asyncio.wait_for(h.ended[0].wait(), 5)  # the expired one was closed
            d.close()

    run(go())


@pytest.mark.parametrize("name", ["a..b.example", "x" * 64 + ".example"])
def test_a_host_name_that_cannot_be_encoded_is_a_connect_error(name: str) -> None:
    # Refused while the name is encoded (IDNA), before any lookup: nothing leaves the machine.
    async def go() -> None:
        d = downloads()
        with pytest.raises(httpx.ConnectError):
            await d.get(f"http://{name}/9.png", LIMIT)

    run(go())


def test_an_address_written_as_numbers_is_read_without_the_idna_codec() -> None:
    # The codec's first use imports it, about 1.5 ms of the first image's time here; an
    # address written as numbers needs no encoding (a fresh process: nothing imported it).
    code = (
        "import asyncio, sys\n"
        "from krea_desktop.api.direct import _addresses\n"
        "for host in ('127.0.0.1', '::1'):\n"
        "    print(asyncio.run(_addresses(host, 8080))[0][4][:2])\n"
        "print('encodings.idna' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split("\n")[:3] == ["('127.0.0.1', 8080)", "('::1', 8080)", "False"]


def test_a_host_whose_first_address_does_not_answer_is_reached_at_its_next() -> None:
    # A name with a dead address first (a broken IPv6 route, one dead server of several):
    # the next is tried after a quarter of a second, not after the whole connect timeout.
    # The dead address is a listener on 127.0.0.2 whose queue is full (the system drops
    # the attempts to connect); the name's addresses are the loop's own, nothing is looked up.
    async def go() -> None:
        loop = asyncio.get_running_loop()
        hole = socket.socket()
        hole.bind(("127.0.0.2", 0))
        hole.listen(0)
        port = hole.getsockname()[1]
        fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.2", port))
            fillers.append(filler)
        await asyncio.sleep(0.2)
        h = Host(answer(b"abc"))
        server = await asyncio.start_server(h.serve, "127.0.0.1", port)
        real = loop.getaddrinfo

        async def addresses(name: object, wanted: object, *args: object, **kw: object) -> object:
            if name in ("img.example", b"img.example"):
                return [
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", wanted)),
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", wanted)),
                ]
            return await real(name, wanted, *args, **kw)  # type: ignore[arg-type]

        loop.getaddrinfo = addresses  # type: ignore[method-assign]
        try:
            d = DirectDownloads(None, read_timeout=5.0, connect_timeout=3.0)
            started = time.monotonic()
            assert await d.get(f"http://img.example:{port}/9.png", LIMIT) == b"abc"
            took = time.monotonic() - started
            d.close()
        finally:
            server.close()
            hole.close()
            for filler in fillers:
                filler.close()
        assert took < 3.0  # reached before the connect timeout: not a measurement, the outcome

    run(go())


@pytest.mark.parametrize("hops", [1, 2])
def test_a_cancel_that_comes_as_the_connection_is_made_ends_the_download(
    monkeypatch: pytest.MonkeyPatch, hops: int
) -> None:
    # Python 3.11's asyncio.wait_for handed the connection back and dropped a cancel that
    # came as it was made: a Cancel or a quit then waited for the whole image.
    made = direct._Receiver.connection_made
    fetching: list[asyncio.Future[object]] = []

    def cancel_soon(receiver: direct._Receiver, transport: asyncio.BaseTransport) -> None:
        made(receiver, transport)
        loop = asyncio.get_running_loop()

        def hop(left: int) -> None:
            if left > 1:
                loop.call_soon(hop, left - 1)
            else:
                fetching[0].cancel()

        loop.call_soon(hop, hops)

    monkeypatch.setattr(direct._Receiver, "connection_made", cancel_soon)

    async def go() -> None:
        async with host(then_nothing(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")) as h:
            d = downloads(read_timeout=60)  # longer than run()'s 20 s: a cancel not heard fails the test
            fetch = asyncio.ensure_future(d.get(h.url(), LIMIT))
            fetching.append(fetch)
            await asyncio.wait({fetch}, timeout=5)  # at once; a cancel not heard waits for the read timeout
            assert fetch.cancelled()
            await asyncio.wait_for(h.ended[0].wait(), 5)  # and its connection closed
            d.close()

    run(go())


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_cancel_at_any_moment_of_the_connect_leaves_no_socket_open(scheme: str) -> None:
    # The cancel comes k turns of the loop into the download: as the address is read, as
    # the socket connects, as the TLS handshake goes on and ends, as the connection is
    # made. asyncio's own Happy Eyeballs (create_connection with happy_eyeballs_delay)
    # dropped the socket it had connected when cancelled then, open until collected; and
    # a socket closed under a TLS transport still the loop's made the next connections fail.
    import gc
    import warnings

    tls = _server_tls() if scheme == "https" else None
    trusting = ssl.create_default_context(cafile=str(TLS / "cert.pem")) if tls else None

    async def one(k: int) -> tuple[bool, int, int]:
        async with host(then_nothing(b""), tls=tls) as h, host(answer(b"abc")) as after_it:
            d = DirectDownloads(trusting, read_timeout=5.0, connect_timeout=5.0)
            loop = asyncio.get_running_loop()
            fetch = asyncio.ensure_future(d.get(h.url(scheme=scheme), LIMIT))

            def after(left: int) -> None:
                if left > 0:
                    loop.call_soon(after, left - 1)
                else:
                    fetch.cancel()

            loop.call_soon(after, k)
            await asyncio.wait({fetch}, timeout=5)
            d.close()
            # The next connection of the loop is made at once.
            assert await asyncio.wait_for(downloads().get(after_it.url(), LIMIT), 5) == b"abc"
            return fetch.cancelled(), h.connections, h.port

    connected = 0
    for k in range(40 if tls else 16):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cancelled, connections, port = run(one(k))
            gc.collect()
        assert cancelled, k
        connected += connections
        # The client's sockets, those connected to the host's port (the host's own side
        # of a connection it had not begun to serve is the test host's, left to collection).
        left_open = [str(w.message) for w in caught if f"raddr=('127.0.0.1', {port})" in str(w.message)]
        assert not left_open, k
    assert connected  # the later cancels came once the host had the connection


def test_an_https_download_cancelled_as_its_handshake_ends_leaves_the_loop_s_next_connections_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = direct._Receiver.connection_made
    fetching: list[asyncio.Future[object]] = []

    def cancel_as_made(receiver: direct._Receiver, transport: asyncio.BaseTransport) -> None:
        made(receiver, transport)
        fetching[0].cancel()  # in the very turn the handshake ends

    async def go() -> None:
        async with host(then_nothing(b""), tls=_server_tls()) as h, host(answer(b"abc")) as after_it:
            trusting = ssl.create_default_context(cafile=str(TLS / "cert.pem"))
            d = DirectDownloads(trusting, read_timeout=5.0, connect_timeout=5.0)
            monkeypatch.setattr(direct._Receiver, "connection_made", cancel_as_made)
            fetch = asyncio.ensure_future(d.get(h.url(scheme="https"), LIMIT))
            fetching.append(fetch)
            await asyncio.wait({fetch}, timeout=5)
            monkeypatch.setattr(direct._Receiver, "connection_made", made)
            assert fetch.cancelled()
            await asyncio.wait_for(h.ended[0].wait(), 5)  # let go of at once, not after 30 s
            assert await asyncio.wait_for(downloads().get(after_it.url(), LIMIT), 5) == b"abc"
            async with httpx.AsyncClient() as http:
                assert (await http.get(after_it.url())).content == b"abc"
            d.close()

    run(go())


def test_a_kept_connection_the_host_has_since_ended_with_a_408_is_not_asked_on() -> None:
    # A host that ends an idle connection with "408 Request Timeout" (RFC 9110 15.5.9):
    # the 408 came while the loop was busy (an image checked, a save), unread; asked on,
    # the connection would give it as the answer to the next image. The host is on a
    # thread of its own, so that it answers while the loop is busy.
    def serve(conn: socket.socket) -> None:
        abc_for_one_request(conn)
        conn.settimeout(0.05)
        with contextlib.suppress(TimeoutError):
            if conn.recv(65536):
                return  # asked on within 0.05 s: not what this test is about
        conn.sendall(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    with threaded_host(serve) as (port, served):

        async def go() -> None:
            d = downloads()
            assert await d.get(f"http://127.0.0.1:{port}/9.png", LIMIT) == b"abc"
            time.sleep(0.3)  # the loop busy as the 408 comes
            assert await d.get(f"http://127.0.0.1:{port}/9.png", LIMIT) == b"abc"
            d.close()

        run(go())
        assert len(served) == 2  # the second image on a new connection


def test_a_408_answered_on_a_kept_connection_is_asked_again_on_a_new_one() -> None:
    # The host's idle timeout fires as the request is on its way: the 408 is its answer.
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        if n == 2:
            writer.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            writer.close()
            return
        await answer(b"abc")(reader, writer, n)

    run(two_images_on_two_connections(handler))


def test_connections_kept_on_a_loop_that_has_ended_are_closed_when_the_downloads_close() -> None:
    # A script's asyncio.run() downloads an image, and a later one closes the client: the
    # transports of the ended loop can no longer close, so their sockets are closed as such.
    ended = threading.Event()

    def serve(conn: socket.socket) -> None:
        abc_for_one_request(conn)
        conn.settimeout(10)
        if conn.recv(1) == b"":
            ended.set()

    with threaded_host(serve) as (port, _served):
        d = downloads()
        assert run(d.get(f"http://127.0.0.1:{port}/9.png", LIMIT)) == b"abc"

        async def close() -> None:
            d.close()

        run(close())
        assert ended.wait(5)  # the host saw the connection end, without any collection


def abc_for_one_request(conn: socket.socket) -> None:
    """Read one request's head from ``conn`` and answer it with the image ``abc``."""
    request = b""
    while b"\r\n\r\n" not in request:
        request += conn.recv(65536)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")


@contextlib.contextmanager
def threaded_host(serve: Callable[[socket.socket], None]) -> Iterator[tuple[int, list[socket.socket]]]:
    """A host on 127.0.0.1 whose every connection ``serve`` handles on a thread of its own
    (it answers while the client's loop is busy); yields its port and the connections."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    served: list[socket.socket] = []
    threads: list[threading.Thread] = []

    def handle(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            serve(conn)

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            served.append(conn)
            thread = threading.Thread(target=handle, args=(conn,), daemon=True)
            threads.append(thread)
            thread.start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield server.getsockname()[1], served
    finally:
        server.shutdown(socket.SHUT_RDWR)
        server.close()
        acceptor.join(5)
        for thread in threads:
            thread.join(5)

"""Finished images downloaded straight into their own buffer.

httpx receives a body through h11: each piece read from the socket is appended to h11's
buffer, sliced out of it, copied into a ``bytes`` and then into the caller's buffer, about
four copies of every byte, each into memory touched for the first time. A finished image
is the plainest of answers: one ``GET``, answered ``200`` with its length. This module
asks for it over HTTP/1.1 itself and lets the socket write the body straight into the
``bytes`` object that becomes the image (``asyncio.BufferedProtocol``: ``recv_into`` a view
of a ``BytesIO`` sized from ``Content-Length``; over TLS, ``SSLObject.read`` into it). A
2.8 MB PNG takes 2.7 ms from the request to the bytes in hand on loopback, in a fresh
process, against 7.4 ms through httpx and 5.7 ms through aiohttp, with half the page
faults (``tests/benchmarks/bench_download.py``), and the Python lock is free while the
bytes are copied.

Any other answer is not read: :meth:`DirectDownloads.get` says what it was
(:class:`Declined`). Another status (a busy host, with its ``Retry-After``, a missing
image) the caller handles as it would httpx's answer; a 200 whose body comes in chunks or
compressed, without a length or past the caller's limit, or a head that does not parse,
the caller asks for again through httpx, which handles all of it (the body is never read
twice: these answers are closed before it). Failures of the network itself are raised as
httpx's own (``ConnectError``, ``ReadTimeout``, ``RemoteProtocolError``...), so the caller
handles them as it does httpx's. Connections are kept open for the next image of the same
host (at most :data:`IDLE_PER_HOST`), and a kept connection the host has meanwhile closed
(or ended with a ``408 Request Timeout``) is replaced by a new one at once. The sockets are
made here (:func:`_first_to_answer`), so that each is closed whatever happens to it: a
cancel at any moment of the connect, a loop that has ended before the downloads close.

No proxy: the client uses this only where it would go straight to the host anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import re
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

IDLE_PER_HOST = 4  # connections kept open for later images, per host
IDLE_EXPIRY = 5.0  # seconds a kept connection may wait for its next request (as httpx's pool)
HEAD_MAX = 64 * 1024  # the status line and headers of an answer, at most
NEXT_ADDRESS_AFTER = 0.25  # seconds before a host's next address is tried too (as httpx's connections do)
_CRLF2 = b"\r\n\r\n"
_BLANK_LINE = re.compile(rb"\n\r?\n")  # the end of a head, however its lines end


@dataclass(frozen=True)
class _Origin:
    scheme: str
    host: str
    port: int


@dataclass(frozen=True)
class Declined:
    """An answer not read here: another status than 200 (with its ``Retry-After``), or a
    200 whose body is not plain (``status`` 200), or a head that does not parse
    (``status`` None)."""

    status: int | None
    retry_after: str | None = None


class _Declined(Exception):
    def __init__(self, status: int | None = None, retry_after: str | None = None) -> None:
        super().__init__(status)
        self.answer = Declined(status, retry_after)


class _Receiver(asyncio.BufferedProtocol):
    """One connection: reads one answer's head, then its body straight into the image's
    buffer; kept for the next request when the host allows it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, read_timeout: float) -> None:
        self._loop = loop
        self._read_timeout = read_timeout
        self.transport: asyncio.Transport | None = None
        self.sock: socket.socket | None = None  # the connection's own socket (see DirectDownloads.close)
        self.closed = False  # the connection is gone (or going): not to be used again
        self.got_any = False  # any byte of the answer to the latest request came
        self._done: asyncio.Future[io.BytesIO] | None = None
        self._limit = 0
        self._keep = False
        # Never resized: a buffer handed out may still be held while the next is asked
        # for (Python 3.10's TLS, Windows' proactor), and a bytearray with a view on it
        # cannot grow.
        self._head = bytearray(HEAD_MAX + 1)
        self._head_len = 0
        self._scratch: bytearray | None = None  # where bytes nobody will read go
        self.idle_since = 0.0
        self._body: io.BytesIO | None = None
        self._view: memoryview | None = None
        self._size = 0
        self._pos = 0
        self._last_read = 0.0
        self._timer: asyncio.TimerHandle | None = None

    # -- the request ---------------------------------------------------------------------

    def ask(self, request: bytes, limit: int) -> asyncio.Future[io.BytesIO]:
        """Send ``request`` and return the future of its body (or :class:`_Declined`, or a
        network error). The body's bytes are taken from it with ``getvalue()`` once the
        loop's own view of it is gone (a view still held would make that a copy)."""
        assert self.transport is not None and not self.closed
        self._done = self._loop.create_future()
        self._limit = limit
        self._head_len = 0
        self._body = self._view = None
        self._size = self._pos = 0
        self.got_any = False
        self._keep = False
        self._last_read = self._loop.time()
        self._timer = self._loop.call_later(self._read_timeout, self._check_time)
        self.transport.write(request)
        return self._done

    @property
    def reusable(self) -> bool:
        """Whether the connection may serve the next request: the answer read was whole
        and the host keeps the connection."""
        return self._keep and not self.closed

    # -- asyncio.BufferedProtocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._view is not None:
            return self._view[self._pos :]
        if self._head_len < len(self._head) and self._done is not None and not self._done.done():
            return memoryview(self._head)[self._head_len :]
        if self._scratch is None:  # nothing is waiting for these bytes (the connection is dropped)
            self._scratch = bytearray(4096)
        return memoryview(self._scratch)

    def buffer_updated(self, nbytes: int) -> None:
        self._last_read = self._loop.time()
        self.got_any = True
        if self._done is None or self._done.done():  # bytes nobody asked for: not reused
            self._drop()
            return
        if self._view is not None:
            self._pos += nbytes
            if self._pos >= self._size:
                self._finish()
            return
        self._head_len += nbytes
        blank = _BLANK_LINE.search(self._head, 0, self._head_len)
        if blank is None:
            if self._head_len > HEAD_MAX:
                self._fail(_Declined())  # no end to the head: httpx's
            return
        end = blank.start() - 1  # where the head's last line ends, if it ended with CR LF
        if blank.group() != b"\n\r\n" or end < 0 or self._head[end] != 0x0D:
            self._fail(_Declined())  # lines that end without CR: httpx's
            return
        try:
            self._start_body(end)
        except _Declined as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        self.closed = True
        if self._done is not None and not self._done.done():
            self._fail(
                httpx.RemoteProtocolError(
                    "The image's host closed the connection before the whole image came."
                    if self.got_any
                    else "The image's host closed the connection without answering."
                )
            )
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._stop_timer()
        self._release()
        if self._done is not None and not self._done.done():
            error = httpx.ReadError("The connection to the image's host was lost.")
            error.__cause__ = exc
            self._done.set_exception(error)

    # -- the answer --------------------------------------------------------------------------

    def _start_body(self, end: int) -> None:
        """Read the head in ``self._head[:end]``; make the body's buffer, moving into it what
        came after the head."""
        head = bytes(self._head[:end])
        if head.count(b"\n") != head.count(b"\r\n"):
            raise _Declined()  # a line that ends without CR: httpx's
        lines = head.split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        code = rest[:3]
        if version not in (b"HTTP/1.1", b"HTTP/1.0") or not code.isdigit() or rest[3:4] not in (b"", b" "):
            raise _Declined()
        headers: dict[bytes, list[bytes]] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
                raise _Declined()  # a malformed header or a folded line
            headers.setdefault(name.lower(), []).append(value.strip())
        status = int(code)
        if status < 200:  # an interim answer (103 Early Hints...) before the real one: httpx's
            raise _Declined()
        if status != 200:
            retry_after = headers.get(b"retry-after", [b""])[0].decode("latin-1") or None
            raise _Declined(status, retry_after)
        lengths = set(headers.get(b"content-length", []))
        if len(lengths) != 1 or b"transfer-encoding" in headers:
            raise _Declined(200)
        (length,) = lengths
        if not length.isdigit() or len(length) > 18:
            raise _Declined(200)
        size = int(length)
        encodings = headers.get(b"content-encoding", [b"identity"])
        if size > self._limit or any(e.lower() not in (b"", b"identity") for e in encodings):
            raise _Declined(200)
        connection = b",".join(headers.get(b"connection", [])).lower()
        self._keep = b"close" not in connection if version == b"HTTP/1.1" else b"keep-alive" in connection
        after = self._head_len - (end + len(_CRLF2))
        if after > size:  # more than the body: not a connection to read from again
            self._keep = False
            after = size
        self._size = size
        body = io.BytesIO()
        if size:
            body.seek(size - 1)
            body.write(b"\0")
        self._body = body
        if size == 0:
            self._finish()
            return
        self._view = body.getbuffer()
        start = end + len(_CRLF2)
        self._view[:after] = self._head[start : start + after]
        self._pos = after
        if self._pos >= size:
            self._finish()

    def _finish(self) -> None:
        self._stop_timer()
        body = self._body
        self._release()
        assert body is not None and self._done is not None
        self._done.set_result(body)

    def _fail(self, exc: BaseException) -> None:
        self._stop_timer()
        self._release()
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)
        self._drop()

    def _drop(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _release(self) -> None:
        if self._view is not None:
            self._view.release()
            self._view = None
        self._body = None

    def _check_time(self) -> None:
        self._timer = None
        if self._done is None or self._done.done():
            return
        idle = self._loop.time() - self._last_read
        if idle >= self._read_timeout:
            self._fail(httpx.ReadTimeout("The image's host sent nothing for too long."))
        else:
            self._timer = self._loop.call_later(self._read_timeout - idle, self._check_time)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def abandon(self) -> None:
        """The request was given up (cancelled): the connection goes, mid-answer as it is."""
        self._stop_timer()
        self._release()
        self._drop()

    def has_news(self) -> bool:
        """Whether the host has sent something, or closed, since the last answer, unread
        as yet (the loop has not run since): a kept connection not to ask on. A host may
        end an idle connection with an answer of its own, ``408 Request Timeout``."""
        if self.sock is None:
            return False
        try:
            return bool(self.sock.recv(1, socket.MSG_PEEK))  # b"": the host closed it
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True

    def close_on_ended_loop(self) -> None:
        """Close the connection when its loop has ended: the socket itself, at once (the
        transport can no longer close it, and would keep it until collected)."""
        self.closed = True
        self._release()
        self.transport = None  # the transport and this protocol hold each other
        if self.sock is not None:
            self.sock.close()


class DirectDownloads:
    """Plain image downloads for one event loop (see the module's docstring)."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext | None,
        *,
        read_timeout: float,
        connect_timeout: float,
    ) -> None:
        self._ssl_context = ssl_context
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: dict[_Origin, list[_Receiver]] = {}
        self._busy: set[_Receiver] = set()
        self._closed = False
        self.connections_made = 0

    async def get(self, url: str, limit: int) -> bytes | Declined:
        """The body of ``url`` when it is answered ``200`` with a length of at most ``limit``
        bytes, neither compressed nor in chunks; for any other answer, what it was
        (:class:`Declined`: httpx asks again for a 200 of another kind). Network failures
        raise httpx's ``TransportError``s."""
        if self._closed:
            raise httpx.ConnectError("These downloads were closed.")
        self._loop = asyncio.get_running_loop()  # one loop's: see close()
        target = _request_target(url)
        if target is None:
            return Declined(None)
        origin, request = target
        receiver = self._take_idle(origin)
        if receiver is not None:
            try:
                got = await self._ask(receiver, origin, request, limit)
            except (httpx.ReadError, httpx.RemoteProtocolError):
                if receiver.got_any:
                    raise
                # A kept connection the host had closed meanwhile: once more on a new one.
            else:
                if not (isinstance(got, Declined) and got.status == 408):
                    return got
                # The host ended the kept connection as it was asked on (408 Request
                # Timeout, sent as it closes an idle one): once more on a new one.
        receiver = await self._connect(origin)
        return await self._ask(receiver, origin, request, limit)

    async def _ask(self, receiver: _Receiver, origin: _Origin, request: bytes, limit: int) -> bytes | Declined:
        self._busy.add(receiver)
        try:
            body = await receiver.ask(request, limit)
        except _Declined as declined:
            return declined.answer
        except BaseException:
            receiver.abandon()  # cancelled or failed mid-answer: never read from again
            raise
        finally:
            self._busy.discard(receiver)
        data = body.getvalue()  # the buffer itself, handed over (no view of it is left)
        if receiver.reusable and not self._closed:
            kept = self._idle.setdefault(origin, [])
            if len(kept) < IDLE_PER_HOST:
                receiver.idle_since = asyncio.get_running_loop().time()
                kept.append(receiver)
                return data
        receiver.abandon()
        return data

    def _take_idle(self, origin: _Origin) -> _Receiver | None:
        """A kept connection to ``origin`` still open, kept no longer than
        :data:`IDLE_EXPIRY` (one quiet for longer may have died on the way without a word:
        a router's timeout, a computer waking from sleep)."""
        kept = self._idle.get(origin)
        now = asyncio.get_running_loop().time()
        while kept:
            receiver = kept.pop()
            fresh = now - receiver.idle_since <= IDLE_EXPIRY
            open_ = not receiver.closed and receiver.transport is not None and not receiver.transport.is_closing()
            if fresh and open_ and not receiver.has_news():
                return receiver
            receiver.abandon()
        return None

    async def _connect(self, origin: _Origin) -> _Receiver:
        # Not asyncio.wait_for: before Python 3.12 it hands back the connection, and drops
        # the cancel, when a cancel comes as the connection is made (a Cancel, a quit),
        # and the whole image was then downloaded before the job ended.
        connecting = asyncio.ensure_future(self._open(origin))
        try:
            await asyncio.wait({connecting}, timeout=self._connect_timeout)
        except asyncio.CancelledError:
            _give_up(connecting)
            raise
        if not connecting.done():
            _give_up(connecting)
            raise httpx.ConnectTimeout(f"Connecting to {origin.host} took too long.")
        try:
            receiver = connecting.result()
        except Exception as exc:  # an OSError (ssl.SSLError among them); a name IDNA refuses, a ValueError...
            raise httpx.ConnectError(f"Could not connect to {origin.host}: {exc!r}") from exc
        self.connections_made += 1
        if self._closed:
            receiver.abandon()
            raise httpx.ConnectError("These downloads were closed.")
        return receiver

    async def _open(self, origin: _Origin) -> _Receiver:
        """A connection to ``origin``: its addresses looked up, the first to answer of them
        (:func:`_first_to_answer`), TLS over it for https."""
        loop = asyncio.get_running_loop()
        tls = origin.scheme == "https"
        if tls and self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        sock = await _first_to_answer(await _addresses(origin.host, origin.port))
        made: list[_Receiver] = []

        def receiver() -> _Receiver:
            made.append(_Receiver(loop, self._read_timeout))
            return made[-1]

        try:
            _transport, connected = await loop.create_connection(
                receiver,
                sock=sock,
                ssl=self._ssl_context if tls else None,
                server_hostname=origin.host if tls else None,
            )
        except BaseException:
            if made and made[0].transport is not None:
                # The connection was made (over TLS: the handshake was over) as this was
                # cancelled. asyncio closed it gently, which over TLS waits up to 30 s for
                # the host's goodbye with the socket still the loop's: aborted instead, it is
                # let go of at once, and its socket closed by asyncio (closed here under
                # the loop, its number would be refused to every connection after it).
                made[0].transport.abort()
            else:
                sock.close()  # no transport holds it (one made during a handshake is aborted at once)
            raise
        connected.sock = sock
        return connected

    def close(self) -> None:
        """Close every connection, kept or under way (a download under way then fails as
        its connection was lost); from any thread."""
        self._closed = True
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or loop is running:
            self._close_now()
        elif loop.is_closed():  # its transports can no longer close: their sockets are closed here
            for receiver in [r for kept in self._idle.values() for r in kept] + list(self._busy):
                receiver.close_on_ended_loop()
            self._idle.clear()
            self._busy.clear()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: as above
                loop.call_soon_threadsafe(self._close_now)

    def _close_now(self) -> None:
        for kept in self._idle.values():
            for receiver in kept:
                receiver.abandon()
        self._idle.clear()
        for receiver in list(self._busy):
            receiver.abandon()


def _give_up(connecting: asyncio.Future[_Receiver]) -> None:
    """Stop making a connection; one made all the same is closed."""
    connecting.cancel()

    def closed(made: asyncio.Future[_Receiver]) -> None:
        if not made.cancelled() and made.exception() is None:
            made.result().abandon()

    connecting.add_done_callback(closed)


_Address = tuple[int, int, int, str, tuple]  # what getaddrinfo() gives for each address


async def _addresses(host: str, port: int) -> list[_Address]:
    """``host``'s addresses for a TCP connection, families taking turns (one of the first
    family, one of the next...), as the system orders them. An address written as numbers
    is read at once; a name is looked up on the loop's executor."""
    try:
        # As bytes: a host given as text is encoded with the IDNA codec, whose first use
        # imports it (1.5 ms, the first download's, here); a name is encoded so below.
        found: Sequence[_Address] = socket.getaddrinfo(
            host.encode("ascii"), port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_NUMERICHOST
        )
    except (socket.gaierror, UnicodeError):
        found = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    families: dict[int, list[_Address]] = {}
    for info in dict.fromkeys(found):  # once each
        families.setdefault(info[0], []).append(info)
    turns = itertools.zip_longest(*families.values())
    return [info for turn in turns for info in turn if info is not None]


async def _first_to_answer(addresses: Sequence[_Address]) -> socket.socket:
    """A socket connected to the first of ``addresses`` to answer: each is tried in turn,
    the next begun when the one before has failed or after :data:`NEXT_ADDRESS_AFTER`
    without an answer (a broken IPv6 route, one dead server of several), the ones begun
    before still waited for ("Happy Eyeballs", RFC 8305).

    Every socket is made here and closed here unless it is the one handed back: by the
    attempt that made it when that fails or is cancelled, and here once one has answered
    or the whole is cancelled (asyncio's own way, ``create_connection`` with
    ``happy_eyeballs_delay``, drops a socket it had connected when it is cancelled).
    """
    if not addresses:
        raise OSError("The host's name has no address.")
    loop = asyncio.get_running_loop()
    connected: list[socket.socket] = []

    async def attempt(address: _Address) -> socket.socket:
        family, kind, proto, _, where = address
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, where)
        except BaseException:
            sock.close()
            raise
        connected.append(sock)
        return sock

    if len(addresses) == 1:  # nothing to race (a host written as its address, the simulator's)
        return await attempt(addresses[0])
    waiting: set[asyncio.Task[socket.socket]] = set()
    errors: list[BaseException] = []
    winner: socket.socket | None = None
    try:
        for index, address in enumerate(addresses):
            waiting.add(asyncio.ensure_future(attempt(address)))
            last = index + 1 == len(addresses)
            while waiting and winner is None:
                done, waiting = await asyncio.wait(
                    waiting, timeout=None if last else NEXT_ADDRESS_AFTER, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    error = task.exception()
                    if error is None:
                        winner = winner or task.result()
                    else:
                        errors.append(error)
                if not last:
                    break  # the next address, at once (one failed) or after its wait
            if winner is not None:
                break
    finally:
        for task in waiting:
            task.cancel()  # each closes its own socket
        for sock in connected:
            if sock is not winner:
                sock.close()
    if winner is None:
        if len(errors) == 1:
            raise errors[0]
        raise OSError(f"No address of the host answered: {'; '.join(str(e) for e in errors)}")
    return winner


def _request_target(url: str) -> tuple[_Origin, bytes] | None:
    """Where to connect and the request to send for ``url`` (its path and query encoded as
    httpx would send them); None for an address this module leaves to httpx (user info,
    another scheme, one httpx cannot read)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        return None
    scheme = parsed.scheme
    if scheme not in ("http", "https") or not parsed.raw_host or parsed.userinfo:
        return None
    target = parsed.raw_path or b"/"
    if not target.startswith(b"/") or any(c <= 0x20 or c >= 0x7F for c in target):
        return None
    try:
        host = parsed.raw_host.decode("ascii")  # a name IDNA-encoded, an IPv6 address without brackets
    except UnicodeDecodeError:
        return None
    default = 443 if scheme == "https" else 80
    port = parsed.port if parsed.port is not None else default
    if not 0 < port < 65536:
        return None
    named = f"[{host}]" if ":" in host else host
    host_header = named if port == default else f"{named}:{port}"
    request = (
        f"GET {target.decode('ascii')} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: krea-desktop\r\n"
        "Accept: */*\r\nAccept-Encoding: identity\r\n\r\n"
    )
    return _Origin(scheme, host, port), request.encode("ascii")

"""The simulator on a loopback socket: a small HTTP/1.1 server on ``asyncio.start_server``.

Routes: ``POST /`` and ``POST /v1`` (task arrays, answered by :class:`SimulatorService`),
``GET /images/<imageUUID>.<ext>`` (URL outputs and uploads), ``GET /health``.
Connections are kept alive; bodies come with ``Content-Length`` or chunked encoding.
Transport faults are carried out literally: ``drop`` closes the connection without an
answer, ``hang`` holds it open and silent until the client gives up or the server stops.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from email.utils import formatdate
from http import HTTPStatus
from types import TracebackType
from urllib.parse import urlsplit

from krea_desktop.simulator.service import Reply, SimulatorService

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 512 * 1024 * 1024
MAX_HEADERS = 100
_STREAM_LIMIT = 1 << 16


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SimulatorServer:
    """Serves a :class:`SimulatorService` over HTTP on ``host:port`` (port 0 picks a free one)."""

    def __init__(self, service: SimulatorService | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.service = service if service is not None else SimulatorService()
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._stopping: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- addresses --------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` (no path)."""
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The task endpoint, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"{self.base_url}/v1"

    # -- lifecycle on the caller's loop -----------------------------------------------

    async def start(self) -> str:
        """Start listening; returns :attr:`url`."""
        if self._server is not None:
            return self.url
        self._stopping = asyncio.Event()
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=_STREAM_LIMIT)
        sockets = self._server.sockets
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        self.service.public_url = self.base_url
        return self.url

    async def stop(self) -> None:
        """Stop listening and close every connection, hanging ones included."""
        server, self._server = self._server, None
        if server is None:
            return
        if self._stopping is not None:
            self._stopping.set()
        server.close()
        for writer in list(self._writers):
            writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5)

    async def serve_forever(self) -> None:
        await self.start()
        assert self._stopping is not None
        await self._stopping.wait()

    # -- lifecycle on a thread of its own ---------------------------------------------

    def start_in_thread(self) -> str:
        """Run the server on its own event loop in a daemon thread; returns :attr:`url`."""
        if self._thread is not None:
            return self.url
        started: concurrent.futures.Future[str] = concurrent.futures.Future()
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                started.set_result(loop.run_until_complete(self.start()))
            except BaseException as exc:
                started.set_exception(exc)
                loop.close()
                return
            try:
                loop.run_forever()
            finally:
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="krea-simulator", daemon=True)
        self._thread.start()
        try:
            return started.result(timeout=10)
        except BaseException:
            self._thread.join(5)
            self._thread = self._loop = None
            raise

    def stop_thread(self, timeout: float = 10.0) -> None:
        """Stop a server started with :meth:`start_in_thread` and wait for its thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._thread = self._loop = None

    def __enter__(self) -> SimulatorServer:
        self.start_in_thread()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_thread()

    # -- HTTP -------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    request = await self._read_request(reader)
                except _BadRequest as bad:
                    reply = Reply.json(bad.status, {"errors": [{"code": "badRequest", "message": str(bad)}]})
                    await self._write(writer, reply, keep_alive=False, head=False)
                    break
                except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                    break
                if request is None:
                    break
                method, target, headers, body, keep_alive = request
                host = headers.get("host")
                base = f"http://{host}" if host else self.base_url
                try:
                    reply = await self.service.route(method, target, headers, body, base_url=base)
                except Exception:
                    log.exception("simulator failed on %s %s", method, target)
                    failure = {"code": "internalServerError", "message": "The simulator failed on this request."}
                    reply = Reply.json(500, {"errors": [failure]})
                if reply.action == "drop":
                    break
                if reply.action == "hang":
                    await self._hold(reader)
                    break
                await self._write(writer, reply, keep_alive=keep_alive, head=method == "HEAD")
                if not keep_alive:
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _hold(self, reader: asyncio.StreamReader) -> None:
        """Keep a connection open and silent until the client closes it or the server stops."""
        assert self._stopping is not None
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            while True:
                read = asyncio.ensure_future(reader.read(1 << 16))
                done, _ = await asyncio.wait({stop, read}, return_when=asyncio.FIRST_COMPLETED)
                if read not in done:
                    read.cancel()
                    return
                try:
                    if not read.result():
                        return  # the client gave up
                except (ConnectionError, OSError):
                    return
        finally:
            stop.cancel()

    async def _read_request(self, reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes, bool] | None:
        line = await reader.readline()
        while line in (b"\r\n", b"\n"):
            line = await reader.readline()
        if not line:
            return None
        parts = line.decode("latin-1").strip().split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise _BadRequest(400, "Malformed request line.")
        method, target, version = parts
        headers: dict[str, str] = {}
        while True:
            hline = await reader.readline()
            if not hline:
                return None
            if hline in (b"\r\n", b"\n"):
                break
            if len(headers) >= MAX_HEADERS:
                raise _BadRequest(431, "Too many headers.")
            name, sep, value = hline.decode("latin-1").partition(":")
            if not sep:
                raise _BadRequest(400, "Malformed header line.")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        if target.startswith(("http://", "https://")):
            split = urlsplit(target)
            target = split.path + (f"?{split.query}" if split.query else "")
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        body = b""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._read_chunked(reader)
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise _BadRequest(400, "Content-Length is not a number.") from None
            if length < 0:
                raise _BadRequest(400, "Content-Length is negative.")
            if length > MAX_BODY_BYTES:
                raise _BadRequest(413, f"The body is larger than {MAX_BODY_BYTES} bytes.")
            body = await reader.readexactly(length)
        return method, target, headers, body, keep_alive

    async def _read_chunked(self, reader: asyncio.StreamReader) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = await reader.readline()
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BadRequest(400, "Malformed chunk size.") from None
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BadRequest(413, f"The body is larger than {MAX_BODY_BYTES} bytes.")
            chunks.append(await reader.readexactly(size))
            await reader.readline()

    async def _write(self, writer: asyncio.StreamWriter, reply: Reply, *, keep_alive: bool, head: bool) -> None:
        try:
            phrase = HTTPStatus(reply.status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [f"HTTP/1.1 {reply.status} {phrase}"]
        headers = {k.lower(): (k, v) for k, v in reply.headers.items()}
        for drop in ("content-length", "connection", "transfer-encoding"):
            headers.pop(drop, None)
        for name, value in headers.values():
            lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(reply.body)}")
        lines.append(f"Connection: {'keep-alive' if keep_alive else 'close'}")
        lines.append(f"Date: {formatdate(usegmt=True)}")
        lines.append("Server: krea-desktop-simulator")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if not head and reply.body:
            writer.write(reply.body)
        await writer.drain()

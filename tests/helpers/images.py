"""Small images and broken files for the input tests, made in memory."""

from __future__ import annotations

import io
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image

SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>\n'


def image_bytes(
    size: tuple[int, int] = (40, 30), colour: tuple[int, ...] = (200, 40, 40), fmt: str = "PNG", mode: str = "RGB"
) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, fmt)
    return buf.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def huge_header_png(width: int = 30000, height: int = 30000) -> bytes:
    """A few dozen bytes whose header claims an enormous image (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def truncated_png() -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((64, 64), 60).convert("RGB").save(buf, "PNG")
    data = buf.getvalue()
    return data[: len(data) // 2]


def distinct_png(i: int) -> bytes:
    return image_bytes((16 + i, 16), (i * 20 % 256, 100, 150))


@dataclass
class Route:
    body: bytes
    content_type: str = "image/png"
    status: int = 200
    delay: float = 0.0
    # Answered only once set (or after a minute): a download under way for as long as a
    # test needs it to be.
    gate: threading.Event | None = None
    answered: int = 0  # how many times it was answered


@dataclass
class WebServer:
    url: str
    routes: dict[str, Route] = field(default_factory=dict)


@contextmanager
def serving(routes: dict[str, Route]) -> Iterator[WebServer]:
    """An HTTP server on 127.0.0.1 in a thread answering ``routes`` (path -> Route)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            route = routes.get(self.path)
            if route is None:
                route = Route(b"not found", "text/plain", 404)
            if route.delay:
                time.sleep(route.delay)
            if route.gate is not None:
                route.gate.wait(60)
            route.answered += 1
            try:
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)
            except OSError:
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield WebServer(f"http://127.0.0.1:{server.server_address[1]}", routes)
    finally:
        server.shutdown()
        server.server_close()

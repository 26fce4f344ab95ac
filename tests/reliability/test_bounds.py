"""Bounded memory and time: compression bombs and junk answers, a reference of a hundred
million pixels, a FIFO where an image should be, a service that never answers.

Peak memory is the child process's own, so each hostile case runs the command line as a
person would. It is read from the child's ``VmHWM`` as it exits: ``os.wait4``'s
``ru_maxrss`` also counts the memory the child had before ``exec``, which is this test
process's own (Linux carries it over), so a large test run would inflate it.
"""

from __future__ import annotations

import asyncio
import os
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from krea_desktop.api import errors as E
from krea_desktop.api.client import RunwareClient
from krea_desktop.api.request import GenerationRequest
from krea_desktop.library import metadata
from krea_desktop.library.inputs import InvalidImageError, load_reference

KEY = "sk-bounds-test"
PEAK_LIMIT_MB = 600


# ``python -m krea_desktop ARGS`` that writes its peak resident memory (KiB) to a file on exit.
_MEASURED = r"""
import atexit, os, runpy, sys

def _peak() -> None:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                with open(os.environ["KREA_TEST_PEAK_FILE"], "w") as out:
                    out.write(line.split()[1])

atexit.register(_peak)
sys.argv = ["krea-desktop", *sys.argv[1:]]
runpy.run_module("krea_desktop", run_name="__main__", alter_sys=True)
"""


def run_measured(args: list[str], env: dict[str, str], timeout: float = 120) -> tuple[int, str, float]:
    """Run the command line; its exit code, stderr and peak resident memory in MB."""
    peak_file = Path(env.get("KREA_DESKTOP_DATA_DIR", ".")).parent / f"peak-{threading.get_ident()}.txt"
    peak_file.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", _MEASURED, *args],
        env={**env, "KREA_TEST_PEAK_FILE": str(peak_file)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        assert proc.stderr is not None
        err = proc.stderr.read()
        _pid, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    try:
        peak_kib = float(peak_file.read_text())
    except (OSError, ValueError):  # no /proc, or it never reached its exit: the wider figure
        peak_kib = usage.ru_maxrss
    return proc.returncode, err, peak_kib / 1024


def one_sentence(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("krea-desktop: ")]
    assert lines, stderr
    return lines[-1]


@contextmanager
def hostile_service(body: bytes | None, headers: dict[str, str], stream_junk: int = 0) -> Iterator[str]:
    """A loopback 'service' answering every POST with ``body`` (or ``stream_junk`` bytes of
    junk with no length, or nothing at all when ``body`` is None and no junk is asked)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if body is None and not stream_junk:
                time.sleep(30)  # silent: the client must give up first
                return
            try:
                self.send_response(200)
                for k, v in headers.items():
                    self.send_header(k, v)
                if stream_junk:
                    self.send_header("Connection", "close")
                    self.end_headers()
                    chunk = b"x" * (1 << 20)
                    for _ in range(stream_junk // len(chunk)):
                        self.wfile.write(chunk)
                else:
                    assert body is not None
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
            except OSError:
                pass  # the client stopped reading, as it should

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def gzip_bomb(size: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(16 << 20)
    parts = [packer.compress(zeros) for _ in range(size // len(zeros))]
    return b"".join(parts) + packer.flush()


def test_a_compression_bomb_answer_is_refused_with_bounded_memory(env: dict[str, str]) -> None:
    bomb = gzip_bomb(1 << 30)  # 1 GB once inflated, about 1 MB on the wire
    assert len(bomb) < 4 << 20
    with hostile_service(bomb, {"Content-Type": "application/json", "Content-Encoding": "gzip"}) as url:
        code, err, peak = run_measured(
            ["generate", "a lighthouse"], {**env, "RUNWARE_API_KEY": KEY, "RUNWARE_API_URL": url}
        )
    assert code == 1
    assert "larger than the" in one_sentence(err)
    print(f"peak {peak:.0f} MB")
    assert peak < PEAK_LIMIT_MB, f"peak {peak:.0f} MB"


@pytest.mark.parametrize("announced", [True, False])
def test_a_huge_junk_answer_is_refused_with_bounded_memory(env: dict[str, str], announced: bool) -> None:
    size = 500 << 20
    if announced:
        service = hostile_service(b"", {"Content-Type": "application/json", "Content-Length": str(size)})
        # The length alone refuses it: nothing of the body is read. (The body sent is empty,
        # but the client never gets that far.)
    else:
        service = hostile_service(None, {"Content-Type": "application/json"}, stream_junk=size)
    with service as url:
        code, err, peak = run_measured(
            ["generate", "a lighthouse"], {**env, "RUNWARE_API_KEY": KEY, "RUNWARE_API_URL": url}
        )
    assert code == 1
    line = one_sentence(err)
    assert "larger than the" in line or "broke off" in line, line
    print(f"peak {peak:.0f} MB")
    assert peak < PEAK_LIMIT_MB, f"peak {peak:.0f} MB"


def tall_png(path: Path, height: int = 99_999_999) -> Path:
    """A PNG of 1×``height`` grey pixels: about 200 KB on disk, 100 million pixels."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    packer = zlib.compressobj(9)
    rows = b"\x00\x80" * (1 << 20)  # filter byte + one pixel, a million rows at a time
    parts = [packer.compress(rows) for _ in range(height // (1 << 20))]
    parts.append(packer.compress(b"\x00\x80" * (height % (1 << 20))))
    parts.append(packer.flush())
    ihdr = struct.pack(">IIBBBBB", 1, height, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def test_a_reference_of_a_hundred_million_pixels_is_refused_before_decoding(
    tmp_path: Path, env: dict[str, str]
) -> None:
    tall = tall_png(tmp_path / "tall.png")
    assert tall.stat().st_size < 1 << 20
    started = time.monotonic()
    with pytest.raises(InvalidImageError, match="too large"):
        load_reference(tall)
    assert time.monotonic() - started < 5
    code, err, peak = run_measured(["generate", "a lighthouse", "--demo", "--ref", str(tall)], env)
    assert code == 1
    assert "“tall.png” is too large (1×99999999)" in one_sentence(err)
    print(f"peak {peak:.0f} MB")
    assert peak < PEAK_LIMIT_MB, f"peak {peak:.0f} MB"


def test_a_fifo_never_blocks(tmp_path: Path, env: dict[str, str]) -> None:
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    started = time.monotonic()
    assert metadata.read_record(fifo) is None
    with pytest.raises(InvalidImageError, match="not a file"):
        load_reference(fifo)
    assert time.monotonic() - started < 20  # a read of it waits for ever
    code, err, _peak = run_measured(["generate", "a lighthouse", "--demo", "--ref", str(fifo)], env, timeout=30)
    assert code == 1 and "“x.png” is not a file" in one_sentence(err)


def test_a_silent_service_is_given_up_on_within_each_phases_budget() -> None:
    with hostile_service(None, {}) as url:
        client = RunwareClient(KEY, base_url=url, timeout=0.5, connect_timeout=0.5, probe_budget=1.5)

        async def run() -> BaseException | None:
            try:
                async for _ in client.generate(GenerationRequest("a lighthouse", delivery_method="async")):
                    pass
            except E.KreaError as err:
                return err
            finally:
                await client.aclose()
            return None

        started = time.monotonic()
        err = asyncio.run(run())
        took = time.monotonic() - started
    assert isinstance(err, E.ServiceTimeoutError)
    assert "did not say whether it had received the task" in str(err) or "while asking whether" in str(err)
    # submit (0.5 s) + asking (1.5 s), with room for a busy machine
    assert took < 0.5 + 1.5 + 3, took


def test_the_default_budgets_are_short() -> None:
    client = RunwareClient(KEY, base_url="https://api.runware.ai/v1")
    try:
        assert client.connect_timeout <= 10 and client.timeout <= 20 and client.probe_budget <= 45
    finally:
        asyncio.run(client.aclose())

"""Receiving an answer's body: whole, decompressed, within a limit, and (for a large
answer of announced length) into a page-backed buffer whose items are handed over as
they arrive."""

from __future__ import annotations

import contextlib
import mmap
import sys
from collections.abc import Callable
from typing import Any

import httpx

from krea_desktop.api import errors as E
from krea_desktop.api.pacing import pace
from krea_desktop.api.response import Body, ItemScanner, Pacer, parse_body

# Answers of this size or more are received into a buffer of their own (:func:`read_body`).
_MAPPED_BODY_MIN = 1 << 20
_MAPPED_BODY_MAX = 1 << 30
# Before Python 3.11, mmap.find is a byte-by-byte loop (15 times slower than bytes.find on
# a 1 MiB window), which would undo the point of the mapping: those versions grow a bytearray
# (and hand its items over from copies of their bytes, :func:`_read_grown`).
_MAPPING_SEARCHES_FAST = sys.version_info >= (3, 11)
# The most an answer may hold once decompressed: a little for the envelope, plus room for
# each image asked for as base64 (a getResponse answer carries every finished image again).
ANSWER_BASE_BYTES = 16 * 1024 * 1024
ANSWER_PER_IMAGE_BYTES = 32 * 1024 * 1024


def answer_limit(images: int) -> int:
    """The largest answer accepted for a task of ``images`` images (decompressed bytes)."""
    return min(_MAPPED_BODY_MAX, ANSWER_BASE_BYTES + ANSWER_PER_IMAGE_BYTES * max(0, images))


def too_large(limit: int) -> E.MalformedResponseError:
    return E.MalformedResponseError(
        f"The service's answer was larger than the {limit // 2**20} MB expected for it, so it was not read."
    )


async def read_body(
    resp: httpx.Response,
    limit: int = ANSWER_BASE_BYTES,
    *,
    pacer: Pacer = pace,
    on_item: Callable[[dict[str, Any]], None] | None = None,
) -> Body:
    """The whole body, decompressed, refusing one larger than ``limit`` bytes (so neither a
    compression bomb nor endless junk can fill memory).

    A large answer whose length is announced goes into a page-backed buffer of that size
    (``mmap``: its pages are zero until written, so reserving it costs nothing). Growing one
    buffer chunk by chunk instead would remap it dozens of times, and one of those calls,
    made with the GIL held, now and then took long enough to stall the GUI thread for over
    a frame (``bench_gui_stall.py``). ``pacer`` is called after each chunk (in the window,
    ``pace`` hands the GIL over every few milliseconds: see ``krea_desktop.api.pacing``).

    In such a buffer, which never moves, ``on_item`` hears of each item of the answer's
    ``data`` as soon as it is in (see ``response.ItemScanner``), its large strings as
    slices of the buffer; where none is made (before Python 3.11, or when the system will
    not reserve it), as soon as it is in all the same, from a copy of its bytes."""
    size = _announced_size(resp)
    if size is not None and size > limit:
        raise too_large(limit)
    buf = _reserve(size) if size is not None and _MAPPING_SEARCHES_FAST else None
    if size is None or buf is None:
        return await _read_grown(resp, limit, pacer, None if size is None else on_item)
    scanner = ItemScanner(buf) if on_item is not None else None
    view = memoryview(buf)
    pos = 0
    chunks = resp.aiter_bytes()
    async for chunk in chunks:
        end = pos + len(chunk)
        if end > size:  # longer than announced (h11 does not let that happen): keep it all
            view.release()
            grown = bytearray(buf[:pos])
            grown.extend(chunk)
            async for more in chunks:
                grown.extend(more)
                if len(grown) > limit:
                    raise too_large(limit)
                pacer()
            return grown
        view[pos:end] = chunk
        pos = end
        if scanner is not None and on_item is not None:
            _hand_over(buf, scanner, pos, on_item, pacer)
        pacer()  # a loopback answer arrives as fast as this loop runs: let the GUI thread in
    view.release()
    if pos < size:  # shorter than announced (h11 raises first): what arrived
        return buf[:pos]
    return buf


async def _read_grown(
    resp: httpx.Response, limit: int, pacer: Pacer, on_item: Callable[[dict[str, Any]], None] | None
) -> bytearray:
    """The body in a buffer grown as it arrives (a small answer, one of unknown length, or
    where no mapping is made); ``on_item`` hears of each item as soon as it is in, parsed
    from a copy of its bytes: a slice of the buffer would keep it from growing."""
    grown = bytearray()
    scanner = ItemScanner(grown) if on_item is not None else None
    async for chunk in resp.aiter_bytes():
        grown.extend(chunk)
        if len(grown) > limit:
            raise too_large(limit)
        if scanner is not None and on_item is not None:
            _hand_over(grown, scanner, len(grown), on_item, pacer, copied=True)
        pacer()
    return grown


def _hand_over(
    buf: Body,
    scanner: ItemScanner,
    received: int,
    on_item: Callable[[dict[str, Any]], None],
    pacer: Pacer,
    *,
    copied: bool = False,
) -> None:
    """Tell ``on_item`` of each item completed within ``buf[:received]`` (parsed from a copy
    of its bytes, ``copied``)."""
    for start, stop in scanner.feed(received):
        try:
            part, first, last = (buf[start:stop], 0, None) if copied else (buf, start, stop)
            item = parse_body(part, first, last, pacer=pacer)
        except E.MalformedResponseError:
            scanner.broken = True  # left to the parse of the whole answer
            return
        if isinstance(item, dict):
            on_item(item)


def _announced_size(resp: httpx.Response) -> int | None:
    """The body's length in bytes when the answer announces it and it is worth a buffer of
    its own (at least ``_MAPPED_BODY_MIN``); None for compressed or unannounced bodies."""
    if resp.headers.get("Content-Encoding", "identity").lower() not in ("", "identity"):
        return None
    try:
        size = int(resp.headers.get("Content-Length", ""))
    except ValueError:
        return None
    return size if _MAPPED_BODY_MIN <= size <= _MAPPED_BODY_MAX else None


def _reserve(size: int) -> mmap.mmap | None:
    """A zero-filled mapping of ``size`` bytes, or None when the system will not reserve
    that much at once (the body then grows as it arrives, as a small one does).

    Where the system has them: private memory (a shared anonymous mapping is backed by
    tmpfs, each page costing more to fill and to give back), in huge pages (one fault per
    2 MiB instead of per 4 KiB): receiving 76 MB took 165-185 ms of wall time with a
    shared mapping, 125-140 ms with a private one in huge pages."""
    try:
        if hasattr(mmap, "MAP_PRIVATE") and hasattr(mmap, "MAP_ANONYMOUS"):
            buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        else:  # Windows: a page-file-backed mapping
            buf = mmap.mmap(-1, size)
    except (OSError, ValueError, OverflowError, MemoryError):
        return None
    if hasattr(mmap, "MADV_HUGEPAGE"):
        with contextlib.suppress(OSError):  # a hint: without it, the pages are the usual size
            buf.madvise(mmap.MADV_HUGEPAGE)
    return buf

"""PNG text chunks that Pillow would refuse a whole picture for, found and left out.

Pillow inflates a PNG's compressed texts (zTXt, and iTXt marked compressed) as it opens the
picture, or as it loads it when they follow the pixels, and refuses the whole picture when
one inflates past ``PngImagePlugin.MAX_TEXT_CHUNK`` or all of them past ``MAX_TEXT_MEMORY``
(:mod:`krea_desktop.pillow` sets the first to 8 MB). A text bomb, or a workflow of tens of
megabytes, then made a picture whose pixels are fine "damaged". :func:`png_without_refused_texts`
gives the picture without those texts, reading no more than it must and inflating within
Pillow's own limits; ``krea_desktop.pillow.open_image`` opens pictures through it.
"""

from __future__ import annotations

import io
import os
import re
import struct
from collections.abc import Iterator
from typing import IO

from PIL import PngImagePlugin

__all__ = ["png_without_refused_texts"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
# Chunks looked at in one PNG (200 MB of the 8 KB pieces libpng writes comes to 25,000; a
# million takes about a second to walk, and Pillow several to load); past them Pillow
# decides, as it would have.
_MOST_CHUNKS = 1 << 20
# Text chunks looked at in one PNG (each noted costs memory: a million tiny texts took
# 240 MB); past them Pillow decides.
_MOST_TEXTS = 1 << 16
# A chunk's type as Pillow takes one (four letters, digits or "_"): past a chunk of any
# other, Pillow reads no further, so neither does the walk.
_IS_TYPE = re.compile(rb"\w\w\w\w").fullmatch
_DEFLATE_MOST = 1032  # deflate makes 1 byte of 1,032 at best


class _Reader:
    """Bytes of a file at places counted from where it stood (put back there at the end);
    a chunk is read only where it must be, in one call where the system has one for it."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.start = f.tell()
        self.size = f.seek(0, os.SEEK_END) - self.start
        self.fd: int | None = None
        if hasattr(os, "pread") and not isinstance(f, io.BytesIO):
            try:
                self.fd = f.fileno()
            except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation included
                self.fd = None

    def at(self, pos: int, n: int) -> bytes:
        """``n`` bytes at ``pos``; fewer where the file ends sooner than it did when
        opened (rewritten meanwhile)."""
        if self.fd is not None:
            return os.pread(self.fd, n, self.start + pos)
        self.f.seek(self.start + pos)
        return self.f.read(n)

    def exactly(self, pos: int, n: int) -> bytes:
        """``n`` bytes at ``pos``, or :class:`_Changed` when the file no longer has them."""
        data = self.at(pos, n)
        if len(data) != n:
            raise _Changed
        return data


class _Changed(Exception):
    """The file is shorter than when it was opened: Pillow judges what it holds now."""


def png_without_refused_texts(png: bytes | IO[bytes]) -> bytes | None:
    """The PNG ``png`` (bytes, or a binary file from where it stands, put back there)
    without the text chunks Pillow would refuse, when it holds any; otherwise None (not a
    PNG, or one Pillow takes as it is).

    Chunk headers are read and the rest skipped. Only when a compressed text could inflate
    past the limit on its own, or the texts past the limit in all, are they inflated, as
    far as the limits and no further (all of them together within ``MAX_TEXT_MEMORY`` and
    ``MAX_TEXT_CHUNK`` more). Left out are: a text that inflates past ``MAX_TEXT_CHUNK``;
    one that does not inflate (Pillow reads it as empty, after inflating it all the same);
    one compressed in a way Pillow refuses; those the limit in all leaves no time to
    inflate; and then the largest, until the rest come within ``MAX_TEXT_MEMORY``. Every
    other chunk is kept as it was, its checksum with it."""
    f = io.BytesIO(png) if isinstance(png, (bytes, bytearray)) else png
    reader = _Reader(f)
    try:
        if reader.at(0, 8) != _PNG_SIGNATURE:
            return None
        texts = [(pos, length, kind) for pos, length, kind in _chunks(reader) if kind in _TEXT_CHUNKS]
        if len(texts) > _MOST_TEXTS or not _may_be_refused(reader, texts):
            return None
        left_out = _texts_refused(reader, texts)
        if not left_out:
            return None
        out = bytearray()
        kept_from = 0
        for pos, length in sorted(left_out):
            out += reader.exactly(kept_from, pos - kept_from)
            kept_from = pos + 12 + length
        out += reader.exactly(kept_from, reader.size - kept_from)
        return bytes(out)
    except _Changed:
        return None
    finally:
        f.seek(reader.start)


def _chunks(reader: _Reader) -> Iterator[tuple[int, int, bytes]]:
    """Each whole chunk's place, data length and type, up to IEND; a chunk cut short ends
    them (Pillow judges it)."""
    pos = 8
    texts = 0
    for _ in range(_MOST_CHUNKS):
        if pos + 12 > reader.size:
            return
        length, kind = struct.unpack(">I4s", reader.exactly(pos, 8))
        if pos + 12 + length > reader.size or not _IS_TYPE(kind):
            return
        yield pos, length, kind
        if kind in _TEXT_CHUNKS:
            texts += 1
            if texts > _MOST_TEXTS:  # the caller stops here
                return
        if kind == b"IEND":
            return
        pos += 12 + length


def _may_be_refused(reader: _Reader, texts: list[tuple[int, int, bytes]]) -> bool:
    """Whether ``texts`` could, at the most they might inflate to, be refused."""
    most_each, most_all = PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY
    bound = 0
    for pos, length, kind in texts:
        deflated = _deflated(reader, pos, length, kind, head_only=True)
        if deflated is _REFUSED:
            return True
        if deflated is None:
            bound += length
        elif length * _DEFLATE_MOST > most_each:
            return True
        else:
            bound += length * _DEFLATE_MOST
        if bound > most_all:
            return True
    return False


def _texts_refused(reader: _Reader, texts: list[tuple[int, int, bytes]]) -> set[tuple[int, int]]:
    """The (place, length) of each text chunk to leave out (see
    :func:`png_without_refused_texts`)."""
    most_each, most_all = PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY
    budget = most_all + most_each  # bytes inflated in all
    left_out: set[tuple[int, int]] = set()
    sizes: dict[tuple[int, int], int] = {}
    for pos, length, kind in texts:
        deflated = _deflated(reader, pos, length, kind)
        if deflated is None:
            sizes[pos, length] = length
            continue
        if deflated is _REFUSED or budget <= 0:
            left_out.add((pos, length))
            continue
        size, ended = _inflated(deflated, min(most_each, budget))
        budget -= size  # what it inflated to, whole, cut at the limit or up to the damage
        if ended != "whole":  # past the limit for one text or for all, or damaged
            left_out.add((pos, length))
        else:
            sizes[pos, length] = size
    total = sum(sizes.values())
    for chunk in sorted(sizes, key=sizes.__getitem__, reverse=True):
        if total <= most_all:
            break
        left_out.add(chunk)
        total -= sizes[chunk]
    return left_out


def _inflated(deflated: bytes, most: int) -> tuple[int, str]:
    """How many bytes ``deflated`` inflates to, at most ``most``, and how it ended:
    "whole", "past" the limit, or "damaged" (counting what the piece where it failed may
    have made). Fed a piece at a time, so that a text damaged from its first bytes costs
    what it made, not the most the whole of it might have made."""
    import zlib

    inflating = zlib.decompressobj()
    made = 0
    view = memoryview(deflated)
    piece: bytes | memoryview = b""
    try:
        for start in range(0, len(view), _PIECE):
            piece = view[start : start + _PIECE]
            while piece:
                if made >= most:
                    return made, "past"
                made += len(inflating.decompress(piece, most - made))
                piece = inflating.unconsumed_tail
    except zlib.error:
        return made + min(len(piece) * _DEFLATE_MOST, most - made), "damaged"
    return made, "whole"


_PIECE = 1 << 10  # deflated bytes fed at a time (up to 1 MB of text)
_REFUSED = b"\0refused"  # a compression Pillow refuses the whole picture for


def _deflated(reader: _Reader, pos: int, length: int, kind: bytes, head_only: bool = False) -> bytes | None:
    """The deflated text of a zTXt chunk, or of an iTXt chunk marked compressed with
    deflate; None for a text Pillow does not inflate; :data:`_REFUSED` for a zTXt chunk
    compressed otherwise. ``head_only``: whether it is one of these is all that is asked
    (the chunk's first bytes are read, and what is returned is not the text)."""
    if kind == b"tEXt":
        return None
    # The keyword (1 to 79 bytes by the standard, any length as Pillow reads it), NUL,
    # then zTXt's method, or iTXt's flag and method.
    body = reader.at(pos + 8, min(length, 82) if head_only else length)
    if len(body) < length and not 0 <= body.find(b"\0") < len(body) - 2:
        body = reader.at(pos + 8, length)  # a longer keyword: the chunk as it is
    _keyword, _, rest = body.partition(b"\0")
    if kind == b"zTXt":
        return rest[1:] if rest[:1] in (b"", b"\0") else _REFUSED
    if len(rest) < 2 or rest[0] == 0 or rest[1] != 0:
        return None  # not compressed, or by a method Pillow leaves as it is
    _language, _, rest = rest[2:].partition(b"\0")
    _translated, _, text = rest.partition(b"\0")
    return text

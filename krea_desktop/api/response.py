"""Reading the service's answers: envelopes, errors and output images.

Answers can be tens of megabytes of JSON, nearly all of it base64 image data. Parsing
that with ``json.loads`` holds the GIL for hundreds of milliseconds and copies every
image string. :func:`parse_body` therefore lifts the large strings out with
``bytes.find`` (fast, memchr-based) before parsing the small remainder; :class:`ItemScanner`
finds each finished item of an answer while the answer is still arriving.

Where a GUI thread shares the process, the long loops here take a ``pacer``
(:func:`~krea_desktop.api.pacing.pace`, the default of the module's functions), which
hands the GIL to the GUI thread every few milliseconds, and large base64 is decoded in a
helper process or in slices; the client passes :func:`no_pace` and decodes in one call
when nothing needs the GIL back quickly (the command line, library users).
"""

from __future__ import annotations

import base64
import binascii
import json
import mmap
import os
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from krea_desktop.api import b64helper
from krea_desktop.api import errors as E
from krea_desktop.api.pacing import pace
from krea_desktop.wording import within

Pacer = Callable[[], None]


def no_pace() -> None:
    """The pacer of a process with no GUI thread to let in: nothing."""


# An answer as received: a large one fills a page-backed buffer (see ``body.read_body``).
Body = bytes | bytearray | mmap.mmap

# Keys whose string values may be megabytes long.
_LARGE_KEYS = (b'"imageBase64Data"', b'"imageDataURI"')
# A large string's placeholder: this, a number drawn for each answer (so that no string of
# the answer itself can pass for one), and the string's place in the answer.
_PLACEHOLDER_PREFIX = "\x00blob:"
# Base64 is decoded this many characters at a time (a multiple of 4): about 1 ms each.
_B64_SLICE = 256 * 1024


class Blob:
    """A large string value, kept as a zero-copy slice of the answer's bytes."""

    __slots__ = ("buf", "end", "start")

    def __init__(self, buf: Body, start: int, end: int) -> None:
        self.buf, self.start, self.end = buf, start, end

    def __len__(self) -> int:
        return self.end - self.start

    def raw(self, pacer: Pacer = pace) -> bytes | memoryview:
        view = memoryview(self.buf)[self.start : self.end]
        if _find(self.buf, b"\\", self.start, self.end, pacer) >= 0:  # JSON escapes such as "\/": rare, slow path
            try:
                return str(json.loads(b'"' + bytes(view) + b'"')).encode("ascii", "replace")
            except ValueError as exc:  # an escape JSON has not
                raise E.MalformedResponseError("The service sent image data that is not valid base64.") from exc
        return view


# Searches scan at most this much per call, so no single call holds the GIL for long
# (about 0.1 ms); between calls another thread, the GUI's, can take its turn.
_FIND_WINDOW = 1 << 20


def _find(raw: Body, needle: bytes, start: int, end: int | None = None, pacer: Pacer = pace) -> int:
    end = len(raw) if end is None else end
    if pacer is no_pace:
        return raw.find(needle, start, end)
    step = _FIND_WINDOW
    overlap = len(needle) - 1
    while start < end:
        hit = raw.find(needle, start, min(end, start + step + overlap))
        if hit >= 0:
            return hit
        start += step
        pacer()
    return -1


def _lift_large_strings(
    body: Body | memoryview, first: int, last: int | None, pacer: Pacer, prefix: str
) -> tuple[bytes, list[Blob]]:
    """The JSON of ``body[first:last]`` with each large string value replaced by a
    placeholder (``prefix`` and its number), and those strings as :class:`Blob` slices
    of ``body``."""
    raw = body if isinstance(body, (bytes, bytearray, mmap.mmap)) else bytes(body)
    mv = memoryview(raw)
    pieces: list[bytes] = []
    blobs: list[Blob] = []
    pos = first
    n = len(raw) if last is None else last
    # The next occurrence of each key at or after ``pos`` (-1: none left), so that each
    # stretch of the answer is searched once per key, not once per image.
    next_hit = {k: _find(raw, k, pos, n, pacer) for k in _LARGE_KEYS}
    while True:
        for key, at in next_hit.items():
            if 0 <= at < pos:
                next_hit[key] = _find(raw, key, pos, n, pacer)
        hits = [i for i in next_hit.values() if i >= 0]
        if not hits:
            break
        key_at = min(hits)
        key_end = raw.find(b'"', key_at + 1, n) + 1
        # Only a real object key counts: preceded by "{" or "," and followed by ":".
        b = key_at - 1
        while b >= 0 and raw[b] in b" \t\r\n":
            b -= 1
        q = key_end
        while q < n and raw[q] in b" \t\r\n":
            q += 1
        is_key = b >= 0 and raw[b] in b"{," and q < n and raw[q] == 0x3A
        if is_key:
            q += 1
            while q < n and raw[q] in b" \t\r\n":
                q += 1
        if not is_key or q >= n or raw[q] != 0x22:  # not a string value: leave it to json
            pieces.append(bytes(mv[pos:key_end]))
            pos = key_end
            continue
        start = q + 1
        end = start
        while True:
            end = _find(raw, b'"', end, n, pacer)
            if end < 0:
                raise E.MalformedResponseError(
                    "The service sent an answer that is not valid JSON (it was cut off mid-image)."
                )
            # a quote preceded by an odd number of backslashes is escaped
            bs = 0
            back = end - 1
            while back >= start and raw[back] == 0x5C:
                bs += 1
                back -= 1
            if bs % 2 == 0:
                break
            end += 1
        pieces.append(bytes(mv[pos:start]))
        pieces.append(f"{prefix}{len(blobs)}".encode().replace(b"\x00", b"\\u0000"))
        blobs.append(Blob(raw, start, end))
        pos = end
    pieces.append(bytes(mv[pos:n]))
    return b"".join(pieces), blobs


def _restore(obj: Any, blobs: list[Blob], prefix: str) -> Any:
    if isinstance(obj, str) and obj.startswith(prefix):
        number = obj[len(prefix) :]
        return blobs[int(number)] if number.isdigit() and int(number) < len(blobs) else obj
    if isinstance(obj, list):
        return [_restore(x, blobs, prefix) for x in obj]
    if isinstance(obj, dict):
        return {k: _restore(v, blobs, prefix) for k, v in obj.items()}
    return obj


def parse_body(body: Body | memoryview, first: int = 0, last: int | None = None, *, pacer: Pacer = pace) -> Any:
    """Parse a JSON answer (or the JSON value in ``body[first:last]``); large image strings
    come back as :class:`Blob` objects."""
    if not len(body) or (last is not None and last <= first):
        return None
    prefix = f"{_PLACEHOLDER_PREFIX}{os.urandom(8).hex()}:"
    try:
        skeleton, blobs = _lift_large_strings(body, first, last, pacer, prefix)
        parsed = json.loads(skeleton)
        return _restore(parsed, blobs, prefix) if blobs else parsed
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nested beyond reason
        raise E.MalformedResponseError("The service sent an answer that is not valid JSON.") from exc


class ItemScanner:
    """Finds the items of an answer's ``data`` array while the answer is still arriving.

    :meth:`feed` is given how much of ``buf`` has arrived; it walks the new bytes and
    returns the span of each object of the top-level ``{"data": [...]}`` whose closing
    brace is now in, so that each finished image can be decoded and handed over before
    the rest of the answer (tens of megabytes, when every finished image comes again as
    base64) is received. Strings are skipped with ``bytes.find``: an image of megabytes
    costs a few searches, and each byte is looked at once. An answer of another shape, or
    one it cannot follow, stops it (:attr:`broken`); the whole answer is parsed once it is
    in either way, so this only ever hands items over early.

    Everything outside strings is looked at byte by byte, in Python: an answer's structure,
    a few kilobytes. One made of little else (megabytes of brackets or digits, which only a
    hostile service sends) would hold the loop for seconds, so past :attr:`MOST_STEPPED`
    such bytes, or :attr:`MOST_DEPTH` open brackets, the scanner stops as for any answer it
    cannot follow.
    """

    _QUOTE, _BACKSLASH, _COLON, _COMMA = 0x22, 0x5C, 0x3A, 0x2C
    _OPEN_OBJECT, _CLOSE_OBJECT, _OPEN_ARRAY, _CLOSE_ARRAY = 0x7B, 0x7D, 0x5B, 0x5D
    MOST_STEPPED = 1 << 18  # a 20-image answer's structure is about 10 KB
    MOST_DEPTH = 32  # an item is three deep, its values a few more

    def __init__(self, buf: Body) -> None:
        self.buf = buf
        self.pos = 0  # the next byte to look at
        self._stack: list[int] = []  # the open brackets
        self._string_from = -1  # where the string being read starts, or -1
        self._last_string: bytes | None = None  # the top-level object's last short string
        self._key: bytes | None = None  # the top-level key whose value is being read
        self._in_data = False
        self._item_from = -1
        self._stepped = 0  # bytes looked at one by one
        self.broken = False

    def feed(self, end: int) -> list[tuple[int, int]]:
        """The spans ``(start, stop)`` of the items completed within ``buf[:end]``."""
        spans: list[tuple[int, int]] = []
        buf, stack, pos, stepped = self.buf, self._stack, self.pos, self._stepped
        while pos < end and not self.broken:
            if self._string_from >= 0:
                quote = buf.find(b'"', pos, end)
                if quote < 0:
                    pos = end
                    break
                back = quote - 1
                while back >= self._string_from and buf[back] == self._BACKSLASH:
                    back -= 1
                pos = quote + 1
                if (quote - 1 - back) % 2:  # an escaped quote
                    continue
                if len(stack) == 1 and quote - self._string_from <= 64:
                    self._last_string = bytes(buf[self._string_from : quote])
                self._string_from = -1
                continue
            c = buf[pos]
            if c == self._QUOTE:
                self._string_from = pos + 1
            elif c in (self._OPEN_OBJECT, self._OPEN_ARRAY):
                if not stack and c != self._OPEN_OBJECT:
                    self.broken = True
                    break
                if len(stack) == 1 and c == self._OPEN_ARRAY and self._key == b"data":
                    self._in_data = True
                elif len(stack) == 2 and c == self._OPEN_OBJECT and self._in_data:
                    self._item_from = pos
                stack.append(c)
                if len(stack) > self.MOST_DEPTH:
                    self.broken = True
                    break
            elif c in (self._CLOSE_OBJECT, self._CLOSE_ARRAY):
                if not stack or (stack.pop() == self._OPEN_OBJECT) != (c == self._CLOSE_OBJECT):
                    self.broken = True
                    break
                if len(stack) == 2 and self._in_data and self._item_from >= 0:
                    spans.append((self._item_from, pos + 1))
                    self._item_from = -1
                elif len(stack) == 1 and c == self._CLOSE_ARRAY:
                    self._in_data = False
            elif len(stack) == 1 and c == self._COLON:
                self._key = self._last_string
            elif len(stack) == 1 and c == self._COMMA:
                self._key = None
            pos += 1
            stepped += 1
            if stepped > self.MOST_STEPPED:
                self.broken = True
                break
        self._stepped = stepped
        self.pos = pos
        return spans


@dataclass
class Envelope:
    data: list[dict[str, Any]]
    errors: list[dict[str, Any]]


def parse_envelope(obj: Any) -> Envelope:
    """Accept every envelope shape the protocol page lists."""
    if obj is None:
        return Envelope([], [])
    if isinstance(obj, list):  # a bare list of error objects (or, leniently, of data items)
        bare_errs = [x for x in obj if isinstance(x, dict) and ("code" in x or "error" in x) and "imageUUID" not in x]
        return Envelope([x for x in obj if isinstance(x, dict) and x not in bare_errs], bare_errs)
    if not isinstance(obj, dict):
        raise E.MalformedResponseError("The service sent an answer of an unexpected shape.")
    data: list[dict[str, Any]] = []
    errs: list[dict[str, Any]] = []
    raw_data = obj.get("data")
    if isinstance(raw_data, dict):
        data = [raw_data]
    elif isinstance(raw_data, list):
        data = [x for x in raw_data if isinstance(x, dict)]
    elif raw_data is not None:
        raise E.MalformedResponseError("The service sent an answer whose data is not a list.")
    for key in ("errors", "error"):
        raw = obj.get(key)
        if isinstance(raw, dict):
            errs.append(raw)
        elif isinstance(raw, list):
            errs.extend(x for x in raw if isinstance(x, dict))
        elif isinstance(raw, str):
            errs.append({"message": raw})
    if not data and not errs and ("code" in obj or "message" in obj) and "imageUUID" not in obj:
        # A single bare error object. It names its taskType and taskUUID like any error
        # object does; what it lacks is an image.
        errs.append(obj)
    return Envelope(data, errs)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            import time

            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def error_from(item: dict[str, Any] | None, status: int | None = None, retry_after: str | None = None) -> E.KreaError:
    """Turn an error object (and/or an HTTP status) into a typed error with a one-sentence message."""
    item = item or {}
    code = str(item.get("code") or "")
    param = item.get("parameter")
    param = str(param) if param else None
    service_msg = _service_words(item.get("message"))
    low = code.lower()

    def sentence(text: str) -> str:
        text = " ".join(text.split())
        if len(text) > 300:
            text = text[:297] + "..."
        return text if text.endswith((".", "!", "?")) else text + "."

    # The code says more than the status: look at it first, the status second.
    if low in ("invalidapikey", "missingapikey") or "apikey" in low or (not low and status == 401):
        return E.AuthenticationError(
            E.NO_KEY_SENT if low == "missingapikey" else E.KEY_REFUSED, code=code or "invalidApiKey"
        )
    if low in ("insufficientcredits", "paymentrequired"):
        return _credits(code)
    if low == "conflicttaskuuid":
        return E.TaskError("The service already has a task with this ID.", code=code, parameter=param)
    if low == "taskfailedornotfound":
        return E.TaskError("The service no longer knows this task.", code=code)
    if low in ("nsfwcontentdetected", "contentpolicyviolation"):
        return E.ContentError("The service refused the request under its content policy.", code=code)
    if low == "modelnotfound":
        return _no_model(code)
    if low in ("timeoutprovider", "timeout"):
        return E.ServiceTimeoutError("The service took too long to produce the images.", code=code)
    if low == "inferenceerror":
        return E.TaskError("The service failed while generating the images; try again.", code=code)
    if low in ("ratelimitexceeded",):
        return _busy(code, retry_after)
    if low.startswith(("invalid", "missing", "unknown")) or (not low and (status == 400 or param)):
        where = f" ({param})" if param else ""
        detail = service_msg or "a parameter is not accepted"
        return E.ValidationError(
            sentence(f"The service refused a parameter{where}: {detail.rstrip('.')}"),
            code=code or "invalidParameter",
            parameter=param,
        )
    if status == 401:
        return E.AuthenticationError(E.KEY_REFUSED, code=code)
    if status == 402:
        return _credits(code)
    if status == 403:
        return E.AuthenticationError("This API key is not allowed to use Krea 2 Medium.", code=code or "forbidden")
    if status == 404:  # no modelNotFound (above): the address itself has nothing there
        return E.TaskError(
            "The service address answered that it has nothing there (HTTP 404); check the address.",
            code=code or "notFound",
        )
    if status in (429, 503):
        return _busy(code or str(status), retry_after)
    if status == 504:
        return E.ServiceTimeoutError("The service took too long to produce the images.", code=code or "timeout")
    if status is not None and status >= 500:
        return E.ServiceBusyError(
            f"The service had an internal error (HTTP {status}); try again shortly.",
            code=code or str(status),
            retry_after=_retry_after(retry_after),
        )
    if service_msg:
        return E.TaskError(sentence(f"The service reported an error: {service_msg.rstrip('.')}"), code=code or None)
    return E.TaskError("The service reported an unexplained error.", code=code or None)


# A web address, with "see" before it and parentheses around it, not the punctuation after it.
_URL = re.compile(r"\(\s*(?:see\s+)?https?://[^\s)]*\s*\)|(?:\bsee\s+)?\bhttps?://\S*?(?=[.,;:!?)]*(?:\s|$))", re.I)
_LEFT_BEHIND = (
    (re.compile(r"\s+([.,;:!?])"), r"\1"),
    (re.compile(r"[,;:]+\."), "."),
    (re.compile(r"\.(?:\s*\.)+"), "."),
)
SERVICE_WORDS_MAX = 240


def _service_words(message: Any) -> str:
    """The service's own words, to quote inside one sentence of the app's: without web
    addresses, its sentences joined by semicolons, cut at a word past
    :data:`SERVICE_WORDS_MAX` characters, with no full stop. Anything but text says nothing."""
    if not isinstance(message, str):
        return ""
    text = " ".join(_URL.sub("", message).split())
    for pattern, replacement in _LEFT_BEHIND:
        text = pattern.sub(replacement, text)
    sentences: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        # A sentence ends at . ! or ? before a capital, outside parentheses ("e.g. 1024",
        # "(max. 2000)" go on).
        if ch in ".!?" and depth <= 0 and text[i + 1 : i + 2] == " " and text[i + 2 : i + 3].isupper():
            sentences.append(text[start : i + 1])
            start = i + 2
    sentences.append(text[start:])
    parts = [p.strip().rstrip(".!?").strip() for p in sentences]
    parts = [p for p in parts if p]
    text = "; ".join(parts[:1] + [within(p) for p in parts[1:]])
    if len(text) > SERVICE_WORDS_MAX:
        text = text[:SERVICE_WORDS_MAX].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return text


def _credits(code: str) -> E.KreaError:
    return E.InsufficientCreditsError(
        "Your Runware account is out of credits; top it up and try again.", code=code or "insufficientCredits"
    )


def _no_model(code: str) -> E.KreaError:
    return E.TaskError("The service does not offer Krea 2 Medium at this endpoint.", code=code or "modelNotFound")


def _busy(code: str, retry_after: str | None) -> E.KreaError:
    wait = _retry_after(retry_after)
    if wait is not None and wait >= 90:  # not "a moment": what it asked for
        said = f"The service is busy and asks to be tried again in {_about(wait)}."
    else:
        said = "The service is busy right now; try again in a moment."
    return E.ServiceBusyError(said, code=code, retry_after=wait)


def _about(seconds: float) -> str:
    """A wait in words, as long as it is: "about 5 minutes", "about 28 hours"."""
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"about {minutes} minutes"
    hours = round(seconds / 3600)
    if hours < 48:
        return f"about {hours} hours"
    return f"about {round(seconds / 86400)} days"


# --- Images ------------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A JPEG's start-of-frame markers (the frame's size follows them); C4, C8 and CC are not.
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_OTHER_FORMATS = ((b"GIF8", "GIF"), (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))


def decode_base64(value: str | Blob | bytes | memoryview, *, helper: bool = True, pacer: Pacer = pace) -> bytes:
    """Strict base64 decoding. By default (for a process with a GUI thread), large payloads
    in the helper process (see ``b64helper``), else here in slices that each hold the GIL
    for about half a millisecond; with ``helper=False`` and :func:`no_pace`, here in one
    call, the fastest way."""
    raw: bytes | memoryview
    try:
        if isinstance(value, Blob):
            raw = value.raw(pacer)
        elif isinstance(value, str):
            raw = value.encode("ascii", "strict")
        else:
            raw = value
    except UnicodeEncodeError as exc:
        raise E.MalformedResponseError("The service sent image data that is not valid base64.") from exc
    n = len(raw)
    if not helper and pacer is no_pace:
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise E.MalformedResponseError("The service sent image data that is not valid base64.") from exc
    if helper and n >= b64helper.MIN_SIZE:
        try:
            decoded = b64helper.shared().decode(raw)
        except b64helper.InvalidBase64 as exc:
            raise E.MalformedResponseError("The service sent image data that is not valid base64.") from exc
        if decoded is not None:
            return decoded
    try:
        if n <= _B64_SLICE:
            return base64.b64decode(raw, validate=True)
        if n % 4:
            raise binascii.Error("length is not a multiple of 4")
        # Each slice is checked strictly on its own; padding may only end the whole text,
        # so a slice other than the last must not end in "=" (as a single decode refuses).
        for end in range(_B64_SLICE, n, _B64_SLICE):
            if b"=" in bytes(raw[end - 2 : end]):
                raise binascii.Error("padding in the middle")
        parts = []
        for i in range(0, n, _B64_SLICE):
            parts.append(base64.b64decode(raw[i : i + _B64_SLICE], validate=True))
            pacer()
        return b"".join(parts)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise E.MalformedResponseError("The service sent image data that is not valid base64.") from exc


def decode_data_uri(value: str | Blob, *, helper: bool = True, pacer: Pacer = pace) -> bytes:
    raw = value.raw(pacer) if isinstance(value, Blob) else value.encode("ascii", "replace")
    head_end = bytes(raw[:200]).find(b",")
    head = bytes(raw[:head_end]) if head_end >= 0 else b""
    if head_end < 0 or not head.startswith(b"data:") or not head.endswith(b";base64"):
        raise E.MalformedResponseError("The service sent an image data URI that cannot be read.")
    return decode_base64(raw[head_end + 1 :], helper=helper, pacer=pacer)


@dataclass(frozen=True)
class VerifiedImage:
    format: str
    width: int
    height: int


def verify_image(data: bytes, width: int | None = None, height: int | None = None) -> VerifiedImage:
    """Check that ``data`` is a complete PNG, JPEG or WEBP image of the requested size.

    Completeness is checked from the container's structure rather than by decoding any
    pixel (a full decode of a 1024² PNG costs about 11 ms): every PNG chunk's CRC up to
    IEND, a JPEG's end-of-image marker, a WEBP's RIFF length; the size comes from the
    header (PNG IHDR, JPEG start of frame, WEBP VP8/VP8L/VP8X). A damaged transfer fails
    these checks; the pixels themselves are decoded later, for the thumbnail. No imaging
    library is needed, so the client does without one unless it prepares references.
    """
    if not data:
        raise E.MalformedResponseError("The service sent an empty image.")
    view = memoryview(data).cast("B")
    try:
        if data[:8] == _PNG_SIGNATURE:
            fmt, size = "PNG", _png_size(view)
        elif data[:3] == b"\xff\xd8\xff":
            fmt, size = "JPG", _jpeg_size(view)
        elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            fmt, size = "WEBP", _webp_size(view)
        else:
            name = next((n for magic, n in _OTHER_FORMATS if data.startswith(magic)), "not PNG, JPEG or WEBP")
            raise E.MalformedResponseError(f"The service sent an image in an unexpected format ({name}).")
        if width is not None and height is not None and size != (width, height):
            raise E.MalformedResponseError(
                f"The service sent an image of {size[0]}×{size[1]} instead of {width}×{height}."
            )
        if fmt == "PNG":
            _check_png_chunks(view)
        elif fmt == "JPG":
            if not data.rstrip(b"\0\r\n ").endswith(b"\xff\xd9"):
                raise _Damaged
        elif int.from_bytes(data[4:8], "little") + 8 not in (len(data), len(data) - 1):
            raise _Damaged  # WEBP: the RIFF header gives the length
    except (_Damaged, IndexError, ValueError) as exc:
        raise E.MalformedResponseError("The service sent an image that is damaged or incomplete.") from exc
    if size[0] < 1 or size[1] < 1:
        raise E.MalformedResponseError("The service sent an image that is damaged or incomplete.")
    return VerifiedImage(fmt, size[0], size[1])


class _Damaged(Exception):
    """An image's structure does not hold together."""


def _png_size(view: memoryview) -> tuple[int, int]:
    if len(view) < 33 or bytes(view[12:16]) != b"IHDR" or int.from_bytes(view[8:12], "big") != 13:
        raise _Damaged
    return int.from_bytes(view[16:20], "big"), int.from_bytes(view[20:24], "big")


def _check_png_chunks(view: memoryview) -> None:
    """Every chunk whole and its CRC right, up to IEND, and nothing after it but padding."""
    n = len(view)
    pos = 8
    while True:
        if pos + 12 > n:
            raise _Damaged
        length = int.from_bytes(view[pos : pos + 4], "big")
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > n:
            raise _Damaged
        if zlib.crc32(view[pos + 4 : pos + 8 + length]) != int.from_bytes(view[pos + 8 + length : end], "big"):
            raise _Damaged
        if bytes(view[pos + 4 : pos + 8]) == b"IEND":
            break
        pos = end
    if any(view[end:]):  # only zero bytes may follow
        raise _Damaged


def _jpeg_size(view: memoryview) -> tuple[int, int]:
    """The size in the first start-of-frame segment."""
    n = len(view)
    pos = 2
    while pos + 4 <= n:
        if view[pos] != 0xFF:
            raise _Damaged
        marker = view[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # no length follows
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame before them
            raise _Damaged
        length = int.from_bytes(view[pos + 2 : pos + 4], "big")
        if marker in _JPEG_FRAMES:
            if length < 8 or pos + 9 > n:
                raise _Damaged
            return int.from_bytes(view[pos + 7 : pos + 9], "big"), int.from_bytes(view[pos + 5 : pos + 7], "big")
        pos += 2 + length
    raise _Damaged


def _webp_size(view: memoryview) -> tuple[int, int]:
    chunk = bytes(view[12:16])
    if chunk == b"VP8 ":  # lossy: a key frame's start code, then 14-bit sizes
        if bytes(view[23:26]) != b"\x9d\x01\x2a":
            raise _Damaged
        return (int.from_bytes(view[26:28], "little") & 0x3FFF, int.from_bytes(view[28:30], "little") & 0x3FFF)
    if chunk == b"VP8L":  # lossless: a signature byte, then 14-bit sizes less one
        if view[20] != 0x2F:
            raise _Damaged
        bits = int.from_bytes(view[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: 24-bit canvas sizes less one
        return int.from_bytes(view[24:27], "little") + 1, int.from_bytes(view[27:30], "little") + 1
    raise _Damaged


def is_finished_item(item: dict[str, Any]) -> bool:
    status = item.get("status")
    has_output = any(k in item for k in ("imageBase64Data", "imageDataURI", "imageURL"))
    return bool(item.get("imageUUID")) and has_output and status in (None, "success")

"""Large base64 payloads are decoded in a helper process; when it cannot help, the
payload is decoded in the app and nothing is lost."""

from __future__ import annotations

import base64
import io
import os
import sys
import threading
import time

import pytest

from krea_desktop.api import b64helper
from krea_desktop.api import errors as E
from krea_desktop.api.response import decode_base64

PAYLOAD = os.urandom(b64helper.MIN_SIZE)  # its base64 is above the helper's threshold
TEXT = base64.b64encode(PAYLOAD)


@pytest.fixture
def helper() -> b64helper.Base64Helper:
    h = b64helper.Base64Helper()
    yield h
    h.close()


def test_the_helper_decodes_exactly_what_base64_does(helper: b64helper.Base64Helper) -> None:
    assert helper.decode(TEXT) == PAYLOAD
    assert helper.decode(memoryview(bytearray(b"xx" + TEXT))[2:]) == PAYLOAD  # a slice of an answer
    assert helper.decoded == 2
    assert helper.pid is not None and helper.pid != os.getpid()


def test_invalid_text_is_refused_as_strictly_as_in_the_app(helper: b64helper.Base64Helper) -> None:
    for bad in (TEXT[:-4] + b"!!!!", TEXT[:-1], b"\n".join([TEXT[:4000], TEXT[4000:]])):
        with pytest.raises(b64helper.InvalidBase64):
            helper.decode(bad)
    assert helper.decode(TEXT) == PAYLOAD  # the helper keeps serving after a refusal
    assert helper.failures == 0


def test_large_answers_go_through_the_shared_helper_and_bad_ones_say_so_in_one_sentence() -> None:
    shared = b64helper.shared()
    before = shared.decoded
    assert decode_base64(TEXT) == PAYLOAD
    assert decode_base64(TEXT.decode("ascii")) == PAYLOAD
    assert shared.decoded == before + 2
    with pytest.raises(E.MalformedResponseError, match="not valid base64"):
        decode_base64(TEXT[:-4] + b"@@@@")
    small = os.urandom(1000)
    assert decode_base64(base64.b64encode(small)) == small  # small ones are decoded here
    assert shared.decoded == before + 2


def test_a_helper_that_dies_is_replaced_and_the_payload_is_not_lost(helper: b64helper.Base64Helper) -> None:
    assert helper.decode(TEXT) == PAYLOAD
    pid = helper.pid
    assert pid is not None
    helper._proc.kill()  # type: ignore[union-attr]
    helper._proc.wait()  # type: ignore[union-attr]
    # The dead helper is noticed before writing to it, and a new one answers.
    assert helper.decode(TEXT) == PAYLOAD
    assert helper.pid not in (None, pid)


def test_a_helper_that_cannot_start_leaves_the_decoding_to_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = b64helper.Base64Helper(command=[os.path.join(os.sep, "nonexistent", "python")])
    assert broken.decode(TEXT) is None
    assert broken.failures == 1
    for _ in range(b64helper.MAX_FAILURES):
        broken.decode(TEXT)
    assert not broken.usable and broken.failures == b64helper.MAX_FAILURES  # it stops trying
    monkeypatch.setattr(b64helper, "_shared", broken)
    assert decode_base64(TEXT) == PAYLOAD  # decoded in the app instead


def test_a_helper_that_answers_short_is_dropped_and_the_payload_decoded_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A "helper" that says hello, reads the request and exits without answering.
    script = "import sys; sys.stdout.buffer.write(b'KREA-B64'); sys.stdout.flush(); sys.stdin.buffer.read(8)"
    mute = b64helper.Base64Helper(command=[sys.executable, "-c", script])
    assert mute.decode(TEXT) is None
    assert mute.failures == 1
    monkeypatch.setattr(b64helper, "_shared", mute)
    assert decode_base64(TEXT) == PAYLOAD


def test_the_protocol_end_to_end_in_process() -> None:
    requests = io.BytesIO()
    for text in (TEXT, b"not base64!", base64.b64encode(b"hi")):
        requests.write(b64helper._HEADER.pack(len(text)) + text)
    requests.seek(0)
    answers = io.BytesIO()
    b64helper.serve(requests, answers)  # returns when its input ends
    answers.seek(0)
    assert answers.read(len(b64helper.HELLO)) == b64helper.HELLO
    size = b64helper._HEADER.unpack(answers.read(8))[0]
    assert answers.read(size) == PAYLOAD
    assert b64helper._HEADER.unpack(answers.read(8))[0] == b64helper.INVALID
    size = b64helper._HEADER.unpack(answers.read(8))[0]
    assert answers.read(size) == b"hi"
    assert answers.read() == b""


HANGS_AFTER_HELLO = "import sys, time; sys.stdout.buffer.write(b'KREA-B64'); sys.stdout.flush(); time.sleep(600)"
NEVER_SAYS_HELLO = "import time; time.sleep(600)"


@pytest.mark.parametrize("script", [HANGS_AFTER_HELLO, NEVER_SAYS_HELLO], ids=["hangs", "silent"])
def test_a_helper_that_does_not_answer_is_killed_and_the_app_decodes(
    script: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(b64helper, "START_TIMEOUT", 0.5)
    stuck = b64helper.Base64Helper(command=[sys.executable, "-c", script])
    started = time.monotonic()
    assert stuck.decode(TEXT) is None
    assert time.monotonic() - started < 5
    assert stuck.failures == 1 and stuck.pid is None  # killed and reaped
    monkeypatch.setattr(b64helper, "_shared", stuck)
    assert decode_base64(TEXT) == PAYLOAD


def test_closing_frees_a_caller_stuck_on_the_helper(monkeypatch: pytest.MonkeyPatch) -> None:
    stuck = b64helper.Base64Helper(command=[sys.executable, "-c", HANGS_AFTER_HELLO])
    result: list[bytes | None] = []
    caller = threading.Thread(target=lambda: result.append(stuck.decode(TEXT)))
    caller.start()
    time.sleep(1.0)  # the caller is now waiting for an answer that will not come
    assert caller.is_alive()
    stuck.close()
    caller.join(5)
    assert not caller.is_alive() and result == [None]


def test_an_exchange_interrupted_half_way_does_not_poison_the_next(
    helper: b64helper.Base64Helper, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert helper.decode(TEXT) == PAYLOAD
    real = b64helper._read_exactly
    calls = []

    def interrupted(stream: object, n: int) -> bytes:
        calls.append(n)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real(stream, n)  # type: ignore[arg-type]

    monkeypatch.setattr(b64helper, "_read_exactly", interrupted)
    with pytest.raises(KeyboardInterrupt):
        helper.decode(TEXT)  # the request was written, its answer never read
    assert helper.pid is None  # that helper is dropped, answer and all
    other = os.urandom(300_000)
    assert helper.decode(base64.b64encode(other)) == other  # a fresh one, in step


def test_wide_memoryviews_are_sent_as_bytes(helper: b64helper.Base64Helper) -> None:
    wide = memoryview(bytearray(TEXT)).cast("H")  # len() counts items, not bytes
    assert helper.decode(wide) == PAYLOAD
    with pytest.raises(TypeError):
        helper.decode(TEXT.decode("ascii"))  # type: ignore[arg-type]
    assert helper.decode(TEXT) == PAYLOAD


def test_the_bundle_flag_runs_the_helper() -> None:
    bundled = b64helper.Base64Helper(command=[sys.executable, "-m", "krea_desktop", b64helper.HELPER_FLAG])
    try:
        assert bundled.decode(TEXT) == PAYLOAD
    finally:
        bundled.close()


SLICE = 256 * 1024  # response._B64_SLICE


def _bad_inputs() -> dict[str, bytes]:
    body = bytearray(base64.b64encode(os.urandom(SLICE * 3 // 4 * 2)))  # exactly two slices
    padding_at_the_seam = bytearray(body)
    padding_at_the_seam[SLICE - 2 : SLICE] = b"=="
    padding_inside = bytearray(body)
    padding_inside[1000:1002] = b"=="
    newline = bytes(body[:5000]) + b"\n" + bytes(body[5000:-1])
    urlsafe = bytes(body).replace(b"+", b"-").replace(b"/", b"_")
    return {
        "padding at a slice seam": bytes(padding_at_the_seam),
        "padding inside": bytes(padding_inside),
        "newline": newline,
        "length not a multiple of 4": bytes(body[:-1]),
        "url-safe alphabet": urlsafe if urlsafe != bytes(body) else bytes(body[:-4]) + b"-_-_",
        "trailing space": bytes(body[:-4]) + b"AAA ",
    }


@pytest.mark.parametrize("name", list(_bad_inputs()))
def test_the_helper_and_the_app_refuse_the_same_text(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = _bad_inputs()[name]
    with pytest.raises(E.MalformedResponseError):
        decode_base64(text)  # through the helper
    off = b64helper.Base64Helper()
    off.failures = b64helper.MAX_FAILURES
    monkeypatch.setattr(b64helper, "_shared", off)
    with pytest.raises(E.MalformedResponseError):
        decode_base64(text)  # in the app, in slices

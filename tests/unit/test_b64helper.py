"""Large base64 payloads are decoded in a helper process; when it cannot help, the
payload is decoded in the app and nothing is lost."""

from __future__ import annotations

import base64
import io
import os
import sys

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
    # A "helper" that reads the request and exits without answering.
    script = "import sys; sys.stdin.buffer.read(8); sys.exit(0)"
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
    size = b64helper._HEADER.unpack(answers.read(8))[0]
    assert answers.read(size) == PAYLOAD
    assert b64helper._HEADER.unpack(answers.read(8))[0] == b64helper.INVALID
    size = b64helper._HEADER.unpack(answers.read(8))[0]
    assert answers.read(size) == b"hi"
    assert answers.read() == b""

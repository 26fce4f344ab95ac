"""Answer parsing: envelopes of every documented shape, typed errors, image decoding."""

from __future__ import annotations

import base64
import contextlib
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from krea_desktop.api import errors as E
from krea_desktop.api.response import (
    Blob,
    decode_base64,
    decode_data_uri,
    error_from,
    parse_body,
    parse_envelope,
    verify_image,
)


def png(w: int = 8, h: int = 6, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), color).save(out, "PNG")
    return out.getvalue()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_parse_body_equals_json_loads_when_there_are_no_image_fields(value: object) -> None:
    body = json.dumps(value).encode()
    assert parse_body(body) == json.loads(body)


@given(st.binary(max_size=3000), st.sampled_from(["imageBase64Data", "imageDataURI"]), json_values)
def test_large_strings_are_lifted_out_and_restored_exactly(payload: bytes, key: str, other: object) -> None:
    text = base64.b64encode(payload).decode()
    if key == "imageDataURI":
        text = "data:image/png;base64," + text
    doc = {"data": [{"taskUUID": "t", key: text, "other": other, "note": f'"{key}": "decoy"'}]}
    for body in (json.dumps(doc).encode(), json.dumps(doc, indent=2).encode()):
        parsed = parse_body(body)
        item = parsed["data"][0]
        assert isinstance(item[key], Blob)
        assert bytes(item[key].raw()) == text.encode()
        assert item["other"] == other
        assert item["note"] == f'"{key}": "decoy"'


def test_escaped_slashes_in_base64_are_understood() -> None:
    data = bytes(range(256)) * 50
    text = base64.b64encode(data).decode().replace("/", "\\/")
    body = ('{"data":[{"imageBase64Data":"' + text + '"}]}').encode()
    assert decode_base64(parse_body(body)["data"][0]["imageBase64Data"]) == data


@given(st.binary(max_size=600_000))
def test_sliced_base64_decoding_matches_the_standard_library(data: bytes) -> None:
    assert decode_base64(base64.b64encode(data).decode()) == data


@pytest.mark.parametrize("bad", ["not base64!", "QUJ", "QUJD\n", "@@@@"])
def test_bad_base64_is_a_malformed_answer(bad: str) -> None:
    with pytest.raises(E.MalformedResponseError, match="not valid base64"):
        decode_base64(bad)


@pytest.mark.parametrize("body", [b"{", b"<html>502 Bad Gateway</html>", b'{"data": [1, 2', b"\xff\xfe"])
def test_invalid_json_is_a_malformed_answer(body: bytes) -> None:
    with pytest.raises(E.MalformedResponseError, match="not valid JSON"):
        parse_body(body)


def test_truncated_image_string_is_a_malformed_answer() -> None:
    with pytest.raises(E.MalformedResponseError):
        parse_body(b'{"data":[{"imageBase64Data":"QUJDRA')


@pytest.mark.parametrize("decoy", ["\u0000blob:7", "\u0000blob:x", "\u0000blob:0", "\u0000blob:"])
def test_a_string_of_the_answer_that_looks_like_a_lifted_image_is_left_as_it_is(decoy: str) -> None:
    # A service's string shaped as the parser's own placeholder crashed the command line
    # (IndexError, ValueError) at every run that collected the task, or took an image's place.
    text = base64.b64encode(png()).decode()
    body = json.dumps({"data": [{"imageBase64Data": text, "note": decoy, "more": [decoy]}]}).encode()
    item = parse_body(body)["data"][0]
    assert bytes(item["imageBase64Data"].raw()) == text.encode()
    assert item["note"] == decoy and item["more"] == [decoy]


def test_an_answer_nested_beyond_reason_beside_an_image_is_a_malformed_answer() -> None:
    text = base64.b64encode(png()).decode()
    deep = "[" * 700 + "]" * 700
    body = ('{"data":[{"imageBase64Data":"' + text + '","extra":' + deep + "}]}").encode()
    with pytest.raises(E.MalformedResponseError, match="not valid JSON"):
        parse_body(body)


@given(st.binary(max_size=200))
def test_parse_body_never_raises_anything_but_malformed(body: bytes) -> None:
    with contextlib.suppress(E.MalformedResponseError):
        parse_body(body)


ERR = {"code": "invalidApiKey", "message": "Invalid API key", "taskUUID": "t"}


@pytest.mark.parametrize(
    ("shape", "n_data", "n_err"),
    [
        ({"data": [{"taskUUID": "t", "imageUUID": "i"}]}, 1, 0),
        ({"data": {"taskType": "imageUpload", "imageUUID": "i"}}, 1, 0),
        ({"errors": [ERR]}, 0, 1),
        ({"data": [{"taskUUID": "a"}], "errors": [ERR]}, 1, 1),
        ([ERR], 0, 1),
        ({"error": ERR}, 0, 1),
        (ERR, 0, 1),
        (ERR | {"taskType": "imageInference", "parameter": "positivePrompt"}, 0, 1),
        ({"error": "Something broke"}, 0, 1),
        (None, 0, 0),
    ],
)
def test_every_envelope_shape_is_accepted(shape: object, n_data: int, n_err: int) -> None:
    env = parse_envelope(shape)
    assert (len(env.data), len(env.errors)) == (n_data, n_err)


@pytest.mark.parametrize("shape", [42, "text", {"data": 5}])
def test_unexpected_shapes_are_malformed(shape: object) -> None:
    with pytest.raises(E.MalformedResponseError):
        parse_envelope(shape)


@pytest.mark.parametrize(
    ("item", "status", "cls", "phrase"),
    [
        ({"code": "invalidApiKey"}, 401, E.AuthenticationError, "key was not accepted"),
        (None, 401, E.AuthenticationError, "key was not accepted"),
        ({"code": "missingApiKey"}, 401, E.AuthenticationError, "received no API key"),
        ({"code": "insufficientCredits"}, 402, E.InsufficientCreditsError, "out of credits"),
        ({"code": "paymentRequired"}, None, E.InsufficientCreditsError, "out of credits"),
        (
            {"code": "invalidParameter", "parameter": "width", "message": "Width must be 1024"},
            400,
            E.ValidationError,
            "(width)",
        ),
        ({"code": "invalidPositivePrompt", "message": "too short"}, 400, E.ValidationError, "too short"),
        ({"code": "unknownParameter", "parameter": "foo"}, 400, E.ValidationError, "foo"),
        (None, 429, E.ServiceBusyError, "busy"),
        (None, 503, E.ServiceBusyError, "busy"),
        (None, 504, E.ServiceTimeoutError, "too long"),
        ({"code": "timeoutProvider"}, None, E.ServiceTimeoutError, "too long"),
        (None, 500, E.ServiceBusyError, "internal error"),
        ({"code": "conflictTaskUUID"}, 400, E.TaskError, "already has a task"),
        ({"code": "nsfwContentDetected"}, None, E.ContentError, "content policy"),
        ({"code": "modelNotFound"}, None, E.TaskError, "does not offer Krea 2 Medium"),
        ({"code": "modelNotFound"}, 404, E.TaskError, "does not offer Krea 2 Medium"),
        (None, 404, E.TaskError, "has nothing there (HTTP 404); check the address"),  # a wrong path
        ({"code": "notFound", "message": "No such endpoint"}, 404, E.TaskError, "has nothing there"),
        ({"code": "inferenceError"}, None, E.TaskError, "failed while generating"),
        ({"code": "weird", "message": "the moon is full"}, None, E.TaskError, "the moon is full"),
        ({}, None, E.TaskError, "unexplained"),
    ],
)
def test_errors_become_typed_one_sentence_messages(
    item: dict | None, status: int | None, cls: type, phrase: str
) -> None:
    err = error_from(item, status)
    assert isinstance(err, cls)
    assert phrase in str(err)
    text = str(err)
    assert text.endswith(".") and "\n" not in text and len(text) < 320


@pytest.mark.parametrize(
    ("message", "quoted"),
    [
        ("Bad prompt. See https://docs.runware.ai/x. Try again!", "Bad prompt; try again"),
        (
            "Invalid model (see https://my.runware.ai/models). Use a supported model.",
            "Invalid model; use a supported model",
        ),
        (
            "Unsupported value, see https://docs.runware.ai/x#width. Width must be a multiple of 64.",
            "Unsupported value; width must be a multiple of 64",
        ),
        ("Value must be e.g. 1024 or 2048.", "Value must be e.g. 1024 or 2048"),  # an abbreviation ends nothing
        ("Prompt too long (max. 2000 characters).", "Prompt too long (max. 2000 characters)"),
        ("Width must be 1.5x of 1024 (see https://x.example/w) please", "Width must be 1.5x of 1024 please"),
        ("Runware refused it. Runware says why.", "Runware refused it; Runware says why"),
        ({"a": 1}, "a parameter is not accepted"),
        (["x", "y"], "a parameter is not accepted"),
    ],
)
def test_the_services_own_words_are_quoted_in_one_sentence_without_addresses(message: object, quoted: str) -> None:
    err = error_from({"code": "invalidPositivePrompt", "parameter": "positivePrompt", "message": message}, 400)
    assert str(err) == f"The service refused a parameter (positivePrompt): {quoted}."


def test_long_words_of_the_service_are_cut_at_a_word() -> None:
    err = error_from({"code": "weird", "message": "word " * 200})
    text = str(err)
    assert text.startswith("The service reported an error: word word") and text.endswith("….")
    assert len(text) < 300 and ". " not in text


def test_a_message_that_is_not_text_is_not_shown() -> None:
    assert str(error_from({"code": 42, "message": {"a": 1}})) == "The service reported an unexplained error."


def test_retry_after_is_read_from_seconds() -> None:
    err = error_from(None, 429, "7")
    assert isinstance(err, E.ServiceBusyError) and err.retry_after == 7.0


def test_verify_image_checks_size_and_completeness() -> None:
    data = png(8, 6)
    assert verify_image(data, 8, 6).format == "PNG"
    with pytest.raises(E.MalformedResponseError, match="8×6 instead of 16×6"):
        verify_image(data, 16, 6)
    big = png(300, 300, (1, 2, 3))
    with pytest.raises(E.MalformedResponseError, match="damaged or incomplete"):
        verify_image(big[: len(big) // 2], 300, 300)
    with pytest.raises(E.MalformedResponseError):
        verify_image(b"GIF89a....", 1, 1)
    with pytest.raises(E.MalformedResponseError, match="empty"):
        verify_image(b"")


def test_data_uris_decode() -> None:
    data = png()
    assert decode_data_uri("data:image/png;base64," + base64.b64encode(data).decode()) == data
    with pytest.raises(E.MalformedResponseError):
        decode_data_uri("data:image/png,rawtext")


@given(st.binary(max_size=300), st.binary(min_size=1, max_size=5), st.integers(0, 300), st.integers(1, 9))
def test_windowed_find_matches_bytes_find(haystack: bytes, needle: bytes, start: int, window: int) -> None:
    import krea_desktop.api.response as response

    old = response._FIND_WINDOW
    response._FIND_WINDOW = window
    try:
        assert response._find(haystack, needle, start) == haystack.find(needle, start)
        assert response._find(haystack, needle, start, 150) == haystack.find(needle, start, 150)
    finally:
        response._FIND_WINDOW = old


def test_answers_parse_the_same_with_tiny_search_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    import krea_desktop.api.response as response

    doc = {"data": [{"imageBase64Data": base64.b64encode(bytes([i]) * 999).decode(), "n": i} for i in range(5)]}
    body = json.dumps(doc).encode()
    expected = parse_body(body)
    monkeypatch.setattr(response, "_FIND_WINDOW", 3)
    got = parse_body(body)
    assert [bytes(x["imageBase64Data"].raw()) for x in got["data"]] == [
        bytes(x["imageBase64Data"].raw()) for x in expected["data"]
    ]

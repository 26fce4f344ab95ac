"""Fault specs, and every fault carried out by the loopback server, seen with raw httpx."""

from __future__ import annotations

import base64
import binascii
import io
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from krea_desktop.api import spec
from krea_desktop.simulator import Fault, SimulatorConfig, SimulatorServer, SimulatorService, parse_fault
from krea_desktop.simulator.faults import FAULT_KINDS

AUTH = {"Authorization": "Bearer test-key"}


# -- the spec language ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("429", Fault("429")),
        ("429:retry-after=2", Fault("429", retry_after=2.0)),
        ("503x2", Fault("503", count=2)),
        ("503*", Fault("503", count=None)),
        ("500x*", Fault("500", count=None)),
        ("drop-after", Fault("drop-after")),
        ("hang:on=getResponse", Fault("hang", on="getResponse")),
        ("task-error:code=timeoutProvider,status=500", Fault("task-error", code="timeoutProvider", status=500)),
        ("fewer-imagesx3:on=any", Fault("fewer-images", count=3, on="any")),
        (" TRUNCATED-PNG ", Fault("truncated-png")),
        ("bad-base64:on=imageinference", Fault("bad-base64")),
    ],
)
def test_parse(text: str, expected: Fault) -> None:
    fault = parse_fault(text)
    assert fault == expected
    assert parse_fault(fault.spec()) == fault


def test_every_kind_parses() -> None:
    for kind in FAULT_KINDS:
        assert parse_fault(kind).kind == kind


@pytest.mark.parametrize(
    "text", ["418", "drop", "503x0", "503x", "429:retry-after=soon", "500:on=video", "500:colour=red", "hang:on"]
)
def test_parse_errors(text: str) -> None:
    with pytest.raises(ValueError):
        parse_fault(text)


# -- through the loopback server --------------------------------------------------------


def inference(**overrides: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "taskType": "imageInference",
        "taskUUID": str(uuid.uuid4()),
        "model": spec.MODEL_ID,
        "positivePrompt": "storm over the sea",
        "width": 1024,
        "height": 1024,
        "outputType": "base64Data",
        "outputFormat": "PNG",
    }
    task.update(overrides)
    return task


def poll(task: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"taskType": "getResponse", "taskUUID": task["taskUUID"]}]


@pytest.fixture
def service() -> SimulatorService:
    return SimulatorService(SimulatorConfig())


@pytest.fixture
def server(service: SimulatorService) -> Iterator[SimulatorServer]:
    srv = SimulatorServer(service)
    srv.start_in_thread()
    yield srv
    srv.stop_thread()


@pytest.fixture
def client(server: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=5) as c:
        yield c


def post(client: httpx.Client, tasks: list[dict[str, Any]]) -> httpx.Response:
    return client.post("", json=tasks)


def image_bytes(item: dict[str, Any]) -> bytes:
    return base64.b64decode(item["imageBase64Data"], validate=True)


@pytest.mark.parametrize(("kind", "code"), [("429", "rateLimitExceeded"), ("500", "internalServerError"),
                                            ("503", "serviceUnavailable"), ("504", "timeoutProvider")])  # fmt: skip
def test_status_faults_fire_once(service: SimulatorService, client: httpx.Client, kind: str, code: str) -> None:
    service.inject(kind)
    task = inference()
    r = post(client, [task])
    assert r.status_code == int(kind)
    assert r.json()["errors"][0]["code"] == code
    assert "retry-after" not in r.headers
    assert not service.submissions  # not accepted
    r = post(client, [task])
    assert r.status_code == 200
    assert service.submissions[task["taskUUID"]] == 1


def test_retry_after(service: SimulatorService, client: httpx.Client) -> None:
    service.inject("429:retry-after=2")
    r = post(client, [inference()])
    assert r.status_code == 429
    assert r.headers["retry-after"] == "2"


def test_502_is_an_html_page(service: SimulatorService, client: httpx.Client) -> None:
    service.inject("502")
    r = post(client, [inference()])
    assert r.status_code == 502
    assert r.headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        r.json()


def test_count_and_always(service: SimulatorService, client: httpx.Client) -> None:
    service.inject("503x2")
    assert [post(client, [inference()]).status_code for _ in range(3)] == [503, 503, 200]
    service.inject("500*")
    assert [post(client, [inference()]).status_code for _ in range(3)] == [500, 500, 500]
    assert len(service.faults) == 1
    service.faults.clear()
    assert post(client, [inference()]).status_code == 200


def test_faults_fire_in_order(service: SimulatorService, client: httpx.Client) -> None:
    service.inject("500")
    service.inject(Fault("503"))
    assert [post(client, [inference()]).status_code for _ in range(3)] == [500, 503, 200]


def test_target_selection(service: SimulatorService, client: httpx.Client) -> None:
    service.inject("503:on=getResponse")
    task = inference()
    assert post(client, [task]).status_code == 200  # the fault waits for a poll
    assert post(client, poll(task)).status_code == 503
    assert post(client, poll(task)).status_code == 200
    service.inject("500:on=any")
    assert post(client, poll(task)).status_code == 500


def test_drop_before(service: SimulatorService, client: httpx.Client) -> None:
    service.inject("drop-before")
    task = inference()
    with pytest.raises(httpx.RemoteProtocolError):
        post(client, [task])
    assert not service.submissions
    assert post(client, poll(task)).json()["errors"][0]["code"] == "taskFailedOrNotFound"
    assert post(client, [task]).status_code == 200


def test_drop_after_keeps_the_task(service: SimulatorService, client: httpx.Client) -> None:
    service.inject("drop-after")
    task = inference(numberResults=2)
    with pytest.raises(httpx.RemoteProtocolError):
        post(client, [task])
    assert service.submissions[task["taskUUID"]] == 1
    r = post(client, poll(task))
    assert r.status_code == 200
    assert [d["status"] for d in r.json()["data"]] == ["success", "success"]
    r = post(client, [task])
    assert (r.status_code, r.json()["errors"][0]["code"]) == (409, "conflictTaskUUID")


def test_hang_until_the_client_gives_up(service: SimulatorService, server: SimulatorServer) -> None:
    service.inject("hang")
    task = inference()
    start = time.monotonic()
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=0.3) as c, pytest.raises(httpx.ReadTimeout):
        post(c, [task])
    assert 0.25 < time.monotonic() - start < 10  # given up by the client, not answered
    assert service.submissions[task["taskUUID"]] == 1
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=5) as c:
        r = post(c, poll(task))
    assert r.json()["data"][0]["status"] == "success"


def test_hanging_connection_does_not_block_stop(service: SimulatorService) -> None:
    srv = SimulatorServer(service)
    srv.start_in_thread()
    service.inject("hang")
    with httpx.Client(base_url=srv.url, headers=AUTH, timeout=0.2) as c, pytest.raises(httpx.ReadTimeout):
        post(c, [inference()])
    start = time.monotonic()
    srv.stop_thread()
    assert time.monotonic() - start < 10  # the hanging connection waits for ever


def test_malformed_json(service: SimulatorService, client: httpx.Client) -> None:
    service.inject("malformed-json")
    r = post(client, [inference()])
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        r.json()


def test_bad_base64(service: SimulatorService, client: httpx.Client) -> None:
    service.inject("bad-base64")
    r = post(client, [inference()])
    data = r.json()["data"][0]["imageBase64Data"]
    with pytest.raises(binascii.Error):
        base64.b64decode(data, validate=True)
    with pytest.raises(binascii.Error):
        base64.b64decode(data)


def test_bad_base64_in_data_uri(service: SimulatorService, client: httpx.Client) -> None:
    service.inject("bad-base64")
    r = post(client, [inference(outputType="dataURI")])
    uri = r.json()["data"][0]["imageDataURI"]
    assert uri.startswith("data:image/png;base64,")
    with pytest.raises(binascii.Error):
        base64.b64decode(uri.partition(",")[2], validate=True)


def test_truncated_png(service: SimulatorService, client: httpx.Client) -> None:
    service.inject("truncated-png")
    task = inference()
    data = image_bytes(post(client, [task]).json()["data"][0])
    assert data.startswith(b"\x89PNG")
    with pytest.raises(OSError):
        Image.open(io.BytesIO(data)).load()
    # The stored image is intact: a poll delivers it whole.
    whole = image_bytes(post(client, poll(task)).json()["data"][0])
    assert whole[: len(data)] == data and len(whole) > len(data)


def test_truncated_image_behind_a_url(service: SimulatorService, client: httpx.Client) -> None:
    service.inject("truncated-png")
    url = post(client, [inference(outputType="URL")]).json()["data"][0]["imageURL"]
    r = client.get(url)
    assert r.status_code == 200
    with pytest.raises(OSError):
        Image.open(io.BytesIO(r.content)).load()


def test_wrong_size(service: SimulatorService, client: httpx.Client) -> None:
    service.inject("wrong-size")
    data = image_bytes(post(client, [inference(width=1568, height=672)]).json()["data"][0])
    assert Image.open(io.BytesIO(data)).size != (1568, 672)


def test_fewer_images_sync(service: SimulatorService, client: httpx.Client) -> None:
    service.inject("fewer-images")
    task = inference(numberResults=3, outputFormat="JPG")
    r = post(client, [task])
    assert r.status_code == 200
    assert len(r.json()["data"]) == 2
    body = post(client, poll(task)).json()
    assert len(body["data"]) == 2
    assert body["errors"][0]["status"] == "error"
    assert body["errors"][0]["taskUUID"] == task["taskUUID"]


def test_fewer_images_async(service: SimulatorService, client: httpx.Client) -> None:
    service.inject("fewer-images")
    task = inference(numberResults=2, deliveryMethod="async", outputFormat="JPG")
    assert post(client, [task]).json()["data"][0]["status"] == "processing"
    body = post(client, poll(task)).json()
    assert [d["status"] for d in body["data"]] == ["success"]
    assert [(e["status"], e["code"]) for e in body["errors"]] == [("error", "inferenceError")]


def test_image_fault_on_async_task_spoils_the_first_delivery(service: SimulatorService, client: httpx.Client) -> None:
    service.inject("wrong-size")
    task = inference(deliveryMethod="async", outputFormat="JPG")
    post(client, [task])
    data = image_bytes(post(client, poll(task)).json()["data"][0])
    assert Image.open(io.BytesIO(data)).size == (512, 512)
    data = image_bytes(post(client, poll(task)).json()["data"][0])
    assert Image.open(io.BytesIO(data)).size == (1024, 1024)


def test_task_error(service: SimulatorService, client: httpx.Client) -> None:
    service.inject("task-error")
    task = inference()
    r = post(client, [task])
    assert r.status_code == 400
    error = r.json()["errors"][0]
    assert (error["code"], error["taskUUID"]) == ("inferenceError", task["taskUUID"])
    assert post(client, poll(task)).json()["errors"][0]["code"] == "inferenceError"


def test_task_error_with_code_and_status(service: SimulatorService, client: httpx.Client) -> None:
    service.inject("task-error:code=timeoutProvider,status=500")
    r = post(client, [inference()])
    assert (r.status_code, r.json()["errors"][0]["code"]) == (500, "timeoutProvider")


def test_conflict_fault(service: SimulatorService, client: httpx.Client) -> None:
    service.inject("conflict")
    task = inference()
    r = post(client, [task])
    assert (r.status_code, r.json()["errors"][0]["code"]) == (409, "conflictTaskUUID")
    assert not service.submissions


def test_faults_on_uploads(service: SimulatorService, client: httpx.Client) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (9, 9, 9)).save(buf, "PNG")
    upload = {"taskType": "imageUpload", "taskUUID": str(uuid.uuid4()),
              "image": base64.b64encode(buf.getvalue()).decode()}  # fmt: skip
    service.inject("503:on=imageUpload")
    assert post(client, [inference()]).status_code == 200
    assert post(client, [upload]).status_code == 503
    assert service.upload_count == 0
    service.inject("drop-after:on=imageUpload")
    with pytest.raises(httpx.RemoteProtocolError):
        post(client, [{**upload, "taskUUID": str(uuid.uuid4())}])
    assert service.upload_count == 1


def test_hung_connection_is_released_when_the_client_leaves(service: SimulatorService, server: SimulatorServer) -> None:
    service.inject("hang")
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=0.2) as c, pytest.raises(httpx.ReadTimeout):
        post(c, [inference()])
    deadline = time.monotonic() + 2
    while server._writers and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not server._writers

"""The loopback server, the in-process transport and the ``simulator`` command."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from krea_desktop.api import spec
from krea_desktop.simulator import DEMO_URL, SimulatorConfig, SimulatorServer, SimulatorService, SimulatorTransport

AUTH = {"Authorization": "Bearer test-key"}


def inference(**overrides: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "taskType": "imageInference",
        "taskUUID": str(uuid.uuid4()),
        "model": spec.MODEL_ID,
        "positivePrompt": "fields of lavender",
        "width": 1376,
        "height": 768,
        "outputType": "URL",
        "outputFormat": "WEBP",
    }
    task.update(overrides)
    return task


@pytest.fixture
def service() -> SimulatorService:
    return SimulatorService(SimulatorConfig())


@pytest.fixture
def server(service: SimulatorService) -> Iterator[SimulatorServer]:
    with SimulatorServer(service) as srv:
        yield srv


def test_url_and_health(server: SimulatorServer) -> None:
    assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/v1")
    assert server.port > 0
    r = httpx.get(server.base_url + "/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_both_paths_keep_alive_and_url_images(server: SimulatorServer, service: SimulatorService) -> None:
    with httpx.Client(headers=AUTH, timeout=5) as client:
        for path in ("/v1", "/", "/v1/"):
            r = client.post(server.base_url + path, json=[inference()])
            assert r.status_code == 200, r.text
            assert r.headers["connection"] == "keep-alive"
        url = r.json()["data"][0]["imageURL"]
        assert url.startswith(server.base_url + "/images/") and url.endswith(".webp")
        image = client.get(url)
        assert image.headers["content-type"] == "image/webp"
        assert Image.open(io.BytesIO(image.content)).size == (1376, 768)
        assert client.get(server.base_url + "/images/" + str(uuid.uuid4()) + ".png").status_code == 404
        assert client.get(server.base_url + "/nowhere").status_code == 404
        assert client.get(server.url).status_code == 405
    assert len(service.requests) == 3


def test_chunked_body(server: SimulatorServer) -> None:
    body = httpx.Request("POST", server.url, json=[inference()]).read()
    parts = [body[:10], body[10:]]
    r = httpx.post(server.url, headers={**AUTH, "Content-Type": "application/json"}, content=iter(parts))
    assert r.status_code == 200, r.text


def test_http_error_answers(server: SimulatorServer) -> None:
    r = httpx.post(server.url, json=[inference()])
    assert r.status_code == 401
    assert r.json()["errors"][0]["code"] == "missingApiKey"


def test_reference_fetched_from_a_loopback_url(service: SimulatorService, server: SimulatorServer) -> None:
    # An upload on a second simulator is fetched over HTTP by the first.
    other_service = SimulatorService()
    with SimulatorServer(other_service) as other, httpx.Client(headers=AUTH, timeout=5) as client:
        buf = io.BytesIO()
        Image.new("RGB", (20, 20), (0, 0, 250)).save(buf, "PNG")
        up = {"taskType": "imageUpload", "taskUUID": str(uuid.uuid4()),
              "image": base64.b64encode(buf.getvalue()).decode()}  # fmt: skip
        url = client.post(other.url, json=[up]).json()["data"][0]["imageURL"]
        assert url.startswith(other.base_url)
        task = inference(inputs={"referenceImages": [{"image": url, "strength": 1}]})
        r = client.post(server.url, json=[task])
        assert r.status_code == 200, r.text
        # A URL outside loopback is refused.
        task = inference(inputs={"referenceImages": ["https://example.com/x.png"]})
        r = client.post(server.url, json=[task])
        assert r.status_code == 400
        assert r.json()["errors"][0]["code"] == "invalidReferenceImage"
        assert "loopback" in r.json()["errors"][0]["message"]


def test_server_on_the_callers_loop(service: SimulatorService) -> None:
    async def go() -> int:
        srv = SimulatorServer(service)
        url = await srv.start()
        try:
            async with httpx.AsyncClient(headers=AUTH) as client:
                r = await client.post(url, json=[inference(outputType="base64Data")])
                return r.status_code
        finally:
            await srv.stop()

    assert asyncio.run(go()) == 200


# -- in-process transport ---------------------------------------------------------------


def run_transport(service: SimulatorService, tasks: list[dict[str, Any]], timeout: float = 5) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=SimulatorTransport(service), headers=AUTH, timeout=timeout) as client:
            return await client.post(DEMO_URL, json=tasks)

    return asyncio.run(go())


def test_transport_roundtrip(service: SimulatorService) -> None:
    r = run_transport(service, [inference(outputType="base64Data", numberResults=2)])
    assert r.status_code == 200
    assert len(r.json()["data"]) == 2


def test_transport_drop(service: SimulatorService) -> None:
    service.inject("drop-after")
    task = inference()
    with pytest.raises(httpx.RemoteProtocolError):
        run_transport(service, [task])
    assert service.submissions[task["taskUUID"]] == 1
    service.inject("drop-before")
    with pytest.raises(httpx.RemoteProtocolError):
        run_transport(service, [inference()])
    assert len(service.submissions) == 1


def test_transport_hang_honours_read_timeout(service: SimulatorService) -> None:
    service.inject("hang")
    with pytest.raises(httpx.ReadTimeout):
        run_transport(service, [inference()], timeout=0.1)


def test_transport_keeps_the_loop_free() -> None:
    # Rendering runs in worker threads: a ticker on the caller's loop keeps ticking.
    service = SimulatorService()

    async def go() -> tuple[int, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        t = asyncio.create_task(ticker())
        async with httpx.AsyncClient(transport=SimulatorTransport(service), headers=AUTH) as client:
            r = await client.post(DEMO_URL, json=[inference(outputType="base64Data", outputFormat="PNG",
                                                            numberResults=4)])  # fmt: skip
        t.cancel()
        return r.status_code, ticks

    status, ticks = asyncio.run(go())
    assert status == 200
    assert ticks >= 3


# -- the command --------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="uses SIGTERM")
def test_cli_serves_until_terminated() -> None:
    code = "from krea_desktop.simulator.cli import main; raise SystemExit(main())"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0", "--key", "k", "--latency", "0", "--fault", "503"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=os.getcwd(),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("Simulator listening on http://127.0.0.1:") and line.endswith("/v1")
        url = line.rsplit(" ", 1)[1]
        headers = {"Authorization": "Bearer k"}
        assert httpx.post(url, headers=headers, json=[inference()]).status_code == 503
        assert httpx.post(url, headers=headers, json=[inference()]).status_code == 200
        assert httpx.post(url, headers={"Authorization": "Bearer x"}, json=[inference()]).status_code == 401
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_rejects_bad_fault() -> None:
    from krea_desktop.simulator.cli import main

    assert main(["--fault", "teapot"]) == 2


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--port", "-1"], "--port is -1, but it must be from 0 to 65535"),
        (["--port", "99999"], "--port is 99999, but it must be from 0 to 65535"),
        (["--grain", "2"], "--grain is 2.0, but it must be from 0 to 1"),
        (["--grain", "nan"], "--grain is nan, but it must be from 0 to 1"),
        (["--latency", "nan"], "--latency must be from 0 to 3600 seconds"),
        (["--latency", "inf"], "--latency must be from 0 to 3600 seconds"),
        (["--latency", "-1"], "--latency must be from 0 to 3600 seconds"),
    ],
)
def test_cli_refuses_a_port_or_grain_out_of_range_in_one_line(
    args: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from krea_desktop.simulator.cli import main

    assert main(args) == 2
    assert capsys.readouterr().err == f"krea-desktop simulator: {said}\n"

"""The simulated Runware service: protocol, validation, auth, async polling, uploads."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from PIL import Image

from krea_desktop.api import spec
from krea_desktop.simulator import (
    CONFLICT_STATUS,
    DEMO_URL,
    SimulatorConfig,
    SimulatorService,
    SimulatorTransport,
)
from krea_desktop.simulator.render import mean_colour

AUTH = {"Authorization": "Bearer test-key"}


def inference(**overrides: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "taskType": "imageInference",
        "taskUUID": str(uuid.uuid4()),
        "model": spec.MODEL_ID,
        "positivePrompt": "a quiet harbour at dawn",
        "width": 1024,
        "height": 1024,
        "outputType": "base64Data",
        "outputFormat": "JPG",
        "outputQuality": 60,
    }
    task.update(overrides)
    return {k: v for k, v in task.items() if v is not None}


def call(service: SimulatorService, tasks: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    body = tasks if isinstance(tasks, bytes) else json.dumps(tasks).encode()
    reply = asyncio.run(service.handle(AUTH if headers is None else headers, body))
    assert reply.action == "respond"
    return reply.status, json.loads(reply.body) if reply.body else None


def decode(item: dict[str, Any]) -> Image.Image:
    if "imageBase64Data" in item:
        data = base64.b64decode(item["imageBase64Data"], validate=True)
    else:
        b64 = item["imageDataURI"].partition(",")[2]
        data = base64.b64decode(b64, validate=True)
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def png_data_uri(colour: tuple[int, int, int], size: tuple[int, int] = (32, 32)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@pytest.fixture
def service() -> SimulatorService:
    return SimulatorService(SimulatorConfig(seed=1))


# -- generation ---------------------------------------------------------------------------


def test_sync_generation_returns_every_image(service: SimulatorService) -> None:
    task = inference(numberResults=3, seed=100, includeCost=True, outputFormat="PNG", width=1568, height=672)
    status, body = call(service, [task])
    assert status == 200
    items = body["data"]
    assert [i["seed"] for i in items] == [100, 101, 102]
    assert len({i["imageUUID"] for i in items}) == 3
    for item in items:
        assert item["taskUUID"] == task["taskUUID"]
        assert item["taskType"] == "imageInference"
        assert item["status"] == "success"
        assert item["cost"] == pytest.approx(0.0045)
        assert "NSFWContent" not in item
        assert uuid.UUID(item["imageUUID"]).version == 4
        img = decode(item)
        assert (img.format, img.size) == ("PNG", (1568, 672))
    assert service.submissions[task["taskUUID"]] == 1


def test_same_seed_same_image_and_random_seed_in_uint32(service: SimulatorService) -> None:
    _, a = call(service, [inference(seed=7)])
    _, b = call(service, [inference(seed=7)])
    assert a["data"][0]["imageBase64Data"] == b["data"][0]["imageBase64Data"]
    _, c = call(service, [inference(numberResults=2)])
    seeds = [i["seed"] for i in c["data"]]
    assert 0 <= seeds[0] <= spec.RANDOM_SEED_MAX
    assert seeds[1] == (seeds[0] + 1) % (spec.RANDOM_SEED_MAX + 1)


def test_output_types(service: SimulatorService) -> None:
    _, body = call(service, [inference(outputType="dataURI", outputFormat="WEBP")])
    item = body["data"][0]
    assert item["imageDataURI"].startswith("data:image/webp;base64,")
    assert decode(item).format == "WEBP"
    _, body = call(service, [inference(outputType="URL", ttl=120)])
    assert body["data"][0]["imageURL"].endswith(".jpg")
    assert "imageBase64Data" not in body["data"][0]


def test_cost_only_when_asked_and_nsfw_only_when_checked(service: SimulatorService) -> None:
    _, body = call(service, [inference()])
    assert "cost" not in body["data"][0] and "NSFWContent" not in body["data"][0]
    _, body = call(service, [inference(positivePrompt="an NSFW scene", safety={"checkContent": True, "mode": "fast"})])
    assert body["data"][0]["NSFWContent"] is True
    _, body = call(service, [inference(safety={"checkContent": True})])
    assert body["data"][0]["NSFWContent"] is False


def test_url_output_served_by_the_transport(service: SimulatorService) -> None:
    async def go() -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(transport=SimulatorTransport(service), headers=AUTH) as client:
            task = inference(outputType="URL", outputFormat="PNG", width=768, height=1376)
            r = await client.post(DEMO_URL, json=[task])
            url = r.json()["data"][0]["imageURL"]
            assert url.startswith("http://simulator.krea-desktop.invalid/images/")
            return r, await client.get(url)

    _, image = asyncio.run(go())
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (768, 1376)


# -- validation ---------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _set(**kw: Any) -> Mutation:
    return lambda t: t.update(kw)


def _drop(key: str) -> Mutation:
    return lambda t: t.pop(key)


@pytest.mark.parametrize(
    ("mutate", "code", "parameter", "words"),
    [
        (_set(model="runware:100@1"), "modelNotFound", "model", ["krea:krea@2-medium"]),
        (_drop("model"), "missingParameter", "model", ["model"]),
        (_set(positivePrompt="a"), "invalidPositivePrompt", "positivePrompt", ["2", "3000"]),
        (_set(positivePrompt="x" * 3001), "invalidPositivePrompt", "positivePrompt", ["3001", "3000"]),
        (_set(positivePrompt=5), "invalidPositivePrompt", "positivePrompt", ["text"]),
        (_drop("positivePrompt"), "missingParameter", "positivePrompt", ["positivePrompt"]),
        (_set(width=1000), "invalidParameter", "width", ["1024x1024", "1568x672"]),
        (_set(width=1024, height=768), "invalidParameter", "height", ["768x1376"]),
        (_drop("height"), "missingParameter", "height", ["together"]),
        (_set(width="1024"), "invalidParameter", "width", ["1024x1024"]),
        (_set(seed=-1), "invalidParameter", "seed", ["0", str(2**63 - 1)]),
        (_set(seed=2**63), "invalidParameter", "seed", [str(2**63 - 1)]),
        (_set(seed=1.5), "invalidParameter", "seed", ["whole number"]),
        (_set(numberResults=0), "invalidParameter", "numberResults", ["1", "20"]),
        (_set(numberResults=21), "invalidParameter", "numberResults", ["1", "20"]),
        (_set(numberResults=True), "invalidParameter", "numberResults", ["whole number"]),
        (_set(outputType="file"), "invalidParameter", "outputType", ["URL", "base64Data", "dataURI"]),
        (_set(outputFormat="GIF"), "invalidParameter", "outputFormat", ["JPG", "PNG", "WEBP"]),
        (_set(outputQuality=19), "invalidParameter", "outputQuality", ["20", "99"]),
        (_set(outputQuality=100), "invalidParameter", "outputQuality", ["20", "99"]),
        (_set(deliveryMethod="later"), "invalidParameter", "deliveryMethod", ["sync", "async"]),
        (_set(settings={"creativity": "wild"}), "invalidParameter", "settings.creativity", ["raw", "high"]),
        (_set(settings={"steps": 4}), "unknownParameter", "settings.steps", ["settings.steps"]),
        (_set(settings=[]), "invalidParameter", "settings", ["object"]),
        (_set(safety={"checkContent": "yes"}), "invalidParameter", "safety.checkContent", ["true or false"]),
        (_set(safety={"mode": "full"}), "invalidParameter", "safety.mode", ["none", "fast"]),
        (_set(includeCost=1), "invalidParameter", "includeCost", ["true or false"]),
        (_set(ttl=59, outputType="URL"), "invalidParameter", "ttl", ["60"]),
        (_set(ttl=120), "invalidParameter", "ttl", ["URL"]),
        (_set(webhookURL="ftp://x"), "invalidParameter", "webhookURL", ["http"]),
        (_set(uploadEndpoint="nowhere"), "invalidParameter", "uploadEndpoint", ["http"]),
        (_set(negativePrompt="blurry"), "unknownParameter", "negativePrompt", ["negativePrompt"]),
        (_set(taskUUID="not-a-uuid"), "invalidTaskUUID", "taskUUID", ["UUID"]),
        (_drop("taskUUID"), "missingParameter", "taskUUID", ["taskUUID"]),
        (_set(inputs={"referenceImages": "abc"}), "invalidParameter", "inputs.referenceImages", ["array"]),
        (
            _set(inputs={"referenceImages": [str(uuid.uuid4())] * 11}),
            "invalidParameter",
            "inputs.referenceImages",
            ["11", "10"],
        ),
        (
            _set(inputs={"referenceImages": [{"image": "x", "strength": 2.5}]}),
            "invalidParameter",
            "inputs.referenceImages[0].strength",
            ["-2", "2"],
        ),
        (
            _set(inputs={"referenceImages": [{"strength": 1}]}),
            "missingParameter",
            "inputs.referenceImages[0].image",
            ["image"],
        ),
        (
            _set(inputs={"referenceImages": [{"image": "x", "weight": 1}]}),
            "unknownParameter",
            "inputs.referenceImages[0].weight",
            ["weight"],
        ),
        (_set(inputs={"masks": []}), "unknownParameter", "inputs.masks", ["referenceImages"]),
    ],
)
def test_validation_names_the_parameter_and_the_range(
    service: SimulatorService, mutate: Mutation, code: str, parameter: str, words: list[str]
) -> None:
    task = inference()
    mutate(task)
    status, body = call(service, [task])
    assert status == 400
    assert "data" not in body
    (error,) = body["errors"]
    assert error["code"] == code
    assert error["parameter"] == parameter
    assert parameter.split("[")[0].split(".")[-1] in error["message"]
    for word in words:
        assert word in error["message"]
    assert error["taskType"] == "imageInference"
    assert error["documentation"].startswith("https://runware.ai/docs/")
    assert not service.submissions


def test_valid_edges_are_accepted(service: SimulatorService) -> None:
    tasks = [
        inference(seed=2**63 - 1, numberResults=1, outputQuality=20, positivePrompt="ab"),
        inference(
            seed=0,
            outputQuality=99,
            positivePrompt="x" * 3000,
            settings={"creativity": "raw"},
            inputs={"referenceImages": []},
        ),
    ]
    status, body = call(service, tasks)
    assert status == 200, body
    assert len(body["data"]) == 2
    assert body["data"][0]["seed"] == 2**63 - 1


def test_errors_sit_next_to_data_of_other_tasks(service: SimulatorService) -> None:
    good, bad = inference(), inference(numberResults=99)
    status, body = call(service, [good, bad])
    assert status == 200
    assert [d["taskUUID"] for d in body["data"]] == [good["taskUUID"]]
    assert [e["taskUUID"] for e in body["errors"]] == [bad["taskUUID"]]


def test_bad_bodies(service: SimulatorService) -> None:
    status, body = call(service, b"{not json")
    assert status == 400 and body["errors"][0]["code"] == "invalidPayload"
    status, body = call(service, {"taskType": "imageInference"})
    assert status == 400
    status, body = call(service, [])
    assert status == 400
    status, body = call(service, [{"taskType": "videoInference", "taskUUID": str(uuid.uuid4())}])
    assert status == 400 and body["errors"][0]["parameter"] == "taskType"


# -- auth -------------------------------------------------------------------------------


def test_missing_key() -> None:
    service = SimulatorService()
    status, body = call(service, [inference()], headers={})
    assert status == 401
    assert body["errors"][0]["code"] == "missingApiKey"
    assert not service.submissions


def test_wrong_key() -> None:
    service = SimulatorService(SimulatorConfig(api_key="right"))
    status, body = call(service, [inference()], headers={"Authorization": "Bearer wrong"})
    assert (status, body["errors"][0]["code"]) == (401, "invalidApiKey")
    status, _ = call(service, [inference()], headers={"Authorization": "Bearer right"})
    assert status == 200


def test_authentication_task() -> None:
    service = SimulatorService(SimulatorConfig(api_key="right"))
    task = inference()
    status, body = call(service, [{"taskType": "authentication", "apiKey": "right"}, task], headers={})
    assert status == 200
    auth, item = body["data"]
    assert auth["taskType"] == "authentication"
    assert uuid.UUID(auth["connectionSessionUUID"])
    assert item["taskUUID"] == task["taskUUID"]
    status, body = call(service, [{"taskType": "authentication", "apiKey": "nope"}, inference()], headers={})
    assert (status, body["errors"][0]["code"]) == (401, "invalidApiKey")
    # The key never lands in the recording.
    assert "right" not in json.dumps(service.requests)


def test_recording(service: SimulatorService) -> None:
    task = inference()
    body = json.dumps([task]).encode()
    asyncio.run(service.handle({"Authorization": "Bearer secret", "X-Test": "1"}, body))
    headers, tasks = service.requests[-1]
    assert headers["authorization"] == "<redacted>"
    assert headers["x-test"] == "1"
    assert tasks == [task]
    assert service.bytes_received == len(body)


# -- conflict and polling ---------------------------------------------------------------


def test_reused_task_uuid_conflicts(service: SimulatorService) -> None:
    task = inference()
    assert call(service, [task])[0] == 200
    status, body = call(service, [task])
    assert status == CONFLICT_STATUS == 409
    assert body["errors"][0]["code"] == "conflictTaskUUID"
    assert service.submissions[task["taskUUID"]] == 1


def test_async_images_arrive_one_by_one() -> None:
    latency = 0.25
    service = SimulatorService(SimulatorConfig(latency_per_image=latency))
    task = inference(numberResults=3, deliveryMethod="async", seed=5)
    # The service notes the task somewhere within the call: the counts below allow for
    # any moment of it (the call itself may take a while on a busy machine).
    sent = time.monotonic()
    status, body = call(service, [task])
    answered = time.monotonic()
    assert status == 200
    assert body["data"] == [{"taskType": "imageInference", "taskUUID": task["taskUUID"], "status": "processing"}]
    poll = [{"taskType": "getResponse", "taskUUID": task["taskUUID"]}]
    seen: list[int] = []
    while True:
        now = time.monotonic()
        _, body = call(service, poll)
        done = [d for d in body["data"] if d["status"] == "success"]
        assert len(body["data"]) == 3
        expected_max = int((time.monotonic() - sent) / latency + 1e-9)
        expected_min = int((now - answered) / latency)
        assert min(expected_min, 3) <= len(done) <= min(expected_max, 3)
        if not seen or seen[-1] != len(done):
            seen.append(len(done))
        if len(done) == 3:
            break
        time.sleep(latency / 3)
    # A partial state seen on the way (polled every latency / 3: a poll would have to wait
    # twice the latency to miss both).
    assert seen[-1] == 3 and any(0 < n < 3 for n in seen)
    assert [d["seed"] for d in body["data"]] == [5, 6, 7]
    assert all(decode(d).size == (1024, 1024) for d in body["data"])
    # Polling again gives the same images (rendered once, cached).
    _, again = call(service, poll)
    assert again["data"] == body["data"]


def test_sync_results_can_be_recovered_by_polling(service: SimulatorService) -> None:
    task = inference(numberResults=2)
    _, first = call(service, [task])
    _, polled = call(service, [{"taskType": "getResponse", "taskUUID": task["taskUUID"]}])
    assert polled["data"] == first["data"]


def test_unknown_task_poll(service: SimulatorService) -> None:
    status, body = call(service, [{"taskType": "getResponse", "taskUUID": str(uuid.uuid4())}])
    assert status == 400
    assert body["errors"][0]["code"] == "taskFailedOrNotFound"


def test_sync_waits_for_latency() -> None:
    service = SimulatorService(SimulatorConfig(latency_per_image=0.05))
    start = time.monotonic()
    status, _ = call(service, [inference(numberResults=3)])
    assert status == 200
    assert time.monotonic() - start >= 0.15


# -- uploads and references -------------------------------------------------------------


def upload_task(image: str) -> dict[str, Any]:
    return {"taskType": "imageUpload", "taskUUID": str(uuid.uuid4()), "image": image}


def test_upload_and_reuse_by_uuid(service: SimulatorService) -> None:
    status, body = call(service, [upload_task(png_data_uri((250, 10, 10), (3000, 1000)))])
    assert status == 200
    (item,) = body["data"]
    assert item["taskType"] == "imageUpload"
    assert uuid.UUID(item["imageUUID"])
    assert item["imageURL"].endswith(f"/images/{item['imageUUID']}.png")
    assert service.upload_count == 1
    # kept at most 2048 px on the long side
    reply = asyncio.run(service.image_reply(item["imageUUID"] + ".png"))
    assert Image.open(io.BytesIO(reply.body)).size == (2048, 683)

    plain = inference(seed=3)
    pulled = inference(seed=3, inputs={"referenceImages": [{"image": item["imageUUID"], "strength": 2}]})
    status, body = call(service, [plain, pulled])
    assert status == 200, body
    red = (250, 10, 10)
    a, b = (mean_colour(decode(d)) for d in body["data"])

    def dist(c: tuple[int, int, int]) -> int:
        return sum((x - y) ** 2 for x, y in zip(c, red, strict=True))

    assert dist(b) < dist(a)
    assert service.upload_count == 1


def test_raw_base64_upload_and_inline_references(service: SimulatorService) -> None:
    raw = png_data_uri((0, 200, 0)).partition(",")[2]
    status, body = call(service, [upload_task(raw)])
    assert status == 200
    task = inference(inputs={"referenceImages": [png_data_uri((0, 0, 255)), {"image": raw, "strength": -1}]})
    status, body = call(service, [task])
    assert status == 200, body


def test_generated_images_can_be_references(service: SimulatorService) -> None:
    _, body = call(service, [inference()])
    image_uuid = body["data"][0]["imageUUID"]
    status, body = call(service, [inference(inputs={"referenceImages": [image_uuid]})])
    assert status == 200, body


def test_forgotten_upload_is_reported(service: SimulatorService) -> None:
    _, body = call(service, [upload_task(png_data_uri((1, 2, 3)))])
    image_uuid = body["data"][0]["imageUUID"]
    service.forget_uploads()
    task = inference(inputs={"referenceImages": ["0" * 8 + "-0000-4000-8000-" + "0" * 12, image_uuid]})
    status, body = call(service, [task])
    assert status == 400
    error = body["errors"][0]
    assert error["code"] == "invalidReferenceImage"
    assert error["parameter"].startswith("inputs.referenceImages")
    assert not service.submissions


@pytest.mark.parametrize(
    "image",
    [
        "data:image/png;base64," + base64.b64encode(b"hello, not an image").decode(),
        base64.b64encode(b"GIF89a-but-truncated").decode(),
        "not base64 at all!",
        "data:text/plain,hello",
        "https://example.com/cat.png",
    ],
)
def test_upload_rejects_non_images(service: SimulatorService, image: str) -> None:
    status, body = call(service, [upload_task(image)])
    assert status == 400
    error = body["errors"][0]
    assert error["code"] == "invalidImage"
    assert error["parameter"] == "image"
    assert service.upload_count == 0


def test_upload_rejects_decompression_bombs(service: SimulatorService) -> None:
    buf = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buf, "PNG")  # 144 MP, a few KB compressed
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    status, body = call(service, [upload_task(uri)])
    assert status == 400
    assert "larger than" in body["errors"][0]["message"]


def test_upload_needs_image(service: SimulatorService) -> None:
    status, body = call(service, [{"taskType": "imageUpload", "taskUUID": str(uuid.uuid4())}])
    assert (status, body["errors"][0]["code"], body["errors"][0]["parameter"]) == (400, "missingParameter", "image")

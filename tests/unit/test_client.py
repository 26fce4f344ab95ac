"""The client's decisions, driven by a scripted service: retries, recovery without double
submission, polling, references sent once, cancellation."""

from __future__ import annotations

import asyncio
import base64
import gzip
import io
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from krea_desktop.api import errors as E
from krea_desktop.api.client import (
    PollPolicy,
    RetryPolicy,
    RunwareClient,
    _Context,
    check_endpoint,
    sent_record,
    stop_waiting_when,
)
from krea_desktop.api.refcache import MemoryReferenceCache, content_hash
from krea_desktop.api.request import GenerationRequest, ReferenceImage
from krea_desktop.user_words import as_the_app_says

URL = "https://api.example.test/v1"


def png(w: int, h: int, color: tuple[int, int, int] = (10, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), color).save(out, "PNG", compress_level=1)
    return out.getvalue()


class Script:
    """A fake service: each POST is answered by the next handler, or by ``default``."""

    def __init__(self) -> None:
        self.posts: list[list[dict[str, Any]]] = []
        self.handlers: list[Callable[[list[dict[str, Any]]], httpx.Response]] = []
        self.default: Callable[[list[dict[str, Any]]], httpx.Response] | None = None
        self.sleeps: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        tasks = json.loads(request.content)
        assert request.headers["Authorization"] == "Bearer k-123"
        self.posts.append(tasks)
        if self.handlers:
            return self.handlers.pop(0)(tasks)
        assert self.default is not None, f"unexpected request {tasks}"
        return self.default(tasks)

    def task_types(self) -> list[str]:
        return [t[0]["taskType"] for t in self.posts]

    def client(self, **kw: Any) -> RunwareClient:
        async def fake_sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            await asyncio.sleep(0)

        kw.setdefault("poll", PollPolicy(initial=0.01, maximum=0.05, minimum=0.0))
        return RunwareClient("k-123", base_url=URL, transport=httpx.MockTransport(self), sleep=fake_sleep, **kw)


def item(task: dict[str, Any], i: int, w: int = 1024, h: int = 1024, **extra: Any) -> dict[str, Any]:
    return {
        "taskType": "imageInference",
        "taskUUID": task["taskUUID"],
        "imageUUID": str(uuid.UUID(int=i + 1)),
        "imageBase64Data": base64.b64encode(png(w, h, (i * 20 % 255, 50, 90))).decode(),
        "seed": 1000 + i,
        "cost": 0.005,
        **extra,
    }


def ok(data: list[dict[str, Any]], errors: list[dict[str, Any]] | None = None) -> httpx.Response:
    body: dict[str, Any] = {"data": data}
    if errors:
        body["errors"] = errors
    return httpx.Response(200, json=body)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def collect(client: RunwareClient, req: GenerationRequest) -> list[Any]:
    try:
        return [img async for img in client.generate(req)]
    finally:
        await client.aclose()


async def collect_earlier(
    client: RunwareClient, request: GenerationRequest, received: set[str] | None = None, **kw: Any
) -> list[Any]:
    """What ``client.collect()`` yields of ``request``, sent earlier with no references
    (the images in ``received`` had come), the client closed after."""
    try:
        return [img async for img in client.collect(request, sent_record(request, []), set(received or ()), **kw)]
    finally:
        await client.aclose()


def test_sync_generation_decodes_and_verifies_every_image() -> None:
    s = Script()
    s.default = lambda tasks: ok([item(tasks[0], i) for i in range(tasks[0]["numberResults"])])
    images = run(collect(s.client(), GenerationRequest("two words", number_results=3, seed=7)))
    assert [im.seed for im in images] == [1000, 1001, 1002]
    assert all(im.format == "PNG" and (im.width, im.height) == (1024, 1024) for im in images)
    assert images[0].record is not None
    assert images[0].record.prompt == "two words" and images[0].record.seed == 7
    assert s.task_types() == ["imageInference"]


def test_lost_answer_is_recovered_with_get_response_not_a_second_submission() -> None:
    s = Script()
    submitted: dict[str, Any] = {}

    def drop(tasks: list[dict[str, Any]]) -> httpx.Response:
        submitted.update(tasks[0])
        raise httpx.ReadError("connection reset")

    s.handlers.append(drop)
    s.default = lambda tasks: ok([item(submitted, i) for i in range(2)])
    images = run(collect(s.client(), GenerationRequest("two words", number_results=2)))
    assert len(images) == 2
    assert s.task_types() == ["imageInference", "getResponse"]
    assert s.posts[1][0]["taskUUID"] == submitted["taskUUID"]


NOT_FOUND = {"code": "taskFailedOrNotFound", "message": "No such task.", "taskType": "getResponse", "taskUUID": "x"}


# Both the usual envelope and the older single error object (which names its taskType like
# any error object) say that the service does not have the task.
@pytest.mark.parametrize("answer", [{"errors": [NOT_FOUND]}, NOT_FOUND])
def test_task_unknown_after_lost_answer_is_resubmitted_once_with_the_same_uuid(answer: dict[str, Any]) -> None:
    s = Script()
    s.handlers.append(lambda tasks: (_ for _ in ()).throw(httpx.ReadTimeout("slow")))
    s.handlers.append(lambda tasks: httpx.Response(400, json=answer))
    s.default = lambda tasks: ok([item(tasks[0], 0)])
    images = run(collect(s.client(), GenerationRequest("two words")))
    assert len(images) == 1
    assert s.task_types() == ["imageInference", "getResponse", "imageInference"]
    assert s.posts[0][0]["taskUUID"] == s.posts[2][0]["taskUUID"]


def test_a_single_error_object_keeps_its_code_and_message() -> None:
    s = Script()
    s.default = lambda tasks: httpx.Response(
        400,
        json={
            "code": "invalidPositivePrompt",
            "message": "The prompt is too short",
            "parameter": "positivePrompt",
            "taskType": "imageInference",
            "taskUUID": tasks[0]["taskUUID"],
        },
    )
    with pytest.raises(E.ValidationError, match="prompt is too short") as raised:
        run(collect(s.client(), GenerationRequest("two words")))
    assert raised.value.code == "invalidPositivePrompt"


@pytest.mark.parametrize("received", [set(), {str(uuid.UUID(int=1))}])
def test_collecting_a_task_the_service_no_longer_knows_says_so_and_asks_once(received: set[str]) -> None:
    # Part of it received before or not, a task the service does not know has nothing
    # more to give: said in one sentence, not as images missing from it.
    s = Script()
    s.default = lambda tasks: httpx.Response(400, json={"errors": [{"code": "taskFailedOrNotFound"}]})
    request = GenerationRequest("two words", number_results=4, delivery_method="async")

    with pytest.raises(E.TaskError, match=r"^The service no longer has this job, so its images could not be"):
        run(collect_earlier(s.client(), request, received))
    assert s.task_types() == ["getResponse"]


def test_collecting_a_task_still_being_made_ends_within_the_time_given() -> None:
    """A command collects earlier runs' tasks before it sends its own prompt: one the
    service never finished held each run for a whole job's time (15 minutes), per task.
    Given ``within``, it ends then, the task kept to be collected later."""
    s = Script()
    request = GenerationRequest("two words", number_results=2, delivery_method="async")
    s.default = lambda tasks: ok([{"taskUUID": request.task_uuid, "status": "processing"}])

    started = time.monotonic()
    with pytest.raises(E.ServiceTimeoutError) as late:
        run(collect_earlier(s.client(), request, within=0.2))
    assert time.monotonic() - started < 5  # the job's time is 900 s
    assert E.may_collect_later(late.value)


def test_collecting_within_a_time_says_that_time_and_asks_no_longer() -> None:
    """Its getResponse answers slow, a collection given 0.5 s took 14 s and said 'within
    the job's 900 s'."""
    s = Script()
    request = GenerationRequest("two words", number_results=2, delivery_method="async")
    s.default = lambda tasks: httpx.Response(200, stream=Trickle(b'{"data": []}', every=0.2))

    started = time.monotonic()
    with pytest.raises(E.ServiceTimeoutError) as late:
        run(collect_earlier(s.client(), request, within=0.5))
    assert str(late.value) == "The task was not done within the 0.5 s given to collect it."
    assert time.monotonic() - started < 7 and E.may_collect_later(late.value)  # not the 14 s it took


def test_collecting_a_task_gives_only_the_images_not_received_before() -> None:
    s = Script()
    request = GenerationRequest("two words", number_results=3, delivery_method="async")
    s.default = lambda tasks: ok([item({"taskUUID": request.task_uuid}, i) for i in range(3)])

    images = run(collect_earlier(s.client(), request, {str(uuid.UUID(int=1))}))
    assert sorted(img.seed for img in images) == [1001, 1002]
    assert s.task_types() == ["getResponse"]


def test_busy_service_is_retried_honouring_retry_after() -> None:
    s = Script()
    s.handlers.append(lambda t: httpx.Response(429, headers={"Retry-After": "3"}, json={"errors": [{"code": "x"}]}))
    s.handlers.append(lambda t: httpx.Response(503, text=""))
    s.default = lambda tasks: ok([item(tasks[0], 0)])
    images = run(collect(s.client(retry=RetryPolicy(base=0.5)), GenerationRequest("two words")))
    assert len(images) == 1
    assert s.sleeps[0] == 3.0
    assert 0.25 <= s.sleeps[1] <= 1.0  # jittered backoff
    assert s.task_types() == ["imageInference"] * 3


def test_backoff_grows_and_gives_up_with_a_clear_message() -> None:
    s = Script()
    s.default = lambda t: httpx.Response(503)
    with pytest.raises(E.ServiceBusyError, match="busy"):
        run(collect(s.client(retry=RetryPolicy(attempts=5, base=1.0, cap=100)), GenerationRequest("two words")))
    assert len(s.posts) == 5
    assert [round(x) <= 2**i for i, x in enumerate(s.sleeps)] == [True] * 4
    assert s.sleeps[-1] >= 4.0  # 8 s * jitter of at least 0.5


def test_connection_refused_is_retried_then_reported() -> None:
    s = Script()

    def refuse(tasks: list[dict[str, Any]]) -> httpx.Response:
        raise httpx.ConnectError("refused")

    s.default = refuse
    with pytest.raises(E.NetworkError, match="could not be reached"):
        run(collect(s.client(retry=RetryPolicy(attempts=3)), GenerationRequest("two words")))
    assert s.task_types() == ["imageInference"] * 3


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (401, "", E.AuthenticationError),
        (401, json.dumps({"errors": [{"code": "invalidApiKey"}]}), E.AuthenticationError),
        (402, json.dumps({"errors": [{"code": "insufficientCredits"}]}), E.InsufficientCreditsError),
        (400, json.dumps({"errors": [{"code": "invalidParameter", "parameter": "seed"}]}), E.ValidationError),
    ],
)
def test_final_errors_are_not_retried(status: int, body: str, cls: type) -> None:
    s = Script()
    s.default = lambda t: httpx.Response(status, text=body)
    with pytest.raises(cls):
        run(collect(s.client(), GenerationRequest("two words")))
    assert len(s.posts) == 1


def test_a_malformed_answer_is_checked_with_get_response_before_giving_up() -> None:
    s = Script()
    s.default = lambda t: httpx.Response(200, text="{not json")
    with pytest.raises(E.MalformedResponseError, match="not valid JSON"):
        run(collect(s.client(retry=RetryPolicy(attempts=3)), GenerationRequest("two words")))
    assert s.task_types() == ["imageInference"] + ["getResponse"] * 3

    s = Script()
    s.handlers.append(lambda t: httpx.Response(200, text="{not json"))
    s.default = lambda tasks: ok([item(s.posts[0][0], 0)])
    assert len(run(collect(s.client(), GenerationRequest("two words")))) == 1
    assert s.task_types() == ["imageInference", "getResponse"]


def test_conflict_means_the_task_is_there_so_poll_for_it() -> None:
    s = Script()
    s.handlers.append(lambda t: httpx.Response(400, json={"errors": [{"code": "conflictTaskUUID"}]}))
    s.default = lambda tasks: ok([item(s.posts[0][0], 0)])
    images = run(collect(s.client(), GenerationRequest("two words")))
    assert len(images) == 1
    assert s.task_types() == ["imageInference", "getResponse"]


def test_async_delivery_hands_over_each_image_as_it_finishes() -> None:
    s = Script()
    first = {}
    s.handlers.append(
        lambda tasks: (first.update(tasks[0]), ok([{"taskUUID": tasks[0]["taskUUID"], "status": "processing"}]))[1]
    )

    def poll_state(done: int) -> Callable[[list[dict[str, Any]]], httpx.Response]:
        def answer(tasks: list[dict[str, Any]]) -> httpx.Response:
            finished = [item(first, i, status="success") for i in range(done)]
            pending = [{"taskUUID": first["taskUUID"], "status": "processing"} for _ in range(3 - done)]
            return ok(finished + pending)

        return answer

    for done in (0, 1, 1, 3):
        s.handlers.append(poll_state(done))

    async def scenario() -> list[tuple[int, int]]:
        client = s.client()
        seen = []
        async for im in client.generate(GenerationRequest("two words", number_results=3, delivery_method="async")):
            seen.append((im.index, len(s.posts)))
        await client.aclose()
        return seen

    seen = run(scenario())
    # image 0 arrives after the second poll (third POST), before the batch is complete
    assert seen == [(0, 3), (1, 5), (2, 5)]
    assert s.task_types() == ["imageInference"] + ["getResponse"] * 4


def statuses_of(s: Script, request: GenerationRequest) -> list[str]:
    """What the client says, line by line, while it generates ``request`` from ``s``."""
    said: list[str] = []

    async def scenario() -> None:
        client = s.client()
        async for _im in client.generate(request, on_status=said.append):
            pass
        await client.aclose()

    run(scenario())
    return said


def test_the_status_says_generating_once_the_service_has_acknowledged_the_task() -> None:
    s = Script()
    first: dict[str, Any] = {}
    s.handlers.append(
        lambda tasks: (first.update(tasks[0]), ok([{"taskUUID": tasks[0]["taskUUID"], "status": "processing"}]))[1]
    )
    s.handlers.append(lambda tasks: ok([{"taskUUID": first["taskUUID"], "status": "processing"}] * 2))
    s.handlers.append(
        lambda tasks: ok([item(first, 0, status="success"), {"taskUUID": first["taskUUID"], "status": "processing"}])
    )
    s.default = lambda tasks: ok([item(first, i, status="success") for i in range(2)])
    said = statuses_of(s, GenerationRequest("two words", number_results=2, delivery_method="async"))
    assert said[:2] == ["Submitting…", "Generating…"]  # no longer "Submitting…" while the images are made
    assert said.count("Generating…") == 1 and "1 of 2 images ready…" in said


def test_a_submit_refused_as_busy_says_it_is_retried_without_asking_the_person_to_try_again() -> None:
    s = Script()
    s.handlers.append(busy("1"))
    s.default = lambda tasks: ok([item(tasks[0], 0)])
    said = statuses_of(s, GenerationRequest("two words"))
    assert "The service is busy right now; retrying in 1 s…" in said
    assert not any("try again" in line for line in said)


def test_a_retry_within_the_second_does_not_say_it_waits_0_s() -> None:
    s = Script()
    s.handlers.append(busy("0.2"))
    s.default = lambda tasks: ok([item(tasks[0], 0)])
    said = statuses_of(s, GenerationRequest("two words"))
    assert "The service is busy right now; retrying…" in said, said
    assert not any("0 s" in line for line in said)


def test_the_count_of_a_one_image_task_reads_in_the_singular() -> None:
    s = Script()
    s.handlers.append(lambda tasks: ok([{"taskUUID": tasks[0]["taskUUID"], "status": "processing"}]))
    s.default = lambda tasks: ok([item(tasks[0], 0, status="success")])
    said = statuses_of(s, GenerationRequest("one word", number_results=1, delivery_method="async"))
    assert "1 of 1 image ready…" in said and not any("images" in line for line in said)


def test_fewer_images_than_asked_keeps_the_received_ones_and_says_so() -> None:
    s = Script()
    s.default = lambda tasks: ok(
        [item(tasks[0], i) for i in range(2)], [{"code": "inferenceError", "taskUUID": tasks[0]["taskUUID"]}]
    )

    async def scenario() -> tuple[list[Any], Exception | None]:
        client = s.client()
        got = []
        try:
            async for im in client.generate(GenerationRequest("two words", number_results=3)):
                got.append(im)
        except E.KreaError as err:
            return got, err
        finally:
            await client.aclose()
        return got, None

    got, err = run(scenario())
    assert len(got) == 2
    assert isinstance(err, E.TaskError) and "2 of 3 images;" in str(err)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda it: it.update(imageBase64Data="%%%notbase64"),
        lambda it: it.update(imageBase64Data=base64.b64encode(png(1024, 1024)[:500]).decode()),
        lambda it: it.update(imageBase64Data=base64.b64encode(png(512, 512)).decode()),
    ],
)
def test_bad_image_data_is_a_clear_error(mutate: Callable[[dict[str, Any]], None]) -> None:
    s = Script()

    def answer(tasks: list[dict[str, Any]]) -> httpx.Response:
        it = item(tasks[0], 0)
        mutate(it)
        return ok([it])

    s.default = answer
    with pytest.raises(E.MalformedResponseError):
        run(collect(s.client(), GenerationRequest("two words")))


def test_references_are_uploaded_once_then_sent_by_uuid() -> None:
    s = Script()
    uploads: list[str] = []

    def answer(tasks: list[dict[str, Any]]) -> httpx.Response:
        t = tasks[0]
        if t["taskType"] == "imageUpload":
            assert t["image"].startswith("data:image/png;base64,")
            uploads.append(t["taskUUID"])
            return ok(
                [
                    {
                        "taskType": "imageUpload",
                        "taskUUID": t["taskUUID"],
                        "imageUUID": str(uuid.UUID(int=100 + len(uploads))),
                    }
                ]
            )
        return ok([item(t, 0)])

    s.default = answer
    cache = MemoryReferenceCache()
    refs = (ReferenceImage(png(64, 48, (255, 0, 0)), 1.0), ReferenceImage(png(64, 48, (0, 0, 255)), -0.5))

    async def scenario() -> None:
        client = s.client(reference_cache=cache)
        for _ in range(3):
            async for _im in client.generate(GenerationRequest("two words", references=refs)):
                pass
        await client.aclose()

    run(scenario())
    assert len(uploads) == 2
    inference = [p[0] for p in s.posts if p[0]["taskType"] == "imageInference"]
    assert len(inference) == 3
    for t in inference:
        assert t["inputs"]["referenceImages"] == [
            {"image": str(uuid.UUID(int=101)), "strength": 1.0},
            {"image": str(uuid.UUID(int=102)), "strength": -0.5},
        ]


def test_a_refused_address_is_said_once_and_not_sent_again() -> None:
    s = Script()
    s.default = lambda tasks: httpx.Response(
        400,
        json={
            "errors": [
                {
                    "code": "invalidReferenceImage",
                    "message": "The reference image could not be fetched.",
                    "parameter": "inputs.referenceImages[0].image",
                    "taskUUID": tasks[0]["taskUUID"],
                }
            ]
        },
    )
    request = GenerationRequest("two words", references=(ReferenceImage("https://e.test/gone.png", 1.0),))
    with pytest.raises(E.ValidationError) as info:
        run(collect(s.client(), request))
    assert s.task_types() == ["imageInference"]  # nothing uploaded could be uploaded again
    assert info.value.__context__ is None  # one error, not one raised while handling another


def test_stale_or_forgotten_uploads_are_sent_again() -> None:
    s = Script()
    data = png(32, 32)
    cache = MemoryReferenceCache()
    cache.remember(content_hash(data), str(uuid.UUID(int=7)), when=time.time() - 31 * 24 * 3600)
    uploads = []

    def answer(tasks: list[dict[str, Any]]) -> httpx.Response:
        t = tasks[0]
        if t["taskType"] == "imageUpload":
            uploads.append(t)
            return ok(
                [
                    {
                        "taskType": "imageUpload",
                        "taskUUID": t["taskUUID"],
                        "imageUUID": str(uuid.UUID(int=50 + len(uploads))),
                    }
                ]
            )
        return ok([item(t, 0)])

    s.default = answer
    run(collect(s.client(reference_cache=cache), GenerationRequest("two words", references=(ReferenceImage(data),))))
    assert len(uploads) == 1  # over 30 days old: uploaded again
    assert cache.lookup(content_hash(data))[0] == str(uuid.UUID(int=51))

    # the service forgot it early: the refusal leads to one fresh upload and a new task
    s.posts.clear()
    s.handlers.append(
        lambda t: httpx.Response(
            400,
            json={
                "errors": [
                    {
                        "code": "invalidReferenceImage",
                        "parameter": "inputs.referenceImages[0].image",
                        "message": "unknown image",
                    }
                ]
            },
        )
    )
    run(collect(s.client(reference_cache=cache), GenerationRequest("two words", references=(ReferenceImage(data),))))
    kinds = s.task_types()
    assert kinds == ["imageInference", "imageUpload", "imageInference"]
    assert s.posts[0][0]["taskUUID"] != s.posts[2][0]["taskUUID"]
    assert s.posts[2][0]["inputs"]["referenceImages"][0]["image"] == str(uuid.UUID(int=52))


def test_large_references_are_downscaled_to_2048_before_upload() -> None:
    s = Script()
    sent: list[bytes] = []

    def answer(tasks: list[dict[str, Any]]) -> httpx.Response:
        t = tasks[0]
        if t["taskType"] == "imageUpload":
            sent.append(base64.b64decode(t["image"].split(",", 1)[1]))
            return ok([{"taskType": "imageUpload", "taskUUID": t["taskUUID"], "imageUUID": str(uuid.uuid4())}])
        return ok([item(t, 0)])

    s.default = answer
    big = png(3000, 1000)
    run(collect(s.client(), GenerationRequest("two words", references=(ReferenceImage(big),))))
    with Image.open(io.BytesIO(sent[0])) as im:
        assert im.size == (2048, 683)


def test_cancelling_stops_the_job_promptly() -> None:
    s = Script()
    s.handlers.append(lambda tasks: ok([{"taskUUID": tasks[0]["taskUUID"], "status": "processing"}]))
    s.default = lambda tasks: ok([{"taskUUID": tasks[0]["taskUUID"], "status": "processing"}])

    async def scenario() -> None:
        client = RunwareClient(
            "k-123",
            base_url=URL,
            transport=httpx.MockTransport(s),
            poll=PollPolicy(initial=0.01, maximum=0.01, minimum=0.01),
        )

        async def consume() -> None:
            async for _ in client.generate(GenerationRequest("two words", delivery_method="async")):
                pass

        job = asyncio.create_task(consume())
        await asyncio.sleep(0.1)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        n = len(s.posts)
        await asyncio.sleep(0.05)
        assert len(s.posts) == n  # nothing more is sent after cancelling
        await client.aclose()

    run(scenario())


def test_a_cancel_while_a_sync_answer_is_arriving_keeps_every_image_of_it() -> None:
    # The answer, with the three paid images, has begun to arrive when the person cancels:
    # it is received whole and every image handed over (it used to be cut off and lost).
    s = Script()
    stop = asyncio.Event()
    pieces: list[int] = []

    def answer(tasks: list[dict[str, Any]]) -> httpx.Response:
        body = json.dumps({"data": [item(tasks[0], i) for i in range(3)]}).encode()

        async def trickle() -> Any:
            for start in range(0, len(body), 2048):
                yield body[start : start + 2048]
                pieces.append(start)
                stop.set()
                await asyncio.sleep(0.002)

        return httpx.Response(200, content=trickle(), headers={"Content-Type": "application/json"})

    s.handlers.append(answer)

    async def scenario() -> list[str]:
        async with s.client() as client:
            with stop_waiting_when(stop):
                request = GenerationRequest("two words", number_results=3, delivery_method="sync")
                return [image.image_uuid async for image in client.generate(request)]

    assert run(scenario()) == [str(uuid.UUID(int=i + 1)) for i in range(3)]
    assert len(pieces) > 3  # it was still arriving, piece by piece, when the cancel came


def test_an_answer_that_goes_on_trickling_after_a_cancel_is_given_up_within_its_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from krea_desktop.api import client as client_module

    monkeypatch.setattr(client_module, "ARRIVING_AFTER_STOP_S", 0.3)
    s = Script()
    stop = asyncio.Event()

    def answer(tasks: list[dict[str, Any]]) -> httpx.Response:
        async def trickle() -> Any:
            yield b'{"data": ['
            stop.set()
            while True:  # a byte now and then, never the whole answer
                await asyncio.sleep(0.05)
                yield b" "

        return httpx.Response(200, content=trickle(), headers={"Content-Type": "application/json"})

    s.handlers.append(answer)

    async def scenario() -> float:
        async with s.client() as client:
            started = time.monotonic()
            with stop_waiting_when(stop), pytest.raises(asyncio.CancelledError):
                async for _ in client.generate(GenerationRequest("two words", delivery_method="sync")):
                    pass
            return time.monotonic() - started

    assert run(scenario()) < 2.0  # not the job's whole time


def test_a_stop_set_before_the_request_ends_it_at_once_leaving_no_coroutine_unawaited() -> None:
    import gc
    import warnings

    s = Script()
    s.default = lambda tasks: ok([])

    async def scenario() -> None:
        stop = asyncio.Event()
        stop.set()
        async with s.client() as client:
            with stop_waiting_when(stop), pytest.raises(asyncio.CancelledError):
                async for _ in client.generate(GenerationRequest("two words", delivery_method="sync")):
                    pass

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(scenario())
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]
    assert s.posts == []  # nothing was sent


def test_the_key_is_only_sent_over_https_or_to_loopback() -> None:
    assert check_endpoint("https://api.runware.ai/v1")
    assert check_endpoint("http://127.0.0.1:8765/v1")
    assert check_endpoint("http://localhost:1/v1")
    assert check_endpoint("http://[::1]:1/v1")
    for bad in ("http://api.runware.ai/v1", "http://192.168.1.5/v1", "ftp://x", "api.runware.ai"):
        with pytest.raises(E.ValidationError):
            check_endpoint(bad)


def test_the_key_never_appears_in_repr_or_errors() -> None:
    s = Script()
    s.default = lambda t: httpx.Response(401, json={"errors": [{"code": "invalidApiKey", "message": "k-123 bad"}]})
    client = s.client()
    assert "k-123" not in repr(client)
    with pytest.raises(E.AuthenticationError) as info:
        run(collect(client, GenerationRequest("two words")))
    assert "k-123" not in str(info.value)


def test_test_key_uses_the_authentication_task() -> None:
    s = Script()
    s.default = lambda t: ok([{"taskType": "authentication", "connectionSessionUUID": "x"}])
    client = s.client()
    run(client.test_key())
    assert s.posts[0] == [{"taskType": "authentication", "apiKey": "k-123"}]
    s.default = lambda t: httpx.Response(401, text="")
    with pytest.raises(E.AuthenticationError):
        run(client.test_key())


def test_damaged_image_data_is_fetched_again_once() -> None:
    s = Script()

    def damaged(tasks: list[dict[str, Any]]) -> httpx.Response:
        it = item(tasks[0], 0)
        it["imageBase64Data"] = it["imageBase64Data"][:-400]
        return ok([it, item(tasks[0], 1)])

    s.handlers.append(damaged)
    s.default = lambda tasks: ok([item(s.posts[0][0], 0), item(s.posts[0][0], 1)])
    images = run(collect(s.client(), GenerationRequest("two words", number_results=2)))
    assert sorted(im.seed for im in images) == [1000, 1001]
    assert s.task_types() == ["imageInference", "getResponse"]


def test_conflict_for_a_task_the_service_cannot_show_is_resubmitted_under_a_new_uuid() -> None:
    s = Script()
    s.handlers.append(lambda t: httpx.Response(400, json={"errors": [{"code": "conflictTaskUUID"}]}))
    s.handlers.append(lambda t: httpx.Response(400, json={"errors": [{"code": "taskFailedOrNotFound"}]}))
    s.default = lambda tasks: ok([item(tasks[0], 0)])
    images = run(collect(s.client(), GenerationRequest("two words")))
    assert len(images) == 1
    assert s.task_types() == ["imageInference", "getResponse", "imageInference"]
    assert s.posts[0][0]["taskUUID"] != s.posts[2][0]["taskUUID"]
    assert images[0].task_uuid == s.posts[2][0]["taskUUID"]


def test_a_conflict_for_a_task_this_run_sent_is_never_paid_for_a_second_time() -> None:
    """The answer to the task lost, the service not showing it, it was sent again under the
    same ID; the conflict that came back was taken for another task's, and the task sent
    a third time under a new ID: two tasks paid for, neither collected. A conflict for an
    ID this run sent says the service has it: it is asked after, and the task kept."""
    s = Script()
    not_found = httpx.Response(400, json={"errors": [{"code": "taskFailedOrNotFound"}]})
    s.handlers.append(lambda t: (_ for _ in ()).throw(httpx.ReadTimeout("the answer never came")))
    s.handlers.append(lambda t: not_found)  # getResponse: a sync task it does not show
    s.handlers.append(lambda t: httpx.Response(400, json={"errors": [{"code": "conflictTaskUUID"}]}))
    s.default = lambda t: not_found
    with pytest.raises(E.ServiceTimeoutError, match="has this task") as ended:
        run(collect(s.client(retry=RetryPolicy(attempts=4)), GenerationRequest("two words")))
    sent = [task["taskUUID"] for tasks in s.posts for task in tasks if task["taskType"] == "imageInference"]
    assert len(sent) == 2 and len(set(sent)) == 1  # sent again under its own ID, never under another
    assert ended.value.task_accepted and E.may_collect_later(ended.value)  # its record kept for later


# --- retries that must not lose work, and polls that must not hammer the service ----------------


@pytest.mark.parametrize(
    "lost",
    [
        lambda t: (_ for _ in ()).throw(httpx.ReadError("connection reset")),
        lambda t: httpx.Response(502, text="bad gateway"),
    ],
)
def test_an_upload_whose_answer_was_lost_is_sent_again_under_a_new_task_uuid(
    lost: Callable[[list[dict[str, Any]]], httpx.Response],
) -> None:
    # The first attempt may have reached the service, which refuses a taskUUID it has seen.
    s = Script()
    known: set[str] = set()

    def remember_then_lose(tasks: list[dict[str, Any]]) -> httpx.Response:
        known.add(tasks[0]["taskUUID"])
        return lost(tasks)

    def answer(tasks: list[dict[str, Any]]) -> httpx.Response:
        t = tasks[0]
        if t["taskUUID"] in known:
            return httpx.Response(400, json={"errors": [{"code": "conflictTaskUUID", "taskUUID": t["taskUUID"]}]})
        return ok([{"taskType": "imageUpload", "taskUUID": t["taskUUID"], "imageUUID": str(uuid.UUID(int=77))}])

    s.handlers.append(remember_then_lose)
    s.default = answer

    async def scenario() -> str:
        client = s.client()
        try:
            return await client.upload(png(32, 32))
        finally:
            await client.aclose()

    assert run(scenario()) == str(uuid.UUID(int=77))
    assert s.task_types() == ["imageUpload", "imageUpload"]
    assert s.posts[0][0]["taskUUID"] != s.posts[1][0]["taskUUID"]
    assert s.posts[0][0]["image"] == s.posts[1][0]["image"]


def busy(retry_after: str) -> Callable[[list[dict[str, Any]]], httpx.Response]:
    return lambda tasks: httpx.Response(429, headers={"Retry-After": retry_after}, json={"errors": [{"code": "x"}]})


def test_a_task_refused_as_busy_for_longer_than_the_policy_waits_says_so_at_once() -> None:
    """Asked to wait 28 hours, the task was tried again every 120 s five times, then said
    "try again in a moment"."""
    s = Script()
    s.default = busy("100000")
    with pytest.raises(E.ServiceBusyError) as refused:
        run(collect(s.client(), GenerationRequest("two words")))
    assert str(refused.value) == "The service is busy and asks to be tried again in about 28 hours."
    assert refused.value.never_sent and s.task_types() == ["imageInference"] and s.sleeps == []


def test_a_long_busy_wait_after_a_sending_that_may_have_arrived_keeps_the_task_to_collect() -> None:
    """The first sending's answer lost and the service not showing the task, the second
    met 'busy for an hour': said at once, but as a task that may be with the service (its
    note kept), not as one never sent (its note dropped, its images never collected)."""
    s = Script()
    not_found = httpx.Response(400, json={"errors": [{"code": "taskFailedOrNotFound"}]})
    s.handlers.append(lambda t: (_ for _ in ()).throw(httpx.ReadTimeout("the answer never came")))
    s.handlers.append(lambda t: not_found)
    s.default = busy("3600")
    with pytest.raises(E.ServiceBusyError) as refused:
        run(collect(s.client(), GenerationRequest("two words")))
    assert not refused.value.never_sent and E.may_collect_later(refused.value)


@pytest.mark.parametrize(("retry_after", "waited"), [("25", 25.0), ("600", 120.0)])
def test_a_poll_refused_as_busy_waits_as_long_as_the_service_asked(retry_after: str, waited: float) -> None:
    # Longer than the polls' own longest interval; beyond the retry policy's cap, the cap.
    s = Script()
    first: dict[str, Any] = {}
    s.handlers.append(
        lambda tasks: (first.update(tasks[0]), ok([{"taskUUID": tasks[0]["taskUUID"], "status": "processing"}]))[1]
    )
    s.handlers.append(busy(retry_after))
    s.default = lambda tasks: ok([item(first, 0, status="success")])
    images = run(collect(s.client(), GenerationRequest("two words", delivery_method="async")))
    assert len(images) == 1
    assert s.task_types() == ["imageInference", "getResponse", "getResponse"]
    assert s.sleeps[-1] == waited


@pytest.mark.parametrize("status", [404, 409, 400])
def test_a_bare_client_error_while_polling_is_asked_again_and_the_images_still_come(status: int) -> None:
    s = Script()
    first: dict[str, Any] = {}
    s.handlers.append(
        lambda tasks: (first.update(tasks[0]), ok([{"taskUUID": tasks[0]["taskUUID"], "status": "processing"}]))[1]
    )
    s.handlers.append(lambda tasks: httpx.Response(status, text="Not here"))  # a proxy's page, not the service's
    s.default = lambda tasks: ok([item(first, 0, status="success"), item(first, 1, status="success")])
    images = run(collect(s.client(), GenerationRequest("two words", number_results=2, delivery_method="async")))
    assert len(images) == 2
    assert s.task_types() == ["imageInference", "getResponse", "getResponse"]


def test_a_task_whose_polls_keep_getting_bare_404s_is_kept_to_collect_later() -> None:
    s = Script()
    s.handlers.append(lambda tasks: ok([{"taskUUID": tasks[0]["taskUUID"], "status": "processing"}]))
    s.default = lambda tasks: httpx.Response(404)
    with pytest.raises(E.KreaError) as raised:
        run(collect(s.client(), GenerationRequest("two words", delivery_method="async")))
    assert E.may_collect_later(raised.value)  # the record of paid work is kept
    assert "does not offer" not in str(raised.value)


def test_a_refusal_naming_another_task_is_said_as_the_refusal_it_is() -> None:
    s = Script()
    s.default = lambda tasks: httpx.Response(
        400,
        json={"errors": [{"code": "invalidPositivePrompt", "message": "Too short", "taskUUID": str(uuid.uuid4())}]},
    )
    with pytest.raises(E.ValidationError, match=r"^The service refused a parameter: Too short\.$"):
        run(collect(s.client(), GenerationRequest("two words")))


def test_a_sync_item_that_failed_is_said_as_a_failure_not_as_missing_images() -> None:
    s = Script()
    s.default = lambda tasks: ok(
        [{"taskUUID": tasks[0]["taskUUID"], "status": "error", "code": "inferenceError", "message": "GPU fell over"}]
    )
    with pytest.raises(E.TaskError) as raised:
        run(collect(s.client(), GenerationRequest("two words")))
    assert "0 of" not in str(raised.value) and "failed while generating" in str(raised.value)


def test_an_item_that_failed_beside_others_still_being_made_leaves_them_to_be_polled_for() -> None:
    s = Script()
    first: dict[str, Any] = {}
    failed = {"status": "error", "code": "inferenceError", "message": "GPU fell over"}

    def submit(tasks: list[dict[str, Any]]) -> httpx.Response:
        first.update(tasks[0])
        t = tasks[0]["taskUUID"]
        return ok([item(tasks[0], 0), {"taskUUID": t, "status": "processing"}, {"taskUUID": t, **failed}])

    s.handlers.append(submit)
    s.default = lambda tasks: ok([item(first, 0), item(first, 1), {"taskUUID": first["taskUUID"], **failed}])
    got: list[Any] = []

    async def scenario() -> None:
        client = s.client()
        try:
            async for image in client.generate(GenerationRequest("two words", number_results=3)):
                got.append(image)
        finally:
            await client.aclose()

    with pytest.raises(E.TaskError) as raised:
        run(scenario())
    assert len(got) == 2 and s.task_types() == ["imageInference", "getResponse"]
    assert str(raised.value) == (
        "The service returned 2 of 3 images; the rest failed: "
        "the service failed while generating the images; try again."
    )


def test_a_task_the_service_has_but_stays_too_busy_to_show_is_kept_to_collect_later() -> None:
    s = Script()
    s.handlers.append(lambda tasks: ok([{"taskUUID": tasks[0]["taskUUID"], "status": "processing"}]))
    s.default = busy("1")  # every getResponse
    # The library API's caller is told how; the window and the command line collect it themselves.
    with pytest.raises(
        E.ServiceTimeoutError,
        match=r"^The service is busy right now \(6 times in a row\); the task's images can be collected later with "
        r"RunwareClient\.collect\(\)\.$",
    ) as raised:
        run(collect(s.client(), GenerationRequest("two words", delivery_method="async")))
    assert isinstance(raised.value, E.COLLECT_LATER)  # what the window and the command keep the task for
    assert as_the_app_says(raised.value) == (
        "The service is busy right now (6 times in a row); the task's images are collected later."
    )
    assert s.task_types()[0] == "imageInference" and set(s.task_types()[1:]) == {"getResponse"}


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (lambda: httpx.Response(200, text="<html>Sign in to the hotel's network</html>"), E.MalformedResponseError),
        (lambda: httpx.Response(401, json={"errors": [{"code": "invalidApiKey", "message": "Invalid key"}]}),
         E.AuthenticationError),
        (lambda: httpx.Response(402, json={"errors": [{"code": "insufficientCredits", "message": "No credit"}]}),
         E.InsufficientCreditsError),
    ],
    ids=["a portal's page", "key revoked", "credit ran out"],
)  # fmt: skip
def test_a_failure_while_following_an_accepted_task_keeps_it_to_collect_later(
    answer: Callable[[], httpx.Response], error: type[E.KreaError]
) -> None:
    """The service accepted the task and is making (and charging for) its images: a page
    that is not its answer, or a key refused while polling, says nothing of the task."""
    s = Script()
    s.handlers.append(lambda tasks: ok([{"taskUUID": tasks[0]["taskUUID"], "status": "processing"}]))
    s.default = lambda tasks: answer()
    with pytest.raises(error) as raised:
        run(collect(s.client(), GenerationRequest("two words", delivery_method="async")))
    assert raised.value.task_accepted and E.may_collect_later(raised.value)


def test_a_failure_asking_after_a_lost_answer_or_collecting_keeps_the_task() -> None:
    """The lost answer may have been the task's acceptance; a task sent by an earlier run
    was accepted: a portal's page in either says nothing of the task."""
    portal = lambda tasks: httpx.Response(200, text="<html>Sign in</html>")  # noqa: E731
    s = Script()
    s.handlers.append(lambda tasks: (_ for _ in ()).throw(httpx.ReadError("connection reset")))
    s.default = portal
    with pytest.raises(E.MalformedResponseError) as asked:
        run(collect(s.client(), GenerationRequest("two words", delivery_method="async")))
    assert E.may_collect_later(asked.value)

    later = Script()
    later.default = portal
    client = later.client()
    request = GenerationRequest("two words", delivery_method="async")

    async def collect_earlier() -> list[Any]:
        try:
            return [im async for im in client.collect(request, sent_record(request, []), set())]
        finally:
            await client.aclose()

    with pytest.raises(E.MalformedResponseError) as collecting:
        run(collect_earlier())
    assert E.may_collect_later(collecting.value)


def test_a_task_refused_or_never_sent_is_not_kept() -> None:
    s = Script()
    s.default = lambda tasks: httpx.Response(401, json={"errors": [{"code": "invalidApiKey", "message": "Invalid"}]})
    with pytest.raises(E.AuthenticationError) as refused:
        run(collect(s.client(), GenerationRequest("two words", delivery_method="async")))
    assert not E.may_collect_later(refused.value)  # refused at the door: nothing was made

    nowhere = Script()
    nowhere.default = lambda tasks: (_ for _ in ()).throw(httpx.ConnectError("connection refused"))
    with pytest.raises(E.NetworkError) as unsent:
        run(collect(nowhere.client(), GenerationRequest("two words", delivery_method="async")))
    assert unsent.value.never_sent and not E.may_collect_later(unsent.value)
    assert set(nowhere.task_types()) == {"imageInference"}

    lost = Script()  # the answer lost, then no word: the task may be with the service
    lost.default = lambda tasks: (_ for _ in ()).throw(httpx.ReadError("connection reset"))
    with pytest.raises(E.KreaError) as ambiguous:
        run(collect(lost.client(), GenerationRequest("two words", delivery_method="async")))
    assert E.may_collect_later(ambiguous.value)


def test_values_of_an_answer_no_image_can_carry_keep_the_image_without_them(tmp_path: Path) -> None:
    """An imageUUID that cannot name a file, a seed beyond the model's, a cost of hundreds
    of digits: the images are kept (and saved), without what cannot be used."""
    from krea_desktop.library.store import Library

    s = Script()
    odd = [("../../x", 2**63, 10**400), (["a"], -5, -0.5), ("0f0e-ok_1", 7, 0.0045)]
    s.default = lambda tasks: ok(
        [item(tasks[0], i, imageUUID=u, seed=seed, cost=cost) for i, (u, seed, cost) in enumerate(odd)]
    )
    images = run(collect(s.client(), GenerationRequest("two words", number_results=3)))
    assert [(im.seed, im.cost) for im in images] == [(None, None), (None, None), (7, 0.0045)]
    names = [im.image_uuid for im in images]
    assert names[2] == "0f0e-ok_1"
    assert all(re.fullmatch(r"[0-9a-f-]{36}", n) for n in names[:2]) and names[0] != names[1]
    again = run(collect(s.client(), GenerationRequest("two words", number_results=3)))
    assert [im.image_uuid for im in again] == names  # the same name each time it comes
    with Library(tmp_path) as lib:
        saved = [lib.save(im) for im in images]
        assert all(e.path.parent == lib.images_dir for e in saved) and lib.count() == 3


@pytest.mark.parametrize("key", ["\u201ck-123\u201d", "k-\u00a0123", "k\u200b-123"])
def test_a_key_no_request_could_carry_is_refused_before_anything_is_sent(key: str) -> None:
    """Curly quotes or a non-breaking space pasted with it: an HTTP header takes ASCII only."""
    s = Script()
    client = RunwareClient(key, base_url=URL, transport=httpx.MockTransport(s))
    with pytest.raises(E.AuthenticationError, match=r"^The API key has characters no API key has .*\.$"):
        run(collect(client, GenerationRequest("two words")))
    with pytest.raises(E.AuthenticationError, match=r"^The API key has characters no API key has .*\.$"):
        run(RunwareClient(key, base_url=URL, transport=httpx.MockTransport(s)).test_key())  # Settings' "Test key"
    assert s.posts == []


def test_an_answer_nested_beyond_reason_is_malformed_not_a_crash() -> None:
    s = Script()
    s.default = lambda tasks: httpx.Response(200, content=b'{"data": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")
    with pytest.raises(E.MalformedResponseError, match="not valid JSON"):
        run(collect(s.client(), GenerationRequest("two words")))


def test_asking_after_a_lost_answer_waits_as_long_as_the_service_asked() -> None:
    s = Script()
    s.handlers.append(lambda tasks: (_ for _ in ()).throw(httpx.ReadError("connection reset")))
    s.handlers.append(busy("7"))
    s.default = lambda tasks: ok([item(s.posts[0][0], 0)])
    images = run(collect(s.client(), GenerationRequest("two words")))
    assert len(images) == 1
    assert s.task_types() == ["imageInference", "getResponse", "getResponse"]
    assert s.sleeps == [7.0]


def test_asking_after_a_lost_answer_stops_when_the_service_asks_for_longer_than_is_left() -> None:
    s = Script()
    s.handlers.append(lambda tasks: (_ for _ in ()).throw(httpx.ReadError("connection reset")))
    s.default = busy("60")
    # The task may be with the service: a wait that ran out, which is kept and asked about later.
    with pytest.raises(
        E.ServiceTimeoutError, match=r"^The service is busy right now; it may have received the task\.$"
    ) as raised:
        run(collect(s.client(probe_budget=45.0), GenerationRequest("two words")))
    said = as_the_app_says(raised.value)
    assert said == "The service is busy right now; whether it received the task is asked again later."
    assert s.task_types() == ["imageInference", "getResponse"]
    assert s.sleeps == []


class Clock:
    """Monotonic time that only the client's sleeps move on."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return time.time()


def clocked(s: Script, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> RunwareClient:
    """A client of ``s`` with the default poll policy, on ``clock``."""
    from krea_desktop.api import client as client_module

    monkeypatch.setattr(client_module, "time", clock)

    async def sleep(seconds: float) -> None:
        s.sleeps.append(seconds)
        clock.now += seconds
        await asyncio.sleep(0)

    return RunwareClient("k-123", base_url=URL, transport=httpx.MockTransport(s), sleep=sleep)


def batch_state(task_uuid: str, done: int, n: int) -> httpx.Response:
    finished = [item({"taskUUID": task_uuid}, i, status="success") for i in range(done)]
    return ok(finished + [{"taskUUID": task_uuid, "status": "processing"}] * (n - done))


def test_image_data_is_not_polled_for_again_and_again_while_the_last_image_is_late(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 19 of 20 finish together 2 s in, the last at 6 s: every poll from 2 s on carries 19
    # images again, so once the pace so far has been proved wrong the polls back off.
    s, clock, n = Script(), Clock(), 20
    started: dict[str, float] = {}
    heavy: list[float] = []

    def answer(tasks: list[dict[str, Any]]) -> httpx.Response:
        t = tasks[0]
        if t["taskType"] == "imageInference":
            started["at"] = clock.now
            return ok([{"taskUUID": t["taskUUID"], "status": "processing"}])
        waited = clock.now - started["at"]
        done = n if waited >= 6.0 else n - 1 if waited >= 2.0 else 0
        if done:
            heavy.append(waited)
        return batch_state(t["taskUUID"], done, n)

    s.default = answer
    images = run(
        collect(
            clocked(s, clock, monkeypatch), GenerationRequest("two words", number_results=n, delivery_method="async")
        )
    )
    assert len(images) == n
    assert heavy[0] <= 2.0 * PollPolicy().factor  # the first images still come about as soon as they are made
    assert len(heavy) <= 5, heavy


def test_collecting_paces_its_polls_by_the_images_of_this_run_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # 19 of 20 were received before a restart; the last is finished 5 s after collecting starts.
    s, clock, n = Script(), Clock(), 20
    request = GenerationRequest("two words", number_results=n, delivery_method="async")
    start = clock.now
    s.default = lambda tasks: batch_state(request.task_uuid, n if clock.now - start >= 5.0 else n - 1, n)
    received = {str(uuid.UUID(int=i + 1)) for i in range(n - 1)}

    async def go() -> list[Any]:
        client = clocked(s, clock, monkeypatch)
        try:
            return [img async for img in client.collect(request, sent_record(request, []), received)]
        finally:
            await client.aclose()

    images = run(go())
    assert [im.image_uuid for im in images] == [str(uuid.UUID(int=n))]
    assert len(s.posts) <= 10, s.sleeps


def test_with_image_data_the_end_predicted_by_the_pace_is_polled_for_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # One image a second: the poll predicted for the end comes at the end, but once it has
    # found the last image still missing, the next waits as the policy backs off.
    clock = Clock()
    monkeypatch.setattr("krea_desktop.api.client.time", clock)
    request = GenerationRequest("two words", number_results=20, delivery_method="async")
    ctx = _Context(request, set(), sent_record(request, []), submitted_at=clock.now)
    ctx.polls, ctx.seen_count = 20, 19
    ctx.polled_at = ctx.progress_at = clock.now + 19.0
    clock.now += 19.0
    client = RunwareClient("k", base_url=URL)
    predicted = client._poll_delay(ctx, 0)
    assert predicted == pytest.approx(1.1)  # the last image's time, and a tenth more
    clock.now += predicted
    ctx.polled_at = clock.now  # that poll brought nothing
    assert client._poll_delay(ctx, 0) == client.poll.maximum


class ImageHost(Script):
    """A fake service whose image is downloaded from a host that answers its n-th GET
    (from 0) with ``download(n)``."""

    def __init__(self, download: Callable[[int], httpx.Response]) -> None:
        super().__init__()
        self.download = download
        self.gets = 0
        self.default = lambda tasks: ok(
            [{"taskUUID": tasks[0]["taskUUID"], "imageUUID": IMAGE_UUID, "imageURL": "https://im.example.test/9.png"}]
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method != "GET":
            return super().__call__(request)
        self.gets += 1
        return self.download(self.gets - 1)


IMAGE_UUID = str(uuid.UUID(int=9))


@pytest.mark.parametrize("status", [429, 503])
def test_an_image_host_busy_for_a_moment_is_asked_again_as_it_said(status: int) -> None:
    s = ImageHost(
        lambda n: (
            httpx.Response(status, headers={"Retry-After": "4"}, content=b"busy")
            if n < 2
            else httpx.Response(200, content=png(1024, 1024))
        )
    )
    images = run(collect(s.client(), GenerationRequest("two words", output_type="URL")))
    assert [im.image_uuid for im in images] == [IMAGE_UUID]
    assert s.gets == 3 and s.sleeps == [4.0, 4.0]


def test_an_image_host_that_stays_busy_fails_in_a_way_that_can_be_collected_later() -> None:
    s = ImageHost(lambda n: httpx.Response(503, content=b"busy"))
    with pytest.raises(E.NetworkError) as raised:
        run(collect(s.client(retry=RetryPolicy(attempts=3)), GenerationRequest("two words", output_type="URL")))
    assert isinstance(raised.value, E.COLLECT_LATER)
    assert str(raised.value).count(".") == 1 and "HTTP 503" in str(raised.value)
    assert s.gets == 3 and s.task_types() == ["imageInference"]


def test_a_poll_sent_before_the_predicted_end_does_not_stand_for_the_poll_at_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr("krea_desktop.api.client.time", clock)
    request = GenerationRequest("two words", number_results=20, delivery_method="async")
    start = clock.now
    ctx = _Context(request, set(), sent_record(request, []), submitted_at=start)
    ctx.polls, ctx.seen_count = 20, 19
    ctx.progress_at = start + 19.0  # 19 images in 19 s: the last one due about 1 s later
    ctx.polled_at = start + 19.4  # a poll sent before that end brought nothing new...
    clock.now = start + 20.2  # ...and its answer (every image again) took 0.8 s to come
    client = RunwareClient("k", base_url=URL)
    # No poll has been sent at the end yet: the next one goes now, not after a back-off.
    assert client._poll_delay(ctx, 0) <= client.poll.minimum
    # One sent at the end that brings nothing: the polls back off.
    ctx.polled_at = start + 20.2
    clock.now = start + 20.5
    assert client._poll_delay(ctx, 0) > 2.0


class UrlService(Script):
    """A fake service that answers with one image at ``url``, downloaded from a host that
    answers every GET with ``download(request)``."""

    def __init__(self, url: str, download: Callable[[httpx.Request], httpx.Response]) -> None:
        super().__init__()
        self.download = download
        self.got: list[httpx.Request] = []
        self.default = lambda tasks: ok([{"taskUUID": tasks[0]["taskUUID"], "imageUUID": IMAGE_UUID, "imageURL": url}])

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method != "GET":
            return super().__call__(request)
        self.got.append(request)
        return self.download(request)


def one_sentence_error(s: Script, request: GenerationRequest) -> E.KreaError:
    with pytest.raises(E.KreaError) as raised:
        run(collect(s.client(retry=RetryPolicy(attempts=2)), request))
    text = str(raised.value)
    assert text.endswith(".") and text.count(". ") == 0, text
    return raised.value


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1/x.png",  # a bracket left open
        "http://127.0.0.1:99999/x.png",  # a port out of range
        "http://127.0.0.1:-1/x.png",
        "http://127.0.0.1:abc/x.png",
        "http://127.0.0.1/x\x00.png",
    ],
)
def test_an_image_url_that_cannot_be_asked_is_a_sentence_and_nothing_is_fetched(url: str) -> None:
    s = UrlService(url, lambda request: httpx.Response(200, content=png(1024, 1024)))
    err = one_sentence_error(s, GenerationRequest("two words", output_type="URL"))
    assert isinstance(err, E.MalformedResponseError) and "image URL that cannot be used" in str(err)
    assert s.got == []


def test_an_image_is_asked_for_uncompressed_and_a_compressed_one_is_refused_before_it_is_inflated() -> None:
    """A compressed body is inflated whole before its size can be held to the download
    limit: a small bomb would take gigabytes. The image is asked for as it is; sent
    compressed all the same (a damaged one, here), it is refused in one sentence."""
    host = "https://im.example.test/9.png"
    bomb = gzip.compress(bytes(64 * 2**20))  # 64 KB that inflate to the whole limit
    s = UrlService(
        host, lambda request: httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(bomb))
    )
    err = one_sentence_error(s, GenerationRequest("two words", output_type="URL"))
    assert isinstance(err, E.MalformedResponseError) and "compressed" in str(err)
    assert s.got and all(r.headers["Accept-Encoding"] == "identity" for r in s.got)


def test_image_data_with_an_escape_json_has_not_is_fetched_again_then_a_sentence() -> None:
    s = Script()

    def answer(tasks: list[dict[str, Any]]) -> httpx.Response:
        data = item(tasks[0], 0)["imageBase64Data"]
        body = '{"data":[{"taskType":"imageInference","taskUUID":"%s","imageUUID":"%s","imageBase64Data":"%s"}]}'
        bad = data[:100] + "\\q" + data[100:]
        return httpx.Response(200, content=(body % (tasks[0]["taskUUID"], IMAGE_UUID, bad)).encode())

    s.default = answer
    err = one_sentence_error(s, GenerationRequest("two words"))
    assert isinstance(err, E.MalformedResponseError) and "not valid base64" in str(err)
    assert len(s.posts) > 1  # fetched again before giving up


def test_a_damaged_image_the_service_then_leaves_out_ends_the_job_after_two_more_answers() -> None:
    """The first answer has two images, one damaged; every poll after it has the good one
    alone and nothing in the making: the whole state, without the image to fetch again. It
    was polled for until the job's time ran out (15 minutes, saying nothing)."""
    s = Script()
    first: dict[str, Any] = {}

    def answer(tasks: list[dict[str, Any]]) -> httpx.Response:
        task = first.setdefault("task", tasks[0])
        good, damaged = item(task, 0), item(task, 1, imageBase64Data="!!!notbase64!!!")
        return ok([good, damaged] if tasks[0]["taskType"] == "imageInference" else [good])

    s.default = answer
    got: list[Any] = []

    async def follow() -> None:
        client = s.client()
        try:
            async for image in client.generate(GenerationRequest("two words", number_results=2)):
                got.append(image)
        finally:
            await client.aclose()

    with pytest.raises(E.MalformedResponseError, match="not valid base64"):
        run(asyncio.wait_for(follow(), 30))
    assert [image.index for image in got] == [0]  # the good one, handed over before the end
    assert s.task_types() == ["imageInference", "getResponse", "getResponse"]


def test_an_answer_too_large_to_read_keeps_a_sent_task_to_collect_later() -> None:
    """A 200 larger than any answer could be: the service took the task (and charged for
    it), so it is followed and kept, not dropped as never sent."""
    s = Script()
    s.handlers.append(lambda tasks: httpx.Response(200, content=b" " * (60 * 2**20)))
    s.default = lambda tasks: ok([])  # the task, asked after, shows nothing yet
    with pytest.raises(E.KreaError) as raised:
        run(collect(s.client(job_timeout=0.5), GenerationRequest("two words")))
    assert raised.value.task_accepted and isinstance(raised.value, E.COLLECT_LATER)
    assert s.task_types()[0] == "imageInference" and "getResponse" in s.task_types()


@pytest.mark.parametrize("status", [301, 302, 307])
def test_an_address_that_redirects_says_so_rather_than_that_no_image_came(status: int) -> None:
    s = Script()
    s.default = lambda tasks: httpx.Response(status, headers={"Location": "https://portal.example/login?x=1"})
    err = one_sentence_error(s, GenerationRequest("two words"))
    assert isinstance(err, E.NetworkError)
    assert f"HTTP {status} to portal.example" in str(err) and "login" not in str(err)
    # It never reached the service: nothing to collect later, and not sent again.
    assert err.never_sent and not E.may_collect_later(err)
    assert s.task_types() == ["imageInference"]


@pytest.mark.parametrize(("flag", "nsfw"), [(True, True), (False, False), ("false", None), (1, None), (None, None)])
def test_only_a_true_or_false_nsfw_flag_is_taken(flag: Any, nsfw: bool | None) -> None:
    s = Script()
    s.default = lambda tasks: ok([item(tasks[0], 0, NSFWContent=flag)])
    images = run(collect(s.client(), GenerationRequest("two words")))
    assert images[0].nsfw is nsfw


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_reference_that_is_a_pipe_or_a_device_is_refused_at_once(tmp_path: Path) -> None:
    """The library API's own reading of a Path: a FIFO waited forever for a writer, and
    /dev/zero was read until memory ran out."""
    fifo = tmp_path / "ref.png"
    os.mkfifo(fifo)
    sources = [fifo] + ([Path("/dev/zero")] if Path("/dev/zero").exists() else [])
    for source in sources:
        s = Script()
        request = GenerationRequest("two words", references=(ReferenceImage(source, 1.0),))
        outcome: list[BaseException] = []

        def generate(
            s: Script = s, request: GenerationRequest = request, outcome: list[BaseException] = outcome
        ) -> None:
            try:
                run(collect(s.client(), request))
            except BaseException as exc:
                outcome.append(exc)

        worker = threading.Thread(target=generate, daemon=True)
        worker.start()
        worker.join(10)
        if worker.is_alive() and source == fifo:  # a writer ends the wait, so that the test ends too
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            worker.join(10)
        assert len(outcome) == 1 and isinstance(outcome[0], E.ValidationError), (source, outcome)
        assert str(outcome[0]).endswith("is not a file (a pipe or a device), so it holds no image.")
        assert s.posts == []


@pytest.mark.parametrize("as_text", [False, True])
def test_a_folder_given_as_a_reference_is_called_a_folder(tmp_path: Path, as_text: bool) -> None:
    """Given as text, it was said that no file of that name exists."""
    s = Script()
    request = GenerationRequest("two words", references=(ReferenceImage(str(tmp_path) if as_text else tmp_path),))
    with pytest.raises(E.ValidationError, match=f"^Reference 1 \\({tmp_path.name}\\) is a folder, not an image\\.$"):
        run(collect(s.client(), request))
    assert s.posts == []


class Trickle(httpx.AsyncByteStream):
    """A body that sends a byte, then waits, then another: within any read's timeout."""

    def __init__(self, data: bytes, every: float = 0.05) -> None:
        self.data, self.every = data, every

    async def __aiter__(self) -> Any:
        for i in range(len(self.data)):
            yield self.data[i : i + 1]
            await asyncio.sleep(self.every)


def test_an_image_trickling_in_is_given_up_within_the_jobs_time() -> None:
    s = UrlService("https://im.example.test/9.png", lambda request: httpx.Response(200, stream=Trickle(png(64, 64))))
    started = time.monotonic()
    with pytest.raises(
        E.NetworkError, match=r"^Downloading a finished image did not end within the job's 0.5 s; check"
    ):
        run(collect(s.client(job_timeout=0.5), GenerationRequest("two words", output_type="URL")))
    assert time.monotonic() - started < 10  # it trickles on for ever


def test_an_answer_trickling_in_is_given_up_and_the_task_kept_to_collect() -> None:
    s = Script()
    s.default = lambda tasks: httpx.Response(200, stream=Trickle(json.dumps({"data": [item(tasks[0], 0)]}).encode()))
    started = time.monotonic()
    with pytest.raises(E.ServiceTimeoutError, match=r"did not arrive whole within the job's 0.5 s") as raised:
        run(collect(s.client(job_timeout=0.5), GenerationRequest("two words")))
    # The job's time bounds the job: the questions after the lost answer get what is left.
    assert raised.value.task_accepted and time.monotonic() - started < 10  # each question may wait 20 s


@pytest.mark.parametrize("references", [ReferenceImage("r.png", 1.0), "r.png"])
def test_references_given_alone_rather_than_in_a_list_are_refused_in_one_sentence(references: Any) -> None:
    """A ReferenceImage given alone ended in a TypeError, and a path was counted letter by
    letter ("has 5 images, but at most 10 are allowed"): every failure is a KreaError."""
    s = Script()
    request = GenerationRequest("two words", references=references)
    with pytest.raises(E.ValidationError, match=r"must be a list of ReferenceImage\(image, strength\), even for one"):
        run(collect(s.client(), request))
    assert s.posts == []


def test_a_key_that_is_not_text_is_refused_in_one_sentence() -> None:
    with pytest.raises(E.AuthenticationError, match=r"^The API key must be text"):
        RunwareClient(123, base_url=URL)  # type: ignore[arg-type]


@pytest.mark.parametrize("body", [b"", b"null", b"[]", b"{}"])
def test_an_answer_with_nothing_in_it_is_said_to_be_malformed_not_short_of_images(body: bytes) -> None:
    s = Script()
    s.default = lambda tasks: httpx.Response(200, content=body)
    err = one_sentence_error(s, GenerationRequest("two words", number_results=2))
    assert isinstance(err, E.MalformedResponseError)
    assert str(err) == "The service sent an answer with no image and no error in it."


def test_the_task_is_said_sent_when_its_own_body_has_gone_not_a_proxys_connect() -> None:
    # Through an HTTPS proxy, httpcore traces the CONNECT it sends first with the
    # request's own extensions: that body going out says nothing of the task.
    import httpcore

    from krea_desktop.api.client import _when_sent

    said: list[str] = []
    trace = _when_sent(lambda: said.append("sent"))
    connect = httpcore.Request("CONNECT", "http://proxy:3128")
    post = httpcore.Request("POST", "https://api.example/v1")

    async def events() -> None:
        for request in (connect, post):
            await trace("http11.send_request_headers.started", {"request": request})
            await trace("http11.send_request_body.started", {"request": request})
            await trace("http11.send_request_body.complete", {"return_value": None})
            said.append(request.method.decode())

    asyncio.run(events())
    assert said == ["CONNECT", "sent", "POST"]


@pytest.mark.parametrize(
    "page",
    [
        "<!DOCTYPE html><html><head><title>Sign in to the network</title></head><body>...</body></html>",
        "\n  <html><body>It works!</body></html>",  # a web server at the address, no API
        '<?xml version="1.0"?><Error><Code>NoSuchKey</Code></Error>',
    ],
)
def test_a_web_page_in_answer_to_the_task_is_said_and_the_task_not_taken_for_sent(page: str) -> None:
    # The service never answers with a page: whatever did (a network's sign-in page, the
    # wrong address) did not take the task, so nothing is kept to collect and nothing is
    # asked after it; the person reads where to look, not "not valid JSON".
    s = Script()
    s.default = lambda tasks: httpx.Response(200, text=page, headers={"Content-Type": "text/html"})
    with pytest.raises(E.NetworkError) as raised:
        run(collect(s.client(), GenerationRequest("two words")))
    assert str(raised.value).startswith("The service's address answered with a web page")
    assert raised.value.never_sent and not E.may_collect_later(raised.value)
    assert s.task_types() == ["imageInference"]  # not asked again, not probed


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_a_second_cancel_that_comes_as_an_arriving_answer_ends_is_heard(turns: int) -> None:
    # The first Cancel lets an answer already arriving come whole (its images are paid
    # for); a second Cancel, or a quit, ends the job all the same, even when it comes in
    # the turn of the loop that answer ends: the job does not go on to download its images.
    from krea_desktop.api.client import _unless_stopped

    async def scenario() -> tuple[bool, list[str]]:
        loop = asyncio.get_running_loop()
        stop, arriving = asyncio.Event(), asyncio.Event()
        answer: asyncio.Future[str] = loop.create_future()
        went_on: list[str] = []

        async def exchange() -> str:
            arriving.set()  # the answer's head came
            return await answer

        async def job() -> None:
            with stop_waiting_when(stop):
                went_on.append(await _unless_stopped(exchange, unless=arriving))
                await asyncio.sleep(0.05)
                went_on.append("the images downloaded")

        task = asyncio.ensure_future(job())
        for _ in range(3):
            await asyncio.sleep(0)
        stop.set()  # the first Cancel: the arriving answer is waited for
        for _ in range(3):
            await asyncio.sleep(0)

        def after(left: int) -> None:
            if left > 1:
                loop.call_soon(after, left - 1)
            else:
                task.cancel()  # the second Cancel

        answer.set_result("the answer")
        loop.call_soon(after, turns)
        await asyncio.wait({task}, timeout=2)
        return task.cancelled(), went_on

    cancelled, went_on = run(scenario())
    assert cancelled
    assert "the images downloaded" not in went_on


@pytest.mark.parametrize("turns", [0, 1, 2])
def test_the_wait_python_3_10_uses_hears_a_cancel_that_comes_as_the_awaited_thing_ends(turns: int) -> None:
    # Python 3.10 has no asyncio.timeout; asyncio.wait_for there hands back the result and
    # drops a cancel that comes in the turn of the loop the awaited thing ends.
    from krea_desktop.api.client import _within_by_waiting

    async def scenario() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[str] = loop.create_future()
        accepted: list[bool] = []

        async def download() -> str:
            return await done

        waiting = asyncio.ensure_future(_within_by_waiting(download(), 5))
        await asyncio.sleep(0)

        def after(left: int) -> None:
            if left > 0:
                loop.call_soon(after, left - 1)
            else:
                accepted.append(waiting.cancel())  # refused once the wait has ended

        done.set_result("the image")
        loop.call_soon(after, turns)
        await asyncio.wait({waiting}, timeout=5)
        return accepted == [True], waiting.cancelled()

    accepted, cancelled = run(scenario())
    assert cancelled == accepted
    if turns < 2:
        assert accepted  # the cancel came as the download ended


def test_the_wait_python_3_10_uses_times_out_and_passes_results_and_errors_on() -> None:
    from krea_desktop.api.client import _within_by_waiting

    async def scenario() -> None:
        assert await _within_by_waiting(asyncio.sleep(0, "the image"), 5) == "the image"
        with pytest.raises(E.NetworkError):
            await _within_by_waiting(failing(), 5)
        slow = asyncio.ensure_future(asyncio.sleep(30))
        with pytest.raises(asyncio.TimeoutError):
            await _within_by_waiting(slow, 0.05)
        assert slow.cancelled()  # given up, not left running

    async def failing() -> None:
        raise E.NetworkError("The connection was lost.")

    run(scenario())

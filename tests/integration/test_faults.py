"""Every fault the simulator can inject, through the real client over loopback HTTP: each
ends in the complete result without a second submission, or in a clear error with the
images received so far kept."""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

import pytest
from PIL import Image

from krea_desktop.api import client as client_module
from krea_desktop.api import errors as E
from krea_desktop.api.client import PollPolicy, RetryPolicy, RunwareClient
from krea_desktop.api.request import GenerationRequest, ReferenceImage
from krea_desktop.simulator.faults import parse_fault
from krea_desktop.user_words import as_the_app_says
from tests.helpers.sim import Sim, free_port

FAST_RETRY = RetryPolicy(attempts=4, base=0.02, cap=0.1, retry_after_cap=0.2)
FAST_POLL = PollPolicy(initial=0.02, factor=1.5, maximum=0.1, minimum=0.01)


def client(sim: Sim, **kw: Any) -> RunwareClient:
    kw.setdefault("retry", FAST_RETRY)
    kw.setdefault("poll", FAST_POLL)
    kw.setdefault("timeout", 1.0)
    kw.setdefault("sync_timeout_per_image", 0.0)
    return RunwareClient("test-key", base_url=sim.url, **kw)


async def generate(c: RunwareClient, req: GenerationRequest) -> tuple[list[Any], E.KreaError | None]:
    got: list[Any] = []
    try:
        async for image in c.generate(req):
            got.append(image)
    except E.KreaError as err:
        return got, err
    finally:
        await c.aclose()
    return got, None


def submissions(sim: Sim) -> list[int]:
    return list(sim.service.submissions.values())


RECOVERED = [
    "429:retry-after=0.1",
    "429",
    "500",
    "502",
    "503x2",
    "504",
    "drop-before",
    "drop-after",
    "hang",
    "malformed-json",
    "bad-base64",
    "truncated-png",
    "wrong-size",
    "500:on=getResponse",
    "drop-before:on=getResponse",
    "hang:on=getResponse",
]


@pytest.mark.parametrize("fault", RECOVERED)
@pytest.mark.parametrize("delivery", ["sync", "async"])
def test_fault_ends_in_the_complete_result_submitted_once(sim: Sim, fault: str, delivery: str) -> None:
    sim.service.inject(parse_fault(fault))
    req = GenerationRequest("a harbour at dawn", number_results=3, seed=11, delivery_method=delivery)
    got, err = asyncio.run(generate(client(sim), req))
    if fault.endswith("on=getResponse") and delivery == "sync":
        assert [f.spec() for f in sim.service.faults] == [parse_fault(fault).spec()]  # never needed
    assert err is None, f"{fault}: {err}"
    assert sorted(im.seed for im in got) == [11, 12, 13]
    assert len({im.image_uuid for im in got}) == 3
    assert submissions(sim) == [1], "the task reached the service more than once"
    for im in got:
        with Image.open(io.BytesIO(im.data)) as pil:
            pil.load()
            assert pil.size == (1024, 1024)


@pytest.mark.parametrize(
    ("fault", "said"), [("504", "The service answered HTTP 504"), ("drop-after", "The answer was lost")]
)
def test_a_job_says_whether_the_answer_was_lost_or_was_an_http_status(sim: Sim, fault: str, said: str) -> None:
    # A 504 is an answer: "the answer was lost" told of a network that did not lose it.
    sim.service.inject(parse_fault(fault))
    statuses: list[str] = []

    async def go() -> int:
        async with client(sim) as c:
            return len([i async for i in c.generate(GenerationRequest("a harbour"), on_status=statuses.append)])

    assert asyncio.run(go()) == 1
    assert f"{said}; asking" in " ".join(statuses) and len([s for s in statuses if "asking" in s]) == 1


@pytest.mark.parametrize("delivery", ["sync", "async"])
def test_fewer_images_keeps_what_arrived_and_says_so(sim: Sim, delivery: str) -> None:
    sim.service.inject(parse_fault("fewer-images"))
    req = GenerationRequest("a harbour at dawn", number_results=3, delivery_method=delivery)
    got, err = asyncio.run(generate(client(sim), req))
    assert len(got) == 2
    assert isinstance(err, E.KreaError) and "2 of 3" in str(err)
    assert submissions(sim) == [1]


def test_more_images_than_asked_are_each_kept(sim: Sim) -> None:
    """Every image the service sends is paid for: one more than asked is kept, not dropped.
    (Sync: in one answer. With async delivery the task is done once the images asked for are in.)"""
    sim.service.inject(parse_fault("more-images"))
    req = GenerationRequest("a harbour at dawn", number_results=2, delivery_method="sync")
    got, err = asyncio.run(generate(client(sim), req))
    assert err is None
    assert len(got) == 3 and len({im.image_uuid for im in got}) == 3
    assert submissions(sim) == [1]


@pytest.mark.parametrize(
    ("fault", "cls", "phrase"),
    [
        ("task-error", E.TaskError, "failed while generating"),
        ("task-error:code=insufficientCredits,status=402", E.InsufficientCreditsError, "out of credits"),
        ("task-error:code=timeoutProvider", E.ServiceTimeoutError, "too long"),
        ("503*", E.ServiceBusyError, "busy"),
        ("malformed-json*:on=any", E.MalformedResponseError, "not valid JSON"),
        ("bad-base64*:on=any", E.MalformedResponseError, "not valid base64"),
        ("wrong-size*:on=any", E.MalformedResponseError, "instead of 1024×1024"),
        ("hang*:on=any", E.ServiceTimeoutError, "did not answer within"),
    ],
)
def test_persistent_faults_end_in_a_clear_one_sentence_error(sim: Sim, fault: str, cls: type, phrase: str) -> None:
    sim.service.inject(parse_fault(fault))
    got, err = asyncio.run(generate(client(sim, timeout=0.3), GenerationRequest("a harbour at dawn")))
    assert got == []
    assert isinstance(err, cls), repr(err)
    assert phrase in str(err)
    assert str(err).endswith(".") and "\n" not in str(err)
    assert max(submissions(sim), default=0) <= 1


@pytest.mark.parametrize("delivery", ["sync", "async"])
def test_answers_lost_for_a_task_the_service_says_it_never_had_are_not_said_to_come_later(
    sim: Sim, delivery: str
) -> None:
    """Every submission cut off before it arrived, and every check after it "not found":
    the job said its images were collected later, and its record sent the next start
    after a task no one has."""
    sim.service.inject(parse_fault("drop-before*:on=imageInference"))
    got, err = asyncio.run(generate(client(sim), GenerationRequest("a harbour at dawn", delivery_method=delivery)))
    assert got == [] and isinstance(err, E.NetworkError), repr(err)
    assert err.never_sent and not E.may_collect_later(err)
    assert submissions(sim) == []


def test_conflicting_task_uuid_is_recovered_without_billing_twice(sim: Sim) -> None:
    sim.service.inject(parse_fault("conflict"))
    got, err = asyncio.run(generate(client(sim), GenerationRequest("a harbour at dawn", number_results=2)))
    assert err is None
    assert len(got) == 2
    assert submissions(sim) == [1]


def test_the_same_task_uuid_twice_is_refused_by_the_service(sim: Sim) -> None:
    req = GenerationRequest("a harbour at dawn")
    got, err = asyncio.run(generate(client(sim), req))
    assert err is None
    # Another process sending the very same task: the simulator answers conflictTaskUUID,
    # the client asks for the existing task and gets its images, and nothing is billed twice.
    client_module._SENT_TASK_UUIDS.discard(req.task_uuid)  # as in a process that never sent it
    got2, err2 = asyncio.run(generate(client(sim), req))
    assert err2 is None
    assert [im.image_uuid for im in got2] == [im.image_uuid for im in got]
    assert submissions(sim) == [1]


def test_a_request_generated_again_with_another_client_is_a_new_batch(sim: Sim) -> None:
    """The same request given to a second client of the process followed the first
    batch's task (the service answers conflictTaskUUID) and handed its images over again
    as new ones."""
    req = GenerationRequest("a harbour at dawn")
    got, err = asyncio.run(generate(client(sim), req))
    got2, err2 = asyncio.run(generate(client(sim), req))
    assert err is None and err2 is None
    assert len(got2) == 1 and got2[0].image_uuid != got[0].image_uuid
    assert got2[0].task_uuid != req.task_uuid
    assert submissions(sim) == [1, 1]


def test_wrong_key_is_a_clear_error(sim: Sim) -> None:
    sim.service.config.api_key = "the-right-key"
    _, err = asyncio.run(generate(client(sim), GenerationRequest("a harbour at dawn")))
    assert isinstance(err, E.AuthenticationError)
    assert str(err) == "The API key was not accepted."  # the library API's caller has no Settings
    assert as_the_app_says(err) == "The API key was not accepted; check it in Settings."


def test_dead_network_is_a_clear_error() -> None:
    c = RunwareClient("k", base_url="http://127.0.0.1:9/v1", retry=FAST_RETRY)
    _, err = asyncio.run(generate(c, GenerationRequest("a harbour at dawn")))
    assert isinstance(err, E.NetworkError)
    assert str(err) == "The service at 127.0.0.1:9 could not be reached; check your connection."


def test_an_address_that_does_not_speak_https_is_said_so_at_once_not_unreachable(sim: Sim) -> None:
    """The simulator (plain HTTP) asked for over HTTPS: the host was reached, its TLS
    failed, and that was said as "could not be reached", after five retries."""
    host = sim.url.split("//", 1)[1].split("/", 1)[0]
    c = RunwareClient("k", base_url=f"https://{host}/v1", retry=RetryPolicy(attempts=6, base=0.5))
    started = time.monotonic()
    _, err = asyncio.run(generate(c, GenerationRequest("a harbour at dawn")))
    assert isinstance(err, E.NetworkError)
    assert str(err) == (
        f"The service at {host} did not answer over HTTPS; check the service address you set "
        "(a simulator on this computer is http://)."
    )
    assert time.monotonic() - started < 8  # not tried again: six attempts would wait about 15 s
    assert submissions(sim) == []  # nothing reached the service


def test_a_tls_handshake_cut_off_is_a_service_out_of_reach_and_tried_again() -> None:
    """A host that closes the connection during the handshake (a busy proxy, for a
    moment) is not an address that does not speak HTTPS: tried again, then said as out
    of reach."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    port = server.getsockname()[1]
    attempts: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            attempts.append(1)
            conn.recv(65536)  # the ClientHello, then gone
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        c = RunwareClient("k", base_url=f"https://127.0.0.1:{port}/v1", retry=RetryPolicy(attempts=3, base=0.01))
        _, err = asyncio.run(generate(c, GenerationRequest("a harbour at dawn")))
    finally:
        server.close()
    assert isinstance(err, E.NetworkError)
    assert str(err) == f"The service at 127.0.0.1:{port} could not be reached; check your connection."
    assert len(attempts) == 3


def test_a_key_test_at_a_dead_address_says_so_at_once() -> None:
    # Someone waits on the Test button: one retry, not a job's six (about 13 s).
    async def test() -> tuple[BaseException | None, float]:
        c = RunwareClient("k", base_url=f"http://127.0.0.1:{free_port()}/v1")
        started = time.monotonic()
        try:
            await c.test_key()
        except E.KreaError as exc:
            return exc, time.monotonic() - started
        finally:
            await c.aclose()
        return None, time.monotonic() - started

    err, took = asyncio.run(test())
    assert isinstance(err, E.NetworkError)
    assert "could not be reached" in str(err) and "127.0.0.1:" in str(err)
    assert took < 5  # a second at most for its one retry; six attempts take 8 s or more


def test_async_batch_delivers_images_before_it_is_complete(sim: Sim) -> None:
    sim.service.config.latency_per_image = 0.15

    async def scenario() -> list[float]:
        c = client(sim, poll=PollPolicy(initial=0.05, maximum=0.3, minimum=0.02))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        times = []
        async for _ in c.generate(GenerationRequest("a harbour", number_results=6, delivery_method="async")):
            times.append(loop.time() - t0)
        await c.aclose()
        return times

    times = asyncio.run(scenario())
    assert len(times) == 6
    assert times[0] < times[-1] - 0.3  # the first image came well before the last


def test_references_go_up_once_and_pull_the_picture(sim: Sim, tmp_path: Any) -> None:
    red = tmp_path / "red.png"
    Image.new("RGB", (300, 200), (230, 20, 20)).save(red)

    async def scenario() -> list[Any]:
        c = client(sim)
        out = []
        for strength in (1.5, -1.5):
            req = GenerationRequest("an empty room", seed=5, references=(ReferenceImage(red, strength),))
            out += [im async for im in c.generate(req)]
        await c.aclose()
        return out

    toward, away = asyncio.run(scenario())
    assert sim.service.upload_count == 1

    def redness(data: bytes) -> float:
        with Image.open(io.BytesIO(data)) as im:
            r, g, b = im.convert("RGB").resize((32, 32)).split()
            return sum(r.tobytes()) / 1024 - (sum(g.tobytes()) + sum(b.tobytes())) / 2048

    assert redness(toward.data) > redness(away.data) + 20
    assert toward.record is not None and toward.record.references[0].strength == 1.5
    assert away.record is not None and away.record.references[0].strength == -1.5


@pytest.mark.parametrize("output_type", ["base64Data", "dataURI", "URL"])
@pytest.mark.parametrize("fmt", ["PNG", "JPG", "WEBP"])
def test_every_output_type_and_format_is_decoded_and_verified(sim: Sim, output_type: str, fmt: str) -> None:
    req = GenerationRequest("a red kite", ratio="4:5", number_results=2, output_type=output_type, output_format=fmt)
    got, err = asyncio.run(generate(client(sim), req))
    assert err is None
    assert len(got) == 2
    for im in got:
        assert (im.format, im.width, im.height) == (fmt, 928, 1152)
        with Image.open(io.BytesIO(im.data)) as pil:
            assert pil.format == {"JPG": "JPEG"}.get(fmt, fmt)


def test_oversized_url_downloads_are_refused(sim: Sim) -> None:
    req = GenerationRequest("a red kite", output_type="URL")
    got, err = asyncio.run(generate(client(sim, max_download_bytes=1000), req))
    assert got == []
    assert isinstance(err, E.MalformedResponseError) and "download limit" in str(err)


def test_uploads_the_service_forgot_are_sent_again(sim: Sim, tmp_path: Any) -> None:
    ref = tmp_path / "ref.png"
    Image.new("RGB", (120, 80), (30, 160, 90)).save(ref)

    async def scenario() -> None:
        c = client(sim)
        req = GenerationRequest("an empty room", references=(ReferenceImage(ref, 0.9),))
        assert len([im async for im in c.generate(req)]) == 1
        sim.service.forget_uploads()  # as after 30 days without use
        assert len([im async for im in c.generate(req.with_new_task_uuid())]) == 1
        await c.aclose()

    asyncio.run(scenario())
    assert sim.service.upload_count == 2


def test_a_service_silent_while_the_images_are_awaited_is_said_at_each_try_and_in_the_end(sim: Sim) -> None:
    """Every getResponse unanswered: minutes of silence, then "did not answer within 20 s",
    one wait of the several. Each try is said as it happens (as a refused sending is), and
    the last sentence says how many went unanswered; the task is kept to be collected."""
    sim.service.inject(parse_fault("hang*:on=getResponse"))
    statuses: list[str] = []
    req = GenerationRequest("a harbour at dawn", number_results=2, delivery_method="async")

    async def go() -> None:
        async with client(sim, timeout=0.3) as c:
            async for _image in c.generate(req, on_status=statuses.append):
                pass

    with pytest.raises(E.ServiceTimeoutError) as failed:
        asyncio.run(go())
    asking = [s for s in statuses if s.endswith("; asking again…")]
    assert len(asking) == FAST_RETRY.attempts - 1, statuses
    assert all(s.startswith("The service did not answer within 0.3 s while waiting for the images") for s in asking)
    assert str(failed.value) == (
        f"The service did not answer within 0.3 s while waiting for the images ({FAST_RETRY.attempts} times in a row)."
    )
    assert failed.value.task_accepted


def test_a_check_answered_again_after_one_unanswered_says_so_at_once(sim: Sim) -> None:
    """After one getResponse unanswered, the line said "…; asking again…" for the rest of
    the wait, every later check answered."""
    sim.service.inject(parse_fault("hang:on=getResponse"))
    sim.service.config.latency_per_image = 0.6
    statuses: list[str] = []
    req = GenerationRequest("a harbour at dawn", number_results=1, delivery_method="async")

    async def go() -> int:
        async with client(sim, timeout=0.2) as c:
            return len([i async for i in c.generate(req, on_status=statuses.append)])

    assert asyncio.run(go()) == 1
    asking = next(i for i, said in enumerate(statuses) if said.endswith("; asking again…"))
    assert statuses[asking + 1] == "Generating…", statuses  # before the image, not after it
    assert statuses[-1] == "1 of 1 image ready…", statuses

"""The library API as README shows it, against the simulator on 127.0.0.1."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.sim import running_simulator

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_script() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Using it from Python") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_the_readme_script_generates_with_the_library_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = readme_script()
    assert len([ln for ln in script.splitlines() if ln.strip()]) <= 12
    with running_simulator() as sim:
        monkeypatch.setenv("RUNWARE_API_KEY", "sk-library-api")
        monkeypatch.chdir(tmp_path)
        # The script as written, pointed at the simulator instead of the service.
        code = script.replace(
            'RunwareClient(os.environ["RUNWARE_API_KEY"])',
            f'RunwareClient(os.environ["RUNWARE_API_KEY"], base_url={sim.url!r})',
        )
        assert code != script
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    written = sorted(tmp_path.glob("*.png"))
    assert len(written) == 2 and all(p.read_bytes().startswith(b"\x89PNG") for p in written)


@pytest.mark.parametrize("delivery", ["sync", "async"])
def test_one_request_generated_twice_makes_two_batches(delivery: str) -> None:
    """A loop over one request is a batch each time, not the first batch over again (the
    service refuses a taskUUID it has seen, and the first task is not this call's)."""
    import asyncio

    from krea_desktop.api import GenerationRequest, RunwareClient

    async def twice(url: str) -> list[list[tuple[str, str]]]:
        request = GenerationRequest("a lighthouse", ratio="1:1", number_results=2, delivery_method=delivery)
        async with RunwareClient("sk-library-api", base_url=url) as client:
            batches = []
            for _ in range(2):
                batches.append([(i.task_uuid, i.image_uuid) async for i in client.generate(request)])
            return batches

    with running_simulator() as sim:
        first, second = asyncio.run(twice(sim.url))
        sent = [t for _h, tasks in sim.service.requests for t in tasks if t.get("taskType") == "imageInference"]
    assert len(first) == len(second) == 2
    assert {t for t, _ in first}.isdisjoint(t for t, _ in second)
    assert {i for _, i in first}.isdisjoint(i for _, i in second)
    assert len(sent) == 2 and sent[0]["taskUUID"] != sent[1]["taskUUID"]  # no refused round trip


def test_one_request_generated_twice_at_once_makes_two_batches(tmp_path: Path) -> None:
    """Each call waits for its reference's upload before it sends: the second must not take
    the first one's taskUUID meanwhile."""
    import asyncio

    from PIL import Image

    from krea_desktop.api import GenerationRequest, ReferenceImage, RunwareClient

    ref = tmp_path / "fox.png"
    Image.new("RGB", (64, 48), "teal").save(ref)

    async def both(url: str) -> list[set[str]]:
        request = GenerationRequest(
            "a lighthouse", ratio="1:1", number_results=2, references=(ReferenceImage(ref, 0.5),)
        )
        async with RunwareClient("sk-library-api", base_url=url) as client:

            async def one() -> set[str]:
                return {i.task_uuid async for i in client.generate(request)}

            return list(await asyncio.gather(one(), one()))

    with running_simulator() as sim:
        first, second = asyncio.run(both(sim.url))
    assert len(first) == len(second) == 1 and first != second


def test_a_task_is_collected_with_what_on_submitted_was_given_a_file_reference_among_it(tmp_path: Path) -> None:
    """README's way to follow a task later: ``collect(request, record, received)`` with
    what ``on_submitted`` handed over. With a reference given as a file, it raised
    TypeError (the request's references are the caller's, not the strings sent)."""
    import asyncio

    from PIL import Image

    from krea_desktop.api import GenerationRequest, ReferenceImage, RunwareClient

    ref = tmp_path / "fox.png"
    Image.new("RGB", (64, 48), "teal").save(ref)

    async def stopped_then_collected(url: str) -> tuple[list[str], list[str]]:
        held: dict[str, object] = {}
        request = GenerationRequest(
            "a fox", ratio="1:1", number_results=3, delivery_method="async", references=(ReferenceImage(ref, 0.5),)
        )
        first: list[str] = []
        async with RunwareClient("sk-library-api", base_url=url) as client:
            gen = client.generate(request, on_submitted=lambda r, _w, rec: held.update(request=r, record=rec))
            async for image in gen:
                first.append(image.image_uuid)
                break  # the program stops here
            await gen.aclose()
        async with RunwareClient("sk-library-api", base_url=url) as again:
            rest = [
                i.image_uuid
                async for i in again.collect(held["request"], held["record"], set(first))  # type: ignore[arg-type]
            ]
        return first, rest

    with running_simulator(latency_per_image=0.2) as sim:
        first, rest = asyncio.run(stopped_then_collected(sim.url))
        uploads = [t for _h, tasks in sim.service.requests for t in tasks if t.get("taskType") == "imageUpload"]
    assert len(first) == 1 and len(rest) == 2 and first[0] not in rest
    assert len(uploads) == 1  # the reference is not sent again to collect


def test_the_names_come_from_the_package() -> None:
    from krea_desktop.api import GenerationRequest, ReferenceImage, RunwareClient

    assert RunwareClient.__module__ == "krea_desktop.api.client"
    assert GenerationRequest.__module__ == "krea_desktop.api.request"
    assert ReferenceImage.__module__ == "krea_desktop.api.request"


def test_a_reference_named_by_a_string_path_is_read_as_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from PIL import Image

    from krea_desktop.api import GenerationRequest, ReferenceImage, RunwareClient
    from krea_desktop.api.errors import ValidationError

    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (64, 48), "teal").save("fox.png")
    assert ReferenceImage("fox.png", 0.5).image == Path("fox.png")  # as README's path_or_url_or_bytes
    Image.new("RGB", (64, 48), "teal").save("~draft.png")
    assert ReferenceImage("~draft.png", 0.5).image == Path("~draft.png")  # no user "draft": a file's name

    async def generate(*refs: object) -> list[str | None]:
        async with RunwareClient("sk-library-api", base_url=sim.url) as client:
            request = GenerationRequest("a lighthouse", ratio="1:1", references=refs)  # type: ignore[arg-type]
            return [ref.source async for image in client.generate(request) for ref in image.record.references]

    with running_simulator() as sim:
        assert asyncio.run(generate(ReferenceImage("fox.png", 0.5))) == ["fox.png"]
        with pytest.raises(ValidationError, match=re.escape("“no-fox.png”: no file of that name exists")):
            asyncio.run(generate(ReferenceImage("no-fox.png", 0.5)))
        with pytest.raises(ValidationError, match=re.escape("inputs.referenceImages[0] must be a ReferenceImage")):
            asyncio.run(generate(("fox.png", 0.5)))
        with pytest.raises(ValidationError, match=r"^Reference 1: its base64 data cannot be decoded\.$"):
            asyncio.run(generate(ReferenceImage("aGVsbG8" * 10, 0.5)))  # not a whole number of quads
        for name in ("moodboard", "refs/missing_fox", "images/fox-2024"):  # no file, and too short for an image
            with pytest.raises(ValidationError, match=re.escape(f"“{name}”: no file of that name exists")):
                asyncio.run(generate(ReferenceImage(name, 0.5)))
        assert len(sim.service._uploads) == 1  # the fox, once: nothing was sent for the others


def test_stopping_early_and_closing_leaves_no_task_failure_unseen(caplog: pytest.LogCaptureFixture) -> None:
    """``break`` out of the images, then the client closes while the rest of the answer is
    still on its way: nothing is reported as an exception no one retrieved."""
    import asyncio
    import gc

    from krea_desktop.api import GenerationRequest, RunwareClient
    from krea_desktop.simulator.server import SimulatorServer
    from krea_desktop.simulator.service import SimulatorConfig, SimulatorService

    async def first_only(url: str) -> int:
        request = GenerationRequest("a cat", ratio="2.35:1", number_results=20, delivery_method="async")
        index = -1
        async with RunwareClient("sk-library-api", base_url=url) as client:
            async for image in client.generate(request):
                index = image.index
                break
        await asyncio.sleep(0.3)  # the program goes on; the generator is not closed yet
        return index

    server = SimulatorServer(SimulatorService(SimulatorConfig(grain=1.0)))
    url = server.start_in_thread()
    try:
        for _ in range(3):
            assert asyncio.run(first_only(url)) == 0
            gc.collect()
    finally:
        server.stop_thread()
    assert "never retrieved" not in caplog.text


def test_a_closed_client_says_so_in_a_sentence() -> None:
    import asyncio

    from krea_desktop.api import GenerationRequest, KreaError, RunwareClient

    async def after_close(url: str) -> None:
        client = RunwareClient("sk-library-api", base_url=url)
        await client.aclose()
        with pytest.raises(KreaError, match=r"^This client is closed; make a new RunwareClient to go on\.$"):
            async for _ in client.generate(GenerationRequest("a cat")):
                pass
        with pytest.raises(KreaError, match="closed"):
            await client.test_key()
        with pytest.raises(KreaError, match="closed"):
            async with client:
                pass

    async def closed_while_followed(url: str) -> None:
        client = RunwareClient("sk-library-api", base_url=url)
        request = GenerationRequest("a cat", number_results=4, delivery_method="async")
        images = client.generate(request)
        await anext(images)
        await client.aclose()
        with pytest.raises(KreaError, match="closed"):
            async for _ in images:
                pass

    with running_simulator(latency_per_image=0.2) as sim:
        asyncio.run(after_close(sim.url))
        asyncio.run(closed_while_followed(sim.url))


def test_key_errors_speak_to_the_caller_not_of_the_windows_settings() -> None:
    """The library API said "add one in Settings" to a program that has no Settings."""
    import asyncio

    from krea_desktop.api import GenerationRequest, RunwareClient
    from krea_desktop.api.errors import AuthenticationError

    with pytest.raises(AuthenticationError, match=r"^No API key was given\.$"):
        RunwareClient("  ")

    async def refused(url: str) -> str:
        async with RunwareClient("sk-not-this-one", base_url=url) as client:
            with pytest.raises(AuthenticationError) as raised:
                async for _ in client.generate(GenerationRequest("a cat")):
                    pass
            return str(raised.value)

    with running_simulator() as sim:
        sim.service.config.api_key = "sk-the-right-one"
        assert asyncio.run(refused(sim.url)) == "The API key was not accepted."


def test_an_address_with_a_password_keeps_none_in_the_record_of_its_images(tmp_path: Path) -> None:
    import asyncio

    from PIL import Image

    from krea_desktop.api import GenerationRequest, ReferenceImage, RunwareClient

    async def records(url: str, ref: str) -> list[str | None]:
        async with RunwareClient("sk-library-api", base_url=url) as client:
            request = GenerationRequest("a cat", references=(ReferenceImage(ref, 0.5),))
            return [r.image for image in [i async for i in client.generate(request)] for r in image.record.references]

    with running_simulator() as sim:
        path = tmp_path / "ref.png"
        Image.new("RGB", (64, 48), "teal").save(path)
        image_uuid = asyncio.run(_upload(sim.url, path.read_bytes()))
        host = sim.url.split("//", 1)[1].split("/", 1)[0]
        ref = f"http://user:secret@{host}/images/{image_uuid}.png"
        kept = asyncio.run(records(sim.url, ref))
    assert kept == [f"http://{host}/images/{image_uuid}.png"]


async def _upload(url: str, data: bytes) -> str:
    from krea_desktop.api import RunwareClient

    async with RunwareClient("sk-library-api", base_url=url) as client:
        return await client.upload(data)


def test_a_reference_that_cannot_be_used_is_named_by_its_place_and_file(tmp_path: Path) -> None:
    import asyncio

    from PIL import Image

    from krea_desktop.api import GenerationRequest, ReferenceImage, RunwareClient
    from krea_desktop.api.errors import ValidationError

    good, text = tmp_path / "fox.png", tmp_path / "notes.png"
    Image.new("RGB", (64, 48), "teal").save(good)
    text.write_text("not a picture")

    async def generate(*refs: ReferenceImage) -> None:
        async with RunwareClient("sk-library-api", base_url=sim.url) as client:
            async for _ in client.generate(GenerationRequest("a lighthouse", references=refs)):
                pass

    with running_simulator() as sim:
        with pytest.raises(ValidationError) as raised:
            asyncio.run(generate(ReferenceImage(good, 1.0), ReferenceImage(text, -1.0)))
        assert str(raised.value) == "Reference 2 (notes.png) is not a readable image."
        assert raised.value.parameter == "inputs.referenceImages[1]"
        with pytest.raises(ValidationError, match=r"^Reference 1 is not a readable image\.$"):
            asyncio.run(generate(ReferenceImage(b"junk", 1.0)))
        # Past the limits the command line and the window keep: said so, as they say it (a
        # picture of 30,000 × 30,000 was "not a readable image", and one of 81 megapixels was
        # sent).
        limits = "references may have at most 64 megapixels and 16,384 pixels on a side, so save a smaller copy"
        asked = len(sim.service.requests)
        for size, said in (((30_000, 30_000), ""), ((9_000, 9_000), " (9000×9000)"), ((20_000, 100), " (20000×100)")):
            huge = tmp_path / f"huge-{size[0]}.png"
            Image.new("1", size).save(huge)
            with pytest.raises(ValidationError) as raised:
                asyncio.run(generate(ReferenceImage(huge, 1.0)))
            assert str(raised.value) == f"Reference 1 ({huge.name}) is too large{said}: {limits} and use that."
        assert len(sim.service.requests) == asked  # nothing sent for any of them


def test_one_client_serves_one_asyncio_run_after_another() -> None:
    # A script may make its client once and call asyncio.run() for each batch: the
    # connections of a loop that has ended are not the next loop's (httpx's pool raised
    # "Event loop is closed", and so did aclose()).
    import asyncio

    from krea_desktop.api import GenerationRequest, RunwareClient

    with running_simulator() as sim:
        client = RunwareClient("sk-library-api", base_url=sim.url)

        async def batch(output: str, delivery: str) -> int:
            request = GenerationRequest(
                "a lighthouse in fog", number_results=2, output_type=output, delivery_method=delivery
            )
            return len([image async for image in client.generate(request)])

        assert asyncio.run(batch("URL", "sync")) == 2
        assert asyncio.run(batch("base64Data", "async")) == 2
        assert asyncio.run(batch("URL", "async")) == 2
        asyncio.run(client.aclose())

        async def after_closing() -> str:
            with pytest.raises(Exception) as raised:
                await batch("URL", "sync")
            return str(raised.value)

        assert asyncio.run(after_closing()) == "This client is closed; make a new RunwareClient to go on."


def test_a_client_in_use_on_a_loop_of_another_thread_says_so_in_a_sentence() -> None:
    import asyncio
    import threading

    from krea_desktop.api import GenerationRequest, KreaError, RunwareClient

    with running_simulator() as sim:
        client = RunwareClient("sk-library-api", base_url=sim.url)
        other = asyncio.new_event_loop()
        thread = threading.Thread(target=other.run_forever, daemon=True)
        thread.start()
        request = GenerationRequest("a lighthouse in fog", output_type="URL")

        heard: list[str] = []

        async def batch() -> int:
            images = client.generate(request.with_new_task_uuid(), on_submitted=lambda sent, *_: heard.append(sent))
            return len([image async for image in images])

        try:
            assert asyncio.run_coroutine_threadsafe(batch(), other).result(30) == 1  # the client is that loop's
            heard.clear()
            with pytest.raises(KreaError) as raised:
                asyncio.run(batch())
            assert heard == []  # refused before anything was said to be sent
            assert str(raised.value) == (
                "This client's connections belong to another event loop, which is still running; "
                "make a RunwareClient for each loop that uses one."
            )
            asyncio.run_coroutine_threadsafe(client.aclose(), other).result(30)
        finally:
            other.call_soon_threadsafe(other.stop)
            thread.join(5)
            other.close()


def test_a_client_on_a_transport_of_the_callers_goes_where_its_caller_uses_it() -> None:
    # The caller's transport decides: the in-process simulator's has nothing bound to a loop.
    import asyncio
    import threading

    from krea_desktop.api import GenerationRequest, RunwareClient
    from krea_desktop.simulator.transport import SimulatorTransport

    client = RunwareClient("sk-library-api", base_url="http://127.0.0.1/v1", transport=SimulatorTransport())
    other = asyncio.new_event_loop()
    thread = threading.Thread(target=other.run_forever, daemon=True)
    thread.start()

    async def batch() -> int:
        request = GenerationRequest("a lighthouse in fog", number_results=2, output_type="base64Data")
        return len([image async for image in client.generate(request)])

    try:
        assert asyncio.run_coroutine_threadsafe(batch(), other).result(30) == 2
        assert asyncio.run(batch()) == 2  # the other loop still runs
        asyncio.run(client.aclose())
    finally:
        other.call_soon_threadsafe(other.stop)
        thread.join(5)
        other.close()


def test_closing_while_the_client_is_made_ready_for_a_new_loop_leaves_nothing_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # aclose() from another thread while the client made its connections anew for the
    # next asyncio.run(): it took the loop for ended, left the new ones alone and returned,
    # and the batch then went out on a client open after it was closed. Now aclose() waits
    # for the new connections and closes them.
    import asyncio
    import threading
    import time

    from krea_desktop.api import GenerationRequest, RunwareClient

    with running_simulator() as sim:
        client = RunwareClient("sk-library-api", base_url=sim.url)
        request = GenerationRequest("a lighthouse in fog", output_type="base64Data")

        async def batch() -> int:
            return len([image async for image in client.generate(request.with_new_task_uuid())])

        assert asyncio.run(batch()) == 1
        making = threading.Event()
        own_http = RunwareClient._own_http

        def slow_own_http(self: RunwareClient) -> Any:
            making.set()
            time.sleep(0.3)
            return own_http(self)

        monkeypatch.setattr(RunwareClient, "_own_http", slow_own_http)
        outcome: list[BaseException | int] = []

        def second_run() -> None:
            try:
                outcome.append(asyncio.run(batch()))
            except BaseException as exc:  # what the run ended with: either is fair in this race
                outcome.append(exc)

        runner = threading.Thread(target=second_run)
        runner.start()
        assert making.wait(10)
        asyncio.run(client.aclose())
        assert client._http.is_closed  # the connections made for the new loop, closed
        runner.join(10)
        assert not runner.is_alive() and len(outcome) == 1

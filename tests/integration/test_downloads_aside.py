"""Image URLs are downloaded on a thread of the client's own: a caller that holds its loop
while it saves an image (a plain file write in ``async for``) does not hold up the next
download, and closing the client ends that thread."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from krea_desktop.api import errors as E
from krea_desktop.api.client import RetryPolicy, RunwareClient
from krea_desktop.api.request import GenerationRequest
from krea_desktop.simulator.service import Reply
from tests.helpers.sim import Sim

PATIENCE = 30.0  # the longest a test waits for a download to come, on a loaded machine


def served_at(sim: Sim, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """When each image download was answered (monotonic), in order."""
    times: list[float] = []
    answer = sim.service.image_reply

    async def noting(name: str, fault: str | None = None) -> Reply:
        reply = await answer(name, fault)
        times.append(time.monotonic())
        return reply

    monkeypatch.setattr(sim.service, "image_reply", noting)
    return times


def on_each_image(sim: Sim, monkeypatch: pytest.MonkeyPatch, step: Callable[[int], Awaitable[Reply | None]]) -> None:
    """Await ``step`` with each image request's number (1 for the first) before it is
    answered; a Reply it returns is the answer instead."""
    answer = sim.service.image_reply
    calls = 0

    async def replying(name: str, fault: str | None = None) -> Reply:
        nonlocal calls
        calls += 1
        instead = await step(calls)
        return instead if instead is not None else await answer(name, fault)

    monkeypatch.setattr(sim.service, "image_reply", replying)


def images_of(sim: Sim, request: GenerationRequest, *, first_only: bool = False) -> int:
    """How many images ``request`` hands over to a client closed when it is done (or,
    with ``first_only``, once the first has come)."""

    async def go() -> int:
        got = 0
        async with RunwareClient("k", base_url=sim.url) as client:
            async for _image in client.generate(request):
                got += 1
                if first_only:
                    break
        return got

    return asyncio.run(go())


async def hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # blocking: the loop this runs on does nothing else meanwhile


def download_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "krea-downloads"]


def test_the_next_image_downloads_while_the_caller_holds_its_loop(sim: Sim, monkeypatch: pytest.MonkeyPatch) -> None:
    served = served_at(sim, monkeypatch)
    request = GenerationRequest("a kite over dunes", number_results=3, output_type="URL")
    came_while_held: list[bool] = []

    async def go() -> list[int]:
        indexes = []
        async with RunwareClient("k", base_url=sim.url) as client:
            async for image in client.generate(request):
                indexes.append(image.index)
                if len(indexes) < request.number_results:
                    # Held (blocking, as a file write is) until the next image is served,
                    # or long past when it would have been: downloaded on this loop, it
                    # never is meanwhile.
                    until = time.monotonic() + PATIENCE
                    while len(served) <= len(indexes) and time.monotonic() < until:
                        time.sleep(0.01)
                    came_while_held.append(len(served) > len(indexes))
        return indexes

    assert asyncio.run(go()) == [0, 1, 2]
    assert len(served) == 3
    # The second and third images were on their way while the caller held the one before.
    assert came_while_held == [True, True]
    assert not download_threads()  # closing the client ended its downloads' thread


def test_a_download_cancelled_with_its_batch_ends_with_the_client(sim: Sim) -> None:
    request = GenerationRequest("a kite over dunes", number_results=4, output_type="URL")
    assert images_of(sim, request, first_only=True) == 1  # the next download was under way
    assert not download_threads()


def test_a_closed_client_downloads_nothing(sim: Sim) -> None:
    async def go() -> Any:
        client = RunwareClient("k", base_url=sim.url)
        await client.aclose()
        request = GenerationRequest("a kite", output_type="URL")
        with pytest.raises(E.KreaError, match="This client is closed"):
            async for _image in client.generate(request):
                pass

    asyncio.run(go())
    assert not download_threads()


def test_a_client_closed_while_a_batch_is_followed_hands_over_what_it_has_then_says_so(
    sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = GenerationRequest("a kite over dunes", number_results=3, output_type="URL")
    downloaded = 0  # images downloaded on the downloads' thread (the first is fetched on the loop)
    download = RunwareClient._download_aside

    async def noting(self: RunwareClient, *args: Any) -> Any:
        nonlocal downloaded
        got = await download(self, *args)
        downloaded += 1
        return got

    monkeypatch.setattr(RunwareClient, "_download_aside", noting)

    async def go() -> int:
        got = 0
        client = RunwareClient("k", base_url=sim.url)
        with pytest.raises(E.KreaError, match="This client is closed"):
            async for _image in client.generate(request):
                got += 1
                if got == 1:
                    until = time.monotonic() + PATIENCE
                    while not downloaded and time.monotonic() < until:  # the next image comes meanwhile
                        await asyncio.sleep(0.01)
                    await asyncio.sleep(0.1)  # and is handed from the downloads' thread to this loop
                    await client.aclose()  # by another part of the caller's program
        return got

    assert asyncio.run(go()) == 2  # the image downloaded before the close is not lost
    assert not download_threads()


def test_closing_the_client_ends_a_download_under_way(sim: Sim, monkeypatch: pytest.MonkeyPatch) -> None:
    async def slow_after_the_first(call: int) -> None:
        if call > 1:
            await asyncio.sleep(5)

    on_each_image(sim, monkeypatch, slow_after_the_first)
    request = GenerationRequest("a kite over dunes", number_results=3, output_type="URL")

    async def go() -> tuple[int, str, float]:
        got = 0
        client = RunwareClient("k", base_url=sim.url)

        async def follow() -> None:
            nonlocal got
            async for _image in client.generate(request):
                got += 1

        follower = asyncio.create_task(follow())
        while got == 0:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # the second image's download is under way, and slow
        closed_at = time.monotonic()
        await client.aclose()
        with pytest.raises(E.KreaError) as caught:
            await asyncio.wait_for(follower, 2)
        await client.aclose()  # again: nothing to do
        return got, str(caught.value), time.monotonic() - closed_at

    got, said, took = asyncio.run(go())
    assert got == 1
    assert said.startswith("This client is closed")
    assert took < 2
    assert not download_threads()


def test_a_window_client_downloads_on_its_own_loop(sim: Sim) -> None:
    """The window's client thread makes its client, then sets ``gui``: no second thread."""
    request = GenerationRequest("a kite over dunes", number_results=2, output_type="URL")
    seen: set[str] = set()

    async def go() -> int:
        got = 0
        async with RunwareClient("k", base_url=sim.url) as client:
            client.gui = True
            async for _image in client.generate(request):
                got += 1
                seen.update(t.name for t in threading.enumerate())
        return got

    assert asyncio.run(go()) == 2
    assert "krea-downloads" not in seen


def test_a_client_never_closed_ends_its_downloads_thread_when_collected(sim: Sim) -> None:
    request = GenerationRequest("a kite over dunes", number_results=2, output_type="URL")

    async def go() -> None:
        client = RunwareClient("k", base_url=sim.url)
        async for _image in client.generate(request):
            pass
        assert download_threads()

    asyncio.run(go())
    gc.collect()
    deadline = time.monotonic() + 5
    while download_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not download_threads()


def test_a_sleep_of_the_callers_loop_still_serves_a_download_retry(sim: Sim, monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller's own ``sleep`` may be bound to its loop: downloads then stay on it."""
    calls: list[int] = []

    async def busy_once(call: int) -> Reply | None:
        calls.append(call)
        return Reply.json(503, {"errors": []}) if call == 1 else None

    on_each_image(sim, monkeypatch, busy_once)

    async def go() -> int:
        stop = asyncio.Event()  # of the caller's loop, as a shutdown signal would be
        waiting = asyncio.create_task(stop.wait())

        async def sleep(seconds: float) -> None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)

        got = 0
        async with RunwareClient("k", base_url=sim.url, sleep=sleep, retry=RetryPolicy(base=0.01)) as client:
            async for _image in client.generate(GenerationRequest("a kite", output_type="URL")):
                got += 1
        waiting.cancel()
        return got

    assert asyncio.run(go()) == 1
    assert calls == [1, 2]


def test_closing_cut_short_by_its_callers_timeout_still_ends_the_downloads(
    sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def slow_after_the_first(call: int) -> None:
        if call > 1:
            await asyncio.sleep(5)

    on_each_image(sim, monkeypatch, slow_after_the_first)
    request = GenerationRequest("a kite over dunes", number_results=3, output_type="URL")

    async def go() -> tuple[str, bool]:
        client = RunwareClient("k", base_url=sim.url)
        images = client.generate(request)
        await images.__anext__()
        await asyncio.sleep(0.2)  # the second image's download is under way, and slow
        aside = client._aside
        assert aside is not None
        aside.submit(hold_the_loop(0.3))  # the downloads' loop, busy a moment
        await asyncio.sleep(0.01)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.aclose(), 0.05)  # cut short before its thread could close
        with pytest.raises(E.KreaError) as caught:
            await asyncio.wait_for(images.__anext__(), 2)  # not a wait for ever
        await asyncio.sleep(0.5)
        assert client._aside_http is not None
        return str(caught.value), client._aside_http.is_closed

    said, http_closed = asyncio.run(go())
    assert said.startswith("This client is closed")
    assert http_closed
    assert not download_threads()


def test_a_download_its_caller_cancelled_is_not_reported_as_closed_and_unheard(
    sim: Sim, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A download its caller cancelled, then the client closed: the cancellation is the
    caller's, and no error is left for asyncio to log as never retrieved."""

    async def busy(call: int) -> Reply | None:
        # The second image's download waits to try again (the first, which the caller
        # waited for, came on the caller's own loop).
        return Reply.json(503, {"errors": []}) if call >= 2 else None

    on_each_image(sim, monkeypatch, busy)

    async def go() -> None:
        request = GenerationRequest("a kite over dunes", number_results=2, output_type="URL")
        client = RunwareClient("k", base_url=sim.url, retry=RetryPolicy(attempts=3, base=5, cap=5))
        images = client.generate(request)
        await images.__anext__()
        follower = asyncio.ensure_future(images.__anext__())
        await asyncio.sleep(0.5)  # the second download is waiting to retry, on the downloads' loop
        aside = client._aside
        assert aside is not None
        aside.submit(hold_the_loop(0.3))  # that loop, busy a moment
        await asyncio.sleep(0.01)
        follower.cancel()
        with pytest.raises(asyncio.CancelledError):
            await follower
        await client.aclose()

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        asyncio.run(go())
        gc.collect()
    assert "never retrieved" not in caplog.text
    assert not download_threads()


def test_a_service_on_this_machine_is_not_reached_through_a_proxy(sim: Sim, monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulator on 127.0.0.1 with a proxy named for everything else (nothing
    listens at the proxy's address: a request sent there would fail)."""
    for scheme in ("NO", "ALL", "HTTPS", "HTTP"):
        monkeypatch.delenv(f"{scheme}_PROXY", raising=False)
        monkeypatch.delenv(f"{scheme.lower()}_proxy", raising=False)
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    request = GenerationRequest("a kite over dunes", number_results=2, output_type="URL")
    assert images_of(sim, request) == 2


@pytest.mark.parametrize("delivery", ["sync", "async"])
def test_the_downloads_thread_starts_once_the_task_has_gone_out(sim: Sim, delivery: str) -> None:
    # Started before, the thread's start holds up the sending of the task (a millisecond
    # or two, on every request); started once it has gone out, it is ready long before
    # the service has an image to download.
    request = GenerationRequest("a kite over dunes", number_results=2, output_type="URL", delivery_method=delivery)
    threads_when_sent: list[int] = []
    threads_at_first_image: list[int] = []

    async def go() -> int:
        got = 0
        async with RunwareClient("k", base_url=sim.url) as client:
            on_submitted = lambda *_: threads_when_sent.append(len(download_threads()))  # noqa: E731
            async for _image in client.generate(request, on_submitted=on_submitted):
                if not got:
                    threads_at_first_image.append(len(download_threads()))
                got += 1
        return got

    assert asyncio.run(go()) == 2
    assert threads_when_sent == [0]
    assert threads_at_first_image == [1]
    assert not download_threads()


@pytest.mark.parametrize("delivery", ["sync", "async"])
def test_without_a_thread_to_be_had_the_images_are_downloaded_all_the_same(
    sim: Sim, monkeypatch: pytest.MonkeyPatch, delivery: str
) -> None:
    # A process at its thread limit: the task is out (paid for) by the time the downloads'
    # thread is asked for, so its images come on the caller's own loop rather than the
    # task ending in an unexpected error.
    start = threading.Thread.start

    def refusing(thread: threading.Thread) -> None:
        if thread.name == "krea-downloads":
            raise RuntimeError("can't start new thread")
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", refusing)
    request = GenerationRequest("a kite over dunes", number_results=3, output_type="URL", delivery_method=delivery)
    assert images_of(sim, request) == 3
    assert len([t for _, tasks in sim.service.requests for t in tasks if t.get("taskType") == "imageInference"]) == 1
    assert not download_threads()


@pytest.mark.parametrize("delivery", ["sync", "async"])
def test_the_image_the_caller_waits_for_is_fetched_on_the_callers_loop(
    sim: Sim, monkeypatch: pytest.MonkeyPatch, delivery: str
) -> None:
    # The caller waits for the first image of an answer with its loop free: that image is
    # fetched there, without a hop to the downloads' thread and back. The next ones of a
    # sync answer, each made ready while the caller saves the one before, are the
    # downloads' thread's (with async delivery a later poll may find the caller waiting
    # again, and fetch there too).
    downloaded_on: list[str] = []
    download = RunwareClient._download

    async def noting(self: RunwareClient, url: str, http: Any, deadline: float | None = None) -> bytes:
        downloaded_on.append(threading.current_thread().name)
        return await download(self, url, http, deadline)

    monkeypatch.setattr(RunwareClient, "_download", noting)
    request = GenerationRequest("a kite over dunes", number_results=3, output_type="URL", delivery_method=delivery)
    caller = threading.current_thread().name
    assert images_of(sim, request) == 3
    assert len(downloaded_on) == 3
    assert downloaded_on[0] == caller
    if delivery == "sync":
        assert downloaded_on[1:] == ["krea-downloads", "krea-downloads"]


@pytest.mark.parametrize("first_reply", ["slow", "busy"])
def test_closing_the_client_under_the_image_the_caller_waits_for_says_it_is_closed(
    sim: Sim, monkeypatch: pytest.MonkeyPatch, first_reply: str
) -> None:
    # That image comes on the caller's own HTTP client, which closing the client closes:
    # httpx's "Cannot send a request, as the client has been closed" reached the caller.
    async def first(call: int) -> Reply | None:
        if call == 1 and first_reply == "slow":
            await asyncio.sleep(5)
        if call == 1 and first_reply == "busy":
            return Reply.json(503, {"errors": []})  # then a retry after a wait
        return None

    on_each_image(sim, monkeypatch, first)
    request = GenerationRequest("a kite over dunes", number_results=1, output_type="URL")

    async def go() -> tuple[BaseException | None, float]:
        client = RunwareClient("k", base_url=sim.url, retry=RetryPolicy(attempts=3, base=1.0, cap=1.0))

        async def follow() -> None:
            async for _image in client.generate(request):
                pass

        follower = asyncio.create_task(follow())
        await asyncio.sleep(0.5)  # the image is being downloaded, or waits for its retry
        closed_at = time.monotonic()
        await client.aclose()
        try:
            await asyncio.wait_for(follower, 10)
        except Exception as exc:
            return exc, time.monotonic() - closed_at
        return None, time.monotonic() - closed_at

    err, took = asyncio.run(go())
    assert isinstance(err, E.KreaError) and str(err) == "This client is closed; make a new RunwareClient to go on."
    assert took < 5  # at once, or once the retry's wait (at most 1 s here) is over; not the 10 s


@pytest.mark.parametrize("delivery", ["sync", "async"])
def test_a_batch_of_one_image_starts_no_downloads_thread(sim: Sim, delivery: str) -> None:
    # Its one image comes while the caller waits for it, on the caller's loop: a thread
    # and an HTTP client made for nothing would take the CPU the service renders with.
    request = GenerationRequest("a kite over dunes", number_results=1, output_type="URL", delivery_method=delivery)
    threads: list[int] = []

    async def go() -> int:
        got = 0
        async with RunwareClient("k", base_url=sim.url) as client:
            async for _image in client.generate(request):
                got += 1
                threads.append(len(download_threads()))
        return got

    assert asyncio.run(go()) == 1
    assert threads == [0]

"""Ctrl+C (or SIGTERM) while a command-line run has work on a worker thread: the cancel
waits for that work to end, since the run's ``finally`` closes the library under it."""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from krea_desktop.api.results import GeneratedImage
from krea_desktop.library.saving import SaveQueue
from krea_desktop.library.store import Library
from krea_desktop.sweep_cli import EarlierOut, _collect_earlier_runs, to_its_end


def test_cancelled_twice_it_still_waits_for_the_work_then_is_cancelled() -> None:
    release = threading.Event()
    ended: list[str] = []

    def work() -> str:
        release.wait(30)
        ended.append("work")
        return "done"

    async def main() -> tuple[bool, bool]:
        task = asyncio.ensure_future(to_its_end(work))
        await asyncio.sleep(0.05)
        task.cancel()
        first, _ = await asyncio.wait([task], timeout=0.2)
        task.cancel()  # a second cancel, as the HTTP library's own may
        second, _ = await asyncio.wait([task], timeout=0.2)
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        return bool(first), bool(second)

    assert asyncio.run(main()) == (False, False)  # ended neither time while the work ran
    assert ended == ["work"]

    async def uncancelled() -> str:
        return await to_its_end(str.upper, "a")

    assert asyncio.run(uncancelled()) == "A"


def test_ctrl_c_while_an_earlier_runs_image_is_saved_waits_for_the_save(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A sweep collecting an earlier run's image when Ctrl+C came was cancelled at once; its
    # ``finally`` closed the library while the save ran on: the image's file was written
    # with no row in the index ("the library is closed"), and the process could crash.
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, "PNG")
    image = GeneratedImage("t-1", "f0c5d1c2-9a0e-4b9e-8d0c-2b7e3c1a5d42", buffer.getvalue(), "PNG", 64, 64, 7)
    in_save, release = threading.Event(), threading.Event()
    write = Library._write_image

    def slow_write(self: Library, *args: Any, **kwargs: Any) -> Any:  # the file is being written
        in_save.set()
        release.wait(30)
        return write(self, *args, **kwargs)

    monkeypatch.setattr(Library, "_write_image", slow_write)

    class Task:  # an earlier run's task, as its record gives it
        task_uuid, request, record, received, out = "t-1", None, None, [], None

    class Pending:
        def __init__(self) -> None:
            self.set_aside: list[str] = []
            self.got: list[str] = []

        def claim_abandoned(self, *_args: Any, **_kwargs: Any) -> list[Task]:
            return [Task()]

        def received(self, _task: Task, image_uuid: str) -> None:
            self.got.append(image_uuid)

        def finished(self, _task: Task) -> None:
            pass

    class Client:
        base_url, collectable_later = "http://127.0.0.1:9/v1", True

        async def collect(self, *_args: Any, **_kwargs: Any) -> AsyncIterator[GeneratedImage]:
            yield image

    library = Library(tmp_path)
    said: list[str] = []

    pending = Pending()
    noted = pending.got

    async def main() -> bool:
        run = asyncio.ensure_future(
            _collect_earlier_runs(Client(), library, pending, SaveQueue(library), EarlierOut(said.append))  # type: ignore[arg-type]
        )
        while not in_save.is_set():
            await asyncio.sleep(0.01)
        run.cancel()  # as Ctrl+C does, from the loop
        ended, _ = await asyncio.wait([run], timeout=0.3)
        release.set()
        with contextlib.suppress(asyncio.CancelledError):
            await run
        library.close()  # the run's finally
        return bool(ended)

    assert asyncio.run(main()) is False  # the cancel waited for the save
    with Library(tmp_path) as again:
        assert again.count() == 1 and again.get_by_uuid(image.image_uuid) is not None
    # And it was said and noted as received, as an image saved before the cancel is.
    assert said == [f"saved {image.image_uuid}.png from an earlier run that ended before all its images arrived"]
    assert noted == [image.image_uuid]

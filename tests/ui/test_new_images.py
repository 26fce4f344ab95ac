"""A newly generated image, from the service to the gallery: its thumbnails are made once,
on the client thread, and the window's client tidies the library's upload record."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from krea_desktop.api import spec
from krea_desktop.api.request import GenerationRequest
from krea_desktop.api.results import GeneratedImage
from krea_desktop.library.store import Library
from krea_desktop.models.jobs import Job
from krea_desktop.ui.app import create_main_window
from krea_desktop.ui.gallery import thumbnails
from krea_desktop.ui.window.main_window import MainWindow
from tests.helpers.images import distinct_png


@pytest.fixture
def window(qtbot: QtBot, data_dir: Path) -> Iterator[MainWindow]:
    w = create_main_window(force_demo=True, demo_latency=0.0)
    qtbot.addWidget(w)
    w.resize(1000, 700)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()


def made(request: GenerationRequest, i: int) -> GeneratedImage:
    """The ``i``-th image of ``request``, as the client hands it over."""
    return GeneratedImage(
        task_uuid=request.task_uuid,
        image_uuid=str(uuid.uuid4()),
        data=distinct_png(i),
        format="PNG",
        width=1024,
        height=1024,
        seed=i,
        cost=None,
        record=request.describe(),
        index=i,
    )


def demo_window(qtbot: QtBot) -> MainWindow:
    """A demo window, built."""
    w = create_main_window(force_demo=True, demo_latency=0.0)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.built)
    return w


def three_images_from(qtbot: QtBot, w: MainWindow, generate: Any, monkeypatch: pytest.MonkeyPatch) -> Job:
    """A job of three images, made by ``generate`` in the client's place; the job once ended."""
    monkeypatch.setattr(w.client_thread.wait_ready(), "generate", generate)
    w.prompt_panel.promptEdit.setPlainText("three paper boats")
    w.prompt_panel.countSpin.setValue(3)
    with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
        job_id = w.generate()
    assert job_id is not None
    job = w.jobs.get(job_id)
    assert job is not None
    return job


def generate_one(qtbot: QtBot, w: MainWindow) -> Any:
    w.prompt_panel.promptEdit.setPlainText("a kite over the dunes")
    w.prompt_panel.countSpin.setValue(1)
    with qtbot.waitSignal(w.client_thread.imageReady, timeout=30000) as arrived:
        assert w.generate() is not None
    return arrived.args[1]


def test_a_new_image_arrives_with_its_cached_thumbnail_and_is_never_decoded_again(
    qtbot: QtBot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = window
    entry = generate_one(qtbot, w)
    cache = w.library.thumb_path(entry.image_uuid, thumbnails.THUMB_SIZE)
    assert cache.is_file()  # written before the image was announced
    with Image.open(cache) as im:
        assert im.format == "JPEG"
        assert im.size == thumbnails.cached_size(entry.width, entry.height)
    written = cache.stat().st_mtime_ns

    reads: list[str] = []

    read_image_file = thumbnails.read_image_file

    def counting(path: Path, *args: Any, **kwargs: Any) -> Any:
        reads.append(str(path))
        return read_image_file(path, *args, **kwargs)

    monkeypatch.setattr(thumbnails, "read_image_file", counting)
    model = w.model
    qtbot.waitUntil(lambda: model.row_of(entry.id) is not None)
    row = model.row_of(entry.id)
    assert row is not None
    model.forget({entry.id})  # as when its pixmap leaves memory, or at the next start
    model.data(model.index(row), Qt.ItemDataRole.DecorationRole)
    qtbot.waitUntil(lambda: model.has_thumbnail(entry.id), timeout=10000)
    # Only the cached thumbnail, never the image itself (a repaint of the visible window
    # may ask for the same thumbnail once more while it loads).
    assert reads and set(reads) == {str(cache)}
    assert str(entry.path) not in reads
    assert cache.stat().st_mtime_ns == written


def test_the_window_drops_uploads_the_service_has_forgotten(qtbot: QtBot, data_dir: Path) -> None:
    with Library(data_dir) as lib:
        lib.reference_remember("a" * 64, "uuid-old", when=time.time() - spec.UPLOAD_LIFETIME_S - 60)
        lib.reference_remember("b" * 64, "uuid-recent")
    w = create_main_window(force_demo=True, demo_latency=0.0)
    qtbot.addWidget(w)
    try:
        w.client_thread.wait_ready()
        assert w.library.reference_lookup("a" * 64) is None
        assert w.library.reference_lookup("b" * 64) is not None
    finally:
        w.close()


def test_a_demo_job_the_window_closed_during_leaves_the_next_start_nothing_to_collect(
    qtbot: QtBot, data_dir: Path
) -> None:
    """The demo's simulator ends with the process, and its tasks with it: a demo job the
    window was closed during was noted all the same, and every next start showed a failed
    job, "The service no longer has this job, so its images could not be collected"."""
    w = create_main_window(force_demo=True, demo_latency=0.4)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.built)
    w.prompt_panel.promptEdit.setPlainText("four kites over the dunes")
    w.prompt_panel.countSpin.setValue(4)
    w.prompt_panel.deliveryCombo.setCurrentIndex(w.prompt_panel.deliveryCombo.findData("async"))
    with qtbot.waitSignal(w.client_thread.imageReady, timeout=30000):
        assert w.generate() is not None
    assert w.jobs.running()  # the rest still being made
    assert not list((data_dir / "pending").glob("*.json"))
    w.close()
    again = create_main_window(force_demo=True, demo_latency=0.0)
    qtbot.addWidget(again)
    again.show()
    qtbot.waitUntil(lambda: again.built)
    qtbot.wait(500)  # the collecting of an earlier run's tasks comes just after
    assert again.jobs.jobs() == [] and not again.message_banner.isVisible()
    again.close()


def test_an_image_held_then_saved_by_the_retry_while_its_job_runs_is_not_said_to_wait(
    qtbot: QtBot, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first image of a job came with the disk full and was saved by the retry while
    the job ran; at its end the job counted it among those still waiting, and said so for
    good: "Done: 3 images saved; 1 more is waiting to be saved."."""
    import asyncio

    from tests.helpers.disk import a_disk_that_fills

    full = a_disk_that_fills(monkeypatch, full=False)
    w = demo_window(qtbot)

    async def generate(request: GenerationRequest, on_status: Any = None, on_submitted: Any = None) -> Any:
        on_submitted(request, [], request.describe())
        full["on"] = True  # the first image comes with the disk full
        yield made(request, 1)
        full["on"] = False  # then room: the retry saves it while the job still runs
        await asyncio.sleep(1.0)
        yield made(request, 2)
        yield made(request, 3)

    job = three_images_from(qtbot, w, generate, monkeypatch)
    qtbot.waitUntil(lambda: job.received == 3)
    assert w.library.count() == 3 and job.message == "Done: 3 images saved."
    w.close()


def test_a_held_image_on_its_way_to_the_gallery_as_its_job_ends_is_counted_once(
    qtbot: QtBot, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry had taken a held image off the queue, its thumbnail still being made, when
    its job ended: the job counted the images still queued, then the late image took one
    more off that count, "1 image is waiting" with two waiting."""
    import asyncio

    from krea_desktop.ui.jobs import client_thread as client_thread_module
    from tests.helpers.disk import a_disk_that_fills

    disk = a_disk_that_fills(monkeypatch, full=True)
    thumbnail = client_thread_module.thumbnail_qimage

    def slow_thumbnail(*args: Any, **kwargs: Any) -> Any:
        time.sleep(1.0)
        return thumbnail(*args, **kwargs)

    monkeypatch.setattr(client_thread_module, "thumbnail_qimage", slow_thumbnail)
    w = demo_window(qtbot)

    async def generate(request: GenerationRequest, on_status: Any = None, on_submitted: Any = None) -> Any:
        on_submitted(request, [], request.describe())
        for i in (1, 2, 3):  # all three held
            yield made(request, i)
        disk["room"] = 1  # room for one: the retry saves it, its thumbnail takes a while
        await asyncio.sleep(0.5)  # the job ends meanwhile

    job = three_images_from(qtbot, w, generate, monkeypatch)
    qtbot.waitUntil(lambda: job.received == 1, timeout=10000)
    assert job.message == "Done: 1 image saved; 2 images are waiting to be saved."
    w.close()

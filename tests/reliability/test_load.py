"""Load: five 20-image jobs in flight at once against the simulator (its own process on
127.0.0.1). All 100 images arrive and are saved exactly once, and memory returns to where
it started once the jobs end."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from PySide6.QtCore import Qt, QTimer
from pytestqt.qtbot import QtBot

from krea_desktop.ui.app import create_main_window
from tests.helpers.jobs import queue_jobs
from tests.helpers.keyrings import MemoryKeyring
from tests.helpers.sim import simulator_process

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def release_memory() -> None:
    gc.collect()
    # give freed heap pages back to the OS, as a long-running app's allocator does over time
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@pytest.fixture
def simulator_url() -> Iterator[str]:
    # at nice 19: it stands in for the remote service; the GUI stall measured here is the app's
    with simulator_process("--latency", "0.02", nice=19) as url:
        yield url


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads resident memory from /proc")
def test_five_jobs_of_twenty_at_once(
    qtbot: QtBot, data_dir: Path, simulator_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    monkeypatch.setenv("RUNWARE_API_KEY", "load-test-key")
    monkeypatch.setenv("RUNWARE_API_URL", simulator_url)
    try:
        w = create_main_window()
        qtbot.addWidget(w)
        w.show()
        panel = w.prompt_panel
        panel.deliveryCombo.setCurrentIndex(panel.deliveryCombo.findData("async"))
        panel.countSpin.setValue(20)

        ticks: list[float] = []
        timer = QTimer()
        timer.setTimerType(Qt.TimerType.PreciseTimer)
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))

        def run_jobs(n: int, label: str, measure: bool = False) -> list[int]:
            done: list[int] = []
            w.client_thread.jobFinished.connect(lambda j, _n: done.append(j))
            w.client_thread.jobFailed.connect(lambda j, msg, _e: pytest.fail(f"job {j} failed: {msg}"))
            ids = queue_jobs(w, n, label)
            if measure:
                # From here the jobs are in flight: the stall measured is the images arriving,
                # not laying out five new job rows at once (no person clicks that fast).
                qtbot.wait(50)
                timer.start(1)
            qtbot.waitUntil(lambda: set(ids) <= set(done), timeout=120_000)
            timer.stop()
            return ids

        run_jobs(1, "warm-up")  # imports, pools, connections, caches: the app's working level
        qtbot.wait(200)
        release_memory()
        start = rss_bytes()
        start_pixmaps = w.model.pixmap_bytes

        run_jobs(5, "load", measure=True)

        entries = w.library.entries()
        load = [e for e in entries if e.prompt.startswith("load ")]
        assert len(load) == 100
        assert len({e.image_uuid for e in load}) == 100  # each saved exactly once
        assert len({e.file_name for e in entries}) == len(entries) == len(list((data_dir / "images").iterdir()))
        assert all(e.path.exists() for e in load)
        assert w.model.rowCount() == 120

        qtbot.wait(500)
        release_memory()
        end = rss_bytes()
        # The gallery keeps the thumbnails it shows, within its fixed budget: that is
        # the app's intended state, not a leak, so it is counted separately.
        thumbs = w.model.pixmap_bytes - start_pixmaps
        growth = end - start - thumbs
        stall = max((b - a for a, b in itertools.pairwise(ticks)), default=0.0)
        print(
            f"load: 100 images in 5 jobs; RSS {start / 2**20:.0f} -> {end / 2**20:.0f} MiB, "
            f"thumbnail cache +{thumbs / 2**20:.1f} MiB, other growth {growth / 2**20:+.1f} MiB "
            f"({growth / start:+.1%}); longest GUI-thread gap {stall * 1000:.1f} ms"
        )
        assert growth <= 0.10 * start, "memory did not return to its starting level"
        w.close()
    finally:
        keyring.set_keyring(previous)

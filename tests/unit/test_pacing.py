"""The GIL hand-over used by long loops on background threads (``api.pacing``)."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from krea_desktop.api import pacing
from krea_desktop.api.response import decode_base64, parse_body


class FakeClock:
    """A thread's CPU time advancing ``step`` seconds per reading; sleeps recorded, not
    slept (a sleep costs no CPU time)."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step
        self.sleeps: list[float] = []

    def thread_time(self) -> float:
        self.now += self.step
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(step=0.0005)
    monkeypatch.setattr(pacing, "_clock", fake.thread_time)
    monkeypatch.setattr(pacing, "_sleep", fake.sleep)
    return fake


def on_worker(fn: Callable[[], Any]) -> Any:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # handed back to the test
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    if "error" in out:
        raise out["error"]
    return out.get("value")


def steps(n: int) -> None:
    for _ in range(n):
        pacing.pace()


def test_a_worker_pauses_once_per_period(clock: FakeClock) -> None:
    def loop() -> None:
        for _ in range(100):  # 100 steps of 0.5 ms: 50 ms of work
            pacing.pace()

    on_worker(loop)
    assert clock.sleeps, "a long loop on a worker thread must hand the GIL over"
    assert all(s == pacing.PAUSE for s in clock.sleeps)
    # one pause per PERIOD of work (2 ms = 4 steps here), not one per step
    assert 50 * 0.001 / pacing.PERIOD * 0.8 <= len(clock.sleeps) <= 100 / 4 + 1


def test_a_short_loop_does_not_pause(clock: FakeClock) -> None:
    on_worker(lambda: steps(3))  # 1.5 ms in all
    assert clock.sleeps == []


def test_the_main_thread_never_pauses(clock: FakeClock) -> None:
    for _ in range(100):
        pacing.pace()
    assert clock.sleeps == []


def test_waiting_costs_no_cpu_time_and_never_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(pacing, "_sleep", sleeps.append)

    def slow_network() -> float:
        started = time.thread_time()
        for _ in range(5):
            time.sleep(0.004)  # a chunk arriving every 4 ms: waiting, not working
            pacing.pace()
        return time.thread_time() - started

    used = on_worker(slow_network)
    # None, unless the thread's clock counted a period of work: a virtual machine stopped
    # in the middle counts as the thread's time (seen on a busy machine, once).
    assert len(sleeps) <= int(used / pacing.PERIOD)


def test_each_thread_keeps_its_own_period(clock: FakeClock) -> None:
    on_worker(lambda: steps(3))
    on_worker(lambda: steps(3))  # a new thread starts afresh
    assert clock.sleeps == []


def test_parsing_a_large_answer_on_a_worker_hands_the_gil_over(clock: FakeClock) -> None:
    payload = bytes(range(256)) * 40_000  # about 10 MB of base64 over a few images
    items = [{"imageUUID": f"u{i}", "imageBase64Data": base64.b64encode(payload).decode()} for i in range(3)]
    body = json.dumps({"data": items}).encode()

    parsed = on_worker(lambda: parse_body(body))
    assert len(clock.sleeps) > 0
    assert [x["imageUUID"] for x in parsed["data"]] == ["u0", "u1", "u2"]
    assert len(parsed["data"][2]["imageBase64Data"]) == len(base64.b64encode(payload))


def test_decoding_in_slices_on_a_worker_hands_the_gil_over(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    from krea_desktop.api import b64helper

    class NoHelper:
        def decode(self, _raw: object) -> None:
            return None  # as when the helper cannot run: decoded in the app

    monkeypatch.setattr(b64helper, "shared", NoHelper)
    payload = bytes(range(256)) * 20_000
    encoded = base64.b64encode(payload)
    assert on_worker(lambda: decode_base64(encoded)) == payload
    assert len(clock.sleeps) > 0

"""What a job says while the service makes its images, over HTTP against the simulator on
127.0.0.1 (its latency is the service's time)."""

from __future__ import annotations

import asyncio
import time

import pytest

from krea_desktop.api.client import RunwareClient
from krea_desktop.api.request import GenerationRequest
from tests.helpers.sim import running_simulator


@pytest.mark.parametrize("delivery", ["sync", "async"])
def test_a_job_says_generating_from_when_the_task_has_gone_out(delivery: str) -> None:
    said: list[tuple[float, str]] = []

    async def scenario(url: str) -> float:
        async with RunwareClient("k", base_url=url) as client:
            request = GenerationRequest("two paper boats", number_results=2, delivery_method=delivery)
            started = time.monotonic()
            async for _image in client.generate(request, on_status=lambda s: said.append((time.monotonic(), s))):
                pass
            return started

    with running_simulator(latency_per_image=0.4) as sim:
        started = asyncio.run(scenario(sim.url))
    texts = [s for _t, s in said]
    assert texts[:2] == ["Submitting…", "Generating…"], texts
    # Said long before the images are done (0.4 s each), not with them.
    generating_at = next(t for t, s in said if s == "Generating…")
    assert generating_at - started < 0.3, generating_at - started
    assert texts.count("Generating…") == 1

"""Async batches arrive image by image, whatever the output type, against the simulator
on 127.0.0.1 with no latency set (its rendering is the service's time, as in
tests/benchmarks/bench_clients.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from krea_desktop.api import spec
from krea_desktop.api.client import RunwareClient
from krea_desktop.api.request import GenerationRequest
from krea_desktop.simulator.server import SimulatorServer
from krea_desktop.simulator.service import SimulatorConfig, SimulatorService

N = 12


@pytest.fixture
def service() -> Iterator[tuple[SimulatorService, str]]:
    """Images as large as real ones (grain), so that rendering a batch takes a while."""
    svc = SimulatorService(SimulatorConfig(grain=1.0))
    server = SimulatorServer(svc)
    url = server.start_in_thread()
    try:
        yield svc, url
    finally:
        server.stop_thread()


def rendered(svc: SimulatorService, task_uuid: str) -> int:
    task = svc._tasks[task_uuid]
    return sum(item.data is not None for item in task.items)


@pytest.mark.parametrize("output_type", ["base64Data", "URL"])
def test_the_first_image_of_an_async_batch_comes_before_the_batch_is_done(
    service: tuple[SimulatorService, str], output_type: str
) -> None:
    svc, url = service
    request = GenerationRequest(
        "a lighthouse in fog", ratio="2.35:1", number_results=N, delivery_method="async", output_type=output_type
    )

    async def go() -> tuple[int, list[int]]:
        done_at_first = -1
        indexes = []
        async with RunwareClient("k", base_url=url) as client:
            async for image in client.generate(request):
                if not indexes:
                    done_at_first = rendered(svc, request.task_uuid)
                indexes.append(image.index)
                assert (image.width, image.height) == (1568, 672)
        return done_at_first, indexes

    done_at_first, indexes = asyncio.run(asyncio.wait_for(go(), 120))
    assert indexes == list(range(N))
    assert 1 <= done_at_first < N  # handed over while the service was still making the rest


def test_with_no_latency_a_poll_answers_with_the_images_rendered_so_far(service: tuple[SimulatorService, str]) -> None:
    """As the service does: finished items and processing ones, not a wait for the batch."""
    svc, url = service
    task: dict[str, Any] = {
        "taskType": "imageInference",
        "taskUUID": str(uuid.uuid4()),
        "model": spec.MODEL_ID,
        "positivePrompt": "a lighthouse in fog",
        "width": 1568,
        "height": 672,
        "numberResults": N,
        "outputType": "base64Data",
        "outputFormat": "PNG",
        "deliveryMethod": "async",
    }
    with httpx.Client(headers={"Authorization": "Bearer k"}, timeout=60) as http:
        ack = http.post(url, json=[task]).json()
        assert [d["status"] for d in ack["data"]] == ["processing"]
        poll = [{"taskType": "getResponse", "taskUUID": task["taskUUID"]}]
        statuses = [d["status"] for d in http.post(url, json=poll).json()["data"]]
        assert len(statuses) == N
        assert 1 <= statuses.count("success") < N  # it waited for the first image only
        while statuses.count("success") < N:
            time.sleep(0.1)
            statuses = [d["status"] for d in http.post(url, json=poll).json()["data"]]
    assert rendered(svc, task["taskUUID"]) == N

"""The simulator on 127.0.0.1, for tests that need a real HTTP peer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from krea_desktop.simulator.server import SimulatorServer
from krea_desktop.simulator.service import SimulatorConfig, SimulatorService


@dataclass
class Sim:
    service: SimulatorService
    url: str


@contextmanager
def running_simulator(latency_per_image: float = 0.0) -> Iterator[Sim]:
    service = SimulatorService(SimulatorConfig(latency_per_image=latency_per_image))
    server = SimulatorServer(service)
    url = server.start_in_thread()
    try:
        yield Sim(service, url)
    finally:
        server.stop_thread()

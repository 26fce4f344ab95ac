"""The simulator on 127.0.0.1, for tests that need a real HTTP peer."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from krea_desktop.simulator.server import SimulatorServer
from krea_desktop.simulator.service import SimulatorConfig, SimulatorService

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Sim:
    service: SimulatorService
    url: str


class Paced:
    """A simulator's settings whose tasks take the seconds of ``latencies`` in turn, and
    ten minutes each once those run out (``sim.service.config = Paced(sim.service.config,
    [...])``): a test decides which tasks come when, however busy the machine."""

    def __init__(self, config: Any, latencies: list[float]) -> None:
        self._config = config
        self._latencies = iter(latencies)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._config, name)

    @property
    def latency_per_image(self) -> float:
        return next(self._latencies, 600.0)


@contextmanager
def running_simulator(latency_per_image: float = 0.0) -> Iterator[Sim]:
    service = SimulatorService(SimulatorConfig(latency_per_image=latency_per_image))
    server = SimulatorServer(service)
    url = server.start_in_thread()
    try:
        yield Sim(service, url)
    finally:
        server.stop_thread()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def simulator_process(
    *args: str, env: dict[str, str] | None = None, nice: int = 0, port: int | None = None
) -> Iterator[str]:
    """``krea-desktop simulator`` as its own process on 127.0.0.1 (on ``port``, else a
    free one); yields its endpoint URL.

    ``nice`` lowers its CPU priority: it stands in for a service on another machine, so a
    measurement of the app's own responsiveness should not count its rendering."""
    port = free_port() if port is None else port
    command = [sys.executable, "-m", "krea_desktop", "simulator", "--port", str(port), *args]
    nice_tool = shutil.which("nice") if nice else None
    if nice_tool:  # the tool, not preexec_fn: forking a process that runs Qt threads
        command = [nice_tool, "-n", str(nice), *command]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"127.0.0.1:{port}" in line, line + (proc.stderr.read() if proc.stderr else "")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(10)

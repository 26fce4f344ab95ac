"""A local, Runware-compatible service for Krea 2 Medium (demo mode and tests).

- :class:`SimulatorService` answers Runware task arrays (validation, rendering, async
  delivery, uploads, faults).
- :class:`SimulatorServer` serves it on loopback; :class:`SimulatorTransport` plugs it
  into an ``httpx.AsyncClient`` in-process.
- :func:`parse_fault` reads fault specs such as ``503x2`` or ``429:retry-after=2``.
"""

from krea_desktop.simulator.faults import FAULT_KINDS, Fault, parse_fault
from krea_desktop.simulator.render import render_image
from krea_desktop.simulator.server import SimulatorServer
from krea_desktop.simulator.service import (
    CONFLICT_STATUS,
    Reply,
    SimulatorConfig,
    SimulatorService,
    TaskFailure,
    validate_inference,
)
from krea_desktop.simulator.transport import DEMO_URL, SimulatorTransport

__all__ = [
    "CONFLICT_STATUS",
    "DEMO_URL",
    "FAULT_KINDS",
    "Fault",
    "Reply",
    "SimulatorConfig",
    "SimulatorServer",
    "SimulatorService",
    "SimulatorTransport",
    "TaskFailure",
    "parse_fault",
    "render_image",
    "validate_inference",
]

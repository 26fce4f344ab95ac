from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.sim import Sim, running_simulator


@pytest.fixture
def sim() -> Iterator[Sim]:
    """The simulator served on 127.0.0.1 from a thread of this process."""
    with running_simulator() as s:
        yield s

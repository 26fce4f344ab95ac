"""The API key never leaves the places meant for it: not logs, settings, image metadata,
the index, crash output or error messages; and it only travels over HTTPS or loopback."""

from __future__ import annotations

import logging
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from pytestqt.qtbot import QtBot

from krea_desktop.api import errors as E
from krea_desktop.api.client import RetryPolicy, RunwareClient
from krea_desktop.simulator.faults import parse_fault
from krea_desktop.ui.app import create_main_window
from tests.helpers.keyrings import MemoryKeyring
from tests.helpers.sim import Sim, running_simulator

KEY = "sk-RECOGNISABLE-9f8e7d6c5b4a"
NEEDLES = [KEY.encode(), KEY.encode("utf-16-le"), KEY.encode("utf-16-be"), KEY[6:20].encode()]


def files_containing_key(folder: Path) -> list[str]:
    hits = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if any(n in data for n in NEEDLES):
                hits.append(str(path.relative_to(folder)))
    return hits


@pytest.fixture
def sim() -> Iterator[Sim]:
    with running_simulator() as s:
        s.service.config.api_key = KEY
        yield s


def test_the_window_never_writes_or_shows_the_key(
    qtbot: QtBot,
    sim: Sim,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    monkeypatch.setenv("RUNWARE_API_KEY", KEY)
    monkeypatch.setenv("RUNWARE_API_URL", sim.url)
    try:
        w = create_main_window()
        qtbot.addWidget(w)
        w.show()
        messages: list[str] = []
        w.client_thread.jobFailed.connect(lambda _j, msg, _e: messages.append(msg))
        w.prompt_panel.promptEdit.setPlainText("a key-safety check")
        w.prompt_panel.countSpin.setValue(2)
        with qtbot.waitSignal(w.client_thread.jobFinished, timeout=20000):
            w.generate()
        # failing ones: a service error, a malformed answer, a refused key
        w.client_thread.wait_ready().retry = RetryPolicy(attempts=2, base=0.01)
        for fault in ("500*:on=any", "malformed-json*:on=any"):
            sim.service.faults.clear()
            sim.service.inject(parse_fault(fault))
            with qtbot.waitSignal(w.client_thread.jobFailed, timeout=20000):
                w.generate()
        sim.service.faults.clear()
        sim.service.config.api_key = "another-key"
        with qtbot.waitSignal(w.client_thread.jobFailed, timeout=20000):
            w.generate()
        w.close()
    finally:
        keyring.set_keyring(previous)
    assert len(messages) == 3
    assert all(KEY not in m for m in messages)
    assert files_containing_key(data_dir) == []
    assert KEY not in caplog.text
    out, err = capfd.readouterr()
    assert KEY not in out + err
    assert w.library.count() == 2


def test_the_command_line_never_prints_or_stores_the_key(sim: Sim, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNWARE_", "KREA_DESKTOP_"))}
    env.update(
        KREA_DESKTOP_DATA_DIR=str(data),
        RUNWARE_API_KEY=KEY,
        RUNWARE_API_URL=sim.url,
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    outputs = []
    for fault in (None, "500*:on=any", "drop-before*:on=any"):
        sim.service.faults.clear()
        if fault:
            sim.service.inject(parse_fault(fault))
        r = subprocess.run(
            [sys.executable, "-m", "krea_desktop", "generate", "a key-safety check"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        outputs.append(r.stdout + r.stderr)
        assert (r.returncode == 0) == (fault is None), r.stderr
    # a crash: the key must not be in a traceback either
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import os; from krea_desktop.api.client import RunwareClient; "
                "c = RunwareClient(os.environ['RUNWARE_API_KEY'], base_url=os.environ['RUNWARE_API_URL']); "
                "raise RuntimeError(repr(c))"
            ),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0 and "RuntimeError" in r.stderr
    outputs.append(r.stdout + r.stderr)
    assert all(KEY not in o for o in outputs)
    assert files_containing_key(data) == []


def test_the_key_travels_only_over_https_or_loopback_with_verification_on() -> None:
    for url in ("http://api.runware.ai/v1", "http://10.0.0.8/v1", "http://example.test/v1"):
        with pytest.raises(E.ValidationError, match="HTTPS"):
            RunwareClient(KEY, base_url=url)
    client = RunwareClient(KEY, base_url="https://api.runware.ai/v1")
    pool = client._http._transport._pool  # type: ignore[attr-defined]
    assert pool._ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert pool._ssl_context.check_hostname
    # the key goes in the Authorization header of POSTs only, never in default headers
    assert "authorization" not in {k.lower() for k in client._http.headers}

"""`krea-desktop --smoke-test`, as CI runs it on the bundle, run here from the source tree:
it passes, checks the environment programs started by the app get, and leaves nothing
behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.packaging.conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    scratch = tmp_path_factory.mktemp("smoke")
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "TMPDIR": str(scratch),
        "HOME": str(scratch / "home"),
        "XDG_DATA_HOME": str(scratch / "home" / "data"),
        "XDG_CONFIG_HOME": str(scratch / "home" / "config"),
        "XDG_CACHE_HOME": str(scratch / "home" / "cache"),
    }
    env.pop("RUNWARE_API_KEY", None)
    env.pop("KREA_DESKTOP_DATA_DIR", None)
    done = subprocess.run(
        [sys.executable, "-m", "krea_desktop", "--smoke-test"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return done, scratch


def test_the_smoke_test_passes(smoke: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    done, _ = smoke
    assert done.returncode == 0, done.stdout + done.stderr
    assert "smoke: OK" in done.stdout
    # The image went through the base64 helper process, whatever its size.
    assert "smoke: base64 helper process decoded 1, failed 0" in done.stdout


def test_the_smoke_test_leaves_nothing_behind(smoke: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, scratch = smoke
    left = sorted(p.name for p in scratch.glob("krea-desktop-smoke-*"))
    assert not left, f"--smoke-test left {left} in the temporary folder"


def test_the_smoke_test_checks_what_started_programs_get(
    smoke: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    # run_app's smoke path runs krea_desktop.external.check_child_environment() and says so
    done, _ = smoke
    assert "smoke: child environment OK" in done.stdout.splitlines(), done.stdout

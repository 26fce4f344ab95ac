"""Programs the app starts get the user's environment, not the bundle's, and never block it."""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

import pytest

from krea_desktop import APP_ID, external

BUNDLE = "/opt/app/krea-desktop"
INTERNAL = f"{BUNDLE}/_internal"


def frozen_env(**extra: str) -> dict[str, str]:
    """An environment as a bundle's process sees it after the bootloader and the hooks ran."""
    return {
        "HOME": "/home/u",
        "PATH": "/usr/local/bin:/usr/bin",
        "LANG": "C.UTF-8",
        "LD_LIBRARY_PATH": INTERNAL,
        "QT_PLUGIN_PATH": f"{INTERNAL}/PySide6/Qt/plugins",
        "QML2_IMPORT_PATH": f"{INTERNAL}/PySide6/Qt/qml",
        "_PYI_APPLICATION_HOME_DIR": INTERNAL,
        "_PYI_ARCHIVE_FILE": f"{BUNDLE}/krea-desktop",
        "_PYI_PARENT_PROCESS_LEVEL": "1",
        "RESOURCE_NAME": APP_ID,
        "PWD": BUNDLE,
        **extra,
    }


def test_in_a_bundle_the_child_gets_none_of_the_bundles_variables() -> None:
    env = external.child_environment(frozen_env(), frozen=True, bundle=[BUNDLE, INTERNAL])
    assert env == {"HOME": "/home/u", "PATH": "/usr/local/bin:/usr/bin", "LANG": "C.UTF-8", "PWD": BUNDLE}


def test_in_a_bundle_the_users_own_values_come_back() -> None:
    env = frozen_env(
        LD_LIBRARY_PATH=f"{INTERNAL}:/opt/cuda/lib",
        LD_LIBRARY_PATH_ORIG="/opt/cuda/lib",
        QT_PLUGIN_PATH_ORIG="/home/u/qt-plugins",
        PATH=f"{INTERNAL}:/usr/bin",  # as the Windows hooks do, for example
        XDG_DATA_DIRS=f"{INTERNAL}/share:/usr/share",
        PYTHONPATH="/home/u/lib/python",
    )
    child = external.child_environment(env, frozen=True, bundle=[BUNDLE, INTERNAL])
    assert child["LD_LIBRARY_PATH"] == "/opt/cuda/lib"
    assert child["QT_PLUGIN_PATH"] == "/home/u/qt-plugins"
    assert child["PATH"] == "/usr/bin"
    assert child["XDG_DATA_DIRS"] == "/usr/share"
    assert child["PYTHONPATH"] == "/home/u/lib/python"
    assert "QML2_IMPORT_PATH" not in child
    assert not [name for name in child if name.endswith("_ORIG") or name.startswith("_PYI_")]


def test_the_runtime_hook_keeps_what_pyinstallers_hooks_overwrite() -> None:
    env = {"QT_PLUGIN_PATH": "/home/u/qt-plugins", "PATH": "/usr/bin"}
    external.record_original_environment(env)  # packaging/rthook_environment.py, first
    env["QT_PLUGIN_PATH"] = f"{INTERNAL}/PySide6/Qt/plugins"  # then PyInstaller's PySide6 hook
    env["QML2_IMPORT_PATH"] = f"{INTERNAL}/PySide6/Qt/qml"
    child = external.child_environment(env, frozen=True, bundle=[INTERNAL])
    assert child == {"QT_PLUGIN_PATH": "/home/u/qt-plugins", "PATH": "/usr/bin"}


def test_from_source_the_environment_is_passed_on_as_it_is() -> None:
    env = {"LD_LIBRARY_PATH": "/opt/x", "QT_PLUGIN_PATH": "/q", "RESOURCE_NAME": APP_ID, "HOME": "/h"}
    assert external.child_environment(env, frozen=False) == {
        "LD_LIBRARY_PATH": "/opt/x",
        "QT_PLUGIN_PATH": "/q",
        "HOME": "/h",
    }
    assert external.child_environment({"RESOURCE_NAME": "mine"}, frozen=False) == {"RESOURCE_NAME": "mine"}


@pytest.fixture
def opener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in xdg-open on an otherwise empty PATH: it waits for ``<record>.go`` (or a
    minute), then writes down its arguments and environment in ``<record>``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "opened"
    script = bin_dir / "xdg-open"
    script.write_text(
        f"#!/bin/sh\nn=0\nwhile [ ! -e {record}.go ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done\n"
        f"printf '%s\\n' \"$@\" > {record}.args\nenv > {record}.env\nmv {record}.args {record}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    return record


def wait_for(path: Path, timeout: float = 20.0) -> str:
    """What the stand-in opener wrote down, once it is let go on."""
    Path(f"{path}.go").touch()
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)
    return path.read_text()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="xdg-open is the opener on Linux")
def test_open_path_starts_the_opener_without_waiting_for_it(
    opener: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    internal = tmp_path / "bundle" / "_internal"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(internal), raising=False)
    monkeypatch.setenv("LD_LIBRARY_PATH", str(internal))
    monkeypatch.setenv("QT_PLUGIN_PATH", str(internal / "PySide6" / "Qt" / "plugins"))
    image = tmp_path / "an image.png"
    assert external.open_path_or_url(image) is True
    assert not opener.exists()  # started, not waited for: it waits to be let go on
    assert wait_for(opener).splitlines() == [str(image)]
    env = Path(f"{opener}.env").read_text()
    assert "LD_LIBRARY_PATH=" not in env and "QT_PLUGIN_PATH=" not in env and str(internal) not in env


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="xdg-open is the opener on Linux")
def test_urls_pass_as_they_are_and_a_path_never_reads_as_an_option(opener: Path, tmp_path: Path) -> None:
    assert external.open_path_or_url("https://runware.ai/docs?a=1&b=2")
    assert wait_for(opener).splitlines() == ["https://runware.ai/docs?a=1&b=2"]
    opener.unlink()
    assert external.open_path_or_url("--help")
    assert wait_for(opener).splitlines() == [os.path.abspath("--help")]


def test_without_an_opener_it_says_so_and_returns_false(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "platform", "linux")
    assert external.open_path_or_url(tmp_path / "x.png") is False
    assert "neither xdg-open nor gio" in caplog.text
    assert external.open_path_or_url("") is False
    assert external.open_path_or_url("bad\0name") is False
    assert external.start(["no-such-program-here"]) is None


def test_the_opener_for_each_platform(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert external.opener_command("/a.png", "darwin") == ["open", "/a.png"]
    assert external.opener_command("/a.png", "win32") is None
    for name in ("gio", "xdg-open"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
        expected = ["gio", "open", "/a.png"] if name == "gio" else ["xdg-open", "/a.png"]
        monkeypatch.setenv("PATH", str(tmp_path))
        assert external.opener_command("/a.png", "linux") == expected


@pytest.mark.skipif(os.name != "posix", reason="env(1) is POSIX")
def test_the_child_environment_check_passes_and_catches_a_leak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    internal = tmp_path / "bundle" / "_internal"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(internal), raising=False)
    monkeypatch.setenv("LD_LIBRARY_PATH", str(internal))
    monkeypatch.setenv("_PYI_APPLICATION_HOME_DIR", str(internal))
    assert external.check_child_environment() is None
    # a helper that passed the app's environment on unchanged
    monkeypatch.setattr(external, "child_environment", lambda env=None, **_: dict(os.environ))
    problem = external.check_child_environment()
    assert problem is not None
    assert "LD_LIBRARY_PATH names the bundle's folder" in problem
    assert "_PYI_APPLICATION_HOME_DIR was passed on" in problem

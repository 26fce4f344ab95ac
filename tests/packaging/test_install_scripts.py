"""install.sh puts a bundle under ~/.local; uninstall.sh removes exactly that and no user data.

Runs against a stand-in bundle folder (a shell-script launcher), never a real build.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from krea_desktop import APP_ID
from tests.packaging.conftest import PACKAGING, load_script

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the install scripts are for Linux")

build = load_script("build")


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    folder = tmp_path / "dist" / "krea-desktop"
    (folder / "_internal" / "lib").mkdir(parents=True)
    (folder / "_internal" / "lib" / "libexample.so").write_bytes(b"\x7fELF")
    launcher = folder / "krea-desktop"
    launcher.write_text('#!/bin/sh\necho "launched $*"\n')
    launcher.chmod(0o755)
    build.add_linux_integration(folder)
    return folder


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    data = folder / ".local" / "share" / "krea-desktop"
    (data / "images").mkdir(parents=True)
    (data / "library.sqlite").write_bytes(b"the user's library")
    (data / "images" / "one.png").write_bytes(b"an image")
    (folder / ".local" / "share" / "applications").mkdir()
    (folder / ".local" / "share" / "applications" / "other.desktop").write_text("[Desktop Entry]\n")
    return folder


def run(script: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "XDG_DATA_HOME"}
    env["HOME"] = str(home)
    done = subprocess.run(["sh", str(script), *args], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() or p.is_symlink()}


def test_install_then_uninstall_leaves_exactly_what_was_there(bundle: Path, home: Path) -> None:
    before = files_under(home)
    run(bundle / "install.sh", home)

    local = home / ".local"
    opt = local / "opt" / "krea-desktop"
    assert (opt / "krea-desktop").is_file() and (opt / "_internal" / "lib" / "libexample.so").is_file()
    link = local / "bin" / "krea-desktop"
    assert link.is_symlink() and link.resolve() == (opt / "krea-desktop").resolve()
    launched = subprocess.run([str(link), "a.png"], capture_output=True, text=True, check=True)
    assert launched.stdout.strip() == "launched a.png"

    desktop = local / "share" / "applications" / f"{APP_ID}.desktop"
    entry = configparser.ConfigParser(interpolation=None)
    entry.read(desktop)
    assert entry["Desktop Entry"]["Exec"] == f"{opt}/krea-desktop %F"
    assert (local / "share" / "metainfo" / f"{APP_ID}.metainfo.xml").is_file()
    for size in (16, 48, 512):
        assert (local / "share" / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png").is_file()
    if shutil.which("desktop-file-validate"):
        subprocess.run(["desktop-file-validate", str(desktop)], check=True)

    run(opt / "uninstall.sh", home)
    assert files_under(home) == before
    assert (local / "share" / "krea-desktop" / "library.sqlite").read_bytes() == b"the user's library"


def test_reinstalling_replaces_the_bundle_and_keeps_user_data(bundle: Path, home: Path) -> None:
    run(bundle / "install.sh", home)
    stale = home / ".local" / "opt" / "krea-desktop" / "_internal" / "from-the-old-version"
    stale.write_text("old")
    run(PACKAGING / "linux" / "install.sh", home, str(bundle))  # from the source tree this time
    assert not stale.exists()
    assert (home / ".local" / "share" / "krea-desktop" / "images" / "one.png").read_bytes() == b"an image"


def test_a_krea_desktop_command_that_is_not_ours_is_left_alone(bundle: Path, home: Path) -> None:
    own = home / ".local" / "bin" / "krea-desktop"
    own.parent.mkdir(parents=True)
    own.write_text("#!/bin/sh\necho pip-installed\n")
    done = run(bundle / "install.sh", home)
    assert "left" in done.stderr
    assert own.read_text() == "#!/bin/sh\necho pip-installed\n"
    run(home / ".local" / "opt" / "krea-desktop" / "uninstall.sh", home)
    assert own.read_text() == "#!/bin/sh\necho pip-installed\n"


def test_install_without_a_bundle_says_how_to_build_one(home: Path, tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(home)}
    done = subprocess.run(
        ["sh", str(PACKAGING / "linux" / "install.sh"), str(tmp_path / "nothing")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "packaging/build.py" in done.stderr

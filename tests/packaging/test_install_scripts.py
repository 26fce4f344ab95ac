"""install.sh puts each build in its own folder under ~/.local and switches to it in one step;
uninstall.sh removes every build, link, menu file and the folders install.sh made.

Runs against stand-in bundle folders (shell-script or copied-program launchers) and a
throwaway HOME, never a real build.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from krea_desktop import APP_ID, __version__
from tests.packaging.conftest import PACKAGING, load_script

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the install scripts are for Linux")

build = load_script("build")


def make_bundle(folder: Path, marker: str = "one", launcher: str | None = None) -> Path:
    """A stand-in built bundle: ``marker`` makes its content (and so its build id) its own;
    ``launcher`` is a program copied in as the launcher (default: a script that echoes)."""
    (folder / "_internal" / "lib").mkdir(parents=True)
    (folder / "_internal" / "lib" / "libexample.so").write_bytes(b"\x7fELF")
    (folder / "_internal" / "marker").write_text(marker)
    (folder / "_internal" / "libexample.so.1").symlink_to("lib/libexample.so")
    exe = folder / "krea-desktop"
    if launcher:
        shutil.copy2(launcher, exe)
    else:
        exe.write_text(f'#!/bin/sh\necho "launched {marker} $*"\n')
    exe.chmod(0o755)
    build.add_linux_integration(folder)
    build.write_build_id(folder)
    return folder


def build_id(bundle: Path) -> str:
    return (bundle / "BUILD_ID").read_text().strip()


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path / "dist" / "krea-desktop")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    data = folder / ".local" / "share" / "krea-desktop"
    (data / "images").mkdir(parents=True)
    (data / "library.sqlite").write_bytes(b"the user's library")
    (data / "images" / "one.png").write_bytes(b"an image")
    (folder / ".local" / "share" / "applications").mkdir()
    (folder / ".local" / "share" / "applications" / "other.desktop").write_text("[Desktop Entry]\n")
    # The user's default image viewer, which installing must leave as it is.
    (folder / ".config").mkdir()
    (folder / ".config" / "mimeapps.list").write_text("[Default Applications]\nimage/png=viewer.desktop\n")
    return folder


def run(script: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "XDG_DATA_HOME"}
    env["HOME"] = str(home)
    done = subprocess.run(["sh", str(script), *args], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def tree(folder: Path) -> dict[str, str]:
    """Every file, folder and link under ``folder`` with its content, target or mtime."""
    found = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            found[key] = "-> " + os.readlink(path)
        elif path.is_dir():
            found[key] = "dir"
        else:
            found[key] = f"{path.read_bytes()!r} {path.stat().st_mtime_ns} {path.stat().st_mode:o}"
    return found


def opt(home: Path) -> Path:
    return home / ".local" / "opt" / "krea-desktop"


def test_build_id_names_the_version_and_the_content(tmp_path: Path) -> None:
    one = make_bundle(tmp_path / "a", "one")
    same = make_bundle(tmp_path / "b", "one")
    other = make_bundle(tmp_path / "c", "two")
    assert build_id(one).startswith(f"{__version__}-") and len(build_id(one)) == len(__version__) + 13
    assert build_id(one) == build_id(same)
    assert build_id(one) != build_id(other)
    assert build.write_build_id(one) == build_id(one)  # writing it again does not change it


def test_install_then_uninstall_leaves_exactly_what_was_there(bundle: Path, home: Path) -> None:
    before = tree(home)
    run(bundle / "install.sh", home)

    local = home / ".local"
    version = opt(home) / "versions" / build_id(bundle)
    assert (version / "krea-desktop").is_file() and (version / "_internal" / "lib" / "libexample.so").is_file()
    assert os.readlink(version / "_internal" / "libexample.so.1") == "lib/libexample.so"
    assert os.readlink(opt(home) / "current") == f"versions/{build_id(bundle)}"
    link = local / "bin" / "krea-desktop"
    assert link.is_symlink() and link.resolve() == (version / "krea-desktop").resolve()
    launched = subprocess.run([str(link), "a.png"], capture_output=True, text=True, check=True)
    assert launched.stdout.strip() == "launched one a.png"

    desktop = local / "share" / "applications" / f"{APP_ID}.desktop"
    entry = configparser.ConfigParser(interpolation=None)
    entry.read(desktop)
    assert entry["Desktop Entry"]["Exec"] == f"{opt(home).resolve()}/current/krea-desktop %F"
    assert entry["Desktop Entry"]["TryExec"] == f"{opt(home).resolve()}/current/krea-desktop"
    assert (local / "share" / "metainfo" / f"{APP_ID}.metainfo.xml").is_file()
    for size in (16, 48, 512):
        assert (local / "share" / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png").is_file()
    svg = local / "share" / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"
    assert svg.read_bytes() == (PACKAGING.parent / "resources" / "icon.svg").read_bytes()
    if shutil.which("desktop-file-validate"):
        subprocess.run(["desktop-file-validate", str(desktop)], check=True)
    # "Open With" only: the default viewer is the user's choice, not the installer's.
    assert (home / ".config" / "mimeapps.list").read_text() == "[Default Applications]\nimage/png=viewer.desktop\n"
    assert not (local / "share" / "applications" / "mimeapps.list").exists()

    run(opt(home) / "uninstall.sh", home)
    assert tree(home) == before  # every file, link and folder, including the folders it made
    assert (local / "share" / "krea-desktop" / "library.sqlite").read_bytes() == b"the user's library"


@pytest.mark.parametrize("name", ["R&D", "a|b", 'q"uote $dollar `tick` back\\slash 100% done'])
def test_a_home_folder_named_with_any_character_gets_a_menu_entry_that_runs_it(
    bundle: Path, tmp_path: Path, name: str
) -> None:
    """The Exec line was made with sed: an & in the home folder's name put the matched text
    in its place, a | ended the expression (install failed halfway), and " $ ` \\ % went
    in unescaped."""
    from krea_desktop.desktop_entry import exec_argument

    home = tmp_path / name
    home.mkdir()
    run(bundle / "install.sh", home)
    desktop = home / ".local" / "share" / "applications" / f"{APP_ID}.desktop"
    lines = dict(line.split("=", 1) for line in desktop.read_text().splitlines() if "=" in line)
    launcher = f"{opt(home).resolve()}/current/krea-desktop"
    assert lines["Exec"] == exec_argument(launcher) + " %F"  # as the wheel's own entry writes it
    assert lines["TryExec"] == launcher.replace("\\", "\\\\")
    if shutil.which("desktop-file-validate"):
        subprocess.run(["desktop-file-validate", str(desktop)], check=True)
    run(opt(home) / "uninstall.sh", home)
    assert not desktop.exists()


def test_installing_the_same_build_again_changes_nothing(bundle: Path, home: Path) -> None:
    run(bundle / "install.sh", home)
    installed = tree(home)
    time.sleep(0.01)
    run(bundle / "install.sh", home)
    run(PACKAGING / "linux" / "install.sh", home, str(bundle))  # from the source tree this time
    assert tree(home) == installed


def test_an_upgrade_switches_current_and_keeps_the_previous_build_until_the_next(tmp_path: Path, home: Path) -> None:
    first, second, third = (make_bundle(tmp_path / n, n) for n in ("first", "second", "third"))
    versions = opt(home) / "versions"
    command = home / ".local" / "bin" / "krea-desktop"

    run(first / "install.sh", home)
    run(second / "install.sh", home)
    assert os.readlink(opt(home) / "current") == f"versions/{build_id(second)}"
    assert os.readlink(opt(home) / "previous") == f"versions/{build_id(first)}"
    assert {p.name for p in versions.iterdir()} == {build_id(first), build_id(second)}
    assert (
        subprocess.run([str(command)], capture_output=True, text=True, check=True).stdout.strip() == "launched second"
    )

    run(third / "install.sh", home)
    assert {p.name for p in versions.iterdir()} == {build_id(second), build_id(third)}
    assert os.readlink(opt(home) / "previous") == f"versions/{build_id(second)}"
    assert subprocess.run([str(command)], capture_output=True, text=True, check=True).stdout.strip() == "launched third"

    # Rolling back is installing the previous build again, from its own folder.
    run(opt(home) / "previous" / "install.sh", home)
    assert os.readlink(opt(home) / "current") == f"versions/{build_id(second)}"
    assert os.readlink(opt(home) / "previous") == f"versions/{build_id(third)}"
    assert (
        subprocess.run([str(command)], capture_output=True, text=True, check=True).stdout.strip() == "launched second"
    )

    run(opt(home) / "uninstall.sh", home)
    assert not (home / ".local" / "opt").exists() and not command.parent.exists()


@pytest.mark.skipif(not Path("/proc/self/exe").exists() or shutil.which("sleep") is None, reason="needs /proc")
def test_a_running_copy_keeps_its_files_until_it_exits(tmp_path: Path, home: Path) -> None:
    sleep = shutil.which("sleep")
    assert sleep
    first, second, third, fourth = (make_bundle(tmp_path / n, n, launcher=sleep) for n in ("a", "b", "c", "d"))
    run(first / "install.sh", home)
    running = subprocess.Popen([str(home / ".local" / "bin" / "krea-desktop"), "60"])
    try:
        time.sleep(0.2)
        first_folder = opt(home) / "versions" / build_id(first)
        assert os.readlink(f"/proc/{running.pid}/exe").startswith(str(first_folder.resolve()))
        run(second / "install.sh", home)
        done = run(third / "install.sh", home)  # the first is neither current nor previous now
        assert "kept" in done.stderr
        assert (first_folder / "krea-desktop").is_file() and (first_folder / "_internal" / "marker").is_file()
    finally:
        running.kill()
        running.wait()
    run(fourth / "install.sh", home)
    assert {p.name for p in (opt(home) / "versions").iterdir()} == {build_id(third), build_id(fourth)}


def test_an_install_from_before_versioned_folders_is_taken_over(bundle: Path, home: Path, tmp_path: Path) -> None:
    old = opt(home)
    (old / "_internal").mkdir(parents=True)
    (old / "krea-desktop").write_text("#!/bin/sh\necho old\n")
    (old / "uninstall.sh").write_text("#!/bin/sh\n")
    (home / ".local" / "bin").mkdir()
    (home / ".local" / "bin" / "krea-desktop").symlink_to(old / "krea-desktop")
    run(bundle / "install.sh", home)
    assert os.readlink(old / "previous") == "versions/legacy"
    assert (old / "versions" / "legacy" / "krea-desktop").is_file()
    assert not (old / "_internal").exists()
    assert os.readlink(home / ".local" / "bin" / "krea-desktop") == f"{old.resolve()}/current/krea-desktop"
    run(old / "uninstall.sh", home)
    assert not old.exists() and not (home / ".local" / "bin" / "krea-desktop").is_symlink()


def test_a_krea_desktop_command_that_is_not_ours_is_left_alone(bundle: Path, home: Path, tmp_path: Path) -> None:
    own = home / ".local" / "bin" / "krea-desktop"
    own.parent.mkdir(parents=True)
    own.write_text("#!/bin/sh\necho pip-installed\n")
    done = run(bundle / "install.sh", home)
    assert "left" in done.stderr
    assert own.read_text() == "#!/bin/sh\necho pip-installed\n"
    run(opt(home) / "uninstall.sh", home)
    assert own.read_text() == "#!/bin/sh\necho pip-installed\n"
    # nor a link to another copy (as pipx makes)
    own.unlink()
    elsewhere = tmp_path / "pipx" / "krea-desktop"
    elsewhere.parent.mkdir()
    elsewhere.write_text("#!/bin/sh\n")
    own.symlink_to(elsewhere)
    run(bundle / "install.sh", home)
    run(opt(home) / "uninstall.sh", home)
    assert os.readlink(own) == str(elsewhere)


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

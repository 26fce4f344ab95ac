"""`krea-desktop --install-desktop-entry` puts an installed wheel in the menu, under a
throwaway XDG data folder; `--uninstall-desktop-entry` takes it out again."""

from __future__ import annotations

import configparser
import fnmatch
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from krea_desktop import APP_ID, desktop_entry
from tests.packaging.conftest import ROOT

pytestmark = pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="freedesktop menus only")


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def read_entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def run_main(argv: list[str], home: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    return desktop_entry.main(argv)


def test_install_writes_the_entry_icons_and_metainfo_and_uninstall_removes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    data = home / ".local" / "share"
    (data / "applications").mkdir(parents=True)
    (data / "applications" / "other.desktop").write_text("[Desktop Entry]\n")
    (data / "metainfo").mkdir()  # a shared folder, empty: uninstalling leaves it
    before = files_under(home)
    folders_before = {p for p in home.rglob("*") if p.is_dir()}

    assert run_main(["--install-desktop-entry"], home, monkeypatch) == 0
    entry = read_entry(data / "applications" / f"{APP_ID}.desktop")
    command = desktop_entry.installed_command()
    assert entry["Exec"] == " ".join(desktop_entry.exec_argument(a) for a in command) + " %F"
    assert Path(command[0]).is_absolute()
    assert entry["Icon"] == APP_ID and entry["MimeType"] == "image/png;image/jpeg;image/webp;"
    assert (data / "metainfo" / f"{APP_ID}.metainfo.xml").read_bytes() == desktop_entry.METAINFO.read_bytes()
    for size in ("16x16", "48x48", "512x512"):
        assert (data / "icons" / "hicolor" / size / "apps" / f"{APP_ID}.png").is_file()
    svg = data / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"
    assert svg.read_bytes() == (ROOT / "resources" / "icon.svg").read_bytes()
    assert "Krea Desktop is in the application menu" in capsys.readouterr().out
    if shutil.which("desktop-file-validate"):
        subprocess.run(["desktop-file-validate", str(data / "applications" / f"{APP_ID}.desktop")], check=True)

    # again: nothing to change
    assert desktop_entry.install(data) == []
    assert run_main(["--uninstall-desktop-entry"], home, monkeypatch) == 0
    assert files_under(home) == before
    # And the icon folders it made for each size (icons/hicolor/48x48/apps…) go; the
    # shared folders stay, those there before (even empty) and icons/hicolor.
    assert {p for p in home.rglob("*") if p.is_dir()} == folders_before | {data / "icons", data / "icons" / "hicolor"}


def test_output_read_by_a_program_that_stops_early_is_no_failure(tmp_path: Path) -> None:
    """``--install-desktop-entry | head -3`` said "the menu entry could not be added …:
    Broken pipe", with every file written."""
    read, write = os.pipe()
    os.close(read)  # the reader has gone
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "krea_desktop", "--install-desktop-entry"],
            stdout=write, stderr=subprocess.PIPE, text=True, env=env, timeout=120, cwd=ROOT,
        )  # fmt: skip
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (0, "")
    assert (tmp_path / "data" / "applications" / f"{APP_ID}.desktop").is_file()


def test_a_menu_entry_that_cannot_be_written_is_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".local").write_text("a file where the folder would be")
    assert run_main(["--install-desktop-entry"], home, monkeypatch) == 1
    said = capsys.readouterr().err
    assert said.startswith(f"krea-desktop: the menu entry could not be added to {home / '.local' / 'share'}: ")
    assert said.count("\n") == 1 and said.endswith(".\n") and "[Errno" not in said


def test_a_menu_entry_with_a_folder_in_its_place_names_that_folder_not_a_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    in_the_way = home / ".local" / "share" / "applications" / "ai.krea.KreaDesktop.desktop"
    in_the_way.mkdir(parents=True)
    assert run_main(["--install-desktop-entry"], home, monkeypatch) == 1
    said = capsys.readouterr().err
    assert said.endswith(f": Is a directory ({in_the_way}).\n"), said
    assert ".tmp" not in said


def test_xdg_data_home_is_used_when_absolute(tmp_path: Path) -> None:
    assert desktop_entry.data_home({"XDG_DATA_HOME": str(tmp_path), "HOME": "/h"}) == tmp_path
    assert desktop_entry.data_home({"XDG_DATA_HOME": "relative", "HOME": "/h"}) == Path("/h/.local/share")
    assert desktop_entry.data_home({"HOME": "/h"}) == Path("/h/.local/share")


def test_exec_points_at_the_script_beside_this_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a pipx virtual environment: <venv>/bin/python and <venv>/bin/krea-desktop
    bin_dir = tmp_path / "pipx venv" / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "krea-desktop"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    assert desktop_entry.installed_command() == [str(script)]
    text = desktop_entry.desktop_entry_text(desktop_entry.installed_command())
    assert f'Exec="{script}" %F' in text.splitlines()
    assert f"TryExec={script}" in text.splitlines()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert desktop_entry.installed_command() == [str(bin_dir / "python")]


@pytest.mark.parametrize(
    ("arg", "written"),
    [
        ("/usr/bin/krea-desktop", "/usr/bin/krea-desktop"),
        ("/home/a b/krea-desktop", '"/home/a b/krea-desktop"'),
        ('/x/"q"$`', '"/x/\\\\"q\\\\"\\\\$\\\\`"'),
        ("/x/100%", '"/x/100%%"'),
        ("-m", "-m"),
    ],
)
def test_exec_arguments_are_quoted_as_the_specification_says(arg: str, written: str) -> None:
    assert desktop_entry.exec_argument(arg) == written


def test_the_wheel_ships_every_file_the_entry_needs() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["krea_desktop"]
    package = ROOT / "krea_desktop"
    needed = [desktop_entry.DESKTOP_TEMPLATE, desktop_entry.METAINFO, *desktop_entry.icon_files().values()]
    assert any(p.suffix == ".svg" for p in needed)
    for path in needed:
        relative = path.relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative


def test_it_is_for_freedesktop_systems_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert desktop_entry.main(["--install-desktop-entry"]) == 2
    assert "freedesktop" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        desktop_entry.main([])


def test_a_file_that_cannot_be_written_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    (home / ".local" / "share").mkdir(parents=True)
    (home / ".local" / "share" / "applications").write_text("a file where a folder should be")
    assert run_main(["--install-desktop-entry"], home, monkeypatch) == 1
    assert capsys.readouterr().err.startswith("krea-desktop: ")
    assert os.path.isfile(home / ".local" / "share" / "applications")

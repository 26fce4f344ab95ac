"""The .desktop file and AppStream metainfo name one application id and pass the validators."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from krea_desktop import APP_ID, APP_NAME, __version__
from tests.packaging.conftest import PACKAGING

# Package data: the bundle's share/ folder and `krea-desktop --install-desktop-entry` both
# install these.
FREEDESKTOP = PACKAGING.parent / "krea_desktop" / "resources" / "linux"
DESKTOP = FREEDESKTOP / f"{APP_ID}.desktop"
METAINFO = FREEDESKTOP / f"{APP_ID}.metainfo.xml"


def desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DESKTOP, encoding="utf-8")
    return parser["Desktop Entry"]


def test_desktop_entry_names_the_app_id_and_opens_images() -> None:
    entry = desktop_entry()
    assert entry["Name"] == APP_NAME
    assert entry["Icon"] == APP_ID
    assert entry["StartupWMClass"] == APP_ID
    assert entry["Exec"] == "krea-desktop %F"
    assert entry["Terminal"] == "false"
    assert set(entry["Categories"].strip(";").split(";")) >= {"Graphics", "2DGraphics"}
    assert set(entry["MimeType"].strip(";").split(";")) == {"image/png", "image/jpeg", "image/webp"}


def test_metainfo_names_the_same_app_and_version() -> None:
    root = ET.parse(METAINFO).getroot()
    assert root.get("type") == "desktop-application"
    assert root.findtext("id") == APP_ID
    assert root.findtext("name") == APP_NAME
    launchable = root.find("launchable")
    assert launchable is not None and launchable.text == DESKTOP.name
    assert root.find("releases/release").get("version") == __version__  # type: ignore[union-attr]


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils is not installed")
def test_desktop_file_validates() -> None:
    done = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("appstreamcli") is None, reason="appstream is not installed")
def test_metainfo_validates() -> None:
    done = subprocess.run(
        ["appstreamcli", "validate", "--no-net", str(METAINFO)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr

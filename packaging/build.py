"""Build the double-clickable bundle with PyInstaller, then say how big it is.

    .venv/bin/pip install -e '.[bundle]'
    .venv/bin/python packaging/build.py

Writes ``dist/krea-desktop/`` (``dist/Krea Desktop.app`` as well on macOS); build files go
to ``build/``. On Linux the folder also gets what ``install.sh`` puts in the user's menu:
``share/applications``, ``share/metainfo``, ``share/icons/hicolor``, and the install and
uninstall scripts, so the folder can be copied or archived and installed from anywhere.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "packaging" / "krea-desktop.spec"
LINUX = ROOT / "packaging" / "linux"
HICOLOR = ROOT / "krea_desktop" / "resources" / "icons" / "hicolor"
sys.path.insert(0, str(ROOT))

from krea_desktop import APP_ID, APP_NAME  # noqa: E402


def folder_size(path: Path) -> tuple[int, int]:
    """Bytes and files under ``path``, not following symbolic links."""
    total = files = 0
    for dirpath, _dirs, names in os.walk(path):
        for name in names:
            total += os.lstat(os.path.join(dirpath, name)).st_size
            files += 1
    return total, files


def add_linux_integration(bundle: Path) -> None:
    share = bundle / "share"
    if share.exists():
        shutil.rmtree(share)
    (share / "applications").mkdir(parents=True)
    (share / "metainfo").mkdir()
    shutil.copy2(LINUX / f"{APP_ID}.desktop", share / "applications")
    shutil.copy2(LINUX / f"{APP_ID}.metainfo.xml", share / "metainfo")
    shutil.copytree(HICOLOR, share / "icons" / "hicolor")
    for script in ("install.sh", "uninstall.sh"):
        shutil.copy2(LINUX / script, bundle / script)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="where the bundle goes (default: dist/)")
    parser.add_argument("--work", type=Path, default=ROOT / "build", help="PyInstaller's work folder (default: build/)")
    args = parser.parse_args(argv)
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--clean",
        "--log-level",
        "WARN",
        "--distpath",
        str(args.dist),
        "--workpath",
        str(args.work),
        str(SPEC),
    ]
    print("build:", " ".join(command), flush=True)
    done = subprocess.run(command, cwd=ROOT, check=False)
    if done.returncode != 0:
        print(f"build: PyInstaller failed (exit {done.returncode})", file=sys.stderr)
        return done.returncode
    bundle = args.dist / "krea-desktop"
    if sys.platform.startswith("linux"):
        add_linux_integration(bundle)
    size, files = folder_size(bundle)
    print(f"build: {bundle} is {size / 1e6:.1f} MB in {files} files", flush=True)
    app = args.dist / f"{APP_NAME}.app"
    if sys.platform == "darwin" and app.exists():
        size, files = folder_size(app)
        print(f"build: {app} is {size / 1e6:.1f} MB in {files} files", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

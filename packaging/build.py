"""Build the double-clickable bundle with PyInstaller, then say how big it is.

    .venv/bin/pip install -e '.[bundle]'
    .venv/bin/python packaging/build.py

Writes ``dist/krea-desktop/`` (``dist/Krea Desktop.app`` as well on macOS); build files go
to ``build/``. On Linux the folder also gets what ``install.sh`` puts in the user's menu:
``share/applications``, ``share/metainfo``, ``share/icons/hicolor``, and the install and
uninstall scripts, so the folder can be copied or archived and installed from anywhere; and
``BUILD_ID`` (the version and a hash of the folder's content, ``0.1.0-1a2b3c4d5e6f``), which
names the folder ``install.sh`` installs it into. It then reports the bundle's size, its
glibc floor and the libraries it needs from the system (``elfdeps.py``); ``--archive`` also
writes ``dist/krea-desktop-<BUILD_ID>-linux-<machine>.tar.gz`` and reports its size.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "packaging" / "krea-desktop.spec"
LINUX = ROOT / "packaging" / "linux"
FREEDESKTOP = ROOT / "krea_desktop" / "resources" / "linux"
HICOLOR = ROOT / "krea_desktop" / "resources" / "icons" / "hicolor"
BUILD_ID_FILE = "BUILD_ID"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "packaging"))

import elfdeps  # noqa: E402

from krea_desktop import APP_ID, APP_NAME, __version__  # noqa: E402


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
    shutil.copy2(FREEDESKTOP / f"{APP_ID}.desktop", share / "applications")
    shutil.copy2(FREEDESKTOP / f"{APP_ID}.metainfo.xml", share / "metainfo")
    # The PNG sizes and the scalable SVG.
    shutil.copytree(HICOLOR, share / "icons" / "hicolor")
    for script in ("install.sh", "uninstall.sh"):
        shutil.copy2(LINUX / script, bundle / script)


def content_hash(folder: Path) -> str:
    """A hash of every file's path, mode and content (and every link's target) under
    ``folder``, apart from ``BUILD_ID``: equal folders give equal hashes."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*"), key=lambda p: p.relative_to(folder).as_posix()):
        relative = path.relative_to(folder).as_posix()
        if relative == BUILD_ID_FILE:
            continue
        if path.is_symlink():
            digest.update(f"L {relative} {os.readlink(path)}\n".encode())
        elif path.is_file():
            digest.update(f"F {relative} {path.stat().st_mode & 0o111:o}\n".encode())
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        elif path.is_dir():
            digest.update(f"D {relative}\n".encode())
    return digest.hexdigest()


def write_build_id(bundle: Path, version: str = __version__) -> str:
    """Write ``BUILD_ID`` (``VERSION-HASH12``) into ``bundle`` and return it."""
    build_id = f"{version}-{content_hash(bundle)[:12]}"
    (bundle / BUILD_ID_FILE).write_text(build_id + "\n", encoding="ascii")
    return build_id


def archive(bundle: Path, build_id: str) -> Path:
    """``krea-desktop-<BUILD_ID>-linux-<machine>.tar.gz`` beside ``bundle``, holding it."""
    target = bundle.parent / f"krea-desktop-{build_id}-{sys.platform.rstrip('0123456789')}-{platform.machine()}.tar.gz"
    with tarfile.open(target, "w:gz", compresslevel=6) as tar:
        tar.add(bundle, arcname=bundle.name)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="where the bundle goes (default: dist/)")
    parser.add_argument("--work", type=Path, default=ROOT / "build", help="PyInstaller's work folder (default: build/)")
    parser.add_argument("--archive", action="store_true", help="also write a .tar.gz of the bundle (Linux)")
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
        build_id = write_build_id(bundle)
        print(f"build: build id {build_id}", flush=True)
    size, files = folder_size(bundle)
    print(f"build: {bundle} is {size / 1e6:.1f} MB in {files} files", flush=True)
    if sys.platform.startswith("linux"):
        found = elfdeps.report(bundle)
        print(
            f"build: glibc floor {found['glibc_floor']} (set by {', '.join(found['glibc_floor_set_by'])})",  # type: ignore[arg-type]
            flush=True,
        )
        print(f"build: libraries it needs from the system: {' '.join(found['host_libraries'])}", flush=True)  # type: ignore[arg-type]
        if args.archive:
            packed = archive(bundle, build_id)
            print(f"build: {packed} is {packed.stat().st_size / 1e6:.1f} MB", flush=True)
    app = args.dist / f"{APP_NAME}.app"
    if sys.platform == "darwin" and app.exists():
        size, files = folder_size(app)
        print(f"build: {app} is {size / 1e6:.1f} MB in {files} files", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

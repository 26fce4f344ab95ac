"""The menu entry, icons and AppStream metadata for an installed copy of the app (a wheel
installed with pipx or pip, or a bundle), in the user's freedesktop data folder:

    krea-desktop --install-desktop-entry     # writes them, pointing at this copy
    krea-desktop --uninstall-desktop-entry   # removes them again

Written under ``$XDG_DATA_HOME`` (default ``~/.local/share``):
``applications/ai.krea.KreaDesktop.desktop`` (``Exec=`` names this copy's ``krea-desktop``
by its full path), ``metainfo/ai.krea.KreaDesktop.metainfo.xml`` and
``icons/hicolor/<N>x<N>/apps/ai.krea.KreaDesktop.png`` and ``.../scalable/apps/...svg``.
The entry offers the app in "Open With" for PNG, JPEG and WEBP; the user's default viewer
for those types is left as it is. Standard library only, no Qt.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from krea_desktop import APP_ID, APP_NAME
from krea_desktop.external import child_environment
from krea_desktop.fsutil import atomic_write
from krea_desktop.wording import counted

RESOURCES = Path(__file__).resolve().parent / "resources"
DESKTOP_TEMPLATE = RESOURCES / "linux" / f"{APP_ID}.desktop"
METAINFO = RESOURCES / "linux" / f"{APP_ID}.metainfo.xml"
HICOLOR = RESOURCES / "icons" / "hicolor"
COMMAND = "krea-desktop"
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._+-")


def data_home(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME``, or ``~/.local/share`` when it is unset or not absolute."""
    env = os.environ if env is None else env
    value = env.get("XDG_DATA_HOME", "")
    if value and os.path.isabs(value):
        return Path(value)
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "share"


def installed_command() -> list[str]:
    """How to start this copy of the app: the bundle's launcher, the ``krea-desktop`` script
    beside this Python (a virtual environment's, as pipx makes), or this Python with ``-m``."""
    if getattr(sys, "frozen", False):
        return [os.path.abspath(sys.executable)]
    beside = Path(sys.executable).parent / (COMMAND + (".exe" if os.name == "nt" else ""))
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(Path(os.path.abspath(beside)))]
    found = shutil.which(COMMAND)
    if found:
        return [os.path.abspath(found)]
    return [os.path.abspath(sys.executable), "-m", "krea_desktop"]


def exec_argument(arg: str) -> str:
    """``arg`` as one argument of a desktop entry's ``Exec=`` key (quoted where the
    specification asks, then escaped as a string value)."""
    if arg and set(arg) <= _SAFE:
        quoted = arg
    else:
        escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
        quoted = f'"{escaped}"'
    return quoted.replace("\\", "\\\\").replace("%", "%%")


def desktop_entry_text(command: Sequence[str]) -> str:
    """The packaged menu entry with ``Exec=`` and ``TryExec=`` pointing at ``command``."""
    lines = []
    for line in DESKTOP_TEMPLATE.read_text(encoding="utf-8").splitlines():
        if line.startswith("Exec="):
            line = "Exec=" + " ".join(exec_argument(a) for a in command) + " %F"
        elif line.startswith("TryExec="):
            line = "TryExec=" + command[0].replace("\\", "\\\\")
        lines.append(line)
    return "\n".join(lines) + "\n"


def icon_files() -> dict[str, Path]:
    """The packaged icons by their path under ``icons/hicolor``."""
    found: dict[str, Path] = {}
    if HICOLOR.is_dir():
        for path in sorted(HICOLOR.glob(f"*/apps/{APP_ID}.*")):
            if path.suffix in (".png", ".svg"):
                found[path.relative_to(HICOLOR).as_posix()] = path
    return found


def planned_files(data: Path, command: Sequence[str]) -> dict[Path, bytes]:
    """Every file ``install`` writes, with its content."""
    files = {
        data / "applications" / f"{APP_ID}.desktop": desktop_entry_text(command).encode("utf-8"),
        data / "metainfo" / f"{APP_ID}.metainfo.xml": METAINFO.read_bytes(),
    }
    for relative, source in icon_files().items():
        files[data / "icons" / "hicolor" / relative] = source.read_bytes()
    return files


def _refresh(data: Path) -> None:
    """Let the menu and the icon theme see the change now (where their tools are installed)."""
    env = child_environment()
    tools = []
    if shutil.which("update-desktop-database", path=env.get("PATH")) and (data / "applications").is_dir():
        tools.append(["update-desktop-database", "-q", str(data / "applications")])
    # Only an icon cache that exists is refreshed: a new one would hide icons added later.
    if (data / "icons" / "hicolor" / "icon-theme.cache").is_file() and shutil.which(
        "gtk-update-icon-cache", path=env.get("PATH")
    ):
        tools.append(["gtk-update-icon-cache", "-q", "-t", "-f", str(data / "icons" / "hicolor")])
    for command in tools:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False)


def install(data: Path | None = None, command: Sequence[str] | None = None) -> list[Path]:
    """Write the menu entry, metainfo and icons; returns the files that changed (none when
    they were already as they should be)."""
    data = data_home() if data is None else data
    changed = []
    for path, content in planned_files(data, installed_command() if command is None else command).items():
        with contextlib.suppress(OSError):
            if path.read_bytes() == content:
                continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, content, mode=0o644)
        except OSError as err:  # named by the file it is about, not a temporary file beside it
            raise OSError(err.errno, err.strerror or str(err), str(path)) from err
        changed.append(path)
    if changed:
        _refresh(data)
    return changed


def uninstall(data: Path | None = None) -> list[Path]:
    """Remove what ``install`` writes; returns the files removed."""
    data = data_home() if data is None else data
    removed = []
    for path in planned_files(data, [COMMAND]):
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(path)
    # The icon folders installing made for each size (icons/hicolor/48x48/apps and
    # 48x48), once empty; the shared ones (applications, metainfo, icons/hicolor), which
    # other apps use and may have had empty, stay.
    hicolor = data / "icons" / "hicolor"
    for apps in sorted({p.parent for p in removed if p.parent.parent.parent == hicolor}):
        for folder in (apps, apps.parent):
            try:
                folder.rmdir()
            except OSError:
                break
    if removed:
        _refresh(data)
        cache = data / "applications" / "mimeinfo.cache"
        # A cache that lists nothing any more is only what installing left behind.
        with contextlib.suppress(OSError):
            lines = cache.read_text(encoding="utf-8").splitlines()
            if all(line.strip() in ("", "[MIME Cache]") for line in lines):
                cache.unlink()
    return removed


def main(argv: Sequence[str] | None = None) -> int:
    """``krea-desktop --install-desktop-entry`` / ``--uninstall-desktop-entry``."""
    parser = argparse.ArgumentParser(
        prog="krea-desktop", description="Add this copy of the app to the desktop's menu, or remove it."
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--install-desktop-entry", action="store_true", help="add the menu entry, icons and metainfo")
    action.add_argument("--uninstall-desktop-entry", action="store_true", help="remove them")
    args = parser.parse_args(argv)
    if sys.platform == "darwin" or os.name == "nt":
        print("krea-desktop: desktop entries are for Linux and other freedesktop systems", file=sys.stderr)
        return 2
    from krea_desktop import console

    data = data_home()
    try:
        if args.install_desktop_entry:
            changed = install(data)
            command = installed_command()
            said = [f"{APP_NAME} is in the application menu (runs {' '.join(command)}); files in {data}:"]
            said += [f"  {path}{'' if path in changed else ' (unchanged)'}" for path in planned_files(data, command)]
        else:
            removed = uninstall(data)
            said = [f"Removed {counted(len(removed), 'file')} of {APP_NAME}'s menu entry from {data}."]
    except OSError as err:
        what = "added to" if args.install_desktop_entry else "removed from"
        where = f" ({err.filename})" if err.filename else ""
        print(
            f"krea-desktop: the menu entry could not be {what} {data}: {err.strerror or err}{where}.", file=sys.stderr
        )
        return 1
    # Said once it is done, and only said: output read by a program that stops early
    # (| head) was taken for the entry failing ("could not be added: Broken pipe").
    for line in said:
        console.line(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

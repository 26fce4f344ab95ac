"""Starting other programs (the file manager, the image viewer, the web browser) as the user
would: detached, and with the user's environment rather than the app's own.

A PyInstaller bundle changes the environment of its own process so that it finds its copies
of Python and Qt: the bootloader puts the bundle's folder first in ``LD_LIBRARY_PATH`` (saving
the user's value, if any, in ``LD_LIBRARY_PATH_ORIG``), the PySide6 runtime hook points
``QT_PLUGIN_PATH`` and ``QML2_IMPORT_PATH`` into the bundle, and ``_PYI_*`` variables tell a
bundle's child processes where their parent unpacked. A program started with that
environment loads the bundle's libraries and Qt plugins instead of its own, and crashes or
misbehaves. :func:`child_environment` undoes all of it; :func:`start` and
:func:`open_path_or_url` use it for every program they start.

The bundle's runtime hook (``packaging/rthook_environment.py``) calls
:func:`record_original_environment` before any other hook runs, so the user's own values of
the variables the hooks overwrite are kept in ``NAME_ORIG``, as the bootloader does for
``LD_LIBRARY_PATH``.

Standard library only: no Qt, nothing else of the app.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence

from krea_desktop import APP_ID

log = logging.getLogger(__name__)

# The dynamic loader's search paths; the bootloader saves the user's value in NAME_ORIG.
LOADER_VARIABLES = ("LD_LIBRARY_PATH", "LIBPATH", "DYLD_LIBRARY_PATH", "DYLD_FRAMEWORK_PATH")
# Set by the bundle's runtime hooks for its own Python and Qt; packaging/rthook_environment.py
# saves the user's values of these in NAME_ORIG before the hooks run.
RUNTIME_VARIABLES = (
    "QT_PLUGIN_PATH",
    "QML2_IMPORT_PATH",
    "QML_IMPORT_PATH",
    "QT_QPA_PLATFORM_PLUGIN_PATH",
    "PYTHONHOME",
    "PYTHONPATH",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
RESTORED_VARIABLES = LOADER_VARIABLES + RUNTIME_VARIABLES
# The bootloader's own bookkeeping, meant for a bundle's child copies of itself only.
_BOOTLOADER_VARIABLE = re.compile(r"^(_PYI_\w*|_MEIPASS2|PYINSTALLER_RESET_ENVIRONMENT)$")
# Working-folder variables name where the user is, whatever that folder holds.
_LEFT_AS_THEY_ARE = frozenset({"PWD", "OLDPWD"})
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")  # two letters at least: "C:\..." is a path


def is_frozen() -> bool:
    """Whether this process runs from a PyInstaller bundle."""
    return bool(getattr(sys, "frozen", False))


def bundle_folders() -> tuple[str, ...]:
    """The folders of the bundle this process runs from (none when not frozen)."""
    if not is_frozen():
        return ()
    folders = {os.path.dirname(os.path.abspath(sys.executable))}
    internal = getattr(sys, "_MEIPASS", None)
    if internal:
        folders.add(os.path.abspath(internal))
    return tuple(sorted(folders))


def record_original_environment(env: dict[str, str] | os._Environ[str] | None = None) -> None:
    """Keep the user's values of RUNTIME_VARIABLES in ``NAME_ORIG`` before the bundle's runtime
    hooks replace them (a variable left unset gets no ``NAME_ORIG``). Called once, first thing
    in the bundle; a value already saved (by the process that started this one) is kept."""
    target = os.environ if env is None else env
    for name in RUNTIME_VARIABLES:
        value = target.get(name)
        if value is not None and f"{name}_ORIG" not in target:
            target[f"{name}_ORIG"] = value


def _inside(path: str, folders: Sequence[str]) -> bool:
    if not path or not os.path.isabs(path):
        return False
    path = os.path.normpath(path)
    return any(path == folder or path.startswith(folder.rstrip(os.sep) + os.sep) for folder in folders)


def _without_folders(value: str, folders: Sequence[str]) -> str | None:
    """``value`` (a path or a list of paths) without the entries inside ``folders``; None
    when nothing is left."""
    entries = value.split(os.pathsep)
    kept = [entry for entry in entries if not _inside(entry, folders)]
    if len(kept) == len(entries):
        return value
    kept = [entry for entry in kept if entry]
    return os.pathsep.join(kept) if kept else None


def child_environment(
    env: Mapping[str, str] | None = None,
    *,
    frozen: bool | None = None,
    bundle: Sequence[str] | None = None,
) -> dict[str, str]:
    """The environment to start another program with: the user's, as it was before this app
    started.

    ``env`` defaults to this process's environment; ``frozen`` and ``bundle`` (the bundle's
    folders) default to this process's. In a bundle, every variable saved in ``NAME_ORIG``
    gets that value back, the bundle's folders are taken out of every variable that lists
    them (a variable left empty is dropped), and the bootloader's own variables go. In any
    case, the X11 resource name the app gives its own windows is not passed on.
    """
    result = dict(os.environ if env is None else env)
    if result.get("RESOURCE_NAME") == APP_ID:
        del result["RESOURCE_NAME"]
    if not (is_frozen() if frozen is None else frozen):
        return result
    folders = tuple(os.path.normpath(f) for f in (bundle_folders() if bundle is None else bundle))
    for name in RESTORED_VARIABLES:
        original = result.pop(f"{name}_ORIG", None)
        if original is not None:
            result[name] = original
        elif name in result:
            cleaned = _without_folders(result[name], folders) if folders else None
            if cleaned is None:
                del result[name]
            else:
                result[name] = cleaned
    for name in list(result):
        if _BOOTLOADER_VARIABLE.match(name):
            del result[name]
        elif folders and name not in _LEFT_AS_THEY_ARE and name not in RESTORED_VARIABLES:
            cleaned = _without_folders(result[name], folders)
            if cleaned is None:
                del result[name]
            else:
                result[name] = cleaned
    return result


def _reap(proc: subprocess.Popen[bytes], argv0: str) -> None:
    try:
        code = proc.wait()
    except Exception:  # pragma: no cover - wait() only fails if the process table is broken
        return
    if code:
        log.warning("%s exited with status %s", argv0, code)


def start(argv: Sequence[str], *, capture: bool = False) -> subprocess.Popen[bytes] | None:
    """Start ``argv`` with :func:`child_environment`, in its own session, not waiting for it.

    With ``capture`` its standard output is a pipe the caller reads (and the caller waits
    for it); otherwise a background thread collects its exit status. None, with a log line,
    when it cannot be started.
    """
    env = child_environment()
    program = shutil.which(argv[0], path=env.get("PATH", os.defpath)) if argv else None
    if program is None:
        log.warning("cannot start %s: not found", argv[0] if argv else "nothing")
        return None
    kwargs: dict[str, object] = {}
    if os.name == "posix":
        kwargs["start_new_session"] = True
    else:  # pragma: no cover - Windows
        kwargs["creationflags"] = getattr(subprocess, "DETACHED_PROCESS", 0) | getattr(
            subprocess, "CREATE_NEW_PROCESS_GROUP", 0
        )
    try:
        proc = subprocess.Popen(
            [program, *argv[1:]],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            **kwargs,  # type: ignore[call-overload]
        )
    except (OSError, ValueError) as err:
        log.warning("cannot start %s: %s", argv[0], err)
        return None
    if not capture:
        threading.Thread(target=_reap, args=(proc, argv[0]), name=f"reap-{argv[0]}", daemon=True).start()
    return proc


def opener_command(target: str, platform: str | None = None) -> list[str] | None:
    """The command that opens ``target`` (a URL or an absolute path) in the user's default
    program on ``platform`` (default: this one), or None where there is none to run."""
    platform = sys.platform if platform is None else platform
    if platform == "darwin":
        return ["open", target]
    if platform.startswith("win"):
        return None  # os.startfile
    env = child_environment()
    path = env.get("PATH", os.defpath)
    if shutil.which("xdg-open", path=path):
        return ["xdg-open", target]
    if shutil.which("gio", path=path):
        return ["gio", "open", target]
    return None


def _normalised(target: str | os.PathLike[str]) -> str | None:
    text = os.fspath(target)
    if not text or "\0" in text:
        return None
    if isinstance(target, os.PathLike) or not _URL.match(text):
        text = os.path.abspath(text)  # an absolute path never reads as an option ("-x")
    return text


def open_path_or_url(target: str | os.PathLike[str]) -> bool:
    """Open a file, a folder or a URL in the user's default program, as a double-click in
    the file manager would. Returns at once: True when the opener started, False (with a
    log line) when there is none or it could not start. Never raises."""
    try:
        text = _normalised(target)
        if text is None:
            log.warning("nothing to open: %r", target)
            return False
        if sys.platform.startswith("win"):  # pragma: no cover - Windows
            os.startfile(text)  # type: ignore[attr-defined]
            return True
        command = opener_command(text)
        if command is None:
            log.warning("cannot open %s: neither xdg-open nor gio is installed", text)
            return False
        return start(command) is not None
    except Exception:
        log.exception("cannot open %r", target)
        return False


def check_child_environment(timeout: float = 10.0) -> str | None:
    """Start ``env`` through :func:`start` and compare the environment it received with the
    one it should have. Returns a sentence saying what is wrong, or None when it is right
    (and where there is no ``env`` program to ask)."""
    if os.name != "posix":
        return None
    expected = child_environment()
    proc = start(["env", "-0"], capture=True)
    if proc is None:
        return "could not start env"
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return f"env did not finish within {timeout:g} s"
    if proc.returncode != 0:
        return f"env exited with status {proc.returncode}"
    received: dict[str, str] = {}
    for item in out.decode("utf-8", "surrogateescape").split("\0"):
        name, sep, value = item.partition("=")
        if sep:
            received[name] = value
    problems: list[str] = []
    for name in sorted(set(expected) | set(received)):
        if expected.get(name) != received.get(name):
            problems.append(f"{name}={received.get(name)!r} (expected {expected.get(name)!r})")
    folders = bundle_folders()
    for name, value in sorted(received.items()):
        if name not in _LEFT_AS_THEY_ARE and any(_inside(p, folders) for p in value.split(os.pathsep)):
            problems.append(f"{name} names the bundle's folder ({value})")
        if _BOOTLOADER_VARIABLE.match(name) or (name.endswith("_ORIG") and name[:-5] in RESTORED_VARIABLES):
            problems.append(f"{name} was passed on")
    if problems:
        return "a started program's environment is not the user's: " + "; ".join(dict.fromkeys(problems))
    return None

"""Whether the window can open here, asked before Qt is: on Linux and other X11/Wayland
systems Qt aborts the process (a paragraph about reinstalling, exit 134) when the
display named does not answer, refuses this user, or its X11 support lacks a system
library. Each of those is one sentence here instead. No Qt: these run before it loads.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path


def no_display() -> str | None:
    """Why a window cannot be shown, on Linux and other X11/Wayland systems, where Qt
    would abort the process: no display named (and no Qt platform chosen), or none of
    those named answering (an SSH X forward that ended, a Wayland session gone). None
    when one answers, or cannot be told not to."""
    return find_display()[0]


def find_display() -> tuple[str | None, str]:
    """:func:`no_display`'s answer, and the X11 display the window will open on ("" for
    another platform): whether that one lets this user in, and whether Qt's X11 support
    loads, are asked beside the imports (:class:`X11Preflight`)."""
    chosen = {part.split(":", 1)[0].strip() for part in os.environ.get("QT_QPA_PLATFORM", "").split(";")} - {""}
    if sys.platform in ("win32", "darwin") or not chosen <= _DISPLAY_PLATFORMS:
        return None, ""  # a platform of Qt's that needs no display (offscreen, vnc…)
    x11 = os.environ.get("DISPLAY", "") if not chosen or "xcb" in chosen else ""
    wayland = os.environ.get("WAYLAND_DISPLAY", "") if not chosen or chosen - {"xcb"} else ""
    named = [f"{name}={value}" for name, value in (("DISPLAY", x11), ("WAYLAND_DISPLAY", wayland)) if value]
    if chosen - {"xcb"} and not wayland:
        # Wayland chosen and none named: libwayland (so Qt) connects to wayland-0.
        wayland = "wayland-0"
        named.append("QT_QPA_PLATFORM (Wayland's default display, wayland-0)")
    if not x11 and not wayland:
        return "there is no display to open the window on", ""
    if wayland and _wayland_answers(wayland):
        return None, ""
    if x11 and _x11_answers(x11):
        return None, x11
    return f"the display named by {' or '.join(named)} does not answer, so the window cannot open there", ""


class X11Preflight:
    """Whether Qt's X11 support loads (:func:`missing_x11_libraries`) and the X server of
    ``display`` lets this user in (:func:`x11_refusal`), asked on a thread while the main
    thread imports Qt's bindings: both wait on the system (the loader, the server) with
    the interpreter's lock released, so the window is not later for them."""

    def __init__(self, display: str) -> None:
        self._display = display
        self._why: str | None = None
        self._thread = threading.Thread(target=self._ask, name="krea-x11-preflight", daemon=True)
        self._thread.start()

    def _ask(self) -> None:
        try:
            self._why = missing_x11_libraries() or x11_refusal(self._display)
        except Exception:  # a check that fails in its own way: Qt's own start decides
            self._why = None

    def why(self, timeout_s: float = 4.0) -> str | None:
        self._thread.join(timeout_s)
        return self._why


# The platforms of Qt's that show windows on a display (DISPLAY, WAYLAND_DISPLAY).
_DISPLAY_PLATFORMS = frozenset({"xcb", "wayland", "wayland-egl", "wayland-brcm"})


def x11_refusal(display: str, timeout_s: float = 3.0) -> str | None:
    """Why the X server of ``display``, which answers, does not let this user in (a window
    started under sudo or su, an old XAUTHORITY): the connection Qt would make, made
    first through libxcb (Qt's own), on a thread given ``timeout_s``. None when it is let
    in, or when that cannot be told (no libxcb: said by the library check)."""
    import ctypes
    import threading

    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return None
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.restype = ctypes.c_int
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    said: list[int] = []

    def connect() -> None:
        connection = xcb.xcb_connect(display.encode(), None)
        try:
            said.append(xcb.xcb_connection_has_error(connection))
        finally:
            xcb.xcb_disconnect(connection)

    probe = threading.Thread(target=connect, name="krea-x11-probe", daemon=True)
    probe.start()
    probe.join(timeout_s)
    if not said or said[0] == 0:
        return None  # let in, or no answer in time (Qt's own connection decides)
    if said[0] == _XCB_CONN_ERROR:
        return (
            f"the display named by DISPLAY={display} does not let this user in (a window started with sudo or su, "
            "or an old XAUTHORITY), so the window cannot open there"
        )
    return f"the display named by DISPLAY={display} cannot be used (its connection failed, error {said[0]})"


_XCB_CONN_ERROR = 1  # xcb.h: a socket, pipe or stream error, and a connection the server refused


# The system libraries Qt's X11 platform (libqxcb) links to that a desktop may lack: from
# Qt 6.5 on, xcb-cursor above all (Qt's own notes list them).
QT_X11_LIBRARIES = (
    "libxcb-cursor.so.0",
    "libxcb-icccm.so.4",
    "libxcb-image.so.0",
    "libxcb-keysyms.so.1",
    "libxcb-randr.so.0",
    "libxcb-render-util.so.0",
    "libxcb-shape.so.0",
    "libxcb-shm.so.0",
    "libxcb-sync.so.1",
    "libxcb-util.so.1",
    "libxcb-xfixes.so.0",
    "libxcb-xkb.so.1",
    "libxkbcommon-x11.so.0",
    "libxkbcommon.so.0",
    "libX11-xcb.so.1",
    "libX11.so.6",
)


def missing_x11_libraries() -> str | None:
    """Why Qt's X11 platform cannot load, where it is the one Qt will use (Linux, no
    Wayland display, no other platform chosen): the system libraries it needs that are
    missing, named with the packages that hold them on Debian and Ubuntu. Qt itself
    would print a paragraph and abort the process. None when it loads (Qt then finds it
    loaded already), or when it cannot be told."""
    platform = os.environ.get("QT_QPA_PLATFORM", "xcb").split(":", 1)[0]
    if sys.platform != "linux" or platform != "xcb" or os.environ.get("WAYLAND_DISPLAY"):
        return None
    import ctypes
    import importlib.util

    spec = importlib.util.find_spec("PySide6")
    places = list(spec.submodule_search_locations or []) if spec is not None else []
    plugin = Path(places[0], "Qt", "plugins", "platforms", "libqxcb.so") if places else None
    if plugin is None or not plugin.is_file():
        return None
    try:
        ctypes.CDLL(str(plugin), mode=os.RTLD_LAZY)  # bound as Qt binds it, when used
    except OSError as exc:
        missing = []
        for name in QT_X11_LIBRARIES:
            try:
                ctypes.CDLL(name)
            except OSError:
                missing.append(name)
        if not missing:
            return f"Qt's X11 support could not be loaded ({exc}), so the window cannot open"
        packages = [_debian_package(name) for name in missing]
        return (
            f"the window cannot open because Qt's X11 support needs {_listed(missing)}, missing from this "
            f"system; install {_listed(packages)} ({'its name' if len(packages) == 1 else 'their names'} on Debian "
            "and Ubuntu) and start again"
        )
    return None


def _debian_package(soname: str) -> str:
    """The Debian package of a library by its soname: libxcb-cursor.so.0 is in
    libxcb-cursor0, libxkbcommon-x11.so.0 in libxkbcommon-x11-0."""
    base, _so, version = soname.partition(".so.")
    return f"{base}{'-' if base[-1:].isdigit() else ''}{version.split('.')[0]}".lower()


def _listed(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _answers(family: int, address: str | tuple[str, int]) -> bool:
    import socket

    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            probe.connect(address)
    except OSError:
        return False
    return True


def _wayland_answers(name: str) -> bool:
    import socket

    path = name if os.path.isabs(name) else os.path.join(os.environ.get("XDG_RUNTIME_DIR", ""), name)
    return _answers(socket.AF_UNIX, path)


def _x11_answers(display: str) -> bool:
    """Whether the X server of ``display`` ("[host]:N[.S]") takes a connection: its Unix
    socket (a file, or Linux's abstract one) for a local display, TCP port 6000 + N for a
    host's. A name of another form is taken to answer."""
    import socket

    host, sep, rest = display.rpartition(":")
    number = rest.split(".", 1)[0]
    if not sep or not number.isdigit() or host.startswith("/"):
        return True  # a form this does not know (a launchd socket path, say): left to Qt
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{number}"
        return _answers(socket.AF_UNIX, path) or (sys.platform == "linux" and _answers(socket.AF_UNIX, "\0" + path))
    host = host.strip("[]")
    return _answers(socket.AF_INET6 if ":" in host else socket.AF_INET, (host, 6000 + int(number)))

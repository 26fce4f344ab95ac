"""What goes into the PyInstaller bundle and what stays out; read by krea-desktop.spec.

Kept apart from the spec so the normal test suite can check it without building anything.
The app is a QtWidgets program: it uses QtCore, QtGui, QtWidgets and QtNetwork's
dependencies only, draws its icon from PNG files, and ships in English.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import PurePath
from typing import Any, TypeVar

# Python modules the app never imports; PyInstaller's analysis would otherwise follow
# optional imports of other libraries into them.
EXCLUDED_MODULES = (
    # Qt modules outside QtWidgets apps (most are not in PySide6-Essentials at all). The
    # Python bindings of QtDBus and QtOpenGL go too: Qt's own libraries still load them
    # where a platform plugin needs them. (QtNetwork stays: one window per library
    # talks to a second start through QLocalServer.)
    "PySide6.QtDBus",
    "PySide6.QtOpenGL",
    "PySide6.QtWebEngineCore",
    "PySide6.QtWebEngineWidgets",
    "PySide6.QtWebEngineQuick",
    "PySide6.QtWebChannel",
    "PySide6.QtWebSockets",
    "PySide6.QtQml",
    "PySide6.QtQuick",
    "PySide6.QtQuick3D",
    "PySide6.QtQuickControls2",
    "PySide6.QtQuickWidgets",
    "PySide6.Qt3DCore",
    "PySide6.Qt3DRender",
    "PySide6.Qt3DExtras",
    "PySide6.QtMultimedia",
    "PySide6.QtMultimediaWidgets",
    "PySide6.QtPdf",
    "PySide6.QtPdfWidgets",
    "PySide6.QtCharts",
    "PySide6.QtDataVisualization",
    "PySide6.QtGraphs",
    "PySide6.QtDesigner",
    "PySide6.QtUiTools",
    "PySide6.QtHelp",
    "PySide6.QtOpenGLWidgets",
    "PySide6.QtSql",
    "PySide6.QtTest",
    "PySide6.QtSvgWidgets",
    "PySide6.QtPrintSupport",
    "PySide6.QtBluetooth",
    "PySide6.QtPositioning",
    "PySide6.QtSerialPort",
    "PySide6.QtSensors",
    "PySide6.QtTextToSpeech",
    "PySide6.scripts",
    # Standard library parts a GUI app has no use for.
    "tkinter",
    "_tkinter",
    "turtle",
    "turtledemo",
    "idlelib",
    "lib2to3",
    "pydoc_data",
    "unittest",
    "doctest",
    "test",
    "distutils",
    "ensurepip",
    "venv",
    # Development tools and other libraries' test packages.
    "pytest",
    "_pytest",
    "pytestqt",
    "hypothesis",
    "mypy",
    "ruff",
    "pip",
    "setuptools",
    "pkg_resources",
    "PyInstaller",
    "numpy",
    "PIL.ImageTk",
    "PIL._avif",
    "PIL.AvifImagePlugin",
    "PIL.ImageQt",
    "httpx._main",
    "pygments",
)

# Qt plugins kept, by folder; any plugin folder not named here is left out entirely, and
# an empty tuple keeps the whole folder. Image formats: PNG is built into QtGui; these
# decode the other formats the library and the reference tray accept (JPEG, WEBP, GIF,
# ICO), and SVG draws the desktop's icon theme in Qt's standard dialogs.
KEPT_QT_PLUGINS = {
    "platforms": ("xcb", "wayland", "wayland-egl", "offscreen", "minimal", "cocoa", "windows"),
    # Not gtk3: it would tie the bundle's copies of glib and cairo to the system's GTK.
    "platformthemes": ("xdgdesktopportal",),
    "platforminputcontexts": ("composeplatforminputcontextplugin", "ibusplatforminputcontextplugin"),
    "imageformats": ("jpeg", "webp", "gif", "ico", "svg"),
    "styles": ("modernwindowsstyle", "windowsvistastyle", "macstyle"),
    "wayland-decoration-client": ("bradient", "adwaita"),
    "wayland-graphics-integration-client": ("qt-plugin-wayland-egl", "shm-emulation-server"),
    "wayland-shell-integration": ("xdg-shell",),
    "xcbglintegrations": ("qxcb-egl-integration", "qxcb-glx-integration"),
    "tls": ("opensslbackend", "schannelbackend", "securetransportbackend"),
    "iconengines": ("svgicon",),
}

# Qt translations kept: the app's text is English, so only Qt's English catalogues.
KEPT_TRANSLATION = re.compile(r"_en(_[A-Z]{2})?\.qm$")

# Shared libraries of Qt modules listed above that PyInstaller may still pull in as
# dependencies of a plugin that is dropped.
EXCLUDED_QT_LIBRARIES = re.compile(
    r"Qt6(WebEngine|Qml|Quick|3D|Multimedia|Pdf|Charts|DataVisualization|Graphs|Designer|"
    r"UiTools|Help|Sql|Test|SvgWidgets|PrintSupport|VirtualKeyboard|ShaderTools|SpatialAudio)"
)

# Libraries copied from the build machine that every target system has, and whose copies
# would only raise the glibc the bundle needs (the build machine's libexpat and libstdc++
# need its newest glibc: GLIBC_2.36 on Debian 12). libgcc_s goes with libstdc++: the
# system's libstdc++ must find the libgcc_s of its own compiler. Qt's libraries need
# GLIBCXX_3.4.29 or older from libstdc++ (GCC 11 and newer).
SYSTEM_LIBRARIES = re.compile(r"^(libstdc\+\+\.so\.6|libgcc_s\.so\.1|libexpat\.so\.1)$")

_PLUGIN_FILE = re.compile(r"^(?:lib)?(.+?)(?:\.so|\.dylib|\.dll)$")

T = TypeVar("T", bound=tuple[Any, ...])


def _qt_parts(dest: str) -> tuple[str, ...] | None:
    """The path under the Qt folder of a bundled file, or None if it is not a Qt file."""
    parts = PurePath(dest.replace("\\", "/")).parts
    for i in range(len(parts) - 1):
        if parts[i] == "PySide6" and parts[i + 1] in ("Qt", "plugins", "translations", "lib"):
            return parts[i + 1 :] if parts[i + 1] != "Qt" else parts[i + 2 :]
    return None


def _plugin_name(filename: str) -> str:
    """The plugin's name: its file name without ``lib`` and the extension (``libqxcb.so``,
    ``qxcb.dll`` -> ``qxcb``; ``libqt-plugin-wayland-egl.so`` -> ``qt-plugin-wayland-egl``)."""
    match = _PLUGIN_FILE.match(filename)
    return match.group(1) if match else filename


def plugin_kept(filename: str, kept: Iterable[str]) -> bool:
    """Whether the plugin file ``filename`` is one of ``kept``, named either in full
    (``qxcb-glx-integration``, ``bradient``) or without Qt's ``q`` (``xcb`` for ``libqxcb.so``)."""
    name = _plugin_name(filename)
    names = set(kept)
    return name in names or (name.startswith("q") and name[1:] in names)


def keep(dest: str) -> bool:
    """Whether the bundled file at ``dest`` (its path inside the bundle) stays in."""
    name = PurePath(dest.replace("\\", "/")).name
    if EXCLUDED_QT_LIBRARIES.search(name) or SYSTEM_LIBRARIES.match(name):
        return False
    parts = _qt_parts(dest)
    if not parts:
        return True
    if parts[0] == "translations":
        return bool(KEPT_TRANSLATION.search(parts[-1])) if len(parts) > 1 else True
    if parts[0] == "plugins" and len(parts) >= 3:
        kept = KEPT_QT_PLUGINS.get(parts[1])
        if kept is None:
            return False
        return not kept or plugin_kept(parts[-1], kept)
    return True


def filter_toc(entries: Iterable[T]) -> list[T]:
    """A PyInstaller TOC (``(dest, source, kind)`` tuples) without the files ``keep`` drops."""
    return [entry for entry in entries if keep(entry[0])]


def windows_version_info(version: str, *, name: str, description: str, exe_name: str) -> Any:
    """The Windows version resource for ``version`` ("1.2.3"), as PyInstaller takes it."""
    from PyInstaller.utils.win32 import versioninfo as vi

    numbers = [int(part) for part in re.findall(r"\d+", version)[:4]]
    numbers += [0] * (4 - len(numbers))
    fixed = tuple(numbers)
    strings = [
        vi.StringStruct("CompanyName", "Krea Desktop developers"),
        vi.StringStruct("FileDescription", description),
        vi.StringStruct("FileVersion", version),
        vi.StringStruct("InternalName", exe_name),
        vi.StringStruct("OriginalFilename", f"{exe_name}.exe"),
        vi.StringStruct("ProductName", name),
        vi.StringStruct("ProductVersion", version),
    ]
    return vi.VSVersionInfo(
        ffi=vi.FixedFileInfo(filevers=fixed, prodvers=fixed),
        kids=[
            vi.StringFileInfo([vi.StringTable("040904B0", strings)]),
            vi.VarFileInfo([vi.VarStruct("Translation", [0x0409, 1200])]),
        ],
    )


def _is_root(dest: str) -> bool:
    """Binaries loaded by Python or by Qt by name, rather than linked to."""
    name = PurePath(dest).name
    return (
        ".cpython-" in name
        or ".abi3." in name
        or name.endswith(".pyd")
        or name.startswith(("libpython", "python3"))
        or "/plugins/" in dest.replace("\\", "/")
    )


def prune_unlinked(entries: Iterable[T], imports: Callable[[str], Iterable[str]]) -> list[T]:
    """Binaries without the shared libraries that nothing left in the bundle links to.

    Dropping a Qt plugin does not drop what it linked to (the GTK theme plugin alone pulls
    in cairo, pango and gdk-pixbuf); this walks the links from what Python and Qt load by
    name and keeps what it reaches. ``imports(source)`` names the libraries a file links to.
    """
    entries = list(entries)
    by_name = {PurePath(dest).name: (dest, source) for dest, source, *_ in entries}
    reached: set[str] = set()
    todo = [dest for dest, *_ in entries if _is_root(dest)]
    while todo:
        dest = todo.pop()
        name = PurePath(dest).name
        if name in reached:
            continue
        reached.add(name)
        for needed in imports(by_name[name][1]):
            if needed in by_name and needed not in reached:
                todo.append(by_name[needed][0])
    return [entry for entry in entries if PurePath(entry[0]).name in reached]


def without_dangling_links(datas: Iterable[T], binaries: Iterable[tuple[Any, ...]]) -> list[T]:
    """``datas`` without the symbolic links to binaries that were left out."""
    kept = {entry[0] for entry in binaries}
    return [entry for entry in datas if entry[2] != "SYMLINK" or entry[1] in kept]

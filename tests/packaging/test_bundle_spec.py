"""What the PyInstaller spec puts in the bundle, checked without building it."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from krea_desktop import APP_ID, APP_NAME, __version__
from tests.packaging.conftest import PACKAGING, load_script

contents = load_script("bundle_contents")


def test_modules_the_app_does_not_use_are_excluded() -> None:
    excluded = set(contents.EXCLUDED_MODULES)
    for name in (
        "PySide6.QtWebEngineCore",
        "PySide6.QtQml",
        "PySide6.QtQuick",
        "PySide6.Qt3DCore",
        "PySide6.QtMultimedia",
        "PySide6.QtPdf",
        "tkinter",
        "unittest",
        "test",
        "pytest",
        "_pytest",
        "hypothesis",
    ):
        assert name in excluded, name
    for used in (
        "PySide6.QtCore",
        "PySide6.QtGui",
        "PySide6.QtWidgets",
        "PySide6.QtNetwork",
        "PIL",
        "httpx",
        "keyring",
        "qasync",
    ):
        assert used not in excluded


@pytest.mark.parametrize(
    ("dest", "kept"),
    [
        ("PySide6/Qt/plugins/platforms/libqxcb.so", True),
        ("PySide6/Qt/plugins/platforms/libqwayland.so", True),
        ("PySide6/Qt/plugins/platforms/libqoffscreen.so", True),
        ("PySide6/Qt/plugins/platforms/libqvnc.so", False),
        ("PySide6/Qt/plugins/platforms/libqeglfs.so", False),
        ("PySide6/Qt/plugins/imageformats/libqjpeg.so", True),
        ("PySide6/Qt/plugins/imageformats/libqwebp.so", True),
        ("PySide6/Qt/plugins/imageformats/libqgif.so", True),
        ("PySide6/Qt/plugins/imageformats/libqico.so", True),
        ("PySide6/Qt/plugins/imageformats/libqsvg.so", True),
        ("PySide6/Qt/plugins/imageformats/libqtiff.so", False),
        ("PySide6/Qt/plugins/imageformats/libqtga.so", False),
        ("PySide6/Qt/plugins/imageformats/libqpdf.so", False),
        ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", False),
        ("PySide6/Qt/plugins/qmltooling/libqmldbg_tcp.so", False),
        ("PySide6/Qt/plugins/sqldrivers/libqsqlite.so", False),
        ("PySide6/Qt/translations/qtbase_en.qm", True),
        ("PySide6/Qt/translations/qtbase_de.qm", False),
        ("PySide6/Qt/translations/qt_help_fr.qm", False),
        ("PySide6/Qt/lib/libQt6Widgets.so.6", True),
        ("PySide6/Qt/lib/libQt6Quick.so.6", False),
        ("PySide6/Qt/lib/libQt6WebEngineCore.so.6", False),
        # Windows keeps Qt's folders directly under PySide6/.
        ("PySide6\\plugins\\imageformats\\qjpeg.dll", True),
        ("PySide6\\plugins\\imageformats\\qtiff.dll", False),
        ("PySide6\\plugins\\platforms\\qwindows.dll", True),
        ("PySide6\\translations\\qtbase_ja.qm", False),
        ("PySide6\\Qt6Pdf.dll", False),
        # macOS
        ("PySide6/Qt/plugins/platforms/libqcocoa.dylib", True),
        ("PySide6/Qt/plugins/imageformats/libqwebp.dylib", True),
        ("PIL/_imaging.cpython-311-x86_64-linux-gnu.so", True),
        ("krea_desktop/resources/icons/hicolor/16x16/apps/ai.krea.KreaDesktop.png", True),
    ],
)
def test_keep(dest: str, kept: bool) -> None:
    assert contents.keep(dest) is kept


def test_prune_unlinked_keeps_what_python_and_qt_load_and_what_they_link_to() -> None:
    links = {
        "/s/_imaging.so": ["libtiff.so"],
        "/s/libtiff.so": ["libz.so"],
        "/s/libqxcb.so": ["libQt6XcbQpa.so.6"],
        "/s/libQt6XcbQpa.so.6": [],
        "/s/libz.so": [],
        "/s/libcairo.so.2": ["libpixman.so"],  # only the dropped GTK theme linked to these
        "/s/libpixman.so": [],
        "/s/libpython3.11.so.1.0": [],
    }
    toc = [
        ("PIL/_imaging.cpython-311-x86_64-linux-gnu.so", "/s/_imaging.so", "EXTENSION"),
        ("pillow.libs/libtiff.so", "/s/libtiff.so", "BINARY"),
        ("libz.so", "/s/libz.so", "BINARY"),
        ("PySide6/Qt/plugins/platforms/libqxcb.so", "/s/libqxcb.so", "BINARY"),
        ("PySide6/Qt/lib/libQt6XcbQpa.so.6", "/s/libQt6XcbQpa.so.6", "BINARY"),
        ("libcairo.so.2", "/s/libcairo.so.2", "BINARY"),
        ("libpixman.so", "/s/libpixman.so", "BINARY"),
        ("libpython3.11.so.1.0", "/s/libpython3.11.so.1.0", "BINARY"),
    ]
    kept = {dest for dest, *_ in contents.prune_unlinked(toc, links.__getitem__)}
    assert kept == {dest for dest, *_ in toc} - {"libcairo.so.2", "libpixman.so"}
    datas = [
        ("libtiff.so", "pillow.libs/libtiff.so", "SYMLINK"),
        ("libgone.so", "pillow.libs/libgone.so", "SYMLINK"),
        ("certifi/cacert.pem", "/s/cacert.pem", "DATA"),
    ]
    assert contents.without_dangling_links(datas, contents.prune_unlinked(toc, links.__getitem__)) == [
        datas[0],
        datas[2],
    ]


class Recorder:
    """Stands in for PyInstaller's build targets and remembers how it was called."""

    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]]

    def __init__(self, kind: str, calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]]) -> None:
        self.kind, self.calls = kind, calls

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((self.kind, args, kwargs))
        return types.SimpleNamespace(binaries=[], datas=[], pure=[], scripts=[], kind=self.kind, kwargs=kwargs)


def run_spec(platform: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """Execute the spec as PyInstaller would on ``platform``, with recording stand-ins."""
    fakes = {
        "PyInstaller": types.ModuleType("PyInstaller"),
        "PyInstaller.utils": types.ModuleType("PyInstaller.utils"),
        "PyInstaller.utils.hooks": types.ModuleType("PyInstaller.utils.hooks"),
        "PyInstaller.depend": types.ModuleType("PyInstaller.depend"),
        "PyInstaller.depend.bindepend": types.ModuleType("PyInstaller.depend.bindepend"),
        "PyInstaller.utils.win32": types.ModuleType("PyInstaller.utils.win32"),
        "PyInstaller.utils.win32.versioninfo": types.ModuleType("PyInstaller.utils.win32.versioninfo"),
    }
    fakes["PyInstaller.utils.hooks"].collect_data_files = lambda *a, **k: []  # type: ignore[attr-defined]
    fakes["PyInstaller.utils.hooks"].copy_metadata = lambda *a, **k: []  # type: ignore[attr-defined]
    fakes["PyInstaller.depend.bindepend"].get_imports = lambda path: set()  # type: ignore[attr-defined]
    versioninfo = fakes["PyInstaller.utils.win32.versioninfo"]
    for name in ("StringStruct", "StringTable", "StringFileInfo", "VarStruct", "VarFileInfo", "FixedFileInfo"):
        setattr(versioninfo, name, lambda *a, _n=name, **k: (_n, a, k))
    versioninfo.VSVersionInfo = lambda **k: ("VSVersionInfo", k)  # type: ignore[attr-defined]
    fakes["PyInstaller.utils.win32"].versioninfo = versioninfo  # type: ignore[attr-defined]
    for name, module in fakes.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, "bundle_contents", raising=False)
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(sys, "path", list(sys.path))
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    spec_path = PACKAGING / "krea-desktop.spec"
    namespace: dict[str, Any] = {"SPECPATH": str(PACKAGING), "SPEC": str(spec_path), "__file__": str(spec_path)}
    for kind in ("Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE"):
        namespace[kind] = Recorder(kind, calls)
    exec(compile(spec_path.read_text(encoding="utf-8"), str(spec_path), "exec"), namespace)
    return {kind: {**kwargs, "_args": args} for kind, args, kwargs in calls}


def test_spec_builds_one_windowed_folder_named_krea_desktop(monkeypatch: pytest.MonkeyPatch) -> None:
    built = run_spec("linux", monkeypatch)
    assert set(built) == {"Analysis", "PYZ", "EXE", "COLLECT"}  # no .app outside macOS
    assert built["EXE"]["name"] == "krea-desktop"
    assert built["EXE"]["console"] is False
    assert built["EXE"]["exclude_binaries"] is True  # one folder, not one file
    assert built["COLLECT"]["name"] == "krea-desktop"
    assert Path(built["Analysis"]["pathex"][0]).resolve() == PACKAGING.parent
    assert Path(sys.modules["bundle_contents"].__file__).parent == PACKAGING
    assert "tkinter" in built["Analysis"]["excludes"]
    assert built["Analysis"]["_args"][0] == [str(PACKAGING / "launcher.py")]
    # the first runtime hook keeps the user's environment for the programs the app starts
    hooks = built["Analysis"]["runtime_hooks"]
    assert [Path(h).name for h in hooks] == ["rthook_environment.py"] and Path(hooks[0]).is_file()
    assert "record_original_environment()" in Path(hooks[0]).read_text()
    assert "krea_desktop.external" in built["Analysis"]["hiddenimports"]


def test_spec_on_windows_adds_the_icon_and_version_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    exe = run_spec("win32", monkeypatch)["EXE"]
    assert exe["icon"].endswith(f"{APP_ID}.ico") and Path(exe["icon"]).is_file()
    kind, fields = exe["version"]
    assert kind == "VSVersionInfo"
    assert "ProductVersion" in repr(fields) and __version__ in repr(fields)


def test_spec_on_macos_makes_an_app_with_the_bundle_id(monkeypatch: pytest.MonkeyPatch) -> None:
    built = run_spec("darwin", monkeypatch)
    app = built["BUNDLE"]
    assert app["name"] == f"{APP_NAME}.app"
    assert app["bundle_identifier"] == APP_ID
    assert app["icon"].endswith(f"{APP_ID}.icns") and Path(app["icon"]).is_file()
    plist = app["info_plist"]
    assert plist["NSHighResolutionCapable"] is True
    assert plist["CFBundleShortVersionString"] == __version__
    types_ = {t for doc in plist["CFBundleDocumentTypes"] for t in doc["LSItemContentTypes"]}
    assert types_ == {"public.png", "public.jpeg", "org.webmproject.webp"}


def test_windows_version_resource_from_the_real_pyinstaller(monkeypatch: pytest.MonkeyPatch) -> None:
    import PyInstaller.compat

    # PyInstaller imports pywin32 for the module, but only uses it to write resources into
    # an .exe; building the structure needs nothing from Windows, so it is tested here.
    if not hasattr(PyInstaller.compat, "win32api"):
        monkeypatch.setattr(PyInstaller.compat, "win32api", None, raising=False)
    info = contents.windows_version_info(__version__, name=APP_NAME, description=APP_NAME, exe_name="krea-desktop")
    text = str(info)
    assert "krea-desktop.exe" in text
    assert f"'ProductVersion', '{__version__}'" in text
    assert info.ffi.fileVersionMS >> 16 == int(__version__.split(".")[0])


# Every plugin file PySide6-Essentials 6.11 ships for Linux, by folder, and whether the
# bundle keeps it; plus the Windows and macOS names of the kept ones.
PLUGIN_FILES = {
    "platforms": {
        "libqxcb.so": True,
        "libqwayland.so": True,
        "libqoffscreen.so": True,
        "libqminimal.so": True,
        "libqeglfs.so": False,
        "libqlinuxfb.so": False,
        "libqminimalegl.so": False,
        "libqvkkhrdisplay.so": False,
        "libqvnc.so": False,
        "qwindows.dll": True,
        "libqcocoa.dylib": True,
    },
    "xcbglintegrations": {"libqxcb-egl-integration.so": True, "libqxcb-glx-integration.so": True},
    "wayland-graphics-integration-client": {
        "libqt-plugin-wayland-egl.so": True,
        "libshm-emulation-server.so": True,
        "libdmabuf-server.so": False,
        "libdrm-egl-server.so": False,
        "libvulkan-server.so": False,
    },
    "wayland-decoration-client": {"libadwaita.so": True, "libbradient.so": True},
    "wayland-shell-integration": {
        "libxdg-shell.so": True,
        "libfullscreen-shell-v1.so": False,
        "libivi-shell.so": False,
        "libqt-shell.so": False,
        "libwl-shell-plugin.so": False,
    },
    "platformthemes": {"libqxdgdesktopportal.so": True, "libqgtk3.so": False},
    "platforminputcontexts": {
        "libcomposeplatforminputcontextplugin.so": True,
        "libibusplatforminputcontextplugin.so": True,
        "libqtvirtualkeyboardplugin.so": False,
    },
    "imageformats": {
        "libqjpeg.so": True,
        "libqwebp.so": True,
        "libqgif.so": True,
        "libqico.so": True,
        "libqsvg.so": True,
        "libqicns.so": False,
        "libqpdf.so": False,
        "libqtga.so": False,
        "libqtiff.so": False,
        "libqwbmp.so": False,
        "qjpeg.dll": True,
        "libqwebp.dylib": True,
    },
    "iconengines": {"libqsvgicon.so": True},
    "tls": {
        "libqopensslbackend.so": True,
        "libqcertonlybackend.so": False,
        "qschannelbackend.dll": True,
        "libqsecuretransportbackend.dylib": True,
    },
    "styles": {"qmodernwindowsstyle.dll": True, "qwindowsvistastyle.dll": True, "libqmacstyle.dylib": True},
    "egldeviceintegrations": {"libqeglfs-kms-integration.so": False, "libqeglfs-x11-integration.so": False},
    "generic": {"libqevdevmouseplugin.so": False, "libqtuiotouchplugin.so": False},
    "networkinformation": {"libqnetworkmanager.so": False, "libqglib.so": False},
    "printsupport": {"libcupsprintersupport.so": False},
    "sqldrivers": {"libqsqlite.so": False},
    "qmltooling": {"libqmldbg_tcp.so": False},
    "vectorimageformats": {"libqlottievectorimage.so": False},
    "designer": {"libPySidePlugin.so": False},
}


@pytest.mark.parametrize(
    ("folder", "filename", "kept"),
    [(folder, name, kept) for folder, files in PLUGIN_FILES.items() for name, kept in files.items()],
)
def test_every_plugin_file_is_kept_or_dropped_as_listed(folder: str, filename: str, kept: bool) -> None:
    sep = "\\" if filename.endswith(".dll") else "/"
    dest = sep.join(
        ["PySide6", "plugins", folder, filename] if sep == "\\" else ["PySide6", "Qt", "plugins", folder, filename]
    )
    assert contents.keep(dest) is kept


def test_every_kept_plugin_name_matches_a_real_file() -> None:
    # a name in KEPT_QT_PLUGINS that matches no file keeps nothing: a typo, or a renamed plugin
    older = {"platforms": {"libqwayland-egl.so"}}  # Qt 6.7 and older still ship it apart from libqwayland
    for folder, names in contents.KEPT_QT_PLUGINS.items():
        files = set(PLUGIN_FILES.get(folder, {})) | older.get(folder, set())
        for name in names:
            assert any(contents.plugin_kept(f, [name]) for f in files), f"{folder}: {name}"


@pytest.mark.parametrize(
    "name",
    ["libstdc++.so.6", "libgcc_s.so.1", "libexpat.so.1"],
)
def test_libraries_every_target_has_are_left_to_the_system(name: str) -> None:
    # the build machine's copies only raise the glibc the bundle needs
    assert contents.keep(name) is False
    assert contents.keep(f"PySide6/Qt/lib/{name}") is False
    assert contents.keep("libfontconfig.so.1") is True
    assert contents.keep("libpython3.11.so.1.0") is True

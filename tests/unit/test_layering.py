"""The package's layers, checked from the source.

Every module under ``krea_desktop/`` is parsed (never imported) and each import it makes is
collected: module-level and function-level, ``import x``, ``from x import y``, relative
imports resolved against the module's package, imports under ``if TYPE_CHECKING:`` (a type
dependency is still a dependency), and ``importlib.import_module`` / ``__import__`` calls,
whose string literals name the module. The rules are those of DESIGN.md: Qt only in ``ui``,
``api`` imports no other part, ``library`` stays below the shell, ``simulator`` depends on
``api`` only, the Qt-free ``models`` the widgets observe sit on ``api`` and ``library``, and
nothing reaches into ``ui`` but the command line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "krea_desktop"
PACKAGE_DIR = ROOT / PACKAGE

QT_ROOTS = ("PySide6", "shiboken6", "qasync")
LAYERS = ("api", "library", "simulator", "models", "ui")

# Modules at the top of the package, each either a core utility or an application module.
#
# A core utility depends on no layer (only the standard library, third-party packages and
# other core utilities) and has no Qt, so any layer may import it without gaining a
# dependency through it; ``test_core_utilities_depend_on_no_layer`` holds them to that.
# An application module puts the layers together for the command line and the window,
# so only the application (cli, ui, other application modules) may import it.
TOP_LEVEL: dict[str, str] = {
    "krea_desktop": "core",  # __init__: the version, the app's name and id; constants only
    "krea_desktop.fsutil": "core",  # atomic writes and fsync, standard library only
    "krea_desktop.wording": "core",  # how counts read in messages ("1 image", "2 images"); no imports
    "krea_desktop.pillow": "core",  # Pillow as the app opens pictures (large PNG texts); Pillow only
    "krea_desktop.png_texts": "core",  # the PNG texts Pillow would refuse a picture for; Pillow only
    "krea_desktop.fonts": "core",  # the font pictures are written in (contact sheets, the simulator); Pillow
    "krea_desktop.console": "core",  # lines on stdout and stderr for a reader who may stop reading; stdlib only
    "krea_desktop.logfile": "core",  # the log file in the data folder, for the window and the CLI; stdlib only
    "krea_desktop.external": "core",  # starting other programs with the user's environment; stdlib only
    "krea_desktop.desktop_entry": "core",  # the freedesktop menu entry of an installed copy; uses fsutil, external
    "krea_desktop.keystore": "application",  # the API key in the OS keyring; uses library.paths
    "krea_desktop.config": "application",  # the user's settings, read by the CLI and the window
    "krea_desktop.backend": "application",  # wires api + library + simulator for cli and ui
    "krea_desktop.cli": "application",  # the `krea-desktop` entry point
    "krea_desktop.display": "application",  # whether the window can open here, before Qt loads; stdlib only
    "krea_desktop.cli_words": "application",  # the command line's words for the library's errors
    "krea_desktop.user_words": "application",  # the window's and the command line's words for them
    "krea_desktop.sweep_cli": "application",  # `krea-desktop sweep`: a grid of variations; Qt-free
    "krea_desktop.info": "application",  # `krea-desktop info`: what is recalled from files; Qt-free
    "krea_desktop.__main__": "application",  # `python -m krea_desktop`
}

# Modules outside ui/ that may import krea_desktop.ui (the GUI is one of the CLI's commands).
# ``sweep_cli`` writes costs as the window does (``ui.money``, which imports no Qt).
UI_IMPORTERS = frozenset({"krea_desktop.cli", "krea_desktop.__main__", "krea_desktop.sweep_cli"})


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. "krea_desktop.library.store"
    target: str  # the imported module, absolute, e.g. "krea_desktop.api.spec"
    line: int
    path: str  # the importing file, relative to the repository

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.module} imports {self.target}"


@dataclass(frozen=True)
class Source:
    module: str
    path: str
    text: str
    is_package: bool  # an __init__.py, whose own name is the package relative imports start from


def module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def package_sources() -> list[Source]:
    sources = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        name, is_package = module_name(path)
        sources.append(Source(name, str(path.relative_to(ROOT)), path.read_text(encoding="utf-8"), is_package))
    return sources


def resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute name of ``from <level dots><name> import ...`` written in ``module``."""
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]  # a plain module's relative imports start from its package
    if level > 1:
        if level - 1 > len(parts):
            raise ValueError(f"relative import beyond the top-level package in {module}")
        parts = parts[: len(parts) - (level - 1)]
    if name:
        parts.append(name)
    return ".".join(parts)


def _is_dynamic_import(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id in ("import_module", "__import__")
    if isinstance(func, ast.Attribute):
        return func.attr == "import_module"
    return False


def _looks_like_module(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def imports_of(source: Source, known_modules: Iterable[str] = ()) -> list[Import]:
    """Every import ``source`` makes, with targets as absolute module names.

    ``from pkg import name`` counts as an import of ``pkg.name`` when that is a module of
    ``known_modules``, and of ``pkg`` otherwise. A module that calls ``import_module`` with
    something other than a literal (a table of names, say) is taken to import every string
    constant in it that names a module of ``known_modules`` or a Qt module.
    """
    known = frozenset(known_modules)
    tree = ast.parse(source.text, filename=source.path)
    found: list[Import] = []

    def add(target: str, node: ast.AST) -> None:
        found.append(Import(source.module, target, getattr(node, "lineno", 0), source.path))

    dynamic_without_literal = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = resolve_relative(source.module, source.is_package, node.level, node.module)
            else:
                base = node.module or ""
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                add(candidate if candidate in known else base, node)
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                name = first.value
                if name.startswith("."):
                    level = len(name) - len(name.lstrip("."))
                    name = resolve_relative(source.module, source.is_package, level, name.lstrip(".") or None)
                add(name, node)
            else:
                dynamic_without_literal = True

    if dynamic_without_literal:
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _looks_like_module(node.value):
                value = node.value
                if value in known or value.split(".")[0] in QT_ROOTS:
                    add(value, node)
    return found


def within(target: str, prefix: str) -> bool:
    return target == prefix or target.startswith(prefix + ".")


def layer_of(module: str) -> str | None:
    """The layer (one of LAYERS) ``module`` belongs to, or None for a top-level module."""
    parts = module.split(".")
    if len(parts) >= 2 and parts[0] == PACKAGE and parts[1] in LAYERS and module != PACKAGE:
        # krea_desktop.api, krea_desktop.api.spec, ...; not krea_desktop.backend
        return parts[1]
    return None


def is_qt(target: str) -> bool:
    return any(within(target, root) for root in QT_ROOTS)


def violations(imports: Iterable[Import]) -> Iterator[str]:
    """Every broken rule, one readable line each."""
    core = {name for name, kind in TOP_LEVEL.items() if kind == "core"}
    for imp in imports:
        source_layer = layer_of(imp.module)
        target = imp.target
        internal = within(target, PACKAGE)
        target_layer = layer_of(target) if internal else None

        if is_qt(target) and source_layer != "ui":
            yield f"{imp}: Qt outside krea_desktop/ui/"
            continue
        if not internal:
            continue
        if target_layer == "ui" and source_layer != "ui" and imp.module not in UI_IMPORTERS:
            yield f"{imp}: only {sorted(UI_IMPORTERS)} may import the ui"
            continue
        if within(target, "krea_desktop.cli") or within(target, "krea_desktop.__main__"):
            if imp.module != "krea_desktop.__main__":
                yield f"{imp}: nothing imports the entry point"
            continue

        target_is_core = target in core
        if source_layer == "api":
            if target_layer != "api" and not target_is_core:
                yield f"{imp}: api imports no other part of the package"
        elif source_layer == "library":
            if target_layer not in ("library", "api") and not target_is_core:
                yield f"{imp}: library imports only api and the core utilities"
        elif source_layer == "simulator":
            if target_layer not in ("simulator", "api") and not target_is_core:
                yield f"{imp}: simulator imports only api and the core utilities"
        elif source_layer == "models":
            if target_layer not in ("models", "api", "library") and not target_is_core:
                yield f"{imp}: models import only api, library and the core utilities"
        elif source_layer is None and imp.module in core and (target_layer is not None or not target_is_core):
            yield f"{imp}: a core utility depends on no layer and no application module"


def all_imports() -> list[Import]:
    sources = package_sources()
    known = {s.module for s in sources}
    return [imp for s in sources for imp in imports_of(s, known)]


# --- the package ---------------------------------------------------------------------------


def test_the_package_is_found_and_its_imports_are_read() -> None:
    sources = package_sources()
    names = {s.module for s in sources}
    assert {"krea_desktop", "krea_desktop.cli", "krea_desktop.api.spec", "krea_desktop.ui"} <= names
    targets = {imp.target for imp in all_imports()}
    # one of each kind the checks depend on: a layer import, a Qt import, the cli's ui import
    assert "krea_desktop.api.spec" in targets
    assert any(is_qt(t) for t in targets)
    assert any(within(t, "krea_desktop.ui") for t in targets)


def test_every_top_level_module_is_classified() -> None:
    # a new file or sub-package at the top must be placed: a layer, a core utility or application
    top = {".".join(s.module.split(".")[:2]) for s in package_sources() if layer_of(s.module) is None}
    unclassified = sorted(top - TOP_LEVEL.keys())
    assert not unclassified, f"add these to LAYERS, or to TOP_LEVEL as 'core' or 'application': {unclassified}"


def test_every_layer_is_a_package() -> None:
    for layer in LAYERS:
        assert (PACKAGE_DIR / layer / "__init__.py").is_file(), layer


def test_the_package_keeps_its_layers() -> None:
    broken = list(violations(all_imports()))
    assert not broken, "layering violations:\n" + "\n".join(broken)


def test_core_utilities_depend_on_no_layer() -> None:
    # also enforced inside violations(); stated on its own so a failure names the rule
    core = {name for name, kind in TOP_LEVEL.items() if kind == "core"}
    offending = [
        str(imp)
        for imp in all_imports()
        if imp.module in core and within(imp.target, PACKAGE) and imp.target not in core
    ]
    assert not offending, "\n".join(offending)


# --- the checker itself --------------------------------------------------------------------

KNOWN = frozenset(
    {
        "krea_desktop",
        "krea_desktop.fsutil",
        "krea_desktop.backend",
        "krea_desktop.cli",
        "krea_desktop.keystore",
        "krea_desktop.api",
        "krea_desktop.api.spec",
        "krea_desktop.api.errors",
        "krea_desktop.library",
        "krea_desktop.library.paths",
        "krea_desktop.library.store",
        "krea_desktop.simulator",
        "krea_desktop.simulator.service",
        "krea_desktop.models",
        "krea_desktop.models.jobs",
        "krea_desktop.ui",
        "krea_desktop.ui.theme",
        "krea_desktop.ui.app",
    }
)


def check(module: str, text: str, *, is_package: bool = False) -> list[str]:
    source = Source(module, module.replace(".", "/") + ".py", text, is_package)
    return list(violations(imports_of(source, KNOWN)))


def targets(module: str, text: str, *, is_package: bool = False) -> set[str]:
    source = Source(module, module.replace(".", "/") + ".py", text, is_package)
    return {imp.target for imp in imports_of(source, KNOWN)}


def test_checker_reads_every_form_of_import() -> None:
    text = """
import os
import krea_desktop.api.spec
from krea_desktop.api import errors
from . import service
from .. import fsutil
from ..library.store import Library
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from krea_desktop.backend import Backend

def later():
    import importlib
    from PySide6.QtCore import QObject
    importlib.import_module("krea_desktop.ui.theme")
    __import__("shiboken6")
    return import_module("..cli", __package__)
"""
    assert targets("krea_desktop.simulator.render", text) == {
        "os",
        "krea_desktop.api.spec",
        "krea_desktop.api.errors",
        "krea_desktop.simulator.service",
        "krea_desktop.fsutil",
        "krea_desktop.library.store",
        "typing",
        "krea_desktop.backend",
        "importlib",
        "PySide6.QtCore",
        "krea_desktop.ui.theme",
        "shiboken6",
        "krea_desktop.cli",
    }


def test_relative_imports_in_a_package_init_start_from_the_package() -> None:
    assert targets("krea_desktop.ui", "from . import theme\nfrom .app import run_app\n", is_package=True) == {
        "krea_desktop.ui.theme",
        "krea_desktop.ui.app",
    }
    assert resolve_relative("krea_desktop.ui.app", False, 2, "api") == "krea_desktop.api"
    with pytest.raises(ValueError):
        resolve_relative("krea_desktop.ui.app", False, 4, None)


def test_checker_reads_module_names_handed_to_import_module() -> None:
    text = """
from importlib import import_module
_EXPORTS = {"Library": "krea_desktop.library.store", "note": "not.a module here"}
def __getattr__(name):
    return getattr(import_module(_EXPORTS[name]), name)
"""
    assert "krea_desktop.library.store" in targets("krea_desktop.api", text, is_package=True)
    assert check("krea_desktop.api", text, is_package=True) == [
        "krea_desktop/api.py:3: krea_desktop.api imports krea_desktop.library.store: "
        "api imports no other part of the package"
    ]
    # with only literal arguments, other strings are just strings
    assert targets("krea_desktop.api", 'X = "krea_desktop.library.store"\n') == set()


@pytest.mark.parametrize(
    ("module", "text"),
    [
        ("krea_desktop.library.store", "from PySide6.QtGui import QImage\n"),
        ("krea_desktop.api.client", "def f():\n    import shiboken6\n"),
        ("krea_desktop.backend", "import qasync\n"),
        ("krea_desktop.cli", "from PySide6 import QtWidgets\n"),
        ("krea_desktop.api.client", "from krea_desktop.library import store\n"),
        ("krea_desktop.api.client", "from ..backend import open_backend\n"),
        ("krea_desktop.api.client", "import krea_desktop.simulator.service\n"),
        ("krea_desktop.api.client", "from krea_desktop import cli\n"),
        ("krea_desktop.api.spec", "from krea_desktop import keystore\n"),
        ("krea_desktop.library.store", "from krea_desktop.simulator import service\n"),
        ("krea_desktop.library.store", "from ..ui.theme import apply_dark_palette\n"),
        ("krea_desktop.library.store", "from krea_desktop.cli import main\n"),
        ("krea_desktop.library.store", "from krea_desktop.backend import open_backend\n"),
        ("krea_desktop.simulator.service", "from krea_desktop.library.store import Library\n"),
        ("krea_desktop.simulator.service", "from krea_desktop import backend\n"),
        ("krea_desktop.simulator.service", "import krea_desktop.ui\n"),
        ("krea_desktop.simulator.service", "from krea_desktop.models.jobs import JobQueue\n"),
        ("krea_desktop.library.store", "from krea_desktop.models import jobs\n"),
        ("krea_desktop.api.request", "from krea_desktop.models.jobs import JobQueue\n"),
        ("krea_desktop.models.jobs", "from PySide6.QtCore import QObject\n"),
        ("krea_desktop.models.jobs", "from krea_desktop.ui.jobs.job_list import JobList\n"),
        ("krea_desktop.models.jobs", "from krea_desktop.backend import open_backend\n"),
        ("krea_desktop.models.jobs", "from krea_desktop.simulator import service\n"),
        ("krea_desktop.backend", "def f():\n    from krea_desktop.ui.app import run_app\n"),
        ("krea_desktop.keystore", "from krea_desktop import ui\n"),
        ("krea_desktop.ui.app", "from krea_desktop.cli import main\n"),
        ("krea_desktop.fsutil", "from krea_desktop.library import paths\n"),
        ("krea_desktop.api.client", "import importlib\nimportlib.import_module('krea_desktop.ui.app')\n"),
    ],
)
def test_checker_catches_a_violation(module: str, text: str) -> None:
    found = check(module, text)
    assert len(found) == 1, found
    assert found[0].startswith(module.replace(".", "/") + ".py:")


@pytest.mark.parametrize(
    ("module", "text"),
    [
        (
            "krea_desktop.ui.gallery",
            "from PySide6.QtWidgets import QListView\nfrom krea_desktop.library import store\n",
        ),
        ("krea_desktop.ui.app", "import qasync\nfrom krea_desktop.backend import make_client\n"),
        ("krea_desktop.cli", "def gui():\n    from krea_desktop.ui.app import run_app\n"),
        ("krea_desktop.__main__", "from krea_desktop.cli import main\n"),
        ("krea_desktop.api.client", "import httpx\nfrom krea_desktop.api import spec\nfrom . import errors\n"),
        (
            "krea_desktop.api.client",
            "from krea_desktop import __version__\nfrom krea_desktop.fsutil import atomic_write\n",
        ),
        ("krea_desktop.library.store", "from krea_desktop.api.spec import RATIOS\nfrom krea_desktop import fsutil\n"),
        ("krea_desktop.simulator.service", "from krea_desktop.api import spec\nfrom .render import render_image\n"),
        (
            "krea_desktop.backend",
            "from krea_desktop.simulator import service\nfrom krea_desktop.library import store\n",
        ),
        ("krea_desktop.keystore", "from krea_desktop.library import paths\n"),
        ("krea_desktop.models.jobs", "from krea_desktop.library.store import Library\nfrom . import events\n"),
        ("krea_desktop.ui.app", "from krea_desktop.models.jobs import JobQueue\n"),
    ],
)
def test_checker_allows_what_the_design_allows(module: str, text: str) -> None:
    assert check(module, text) == []

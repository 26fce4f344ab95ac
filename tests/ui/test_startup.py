"""Start-up in two steps: the main window's frame is shown and painted with only Qt
loaded, then the panels, the library and the client thread are built into that same
window. Each test is a fresh Python process, since what matters is what gets imported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Loaded only once the frame has painted: the library and its metadata, the panels,
# Pillow, asyncio and the key store. (httpx and the simulator load later still, on the
# client thread.)
HEAVY = (
    "asyncio",
    "qasync",
    "PIL.Image",
    "sqlite3",
    "keyring",
    "httpx",
    "krea_desktop.library.store",
    "krea_desktop.ui.compose",
    "krea_desktop.ui.references",
    "krea_desktop.ui.gallery",
    "krea_desktop.ui.viewer",
    "krea_desktop.ui.jobs",
    "krea_desktop.api.request",
)


def child_env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["KREA_DESKTOP_DATA_DIR"] = str(data_dir)
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    env.pop("RUNWARE_API_KEY", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run(script: str, data_dir: Path) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=child_env(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.splitlines()


def test_the_frame_paints_before_the_heavy_modules_load_and_then_becomes_the_whole_window(tmp_path: Path) -> None:
    lines = run(
        f"""
        import sys
        from PySide6.QtWidgets import QApplication
        from krea_desktop.ui.app import build_main_window, open_main_window, show_and_paint
        heavy = {HEAVY!r}
        app = QApplication(sys.argv)
        window = open_main_window()
        print("painted", show_and_paint(window, timeout_ms=5000))
        print("loaded before the first paint:", sorted(m for m in heavy if m in sys.modules))
        print("title", window.windowTitle())
        same = window
        build_main_window(window)
        print("same window", same is window, window.built, window.isVisible())
        print("placeholder replaced", window.centralWidget().objectName() != "openingPlaceholder")
        print("panels", all(window.findChild(object, name) is not None
              for name in ("promptEdit", "referenceTray", "gallery", "cancelButton", "demoBanner")))
        print("client thread ready", window.client_thread.wait_ready(20) is not None)
        window.close()
        """,
        tmp_path,
    )
    assert lines[0] == "painted True"
    assert lines[1] == "loaded before the first paint: []"
    assert lines[2] == "title Krea Desktop"
    assert lines[3] == "same window True True True"
    assert lines[4] == "placeholder replaced True"
    assert lines[5] == "panels True"
    assert lines[6] == "client thread ready True"


def test_the_frame_opens_at_the_saved_geometry(tmp_path: Path) -> None:
    saved = run(
        """
        import sys
        from PySide6.QtWidgets import QApplication
        from krea_desktop.ui.app import create_main_window
        app = QApplication(sys.argv)
        window = create_main_window()
        window.resize(780, 600)
        window.show()
        app.processEvents()
        window.split.setSizes([465, window.split.width() - 465 - window.split.handleWidth()])
        print(window.split.sizes()[0])
        window.close()
        """,
        tmp_path,
    )
    lines = run(
        """
        import sys
        from PySide6.QtWidgets import QApplication
        from krea_desktop.ui.app import open_main_window
        app = QApplication(sys.argv)
        window = open_main_window()
        print(window.width(), window.height(), window.built)
        # The frame shows the two columns where the splitter will put them.
        placeholder = window.centralWidget()
        print(placeholder.objectName(), placeholder._left)
        window.close()  # closing a frame that was never built saves nothing and fails nothing
        """,
        tmp_path,
    )
    assert lines[0] == "780 600 False"
    left = int(saved[0])
    assert left == 465  # moved from the default (480)
    assert lines[1] == f"openingPlaceholder {left}"


def test_a_report_nobody_reads_any_more_still_lets_the_window_close(tmp_path: Path) -> None:
    env = child_env(tmp_path)
    env["KREA_DESKTOP_REPORT_FIRST_PAINT"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "krea_desktop"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().split()[0] == b"first-paint"
        proc.stdout.close()  # the reader goes away: "ready" and "built" meet a closed pipe
        proc.wait(timeout=60)  # the window closed after "built" all the same
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "mainSplitter" in (tmp_path / "settings.ini").read_text()


def test_the_app_reports_its_first_paint_then_ready_then_the_built_window(tmp_path: Path) -> None:
    env = child_env(tmp_path)
    env["KREA_DESKTOP_REPORT_FIRST_PAINT"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "krea_desktop"], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    words = [line.split() for line in proc.stdout.splitlines()]
    assert [w[0] for w in words] == ["first-paint", "ready", "built"]
    first, ready, built = (float(w[1]) for w in words)
    assert 0 < first <= ready <= built
    # The built window saved its state when it closed.
    assert "mainSplitter" in (tmp_path / "settings.ini").read_text()


# Loaded only once the window is ready (prompt focused, gallery on the library): the key
# store, the job queue, the client thread and the client, the GUI's asyncio loop.
AFTER_READY = (
    "keyring",
    "httpx",
    "qasync",
    "krea_desktop.models.jobs",
    "krea_desktop.ui.jobs.client_thread",
    "krea_desktop.backend",
    "uuid",  # and platform, which it imports: 4 ms (the library names hand-placed files with it)
)


def save_images(data_dir: Path, count: int) -> None:
    run(
        f"""
        import io, uuid
        from PIL import Image
        from krea_desktop.api.request import GenerationRequest
        from krea_desktop.api.results import GeneratedImage
        from krea_desktop.library.store import Library
        lib = Library({str(data_dir)!r})
        for i in range({count}):
            req = GenerationRequest(f"a study {{i}}", ratio="1:1", seed=i)
            out = io.BytesIO()
            Image.new("RGB", (64, 64), (i * 8 % 256, 90, 120)).save(out, "PNG")
            lib.save(GeneratedImage(task_uuid=req.task_uuid, image_uuid=str(uuid.uuid4()), data=out.getvalue(),
                                    format="PNG", width=64, height=64, seed=i, cost=0.004, index=0,
                                    record=req.describe()))
        lib.close()
        """,
        data_dir,
    )


def test_the_window_is_ready_with_the_prompt_and_the_gallery_before_the_rest_loads(tmp_path: Path) -> None:
    save_images(tmp_path, 30)
    lines = run(
        f"""
        import sys
        from PySide6.QtCore import Qt
        from PySide6.QtTest import QTest
        from PySide6.QtWidgets import QApplication
        from krea_desktop.ui import app as app_module
        app = QApplication(sys.argv)
        window = app_module.open_main_window()
        app_module.show_and_paint(window, timeout_ms=5000)
        QTest.keyClicks(window, "a li")  # typed while the window opens
        app_module.build_panels(window, app_module.open_library(window))
        print("painted", app_module.wait_painted(window.gallery.viewport(), 5000))
        print("loaded:", sorted(m for m in {AFTER_READY!r} if m in sys.modules))
        print("focus", window.focusWidget().objectName())
        view = window.gallery
        print("rows", view.model().rowCount(), window.library.count())
        print("first row shown", view.visualRect(view.model().index(0, 0)).intersects(view.viewport().rect()))
        QTest.keyClicks(window.focusWidget(), "ghthouse")  # typed once it is ready
        print("prompt", window.prompt_panel.prompt())
        print("generate early", window.generate(), window.message_banner.label.text())
        print("built", window.built)
        app_module.finish_main_window(window, demo_latency=0.0)
        print("queued", [job.request.prompt for job in window.jobs.jobs()], window.built)
        window.close()
        """,
        tmp_path,
    )
    assert lines[0] == "painted True"
    assert lines[1] == "loaded: []"
    assert lines[2] == "focus promptEdit"
    assert lines[3] == "rows 30 30"
    assert lines[4] == "first row shown True"
    assert lines[5] == "prompt a lighthouse"
    assert lines[6] == "generate early None Getting ready: your images will be requested in a moment."
    assert lines[7] == "built False"
    # The Generate pressed while it got ready is sent once the client thread is there.
    assert lines[8] == "queued ['a lighthouse'] True"


def ready_window_then(data_dir: Path, then: str) -> list[str]:
    """The app's window made ready as it is at start-up (its panels built on a library of 30
    images, the rest left for later), then ``then`` run, then the window closed; the first
    line says whether the gallery painted."""
    save_images(data_dir, 30)
    ready = """
        import sys
        from PySide6 import QtWidgets
        from PySide6.QtWidgets import QApplication
        from krea_desktop.ui import app as app_module
        app = QApplication(sys.argv)
        window = app_module.open_main_window()
        app_module.show_and_paint(window, timeout_ms=5000)
        app_module.build_panels(window, app_module.open_library(window), rest_later=True)
        print("painted", app_module.wait_painted(window.gallery.viewport(), 5000))
        """
    return run(textwrap.dedent(ready) + textwrap.dedent(then) + "window.close()\n", data_dir)


def test_the_window_is_ready_without_the_binding_loading_widget_classes_it_never_uses(tmp_path: Path) -> None:
    """The first time Python is handed a widget that Qt made (a scroll area's viewport,
    say), the binding loads every widget class it has to find that widget's: 9 ms or more
    before the window is ready. Every viewport asked for on the way is one of the app's."""
    never_used = ("QMdiArea", "QLCDNumber", "QCalendarWidget", "QTabWidget")
    lines = ready_window_then(
        tmp_path,
        f"""
        print("loaded:", [name for name in {never_used!r} if name in vars(QtWidgets)])
        viewport = window.prompt_panel.promptEdit.viewport()  # a widget Qt made
        print("then:", [name for name in {never_used!r} if name in vars(QtWidgets)])
        """,
    )
    assert lines[0] == "painted True"
    assert lines[1] == "loaded: []"
    assert lines[2] == f"then: {list(never_used)}"  # what the first line would have caught


def test_the_window_is_ready_before_the_request_and_its_images_load(tmp_path: Path) -> None:
    """A request is made at Generate and its images by the client: neither module (3.5 ms
    with their dataclasses) loads before the window is ready."""
    modules = ("krea_desktop.api.request", "krea_desktop.api.results")
    lines = ready_window_then(
        tmp_path,
        f"""
        print("loaded:", [m for m in {modules!r} if m in sys.modules])
        window.prompt_panel.promptEdit.setPlainText("a lighthouse")
        print("request", window.prompt_panel.build_request("1:1").prompt)
        window.build_rest()
        print("then:", [m for m in {modules!r} if m in sys.modules])
        """,
    )
    assert lines[0] == "painted True"
    assert lines[1] == "loaded: []"
    assert lines[2] == "request a lighthouse"
    assert lines[3] == f"then: {list(modules)}"  # what the first line would have caught


def test_a_window_closed_while_it_opens_ends_the_app(tmp_path: Path) -> None:
    lines = run(
        """
        import sys, time
        from krea_desktop.ui import app as app_module
        real = app_module.show_and_paint

        def show_then_close(window, timeout_ms=500):
            painted = real(window, timeout_ms)
            window.close()  # the person closed it at once
            return painted

        app_module.show_and_paint = show_then_close
        started = time.monotonic()
        print("exit", app_module.run_app())
        print("quick", time.monotonic() - started < 10)
        """,
        tmp_path,
    )
    assert lines == ["exit 0", "quick True"]
    settings = tmp_path / "settings.ini"  # nothing was built, so no panel state was saved
    assert not settings.exists() or "mainSplitter" not in settings.read_text()


def test_what_comes_after_ready_takes_its_kept_place_and_nothing_moves(tmp_path: Path) -> None:
    save_images(tmp_path, 130)  # more than the first page of rows the gallery reads itself
    lines = run(
        """
        import sys
        from PySide6.QtCore import QPoint
        from PySide6.QtWidgets import QApplication
        from krea_desktop.ui import app as app_module
        app = QApplication(sys.argv)
        window = app_module.open_main_window()
        window.resize(1366, 768)
        app_module.show_and_paint(window, timeout_ms=5000)
        app_module.build_panels(window, app_module.open_library(window), rest_later=True)
        app_module.wait_painted(window.gallery.viewport(), 5000)

        def places():
            widgets = {
                "prompt": window.prompt_panel.promptEdit,
                "ratios": window.ratio_bar,
                "filters": window.filter_bar,
                "toolbar": window.gallery_toolbar,
                "gallery": window.gallery.viewport(),
                "menus": window.menuBar(),
            }
            return {name: (w.mapTo(window, QPoint(0, 0)), w.size()) for name, w in widgets.items()}

        before = places()
        # The tray and the gallery's actions come after ready, and so does the image files'
        # metadata code (saving an image or indexing a new file needs it; showing does not),
        # and OpenSSL, which hashlib loads (the instance's name uses CPython's own SHA-256).
        later = ("krea_desktop.ui.references.tray", "krea_desktop.ui.gallery.actions",
                 "krea_desktop.library.metadata", "krea_desktop.library.readers", "_hashlib")
        print("later:", sorted(m for m in later if m in sys.modules), window.rest_built)
        # Nor are the rows beside the first screen read ahead: a worker reading them would
        # take turns with the GUI thread's first paint.
        rows = window.model.rows
        print("read ahead before:", rows._working, len(rows._queue) > 0)
        window.build_rest()
        print("read ahead after:", rows.wait(5000), len(rows._queue))
        app.processEvents()
        after = places()
        print("moved", sorted(name for name in before if before[name] != after[name]))
        below = window.tray.mapTo(window, QPoint(0, 0)).y() > before["prompt"][0].y()
        print("tray shown", window.tray.isVisible(), below)
        texts = [a.text() for a in window.gallery_toolbar.actions()]
        print("toolbar", texts[0], " " in texts)
        print("menu items", all(m.actions() for m in window.menus.values()))
        print("focus", window.focusWidget().objectName())
        window.close()
        """,
        tmp_path,
    )
    assert lines[0] == "later: [] False"
    assert lines[1] == "read ahead before: False True"  # asked for, waiting
    assert lines[2] == "read ahead after: True 0"  # read once the rest is built
    assert lines[3] == "moved []"
    assert lines[4] == "tray shown True True"
    assert lines[5] == "toolbar &View False"  # the blank that kept the place is gone
    assert lines[6] == "menu items True"
    assert lines[7] == "focus promptEdit"


def test_the_gallery_reads_on_when_what_comes_after_ready_fails_to_build(tmp_path: Path) -> None:
    save_images(tmp_path, 130)
    lines = run(
        """
        import sys
        from PySide6.QtWidgets import QApplication
        from krea_desktop.ui import app as app_module
        from krea_desktop.ui.window import main_window
        app = QApplication(sys.argv)
        window = app_module.open_main_window()
        app_module.show_and_paint(window, timeout_ms=5000)
        app_module.build_panels(window, app_module.open_library(window), rest_later=True)
        app_module.wait_painted(window.gallery.viewport(), 5000)

        def fails(_window):
            raise RuntimeError("no menus")

        main_window.fill_menus = fails
        try:
            window.build_rest()
        except RuntimeError as err:
            print("raised:", err)
        rows = window.model.rows
        print("read ahead:", rows.wait(5000), len(rows._queue), rows._held)
        window.close()
        """,
        tmp_path,
    )
    assert lines == ["raised: no menus", "read ahead: True 0 False"]


def test_the_window_modules_load_without_the_cyclic_collector_or_the_bindings_source_scan(tmp_path: Path) -> None:
    # run_app stands in for the window: what matters is the state its module is imported in.
    lines = run(
        """
        import gc, sys, types
        seen = {}
        window = types.ModuleType("krea_desktop.ui.app")
        def run_app(*, smoke_test=False, open_paths=()):
            feature = sys.modules["shibokensupport.feature"]
            seen["collecting"] = gc.isenabled()
            # The scan says False for a module without source; skipped, it says True.
            seen["skipped"] = feature._mod_uses_pyside(types.ModuleType("a_module_without_source"))
            seen["paths"] = [str(p) for p in open_paths]
            return 7
        window.run_app = run_app
        sys.modules["krea_desktop.ui.app"] = window
        from krea_desktop import cli
        print(cli.main(["a.png"]), seen["collecting"], seen["skipped"], seen["paths"], gc.isenabled())
        """,
        tmp_path,
    )
    code, collecting, skipped, paths, after = lines[-1].split(" ", 4)
    assert code == "7"  # the window's exit code is the command's
    assert (collecting, skipped) == ("False", "True")
    assert paths == "['a.png']"
    assert after == "True"  # collecting again once the window is done


def test_the_command_line_leaves_collection_to_the_gui_thread_while_the_window_s_work_runs(tmp_path: Path) -> None:
    # run_app stands in for a window whose close gave up waiting for its work (a long
    # export): the GUI thread's collector is still installed as the command returns.
    lines = run(
        """
        import gc, sys, types
        window = types.ModuleType("krea_desktop.ui.app")
        def run_app(*, smoke_test=False, open_paths=()):
            from PySide6.QtCore import QCoreApplication
            from krea_desktop.ui.collector import collect_on_gui_thread
            window.app = QCoreApplication([])
            collect_on_gui_thread()
            return 0
        window.run_app = run_app
        sys.modules["krea_desktop.ui.app"] = window
        from krea_desktop import cli
        from krea_desktop.ui import collector
        print(cli.main([]), gc.isenabled(), collector.installed() is not None)
        """,
        tmp_path,
    )
    assert lines[-1] == "0 False True"  # left off: another thread may still run Python


def test_the_window_and_the_command_line_find_one_library_even_without_home(
    monkeypatch: pytest.MonkeyPatch, qapp: Any
) -> None:
    # Started from cron, systemd or `env -i`: Qt took "/" for the home folder
    # ("//.local/share/krea-desktop"), the command line the user's home from the system.
    import pwd

    from krea_desktop.library import paths
    from krea_desktop.ui import app as ui_app

    monkeypatch.delenv("KREA_DESKTOP_DATA_DIR", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("HOME", raising=False)
    expected = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".local" / "share" / "krea-desktop"
    assert paths.data_dir() == expected
    assert ui_app.data_dir() == expected


def test_a_file_name_that_is_not_utf8_on_the_command_line_opens_the_window(tmp_path: Path) -> None:
    # "Open With" on a file from an old Latin-1 archive: Qt's binding ended the process on
    # the name in its arguments (SIGSEGV, exit 139) before the window was made.
    odd = os.fsencode(tmp_path) + b"/real\xffname.png"
    Path(os.fsdecode(odd)).write_bytes((ROOT / "tests" / "corpus" / "a1111" / "txt2img.png").read_bytes())
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "TMPDIR": str(tmp_path),
    }
    env.pop("RUNWARE_API_KEY", None)
    done = subprocess.run(
        [sys.executable, "-m", "krea_desktop", "--smoke-test", odd],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "smoke: OK" in done.stdout

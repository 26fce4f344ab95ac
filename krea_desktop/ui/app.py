"""Starting the application: QApplication, the asyncio loop (qasync), the main window.

The window appears before most of the app is imported: ``run_app`` shows and paints the
main window's frame with only Qt loaded, then imports and builds the panels, the gallery
and the client thread, then runs the asyncio loop. Imports at the top of this module are
therefore kept to what that first paint needs.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QEvent,
    QEventLoop,
    QObject,
    QSettings,
    Qt,
    QTimer,
    QtMsgType,
    qInstallMessageHandler,
)
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication

from krea_desktop import APP_ID, APP_NAME, __version__, config
from krea_desktop.ui.bindings import skip_pyside_source_scan
from krea_desktop.ui.settings import QtSettingsStore
from krea_desktop.ui.window.main_window import MainWindow
from krea_desktop.wording import counted, within

if TYPE_CHECKING:
    from krea_desktop.api.client import RunwareClient
    from krea_desktop.library.store import Library
    from krea_desktop.ui.single_instance import Claim, InstanceServer, Request
    from krea_desktop.ui.window.main_window import ClientFactory

log = logging.getLogger("krea_desktop")

APP_DIR_NAME = "krea-desktop"
REPORT_FIRST_PAINT_ENV = "KREA_DESKTOP_REPORT_FIRST_PAINT"


def configure_application(app: QGuiApplication) -> None:
    app.setApplicationName(APP_DIR_NAME)  # names the standard folders: ~/.local/share/krea-desktop
    app.setOrganizationName("")
    app.setApplicationDisplayName(APP_NAME)
    app.setApplicationVersion(__version__)
    # The one application id: the Wayland app_id, the .desktop file's name and its Icon=.
    app.setDesktopFileName(APP_ID)
    icon = app_icon()
    if not icon.isNull():
        app.setWindowIcon(icon)


def app_icon() -> QIcon:
    """The application icon at every size it ships in (empty if the files are missing)."""
    icon = QIcon()
    # The package's own folder, in the source tree, an installed wheel and the bundle alike
    # (PyInstaller puts the resources beside the package's modules).
    hicolor = Path(__file__).resolve().parents[1] / "resources" / "icons" / "hicolor"
    if not hicolor.is_dir():
        return icon
    # Smallest first: Qt's X11 backend leaves _NET_WM_ICON empty when the first size it
    # sees is the 512 px one.
    sized = [(int(f.name.partition("x")[0]), f) for f in hicolor.iterdir() if f.name.partition("x")[0].isdigit()]
    for _size, folder in sorted(sized, key=lambda pair: pair[0]):
        png = folder / "apps" / f"{APP_ID}.png"
        if png.is_file():
            icon.addFile(str(png))
    return icon


def data_dir() -> Path:
    """KREA_DESKTOP_DATA_DIR, else the platform's application-data folder, as the command
    line finds it (``library.paths``): Qt's own answer takes "/" for the home folder when
    HOME is unset (cron, systemd, ``env -i``), where the command line asks the system for
    the user's home, and the window and the commands would keep two libraries."""
    chosen = config.resolve(config.DATA_DIR, env=os.environ, stored=None)
    if chosen is not None:
        return chosen
    from krea_desktop.library.paths import data_dir as core_data_dir

    return core_data_dir()


def setup_logging(folder: Path) -> None:
    from krea_desktop.logfile import open_log

    if open_log(folder) is None:
        return
    qt_log = logging.getLogger("qt")
    levels = {
        QtMsgType.QtDebugMsg: logging.DEBUG,
        QtMsgType.QtInfoMsg: logging.INFO,
        QtMsgType.QtWarningMsg: logging.WARNING,
        QtMsgType.QtCriticalMsg: logging.ERROR,
        QtMsgType.QtFatalMsg: logging.CRITICAL,
    }

    def route(kind: QtMsgType, _context: object, message: str) -> None:
        qt_log.log(levels.get(kind, logging.WARNING), message)

    qInstallMessageHandler(route)


def tune_allocator() -> None:
    """glibc only: serve every allocation of 1 MiB or more from its own mapping, returned
    to the system when freed. Answers of tens of MB pass through the app; by default glibc
    raises that threshold after the first such buffer is freed, the next ones then come
    from the heap, and the holes they leave keep the process several MB larger after every
    batch (figures: tests/benchmarks/README.md)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the process is linked with
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): nothing to tune
        return
    mallopt(_M_MMAP_THRESHOLD, 1 << 20)


_M_MMAP_THRESHOLD = -3  # from <malloc.h>


def api_endpoint(settings: QSettings) -> str:
    """RUNWARE_API_URL, else the endpoint chosen in Settings, else the default. A
    RUNWARE_API_URL that breaks the endpoint rule is ignored: the window opens on the
    stored (or default) endpoint rather than failing to start, and says so
    (:func:`ignored_endpoint`)."""
    return ignored_endpoint(settings)[0]


def ignored_endpoint(settings: QSettings) -> tuple[str, str | None]:
    """The endpoint the window uses, and the sentence saying why RUNWARE_API_URL is not
    that endpoint when it is set to one that breaks the rule (else None)."""
    try:
        return QtSettingsStore(settings).get(config.API_ENDPOINT), None
    except config.OptionError as err:
        used = QtSettingsStore(settings, env={}).get(config.API_ENDPOINT)
        return used, f"The key goes to {used}, not to {err.variable} ({err.raw!r}): {within(err.reason)}."


def open_main_window() -> MainWindow:
    """The main window's frame (title, saved geometry), not yet shown or built: it needs
    nothing but Qt and the settings file."""
    app = QApplication.instance()
    if app is not None and isinstance(app, QGuiApplication) and not app.desktopFileName():
        configure_application(app)
    folder = data_dir()
    with contextlib.suppress(OSError):  # a folder that cannot be made is said when the library opens
        folder.mkdir(parents=True, exist_ok=True)
    settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
    return MainWindow(data_dir=folder, settings=settings)


def open_library(window: MainWindow) -> Library:
    """The library in the window's data folder (raises LibraryError, in one sentence, when
    the folder cannot hold one)."""
    from krea_desktop.library.store import Library

    # An index found damaged or empty is rebuilt by the check of the folder that runs
    # beside the GUI thread once the window is built: at 100,000 images, reading and
    # decoding every file takes many minutes, which the window would be frozen for.
    return Library(window.data_dir, rebuild=False)


def build_panels(window: MainWindow, library: Library, *, rest_later: bool = False) -> None:
    """Everything the first interaction needs, into the frame: the panels on ``library``,
    the gallery on its rows, the prompt with the focus (with ``rest_later``, the tray, the
    gallery's actions and the menus' items wait for ``window.build_rest()``). Neither the
    key store nor the client is touched: demo mode is what it was last time until
    :func:`finish_main_window` knows (``RUNWARE_API_KEY`` in the environment says at once)."""
    from krea_desktop.ui.window.main_window import demo_hint

    demo = False if os.environ.get("RUNWARE_API_KEY", "").strip() else demo_hint(window.settings)
    window.build_panels(library=library, demo=demo, endpoint=api_endpoint(window.settings), rest_later=rest_later)


def finish_main_window(window: MainWindow, *, force_demo: bool = False, demo_latency: float = 0.25) -> MainWindow:
    """What waits until the panels are there: the log file, the library folder checked
    against its index, the key looked up, the client thread made and started (and, as it
    is, the cyclic collector moved to the GUI thread: ui/collector.py)."""
    import asyncio

    folder = window.data_dir
    settings = window.settings
    library = window.library
    tune_allocator()
    _collect_on_gui_thread(window)  # the client thread is made below: cycles are collected here, not there
    setup_logging(folder / "logs")

    from krea_desktop.ui.window import credentials

    problems = window.key_problems  # why no key was found, when the keyring could not be read

    def client(key: str | None, endpoint: str) -> RunwareClient:
        from krea_desktop.backend import make_client  # on the client thread, after start-up

        return make_client(key, endpoint, library, demo_latency=demo_latency)[0]

    def make_factory() -> tuple[ClientFactory, bool]:
        endpoint = api_endpoint(settings)
        if force_demo:
            problems.clear()
            return (lambda: client(None, endpoint)), True
        lookup = credentials.KeyLookup(folder)
        if lookup.wait(credentials.KEYRING_WAIT_S):
            key, problem = lookup.answer
            problems[:] = [problem] if problem else []
            return (lambda: client(key, endpoint)), not key
        # A keyring slow to answer: the window goes on as it was; the client thread waits.
        problems.clear()
        stopping = lambda: window.built and window.client_thread.stop_requested  # noqa: E731
        credentials.follow(lookup, window, window.key_answered, window.reread_key)
        QTimer.singleShot(0, lambda: window.show_service_message(credentials.KEYRING_SLOW))  # once it has started
        return (lambda: client(lookup.wait_outcome(stopping)[0], endpoint)), window.demo

    async def test_key(key: str, endpoint: str) -> None:
        async def work(_current: RunwareClient) -> None:
            from krea_desktop.api.client import RunwareClient

            client = RunwareClient(key, base_url=endpoint)
            try:
                await client.test_key()
            finally:
                await client.aclose()

        await asyncio.wrap_future(window.client_thread.run_coroutine(work))

    factory, demo = make_factory()
    window.finish(client_factory=factory, demo=demo, make_client_factory=make_factory, test_key=test_key)
    window.start()
    window.reconcile_library()
    for problem in problems:  # a locked keyring is not "no key": said, not left to the demo banner
        window.show_service_message(problem, error=True)
    _endpoint, refused = ignored_endpoint(settings)
    if refused is not None:
        log.warning("%s", refused)
        if not window.demo:  # the user meant another service: say which one the key goes to
            window.show_service_message(refused, error=True)
    return window


def _collect_on_gui_thread(window: MainWindow) -> None:
    from krea_desktop.ui.collector import collect_on_gui_thread

    collect_on_gui_thread(holder=window)


def _release_collector(window: MainWindow) -> None:
    from krea_desktop.ui.collector import release

    release(window)


def build_main_window(window: MainWindow, *, force_demo: bool = False, demo_latency: float = 0.25) -> MainWindow:
    """Open the library, build the window's panels on it, and start the client thread,
    configured from the environment as ``krea-desktop`` would be."""
    build_panels(window, open_library(window))
    return finish_main_window(window, force_demo=force_demo, demo_latency=demo_latency)


def create_main_window(*, force_demo: bool = False, demo_latency: float = 0.25) -> MainWindow:
    """The fully wired main window, not yet shown, configured from the environment as
    ``krea-desktop`` would be. Works inside a running qasync loop. From then on Python's
    cyclic collector runs from the event loop, on the GUI thread (see ui/collector.py),
    until :func:`close_library` has seen the window's threads end."""
    return build_main_window(open_main_window(), force_demo=force_demo, demo_latency=demo_latency)


def show_and_paint(window: MainWindow, timeout_ms: int = 500) -> bool:
    """Show ``window`` and return once it has painted (True), or after ``timeout_ms``
    (False: a window that starts minimised, say, is not painted until restored)."""
    return wait_painted(window, timeout_ms, before=window.show)


def wait_painted(widget: QObject, timeout_ms: int = 500, *, before: Callable[[], None] | None = None) -> bool:
    """Run ``before`` (if given) and return once ``widget`` has painted (True), or after
    ``timeout_ms`` (False). Events meanwhile are handled: keys typed go where the focus is."""
    loop = QEventLoop()
    watcher = _PaintWatcher(widget, lambda: QTimer.singleShot(0, loop.quit))
    widget.installEventFilter(watcher)
    QTimer.singleShot(timeout_ms, loop.quit)
    if before is not None:
        before()
    if not watcher.painted:
        loop.exec()
    widget.removeEventFilter(watcher)
    watcher.deleteLater()
    return watcher.painted


def run_app(*, smoke_test: bool = False, open_paths: Sequence[Path] = ()) -> int:
    # Start-up makes many objects and no garbage cycles worth finding: the cyclic collector
    # runs again once the window is built (it would spend about 15 ms before then), and from
    # then on only on the GUI thread (see ui/collector.py). The
    # command line turned it off, and the source scan, before importing this module; a
    # program calling run_app itself gets the same from here on.
    collecting = gc.isenabled()
    gc.disable()
    skip_pyside_source_scan()
    try:
        return _run_app(smoke_test=smoke_test, open_paths=open_paths)
    finally:
        if collecting and not gui_thread_collects():
            gc.enable()


def gui_thread_collects() -> bool:
    """Whether the GUI thread's collector still runs: not released, as work it was made for
    (a long export, say) still goes on as the process ends. Automatic collection stays off."""
    collector = sys.modules.get("krea_desktop.ui.collector")
    return collector is not None and collector.installed() is not None


def _qt_arguments(argv: Sequence[str]) -> list[str]:
    """The arguments Qt is given: those it can take. A file name that is not valid UTF-8
    (from an old archive, say) reaches Python with surrogates standing for its bytes, and
    the binding ends the process on it (SIGSEGV); the files to open are read from the
    command line by the app itself, so Qt needs none of them."""

    def takeable(arg: str) -> bool:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True

    return [arg for arg in argv if takeable(arg)] or ["krea-desktop"]


def _run_app(*, smoke_test: bool, open_paths: Sequence[Path]) -> int:
    if smoke_test:
        import tempfile

        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # the check opens no window on the screen
        os.environ["KREA_DESKTOP_DATA_DIR"] = tempfile.mkdtemp(prefix="krea-desktop-smoke-")
    os.environ.setdefault("QT_API", "pyside6")
    # X11 matches a window to its menu entry by WM_CLASS; Qt takes the instance part from
    # RESOURCE_NAME, so it names the same id as the .desktop file's StartupWMClass.
    os.environ.setdefault("RESOURCE_NAME", APP_ID)
    app = QApplication.instance() or QApplication(_qt_arguments(sys.argv))
    assert isinstance(app, QApplication)
    configure_application(app)
    claim: Claim | None = None
    if not smoke_test:  # the smoke test has a library of its own and never meets another start
        from krea_desktop.ui import single_instance

        open_paths = [Path(os.path.abspath(p)) for p in open_paths]
        folder = data_dir()
        claim = single_instance.claim(folder, open_paths, listen_later=True)
        if claim.problem:  # said; a window that does not answer may be ended, and then the start goes on

            def again(timeout_ms: int | None = None) -> Claim:
                waits = {} if timeout_ms is None else {"timeout_ms": timeout_ms}
                return single_instance.claim(folder, open_paths, listen_later=True, **waits)

            settled = answer_problem(claim, folder, again)
            if settled is None:
                return 1
            claim = settled
        if claim.handed_off:  # the running window has them, and comes to the front
            return 0
    try:
        return _run_window(app, smoke_test=smoke_test, open_paths=open_paths, claim=claim)
    finally:
        if claim is not None:
            claim.release()  # a window closed before it listened
            if claim.server is not None:
                claim.server.close()  # a start from now on opens a window of its own


def answer_problem(
    claim: Claim,
    folder: Path,
    again: Callable[..., Claim],
    *,
    on_screen: bool | None = None,
    wait_s: float | None = None,
) -> Claim | None:
    """Say why this start cannot open the library in ``folder``: on the terminal, and in a
    message box when there is a screen (``on_screen``; by default, unless Qt has none). A
    window that does not answer, its process known, may be ended from the box ("End It and
    Open"; Cancel is the default): then the claim is made again (``again``, which takes the
    time to wait for an answer) and returned, for the start to go on with. The window is
    asked once more first (it may have come back while the box was up): one that answers
    now is not ended. None when the start ends here (Cancel, or a window that could not be
    ended)."""
    from PySide6.QtWidgets import QMessageBox

    from krea_desktop.ui import single_instance

    if on_screen is None:
        on_screen = QGuiApplication.platformName() not in ("offscreen", "minimal")

    def say(text: str, offer: str | None = None) -> bool:
        """Say ``text`` on the terminal and, on a screen, in a box: ``offer`` with "End It
        and Open" and Cancel when given, else ``text`` with OK. Whether the user chose to end."""
        print(f"krea-desktop: {text}", file=sys.stderr, flush=True)
        if not on_screen:
            return False
        box = QMessageBox(QMessageBox.Icon.Warning, APP_NAME, "")
        box.setTextFormat(Qt.TextFormat.PlainText)  # a folder's name is not markup
        box.setText(text if offer is None else offer)
        end = None
        if offer is not None:
            end = box.addButton("End It and Open", QMessageBox.ButtonRole.DestructiveRole)
            cancel = box.addButton(QMessageBox.StandardButton.Cancel)
            box.setDefaultButton(cancel)
            box.setEscapeButton(cancel)
        else:
            box.setStandardButtons(QMessageBox.StandardButton.Ok)
        box.exec()
        return end is not None and box.clickedButton() is end

    while claim.problem:
        pid = claim.unresponsive_pid
        if pid is None:
            say(claim.problem)
            return None
        if not say(claim.problem, single_instance.end_offer(folder, pid)):
            return None
        now = again(single_instance.RECHECK_MS)
        if not now.problem or now.unresponsive_pid != pid:  # it answers now (or another has it): nothing ended
            claim = now
            continue
        wait = single_instance.END_WAIT_S if wait_s is None else wait_s
        if not single_instance.end_unresponsive(pid, claim.unresponsive_identity, wait_s=wait):
            say(single_instance.not_ended(pid))
            return None
        log.info("ended process %d, which had the library open but did not answer", pid)
        claim = again()
    return claim


def _run_window(app: QApplication, *, smoke_test: bool, open_paths: Sequence[Path], claim: Claim | None) -> int:
    from krea_desktop.ui.theme import apply_dark_palette

    apply_dark_palette(app)
    window: MainWindow | None = None
    report: _StartupReport | None = None
    problem: Exception | None = None
    arrivals: _Arrivals | None = None
    if not smoke_test:
        _early_stop.install()
        # The frame first, painted, then everything else: the window is there at once.
        window = open_main_window()
        if os.environ.get(REPORT_FIRST_PAINT_ENV):
            report = _StartupReport(window)
        show_and_paint(window)
        if _early_stop.code():  # Ctrl+C or SIGTERM as it opened: nothing was built, nothing to keep
            window.close()
            return _early_stop.code()
        if not window.isVisible():  # closed while it opened: nothing was built, nothing to keep
            return 0
        # Then what the first interaction needs (the prompt, the gallery on the library),
        # painted before the rest (the key store, the client thread, asyncio's loop) loads.
        problem = _build_panels(window)
        if problem is None:
            wait_painted(window.gallery.viewport(), 1000)
            if report is not None:
                report.panels_painted()
            if _early_stop.code():
                window.close()  # its state kept, as by its close button
            if not window.isVisible():  # closed as it became ready
                close_library(window)
                return _early_stop.code()
            # The tray, the gallery's actions and the menus' items, into their kept places.
            window.build_rest()
        # Later starts waited for this one to be up; now they find it (and raise it, or
        # open their images here once it is built).
        server = claim.listen() if claim is not None else None
        if server is not None:
            if problem is not None:  # a later start's images cannot be opened here: it says why
                server.refusal = str(problem)
            arrivals = _Arrivals(server)
            arrivals.frame_shown(window)

    import asyncio

    import qasync

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with loop:
        if smoke_test or window is None:  # collected on the GUI thread once its window has threads
            try:
                return int(loop.run_until_complete(_smoke(app)))
            finally:
                import shutil

                shutil.rmtree(os.environ["KREA_DESKTOP_DATA_DIR"], ignore_errors=True)  # nothing left behind
        return int(loop.run_until_complete(_run(app, window, open_paths, report, arrivals, problem)))


def _build_panels(window: MainWindow) -> Exception | None:
    """Open the library and build the panels on it; the LibraryError saying why the
    library cannot be opened, if it cannot."""
    from krea_desktop.library.store import LibraryError

    try:
        build_panels(window, open_library(window), rest_later=True)
    except LibraryError as err:
        return err
    return None


async def _run(
    app: QApplication,
    window: MainWindow,
    open_paths: Sequence[Path] = (),
    report: _StartupReport | None = None,
    arrivals: _Arrivals | None = None,
    problem: Exception | None = None,
) -> int:
    import asyncio

    if not window.isVisible():  # closed before the loop ran this
        if window.panels_built:
            close_library(window)
        return 0
    closed = asyncio.Event()
    app.aboutToQuit.connect(closed.set)
    app.lastWindowClosed.connect(closed.set)
    if problem is not None:  # the window stays, saying why, until it is closed
        print(f"krea-desktop: {problem}", file=sys.stderr, flush=True)
        if _early_stop.code():  # Ctrl+C or SIGTERM as the library was being opened
            window.close()
            return _early_stop.code()
        window.show_problem(str(problem))
        _close_on_signals(window)
        if _early_stop.code():
            window.close()
        _collect_on_gui_thread(window)
        try:
            await closed.wait()
        finally:
            _release_collector(window)
        return _early_stop.code() or 1
    if _early_stop.code():  # Ctrl+C or SIGTERM before the client thread was made
        window.close()
        close_library(window)
        return _early_stop.code()
    finish_main_window(window)
    closed_by_signals = _close_on_signals(window)  # after the log file is opened: it says so there
    if _early_stop.code():  # between the two
        window.close()
    if report is not None:
        report.built()
    if open_paths:
        window.open_images(list(open_paths))
    if arrivals is not None:
        arrivals.window_built(window)
    await closed.wait()
    closed_by_signals()  # a Ctrl+C while the last saves are waited for ends it at once
    try:
        if arrivals is not None:
            arrivals.stop()  # a start from now on opens a window of its own
    finally:
        close_library(window)  # whatever the listening's end said
    return 0


class _EarlyStop:
    """Ctrl+C or SIGTERM while the window opens, before :func:`_close_on_signals` takes them
    over: noted, and the start ends at its next step, closing the window as its close
    button does. Python's own Ctrl+C handler raised KeyboardInterrupt inside whichever Qt
    callback ran at that moment (a paint, an event filter), where the bindings print it and
    carry on: the window opened all the same."""

    def __init__(self) -> None:
        self.number = 0  # the signal that came, if any

    def install(self) -> None:
        import signal

        for number in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, OSError):  # not the main thread: left as they are
                signal.signal(number, self._note)

    def _note(self, number: int, _frame: object) -> None:
        self.number = self.number or number

    def code(self) -> int:
        """The exit code the signal that came calls for (128 + its number), or 0."""
        return 128 + self.number if self.number else 0


_early_stop = _EarlyStop()


def _close_on_signals(window: MainWindow) -> Callable[[], None]:
    """Ctrl+C in the terminal that started the app, and SIGTERM (a logout, ``kill``), close
    the window as its close button does: its state kept, the last images saved. Python's
    own handlers never run while Qt's loop waits, so both were ignored, or ended the
    process on the spot. Returns what to call once the window has closed: from then on,
    while the last saves are waited for, either signal ends the process at once."""
    import asyncio
    import signal

    loop = asyncio.get_running_loop()
    numbers = (signal.SIGINT, signal.SIGTERM)

    def close() -> None:
        # Copies of this signal are no second one: a terminal's Ctrl+C reaches a launcher
        # and the app both, and the launcher passes it on. (Not the loop's
        # remove_signal_handler: it puts back Python's Ctrl+C handler, which would make a
        # KeyboardInterrupt of a copy Python has yet to see.)
        for number in numbers:
            signal.signal(number, signal.SIG_IGN)
        window.close()

    def insist() -> None:
        for number in numbers:
            signal.signal(number, signal.SIG_DFL)

    try:
        for number in numbers:
            loop.add_signal_handler(number, close)
    except (NotImplementedError, RuntimeError, ValueError):
        # Windows' event loops take no signal handlers: Ctrl+C there stays as it was.
        return lambda: None
    log.info("Ctrl+C and SIGTERM close the window")
    return insist


# How long a closed window's process waits for images still being saved (and the library's
# readers) before it ends without them: their tasks' records stay for the next start.
SHUTDOWN_WAIT_MS = 60_000


def close_library(window: MainWindow, wait_ms: int = SHUTDOWN_WAIT_MS) -> None:
    """Close the library once nothing uses it: the client thread (saving the last images)
    and the background workers (reading it) have ended. Closing a connection another thread
    is reading through crashes the process, and so does destroying a running QThread.
    Workers still at it after ``wait_ms`` (a long export, say) are left to finish as the
    process ends (the pool waits for them) with the library open; a client thread still
    running then ends the process here (SQLite keeps every committed image; the next start
    collects the tasks left unfinished)."""
    if window.wait_for_work(wait_ms):
        window.library.close()
        _release_collector(window)  # none of its threads runs Python now
        return
    if not (window.built and window.client_thread.isRunning()):
        log.warning("background work was still running %d s after the window closed", wait_ms // 1000)
        return
    log.error("the client thread was still running %d s after the window closed; ending without it", wait_ms // 1000)
    logging.shutdown()
    sys.stdout.flush()
    os._exit(0)


async def _smoke(app: QApplication) -> int:
    """Open the window offscreen, make one demo image through the simulator, check it was
    saved, and say what happened."""
    import asyncio

    started = time.perf_counter()
    window = create_main_window(force_demo=True, demo_latency=0.0)
    window.show()
    print(f"smoke: window shown ({window.width()}x{window.height()}) with data in {window.data_dir}", flush=True)
    window.prompt_panel.setPrompt("a smoke test: a lighthouse in fog")
    done: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()

    def finish(outcome: str, text: str) -> None:
        if not done.done():
            done.set_result((outcome, text))

    window.client_thread.jobFinished.connect(lambda _j, n: finish("ok", counted(n, "image")))
    window.client_thread.jobFailed.connect(lambda _j, msg, _e: finish("failed", msg))
    # As base64 (the window asks for URLs), and through the bundle's base64 helper process
    # whatever the image's size (only data of b64helper.MIN_SIZE or more goes there
    # otherwise, and a simulated image of a random seed is sometimes smaller): this test
    # is also here to check that the helper starts and decodes.
    from krea_desktop.api import b64helper
    from krea_desktop.ui.compose import prompt_panel

    prompt_panel.DEFAULT_OUTPUT_TYPE = "base64Data"
    b64helper.MIN_SIZE = 0
    job = window.generate()
    if job is None:
        print("smoke: FAILED: the window refused to generate", flush=True)
        return 1
    try:
        outcome, text = await asyncio.wait_for(done, 60)
    except asyncio.TimeoutError:
        outcome, text = "failed", "no result within 60 s"
    entries = window.library.entries()
    window.close()
    if not window.wait_for_work(SHUTDOWN_WAIT_MS):
        print("smoke: FAILED: the window's threads did not end once it was closed", flush=True)
        return 1
    close_library(window)  # its threads ended: the collector is let go, the library closed
    if outcome != "ok" or len(entries) != 1 or not entries[0].path.exists():
        print(f"smoke: FAILED: {text}", flush=True)
        return 1
    print(f"smoke: generated and saved {entries[0].path} ({entries[0].width}x{entries[0].height})", flush=True)
    helper = b64helper.shared()
    print(f"smoke: base64 helper process decoded {helper.decoded}, failed {helper.failures}", flush=True)
    if helper.failures or not helper.decoded:
        print("smoke: FAILED: the base64 helper process did not work", flush=True)
        return 1
    from krea_desktop.external import check_child_environment

    problem = check_child_environment()
    print(f"smoke: child environment {'OK' if problem is None else 'FAILED: ' + problem}", flush=True)
    if problem is not None:
        return 1
    print(f"smoke: OK in {time.perf_counter() - started:.2f} s", flush=True)
    app.quit()
    return 0


def _seconds_since_process_start() -> float:
    """Wall time since this process started (Linux), else since this module was imported."""
    try:
        stat = Path("/proc/self/stat").read_text()
        started_ticks = int(stat.rpartition(")")[2].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - started_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return time.perf_counter() - _IMPORTED_AT


_IMPORTED_AT = time.perf_counter()


class _PaintWatcher(QObject):
    """Calls ``then`` once, at the first Paint event of ``window``."""

    def __init__(self, window: QObject, then: Callable[[], None]) -> None:
        super().__init__(window)
        self._window = window
        self._then = then
        self.painted = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if not self.painted and event.type() == QEvent.Type.Paint and watched is self._window:
            self.painted = True
            self._then()
        return False


class _Arrivals(QObject):
    """Requests from later starts (see :mod:`krea_desktop.ui.single_instance`): each brings
    the window to the front and opens its images there, once the window is built; the
    images of those that come while it is being built wait until then."""

    def __init__(self, server: InstanceServer) -> None:
        super().__init__()
        self._server = server
        self._window: MainWindow | None = None
        self._built = False
        self._waiting: list[Path] = []
        self._waiting_starts = 0
        server.requested.connect(self._arrived)

    def frame_shown(self, window: MainWindow) -> None:
        self._window = window

    def window_built(self, window: MainWindow) -> None:
        self._window = window
        self._built = True
        if self._waiting_starts:
            paths, self._waiting = self._waiting, []
            self._waiting_starts = 0
            self._open(window, paths)

    def stop(self) -> None:
        self._server.close()
        self._window = None

    def _arrived(self, request: Request) -> None:
        window = self._window
        if request.activation and QGuiApplication.platformName().startswith("wayland"):
            os.environ["XDG_ACTIVATION_TOKEN"] = request.activation  # Qt uses it once to activate
        if window is not None:
            bring_to_front(window)
        if window is None or not self._built:
            self._waiting.extend(request.paths)
            self._waiting_starts += 1
            return
        self._open(window, request.paths)

    @staticmethod
    def _open(window: MainWindow, paths: list[Path]) -> None:
        if not paths:
            log.info("raised by another start")
            return
        log.info("opened from another start: %d file(s)", len(paths))
        if window.built:
            window.open_images(paths)


def bring_to_front(window: MainWindow) -> None:
    """Show ``window`` (restored if minimised, still maximised if it was) in front."""
    if window.isMinimized():
        window.setWindowState(window.windowState() & ~Qt.WindowState.WindowMinimized)
    window.show()
    window.raise_()
    window.activateWindow()


class _StartupReport(QObject):
    """For the start-up benchmarks (``KREA_DESKTOP_REPORT_FIRST_PAINT``), each line with the
    seconds since the process started: ``first-paint`` once the frame has painted;
    ``ready`` once the window has painted with the prompt holding the focus and the
    gallery showing the library's first rows (thumbnails may still be loading); ``built``
    once the rest (key, client thread) is made too and painted. Then it closes the window."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self._first = _PaintWatcher(window, lambda: QTimer.singleShot(0, lambda: self._say("first-paint")))
        window.installEventFilter(self._first)

    def panels_painted(self) -> None:
        """Called once the gallery has painted after the panels were built."""
        window = self._window
        view = window.gallery
        focused = window.focusWidget() is window.prompt_panel.promptEdit
        model = view.model()
        shown = model.rowCount() > 0 and view.visualRect(model.index(0, 0)).intersects(view.viewport().rect())
        rows = shown or window.library.count() == 0
        if focused and rows:
            self._say("ready")
        else:
            self._say(f"not-ready focus={focused} rows={rows}")

    def built(self) -> None:
        def done() -> None:
            self._say("built")
            self._window.close()

        # The rest of the paint pass runs before the timer fires.
        self._built = _PaintWatcher(self._window, lambda: QTimer.singleShot(0, done))
        self._window.installEventFilter(self._built)
        self._window.update()

    @staticmethod
    def _say(what: str) -> None:
        # A reader that has stopped listening (a closed pipe) must not keep the window
        # from closing after "built".
        with contextlib.suppress(OSError, ValueError):
            print(f"{what} {_seconds_since_process_start():.3f}", flush=True)

"""The command line's options, as its parser reads them (no command is run)."""

from __future__ import annotations

from typing import Any

import pytest

from krea_desktop.cli import build_parser


@pytest.mark.parametrize("typed", ["high", "HIGH", "High", " high "])
def test_creativity_is_read_in_any_case_by_generate_and_by_sweep_alike(typed: str) -> None:
    parser = build_parser()
    assert parser.parse_args(["generate", "a fox", "--creativity", typed]).creativity == "high"
    args = parser.parse_args(["sweep", "a fox", "--creativity", typed, "--vary", "seed=1,2"])
    assert args.creativity == "high"


def test_an_unknown_creativity_names_the_levels(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["generate", "a fox", "--creativity", "wild"])
    assert exit_.value.code == 2
    assert "must be one of raw, low, medium, high" in capsys.readouterr().err


def test_creativity_not_given_is_told_apart_from_one_given() -> None:
    # A sweep refuses --creativity beside a creativity axis, and must know it was given.
    parser = build_parser()
    assert parser.parse_args(["sweep", "a fox", "--vary", "creativity=raw,low"]).creativity is None
    assert parser.parse_args(["sweep", "a fox", "--creativity", "medium", "--vary", "seed=1"]).creativity == "medium"


def test_qts_x11_libraries_missing_are_named_with_their_packages_not_left_to_qts_abort(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """From Qt 6.5 on, Qt's X11 platform needs libxcb-cursor0 and others that a desktop may
    lack: Qt printed a paragraph and aborted the process (a core dump, nothing at all
    from a double-click's point of view)."""
    import ctypes
    import sys

    from krea_desktop import display

    if sys.platform != "linux":
        pytest.skip("X11 is Linux's here")  # the check itself returns None elsewhere
    missing = {"libxcb-cursor.so.0", "libxkbcommon-x11.so.0"}
    loaded: list[str] = []

    class FakeLibrary:
        def __init__(self, name: str, mode: int = 0) -> None:
            loaded.append(name)
            if name.endswith("libqxcb.so") or name in missing:
                raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", FakeLibrary)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert display.missing_x11_libraries() == (
        "the window cannot open because Qt's X11 support needs libxcb-cursor.so.0 and libxkbcommon-x11.so.0, "
        "missing from this system; install libxcb-cursor0 and libxkbcommon-x11-0 (their names on Debian and "
        "Ubuntu) and start again"
    )
    assert loaded[0].endswith("/Qt/plugins/platforms/libqxcb.so")
    # Qt's X11 platform loading: nothing to say. Another platform chosen, or a Wayland
    # display: not asked at all.
    missing.clear()
    monkeypatch.setattr(ctypes, "CDLL", lambda name, mode=0: loaded.append(name))
    assert display.missing_x11_libraries() is None
    loaded.clear()
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert display.missing_x11_libraries() is None
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert display.missing_x11_libraries() is None and loaded == []


def test_an_x_server_that_does_not_let_this_user_in_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under sudo or su, or with an old XAUTHORITY, the X server answers but refuses the
    connection: Qt aborted (exit 134) saying libxcb-cursor0 was missing."""
    import ctypes

    from krea_desktop import display

    outcome = {"error": 1}
    connected: list[bytes] = []

    class FakeXcb:
        def __init__(self, name: str, mode: int = 0) -> None:
            assert name == "libxcb.so.1"
            self.xcb_connect = Function(lambda display, _screen: connected.append(display) or 1234)
            self.xcb_connection_has_error = Function(lambda connection: outcome["error"])
            self.xcb_disconnect = Function(lambda connection: None)

    class Function:
        def __init__(self, call: Any) -> None:
            self.call = call

        def __call__(self, *args: Any) -> Any:
            return self.call(*args)

    monkeypatch.setattr(ctypes, "CDLL", FakeXcb)
    assert display.x11_refusal(":44") == (
        "the display named by DISPLAY=:44 does not let this user in (a window started with sudo or su, "
        "or an old XAUTHORITY), so the window cannot open there"
    )
    assert connected == [b":44"]
    outcome["error"] = 0
    assert display.x11_refusal(":44") is None


def test_qt_that_cannot_be_loaded_is_one_sentence_naming_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Qt's own libraries need libxkbcommon and libX11: without them importing the
    bindings raised, and the window's start printed a traceback."""
    from krea_desktop import cli, display
    from krea_desktop.ui import bindings

    def broken() -> None:
        raise ImportError("libxkbcommon.so.0: cannot open shared object file: No such file or directory")

    class Preflight:
        def __init__(self, display: str) -> None:
            assert display == ":0"

        def why(self, timeout_s: float = 4.0) -> str | None:
            return said

    monkeypatch.setattr(bindings, "load_for_window", broken)
    monkeypatch.setattr(display, "find_display", lambda: (None, ":0"))
    monkeypatch.setattr(display, "X11Preflight", Preflight)
    said: str | None = "the window cannot open because Qt's X11 support needs libxkbcommon.so.0, missing"
    assert cli._open_window() == 1
    assert capsys.readouterr().err.startswith(f"krea-desktop: {said};")
    said = None  # the preflight found nothing: the loader's own words
    assert cli._open_window() == 1
    assert capsys.readouterr().err.startswith(
        "krea-desktop: Qt could not be loaded (libxkbcommon.so.0: cannot open shared object file: No such file or "
        "directory), so the window cannot open;"
    )


def run_as_python_3_10_does(main: Any) -> Any:
    """asyncio.run as it was before Python 3.11: no Ctrl+C handling of its own."""
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(main)
    finally:
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        loop.close()


def test_ctrl_c_cancels_the_command_which_says_what_it_kept_then_ends_as_interrupted() -> None:
    # Before Python 3.11, Ctrl+C came out as KeyboardInterrupt wherever the command was
    # (in the middle of an image's save), and nothing it held was saved or said.
    import asyncio
    import signal

    from krea_desktop.cli import _run_with_signals_cancelling

    said: list[str] = []

    async def command() -> int:
        asyncio.get_running_loop().call_later(0.05, signal.raise_signal, signal.SIGINT)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0.01)  # what it holds is saved, however long that takes
            said.append("the rest are collected by the next run")
            raise
        return 0

    with pytest.raises(KeyboardInterrupt):
        _run_with_signals_cancelling(command(), run_as_python_3_10_does, (signal.SIGINT,))
    assert said == ["the rest are collected by the next run"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back


def test_a_second_ctrl_c_ends_the_command_at_once() -> None:
    import asyncio
    import signal
    import time

    from krea_desktop.cli import _run_with_signals_cancelling

    async def command() -> int:
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, signal.raise_signal, signal.SIGINT)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            loop.call_later(0.05, signal.raise_signal, signal.SIGINT)
            await asyncio.sleep(10)  # a save that does not end
        return 0

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        _run_with_signals_cancelling(command(), run_as_python_3_10_does, (signal.SIGINT,))
    assert time.monotonic() - started < 5  # not the 10 s the save would have taken
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_command_that_ends_by_itself_is_not_taken_for_interrupted() -> None:
    import asyncio
    import signal

    from krea_desktop.cli import _run_with_signals_cancelling

    async def command() -> int:
        await asyncio.sleep(0)
        return 3

    assert _run_with_signals_cancelling(command(), run_as_python_3_10_does, (signal.SIGINT,)) == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_cancels_the_command_as_ctrl_c_does_and_is_told_apart() -> None:
    # SIGTERM (kill, timeout, a service manager) ended the command where it was: nothing
    # it held was saved or said, and no sweep's contact sheet was drawn.
    import asyncio
    import signal

    from krea_desktop.cli import run_interruptibly, terminated

    said: list[str] = []

    async def command() -> int:
        asyncio.get_running_loop().call_later(0.05, signal.raise_signal, signal.SIGTERM)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0.01)
            said.append("the rest are collected by the next run")
            raise
        return 0

    with pytest.raises(KeyboardInterrupt):
        run_interruptibly(command())
    assert said == ["the rest are collected by the next run"]
    assert terminated()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # given back

    async def ends() -> int:
        return 0

    assert run_interruptibly(ends()) == 0 and not terminated()


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_cancels_the_command_between_its_steps_not_inside_one(signame: str) -> None:
    # asyncio's Semaphore (a sweep's gate) wakes its next waiter by checking the waiter's
    # future is pending, then setting its result. Cancelled from inside the signal handler,
    # the command's tasks and that future were cancelled between the two: the sweep ended
    # in "InvalidStateError: invalid state" and a traceback, with no contact sheet.
    import asyncio
    import signal

    from krea_desktop.cli import run_interruptibly

    signum = getattr(signal, signame)
    woken: list[asyncio.Future[bool]] = []

    async def command() -> int:
        future = asyncio.get_running_loop().create_future()
        woken.append(future)

        async def waiter() -> None:
            await future

        async def waker() -> None:
            await asyncio.sleep(0)
            if not future.done():  # as Semaphore._wake_up_next does
                signal.raise_signal(signum)  # the signal comes here
                future.set_result(True)

        await asyncio.gather(waiter(), waker())
        return 0

    with pytest.raises(KeyboardInterrupt):
        run_interruptibly(command())
    assert woken[0].result() is True
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

"""Garbage cycles holding Qt objects are collected on the GUI thread, never on the client
thread or a reader that happened to allocate past the collector's threshold."""

from __future__ import annotations

import gc
import textwrap
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from krea_desktop.ui.collector import GuiThreadCollector, collect_on_gui_thread, installed
from tests.ui.test_startup import run


def allocate_cycles_on_another_thread(count: int = 50_000) -> None:
    def allocate() -> None:
        for _ in range(count):
            cycle: list[Any] = []
            cycle.append(cycle)

    worker = threading.Thread(target=allocate)
    worker.start()
    worker.join()


# For a fresh process: a running Qt timer left in a garbage cycle while another thread makes
# cycles far past every generation's threshold; where the cycle is finalized.
CYCLE_THROUGH_A_TIMER = """
import threading
from PySide6.QtCore import QTimer

def cycle_through_a_timer_while_a_thread_allocates(app):
    finalized_on = []

    class Holder:
        def __del__(self):
            finalized_on.append(threading.get_ident())

    timer = QTimer()
    timer.start(60_000)
    holder = Holder()
    holder.timer, timer.holder = timer, holder
    del holder, timer

    def allocate():
        for _ in range(50_000):
            cycle = []
            cycle.append(cycle)

    worker = threading.Thread(target=allocate)
    worker.start()
    worker.join()
    print("after the worker:", finalized_on)
    while not finalized_on:
        app.processEvents()
    print("on the GUI thread:", finalized_on == [threading.get_ident()])
"""


def run_with_a_cycle(script: str, data_dir: Path) -> list[str]:
    return run(CYCLE_THROUGH_A_TIMER + textwrap.dedent(script), data_dir)


def test_the_window_moves_the_collector_to_the_gui_thread_while_its_threads_run(tmp_path: Path) -> None:
    # A fresh process: the one the tests run in has its collector on the main thread already.
    lines = run_with_a_cycle(
        """
        import gc, threading
        from PySide6.QtWidgets import QApplication
        from krea_desktop.ui.app import close_library, create_main_window, gui_thread_collects

        app = QApplication([])
        print("before:", gc.isenabled(), gui_thread_collects())
        window = create_main_window(force_demo=True, demo_latency=0.0)
        print("built:", gc.isenabled(), gui_thread_collects())
        cycle_through_a_timer_while_a_thread_allocates(app)
        window.close()
        close_library(window)
        print("closed:", gc.isenabled(), gui_thread_collects())
        """,
        tmp_path / "data",
    )
    assert lines == [
        "before: True False",
        "built: False True",
        "after the worker: []",  # not collected there (Qt: "Timers cannot be stopped from another thread")
        "on the GUI thread: True",
        "closed: True False",  # every thread ended: the interpreter collects again
    ]


def test_collection_stays_on_the_gui_thread_until_the_last_window_s_threads_end(tmp_path: Path) -> None:
    lines = run_with_a_cycle(
        """
        import gc, os, threading
        from PySide6.QtWidgets import QApplication
        from krea_desktop.ui.app import close_library, create_main_window, gui_thread_collects

        app = QApplication([])
        data = os.environ["KREA_DESKTOP_DATA_DIR"]
        os.environ["KREA_DESKTOP_DATA_DIR"] = os.path.join(data, "first")
        first = create_main_window(force_demo=True, demo_latency=0.0)
        os.environ["KREA_DESKTOP_DATA_DIR"] = os.path.join(data, "second")
        second = create_main_window(force_demo=True, demo_latency=0.0)
        first.close()
        close_library(first)
        print("first closed:", gc.isenabled(), gui_thread_collects(), second.client_thread.isRunning())
        cycle_through_a_timer_while_a_thread_allocates(app)
        second.close()
        close_library(second)
        print("second closed:", gc.isenabled(), gui_thread_collects())
        """,
        tmp_path / "data",
    )
    assert lines == [
        "first closed: False True True",  # the second window's client thread still runs
        "after the worker: []",
        "on the GUI thread: True",
        "second closed: True False",
    ]


def test_run_app_gives_collection_back_after_the_smoke_test_and_a_library_it_cannot_open(tmp_path: Path) -> None:
    lines = run(
        """
        import gc
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
        import krea_desktop.ui.app as app_module
        from krea_desktop.library.store import LibraryError

        app = QApplication([])
        code = app_module.run_app(smoke_test=True)
        print("smoke test:", code, gc.isenabled(), app_module.gui_thread_collects())

        def unreadable(window):
            raise LibraryError("the library cannot be read")

        app_module.open_library = unreadable
        QTimer.singleShot(1000, lambda: [w.close() for w in app.topLevelWidgets() if w.isVisible()])
        code = app_module.run_app()
        print("library problem:", code, gc.isenabled(), app_module.gui_thread_collects())
        """,
        tmp_path / "data",
    )
    assert [line for line in lines if not line.startswith("smoke: ")] == [
        "smoke test: 0 True False",  # the process goes on: its garbage cycles are collected
        "library problem: 1 True False",
    ]


def test_a_qt_object_left_in_a_cycle_is_destroyed_on_the_gui_thread(qtbot: QtBot) -> None:
    collect_on_gui_thread()
    gc.collect()
    finalized_on: list[int] = []

    class Holder:
        def __del__(self) -> None:
            finalized_on.append(threading.get_ident())

    timer = QTimer()
    timer.start(60_000)
    holder = Holder()
    holder.timer = timer  # type: ignore[attr-defined]
    timer.holder = holder  # type: ignore[attr-defined]
    del holder, timer
    allocate_cycles_on_another_thread()
    assert finalized_on == []
    qtbot.waitUntil(lambda: bool(finalized_on), timeout=3000)  # the timer's next look
    assert finalized_on == [threading.get_ident()]


def test_the_collector_is_one_per_application_and_set_from_its_thread(qapp: Any) -> None:
    collector = collect_on_gui_thread(qapp)
    assert not gc.isenabled()
    assert collect_on_gui_thread() is collector is installed()
    refused: list[BaseException] = []

    def from_another_thread() -> None:
        try:
            collect_on_gui_thread(qapp)
        except RuntimeError as err:
            refused.append(err)

    worker = threading.Thread(target=from_another_thread)
    worker.start()
    worker.join()
    assert [str(err) for err in refused] == ["the collector is set from the application's thread"]


class Node:
    pass


def make_cycles(count: int) -> None:
    for _ in range(count):
        node = Node()
        node.me = node  # type: ignore[attr-defined]


def test_what_is_due_is_collected_and_nothing_before(qapp: Any) -> None:
    collector = collect_on_gui_thread(qapp)
    gc.collect()
    assert collector.collect_if_due() == 0  # nothing made since: nothing due
    make_cycles(gc.get_threshold()[0] + 100)
    assert collector.collect_if_due() >= gc.get_threshold()[0]  # each node and its dict
    assert gc.get_count()[0] < gc.get_threshold()[0]


def test_a_full_collection_waits_until_what_grew_old_is_a_quarter_of_what_was_old(qapp: Any) -> None:
    collect_on_gui_thread(qapp)
    gc.collect()
    collector = GuiThreadCollector(qapp)  # a second one, driven by hand: the app's stays
    collector.setObjectName("by hand")
    try:
        collector.long_lived = 10**9  # a huge heap held
        collector.pending = 0
        kept: list[Any] = []
        full = gc.get_stats()[2]["collections"]
        for _ in range(3 * (gc.get_threshold()[1] + 1) * (gc.get_threshold()[2] + 1)):
            kept.extend(Node() for _ in range(3))  # a little survives each time
            make_cycles(gc.get_threshold()[0] + 1)
            collector.collect_if_due()
        assert gc.get_stats()[2]["collections"] == full  # the interpreter would not have either
        assert collector.pending > 0
        collector.long_lived = 4 * collector.pending - 1  # what grew old is now over a quarter
        for _ in range((gc.get_threshold()[1] + 1) * (gc.get_threshold()[2] + 1)):
            make_cycles(gc.get_threshold()[0] + 1)
            collector.collect_if_due()
        assert gc.get_stats()[2]["collections"] == full + 1
        assert collector.long_lived >= len(kept)  # what the full one left, the nodes kept among it
    finally:
        collector.stop()
    assert not gc.isenabled()  # it was off when that one was made: stop() leaves it off


def test_the_next_look_comes_sooner_while_threads_allocate(qapp: Any) -> None:
    from krea_desktop.ui import collector as module

    collector = collect_on_gui_thread(qapp)
    timer = collector.findChild(QTimer)
    gc.collect()
    collector.collect_if_due()
    assert timer.interval() == module.INTERVAL_MS  # nothing made: a look now and then
    make_cycles(gc.get_threshold()[0] + 1)
    collector.collect_if_due()
    assert timer.interval() == module.BUSY_INTERVAL_MS  # one pass a frame holds
    collector.collect_if_due()
    assert timer.interval() == module.INTERVAL_MS and timer.isActive()


def make_list_cycles(count: int) -> None:
    for _ in range(count):
        cycle: list[Any] = []
        cycle.append(cycle)


def test_a_look_stands_for_every_young_collection_the_interpreter_would_have_made(qapp: Any) -> None:
    collector = collect_on_gui_thread(qapp)
    threshold0, threshold1, _ = gc.get_threshold()
    gc.collect()
    middle = gc.get_stats()[1]["collections"]
    # Threads allocated three thresholds' worth between two looks, again and again: the
    # interpreter would have made three young collections each time, and one of
    # generation 1 once more than threshold1 of them were made.
    young: list[int] = []
    while gc.get_stats()[1]["collections"] == middle and len(young) <= threshold1:
        make_list_cycles(3 * threshold0 + 10)
        young.append(gc.get_count()[0] // threshold0)
        collector.collect_if_due()
    assert young[0] >= 3
    assert sum(young[:-1]) <= threshold1 < sum(young)  # at the first look past it, not later
    # And as many at once: the next look collects generation 1 straight away.
    make_list_cycles((threshold1 + 2) * threshold0)
    assert gc.get_count()[0] // threshold0 > threshold1
    collector.collect_if_due()
    assert gc.get_stats()[1]["collections"] == middle + 2


def test_with_the_incremental_collector_each_look_takes_a_step_through_the_old_generation(
    qapp: Any, monkeypatch: Any
) -> None:
    from krea_desktop.ui import collector as module

    monkeypatch.setattr(module, "INCREMENTAL", True)  # Python 3.14's: gc.collect(1) is a young collection and a step
    collector = collect_on_gui_thread(qapp)
    gc.collect()
    assert collector.collect_if_due() == 0  # nothing made: nothing due
    steps = gc.get_stats()[1]["collections"]
    for _ in range(3):
        make_list_cycles(gc.get_threshold()[0] + 100)
        collector.collect_if_due()
    assert gc.get_stats()[1]["collections"] == steps + 3


def test_a_collection_made_elsewhere_starts_the_count_again(qapp: Any) -> None:
    """The young collections a look stood for were still counted after a gc.collect()
    had collected everything: generation 1 then came after 4 young collections, not 11."""
    collector = collect_on_gui_thread(qapp)
    threshold0, threshold1, _ = gc.get_threshold()
    kept: list[Any] = []

    def grow(count: int) -> None:  # objects made between two looks, as a thread would
        target = gc.get_count()[0] + count
        while gc.get_count()[0] < target:
            kept.append([])

    gc.collect()
    grow(8 * threshold0 + 5)
    collector.collect_if_due()
    assert collector.owed_young >= 7
    gc.collect()
    middle = gc.get_stats()[1]["collections"]
    young = 0
    while gc.get_stats()[1]["collections"] == middle and young <= threshold1 + 1:
        grow(threshold0 + 5)
        collector.collect_if_due()
        young += 1
    assert young == threshold1 + 1  # as the interpreter counts from a collection

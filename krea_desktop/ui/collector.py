"""Python's cyclic garbage collector, run on the GUI thread only.

The interpreter runs the collector on whichever thread allocates past its threshold. A Qt
object in a garbage cycle (a dialog's timer, a widget held by a closure it holds) found
there is destroyed there: on the client thread or a thumbnail reader, Qt says "Timers
cannot be stopped from another thread" at best and ends the process at worst. So, while
a window has other threads beside it, automatic collection is off, and a timer on the
GUI thread collects what the interpreter would have collected by then, by its own rules.

Each window that needs it holds the collector (:func:`collect_on_gui_thread`) and lets go
of it once its threads have ended (:func:`release`); automatic collection comes back when
the last one has.
"""

from __future__ import annotations

import gc
import sys
import weakref

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer

# How often the counts are looked at: a look costs a few microseconds. A collection costs
# what was made since the last one (about 0.4 ms per thousand young objects), and it is
# the GUI thread's time: while threads allocate (images arriving, rows read), the next
# look comes sooner, so that each pass stays small inside a frame. When all is quiet a
# look every 50 ms: a thread that starts making objects fast leaves at most that long's
# worth for the first pass (a thread making nothing but cycles: about 50 ms of the GUI
# thread's time once, against 240 ms at a look every 250 ms; bench_collector.py).
INTERVAL_MS = 50
BUSY_INTERVAL_MS = 20

_NAME = "guiThreadCollector"

# From Python 3.14 the collector is incremental: two generations, and each collection of
# the young one (gc.collect(1)) takes a step through the old one too; never all at once
# on its own.
INCREMENTAL = sys.version_info >= (3, 14)


class GuiThreadCollector(QObject):
    """Collects on the GUI thread; made by :func:`collect_on_gui_thread`."""

    def __init__(self, app: QCoreApplication) -> None:
        super().__init__(app)
        self.setObjectName(_NAME)
        self.automatic_before = gc.isenabled()  # what stop() puts back
        # Those it collects for (windows, the application): weakly, as a window gone is
        # one whose threads are gone with it.
        self._holders: weakref.WeakSet[object] = weakref.WeakSet()
        # The interpreter's damping of full collections: one is due only once the objects
        # that reached the oldest generation since the last are a quarter of what it held
        # then. Without it, every few thousand allocations would walk a large heap again.
        self.long_lived = 0
        self.pending = 0
        # The collections of generations 0 and 1 the interpreter would have made beyond
        # those made here (one a look): gc's own counts of them (get_count()[1] and [2])
        # count only those made.
        self.owed_young = 0
        self.owed_middle = 0
        self._runs = _runs()  # the collections of generations 1 and 2 as the last look left them
        self._timer = QTimer(self)
        self._timer.setInterval(INTERVAL_MS)
        self._timer.timeout.connect(self.collect_if_due)
        self._timer.start()

    def hold(self, holder: object) -> None:
        """Collect for ``holder`` (an object that can be referred to weakly) until it is
        released."""
        self._holders.add(holder)

    def collect_if_due(self) -> int:
        """Collect the oldest generation the interpreter would have collected by now (its
        thresholds, counts and damping); the number of unreachable objects found.

        The interpreter collects the young generation each time its count passes the
        first threshold; a look here comes later, with that count a number of thresholds
        past, and makes one collection for them all: the collections it stands for are
        counted, so that the older generations are collected as often, for what was
        allocated, as the interpreter would."""
        thresholds = gc.get_threshold()
        counts = gc.get_count()
        busy = counts[0] > thresholds[0]
        if busy != (self._timer.interval() == BUSY_INTERVAL_MS):
            self._timer.setInterval(BUSY_INTERVAL_MS if busy else INTERVAL_MS)
        if not busy:
            return 0
        if INCREMENTAL:
            return gc.collect(1)
        runs = _runs()
        if runs != self._runs:  # collected by a gc.collect() call meanwhile: counted from there, as there
            self.owed_young = 0
            if runs[1] != self._runs[1]:
                self.owed_middle = self.pending = 0
                self.long_lived = len(gc.get_objects(generation=2))
        found = self._collect_due(thresholds, counts)
        self._runs = _runs()
        return found

    def _collect_due(self, thresholds: tuple[int, int, int], counts: tuple[int, int, int]) -> int:
        young = counts[0] // max(1, thresholds[0])  # young collections due, at least one
        since_middle = counts[1] + self.owed_young + young  # since the last of generation 1
        if since_middle <= thresholds[1]:
            self.owed_young += young - 1  # gc counts the one made here
            return gc.collect(0)
        middle = max(1, since_middle // (thresholds[1] + 1))  # collections of generation 1 due
        since_full = counts[2] + self.owed_middle + middle
        if since_full > thresholds[2] and self.pending > self.long_lived // 4:
            found = gc.collect(2)
            self.long_lived = len(gc.get_objects(generation=2))
            self.pending = 0
            self.owed_young = self.owed_middle = 0
            return found
        survivors = len(gc.get_objects(generation=0)) + len(gc.get_objects(generation=1))
        found = gc.collect(1)
        self.pending += max(0, survivors - found)  # the survivors moved on to the oldest generation
        self.owed_young = 0
        self.owed_middle += middle - 1  # gc counts the one made here
        return found

    def release(self, holder: object) -> bool:
        """``holder`` no longer needs it; once nothing does, :meth:`stop`. Whether it stopped."""
        self._holders.discard(holder)
        if len(self._holders):
            return False
        self.stop()
        return True

    def stop(self) -> None:
        """Stop, and put automatic collection back as it was before."""
        self._timer.stop()
        self.setObjectName("")
        if self.automatic_before:
            gc.enable()
        self.deleteLater()


def _runs() -> tuple[int, int]:
    stats = gc.get_stats()
    return stats[1]["collections"], stats[2]["collections"]


def collect_on_gui_thread(app: QCoreApplication | None = None, holder: object | None = None) -> GuiThreadCollector:
    """Turn automatic collection off and collect from ``app``'s thread (the running
    application's by default) for ``holder`` (a window; the application by default) until
    it is released (:func:`release`); the collector, the same one on every call."""
    app = app or QCoreApplication.instance()
    if app is None:
        raise RuntimeError("the application is made first: the collector runs on its thread")
    if QThread.currentThread() is not app.thread():
        raise RuntimeError("the collector is set from the application's thread")
    collector = installed()
    if collector is None:
        collector = GuiThreadCollector(app)
    collector.hold(app if holder is None else holder)
    gc.disable()
    return collector


def installed() -> GuiThreadCollector | None:
    """The running application's collector, if it has one."""
    app = QCoreApplication.instance()
    return app.findChild(GuiThreadCollector, _NAME) if app is not None else None


def release(holder: object | None = None) -> None:
    """Once no thread of ``holder``'s (a window; the application by default) runs Python
    beside the GUI thread: it no longer needs the collector. When nothing else does,
    collection is as it was before :func:`collect_on_gui_thread` (automatic, unless it was
    off already)."""
    collector = installed()
    if collector is not None:
        collector.release(QCoreApplication.instance() if holder is None else holder)

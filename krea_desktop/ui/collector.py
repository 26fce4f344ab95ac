"""Python's cyclic garbage collector, run on the GUI thread only.

The interpreter runs the collector on whichever thread allocates past its threshold. A Qt
object in a garbage cycle (a dialog's timer, a widget held by a closure it holds) found
there is destroyed there: on the client thread or a thumbnail reader, Qt says "Timers
cannot be stopped from another thread" at best and ends the process at worst. So, while
the window has other threads beside it, automatic collection is off, and a timer on the
GUI thread collects what the interpreter would have collected by then, by its own rules.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer

# How often the counts are looked at: a look costs a microsecond. A collection costs what
# was made since the last one (about 0.4 ms per thousand young objects), and it is the GUI
# thread's time: while threads allocate (images arriving, say), the next look comes
# sooner, so that each pass stays small inside a frame instead of one pass of 250 ms of
# allocations.
INTERVAL_MS = 250
BUSY_INTERVAL_MS = 20

_NAME = "guiThreadCollector"


class GuiThreadCollector(QObject):
    """Collects on the GUI thread; made by :func:`collect_on_gui_thread`."""

    def __init__(self, app: QCoreApplication) -> None:
        super().__init__(app)
        self.setObjectName(_NAME)
        self.automatic_before = gc.isenabled()  # what release() puts back
        # The interpreter's damping of full collections: one is due only once the objects
        # that reached the oldest generation since the last are a quarter of what it held
        # then. Without it, every few thousand allocations would walk a large heap again.
        self.long_lived = 0
        self.pending = 0
        self._timer = QTimer(self)
        self._timer.setInterval(INTERVAL_MS)
        self._timer.timeout.connect(self.collect_if_due)
        self._timer.start()

    def collect_if_due(self) -> int:
        """Collect the oldest generation the interpreter would have collected by now (its
        thresholds, counts and damping); the number of unreachable objects found."""
        thresholds = gc.get_threshold()
        counts = gc.get_count()
        busy = counts[0] > thresholds[0]
        if busy != (self._timer.interval() == BUSY_INTERVAL_MS):
            self._timer.setInterval(BUSY_INTERVAL_MS if busy else INTERVAL_MS)
        if not busy:
            return 0
        if counts[1] <= thresholds[1]:
            return gc.collect(0)
        # A threshold of 0 for the oldest generation (Python 3.14's incremental collector)
        # means the interpreter never collects it all at once on its own.
        if thresholds[2] > 0 and counts[2] > thresholds[2] and self.pending > self.long_lived // 4:
            found = gc.collect(2)
            self.long_lived = len(gc.get_objects(generation=2))
            self.pending = 0
            return found
        young = len(gc.get_objects(generation=0)) + len(gc.get_objects(generation=1))
        found = gc.collect(1)
        self.pending += max(0, young - found)  # the survivors moved on to the oldest generation
        return found

    def release(self) -> None:
        """Stop, and put automatic collection back as it was before."""
        self._timer.stop()
        self.setObjectName("")
        if self.automatic_before:
            gc.enable()
        self.deleteLater()


def collect_on_gui_thread(app: QCoreApplication | None = None) -> GuiThreadCollector:
    """Turn automatic collection off and collect from ``app``'s thread (the running
    application's by default) until :func:`release`; the collector, the same one on
    every call."""
    app = app or QCoreApplication.instance()
    if app is None:
        raise RuntimeError("the application is made first: the collector runs on its thread")
    if QThread.currentThread() is not app.thread():
        raise RuntimeError("the collector is set from the application's thread")
    collector = installed()
    if collector is None:
        collector = GuiThreadCollector(app)
    gc.disable()
    return collector


def installed() -> GuiThreadCollector | None:
    """The running application's collector, if it has one."""
    app = QCoreApplication.instance()
    return app.findChild(GuiThreadCollector, _NAME) if app is not None else None


def release() -> None:
    """Once no thread but the GUI thread runs Python: collection as it was before
    :func:`collect_on_gui_thread` (automatic, unless it was off already)."""
    collector = installed()
    if collector is not None:
        collector.release()

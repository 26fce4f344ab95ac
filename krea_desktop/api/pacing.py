"""Handing the GIL over on purpose during long loops on background threads.

A loop on the client thread that runs Python between short C calls (reading a 76 MB
answer chunk by chunk, scanning it for image strings) should let the GUI thread in at
least once per switch interval. Measured, it does not always: in ``bench_gui_stall.py``,
``parse_body`` (22 ms of 1 MiB steps) kept the GUI thread's 1 ms timer from firing for
its whole length in about a third of runs, with the GUI thread asleep and no other
thread on the CPU. A sleep releases the GIL outright, so a thread already waiting for
it, the GUI's, takes it. With a 0.2 ms sleep every 2 ms of work, no such gap appeared
again (34 runs), at a cost of a tenth of the loop's speed.

Work is the calling thread's CPU time, not wall time: a loop that mostly waits for the
network (with the GIL released) never pauses.
"""

from __future__ import annotations

import threading
import time

PERIOD = 0.002  # at most this much of a thread's CPU time between hand-overs, in seconds
PAUSE = 0.0002  # how long each hand-over sleeps

# Module references, so that tests can drive them without touching the time module that
# every other thread uses.
_clock = time.thread_time
_sleep = time.sleep
_last = threading.local()


def pace() -> None:
    """Call between the steps of a long loop: after every :data:`PERIOD` of this thread's
    CPU time, sleep for :data:`PAUSE` so that a thread waiting for the GIL gets it. Free
    on the main thread, which is the one the pause is for."""
    if threading.current_thread() is threading.main_thread():
        return
    now = _clock()
    last = getattr(_last, "t", None)
    if last is None:
        _last.t = now
    elif now - last >= PERIOD:
        _sleep(PAUSE)
        _last.t = _clock()

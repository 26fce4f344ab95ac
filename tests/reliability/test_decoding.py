"""Images decoded on workers while the GUI thread makes icons: the window never freezes
for good. Qt's image readers share a lock; a reader reading through a device made in
Python took Python's lock inside it, and the GUI thread, holding Python's lock while it
made an icon from a file, waited for Qt's: a window frozen at start (the thumbnails
decoding as the toolbar is built), one start in a few dozen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_decoding_beside_icons_being_made_never_deadlocks(tmp_path: Path) -> None:
    try:
        done = subprocess.run(
            [sys.executable, str(Path(__file__).with_name("decode_child.py")), str(tmp_path), "3"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,  # three seconds of work; a deadlock never ends
        )
    except subprocess.TimeoutExpired:
        raise AssertionError("decoding beside the GUI thread's icons deadlocked") from None
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("ok: ")


def test_a_workers_first_image_of_a_plugin_format_loads_no_plugin(tmp_path: Path) -> None:
    """Why the test above deadlocked, 1 run in 30 on a loaded machine: a worker's first
    JPEG loaded Qt's JPEG plugin, whose object Qt moves to the GUI thread with an event the
    binding offers to Python (taking Python's lock) while the plugin loader's lock is held;
    the GUI thread, holding Python's lock, was making an icon, which asks the same loader.
    make_worker_types() loads those plugins on the GUI thread first: a worker then sends
    no such event, whatever the timing."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("plugins_child.py")), str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "moved by:", done.stdout

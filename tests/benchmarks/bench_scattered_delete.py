"""Rows taken from all over the gallery at once: the window's GUI thread, two ways.

    .venv/bin/python tests/benchmarks/bench_scattered_delete.py [--images 10000] [--every 5] [--runs 3]

The window (``create_main_window``, offscreen) is opened on a library of ``--images``
images (made once by bench_gallery.py's builder, kept under /tmp), every ``--every``-th row
is selected (2,000 scattered rows of 10,000 by default: as many runs of one row), and the
model takes those rows away, as it does once a delete of them has moved their files
aside. The time is the GUI thread's, from the call to its return, with the selection, the
gallery's actions and the view answering every step as they do in the app.

- **in two steps** (the code): the rows kept in the stretch the removed ones span go in
  again above it, then the stretch goes (``GalleryModel._remove_scattered``);
- **run by run** (the baseline, in the same process): the code's own path for a few runs,
  forced for all of them (``MANY_RUNS`` raised), which is how every removal went before.

Between runs the model reads its rows again from the index (nothing is deleted from the
library). Prints each time and the ratio of the medians. No assertions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from bench_gallery import build_library

    folder = build_library(args.images)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["KREA_DESKTOP_DATA_DIR"] = str(folder)
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    os.environ.pop("RUNWARE_API_KEY", None)

    from PySide6.QtCore import QItemSelection, QItemSelectionModel
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv)
    from krea_desktop.ui import create_main_window
    from krea_desktop.ui.gallery import model as model_module

    window = create_main_window()
    window.resize(1360, 860)
    window.show()
    app.processEvents()
    model, view = window.model, window.gallery
    rows = list(range(0, model.rowCount(), args.every))
    print(
        f"{model.rowCount():,} rows; {len(rows):,} taken away, every {args.every}th "
        f"({len(rows):,} runs of one row); load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )

    def once(many_runs: int) -> float:
        model.refresh()
        app.processEvents()
        ids = {model.id_at(r) for r in rows}
        selection = QItemSelection()
        for r in rows:
            selection.select(model.index(r), model.index(r))
        view.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        app.processEvents()
        model_module.MANY_RUNS = many_runs
        started = time.perf_counter()
        model.remove_ids({i for i in ids if i is not None})
        took = time.perf_counter() - started
        app.processEvents()
        assert model.rowCount() == args.images - len(rows)
        return took

    ours, before = [], []
    default = model_module.MANY_RUNS
    try:
        for run in range(args.runs):
            ours.append(once(default))
            print(f"  run {run + 1}: in two steps {ours[-1] * 1000:8.1f} ms", flush=True)
        before.append(once(10**9))  # run by run: one is enough to see it
        print(f"  run by run (before)  {before[-1] * 1000:8.1f} ms", flush=True)
    finally:
        model_module.MANY_RUNS = default
    ratio = statistics.median(ours) / statistics.median(before)
    print(
        f"GUI thread, median: in two steps {statistics.median(ours) * 1000:.1f} ms, "
        f"run by run {statistics.median(before) * 1000:.1f} ms ({ratio:.4f}x)"
    )
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The gallery's repaint while another thread runs Python (as the client thread does while
images arrive).

    .venv/bin/python tests/benchmarks/bench_paint_contention.py [--repeats 40]

The real model, view and delegate (``GalleryModel``, ``GalleryView``), 1360x860 offscreen,
60 images with 200 px thumbnails and a cost badge each. Every figure is measured twice in
the same process: "quiet", and "busy", with a second thread running a pure-Python loop
paced as the client's loops are (a 0.2 ms sleep after every 2 ms of its CPU time) and the
app's 1 ms switch interval. The ratio busy/quiet is what the other thread costs the GUI
thread.

- repaint: ``viewport().repaint()`` of the whole gallery;
- insert: ``add_entry`` of one image at the top, then the repaint it causes;
- mechanism: 1,000 QRects made and dropped (each destroyed with the GIL released), and
  1,000 calls from C++ into a Python override (``index()`` on a model whose ``rowCount``
  is Python), against 1,000 calls of a plain Python function.

No assertions; the figures are recorded in tests/benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PIL import Image  # noqa: E402
from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QRect  # noqa: E402
from PySide6.QtGui import QColor, QImage  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from krea_desktop.api.record import GenerationRecord  # noqa: E402
from krea_desktop.api.results import GeneratedImage  # noqa: E402
from krea_desktop.library.store import Library  # noqa: E402
from krea_desktop.ui.gallery.model import GalleryModel  # noqa: E402
from krea_desktop.ui.gallery.view import GalleryView  # noqa: E402


class Busy:
    """A thread running Python, paced like the client's loops (krea_desktop.api.pacing)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="busy", daemon=True)

    def _run(self) -> None:
        x = 0
        while not self._stop.is_set():
            started = time.thread_time()
            while time.thread_time() - started < 0.002:
                for i in range(200):
                    x += i
            time.sleep(0.0002)

    def __enter__(self) -> Busy:
        self._thread.start()
        time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class PythonRows(QAbstractListModel):
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 1000

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> None:
        return None


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv)
    sys.setswitchinterval(0.001)  # as the app's client thread sets it

    folder = Path(tempfile.mkdtemp(prefix="krea-bench-paint-"))
    library = Library(folder)
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (90, 120, 200)).save(buf, "PNG")
    images = [
        GeneratedImage(
            task_uuid=f"task-{i}",
            image_uuid=f"image-{i:05d}",
            data=buf.getvalue(),
            format="PNG",
            width=1024,
            height=1024,
            seed=i,
            cost=0.0035,
            record=GenerationRecord(prompt=f"harbour {i}"),
        )
        for i in range(60 + 2 * (args.repeats + 1))
    ]
    model = GalleryModel(library)  # empty: every image is added as if it had just arrived
    entries = [library.save(im) for im in images]
    thumb = QImage(200, 200, QImage.Format.Format_RGBA8888)
    thumb.fill(QColor(90, 120, 200))
    view = GalleryView()
    view.setModel(model)
    view.resize(1360, 860)
    view.show()
    fresh = iter(entries[60:])
    for entry in entries[:60]:
        model.add_entry(entry, thumb)
    app.processEvents()
    cells = len(view.visible_rows())

    def insert() -> None:
        model.add_entry(next(fresh), thumb)
        view.viewport().repaint()

    rects = QRect(0, 0, 10, 10)
    rows = PythonRows()

    def plain(r: int) -> int:
        return r

    cases: list[tuple[str, Callable[[], object]]] = [
        (f"repaint ({cells} cells)", view.viewport().repaint),
        ("insert one image + repaint", insert),
        ("1,000 QRects made and dropped", lambda: [rects.adjusted(1, 1, 1, 1) for _ in range(1000)]),
        ("1,000 C++ -> Python rowCount calls", lambda: [rows.index(r % 1000, 0) for r in range(1000)]),
        ("1,000 plain Python calls", lambda: [plain(r) for r in range(1000)]),
    ]
    results: dict[str, dict[str, list[float]]] = {}
    for phase in ("quiet", "busy"):
        with Busy() if phase == "busy" else contextlib.nullcontext():
            for name, fn in cases:
                fn()  # warm
                results.setdefault(name, {})[phase] = timed(fn, args.repeats)

    print(f"GUI-thread work, quiet vs with a busy Python thread ({args.repeats} repeats; median / max ms):")
    for name, r in results.items():
        q, b = statistics.median(r["quiet"]), statistics.median(r["busy"])
        print(
            f"  {name:38s} quiet {q:7.3f} / {max(r['quiet']):7.3f}   busy {b:7.3f} / {max(r['busy']):7.3f}"
            f"   busy/quiet {b / q:5.1f}x"
        )
    view.close()
    library.close()


if __name__ == "__main__":
    main()

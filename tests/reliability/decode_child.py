"""Run by test_decoding.py in a process of its own: workers decode image files (as the
gallery's thumbnails and the viewer do) while the GUI thread makes icons from files, as
the window's toolbars and menus do (QIcon.addFile, which asks Qt's image readers).
Prints "ok" and exits; a deadlock between the two never returns."""

import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PIL import Image
from PySide6.QtCore import QSize
from PySide6.QtWidgets import QApplication, QStyle

from krea_desktop.ui.background import make_worker_types
from krea_desktop.ui.pixels import read_image_file


def main() -> None:
    app = QApplication([])
    make_worker_types()
    folder, seconds = Path(sys.argv[1]), float(sys.argv[2])
    files = []
    for i, fmt in enumerate(["PNG", "JPEG", "WEBP", "GIF", "BMP"]):
        path = folder / f"image{i}.{fmt.lower()}"
        Image.new("RGB", (256, 256), (i * 50, 90, 30)).save(path, fmt)
        files.append(path)
    stop = time.monotonic() + seconds
    decoded = [0]

    def decode(path: Path) -> None:
        while time.monotonic() < stop:
            image = read_image_file(path, lambda size: QSize(64, 64))
            assert not image.isNull() and image.size() == QSize(64, 64), path
            decoded[0] += 1

    workers = [threading.Thread(target=decode, args=(f,), daemon=True) for f in files]
    for worker in workers:
        worker.start()
    style = app.style()
    icons = 0
    kinds = (QStyle.StandardPixmap.SP_TrashIcon, QStyle.StandardPixmap.SP_BrowserReload)
    while time.monotonic() < stop:
        for kind in kinds:
            style.standardIcon(kind).pixmap(16, 16)
            icons += 1
    for worker in workers:
        worker.join()
    print(f"ok: {decoded[0]} images decoded, {icons} icons made", flush=True)


if __name__ == "__main__":
    main()

"""Run by test_decoding.py in a process of its own (Qt loads each image plugin once per
process): after ``make_worker_types``, a worker's first JPEG, GIF and WEBP must not load
their plugins, which moves each plugin's object to the GUI thread with an event the
binding offers to Python (a ThreadChange the application's ``notify`` sees). Prints the
names of the threads that sent one."""

import os
import sys
import threading
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PIL import Image
from PySide6.QtCore import QEvent, QObject, QSize
from PySide6.QtWidgets import QApplication

from krea_desktop.ui.background import make_worker_types
from krea_desktop.ui.pixels import read_image_file

moved_by: list[str] = []


class Watching(QApplication):
    def notify(self, receiver: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ThreadChange:
            moved_by.append(threading.current_thread().name)
        return super().notify(receiver, event)


def main() -> None:
    app = Watching([])
    make_worker_types()
    files = []
    for i, fmt in enumerate(["JPEG", "GIF", "WEBP"]):
        path = Path(sys.argv[1]) / f"image{i}.{fmt.lower()}"
        Image.new("RGB", (32, 32), (i * 60, 90, 30)).save(path, fmt)
        files.append(path)

    def read() -> None:
        for path in files:
            assert not read_image_file(path, lambda size: QSize(16, 16)).isNull(), path

    worker = threading.Thread(target=read, name="decoding-worker")
    worker.start()
    worker.join()
    print("moved by:", ",".join(moved_by), flush=True)
    del app


if __name__ == "__main__":
    main()

"""The app as a crash test runs it: the real window, offscreen, generating a 20-image batch
from the simulator while references are added to the tray, reporting each image it was
told is saved. The parent kills it with SIGKILL at a random moment.

    python tests/reliability/crash_child.py REF_DIR

Environment: KREA_DESKTOP_DATA_DIR, RUNWARE_API_KEY, RUNWARE_API_URL (the simulator).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from krea_desktop.ui.app import configure_application, create_main_window


def main() -> int:
    refs = sorted(Path(sys.argv[1]).glob("*.png"))
    app = QApplication(sys.argv)
    configure_application(app)
    window = create_main_window()
    window.show()

    def saved(_job: int, entry: object, _thumb: object) -> None:
        print(f"saved {entry.image_uuid}", flush=True)  # type: ignore[attr-defined]

    window.client_thread.imageReady.connect(saved)
    window.client_thread.jobFinished.connect(lambda *_: print("finished", flush=True))
    window.prompt_panel.setPrompt("a crash test: twenty lighthouses")
    window.prompt_panel.countSpin.setValue(20)
    window.prompt_panel.deliveryCombo.setCurrentIndex(window.prompt_panel.deliveryCombo.findData("async"))
    window.tray.clear()
    pending = list(refs)

    def add_next() -> None:
        # keep the tray's saved state changing while images arrive
        if window.tray.count() >= 10:
            window.tray.remove(0)
        if pending:
            window.tray.add_reference(pending.pop(0), 0.7)
        else:
            items = window.tray.items()
            if items:
                items[-1].setStrength(-items[-1].strength())

    ticker = QTimer()
    ticker.timeout.connect(add_next)
    ticker.start(40)
    job = window.generate()
    print(f"ready {job}", flush=True)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())

"""Take the README/AppStream screenshots of the real window, in demo mode.

    xvfb-run -a -s "-screen 0 2000x1200x24" .venv/bin/python packaging/screenshot.py \
        resources/screenshots/main-window.png --size 1366x768
    (and --size 800x600, --size 1920x1080; with QT_SCALE_FACTOR=2 and a 3000x1800 screen
    for main-window-1366x768@2x.png)

Fills a fresh library with demo images, opens the window with a prompt and two weighted
references, waits for the thumbnails, and saves what the window shows.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from PIL import Image


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Screenshot the window in demo mode.")
    parser.add_argument("out", nargs="?", default="resources/screenshots/main-window.png")
    parser.add_argument("--size", default="1366x768", help="the window's size in logical pixels, e.g. 1366x768")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    width, height = (int(v) for v in args.size.lower().split("x"))
    folder = Path(tempfile.mkdtemp(prefix="krea-shot-"))
    os.environ["KREA_DESKTOP_DATA_DIR"] = str(folder)
    os.environ.pop("RUNWARE_API_KEY", None)
    os.environ.setdefault("QT_API", "pyside6")

    from krea_desktop.api.request import GenerationRequest, ReferenceImage
    from krea_desktop.backend import open_backend

    refs_dir = folder / "ref-sources"
    refs_dir.mkdir()
    warm = refs_dir / "warm.png"
    cool = refs_dir / "cool.png"
    Image.radial_gradient("L").resize((256, 256)).convert("RGB").point(lambda v: v).save(warm)
    Image.new("RGB", (256, 256), (40, 90, 200)).save(cool)

    async def fill() -> None:
        backend = open_backend(demo=True)
        jobs = [
            ("a lighthouse in fog, gouache", "16:9", 3, ()),
            ("portrait of a fox in a tweed coat, oil painting", "4:5", 2, (ReferenceImage(warm, 1.2),)),
            ("isometric tiny greenhouse, soft light", "1:1", 3, (ReferenceImage(cool, -0.8),)),
            ("cinematic desert highway at dusk", "2.35:1", 2, ()),
        ]
        for prompt, ratio, n, refs in jobs:
            async for image in backend.client.generate(
                GenerationRequest(prompt, ratio=ratio, number_results=n, references=refs)
            ):
                backend.library.save(image)
        await backend.aclose()
        backend.library.close()

    asyncio.run(fill())

    import qasync
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from krea_desktop.ui.app import configure_application, create_main_window
    from krea_desktop.ui.theme import apply_dark_palette

    app = QApplication(sys.argv)
    configure_application(app)
    apply_dark_palette(app)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)

    async def shoot() -> None:
        window = create_main_window(force_demo=True)
        window.resize(width, height)
        window.show()
        window.ratio_bar.setRatio("16:9")
        window.prompt_panel.setPrompt("a lighthouse in fog at dawn, gouache, muted palette")
        window.tray.add_reference(warm, 1.2)
        window.tray.add_reference(cool, -0.8)
        for _ in range(50):
            await asyncio.sleep(0.1)
            if window.tray.count() == 2 and not window.tray.isBusy():
                break
        await asyncio.sleep(1.5)  # thumbnails
        out.parent.mkdir(parents=True, exist_ok=True)
        window.grab().save(str(out))
        print(out)
        window.close()
        QTimer.singleShot(0, app.quit)

    with loop:
        loop.run_until_complete(shoot())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

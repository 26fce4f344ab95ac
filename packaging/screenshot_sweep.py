"""Take the sweep screenshots of the real window, in demo mode: the plan before sending,
the contact sheet in progress (one cell failed) and finished.

    xvfb-run -a -s "-screen 0 2000x1200x24" .venv/bin/python packaging/screenshot_sweep.py resources/screenshots

Writes sweep-dialog.png, sweep-in-progress.png and sweep-finished.png into the folder.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from PIL import Image


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "resources/screenshots").resolve()
    folder = Path(tempfile.mkdtemp(prefix="krea-shot-"))
    os.environ["KREA_DESKTOP_DATA_DIR"] = str(folder)
    os.environ.pop("RUNWARE_API_KEY", None)
    refs = folder / "ref-sources"
    refs.mkdir()
    warm, cool = refs / "warm.png", refs / "cool.png"
    Image.radial_gradient("L").resize((256, 256)).convert("RGB").save(warm)
    Image.new("RGB", (256, 256), (40, 90, 200)).save(cool)

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

    async def wait_for(condition: object, seconds: float = 60) -> None:
        for _ in range(int(seconds * 10)):
            if condition():  # type: ignore[operator]
                return
            await asyncio.sleep(0.1)

    async def shoot() -> None:
        window = create_main_window(force_demo=True, demo_latency=0.6)
        window.resize(1366, 768)
        window.show()
        window.ratio_bar.setRatio("16:9")
        window.prompt_panel.setPrompt("a lighthouse in fog at dawn, gouache, muted palette")
        window.tray.add_reference(warm, 1.2)
        window.tray.add_reference(cool, -0.8)
        await wait_for(lambda: window.tray.count() == 2 and not window.tray.isBusy())
        window.generate()  # one image first: the service reports what an image costs
        await wait_for(lambda: window.library.count() == 1 and not window.jobs.running())
        window.prompt_panel.setSeed(20261202)
        dialog = window.open_sweep("ref1")
        assert dialog is not None
        dialog.axisCombos[1].setCurrentIndex(dialog.axisCombos[1].findData("creativity"))
        dialog.valueEdits[1].setText("raw, medium, high")
        await asyncio.sleep(0.5)
        out.mkdir(parents=True, exist_ok=True)
        dialog.grab().save(str(out / "sweep-dialog.png"))
        transport = getattr(window.client_thread.wait_ready()._http, "_transport", None)
        service = getattr(transport, "service", None)  # the demo simulator, to fail one cell
        if service is not None:
            service.inject("task-error:code=timeoutProvider")
        dialog.sendButton.click()
        sheet = window.sweeps.sheets[-1]
        sheet.move(window.x() + 120, window.y() + 60)
        await wait_for(lambda: sheet.counts()[0] >= 6)
        await asyncio.sleep(0.4)
        sheet.grab().save(str(out / "sweep-in-progress.png"))
        await wait_for(lambda: sheet.sheet_entry is not None)
        await asyncio.sleep(0.4)
        sheet.grab().save(str(out / "sweep-finished.png"))
        print(out)
        window.close()
        QTimer.singleShot(0, app.quit)

    with loop:
        loop.run_until_complete(shoot())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

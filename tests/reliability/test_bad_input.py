"""What people actually drop, paste and type: each input is either accepted correctly or
refused with a one-sentence message, and nothing else changes."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from krea_desktop.api import spec
from krea_desktop.library import inputs
from krea_desktop.ui.compose.prompt_panel import PromptPanel
from krea_desktop.ui.references.tray import ReferenceTray
from tests.helpers.drag import drag_event
from tests.helpers.images import SVG, Route, distinct_png, huge_header_png, serving


def encoded(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def png16() -> bytes:
    return encoded(Image.linear_gradient("L").resize((64, 64)).convert("I;16"), "PNG")


def palette_png() -> bytes:
    return encoded(Image.new("RGB", (48, 32), (10, 120, 200)).convert("P", palette=Image.Palette.ADAPTIVE), "PNG")


def cmyk_jpeg() -> bytes:
    return encoded(Image.new("CMYK", (48, 32), (0, 200, 200, 0)), "JPEG")


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (40, 30), c) for c in ((250, 0, 0), (0, 250, 0), (0, 0, 250))]
    return encoded(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def truncated_jpeg() -> bytes:
    data = encoded(Image.effect_noise((128, 128), 80).convert("RGB"), "JPEG", quality=95)
    return data[: len(data) // 2]


class Harness:
    def __init__(self, qtbot: QtBot, folder: Path) -> None:
        self.qtbot = qtbot
        self.tray = ReferenceTray(folder / "references", autosave=False)
        qtbot.addWidget(self.tray)
        self.tray.resize(1400, 260)
        self.tray.show()
        self.messages: list[str] = []
        self.tray.message.connect(self.messages.append)
        self.tray.add_reference(distinct_png(1), 1.25)  # what the user already had
        self.settle()
        self.before = self.tray.references()

    def settle(self) -> None:
        self.qtbot.waitUntil(lambda: not self.tray.isBusy(), timeout=15_000)

    def drop(self, mime: QMimeData) -> None:
        for cls in (QDragEnterEvent, QDropEvent):
            event = drag_event(cls, 10, 20, mime)
            QApplication.sendEvent(self.tray, event)
        self.settle()

    def drop_paths(self, *paths: Path) -> None:
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
        self.drop(mime)

    def drop_url(self, url: str) -> None:
        mime = QMimeData()
        mime.setUrls([QUrl(url)])
        mime.setText(url)
        self.drop(mime)


def one_sentence(text: str) -> bool:
    body = text.strip()
    return bool(body) and "\n" not in body and body.endswith((".", "!")) and "Traceback" not in body


FileMaker = Callable[[Path], Path]


def write(name: str, data: bytes) -> FileMaker:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return make


def broken_symlink(folder: Path) -> Path:
    link = folder / "link.png"
    link.symlink_to(folder / "gone-forever.png")
    return link


def unreadable(folder: Path) -> Path:
    path = folder / "secret.png"
    path.write_bytes(distinct_png(7))
    path.chmod(0)
    return path


# name -> (how to make it, accepted?)
FILES: dict[str, tuple[FileMaker, bool]] = {
    "0-byte file": (write("empty.png", b""), False),
    "text renamed .png": (write("notes.png", b"Shopping list: eggs, flour, paint.\n"), False),
    "truncated JPEG": (write("cut.jpg", truncated_jpeg()), False),
    "16-bit PNG": (write("deep.png", png16()), True),
    "palette PNG": (write("palette.png", palette_png()), True),
    "CMYK JPEG": (write("print.jpg", cmyk_jpeg()), True),
    "animated GIF": (write("anim.gif", animated("GIF")), True),
    "animated WEBP": (write("anim.webp", animated("WEBP")), True),
    "30000x30000 PNG": (write("bomb.png", huge_header_png(30000, 30000)), False),
    "SVG": (write("logo.svg", SVG), False),
    "folder": (lambda folder: folder, False),
    "broken symlink": (broken_symlink, False),
    "no read permission": (unreadable, False),
}


@pytest.mark.parametrize("case", list(FILES))
def test_dropped_file(qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    h = Harness(qtbot, tmp_path)
    files = tmp_path / "files"
    files.mkdir()
    make, accepted = FILES[case]
    path = make(files)
    if case == "no read permission" and os.geteuid() == 0:
        from krea_desktop.library import inputs

        real = inputs.read_regular_file

        def denied(target: Path, max_bytes: int) -> bytes:  # permissions do not bind root: refuse as the OS would
            if target == path:
                raise PermissionError(13, "Permission denied", str(target))
            return real(target, max_bytes)

        monkeypatch.setattr(inputs, "read_regular_file", denied)
    h.drop_paths(path)
    if accepted:
        refs = h.tray.references()
        assert refs[:1] == h.before and len(refs) == 2, h.messages
        with Image.open(refs[1].image) as im:  # the kept copy is a plain, complete image
            im.load()
            assert im.mode in ("RGB", "RGBA") and im.format in ("PNG", "JPEG", "WEBP")
            assert getattr(im, "n_frames", 1) == 1
    else:
        assert h.tray.references() == h.before
        assert h.messages and one_sentence(h.messages[-1]), h.messages


URLS = {
    "URL answering HTML": (Route(b"<html><body>Not an image</body></html>", "text/html"), "not an image"),
    "URL answering 404": (Route(b"missing", "text/plain", 404), "404"),
    "URL that never answers": (Route(distinct_png(3), "image/png", delay=3.0), "did not answer"),
}


@pytest.mark.parametrize("case", list(URLS))
def test_dropped_url(qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    monkeypatch.setattr(inputs, "DOWNLOAD_TIMEOUT_S", 0.5)
    route, _words = URLS[case]
    h = Harness(qtbot, tmp_path)
    with serving({"/x.png": route}) as web:
        h.drop_url(web.url + "/x.png")
    assert h.tray.references() == h.before
    assert h.messages and one_sentence(h.messages[-1]), h.messages


def test_eleven_images_at_once(qtbot: QtBot, tmp_path: Path) -> None:
    h = Harness(qtbot, tmp_path)
    h.tray.clear()
    h.settle()
    paths = []
    for i in range(11):
        p = tmp_path / f"ref{i}.png"
        p.write_bytes(distinct_png(20 + i))
        paths.append(p)
    h.drop_paths(*paths)
    assert h.tray.references() == ()
    assert one_sentence(h.messages[-1]) and "10" in h.messages[-1]


@pytest.mark.parametrize(("length", "ok"), [(1, False), (2, True), (spec.PROMPT_MAX, True), (5000, False)])
def test_prompt_length(qtbot: QtBot, length: int, ok: bool) -> None:
    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.promptEdit.setPlainText("a" * length)
    assert panel.generateButton.isEnabled() is ok
    assert panel.promptEdit.toPlainText() == "a" * length  # the text is never cut behind the user's back
    if not ok:
        assert one_sentence(panel.problem() or "")
        assert panel.hintLabel.text() == panel.problem()


@pytest.mark.parametrize("typed", ["-1", str(2**64), "12ab", "3.5"])
def test_seed_out_of_range_is_refused_with_a_reason(qtbot: QtBot, typed: str) -> None:
    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.promptEdit.setPlainText("two words")
    panel.seedEdit.setText("42")
    panel.seedEdit.setFocus()
    panel.seedEdit.selectAll()
    qtbot.keyClicks(panel.seedEdit, typed)
    seed = panel.seed()
    assert seed is None or 0 <= seed <= spec.SEED_MAX
    assert panel.seedEdit.text() != typed
    assert panel.hintLabel.text() == PromptPanel.SEED_RANGE_MESSAGE
    assert one_sentence(PromptPanel.SEED_RANGE_MESSAGE)
    assert panel.build_request("1:1").seed == seed


def test_largest_seed_is_accepted(qtbot: QtBot) -> None:
    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.promptEdit.setPlainText("two words")
    qtbot.keyClicks(panel.seedEdit, str(spec.SEED_MAX))
    assert panel.seed() == spec.SEED_MAX
    assert panel.build_request("1:1").to_task()["seed"] == spec.SEED_MAX

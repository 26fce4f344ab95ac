"""The last session's reference tray is never shrunk by a window closed while it is
still coming back (a slow disk, a busy machine): what had not loaded is saved again,
in its place, with its strength."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pytestqt.qtbot import QtBot

import krea_desktop.ui.references.loading as loading
from krea_desktop.models.references import ReferenceSet, SavedReference
from tests.ui.test_loop_window import make_window

__all__ = ["make_window"]  # a fixture, used by name


def saved(data_dir: Path) -> list[tuple[str, float]]:
    state = json.loads((data_dir / "references" / "tray.json").read_text())
    return [(e["source"], e["strength"]) for e in state["references"]]


def closed_with(qtbot: QtBot, make_window: Any, tmp_path: Path, strengths: list[float]) -> None:
    """A window whose tray holds a reference ``r<i>.png`` of each strength, closed (saved)."""
    w = make_window()
    for i, strength in enumerate(strengths):
        path = tmp_path / f"r{i}.png"
        Image.new("RGB", (64, 48), (40 * i, 120, 200)).save(path)
        w.tray.add_reference(path, strength)
    qtbot.waitUntil(lambda: w.tray.count() == len(strengths) and not w.tray.isBusy(), timeout=10000)
    w.close()


def held_back(
    monkeypatch: pytest.MonkeyPatch, holds: Callable[[Any], bool], then: Callable[[Any], object] = lambda _s: None
) -> threading.Event:
    """Loads of the sources ``holds`` picks wait for the event returned (then ``then``
    is done with the source) before they are read."""
    gate = threading.Event()
    real = loading.load_source

    def slow(source: Any, *args: Any, **kwargs: Any) -> Any:
        if holds(source):
            gate.wait(20)
            then(source)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(loading, "load_source", slow)
    return gate


def test_a_window_closed_while_the_tray_comes_back_keeps_every_reference(
    qtbot: QtBot, make_window: Any, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed_with(qtbot, make_window, tmp_path, [round(-1 + 0.4 * i, 2) for i in range(6)])
    before = saved(data_dir)
    assert len(before) == 6

    # The next start reads the kept copies slowly: the first two come back at once, the
    # others only after the window has been closed again.
    real = loading.load_source
    gate = held_back(monkeypatch, lambda source: before.index((source.label, source.strength)) >= 2)
    w2 = make_window()
    qtbot.waitUntil(lambda: w2.tray.count() == 2, timeout=10000)
    w2.tray.items()[1].setStrength(1.5)  # a change made meanwhile is kept too
    monkeypatch.setattr(w2.tray, "finish_loads", lambda msecs=5000: None)  # a close that does not wait
    w2.close()
    after = saved(data_dir)
    assert after == [before[0], (before[1][0], 1.5), *before[2:]]
    gate.set()

    monkeypatch.setattr(loading, "load_source", real)
    w3 = make_window()
    qtbot.waitUntil(lambda: w3.tray.count() == 6 and not w3.tray.isBusy(), timeout=10000)
    assert [(i.source, i.strength()) for i in w3.tray.items()] == after


def test_a_reference_added_while_the_tray_comes_back_is_kept_too(
    qtbot: QtBot, make_window: Any, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed_with(qtbot, make_window, tmp_path, [0.5, 0.5, 0.5])
    gate = held_back(monkeypatch, lambda source: source.label == "r2.png")
    w2 = make_window()
    qtbot.waitUntil(lambda: w2.tray.count() == 2, timeout=10000)
    new = tmp_path / "new.png"
    Image.new("RGB", (64, 48), (1, 2, 3)).save(new)
    w2.tray.add_reference(new, 1.0)  # loaded at once, it waits behind the restore to be shown
    copies = data_dir / "references"
    qtbot.waitUntil(lambda: len(list(copies.glob("*.png"))) == 4, timeout=10000)  # its copy is made
    qtbot.wait(100)
    monkeypatch.setattr(w2.tray, "finish_loads", lambda msecs=5000: None)
    w2.close()
    gate.set()
    assert saved(data_dir) == [("r0.png", 0.5), ("r1.png", 0.5), ("r2.png", 0.5), ("new.png", 1.0)]


def test_what_is_still_to_come_is_saved_after_what_is_held_within_the_limit(tmp_path: Path) -> None:
    refs = ReferenceSet(tmp_path)
    to_come = [SavedReference(tmp_path / f"c{i}.png", 0.5, f"c{i}.png") for i in range(12)]
    state = json.loads(refs.state_bytes(to_come))
    assert [e["file"] for e in state["references"]] == [f"c{i}.png" for i in range(10)]  # the tray's limit


def test_an_image_held_and_brought_in_again_while_the_tray_comes_back_is_saved_once(qapp: Any, tmp_path: Path) -> None:
    from krea_desktop.ui.references.loading import ReferenceLoader
    from krea_desktop.ui.references.sources import Source

    class Held:
        """Runs each load at once and hands its answer over when told."""

        def __init__(self) -> None:
            self.answers: list[tuple[Any, Any]] = []

        def submit(self, work: Any, done: Any, failed: Any = None) -> None:
            try:
                self.answers.append((done, work()))
            except BaseException as exc:  # handed to failed, as a runner does
                self.answers.append((failed, exc))

        def deliver(self, index: int) -> None:
            call, value = self.answers[index]
            call(value)

    runner = Held()
    model = ReferenceSet(tmp_path / "references")
    (tmp_path / "references").mkdir()
    loader = ReferenceLoader(model, tmp_path / "references", runner=runner)  # type: ignore[arg-type]
    files = []
    for i in range(10):
        files.append(tmp_path / f"r{i}.png")
        Image.new("RGB", (32, 32), (20 * i, 5, 9)).save(files[-1])
    # The last session's nine coming back, the ninth still being read.
    loader.start([Source("path", str(p), 0.5, p.name) for p in files[:9]], restoring=True)
    for i in range(8):
        runner.deliver(i)
    # r0's file brought in again (already held) with a new one: both loaded, waiting.
    assert loader.start([Source("path", str(files[0]), 0.7), Source("path", str(files[9]), 0.7)])
    runner.deliver(9)
    runner.deliver(10)
    model.save(loader.on_their_way())  # the window closes now
    state = json.loads(model.state_file.read_text())
    assert [e["source"] for e in state["references"]] == [f"r{i}.png" for i in range(10)]


def test_a_tray_saved_while_it_comes_back_is_saved_again_once_it_has(
    qtbot: QtBot, make_window: Any, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An edit is saved at once, the references still on their way with it; one of those
    # that then cannot be read must not stay in the saved tray, to be said missing again
    # at every start until the next edit.
    closed_with(qtbot, make_window, tmp_path, [0.5, 0.5])
    # Its copy gone meanwhile.
    gate = held_back(monkeypatch, lambda source: source.label == "r1.png", lambda source: Path(source.value).unlink())
    w2 = make_window()
    qtbot.waitUntil(lambda: w2.tray.count() == 1, timeout=10000)
    w2.tray.items()[0].setStrength(1.5)
    qtbot.waitUntil(lambda: saved(data_dir) == [("r0.png", 1.5), ("r1.png", 0.5)], timeout=3000)
    gate.set()
    qtbot.waitUntil(lambda: not w2.tray.isBusy(), timeout=10000)
    qtbot.waitUntil(lambda: saved(data_dir) == [("r0.png", 1.5)], timeout=3000)

"""Exporting from the gallery when the place chosen cannot take the file, and what is said:
one sentence, a name shortened to be read, and the next export not sent where this one
could not go. And Ctrl+C in the viewer copies the image shown, as in the gallery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot

from krea_desktop.ui.window.main_window import MainWindow
from tests.ui import test_gallery
from tests.ui.test_gallery import export_several, fill, make_image, select

make_window, no_trash = test_gallery.make_window, test_gallery.no_trash  # the gallery tests' fixtures


def saying(w: MainWindow) -> list[str]:
    said: list[str] = []
    exporter = w.gallery_actions.exporter
    show = exporter.show_message
    exporter.show_message = lambda text, *a, **k: (said.append(text), show(text, *a, **k))  # type: ignore[method-assign]
    return said


def answering(monkeypatch: pytest.MonkeyPatch, *answers: tuple[str, str]) -> list[str]:
    """The save dialog answers ``answers`` in turn; what it suggested each time is returned."""
    suggested: list[str] = []
    queue = list(answers)

    def save(_parent: Any, _title: str, offered: str, _filters: str, *_a: Any, **_k: Any) -> tuple[str, str]:
        suggested.append(offered)
        return queue.pop(0)

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(save))
    return suggested


def test_a_name_too_long_for_the_system_is_said_in_a_sentence_that_can_be_read(
    qtbot: QtBot, data_dir: Path, make_window: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fill(data_dir, [make_image("a harbour", seed=1)])
    w = make_window()
    said = saying(w)
    out = tmp_path / "out"
    out.mkdir()
    answering(monkeypatch, (str(out / ("n" * 300)), "PNG image (*.png)"))  # no suffix: the filter's
    select(w, 0)
    w.gallery_actions.export_action.trigger()  # raised "File name too long" on the GUI thread
    qtbot.waitUntil(lambda: bool(said))
    (text,) = said
    assert text.endswith("could not be written in " + str(out) + " (File name too long).")
    assert len(text) < 200 and "…" in text


def test_a_failed_export_is_not_where_the_next_one_starts(
    qtbot: QtBot, data_dir: Path, make_window: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fill(data_dir, [make_image("a harbour", seed=1)])
    w = make_window()
    said = saying(w)
    good = tmp_path / "good"
    good.mkdir()
    blocked = tmp_path / "a file, not a folder"
    blocked.write_text("")
    suggested = answering(
        monkeypatch,
        (str(good / "one.png"), "PNG image (*.png)"),
        (str(blocked / "two.png"), "PNG image (*.png)"),
        ("", ""),
    )
    select(w, 0)
    w.gallery_actions.export_plain_action.trigger()
    qtbot.waitUntil(lambda: bool(said))
    assert said[-1] == f"Exported 1 image without its parameters to {good}."
    w.gallery_actions.export_action.trigger()
    qtbot.waitUntil(lambda: len(said) == 2)
    assert "could not be written" in said[-1]
    w.gallery_actions.export_action.trigger()
    assert Path(suggested[-1]).parent == good  # where the last export went, not where one failed


def test_exports_are_offered_names_from_their_prompts(
    qtbot: QtBot, data_dir: Path, make_window: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The library's own files are named by UUID; a folder of exports named so says nothing.
    harbour, meadow = fill(data_dir, [make_image("A harbour at dawn", seed=1), make_image("a meadow, rain", seed=2)])
    w = make_window()
    said = saying(w)
    suggested = answering(monkeypatch, ("", ""))
    select(w, 1)  # newest first: the harbour
    w.gallery_actions.export_action.trigger()
    assert Path(suggested[0]).name == f"a-harbour-at-dawn-{harbour.image_uuid[:8]}.png"
    out = tmp_path / "out"
    export_several(w, monkeypatch, out, 0, 1)
    qtbot.waitUntil(lambda: bool(said))
    assert said[-1] == f"Exported 2 images to {out}."
    assert sorted(p.name for p in out.iterdir()) == [
        f"a-harbour-at-dawn-{harbour.image_uuid[:8]}.png",
        f"a-meadow-rain-{meadow.image_uuid[:8]}.png",
    ]


def test_a_long_export_says_how_far_it_has_got_and_is_not_started_twice(
    qtbot: QtBot, data_dir: Path, make_window: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # 150 images took half a minute with nothing said until the end, and Export… asked
    # again meanwhile wrote a second set of copies, each named " (2)".
    import threading

    from krea_desktop.ui.gallery import export

    fill(data_dir, [make_image(f"a harbour {i}", seed=i) for i in range(4)])
    w = make_window()
    said = saying(w)
    monkeypatch.setattr(export, "PROGRESS_EVERY_MS", 100)
    go_on = threading.Event()
    real_export = export.export_image

    def slow_export(*args: Any, **kwargs: Any) -> Path:
        go_on.wait(10)
        return real_export(*args, **kwargs)

    monkeypatch.setattr(export, "export_image", slow_export)
    out = tmp_path / "out"
    export_several(w, monkeypatch, out, 0, 1, 2, 3)
    qtbot.waitUntil(lambda: f"Exporting 4 images to {out}: 0 done…" in said)
    w.gallery_actions.export_action.trigger()  # asked again while it runs
    assert said[-1] == f"Exporting 4 images to {out}: 0 done; export again once it is done."
    go_on.set()
    qtbot.waitUntil(lambda: said[-1] == f"Exported 4 images to {out}.")
    assert len(list(out.iterdir())) == 4  # one set of copies
    export_several(w, monkeypatch, out, 0, 1)  # done: the next export goes ahead
    qtbot.waitUntil(lambda: said[-1] == f"Exported 2 images to {out}.")


def test_ctrl_c_in_the_viewer_copies_the_image_shown(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    fill(data_dir, [make_image("a harbour", seed=1), make_image("a meadow", seed=2)])
    w = make_window()
    QGuiApplication.clipboard().clear()
    select(w, 0)
    w.gallery_actions.view_selected()
    viewer = w.gallery_actions.viewer
    assert viewer is not None
    qtbot.keyClick(viewer, Qt.Key.Key_Right)  # the second image, not the one selected
    shown = viewer.entry
    qtbot.keyClick(viewer, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    board = QGuiApplication.clipboard()
    qtbot.waitUntil(lambda: (mime := board.mimeData()) is not None and mime.hasUrls())
    assert [u.toLocalFile() for u in board.mimeData().urls()] == [str(shown.path)]
    assert viewer.hint_label.text() == "Copied to the clipboard."


def test_an_image_unmarked_under_the_favourites_filter_hands_its_place_to_the_next(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    # As after a delete: the keyboard goes on from where the image was, not from nothing.
    fill(data_dir, [make_image(f"img {i}", seed=i) for i in range(6)])
    w = make_window()
    select(w, 0, 1, 2, 3)
    w.gallery.setFocus()
    qtbot.keyClick(w.gallery, Qt.Key.Key_F)
    qtbot.waitUntil(lambda: w.model.entry_at(3).favourite)
    w.filter_bar.favourites.setChecked(True)
    qtbot.waitUntil(lambda: w.model.rowCount() == 4)
    select(w, 1)
    after = w.model.entry_at(2)
    qtbot.keyClick(w.gallery, Qt.Key.Key_F)
    qtbot.waitUntil(lambda: w.model.rowCount() == 3)
    assert w.gallery.selected_rows() == [1] and w.gallery.currentIndex().row() == 1
    assert w.model.entry_at(1).id == after.id and w.gallery_actions.delete_action.isEnabled()


def test_ctrl_c_in_the_viewer_on_an_image_gone_from_disk_says_so_in_the_viewer(
    qtbot: QtBot, data_dir: Path, make_window: Any
) -> None:
    # It said "The selected images are not on disk any more…" on the main window, behind
    # the viewer, of a selection the viewer does not have: nothing showed where Ctrl+C was.
    (entry,) = fill(data_dir, [make_image("a harbour", seed=1)])
    w = make_window()
    said = saying(w)
    shown: list[str] = []
    select(w, 0)
    w.gallery_actions.view_selected()
    viewer = w.gallery_actions.viewer
    assert viewer is not None
    entry.path.unlink()  # removed outside the app
    show_hint = viewer.show_hint
    viewer.show_hint = lambda text, *a, **k: (shown.append(text), show_hint(text, *a, **k))  # type: ignore[method-assign]
    qtbot.keyClick(viewer, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: bool(shown))
    assert shown == [f"The file {entry.path.name} is no longer in {entry.path.parent}, so nothing was copied."]
    assert not [t for t in said if "not on disk" in t] and "not on disk" not in w.message_banner.label.text()


def test_a_viewer_no_one_copies_for_does_not_say_it_copied(qtbot: QtBot, data_dir: Path) -> None:
    # The viewer asks for the copy; what copies it says so once it is done.
    from krea_desktop.ui.viewer.viewer import ImageViewer

    (entry,) = fill(data_dir, [make_image("a harbour", seed=1)])
    viewer = ImageViewer(lambda row: entry if row == 0 else None, lambda: 1, 0)
    qtbot.addWidget(viewer)
    viewer.show()
    qtbot.keyClick(viewer, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert viewer.hint_label.text() != "Copied to the clipboard."


def test_ctrl_c_in_a_sweeps_viewer_copies_the_image_shown(qtbot: QtBot, data_dir: Path, make_window: Any) -> None:
    fill(data_dir, [make_image("a harbour", seed=1)])
    w = make_window()
    QGuiApplication.clipboard().clear()
    (entry,) = w.library.entries()
    w.sweeps._open_entry(entry, [entry])
    from krea_desktop.ui.viewer.viewer import ImageViewer

    (viewer,) = [v for v in w.findChildren(ImageViewer) if v.isVisible()]
    qtbot.keyClick(viewer, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    board = QGuiApplication.clipboard()
    qtbot.waitUntil(lambda: (mime := board.mimeData()) is not None and mime.hasUrls())
    assert [u.toLocalFile() for u in board.mimeData().urls()] == [str(entry.path)]
    qtbot.waitUntil(lambda: viewer.hint_label.text() == "Copied to the clipboard.")

"""Other tools' images in the window, and sharing an image without its parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from pytestqt.qtbot import QtBot

from krea_desktop.library import metadata
from krea_desktop.library.recall import entry_for_file
from krea_desktop.ui.app import create_main_window
from krea_desktop.ui.viewer.viewer import entry_facts

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


def test_another_tools_extras_are_shown_as_not_used() -> None:
    path = CORPUS / "a1111" / "txt2img.png"
    facts = dict(entry_facts(entry_for_file(path, metadata.read_record(path))))
    assert facts["Made with"] == "A1111"
    assert facts["Steps"] == "28 (not used by Krea 2 Medium)"
    assert facts["Cfg"] == "6.5 (not used by Krea 2 Medium)"
    assert facts["Negative prompt"].endswith("(not used by Krea 2 Medium)")


def test_a_random_seed_kept_by_an_earlier_version_shows_one_seed_line(tmp_path: Path) -> None:
    from krea_desktop.api.record import GenerationRecord

    path = tmp_path / "imported.png"
    Image.new("RGB", (8, 8)).save(path)
    entry = entry_for_file(path, GenerationRecord(prompt="a cat", extras={"foreign": {"seed": "-1", "steps": 20}}))
    facts = entry_facts(entry)
    assert [text for label, text in facts if label == "Seed"] == ["—"]
    assert ("Steps", "20 (not used by Krea 2 Medium)") in facts


def test_our_own_images_show_no_foreign_lines(qtbot: QtBot, data_dir: Path, memory_keyring: Any) -> None:
    w = create_main_window(demo_latency=0.0)
    qtbot.addWidget(w)
    try:
        w.prompt_panel.setPrompt("a plain harbour")
        with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
            w.generate()
        (entry,) = w.library.entries()
        labels = [label for label, _text in entry_facts(entry)]
        assert "Made with" not in labels and not any("not used" in t for _l, t in entry_facts(entry))
    finally:
        w.close()


@pytest.mark.parametrize("with_parameters", [True, False])
def test_export_with_or_without_parameters(
    qtbot: QtBot, data_dir: Path, memory_keyring: Any, tmp_path: Path, with_parameters: bool
) -> None:
    w = create_main_window(demo_latency=0.0)
    qtbot.addWidget(w)
    try:
        w.prompt_panel.setPrompt("a harbour to share")
        with qtbot.waitSignal(w.client_thread.jobFinished, timeout=30000):
            w.generate()
        (entry,) = w.library.entries()
        target = tmp_path / "shared.png"
        w.gallery_actions.exporter.export_to([(entry, target)], "PNG", with_parameters=with_parameters)
        qtbot.waitUntil(lambda: target.exists() and "Exported" in w.message_banner.label.text())
        record = metadata.read_record(target)
        if with_parameters:
            assert record is not None and record.prompt == "a harbour to share"
        else:
            assert record is None
            assert b"a harbour to share" not in target.read_bytes()
            assert "Exported 1 image without its parameters to " in w.message_banner.label.text()
        assert w.gallery_actions.export_plain_action in w.gallery_actions.selection_actions_list()
    finally:
        w.close()


def test_an_image_without_a_record_shows_its_own_size(
    qtbot: QtBot, data_dir: Path, memory_keyring: Any, tmp_path: Path
) -> None:
    from PIL import Image

    plain = tmp_path / "plain.png"
    Image.new("RGB", (64, 48), (200, 80, 40)).save(plain)
    w = create_main_window(demo_latency=0.0)
    qtbot.addWidget(w)
    try:
        w.open_images([plain])
        qtbot.waitUntil(lambda: w.file_drops.file_viewer is not None)
        viewer = w.file_drops.file_viewer
        assert viewer is not None and viewer.entry is not None
        assert dict(entry_facts(viewer.entry))["Ratio and size"] == "custom · 64 × 48"
        viewer.close()
    finally:
        w.close()


def test_a_seed_beyond_the_models_is_shown_on_the_seed_line_and_named_when_asked_for(
    qtbot: QtBot, data_dir: Path, memory_keyring: Any, tmp_path: Path
) -> None:
    path = tmp_path / "a1111.png"
    chunks = PngInfo()
    chunks.add_text("parameters", "a cat\nSteps: 20, Sampler: Euler a, Seed: 18446744073709551615, Size: 64x48")
    Image.new("RGB", (64, 48)).save(path, pnginfo=chunks)
    entry = entry_for_file(path, metadata.read_record(path))
    facts = entry_facts(entry)
    assert dict(facts)["Seed"] == "18446744073709551615 (beyond Krea 2 Medium's seeds, so not used)"
    assert [label for label, _text in facts].count("Seed") == 1
    w = create_main_window(demo_latency=0.0)
    qtbot.addWidget(w)
    try:
        w.prompt_panel.setSeed(5)
        w.recall.use_seed(entry)
        assert w.prompt_panel.seed() == 5
        assert w.message_banner.label.text() == (
            "This image's seed, 18446744073709551615, is beyond Krea 2 Medium's seeds, so it cannot be used."
        )
        w.recall.use_all_parameters(entry)
        assert w.prompt_panel.prompt() == "a cat" and w.prompt_panel.seed() == 5
        assert w.message_banner.label.text().endswith(
            "; its seed, 18446744073709551615, is beyond Krea 2 Medium's seeds, so the seed is as it was."
        )
    finally:
        w.close()


def test_a_negative_seed_in_a_files_own_record_is_named_not_put_in_the_field(
    qtbot: QtBot, data_dir: Path, memory_keyring: Any, tmp_path: Path
) -> None:
    import io

    from krea_desktop.api.record import GenerationRecord

    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    path = tmp_path / "edited.png"
    path.write_bytes(metadata.embed(buf.getvalue(), "PNG", GenerationRecord(prompt="a fox in snow", seed=-5)))
    entry = entry_for_file(path, metadata.read_record(path))
    assert dict(entry_facts(entry))["Seed"] == "-5 (beyond Krea 2 Medium's seeds, so not used)"
    w = create_main_window(demo_latency=0.0)
    qtbot.addWidget(w)
    try:
        w.prompt_panel.setSeed(7)
        w.recall.use_seed(entry)
        assert w.prompt_panel.seed() == 7 and w.prompt_panel.seedEdit.text() == "7"
        assert w.message_banner.label.text() == (
            "This image's seed, -5, is beyond Krea 2 Medium's seeds, so it cannot be used."
        )
    finally:
        w.close()


def _texts(png: bytes) -> dict[str, str]:
    import io

    with Image.open(io.BytesIO(png)) as im:
        return dict(im.text)  # type: ignore[attr-defined]


@pytest.mark.parametrize("source", ["a1111/txt2img.jpg", "comfyui/api_and_workflow.png as WEBP"])
def test_another_tools_jpeg_or_webp_copied_or_dragged_as_a_picture_carries_what_export_writes(
    qapp: Any, tmp_path: Path, source: str
) -> None:
    """The clipboard's PNG (and a drag's) of another tool's JPEG or WEBP had a line made up
    from the record (A1111's model hash, LoRA hashes and version gone) and no ComfyUI
    graphs: ComfyUI could not load the pasted picture. It now carries what an export to
    PNG writes."""
    from krea_desktop.library.export import export_image
    from krea_desktop.library.store import Library
    from krea_desktop.ui.gallery.desktop import png_with_record
    from krea_desktop.ui.gallery.model import mime_for_entries
    from krea_desktop.ui.pixels import read_image_file

    folder = tmp_path / "lib"
    (folder / "images").mkdir(parents=True)
    name, _, made_as = source.partition(" as ")
    picture = folder / "images" / ("theirs.webp" if made_as else "theirs.jpg")
    if made_as:  # their PNG, as the app exports it to WEBP (ComfyUI's graphs in EXIF Make and Model)
        with Library(tmp_path / "first") as first:
            (tmp_path / "first" / "images" / "theirs.png").write_bytes((CORPUS / name).read_bytes())
            first.reconcile()
            export_image(first.entries()[0], picture, "WEBP")
    else:
        picture.write_bytes((CORPUS / name).read_bytes())
    with Library(folder) as lib:
        lib.reconcile()
        (entry,) = lib.entries()
        exported = export_image(entry, tmp_path / "exported.png", "PNG").read_bytes()
        expected = _texts(exported)
        assert expected.get("parameters") or expected.get("workflow")  # what the tool wrote
        clipboard = png_with_record(entry, read_image_file(entry.path, auto_transform=True))
        assert clipboard is not None and _texts(clipboard) == expected
        dragged = bytes(mime_for_entries([entry]).data("image/png").data())
        assert _texts(dragged) == expected

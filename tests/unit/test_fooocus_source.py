"""A Fooocus image saved in its "a1111" metadata scheme (an A1111 line whose Version is
Fooocus's, a ``fooocus_scheme`` text beside it) is named Fooocus's, not A1111's."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from krea_desktop import info
from krea_desktop.library import metadata
from krea_desktop.library.export import export_image
from krea_desktop.library.readers.a1111 import parse_a1111, tool_of
from krea_desktop.library.recall import entry_for_file

LINE = (
    "fooocus a1 prompt\nNegative prompt: x\n"
    "Steps: 30, Sampler: DPM++ 2M SDE Karras, Seed: 111, Size: 1152x896, Version: Fooocus v2.5.0"
)


def fooocus_png(path: Path, line: str = LINE, scheme: str | None = "a1111") -> Path:
    texts = PngInfo()
    texts.add_text("parameters", line)
    if scheme is not None:
        texts.add_text("fooocus_scheme", scheme)
    Image.new("RGB", (64, 48)).save(path, "PNG", pnginfo=texts)
    return path


def source_of(path: Path) -> object:
    record = metadata.read_record(path)
    assert record is not None
    return record.extras.get("source")


def test_the_fooocus_version_names_the_line_fooocus() -> None:
    assert tool_of({"Version": "Fooocus v2.5.0"}) == "Fooocus"
    assert parse_a1111(LINE)["source"] == "Fooocus"
    assert tool_of({"Version": "v1.10.1"}) == "A1111"


@pytest.mark.parametrize(
    ("line", "scheme"),
    [
        (LINE, "a1111"),  # as Fooocus writes it
        (LINE, None),  # the scheme's text lost, the version still Fooocus's
        (LINE.replace("Version: Fooocus v2.5.0", "Version: v2.5.0"), "a1111"),  # the version not Fooocus's
    ],
)
def test_a_fooocus_a1111_scheme_png_is_made_by_fooocus(tmp_path: Path, line: str, scheme: str | None) -> None:
    path = fooocus_png(tmp_path / "fooocus.png", line, scheme)
    assert source_of(path) == "Fooocus"
    record = metadata.read_record(path)
    assert record is not None and record.prompt == "fooocus a1 prompt" and record.seed == 111


def test_info_says_made_by_fooocus(tmp_path: Path) -> None:
    path = fooocus_png(tmp_path / "fooocus.png")
    out, err = io.StringIO(), io.StringIO()
    assert info.run([path], as_json=False, out=out, err=err) == 0
    assert "made by:         Fooocus" in out.getvalue()


def test_an_a1111_line_without_fooocus_is_still_a1111s(tmp_path: Path) -> None:
    line = LINE.replace("Version: Fooocus v2.5.0", "Version: v1.10.1")
    assert source_of(fooocus_png(tmp_path / "a1111.png", line, None)) == "A1111"


def test_a_fooocus_image_exported_and_read_back_is_still_fooocus(tmp_path: Path) -> None:
    path = fooocus_png(tmp_path / "fooocus.png")
    entry = entry_for_file(path, metadata.read_record(path))
    for fmt in ("PNG", "JPG", "WEBP"):
        out = export_image(entry, tmp_path / f"shared.{fmt.lower()}", fmt)
        assert source_of(out) == "Fooocus", fmt
        with Image.open(out) as im:
            im.load()
            if fmt == "PNG":
                assert im.info["parameters"] == LINE and im.info["fooocus_scheme"] == "a1111"

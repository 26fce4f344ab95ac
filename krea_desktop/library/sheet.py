"""The contact sheet of a sweep: one image, the cells in a labelled grid.

Axis names and values are written on the edges (the first axis along the top, the
second down the left side); a cell keeps its place when it failed, drawn as a grey
square with its error. The sheet is saved into the library like any image, its record
being the sweep's (the request as composed, the axes, and what became of every cell),
so it is found again with the sweep's images.
"""

from __future__ import annotations

import io
import math
import textwrap
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PIL import ImageDraw, ImageFont, ImageOps

from krea_desktop.api import spec
from krea_desktop.api.record import GenerationRecord, SweepAxis, SweepTag
from krea_desktop.api.results import GeneratedImage
from krea_desktop.fonts import text_font
from krea_desktop.library.store import Library, LibraryEntry
from krea_desktop.pillow import Image, open_image
from krea_desktop.wording import short_reference_name

CELL = 320  # the long side of a cell's picture, in pixels
GAP = 12
MARGIN = 24
BACKGROUND = (30, 30, 32)
TEXT = (235, 235, 235)
MUTED = (165, 165, 170)
FAILED = (70, 52, 52)
WAITING = (48, 48, 52)


@dataclass(frozen=True)
class SheetCell:
    """What became of one cell: its image file, or the error it failed with."""

    place: tuple[int, ...]
    image_uuid: str | None = None
    path: Path | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"place": list(self.place)}
        if self.image_uuid:
            out["image_uuid"] = self.image_uuid
        if self.error:
            out["error"] = self.error
        return out


def axis_title(name: str, reference: str = "") -> str:
    """How an axis is named on the sheet and in the dialog; ``reference``, the short name
    of the reference a strength axis varies, says which image that is."""
    if name.startswith("ref"):
        return f"Reference {name[3:]} ({reference}) strength" if reference else f"Reference {name[3:]} strength"
    return {"creativity": "Creativity", "seed": "Seed"}.get(name, name)


def named_axis_title(name: str, reference_names: Sequence[str] = ()) -> str:
    """:func:`axis_title` with the name of the reference a strength axis varies taken from
    ``reference_names`` (the references' short names, in the request's order)."""
    index = int(name[3:]) - 1 if name.startswith("ref") and name[3:].isdigit() else -1
    return axis_title(name, reference_names[index] if 0 <= index < len(reference_names) else "")


def value_label(name: str, value: object) -> str:
    """How one value of an axis is written: ``+1.5``, ``0``, ``high``, ``seed 42``."""
    if name.startswith("ref") and isinstance(value, (int, float)):
        return "0" if value == 0 else f"{value:+.2f}".rstrip("0").rstrip(".")
    if name == "seed":
        return f"seed {value}"
    return str(value)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return text_font(size)


def cell_size(width: int, height: int) -> tuple[int, int]:
    """A cell's picture size for images of ``width`` × ``height``: CELL on the long side."""
    if width <= 0 or height <= 0:
        return CELL, CELL
    scale = CELL / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def render(
    axes: tuple[SweepAxis, ...],
    cells: list[SheetCell],
    image_size: tuple[int, int],
    title: str = "",
    reference_names: Sequence[str] = (),
) -> Image.Image:
    """Draw the sheet. ``cells`` may miss places (drawn as waiting); ``image_size`` is the
    size of the sweep's images, which sets each cell's shape; ``reference_names`` name the
    reference a strength axis varies."""
    columns = len(axes[0].values)
    rows = len(axes[1].values) if len(axes) > 1 else 1
    cw, ch = cell_size(*image_size)
    label_font, small_font, title_font = _font(18), _font(14), _font(20)
    across_title = named_axis_title(axes[0].name, reference_names)
    down_title = named_axis_title(axes[1].name, reference_names) if len(axes) > 1 else ""
    # The second axis's title and values stand in a column of their own, left of the cells,
    # as wide as that title (a reference's name can make it long).
    left = MARGIN + (max(150, math.ceil(small_font.getlength(down_title)) + 16) if down_title else 0)
    top = MARGIN + (34 if title else 0) + 56
    # As wide as the cells, or as the first axis's title over them should it be wider.
    width = left + max(columns * cw + (columns - 1) * GAP, math.ceil(small_font.getlength(across_title))) + MARGIN
    height = top + rows * ch + (rows - 1) * GAP + MARGIN
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    y = MARGIN
    title = " ".join(title.split())  # one line: a prompt's line breaks would run over the labels
    if title:
        line = title if len(title) <= 120 else title[:119] + "…"
        draw.text((MARGIN, y), line, font=title_font, fill=TEXT)
        y += 34
    draw.text((left, y), across_title, font=small_font, fill=MUTED)
    for c, value in enumerate(axes[0].values):
        x = left + c * (cw + GAP)
        draw.text((x + cw / 2, y + 36), value_label(axes[0].name, value), font=label_font, fill=TEXT, anchor="ms")
    if len(axes) > 1:
        draw.text((MARGIN, top - 22), down_title, font=small_font, fill=MUTED)
        for r, value in enumerate(axes[1].values):
            yy = top + r * (ch + GAP) + ch / 2
            draw.text((MARGIN, yy), value_label(axes[1].name, value), font=label_font, fill=TEXT, anchor="lm")
    by_place = {cell.place: cell for cell in cells}
    for r in range(rows):
        for c in range(columns):
            place = (c, r) if len(axes) > 1 else (c,)
            box = (left + c * (cw + GAP), top + r * (ch + GAP))
            cell = by_place.get(place)
            picture = _open(cell.path, (cw, ch)) if cell is not None and cell.path is not None else None
            if picture is not None:
                sheet.paste(picture, (box[0] + (cw - picture.width) // 2, box[1] + (ch - picture.height) // 2))
                continue
            failed = cell is not None and bool(cell.error)
            draw.rectangle((box[0], box[1], box[0] + cw - 1, box[1] + ch - 1), fill=FAILED if failed else WAITING)
            text = ("Failed: " + (cell.error or "")) if failed and cell is not None else "Not made"
            wrapped = "\n".join(textwrap.wrap(text, width=max(12, cw // 9))[:8])
            draw.multiline_text((box[0] + 10, box[1] + 10), wrapped, font=small_font, fill=TEXT)
    return sheet


def _open(path: Path, size: tuple[int, int]) -> Image.Image | None:
    try:
        with open_image(path) as im:
            im.draft("RGB", size)
            picture = im.convert("RGB")
    except Exception:  # a file gone or damaged since: the cell is drawn as not made
        return None
    return ImageOps.contain(picture, size, Image.Resampling.LANCZOS)  # up or down, to fill the cell


def sheet_record(
    base: GenerationRecord, tag: SweepTag, cells: list[SheetCell], reference_names: Sequence[str] = ()
) -> GenerationRecord:
    """The sheet's record: the sweep's request as composed, less what its axes varied
    (:meth:`GenerationRecord.shared_by_cells`), its axes, every cell's fate, and the names
    its strength axes were titled with."""
    extras = dict(base.extras)
    extras["sheet_cells"] = [cell.to_json() for cell in sorted(cells, key=lambda c: c.place[::-1])]
    if any(reference_names):
        extras["sheet_reference_names"] = list(reference_names)
    return base.replace(
        sweep=SweepTag(tag.id, tag.axes, ()),
        number_results=None,
        image_uuid=None,
        task_uuid=None,
        index=None,
        cost=None,
        extras=extras,
    ).shared_by_cells()


def sheet_reference_names_of(record: GenerationRecord) -> tuple[str, ...]:
    """The references' names a saved sheet's strength axes were titled with (none for a
    sheet saved without them)."""
    raw = record.extras.get("sheet_reference_names")
    if not isinstance(raw, list):
        return ()
    # Short as they were written, whatever a file from elsewhere says.
    return tuple(short_reference_name(name) if isinstance(name, str) else "" for name in raw[: spec.MAX_REFERENCES])


def sheet_cells_of(record: GenerationRecord) -> list[SheetCell]:
    """The cells a saved sheet's record names (their images found again by imageUUID)."""
    raw = record.extras.get("sheet_cells")
    cells: list[SheetCell] = []
    if not isinstance(raw, list):
        return cells
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("place"), list):
            continue
        place = tuple(p for p in item["place"] if isinstance(p, int) and not isinstance(p, bool))
        uuid = item.get("image_uuid") if isinstance(item.get("image_uuid"), str) else None
        error = item.get("error") if isinstance(item.get("error"), str) else None
        cells.append(SheetCell(place, uuid, None, error))
    return cells


def sheet_uuid(sweep_id: str) -> str:
    return f"{sweep_id}-sheet"


def save_sheet(
    library: Library,
    base: GenerationRecord,
    tag: SweepTag,
    cells: list[SheetCell],
    image_size: tuple[int, int],
    reference_names: Sequence[str] = (),
) -> LibraryEntry:
    """Draw the sheet and save it into the library with the sweep's record embedded."""
    picture = render(tag.axes, cells, image_size, base.prompt, reference_names)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", compress_level=6)
    record = sheet_record(base, tag, cells, reference_names)
    image = GeneratedImage(
        task_uuid=tag.id,
        image_uuid=sheet_uuid(tag.id),
        data=buffer.getvalue(),
        format="PNG",
        width=picture.width,
        height=picture.height,
        seed=record.seed,
        record=record,
    )
    # Drawn again (a cell arrived late): the new one takes the old one's place, which stays
    # as it was if the new one cannot be written.
    return library.save(image, datetime.now(timezone.utc), replace=True)


# One sheet drawn again at a time in a process: two cells collected at once would each read
# the library, draw and save, and the one that read it first could save last, without the
# other's cell.
_REDRAWING = threading.Lock()


def redraw_with_late_cells(library: Library, sweep_id: str) -> LibraryEntry | None:
    """The saved contact sheet of ``sweep_id`` drawn again, when images of cells it marks
    as failed are in the library now: collected by a later run, after the sweep was cut
    off (its window closed, Ctrl+C). The sheet that is exported and shared said those
    cells were never made. Returns the sheet drawn again; None when there was nothing to
    change (or no saved sheet)."""
    with _REDRAWING:
        entries = library.sweep_entries(sweep_id)
        sheets = [e for e in entries if e.record.sweep is not None and e.record.sweep.is_sheet]
        if not sheets:
            return None
        sheet = sheets[-1]
        tag = sheet.record.sweep
        assert tag is not None
        cell_entries = [e for e in entries if e.record.sweep is not None and not e.record.sweep.is_sheet]
        by_uuid = {e.image_uuid: e for e in cell_entries}
        by_place: dict[tuple[int, ...], LibraryEntry] = {}
        for entry in cell_entries:  # the first image of a place, as the sweep showed it
            by_place.setdefault(entry.record.sweep.place, entry)  # type: ignore[union-attr]
        saved = sheet_cells_of(sheet.record)
        if not any(cell.error and cell.place in by_place for cell in saved):
            return None
        cells = []
        for cell in saved:
            shown = by_uuid.get(cell.image_uuid or "")
            late = by_place.get(cell.place) if cell.error else None
            if shown is not None:
                cells.append(SheetCell(cell.place, shown.image_uuid, shown.path))
            elif late is not None:
                cells.append(SheetCell(cell.place, late.image_uuid, late.path))
            else:
                cells.append(cell)  # failed for good, or its image deleted since: as it was
        size = cell_entries[0]
        names = sheet_reference_names_of(sheet.record)
        return save_sheet(library, sheet.record, tag, cells, (size.width, size.height), names)

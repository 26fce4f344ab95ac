"""Sweep plans, sweep tags in the record, the contact sheet image, and the lineage index."""

from __future__ import annotations

import hashlib
import io
import math
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from krea_desktop import wording
from krea_desktop.api.record import GenerationRecord, ReferenceRecord, SweepAxis, SweepTag, parse_record
from krea_desktop.api.request import GenerationRequest, ReferenceImage
from krea_desktop.api.results import GeneratedImage
from krea_desktop.library import sheet as sheet_module
from krea_desktop.library.sheet import FAILED, SheetCell, render
from krea_desktop.library.store import SCHEMA_VERSION, Library
from krea_desktop.models.sweep import SweepError, SweepPlan, estimate_batch, parse_vary


def base(refs: int = 2, seed: int | None = None) -> GenerationRequest:
    return GenerationRequest(
        "a red fox",
        seed=seed,
        number_results=4,
        references=tuple(ReferenceImage(Path(f"/refs/{i}.png"), 0.5) for i in range(refs)),
    )


def test_a_two_axis_plan_has_one_single_image_task_per_cell_at_one_seed() -> None:
    plan = SweepPlan.make(base(), [parse_vary("ref2=-2,-1,0,1,2"), parse_vary("creativity=raw,high")])
    cells = plan.cells()
    assert (plan.columns, plan.rows, plan.task_count) == (5, 2, 10)
    assert [c.place for c in cells[:6]] == [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (0, 1)]
    requests = [c.request for c in cells]
    assert {r.number_results for r in requests} == {1}
    assert len({r.seed for r in requests}) == 1 and requests[0].seed is not None
    assert len({r.task_uuid for r in requests}) == 10
    assert [r.references[1].strength for r in requests[:5]] == [-2, -1, 0, 1, 2]
    assert {r.references[0].strength for r in requests} == {0.5}  # the other reference as composed
    assert [r.creativity for r in requests[::5]] == ["raw", "high"]
    assert requests[7].sweep == plan.tag((2, 1))
    assert requests[7].describe().sweep == plan.tag((2, 1))


def test_a_plan_says_its_size_in_words_that_agree_with_the_count() -> None:
    both = SweepPlan.make(base(seed=3), [parse_vary("ref2=-2,-1,0,1,2"), parse_vary("creativity=raw,high")])
    assert both.describe() == "5 × 2 = 10 tasks: Reference 2 strength × Creativity, seed 3"
    assert SweepPlan.make(base(), [parse_vary("seed=1"), parse_vary("creativity=raw")]).describe() == (
        "1 × 1 = 1 task: Seed × Creativity"
    )
    assert SweepPlan.make(base(seed=3), [parse_vary("creativity=raw")]).describe() == "1 task: Creativity, seed 3"
    # Named by the references as the user knows them; a reference without a name stays unnamed.
    named = SweepPlan.make(
        base(seed=3),
        [parse_vary("ref2=0,1"), parse_vary("ref1=0,1")],
        reference_names=["", "cat.png"],
    )
    assert named.describe() == "2 × 2 = 4 tasks: Reference 2 (cat.png) strength × Reference 1 strength, seed 3"


def test_a_seed_axis_varies_the_seed_and_keeps_a_given_one_out() -> None:
    plan = SweepPlan.make(base(seed=7), [parse_vary("seed=1,2,3")])
    assert [c.request.seed for c in plan.cells()] == [1, 2, 3]
    assert SweepPlan.make(base(seed=7), [parse_vary("creativity=raw,low")]).base.seed == 7


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("ref1", "should read AXIS=V1,V2"),
        ("ref11=1", "is not an axis"),
        ("ref1=1,x", "is not a number"),
        ("ref1=1,1", "repeats a value"),
        ("ref1=0.001,0.002", "the same once rounded to two decimals"),
        ("ref1=0.5,0.50", "repeats a value"),
        ("seed=1.5", "not a whole number"),
        ("creativity=", "at least one value"),
        ("ref1=" + ",".join(str(i / 10) for i in range(-20, 20, 2)), "at most 16"),
    ],
)
def test_a_bad_axis_is_one_sentence(text: str, phrase: str) -> None:
    with pytest.raises(SweepError, match=phrase):
        parse_vary(text)


def test_a_plan_refuses_what_it_cannot_send() -> None:
    with pytest.raises(SweepError, match="only 2"):
        SweepPlan.make(base(), [parse_vary("ref3=0,1")])
    with pytest.raises(SweepError, match="given twice"):
        SweepPlan.make(base(), [parse_vary("seed=1,2"), parse_vary("seed=3,4")])
    strengths = ",".join(f"{v / 10:.1f}" for v in range(-10, 12, 2))  # eleven values
    with pytest.raises(SweepError, match="121 cells"):
        SweepPlan.make(base(), [SweepAxis("seed", tuple(range(11))), parse_vary(f"ref1={strengths}")])


def test_estimates_multiply_the_last_reported_cost() -> None:
    plan = SweepPlan.make(base(), [parse_vary("creativity=raw,low,medium")])
    assert plan.estimate(0.0045) == pytest.approx(0.0135)
    assert plan.estimate(None) is None
    assert estimate_batch(4, 0.01) == pytest.approx(0.04)


def test_sweep_tags_and_parents_survive_the_record_round_trip() -> None:
    tag = SweepTag("4b2c7c1e-0000-4000-8000-000000000001", (SweepAxis("ref1", (-2.0, 0.0, 2.0)),), (1,))
    record = GenerationRecord(
        prompt="p", references=(ReferenceRecord(image="x", strength=1.0, parent="abc-123"),), sweep=tag
    )
    again = parse_record(record.to_json())
    assert again.sweep == tag and again.references[0].parent == "abc-123"


@pytest.mark.parametrize(
    "raw",
    [
        {"id": "../../etc", "axes": [{"name": "seed", "values": [1]}]},
        {"id": "ok", "axes": [{"name": "cfg", "values": [1]}]},
        {"id": "ok", "axes": [{"name": "seed", "values": [1]}], "place": [5]},
        {"id": "ok", "axes": [{"name": "seed", "values": ["x"]}]},
        {"id": "ok", "axes": []},
        "not a sweep",
    ],
)
def test_a_hostile_sweep_tag_is_dropped_not_trusted(raw: object) -> None:
    record = parse_record({"prompt": "p", "sweep": raw, "references": [{"image": "x", "parent": "a/../b"}]})
    assert record.sweep is None and record.prompt == "p"
    assert record.references[0].parent is None


def test_a_sheet_says_only_what_every_cell_shared(tmp_path: Path) -> None:
    """The sheet's record (and the parameters line other tools read) kept the request's
    own seed, creativity and strengths, which no cell used when they were axes: "Seed:
    1254672012 … Creativity: medium" on a seed by creativity sheet, and Use all set them."""
    from krea_desktop.library import metadata

    cell_image = tmp_path / "cell.png"
    Image.new("RGB", (64, 64), (250, 250, 0)).save(cell_image)
    axes = (SweepAxis("seed", (1, 2)), SweepAxis("creativity", ("raw", "high")))
    composed = GenerationRecord(
        prompt="a fox in snow",
        ratio="1:1",
        seed=1254672012,
        creativity="medium",
        references=(ReferenceRecord("u1", 0.7, "one.png"), ReferenceRecord("u2", -0.5, "two.png")),
    )
    cells = [SheetCell((i % 2, i // 2), f"c{i}", cell_image) for i in range(4)]
    with Library(tmp_path / "lib") as lib:
        entry = sheet_module.save_sheet(lib, composed, SweepTag("sw1", axes), cells, (64, 64))
        kept = metadata.read_record(entry.path)
        line = metadata.to_a1111(kept)
        assert (entry.seed, entry.creativity) == (None, None)
    assert (kept.seed, kept.creativity, kept.prompt) == (None, None, "a fox in snow")
    assert [r.strength for r in kept.references] == [0.7, -0.5]  # not axes: shared by every cell
    assert "Seed:" not in line and "Creativity:" not in line and "Ratio:" not in line
    by_strength = GenerationRecord(
        prompt="p", seed=7, references=(ReferenceRecord("u1", 0.7),), sweep=SweepTag("s", (SweepAxis("ref1", (1.0,)),))
    )
    assert by_strength.shared_by_cells().references[0].strength is None
    assert by_strength.shared_by_cells().seed == 7
    cell = by_strength.replace(sweep=SweepTag("s", by_strength.sweep.axes, (0,)))  # type: ignore[union-attr]
    assert cell.shared_by_cells() is cell


def test_a_sheet_is_drawn_again_when_a_cell_it_marked_failed_is_collected_later(tmp_path: Path) -> None:
    """A sweep cut off (its window closed, Ctrl+C) left cells whose images a later run
    collected: the saved sheet, the one exported and shared, still said they failed."""
    from krea_desktop.library.sheet import redraw_with_late_cells, save_sheet, sheet_cells_of

    axes = (SweepAxis("seed", (1, 2, 3)),)
    tag = SweepTag("sw-late", axes)
    composed = GenerationRecord(prompt="a fox in snow", ratio="1:1")

    def cell_image(i: int) -> GeneratedImage:
        buf = io.BytesIO()
        Image.new("RGB", (64, 64), (40 * i, 200, 90)).save(buf, "PNG")
        record = composed.replace(seed=i + 1, sweep=SweepTag(tag.id, axes, (i,)))
        return GeneratedImage(f"t{i}", f"img-{i}", buf.getvalue(), "PNG", 64, 64, seed=i + 1, record=record)

    closed = "The window was closed before it was made."
    with Library(tmp_path / "lib") as lib:
        first = lib.save(cell_image(0))
        save_sheet(lib, composed, tag, [SheetCell((0,), first.image_uuid, first.path), SheetCell((1,), error=closed),
                                        SheetCell((2,), error=closed)], (64, 64))  # fmt: skip
        assert redraw_with_late_cells(lib, tag.id) is None  # nothing new
        lib.save(cell_image(1))  # collected by the next run
        sheet = redraw_with_late_cells(lib, tag.id)
        assert sheet is not None
        cells = {c.place: c for c in sheet_cells_of(sheet.record)}
        assert cells[(0,)].image_uuid == "img-0" and cells[(1,)].image_uuid == "img-1"
        assert cells[(2,)].error == closed and cells[(2,)].image_uuid is None
        assert [e.image_uuid for e in lib.sweep_entries(tag.id)].count(sheet.image_uuid) == 1  # in the old one's place
        assert redraw_with_late_cells(lib, tag.id) is None


def _cell(tag: SweepTag, place: int, name: str, colour: tuple[int, int, int]) -> GeneratedImage:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buf, "PNG")
    record = GenerationRecord(prompt="a fox", ratio="1:1", seed=place + 1, sweep=SweepTag(tag.id, tag.axes, (place,)))
    return GeneratedImage(f"t{place}", name, buf.getvalue(), "PNG", 64, 64, seed=place + 1, record=record)


def test_a_sheet_drawn_again_keeps_each_cell_it_showed_when_a_place_has_two_images(tmp_path: Path) -> None:
    """A service that sends two images for one cell's task leaves both in the library (paid
    for): drawn again, the sheet lost the one it showed and drew the cell as not made."""
    from krea_desktop.library.sheet import redraw_with_late_cells, save_sheet, sheet_cells_of

    tag = SweepTag("sw-two", (SweepAxis("seed", (1, 2)),))
    with Library(tmp_path / "lib") as lib:
        shown = lib.save(_cell(tag, 0, "img-0", (255, 0, 0)))
        lib.save(_cell(tag, 0, "img-0b", (0, 0, 255)))  # a second image for the same cell
        cells = [SheetCell((0,), shown.image_uuid, shown.path), SheetCell((1,), error="closed")]
        save_sheet(lib, GenerationRecord(prompt="a fox"), tag, cells, (64, 64))
        lib.save(_cell(tag, 1, "img-1", (0, 255, 0)))  # collected later
        sheet = redraw_with_late_cells(lib, tag.id)
        assert sheet is not None
        assert [c.image_uuid for c in sheet_cells_of(sheet.record)] == ["img-0", "img-1"]
        with Image.open(sheet.path) as picture:
            cw, ch = sheet_module.cell_size(64, 64)
            top = sheet_module.MARGIN + 34 + 56
            assert picture.convert("RGB").getpixel((sheet_module.MARGIN + cw // 2, top + ch // 2)) == (255, 0, 0)


def test_two_cells_collected_at_once_are_both_drawn_into_the_sheet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each collected cell draws the sheet again, on a worker of its own: the one that read
    the library first could save last, without the other's cell."""
    import threading

    from krea_desktop.library.sheet import redraw_with_late_cells, save_sheet, sheet_cells_of

    tag = SweepTag("sw-race", (SweepAxis("seed", (1, 2, 3)),))
    render = sheet_module.render
    drawing, other_saved = threading.Event(), threading.Event()

    def slow_first(*args: object, **kwargs: object) -> Image.Image:
        picture = render(*args, **kwargs)  # type: ignore[arg-type]
        if threading.current_thread().name == "first":
            drawing.set()
            other_saved.wait(0.5)  # the other redraw goes on meanwhile, if it can
        return picture

    with Library(tmp_path / "lib") as lib:
        first = lib.save(_cell(tag, 0, "img-0", (255, 0, 0)))
        save_sheet(lib, GenerationRecord(prompt="a fox"), tag, [SheetCell((0,), first.image_uuid, first.path),
                   SheetCell((1,), error="closed"), SheetCell((2,), error="closed")], (64, 64))  # fmt: skip
        monkeypatch.setattr(sheet_module, "render", slow_first)
        lib.save(_cell(tag, 1, "img-1", (0, 255, 0)))
        worker = threading.Thread(target=redraw_with_late_cells, args=(lib, tag.id), name="first")
        worker.start()
        assert drawing.wait(10)
        lib.save(_cell(tag, 2, "img-2", (0, 0, 255)))
        redraw_with_late_cells(lib, tag.id)
        other_saved.set()
        worker.join(10)
        sheet = lib.get_by_uuid(sheet_module.sheet_uuid(tag.id))
        assert sheet is not None
        assert [c.image_uuid for c in sheet_cells_of(sheet.record)] == ["img-0", "img-1", "img-2"]


def test_the_sheet_keeps_a_failed_cells_place_in_its_colour(tmp_path: Path) -> None:
    cell_image = tmp_path / "cell.png"
    Image.new("RGB", (200, 100), (250, 250, 0)).save(cell_image)
    axes = (SweepAxis("ref1", (-1.0, 1.0)), SweepAxis("creativity", ("raw", "high")))
    cells = [
        SheetCell((0, 0), "a", cell_image),
        SheetCell((1, 0), "b", cell_image),
        SheetCell((0, 1), error="The service refused the task."),
        SheetCell((1, 1), "d", cell_image),
    ]
    picture = render(axes, cells, (200, 100), "a red fox")
    cw, ch = sheet_module.cell_size(200, 100)
    left = sheet_module.MARGIN + 150
    top = sheet_module.MARGIN + 34 + 56

    def centre(column: int, row: int) -> tuple[int, int]:
        return left + column * (cw + sheet_module.GAP) + cw // 2, top + row * (ch + sheet_module.GAP) + ch - 8

    assert picture.getpixel(centre(0, 0)) == (250, 250, 0)
    assert picture.getpixel(centre(1, 1)) == (250, 250, 0)
    assert picture.getpixel(centre(0, 1)) == FAILED  # the failed cell, in its own place


def test_the_sheet_names_the_references_and_a_long_name_stays_clear_of_the_cells() -> None:
    axes = (SweepAxis("creativity", ("raw", "high")), SweepAxis("ref1", (-1.0, 1.0)))
    names = ("a very long…e image.png",)
    unnamed, named = render(axes, [], (1024, 1024), "a red fox"), render(axes, [], (1024, 1024), "a red fox", names)
    top = sheet_module.MARGIN + 34 + 56

    def cells_left(picture: Image.Image) -> int:
        row = [picture.getpixel((x, top + 4)) for x in range(picture.width)]
        return row.index(sheet_module.WAITING)

    # The names' column: at least 150 px, or as wide as its title ("Reference 1 strength").
    plain = sheet_module.named_axis_title("ref1", ())
    least = max(150, math.ceil(sheet_module._font(14).getlength(plain)) + 16)
    assert cells_left(unnamed) == sheet_module.MARGIN + least
    left = cells_left(named)
    assert left > sheet_module.MARGIN + least  # the names' column is as wide as its title
    # Where the second axis's title is written, nothing but background just left of the cells.
    band = named.crop((left - 12, top - 24, left, top))
    assert {band.getpixel((x, y)) for x in range(band.width) for y in range(band.height)} == {sheet_module.BACKGROUND}
    assert named.size[0] - unnamed.size[0] == left - cells_left(unnamed)


def test_a_sheets_reference_names_are_read_short_whatever_the_file_says() -> None:
    def names_of(raw: object) -> tuple[str, ...]:
        return sheet_module.sheet_reference_names_of(GenerationRecord(extras={"sheet_reference_names": raw}))

    assert names_of(["fox.png", ""]) == ("fox.png", "")
    assert names_of("fox.png") == () and names_of(None) == ()
    long = names_of(["x" * 10_000 + ".png", 7] + ["a.png"] * 20)
    assert len(long) == 10 and long[1] == ""
    assert len(long[0]) == wording.REFERENCE_NAME_LENGTH and long[0].endswith(".png")


def test_a_one_column_sheet_is_as_wide_as_its_axis_title() -> None:
    axes = (SweepAxis("ref10", (1.0,)),)
    names = ("",) * 9 + ("IMG_20240101…3456789.jpg",)
    picture = render(axes, [], (576, 1024), "", names)
    title = "Reference 10 (IMG_20240101…3456789.jpg) strength"
    assert picture.width >= 2 * sheet_module.MARGIN + sheet_module._font(14).getlength(title)


def saved(library: Library, uuid: str, parents: tuple[str, ...] = ()) -> int:
    image = Image.new("RGB", (8, 8), (len(uuid) * 10 % 255, 0, 0))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    record = GenerationRecord(
        prompt=uuid, references=tuple(ReferenceRecord(image=p, strength=0.5, parent=p) for p in parents)
    )
    entry = library.save(GeneratedImage("t-" + uuid, uuid, buf.getvalue(), "PNG", 8, 8, 1, record=record))
    return entry.id


def test_the_lineage_index_follows_saves_deletes_and_undo(tmp_path: Path) -> None:
    with Library(tmp_path) as library:
        a = saved(library, "aaa")
        b = saved(library, "bbb", ("aaa",))
        c = saved(library, "ccc", ("bbb", "aaa"))
        assert library.parents(c) == [("bbb", 0.5), ("aaa", 0.5)]
        assert sorted(library.descendants(a)) == sorted([b, c])
        assert sorted(library.ancestors(c)) == sorted([a, b])
        assert sorted(child for child, _ in library.children("aaa")) == sorted([b, c])
        removed = library.remove([b])
        assert library.parents(b) == [] and library.descendants(a) == [c]
        library.restore(removed)
        assert sorted(library.descendants(a)) == sorted([b, c])


def test_a_schema_1_library_gains_lineage_and_sweeps_without_losing_a_row(tmp_path: Path) -> None:
    with Library(tmp_path) as library:
        saved(library, "aaa")
        saved(library, "bbb", ("aaa",))
    # Make it what an earlier version wrote: schema 1, without the new columns and table.
    conn = sqlite3.connect(tmp_path / "library.sqlite")
    conn.executescript(
        """
        DROP TRIGGER images_count_insert; DROP TRIGGER images_count_delete; DROP TABLE image_count;
        DROP TRIGGER images_lineage_insert; DROP TRIGGER images_lineage_delete; DROP TABLE lineage;
        DROP INDEX images_by_sweep; DROP INDEX images_by_content;
        ALTER TABLE images DROP COLUMN sweep_id; ALTER TABLE images DROP COLUMN content_sha256;
        PRAGMA user_version = 1;
        """
    )
    conn.close()
    with Library(tmp_path) as library:
        assert library.count() == 2  # the kept count starts from the rows there were
        saved(library, "ccc")
        assert library.count() == 3
        (version,) = library._conn().execute("PRAGMA user_version").fetchone()
        assert version == SCHEMA_VERSION
        bbb = library.get_by_uuid("bbb")
        aaa = library.get_by_uuid("aaa")
        assert bbb is not None and aaa is not None
        assert library.descendants(aaa.id) == [bbb.id]  # the references already indexed


def test_a_copy_is_found_by_its_bytes_and_an_export_by_its_embedded_uuid(tmp_path: Path) -> None:
    with Library(tmp_path / "lib") as library:
        a = saved(library, "aaa")
        entry = library.get(a)
        assert entry is not None
        digest = hashlib.sha256(entry.path.read_bytes()).hexdigest()
        assert library.find_image(sha256=digest) == entry
        assert library.find_image(image_uuid="aaa") == entry
        assert library.find_image(path=entry.path) == entry
        assert library.find_image(path=tmp_path / "elsewhere.png", sha256="0" * 64) is None


def test_an_exported_copy_in_another_format_is_known_by_its_embedded_imageuuid(tmp_path: Path) -> None:
    from krea_desktop.library import metadata
    from krea_desktop.library.inputs import decode_image
    from krea_desktop.library.lineage import parent_of

    with Library(tmp_path / "lib") as library:
        entry = library.get(saved(library, "aaa"))
        assert entry is not None
        buf = io.BytesIO()
        Image.open(entry.path).convert("RGB").save(buf, "JPEG", quality=80)  # other bytes altogether
        exported = metadata.embed(buf.getvalue(), "JPG", entry.record)
        loaded = decode_image(exported, "exported.jpg")
        assert loaded.origin_uuid == "aaa"
        assert parent_of(library, loaded) == "aaa"
        stranger = decode_image(buf.getvalue(), "stripped.jpg")  # no record, other bytes: no parent
        assert parent_of(library, stranger) is None


@pytest.mark.parametrize("text", ["café Müller", "señor Zürich", "Ελλάδα", "Москва"])
def test_the_sheet_writes_accents_greek_and_cyrillic_as_letters_not_boxes(text: str) -> None:
    font = sheet_module._font(20)
    missing = bytes(font.getmask("\ue000"))  # a private-use character: no font has it, so its box
    for ch in set(text) - {" "}:
        assert bytes(font.getmask(ch)) != missing, ch


def test_a_prompt_over_several_lines_is_one_line_on_the_sheet() -> None:
    axes = (SweepAxis("seed", (1, 2)),)
    one = render(axes, [], (1024, 1024), "a fox wearing a scarf in the snow")
    several = render(axes, [], (1024, 1024), "a fox\nwearing a scarf\n  in the snow")
    assert one.tobytes() == several.tobytes()

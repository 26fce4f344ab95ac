"""Exporting another tool's image: ComfyUI's graphs kept whatever the format (text chunks
in a PNG, EXIF Make and Model in a WEBP or JPEG, where ComfyUI's WEBP saver writes them),
and the parameters line made for it holds that tool's real steps, sampler and CFG."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from krea_desktop.api.record import GenerationRecord
from krea_desktop.library import metadata
from krea_desktop.library.export import export_image
from krea_desktop.library.readers import read_foreign
from krea_desktop.library.readers.a1111 import parse_a1111
from krea_desktop.library.recall import entry_for_file
from krea_desktop.library.store import LibraryEntry

CORPUS = Path(__file__).resolve().parents[1] / "corpus"

MAKE, MODEL, EXIF_IFD, USER_COMMENT = 0x010F, 0x0110, 0x8769, 0x9286

API_GRAPH = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 777, "steps": 20, "cfg": 8, "sampler_name": "euler",
          "scheduler": "normal", "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
          "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 48, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "comfy positive", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "comfy negative", "clip": ["4", 1]}},
}  # fmt: skip
PROMPT = json.dumps(API_GRAPH)
WORKFLOW = json.dumps({"nodes": [{"id": 3, "type": "KSampler"}], "links": [], "version": 0.4})


def entry_of(path: Path) -> LibraryEntry:
    return entry_for_file(path, metadata.read_record(path))


def comfy_webp(path: Path, workflow: str = WORKFLOW) -> Path:
    """A WEBP as ComfyUI's SaveAnimatedWEBP writes it: Model = "prompt:" + the API graph,
    Make = "workflow:" + the editor's graph."""
    image = Image.new("RGB", (64, 48), (30, 60, 90))
    exif = image.getexif()
    exif[MODEL] = "prompt:" + PROMPT
    exif[MAKE] = "workflow:" + workflow
    image.save(path, "WEBP", exif=exif)
    return path


def comfy_png(path: Path) -> Path:
    info = PngInfo()
    info.add_text("prompt", PROMPT)
    info.add_text("workflow", WORKFLOW)
    Image.new("RGB", (64, 48), (30, 60, 90)).save(path, "PNG", pnginfo=info)
    return path


def pillow_read(path: Path) -> tuple[dict[str, Any], Image.Exif]:
    with Image.open(path) as im:
        im.load()
        return dict(im.info), im.getexif()


def user_comment(path: Path) -> str:
    """The EXIF UserComment as A1111 (piexif) reads it: "UNICODE\\0" and UTF-16BE."""
    _, exif = pillow_read(path)
    raw = exif.get_ifd(EXIF_IFD)[USER_COMMENT]
    assert raw[:8] == b"UNICODE\x00"
    return raw[8:].decode("utf-16-be")


def settings_line(text: str) -> str:
    return text.rsplit("\n", 1)[1]


# --- ComfyUI's graphs ------------------------------------------------------------------------


def test_a_comfyui_webp_exported_as_png_keeps_its_graphs_as_text_chunks(tmp_path: Path) -> None:
    source = comfy_webp(tmp_path / "comfy.webp")
    out = export_image(entry_of(source), tmp_path / "shared.png", "PNG")
    info, _ = pillow_read(out)
    assert info["prompt"] == PROMPT and info["workflow"] == WORKFLOW
    assert "parameters" not in info  # ComfyUI's own texts speak for it, as for its PNG
    record = metadata.read_record(out)
    assert record is not None and record.extras["source"] == "ComfyUI" and record.prompt == "comfy positive"


@pytest.mark.parametrize("make", [comfy_webp, comfy_png], ids=["from-webp", "from-png"])
def test_a_comfyui_image_exported_as_webp_keeps_its_graphs_in_exif_make_and_model(tmp_path: Path, make: Any) -> None:
    source = make(tmp_path / ("comfy.webp" if make is comfy_webp else "comfy.png"))
    out = export_image(entry_of(source), tmp_path / "shared.webp", "WEBP")
    _, exif = pillow_read(out)
    assert exif[MAKE] == "workflow:" + WORKFLOW
    assert exif[MODEL] == "prompt:" + PROMPT
    # ComfyUI's reader, given only what ComfyUI itself reads (not this app's record).
    found = metadata._scan(out.read_bytes(), metadata.MAX_JSON)
    assert found is not None
    theirs = read_foreign(found)
    assert theirs is not None and theirs["source"] == "ComfyUI" and theirs["prompt"] == "comfy positive"
    assert theirs["foreign"]["steps"] == 20 and theirs["foreign"]["sampler"] == "euler"


def test_a_comfyui_webp_exported_twice_still_carries_its_graphs(tmp_path: Path) -> None:
    first = export_image(entry_of(comfy_webp(tmp_path / "comfy.webp")), tmp_path / "first.webp", "WEBP")
    assert metadata.tool_texts(first.read_bytes()) == {"workflow": WORKFLOW, "prompt": PROMPT}
    again = export_image(entry_of(first), tmp_path / "again.png", "PNG")
    info, _ = pillow_read(again)
    assert info["prompt"] == PROMPT and info["workflow"] == WORKFLOW


def test_a_comfyui_image_exported_as_jpeg_keeps_its_graphs_in_exif_make_and_model(tmp_path: Path) -> None:
    out = export_image(entry_of(comfy_webp(tmp_path / "comfy.webp")), tmp_path / "shared.jpg", "JPG")
    _, exif = pillow_read(out)
    assert exif[MAKE] == "workflow:" + WORKFLOW and exif[MODEL] == "prompt:" + PROMPT
    back = export_image(entry_of(out), tmp_path / "back.png", "PNG")
    info, _ = pillow_read(back)
    assert info["prompt"] == PROMPT and info["workflow"] == WORKFLOW


def test_a_workflow_too_large_for_a_jpeg_segment_is_left_out_of_it_alone(tmp_path: Path) -> None:
    notes = [{"id": i, "type": "Note", "widgets_values": ["x" * 1000]} for i in range(80)]
    workflow = json.dumps({"nodes": notes, "links": []})  # 80 KB: more than a JPEG segment holds
    out = export_image(entry_of(comfy_webp(tmp_path / "big.webp", workflow)), tmp_path / "big.jpg", "JPG")
    _, exif = pillow_read(out)
    assert MAKE not in exif and exif[MODEL] == "prompt:" + PROMPT
    webp = export_image(entry_of(tmp_path / "big.webp"), tmp_path / "big-again.webp", "WEBP")
    assert pillow_read(webp)[1][MAKE] == "workflow:" + workflow  # a WEBP chunk has room for it


def test_a_prompt_text_that_is_no_graph_is_not_written_as_exif_model(tmp_path: Path) -> None:
    source = CORPUS / "easydiffusion" / "ed.png"  # its "prompt" text is the prompt itself
    assert not pillow_read(source)[0]["prompt"].startswith("{")
    out = export_image(entry_of(source), tmp_path / "shared.webp", "WEBP")
    _, exif = pillow_read(out)
    assert MODEL not in exif and MAKE not in exif


# --- the parameters line made for another tool's image --------------------------------------


@pytest.mark.parametrize("fmt", ["JPG", "WEBP"])
def test_a_comfyui_images_line_holds_its_own_steps_sampler_and_cfg(tmp_path: Path, fmt: str) -> None:
    out = export_image(entry_of(comfy_png(tmp_path / "comfy.png")), tmp_path / f"shared.{fmt.lower()}", fmt)
    text = user_comment(out)
    line = settings_line(text)
    assert line.startswith("Steps: 20, Sampler: euler, Schedule type: normal, CFG scale: 8, Seed: 777, ")
    assert "n/a" not in line and "References" not in line
    back = parse_a1111(text)
    assert back["foreign"]["steps"] == 20 and back["foreign"]["sampler"] == "euler"
    assert back["foreign"]["scheduler"] == "normal" and back["foreign"]["cfg"] == 8


def test_an_invokeai_images_jpeg_line_holds_its_own_settings(tmp_path: Path) -> None:
    source = CORPUS / "invokeai" / "v3.png"
    foreign = entry_of(source).record.extras["foreign"]
    out = export_image(entry_of(source), tmp_path / "shared.jpg", "JPG")
    back = parse_a1111(user_comment(out))
    assert "n/a" not in settings_line(user_comment(out))
    for key in ("steps", "sampler", "cfg"):
        assert back["foreign"][key] == foreign[key]


def test_a_png_export_without_the_tools_own_texts_has_its_real_settings(tmp_path: Path) -> None:
    """A Fooocus JPEG keeps its settings as JSON in the UserComment, which a PNG does not
    carry: the PNG has the line made from the record."""
    source = CORPUS / "fooocus" / "fooocus.jpg"
    foreign = entry_of(source).record.extras["foreign"]
    out = export_image(entry_of(source), tmp_path / "shared.png", "PNG")
    info, _ = pillow_read(out)
    line = settings_line(info["parameters"])
    assert line.startswith(f"Steps: {foreign['steps']}, Sampler: {foreign['sampler']}, ")
    assert "n/a" not in line and "References" not in line


def test_a_foreign_seed_beyond_the_models_is_written_as_the_tools_seed() -> None:
    record = GenerationRecord(
        prompt="p", extras={"source": "ComfyUI", "foreign": {"seed": "156680208700286", "steps": 20}}
    )
    line = settings_line(metadata.to_a1111(record))
    assert "Seed: 156680208700286" in line and line.startswith("Steps: 20, Sampler: n/a, ")


def test_another_tools_image_whose_model_is_unknown_names_no_model() -> None:
    # A ComfyUI image made with an API node (no model loader the reader knows): exported,
    # its line said "Model: Krea 2 Medium", crediting the picture to the wrong model.
    record = GenerationRecord(prompt="p", width=160, height=90, extras={"source": "ComfyUI", "foreign": {}})
    line = settings_line(metadata.to_a1111(record))
    assert line == "Steps: n/a, Sampler: n/a, Size: 160x90"
    named = GenerationRecord(prompt="p", model="flux1-dev.safetensors", extras={"source": "ComfyUI"})
    assert "Model: flux1-dev.safetensors" in settings_line(metadata.to_a1111(named))


def test_a_copy_an_earlier_version_credited_to_this_model_is_mended_when_exported_again(tmp_path: Path) -> None:
    # The line it wrote then is this app's: made anew, without the model; kept as the
    # other tool's own, it went on saying "Model: Krea 2 Medium" in every later copy.
    record = GenerationRecord(
        prompt="p", width=160, height=90, extras={"source": "ComfyUI", "foreign": {"steps": 20, "sampler": "euler"}}
    )
    earlier = "p\nSteps: 20, Sampler: euler, Size: 160x90, Model: Krea 2 Medium"
    buf = io.BytesIO()
    Image.new("RGB", (160, 90)).save(buf, "JPEG")
    data = metadata.embed(buf.getvalue(), "JPG", record, carried={"parameters": earlier})
    assert "parameters" not in metadata.tool_texts(data)
    again = tmp_path / "again.jpg"
    again.write_bytes(metadata.embed(buf.getvalue(), "JPG", record, carried=metadata.tool_texts(data)))
    assert settings_line(user_comment(again)) == "Steps: 20, Sampler: euler, Size: 160x90"


def test_a_copy_carries_another_tools_texts_within_what_pillow_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A PNG of 130 KB whose four compressed texts inflate to 32 MB each was exported as a
    # 134 MB file that Pillow then refused ("Too much memory used in text chunks").
    from PIL import PngImagePlugin

    assert metadata.MAX_CARRIED_TOTAL + 8 * 1024 * 1024 <= PngImagePlugin.MAX_TEXT_MEMORY
    monkeypatch.setattr(metadata, "MAX_CARRIED_TOTAL", len(PROMPT) + len(WORKFLOW) + 5000)
    info = PngInfo()
    info.add_text("prompt", PROMPT)
    for n in range(4):
        info.add_text(f"notes{n}", "x" * 3000, zip=True)
    info.add_text("workflow", WORKFLOW)
    source = tmp_path / "comfy-with-notes.png"
    Image.new("RGB", (64, 48), (30, 60, 90)).save(source, "PNG", pnginfo=info)
    out = export_image(entry_of(source), tmp_path / "shared.png", "PNG")
    texts, _ = pillow_read(out)
    # The graphs readers take parameters from come first; then what fits of the rest.
    assert texts["prompt"] == PROMPT and texts["workflow"] == WORKFLOW
    assert sum(key.startswith("notes") for key in texts) == 1


def test_our_own_images_line_is_unchanged() -> None:
    record = GenerationRecord(prompt="a lighthouse", seed=7, width=8, height=8, app="krea-desktop", version="1.0")
    assert metadata.to_a1111(record) == (
        "a lighthouse\nSteps: n/a, Sampler: n/a, Seed: 7, Size: 8x8, Model: Krea 2 Medium, References: 0, "
        "Version: krea-desktop 1.0"
    )


def test_the_line_an_earlier_version_made_for_another_tools_image_is_not_carried(tmp_path: Path) -> None:
    """A JPEG exported before the line held the tool's settings: its "Steps: n/a" line is
    this app's, made anew on the next export, not the tool's to carry."""
    record = metadata.read_record(comfy_png(tmp_path / "comfy.png"))
    assert record is not None
    earlier = (
        "comfy positive\nNegative prompt: comfy negative\n"
        "Steps: n/a, Sampler: n/a, Seed: 777, Size: 64x48, Model: v1-5.safetensors, References: 0"
    )
    buf = io.BytesIO()
    Image.new("RGB", (64, 48)).save(buf, "JPEG")
    data = metadata.embed(buf.getvalue(), "JPG", record, carried={"parameters": earlier})
    assert "parameters" not in metadata.tool_texts(data)

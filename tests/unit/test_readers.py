"""Recall from other tools' files: the corpus in tests/corpus, built by make_corpus.py."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from krea_desktop.library.metadata import read_record
from krea_desktop.library.readers.base import foreign_seed
from tests.corpus.make_corpus import HERE, SAMPLES, Sample, jpeg, png


def recalled(path_or_bytes: Path | bytes) -> dict[str, Any]:
    record = read_record(path_or_bytes)
    assert record is not None
    return {
        "source": record.extras.get("source"),
        "prompt": record.prompt,
        "negative_prompt": record.negative_prompt,
        "seed": record.seed,
        "width": record.width,
        "height": record.height,
        "model": record.model,
        "foreign": record.extras.get("foreign") or {},
    }


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.path for s in SAMPLES])
def test_corpus_file_is_what_the_script_builds(sample: Sample) -> None:
    assert (HERE / sample.path).read_bytes() == sample.build()


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.path for s in SAMPLES])
def test_recall_from_every_tool(sample: Sample) -> None:
    got = recalled(HERE / sample.path)
    expected = dict(sample.expected)
    foreign = expected.pop("foreign")
    assert {k: got[k] for k in expected} == expected
    assert {k: got["foreign"].get(k) for k in foreign} == foreign


def test_foreign_settings_survive_the_json_round_trip() -> None:
    from krea_desktop.api.record import parse_record

    record = read_record(HERE / "comfyui/api_and_workflow.png")
    assert record is not None
    assert parse_record(json.loads(json.dumps(record.to_json()))) == record


@pytest.mark.parametrize(
    "data",
    [
        png({"parameters": '{"prompt": "not a prompt", "seed": 5}'}),  # unknown JSON in parameters
        png({"parameters": "[1, 2, 3]"}),
        png({"prompt": json.dumps({"1": {"class_type": "SaveImage", "inputs": {}}})}),  # a graph without sampler
        png({"Comment": json.dumps({"Software": "x"})}),
        jpeg(json.dumps({"prompt": {"nested": True}})),
    ],
)
def test_raw_json_is_never_a_prompt(data: bytes) -> None:
    record = read_record(data)
    assert record is None or not record.has_prompt


def test_a_camera_caption_is_not_a_prompt() -> None:
    assert read_record(jpeg("Holiday in Rome")) is None


def test_size_falls_back_to_the_pixels() -> None:
    got = recalled(png({"parameters": "a prompt only"}))
    assert (got["prompt"], got["width"], got["height"]) == ("a prompt only", 4, 4)


def test_hostile_graphs_neither_hang_nor_raise() -> None:
    cyclic = {
        str(i): {
            "class_type": "KSampler",
            "inputs": {
                "positive": [str(i + 1), 0],
                "seed": [str(i + 1), 0],
                "latent_image": [str(i), 0],
                "model": [str(i), 0],
            },
        }
        for i in range(2000)
    }
    cyclic["2000"] = {"class_type": "X", "inputs": {"a": ["0", 0]}}
    deep = "[" * 100_000 + "]" * 100_000
    # A workflow whose sampler has two million inputs before the links it is asked for,
    # each looked up again at every hop (4 KB compressed: 35 s to read before).
    wide = {"id": 1, "type": "KSampler", "widgets_values": [0]}
    wide["inputs"] = [0] * 2_000_000 + [{"name": k, "link": 1} for k in ("conditioning", "positive", "model")]
    wide_workflow = {"nodes": [wide], "links": [[1, 1, 0, 1, 0, "X"]]}
    workflow = {
        "nodes": [{"id": 1, "type": "KSampler", "inputs": [{"name": "positive", "link": 1}]}],
        "links": [[1, 1, 0, 1, 1, "CONDITIONING"]],
    }
    start = time.perf_counter()
    for texts in (
        {"prompt": json.dumps(cyclic)},
        {"prompt": deep},
        {"workflow": json.dumps(workflow)},
        {"workflow": json.dumps(wide_workflow, separators=(",", ":"))},
        {"invokeai_metadata": deep},
        {"Dream": '"unterminated -s 5'},
        {"parameters": json.dumps({"sui_image_params": [1]})},
        {"Software": "NovelAI", "Comment": deep},
    ):
        read_record(png(texts))
    assert time.perf_counter() - start < 10


CONTROLNET_GRAPH = {
    "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
    "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse at dusk", "clip": ["1", 1]}},
    "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
    "4": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "canny.safetensors"}},
    "5": {
        "class_type": "ControlNetApplyAdvanced",
        "inputs": {"positive": ["2", 0], "negative": ["3", 0], "control_net": ["4", 0], "strength": 0.8},
    },
    "6": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 768, "batch_size": 1}},
    "8": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 123456789,
            "steps": 30,
            "cfg": 6.5,
            "sampler_name": "dpmpp_2m",
            "scheduler": "karras",
            "model": ["1", 0],
            "positive": ["5", 0],
            "negative": ["5", 1],
            "latent_image": ["6", 0],
        },
    },
}

GUIDER_GRAPH = {
    "1": {"class_type": "UNETLoader", "inputs": {"unet_name": "flux1-dev.safetensors"}},
    "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse at dusk", "clip": ["1", 1]}},
    "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
    "4": {
        "class_type": "CFGGuider",
        "inputs": {"model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "cfg": 6.5},
    },
    "5": {"class_type": "RandomNoise", "inputs": {"noise_seed": 123456789}},
    "6": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 1024, "height": 768, "batch_size": 1}},
    "7": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "dpmpp_2m"}},
    "8": {"class_type": "BasicScheduler", "inputs": {"scheduler": "karras", "steps": 30, "model": ["1", 0]}},
    "9": {
        "class_type": "SamplerCustomAdvanced",
        "inputs": {
            "noise": ["5", 0],
            "guider": ["4", 0],
            "sampler": ["7", 0],
            "sigmas": ["8", 0],
            "latent_image": ["6", 0],
        },
    },
}


@pytest.mark.parametrize("graph", [CONTROLNET_GRAPH, GUIDER_GRAPH], ids=["controlnet", "guider"])
def test_conditioning_node_with_a_lower_id_is_not_the_sampler(graph: dict[str, Any]) -> None:
    got = recalled(png({"prompt": json.dumps(graph)}))
    assert (got["prompt"], got["negative_prompt"], got["seed"]) == ("a lighthouse at dusk", "blurry", 123456789)
    assert (got["width"], got["height"]) == (1024, 768)
    assert {k: got["foreign"].get(k) for k in ("sampler", "scheduler", "steps", "cfg")} == {
        "sampler": "dpmpp_2m",
        "scheduler": "karras",
        "steps": 30,
        "cfg": 6.5,
    }


@pytest.mark.parametrize("seed", [2**63, 2**64 - 1])
def test_a_seed_beyond_the_models_is_kept_as_the_tools_own_and_not_recalled(seed: int) -> None:
    """ComfyUI's seeds go up to 2^64 - 1; Krea 2 Medium's to 2^63 - 1. Such a seed is shown
    as the other tool's setting, never put in the seed field."""
    graph = json.loads(json.dumps(CONTROLNET_GRAPH))
    graph["8"]["inputs"]["seed"] = seed
    a1111 = f"a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: {seed}, Size: 512x512, Model: sd15"
    for texts in ({"prompt": json.dumps(graph)}, {"parameters": a1111}):
        got = recalled(png(texts))
        assert got["seed"] is None
        assert got["foreign"]["seed"] == str(seed)


def test_a_negative_seed_is_a_random_one_neither_recalled_nor_shown() -> None:
    """-1 is how the other tools write "a random seed": there is no seed to show, and it is
    not one beyond the model's."""
    graph = json.loads(json.dumps(CONTROLNET_GRAPH))
    graph["8"]["inputs"]["seed"] = -1
    a1111 = "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: -1, Size: 512x512, Model: sd15"
    fooocus = json.dumps({"prompt": "a cat", "seed": "-1", "resolution": "(1024, 1024)"})
    for texts in (
        {"prompt": json.dumps(graph)},
        {"parameters": a1111},
        {"fooocus_scheme": "fooocus", "parameters": fooocus},
    ):
        got = recalled(png(texts))
        assert got["prompt"] in ("a cat", "a lighthouse at dusk")
        assert got["seed"] is None
        assert "seed" not in got["foreign"]
    # A record an earlier version kept with -1 as the tool's seed shows none either.
    assert foreign_seed({"foreign": {"seed": "-1"}}) is None
    assert foreign_seed({"foreign": {"seed": str(2**64 - 1)}}) == str(2**64 - 1)


def test_the_models_largest_seed_is_recalled() -> None:
    graph = json.loads(json.dumps(CONTROLNET_GRAPH))
    graph["8"]["inputs"]["seed"] = 2**63 - 1
    a1111 = f"a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: {2**63 - 1}, Size: 512x512, Model: sd15"
    for texts in ({"prompt": json.dumps(graph)}, {"parameters": a1111}):
        got = recalled(png(texts))
        assert got["seed"] == 2**63 - 1
        assert "seed" not in got["foreign"]


def _encoded_graph(positive: tuple[str, dict[str, Any]], negative: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    graph: dict[str, Any] = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "flux1-dev-fp8.safetensors"}},
        "2": {"class_type": positive[0], "inputs": {**positive[1], "clip": ["1", 1]}},
        "3": {"class_type": negative[0], "inputs": {**negative[1], "clip": ["1", 1]}},
        "4": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 1024, "height": 768, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {"seed": 99, "steps": 20, "cfg": 1, "sampler_name": "euler"}},
    }
    graph["5"]["inputs"].update(model=["1", 0], positive=["2", 0], negative=["3", 0], latent_image=["4", 0])
    return graph


@pytest.mark.parametrize(
    ("positive", "negative", "expected"),
    [
        (  # Flux: T5's text is the sentence as written
            ("CLIPTextEncodeFlux", {"clip_l": "fox, snow", "t5xxl": "a red fox in snow", "guidance": 3.5}),
            ("CLIPTextEncodeFlux", {"clip_l": "", "t5xxl": "", "guidance": 3.5}),
            ("a red fox in snow", None),  # blank boxes: no negative prompt
        ),
        (  # T5's box left empty: the prompt is the one in CLIP's
            ("CLIPTextEncodeFlux", {"clip_l": "a red fox in snow", "t5xxl": "", "guidance": 3.5}),
            ("CLIPTextEncode", {"text": "blurry"}),
            ("a red fox in snow", "blurry"),
        ),
        (
            ("CLIPTextEncodeSD3", {"clip_l": "a red fox", "clip_g": "a red fox", "t5xxl": "a red fox"}),
            ("CLIPTextEncodeSD3", {"clip_l": "blurry", "clip_g": "blurry", "t5xxl": "blurry"}),
            ("a red fox", "blurry"),
        ),
    ],
    ids=["flux", "sd3", "flux-t5-empty"],
)
def test_comfyuis_flux_and_sd3_text_encoders_give_the_prompt(
    positive: tuple[str, dict[str, Any]], negative: tuple[str, dict[str, Any]], expected: tuple[str, str | None]
) -> None:
    got = recalled(png({"prompt": json.dumps(_encoded_graph(positive, negative))}))
    assert (got["prompt"], got["negative_prompt"], got["seed"], got["width"]) == (*expected, 99, 1024)


def test_a_negative_made_by_zeroing_the_positive_is_no_negative_prompt() -> None:
    # Flux workflows often take the negative as ConditioningZeroOut of the positive: the
    # walk from the sampler's negative went through it to the positive's text, shown and
    # exported as "Negative prompt: <the prompt>".
    graph = _encoded_graph(("CLIPTextEncode", {"text": "a lighthouse in fog"}), ("CLIPTextEncode", {"text": "x"}))
    graph["6"] = {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["2", 0]}}
    graph["5"]["inputs"]["negative"] = ["6", 0]
    workflow = {
        "nodes": [
            {"id": 2, "type": "CLIPTextEncode", "inputs": [], "widgets_values": ["a lighthouse in fog"]},
            {"id": 6, "type": "ConditioningZeroOut", "inputs": [{"name": "conditioning", "link": 8}]},
            {
                "id": 5,
                "type": "KSampler",
                "inputs": [{"name": "positive", "link": 7}, {"name": "negative", "link": 9}],
                "widgets_values": [99, None, 20, 1.0, "euler", "simple", 1.0],
            },
        ],
        "links": [[7, 2, 0, 5, 0, "CONDITIONING"], [8, 2, 0, 6, 0, "CONDITIONING"], [9, 6, 0, 5, 1, "CONDITIONING"]],
    }
    for chunks in ({"prompt": json.dumps(graph)}, {"workflow": json.dumps(workflow)}):
        got = recalled(png(chunks))
        assert (got["prompt"], got["negative_prompt"]) == ("a lighthouse in fog", None), chunks.keys()


def test_an_image_of_a_hosted_models_api_node_gives_its_prompt_and_seed() -> None:
    # No sampler in the graph: the node takes the prompt and the seed itself. It gave
    # "made by ComfyUI" and nothing to recall.
    graph = {
        "1": {
            "class_type": "FluxProUltraImageNode",
            "inputs": {"prompt": "a lighthouse in fog at dawn", "seed": 1234, "aspect_ratio": "16:9", "raw": False},
        },
        "2": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["1", 0]}},
        "3": {"class_type": "Note", "inputs": {"text": "a note, not a prompt"}},
    }
    got = recalled(png({"prompt": json.dumps(graph)}))
    assert (got["source"], got["prompt"], got["seed"]) == ("ComfyUI", "a lighthouse in fog at dawn", 1234)
    # Linked from primitives, as they often are.
    graph["4"] = {"class_type": "PrimitiveStringMultiline", "inputs": {"value": "a heron at dusk"}}
    graph["5"] = {"class_type": "PrimitiveInt", "inputs": {"value": 77}}
    graph["1"]["inputs"].update(prompt=["4", 0], seed=["5", 0])
    got = recalled(png({"prompt": json.dumps(graph)}))
    assert (got["prompt"], got["seed"]) == ("a heron at dusk", 77)
    graph["1"]["inputs"]["prompt"] = ""  # nothing to take: no prompt made up
    assert recalled(png({"prompt": json.dumps(graph)}))["prompt"] in ("", None)


def test_a_graph_of_thousands_of_prompt_nodes_leading_nowhere_is_not_followed_through_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No sampler, and 20,000 nodes each with a prompt linked to the next: each followed up
    # to 32 links, a 4 MB graph of them took 12 s to read. The first few are looked at.
    from krea_desktop.library.readers import comfyui

    graph: dict[str, Any] = {
        str(i): {"class_type": "Relay", "inputs": {"prompt": [str(i + 1), 0]}} for i in range(20_000)
    }
    followed: list[object] = []
    find = comfyui._ApiGraph.find

    def counting(self: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        followed.append(value)
        return find(self, value, *args, **kwargs)

    monkeypatch.setattr(comfyui._ApiGraph, "find", counting)
    got = recalled(png({"prompt": json.dumps(graph)}))
    assert got["source"] == "ComfyUI" and got["prompt"] in ("", None)
    assert len(followed) == comfyui._MAX_PROMPT_NODES
    # Among the first, the one whose prompt leads to a text gives it.
    graph["20000"] = {"class_type": "PrimitiveStringMultiline", "inputs": {"value": "a heron at dusk"}}
    graph["3"]["inputs"]["prompt"] = ["20000", 0]
    assert recalled(png({"prompt": json.dumps(graph)}))["prompt"] == "a heron at dusk"


def test_a_prompt_the_api_graph_does_not_show_is_taken_from_the_editors_graph() -> None:
    # A text node of a kind the graph reader does not know (its text under a name of its
    # own); the editor's graph keeps it as the node's first widget value.
    graph = _encoded_graph(("FancyPromptNode", {"my_words": "a red fox in snow"}), ("FancyPromptNode", {}))
    workflow = {
        "nodes": [
            {"id": 2, "type": "FancyPromptNode", "inputs": [], "widgets_values": ["a red fox in snow"]},
            {"id": 5, "type": "KSampler", "inputs": [{"name": "positive", "link": 7}], "widgets_values": [99]},
        ],
        "links": [[7, 2, 0, 5, 0, "CONDITIONING"]],
    }
    got = recalled(png({"prompt": json.dumps(graph), "workflow": json.dumps(workflow)}))
    assert (got["source"], got["prompt"], got["seed"], got["width"]) == ("ComfyUI", "a red fox in snow", 99, 1024)


def test_a_graph_of_several_megabytes_is_read() -> None:
    """A large workflow (thousands of nodes) is several megabytes of JSON in each chunk."""
    graph = json.loads(json.dumps(CONTROLNET_GRAPH))
    for i in range(100, 6100):
        graph[str(i)] = {"class_type": "Note", "inputs": {"text": f"note {i} " + "x" * 300}}
    text = json.dumps(graph)
    assert 1.5 * 1024 * 1024 < len(text) < 3 * 1024 * 1024
    got = recalled(png({"prompt": text, "workflow": text}))
    assert (got["source"], got["prompt"], got["seed"]) == ("ComfyUI", "a lighthouse at dusk", 123456789)


def test_a_wide_node_is_not_walked_link_by_link(monkeypatch: pytest.MonkeyPatch) -> None:
    from krea_desktop.library.readers import comfyui

    follows = 0
    real_follow = comfyui._ApiGraph.follow

    def counting(self: comfyui._ApiGraph, value: Any) -> str | None:
        nonlocal follows
        follows += 1
        return real_follow(self, value)

    monkeypatch.setattr(comfyui._ApiGraph, "follow", counting)
    hub = {"model": ["1", 0], **{f"in{i}": ["4", 0] for i in range(20_000)}}  # 20,000 links back to itself
    graph = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a fox", "clip": ["1", 1]}},
        "4": {"class_type": "Hub", "inputs": hub},
        "8": {
            "class_type": "KSampler",
            "inputs": {"seed": 9, "model": ["4", 0], "scheduler": ["4", 0], "positive": ["2", 0]},
        },
    }
    got = recalled(png({"prompt": json.dumps(graph)}))
    assert (got["prompt"], got["seed"], got["model"]) == ("a fox", 9, "sd_xl_base_1.0.safetensors")
    assert "scheduler" not in got["foreign"]  # no scheduler anywhere behind the hub
    assert follows < 1000  # not one or more per link of the hub


def test_megabytes_of_json_that_no_tool_writes_are_not_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsed, 4 MB of "[{},{},...]" takes 25 times that, and each reader parsed its own
    text (the parameters twice): 0.7 s and 240 MB for a 16 KB PNG. A graph is parsed
    when it has the key every graph of its kind has; other tools' settings up to 1 MB."""
    from krea_desktop.library.readers import base

    junk = "[" + "{}," * 1_398_000 + "{}]"
    keys = ("parameters", "prompt", "workflow", "invokeai_metadata", "sd-metadata", "Comment")
    data = png(dict.fromkeys(keys, junk))
    parsed: list[int] = []
    real = base.json.loads
    monkeypatch.setattr(base.json, "loads", lambda text: parsed.append(len(text)) or real(text))
    record = read_record(data)
    assert record is None or (record.prompt is None and record.seed is None)
    assert parsed == []
    # A real graph of the same size is still read (ComfyUI's workflows run to megabytes).
    graph = json.loads(json.dumps(CONTROLNET_GRAPH))
    graph["99"] = {"class_type": "Note", "inputs": {"text": "x" * 3_000_000}}
    assert recalled(png({"prompt": json.dumps(graph)}))["prompt"] == "a lighthouse at dusk"
    assert max(parsed) > 3_000_000


# --- files as the tools write them, not as the corpus's helpers do --------------------------


def _pillow_file(fmt: str, exif: dict[int, Any]) -> bytes:
    from io import BytesIO

    from PIL import Image

    image = Image.new("RGB", (64, 48), (40, 90, 160))
    tags = image.getexif()
    for tag, value in exif.items():
        tags[tag] = value
    buf = BytesIO()
    image.save(buf, fmt, exif=tags)
    return buf.getvalue()


FOOOCUS_LOG = {  # what Fooocus 2.5 writes (modules/meta_parser.py)
    "adm_guidance": "(1.5, 0.8, 0.3)",
    "base_model": "juggernautXL_v8Rundiffusion",
    "guidance_scale": 4,
    "negative_prompt": "unrealistic",
    "performance": "Speed",
    "prompt": "a mountain lake at sunrise, café",
    "resolution": "(1152, 896)",
    "sampler": "dpmpp_2m_sde_gpu",
    "scheduler": "karras",
    "seed": "4206942069",
    "steps": 30,
    "version": "Fooocus v2.5.5",
}


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
@pytest.mark.parametrize("as_bytes", [False, True])
def test_fooocus_jpeg_and_webp_with_their_json_straight_in_the_user_comment(fmt: str, as_bytes: bool) -> None:
    """Fooocus writes its JSON into UserComment with no character code before it (a str,
    or UTF-8 bytes in newer forks): nothing was recalled from any of its JPEG or WEBP files."""
    text = json.dumps(FOOOCUS_LOG)
    data = _pillow_file(fmt, {0x9286: text.encode() if as_bytes else text, 0x0131: "Fooocus v2.5.5", 0x927C: "fooocus"})
    got = recalled(data)
    assert got["source"] == "Fooocus" and got["prompt"] == "a mountain lake at sunrise, café"
    assert (got["seed"], got["width"], got["height"]) == (4206942069, 1152, 896)


def test_a_comfyui_webp_keeps_its_graphs_in_exif_model_and_make() -> None:
    """ComfyUI's WEBP saver writes "prompt:" + the API graph as EXIF Model and
    "workflow:" + the editor's graph as Make: nothing was recalled."""
    graph = {
        "3": {"class_type": "KSampler", "inputs": {"seed": 156680208700286, "steps": 20, "cfg": 8.0,
              "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0, "model": ["4", 0],
              "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 768, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "purple galaxy bottle", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["4", 1]}},
    }  # fmt: skip
    data = _pillow_file("WEBP", {0x0110: "prompt:" + json.dumps(graph), 0x010F: 'workflow:{"nodes": [], "links": []}'})
    got = recalled(data)
    assert got["source"] == "ComfyUI" and got["prompt"] == "purple galaxy bottle"
    assert got["negative_prompt"] == "text, watermark" and got["seed"] == 156680208700286
    assert (got["width"], got["height"], got["foreign"]["steps"], got["foreign"]["cfg"]) == (512, 768, 20, 8.0)


def test_a_node_holding_both_prompts_gives_each_side_its_own() -> None:
    """Efficiency Nodes' loader holds "positive" and "negative": its positive prompt was
    recalled as the negative one, and the size was the file's, not the loader's latent."""
    efficiency = {
        "4": {"class_type": "Efficient Loader", "inputs": {"ckpt_name": "dreamshaper_8.safetensors",
              "positive": "a castle on a cliff, sunset", "negative": "blurry, lowres",
              "empty_latent_width": 512, "empty_latent_height": 768, "batch_size": 1}},
        "5": {"class_type": "KSampler (Efficient)", "inputs": {"seed": 1234, "steps": 25, "cfg": 7,
              "sampler_name": "euler", "scheduler": "normal", "denoise": 1, "model": ["4", 0],
              "positive": ["4", 1], "negative": ["4", 2], "latent_image": ["4", 3]}},
    }  # fmt: skip
    got = recalled(png({"prompt": json.dumps(efficiency)}))
    assert (got["prompt"], got["negative_prompt"]) == ("a castle on a cliff, sunset", "blurry, lowres")
    assert (got["width"], got["height"]) == (512, 768)
    styler = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl.safetensors"}},
        "2": {"class_type": "SDXLPromptStyler", "inputs": {"text_positive": "a red fox", "text_negative": "cartoon"}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": ["2", 0], "clip": ["1", 1]}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": ["2", 1], "clip": ["1", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
        "6": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": ["8", 0], "cfg": ["9", 0],
              "sampler_name": "euler", "scheduler": "normal", "denoise": 1, "model": ["1", 0],
              "positive": ["3", 0], "negative": ["4", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "PrimitiveInt", "inputs": {"value": 33}},
        "9": {"class_type": "PrimitiveFloat", "inputs": {"value": 5.5}},
    }  # fmt: skip
    got = recalled(png({"prompt": json.dumps(styler)}))
    assert (got["prompt"], got["negative_prompt"]) == ("a red fox", "cartoon")
    assert (got["foreign"]["steps"], got["foreign"]["cfg"]) == (33, 5.5)  # from primitive nodes


@pytest.mark.parametrize(
    "raw",
    [
        b"ASCII\x00\x00\x00" + b"a cat\nSteps: 20, Seed: 5",
        b"ASCII\x00\x00\x00" + "a café cat, 一只猫\nSteps: 20, Seed: 5".encode(),
        b"UNICODE\x00\xff\xfe"  # little-endian, said by its byte order mark, and one unit that is no character
        + "a café cat, 一只猫".encode("utf-16-le")
        + b"\x00\xd8"
        + "\nSteps: 20, Seed: 5".encode("utf-16-le"),
    ],
    ids=["ascii", "ascii-holding-utf8", "unicode-bom-and-a-lone-surrogate"],
)
def test_a_user_comment_in_a_less_common_encoding_is_read_as_written(raw: bytes) -> None:
    got = recalled(jpeg_with_user_comment(raw))
    assert got["seed"] == 5
    if "café" in raw.decode("utf-8", "replace") or raw.startswith(b"UNICODE"):
        assert got["prompt"].startswith("a café cat, 一只猫")


def jpeg_with_user_comment(raw: bytes) -> bytes:
    return _pillow_file("JPEG", {0x9286: raw})


def test_an_xmp_text_longer_than_a_record_is_refused_before_its_entities_are_resolved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Millions of "&amp;" in an XMP packet held Python's lock for seconds while they were
    resolved, whatever the text's length."""
    from krea_desktop.library import metadata

    resolved: list[int] = []
    unescape = metadata.html.unescape
    monkeypatch.setattr(metadata.html, "unescape", lambda s: resolved.append(len(s)) or unescape(s))
    found = metadata._Found()
    body = "&amp;" * 300_000
    packet = f"<x:xmpmeta><kd:parameters>{body}</kd:parameters></x:xmpmeta>".encode()
    metadata._scan_xmp(packet, found, max_text=1_000_000)
    assert resolved == [] and metadata.PARAMETERS_KEY not in found.texts
    fine = b"<x:xmpmeta><kd:parameters>a cat &amp; a dog\nSteps: 20</kd:parameters></x:xmpmeta>"
    found = metadata._Found()
    metadata._scan_xmp(fine, found, max_text=1_000_000)
    assert found.texts[metadata.PARAMETERS_KEY] == "a cat & a dog\nSteps: 20"

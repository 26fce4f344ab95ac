"""Build the corpus of other tools' files that the recall tests read.

Each sample is a tiny image (4x4 pixels) carrying the metadata its tool writes, laid out
as that tool's documented format describes (see README.md beside this script for where
each format is documented). Run ``python -m tests.corpus.make_corpus`` to rebuild the files;
the output is deterministic, and a test checks that the files on disk match it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

HERE = Path(__file__).resolve().parent
SIZE = (4, 4)


def _pixels() -> Image.Image:
    im = Image.new("RGB", SIZE)
    im.putdata([(x * 60 % 256, x * 30 % 256, 90) for x in range(SIZE[0] * SIZE[1])])
    return im


def png(texts: dict[str, str]) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)  # tEXt, or iTXt when the text is not Latin-1
    buf = io.BytesIO()
    _pixels().save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def _exif(user_comment: str | None, encoding: str = "unicode", **ifd0: str) -> bytes:
    exif = Image.Exif()
    for tag, value in ifd0.items():
        exif[{"Model": 0x0110, "ImageDescription": 0x010E, "Software": 0x0131}[tag]] = value
    if user_comment is not None:
        if encoding == "unicode":  # as A1111 writes it (piexif): UNICODE prefix, UTF-16BE
            raw = b"UNICODE\x00" + user_comment.encode("utf-16-be")
        else:
            raw = b"ASCII\x00\x00\x00" + user_comment.encode("ascii")
        exif.get_ifd(0x8769)[0x9286] = raw
    return exif.tobytes()


def jpeg(user_comment: str | None = None, *, comment: str | None = None, **ifd0: str) -> bytes:
    buf = io.BytesIO()
    options: dict[str, Any] = {"quality": 90, "exif": _exif(user_comment, **ifd0)}
    if comment is not None:
        options["comment"] = comment.encode("utf-8")
    _pixels().save(buf, "JPEG", **options)
    return buf.getvalue()


def webp(user_comment: str | None = None, **ifd0: str) -> bytes:
    buf = io.BytesIO()
    _pixels().save(buf, "WEBP", lossless=True, exif=_exif(user_comment, **ifd0))
    return buf.getvalue()


@dataclass
class Sample:
    path: str  # under tests/corpus/
    build: Callable[[], bytes]
    expected: dict[
        str, Any
    ]  # what recall must give: source, prompt, negative_prompt, seed, width, height, model, foreign
    sd_parsers: bool = True  # whether sd-parsers claims to read this format
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


A1111_TEXT = (
    "a cat on a windowsill, (soft light:1.2), masterpiece\n"
    "Negative prompt: lowres, blurry\n"
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 3141592653, "
    "Size: 832x1216, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, "
    'Lora hashes: "detail: abc123, style: def456", Version: v1.10.1'
)
FORGE_TEXT = (
    "a lighthouse at dusk\nNegative prompt: text\n"
    "Steps: 20, Sampler: Euler, Schedule type: Simple, CFG scale: 1, Distilled CFG Scale: 3.5, Seed: 77, "
    "Size: 896x1152, Model hash: 0fb1b6b5c1, Model: flux1-dev-bnb-nf4-v2, Version: f2.0.1v1.10.1-previous-313-g8a042934"
)
SDNEXT_TEXT = (
    "portrait of an astronaut, studio light\nNegative prompt: cartoon\n"
    "Steps: 30, Sampler: DPM++ 2M, CFG scale: 5, Seed: 1234, Size: 1024x1024, Model: juggernautXL_v9, "
    "App: SD.Next, Version: 2f6f5e4, Operations: txt2img"
)
CIVITAI_TEXT = (
    "a red fox in the snow\nNegative prompt: watermark\n"
    "Steps: 25, CFG scale: 4, Sampler: Euler a, Seed: 9876543, Size: 768x1344, Clip skip: 2, "
    'Created Date: 2024-06-01T10:00:00.0000000Z, Civitai resources: [{"type":"checkpoint","modelVersionId":128713}], '
    "Civitai metadata: {}"
)

COMFY_API = {
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 156680208700286,
            "steps": 20,
            "cfg": 8.0,
            "sampler_name": "euler",
            "scheduler": "normal",
            "denoise": 1.0,
            "model": ["4", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
        },
    },
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 768, "batch_size": 1}},
    "6": {
        "class_type": "CLIPTextEncode",
        "inputs": {"text": "beautiful scenery nature glass bottle landscape, purple galaxy bottle", "clip": ["4", 1]},
    },
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["4", 1]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
}
COMFY_WORKFLOW = {
    "last_node_id": 9,
    "last_link_id": 9,
    "nodes": [
        {
            "id": 3,
            "type": "KSampler",
            "inputs": [
                {"name": "model", "type": "MODEL", "link": 1},
                {"name": "positive", "type": "CONDITIONING", "link": 4},
                {"name": "negative", "type": "CONDITIONING", "link": 6},
                {"name": "latent_image", "type": "LATENT", "link": 2},
            ],
            "widgets_values": [42424242, "randomize", 25, 7.5, "dpmpp_2m", "karras", 1],
        },
        {"id": 4, "type": "CheckpointLoaderSimple", "inputs": [], "widgets_values": ["dreamshaper_8.safetensors"]},
        {"id": 5, "type": "EmptyLatentImage", "inputs": [], "widgets_values": [640, 960, 1]},
        {
            "id": 6,
            "type": "CLIPTextEncode",
            "inputs": [{"name": "clip", "type": "CLIP", "link": 3}],
            "widgets_values": ["an old map of an imaginary island"],
        },
        {
            "id": 7,
            "type": "CLIPTextEncode",
            "inputs": [{"name": "clip", "type": "CLIP", "link": 5}],
            "widgets_values": ["blurry"],
        },
    ],
    "links": [
        [1, 4, 0, 3, 0, "MODEL"],
        [2, 5, 0, 3, 3, "LATENT"],
        [3, 4, 1, 6, 0, "CLIP"],
        [4, 6, 0, 3, 1, "CONDITIONING"],
        [5, 4, 1, 7, 0, "CLIP"],
        [6, 7, 0, 3, 2, "CONDITIONING"],
    ],
    "version": 0.4,
}
COMFY_FLUX = {  # SamplerCustomAdvanced: seed from RandomNoise, prompt through a guider and a primitive
    "13": {
        "class_type": "SamplerCustomAdvanced",
        "inputs": {
            "noise": ["25", 0],
            "guider": ["22", 0],
            "sampler": ["16", 0],
            "sigmas": ["17", 0],
            "latent_image": ["27", 0],
        },
    },
    "25": {"class_type": "RandomNoise", "inputs": {"noise_seed": 219670278747233}},
    "22": {"class_type": "BasicGuider", "inputs": {"model": ["12", 0], "conditioning": ["26", 0]}},
    "26": {"class_type": "FluxGuidance", "inputs": {"guidance": 3.5, "conditioning": ["6", 0]}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": ["30", 0], "clip": ["11", 0]}},
    "30": {"class_type": "PrimitiveString", "inputs": {"value": "a bottle with a rainbow galaxy inside it"}},
    "12": {"class_type": "UNETLoader", "inputs": {"unet_name": "flux1-dev.safetensors", "weight_dtype": "default"}},
    "16": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
    "17": {
        "class_type": "BasicScheduler",
        "inputs": {"scheduler": "simple", "steps": 20, "denoise": 1, "model": ["12", 0]},
    },
    "27": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "flux", "images": ["8", 0]}},
}

INVOKE_V3 = {
    "generation_mode": "txt2img",
    "positive_prompt": "a watercolor of a heron",
    "negative_prompt": "photo",
    "width": 1024,
    "height": 768,
    "seed": 2604571035,
    "rand_device": "cpu",
    "cfg_scale": 7.5,
    "steps": 30,
    "scheduler": "dpmpp_2m_k",
    "model": {"key": "k1", "hash": "blake3:00", "name": "Juggernaut XL v9", "base": "sdxl", "type": "main"},
    "app_version": "4.2.4",
}
INVOKE_V2 = {
    "model": "stable diffusion",
    "model_weights": "stable-diffusion-1.5",
    "model_hash": "cc6cb27103417325",
    "app_id": "invoke-ai/InvokeAI",
    "app_version": "2.3.5",
    "image": {
        "prompt": [{"prompt": "a fantasy castle on a hill [fog, people]", "weight": 1.0}],
        "steps": 50,
        "cfg_scale": 7.5,
        "threshold": 0,
        "perlin": 0,
        "height": 512,
        "width": 768,
        "seed": 3357757885,
        "seamless": False,
        "hires_fix": False,
        "type": "txt2img",
        "postprocessing": None,
        "sampler": "k_lms",
        "variations": [],
    },
}
NOVELAI_COMMENT = {
    "prompt": "1girl, reading in a library, warm light",
    "steps": 28,
    "height": 1216,
    "width": 832,
    "scale": 5.0,
    "uncond_scale": 1.0,
    "cfg_rescale": 0.0,
    "seed": 1565418931,
    "n_samples": 1,
    "hide_debug_overlay": False,
    "noise_schedule": "native",
    "sampler": "k_euler_ancestral",
    "uc": "lowres, bad anatomy",
    "request_type": "PromptGenerateRequest",
}
NOVELAI_PNG = {
    "Title": "NovelAI generated image",
    "Description": NOVELAI_COMMENT["prompt"],
    "Software": "NovelAI",
    "Source": "Stable Diffusion XL C1E1DE52",
    "Generation time": "5.1",
    "Comment": json.dumps(NOVELAI_COMMENT),
}
NOVELAI_NO_SIZE = {k: v for k, v in NOVELAI_COMMENT.items() if k not in ("width", "height")}
SWARM = {
    "sui_image_params": {
        "prompt": "a cozy cabin in the woods, snow",
        "negativeprompt": "people",
        "model": "OfficialStableDiffusion/sd_xl_base_1.0",
        "seed": 1739200131,
        "steps": 30,
        "cfgscale": 7,
        "aspectratio": "1:1",
        "width": 1024,
        "height": 1024,
        "sampler": "dpmpp_2m",
        "scheduler": "karras",
        "swarm_version": "0.9.2.1",
    },
    "sui_extra_data": {"date": "2024-08-01", "generation_time": "4.2 sec"},
}
FOOOCUS = {
    "adm_guidance": "(1.5, 0.8, 0.3)",
    "base_model": "juggernautXL_v8Rundiffusion",
    "base_model_hash": "aeb7e9e689",
    "full_negative_prompt": ["unrealistic"],
    "full_prompt": ["a mountain lake at sunrise"],
    "guidance_scale": 4,
    "negative_prompt": "unrealistic",
    "performance": "Speed",
    "prompt": "a mountain lake at sunrise",
    "refiner_model": "None",
    "resolution": "(1152, 896)",
    "sampler": "dpmpp_2m_sde_gpu",
    "scheduler": "karras",
    "seed": "4206942069",
    "sharpness": 2,
    "steps": 30,
    "styles": "['Fooocus V2']",
    "version": "Fooocus v2.5.5",
}
FOOOCUS_LOG = {  # the older private-log form (Title Case keys, written in the PNG Comment chunk)
    "Prompt": "a paper boat on a river",
    "Negative Prompt": "",
    "Fooocus V2 Expansion": "a paper boat, detailed",
    "Styles": "['Fooocus V2']",
    "Performance": "Quality",
    "Resolution": "(1024, 1024)",
    "Sharpness": 2,
    "Guidance Scale": 7,
    "Base Model": "sd_xl_base_1.0_0.9vae.safetensors",
    "Sampler": "dpmpp_2m_sde_gpu",
    "Scheduler": "karras",
    "Seed": 1234567,
    "Version": "v2.0.0",
}
EASY = {
    "prompt": "a tiny robot watering plants",
    "seed": 24680,
    "use_stable_diffusion_model": "/home/someone/models/sd-v1-4",
    "clip_skip": False,
    "use_vae_model": "",
    "sampler_name": "euler_a",
    "width": 512,
    "height": 640,
    "num_inference_steps": 25,
    "guidance_scale": 7.5,
    "negative_prompt": "rust",
}
EASY_TITLE = {
    "Prompt": EASY["prompt"],
    "Negative Prompt": "rust",
    "Seed": "24680",
    "Stable Diffusion model": "sd-v1-4",
    "Sampler": "euler_a",
    "Width": "512",
    "Height": "640",
    "Steps": "25",
    "Guidance Scale": "7.5",
}


def _a1111_expected(
    source: str,
    prompt: str,
    negative: str,
    seed: int,
    size: tuple[int, int],
    model: str | None,
    sampler: str | None,
    steps: int,
    cfg: float,
) -> dict[str, Any]:
    foreign: dict[str, Any] = {"steps": steps, "cfg": cfg}
    if sampler:
        foreign["sampler"] = sampler
    return {
        "source": source,
        "prompt": prompt,
        "negative_prompt": negative,
        "seed": seed,
        "width": size[0],
        "height": size[1],
        "model": model,
        "foreign": foreign,
    }


SAMPLES: list[Sample] = [
    Sample(
        "a1111/txt2img.png",
        lambda: png({"parameters": A1111_TEXT}),
        _a1111_expected(
            "A1111",
            "a cat on a windowsill, (soft light:1.2), masterpiece",
            "lowres, blurry",
            3141592653,
            (832, 1216),
            "sd_xl_base_1.0",
            "DPM++ 2M",
            28,
            6.5,
        ),
    ),
    Sample(
        "a1111/txt2img.jpg",
        lambda: jpeg(A1111_TEXT),
        _a1111_expected(
            "A1111",
            "a cat on a windowsill, (soft light:1.2), masterpiece",
            "lowres, blurry",
            3141592653,
            (832, 1216),
            "sd_xl_base_1.0",
            "DPM++ 2M",
            28,
            6.5,
        ),
    ),
    Sample(
        "a1111/txt2img.webp",
        lambda: webp(A1111_TEXT),
        _a1111_expected(
            "A1111",
            "a cat on a windowsill, (soft light:1.2), masterpiece",
            "lowres, blurry",
            3141592653,
            (832, 1216),
            "sd_xl_base_1.0",
            "DPM++ 2M",
            28,
            6.5,
        ),
    ),
    Sample(
        "forge/flux.png",
        lambda: png({"parameters": FORGE_TEXT}),
        _a1111_expected(
            "Forge", "a lighthouse at dusk", "text", 77, (896, 1152), "flux1-dev-bnb-nf4-v2", "Euler", 20, 1
        ),
    ),
    Sample(
        "sdnext/sdxl.png",
        lambda: png({"parameters": SDNEXT_TEXT}),
        _a1111_expected(
            "SD.Next",
            "portrait of an astronaut, studio light",
            "cartoon",
            1234,
            (1024, 1024),
            "juggernautXL_v9",
            "DPM++ 2M",
            30,
            5,
        ),
    ),
    Sample(
        "civitai/generated.jpeg",
        lambda: jpeg(CIVITAI_TEXT),
        _a1111_expected("Civitai", "a red fox in the snow", "watermark", 9876543, (768, 1344), None, "Euler a", 25, 4),
    ),
    Sample(
        "comfyui/api_and_workflow.png",
        lambda: png({"prompt": json.dumps(COMFY_API), "workflow": json.dumps(COMFY_WORKFLOW)}),
        {
            "source": "ComfyUI",
            "prompt": COMFY_API["6"]["inputs"]["text"],
            "negative_prompt": "text, watermark",
            "seed": 156680208700286,
            "width": 512,
            "height": 768,
            "model": "v1-5-pruned-emaonly.safetensors",
            "foreign": {"sampler": "euler", "scheduler": "normal", "steps": 20, "cfg": 8.0},
        },
    ),
    Sample(
        "comfyui/workflow_only.png",
        lambda: png({"workflow": json.dumps(COMFY_WORKFLOW)}),
        {
            "source": "ComfyUI",
            "prompt": "an old map of an imaginary island",
            "negative_prompt": "blurry",
            "seed": 42424242,
            "width": 640,
            "height": 960,
            "model": "dreamshaper_8.safetensors",
            "foreign": {"sampler": "dpmpp_2m", "scheduler": "karras", "steps": 25, "cfg": 7.5},
        },
        sd_parsers=False,
        notes="sd-parsers reads only the API graph",
    ),
    Sample(
        "comfyui/flux_custom_sampler.png",
        lambda: png({"prompt": json.dumps(COMFY_FLUX)}),
        {
            "source": "ComfyUI",
            "prompt": "a bottle with a rainbow galaxy inside it",
            "negative_prompt": None,
            "seed": 219670278747233,
            "width": 1024,
            "height": 1024,
            "model": "flux1-dev.safetensors",
            "foreign": {"sampler": "euler", "scheduler": "simple", "steps": 20},
        },
    ),
    Sample(
        "invokeai/v3.png",
        lambda: png({"invokeai_metadata": json.dumps(INVOKE_V3)}),
        {
            "source": "InvokeAI",
            "prompt": "a watercolor of a heron",
            "negative_prompt": "photo",
            "seed": 2604571035,
            "width": 1024,
            "height": 768,
            "model": "Juggernaut XL v9",
            "foreign": {"sampler": "dpmpp_2m_k", "steps": 30, "cfg": 7.5},
        },
    ),
    Sample(
        "invokeai/v2.png",
        lambda: png(
            {
                "sd-metadata": json.dumps(INVOKE_V2),
                "Dream": '"a fantasy castle on a hill [fog, people]" -s 50 -S 3357757885 -W 768 -H 512 -C 7.5 -A k_lms',
            }
        ),
        {
            "source": "InvokeAI",
            "prompt": "a fantasy castle on a hill",
            "negative_prompt": "fog, people",
            "seed": 3357757885,
            "width": 768,
            "height": 512,
            "model": "stable-diffusion-1.5",
            "foreign": {"sampler": "k_lms", "steps": 50, "cfg": 7.5},
        },
    ),
    Sample(
        "invokeai/dream.png",
        lambda: png({"Dream": '"a koi pond, ukiyo-e [photo]" -s 40 -S 1122 -W 512 -H 512 -C 7 -A k_euler'}),
        {
            "source": "InvokeAI",
            "prompt": "a koi pond, ukiyo-e",
            "negative_prompt": "photo",
            "seed": 1122,
            "width": 512,
            "height": 512,
            "model": None,
            "foreign": {"sampler": "k_euler", "steps": 40, "cfg": 7},
        },
        sd_parsers=False,
        notes="sd-parsers reads invokeai_metadata, sd-metadata and Dream; see the measurement",
    ),
    Sample(
        "novelai/nai.png",
        lambda: png(NOVELAI_PNG),
        {
            "source": "NovelAI",
            "prompt": NOVELAI_COMMENT["prompt"],
            "negative_prompt": "lowres, bad anatomy",
            "seed": 1565418931,
            "width": 832,
            "height": 1216,
            "model": "Stable Diffusion XL C1E1DE52",
            "foreign": {"sampler": "k_euler_ancestral", "scheduler": "native", "steps": 28, "cfg": 5.0},
        },
    ),
    Sample(
        "novelai/nai.webp",
        lambda: webp(json.dumps(NOVELAI_PNG | {"Comment": json.dumps(NOVELAI_NO_SIZE)})),
        {
            "source": "NovelAI",
            "prompt": NOVELAI_COMMENT["prompt"],
            "negative_prompt": "lowres, bad anatomy",
            "seed": 1565418931,
            "width": SIZE[0],
            "height": SIZE[1],
            "model": "Stable Diffusion XL C1E1DE52",
            "foreign": {"sampler": "k_euler_ancestral", "scheduler": "native", "steps": 28, "cfg": 5.0},
        },
        sd_parsers=False,
        notes="no size in the metadata: the image's pixels give it",
    ),
    Sample(
        "swarmui/swarm.png",
        lambda: png({"parameters": json.dumps(SWARM)}),
        {
            "source": "SwarmUI",
            "prompt": "a cozy cabin in the woods, snow",
            "negative_prompt": "people",
            "seed": 1739200131,
            "width": 1024,
            "height": 1024,
            "model": "OfficialStableDiffusion/sd_xl_base_1.0",
            "foreign": {"sampler": "dpmpp_2m", "scheduler": "karras", "steps": 30, "cfg": 7},
        },
        sd_parsers=False,
    ),
    Sample(
        "swarmui/swarm.jpg",
        lambda: jpeg(json.dumps(SWARM)),
        {
            "source": "SwarmUI",
            "prompt": "a cozy cabin in the woods, snow",
            "negative_prompt": "people",
            "seed": 1739200131,
            "width": 1024,
            "height": 1024,
            "model": "OfficialStableDiffusion/sd_xl_base_1.0",
            "foreign": {"sampler": "dpmpp_2m", "scheduler": "karras", "steps": 30, "cfg": 7},
        },
        sd_parsers=False,
    ),
    Sample(
        "fooocus/fooocus.png",
        lambda: png({"parameters": json.dumps(FOOOCUS), "fooocus_scheme": "fooocus"}),
        {
            "source": "Fooocus",
            "prompt": "a mountain lake at sunrise",
            "negative_prompt": "unrealistic",
            "seed": 4206942069,
            "width": 1152,
            "height": 896,
            "model": "juggernautXL_v8Rundiffusion",
            "foreign": {"sampler": "dpmpp_2m_sde_gpu", "scheduler": "karras", "steps": 30, "cfg": 4},
        },
    ),
    Sample(
        "fooocus/fooocus.jpg",
        lambda: jpeg(json.dumps(FOOOCUS)),
        {
            "source": "Fooocus",
            "prompt": "a mountain lake at sunrise",
            "negative_prompt": "unrealistic",
            "seed": 4206942069,
            "width": 1152,
            "height": 896,
            "model": "juggernautXL_v8Rundiffusion",
            "foreign": {"sampler": "dpmpp_2m_sde_gpu", "scheduler": "karras", "steps": 30, "cfg": 4},
        },
    ),
    Sample(
        "fooocus/log_comment.png",
        lambda: png({"Comment": json.dumps(FOOOCUS_LOG)}),
        {
            "source": "Fooocus",
            "prompt": "a paper boat on a river",
            "negative_prompt": "",
            "seed": 1234567,
            "width": 1024,
            "height": 1024,
            "model": "sd_xl_base_1.0_0.9vae.safetensors",
            "foreign": {"sampler": "dpmpp_2m_sde_gpu", "scheduler": "karras", "cfg": 7},
        },
        sd_parsers=False,
    ),
    Sample(
        "easydiffusion/ed.png",
        lambda: png({k: str(v) for k, v in EASY.items()}),
        {
            "source": "Easy Diffusion",
            "prompt": EASY["prompt"],
            "negative_prompt": "rust",
            "seed": 24680,
            "width": 512,
            "height": 640,
            "model": "sd-v1-4",
            "foreign": {"sampler": "euler_a", "steps": 25, "cfg": 7.5},
        },
        sd_parsers=False,
    ),
    Sample(
        "easydiffusion/ed_title.png",
        lambda: png(EASY_TITLE),
        {
            "source": "Easy Diffusion",
            "prompt": EASY["prompt"],
            "negative_prompt": "rust",
            "seed": 24680,
            "width": 512,
            "height": 640,
            "model": "sd-v1-4",
            "foreign": {"sampler": "euler_a", "steps": 25, "cfg": 7.5},
        },
        sd_parsers=False,
    ),
    Sample(
        "easydiffusion/ed.jpg",
        lambda: jpeg(json.dumps(EASY)),
        {
            "source": "Easy Diffusion",
            "prompt": EASY["prompt"],
            "negative_prompt": "rust",
            "seed": 24680,
            "width": 512,
            "height": 640,
            "model": "sd-v1-4",
            "foreign": {"sampler": "euler_a", "steps": 25, "cfg": 7.5},
        },
        sd_parsers=False,
    ),
]


def build_all(root: Path = HERE) -> list[Path]:
    written = []
    for sample in SAMPLES:
        target = root / sample.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(sample.build())
        written.append(target)
    return written


if __name__ == "__main__":
    for path in build_all():
        print(path.relative_to(HERE))

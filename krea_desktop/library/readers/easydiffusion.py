"""Easy Diffusion: one PNG text chunk per setting, in snake_case (``prompt``,
``negative_prompt``, ``seed``, ``width``, ``height``, ``use_stable_diffusion_model``,
``sampler_name``, ``num_inference_steps``, ``guidance_scale``) or Title Case (``Prompt``,
``Negative Prompt``, ``Stable Diffusion model``, ``Steps``, ``Guidance Scale``); in
JPEG/WEBP the same keys as one JSON object in the EXIF UserComment."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from krea_desktop.library.readers.base import Embedded, as_text, load_json, partial

_KEYS = {
    "prompt": ("prompt", "Prompt"),
    "negative": ("negative_prompt", "Negative Prompt"),
    "seed": ("seed", "Seed"),
    "width": ("width", "Width"),
    "height": ("height", "Height"),
    "model": ("use_stable_diffusion_model", "Stable Diffusion model"),
    "sampler": ("sampler_name", "Sampler"),
    "steps": ("num_inference_steps", "Steps"),
    "cfg": ("guidance_scale", "Guidance Scale"),
}

# Every keyword it reads a setting from.
KEYWORDS = frozenset(k for keys in _KEYS.values() for k in keys)


def _from(fields: Mapping[str, Any]) -> dict[str, Any] | None:
    marker = ("use_stable_diffusion_model", "Stable Diffusion model", "num_inference_steps", "Negative Prompt")
    if not any(k in fields for k in marker):
        return None
    values = {name: next((fields[k] for k in keys if k in fields), None) for name, keys in _KEYS.items()}
    model = as_text(values.pop("model"))
    if model:
        model = re.split(r"[\\/]", model)[-1]  # a model's path names the user's folders
    return partial("Easy Diffusion", model=model, **values)


def read(found: Embedded) -> dict[str, Any] | None:
    record = _from(found.texts)
    if record is not None:
        return record
    data = load_json(found.user_comment)
    return _from(data) if isinstance(data, Mapping) else None

"""Fooocus: with its own metadata scheme, a JSON object in the PNG ``parameters`` chunk (and
``fooocus_scheme`` = ``fooocus``) or the EXIF UserComment of JPEG/WEBP, keys ``prompt``,
``negative_prompt``, ``seed``, ``resolution`` (``"(W, H)"``), ``base_model``, ``sampler``,
``scheduler``, ``steps``, ``guidance_scale``; older versions wrote Title Case keys
(``Prompt``, ``Resolution``, ``Base Model``...) or a JSON ``Comment`` (PNG) / JPEG comment
with ``width``, ``height``, ``cfg``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from krea_desktop.library.readers.base import Embedded, load_json, partial

_RESOLUTION = re.compile(r"^\s*\(?\s*(\d{1,6})\s*[,x×]\s*(\d{1,6})\s*\)?\s*$")


def _normalise(data: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).strip().lower().replace(" ", "_"): v for k, v in data.items()}


def _looks_fooocus(data: Mapping[str, Any]) -> bool:
    return ("base_model" in data or "fooocus_v2_expansion" in data or "performance" in data) and "prompt" in data


def _from(data: Mapping[str, Any]) -> dict[str, Any]:
    width, height = data.get("width"), data.get("height")
    resolution = data.get("resolution")
    if isinstance(resolution, str):
        m = _RESOLUTION.match(resolution)
        if m:
            width, height = m.group(1), m.group(2)
    elif isinstance(resolution, list) and len(resolution) == 2:
        width, height = resolution
    return partial(
        "Fooocus",
        prompt=data.get("prompt"),
        negative=data.get("negative_prompt"),
        seed=data.get("seed"),
        width=width,
        height=height,
        model=data.get("base_model"),
        sampler=data.get("sampler") or data.get("sampler_name"),
        scheduler=data.get("scheduler"),
        steps=data.get("steps"),
        cfg=data.get("guidance_scale", data.get("cfg")),
        performance=data.get("performance") if isinstance(data.get("performance"), str) else None,
    )


def read(found: Embedded) -> dict[str, Any] | None:
    for text in (found.texts.get("parameters"), found.user_comment, found.texts.get("Comment"), found.comment):
        data = load_json(text)
        if isinstance(data, Mapping):
            norm = _normalise(data)
            if _looks_fooocus(norm) or found.texts.get("fooocus_scheme") == "fooocus":
                return _from(norm)
    return None

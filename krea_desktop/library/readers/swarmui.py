"""SwarmUI (and StableSwarmUI): a JSON object whose ``sui_image_params`` holds ``prompt``,
``negativeprompt``, ``seed``, ``width``, ``height``, ``model``, ``steps``, ``cfgscale``,
``sampler``/``comfyuisampler``. In the PNG ``parameters`` chunk, the EXIF UserComment, or
(older versions) the EXIF Model field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from krea_desktop.library.readers.base import Embedded, as_text, load_json, partial


def read(found: Embedded) -> dict[str, Any] | None:
    for text in (found.texts.get("parameters"), found.user_comment, found.exif_model):
        if not text or "sui_image_params" not in text:
            continue
        data = load_json(text)
        params = data.get("sui_image_params") if isinstance(data, Mapping) else None
        if not isinstance(params, Mapping):
            continue
        return partial(
            "SwarmUI",
            prompt=params.get("prompt"),
            negative=params.get("negativeprompt"),
            seed=params.get("seed"),
            width=params.get("width"),
            height=params.get("height"),
            model=params.get("model"),
            sampler=as_text(params.get("sampler"))
            or as_text(params.get("comfyuisampler"))
            or as_text(params.get("autowebuisampler")),
            scheduler=params.get("scheduler"),
            steps=params.get("steps"),
            cfg=params.get("cfgscale"),
        )
    return None

"""NovelAI: PNG text chunks ``Software`` = ``NovelAI``, ``Description`` (the prompt),
``Source`` (the model) and ``Comment`` (JSON: ``prompt``, ``uc`` the negative prompt,
``seed``, ``steps``, ``scale``, ``sampler``, ``width``, ``height``, ...). WEBP files carry
the same keys as one JSON object in the EXIF UserComment (or ImageDescription)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from krea_desktop.library.readers.base import Embedded, as_text, load_json, partial


def _from(fields: Mapping[str, Any]) -> dict[str, Any] | None:
    comment = fields.get("Comment")
    meta = load_json(comment) if isinstance(comment, str) else comment
    if not isinstance(meta, Mapping):
        meta = {}
    if fields.get("Software") != "NovelAI" and not ("uc" in meta and "scale" in meta):
        return None
    prompt = as_text(meta.get("prompt")) or as_text(fields.get("Description"))
    return partial(
        "NovelAI",
        prompt=prompt,
        negative=meta.get("uc"),
        seed=meta.get("seed"),
        width=meta.get("width"),
        height=meta.get("height"),
        model=as_text(fields.get("Source")),
        sampler=meta.get("sampler"),
        scheduler=meta.get("noise_schedule"),
        steps=meta.get("steps"),
        cfg=meta.get("scale"),
    )


def read(found: Embedded) -> dict[str, Any] | None:
    if "Comment" in found.texts or found.texts.get("Software") == "NovelAI":
        record = _from(found.texts)
        if record is not None:
            return record
    for text in (found.user_comment, found.description):
        fields = load_json(text)
        if isinstance(fields, Mapping) and "Comment" in fields:
            record = _from(fields)
            if record is not None:
                return record
    return None

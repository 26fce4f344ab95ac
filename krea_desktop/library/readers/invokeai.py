"""InvokeAI: PNG ``invokeai_metadata`` (3.x and later: a flat JSON object), ``sd-metadata``
(2.x: JSON with the settings under ``image``) and ``Dream`` (the legacy command line,
``"prompt [negative]" -s STEPS -S SEED -W W -H H -C CFG -A SAMPLER``)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from krea_desktop.library.readers.base import Embedded, as_text, load_json, partial

_NEGATIVE = re.compile(r"\[([^\[\]]*)\]")


def _split_negative(prompt: str) -> tuple[str, str | None]:
    """InvokeAI 2 writes the negative prompt in square brackets inside the prompt."""
    negatives = _NEGATIVE.findall(prompt)
    if not negatives:
        return prompt, None
    return _NEGATIVE.sub("", prompt).strip(), ", ".join(n.strip() for n in negatives)


def _model_name(model: Any) -> str | None:
    if isinstance(model, Mapping):
        return as_text(model.get("model_name")) or as_text(model.get("name"))
    return as_text(model)


def _v3(meta: Mapping[str, Any]) -> dict[str, Any]:
    return partial(
        "InvokeAI",
        prompt=meta.get("positive_prompt"),
        negative=meta.get("negative_prompt"),
        seed=meta.get("seed"),
        width=meta.get("width"),
        height=meta.get("height"),
        model=_model_name(meta.get("model")),
        sampler=meta.get("scheduler"),
        steps=meta.get("steps"),
        cfg=meta.get("cfg_scale"),
    )


def _v2(meta: Mapping[str, Any]) -> dict[str, Any]:
    raw = meta.get("image")
    image: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    prompt = image.get("prompt")
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], Mapping):
        prompt = prompt[0].get("prompt")
    negative = None
    if isinstance(prompt, str):
        prompt, negative = _split_negative(prompt)
    return partial(
        "InvokeAI",
        prompt=prompt,
        negative=negative,
        seed=image.get("seed"),
        width=image.get("width"),
        height=image.get("height"),
        model=as_text(meta.get("model_weights")) or as_text(meta.get("model")),
        sampler=image.get("sampler"),
        steps=image.get("steps"),
        cfg=image.get("cfg_scale"),
    )


_DREAM_FLAGS = {"-s": "steps", "-S": "seed", "-W": "width", "-H": "height", "-C": "cfg", "-A": "sampler"}


def _dream(text: str) -> dict[str, Any] | None:
    if len(text) > 64 * 1024:
        return None
    try:
        words = shlex.split(text)
    except ValueError:
        return None
    if not words:
        return None
    values: dict[str, str] = {}
    prompt_words: list[str] = []
    i = 0
    while i < len(words):
        flag = words[i]
        if flag in _DREAM_FLAGS and i + 1 < len(words):
            values[_DREAM_FLAGS[flag]] = words[i + 1]
            i += 2
            continue
        if not flag.startswith("-") or not values:
            prompt_words.append(flag)
        i += 1
    prompt, negative = _split_negative(" ".join(prompt_words))
    return partial("InvokeAI", prompt=prompt, negative=negative, **values)


def read(found: Embedded) -> dict[str, Any] | None:
    meta = load_json(found.texts.get("invokeai_metadata"))
    if isinstance(meta, Mapping):
        return _v3(meta)
    meta = load_json(found.texts.get("sd-metadata"))
    if isinstance(meta, Mapping):
        return _v2(meta)
    dream = found.texts.get("Dream")
    if dream:
        return _dream(dream)
    return None

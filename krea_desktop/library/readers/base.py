"""What a file carries, as found by the container scanners, and helpers shared by the readers.

Every reader takes an :class:`Embedded` and returns a partial record (a plain dict that
:func:`~krea_desktop.api.record.parse_record` accepts) or None when the file is not its
tool's. The partial record uses the record's own keys (``prompt``, ``negative_prompt``,
``seed``, ``width``, ``height``, ``model``), names the tool under ``source`` and keeps the
tool's other settings (sampler, steps, CFG, ...) under ``foreign``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from krea_desktop.api import spec

# Texts larger than this are not parsed as JSON graphs (a ComfyUI workflow of thousands of
# nodes is well under it).
MAX_JSON = 4 * 1024 * 1024
# Nor other tools' settings larger than this (a few KB in any real file). Parsed, a text of
# JSON takes up to 25 times its size ("[{},{},...]"), and each reader parses its own.
MAX_SETTINGS_JSON = 1024 * 1024


@dataclass
class Embedded:
    """The metadata texts of one image file, by where they were found."""

    texts: dict[str, str] = field(default_factory=dict)  # PNG text chunks by keyword (the first of each)
    user_comment: str | None = None  # EXIF UserComment
    description: str | None = None  # EXIF ImageDescription
    exif_model: str | None = None  # EXIF Model (0x0110): SwarmUI's legacy JPEG place; ComfyUI's "prompt:" in WEBP
    exif_make: str | None = None  # EXIF Make (0x010F): ComfyUI's "workflow:" in WEBP
    software: str | None = None  # EXIF Software
    xmp: str | None = None  # the XMP packet
    comment: str | None = None  # the JPEG COM segment
    width: int | None = None  # of the image as it is shown: from its header, turned by its orientation
    height: int | None = None
    orientation: int | None = None  # EXIF Orientation (0x0112): 5 to 8 turn the picture a quarter

    def text(self, *keys: str) -> str | None:
        """The first PNG text chunk present among ``keys``."""
        for key in keys:
            value = self.texts.get(key)
            if value is not None:
                return value
        return None


def load_json(text: str | None, limit: int = MAX_SETTINGS_JSON) -> Any:
    """``text`` parsed as JSON, or None (never raises; refuses text longer than ``limit``)."""
    if not isinstance(text, str) or len(text) > limit:
        return None
    stripped = text.strip().rstrip("\x00")
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        return json.loads(stripped)
    except (ValueError, RecursionError):
        return None


def looks_like_json(text: str) -> bool:
    """Whether ``text`` is a JSON object or array (never a prompt). One longer than
    :data:`MAX_SETTINGS_JSON` that starts like one is taken for one unparsed: no prompt is
    a megabyte long."""
    if isinstance(text, str) and len(text) > MAX_SETTINGS_JSON:
        return text.lstrip()[:1] in ("{", "[")
    return isinstance(load_json(text), (dict, list))


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,20}\s*", value):
        return int(value)
    return None


def as_number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else None
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,12}(\.\d{1,12})?\s*", value):
        number = float(value)
        return int(number) if number.is_integer() and "." not in value else number
    return None


def as_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def partial(
    source: str,
    *,
    prompt: Any = None,
    negative: Any = None,
    seed: Any = None,
    width: Any = None,
    height: Any = None,
    model: Any = None,
    sampler: Any = None,
    scheduler: Any = None,
    steps: Any = None,
    cfg: Any = None,
    **other: Any,
) -> dict[str, Any]:
    """A partial record in the shape every reader returns; absent values are left out."""
    out: dict[str, Any] = {"source": source}
    if isinstance(prompt, str) and not looks_like_json(prompt):
        out["prompt"] = prompt.strip()
    if isinstance(negative, str) and not looks_like_json(negative):
        out["negative_prompt"] = negative.strip()
    foreign: dict[str, Any] = {}
    seed_n = as_int(seed)
    if seed_n is not None and seed_n < spec.SEED_MIN:
        seed_n = None  # -1: "a random seed" to the tools that write one, so no seed at all
    elif seed_n is not None and seed_n > spec.SEED_MAX:
        # The tool's own seed, beyond what the model takes (ComfyUI's go up to 2^64 - 1):
        # shown as that tool's setting, never recalled into the seed field.
        foreign["seed"] = str(seed_n)
        seed_n = None
    for key, value in (("seed", seed_n), ("width", as_int(width)), ("height", as_int(height))):
        if value is not None:
            out[key] = value
    if isinstance(model, str) and model.strip():
        out["model"] = model.strip()
    for key, value in (("sampler", sampler), ("scheduler", scheduler)):
        if isinstance(value, str) and value.strip():
            foreign[key] = value.strip()
    steps_n = as_int(steps)
    if steps_n is not None:
        foreign["steps"] = steps_n
    cfg_n = as_number(cfg)
    if cfg_n is not None:
        foreign["cfg"] = cfg_n
    for key, value in other.items():
        if value is not None and value != "":
            foreign[key] = value
    if foreign:
        out["foreign"] = foreign
    return out


def foreign_seed(extras: Mapping[str, Any]) -> str | None:
    """Another tool's seed that Krea 2 Medium cannot take (kept by :func:`partial` under
    ``foreign``), from a record's ``extras``; None when there is none, or when it is
    negative (a random seed, which earlier versions kept as a seed beyond the model's)."""
    foreign = extras.get("foreign")
    seed = foreign.get("seed") if isinstance(foreign, Mapping) else None
    return seed if isinstance(seed, str) and re.fullmatch(r"\d{1,20}", seed) else None

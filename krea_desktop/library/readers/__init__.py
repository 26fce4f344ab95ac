"""Recall from other tools' files: one small reader per tool family and a dispatcher.

:func:`read_foreign` tries the readers from the most specific format to the most general
(A1111's text, which several tools also write, comes last) and returns the first partial
record found: the record's keys (``prompt``, ``negative_prompt``, ``seed``, ``width``,
``height``, ``model``), ``source`` naming the tool, and the tool's other settings under
``foreign``. Raw JSON is never given as a prompt, and a size the metadata does not state
is the image's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from krea_desktop.library.readers import a1111, comfyui, easydiffusion, fooocus, invokeai, novelai, swarmui
from krea_desktop.library.readers.base import Embedded, looks_like_json

Reader = Callable[[Embedded], "dict[str, Any] | None"]

READERS: tuple[tuple[str, Reader], ...] = (
    ("SwarmUI", swarmui.read),
    ("InvokeAI", invokeai.read),
    ("NovelAI", novelai.read),
    ("Fooocus", fooocus.read),
    ("ComfyUI", comfyui.read),
    ("Easy Diffusion", easydiffusion.read),
    ("A1111", a1111.read),
)

__all__ = ["READERS", "Embedded", "read_foreign"]


def read_foreign(found: Embedded) -> dict[str, Any] | None:
    """The partial record of the first reader that recognises ``found`` and reads something
    from it, or None. A reader that recognises its tool but reads nothing (a ComfyUI
    workflow whose sampler it does not know) names the tool only if no later reader reads
    more: the same file may hold A1111's parameters too."""
    named_only: dict[str, Any] | None = None
    for _name, reader in READERS:
        try:
            record = reader(found)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError):
            record = None  # a malformed file of this tool: try the others
        if record is None:
            continue
        prompt = record.get("prompt")
        if isinstance(prompt, str) and looks_like_json(prompt):
            del record["prompt"]
        if not set(record) - {"source"}:
            named_only = named_only or record
            continue
        return _sized(record, found)
    return None if named_only is None else _sized(named_only, found)


def _sized(record: dict[str, Any], found: Embedded) -> dict[str, Any]:
    if (record.get("width") is None or record.get("height") is None) and found.width and found.height:
        record["width"], record["height"] = found.width, found.height
    return record

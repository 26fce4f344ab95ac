"""ComfyUI: the PNG ``prompt`` chunk holds the API graph (node id -> ``class_type`` and
``inputs``, a link being ``[node id, output index]``), the ``workflow`` chunk the editor's
graph (``nodes`` with ``widgets_values`` and ``inputs`` naming ``link`` ids, ``links`` as
``[id, from node, from slot, to node, to slot, type]``). The prompt is the text that feeds
the sampler's positive input, the seed the sampler's or its seed node's, the size the
latent's (else the image's)."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from itertools import chain, islice
from typing import Any

from krea_desktop.library.readers.base import MAX_JSON, Embedded, as_int, load_json, partial

_MAX_HOPS = 32
_MAX_PROMPT_NODES = 16  # nodes of a graph without a sampler whose prompt is looked for
_MAX_INPUTS = 256  # inputs of one node looked at for links to follow
_SAMPLING_KEYS = ("latent_image", "seed", "noise_seed", "noise")
# ComfyUI's Flux and SD3 encoders take the prompt for each text encoder: T5's is the
# sentence as written, so it comes first.
_TEXT_KEYS = ("text", "text_g", "prompt", "string", "value", "text_l", "t5xxl", "clip_l", "clip_g")
# A node holding both texts (Efficiency Nodes' loader, prompt stylers) gives each side its own.
_POSITIVE_KEYS = (*_TEXT_KEYS, "positive", "text_positive", "positive_prompt")
_NEGATIVE_KEYS = (*_TEXT_KEYS, "negative", "text_negative", "negative_prompt")
_SEED_KEYS = ("seed", "noise_seed", "value", "int", "number")
_MODEL_KEYS = ("ckpt_name", "unet_name", "model_name", "base_ckpt_name")
# Nodes whose conditioning holds no text, whatever they take in: a negative made by zeroing
# the positive (common in Flux workflows) is no negative prompt, not the positive's text.
_NO_TEXT = frozenset({"ConditioningZeroOut"})


def _holds(value: Any, want: type | tuple[type, ...]) -> bool:
    if isinstance(value, str):
        return bool(value.strip()) and isinstance(value, want)
    return isinstance(value, want) and not isinstance(value, bool)


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))


class _ApiGraph:
    def __init__(self, nodes: Mapping[str, Any]) -> None:
        self.nodes = {str(k): v for k, v in nodes.items() if isinstance(v, Mapping)}

    def inputs(self, node_id: str) -> Mapping[str, Any]:
        inputs = self.nodes.get(node_id, {}).get("inputs")
        return inputs if isinstance(inputs, Mapping) else {}

    def follow(self, value: Any) -> str | None:
        return str(value[0]) if _is_link(value) and str(value[0]) in self.nodes else None

    def find(self, start: Any, keys: tuple[str, ...], want: type | tuple[type, ...], via: tuple[str, ...] = ()) -> Any:
        """Walk links from ``start`` (a value or a link) to the first input among ``keys``
        holding a ``want`` (a text that is not blank: a Flux encoder's empty T5 box leaves
        the prompt to its CLIP box); links named in ``via`` are followed first, then any other."""
        if _holds(start, want):
            return start
        first = self.follow(start)
        if first is None or self.says_nothing(first):
            return None
        # Breadth first over at most _MAX_HOPS nodes, each queued once, looking at no more
        # than _MAX_INPUTS inputs of a node: a node with thousands of links costs no more.
        queued = {first}
        queue = deque([first])
        while queue:
            inputs = self.inputs(queue.popleft())
            for key in keys:
                item = inputs.get(key)
                if _holds(item, want):
                    return item
            links = chain(
                (inputs.get(key) for key in (*via, *keys)),
                (v for k, v in islice(inputs.items(), _MAX_INPUTS) if k not in via and k not in keys),
            )
            for value in links:
                if len(queued) >= _MAX_HOPS:
                    break
                node = self.follow(value)
                if node is not None and node not in queued and not self.says_nothing(node):
                    queued.add(node)
                    queue.append(node)
        return None

    def says_nothing(self, node_id: str) -> bool:
        return str(self.nodes[node_id].get("class_type")) in _NO_TEXT

    def samplers(self) -> list[str]:
        """Nodes that may be the sampler, likeliest first. ControlNet, inpaint and guider nodes
        take a positive conditioning too, so nodes that also take a latent, a seed or noise, or
        are named a sampler, come first; then the lowest id."""

        def order(node_id: str) -> tuple[bool, int, str]:
            inputs = self.inputs(node_id)
            sampling = any(k in inputs for k in _SAMPLING_KEYS) or "Sampler" in str(self.nodes[node_id]["class_type"])
            number = as_int(node_id.split(":")[-1])
            return (not sampling, number if number is not None else 1 << 62, node_id)

        found = [
            n
            for n in self.nodes
            if any(k in self.inputs(n) for k in ("positive", "guider")) and "class_type" in self.nodes[n]
        ]
        return sorted(found, key=order)


def _generating_node(g: _ApiGraph) -> dict[str, Any] | None:
    """A graph with no sampler: an API node (a hosted model's, such as
    FluxProUltraImageNode) takes the prompt and the seed itself, as they are or from the
    node they are linked to (a primitive). The lowest-numbered node with a prompt, those
    with a seed first."""

    def order(node_id: str) -> tuple[bool, int, str]:
        number = as_int(node_id.split(":")[-1])
        return ("seed" not in g.inputs(node_id), number if number is not None else 1 << 62, node_id)

    candidates = [n for n in g.nodes if "prompt" in g.inputs(n) and "positive" not in g.inputs(n)]
    # The first few only: a graph has one such node, or a handful. Each is followed up to
    # _MAX_HOPS links; tens of thousands of them whose links lead nowhere, in a graph of a
    # few MB, took seconds a file.
    for node in sorted(candidates, key=order)[:_MAX_PROMPT_NODES]:
        inputs = g.inputs(node)
        prompt = g.find(inputs["prompt"], _TEXT_KEYS, str)
        if prompt is None:
            continue
        width, height = inputs.get("width"), inputs.get("height")
        return partial(
            "ComfyUI",
            prompt=prompt,
            negative=g.find(inputs.get("negative_prompt"), _TEXT_KEYS, str),
            seed=g.find(inputs.get("seed"), _SEED_KEYS, int),
            width=g.find(width, ("width", "value", "int"), int) if width is not None else None,
            height=g.find(height, ("height", "value", "int"), int) if height is not None else None,
        )
    return None


def read_api_graph(graph: Mapping[str, Any], found: Embedded) -> dict[str, Any] | None:
    g = _ApiGraph(graph)
    samplers = g.samplers()
    if not samplers:
        return _generating_node(g)
    sampler = samplers[0]
    inputs = g.inputs(sampler)
    positive = inputs.get("positive")
    negative = inputs.get("negative")
    guider = g.follow(inputs.get("guider"))
    if guider is not None:
        gin = g.inputs(guider)
        positive = gin.get("positive", gin.get("conditioning"))
        negative = gin.get("negative")
    prompt = g.find(positive, _POSITIVE_KEYS, str, via=("conditioning", "conditioning_1", "conditioning_to"))
    negative_text = (
        g.find(negative, _NEGATIVE_KEYS, str, via=("negative", "conditioning", "conditioning_1")) if negative else None
    )
    seed = g.find(inputs.get("seed", inputs.get("noise_seed", inputs.get("noise"))), _SEED_KEYS, int)
    latent = inputs.get("latent_image")
    width = height = None
    latent_node = g.follow(latent)
    if latent_node is not None:
        latent_inputs = g.inputs(latent_node)  # a latent node's, or a loader's that makes the latent too
        width = g.find(
            latent_inputs.get("width", latent_inputs.get("empty_latent_width")), ("width", "value", "int"), int
        )
        height = g.find(
            latent_inputs.get("height", latent_inputs.get("empty_latent_height")), ("height", "value", "int"), int
        )
    model = g.find(inputs.get("model") or (g.inputs(guider).get("model") if guider else None), _MODEL_KEYS, str)
    sampler_name = g.find(inputs.get("sampler_name", inputs.get("sampler")), ("sampler_name",), str)
    # Set on the sampler, or given by a node of its own (a primitive's "value").
    steps = g.find(inputs.get("steps", inputs.get("sigmas")), ("steps", "value", "int"), int)
    cfg = g.find(
        inputs.get("cfg", g.inputs(guider).get("cfg") if guider else None), ("cfg", "value", "float"), (int, float)
    )
    return partial(
        "ComfyUI",
        prompt=prompt,
        negative=negative_text,
        seed=seed,
        width=width,
        height=height,
        model=model,
        sampler=sampler_name,
        scheduler=g.find(inputs.get("scheduler", inputs.get("sigmas")), ("scheduler",), str),
        steps=steps,
        cfg=cfg if isinstance(cfg, (int, float)) else None,
        denoise=inputs.get("denoise") if isinstance(inputs.get("denoise"), (int, float)) else None,
    )


# Editor graph: widget order of the common nodes.
_WIDGETS = {
    "KSampler": ("seed", None, "steps", "cfg", "sampler_name", "scheduler", "denoise"),
    "KSamplerAdvanced": (None, "seed", None, "steps", "cfg", "sampler_name", "scheduler"),
    "EmptyLatentImage": ("width", "height", "batch_size"),
    "EmptySD3LatentImage": ("width", "height", "batch_size"),
}


def read_workflow(workflow: Mapping[str, Any], found: Embedded) -> dict[str, Any] | None:
    nodes_raw = workflow.get("nodes")
    links_raw = workflow.get("links")
    if not isinstance(nodes_raw, list) or not isinstance(links_raw, list):
        return None
    nodes = {n.get("id"): n for n in nodes_raw[:10_000] if isinstance(n, Mapping)}
    links = {link[0]: link[1] for link in links_raw[:100_000] if isinstance(link, list) and len(link) >= 4}

    def widgets(node: Mapping[str, Any]) -> dict[str, Any]:
        values = node.get("widgets_values")
        names = _WIDGETS.get(str(node.get("type")), ())
        if isinstance(values, list):
            return {name: v for name, v in zip(names, values, strict=False) if name}
        return {}

    def source_of(node: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
        inputs = node.get("inputs")
        for item in islice(inputs if isinstance(inputs, list) else (), _MAX_INPUTS):
            if isinstance(item, Mapping) and item.get("name") == name:
                src = nodes.get(links.get(item.get("link")))
                return src if isinstance(src, Mapping) else None
        return None

    def text_of(node: Mapping[str, Any] | None) -> str | None:
        for _ in range(_MAX_HOPS):
            if node is None or str(node.get("type")) in _NO_TEXT:
                return None
            values = node.get("widgets_values")
            if isinstance(values, list) and values and isinstance(values[0], str):
                return values[0]
            node = source_of(node, "conditioning") or source_of(node, "conditioning_1") or source_of(node, "text")
        return None

    sampler = next((n for n in nodes.values() if str(n.get("type")) in ("KSampler", "KSamplerAdvanced")), None)
    if sampler is None:
        return None
    settings = widgets(sampler)
    latent = source_of(sampler, "latent_image")
    size = widgets(latent) if latent else {}
    model = None
    node = source_of(sampler, "model")
    for _ in range(_MAX_HOPS):
        if node is None:
            break
        values = node.get("widgets_values")
        if str(node.get("type")).startswith(("CheckpointLoader", "UNETLoader")) and isinstance(values, list):
            model = values[0] if values and isinstance(values[0], str) else None
            break
        node = source_of(node, "model")
    return partial(
        "ComfyUI",
        prompt=text_of(source_of(sampler, "positive")),
        negative=text_of(source_of(sampler, "negative")),
        seed=settings.get("seed"),
        width=size.get("width"),
        height=size.get("height"),
        model=model,
        sampler=settings.get("sampler_name"),
        scheduler=settings.get("scheduler"),
        steps=settings.get("steps"),
        cfg=settings.get("cfg"),
    )


def _graph_text(text: str | None, mark: str) -> Any:
    """``text`` parsed, if it has ``mark`` (a key every graph of its kind has: a text of
    megabytes without it is not parsed for nothing)."""
    return load_json(text, MAX_JSON) if text is not None and mark in text else None


def _after(text: str | None, mark: str) -> str | None:
    """What follows ``mark`` at the start of ``text`` (ComfyUI's WEBP keeps its graphs in
    EXIF fields as "prompt:{…}" and "workflow:{…}")."""
    return text[len(mark) :] if text is not None and text.startswith(mark) else None


def read(found: Embedded) -> dict[str, Any] | None:
    prompt_text = found.texts.get("prompt") or _after(found.exif_model, "prompt:")
    graph = _graph_text(prompt_text, '"class_type"')
    if isinstance(graph, Mapping) and any(
        isinstance(v, Mapping) and "class_type" in v for v in list(graph.values())[:10_000]
    ):
        record = read_api_graph(graph, found)
        if record is not None:
            if "prompt" not in record:  # a text node the graph reader does not know: the editor's graph may
                workflow = _graph_text(found.texts.get("workflow") or _after(found.exif_make, "workflow:"), '"nodes"')
                drawn = read_workflow(workflow, found) if isinstance(workflow, Mapping) else None
                for key in ("prompt", "negative_prompt"):
                    if drawn and key in drawn and key not in record:
                        record[key] = drawn[key]
            return record
    workflow = _graph_text(found.texts.get("workflow") or _after(found.exif_make, "workflow:"), '"nodes"')
    if isinstance(workflow, Mapping):
        return read_workflow(workflow, found) or {"source": "ComfyUI"}
    if isinstance(graph, Mapping) and any(isinstance(v, Mapping) and "class_type" in v for v in graph.values()):
        return {"source": "ComfyUI"}
    return None

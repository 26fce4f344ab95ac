"""A local stand-in for Runware's REST service, limited to Krea 2 Medium.

:class:`SimulatorService` takes the headers and body of a ``POST /v1`` and returns a
:class:`Reply`; the loopback server (:mod:`.server`) and the in-process httpx transport
(:mod:`.transport`) put it on the wire. It validates ``imageInference`` tasks exactly as
the model page documents, answers in Runware's envelope, renders deterministic images
(:mod:`.render`), supports async delivery with ``getResponse`` polling, ``imageUpload``
and image references by imageUUID, simulated latency, and injected faults
(:mod:`.faults`).

Choices where the public documentation is silent:

- Reusing a taskUUID answers ``conflictTaskUUID`` with HTTP 409 (:data:`CONFLICT_STATUS`).
- ``getResponse`` for an unknown taskUUID answers ``taskFailedOrNotFound`` with HTTP 400.
- A response that carries result data answers 200, even when other tasks of the same
  request failed (their errors sit in ``errors``); a response with errors only takes the
  status of its first error (400 validation, 401 key, 409 conflict).
- A fault spoils one answer, never the stored task: a damaged image (``bad-base64``,
  ``truncated-png``, ``wrong-size``) arrives whole in a later ``getResponse``. For an
  async submission the damage lands on the first poll that carries images.
- Every accepted ``imageInference`` task, sync or async, stays pollable by
  ``getResponse``: image ``i`` (from 0) is finished ``latency_per_image * (i + 1)``
  seconds after the task was accepted, and a sync answer comes once all are finished.
- With no latency set, rendering is the service's time: an accepted task's images are
  rendered from the moment it is accepted, in order, as many at a time as the machine
  has cores, and each is finished once rendered. ``getResponse`` answers with the images
  rendered so far (as the service answers with those finished so far), except that one
  that would find none finished waits for the first.
- ``webhookURL`` and ``uploadEndpoint`` are validated but nothing is sent to them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import contextlib
import hmac
import io
import json
import math
import os
import random
import re
import threading
import time
import uuid
import warnings
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import httpx
from PIL import Image, UnidentifiedImageError

from krea_desktop.api import spec
from krea_desktop.api.endpoint import is_loopback
from krea_desktop.simulator.faults import IMAGE_FAULTS, STATUS_FAULTS, Fault, FaultQueue, parse_fault
from krea_desktop.simulator.render import mean_colour, render_image

DOCS_URL = "https://runware.ai/docs/models/krea-2-medium"
CONFLICT_STATUS = 409
NOT_FOUND_STATUS = 400
DEFAULT_PUBLIC_URL = "http://simulator.krea-desktop.invalid"

# Image inputs (uploads and inline references): at most this many bytes once decoded...
MAX_IMAGE_BYTES = 32 * 1024 * 1024
# ...and at most this many pixels, checked before the pixels are decoded.
MAX_IMAGE_PIXELS = 50_000_000
INPUT_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "MPO")
URL_FETCH_TIMEOUT_S = 10.0

_OPEN_LOCK = threading.Lock()
_MIME = {"PNG": "image/png", "JPG": "image/jpeg", "WEBP": "image/webp"}
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_IMAGE_PATH_RE = re.compile(r"^/images/([0-9a-fA-F-]{36})(?:\.[A-Za-z]+)?$")
_NSFW_RE = re.compile(r"\bnsfw\b", re.IGNORECASE)
_B64_ALPHABET_RE = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")

_INFERENCE_KEYS = frozenset(
    {
        "taskType", "taskUUID", "model", "positivePrompt", "width", "height", "seed", "numberResults",
        "outputType", "outputFormat", "outputQuality", "deliveryMethod", "settings", "safety",
        "includeCost", "ttl", "webhookURL", "uploadEndpoint", "inputs",
    }
)  # fmt: skip
_STATUS_CODES = {
    "429": ("rateLimitExceeded", "The queue for this model is at capacity. Try again later."),
    "500": ("internalServerError", "The service had an internal error."),
    "502": ("badGateway", "Bad gateway."),
    "503": ("serviceUnavailable", "The service is temporarily at its capacity limit. Try again later."),
    "504": ("timeoutProvider", "The task waited in the queue for longer than the maximum wait."),
}

Action = Literal["respond", "drop", "hang"]
RecordedRequest = tuple[dict[str, str], list[Any]]


@dataclass
class Reply:
    """What to send back: an HTTP answer, or a transport-level misbehaviour.

    ``action`` is ``"respond"`` (send status, headers and body), ``"drop"`` (close the
    connection without an answer) or ``"hang"`` (never answer).
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    action: Action = "respond"

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Reply:
        body = json.dumps(payload, separators=(",", ":")).encode()
        return cls(status, {"Content-Type": "application/json", **(headers or {})}, body)

    def payload(self) -> Any:
        """The body parsed as JSON (for tests and debugging)."""
        return json.loads(self.body)


@dataclass
class SimulatorConfig:
    """How the simulated service behaves.

    ``api_key``: the only key accepted; ``None`` accepts any non-empty key.
    ``latency_per_image``: seconds each image takes, one after the other.
    ``cost_per_image``: USD reported per image when ``includeCost`` is set.
    ``seed``: seeds the draws the service makes itself (unseeded seeds, imageUUIDs),
    making whole sessions reproducible; ``None`` draws fresh ones.
    """

    api_key: str | None = None
    latency_per_image: float = 0.0
    cost_per_image: float = 0.0045
    seed: int | None = None
    grain: float = 0.0  # noise that makes images as large as real outputs (benchmarks)
    max_tasks: int = 256  # finished tasks kept for getResponse and image URLs
    max_uploads: int = 64  # uploads kept in memory, least recently used go first


class TaskFailure(Exception):
    """A per-task error, answered as an item of ``errors``."""

    def __init__(self, code: str, message: str, parameter: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.parameter = parameter
        self.status = status

    def item(self, task: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.parameter:
            out["parameter"] = self.parameter
        if isinstance(task, dict):
            if isinstance(task.get("taskType"), str):
                out["taskType"] = task["taskType"]
            if isinstance(task.get("taskUUID"), str):
                out["taskUUID"] = task["taskUUID"]
        out["documentation"] = documentation_url(self.parameter)
        return out


def documentation_url(parameter: str | None) -> str:
    if not parameter:
        return DOCS_URL
    anchor = re.sub(r"\[\d+\]", "", parameter).replace(".", "-").lower()
    return f"{DOCS_URL}#request-{anchor}"


def _invalid(parameter: str, message: str, code: str = "invalidParameter") -> TaskFailure:
    return TaskFailure(code, message, parameter)


def _check_int(task: Mapping[str, Any], name: str, lo: int, hi: int | None, default: int | None) -> int | None:
    value = task.get(name, default)
    if value is None:
        return None
    rng = f"from {lo} to {hi}" if hi is not None else f"at least {lo}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(name, f"Invalid value for {name}: {value!r}. It must be a whole number {rng}.")
    if value < lo or (hi is not None and value > hi):
        raise _invalid(name, f"Invalid value for {name}: {value}. It must be a whole number {rng}.")
    return value


def _check_choice(container: Mapping[str, Any], key: str, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = container.get(key, default)
    if not isinstance(value, str) or value not in allowed:
        raise _invalid(name, f"Invalid value for {name}: {value!r}. Allowed values: {', '.join(allowed)}.")
    return value


def _check_bool(container: Mapping[str, Any], key: str, name: str, default: bool) -> bool:
    value = container.get(key, default)
    if not isinstance(value, bool):
        raise _invalid(name, f"Invalid value for {name}: {value!r}. It must be true or false.")
    return value


def _check_object(task: Mapping[str, Any], name: str, allowed: frozenset[str]) -> dict[str, Any]:
    value = task.get(name, {})
    if not isinstance(value, dict):
        raise _invalid(name, f"Invalid value for {name}: it must be an object.")
    for key in value:
        if key not in allowed:
            raise _invalid(
                f"{name}.{key}",
                f"Unknown parameter {name}.{key}. {name} accepts: {', '.join(sorted(allowed))}.",
                "unknownParameter",
            )
    return value


def _check_url(task: Mapping[str, Any], name: str) -> None:
    value = task.get(name)
    if value is None:
        return
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise _invalid(name, f"Invalid value for {name}: {value!r}. It must be an http(s) URL.")


def is_uuid(value: Any) -> bool:
    return isinstance(value, str) and bool(_UUID_RE.match(value))


def _check_task_uuid(task: Mapping[str, Any]) -> str:
    if "taskUUID" not in task:
        raise _invalid("taskUUID", "Missing parameter taskUUID: every task needs a UUID v4.", "missingParameter")
    value = task["taskUUID"]
    if not is_uuid(value):
        raise _invalid("taskUUID", f"Invalid value for taskUUID: {value!r}. It must be a UUID v4.", "invalidTaskUUID")
    return str(value)


@dataclass
class _Params:
    prompt: str
    width: int
    height: int
    seed: int | None
    number_results: int
    output_type: str
    output_format: str
    quality: int
    delivery: str
    include_cost: bool
    check_content: bool
    references: list[tuple[str, float, str]]  # (image input, strength, parameter name)


def validate_inference(task: Mapping[str, Any]) -> _Params:
    """Check an ``imageInference`` task against the model page; raise :class:`TaskFailure`."""
    for key in task:
        if key not in _INFERENCE_KEYS:
            raise _invalid(key, f"Unknown parameter {key} for {spec.MODEL_ID}.", "unknownParameter")
    _check_task_uuid(task)
    if "model" not in task:
        raise _invalid("model", f"Missing parameter model. Use {spec.MODEL_ID}.", "missingParameter")
    if task["model"] != spec.MODEL_ID:
        raise TaskFailure(
            "modelNotFound",
            f"Invalid value for model: {task['model']!r} was not found. This service offers {spec.MODEL_ID}.",
            "model",
        )
    if "positivePrompt" not in task:
        raise _invalid("positivePrompt", "Missing parameter positivePrompt.", "missingParameter")
    prompt = task["positivePrompt"]
    if not isinstance(prompt, str):
        raise _invalid("positivePrompt", "Invalid value for positivePrompt: it must be text.", "invalidPositivePrompt")
    if len(prompt.strip()) < spec.PROMPT_MIN or len(prompt) > spec.PROMPT_MAX:
        raise _invalid(
            "positivePrompt",
            f"Invalid value for positivePrompt: it has {len(prompt)} characters, but it must have from "
            f"{spec.PROMPT_MIN} to {spec.PROMPT_MAX}.",
            "invalidPositivePrompt",
        )
    sizes = ", ".join(f"{r.width}x{r.height}" for r in spec.ASPECT_RATIOS)
    for name in ("width", "height"):
        if name not in task:
            raise _invalid(
                name, f"Missing parameter {name}: width and height must be used together.", "missingParameter"
            )
        value = task[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid(name, f"Invalid value for {name}: {value!r}. Supported width x height: {sizes}.")
    width, height = task["width"], task["height"]
    if (width, height) not in spec.RATIOS_BY_SIZE:
        name = "height" if width in {r.width for r in spec.ASPECT_RATIOS} else "width"
        raise _invalid(name, f"Invalid dimensions {width}x{height} for width and height. Supported: {sizes}.")
    seed = _check_int(task, "seed", spec.SEED_MIN, spec.SEED_MAX, None)
    number = _check_int(task, "numberResults", spec.RESULTS_MIN, spec.RESULTS_MAX, 1)
    output_type = _check_choice(task, "outputType", "outputType", spec.OUTPUT_TYPES, "URL")
    output_format = _check_choice(task, "outputFormat", "outputFormat", spec.OUTPUT_FORMATS, "JPG")
    quality = _check_int(task, "outputQuality", spec.QUALITY_MIN, spec.QUALITY_MAX, spec.DEFAULT_QUALITY)
    delivery = _check_choice(task, "deliveryMethod", "deliveryMethod", spec.DELIVERY_METHODS, "sync")
    settings = _check_object(task, "settings", frozenset({"creativity"}))
    _check_choice(settings, "creativity", "settings.creativity", spec.CREATIVITY_LEVELS, spec.DEFAULT_CREATIVITY)
    safety = _check_object(task, "safety", frozenset({"checkContent", "mode"}))
    check_content = _check_bool(safety, "checkContent", "safety.checkContent", False)
    _check_choice(safety, "mode", "safety.mode", spec.SAFETY_MODES, "none")
    include_cost = _check_bool(task, "includeCost", "includeCost", False)
    if "ttl" in task:
        _check_int(task, "ttl", spec.TTL_MIN, None, None)
        if output_type != "URL":
            raise _invalid("ttl", f"Invalid parameter ttl: it only applies when outputType is URL, not {output_type}.")
    _check_url(task, "webhookURL")
    _check_url(task, "uploadEndpoint")
    inputs = _check_object(task, "inputs", frozenset({"referenceImages"}))
    refs_in = inputs.get("referenceImages", [])
    if not isinstance(refs_in, list):
        raise _invalid("inputs.referenceImages", "Invalid value for inputs.referenceImages: it must be an array.")
    if len(refs_in) > spec.MAX_REFERENCES:
        raise _invalid(
            "inputs.referenceImages",
            f"Invalid value for inputs.referenceImages: {len(refs_in)} images, but at most "
            f"{spec.MAX_REFERENCES} are allowed.",
        )
    references: list[tuple[str, float, str]] = []
    for i, ref in enumerate(refs_in):
        name = f"inputs.referenceImages[{i}]"
        if isinstance(ref, dict):
            for key in ref:
                if key not in ("image", "strength"):
                    raise _invalid(f"{name}.{key}", f"Unknown parameter {name}.{key}.", "unknownParameter")
            if "image" not in ref:
                raise _invalid(f"{name}.image", f"Missing parameter {name}.image.", "missingParameter")
            image, strength = ref["image"], ref.get("strength", spec.DEFAULT_STRENGTH)
            if (
                isinstance(strength, bool)
                or not isinstance(strength, (int, float))
                or not math.isfinite(strength)
                or not spec.STRENGTH_MIN <= strength <= spec.STRENGTH_MAX
            ):
                raise _invalid(
                    f"{name}.strength",
                    f"Invalid value for {name}.strength: {strength!r}. It must be a number from "
                    f"{spec.STRENGTH_MIN:g} to {spec.STRENGTH_MAX:g}.",
                )
            pname = f"{name}.image"
        else:
            image, strength, pname = ref, spec.DEFAULT_STRENGTH, name
        if not isinstance(image, str) or not image.strip():
            raise _invalid(pname, f"Invalid value for {pname}: it must be an imageUUID, URL, data URI or base64 image.")
        references.append((image.strip(), float(strength), pname))
    assert number is not None and quality is not None
    return _Params(
        prompt, width, height, seed, number, output_type, output_format, quality, delivery,
        include_cost, check_content, references,
    )  # fmt: skip


@dataclass
class _Item:
    index: int
    image_uuid: str
    seed: int
    data: bytes | None = None
    wrong_size: bytes | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    rendering: concurrent.futures.Future[bytes] | None = None  # its render started at acceptance


@dataclass
class _Task:
    task_uuid: str
    params: _Params
    references: list[tuple[Image.Image, float]]
    accepted_at: float
    latency: float
    items: list[_Item]
    corruption: str | None = None  # an image fault that spoils the next delivery of this task's images
    missing_last: bool = False  # the last image fails
    error: TaskFailure | None = None

    def finished_count(self, now: float) -> int:
        n = len(self.items)
        if self.latency <= 0:
            return n
        return max(0, min(n, math.floor((now - self.accepted_at) / self.latency + 1e-9)))

    def due(self) -> float:
        return self.accepted_at + self.latency * len(self.items)

    def is_missing(self, item: _Item, missing_last: bool) -> bool:
        return missing_last and item.index == len(self.items) - 1

    def is_finished(self, item: _Item, now: float, missing_last: bool = False) -> bool:
        """Whether ``item`` is done (made, or failed when it is the missing last one): after
        its share of the latency, or, with no latency, once rendered."""
        if self.latency > 0:
            return item.index < self.finished_count(now)
        return item.data is not None or self.is_missing(item, missing_last or self.missing_last)


@dataclass
class _Upload:
    image: Image.Image
    last_used: float
    png: bytes | None = None


def _decode_image(data: bytes, parameter: str, code: str) -> Image.Image:
    """Decode encoded image bytes, refusing anything that is not a modest image."""
    if not data:
        raise TaskFailure(code, f"Invalid image in {parameter}: it is empty.", parameter)
    if len(data) > MAX_IMAGE_BYTES:
        raise TaskFailure(
            code, f"Invalid image in {parameter}: {len(data)} bytes, more than {MAX_IMAGE_BYTES}.", parameter
        )
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            # Oversized images are refused below, with a clearer message than Pillow's.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data))
        if img.format not in INPUT_FORMATS:
            raise TaskFailure(
                code, f"Invalid image in {parameter}: {img.format} is not supported (use PNG, JPG or WEBP).", parameter
            )
        w, h = img.size
        if w * h > MAX_IMAGE_PIXELS:
            raise TaskFailure(
                code, f"Invalid image in {parameter}: {w}x{h} is larger than {MAX_IMAGE_PIXELS} pixels.", parameter
            )
        img.load()
    except TaskFailure:
        raise
    except Image.DecompressionBombError:
        message = f"Invalid image in {parameter}: it is larger than {MAX_IMAGE_PIXELS} pixels."
        raise TaskFailure(code, message, parameter) from None
    except UnidentifiedImageError:
        raise TaskFailure(code, f"Invalid image in {parameter}: the data is not a readable image.", parameter) from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        message = f"Invalid image in {parameter}: the image data is damaged ({exc})."
        raise TaskFailure(code, message, parameter) from None
    if img.mode not in ("RGB", "RGBA", "L"):
        img = img.convert("RGBA" if "transparency" in img.info or img.mode in ("PA", "LA") else "RGB")
    if max(img.size) > spec.UPLOAD_MAX_SIDE:
        img.thumbnail((spec.UPLOAD_MAX_SIDE, spec.UPLOAD_MAX_SIDE), Image.Resampling.LANCZOS)
    return img


def _decode_base64(text: str) -> bytes:
    compact = "".join(text.split())
    if not compact or not _B64_ALPHABET_RE.match(compact):
        raise ValueError("not base64")
    compact += "=" * (-len(compact) % 4)
    if "-" in compact or "_" in compact:
        return base64.urlsafe_b64decode(compact)
    return base64.b64decode(compact, validate=True)


def _corrupt_base64(text: str) -> str:
    mid = len(text) // 2
    return text[:mid] + "*%" + text[mid + 1 :]


class SimulatorService:
    """The simulated service. One instance holds all state: tasks, images, uploads."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.public_url = DEFAULT_PUBLIC_URL  # used for image URLs when a front end gives none
        self.faults = FaultQueue()
        # Recording, for tests.
        self.requests: list[RecordedRequest] = []
        self.submissions: Counter[str] = Counter()
        self.bytes_received = 0
        self.upload_count = 0
        self.upload_order: list[str] = []  # imageUUIDs handed out by imageUpload, in order
        self._rng = random.Random(self.config.seed)
        self._tasks: OrderedDict[str, _Task] = OrderedDict()
        self._generated: dict[str, tuple[_Task, _Item]] = {}
        self._uploads: OrderedDict[str, _Upload] = OrderedDict()
        self._seen_task_uuids: set[str] = set()
        self._render_pool: concurrent.futures.ThreadPoolExecutor | None = None

    # -- public helpers ---------------------------------------------------------------

    def inject(self, fault: Fault | str) -> Fault:
        """Queue a fault (a :class:`Fault` or a spec string such as ``"503x2"``)."""
        f = parse_fault(fault) if isinstance(fault, str) else fault
        self.faults.append(f)
        return f

    def forget_uploads(self) -> None:
        """Forget every uploaded image, as the service does 30 days after last use."""
        self._uploads.clear()

    def _new_uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    # -- routing ----------------------------------------------------------------------

    async def route(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes, *, base_url: str | None = None
    ) -> Reply:
        """Answer one HTTP request: ``POST /`` or ``/v1`` (tasks), ``GET /images/NAME``, ``GET /health``."""
        parts = urlsplit(target)
        path = parts.path or "/"
        method = method.upper()
        if path.rstrip("/") in ("", "/v1"):
            if method != "POST":
                return _not_allowed("POST")
            return await self.handle(headers, body, base_url=base_url)
        if path == "/health":
            return Reply.json(200, {"status": "ok", "model": spec.MODEL_ID})
        if path.startswith("/images/"):
            if method not in ("GET", "HEAD"):
                return _not_allowed("GET")
            fault = parse_qs(parts.query).get("fault", [None])[0]
            return await self.image_reply(path[len("/images/") :], fault if fault in IMAGE_FAULTS else None)
        return Reply.json(404, {"errors": [{"code": "notFound", "message": f"No such endpoint: {path}"}]})

    async def image_reply(self, name: str, fault: str | None = None) -> Reply:
        """The file behind an ``imageURL``: a generated image or an upload (as PNG)."""
        stem = name.partition(".")[0].lower()
        entry = self._generated.get(stem)
        if entry is not None:
            task, item = entry
            if not task.is_finished(item, time.monotonic()) or task.is_missing(item, task.missing_last):
                return Reply.json(404, {"errors": [{"code": "notFound", "message": "This image is not finished yet."}]})
            data = await self._render(task, item, fault)
            fmt = task.params.output_format
            if fault == "bad-base64":
                data = _corrupt_base64(base64.b64encode(data).decode()).encode()
            return Reply(200, {"Content-Type": _MIME[fmt], "Cache-Control": "max-age=3600"}, data)
        upload = self._uploads.get(stem)
        if upload is not None:
            if upload.png is None:
                upload.png = await asyncio.to_thread(_encode_png, upload.image)
            return Reply(200, {"Content-Type": "image/png"}, upload.png)
        return Reply.json(404, {"errors": [{"code": "notFound", "message": f"No image named {name}."}]})

    # -- the task endpoint ------------------------------------------------------------

    async def handle(self, headers: Mapping[str, str], body: bytes, *, base_url: str | None = None) -> Reply:
        """Answer a ``POST /v1`` with ``body`` (a JSON array of tasks)."""
        self.bytes_received += len(body)
        base = (base_url or self.public_url).rstrip("/")
        hdrs = {k.lower(): v for k, v in headers.items()}
        recorded_headers = {k: ("<redacted>" if k == "authorization" else v) for k, v in hdrs.items()}
        header_key: str | None = None
        if "authorization" in hdrs:
            scheme, _, token = hdrs["authorization"].strip().partition(" ")
            header_key = token.strip() if scheme.lower() == "bearer" else hdrs["authorization"].strip()
        try:
            tasks = await asyncio.to_thread(json.loads, body) if len(body) > 1 << 20 else json.loads(body)
        except (ValueError, UnicodeDecodeError):
            self.requests.append((recorded_headers, []))
            if header_key and not self._key_ok(header_key):
                return self._auth_error("invalidApiKey")
            return self._error_reply(
                TaskFailure("invalidPayload", "The request body must be a JSON array of tasks; it is not valid JSON."),
                None,
            )
        self.requests.append((recorded_headers, _redact(tasks)))
        if header_key and not self._key_ok(header_key):
            return self._auth_error("invalidApiKey")
        if not isinstance(tasks, list) or not tasks or not all(isinstance(t, dict) for t in tasks):
            return self._error_reply(
                TaskFailure("invalidPayload", "The request body must be a non-empty JSON array of task objects."), None
            )
        auth_tasks = [t for t in tasks if t.get("taskType") == "authentication"]
        for t in auth_tasks:
            key = t.get("apiKey")
            if not isinstance(key, str) or not key:
                return self._auth_error("missingApiKey")
            if not self._key_ok(key):
                return self._auth_error("invalidApiKey")
        if not header_key and not auth_tasks:
            return self._auth_error("missingApiKey")

        types = {t["taskType"] for t in tasks if isinstance(t.get("taskType"), str)}
        fault = self.faults.take(types)
        if fault is not None:
            if fault.kind in STATUS_FAULTS:
                return self._status_fault(fault)
            if fault.kind == "drop-before":
                return Reply(action="drop")

        data: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        statuses: list[int] = []
        has_results = False
        for task in tasks:
            task_type = task.get("taskType")
            task_fault = fault if fault is not None and fault.on in (task_type, "any") else None
            try:
                if task_type == "authentication":
                    data.append({"taskType": "authentication", "connectionSessionUUID": self._new_uuid()})
                    continue
                if task_type == "imageInference":
                    d, e = await self._inference(task, task_fault, base, wait=not (fault and fault.kind == "hang"))
                elif task_type == "getResponse":
                    d, e = await self._get_response(task, task_fault, base)
                elif task_type == "imageUpload":
                    d, e = await self._upload(task, task_fault, base)
                elif task_type is None:
                    raise _invalid("taskType", "Missing parameter taskType.", "missingParameter")
                else:
                    raise _invalid(
                        "taskType",
                        f"Invalid value for taskType: {task_type!r}. This service handles authentication, "
                        "imageInference, getResponse and imageUpload.",
                    )
                data.extend(d)
                errors.extend(e)
                has_results = has_results or bool(d)
                if e and not d:
                    statuses.append(400)
            except TaskFailure as failure:
                errors.append(failure.item(task))
                statuses.append(failure.status)

        if fault is not None and fault.kind == "drop-after":
            return Reply(action="drop")
        if fault is not None and fault.kind == "hang":
            return Reply(action="hang")
        payload: dict[str, Any] = {}
        if data or not errors:
            payload["data"] = data
        if errors:
            payload["errors"] = errors
        status = 200 if has_results or not errors else (statuses[0] if statuses else 400)
        if any("imageBase64Data" in d or "imageDataURI" in d for d in data):
            body_out = await asyncio.to_thread(_dumps, payload)
        else:
            body_out = _dumps(payload)
        if fault is not None and fault.kind == "malformed-json":
            body_out = body_out[: max(1, len(body_out) // 2)]
        return Reply(status, {"Content-Type": "application/json"}, body_out)

    def _key_ok(self, key: str) -> bool:
        if not key:
            return False
        if self.config.api_key is None:
            return True
        return hmac.compare_digest(key.encode(), self.config.api_key.encode())

    def _auth_error(self, code: str) -> Reply:
        message = (
            "No API key was given. Send Authorization: Bearer <key> or an authentication task."
            if code == "missingApiKey"
            else "The API key is not valid."
        )
        return Reply.json(
            401,
            {"errors": [{"code": code, "message": message, "parameter": "apiKey", "taskType": "authentication",
                         "documentation": "https://runware.ai/docs/platform/authentication"}]},
        )  # fmt: skip

    def _error_reply(self, failure: TaskFailure, task: Any) -> Reply:
        return Reply.json(failure.status, {"errors": [failure.item(task)]})

    def _status_fault(self, fault: Fault) -> Reply:
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            ra = fault.retry_after
            headers["Retry-After"] = str(int(ra)) if float(ra).is_integer() else f"{ra:g}"
        status = int(fault.kind)
        if fault.kind == "502":
            body = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
            return Reply(502, {"Content-Type": "text/html", **headers}, body)
        code, message = _STATUS_CODES[fault.kind]
        return Reply.json(status, {"errors": [{"code": code, "message": message, "documentation": DOCS_URL}]}, headers)

    # -- imageInference ---------------------------------------------------------------

    async def _inference(
        self, task: dict[str, Any], fault: Fault | None, base: str, *, wait: bool
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        params = validate_inference(task)
        task_uuid = str(task["taskUUID"])
        if task_uuid in self._seen_task_uuids or (fault is not None and fault.kind == "conflict"):
            raise TaskFailure(
                "conflictTaskUUID",
                f"The taskUUID {task_uuid} was already used. Poll its results with getResponse, "
                "or send a new taskUUID.",
                "taskUUID",
                CONFLICT_STATUS,
            )
        # Reserve the taskUUID while references load, so a concurrent duplicate conflicts.
        self._seen_task_uuids.add(task_uuid)
        references = []
        try:
            for image_input, strength, pname in params.references:
                img = await self._load_image(image_input, pname, "invalidReferenceImage")
                # The palette only needs each reference's mean colour; keep a 1-pixel proxy.
                colour = await asyncio.to_thread(mean_colour, img)
                references.append((Image.new("RGB", (1, 1), colour), strength))
        except BaseException:
            self._seen_task_uuids.discard(task_uuid)
            raise
        if params.seed is not None:
            seeds = [(params.seed + i) % (spec.SEED_MAX + 1) for i in range(params.number_results)]
        else:
            first = self._rng.randint(0, spec.RANDOM_SEED_MAX)
            seeds = [(first + i) % (spec.RANDOM_SEED_MAX + 1) for i in range(params.number_results)]
        if fault is not None and fault.kind == "more-images":
            seeds.append((seeds[-1] + 1) % (spec.SEED_MAX + 1))
        items = [_Item(i, self._new_uuid(), s) for i, s in enumerate(seeds)]
        stored = _Task(task_uuid, params, references, time.monotonic(), max(0.0, self.config.latency_per_image), items)
        self._store(stored)
        self.submissions[task_uuid] += 1
        if fault is not None:
            if fault.kind == "task-error":
                stored.error = TaskFailure(
                    fault.code or "inferenceError",
                    "The model failed to generate the images for this task.",
                    None,
                    fault.status or 400,
                )
                raise stored.error
            if fault.kind == "fewer-images":
                stored.missing_last = True
            if fault.kind in IMAGE_FAULTS and params.delivery == "async":
                stored.corruption = fault.kind
        if stored.latency <= 0:
            self._start_rendering(stored)
        if params.delivery == "async":
            return [{"taskType": "imageInference", "taskUUID": task_uuid, "status": "processing"}], []
        if not wait:
            return [], []
        remaining = stored.due() - time.monotonic()
        await asyncio.gather(asyncio.sleep(max(0.0, remaining)), self._render_many(stored, stored.items, None))
        response_corruption = fault.kind if fault is not None and fault.kind in IMAGE_FAULTS else None
        items_out = stored.items[:-1] if stored.missing_last else stored.items
        data = [await self._item_payload(stored, it, base, response_corruption) for it in items_out]
        return data, []

    def _store(self, task: _Task) -> None:
        self._tasks[task.task_uuid] = task
        for item in task.items:
            self._generated[item.image_uuid] = (task, item)
        while len(self._tasks) > max(1, self.config.max_tasks):
            _, old = self._tasks.popitem(last=False)
            for item in old.items:
                self._generated.pop(item.image_uuid, None)

    def _start_rendering(self, task: _Task) -> None:
        """Render ``task``'s images in the background, in order (no latency set: rendering is
        the time each image takes)."""
        if self._render_pool is None:
            self._render_pool = concurrent.futures.ThreadPoolExecutor(
                max(1, os.cpu_count() or 1), thread_name_prefix="krea-simulator-render"
            )
        for item in task.items:
            if not task.is_missing(item, task.missing_last):
                item.rendering = self._render_pool.submit(self._render_sync, task, item, None)

    def _render_sync(self, task: _Task, item: _Item, corruption: str | None) -> bytes:
        p = task.params
        with item.lock:
            if corruption == "wrong-size":
                if item.wrong_size is None:
                    item.wrong_size = render_image(
                        p.prompt,
                        item.seed,
                        p.width // 2,
                        p.height // 2,
                        task.references,
                        p.output_format,
                        p.quality,
                        self.config.grain,
                    )
                return item.wrong_size
            if item.data is None:
                item.data = render_image(
                    p.prompt,
                    item.seed,
                    p.width,
                    p.height,
                    task.references,
                    p.output_format,
                    p.quality,
                    self.config.grain,
                )
            data = item.data
        if corruption == "truncated-png":
            return data[: len(data) // 2]
        return data

    async def _render(self, task: _Task, item: _Item, corruption: str | None) -> bytes:
        if corruption is None and item.data is not None:
            return item.data
        if corruption is None and item.rendering is not None:
            # Shielded: a cancelled waiter must not cancel the render itself.
            return await asyncio.shield(asyncio.wrap_future(item.rendering))
        return await asyncio.to_thread(self._render_sync, task, item, corruption)

    async def _render_many(self, task: _Task, items: list[_Item], corruption: str | None) -> list[bytes]:
        return list(await asyncio.gather(*(self._render(task, it, corruption) for it in items)))

    async def _item_payload(self, task: _Task, item: _Item, base: str, corruption: str | None) -> dict[str, Any]:
        p = task.params
        out: dict[str, Any] = {
            "taskType": "imageInference",
            "taskUUID": task.task_uuid,
            "imageUUID": item.image_uuid,
            "seed": item.seed,
            "status": "success",
        }
        if p.output_type == "URL":
            url = f"{base}/images/{item.image_uuid}.{spec.FORMAT_EXTENSIONS[p.output_format]}"
            out["imageURL"] = url + (f"?fault={corruption}" if corruption else "")
        else:
            data = await self._render(task, item, corruption)
            b64 = base64.b64encode(data).decode()
            if corruption == "bad-base64":
                b64 = _corrupt_base64(b64)
            if p.output_type == "base64Data":
                out["imageBase64Data"] = b64
            else:
                out["imageDataURI"] = f"data:{_MIME[p.output_format]};base64,{b64}"
        if p.check_content:
            out["NSFWContent"] = bool(_NSFW_RE.search(p.prompt))
        if p.include_cost:
            out["cost"] = round(self.config.cost_per_image, 6)
        return out

    # -- getResponse ------------------------------------------------------------------

    async def _get_response(
        self, task: dict[str, Any], fault: Fault | None, base: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        task_uuid = task.get("taskUUID")
        if task_uuid is None:
            raise _invalid("taskUUID", "Missing parameter taskUUID.", "missingParameter")
        stored = self._tasks.get(task_uuid) if isinstance(task_uuid, str) else None
        if stored is None:
            raise TaskFailure(
                "taskFailedOrNotFound", f"No task with taskUUID {task_uuid!r} was found.", "taskUUID", NOT_FOUND_STATUS
            )
        if stored.error is not None:
            raise stored.error
        if fault is not None and fault.kind == "task-error":
            raise TaskFailure(
                fault.code or "inferenceError", "The service could not report on this task.", None, fault.status or 400
            )
        missing_last = stored.missing_last or (fault is not None and fault.kind == "fewer-images")
        n = len(stored.items)
        if stored.latency <= 0 and not any(
            stored.is_finished(it, 0.0) and not stored.is_missing(it, missing_last) for it in stored.items
        ):
            # None rendered yet: wait for the first, rather than answer that all are processing.
            first = next((it for it in stored.items if it.rendering is not None and it.data is None), None)
            if first is not None and first.rendering is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(asyncio.wrap_future(first.rendering))
        now = time.monotonic()
        finished = {it.index for it in stored.items if stored.is_finished(it, now, missing_last)}
        done = [it for it in stored.items if it.index in finished and not stored.is_missing(it, missing_last)]
        corruption = None
        if fault is not None and fault.kind in IMAGE_FAULTS:
            corruption = fault.kind
        elif stored.corruption is not None and done:
            # A fault injected on the submission spoils the first answer that carries images.
            corruption, stored.corruption = stored.corruption, None
        if stored.params.output_type != "URL":
            await self._render_many(stored, done, corruption)
        data: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in stored.items:
            if item.index not in finished:
                data.append({"taskType": "imageInference", "taskUUID": stored.task_uuid, "status": "processing"})
            elif stored.is_missing(item, missing_last):
                errors.append(
                    {
                        "code": "inferenceError",
                        "message": f"Image {item.index + 1} of {n} could not be generated.",
                        "taskType": "imageInference",
                        "taskUUID": stored.task_uuid,
                        "status": "error",
                        "documentation": DOCS_URL,
                    }
                )
            else:
                data.append(await self._item_payload(stored, item, base, corruption))
        return data, errors

    # -- imageUpload and image inputs -------------------------------------------------

    async def _upload(
        self, task: dict[str, Any], fault: Fault | None, base: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        for key in task:
            if key not in ("taskType", "taskUUID", "image"):
                raise _invalid(key, f"Unknown parameter {key} for imageUpload.", "unknownParameter")
        task_uuid = _check_task_uuid(task)
        if "image" not in task:
            raise _invalid("image", "Missing parameter image: a data URI, base64 data or URL.", "missingParameter")
        if task_uuid in self._seen_task_uuids or (fault is not None and fault.kind == "conflict"):
            raise TaskFailure(
                "conflictTaskUUID", f"The taskUUID {task_uuid} was already used.", "taskUUID", CONFLICT_STATUS
            )
        if fault is not None and fault.kind == "task-error":
            raise TaskFailure(fault.code or "internalServerError", "The upload failed.", None, fault.status or 400)
        value = task["image"]
        if not isinstance(value, str) or not value.strip():
            raise _invalid(
                "image", "Invalid value for image: it must be a data URI, base64 data or URL.", "invalidImage"
            )
        self._seen_task_uuids.add(task_uuid)
        try:
            img = await self._load_image(value.strip(), "image", "invalidImage")
        except BaseException:
            self._seen_task_uuids.discard(task_uuid)
            raise
        image_uuid = self._new_uuid()
        self._uploads[image_uuid] = _Upload(img, time.time())
        while len(self._uploads) > max(1, self.config.max_uploads):
            self._uploads.popitem(last=False)
        self.upload_count += 1
        self.upload_order.append(image_uuid)
        return [
            {"taskType": "imageUpload", "taskUUID": task_uuid, "imageUUID": image_uuid,
             "imageURL": f"{base}/images/{image_uuid}.png"}
        ], []  # fmt: skip

    def _lookup_upload(self, image_uuid: str) -> Image.Image | None:
        upload = self._uploads.get(image_uuid)
        if upload is None:
            return None
        now = time.time()
        if now - upload.last_used > spec.UPLOAD_LIFETIME_S:
            del self._uploads[image_uuid]
            return None
        upload.last_used = now
        self._uploads.move_to_end(image_uuid)
        return upload.image

    async def _load_image(self, value: str, parameter: str, code: str) -> Image.Image:
        """Resolve an image input: imageUUID, URL, data URI or base64."""
        if is_uuid(value):
            return await self._image_by_uuid(value.lower(), parameter, code)
        if value.startswith("data:"):
            header, sep, payload = value.partition(",")
            if not sep or not header.endswith(";base64"):
                raise TaskFailure(
                    code, f"Invalid image in {parameter}: the data URI must be base64-encoded.", parameter
                )
            try:
                raw = _decode_base64(payload)
            except (ValueError, binascii.Error):
                message = f"Invalid image in {parameter}: the data URI is not valid base64."
                raise TaskFailure(code, message, parameter) from None
            return await asyncio.to_thread(_decode_image, raw, parameter, code)
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and parts.netloc:
            m = _IMAGE_PATH_RE.match(parts.path)
            if m and (m.group(1).lower() in self._generated or m.group(1).lower() in self._uploads):
                return await self._image_by_uuid(m.group(1).lower(), parameter, code)
            raw = await self._fetch(value, parameter, code)
            return await asyncio.to_thread(_decode_image, raw, parameter, code)
        try:
            raw = _decode_base64(value)
        except (ValueError, binascii.Error):
            raise TaskFailure(
                code,
                f"Invalid image in {parameter}: it is not an imageUUID, an http(s) URL, a data URI or base64 data.",
                parameter,
            ) from None
        return await asyncio.to_thread(_decode_image, raw, parameter, code)

    async def _image_by_uuid(self, image_uuid: str, parameter: str, code: str) -> Image.Image:
        img = self._lookup_upload(image_uuid)
        if img is not None:
            return img
        entry = self._generated.get(image_uuid)
        if entry is not None and entry[0].is_finished(entry[1], time.monotonic()):
            data = await self._render(entry[0], entry[1], None)
            return await asyncio.to_thread(_decode_image, data, parameter, code)
        raise TaskFailure(
            code,
            f"Invalid image in {parameter}: no image with imageUUID {image_uuid} is stored (uploads are "
            "forgotten after a while); upload it again.",
            parameter,
        )

    async def _fetch(self, url: str, parameter: str, code: str) -> bytes:
        if not is_loopback(url):  # the same rule that decides where the client sends the key
            raise TaskFailure(
                code, f"Invalid image in {parameter}: the simulator only fetches images from loopback hosts.", parameter
            )
        try:
            async with (
                httpx.AsyncClient(timeout=URL_FETCH_TIMEOUT_S, follow_redirects=False) as client,
                client.stream("GET", url) as response,
            ):
                if response.status_code != 200:
                    message = f"Invalid image in {parameter}: fetching it answered HTTP {response.status_code}."
                    raise TaskFailure(code, message, parameter)
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_IMAGE_BYTES:
                        raise TaskFailure(
                            code, f"Invalid image in {parameter}: it is larger than {MAX_IMAGE_BYTES} bytes.", parameter
                        )
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.HTTPError as exc:
            message = f"Invalid image in {parameter}: it could not be fetched ({exc})."
            raise TaskFailure(code, message, parameter) from None


def _not_allowed(method: str) -> Reply:
    return Reply.json(405, {"errors": [{"code": "methodNotAllowed", "message": f"Use {method}."}]}, {"Allow": method})


def _encode_png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def _redact(tasks: Any) -> list[Any]:
    if not isinstance(tasks, list):
        return [tasks]
    out: list[Any] = []
    for t in tasks:
        if isinstance(t, dict) and "apiKey" in t:
            t = {**t, "apiKey": "<redacted>"}
        out.append(t)
    return out

"""How an image was made: the one typed generation record.

A :class:`GenerationRecord` is made by the request (:meth:`GenerationRequest.describe`),
completed by the client (the references as sent) and by the library (what the service
answered, when it was saved), embedded in every file, indexed, and read back by the
viewer, recall, export and the command line. It lives in the api layer because the
request and the client make it, and the api imports no other part of the app.

:func:`parse_record` is the only way in from untrusted input (embedded metadata, other
tools' files, records of older versions): it never raises, makes text safe to store and
encode, bounds numbers and dates, and keeps keys it does not know in ``extras``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from typing import Any

from krea_desktop.api import spec

RECORD_VERSION = 1
APP = "krea-desktop"

# Reference strings longer than this (data URIs, base64) are kept as their hash.
MAX_REFERENCE_CHARS = 512
# Bounds for what is kept from untrusted input.
_MAX_TEXT = 64 * 1024
_MAX_SIDE = 1_000_000
_MAX_EXTRAS_DEPTH = 16
_MAX_EXTRAS_ITEMS = 512
_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)
_SURROGATES = re.compile(r"[\ud800-\udfff]")


# ---------------------------------------------------------------------------------------------
# Safe values


def safe_text(value: Any, limit: int = _MAX_TEXT) -> str | None:
    """``value`` as text that encodes as UTF-8 and fits in SQLite: lone surrogates become
    U+FFFD, NULs are dropped, length is bounded. None for anything that is not text."""
    if not isinstance(value, str):
        return None
    text = _SURROGATES.sub("\ufffd", value[:limit]).replace("\x00", "")
    return text


def _int(value: Any, lo: int = _INT64_MIN, hi: int = _INT64_MAX) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,20}\s*", value):
        value = int(value)
    if isinstance(value, int) and lo <= value <= hi:
        return value
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _strength(value: Any) -> float | None:
    """A reference's strength as the model takes it (-2 to 2); one outside that, which no
    image was made with (a hostile or mistaken file), is not known."""
    number = _float(value)
    return number if number is not None and spec.STRENGTH_MIN <= number <= spec.STRENGTH_MAX else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _choice(value: Any, allowed: tuple[str, ...]) -> str | None:
    if isinstance(value, str):
        for choice in allowed:
            if value.strip().lower() == choice.lower():
                return choice
    return None


def iso_utc(when: datetime) -> str:
    """``2024-05-01T12:00:00.123Z``: fixed width, so the strings sort chronologically."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def parse_time(value: Any) -> str | None:
    """An ISO 8601 time in the canonical form of :func:`iso_utc`, or None when it cannot
    be read or lies outside the years 1 to 9999 once moved to UTC."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    text = _FRACTION.sub(_six_digits, value.strip().replace("Z", "+00:00"))
    try:
        return iso_utc(datetime.fromisoformat(text))
    except (ValueError, OverflowError):
        return None


# A fraction of a second, read with six digits whatever its length (Python 3.10's
# fromisoformat takes only three or six).
_FRACTION = re.compile(r"(?<=:\d\d)[.,](\d+)")


def _six_digits(match: re.Match[str]) -> str:
    return "." + match.group(1)[:6].ljust(6, "0")


def derive_ratio(width: Any, height: Any, hint: Any = None) -> str | None:
    """The one place a ratio is derived: the model's preset for this exact size, else a
    preset name the record already gave, else None."""
    if isinstance(width, int) and isinstance(height, int):
        by_size = spec.RATIOS_BY_SIZE.get((width, height))
        if by_size is not None:
            return by_size.name
    if isinstance(hint, str) and hint in spec.RATIOS_BY_NAME:
        return hint
    return None


def _reference_string(value: Any) -> str | None:
    text = safe_text(value, limit=1 << 30)
    if text is None:
        return None
    if len(text) > MAX_REFERENCE_CHARS:
        import hashlib  # not at the top: OpenSSL's load is not on the window's way to ready

        return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    return text


def _jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` reduced to JSON types with safe text, bounded in depth and size."""
    if depth > _MAX_EXTRAS_DEPTH:
        return None
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _INT64_MAX else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for i, (k, v) in enumerate(value.items()):
            if i >= _MAX_EXTRAS_ITEMS:
                break
            out[safe_text(str(k), 256) or ""] = _jsonable(v, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in list(value)[:_MAX_EXTRAS_ITEMS]]
    return safe_text(str(value))


_IMAGE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


def image_id(value: Any) -> str | None:
    """``value`` when it can name a library image (an imageUUID: letters, digits, ``-``
    and ``_``, at most 128), else None."""
    return value if isinstance(value, str) and _IMAGE_ID.match(value) else None


# ---------------------------------------------------------------------------------------------
# The record


SWEEP_AXES = (*(f"ref{i}" for i in range(1, spec.MAX_REFERENCES + 1)), "creativity", "seed")
_MAX_SWEEP_VALUES = 64


@dataclass(frozen=True)
class SweepAxis:
    """One varied parameter of a sweep: ``ref1``…``ref10`` (that reference's strength),
    ``creativity`` or ``seed``, and its values in order."""

    name: str
    values: tuple[Any, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "values": list(self.values)}


@dataclass(frozen=True)
class SweepTag:
    """Where an image stands in a sweep: the sweep's id, its axes (the first runs along
    the columns, the second down the rows) and ``place``, the image's index along each
    axis. The contact sheet has an empty ``place``."""

    id: str
    axes: tuple[SweepAxis, ...]
    place: tuple[int, ...] = ()

    @property
    def is_sheet(self) -> bool:
        return not self.place

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "axes": [a.to_json() for a in self.axes]}
        if self.place:
            out["place"] = list(self.place)
        return out


def _sweep_value(name: str, value: Any) -> Any:
    if name == "creativity":
        return _choice(value, spec.CREATIVITY_LEVELS)
    if name == "seed":
        return _int(value, spec.SEED_MIN, spec.SEED_MAX)
    number = _float(value)
    return None if number is None or abs(number) > 1e6 else number


def parse_sweep(raw: Any) -> SweepTag | None:
    """A sweep tag from untrusted JSON, or None when it is not a usable one."""
    if not isinstance(raw, Mapping):
        return None
    sweep_id = image_id(raw.get("id"))
    axes_raw = raw.get("axes")
    if sweep_id is None or not isinstance(axes_raw, (list, tuple)) or not 1 <= len(axes_raw) <= 2:
        return None
    axes: list[SweepAxis] = []
    for item in axes_raw:
        if not isinstance(item, Mapping) or item.get("name") not in SWEEP_AXES:
            return None
        name = item["name"]
        values_raw = item.get("values")
        if not isinstance(values_raw, (list, tuple)) or not 1 <= len(values_raw) <= _MAX_SWEEP_VALUES:
            return None
        values = tuple(_sweep_value(name, v) for v in values_raw)
        if any(v is None for v in values):
            return None
        axes.append(SweepAxis(name, values))
    place_raw = raw.get("place", ())
    if not isinstance(place_raw, (list, tuple)):
        return None
    place = tuple(_int(p, 0, _MAX_SWEEP_VALUES - 1) for p in place_raw)
    if place and (
        len(place) != len(axes) or any(p is None or p >= len(a.values) for p, a in zip(place, axes, strict=True))
    ):
        return None
    return SweepTag(sweep_id, tuple(axes), tuple(p for p in place if p is not None))


@dataclass(frozen=True)
class ReferenceRecord:
    """One reference as it was used: ``image`` as sent (an imageUUID, URL or hash),
    ``source`` where it came from (a file or URL), its strength, and ``parent``: the
    imageUUID of the library image it is (its lineage), when it came from the library."""

    image: str | None = None
    strength: float | None = None
    source: str | None = None
    parent: str | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "image", _reference_string(self.image))
        object.__setattr__(self, "source", _reference_string(self.source))
        object.__setattr__(self, "parent", image_id(self.parent))

    def replace(self, **changes: Any) -> ReferenceRecord:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"image": self.image, "strength": self.strength}
        if self.source is not None:
            out["source"] = self.source
        if self.parent is not None:
            out["parent"] = self.parent
        for key, value in self.extras.items():
            out.setdefault(key, value)
        return out


_REFERENCE_KEYS = {"image", "strength", "source", "parent"}


def _parse_reference(raw: Any) -> ReferenceRecord | None:
    if isinstance(raw, str):
        return ReferenceRecord(image=raw)
    if not isinstance(raw, Mapping):
        return None
    extras = {str(k): _jsonable(v) for k, v in raw.items() if k not in _REFERENCE_KEYS}
    source = raw.get("source")
    return ReferenceRecord(
        image=raw.get("image") if isinstance(raw.get("image"), str) else None,
        strength=_strength(raw.get("strength")),
        source=source if isinstance(source, str) else None,
        parent=raw.get("parent") if isinstance(raw.get("parent"), str) else None,
        extras=extras,
    )


@dataclass(frozen=True)
class GenerationRecord:
    """Every parameter that made an image, and what the service said of it.

    Fields are None where unknown (another tool's file says less). ``ratio`` is always
    derived from the size when the size is one of the model's presets.
    """

    prompt: str = ""
    negative_prompt: str | None = None
    ratio: str | None = None
    width: int | None = None
    height: int | None = None
    seed: int | None = None
    creativity: str | None = None
    output_format: str | None = None
    output_quality: int | None = None
    number_results: int | None = None
    references: tuple[ReferenceRecord, ...] = ()
    model: str | None = None
    output_type: str | None = None
    delivery_method: str | None = None
    check_content: bool | None = None
    safety_mode: str | None = None
    include_cost: bool | None = None
    ttl: int | None = None
    task_uuid: str | None = None
    image_uuid: str | None = None
    index: int | None = None
    cost: float | None = None
    nsfw: bool | None = None
    created_at: str | None = None
    app: str | None = None
    version: str | None = None
    record_version: int | None = None
    # Where the image stands in a sweep (a grid of variations), when it was made by one.
    sweep: SweepTag | None = None
    # Made by the built-in simulator (demo mode): its cost is made up. None in records
    # written before it was kept, and in other tools' files.
    simulated: bool | None = None
    # Keys this version does not know (another tool's, or a newer record's), kept as read.
    extras: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ratio", derive_ratio(self.width, self.height, self.ratio))
        object.__setattr__(self, "references", tuple(self.references))

    # -- reading ------------------------------------------------------------------------

    @property
    def is_empty(self) -> bool:
        """True when the record says nothing about how an image was made."""
        return self == GenerationRecord()

    @property
    def says_how_made(self) -> bool:
        """Whether the record says anything of how the image was made, beyond what any
        file has (its id, format and size, when it was indexed): a plain photo's says
        nothing, and no parameters are made up for it."""
        identity = {"image_uuid": None, "task_uuid": None, "index": None, "output_format": None}
        return self.replace(**identity, width=None, height=None, ratio=None, created_at=None) != GenerationRecord()

    @property
    def has_prompt(self) -> bool:
        return bool(self.prompt.strip())

    @property
    def output_format_name(self) -> str | None:
        return spec.normalize_output_format(self.output_format)

    def replace(self, **changes: Any) -> GenerationRecord:
        return replace(self, **changes)

    def shared_by_cells(self) -> GenerationRecord:
        """A contact sheet's record as every one of its cells had it: the seed, the
        creativity and the reference strengths its axes varied left out (the request the
        sweep was composed from had one of each, which no cell used). Any other record as
        it is."""
        if self.sweep is None or not self.sweep.is_sheet:
            return self
        varied = {axis.name for axis in self.sweep.axes}
        return self.replace(
            seed=None if "seed" in varied else self.seed,
            creativity=None if "creativity" in varied else self.creativity,
            references=tuple(
                ref.replace(strength=None) if f"ref{i}" in varied else ref for i, ref in enumerate(self.references, 1)
            ),
        )

    # -- writing ------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The JSON form embedded in files and kept in the index (snake_case keys; None
        values of optional fields are left out, except those every record has)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "extras":
                continue
            value = getattr(self, f.name)
            if f.name == "references":
                out["references"] = [r.to_json() for r in value]
            elif f.name == "sweep":
                if value is not None:
                    out["sweep"] = value.to_json()
            elif value is not None or f.name in _ALWAYS_WRITTEN:
                out[f.name] = value
        for key, value in self.extras.items():
            out.setdefault(key, value)
        return out


# Written even when None, so that a record read back says "unknown" rather than nothing.
_ALWAYS_WRITTEN = frozenset({"prompt", "ratio", "width", "height", "seed", "creativity", "model"})
_FIELDS = {f.name for f in fields(GenerationRecord)}
# Keys other forms of the record use for the same ideas (the wire task, older records).
_ALIASES = {
    "positivePrompt": "prompt",
    "negativePrompt": "negative_prompt",
    "numberResults": "number_results",
    "outputFormat": "output_format",
    "outputQuality": "output_quality",
    "outputType": "output_type",
    "deliveryMethod": "delivery_method",
    "checkContent": "check_content",
    "includeCost": "include_cost",
    "taskUUID": "task_uuid",
    "imageUUID": "image_uuid",
    "NSFWContent": "nsfw",
}
# Never kept: they can carry credentials and say nothing about the picture.
_DROPPED = frozenset({"webhook_url", "webhookURL", "upload_endpoint", "uploadEndpoint", "taskType"})


def parse_record(value: Any) -> GenerationRecord:
    """A record from anything: this app's JSON record (any version), a partial record
    parsed from another tool's text, or a wire task. Never raises; unusable values
    become None, unknown keys are kept in ``extras``."""
    try:
        return _parse(value)
    except Exception:  # a hostile structure must not take down whoever reads it
        return GenerationRecord()


def _parse(value: Any) -> GenerationRecord:
    if not isinstance(value, Mapping):
        return GenerationRecord()
    raw: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    for key, item in list(value.items())[: _MAX_EXTRAS_ITEMS * 4]:
        if not isinstance(key, str) or key in _DROPPED:
            continue
        name = _ALIASES.get(key, key)
        if name in _FIELDS and name != "extras":
            raw.setdefault(name, item)
        elif key == "settings" and isinstance(item, Mapping) and "creativity" in item:
            raw.setdefault("creativity", item.get("creativity"))
        elif key == "safety" and isinstance(item, Mapping):
            raw.setdefault("check_content", item.get("checkContent"))
            raw.setdefault("safety_mode", item.get("mode"))
        elif key == "inputs" and isinstance(item, Mapping):
            raw.setdefault("references", item.get("referenceImages"))
        else:
            extras[safe_text(key, 256) or ""] = _jsonable(item)
    refs_raw = raw.get("references")
    refs = tuple(
        r for r in (_parse_reference(x) for x in (refs_raw if isinstance(refs_raw, (list, tuple)) else ())) if r
    )[:_MAX_EXTRAS_ITEMS]
    fmt = spec.normalize_output_format(raw.get("output_format"))
    return GenerationRecord(
        prompt=safe_text(raw.get("prompt")) or "",
        negative_prompt=safe_text(raw.get("negative_prompt")),
        ratio=raw.get("ratio") if isinstance(raw.get("ratio"), str) else None,
        width=_int(raw.get("width"), 1, _MAX_SIDE),
        height=_int(raw.get("height"), 1, _MAX_SIDE),
        seed=_int(raw.get("seed")),
        creativity=_choice(raw.get("creativity"), spec.CREATIVITY_LEVELS),
        output_format=fmt,
        output_quality=_int(raw.get("output_quality"), 0, 100),
        number_results=_int(raw.get("number_results"), 1, 10_000),
        references=refs,
        model=safe_text(raw.get("model"), 256),
        output_type=_choice(raw.get("output_type"), spec.OUTPUT_TYPES),
        delivery_method=_choice(raw.get("delivery_method"), spec.DELIVERY_METHODS),
        check_content=_bool(raw.get("check_content")),
        safety_mode=_choice(raw.get("safety_mode"), spec.SAFETY_MODES),
        include_cost=_bool(raw.get("include_cost")),
        ttl=_int(raw.get("ttl"), 0),
        task_uuid=safe_text(raw.get("task_uuid"), 128),
        image_uuid=safe_text(raw.get("image_uuid"), 128),
        index=_int(raw.get("index"), 0, 1_000_000),
        cost=_float(raw.get("cost")),
        nsfw=_bool(raw.get("nsfw")),
        created_at=parse_time(raw.get("created_at")),
        app=safe_text(raw.get("app"), 256),
        version=safe_text(raw.get("version"), 256),
        record_version=_int(raw.get("record_version"), 0, 1_000_000),
        sweep=parse_sweep(raw.get("sweep")),
        simulated=_bool(raw.get("simulated")),
        extras=extras,
    )


def record_json_text(record: GenerationRecord) -> str:
    """The record as compact ASCII JSON: survives every container unchanged."""
    return json.dumps(record.to_json(), ensure_ascii=True, separators=(",", ":"), default=str)

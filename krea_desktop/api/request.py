"""Building and validating ``imageInference`` tasks.

Everything is checked before anything is sent: an invalid value raises
:class:`ValidationError` naming the parameter and the allowed range.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from krea_desktop.api import spec
from krea_desktop.api.errors import ValidationError
from krea_desktop.api.record import GenerationRecord, ReferenceRecord, SweepTag
from krea_desktop.wording import counted

# Lone surrogates: what Python makes of bytes that are not UTF-8 (a Latin-1 command line).
_UNENCODABLE = re.compile(r"[\ud800-\udfff\x00]")
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def new_task_uuid() -> str:
    import uuid  # uuid imports platform (tens of ms); the window's first screen needs neither

    return str(uuid.uuid4())


def is_uuid(value: str) -> bool:
    return bool(_UUID_RE.match(value))


def is_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@dataclass(frozen=True)
class ReferenceImage:
    """One reference: where the image comes from and how hard it pulls (+) or pushes (-).

    ``image`` is a local file (a ``Path``, or a string naming a file that exists, such as
    ``"fox.png"`` or ``"~/refs/fox.png"``), raw encoded bytes, or a string the service
    understands (an imageUUID, an http(s) URL, a data URI or base64). Local files and
    bytes are uploaded once by the client and replaced by their imageUUID.
    """

    image: str | bytes | Path
    strength: float = spec.DEFAULT_STRENGTH
    # The imageUUID of the library image this reference is, when known (its lineage);
    # recorded with the result, never sent.
    parent: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.image, str) and (path := _file_named(self.image)) is not None:
            object.__setattr__(self, "image", path)

    def validate(self, index: int) -> None:
        name = f"inputs.referenceImages[{index}].strength"
        if isinstance(self.strength, bool) or not isinstance(self.strength, (int, float)):
            raise ValidationError(f"{name} must be a number from -2 to 2.", parameter=name)
        if not math.isfinite(self.strength) or not (spec.STRENGTH_MIN <= self.strength <= spec.STRENGTH_MAX):
            raise ValidationError(f"{name} is {self.strength}, but it must be from -2 to 2.", parameter=name)
        img = self.image
        pname = f"inputs.referenceImages[{index}].image"
        if isinstance(img, (bytes, bytearray)):
            if not img:
                raise ValidationError(f"{pname} is empty.", parameter=pname)
        elif isinstance(img, Path):
            pass  # read (and checked) when uploaded
        elif isinstance(img, str):
            if not img.strip():
                raise ValidationError(f"{pname} is empty.", parameter=pname)
            if not (is_uuid(img) or is_url(img) or img.startswith("data:") or _looks_like_base64(img)):
                shown = img if len(img) <= 80 else img[:77] + "..."
                raise ValidationError(
                    f"{pname} is “{shown}”: no file of that name exists, and it is not a URL, "
                    "an imageUUID or base64 image data.",
                    parameter=pname,
                )
        else:
            raise ValidationError(f"{pname} must be a file, image data, a URL or an imageUUID.", parameter=pname)

    def to_wire(self) -> dict[str, Any]:
        if not isinstance(self.image, str):
            raise TypeError("reference images must be resolved to a string before sending")
        return {"image": self.image, "strength": round(float(self.strength), 4)}


_BASE64 = re.compile(r"[A-Za-z0-9+/=_\-\s]+")  # standard or URL-safe, wrapped or not
# No image is smaller: the least PNG is 67 bytes, 92 characters of base64. Shorter, a
# string of letters is a name ("moodboard", "refs/fox-2"), of a file that is not there.
_BASE64_MIN = 64


def _looks_like_base64(text: str) -> bool:
    return len(text.strip()) >= _BASE64_MIN and _BASE64.fullmatch(text) is not None


def path_as_typed(text: str) -> Path:
    """The file a person means by ``text``: ``~`` and ``~user`` are their home folders,
    and a name like ``~draft.png`` (no user "draft") is just that name."""
    path = Path(text)
    if not text.startswith("~"):
        return path
    # os.path.expanduser, as pathlib's own does from Python 3.12 on (3.10's and 3.11's
    # raised for a user it did not know): an unknown ~user is left as it is.
    expanded = Path(os.path.expanduser(text))
    # Windows does not know other users' homes: it names a folder beside the user's own
    # for any ~name (~draft.png becoming C:\Users\draft.png). A ~name whose home is not
    # there is a name.
    first = path.parts[0]
    if first != "~" and not Path(os.path.expanduser(first)).is_dir():
        return path
    return expanded


def _file_named(text: str) -> Path | None:
    """The existing file ``text`` names, if it is not an imageUUID, a URL, a data URI or a
    long string (base64 image data is thousands of characters); else None. A folder or a
    device is one too: reading it says what it is."""
    if not text.strip() or len(text) > 4096 or is_uuid(text) or is_url(text) or text.startswith("data:"):
        return None  # Path("") is the current folder
    path = path_as_typed(text)
    try:
        return path if path.exists() else None
    except (OSError, ValueError):  # too long a name, a NUL
        return None


def without_credentials(text: str) -> str:
    """``text``, less a user name and password written into it if it is a web address: what
    a record keeps goes into every image made from it."""
    if not is_url(text):
        return text
    parts = urlsplit(text)
    if "@" not in parts.netloc:
        return text
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _check_int(name: str, value: Any, lo: int, hi: int | None) -> None:
    rng = f"from {lo} to {hi}" if hi is not None else f"at least {lo}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be a whole number {rng}.", parameter=name)
    if value < lo or (hi is not None and value > hi):
        raise ValidationError(f"{name} is {value}, but it must be {rng}.", parameter=name)


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValidationError(f"{name} is {value!r}, but it must be True or False.", parameter=name)


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValidationError(f"{name} is {value!r}, but it must be one of {', '.join(allowed)}.", parameter=name)


@dataclass(frozen=True)
class GenerationRequest:
    """Every parameter of a Krea 2 Medium ``imageInference`` task."""

    prompt: str
    ratio: str = spec.DEFAULT_RATIO
    number_results: int = 1
    seed: int | None = None
    creativity: str = spec.DEFAULT_CREATIVITY
    references: tuple[ReferenceImage, ...] = ()
    output_type: str = "base64Data"
    output_format: str = spec.DEFAULT_OUTPUT_FORMAT
    output_quality: int = spec.DEFAULT_QUALITY
    delivery_method: str = "sync"
    check_content: bool = False
    safety_mode: str | None = None
    include_cost: bool = True
    ttl: int | None = None
    webhook_url: str | None = None
    upload_endpoint: str | None = None
    task_uuid: str = field(default_factory=new_task_uuid)
    # The cell of a sweep this task is, recorded with its image (never sent).
    sweep: SweepTag | None = None

    @property
    def size(self) -> tuple[int, int]:
        r = spec.RATIOS_BY_NAME[self.ratio]
        return r.width, r.height

    def with_new_task_uuid(self) -> GenerationRequest:
        return replace(self, task_uuid=new_task_uuid())

    def validate(self) -> None:
        if not isinstance(self.prompt, str):
            raise ValidationError("positivePrompt must be text.", parameter="positivePrompt")
        if _UNENCODABLE.search(self.prompt):
            raise ValidationError(
                "The prompt holds characters that are not valid text (often from pasting bytes in another "
                "encoding); retype those words.",
                parameter="positivePrompt",
            )
        n = len(self.prompt.strip())
        if n < spec.PROMPT_MIN or len(self.prompt) > spec.PROMPT_MAX:
            # Too short, it is counted as it is checked: without the spaces around it.
            has = counted(n, "character") if n < spec.PROMPT_MIN else counted(len(self.prompt), "character")
            if n < spec.PROMPT_MIN and n != len(self.prompt):
                has += " besides spaces"
            raise ValidationError(
                f"positivePrompt has {has}, but it must have from {spec.PROMPT_MIN} to {spec.PROMPT_MAX}.",
                parameter="positivePrompt",
            )
        if not isinstance(self.ratio, str) or self.ratio not in spec.RATIOS_BY_NAME:
            raise ValidationError(
                f"ratio is {self.ratio!r}, but it must be one of {' '.join(spec.RATIOS_BY_NAME)}.",
                parameter="ratio",
            )
        _check_int("numberResults", self.number_results, spec.RESULTS_MIN, spec.RESULTS_MAX)
        if self.seed is not None:
            _check_int("seed", self.seed, spec.SEED_MIN, spec.SEED_MAX)
        _check_choice("settings.creativity", self.creativity, spec.CREATIVITY_LEVELS)
        _check_choice("outputType", self.output_type, spec.OUTPUT_TYPES)
        _check_choice("outputFormat", self.output_format, spec.OUTPUT_FORMATS)
        _check_int("outputQuality", self.output_quality, spec.QUALITY_MIN, spec.QUALITY_MAX)
        _check_choice("deliveryMethod", self.delivery_method, spec.DELIVERY_METHODS)
        _check_bool("includeCost", self.include_cost)
        _check_bool("safety.checkContent", self.check_content)
        if self.safety_mode is not None:
            _check_choice("safety.mode", self.safety_mode, spec.SAFETY_MODES)
        if self.ttl is not None:
            if self.output_type != "URL":
                raise ValidationError("ttl only applies when outputType is URL.", parameter="ttl")
            _check_int("ttl", self.ttl, spec.TTL_MIN, None)
        for name, url in (("webhookURL", self.webhook_url), ("uploadEndpoint", self.upload_endpoint)):
            if url is not None and not is_url(url):
                raise ValidationError(f"{name} must be an http(s) URL.", parameter=name)
        if not isinstance(self.references, (tuple, list)):  # one reference, or a path, given alone
            raise ValidationError(
                "inputs.referenceImages must be a list of ReferenceImage(image, strength), even for one image.",
                parameter="inputs.referenceImages",
            )
        if len(self.references) > spec.MAX_REFERENCES:
            raise ValidationError(
                f"inputs.referenceImages has {len(self.references)} images, but at most "
                f"{spec.MAX_REFERENCES} are allowed.",
                parameter="inputs.referenceImages",
            )
        for i, ref in enumerate(self.references):
            if not isinstance(ref, ReferenceImage):  # typed so, but callers may pass (image, strength)
                name = f"inputs.referenceImages[{i}]"  # type: ignore[unreachable]
                raise ValidationError(f"{name} must be a ReferenceImage(image, strength).", parameter=name)
            ref.validate(i)
        if not is_uuid(self.task_uuid):
            raise ValidationError("taskUUID must be a UUID v4.", parameter="taskUUID")

    def to_task(self, references: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The wire task. ``references`` are the resolved ``{"image", "strength"}`` items;
        when omitted, every reference must already be a string."""
        self.validate()
        width, height = self.size
        task: dict[str, Any] = {
            "taskType": "imageInference",
            "taskUUID": self.task_uuid,
            "model": spec.MODEL_ID,
            "positivePrompt": self.prompt,
            "width": width,
            "height": height,
            "numberResults": self.number_results,
            "outputType": self.output_type,
            "outputFormat": self.output_format,
            "outputQuality": self.output_quality,
            "deliveryMethod": self.delivery_method,
            "includeCost": self.include_cost,
            "settings": {"creativity": self.creativity},
        }
        if self.seed is not None:
            task["seed"] = self.seed
        refs = references if references is not None else [r.to_wire() for r in self.references]
        if refs:
            task["inputs"] = {"referenceImages": refs}
        if self.check_content or self.safety_mode is not None:
            safety: dict[str, Any] = {"checkContent": self.check_content}
            if self.safety_mode is not None:
                safety["mode"] = self.safety_mode
            task["safety"] = safety
        if self.ttl is not None:
            task["ttl"] = self.ttl
        if self.webhook_url:
            task["webhookURL"] = self.webhook_url
        if self.upload_endpoint:
            task["uploadEndpoint"] = self.upload_endpoint
        return task

    def describe(self) -> GenerationRecord:
        """The request as a generation record (references by where they come from; raw
        bytes are named by nothing). Webhook and upload endpoints are left out: they can
        carry credentials and say nothing about the picture."""
        width, height = self.size
        return GenerationRecord(
            prompt=self.prompt,
            ratio=self.ratio,
            width=width,
            height=height,
            seed=self.seed,
            creativity=self.creativity,
            output_format=self.output_format,
            output_quality=self.output_quality,
            number_results=self.number_results,
            references=tuple(
                ReferenceRecord(
                    image=without_credentials(r.image) if isinstance(r.image, str) else None,
                    strength=float(r.strength),
                    source=without_credentials(str(r.image)) if isinstance(r.image, (str, Path)) else None,
                    parent=r.parent,
                )
                for r in self.references
            ),
            model=spec.MODEL_ID,
            output_type=self.output_type,
            delivery_method=self.delivery_method,
            check_content=self.check_content,
            safety_mode=self.safety_mode,
            include_cost=self.include_cost,
            ttl=self.ttl,
            task_uuid=self.task_uuid,
            sweep=self.sweep,
        )

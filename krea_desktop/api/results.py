"""What a finished generation hands over: one verified, encoded image and how it was made."""

from __future__ import annotations

from dataclasses import dataclass

from krea_desktop.api.record import GenerationRecord


@dataclass(frozen=True)
class GeneratedImage:
    task_uuid: str
    image_uuid: str
    data: bytes  # the encoded file exactly as the service produced it
    format: str  # "PNG" | "JPG" | "WEBP"
    width: int
    height: int
    seed: int | None
    cost: float | None = None
    nsfw: bool | None = None
    index: int = 0  # position within its batch, in arrival order
    # How it was made: every request parameter plus the references as sent (imageUUID,
    # strength, and where each came from). See ``GenerationRequest.describe``.
    record: GenerationRecord | None = None

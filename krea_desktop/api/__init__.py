"""The Runware protocol for Krea 2 Medium: pure Python, httpx and Pillow, no Qt."""

from krea_desktop.api.errors import KreaError, ValidationError
from krea_desktop.api.request import GenerationRequest, ReferenceImage
from krea_desktop.api.results import GeneratedImage

__all__ = ["GeneratedImage", "GenerationRequest", "KreaError", "ReferenceImage", "ValidationError"]

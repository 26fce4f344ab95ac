"""The Runware protocol for Krea 2 Medium: pure Python, httpx and Pillow, no Qt.

The names below are loaded on first use, so that importing one light module of the
package (``spec``, ``errors``) does not import the request and result machinery with it:
the window imports ``spec`` before its first paint.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from krea_desktop.api.client import RunwareClient
    from krea_desktop.api.errors import KreaError, ValidationError
    from krea_desktop.api.request import GenerationRequest, ReferenceImage
    from krea_desktop.api.results import GeneratedImage

_EXPORTS = {
    "RunwareClient": "krea_desktop.api.client",
    "KreaError": "krea_desktop.api.errors",
    "ValidationError": "krea_desktop.api.errors",
    "GenerationRequest": "krea_desktop.api.request",
    "ReferenceImage": "krea_desktop.api.request",
    "GeneratedImage": "krea_desktop.api.results",
}

__all__ = ["GeneratedImage", "GenerationRequest", "KreaError", "ReferenceImage", "RunwareClient", "ValidationError"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value

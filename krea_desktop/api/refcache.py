"""Which reference images the service already holds: content hash -> imageUUID.

The client asks before uploading and records each upload and each use, so a reference
is sent once and then named by its imageUUID. The library keeps a persistent
implementation in its SQLite index; :class:`MemoryReferenceCache` serves tests and
one-off command-line runs.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Protocol


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ReferenceCache(Protocol):
    def lookup(self, digest: str) -> tuple[str, float] | None:
        """The imageUUID and last-use time (epoch seconds) for a content hash, if known."""

    def remember(self, digest: str, image_uuid: str, when: float | None = None) -> None:
        """Record an upload, or a use of a known upload (which extends its life)."""

    def forget(self, digest: str) -> None:
        """Drop an entry the service no longer knows."""


class MemoryReferenceCache:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def lookup(self, digest: str) -> tuple[str, float] | None:
        with self._lock:
            return self._entries.get(digest)

    def remember(self, digest: str, image_uuid: str, when: float | None = None) -> None:
        with self._lock:
            self._entries[digest] = (image_uuid, time.time() if when is None else when)

    def forget(self, digest: str) -> None:
        with self._lock:
            self._entries.pop(digest, None)

"""How counts read in what the user is told: "1 image", "2 images", "12,500 images"."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str = "") -> str:
    """``n`` and ``noun``, the noun in the plural unless ``n`` is 1 (``plural`` when the
    plural is not ``noun`` + "s"); thousands are separated by commas."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"

"""How counts read in what the user is told: "1 image", "2 images", "12,500 images",
"340 KB", "1.62 MB"."""

from __future__ import annotations


def within(sentence: str) -> str:
    """``sentence`` to stand inside another: its full stop dropped, its first letter small
    unless the word is an acronym ("API key")."""
    text = sentence.strip().rstrip(".")
    if text.split(" ", 1)[0].rstrip(",;:") in _NAMES:
        return text
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


_NAMES = frozenset({"Runware", "Krea", "Windows", "Linux", "Python", "Qt", "Pillow"})  # never lowered


def for_count(n: int, one: str, more: str) -> str:
    """``one`` when ``n`` is 1, else ``more``: the words that agree with a count ("is" or
    "are", "it was" or "they were")."""
    return one if n == 1 else more


def listed(items: list[str]) -> str:
    """``items`` as a sentence lists them: "a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, the noun in the plural (+"s") unless ``n`` is 1; thousands are
    separated by commas."""
    return f"{n:,} {for_count(n, noun, noun + 's')}"


def file_size(n: int) -> str:
    """A file's size in bytes as a person reads it: whole KB under a megabyte (at least
    1 KB), MB with two decimals above (decimal units, as file managers show them)."""
    if n < 999_500:
        return f"{max(1, round(n / 1000)):,} KB"
    return f"{n / 1e6:,.2f} MB"


def size_over(n: int, limit: int) -> tuple[str, str]:
    """A size over ``limit`` and the limit itself, to be read side by side ("is 201 MB,
    more than the 200 MB"): the limit in the largest unit it is a whole number of (MB, KB
    or bytes, decimal as in :func:`file_size`), the size in the same unit rounded up, so
    that it never reads as equal to the limit."""
    for unit, name in ((1_000_000, "MB"), (1000, "KB"), (1, "bytes")):
        if limit % unit == 0 and limit >= unit:
            return f"{-(-n // unit):,} {name}", f"{limit // unit:,} {name}"
    return f"{n:,} bytes", f"{limit:,} bytes"  # a limit of 0


REFERENCE_NAME_LENGTH = 24  # characters of a reference's name in an axis title


def short_reference_name(label: str, limit: int = REFERENCE_NAME_LENGTH) -> str:
    """A reference's name for an axis title, from its label (a file's name, "host/…/name"
    for a web address, a description such as "pasted image"; see
    ``inputs.reference_label``): its last part, its middle left out when it is longer
    than ``limit``, so that its start and its extension remain."""
    name = label.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1] or label
    name = " ".join(name.split())  # a line break or tab in a file's name is one space in a title
    if len(name) <= limit:
        return name
    tail = (limit - 1) // 2
    return f"{name[: limit - 1 - tail].rstrip()}…{name[-tail:].lstrip()}"


def shortened(text: str, most: int = 80) -> str:
    """``text`` (a file's name or a folder) as a sentence can hold it: at most ``most``
    characters, its start and its end kept either side of "…"."""
    if len(text) <= most:
        return text
    tail = most // 3
    return f"{text[: most - tail - 1]}…{text[-tail:]}"

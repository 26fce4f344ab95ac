"""Faults the simulator can inject, and the little language that names them.

A fault spec is ``KIND[xN|x*|*][:OPTION=VALUE[,OPTION=VALUE]...]``:

- ``KIND`` is one of :data:`FAULT_KINDS` (``429``, ``500``, ``502``, ``503``, ``504``,
  ``drop-before``, ``drop-after``, ``hang``, ``malformed-json``, ``bad-base64``,
  ``truncated-png``, ``wrong-size``, ``fewer-images``, ``more-images``, ``task-error``,
  ``conflict``).
- ``xN`` applies the fault to the next N matching requests (default: once);
  ``*`` or ``x*`` applies it to every matching request, forever.
- Options (separated by ``:`` or ``,``):
  ``on=imageInference|getResponse|imageUpload|any`` chooses which requests match
  (default ``imageInference``: a request matches when it carries a task of that type);
  ``retry-after=SECONDS`` adds a ``Retry-After`` header to a status fault;
  ``code=CODE`` and ``status=HTTP`` change the error of ``task-error``.

Examples: ``503x2``, ``429:retry-after=2``, ``drop-after``, ``hang:on=getResponse``,
``task-error:code=timeoutProvider``, ``500*:on=any``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STATUS_FAULTS = ("429", "500", "502", "503", "504")
TRANSPORT_FAULTS = ("drop-before", "drop-after", "hang")
# Faults that spoil the image data of an answer.
IMAGE_FAULTS = ("bad-base64", "truncated-png", "wrong-size")
FAULT_KINDS: tuple[str, ...] = (
    *STATUS_FAULTS,
    *TRANSPORT_FAULTS,
    "malformed-json",
    *IMAGE_FAULTS,
    "fewer-images",
    "more-images",  # one image more than asked (a service that double-delivers)
    "task-error",
    "conflict",
)
TARGETS = ("imageInference", "getResponse", "imageUpload", "any")

_SPEC_RE = re.compile(
    r"^(?P<kind>[a-z0-9-]+?)(?:(?:x(?P<count>\d+|\*))|(?P<star>\*))?(?::(?P<opts>.*))?$", re.IGNORECASE
)


@dataclass
class Fault:
    """One injected misbehaviour.

    ``count`` is how many more matching requests it applies to (``None``: all of them).
    """

    kind: str
    count: int | None = 1
    on: str = "imageInference"
    retry_after: float | None = None
    code: str | None = None
    status: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; known faults: {', '.join(FAULT_KINDS)}")
        if self.on not in TARGETS:
            raise ValueError(f"fault target on={self.on!r} must be one of {', '.join(TARGETS)}")
        if self.count is not None and self.count < 1:
            raise ValueError(f"fault count must be at least 1, not {self.count}")

    def matches(self, task_types: set[str]) -> bool:
        return self.on == "any" or self.on in task_types

    def spec(self) -> str:
        """The spec string that parses back to this fault."""
        text = self.kind + ("" if self.count == 1 else "*" if self.count is None else f"x{self.count}")
        opts = []
        if self.on != "imageInference":
            opts.append(f"on={self.on}")
        if self.retry_after is not None:
            opts.append(f"retry-after={self.retry_after:g}")
        if self.code is not None:
            opts.append(f"code={self.code}")
        if self.status is not None:
            opts.append(f"status={self.status}")
        return text + (":" + ",".join(opts) if opts else "")


def parse_fault(text: str) -> Fault:
    """Parse a fault spec such as ``503x2`` or ``429:retry-after=2`` (see the module doc).

    Raises ``ValueError`` with a readable message for anything else.
    """
    raw = text.strip()
    m = _SPEC_RE.match(raw)
    if not m or m.group("kind").lower() not in FAULT_KINDS:
        raise ValueError(
            f"fault spec {text!r} is not understood; expected KIND[xN|*][:option=value,...] "
            f"with KIND one of {', '.join(FAULT_KINDS)}"
        )
    count_text = m.group("count")
    count: int | None
    if m.group("star") or count_text == "*":
        count = None
    elif count_text:
        count = int(count_text)
    else:
        count = 1
    fault = Fault(m.group("kind").lower(), count=count)
    opts = m.group("opts")
    if opts:
        for part in re.split(r"[:,]", opts):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            key, value = key.strip().lower(), value.strip()
            if not sep or not value:
                raise ValueError(f"fault option {part!r} in {text!r} must look like name=value")
            if key == "on":
                lowered = {t.lower(): t for t in TARGETS}
                if value.lower() not in lowered:
                    raise ValueError(f"fault option on={value!r} must be one of {', '.join(TARGETS)}")
                fault.on = lowered[value.lower()]
            elif key in ("retry-after", "retry_after", "retryafter"):
                try:
                    fault.retry_after = float(value)
                except ValueError:
                    raise ValueError(f"fault option retry-after={value!r} must be a number of seconds") from None
                if fault.retry_after < 0:
                    raise ValueError("fault option retry-after must not be negative")
            elif key == "code":
                fault.code = value
            elif key == "status":
                if not value.isdigit() or not 100 <= int(value) <= 599:
                    raise ValueError(f"fault option status={value!r} must be an HTTP status code")
                fault.status = int(value)
            else:
                raise ValueError(f"unknown fault option {key!r} in {text!r}; known: on, retry-after, code, status")
    return fault


class FaultQueue(list[Fault]):
    """Faults waiting to fire, in order. The first fault that matches a request fires."""

    def take(self, task_types: set[str]) -> Fault | None:
        for i, fault in enumerate(self):
            if fault.matches(task_types):
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        del self[i]
                return fault
        return None

"""Sweeps: a grid of variations of one request, to see what a strength, a creativity level
or a seed really does.

A :class:`SweepPlan` is the request as composed plus one or two :class:`SweepAxis`; every
cell of the grid is one task with ``numberResults`` 1, at one fixed seed unless the seed
is an axis. Each cell's request carries a :class:`SweepTag` (the sweep's id, its axes
and the cell's place), so every image knows where it stands, and the contact sheet is
drawn from the same tags.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import product

from krea_desktop.api import spec
from krea_desktop.api.record import SWEEP_AXES, SweepAxis, SweepTag
from krea_desktop.api.request import GenerationRequest
from krea_desktop.library.sheet import axis_title, named_axis_title, short_reference_name, value_label
from krea_desktop.wording import counted, for_count

# with the rest: one way to name axes, values and references
__all__ = ["axis_title", "named_axis_title", "short_reference_name", "value_label"]

MAX_AXES = 2
MAX_VALUES = 16  # along one axis
MAX_CELLS = 100
DEFAULT_STRENGTHS = (-2.0, -1.0, 0.0, 1.0, 2.0)
DEFAULT_SEEDS = 4


class SweepError(ValueError):
    """A sweep that cannot be made; the message says why in one sentence."""


def _number(text: str) -> float:
    try:
        value = float(text.replace("\u2212", "-"))
    except ValueError:
        raise SweepError(f"“{text}” is not a number.") from None
    if not math.isfinite(value):
        raise SweepError(f"“{text}” is not a number.")
    return value


def parse_values(name: str, text: str, title: str | None = None) -> tuple[object, ...]:
    """The values of axis ``name`` from ``V1,V2,...``; raises :class:`SweepError`, naming
    the axis by ``title`` (as the window shows it), else as the command line writes it."""
    said = title or name
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        if title:
            raise SweepError(f"{title} needs at least one value; separate values with commas.")
        raise SweepError(f"{name} needs at least one value, as in {name}=V1,V2.")
    values: list[object] = []
    typed: set[float] = set()  # strengths as typed, before they are rounded
    for part in parts:
        if name.startswith("ref"):
            number = _number(part)
            if not spec.STRENGTH_MIN <= number <= spec.STRENGTH_MAX:
                raise SweepError(f"The strength {part} for reference {name[3:]} is outside −2 to +2.")
            typed.add(number)
            values.append(round(number, 2))
        elif name == "creativity":
            level = part.lower()
            if level not in spec.CREATIVITY_LEVELS:
                raise SweepError(f"Creativity “{part}” is not one of {', '.join(spec.CREATIVITY_LEVELS)}.")
            values.append(level)
        else:
            try:
                seed = int(part)
            except ValueError:
                raise SweepError(f"The seed “{part}” is not a whole number.") from None
            if not spec.SEED_MIN <= seed <= spec.SEED_MAX:
                raise SweepError(f"The seed {part} is outside {spec.SEED_MIN} to {spec.SEED_MAX}.")
            values.append(seed)
    if len(set(values)) != len(values):
        if name.startswith("ref") and len(typed) == len(values):  # apart as typed, not as rounded
            raise SweepError(
                f"{said} has values that are the same once rounded to two decimals, as strengths are; "
                "give values at least 0.01 apart."
            )
        raise SweepError(f"{said} repeats a value; give each value once.")
    if len(values) > MAX_VALUES:
        raise SweepError(f"{said} has {len(values)} values; a sweep varies at most {MAX_VALUES} along one axis.")
    return tuple(values)


def parse_vary(text: str) -> SweepAxis:
    """``AXIS=V1,V2,...`` as given to ``--vary``; raises :class:`SweepError`."""
    name, sep, values = text.partition("=")
    name = name.strip().lower()
    if not sep:
        raise SweepError(f"“{text}” should read AXIS=V1,V2,… (for example ref1=-2,-1,0,1,2).")
    if name not in SWEEP_AXES:
        raise SweepError(f"“{name}” is not an axis; use ref1 to ref{spec.MAX_REFERENCES}, creativity or seed.")
    return SweepAxis(name, parse_values(name, values))


def random_seeds(count: int, rng: random.Random | None = None) -> tuple[int, ...]:
    rng = rng or random.Random()
    seeds: list[int] = []
    while len(seeds) < count:
        seed = rng.randint(0, spec.RANDOM_SEED_MAX)
        if seed not in seeds:
            seeds.append(seed)
    return tuple(seeds)


@dataclass(frozen=True)
class Cell:
    """One task of the grid: its place (index along each axis) and its request."""

    place: tuple[int, ...]
    request: GenerationRequest

    @property
    def column(self) -> int:
        return self.place[0]

    @property
    def row(self) -> int:
        return self.place[1] if len(self.place) > 1 else 0


@dataclass(frozen=True)
class SweepPlan:
    """The request as composed, the axes varied, the sweep's id, and the references' short
    names as the user knows them (the tray's file names: the request holds copies), which
    name the strength axes in titles."""

    base: GenerationRequest
    axes: tuple[SweepAxis, ...]
    sweep_id: str
    reference_names: tuple[str, ...] = ()

    @classmethod
    def make(
        cls,
        base: GenerationRequest,
        axes: Sequence[SweepAxis],
        sweep_id: str | None = None,
        reference_names: Sequence[str] = (),
    ) -> SweepPlan:
        """Check the axes against the request; fix one seed for every cell unless the seed
        is an axis; ``reference_names`` are the references' labels (shortened here).
        Raises :class:`SweepError`."""
        axes = tuple(axes)
        if not 1 <= len(axes) <= MAX_AXES:
            raise SweepError(f"A sweep varies one or two things; {len(axes)} were given.")
        names = [a.name for a in axes]
        if len(set(names)) != len(names):
            raise SweepError(f"{names[0]} is given twice; vary two different things.")
        for axis in axes:
            if axis.name.startswith("ref"):
                position = int(axis.name[3:])
                if position > len(base.references):
                    have = len(base.references)
                    raise SweepError(
                        f"{axis.name} names reference {position}, but there "
                        + (f"{for_count(have, 'is', 'are')} only {have}." if have else "are no references.")
                    )
        cells = math.prod(len(a.values) for a in axes)
        if cells > MAX_CELLS:
            raise SweepError(f"That sweep has {cells} cells; at most {MAX_CELLS} can be sent at once.")
        if "seed" not in names and base.seed is None:
            base = replace(base, seed=random_seeds(1)[0])
        short_names = tuple(short_reference_name(name) if name else "" for name in reference_names)
        return cls(replace(base, number_results=1), axes, sweep_id or str(uuid.uuid4()), short_names)

    # -- the grid ------------------------------------------------------------------------

    @property
    def columns(self) -> int:
        return len(self.axes[0].values)

    @property
    def rows(self) -> int:
        return len(self.axes[1].values) if len(self.axes) > 1 else 1

    @property
    def task_count(self) -> int:
        return self.columns * self.rows

    def tag(self, place: tuple[int, ...] = ()) -> SweepTag:
        return SweepTag(self.sweep_id, self.axes, place)

    def cells(self) -> list[Cell]:
        """Every cell, row by row (the first axis along the columns)."""
        out: list[Cell] = []
        ranges = [range(len(a.values)) for a in self.axes]
        for reversed_place in product(*reversed(ranges)):
            place = tuple(reversed(reversed_place))
            out.append(Cell(place, self.request_for(place)))
        return out

    def request_for(self, place: tuple[int, ...]) -> GenerationRequest:
        request = self.base
        references = list(request.references)
        for axis, index in zip(self.axes, place, strict=True):
            value = axis.values[index]
            if axis.name.startswith("ref"):
                position = int(axis.name[3:]) - 1
                references[position] = replace(references[position], strength=float(value))
            elif axis.name == "creativity":
                request = replace(request, creativity=str(value))
            else:
                request = replace(request, seed=int(value))
        return replace(request, references=tuple(references), sweep=self.tag(place)).with_new_task_uuid()

    def labels(self) -> tuple[list[str], list[str]]:
        """The column and row labels (rows empty for a one-axis sweep)."""
        columns = [value_label(self.axes[0].name, v) for v in self.axes[0].values]
        rows = [value_label(self.axes[1].name, v) for v in self.axes[1].values] if len(self.axes) > 1 else []
        return columns, rows

    def describe(self) -> str:
        """``5 × 2 = 10 tasks: Reference 1 strength × Creativity``; with the references'
        short names, ``Reference 1 (cat.png) strength``."""
        titles = " × ".join(named_axis_title(a.name, self.reference_names) for a in self.axes)
        shape = counted(self.task_count, "task")
        if len(self.axes) > 1:
            shape = " × ".join(str(len(a.values)) for a in self.axes) + f" = {shape}"
        seed = "" if any(a.name == "seed" for a in self.axes) else f", seed {self.base.seed}"
        return f"{shape}: {titles}{seed}"

    def estimate(self, unit_cost: float | None) -> float | None:
        """The estimated cost of every cell, from the cost of one image (None when unknown)."""
        return None if unit_cost is None else unit_cost * self.task_count


def estimate_batch(number_results: int, unit_cost: float | None) -> float | None:
    """The estimated cost of a batch of ``number_results`` images."""
    return None if unit_cost is None else unit_cost * number_results


def unit_cost(costs: Iterable[float | None]) -> float | None:
    """The cost of one image, from the costs the service last reported (newest first)."""
    return next((c for c in costs if c is not None and c >= 0), None)

"""Putting an image's record back into the window: its prompt, seed, ratio, settings and
references, or the image itself as a reference."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from krea_desktop.api import spec
from krea_desktop.api.record import GenerationRecord
from krea_desktop.library.readers.base import foreign_seed
from krea_desktop.library.recall import record_of, reference_sources
from krea_desktop.library.store import LibraryEntry
from krea_desktop.models.references import Reference
from krea_desktop.ui.compose.prompt_panel import PromptPanel
from krea_desktop.ui.compose.ratio_bar import RatioBar
from krea_desktop.ui.references.tray import ReferenceTray
from krea_desktop.ui.theme import signed_strength
from krea_desktop.wording import counted, for_count, listed

TOWARD = 0.7
AWAY = -0.7

ShowMessage = Callable[..., None]


def _describe(record: GenerationRecord, source: str) -> str:
    """The image as a person knows it: by its prompt, else by its file's name."""
    if record.has_prompt:
        words = " ".join(record.prompt.split())
        return f"“{words[:60]}{'…' if len(words) > 60 else ''}”"
    return source


def nearest_ratio(width: int, height: int, within: float = 0.05) -> str | None:
    """The model's ratio whose shape is nearest ``width``×``height``, if it is within
    ``within`` of it (512×768 is 2:3; 1000×300 is near none)."""
    shape = width / height
    best = min(spec.ASPECT_RATIOS, key=lambda r: abs(math.log(shape * r.height / r.width)))
    return best.name if abs(math.log(shape * best.height / best.width)) <= math.log1p(within) else None


# How a recall names the parameters it could not restore.
_PARAMETER_WORDS = {
    "number_results": "number of images",
    "seed": "seed",
    "creativity": "creativity",
    "output_format": "format",
    "output_quality": "quality",
    "delivery_method": "delivery",
}


def _kept_said(record: GenerationRecord, refused: list[str], varied: dict[str, Any]) -> list[str]:
    """What a recall left as it was, and why: what a contact sheet varied (no one value
    of it is the sheet's), what the model does not take, and a seed the record lacks."""
    said: list[str] = []
    differ = [_PARAMETER_WORDS[k] for k in ("seed", "creativity") if k in varied]
    if differ:
        said.append(f"its cells differ in {listed(differ)}, so yours {for_count(len(differ), 'was', 'were')} kept")
    beyond = [
        f"{_PARAMETER_WORDS[k]} ({getattr(record, k)})" for k in _PARAMETER_WORDS if k in refused and k not in varied
    ]
    if beyond:
        n = len(beyond)
        said.append(
            f"its {listed(beyond)} {for_count(n, 'is', 'are')} beyond Krea 2 Medium's, so yours "
            f"{for_count(n, 'was', 'were')} kept"
        )
    if record.seed is None and "seed" not in varied:
        seed = foreign_seed(record.extras)
        if seed is not None:
            said.append(f"its seed, {seed}, is beyond Krea 2 Medium's seeds, so the seed is as it was")
        else:
            said.append("it has no recorded seed, so the seed is as it was")
    return said


def _middle_of(values: tuple[Any, ...]) -> tuple[float, bool]:
    """The strength in the middle of a sheet's row of strengths (rounded as strengths
    are), and whether there was one; else the default strength."""
    numbers = sorted(float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool))
    numbers = [n for n in numbers if spec.STRENGTH_MIN <= n <= spec.STRENGTH_MAX]
    if not numbers:
        return spec.DEFAULT_STRENGTH, False
    return round(statistics.median(numbers) * 20) / 20, True


def _unnamed_references(record: GenerationRecord) -> int:
    """How many references the record says the image was made with, where it names none
    (a file of ours that kept only its ``parameters`` line: "References: 2")."""
    count = record.extras.get("reference_count")
    if record.references or not isinstance(count, int) or isinstance(count, bool):
        return 0
    return max(0, min(count, spec.MAX_REFERENCES))


class Recall:
    """Sets the window's controls from an image: the prompt panel, the ratio bar and the
    reference tray. Whatever cannot be restored is said through ``show_message``."""

    def __init__(
        self,
        *,
        prompt_panel: PromptPanel,
        ratio_bar: RatioBar,
        tray: ReferenceTray,
        show_message: ShowMessage,
        references_dir: Path,
    ) -> None:
        self.prompt_panel, self.ratio_bar, self.tray = prompt_panel, ratio_bar, tray
        self.show_message = show_message
        self.references_dir = references_dir  # where files' references are found, by name

    def use_all_parameters(self, entry: LibraryEntry) -> None:
        self.apply_record(record_of(entry), source=entry.path.name)

    def apply_record(self, record: GenerationRecord, source: str = "the image") -> None:
        """Make the controls what made ``record``'s image: the prompt panel, the ratio, and
        the tray exactly its references (empty when it had none), with Undo for all that it
        replaced (a prompt not yet sent, a seed, the tray). A record without a prompt leaves
        the person's prompt as it is."""
        sheet = record.sweep if record.sweep is not None and record.sweep.is_sheet else None
        varied = {axis.name: axis.values for axis in sheet.axes} if sheet is not None else {}
        record = record.shared_by_cells()  # a contact sheet's: what every cell had (one written before said more)
        if not record.says_how_made:  # a photo's record names the file, nothing more
            self.show_message(f"No parameters were found in {source}.")
            return
        if self.tray.isBusy():
            # A reference still loading would land among the image's, and Undo would not
            # know it: the recall waits for it (without holding the window up), so that
            # the tray Undo puts back holds it.
            self.show_message("A reference is still loading; the image's parameters come once it has.")
            self.tray.when_idle(lambda: self.apply_record(record, source))
            return
        before = (self.prompt_panel.parameters(), self.ratio_bar.ratio())
        refused = self.prompt_panel.apply_record(record)
        size_said = None
        if record.ratio is not None:
            self.ratio_bar.setRatio(record.ratio)
        elif record.width and record.height:  # another tool's size, none of the model's eight
            size = f"{record.width}×{record.height}"
            nearest = nearest_ratio(record.width, record.height)
            if nearest is not None:
                self.ratio_bar.setRatio(nearest)
                size_said = f"its size, {size}, is taken as {nearest}, the nearest of Krea 2 Medium's ratios"
            else:
                size_said = f"its size, {size}, is near none of Krea 2 Medium's ratios, so the ratio is as it was"
        self.tray.commit_edits()  # a strength still being typed is what Undo gives back
        previous = self.tray.model.items()
        found, lost = reference_sources(record, self.references_dir)
        unnamed = _unnamed_references(record)
        strengths_said: list[str] = []
        if not unnamed:  # a file that no longer names its references leaves the tray as it is
            self.tray.clear()
            unknown: list[int] = []
            for place, path, strength in found[: spec.MAX_REFERENCES]:
                if strength is None:
                    strength, middle = _middle_of(varied.get(f"ref{place}", ()))
                    if middle:
                        strengths_said.append(
                            f"reference {place}'s strength varied across the sheet, so it is "
                            f"{signed_strength(strength)}, the middle of its row"
                        )
                    else:
                        unknown.append(place)
                self.tray.add_reference(path, strength, reveal=False)  # the prompt stays in sight
            if unknown:
                which = listed([str(n) for n in unknown])
                strengths_said.insert(
                    0,
                    f"{for_count(len(unknown), 'the strength of reference', 'the strengths of references')} {which} "
                    f"{for_count(len(unknown), 'is', 'are')} not known, so "
                    f"{for_count(len(unknown), 'it is', 'they are')} {signed_strength(spec.DEFAULT_STRENGTH)}",
                )
        name = _describe(record, source)
        said = [f"Parameters restored from {name}"]  # one sentence, its parts after semicolons
        if not record.has_prompt:
            said.append("it has no prompt, so yours was kept")
        if size_said is not None:
            said.append(size_said)
        said += _kept_said(record, refused, varied)
        if unnamed:
            said.append(
                f"it was made with {counted(unnamed, 'reference')} its file does not name, so the tray is as it was"
            )
        if lost:
            references = counted(len(record.references), "reference")
            said.append(f"{lost} of {references} {for_count(lost, 'is', 'are')} no longer on this computer")
        said += strengths_said
        self.show_message("; ".join(said) + ".", "Undo", lambda: self._put_back(previous, *before))

    def _put_back(self, previous: tuple[Reference, ...], parameters: dict[str, Any], ratio: str) -> None:
        """The controls as they were before a recall: the prompt panel, the ratio and the
        tray (once the recall's references have loaded)."""
        self.prompt_panel.apply_parameters(parameters, undoable=True)
        self.ratio_bar.setRatio(ratio)
        self.tray.when_idle(lambda: self.tray.model.replace_all(previous))
        self.show_message("The prompt, the settings and the references are as they were.")

    def use_prompt(self, entry: LibraryEntry) -> None:
        """The image's prompt in place of the one being written, with Undo (and Ctrl+Z in
        the prompt); an image without one leaves it as it is."""
        if not entry.prompt or not entry.prompt.strip():
            self.show_message("This image has no prompt, so yours was kept.")
            return
        previous = self.prompt_panel.prompt()
        if previous == entry.prompt:
            return
        self.prompt_panel.replacePrompt(entry.prompt)
        if previous.strip():
            self.show_message("The image's prompt is in place of yours.", "Undo", lambda: self._prompt_back(previous))

    def _prompt_back(self, previous: str) -> None:
        self.prompt_panel.replacePrompt(previous)
        self.show_message("Your prompt is as it was.")

    def use_seed(self, entry: LibraryEntry) -> None:
        if entry.seed is not None and spec.SEED_MIN <= entry.seed <= spec.SEED_MAX:
            self.prompt_panel.setSeed(entry.seed)
            return
        seed = foreign_seed(entry.record.extras) if entry.seed is None else entry.seed
        # A file's own record may say a seed the field would not take (typed by hand, or
        # written by another program): said, and the seed in the field stays as it is.
        self.show_message(
            "This image has no recorded seed."
            if seed is None
            else f"This image's seed, {seed}, is beyond Krea 2 Medium's seeds, so it cannot be used."
        )

    def add_references(self, entries: list[LibraryEntry], strength: float) -> None:
        """Add the images still on disk to the tray, as many as fit. Files are looked for
        only until the tray is full: the rest of a selection of thousands are counted, not
        looked at (a look each would hold the GUI thread)."""
        if not any(e.path.exists() for e in entries):  # stops at the first one on disk
            self.show_message("The selected images are not on disk any more, so they cannot be references.")
            return
        # An image already in the tray (it knows which library image each reference is)
        # takes no room: it is said to be there, and the next one is added.
        there = {r.parent for r in self.tray.model.items() if r.parent}
        if all(e.image_uuid in there for e in entries):
            self.show_message(f"{for_count(len(entries), 'That image is', 'Those images are')} already in the tray.")
            return
        room = self.tray.room()
        if room <= 0:
            self.show_message(f"The tray is full: it holds at most {spec.MAX_REFERENCES} references.")
            return
        taken = gone = already = 0
        for entry in entries:
            if taken == room:
                break
            if entry.image_uuid in there:
                already += 1
            elif entry.path.exists():
                self.tray.add_reference(entry.path, strength)
                taken += 1
            else:
                gone += 1
        wanted = len(entries) - gone - already
        if wanted > room:
            added = f"{room} of {counted(wanted, 'image')} {for_count(room, 'was', 'were')} added"
            self.show_message(f"Only {added}: the tray holds {spec.MAX_REFERENCES}.")

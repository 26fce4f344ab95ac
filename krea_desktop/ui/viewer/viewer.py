"""The viewer window: the gallery's images one at a time at full size, with the
parameters that made each one beside it."""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable, Collection
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QKeyEvent, QKeySequence, QPalette, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from krea_desktop.api import spec
from krea_desktop.api.record import ReferenceRecord
from krea_desktop.library.lineage import Relative
from krea_desktop.library.readers.base import foreign_seed
from krea_desktop.library.store import LibraryEntry
from krea_desktop.ui import theme
from krea_desktop.ui.background import BackgroundRunner, Runner
from krea_desktop.ui.money import cost_simulated, format_cost
from krea_desktop.ui.placement import open_on_screen
from krea_desktop.ui.viewer.canvas import (
    ImageCanvas,
    ImageUnreadable,
    decode_image_file,
    decode_thumbnail_file,
    ends_early,
    full_size_of,
)
from krea_desktop.wording import file_size

if TYPE_CHECKING:
    from PySide6.QtGui import QFocusEvent, QPaintEvent


def _describe_date(created_at: str) -> str:
    try:
        when = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return created_at
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _seed_text(entry: LibraryEntry) -> str:
    if entry.seed is not None and spec.SEED_MIN <= entry.seed <= spec.SEED_MAX:
        return str(entry.seed)
    seed = foreign_seed(entry.record.extras) if entry.seed is None else entry.seed
    return "—" if seed is None else f"{seed} (beyond Krea 2 Medium's seeds, so not used)"


def entry_facts(entry: LibraryEntry, costs_simulated: bool = False) -> list[tuple[str, str]]:
    """The lines of the metadata panel, as (label, text); ``costs_simulated``: the window
    runs in demo mode (what a cost whose record does not say is taken for)."""
    ratio = entry.ratio or "custom"
    simulated = cost_simulated(entry.simulated, costs_simulated)
    facts = [
        ("Ratio and size", f"{ratio} · {entry.width} × {entry.height}"),
        ("Creativity", entry.creativity or "—"),
        ("Seed", _seed_text(entry)),
        ("Format", entry.format + (f" · {file_size(entry.file_size)}" if entry.file_size else "")),
        ("Cost", "—" if entry.cost is None else format_cost(entry.cost, simulated)),
        ("Date", _describe_date(entry.created_at)),
    ]
    record = entry.record
    if record.negative_prompt:
        facts.append(("Negative prompt", f"{record.negative_prompt} (not used by Krea 2 Medium)"))
    source = record.extras.get("source")
    foreign = record.extras.get("foreign")
    if isinstance(source, str) and source:
        facts.append(("Made with", source))
    if isinstance(foreign, dict):  # another tool's settings: shown, never sent
        for key, value in list(foreign.items())[:12]:
            if key == "seed":
                continue  # on the Seed line, when it is one (a negative one is a random seed: none)
            if isinstance(value, (str, int, float)) and not isinstance(value, bool) and value != "":
                facts.append((str(key).replace("_", " ").capitalize(), f"{value} (not used by Krea 2 Medium)"))
    if entry.missing:
        facts.append(("File", "missing from the library folder"))
    elif entry.broken:
        facts.append(("File", "damaged: it does not decode"))
    return facts


class SelectableText(QLabel):
    """Text of the viewer's panel (the prompt, the details) that the mouse and the keyboard
    select, ringed while Tab has brought the focus to it: a text cursor alone is hard to
    find beside an image."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # the flags alone give ClickFocus
        self.setContentsMargins(5, 3, 5, 3)  # room for the ring
        self.ringed = False  # the focus came from the keyboard

    def focusInEvent(self, event: QFocusEvent) -> None:
        self.ringed = event.reason() in (Qt.FocusReason.TabFocusReason, Qt.FocusReason.BacktabFocusReason)
        super().focusInEvent(event)
        self.update()

    def focusOutEvent(self, event: QFocusEvent) -> None:
        self.ringed = False
        super().focusOutEvent(event)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.ringed and self.hasFocus():
            theme.paint_focus_ring(self, theme.ACCENT, 3)


class ReferenceChip(QFrame):
    """A reference of the shown image: its thumbnail (when its file is still here) and
    signed strength."""

    def __init__(self, ref: ReferenceRecord, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("viewerReference")
        self.ref = ref
        strength = ref.strength
        self.thumb = QLabel(self)
        self.thumb.setFixedSize(72, 72)
        self.thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumb.setText("no file")
        self.thumb.setStyleSheet("background: #2a2a2e; color: #999;")
        self.strength_label = QLabel("?" if strength is None else theme.signed_strength(strength), self)
        self.strength_label.setObjectName("referenceStrength")
        # The tray's colours: the same strength looks the same wherever it is shown.
        palette = self.strength_label.palette()
        palette.setColor(QPalette.ColorRole.WindowText, theme.strength_text_color(strength or 0.0))
        self.strength_label.setPalette(palette)
        font = self.strength_label.font()
        font.setBold(True)
        self.strength_label.setFont(font)
        self.strength_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        source = ref.source or ref.image or ""
        pull = strength or 0.0
        way = "toward this image" if pull > 0 else "away from this image" if pull < 0 else "neither way"
        self.setToolTip(f"{source}\nstrength {self.strength_label.text()} ({way})")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.thumb)
        lay.addWidget(self.strength_label)
        # As wide as its thumbnail: the strength is read under the image it belongs to.
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    def directionColor(self) -> QColor:
        return theme.strength_color(self.ref.strength or 0.0)

    def source_path(self) -> Path | None:
        source = self.ref.source
        if source and "://" not in source and not source.startswith("data:"):
            path = Path(source)
            return path if path.exists() else None
        return None

    def set_thumbnail(self, image: QImage) -> None:
        self.thumb.setPixmap(QPixmap.fromImage(image))


# The images an entry was made from and those made from it, looked up off the GUI thread.
LineageLookup = Callable[[LibraryEntry], "tuple[list[Relative], list[Relative]]"]
NOT_IN_LIBRARY_FAVOURITE = "This file was opened from outside the gallery, so it cannot be marked as a favourite here."
NOT_IN_LIBRARY_DELETE = "This file was opened from outside the gallery, so it is not deleted from here."
NOTHING_TO_UNDO = "There is nothing to undo."
COPIED = "Copied to the clipboard."
HINT_MS = 6000  # how long a hint under the picture stays

# Mark (True) or unmark (False) a library image as a favourite; the owner reports back
# through :meth:`ImageViewer.favourite_changed`.
SetFavourite = Callable[[LibraryEntry, bool], None]


class RelativeChip(QPushButton):
    """An image on the other end of a lineage link: its thumbnail and, for a parent, the
    strength it was used at; a click opens it."""

    def __init__(self, relative: Relative, kind: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("madeFromChip" if kind == "parent" else "usedInChip")
        self.relative = relative
        strength = relative.strength
        shown = "?" if strength is None else theme.signed_strength(strength)
        gone = relative.entry is None
        # An image gone from the library has no thumbnail to show: the chip says so.
        self.setText(f"{shown} · no longer in the library" if gone else shown)
        self.setIconSize(QSize(56, 56))
        self.setMinimumHeight(64)
        # Reached by Tab (a click leaves the focus on the picture, for the arrow keys), and
        # opened by Return, Enter or Space: lineage is followed without a mouse too.
        self.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.setAutoDefault(False)
        self.setEnabled(not gone)
        name = relative.entry.prompt[:80] if relative.entry is not None else relative.image_uuid
        where = "no longer in the library" if gone else "click to open it"
        how = f", at strength {shown}" if strength is not None else ""
        self.setToolTip(f"{name}{how}; {where}")

    def set_thumbnail(self, image: QImage) -> None:
        self.setIcon(QIcon(QPixmap.fromImage(image)))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not event.modifiers():
            self.click()
        elif event.key() == Qt.Key.Key_Space and not event.modifiers():
            super().keyPressEvent(event)  # a button's own: it opens as the key comes up
        elif isinstance(viewer := self.window(), ImageViewer):
            viewer.keyPressEvent(event)  # the viewer's keys (the arrows among them), not the panel's scrolling
        else:
            super().keyPressEvent(event)


class ImageViewer(QDialog):
    """The gallery's images one at a time, at full size, with their parameters.

    Left/Right step through the gallery rows, F marks or unmarks the image as a favourite
    and Delete moves it to the trash (as they do in the gallery; Ctrl+Z brings it back),
    0 fits, 1 shows 100 %, Esc closes.
    """

    rowChanged = Signal(int)
    relativeRequested = Signal(object)  # a LibraryEntry of the shown image's lineage
    deleteRequested = Signal(object)  # the LibraryEntry shown, for the gallery to delete
    undoRequested = Signal()  # Ctrl+Z: bring back the images deleted last
    copyRequested = Signal(object)  # Ctrl+C: the LibraryEntry shown, for the gallery to copy

    def __init__(
        self,
        entry_at: Callable[[int], LibraryEntry | None],
        row_count: Callable[[], int],
        row: int,
        *,
        row_of: Callable[[int], int | None] | None = None,
        runner: Runner | None = None,
        costs_simulated: bool = False,
        lineage: LineageLookup | None = None,
        favourite: SetFavourite | None = None,
        narrowed: Callable[[], bool] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("imageViewer")
        self._lineage = lineage
        self._set_favourite = favourite
        self._favourites_now: dict[int, bool] = {}  # marked or unmarked since the rows were read
        self.relative_chips: list[RelativeChip] = []
        self.costs_simulated = costs_simulated  # demo mode: the simulator made the costs up
        self.setWindowTitle("Image")
        self.setModal(False)
        self._entry_at = entry_at
        self._row_count = row_count
        self._row_of = row_of  # an image's row now (rows come and go while the viewer is open)
        self._narrowed = narrowed  # whether the gallery's search, filters or scope hide images
        self._runner: Runner = runner if runner is not None else BackgroundRunner(parent=self)
        self._generation = 0
        self.row = row
        self._off_rows = False  # shown by show_entry: an image the rows may never have held
        self.entry: LibraryEntry | None = None

        self.canvas = ImageCanvas(self)
        self.fit_button = QPushButton("Fit", self)
        self.fit_button.setObjectName("fitButton")
        self.fit_button.setToolTip("Fit the image to the window (0)")
        self.fit_button.clicked.connect(self.canvas.fit)
        self.actual_button = QPushButton("100 %", self)
        self.actual_button.setObjectName("actualSizeButton")
        self.actual_button.setToolTip("Show the image at its actual size, one image pixel per screen pixel (1)")
        self.actual_button.clicked.connect(self.canvas.actual_size)
        self.prev_button = QPushButton("◀ Previous", self)
        self.prev_button.setObjectName("previousButton")
        self.prev_button.setToolTip("The newer image (Left arrow)")
        self.prev_button.clicked.connect(self.previous)
        self.next_button = QPushButton("Next ▶", self)
        self.next_button.setObjectName("nextButton")
        self.next_button.setToolTip("The older image (Right arrow)")
        self.next_button.clicked.connect(self.next)
        self.favourite_button = QPushButton(self)
        self.favourite_button.setObjectName("viewerFavouriteButton")
        self.favourite_button.clicked.connect(self.toggle_favourite)
        # Images from outside the library have no favourite to mark.
        self.favourite_button.setVisible(favourite is not None)
        self._show_favourite()
        # A sentence for a key that does nothing here, under the bar (a tool tip would
        # close with the key's release on macOS).
        self.hint_label = QLabel(self)
        self.hint_label.setObjectName("viewerHint")
        theme.set_role(self.hint_label, "hint")
        self.hint_label.setWordWrap(True)  # two lines in a narrow viewer, never a wider viewer
        self.hint_label.setVisible(False)
        self._hint_timer = QTimer(self)
        self._hint_timer.setSingleShot(True)
        self._hint_timer.timeout.connect(lambda: self.hint_label.setVisible(False))
        self.zoom_label = QLabel(self)
        self.zoom_label.setObjectName("zoomLabel")
        self.canvas.viewChanged.connect(lambda *_: self._update_zoom_label())
        buttons = (self.favourite_button, self.fit_button, self.actual_button, self.prev_button, self.next_button)
        for button in buttons:
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)

        self.prompt_label = SelectableText(self)
        self.prompt_label.setObjectName("viewerPrompt")
        self.prompt_label.setWordWrap(True)
        self.prompt_label.setTextFormat(Qt.TextFormat.PlainText)
        self.facts_label = SelectableText(self)
        self.facts_label.setObjectName("viewerFacts")
        self.facts_label.setTextFormat(Qt.TextFormat.RichText)
        self.facts_label.setWordWrap(True)
        # Selectable with the mouse and the keyboard (Tab reaches them, Shift+arrows and
        # Ctrl+A select, Ctrl+C copies what is selected). They take the focus, and with it
        # keys the viewer's own: see eventFilter.
        for label in (self.prompt_label, self.facts_label):
            label.installEventFilter(self)
        self.refs_heading = QLabel("References", self)
        self.refs_box = QWidget(self)
        self.refs_grid = QGridLayout(self.refs_box)
        self.refs_grid.setContentsMargins(0, 0, 0, 0)
        self.reference_chips: list[ReferenceChip] = []
        self.made_from_heading = QLabel("Made from", self)
        self.made_from_heading.setObjectName("madeFromHeading")
        self.made_from_box = QWidget(self)
        self.made_from_grid = QGridLayout(self.made_from_box)
        self.made_from_grid.setContentsMargins(0, 0, 0, 0)
        self.used_in_heading = QLabel("Used in", self)
        self.used_in_heading.setObjectName("usedInHeading")
        self.used_in_box = QWidget(self)
        self.used_in_grid = QGridLayout(self.used_in_box)
        self.used_in_grid.setContentsMargins(0, 0, 0, 0)
        for widget in (self.made_from_heading, self.made_from_box, self.used_in_heading, self.used_in_box):
            widget.setVisible(False)

        panel = QWidget(self)
        panel.setObjectName("viewerMetadata")
        side = QVBoxLayout(panel)
        heading = QLabel("Prompt", panel)
        font = heading.font()
        font.setBold(True)
        heading.setFont(font)
        self.refs_heading.setFont(font)
        self.made_from_heading.setFont(font)
        self.used_in_heading.setFont(font)
        side.addWidget(heading)
        side.addWidget(self.prompt_label)
        side.addWidget(self.facts_label)
        side.addWidget(self.refs_heading)
        side.addWidget(self.refs_box)
        side.addWidget(self.made_from_heading)
        side.addWidget(self.made_from_box)
        side.addWidget(self.used_in_heading)
        side.addWidget(self.used_in_box)
        side.addStretch(1)
        scroll = QScrollArea(self)
        # Scrolled with the wheel; never the keys' target, or a click beside the parameters
        # would keep Left and Right from stepping through the images.
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        scroll.setWidgetResizable(True)
        scroll.setWidget(panel)
        scroll.setMinimumWidth(280)

        left = QWidget(self)
        left_lay = QVBoxLayout(left)
        left_lay.setContentsMargins(0, 0, 0, 0)
        left_lay.addWidget(self.canvas, 1)
        bar = QHBoxLayout()
        left_lay.addLayout(bar)  # in place before it is filled (tests/ui/test_layout_items.py)
        left_lay.addWidget(self.hint_label)  # under the bar, as wide as the picture
        bar.addWidget(self.prev_button)
        bar.addWidget(self.next_button)
        bar.addWidget(self.favourite_button)
        bar.addStretch(1)
        bar.addWidget(self.zoom_label)
        bar.addWidget(self.fit_button)
        bar.addWidget(self.actual_button)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(left)
        split.addWidget(scroll)
        split.setStretchFactor(0, 1)
        split.setSizes([880, 320])
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        outer.addWidget(split)
        open_on_screen(self, QSize(1200, 800))
        self.show_row(row)

    # --- navigation ---------------------------------------------------------------------

    def show_row(self, row: int) -> None:
        n = self._row_count()
        if n == 0:
            self.entry = None
            self._generation += 1  # what was being loaded for the image before stays out
            self._show_favourite()
            self.canvas.set_error(self._nothing_shown() + ".")
            self._clear_metadata()
            self.prev_button.setEnabled(False)
            self.next_button.setEnabled(False)
            return
        row = max(0, min(n - 1, row))
        self.row = row
        self._off_rows = False
        self.entry = self._entry_at(row)
        self._show_entry()
        self.rowChanged.emit(row)

    def show_entry(self, entry: LibraryEntry) -> None:
        """Show ``entry`` whatever the rows hold (an image of the lineage the gallery does
        not show now); Previous and Next go on from the row shown before."""
        self.entry = entry
        self._off_rows = True
        self._show_entry()

    def _show_entry(self) -> None:
        self._generation += 1
        if self.entry is not None and self.entry.id in self._favourites_now:
            self.entry = dataclasses.replace(self.entry, favourite=self._favourites_now[self.entry.id])
        self._show_favourite()
        if self.entry is None:
            self.canvas.set_error("This image is no longer in the library.")
            return
        self._show_metadata(self.entry)
        self._show_place()
        self.canvas.set_loading()
        generation = self._generation
        path, in_library = self.entry.path, self.entry.id >= 0  # -1: a file opened from elsewhere

        def decode() -> tuple[QImage, bool, QSize | None]:
            image = decode_image_file(path, in_library=in_library)
            return image, ends_early(path), full_size_of(path, image)

        self._runner.submit(
            decode,
            lambda got: self._decoded(generation, got[0], None, ends_early=got[1], full_size=got[2]),
            lambda error: self._decoded(generation, None, error),
        )

    def previous(self) -> None:
        _found, row = self._place()
        if row > 0:
            self.show_row(row - 1)

    def next(self) -> None:
        if self._row_count() == 0:  # the shown image left the rows, and none is left: said so
            self.show_row(0)
            return
        found, row = self._place()
        following = row + 1 if found else row  # not among the rows: the first older one is next
        if following < self._row_count():
            self.show_row(following)

    def rows_changed(self, *_args: object) -> None:
        """The gallery's rows changed while the viewer is open (images arrived or left, a
        search or a filter narrowed them): the title and Previous / Next say where the
        shown image is now, and the picture stays."""
        if self.entry is not None:
            self._show_place()
        elif self._row_count() == 0:
            self.next_button.setEnabled(False)

    def _place(self) -> tuple[bool, int]:
        """Where the shown image is among the rows now: (True, its row), or (False, the
        row Next goes to) when the rows do not hold it: for an image of the lineage, the
        row shown before; for one a search or a filter took out of the rows, the row of
        the first image older than it (the rows are newest first, as the index orders
        them), so that Next and Previous go on from where it would be."""
        if self._row_of is None or self.entry is None:
            return True, self.row
        row = self._row_of(self.entry.id)
        if row is not None:
            self.row = row
            self._off_rows = False
            return True, row
        if self._off_rows:
            return False, min(self.row, self._row_count())
        key = (self.entry.created_at, self.entry.id)
        low, high = 0, self._row_count()
        while low < high:
            middle = (low + high) // 2
            there = self._entry_at(middle)
            if there is not None and (there.created_at, there.id) > key:
                low = middle + 1
            else:
                high = middle
        return False, low

    def _show_place(self) -> None:
        """The window's title, and Previous / Next, for where the shown image is."""
        found, row = self._place()
        n = self._row_count()
        self.prev_button.setEnabled(row > 0)
        self.next_button.setEnabled((row + 1 if found else row) < n)
        if self.entry is not None:
            name = self.entry.prompt[:80] or self.entry.file_name
            where = f"image {row + 1:,} of {n:,}" if found else "not among the gallery's images now"
            self.setWindowTitle(f"{name} — {where}")
            # The picture, where the focus stays, named as the title is: it had no name.
            self.canvas.setAccessibleName(f"Image: {name}")
            self.canvas.setAccessibleDescription(where[0].upper() + where[1:])

    def entries_removed(self, ids: Collection[int], row: int | None) -> None:
        """The images ``ids`` left the library (deleted here or in the gallery). If the shown
        image is one of them, the image now at ``row`` (the one that took its place) is
        shown instead, never a picture whose file is in the trash. What F did to them is
        forgotten: the index gives a deleted image's id to the next new one."""
        for entry_id in ids:
            self._favourites_now.pop(entry_id, None)
        if row is not None and self.entry is not None and self.entry.id in ids:
            self.show_row(row)

    # --- favourite ----------------------------------------------------------------------

    def toggle_favourite(self) -> None:
        """Mark the shown image as a favourite, or unmark it (F, as in the gallery). The
        button says so at once; F pressed again before the write lands turns it back."""
        if self.entry is None:
            return
        if self._set_favourite is None:  # a file from outside the library: F says why nothing happened
            self.show_hint(NOT_IN_LIBRARY_FAVOURITE)
            return
        favourite = not self.entry.favourite
        self.favourite_changed({self.entry.id}, favourite)
        self._set_favourite(self.entry, favourite)

    def delete_shown(self) -> None:
        """Move the shown image to the trash (Delete, as in the gallery; Undo is offered there)."""
        if self.entry is None:
            return
        if self._set_favourite is None:  # a file from outside the library is not the gallery's to delete
            self.show_hint(NOT_IN_LIBRARY_DELETE)
            return
        self.deleteRequested.emit(self.entry)

    def copy_shown(self) -> None:
        """Have the shown image put on the clipboard (Ctrl+C, as in the gallery): whoever
        copies it says so (:meth:`show_hint`) once it is there."""
        if self.entry is not None:
            self.copyRequested.emit(self.entry)

    def show_hint(self, text: str) -> None:
        """Say ``text`` in the bar under the picture for a few seconds."""
        self.hint_label.setText(text)
        self.hint_label.setVisible(True)
        self._hint_timer.start(HINT_MS)

    def favourite_changed(self, ids: Collection[int], favourite: bool) -> None:
        """The images ``ids`` were marked (or unmarked) as favourites, here or in the gallery."""
        for entry_id in ids:
            self._favourites_now[entry_id] = favourite
        if self.entry is not None and self.entry.id in self._favourites_now:
            self.entry = dataclasses.replace(self.entry, favourite=self._favourites_now[self.entry.id])
            self._show_favourite()

    def _show_favourite(self) -> None:
        marked = self.entry is not None and self.entry.favourite
        self.favourite_button.setEnabled(self.entry is not None)
        self.favourite_button.setText("★ Favourite" if marked else "☆ Favourite")
        self.favourite_button.setToolTip(
            "A favourite: unmark it (F)" if marked else "Mark this image as a favourite (F)"
        )

    def _decoded(
        self,
        generation: int,
        image: QImage | None,
        error: BaseException | None,
        *,
        ends_early: bool = False,
        full_size: QSize | None = None,
    ) -> None:
        if generation != self._generation:
            return  # the viewer moved on meanwhile
        if image is None:
            text = str(error) if isinstance(error, ImageUnreadable) else "This image could not be read."
            self.canvas.set_error(text)
        else:
            self.canvas.set_image(image, full_size=full_size)
            if ends_early:  # a JPEG cut short decodes, its missing part grey: said, not left to be taken for the image
                self.show_hint("This file ends early, so part of the picture is missing.")
            elif full_size is not None:  # 100 % was the copy's pixels, not the picture's
                self.show_hint(
                    f"This picture, {full_size.width():,} × {full_size.height():,}, is larger than the viewer "
                    f"holds, so a copy of {image.width():,} × {image.height():,} is shown."
                )
        self._update_zoom_label()

    def _nothing_shown(self) -> str:
        """What the viewer says with no row to show: the gallery is empty, or its search,
        filters or scope hide every image (the library still holds them)."""
        if self._narrowed is not None and self._narrowed():
            return "No image in the gallery matches the search or the filters"
        return "The gallery is empty"

    def _update_zoom_label(self) -> None:
        if self.canvas.has_image():
            self.zoom_label.setText(("fitted, " if self.canvas.fitted else "") + f"{self.canvas.zoom * 100:.0f} %")
        else:
            self.zoom_label.setText("")

    def _clear_metadata(self) -> None:
        """Nothing of an image shown before (the last one deleted, say) stays on screen."""
        self.setWindowTitle(self._nothing_shown())
        self.prompt_label.setText("")
        self.facts_label.setText("")
        _drop(self.reference_chips)
        _drop(self.relative_chips)
        self.refs_heading.setText("")
        for widget in (self.made_from_heading, self.made_from_box, self.used_in_heading, self.used_in_box):
            widget.setVisible(False)

    def _show_metadata(self, entry: LibraryEntry) -> None:
        self.prompt_label.setText(entry.prompt or "(no prompt)")
        rows = "".join(
            f"<tr><td style='color:#999; padding-right:8px'>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
            for k, v in entry_facts(entry, self.costs_simulated)
        )
        self.facts_label.setText(f"<table>{rows}</table>")
        _drop(self.reference_chips)
        refs = entry.references
        self.refs_heading.setText(f"References ({len(refs)})" if refs else "No references")
        generation = self._generation
        for i, ref in enumerate(refs):
            chip = ReferenceChip(ref, self.refs_box)
            self.refs_grid.addWidget(chip, i // 3, i % 3)
            self.reference_chips.append(chip)
            path = chip.source_path()
            if path is not None:
                self._load_reference_thumbnail(generation, chip, path)
        self._show_lineage(entry, generation)

    def _show_lineage(self, entry: LibraryEntry, generation: int) -> None:
        _drop(self.relative_chips)
        for widget in (self.made_from_heading, self.made_from_box, self.used_in_heading, self.used_in_box):
            widget.setVisible(False)
        lookup = self._lineage
        if lookup is None:
            return

        def done(found: tuple[list[Relative], list[Relative]]) -> None:
            if generation != self._generation:
                return
            parents, children = found
            for kind, relatives, heading, box, grid in (
                ("parent", parents, self.made_from_heading, self.made_from_box, self.made_from_grid),
                ("child", children, self.used_in_heading, self.used_in_box, self.used_in_grid),
            ):
                heading.setText(f"{'Made from' if kind == 'parent' else 'Used in'} ({len(relatives)})")
                heading.setVisible(bool(relatives))
                box.setVisible(bool(relatives))
                for i, relative in enumerate(relatives[:24]):
                    chip = RelativeChip(relative, kind, box)
                    chip.clicked.connect(lambda _checked=False, r=relative: self._open_relative(r))
                    grid.addWidget(chip, i // 3, i % 3)
                    self.relative_chips.append(chip)
                    if relative.entry is not None:
                        self._load_relative_thumbnail(generation, chip, relative.entry.path)

        self._runner.submit(lambda: lookup(entry), done, lambda _error: None)

    def _load_relative_thumbnail(self, generation: int, chip: RelativeChip, path: Path) -> None:
        def done(image: QImage) -> None:
            if generation == self._generation:
                chip.set_thumbnail(image)

        self._runner.submit(lambda: decode_thumbnail_file(path, 56), done, lambda _error: None)

    def _open_relative(self, relative: Relative) -> None:
        if relative.entry is not None:
            self.relativeRequested.emit(relative.entry)

    def _load_reference_thumbnail(self, generation: int, chip: ReferenceChip, path: Path) -> None:
        def done(image: QImage) -> None:
            if generation == self._generation:
                chip.set_thumbnail(image)

        # A reference whose file cannot be read keeps its "no file" placeholder.
        self._runner.submit(lambda: decode_thumbnail_file(path, 72), done, lambda _error: None)

    # --- keys ---------------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            isinstance(watched, QLabel)
            and watched in (self.prompt_label, self.facts_label)
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and self._viewers_key_in_a_label(watched, event)
        ):
            self.keyPressEvent(event)
            return True
        return super().eventFilter(watched, event)

    @staticmethod
    def _viewers_key_in_a_label(label: QLabel, event: QKeyEvent) -> bool:
        """Whether a key pressed in the prompt or the details is the viewer's: the arrows,
        Home and End without Shift still step through the images (with Shift they select),
        and Ctrl+C with nothing selected copies the image, as it does everywhere else in
        the viewer (the label took it, and copied nothing)."""
        if event.matches(QKeySequence.StandardKey.Copy):
            return not label.hasSelectedText()
        moves = (Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Home, Qt.Key.Key_End)
        return event.key() in moves and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if event.matches(QKeySequence.StandardKey.Undo):
            if self._set_favourite is not None:  # the gallery's undo, not a file's from outside
                self.undoRequested.emit()
            else:
                self.show_hint(NOTHING_TO_UNDO)
        elif event.matches(QKeySequence.StandardKey.Copy):
            self.copy_shown()
        elif key == Qt.Key.Key_Left:
            self.previous()
        elif key == Qt.Key.Key_Right:
            self.next()
        elif key == Qt.Key.Key_Home and self._row_count():  # the newest, as in the gallery
            self.show_row(0)
        elif key == Qt.Key.Key_End and self._row_count():  # the oldest
            self.show_row(self._row_count() - 1)
        elif key == Qt.Key.Key_F:
            self.toggle_favourite()
        elif key == Qt.Key.Key_Delete:
            self.delete_shown()
        elif key == Qt.Key.Key_0:
            self.canvas.fit()
        elif key == Qt.Key.Key_1:
            self.canvas.actual_size()
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.canvas.zoom_by(1.25)
        elif key == Qt.Key.Key_Minus:
            self.canvas.zoom_by(0.8)
        elif key == Qt.Key.Key_Space:
            self.close()
        else:
            super().keyPressEvent(event)


def _drop(chips: list[Any]) -> None:
    """Take ``chips`` off the panel and empty the list that held them."""
    for chip in chips:
        chip.setParent(None)
        chip.deleteLater()
    chips.clear()

"""The reference tray: images that pull the result toward them (+) or push it away (−).

Images arrive by drag and drop, by paste, or programmatically; each is loaded in the
background (see :mod:`krea_desktop.ui.references.loading`) and shown only once ready;
anything refused leaves the tray as it was and is explained through
:attr:`ReferenceTray.message`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

from PySide6.QtCore import QEvent, QMimeData, QObject, QPoint, QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QDragEnterEvent,
    QDragLeaveEvent,
    QDragMoveEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QMoveEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QResizeEvent,
    QValidator,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QBoxLayout,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from krea_desktop.api import spec
from krea_desktop.api.request import ReferenceImage
from krea_desktop.library.inputs import (
    InvalidImageError,
    is_data_uri,
    is_web_url,
    remove_stale_temp_files,
)
from krea_desktop.models.references import Reference, ReferenceSet, StateError
from krea_desktop.ui.background import Runner
from krea_desktop.ui.mime import LIBRARY_IDS_MIME, decode_library_ids
from krea_desktop.ui.pixels import decoded
from krea_desktop.ui.references.card import REFERENCE_MIME, ReferenceItem
from krea_desktop.ui.references.loading import FULL, ReferenceLoader
from krea_desktop.ui.references.sources import (
    FindParent,
    Source,
    might_hold_image,
    sources_from_mime,
)
from krea_desktop.ui.theme import set_role
from krea_desktop.wording import for_count, short_reference_name

if TYPE_CHECKING:  # its type is made only when a focus event comes
    from PySide6.QtGui import QFocusEvent

ResolveLibraryIds = Callable[[list[int]], list[Path]]

ADD_TIP = "Choose image files to add as references"


class ReferenceTray(QWidget):
    """The view of a :class:`ReferenceSet`: a card per reference, and the ways in.

    The cards wrap into as many rows as the tray's width calls for, in the set's order;
    the tray asks for the height of all its rows and scrolls up and down when it gets less.

    ``references_dir`` receives a copy of each image named by its SHA-256;
    ``state_file`` (default ``references_dir / "tray.json"``) keeps the set across
    restarts; ``resolve_library_ids`` maps gallery ids to image files (called on the GUI
    thread). Without it, gallery drops are announced through :attr:`libraryIdsDropped`.
    Loading (decoding, checking, copying) runs in the background; the set changes only
    when an image is ready, in the order the images were given.
    """

    referencesChanged = Signal()
    message = Signal(str)  # a one-sentence explanation of something refused
    busyChanged = Signal(bool)
    libraryIdsDropped = Signal(list)
    sweepRequested = Signal(int)  # the reference's index: sweep its strength
    removed = Signal(int, object)  # a card's ✕: its index and its Reference (for put_back)

    def __init__(
        self,
        references_dir: Path,
        *,
        state_file: Path | None = None,
        resolve_library_ids: ResolveLibraryIds | None = None,
        find_parent: FindParent | None = None,
        runner: Runner | None = None,
        autosave: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("referenceTray")
        self.setAcceptDrops(True)
        self.setToolTip(
            "References: drop images, image files or web images here, or paste with Ctrl+V. "
            "Positive strengths pull the result toward an image, negative ones push it away."
        )
        self.references_dir = Path(references_dir)
        self.state_file = Path(state_file) if state_file else self.references_dir / "tray.json"
        self._resolve = resolve_library_ids
        self.model = ReferenceSet(self.references_dir, self.state_file)
        self.model.changed.connect(self._model_changed)
        self.model.strength_changed.connect(self._model_strength_changed)
        self._items: list[ReferenceItem] = []  # the cards, in the set's order
        self._loader = ReferenceLoader(
            self.model, self.references_dir, find_parent=find_parent, runner=runner, parent=self
        )
        self._loader.message.connect(self.message)
        self._loader.pendingChanged.connect(self._update_count)
        self._loader.busyChanged.connect(self._busy_changed)
        self._drop_highlight = False
        self._autosave = autosave
        self._dirty = False
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(250)
        self._save_timer.timeout.connect(self._autosave_now)

        self._container = QWidget()
        self._container.setObjectName("referenceTrayContents")
        self._grid = QGridLayout(self._container)
        self._grid.setContentsMargins(4, 4, 4, 4)
        self._grid.setSpacing(6)
        self._columns = 1  # cards in a row, from the width the scroll area gives them
        self.emptyLabel = QLabel(
            "Drop reference images here, paste one with Ctrl+V, or drag results from the gallery.\n"
            "Each pulls the result toward it (+) or pushes it away (−).",
            self._container,
        )
        self.emptyLabel.setObjectName("emptyLabel")
        self.emptyLabel.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.emptyLabel.setWordWrap(True)
        set_role(self.emptyLabel, "hint")

        self._scroll = QScrollArea(self)
        self._scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # its cards take the focus, not the scroll area
        self._scroll.setWidget(self._container)
        self._scroll.setWidgetResizable(True)
        self._scroll.setFrameShape(QFrame.Shape.NoFrame)
        self._scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self._scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        self.addButton = QToolButton(self)
        self.addButton.setObjectName("addReferenceButton")
        self.addButton.setText("Add…")
        self.addButton.setToolTip(ADD_TIP)
        self.addButton.clicked.connect(self._choose_files)
        self.countLabel = QLabel(self)
        self.countLabel.setObjectName("referenceCount")
        self.countLabel.setToolTip(f"How many references the tray holds (at most {spec.MAX_REFERENCES})")
        set_role(self.countLabel, "hint")

        # The count and the Add button beside the cards, unless the window puts them in
        # its heading (place_controls).
        self._side: QWidget | None = QWidget(self)
        side = QVBoxLayout(self._side)
        side.setContentsMargins(0, 0, 0, 0)
        side.addWidget(self.addButton)
        side.addWidget(self.countLabel)
        side.addStretch(1)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(4, 4, 4, 4)
        self._layout.addWidget(self._scroll, 1)
        self._layout.addWidget(self._side)
        self.setMinimumHeight(230)
        self._area: QScrollArea | None = None  # the scrolled column the tray sits in, if any
        self._tab_next: QWidget | None = None  # what Tab reaches after the last card
        self._relayout()

    def _show_focused(self, new: QWidget) -> None:
        """A card's control that Tab brings the focus to is scrolled into sight, in the tray
        and in the column that holds it: Tab from Add, or Shift+Tab from the search, landed
        on a card scrolled out of sight (the scroll area follows only a Tab begun inside
        it). Not for a click (the card would move under the pointer) nor for the window
        coming back to the front."""
        if not self._container.isAncestorOf(new):
            return
        card = next((w for w in self._items if w is new or w.isAncestorOf(new)), None)
        self._scroll.ensureWidgetVisible(card if card is not None else new, 0, 0)
        column = self._area.widget() if self._area is not None else None
        if self._area is not None and column is not None and column.isAncestorOf(new):
            self._area.ensureWidgetVisible(new, 0, 0)

    def fit_within(self, area: QScrollArea) -> None:
        """Ask for no more height than ``area`` (a scrolled column that holds the tray)
        shows below the tray's top: rows beyond that scroll inside the tray, and the
        column with the prompt above it stays where it is."""
        self._area = area
        area.viewport().installEventFilter(self)
        self._fit()

    def _fit(self) -> None:
        area = self._area
        content = area.widget() if area is not None else None
        if area is None or content is None or not content.isAncestorOf(self):
            return
        layout = content.layout()
        below = layout.contentsMargins().bottom() if layout is not None else 0
        room = area.viewport().height() - self.mapTo(content, QPoint(0, 0)).y() - below
        self.setMaximumHeight(max(self.minimumHeight(), room))

    def set_tab_successor(self, widget: QWidget) -> None:
        """Tab goes from Add through every card, in the tray's order, then to ``widget``."""
        self._tab_next = widget
        self._chain_tab_order()

    def _chain_tab_order(self) -> None:
        if self._tab_next is None:
            return
        chain = [self.addButton, *(w for item in self._items for w in item.focus_chain()), self._tab_next]
        for first, second in itertools.pairwise(chain):
            QWidget.setTabOrder(first, second)

    def place_controls(self, row: QBoxLayout) -> None:
        """Put the count and the Add button in ``row`` (a heading above the tray), so the
        cards have the tray's whole width."""
        row.addWidget(self.countLabel)
        row.addWidget(self.addButton)
        side, self._side = self._side, None
        if side is not None:
            side.hide()
            side.deleteLater()
        self._relayout()

    # --- reading the tray -----------------------------------------------------------

    def references(self) -> tuple[ReferenceImage, ...]:
        self.commit_edits()
        return self.model.requests()

    def commit_edits(self) -> None:
        """Take a strength still being typed into its box (the boxes take a value on Enter
        or when they lose the focus; Ctrl+Enter and quitting do neither)."""
        for item in self._items:
            spin = item.strengthSpin
            text = spin.text()
            if text == spin.textFromValue(spin.value()):
                continue
            # Only a whole value: "-" or "" is a strength still being typed, left as it is.
            if spin.validate(text, len(text))[0] == QValidator.State.Acceptable:
                spin.interpretText()

    def missing_copy(self) -> str | None:
        """One sentence if a reference's kept copy was deleted behind the app's back (every
        request with it would fail), naming it as the person added it; else None."""
        for number, ref in enumerate(self.model.items(), 1):
            if not ref.path.is_file():
                name = f" ({ref.source})" if ref.source else ""
                return f"Reference {number}{name} is no longer on disk; remove it and add the image again."
        return None

    def when_idle(self, call: Callable[[], None]) -> None:
        """``call`` once no reference is loading: now, or when the last load lands."""
        if not self.isBusy():
            call()
            return

        def idle(busy: bool) -> None:
            if not busy:
                self.busyChanged.disconnect(idle)
                call()

        self.busyChanged.connect(idle)

    def items(self) -> list[ReferenceItem]:
        return list(self._items)

    def count(self) -> int:
        return len(self.model)

    def isBusy(self) -> bool:
        return self._loader.is_busy()

    def downloading_from(self) -> str | None:
        """The host an image still loading is being downloaded from, if one is."""
        return self._loader.downloading_from()

    def room(self) -> int:
        """How many more references fit, counting those still loading."""
        return self._loader.room()

    # --- changing the tray ----------------------------------------------------------

    def add_reference(
        self, source: bytes | str | os.PathLike[str], strength: float = spec.DEFAULT_STRENGTH, *, reveal: bool = True
    ) -> bool:
        """Load an image (bytes, a path, an http(s) URL or a data URI) in the background.
        Its card comes into sight, scrolling the column around the tray if need be, unless
        ``reveal`` is False (the tray being set from a record, say).

        Returns False, and says why through :attr:`message`, if the tray is full.
        """
        if isinstance(source, (bytes, bytearray)):
            src = Source("bytes", bytes(source), strength)
        elif isinstance(source, str) and (is_web_url(source) or is_data_uri(source)):
            src = Source("url", source, strength)
        else:
            src = Source("path", Path(source), strength)
        return self._start([src], reveal=reveal)

    def add_paths(self, paths: list[Path]) -> bool:
        """Load image files as one batch: all of them, or (with a message saying how many
        fit) none when there is not room for all."""
        return self._start([Source("path", Path(p)) for p in paths])

    def add_image(self, image: QImage, strength: float = spec.DEFAULT_STRENGTH) -> bool:
        return self._start([Source("qimage", QImage(image), strength)])

    def remove(self, index: int) -> None:
        self.model.remove(index)

    def clear(self) -> None:
        self.model.clear()

    def move_reference(self, source: int, target: int) -> None:
        """Move the reference at ``source`` so that it ends up at index ``target``."""
        self.model.move(source, target)

    def handle_mime(self, mime: QMimeData) -> bool:
        """Add whatever images ``mime`` carries; False (with a message) when nothing was taken."""
        if mime.hasFormat(LIBRARY_IDS_MIME):
            try:
                ids = decode_library_ids(bytes(mime.data(LIBRARY_IDS_MIME).data()))
            except InvalidImageError as exc:
                self.message.emit(str(exc))
                return False
            if self._resolve is None:
                self.libraryIdsDropped.emit(ids)
                return bool(ids)
            if len(ids) > self.room() + self.count():
                # More than fit even were every reference in the tray among them: refused
                # before any is looked up (a selection of thousands is as many queries and
                # file checks, on this thread).
                self.message.emit(self._loader.no_room(len(ids)))
                return False
            try:
                paths = [Path(p) for p in self._resolve(ids)]
            except Exception:
                paths = []
            # The files the drag names: ids are this library's, and another window's
            # library (or this one's, since an id was deleted and given again) means
            # other images by them. When they do not name the same files, the files win.
            files = [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []
            named = len(ids)
            if files and sorted(paths) != sorted(files):
                named = len(files)
                paths = [f for f in files if f.is_file()]
            if not paths:
                # Dragged, or copied and pasted since they were deleted.
                self.message.emit(
                    "Those gallery images are no longer in the library (deleted since), so none was added."
                )
                return False
            gone = named - len(paths)  # some of them deleted since: said, not left out unsaid
            said: list[str] = []
            if gone > 0:
                were, they = for_count(gone, "was", "were"), for_count(gone, "it", "they")
                said.append(
                    f"{gone} of the {named} gallery images {were} deleted since {they} {were} copied, "
                    f"so {they} {were} not added."
                )
            return self._start([Source("path", p) for p in paths], said=said)
        sources = sources_from_mime(mime)
        if not sources:
            self.message.emit("That is not an image, an image file or an image address, so nothing was added.")
            return False
        return self._start(sources)

    def paste_from_clipboard(self) -> bool:
        mime: QMimeData | None = QGuiApplication.clipboard().mimeData()
        if mime is None or not mime.formats():  # none, or data of no format (X11's empty clipboard)
            self.message.emit("The clipboard is empty; copy an image or an image address first.")
            return False
        return self.handle_mime(mime)

    # --- state across restarts -----------------------------------------------------------

    def save_state(self) -> None:
        """Write the references (copies' file names and strengths, in order) atomically,
        and those on their way into it (:meth:`ReferenceLoader.on_their_way`)."""
        on_their_way = self._loader.on_their_way()
        try:
            self.model.save(on_their_way)
        except OSError:
            self.message.emit(f"The reference tray could not be saved to {self.state_file}; check the data folder.")
            return
        # Saved with references still on their way: saved again once the loads have ended
        # (_busy_changed), without those that could not be read.
        self._dirty = bool(on_their_way)

    def restore_state(self) -> bool:
        """Load the tray saved by :meth:`save_state` (in the background); False if there was none."""
        remove_stale_temp_files(self.state_file.parent)  # left by a crash mid-write
        remove_stale_temp_files(self.references_dir)
        if not self.state_file.exists():
            return False
        try:
            saved = self.model.read_saved()
        except StateError as exc:
            self.message.emit(str(exc))
            return False
        sources = [Source("path", s.path, s.strength, s.source or None, s.parent) for s in saved]
        if not sources:
            return True
        return self._start(sources, restoring=True)

    # --- loading ----------------------------------------------------------------------

    def _start(
        self, sources: list[Source], restoring: bool = False, reveal: bool = True, said: list[str] | None = None
    ) -> bool:
        return self._loader.start(sources, restoring=restoring, reveal=reveal, said=said)

    def _busy_changed(self, busy: bool) -> None:
        self.busyChanged.emit(busy)
        if not busy and self._dirty and self._autosave:
            self._save_timer.start()

    def _card(self, ref: Reference) -> ReferenceItem:
        thumbnail = self._loader.take_thumbnail(ref.sha256)
        if thumbnail is None:
            thumbnail = decoded(ref.thumbnail)  # not QImage.fromData: see ui.pixels
        item = ReferenceItem(
            ref.path,
            ref.sha256,
            thumbnail,
            ref.strength,
            source=ref.source,
            size=(ref.width, ref.height),
            library_image=ref.parent,
            parent=self._container,
        )
        item.strengthChanged.connect(lambda value, it=item: self._item_strength(it, value))
        item.removeRequested.connect(lambda it=item: self._remove_item(it))
        item.sweepRequested.connect(lambda it=item: self._sweep_item(it))
        item.moveRequested.connect(lambda delta, it=item: self._move_item(it, delta))
        item.strengthSlider.installEventFilter(self)
        item.strengthSpin.installEventFilter(self)
        for control in (item.moveLeftButton, item.moveRightButton, item.sweepButton, item.removeButton):
            control.installEventFilter(self)  # for the focus Tab brings (see _show_focused)
        return item

    def _sweep_item(self, item: ReferenceItem) -> None:
        if item in self._items:
            self.sweepRequested.emit(self._items.index(item))

    def _model_changed(self) -> None:
        """Make the cards match the set: reuse each image's card, make new ones, drop the rest."""
        by_sha = {item.sha256: item for item in self._items}
        items = []
        made: ReferenceItem | None = None
        for ref in self.model:
            item = by_sha.pop(ref.sha256, None)
            if item is None:
                item = made = self._card(ref)
            else:
                item.setStrength(ref.strength, notify=False)
            items.append(item)
        if made is not None:
            # The last one added: in sight, wherever the tray (and, for one the person just
            # brought in, the column around it) was scrolled.
            self._show_card(made, in_column=self._loader.reveal)
        self._loader.reveal = False
        for gone in by_sha.values():
            gone.hide()
            gone.setParent(None)
            gone.deleteLater()
        self._items = items
        self._changed()

    def _model_strength_changed(self, index: int, value: float) -> None:
        if 0 <= index < len(self._items):
            self._items[index].setStrength(value, notify=False)
        self._changed(relayout=False)

    def _item_strength(self, item: ReferenceItem, value: float) -> None:
        index = self.model.index_of(item.sha256)
        if index is not None:
            self.model.set_strength(index, value)

    def _remove_item(self, item: ReferenceItem) -> None:
        self.commit_edits()  # a strength still being typed is what Undo gives back
        index = self.model.index_of(item.sha256)
        if index is None:
            return
        focused = _holds_focus(item)
        gone = self.model[index]
        self.model.remove(index)
        if focused:
            # On a control of the card that took its place (or Add): hidden with the focus
            # in it, the card would hand the focus to the top of the window (the ratios,
            # where the next arrow key changes the size). Its strength, not its ✕: a key
            # pressed twice removes one reference, not two.
            after = self._items[min(index, len(self._items) - 1)].strengthSpin if self._items else self.addButton
            after.setFocus(Qt.FocusReason.OtherFocusReason)
        self.removed.emit(index, gone)

    def put_back(self, index: int, reference: Reference, *, say: bool = True) -> bool:
        """A reference removed with its card's ✕, at its place again (Undo); whether it is
        in the tray now. One that no longer fits is said (``say``) in one sentence: the Undo
        has gone with its message, so no advice to make room is given."""
        if self.model.index_of(reference.sha256) is not None:
            return True  # already back (brought in again meanwhile)
        if self.room() > 0 and self.model.insert(index, reference):  # room counts images still loading
            return True
        if say:
            self.message.emit(not_put_back([reference]))
        return False

    def _move_item(self, item: ReferenceItem, delta: int) -> None:
        index = self.model.index_of(item.sha256)
        if index is None:
            return
        focused = _holds_focus(item)
        self.model.move(index, index + delta)
        if focused:
            # On the arrow pressed while it still leads somewhere, else on the other one:
            # at the row's end a disabled button hands the focus on, to the card's ✕.
            pressed, other = item.moveLeftButton, item.moveRightButton
            if delta > 0:
                pressed, other = other, pressed
            keep = pressed if pressed.isEnabled() else other if other.isEnabled() else item.strengthSpin
            keep.setFocus(Qt.FocusReason.OtherFocusReason)
        self._show_card(item)

    def _show_card(self, item: ReferenceItem, in_column: bool = False) -> None:
        """Scroll the rows so that ``item`` is in sight once the layout has placed it, and
        with ``in_column`` the column that holds the tray too (on a short screen the tray
        begins near the column's bottom edge)."""
        QTimer.singleShot(0, lambda: self._bring_into_sight(item, in_column))

    def _bring_into_sight(self, item: ReferenceItem, in_column: bool) -> None:
        if item not in self._items:
            return
        # The scroll area sizes the cards and its scroll bar's range when it next handles
        # their layout request; setting the (same) resizable mode does it now.
        self._grid.activate()
        self._scroll.setWidgetResizable(True)
        margin = self._grid.contentsMargins().top()  # the card's frame clear of the edge
        self._scroll.ensureWidgetVisible(item, margin, margin)
        area = self._area
        content = area.widget() if area is not None else None
        if in_column and area is not None and content is not None and content.isAncestorOf(item):
            area.ensureWidgetVisible(item, 0, margin)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if self._area is not None and watched is self._area.viewport():
            if event.type() == QEvent.Type.Resize:
                self._fit()
            return False
        if event.type() == QEvent.Type.FocusIn and isinstance(watched, QWidget):
            reason = cast("QFocusEvent", event).reason()
            if reason in (Qt.FocusReason.TabFocusReason, Qt.FocusReason.BacktabFocusReason):
                self._show_focused(watched)
            return False
        # A card's strength control takes the wheel only once it has the focus (a click or
        # Tab); before that the wheel scrolls the tray's rows (and, at their end, the
        # column around the tray), and the strength stays as it was.
        if isinstance(event, QWheelEvent) and isinstance(watched, QWidget) and not watched.hasFocus():
            QApplication.sendEvent(self._scroll.verticalScrollBar(), event)
            if not event.isAccepted() and self._area is not None:
                QApplication.sendEvent(self._area.verticalScrollBar(), event)
            return True
        return super().eventFilter(watched, event)

    def moveEvent(self, event: QMoveEvent) -> None:
        super().moveEvent(event)
        self._fit()  # what is above it grew or shrank (the Advanced section, the prompt)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._column_count() != self._columns:
            self._relayout()

    def sizeHint(self) -> QSize:
        """As tall as all the rows of cards at the tray's present width."""
        hint = super().sizeHint()
        if not self._items:
            return hint
        rows = -(-len(self._items) // self._columns)
        card = self._items[0].sizeHint().height()
        grid = self._grid.contentsMargins()
        outer = self._layout.contentsMargins()
        height = rows * card + (rows - 1) * self._grid.spacing() + grid.top() + grid.bottom()
        return QSize(hint.width(), max(self.minimumHeight(), height + outer.top() + outer.bottom()))

    def minimumSizeHint(self) -> QSize:
        """Room for two cards side by side (and the scroll bar beside them), so that a
        narrow column still shows references in pairs rather than one under another."""
        hint = super().minimumSizeHint()
        return QSize(max(hint.width(), self._width_for(2)), hint.height())

    def _width_for(self, columns: int) -> int:
        """The tray's width that fits ``columns`` cards in a row (:meth:`_column_count`)."""
        outer = self._layout.contentsMargins()
        grid = self._grid.contentsMargins()
        width = outer.left() + outer.right() + grid.left() + grid.right()
        width += self._scroll.verticalScrollBar().sizeHint().width()
        if self._side is not None:
            width += self._side.sizeHint().width() + self._layout.spacing()
        return width + columns * ReferenceItem.card_width() + (columns - 1) * self._grid.spacing()

    def _column_count(self) -> int:
        """How many cards fit side by side, leaving room for the scroll bar that appears
        when the rows are more than the tray can show (so it never changes the count)."""
        outer = self._layout.contentsMargins()
        width = self.width() - outer.left() - outer.right()
        if self._side is not None:
            width -= self._side.sizeHint().width() + self._layout.spacing()
        width -= self._scroll.verticalScrollBar().sizeHint().width()
        grid = self._grid.contentsMargins()
        width -= grid.left() + grid.right()
        card = ReferenceItem.card_width() + self._grid.spacing()
        return max(1, (width + self._grid.spacing()) // card)

    def _changed(self, relayout: bool = True) -> None:
        if relayout:
            self._relayout()
        self._dirty = True
        # Saved even while images load: a save keeps those on their way (save_state), and a
        # download that takes its time must not hold the tray's edits back from the disk.
        if self._autosave:
            self._save_timer.start()
        self.referencesChanged.emit()

    def _autosave_now(self) -> None:
        if self._dirty:
            self.save_state()

    def _relayout(self) -> None:
        """Place the cards in rows of as many as fit, in the set's order, top left first."""
        grid = self._grid
        for item in self._items:
            grid.removeWidget(item)
        grid.removeWidget(self.emptyLabel)
        for row in range(grid.rowCount()):
            grid.setRowStretch(row, 0)
        for column in range(grid.columnCount()):
            grid.setColumnStretch(column, 0)
        self._columns = columns = self._column_count()
        if self._items:
            for index, item in enumerate(self._items):
                grid.addWidget(item, index // columns, index % columns)
                item.setPosition(index, len(self._items))
                item.show()
            # Spare room goes right of the last column and below the last row.
            grid.setColumnStretch(columns, 1)
            grid.setRowStretch(-(-len(self._items) // columns), 1)
        else:
            grid.addWidget(self.emptyLabel, 0, 0)
            grid.setRowStretch(0, 1)
            grid.setColumnStretch(0, 1)
        self.emptyLabel.setVisible(not self._items)
        self.updateGeometry()
        self._update_count()
        self._chain_tab_order()  # new cards join the end of the window's chain; moved ones keep their place

    def _update_count(self) -> None:
        pending = self._loader.pending
        loading = f" (+{pending} loading)" if pending else ""
        self.countLabel.setText(f"{len(self._items)}/{spec.MAX_REFERENCES}{loading}")
        # Full (counting the references still loading): Add says why instead of failing.
        full = self.room() <= 0
        self.addButton.setEnabled(not full)
        self.addButton.setToolTip(FULL if full else ADD_TIP)

    def _choose_files(self) -> None:
        files, _filter = QFileDialog.getOpenFileNames(
            self, "Add reference images", "", "Images (*.png *.jpg *.jpeg *.webp *.gif *.bmp *.tif *.tiff *.avif)"
        )
        if files:
            self._start([Source("path", Path(f)) for f in files])

    # --- drag and drop -----------------------------------------------------------------

    def _reorder_target(self, position: QPointF) -> int:
        """Where a card dropped at ``position`` goes: before the first card that the point
        comes before in reading order (an earlier row, or left of its middle in its row)."""
        x, y = position.x(), position.y()
        for index, item in enumerate(self._items):
            top_left = item.mapTo(self, QPoint(0, 0))
            if y < top_left.y() or (y < top_left.y() + item.height() and x < top_left.x() + item.width() / 2):
                return index
        return len(self._items)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        if mime.hasFormat(REFERENCE_MIME):
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
        elif might_hold_image(mime):
            event.acceptProposedAction()
        else:
            event.ignore()
            return
        self._drop_highlight = True
        self.update()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if event.mimeData().hasFormat(REFERENCE_MIME):
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
            self._scroll_near_edge(event.position())
        else:
            event.acceptProposedAction()

    def _scroll_near_edge(self, position: QPointF) -> None:
        """A card dragged near the top or bottom of the rows scrolls them, so that rows out
        of sight can be dropped on."""
        viewport = self._scroll.viewport()
        y = viewport.mapFrom(self, position.toPoint()).y()
        edge = self._grid.spacing() * 4
        bar = self._scroll.verticalScrollBar()
        if y < edge:
            bar.setValue(bar.value() - bar.singleStep())
        elif y > viewport.height() - edge:
            bar.setValue(bar.value() + bar.singleStep())

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self._drop_highlight = False
        self.update()

    def dropEvent(self, event: QDropEvent) -> None:
        self._drop_highlight = False
        self.update()
        mime = event.mimeData()
        if mime.hasFormat(REFERENCE_MIME):
            sha = bytes(mime.data(REFERENCE_MIME).data()).decode(errors="replace")
            index = self.model.index_of(sha)
            if index is not None:
                target = self._reorder_target(event.position())
                self.move_reference(index, target - 1 if target > index else target)
                event.setDropAction(Qt.DropAction.CopyAction)
                event.accept()
                return
        if self.handle_mime(mime):
            event.acceptProposedAction()
        else:
            event.ignore()

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        accent = self.palette().color(QPalette.ColorRole.Highlight)
        colour = accent if self._drop_highlight else self.palette().color(QPalette.ColorRole.Mid)
        p.setPen(QPen(colour, 2 if self._drop_highlight else 1, Qt.PenStyle.DashLine))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRoundedRect(QRectF(self.rect()).adjusted(1, 1, -1, -1), 6, 6)
        p.end()

    def finish_loads(self, msecs: int = 5000) -> None:
        """The window is closing: the loads still running take their places first
        (:meth:`ReferenceLoader.finish`)."""
        self._loader.finish(msecs)

    def wait_for_loads(self, msecs: int = 10_000) -> None:
        """Block until background loads finish (tests and shutdown)."""
        self._loader.wait(msecs)


def _holds_focus(widget: QWidget) -> bool:
    """Whether ``widget`` or a widget in it has the keyboard focus."""
    focus = QApplication.focusWidget()
    return focus is not None and (focus is widget or widget.isAncestorOf(focus))


def not_put_back(references: list[Reference]) -> str:
    """Why ``references``, removed, were not put back: the tray filled up meanwhile."""
    if len(references) == 1:
        which = f"“{short_reference_name(references[0].source or references[0].path.name)}”"
    else:
        which = f"{len(references)} references"
    return (
        f"{which} could not be put back: the tray is full ({spec.MAX_REFERENCES} references, "
        "the most a generation can use)."
    )

"""The gallery's actions: one QAction per thing that can be done with the selected
images, laid out in the Gallery menu, the toolbar above the gallery and its context menu,
with their shortcuts, and enabled as the selection allows.

What the actions do lives beside them: :mod:`.recall` (reusing parameters, adding
references), :mod:`.desktop` (clipboard, file manager), :mod:`.export`, :mod:`.deleting`
(delete with undo); the viewer and compare dialogs are :mod:`krea_desktop.ui.viewer`'s.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import QItemSelectionModel, QObject, QPoint, QRectF, QSettings, Qt, QUrl, Signal
from PySide6.QtGui import QAction, QColor, QFont, QIcon, QImage, QKeySequence, QPainter, QPixmap
from PySide6.QtWidgets import QMenu, QStyle, QToolBar, QWidget

from krea_desktop.library.lineage import Relative, made_from, used_in
from krea_desktop.library.store import Library, LibraryEntry, LibraryError, ReconcileReport
from krea_desktop.library.trash import TrashBatch
from krea_desktop.ui import theme
from krea_desktop.ui.background import BackgroundRunner, Runner
from krea_desktop.ui.gallery.deleting import UndoableDelete
from krea_desktop.ui.gallery.desktop import copy_entries, file_urls, png_with_record, reveal_in_file_manager
from krea_desktop.ui.gallery.export import Exporter
from krea_desktop.ui.gallery.favourites import WantedFavourites
from krea_desktop.ui.gallery.filter_bar import GalleryFilterBar
from krea_desktop.ui.gallery.model import FEW_ROWS, GalleryModel
from krea_desktop.ui.gallery.recall import AWAY, TOWARD, Recall
from krea_desktop.ui.gallery.view import GalleryView, runs_of
from krea_desktop.ui.viewer.canvas import decode_image_file
from krea_desktop.ui.viewer.compare import CompareDialog
from krea_desktop.ui.viewer.viewer import COPIED, NOTHING_TO_UNDO, ImageViewer
from krea_desktop.wording import counted, for_count

ShowMessage = Callable[..., None]


def _action(parent: QObject, text: str, tip: str, slot: Callable[[], Any], *shortcuts: str) -> QAction:
    action = QAction(text, parent)
    action.setToolTip(tip)
    action.setStatusTip(tip)
    if shortcuts:
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
    action.triggered.connect(lambda _checked=False: slot())
    return action


def _painted_icon(symbol: str, colour: QColor) -> QIcon:
    """A small round icon: ``symbol`` in white on a disc of ``colour``."""
    icon = QIcon()
    for side in (16, 32):
        pixmap = QPixmap(side, side)
        pixmap.fill(Qt.GlobalColor.transparent)
        p = QPainter(pixmap)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(colour)
        p.drawEllipse(QRectF(0.5, 0.5, side - 1, side - 1))
        font = QFont()
        font.setBold(True)
        font.setPixelSize(round(side * 0.8))
        p.setFont(font)
        p.setPen(QColor("#ffffff"))
        p.drawText(pixmap.rect(), int(Qt.AlignmentFlag.AlignCenter), symbol)
        p.end()
        icon.addPixmap(pixmap)
    return icon


class GalleryActions(QObject):
    """The gallery's actions and the selection they act on, wired to ``recall`` (the
    window's controls), an :class:`Exporter`, an :class:`UndoableDelete` and the viewer
    and compare dialogs."""

    countsChanged = Signal()  # images were deleted, restored or found
    sheetRequested = Signal(str)  # a sweep's id: open its contact sheet
    status = Signal(str)  # a passing note for the status bar
    favouritesChanged = Signal(object, bool)  # the ids marked (True) or unmarked (False)

    def __init__(
        self,
        *,
        view: GalleryView,
        model: GalleryModel,
        library: Library,
        recall: Recall,
        filter_bar: GalleryFilterBar,
        settings: QSettings,
        show_message: ShowMessage,
        parent_widget: QWidget,
        runner: Runner | None = None,
        withdraw_message: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(parent_widget)
        # Takes back a message no longer true (a delete's, with its Undo, once undone).
        self.withdraw_message = withdraw_message or (lambda _text: None)
        self._delete_said: dict[int, str] = {}  # what each delete said, by id() of its batch
        self.view, self.model, self.library = view, model, library
        self.recall = recall
        self.filter_bar = filter_bar
        self.show_message = show_message
        self.parent_widget = parent_widget
        self.runner: Runner = runner if runner is not None else BackgroundRunner(parent=self)
        self._favourites = WantedFavourites()  # as last asked for, while writes are under way
        self.exporter = Exporter(
            settings=settings, runner=self.runner, show_message=show_message, parent_widget=parent_widget
        )
        self.deleting = UndoableDelete(library, runner=self.runner, show_message=show_message, parent=self)
        self.deleting.undoableChanged.connect(self.update_enabled)
        # Images a delete cut short had left aside are back: shown again as they are now.
        self.deleting.filesReturned.connect(lambda ids: self.model.forget(set(ids)))
        self.deleting.filesReturned.connect(lambda _ids: self.view.viewport().update())
        self.deleting.undoFinished.connect(lambda _n: self.refresh())  # their rows made from their records
        self.viewer: ImageViewer | None = None
        self._deleted_any = False  # a delete this run (its undo window may have closed since)
        self._being_deleted: set[int] = set()  # ids a delete under way is moving to the trash
        # Undo asked while a delete was under way: that delete is the one to undo, once done.
        self._undo_when_deleted = False
        self._deletes_read = 0  # deletes of many images whose entries are still being read
        self.compare_dialog: CompareDialog | None = None
        self._build_actions()
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.customContextMenuRequested.connect(self._context_menu)
        view.viewRequested.connect(self.view_selected)
        view.clearFiltersRequested.connect(filter_bar.clear)
        view.selectionModel().selectionChanged.connect(lambda *_: self.update_enabled())
        model.modelReset.connect(self.update_enabled)
        model.rowsRemoved.connect(lambda *_: self.update_enabled())
        self.update_enabled()

    # --- construction ---------------------------------------------------------------------

    def _build_actions(self) -> None:
        a = _action
        self.view_action = a(
            self,
            "&View",
            "Open the image at full size (Space or Enter)",
            self.view_selected,
            "Space",
            "Return",
            "Enter",
        )
        self.use_all_action = a(
            self,
            "Use &all parameters",
            "Set the prompt, ratio, seed, settings and references that made this image",
            lambda: self._with_current(self.recall.use_all_parameters),
        )
        self.use_prompt_action = a(
            self,
            "Use &prompt",
            "Put this image's prompt in the prompt box",
            lambda: self._with_current(self.recall.use_prompt),
        )
        self.use_seed_action = a(
            self,
            "Use &seed",
            "Use this image's seed for the next generation",
            lambda: self._with_current(self.recall.use_seed),
        )
        self.toward_action = a(
            self,
            "Add as reference, &toward (+0.7)",
            "Pull the next results toward the selected images",
            lambda: self.with_selected_entries(lambda entries: self.recall.add_references(entries, TOWARD)),
        )
        self.away_action = a(
            self,
            "Add as reference, a&way (−0.7)",
            "Push the next results away from the selected images",
            lambda: self.with_selected_entries(lambda entries: self.recall.add_references(entries, AWAY)),
        )
        self.copy_action = a(
            self,
            "&Copy image",
            "Copy the image (pixels and file) to the clipboard (Ctrl+C)",
            self.copy_selected,
            "Ctrl+C",
        )
        self.export_action = a(
            self,
            "&Export as…",
            "Save a copy as PNG, JPEG or WEBP with its parameters",
            lambda: self.with_selected_entries(self.exporter.export),
            "Ctrl+Shift+E",
        )
        self.export_plain_action = a(
            self,
            "Export &without parameters…",
            "Save a copy with no prompt, seed or references in it, to share the picture alone",
            lambda: self.with_selected_entries(lambda entries: self.exporter.export(entries, with_parameters=False)),
        )
        self.reveal_action = a(
            self, "Show in file &manager", "Open the folder that holds the image", self.reveal_selected
        )
        self.favourite_action = a(
            self, "&Favourite", "Mark or unmark the selected images as favourites (F)", self.toggle_favourite, "F"
        )
        self.delete_action = a(
            self,
            "&Delete",
            "Move the selected images to the trash; Ctrl+Z brings them back (Del)",
            self.delete_selected,
            "Delete",
        )
        self.compare_action = a(
            self, "Co&mpare two", "Show the two selected images side by side", self.compare_selected
        )
        self.undo_action = a(
            self, "&Undo delete", "Bring back the images deleted last (Ctrl+Z)", self.undo_delete, "Ctrl+Z"
        )
        self.undo_action.setEnabled(False)
        self.refresh_action = a(
            self,
            "&Refresh gallery",
            "Look again at the library folder for images added or removed outside the app (F5)",
            self.refresh,
            "F5",
        )
        self.reveal_nsfw_action = QAction("Reveal &NSFW images", self)
        self.reveal_nsfw_action.setCheckable(True)
        self.reveal_nsfw_action.setToolTip("Show images flagged as not safe for work unblurred")
        self.reveal_nsfw_action.toggled.connect(self._reveal_nsfw)
        self.focus_search_action = a(
            self, "&Find…", "Search the gallery by prompt (Ctrl+F)", self.focus_search, "Ctrl+F"
        )
        self.lineage_action = a(
            self,
            "Show &lineage",
            "Show only this image, the images it was made from and those made from it",
            lambda: self._with_current(self.show_lineage),
        )
        self.sweep_action = a(
            self,
            "Show its s&weep",
            "Show only the images of the sweep this image belongs to",
            lambda: self._with_current(self.show_sweep),
        )
        self.sheet_action = a(
            self,
            "Open contact s&heet",
            "Open the grid of the sweep this image belongs to",
            lambda: self._with_current(self._request_sheet),
        )
        self._dress_for_toolbar()
        # Keys that mean something else in text fields act only while the gallery has focus.
        for action in (self.view_action, self.copy_action, self.favourite_action, self.delete_action):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.view.addAction(action)
        self.selection_actions = self.selection_actions_list()

    def _dress_for_toolbar(self) -> None:
        """Give each toolbar action an icon and a short label of its own (``iconText``,
        which tool buttons show; menus keep the full text). Neither ever changes, so the
        toolbar's buttons keep their places whatever is selected."""
        style = self.parent_widget.style()
        sp = QStyle.StandardPixmap
        dress: list[tuple[QAction, str, QIcon]] = [
            (self.view_action, "View", style.standardIcon(sp.SP_FileDialogContentsView)),
            (self.compare_action, "Compare", style.standardIcon(sp.SP_FileDialogDetailedView)),
            (self.use_all_action, "Use all", style.standardIcon(sp.SP_DialogApplyButton)),
            (self.toward_action, "Ref +0.7", _painted_icon("+", theme.strength_color(TOWARD))),
            (self.away_action, "Ref −0.7", _painted_icon("−", theme.strength_color(AWAY))),
            (self.favourite_action, "Favourite", _painted_icon("★", QColor(240, 190, 60))),
            (self.delete_action, "Delete", style.standardIcon(sp.SP_TrashIcon)),
            (self.undo_action, "Undo", style.standardIcon(sp.SP_ArrowBack)),
            (self.export_action, "Export…", style.standardIcon(sp.SP_DialogSaveButton)),
            (self.refresh_action, "Refresh", style.standardIcon(sp.SP_BrowserReload)),
            (self.reveal_nsfw_action, "NSFW", style.standardIcon(sp.SP_MessageBoxWarning)),
        ]
        for action, label, icon in dress:
            action.setIconText(label)
            action.setIcon(icon)
        self.toolbar_actions = [action for action, _label, _icon in dress]
        # Menus show their own text; icons there would only repeat it.
        for action in self.toolbar_actions:
            action.setIconVisibleInMenu(False)
        self._tips = {action: action.toolTip() for action in self.toolbar_actions + self.selection_actions_list()}

    def selection_actions_list(self) -> list[QAction]:
        return [
            self.view_action,
            self.use_all_action,
            self.use_prompt_action,
            self.use_seed_action,
            self.toward_action,
            self.away_action,
            self.copy_action,
            self.export_action,
            self.export_plain_action,
            self.reveal_action,
            self.favourite_action,
            self.delete_action,
        ]

    def window_actions(self) -> list[QAction]:
        """Actions whose shortcuts work anywhere in the window."""
        return [self.undo_action, self.refresh_action, self.focus_search_action]

    def fill_menu(self, menu: QMenu) -> None:
        """Every gallery action, the toolbar's included: the Gallery menu and the context
        menu both hold them all."""
        for action in (self.view_action, self.compare_action):
            menu.addAction(action)
        menu.addSeparator()
        for action in (self.use_all_action, self.use_prompt_action, self.use_seed_action):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.toward_action)
        menu.addAction(self.away_action)
        menu.addSeparator()
        for action in (self.copy_action, self.export_action, self.export_plain_action, self.reveal_action):
            menu.addAction(action)
        menu.addSeparator()
        for action in (self.lineage_action, self.sweep_action, self.sheet_action):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.favourite_action)
        menu.addAction(self.delete_action)
        menu.addAction(self.undo_action)
        menu.addSeparator()
        menu.addAction(self.reveal_nsfw_action)
        menu.addAction(self.refresh_action)

    def fill_toolbar(self, bar: QToolBar) -> None:
        """Into the window's gallery toolbar (made with the window, before these actions):
        icon and short label per action, fixed whatever is selected; what does not fit
        the width folds behind the toolbar's » button, and every action is also in the
        Gallery menu and the context menu."""
        for action in self.toolbar_actions:
            bar.addAction(action)
        theme.show_overflow_button(bar, "More gallery actions: those that do not fit this width")

    def context_menu(self) -> QMenu:
        menu = QMenu(self.view)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.fill_menu(menu)
        return menu

    def _context_menu(self, pos: QPoint) -> None:
        index = self.view.indexAt(pos)
        if index.isValid() and not self.view.selectionModel().isSelected(index):
            self.view.setCurrentIndex(index)
        self.context_menu().popup(self.view.viewport().mapToGlobal(pos))

    def update_enabled(self) -> None:
        """Enable what the selection allows; how many images an action will act on goes
        in its tooltip and status tip (never in its label, which stays put)."""
        n = len(self.selected_rows())
        for action in self.selection_actions:
            action.setEnabled(n > 0)
            tip = self._tips[action] + (f" — {n} images selected" if n > 1 else "")
            if action.toolTip() != tip:
                action.setToolTip(tip)
                action.setStatusTip(tip)
        self.compare_action.setEnabled(n == 2)
        self.undo_action.setEnabled(self.deleting.can_undo())
        current = self.current_entry() if n else None
        self.lineage_action.setEnabled(current is not None)
        in_sweep = current is not None and current.record.sweep is not None
        self.sweep_action.setEnabled(in_sweep)
        self.sheet_action.setEnabled(in_sweep)

    # --- selection ---------------------------------------------------------------------------

    def selected_rows(self) -> list[int]:
        rows = self.view.selected_rows()
        if not rows:
            current = self.view.currentIndex()
            if current.isValid() and self.view.selectionModel().isSelected(current):
                rows = [current.row()]
        return rows

    def selected_entries(self) -> list[LibraryEntry]:
        """The selected rows' entries, read here and now: for a few (see
        :meth:`with_selected_entries` for any number)."""
        return [e for e in (self.model.entry_at(r) for r in self.selected_rows()) if e is not None]

    def with_selected_entries(
        self, act: Callable[[list[LibraryEntry]], None], failed: Callable[[BaseException], None] | None = None
    ) -> None:
        """Call ``act`` with the selected rows' entries, in order. A few are read at once;
        more (Ctrl+A over 100,000 images) off the GUI thread, ``act`` running on it once
        they are read. The selection is the one of the moment this is called."""
        rows = self.selected_rows()
        if len(rows) <= FEW_ROWS:
            act([e for e in (self.model.entry_at(r) for r in rows) if e is not None])
            return
        ids = self.model.ids_at(rows)
        library = self.library

        def read() -> list[LibraryEntry]:
            found = library.get_many(ids)
            return [found[i] for i in ids if i in found]

        self.status.emit(f"Reading {counted(len(ids), 'selected image')}…")
        self.runner.submit(read, act, failed or self._library_failed)

    def current_entry(self) -> LibraryEntry | None:
        current = self.view.currentIndex()
        rows = self.selected_rows()
        if current.isValid() and current.row() in rows:
            return self.model.entry_at(current.row())
        return self.model.entry_at(rows[0]) if rows else None

    def select_ids(self, ids: Iterable[int]) -> None:
        """Select these images (tests and restoring a selection after undo), the first of
        them current: as one selection of runs of rows, made in one step. One index at a
        time, each step told to the actions, which read every range so far: 20,000 images
        brought back by Undo held the window for many minutes."""
        selection = self.view.selectionModel()
        rows = [row for row in (self.model.row_of(i) for i in ids) if row is not None]
        if not rows:
            selection.clearSelection()
            return
        flags = QItemSelectionModel.SelectionFlag
        selection.setCurrentIndex(self.model.index(rows[0]), flags.NoUpdate)
        selection.select(runs_of(self.model, rows), flags.ClearAndSelect)

    # --- lineage and sweeps -------------------------------------------------------------------

    def show_lineage(self, entry: LibraryEntry) -> None:
        """Narrow the gallery to ``entry``, its ancestors and its descendants."""
        library = self.library

        def find() -> list[int]:
            return [entry.id, *library.ancestors(entry.id), *library.descendants(entry.id)]

        def done(ids: list[int]) -> None:
            if len(ids) == 1:
                self.show_message("This image was not made from a library image, and none was made from it yet.")
            name = entry.prompt[:40] or entry.file_name
            self.model.set_scope(ids, f"Lineage of “{name}” ({len(ids)})")
            self.select_ids([entry.id])

        self.runner.submit(find, done, self._library_failed)

    def _request_sheet(self, entry: LibraryEntry) -> None:
        if entry.record.sweep is not None:
            self.sheetRequested.emit(entry.record.sweep.id)

    def show_sweep(self, entry: LibraryEntry) -> None:
        sweep = entry.record.sweep
        if sweep is not None:
            self.show_sweep_id(sweep.id, entry.prompt)

    def show_sweep_id(self, sweep_id: str, prompt: str = "") -> None:
        """Narrow the gallery to one sweep's images (its cells and its contact sheet)."""
        library = self.library

        def belongs(entry: LibraryEntry) -> bool:  # a cell, or the sheet, arriving later
            tag = entry.record.sweep
            return tag is not None and tag.id == sweep_id

        def done(ids: list[int]) -> None:
            name = prompt[:40] or "sweep"
            self.model.set_scope(ids, f"Sweep “{name}”", admits=belongs)

        self.runner.submit(lambda: [e.id for e in library.sweep_entries(sweep_id)], done, self._library_failed)

    def _with_current(self, act: Callable[[LibraryEntry], None]) -> None:
        entry = self.current_entry()
        if entry is not None:
            act(entry)

    # --- copy, reveal ---------------------------------------------------------------------------

    def copy_selected(self) -> None:
        self.with_selected_entries(self._copy)

    def copy_for(self, viewer: ImageViewer, entry: LibraryEntry) -> None:
        """Copy the image ``viewer`` shows (its Ctrl+C), and say there that it is copied,
        or why it is not (not in the main window behind it, of a selection it does not have)."""
        gone = f"The file {entry.path.name} is no longer in {entry.path.parent}, so nothing was copied."
        self._copy([entry], lambda: viewer.show_hint(COPIED), lambda: viewer.show_hint(gone))

    def _copy(
        self,
        selected: list[LibraryEntry],
        copied: Callable[[], None] | None = None,
        none_there: Callable[[], None] | None = None,
    ) -> None:
        """Copy off the GUI thread: a worker finds which files are still on disk (a stat
        each: thousands selected, or a slow drive, take a while) and decodes the first."""
        if not selected:
            return

        def look() -> tuple[list[LibraryEntry], QImage | None, list[QUrl], bytes | None]:
            on_disk = [e for e in selected if e.path.exists()]
            image: QImage | None = None
            png: bytes | None = None
            if on_disk:
                with contextlib.suppress(Exception):  # an image that cannot be decoded is copied as a file
                    image = decode_image_file(on_disk[0].path)
                    png = png_with_record(on_disk[0], image)  # the picture pasted keeps its parameters
            return on_disk, image, file_urls(on_disk), png

        def done(found: tuple[list[LibraryEntry], QImage | None, list[QUrl], bytes | None]) -> None:
            entries, image, urls, png = found
            if not entries:
                if none_there is not None:
                    none_there()
                else:
                    self.show_message("The selected images are not on disk any more, so nothing was copied.")
                return
            copy_entries(entries, urls, image, png)
            self.status.emit(f"Copied {counted(len(entries), 'image')}.")
            if copied is not None:
                copied()

        self.runner.submit(look, done, self._library_failed)

    def reveal_selected(self) -> None:
        entry = self.current_entry()
        if entry is not None and not reveal_in_file_manager(entry.path):
            self.show_message(f"The file manager could not be opened; the image is in {entry.path.parent}.")

    # --- favourite, delete, undo -----------------------------------------------------------------

    def toggle_favourite(self) -> None:
        def toggle(entries: list[LibraryEntry]) -> None:
            if entries:
                self.set_favourite(entries, not all(self._favourites.is_favourite(e) for e in entries))

        self.with_selected_entries(toggle)

    def set_favourite_of(self, entry: LibraryEntry, favourite: bool) -> None:
        """Mark or unmark one image, whether or not it is selected (the viewer's F)."""
        self.set_favourite([entry], favourite)

    def set_favourite(self, entries: list[LibraryEntry], favourite: bool) -> None:
        ids = {e.id for e in entries}
        self._favourites.ask(ids, favourite)

        def done(written: dict[bool, set[int]]) -> None:
            self._favourites.settled(ids)
            favourites_only = self.model.filters.get("favourites_only")
            for value, chosen in written.items():
                if not chosen:
                    continue
                if not value and favourites_only:
                    rows = [r for r in (self.model.row_of(i) for i in chosen) if r is not None]
                    self.model.remove_ids(chosen)
                    if rows and self.model.rowCount() and not self.view.selectionModel().hasSelection():
                        # As after a delete: the image that takes the place of the first gone.
                        self.view.setCurrentIndex(self.model.index(min(min(rows), self.model.rowCount() - 1)))
                elif value and favourites_only and any(self.model.row_of(i) is None for i in chosen):
                    self.model.refresh()  # marked again after it left these rows: it comes back
                else:
                    self.model.reload_entries(chosen)
                self.favouritesChanged.emit(chosen, value)
            if favourites_only:
                self.countsChanged.emit()  # "N of M" over the gallery, as the rows changed

        def failed(error: BaseException) -> None:
            self._favourites.settled(ids)
            self._library_failed(error)

        # Written off the GUI thread: another process holding the index must not freeze it.
        self.runner.submit(lambda: self._favourites.write(ids, self.library), done, failed)

    def _library_failed(self, error: BaseException) -> None:
        if isinstance(error, LibraryError):
            self.show_message(str(error))
        else:
            self.show_message(f"The library could not be changed ({type(error).__name__}); nothing was lost.")

    def delete_selected(self) -> None:
        """Delete the selection. Many images are read first (off the GUI thread): the delete
        counts as under way from now, for an Undo asked meanwhile."""
        self._deletes_read += 1

        def entries_read(entries: list[LibraryEntry]) -> None:
            self._deletes_read -= 1
            self.delete_entries(entries)
            self._after_delete(undo=False)  # nothing to move after all (already on its way)

        def not_read(error: BaseException) -> None:
            self._deletes_read -= 1
            self._after_delete(undo=False)
            self._library_failed(error)

        self.with_selected_entries(entries_read, not_read)

    def delete_entries(self, entries: list[LibraryEntry]) -> None:
        """Move ``entries`` to the trash (off the GUI thread), with Undo. Those a delete
        under way is already moving are left to it: Delete pressed again before the first
        is done (in the gallery or the viewer) neither says the images could not be moved
        nor puts an empty step on the undo list."""
        entries = [e for e in entries if e.id not in self._being_deleted]
        if not entries:
            return
        ids = {e.id for e in entries}
        self._being_deleted |= ids

        def deleted(batch: TrashBatch | None) -> None:
            self._being_deleted -= ids
            self._deleted(entries, batch)
            self._after_delete(undo=batch is not None and bool(batch.entries))

        def failed(error: BaseException) -> None:
            self._being_deleted -= ids
            self._after_delete(undo=False)  # nothing changed: nothing of it to undo
            self._library_failed(error)

        self.runner.submit(
            lambda: self._favourites.deleting(lambda: self.deleting.trash.delete(entries)), deleted, failed
        )

    def _deleting(self) -> bool:
        return bool(self._being_deleted) or self._deletes_read > 0

    def _after_delete(self, *, undo: bool) -> None:
        """A delete ended (done, failed, or with nothing left to move): an Undo asked while
        deletes were under way runs once none is, ``undo`` when the last made a batch."""
        if self._undo_when_deleted and not self._deleting():
            self._undo_when_deleted = False
            if undo:
                self.undo_delete()

    def _deleted(self, entries: list[LibraryEntry], batch: TrashBatch | None) -> None:
        if batch is None or not batch.entries:
            self.show_message("The selected images could not be moved to the trash.")
            return
        self.deleting.held(batch)
        self._deleted_any = True
        ids = {e.id for e in batch.entries}
        # The place of the first deleted image (where the gallery and the viewer go on
        # from), taken before its row goes: rows have come and gone since the delete was asked.
        rows = [r for r in (self.model.row_of(i) for i in ids) if r is not None]
        viewer_row = self._row_after_removal(ids)
        self.model.deleted(batch.entries)
        if self.model.rowCount() and rows:
            self.view.setCurrentIndex(self.model.index(min(min(rows), self.model.rowCount() - 1)))
        if self.viewer is not None:
            self.viewer.entries_removed(ids, viewer_row)
            if viewer_row is not None:  # the image it showed went: it says where
                them = for_count(len(ids), "it", "them")
                done = _deleted_text(len(batch.entries), len(batch.held), 0).rstrip(".")
                self.viewer.show_hint(f"{done}; Ctrl+Z brings {them} back.")
        text = _deleted_text(len(batch.entries), len(batch.held), len(entries) - len(batch.entries))
        self.show_message(text, "Undo", lambda b=batch: self.undo_delete(b))
        self._delete_said[id(batch)] = text
        while len(self._delete_said) > 20:  # the oldest ones' undo windows have long closed
            del self._delete_said[next(iter(self._delete_said))]
        self.update_enabled()
        self.countsChanged.emit()

    def _row_after_removal(self, ids: set[int]) -> int | None:
        """The row the viewer's image will have once ``ids`` are removed, if it is one of
        them: the row of the image that takes its place (None if it is not among them)."""
        shown = self.viewer.entry if self.viewer is not None else None
        if shown is None or shown.id not in ids:
            return None
        row = self.model.row_of(shown.id)
        if row is None:
            return self.viewer.row if self.viewer is not None else None
        return row - sum(1 for i in ids if (r := self.model.row_of(i)) is not None and r < row)

    def undo_delete(self, batch: TrashBatch | None = None) -> None:
        """Bring back ``batch`` (default: the latest still undoable), off the GUI thread.
        Asked for the latest while a delete is under way (Ctrl+Z pressed just after
        Delete), it is that delete, brought back once it is done: not the one before."""
        if batch is None and self._deleting():
            self._undo_when_deleted = True
            return
        self.runner.submit(lambda: self.deleting.undo(batch), self._undone, self._library_failed)

    def _nothing_to_undo(self) -> str:
        if self._deleted_any:  # their undo windows have closed
            return "There is nothing to undo: deleted images are in the system trash."
        return NOTHING_TO_UNDO

    def _undo_from_viewer(self) -> None:
        """Ctrl+Z in the viewer: the gallery's undo, or why there is none, said there."""
        if self.viewer is not None and not self.deleting.can_undo() and not self._deleting():
            self.viewer.show_hint(self._nothing_to_undo())
            return
        self.undo_delete()

    def _undone(self, batch: TrashBatch | None) -> None:
        if batch is None:
            self.show_message(self._nothing_to_undo())
            return
        said = self._delete_said.pop(id(batch), None)
        if said is not None:  # its Undo is done: the message does not come back offering it
            self.withdraw_message(said)
        self.model.restored(batch.entries)
        with self.view.selecting_anew():
            self.model.refresh()
        self.select_ids(e.id for e in batch.entries)
        n = len(batch.entries)
        self.show_message(f"Brought back {counted(n, 'image')}.")
        if self.viewer is not None:  # the viewer shows what came back, as the gallery selects it
            rows = [r for r in (self.model.row_of(e.id) for e in batch.entries) if r is not None]
            if rows:
                self.viewer.show_row(min(rows))
        self.update_enabled()
        self.countsChanged.emit()

    def shutdown(self) -> None:
        """On exit: deleted images go to the system trash now; nothing is left held."""
        if isinstance(self.runner, BackgroundRunner):
            self.runner.wait(5000)  # a delete or undo under way finishes first
        self.deleting.shutdown()

    # --- compare, view ------------------------------------------------------------------------

    def compare_selected(self) -> None:
        entries = self.selected_entries() if len(self.selected_rows()) == 2 else []
        if len(entries) != 2:
            self.show_message("Select exactly two images to compare them.")
            return
        dialog = CompareDialog(entries[0], entries[1], parent=self.parent_widget)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.destroyed.connect(lambda *_: setattr(self, "compare_dialog", None))
        self.compare_dialog = dialog
        dialog.show()

    def view_selected(self) -> None:
        current = self.view.currentIndex()
        if not current.isValid():
            return
        if self.viewer is not None:
            self.viewer.show_row(current.row())
            self.viewer.raise_()
            self.viewer.activateWindow()
            return
        viewer = ImageViewer(
            self.model.entry_at,
            self.model.rowCount,
            current.row(),
            row_of=self.model.row_of,
            costs_simulated=self.view.costs_simulated,
            lineage=self.lineage_of,
            favourite=self.set_favourite_of,
            narrowed=self.model.narrowed,
            parent=self.parent_widget,
        )
        viewer.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.favouritesChanged.connect(viewer.favourite_changed)
        viewer.relativeRequested.connect(lambda entry: self._open_relative(viewer, entry))
        viewer.rowChanged.connect(self._follow_viewer)
        for changed in (self.model.rowsInserted, self.model.rowsRemoved, self.model.modelReset):
            changed.connect(viewer.rows_changed)
        viewer.deleteRequested.connect(lambda entry: self.delete_entries([entry]))
        viewer.undoRequested.connect(self._undo_from_viewer)
        viewer.copyRequested.connect(lambda entry: self.copy_for(viewer, entry))
        viewer.destroyed.connect(lambda *_: setattr(self, "viewer", None))
        self.viewer = viewer
        viewer.show()

    def _follow_viewer(self, row: int) -> None:
        """The gallery's current image follows the viewer's. One already selected becomes
        current within the selection (undo selects what came back, and the viewer shows
        the first of it); another is selected in its place, as a click would."""
        index = self.model.index(row)
        selection = self.view.selectionModel()
        if selection.isSelected(index):
            selection.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.NoUpdate)
        else:
            self.view.setCurrentIndex(index)

    def lineage_of(self, entry: LibraryEntry) -> tuple[list[Relative], list[Relative]]:
        """What ``entry`` was made from and what was made from it (runs off the GUI thread)."""
        return made_from(self.library, entry), used_in(self.library, entry)

    def _open_relative(self, viewer: ImageViewer, entry: LibraryEntry) -> None:
        row = self.model.row_of(entry.id)
        if row is not None:
            viewer.show_row(row)
        else:
            viewer.show_entry(entry)

    # --- finding and refreshing -----------------------------------------------------------------

    def focus_search(self) -> None:
        self.filter_bar.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter_bar.search.selectAll()

    def refresh(self) -> None:
        """Reconcile the index with the folder (off the GUI thread), then show the result."""
        self.refresh_action.setEnabled(False)

        def failed(error: BaseException) -> None:
            self.refresh_action.setEnabled(True)
            if isinstance(error, LibraryError):
                self.show_message(str(error))
            else:
                reason = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
                self.show_message(f"The library folder could not be read again ({reason}); nothing was changed.")

        def done(report: ReconcileReport) -> None:
            self.refresh_action.setEnabled(True)
            self.model.forget(report.redrawn)
            self.model.refresh()
            self.countsChanged.emit()  # the window's counts, and the gallery's "N of M"
            parts = []
            if report.indexed:
                parts.append(f"{len(report.indexed)} new")
            if report.newly_missing:
                parts.append(f"{len(report.newly_missing)} missing")
            if report.found_again:
                parts.append(f"{len(report.found_again)} back")
            if report.broken:
                parts.append(f"{len(report.broken)} damaged")
            if report.rewritten:
                parts.append(f"{len(report.rewritten)} changed")
            if report.skipped:
                parts.append(f"{len(report.skipped)} left out (a name that cannot be stored)")
            self.status.emit("Gallery refreshed: " + (", ".join(parts) if parts else "nothing changed") + ".")

        self.runner.submit(self.library.reconcile, done, failed)

    def _reveal_nsfw(self, reveal: bool) -> None:
        self.view.reveal_nsfw = reveal


def _deleted_text(removed: int, moved: int, kept: int) -> str:
    """What a delete did, in one sentence: ``removed`` rows left the gallery, ``moved`` of
    them with a file that went to the trash (the others' files were already gone), and
    ``kept`` could not be moved."""
    gone = removed - moved
    if moved:
        text = f"Moved {counted(moved, 'image')} to the trash"
        if gone:
            text += f" and removed {gone} whose {for_count(gone, 'file was', 'files were')} already gone"
    else:
        text = f"Removed {counted(gone, 'image')} whose {for_count(gone, 'file was', 'files were')} already gone"
    if kept:
        text += f"; {kept} could not be moved and {for_count(kept, 'was', 'were')} kept"
    return text + "."

"""What can be done with images in the gallery: reuse their parameters, add them as
references, copy, export, reveal, favourite, delete (with undo), compare, view.

Exporting and deleting with undo are the library's (:mod:`krea_desktop.library.export`,
:mod:`krea_desktop.library.trash`); copying and revealing are plain functions here;
:class:`GalleryActions` puts them all behind actions for the menu, the toolbar, the
context menu and shortcuts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QMimeData, QObject, QPoint, QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QImage, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu, QToolBar, QToolButton, QWidget

from krea_desktop.api import spec
from krea_desktop.api.record import GenerationRecord
from krea_desktop.config import EXPORT_FOLDER, THUMB_SIDE
from krea_desktop.library import metadata
from krea_desktop.library.export import ExportError, export_image, export_suffix
from krea_desktop.library.recall import entry_for_file, record_of, reference_sources
from krea_desktop.library.store import Library, LibraryEntry, ReconcileReport
from krea_desktop.library.trash import PendingTrash, TrashBatch
from krea_desktop.ui.background import BackgroundRunner, Runner
from krea_desktop.ui.compare import CompareDialog
from krea_desktop.ui.filter_bar import GalleryFilterBar
from krea_desktop.ui.gallery import GalleryModel, GalleryView
from krea_desktop.ui.mime import LIBRARY_IDS_MIME, encode_library_ids
from krea_desktop.ui.prompt_panel import PromptPanel
from krea_desktop.ui.ratio_bar import RatioBar
from krea_desktop.ui.reference_tray import ReferenceTray
from krea_desktop.ui.settings import QtSettingsStore
from krea_desktop.ui.viewer import ImageViewer, decode_image_file

TOWARD = 0.7
AWAY = -0.7
UNDO_WINDOW_MS = 60_000
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif"}

ShowMessage = Callable[..., None]


# --- copy, reveal ---------------------------------------------------------------------------


def copy_entries(entries: list[LibraryEntry], image: QImage | None = None) -> bool:
    """Put the images on the clipboard: library ids and file URLs for all, and ``image``
    (the first one's pixels, decoded by the caller) when given. False when none is on disk."""
    entries = [e for e in entries if e.path.exists()]
    if not entries:
        return False
    mime = QMimeData()  # a plain one: the clipboard may outlive every Python object
    mime.setData(LIBRARY_IDS_MIME, QByteArray(encode_library_ids([e.id for e in entries])))
    mime.setUrls([QUrl.fromLocalFile(str(e.path)) for e in entries])
    if image is not None and not image.isNull():
        mime.setImageData(image)
    QGuiApplication.clipboard().setMimeData(mime)
    return True


def open_url(url: QUrl) -> bool:
    return bool(QDesktopServices.openUrl(url))


def reveal_in_file_manager(path: Path) -> bool:
    """Open the folder holding ``path`` in the file manager (selecting a file needs
    desktop-specific calls; the folder opens everywhere)."""
    return open_url(QUrl.fromLocalFile(str(path.parent)))


# --- the actions ----------------------------------------------------------------------------


def _action(parent: QObject, text: str, tip: str, slot: Callable[[], Any], *shortcuts: str) -> QAction:
    action = QAction(text, parent)
    action.setToolTip(tip)
    action.setStatusTip(tip)
    if shortcuts:
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
    action.triggered.connect(lambda _checked=False: slot())
    return action


class GalleryActions(QObject):
    """The gallery's actions, the filter bar's effect on the model, and the viewer,
    compare and export dialogs, wired to the window's prompt panel, ratio bar and tray."""

    countsChanged = Signal()  # images were deleted, restored or found
    status = Signal(str)  # a passing note for the status bar

    def __init__(
        self,
        *,
        view: GalleryView,
        model: GalleryModel,
        library: Library,
        prompt_panel: PromptPanel,
        ratio_bar: RatioBar,
        tray: ReferenceTray,
        filter_bar: GalleryFilterBar,
        settings: QSettings,
        show_message: ShowMessage,
        parent_widget: QWidget,
        runner: Runner | None = None,
    ) -> None:
        super().__init__(parent_widget)
        self.view, self.model, self.library = view, model, library
        self.prompt_panel, self.ratio_bar, self.tray = prompt_panel, ratio_bar, tray
        self.filter_bar = filter_bar
        self.settings = settings
        self.show_message = show_message
        self.parent_widget = parent_widget
        self.runner: Runner = runner if runner is not None else BackgroundRunner(parent=self)
        self.trash = PendingTrash(library)
        self.viewer: ImageViewer | None = None
        self.file_viewer: ImageViewer | None = None  # images opened with the app, from outside the library
        self.compare_dialog: CompareDialog | None = None
        self._undo_timers: dict[int, QTimer] = {}
        self.last_export_dir = QtSettingsStore(settings).get(EXPORT_FOLDER) or str(Path.home())
        self._build_actions()
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.customContextMenuRequested.connect(self._context_menu)
        view.viewRequested.connect(self.view_selected)
        view.thumbSideChanged.connect(self._thumb_side_changed)
        filter_bar.thumbSideChanged.connect(view.setThumbSide)
        filter_bar.filtersChanged.connect(self.apply_filters)
        view.selectionModel().selectionChanged.connect(lambda *_: self.update_enabled())
        model.modelReset.connect(self.update_enabled)
        model.rowsRemoved.connect(lambda *_: self.update_enabled())
        side = QtSettingsStore(settings).get(THUMB_SIDE)
        if side is not None:
            view.setThumbSide(side)
        filter_bar.set_thumb_side(view.thumb_side)
        self.update_enabled()
        QTimer.singleShot(0, self._flush_leftovers)

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
            self.use_all_parameters,
        )
        self.use_prompt_action = a(self, "Use &prompt", "Put this image's prompt in the prompt box", self.use_prompt)
        self.use_seed_action = a(self, "Use &seed", "Use this image's seed for the next generation", self.use_seed)
        self.toward_action = a(
            self,
            "Add as reference, &toward (+0.7)",
            "Pull the next results toward the selected images",
            lambda: self.add_references(TOWARD),
        )
        self.away_action = a(
            self,
            "Add as reference, a&way (−0.7)",
            "Push the next results away from the selected images",
            lambda: self.add_references(AWAY),
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
            self.export_selected,
            "Ctrl+Shift+E",
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
        # Keys that mean something else in text fields act only while the gallery has focus.
        for action in (self.view_action, self.copy_action, self.favourite_action, self.delete_action):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.view.addAction(action)
        self.selection_actions = [
            self.view_action,
            self.use_all_action,
            self.use_prompt_action,
            self.use_seed_action,
            self.toward_action,
            self.away_action,
            self.copy_action,
            self.export_action,
            self.reveal_action,
            self.favourite_action,
            self.delete_action,
        ]

    def window_actions(self) -> list[QAction]:
        """Actions whose shortcuts work anywhere in the window."""
        return [self.undo_action, self.refresh_action, self.focus_search_action]

    def fill_menu(self, menu: QMenu) -> None:
        for action in (self.view_action, self.compare_action):
            menu.addAction(action)
        menu.addSeparator()
        for action in (self.use_all_action, self.use_prompt_action, self.use_seed_action):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.toward_action)
        menu.addAction(self.away_action)
        menu.addSeparator()
        for action in (self.copy_action, self.export_action, self.reveal_action):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.favourite_action)
        menu.addAction(self.delete_action)
        menu.addAction(self.undo_action)

    def make_toolbar(self, parent: QWidget) -> QToolBar:
        bar = QToolBar("Gallery", parent)
        bar.setObjectName("galleryToolbar")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for action in (
            self.view_action,
            self.compare_action,
            self.use_all_action,
            self.toward_action,
            self.away_action,
            self.favourite_action,
            self.delete_action,
            self.undo_action,
            self.export_action,
            self.refresh_action,
            self.reveal_nsfw_action,
        ):
            bar.addAction(action)
        short = {
            self.toward_action: "Ref +0.7",
            self.away_action: "Ref −0.7",
            self.use_all_action: "Use all",
            self.export_action: "Export…",
            self.refresh_action: "Refresh",
            self.reveal_nsfw_action: "NSFW",
            self.undo_action: "Undo",
            self.compare_action: "Compare",
        }
        for action, text in short.items():
            button = bar.widgetForAction(action)
            if isinstance(button, QToolButton):
                button.setText(text)
                button.setToolTip(action.toolTip())
        return bar

    def _context_menu(self, pos: QPoint) -> None:
        index = self.view.indexAt(pos)
        if index.isValid() and not self.view.selectionModel().isSelected(index):
            self.view.setCurrentIndex(index)
        menu = QMenu(self.view)
        self.fill_menu(menu)
        menu.addSeparator()
        menu.addAction(self.refresh_action)
        menu.popup(self.view.viewport().mapToGlobal(pos))

    def update_enabled(self) -> None:
        n = len(self.selected_rows())
        for action in self.selection_actions:
            action.setEnabled(n > 0)
        self.compare_action.setEnabled(n == 2)
        self.undo_action.setEnabled(bool(self.trash.batches))

    # --- selection ---------------------------------------------------------------------------

    def selected_rows(self) -> list[int]:
        rows = self.view.selected_rows()
        if not rows:
            current = self.view.currentIndex()
            if current.isValid() and self.view.selectionModel().isSelected(current):
                rows = [current.row()]
        return rows

    def selected_entries(self) -> list[LibraryEntry]:
        return [e for e in (self.model.entry_at(r) for r in self.selected_rows()) if e is not None]

    def current_entry(self) -> LibraryEntry | None:
        current = self.view.currentIndex()
        rows = self.selected_rows()
        if current.isValid() and current.row() in rows:
            return self.model.entry_at(current.row())
        return self.model.entry_at(rows[0]) if rows else None

    def select_ids(self, ids: Iterable[int]) -> None:
        """Select these images (tests and restoring a selection after undo)."""
        selection = self.view.selectionModel()
        selection.clearSelection()
        first = True
        for entry_id in ids:
            row = self.model.row_of(entry_id)
            if row is None:
                continue
            index = self.model.index(row)
            flags = selection.SelectionFlag.Select
            if first:
                selection.setCurrentIndex(index, flags)
                first = False
            else:
                selection.select(index, flags)

    # --- reusing parameters ------------------------------------------------------------------

    def use_all_parameters(self) -> None:
        entry = self.current_entry()
        if entry is not None:
            self.apply_record(record_of(entry), source=entry.path.name)

    def apply_record(self, record: GenerationRecord, source: str = "the image") -> None:
        """Set every control from ``record``: prompt panel, ratio, and references whose
        files are still here (the tray is replaced when the record lists references)."""
        if record.is_empty:
            self.show_message(f"No parameters were found in {source}.")
            return
        self.prompt_panel.apply_record(record)
        if record.ratio is not None:
            self.ratio_bar.setRatio(record.ratio)
        found, lost = reference_sources(record)
        if record.references:
            self.tray.clear()
            for path, strength in found[: spec.MAX_REFERENCES]:
                self.tray.add_reference(path, strength)
        text = f"Parameters restored from {source}."
        if lost:
            text += f" {lost} of {len(record.references)} references are no longer on this computer."
        self.show_message(text)

    def use_prompt(self) -> None:
        entry = self.current_entry()
        if entry is not None:
            self.prompt_panel.setPrompt(entry.prompt)

    def use_seed(self) -> None:
        entry = self.current_entry()
        if entry is None:
            return
        if entry.seed is None:
            self.show_message("This image has no recorded seed.")
        else:
            self.prompt_panel.setSeed(entry.seed)

    def add_references(self, strength: float) -> None:
        entries = [e for e in self.selected_entries() if e.path.exists()]
        if not entries:
            self.show_message("The selected images are not on disk any more, so they cannot be references.")
            return
        room = self.tray.room()
        if room <= 0:
            self.show_message(f"The tray is full: it holds at most {spec.MAX_REFERENCES} references.")
            return
        for entry in entries[:room]:
            self.tray.add_reference(entry.path, strength)
        if len(entries) > room:
            self.show_message(f"Only {room} of {len(entries)} images were added: the tray holds {spec.MAX_REFERENCES}.")

    # --- copy, export, reveal -----------------------------------------------------------------

    def copy_selected(self) -> None:
        """Copy off the GUI thread: the first image is decoded by a worker, then copied."""
        entries = [e for e in self.selected_entries() if e.path.exists()]
        if not entries:
            self.show_message("The selected images are not on disk any more, so nothing was copied.")
            return
        first = entries[0].path

        def done(image: QImage | None) -> None:
            copy_entries(entries, image)
            n = len(entries)
            self.status.emit(f"Copied {n} image{'s' if n != 1 else ''}.")

        # An image that cannot be decoded is still copied as a file.
        self.runner.submit(lambda: decode_image_file(first), done, lambda _error: done(None))

    def export_selected(self) -> None:
        entries = self.selected_entries()
        if not entries:
            return
        filters = "PNG image (*.png);;JPEG image (*.jpg *.jpeg);;WEBP image (*.webp)"
        if len(entries) == 1:
            entry = entries[0]
            suggested = str(Path(self.last_export_dir) / f"{entry.image_uuid}.png")
            path, chosen = QFileDialog.getSaveFileName(self.parent_widget, "Export image", suggested, filters)
            if not path:
                return
            fmt = _format_for(path, chosen)
            targets = [(entry, Path(path))]
        else:
            folder = QFileDialog.getExistingDirectory(self.parent_widget, "Export images to", self.last_export_dir)
            if not folder:
                return
            fmt = "PNG"
            targets = [(e, Path(folder) / f"{e.image_uuid}.png") for e in entries]
        self.export_to(targets, fmt)

    def export_to(self, targets: list[tuple[LibraryEntry, Path]], fmt: str) -> None:
        """Export off the GUI thread; says when done or what failed."""
        if not targets:
            return
        self.last_export_dir = str(targets[0][1].parent)
        QtSettingsStore(self.settings).set(EXPORT_FOLDER, self.last_export_dir)

        def work() -> list[str]:
            problems = []
            for entry, target in targets:
                try:
                    suffix = export_suffix(fmt)
                    if target.suffix.lower() not in (suffix, ".jpeg" if suffix == ".jpg" else suffix):
                        target = target.with_suffix(suffix)
                    export_image(entry, target, fmt)
                except ExportError as exc:
                    problems.append(str(exc))
            return problems

        def done(problems: list[str]) -> None:
            if problems:
                self.show_message(problems[0] + (f" ({len(problems) - 1} more failed.)" if len(problems) > 1 else ""))
            else:
                self.show_message(f"Exported {len(targets)} image(s) to {targets[0][1].parent}.")

        self.runner.submit(work, done, lambda error: self.show_message(f"Exporting failed: {error}"))

    def reveal_selected(self) -> None:
        entry = self.current_entry()
        if entry is not None and not reveal_in_file_manager(entry.path):
            self.show_message(f"The file manager could not be opened; the image is in {entry.path.parent}.")

    # --- favourite, delete, undo -----------------------------------------------------------------

    def toggle_favourite(self) -> None:
        entries = self.selected_entries()
        if not entries:
            return
        favourite = not all(e.favourite for e in entries)
        ids = {e.id for e in entries}
        self.library.set_favourite(ids, favourite)
        if not favourite and self.model.filters.get("favourites_only"):
            self.model.remove_ids(ids)
        else:
            self.model.reload_entries(ids)

    def delete_selected(self) -> None:
        entries = self.selected_entries()
        if not entries:
            return
        next_row = min(self.selected_rows())
        batch = self.trash.delete(entries)
        if batch is None or not batch.entries:
            self.show_message("The selected images could not be moved to the trash.")
            return
        self.model.remove_ids({e.id for e in batch.entries})
        if self.model.rowCount():
            self.view.setCurrentIndex(self.model.index(min(next_row, self.model.rowCount() - 1)))
        n = len(batch.entries)
        skipped = len(entries) - n
        text = f"Moved {n} image{'s' if n != 1 else ''} to the trash."
        if skipped:
            text += f" {skipped} could not be moved and {'was' if skipped == 1 else 'were'} kept."
        self.show_message(text, "Undo", lambda b=batch: self.undo_delete(b))
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(UNDO_WINDOW_MS)
        timer.timeout.connect(lambda b=batch: self._undo_window_closed(b))
        timer.start()
        self._undo_timers[id(batch)] = timer
        self.update_enabled()
        self.countsChanged.emit()

    def undo_delete(self, batch: TrashBatch | None = None) -> None:
        """Bring back ``batch`` (default: the latest still undoable)."""
        batch = self.trash.undo(batch)
        if batch is None:
            self.show_message("There is nothing to undo: deleted images are in the system trash.")
            return
        timer = self._undo_timers.pop(id(batch), None)
        if timer is not None:
            timer.stop()
        self.model.refresh()
        self.select_ids(e.id for e in batch.entries)
        n = len(batch.entries)
        self.show_message(f"Brought back {n} image{'s' if n != 1 else ''}.")
        self.update_enabled()
        self.countsChanged.emit()

    def _undo_window_closed(self, batch: TrashBatch) -> None:
        self._undo_timers.pop(id(batch), None)
        if not self.trash.release(batch):
            return  # undone meanwhile
        self.update_enabled()
        self.runner.submit(lambda: self.trash.flush(batch), self._report_trash)

    def _report_trash(self, failed: list[str]) -> None:
        if failed:
            self.show_message(f"The system trash refused {len(failed)} file(s); they were deleted instead.")

    def _flush_leftovers(self) -> None:
        self.runner.submit(self.trash.flush_leftovers, self._report_trash)

    def shutdown(self) -> None:
        """On exit: deleted images go to the system trash now; nothing is left held."""
        for timer in self._undo_timers.values():
            timer.stop()
        self._undo_timers.clear()
        self.trash.flush()
        if isinstance(self.runner, BackgroundRunner):
            self.runner.wait(5000)

    # --- compare, view ------------------------------------------------------------------------

    def compare_selected(self) -> None:
        entries = self.selected_entries()
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
        viewer = ImageViewer(self.model.entry_at, self.model.rowCount, current.row(), parent=self.parent_widget)
        viewer.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        viewer.rowChanged.connect(lambda row: self.view.setCurrentIndex(self.model.index(row)))
        viewer.destroyed.connect(lambda *_: setattr(self, "viewer", None))
        self.viewer = viewer
        viewer.show()

    # --- dropped files ----------------------------------------------------------------------------

    def handle_drop(self, mime: QMimeData) -> bool:
        """A drop on the window (outside the tray): offer to restore the parameters an image
        file carries, or to add images without parameters as references."""
        if mime.hasFormat(LIBRARY_IDS_MIME):
            return False  # the gallery's own images: their actions are in the menu
        files = [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []
        if self.offer_files(files):
            return True
        if mime.hasImage():
            image = mime.imageData()
            if isinstance(image, QImage) and not image.isNull():
                kept = QImage(image)  # the drop's data goes away when the drop ends
                self.show_message(
                    "The dropped image carries no parameters.", "Add as reference", lambda: self.tray.add_image(kept)
                )
                return True
        return False

    def offer_files(self, paths: Iterable[Path], *, show: bool = False) -> bool:
        """Read the records of image files (off the GUI thread), then offer to restore the
        parameters of the first that has them, or to add them as references. With ``show``
        (files opened with the app), they are also shown in the viewer with what they carry."""
        files = [Path(f) for f in paths if Path(f).suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            return False

        def done(results: list[tuple[Path, GenerationRecord | None]]) -> None:
            self._dropped_files_read(results)
            if show and results:
                self.show_files([(f, r) for f, r in results if f.is_file()])

        # read_record never raises: a file that cannot be read has no record.
        self.runner.submit(lambda: [(f, metadata.read_record(f)) for f in files], done)
        return True

    def show_files(self, files: list[tuple[Path, GenerationRecord | None]]) -> None:
        """Image files from outside the library, in the viewer with their recalled parameters."""
        entries = [entry_for_file(path, record) for path, record in files]
        if not entries:
            return
        viewer = ImageViewer(
            lambda row: entries[row] if 0 <= row < len(entries) else None,
            lambda: len(entries),
            0,
            parent=self.parent_widget,
        )
        viewer.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.file_viewer = viewer
        viewer.show()

    def _dropped_files_read(self, results: list[tuple[Path, GenerationRecord | None]]) -> None:
        if not results:
            return
        with_record = [(f, r) for f, r in results if r is not None and not r.is_empty]
        without = [f for f, r in results if (r is None or r.is_empty) and f.is_file()]
        if with_record:
            path, record = with_record[0]
            prompt = record.prompt
            summary = f": “{prompt[:60]}{'…' if len(prompt) > 60 else ''}”" if prompt else ""
            self.show_message(
                f"{path.name} carries the parameters that made it{summary}.",
                "Restore parameters",
                lambda: self.apply_record(record, path.name),
            )
        elif without:
            names = without[0].name if len(without) == 1 else f"{len(without)} images"
            self.show_message(
                f"{names} carr{'ies' if len(without) == 1 else 'y'} no parameters.",
                "Add as reference",
                lambda: [self.tray.add_reference(f) for f in without[: max(0, self.tray.room())]],
            )

    # --- finding and refreshing -----------------------------------------------------------------

    def apply_filters(self, filters: dict[str, Any]) -> None:
        self.model.refresh(**filters)
        self.filter_bar.set_counts(self.model.rowCount(), self.library.count())

    def focus_search(self) -> None:
        self.filter_bar.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter_bar.search.selectAll()

    def refresh(self) -> None:
        """Reconcile the index with the folder (off the GUI thread), then show the result."""
        self.refresh_action.setEnabled(False)

        def failed(error: BaseException) -> None:
            self.refresh_action.setEnabled(True)
            self.show_message(f"The library folder could not be read again: {error}")

        def done(report: ReconcileReport) -> None:
            self.refresh_action.setEnabled(True)
            changed = set(report.newly_missing + report.found_again + report.broken)
            self.model.forget(changed)
            self.model.refresh()
            self.filter_bar.set_counts(self.model.rowCount(), self.library.count())
            self.countsChanged.emit()
            parts = []
            if report.indexed:
                parts.append(f"{len(report.indexed)} new")
            if report.newly_missing:
                parts.append(f"{len(report.newly_missing)} missing")
            if report.found_again:
                parts.append(f"{len(report.found_again)} back")
            if report.broken:
                parts.append(f"{len(report.broken)} damaged")
            self.status.emit("Gallery refreshed: " + (", ".join(parts) if parts else "nothing changed") + ".")

        self.runner.submit(self.library.reconcile, done, failed)

    def _reveal_nsfw(self, reveal: bool) -> None:
        self.view.reveal_nsfw = reveal

    def _thumb_side_changed(self, side: int) -> None:
        self.filter_bar.set_thumb_side(side)
        QtSettingsStore(self.settings).set(THUMB_SIDE, side)


def _format_for(path: str, chosen_filter: str) -> str:
    suffix = Path(path).suffix.lower()
    by_suffix = {".png": "PNG", ".jpg": "JPG", ".jpeg": "JPG", ".webp": "WEBP"}
    if suffix in by_suffix:
        return by_suffix[suffix]
    if "JPEG" in chosen_filter:
        return "JPG"
    if "WEBP" in chosen_filter:
        return "WEBP"
    return "PNG"

"""The window's sweeps: planning one from the request as composed, running it, and the
contact sheets open on screen (new ones and those reopened from the library)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QIcon, QImage
from PySide6.QtWidgets import QMenu

from krea_desktop.api.record import SweepTag
from krea_desktop.api.request import GenerationRequest
from krea_desktop.library.sheet import sheet_cells_of, sheet_reference_names_of
from krea_desktop.library.store import LibraryEntry
from krea_desktop.models.sweep import SweepPlan
from krea_desktop.ui.sweep.dialog import SweepDialog
from krea_desktop.ui.sweep.runner import SweepRun
from krea_desktop.ui.sweep.sheet_view import CELL_SIDE, WAITING, ContactSheet
from krea_desktop.ui.viewer.canvas import decode_thumbnail_file
from krea_desktop.wording import counted

if TYPE_CHECKING:
    from krea_desktop.ui.window.main_window import MainWindow


log = logging.getLogger(__name__)


class Sweeps(QObject):
    """Sweeps of one window: ``dialog`` is the plan being made, ``sheets`` the contact
    sheets on screen, ``runs`` the sweeps still sending. ``sheetSaved`` carries a finished
    sweep's sheet, a new library image."""

    sheetSaved = Signal(object)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.dialog: SweepDialog | None = None
        self.sheets: list[ContactSheet] = []
        self.runs: list[SweepRun] = []

    def plan(self, base: GenerationRequest, first_axis: str | None = None) -> SweepDialog:
        """Ask which axes to vary in ``base``; the sweep starts when the plan is confirmed."""
        # Each strength axis is named by its reference as the tray shows it (when ``base``
        # holds the tray's references).
        items = self.window.tray.items()
        same = len(items) == len(base.references)
        references = [(item.source, QIcon(item.thumbnailLabel.pixmap())) for item in items] if same else []
        dialog = SweepDialog(
            base, self.window.unit_cost, first_axis=first_axis, references=references, parent=self.window
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._confirmed(dialog))
        self.dialog = dialog
        dialog.open()
        return dialog

    def _confirmed(self, dialog: SweepDialog) -> None:
        plan = dialog.plan()
        if plan is not None:
            self.window.prompt_panel.addToHistory(plan.base.prompt)
            self.start(plan)

    def start(self, plan: SweepPlan) -> SweepRun:
        """Send ``plan``'s cells and show its contact sheet filling as they arrive."""
        w = self.window
        sheet = self._sheet(plan.tag(), plan.base.size, plan.base.prompt, plan.reference_names)
        run = SweepRun(
            plan,
            client_thread=w.client_thread,
            jobs=w.jobs,
            library=w.library,
            runner=w.gallery_actions.runner,
            sheet=sheet,
            parent=self,
        )
        run.message.connect(lambda text: w.show_message(text, error=True))
        run.serviceMessage.connect(lambda text: w.show_service_message(text, error=True))
        run.notice.connect(w.show_message)
        run.sheetSaved.connect(self.sheetSaved)
        run.finished.connect(lambda _entry: self._ended(run))
        self.runs.append(run)
        sheet.show()
        run.start()
        w.update_cancel_button()
        w.statusBar().showMessage(f"Sweep queued: {counted(plan.task_count, 'task')}.", 4000)
        return run

    def _ended(self, run: SweepRun) -> None:
        if run in self.runs:
            self.runs.remove(run)
        self.window.update_cancel_button()

    def running(self, sweep_id: str) -> SweepRun | None:
        """The sweep ``sweep_id`` if it is still sending."""
        return next((run for run in self.runs if run.plan.tag().id == sweep_id and not run.ended), None)

    def shutdown(self) -> None:
        """The window is closing: each sweep still sending keeps a contact sheet of the
        images that arrived, its other cells marked as not made."""
        for run in list(self.runs):
            try:
                run.end_now("The window was closed before it was made.")
            except Exception:  # the next sweep still gets its sheet, and the window closes
                log.exception("sweep %s could not be ended", run.plan.tag().id)
        self.runs.clear()

    def open_sheet(self, sweep_id: str) -> ContactSheet | None:
        """A saved sweep's contact sheet, rebuilt from the library: its cells' images (their
        thumbnails read on a worker), failed cells as the saved sheet recorded them."""
        w = self.window
        run = self.running(sweep_id)
        if run is not None and run.sheet is not None:  # on the screen already: brought forward
            run.sheet.show()
            run.sheet.raise_()
            run.sheet.activateWindow()
            return run.sheet
        entries = w.library.sweep_entries(sweep_id)
        tagged = [(e, e.record.sweep) for e in entries if e.record.sweep is not None]
        if run is not None:  # still sending, its sheet closed: a new one follows it
            plan = run.plan
            sheet = self._sheet(plan.tag(), plan.base.size, plan.base.prompt, plan.reference_names)
            for entry, tag in tagged:
                if not tag.is_sheet:
                    sheet.set_image(tag.place, entry, None)
                    self._load_thumbnail(sheet, tag.place, entry)
            run.attach(sheet)
            sheet.show()
            return sheet
        if not tagged:
            w.show_message("That sweep's images are no longer in the library.")
            return None
        saved = [e for e, tag in tagged if tag.is_sheet]
        cells = [(e, tag) for e, tag in tagged if not tag.is_sheet]
        size = (cells[0][0].width, cells[0][0].height) if cells else (1024, 1024)
        title = (saved[0] if saved else tagged[0][0]).prompt
        names = sheet_reference_names_of(saved[0].record) if saved else ()
        sheet = self._sheet(tagged[0][1], size, title, names)
        for entry, tag in cells:
            sheet.set_image(tag.place, entry, None)  # shown once its thumbnail is read
            self._load_thumbnail(sheet, tag.place, entry)
        if saved:
            for cell in sheet_cells_of(saved[0].record):
                if cell.error:
                    sheet.set_failed(cell.place, cell.error)
            sheet.set_saved(saved[0])
        for view in sheet.cells.values():
            if view.state == WAITING:
                view.set_failed("Not in the library (deleted, or the sweep was stopped).")
        sheet.show()
        return sheet

    def fill_recent(self, menu: QMenu) -> None:
        """The Recent sweeps menu: the newest fifteen, each reopening its sheet."""
        menu.clear()
        library = self.window.library
        try:
            sweeps = library.sweeps()[:15]
        except Exception:  # a busy or damaged index: the menu says there is nothing to show
            sweeps = []
        if not sweeps:
            menu.addAction("No sweeps yet").setEnabled(False)
            return
        for sweep_id, count, started in sweeps:
            first = library.sweep_entries(sweep_id)[:1]
            prompt = first[0].prompt[:50] if first else sweep_id
            action = menu.addAction(f"{started[:16].replace('T', ' ')} — {prompt} ({count})")
            action.triggered.connect(lambda _checked=False, s=sweep_id: self.open_sheet(s))

    # -- inside --------------------------------------------------------------------------

    def _sheet(
        self, tag: SweepTag, size: tuple[int, int], title: str, reference_names: Sequence[str] = ()
    ) -> ContactSheet:
        w = self.window
        sheet = ContactSheet(tag, size, title, reference_names, parent=w)
        sheet.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        sheet.showInGallery.connect(lambda sweep_id: w.gallery_actions.show_sweep_id(sweep_id, title))
        sheet.openEntry.connect(self._open_entry)
        self.sheets.append(sheet)
        sheet.destroyed.connect(lambda *_: self.sheets.remove(sheet) if sheet in self.sheets else None)
        return sheet

    def _load_thumbnail(self, sheet: ContactSheet, place: tuple[int, ...], entry: LibraryEntry) -> None:
        path = entry.path
        self.window.gallery_actions.runner.submit(
            lambda: decode_thumbnail_file(path, CELL_SIDE * 2),
            lambda image: sheet.set_image(place, entry, image) if sheet in self.sheets else None,
            lambda _error: sheet.set_image(place, entry, QImage()) if sheet in self.sheets else None,
        )

    def _open_entry(self, entry: LibraryEntry, entries: list[LibraryEntry]) -> None:
        from krea_desktop.ui.viewer.viewer import ImageViewer

        w = self.window
        ids = [e.id for e in entries]
        viewer = ImageViewer(
            lambda row: entries[row] if 0 <= row < len(entries) else None,
            lambda: len(entries),
            ids.index(entry.id) if entry.id in ids else 0,
            costs_simulated=w.demo,
            lineage=w.gallery_actions.lineage_of,
            favourite=w.gallery_actions.set_favourite_of,
            parent=w,
        )
        viewer.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        w.gallery_actions.favouritesChanged.connect(viewer.favourite_changed)
        viewer.relativeRequested.connect(viewer.show_entry)
        viewer.copyRequested.connect(lambda shown: w.gallery_actions.copy_for(viewer, shown))
        viewer.show()

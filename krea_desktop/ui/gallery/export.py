"""Exporting gallery images: asking where, then writing copies with their parameters off
the GUI thread (the writing itself is :mod:`krea_desktop.library.export`'s)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QWidget

from krea_desktop.api import spec
from krea_desktop.config import EXPORT_FOLDER
from krea_desktop.library.export import ExportError, export_image, export_suffix
from krea_desktop.library.store import LibraryEntry
from krea_desktop.ui.background import Runner
from krea_desktop.ui.settings import QtSettingsStore
from krea_desktop.wording import counted

ShowMessage = Callable[..., None]


class Exporter:
    """Asks for a file (one image) or a folder (several), remembers the folder chosen, and
    says when the export is done or what failed."""

    def __init__(
        self, *, settings: QSettings, runner: Runner, show_message: ShowMessage, parent_widget: QWidget
    ) -> None:
        self.settings = settings
        self.runner = runner
        self.show_message = show_message
        self.parent_widget = parent_widget
        self.last_export_dir = QtSettingsStore(settings).get(EXPORT_FOLDER) or str(Path.home())

    def export(self, entries: list[LibraryEntry], *, with_parameters: bool = True) -> None:
        """Ask where, then export; ``with_parameters=False`` writes the pixels alone."""
        if not entries:
            return
        filters = "PNG image (*.png);;JPEG image (*.jpg *.jpeg);;WEBP image (*.webp)"
        if len(entries) == 1:
            entry = entries[0]
            suggested = str(Path(self.last_export_dir) / f"{Path(entry.file_name).stem}.png")
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
            targets = [(e, Path(folder) / f"{Path(e.file_name).stem}.png") for e in entries]
        self.export_to(targets, fmt, with_parameters=with_parameters)

    def export_to(self, targets: list[tuple[LibraryEntry, Path]], fmt: str, *, with_parameters: bool = True) -> None:
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
                    export_image(entry, target, fmt, with_parameters=with_parameters)
                except ExportError as exc:
                    problems.append(str(exc))
            return problems

        def done(problems: list[str]) -> None:
            if problems:
                self.show_message(problems[0] + (f" ({len(problems) - 1} more failed.)" if len(problems) > 1 else ""))
            else:
                what = "" if with_parameters else " without their parameters"
                self.show_message(f"Exported {counted(len(targets), 'image')}{what} to {targets[0][1].parent}.")

        self.runner.submit(work, done, lambda error: self.show_message(f"Exporting failed: {error}", error=True))


def _format_for(path: str, chosen_filter: str) -> str:
    """The format a file name says (its suffix), else the one the dialog's filter names."""
    by_suffix = spec.normalize_output_format(Path(path).suffix)
    if by_suffix is not None:
        return by_suffix
    by_filter = spec.normalize_output_format(chosen_filter.split(" ", 1)[0])
    return by_filter or "PNG"

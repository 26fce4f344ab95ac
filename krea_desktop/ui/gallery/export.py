"""Exporting gallery images: asking where (and, for several, in which format: the
:class:`~krea_desktop.ui.gallery.export_dialog.ExportDialog`), then writing copies with
their parameters off the GUI thread (the writing itself is
:mod:`krea_desktop.library.export`'s)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from krea_desktop.api import spec
from krea_desktop.config import EXPORT_FOLDER, EXPORT_FORMAT
from krea_desktop.library.export import ExportError, export_image, export_name, export_suffix, with_export_suffix
from krea_desktop.library.store import LibraryEntry
from krea_desktop.ui.background import Runner
from krea_desktop.ui.settings import QtSettingsStore
from krea_desktop.wording import counted, for_count, shortened

ShowMessage = Callable[..., None]


# An export that takes longer than this says how far it has got, this often, until done.
PROGRESS_EVERY_MS = 1000


@dataclass
class _UnderWay:
    total: int
    folder: Path
    done: int = 0  # counted by the worker as it goes


_FILTERS = {"PNG": "PNG image (*.png)", "JPG": "JPEG image (*.jpg *.jpeg)", "WEBP": "WEBP image (*.webp)"}


class Exporter:
    """Asks for a file (one image) or a folder and a format (several), remembers the folder
    and the format chosen, and says when the export is done or what failed."""

    def __init__(
        self, *, settings: QSettings, runner: Runner, show_message: ShowMessage, parent_widget: QWidget
    ) -> None:
        self.settings = settings
        self.runner = runner
        self.show_message = show_message
        self.parent_widget = parent_widget
        self.last_export_dir = QtSettingsStore(settings).get(EXPORT_FOLDER) or str(Path.home())
        self.last_format = QtSettingsStore(settings).get(EXPORT_FORMAT) or "PNG"
        self._under_way: _UnderWay | None = None

    def export(self, entries: list[LibraryEntry], *, with_parameters: bool = True) -> None:
        """Ask where, then export; ``with_parameters=False`` writes the pixels alone. One
        export at a time: asked again meanwhile, it says how far the first has got (a
        second go at the same images would write a second set of copies beside it)."""
        if not entries:
            return
        if self._under_way is not None:
            self.show_message(f"{_progress(self._under_way)}; export again once it is done.")
            return
        if len(entries) == 1:
            entry = entries[0]
            suggested = str(Path(self.last_export_dir) / f"{export_name(entry)}{export_suffix(self.last_format)}")
            path, chosen = QFileDialog.getSaveFileName(
                self.parent_widget, "Export image", suggested, ";;".join(_FILTERS.values()), _FILTERS[self.last_format]
            )
            if not path:
                return
            fmt = _format_for(path, chosen)
            target = with_export_suffix(Path(path), fmt)
            # The dialog asked about the name typed; a suffix added here makes another one.
            if target != Path(path) and _exists(target) and not self._may_replace(target):
                return
            self.export_to([(entry, target)], fmt, with_parameters=with_parameters)
            return
        from krea_desktop.ui.gallery.export_dialog import ExportDialog

        asked = ExportDialog.ask(
            len(entries),
            self.last_export_dir,
            self.last_format,
            with_parameters=with_parameters,
            parent=self.parent_widget,
        )
        if asked is None:
            return
        folder, fmt = asked
        # Nothing in the folder is replaced: a name already there (or taken by another of
        # these, cat.png beside cat.jpg) gets " (2)" and so on.
        targets = [(e, folder / f"{export_name(e)}{export_suffix(fmt)}") for e in entries]
        self.export_to(targets, fmt, with_parameters=with_parameters, unique=True)

    def _may_replace(self, target: Path) -> bool:
        answer = QMessageBox.question(
            self.parent_widget,
            "Export image",
            f"{shortened(target.name)} already exists in {shortened(str(target.parent))}; replace it?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def export_to(
        self,
        targets: list[tuple[LibraryEntry, Path]],
        fmt: str,
        *,
        with_parameters: bool = True,
        unique: bool = False,
    ) -> None:
        """Export off the GUI thread; says when done or what failed. Each target gets the
        format's suffix if it has another; ``unique``: a file already there is never
        replaced, the copy gets a name of its own."""
        if not targets:
            return
        under_way = self._under_way = _UnderWay(len(targets), targets[0][1].parent)
        ticks = QTimer(self.parent_widget)  # a long export says how far it has got
        ticks.setInterval(PROGRESS_EVERY_MS)
        ticks.timeout.connect(lambda: self.show_message(f"{_progress(under_way)}…"))
        ticks.start()

        def ended() -> None:
            ticks.stop()
            ticks.deleteLater()
            self._under_way = None

        def work() -> tuple[int, list[str]]:
            written, problems = 0, []
            for entry, target in targets:
                try:
                    export_image(
                        entry,
                        with_export_suffix(target, fmt),
                        fmt,
                        with_parameters=with_parameters,
                        unique=unique,
                    )
                    written += 1
                except ExportError as exc:
                    problems.append(str(exc))
                under_way.done += 1
            return written, problems

        def done(result: tuple[int, list[str]]) -> None:
            ended()
            written, problems = result
            folder = targets[0][1].parent
            if written:  # the next export starts where this one went, as it went (not where it could not)
                self.last_export_dir, self.last_format = str(folder), fmt
                QtSettingsStore(self.settings).set(EXPORT_FOLDER, self.last_export_dir)
                QtSettingsStore(self.settings).set(EXPORT_FORMAT, fmt)
            if not problems:
                what = "" if with_parameters else f" without {for_count(written, 'its', 'their')} parameters"
                self.show_message(f"Exported {counted(written, 'image')}{what} to {shortened(str(folder))}.")
            else:
                self.show_message(_failed(problems, written, folder), error=True)

        def failed(error: BaseException) -> None:
            ended()
            self.show_message(f"Exporting failed: {error}", error=True)

        self.runner.submit(work, done, failed)


def _progress(under_way: _UnderWay) -> str:
    return (
        f"Exporting {counted(under_way.total, 'image')} to {shortened(str(under_way.folder))}: {under_way.done:,} done"
    )


def _failed(problems: list[str], written: int, folder: Path) -> str:
    """What an export that failed in part or in whole says, in one sentence."""
    first = problems[0].rstrip(".")
    if len(problems) > 1:
        first = f"{len(problems)} images could not be exported; the first: {first}"
    if not written:
        return f"{first}."
    rest = "the other image is" if written == 1 else f"the other {written:,} images are"
    return f"{first}; {rest} in {shortened(str(folder))}."


def _exists(path: Path) -> bool:
    """Whether ``path`` names a file already; a name the system cannot take (too long, say)
    names none, and the export then says why it could not be written."""
    try:
        return path.exists()
    except OSError:
        return False


def _format_for(path: str, chosen_filter: str) -> str:
    """The format a file name says (its suffix), else the one the dialog's filter names."""
    by_suffix = spec.normalize_output_format(Path(path).suffix)
    if by_suffix is not None:
        return by_suffix
    by_filter = spec.normalize_output_format(chosen_filter.split(" ", 1)[0])
    return by_filter or "PNG"

"""Image files given to the window from outside: dropped on it (outside the tray) or
opened with the app. What they carry can restore the parameters that made them; images
without parameters can become references."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from PySide6.QtCore import QMimeData, QObject, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QWidget

from krea_desktop.api.record import GenerationRecord
from krea_desktop.library import metadata
from krea_desktop.library.recall import entry_for_file
from krea_desktop.ui.background import BackgroundRunner, Runner
from krea_desktop.ui.gallery.recall import Recall
from krea_desktop.ui.mime import LIBRARY_IDS_MIME
from krea_desktop.ui.references.tray import ReferenceTray
from krea_desktop.ui.viewer.viewer import ImageViewer
from krea_desktop.wording import counted, for_count

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif"}

ShowMessage = Callable[..., None]


class FileDrops(QObject):
    """Reads what dropped or opened image files carry (off the GUI thread) and offers, in
    the window's message, to restore their parameters or add them as references."""

    def __init__(
        self,
        *,
        recall: Recall,
        tray: ReferenceTray,
        show_message: ShowMessage,
        parent_widget: QWidget,
        runner: Runner | None = None,
    ) -> None:
        super().__init__(parent_widget)
        self.recall, self.tray = recall, tray
        self.show_message = show_message
        self.parent_widget = parent_widget
        self.runner: Runner = runner if runner is not None else BackgroundRunner(parent=self)
        self.file_viewer: ImageViewer | None = None  # images opened with the app, from outside the library

    def handle_drop(self, mime: QMimeData) -> bool:
        """A drop on the window (outside the tray): offer to restore the parameters an image
        file carries, or to add images without parameters as references."""
        if mime.hasFormat(LIBRARY_IDS_MIME):
            return False  # the gallery's own images: their actions are in the menu
        urls = mime.urls() if mime.hasUrls() else []
        files = [Path(u.toLocalFile()) for u in urls if u.isLocalFile()]
        if self.offer_files(files):
            return True
        if files:
            if len(files) > 1:
                self.show_message(f"None of the {len(files)} dropped items is an image file, so nothing was taken.")
            else:
                what = "a folder" if files[0].is_dir() else "not an image file"
                self.show_message(f"“{files[0].name}” is {what}, so nothing was taken.")
            return True
        web = [u for u in urls if u.scheme() in ("http", "https")]
        if web and not mime.hasImage():
            addresses = QMimeData()  # the drop's data goes away when the drop ends
            addresses.setUrls(web)
            name = web[0].fileName() or web[0].host()
            self.show_message(
                f"“{name}” is an address on the web; as a reference it is downloaded first.",
                "Add as reference",
                lambda: self.tray.handle_mime(addresses),
            )
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
        if show:  # named on the command line: say so of each that is not there to open
            missing = [f for f in files if not f.is_file()]
            if missing:
                first = missing[0]
                why = "does not exist" if not first.exists() else "is not a file"
                more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
                self.show_message(f"“{first.name}” {why}, so it was not opened{more}.")
            files = [f for f in files if f not in missing]
            if not files:
                return True

        def done(results: list[tuple[Path, GenerationRecord | None, tuple[int, int] | None]]) -> None:
            self._files_read([(f, r) for f, r, _size in results])
            if show and results:
                self.show_files([(f, r) for f, r, _size in results if f.is_file()], {f: s for f, _r, s in results})

        # Off the GUI thread: the records, and the pixel size from the header (for files
        # whose record does not say it). Neither raises: a file that cannot be read has neither.
        self.runner.submit(lambda: [(f, metadata.read_record(f), metadata.image_size_of(f)) for f in files], done)
        return True

    def show_files(
        self, files: list[tuple[Path, GenerationRecord | None]], sizes: dict[Path, tuple[int, int] | None] | None = None
    ) -> None:
        """Image files from outside the library, in the viewer with their recalled parameters."""
        entries = [entry_for_file(path, record, (sizes or {}).get(path)) for path, record in files]
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

    def _files_read(self, results: list[tuple[Path, GenerationRecord | None]]) -> None:
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
                lambda: self.recall.apply_record(record, path.name),
            )
        elif without:
            names = without[0].name if len(without) == 1 else counted(len(without), "image")
            self.show_message(
                f"{names} {for_count(len(without), 'carries', 'carry')} no parameters.",
                "Add as reference",
                lambda: self.tray.add_paths(without),  # all, or a sentence saying how many fit
            )
        else:  # gone since the drop, or a folder named like an image
            first = results[0][0]
            why = "no longer exists" if not first.exists() else "is not a file"
            self.show_message(f"“{first.name}” {why}, so nothing was taken.")

    def shutdown(self) -> None:
        """On exit: let files being read finish."""
        if isinstance(self.runner, BackgroundRunner):
            self.runner.wait(5000)

"""Image files given to the window from outside: dropped on it (outside the tray) or
opened with the app. What they carry can restore the parameters that made them; images
without parameters can become references."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from PySide6.QtCore import QMimeData, QObject, Qt, QUrl
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QWidget

from krea_desktop.api.record import GenerationRecord
from krea_desktop.library import metadata
from krea_desktop.library.inputs import header_refusal, is_web_url, looks_like_image_file
from krea_desktop.library.recall import entry_for_file
from krea_desktop.library.store import LibraryEntry
from krea_desktop.ui.background import BackgroundRunner, Runner
from krea_desktop.ui.gallery.desktop import png_with_record, put_on_clipboard
from krea_desktop.ui.gallery.recall import Recall
from krea_desktop.ui.mime import LIBRARY_IDS_MIME
from krea_desktop.ui.references.sources import sources_from_mime
from krea_desktop.ui.references.tray import ReferenceTray
from krea_desktop.ui.viewer.viewer import COPIED, ImageViewer
from krea_desktop.wording import counted, for_count

# Files named like images. Others (no extension, or one not listed) are taken too when
# their first bytes are an image's.
IMAGE_SUFFIXES = {
    ".png",
    ".jpg",
    ".jpeg",
    ".jpe",
    ".jfif",
    ".jif",
    ".webp",
    ".gif",
    ".bmp",
    ".tif",
    ".tiff",
    ".avif",
}

ShowMessage = Callable[..., None]
# What the worker learns of a file: its record, its pixel size from the header, whether it
# begins as an image does, and why the tray would refuse it (None when it would not).
FileFacts = tuple[Path, GenerationRecord | None, tuple[int, int] | None, bool, str | None]


def _facts(path: Path, named_as_image: bool = True) -> FileFacts:
    """Runs on a worker; never raises (a file that cannot be read has no record, no size
    and is no image). A file not named like an image is read no further than its first
    bytes unless they are an image's; one without parameters is judged by its size and
    header as the tray would judge it (no pixel decoded)."""
    image = looks_like_image_file(path)
    if not image and not named_as_image:
        return path, None, None, False, None
    record = metadata.read_record(path)
    refusal = header_refusal(path) if image and (record is None or record.is_empty) else None
    return path, record, metadata.image_size_of(path), image, refusal


def _held(mime: QMimeData) -> QMimeData:
    """A copy of a drop's data, for after the drop has ended (its own goes with it)."""
    held = QMimeData()
    for kind in mime.formats():
        held.setData(kind, mime.data(kind))
    return held


def _copy_file(entry: LibraryEntry, viewer: ImageViewer, runner: Runner) -> None:
    """Put a file from outside the library on the clipboard (``viewer``'s Ctrl+C): as a
    file manager copies one, and the picture shown, as a PNG with what the file carries
    (made off the GUI thread), for programs that paste a picture; said so there. A file
    gone since it was opened is said to be gone, not copied."""
    path = entry.path
    image = viewer.canvas.shown_image()

    def look() -> tuple[bool, bytes | None]:
        if not path.is_file():
            return False, None
        return True, png_with_record(entry, image) if not image.isNull() else None

    def done(found: tuple[bool, bytes | None]) -> None:
        there, png = found
        if not there:
            viewer.show_hint(f"The file {path.name} is no longer in {path.parent}, so nothing was copied.")
            return
        put_on_clipboard([QUrl.fromLocalFile(str(path))], image, png)
        viewer.show_hint(COPIED)

    runner.submit(look, done)


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
        web = [u for u in urls if u.scheme() in ("http", "https")]
        image = mime.imageData() if mime.hasImage() else None
        # The drop's data goes away when the drop ends.
        kept = QImage(image) if isinstance(image, QImage) and not image.isNull() else None
        if not urls and kept is None:
            # Images given otherwise: files or addresses named as text (a path selected in a
            # terminal), image bytes of one type, an <img> in a web page's HTML.
            named = sources_from_mime(mime)
            if named and all(s.kind == "path" for s in named):
                files = [Path(s.value) for s in named]
            elif named and all(s.kind == "url" and is_web_url(str(s.value)) for s in named):
                web = [QUrl(str(s.value)) for s in named]
            elif named:
                held = _held(mime)  # given as data, its parameters are not read: only offered
                self.show_message(
                    "Add the dropped image as a reference?", "Add as reference", lambda: self.tray.handle_mime(held)
                )
                return True
        if self.offer_files(files, web=web, otherwise=lambda: self._no_image_file(files, web, kept)):
            return True
        return self._no_image_file(files, web, kept)

    def _no_image_file(self, files: list[Path], web: list[QUrl], image: QImage | None) -> bool:
        """Say what a drop holding no image file is taken for (the web addresses or the image
        data it holds), or why it is taken for nothing; False when it holds nothing to say of."""
        if files and not web:
            if len(files) > 1:
                self.show_message(f"None of the {len(files)} dropped items is an image file, so nothing was taken.")
            else:
                what = "a folder" if files[0].is_dir() else "not an image file"
                self.show_message(f"“{files[0].name}” is {what}, so nothing was taken.")
            return True
        if web and image is None:
            addresses = QMimeData()
            addresses.setUrls(web)
            name = web[0].fileName() or web[0].host()
            others = ""
            if files:  # none of them an image file
                more = f" (and {len(files) - 1} more)" if len(files) > 1 else ""
                others = f"; “{files[0].name}”{more} is not an image file"
            self.show_message(
                f"“{name}” is an address on the web; as a reference it is downloaded first{others}.",
                "Add as reference",
                lambda: self.tray.handle_mime(addresses),
            )
            return True
        if image is not None:
            self.show_message(
                "The dropped image carries no parameters.", "Add as reference", lambda: self.tray.add_image(image)
            )
            return True
        return False

    def offer_files(
        self,
        paths: Iterable[Path],
        *,
        show: bool = False,
        web: Iterable[QUrl] = (),
        otherwise: Callable[[], object] | None = None,
    ) -> bool:
        """Read the records of image files (off the GUI thread), then offer to restore the
        parameters of the first that has them, or to add them (and the ``web`` addresses
        dropped with them) as references. With ``show`` (files opened with the app), they
        are also shown in the viewer with what they carry.

        Files not named like images are taken when they begin as images do; when none of the
        files is an image after all, ``otherwise`` is called instead of saying so. False
        when no file may be an image (nothing is read)."""
        addresses = [QUrl(u) for u in web]  # the drop's data goes away when the drop ends
        files, unnamed = [], set()
        for f in map(Path, paths):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                files.append(f)
            elif f.is_file():  # one stat: the first bytes are read on the worker
                files.append(f)
                unnamed.add(f)
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

        def done(results: list[FileFacts]) -> None:
            # A file not named like an image that does not begin as one either is no image file.
            images = [facts for facts in results if facts[3] or facts[0] not in unnamed]
            if not images and otherwise is not None:
                otherwise()
                return
            results = images or results
            self._files_read([(f, r, image, why) for f, r, _size, image, why in results], addresses, shown=show)
            if show and results:
                self.show_files(
                    [(f, r) for f, r, _size, _i, _w in results if f.is_file()], {f: s for f, _r, s, _i, _w in results}
                )

        # Off the GUI thread: the records, the pixel size from the header (for files whose
        # record does not say it), whether each begins as an image does, and whether one
        # without parameters would be refused as a reference.
        self.runner.submit(lambda: [_facts(f, f not in unnamed) for f in files], done)
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
        viewer.copyRequested.connect(lambda entry: _copy_file(entry, viewer, self.runner))
        self.file_viewer = viewer
        viewer.show()

    def _files_read(
        self,
        results: list[tuple[Path, GenerationRecord | None, bool, str | None]],
        web: list[QUrl],
        *,
        shown: bool = False,
    ) -> None:
        if not results:
            return
        with_record = [(f, r) for f, r, _image, _why in results if r is not None and not r.is_empty]
        files = [f for f, r, _image, _why in results if (r is None or r.is_empty) and f.is_file()]
        images = {f for f, _r, image, _why in results if image}
        refusals = {f: why for f, _r, image, why in results if image and why}
        without = [f for f in files if f in images and f not in refusals]
        refused = [f for f in files if f in refusals]  # images the tray would not take
        not_images = [f for f in files if f not in images]
        if with_record:
            path, record = with_record[0]
            prompt = record.prompt
            summary = f": “{prompt[:60]}{'…' if len(prompt) > 60 else ''}”" if prompt else ""
            # The other images dropped with it are not taken: said, rather than passed over
            # (files opened with the app are all shown, in the viewer).
            others = [] if shown else [f.name for f, _r in with_record[1:]] + [f.name for f in without]
            others += [u.fileName() or u.host() for u in web]
            if len(others) == 1:
                summary += f"; “{others[0]}” was left aside (drop it on References to use it)"
            elif others:
                left = counted(len(others), "other image")
                summary += f"; {left} were left aside (drop them on References to use them)"
            self.show_message(
                f"{path.name} carries the parameters that made it{summary}.",
                "Restore parameters",
                lambda: self.recall.apply_record(record, path.name),
            )
        elif without or (web and (not_images or refused)):
            parts = []
            if without:
                names = without[0].name if len(without) == 1 else counted(len(without), "image")
                parts.append(f"{names} {for_count(len(without), 'carries', 'carry')} no parameters")
            if web:
                name = web[0].fileName() or web[0].host()
                more = f" (and {len(web) - 1} more)" if len(web) > 1 else ""
                parts.append(f"“{name}”{more} is on the web and is downloaded first as a reference")
            if not_images:
                more = f" (and {len(not_images) - 1} more)" if len(not_images) > 1 else ""
                parts.append(f"“{not_images[0].name}”{more} is not an image Krea Desktop can read")
            if refused and not shown:  # opened to be looked at: the viewer shows each as it is
                more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
                parts.append(f"“{refused[0].name}”{more} cannot be used as a reference and is left out")
            self.show_message(
                "; ".join(parts) + ".",
                "Add as reference",
                lambda: self._add_references(without, web),  # all, or a sentence saying how many fit
            )
        elif refused and shown and not not_images:
            return  # opened to be looked at, not to be used: the viewer shows each as it is
        elif refused and len(refused) + len(not_images) == 1:
            self.show_message(refusals[refused[0]])  # what the tray says of it: damaged, too large...
        elif refused:
            count = len(refused) + len(not_images)
            self.show_message(f"None of the {count} dropped files can be used as a reference, so nothing was taken.")
        elif not_images:
            if len(not_images) == 1:
                self.show_message(
                    f"“{not_images[0].name}” is not an image Krea Desktop can read, so nothing was taken."
                )
            else:
                count = len(not_images)
                self.show_message(
                    f"None of the {count} dropped files is an image Krea Desktop can read, so nothing was taken."
                )
        else:  # gone since the drop, or a folder named like an image
            first = results[0][0]
            why = "no longer exists" if not first.exists() else "is not a file"
            self.show_message(f"“{first.name}” {why}, so nothing was taken.")

    def _add_references(self, files: list[Path], web: list[QUrl]) -> None:
        if not web:
            self.tray.add_paths(files)
            return
        given = QMimeData()
        given.setUrls([QUrl.fromLocalFile(str(f)) for f in files] + web)
        self.tray.handle_mime(given)

    def shutdown(self) -> None:
        """On exit: let files being read finish."""
        if isinstance(self.runner, BackgroundRunner):
            self.runner.wait(5000)

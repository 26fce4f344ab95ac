"""Thumbnails: the cached file beside the library (read, or made on first use) and the
loader that makes them on workers, newest request first.

Thumbnails are decoded as QImage off the GUI thread; the model turns them into QPixmaps.
They are scaled to the cell's size while being read (``QImageReader.setScaledSize``, in
:func:`~krea_desktop.ui.pixels.read_image_file`): ``QImageReader.read`` runs without
holding Python's lock, ``QImage.scaled`` holds it for the whole scaling (about a
millisecond a thumbnail), during which the GUI thread's Python waits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, Signal
from PySide6.QtGui import QImage

from krea_desktop.library.store import Library, LibraryEntry
from krea_desktop.ui.background import lower_priority, post, shared_pool
from krea_desktop.ui.pixels import qimage_of, read_image_file

log = logging.getLogger(__name__)

THUMB_SIZE = 256


def _source_time(source: Path) -> int | None:
    """``source``'s modification time (ns), or None when it cannot be read."""
    try:
        return source.stat().st_mtime_ns
    except OSError:
        return None


def _is_current(cache: Path, source_time: int | None) -> bool:
    """Whether the cached thumbnail ``cache`` is there and no older than its source (an
    image changed in place since, by another program, is shown as it is now). A source
    that cannot be read keeps its thumbnail: a missing image still shows what it was."""
    try:
        cached_time = cache.stat().st_mtime_ns
    except OSError:
        return False
    return source_time is None or cached_time >= source_time


def make_thumbnail(source: Path, cache: Path, size: int = THUMB_SIZE, side: int = 0) -> QImage:
    """Read the cached thumbnail, or make it from ``source`` and cache it (also when the
    source is newer than it). With ``side``, the image comes scaled so that its longer edge
    is ``side`` pixels. Any thread."""
    source_time = _source_time(source)
    if _is_current(cache, source_time):

        def at_side(found: QSize) -> QSize | None:
            if not side or max(found.width(), found.height()) == side:
                return None
            return QSize(*cached_size(found.width(), found.height(), side))

        with contextlib.suppress(OSError):  # made again from the source
            image = read_image_file(cache, at_side)
            if not image.isNull():
                return image
    try:
        image = read_image_file(
            source, lambda full: QSize(*cached_size(full.width(), full.height(), size)), auto_transform=True
        )
    except OSError:
        return QImage()
    if image.isNull():
        image = _larger_than_qt_takes(source, size)
    if image.isNull():
        return image
    try:
        image = store_thumbnail(image, cache)
    except OSError as exc:  # a library on a read-only disk is still shown, each image decoded
        log.info("could not keep the thumbnail %s: %s", cache, exc)
        return _at_side(image, side)
    if source_time is not None:
        # Never older than its source, even one dated ahead of this machine's clock (a
        # file from another computer): it would be made again at every look.
        with contextlib.suppress(OSError):
            if cache.stat().st_mtime_ns < source_time:
                os.utime(cache, ns=(source_time, source_time))
    return _at_side(image, side)  # once per image: later reads scale as they decode


# One picture larger than Qt's reader takes is decoded at a time: each is hundreds of
# megabytes while it is (a photo or a scan put in the images folder by hand).
_LARGE_DECODE = threading.Lock()


def _larger_than_qt_takes(source: Path, size: int) -> QImage:
    """The thumbnail of a picture Qt's reader refused for its size (a PNG of more than
    about 64 megapixels is decoded whole before it is scaled), decoded by Pillow as the
    viewer shows it; a null QImage when the picture is damaged, or too large for Pillow too."""
    from krea_desktop.ui.viewer.canvas import larger_than_qt_takes

    with _LARGE_DECODE:
        image = larger_than_qt_takes(source)
    if image.isNull():
        return image
    fitted = QSize(*cached_size(image.width(), image.height(), size))
    return image.scaled(fitted, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation)


def _at_side(image: QImage, side: int) -> QImage:
    if side and max(image.width(), image.height()) != side:
        size = QSize(*cached_size(image.width(), image.height(), side))
        image = image.scaled(size, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation)
    return image


def cached_size(width: int, height: int, size: int = THUMB_SIZE) -> tuple[int, int]:
    """The pixel size of the cached thumbnail of a ``width`` x ``height`` image: at least a
    pixel across (a 1 x 10,000 strip would be asked for at 0 x 256, of which Qt makes
    nothing, and the gallery showed the image as damaged)."""
    fitted_w, fitted_h = fit_within(width, height, size, size)
    return max(1, fitted_w), max(1, fitted_h)


CHECK_LIGHT, CHECK_DARK = (150, 150, 150), (105, 105, 105)  # the checks' greys
CHECK_SQUARE = 8


def on_checks(image: QImage) -> QImage:
    """``image`` over grey checks, as image editors show what is transparent. A JPEG keeps
    no alpha: made opaque as it was, the transparent parts came out black (a black logo on
    nothing was a black square). Any thread: drawn with Pillow, as a Qt painter's calls
    here would make Qt types of their own on a worker (see background.make_worker_types)."""
    from krea_desktop.pillow import Image

    rgba = image.convertToFormat(QImage.Format.Format_RGBA8888)
    size = (rgba.width(), rgba.height())
    picture = Image.frombuffer(
        "RGBA", size, bytes(rgba.constBits())[: rgba.sizeInBytes()], "raw", "RGBA", rgba.bytesPerLine(), 1
    )
    checks = Image.new("RGBA", size, (*CHECK_LIGHT, 255))
    for top in range(0, size[1], CHECK_SQUARE):
        for left in range((top // CHECK_SQUARE % 2) * CHECK_SQUARE, size[0], 2 * CHECK_SQUARE):
            checks.paste((*CHECK_DARK, 255), (left, top, left + CHECK_SQUARE, top + CHECK_SQUARE))
    return qimage_of(Image.alpha_composite(checks, picture).convert("RGB"))


def store_thumbnail(image: QImage, cache: Path) -> QImage:
    """Write ``image`` (made at :func:`cached_size`) as the cached thumbnail ``cache``, the
    way :func:`make_thumbnail` reads it back; returns the image as written. Any thread."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".jpg", dir=cache.parent)
    os.close(fd)
    if image.hasAlphaChannel():
        image = on_checks(image)
    if image.save(tmp, "JPG", 88):  # type: ignore[call-overload]  # the stubs say bytes; only str works
        os.replace(tmp, cache)
    else:
        os.unlink(tmp)
    return image


class _ThumbWorker(QRunnable):
    """Takes requests from the loader until none is left (newest first)."""

    def __init__(self, loader: ThumbnailLoader) -> None:
        super().__init__()
        self.loader = loader

    def run(self) -> None:
        lower_priority()  # never ahead of the GUI thread for the CPU
        loader = self.loader
        while (job := loader._next_job()) is not None:
            entry_id, entry, side, token = job
            try:
                cache = loader.library.thumb_path(entry.image_uuid, loader.size)
                # At the size it is drawn: painting then copies pixels instead of scaling them.
                image = make_thumbnail(entry.path, cache, loader.size, side=side)
            except Exception:  # a broken file (or an unusable image id) shows as broken, never as a crash
                log.exception("thumbnail of %s failed", entry.file_name)
                image = QImage()
            self.loader._done(entry_id, token, image)


class ThumbnailLoader(QObject):
    """Loads thumbnails on a small pool of workers; the most recent request goes first,
    since it is for the rows on screen now, and requests for rows gone from the screen
    are dropped with :meth:`keep_only` before they are started."""

    loaded = Signal(int, QImage)  # entry id, image (null if the file is broken)

    def __init__(self, library: Library, size: int = THUMB_SIZE, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.size = size
        self._threads = 2  # workers at most; they run on the window's shared pool
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self.display_side = 0  # pixels the thumbnails are delivered at (0: as cached)
        self._queue: OrderedDict[int, tuple[LibraryEntry, int]] = OrderedDict()  # waiting, oldest first
        # Being made: each id's image, and those whose rows went while they were made (the
        # index gives a deleted image's id to the next new one: its result is no longer theirs).
        # Each job has a token. The latest job of each id (its token and image), the jobs
        # under way, and those whose rows went while they ran (the index gives a deleted
        # image's id to the next new one, and a file changed is made again): their results
        # are not delivered.
        self._running: dict[int, tuple[int, str]] = {}
        self._tokens = 0
        self._busy = 0
        self._dropped: set[int] = set()
        self._workers = 0
        self._held = False

    def request(self, entry: LibraryEntry) -> None:
        # The entry is queued as it is: its file's and its thumbnail's paths are worked out
        # only if a worker takes it (a fling asks for every row it passes, and drops them).
        with self._lock:
            running = self._running.get(entry.id)
            if running is not None and running[1] == entry.image_uuid:
                return  # on its way (a job dropped by forget() is no longer among the running)
            self._queue[entry.id] = (entry, self.display_side)
            self._queue.move_to_end(entry.id)
            start = not self._held and self._workers < self._threads
            if start:
                self._workers += 1
        if start:
            shared_pool().start(_ThumbWorker(self))

    @property
    def held(self) -> bool:
        return self._held

    def hold(self) -> None:
        """Start no thumbnail until :meth:`release` (the gallery is being flung past rows
        faster than their thumbnails could be shown): requests wait, the newest first."""
        with self._lock:
            self._held = True

    def release(self, ids: set[int]) -> None:
        """Make the thumbnails of ``ids`` (the rows on screen now) that were asked for while
        held; the rest were for rows long gone."""
        with self._lock:
            self._held = False
            self._drop_all_but(ids)
            starts = max(0, min(self._threads - self._workers, len(self._queue)))
            self._workers += starts
        for _ in range(starts):
            shared_pool().start(_ThumbWorker(self))

    def forget(self, ids: set[int]) -> None:
        """The rows ``ids`` are gone (deleted, or their files changed): their waiting
        requests are dropped, and what is being made for them is not delivered."""
        with self._lock:
            for entry_id in ids:
                self._queue.pop(entry_id, None)
                running = self._running.pop(entry_id, None)
                if running is not None:
                    self._dropped.add(running[0])

    def keep_only(self, ids: set[int]) -> None:
        """Drop pending work for rows no longer on screen."""
        with self._lock:
            self._drop_all_but(ids)

    def _drop_all_but(self, ids: set[int]) -> None:
        """Forget the waiting requests of rows not in ``ids`` (with the lock held)."""
        for entry_id in [i for i in self._queue if i not in ids]:
            del self._queue[entry_id]

    def pending(self) -> int:
        with self._lock:
            return len(self._queue) + self._busy

    def _next_job(self) -> tuple[int, LibraryEntry, int, int] | None:
        with self._lock:
            if not self._queue or self._held:
                self._workers -= 1
                self._idle.notify_all()
                return None
            entry_id, (entry, side) = self._queue.popitem(last=True)
            self._tokens += 1
            self._busy += 1
            self._running[entry_id] = (self._tokens, entry.image_uuid)
            return entry_id, entry, side, self._tokens

    def _done(self, entry_id: int, token: int, image: QImage) -> None:
        with self._lock:
            self._busy -= 1
            running = self._running.get(entry_id)
            if running is not None and running[0] == token:
                del self._running[entry_id]
            if token in self._dropped:
                self._dropped.discard(token)
                return
        post(self, self.loaded.emit, entry_id, image)  # dropped if the gallery has gone

    def wait(self, msecs: int = -1) -> bool:
        """Block until no thumbnail is being made (tests and shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._workers == 0, None if msecs < 0 else msecs / 1000)


def fit_within(w: int, h: int, box_w: int, box_h: int) -> tuple[int, int]:
    """``QSize(w, h).scaled(box_w, box_h, KeepAspectRatio)`` in integers."""
    if w <= 0 or h <= 0:
        return box_w, box_h
    scaled_w = box_h * w // h
    if scaled_w <= box_w:
        return scaled_w, box_h
    return box_w, box_w * h // w

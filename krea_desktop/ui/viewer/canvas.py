"""One image, fitted or at any zoom, and decoding image files for it off the GUI thread.

Full-size images are decoded as QImage on a worker (QImageReader); only the QPixmap is
made on the GUI thread. A file that cannot be read shows a sentence, never an error box.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QImageReader,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPixmap,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

from krea_desktop.ui.pixels import read_image_file

MIN_SCALE = 0.02
MAX_SCALE = 32.0


class ImageUnreadable(Exception):
    """The file is missing or does not decode; the message is for people."""


def _most_pixels() -> float | None:
    """The most pixels Qt's reader decodes (its allocation limit, 256 MB by default, at 4
    bytes a pixel, with room for its own), or None for no limit."""
    limit_mb = QImageReader.allocationLimit()
    return None if limit_mb <= 0 else limit_mb * 1024 * 1024 * 0.95 / 4


def _within(size: QSize, most: float) -> QSize:
    factor = min(1.0, (most / max(1, size.width() * size.height())) ** 0.5)
    return QSize(max(1, int(size.width() * factor)), max(1, int(size.height() * factor)))


def _within_qt_limit(size: QSize) -> QSize | None:
    most = _most_pixels()
    return None if most is None or size.width() * size.height() <= most else _within(size, most)


def larger_than_qt_takes(path: Path) -> QImage:
    """A picture Qt's reader refused for its size (a PNG is decoded whole before it is
    scaled): decoded by Pillow and made as large as Qt takes. A null QImage when the
    picture is not too large for Qt (so damaged), or too large for Pillow too."""
    from krea_desktop.pillow import Image, exif_orientation, in_srgb, open_image, to_rgb, upright
    from krea_desktop.ui.pixels import qimage_of

    most = _most_pixels()
    try:
        with open_image(path) as im:
            if most is None or im.width * im.height <= most:
                return QImage()
            target = _within(QSize(im.width, im.height), most)
            im.draft("RGB", (target.width(), target.height()))  # a JPEG decodes smaller at once
            orientation = exif_orientation(im)
            im.thumbnail((target.width(), target.height()))
            # In its own colours (RGB, grey or CMYK profile), as Qt's reader shows a
            # smaller picture and as a reference is sent; then RGB(A) and upright.
            shown, _converted = in_srgb(im, im.info.get("icc_profile"))
            return qimage_of(upright(to_rgb(shown), orientation))
    except (OSError, ValueError, MemoryError, Image.DecompressionBombError):
        return QImage()


def decode_image_file(path: Path, *, in_library: bool = True) -> QImage:
    """The whole image at full size, or at the largest Qt's reader takes (any thread);
    ``in_library``: the file is one of the library's (its folder is named so when it has
    gone). Raises :class:`ImageUnreadable`."""
    try:
        image = read_image_file(path, _within_qt_limit, auto_transform=True)
    except FileNotFoundError:
        where = "the library folder" if in_library else str(path.parent)
        raise ImageUnreadable(f"The file {path.name} is no longer in {where}.") from None
    except OSError as exc:
        raise ImageUnreadable(f"The file {path.name} could not be read ({exc.strerror or exc}).") from None
    if image.isNull():
        image = larger_than_qt_takes(path)
    if image.isNull():
        raise ImageUnreadable(_why_not_shown(path))
    return image


def full_size_of(path: Path, shown: QImage) -> QSize | None:
    """The picture's own size where ``shown`` is a reduced copy of it (read from the file's
    header; any thread), else None. Its longest side is compared, whichever way the
    picture is turned."""
    from krea_desktop.library.metadata import image_size_of

    size = image_size_of(path)
    if size is None or max(size) <= max(shown.width(), shown.height()) * 1.01:
        return None
    return QSize(*size)


def ends_early(path: Path) -> bool:
    """Whether the JPEG ``path`` stops before its end marker (on a worker thread): Qt decodes
    such a file, its missing part grey. The file's last bytes are read first; where they
    are not its end marker, the whole file (up to :data:`_MOST_READ`): a phone's motion
    photo, or a maker's trailer, follows the picture's end with more data, and only a file
    with no end marker after its picture is cut short. A PNG or a WEBP cut short is not
    decoded at all (the viewer says why)."""
    try:
        with open(path, "rb") as file:
            if file.read(3) != b"\xff\xd8\xff":
                return False
            file.seek(0, 2)
            file.seek(max(0, file.tell() - 1024))
            tail = file.read()
    except OSError:
        return False
    if tail.rstrip(b"\0\r\n ").endswith(b"\xff\xd9"):
        return False
    from krea_desktop.fsutil import read_regular_file
    from krea_desktop.library.metadata import ends_early as data_ends_early

    try:
        data = read_regular_file(path, _MOST_READ)
    except OSError:
        return False
    return len(data) <= _MOST_READ and data_ends_early(data)


_MOST_READ = 256 << 20  # bytes of a JPEG read whole to find its end


def _why_not_shown(path: Path) -> str:
    """Why neither Qt nor Pillow gave a picture: one whose header names more pixels than
    either decodes (a 16,000 x 16,000 PNG of a few hundred kilobytes) is too large, not
    damaged."""
    from krea_desktop.library.metadata import image_size_of

    size = image_size_of(path)
    most = _most_pixels()
    if size is not None and most is not None and size[0] * size[1] > most:
        return f"The file {path.name} is too large to show ({size[0]:,} × {size[1]:,} pixels)."
    return f"The file {path.name} could not be read: it is damaged or not an image."


def decode_thumbnail_file(path: Path, side: int) -> QImage:
    """A small version of an image file, decoded at that size (any thread)."""
    try:
        image = read_image_file(
            path, lambda size: size.scaled(QSize(side, side), Qt.AspectRatioMode.KeepAspectRatio), auto_transform=True
        )
    except OSError:
        image = QImage()
    if image.isNull():
        raise ImageUnreadable(f"{path.name} could not be read.")
    return image


class ImageCanvas(QWidget):
    """One image, fitted to the widget or at any zoom: the wheel zooms about the pointer,
    dragging pans. :attr:`viewChanged` reports the view so another canvas can follow it."""

    viewChanged = Signal(float, float, float, bool)  # zoom (:attr:`zoom`), centre x and y (fractions), fitted

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("imageCanvas")
        self.setMinimumSize(200, 150)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(False)
        self._pixmap: QPixmap | None = None
        self._text = ""
        self._scale = 1.0
        self._reduced = 1.0  # the picture's own size over the copy shown (set_image)
        self._fitted = True
        self._centre = QPointF(0.5, 0.5)  # the image point at the widget's centre, as fractions
        self._drag_from: QPointF | None = None

    # --- contents ---------------------------------------------------------------------

    def set_loading(self, text: str = "Loading…") -> None:
        self._pixmap = None
        self._text = text
        self.update()

    def set_image(self, image: QImage, *, full_size: QSize | None = None) -> None:
        """Show ``image`` (GUI thread: it becomes a QPixmap here), keeping the view mode.
        ``full_size``: the picture's own size where ``image`` is a reduced copy of it (one
        larger than Qt's reader holds): the zoom then speaks of the picture's own pixels,
        and 100 % shows one of them to a screen pixel."""
        self._pixmap = QPixmap.fromImage(image)
        longest = max(image.width(), image.height(), 1)
        self._reduced = max(1.0, max(full_size.width(), full_size.height()) / longest) if full_size else 1.0
        self._text = ""
        if self._fitted:
            self._scale = self._fit_scale()
        self.update()

    def set_error(self, text: str) -> None:
        self._pixmap = None
        self._text = text
        self.update()

    def has_image(self) -> bool:
        return self._pixmap is not None

    def shown_image(self) -> QImage:
        """The picture shown (a null QImage when there is none; GUI thread)."""
        return self._pixmap.toImage() if self._pixmap is not None else QImage()

    def message(self) -> str:
        return self._text

    def image_size(self) -> QSize:
        return self._pixmap.size() if self._pixmap is not None else QSize()

    # --- the view -----------------------------------------------------------------------

    @property
    def scale(self) -> float:
        return self._scale

    @property
    def zoom(self) -> float:
        """The scale of the picture's own pixels on screen (the scale of the copy shown,
        where it is reduced: :meth:`set_image`)."""
        return self._scale / self._reduced

    @property
    def fitted(self) -> bool:
        return self._fitted

    def _fit_scale(self) -> float:
        """The scale that shows the whole image in the canvas, beyond the zoom's own limits
        where it must be (a 60,000 × 100 panorama, an 8 × 8 icon): Fit always fits."""
        if self._pixmap is None or self._pixmap.isNull():
            return 1.0
        w, h = self._pixmap.width(), self._pixmap.height()
        return max(1e-6, min(self.width() / w, self.height() / h))

    def _limited(self, scale: float) -> float:
        """``scale`` within the zoom's limits, which reach to the fitting scale: zooming in
        from a tiny image's fit never makes it smaller, nor zooming out a panorama's larger."""
        fit = self._fit_scale()
        return max(min(MIN_SCALE, fit), min(max(MAX_SCALE, fit), scale))

    def fit(self) -> None:
        self._fitted = True
        self._scale = self._fit_scale()
        self._centre = QPointF(0.5, 0.5)
        self._changed()

    def actual_size(self) -> None:
        """One of the picture's own pixels to a screen pixel."""
        self.set_scale(self._reduced)

    def set_scale(self, scale: float, anchor: QPointF | None = None) -> None:
        """Zoom to ``scale``, keeping the image point under ``anchor`` (widget coordinates) still."""
        if self._pixmap is None:
            return
        scale = self._limited(scale)
        if anchor is not None:
            before = self._image_point(anchor)
            self._scale = scale
            after = self._image_point(anchor)
            w, h = self._pixmap.width(), self._pixmap.height()
            self._centre += QPointF((before.x() - after.x()) / w, (before.y() - after.y()) / h)
        else:
            self._scale = scale
        self._fitted = False
        self._clamp()
        self._changed()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        self.set_scale(self._scale * factor, anchor)

    def pan_by(self, dx: float, dy: float) -> None:
        if self._pixmap is None:
            return
        w, h = self._pixmap.width() * self._scale, self._pixmap.height() * self._scale
        self._centre -= QPointF(dx / w, dy / h)
        self._clamp()
        self._changed()

    def apply_view(self, zoom: float, cx: float, cy: float, fitted: bool) -> None:
        """Follow another canvas's view (the same relative place, the same zoom of the
        pictures' own pixels, whichever of them is shown from a reduced copy)."""
        scale = zoom * self._reduced
        if fitted:
            self._fitted = True
            self._scale = self._fit_scale()
            self._centre = QPointF(0.5, 0.5)
        else:
            self._fitted = False
            self._scale = self._limited(scale)
            self._centre = QPointF(cx, cy)
            self._clamp()
        self.update()

    def centre(self) -> QPointF:
        return QPointF(self._centre)

    def _image_point(self, widget_point: QPointF) -> QPointF:
        assert self._pixmap is not None
        w, h = self._pixmap.width(), self._pixmap.height()
        cx, cy = self._centre.x() * w, self._centre.y() * h
        return QPointF(
            cx + (widget_point.x() - self.width() / 2) / self._scale,
            cy + (widget_point.y() - self.height() / 2) / self._scale,
        )

    def _clamp(self) -> None:
        """Keep the image's centre point inside the image, so it never pans away entirely."""
        self._centre = QPointF(min(1.0, max(0.0, self._centre.x())), min(1.0, max(0.0, self._centre.y())))

    def _changed(self) -> None:
        self.update()
        self.viewChanged.emit(self.zoom, self._centre.x(), self._centre.y(), self._fitted)

    def target_rect(self) -> QRectF:
        if self._pixmap is None:
            return QRectF()
        w, h = self._pixmap.width() * self._scale, self._pixmap.height() * self._scale
        x = self.width() / 2 - self._centre.x() * w
        y = self.height() / 2 - self._centre.y() * h
        if self._fitted:
            x, y = (self.width() - w) / 2, (self.height() - h) / 2
        return QRectF(x, y, w, h)

    # --- events -------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(24, 24, 27))
        if self._pixmap is not None:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._scale < 2.0)
            p.drawPixmap(self.target_rect(), self._pixmap, QRectF(self._pixmap.rect()))
        elif self._text:
            p.setPen(QColor(200, 200, 205))
            p.drawText(
                self.rect().adjusted(20, 20, -20, -20),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self._text,
            )
        p.end()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fitted:
            scale = self._fit_scale()
            if scale != self._scale:
                self._scale = scale
                self._changed()  # the zoom shown beside it (and a canvas that follows) says so

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120
        if steps and self._pixmap is not None:
            self.zoom_by(1.25**steps, event.position())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._pixmap is not None:
            self._drag_from = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._drag_from is not None:
            delta = event.position() - self._drag_from
            self._drag_from = event.position()
            if self._fitted:
                self._fitted = False  # panning a fitted image starts from where it is shown
            self.pan_by(delta.x(), delta.y())
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._drag_from = None
        self.unsetCursor()
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self._fitted:
            self.set_scale(self._reduced, event.position())  # 100 %: the picture's own pixels
        else:
            self.fit()

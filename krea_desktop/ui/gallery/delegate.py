"""How a gallery cell is drawn: the image fitted into a square, and its badges."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from krea_desktop.library.store import LibraryEntry
from krea_desktop.ui.gallery.model import PLACEHOLDER_COLOUR, GalleryModel, ModelIndex
from krea_desktop.ui.gallery.thumbnails import fit_within
from krea_desktop.ui.money import cost_simulated, format_cost

if TYPE_CHECKING:
    from krea_desktop.ui.gallery.view import GalleryView


_CELL = QColor(40, 40, 44)
_BADGE_BACK = QColor(0, 0, 0, 150)
_FOCUS_PEN = QPen(QColor(255, 255, 255, 200), 1, Qt.PenStyle.DashLine)
_HOVER_PEN = QPen(QColor(255, 255, 255, 90), 1)
_FAVOURITE = QColor(240, 190, 60)
_WARNING = QColor(210, 80, 80)
_COST = QColor(120, 160, 120)
_CENTRED = int(Qt.AlignmentFlag.AlignCenter.value)


class GalleryDelegate(QStyledItemDelegate):
    """Draws each image fitted into a square cell, with small badges: favourite, NSFW
    (blurred until revealed), cost, and a mark for missing or broken files.

    Painting runs for every visible cell on every repaint, so it reads the row straight
    from the model and draws with integer coordinates and Qt objects made once: each
    temporary Qt value (a QRect, QColor, QFont...) is a C++ object whose destruction lets
    the background threads take the GIL, and a repaint that made hundreds of them waited
    for those threads that many times.
    """

    def __init__(self, view: GalleryView) -> None:
        super().__init__(view)
        self.view = view
        self._blurred: OrderedDict[int, QPixmap] = OrderedDict()
        self._badge_font: QFont | None = None
        self._badge_metrics: QFontMetrics | None = None
        # Each badge drawn once into a pixmap, with its width (by text, colour and pixel
        # ratio): laying out and drawing its text for every cell of every repaint took a
        # third of a scroll step's paint.
        self._badge_images: dict[tuple[str, int, float], tuple[int, QPixmap]] = {}
        self._selection_pens: dict[bool, QPen] = {}  # by whether the view is enabled

    def sizeHint(self, option: QStyleOptionViewItem, index: ModelIndex) -> QSize:
        side = self.view.cell_side()
        return QSize(side, side)

    def _blur(self, pixmap: QPixmap) -> QPixmap:
        """A tiny copy, drawn enlarged with smoothing: nothing recognisable survives."""
        # By the thumbnail's own key, not the row's: a row id can come back for a new image
        # (the index gives a deleted image's id again), and a file changed gets a new thumbnail.
        key = pixmap.cacheKey()
        small = self._blurred.get(key)
        if small is None:
            w, h = max(1, pixmap.width() // 24), max(1, pixmap.height() // 24)
            small = pixmap.scaled(
                w, h, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
            self._blurred[key] = small
            while len(self._blurred) > 500:
                self._blurred.popitem(last=False)
        return small

    def style_changed(self) -> None:
        """The view's font or palette changed: make the badge font and selection pen again."""
        self._badge_font = self._badge_metrics = None
        self._badge_images.clear()
        self._selection_pens.clear()

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: ModelIndex) -> None:
        cell = option.rect
        x, y, w, h = cell.x() + 4, cell.y() + 4, cell.width() - 8, cell.height() - 8
        state = option.state
        painter.save()
        painter.fillRect(x, y, w, h, _CELL)
        model = self.view.model()
        if isinstance(model, GalleryModel) and (entry := model.entry_at(index.row())) is not None:
            pixmap = model.pixmap_for(entry)
            shown = (x, y, w, h)  # what the badges sit in: the picture, once there is one
            if model.is_placeholder(pixmap):
                # A flat square: filled, not scaled with smoothing (most of a fling's paint
                # time went into scaling it into every cell) nor blurred.
                side = min(w, h)
                shown = (x + (w - side) // 2, y + (h - side) // 2, side, side)
                painter.fillRect(*shown, PLACEHOLDER_COLOUR)
            elif not pixmap.isNull():
                ratio = pixmap.devicePixelRatio()
                # device-independent size rounded as QSizeF.toSize() does (halves up)
                tw, th = fit_within(int(pixmap.width() / ratio + 0.5), int(pixmap.height() / ratio + 0.5), w, h)
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
                if entry.nsfw and not self.view.reveal_nsfw:
                    pixmap = self._blur(pixmap)
                shown = (x + (w - tw) // 2, y + (h - th) // 2, tw, th)
                painter.drawPixmap(*shown, pixmap)
            self._badges(painter, shown, x, entry)
        if state & QStyle.StateFlag.State_Selected:
            enabled = self.view.isEnabled()
            pen = self._selection_pens.get(enabled)
            if pen is None:  # the colour the view's own items get: active, or disabled
                group = QPalette.ColorGroup.Active if enabled else QPalette.ColorGroup.Disabled
                pen = self._selection_pens[enabled] = QPen(
                    self.view.palette().color(group, QPalette.ColorRole.Highlight), 3
                )
            painter.setPen(pen)
            painter.drawRect(x + 1, y + 1, w - 3, h - 3)
        elif state & QStyle.StateFlag.State_MouseOver:
            painter.setPen(_HOVER_PEN)
            painter.drawRect(x, y, w - 1, h - 1)
        if state & QStyle.StateFlag.State_HasFocus and self.view.hasFocus():
            # The keyboard's place: a dotted frame inside the cell, selected or not.
            painter.setPen(_FOCUS_PEN)
            painter.drawRect(x + 5, y + 5, w - 11, h - 11)
        painter.restore()

    def badge_texts(self, entry: LibraryEntry) -> list[str]:
        """The badges of a cell, right to left."""
        return [text for text, _colour in self._badge_list(entry)]

    def _badge_list(self, entry: LibraryEntry) -> list[tuple[str, QColor]]:
        badges: list[tuple[str, QColor]] = []
        if entry.favourite:
            badges.append(("★", _FAVOURITE))
        if entry.nsfw:
            badges.append(("NSFW", _WARNING))
        if entry.missing:
            badges.append(("missing", _WARNING))
        elif entry.broken:
            badges.append(("broken", _WARNING))
        if entry.cost:
            badges.append((format_cost(entry.cost, cost_simulated(entry.simulated, self.view.costs_simulated)), _COST))
        return badges

    def _badges(self, painter: QPainter, shown: tuple[int, int, int, int], left: int, entry: LibraryEntry) -> None:
        """The badges along the bottom of the picture (``shown``: x, y, width, height),
        from its right edge leftwards; a tall picture's may reach past its left edge, up
        to ``left``, the cell's."""
        badges = self._badge_list(entry)
        if not badges:
            return
        if self._badge_font is None or self._badge_metrics is None:
            font = self.view.font()
            font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
            self._badge_font, self._badge_metrics = font, QFontMetrics(font)
        x, y, w, h = shown
        height = self._badge_metrics.height() + 2
        right = x + w - 1 - 4
        top = y + h - 1 - height - 4
        ratio = painter.device().devicePixelRatioF()
        for text, colour in badges:
            bw, plate = self._badge_image(text, colour, height, ratio, self._badge_font, self._badge_metrics)
            if right - bw < left:  # no room left in the cell: the rest stays off (all in the viewer)
                break
            painter.drawPixmap(right - bw, top, plate)
            right -= bw + 3

    def _badge_image(
        self, text: str, colour: QColor, height: int, ratio: float, font: QFont, metrics: QFontMetrics
    ) -> tuple[int, QPixmap]:
        """The badge's width and its plate and text, drawn once (the same pixels as drawing
        both in the cell: the plate's translucency is kept in the pixmap's alpha)."""
        key = (text, colour.rgba(), ratio)
        made = self._badge_images.get(key)
        if made is None:
            if len(self._badge_images) > 256:
                self._badge_images.clear()
            width = metrics.horizontalAdvance(text) + 8
            image = QPixmap(round(width * ratio), round(height * ratio))
            image.setDevicePixelRatio(ratio)
            image.fill(Qt.GlobalColor.transparent)
            painter = QPainter(image)
            painter.fillRect(0, 0, width, height, _BADGE_BACK)
            painter.setFont(font)
            painter.setPen(colour)
            painter.drawText(0, 0, width, height, _CENTRED, text)
            painter.end()
            made = self._badge_images[key] = (width, image)
        return made

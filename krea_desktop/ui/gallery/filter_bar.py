"""The strip above the gallery: search by prompt, favourites only, one ratio, the
thumbnail size, and, while the gallery is narrowed to a scope (a sweep's images, an
image's lineage), a chip that names it and clears it."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QResizeEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QSlider,
    QStyle,
    QToolBar,
    QToolButton,
    QWidget,
)

from krea_desktop.api import spec
from krea_desktop.ui import theme
from krea_desktop.ui.gallery.model import GalleryModel
from krea_desktop.ui.gallery.view import THUMB_SIDE_DEFAULT, THUMB_SIDE_MAX, THUMB_SIDE_MIN
from krea_desktop.ui.mime import paste_images_to_window
from krea_desktop.ui.theme import set_role

SEARCH_DELAY_MS = 150


class ScopeChip(QFrame):
    """What the gallery is narrowed to, by name, with a button that shows every image again."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("galleryScope")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.label = QLabel(self)
        self.label.setObjectName("galleryScopeLabel")
        self.clear_button = QToolButton(self)
        self.clear_button.setObjectName("galleryScopeClear")
        self.clear_button.setText("×")
        self.clear_button.setAutoRaise(True)
        self.clear_button.setToolTip("Show every image again")
        self.clear_button.setAccessibleName("Show every image again")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.label)
        lay.addWidget(self.clear_button)

    def set_label(self, label: str) -> None:
        text = label or "A selection of images"
        self.label.setText(text)
        self.setToolTip(f"The gallery shows only: {text}")
        self.setAccessibleName(f"Showing only {text}")


class GalleryFilterBar(QWidget):
    """Emits :attr:`filtersChanged` with ``search``, ``favourites_only`` and ``ratio``, the
    keywords of ``Library.ids``; typing is debounced so each pause queries the index once.

    Given the gallery's model (``model=``, :meth:`set_model`, or else the one model its
    parent holds), it shows the model's scope as a chip whose × clears it.
    """

    filtersChanged = Signal(dict)
    thumbSideChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None, model: GalleryModel | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("galleryFilterBar")
        self.search = SearchField(self)
        self.search.setObjectName("gallerySearch")
        paste_images_to_window(self.search)
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("Show only images whose prompt contains every word typed here (Ctrl+F)")
        self.search.setAccessibleName("Search prompts")
        self.favourites = QToolButton(self)
        self.favourites.setObjectName("favouritesFilter")
        self.favourites.setText("★ Favourites")
        self.favourites.setCheckable(True)
        self.favourites.setToolTip("Show only the images marked as favourites")
        self.ratio = QComboBox(self)
        self.ratio.setObjectName("ratioFilter")
        self.ratio.setToolTip("Show only images of one aspect ratio")
        self.ratio.setAccessibleName("Aspect ratio shown")  # not its value alone ("All ratios")
        self.ratio.addItem("All ratios", None)
        for r in spec.ASPECT_RATIOS:
            self.ratio.addItem(r.name, r.name)
        self.size_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.size_slider.setObjectName("thumbSizeSlider")
        self.size_slider.setRange(THUMB_SIDE_MIN, THUMB_SIDE_MAX)
        self.size_slider.setSingleStep(8)
        self.size_slider.setPageStep(48)
        self.size_slider.setValue(THUMB_SIDE_DEFAULT)
        self.size_slider.setMinimumWidth(60)
        self.size_slider.setMaximumWidth(140)
        self.size_slider.setToolTip("Thumbnail size (also Ctrl+wheel over the gallery)")
        self.size_slider.setAccessibleName("Thumbnail size")
        self.count_label = QLabel(self)
        self.count_label.setObjectName("galleryShownCount")
        set_role(self.count_label, "hint")
        self.scope_chip = ScopeChip(self)
        self.scope_chip.hide()
        self._model: GalleryModel | None = None

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self._emit)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.search.returnPressed.connect(self._emit_now)
        self.favourites.toggled.connect(lambda _c: self._emit())
        self.ratio.currentIndexChanged.connect(lambda _i: self._emit())
        self.size_slider.valueChanged.connect(self.thumbSideChanged)

        # The rest sits in a tool bar, which folds what does not fit behind a » button.
        tools = QToolBar(self)
        tools.setObjectName("galleryFilterTools")
        tools.addWidget(self.favourites)
        tools.addWidget(self.ratio)
        tools.addWidget(self.count_label)
        tools.addWidget(QLabel(" Size ", self))
        tools.addWidget(self.size_slider)
        theme.show_overflow_button(tools, "More filters: those that do not fit this width")
        self._more_menu(tools)
        self.search.setMinimumWidth(80)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 2)
        lay.addWidget(self.search, 1)
        lay.addWidget(self.scope_chip)
        lay.addWidget(tools, 2)

        if model is None and parent is not None:
            # The window makes the gallery's model before this bar, as its child.
            found = parent.findChildren(GalleryModel, options=Qt.FindChildOption.FindDirectChildrenOnly)
            model = found[0] if len(found) == 1 else None
        if model is not None:
            self.set_model(model)

    def _more_menu(self, tools: QToolBar) -> None:
        """The » button's menu: what the filters that do not fit would do, as menu items
        (a tool bar's own menu cannot show a widget that lives in the bar)."""
        button = tools.findChild(QToolButton, "qt_toolbar_ext_button")
        if button is None:
            return
        self.more_menu = QMenu(button)
        self.more_menu.aboutToShow.connect(self._fill_more_menu)
        button.setMenu(self.more_menu)
        button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)

    def _fill_more_menu(self) -> None:
        menu = self.more_menu
        menu.clear()
        if not self.favourites.isVisible():
            favourites = menu.addAction(self.favourites.text())
            favourites.setCheckable(True)
            favourites.setChecked(self.favourites.isChecked())
            favourites.toggled.connect(self.favourites.setChecked)
        if not self.ratio.isVisible():
            ratios = menu.addMenu("Aspect ratio")
            for i in range(self.ratio.count()):
                item = ratios.addAction(self.ratio.itemText(i))
                item.setCheckable(True)
                item.setChecked(i == self.ratio.currentIndex())
                item.triggered.connect(lambda _checked=False, i=i: self.ratio.setCurrentIndex(i))
        if not self.count_label.isVisible() and self.count_label.text():
            menu.addAction(f"Showing {self.count_label.text()}").setEnabled(False)
        if not self.size_slider.isVisible():
            slider = self.size_slider
            larger = menu.addAction("Larger thumbnails")
            larger.setEnabled(slider.value() < slider.maximum())
            larger.triggered.connect(lambda: slider.setValue(slider.value() + slider.pageStep()))
            smaller = menu.addAction("Smaller thumbnails")
            smaller.setEnabled(slider.value() > slider.minimum())
            smaller.triggered.connect(lambda: slider.setValue(slider.value() - slider.pageStep()))

    # --- scope -----------------------------------------------------------------------

    def set_model(self, model: GalleryModel) -> None:
        """Show ``model``'s scope, and clear it from the chip."""
        if self._model is not None:
            self._model.scopeChanged.disconnect(self._scope_changed)
            self.scope_chip.clear_button.clicked.disconnect(self.clear_scope)
        self._model = model
        model.scopeChanged.connect(self._scope_changed)
        self.scope_chip.clear_button.clicked.connect(self.clear_scope)
        self._scope_changed()

    def clear_scope(self) -> None:
        """Show every image again (within the filters)."""
        if self._model is not None and self._model.has_scope():
            self._model.set_scope(None)

    def _scoped(self) -> bool:
        return self._model is not None and self._model.has_scope()

    def _scope_changed(self) -> None:
        model = self._model
        if model is None:
            return
        if model.has_scope():
            self.scope_chip.set_label(model.scope_label())
        self.scope_chip.setVisible(model.has_scope())
        self.set_counts(model.rowCount(), model.library.count())

    def filters(self) -> dict[str, Any]:
        return {
            "search": self.search.text().strip() or None,
            "favourites_only": self.favourites.isChecked(),
            "ratio": self.ratio.currentData(),
        }

    def clear(self) -> None:
        """Empty the search, turn every filter off and clear the scope, then tell once."""
        if self._model is not None and self._model.has_scope():
            self._model.set_scope(None, refresh=False)  # the rows are read again on telling
        for widget in (self.favourites, self.ratio):
            widget.blockSignals(True)
        self.favourites.setChecked(False)
        self.ratio.setCurrentIndex(0)
        for widget in (self.favourites, self.ratio):
            widget.blockSignals(False)
        self.search.clear()  # starts the search timer, which telling now stops
        self._emit_now()

    def take_back(self, filters: dict[str, Any]) -> None:
        """The favourites and ratio controls set to ``filters`` (those the gallery shows: a
        change it could not make taken back), without telling; the search typed stays as
        it is, so that typing goes on. Left as they were, every later search carried the
        refused filter with it and was refused too."""
        for widget in (self.favourites, self.ratio):
            widget.blockSignals(True)
        self.favourites.setChecked(bool(filters.get("favourites_only")))
        self.ratio.setCurrentIndex(max(0, self.ratio.findData(filters.get("ratio"))))
        for widget in (self.favourites, self.ratio):
            widget.blockSignals(False)

    def _emit_now(self) -> None:
        self._search_timer.stop()
        self._emit()

    def _emit(self) -> None:
        self.filtersChanged.emit(self.filters())

    def set_thumb_side(self, side: int) -> None:
        """Follow a change made elsewhere (Ctrl+wheel) without echoing it back."""
        self.size_slider.blockSignals(True)
        self.size_slider.setValue(side)
        self.size_slider.blockSignals(False)

    def set_counts(self, shown: int, total: int) -> None:
        filtered = any(v for v in self.filters().values()) or self._scoped()
        self.count_label.setText(f"{shown:,} of {total:,}" if filtered else "")


class SearchField(QLineEdit):
    """The prompt search: its placeholder says "Search prompts…" where that fits, else
    "Search…", never a cut "Search prom…" (a narrow window gives it 80 px or so)."""

    LONG, SHORT = "Search prompts…", "Search…"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText(self.LONG)

    def event(self, event: QEvent) -> bool:
        # Esc here is the field's, not the window's (which cancels the newest job): a
        # search being typed is cleared, never a paid batch cut short. Once it is empty
        # too: pressed twice, the second Esc cancelled the newest job.
        if (
            event.type() == QEvent.Type.ShortcutOverride
            and isinstance(event, QKeyEvent)
            and event.key() == Qt.Key.Key_Escape
        ):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.clear()
            event.accept()
            return
        super().keyPressEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_placeholder()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._fit_placeholder()

    def _fit_placeholder(self) -> None:
        text = self.LONG if placeholder_fits(self, self.LONG, self.width()) else self.SHORT
        if self.placeholderText() != text:
            self.setPlaceholderText(text)


def placeholder_fits(field: QLineEdit, text: str, width: int) -> bool:
    """Whether ``field``, ``width`` px wide, shows ``text`` whole as its placeholder: the test
    QLineEdit makes when it paints one (the text eliding to its contents, inside the frame,
    its text margins and 2 px each side; an empty field shows no clear button, which takes
    no room then)."""
    frame = field.style().pixelMetric(QStyle.PixelMetric.PM_DefaultFrameWidth, None, field)
    margins = field.textMargins()
    room = width - 2 * frame - margins.left() - margins.right() - 2 * 2
    return field.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, room) == text

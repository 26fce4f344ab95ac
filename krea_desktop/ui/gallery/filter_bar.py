"""The strip above the gallery: search by prompt, favourites only, one ratio, and the
thumbnail size."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QSlider, QToolBar, QToolButton, QWidget

from krea_desktop.api import spec
from krea_desktop.ui import theme
from krea_desktop.ui.gallery.view import THUMB_SIDE_DEFAULT, THUMB_SIDE_MAX, THUMB_SIDE_MIN

SEARCH_DELAY_MS = 150


class GalleryFilterBar(QWidget):
    """Emits :attr:`filtersChanged` with ``search``, ``favourites_only`` and ``ratio``, the
    keywords of ``Library.ids``; typing is debounced so each pause queries the index once."""

    filtersChanged = Signal(dict)
    thumbSideChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("galleryFilterBar")
        self.search = QLineEdit(self)
        self.search.setObjectName("gallerySearch")
        self.search.setPlaceholderText("Search prompts…")
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
        self.count_label = QLabel(self)
        self.count_label.setObjectName("galleryShownCount")
        self.count_label.setProperty("role", "hint")

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
        self.search.setMinimumWidth(80)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 2)
        lay.addWidget(self.search, 1)
        lay.addWidget(tools, 2)

    def filters(self) -> dict[str, Any]:
        return {
            "search": self.search.text().strip() or None,
            "favourites_only": self.favourites.isChecked(),
            "ratio": self.ratio.currentData(),
        }

    def clear(self) -> None:
        """Empty the search and turn every filter off, then tell once."""
        for widget in (self.favourites, self.ratio):
            widget.blockSignals(True)
        self.favourites.setChecked(False)
        self.ratio.setCurrentIndex(0)
        for widget in (self.favourites, self.ratio):
            widget.blockSignals(False)
        self.search.clear()  # starts the search timer, which telling now stops
        self._emit_now()

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
        filtered = any(v for v in self.filters().values())
        self.count_label.setText(f"{shown} of {total}" if filtered else "")

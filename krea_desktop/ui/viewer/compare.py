"""Two images side by side, zoomed and panned together."""

from __future__ import annotations

import html

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage, QKeyEvent
from PySide6.QtWidgets import (
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from krea_desktop.library.store import LibraryEntry
from krea_desktop.ui import theme
from krea_desktop.ui.background import BackgroundRunner, Runner
from krea_desktop.ui.placement import open_on_screen
from krea_desktop.ui.viewer.canvas import ImageCanvas, ImageUnreadable, decode_image_file, full_size_of


def caption_html(entry: LibraryEntry) -> str:
    """The facts under an image, each reference's strength in its tray colour."""
    strengths = ", ".join(
        f"<span style='color:{theme.strength_text_color(r.strength).name()}'>{theme.signed_strength(r.strength)}</span>"
        for r in entry.references
        if r.strength is not None
    )
    parts = [
        html.escape(entry.ratio or f"{entry.width}×{entry.height}"),
        f"seed {entry.seed}" if entry.seed is not None else "no seed",
        f"creativity {html.escape(entry.creativity)}" if entry.creativity else "",
        f"references {strengths}" if strengths else "",
    ]
    return " · ".join(p for p in parts if p)


class CompareDialog(QDialog):
    """Both canvases show the same relative place at the same zoom: zoom or pan either one
    and the other follows."""

    def __init__(
        self, left: LibraryEntry, right: LibraryEntry, *, runner: Runner | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("compareDialog")
        self.setWindowTitle("Compare two images")
        self.entries = (left, right)
        self._runner: Runner = runner if runner is not None else BackgroundRunner(parent=self)
        self.canvases = (ImageCanvas(self), ImageCanvas(self))
        self._syncing = False
        outer = QVBoxLayout(self)
        grid = QGridLayout()
        outer.addLayout(grid, 1)  # in place before it is filled (tests/ui/test_layout_items.py)
        for column, (entry, canvas) in enumerate(zip(self.entries, self.canvases, strict=True)):
            canvas.setObjectName(f"compareCanvas{column}")
            canvas.set_loading()
            prompt = QLabel(entry.prompt or "(no prompt)", self)
            prompt.setWordWrap(True)
            prompt.setTextFormat(Qt.TextFormat.PlainText)
            prompt.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            prompt.setMaximumHeight(60)
            facts = QLabel(caption_html(entry), self)
            facts.setObjectName("compareFacts")
            facts.setTextFormat(Qt.TextFormat.RichText)
            facts.setWordWrap(True)
            for label in (prompt, facts):  # they wrap within their half, not widen the window
                label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            grid.addWidget(canvas, 0, column)
            grid.addWidget(prompt, 1, column)
            grid.addWidget(facts, 2, column)
            grid.setColumnStretch(column, 1)
            other = self.canvases[1 - column]
            canvas.viewChanged.connect(lambda s, x, y, f, o=other: self._follow(o, s, x, y, f))
            self._load(canvas, entry)
        grid.setRowStretch(0, 1)
        fit = QPushButton("Fit both", self)
        fit.setObjectName("compareFitButton")
        fit.setToolTip("Fit both images to their halves (0)")
        fit.clicked.connect(self.fit_both)
        actual = QPushButton("100 %", self)
        actual.setObjectName("compareActualButton")
        actual.setToolTip("Show both images at their actual size (1)")
        actual.clicked.connect(self.actual_size_both)
        for button in (fit, actual):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        bar = QHBoxLayout()
        outer.addLayout(bar)
        bar.addWidget(QLabel("Zoom with the wheel and drag to pan: both images follow.", self))
        bar.addStretch(1)
        bar.addWidget(fit)
        bar.addWidget(actual)
        open_on_screen(self, QSize(1400, 800))

    def _load(self, canvas: ImageCanvas, entry: LibraryEntry) -> None:
        path, in_library = entry.path, entry.id >= 0

        def decode() -> tuple[QImage, QSize | None]:
            image = decode_image_file(path, in_library=in_library)
            return image, full_size_of(path, image)

        self._runner.submit(
            decode,
            lambda got: self._decoded(canvas, *got),
            lambda error: canvas.set_error(
                str(error) if isinstance(error, ImageUnreadable) else "This image could not be read."
            ),
        )

    def _decoded(self, canvas: ImageCanvas, image: QImage, full_size: QSize | None = None) -> None:
        canvas.set_image(image, full_size=full_size)  # 100 %: its own pixels, a reduced copy or not
        other = self.canvases[1] if canvas is self.canvases[0] else self.canvases[0]
        if other.has_image():
            canvas.apply_view(other.zoom, other.centre().x(), other.centre().y(), other.fitted)

    def _follow(self, other: ImageCanvas, zoom: float, cx: float, cy: float, fitted: bool) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            other.apply_view(zoom, cx, cy, fitted)
        finally:
            self._syncing = False

    def _leading(self) -> ImageCanvas:
        """The canvas the other follows: the first with an image (the left one may be a
        file that cannot be read, which ignores zooming)."""
        return next((canvas for canvas in self.canvases if canvas.has_image()), self.canvases[0])

    def fit_both(self) -> None:
        self._leading().fit()

    def actual_size_both(self) -> None:
        self._leading().actual_size()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        # F is the favourite key elsewhere, so it does not fit here either.
        if event.key() == Qt.Key.Key_0:
            self.fit_both()
        elif event.key() == Qt.Key.Key_1:
            self.actual_size_both()
        else:
            super().keyPressEvent(event)

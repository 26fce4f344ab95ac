"""The contact sheet in the window: the sweep's grid, labelled on its edges, filling as
cells arrive. A cell opens in the viewer (double-click or Enter) and drags out like a
gallery image (into the tray, another program, a folder); a failed cell keeps its place
and says why."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QDrag, QImage, QKeyEvent, QMouseEvent, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from krea_desktop.api.record import SweepTag
from krea_desktop.library.sheet import cell_size, named_axis_title, value_label
from krea_desktop.library.store import LibraryEntry
from krea_desktop.ui.gallery.model import mime_for_entries
from krea_desktop.ui.placement import open_on_screen
from krea_desktop.ui.theme import set_role

CELL_SIDE = 180  # the long side of a cell on screen
DOWN_TITLE_WIDTH = 150  # the column of the second axis's title and values, unless a word needs more

WAITING, DONE, FAILED = "waiting", "done", "failed"
# A failed cell wears the colour of the sheet image's failed cells; a waiting one is muted.
_CELL_STYLE = {
    WAITING: "QLabel#sheetCell { background: #303034; color: #a5a5aa; }",
    DONE: "QLabel#sheetCell { background: #1e1e20; }",
    FAILED: "QLabel#sheetCell { background: #463434; color: #f0dede; padding: 6px; }",
}


class SheetCellView(QLabel):
    """One cell: waiting, its image, or its error."""

    openRequested = Signal()

    def __init__(self, place: tuple[int, ...], size: tuple[int, int], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sheetCell")
        self.place = place
        self.state = WAITING
        self.entry: LibraryEntry | None = None
        self.error = ""
        self._press: QPoint | None = None
        self.setFixedSize(*size)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.set_waiting("Waiting…")

    def set_waiting(self, text: str) -> None:
        self.state = WAITING
        self.setText(text)
        self.setProperty("cellState", WAITING)
        self.setStyleSheet(_CELL_STYLE[WAITING])
        self.setToolTip("")

    def set_image(self, entry: LibraryEntry, thumbnail: QImage | None) -> None:
        """Show ``entry`` by its ``thumbnail`` (None while it is being read; never decoded
        here, on the GUI thread)."""
        self.state = DONE
        self.entry = entry
        self.setProperty("cellState", DONE)
        self.setStyleSheet(_CELL_STYLE[DONE])
        image = thumbnail
        if image is None:  # its thumbnail is being read
            self.setText("Loading…")
        elif image.isNull():
            self.setText("Saved, but it cannot be shown")
        else:
            ratio = self.devicePixelRatioF() or 1.0
            pixmap = QPixmap.fromImage(image).scaled(
                round(self.width() * ratio),
                round(self.height() * ratio),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
            pixmap.setDevicePixelRatio(ratio)
            self.setPixmap(pixmap)
        self.setToolTip(f"{entry.path.name}\nDouble-click to open; drag into the tray or out of the window.")

    def set_failed(self, error: str) -> None:
        self.state = FAILED
        self.error = error
        self.setProperty("cellState", FAILED)
        self.setStyleSheet(_CELL_STYLE[FAILED])
        self.setText(f"Failed: {error}")
        self.setToolTip(error)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self.entry is not None:
            self.openRequested.emit()
        super().mouseDoubleClickEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            if self.entry is not None:
                self.openRequested.emit()
            # else nothing to open yet (the cell says why): not passed on to the sheet's default button
            event.accept()
            return
        super().keyPressEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._press = event.position().toPoint()
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._press is None or self.entry is None:
            return
        if (event.position().toPoint() - self._press).manhattanLength() < QApplication.startDragDistance():
            return
        self._press = None
        drag = QDrag(self)
        drag.setMimeData(mime_for_entries([self.entry]))
        pixmap = self.pixmap()
        if pixmap is not None and not pixmap.isNull():
            drag.setPixmap(pixmap.scaled(96, 96, Qt.AspectRatioMode.KeepAspectRatio))
        drag.exec(Qt.DropAction.CopyAction)


class ContactSheet(QDialog):
    """A sweep's grid: the first axis along the top, the second down the side."""

    openEntry = Signal(object, list)  # the entry to open, every shown entry (for stepping)
    showInGallery = Signal(str)  # the sweep's id
    cancelRequested = Signal()

    def __init__(
        self,
        tag: SweepTag,
        image_size: tuple[int, int],
        title: str = "",
        reference_names: Sequence[str] = (),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("contactSheet")
        self.setWindowTitle("Sweep")
        self.setModal(False)
        self.tag = tag
        self.sheet_entry: LibraryEntry | None = None
        axes = tag.axes
        scale = CELL_SIDE / 320
        w, h = cell_size(*image_size)
        size = (max(60, round(w * scale)), max(60, round(h * scale)))

        self.titleLabel = QLabel(title, self)
        self.titleLabel.setObjectName("sheetTitle")
        self.titleLabel.setWordWrap(True)
        self.titleLabel.setTextFormat(Qt.TextFormat.PlainText)
        self.statusLabel = QLabel(self)
        self.statusLabel.setObjectName("sheetStatus")
        set_role(self.statusLabel, "hint")

        grid_widget = QWidget(self)
        grid = QGridLayout(grid_widget)
        grid.setSpacing(8)
        across = QLabel(named_axis_title(axes[0].name, reference_names), grid_widget)
        across.setObjectName("acrossAxisLabel")
        set_role(across, "hint")
        grid.addWidget(across, 0, 1, 1, len(axes[0].values))
        for c, value in enumerate(axes[0].values):
            label = QLabel(value_label(axes[0].name, value), grid_widget)
            label.setObjectName("columnLabel")
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            grid.addWidget(label, 1, c + 1)
        rows = axes[1].values if len(axes) > 1 else (None,)
        if len(axes) > 1:
            down = QLabel(named_axis_title(axes[1].name, reference_names), grid_widget)
            down.setObjectName("downAxisLabel")
            set_role(down, "hint")
            # A reference's name makes it long: it wraps, so the cells keep their room, but
            # never within a word (a file name is one).
            metrics = down.fontMetrics()
            widest_word = max(metrics.horizontalAdvance(word) for word in down.text().split())
            down.setWordWrap(True)
            down.setFixedWidth(min(max(DOWN_TITLE_WIDTH, widest_word), metrics.horizontalAdvance(down.text())) + 2)
            down.setToolTip(down.text())
            grid.addWidget(down, 1, 0)
        self.cells: dict[tuple[int, ...], SheetCellView] = {}
        for r, value in enumerate(rows):
            if value is not None:
                label = QLabel(value_label(axes[1].name, value), grid_widget)
                label.setObjectName("rowLabel")
                grid.addWidget(label, r + 2, 0)
            for c in range(len(axes[0].values)):
                place = (c, r) if len(axes) > 1 else (c,)
                cell = SheetCellView(place, size, grid_widget)
                cell.openRequested.connect(lambda cell=cell: self._open(cell))
                grid.addWidget(cell, r + 2, c + 1)
                self.cells[place] = cell
        grid.setRowStretch(len(rows) + 2, 1)
        grid.setColumnStretch(len(axes[0].values) + 1, 1)
        scroll = QScrollArea(self)
        scroll.setWidget(grid_widget)
        scroll.setWidgetResizable(True)

        self.galleryButton = QPushButton("Show in gallery", self)
        self.galleryButton.setObjectName("showSweepButton")
        self.galleryButton.setToolTip("Show only this sweep's images in the gallery")
        self.galleryButton.clicked.connect(lambda: self.showInGallery.emit(self.tag.id))
        self.cancelButton = QPushButton("Cancel sweep", self)
        self.cancelButton.setObjectName("cancelSweepButton")
        self.cancelButton.setToolTip("Send no more cells and cancel those running; images received are kept")
        self.cancelButton.clicked.connect(self.cancelRequested)
        self.cancelButton.setVisible(False)
        close = QPushButton("Close", self)
        close.clicked.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.titleLabel)
        layout.addWidget(scroll, 1)
        buttons = QHBoxLayout()
        layout.addLayout(buttons)  # in place before it is filled (tests/ui/test_layout_items.py)
        buttons.addWidget(self.statusLabel, 1)
        buttons.addWidget(self.galleryButton)
        buttons.addWidget(self.cancelButton)
        buttons.addWidget(close)
        # As large as the grid (its first column holds the second axis's title and values).
        grid_size = grid_widget.sizeHint()
        preferred = QSize(grid_size.width() + 40, max(grid_size.height(), 110 + len(rows) * (size[1] + 8)) + 120)
        open_on_screen(self, preferred.boundedTo(QSize(1500, 950)))
        self.update_status()

    # -- filling -------------------------------------------------------------------------

    def set_image(self, place: tuple[int, ...], entry: LibraryEntry, thumbnail: QImage | None = None) -> None:
        cell = self.cells.get(place)
        if cell is not None:
            cell.set_image(entry, thumbnail)
            self.update_status()

    def set_failed(self, place: tuple[int, ...], error: str) -> None:
        cell = self.cells.get(place)
        if cell is not None and cell.state != DONE:
            cell.set_failed(error)
            self.update_status()

    def set_running(self, running: bool) -> None:
        self.cancelButton.setVisible(running)

    def set_saved(self, entry: LibraryEntry) -> None:
        self.sheet_entry = entry
        self.update_status()

    def counts(self) -> tuple[int, int, int]:
        """(done, failed, waiting)."""
        states = [c.state for c in self.cells.values()]
        return states.count(DONE), states.count(FAILED), states.count(WAITING)

    def update_status(self) -> None:
        done, failed, waiting = self.counts()
        total = len(self.cells)
        parts = [f"{done} of {total} made"]
        if failed:
            parts.append(f"{failed} failed")
        if waiting:
            parts.append(f"{waiting} waiting")
        if self.sheet_entry is not None:
            parts.append(f"sheet saved as {Path(self.sheet_entry.path).name}")
        self.statusLabel.setText(" · ".join(parts))

    def entries(self) -> list[LibraryEntry]:
        """The cells' images, row by row."""
        ordered = sorted(self.cells.values(), key=lambda c: c.place[::-1])
        return [c.entry for c in ordered if c.entry is not None]

    def _open(self, cell: SheetCellView) -> None:
        if cell.entry is not None:
            self.openEntry.emit(cell.entry, self.entries())

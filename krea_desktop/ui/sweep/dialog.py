"""Planning a sweep: one or two axes, their values, the grid, the number of tasks and the
estimated cost, all shown before anything is sent."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from krea_desktop.api import spec
from krea_desktop.api.record import SweepAxis
from krea_desktop.api.request import GenerationRequest
from krea_desktop.models.sweep import (
    DEFAULT_SEEDS,
    DEFAULT_STRENGTHS,
    SweepError,
    SweepPlan,
    axis_title,
    parse_values,
    random_seeds,
    short_reference_name,
    value_label,
)
from krea_desktop.ui.money import format_cost
from krea_desktop.ui.theme import PrimaryButton, set_role
from krea_desktop.wording import counted

# The cost of one image as the service last reported it (None when unknown), and whether
# it is the simulator's.
UnitCost = Callable[[int, int], "tuple[float | None, bool]"]
# A reference as the tray shows it: where it came from (a file name, an address, "pasted
# image") and its thumbnail.
ReferenceLook = tuple[str, QIcon]


def default_values(name: str) -> str:
    if name.startswith("ref"):
        return ", ".join(value_label(name, v) for v in DEFAULT_STRENGTHS)
    if name == "creativity":
        return ", ".join(spec.CREATIVITY_LEVELS)
    return ", ".join(str(s) for s in random_seeds(DEFAULT_SEEDS))


class SweepDialog(QDialog):
    """Asks which axes to vary and confirms the plan; :meth:`plan` is the result.

    ``references`` (one per reference of ``base``, in order) name each strength axis by
    its image: its short name in the axis's title and its thumbnail as the item's icon."""

    def __init__(
        self,
        base: GenerationRequest,
        unit_cost: UnitCost,
        *,
        first_axis: str | None = None,
        references: Sequence[ReferenceLook] = (),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("sweepDialog")
        self.setWindowTitle("Sweep")
        self._unit_cost = unit_cost
        # One seed for every cell, chosen once: editing the axes does not change it.
        self._base = base if base.seed is not None else replace(base, seed=random_seeds(1)[0])
        self._plan: SweepPlan | None = None
        names = [f"ref{i + 1}" for i in range(len(base.references))] + ["creativity", "seed"]
        self._reference_names = [short_reference_name(source) for source, _icon in references]

        intro = QLabel(
            "Each cell is one image with everything else as composed, at one seed unless the seed is an axis.",
            self,
        )
        intro.setWordWrap(True)
        set_role(intro, "hint")
        self.axisCombos: list[QComboBox] = []
        self.valueEdits: list[QLineEdit] = []
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        grid = QGridLayout()
        layout.addLayout(grid)  # in place before it is filled (tests/ui/test_layout_items.py)
        for row, caption in enumerate(("Across", "Down")):
            combo = QComboBox(self)
            combo.setObjectName(f"axis{row + 1}Combo")
            combo.setIconSize(QSize(24, 24))
            if row == 1:
                combo.addItem("Nothing (one row)", None)
            for name in names:
                reference = int(name[3:]) - 1 if name.startswith("ref") else -1
                if 0 <= reference < len(references):
                    source, icon = references[reference]
                    combo.addItem(icon, axis_title(name, self._reference_names[reference]), name)
                    combo.setItemData(combo.count() - 1, source, Qt.ItemDataRole.ToolTipRole)
                else:
                    combo.addItem(axis_title(name), name)
            edit = QLineEdit(self)
            edit.setObjectName(f"values{row + 1}Edit")
            edit.setPlaceholderText("values, separated by commas")
            label = QLabel(f"&{caption}", self)
            label.setBuddy(combo)
            grid.addWidget(label, row, 0)
            grid.addWidget(combo, row, 1)
            grid.addWidget(edit, row, 2)
            self.axisCombos.append(combo)
            self.valueEdits.append(edit)
            combo.currentIndexChanged.connect(lambda _i, r=row: self._axis_changed(r))
            edit.textChanged.connect(self._update)
        grid.setColumnStretch(2, 1)
        first = first_axis if first_axis in names else names[0]
        self.axisCombos[0].setCurrentIndex(max(0, self.axisCombos[0].findData(first)))
        self._axis_changed(0)

        self.gridPreview = QTableWidget(self)
        self.gridPreview.setObjectName("gridPreview")
        self.gridPreview.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.gridPreview.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.gridPreview.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.gridPreview.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.gridPreview.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.gridPreview.setMinimumSize(420, 180)

        self.summaryLabel = QLabel(self)
        self.summaryLabel.setObjectName("sweepSummary")
        self.summaryLabel.setWordWrap(True)
        self.problemLabel = QLabel(self)
        self.problemLabel.setObjectName("sweepProblem")
        self.problemLabel.setWordWrap(True)
        set_role(self.problemLabel, "error")

        self.buttons = QDialogButtonBox(self)
        self.sendButton = PrimaryButton("Send", self)
        self.sendButton.setObjectName("sendSweepButton")
        self.sendButton.setDefault(True)
        self.buttons.addButton(self.sendButton, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout.addWidget(self.gridPreview, 1)
        layout.addWidget(self.summaryLabel)
        layout.addWidget(self.problemLabel)
        layout.addWidget(self.buttons)
        self.resize(620, 420)
        self._update()

    # -- reading -------------------------------------------------------------------------

    def plan(self) -> SweepPlan | None:
        """The sweep as planned, or None while the axes say something impossible."""
        return self._plan

    # -- inside --------------------------------------------------------------------------

    def _axis_changed(self, row: int) -> None:
        name = self.axisCombos[row].currentData()
        edit = self.valueEdits[row]
        edit.setEnabled(name is not None)
        edit.setText(default_values(name) if name is not None else "")
        self._update()

    def _axes(self) -> list[SweepAxis]:
        axes: list[SweepAxis] = []
        for combo, edit in zip(self.axisCombos, self.valueEdits, strict=True):
            name = combo.currentData()
            if name is None:
                continue
            # Named as the dialog shows it ("Reference 2 (fox.png) strength"), not "ref2".
            title = combo.currentText()
            if any(axis.name == name for axis in axes):
                raise SweepError(f"{title} is chosen twice; vary two different things.")
            axes.append(SweepAxis(name, parse_values(name, edit.text(), title)))
        return axes

    def _update(self) -> None:
        if not hasattr(self, "sendButton"):
            return  # still being built
        try:
            plan = SweepPlan.make(self._base, self._axes(), reference_names=self._reference_names)
        except SweepError as exc:
            self._plan = None
            self.problemLabel.setText(str(exc))
            self.problemLabel.setVisible(True)
            self.sendButton.setEnabled(False)
            self.sendButton.setText("Send")
            self.summaryLabel.setText("")
            return
        self._plan = plan
        self.problemLabel.setVisible(False)
        columns, rows = plan.labels()
        table = self.gridPreview
        table.setColumnCount(len(columns))
        table.setRowCount(max(1, len(rows)))
        table.setHorizontalHeaderLabels(columns)
        table.setVerticalHeaderLabels(rows or [""])
        table.verticalHeader().setVisible(bool(rows))  # one row needs no name
        # Each cell says what its image varies, so the grid reads as the sheet it makes.
        for r in range(table.rowCount()):
            for c, column in enumerate(columns):
                item = QTableWidgetItem(f"{column} · {rows[r]}" if rows else column)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                table.setItem(r, c, item)
        n = plan.task_count
        width, height = plan.base.size
        unit, simulated = self._unit_cost(width, height)
        estimate = plan.estimate(unit)
        cost = (
            f"estimated cost {format_cost(estimate, simulated)}"
            if estimate is not None
            else "the cost is not known until the service reports one"
        )
        self.summaryLabel.setText(f"{plan.describe()}. {counted(n, 'image')}, {cost}.")
        self.sendButton.setText(f"Send {counted(n, 'task')}")
        self.sendButton.setEnabled(True)

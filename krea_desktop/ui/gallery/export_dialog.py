"""Exporting several images at once: into which folder, and in which format.

One image is exported through the system's save dialog, whose file types choose the format.
Several go into a folder, and a folder dialog has no file types: this dialog asks for both,
starting from the folder and the format used last.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from krea_desktop.api import spec
from krea_desktop.ui.theme import set_role
from krea_desktop.wording import counted, for_count, shortened

FORMAT_NAMES = {"PNG": "PNG (lossless)", "JPG": "JPEG", "WEBP": "WEBP"}


class ExportDialog(QDialog):
    """Where ``count`` images go, and as what: :meth:`chosen` once accepted."""

    def __init__(
        self, count: int, folder: str, fmt: str, *, with_parameters: bool = True, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("exportDialog")
        what = counted(count, "image")
        if not with_parameters:
            what += f" without {for_count(count, 'its', 'their')} parameters"
        self.setWindowTitle(f"Export {what}")
        self.folderEdit = QLineEdit(folder, self)
        self.folderEdit.setObjectName("exportFolderEdit")
        self.folderEdit.setToolTip("The folder the copies go into; nothing already there is replaced")
        self.folderEdit.setMinimumWidth(320)
        browse = QPushButton("Browse…", self)
        browse.setObjectName("exportBrowseButton")
        browse.setToolTip("Choose the folder")
        browse.clicked.connect(self._browse)
        self.formatCombo = QComboBox(self)
        self.formatCombo.setObjectName("exportFormatCombo")
        self.formatCombo.setToolTip(
            "The format of every copy; each keeps its prompt and settings in it"
            if with_parameters
            else "The format of every copy (the pixels alone, without their prompt and settings)"
        )
        for name in spec.OUTPUT_FORMATS:
            self.formatCombo.addItem(FORMAT_NAMES.get(name, name), name)
        self.formatCombo.setCurrentIndex(max(0, self.formatCombo.findData(spec.normalize_output_format(fmt) or "PNG")))
        self.problem = QLabel(self)
        self.problem.setObjectName("exportProblem")
        self.problem.setWordWrap(True)
        set_role(self.problem, "error")
        self.problem.hide()

        where = QHBoxLayout()
        where.addWidget(self.folderEdit, 1)
        where.addWidget(browse)
        form = QFormLayout()
        folder_label = QLabel("&Folder", self)  # a row of a layout gets no buddy of its own
        folder_label.setBuddy(self.folderEdit)
        form.addRow(folder_label, where)
        form.addRow("F&ormat", self.formatCombo)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.exportButton = buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.exportButton.setDefault(True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.problem)
        lay.addWidget(buttons)
        self.folderEdit.textChanged.connect(lambda _text: self.problem.hide())

    def _browse(self) -> None:
        start = str(self.folder()) if self.folderEdit.text().strip() else str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, self.windowTitle(), start)
        if folder:
            self.folderEdit.setText(folder)

    def folder(self) -> Path:
        return Path(os.path.expanduser(self.folderEdit.text().strip()))

    def format(self) -> str:
        return str(self.formatCombo.currentData())

    def accept(self) -> None:
        """Only a folder that is there (and can be written in) closes the dialog; otherwise
        it says why, and stays."""
        problem = self._problem()
        if problem is not None:
            self.problem.setText(problem)
            self.problem.show()
            self.folderEdit.setFocus()
            return
        super().accept()

    def _problem(self) -> str | None:
        """Why the folder typed cannot be exported into, in one sentence; None when it can."""
        if not self.folderEdit.text().strip():
            return "Choose a folder to export into."
        folder = self.folder()
        where = shortened(str(folder))
        if not folder.is_absolute():  # from where the app was started: a folder no one meant
            return f"Give the whole path of the folder (“{where}” is only part of one), or choose it with Browse."
        try:
            if not folder.is_dir():
                return f"{where} is not a folder on this computer; choose another."
            writable = os.access(folder, os.W_OK | os.X_OK)
        except (OSError, ValueError) as exc:  # a name too long, a folder that may not be looked in
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            return f"{where} cannot be used as a folder ({why}); choose another."
        return None if writable else f"{where} cannot be written in; choose another folder."

    def chosen(self) -> tuple[Path, str]:
        """The folder and the format (PNG, JPG or WEBP)."""
        return self.folder(), self.format()

    @staticmethod
    def ask(
        count: int, folder: str, fmt: str, *, with_parameters: bool = True, parent: QWidget | None = None
    ) -> tuple[Path, str] | None:
        """Show the dialog and wait: the folder and format chosen, or None (cancelled)."""
        dialog = ExportDialog(count, folder, fmt, with_parameters=with_parameters, parent=parent)
        try:
            return dialog.chosen() if dialog.exec() == QDialog.DialogCode.Accepted else None
        finally:
            dialog.deleteLater()

"""Guards against known defects of the Qt binding that would crash a long session."""

from __future__ import annotations

import sys

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import QListView
from pytestqt.qtbot import QtBot


class _Model(QAbstractListModel):
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else 60

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> object:
        return "x" if role == Qt.ItemDataRole.DisplayRole else None


def test_painting_an_item_view_does_not_lose_references_to_none(qtbot: QtBot) -> None:
    # PySide6 6.12.0 dropped a reference to None each time a view asked the model for a
    # role it answers with None; on Python < 3.12 that ends in "Fatal Python error:
    # none_dealloc" after enough repaints. The gallery repaints all day long.
    view = QListView()
    qtbot.addWidget(view)
    model = _Model(view)
    view.setModel(model)
    view.resize(300, 300)
    view.show()
    qtbot.waitExposed(view)
    before = sys.getrefcount(None)
    for _ in range(200):
        view.viewport().repaint()
    for _ in range(200):
        QModelIndex().data(Qt.ItemDataRole.DisplayRole)
    assert sys.getrefcount(None) >= before

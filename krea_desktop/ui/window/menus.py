"""The items of the main window's menus, and the window-wide shortcuts they carry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6 import QtCore
from PySide6.QtGui import QAction, QKeySequence

if TYPE_CHECKING:
    from krea_desktop.ui.window.main_window import MainWindow


def fill_menus(window: MainWindow) -> None:
    """Fill the menus the window made empty (File, Edit, Gallery, Generate): part of
    ``MainWindow.build_rest``, as the tray and the gallery's actions they use are there."""
    from krea_desktop.external import open_path_or_url

    file_menu = window.menus["file"]
    window.settings_action = QAction("&Settings…", window)
    window.settings_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Preferences))
    if window.settings_action.shortcut().isEmpty():
        window.settings_action.setShortcut(QKeySequence("Ctrl+,"))
    window.settings_action.triggered.connect(window.open_settings)
    file_menu.addAction(window.settings_action)
    open_folder = QAction("Open &library folder", window)
    open_folder.triggered.connect(lambda: open_path_or_url(window.library.images_dir))
    file_menu.addAction(open_folder)
    file_menu.addSeparator()
    quit_action = QAction("&Quit", window)
    quit_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Quit))
    if quit_action.shortcut().isEmpty():
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))
    quit_action.triggered.connect(window.close)
    file_menu.addAction(quit_action)

    edit_menu = window.menus["edit"]
    # One window-wide Ctrl+V: a text field that has the focus takes it first (and pastes
    # text); anywhere else it adds the clipboard's image as a reference. The prompt lets
    # it through when the clipboard holds an image and no text (PromptPanel.eventFilter).
    window.paste_action = QAction("&Paste image as reference", window)
    window.paste_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Paste))
    window.paste_action.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
    window.paste_action.triggered.connect(window.tray.paste_from_clipboard)
    edit_menu.addAction(window.paste_action)

    edit_menu.addSeparator()
    edit_menu.addAction(window.gallery_actions.undo_action)
    edit_menu.addAction(window.gallery_actions.focus_search_action)

    gallery_menu = window.menus["gallery"]
    window.gallery_actions.fill_menu(gallery_menu)  # every gallery action, the toolbar's too
    for action in window.gallery_actions.window_actions():
        window.addAction(action)

    gen_menu = window.menus["generate"]
    window.generate_action = QAction("&Generate", window)
    window.generate_action.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
    window.generate_action.triggered.connect(window.generate)
    gen_menu.addAction(window.generate_action)
    window.cancel_action = QAction("&Cancel newest job", window)
    window.cancel_action.setShortcut(QKeySequence(QtCore.Qt.Key.Key_Escape))
    window.cancel_action.triggered.connect(window.cancel_newest)
    gen_menu.addAction(window.cancel_action)
    cancel_all = QAction("Cancel &all jobs", window)
    cancel_all.triggered.connect(lambda: window.cancel_all_jobs() if window.built else None)
    gen_menu.addAction(cancel_all)
    # Offered when there is something to cancel, as the Cancel button beside Generate is.
    _EnabledAsButton(window.cancel_button, [window.cancel_action, cancel_all])  # the button owns it
    gen_menu.addSeparator()
    window.sweep_action = QAction("S&weep…", window)
    window.sweep_action.setShortcuts([QKeySequence("Ctrl+Shift+Return"), QKeySequence("Ctrl+Shift+Enter")])
    window.sweep_action.setToolTip("Try a row or grid of strengths, creativity levels or seeds, one image per cell")
    window.sweep_action.triggered.connect(lambda: window.open_sweep())
    gen_menu.addAction(window.sweep_action)
    window.addAction(window.sweep_action)
    window.recent_sweeps_menu = gen_menu.addMenu("Recent s&weeps")
    window.recent_sweeps_menu.aboutToShow.connect(lambda: window.sweeps.fill_recent(window.recent_sweeps_menu))
    window_wide = (
        window.settings_action,
        window.generate_action,
        window.cancel_action,
        quit_action,
        window.paste_action,
    )
    for action in window_wide:
        window.addAction(action)


class _EnabledAsButton(QtCore.QObject):
    """Keeps ``actions`` enabled exactly when ``button`` is."""

    def __init__(self, button: QtCore.QObject, actions: list[QAction]) -> None:
        super().__init__(button)
        self._actions = actions
        self._follow(button)
        button.installEventFilter(self)

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:
        if event.type() == QtCore.QEvent.Type.EnabledChange:
            self._follow(watched)
        return False

    def _follow(self, button: QtCore.QObject) -> None:
        enabled = bool(button.property("enabled"))
        for action in self._actions:
            action.setEnabled(enabled)

"""Settings: the API key (tested, then kept in the keyring), the endpoint, the data folder."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from krea_desktop import config, keystore
from krea_desktop.api import spec
from krea_desktop.api.endpoint import endpoint_problem
from krea_desktop.api.errors import KreaError
from krea_desktop.api.request import without_credentials
from krea_desktop.external import open_path_or_url
from krea_desktop.ui.background import BackgroundRunner
from krea_desktop.ui.theme import set_role
from krea_desktop.user_words import IN_THE_ENVIRONMENT, where_the_key_is
from krea_desktop.wording import within

TestKey = Callable[[str, str], Awaitable[None]]
ENV_ENDPOINT = config.API_ENDPOINT.env or ""  # RUNWARE_API_URL: overrides the endpoint stored here
TEST_TIMEOUT_S = 60.0
PREFERRED_WIDTH = 560
MINIMUM_WIDTH = 460  # narrower, the wrapped messages grow taller than a screen needs
_UNSET: Any = object()
# How long opening the dialog waits for the key store: a keyring that answers within it
# opens the dialog as it always did; a slower one (locked, asking for its password, or
# hung) is waited for with the dialog open, the key field saying so.
KEYRING_WAIT_S = 0.15
KEYRING_WAITING = "Asking the system keyring for the stored key…"
KEYRING_WAITING_NOTE = (
    "Waiting for the system keyring to give the stored key (it may be asking for its password); "
    "it shows here once the keyring answers."
)


class KeyringCall:
    """``work()`` on a daemon thread (a keyring that never answers is left behind when the
    process ends): its :attr:`value`, or the :attr:`error` it raised, once :attr:`done`.
    The thread touches no Qt object: the dialog polls :attr:`done`."""

    def __init__(self, work: Callable[[], Any], name: str) -> None:
        self._work = work
        self._done = threading.Event()
        self.value: Any = None
        self.error: Exception | None = None
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def _run(self) -> None:
        try:
            self.value = self._work()
        except Exception as exc:
            self.error = exc
        finally:
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout_s: float) -> bool:
        return self._done.wait(timeout_s)


def read_store(data_dir: Path) -> tuple[str | None, str, bool]:
    """The stored key, where it is kept (a sentence), and whether that is the private
    file; a backend failing in its own way reads as no key, its place unreadable. With no
    key for want of reading one (a locked keyring, a key file that holds no key), the
    sentence says so: the field is empty, but the key may well be there."""
    try:
        key, problem = keystore.find_stored_key(data_dir)
    except Exception:
        key, problem = None, keystore.KEYRING_UNREADABLE
    if problem is not None:
        return None, problem, False
    try:
        return key, keystore.backend_description(data_dir), keystore.is_fallback(data_dir)
    except Exception:
        return key, keystore.KEYRING_UNREADABLE, False


def store_key(key: str, data_dir: Path) -> str:
    """``key`` stored (removed, when empty); returns it. Raises KeyStoreError."""
    if key:
        keystore.save_key(key, data_dir)
    else:
        keystore.delete_key(data_dir)
    return key


KEYRING_SAVING = "Storing the key in the system keyring (it may be asking for its password)…"


__all__ = ["SettingsDialog", "endpoint_problem"]  # endpoint_problem: the api's one endpoint rule


class SettingsDialog(QDialog):
    """Edits the API key and endpoint; on OK stores the key (see :mod:`krea_desktop.keystore`).

    ``test_key(key, endpoint)`` is awaited when "Test key" is pressed and raises
    ``KreaError`` with a one-sentence message when the key does not work. It runs on the
    running asyncio loop (qasync) when there is one, else on a worker thread.
    """

    keyChanged = Signal(bool)  # after OK: True when a key is now stored, False when it was removed
    endpointChanged = Signal(str)
    keyTested = Signal(bool)  # a test finished: whether the key works

    def __init__(
        self,
        *,
        data_dir: Path,
        test_key: TestKey | None = None,
        endpoint: str = spec.DEFAULT_API_URL,
        current_key: str | None = _UNSET,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Settings")
        self._data_dir = Path(data_dir)
        self._test_key = test_key
        self._task: asyncio.Task[None] | None = None
        self._test_generation = 0
        self._testing = False
        self._runner: BackgroundRunner | None = None
        # The stored key (unless given): read beside the GUI thread, so that a keyring
        # slow to answer never freezes the window.
        self._stored: KeyringCall | None = None  # the stored key, still awaited
        self._saving: KeyringCall | None = None  # the key being stored, after OK
        description: str | None = None  # where the key is kept
        fallback = False
        if current_key is _UNSET:
            stored = KeyringCall(lambda: read_store(self._data_dir), "krea-keyring-settings")
            if stored.wait(KEYRING_WAIT_S):
                current_key, description, fallback = stored.value
            else:
                self._stored, current_key, description = stored, None, KEYRING_WAITING_NOTE
        if description is None:  # a key given by the caller
            description = keystore.backend_description(self._data_dir)
            fallback = keystore.is_fallback(self._data_dir)
        self._original_key = current_key or ""
        self._original_endpoint = endpoint

        # --- key
        self.keyEdit = QLineEdit(self._original_key, self)
        self.keyEdit.setObjectName("apiKeyEdit")
        self.keyEdit.setEchoMode(QLineEdit.EchoMode.Password)
        self.keyEdit.setPlaceholderText("Paste your Runware API key")
        self.keyEdit.setToolTip("Your Runware API key, from the API keys page of your Runware dashboard")
        self.keyEdit.setAccessibleName("API key")
        self.keyEdit.textChanged.connect(self._on_key_edited)
        self.showKeyCheck = QCheckBox("Show", self)
        self.showKeyCheck.setObjectName("showKeyCheck")
        self.showKeyCheck.setToolTip("Show the key as plain text")
        self.showKeyCheck.toggled.connect(self._on_show_toggled)
        self.testKeyButton = QPushButton("Test key", self)
        self.testKeyButton.setObjectName("testKeyButton")
        self.testKeyButton.setToolTip("Check the key with the service at the endpoint below")
        self.testKeyButton.setEnabled(test_key is not None)
        self.testKeyButton.clicked.connect(self.start_test)
        self.forgetKeyButton = QPushButton("Remove key", self)
        self.forgetKeyButton.setObjectName("forgetKeyButton")
        self.forgetKeyButton.setToolTip("Remove the stored key when you press OK (the app returns to demo mode)")
        self.forgetKeyButton.clicked.connect(self._forget_key)
        self._update_forget_button()
        self.testResultLabel = QLabel(self)
        self.testResultLabel.setObjectName("testResult")
        self.testResultLabel.setWordWrap(True)
        self.testResultLabel.setToolTip("The result of the last key test")
        self.testResultLabel.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.testResultLabel.hide()  # takes room only when it says something
        self.backendLabel = QLabel(description, self)
        self.backendLabel.setObjectName("keyBackendLabel")
        self.backendLabel.setWordWrap(True)
        set_role(self.backendLabel, "hint")
        self.backendLabel.setToolTip("Where the key is stored")
        self.fallbackWarning = QLabel(
            "⚠ No system keyring could be used: the key is kept in a private file that only your user "
            f"account can read, but that is not encrypted ({keystore.key_file(self._data_dir)}).",
            self,
        )
        self.fallbackWarning.setObjectName("keyFallbackWarning")
        self.fallbackWarning.setWordWrap(True)
        set_role(self.fallbackWarning, "warning")
        self.fallbackWarning.setToolTip(
            "Install or unlock a keyring (such as GNOME Keyring or KWallet) to store the key safely"
        )
        self.fallbackWarning.setVisible(fallback)
        self.backendLabel.setVisible(not fallback)  # the warning says where the key is
        self.envNotice = QLabel(
            f"{keystore.ENV_KEY} is set in the environment, so that key is used instead of the one stored here.",
            self,
        )
        self.envNotice.setObjectName("envKeyNotice")
        self.envNotice.setWordWrap(True)
        set_role(self.envNotice, "warning")
        self.envNotice.setToolTip(f"Unset {keystore.ENV_KEY} to use the stored key")
        self.envNotice.setVisible(bool(os.environ.get(keystore.ENV_KEY, "").strip()))

        # --- endpoint
        self.endpointEdit = QLineEdit(endpoint, self)
        self.endpointEdit.setObjectName("endpointEdit")
        self.endpointEdit.setToolTip(
            f"The Runware API address (default {spec.DEFAULT_API_URL}); http:// only for this computer"
        )
        self.endpointEdit.textChanged.connect(self._on_endpoint_edited)
        self.resetEndpointButton = QPushButton("Default", self)
        self.resetEndpointButton.setObjectName("resetEndpointButton")
        self.resetEndpointButton.setToolTip(f"Use the default endpoint, {spec.DEFAULT_API_URL}")
        self.resetEndpointButton.clicked.connect(lambda: self.endpointEdit.setText(spec.DEFAULT_API_URL))
        self.endpointError = QLabel(self)
        self.endpointError.setObjectName("endpointError")
        self.endpointError.setWordWrap(True)
        set_role(self.endpointError, "error")
        self.endpointError.setToolTip("What is wrong with the endpoint")
        self.endpointError.hide()
        env_url = os.environ.get(ENV_ENDPOINT, "").strip()
        env_problem = endpoint_problem(env_url) if env_url else None
        shown_url = without_credentials(env_url)  # a password written into it is not shown
        self.envEndpointNotice = QLabel(
            f"{ENV_ENDPOINT} is set in the environment ({shown_url}), so images are requested there "
            "whatever endpoint is entered here."
            if env_problem is None
            # One that breaks the endpoint rule is ignored, here as in the window.
            else f"{ENV_ENDPOINT} is set in the environment ({shown_url}) but not used, so images are "
            f"requested at the endpoint entered here: {within(env_problem)}.",
            self,
        )
        self.envEndpointNotice.setTextFormat(Qt.TextFormat.PlainText)  # an address is not markup
        self.envEndpointNotice.setObjectName("envEndpointNotice")
        self.envEndpointNotice.setWordWrap(True)
        set_role(self.envEndpointNotice, "warning")
        self.envEndpointNotice.setToolTip(
            f"Unset {ENV_ENDPOINT} to use the endpoint entered here"
            if env_problem is None
            else f"Correct or unset {ENV_ENDPOINT}"
        )
        self.envEndpointNotice.setVisible(bool(env_url))

        # --- data folder
        self.dataDirEdit = QLineEdit(str(self._data_dir), self)
        self.dataDirEdit.setObjectName("dataDirEdit")
        self.dataDirEdit.setReadOnly(True)
        self.dataDirEdit.setToolTip(
            f"Where images, the library and settings are kept (set {keystore.ENV_DATA_DIR} to move it)"
        )
        self.openFolderButton = QPushButton("Open folder", self)
        self.openFolderButton.setObjectName("openDataFolderButton")
        self.openFolderButton.setToolTip("Open the data folder in the file manager")
        self.openFolderButton.clicked.connect(self.open_data_folder)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, parent=self
        )
        self.buttons.setObjectName("buttonBox")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setToolTip("Save these settings")
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setToolTip("Close without changing anything")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        self._build_layout()
        self._fit_to_contents()
        self.resize(self.sizeHint())
        if self._stored is not None:
            self._await_stored_key()

    # --- the stored key, from a keyring slow to answer ------------------------------------

    def _await_stored_key(self) -> None:
        """The key field waits, saying so, until the keyring answers; the rest of the
        dialog (the endpoint, the folder) works meanwhile, and OK keeps the stored key."""
        self.keyEdit.setEnabled(False)
        self.keyEdit.setPlaceholderText(KEYRING_WAITING)
        self.testKeyButton.setEnabled(False)
        self.forgetKeyButton.setEnabled(False)
        assert self._stored is not None
        self._when_done(self._stored, self._stored_key_read)

    def _when_done(self, call: KeyringCall, then: Callable[[], None]) -> None:
        """``then()`` on the GUI thread once ``call`` is done (polled: nothing crosses
        from the thread to a dialog already gone)."""
        timer = QTimer(self)
        timer.setInterval(100)

        def check() -> None:
            if call.done:
                timer.stop()
                then()

        timer.timeout.connect(check)
        timer.start()

    def _stored_key_read(self) -> None:
        assert self._stored is not None
        key, description, fallback = self._stored.value
        self._stored = None
        self._original_key = key or ""
        self.keyEdit.setText(self._original_key)
        self.keyEdit.setPlaceholderText("Paste your Runware API key")
        self.keyEdit.setEnabled(True)
        self.testKeyButton.setEnabled(self._test_key is not None)
        self.backendLabel.setText(description)
        self.fallbackWarning.setVisible(fallback)
        self.backendLabel.setVisible(not fallback)
        self._update_forget_button()
        self._fit_to_contents()

    def _build_layout(self) -> None:
        # Each nested layout is put in its place before it is filled
        # (tests/ui/test_layout_items.py).
        layout = QVBoxLayout(self)
        # The window's minimum size is kept by _fit_to_contents (the layout's own ignores
        # the wrapped messages' height at the window's width).
        layout.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        key_box = QGroupBox("API key", self)
        layout.addWidget(key_box)
        key_form = QFormLayout(key_box)
        key_row = QHBoxLayout()
        key_form.addRow(key_row)
        key_row.addWidget(self.keyEdit, 1)
        key_row.addWidget(self.showKeyCheck)
        key_buttons = QHBoxLayout()
        key_form.addRow(key_buttons)
        key_buttons.addWidget(self.testKeyButton)
        key_buttons.addWidget(self.forgetKeyButton)
        key_buttons.addStretch(1)
        key_form.addRow(self.testResultLabel)
        key_form.addRow(self.backendLabel)
        key_form.addRow(self.fallbackWarning)
        key_form.addRow(self.envNotice)

        other = QFormLayout()
        layout.addLayout(other)
        endpoint_label = QLabel("&Endpoint", self)
        endpoint_label.setBuddy(self.endpointEdit)
        endpoint_row = QHBoxLayout()
        other.addRow(endpoint_label, endpoint_row)
        endpoint_row.addWidget(self.endpointEdit, 1)
        endpoint_row.addWidget(self.resetEndpointButton)
        other.addRow("", self.endpointError)
        other.addRow("", self.envEndpointNotice)
        folder_label = QLabel("Data folder", self)
        folder_label.setToolTip(self.dataDirEdit.toolTip())
        folder_label.setBuddy(self.dataDirEdit)  # what a screen reader names the field by
        folder_row = QHBoxLayout()
        other.addRow(folder_label, folder_row)
        folder_row.addWidget(self.dataDirEdit, 1)
        folder_row.addWidget(self.openFolderButton)
        layout.addStretch(1)
        layout.addWidget(self.buttons)

    # --- size ---------------------------------------------------------------------------------

    def _height_for(self, width: int) -> int:
        layout = self.layout()
        assert layout is not None
        layout.activate()
        height = layout.totalMinimumSize().height()
        if layout.hasHeightForWidth():
            height = max(height, layout.totalHeightForWidth(width))
        return height

    def sizeHint(self) -> QSize:
        width = max(PREFERRED_WIDTH, self.minimumWidth())
        return QSize(width, self._height_for(width))

    def minimumSizeHint(self) -> QSize:
        layout = self.layout()
        width = max(MINIMUM_WIDTH, layout.totalMinimumSize().width() if layout is not None else 0)
        return QSize(width, self._height_for(width))

    def _fit_to_contents(self) -> None:
        """Keep every row at its full height whatever is shown: the minimum size is the
        height the rows need at the narrowest width allowed (the wrapped messages are
        tallest there), and the window grows when what it shows needs more room."""
        minimum = self.minimumSizeHint()
        self.setMinimumSize(minimum)
        needed = self._height_for(self.width())
        if self.height() < needed:
            self.resize(self.width(), needed)

    def showEvent(self, event: QShowEvent) -> None:
        self._fit_to_contents()
        super().showEvent(event)

    # --- values ------------------------------------------------------------------------

    def apiKey(self) -> str:
        return self.keyEdit.text().strip()

    def endpoint(self) -> str:
        return self.endpointEdit.text().strip()

    # --- key ---------------------------------------------------------------------------

    def _on_show_toggled(self, shown: bool) -> None:
        self.keyEdit.setEchoMode(QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password)

    def _on_key_edited(self) -> None:
        self._update_forget_button()
        self._forget_result()

    def _forget_result(self) -> None:
        """The key or the endpoint changed: a test under way, or its result, was about
        what the fields held before, and says nothing of what they hold now."""
        if self.isTesting():
            self._cancel_test()
        self._set_result("", "hint")

    def _update_forget_button(self) -> None:
        """The Remove key button works only when a key is stored and its removal is not
        already pending (an empty field removes the stored key on OK)."""
        self.forgetKeyButton.setEnabled(bool(self._original_key.strip()) and bool(self.apiKey()))
        if where_the_key_is() == IN_THE_ENVIRONMENT:  # the stored key goes, the environment's stays
            self.forgetKeyButton.setToolTip(
                "Remove the stored key when you press OK (RUNWARE_API_KEY, set in the environment, is still used)"
            )

    def _forget_key(self) -> None:
        self.keyEdit.clear()
        self._set_result("The stored key will be removed when you press OK.", "warning")

    def _set_result(self, text: str, role: str) -> None:
        self.testResultLabel.setText(text)
        set_role(self.testResultLabel, role)
        self.testResultLabel.setVisible(bool(text))
        self._fit_to_contents()

    def isTesting(self) -> bool:
        return self._testing

    def start_test(self) -> None:
        """Test the key in the field against the endpoint in the field, without blocking."""
        if self._test_key is None or self.isTesting():
            return
        key = self.apiKey()
        endpoint = self.endpoint()
        if not key:
            self._set_result("Enter a key to test it.", "warning")
            return
        try:  # what OK would refuse is refused here in the same words, nothing sent
            keystore.clean_key(key)
        except keystore.KeyStoreError as exc:
            self._set_result(f"✗ {exc}", "error")
            return
        problem = endpoint_problem(endpoint)
        if problem:
            self._set_result("", "hint")  # one sentence: the endpoint's, not an older test's
            self._show_endpoint_problem(problem)
            return
        self._test_generation += 1
        generation = self._test_generation
        self._testing = True
        self.testKeyButton.setEnabled(False)
        self._set_result("Testing the key…", "hint")
        test = self._test_key
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            self._task = loop.create_task(self._run_test(test, key, endpoint, generation))
        else:
            if self._runner is None:
                self._runner = BackgroundRunner(parent=self)

            def work() -> None:
                asyncio.run(asyncio.wait_for(_call(test, key, endpoint), TEST_TIMEOUT_S))

            self._runner.submit(
                work,
                lambda _none: self._finish_test(generation, key, None),
                lambda error: self._finish_test(generation, key, error),
            )

    async def _run_test(self, test: TestKey, key: str, endpoint: str, generation: int) -> None:
        error: BaseException | None = None
        try:
            await asyncio.wait_for(_call(test, key, endpoint), TEST_TIMEOUT_S)
        except asyncio.CancelledError:
            return
        except Exception as exc:
            error = exc
        self._finish_test(generation, key, error)

    def _finish_test(self, generation: int, key: str, error: BaseException | None) -> None:
        if generation != self._test_generation:
            return  # a newer test, or the dialog closed
        self._task = None
        self._testing = False
        self.testKeyButton.setEnabled(True)
        if error is None:
            self._set_result("✓ The key works.", "ok")
            self.keyTested.emit(True)
            return
        if isinstance(error, KreaError):
            text = str(error)
        elif isinstance(error, (asyncio.TimeoutError, TimeoutError)):
            text = (
                f"The service did not answer within {TEST_TIMEOUT_S:g} seconds; check the endpoint and your connection."
            )
        else:
            text = f"The key could not be tested because of an unexpected error ({type(error).__name__})."
        if key and key in text:  # never show the key, even if a message quotes it
            text = text.replace(key, "•••")
        self._set_result(f"✗ {text}", "error")
        self.keyTested.emit(False)

    def _cancel_test(self) -> None:
        self._test_generation += 1
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._testing = False
        self.testKeyButton.setEnabled(self._test_key is not None)

    # --- endpoint ------------------------------------------------------------------------

    def _on_endpoint_edited(self) -> None:
        self.endpointError.hide()
        self._forget_result()
        self._fit_to_contents()

    def _show_endpoint_problem(self, problem: str) -> None:
        self.endpointError.setText(problem)
        self.endpointError.show()
        self._fit_to_contents()
        self.endpointEdit.setFocus()

    # --- data folder -----------------------------------------------------------------------

    def open_data_folder(self) -> bool:
        with contextlib.suppress(OSError):
            self._data_dir.mkdir(parents=True, exist_ok=True)
        ok = open_path_or_url(self._data_dir)
        if not ok:
            self._set_result(f"No file manager could open {self._data_dir}.", "warning")
        return bool(ok)

    # --- closing ------------------------------------------------------------------------------

    def accept(self) -> None:
        problem = endpoint_problem(self.endpoint())
        if problem:
            self._show_endpoint_problem(problem)
            return
        if self._saving is not None:
            return  # OK again while the key is being stored
        key = self.apiKey()
        # While the keyring has not said what it holds, the key is left as it is.
        key_changed = self._stored is None and key != self._original_key.strip()
        if not key_changed:
            self._accepted(None)
            return
        # Stored beside the GUI thread; a keyring that answers at once closes the dialog
        # as it always did, a slower one leaves it open saying so, its buttons waiting.
        saving = KeyringCall(lambda: store_key(key, self._data_dir), "krea-keyring-save")
        if saving.wait(KEYRING_WAIT_S):
            self._saved(saving)
            return
        self._saving = saving
        self.buttons.setEnabled(False)
        self.keyEdit.setEnabled(False)
        self._set_result(KEYRING_SAVING, "hint")
        self._when_done(saving, self._saving_done)

    def _saving_done(self) -> None:
        assert self._saving is not None
        saving, self._saving = self._saving, None
        self.buttons.setEnabled(True)
        self.keyEdit.setEnabled(True)
        self._saved(saving)

    def _saved(self, saving: KeyringCall) -> None:
        error = saving.error
        if isinstance(error, keystore.KeyStoreError):
            self._set_result(str(error), "error")
        elif error is not None:  # a backend failing in its own way
            self._set_result(f"The key could not be stored ({type(error).__name__}); try again.", "error")
        else:
            self._accepted(saving.value)

    def _accepted(self, stored: str | None) -> None:
        """Closed with OK: ``stored`` the key just stored ("" removed; None unchanged)."""
        self._cancel_test()
        super().accept()
        if stored is not None:
            self.keyChanged.emit(bool(stored))
        if self.endpoint() != self._original_endpoint:
            self.endpointChanged.emit(self.endpoint())

    def reject(self) -> None:
        if self._saving is not None:
            return  # the key is being stored: the dialog closes once it is
        self._cancel_test()
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._saving is not None:
            event.ignore()
            return
        self._cancel_test()
        super().closeEvent(event)


async def _call(test: TestKey, key: str, endpoint: str) -> None:
    await test(key, endpoint)

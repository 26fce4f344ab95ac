from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import keyring.backends.fail
import pytest
import qasync
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QLineEdit, QWidget
from pytestqt.qtbot import QtBot

from krea_desktop import keystore
from krea_desktop.api import endpoint, spec
from krea_desktop.api.errors import AuthenticationError
from krea_desktop.ui.dialogs.settings_dialog import SettingsDialog, endpoint_problem
from tests.helpers.endpoints import ENDPOINTS
from tests.helpers.keyrings import MemoryKeyring

KEY = "rw-abcdef0123456789"


@pytest.fixture
def run_async(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    loop = qasync.QEventLoop(qapp)
    yield loop
    loop.close()
    asyncio.set_event_loop(None)


def make(qtbot: QtBot, data_dir: Path, **kwargs: object) -> SettingsDialog:
    dialog = SettingsDialog(data_dir=data_dir, **kwargs)  # type: ignore[arg-type]
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_endpoint_rules() -> None:
    assert endpoint_problem(spec.DEFAULT_API_URL) is None
    assert endpoint_problem("http://127.0.0.1:8765/v1") is None
    assert endpoint_problem("http://localhost/v1") is None
    assert endpoint_problem("http://[::1]:9/v1") is None
    assert "https://" in (endpoint_problem("http://api.example.com/v1") or "")
    assert endpoint_problem("api.runware.ai") is not None
    assert endpoint_problem("ftp://127.0.0.1/") is not None
    # the client refuses these, so the dialog does too
    assert endpoint_problem("http://app.localhost:8765/v1") is not None
    assert endpoint_problem("https://user:pw@api.runware.ai/v1") is not None


def test_the_dialog_accepts_exactly_what_the_rule_accepts(
    qtbot: QtBot, data_dir: Path, memory_keyring: MemoryKeyring
) -> None:
    assert endpoint_problem is endpoint.endpoint_problem
    for url, _loopback, problem in ENDPOINTS:
        dialog = make(qtbot, data_dir, endpoint="https://start.example/v1")
        changed: list[str] = []
        dialog.endpointChanged.connect(changed.append)
        dialog.endpointEdit.setText(url)
        dialog.accept()
        if problem is None:
            assert not dialog.isVisible() and changed == [url.strip()], url
        else:
            assert dialog.isVisible() and dialog.endpointError.isVisible(), url
            assert dialog.endpointError.text() == problem, url
            assert changed == [], url
            dialog.reject()


def test_fields_and_defaults(qtbot: QtBot, data_dir: Path, memory_keyring: MemoryKeyring) -> None:
    dialog = make(qtbot, data_dir)
    assert dialog.keyEdit.echoMode() == QLineEdit.EchoMode.Password
    assert dialog.endpoint() == spec.DEFAULT_API_URL
    assert dialog.dataDirEdit.text() == str(data_dir)
    assert not dialog.testKeyButton.isEnabled()  # nothing to test with
    assert not dialog.fallbackWarning.isVisible() and not dialog.envNotice.isVisible()
    qtbot.mouseClick(dialog.showKeyCheck, Qt.MouseButton.LeftButton)
    assert dialog.keyEdit.echoMode() == QLineEdit.EchoMode.Normal


def test_ok_stores_the_key_in_the_keyring(qtbot: QtBot, data_dir: Path, memory_keyring: MemoryKeyring) -> None:
    dialog = make(qtbot, data_dir)
    dialog.keyEdit.setText(f"  {KEY} ")
    with qtbot.waitSignal(dialog.keyChanged) as signal:
        dialog.accept()
    assert signal.args == [True]
    assert keystore.load_key(data_dir) == KEY
    assert dialog.result() == dialog.DialogCode.Accepted

    again = make(qtbot, data_dir)
    assert again.apiKey() == KEY
    qtbot.mouseClick(again.forgetKeyButton, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(again.keyChanged) as signal:
        again.accept()
    assert signal.args == [False] and keystore.load_key(data_dir) is None


def test_a_keyring_slow_to_answer_never_holds_the_dialog_up(
    qtbot: QtBot, data_dir: Path, monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> None:
    """Opening Settings read the stored key on the GUI thread: a locked or hung keyring
    froze the window until it answered (D-Bus gives up after 25 s)."""
    import threading

    from krea_desktop.ui.dialogs import settings_dialog

    keystore.save_key(KEY, data_dir)
    release = threading.Event()
    real_load, real_find = keystore.load_key, keystore.find_stored_key

    def slow_find(folder: Path | None = None) -> tuple[str | None, str | None]:
        release.wait(30)
        return real_find(folder)

    monkeypatch.setattr(keystore, "find_stored_key", slow_find)
    dialog = make(qtbot, data_dir)  # returns though the keyring has not answered
    assert not dialog.keyEdit.isEnabled() and dialog.keyEdit.text() == ""
    assert dialog.keyEdit.placeholderText() == settings_dialog.KEYRING_WAITING
    assert dialog.backendLabel.text() == settings_dialog.KEYRING_WAITING_NOTE
    assert not dialog.forgetKeyButton.isEnabled()
    # The endpoint can be changed meanwhile, and OK then leaves the stored key alone.
    dialog.endpointEdit.setText("http://127.0.0.1:9/v1")
    stored: list[bool] = []
    dialog.keyChanged.connect(stored.append)
    with qtbot.waitSignal(dialog.endpointChanged):
        dialog.accept()
    assert stored == []
    release.set()
    assert real_load(data_dir) == KEY

    # Opened again, the keyring answering late: the key comes into the field then.
    release.clear()
    again = make(qtbot, data_dir)
    assert not again.keyEdit.isEnabled()
    release.set()
    qtbot.waitUntil(again.keyEdit.isEnabled)
    assert again.apiKey() == KEY and again.forgetKeyButton.isEnabled()
    assert (
        "system keyring" in again.backendLabel.text()
        and again.backendLabel.text() != settings_dialog.KEYRING_WAITING_NOTE
    )


def test_a_keyring_slow_to_store_the_key_leaves_the_dialog_waiting_not_the_window_frozen(
    qtbot: QtBot, data_dir: Path, monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> None:
    """OK stored the key on the GUI thread: a keyring asking for its password, or hung,
    froze the window until it answered."""
    import threading

    from krea_desktop.ui.dialogs import settings_dialog

    release = threading.Event()
    real_save = keystore.save_key

    def slow_save(key: str, folder: Path | None = None) -> str:
        release.wait(30)
        return real_save(key, folder)

    monkeypatch.setattr(keystore, "save_key", slow_save)
    dialog = make(qtbot, data_dir, current_key="")
    dialog.keyEdit.setText(KEY)
    changed: list[bool] = []
    dialog.keyChanged.connect(changed.append)
    dialog.accept()  # returns though the keyring has not answered
    assert dialog.isVisible() and not dialog.buttons.isEnabled() and not dialog.keyEdit.isEnabled()
    assert dialog.testResultLabel.text() == settings_dialog.KEYRING_SAVING
    dialog.reject()  # Esc while it is stored: the dialog waits for it
    assert dialog.isVisible() and changed == []
    release.set()
    qtbot.waitUntil(lambda: not dialog.isVisible())
    assert changed == [True] and dialog.result() == dialog.DialogCode.Accepted
    assert keystore.load_key(data_dir) == KEY


def test_fallback_is_warned_about(
    qtbot: QtBot, data_dir: Path, monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())
    monkeypatch.setenv(keystore.ENV_KEY, "from-env")
    dialog = make(qtbot, data_dir, current_key=None)
    assert dialog.fallbackWarning.isVisible()
    assert dialog.envNotice.isVisible()
    dialog.keyEdit.setText(KEY)
    dialog.accept()
    assert (data_dir / keystore.KEY_FILE_NAME).read_text().strip() == KEY


def test_a_locked_keyring_is_said_beside_the_empty_key_field(
    qtbot: QtBot, data_dir: Path, memory_keyring: MemoryKeyring
) -> None:
    # The field was empty under "The key is kept in the system keyring (…)": the key
    # looked gone, when the keyring could not be read at all.
    from tests.helpers.keyrings import sealed_keyring_holding

    sealed = sealed_keyring_holding(KEY)
    dialog = make(qtbot, data_dir)
    qtbot.waitUntil(lambda: dialog.backendLabel.text() == keystore.KEYRING_UNREADABLE)
    assert dialog.keyEdit.text() == ""
    sealed.locked = False
    again = make(qtbot, data_dir)
    qtbot.waitUntil(lambda: again.keyEdit.text() == KEY)
    assert again.backendLabel.text().startswith("The key is kept in the system keyring")


def test_plain_http_endpoint_is_refused(qtbot: QtBot, data_dir: Path, memory_keyring: MemoryKeyring) -> None:
    dialog = make(qtbot, data_dir)
    changed: list[str] = []
    dialog.endpointChanged.connect(changed.append)
    dialog.endpointEdit.setText("http://api.example.com/v1")
    dialog.accept()
    assert dialog.isVisible() and dialog.endpointError.isVisible()
    assert "https://" in dialog.endpointError.text()
    dialog.endpointEdit.setText("http://127.0.0.1:8000/v1")
    assert not dialog.endpointError.isVisible()
    dialog.accept()
    assert not dialog.isVisible() and changed == ["http://127.0.0.1:8000/v1"]


def test_open_data_folder(
    qtbot: QtBot, data_dir: Path, monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> None:
    from krea_desktop.ui.dialogs import settings_dialog

    opened: list[object] = []  # the one helper that starts programs with the user's environment
    monkeypatch.setattr(settings_dialog, "open_path_or_url", lambda target: opened.append(target) or True)
    dialog = make(qtbot, data_dir)
    qtbot.mouseClick(dialog.openFolderButton, Qt.MouseButton.LeftButton)
    assert opened == [data_dir]


def test_key_test_on_the_running_loop(
    qtbot: QtBot, data_dir: Path, memory_keyring: MemoryKeyring, run_async: qasync.QEventLoop
) -> None:
    calls: list[tuple[str, str]] = []

    async def test_key(key: str, endpoint: str) -> None:
        calls.append((key, endpoint))
        await asyncio.sleep(0.01)
        if key != KEY:
            raise AuthenticationError(f"The service did not accept the key {key}; check it in your Runware dashboard.")

    dialog = make(qtbot, data_dir, test_key=test_key, current_key="wrong")

    async def press_and_wait() -> None:
        dialog.testKeyButton.click()
        assert dialog.isTesting() and not dialog.testKeyButton.isEnabled()
        while dialog.isTesting():
            await asyncio.sleep(0.01)

    run_async.run_until_complete(press_and_wait())
    assert calls == [("wrong", spec.DEFAULT_API_URL)]
    assert "did not accept" in dialog.testResultLabel.text()
    assert "wrong" not in dialog.testResultLabel.text()  # the key is never shown
    assert dialog.testKeyButton.isEnabled()

    dialog.keyEdit.setText(KEY)
    with qtbot.waitSignal(dialog.keyTested) as signal:
        run_async.run_until_complete(press_and_wait())
    assert signal.args == [True] and "works" in dialog.testResultLabel.text()


def test_a_test_result_is_only_ever_about_what_the_fields_hold(
    qtbot: QtBot, data_dir: Path, memory_keyring: MemoryKeyring, run_async: qasync.QEventLoop
) -> None:
    """A key edited while its test ran showed "✓ The key works." for the new key, never
    tested; an endpoint edited after a test kept the old result beside it."""
    release = asyncio.Event()

    async def test_key(key: str, endpoint: str) -> None:
        await release.wait()  # answers once told to: after the key has been edited

    dialog = make(qtbot, data_dir, test_key=test_key, current_key="good-key")
    tested: list[bool] = []
    dialog.keyTested.connect(tested.append)

    async def edit_while_testing(edit: Any) -> None:
        release.clear()
        dialog.testKeyButton.click()
        assert dialog.isTesting()
        edit()
        release.set()
        for _ in range(10):
            await asyncio.sleep(0.01)

    run_async.run_until_complete(edit_while_testing(lambda: dialog.keyEdit.setText("bad-key")))
    assert not dialog.isTesting() and dialog.testKeyButton.isEnabled()
    assert dialog.testResultLabel.text() == "" and tested == []
    run_async.run_until_complete(edit_while_testing(lambda: dialog.endpointEdit.setText("http://127.0.0.1:9/v1")))
    assert dialog.testResultLabel.text() == "" and tested == []
    # A result, then the endpoint changed: the result goes.
    release.set()

    async def test_once() -> None:
        dialog.testKeyButton.click()
        while dialog.isTesting():
            await asyncio.sleep(0.01)

    run_async.run_until_complete(test_once())
    assert dialog.testResultLabel.text() == "✓ The key works."
    dialog.endpointEdit.setText("http://127.0.0.1:10/v1")
    assert dialog.testResultLabel.text() == "" and not dialog.testResultLabel.isVisible()
    # A refused endpoint: its sentence alone, no older result beside it.
    run_async.run_until_complete(test_once())
    dialog.endpointEdit.blockSignals(True)
    dialog.endpointEdit.setText("ftp://127.0.0.1/v1")
    dialog.endpointEdit.blockSignals(False)
    dialog.testKeyButton.click()
    assert dialog.endpointError.isVisibleTo(dialog) and not dialog.testResultLabel.isVisibleTo(dialog)


def test_an_endpoint_from_the_environment_is_said_to_win(
    qtbot: QtBot, data_dir: Path, monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> None:
    monkeypatch.setenv("RUNWARE_API_URL", "http://127.0.0.1:8765/v1")
    dialog = make(qtbot, data_dir, current_key=KEY, endpoint="http://127.0.0.1:8765/v1")
    assert dialog.envEndpointNotice.isVisibleTo(dialog)
    assert "RUNWARE_API_URL" in dialog.envEndpointNotice.text()
    monkeypatch.setenv("RUNWARE_API_URL", "ftp://nowhere/")  # refused, so not the one used: said so
    refused = make(qtbot, data_dir, current_key=KEY)
    assert refused.envEndpointNotice.isVisibleTo(refused)
    said = refused.envEndpointNotice.text()
    assert "RUNWARE_API_URL" in said and "ftp://nowhere/" in said and "not used" in said
    assert "must be a web address" in said and said.count(". ") == 0  # why, in one sentence
    monkeypatch.setenv("RUNWARE_API_URL", "https://me:secret@<b>api.example</b>/v1")
    marked = make(qtbot, data_dir, current_key=KEY)
    assert marked.envEndpointNotice.textFormat() == Qt.TextFormat.PlainText  # shown as written, never as markup
    assert "secret" not in marked.envEndpointNotice.text() and "<b>api.example</b>" in marked.envEndpointNotice.text()
    monkeypatch.delenv("RUNWARE_API_URL")
    unset = make(qtbot, data_dir, current_key=KEY)
    assert not unset.envEndpointNotice.isVisibleTo(unset)


def test_key_test_without_a_loop_runs_on_a_worker(qtbot: QtBot, data_dir: Path, memory_keyring: MemoryKeyring) -> None:
    async def test_key(key: str, endpoint: str) -> None:
        await asyncio.sleep(0)
        raise AuthenticationError("The service did not accept this API key.")

    dialog = make(qtbot, data_dir, test_key=test_key, current_key=KEY)
    with qtbot.waitSignal(dialog.keyTested, timeout=5000) as signal:
        qtbot.mouseClick(dialog.testKeyButton, Qt.MouseButton.LeftButton)
    assert signal.args == [False]
    assert dialog.testResultLabel.text() == "✗ The service did not accept this API key."


def test_key_test_needs_a_key_and_a_good_endpoint(qtbot: QtBot, data_dir: Path, memory_keyring: MemoryKeyring) -> None:
    called: list[str] = []

    async def test_key(key: str, endpoint: str) -> None:
        called.append(key)

    dialog = make(qtbot, data_dir, test_key=test_key, current_key="")
    dialog.start_test()
    assert "Enter a key" in dialog.testResultLabel.text()
    dialog.keyEdit.setText(KEY)
    dialog.endpointEdit.setText("http://example.com/v1")
    dialog.start_test()
    assert dialog.endpointError.isVisible() and called == [] and not dialog.isTesting()
    # A key OK would refuse is refused by Test key in the same words, and not sent.
    dialog.endpointEdit.setText(spec.DEFAULT_API_URL)
    dialog.keyEdit.setText("rw-two words")
    dialog.start_test()
    assert dialog.testResultLabel.text() == (
        "✗ The API key contains spaces or line breaks; paste it again as a single word."
    )
    assert called == [] and not dialog.isTesting()


def visible_children(widget: QWidget) -> list[QWidget]:
    return [
        child
        for child in widget.findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly)
        if child.isVisible() and not child.isWindow()
    ]


def assert_laid_out(dialog: SettingsDialog) -> None:
    """No visible widget overlaps a visible sibling, none sticks out of its parent, and
    each is as tall as it needs to be at its width (wrapped text included)."""
    QApplication.processEvents()
    parents = [dialog, *dialog.findChildren(QWidget)]
    for parent in parents:
        if not parent.isVisible():
            continue
        children = visible_children(parent)
        for first, second in itertools.combinations(children, 2):
            assert not first.geometry().intersects(second.geometry()), (
                f"{first.objectName() or type(first).__name__} {first.geometry()} overlaps "
                f"{second.objectName() or type(second).__name__} {second.geometry()}"
            )
        for child in children:
            name = child.objectName() or type(child).__name__
            assert parent.rect().contains(child.geometry()), f"{name} {child.geometry()} outside {parent.rect()}"
            needed = child.heightForWidth(child.width()) if child.hasHeightForWidth() else -1
            needed = max(needed, child.minimumSizeHint().height())
            assert child.height() >= needed, f"{name} is {child.height()} px tall, needs {needed}"


def test_an_endpoint_error_keeps_the_layout(
    qtbot: QtBot, data_dir: Path, monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> None:
    monkeypatch.setenv(keystore.ENV_KEY, "from-env")  # one more wrapped notice on show
    dialog = make(qtbot, data_dir, current_key=KEY)
    qtbot.waitExposed(dialog)
    assert dialog.envNotice.isVisible()
    assert_laid_out(dialog)
    dialog.endpointEdit.setText("http://api.example.com/v1")
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()  # refused: the error shows
    assert dialog.isVisible() and dialog.endpointError.isVisible()
    dialog._set_result(  # a long key-test message at the same time
        "✗ The service did not answer within 60 seconds; check the endpoint and your connection.", "error"
    )
    assert_laid_out(dialog)
    QApplication.processEvents()
    assert dialog.height() >= dialog.minimumSizeHint().height()
    assert dialog.width() >= dialog.minimumSizeHint().width()
    assert dialog.height() >= dialog.sizeHint().height()

    dialog.resize(1, 1)  # as small as the window may be made
    assert dialog.width() >= dialog.minimumSizeHint().width() and dialog.height() >= dialog.minimumSizeHint().height()
    assert_laid_out(dialog)

    dialog.endpointEdit.setText(spec.DEFAULT_API_URL)  # the error goes, the rows stay whole
    assert not dialog.endpointError.isVisible()
    assert_laid_out(dialog)


def test_remove_key_needs_a_stored_key(qtbot: QtBot, data_dir: Path, memory_keyring: MemoryKeyring) -> None:
    empty = make(qtbot, data_dir)
    assert not empty.forgetKeyButton.isEnabled()
    empty.keyEdit.setText(KEY)  # typed, not yet stored: nothing to remove
    assert not empty.forgetKeyButton.isEnabled()
    empty.accept()
    assert keystore.load_key(data_dir) == KEY

    stored = make(qtbot, data_dir)
    assert stored.forgetKeyButton.isEnabled()
    qtbot.mouseClick(stored.forgetKeyButton, Qt.MouseButton.LeftButton)
    assert stored.apiKey() == "" and not stored.forgetKeyButton.isEnabled()  # removal pending
    stored.accept()
    assert keystore.load_key(data_dir) is None
    assert not make(qtbot, data_dir).forgetKeyButton.isEnabled()

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import keyring.errors
import pytest

from krea_desktop import keystore
from tests.helpers.keyrings import LockedKeyring, MemoryKeyring, SealedKeyring

KEY = "rw-0123456789abcdefABCDEF"


@pytest.fixture(autouse=True)
def _isolated(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(keystore.ENV_KEY, raising=False)
    previous = keyring.get_keyring()
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def memory() -> MemoryKeyring:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    return backend


@pytest.fixture
def no_keyring() -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())


def test_keyring_round_trip(memory: MemoryKeyring, data_dir: Path) -> None:
    assert keystore.load_key() is None
    keystore.save_key(f"  {KEY}\n")
    assert memory.store[(keystore.SERVICE, keystore.USERNAME)] == KEY
    assert keystore.load_key() == KEY
    assert keystore.key_source() == "keyring"
    assert not keystore.is_fallback()
    assert "system keyring" in keystore.backend_description()
    assert not (data_dir / keystore.KEY_FILE_NAME).exists()
    keystore.delete_key()
    assert keystore.load_key() is None
    keystore.delete_key()  # forgetting twice is fine


def test_fallback_file_when_there_is_no_keyring(no_keyring: None, data_dir: Path) -> None:
    assert keystore.is_fallback()
    keystore.save_key(KEY)
    path = data_dir / keystore.KEY_FILE_NAME
    assert path.read_text().strip() == KEY
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keystore.load_key() == KEY
    assert keystore.key_source() == "file"
    assert "only you can read" in keystore.backend_description()
    assert KEY not in keystore.backend_description()
    assert [p.name for p in data_dir.iterdir()] == [keystore.KEY_FILE_NAME]  # no temporary file left
    keystore.delete_key()
    assert not path.exists()
    assert keystore.load_key() is None


def test_loose_permissions_are_tightened(no_keyring: None, data_dir: Path) -> None:
    path = data_dir / keystore.KEY_FILE_NAME
    path.write_text(KEY)
    path.chmod(0o644)
    assert keystore.load_key() == KEY
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_locked_keyring_falls_back_and_a_working_one_takes_over(data_dir: Path) -> None:
    keyring.set_keyring(LockedKeyring())
    keystore.save_key(KEY)
    assert (data_dir / keystore.KEY_FILE_NAME).exists()
    assert keystore.is_fallback()
    assert keystore.load_key() == KEY
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    keystore.save_key(KEY + "2")
    assert not (data_dir / keystore.KEY_FILE_NAME).exists()  # no plain-text copy left behind
    assert keystore.load_key() == KEY + "2"


def test_environment_overrides_the_stored_key(memory: MemoryKeyring, monkeypatch: pytest.MonkeyPatch) -> None:
    keystore.save_key(KEY)
    monkeypatch.setenv(keystore.ENV_KEY, " from-env ")
    assert keystore.effective_key() == "from-env"
    assert keystore.key_source() == "environment"
    assert keystore.load_key() == KEY
    monkeypatch.setenv(keystore.ENV_KEY, "")
    assert keystore.effective_key() == KEY


def test_bad_keys_are_refused_without_echoing_them(memory: MemoryKeyring) -> None:
    for bad in ("", "   ", "two words", "line\nbreak", "\u201csk-secret\u201d", "sk\u00a0secret"):
        with pytest.raises(keystore.KeyStoreError) as info:
            keystore.save_key(bad)
        assert (bad.strip() or "@@") not in str(info.value)
    assert memory.store == {}


def test_unwritable_folder_is_reported_without_the_key(no_keyring: None, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(keystore.KeyStoreError) as info:
        keystore.save_key(KEY, blocker / "sub")
    assert KEY not in str(info.value)


def test_default_data_dir_follows_the_environment(data_dir: Path) -> None:
    assert keystore.default_data_dir() == data_dir
    assert keystore.key_file() == data_dir / keystore.KEY_FILE_NAME


class ReadOnlyKeyring(MemoryKeyring):
    """A keyring that still gives the key it holds but takes no change (locked after it
    was unlocked once)."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.KeyringLocked("the collection is locked")

    def delete_password(self, service: str, username: str) -> None:
        raise keyring.errors.KeyringLocked("the collection is locked")


def test_a_new_key_is_used_when_the_keyring_still_holds_the_old_one(data_dir: Path) -> None:
    """Before, the keyring was read first: the key the user had just entered went to the
    file and was never used, even once the keyring was unlocked again."""
    backend = ReadOnlyKeyring()
    backend.store[(keystore.SERVICE, keystore.USERNAME)] = KEY
    keyring.set_keyring(backend)
    keystore.save_key(KEY + "new")
    assert keystore.effective_key() == KEY + "new"
    assert keystore.key_source() == "file"
    unlocked = MemoryKeyring()
    unlocked.store = backend.store  # the same keyring, unlocked: it still holds the old key
    keyring.set_keyring(unlocked)
    assert keystore.effective_key() == KEY + "new"


def test_a_key_the_keyring_will_not_let_go_is_said_to_be_still_in_use(data_dir: Path) -> None:
    backend = ReadOnlyKeyring()
    backend.store[(keystore.SERVICE, keystore.USERNAME)] = KEY
    keyring.set_keyring(backend)
    with pytest.raises(keystore.KeyStoreError, match="still in use"):
        keystore.delete_key()
    assert keystore.effective_key() == KEY  # as said: removing it did not happen
    keyring.set_keyring(MemoryKeyring())
    keystore.delete_key()  # nothing held anywhere: nothing to say


def test_a_removal_the_keyring_refuses_keeps_the_newer_key_in_use(data_dir: Path) -> None:
    # The keyring reads but takes no change, and holds an old key; the new one went to the
    # private file. Remove key deleted the file, then said the keyring refused: the key in
    # use became the old one (revoked, perhaps), while the window went on with the new.
    backend = ReadOnlyKeyring()
    backend.store[(keystore.SERVICE, keystore.USERNAME)] = KEY
    keyring.set_keyring(backend)
    assert keystore.save_key(KEY + "new") == "file"
    with pytest.raises(keystore.KeyStoreError, match="still in use"):
        keystore.delete_key()
    assert keystore.effective_key() == KEY + "new" and keystore.key_source() == "file"
    keyring.set_keyring(MemoryKeyring())  # one that lets go: both go
    keystore.delete_key()
    assert keystore.effective_key() is None and not keystore.key_file(data_dir).exists()


def test_removing_the_key_from_a_file_beside_a_locked_keyring_removes_the_file(data_dir: Path) -> None:
    # A keyring locked altogether is why the key went to the file: Remove key must take it
    # from there, and say the keyring may still hold one of its own.
    sealed = SealedKeyring()
    keyring.set_keyring(sealed)
    assert keystore.save_key(KEY) == "file"
    with pytest.raises(keystore.KeyStoreError, match="may still be in it"):
        keystore.delete_key()
    assert not keystore.key_file(data_dir).exists()
    sealed.locked = False
    assert keystore.effective_key() is None


def test_a_new_key_that_cannot_be_kept_anywhere_leaves_the_old_one(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A keyring that refuses the new key but lets the old one go, and a disk too full for
    the file: the old key was removed first, and no key was left at all."""

    class RefusesNewKeys(MemoryKeyring):
        def set_password(self, service: str, username: str, password: str) -> None:
            raise keyring.errors.KeyringLocked("the collection is locked")

    backend = RefusesNewKeys()
    backend.store[(keystore.SERVICE, keystore.USERNAME)] = KEY
    keyring.set_keyring(backend)

    def full(*_a: object, **_k: object) -> None:
        raise keystore.KeyStoreError("The API key could not be saved; the disk is full.")

    monkeypatch.setattr(keystore, "_write_private", full)
    with pytest.raises(keystore.KeyStoreError):
        keystore.save_key(KEY + "new")
    assert keystore.effective_key() == KEY


def test_a_locked_keyring_is_said_to_be_one_not_taken_for_no_key(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sealed = SealedKeyring()
    sealed.store[(keystore.SERVICE, keystore.USERNAME)] = KEY
    keyring.set_keyring(sealed)
    assert keystore.effective_key() is None  # the app runs in demo mode meanwhile...
    assert keystore.find_key() == (None, keystore.KEYRING_UNREADABLE)  # ...and says why
    monkeypatch.setenv(keystore.ENV_KEY, "rw-from-the-environment")
    assert keystore.find_key() == ("rw-from-the-environment", None)  # the keyring is not asked
    monkeypatch.delenv(keystore.ENV_KEY)
    sealed.locked = False
    assert keystore.find_key() == (KEY, None) and keystore.effective_key() == KEY


@pytest.mark.parametrize("kind", ["not-text", "a-pipe", "megabytes"])
def test_a_key_file_that_holds_no_key_is_said_not_a_traceback_nor_a_wait(
    no_keyring: None, data_dir: Path, kind: str
) -> None:
    # Not text raised UnicodeDecodeError through generate and sweep; a pipe in its place
    # was waited on for ever.
    import os

    path = keystore.key_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "not-text":
        path.write_bytes(b"k\xff\xfe")
    elif kind == "a-pipe":
        os.mkfifo(path)
    else:
        path.write_bytes(b"k" * (1 << 20))
    assert keystore.effective_key() is None and keystore.key_source() is None
    assert keystore.find_key() == (None, keystore.key_file_unreadable(data_dir))
    said = keystore.key_file_unreadable(data_dir)
    assert said.count(". ") == 0 and said.endswith(".") and str(path) in said
    from krea_desktop.backend import DEMO_NOTICE, demo_notice

    # The command line's demo mode says so too, not "no API key is set".
    assert keystore.key_file_problem(data_dir) == said
    assert demo_notice(False, data_dir).startswith("Demo mode: the API key file ") and str(path) in demo_notice(
        False, data_dir
    )
    path.unlink()
    assert keystore.key_file_problem(data_dir) is None and demo_notice(False, data_dir) == DEMO_NOTICE


def test_removing_the_key_from_a_locked_keyring_says_it_may_still_be_there(data_dir: Path) -> None:
    # It returned as if done: the app went to demo mode, and the key came back once the
    # keyring was unlocked.
    sealed = SealedKeyring()
    sealed.store[(keystore.SERVICE, keystore.USERNAME)] = KEY
    keyring.set_keyring(sealed)
    with pytest.raises(keystore.KeyStoreError, match="could not be read, so the key may still be in it"):
        keystore.delete_key()
    sealed.locked = False
    keystore.delete_key()
    assert keystore.effective_key() is None


def test_saving_says_where_the_key_went(data_dir: Path) -> None:
    keyring.set_keyring(MemoryKeyring())
    assert keystore.save_key(KEY) == "keyring"
    keyring.set_keyring(LockedKeyring())
    assert keystore.save_key(KEY + "2") == "file"
    assert keystore.key_source() == "file"

"""Where the Runware API key is kept: the OS keyring, or a private file where there is none.

Qt-free, so the command line and the window read the key the same way. The key itself is
never logged and never appears in an exception message.

Precedence (:func:`effective_key`): ``RUNWARE_API_KEY`` in the environment, then the
keyring, then the fallback file ``<data dir>/api-key`` (mode 0600).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from krea_desktop.fsutil import NotARegularFile, atomic_write, read_regular_file
from krea_desktop.library import paths as library_paths

SERVICE = "krea-desktop"
USERNAME = "runware-api-key"
ENV_KEY = "RUNWARE_API_KEY"
ENV_DATA_DIR = library_paths.ENV_DATA_DIR
KEY_FILE_NAME = "api-key"


class KeyStoreError(Exception):
    """The key could not be stored or removed; ``str()`` is one sentence for a person."""


def default_data_dir() -> Path:
    """The data folder (``KREA_DESKTOP_DATA_DIR`` or the platform's), as the library uses it."""
    return library_paths.data_dir()


def key_file(data_dir: Path | None = None) -> Path:
    return (data_dir or default_data_dir()) / KEY_FILE_NAME


def _backend() -> Any | None:
    """The keyring backend in use, or None where it cannot store anything."""
    import keyring  # imported on first use: it costs about 50 ms of start-up
    import keyring.backends.fail

    try:
        backend = keyring.get_keyring()
    except Exception:
        return None
    if isinstance(backend, keyring.backends.fail.Keyring):
        return None
    if type(backend).__module__.startswith("keyring.backends.null"):
        return None
    try:
        if float(getattr(backend, "priority", 1)) <= 0:
            return None
    except Exception:
        return None
    return backend


def is_fallback(data_dir: Path | None = None) -> bool:
    """Whether the key is (or would be) kept in the private file rather than a keyring."""
    return _backend() is None or key_file(data_dir).exists()


def backend_description(data_dir: Path | None = None) -> str:
    """A short sentence for the settings dialog saying where the key is kept."""
    backend = _backend()
    path = key_file(data_dir)
    if backend is None:
        return f"No system keyring is available, so the key is kept in a file only you can read: {path}"
    if path.exists():
        return f"The key is kept in a file only you can read ({path}), because the system keyring refused it."
    name = getattr(backend, "name", None) or type(backend).__name__
    return f"The key is kept in the system keyring ({name})."


_MOST_KEY_BYTES = 4096  # a key is tens of characters


class _BadKeyFile(Exception):
    """The private key file is there but holds no key that can be read (not text, far too
    long, or not a file at all: a pipe would be waited on for ever)."""


def _file_key(data_dir: Path | None) -> str | None:
    try:
        return _read_key_file(data_dir)
    except _BadKeyFile:
        return None


def _read_key_file(data_dir: Path | None) -> str | None:
    """The key in the private file; None when there is none; :class:`_BadKeyFile` when
    the file cannot be read as one."""
    path = key_file(data_dir)
    try:
        data = read_regular_file(path, _MOST_KEY_BYTES)
    except NotARegularFile:
        raise _BadKeyFile from None
    except OSError:
        return None
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise _BadKeyFile from None
    if len(data) > _MOST_KEY_BYTES:
        raise _BadKeyFile
    with contextlib.suppress(OSError):
        if os.name == "posix" and path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
    return text or None


def key_file_problem(data_dir: Path | None = None) -> str | None:
    """:func:`key_file_unreadable` when the private key file is there but holds no key
    that can be read, else None (the keyring is not asked)."""
    try:
        _read_key_file(data_dir)
    except _BadKeyFile:
        return key_file_unreadable(data_dir)
    return None


def key_file_unreadable(data_dir: Path | None = None) -> str:
    """The sentence for a key file that holds no key that can be read."""
    return (
        f"The API key file {key_file(data_dir)} could not be read as a key, so no key was taken from it; "
        "add the key again in Settings."
    )


class _Unreadable(Exception):
    """The keyring would not say whether it holds a key (locked, or broken)."""


def _keyring_read(backend: Any) -> str | None:
    """The keyring's key, or None when it holds none; raises :class:`_Unreadable` when it
    cannot be asked."""
    try:
        value = backend.get_password(SERVICE, USERNAME)
    except Exception:
        raise _Unreadable from None
    return str(value).strip() if value and value.strip() else None


def _keyring_key(backend: Any) -> str | None:
    try:
        return _keyring_read(backend)
    except _Unreadable:
        return None


KEYRING_UNREADABLE = (
    "The system keyring could not be read (it may be locked), so no API key was found in it; "
    "unlock the keyring and restart, or add the key again in Settings."
)


def find_key(data_dir: Path | None = None) -> tuple[str | None, str | None]:
    """:func:`effective_key`, and with no key the sentence saying why when the keyring
    could not be read (the app would otherwise run in demo mode as if no key had ever
    been added). The keyring is asked once."""
    env = os.environ.get(ENV_KEY, "").strip()
    if env:
        return env, None
    return find_stored_key(data_dir)


def find_stored_key(data_dir: Path | None = None) -> tuple[str | None, str | None]:
    """:func:`load_key`, and with no key the sentence saying why where one could not be
    read (the environment is not looked at). The keyring is asked once."""
    problem = None
    try:
        key = _read_key_file(data_dir)
    except _BadKeyFile:
        key, problem = None, key_file_unreadable(data_dir)
    if key is not None:
        return key, None
    backend = _backend()
    if backend is None:
        return None, problem
    try:
        found = _keyring_read(backend)
    except _Unreadable:
        return None, KEYRING_UNREADABLE
    return found, None if found is not None else problem


def load_key(data_dir: Path | None = None) -> str | None:
    """The stored key, or None. The private file first: it is written only when the
    keyring refused the key, and removed whenever the keyring takes one, so a key there
    is newer than any the keyring may still hold (a keyring that reads but refuses
    writes keeps the old one)."""
    key = _file_key(data_dir)
    if key is not None:
        return key
    backend = _backend()
    return _keyring_key(backend) if backend is not None else None


def save_key(key: str, data_dir: Path | None = None) -> str:
    """Store the key in the keyring, or in the private file where the keyring cannot; says
    where: "keyring" or "file" (which the person should be told of)."""
    key = clean_key(key)
    backend = _backend()
    if backend is not None:
        try:
            backend.set_password(SERVICE, USERNAME, key)
        except Exception:
            pass  # a locked or broken keyring: the key goes to the private file
        else:
            _remove_file(key_file(data_dir))  # never leave an older copy in plain text
            return "keyring"
    _write_private(key_file(data_dir), key)
    if backend is not None:
        # The file comes first when the key is read; the keyring's older key goes if it
        # can, once the new one is safe (a full disk would otherwise leave no key at all).
        with contextlib.suppress(Exception):
            backend.delete_password(SERVICE, USERNAME)
    return "file"


def delete_key(data_dir: Path | None = None) -> None:
    """Forget the stored key everywhere it may be kept (the environment is left alone).
    Raises :class:`KeyStoreError` when a key is still kept afterwards (a locked keyring
    that refused to let it go): the app would go on using it. The private file stays when
    the keyring, read, still holds its older key: removing the file alone would bring that
    one back, unsaid. A keyring that cannot be read at all does not keep the file (the
    key most likely went there for that very reason); that it may still hold a key is said."""
    backend = _backend()
    still: str | None = None
    unreadable = False
    if backend is not None:
        with contextlib.suppress(Exception):
            backend.delete_password(SERVICE, USERNAME)
        try:
            still = _keyring_read(backend)
        except _Unreadable:  # a locked keyring: the key may well come back once it is unlocked
            unreadable = True
    if still is not None:
        raise KeyStoreError(
            "The system keyring refused to remove the key, so it is still in use; unlock the keyring and try again."
        )
    _remove_file(key_file(data_dir))
    if unreadable:
        raise KeyStoreError(
            "The system keyring could not be read, so the key may still be in it; unlock the keyring and try again."
        )


def effective_key(data_dir: Path | None = None) -> str | None:
    """The key the app should use: ``RUNWARE_API_KEY`` when set, else the stored one."""
    env = os.environ.get(ENV_KEY, "").strip()
    return env or load_key(data_dir)


def key_source(data_dir: Path | None = None) -> str | None:
    """Where :func:`effective_key` comes from: "environment", "keyring", "file" or None."""
    if os.environ.get(ENV_KEY, "").strip():
        return "environment"
    if _file_key(data_dir) is not None:
        return "file"
    backend = _backend()
    if backend is not None and _keyring_key(backend) is not None:
        return "keyring"
    return None


def clean_key(key: str) -> str:
    """The key without surrounding whitespace; refuses an empty or multi-line value."""
    key = (key or "").strip()
    if not key:
        raise KeyStoreError("The API key is empty; paste the key from your Runware dashboard.")
    if any(ch.isspace() or ord(ch) < 32 for ch in key):
        raise KeyStoreError("The API key contains spaces or line breaks; paste it again as a single word.")
    if not (key.isascii() and key.isprintable()):
        raise KeyStoreError(
            "The API key has characters no API key has (such as curly quotes copied with it); "
            "paste it again from your Runware dashboard."
        )
    return key


def _write_private(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, (text + "\n").encode("utf-8"), mode=0o600)  # mkstemp creates it 0600 too
    except OSError:
        raise KeyStoreError(_unwritable(path)) from None


def _remove_file(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError:
        raise KeyStoreError(f"The old key file {path} could not be removed; delete it by hand.") from None


def _unwritable(path: Path) -> str:
    return f"The API key could not be saved in {path.parent}; check that the folder is writable."

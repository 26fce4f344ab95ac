"""Keyring backends for tests: one in memory, one that refuses to store anything, one
locked altogether (nothing can be read, written or removed until it is unlocked), one
that answers only once released (a keyring asking for its password, or hanging)."""

from __future__ import annotations

import threading

import keyring
import keyring.backend
import keyring.errors


class MemoryKeyring(keyring.backend.KeyringBackend):
    priority = 10  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if (service, username) not in self.store:
            raise keyring.errors.PasswordDeleteError("not found")
        del self.store[(service, username)]


class LockedKeyring(MemoryKeyring):
    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.KeyringLocked("the collection is locked")


class SealedKeyring(MemoryKeyring):
    """A keyring locked altogether while ``locked``: as a desktop's keyring is before it
    is unlocked (reading raises rather than saying there is no key)."""

    def __init__(self) -> None:
        super().__init__()
        self.locked = True

    def _check(self) -> None:
        if self.locked:
            raise keyring.errors.KeyringLocked("the collection is locked")

    def get_password(self, service: str, username: str) -> str | None:
        self._check()
        return super().get_password(service, username)

    def set_password(self, service: str, username: str, password: str) -> None:
        self._check()
        super().set_password(service, username, password)

    def delete_password(self, service: str, username: str) -> None:
        self._check()
        super().delete_password(service, username)


def sealed_keyring_holding(key: str) -> SealedKeyring:
    """A :class:`SealedKeyring` holding ``key`` as the app keeps it, set as the keyring."""
    from krea_desktop import keystore

    sealed = SealedKeyring()
    sealed.store[(keystore.SERVICE, keystore.USERNAME)] = key
    keyring.set_keyring(sealed)
    return sealed


class SlowKeyring(MemoryKeyring):
    """Reading waits until :attr:`release` is set (as a desktop keyring does while it asks
    for its password): :attr:`asked` is set as a read starts, :attr:`answered` once one ends."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.asked = threading.Event()
        self.answered = threading.Event()

    def get_password(self, service: str, username: str) -> str | None:
        self.asked.set()
        self.release.wait(60)
        try:
            return super().get_password(service, username)
        finally:
            self.answered.set()

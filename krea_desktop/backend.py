"""Putting the core together: the client (real service or demo simulator) and the library.

Qt-free, shared by the command line and the window.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from krea_desktop import config
from krea_desktop.api import errors as E
from krea_desktop.api import spec
from krea_desktop.api.client import RunwareClient
from krea_desktop.library.paths import data_dir as default_data_dir
from krea_desktop.library.store import Library, LibraryError, LibraryReferenceCache

log = logging.getLogger(__name__)

DEMO_KEY = "demo-mode"
DEMO_NOTICE = (
    "Demo mode: no API key is set, so images come from the built-in simulator; "
    "set RUNWARE_API_KEY or add a key in Settings to use Runware."
)
# The same, asked for with --demo (whether a key is set or not).
DEMO_ASKED_NOTICE = "Demo mode (--demo): images come from the built-in simulator, not Runware."


def demo_notice(asked: bool, data_dir: Path | None = None, key_problem: str | None = None) -> str:
    """What the command line says of demo mode: asked for with ``--demo``, or for want of a
    key (a key file that cannot be read, or a keyring locked, ``key_problem``, is said so:
    "no API key is set" would be wrong)."""
    if asked:
        return DEMO_ASKED_NOTICE
    from krea_desktop import keystore

    problem = key_problem or keystore.key_file_problem(data_dir)
    if problem is not None:
        return f"Demo mode: {problem[0].lower()}{problem[1:].removesuffix('.')}, or set RUNWARE_API_KEY."
    return DEMO_NOTICE


def api_url_from_env(env: Mapping[str, str] | None = None) -> str:
    """RUNWARE_API_URL, else the default endpoint (the command line keeps no settings
    file). A RUNWARE_API_URL that breaks the endpoint rule raises ``ValidationError``
    naming the variable and the reason."""
    try:
        return config.resolve(config.API_ENDPOINT, env=os.environ if env is None else env, stored=None)
    except config.OptionError as err:
        raise E.ValidationError(str(err), parameter="endpoint") from None


# The demo client's endpoint, as its tasks' notes of earlier versions name it (it reaches
# no network: the simulator is its transport).
DEMO_SERVICE = "http://127.0.0.1/v1"


def demo_transport(latency_per_image: float = 0.25) -> httpx.AsyncBaseTransport:
    from krea_desktop.simulator.service import SimulatorConfig, SimulatorService
    from krea_desktop.simulator.transport import SimulatorTransport

    return SimulatorTransport(SimulatorService(SimulatorConfig(latency_per_image=latency_per_image)))


@dataclass
class Backend:
    client: RunwareClient
    library: Library
    demo: bool
    key_problem: str | None = None  # why no stored key could be read (a locked keyring), if so

    async def aclose(self) -> None:
        await self.client.aclose()

    async def closed(self) -> bool:
        """Close the client; whether the closing was cancelled (Ctrl+C can reach the HTTP
        library's own waits as it closes, and cancel the run a second time): the caller
        then ends its run as it would have (images held, task records, what it says) and
        raises the cancel after."""
        try:
            await self.client.aclose()
        except asyncio.CancelledError:
            return True
        return False


def reference_cache(library: Library) -> LibraryReferenceCache:
    """The library's record of uploaded references, without those the service has
    forgotten (last used more than ``spec.UPLOAD_LIFETIME_S`` ago)."""
    try:
        library.reference_prune(time.time() - spec.UPLOAD_LIFETIME_S)
    except (sqlite3.Error, LibraryError) as exc:  # a stale row is only ignored, never used: not worth failing for
        log.warning("could not prune the reference uploads: %s", exc)
    return LibraryReferenceCache(library)


def make_client(
    api_key: str | None, api_url: str | None, library: Library | None, *, demo_latency: float = 0.25
) -> tuple[RunwareClient, bool]:
    """The client the window and the command line generate with: the service with
    ``api_key``, its uploads remembered in ``library``; else the demo simulator, its
    uploads remembered for as long as it runs. ``library``'s forgotten uploads are dropped."""
    cache = reference_cache(library) if library is not None else None
    if not api_key:
        # The demo's simulator, and so every upload to it, lasts as long as this process:
        # its uploads are remembered in memory only. Kept in the library, they were refused
        # by the next start's simulator ("Uploading references again…") and by the real
        # service once a key was set, and the service's were refused by the simulator.
        return (
            RunwareClient(DEMO_KEY, base_url=DEMO_SERVICE, transport=demo_transport(demo_latency)),
            True,
        )
    return RunwareClient(api_key, base_url=api_url or api_url_from_env(), reference_cache=cache), False


def open_backend(
    *, api_key: str | None = None, api_url: str | None = None, data_dir: Path | None = None, demo: bool = False
) -> Backend:
    from krea_desktop import keystore

    folder = data_dir or default_data_dir()
    library = Library(folder)
    key, problem = (api_key, None) if demo or api_key else keystore.find_key(folder)  # the keyring asked once
    client, is_demo = make_client(None if demo else key, api_url, library)
    return Backend(client, library, is_demo, problem if is_demo else None)

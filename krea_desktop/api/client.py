"""The asynchronous Runware client for Krea 2 Medium.

One long-lived ``httpx.AsyncClient``. ``generate`` is an async generator that yields each
image as soon as it is finished and verified; cancelling the task that iterates it
cancels the job at whatever step it is in.

As soon as: each finished item of an answer is decoded and handed over while the rest of
the answer is still arriving (``response.ItemScanner``), the next images are decoded (or
downloaded) while the caller handles one, and ``getResponse`` polls come at most
``PollPolicy.factor`` times the time already waited, so the first image is collected
within that factor of the time the service took to make it.

Without a GUI, image URLs are downloaded on a thread of the client's own (``aside``), with
an HTTP client of its own: a caller that saves each image with a plain (blocking) file
write holds its loop meanwhile, and the next download goes on all the same. The image an
answer brings while the caller waits (nothing else in hand) is fetched on the caller's
loop, which is free, without a thread's hop. A client given its own transport or sleep by
the caller downloads on the caller's loop, as does the window's.

A plain image answer (200, with its length) is read straight into the image's own buffer
(``direct``), without httpx's copies; any other goes to httpx.

Proxies named in the environment are used (httpx's own transports then, through them),
except for a service on this machine.

By default the client runs flat out, as the command line and library users want it. In
a process whose GUI thread must stay smooth, ``gui=True`` makes it hand the GIL over
during long loops (``pacing``), decode large base64 in a helper process (``b64helper``)
and receive an answer whole before decoding its images, at some cost in throughput.

Never billing twice: an ``imageInference`` POST whose answer was lost may still have
reached the service. After such an ambiguous failure the client asks ``getResponse``
for the same taskUUID instead of submitting again, and resubmits (with the same
taskUUID, which the service would refuse as a conflict if it had it) only when the
service says it does not know the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import importlib
import io
import logging
import math
import random
import re
import ssl
import sys
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from krea_desktop.api import errors as E
from krea_desktop.api import spec
from krea_desktop.api.aside import LoopThread
from krea_desktop.api.body import ANSWER_BASE_BYTES, answer_limit, read_body
from krea_desktop.api.direct import Declined, DirectDownloads
from krea_desktop.api.endpoint import check_endpoint, is_loopback
from krea_desktop.api.pacing import pace
from krea_desktop.api.record import GenerationRecord
from krea_desktop.api.refcache import MemoryReferenceCache, ReferenceCache, content_hash
from krea_desktop.api.request import (
    GenerationRequest,
    ReferenceImage,
    is_url,
    is_uuid,
    new_task_uuid,
    without_credentials,
)
from krea_desktop.api.response import (
    Blob,
    Body,
    Envelope,
    Pacer,
    VerifiedImage,
    decode_base64,
    decode_data_uri,
    error_from,
    is_finished_item,
    no_pace,
    parse_body,
    parse_envelope,
    verify_image,
)
from krea_desktop.api.results import GeneratedImage
from krea_desktop.wording import counted, within

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Statuses after which the task may have been accepted: recover with getResponse.
AMBIGUOUS_STATUSES = frozenset({500, 502, 504})
# Codes that mean a reference imageUUID is unknown to the service (expired upload).
UNKNOWN_REFERENCE_CODES = frozenset({"invalidreferenceimage", "referenceimagenotfound", "imagenotfound"})
MAX_REFERENCE_BYTES = 50 * 1024 * 1024
_REFS = "inputs.referenceImages"
_CLOSED = "This client is closed; make a new RunwareClient to go on."
_OTHER_LOOP = (
    "This client's connections belong to another event loop, which is still running; "
    "make a RunwareClient for each loop that uses one."
)
_CLOSE_ON_ITS_LOOP_S = 5.0  # seconds the loop an HTTP client is in use on has to close it (aclose)
# How many images are decoded (data in the answer) or downloaded (URLs) at once: the next
# is made ready while the caller handles one, never alongside the one being waited for
# (which would only come later). More at once makes nothing faster on a loopback (the work
# is this process's CPU) and holds more memory: each download in flight costs several
# times its size (bench_clients.py).
DECODES_AHEAD = 1
DOWNLOADS_AHEAD = 1
# How long after the predicted end of a batch its last poll comes, in images' time.
_LAST_POLL_MARGIN = 0.1


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # tries of one request in all, first included
    base: float = 0.5  # seconds before the first retry (full jitter below 2**n times this)
    cap: float = 30.0
    retry_after_cap: float = 120.0

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap)
        return rng.uniform(0.5, 1.0) * min(self.cap, self.base * (2**attempt))


@dataclass(frozen=True)
class PollPolicy:
    """When to ask ``getResponse`` again.

    The first poll comes ``initial`` seconds after the acknowledgement; until images
    arrive, each next one when the time since submitting has grown by ``factor``, so an
    image the service took T seconds to make is collected by about ``factor`` x T. Once
    images arrive: with URL outputs (small answers), about once per image as they have
    been coming; with image data in the answer (base64, data URI), where every poll
    carries every finished image again, when the time since submitting has grown by
    ``inline_factor``, or when the rest should be done at the pace so far if that is
    sooner (once, until more images come: a poll at that end that finds none is the
    pace proved wrong). The pace counts only the images that arrived in this process
    (a task collected after a restart may have most of them already). Every interval
    lies between ``minimum`` and ``maximum``, except the wait after a failed poll whose
    answer asked for a longer one (``Retry-After``, within the retry policy's cap).
    """

    initial: float = 0.1
    factor: float = 1.4
    maximum: float = 10.0
    minimum: float = 0.1
    inline_factor: float = 2.0


class _Ambiguous(Exception):
    """The request may or may not have reached the service."""

    def __init__(self, error: E.KreaError, status: int | None = None) -> None:
        self.error = error
        self.status = status  # the HTTP status the service answered with, if it did


# An imageUUID names the image's file: letters, digits, "-" and "_" (a UUID always is).
_USABLE_UUID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_UUID_NAMESPACE = uuid.UUID("6f0c4f7e-3f4e-4b8e-9a51-6b2c9d1e0a77")


def _usable_image_uuid(value: Any) -> str:
    """The item's imageUUID, or, for one that cannot name a file (``../../x``, a list), a
    UUID made from it, the same each time it comes: the image is kept either way."""
    text = str(value)
    if _USABLE_UUID.fullmatch(text):
        return text
    log.warning("the service sent an imageUUID that cannot name a file: %.80r", text)
    return str(uuid.uuid5(_UUID_NAMESPACE, text))


def _seed_of(value: Any) -> int | None:
    """The item's seed if it is one the model has (else none: it is not one to reuse)."""
    if isinstance(value, int) and not isinstance(value, bool) and spec.SEED_MIN <= value <= spec.SEED_MAX:
        return value
    return None


def _cost_of(value: Any) -> float | None:
    """The item's cost in dollars if it is a number one could be charged."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        cost = float(value)
    except OverflowError:  # an integer of hundreds of digits
        return None
    return cost if math.isfinite(cost) and 0 <= cost < 1e9 else None


class _NotSent(Exception):
    """The request certainly did not reach the service (e.g. connection refused); ``final``
    when sending it again would meet the same (an address that redirects elsewhere)."""

    def __init__(self, error: E.KreaError, *, final: bool = False) -> None:
        self.error = error
        self.final = final


@dataclass
class _Answer:
    status: int
    envelope: Envelope
    retry_after: str | None


StatusCallback = Callable[[str], None]
# Told of a task just before it is sent: the request, its references as sent, and the
# record its images will carry (so that whoever keeps paid work can collect it later).
SubmittedCallback = Callable[[GenerationRequest, list[dict[str, Any]], GenerationRecord], None]

# The taskUUIDs this process has sent (by any client): each generate() call is a batch of
# its own, and a request sent again goes out under a new one (the same taskUUID would follow
# the first batch's images). A few dozen bytes each, one per batch.
_SENT_TASK_UUIDS: set[str] = set()


class RunwareClient:
    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = spec.DEFAULT_API_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        reference_cache: ReferenceCache | None = None,
        timeout: float = 20.0,
        sync_timeout_per_image: float = 15.0,
        connect_timeout: float = 10.0,
        job_timeout: float = 900.0,
        probe_budget: float = 45.0,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        max_download_bytes: int = 64 * 1024 * 1024,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        gui: bool = False,
    ) -> None:
        """``gui``: a GUI thread shares this process (the window's client thread sets it):
        long loops then hand it the GIL every few milliseconds and large base64 is decoded
        in a helper process, which keeps the window smooth at some cost in throughput. Off
        (the default, for the command line and library users), the client runs flat out,
        and downloads image URLs on a thread of its own (the window's client thread hands
        each image on at once, so it has no need of one; ``gui`` is read for each image)."""
        if not isinstance(api_key, str):
            raise E.AuthenticationError(
                "The API key must be text, as shown in your Runware dashboard.", code="invalidApiKey"
            )
        if not api_key or not api_key.strip():
            raise E.AuthenticationError(E.NO_KEY_GIVEN, code="missingApiKey")
        self._key = api_key.strip()
        self.base_url = check_endpoint(base_url)
        self.reference_cache: ReferenceCache = reference_cache or MemoryReferenceCache()
        self.job_timeout = job_timeout
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        # After a lost answer, how long asking whether the service has the task may take.
        self.probe_budget = probe_budget
        # A sync answer comes when the whole batch is done: allow for each image.
        self.sync_timeout_per_image = sync_timeout_per_image
        self.retry = retry or RetryPolicy()
        self.poll = poll or PollPolicy()
        self.max_download_bytes = max_download_bytes
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.bytes_sent = 0
        self.gui = gui
        # Talking to the built-in simulator (demo mode): its images' records say so, and
        # the costs it reports are shown as made up wherever they appear.
        self.simulated = bool(getattr(transport, "simulated", False))
        # Whether another process can collect a task sent through this client: not one sent
        # to the built-in simulator, which ends with this process and takes its tasks with it.
        self.collectable_later = not self.simulated
        self._unreached: set[str] = set()  # tasks the service certainly does not have, to be sent again
        self._accepted: set[str] = set()  # tasks the service is known to have taken
        self._closed = False
        # Images are downloaded on a thread of their own, with an HTTP client of its own,
        # so that the next download goes on while the caller saves an image (``aside``):
        # not in a GUI process (whose client thread hands each image on at once), nor
        # where the caller's own transport or sleep may be bound to its loop.
        self._may_download_aside = transport is None and sleep is asyncio.sleep
        self._aside: LoopThread | None = None
        self._aside_http: httpx.AsyncClient | None = None
        # Plain image downloads straight into the image's buffer, beside each HTTP client
        # of the client's own that goes straight to the host (``direct``).
        self._direct: DirectDownloads | None = None
        self._aside_direct: DirectDownloads | None = None
        self._ssl_context: ssl.SSLContext | None = None
        # The event loop the client's HTTP connections belong to (the first it is used on).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_lock = threading.Lock()
        self._owns_transport = transport is None
        if transport is None:
            _preload_network_stack()
            from krea_desktop.api.network import new_ssl_context

            self._ssl_context = new_ssl_context()  # made once, for both clients (about 30 ms each)
            self._http, self._direct = self._own_http()
        else:
            self._http = self._new_http(transport)

    def _own_http(self) -> tuple[httpx.AsyncClient, DirectDownloads | None]:
        """An HTTP client on the client's own transport (reading in large pieces,
        ``network``), with plain image downloads beside it (``direct``); or, where the
        environment names a proxy, on httpx's transports through it (httpx reads the proxy
        variables only for a client made without a transport), every download through it
        too. A service on this machine is never reached through a proxy, nor through one
        httpx cannot use (a SOCKS proxy without ``socksio``, an unknown scheme): the client
        then goes straight to the host, and logs why."""
        from krea_desktop.api.network import environment_proxies, make_transport

        if environment_proxies() and not is_loopback(self.base_url):
            try:
                return self._new_http(None), None
            except (ImportError, ValueError) as exc:
                log.warning("The proxy named in the environment cannot be used (%s); connecting directly.", exc)
        direct = DirectDownloads(self._ssl_context, read_timeout=self.timeout, connect_timeout=self.connect_timeout)
        return self._new_http(make_transport(self._ssl_context)), direct

    def _new_http(self, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=transport,
            verify=self._ssl_context or True,
            timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout, pool=self.connect_timeout),
            follow_redirects=False,
            headers={"User-Agent": "krea-desktop"},
        )

    def accepted(self, task_uuid: str) -> bool:
        """Whether the service is known to have taken the task ``task_uuid``: it acknowledged
        it, answered with its images or said it has it. A task stopped after that (a
        cancel) may still have images to collect, made and paid for whatever happens here."""
        return task_uuid in self._accepted

    def never_reached(self, task_uuid: str) -> bool:
        """Whether the service certainly does not have the task ``task_uuid`` just now: its
        submission was refused outright (busy, a limit), or the service said it has no such
        task, and it was waiting to be sent again. A task stopped then (the app quitting)
        has nothing to collect later."""
        return task_uuid in self._unreached

    def __repr__(self) -> str:  # never show the key
        return f"RunwareClient({self.base_url!r})"

    @property
    def _pacer(self) -> Pacer:
        return pace if self.gui else no_pace

    async def aclose(self) -> None:
        with self._loop_lock:  # not while the HTTP clients are made anew for another loop
            self._closed = True
            ended = self._owns_transport and self._loop_ended()
        if self._direct is not None:
            self._direct.close()
        try:
            if not ended:  # else they cannot be closed from here: httpx's own end when collected
                await self._close_http_on_its_loop()
        finally:
            if self._aside is not None:
                await self._aside.aclose()  # its downloads end, saying the client is closed

    async def _close_http_on_its_loop(self) -> None:
        """Close the HTTP client on the loop it is in use on. Closed from another thread's
        loop while that loop still runs, httpx's waits there were told on the wrong thread,
        and a request under way could wait on, unwoken (seen on Python 3.10); there it is
        closed by its own loop, or here should that loop not get to it within a few seconds."""
        bound = self._loop
        if bound is None or bound is asyncio.get_running_loop() or not bound.is_running():
            await self._http.aclose()
            return
        try:
            closing = asyncio.run_coroutine_threadsafe(self._http.aclose(), bound)
        except RuntimeError:  # that loop closed meanwhile
            await self._http.aclose()
            return
        try:
            await asyncio.wait_for(asyncio.wrap_future(closing), _CLOSE_ON_ITS_LOOP_S)
        except asyncio.TimeoutError:
            closing.cancel()
            await self._http.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise E.KreaError(_CLOSED)

    def _loop_ended(self) -> bool:
        """Whether the loop the client was last used on is another and no longer runs."""
        bound = self._loop
        return bound is not None and bound is not asyncio.get_running_loop() and not bound.is_running()

    def _on_this_loop(self) -> None:
        """Use the client on the running loop. A script may call ``asyncio.run()`` more
        than once with one client: the connections made on a loop that has ended cannot
        be used on the next (httpx's pool raised "Event loop is closed"), so the client's
        own HTTP clients are made anew for it. A loop still running elsewhere is told in
        a sentence. With a transport of the caller's, the caller's transport decides."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        with self._loop_lock:  # against aclose() from another thread, and another loop's first use
            if self._loop is None or not self._owns_transport:
                self._loop = loop
                return
            if self._loop is loop:
                return
            if self._loop.is_running():
                raise E.KreaError(_OTHER_LOOP)
            self._check_open()  # closed meanwhile: said so, and nothing made
            if self._direct is not None:
                self._direct.close()
            self._http, self._direct = self._own_http()
            self._loop = loop

    async def __aenter__(self) -> RunwareClient:
        self._check_open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- one POST --------------------------------------------------------------------

    async def _post_once(
        self,
        tasks: list[dict[str, Any]],
        read_timeout: float | None = None,
        *,
        limit: int = ANSWER_BASE_BYTES,
        phase: str = "",
        on_item: Callable[[dict[str, Any]], None] | None = None,
        on_sent: Callable[[], None] | None = None,
        deadline: float | None = None,
    ) -> _Answer:
        """One POST. ``read_timeout`` overrides the short default for slow answers; an answer
        larger than ``limit`` bytes (decompressed) is refused; ``phase`` names the step in
        the message of a timeout; ``on_item`` hears of each item of a successful answer's
        ``data`` as soon as it has arrived (the answer is returned whole all the same);
        ``on_sent`` hears when the whole request has gone out (over HTTP/1.1 or 2); the
        whole exchange ends by ``deadline`` (monotonic: the job's), else within a job's time."""
        import json

        self._check_open()  # closed while a task was followed: a sentence, not httpx's RuntimeError
        self._on_this_loop()
        body = json.dumps(tasks, separators=(",", ":")).encode()
        headers = {"Authorization": f"Bearer {self._key}", "Content-Type": "application/json"}
        wait = read_timeout or self.timeout
        timeout = httpx.Timeout(wait, connect=self.connect_timeout, pool=self.connect_timeout)
        extensions = {} if on_sent is None else {"trace": _when_sent(on_sent)}
        arriving = asyncio.Event()

        async def exchange() -> tuple[Body, int, str | None, str | None]:
            async with self._http.stream(
                "POST", self.base_url, content=body, headers=headers, timeout=timeout, extensions=extensions
            ) as resp:
                self.bytes_sent += len(body)
                if resp.status_code < 300:
                    arriving.set()  # a cancel from now on lets it arrive: the images in it are paid for
                # In the window, an answer is received whole before its images are decoded:
                # receiving while the decode thread works puts two threads against the GUI
                # thread for the GIL (bench_gui_stall.py: its longest stalls grew by 2-3 ms).
                streamed = on_item if resp.status_code < 300 and not self.gui else None
                try:
                    buf = await read_body(resp, limit, pacer=self._pacer, on_item=streamed)
                except E.MalformedResponseError as too_large:  # larger than any answer to it could be
                    if resp.status_code >= 400:
                        raise
                    said = str(too_large)
                else:
                    return buf, resp.status_code, resp.headers.get("Retry-After"), resp.headers.get("Location")
            # The task may have been accepted all the same. Raised here, with nothing of the
            # refused body held by the error's frames (a bomb's inflated chunk is hundreds of
            # MB), while the task is asked after.
            raise _Ambiguous(E.MalformedResponseError(said))

        try:
            # Whole within the job's time: an answer trickling a byte within each read's
            # timeout would otherwise be waited for without end.
            buf, status, retry_after, location = await _unless_stopped(
                lambda: _within(exchange(), self._time_left(deadline)), unless=arriving
            )
        except asyncio.TimeoutError:
            during = f" while {phase}" if phase else ""
            late = f"The service's answer did not arrive whole within the job's {self.job_timeout:g} s{during}."
            raise _Ambiguous(E.ServiceTimeoutError(late)) from None
        except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise _NotSent(
                E.NetworkError(
                    f"The service at {self._where()} could not be reached within {self.connect_timeout:g} s; "
                    "check your connection."
                )
            ) from exc
        except httpx.ConnectError as exc:  # refused, or no route: at once, not after a wait
            tls = _tls_refusal(exc, self._where())
            if tls is not None:  # reached, but not over HTTPS as asked: trying again changes nothing
                raise _NotSent(E.NetworkError(tls), final=True) from exc
            raise _NotSent(
                E.NetworkError(f"The service at {self._where()} could not be reached; check your connection.")
            ) from exc
        except httpx.TimeoutException as exc:
            during = f" while {phase}" if phase else ""
            raise _Ambiguous(E.ServiceTimeoutError(f"The service did not answer within {wait:g} s{during}.")) from exc
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise _Ambiguous(E.NetworkError("The connection to the service broke off.")) from exc
        if 300 <= status < 400:  # a login page on the network, or an address that moved: not the service
            raise _NotSent(E.NetworkError(_redirected(status, location)), final=True)
        if status in RETRYABLE_STATUSES:
            env = self._lenient_envelope(buf)
            err = error_from(env.errors[0] if env.errors else None, status, retry_after)
            if not isinstance(err, (E.ServiceBusyError, E.ServiceTimeoutError)):
                err = E.ServiceBusyError(str(err), code=err.code)
            if status in AMBIGUOUS_STATUSES:
                raise _Ambiguous(err, status)
            raise _NotSent(err)
        if status == 401 or status == 402 or status == 403:
            env = self._lenient_envelope(buf)
            raise error_from(env.errors[0] if env.errors else None, status)
        try:
            env = parse_envelope(parse_body(buf, pacer=self._pacer))
        except E.MalformedResponseError as err:
            following = all(t.get("taskType") == "getResponse" for t in tasks)
            if status < 400 and _is_page(buf) and not following:  # a sign-in page, or no API there
                raise _NotSent(E.NetworkError(_A_PAGE), final=True) from None
            if status < 400:
                raise _Ambiguous(err) from None  # the task may have been accepted all the same
            env = Envelope([], [])
        if status >= 400 and not env.errors:
            if all(t.get("taskType") == "getResponse" for t in tasks):
                # Following a task the service accepted: an answer that says nothing of it
                # (a proxy's 404, a gateway's 409) is asked again, and the task kept.
                raise _Ambiguous(E.NetworkError(f"The service answered HTTP {status} while the images were awaited."))
            raise error_from(None, status)
        return _Answer(status, env, retry_after)

    async def _pause(self, seconds: float) -> None:
        """Wait before the next poll or retry (cut short by :func:`stop_waiting_when`)."""
        await _unless_stopped(lambda: self._sleep(seconds))

    def _time_left(self, deadline: float | None) -> float:
        """Seconds left of a job's time (``deadline``, monotonic), or of a whole job when
        the request belongs to none: one answer or download is never waited for longer."""
        if deadline is None:
            return self.job_timeout
        return max(0.1, deadline - time.monotonic())

    def _lenient_envelope(self, buf: Body) -> Envelope:
        try:
            return parse_envelope(parse_body(buf, pacer=self._pacer))
        except E.MalformedResponseError:
            return Envelope([], [])

    def _where(self) -> str:
        """The service's host (and port, when one is given), as a message names it."""
        try:
            return urlsplit(self.base_url).netloc.rpartition("@")[2] or self.base_url
        except ValueError:
            return self.base_url

    async def _post(
        self, tasks: list[dict[str, Any]], *, idempotent: bool, renew_ids: bool = False, attempts: int | None = None
    ) -> _Answer:
        """POST with retries (``attempts`` in all, the retry policy's unless given).
        Non-idempotent requests are retried only when certainly not sent; ambiguous
        failures propagate as :class:`_Ambiguous` for the caller to recover. With
        ``renew_ids``, a retry after an ambiguous failure sends new taskUUIDs (for tasks
        that are harmless to repeat but whose IDs the service refuses to see twice)."""
        attempts = self.retry.attempts if attempts is None else attempts
        attempt = 0
        while True:
            try:
                return await self._post_once(tasks)
            except _NotSent as ns:
                if ns.final:
                    raise ns.error from None
                failure: _NotSent | _Ambiguous = ns
            except _Ambiguous as amb:
                if not idempotent:
                    raise
                failure = amb
                if renew_ids:  # the service may have the task already: resending its ID is a conflict
                    tasks = [{**t, "taskUUID": new_task_uuid()} if "taskUUID" in t else t for t in tasks]
            attempt += 1
            if attempt >= attempts:
                raise failure.error
            delay = self.retry.delay(attempt - 1, self._rng, _retry_after_of(failure.error))
            log.info("retrying in %.2fs after: %s", delay, failure.error)
            await self._pause(delay)

    # --- authentication and uploads ---------------------------------------------------

    async def test_key(self) -> None:
        """Check the key with the service; raises :class:`AuthenticationError` if refused.
        Someone waits on the answer: a failure to reach the service is tried once more,
        not for the many seconds a job's retries take."""
        self._check_key()
        self._on_this_loop()  # before anything is said to have been sent
        task = {"taskType": "authentication", "apiKey": self._key}
        answer = await self._post([task], idempotent=True, attempts=min(2, self.retry.attempts))
        if answer.envelope.errors:
            raise error_from(answer.envelope.errors[0], answer.status)

    async def upload(self, data: bytes) -> str:
        """Upload an encoded image (already at most 2048 px) and return its imageUUID."""
        import base64

        self._check_key()
        self._on_this_loop()  # before anything is said to have been sent
        task_uuid = new_task_uuid()
        mime = _mime_of(data)
        task = {
            "taskType": "imageUpload",
            "taskUUID": task_uuid,
            "image": f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}",
        }
        # An upload costs nothing and a duplicate does no harm: retrying is safe, under a new
        # taskUUID whenever the service may have received the earlier attempt.
        answer = await self._post([task], idempotent=True, renew_ids=True)
        for err in answer.envelope.errors:
            raise error_from(err, answer.status)
        for item in answer.envelope.data:
            image_uuid = item.get("imageUUID")
            if isinstance(image_uuid, str) and image_uuid:
                return image_uuid
        raise E.MalformedResponseError("The service accepted an upload but sent no imageUUID.")

    async def resolve_reference(self, ref: ReferenceImage, *, force_upload: bool = False) -> tuple[str, str | None]:
        """The string to send for a reference and, for uploads, its content hash."""
        img = ref.image
        if isinstance(img, str) and (is_uuid(img) or is_url(img)):
            return img, None
        if isinstance(img, str):  # data URI or base64: upload too, so it is sent once
            try:
                raw = (
                    decode_data_uri(img, helper=self.gui, pacer=self._pacer)
                    if img.startswith("data:")
                    else decode_base64(img, helper=self.gui, pacer=self._pacer)
                )
            except E.MalformedResponseError:  # the decoders' words are about the service's data
                what = "data URI" if img.startswith("data:") else "base64 data"
                raise E.ValidationError(f"A reference's {what} cannot be decoded.", parameter=_REFS) from None
        elif isinstance(img, Path):
            raw = await asyncio.to_thread(_read_reference_file, img)
        else:
            raw = bytes(img)
        digest = content_hash(raw)
        known = None if force_upload else self.reference_cache.lookup(digest)
        if known is not None and time.time() - known[1] < spec.UPLOAD_LIFETIME_S - 3600:
            self.reference_cache.remember(digest, known[0])  # each use extends its life
            return known[0], digest
        prepared = await asyncio.to_thread(prepare_upload, raw)
        image_uuid = await self.upload(prepared)
        self.reference_cache.remember(digest, image_uuid)
        return image_uuid, digest

    async def _resolve_references(
        self, request: GenerationRequest, *, force_upload: bool = False
    ) -> tuple[list[dict[str, Any]], list[str | None]]:
        wire: list[dict[str, Any]] = []
        digests: list[str | None] = []
        for i, ref in enumerate(request.references):
            try:
                image, digest = await self.resolve_reference(ref, force_upload=force_upload)
            except E.ValidationError as err:
                raise _which_reference(err, i, ref) from err
            wire.append({"image": image, "strength": round(float(ref.strength), 4)})
            digests.append(digest)
        return wire, digests

    # --- generation ---------------------------------------------------------------------

    async def generate(
        self,
        request: GenerationRequest,
        on_status: StatusCallback | None = None,
        on_submitted: SubmittedCallback | None = None,
    ) -> AsyncGenerator[GeneratedImage, None]:
        """Yield each image of ``request`` as soon as it is finished and verified.

        Raises a :class:`KreaError` with a one-sentence message on failure; images
        already yielded stay valid. ``on_submitted`` hears of each task just before it is
        sent (a retry after a conflict sends a new taskUUID). Each call is a new batch: a
        request this process has sent before, with this client or another, goes out under
        a new taskUUID (the images of an earlier task are followed with :meth:`collect`).
        """
        say = on_status or (lambda _msg: None)
        request.validate()
        self._check_key()
        self._on_this_loop()  # before anything is said to have been sent
        if request.task_uuid in _SENT_TASK_UUIDS:
            request = request.with_new_task_uuid()
        _SENT_TASK_UUIDS.add(request.task_uuid)  # now: a call beside this one makes its own
        if request.references:
            say(f"Preparing {counted(len(request.references), 'reference image')}…")
        wire_refs, digests = await self._resolve_references(request)
        seen: set[str] = set()
        try:
            async for image in self._run(request, wire_refs, seen, say, on_submitted):
                yield image
        except E.ValidationError as err:
            # Only an upload can be sent again: an address or an imageUUID the service
            # refused would be refused again.
            if not (any(digests) and _is_unknown_reference(err)) or seen:
                raise
            # The service forgot an upload (they expire 30 days after last use): upload again.
            for digest in digests:
                if digest:
                    self.reference_cache.forget(digest)
            say("Uploading references again…")
            request = request.with_new_task_uuid()  # the refused task was never accepted
            wire_refs, _ = await self._resolve_references(request, force_upload=True)
            async for image in self._run(request, wire_refs, seen, say, on_submitted):
                yield image

    async def collect(
        self,
        request: GenerationRequest,
        record: GenerationRecord,
        received: set[str],
        on_status: StatusCallback | None = None,
        *,
        within: float | None = None,
    ) -> AsyncGenerator[GeneratedImage, None]:
        """Yield the images of a task sent earlier (by this or an ended process) that are
        not in ``received``, following it with getResponse: ``request`` and ``record`` as
        ``on_submitted`` was given them (nothing of the request's references is read or
        sent again), the images carrying ``record``. Raises ``TaskError`` when the service
        no longer knows the task (whatever was received of it before), and
        ``ServiceTimeoutError`` when it is not done within a job's time, or ``within``
        seconds when shorter (the task may still be collected later)."""
        say = on_status or (lambda _msg: None)
        self._check_key()
        self._on_this_loop()  # before anything is said to have been sent
        ctx = _Context(request, set(received), record, submitted_at=time.monotonic())
        ctx.deadline = time.monotonic() + (self.job_timeout if within is None else min(within, self.job_timeout))
        ctx.probe_by = None if within is None else ctx.deadline
        self._accepted.add(request.task_uuid)  # sent, and kept to be collected: as accepted
        self._ready_downloads(request)
        try:
            first = await self._get_response(request, ctx)
            if first is None or _not_found(first):
                raise E.TaskError("The service no longer has this job, so its images could not be collected.")
            async for image in self._poll(ctx, ctx.deadline, say, first):
                yield image
        except E.KreaError as err:
            if within is not None and isinstance(err, E.ServiceTimeoutError) and time.monotonic() >= ctx.deadline - 1:
                # Said as the time it was given, not a job's (the task may still be collected).
                late = E.ServiceTimeoutError(
                    f"The task was not done within the {min(within, self.job_timeout):g} s given to collect it."
                )
                late.task_accepted = True
                raise late from None
            err.task_accepted = True  # sent by an earlier run: what fails now says nothing of it
            raise

    async def _run(
        self,
        request: GenerationRequest,
        wire_refs: list[dict[str, Any]],
        seen: set[str],
        say: StatusCallback,
        on_submitted: SubmittedCallback | None = None,
    ) -> AsyncIterator[GeneratedImage]:
        """Submit once, then follow the task. The phases:

        - submit: POST the task; retry only when it certainly did not arrive.
        - probe: after an ambiguous failure, or a conflict, ask getResponse whether the
          service has the task; if it does not, submit again (same taskUUID after a lost
          answer; a fresh one after a conflict, which means the ID belongs to another task,
          unless this ID's own sending may have arrived: then the conflict says that it
          did, and the task is asked after again, never sent a second time).
        - poll: follow the task with getResponse until every image is in.
        """
        ctx = _Context(request, seen, sent_record(request, wire_refs).replace(simulated=self.simulated))
        deadline = ctx.deadline = time.monotonic() + self.job_timeout
        task = request.to_task(wire_refs)
        attempt = 0
        conflict_retried = False
        phase = "submit"
        probe_after_conflict = False
        may_have_arrived = False  # a sending of this taskUUID whose outcome is not known
        known_there = False  # the service said it has this taskUUID, which this run sent
        first: _Answer | None = None
        while True:
            if phase == "submit":
                say("Submitting…" if attempt == 0 else "Submitting again…")
                _SENT_TASK_UUIDS.add(request.task_uuid)
                self._unreached.discard(request.task_uuid)
                if on_submitted is not None:
                    on_submitted(request, wire_refs, ctx.record)
                ctx.submitted_at = time.monotonic()
                answer: _Answer | None = None
                try:
                    async with contextlib.aclosing(
                        self._exchange(
                            [task],
                            self._submit_timeout(request),
                            limit=answer_limit(request.number_results),
                            phase="submitting the task",
                            ctx=ctx,
                            on_sent=functools.partial(self._task_sent, request, say),
                        )
                    ) as exchange:
                        async for got in exchange:
                            if isinstance(got, _Answer):
                                answer = got
                            else:
                                yield got
                except _NotSent as ns:
                    attempt += 1
                    asked = _retry_after_of(ns.error)
                    # A wait longer than the policy waits (hours, say) is not waited out in
                    # pieces, each ending "busy": the service's word is said at once.
                    if ns.final or attempt >= self.retry.attempts or (asked or 0) > self.retry.retry_after_cap:
                        # An earlier sending of this ID may have arrived: then it may be
                        # paid for, and is kept to be collected, not said never sent.
                        ns.error.never_sent = not may_have_arrived
                        ns.error.task_accepted = may_have_arrived
                        raise ns.error from None
                    delay = self.retry.delay(attempt - 1, self._rng, _retry_after_of(ns.error))
                    # What happened, not its advice ("try again in a moment"): it is being tried again.
                    said = str(ns.error).split(";")[0].rstrip(".")
                    say(f"{said}; retrying in {delay:.0f} s…" if delay >= 1 else f"{said}; retrying…")
                    self._unreached.add(request.task_uuid)  # refused outright: not with the service
                    await self._pause(delay)
                    continue
                except _Ambiguous as amb:
                    log.info("ambiguous answer to task %s: %s", request.task_uuid, amb.error)
                    if amb.status is not None:  # an answer, but not whether the task was taken
                        say(f"The service answered HTTP {amb.status}; asking it whether it has the task…")
                    else:
                        say("The answer was lost; asking the service whether it has the task…")
                    last_error: E.KreaError = amb.error
                    phase, probe_after_conflict = "probe", False
                    may_have_arrived = True
                    continue
                assert answer is not None
                env = answer.envelope
                if _has_conflict(env):
                    phase, probe_after_conflict = "probe", True
                    known_there = known_there or may_have_arrived
                    if known_there:
                        self._accepted.add(request.task_uuid)
                    last_error = error_from(env.errors[0], answer.status)
                    continue
                ours = _errors_of(env, request.task_uuid)
                # Refused outright (an error object) ends it; an item that failed beside
                # others still being made leaves them to be polled for.
                refused = [e for e in ours if e not in env.data]
                processing = _has_processing(env)
                if ours and not any(is_finished_item(d) for d in env.data) and (refused or not processing):
                    self._accepted.discard(request.task_uuid)  # refused: nothing of it to collect
                    raise error_from((refused or ours)[0], answer.status)
                self._accepted.add(request.task_uuid)  # an answer for it that is no refusal
                pending = request.delivery_method == "async" or processing or ctx.refetch
                if pending and not refused:
                    if ctx.seen_count == 0:  # the task is with the service: not "Submitting…" any more
                        say("Generating…")
                    else:  # the answer brought some of the images
                        ctx.progress_at = time.monotonic()
                    phase, first = "poll", None
                    continue
                self._check_complete(ctx, ours)
                return

            if phase == "probe":
                try:
                    probe = await self._get_response(request, ctx)
                except E.KreaError as err:
                    err.task_accepted = True  # the lost answer may have been its acceptance
                    raise
                if probe is None and known_there:
                    # It has the task (it refused this ID, sent by this run, as taken) and
                    # does not show it yet: asked after again. A new ID would pay twice.
                    attempt += 1
                    if attempt >= self.retry.attempts:
                        unseen = E.ServiceTimeoutError(
                            "The service has this task (it said so when it was sent again) but has not shown it yet."
                        )
                        unseen.task_accepted = True
                        raise unseen
                    await self._pause(self.retry.delay(attempt - 1, self._rng))
                    continue
                if probe is None:  # the service does not have it: submitting again is safe
                    # Given up here, nothing is to come of it, nor said to be collected later.
                    last_error.never_sent = True
                    self._unreached.add(request.task_uuid)  # the ID the caller holds until the next is sent
                    attempt += 1
                    if attempt >= self.retry.attempts:
                        raise last_error
                    if probe_after_conflict:
                        if conflict_retried:
                            raise last_error
                        conflict_retried = True
                        request = request.with_new_task_uuid()
                        ctx.request = request
                        task = request.to_task(wire_refs)
                    self._unreached.add(request.task_uuid)  # the service said it has no such task
                    await self._pause(self.retry.delay(attempt - 1, self._rng))
                    phase = "submit"
                    continue
                self._accepted.add(request.task_uuid)
                phase, first = "poll", probe
                continue

            try:
                async for image in self._poll(ctx, deadline, say, first):
                    yield image
            except E.KreaError as err:
                err.task_accepted = True
                raise
            return

    def _check_key(self) -> None:
        """Refuse, before anything is sent, a key no request could carry: an HTTP header
        takes printable ASCII only, and a key pasted with curly quotes or a non-breaking
        space is not one (it ended in a UnicodeEncodeError from the HTTP library). A closed
        client sends nothing either."""
        self._check_open()
        if not (self._key.isascii() and self._key.isprintable()) or any(ch.isspace() for ch in self._key):
            raise E.AuthenticationError(
                "The API key has characters no API key has (such as quotes or spaces copied with it); "
                "set it again from your Runware dashboard.",
                code="invalidApiKey",
            )

    def _submit_timeout(self, request: GenerationRequest) -> float:
        if request.delivery_method == "async":
            return self.timeout  # acknowledged at once
        return self.timeout + self.sync_timeout_per_image * request.number_results

    async def _get_response(self, request: GenerationRequest, ctx: _Context) -> _Answer | None:
        """getResponse with retries, within :attr:`probe_budget` seconds; None when the
        service does not know the task."""
        give_up = time.monotonic() + self.probe_budget
        if ctx.probe_by is not None:  # never past the time given to collect the task
            give_up = min(give_up, ctx.probe_by)
        for attempt in range(self.retry.attempts):
            try:
                answer = await self._post_once(
                    [{"taskType": "getResponse", "taskUUID": request.task_uuid}],
                    min(self.timeout, max(0.1, give_up - time.monotonic())),
                    limit=answer_limit(request.number_results),
                    phase="asking whether it had received the task",
                    deadline=ctx.deadline,
                )
            except (_NotSent, _Ambiguous) as failure:
                # The task may be with the service, and paid for: a busy service is a wait
                # that ran out (kept, and asked about again later), not a refusal.
                if attempt + 1 >= self.retry.attempts:
                    raise _still_busy(failure.error, _MAY_HAVE_IT) from None
                retry_after = _retry_after_of(failure.error)
                delay = self.retry.delay(attempt, self._rng, retry_after)
                if time.monotonic() + delay >= give_up:
                    if retry_after is not None:  # the service asked for a longer wait than is left
                        raise _still_busy(failure.error, _MAY_HAVE_IT) from None
                    raise E.ServiceTimeoutError(
                        f"The service stopped answering: for {self.probe_budget:g} s it did not say whether it "
                        "had received the task; check your connection and try again."
                    ) from None
                await self._pause(delay)
                continue
            if _not_found(answer) and not ctx.seen_count:
                return None
            return answer
        raise E.ServiceTimeoutError("The service did not answer in time.")  # not reached

    async def _exchange(
        self,
        tasks: list[dict[str, Any]],
        read_timeout: float | None,
        *,
        limit: int,
        phase: str,
        ctx: _Context,
        on_sent: Callable[[], None] | None = None,
    ) -> AsyncGenerator[GeneratedImage | _Answer, None]:
        """POST ``tasks``; yield the image of each new finished item as soon as it is ready,
        while the rest of the answer is still arriving, and the answer itself last. An
        exchange that fails after images were yielded still yields every image that arrived
        whole before raising (``_NotSent``, ``_Ambiguous`` or a ``KreaError``)."""
        arrived: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        reader = asyncio.ensure_future(
            self._post_once(
                tasks,
                read_timeout,
                limit=limit,
                phase=phase,
                on_item=arrived.put_nowait,
                on_sent=on_sent,
                deadline=ctx.deadline,
            )
        )
        # Seen even when no one waits for it: a caller that stops early and closes the
        # client fails the read under way.
        reader.add_done_callback(_retrieve)
        ctx.refetch = False
        pipeline = _Pipeline(self, ctx)
        getter: asyncio.Future[dict[str, Any]] | None = None
        try:
            while not reader.done() or not arrived.empty():
                while pipeline.ready():
                    image = await pipeline.take()
                    if image is not None:
                        yield image
                if getter is None:
                    getter = asyncio.ensure_future(arrived.get())
                waits: set[asyncio.Future[Any]] = {getter, reader}
                head = pipeline.head()
                if head is not None:
                    waits.add(head)
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    pipeline.add([getter.result()])
                    getter = None
            failure = reader.exception()
            if failure is None:
                pipeline.add(reader.result().envelope.data)  # what was not handed over on the way
            while pipeline:
                image = await pipeline.take()
                if image is not None:
                    yield image
            if failure is not None:
                raise failure
            yield reader.result()
        finally:
            if getter is not None:
                getter.cancel()
            if not reader.done():
                reader.cancel()
                with contextlib.suppress(BaseException):
                    await reader
            pipeline.cancel()

    def _poll_delay(self, ctx: _Context, failures: int, retry_after: float | None = None) -> float:
        """Seconds until the next getResponse (see :class:`PollPolicy`); after ``failures``
        failed polls in a row, at least the retry back-off, and at least ``retry_after``
        (within :attr:`RetryPolicy.retry_after_cap`) when the service asked for that wait."""
        policy = self.poll
        since_poll = 0.0  # time already gone from the interval, with URL outputs
        if not ctx.polls:
            delay = policy.initial
        else:
            now = time.monotonic()
            waited = max(0.0, now - ctx.submitted_at)
            delay = (policy.factor - 1) * waited
            fresh = ctx.seen_count - ctx.seen_before  # images of this task's run in this process
            if ctx.seen_count and ctx.request.output_type != "URL":
                # Every poll carries every finished image again (those of an earlier run too).
                delay = max(delay, (policy.inline_factor - 1) * waited)
            if fresh > 0 and ctx.polled_at is not None:
                if ctx.request.output_type == "URL":
                    # The pace so far: images finished by the time the latest poll was sent.
                    per_image = max(0.0, ctx.polled_at - ctx.submitted_at) / fresh
                    delay = min(delay, per_image)
                    # The interval runs from when the latest poll went out: downloading the
                    # images it brought took part of it, and does not put the next one off.
                    since_poll = max(0.0, now - ctx.polled_at)
                else:
                    # A little after the rest should be done at the pace so far (images finished
                    # by the time the latest poll that brought some was sent): a last poll that
                    # comes just too early costs another round (every finished image again), a
                    # late one less. And no poll shortly before that end: it would carry nearly
                    # every image, and the last one all of them again. Once a poll sent at that
                    # end (or within the shortest interval of it) has brought nothing, the pace
                    # says nothing more: the polls back off.
                    basis = ctx.progress_at if ctx.progress_at is not None else ctx.polled_at
                    per_image = max(0.0, basis - ctx.submitted_at) / fresh
                    remaining = max(0, ctx.request.number_results - ctx.seen_count - ctx.failed)
                    end = basis + (remaining + _LAST_POLL_MARGIN) * per_image
                    rest_done = end - now
                    # The latest poll was sent at that end, and brought nothing (a poll sent
                    # before it whose large answer came after it does not count).
                    missed = ctx.polled_at > basis and ctx.polled_at >= end - policy.minimum
                    if not missed and rest_done < 1.5 * delay:
                        delay = max(0.0, rest_done)
        if failures:
            delay = min(policy.maximum, max(policy.minimum, delay, self.retry.delay(failures - 1, self._rng)))
            if retry_after is not None:
                delay = max(delay, self.retry.delay(failures - 1, self._rng, retry_after))
            return delay
        return max(0.0, min(policy.maximum, max(policy.minimum, delay)) - since_poll)

    async def _poll(
        self,
        ctx: _Context,
        deadline: float,
        say: StatusCallback,
        first: _Answer | None = None,
    ) -> AsyncIterator[GeneratedImage]:
        request = ctx.request
        n = request.number_results
        failures = 0
        retry_after: float | None = None  # asked for by the answer to the latest failed poll
        answer = first
        while True:
            before = ctx.seen_count
            if answer is None:
                if time.monotonic() > deadline:
                    raise E.ServiceTimeoutError(
                        f"The service did not finish the images in time ({ctx.seen_count} of {n} arrived)."
                    )
                await self._pause(self._poll_delay(ctx, failures, retry_after))
                ctx.polls += 1
                polled_at = time.monotonic()
                try:
                    async with contextlib.aclosing(
                        self._exchange(
                            [{"taskType": "getResponse", "taskUUID": request.task_uuid}],
                            None,
                            limit=answer_limit(n),
                            phase="waiting for the images",
                            ctx=ctx,
                        )
                    ) as exchange:
                        async for got in exchange:
                            if isinstance(got, _Answer):
                                answer = got
                            else:
                                yield got
                    if failures and ctx.seen_count == before:
                        # Answered again: the line no longer says it is being asked again.
                        say(f"{ctx.seen_count} of {counted(n, 'image')} ready…" if ctx.seen_count else "Generating…")
                    failures, retry_after = 0, None
                    ctx.polled_at = polled_at
                    if ctx.seen_count > before:
                        ctx.progress_at = polled_at
                except (_NotSent, _Ambiguous) as failure:  # polling is safe to repeat
                    failures += 1
                    retry_after = _retry_after_of(failure.error)
                    if failures >= self.retry.attempts:
                        # The service has the task: its images are still to be collected.
                        raise _still_busy(_in_a_row(failure.error, failures), _HAS_IT) from None
                    if ctx.seen_count > before:
                        ctx.progress_at = polled_at
                        say(f"{ctx.seen_count} of {counted(n, 'image')} ready…")
                    # Said as it happens, as a refused sending is: a service silent for
                    # minutes was silence here too, then one sentence naming one wait.
                    said = str(failure.error).split(";")[0].rstrip(".")
                    say(f"{said}; asking again…")
                    continue
                assert answer is not None
            else:
                async for image in self._take(answer.envelope.data, ctx):
                    yield image
                if ctx.seen_count > before:  # an answer that came before polling began
                    ctx.progress_at = time.monotonic()
            env = answer.envelope
            answer = None
            errs = _errors_of(env, request.task_uuid)
            ctx.failed = len(errs)
            if ctx.seen_count > before:
                say(f"{ctx.seen_count} of {counted(n, 'image')} ready…")
            processing = _has_processing(env)
            if ctx.refetching and not processing:
                # An answer that is the whole state (nothing in the making) without an item to
                # be fetched again counts as one more attempt at it: a service that sends a
                # damaged image once and then leaves it out is not polled until the job's time
                # runs out.
                present = {str(item.get("imageUUID")) for item in env.data if isinstance(item, dict)}
                for image_uuid, damaged in list(ctx.refetching.items()):
                    if image_uuid not in present:
                        ctx.attempts[image_uuid] = ctx.attempts.get(image_uuid, 0) + 1
                        if ctx.attempts[image_uuid] > 2:
                            raise damaged
            if ctx.seen_count >= n or (errs and not processing) or (ctx.seen_count + len(errs) >= n):
                self._check_complete(ctx, errs)
                return

    async def _take(self, data: list[dict[str, Any]], ctx: _Context) -> AsyncIterator[GeneratedImage]:
        """The images of the finished items of ``data`` not seen before. An item whose data
        is damaged is fetched again with getResponse (up to twice), so a bad transfer loses
        nothing."""
        ctx.refetch = False
        pipeline = _Pipeline(self, ctx)
        try:
            pipeline.add(data)
            while pipeline:
                image = await pipeline.take()
                if image is not None:
                    yield image
        finally:
            pipeline.cancel()

    def _check_complete(self, ctx: _Context, errs: list[dict[str, Any]]) -> None:
        n = ctx.request.number_results
        if ctx.seen_count >= n:
            return
        if ctx.seen_count == 0 and errs:
            raise error_from(errs[0])
        if errs:
            cause = error_from(errs[0])
            raise E.TaskError(
                f"The service returned {ctx.seen_count} of {counted(n, 'image')}; "
                f"the rest failed: {within(cause.message)}.",
                code=cause.code,
            )
        if ctx.seen_count == 0:  # an empty body, null, [] or {}: no answer to the task at all
            raise E.MalformedResponseError("The service sent an answer with no image and no error in it.")
        raise E.MalformedResponseError(f"The service returned {ctx.seen_count} of {counted(n, 'image')}.")

    @staticmethod
    def _new_items(data: list[dict[str, Any]], ctx: _Context) -> list[dict[str, Any]]:
        fresh = []
        for item in data:
            if item.get("taskUUID") not in (None, ctx.request.task_uuid):
                continue
            if not is_finished_item(item):
                continue
            image_uuid = str(item["imageUUID"])
            if image_uuid in ctx.seen:
                continue
            ctx.seen.add(image_uuid)
            fresh.append(item)
        return fresh

    async def _fetch(self, item: dict[str, Any], ctx: _Context) -> tuple[bytes, VerifiedImage]:
        """An item's image, decoded (or downloaded) and verified."""
        width, height = ctx.request.size
        if _is_inline(item):
            return await asyncio.to_thread(self._decode_inline, item, width, height)
        self._on_this_loop()
        data = await self._download(str(item["imageURL"]), self._http, ctx.deadline)
        if not self.gui:  # a millisecond or two: not worth a thread (and its memory arena)
            return data, verify_image(data, width, height)
        return data, await asyncio.to_thread(verify_image, data, width, height)

    def _start_fetch(
        self, item: dict[str, Any], ctx: _Context, here: bool = False
    ) -> asyncio.Future[tuple[bytes, VerifiedImage]]:
        """:meth:`_fetch` under way: an image URL on the downloads' own thread at once (so
        that it is fetched even while the caller holds this loop), the rest as a task of
        this loop; so too, ``here``, an image URL the caller is waiting for with this loop
        free (without a thread's hop)."""
        if "imageURL" in item and not _is_inline(item) and self._downloads_aside() and not here:
            if self._closed:  # the images in hand are still handed over; this one says why not
                failed: asyncio.Future[tuple[bytes, VerifiedImage]] = asyncio.get_running_loop().create_future()
                failed.set_exception(E.KreaError(_CLOSED))
                return failed
            width, height = ctx.request.size
            try:
                return self._aside_thread().submit(
                    self._download_aside(str(item["imageURL"]), width, height, ctx.deadline)
                )
            except RuntimeError as exc:
                self._no_downloads_aside(exc)
        return asyncio.ensure_future(self._fetch(item, ctx))

    def _no_downloads_aside(self, exc: RuntimeError) -> None:
        """The downloads' thread could not start: images are downloaded on the caller's
        loop from now on (as for the window), rather than the task failing."""
        log.warning("the downloads' thread could not start (%s); downloading on the caller's loop", exc)
        self._may_download_aside = False

    def _downloads_aside(self) -> bool:
        return self._may_download_aside and not self.gui  # gui may be set after the client is made

    def _aside_thread(self) -> LoopThread:
        """The downloads' thread (not yet started). A client never closed ends it when it
        is collected."""
        if self._aside is None:
            self._aside = LoopThread("krea-downloads")
            weakref.finalize(self, self._aside.close_soon)
        return self._aside

    async def _download_aside(
        self, url: str, width: int, height: int, deadline: float | None
    ) -> tuple[bytes, VerifiedImage]:
        """Download and verify an image (on the downloads' own loop, with its own client)."""
        try:
            data = await self._download(url, await self._open_aside_http(), deadline)
        except asyncio.CancelledError:
            if self._aside is not None and self._aside.ending:  # ended by aclose(), not the caller
                raise E.KreaError(_CLOSED) from None
            raise
        return data, verify_image(data, width, height)

    async def _open_aside_http(self) -> httpx.AsyncClient:
        """The downloads' HTTP client, made at first need (on the downloads' own loop)."""
        if self._aside_http is None:
            self._aside_http, direct = self._own_http()
            assert self._aside is not None
            self._aside.add_closer(self._aside_http.aclose)
            if direct is not None:
                self._aside_direct = direct
                self._aside.add_closer(_closer_of(direct))
        return self._aside_http

    def _task_sent(self, request: GenerationRequest, say: StatusCallback) -> None:
        """The task has gone out: the service works on it from now on (and a cancel from
        now on leaves images to collect, unless its answer refuses it)."""
        self._accepted.add(request.task_uuid)
        # A sync answer comes once the images are made, so until then they are being made.
        if request.delivery_method != "async":
            say("Generating…")
        # Not before the task went out: the thread's start would hold up the sending.
        self._ready_downloads(request)

    def _ready_downloads(self, request: GenerationRequest) -> None:
        """For a batch of image URLs, start the downloads' thread and client while the
        service works, rather than when the second image is ready (a few milliseconds).
        A batch of one needs neither: its image comes while the caller waits for it, on
        the caller's loop (:meth:`_Pipeline.add`)."""
        if (
            request.output_type == "URL"
            and request.number_results > 1
            and self._downloads_aside()
            and not self._closed
            and self._aside_http is None
        ):
            try:
                self._aside_thread().submit(self._open_aside_http()).add_done_callback(_retrieve)
            except RuntimeError as exc:
                self._no_downloads_aside(exc)

    def _decode_inline(self, item: dict[str, Any], width: int, height: int) -> tuple[bytes, VerifiedImage]:
        """Decode and verify an item's image data (on a worker thread)."""
        helper, pacer = self.gui, self._pacer
        if "imageBase64Data" in item:
            data = _decode_b64_value(item["imageBase64Data"], helper=helper, pacer=pacer)
        else:
            value = item["imageDataURI"]
            if not isinstance(value, (str, Blob)):
                raise E.MalformedResponseError("The service sent an image data URI that cannot be read.")
            data = decode_data_uri(value, helper=helper, pacer=pacer)
        return data, verify_image(data, width, height)

    @staticmethod
    def _image(item: dict[str, Any], data: bytes, verified: VerifiedImage, ctx: _Context) -> GeneratedImage:
        """The next image of ``ctx``'s task (its index is its place in arrival order)."""
        request = ctx.request
        index = ctx.seen_count
        ctx.seen_count += 1
        return GeneratedImage(
            task_uuid=request.task_uuid,
            image_uuid=_usable_image_uuid(item["imageUUID"]),
            data=data,
            format=verified.format,
            width=verified.width,
            height=verified.height,
            seed=_seed_of(item.get("seed")),
            cost=_cost_of(item.get("cost")),
            nsfw=item.get("NSFWContent") if isinstance(item.get("NSFWContent"), bool) else None,
            index=index,
            record=ctx.record.replace(task_uuid=request.task_uuid),
        )

    async def _download(self, url: str, http: httpx.AsyncClient, deadline: float | None = None) -> bytes:
        self._check_open()
        if not _usable_image_url(url):
            raise E.MalformedResponseError("The service sent an image URL that cannot be used.")
        if urlsplit(url).scheme != "https" and not is_loopback(url):
            raise E.MalformedResponseError("The service sent an image URL that is not HTTPS.")
        # Every attempt within the job's time: a host trickling a byte within each read's
        # timeout, or asking again and again to come back later, is not waited for without end.
        try:
            return await _within(self._download_attempts(url, http), self._time_left(deadline))
        except asyncio.TimeoutError:
            raise E.NetworkError(
                f"Downloading a finished image did not end within the job's {self.job_timeout:g} s; "
                "check your connection."
            ) from None

    async def _download_attempts(self, url: str, http: httpx.AsyncClient) -> bytes:
        # The plain answer an image host gives is read straight into the image's buffer;
        # one with a body of another kind goes to httpx, from then on (``direct``), and so
        # does the download at once, should that way fail (a network that drops it, a host
        # it cannot reach): httpx handles every case, and says what went wrong.
        direct = self._direct if http is self._http else self._aside_direct if http is self._aside_http else None
        for attempt in range(self.retry.attempts):
            self._check_open()  # closed while an attempt was waited for: said so, not tried again
            busy: E.KreaError | None = None
            got: bytes | Declined | None = None
            unreached: httpx.ConnectTimeout | None = None
            if direct is not None:
                try:
                    got = await direct.get(url, self.max_download_bytes)
                except httpx.ConnectTimeout as exc:  # httpx would wait as long again: the next attempt is its
                    self._check_open()
                    unreached, direct = exc, None
                except Exception as exc:  # whatever it was, httpx asks again
                    self._check_open()  # closed under the download: said so
                    log.info("an image download failed (%s: %s); asking again through httpx", type(exc).__name__, exc)
                    direct = None
            try:
                if unreached is not None:
                    raise unreached
                if isinstance(got, bytes):
                    return got
                if got is not None and got.status not in (None, 200):
                    busy = self._download_status(got.status, got.retry_after, attempt)
                else:
                    direct = None
                    # The image as it is: a compressed body would be inflated whole before its
                    # size could be checked against the download limit.
                    async with http.stream("GET", url, headers=_IDENTITY) as resp:
                        if resp.status_code == 200:
                            return await self._receive_image(resp)
                        busy = self._download_status(resp.status_code, resp.headers.get("Retry-After"), attempt)
            except httpx.DecodingError as exc:
                raise E.MalformedResponseError("A finished image's host sent a body that cannot be read.") from exc
            except httpx.TransportError as exc:
                self._check_open()  # the client closed under the download (the caller's own client)
                if attempt + 1 >= self.retry.attempts:
                    raise E.NetworkError("Downloading a finished image failed; check your connection.") from exc
            except RuntimeError:  # httpx: "the client has been closed", in a race with aclose()
                self._check_open()
                raise
            # Downloading again is free: wait as the host asked, if it did (the answer is closed first).
            await self._sleep(self.retry.delay(attempt, self._rng, None if busy is None else _retry_after_of(busy)))
        raise E.NetworkError("Downloading a finished image failed.")

    def _download_status(self, status: int, retry_after: str | None, attempt: int) -> E.KreaError:
        """What an image host's answer other than 200 means: the error to wait on before
        asking again (a host overloaded for a moment); raised where asking again is over,
        or would not help."""
        if status not in RETRYABLE_STATUSES:
            raise E.MalformedResponseError(f"Downloading a finished image failed (HTTP {status}).")
        if attempt + 1 >= self.retry.attempts:
            raise E.NetworkError(
                f"Downloading a finished image failed because its host kept answering HTTP {status}; try again later."
            )
        return error_from(None, status, retry_after)

    async def _receive_image(self, resp: httpx.Response) -> bytes:
        """The body of a successful image download, within :attr:`max_download_bytes`."""
        encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):  # asked for as it is, sent compressed all the same
            raise E.MalformedResponseError("A finished image's host sent it compressed, which was not asked for.")
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_download_bytes:
            raise E.MalformedResponseError("A finished image is larger than the download limit.")
        # BytesIO hands its own bytes object over: the image is held once (chunks
        # joined, or a bytearray copied, are held twice). Sized up front from the
        # announced length, it never grows (each growth would copy what came).
        buf = io.BytesIO()
        if declared and declared.isdigit() and int(declared) > 0:
            buf.seek(int(declared) - 1)
            buf.write(b"\0")
            buf.seek(0)
        async for chunk in resp.aiter_bytes():
            if buf.write(chunk) and buf.tell() > self.max_download_bytes:
                raise E.MalformedResponseError("A finished image is larger than the download limit.")
        buf.truncate()  # to what came, should it be less than announced
        return buf.getvalue()


@dataclass
class _Context:
    request: GenerationRequest
    seen: set[str]  # imageUUIDs handed over (or being decoded)
    record: GenerationRecord  # what every image of the task carries
    seen_count: int = 0  # images handed over
    refetch: bool = False  # an item must be fetched again
    attempts: dict[str, int] = field(default_factory=dict)
    # Items whose data came damaged, to be fetched again, with the error each came with.
    refetching: dict[str, E.KreaError] = field(default_factory=dict)
    submitted_at: float = 0.0  # monotonic: when the task was sent
    polled_at: float | None = None  # monotonic: when the latest answered poll was sent
    polls: int = 0  # getResponse polls so far
    progress_at: float | None = None  # monotonic: when the latest request that brought images was sent
    failed: int = 0  # items the latest answer reported as failed
    seen_before: int = 0  # images received before this process followed the task
    deadline: float | None = None  # monotonic: when the job's time (job_timeout) runs out
    probe_by: float | None = None  # monotonic: the questions of whether it has the task end by then too

    def __post_init__(self) -> None:
        self.seen_count = len(self.seen)
        self.seen_before = self.seen_count


T = TypeVar("T")


def _errors_of(env: Envelope, task_uuid: str) -> list[dict[str, Any]]:
    """The errors an answer gives for the task ``task_uuid``: its error objects, and its
    items that failed. An answer that carries errors for other tasks only, and nothing
    else, is about this one all the same (a service that sent the wrong taskUUID): its
    refusal is said, not "0 of N images"."""
    errs = [e for e in env.errors if e.get("taskUUID") in (None, task_uuid)]
    errs += [d for d in env.data if d.get("status") == "error"]
    if not errs and env.errors and not env.data:
        errs = env.errors[:1]
    return errs


# How long an answer already arriving when the caller stops waiting may take to come whole
# (its images are paid for); the window cancels outright after as long (CANCEL_GRACE_S).
ARRIVING_AFTER_STOP_S = 10.0
_STOP: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar("krea_stop_waiting", default=None)


@contextlib.contextmanager
def stop_waiting_when(event: asyncio.Event) -> Iterator[None]:
    """Within this block (of the task that iterates :meth:`RunwareClient.generate` or
    :meth:`~RunwareClient.collect`), once ``event`` is set every wait on the service (an
    answer, the pause before a poll or a retry) ends at once with ``CancelledError``, while
    the images already received go on being decoded, downloaded and handed over: a job
    cancelled with an answer in hand keeps every image of it."""
    token = _STOP.set(event)
    try:
        yield
    finally:
        _STOP.reset(token)


async def _unless_stopped(make: Callable[[], Awaitable[T]], unless: asyncio.Event | None = None) -> T:
    """``await make()``, ended at once (``CancelledError``) if the caller's stop event is set,
    unless ``unless`` is set by then (an answer already arriving, which is awaited whole)."""
    stop = _STOP.get()
    if stop is None:
        return await make()
    if stop.is_set():  # not even begun (made and never awaited, it would be a coroutine left)
        raise asyncio.CancelledError
    running = asyncio.ensure_future(make())
    halt = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((running, halt), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        running.cancel()
        raise
    finally:
        halt.cancel()
    if not running.done():
        if unless is not None and unless.is_set():
            # Its own time still bounds it, and a second (hard) cancel ends it, even one
            # that comes as the answer ends (see _within); so does an answer that has not
            # come whole within ARRIVING_AFTER_STOP_S.
            try:
                return await _within(running, ARRIVING_AFTER_STOP_S)
            except asyncio.TimeoutError:
                raise asyncio.CancelledError from None
        running.cancel()
        await asyncio.wait((running,))
        raise asyncio.CancelledError
    return running.result()


_IDENTITY = {"Accept-Encoding": "identity"}


async def _within(awaitable: Awaitable[T], seconds: float) -> T:
    """``awaitable``, raising TimeoutError after ``seconds``. Not asyncio.wait_for: before
    Python 3.12 it hands back the result, and drops the cancel, when a cancel comes in the
    turn of the loop the awaited thing ends (a Cancel or a quit from the window at the end
    of a download), and the job went on to its next image. asyncio.timeout where it exists
    (3.11), else :func:`_within_by_waiting`."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await _within_by_waiting(awaitable, seconds)


async def _within_by_waiting(awaitable: Awaitable[T], seconds: float) -> T:
    """``awaitable`` as a task of its own, waited for with asyncio.wait, which never hands
    a result back in place of a cancel: a cancel that comes as it ends ends it too."""
    running = asyncio.ensure_future(awaitable)
    try:
        await asyncio.wait({running}, timeout=seconds)
    except asyncio.CancelledError:
        running.cancel()
        raise
    if not running.done():
        running.cancel()
        await asyncio.wait({running})
        if running.cancelled():
            raise asyncio.TimeoutError
    return running.result()  # (what it ended with, should it have ended as it was given up)


def _closer_of(direct: DirectDownloads) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        direct.close()

    return close


def _usable_image_url(url: str) -> bool:
    """Whether ``url`` is an http(s) address with a host and a port that can be asked."""
    try:
        if not is_url(url):
            return False
        urlsplit(url).port  # noqa: B018 - raises ValueError for a port out of range or not a number
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        return False
    return True


def _tls_refusal(exc: BaseException, where: str) -> str | None:
    """The sentence for a connection that reached the host but whose HTTPS failed (an
    address that speaks plain HTTP, a certificate that cannot be verified), else None:
    it was said as "could not be reached", five times over."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (
                f"The service at {where} showed a certificate that could not be verified; check the service "
                "address you set, or whether your network's proxy stands in for it."
            )
        if isinstance(cause, ssl.SSLError) and getattr(cause, "reason", None) in _NOT_TLS:
            return (
                f"The service at {where} did not answer over HTTPS; check the service address you set "
                "(a simulator on this computer is http://)."
            )
        cause = cause.__cause__ or cause.__context__
    return None


# What OpenSSL says when the other end answers in plain HTTP (or anything but TLS); a
# handshake cut off (SSLEOFError, a reset) may be a busy proxy for a moment: not these.
_NOT_TLS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG", "UNKNOWN_PROTOCOL"}
)


def _redirected(status: int, location: str | None) -> str:
    """The sentence for an answer redirecting the request elsewhere: the API never does."""
    host = ""
    with contextlib.suppress(ValueError):
        host = urlsplit(location or "").hostname or ""
    where = f" to {host}" if host else ""
    return (
        f"The service's address sent the request elsewhere (HTTP {status}{where}); check the service address "
        "you set, or whether your network asks you to sign in first."
    )


_A_PAGE = (
    "The service's address answered with a web page, not the service's answer; check the address, "
    "or whether your network asks you to sign in first."
)


def _is_page(body: Body) -> bool:
    """Whether an answer is a web page (HTML or XML) rather than JSON: the service never
    sends one, so whatever answered it did not take the task."""
    return bytes(body[:512]).lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<"


def _is_inline(item: dict[str, Any]) -> bool:
    """Whether a finished item carries its image (rather than a URL to it)."""
    return "imageBase64Data" in item or "imageDataURI" in item


def _retrieve(job: asyncio.Future[Any]) -> None:
    """Mark a finished job's outcome as seen (a job cancelled with its pipeline may fail)."""
    if not job.cancelled():
        job.exception()


class _Pipeline:
    """Finished items on their way to becoming images: a few decoded (in worker threads) or
    downloaded at once, handed over in the order they arrived, so that the caller saves
    one image while the next are made ready."""

    def __init__(self, client: RunwareClient, ctx: _Context) -> None:
        self._client = client
        self._ctx = ctx
        self._waiting: deque[dict[str, Any]] = deque()
        self._jobs: deque[tuple[dict[str, Any], asyncio.Future[tuple[bytes, VerifiedImage]]]] = deque()

    def __bool__(self) -> bool:
        return bool(self._waiting or self._jobs)

    def add(self, data: list[dict[str, Any]]) -> None:
        """Queue the finished items of ``data`` not seen before. The caller is waiting for
        the generator meanwhile, so the first of them, with nothing else in hand, is fetched
        on its loop (an answer's first image: 13.6 → 9.5 ms from the answer to the file on
        this machine, bench_clients.py's README)."""
        fresh = self._client._new_items(data, self._ctx)
        if fresh:  # images of it made: the service has the task
            self._client._accepted.add(self._ctx.request.task_uuid)
        self._waiting.extend(fresh)
        self._fill(caller_waits=True)

    def _fill(self, caller_waits: bool = False) -> None:
        while self._waiting:
            if len(self._jobs) >= (DECODES_AHEAD if _is_inline(self._waiting[0]) else DOWNLOADS_AHEAD):
                return
            item = self._waiting.popleft()
            job = self._client._start_fetch(item, self._ctx, here=caller_waits and not self._jobs)
            job.add_done_callback(_retrieve)
            self._jobs.append((item, job))

    def head(self) -> asyncio.Future[tuple[bytes, VerifiedImage]] | None:
        return self._jobs[0][1] if self._jobs else None

    def ready(self) -> bool:
        """Whether the next image in line can be taken without waiting."""
        return bool(self._jobs) and self._jobs[0][1].done()

    async def take(self) -> GeneratedImage | None:
        """The next image in line (waiting for it); None when its data was damaged: the item
        is then fetched again with the next getResponse (at most twice)."""
        item, job = self._jobs[0]
        ctx = self._ctx
        try:
            data, verified = await job
        except E.MalformedResponseError as exc:
            self._jobs.popleft()
            self._fill()
            image_uuid = str(item["imageUUID"])
            ctx.attempts[image_uuid] = ctx.attempts.get(image_uuid, 0) + 1
            if ctx.attempts[image_uuid] > 2:
                raise
            ctx.seen.discard(image_uuid)
            ctx.refetching[image_uuid] = exc
            ctx.refetch = True
            return None
        ctx.refetching.pop(str(item["imageUUID"]), None)
        self._jobs.popleft()
        self._fill()  # the next one is made ready while the caller handles this one
        return self._client._image(item, data, verified, ctx)

    def cancel(self) -> None:
        for _item, job in self._jobs:
            job.cancel()
        self._jobs.clear()
        self._waiting.clear()


def _when_sent(said: Callable[[], None]) -> Callable[[str, dict[str, Any]], Awaitable[None]]:
    """An httpcore ``trace`` extension that calls ``said`` once the request body is sent:
    the request's own, not that of the CONNECT a proxy is asked first, which httpcore
    traces with the same extension."""
    ours = False

    async def trace(event: str, info: dict[str, Any]) -> None:
        nonlocal ours
        if event.endswith(".send_request_body.started"):
            ours = getattr(info.get("request"), "method", b"") != b"CONNECT"
        elif event.endswith(".send_request_body.complete") and ours:
            ours = False
            said()

    return trace


def sent_record(request: GenerationRequest, wire_refs: list[dict[str, Any]]) -> GenerationRecord:
    """The record a task's images carry: the request as described, its references as sent."""
    described = request.describe()
    return described.replace(
        references=tuple(
            # An address keeps no user name or password here either (as describe() has it).
            ref.replace(image=without_credentials(str(wire["image"])), strength=wire["strength"])
            for wire, ref in zip(wire_refs, described.references, strict=True)
        )
    )


def _preload_network_stack() -> None:
    """Import now what httpx's first connection would: anyio (which reads and parses its
    own source on import) and its asyncio backend, about 30 ms that would otherwise delay
    the first request. Only a head start: whatever cannot be imported is left to httpx."""
    for name in ("anyio", "anyio.abc", "anyio.lowlevel", "anyio.streams.tls", "anyio.to_thread"):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    with contextlib.suppress(ImportError):
        importlib.import_module("anyio._backends._asyncio")  # where anyio's asyncio support lives


def _decode_b64_value(value: Any, *, helper: bool, pacer: Pacer) -> bytes:
    if not isinstance(value, (str, Blob)):
        raise E.MalformedResponseError("The service sent image data that is not valid base64.")
    return decode_base64(value, helper=helper, pacer=pacer)


# What follows a busy service's words when the task was (or may have been) sent: to the
# library API's caller, then as a program that keeps the task's record says it.
_MAY_HAVE_IT = ("it may have received the task", "whether it received the task is asked again later")
_HAS_IT = (
    "the task's images can be collected later with RunwareClient.collect()",
    "the task's images are collected later",
)


def _in_a_row(error: E.KreaError, times: int) -> E.KreaError:
    """``error``, the last of ``times`` alike in a row, saying so: "did not answer within
    20 s", said after minutes of trying, named one wait of several."""
    if times > 1:
        said, sep, rest = error.message.partition(";")
        error.message = f"{said.rstrip('.')} ({times} times in a row){';' + rest if sep else '.'}"
    return error


def _still_busy(error: E.KreaError, then: tuple[str, str]) -> E.KreaError:
    """A failure while following a task the service has, or may have: a busy service
    becomes a :class:`~E.ServiceTimeoutError` (what callers keep the task for, to collect
    it later) that says what it said and ``then``, in place of "try again"; any other
    failure stays as it is."""
    if isinstance(error, E.ServiceBusyError):
        said = error.message.split(";")[0].rstrip(".")
        return E.ServiceTimeoutError(f"{said}; {then[0]}.", code=error.code, kept_message=f"{said}; {then[1]}.")
    return error


def _retry_after_of(error: E.KreaError) -> float | None:
    """The wait (seconds) the service asked for with a failure, if it asked for one."""
    return error.retry_after if isinstance(error, E.ServiceBusyError) else None


def _has_conflict(env: Envelope) -> bool:
    return any(str(e.get("code", "")).lower() == "conflicttaskuuid" for e in env.errors)


def _not_found(answer: _Answer) -> bool:
    """Whether ``answer`` (to a getResponse) says the service does not know the task."""
    env = answer.envelope
    return not env.data and any(str(e.get("code", "")).lower() == "taskfailedornotfound" for e in env.errors)


def _has_processing(env: Envelope) -> bool:
    return any(d.get("status") == "processing" for d in env.data)


def _which_reference(err: E.ValidationError, index: int, ref: ReferenceImage) -> E.ValidationError:
    """``err``, about one of up to ten references, saying which: its place, and its file's
    name (a string naming a file is a Path by now; any other string is data or an address)."""
    if err.parameter != _REFS:
        return err
    name = ref.image.name if isinstance(ref.image, Path) else ""
    which = f"Reference {index + 1}" + (f" ({name})" if name else "")
    text = str(err)
    for opening, replacement in (
        (f"The reference {name} ", f"{which} "),
        ("A reference's ", f"{which}: its "),
        ("A reference image ", f"{which} "),
        ("A reference ", f"{which} "),
    ):
        if text.startswith(opening):
            text = replacement + text[len(opening) :]
            break
    else:
        text = f"{which}: {text}"
    return E.ValidationError(text, parameter=f"{_REFS}[{index}]", code=err.code)


def _is_unknown_reference(err: E.KreaError) -> bool:
    code = (err.code or "").lower()
    return code in UNKNOWN_REFERENCE_CODES or (
        (err.parameter or "").startswith("inputs.referenceImages") and "strength" not in (err.parameter or "")
    )


def _mime_of(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def _read_reference_file(path: Path) -> bytes:
    from krea_desktop.fsutil import NotARegularFile, read_regular_file

    try:
        data = read_regular_file(path, MAX_REFERENCE_BYTES)  # never waiting on a FIFO, never reading a device
    except NotARegularFile as exc:
        if path.is_dir():
            raise E.ValidationError(
                f"The reference {path.name or path} is a folder, not an image.", parameter=_REFS
            ) from exc
        raise E.ValidationError(
            f"The reference {path.name} is not a file (a pipe or a device), so it holds no image.", parameter=_REFS
        ) from exc
    except OSError as exc:
        raise E.ValidationError(f"The reference {path.name} cannot be read.", parameter=_REFS) from exc
    if len(data) > MAX_REFERENCE_BYTES:
        raise E.ValidationError(f"The reference {path.name} is larger than 50 MB.", parameter=_REFS)
    return data


def _too_large(size: str) -> str:
    """A reference past the limits, as the command line and the window say it too."""
    return (
        f"A reference image is too large{size}: references may have at most "
        f"{spec.REFERENCE_MAX_PIXELS // 1_000_000} megapixels and {spec.REFERENCE_MAX_SIDE:,} pixels on a side, "
        "so save a smaller copy and use that."
    )


def prepare_upload(raw: bytes) -> bytes:
    """Decode a reference and re-encode it at most 2048 px on the long side, as the service
    keeps it anyway; images already small enough in PNG/JPEG/WEBP are sent as they are (a
    PNG without any text the service would refuse it whole for)."""
    from krea_desktop.pillow import (  # only references need an imaging library
        Image,
        UnidentifiedImageError,
        picture_formats,
        png_without_refused_texts,
    )

    raw = png_without_refused_texts(raw) or raw  # sent as it is, a text the service refuses would go too
    try:
        with Image.open(io.BytesIO(raw), formats=picture_formats()) as im:  # its texts already seen to
            if im.width * im.height > spec.REFERENCE_MAX_PIXELS or max(im.size) > spec.REFERENCE_MAX_SIDE:
                raise E.ValidationError(_too_large(f" ({im.width}×{im.height})"), parameter=_REFS)
            fmt = im.format
            if max(im.size) <= spec.UPLOAD_MAX_SIDE and fmt in ("PNG", "JPEG", "WEBP"):
                im.load()
                return raw
            im.seek(0)
            im.load()
            work = im.convert("RGBA" if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info else "RGB")
    except E.KreaError:
        raise
    except Image.DecompressionBombError as exc:  # far past the limit: Pillow refuses to open it at all
        raise E.ValidationError(_too_large(""), parameter=_REFS) from exc
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise E.ValidationError("A reference is not a readable image.", parameter=_REFS) from exc
    work.thumbnail((spec.UPLOAD_MAX_SIDE, spec.UPLOAD_MAX_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if work.mode == "RGBA":
        work.save(out, "PNG", compress_level=6)
    else:
        work.save(out, "JPEG", quality=92)
    return out.getvalue()


__all__ = ["PollPolicy", "RetryPolicy", "RunwareClient", "check_endpoint", "is_loopback", "prepare_upload"]

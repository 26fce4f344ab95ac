"""An event loop on a thread of its own, for work that should go on while the caller's
loop is busy.

The client hands an async caller each image as it comes (``async for image in
client.generate(...)``). A caller that then writes the image to a file holds its loop for
the time of that write, and a download that shares the loop waits for it: the next image
would only be fetched once the caller is done with this one. Downloads that run on this
thread's loop go on meanwhile (a file write and a socket read both let the GIL go), so
fetching an image and saving the one before overlap.

The thread starts with the first coroutine run on it; :meth:`LoopThread.aclose` stops it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """An asyncio loop running on a daemon thread, started at first use."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def started(self) -> bool:
        return self._thread is not None

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self._name} is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Start ``coro`` on this thread's loop now (not at the caller's loop's next turn);
        a future of the caller's running loop for its result. Cancelling that future
        cancels ``coro`` there."""
        try:
            loop = self._running_loop()
        except RuntimeError:
            coro.close()
            raise
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    async def aclose(self, last: Callable[[], Awaitable[Any]] | None = None) -> None:
        """Run ``last`` (say, closing what lives on the loop) there if the thread was
        started, then stop the loop and wait for the thread to end."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._closed = True
        if loop is None or thread is None:
            return
        try:
            if last is not None:

                async def finish() -> None:
                    await last()

                await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(finish(), loop))
        finally:
            loop.call_soon_threadsafe(loop.stop)
            await asyncio.to_thread(thread.join)
            loop.close()

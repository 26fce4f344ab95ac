"""An event loop on a thread of its own, for work that should go on while the caller's
loop is busy.

The client hands an async caller each image as it comes (``async for image in
client.generate(...)``). A caller that then writes the image to a file holds its loop for
the time of that write, and a download that shares the loop waits for it: the next image
would only be fetched once the caller is done with this one. Downloads that run on this
thread's loop go on meanwhile (a file write and a socket read both let the GIL go), so
fetching an image and saving the one before overlap.

The thread starts with the first coroutine submitted. :meth:`LoopThread.aclose` cancels
what still runs there, runs the closers (the HTTP client that lives on the loop, say) and
ends the thread; so does :meth:`LoopThread.close_soon`, without waiting, for an owner that
was never closed (from a ``weakref.finalize``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
Closer = Callable[[], Awaitable[Any]]


class LoopThread:
    """An asyncio loop running on a daemon thread, started at first use."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._closers: list[Closer] = []  # touched on the loop only
        self.ending = False  # set on the loop when it starts to end (read there)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self._name} is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=_run, args=(loop,), name=self._name, daemon=True)
                try:
                    thread.start()
                except RuntimeError:  # no thread to be had (a process at its limit)
                    loop.close()
                    raise
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

    def add_closer(self, closer: Closer) -> None:
        """Have ``closer`` awaited on the loop when it ends. Call it on the loop."""
        self._closers.append(closer)

    def _take(self) -> tuple[asyncio.AbstractEventLoop | None, threading.Thread | None]:
        with self._lock:
            if self._closed:
                return None, None
            self._closed = True
            return self._loop, self._thread

    async def aclose(self) -> None:
        """Cancel what still runs on the loop, await the closers there, and end the thread.
        Closing again does nothing. Cancelled while it waits, the closing goes on there."""
        loop, thread = self._take()
        if loop is None or thread is None:
            return
        await asyncio.shield(asyncio.wrap_future(self._end(loop)))
        thread.join(1.0)  # the loop is stopping: the thread only closes it now

    def close_soon(self) -> None:
        """As :meth:`aclose`, without waiting for it (and from any thread)."""
        loop, _thread = self._take()
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile, with the process
                self._end(loop)

    def _end(self, loop: asyncio.AbstractEventLoop) -> concurrent.futures.Future[None]:
        """:meth:`_finish` on the loop, which stops once it is done (its outcome handed
        over first: a loop stopped from within it would leave that undelivered)."""
        done = asyncio.run_coroutine_threadsafe(self._finish(), loop)

        def stop(_done: concurrent.futures.Future[None]) -> None:
            with contextlib.suppress(RuntimeError):  # already closed
                loop.call_soon_threadsafe(loop.stop)

        done.add_done_callback(stop)
        return done

    async def _finish(self) -> None:
        self.ending = True  # what is cancelled from now on is cancelled by this, not its caller
        here = asyncio.current_task()
        others = [task for task in asyncio.all_tasks() if task is not here]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)  # their outcomes retrieved
        for closer in self._closers:
            with contextlib.suppress(Exception):  # the others are still closed
                await closer()
        self._closers.clear()


def _run(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.close()

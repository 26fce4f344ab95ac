"""The simulator inside the process: an httpx transport for demo mode.

``httpx.AsyncClient(transport=SimulatorTransport(service))`` talks to the simulator with
no socket at all. Any URL works; ``DEMO_URL`` is the conventional one. Transport faults
become the exceptions a real connection would raise: a dropped connection raises
``httpx.RemoteProtocolError``, a hanging one ``httpx.ReadTimeout`` once the request's
read timeout has passed.
"""

from __future__ import annotations

import asyncio

import httpx

from krea_desktop.simulator.service import SimulatorConfig, SimulatorService

DEMO_URL = "http://simulator.krea-desktop.invalid/v1"


class SimulatorTransport(httpx.AsyncBaseTransport):
    """Routes every request of an ``httpx.AsyncClient`` to a :class:`SimulatorService`."""

    simulated = True  # a client on this transport marks its images' records as simulated

    def __init__(self, service: SimulatorService | None = None, config: SimulatorConfig | None = None) -> None:
        self.service = service if service is not None else SimulatorService(config)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        base = f"{request.url.scheme}://{request.url.netloc.decode('ascii')}"
        target = request.url.raw_path.decode("ascii")
        reply = await self.service.route(request.method, target, dict(request.headers.items()), body, base_url=base)
        if reply.action == "drop":
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        if reply.action == "hang":
            timeout = request.extensions.get("timeout", {}).get("read")
            if timeout is None:
                await asyncio.Event().wait()  # no read timeout: wait until cancelled
            await asyncio.sleep(float(timeout))
            raise httpx.ReadTimeout("The simulator did not answer (injected hang).", request=request)
        return httpx.Response(
            reply.status,
            headers=reply.headers,
            content=b"" if request.method == "HEAD" else reply.body,
            request=request,
        )

"""Live updates of an open page: a server-sent event stream that asks a service, every
``live_poll_ms`` as the signed-in person, for a fingerprint of what the page shows, and says
``changed`` when it differs from the page's own (``mark``). ``/console.js`` then reloads the page's
``#live`` region; a page without the script is simply a page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from services.console.apis import Params, Service, ServiceError
from services.console.deps import ConsoleRuntime
from services.console.handlers.accounts import SignedIn
from services.console.web import SECURITY_HEADERS

STREAM_S = 600
"""A stream lasts ten minutes; the browser reconnects by itself and the session is checked again."""


def live_stream(
    request: Request,
    runtime: ConsoleRuntime,
    person: SignedIn,
    mark: str | None,
    *,
    service: Service,
    path: str,
    params: Params,
    fingerprint: Callable[[Any], str],
    on_change: Callable[[], None] | None = None,
) -> StreamingResponse:
    """Stream ``changed`` (with the new fingerprint) each time the ``fingerprint`` of what ``service``
    answers ``person`` at ``path`` is other than the last, calling ``on_change`` first; while the
    service does not answer, a comment says so now and then."""
    interval = runtime.settings.live_poll_ms / 1000
    services = runtime.deps.services

    async def look() -> str | None:
        try:
            # A token minted each time: the stream outlives one.
            found = await services.as_person(person).get(service, path, **params)
        except ServiceError:
            return None
        return fingerprint(found)

    async def events() -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        last = mark
        for i in range(int(STREAM_S / interval)):
            if await request.is_disconnected():
                return
            seen = await look()
            if seen is not None:
                if last is not None and seen != last:
                    if on_change is not None:
                        on_change()
                    yield f"event: changed\ndata: {seen}\n\n"
                last = seen
            elif i % 15 == 0:
                yield f": waiting for {service}\n\n"
            await asyncio.sleep(interval)

    headers = {**SECURITY_HEADERS, "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

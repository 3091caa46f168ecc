"""Process tuning: what a service process does to the machine it runs on, apart from its wiring.

- ``lower_priority``: a worker process lets API processes beside it go first.
- ``freeze_startup_objects``: what startup built is kept out of the garbage collector's sight.
- ``ServiceApp``: FastAPI with an optional ASGI front door for a hot route.
"""

from __future__ import annotations

import gc
import os
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.guard import with_security


def lower_priority(nice: int) -> None:
    """Lower this process's CPU priority by ``nice``, also against other sessions.

    With Linux's autogroup scheduling (on by default on most distributions), every session is a
    scheduling group and groups share the CPU equally whatever their processes' nice values: a
    worker that leads its own session (as ``closeloop dev`` and the benches start services) would
    still take as much CPU as the API next to it. So such a worker lowers its group's weight too.
    """
    os.nice(nice)
    if os.getsid(0) != os.getpid():
        return  # in a session with other processes: lowering the group would lower them too
    try:
        with open("/proc/self/autogroup", "w") as group:
            group.write(str(nice))
    except OSError:
        pass  # no autogroup here (another OS, or scheduling without it): os.nice is all it takes


def freeze_startup_objects() -> None:
    """Move what startup built out of the collector's sight.

    Modules, the app, its models and pools live as long as the process. A full collection no
    longer walks them, so it does not stall every request in flight for the time it takes to walk
    a service's startup objects (tens of milliseconds in trigger; bench/RESULTS.md).
    """
    gc.collect()
    gc.freeze()


class ServiceApp(FastAPI):
    """FastAPI with an optional front door: an ASGI app that sees each HTTP request first, answers
    what it is made for, and hands the rest on to ``handle`` (FastAPI's own way in).

    For a hot route whose handler is cheap, FastAPI's per-request machinery is most of the cost:
    its middleware stack, route matching, parameter resolution. A front door answers such a route
    itself and must then do what that machinery would: errors as problem+json, the body limit,
    the request metrics.
    """

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is not None and scope["type"] == "http":
            scope["app"] = self  # what Starlette sets for request.app
            await self.front(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        """Return the OpenAPI document, with the bearer scheme that authenticated operations name."""
        return with_security(super().openapi())

"""An integrator's webhook endpoint on 127.0.0.1 that verifies each message with the ``standardwebhooks``
package (the published reference implementation of Standard Webhooks), not with closeloop's own code.

``POST /{name}``: an endpoint per subscription. A message whose signature does not verify under the
endpoint's secret (``secrets[name]``) is answered 401 and kept in ``rejected``; a verified one is
answered with ``status[name]`` (200 by default), and while ``down[name]`` is above zero with 503 (one
fewer each time). Verified messages that were accepted (2xx) are kept in ``accepted[name]`` in arrival
order, each with its ``webhook-id``; receivers deduplicate on it, so ``unique(name)`` drops repeats.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from closeloop.infra import free_port
from tests.support.served import serve


@dataclass
class Received:
    webhook_id: str
    body: dict[str, Any]


@dataclass
class Receiver:
    host: str = "127.0.0.1"
    port: int = 0
    secrets: dict[str, str] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)
    down: dict[str, int] = field(default_factory=dict)
    accepted: dict[str, list[Received]] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    """How many verified messages were answered with an error (down or ``status``)."""
    rejected: list[str] = field(default_factory=list)
    """Why messages failed verification."""

    def url(self, name: str) -> str:
        return f"http://{self.host}:{self.port}/{name}"

    def unique(self, name: str) -> list[Received]:
        seen: set[str] = set()
        out = []
        for message in self.accepted.get(name, []):
            if message.webhook_id not in seen:
                seen.add(message.webhook_id)
                out.append(message)
        return out

    async def endpoint(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = await request.body()
        secret = self.secrets.get(name)
        if secret is None:
            self.rejected.append(f"{name}: no secret registered")
            return Response(status_code=404)
        try:
            payload = Webhook(secret).verify(body, dict(request.headers))
        except WebhookVerificationError as exc:
            self.rejected.append(f"{name}: {exc}")
            return Response(status_code=401)
        if self.down.get(name, 0) > 0:
            self.down[name] -= 1
            self.refused[name] = self.refused.get(name, 0) + 1
            return Response(status_code=503)
        status = self.status.get(name, 200)
        if status >= 300:
            self.refused[name] = self.refused.get(name, 0) + 1
            return Response(status_code=status)
        assert payload == json.loads(body)
        self.accepted.setdefault(name, []).append(Received(request.headers["webhook-id"], payload))
        return Response(status_code=status)

    async def __aenter__(self) -> Receiver:
        self.port = self.port or free_port()
        app = Starlette(routes=[Route("/{name}", self.endpoint, methods=["POST"])])
        self._served = await serve(app, self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._served.stop()

"""A local HTTP server that answers like Zendesk Support's ticket API, as Zendesk documents it, and a
plain recording endpoint for the generic connector.

``FakeZendesk``: ``PUT /api/v2/tickets/{id}.json`` with basic auth ``{email}/token:{api_token}`` (else
401) and ``Content-Type: application/json``; the body is ``{"ticket": {...}}`` where ``comment`` is
``{"body": text, "public": bool}`` and ``additional_tags`` a list of tags (added to the ticket's);
unknown ticket fields are refused here (422) so a test sees any drift; an unknown ticket is 404.
``script`` answers the next requests with its statuses (``429`` with ``Retry-After``).

``FakeEndpoint``: ``/{anything}`` records method, path, headers and JSON body and answers with the
next status in ``script`` (200 once it is empty).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from closeloop.infra import free_port
from tests.support.served import serve

TICKET_FIELDS = {"comment", "additional_tags", "remove_tags", "status", "priority", "subject", "tags"}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float


class _Server:
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self) -> list[Route]:
        raise NotImplementedError

    async def __aenter__(self) -> Any:
        self.port = self.port or free_port()
        self._served = await serve(Starlette(routes=self.routes()), "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._served.stop()


@dataclass
class FakeZendesk(_Server):
    email: str
    api_token: str
    port: int = 0
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    script: list[int] = field(default_factory=list)
    retry_after: int = 1
    requests: list[Seen] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def routes(self) -> list[Route]:
        return [Route("/api/v2/tickets/{id}.json", self.update_ticket, methods=["PUT"])]

    def _refuse(self, status: int, message: str) -> JSONResponse:
        self.violations.append(message)
        return JSONResponse({"error": "RecordInvalid", "description": message}, status_code=status)

    async def update_ticket(self, request: Request) -> Response:
        raw = await request.body()
        body = json.loads(raw) if raw else None
        self.requests.append(Seen("PUT", request.url.path, dict(request.headers), body, time.monotonic()))
        expected = "Basic " + base64.b64encode(f"{self.email}/token:{self.api_token}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return self._refuse(401, "Couldn't authenticate you")
        if not request.headers.get("content-type", "").startswith("application/json"):
            return self._refuse(415, "Content-Type must be application/json")
        if self.script:
            status = self.script.pop(0)
            headers = {"Retry-After": str(self.retry_after)} if status == 429 else {}
            return JSONResponse({"error": "scripted"}, status_code=status, headers=headers)
        ticket_id = int(request.path_params["id"])
        if ticket_id not in self.tickets:
            return JSONResponse({"error": "RecordNotFound", "description": "Not found"}, status_code=404)
        if not isinstance(body, dict) or set(body) != {"ticket"} or not isinstance(body["ticket"], dict):
            return self._refuse(400, 'the body must be {"ticket": {...}}')
        update = body["ticket"]
        if set(update) - TICKET_FIELDS:
            return self._refuse(422, f"unknown ticket fields {sorted(set(update) - TICKET_FIELDS)}")
        comment = update.get("comment")
        if comment is not None and (
            set(comment) - {"body", "html_body", "public", "author_id"}
            or not isinstance(comment.get("body"), str)
            or not isinstance(comment.get("public"), bool)
        ):
            return self._refuse(422, "comment needs a body and a boolean public")
        tags = update.get("additional_tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) and " " not in t for t in tags):
            return self._refuse(422, "additional_tags is a list of tags without spaces")
        ticket = self.tickets[ticket_id]
        if comment is not None:
            ticket.setdefault("comments", []).append(comment)
        ticket["tags"] = sorted({*ticket.get("tags", []), *tags})
        return JSONResponse({"ticket": {"id": ticket_id, "tags": ticket["tags"]}})


@dataclass
class FakeEndpoint(_Server):
    port: int = 0
    script: list[int] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)

    def routes(self) -> list[Route]:
        return [Route("/{path:path}", self.record, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])]

    async def record(self, request: Request) -> Response:
        raw = await request.body()
        self.requests.append(
            Seen(
                request.method,
                request.url.path,
                dict(request.headers),
                json.loads(raw) if raw else None,
                time.monotonic(),
            )
        )
        return Response(status_code=self.script.pop(0) if self.script else 200)

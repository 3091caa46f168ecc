"""The webhook fast path: ``POST /v1/webhooks/{kind}/{integration_id}`` answered in front of FastAPI.

A webhook's own work is small (verify a signature, parse, store a row), so FastAPI's per-request
machinery — its middleware stack, matching some forty routes, resolving parameters — was most of
what a webhook cost. This is the app's front door (``ServiceSpec.front``): it sees each HTTP request
before FastAPI does and answers webhook POSTs with the same handler
(``api.webhooks.receive_webhook``), the same problem+json errors, the same body-size limit and the
same metrics under the same route template; every other request, and any path it does not
recognise, goes on to FastAPI, which also documents the webhook routes in OpenAPI. In front of
FastAPI rather than as one of its middlewares, it also skips FastAPI's own outer layers (its error
and telemetry middlewares, the check whether OpenTelemetry is configured); ``python -m
bench.webhook_cpu`` measures what that saves (bench/RESULTS.md).
"""

from __future__ import annotations

import logging
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services.trigger.api.webhooks import PATH_KINDS, receive_webhook
from shared.errors import CloseloopError, internal_error, problem_of
from shared.observability import record_request
from shared.service import read_body

log = logging.getLogger(__name__)
_PREFIX = "/v1/webhooks/"


class WebhookFastPath:
    def __init__(self, app: ASGIApp, *, max_bytes: int, service: str = "trigger") -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].startswith(_PREFIX):
            path_kind, _, integration_id = scope["path"][len(_PREFIX) :].partition("/")
            if path_kind in PATH_KINDS and integration_id and "/" not in integration_id:
                await self._serve(scope, receive, send, path_kind, integration_id)
                return
        await self.app(scope, receive, send)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, path_kind: str, integration_id: str
    ) -> None:
        started = time.perf_counter()
        response: Response
        try:
            body = await read_body(scope, receive, max_bytes=self.max_bytes)
            accepted = await receive_webhook(PATH_KINDS[path_kind], integration_id, Request(scope), body)
            response = Response(accepted.model_dump_json(), status_code=202, media_type="application/json")
        except CloseloopError as exc:
            response = problem_of(exc, instance=scope["path"])
        except Exception:
            log.exception("unhandled error on POST %s", scope["path"])
            response = internal_error(instance=scope["path"])
        await response(scope, receive, send)
        route = f"{_PREFIX}{path_kind}/{{integration_id}}"
        record_request(self.service, "POST", route, response.status_code, time.perf_counter() - started)

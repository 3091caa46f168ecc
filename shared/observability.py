"""JSON logs, Prometheus metrics and the health endpoints every service serves."""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import tracing
from shared.guard import GuardedRoute, public

HTTP_REQUESTS = Counter(
    "closeloop_http_requests_total", "HTTP requests handled", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "closeloop_http_request_duration_seconds", "HTTP request latency", ["service", "route"]
)
EVENTS_CONSUMED = Counter(
    "closeloop_events_consumed_total", "Events handled by consumers", ["consumer", "type", "outcome"]
)
OUTBOX_PUBLISHED = Counter("closeloop_outbox_published_total", "Outbox rows published to Kafka")
OUTBOX_PENDING = Gauge("closeloop_outbox_pending", "Outbox rows not yet published", ["outbox"])
OUTBOX_OLDEST_AGE = Gauge(
    "closeloop_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row (0: empty)", ["outbox"]
)
CONSUMER_LAG = Gauge(
    "closeloop_consumer_lag",
    "Records on the consumer's assigned partitions not yet handled",
    ["consumer", "topic"],
)
EVENT_PROCESSING = Histogram(
    "closeloop_event_processing_seconds",
    "Time to handle one consumed event (inbox, handler, commit; a batch's time shared by its events)",
    ["consumer"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENT_DELAY = Histogram(
    "closeloop_event_delay_seconds",
    "From an event's arrival at the broker to its handling (the last of each fetched batch)",
    ["consumer"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
DEAD_LETTERS_PENDING = Gauge(
    "closeloop_dead_letters_pending",
    "Records parked on a dead-letter topic, not yet replayed or purged",
    ["topic"],
)
CHANNEL_SENDS = Counter(
    "closeloop_channel_sends_total",
    "Messages handed to an outbound channel, by outcome",
    ["channel", "outcome"],
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("service", "event_id", "event_type", "workspace_id"):
            if key in record.__dict__:
                entry[key] = record.__dict__[key]
        if trace := tracing.trace_id(tracing.current()):
            entry["trace_id"] = trace
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(*, level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


ReadinessCheck = Callable[[], Awaitable[None]]


def health_router(checks: dict[str, ReadinessCheck]) -> APIRouter:
    """``/healthz`` (the process answers), ``/readyz`` (every dependency answers), ``/metrics``."""
    # Public: a probe or a scraper carries no workspace credential; keep /metrics inside the cluster.
    router = APIRouter(
        tags=["operations"],
        route_class=GuardedRoute,
        dependencies=[
            public("probes and Prometheus carry no credential; expose them inside the cluster only")
        ],
    )

    @router.get("/healthz", summary="Liveness: the process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: the database and the broker answer")
    async def readyz() -> JSONResponse:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await check()
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"error: {exc.__class__.__name__}: {exc}"
        ready = all(v == "ok" for v in results.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": results}, status_code=200 if ready else 503
        )

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def record_request(service: str, method: str, route: str, status: int, seconds: float) -> None:
    """Count one HTTP request and its latency under its route template."""
    _requests(service, method, route, status).inc()
    _latency(service, route).observe(seconds)


# The labelled series, looked up once each: the client's own lookup (a lock, label checks) cost a
# webhook more than counting it. Routes are templates and statuses few, so the caches stay small.
@functools.lru_cache(maxsize=4096)
def _requests(service: str, method: str, route: str, status: int) -> Any:
    return HTTP_REQUESTS.labels(service, method, route, str(status))


@functools.lru_cache(maxsize=1024)
def _latency(service: str, route: str) -> Any:
    return HTTP_LATENCY.labels(service, route)


class RequestMetricsMiddleware:
    """Counts requests and their latency per route template (pure ASGI: no body buffering)."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            with server_span(scope):
                await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            record_request(self.service, scope["method"], route, status, time.perf_counter() - started)


def server_span(scope: Scope) -> AbstractContextManager[str]:
    """The request's span: a caller's W3C traceparent header continues its trace; otherwise the
    request starts one."""
    return tracing.span(scope["method"], parent=_header(scope, b"traceparent"), kind="server")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value)
    return None

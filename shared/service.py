"""Builds a closeloop service: the FastAPI app, its lifespan, and the dependencies routes use.

A service describes itself with a ``ServiceSpec``; ``build_app`` wires the database, the
producer, the outbox relay, the consumer and any background loops, and closes them in
reverse order on shutdown (SIGTERM drains the batch in hand before the process exits).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from fastapi import APIRouter, Depends, FastAPI, Request
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.db import Database
from shared.errors import PayloadTooLarge, Unauthorized, install_problem_handlers, problem
from shared.inbox import EventConsumer, Handler
from shared.kafka import create_consumer, create_producer
from shared.observability import RequestMetricsMiddleware, configure_logging, health_router
from shared.outbox import Outbox, OutboxRelay
from shared.security import InvalidToken, verify_api_key
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything a running service has built; routes reach it through ``RuntimeDep``."""

    name: str
    settings: Any
    db: Database
    producer: AIOKafkaProducer
    outbox: Outbox
    relay: OutboxRelay
    consumer: EventConsumer | None = None
    extras: dict[str, Any] = field(default_factory=dict)


Background = Callable[[Runtime], Awaitable[None]]


@dataclass
class ServiceSpec:
    name: str
    title: str
    description: str
    routers: list[APIRouter]
    outbox_table: Table
    inbox_table: Table
    topics: list[str] = field(default_factory=list)
    handlers: Callable[[Runtime], dict[type, Handler]] | None = None
    background: list[Background] = field(default_factory=list)
    setup: Callable[[Runtime], Awaitable[None]] | None = None
    teardown: Callable[[Runtime], Awaitable[None]] | None = None
    openapi_tags: list[dict[str, str]] = field(default_factory=list)


async def _start_producer(producer: AIOKafkaProducer, *, timeout_s: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await producer.start()
            return
        except KafkaConnectionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.warning("broker not reachable yet; retrying")
            await asyncio.sleep(1)


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


def build_app(spec: ServiceSpec, settings: ServiceSettings) -> ServiceApp:
    """Return the FastAPI app of one service; nothing is connected until its lifespan starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(level=settings.log_level, fmt=settings.log_format)
        if settings.role == "worker" and settings.worker_nice:
            # Background work can wait a moment; a webhook sender or a browser cannot.
            lower_priority(settings.worker_nice)
        settings.warn_if_insecure(log)
        db = Database(settings.database_url)
        producer = create_producer(settings)
        await _start_producer(producer)
        relay = OutboxRelay(
            db, spec.outbox_table, producer, poll_interval_s=settings.outbox_poll_interval_ms / 1000
        )
        runtime = Runtime(
            spec.name, settings, db, producer, Outbox(spec.outbox_table, source=spec.name), relay
        )
        app.state.runtime = runtime
        if spec.setup:
            await spec.setup(runtime)
        # An ``api`` process leaves publishing to the workers (they poll the outbox): its event loop
        # serves requests only.
        relay_task = (
            asyncio.create_task(relay.run(), name=f"{spec.name}-outbox-relay")
            if settings.runs_background
            else None
        )
        consumer_task = None
        if spec.handlers and spec.topics and settings.run_consumers and settings.runs_background:
            kafka_consumer = create_consumer(settings, group_id=f"closeloop-{spec.name}", topics=spec.topics)
            await kafka_consumer.start()
            runtime.consumer = EventConsumer(
                name=spec.name,
                consumer=kafka_consumer,
                producer=producer,
                db=db,
                inbox=spec.inbox_table,
                handlers=spec.handlers(runtime),
                max_attempts=settings.consumer_max_attempts,
                backoff_s=settings.consumer_backoff_ms / 1000,
            )
            consumer_task = asyncio.create_task(
                _supervised(runtime.consumer.run, "consumer"), name=f"{spec.name}-consumer"
            )
        background = [
            asyncio.create_task(_supervised(functools.partial(b, runtime), b.__name__))
            for b in (spec.background if settings.runs_background else [])
        ]
        # What startup built (modules, the app, its models, pools) lives as long as the process. Out
        # of the collector's sight, a full collection no longer walks it: in trigger's ~120,000
        # objects that took 70-130 ms, a stall every request in flight waited for.
        gc.collect()
        gc.freeze()
        log.info("%s service started", spec.name, extra={"service": spec.name})
        try:
            yield
        finally:
            log.info("%s service stopping: draining in-flight work", spec.name, extra={"service": spec.name})
            if runtime.consumer:
                runtime.consumer.stop()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if runtime.consumer and consumer_task:
                await asyncio.gather(consumer_task, return_exceptions=True)
                await runtime.consumer.consumer.stop()
            relay.stop()
            if relay_task:
                await asyncio.gather(relay_task, return_exceptions=True)
            if spec.teardown:
                await spec.teardown(runtime)
            await producer.stop()
            await db.dispose()

    app = ServiceApp(
        title=spec.title,
        description=spec.description,
        version="0.1.0",
        lifespan=lifespan,
        openapi_tags=spec.openapi_tags or None,
    )
    install_problem_handlers(app)
    for router in spec.routers if settings.role != "worker" else []:
        app.include_router(router)

    async def db_ready() -> None:
        await app.state.runtime.db.ping()

    async def broker_ready() -> None:
        await app.state.runtime.producer.client.fetch_all_metadata()

    app.include_router(health_router({"database": db_ready, "broker": broker_ready}))
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetricsMiddleware, service=spec.name)
    return app


async def _supervised(run: Callable[[], Awaitable[None]], what: str) -> None:
    """Run a loop; a crash is logged and the loop restarted, so one bad moment is not an outage."""
    while True:
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s crashed; restarting in 1s", what)
            await asyncio.sleep(1)


def too_large(max_bytes: int) -> str:
    return f"The request body is larger than {max_bytes} bytes; send less or split it up."


def declares_more_than(scope: Scope, max_bytes: int) -> bool:
    """Whether the request's ``Content-Length`` is over ``max_bytes`` (refused before reading)."""
    declared = dict(scope["headers"]).get(b"content-length")
    return declared is not None and declared.isdigit() and int(declared) > max_bytes


async def read_body(scope: Scope, receive: Receive, *, max_bytes: int) -> bytes:
    """Return the request's body; ``PayloadTooLarge`` (413) past ``max_bytes``, declared or sent."""
    if declares_more_than(scope, max_bytes):
        raise PayloadTooLarge(too_large(max_bytes), field="body")
    chunks = []
    seen = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > max_bytes:
            raise PayloadTooLarge(too_large(max_bytes), field="body")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class BodySizeLimit:
    """Refuses request bodies over ``max_bytes`` with 413, before the route reads them."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if declares_more_than(scope, self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise PayloadTooLarge(self._detail(), field="body")
            return message

        await self.app(scope, limited_receive, send)

    def _detail(self) -> str:
        return too_large(self.max_bytes)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413,
            PayloadTooLarge.code,
            PayloadTooLarge.title,
            self._detail(),
            errors=[{"field": "body", "message": self._detail()}],
        )
        await response(scope, receive, send)


# --- dependencies routes use -------------------------------------------------------------


async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """Yield the request's unit of work; it commits before the response is sent."""
    async with runtime.db.unit_of_work() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_workspace(request: Request, runtime: RuntimeDep) -> str:
    """Return the workspace of the API key in ``Authorization: Bearer`` or ``X-API-Key``."""
    header = request.headers.get("authorization", "")
    key = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
    if not key:
        raise Unauthorized(
            "Send your workspace API key as 'Authorization: Bearer <key>'.",
            field="Authorization",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        return verify_api_key(runtime.settings.secret_key, key)
    except InvalidToken as exc:
        raise Unauthorized(
            f"The API key is not valid ({exc}). Check it or issue a new one with "
            "'closeloop workspace create'.",
            field="Authorization",
            headers={"WWW-Authenticate": "Bearer"},
        ) from exc


WorkspaceDep = Annotated[str, Depends(get_workspace)]

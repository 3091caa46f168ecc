"""Builds a closeloop service: the FastAPI app, its lifespan, and the dependencies routes use.

A service describes itself with a ``ServiceSpec``; ``build_app`` wires the database, the
producer, the outbox relay, the consumer and any background loops, and closes them in
reverse order on shutdown (SIGTERM drains the batch in hand before the process exits).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from fastapi import APIRouter, Depends, FastAPI, Request
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import tracing
from shared.access import Authenticator, Principal
from shared.apidocs import install_docs
from shared.db import Database
from shared.deadletters import DeadLetterMonitor
from shared.errors import PayloadTooLarge, install_problem_handlers, problem
from shared.events import WORKSPACES, KeyRevoked
from shared.guard import CHECKED, UNDECLARED, authenticate, check
from shared.guard import requires as requires  # where part A said routes find it; shared.guard has it
from shared.inbox import EventCallback, EventConsumer
from shared.inputs import check_inputs
from shared.kafka import check_partitions, create_consumer, create_producer
from shared.observability import RequestMetricsMiddleware, configure_logging, health_router
from shared.outbox import Outbox, OutboxRelay
from shared.process import ServiceApp, freeze_startup_objects, lower_priority
from shared.revocation import KeyUsage, RevokedKeys
from shared.settings import ServiceSettings
from shared.worker import Worker, supervised

log = logging.getLogger(__name__)

S = TypeVar("S", bound=ServiceSettings)
D = TypeVar("D")


@dataclass
class Runtime(Generic[S, D]):
    """Everything a running service has built; routes reach it through a ``RuntimeDep``.

    ``deps`` is the service's own dependencies (a dataclass its ``setup`` returns: caches, clients,
    its workers); a service names the pair in its ``deps.py`` (``Runtime[TriggerSettings, Trigger]``).
    """

    name: str
    settings: S
    db: Database
    producer: AIOKafkaProducer
    outbox: Outbox
    relay: OutboxRelay
    consumer: EventConsumer | None = None
    authenticator: Authenticator = field(init=False)
    """Verifies each request's credential, refusing revoked keys (``ServiceSpec.revoked_keys``)."""
    revoked: RevokedKeys | None = None
    """The revoked key ids this service holds (in memory, from its ``revoked_keys`` table)."""
    revocations: EventConsumer | None = None
    """The consumer that records ``KeyRevoked`` (its own group: ``closeloop-<service>-revocations``)."""
    groups: dict[str, EventConsumer] = field(default_factory=dict)
    """The consumers of ``ServiceSpec.groups``, by suffix."""
    deps: D = field(init=False)


@dataclass
class ConsumerGroup:
    """A consumer of the service in a group of its own, ``closeloop-<service>-<suffix>``: a backlog in
    one group never holds up the other (e.g. webhook fan-out and invitations)."""

    suffix: str
    topics: list[str]
    callbacks: dict[type, EventCallback]
    batch: bool = False


@dataclass
class ServiceSpec(Generic[S, D]):
    """What a service is made of; ``build_app`` wires it.

    - ``setup`` builds the service's dependencies once the database and producer exist;
      ``teardown`` closes them (in reverse order of building).
    - ``consumes`` returns what to do with each consumed event type (it calls the handlers).
    - ``workers`` returns the service's background loops; each has a ``name`` that
      ``CLOSELOOP_ROLE`` can select.
    """

    name: str
    title: str
    description: str
    routers: list[APIRouter]
    outbox_table: Table
    inbox_table: Table
    topics: list[str] = field(default_factory=list)
    setup: Callable[[Runtime[S, D]], Awaitable[D]] | None = None
    teardown: Callable[[Runtime[S, D]], Awaitable[None]] | None = None
    consumes: Callable[[Runtime[S, D]], dict[type, EventCallback]] | None = None
    workers: Callable[[Runtime[S, D]], Sequence[Worker]] | None = None
    groups: Callable[[Runtime[S, D]], list[ConsumerGroup]] | None = None
    """Further consumers, each in its own group (``ConsumerGroup``), run where consumers run."""
    openapi_tags: list[dict[str, str]] = field(default_factory=list)
    front: Callable[[ServiceApp, S], ASGIApp] | None = None
    """An ASGI front door for a hot route (see ``ServiceApp``), built for processes that serve the API."""
    consumer_batch: bool = False
    """Handle each fetched batch of a partition in one transaction (falling back to one by one when a
    record fails): for consumers whose events are many and cheap."""
    consumer_flush: Callable[[AsyncSession], Awaitable[None]] | None = None
    """Called in the consumer's transaction after its events' callbacks, before the commit: writes that
    callbacks gathered for many events at once (e.g. rollup increments) go here."""
    revoked_keys: Table | None = None
    """The service's own ``revoked_keys`` table (``shared.revocation.revoked_keys_table``): its consumer
    records each ``KeyRevoked`` of the ``workspaces`` topic there, every process that serves the API
    reads it at start and every second and refuses those keys, and notes when keys are used
    (``KeyUsed``, through the outbox)."""


REVOCATIONS_FETCH_WAIT_MS = 500
"""The revocations group is idle nearly always, and API processes read what it records once a second
(``CLOSELOOP_REVOCATION_POLL_INTERVAL_MS``): it polls the broker less often than the service's own
consumers (the broker answers within about half of this once a revocation is there)."""


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


def build_app(spec: ServiceSpec[S, D], settings: S) -> ServiceApp:
    """Return the FastAPI app of one service; nothing is connected until its lifespan starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(level=settings.log_level, fmt=settings.log_format)
        tracing.configure(spec.name)  # exports spans only when OTEL_EXPORTER_OTLP_ENDPOINT is set
        if not settings.serves_api and settings.worker_nice:
            # Background work can wait a moment; a webhook sender or a browser cannot.
            lower_priority(settings.worker_nice)
        settings.check_secret_key(log)
        db = Database(settings.database_url)
        producer = create_producer(settings)
        await _start_producer(producer)
        relay = OutboxRelay(
            db,
            spec.outbox_table,
            producer,
            poll_interval_s=settings.outbox_poll_interval_ms / 1000,
            linger_s=settings.outbox_linger_ms / 1000,
        )
        runtime: Runtime[S, D] = Runtime(
            spec.name, settings, db, producer, Outbox(spec.outbox_table, source=spec.name), relay
        )
        access_loops = await _access(runtime, spec, settings)
        app.state.runtime = runtime
        if spec.setup:
            runtime.deps = await spec.setup(runtime)
        workers = [relay, *(spec.workers(runtime) if spec.workers else [])]
        if spec.topics:
            # What this service's consumers parked, for the dead-letter alert.
            workers.append(DeadLetterMonitor(settings, spec.topics))
        settings.check_role({w.name for w in workers} | {"consumer"})
        # An ``api`` process leaves publishing to the workers (they poll the outbox): its event loop
        # serves requests only — and keeps its own revocation list and key usage (``access_loops``).
        running = [
            (w, asyncio.create_task(supervised(w.run, w.name), name=f"{spec.name}-{w.name}"))
            for w in [*workers, *access_loops]
            if settings.runs(w.name) or w in access_loops
        ]
        consumers: list[tuple[EventConsumer, asyncio.Task[None]]] = []
        if spec.consumes and spec.topics and settings.runs("consumer"):
            runtime.consumer = await _consumer(
                runtime,
                spec.inbox_table,
                spec.name,
                spec.topics,
                spec.consumes(runtime),
                batch=spec.consumer_batch,
                flush=spec.consumer_flush,
            )
            consumers.append((runtime.consumer, _supervise(runtime.consumer, spec.name)))
        for group in spec.groups(runtime) if spec.groups and settings.runs("consumer") else []:
            extra = await _consumer(
                runtime,
                spec.inbox_table,
                f"{spec.name}-{group.suffix}",
                group.topics,
                group.callbacks,
                batch=group.batch,
            )
            runtime.groups[group.suffix] = extra
            consumers.append((extra, _supervise(extra, spec.name)))
        if runtime.revoked is not None and settings.runs("consumer"):
            # Revocations have a consumer (and group) of their own: a backlog of the service's events
            # never holds a revocation up.
            runtime.revocations = await _consumer(
                runtime,
                spec.inbox_table,
                f"{spec.name}-revocations",
                [WORKSPACES],
                {KeyRevoked: runtime.revoked.record},
                fetch_max_wait_ms=REVOCATIONS_FETCH_WAIT_MS,
            )
            consumers.append((runtime.revocations, _supervise(runtime.revocations, spec.name)))
        freeze_startup_objects()
        log.info("%s service started", spec.name, extra={"service": spec.name})
        try:
            yield
        finally:
            log.info("%s service stopping: draining in-flight work", spec.name, extra={"service": spec.name})
            for consumer, _ in consumers:
                consumer.stop()
            # Workers finish the pass in hand (sends in flight are recorded); the relay goes last, so
            # that what they wrote is published.
            for worker, _ in running:
                if worker is not relay:
                    worker.stop()
            await _drain([task for worker, task in running if worker is not relay])
            for consumer, task in consumers:
                await asyncio.gather(task, return_exceptions=True)
                await consumer.consumer.stop()
            relay.stop()
            await _drain([task for worker, task in running if worker is relay])
            if spec.teardown:
                await spec.teardown(runtime)
            await producer.stop()
            await db.dispose()
            tracing.shutdown()

    app = ServiceApp(
        title=spec.title,
        description=spec.description,
        version="0.1.0",
        lifespan=lifespan,
        openapi_tags=spec.openapi_tags or None,
        docs_url=None,
        redoc_url=None,
    )
    install_docs(app)  # Swagger UI and ReDoc from an installed package: no CDN, works offline
    install_problem_handlers(app)
    for router in spec.routers if settings.serves_api else []:
        # One rule for every route's input: nothing the database cannot store gets past it.
        app.include_router(router, dependencies=[Depends(check_inputs)])

    async def db_ready() -> None:
        await app.state.runtime.db.ping()

    async def broker_ready() -> None:
        await app.state.runtime.producer.client.fetch_all_metadata()

    app.include_router(health_router({"database": db_ready, "broker": broker_ready}))
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetricsMiddleware, service=spec.name)
    if spec.front is not None and settings.serves_api:
        app.front = spec.front(app, settings)
    return app


async def _consumer(
    runtime: Runtime[S, D],
    inbox: Table,
    name: str,
    topics: list[str],
    callbacks: dict[type, EventCallback],
    *,
    batch: bool = False,
    flush: Callable[[AsyncSession], Awaitable[None]] | None = None,
    fetch_max_wait_ms: int | None = None,
) -> EventConsumer:
    """Return a started consumer of ``topics`` in the group ``closeloop-<name>``, recording ``name`` in
    the service's inbox."""
    settings = runtime.settings
    group = f"closeloop-{name}"
    if settings.consumer_replicas > 1:
        metadata = await runtime.producer.client.fetch_all_metadata()
        partitions = {t: len(metadata.partitions_for_topic(t) or ()) for t in topics}
        check_partitions(group, partitions, topics, settings.consumer_replicas)
    kafka_consumer = create_consumer(
        settings, group_id=group, topics=topics, fetch_max_wait_ms=fetch_max_wait_ms
    )
    await kafka_consumer.start()
    return EventConsumer(
        name=name,
        consumer=kafka_consumer,
        producer=runtime.producer,
        db=runtime.db,
        inbox=inbox,
        callbacks=callbacks,
        max_attempts=settings.consumer_max_attempts,
        backoff_s=settings.consumer_backoff_ms / 1000,
        batch=batch,
        max_records=settings.consumer_max_records,
        flush=flush,
    )


def _supervise(consumer: EventConsumer, service: str) -> asyncio.Task[None]:
    return asyncio.create_task(supervised(consumer.run, "consumer"), name=f"{service}-{consumer.name}")


async def _access(runtime: Runtime[S, D], spec: ServiceSpec[S, D], settings: S) -> list[Worker]:
    """Give ``runtime`` its authenticator: with the service's revocation list (loaded before the first
    request) and key usage when it keeps revoked keys; return the loops an API process runs for them."""
    runtime.authenticator = Authenticator(settings.keyring)
    if spec.revoked_keys is None:
        return []
    runtime.revoked = RevokedKeys(
        runtime.db, spec.revoked_keys, poll_interval_s=settings.revocation_poll_interval_ms / 1000
    )
    await runtime.revoked.load()
    usage = KeyUsage(runtime.db, runtime.outbox, flush_interval_s=settings.key_usage_flush_interval_s)
    runtime.authenticator = Authenticator(settings.keyring, revoked=runtime.revoked, usage=usage)
    return [runtime.revoked, usage] if settings.serves_api else []


async def _drain(tasks: list[asyncio.Task[None]], *, timeout_s: float = 30.0) -> None:
    """Wait for stopped loops to end their pass; cancel what is still running after ``timeout_s``."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


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


async def get_runtime(request: Request) -> Runtime[Any, Any]:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime[Any, Any], Depends(get_runtime)]
"""The runtime, untyped; a service's own ``deps.py`` names it with its settings and dependencies."""


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """Yield the request's unit of work; it commits before the response is sent."""
    async with runtime.db.unit_of_work() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_principal(request: Request) -> Principal:
    """Return who calls: the API key or user token in ``Authorization: Bearer`` (or ``X-API-Key``)."""
    return authenticate(request)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_workspace(request: Request, principal: PrincipalDep) -> str:
    """Return the workspace of the caller's credential.

    The route's declaration (``requires``, ``shared.guard``) says what the caller may do there; a route
    that declares nothing fails closed: it takes owner and admin credentials only.
    """
    checked = request.scope.get(CHECKED)
    if checked is None or checked.kind == "undeclared":
        check(request, UNDECLARED)
    return principal.workspace_id


WorkspaceDep = Annotated[str, Depends(get_workspace)]

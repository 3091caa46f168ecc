"""Distributed tracing: a W3C ``traceparent`` carried through every event.

Each HTTP request and each consumed event is one *span* of a trace. The span in hand is kept in a
context variable; every event written to the outbox while it is current carries it in its CloudEvents
envelope as the distributed-tracing extension attribute ``traceparent`` (and, on Kafka, the
``ce_traceparent`` header), and the consumer of that event continues the trace in a child span. So the
events a request causes, the events those cause in other services, and so on, share one trace id.

Without ``OTEL_EXPORTER_OTLP_ENDPOINT`` nothing is exported and no OpenTelemetry SDK is loaded: span
ids are made here. With it, spans are OpenTelemetry SDK spans exported over OTLP/HTTP (the standard
``OTEL_*`` variables configure the exporter) and their ids are the SDK's.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from shared.randomness import random_bytes

log = logging.getLogger(__name__)

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_current: ContextVar[str | None] = ContextVar("closeloop_traceparent", default=None)
_tracer: Any = None
"""The OpenTelemetry tracer once ``configure`` set up export; None: no export."""


def parse(value: str | bytes | None) -> str | None:
    """Return ``value`` if it is a valid version-00 ``traceparent`` (ids not all zero), else None."""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None or set(match[1]) == {"0"} or set(match[2]) == {"0"}:
        return None
    return match[0]


def trace_id(traceparent: str | None) -> str | None:
    return traceparent.split("-")[1] if traceparent else None


def new_traceparent(*, parent: str | None = None) -> str:
    """A new span: in ``parent``'s trace (keeping its flags), or the first span of a new, sampled trace."""
    if parent is None:
        return f"00-{random_bytes(16).hex()}-{random_bytes(8).hex()}-01"
    _, trace, _, flags = parent.split("-")
    return f"00-{trace}-{random_bytes(8).hex()}-{flags}"


def current() -> str | None:
    """The ``traceparent`` of the span in hand (None outside any)."""
    return _current.get()


@contextmanager
def span(name: str, *, parent: str | bytes | None = None, kind: str = "internal") -> Iterator[str]:
    """Run the block as a span named ``name``, a child of ``parent`` (a traceparent from a request
    header or an event) or else of the span in hand, or the root of a new trace; yield its traceparent."""
    parent_tp = parse(parent) or current()
    if _tracer is None:
        traceparent = new_traceparent(parent=parent_tp)
        token = _current.set(traceparent)
        try:
            yield traceparent
        finally:
            _current.reset(token)
        return
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    context = TraceContextTextMapPropagator().extract({"traceparent": parent_tp}) if parent_tp else None
    kinds = {"server": SpanKind.SERVER, "consumer": SpanKind.CONSUMER, "internal": SpanKind.INTERNAL}
    with _tracer.start_as_current_span(name, context=context, kind=kinds[kind]) as otel_span:
        ctx = otel_span.get_span_context()
        traceparent = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
        token = _current.set(traceparent)
        try:
            yield traceparent
        finally:
            _current.reset(token)


@contextmanager
def using(traceparent: str | None) -> Iterator[None]:
    """Make ``traceparent`` the span in hand for the block (no new span): for work gathered under
    several spans and written later, e.g. a consumer's batch flush."""
    token = _current.set(traceparent)
    try:
        yield
    finally:
        _current.reset(token)


def configure(service: str, *, endpoint: str | None = None) -> bool:
    """Export spans over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``endpoint``) is set;
    return whether export is on. Idempotent per process."""
    global _tracer
    endpoint = endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint:
        return False
    if _tracer is not None:
        return True
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": os.environ.get("OTEL_SERVICE_NAME", f"closeloop-{service}")}
        )
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=_traces_url(endpoint))))
    trace.set_tracer_provider(provider)
    _tracer = provider.get_tracer("closeloop")
    log.info("exporting traces to %s", endpoint)
    return True


def shutdown() -> None:
    """Flush and stop the exporter (at the end of a service's lifespan)."""
    global _tracer
    if _tracer is None:
        return
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    if hasattr(provider, "shutdown"):
        provider.shutdown()
    _tracer = None


def _traces_url(endpoint: str) -> str:
    """OTEL_EXPORTER_OTLP_ENDPOINT is the collector's base URL; traces go to ``<base>/v1/traces``
    (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, when set, is used as it is)."""
    explicit = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return explicit or endpoint.rstrip("/") + "/v1/traces"

"""OpenTelemetry export: spans go to the OTLP/HTTP endpoint when OTEL_EXPORTER_OTLP_ENDPOINT is set
(a local collector stand-in decodes them as the OTLP protobuf), and nothing is loaded or sent when it
is not. Each case runs in a fresh process: a tracer provider is set once per process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from closeloop.infra import free_port

pytestmark = pytest.mark.integration

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
SCRIPT = """
import sys
from shared import tracing
exporting = tracing.configure("dispatch")
with tracing.span("SurveyRequested", parent=sys.argv[1], kind="consumer") as outer:
    with tracing.span("send email") as inner:
        pass
tracing.shutdown()
print(exporting, outer, inner, "opentelemetry.sdk" in sys.modules)
"""


class Collector(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", free_port()), _Handler)
        self.requests: list[tuple[str, bytes]] = []


class _Handler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def run(env: dict[str, str]) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, PARENT],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_spans_are_exported_when_an_endpoint_is_set(collector: Collector):
    exporting, outer, inner, sdk = run(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_port}"}
    )
    assert (exporting, sdk) == ("True", "True")
    assert [path for path, _ in collector.requests] == ["/v1/traces"]
    request = ExportTraceServiceRequest.FromString(collector.requests[0][1])
    (resource_spans,) = request.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
    assert service == "closeloop-dispatch"
    spans = {s.name: s for scope in resource_spans.scope_spans for s in scope.spans}
    assert set(spans) == {"SurveyRequested", "send email"}
    trace_id = PARENT.split("-")[1]
    assert {s.trace_id.hex() for s in spans.values()} == {trace_id}
    # The consumer span is the child of the event's traceparent; the inner one of the consumer span.
    assert spans["SurveyRequested"].parent_span_id.hex() == PARENT.split("-")[2]
    assert spans["send email"].parent_span_id == spans["SurveyRequested"].span_id
    # And what events carried (shared.tracing.current) is the exported spans' own ids.
    assert outer == f"00-{trace_id}-{spans['SurveyRequested'].span_id.hex()}-01"
    assert inner == f"00-{trace_id}-{spans['send email'].span_id.hex()}-01"


def test_nothing_is_loaded_or_sent_without_an_endpoint(collector: Collector):
    exporting, outer, inner, sdk = run({})
    assert (exporting, sdk) == ("False", "False")
    assert outer.split("-")[1] == inner.split("-")[1] == PARENT.split("-")[1]
    assert collector.requests == []

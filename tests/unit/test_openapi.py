"""Every service publishes an OpenAPI document that integrators can read, without any I/O."""

from __future__ import annotations

import pytest

from closeloop.cli import offline_app
from closeloop.stack import SERVICE_PORTS


@pytest.mark.parametrize("service", list(SERVICE_PORTS))
def test_openapi_document_builds_and_documents_operations(service: str):
    app = offline_app(service)
    document = app.openapi()
    operations = [op for path in document["paths"].values() for op in path.values()]
    assert {"/healthz", "/readyz"} <= set(document["paths"])
    assert len(operations) >= 4
    assert all(op.get("summary") for op in operations), "every operation has a summary"

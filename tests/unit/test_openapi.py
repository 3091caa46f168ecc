"""Every service publishes an OpenAPI document that integrators can read, without any I/O."""

from __future__ import annotations

import pytest

from closeloop.stack import SERVICE_PORTS
from tests.support.apps import create_service_app, settings_class


@pytest.mark.parametrize("service", list(SERVICE_PORTS))
def test_openapi_document_builds_and_documents_operations(service: str):
    settings = settings_class(service)(database_url="postgresql://nobody@127.0.0.1:1/none")
    app = create_service_app(service, settings)
    document = app.openapi()
    operations = [op for path in document["paths"].values() for op in path.values()]
    assert {"/healthz", "/readyz"} <= set(document["paths"])
    assert len(operations) >= 4
    assert all(op.get("summary") for op in operations), "every operation has a summary"

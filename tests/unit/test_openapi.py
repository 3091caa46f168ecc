"""Every service publishes an OpenAPI document that integrators can read, without any I/O."""

from __future__ import annotations

import importlib

import pytest

from closeloop.stack import SERVICE_PORTS

SETTINGS = {
    "trigger": "TriggerSettings",
    "dispatch": "DispatchSettings",
    "responses": "ResponsesSettings",
    "scoring": "ScoringSettings",
    "followup": "FollowUpSettings",
    "console": "ConsoleSettings",
}


@pytest.mark.parametrize("service", list(SERVICE_PORTS))
def test_openapi_document_builds_and_documents_operations(service: str):
    app_module = importlib.import_module(f"services.{service}.app")
    settings_cls = getattr(importlib.import_module(f"services.{service}.settings"), SETTINGS[service])
    app = app_module.create_app(settings_cls(database_url="postgresql://nobody@127.0.0.1:1/none"))
    document = app.openapi()
    operations = [op for path in document["paths"].values() for op in path.values()]
    assert {"/healthz", "/readyz"} <= set(document["paths"])
    assert len(operations) >= 4
    assert all(op.get("summary") for op in operations), "every operation has a summary"

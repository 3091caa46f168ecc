"""The public webhook catalogue: every public type is made from its internal event, shows only its own
fields, and docs/webhooks.md lists each with an example that the generator produces now."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.dispatch import catalogue
from services.dispatch.catalogue import CATALOGUE
from shared.events import EVENT_TYPES
from tests.support.docs import ROOT, doc_generator

gen = doc_generator("gen_webhooks")


def test_the_committed_catalogue_section_is_what_the_generator_produces_now() -> None:
    assert (ROOT / "docs" / "webhooks.md").read_text() == gen.render(
        (ROOT / "docs" / "webhooks.md").read_text()
    )


def test_each_public_type_is_one_internal_event_and_names_are_unique() -> None:
    assert len({p.name for p in CATALOGUE}) == len(CATALOGUE)
    assert len({p.source for p in CATALOGUE}) == len(CATALOGUE)
    assert all(p.source in EVENT_TYPES.values() for p in CATALOGUE)


@pytest.mark.parametrize("public", CATALOGUE, ids=lambda p: p.name)
def test_a_public_payload_is_made_from_its_internal_event_without_internal_fields(public) -> None:
    fields = {
        **gen.SAMPLE,
        "workspace_id": "acme",
        "note": "called them at home on +31 6 1234 5678",
        "retention_request_id": None,
        "send_at": gen.AT,
        "error": "boom",
        "respondent": {"name": "Ada", "email": "ada@example.com"},
    }
    internal = public.source.model_validate(fields)
    body = catalogue.envelope(
        public, internal, event_id="e-1", timestamp=datetime(2026, 11, 30, 14, 5, tzinfo=UTC)
    )
    assert body["type"] == public.name and body["id"] == "e-1" and body["workspace_id"] == "acme"
    assert set(body["data"]) == set(public.payload.model_fields)
    assert not (set(body["data"]) & {"note", "respondent", "send_at", "retention_request_id"})
    assert "+31 6" not in str(body) and "ada@example.com" not in str(body)

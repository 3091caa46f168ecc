"""The CRM connectors' pure parts: generic templates, HubSpot and Zendesk requests, sealed credentials."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.dispatch.crm import generic, hubspot, secrets, zendesk
from shared.events import Recipient, ResponseScored, ScoredAnswer

BODY = {
    "id": "e-1",
    "type": "response.scored",
    "data": {
        "contact_id": "crm 42/a",
        "survey_id": "svy",
        "scores": [{"score": 6, "classification": "detractor"}],
    },
}


def test_a_whole_placeholder_keeps_its_json_type_and_a_missing_one_is_null() -> None:
    template = {
        "nps": "{{data.scores.0.score}}",
        "who": ["{{ data.contact_id }}"],
        "gone": "{{data.nope}}",
        "n": 1,
    }
    assert generic.render(template, BODY) == {"nps": 6, "who": ["crm 42/a"], "gone": None, "n": 1}


def test_placeholders_inside_text_become_text_and_in_the_url_are_encoded() -> None:
    assert (
        generic.render("NPS {{data.scores.0.score}} ({{data.scores.0.classification}})", BODY)
        == "NPS 6 (detractor)"
    )
    assert generic.render_url("https://crm.example/c/{{data.contact_id}}?e={{id}}", BODY) == (
        "https://crm.example/c/crm%2042%2Fa?e=e-1"
    )


def test_generic_auth_headers() -> None:
    assert generic.authorization("bearer", {"token": "t"}) == {"Authorization": "Bearer t"}
    assert generic.authorization("basic", {"username": "u", "password": "p"}) == {
        "Authorization": "Basic dTpw"
    }
    assert generic.authorization("header", {"header_name": "X-Api-Key", "header_value": "k"}) == {
        "X-Api-Key": "k"
    }
    assert generic.authorization("none", {}) == {}


def _scored(**extra: object) -> ResponseScored:
    fields: dict[str, object] = {
        "workspace_id": "w",
        "response_id": "r",
        "request_id": None,
        "contact_id": "123",
        "survey_id": "svy",
        "kind": "transactional",
        "scores": (
            ScoredAnswer(question_id="q", metric="nps", score=9, classification="promoter", negative=False),
        ),
        "negative": False,
        "scored_at": datetime(2026, 11, 30, 14, 5, tzinfo=UTC),
        "respondent": Recipient(email="ada+x@example.com"),
    }
    return ResponseScored.model_validate({**fields, **extra})


def test_hubspot_update_by_email_or_record_id() -> None:
    by_email = hubspot.update_request(hubspot.contact_update(_scored(), match_by="email") or {})
    assert by_email.method == "PATCH"
    assert by_email.path == "/crm/v3/objects/contacts/ada%2Bx%40example.com?idProperty=email"
    assert by_email.body == {
        "properties": {
            "closeloop_last_survey_at": "2026-11-30T14:05:00Z",
            "closeloop_nps": "9",
            "closeloop_nps_category": "promoter",
        }
    }
    assert hubspot.update_request(hubspot.contact_update(_scored(), match_by="contact_id") or {}).path == (
        "/crm/v3/objects/contacts/123"
    )
    assert hubspot.contact_update(_scored(respondent=None), match_by="email") is None


def test_hubspot_properties_are_valid_definitions() -> None:
    for request in hubspot.property_requests():
        body = request.body
        assert request.path == "/crm/v3/properties/contacts" and 409 in request.ok_statuses
        assert {"name", "label", "type", "fieldType", "groupName"} <= set(body)
        if body["type"] == "enumeration":
            assert all({"label", "value"} <= set(o) for o in body["options"])


def test_zendesk_note_is_internal_and_adds_tags() -> None:
    queued = zendesk.scored_note(_scored(negative=True, comment="slow"), ticket_id="77")
    request = zendesk.update_request(queued)
    assert request.method == "PUT" and request.path == "/api/v2/tickets/77.json"
    assert request.body["ticket"]["comment"]["public"] is False
    assert request.body["ticket"]["additional_tags"] == ["closeloop_detractor"]
    assert zendesk.authorization({"email": "a@b.c", "api_token": "t"}) == "Basic YUBiLmMvdG9rZW46dA=="


def test_sealed_credentials_open_with_the_secret_or_the_previous_one_only() -> None:
    sealed = secrets.seal("old-secret", {"access_token": "pat-1"})
    assert "pat-1" not in sealed
    assert secrets.unseal(sealed, "new-secret", "old-secret") == {"access_token": "pat-1"}
    with pytest.raises(ValueError):
        secrets.unseal(sealed, "new-secret", None)

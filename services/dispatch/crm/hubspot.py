"""HubSpot CRM v3, as HubSpot documents it: the closeloop contact properties (created on first use,
``POST /crm/v3/properties/contacts``; 409 means it exists already) and the contact update
(``PATCH /crm/v3/objects/contacts/{id}``, or ``/{email}?idProperty=email``), with a private app's token
as ``Authorization: Bearer``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from services.dispatch.crm.request import Request
from shared.events import NegativeFeedbackDetected, ResponseScored

GROUP = "contactinformation"
"""HubSpot's default contact property group."""


def _options(*values: str) -> list[dict[str, Any]]:
    return [{"label": v.capitalize(), "value": v, "displayOrder": i} for i, v in enumerate(values)]


PROPERTIES: tuple[dict[str, Any], ...] = (
    {"name": "closeloop_nps", "label": "closeloop NPS", "type": "number", "fieldType": "number"},
    {
        "name": "closeloop_nps_category",
        "label": "closeloop NPS category",
        "type": "enumeration",
        "fieldType": "select",
        "options": _options("promoter", "passive", "detractor"),
    },
    {
        "name": "closeloop_loyalty",
        "label": "closeloop loyalty segment",
        "type": "enumeration",
        "fieldType": "select",
        "options": _options("pure", "false", "trapped", "disloyal", "undecided"),
    },
    {
        "name": "closeloop_last_survey_at",
        "label": "closeloop last survey",
        "type": "datetime",
        "fieldType": "date",
    },
    {
        "name": "closeloop_last_comment",
        "label": "closeloop last comment",
        "type": "string",
        "fieldType": "textarea",
    },
)
PROPERTY_NAMES = tuple(p["name"] for p in PROPERTIES)


def property_requests() -> list[Request]:
    """The requests that create the closeloop properties (an existing one answers 409: fine)."""
    return [
        Request(
            "POST",
            "/crm/v3/properties/contacts",
            {**p, "groupName": GROUP},
            ok_statuses=(200, 201, 409),
            step=p["name"],
        )
        for p in PROPERTIES
    ]


def _contact_key(event: ResponseScored | NegativeFeedbackDetected, *, match_by: str) -> str | None:
    """The HubSpot contact an event names: its respondent's email or its contact id, as ``match_by`` says."""
    if match_by == "email":
        return event.respondent.email if event.respondent and event.respondent.email else None
    return event.contact_id or None


def contact_update(event: ResponseScored, *, match_by: str) -> dict[str, Any] | None:
    """Return what to queue for a scored response: the contact to match and the property values; None
    when the response cannot name a HubSpot contact (no email to match by) or has no NPS and comment."""
    key = _contact_key(event, match_by=match_by)
    if key is None:
        return None
    properties: dict[str, str] = {
        "closeloop_last_survey_at": event.scored_at.isoformat().replace("+00:00", "Z")
    }
    nps = event.first("nps")
    if nps is not None:
        properties["closeloop_nps"] = str(nps.score)
        properties["closeloop_nps_category"] = nps.classification
    if event.loyalty is not None:
        properties["closeloop_loyalty"] = event.loyalty
    if event.comment:
        properties["closeloop_last_comment"] = event.comment[:65536]
    return {"contact": key, "match_by": match_by, "properties": properties}


def update_request(queued: dict[str, Any]) -> Request:
    path = "/crm/v3/objects/contacts/" + quote(str(queued["contact"]), safe="")
    if queued["match_by"] == "email":
        path += "?idProperty=email"
    return Request("PATCH", path, {"properties": queued["properties"]}, ok_statuses=(200,))


NOTE_TO_CONTACT = 202
"""HubSpot's association type id of a note to a contact (``HUBSPOT_DEFINED``)."""


def detractor_note(event: NegativeFeedbackDetected, *, match_by: str) -> dict[str, Any] | None:
    """Return what to queue for negative feedback: a note on the contact with the negative answers and
    the comment (``detractor_notes`` connectors)."""
    key = _contact_key(event, match_by=match_by)
    if key is None:
        return None
    lines = [f"closeloop: negative feedback on survey {event.survey_id}."]
    lines += [f"{a.metric.upper()}: {a.score} ({a.classification})" for a in event.negatives]
    if event.comment:
        lines.append(f"Comment: {event.comment}")
    return {
        "note": True,
        "contact": key,
        "match_by": match_by,
        "body": "<br>".join(_html(line) for line in lines),
        "timestamp": event.detected_at.isoformat().replace("+00:00", "Z"),
    }


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def note_requests(queued: dict[str, Any]) -> Request:
    """Find the contact's record id (by email), then create the note associated with it."""

    def create(contact_id: str) -> Request:
        return Request(
            "POST",
            "/crm/v3/objects/notes",
            {
                "properties": {"hs_timestamp": queued["timestamp"], "hs_note_body": queued["body"]},
                "associations": [
                    {
                        "to": {"id": contact_id},
                        "types": [
                            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": NOTE_TO_CONTACT}
                        ],
                    }
                ],
            },
            ok_statuses=(200, 201),
        )

    if queued["match_by"] != "email":
        return create(str(queued["contact"]))

    def found(reply: Any) -> Request | None:
        contact_id = reply.get("id") if isinstance(reply, dict) else None
        return create(str(contact_id)) if contact_id else None

    path = "/crm/v3/objects/contacts/" + quote(str(queued["contact"]), safe="") + "?idProperty=email"
    return Request("GET", path, None, ok_statuses=(200,), then=found)

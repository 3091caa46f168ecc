"""HubSpot CRM v3, as HubSpot documents it: the closeloop contact properties (created on first use,
``POST /crm/v3/properties/contacts``; 409 means it exists already) and the contact update
(``PATCH /crm/v3/objects/contacts/{id}``, or ``/{email}?idProperty=email``), with a private app's token
as ``Authorization: Bearer``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from services.dispatch.crm.request import Request
from shared.events import ResponseScored

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


def contact_update(event: ResponseScored, *, match_by: str) -> dict[str, Any] | None:
    """Return what to queue for a scored response: the contact to match and the property values; None
    when the response cannot name a HubSpot contact (no email to match by) or has no NPS and comment."""
    if match_by == "email":
        key = event.respondent.email if event.respondent and event.respondent.email else None
    else:
        key = event.contact_id or None
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

"""Zendesk Support, as Zendesk documents it: ``PUT /api/v2/tickets/{id}.json`` with
``{"ticket": {"comment": {"body", "public": false}, "additional_tags": [...]}}`` adds an internal note
and tags to a ticket without touching its other tags; basic auth ``{email}/token:{api_token}``.

The ticket is the one that triggered the survey: the ``ticket_id`` the triggering event carried into
the survey request (kept with the invitation). A scored response adds a note with every score, the
loyalty segment and the comment, tagged ``closeloop_detractor`` when it is negative feedback; a case
opened from that response is linked in a note; a customer won back tags it ``closeloop_won_back``."""

from __future__ import annotations

import base64
from typing import Any

from services.dispatch.crm.request import Request
from shared.events import FollowUpOpened, FollowUpOutcomeRecorded, ResponseScored

DETRACTOR, WON_BACK = "closeloop_detractor", "closeloop_won_back"


def scored_note(event: ResponseScored, *, ticket_id: str) -> dict[str, Any]:
    lines = [f"closeloop: the customer answered survey {event.survey_id}."]
    lines += [f"{s.metric.upper()} ({s.question_id}): {s.score} — {s.classification}" for s in event.scores]
    if event.loyalty:
        lines.append(f"Loyalty: {event.loyalty}")
    if event.comment:
        lines.append(f"Comment: {event.comment}")
    return {
        "ticket_id": ticket_id,
        "response_id": event.response_id,
        "body": "\n".join(lines),
        "tags": [DETRACTOR] if event.negative else [],
    }


def case_note(event: FollowUpOpened, *, ticket_id: str) -> dict[str, Any]:
    return {
        "ticket_id": ticket_id,
        "case_id": event.task_id,
        "body": f"closeloop: follow-up case {event.task_id} was opened for this feedback "
        f"({event.metric or 'score'} {event.score}, priority {event.priority}).",
        "tags": [],
    }


def outcome_note(event: FollowUpOutcomeRecorded, *, ticket_id: str) -> dict[str, Any] | None:
    if not event.won_back:
        return None
    return {
        "ticket_id": ticket_id,
        "case_id": event.task_id,
        "body": f"closeloop: the customer was won back (retention score {event.retention_score}).",
        "tags": [WON_BACK],
    }


def update_request(queued: dict[str, Any]) -> Request:
    ticket: dict[str, Any] = {"comment": {"body": queued["body"], "public": False}}
    if queued["tags"]:
        ticket["additional_tags"] = queued["tags"]
    return Request(
        "PUT", f"/api/v2/tickets/{int(queued['ticket_id'])}.json", {"ticket": ticket}, ok_statuses=(200,)
    )


def authorization(credentials: dict[str, Any]) -> str:
    raw = f"{credentials['email']}/token:{credentials['api_token']}".encode()
    return "Basic " + base64.b64encode(raw).decode()

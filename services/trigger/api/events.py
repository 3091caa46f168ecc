"""Routes for events: post them with the API key, read a received event and the decisions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response, status
from pydantic import TypeAdapter, ValidationError

from services.trigger import queries
from services.trigger.api.webhooks import event_accepted
from services.trigger.deps import RuntimeDep, rate_limit
from services.trigger.domain.model import OUTCOMES
from services.trigger.handlers import ingest
from services.trigger.models import Decision
from services.trigger.schemas.events import DecisionOut, DirectEvent, EventAccepted, ReceivedEventOut
from services.trigger.sources.common import PayloadError, without_nul
from services.trigger.sources.standard import parse_standard_shape
from shared.access import Permission
from shared.errors import InvalidInput
from shared.guard import GuardedRoute, requires
from shared.paging import PAGED, Cursor, link_next
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["events"])
_direct_events = TypeAdapter(DirectEvent | list[DirectEvent])


@router.post(
    "/v1/events",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Post events directly with the workspace API key (one event or a list)",
    description="Source `api`; `id` is your event id, and a repeated id is acknowledged as a duplicate.",
    dependencies=[requires(Permission.EVENTS_WRITE)],
)
async def post_events(
    workspace: WorkspaceDep,
    runtime: RuntimeDep,
    body: Annotated[
        Any, Body(openapi_examples={"event": {"value": DirectEvent.model_json_schema()["examples"][0]}})
    ],
) -> EventAccepted:
    rate_limit(runtime, f"workspace:{workspace}", None)
    body = without_nul(body)
    try:
        parsed = _direct_events.validate_python(body)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        raise InvalidInput("The events do not have the expected shape.", errors=errors) from exc
    items = parsed if isinstance(parsed, list) else [parsed]
    if not items or len(items) > runtime.settings.max_batch_events:
        raise InvalidInput(f"Send 1 to {runtime.settings.max_batch_events} events.", field="body")
    raws = body if isinstance(body, list) else [body]
    events = []
    for index, raw in enumerate(raws):
        try:
            events.append(
                parse_standard_shape(
                    raw, event_id=str(raw["id"]), where=f"{index}." if isinstance(body, list) else ""
                )
            )
        except PayloadError as exc:
            raise InvalidInput(str(exc), errors=exc.errors) from exc
    results = await ingest.store_and_evaluate(
        runtime.db,
        runtime.outbox,
        runtime.deps.caches,
        workspace_id=workspace,
        source="api",
        events=events,
        now=runtime.deps.clock.now(),
    )
    return event_accepted(results, ignored=0)


def decision_out(d: Decision, contact_external_id: str | None) -> DecisionOut:
    """Return a decision as the API shows it, naming its contact by both ids."""
    out = DecisionOut.model_validate(d)
    out.contact_external_id = contact_external_id
    return out


@router.get(
    "/v1/events/{event_id}",
    summary="A received event, normalised, with every decision it caused",
    dependencies=[requires(Permission.EVENTS_READ)],
)
async def get_event(event_id: str, workspace: WorkspaceDep, session: SessionDep) -> ReceivedEventOut:
    event = await queries.get_event(session, workspace_id=workspace, event_id=event_id)
    decisions = [decision_out(d, event.contact_external_id) for d in event.decisions]
    return ReceivedEventOut.model_validate({**vars(event), "decisions": decisions})


@router.get(
    "/v1/events/{event_id}/decisions",
    summary="Every decision an event caused, with its reason",
    dependencies=[requires(Permission.EVENTS_READ)],
)
async def event_decisions(event_id: str, workspace: WorkspaceDep, session: SessionDep) -> list[DecisionOut]:
    return (await get_event(event_id, workspace, session)).decisions


@router.get(
    "/v1/decisions",
    summary="Decisions of the workspace, newest first, by outcome or rule, a page at a time",
    description=PAGED,
    dependencies=[requires(Permission.RULES_READ)],
)
async def list_decisions(
    request: Request,
    response: Response,
    workspace: WorkspaceDep,
    session: SessionDep,
    outcome: Annotated[str | None, Query(description="e.g. suppressed_by_cap")] = None,
    rule_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size, at most 500")] = 100,
    cursor: Cursor = None,
) -> list[DecisionOut]:
    if outcome is not None and outcome not in OUTCOMES:
        raise InvalidInput(f"outcome is one of {', '.join(OUTCOMES)}", field="outcome")
    rows, next_cursor = await queries.list_decisions(
        session, workspace_id=workspace, outcome=outcome, rule_id=rule_id, limit=limit, cursor=cursor
    )
    link_next(request, response, next_cursor)
    return [decision_out(d, external_id) for d, external_id in rows]

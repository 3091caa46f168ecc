"""Routes for contacts: upsert, list, read, opt out and back in, erase, and the bulk import."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger import queries
from services.trigger.api.events import decision_out
from services.trigger.deps import RuntimeDep, TriggerRuntime
from services.trigger.handlers import contacts, imports
from services.trigger.schemas.common import QueryFlag
from services.trigger.schemas.contacts import ContactCreate, ContactOut, ContactUpsert, ImportResult, OptOut
from services.trigger.schemas.events import DecisionOut
from services.trigger.sources.contact_rows import ImportFormatError, read_rows
from shared.access import Permission
from shared.errors import InvalidInput
from shared.guard import GuardedRoute, requires
from shared.paging import PAGED, Cursor, link_next
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["contacts"])
ExternalId = Annotated[str, Path(min_length=1, max_length=200, description="The contact's id in your CRM")]


async def _upsert(
    session: AsyncSession,
    runtime: TriggerRuntime,
    response: Response,
    *,
    workspace: str,
    external_id: str | None,
    fields: dict[str, Any],
) -> ContactOut:
    """Create or update the contact with ``fields``; answer 201 when it is new, else 200."""
    now = runtime.deps.clock.now()
    contact, created = await contacts.upsert_contact(
        session, runtime.outbox, workspace_id=workspace, external_id=external_id, fields=fields, now=now
    )
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return ContactOut.model_validate(contact)


@router.put(
    "/v1/contacts/{external_id}",
    summary="Create or update a contact by your CRM id",
    responses={201: {"description": "Created"}},
    dependencies=[requires(Permission.CONTACTS_WRITE)],
)
async def put_contact(
    external_id: ExternalId,
    body: ContactUpsert,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
) -> ContactOut:
    fields = body.model_dump(exclude_unset=True)
    return await _upsert(
        session, runtime, response, workspace=workspace, external_id=external_id, fields=fields
    )


@router.post(
    "/v1/contacts",
    summary="Create or update a contact by external id and/or email",
    responses={201: {"description": "Created"}},
    dependencies=[requires(Permission.CONTACTS_WRITE)],
)
async def post_contact(
    body: ContactCreate, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep, response: Response
) -> ContactOut:
    fields = body.model_dump(exclude_unset=True)
    external_id = fields.pop("external_id", None)
    return await _upsert(
        session, runtime, response, workspace=workspace, external_id=external_id, fields=fields
    )


@router.get(
    "/v1/contacts",
    summary="List contacts, optionally by email; oldest first, a page at a time",
    description=PAGED,
    dependencies=[requires(Permission.CONTACTS_READ)],
)
async def list_contacts(
    request: Request,
    response: Response,
    workspace: WorkspaceDep,
    session: SessionDep,
    email: Annotated[str | None, Query(max_length=320)] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size, at most 500")] = 100,
    offset: Annotated[int, Query(ge=0, description="Deprecated: use cursor")] = 0,
    cursor: Cursor = None,
) -> list[ContactOut]:
    rows, next_cursor = await queries.list_contacts(
        session, workspace_id=workspace, email=email, limit=limit, offset=offset, cursor=cursor
    )
    link_next(request, response, next_cursor)
    return [ContactOut.model_validate(c) for c in rows]


@router.get(
    "/v1/contacts/by-id/{contact_id}",
    summary="Read a contact by its closeloop id: the contact_id of events, decisions, tasks and invitations",
    dependencies=[requires(Permission.CONTACTS_READ)],
)
async def get_contact_by_id(contact_id: str, workspace: WorkspaceDep, session: SessionDep) -> ContactOut:
    return ContactOut.model_validate(
        await queries.contact_by_id(session, workspace_id=workspace, contact_id=contact_id)
    )


@router.get(
    "/v1/contacts/{external_id}",
    summary="Read a contact by your CRM id",
    dependencies=[requires(Permission.CONTACTS_READ)],
)
async def get_contact(external_id: ExternalId, workspace: WorkspaceDep, session: SessionDep) -> ContactOut:
    return ContactOut.model_validate(
        await contacts.find_contact(session, workspace_id=workspace, external_id=external_id)
    )


@router.delete(
    "/v1/contacts/{external_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Erase a contact's personal data here and in every service (publishes ContactErased)",
    dependencies=[requires(Permission.CONTACTS_ERASE)],
)
async def erase_contact(
    external_id: ExternalId, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    await contacts.erase_contact(
        session, runtime.outbox, workspace_id=workspace, external_id=external_id, now=runtime.deps.clock.now()
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/contacts/{external_id}/opt-out",
    summary="Opt a contact out of surveys (one channel or all); publishes ContactOptedOut",
    dependencies=[requires(Permission.CONTACTS_WRITE)],
)
async def opt_out(
    external_id: ExternalId,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    body: Annotated[
        OptOut | None,
        Body(openapi_examples={"every channel": {"value": {}}, "only SMS": {"value": {"channel": "sms"}}}),
    ] = None,
) -> ContactOut:
    contact = await contacts.find_contact(session, workspace_id=workspace, external_id=external_id)
    contact = await contacts.set_opt_out(
        session,
        runtime.outbox,
        workspace_id=workspace,
        contact=contact,
        channel=body.channel if body else None,
        now=runtime.deps.clock.now(),
        source="api",
    )
    return ContactOut.model_validate(contact)


@router.delete(
    "/v1/contacts/{external_id}/opt-out",
    summary="Opt a contact back in to every channel (when the customer asks for it)",
    dependencies=[requires(Permission.CONTACTS_WRITE)],
)
async def opt_in(external_id: ExternalId, workspace: WorkspaceDep, session: SessionDep) -> ContactOut:
    contact = await contacts.find_contact(session, workspace_id=workspace, external_id=external_id)
    return ContactOut.model_validate(
        await contacts.opt_in(session, workspace_id=workspace, contact_id=contact["id"])
    )


@router.get(
    "/v1/contacts/{external_id}/decisions",
    summary="Every survey decision made for a contact, with its reason",
    dependencies=[requires(Permission.CONTACTS_READ)],
)
async def contact_decisions(
    external_id: ExternalId, workspace: WorkspaceDep, session: SessionDep
) -> list[DecisionOut]:
    rows = await queries.contact_decisions(session, workspace_id=workspace, external_id=external_id)
    return [decision_out(d, external_id) for d in rows]


@router.post(
    "/v1/contacts/import",
    summary="Bulk upsert contacts from CSV or JSON lines, with an error per invalid row",
    description="Send `text/csv` (header row) or `application/x-ndjson`. Valid rows are applied and "
    "invalid ones reported; with `atomic=true` nothing is applied unless every row is valid (422).",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "external_id,email,name,plan\ncus_1,ada@example.com,Ada,pro\n",
                },
                "application/x-ndjson": {
                    "schema": {"type": "string"},
                    "example": '{"external_id":"cus_1","email":"ada@example.com"}\n',
                },
            },
        }
    },
    dependencies=[requires(Permission.CONTACTS_WRITE)],
)
async def import_contacts(
    request: Request,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    atomic: QueryFlag = False,
) -> ImportResult:
    try:
        rows = read_rows(request.headers.get("content-type", ""), await request.body())
    except ImportFormatError as exc:
        raise InvalidInput(str(exc), field=exc.field) from exc
    if len(rows) > runtime.settings.import_max_rows:
        raise InvalidInput(
            f"{len(rows)} rows in one request; at most {runtime.settings.import_max_rows} (the CLI sends chunks).",
            field="body",
        )
    result = await imports.import_contacts(
        session,
        runtime.outbox,
        workspace_id=workspace,
        rows=rows,
        now=runtime.deps.clock.now(),
        atomic=atomic,
    )
    if atomic and result.failed:
        response.status_code = 422
    return result

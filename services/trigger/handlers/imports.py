"""The bulk contact import: every valid row upserted, an error per invalid one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.handlers.contacts import upsert_contact
from services.trigger.schemas.contacts import ContactCreate, ImportError_, ImportResult
from services.trigger.sources.contact_rows import Row
from shared.outbox import Outbox


async def import_contacts(
    session: AsyncSession,
    outbox: Outbox,
    *,
    workspace_id: str,
    rows: Sequence[Row],
    now: datetime,
    atomic: bool,
) -> ImportResult:
    """Upsert every valid row; return the counts and an error per invalid row (``atomic``: all or none)."""
    errors: list[ImportError_] = []
    valid: list[ContactCreate] = []
    for row in rows:
        if row.error is not None:
            errors.append(ImportError_(row=row.number, field=row.error[0], message=row.error[1]))
            continue
        try:
            valid.append(ContactCreate.model_validate(row.values))
        except ValidationError as exc:
            for error in exc.errors():
                where = ".".join(str(p) for p in error["loc"]) or "row"
                errors.append(ImportError_(row=row.number, field=where, message=error["msg"]))
    failed = len({e.row for e in errors})
    created = updated = 0
    if not (atomic and errors):
        for body in valid:
            fields = body.model_dump(exclude_unset=True)
            external_id = fields.pop("external_id", None)
            _, was_created = await upsert_contact(
                session,
                outbox,
                workspace_id=workspace_id,
                external_id=external_id,
                fields=fields,
                now=now,
                source="import",
            )
            created += was_created
            updated += not was_created
    return ImportResult(rows=len(rows), created=created, updated=updated, failed=failed, errors=errors)

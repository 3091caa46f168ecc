"""The workspace's settings: its branding (owned here: pages show it, ``BrandingChanged`` gives it to
dispatch's emails), the glossary of internal terms, and the question checklist that uses the glossary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.responses.domain.branding import branding_changed, check_branding, merge_branding
from services.responses.domain.checklist import GlossaryTerm, LintWarning, estimated_seconds, lint
from services.responses.domain.definition import Definition
from services.responses.handlers.errors import invalid
from services.responses.handlers.visits import Visit
from services.responses.models import WorkspaceSettings
from services.responses.schemas import GlossaryIn, WorkspaceBrandingIn
from shared.events import utcnow
from shared.outbox import Outbox


async def glossary_of(session: AsyncSession, *, workspace_id: str) -> list[GlossaryTerm]:
    """Return the workspace's glossary of internal terms."""
    row = await session.get(WorkspaceSettings, workspace_id)
    return [GlossaryTerm(t["term"], t.get("hint")) for t in (row.glossary if row else [])]


async def lint_definition(
    session: AsyncSession, *, workspace_id: str, raw: Mapping[str, Any], max_seconds: int, lang: str = "en"
) -> tuple[int, list[LintWarning]]:
    """Return the estimated seconds and the checklist's warnings for a definition."""
    definition = Definition.of(0, dict(raw))
    glossary = await glossary_of(session, workspace_id=workspace_id)
    warnings = lint(
        definition.questions,
        default_locale=definition.default_locale,
        glossary=glossary,
        max_seconds=max_seconds,
        lang=lang,
    )
    return estimated_seconds(definition.questions), warnings


async def _settings_row(session: AsyncSession, *, workspace_id: str) -> WorkspaceSettings:
    await session.execute(
        insert(WorkspaceSettings).values(workspace_id=workspace_id).on_conflict_do_nothing()
    )
    row = await session.scalar(
        select(WorkspaceSettings).where(WorkspaceSettings.workspace_id == workspace_id).with_for_update()
    )
    assert row is not None
    return row


async def put_glossary(session: AsyncSession, *, workspace_id: str, body: GlossaryIn) -> list[dict[str, Any]]:
    """Return the workspace's glossary, replaced by ``body``."""
    row = await _settings_row(session, workspace_id=workspace_id)
    row.glossary = [t.model_dump(exclude_none=True) for t in body.terms]
    row.updated_at = utcnow()
    await session.flush()
    return row.glossary


async def branding_of(session: AsyncSession, *, workspace_id: str) -> dict[str, Any]:
    """Return the workspace's own branding settings (without defaults)."""
    row = await session.get(WorkspaceSettings, workspace_id)
    return dict(row.branding) if row else {}


async def put_branding(
    session: AsyncSession,
    outbox: Outbox,
    *,
    workspace_id: str,
    body: WorkspaceBrandingIn,
    max_logo_bytes: int,
) -> dict[str, Any]:
    """Return the workspace's branding, replaced by ``body``; raise ``InvalidInput`` when unreadable.

    When what other services see of it changes, ``BrandingChanged`` goes out in the same transaction.
    """
    values = body.model_dump(exclude_none=True)
    errors = check_branding(values, max_logo_bytes=max_logo_bytes)
    if errors:
        raise invalid("The branding is not valid", errors)
    row = await _settings_row(session, workspace_id=workspace_id)
    now = utcnow()
    before = branding_changed(workspace_id, row.branding, changed_at=now)
    after = branding_changed(workspace_id, values, changed_at=now)
    row.branding = values
    row.updated_at = now
    await session.flush()
    if after != before:
        await outbox.add(session, after)
    return row.branding


async def page_branding(session: AsyncSession | None, *, visit: Visit) -> dict[str, Any]:
    """Return the branding a visit's pages show: defaults, the workspace's, the survey's own.

    ``session`` may be None when the visit came with the workspace's branding (the read path)."""
    own = visit.workspace_branding
    if own is None:
        assert session is not None
        own = await branding_of(session, workspace_id=visit.link.workspace_id)
    return merge_branding(own, visit.definition.raw.get("branding"))

"""What happens when a webhook arrives, a contact, rule or setting changes, or a contact opts out.

Ingest is written for throughput, in two steps: ``store_events`` (what a webhook's answer waits
for: one statement for a whole group of requests) and ``evaluate`` (the evaluator, later: one
statement upserts the contacts and marks the events, one writes the decisions, history, schedules and
outbox rows), with rules and integrations read from in-memory caches.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any, TypeVar

import pydantic_core
from pydantic import ValidationError
from sqlalchemy import delete, func, literal, literal_column, or_, select, text, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger import domain
from services.trigger.caches import Caches, IntegrationView, WorkspaceRules
from services.trigger.domain import Cap, ContactView, Facts, Policy, QuietHours, RuleView, Sent, Verdict
from services.trigger.importer import Row
from services.trigger.models import (
    CONTACT_COLUMNS,
    CONTACT_FIELDS,
    AuditEntry,
    Integration,
    Rule,
    WorkspaceSettings,
    contact_surveys_table,
    contacts_table,
    received_events_table,
    schedules_table,
)
from services.trigger.schemas import (
    ContactCreate,
    DryRunRequest,
    DryRunResult,
    DryRunRule,
    ImportError_,
    ImportResult,
    IntegrationCreate,
    IntegrationUpdate,
    ReceivedEventOut,
    RuleCreate,
    RulePatch,
)
from services.trigger.schemas import WorkspaceSettings as SettingsBody
from services.trigger.sources import ContactRef, Incoming
from services.trigger.store import (
    PENDING_IN_BATCH_SQL,
    EventReceipt,
    explode_batches,
    json_param,
    session_fetch,
    store_events,
)
from shared import standard_webhooks
from shared.db import Database
from shared.errors import InvalidInput, NotFound
from shared.events import (
    CloudEvent,
    ContactErased,
    ContactOptedOut,
    CustomerEventReceived,
    EventData,
    Recipient,
    SurveyRequested,
    is_uuid,
    new_id,
)
from shared.outbox import Outbox

log = logging.getLogger(__name__)
T = TypeVar("T")

_INSERTED: Any = literal_column("(xmax = 0)").label("inserted")


def _upsert_contacts_statement() -> Any:
    stmt = insert(contacts_table)
    return stmt.on_conflict_do_update(
        index_elements=[contacts_table.c.workspace_id, contacts_table.c.external_id],
        set_={
            **{f: func.coalesce(stmt.excluded[f], contacts_table.c[f]) for f in CONTACT_FIELDS},
            "attributes": contacts_table.c.attributes.op("||")(stmt.excluded.attributes),
            "updated_at": func.now(),
        },
    ).returning(*CONTACT_COLUMNS, _INSERTED)


# Built once: SQLAlchemy caches the compiled form of a statement object it sees again.
_UPSERT_CONTACTS = _upsert_contacts_statement()

_CONTACT_SQL_COLUMNS = ", ".join(CONTACT_FIELDS)
_CONTACT_RECORD = ", ".join(
    ["id varchar", "workspace_id varchar", "external_id varchar"]
    + [f"{f} varchar" for f in CONTACT_FIELDS]
    + ["attributes jsonb"]
)
# The evaluator's first statement for a batch of stored events: upsert their contacts (sorted, so
# that two evaluators lock the contacts they share in the same order) and mark the events evaluated,
# naming their contact. Its rows: the contacts.
_EVALUATE_SQL = text(
    f"""
WITH c AS (
    INSERT INTO trigger.contacts AS t
        (id, workspace_id, external_id, {_CONTACT_SQL_COLUMNS}, attributes, opted_out, opted_out_channels)
    SELECT x.id, x.workspace_id, x.external_id, {", ".join(f"x.{f}" for f in CONTACT_FIELDS)},
           COALESCE(x.attributes, '{{}}'::jsonb), false, '[]'::jsonb
    FROM jsonb_to_recordset(CAST(:contacts AS jsonb)) AS x({_CONTACT_RECORD})
    ORDER BY x.external_id
    ON CONFLICT (workspace_id, external_id) DO UPDATE SET
        {", ".join(f"{f} = COALESCE(EXCLUDED.{f}, t.{f})" for f in CONTACT_FIELDS)},
        attributes = t.attributes || EXCLUDED.attributes,
        updated_at = now()
    RETURNING t.id, t.external_id, {", ".join(f"t.{f}" for f in CONTACT_FIELDS)}, t.attributes,
              t.opted_out, t.opted_out_channels, t.created_at
), e AS (
    UPDATE trigger.received_events AS t
    SET contact_id = COALESCE(x.contact_id, c.id), contact = NULL, evaluated_at = now()
    FROM unnest(CAST(:event_ids AS varchar[]), CAST(:contact_ids AS varchar[]),
                CAST(:contact_external_ids AS varchar[])) AS x(id, contact_id, contact_external_id)
    LEFT JOIN c ON c.external_id = x.contact_external_id
    WHERE t.id = x.id
)
SELECT row_to_json(c)::text FROM c
"""
)
# One statement for the second half: decisions, the frequency history, schedules and the outbox.
# Outbox rows keep the order they were made in, so one customer's events are published in order.
_WRITE_SQL = text(
    """
WITH s AS (
    INSERT INTO trigger.schedules
        (id, workspace_id, rule_id, contact_id, received_event_id, due_at, recurrence_days, status,
         source, event_type, occurred_at, properties)
    SELECT x.id, x.workspace_id, x.rule_id, x.contact_id, x.received_event_id, x.due_at, x.recurrence_days,
           x.status, x.source, x.event_type, x.occurred_at, x.properties
    FROM jsonb_to_recordset(CAST(:schedules AS jsonb)) AS x(
        id varchar, workspace_id varchar, rule_id varchar, contact_id varchar, received_event_id varchar,
        due_at timestamptz, recurrence_days integer, status varchar, source varchar, event_type varchar,
        occurred_at timestamptz, properties jsonb)
), d AS (
    INSERT INTO trigger.decisions
        (id, workspace_id, received_event_id, rule_id, rule_version, contact_id, outcome, reason,
         request_id, send_at, channel, schedule_id)
    SELECT v->>'id', v->>'workspace_id', v->>'received_event_id', v->>'rule_id', (v->>'rule_version')::int,
           v->>'contact_id', v->>'outcome', v->>'reason', v->>'request_id', (v->>'send_at')::timestamptz,
           v->>'channel', v->>'schedule_id'
    FROM jsonb_array_elements(CAST(:decisions AS jsonb)) WITH ORDINALITY AS a(v, n)
    ORDER BY n
), h AS (
    INSERT INTO trigger.contact_surveys (request_id, workspace_id, contact_id, survey_id, rule_id, kind, sent_at)
    SELECT x.request_id, x.workspace_id, x.contact_id, x.survey_id, x.rule_id, x.kind, x.sent_at
    FROM jsonb_to_recordset(CAST(:history AS jsonb)) AS x(
        request_id varchar, workspace_id varchar, contact_id varchar, survey_id varchar, rule_id varchar,
        kind varchar, sent_at timestamptz)
    ON CONFLICT DO NOTHING
)
INSERT INTO trigger.outbox (event_id, topic, key, payload)
SELECT v->>'event_id', v->>'topic', v->>'key', v->'payload'
FROM jsonb_array_elements(CAST(:outbox AS jsonb)) WITH ORDINALITY AS a(v, n)
ORDER BY n
"""
)


# --- transactions --------------------------------------------------------------------------


def _retryable(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None) or getattr(
        getattr(exc.orig, "__cause__", None), "sqlstate", None
    )
    return code in ("40P01", "40001")  # deadlock detected, serialization failure


async def in_transaction(
    db: Database, work: Callable[[AsyncSession], Awaitable[T]], *, attempts: int = 3
) -> T:
    """Return ``work``'s result, committed; a deadlock between two writers is retried, not a 500."""
    for attempt in range(1, attempts + 1):
        try:
            async with db.unit_of_work() as session:
                return await work(session)
        except DBAPIError as exc:
            if attempt == attempts or not _retryable(exc):
                raise
            log.warning("transaction conflict (%s); retrying", exc.orig)
            await asyncio.sleep(0.01 * attempt)
    raise AssertionError("unreachable")


# --- outbox ----------------------------------------------------------------------------------


def outbox_row(outbox: Outbox, data: EventData) -> dict[str, Any]:
    """Return the outbox row ``Outbox.add`` would write for ``data``, for one multi-row insert."""
    envelope = CloudEvent.wrap_json(data, source=outbox.source)
    return {"event_id": envelope["id"], "topic": data.topic, "key": data.partition_key(), "payload": envelope}


async def write_outbox(session: AsyncSession, outbox: Outbox, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(outbox.table.insert(), rows)
        session.info["outbox_written"] = True


# --- audit -----------------------------------------------------------------------------------


def audit(
    session: AsyncSession,
    *,
    workspace_id: str,
    entity: str,
    entity_id: str,
    action: str,
    actor: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    session.add(
        AuditEntry(
            id=new_id(),
            workspace_id=workspace_id,
            entity=entity,
            entity_id=entity_id,
            action=action,
            actor=actor[:300],
            before=before,
            after=after,
        )
    )


# --- integrations ----------------------------------------------------------------------------

SECRET_REQUIRED = {
    "hubspot": "the HubSpot app's client secret",
    "zendesk": "the Zendesk webhook's signing secret",
}


def new_secret(kind: str) -> str:
    if kind in ("standard-webhooks", "cloudevents"):
        return standard_webhooks.new_secret()
    return secrets.token_urlsafe(32)


def integration_config(kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``config`` checked against ``kind``: options of other kinds are refused, not ignored."""
    clean = {k: v for k, v in config.items() if v not in (None, False)}
    allowed = {
        "standard-webhooks": {"mapping", "rate_limit_per_s"},
        "hubspot": {"allow_legacy_signatures", "portal_ids", "rate_limit_per_s", "access_token"},
        "zendesk": {"mapping", "rate_limit_per_s"},
        "cloudevents": {"mapping", "auth", "secret_header", "basic_username", "rate_limit_per_s"},
        "generic": {"mapping", "auth", "secret_header", "basic_username", "rate_limit_per_s"},
    }[kind]
    for key in clean:
        if key not in allowed:
            raise InvalidInput(f"{key} does not apply to {kind} integrations", field=f"config.{key}")
    if kind == "generic" and clean.get("auth") == "standard-webhooks":
        clean.pop("auth")  # generic + standard-webhooks signing is the standard-webhooks kind with a mapping
        raise InvalidInput(
            "use kind standard-webhooks with a mapping for signed generic bodies", field="config.auth"
        )
    return clean


def _check_secret(kind: str, secret: str) -> None:
    """Standard Webhooks secrets are ``whsec_`` and base64 of at least 16 bytes (CloudEvents may
    use one too, or any shared secret for header, basic or bearer auth)."""
    if kind == "cloudevents" and not secret.startswith("whsec_"):
        return
    if kind not in ("standard-webhooks", "cloudevents"):
        return
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not secret.startswith("whsec_") or len(key) < 16:
        raise InvalidInput(
            "a Standard Webhooks secret is whsec_ and the base64 of 16 to 64 bytes", field="secret"
        )


async def create_integration(
    session: AsyncSession, *, workspace_id: str, body: IntegrationCreate, actor: str
) -> tuple[Integration, str | None]:
    """Return the new integration and the secret to show once (None when the caller gave it)."""
    if body.kind in SECRET_REQUIRED and not body.secret:
        raise InvalidInput(
            f"{body.kind} integrations need secret: {SECRET_REQUIRED[body.kind]}", field="secret"
        )
    config = integration_config(body.kind, body.config.model_dump(mode="json", exclude_none=True))
    secret = body.secret or new_secret(body.kind)
    _check_secret(body.kind, secret)
    integration = Integration(
        id=new_id(),
        workspace_id=workspace_id,
        kind=body.kind,
        source=body.source or body.kind,
        name=body.name,
        secret=secret,
        config=config,
        enabled=body.enabled,
    )
    session.add(integration)
    await session.flush()
    audit(
        session,
        workspace_id=workspace_id,
        entity="integration",
        entity_id=integration.id,
        action="created",
        actor=actor,
        before=None,
        after=integration_snapshot(integration),
    )
    return integration, None if body.secret else secret


def integration_snapshot(i: Integration) -> dict[str, Any]:
    """What the audit log keeps of an integration: everything but the secrets."""
    return {
        "name": i.name,
        "kind": i.kind,
        "source": i.source,
        "enabled": i.enabled,
        "config": public_config(i.config),
    }


def public_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The integration's config without its access token (whether one is set is shown)."""
    shown = dict(config or {})
    if shown.pop("access_token", None):
        shown["access_token_set"] = True
    return shown


async def find_integration(session: AsyncSession, *, workspace_id: str, integration_id: str) -> Integration:
    integration = await session.get(Integration, integration_id) if is_uuid(integration_id) else None
    if integration is None or integration.workspace_id != workspace_id:
        raise NotFound(f"No integration {integration_id!r} in this workspace.", field="integration_id")
    return integration


async def update_integration(
    session: AsyncSession,
    caches: Caches,
    *,
    workspace_id: str,
    integration_id: str,
    body: IntegrationUpdate,
    actor: str,
) -> Integration:
    """Return the integration after the change; the change is audited and the cache invalidated."""
    integration = await find_integration(session, workspace_id=workspace_id, integration_id=integration_id)
    before = integration_snapshot(integration)
    changes = body.model_dump(exclude_unset=True)
    if "config" in changes:
        config = integration_config(
            integration.kind, body.config.model_dump(mode="json", exclude_none=True) if body.config else {}
        )
        if "access_token" not in config and (integration.config or {}).get("access_token") and body.config:
            config["access_token"] = integration.config[
                "access_token"
            ]  # a token is replaced, never echoed back
        integration.config = config
    if changes.get("name") is not None:
        integration.name = changes["name"]
    if changes.get("enabled") is not None:
        integration.enabled = changes["enabled"]
    if changes.get("secret") is not None:
        _check_secret(integration.kind, changes["secret"])
        integration.secret = changes["secret"]
    integration.updated_at = func.now()  # type: ignore[assignment]
    await session.flush()
    await session.refresh(integration)
    after = integration_snapshot(integration)
    audit(
        session,
        workspace_id=workspace_id,
        entity="integration",
        entity_id=integration.id,
        action="secret_changed" if before == after and "secret" in changes else "updated",
        actor=actor,
        before=before,
        after=after,
    )
    caches.integrations.invalidate(integration.id)
    return integration


async def load_integration(session: AsyncSession, caches: Caches, *, integration_id: str) -> IntegrationView:
    """Return the enabled integration, from the cache when fresh, or raise ``NotFound``."""

    async def fetch() -> IntegrationView | None:
        if not is_uuid(integration_id):
            return None
        row = (
            await session.execute(
                select(
                    Integration.id,
                    Integration.workspace_id,
                    Integration.kind,
                    Integration.source,
                    Integration.secret,
                    Integration.config,
                    Integration.enabled,
                    Integration.name,
                ).where(Integration.id == integration_id)
            )
        ).first()
        return IntegrationView(*row) if row is not None else None

    view = await caches.integrations.get_or_load(integration_id, fetch)
    if view is None or not view.enabled:
        raise NotFound(
            f"No enabled integration {integration_id!r}; check the webhook URL.", field="integration_id"
        )
    return view


# --- the workspace's rules and policy --------------------------------------------------------


def rule_view(rule: Rule) -> RuleView:
    return RuleView(
        id=rule.id,
        event_type=rule.event_type,
        survey_id=rule.survey_id,
        channel=rule.channel,
        delay_seconds=rule.delay_seconds,
        enabled=rule.enabled and rule.deleted_at is None,
        source=rule.source,
        conditions=domain.parse_condition(rule.conditions) if rule.conditions else None,
        kind=rule.kind,
        fallback_channels=tuple(rule.fallback_channels or ()),
        locale=rule.locale,
        sample_percent=rule.sample_percent,
        survey_cap=Cap(rule.survey_cap_max, rule.survey_cap_days)
        if rule.survey_cap_max and rule.survey_cap_days
        else None,
        exempt_from_caps=rule.exempt_from_caps,
        recurrence_days=rule.recurrence_days,
        respect_quiet_hours=rule.respect_quiet_hours,
        version=rule.version,
        name=rule.name,
    )


def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def policy_of(row: WorkspaceSettings | None) -> Policy:
    if row is None:
        return Policy()
    return Policy(
        cap=Cap(row.cap_max_surveys, row.cap_days) if row.cap_max_surveys and row.cap_days else None,
        quiet_hours=QuietHours(_hhmm(row.quiet_start), _hhmm(row.quiet_end))
        if row.quiet_start and row.quiet_end
        else None,
        default_timezone=row.default_timezone or "UTC",
    )


async def load_workspace(session: AsyncSession, caches: Caches, *, workspace_id: str) -> WorkspaceRules:
    """Return the workspace's enabled rules and policy, from the cache when fresh."""

    async def fetch() -> WorkspaceRules:
        rows = (
            await session.scalars(
                select(Rule)
                .where(Rule.workspace_id == workspace_id, Rule.enabled.is_(True), Rule.deleted_at.is_(None))
                .order_by(Rule.created_at, Rule.id)
            )
        ).all()
        rules = tuple(rule_view(r) for r in rows)
        policy = policy_of(await session.get(WorkspaceSettings, workspace_id))
        windows = [r.survey_cap.days for r in rules if r.survey_cap] + (
            [policy.cap.days] if policy.cap else []
        )
        return WorkspaceRules(rules, policy, max(windows, default=0))

    loaded = await caches.workspaces.get_or_load(workspace_id, fetch)
    assert loaded is not None  # fetch always returns one
    return loaded


# --- contacts --------------------------------------------------------------------------------


def contact_view(row: Mapping[str, Any]) -> ContactView:
    return ContactView(
        email=row["email"],
        phone=row["phone"],
        opted_out=row["opted_out"],
        id=row["id"],
        opted_out_channels=frozenset(row["opted_out_channels"] or ()),
        timezone=row["timezone"],
        facts=contact_facts(row),
    )


def contact_facts(row: Mapping[str, Any]) -> dict[str, Any]:
    facts = {f: row.get(f) for f in ("external_id", *CONTACT_FIELDS, "opted_out", "created_at")}
    facts["attributes"] = row.get("attributes") or {}
    return facts


# Column sizes: webhook data is clipped to them rather than failing the whole event.
_FIELD_LENGTHS = {
    "external_id": 200,
    "email": 320,
    "name": 200,
    "phone": 40,
    "locale": 20,
    "timezone": 64,
    "country": 64,
    "company": 200,
    "role": 100,
    "plan": 100,
}


def _clip(field: str, value: Any) -> Any:
    return str(value)[: _FIELD_LENGTHS[field]] if value is not None else None


def _contact_values(workspace_id: str, ref: ContactRef) -> dict[str, Any]:
    values: dict[str, Any] = {f: None for f in CONTACT_FIELDS}
    values.update({k: _clip(k, v) for k, v in ref.fields.items() if k in CONTACT_FIELDS and v is not None})
    if ref.email:
        values["email"] = _clip("email", ref.email)
    return {
        "id": new_id(),
        "workspace_id": workspace_id,
        "external_id": _clip("external_id", ref.external_id),
        **values,
        "attributes": dict(ref.attributes),
        "opted_out": False,
        "opted_out_channels": [],
    }


def _ref_key(ref: ContactRef) -> str:
    return (
        f"x:{_clip('external_id', ref.external_id)}" if ref.external_id else f"e:{(ref.email or '').lower()}"
    )


def _merge(a: ContactRef, b: ContactRef) -> ContactRef:
    return ContactRef(
        external_id=a.external_id or b.external_id,
        email=b.email or a.email,
        fields={**a.fields, **{k: v for k, v in b.fields.items() if v is not None}},
        attributes={**a.attributes, **b.attributes},
    )


async def upsert_contact_by_email(
    session: AsyncSession, *, workspace_id: str, ref: ContactRef
) -> tuple[dict[str, Any], bool]:
    """Return the contact with this email (the oldest, if several) after the update, or a new one."""
    email = (ref.email or "").lower()
    # Serialise creators of one email address, so two at once do not make two contacts.
    await session.execute(
        select(func.pg_advisory_xact_lock(func.hashtextextended(f"{workspace_id}:{email}", 0)))
    )
    existing = (
        await session.execute(
            select(contacts_table.c.id)
            .where(contacts_table.c.workspace_id == workspace_id, func.lower(contacts_table.c.email) == email)
            .order_by(contacts_table.c.created_at)
            .limit(1)
            .with_for_update()
        )
    ).scalar_one_or_none()
    values = _contact_values(workspace_id, ref)
    if existing is None:
        row = (
            (await session.execute(insert(contacts_table).values(values).returning(*CONTACT_COLUMNS)))
            .mappings()
            .one()
        )
        return dict(row), True
    changes = {k: v for k, v in values.items() if k in CONTACT_FIELDS and v is not None}
    row = (
        (
            await session.execute(
                update(contacts_table)
                .where(contacts_table.c.id == existing)
                .values(
                    **changes,
                    attributes=contacts_table.c.attributes.op("||")(literal(values["attributes"], JSONB)),
                    updated_at=func.now(),
                )
                .returning(*CONTACT_COLUMNS)
            )
        )
        .mappings()
        .one()
    )
    return dict(row), False


async def upsert_contact(
    session: AsyncSession,
    outbox: Outbox,
    *,
    workspace_id: str,
    external_id: str | None,
    fields: dict[str, Any],
    now: datetime,
    source: str = "api",
) -> tuple[dict[str, Any], bool]:
    """Return the contact after applying ``fields`` and whether it was created.

    ``opted_out: true`` opts the contact out (and tells the other services); ``false`` opts it back in.
    """
    opted_out = fields.pop("opted_out", None)
    attributes = fields.pop("attributes", None) or {}
    email = fields.pop("email", None)
    ref = ContactRef(
        external_id=external_id,
        email=str(email).lower() if email else None,
        fields={k: v for k, v in fields.items() if v is not None},
        attributes=attributes,
    )
    if external_id and ref.email:
        # A contact first known by its email alone is adopted by the first upsert naming its id.
        taken = select(contacts_table.c.id).where(
            contacts_table.c.workspace_id == workspace_id, contacts_table.c.external_id == external_id
        )
        oldest = (
            select(contacts_table.c.id)
            .where(
                contacts_table.c.workspace_id == workspace_id,
                contacts_table.c.external_id.is_(None),
                func.lower(contacts_table.c.email) == ref.email,
            )
            .order_by(contacts_table.c.created_at)
            .limit(1)
            .scalar_subquery()
        )
        await session.execute(
            update(contacts_table)
            .where(contacts_table.c.id == oldest, ~taken.exists())
            .values(external_id=external_id)
        )
    if external_id:
        row = (await session.execute(_UPSERT_CONTACTS, _contact_values(workspace_id, ref))).mappings().one()
        contact, created = dict(row), bool(row["inserted"])
    else:
        contact, created = await upsert_contact_by_email(session, workspace_id=workspace_id, ref=ref)
    if opted_out is True and not contact["opted_out"]:
        contact = await set_opt_out(
            session, outbox, workspace_id=workspace_id, contact=contact, channel=None, now=now, source=source
        )
    elif opted_out is False and (contact["opted_out"] or contact["opted_out_channels"]):
        contact = await opt_in(session, workspace_id=workspace_id, contact_id=contact["id"])
    return contact, created


async def find_contact(session: AsyncSession, *, workspace_id: str, external_id: str) -> dict[str, Any]:
    row = (
        (
            await session.execute(
                select(*CONTACT_COLUMNS).where(
                    contacts_table.c.workspace_id == workspace_id, contacts_table.c.external_id == external_id
                )
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"No contact with external id {external_id!r}.", field="external_id")
    return dict(row)


async def set_opt_out(
    session: AsyncSession,
    outbox: Outbox | None,
    *,
    workspace_id: str,
    contact: Mapping[str, Any],
    channel: str | None,
    now: datetime,
    source: str,
) -> dict[str, Any]:
    """Return the contact opted out of ``channel`` (None: everything); publish ``ContactOptedOut``
    unless ``outbox`` is None (the event came from elsewhere)."""
    channels = list(contact["opted_out_channels"] or [])
    already = contact["opted_out"] if channel is None else contact["opted_out"] or channel in channels
    values: dict[str, Any] = {"updated_at": func.now()}
    if channel is None:
        values.update(opted_out=True, opted_out_at=now)
    elif channel not in channels:
        values.update(opted_out_channels=[*channels, channel], opted_out_at=now)
    row = (
        (
            await session.execute(
                update(contacts_table)
                .where(contacts_table.c.id == contact["id"])
                .values(**values)
                .returning(*CONTACT_COLUMNS)
            )
        )
        .mappings()
        .one()
    )
    if outbox is not None and not already:
        await write_outbox(
            session,
            outbox,
            [
                outbox_row(
                    outbox,
                    ContactOptedOut(
                        workspace_id=workspace_id,
                        contact_id=contact["id"],
                        channel=channel,  # type: ignore[arg-type]
                        source=source,
                        opted_out_at=now,
                    ),
                )
            ],
        )
    return dict(row)


async def opt_in(session: AsyncSession, *, workspace_id: str, contact_id: str) -> dict[str, Any]:
    """Return the contact opted back in to every channel."""
    row = (
        (
            await session.execute(
                update(contacts_table)
                .where(contacts_table.c.id == contact_id, contacts_table.c.workspace_id == workspace_id)
                .values(opted_out=False, opted_out_channels=[], opted_out_at=None, updated_at=func.now())
                .returning(*CONTACT_COLUMNS)
            )
        )
        .mappings()
        .one()
    )
    return dict(row)


async def on_contact_opted_out(session: AsyncSession, event: ContactOptedOut) -> None:
    """Honour an opt-out that reached another service (an unsubscribe link, a CRM field)."""
    row = (
        (
            await session.execute(
                select(*CONTACT_COLUMNS)
                .where(
                    contacts_table.c.id == event.contact_id,
                    contacts_table.c.workspace_id == event.workspace_id,
                )
                .with_for_update()
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return  # erased, or never ours: nothing to honour
    await set_opt_out(
        session,
        None,
        workspace_id=event.workspace_id,
        contact=dict(row),
        channel=event.channel,
        now=event.opted_out_at,
        source=event.source,
    )


async def erase_contact(
    session: AsyncSession, outbox: Outbox, *, workspace_id: str, external_id: str, now: datetime
) -> str:
    """Erase the contact's personal data here and tell every other service; return its id."""
    contact = await find_contact(session, workspace_id=workspace_id, external_id=external_id)
    contact_id = contact["id"]
    # Events still in stored batches become pending events first, to be erased with those below.
    await explode_batches(session_fetch(session), limit=2**31 - 1, workspace_id=workspace_id)
    # Schedules first, then the contact: the same lock order as the scheduler.
    await session.execute(delete(schedules_table).where(schedules_table.c.contact_id == contact_id))
    await session.execute(
        update(received_events_table)
        .where(
            received_events_table.c.workspace_id == workspace_id,
            received_events_table.c.contact_id == contact_id,
        )
        .values(payload={"erased": True})
    )
    # Events stored but not evaluated yet name the contact only in their own copy of it.
    named = received_events_table.c.contact["external_id"].astext == contact["external_id"]
    if contact["email"]:
        named = or_(
            named, func.lower(received_events_table.c.contact["email"].astext) == contact["email"].lower()
        )
    await session.execute(
        update(received_events_table)
        .where(
            received_events_table.c.workspace_id == workspace_id,
            received_events_table.c.evaluated_at.is_(None),
            named,
        )
        .values(payload={"erased": True}, contact=None, evaluated_at=func.now())
    )
    await session.execute(
        delete(contact_surveys_table).where(contact_surveys_table.c.contact_id == contact_id)
    )
    await session.execute(delete(contacts_table).where(contacts_table.c.id == contact_id))
    await write_outbox(
        session,
        outbox,
        [outbox_row(outbox, ContactErased(workspace_id=workspace_id, contact_id=contact_id, erased_at=now))],
    )
    return contact_id


# --- ingest: store, then evaluate -------------------------------------------------------------


@dataclass
class Batch:
    """What one evaluation writes, gathered so that each table gets one statement."""

    outbox: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    history: list[dict[str, Any]]
    schedules: list[dict[str, Any]]


def survey_requested(
    *,
    workspace_id: str,
    rule: RuleView,
    contact: Mapping[str, Any],
    verdict: Verdict,
    request_id: str,
    context: dict[str, str],
) -> SurveyRequested:
    return SurveyRequested(
        workspace_id=workspace_id,
        request_id=request_id,
        contact_id=contact["id"],
        survey_id=rule.survey_id,
        kind=rule.kind,  # type: ignore[arg-type]
        channel=verdict.channel or rule.channel,  # type: ignore[arg-type]
        send_at=verdict.send_at,
        recipient=Recipient(
            name=contact["name"],
            email=contact["email"],
            phone=contact["phone"],
            locale=contact["locale"],
            timezone=contact["timezone"],
        ),
        reason=f"rule:{rule.id}",
        fallback_channels=verdict.fallback_channels,  # type: ignore[arg-type]
        locale=rule.locale,
        context=context,
    )


def record_verdict(
    batch: Batch,
    outbox: Outbox,
    *,
    workspace_id: str,
    rule: RuleView,
    verdict: Verdict,
    contact: Mapping[str, Any],
    facts: Facts,
    received_event_id: str | None,
    now: datetime,
    schedule_id: str | None = None,
) -> bool:
    """Add the decision and what it causes to ``batch``; return whether a survey was requested."""
    request_id = new_id() if verdict.outcome == "sent" else None
    new_schedule = None
    if verdict.outcome == "delayed" and schedule_id is None and verdict.send_at is not None:
        new_schedule = new_id()
        batch.schedules.append(
            _schedule_row(
                new_schedule, workspace_id, rule, contact, facts, received_event_id, verdict.send_at
            )
        )
    elif verdict.outcome == "sent" and rule.recurrence_days and schedule_id is None:
        # The first send of a recurring survey enrols the contact: the next one is due in N days.
        new_schedule = new_id()
        due = now + timedelta(days=rule.recurrence_days)
        batch.schedules.append(
            _schedule_row(new_schedule, workspace_id, rule, contact, facts, received_event_id, due)
        )
    batch.decisions.append(
        {
            "id": new_id(),
            "workspace_id": workspace_id,
            "received_event_id": received_event_id,
            "rule_id": rule.id,
            "rule_version": rule.version,
            "contact_id": contact["id"],
            "outcome": verdict.outcome,
            "reason": verdict.reason[:2000],
            "request_id": request_id,
            "send_at": verdict.send_at,
            "channel": verdict.channel,
            "schedule_id": schedule_id or new_schedule,
        }
    )
    if request_id is None:
        return False
    context = domain.survey_context(facts.event_type, facts.source, facts.properties)
    batch.outbox.append(
        outbox_row(
            outbox,
            survey_requested(
                workspace_id=workspace_id,
                rule=rule,
                contact=contact,
                verdict=verdict,
                request_id=request_id,
                context=context,
            ),
        )
    )
    batch.history.append(
        {
            "request_id": request_id,
            "workspace_id": workspace_id,
            "contact_id": contact["id"],
            "survey_id": rule.survey_id,
            "rule_id": rule.id,
            "kind": rule.kind,
            "sent_at": now,
        }
    )
    return True


def _schedule_row(
    schedule_id: str,
    workspace_id: str,
    rule: RuleView,
    contact: Mapping[str, Any],
    facts: Facts,
    received_event_id: str | None,
    due: datetime,
) -> dict[str, Any]:
    return {
        "id": schedule_id,
        "workspace_id": workspace_id,
        "rule_id": rule.id,
        "contact_id": contact["id"],
        "received_event_id": received_event_id,
        "due_at": due,
        "recurrence_days": rule.recurrence_days,
        "status": "pending",
        "source": facts.source,
        "event_type": facts.event_type,
        "occurred_at": facts.occurred_at,
        "properties": dict(facts.properties),
    }


async def write_batch(session: AsyncSession, outbox: Outbox, batch: Batch) -> None:
    """Write what ``batch`` gathered in one statement."""
    if not (batch.schedules or batch.decisions or batch.history or batch.outbox):
        return
    await session.execute(
        _WRITE_SQL,
        {
            "schedules": json_param(batch.schedules),
            "decisions": json_param(batch.decisions),
            "history": json_param(batch.history),
            "outbox": json_param(batch.outbox),
        },
    )
    if batch.outbox:
        session.info["outbox_written"] = True


async def load_history(
    session: AsyncSession, *, contact_ids: Sequence[str], window_days: int, now: datetime
) -> dict[str, list[Sent]]:
    """Return each contact's surveys within the longest cap window."""
    history: dict[str, list[Sent]] = {cid: [] for cid in contact_ids}
    if not contact_ids or window_days <= 0:
        return history
    rows = await session.execute(
        select(
            contact_surveys_table.c.contact_id,
            contact_surveys_table.c.survey_id,
            contact_surveys_table.c.sent_at,
            contact_surveys_table.c.rule_id,
        ).where(
            contact_surveys_table.c.contact_id.in_(contact_ids),
            contact_surveys_table.c.sent_at > now - timedelta(days=window_days),
        )
    )
    for contact_id, survey_id, sent_at, rule_id in rows:
        history[contact_id].append(Sent(survey_id, sent_at, rule_id))
    return history


async def load_enrollments(session: AsyncSession, *, contact_ids: Sequence[str]) -> dict[str, set[str]]:
    """Return, per contact, the recurring rules it is enrolled in (a pending recurring schedule)."""
    enrolled: dict[str, set[str]] = {cid: set() for cid in contact_ids}
    if not contact_ids:
        return enrolled
    rows = await session.execute(
        select(schedules_table.c.contact_id, schedules_table.c.rule_id).where(
            schedules_table.c.contact_id.in_(contact_ids),
            schedules_table.c.status == "pending",
            schedules_table.c.recurrence_days.is_not(None),
        )
    )
    for contact_id, rule_id in rows:
        enrolled[contact_id].add(rule_id)
    return enrolled


@dataclass(frozen=True)
class Pending:
    """A stored event the rules have not seen yet."""

    id: str
    source: str
    source_event_id: str
    event_type: str
    occurred_at: datetime
    contact: ContactRef | None
    properties: dict[str, Any]


async def pending_in_batch(
    session: AsyncSession, *, workspace_id: str, event_id: str
) -> ReceivedEventOut | None:
    """The event ``event_id`` as it waits in a stored batch of the workspace, if it does."""
    rows = await session_fetch(session)(PENDING_IN_BATCH_SQL, workspace_id, event_id)
    if not rows:
        return None
    source, source_event_id, event_type, occurred_at, payload, received_at, error = rows[0]
    return ReceivedEventOut(
        id=event_id,
        source=source,
        source_event_id=source_event_id,
        event_type=event_type,
        occurred_at=occurred_at,
        contact_id=None,
        received_at=received_at,
        status="failed" if error else "pending",
        error=error,
        properties=pydantic_core.from_json(payload),
        decisions=[],
    )


async def store_and_evaluate(
    session: AsyncSession,
    outbox: Outbox,
    *,
    rules: WorkspaceRules,
    workspace_id: str,
    source: str,
    events: Sequence[Incoming],
    now: datetime,
) -> list[EventReceipt]:
    """Store the events and apply the rules in the same transaction (``POST /v1/events``)."""
    results = await store_events(
        session_fetch(session),
        workspace_id=workspace_id,
        integration_id=None,
        source=source,
        events=events,
        now=now,
    )
    pending = [
        Pending(
            r.event_id, source, e.source_event_id, e.event_type, e.occurred_at or now, e.contact, e.properties
        )
        for e, r in zip(events, results, strict=True)
        if r.status == "accepted" and r.event_id
    ]
    requested = await evaluate(
        session, outbox, rules=rules, workspace_id=workspace_id, events=pending, now=now
    )
    return [
        replace(r, surveys_requested=requested.get(r.event_id or "", 0)) if r.status == "accepted" else r
        for r in results
    ]


async def evaluate(
    session: AsyncSession,
    outbox: Outbox,
    *,
    rules: WorkspaceRules,
    workspace_id: str,
    events: Sequence[Pending],
    now: datetime,
) -> dict[str, int]:
    """Apply the workspace's rules to stored, pending events; return the surveys requested per event.

    Upserts the events' contacts, marks the events evaluated, and writes the decisions, the frequency
    history, schedules and the outbox (``CustomerEventReceived`` and ``SurveyRequested``).
    """
    merged: dict[str, ContactRef] = {}
    for event in events:
        if event.contact is not None:
            key = _ref_key(event.contact)
            merged[key] = _merge(merged[key], event.contact) if key in merged else event.contact
    contacts: dict[str, dict[str, Any]] = {}
    for key in sorted(k for k in merged if k.startswith("e:")):  # known by email alone: rare
        contacts[key] = (await upsert_contact_by_email(session, workspace_id=workspace_id, ref=merged[key]))[
            0
        ]
    by_id = [_contact_values(workspace_id, r) for k, r in merged.items() if k.startswith("x:")]
    result = await session.execute(
        _EVALUATE_SQL,
        {
            "contacts": json_param(by_id),
            "event_ids": [event.id for event in events],
            "contact_ids": [
                contacts[key]["id"]
                if event.contact and (key := _ref_key(event.contact)) in contacts
                else None
                for event in events
            ],
            "contact_external_ids": [
                _clip("external_id", event.contact.external_id) if event.contact else None for event in events
            ],
        },
    )
    for (raw,) in result.all():
        row = pydantic_core.from_json(raw)
        contacts[f"x:{row['external_id']}"] = row

    accepted = [e for e in events if e.contact is not None]
    relevant_ids = sorted(
        {contacts[_ref_key(e.contact)]["id"] for e in accepted if rules.any_match(e.source, e.event_type)}  # type: ignore[arg-type]
    )
    history = await load_history(
        session, contact_ids=relevant_ids, window_days=rules.cap_window_days, now=now
    )
    enrolled = (
        await load_enrollments(session, contact_ids=relevant_ids)
        if any(r.recurrence_days for r in rules.rules)
        else {}
    )
    batch = Batch([], [], [], [])
    requested: dict[str, int] = {}
    for event in accepted:
        contact = contacts[_ref_key(event.contact)]  # type: ignore[arg-type]
        batch.outbox.append(
            outbox_row(
                outbox,
                CustomerEventReceived(
                    workspace_id=workspace_id,
                    event_id=event.id,
                    source=event.source,
                    source_event_id=event.source_event_id,
                    event_type=event.event_type,
                    occurred_at=event.occurred_at,
                    contact_id=contact["id"],
                    properties=event.properties,
                ),
            )
        )
        if contact["id"] not in history:
            continue
        facts = Facts(
            event.event_type, event.source, event.occurred_at, event.properties, contact_facts(contact)
        )
        contact_enrolled = enrolled.setdefault(contact["id"], set())
        verdicts = domain.decide_all(
            rules.rules,
            contact_view(contact),
            facts=facts,
            now=now,
            policy=rules.policy,
            history=history[contact["id"]],
            enrolled=frozenset(contact_enrolled),
        )
        count = 0
        for rule, verdict in verdicts:
            count += record_verdict(
                batch,
                outbox,
                workspace_id=workspace_id,
                rule=rule,
                verdict=verdict,
                contact=contact,
                facts=facts,
                received_event_id=event.id,
                now=now,
            )
            if rule.recurrence_days and verdict.outcome in ("sent", "delayed"):
                contact_enrolled.add(rule.id)
        requested[event.id] = count
    await write_batch(session, outbox, batch)
    return requested


# --- rules -------------------------------------------------------------------------------------


def rule_snapshot(rule: Rule) -> dict[str, Any]:
    """The rule as the API shows it: what the audit log keeps before and after a change."""
    return {
        "name": rule.name,
        "source": rule.source,
        "event_type": rule.event_type,
        "conditions": rule.conditions,
        "survey_id": rule.survey_id,
        "kind": rule.kind,
        "channel": rule.channel,
        "fallback_channels": list(rule.fallback_channels or []),
        "locale": rule.locale,
        "delay_seconds": rule.delay_seconds,
        "recurrence_days": rule.recurrence_days,
        "sample_percent": rule.sample_percent,
        "survey_cap": {"max_surveys": rule.survey_cap_max, "days": rule.survey_cap_days}
        if rule.survey_cap_max
        else None,
        "exempt_from_caps": rule.exempt_from_caps,
        "respect_quiet_hours": rule.respect_quiet_hours,
        "enabled": rule.enabled,
    }


def _rule_columns(values: Mapping[str, Any], *, field_prefix: str = "") -> dict[str, Any]:
    """Return table columns from API fields, with the conditions checked."""
    columns = dict(values)
    if "conditions" in columns and columns["conditions"] is not None:
        try:
            domain.parse_condition(columns["conditions"], path=f"{field_prefix}conditions")
        except domain.ConditionError as exc:
            raise InvalidInput(f"{exc} (at {exc.path})", field=exc.path) from exc
    if "survey_cap" in columns:
        cap = columns.pop("survey_cap")
        columns["survey_cap_max"] = cap["max_surveys"] if cap else None
        columns["survey_cap_days"] = cap["days"] if cap else None
    if "fallback_channels" in columns:
        channels = columns["fallback_channels"] or []
        if len(set(channels)) != len(channels) or columns.get("channel") in channels:
            raise InvalidInput(
                "fallback_channels lists each channel once, and not the main channel",
                field=f"{field_prefix}fallback_channels",
            )
    return columns


async def create_rule(
    session: AsyncSession, caches: Caches, *, workspace_id: str, body: RuleCreate, actor: str
) -> Rule:
    """Return the new rule; its creation is audited."""
    rule = Rule(
        id=new_id(), workspace_id=workspace_id, version=1, **_rule_columns(body.model_dump(mode="json"))
    )
    session.add(rule)
    await session.flush()
    await session.refresh(rule)
    audit(
        session,
        workspace_id=workspace_id,
        entity="rule",
        entity_id=rule.id,
        action="created",
        actor=actor,
        before=None,
        after=rule_snapshot(rule),
    )
    caches.workspaces.invalidate(workspace_id)
    return rule


async def find_rule(session: AsyncSession, *, workspace_id: str, rule_id: str, lock: bool = False) -> Rule:
    rule = None
    if is_uuid(rule_id):
        stmt = select(Rule).where(
            Rule.id == rule_id, Rule.workspace_id == workspace_id, Rule.deleted_at.is_(None)
        )
        rule = await session.scalar(stmt.with_for_update() if lock else stmt)
    if rule is None:
        raise NotFound(f"No rule {rule_id!r} in this workspace.", field="rule_id")
    return rule


async def change_rule(
    session: AsyncSession,
    caches: Caches,
    *,
    workspace_id: str,
    rule_id: str,
    changes: dict[str, Any],
    actor: str,
    replace: bool,
) -> Rule:
    """Return the rule after ``changes`` (all fields when ``replace``); the change is audited."""
    rule = await find_rule(session, workspace_id=workspace_id, rule_id=rule_id, lock=True)
    before = rule_snapshot(rule)
    # The whole resulting rule is checked, so a patch cannot leave it inconsistent.
    for key, value in _rule_columns(changes if replace else {**before, **changes}).items():
        setattr(rule, key, value)
    after = rule_snapshot(rule)
    if after == before:
        return rule
    rule.version += 1
    rule.updated_at = func.now()  # type: ignore[assignment]
    await session.flush()
    await session.refresh(rule)
    action = "updated"
    if set(k for k in after if after[k] != before[k]) == {"enabled"}:
        action = "enabled" if after["enabled"] else "disabled"
    audit(
        session,
        workspace_id=workspace_id,
        entity="rule",
        entity_id=rule.id,
        action=action,
        actor=actor,
        before=before,
        after=after,
    )
    caches.workspaces.invalidate(workspace_id)
    return rule


async def delete_rule(
    session: AsyncSession, caches: Caches, *, workspace_id: str, rule_id: str, actor: str
) -> None:
    """Delete the rule (its decisions stay, so the history still explains itself); audited."""
    rule = await find_rule(session, workspace_id=workspace_id, rule_id=rule_id, lock=True)
    before = rule_snapshot(rule)
    rule.deleted_at = func.now()  # type: ignore[assignment]
    rule.enabled = False
    rule.version += 1
    audit(
        session,
        workspace_id=workspace_id,
        entity="rule",
        entity_id=rule.id,
        action="deleted",
        actor=actor,
        before=before,
        after=None,
    )
    caches.workspaces.invalidate(workspace_id)


def rule_patch_changes(body: RulePatch) -> dict[str, Any]:
    changes = body.model_dump(mode="json", exclude_unset=True)
    for required in ("name", "event_type", "survey_id", "kind", "channel", "sample_percent", "delay_seconds"):
        if required in changes and changes[required] is None:
            raise InvalidInput(f"{required} cannot be null", field=required)
    for flag in ("exempt_from_caps", "respect_quiet_hours", "enabled"):
        if flag in changes and changes[flag] is None:
            raise InvalidInput(f"{flag} cannot be null", field=flag)
    if changes.get("fallback_channels") is None and "fallback_channels" in changes:
        changes["fallback_channels"] = []
    return changes


# --- settings ------------------------------------------------------------------------------------


def settings_out(row: WorkspaceSettings | None) -> SettingsBody:
    if row is None:
        return SettingsBody()
    return SettingsBody.model_validate(
        {
            "frequency_cap": {"max_surveys": row.cap_max_surveys, "days": row.cap_days}
            if row.cap_max_surveys
            else None,
            "quiet_hours": {"start": row.quiet_start, "end": row.quiet_end} if row.quiet_start else None,
            "default_timezone": row.default_timezone,
        }
    )


async def put_settings(
    session: AsyncSession, caches: Caches, *, workspace_id: str, body: SettingsBody, actor: str
) -> SettingsBody:
    """Return the workspace settings after replacing them; the change is audited."""
    row = await session.get(WorkspaceSettings, workspace_id, with_for_update=True)
    before = settings_out(row).model_dump(mode="json") if row else None
    if row is None:
        row = WorkspaceSettings(workspace_id=workspace_id)
        session.add(row)
    row.cap_max_surveys = body.frequency_cap.max_surveys if body.frequency_cap else None
    row.cap_days = body.frequency_cap.days if body.frequency_cap else None
    row.quiet_start = body.quiet_hours.start if body.quiet_hours else None
    row.quiet_end = body.quiet_hours.end if body.quiet_hours else None
    row.default_timezone = body.default_timezone
    row.updated_at = func.now()  # type: ignore[assignment]
    after = body.model_dump(mode="json")
    if before != after:
        audit(
            session,
            workspace_id=workspace_id,
            entity="settings",
            entity_id=workspace_id,
            action="updated",
            actor=actor,
            before=before,
            after=after,
        )
    await session.flush()
    caches.workspaces.invalidate(workspace_id)
    return body


# --- dry run -------------------------------------------------------------------------------------


def draft_rule(index: int, body: RuleCreate) -> RuleView:
    columns = _rule_columns(body.model_dump(mode="json"), field_prefix=f"rules.{index}.")
    rule = Rule(id=f"draft-{index}", workspace_id="", version=0, **columns)
    rule.deleted_at = None
    return rule_view(rule)


async def dry_run(
    session: AsyncSession, caches: Caches, *, workspace_id: str, body: DryRunRequest, now: datetime
) -> DryRunResult:
    """Return which rules match this event and contact, and what each would do and why; writes nothing."""
    workspace = await load_workspace(session, caches, workspace_id=workspace_id)
    rules = (
        [draft_rule(i, r) for i, r in enumerate(body.rules)]
        if body.rules is not None
        else list(workspace.rules)
    )
    stored: dict[str, Any] | None = None
    given = body.contact.model_dump(exclude_none=True, exclude={"opted_out", "opted_out_channels"})
    if body.contact.external_id:
        row = (
            (
                await session.execute(
                    select(*CONTACT_COLUMNS).where(
                        contacts_table.c.workspace_id == workspace_id,
                        contacts_table.c.external_id == body.contact.external_id,
                    )
                )
            )
            .mappings()
            .first()
        )
        stored = dict(row) if row else None
    contact: dict[str, Any] = {
        "id": stored["id"] if stored else "dry-run",
        **{f: None for f in ("external_id", *CONTACT_FIELDS)},
        "attributes": {},
        "opted_out": False,
        "opted_out_channels": [],
        "created_at": None,
        **(stored or {}),
    }
    contact.update({k: v for k, v in given.items() if k != "attributes"})
    contact["attributes"] = {**(contact["attributes"] or {}), **given.get("attributes", {})}
    contact["opted_out"] = contact["opted_out"] or body.contact.opted_out
    contact["opted_out_channels"] = sorted(
        {*(contact["opted_out_channels"] or []), *body.contact.opted_out_channels}
    )
    window = max([workspace.cap_window_days, *(r.survey_cap.days for r in rules if r.survey_cap)])
    history = (
        (await load_history(session, contact_ids=[stored["id"]], window_days=window, now=now))[stored["id"]]
        if stored
        else []
    )
    enrolled = (
        (await load_enrollments(session, contact_ids=[stored["id"]]))[stored["id"]] if stored else set()
    )
    occurred_at = body.occurred_at or now
    if occurred_at.tzinfo is None:
        raise InvalidInput("occurred_at needs a timezone, e.g. 2026-11-23T10:00:00Z", field="occurred_at")
    facts = Facts(body.event_type, body.source, occurred_at, body.properties, contact_facts(contact))
    view = contact_view(contact)
    results = []
    for rule in rules:
        if not rule.matches(body.source, body.event_type):
            results.append(
                DryRunRule(
                    rule_id=rule.id if not rule.id.startswith("draft-") else None,
                    rule_name=rule.name,
                    matched=False,
                    conditions=[],
                    outcome=None,
                    reason=f"listens to {rule.event_type!r}"
                    + (f" from {rule.source!r}" if rule.source else "")
                    + ("" if rule.enabled else " (disabled)"),
                )
            )
            continue
        trace: list[dict[str, Any]] = []
        verdict = domain.decide(
            rule,
            view,
            occurred_at=occurred_at,
            now=now,
            policy=workspace.policy,
            history=history,
            facts=facts,
            enrolled=rule.id in enrolled,
            trace=trace,
        )
        if verdict.outcome == "sent":
            history = [*history, Sent(rule.survey_id, now, rule.id)]
        results.append(
            DryRunRule(
                rule_id=rule.id if not rule.id.startswith("draft-") else None,
                rule_name=rule.name,
                matched=True,
                conditions=trace,
                outcome=verdict.outcome,
                reason=verdict.reason,
                send_at=verdict.send_at,
                channel=verdict.channel,
                fallback_channels=list(verdict.fallback_channels),
            )
        )
    return DryRunResult(contact_known=stored is not None, history=len(history), rules=results)


# --- bulk import ---------------------------------------------------------------------------------


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

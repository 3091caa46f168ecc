"""Integrations (inbound sources): their secrets and config, checked per kind; changes are audited
and the in-memory cache that every webhook reads is invalidated."""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.caches import Caches, IntegrationView
from services.trigger.handlers.audit import audit
from services.trigger.models import Integration
from services.trigger.schemas.integrations import IntegrationCreate, IntegrationUpdate
from shared import standard_webhooks
from shared.errors import InvalidInput, NotFound
from shared.events import is_uuid, new_id

SECRET_REQUIRED = {
    "hubspot": "the HubSpot app's client secret",
    "zendesk": "the Zendesk webhook's signing secret",
}


def new_secret(kind: str) -> str:
    """Return a new secret for an integration of ``kind`` (``whsec_`` for Standard Webhooks signing)."""
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
    """What the API shows and the audit log keeps of an integration: everything but the secrets (and its id)."""
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
    """Return the workspace's integration, or raise ``NotFound``."""
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
    integration.updated_at = func.now()
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

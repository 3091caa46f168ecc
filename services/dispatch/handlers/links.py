"""The links a message carries: the signed, expiring survey link, the short personal link and the
one-click unsubscribe link."""

from __future__ import annotations

from services.dispatch import domain
from services.dispatch.models import Invitation
from services.dispatch.settings import DispatchSettings
from shared.security import sign_token
from shared.survey_links import SurveyLink, issue_link_token

UNSUBSCRIBE_PURPOSE = "unsubscribe"
UNSUBSCRIBE_TTL_S = 400 * 86400
MAX_CONTEXT_IN_LINK = 20


def link_context(context: dict[str, str]) -> dict[str, str]:
    """Return the hidden fields that ride in the survey link (a few, short)."""
    return {k[:64]: v[:200] for k, v in list(context.items())[:MAX_CONTEXT_IN_LINK] if isinstance(v, str)}


def issue_survey_url(settings: DispatchSettings, invitation: Invitation, *, channel: str, ttl_s: int) -> str:
    """Return the signed, expiring survey link of the invitation over ``channel``."""
    token = issue_link_token(
        settings.secret_key,
        SurveyLink(
            workspace_id=invitation.workspace_id,
            invitation_id=invitation.id,
            request_id=invitation.request_id,
            survey_id=invitation.survey_id,
            contact_id=invitation.contact_id,
            kind=invitation.kind,
            channel=channel,
            locale=invitation.locale,
            context=link_context(invitation.context or {}),
        ),
        ttl_s=ttl_s,
    )
    return domain.survey_url(settings.survey_base_url, token)


def unsubscribe_url(settings: DispatchSettings, invitation: Invitation) -> str:
    """Return the invitation's one-click unsubscribe URL (a signed token)."""
    token = sign_token(
        settings.secret_key,
        UNSUBSCRIBE_PURPOSE,
        {"ws": invitation.workspace_id, "con": invitation.contact_id, "inv": invitation.id},
        ttl_s=UNSUBSCRIBE_TTL_S,
    )
    return domain.public_link(settings.public_url, f"/u/{token}")


def short_url(settings: DispatchSettings, invitation: Invitation) -> str | None:
    """Return the invitation's short personal link, or None for an invitation without one."""
    return (
        domain.public_link(settings.public_url, f"/l/{invitation.short_code}")
        if invitation.short_code
        else None
    )

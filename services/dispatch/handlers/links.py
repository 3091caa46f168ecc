"""The links a message carries: the survey link, the short personal link and the one-click
unsubscribe link.

The survey link's token is opaque (``shared.survey_links``: encrypted and authenticated), so the
``survey_url`` an invitation stores reveals nothing to whoever reads it; it carries who was invited
(``respondent``) for the person who follows up, and the survey request's trace (``traceparent``) for
the answer to continue. Every message shows the **short link**
(``{public_url}/l/{code}``, a redirect to the survey link): short in an SMS, an email's text part and
a chat, and the place where an erased contact's link stops working."""

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
            respondent=respondent(invitation),
            traceparent=invitation.traceparent,  # the answer continues the survey request's trace
        ),
        ttl_s=ttl_s,
    )
    return domain.survey_url(settings.survey_base_url, token)


def respondent(invitation: Invitation) -> dict[str, str] | None:
    """Return who was invited, as the survey link carries it (None when nothing is known)."""
    inv = invitation
    fields = {
        "name": inv.recipient_name,
        "email": inv.recipient_email,
        "phone": inv.recipient_phone,
        "locale": inv.locale,
        "timezone": inv.recipient_timezone,
        "company": inv.recipient_company,
    }  # ``recipient_of(invitation)`` as a dict, without building the model
    who = {k: v for k, v in fields.items() if isinstance(v, str) and v}
    return who or None


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

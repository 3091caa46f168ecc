"""Telling people: every notification is a ``NotificationRequested`` in the outbox (dispatch sends it
by email or to a chat channel), never a direct send."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from services.followup.models import Agent, Team
from shared.events import NotificationRequested, new_id
from shared.outbox import Outbox

Target = tuple[str, str]
"""(channel, address): ("email", "sam@acme.example") or ("chat", "https://hooks.slack.com/…")."""


async def agent_targets(session: AsyncSession, workspace_id: str, agent_id: str | None) -> list[Target]:
    """Return where an agent is told things (their email), or nowhere."""
    if not agent_id:
        return []
    agent = await session.get(Agent, (workspace_id, agent_id))
    return [("email", agent.email)] if agent is not None and agent.email else []


def team_targets(team: Team | None) -> list[Target]:
    """Return the team's own channel (email or chat), or nowhere."""
    if team is None or not team.notify_channel or not team.notify_to:
        return []
    return [(team.notify_channel, team.notify_to)]


def notifications(
    workspace_id: str, targets: Iterable[Target], subject: str, body: str, *, contact_id: str | None = None
) -> list[NotificationRequested]:
    """Return one notification per distinct target; ``contact_id`` names the contact the body quotes."""
    return [
        NotificationRequested(
            workspace_id=workspace_id,
            notification_id=new_id(),
            channel=channel,
            to=to,
            subject=subject,
            body=body,
            contact_id=contact_id,
        )
        for channel, to in dict.fromkeys(targets)
    ]


async def send(
    session: AsyncSession,
    outbox: Outbox,
    workspace_id: str,
    targets: Iterable[Target],
    subject: str,
    body: str,
) -> None:
    for notice in notifications(workspace_id, targets, subject, body):
        await outbox.add(session, notice)

"""People and workspaces: creating a workspace with its owner, invitations, "forgot password".

Emails go through dispatch: the console writes ``NotificationRequested`` (channel email) to its outbox
in the same transaction as the invitation or the link, and dispatch's notifier sends it. The link's
token is in the email only; the console keeps its SHA-256.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.console.domain.sessions import new_token, token_hash
from services.console.handlers.accounts import (
    check_password,
    issue_password_link,
    memberships,
    normalise_email,
)
from services.console.handlers.keys import CreatedKey, create_key
from services.console.hashing import Passwords
from services.console.models import Invitation, Membership, User, Workspace
from services.console.settings import ConsoleSettings
from shared.access import PERSON_ROLES, Keyring, Principal, Role, may_grant
from shared.errors import Conflict, Forbidden, Gone, InvalidInput
from shared.events import NotificationRequested, new_id
from shared.outbox import Outbox


def link(settings: ConsoleSettings, path: str) -> str:
    return settings.public_url.rstrip("/") + path


async def notify(
    session: AsyncSession, outbox: Outbox, *, workspace_id: str, to: str, subject: str, body: str
) -> None:
    """Ask dispatch to email ``to`` (staff notification), in this transaction."""
    await outbox.add(
        session,
        NotificationRequested(
            workspace_id=workspace_id,
            notification_id=new_id(),
            channel="email",
            to=to,
            subject=subject,
            body=body,
        ),
    )


async def find_or_create_user(session: AsyncSession, *, email: str, name: str | None) -> tuple[User, bool]:
    """Return the person with ``email`` (and whether they are new)."""
    email = normalise_email(email)
    user = await session.scalar(select(User).where(User.email == email))
    if user is not None:
        return user, False
    user = User(id=new_id(), email=email, name=(name or email.split("@")[0]).strip()[:200])
    session.add(user)
    await session.flush()
    return user, True


# --- workspaces (operators) ----------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedWorkspace:
    workspace: Workspace
    created: bool
    owner: User
    owner_created: bool
    sign_in_url: str | None
    password: str | None
    key: CreatedKey


async def create_workspace(
    session: AsyncSession,
    passwords: Passwords,
    settings: ConsoleSettings,
    keyring: Keyring,
    *,
    workspace_id: str,
    name: str | None,
    owner_email: str,
    owner_name: str | None,
    sign_in: str,
    now: datetime,
) -> CreatedWorkspace:
    """Create the workspace (or find it), make ``owner_email`` its owner, and issue an admin key and the
    owner's sign-in: a one-time link that sets the password, or a generated password."""
    workspace = await session.get(Workspace, workspace_id)
    created = workspace is None
    if workspace is None:
        workspace = Workspace(id=workspace_id, name=(name or workspace_id).strip()[:200])
        session.add(workspace)
        await session.flush()
    owner, owner_created = await find_or_create_user(session, email=owner_email, name=owner_name)
    member = await session.get(Membership, (workspace_id, owner.id))
    if member is None:
        session.add(Membership(workspace_id=workspace_id, user_id=owner.id, role=Role.OWNER.value))
    else:
        member.role = Role.OWNER.value
    sign_in_url = password = None
    if sign_in == "password":
        password = generate_password()
        owner.password_hash, owner.password_changed_at = await passwords.hash(password), now
    else:
        token = await issue_password_link(
            session, user=owner, purpose="setup", ttl=timedelta(days=settings.invitation_days), now=now
        )
        sign_in_url = link(settings, f"/password/{token}")
    key = await create_key(
        session,
        keyring,
        workspace_id=workspace_id,
        role=Role.ADMIN,
        label="Admin key (closeloop workspace create)",
        expires_at=None,
        created_by="operator",
        now=now,
    )
    return CreatedWorkspace(workspace, created, owner, owner_created, sign_in_url, password, key)


def generate_password() -> str:
    """Return a random password of 20 characters (about 119 bits)."""
    return secrets.token_urlsafe(15)


# --- invitations -----------------------------------------------------------------------------------


async def invite(
    session: AsyncSession,
    outbox: Outbox,
    settings: ConsoleSettings,
    *,
    by: Principal,
    email: str,
    role: Role,
    now: datetime,
) -> Invitation:
    """Invite ``email`` to the caller's workspace with ``role``; the email goes out through dispatch."""
    if role not in PERSON_ROLES:
        raise InvalidInput(f"A person's role is one of {', '.join(PERSON_ROLES)}.", field="role")
    if not may_grant(by.role, role):
        raise Forbidden(f"Your role '{by.role}' may not give the role '{role}'.", field="role")
    email = normalise_email(email)
    existing = await session.scalar(select(User).where(User.email == email))
    if existing is not None and await session.get(Membership, (by.workspace_id, existing.id)) is not None:
        raise Conflict(f"{email} is already a member of this workspace.", field="email")
    workspace = await session.get(Workspace, by.workspace_id)
    if workspace is None:
        raise InvalidInput("The console does not know this workspace.", field="workspace_id")
    token = new_token()
    invitation = Invitation(
        id=new_id(),
        token_hash=token_hash(token),
        workspace_id=by.workspace_id,
        email=email,
        role=role.value,
        invited_by=by.actor,
        created_at=now,
        expires_at=now + timedelta(days=settings.invitation_days),
    )
    session.add(invitation)
    url = link(settings, f"/invitations/{token}")
    await notify(
        session,
        outbox,
        workspace_id=by.workspace_id,
        to=email,
        subject=f"{by.name} invites you to {workspace.name} on closeloop",
        body=(
            f"{by.name} invites you to the workspace '{workspace.name}' on closeloop as {role.value}.\n\n"
            f"Accept the invitation (the link works once, for {settings.invitation_days} days):\n{url}\n\n"
            "If you did not expect this, ignore this email."
        ),
    )
    return invitation


async def open_invitation(
    session: AsyncSession, *, token: str, now: datetime
) -> tuple[Invitation, Workspace, User | None]:
    """Return a usable invitation, its workspace and the person it is for (None: not yet a user)."""
    invitation = await session.scalar(
        select(Invitation).where(Invitation.token_hash == token_hash(token)).with_for_update()
    )
    if invitation is None or invitation.accepted_at is not None or invitation.expires_at <= now:
        raise Gone("This invitation has been used already or has expired; ask for a new one.", field="token")
    workspace = await session.get(Workspace, invitation.workspace_id)
    assert workspace is not None
    user = await session.scalar(select(User).where(User.email == invitation.email))
    return invitation, workspace, user


async def accept_invitation(
    session: AsyncSession,
    passwords: Passwords,
    settings: ConsoleSettings,
    *,
    token: str,
    name: str,
    password: str,
    now: datetime,
) -> tuple[User, str]:
    """Accept the invitation: a new person chooses their name and password; an existing person proves
    who they are with their password. Either way they become a member with the invited role; return
    the person and the workspace."""
    invitation, workspace, user = await open_invitation(session, token=token, now=now)
    if user is None or user.password_hash is None:
        check_password(password, settings, context=(invitation.email, name, workspace.name))
        if user is None:
            user, _ = await find_or_create_user(session, email=invitation.email, name=name or None)
        elif name.strip():
            user.name = name.strip()[:200]
        user.password_hash, user.password_changed_at = await passwords.hash(password), now
    elif not await passwords.verify(user.password_hash, password):
        raise InvalidInput("That is not your password; enter the one you sign in with.", field="password")
    if await session.get(Membership, (workspace.id, user.id)) is None:
        session.add(Membership(workspace_id=workspace.id, user_id=user.id, role=invitation.role))
    invitation.accepted_at = now
    return user, workspace.id


# --- forgot password ---------------------------------------------------------------------------------


async def request_password_reset(
    session: AsyncSession, outbox: Outbox, settings: ConsoleSettings, *, email: str, now: datetime
) -> None:
    """Email a single-use reset link when ``email`` has an account; do nothing visible otherwise."""
    user = await session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        return
    belongs = await memberships(session, user.id)
    if not belongs:
        return
    token = await issue_password_link(
        session, user=user, purpose="reset", ttl=timedelta(minutes=settings.reset_token_minutes), now=now
    )
    await notify(
        session,
        outbox,
        workspace_id=belongs[0][1].id,
        to=user.email,
        subject="Reset your closeloop password",
        body=(
            "Someone (we hope you) asked to reset the password of your closeloop account.\n\n"
            f"Choose a new password here (the link works once, for {settings.reset_token_minutes} minutes):\n"
            f"{link(settings, f'/password/{token}')}\n\n"
            "If it was not you, ignore this email: your password stays as it is."
        ),
    )

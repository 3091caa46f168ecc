"""Signing in and out: passwords, throttling, sessions, and links that set a password.

Sign-in never tells whether an account exists: the same message and, through a dummy hash, the same
time for an unknown address, an account without a password and a wrong password; throttling counts
the address typed, whether or not it has an account.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.console.domain import passwords as policy
from services.console.domain.sessions import needs_touch, new_token, retry_after, session_state, token_hash
from services.console.errors import SignInRefused, TooManyAttempts
from services.console.hashing import Passwords
from services.console.models import Membership, PasswordToken, Session, SignInFailure, User, Workspace
from services.console.settings import ConsoleSettings
from shared.access import Role, issue_user_token
from shared.errors import Gone, InvalidInput


@dataclass(frozen=True)
class SignedIn:
    """A live session: who, in which workspace, with which role, and the token its forms carry."""

    session: Session
    user: User
    workspace_id: str
    workspace_name: str
    role: Role


def token_for(settings: ConsoleSettings, person: SignedIn, *, now: float) -> str:
    """Return a user token that speaks for ``person`` for ``user_token_ttl_s`` seconds from ``now`` (what the
    console's calls to the services carry, and what ``POST /v1/token`` hands a signed-in browser)."""
    return issue_user_token(
        settings.keyring,
        workspace_id=person.workspace_id,
        user_id=person.user.id,
        name=person.user.name,
        role=person.role,
        now=now,
        ttl_s=settings.user_token_ttl_s,
    )


def normalise_email(email: str) -> str:
    return email.strip().lower()


def check_password(password: str, settings: ConsoleSettings, *, context: tuple[str, ...] = ()) -> None:
    """Raise ``InvalidInput`` naming the password field when the policy refuses ``password``."""
    found = policy.problems(password, min_length=settings.min_password_length, context=context)
    if found:
        raise InvalidInput(found[0], field="password")


# --- throttling --------------------------------------------------------------------------------


def _throttle_keys(email: str, address: str) -> tuple[str, str]:
    account = "account:" + hashlib.sha256(normalise_email(email).encode()).hexdigest()[:40]
    return account, f"address:{address[:80]}"


async def _throttled(
    session: AsyncSession, key: str, *, limit: int, now: datetime, window: timedelta
) -> int | None:
    failures = (
        await session.scalars(
            select(SignInFailure.failed_at).where(
                SignInFailure.key == key, SignInFailure.failed_at > now - window
            )
        )
    ).all()
    return retry_after(failures, now=now, window=window, limit=limit)


async def check_throttle(
    session: AsyncSession, settings: ConsoleSettings, *, email: str, address: str, now: datetime
) -> None:
    """Raise ``TooManyAttempts`` (429, Retry-After) when the account or the address failed too often."""
    window = timedelta(minutes=settings.sign_in_window_minutes)
    account, client = _throttle_keys(email, address)
    waits = [
        await _throttled(
            session, account, limit=settings.sign_in_failures_per_account, now=now, window=window
        ),
        await _throttled(
            session, client, limit=settings.sign_in_failures_per_address, now=now, window=window
        ),
    ]
    wait = max((w for w in waits if w is not None), default=None)
    if wait is not None:
        raise TooManyAttempts(wait)


async def record_failure(session: AsyncSession, *, email: str, address: str, now: datetime) -> None:
    """Count a failed sign-in against the account typed and the client address."""
    for key in _throttle_keys(email, address):
        session.add(SignInFailure(key=key, failed_at=now))


# --- signing in ----------------------------------------------------------------------------------


async def authenticate(
    session: AsyncSession,
    passwords: Passwords,
    settings: ConsoleSettings,
    *,
    email: str,
    password: str,
    address: str,
    now: datetime,
) -> User | None:
    """Return the person whose email and password these are, or None (the same for every reason: no
    such account, no password, a wrong one), having counted the failure; raise ``TooManyAttempts``
    (429) when the account or address failed too often. The caller commits either way."""
    await check_throttle(session, settings, email=email, address=address, now=now)
    user = await session.scalar(select(User).where(User.email == normalise_email(email)))
    stored = user.password_hash if user is not None else None
    if not await passwords.verify(stored, password) or user is None:
        await record_failure(session, email=email, address=address, now=now)
        return None
    account, _ = _throttle_keys(email, address)
    await session.execute(delete(SignInFailure).where(SignInFailure.key == account))
    if user.password_hash and passwords.needs_rehash(user.password_hash):
        user.password_hash = await passwords.hash(password)
    return user


async def memberships(session: AsyncSession, user_id: str) -> list[tuple[Membership, Workspace]]:
    """Return the person's workspaces with their role in each, oldest membership first."""
    rows = await session.execute(
        select(Membership, Workspace)
        .join(Workspace, Workspace.id == Membership.workspace_id)
        .where(Membership.user_id == user_id)
        .order_by(Membership.created_at, Workspace.id)
    )
    return [(m, w) for m, w in rows]


async def start_session(
    session: AsyncSession,
    settings: ConsoleSettings,
    *,
    user: User,
    workspace_id: str | None,
    method: str,
    now: datetime,
) -> str:
    """Open a session for ``user`` in ``workspace_id`` (default: their first workspace); return the
    cookie's token. A person without any workspace cannot sign in."""
    belongs = await memberships(session, user.id)
    chosen = next((w.id for _, w in belongs if w.id == workspace_id), None) or (
        belongs[0][1].id if belongs else None
    )
    if chosen is None:
        raise SignInRefused("You are not a member of any workspace; ask an owner to invite you.")
    token = new_token()
    session.add(
        Session(
            id_hash=token_hash(token),
            user_id=user.id,
            workspace_id=chosen,
            csrf_token=new_token(),
            method=method,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=settings.session_absolute_hours),
        )
    )
    return token


async def load_session(
    session: AsyncSession, settings: ConsoleSettings, *, token: str | None, now: datetime
) -> SignedIn | None:
    """Return the live session of the cookie ``token``; None when there is none or it ended (an ended
    session is deleted)."""
    if not token:
        return None
    row = await session.get(Session, token_hash(token))
    if row is None:
        return None
    state = session_state(
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
        now=now,
        idle=timedelta(minutes=settings.session_idle_minutes),
    )
    found = await session.execute(
        select(User, Membership, Workspace)
        .join(Membership, Membership.user_id == User.id)
        .join(Workspace, Workspace.id == Membership.workspace_id)
        .where(User.id == row.user_id, Membership.workspace_id == row.workspace_id)
    )
    member = found.first()
    if state != "active" or member is None:
        await session.delete(row)
        return None
    if needs_touch(row.last_seen_at, now):
        row.last_seen_at = now
    user, membership, workspace = member
    return SignedIn(row, user, workspace.id, workspace.name, Role(membership.role))


async def sign_out(session: AsyncSession, *, token: str | None) -> None:
    if token:
        await session.execute(delete(Session).where(Session.id_hash == token_hash(token)))


async def sign_out_everywhere(session: AsyncSession, *, user_id: str) -> int:
    """End every session of the person (every browser); return how many."""
    result = await session.execute(delete(Session).where(Session.user_id == user_id))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def switch_workspace(session: AsyncSession, signed_in: SignedIn, *, workspace_id: str) -> None:
    """Move the session to another of the person's workspaces."""
    member = await session.get(Membership, (workspace_id, signed_in.user.id))
    if member is None:
        raise InvalidInput("You are not a member of that workspace.", field="workspace_id")
    signed_in.session.workspace_id = workspace_id


# --- links that set a password -------------------------------------------------------------------


async def issue_password_link(
    session: AsyncSession, *, user: User, purpose: str, ttl: timedelta, now: datetime
) -> str:
    """Return a new single-use token that sets ``user``'s password until ``now + ttl``."""
    token = new_token()
    session.add(
        PasswordToken(
            token_hash=token_hash(token),
            user_id=user.id,
            purpose=purpose,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    return token


async def password_link_user(
    session: AsyncSession, *, token: str, now: datetime
) -> tuple[PasswordToken, User]:
    """Return the link's row and person; raise ``Gone`` when it was used, expired or never existed."""
    row = await session.get(PasswordToken, token_hash(token), with_for_update=True)
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise Gone(
            "This link has been used already or has expired. Ask for a new one on the sign-in page "
            "('Forgot your password?').",
            field="token",
        )
    user = await session.get(User, row.user_id)
    assert user is not None
    return row, user


async def set_password_with_link(
    session: AsyncSession,
    passwords: Passwords,
    settings: ConsoleSettings,
    *,
    token: str,
    password: str,
    now: datetime,
) -> User:
    """Set the password of the link's person, use the link up and end their other sessions."""
    row, user = await password_link_user(session, token=token, now=now)
    check_password(password, settings, context=(user.email, user.name))
    user.password_hash = await passwords.hash(password)
    user.password_changed_at = now
    row.used_at = now
    await session.execute(
        delete(PasswordToken).where(PasswordToken.user_id == user.id, PasswordToken.used_at.is_(None))
    )
    await sign_out_everywhere(session, user_id=user.id)
    return user

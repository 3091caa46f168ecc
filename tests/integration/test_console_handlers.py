"""The console's handlers against a real session rolled back afterwards (what they would publish, read
from the outbox), and shared/revocation.py's pieces against the real database."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from services.console.handlers import keys, people
from services.console.hashing import Passwords
from services.console.models import ApiKey, Invitation, Membership, outbox, revoked_keys
from services.console.settings import ConsoleSettings
from shared.access import Keyring, Principal, Role
from shared.db import Database
from shared.events import KeyRevoked, KeyUsed, NotificationRequested
from shared.outbox import Outbox
from shared.revocation import KeyUsage, RevokedKeys
from tests.conftest import SECRET_KEY
from tests.support.console import FAST_HASHING
from tests.support.db import outbox_events

pytestmark = pytest.mark.integration
OUTBOX = Outbox(outbox, source="console")
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SETTINGS = ConsoleSettings(database_url="postgresql://unused/x", **FAST_HASHING)  # type: ignore[arg-type]


async def _workspace(uow, workspace: str) -> people.CreatedWorkspace:
    return await people.create_workspace(
        uow,
        Passwords(SETTINGS),
        SETTINGS,
        Keyring(SECRET_KEY),
        workspace_id=workspace,
        name="Acme",
        owner_email=f"Owner@{workspace}.example",
        owner_name=None,
        sign_in="link",
        now=NOW,
    )


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The migrated database as a service uses it (commits and all), disposed after the test."""
    database = Database(database_url)
    yield database
    await database.dispose()


async def test_a_new_workspace_has_its_owner_a_one_time_link_and_an_admin_key(uow, workspace):
    made = await _workspace(uow, workspace)
    assert made.created and made.owner.email == f"owner@{workspace}.example"
    assert made.sign_in_url and "/password/" in made.sign_in_url and made.password is None
    member = await uow.get(Membership, (workspace, made.owner.id))
    assert member is not None and member.role == "owner"
    row = await uow.get(ApiKey, made.key.row.key_id)
    assert row is not None and row.role == "admin" and row.created_by == "operator"
    assert made.key.secret not in str(row.__dict__)  # only the id and prefix are kept
    assert await outbox_events(uow, outbox) == []


async def test_an_invitation_writes_the_email_for_dispatch_in_the_same_transaction(uow, workspace):
    made = await _workspace(uow, workspace)
    owner = Principal(workspace, Role.OWNER, "user", made.owner.id, "Ada Owner")
    invitation = await people.invite(
        uow, OUTBOX, SETTINGS, by=owner, email="Grace@Example.com", role=Role.AGENT, now=NOW
    )
    (event,) = await outbox_events(uow, outbox)
    assert isinstance(event, NotificationRequested)
    assert (event.workspace_id, event.channel, event.to) == (workspace, "email", "grace@example.com")
    assert "Ada Owner invites you to Acme" in event.subject and "/invitations/" in event.body
    token = event.body.split("/invitations/", 1)[1].split()[0]
    stored = await uow.scalar(select(Invitation).where(Invitation.id == invitation.id))
    assert (
        stored is not None and token not in stored.token_hash and stored.expires_at == NOW + timedelta(days=7)
    )


async def test_an_admin_may_not_invite_an_owner(uow, workspace):
    await _workspace(uow, workspace)
    admin = Principal(workspace, Role.ADMIN, "key", "k", "API key k")
    from shared.errors import Forbidden

    with pytest.raises(Forbidden):
        await people.invite(uow, OUTBOX, SETTINGS, by=admin, email="x@example.com", role=Role.OWNER, now=NOW)


async def test_forgot_password_writes_an_email_only_for_an_account(uow, workspace):
    await _workspace(uow, workspace)
    await people.request_password_reset(uow, OUTBOX, SETTINGS, email="nobody@nowhere.example", now=NOW)
    assert await outbox_events(uow, outbox) == []
    await people.request_password_reset(uow, OUTBOX, SETTINGS, email=f"OWNER@{workspace}.example", now=NOW)
    (event,) = await outbox_events(uow, outbox)
    assert isinstance(event, NotificationRequested) and "/password/" in event.body


async def test_revoking_writes_key_revoked_once(uow, workspace):
    made = await _workspace(uow, workspace)
    by = Principal(workspace, Role.OWNER, "user", made.owner.id, "Ada")
    for _ in range(2):
        await keys.revoke_key(uow, OUTBOX, workspace_id=workspace, key_id=made.key.row.key_id, by=by, now=NOW)
    (event,) = await outbox_events(uow, outbox)
    assert isinstance(event, KeyRevoked)
    assert (event.key_id, event.revoked_by, event.partition_key()) == (
        made.key.row.key_id,
        by.actor,
        workspace,
    )


async def test_last_use_only_moves_forward(uow, workspace):
    made = await _workspace(uow, workspace)
    key_id = made.key.row.key_id
    for minute in (NOW, NOW - timedelta(minutes=5)):
        await keys.record_usage(uow, event=KeyUsed(workspace_id=workspace, key_id=key_id, used_at=minute))
    await uow.refresh(made.key.row)
    assert made.key.row.last_used_at == NOW


# --- shared/revocation.py -------------------------------------------------------------------------


async def test_every_replica_learns_a_revocation_from_the_table(db):
    consumer_side, other_replica = RevokedKeys(db, revoked_keys), RevokedKeys(db, revoked_keys)
    await consumer_side.load()
    await other_replica.load()
    key_id, workspace = secrets.token_urlsafe(9), "ws-" + secrets.token_hex(4)
    event = KeyRevoked(workspace_id=workspace, key_id=key_id, revoked_at=NOW)
    async with db.unit_of_work() as session:
        await consumer_side.record(session, event)
        await consumer_side.record(session, event)  # a redelivery changes nothing
    assert consumer_side.is_revoked(workspace, key_id)
    assert not other_replica.is_revoked(workspace, key_id)
    assert await other_replica.work_once() == 1
    assert other_replica.is_revoked(workspace, key_id) and not other_replica.is_revoked("other", key_id)
    restarted = RevokedKeys(db, revoked_keys)
    assert await restarted.load() >= 1 and restarted.is_revoked(workspace, key_id)


async def test_revocations_of_long_expired_keys_are_forgotten(db):
    revoked = RevokedKeys(db, revoked_keys)
    old = KeyRevoked(
        workspace_id="ws-old",
        key_id=secrets.token_urlsafe(9),
        revoked_at=NOW,
        expires_at=NOW - timedelta(days=3),
    )
    async with db.unit_of_work() as session:
        await revoked.record(session, old)
    assert await RevokedKeys(db, revoked_keys).load() >= 1
    fresh = RevokedKeys(db, revoked_keys)
    await fresh.load()
    assert not fresh.is_revoked("ws-old", old.key_id)  # the load pruned it (it would fail its expiry anyway)


async def test_key_usage_publishes_one_event_per_key_and_minute(db):
    usage = KeyUsage(db, OUTBOX)
    workspace = "ws-" + secrets.token_hex(4)
    key = Principal(workspace, Role.VIEWER, "key", secrets.token_urlsafe(9), "k")
    for second in (0, 10, 59):
        usage.note(key, NOW.timestamp() + second)
    usage.note(Principal(workspace, Role.ADMIN, "key", "oldkey01", "old", legacy=True), NOW.timestamp())
    assert await usage.work_once() == 1
    usage.note(key, NOW.timestamp() + 30)  # the same minute, published already
    assert await usage.work_once() == 0
    usage.note(key, NOW.timestamp() + 61)
    assert await usage.work_once() == 1
    async with db.unit_of_work() as session:
        rows = (
            (await session.execute(select(outbox.c.payload).where(outbox.c.key == workspace))).scalars().all()
        )
        await session.execute(outbox.delete().where(outbox.c.key == workspace))
    assert [r["data"]["used_at"] for r in rows] == ["2026-11-30T12:00:00Z", "2026-11-30T12:01:00Z"]


async def test_housekeeping_deletes_ended_sessions_and_keeps_live_ones(db, workspace):
    from services.console.domain.sessions import new_token, token_hash
    from services.console.handlers.housekeeping import Housekeeping
    from services.console.models import Session, User
    from shared.clock import Clock

    clock = Clock()
    now = clock.now()
    async with db.unit_of_work() as session:
        user = User(id=secrets.token_hex(8), email=f"h-{workspace}@example.com", name="H")
        session.add(user)
        await session.flush()
        rows = {
            "live": (now, now + timedelta(hours=1)),
            "idle": (now - timedelta(minutes=31), now + timedelta(hours=1)),
            "ended": (now, now - timedelta(seconds=1)),
        }
        ids = {}
        for name, (seen, ends) in rows.items():
            ids[name] = token_hash(new_token())
            session.add(
                Session(
                    id_hash=ids[name],
                    user_id=user.id,
                    workspace_id=workspace,
                    csrf_token="c",
                    method="password",
                    created_at=now,
                    last_seen_at=seen,
                    expires_at=ends,
                )
            )
    await Housekeeping(db, SETTINGS, clock).work_once()
    async with db.unit_of_work() as session:
        left = set((await session.scalars(select(Session.id_hash).where(Session.user_id == user.id))).all())
    assert left == {ids["live"]}

"""The console in-process against the real database and broker: sign-in, throttling, sessions, CSRF,
password links, invitations, keys and user tokens. Emails are read where dispatch would read them:
``NotificationRequested`` on the ``notifications`` topic."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.console.app import create_app
from services.console.settings import ConsoleSettings
from shared.access import Role, issue_user_token, verify_credential
from shared.clock import Clock
from shared.events import NOTIFICATIONS, WORKSPACES
from shared.security import mac
from tests.conftest import SECRET_KEY
from tests.support.console import (
    FAST_HASHING,
    accept_invitation,
    create_workspace,
    csrf_of,
    home_csrf,
    sign_in,
)
from tests.support.stack import TopicReader, settings_from, wait_until

pytestmark = pytest.mark.integration
CLOCK = Clock()


@pytest.fixture(scope="module")
async def app(stack_env: dict[str, str]) -> AsyncIterator[Any]:
    settings = settings_from(
        ConsoleSettings,
        stack_env,
        **FAST_HASHING,
        sign_in_failures_per_account=3,
        sign_in_failures_per_address=6,
        key_usage_flush_s=0.2,
        revocation_poll_ms=200,
    )
    application = create_app(settings, clock=CLOCK)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(autouse=True)
def _clock_back() -> None:
    CLOCK.reset()


@asynccontextmanager
async def browser(app: Any, *, address: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """A client with its own cookie jar and client address, as one browser on one machine."""
    address = address or f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
        yield client


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with browser(app) as c:
        yield c


@pytest.fixture
async def owner(client: httpx.AsyncClient, workspace: str) -> dict[str, Any]:
    """A workspace with an owner who has a password, and its admin key."""
    email = f"ada-{workspace}@example.com"
    made = await create_workspace(client, workspace, owner=email, name="Ada Lovelace")
    return {**made, "email": email}


def signed_in_as(page: str) -> str | None:
    match = re.search(r"You are signed in to <strong>([^<]+)</strong> as <strong>([^<]+)</strong>", page)
    return f"{match.group(1)}:{match.group(2)}" if match else None


# --- signing in -----------------------------------------------------------------------------------


async def test_the_owner_signs_in_and_the_home_page_names_workspace_and_role(client, owner, workspace):
    response = await sign_in(client, owner["email"], owner["password"])
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("closeloop_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http here
    home = await client.get("/")
    assert signed_in_as(home.text) == f"{workspace}:owner"
    for header in ("content-security-policy", "x-content-type-options", "referrer-policy"):
        assert header in home.headers
    assert "frame-ancestors 'none'" in home.headers["content-security-policy"]


async def test_behind_https_the_session_cookie_is_secure(client, owner):
    response = await sign_in(client, owner["email"], owner["password"], **{"X-Forwarded-Proto": "https"})
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("closeloop_session="))
    assert "Secure" in cookie


async def test_a_wrong_password_and_an_unknown_account_get_the_same_answer(client, owner):
    wrong = await sign_in(client, owner["email"], "not the password at all")
    unknown = await sign_in(client, f"nobody-{secrets.token_hex(4)}@example.com", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    message = re.compile(r'<p class="error" role="alert"[^>]*>([^<]+)</p>')
    assert message.search(wrong.text).group(1) == message.search(unknown.text).group(1)  # type: ignore[union-attr]
    assert "closeloop_session" not in (await client.get("/")).headers.get("set-cookie", "")
    assert (await client.get("/")).status_code == 303


async def test_an_account_is_throttled_after_its_failures_even_for_the_right_password(app, owner):
    for attempt in range(3):  # sign_in_failures_per_account=3, each from another address
        async with browser(app) as c:
            assert (await sign_in(c, owner["email"], f"wrong password number {attempt}")).status_code == 401
    async with browser(app) as c:
        refused = await sign_in(c, owner["email"], owner["password"])
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 15 * 60
    CLOCK.advance(timedelta(minutes=16))
    async with browser(app) as c:
        assert (await sign_in(c, owner["email"], owner["password"])).status_code == 303


async def test_an_unknown_account_is_throttled_the_same_way(app):
    email = f"ghost-{secrets.token_hex(4)}@example.com"
    answers = []
    for attempt in range(4):
        async with browser(app) as c:
            answers.append(await sign_in(c, email, f"some password {attempt}"))
    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    assert "retry-after" in answers[-1].headers


async def test_an_address_is_throttled_across_accounts(app):
    address = "192.0.2.77"
    statuses = []
    for attempt in range(7):  # sign_in_failures_per_address=6, a new account each time
        async with browser(app, address=address) as c:
            r = await sign_in(c, f"someone-{attempt}-{secrets.token_hex(3)}@example.com", "whatever it is")
            statuses.append(r.status_code)
    assert statuses == [401] * 6 + [429]


# --- CSRF --------------------------------------------------------------------------------------------


async def test_forms_without_their_csrf_token_are_refused(client, owner, workspace):
    await client.get("/sign-in")
    missing = await client.post("/sign-in", data={"email": owner["email"], "password": owner["password"]})
    wrong = await client.post(
        "/sign-in", data={"email": owner["email"], "password": owner["password"], "csrf_token": "forged"}
    )
    assert missing.status_code == wrong.status_code == 403
    assert "text/html" in missing.headers["content-type"]
    assert (await sign_in(client, owner["email"], owner["password"])).status_code == 303
    auth = {"Authorization": f"Bearer {owner['api_key']['secret']}"}
    before = (await client.get("/v1/keys", headers=auth)).json()
    for data in ({"label": "x", "role": "viewer"}, {"label": "x", "role": "viewer", "csrf_token": "forged"}):
        assert (await client.post("/keys", data=data)).status_code == 403
    assert (await client.get("/v1/keys", headers=auth)).json() == before
    token = await client.post("/v1/token", headers={"X-CSRF-Token": "forged"})
    assert token.status_code == 403 and token.headers["content-type"] == "application/problem+json"


# --- sessions ---------------------------------------------------------------------------------------


async def test_a_session_ends_when_idle(client, owner):
    await sign_in(client, owner["email"], owner["password"])
    CLOCK.advance(timedelta(minutes=29))
    assert (await client.get("/")).status_code == 200  # used: the idle clock starts again
    CLOCK.advance(timedelta(minutes=29))
    assert (await client.get("/")).status_code == 200
    CLOCK.advance(timedelta(minutes=31))
    assert (await client.get("/")).headers.get("location") == "/sign-in"


async def test_a_session_ends_at_its_absolute_end_however_busy(client, owner):
    await sign_in(client, owner["email"], owner["password"])
    for _ in range(12 * 3 - 1):  # every 20 minutes for almost 12 hours
        CLOCK.advance(timedelta(minutes=20))
        assert (await client.get("/")).status_code == 200
    CLOCK.advance(timedelta(minutes=21))
    assert (await client.get("/")).headers.get("location") == "/sign-in"


async def test_sign_out_everywhere_ends_every_session_of_the_person(app, owner):
    async with browser(app) as laptop, browser(app) as phone:
        await sign_in(laptop, owner["email"], owner["password"])
        await sign_in(phone, owner["email"], owner["password"])
        assert (await phone.get("/")).status_code == 200
        out = await laptop.post("/sign-out/everywhere", data={"csrf_token": await home_csrf(laptop)})
        assert out.status_code == 303
        assert (await phone.get("/")).headers.get("location") == "/sign-in"
        assert (await laptop.get("/")).headers.get("location") == "/sign-in"


async def test_sign_out_ends_this_session_only(app, owner):
    async with browser(app) as laptop, browser(app) as phone:
        await sign_in(laptop, owner["email"], owner["password"])
        await sign_in(phone, owner["email"], owner["password"])
        await laptop.post("/sign-out", data={"csrf_token": await home_csrf(laptop)})
        assert (await laptop.get("/")).headers.get("location") == "/sign-in"
        assert (await phone.get("/")).status_code == 200


# --- password links, invitations ---------------------------------------------------------------------


def _link(value: dict, to: str, path: str) -> str | None:
    data = value.get("data", {})
    if value.get("type") != "closeloop.NotificationRequested.v1" or data.get("to") != to:
        return None
    match = re.search(rf"http://\S+({path}/[A-Za-z0-9_-]+)", data["body"])
    return match.group(1) if match else None


async def _emailed_link(broker: Any, to: str, path: str) -> str:
    async with TopicReader(broker.bootstrap_servers, NOTIFICATIONS) as reader:
        (found,) = await reader.wait_for(lambda v: _link(v, to, path) is not None, timeout_s=20)
    link = _link(found, to, path)
    assert link
    return link


async def _set_password(client: httpx.AsyncClient, link: str, password: str) -> httpx.Response:
    page = await client.get(link)
    assert page.status_code == 200, page.text
    return await client.post(link, data={"password": password, "csrf_token": csrf_of(page.text)})


async def test_a_reset_link_works_once(app, client, owner, broker):
    page = await client.get("/forgot-password")
    sent = await client.post(
        "/forgot-password", data={"email": owner["email"], "csrf_token": csrf_of(page.text)}
    )
    assert sent.status_code == 200 and "is on its way" in sent.text
    link = await _emailed_link(broker, owner["email"], "/password")
    new_password = "a completely new passphrase 7"
    assert (await _set_password(client, link, new_password)).status_code == 303
    assert (await client.get("/")).status_code == 200  # signed in by setting it
    async with browser(app) as other:
        assert (await other.get(link)).status_code == 410
        assert (await sign_in(other, owner["email"], owner["password"])).status_code == 401
        assert (await sign_in(other, owner["email"], new_password)).status_code == 303


async def test_a_reset_link_expires(client, owner, broker):
    page = await client.get("/forgot-password")
    await client.post("/forgot-password", data={"email": owner["email"], "csrf_token": csrf_of(page.text)})
    link = await _emailed_link(broker, owner["email"], "/password")
    CLOCK.advance(timedelta(minutes=31))
    assert (await client.get(link)).status_code == 410


async def test_forgot_password_says_the_same_for_an_unknown_address(client):
    page = await client.get("/forgot-password")
    email = f"nobody-{secrets.token_hex(3)}@example.com"
    sent = await client.post("/forgot-password", data={"email": email, "csrf_token": csrf_of(page.text)})
    assert sent.status_code == 200 and "is on its way" in sent.text


@pytest.mark.parametrize(
    "password, refusal",
    [
        ("short one", "at least 15"),
        ("passwordpassword", "most commonly used"),
        ("Password1234567!", "most commonly used"),
        ("aaaaaaaaaaaaaaaaaa", "repeated"),
        ("abcdefghijklmnopq", "sequences"),
    ],
)
async def test_the_password_policy_refuses_and_says_why(client, owner, broker, password, refusal):
    page = await client.get("/forgot-password")
    await client.post("/forgot-password", data={"email": owner["email"], "csrf_token": csrf_of(page.text)})
    link = await _emailed_link(broker, owner["email"], "/password")
    refused = await _set_password(client, link, password)
    assert refused.status_code == 422 and refusal in refused.text
    assert (await _set_password(client, link, "seven purple llamas in a row")).status_code == 303


async def test_an_invitation_arrives_and_makes_a_member_with_the_role(app, client, owner, broker, workspace):
    await sign_in(client, owner["email"], owner["password"])
    csrf = await home_csrf(client)
    token = (await client.post("/v1/token", headers={"X-CSRF-Token": csrf})).json()["token"]
    grace = f"grace-{workspace}@example.com"
    invited = await client.post(
        "/v1/invitations",
        json={"email": grace, "role": "agent"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert invited.status_code == 201, invited.text
    link = await _emailed_link(broker, grace, "/invitations")
    async with browser(app) as hers:
        page = await hers.get(link)
        assert "as agent" in page.text
        weak = await hers.post(
            link, data={"name": "Grace", "password": grace, "csrf_token": csrf_of(page.text)}
        )
        assert weak.status_code == 422
        accepted = await accept_invitation(hers, link, name="Grace Hopper", password="nanoseconds of wire")
        assert accepted.status_code == 303
        assert signed_in_as((await hers.get("/")).text) == f"{workspace}:agent"
        assert (await hers.get(link)).status_code == 410
    members = await client.get("/v1/members", headers={"Authorization": f"Bearer {token}"})
    assert {(m["email"], m["role"]) for m in members.json()} == {(owner["email"], "owner"), (grace, "agent")}


async def test_only_people_who_may_invite_can(client, owner):
    admin_key = {"Authorization": f"Bearer {owner['api_key']['secret']}"}
    refused = await client.post(
        "/v1/invitations", json={"email": "x@example.com", "role": "viewer"}, headers=admin_key
    )
    assert refused.status_code == 403 and "users:write" in refused.json()["detail"]


# --- keys --------------------------------------------------------------------------------------------


async def test_keys_are_created_listed_and_revoked_everywhere_within_seconds(
    client, owner, broker, workspace
):
    admin = {"Authorization": f"Bearer {owner['api_key']['secret']}"}
    made = await client.post("/v1/keys", json={"label": "HubSpot sync", "role": "integration"}, headers=admin)
    assert made.status_code == 201, made.text
    key = made.json()
    principal = verify_credential(SECRET_KEY, key["secret"], now=time.time())
    assert (principal.workspace_id, principal.role, principal.id) == (
        workspace,
        Role.INTEGRATION,
        key["key_id"],
    )
    listed = (await client.get("/v1/keys", headers=admin)).json()
    mine = next(k for k in listed if k["key_id"] == key["key_id"])
    assert "secret" not in mine and mine["prefix"] == f"clk_{workspace}.{key['key_id']}"
    assert (mine["label"], mine["role"], mine["last_used_at"]) == ("HubSpot sync", "integration", None)
    used = {"Authorization": f"Bearer {key['secret']}"}
    assert (await client.get("/v1/me", headers=used)).json()["role"] == "integration"
    await wait_until(
        lambda: _last_used(client, admin, key["key_id"]), timeout_s=10, message="last_used_at recorded"
    )
    async with TopicReader(broker.bootstrap_servers, WORKSPACES) as reader:
        revoked = await client.post(f"/v1/keys/{key['key_id']}/revoke", headers=admin)
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        started = time.monotonic()
        await wait_until(lambda: _refused(client, used), timeout_s=5, interval_s=0.05, message="key refused")
        assert time.monotonic() - started < 2
        (event,) = await reader.wait_for(
            lambda v: v["type"] == "closeloop.KeyRevoked.v1" and v["data"]["key_id"] == key["key_id"]
        )
    assert event["data"]["workspace_id"] == workspace
    assert all(k["key_id"] != key["key_id"] for k in (await client.get("/v1/keys", headers=admin)).json())


async def _last_used(client: httpx.AsyncClient, auth: dict[str, str], key_id: str) -> bool:
    keys = (await client.get("/v1/keys", headers=auth)).json()
    return any(k["key_id"] == key_id and k["last_used_at"] for k in keys)


async def _refused(client: httpx.AsyncClient, auth: dict[str, str]) -> bool:
    response = await client.get("/v1/me", headers=auth)
    return response.status_code == 401 and "revoked" in response.json()["detail"]


async def test_a_key_cannot_do_more_than_its_maker(client, owner):
    admin = {"Authorization": f"Bearer {owner['api_key']['secret']}"}
    viewer = (await client.post("/v1/keys", json={"label": "dash", "role": "viewer"}, headers=admin)).json()
    as_viewer = {"Authorization": f"Bearer {viewer['secret']}"}
    refused = await client.post("/v1/keys", json={"label": "more", "role": "admin"}, headers=as_viewer)
    assert refused.status_code == 403 and "keys:write" in refused.json()["detail"]
    owner_key = await client.post("/v1/keys", json={"label": "boss", "role": "owner"}, headers=admin)
    assert owner_key.status_code == 422 and owner_key.json()["errors"][0]["field"] == "role"
    past = await client.post(
        "/v1/keys",
        json={"label": "old", "role": "viewer", "expires_at": "2020-01-01T00:00:00Z"},
        headers=admin,
    )
    assert past.status_code == 422 and past.json()["errors"][0]["field"] == "expires_at"


async def test_keys_from_the_home_page(client, owner, workspace):
    await sign_in(client, owner["email"], owner["password"])
    csrf = await home_csrf(client)
    made = await client.post(
        "/keys", data={"label": "Zapier", "role": "integration", "expires_in_days": "30", "csrf_token": csrf}
    )
    assert made.status_code == 201
    secret = re.search(r'<p class="secret" id="secret">([^<]+)</p>', made.text).group(1)  # type: ignore[union-attr]
    key_id = verify_credential(SECRET_KEY, secret, now=time.time()).id
    home = await client.get("/")
    assert f"clk_{workspace}.{key_id}" in home.text and secret not in home.text
    revoked = await client.post(f"/keys/{key_id}/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 303
    assert f"clk_{workspace}.{key_id}" not in (await client.get("/")).text


async def test_an_unknown_or_foreign_key_cannot_be_revoked(client, owner):
    admin = {"Authorization": f"Bearer {owner['api_key']['secret']}"}
    assert (await client.post("/v1/keys/nosuchkey123/revoke", headers=admin)).status_code == 404


# --- user tokens and old keys --------------------------------------------------------------------------


async def test_the_signed_in_person_gets_a_user_token_that_every_service_verifies(client, owner, workspace):
    await sign_in(client, owner["email"], owner["password"])
    minted = await client.post("/v1/token", headers={"X-CSRF-Token": await home_csrf(client)})
    assert minted.status_code == 200, minted.text
    body = minted.json()
    principal = verify_credential(SECRET_KEY, body["token"], now=time.time())
    assert (principal.kind, principal.workspace_id, principal.role, principal.name) == (
        "user",
        workspace,
        Role.OWNER,
        "Ada Lovelace",
    )
    assert principal.expires_at and principal.expires_at - time.time() <= 300
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.json()["kind"] == "user" and "users:write" in me.json()["permissions"]


async def test_without_a_session_there_is_no_user_token(client):
    refused = await client.post("/v1/token", headers={"X-CSRF-Token": "x"})
    assert refused.status_code == 401


async def test_an_expired_user_token_is_refused(client, workspace):
    token = issue_user_token(
        SECRET_KEY,
        workspace_id=workspace,
        user_id="u",
        name="Ada",
        role=Role.ADMIN,
        now=time.time() - 301,
        ttl_s=300,
    )
    refused = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401 and "expired" in refused.json()["detail"]


async def test_a_key_of_the_old_format_still_works_as_admin(client, workspace):
    old = f"clk_{workspace}.oldkey123.{mac(SECRET_KEY, 'api-key', f'{workspace}.oldkey123')}"
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {old}"})
    assert me.status_code == 200 and me.json()["role"] == "admin"
    forged = old[:-3] + ("AAA" if not old.endswith("AAA") else "BBB")
    assert (await client.get("/v1/me", headers={"Authorization": f"Bearer {forged}"})).status_code == 401


async def test_operators_need_the_secret(client, workspace):
    refused = await client.post(
        "/v1/workspaces",
        json={"id": workspace, "owner_email": "a@example.com"},
        headers={"Authorization": "Bearer clo_x.y"},
    )
    assert refused.status_code == 401


async def test_creating_a_workspace_twice_gives_a_new_key_and_sign_in_link(client, owner, workspace):
    again = await create_workspace(client, workspace, owner=owner["email"], sign_in="link")
    assert again["created"] is False and again["owner_created"] is False
    assert again["sign_in_url"].startswith("http://") and again["password"] is None
    assert again["api_key"]["key_id"] != owner["api_key"]["key_id"]
    path = again["sign_in_url"].split("://", 1)[1].split("/", 1)[1]
    assert (await client.get("/" + path)).status_code == 200

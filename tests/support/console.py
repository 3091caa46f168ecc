"""Helpers for the console's tests: fast password hashing, operator calls, forms with their CSRF token."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from shared.access import issue_operator_token
from tests.conftest import SECRET_KEY

FAST_HASHING = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1}
"""argon2id parameters that take a millisecond: the tests check behaviour, not hashing cost."""
PASSWORD = "correct horse battery staple"

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """Return the CSRF token of the (first) form on a page."""
    match = _CSRF.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def operator_auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_operator_token(SECRET_KEY, now=time.time())}"}


async def create_workspace(
    client: httpx.AsyncClient,
    workspace: str,
    *,
    owner: str,
    sign_in: str = "password",
    name: str | None = None,
) -> dict[str, Any]:
    """Create ``workspace`` with ``owner`` through the operator API; return the answer."""
    response = await client.post(
        "/v1/workspaces",
        json={"id": workspace, "owner_email": owner, "owner_name": name, "owner_sign_in": sign_in},
        headers=operator_auth(),
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


async def sign_in(client: httpx.AsyncClient, email: str, password: str, **headers: str) -> httpx.Response:
    """Fill in and post the sign-in form as a browser would (the CSRF cookie and field included)."""
    page = await client.get("/sign-in")
    return await client.post(
        "/sign-in",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
        headers=headers,
    )


async def accept_invitation(
    client: httpx.AsyncClient, link: str, *, name: str, password: str
) -> httpx.Response:
    """Open the invitation ``link`` and accept it as ``name`` with ``password``, as a browser would."""
    page = await client.get(link)
    return await client.post(
        link, data={"name": name, "password": password, "csrf_token": csrf_of(page.text)}
    )


async def home_csrf(client: httpx.AsyncClient) -> str:
    """Return the session's CSRF token from the home page (signed in)."""
    page = await client.get("/")
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


async def session_token(client: httpx.AsyncClient) -> str:
    """Return a bearer token minted for the signed-in session (``POST /v1/token`` with its CSRF token)."""
    minted = await client.post("/v1/token", headers={"X-CSRF-Token": await home_csrf(client)})
    return str(minted.json()["token"])


def emailed_link(value: Any, to: str, path: str) -> str | None:
    """The link to ``path`` in a ``NotificationRequested`` email to ``to`` (None for any other record)."""
    data = value.get("data", {}) if isinstance(value, dict) else {}
    if value.get("type") != "closeloop.NotificationRequested.v1" or data.get("to") != to:
        return None
    match = re.search(rf"http://\S+({path}/[A-Za-z0-9_-]+)", data["body"])
    return match.group(1) if match else None


async def invite_member(
    base_url: str, bootstrap_servers: str, owner: dict[str, Any], *, email: str, role: str, name: str
) -> str:
    """Invite ``email`` with ``role`` as the owner, accept the emailed link (from the notifications
    topic, where dispatch would pick it up) with ``PASSWORD``; return the new member's user id."""
    from shared.events import NOTIFICATIONS
    from tests.support.stack import TopicReader

    async with httpx.AsyncClient(base_url=base_url, timeout=20) as owner_browser:
        await sign_in(owner_browser, owner["owner_email"], owner["password"])
        token = await session_token(owner_browser)
        invited = await owner_browser.post(
            "/v1/invitations",
            json={"email": email, "role": role},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert invited.status_code == 201, invited.text
    async with TopicReader(bootstrap_servers, NOTIFICATIONS) as reader:
        (found,) = await reader.wait_for(
            lambda v: emailed_link(v, email, "/invitations") is not None, timeout_s=20
        )
    link = emailed_link(found, email, "/invitations")
    assert link
    async with httpx.AsyncClient(base_url=base_url, timeout=20) as hers:
        accepted = await accept_invitation(hers, link, name=name, password=PASSWORD)
        assert accepted.status_code == 303, accepted.text
        token = await session_token(hers)
        me = (await hers.get("/v1/me", headers={"Authorization": f"Bearer {token}"})).json()
    return str(me["id"])

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


async def home_csrf(client: httpx.AsyncClient) -> str:
    """Return the session's CSRF token from the home page (signed in)."""
    page = await client.get("/")
    assert page.status_code == 200, page.text
    return csrf_of(page.text)

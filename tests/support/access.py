"""Credentials for tests: API keys of any role and console user tokens, signed with the tests' secret."""

from __future__ import annotations

import time

from shared.access import Role, issue_api_key, issue_user_token
from tests.conftest import SECRET_KEY


def key_auth(workspace: str, role: Role | str = Role.ADMIN, *, key_id: str | None = None) -> dict[str, str]:
    """Return the ``Authorization`` header of a new API key of ``workspace`` with ``role``."""
    return {"Authorization": f"Bearer {issue_api_key(SECRET_KEY, workspace, role=Role(role), key_id=key_id)}"}


def person_auth(
    workspace: str,
    role: Role | str,
    *,
    user_id: str = "u-grace",
    name: str = "Grace Hopper",
    ttl_s: int = 300,
    now: float | None = None,
) -> dict[str, str]:
    """Return the ``Authorization`` header of a user token the console would send for this person."""
    token = issue_user_token(
        SECRET_KEY,
        workspace_id=workspace,
        user_id=user_id,
        name=name,
        role=Role(role),
        now=time.time() if now is None else now,
        ttl_s=ttl_s,
    )
    return {"Authorization": f"Bearer {token}"}


def key_id_of(auth: dict[str, str]) -> str:
    """Return the key id of the API key in an ``Authorization`` header."""
    return auth["Authorization"].split(".")[1]

"""Creating a workspace in the console, as an operator: whoever holds ``CLOSELOOP_SECRET_KEY`` signs a
short-lived operator token and asks the console (``POST /v1/workspaces``) for the workspace, its owner
and an admin API key. Used by ``closeloop workspace create`` and by ``make run``'s demo."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from shared.access import issue_operator_token
from shared.settings import DEV_SECRET_KEY


class WorkspaceError(Exception):
    """The console could not create the workspace; the message says why and what to do."""


def operator_secret(data_dir: Path = Path(".data")) -> str:
    """Return the secret the running stack signs with: ``CLOSELOOP_SECRET_KEY``, else the one ``make run``
    keeps in ``<data_dir>/secret_key``, else the development key (with a warning)."""
    if os.environ.get("CLOSELOOP_SECRET_KEY"):
        return os.environ["CLOSELOOP_SECRET_KEY"]
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    print(
        f"warning: neither CLOSELOOP_SECRET_KEY nor {path} is there; using the development key, which only "
        "a stack started with CLOSELOOP_ENV=development and no secret accepts",
        file=sys.stderr,
    )
    return DEV_SECRET_KEY


def create_workspace(
    console_url: str,
    secret: str,
    *,
    workspace_id: str,
    owner_email: str,
    owner_name: str | None = None,
    name: str | None = None,
    sign_in: str = "link",
    timeout_s: float = 30,
) -> dict[str, Any]:
    """Return the console's answer: the workspace, the owner's sign-in (link or password) and the key."""
    token = issue_operator_token(secret, now=time.time())
    body = {
        "id": workspace_id,
        "name": name,
        "owner_email": owner_email,
        "owner_name": owner_name,
        "owner_sign_in": sign_in,
    }
    try:
        response = httpx.post(
            f"{console_url.rstrip('/')}/v1/workspaces",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
        )
    except httpx.HTTPError as exc:
        raise WorkspaceError(
            f"cannot reach the console at {console_url} ({exc}). Is the stack running (make run)? "
            "Otherwise pass --console-url or set CLOSELOOP_CONSOLE_URL."
        ) from exc
    if response.status_code == 401:
        raise WorkspaceError(
            "the console refused the operator token: this CLOSELOOP_SECRET_KEY is not the one the stack "
            "uses (make run keeps its secret in .data/secret_key; in Kubernetes run the command in a pod)."
        )
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise WorkspaceError(f"the console answered {response.status_code}: {detail}")
    result: dict[str, Any] = response.json()
    return result

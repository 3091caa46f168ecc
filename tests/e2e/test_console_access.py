"""The console among the six processes: ``closeloop workspace create`` against the running stack gives a
key every service accepts and an owner who can sign in; an invitation email arrives through dispatch
(real SMTP) and its link makes a member; a revoked key is refused by every service within two seconds."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time

import httpx
import pytest

from closeloop.infra import free_port
from closeloop.mailcatcher import body_of, recipient
from closeloop.stack import ServiceStack
from tests.conftest import SECRET_KEY
from tests.support.console import accept_invitation, csrf_of
from tests.support.stack import wait_until

pytestmark = pytest.mark.e2e


def workspace_create(console: str, workspace: str, owner: str, *extra: str) -> list[str]:
    """Run the CLI as a person would (the stack's secret in the environment); return its output lines."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "closeloop.cli",
            "workspace",
            "create",
            workspace,
            "--owner",
            owner,
            "--console-url",
            console,
            *extra,
        ],
        env={"PATH": "/usr/bin:/bin", "CLOSELOOP_SECRET_KEY": SECRET_KEY},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


async def test_the_cli_makes_a_workspace_whose_key_every_service_accepts(
    stack: ServiceStack, urls, workspace
):
    lines = workspace_create(urls["console"], workspace, f"ada@{workspace}.example")
    key = lines[-1]
    assert key.startswith(f"clk_{workspace}.") and ".admin.0." in key
    link = next(line.split()[2] for line in lines if line.startswith("sign in"))
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=10, headers=auth) as http:
        for service, path in [
            ("trigger", "/v1/rules"),
            ("dispatch", "/v1/invitations?limit=1"),
            ("responses", "/v1/surveys"),
            ("scoring", "/v1/metrics"),
            ("followup", "/v1/cases?limit=1"),
            ("console", "/v1/keys"),
        ]:
            response = await http.get(urls[service] + path)
            assert response.status_code == 200, f"{service}: {response.status_code} {response.text}"
        refused = await http.get(
            urls["trigger"] + "/v1/rules", headers={"Authorization": f"Bearer {key[:-2]}xx"}
        )
        assert refused.status_code == 401
    async with httpx.AsyncClient(timeout=10) as browser:
        page = await browser.get(link)
        assert page.status_code == 200 and "Choose your password" in page.text
        done = await browser.post(
            link, data={"password": "a long and unusual phrase", "csrf_token": csrf_of(page.text)}
        )
        assert done.status_code == 303
        home = await browser.get(urls["console"] + "/")
        assert f"You are signed in to <strong>{workspace}</strong> as <strong>owner</strong>" in home.text


async def test_an_invitation_arrives_through_dispatch_and_its_link_makes_a_member(
    stack, urls, workspace, smtp
):
    owner = f"owner@{workspace}.example"
    lines = workspace_create(urls["console"], workspace, owner, "--password")
    password = next(line.split()[1] for line in lines if line.startswith("password"))
    grace = f"grace@{workspace}.example"
    async with httpx.AsyncClient(timeout=10, base_url=urls["console"]) as browser:
        page = await browser.get("/sign-in")
        signed = await browser.post(
            "/sign-in", data={"email": owner, "password": password, "csrf_token": csrf_of(page.text)}
        )
        assert signed.status_code == 303
        csrf = csrf_of((await browser.get("/")).text)
        token = (await browser.post("/v1/token", headers={"X-CSRF-Token": csrf})).json()["token"]
        invited = await browser.post(
            "/v1/invitations",
            json={"email": grace, "role": "agent"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert invited.status_code == 201, invited.text
    email = await smtp.wait_for(lambda m: recipient(m) == grace)
    assert "invites you to" in email["Subject"]
    link = re.search(r"(http://\S+/invitations/[A-Za-z0-9_-]+)", body_of(email, "plain")).group(1)  # type: ignore[union-attr]
    async with httpx.AsyncClient(timeout=10) as hers:
        accepted = await accept_invitation(hers, link, name="Grace Hopper", password="nanoseconds of wire")
        assert accepted.status_code == 303
        home = await hers.get(urls["console"] + "/")
        assert "as <strong>agent</strong>" in home.text


# A route each service lets a viewer use.
VIEWER_ROUTES = {
    "trigger": "/v1/surveys",
    "dispatch": "/v1/funnel",
    "responses": "/v1/surveys",
    "scoring": "/v1/metrics",
    "followup": "/v1/cases?limit=1",
    "console": "/v1/me",
}


async def test_a_key_the_console_revokes_is_refused_by_every_service_within_two_seconds(
    stack, urls, workspace
):
    admin = workspace_create(urls["console"], workspace, f"o@{workspace}.example")[-1]
    # A second followup process serving only the API (no consumer): it learns of revocations from its
    # service's table, which it reads every second, as every replica does.
    stack.ports["followup-api"] = free_port()
    stack.start("followup", role="api")
    await asyncio.to_thread(stack.wait_ready, ["followup-api"])
    urls = {**urls, "followup-api": stack.url("followup-api")}
    routes = {**VIEWER_ROUTES, "followup-api": VIEWER_ROUTES["followup"]}
    try:
        await _revoke_and_measure(urls, routes, admin)
    finally:
        stack.stop("followup-api")
        del stack.ports["followup-api"]


async def _revoke_and_measure(urls: dict[str, str], routes: dict[str, str], admin: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        made = await http.post(
            urls["console"] + "/v1/keys",
            json={"label": "to revoke", "role": "viewer"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        key = made.json()
        used = {"Authorization": f"Bearer {key['secret']}"}
        for service, path in routes.items():
            answer = await http.get(urls[service] + path, headers=used)
            assert answer.status_code == 200, f"{service}: {answer.status_code} {answer.text}"
        # Every service checks the role: a viewer may not read trigger's rules.
        narrow = await http.get(urls["trigger"] + "/v1/rules", headers=used)
        assert narrow.status_code == 403 and "'rules:read'" in narrow.json()["detail"]

        # The services tell the console when the key was last used (KeyUsed); its list shows it.
        async def last_used() -> bool:
            listed = await http.get(
                urls["console"] + "/v1/keys", headers={"Authorization": f"Bearer {admin}"}
            )
            return any(k["key_id"] == key["key_id"] and k["last_used_at"] for k in listed.json())

        await wait_until(last_used, timeout_s=15, message="the console shows when the key was last used")

        revoked = await http.post(
            urls["console"] + f"/v1/keys/{key['key_id']}/revoke", headers={"Authorization": f"Bearer {admin}"}
        )
        assert revoked.status_code == 200, revoked.text
        started = time.monotonic()

        async def refused_by(service: str) -> float:
            async def refused() -> bool:
                answer = await http.get(urls[service] + routes[service], headers=used)
                return answer.status_code == 401 and "revoked" in answer.json()["detail"]

            await wait_until(
                refused, timeout_s=10, interval_s=0.02, message=f"{service} refuses the revoked key"
            )
            return time.monotonic() - started

        latencies = dict(zip(routes, await asyncio.gather(*map(refused_by, routes)), strict=True))
    print("revoked key refused after (s):", {s: round(t, 2) for s, t in latencies.items()})
    assert max(latencies.values()) < 2, latencies

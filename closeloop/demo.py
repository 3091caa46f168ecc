"""The demo workspace: created through the public REST APIs, as an integrator would."""

from __future__ import annotations

import json
import shlex
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from closeloop.workspaces import create_workspace
from shared import standard_webhooks
from shared.access import issue_api_key

NPS_SURVEY = {
    "name": "Support NPS",
    "questions": [
        {
            "id": "nps",
            "type": "nps",
            "required": True,
            "text": "How likely are you to recommend Acme to a friend or colleague?",
        },
        {"id": "why", "type": "open", "required": False, "text": "What is the main reason for your score?"},
        {
            "id": "consent",
            "type": "consent",
            "required": False,
            "text": "May we contact you about your answer?",
        },
    ],
    "thank_you_text": "Thank you! Your answer goes straight to our support team.",
}

RETENTION_SURVEY = {
    "name": "Retention check",
    "questions": [
        {
            "id": "solved",
            "type": "csat",
            "required": True,
            "text": "How satisfied are you with how we followed up on your feedback?",
        },
        {"id": "why", "type": "open", "required": False, "text": "Anything else we should know?"},
    ],
    "thank_you_text": "Thank you for giving us a second chance.",
}


OWNER_EMAIL = "owner@acme.example"
"""Who signs in to the demo workspace's console (its password is generated and printed)."""
STAFF_EMAIL = "cx-team@acme.example"
"""Told about every new follow-up case (the mail lands in the catcher with everything else)."""
AGENT = {"id": "grace", "name": "Grace Hopper", "email": "grace@acme.example"}
"""The demo's one agent: every case goes to her team, and so to her."""


@dataclass
class DemoWorkspace:
    workspace_id: str
    api_key: str
    survey_id: str
    retention_survey_id: str
    integration_id: str
    webhook_secret: str
    webhook_url: str
    rule_id: str
    team_id: str | None = None
    owner_email: str | None = None
    owner_password: str | None = None
    """The demo owner's sign-in to the console (generated; it changes nothing if they change it)."""
    integration_key: str | None = None
    """A key of role integration, as a CRM holds one: it posts events and keeps contacts, nothing else."""

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def _ok(response: httpx.Response) -> dict:
    if response.status_code >= 400:
        raise RuntimeError(
            f"{response.request.method} {response.request.url} → {response.status_code}: {response.text}"
        )
    return response.json()


def _once_known(
    send: Callable[[], httpx.Response], *, field: str, timeout_s: float = 30, interval_s: float = 0.2
) -> httpx.Response:
    """Return ``send()``'s answer, sent again while it is a 422 naming ``field``: a survey created in
    responses reaches the other services as an event, a moment later, and until then they refuse it."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = send()
        errors = response.json().get("errors", []) if response.status_code == 422 else []
        if not any(e.get("field") == field for e in errors) or time.monotonic() > deadline:
            return response
        time.sleep(interval_s)


def wait_until_trigger_knows(
    http: httpx.Client, trigger_url: str, survey_id: str, *, timeout_s: float = 30
) -> None:
    """Return once trigger knows the survey (from responses' ``SurveyPublished``): rules may name it."""
    deadline = time.monotonic() + timeout_s
    while http.get(f"{trigger_url}/v1/surveys/{survey_id}").status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"trigger does not know survey {survey_id} {timeout_s:g}s after responses created it: "
                "responses publishes SurveyPublished (topic surveys) and trigger's consumer reads it"
            )
        time.sleep(0.2)


def seed_workspace(
    urls: dict[str, str],
    *,
    secret_key: str,
    workspace_id: str = "demo",
    event_type: str = "ticket.solved",
    api_key: str | None = None,
) -> DemoWorkspace:
    """Create surveys, the retention setting, a webhook integration and a rule with ``api_key`` (default:
    an admin key signed with ``secret_key``); return what was made."""
    api_key = api_key or issue_api_key(secret_key, workspace_id)
    auth = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(timeout=10, headers=auth) as http:
        survey = _ok(http.post(f"{urls['responses']}/v1/surveys", json=NPS_SURVEY))
        retention = _ok(http.post(f"{urls['responses']}/v1/surveys", json=RETENTION_SURVEY))
        retention_setting = {"retention_survey_id": retention["id"], "notify_email": STAFF_EMAIL}
        _ok(
            _once_known(
                lambda: http.put(f"{urls['followup']}/v1/settings", json=retention_setting),
                field="retention_survey_id",
            )
        )
        _ok(
            http.put(
                f"{urls['followup']}/v1/agents/{AGENT['id']}",
                json={"name": AGENT["name"], "email": AGENT["email"]},
            )
        )
        team = _ok(
            http.post(
                f"{urls['followup']}/v1/teams",
                json={
                    "name": "Customer care",
                    "timezone": "Europe/Amsterdam",
                    "members": [AGENT["id"]],
                    "lead_agent_id": AGENT["id"],
                    "holiday_country": "NL",
                },
            )
        )
        _ok(
            http.put(
                f"{urls['followup']}/v1/routing-rules", json={"rules": [], "default_team_id": team["id"]}
            )
        )
        integration = _ok(http.post(f"{urls['trigger']}/v1/integrations", json={"name": "Demo helpdesk"}))
        # Rules may only name a survey trigger knows; it learns of a new one a moment after responses.
        wait_until_trigger_knows(http, urls["trigger"], survey["id"])
        rule_body = {
            "name": "NPS after a solved ticket",
            "event_type": event_type,
            "survey_id": survey["id"],
            "channel": "email",
            "delay_seconds": 0,
        }
        rule = _ok(http.post(f"{urls['trigger']}/v1/rules", json=rule_body))
    return DemoWorkspace(
        workspace_id,
        api_key,
        survey["id"],
        retention["id"],
        integration["id"],
        integration["secret"],
        integration["webhook_url"],
        rule["id"],
        team["id"],
    )


def load_or_seed(path: Path, urls: dict[str, str], *, secret_key: str) -> tuple[DemoWorkspace, bool]:
    """Return the demo workspace saved at ``path`` if it still exists, else a new one; and whether it is new.

    The workspace, its owner (with a generated password) and its admin key are made in the console,
    as ``closeloop workspace create`` makes them; the rest through the services' APIs with that key.
    """
    demo = None
    if path.exists():
        demo = DemoWorkspace(**json.loads(path.read_text()))
        with httpx.Client(timeout=5, headers=demo.auth) as http:
            if http.get(f"{urls['responses']}/v1/surveys/{demo.survey_id}").status_code != 200:
                demo = None
    if demo is not None and demo.owner_password is not None:
        return demo, False
    made = create_workspace(
        urls["console"],
        secret_key,
        workspace_id="demo",
        name="Acme (demo)",
        owner_email=OWNER_EMAIL,
        owner_name="Ada Owner",
        sign_in="password",
    )
    new = demo is None
    if demo is None:
        demo = seed_workspace(urls, secret_key=secret_key, api_key=made["api_key"]["secret"])
    demo.api_key = made["api_key"]["secret"]
    demo.owner_email, demo.owner_password = made["owner_email"], made["password"]
    if demo.integration_key is None:
        demo.integration_key = make_key(urls["console"], demo.api_key, label="Demo CRM", role="integration")
    path.write_text(json.dumps(asdict(demo), indent=2))
    path.chmod(0o600)
    return demo, new


def make_key(console_url: str, admin_key: str, *, label: str, role: str) -> str:
    """Return the secret of a new API key with ``role``, made in the console with ``admin_key``."""
    made = httpx.post(
        f"{console_url}/v1/keys",
        json={"label": label, "role": role},
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=10,
    )
    return str(_ok(made)["secret"])


def demo_event(
    external_id: str = "cus_ada", email: str = "ada@example.com", name: str = "Ada Lovelace"
) -> dict:
    return {
        "type": "ticket.solved",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "data": {
            "contact": {"external_id": external_id, "email": email, "name": name},
            "ticket_id": "T-1001",
            "agent": "Grace",
        },
    }


def send_signed(
    http: httpx.Client, demo: DemoWorkspace, event: dict, *, msg_id: str | None = None
) -> httpx.Response:
    """POST ``event`` to the demo integration, signed the Standard Webhooks way."""
    body = json.dumps(event).encode()
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    ts = int(time.time())
    return http.post(
        demo.webhook_url,
        content=body,
        headers={
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": standard_webhooks.sign(demo.webhook_secret, msg_id, ts, body),
        },
    )


def curl_command(demo: DemoWorkspace) -> str:
    """A shell snippet that signs and sends a fresh demo event (openssl computes the signature)."""
    key_hex = standard_webhooks._key(demo.webhook_secret).hex()
    body = json.dumps(
        {
            "type": "ticket.solved",
            "data": {
                "contact": {"external_id": "cus_ada", "email": "ada@example.com", "name": "Ada Lovelace"},
                "ticket_id": "T-1001",
            },
        },
        separators=(",", ":"),
    )
    return (
        f"body={shlex.quote(body)}; id=msg_$(date +%s%N); ts=$(date +%s); "
        f"sig=$(printf '%s' \"$id.$ts.$body\" | openssl dgst -sha256 -mac HMAC -macopt hexkey:{key_hex} -binary | base64); "
        f"curl -sS -X POST {demo.webhook_url} -H 'content-type: application/json' "
        f'-H "webhook-id: $id" -H "webhook-timestamp: $ts" -H "webhook-signature: v1,$sig" -d "$body"'
    )

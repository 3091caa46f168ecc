"""Channel settings made in the page: the email sender, and the SMS and WhatsApp provider (a
Twilio-compatible API: base URL, account SID, auth token, sender) and the chat webhook. Secrets (the auth
token, the chat's webhook URL) are write-only: the page says "set" and never shows them, and since
dispatch replaces a channel's settings as a whole and never gives a secret back, changing a channel that
has one asks for it again. A refusal names the field beside it; nothing is changed then."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Form, Path
from fastapi.responses import Response

from services.console.api.forms import Csrf, acting, form_router
from services.console.apis import Caller, ServiceError
from services.console.deps import RuntimeDep, SignedInDep
from services.console.views import flash, query
from services.console.web import redirect
from shared.access import Permission

router = form_router("dispatch")
Typed = Annotated[str, Form(max_length=2000)]
Channel = Annotated[str, Path(pattern=r"^(email|sms|whatsapp|chat)$")]
PROVIDER = ("base_url", "account_sid", "auth_token", "from", "rate_per_minute")
FIELDS: dict[str, tuple[str, ...]] = {
    "email": ("mail_from", "reply_to", "rate_per_minute"),
    "sms": PROVIDER,
    "whatsapp": PROVIDER,
    "chat": ("webhook_url", "rate_per_minute"),
}
"""The fields of each channel's form, as dispatch names them (``PUT /v1/channels/{channel}``)."""
SECRETS = ("auth_token", "webhook_url")
NAMES = {"email": "Email sender", "sms": "SMS", "whatsapp": "WhatsApp", "chat": "Chat"}


@dataclass(frozen=True)
class Outcome:
    """What saving a channel's form came to: what to say, and after a refusal the field at fault and
    why (``field`` None: the refusal is about no field of the form)."""

    said: str
    saved: bool = True
    field: str | None = None
    why: str | None = None


def back(runtime: RuntimeDep, channel: str, outcome: Outcome, typed: dict[str, Any]) -> Response:
    """Back to the channel's form with what happened said; after a refusal the field at fault is marked
    with why, and the form shows what was typed (signed like the message, so no link can fill the form
    in; secrets never travel back)."""
    extra: dict[str, str] = {}
    if not outcome.saved:
        extra["typed"] = json.dumps({k: v for k, v in typed.items() if k not in SECRETS})
    if outcome.field:
        extra |= {"field": f"{channel}-{outcome.field}", "why": outcome.why or outcome.said}
    said = flash(runtime.settings, done=outcome.said, **extra)
    return redirect("/settings" + query(**said) + f"#{channel}-channel")


def typed_back(raw: str | None) -> dict[str, Any]:
    """What ``back`` carried of a refused form (``channel`` and its fields), or {}."""
    try:
        found = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def why(error: dict[str, Any]) -> str:
    """A field error's message as a sentence beside the field (without pydantic's "Value error, ")."""
    return str(error.get("message") or "not valid").removeprefix("Value error, ")


async def secrets_set(caller: Caller, channel: str) -> set[str]:
    """The secrets the workspace has set for ``channel`` (dispatch answers them masked)."""
    found = await caller.get("dispatch", "/v1/channels")
    config = next((c.get("config") or {} for c in found if c.get("channel") == channel), {})
    return {k for k in SECRETS if config.get(k)}


async def save(caller: Caller, channel: str, body: dict[str, Any]) -> Outcome:
    """Put the channel's settings (none typed: forget them)."""
    name = NAMES[channel]
    try:
        if not body:
            await caller.delete("dispatch", f"/v1/channels/{channel}")
            return Outcome(f"{name} uses the deployment's settings again.")
        if missing := sorted((await secrets_set(caller, channel)) - set(body)):
            secret = missing[0].replace("_", " ")
            return Outcome(
                f"{name} settings not saved: dispatch keeps the {secret} but never shows it, and replaces "
                "a channel's settings as a whole.",
                saved=False,
                field=missing[0],
                why=f"Type the {secret} again to change this channel.",
            )
        await caller.put("dispatch", f"/v1/channels/{channel}", body)
    except ServiceError as exc:
        named = {str(e["field"]): why(e) for e in exc.errors if e.get("field") in FIELDS[channel]}
        said = "; ".join(f"{k}: {v}" for k, v in named.items()) or exc.detail
        field = next(iter(named), None)
        return Outcome(
            f"dispatch refused the {name} settings: {said}. Nothing was changed.",
            saved=False,
            field=field,
            why=named.get(field or ""),
        )
    return Outcome(f"{name} saved." if channel == "email" else f"{name} settings saved.")


@router.post("/settings/channels/{channel}", summary="Set a channel's sender or provider")
async def set_channel(
    channel: Channel,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    csrf_token: Csrf = "",
    base_url: Typed = "",
    account_sid: Annotated[str, Form(max_length=64)] = "",
    auth_token: Annotated[str, Form(max_length=200)] = "",
    sender: Annotated[str, Form(alias="from", max_length=64)] = "",
    webhook_url: Typed = "",
    mail_from: Annotated[str, Form(max_length=300)] = "",
    reply_to: Annotated[str, Form(max_length=300)] = "",
    rate_per_minute: Annotated[int | None, Form(ge=1, le=100_000)] = None,
) -> Response:
    _, caller = acting(runtime, signed_in, csrf_token, Permission.CHANNELS_WRITE)
    typed: dict[str, Any] = {
        "base_url": base_url,
        "account_sid": account_sid,
        "auth_token": auth_token,
        "from": sender,
        "webhook_url": webhook_url,
        "mail_from": mail_from,
        "reply_to": reply_to,
    }
    body = {k: v.strip() for k, v in typed.items() if k in FIELDS[channel] and v.strip()}
    body |= {"rate_per_minute": rate_per_minute} if rate_per_minute else {}
    return back(runtime, channel, await save(caller, channel, body), body | {"channel": channel})


@router.post("/settings/channels/{channel}/remove", summary="Forget a channel's settings")
async def remove_channel(
    channel: Channel, runtime: RuntimeDep, signed_in: SignedInDep, csrf_token: Csrf = ""
) -> Response:
    _, caller = acting(runtime, signed_in, csrf_token, Permission.CHANNELS_WRITE)
    return back(runtime, channel, await save(caller, channel, {}), {"channel": channel})

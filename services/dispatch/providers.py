"""Provider formats: the Twilio Messages API request, and each provider's delivery callbacks.

Everything here is pure: signature checks over bytes the route hands in, and the mapping of
each provider's event vocabulary onto the funnel's (delivered, opened, clicked, bounced,
failed, complained, unsubscribed). No I/O, so the signature vectors are unit-tested.

- SendGrid Event Webhook: ECDSA P-256 / SHA-256 over ``timestamp + payload``; headers
  ``X-Twilio-Email-Event-Webhook-Signature`` (base64 DER) and ``…-Timestamp``.
- Twilio status callbacks: ``X-Twilio-Signature`` = base64 HMAC-SHA1, keyed with the auth
  token, over the full callback URL followed by every POST parameter name and value sorted by name.
- Mailgun webhooks: ``signature`` = hex HMAC-SHA256, keyed with the signing key, over
  ``timestamp + token``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

State = Literal["delivered", "opened", "clicked", "bounced", "failed", "complained", "unsubscribed"]

SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
TWILIO_SIGNATURE = "X-Twilio-Signature"
# Twilio error codes that say the number itself can never receive the message.
TWILIO_HARD_ERRORS = frozenset({"21211", "21614", "30005", "30006", "63003"})


class InvalidSignature(ValueError):
    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class DeliveryEvent:
    """One provider report about one message, in the funnel's words."""

    provider: str
    event_id: str
    """The provider's id of this report, for replay protection."""
    state: State
    message_id: str | None = None
    """Our RFC 5322 Message-ID without brackets (email) …"""
    provider_message_id: str | None = None
    """… or the provider's message id (Twilio ``MessageSid``)."""
    hard: bool = True
    detail: str | None = None
    at: datetime | None = None


# --- the Twilio Messages API --------------------------------------------------------------


def twilio_messages_url(base_url: str, account_sid: str) -> str:
    return f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"


def twilio_address(channel: str, number: str) -> str:
    """Return the ``To``/``From`` value: the E.164 number, prefixed ``whatsapp:`` for WhatsApp."""
    if channel == "whatsapp" and not number.startswith("whatsapp:"):
        return f"whatsapp:{number}"
    return number


def twilio_message_form(
    *, channel: str, to: str, sender: str, body: str, status_callback: str | None
) -> dict[str, str]:
    """Return the form fields of a Create Message request.

    A sender starting with ``MG`` is a Messaging Service SID (``MessagingServiceSid``); any
    other is a number (``From``).
    """
    form = {"To": twilio_address(channel, to), "Body": body}
    if sender.startswith("MG"):
        form["MessagingServiceSid"] = sender
    else:
        form["From"] = twilio_address(channel, sender)
    if status_callback:
        form["StatusCallback"] = status_callback
    return form


TWILIO_REASONS = {
    "20003": "authentication failed: check the account SID and auth token",
    "20404": "the account or resource was not found",
    "21211": "the 'To' number is not a valid phone number",
    "21408": "sending to this region is not enabled on the account",
    "21610": "the recipient replied STOP and cannot be messaged",
    "21614": "the 'To' number is not a mobile number",
    "30005": "unknown destination handset",
    "30006": "landline or unreachable carrier",
    "63003": "the number is not a valid WhatsApp number",
}
"""Twilio error codes and what they mean, in our words: an error records these, never the reply's text."""


def twilio_error_code(body: bytes) -> str | None:
    """Return the provider's error code from its reply (digits only), or None."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    code = str(data.get("code", "")) if isinstance(data, dict) else ""
    return code if code.isdigit() and len(code) <= 6 else None


def twilio_error(status: int, code: str | None) -> tuple[str, bool]:
    """Return (message, permanent) for an error reply of the Messages API: the status, its standard
    reason and the provider's error code with our reading of it — nothing the provider's text said."""
    try:
        phrase = f" {HTTPStatus(status).phrase}"
    except ValueError:
        phrase = ""
    text = f"provider replied {status}{phrase}"
    if code:
        reason = TWILIO_REASONS.get(code)
        text += f" (code {code}{': ' + reason if reason else ''})"
    permanent = 400 <= status < 500 and status not in (408, 429)
    return text, permanent


def is_hard_phone_error(code: str | None) -> bool:
    return (code or "") in TWILIO_HARD_ERRORS


# --- signatures --------------------------------------------------------------------------


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Return the ``X-Twilio-Signature`` Twilio computes for a POST to ``url`` with ``params``."""
    data = url + "".join(k + v for k, v in sorted(params, key=lambda kv: (kv[0], kv[1])))
    mac = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


DEFAULT_PORTS = {"https": 443, "http": 80}


def twilio_url_variants(url: str) -> list[str]:
    """Return ``url`` as Twilio may have signed it: as given, and with the scheme's default port written
    out or left out (``https://go.example/x`` and ``https://go.example:443/x``), as Twilio's own
    libraries accept both. Another port is part of the URL and stays."""
    parts = urlsplit(url)
    default = DEFAULT_PORTS.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        return [url]
    if default is None or parts.hostname is None:
        return [url]
    host = parts.netloc.rpartition("@")[2]
    userinfo = parts.netloc[: len(parts.netloc) - len(host)]
    bare = host.rsplit(":", 1)[0] if port is not None else host
    if port is None:
        other = urlunsplit(parts._replace(netloc=f"{userinfo}{bare}:{default}"))
    elif port == default:
        other = urlunsplit(parts._replace(netloc=f"{userinfo}{bare}"))
    else:
        return [url]
    return [url, other]


def verify_twilio(
    auth_token: str, url: str, params: Iterable[tuple[str, str]], signature: str | None
) -> None:
    """Raise ``InvalidSignature`` unless ``signature`` is Twilio's for this request (its URL with or
    without the default port)."""
    if not signature:
        raise InvalidSignature(f"the {TWILIO_SIGNATURE} header is missing", field=TWILIO_SIGNATURE)
    pairs = list(params)
    given = signature.encode()
    if not any(
        hmac.compare_digest(twilio_signature(auth_token, variant, pairs).encode(), given)
        for variant in twilio_url_variants(url)
    ):
        raise InvalidSignature(
            f"{TWILIO_SIGNATURE} does not match: check the auth token and that the public URL is "
            "exactly the one Twilio calls",
            field=TWILIO_SIGNATURE,
        )


def load_sendgrid_key(public_key: str) -> ec.EllipticCurvePublicKey:
    """Return the verification key from its PEM or bare base64 DER form; raise ValueError."""
    text = public_key.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(text))
    except (ValueError, binascii.Error, TypeError) as exc:
        raise ValueError(f"not an ECDSA public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an ECDSA public key")
    return key


def verify_sendgrid(
    public_key: str,
    payload: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    now: float,
    tolerance_s: int,
) -> None:
    """Raise ``InvalidSignature`` unless SendGrid signed ``timestamp + payload`` with the key's private half."""
    if not signature:
        raise InvalidSignature(f"the {SENDGRID_SIGNATURE} header is missing", field=SENDGRID_SIGNATURE)
    if not timestamp or not timestamp.isdigit():
        raise InvalidSignature(f"{SENDGRID_TIMESTAMP} must be Unix seconds", field=SENDGRID_TIMESTAMP)
    if abs(now - int(timestamp)) > tolerance_s:
        raise InvalidSignature(
            f"{SENDGRID_TIMESTAMP} is more than {tolerance_s}s away from now", field=SENDGRID_TIMESTAMP
        )
    try:
        raw = base64.b64decode(signature, validate=True)
        load_sendgrid_key(public_key).verify(raw, timestamp.encode() + payload, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, _CryptoInvalidSignature, ValueError) as exc:
        raise InvalidSignature(
            f"{SENDGRID_SIGNATURE} does not verify with the configured public key", field=SENDGRID_SIGNATURE
        ) from exc


def mailgun_signature(signing_key: str, timestamp: str, token: str) -> str:
    return hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def verify_mailgun(signing_key: str, signature: Mapping[str, Any], *, now: float, tolerance_s: int) -> str:
    """Return the token of a correctly signed, fresh Mailgun webhook; raise ``InvalidSignature``."""
    timestamp, token, given = (str(signature.get(k) or "") for k in ("timestamp", "token", "signature"))
    if not (timestamp and token and given):
        raise InvalidSignature(
            "signature.timestamp, signature.token and signature.signature are required", field="signature"
        )
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance_s:
        raise InvalidSignature(
            f"signature.timestamp is more than {tolerance_s}s away from now", field="signature"
        )
    if not hmac.compare_digest(mailgun_signature(signing_key, timestamp, token).encode(), given.encode()):
        raise InvalidSignature("signature.signature does not match the signing key", field="signature")
    return token


# --- event vocabularies --------------------------------------------------------------------


def _at(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (TypeError, ValueError, OverflowError):
        return None


_SENDGRID_STATES: dict[str, State] = {
    "delivered": "delivered",
    "open": "opened",
    "click": "clicked",
    "bounce": "bounced",
    "dropped": "failed",
    "spamreport": "complained",
    "unsubscribe": "unsubscribed",
    "group_unsubscribe": "unsubscribed",
}
"""The SendGrid events that matter to the funnel (not processed, deferred, group_resubscribe …)."""


def sendgrid_events(items: list[Any]) -> list[DeliveryEvent]:
    """Return the reports in a SendGrid Event Webhook batch that matter to the funnel."""
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        state = _SENDGRID_STATES.get(str(item.get("event")))
        event_id = str(item.get("sg_event_id") or "")
        if state is None or not event_id:
            continue
        message_id = item.get("smtp-id") or item.get("invitation_message_id")
        out.append(
            DeliveryEvent(
                provider="sendgrid",
                event_id=event_id,
                state=state,
                message_id=_bare(message_id),
                provider_message_id=str(item.get("sg_message_id") or "") or None,
                hard=state != "bounced" or item.get("type", "bounce") != "blocked",
                detail=item.get("reason") or item.get("response") or None,
                at=_at(item.get("timestamp")),
            )
        )
    return out


_MAILGUN_STATES: dict[str, State] = {
    "delivered": "delivered",
    "opened": "opened",
    "clicked": "clicked",
    "failed": "bounced",
    "rejected": "failed",
    "complained": "complained",
    "unsubscribed": "unsubscribed",
}
"""The Mailgun events that matter to the funnel (not accepted, stored …); a permanent failure whose
reason is not a bounce is ``failed``."""
_MAILGUN_BOUNCE_REASONS = (None, "bounce", "suppress-bounce", "generic")


def mailgun_event(body: Mapping[str, Any]) -> DeliveryEvent | None:
    """Return the report in a Mailgun webhook body, or None when it does not matter to the funnel."""
    data = body.get("event-data")
    if not isinstance(data, dict):
        return None
    kind, severity = data.get("event"), data.get("severity")
    state = _MAILGUN_STATES.get(str(kind))
    if state is None:
        return None
    hard = kind != "failed" or severity != "temporary"
    if kind == "failed" and severity == "permanent" and data.get("reason") not in _MAILGUN_BOUNCE_REASONS:
        state = "failed"
    message = _dict(data.get("message"))
    headers = _dict(message.get("headers"))
    status = _dict(data.get("delivery-status"))
    return DeliveryEvent(
        provider="mailgun",
        event_id=str(data.get("id") or ""),
        state=state,
        message_id=_bare(headers.get("message-id")),
        hard=hard,
        detail=status.get("message") or status.get("description") or data.get("reason") or None,
        at=_at(data.get("timestamp")),
    )


def twilio_event(params: Mapping[str, str]) -> DeliveryEvent | None:
    """Return the report in a Twilio status callback, or None for interim states (queued, sent …)."""
    status, code = params.get("MessageStatus") or params.get("SmsStatus"), params.get("ErrorCode")
    sid = params.get("MessageSid") or params.get("SmsSid")
    state: State | None
    hard = True
    if status == "delivered":
        state = "delivered"
    elif status == "read":
        state = "opened"
    elif status in ("undelivered", "failed"):
        state = "bounced" if is_hard_phone_error(code) else "failed"
    else:
        state = None
    if state is None or not sid:
        return None
    return DeliveryEvent(
        provider="twilio",
        event_id=f"{sid}:{status}",
        state=state,
        provider_message_id=sid,
        hard=hard,
        detail=f"{status} (error {code})" if code else status,
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _bare(value: Any) -> str | None:
    text = str(value or "").strip().strip("<>").strip()
    return text or None

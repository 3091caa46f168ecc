"""The Standard Webhooks signature scheme (standardwebhooks.com), both directions.

``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, keyed with the
base64 part of a ``whsec_`` secret. Several space-separated signatures may be sent during a
secret rotation; any one matching is enough.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

TOLERANCE_S = 5 * 60


class SignatureError(ValueError):
    def __init__(self, message: str, *, header: str) -> None:
        super().__init__(message)
        self.header = header


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the ``webhook-signature`` header value for this message."""
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify(
    secret: str,
    headers: dict[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance_s: float = TOLERANCE_S,
) -> str:
    """Return the message id of a correctly signed message whose timestamp is within ``tolerance_s``
    of now (either way); raise ``SignatureError`` otherwise."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    for name, value in (
        ("webhook-id", msg_id),
        ("webhook-timestamp", timestamp),
        ("webhook-signature", signatures),
    ):
        if not value:
            raise SignatureError(f"the {name} header is missing", header=name)
    assert msg_id and timestamp and signatures
    if not timestamp.isdigit():
        raise SignatureError("webhook-timestamp must be Unix seconds", header="webhook-timestamp")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance_s:
        raise SignatureError(
            f"webhook-timestamp is more than {tolerance_s:g}s away from now; the request is stale or "
            "replayed, or the sender's clock is wrong",
            header="webhook-timestamp",
        )
    expected = sign(secret, msg_id, int(timestamp), body).encode()
    for candidate in signatures.split():
        if hmac.compare_digest(candidate.encode(), expected):
            return msg_id
    raise SignatureError("no webhook-signature matches this integration's secret", header="webhook-signature")

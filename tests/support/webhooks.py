"""Build signed Standard Webhooks requests the way a CRM would."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from shared import standard_webhooks


def signed(
    secret: str, payload: dict[str, Any], *, msg_id: str | None = None, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """Return (body, headers) for ``payload`` signed with ``secret``."""
    body = json.dumps(payload).encode()
    msg_id = msg_id or "msg_" + secrets.token_hex(8)
    timestamp = int(time.time()) if timestamp is None else timestamp
    return body, {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_webhooks.sign(secret, msg_id, timestamp, body),
    }


def ticket_solved(
    external_id: str = "cus_1", email: str = "ada@example.com", name: str = "Ada"
) -> dict[str, Any]:
    return {
        "type": "ticket.solved",
        "timestamp": "2026-11-23T10:00:00Z",
        "data": {"contact": {"external_id": external_id, "email": email, "name": name}, "ticket_id": "T-1"},
    }

"""Signed, self-verifying tokens: the signing helpers, and workspace API keys (whose format and roles
live in ``shared.access``).

Tokens and keys are HMAC-SHA256 over their content with a key derived from ``CLOSELOOP_SECRET_KEY`` and
a purpose, so a survey token can never pass as an API key. Every service verifies them with
the shared secret alone: no service needs another's tables to authenticate a caller.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
import time
from typing import Any

WORKSPACE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


class InvalidToken(ValueError):
    pass


class ExpiredToken(InvalidToken):
    pass


def b64url(raw: bytes) -> str:
    """Return ``raw`` as unpadded base64url, the spelling of every token and key."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    """Return the bytes that base64url ``text`` spells (padded or not); raise ``ValueError`` when it is none."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@functools.lru_cache(maxsize=64)
def _purpose_key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()


def mac(secret: str, purpose: str, message: str, length: int = 32) -> str:
    """Return the MAC of ``message`` for ``purpose`` under ``secret``: the first ``length`` bytes of an
    HMAC-SHA256 keyed by the purpose's own key, in base64url."""
    return b64url(hmac.new(_purpose_key(secret, purpose), message.encode(), hashlib.sha256).digest()[:length])


def issue_api_key(secret: str, workspace_id: str, key_id: str | None = None) -> str:
    """Return a new API key for ``workspace_id`` with role admin (``shared.access.issue_api_key`` takes
    a role and an expiry)."""
    from shared.access import issue_api_key as issue

    return issue(secret, workspace_id, key_id=key_id)


def verify_api_key(secret: str, api_key: str) -> str:
    """Return the workspace id the key belongs to; raise ``InvalidToken`` otherwise (either format;
    ``shared.access.verify_credential`` returns the whole caller)."""
    from shared.access import verify_credential

    if not api_key.startswith("clk_"):
        raise InvalidToken("malformed API key")
    return verify_credential(secret, api_key, now=time.time()).workspace_id


def sign_token(secret: str, purpose: str, claims: dict[str, Any], *, ttl_s: int) -> str:
    """Return a URL-safe token carrying ``claims`` that expires in ``ttl_s`` seconds."""
    body = b64url(json.dumps({**claims, "exp": int(time.time()) + ttl_s}, separators=(",", ":")).encode())
    return f"{body}.{mac(secret, purpose, body, 18)}"


def verify_token(secret: str, purpose: str, token: str, *, now: float | None = None) -> dict[str, Any]:
    """Return the claims of a valid token; raise ``InvalidToken`` or ``ExpiredToken``."""
    body, _, sig = token.partition(".")
    if not body or not sig or not hmac.compare_digest(mac(secret, purpose, body, 18).encode(), sig.encode()):
        raise InvalidToken("token signature does not match")
    try:
        claims = json.loads(unb64url(body))
    except ValueError as exc:
        raise InvalidToken("token body is unreadable") from exc
    if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int):
        raise InvalidToken("token has no expiry")
    if claims["exp"] < (time.time() if now is None else now):
        raise ExpiredToken("token has expired")
    return claims

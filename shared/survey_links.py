"""The survey link: what dispatch puts in an invitation and responses reads back.

The token carries everything responses needs to record an answer for the right invitation (so
responses never reads dispatch's tables) and reveals none of it: it is encrypted and authenticated
(AES-256-GCM, a key derived from ``CLOSELOOP_SECRET_KEY`` for this purpose alone) and expires. Whoever
reads a link — in a mailbox, an SMS log, a proxy, a chat channel, a browser history — learns nothing
about the customer; a changed byte makes it invalid.

A link may carry the trace of the invitation it was sent for (``traceparent``, a W3C traceparent), so
that the answer continues the trace that began with the webhook (``docs/operations.md``, Tracing). It
rides as 25 raw bytes (trace id, span id, flags) in base64: about 60 characters more in the link's
token, and SMS carry the short link (``/l/<code>``) anyway. Links without it open as before.

Tokens of the first format (readable base64 JSON with an HMAC, ``<body>.<mac>``) are still accepted
until they expire (30 days after they were sent), so that invitations already in mailboxes keep
working; nothing issues them any more.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from dataclasses import dataclass, field, fields
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared import tracing
from shared.security import ExpiredToken, InvalidToken, b64url, unb64url, verify_token

PURPOSE = "survey-link"
DEFAULT_TTL_S = 30 * 24 * 3600
_AAD = b"closeloop survey link v2"
_keys: dict[str, AESGCM] = {}


@dataclass(frozen=True)
class SurveyLink:
    workspace_id: str
    invitation_id: str
    request_id: str
    survey_id: str
    contact_id: str
    kind: str = "transactional"
    channel: str = "email"
    locale: str | None = None
    context: dict[str, str] = field(default_factory=dict)
    """Hidden fields for the response (agent, product, ticket id, ``attr.<name>`` …)."""
    respondent: dict[str, str] | None = None
    """Who was invited (name, email, phone, locale, timezone, company), for the person who follows up on
    their answer; None for anonymous links (kiosks)."""
    traceparent: str | None = None
    """The W3C traceparent of the invitation's trace: the answer continues it (None: a trace of its own)."""


_SHORT = {
    "workspace_id": "ws",
    "invitation_id": "inv",
    "request_id": "req",
    "survey_id": "svy",
    "contact_id": "con",
    "kind": "knd",
    "channel": "chn",
    "locale": "loc",
    "context": "ctx",
    "respondent": "who",
    "traceparent": "tp",
}
_LONG = {v: k for k, v in _SHORT.items()}


def _pack_trace(traceparent: str) -> str | None:
    """The traceparent as base64 of its 25 bytes (trace id, span id, flags); None when it is not one."""
    valid = tracing.parse(traceparent)
    if valid is None:
        return None
    _, trace, span, flags = valid.split("-")
    return b64url(bytes.fromhex(trace + span + flags))


def _unpack_trace(packed: object) -> str | None:
    """The traceparent packed by ``_pack_trace``; None for anything else (the link still opens)."""
    if not isinstance(packed, str):
        return None
    try:
        raw = unb64url(packed)
    except ValueError:
        return None
    if len(raw) != 25:
        return None
    return tracing.parse(f"00-{raw[:16].hex()}-{raw[16:24].hex()}-{raw[24:].hex()}")


def _cipher(secret: str) -> AESGCM:
    cipher = _keys.get(secret)
    if cipher is None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_AAD).derive(secret.encode())
        cipher = _keys[secret] = AESGCM(key)
    return cipher


def _compress(data: bytes) -> bytes:
    """Deflate the claims (a few hundred bytes) with a 1 KiB window: as small as the default window
    makes them, without its ~0.2 ms of setting up 256 KiB of buffers per token (any zlib reader, ours
    included, reads either)."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 10, 2)
    return deflate.compress(data) + deflate.flush()


def issue_link_token(secret: str, link: SurveyLink, *, ttl_s: int = DEFAULT_TTL_S) -> str:
    """Return the opaque token for ``link``, valid for ``ttl_s`` seconds."""
    claims = {_SHORT[f.name]: v for f in fields(link) if (v := getattr(link, f.name)) not in (None, {}, "")}
    if "tp" in claims:
        packed = _pack_trace(claims.pop("tp"))
        if packed:
            claims["tp"] = packed
    claims["exp"] = int(time.time()) + ttl_s
    plain = _compress(json.dumps(claims, separators=(",", ":")).encode())
    nonce = os.urandom(12)
    return b64url(nonce + _cipher(secret).encrypt(nonce, plain, _AAD))


def _decrypt(secret: str, token: str) -> dict[str, Any]:
    try:
        raw = unb64url(token)
    except ValueError as exc:
        raise InvalidToken("token is not readable") from exc
    if b64url(raw) != token:  # one spelling per token: a changed last character is not padding noise
        raise InvalidToken("token is not readable")
    if len(raw) < 12 + 16:
        raise InvalidToken("token is too short")
    try:
        plain = _cipher(secret).decrypt(raw[:12], raw[12:], _AAD)
        claims = json.loads(zlib.decompress(plain))
    except (InvalidTag, zlib.error, ValueError) as exc:
        raise InvalidToken("token does not match") from exc
    if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int):
        raise InvalidToken("token has no expiry")
    if claims["exp"] < time.time():
        raise ExpiredToken("token has expired")
    return claims


def read_link_token(secret: str, token: str, *, previous: str | None = None) -> SurveyLink:
    """Return the link in a valid token; raise ``InvalidToken`` or ``ExpiredToken``.

    ``previous`` (``CLOSELOOP_SECRET_KEY_PREVIOUS`` during a rotation of the secret) also opens links
    made before the rotation.
    """
    try:
        claims = verify_token(secret, PURPOSE, token) if "." in token else _decrypt(secret, token)
    except ExpiredToken:
        raise
    except InvalidToken:
        if not previous or previous == secret:
            raise
        claims = verify_token(previous, PURPOSE, token) if "." in token else _decrypt(previous, token)
    try:
        values = {_LONG[k]: v for k, v in claims.items() if k in _LONG}
        values.setdefault("context", {})
        values["traceparent"] = _unpack_trace(values.get("traceparent"))
        return SurveyLink(**values)
    except TypeError as exc:
        raise InvalidToken("token is missing survey link fields") from exc

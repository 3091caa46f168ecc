"""CRM credentials sealed at rest: AES-256-GCM under a key derived (HKDF-SHA256) from the service secret
for this purpose alone. During a rotation of the secret, credentials sealed with the previous one still
open; they are sealed again with the current one when next saved."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"closeloop dispatch crm credentials v1"


def _cipher(secret: str) -> AESGCM:
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode()))


def seal(secret: str, credentials: dict[str, Any]) -> str:
    nonce = os.urandom(12)
    sealed = _cipher(secret).encrypt(nonce, json.dumps(credentials).encode(), _INFO)
    return base64.b64encode(nonce + sealed).decode()


def unseal(sealed: str, *secrets: str | None) -> dict[str, Any]:
    """Return the credentials; raise ``ValueError`` when none of ``secrets`` opens them."""
    raw = base64.b64decode(sealed)
    for secret in secrets:
        if not secret:
            continue
        try:
            value = json.loads(_cipher(secret).decrypt(raw[:12], raw[12:], _INFO))
        except InvalidTag:
            continue
        if isinstance(value, dict):
            return value
    raise ValueError("the stored credentials do not open with the service secret (was it changed?)")

"""OpenID Connect's rules for the console as a relying party (OIDC Core 1.0, RFC 7636): PKCE, and what an
``id_token`` must be before the console believes it.

An ``id_token`` is accepted only when its RS256 signature verifies with a key of the provider's JWKS
(the ``kid`` it names), it was issued by the configured issuer (``iss``, exactly), for this client
(``aud``; with several audiences ``azp`` must be this client), has not expired (``exp``, 60 s of clock
leeway), carries the nonce of this sign-in, names its subject (``sub``) and an email address the
provider has verified (``email_verified`` true).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, Literal

import jwt

LEEWAY_S = 60
ALGORITHMS = ["RS256"]

Reason = Literal["malformed", "signature", "issuer", "audience", "expired", "nonce", "email", "unknown-key"]

REASONS: dict[Reason, str] = {
    "malformed": "the identity provider's answer was not a readable ID token",
    "signature": "the ID token's signature did not verify with the provider's keys",
    "unknown-key": "the ID token was signed with a key the provider does not publish",
    "issuer": "the ID token came from another issuer than the one configured",
    "audience": "the ID token was issued for another application (aud)",
    "expired": "the ID token has expired",
    "nonce": "the ID token belongs to another sign-in (nonce)",
    "email": "the provider has not verified this person's email address",
}


class IdTokenRefused(ValueError):
    """The ``id_token`` fails a check; ``reason`` names which."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{REASONS[reason]}{f' ({detail})' if detail else ''}")
        self.reason = reason


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in."""

    issuer: str
    subject: str
    email: str
    name: str | None


def pkce_pair() -> tuple[str, str]:
    """Return a PKCE code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _signing_key(id_token: str, jwks: dict[str, Any]) -> Any:
    try:
        header = jwt.get_unverified_header(id_token)
        keys = jwt.PyJWKSet.from_dict(jwks).keys
    except (jwt.PyJWTError, ValueError, KeyError) as exc:
        raise IdTokenRefused("malformed", str(exc)) from exc
    if header.get("alg") not in ALGORITHMS:
        raise IdTokenRefused("signature", f"algorithm {header.get('alg')!r}, expected RS256")
    kid = header.get("kid")
    matching = [k for k in keys if k.key_id == kid] if kid else keys
    if len(matching) != 1:
        raise IdTokenRefused("unknown-key", f"kid {kid!r}")
    return matching[0].key


def verify_id_token(
    id_token: str, *, jwks: dict[str, Any], issuer: str, client_id: str, nonce: str, now: float
) -> Identity:
    """Return who signed in; raise ``IdTokenRefused`` naming the first check that fails."""
    key = _signing_key(id_token, jwks)
    try:
        claims = jwt.decode(
            id_token,
            key,
            algorithms=ALGORITHMS,
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
            },
        )
    except jwt.InvalidSignatureError as exc:
        raise IdTokenRefused("signature") from exc
    except jwt.PyJWTError as exc:
        raise IdTokenRefused("malformed", str(exc)) from exc
    if claims.get("iss") != issuer:
        raise IdTokenRefused("issuer", f"{claims.get('iss')!r}")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
    if client_id not in audiences or (len(audiences) > 1 and claims.get("azp") != client_id):
        raise IdTokenRefused("audience", f"{audience!r}")
    expires = claims.get("exp")
    if not isinstance(expires, int | float) or expires + LEEWAY_S <= now:
        raise IdTokenRefused("expired")
    if not isinstance(claims.get("nonce"), str) or not secrets.compare_digest(claims["nonce"], nonce):
        raise IdTokenRefused("nonce")
    subject, email = claims.get("sub"), claims.get("email")
    if not isinstance(subject, str) or not subject:
        raise IdTokenRefused("malformed", "no sub")
    if claims.get("email_verified") not in (True, "true") or not isinstance(email, str) or "@" not in email:
        raise IdTokenRefused("email")
    name = claims.get("name")
    return Identity(issuer, subject, email.strip().lower(), name if isinstance(name, str) else None)


def email_domain(email: str) -> str:
    """Return the domain of an email address, lower-cased."""
    return email.rsplit("@", 1)[-1].lower()

"""Who is calling and what they may do: roles, permissions, and the credentials every service
verifies with the shared secret alone (no service reads the console's tables).

Two credentials, each signed (HMAC-SHA256) with a key derived from ``CLOSELOOP_SECRET_KEY`` for its
purpose alone, so that one can never pass as the other (nor as a survey link):

- **API keys** ``clk_<workspace>.<key id>.<role>.<expiry>.<mac>``: made in the console for an
  integration or a script, with a role and an optional expiry (unix seconds, ``0`` for none). The
  secret is shown once; the console keeps the key id, never the MAC. Revoking a key publishes
  ``KeyRevoked``; services refuse revoked ids (``shared.revocation``).
- **User tokens** ``clu_<claims>.<mac>``: minutes-long tokens the console sends when it calls a
  service for a signed-in person: workspace, user id, display name, role, expiry.

Keys of the first format (``clk_<workspace>.<key id>.<mac>``, full rights) are accepted as role
``admin`` for one release, with a warning in the log; nothing issues them any more.

During a rotation of the secret, ``CLOSELOOP_SECRET_KEY_PREVIOUS`` verifies what the old secret
signed (a ``Keyring`` holds both); everything new is signed with the current secret.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

from shared import security
from shared.errors import Forbidden
from shared.security import WORKSPACE_ID, ExpiredToken, InvalidToken, b64url, unb64url

log = logging.getLogger(__name__)


class Role(StrEnum):
    """What a person or key is in a workspace; ``PERMISSIONS`` says what each may do."""

    OWNER = "owner"
    ADMIN = "admin"
    ANALYST = "analyst"
    AGENT = "agent"
    VIEWER = "viewer"
    INTEGRATION = "integration"


class Permission(StrEnum):
    """What a route needs, ``<resource>:<action>``; every route declares one (part of issue 14)."""

    INTEGRATIONS_READ = "integrations:read"
    INTEGRATIONS_WRITE = "integrations:write"
    INTEGRATION_SECRETS_READ = "integration-secrets:read"
    INTEGRATION_SECRETS_WRITE = "integration-secrets:write"
    EVENTS_READ = "events:read"
    EVENTS_WRITE = "events:write"
    RULES_READ = "rules:read"
    RULES_WRITE = "rules:write"
    SURVEYS_READ = "surveys:read"
    SURVEYS_WRITE = "surveys:write"
    RESPONSES_READ = "responses:read"
    CHANNELS_READ = "channels:read"
    CHANNELS_WRITE = "channels:write"
    CONTACTS_READ = "contacts:read"
    CONTACTS_WRITE = "contacts:write"
    CONTACTS_ERASE = "contacts:erase"
    METRICS_READ = "metrics:read"
    METRICS_EXPORT = "metrics:export"
    CASES_READ = "cases:read"
    CASES_WRITE = "cases:write"
    SETTINGS_READ = "settings:read"
    SETTINGS_WRITE = "settings:write"
    USERS_READ = "users:read"
    USERS_WRITE = "users:write"
    KEYS_READ = "keys:read"
    KEYS_WRITE = "keys:write"


PERMISSION_MEANINGS: dict[Permission, str] = {
    Permission.INTEGRATIONS_READ: "see inbound integrations (sources) and their webhook URLs",
    Permission.INTEGRATIONS_WRITE: "connect, change and remove integrations, CRM connectors, outgoing webhooks",
    Permission.INTEGRATION_SECRETS_READ: "see stored credentials where a service shows them again",
    Permission.INTEGRATION_SECRETS_WRITE: "create and rotate webhook secrets and provider credentials",
    Permission.EVENTS_READ: "see a received event and the decisions it caused (an integration checks what it sent)",
    Permission.EVENTS_WRITE: "send customer events through the REST API (signed webhooks need no key)",
    Permission.RULES_READ: "see trigger rules, dry runs and the decisions log",
    Permission.RULES_WRITE: "create, change and remove trigger rules",
    Permission.SURVEYS_READ: "see survey definitions, kiosks and rewards",
    Permission.SURVEYS_WRITE: "create, publish, close and change surveys",
    Permission.RESPONSES_READ: "see single responses with their answers and comments",
    Permission.CHANNELS_READ: "see channels (email, SMS, WhatsApp, chat) and message templates",
    Permission.CHANNELS_WRITE: "configure channels and message templates",
    Permission.CONTACTS_READ: "see contacts and their attributes",
    Permission.CONTACTS_WRITE: "create, change, import and opt out contacts",
    Permission.CONTACTS_ERASE: "erase a contact's personal data everywhere",
    Permission.METRICS_READ: "see scores, trends, funnels and closed-loop metrics",
    Permission.METRICS_EXPORT: "download metrics and responses (CSV)",
    Permission.CASES_READ: "see follow-up cases, their history and notes",
    Permission.CASES_WRITE: "assign, work, note and resolve cases",
    Permission.SETTINGS_READ: "see workspace settings: branding, quiet hours, routing, SLA, escalation, themes, "
    "the audit log",
    Permission.SETTINGS_WRITE: "change workspace settings, experience targets and notification rules",
    Permission.USERS_READ: "see the workspace's people and their roles",
    Permission.USERS_WRITE: "invite people, change roles, remove people, configure single sign-on",
    Permission.KEYS_READ: "see the workspace's API keys (never their secrets)",
    Permission.KEYS_WRITE: "create and revoke API keys",
}

_P = Permission
_READS = frozenset(p for p in Permission if p.value.endswith(":read"))

PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: frozenset(Permission),
    Role.ADMIN: frozenset(Permission) - {_P.USERS_WRITE},
    Role.ANALYST: _READS - {_P.INTEGRATION_SECRETS_READ, _P.USERS_READ, _P.KEYS_READ} | {_P.METRICS_EXPORT},
    # Agents see who a case's customer is on the case itself (followup), not the list of every contact.
    Role.AGENT: frozenset(
        {_P.SURVEYS_READ, _P.RESPONSES_READ, _P.METRICS_READ, _P.CASES_READ, _P.CASES_WRITE}
    ),
    Role.VIEWER: frozenset({_P.SURVEYS_READ, _P.RESPONSES_READ, _P.METRICS_READ, _P.CASES_READ}),
    Role.INTEGRATION: frozenset(
        {
            _P.EVENTS_READ,
            _P.EVENTS_WRITE,
            _P.CONTACTS_READ,
            _P.CONTACTS_WRITE,
            _P.CONTACTS_ERASE,
            _P.SURVEYS_READ,
            _P.RESPONSES_READ,
            _P.METRICS_READ,
            _P.CASES_READ,
        }
    ),
}
"""The one permission table: what each role may do. ``docs/console.md`` renders it (a test checks)."""

PERSON_ROLES: tuple[Role, ...] = (Role.OWNER, Role.ADMIN, Role.ANALYST, Role.AGENT, Role.VIEWER)
"""The roles a person can have in a workspace."""
KEY_ROLES: tuple[Role, ...] = (Role.ADMIN, Role.ANALYST, Role.AGENT, Role.VIEWER, Role.INTEGRATION)
"""The roles an API key can carry: owners are people (they manage people)."""


def may_grant(granter: Role, role: Role) -> bool:
    """Whether someone with ``granter`` may give ``role`` to a key or a person: never more than they
    may do themselves."""
    return PERMISSIONS[role] <= PERMISSIONS[granter]


# --- who is calling ------------------------------------------------------------------------------

CredentialKind = Literal["key", "user"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a workspace's API key or a person the console vouches for."""

    workspace_id: str
    role: Role
    kind: CredentialKind
    id: str
    """The key id (``kind == "key"``) or the user id (``kind == "user"``)."""
    name: str
    """Who, in words, for audit logs: the person's name, or ``API key <id>``."""
    expires_at: int | None = None
    """Unix seconds; None: the key does not expire."""
    legacy: bool = False
    """A key of the first format (full rights), accepted as ``admin`` for one release."""

    @property
    def actor(self) -> str:
        """``user:<id>`` or ``key:<id>``: what a service records as who did something."""
        return f"{self.kind}:{self.id}"

    @property
    def who(self) -> str:
        """Who did something, for audit logs and case histories: ``Ada Lovelace (user:u-1)`` for a person
        the console vouches for, ``key:<key id>`` for an API key (the console knows its label)."""
        return f"{self.name} ({self.actor})" if self.kind == "user" else self.actor

    def can(self, permission: Permission) -> bool:
        """Whether this caller's role has ``permission``."""
        return permission in PERMISSIONS[self.role]


def require(principal: Principal, permission: Permission) -> Principal:
    """Return ``principal`` when its role has ``permission``; raise ``Forbidden`` (403) naming it."""
    if permission not in PERMISSIONS[principal.role]:
        raise Forbidden(
            f"This needs the permission '{permission}', which the role '{principal.role}' does not have. "
            "Ask an owner of the workspace for a role that has it, or use a key that does.",
            field="Authorization",
            errors=[{"field": "Authorization", "message": f"missing permission {permission}"}],
        )
    return principal


# --- errors that say how to fix them --------------------------------------------------------------


class CredentialError(InvalidToken):
    """The credential is not accepted; the message says why and what to do."""


class MalformedCredential(CredentialError):
    pass


class ForgedCredential(CredentialError):
    """The signature does not match: changed, or signed with another secret."""


class ExpiredCredential(CredentialError, ExpiredToken):
    pass


class RevokedCredential(CredentialError):
    pass


# --- signing keys --------------------------------------------------------------------------------


def _unb64(text: str) -> bytes:
    raw = unb64url(text)
    if b64url(raw) != text:  # one spelling per credential
        raise ValueError("not canonical base64url")
    return raw


API_KEY_PURPOSE = "api-key.v2"
USER_TOKEN_PURPOSE = "user-token.v1"
OPERATOR_PURPOSE = "operator.v1"
_LEGACY_PURPOSE = "api-key"


class Keyring:
    """The current secret, and during a rotation the previous one: new credentials are signed with the
    current secret; what either signed is accepted."""

    def __init__(self, current: str, previous: str | None = None) -> None:
        self.secrets = (current, previous) if previous and previous != current else (current,)

    @classmethod
    def of(cls, secret: str | Keyring) -> Keyring:
        return secret if isinstance(secret, Keyring) else cls(secret)

    def mac(self, purpose: str, message: str, *, length: int = 32) -> str:
        """Return the MAC of ``message`` for ``purpose`` under the current secret."""
        return security.mac(self.secrets[0], purpose, message, length)

    def matches(self, purpose: str, message: str, mac: str, *, length: int = 32) -> bool:
        """Whether ``mac`` is the MAC of ``message`` under the current or the previous secret."""
        return any(
            hmac.compare_digest(security.mac(secret, purpose, message, length), mac)
            for secret in self.secrets
        )


# --- API keys ------------------------------------------------------------------------------------

_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{8,32}$")
_API_KEY = re.compile(
    r"^clk_(?P<ws>[a-z0-9][a-z0-9-]{1,62})\.(?P<kid>[A-Za-z0-9_-]{8,32})\.(?P<role>[a-z]{3,20})"
    r"\.(?P<exp>0|[1-9][0-9]{0,11})\.(?P<mac>[A-Za-z0-9_-]{43})$"
)
_LEGACY_KEY = re.compile(
    r"^clk_(?P<ws>[a-z0-9][a-z0-9-]{1,62})\.(?P<kid>[A-Za-z0-9_-]{8,32})\.(?P<sig>[A-Za-z0-9_-]{20,64})$"
)


def new_key_id() -> str:
    """Return a fresh random key id (12 characters, 72 bits)."""
    return secrets.token_urlsafe(9)


def issue_api_key(
    secret: str | Keyring,
    workspace_id: str,
    *,
    role: Role = Role.ADMIN,
    key_id: str | None = None,
    expires_at: int | None = None,
) -> str:
    """Return a new API key of ``workspace_id`` with ``role``, valid until ``expires_at`` (unix s)."""
    if not WORKSPACE_ID.match(workspace_id):
        raise ValueError("workspace ids are 2-63 lowercase letters, digits and dashes")
    key_id = key_id or new_key_id()
    if not _KEY_ID.match(key_id):
        raise ValueError("key ids are 8-32 letters, digits, '-' and '_'")
    role = Role(role)
    body = f"{workspace_id}.{key_id}.{role.value}.{expires_at or 0}"
    return f"clk_{body}.{Keyring.of(secret).mac(API_KEY_PURPOSE, body)}"


def key_prefix(api_key: str) -> str:
    """Return what identifies a key without its secret part: ``clk_<workspace>.<key id>``."""
    return ".".join(api_key.split(".")[:2])


_warned_legacy: set[str] = set()


def _verify_key(keyring: Keyring, text: str, now: float) -> Principal:
    match = _API_KEY.match(text)
    if match is None:
        legacy = _LEGACY_KEY.match(text)
        if legacy is None:
            raise MalformedCredential(
                "The API key is malformed (expected clk_<workspace>.<key id>.<role>.<expiry>.<signature>); "
                "copy it again, whole, from where it was shown."
            )
        return _verify_legacy_key(keyring, legacy)
    body = text[4 : match.start("mac") - 1]
    if not keyring.matches(API_KEY_PURPOSE, body, match["mac"]):
        raise ForgedCredential(
            "The API key's signature does not match: it was changed, or signed with another "
            "CLOSELOOP_SECRET_KEY. Create a new key on the console's home page (API keys), or have an operator "
            "run 'closeloop workspace create <workspace> --owner <email>'."
        )
    try:
        role = Role(match["role"])
    except ValueError as exc:  # signed, so only a newer release could have made it
        raise MalformedCredential(f"The API key's role '{match['role']}' is unknown here.") from exc
    expires_at = int(match["exp"]) or None
    if expires_at is not None and expires_at <= now:
        raise ExpiredCredential(
            f"The API key {match['kid']} expired at {_iso(expires_at)}; create a new one in the console."
        )
    return Principal(match["ws"], role, "key", match["kid"], f"API key {match['kid']}", expires_at)


def _verify_legacy_key(keyring: Keyring, match: re.Match[str]) -> Principal:
    if not keyring.matches(_LEGACY_PURPOSE, f"{match['ws']}.{match['kid']}", match["sig"]):
        raise ForgedCredential(
            "The API key's signature does not match: it was changed, or signed with another "
            "CLOSELOOP_SECRET_KEY. Create a new key on the console's home page (API keys), or have an operator "
            "run 'closeloop workspace create <workspace> --owner <email>'."
        )
    if match["kid"] not in _warned_legacy:
        _warned_legacy.add(match["kid"])
        log.warning(
            "API key clk_%s.%s… has the old format (no role): accepted as role admin until the next "
            "release; replace it with a key made in the console",
            match["ws"],
            match["kid"],
            extra={"workspace_id": match["ws"]},
        )
    return Principal(
        match["ws"], Role.ADMIN, "key", match["kid"], f"API key {match['kid']} (old format)", legacy=True
    )


# --- user tokens ---------------------------------------------------------------------------------


def issue_user_token(
    secret: str | Keyring,
    *,
    workspace_id: str,
    user_id: str,
    name: str,
    role: Role,
    now: float,
    ttl_s: int = 300,
) -> str:
    """Return a token that speaks for a signed-in person for ``ttl_s`` seconds."""
    claims = {
        "ws": workspace_id,
        "sub": user_id,
        "name": name,
        "role": Role(role).value,
        "exp": int(now) + ttl_s,
    }
    body = b64url(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
    return f"clu_{body}.{Keyring.of(secret).mac(USER_TOKEN_PURPOSE, body)}"


def _verify_user_token(keyring: Keyring, text: str, now: float) -> Principal:
    body, _, mac = text[4:].partition(".")
    if not body or len(mac) != 43:
        raise MalformedCredential("The user token is malformed; ask the console for a new one.")
    if not keyring.matches(USER_TOKEN_PURPOSE, body, mac):
        raise ForgedCredential(
            "The user token's signature does not match: it was changed, or signed with another "
            "CLOSELOOP_SECRET_KEY; ask the console for a new one."
        )
    try:
        claims = json.loads(_unb64(body))
        principal = Principal(
            str(claims["ws"]),
            Role(claims["role"]),
            "user",
            str(claims["sub"]),
            str(claims["name"]),
            int(claims["exp"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise MalformedCredential(
            "The user token's claims are unreadable; ask the console for a new one."
        ) from exc
    assert principal.expires_at is not None
    if principal.expires_at <= now:
        raise ExpiredCredential(
            f"The user token expired at {_iso(principal.expires_at)}; ask the console for a new one "
            "(POST /v1/token), or sign in again."
        )
    return principal


# --- one way in -----------------------------------------------------------------------------------


def verify_credential(secret: str | Keyring, text: str, *, now: float) -> Principal:
    """Return who ``text`` (an API key or a user token) speaks for; raise ``CredentialError`` saying
    what is wrong and how to fix it."""
    keyring = Keyring.of(secret)
    if text.startswith("clk_"):
        return _verify_key(keyring, text, now)
    if text.startswith("clu_"):
        return _verify_user_token(keyring, text, now)
    raise MalformedCredential(
        "This is not a closeloop credential: send a workspace API key (clk_…) or a user token (clu_…) "
        "as 'Authorization: Bearer <credential>'."
    )


def credential_from_headers(headers: Mapping[str, str]) -> str:
    """Return the credential in ``Authorization: Bearer …`` or ``X-API-Key``; empty when there is none."""
    header = headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return headers.get("x-api-key", "").strip()


# --- operators (whoever holds the secret: the CLI) -------------------------------------------------


def issue_operator_token(secret: str | Keyring, *, now: float, ttl_s: int = 120, **claims: Any) -> str:
    """Return a short-lived token for operator actions (creating a workspace); only the secret's holder
    can make one."""
    body = b64url(json.dumps({**claims, "exp": int(now) + ttl_s}, separators=(",", ":")).encode())
    return f"clo_{body}.{Keyring.of(secret).mac(OPERATOR_PURPOSE, body)}"


def verify_operator_token(secret: str | Keyring, text: str, *, now: float) -> dict[str, Any]:
    """Return the claims of a valid operator token; raise ``CredentialError``."""
    body, _, mac = text.removeprefix("clo_").partition(".")
    if not text.startswith("clo_") or not Keyring.of(secret).matches(OPERATOR_PURPOSE, body, mac):
        raise ForgedCredential(
            "This needs an operator token, made by 'closeloop workspace create' with the stack's "
            "CLOSELOOP_SECRET_KEY."
        )
    try:
        claims = json.loads(_unb64(body))
        expires = int(claims["exp"])
    except (ValueError, KeyError, TypeError) as exc:
        raise MalformedCredential("The operator token is unreadable.") from exc
    if expires <= now:
        raise ExpiredCredential("The operator token expired; run the command again.")
    return dict(claims)


def _iso(unix_s: int) -> str:
    return datetime.fromtimestamp(unix_s, UTC).isoformat().replace("+00:00", "Z")


# --- the check every request makes ----------------------------------------------------------------


class RevocationList(Protocol):
    def is_revoked(self, workspace_id: str, key_id: str) -> bool: ...


class UsageLog(Protocol):
    def note(self, principal: Principal, now: float) -> None: ...


class Authenticator:
    """Turns a request's credential into its ``Principal``: verifies the signature and expiry, refuses
    revoked keys (``revoked``, a service's ``shared.revocation.RevokedKeys``) and notes when each key was
    used (``usage``, ``shared.revocation.KeyUsage``)."""

    def __init__(
        self,
        keyring: Keyring,
        *,
        revoked: RevocationList | None = None,
        usage: UsageLog | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keyring = keyring
        self.revoked = revoked
        self.usage = usage
        self.clock = clock

    def authenticate(self, credential: str) -> Principal:
        """Return the caller ``credential`` speaks for; raise ``CredentialError`` (a 401) otherwise."""
        now = self.clock()
        principal = verify_credential(self.keyring, credential, now=now)
        if principal.kind == "key":
            if self.revoked is not None and self.revoked.is_revoked(principal.workspace_id, principal.id):
                raise RevokedCredential(
                    f"The API key {principal.id} was revoked; create a new one in the console."
                )
            if self.usage is not None:
                self.usage.note(principal, now)
        return principal


def permission_table() -> str:
    """Return ``PERMISSIONS`` as a Markdown table (docs/console.md shows it; a test keeps them equal)."""
    roles = list(Role)
    lines = [
        "| permission | what it allows | " + " | ".join(roles) + " |",
        "|---|---|" + "---|" * len(roles),
    ]
    for permission in Permission:
        marks = " | ".join("✓" if permission in PERMISSIONS[role] else "" for role in roles)
        lines.append(f"| `{permission}` | {PERMISSION_MEANINGS[permission]} | {marks} |")
    return "\n".join(lines)

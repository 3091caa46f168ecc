"""The survey link: what dispatch puts in an invitation and responses reads back.

The token is signed and expiring (see ``shared.security``) and carries everything responses
needs to record an answer for the right invitation, so responses never reads dispatch's tables.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from shared.security import sign_token, verify_token

PURPOSE = "survey-link"
DEFAULT_TTL_S = 30 * 24 * 3600


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
    """Hidden fields for the response (agent, product, ticket id …); kept small, it rides in the URL."""


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
}
_LONG = {v: k for k, v in _SHORT.items()}


def issue_link_token(secret: str, link: SurveyLink, *, ttl_s: int = DEFAULT_TTL_S) -> str:
    """Return the signed token for ``link``, valid for ``ttl_s`` seconds."""
    return sign_token(secret, PURPOSE, {_SHORT[k]: v for k, v in asdict(link).items()}, ttl_s=ttl_s)


def read_link_token(secret: str, token: str) -> SurveyLink:
    """Return the link in a valid token; raise ``InvalidToken`` or ``ExpiredToken``."""
    from shared.security import InvalidToken

    claims = verify_token(secret, PURPOSE, token)
    try:
        return SurveyLink(**{_LONG[k]: v for k, v in claims.items() if k in _LONG})
    except TypeError as exc:
        raise InvalidToken("token is missing survey link fields") from exc

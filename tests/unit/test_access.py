"""shared/access.py: the credentials, the permission table, the one check every request makes; and the
secret-key rule services start under."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from services.scoring.app import create_app as scoring_app
from services.scoring.settings import ScoringSettings
from shared.access import (
    KEY_ROLES,
    PERMISSION_MEANINGS,
    PERMISSIONS,
    PERSON_ROLES,
    Authenticator,
    CredentialError,
    ExpiredCredential,
    ForgedCredential,
    Keyring,
    MalformedCredential,
    Permission,
    Principal,
    RevokedCredential,
    Role,
    credential_from_headers,
    issue_api_key,
    issue_operator_token,
    issue_user_token,
    may_grant,
    require,
    verify_credential,
    verify_operator_token,
)
from shared.errors import Forbidden
from shared.security import InvalidToken, mac, verify_api_key
from shared.settings import DEV_SECRET_KEY, InsecureSecretKey, ServiceSettings

SECRET = "s" * 40
OTHER = "o" * 40
NOW = 1_800_000_000.0


def test_an_api_key_carries_its_workspace_id_role_and_expiry():
    key = issue_api_key(SECRET, "acme-eu", role=Role.INTEGRATION, key_id="k3y1d000", expires_at=int(NOW) + 60)
    assert key.startswith("clk_acme-eu.k3y1d000.integration.1800000060.")
    principal = verify_credential(SECRET, key, now=NOW)
    assert principal == Principal(
        "acme-eu", Role.INTEGRATION, "key", "k3y1d000", "API key k3y1d000", int(NOW) + 60
    )
    assert principal.actor == "key:k3y1d000" and not principal.legacy


@pytest.mark.parametrize(
    "change",
    [
        lambda k: k.replace("clk_acme.", "clk_acmf."),  # another workspace
        lambda k: k.replace(".viewer.", ".admin."),  # a better role
        lambda k: k.replace(".0.", ".1.", 1) if ".0." in k else k + "x",  # an expiry added
        lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"),  # the MAC
    ],
)
def test_any_change_to_a_key_makes_it_forged(change):
    key = issue_api_key(SECRET, "acme", role=Role.VIEWER, key_id="abcdefgh")
    with pytest.raises(ForgedCredential, match="Create a new key"):
        verify_credential(SECRET, change(key), now=NOW)


def test_a_key_signed_with_another_secret_is_refused_and_the_previous_secret_still_verifies():
    old = issue_api_key(OTHER, "acme")
    with pytest.raises(ForgedCredential, match="another CLOSELOOP_SECRET_KEY"):
        verify_credential(SECRET, old, now=NOW)
    rotating = Keyring(SECRET, previous=OTHER)
    assert verify_credential(rotating, old, now=NOW).workspace_id == "acme"
    fresh = issue_api_key(rotating, "acme")
    assert verify_credential(SECRET, fresh, now=NOW).workspace_id == "acme"  # new ones: the current secret
    with pytest.raises(ForgedCredential):
        verify_credential(OTHER, fresh, now=NOW)


def test_an_expired_key_says_when_it_expired():
    key = issue_api_key(SECRET, "acme", expires_at=int(NOW) - 1)
    with pytest.raises(ExpiredCredential, match="expired at 2027-01-15T"):
        verify_credential(SECRET, key, now=NOW)


def test_user_tokens_speak_for_a_person_for_minutes():
    token = issue_user_token(
        SECRET, workspace_id="acme", user_id="u-1", name="Ada Lovelace", role=Role.AGENT, now=NOW
    )
    principal = verify_credential(SECRET, token, now=NOW + 299)
    assert (principal.kind, principal.id, principal.name, principal.role) == (
        "user",
        "u-1",
        "Ada Lovelace",
        "agent",
    )
    assert principal.actor == "user:u-1"
    with pytest.raises(ExpiredCredential, match="ask the console for a new one"):
        verify_credential(SECRET, token, now=NOW + 300)
    forged = token.replace(
        token.split(".")[0],
        issue_user_token(
            SECRET, workspace_id="acme", user_id="u-1", name="A", role=Role.OWNER, now=NOW
        ).split(".")[0],
    )
    with pytest.raises(ForgedCredential):
        verify_credential(SECRET, forged, now=NOW)


def test_a_user_token_cannot_pass_as_a_key_nor_a_key_as_a_user_token():
    """Each is signed for its purpose: the MAC of one over the same text is not the other's."""
    body = "acme.abcdefgh.owner.0"
    user_mac = Keyring(SECRET).mac("user-token.v1", body)
    with pytest.raises(ForgedCredential):
        verify_credential(SECRET, f"clk_{body}.{user_mac}", now=NOW)
    key = issue_api_key(SECRET, "acme", key_id="abcdefgh")
    with pytest.raises(CredentialError):
        verify_credential(SECRET, "clu_" + key[4:], now=NOW)


def test_keys_of_the_first_format_are_admin_for_one_release_with_a_warning(caplog):
    old = f"clk_acme.legacy01.{mac(SECRET, 'api-key', 'acme.legacy01')}"
    with caplog.at_level(logging.WARNING, logger="shared.access"):
        principal = verify_credential(SECRET, old, now=NOW)
        verify_credential(SECRET, old, now=NOW)
    assert (principal.role, principal.legacy) == (Role.ADMIN, True)
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "old format" in caplog.records[0].message
    assert verify_api_key(SECRET, old) == "acme"
    with pytest.raises(InvalidToken):  # shared.security's callers keep catching InvalidToken
        verify_api_key(SECRET, old[:-2] + "xx")


@pytest.mark.parametrize("text", ["", "Bearer x", "clk_", "clk_acme.x.y.z", "clu_", "clu_a.b", "sk_live_123"])
def test_what_is_not_a_credential_is_malformed_and_the_message_says_what_to_send(text):
    with pytest.raises(MalformedCredential) as caught:
        verify_credential(SECRET, text, now=NOW)
    assert "clk_" in str(caught.value) or "console" in str(caught.value)


def test_the_credential_comes_from_bearer_or_x_api_key():
    assert credential_from_headers({"authorization": "Bearer  clk_x "}) == "clk_x"
    assert credential_from_headers({"authorization": "bearer clk_x"}) == "clk_x"
    assert credential_from_headers({"x-api-key": "clk_y"}) == "clk_y"
    assert credential_from_headers({"authorization": "Basic abc"}) == ""


def test_operator_tokens_need_the_secret_and_expire():
    token = issue_operator_token(SECRET, now=NOW, ttl_s=60)
    assert verify_operator_token(SECRET, token, now=NOW + 59)["exp"] == int(NOW) + 60
    with pytest.raises(ExpiredCredential):
        verify_operator_token(SECRET, token, now=NOW + 60)
    with pytest.raises(ForgedCredential):
        verify_operator_token(OTHER, token, now=NOW)
    with pytest.raises(ForgedCredential):  # a user token is no operator token
        verify_operator_token(
            SECRET,
            issue_user_token(SECRET, workspace_id="a", user_id="u", name="n", role=Role.OWNER, now=NOW),
            now=NOW,
        )


# --- the permission table -----------------------------------------------------------------------


def test_the_permission_table_covers_every_role_and_means_something():
    assert set(PERMISSIONS) == set(Role)
    assert set(PERMISSION_MEANINGS) == set(Permission)
    assert PERMISSIONS[Role.OWNER] == frozenset(Permission)
    assert PERMISSIONS[Role.ADMIN] == frozenset(Permission) - {Permission.USERS_WRITE}
    assert (
        Permission.CASES_WRITE in PERMISSIONS[Role.AGENT]
        and Permission.RULES_WRITE not in PERMISSIONS[Role.AGENT]
    )
    assert all(not p.value.endswith(":write") for p in PERMISSIONS[Role.VIEWER])
    assert Permission.METRICS_EXPORT in PERMISSIONS[Role.ANALYST] - PERMISSIONS[Role.VIEWER]
    assert Role.OWNER not in KEY_ROLES and Role.INTEGRATION not in PERSON_ROLES


def test_nobody_grants_more_than_they_may_do():
    assert may_grant(Role.OWNER, Role.ADMIN) and may_grant(Role.ADMIN, Role.INTEGRATION)
    assert not may_grant(Role.ADMIN, Role.OWNER) and not may_grant(Role.ANALYST, Role.AGENT)
    assert not may_grant(Role.VIEWER, Role.INTEGRATION)


def test_require_names_the_missing_permission():
    viewer = Principal("acme", Role.VIEWER, "user", "u", "Vi")
    assert require(viewer, Permission.METRICS_READ) is viewer
    with pytest.raises(Forbidden) as caught:
        require(viewer, Permission.RULES_WRITE)
    assert "'rules:write'" in caught.value.detail and "'viewer'" in caught.value.detail


class _Revoked:
    def __init__(self, *ids: tuple[str, str]) -> None:
        self.ids = set(ids)

    def is_revoked(self, workspace_id: str, key_id: str) -> bool:
        return (workspace_id, key_id) in self.ids


class _Usage:
    def __init__(self) -> None:
        self.noted: list[tuple[str, float]] = []

    def note(self, principal: Principal, now: float) -> None:
        self.noted.append((principal.id, now))


def test_the_authenticator_refuses_revoked_keys_and_notes_key_use():
    usage = _Usage()
    auth = Authenticator(
        Keyring(SECRET), revoked=_Revoked(("acme", "revoked1")), usage=usage, clock=lambda: NOW
    )
    assert auth.authenticate(issue_api_key(SECRET, "acme", key_id="fine0001")).id == "fine0001"
    with pytest.raises(RevokedCredential, match="revoked"):
        auth.authenticate(issue_api_key(SECRET, "acme", key_id="revoked1"))
    person = issue_user_token(
        SECRET, workspace_id="acme", user_id="revoked1", name="n", role=Role.ADMIN, now=NOW
    )
    assert auth.authenticate(person).kind == "user"  # revocation lists keys, not people
    assert usage.noted == [("fine0001", NOW)]


def test_authenticating_and_checking_a_permission_stays_cheap():
    """It runs on every request; bench/access.py measures it properly."""
    auth = Authenticator(Keyring(SECRET), revoked=_Revoked(), clock=time.time)
    key = issue_api_key(SECRET, "acme", role=Role.AGENT)
    started = time.perf_counter()
    for _ in range(2000):
        require(auth.authenticate(key), Permission.CASES_WRITE)
    assert (time.perf_counter() - started) / 2000 < 0.001


# --- the secret key rule ------------------------------------------------------------------------------


def _settings(**values: object) -> ServiceSettings:
    return ServiceSettings(database_url="postgresql://x/y", **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "secret, problem", [(DEV_SECRET_KEY, "not set"), ("", "not set"), ("x" * 31, "shorter than 32 bytes")]
)
def test_outside_development_a_service_refuses_a_missing_or_weak_secret(secret, problem):
    settings = _settings(secret_key=secret, env="production")
    with pytest.raises(InsecureSecretKey, match=problem) as caught:
        settings.check_secret_key(logging.getLogger("test"))
    assert "openssl rand -hex 32" in str(caught.value)


def test_in_development_a_weak_secret_is_only_warned_about(caplog):
    with caplog.at_level(logging.WARNING):
        _settings(secret_key=DEV_SECRET_KEY, env="development").check_secret_key(logging.getLogger("test"))
    assert "never in production" in caplog.text
    _settings(secret_key="x" * 32, env="production").check_secret_key(logging.getLogger("test"))


def test_production_is_the_default():
    assert _settings().env == "production"


def test_a_real_service_does_not_start_in_production_without_the_secret():
    settings = ScoringSettings(
        database_url="postgresql://nobody@127.0.0.1:1/none", env="production", secret_key=""
    )
    app = scoring_app(settings)

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pass

    with pytest.raises(InsecureSecretKey):
        asyncio.run(start())


def test_survey_links_of_the_previous_secret_open_during_a_rotation():
    from shared.survey_links import SurveyLink, issue_link_token, read_link_token

    link = SurveyLink("acme", "inv", "req", "svy", "con")
    token = issue_link_token(OTHER, link)
    with pytest.raises(InvalidToken):
        read_link_token(SECRET, token)
    assert read_link_token(SECRET, token, previous=OTHER) == link

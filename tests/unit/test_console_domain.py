"""The console's pure rules: the password policy, throttling, session lifetimes, the browser's address
behind proxies, and the id_token checks (with keys made here)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from services.console.domain.oidc import IdTokenRefused, pkce_pair, verify_id_token
from services.console.domain.passwords import common_passwords, problems
from services.console.domain.sessions import browser_address, retry_after, session_state
from shared.netguard import parse_networks

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "ik woon in een rood huis",
        "🦙🦙 llamas wear hats 🎩",
        "Tr0ub4dor&3 is too short? no!!",
    ],
)
def test_long_passwords_of_any_characters_are_fine(password):
    assert problems(password, min_length=15) == []


@pytest.mark.parametrize(
    "password, words",
    [
        ("short", "at least 15"),
        ("x" * 300, "at most 256"),
        ("passwordpassword", "commonly used"),
        ("iloveyouiloveyou", "commonly used"),
        ("!!football2024!!!", "commonly used"),
        ("qwertyuiopasdfgh", "sequences"),
        ("1111111111111111", "repeated"),
        ("abababababababab", "repeated"),
        ("0123456789012345", "sequences"),
        ("zyxwvutsrqponmlk", "sequences"),
        ("closeloopcloseloop", "product"),
        ("grace.hopper@acme.example", "email address"),
        ("grace.hoppergrace.hopper", "email address"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(password, words):
    found = problems(password, min_length=15, context=("grace.hopper@acme.example", "Grace Hopper"))
    assert found and words in found[0]


def test_no_composition_rules_and_unicode_is_normalised():
    assert problems("all lower case words here", min_length=15) == []
    assert problems("ｆｕｌｌｗｉｄｔｈ　ｐａｓｓｗｏｒｄ", min_length=15) == []  # NFKC: "fullwidth password"
    assert problems("ｐａｓｓｗｏｒｄｐａｓｓｗｏｒｄ", min_length=8)  # the same as passwordpassword


def test_the_shipped_list_is_loaded_and_lower_case():
    common = common_passwords()
    assert len(common) >= 29_000 and "123456" in common and "password" in common
    assert all(p == p.lower() for p in list(common)[:1000])


def test_eight_characters_when_an_operator_allows_it():
    assert problems("ten lilac ducks", min_length=8) == []


def test_throttling_waits_until_the_oldest_counted_failure_leaves_the_window():
    window = timedelta(minutes=15)
    failures = [T0 - timedelta(minutes=m) for m in (20, 10, 5, 1)]
    assert retry_after(failures, now=T0, window=window, limit=4) is None  # the 20-minute-old one is out
    assert retry_after(failures, now=T0, window=window, limit=3) == 5 * 60
    assert retry_after(failures[:1], now=T0, window=window, limit=1) is None


def test_a_session_is_active_until_idle_or_past_its_end():
    idle = timedelta(minutes=30)
    end = T0 + timedelta(hours=12)
    assert (
        session_state(last_seen_at=T0, expires_at=end, now=T0 + timedelta(minutes=29), idle=idle) == "active"
    )
    assert session_state(last_seen_at=T0, expires_at=end, now=T0 + timedelta(minutes=30), idle=idle) == "idle"
    assert session_state(last_seen_at=end, expires_at=end, now=end, idle=idle) == "expired"


def test_the_browsers_address_behind_trusted_proxies():
    proxies = parse_networks("10.0.0.0/8")
    assert browser_address("203.0.113.9", "1.2.3.4", proxies) == "203.0.113.9"  # not from a proxy: ignored
    assert browser_address("10.1.1.1", "198.51.100.7", proxies) == "198.51.100.7"
    assert browser_address("10.1.1.1", "6.6.6.6, 198.51.100.7, 10.2.2.2", proxies) == "198.51.100.7"
    assert browser_address("10.1.1.1", "", proxies) == "10.1.1.1"
    assert browser_address("10.1.1.1", "", ()) == "10.1.1.1"


# --- id_token checks ---------------------------------------------------------------------------------

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
JWKS = {"keys": [{**jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key(), as_dict=True), "kid": "k1"}]}
ISSUER, CLIENT = "https://id.example", "console"


def _token(key=KEY, kid="k1", alg="RS256", **changes) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": CLIENT,
        "sub": "s1",
        "exp": now + 60,
        "iat": now,
        "nonce": "n1",
        "email": "Ada@Example.org",
        "email_verified": True,
        **changes,
    }
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(
        claims,
        key if alg == "RS256" else "secret-for-hs256-is-long-enough-yes",
        algorithm=alg,
        headers={"kid": kid},
    )


def _verify(token: str):
    return verify_id_token(token, jwks=JWKS, issuer=ISSUER, client_id=CLIENT, nonce="n1", now=time.time())


def test_a_good_id_token_names_the_person():
    identity = _verify(_token())
    assert (identity.issuer, identity.subject, identity.email) == (ISSUER, "s1", "ada@example.org")
    assert _verify(_token(aud=[CLIENT, "other"], azp=CLIENT)).subject == "s1"
    assert _verify(_token(email_verified="true")).subject == "s1"  # some providers send a string


@pytest.mark.parametrize(
    "token, reason",
    [
        (lambda: _token(aud="other"), "audience"),
        (lambda: _token(aud=[CLIENT, "other"]), "audience"),  # several audiences and no azp
        (lambda: _token(iss="https://evil.example"), "issuer"),
        (lambda: _token(exp=int(time.time()) - 61), "expired"),
        (lambda: _token(exp=None), "expired"),
        (lambda: _token(nonce="n2"), "nonce"),
        (lambda: _token(nonce=None), "nonce"),
        (lambda: _token(email_verified=False), "email"),
        (lambda: _token(email_verified=None), "email"),
        (lambda: _token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048)), "signature"),
        (lambda: _token(kid="k2"), "unknown-key"),
        (lambda: _token(alg="HS256"), "signature"),
        (lambda: "not.a.token", "malformed"),
    ],
)
def test_an_id_token_failing_a_check_is_refused_naming_it(token, reason):
    with pytest.raises(IdTokenRefused) as caught:
        _verify(token())
    assert caught.value.reason == reason


def test_pkce_uses_s256():
    import base64
    import hashlib

    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128
    assert (
        challenge
        == base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


def test_an_unknown_account_costs_a_sign_in_as_much_as_a_wrong_password():
    """The dummy hash: without it an unknown address would answer at once and give itself away."""
    import asyncio
    import statistics

    from services.console.hashing import Passwords
    from services.console.settings import ConsoleSettings

    settings = ConsoleSettings(
        database_url="postgresql://x/y", argon2_time_cost=1, argon2_memory_kib=16384, argon2_parallelism=1
    )  # type: ignore[call-arg]
    passwords = Passwords(settings)
    stored = asyncio.run(passwords.hash("the right password here"))

    def timed(hash_: str | None) -> float:
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            assert asyncio.run(passwords.verify(hash_, "a wrong password here")) is False
            runs.append(time.perf_counter() - started)
        return statistics.median(runs)

    wrong, unknown = timed(stored), timed(None)
    assert 1 / 3 < unknown / wrong < 3, (unknown, wrong)
    assert asyncio.run(passwords.verify(stored, "the right password here")) is True

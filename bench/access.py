"""What checking a caller costs per request, in microseconds: verifying the credential (an API key of
today's format, a user token, a key of the first format) and checking a permission — the work every
authenticated request of every service does — and the same through a FastAPI route, against an
identical route without the check (the route is guarded as every service's routes are: ``shared.guard``).

    python -m bench.access [--rounds 5] [--n 20000]

Each figure is the median of ``--rounds`` rounds of ``--n`` calls (the machine is shared; the median
round is the steadiest). Nothing here touches the network or a database.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from fastapi import APIRouter, FastAPI

from shared.access import (
    Authenticator,
    Keyring,
    Permission,
    Principal,
    Role,
    issue_api_key,
    issue_user_token,
    require,
    verify_credential,
)
from shared.errors import install_problem_handlers
from shared.guard import GuardedRoute, public, requires
from shared.security import mac

SECRET = "bench-secret-" + "x" * 40


class Revoked:
    """What ``shared.revocation.RevokedKeys`` is at request time: a set lookup."""

    def __init__(self) -> None:
        self.ids = {("acme", f"revoked{i:04d}") for i in range(1000)}

    def is_revoked(self, workspace_id: str, key_id: str) -> bool:
        return (workspace_id, key_id) in self.ids


class Usage:
    """What ``shared.revocation.KeyUsage.note`` does at request time: a dictionary write."""

    def __init__(self) -> None:
        self.pending: dict[tuple[str, str], int] = {}
        self.published: dict[tuple[str, str], int] = {}

    def note(self, principal: Principal, now: float) -> None:
        minute = int(now // 60)
        key = (principal.workspace_id, principal.id)
        if self.published.get(key) != minute:
            self.pending[key] = minute


def per_call_us(fn: Callable[[], Any], n: int, rounds: int) -> float:
    """Return the median over ``rounds`` of the mean µs per call of ``fn``."""
    results = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(n):
            fn()
        results.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(results)


def app(*, check: bool, authenticator: Authenticator) -> FastAPI:
    """A service-like app with one route: guarded as every service's routes are (``shared.guard``:
    ``GuardedRoute`` and ``requires``, the caller handed to the route), or without any check."""
    application = FastAPI()
    install_problem_handlers(application)
    application.state.runtime = SimpleNamespace(authenticator=authenticator)
    router = APIRouter(route_class=GuardedRoute)
    if check:

        @router.get("/v1/cases")
        async def cases_checked(principal: Principal = requires(Permission.CASES_WRITE)) -> dict[str, str]:
            return {"ok": principal.workspace_id}

    else:

        @router.get("/v1/cases", dependencies=[public("the bench's baseline")])
        async def cases() -> dict[str, str]:
            return {"ok": "acme"}

    application.include_router(router)
    return application


CREDENTIAL: dict[str, str] = {}


async def route_us(application: FastAPI, n: int, rounds: int) -> float:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/v1/cases",
        "raw_path": b"/v1/cases",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"authorization", f"Bearer {CREDENTIAL['key']}".encode())],
        "client": ("127.0.0.1", 1),
        "server": ("bench", 80),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    results = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(n):
            await application(dict(scope), receive, send)  # a fresh scope (and state) per request
        results.append((time.perf_counter() - started) / n * 1e6)
    assert set(statuses) == {200}, set(statuses)
    return statistics.median(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args(argv)
    keyring = Keyring(SECRET)
    now = time.time()
    key = issue_api_key(keyring, "acme", role=Role.AGENT, expires_at=int(now) + 86400)
    user = issue_user_token(
        keyring, workspace_id="acme", user_id="u-1", name="Ada Lovelace", role=Role.AGENT, now=now
    )
    legacy = f"clk_acme.legacy01.{mac(SECRET, 'api-key', 'acme.legacy01')}"
    rotating = Keyring(SECRET + "-new", previous=SECRET)
    CREDENTIAL["key"] = key
    authenticator = Authenticator(keyring, revoked=Revoked(), usage=Usage())
    verify_credential(keyring, legacy, now=now)  # its one-off warning, outside the timing

    rows = [
        ("verify an API key", lambda: verify_credential(keyring, key, now=now)),
        ("verify a user token", lambda: verify_credential(keyring, user, now=now)),
        ("verify a key of the first format", lambda: verify_credential(keyring, legacy, now=now)),
        (
            "verify a key during a secret rotation (2nd secret)",
            lambda: verify_credential(rotating, key, now=now),
        ),
        (
            "check a permission",
            lambda: require(verify_credential(keyring, key, now=now), Permission.CASES_WRITE),
        ),
        (
            "authenticate + revocation + usage + permission (per request)",
            lambda: require(authenticator.authenticate(key), Permission.CASES_WRITE),
        ),
    ]
    print(f"bench.access — median of {args.rounds} rounds × {args.n:,} calls, µs per call", flush=True)
    print(f"{'what':<64} {'µs':>8}")
    for name, fn in rows:
        print(f"{name:<64} {per_call_us(fn, args.n, args.rounds):>8.2f}", flush=True)
    checked = asyncio.run(route_us(app(check=True, authenticator=authenticator), args.n // 4, args.rounds))
    bare = asyncio.run(route_us(app(check=False, authenticator=authenticator), args.n // 4, args.rounds))
    print(f"{'FastAPI route guarded as the services are (ASGI call, in process)':<64} {checked:>8.2f}")
    print(f"{'the same route without it':<64} {bare:>8.2f}")
    print(f"{'  the check costs the route':<64} {checked - bare:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

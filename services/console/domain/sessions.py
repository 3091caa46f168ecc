"""How long a session and a sign-in lasts, and when one is throttled: pure rules over times."""

from __future__ import annotations

import hashlib
import ipaddress
import math
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

SessionState = Literal["active", "idle", "expired"]
TOUCH_EVERY = timedelta(seconds=60)
"""A session's ``last_seen_at`` is written at most this often (not on every request)."""


def new_token() -> str:
    """Return a fresh random token for a cookie or a link (256 bits)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Return what the database keeps of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def session_state(
    *, last_seen_at: datetime, expires_at: datetime, now: datetime, idle: timedelta
) -> SessionState:
    """Return whether a session is active, ended by being idle, or past its absolute end."""
    if now >= expires_at:
        return "expired"
    if now - last_seen_at >= idle:
        return "idle"
    return "active"


def needs_touch(last_seen_at: datetime, now: datetime) -> bool:
    """Whether to record that the session was used now."""
    return now - last_seen_at >= TOUCH_EVERY


def retry_after(failures: Sequence[datetime], *, now: datetime, window: timedelta, limit: int) -> int | None:
    """Return the seconds until one more attempt is allowed, or None when it is allowed now.

    ``failures`` are the failed attempts of one account or address, in any order. At ``limit`` failures
    within ``window`` the next attempt waits until the oldest of the newest ``limit`` leaves the window.
    """
    recent = sorted(f for f in failures if now - f < window)
    if len(recent) < limit:
        return None
    oldest_that_counts = recent[-limit]
    return max(1, math.ceil((oldest_that_counts + window - now).total_seconds()))


def browser_address(
    peer: str, forwarded_for: str, trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> str:
    """Return the browser's address: ``peer`` (the connection's), or when ``peer`` is a trusted proxy the
    last address of ``X-Forwarded-For`` that is not one (the proxies append; a client can only forge
    what stands before them)."""
    hops = [a.strip() for a in forwarded_for.split(",") if a.strip()]
    for address in [peer, *reversed(hops)]:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return address[:80]
        if not any(ip in network for network in trusted):
            return address
    return hops[0] if hops else peer

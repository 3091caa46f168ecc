"""How long a session and a sign-in lasts, and when one is throttled: pure rules over times."""

from __future__ import annotations

import hashlib
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

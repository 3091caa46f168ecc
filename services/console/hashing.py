"""Password hashing with argon2id, off the event loop (a hash takes tens of milliseconds of CPU).

A sign-in for an account that does not exist (or has no password) verifies against a dummy hash with
the same parameters, so that its answer takes as long as a wrong password's: the timing tells nobody
which email addresses have accounts.
"""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from services.console.domain.passwords import normalise
from services.console.settings import ConsoleSettings


class Passwords:
    def __init__(self, settings: ConsoleSettings) -> None:
        self.hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            type=Type.ID,
        )
        self._dummy = self.hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        """Return the argon2id hash of ``password`` (normalised)."""
        return await asyncio.to_thread(self.hasher.hash, normalise(password))

    async def verify(self, stored: str | None, password: str) -> bool:
        """Return whether ``password`` matches ``stored``; with no stored hash, spend the same time and
        return False."""
        try:
            return await asyncio.to_thread(
                self.hasher.verify, stored or self._dummy, normalise(password)
            ) and (stored is not None)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was hashed with other parameters than today's (it is rehashed at sign-in)."""
        return self.hasher.check_needs_rehash(stored)

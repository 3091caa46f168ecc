"""HubSpot's CRM API, for the one thing its webhooks leave out: who a deal or ticket belongs to.

A ``deal.*`` or ``ticket.*`` webhook names only the object. With a private-app access token on the
integration, the object's first associated contact is looked up (CRM associations v4) and cached;
without one, such events are stored with no contact and trigger nothing.
"""

from __future__ import annotations

import time

import httpx


class HubSpotUnavailable(RuntimeError):
    """HubSpot could not answer now (rate limit, outage): the webhook should be retried later."""


class HubSpotClient:
    def __init__(self, http: httpx.AsyncClient, *, base_url: str, ttl_s: float = 600) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.ttl_s = ttl_s
        self._cache: dict[tuple[str, str, str], tuple[float, str | None]] = {}

    async def associated_contact(self, *, token: str, object_type: str, object_id: str) -> str | None:
        """Return the HubSpot id of the object's first associated contact, or None if it has none."""
        key = (token[-12:], object_type, object_id)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        url = f"{self.base_url}/crm/v4/objects/{object_type}/{object_id}/associations/contacts"
        try:
            response = await self.http.get(
                url, headers={"Authorization": f"Bearer {token}"}, params={"limit": 1}
            )
        except httpx.HTTPError as exc:
            raise HubSpotUnavailable(f"HubSpot did not answer: {exc}") from exc
        if response.status_code == 404:
            contact = None
        elif response.status_code == 429 or response.status_code >= 500:
            raise HubSpotUnavailable(f"HubSpot answered {response.status_code}")
        elif response.status_code >= 400:
            raise HubSpotUnavailable(
                f"HubSpot refused the lookup ({response.status_code}); check the access token"
            )
        else:
            results = response.json().get("results") or []
            contact = str(results[0]["toObjectId"]) if results else None
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[key] = (time.monotonic() + self.ttl_s, contact)
        return contact

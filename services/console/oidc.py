"""The console's HTTP client for OpenID Connect providers: discovery, keys, and the token exchange.

A provider's URLs are set by a tenant, so every request goes through ``shared.netguard`` (public
addresses only, unless the operator allows a network with ``CLOSELOOP_OUTBOUND_ALLOW_NETWORKS``), with
no redirects followed. Discovery documents and key sets are cached for ``ttl_s``; a token signed with
a key id the cache does not know refetches the key set once (the provider rotated its keys).
"""

from __future__ import annotations

import base64
import time
from typing import Any
from urllib.parse import quote

import httpx

from shared.netguard import BlockedDestination, OutboundGuard, guarded_client


class ProviderError(Exception):
    """The provider could not be reached or answered something unusable; the message says which."""


class OidcClient:
    def __init__(self, guard: OutboundGuard, *, timeout_s: float = 10.0, ttl_s: float = 3600.0) -> None:
        self.guard = guard
        self.http = guarded_client(guard, timeout=timeout_s)
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    async def close(self) -> None:
        await self.http.aclose()

    async def _get_json(self, url: str, *, fresh: bool = False) -> dict[str, Any]:
        cached = self._cache.get(url)
        if cached and not fresh and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        try:
            await self.guard.check_url(url)
            response = await self.http.get(url, headers={"accept": "application/json"})
        except (BlockedDestination, httpx.HTTPError) as exc:
            raise ProviderError(f"could not read {url}: {exc}") from exc
        if response.status_code != 200:
            raise ProviderError(f"{url} answered {response.status_code}")
        try:
            document = response.json()
        except ValueError as exc:
            raise ProviderError(f"{url} did not answer JSON") from exc
        if not isinstance(document, dict):
            raise ProviderError(f"{url} did not answer a JSON object")
        self._cache[url] = (time.monotonic(), document)
        return document

    async def discover(self, issuer: str) -> dict[str, Any]:
        """Return the provider's discovery document, checked: its ``issuer`` is ``issuer`` exactly and it
        names the endpoints the console uses."""
        document = await self._get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
        if document.get("issuer") != issuer:
            raise ProviderError(
                f"the discovery document names the issuer {document.get('issuer')!r}, not {issuer!r}"
            )
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(name), str):
                raise ProviderError(f"the discovery document has no {name}")
        return document

    async def jwks(self, document: dict[str, Any], *, fresh: bool = False) -> dict[str, Any]:
        """Return the provider's key set."""
        keys = await self._get_json(document["jwks_uri"], fresh=fresh)
        if not isinstance(keys.get("keys"), list):
            raise ProviderError("the key set has no keys")
        return keys

    async def exchange(
        self,
        document: dict[str, Any],
        *,
        code: str,
        redirect_uri: str,
        client_id: str,
        client_secret: str | None,
        code_verifier: str,
    ) -> str:
        """Return the ``id_token`` the token endpoint gives for ``code`` (with the PKCE verifier)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        headers = {"accept": "application/json"}
        if client_secret and "client_secret_basic" in methods:
            # RFC 6749 2.3.1: both form-encoded before they are joined and base64-encoded.
            pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
            headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form["client_id"] = client_id
            if client_secret:
                form["client_secret"] = client_secret
        try:
            await self.guard.check_url(document["token_endpoint"])
            response = await self.http.post(document["token_endpoint"], data=form, headers=headers)
        except (BlockedDestination, httpx.HTTPError) as exc:
            raise ProviderError(f"could not reach the token endpoint: {exc}") from exc
        if response.status_code != 200:
            raise ProviderError(f"the token endpoint answered {response.status_code}: {response.text[:200]}")
        try:
            id_token = response.json().get("id_token")
        except (ValueError, AttributeError) as exc:
            raise ProviderError("the token endpoint did not answer JSON") from exc
        if not isinstance(id_token, str):
            raise ProviderError("the token endpoint's answer has no id_token")
        return id_token

"""How the console's pages reach the five services: their public REST APIs, with a short-lived user token
for the signed-in person (``shared.access.issue_user_token``), so every service checks that person's role
itself. The console owns no feedback data and reads none of the services' tables.

A service that does not answer, or answers with an error, raises ``ServiceError`` with the service's
own problem detail; pages show it instead of a figure (never a made-up zero).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from services.console.handlers.accounts import SignedIn, token_for
from services.console.settings import ConsoleSettings

Service = Literal["trigger", "dispatch", "responses", "scoring", "followup"]
Params = Mapping[str, str | int | float | bool | Sequence[str] | None]


class ServiceError(Exception):
    """A service refused or did not answer: ``status`` (0 when unreachable), its explanation and the
    problem's ``errors`` (``[{field, message}]``, each naming a field of the request's body)."""

    def __init__(
        self, service: str, status: int, detail: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(f"{service}: {status} {detail}")
        self.service, self.status, self.detail = service, status, detail
        self.errors = errors or []


class Services:
    """One HTTP client for the console's calls to the services (built in the lifespan, closed there)."""

    def __init__(
        self, settings: ConsoleSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.base = {
            "trigger": settings.trigger_url.rstrip("/"),
            "dispatch": settings.dispatch_url.rstrip("/"),
            "responses": settings.responses_url.rstrip("/"),
            "scoring": settings.scoring_url.rstrip("/"),
            "followup": settings.followup_url.rstrip("/"),
        }
        self.http = httpx.AsyncClient(
            timeout=settings.service_timeout_s,
            transport=transport,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=40),
        )

    async def close(self) -> None:
        await self.http.aclose()

    def as_person(self, person: SignedIn) -> Caller:
        """Return a caller that speaks for ``person`` with a user token minted now."""
        token = token_for(self.settings, person, now=time.time())
        return Caller(self, {"Authorization": f"Bearer {token}"})


@dataclass
class Caller:
    services: Services
    headers: dict[str, str]

    async def call(
        self,
        service: Service,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
    ) -> Any:
        """Return the JSON answer of ``method path`` on ``service`` (None for 204); raise ``ServiceError``."""
        url = self.services.base[service] + path
        clean = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        try:
            response = await self.services.http.request(
                method, url, params=clean, json=json, headers=self.headers
            )
        except httpx.HTTPError as exc:
            raise ServiceError(service, 0, f"{service} did not answer ({type(exc).__name__}).") from exc
        if response.status_code >= 400:
            raise ServiceError(service, response.status_code, _detail(response), _errors(response))
        if response.status_code == 204 or not response.content:
            return None
        if "json" not in response.headers.get("content-type", ""):
            return response.text
        return response.json()

    async def get(self, service: Service, path: str, **params: Any) -> Any:
        return await self.call(service, "GET", path, params=params)

    async def post(self, service: Service, path: str, body: Any = None) -> Any:
        return await self.call(service, "POST", path, json=body if body is not None else {})

    async def put(self, service: Service, path: str, body: Any) -> Any:
        return await self.call(service, "PUT", path, json=body)

    async def delete(self, service: Service, path: str) -> Any:
        return await self.call(service, "DELETE", path)

    async def gather(self, **calls: Any) -> dict[str, Any]:
        """Await the named calls at once; each value is its answer, or the ``ServiceError`` it raised."""
        names = list(calls)
        results = await asyncio.gather(*calls.values(), return_exceptions=True)
        out: dict[str, Any] = {}
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, ServiceError):
                raise result
            out[name] = result
        return out


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return []
    found = body.get("errors") if isinstance(body, dict) else None
    return [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        errors = body.get("errors") or []
        fields = ", ".join(str(e.get("field")) for e in errors if isinstance(e, dict) and e.get("field"))
        detail = str(body.get("detail") or body.get("title") or response.reason_phrase)
        return f"{detail} ({fields})" if fields and fields not in detail else detail
    return str(body)[:300]

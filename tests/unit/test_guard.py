"""The one enforcement point: every route of every service declares its access, a route that declares
nothing fails closed, and the check happens before the body is read."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

from closeloop.cli import offline_app
from closeloop.stack import SERVICE_PORTS
from shared.access import Authenticator, Keyring, Permission, Role, issue_api_key
from shared.errors import install_problem_handlers
from shared.guard import GuardedRoute, public, requires, route_access, undeclared

SECRET = "guard-test-secret-" + "x" * 32
FASTAPI_DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/docs/assets"}
"""FastAPI's docs and their offline assets (``shared.apidocs``): public, outside the guard."""


@pytest.mark.parametrize("service", list(SERVICE_PORTS))
def test_every_route_of_every_service_declares_who_may_call_it(service: str):
    app = offline_app(service)
    assert undeclared(app) == [], f"{service}: declare requires(...), authenticated() or public(why)"
    others = {
        getattr(c.original_route, "path", "?")
        for c in iter_route_contexts(app.routes)
        if not isinstance(c.original_route, APIRoute)
    }
    assert others <= FASTAPI_DOCS, f"{service}: routes the guard cannot see: {others - FASTAPI_DOCS}"
    declared = {(method, path): access for method, path, access, _ in route_access(app)}
    assert len(declared) >= 10
    for path in ("/healthz", "/readyz", "/metrics"):
        assert declared[("GET", path)].kind == "public"


def test_the_webhooks_trigger_answers_in_front_of_fastapi_are_public_in_its_openapi():
    document = offline_app("trigger").openapi()
    webhooks = [
        op
        for path, item in document["paths"].items()
        if path.startswith("/v1/webhooks/")
        for op in item.values()
    ]
    assert len(webhooks) == 5
    assert all(
        op["x-permission"] == "public" and "signs each request" in op["description"] for op in webhooks
    )
    assert document["paths"]["/v1/events"]["post"]["x-permission"] == "events:write"


class Body(BaseModel):
    name: str


def app_with(router: APIRouter) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(router)
    app.state.runtime = SimpleNamespace(authenticator=Authenticator(Keyring(SECRET)))
    return app


async def call(app: FastAPI, method: str, path: str, role: Role | None, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {issue_api_key(SECRET, 'acme', role=role)}"} if role else {}
    headers.update(kwargs.pop("headers", {}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await client.request(method, path, headers=headers, **kwargs)


async def test_a_route_that_declares_nothing_is_listed_and_takes_owner_and_admin_credentials_only():
    router = APIRouter(route_class=GuardedRoute)

    @router.get("/forgotten")
    async def forgotten() -> dict[str, str]:
        return {"ok": "yes"}

    app = app_with(router)
    assert undeclared(app) == ["GET /forgotten"]
    assert (await call(app, "GET", "/forgotten", None)).status_code == 401
    assert (await call(app, "GET", "/forgotten", Role.ADMIN)).status_code == 200
    refused = await call(app, "GET", "/forgotten", Role.ANALYST)
    assert refused.status_code == 403 and "declares no permission" in refused.json()["detail"]


async def test_the_check_comes_before_the_body_is_read_and_the_route_gets_the_caller():
    router = APIRouter(route_class=GuardedRoute)
    seen = []

    @router.post("/rules", dependencies=[requires(Permission.RULES_WRITE)])
    async def make(body: Body) -> dict[str, str]:
        seen.append(body.name)
        return {"name": body.name}

    app = app_with(router)
    broken = {"content": b"{not json", "headers": {"content-type": "application/json"}}
    assert (await call(app, "POST", "/rules", None, **broken)).status_code == 401
    forbidden = await call(app, "POST", "/rules", Role.VIEWER, **broken)
    assert forbidden.status_code == 403 and "'rules:write'" in forbidden.json()["detail"]
    assert (await call(app, "POST", "/rules", Role.ADMIN, **broken)).status_code in (400, 422)
    assert (await call(app, "POST", "/rules", Role.ADMIN, json={"name": "r"})).json() == {"name": "r"}
    assert seen == ["r"]


def test_a_route_cannot_declare_two_different_things():
    router = APIRouter(route_class=GuardedRoute)
    with pytest.raises(ValueError, match="declares"):

        @router.get("/both", dependencies=[requires(Permission.RULES_READ), public("why not")])
        async def both() -> None:
            return None


def test_a_router_without_the_guard_is_listed_even_when_its_routes_declare():
    router = APIRouter()

    @router.get("/unguarded", dependencies=[requires(Permission.RULES_READ)])
    async def unguarded() -> None:
        return None

    assert undeclared(app_with(router)) == ["GET /unguarded"]

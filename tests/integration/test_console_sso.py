"""Single sign-on end to end against an OpenID Connect provider of the tests' own on 127.0.0.1 (reached
through ``shared.netguard`` with 127.0.0.0/8 allowed): a good sign-in, and the id_tokens the console
must refuse — another audience, expired, a bad signature, an unverified email — plus the state's
binding to the browser and just-in-time membership by email domain."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from services.console.app import create_app
from services.console.settings import ConsoleSettings
from tests.support.console import FAST_HASHING, create_workspace, session_token, sign_in
from tests.support.oidc import Person, Provider, oidc_provider
from tests.support.stack import settings_from

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def provider() -> AsyncIterator[Provider]:
    async with oidc_provider() as p:
        yield p


@pytest.fixture(scope="module")
async def app(stack_env: dict[str, str]) -> AsyncIterator[Any]:
    settings = settings_from(
        ConsoleSettings, stack_env, **FAST_HASHING, outbound_allow_networks="127.0.0.0/8,::1/128"
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


def browser(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test")


async def owner_sets_sso(app: Any, workspace: str, owner: str, sso: dict[str, Any]) -> httpx.Response:
    """Create ``workspace`` owned by ``owner``, sign in as them and ``PUT /v1/sso``; return the answer."""
    async with browser(app) as client:
        made = await create_workspace(client, workspace, owner=owner)
        await sign_in(client, made["owner_email"], made["password"])
        token = await session_token(client)
        return await client.put("/v1/sso", json=sso, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
async def sso_workspace(app: Any, provider: Provider, workspace: str) -> str:
    """A workspace whose owner set up single sign-on: example.org joins as analyst."""
    sso = {
        "issuer": provider.url,
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
        "allowed_domains": ["Example.org"],
        "default_role": "analyst",
    }
    saved = await owner_sets_sso(app, workspace, f"owner-{workspace}@example.com", sso)
    assert saved.status_code == 200, saved.text
    assert saved.json()["allowed_domains"] == ["example.org"]
    assert saved.json()["redirect_uri"].endswith("/sso/callback")
    return workspace


@pytest.fixture(autouse=True)
def _good_tokens(provider: Provider) -> None:
    provider.next_claims, provider.sign_with_another_key = {}, False


async def single_sign_on(
    app: Any, provider: Provider, workspace: str, browser_client: httpx.AsyncClient
) -> httpx.Response:
    """Do what a browser does: choose the workspace, go to the provider, come back; return the callback's answer."""
    choose = await browser_client.get("/sso", params={"workspace": workspace})
    assert choose.status_code == 200 and f'href="/sso/start/{workspace}"' in choose.text
    start = await browser_client.get(f"/sso/start/{workspace}")
    assert start.status_code == 302
    authorize = start.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(provider.url + "/authorize?")
    assert query["code_challenge_method"] == ["S256"] and query["scope"] == ["openid email profile"]
    async with httpx.AsyncClient() as outside:  # the browser at the provider: signed in at once
        back = await outside.get(authorize)
    assert back.status_code == 302, back.text
    callback = urlsplit(back.headers["location"])
    return await browser_client.get(f"{callback.path}?{callback.query}")


async def test_a_person_signs_in_with_the_provider_and_joins_with_the_default_role(
    app, provider, sso_workspace
):
    provider.person = Person(email=f"grace-{sso_workspace}@example.org", name="Grace Hopper")
    async with browser(app) as grace:
        done = await single_sign_on(app, provider, sso_workspace, grace)
        assert done.status_code == 303 and done.headers["location"] == "/", done.text
        home = await grace.get("/")
        assert f"signed in to <strong>{sso_workspace}</strong> as <strong>analyst</strong>" in home.text
        assert "Grace Hopper" in home.text
    assert provider.token_requests[-1]["authorization"].startswith("Basic ")
    async with browser(app) as again:  # the second time she is found by her identity at the issuer
        assert (await single_sign_on(app, provider, sso_workspace, again)).status_code == 303


@pytest.mark.parametrize(
    "wrong, reason",
    [
        ({"aud": "another-application"}, "issued for another application"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "has expired"),
        ({"email_verified": False}, "not verified"),
        ({"iss": "https://evil.example"}, "another issuer"),
        ({"nonce": "not-this-sign-in"}, "another sign-in"),
        ("bad signature", "signature did not verify"),
    ],
)
async def test_an_id_token_that_fails_a_check_is_refused(app, provider, sso_workspace, wrong, reason):
    provider.person = Person(email=f"mallory-{sso_workspace}@example.org")
    if wrong == "bad signature":
        provider.sign_with_another_key = True
    else:
        provider.next_claims = dict(wrong)
    async with browser(app) as mallory:
        refused = await single_sign_on(app, provider, sso_workspace, mallory)
        assert refused.status_code == 403
        assert reason in refused.text
        assert "closeloop_session" not in refused.headers.get("set-cookie", "")
        assert (await mallory.get("/")).headers.get("location") == "/sign-in"


async def test_an_email_domain_that_is_not_allowed_does_not_join(app, provider, sso_workspace):
    provider.person = Person(email=f"eve-{sso_workspace}@elsewhere.example")
    async with browser(app) as eve:
        refused = await single_sign_on(app, provider, sso_workspace, eve)
    assert refused.status_code == 403 and "ask an owner to invite you" in refused.text


async def test_a_sign_in_finishes_only_in_the_browser_that_started_it(app, provider, sso_workspace):
    provider.person = Person(email=f"ann-{sso_workspace}@example.org")
    async with browser(app) as first:
        start = await first.get(f"/sso/start/{sso_workspace}")
    async with httpx.AsyncClient() as outside:
        back = await outside.get(start.headers["location"])
    callback = urlsplit(back.headers["location"])
    async with browser(app) as other:  # no state cookie: a link someone else was sent
        refused = await other.get(f"{callback.path}?{callback.query}")
    assert refused.status_code == 403 and "another browser" in refused.text


async def test_a_provider_at_a_private_address_cannot_be_configured(app, workspace):
    sso = {"issuer": "http://10.20.30.40", "client_id": "x"}
    refused = await owner_sets_sso(app, workspace, f"o-{workspace}@example.com", sso)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "issuer"
    assert re.search(r"non-public|private", refused.json()["detail"])


async def test_a_workspace_without_single_sign_on_says_so(app, workspace):
    async with browser(app) as someone:
        page = await someone.get("/sso", params={"workspace": workspace})
    assert page.status_code == 404 and "does not use single sign-on" in page.text

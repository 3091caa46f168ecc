"""Every service's /docs (Swagger UI) and /redoc work offline: the pages name no other origin, and every
script, stylesheet and icon they load is served by the service itself (from the installed package)."""

from __future__ import annotations

import importlib
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.integration.test_access_routes import APPS
from tests.support.stack import running

pytestmark = pytest.mark.integration
LOADED = re.compile(r"""(?:src|href|url)\s*[=:(]\s*['"]([^'"]+)['"]""")


@pytest.fixture(params=list(APPS))
async def service(request, settings_for) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    name = request.param
    module = importlib.import_module(f"services.{name}.app")
    settings_cls = getattr(importlib.import_module(f"services.{name}.settings"), APPS[name])
    async with running(module.create_app(settings_for(settings_cls, role="api"))) as client:
        yield name, client


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_api_docs_load_nothing_from_another_origin(service, page):
    name, client = service
    answer = await client.get(page)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    html = answer.text
    assert "cdn." not in html and "fonts.googleapis" not in html, f"{name}{page} names a CDN"
    assert not re.search(r"""['"]https?://""", html), f"{name}{page} names another origin"
    loaded = [u for u in LOADED.findall(html) if not u.startswith("data:")]
    assert any(u.endswith(".js") for u in loaded), loaded
    for url in loaded:
        asset = await client.get(url)
        assert asset.status_code == 200 and asset.content, f"{name}: {url} → {asset.status_code}"
    spec = await client.get("/openapi.json")
    assert spec.status_code == 200 and spec.json()["paths"]

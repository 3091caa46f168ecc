"""Every service, not only those with pages: each HTML answer — the API docs (``/docs``, ``/redoc``) —
and each JSON or problem document forbids framing and sniffing and sends no Referer
(``shared.headers.SecurityHeaders``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from shared.vocabulary import STACK_SERVICES
from tests.support.apps import api_alone


@pytest.fixture(params=STACK_SERVICES)
async def client(request, settings_for) -> AsyncIterator[httpx.AsyncClient]:
    async with api_alone(request.param, settings_for) as client:
        yield client


async def test_the_docs_pages_json_and_refusals_of_every_service_are_locked_down(client):
    answers = {
        "/docs": await client.get("/docs"),
        "/redoc": await client.get("/redoc"),
        "/openapi.json": await client.get("/openapi.json"),
        "a refusal": await client.get("/v1/no-such-route"),
        "unauthenticated": await client.get("/v1/settings"),
    }
    for what in ("/docs", "/redoc"):
        assert answers[what].status_code == 200 and answers[what].headers["content-type"].startswith(
            "text/html"
        ), what
    for what, response in answers.items():
        csp = response.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in csp, (what, csp)
        assert response.headers.get("x-content-type-options") == "nosniff", what
        assert response.headers.get("referrer-policy") == "no-referrer", what
        if not response.headers.get("content-type", "").startswith("text/html"):
            assert "default-src 'none'" in csp, (what, csp)

"""Helpers for the responses service's tests: surveys made through the API, signed survey links, and a real
HTTP server for a browser."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from closeloop.infra import free_port
from shared.survey_links import SurveyLink, issue_link_token
from tests.conftest import SECRET_KEY


async def create_survey(
    client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    """Return the survey ``body`` as ``POST /v1/surveys`` created it (the test fails on any answer but 201)."""
    response = await client.post("/v1/surveys", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return dict(response.json())


def link_for(
    workspace: str, survey_id: str, *, ttl_s: int = 3600, context: dict[str, str] | None = None, **fields: Any
) -> tuple[str, SurveyLink]:
    """Return a signed survey link token (and the link) as dispatch would issue it."""
    link = SurveyLink(
        **{
            "workspace_id": workspace,
            "invitation_id": str(uuid.uuid4()),
            "request_id": str(uuid.uuid4()),
            "survey_id": survey_id,
            "contact_id": str(uuid.uuid4()),
            "kind": "transactional",
            "channel": "email",
            "locale": "en",
            "context": context or {},
            **fields,
        }
    )
    return issue_link_token(SECRET_KEY, link, ttl_s=ttl_s), link


def plain(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return event answers without their optional fields."""
    return [{k: a[k] for k in ("question_id", "type", "value")} for a in answers]


@asynccontextmanager
async def serve(app: FastAPI, *, port: int | None = None) -> AsyncIterator[str]:
    """Run ``app`` (with its lifespan) on a real uvicorn server on ``port`` (default a free one); yield its
    base URL. Pass the port when the app must know its own URL (dispatch's short links).

    The in-process httpx transport cannot be reached by a browser; this can.
    """
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # raises why it could not start
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task

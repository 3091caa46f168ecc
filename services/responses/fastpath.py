"""The survey page's hot routes answered in front of FastAPI: the page, an answer, the form post.

A respondent's request does little work of its own (one statement to read the link's visit, one to
write, a page rendered from a cached template), so FastAPI's per-request machinery — its middleware
stack, matching some sixty routes, resolving dependencies, parsing and re-validating — was a third of
what a page cost (py-spy, bench/RESULTS.md). This is the app's front door (``ServiceSpec.front``, as
trigger's webhooks): it answers

- ``GET /s/{token}`` (the page), ``POST /s/{token}`` (the form post) and
- ``PUT /v1/public/surveys/{token}/answers/{question_id}`` (one answer)

with the routes' own functions, and does what the machinery around them does: ``check_inputs``
(NUL characters and lone surrogates refused, naming the field), the security headers
(``shared.headers``), the request's span and its metrics under the route's template, errors as
problem+json (the same documents as the app's problem handlers).

Anything else goes on to FastAPI unchanged, and so does every request whose errors FastAPI itself
would report: a query string (``?score=``, ``?q=``, validated by the route's parameters), a body
without a ``Content-Length`` or over the limit (``BodySizeLimit``), an answer whose body is not JSON or
not an ``AnswerSubmit`` (FastAPI's 400 and 422, naming the field), a form Starlette cannot parse
(400) — the body read is handed on. HEAD, OPTIONS and other methods go on too (FastAPI's 405).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.responses.api.public import save_answer
from services.responses.api.survey_pages import submit_form, survey_page
from services.responses.schemas import AnswerSubmit
from shared.errors import CloseloopError, internal_error, problem_of
from shared.headers import add_missing
from shared.inputs import check_inputs
from shared.observability import record_request, server_span
from shared.service import declares_more_than, read_body

log = logging.getLogger(__name__)

PAGE = "/s/{token}"
ANSWER = "/v1/public/surveys/{token}/answers/{question_id}"
_ANSWERS = "/v1/public/surveys/"


def _route(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """Return the template and path parameters of a request the front door answers, else None."""
    if method in ("GET", "POST") and path.startswith("/s/"):
        token = path[3:]
        if token and "/" not in token:
            return PAGE, {"token": token}
    elif method == "PUT" and path.startswith(_ANSWERS):
        token, answers, question_id = (path[len(_ANSWERS) :].split("/") + ["", ""])[:3]
        if token and answers == "answers" and question_id and path.count("/") == 6:
            return ANSWER, {"token": token, "question_id": question_id}
    return None


class _Passed(Exception):
    """The request goes on to FastAPI after all (with ``body`` when it was read), for FastAPI's own answer."""

    def __init__(self, body: bytes | None = None) -> None:
        self.body = body


class SurveyFastPath:
    """The responses app's front door (``ServiceApp.front``); ``app`` is FastAPI's own way in."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, service: str = "responses") -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("query_string"):
            route = _route(scope["method"], scope["path"])
            if route is not None:
                await self._serve(scope, receive, send, *route)
                return
        await self.app(scope, receive, send)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, template: str, params: dict[str, str]
    ) -> None:
        started = time.perf_counter()
        try:
            request, answer, refused = await self._read(scope, receive, params)
        except _Passed as passed:
            await self.app(scope, _replay(passed.body, receive), send)  # FastAPI answers and counts it
            return
        status = 500
        try:
            with server_span(scope):
                response = await self._answer(request, params, answer, refused)
                add_missing(response.headers)
                status = response.status_code
                await response(scope, request.receive, send)
        finally:
            record_request(self.service, scope["method"], template, status, time.perf_counter() - started)

    async def _read(
        self, scope: Scope, receive: Receive, params: dict[str, str]
    ) -> tuple[Request, AnswerSubmit | None, CloseloopError | None]:
        """Return the request (its body read), the answer of a PUT and what ``check_inputs`` refused;
        raise ``_Passed`` for what FastAPI answers itself, in the order FastAPI checks: the body's size,
        its JSON, the inputs (``check_inputs``, a dependency), then the answer's fields."""
        body = None
        if scope["method"] != "GET":
            if not _declared(scope) or declares_more_than(scope, self.max_bytes):
                raise _Passed()  # BodySizeLimit refuses it, or watches a body of unknown size
            body = await read_body(scope, receive, max_bytes=self.max_bytes)
        value = _json_of(scope, body) if scope["method"] == "PUT" else None
        scope["path_params"] = params
        request = Request(scope, _replay(body, receive))
        refused = None
        try:
            await check_inputs(request)
        except CloseloopError as exc:
            refused = exc
        except Exception:  # a form Starlette cannot parse (HTTPException 400): FastAPI's problem says why
            del scope["path_params"]
            raise _Passed(body) from None
        answer = None
        if scope["method"] == "PUT" and refused is None:
            try:
                answer = AnswerSubmit.model_validate(value)
            except ValidationError:
                del scope["path_params"]
                raise _Passed(body) from None
        return request, answer, refused

    async def _answer(
        self,
        request: Request,
        params: dict[str, str],
        answer: AnswerSubmit | None,
        refused: CloseloopError | None,
    ) -> Response:
        try:
            if refused is not None:
                raise refused
            runtime = request.app.state.runtime
            token = params["token"]
            if answer is not None:
                saved = await save_answer(token, params["question_id"], answer, runtime)
                return JSONResponse(saved.model_dump(mode="json"))
            if request.method == "POST":
                return await submit_form(token, request, runtime)
            return await survey_page(token, request, runtime)
        except CloseloopError as exc:
            return problem_of(exc, instance=request.url.path)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            return internal_error(instance=request.url.path)


def _json_of(scope: Scope, body: bytes | None) -> Any:
    """Return the JSON value of an answer's body; ``_Passed`` when it has none (another media type,
    not JSON: FastAPI decides what that means, and its 400 says what is wrong)."""
    content_type = Request(scope).headers.get("content-type", "")
    if content_type.partition(";")[0].strip().lower() != "application/json" or not body:
        raise _Passed(body)
    try:
        return json.loads(body)
    except ValueError:
        raise _Passed(body) from None


def _declared(scope: Scope) -> bool:
    return any(key == b"content-length" for key, _ in scope["headers"])


def _replay(body: bytes | None, receive: Receive) -> Receive:
    """Return ``receive`` that gives ``body`` first when it was read already."""
    if body is None:
        return receive
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay

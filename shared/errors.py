"""A small error hierarchy and the one mapping that turns it into ``application/problem+json``.

Handlers raise these; the exception handlers below are the only place HTTP bodies for
errors are built. Consumers use ``PoisonMessage`` to skip retries for input that can never
be processed.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://closeloop.dev/problems/"


class CloseloopError(Exception):
    status: int = 400
    code: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or ([{"field": field, "message": detail}] if field else [])
        self.headers = headers


class InvalidInput(CloseloopError):
    status, code, title = 422, "invalid-input", "Invalid input"


class MalformedBody(CloseloopError):
    status, code, title = 400, "malformed-body", "Malformed request body"


class Unauthorized(CloseloopError):
    status, code, title = 401, "unauthorized", "Unauthorized"


class Forbidden(CloseloopError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(CloseloopError):
    status, code, title = 404, "not-found", "Not found"


class Conflict(CloseloopError):
    status, code, title = 409, "conflict", "Conflict"


class Gone(CloseloopError):
    status, code, title = 410, "gone", "Gone"


class PayloadTooLarge(CloseloopError):
    status, code, title = 413, "payload-too-large", "Payload too large"


class PoisonMessage(Exception):
    """A consumed message that can never be handled; it goes to the dead-letter topic at once."""


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"type": PROBLEM_BASE + code, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_of(exc: CloseloopError, *, instance: str | None) -> JSONResponse:
    """The problem+json answer to a ``CloseloopError``."""
    return problem(
        exc.status, exc.code, exc.title, exc.detail, instance=instance, errors=exc.errors, headers=exc.headers
    )


def internal_error(*, instance: str | None) -> JSONResponse:
    """The answer to an error nobody foresaw (logged by the caller): no details, and what to do.

    It closes the connection, and says so: the server drops a connection after an unforeseen error,
    and a client that kept it alive would see its next request fail.
    """
    return problem(
        500,
        "internal-error",
        "Internal error",
        "Something went wrong on our side; nothing was stored. Retry later.",
        instance=instance,
        headers={"Connection": "close"},
    )


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[0] if loc else "body")


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(CloseloopError)
    async def _closeloop(request: Request, exc: CloseloopError) -> JSONResponse:
        return problem_of(exc, instance=request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                return problem(
                    400,
                    MalformedBody.code,
                    MalformedBody.title,
                    f"The body is not valid JSON: {err.get('ctx', {}).get('error', 'parse error')}. "
                    "Send a JSON object with Content-Type: application/json.",
                    instance=request.url.path,
                )
            errors.append(
                {"field": _field_path(tuple(err.get("loc", ()))), "message": err.get("msg", "invalid")}
            )
        fields = ", ".join(e["field"] for e in errors)
        return problem(
            422,
            InvalidInput.code,
            InvalidInput.title,
            f"Invalid value for: {fields}",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, CloseloopError):
            # FastAPI reports any error while reading the body as 400; the body limit's 413 is the truth.
            return problem_of(exc.__cause__, instance=request.url.path)
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem(
            exc.status_code,
            code,
            str(exc.detail),
            str(exc.detail),
            instance=request.url.path,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return internal_error(instance=request.url.path)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Return the JSON object in ``raw`` or raise ``MalformedBody``."""
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedBody(f"The body is not valid JSON ({exc}).", field="body") from exc
    if not isinstance(value, dict):
        raise MalformedBody("The body must be a JSON object.", field="body")
    return value

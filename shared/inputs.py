"""One rule for every request's input, before any of it reaches the database.

PostgreSQL refuses text with a NUL character or a lone UTF-16 surrogate, and integers beyond its
column types; each would otherwise surface as a 500. ``check_inputs`` (a dependency ``build_app``
puts on every router) refuses them with a 422 problem that names the field:

- every path parameter, query parameter, JSON body string and form field: no NUL, no surrogate;
- integers: within PostgreSQL's ``bigint`` (64 bits), and within ``integer`` (32 bits) in a path,
  where they address rows (``/versions/{version}``).

The JSON body is walked only when its bytes could hold such a value (an escaped NUL or surrogate,
or a run of 19 digits), so an ordinary request costs a regular-expression scan.

``Flag``, ``Integer`` and ``Number`` are the field types of request bodies read without guessing
(``"enabled": "yes"`` is refused, not read as true).
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from pydantic import Strict

from shared.errors import InvalidInput, MalformedBody

INT64 = (-(2**63), 2**63 - 1)
INT32 = (-(2**31), 2**31 - 1)

_SUSPECT_JSON = re.compile(rb"\\u0000|\\u[dD][89a-fA-F]|\d{19}")
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")
_int_params: dict[int, frozenset[str]] = {}


def _problem(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"Invalid value for {field}: {message}", field=field)


def check_text(value: str, *, field: str) -> None:
    """Raise ``InvalidInput`` naming ``field`` when ``value`` holds a NUL or a lone surrogate."""
    found = _BAD_CHAR.search(value)
    if found is not None:
        what = "a NUL character" if found.group() == "\x00" else "an unpaired UTF-16 surrogate"
        raise _problem(field, f"it contains {what}; send plain text")


def check_int(value: int, *, field: str, bounds: tuple[int, int] = INT64) -> None:
    """Raise ``InvalidInput`` naming ``field`` when ``value`` is outside ``bounds``."""
    low, high = bounds
    if not low <= value <= high:
        raise _problem(field, f"it must be an integer from {low} to {high}")


def _is_int(annotation: Any) -> bool:
    if annotation is int:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, tuple, set, typing.Annotated):
        return any(_is_int(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    return False


def _int_names(dependant: Dependant) -> Iterator[str]:
    for param in (*dependant.path_params, *dependant.query_params):
        if _is_int(param.field_info.annotation):
            yield param.alias
    for sub in dependant.dependencies:
        yield from _int_names(sub)


def _int_params_of(route: Any) -> frozenset[str]:
    """The names of the route's integer path and query parameters (cached per route)."""
    key = id(route)
    if key not in _int_params:
        dependant = getattr(route, "dependant", None)
        _int_params[key] = frozenset(_int_names(dependant)) if dependant is not None else frozenset()
    return _int_params[key]


def _as_int(raw: str) -> int | None:
    text = raw.strip()
    if text[:1] in "+-":
        text = text[1:]
    return int(raw) if text.isdigit() and len(text) < 4300 else None


def check_json(value: Any, *, path: str = "") -> None:
    """Raise ``InvalidInput`` for the first bad string or integer in a parsed JSON value."""
    if isinstance(value, str):
        check_text(value, field=path or "body")
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        check_int(value, field=path or "body")
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            check_text(key, field=where)
            check_json(item, path=where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, path=f"{path}.{index}" if path else str(index))


async def check_inputs(request: Request) -> None:
    """Refuse a request whose path, query, JSON or form input the database could not store."""
    ints = _int_params_of(request.scope.get("route"))
    for name, value in request.path_params.items():
        if not isinstance(value, str):
            continue
        check_text(value, field=name)
        if name in ints and (number := _as_int(value)) is not None:
            check_int(number, field=name, bounds=INT32)
    for name, value in request.query_params.multi_items():
        check_text(name, field=name)
        check_text(value, field=name)
        if name in ints and (number := _as_int(value)) is not None:
            check_int(number, field=name)
    if request.method in ("GET", "HEAD", "DELETE", "OPTIONS"):
        return
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json") or content_type.endswith("+json"):
        raw = await request.body()
        if _SUSPECT_JSON.search(raw):
            try:
                parsed = json.loads(raw)
            except ValueError as exc:
                raise MalformedBody(f"The body is not valid JSON ({exc}).", field="body") from exc
            check_json(parsed)
    elif content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        if getattr(request, "_form", None) is None:  # FastAPI parsed it already for a route's Form fields
            await request.body()  # cached first, so that a route can still read the raw body (signatures)
        form = await request.form()
        for name, value in form.multi_items():
            check_text(name, field=name)
            if isinstance(value, str):
                check_text(value, field=name)


Flag = Annotated[bool, Strict()]
"""A request body's boolean, read strictly: a JSON ``true`` or ``false`` — ``"yes"``, ``"true"`` or ``1``
is refused (422 naming the field), never read as true."""
Integer = Annotated[int, Strict()]
"""A request body's integer, read strictly: a JSON integer — ``"5"``, ``5.0`` or ``true`` is refused."""
Number = Annotated[float, Strict()]
"""A request body's number, read strictly: a JSON number (``80`` or ``80.5``) — ``"80"`` is refused."""

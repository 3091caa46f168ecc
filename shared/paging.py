"""Cursor (keyset) pagination shared by every list endpoint that can grow without bound.

A page is read in a stable order that ends in a unique column (``created_at, id`` or a
sequence), with one row more than asked so that the last page is known without a count. The
cursor is the last row's sort key, opaque to clients: base64url of an 8-byte BLAKE2b check
followed by the JSON ``[scope, key...]``. The scope names the list (``dispatch.invitations``), so
a cursor of one list is refused by another; the check refuses a cursor whose bytes were changed.
The check is not a secret: a client that forges a well-formed cursor only moves its own position
in a list that is still filtered by its workspace, so nothing is gained that ``limit`` and the
filters do not already give.

Keyset, not offset: a row inserted while a client walks the pages (new rows sort first in the
newest-first lists) never shifts the rows that follow, so every row that existed when the walk
began is seen exactly once, in order, and the cost of a page does not grow with its depth.

The next page travels in two places: ``next_cursor`` in the body where the body is an object, and
``Link: <url>; rel="next"`` (RFC 8288) with the same query and the new cursor, plus
``X-Next-Cursor``, on every paginated route — so routes whose body has always been a bare JSON
array keep that shape for the clients that rely on it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Query, Request, Response
from sqlalchemy import ColumnElement, literal, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from shared.errors import InvalidInput

T = TypeVar("T")
Key = tuple[Any, ...]

MAX_CURSOR_LENGTH = 512
_CHECK = b"closeloop-cursor-v1"
_REFUSED = "The cursor is not one this list handed out; start again without cursor."

Cursor = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR_LENGTH,
        description="`next_cursor` (or the `Link rel=next` URL's cursor) of the previous page; omit for the first.",
        examples=["3q2-7wE0WyJkaXNwYXRjaC5pbnZpdGF0aW9ucyIsIjIwMjYtMTEtMzBUMTA6MDA6MDArMDA6MDAiLCJhYmMiXQ"],
    ),
]


PAGED = (
    "The body is the page (a JSON array, as it always was). While there is a next page, the "
    '`Link: <…>; rel="next"` header holds its URL and `X-Next-Cursor` its cursor; pass `cursor` to read on. '
    "A cursor that this list did not hand out is a 422 naming `cursor`."
)


def _digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=8, key=_CHECK).digest()


def _plain(value: Any) -> Any:
    if isinstance(value, date):  # and datetime
        return value.isoformat()
    if value is None or isinstance(value, int | str | float):
        return value
    return str(value)


def encode_cursor(scope: str, key: Sequence[Any]) -> str:
    """Return the opaque cursor for the row whose sort key is ``key``."""
    payload = json.dumps([scope, *map(_plain, key)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(_digest(payload) + payload).decode().rstrip("=")


def decode_cursor(cursor: str, scope: str, kinds: Sequence[type]) -> Key:
    """Return the sort key in ``cursor``, typed as ``kinds``; a 422 naming ``cursor`` otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        check, payload = raw[:8], raw[8:]
        if not hmac.compare_digest(check, _digest(payload)):
            raise ValueError("check")
        values = json.loads(payload)
        if not isinstance(values, list) or values[:1] != [scope] or len(values) != len(kinds) + 1:
            raise ValueError("scope")
        return tuple(_typed(value, kind) for value, kind in zip(values[1:], kinds, strict=True))
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidInput(_REFUSED, field="cursor") from exc


def _typed(value: Any, kind: type) -> Any:
    if kind is datetime and isinstance(value, str):
        return datetime.fromisoformat(value)
    if kind is date and isinstance(value, str):
        return date.fromisoformat(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is str and isinstance(value, str):
        return value
    raise ValueError(f"expected {kind.__name__}")


def after(
    columns: Sequence[InstrumentedAttribute[Any]], key: Key, *, descending: bool
) -> ColumnElement[bool]:
    """The condition for rows after ``key`` in the order ``columns`` (all one direction)."""
    here = tuple_(*columns)
    there = tuple_(*(literal(v, type_=c.type) for v, c in zip(key, columns, strict=True)))
    return here < there if descending else here > there


def page(
    rows: Sequence[T], *, limit: int, scope: str, key: Callable[[T], Sequence[Any]]
) -> tuple[list[T], str | None]:
    """Cut ``rows`` (read with ``limit + 1``) to a page; return it and the next page's cursor."""
    kept = list(rows[:limit])
    return kept, encode_cursor(scope, key(kept[-1])) if len(rows) > limit and kept else None


def link_next(request: Request, response: Response, next_cursor: str | None) -> None:
    """Set ``Link: <…>; rel="next"`` and ``X-Next-Cursor`` when there is a next page."""
    if next_cursor is None:
        return
    url = request.url.include_query_params(cursor=next_cursor)
    response.headers["Link"] = f'<{url}>; rel="next"'
    response.headers["X-Next-Cursor"] = next_cursor

"""Streaming exports: rows read in keyset batches become CSV or NDJSON chunks, one chunk per batch, so
an export of any size holds one batch in memory.

- **CSV** is RFC 4180: comma-separated, CRLF line ends, a header row, a field quoted when it holds a
  comma, a quote or a line break, quotes doubled inside; UTF-8 without a byte-order mark. A missing value
  is an empty field; nested values (lists, objects) are JSON text.
- **Formula injection** (CWE-1236): a text field that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
  carriage return gets a leading ``'``, so that a spreadsheet shows it as text and never runs it (the
  OWASP advice). Only text is guarded: numbers (a sentiment of ``-0.5``, a score) are written as numbers.
  A reader who needs the raw text drops one leading ``'`` from such fields or uses the NDJSON form.
- **NDJSON** is one JSON object per line (``\\n``), the same fields with their JSON types, nothing guarded
  (it is data for programs, not a sheet).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import date
from operator import itemgetter
from typing import Any, Literal

from fastapi.responses import StreamingResponse

Format = Literal["csv", "ndjson"]
MEDIA_TYPES: dict[Format, str] = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


_STARTS = frozenset(FORMULA_STARTS)


def guard(text: str) -> str:
    """Return ``text`` as a spreadsheet shows it as text (a leading ``'`` before a formula start)."""
    return "'" + text if text[:1] in _STARTS else text


def csv_cell(value: Any) -> Any:
    """Return one value as a CSV field: empty for None, JSON for nested values, guarded text."""
    kind = type(value)
    if kind is str:  # the common case first: an export is mostly text
        return "'" + value if value[:1] in _STARTS else value
    if value is None:
        return ""
    if kind is int or kind is float:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple | dict):
        return guard(
            json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str)
        )
    return guard(str(value))


def csv_lines(rows: Iterable[Sequence[Any]]) -> bytes:
    """Return ``rows`` as CSV lines (RFC 4180, CRLF)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([csv_cell(v) for v in row] for row in rows)
    return buffer.getvalue().encode()


def ndjson_lines(rows: Iterable[dict[str, Any]]) -> bytes:
    """Return ``rows`` as NDJSON lines."""
    return b"".join(
        json.dumps(row, ensure_ascii=False, separators=(",", ":"), default=_json_default).encode() + b"\n"
        for row in rows
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


async def encoded(
    batches: AsyncIterator[list[dict[str, Any]]], *, columns: Sequence[str], fmt: Format
) -> AsyncIterator[bytes]:
    """Yield the header (CSV) and then one chunk per batch of row dicts."""
    if fmt == "csv":
        yield csv_lines([columns])
    pick = itemgetter(*columns, *columns[:1]) if len(columns) == 1 else itemgetter(*columns)
    async for rows in batches:
        if fmt == "csv":
            yield csv_lines([pick(row)[: len(columns)] for row in rows])
        else:
            yield ndjson_lines(rows)


def stream(
    batches: AsyncIterator[list[dict[str, Any]]],
    *,
    columns: Sequence[str],
    fmt: Format,
    filename: str,
) -> StreamingResponse:
    """Return a streaming download of ``batches`` (``filename`` without its extension)."""
    return StreamingResponse(
        encoded(batches, columns=columns, fmt=fmt),
        media_type=MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}.{fmt}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )

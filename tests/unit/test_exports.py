"""The CSV and NDJSON encoding of ``shared.exports``, read back with the standard library's parsers."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

from shared.exports import encoded

ROWS = [
    {"text": '=HYPERLINK("http://evil.test")', "n": -5, "x": -0.5, "ok": True, "nested": {"b": 1, "a": "=x"}},
    {"text": 'comma, "quote"\nnew line', "n": None, "x": 1.25, "ok": False, "nested": ["+1", "@me"]},
    {"text": "-minus", "n": 0, "x": None, "ok": None, "nested": None},
    {"text": "\ttab", "n": 7, "x": 0.0, "ok": True, "nested": {}},
    {"text": "plain ünïcode", "n": 1, "x": 2.0, "ok": True, "nested": []},
]
COLUMNS = ("text", "n", "x", "ok", "nested")


async def batches() -> AsyncIterator[list[dict[str, Any]]]:
    yield ROWS[:2]
    yield ROWS[2:]


def read(fmt: str) -> bytes:
    async def collect() -> bytes:
        return b"".join([chunk async for chunk in encoded(batches(), columns=COLUMNS, fmt=fmt)])  # type: ignore[arg-type]

    return asyncio.run(collect())


def test_csv_is_rfc4180_and_text_that_a_sheet_would_run_is_guarded_numbers_are_not():
    raw = read("csv")
    assert raw.endswith(b"\r\n") and raw.count(b"\r\n") == len(ROWS) + 1, "CRLF ends each record"
    rows = list(csv.reader(io.StringIO(raw.decode(), newline="")))
    assert rows[0] == list(COLUMNS)
    assert [r[0] for r in rows[1:]] == [
        '\'=HYPERLINK("http://evil.test")',
        'comma, "quote"\nnew line',
        "'-minus",
        "'\ttab",
        "plain ünïcode",
    ]
    assert [r[1] for r in rows[1:]] == ["-5", "", "0", "7", "1"], "numbers stay numbers, even negative ones"
    assert [r[2] for r in rows[1:]] == ["-0.5", "1.25", "", "0.0", "2.0"]
    assert [r[3] for r in rows[1:]] == ["true", "false", "", "true", "true"]
    assert rows[1][4] == '{"a":"=x","b":1}', "JSON starts with { or [: never guarded, keys sorted"
    assert json.loads(rows[2][4]) == ["+1", "@me"]


def test_ndjson_is_one_object_a_line_with_its_json_types_unguarded():
    lines = read("ndjson").decode().split("\n")
    assert lines[-1] == "" and [json.loads(line) for line in lines[:-1]] == ROWS

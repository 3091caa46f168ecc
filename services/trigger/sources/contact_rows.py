"""Contact rows for the bulk import (``POST /v1/contacts/import``), pure: a CSV (header row) or
JSON-lines body read into rows of contact fields and custom attributes, each numbered, with an
error for a row that cannot even be read. The command line that sends files in chunks is
``closeloop contacts import`` (``closeloop/contacts_import.py``).

Columns (CSV header or JSON keys): ``external_id``, ``email``, ``name``, ``phone``, ``locale``,
``timezone``, ``country``, ``company``, ``role``, ``plan``, ``opted_out``; any other column is a
custom attribute (``attributes.<name>`` works too). Empty cells leave the stored value alone.
``opted_out`` is a JSON boolean in JSON lines; a CSV cell, being text, may say true/false, yes/no, 1/0.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from shared.vocabulary import CONTACT_FIELDS

KNOWN = ("external_id", *CONTACT_FIELDS)
"""The columns that are the contact's own (``opted_out`` aside); any other is an attribute."""
CSV_TYPES = ("text/csv", "application/csv")
JSONL_TYPES = (
    "application/x-ndjson",
    "application/jsonl",
    "application/json-lines",
    "application/x-jsonlines",
)
_TRUE = {"true", "yes", "y", "1", "t"}
_FALSE = {"false", "no", "n", "0", "f", ""}


class ImportFormatError(ValueError):
    def __init__(self, message: str, *, field: str = "body") -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Row:
    number: int
    """1-based, counting records (not the CSV header)."""
    values: dict[str, Any] = field(default_factory=dict)
    error: tuple[str, str] | None = None
    """(field, message) when the row could not even be read."""


def _column(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def _shape(raw: dict[str, Any], number: int, *, text: bool) -> Row:
    """Split a record into contact fields and custom attributes (``text``: a CSV row, every cell text)."""
    values: dict[str, Any] = {}
    attributes: dict[str, Any] = (
        dict(raw.pop("attributes", None) or {}) if isinstance(raw.get("attributes"), dict) else {}
    )
    for key, value in raw.items():
        name = _column(str(key))
        if value is None or value == "":
            continue
        if name in KNOWN:
            values[name] = value.strip() if isinstance(value, str) else value
        elif name == "opted_out":
            if isinstance(value, bool):
                values["opted_out"] = value
            elif text and str(value).strip().lower() in _TRUE | _FALSE:
                values["opted_out"] = str(value).strip().lower() in _TRUE
            else:
                return Row(number, error=("opted_out", f"{value!r} is not true or false"))
        elif name:
            attributes[name.removeprefix("attributes.")] = value
    if attributes:
        values["attributes"] = attributes
    return Row(number, values)


def read_csv(text: str) -> Iterator[Row]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise ImportFormatError("The CSV has no header row.")
    columns = [_column(c) for c in reader.fieldnames]
    if "external_id" not in columns and "email" not in columns:
        raise ImportFormatError("The CSV header needs an external_id or an email column.", field="header")
    number = 0
    while True:
        number += 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportFormatError(f"The CSV cannot be read at record {number}: {exc}.") from exc
        if None in record:
            yield Row(number, error=("row", "the row has more cells than the header"))
            continue
        yield _shape(
            {k: (v.replace("\x00", "") if isinstance(v, str) else v) for k, v in record.items()},
            number,
            text=True,
        )


def read_jsonl(text: str) -> Iterator[Row]:
    number = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        number += 1
        try:
            record = json.loads(line.replace("\\u0000", ""))
        except json.JSONDecodeError as exc:
            yield Row(number, error=("row", f"not JSON: {exc.msg}"))
            continue
        except RecursionError:
            yield Row(number, error=("row", "nests too deeply"))
            continue
        if not isinstance(record, dict):
            yield Row(number, error=("row", "each line is a JSON object"))
            continue
        yield _shape(record, number, text=False)


def read_rows(content_type: str, body: bytes) -> list[Row]:
    """Return the rows of a CSV or JSON-lines body; raise ``ImportFormatError`` if it is neither."""
    kind = content_type.split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError("The file is not UTF-8 text.") from exc
    if kind in CSV_TYPES:
        return list(read_csv(text))
    if kind in JSONL_TYPES:
        return list(read_jsonl(text))
    raise ImportFormatError("Send text/csv or application/x-ndjson (JSON lines).", field="content-type")

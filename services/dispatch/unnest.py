"""Many rows in one statement of a fixed shape: every column a typed array, ``unnest``-ed.

A multi-row ``VALUES`` list is a new statement for every number of rows, compiled by SQLAlchemy each
time (and an ORM ``RETURNING`` loads an object per row); an ``INSERT … SELECT … FROM unnest($1::…[],
…)`` or ``UPDATE … FROM unnest(…)`` is one text the driver prepares once per connection, whatever the
batch size, and costs per row only the encoding of its values.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Column, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB

_DIALECT = postgresql.dialect()


def table_of(model: Any) -> Table:
    """Return the table of a mapped class."""
    return cast(Table, model.__table__)


def array_type(column: Column[Any]) -> str:
    """Return the column's type as an array cast (``VARCHAR(36)[]``)."""
    return f"{column.type.compile(dialect=_DIALECT)}[]"


def unnest_from(
    table: Table, columns: Sequence[str], *, first: int = 1, alias: str = "x", ordinality: str | None = None
) -> str:
    """Return ``unnest($first::t1[], …) AS alias(c1, …)`` for ``columns`` of ``table`` (``WITH
    ORDINALITY``, the row's position from 1 named ``ordinality``, when given)."""
    arrays = ", ".join(f"${first + n}::{array_type(table.c[c])}" for n, c in enumerate(columns))
    names = [*columns, ordinality] if ordinality else list(columns)
    numbered = " WITH ORDINALITY" if ordinality else ""
    return f"unnest({arrays}){numbered} AS {alias}({', '.join(names)})"


def arrays_of(table: Table, columns: Sequence[str], rows: Iterable[Any]) -> tuple[list[Any], ...]:
    """Return one list per column of the attribute values of ``rows`` (objects or mappings), JSONB
    values as JSON text, in the order of ``columns``."""
    out: tuple[list[Any], ...] = tuple([] for _ in columns)
    json_columns = {n for n, c in enumerate(columns) if isinstance(table.c[c].type, JSONB)}
    for row in rows:
        get = row.get if isinstance(row, dict) else row.__getattribute__
        for n, c in enumerate(columns):
            value = get(c)
            if n in json_columns and value is not None:
                value = json.dumps(value)
            out[n].append(value)
    return out

"""Read models filled from ORM rows: ``from_row`` copies the same-named attributes of a row into a
pydantic model, so that a response body or an event that mirrors a table does not list its columns
a second time.

The fields a row does not hold as they are (worked out, renamed, or taken from elsewhere) are given
as keyword arguments; every other field of the model must be an attribute of the row. The model
validates as if its fields had been written out one by one, and serialises in its own field order.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def from_row(schema: type[M], row: object, *, prefix: str = "", **computed: Any) -> M:
    """Return ``schema`` filled from the same-named attributes of the ORM ``row`` (named ``prefix`` + the
    field's name when a ``prefix`` is given), but for the ``computed`` fields given here."""
    return schema(
        **{name: getattr(row, prefix + name) for name in schema.model_fields if name not in computed},
        **computed,
    )

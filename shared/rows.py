"""Read models filled from ORM rows: ``from_row`` copies the same-named attributes of a row into a
pydantic model or a dataclass, so that a response body, an event or a value the domain reads that
mirrors a table does not list its columns a second time.

The fields a row does not hold as they are (worked out, renamed, or taken from elsewhere) are given
as keyword arguments; every other field of the model must be an attribute of the row. The model
validates as if its fields had been written out one by one, and serialises in its own field order.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

M = TypeVar("M", bound="BaseModel | DataclassInstance")


_names: dict[type[Any], tuple[str, ...]] = {}


def _field_names(schema: type[Any]) -> tuple[str, ...]:
    """The names a model or a dataclass is built from (worked out once per class)."""
    names = _names.get(schema)
    if names is None:
        if issubclass(schema, BaseModel):
            names = tuple(schema.model_fields)
        else:
            names = tuple(f.name for f in dataclasses.fields(schema) if f.init)
        _names[schema] = names
    return names


def from_row(schema: type[M], row: object, *, prefix: str = "", **computed: Any) -> M:
    """Return ``schema`` filled from the same-named attributes of the ORM ``row`` (named ``prefix`` + the
    field's name when a ``prefix`` is given), but for the ``computed`` fields given here."""
    return schema(
        **{name: getattr(row, prefix + name) for name in _field_names(schema) if name not in computed},
        **computed,
    )

"""``from_row``: a pydantic model or a dataclass filled from the same-named attributes of a row."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from pydantic import BaseModel

from shared.rows import from_row


class Out(BaseModel):
    id: str
    name: str
    total: int


@dataclass(frozen=True)
class View:
    id: str
    name: str
    total: int = 0
    seen: list[str] = field(default_factory=list, init=False)


def test_a_model_takes_the_rows_attributes_and_the_computed_fields() -> None:
    row = SimpleNamespace(id="a", name="A", total=3, other="ignored")
    assert from_row(Out, row) == Out(id="a", name="A", total=3)
    assert from_row(Out, row, total=7).model_dump_json() == '{"id":"a","name":"A","total":7}'


def test_a_prefix_names_the_rows_columns() -> None:
    row = SimpleNamespace(c_id="a", c_name="A", c_total=1)
    assert from_row(Out, row, prefix="c_") == Out(id="a", name="A", total=1)


def test_a_dataclass_is_filled_from_its_init_fields() -> None:
    row = SimpleNamespace(id="a", name="A", total=2)
    assert from_row(View, row) == View(id="a", name="A", total=2)
    assert from_row(View, SimpleNamespace(id="b", name="B"), total=5) == View(id="b", name="B", total=5)

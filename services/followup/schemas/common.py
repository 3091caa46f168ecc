"""Shapes every part of the follow-up API shares."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, Field, StringConstraints

NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Name = Annotated[NonBlank, Field(max_length=200)]
AgentId = Annotated[NonBlank, Field(max_length=200, description="An agent's id (opaque, yours).")]
Id = Annotated[NonBlank, Field(max_length=36)]
Text = Annotated[NonBlank, Field(max_length=10_000)]

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")

"""One HTTP request to a CRM, as the kind modules build it and the worker sends it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    """Appended to the connector's base URL; a full URL when ``absolute`` (the generic connector)."""
    body: Any = None
    ok_statuses: tuple[int, ...] = (200, 201, 202, 204)
    absolute: bool = False
    step: str | None = None
    """A preparation step the connector remembers once done (HubSpot: a property's name)."""
    headers: dict[str, str] = field(default_factory=dict)
    then: Callable[[Any], Request | None] | None = None
    """The next request, made from this one's JSON reply (HubSpot: the contact's id, then the note)."""

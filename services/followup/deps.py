"""What follow-up's routes depend on, typed: its runtime (settings, database, outbox) and its own
dependencies (the clock every rule reads, the escalation scheduler), and who is acting (from the
caller's credential)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Query, Request, Response

from services.followup.escalation import EscalationScheduler
from services.followup.schemas.common import Page
from services.followup.settings import FollowUpSettings
from shared.clock import Clock
from shared.errors import InvalidInput
from shared.paging import Cursor, link_next
from shared.service import PrincipalDep, Runtime, get_runtime

T = TypeVar("T")
Limit = Annotated[int, Query(ge=1, description="Page size (at most the service's max_page_size).")]


@dataclass
class FollowUp:
    clock: Clock
    escalator: EscalationScheduler


FollowUpRuntime = Runtime[FollowUpSettings, FollowUp]
RuntimeDep = Annotated[FollowUpRuntime, Depends(get_runtime)]


async def get_actor(principal: PrincipalDep) -> str:
    """Return who is acting, as every history entry records it: the person of a console user token
    (``Grace Hopper (user:<id>)``) or the API key (``key:<id>``). An ``X-Actor`` header is not believed."""
    return principal.who[:200]


ActorDep = Annotated[str, Depends(get_actor)]


def check_limit(limit: int, runtime: RuntimeDep) -> None:
    if limit > runtime.settings.max_page_size:
        raise InvalidInput(f"limit must be at most {runtime.settings.max_page_size}.", field="limit")


@dataclass
class Paging:
    """The page a list route is asked for (``limit`` checked against the service's ``max_page_size``, and
    ``cursor``) and the request and reply that carry the next page's ``Link``."""

    limit: int
    cursor: str | None
    request: Request
    reply: Response

    def page(self, items: list[T], next_cursor: str | None) -> Page[T]:
        """Return ``items`` as a page, the next page's cursor in the body and in the reply's headers."""
        link_next(self.request, self.reply, next_cursor)
        return Page[T](items=items, next_cursor=next_cursor)


def get_paging(
    request: Request, reply: Response, runtime: RuntimeDep, limit: Limit = 100, cursor: Cursor = None
) -> Paging:
    check_limit(limit, runtime)
    return Paging(limit, cursor, request, reply)


PagingDep = Annotated[Paging, Depends(get_paging)]

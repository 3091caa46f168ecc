"""The case's life: when one opens, which statuses it moves through, how the retention survey goes out.

Statuses run ``open → in_progress → (the workspace's own statuses) → resolved → closed``. Moves go
forward only unless the workspace allows going back; ``resolved`` is reached only by resolving (a
root cause and an action are required), ``closed`` by the retention answer, by resolving when no
retention survey is possible, or by hand from ``resolved``. A resolved or closed case can be reopened
with a reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from shared.vocabulary import Channel

OPEN, IN_PROGRESS, RESOLVED, CLOSED = "open", "in_progress", "resolved", "closed"
BUILTIN_STATUSES = (OPEN, IN_PROGRESS, RESOLVED, CLOSED)
STATUS_NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")

Priority = Literal["low", "normal", "high", "urgent"]
PRIORITIES: tuple[Priority, ...] = ("low", "normal", "high", "urgent")

OpenedBecause = Literal["negative", "loyalty", "threshold"]
RetentionStatus = Literal["not_requested", "requested", "not_possible", "answered"]

NO_RETENTION_SURVEY = (
    "No retention survey was sent: this workspace has no retention survey configured. "
    'Set one with PUT /v1/settings {"retention_survey_id": "<survey id>"} so that resolved cases '
    "ask the customer whether the solution won them back."
)
RETENTION_NOT_POSSIBLE = (
    "Retention survey not possible: the customer left no email address or phone number, so the case "
    "closed on resolution instead of waiting for an answer that cannot come."
)


class TransitionRefused(Exception):
    """The case's status does not allow this step."""


class NoteRequired(Exception):
    """The workspace asks for a note with this change."""


class UnknownStatus(Exception):
    """The status is not one of the workspace's."""


@dataclass(frozen=True)
class CustomStatus:
    name: str
    waits_on_customer: bool = False
    """While a case is in this status its SLA clocks pause (when its policy says so)."""


@dataclass(frozen=True)
class Workflow:
    """A workspace's statuses and what each change asks for."""

    custom: tuple[CustomStatus, ...] = ()
    allow_backward: bool = False
    note_on_status_change: bool = False
    note_on_reassign: bool = False

    @property
    def order(self) -> tuple[str, ...]:
        return (OPEN, IN_PROGRESS, *(s.name for s in self.custom), RESOLVED, CLOSED)

    def waits_on_customer(self, status: str) -> bool:
        return any(s.name == status and s.waits_on_customer for s in self.custom)


def is_active(status: str) -> bool:
    """Whether a case with ``status`` is still being worked (not resolved or closed)."""
    return status not in (RESOLVED, CLOSED)


def check_custom_statuses(names: Sequence[str]) -> None:
    """Raise ``ValueError`` unless ``names`` are new, distinct status names."""
    for name in names:
        if not STATUS_NAME.match(name):
            raise ValueError(f"{name!r} is not a status name (lowercase letters, digits and _, 2-40)")
        if name in BUILTIN_STATUSES:
            raise ValueError(f"{name!r} is a built-in status")
    if len(set(names)) != len(names):
        raise ValueError("status names must be distinct")


def check_status_change(workflow: Workflow, *, current: str, target: str, note: str | None) -> None:
    """Raise unless a case may move from ``current`` to ``target`` (``TransitionRefused``,
    ``UnknownStatus``, ``NoteRequired``)."""
    order = workflow.order
    if target not in order:
        raise UnknownStatus(f"{target!r} is not a status of this workspace; one of {', '.join(order)}")
    if target == current:
        raise TransitionRefused(f"the case is already {current}")
    if target == RESOLVED:
        raise TransitionRefused(
            "a case is resolved with POST /v1/cases/{id}/resolve (a root cause is required)"
        )
    if current == CLOSED:
        raise TransitionRefused("the case is closed; reopen it with a reason")
    if current == RESOLVED and target != CLOSED:
        raise TransitionRefused("the case is resolved; reopen it with a reason")
    if target == CLOSED and current != RESOLVED:
        raise TransitionRefused("only a resolved case can be closed")
    if order.index(target) < order.index(current) and not workflow.allow_backward:
        raise TransitionRefused(f"statuses move forward only ({' → '.join(order)})")
    if workflow.note_on_status_change and not note:
        raise NoteRequired("this workspace asks for a note with every status change")


def check_assignable(status: str) -> None:
    """Raise ``TransitionRefused`` unless a case with ``status`` can be (re)assigned."""
    if not is_active(status):
        raise TransitionRefused(f"the case is {status}; only cases being worked can be assigned")


def check_resolvable(status: str) -> None:
    """Raise ``TransitionRefused`` unless a case with ``status`` can be resolved."""
    if not is_active(status):
        raise TransitionRefused(f"the case is already {status}; a case is resolved once (reopen it first)")


def check_reopenable(status: str) -> None:
    if is_active(status):
        raise TransitionRefused(f"the case is {status}; only resolved or closed cases are reopened")


def reopened_status(*, contacted: bool) -> str:
    """Return the status a reopened case starts again in: in progress once the customer was contacted."""
    return IN_PROGRESS if contacted else OPEN


def counts_as_contact(workflow: Workflow, status: str) -> bool:
    """Whether reaching ``status`` means the customer was contacted (in progress or later)."""
    order = workflow.order
    return status in order and order.index(status) >= order.index(IN_PROGRESS)


def accepts_outcome(status: str, *, awaiting: bool = False) -> bool:
    """Return whether a retention answer still changes a case: a resolved case awaits one, and so does a
    case closed by hand while its retention survey was out (``awaiting``): the answer still says
    whether the customer was won back."""
    return status == RESOLVED or (status == CLOSED and awaiting)


def won_back(*, negative: bool) -> bool:
    """Return whether the retention answer means the customer was won back: anything not negative."""
    return not negative


def retention_reason(case_id: str) -> str:
    """Return the ``reason`` carried by the retention survey request of a case."""
    return f"followup:{case_id}"


# --- opening -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    open_task: bool
    reason: str
    code: str = ""
    """opened | not_negative | retention | no_consent | unreachable"""
    because: OpenedBecause | None = None


@dataclass(frozen=True)
class OpeningRules:
    """When a response opens a case besides negative feedback (a workspace's choice)."""

    loyalty_cells: frozenset[str] = frozenset()
    """e.g. {"false", "trapped"}: loyal-looking answers that are at risk."""
    score_below: Mapping[str, int] = field(default_factory=dict)
    """metric → threshold: any answer of that metric scored below it."""


@dataclass(frozen=True)
class Respondent:
    known: bool
    """False: the event did not say who answered (an older producer)."""
    reachable: bool


def why_open(
    *, negative: bool, loyalty: str | None, scores: Sequence[tuple[str, int]], rules: OpeningRules
) -> OpenedBecause | None:
    """Return what about a response calls for a case, or None."""
    if negative:
        return "negative"
    if loyalty is not None and loyalty in rules.loyalty_cells:
        return "loyalty"
    if any(metric in rules.score_below and score < rules.score_below[metric] for metric, score in scores):
        return "threshold"
    return None


def decide_opening(
    *, kind: str, consent_to_contact: bool, respondent: Respondent, because: OpenedBecause | None
) -> Decision:
    """Return whether a response opens a case, and why (not)."""
    if kind == "retention":
        return Decision(False, "retention answers close an existing case; they never open one", "retention")
    if because is None:
        return Decision(False, "nothing in the response calls for a follow-up", "not_negative")
    if not consent_to_contact:
        return Decision(False, "no consent: the customer did not agree to be contacted", "no_consent")
    if respondent.known and not respondent.reachable:
        return Decision(
            False,
            "the respondent left no way to reach them (no email address, no phone number)",
            "unreachable",
        )
    what = {
        "negative": "negative feedback",
        "loyalty": "an at-risk loyalty cell",
        "threshold": "a score below the workspace's threshold",
    }[because]
    unknown = "; contact details unknown (the event did not say)" if not respondent.known else ""
    return Decision(True, f"{what} from a customer who agreed to be contacted{unknown}", "opened", because)


def decide_on_negative_feedback(*, consent_to_contact: bool, kind: str) -> Decision:
    """Return whether negative feedback opens a case, and why (not) (respondent not known)."""
    return decide_opening(
        kind=kind,
        consent_to_contact=consent_to_contact,
        respondent=Respondent(known=False, reachable=False),
        because="negative",
    )


# --- the retention survey ---------------------------------------------------------------------

SENDABLE: tuple[Channel, ...] = ("email", "sms", "whatsapp")


@dataclass(frozen=True)
class RetentionRoute:
    possible: bool
    channel: Channel | None = None
    fallbacks: tuple[Channel, ...] = ()


def retention_route(
    *,
    answered_on: Channel | None,
    default_channel: Channel,
    contact_known: bool,
    email: str | None,
    phone: str | None,
) -> RetentionRoute:
    """Return the channel the retention survey goes over: the one the customer answered on, else any
    the customer has; not possible when the customer is known to have none."""
    preferred = [c for c in (answered_on, default_channel) if c in SENDABLE]
    if not contact_known:
        # Who answered is not known here: dispatch reaches the contact the way it did last.
        return RetentionRoute(True, preferred[0] if preferred else "email")
    has = [c for c in SENDABLE if (c == "email" and email) or (c != "email" and phone)]
    ordered = [c for c in dict.fromkeys([*preferred, *SENDABLE]) if c in has]
    if not ordered:
        return RetentionRoute(False)
    return RetentionRoute(True, ordered[0], tuple(ordered[1:]))

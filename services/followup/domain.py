"""Pure rules of the follow-up service: when a task is opened, how it moves, what closes the loop.

A task is ``open`` when negative feedback arrives from a customer who agreed to be contacted,
stays ``open`` while it is (re)assigned, becomes ``resolved`` when an agent resolves it with a
note, and ``closed`` when the retention survey's answer says whether the customer was won back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["open", "resolved", "closed"]
STATUSES: tuple[Status, ...] = ("open", "resolved", "closed")

NO_RETENTION_SURVEY = (
    "No retention survey was sent: this workspace has no retention survey configured. "
    'Set one with PUT /v1/settings {"retention_survey_id": "<survey id>"} so that resolved tasks '
    "ask the customer whether the solution won them back."
)


class TransitionRefused(Exception):
    """The task's status does not allow this step."""


@dataclass(frozen=True)
class Decision:
    open_task: bool
    reason: str


def decide_on_negative_feedback(*, consent_to_contact: bool, kind: str) -> Decision:
    """Return whether negative feedback opens a task, and why (not)."""
    if kind == "retention":
        return Decision(False, "retention answers close an existing task; they never open one")
    if not consent_to_contact:
        return Decision(False, "the customer did not agree to be contacted")
    return Decision(True, "negative feedback from a customer who agreed to be contacted")


def check_assignable(status: str) -> None:
    """Raise ``TransitionRefused`` unless a task with ``status`` can be (re)assigned."""
    if status != "open":
        raise TransitionRefused(f"the task is {status}; only open tasks can be assigned")


def check_resolvable(status: str) -> None:
    """Raise ``TransitionRefused`` unless a task with ``status`` can be resolved."""
    if status != "open":
        raise TransitionRefused(f"the task is already {status}; a task is resolved once")


def accepts_outcome(status: str) -> bool:
    """Return whether a retention answer still changes a task (only resolved tasks await one)."""
    return status == "resolved"


def won_back(*, negative: bool) -> bool:
    """Return whether the retention answer means the customer was won back: anything not negative."""
    return not negative


def retention_reason(task_id: str) -> str:
    """Return the ``reason`` carried by the retention survey request of a task."""
    return f"followup:{task_id}"


def new_task_notice(*, metric: str, score: int, comment: str | None, task_id: str) -> tuple[str, str]:
    """Return the subject and body that tell staff a customer is waiting to hear back."""
    subject = f"New follow-up: {metric.upper()} {score} from a customer who agreed to be contacted"
    said = f'They said: "{comment}"' if comment else "They left no comment."
    body = (
        f"A customer answered {score} on {metric.upper()} and agreed to be contacted.\n{said}\n\n"
        f"Task {task_id}: assign it and call them back (GET /v1/tasks/{task_id} on the follow-up API)."
    )
    return subject, body

"""The errors respondents and survey editors see, beyond the shared ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from services.responses.domain.answers import Problem
from services.responses.domain.definition import FieldError
from shared.errors import Conflict, Gone, InvalidInput

INVALID_LINK = (
    "This survey link is not valid. Please open the link from your invitation exactly as it was sent."
)


class SurveyClosed(Gone):
    """The survey is closed and takes no new responses (410)."""

    code, title = "survey-closed", "Survey closed"


class KioskSwitchedOff(Gone):
    """The kiosk was switched off: its link and QR code are gone (410)."""

    code, title = "kiosk-switched-off", "Kiosk switched off"


class LinkExpired(Gone):
    """The survey link's token has expired (410)."""

    code, title = "link-expired", "Link expired"


def invalid(message: str, errors: Sequence[FieldError]) -> InvalidInput:
    """Return ``InvalidInput`` naming each field at fault of a definition or a branding."""
    return InvalidInput(
        message + ": " + ", ".join(e.field for e in errors),
        errors=[{"field": e.field, "message": e.message} for e in errors],
    )


def already_answered() -> Conflict:
    """Return the error of a second response through one invitation."""
    return Conflict("This invitation has already been answered; one response per invitation.", field="token")


def answer_problems(problems: Mapping[str, Problem]) -> InvalidInput:
    """Return ``InvalidInput`` naming each answer at fault (``answers.<question id>``)."""
    return InvalidInput(
        "Some answers are not valid: " + ", ".join(f"answers.{q}" for q in problems),
        errors=[{"field": f"answers.{q}", "message": p.text()} for q, p in problems.items()],
    )

"""A claimed message and everything needed to send it without the database, and its outcome."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.dispatch import templates
from services.dispatch.channels import ChannelSettings, SendError
from services.dispatch.handlers.surveys import SurveyInfo
from services.dispatch.models import Invitation, Reminder, Template
from services.dispatch.schemas import WorkspaceConfig


@dataclass
class Job:
    """One claimed message and everything needed to send it without the database."""

    invitation: Invitation
    reminder: Reminder | None
    channel: str
    attempts: int
    config: ChannelSettings
    workspace: WorkspaceConfig
    template: templates.TemplateSpec | None
    message_id: str | None
    seq: int = 0
    survey: SurveyInfo | None = None
    """The survey as dispatch last heard of it (its first question is embedded), or None: unknown."""
    outcome: Outcome | None = None

    @property
    def row_id(self) -> str:
        """The id of the claimed row: the reminder's, or the invitation's."""
        return self.reminder.id if self.reminder is not None else self.invitation.id


@dataclass
class Outcome:
    """What handing a message over gave: the provider's id for it, or the error."""

    provider_message_id: str | None = None
    error: SendError | None = None


@dataclass
class ClaimContext:
    """What the rules of one claim need, loaded once for every message of the pass."""

    workspaces: dict[str, WorkspaceConfig]
    channels: dict[tuple[str, str], ChannelSettings]
    opt_outs: dict[tuple[str, str], set[str]]
    invalid: set[tuple[str, str]]
    templates: dict[str, Template]
    surveys: dict[tuple[str, str], SurveyInfo] = field(default_factory=dict)
    rate_left: dict[tuple[str, str], int | None] = field(default_factory=dict)

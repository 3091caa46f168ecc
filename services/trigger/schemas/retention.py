"""Request and response body of the retention policy: how long answers stay identifiable."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from services.trigger.schemas.common import Strict

DAYS_DESCRIPTION = (
    "Keep answers identifiable this many days, then anonymise them in every service: their links to the "
    "contact and their free text go, scores and dimensions stay. null (the default): keep them."
)


class RetentionIn(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"anonymise_after_days": 365}]})

    anonymise_after_days: int | None = Field(ge=1, le=3650, description=DAYS_DESCRIPTION)


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    day: date = Field(description="The UTC day of the run.")
    cutoff: datetime = Field(description="What was older than this was anonymised.")
    anonymise_after_days: int
    ran_at: datetime


class RetentionOut(BaseModel):
    anonymise_after_days: int | None = Field(description=DAYS_DESCRIPTION)
    last_run: RunOut | None = Field(
        description="The latest daily run (AnonymisationDue); null before the first. Runs start within "
        "CLOSELOOP_TRIGGER_ANONYMISE_INTERVAL_S of midnight UTC, and at once when a policy is set."
    )

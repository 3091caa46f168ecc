"""Response bodies for the surveys trigger knows (from responses' survey events)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class SurveyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    survey_id: str = Field(description="The survey's id in responses: what a rule's survey_id names")
    name: str | None = Field(description="As last published; null while only a close or reopen was seen")
    version: int = Field(description="The latest version published (0: none seen yet)")
    open: bool = Field(description="false: the survey is closed, and rules naming it ask nobody")
    state_at: datetime = Field(description="When responses last published, closed or reopened it")
    updated_at: datetime | None = Field(None, description="When trigger learnt of it last")

"""The closed-loop metrics and the recovery funnel."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class MetricsGroup(BaseModel):
    key: str
    opened: int
    contacted: int
    contacted_within_sla_pct: float | None = Field(
        description="Calendar clock (the customer's view, the KPI)."
    )
    contacted_within_business_sla_pct: float | None
    resolved: int
    resolved_within_sla_pct: float | None
    resolved_within_business_sla_pct: float | None
    median_hours_to_first_contact: float | None
    p90_hours_to_first_contact: float | None
    median_hours_to_resolution: float | None
    p90_hours_to_resolution: float | None
    reopen_rate: float | None = Field(description="Cases reopened / cases ever resolved.")
    retention_requested: int
    retention_not_possible: int
    retention_answered: int
    won_back: int
    won_back_rate: float | None = Field(description="Won back / retention answers.")
    won_back_interval: tuple[float, float] | None = Field(description="95% Wilson score interval.")
    detractors: int
    climbed: int = Field(description="Detractors who answered a later survey as promoters.")
    climbed_rate: float | None


class MetricsOut(BaseModel):
    by: str
    since: datetime | None
    until: datetime | None
    groups: list[MetricsGroup]


class FunnelStepOut(BaseModel):
    step: str
    count: int
    share_of_previous: float | None
    dropped: int


class FunnelOut(BaseModel):
    since: datetime | None
    until: datetime | None
    steps: list[FunnelStepOut]

"""Request and response bodies of the scoring API."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from shared.vocabulary import Interval, Metric, NpsScale


class NpsOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "survey_id": "5f1c…",
                    "scale": "standard",
                    "n": 3,
                    "promoters": 1,
                    "passives": 1,
                    "detractors": 1,
                    "nps": 0.0,
                    "margin_of_error": 92.38,
                }
            ]
        }
    )

    survey_id: str
    scale: NpsScale
    n: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None = Field(description="% promoters − % detractors, −100…+100; null when n is 0.")
    margin_of_error: float | None = Field(description="95% margin of error in NPS points; null when n is 0.")


class MetricOut(BaseModel):
    metric: Metric
    n: int
    positive: int = Field(description="Promoters for NPS/NLS; 4–5 for CSAT; 5–7 for CES.")
    neutral: int = Field(description="Passives for NPS/NLS; 3 for CSAT; 4 for CES.")
    negative: int = Field(description="Detractors for NPS/NLS; 1–2 for CSAT; 1–3 for CES.")
    score: float | None = Field(
        description="NPS/NLS: net score (−100…+100); CSAT: % of 4–5; CES: % of 5–7. Null when n is 0."
    )
    mean: float | None
    margin_of_error: float | None = Field(description="95% margin of error of `score`, in points.")


class MetricsOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "survey_id": None,
                    "from": "2026-11-01",
                    "to": None,
                    "scale": "standard",
                    "metrics": [
                        {
                            "metric": "csat",
                            "n": 40,
                            "positive": 30,
                            "neutral": 6,
                            "negative": 4,
                            "score": 75.0,
                            "mean": 4.05,
                            "margin_of_error": 13.42,
                        }
                    ],
                }
            ]
        },
        populate_by_name=True,
    )

    survey_id: str | None
    since: date | None = Field(serialization_alias="from")
    until: date | None = Field(serialization_alias="to")
    scale: NpsScale
    metrics: list[MetricOut]


class TrendPoint(MetricOut):
    period_start: date


class TrendOut(BaseModel):
    survey_id: str | None
    metric: Metric
    interval: Interval
    scale: NpsScale
    points: list[TrendPoint] = Field(description="One point per period that has responses, oldest first.")


class SurveyScoringIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"nps_scale": "european"}]})

    nps_scale: NpsScale = Field(
        description="`standard`: promoters 9–10; `european`: promoters 8–10. "
        "Applies to responses scored from now on and to reports."
    )


class SurveyScoringOut(SurveyScoringIn):
    survey_id: str
    configured: bool = Field(description="False when the workspace default applies.")

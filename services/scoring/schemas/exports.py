"""Bodies of segments out: a segment's contacts, a page at a time."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from services.scoring.queries.segments import SegmentName


class MemberOut(BaseModel):
    """A contact in the segment, with the latest answer that put them there."""

    contact_id: str
    response_id: str
    survey_id: str
    question_id: str = Field(description="The NPS (or NLS) question of that answer.")
    score: int
    nls: int | None = Field(description="The same response's NLS answer (matrix cells); null otherwise.")
    completed_at: datetime
    dimensions: dict[str, str] = Field(description="The response's dimensions when it was answered.")


class SegmentPageOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "segment": "promoter",
                    "items": [
                        {
                            "contact_id": "5b0c6f0e-8a51-4a8e-9d1c-0f7a2f0c9e11",
                            "response_id": "r-81",
                            "survey_id": "svy-support-nps",
                            "question_id": "nps",
                            "score": 10,
                            "nls": None,
                            "completed_at": "2026-11-29T14:02:11+00:00",
                            "dimensions": {"channel": "email", "kind": "transactional", "country": "NL"},
                        }
                    ],
                    "next_cursor": "q1E0Gd7VvZpbInNjb3JpbmcuLi4iXQ",
                }
            ]
        }
    )

    segment: SegmentName
    items: list[MemberOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")

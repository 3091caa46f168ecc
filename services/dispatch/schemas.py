"""Response bodies of the dispatch API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

InvitationStatus = Literal["scheduled", "sending", "sent", "failed"]


class InvitationOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "3f2a1c9e-8d4b-4e61-9a55-0c7e2b1d9f10",
                    "request_id": "b7c1…",
                    "contact_id": "5d0e…",
                    "survey_id": "svy-csat",
                    "kind": "transactional",
                    "channel": "email",
                    "status": "sent",
                    "recipient_email": "ada@example.com",
                    "recipient_name": "Ada Lovelace",
                    "survey_url": "https://surveys.example.com/s/eyJ3cyI6…",
                    "message_id": "<invitation.3f2a1c9e-8d4b-4e61-9a55-0c7e2b1d9f10@example.com>",
                    "attempts": 1,
                    "last_error": None,
                    "created_at": "2026-11-23T10:00:00Z",
                    "send_at": "2026-11-23T10:00:00Z",
                    "sent_at": "2026-11-23T10:00:01Z",
                }
            ]
        },
    )

    id: str
    request_id: str
    contact_id: str
    survey_id: str
    kind: str
    channel: str
    status: InvitationStatus
    recipient_email: str | None
    recipient_name: str | None
    survey_url: str
    message_id: str | None
    attempts: int
    last_error: str | None
    created_at: datetime
    send_at: datetime
    sent_at: datetime | None

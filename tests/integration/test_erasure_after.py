"""Events that arrive after their contact was erased store no personal data, and events still in an
outbox when the erasure comes lose it (handlers against a rolled-back session: the middle tier).

The race: another service's outbox relay reads an event about a contact, that service then erases the
contact (scrubbing its outbox, too late for the row already read), and the relay publishes what it
read. A consumer that already handled ``ContactErased`` must not store the personal data that event
carries. Each service remembers erased contacts (``shared.erasure``) and asks before storing.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.handlers import erasure as dispatch_erasure
from services.dispatch.models import Notification, WebhookDelivery, WebhookSubscription
from services.dispatch.models import outbox as dispatch_outbox
from services.dispatch.notifier import notification_requested
from services.followup.handlers import config, opening
from services.followup.handlers import erasure as followup_erasure
from services.followup.models import Case, Decision, SeenResponse
from services.followup.models import outbox as followup_outbox
from services.scoring.handlers import erasure as scoring_erasure
from services.scoring.handlers import ingest, notify
from services.scoring.models import Comment, ScoredResponse
from services.scoring.models import outbox as scoring_outbox
from shared.erasure import ERASED_BODY
from shared.events import (
    Answer,
    ContactErased,
    NegativeFeedbackDetected,
    NotificationRequested,
    Recipient,
    ResponseCompleted,
    ResponseScored,
    new_id,
    utcnow,
)
from shared.outbox import Outbox
from tests.integration.test_followup_cases import negative
from tests.support.db import outbox_events

ADA = Recipient(name="Ada Quill", email="ada.quill@example.com", phone="+31611122233")
COMMENT = "Nobody came to Keizersgracht 99 all week."


def erased(workspace: str, contact_id: str) -> ContactErased:
    return ContactErased(workspace_id=workspace, contact_id=contact_id, erased_at=utcnow())


def completed(workspace: str, contact_id: str) -> ResponseCompleted:
    return ResponseCompleted(
        workspace_id=workspace,
        response_id=new_id(),
        invitation_id=None,
        request_id=new_id(),
        contact_id=contact_id,
        survey_id="svy-nps",
        survey_version=1,
        kind="transactional",
        channel="email",
        answers=(
            Answer(question_id="nps", type="nps", value=2),
            Answer(question_id="why", type="open", value=COMMENT),
        ),
        consent_to_contact=True,
        respondent=ADA,
        completed_at=utcnow(),
        hidden_fields={"agent": "Grace", "attr.plan": "pro"},
    )


def names_nobody(text: str) -> bool:
    return not any(s in text for s in ("Keizersgracht", "Ada Quill", "ada.quill@example.com", "+31611122233"))


# --- scoring ----------------------------------------------------------------------------------------


async def score(session: AsyncSession, event: ResponseCompleted) -> None:
    await ingest.score_response(
        session, Outbox(scoring_outbox, source="scoring"), event=event, default_scale="standard"
    )
    await ingest.flush(session)


async def notify_on_low_nps(session: AsyncSession, workspace: str) -> None:
    """A scoring notification rule for NPS answers at or below the metric's own negative threshold."""
    await notify.add_rule(
        session,
        workspace_id=workspace,
        name="Low",
        metric="nps",
        max_score=None,
        filters=[],
        channel="webhook",
        to="x",
    )


async def test_scoring_keeps_a_late_response_of_an_erased_contact_without_naming_them(uow, workspace):
    await notify_on_low_nps(uow, workspace)
    await scoring_erasure.erase_contact(uow, event=erased(workspace, "c-gone"))
    late = completed(workspace, "c-gone")
    await score(uow, late)

    row = await uow.scalar(select(ScoredResponse).where(ScoredResponse.response_id == late.response_id))
    assert row is not None and row.contact_id is None and row.score == 2
    assert row.dimensions == {"agent": "Grace", "channel": "email", "kind": "transactional", "plan": "pro"}
    assert not (await uow.scalars(select(Comment).where(Comment.workspace_id == workspace))).all()
    events = [e for e in await outbox_events(uow, scoring_outbox) if e.workspace_id == workspace]
    scored = [e for e in events if isinstance(e, ResponseScored | NegativeFeedbackDetected)]
    assert len(scored) == 2
    assert all(e.respondent is None and e.comment is None and not e.consent_to_contact for e in scored)
    (notice,) = [e for e in events if isinstance(e, NotificationRequested)]
    assert names_nobody(notice.body) and notice.contact_id is None


async def test_scoring_names_a_contact_it_has_not_erased_and_scrubs_its_outbox_when_it_does(uow, workspace):
    await notify_on_low_nps(uow, workspace)
    await score(uow, completed(workspace, "c-here"))
    before = [e for e in await outbox_events(uow, scoring_outbox) if e.workspace_id == workspace]
    assert not all(names_nobody(e.model_dump_json()) for e in before), "the events name the contact at first"
    assert (await uow.scalars(select(Comment).where(Comment.workspace_id == workspace))).all()

    await scoring_erasure.erase_contact(uow, event=erased(workspace, "c-here"))

    after = [e for e in await outbox_events(uow, scoring_outbox) if e.workspace_id == workspace]
    assert len(after) == len(before)
    assert all(names_nobody(e.model_dump_json()) for e in after)
    assert [e.body for e in after if isinstance(e, NotificationRequested)] == [ERASED_BODY]
    assert not (await uow.scalars(select(Comment).where(Comment.workspace_id == workspace))).all()


# --- followup ---------------------------------------------------------------------------------------


def detractor(workspace: str, contact_id: str) -> NegativeFeedbackDetected:
    return negative(workspace, contact_id=contact_id, respondent=ADA, comment=COMMENT)


async def test_followup_opens_no_case_for_a_late_detractor_who_was_erased(uow, workspace):
    outbox = Outbox(followup_outbox, source="followup")
    await followup_erasure.erase_contact(uow, event=erased(workspace, "c-gone"), now=utcnow())
    late = detractor(workspace, "c-gone")

    assert await opening.on_negative_feedback(uow, outbox, event=late, now=utcnow()) is None
    scored = ResponseScored(
        **late.model_dump(exclude={"negatives", "detected_at"}), negative=True, scored_at=utcnow()
    )
    await opening.on_response_scored(uow, outbox, event=scored, now=utcnow())

    assert not (await uow.scalars(select(Case).where(Case.workspace_id == workspace))).all()
    (decision,) = (await uow.scalars(select(Decision).where(Decision.workspace_id == workspace))).all()
    assert (decision.outcome, decision.contact_id) == ("erased", None)
    seen = (await uow.scalars(select(SeenResponse).where(SeenResponse.workspace_id == workspace))).all()
    assert [(s.contact_id, s.consented, s.negative) for s in seen] == [(None, False, True)]
    assert [e for e in await outbox_events(uow, followup_outbox) if e.workspace_id == workspace] == []


async def test_followup_scrubs_the_new_case_notice_and_events_still_in_its_outbox(uow, workspace):
    outbox = Outbox(followup_outbox, source="followup")
    await config.put_settings(uow, workspace_id=workspace, values={"notify_email": "cx@acme.example"})
    case = await opening.on_negative_feedback(uow, outbox, event=detractor(workspace, "c-here"), now=utcnow())
    assert case is not None
    before = [e for e in await outbox_events(uow, followup_outbox) if e.workspace_id == workspace]
    (notice,) = [e for e in before if isinstance(e, NotificationRequested)]
    assert "Keizersgracht" in notice.body and notice.contact_id == "c-here"

    await followup_erasure.erase_contact(uow, event=erased(workspace, "c-here"), now=utcnow())

    after = [e for e in await outbox_events(uow, followup_outbox) if e.workspace_id == workspace]
    assert [type(e) for e in after] == [type(e) for e in before]
    assert all(names_nobody(e.model_dump_json()) for e in after)
    assert [e.body for e in after if isinstance(e, NotificationRequested)] == [ERASED_BODY]


# --- dispatch ---------------------------------------------------------------------------------------


def notice(workspace: str, contact_id: str | None, channel: str = "email") -> NotificationRequested:
    return NotificationRequested(
        workspace_id=workspace,
        notification_id=new_id(),
        channel=channel,  # type: ignore[arg-type]
        to="cx@acme.example" if channel == "email" else "scoring.low_score",
        subject="New follow-up: NPS 2",
        body=f'They said: "{COMMENT}"',
        contact_id=contact_id,
    )


async def test_dispatch_keeps_no_body_of_a_late_notice_about_an_erased_contact(uow, workspace):
    uow.add(
        WebhookSubscription(
            id=new_id(), workspace_id=workspace, url="https://crm.example/h", secret="whsec_x", event_types=[]
        )
    )
    await dispatch_erasure.erase_contact(
        uow, Outbox(dispatch_outbox, source="dispatch"), event=erased(workspace, "c-gone"), now=utcnow()
    )
    await notification_requested(uow, event=notice(workspace, "c-gone"), now=utcnow())
    await notification_requested(uow, event=notice(workspace, "c-gone", "webhook"), now=utcnow())
    await notification_requested(uow, event=notice(workspace, None), now=utcnow())
    await uow.flush()

    bodies = (
        await uow.scalars(select(Notification.body).where(Notification.workspace_id == workspace))
    ).all()
    assert sorted(bodies) == sorted([ERASED_BODY, f'They said: "{COMMENT}"'])
    (delivery,) = (
        await uow.scalars(select(WebhookDelivery).where(WebhookDelivery.workspace_id == workspace))
    ).all()
    assert delivery.payload["data"]["body"] == ERASED_BODY and delivery.contact_id == "c-gone"

"""A local HTTP server standing in for the SMS provider, chat webhooks and integrators' endpoints.

``FakeProvider`` serves the Twilio Messages API as Twilio documents it
(https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource):
``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, HTTP basic auth with the account SID
and auth token, an ``application/x-www-form-urlencoded`` body with ``To``, ``From`` (or
``MessagingServiceSid``) and ``Body``; it answers ``201`` with the message resource. Every
request that breaks those rules is answered the way Twilio would and kept in ``violations``,
so a test can assert there were none.

``/hooks/{name}`` records whatever is posted (chat webhooks, outgoing webhooks) and answers
with the status set in ``hook_status[name]`` (200 by default) and the body in ``hook_body[name]``.

``Dispatch`` runs the dispatch app in-process against the test stack, with helpers to publish
events and wait for what dispatch made of them.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
from aiokafka import AIOKafkaProducer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from closeloop.infra import free_port
from services.dispatch.app import create_app
from services.dispatch.deps import DispatchRuntime
from services.dispatch.models import Survey
from services.dispatch.settings import DispatchSettings
from shared.clock import Clock
from shared.events import (
    CUSTOMER_EVENTS,
    INVITATIONS,
    EventData,
    NotificationRequested,
    SurveyPublished,
    SurveyQuestion,
    new_id,
    utcnow,
)
from tests.support.served import serve
from tests.support.stack import TopicReader, publish, running, settings_from, wait_until

SURVEY_BASE_URL = "https://surveys.test"
PUBLIC_URL = "https://go.test"
"""Where ``running_dispatch`` says the survey pages and dispatch's own links are."""

E164 = re.compile(r"^(whatsapp:)?\+[1-9][0-9]{6,14}$")


@dataclass
class SentMessage:
    sid: str
    account_sid: str
    to: str
    sender: str
    body: str
    status_callback: str | None
    form: dict[str, str]
    at: float


@dataclass
class Hook:
    name: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class FakeProvider:
    account_sid: str = "AC" + secrets.token_hex(16)
    auth_token: str = secrets.token_hex(16)
    messages: list[SentMessage] = field(default_factory=list)
    hooks: list[Hook] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    invalid_numbers: set[str] = field(default_factory=set)
    """Numbers answered with Twilio's 400 / code 21211 ("invalid To")."""
    outage: int = 0
    """Answer the next ``outage`` message requests with 503."""
    hook_status: dict[str, int] = field(default_factory=dict)
    hook_body: dict[str, bytes] = field(default_factory=dict)
    """What ``/hooks/{name}`` answers with (``ok``/``nope`` by default)."""
    host: str = "127.0.0.1"
    """The loopback address it listens on (``127.0.0.2`` stands for a network an operator allows)."""
    answer_after_s: float = 0.0
    """Answer message requests this long after keeping them (a slow provider: a send in flight)."""
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def hook_url(self, name: str) -> str:
        return f"{self.url}/hooks/{name}"

    def hooks_for(self, name: str) -> list[Hook]:
        return [h for h in self.hooks if h.name == name]

    def _violation(self, status: int, code: int, message: str) -> JSONResponse:
        self.violations.append(message)
        return JSONResponse({"code": code, "message": message, "status": status}, status_code=status)

    async def create_message(self, request: Request) -> Response:
        if request.path_params["sid"] != self.account_sid:
            return self._violation(404, 20404, f"unknown account {request.path_params['sid']}")
        auth = request.headers.get("authorization", "")
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if auth != expected:
            return self._violation(401, 20003, "Authenticate: basic auth with the account SID and auth token")
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return self._violation(400, 21601, "the body must be application/x-www-form-urlencoded")
        parsed = parse_qs((await request.body()).decode(), keep_blank_values=True, strict_parsing=False)
        if any(len(v) != 1 for v in parsed.values()):
            return self._violation(400, 21601, "each parameter once")
        form = {k: v[0] for k, v in parsed.items()}
        unknown = set(form) - {"To", "From", "MessagingServiceSid", "Body", "StatusCallback", "MediaUrl"}
        if unknown:
            return self._violation(400, 21601, f"unknown parameters {sorted(unknown)}")
        to, sender = form.get("To", ""), form.get("From") or form.get("MessagingServiceSid", "")
        if not E164.match(to):
            return self._violation(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not sender or ("From" in form and not E164.match(sender)):
            return self._violation(400, 21603, "A 'From' phone number is required.")
        if to.startswith("whatsapp:") != form.get("From", "whatsapp:").startswith("whatsapp:"):
            return self._violation(400, 63007, "To and From must both be WhatsApp addresses or neither")
        if not form.get("Body"):
            return self._violation(400, 21602, "Message body is required.")
        if len(form["Body"]) > 1600:
            return self._violation(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        if self.outage > 0:
            self.outage -= 1
            return JSONResponse(
                {"code": 20500, "message": "Internal Server Error", "status": 503}, status_code=503
            )
        if to.removeprefix("whatsapp:") in self.invalid_numbers:
            return JSONResponse(
                {
                    "code": 21211,
                    "message": f"The 'To' number {to} is not a valid phone number.",
                    "status": 400,
                },
                status_code=400,
            )
        sid = "SM" + secrets.token_hex(16)
        self.messages.append(
            SentMessage(
                sid,
                self.account_sid,
                to,
                sender,
                form["Body"],
                form.get("StatusCallback"),
                form,
                time.monotonic(),
            )
        )
        if self.answer_after_s:
            await asyncio.sleep(self.answer_after_s)
        return JSONResponse(
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": to,
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": form["Body"],
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            },
            status_code=201,
        )

    async def hook(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.hooks.append(Hook(name, dict(request.headers), await request.body(), time.monotonic()))
        status = self.hook_status.get(name, 200)
        body = self.hook_body.get(name, b"ok" if status < 300 else b"nope")
        return Response(body, status_code=status, media_type="text/plain")

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/2010-04-01/Accounts/{sid}/Messages.json", self.create_message, methods=["POST"]),
                Route("/hooks/{name}", self.hook, methods=["POST"]),
            ]
        )

    async def __aenter__(self) -> FakeProvider:
        self.port = self.port or free_port()
        self._served = await serve(self.app(), self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._served.stop()

    def sent_to(self, number: str) -> list[SentMessage]:
        return [m for m in self.messages if m.to.removeprefix("whatsapp:") == number]

    def as_dict(self) -> dict[str, Any]:
        return {"messages": len(self.messages), "hooks": len(self.hooks), "violations": self.violations}


def published(
    workspace: str, survey_id: str, *questions: dict[str, Any], version: int = 1
) -> SurveyPublished:
    """The event responses publishes when a survey version is created (here: with these questions, in
    English and Dutch)."""
    return SurveyPublished(
        workspace_id=workspace,
        survey_id=survey_id,
        survey_version=version,
        name=survey_id,
        open=True,
        questions=tuple(SurveyQuestion.model_validate(q) for q in questions),
        languages=("en", "nl"),
        published_at=utcnow(),
    )


def notification(
    workspace: str, channel: str, to: str, subject: str = "S", body: str = "B"
) -> NotificationRequested:
    """A new notification of ``workspace`` for dispatch to send on ``channel`` to ``to``."""
    return NotificationRequested(
        workspace_id=workspace,
        notification_id=new_id(),
        channel=channel,
        to=to,
        subject=subject,
        body=body,
    )


@dataclass
class Dispatch:
    """The dispatch app running in-process, with what a test needs around it."""

    client: httpx.AsyncClient
    runtime: DispatchRuntime
    producer: AIOKafkaProducer
    invitations: TopicReader
    provider: FakeProvider
    customer_events: TopicReader | None = None
    """What dispatch published on ``CUSTOMER_EVENTS``, when ``running_dispatch`` was asked to read it."""

    @property
    def clock(self) -> Clock:
        return self.runtime.deps.clock

    def wake(self) -> None:
        self.runtime.deps.sender.wake()
        self.runtime.deps.notifier.wake()

    async def publish(self, data: EventData) -> str:
        return await publish(self.producer, data)

    async def invitation(
        self, auth: dict[str, str], request_id: str, *, status: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Return the request's invitation once it has ``status`` (and the ``extra`` field values)."""

        async def check() -> dict[str, Any] | None:
            response = await self.client.get(
                "/v1/invitations", params={"request_id": request_id}, headers=auth
            )
            assert response.status_code == 200, response.text
            found = response.json()
            if not found or (status and found[0]["status"] != status):
                return None
            if any(found[0].get(k) != v for k, v in extra.items()):
                return None
            return dict(found[0])

        return dict(await wait_until(check, message=f"invitation for {request_id} {status} {extra}"))

    async def events(self, invitation_id: str, type_name: str, count: int = 1) -> list[dict[str, Any]]:
        found = await self.invitations.wait_for(
            lambda v: (
                v["type"] == f"closeloop.{type_name}.v1" and v["data"]["invitation_id"] == invitation_id
            ),
            count=count,
        )
        return [e["data"] for e in found]

    def no_events(self, invitation_id: str, type_name: str) -> bool:
        """Whether no ``type_name`` event of the invitation has been read so far."""
        return not [
            v
            for v in self.invitations.values()
            if v["type"] == f"closeloop.{type_name}.v1" and v["data"]["invitation_id"] == invitation_id
        ]

    async def knows_survey(self, workspace: str, survey_id: str, version: int = 1) -> None:
        """Wait until dispatch has stored the survey version (events of two topics arrive in any order)."""

        async def stored() -> bool:
            async with self.runtime.db.unit_of_work() as session:
                return await session.get(Survey, (workspace, survey_id, version)) is not None

        await wait_until(stored, message=f"dispatch knows {survey_id} v{version}")


@asynccontextmanager
async def running_dispatch(
    stack_env: dict[str, str],
    producer: AIOKafkaProducer,
    provider: FakeProvider | None = None,
    *,
    customer_events: bool = False,
    **overrides: Any,
) -> AsyncIterator[Dispatch]:
    """Run dispatch against the test stack with ``provider`` (by default a ``FakeProvider`` of its own,
    closed after dispatch) as the deployment's SMS provider (and a reader of ``CUSTOMER_EVENTS`` too
    with ``customer_events``)."""
    async with AsyncExitStack() as opened:
        if provider is None:
            provider = await opened.enter_async_context(FakeProvider())
        settings = settings_from(
            DispatchSettings,
            stack_env,
            **{
                "survey_base_url": SURVEY_BASE_URL,
                "public_url": PUBLIC_URL,
                "mail_from": "Acme surveys <surveys@acme.test>",
                "send_max_attempts": 3,
                "send_backoff_s": 0.05,
                "sender_poll_interval_ms": 100,
                "twilio_base_url": provider.url,
                "twilio_account_sid": provider.account_sid,
                "twilio_auth_token": provider.auth_token,
                "sms_from": "+15005550006",
                "whatsapp_from": "+14155238886",
                "webhook_max_attempts": 2,
                "webhook_backoff_s": 0.01,
                **overrides,
            },
        )
        app = create_app(settings)
        client = await opened.enter_async_context(running(app))
        bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
        reader = await opened.enter_async_context(TopicReader(bootstrap, INVITATIONS))
        customers = (
            await opened.enter_async_context(TopicReader(bootstrap, CUSTOMER_EVENTS))
            if customer_events
            else None
        )
        runtime: DispatchRuntime = app.state.runtime
        for consumer in [runtime.consumer, *runtime.groups.values()]:
            if consumer is not None:
                await wait_until(
                    consumer.assigned.is_set, message=f"dispatch consumer {consumer.name} assigned"
                )
        yield Dispatch(client, runtime, producer, reader, provider, customers)

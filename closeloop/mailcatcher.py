"""A local SMTP server that keeps every message, for development and tests.

``MailCatcher`` runs aiosmtpd in a thread, keeps the messages in memory (and in a maildir
when given one) and lets callers wait for a message that matches a condition.
``inbox_app`` is a small web inbox over the same messages for ``make run``.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import html
import mailbox
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse

T = TypeVar("T")


class MailCatcher:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, maildir: Path | None = None) -> None:
        self.host = host
        self.port = port
        self.messages: list[EmailMessage] = []
        self.arrived_at: list[float] = []
        """``time.monotonic()`` of each message's arrival, parallel to ``messages``."""
        self._changed = threading.Condition()
        self._maildir = mailbox.Maildir(maildir, create=True) if maildir else None
        self._controller: Controller | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = email.message_from_bytes(envelope.original_content or b"", policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if self._maildir is not None:
            self._maildir.add(envelope.original_content or b"")
        with self._changed:
            self.messages.append(message)
            self.arrived_at.append(time.monotonic())
            self._changed.notify_all()
        return "250 Message accepted for delivery"

    def start(self) -> MailCatcher:
        if self.port == 0:
            from closeloop.infra import free_port

            self.port = free_port()
        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller:
            self._controller.stop()

    def wait_until_sync(
        self,
        condition: Callable[[list[EmailMessage]], T | None],
        *,
        timeout_s: float = 30,
        what: str = "matching email",
    ) -> T:
        """Return the first non-None result of ``condition`` over all messages, as messages arrive."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                result = condition(self.messages)
                if result is not None:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    subjects = [m["Subject"] for m in self.messages[-10:]]
                    raise TimeoutError(f"no {what} within {timeout_s}s; last subjects received: {subjects}")
                self._changed.wait(remaining)

    async def wait_until(
        self,
        condition: Callable[[list[EmailMessage]], T | None],
        *,
        timeout_s: float = 30,
        what: str = "matching email",
    ) -> T:
        return await asyncio.to_thread(self.wait_until_sync, condition, timeout_s=timeout_s, what=what)

    async def wait_for(self, match: Callable[[EmailMessage], bool], *, timeout_s: float = 30) -> EmailMessage:
        """Return the first message that matches, waiting for it to arrive."""
        return await self.wait_until(
            lambda messages: next((m for m in messages if match(m)), None), timeout_s=timeout_s
        )

    async def wait_for_count(
        self, match: Callable[[EmailMessage], bool], count: int, *, timeout_s: float = 60
    ) -> list[EmailMessage]:
        """Return the matching messages once there are at least ``count`` of them."""

        def enough(messages: list[EmailMessage]) -> list[EmailMessage] | None:
            found = [m for m in messages if match(m)]
            return found if len(found) >= count else None

        return await self.wait_until(enough, timeout_s=timeout_s, what=f"{count} matching emails")


def recipient(message: EmailMessage) -> str:
    """Return the bare address of the first ``To`` recipient."""
    addresses = getattr(message["To"], "addresses", ())
    return addresses[0].addr_spec if addresses else str(message["To"])


def body_of(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    return part.get_content() if part is not None else ""


def inbox_app(catcher: MailCatcher) -> FastAPI:
    """A web inbox: the list at ``/``, one message at ``/messages/{n}``, JSON at ``/api/messages``."""
    app = FastAPI(title="closeloop mail catcher", docs_url=None, redoc_url=None)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        rows = "".join(
            f"<tr><td>{i}</td><td>{html.escape(str(m['To']))}</td>"
            f'<td><a href="/messages/{i}">{html.escape(str(m["Subject"]))}</a></td><td>{html.escape(str(m["Date"]))}</td></tr>'
            for i, m in reversed(list(enumerate(catcher.messages)))
        )
        return (
            "<!doctype html><meta charset=utf-8><title>closeloop mail</title>"
            "<style>body{font:15px system-ui;margin:2rem}td{padding:.3rem .8rem;border-bottom:1px solid #ddd}</style>"
            f"<h1>Mail caught by closeloop ({len(catcher.messages)})</h1>"
            f"<table><tr><th>#</th><th>To</th><th>Subject</th><th>Date</th></tr>{rows}</table>"
        )

    @app.get("/messages/{n}", response_class=HTMLResponse)
    async def show(n: int) -> str:
        if not 0 <= n < len(catcher.messages):
            raise HTTPException(404, "no such message")
        message = catcher.messages[n]
        return body_of(message, "html") or f"<pre>{html.escape(body_of(message, 'plain'))}</pre>"

    @app.get("/api/messages")
    async def listing() -> list[dict[str, str]]:
        return [
            {"to": str(m["To"]), "subject": str(m["Subject"]), "text": body_of(m, "plain")}
            for m in catcher.messages
        ]

    return app

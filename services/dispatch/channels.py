"""The edges of dispatch: an SMTP connection pool and the HTTP calls to providers and webhooks.

Each function hands one message over and returns the provider's id, or raises ``SendError``
saying whether a retry could help (``permanent``) and whether the address itself is bad
(``hard_bounce``: it is marked invalid and the next fallback channel is tried).

Every URL a workspace set (its SMS/WhatsApp provider, its chat webhook, webhook subscriptions, a
team's chat URL) is called through ``shared.netguard``'s outbound guard: the address is checked
after DNS resolution, at each connection, and redirects are not followed. The deployment's own
defaults (``CLOSELOOP_DISPATCH_TWILIO_BASE_URL``, ``…_CHAT_WEBHOOK_URL``) are the operator's and are
connected to as resolved. What an error records of a remote endpoint is its status code and the
status's standard reason — never its reply body, which could carry another service's data back to a
tenant — and SMTP replies lose any email address they quote.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

import aiosmtplib
import httpx

from services.dispatch import domain, providers, redaction
from services.dispatch.poster import PostError, Reply, WebhookPoster
from services.dispatch.settings import DispatchSettings
from shared.netguard import BlockedDestination, OutboundGuard

log = logging.getLogger(__name__)
SID = re.compile(r"[A-Za-z0-9_-]{1,100}")


class SendError(Exception):
    def __init__(self, message: str, *, permanent: bool = False, hard_bounce: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent or hard_bounce
        self.hard_bounce = hard_bounce


@dataclass(frozen=True)
class ChannelSettings:
    """A channel's effective configuration: the workspace's own over the deployment's defaults."""

    channel: str
    base_url: str | None = None
    account_sid: str | None = None
    auth_token: str | None = None
    sender: str | None = None
    webhook_url: str | None = None
    mail_from: str | None = None
    reply_to: str | None = None
    rate_per_minute: int | None = None
    trusted: bool = False
    """The URL (provider base URL, chat webhook) is the deployment's default, not one the workspace set:
    it is the operator's and not held to the outbound guard."""

    @property
    def configured(self) -> bool:
        if self.channel in domain.PHONE_CHANNELS:
            return bool(self.base_url and self.account_sid and self.auth_token and self.sender)
        if self.channel == "chat":
            return bool(self.webhook_url)
        return True


def resolve_channel(channel: str, own: dict[str, Any] | None, settings: DispatchSettings) -> ChannelSettings:
    """Return the effective settings of ``channel`` for a workspace whose own config is ``own``."""
    own = own or {}
    limits = domain.parse_rate_limits(settings.rate_limits)
    rate = own.get("rate_per_minute", limits.get(channel))
    if channel in domain.PHONE_CHANNELS:
        default_from = settings.sms_from if channel == "sms" else settings.whatsapp_from
        return ChannelSettings(
            channel,
            base_url=own.get("base_url") or settings.twilio_base_url,
            account_sid=own.get("account_sid") or settings.twilio_account_sid,
            auth_token=own.get("auth_token") or settings.twilio_auth_token,
            sender=own.get("from") or default_from,
            rate_per_minute=rate,
            trusted=not own.get("base_url"),
        )
    if channel == "chat":
        return ChannelSettings(
            channel,
            webhook_url=own.get("webhook_url") or settings.chat_webhook_url,
            rate_per_minute=rate,
            trusted=not own.get("webhook_url"),
        )
    if channel == "email":
        return ChannelSettings(
            channel,
            mail_from=own.get("mail_from") or settings.mail_from,
            reply_to=own.get("reply_to"),
            rate_per_minute=rate,
        )
    return ChannelSettings(channel, rate_per_minute=rate)


class SmtpPool:
    """A few SMTP connections, opened on first use and reused; a broken one is replaced."""

    def __init__(self, settings: DispatchSettings) -> None:
        self.settings = settings
        self._slots: asyncio.Queue[aiosmtplib.SMTP | None] = asyncio.Queue()
        for _ in range(settings.smtp_pool_size):
            self._slots.put_nowait(None)

    def _target(self) -> tuple[str, int]:
        return self.settings.smtp_host, self.settings.smtp_port

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password,
            start_tls=s.smtp_starttls,
            timeout=s.smtp_timeout_s,
        )
        await client.connect()
        return client

    async def send(self, message: EmailMessage, to: str) -> None:
        """Hand ``message`` to the SMTP server or raise ``SendError``."""
        await self._hand_over(lambda client: client.send_message(message, recipients=[to]))

    async def send_raw(self, message: bytes, *, sender: str, to: str) -> None:
        """Hand a message already serialised for SMTP (CRLF lines, 7-bit clean) to the server, as from
        ``sender``, or raise ``SendError``."""
        await self._hand_over(lambda client: _sendmail(client, sender, to, message))

    async def _hand_over(self, call: Callable[[aiosmtplib.SMTP], Awaitable[Any]]) -> None:
        client = await self._slots.get()
        try:
            for attempt in (1, 2):
                if (
                    client is None
                    or not client.is_connected
                    or (client.hostname, client.port) != self._target()
                ):
                    await _close(client)
                    client = None
                    client = await _smtp_call(self._connect())
                try:
                    await _smtp_call(call(client))
                    return
                except SendError as exc:
                    await _close(client)
                    client = None
                    # A pooled connection the server closed while idle: one fresh try.
                    if attempt == 1 and not exc.permanent and "disconnect" in str(exc).lower():
                        continue
                    raise
        finally:
            self._slots.put_nowait(client)

    async def close(self) -> None:
        while not self._slots.empty():
            await _close(self._slots.get_nowait())


async def _sendmail(client: aiosmtplib.SMTP, sender: str, to: str, message: bytes) -> None:
    """``client.sendmail(sender, [to], message)`` for one recipient and a message whose lines already
    end in CRLF: the same commands, errors and RSET after a refusal, without parsing both addresses
    and normalising the message once more for the SIZE option (a tenth of an email's SMTP time)."""
    if client.is_ehlo_or_helo_needed:  # a fresh connection: what the server supports (SIZE) first
        try:
            await client.ehlo()
        except aiosmtplib.SMTPHeloError:
            await client.helo()
    size = len(message) if message.endswith(b"\r\n") else len(message) + 2
    options = [f"SIZE={size}"] if client.supports_extension("size") else []
    try:
        await client.mail(sender, options=options)
        try:
            await client.rcpt(to)
        except aiosmtplib.SMTPRecipientRefused as exc:
            raise aiosmtplib.SMTPRecipientsRefused([exc]) from None
        await client.data(message)
    except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
        with contextlib.suppress(ConnectionError, aiosmtplib.SMTPResponseException):
            await client.rset()  # the envelope reset for the connection's next message
        raise


async def _smtp_call(call: Any) -> Any:
    try:
        return await call
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [e.code for e in exc.recipients]
        permanent = all(domain.is_permanent_smtp_code(c) for c in codes)
        # 550/551/553 name a mailbox that does not exist or cannot be reached: a hard bounce.
        hard = permanent and any(c in (550, 551, 553) for c in codes)
        replies = "; ".join(f"{e.code} {redaction.redact_addresses(e.message)}" for e in exc.recipients)
        raise SendError(
            f"SMTP refused the recipient: {replies}", permanent=permanent, hard_bounce=hard
        ) from exc
    except aiosmtplib.SMTPResponseException as exc:
        raise SendError(
            f"SMTP {exc.code}: {redaction.redact_addresses(exc.message)}",
            permanent=domain.is_permanent_smtp_code(exc.code),
        ) from exc
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise SendError(f"{type(exc).__name__}: {redaction.redact_addresses(str(exc))}") from exc


async def _close(client: aiosmtplib.SMTP | None) -> None:
    if client is None:
        return
    try:
        if client.is_connected:
            await asyncio.wait_for(client.quit(), 2)
    except Exception:
        client.close()


class HttpChannels:
    """Outgoing HTTP: SMS/WhatsApp through a Twilio-compatible API, chat and webhook posts.

    Every request is one POST over kept-alive HTTP/1.1 (``poster``): ``tenant`` calls URLs a workspace
    set, through the outbound guard; ``operator`` calls the deployment's own defaults. Neither follows
    redirects. A provider request or chat post is never made twice by this layer (a connection lost
    before the answer is a retryable ``SendError``; the sender's retries and backoff decide).
    """

    def __init__(self, settings: DispatchSettings, guard: OutboundGuard) -> None:
        self.settings = settings
        self.tenant = WebhookPoster(guard, timeout_s=settings.http_timeout_s, user_agent=USER_AGENT)
        self.operator = WebhookPoster(None, timeout_s=settings.http_timeout_s, user_agent=USER_AGENT)

    async def _post(self, url: str, headers: dict[str, str], body: bytes, *, trusted: bool) -> Reply:
        """Return the endpoint's reply; raise ``SendError`` (in our words) when there is none."""
        try:
            return await (self.operator if trusted else self.tenant).request(url, headers, body, resend=False)
        except PostError as exc:
            raise SendError(str(exc), permanent=exc.permanent) from exc

    async def send_message(
        self, config: ChannelSettings, *, to: str, body: str, status_callback: str | None
    ) -> str:
        """Create the message through the provider (as Twilio documents the request: HTTP basic auth with
        the account SID and auth token, a form-encoded body); return its SID."""
        assert config.base_url and config.account_sid and config.auth_token and config.sender
        url = providers.twilio_messages_url(config.base_url, config.account_sid)
        form = providers.twilio_message_form(
            channel=config.channel, to=to, sender=config.sender, body=body, status_callback=status_callback
        )
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": basic_auth(config.account_sid, config.auth_token),
        }
        reply = await self._post(url, headers, urlencode(form).encode(), trusted=config.trusted)
        if reply.status not in (200, 201):
            code = providers.twilio_error_code(reply.body)
            message, permanent = providers.twilio_error(reply.status, code)
            raise SendError(message, permanent=permanent, hard_bounce=providers.is_hard_phone_error(code))
        sid = _json(reply.body).get("sid")
        if not isinstance(sid, str) or not SID.fullmatch(sid):
            raise SendError("the provider accepted the message but returned no valid sid", permanent=False)
        return sid

    async def post_json(self, url: str, payload: dict[str, Any], *, trusted: bool = False) -> None:
        """Post to a Slack-compatible incoming webhook (or a bridge that speaks the same JSON)."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        reply = await self._post(url, {"Content-Type": "application/json"}, body, trusted=trusted)
        if reply.status >= 300:
            permanent = 400 <= reply.status < 500 and reply.status not in (408, 429)
            raise SendError(f"webhook replied {status_text(reply.status)}", permanent=permanent)

    async def post_signed(
        self, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int | None, str | None, int]:
        """Return (status code, error, duration ms) of one outgoing webhook attempt (through the outbound
        guard; made again on a fresh connection when a kept-alive one turns out closed)."""
        started = time.perf_counter()
        try:
            status = await self.tenant.post(url, headers, body)
        except PostError as exc:
            return None, str(exc), _ms(started)
        error = None if 200 <= status < 300 else f"replied {status_text(status)}"
        return status, error, _ms(started)

    async def close(self) -> None:
        await self.tenant.close()
        await self.operator.close()


USER_AGENT = "closeloop-dispatch/0.1"


def basic_auth(user: str, password: str) -> str:
    """Return the ``Authorization`` value of HTTP basic auth (RFC 7617, UTF-8)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def status_text(status: int) -> str:
    """Return ``500 Internal Server Error``: the code and its standard reason, nothing the endpoint said."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def transport_error(exc: Exception) -> SendError:
    """Return the ``SendError`` for a request that got no response, in fixed words (a refused destination
    says why: that reason is ours)."""
    blocked = exc if isinstance(exc, BlockedDestination) else exc.__cause__
    if isinstance(blocked, BlockedDestination):
        return SendError(f"destination refused: {blocked}", permanent=True)
    if isinstance(exc, httpx.TimeoutException):
        return SendError(f"{type(exc).__name__}: no answer within the timeout")
    if isinstance(exc, httpx.ConnectError):
        return SendError("ConnectError: could not connect to the endpoint")
    return SendError(f"{type(exc).__name__}: the endpoint did not answer with a valid HTTP response")


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}

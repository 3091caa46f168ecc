"""Emails as SMTP wants them: headers, a plain-text and an HTML part.

What the message says comes from ``templates``; this module only assembles it. Every
invitation carries ``List-Unsubscribe`` with the one-click unsubscribe URL (RFC 8058) and a
mailto fallback, so mail clients can offer "unsubscribe" next to the sender.

An invitation goes out as bytes built by ``invitation_bytes``: the standard library's
``EmailMessage`` parses every header it is given and serialises the whole tree again on sending,
which cost more CPU than everything else about an email put together. The bytes are the same
message (``compose_invitation`` parses them back, and the tests read that): headers that are the
same for every recipient (From, Reply-To, the mailto fallback) are folded once per value; the rest
are written as they are when they are plain ASCII, and folded by the standard library otherwise;
each part is base64 UTF-8.
"""

from __future__ import annotations

import base64
import email
import email.policy
import functools
import re
import secrets
import time
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

from services.dispatch import domain
from services.dispatch.templates import Rendered


@dataclass(frozen=True, slots=True)
class InvitationEmail:
    """Who an invitation email goes to and from, what it says, and the headers it carries."""

    to_email: str
    to_name: str | None
    rendered: Rendered
    message_id: str
    mail_from: str
    unsubscribe_url: str | None
    reply_to: str | None = None
    traceparent: str | None = None


def compose_invitation(mail: InvitationEmail) -> EmailMessage:
    """Return the invitation email as a message (what ``build_invitation`` sends, parsed back); raise
    ValueError for an address no header can carry."""
    built = build_invitation(mail)
    if isinstance(built, EmailMessage):
        return built
    message = email.message_from_bytes(built, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def build_invitation(mail: InvitationEmail) -> bytes | EmailMessage:
    """Return the invitation email ready for SMTP: bytes (``invitation_bytes``), or a message when an
    address is not ASCII (it needs SMTPUTF8, which the SMTP client handles for a message); raise
    ValueError for an address no header can carry."""
    build = _message if needs_utf8(mail.to_email, mail.mail_from, mail.reply_to or "") else invitation_bytes
    return build(mail)


def invitation_bytes(mail: InvitationEmail) -> bytes:
    """Return the invitation email as SMTP carries it (CRLF lines, 7-bit clean); raise ValueError for
    an address no header can carry. For ASCII addresses only (``needs_utf8``)."""
    to_email, rendered, mail_from, reply_to = mail.to_email, mail.rendered, mail.mail_from, mail.reply_to
    unsubscribe_url, traceparent = mail.unsubscribe_url, mail.traceparent
    name = domain.clean_name(mail.to_name)
    plain_name = not name or _PLAIN_NAME.fullmatch(name) is not None
    if not (plain_name and _DOT_ATOM_ADDRESS.fullmatch(to_email)):
        Address(display_name=name or "", addr_spec=to_email)  # raises ValueError as the header would
    to = f"{name} <{to_email}>" if name and plain_name else None
    lines = [
        _header("Subject", rendered.subject),
        _static_header("From", mail_from),
        _header("To", to) if to else _folded("To", Address(display_name=name or "", addr_spec=to_email)),
        f"Date: {_date()}\r\n",
        _header("Message-ID", mail.message_id),
    ]
    mailto = _mailto(mail_from)
    if unsubscribe_url:
        lines.append(_header("List-Unsubscribe", f"<{unsubscribe_url}>, {mailto}"))
        lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
    else:
        lines.append(_header("List-Unsubscribe", mailto))
    if reply_to:
        lines.append(_static_header("Reply-To", reply_to))
    lines.append("Auto-Submitted: auto-generated\r\n")
    if traceparent:
        lines.append(_header("traceparent", traceparent))
    lines.append("MIME-Version: 1.0\r\n")
    head = "".join(lines).encode("ascii")
    text = _part("plain", rendered.text)
    if rendered.html is None:
        return head + text
    boundary = f"=_cl_{secrets.token_hex(12)}"
    marker = f"--{boundary}\r\n".encode()
    return b"".join(
        (
            head,
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode(),
            marker,
            text,
            b"\r\n",
            marker,
            _part("html", rendered.html),
            f"\r\n--{boundary}--\r\n".encode(),
        )
    )


def envelope_sender(mail_from: str) -> str:
    """Return the bare address of ``mail_from`` for SMTP's MAIL FROM."""
    return _envelope_sender(mail_from)


_PLAIN = re.compile(r"[ -~]*")  # printable ASCII, no control characters
_PLAIN_NAME = re.compile(r"[A-Za-z0-9 '-]+")  # a display name that needs no quoting (no specials)
# An address any header takes as it is (dot-atom local part and domain, RFC 5322 3.2.3): ``Address``
# accepts it, so it is not parsed again for every email.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_SMTP = email.policy.SMTP


def _folded(name: str, value: object) -> str:
    """Return the header as the standard library folds it for SMTP (RFC 2047 words where needed)."""
    _single_line(name, value)
    return str(_SMTP.header_factory(name, value).fold(policy=_SMTP))


def _header(name: str, value: str) -> str:
    """Return ``name: value`` as one line when the value is plain ASCII that fits one, else folded."""
    if len(value) + len(name) <= 996 and value.strip() == value and _PLAIN.fullmatch(value):
        return f"{name}: {value}\r\n"
    return _folded(name, value)


@functools.lru_cache(maxsize=256)
def _static_header(name: str, value: str) -> str:
    """A header the same for every recipient (From, Reply-To): parsed and folded once per value."""
    return _folded(name, value)


def _single_line(name: str, value: object) -> None:
    """Raise ValueError, as ``EmailMessage`` does, for a header value that would break the header block."""
    if isinstance(value, str) and ("\r" in value or "\n" in value):
        raise ValueError(f"the {name} header may not contain a line break")


@functools.lru_cache(maxsize=256)
def _mailto(mail_from: str) -> str:
    return f"<mailto:{parseaddr(mail_from)[1]}?subject=unsubscribe>"


@functools.lru_cache(maxsize=256)
def _envelope_sender(mail_from: str) -> str:
    return parseaddr(mail_from)[1]


_date_cache: tuple[int, str] = (0, "")


def _date() -> str:
    """The Date header's value, formatted once per second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


def _part(subtype: str, content: str) -> bytes:
    """Return a UTF-8 text part, headers and body: base64 in lines of 76 (as ``EmailMessage`` chooses
    for such text), so that the text reads back with the line ends it was written with."""
    body = content if content.endswith("\n") else content + "\n"
    data = base64.encodebytes(body.encode("utf-8")).replace(b"\n", b"\r\n")
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    return head.encode("ascii") + data


def needs_utf8(*addresses: str) -> bool:
    """Whether an address is not ASCII: such a message needs SMTPUTF8 and goes out as an
    ``EmailMessage`` (``_message``), which the SMTP client serialises with UTF-8 headers."""
    return not all(a.isascii() for a in addresses)


def _message(mail: InvitationEmail) -> EmailMessage:
    rendered = mail.rendered
    message = _headers(
        mail.to_email, domain.clean_name(mail.to_name), rendered.subject, mail.message_id, mail.mail_from
    )
    mailto = f"<mailto:{parseaddr(mail.mail_from)[1]}?subject=unsubscribe>"
    if mail.unsubscribe_url:
        message["List-Unsubscribe"] = f"<{mail.unsubscribe_url}>, {mailto}"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    else:
        message["List-Unsubscribe"] = mailto
    if mail.reply_to:
        message["Reply-To"] = mail.reply_to
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
    if mail.traceparent:
        message["traceparent"] = mail.traceparent
    if rendered.html is not None:
        message.add_alternative(rendered.html, subtype="html")
    return message


def compose_notification(
    *, to: str, subject: str, body: str, message_id: str, mail_from: str
) -> EmailMessage:
    """Return a plain-text email to a member of staff."""
    message = _headers(to, None, " ".join(subject.split()) or "closeloop notification", message_id, mail_from)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body if body.endswith("\n") else body + "\n")
    return message


def _headers(
    to_email: str, to_name: str | None, subject: str, message_id: str, mail_from: str
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = mail_from
    message["To"] = Address(display_name=to_name or "", addr_spec=to_email)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id
    return message

"""Emails as SMTP wants them: headers, a plain-text and an HTML part.

What the message says comes from ``templates``; this module only assembles it. Every
invitation carries ``List-Unsubscribe`` with the one-click unsubscribe URL (RFC 8058) and a
mailto fallback, so mail clients can offer "unsubscribe" next to the sender.
"""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

from services.dispatch import domain
from services.dispatch.templates import Rendered


def compose_invitation(
    *,
    to_email: str,
    to_name: str | None,
    rendered: Rendered,
    message_id: str,
    mail_from: str,
    unsubscribe_url: str | None,
    reply_to: str | None = None,
) -> EmailMessage:
    """Return the invitation email, ready for SMTP; raise ValueError for an address no header can carry."""
    message = _headers(to_email, domain.clean_name(to_name), rendered.subject, message_id, mail_from)
    mailto = f"<mailto:{parseaddr(mail_from)[1]}?subject=unsubscribe>"
    if unsubscribe_url:
        message["List-Unsubscribe"] = f"<{unsubscribe_url}>, {mailto}"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    else:
        message["List-Unsubscribe"] = mailto
    if reply_to:
        message["Reply-To"] = reply_to
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
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

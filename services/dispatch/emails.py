"""The invitation email: subject, a plain-text and an HTML part, and its headers.

Templates live here and nowhere else. The HTML uses inline styles only and loads nothing
from elsewhere, so it renders the same in every mail client and tracks nobody.
"""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

from jinja2 import Environment, StrictUndefined

from services.dispatch import domain

TEXT = """\
{{ greeting }}

{{ intro }} It takes less than a minute.

{{ cta }}:
{{ survey_url }}

This link is personal and works for {{ ttl_days }} days.
"""

HTML = """\
<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{{ subject }}</title></head>
<body style="margin:0;padding:0;background:#f4f5f7;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f5f7;padding:24px 0;">
<tr><td align="center">
<table role="presentation" width="560" cellpadding="0" cellspacing="0"
       style="max-width:560px;background:#ffffff;border-radius:8px;padding:32px;
              font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#1f2933;">
<tr><td style="font-size:16px;line-height:24px;">
<p style="margin:0 0 16px;">{{ greeting }}</p>
<p style="margin:0 0 24px;">{{ intro }} It takes less than a minute.</p>
<p style="margin:0 0 24px;text-align:center;">
<a href="{{ survey_url }}"
   style="display:inline-block;background:#2563eb;color:#ffffff;text-decoration:none;font-weight:600;
          padding:12px 24px;border-radius:6px;">{{ cta }}</a>
</p>
<p style="margin:0;font-size:13px;line-height:20px;color:#6b7280;">
If the button does not work, open this link: <a href="{{ survey_url }}" style="color:#2563eb;">{{ survey_url }}</a><br>
This link is personal and works for {{ ttl_days }} days.
</p>
</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
"""

_text = Environment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True).from_string(TEXT)
_html = Environment(autoescape=True, undefined=StrictUndefined).from_string(HTML)


def compose_invitation(
    *,
    to_email: str,
    to_name: str | None,
    kind: str,
    survey_url: str,
    message_id: str,
    mail_from: str,
    ttl_days: int,
) -> EmailMessage:
    """Return the invitation email, ready for SMTP."""
    name = domain.clean_name(to_name)
    context = {
        "subject": domain.subject(kind, name),
        "greeting": domain.greeting(name),
        "intro": domain.intro(kind),
        "cta": "Tell us" if kind == "retention" else "Give feedback",
        "survey_url": survey_url,
        "ttl_days": ttl_days,
    }
    message = EmailMessage()
    message["Subject"] = context["subject"]
    message["From"] = mail_from
    message["To"] = Address(display_name=name or "", addr_spec=to_email)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id
    message["List-Unsubscribe"] = f"<mailto:{parseaddr(mail_from)[1]}?subject=unsubscribe>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(_text.render(context))
    message.add_alternative(_html.render(context), subtype="html")
    return message

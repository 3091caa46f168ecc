"""Message templates: the built-in ones, a workspace's own (Jinja2, sandboxed), and rendering.

A workspace template is chosen per survey, channel, locale and kind, most specific first (see
``handlers.workspace.find_template``). Workspace templates run in Jinja2's
``SandboxedEnvironment``: they can read the merge fields and nothing else. Missing merge fields
render as "" and the result is tidied, so "Hi {{ first_name }}," without a name reads "Hi,"
(never "Hi ,").

For email, a template's HTML is the *content* of the message; the layout around it (the
workspace's colours, logo, footer, the unsubscribe link and, when enabled, the open pixel) is
always added, so no template can drop the unsubscribe link.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import ChainableUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from services.dispatch import domain

DEFAULT_COLOUR = "#2563eb"

EMAIL_TEXT = """\
{{ greeting }}

{{ intro }} It takes less than a minute.
{% if embed %}
{{ embed.question }}
{% for link in score_links %}  {{ link.score }}{% if loop.first %} ({{ embed.low_label }}){% elif loop.last %} ({{ embed.high_label }}){% endif %}: {{ link.url }}
{% endfor %}{% endif %}
{{ cta }}:
{{ survey_url }}

This link is personal and works for {{ ttl_days }} days.
"""

EMAIL_HTML = """\
<p style="margin:0 0 16px;">{{ greeting }}</p>
<p style="margin:0 0 24px;">{{ intro }} It takes less than a minute.</p>
{% if embed %}<p style="margin:0 0 12px;font-weight:600;">{{ embed.question }}</p>
<table role="presentation" cellpadding="0" cellspacing="0" style="margin:0 0 8px;border-collapse:separate;"><tr>
{% for link in score_links %}<td style="padding:0 2px;"><a href="{{ link.url }}" style="display:inline-block;min-width:28px;padding:8px 4px;border:1px solid {{ brand.colour }};border-radius:4px;color:{{ brand.colour }};text-align:center;text-decoration:none;font-weight:600;">{{ link.score }}</a></td>
{% endfor %}</tr></table>
<p style="margin:0 0 24px;font-size:12px;color:#6b7280;">{{ embed.low }} = {{ embed.low_label }}, {{ embed.high }} = {{ embed.high_label }}</p>
{% endif %}<p style="margin:0 0 24px;text-align:center;">
<a href="{{ survey_url }}"
   style="display:inline-block;background:{{ brand.colour }};color:#ffffff;text-decoration:none;font-weight:600;
          padding:12px 24px;border-radius:6px;">{{ cta }}</a>
</p>
<p style="margin:0;font-size:13px;line-height:20px;color:#6b7280;word-break:break-all;overflow-wrap:anywhere;">
If the button does not work, open this link: <a href="{{ survey_url }}" style="color:{{ brand.colour }};">{{ survey_url }}</a><br>
This link is personal and works for {{ ttl_days }} days.
</p>
"""

LAYOUT = """\
<!doctype html>
<html lang="{{ locale or 'en' }}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{{ subject }}</title></head>
<body style="margin:0;padding:0;background:#f4f5f7;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f5f7;padding:24px 0;">
<tr><td align="center">
<table role="presentation" width="560" cellpadding="0" cellspacing="0"
       style="max-width:560px;background:#ffffff;border-radius:8px;padding:32px;border-top:4px solid {{ brand.colour }};
              font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#1f2933;">
{% if brand.logo_url %}<tr><td style="padding:0 0 24px;"><img src="{{ brand.logo_url }}" alt="{{ brand.name }}" height="32" style="display:block;border:0;"></td></tr>
{% elif brand.name %}<tr><td style="padding:0 0 24px;font-size:18px;font-weight:700;color:{{ brand.colour }};">{{ brand.name }}</td></tr>
{% endif %}<tr><td style="font-size:16px;line-height:24px;">
{{ content }}
</td></tr>
<tr><td style="padding:24px 0 0;font-size:12px;line-height:18px;color:#9ca3af;">
{% if brand.footer %}{{ brand.footer }}<br>{% endif %}
{% if unsubscribe_url %}Don't want these surveys? <a href="{{ unsubscribe_url }}" style="color:#9ca3af;">Unsubscribe</a>.{% endif %}
</td></tr>
</table>
</td></tr>
</table>
{% if open_pixel_url %}<img src="{{ open_pixel_url }}" width="1" height="1" alt="" style="display:block;border:0;width:1px;height:1px;">{% endif %}
</body>
</html>
"""

TEXT_FOOTER = """\
{% if brand.footer %}
--
{{ brand.footer }}{% endif %}{% if unsubscribe_url %}

Unsubscribe: {{ unsubscribe_url }}{% endif %}
"""

SHORT_TEXT = {
    "sms": "{{ greeting }} {{ question }} {{ short_url }}",
    "whatsapp": "{{ greeting }} {{ question }} It takes less than a minute: {{ short_url }}",
    "chat": "{{ greeting }} {{ question }} {{ survey_url }}",
}


class _Blank(ChainableUndefined):
    """Missing merge fields render as "" (and iterate as nothing), never as an error."""

    def __str__(self) -> str:
        return ""


_env = SandboxedEnvironment(autoescape=False, undefined=_Blank, keep_trailing_newline=True)
_html_env = SandboxedEnvironment(autoescape=True, undefined=_Blank)


@functools.lru_cache(maxsize=512)
def _compiled(html: bool, source: str) -> Template:
    """Return the compiled template; compiling costs milliseconds, rendering microseconds."""
    return (_html_env if html else _env).from_string(source)


def _text(source: str) -> Template:
    return _compiled(False, source)


def _markup(source: str) -> Template:
    return _compiled(True, source)


@dataclass(frozen=True)
class TemplateSpec:
    """A workspace's template, as rendering needs it."""

    id: str | None
    subject: str | None
    text: str
    html: str | None
    embed: Mapping[str, Any] | None
    """None: the default embedded question; ``{"question": …, "low": …, "high": …}``; ``{}``: none."""


@dataclass(frozen=True)
class Branding:
    name: str | None = None
    colour: str = DEFAULT_COLOUR
    logo_url: str | None = None
    footer: str | None = None


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None


class TemplateProblem(ValueError):
    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def embed_for(kind: str, brand: Branding, spec: Mapping[str, Any] | None) -> domain.Embed | None:
    """Return the embedded question: the template's, none (``{}``), or the default for the kind."""
    if spec is None:
        return domain.default_embed(kind, brand.name)
    if not spec:
        return None
    default = domain.default_embed(kind, brand.name)
    return domain.Embed(
        question=str(spec.get("question") or default.question),
        low=int(spec.get("low", default.low)),
        high=int(spec.get("high", default.high)),
        low_label=str(spec.get("low_label") or ""),
        high_label=str(spec.get("high_label") or ""),
    )


def fields_for(
    *,
    channel: str,
    kind: str,
    name: str | None,
    context: Mapping[str, str],
    brand: Branding,
    survey_url: str,
    short_url: str | None,
    unsubscribe_url: str | None,
    ttl_days: int,
    locale: str | None,
    embed: domain.Embed | None,
    reminder: int = 0,
) -> dict[str, Any]:
    """Return every merge field a template can use."""
    fields = domain.merge_fields(name=name, context=context, brand_name=brand.name)
    product, agent = str(fields["product"]), str(fields["agent"])
    asked = domain.question(kind, product=product, agent=agent)
    greeting = str(fields["greeting"])
    fields.update(
        {
            "channel": channel,
            "kind": kind,
            "locale": locale,
            "reminder": reminder,
            "question": asked,
            "question_sentence": asked[0].upper() + asked[1:],
            "intro": ("Just a reminder: " + domain.intro(kind)[0].lower() + domain.intro(kind)[1:])
            if reminder
            else domain.intro(kind),
            "cta": "Tell us" if kind == "retention" else "Give feedback",
            "survey_url": survey_url,
            "short_url": short_url or survey_url,
            "unsubscribe_url": unsubscribe_url,
            "ttl_days": ttl_days,
            "brand": {
                "name": brand.name or "",
                "colour": brand.colour,
                "color": brand.colour,
                "logo_url": brand.logo_url,
                "footer": brand.footer,
            },
            "embed": None
            if embed is None
            else {
                "question": embed.question,
                "low": embed.low,
                "high": embed.high,
                "low_label": embed.low_label,
                "high_label": embed.high_label,
            },
            "score_links": domain.score_links(survey_url, embed.low, embed.high) if embed else [],
            "greeting": greeting,
        }
    )
    return fields


def render(
    channel: str,
    fields: Mapping[str, Any],
    template: TemplateSpec | None,
    *,
    open_pixel_url: str | None = None,
) -> Rendered:
    """Return the message for ``channel``: subject, text and (email only) HTML."""
    try:
        return _render(channel, fields, template, open_pixel_url=open_pixel_url)
    except TemplateError as exc:  # a template that validated may still fail on odd data
        raise TemplateProblem(f"the template cannot be rendered: {exc}", field="template") from exc


def _render(
    channel: str, fields: Mapping[str, Any], template: TemplateSpec | None, *, open_pixel_url: str | None
) -> Rendered:
    name = str(fields.get("name") or "") or None
    if template is not None and template.subject:
        subject = domain.tidy_line(_text(template.subject).render(fields))
    else:
        subject = domain.subject(
            str(fields.get("kind")), name, product=str(fields.get("product")), agent=str(fields.get("agent"))
        )
    if fields.get("reminder") and not (template is not None and template.subject):
        subject = f"Reminder: {subject}"
    subject = subject or domain.subject(str(fields.get("kind")), name)
    if channel != "email":
        source = template.text if template is not None else SHORT_TEXT.get(channel, SHORT_TEXT["chat"])
        return Rendered(subject, domain.tidy_line(_text(source).render(fields)), None)
    text_source = template.text if template is not None else EMAIL_TEXT
    text = domain.tidy(_text(text_source).render(fields)).rstrip("\n") + "\n"
    text += _text(TEXT_FOOTER).render(fields)
    html_source = template.html if template is not None and template.html else EMAIL_HTML
    content = tidy_html(_markup(html_source).render(fields))
    html = _markup(LAYOUT).render(
        {**fields, "subject": subject, "content": _Markup(content), "open_pixel_url": open_pixel_url}
    )
    return Rendered(subject, text, html)


def _Markup(value: str) -> Any:
    from markupsafe import Markup

    return Markup(value)


_HTML_SPACE_BEFORE = re.compile(r"(?<=[\w>])[ \t]+(?=[,!?](?:\s|<|$))")


def tidy_html(html: str) -> str:
    """Return HTML with the gaps of empty merge fields closed ("Hi ," → "Hi,")."""
    return _HTML_SPACE_BEFORE.sub("", html)


SAMPLE = {
    "name": "Ada Lovelace",
    "context": {"product": "Acme Cloud", "agent": "Grace Hopper", "ticket_id": "T-1042"},
}


def validate(
    channel: str,
    *,
    subject: str | None,
    text: str,
    html: str | None,
    embed: Mapping[str, Any] | None,
) -> None:
    """Raise ``TemplateProblem`` naming the field when a template cannot be compiled or rendered."""
    for field, source, env in (("subject", subject, _env), ("text", text, _env), ("html", html, _html_env)):
        if source is None:
            continue
        try:
            env.from_string(source)
        except TemplateError as exc:
            line = getattr(exc, "lineno", None)
            where = f" (line {line})" if line else ""
            raise TemplateProblem(f"{field} is not a valid template{where}: {exc}", field=field) from exc
    if embed:
        try:
            low, high = int(embed.get("low", 0)), int(embed.get("high", 10))
        except (TypeError, ValueError) as exc:
            raise TemplateProblem("embed.low and embed.high must be integers", field="embed") from exc
        if not 0 <= low < high <= 10:
            raise TemplateProblem("embed scores must satisfy 0 <= low < high <= 10", field="embed")
    spec = TemplateSpec(None, subject, text, html, embed)
    brand = Branding(name="Acme")
    fields = fields_for(
        channel=channel,
        kind="transactional",
        name=SAMPLE["name"],  # type: ignore[arg-type]
        context=SAMPLE["context"],  # type: ignore[arg-type]
        brand=brand,
        survey_url="https://surveys.example/s/sample",
        short_url="https://go.example/l/sample",
        unsubscribe_url="https://go.example/u/sample",
        ttl_days=30,
        locale="en",
        embed=embed_for("transactional", brand, embed),
    )
    try:
        _render(channel, fields, spec, open_pixel_url=None)
    except TemplateError as exc:
        raise TemplateProblem(f"the template fails on sample data: {exc}", field="text") from exc

"""Message templates: the built-in ones, a workspace's own (Jinja2, sandboxed), and rendering.

A workspace template is chosen per survey, channel, locale and kind, most specific first (see
``handlers.workspace.find_template``). Workspace templates run in Jinja2's
``SandboxedEnvironment``: they can read the merge fields and nothing else. Missing merge fields
render as "" and the result is tidied, so "Hi {{ first_name }}," without a name reads "Hi,"
(never "Hi ,").

For email, a template's HTML is the *content* of the message; the layout around it (the
workspace's colours, logo, footer, the unsubscribe link and, when enabled, the open pixel) is
always added, so no template can drop the unsubscribe link. The ``embed`` merge field is the
survey's own first question (``embeds``): HTML in the HTML part, plain text in the text part.

The built-in texts speak the message's language (``wording``: English and Dutch).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import ChainableUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from services.dispatch import domain, wording
from services.dispatch.embeds import EmbeddedQuestion, score_url

DEFAULT_COLOUR = "#2563eb"

EMAIL_TEXT = """\
{{ greeting }}

{{ intro }} {{ minute }}
{% if embed %}
{{ embed }}
{% endif %}
{{ cta }}:
{{ survey_url }}

{{ validity }}
"""

EMAIL_HTML = """\
<p style="margin:0 0 16px;">{{ greeting }}</p>
<p style="margin:0 0 24px;">{{ intro }} {{ minute }}</p>
{{ embed }}<p style="margin:0 0 24px;text-align:center;">
<a href="{{ survey_url }}"
   style="display:inline-block;background:{{ brand.colour }};color:#ffffff;text-decoration:none;font-weight:600;
          padding:12px 24px;border-radius:6px;">{{ cta }}</a>
</p>
<p style="margin:0;font-size:13px;line-height:20px;color:#6b7280;word-break:break-all;overflow-wrap:anywhere;">
{{ button_fallback }} <a href="{{ survey_url }}" style="color:{{ brand.colour }};">{{ survey_url }}</a><br>
{{ validity }}
</p>
"""

EMBED_TEXT = """\
{{ embed_question }}
{% for link in score_links %}  {{ link.score }}{% if link.label %} ({{ link.label }}){% endif %}: {{ link.url }}
{% endfor %}"""

EMBED_HTML = """\
<p style="margin:0 0 12px;font-weight:600;">{{ embed_question }}</p>
{% if embed_stacked %}<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="margin:0 0 8px;border-collapse:separate;">
{% for link in score_links %}<tr><td style="padding:0 0 6px;"><a href="{{ link.url }}" title="{{ link.title }}" style="display:block;padding:10px 12px;border:1px solid {{ brand.colour }};border-radius:4px;color:{{ brand.colour }};text-decoration:none;font-weight:600;font-size:15px;">{{ link.face }}</a></td></tr>
{% endfor %}</table>
{% else %}<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="margin:0 0 8px;border-collapse:separate;table-layout:fixed;"><tr>
{% for link in score_links %}<td width="{{ (100 / score_links|length)|round(1) }}%" style="padding:0 1px;"><a href="{{ link.url }}" title="{{ link.title }}" style="display:block;padding:8px 0;border:1px solid {{ brand.colour }};border-radius:4px;color:{{ brand.colour }};text-align:center;text-decoration:none;font-weight:600;font-size:15px;">{{ link.face }}</a></td>
{% endfor %}</tr></table>{% endif %}
{% if embed_anchors %}<p style="margin:0 0 24px;font-size:12px;color:#6b7280;">{{ embed_anchors|join(" · ") }}</p>
{% else %}<div style="height:16px;"></div>
{% endif %}"""

LAYOUT = """\
<!doctype html>
<html lang="{{ language }}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{{ subject }}</title></head>
<body style="margin:0;padding:0;background:#f4f5f7;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f5f7;padding:16px 8px;">
<tr><td align="center">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0"
       style="width:100%;max-width:560px;background:#ffffff;border-radius:8px;padding:24px;border-top:4px solid {{ brand.colour }};
              font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#1f2933;">
{% if brand.logo_url %}<tr><td style="padding:0 0 24px;"><img src="{{ brand.logo_url }}" alt="{{ brand.name }}" height="32" style="display:block;border:0;"></td></tr>
{% elif brand.name %}<tr><td style="padding:0 0 24px;font-size:18px;font-weight:700;color:{{ brand.colour }};">{{ brand.name }}</td></tr>
{% endif %}<tr><td style="font-size:16px;line-height:24px;">
{{ content }}
</td></tr>
<tr><td style="padding:24px 0 0;font-size:12px;line-height:18px;color:#9ca3af;">
{% if brand.footer %}{{ brand.footer }}<br>{% endif %}
{% if unsubscribe_url %}{{ unsubscribe_question }} <a href="{{ unsubscribe_url }}" style="color:#9ca3af;">{{ unsubscribe_label }}</a>.{% endif %}
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

{{ unsubscribe_label }}: {{ unsubscribe_url }}{% endif %}
"""

SHORT_TEXT = {
    "sms": "{{ greeting }} {{ question }} {{ short_url }}",
    "whatsapp": "{{ greeting }} {{ question }} {{ minute }} {{ short_url }}",
    "chat": "{{ greeting }} {{ question }} {{ survey_url }}",
}


class _Blank(ChainableUndefined):
    """Missing merge fields render as "" (and iterate as nothing), never as an error."""

    def __str__(self) -> str:
        return ""


text_env = SandboxedEnvironment(autoescape=False, undefined=_Blank, keep_trailing_newline=True)
html_env = SandboxedEnvironment(autoescape=True, undefined=_Blank)


@functools.lru_cache(maxsize=512)
def _compiled(html: bool, source: str) -> Template:
    """Return the compiled template; compiling costs milliseconds, rendering microseconds."""
    template = (html_env if html else text_env).from_string(source)
    # Jinja keeps a template's globals as a ChainMap over the environment's and merges it key by key into
    # every render's context; the environments' globals never change, so a plain dict copies at once.
    template.globals = dict(template.globals)
    return template


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
    embed: bool = True
    """Embed the survey's first question (when it can be); False: never, the email only links."""


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


def score_links(question: EmbeddedQuestion | None, link: str) -> list[dict[str, Any]]:
    """Return one entry per option of the embedded question, lowest first: score, label, url, and the
    face its button shows (the label where every option has one, as on the page; else the number)."""
    if question is None:
        return []
    return [
        {
            "score": p.score,
            "label": p.label,
            "url": score_url(link, p.score),
            "face": p.label if question.labelled else str(p.score),
            "title": f"{p.score} — {p.label}" if p.label else str(p.score),
        }
        for p in question.points
    ]


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
    language: str = "en",
    embed: EmbeddedQuestion | None = None,
    reminder: int = 0,
) -> dict[str, Any]:
    """Return every merge field a template can use, in the message's ``language``.

    ``survey_url`` is the link the message shows (the short link, for every channel); ``embed`` here
    is the plain-text form of the embedded question (``render`` puts the HTML form in the HTML part).
    """
    words = wording.words(language)
    fields = domain.merge_fields(name=name, context=context, brand_name=brand.name, language=language)
    product, agent = str(fields["product"]), str(fields["agent"])
    asked = domain.question(kind, product=product, agent=agent, language=language)
    question = embed if channel == "email" else None
    links = score_links(question, survey_url)
    fields.update(
        {
            "channel": channel,
            "kind": kind,
            "locale": locale,
            "language": language,
            "reminder": reminder,
            "question": asked,
            "question_sentence": asked[0].upper() + asked[1:],
            "intro": domain.intro(kind, language, reminder=bool(reminder)),
            "minute": words["minute"],
            "cta": words["cta.retention"] if kind == "retention" else words["cta"],
            "button_fallback": words["button_fallback"],
            "survey_url": survey_url,
            "short_url": short_url or survey_url,
            "unsubscribe_url": unsubscribe_url,
            "unsubscribe_question": words["unsubscribe.question"],
            "unsubscribe_label": words["unsubscribe"],
            "ttl_days": ttl_days,
            "validity": wording.validity(language, ttl_days),
            "brand": {
                "name": brand.name or "",
                "colour": brand.colour,
                "color": brand.colour,
                "logo_url": brand.logo_url,
                "footer": brand.footer,
            },
            "embed_question": question.text if question else "",
            "embed_anchors": question.anchors() if question else [],
            "score_links": links,
            # Options labelled with words (CSAT) are a column, lowest first, so the words stay whole on
            # a phone; numbers and faces stay a row, lowest first from the left.
            "embed_stacked": bool(
                question and question.labelled and any(len(p.label) > 3 for p in question.points)
            ),
        }
    )
    fields["embed"] = _text(EMBED_TEXT).render(fields).rstrip("\n") if question else ""
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
    if template is not None and not template.embed:
        fields = {**fields, "embed": "", "embed_question": "", "embed_anchors": [], "score_links": []}
    name = str(fields.get("name") or "") or None
    language = str(fields.get("language") or "en")
    # A subject is one header line: the embedded question's block has no place there.
    line_fields = {**fields, "embed": ""}
    if template is not None and template.subject:
        subject = domain.tidy_line(_text(template.subject).render(line_fields))
    else:
        subject = domain.subject(
            str(fields.get("kind")),
            name,
            product=str(fields.get("product")),
            agent=str(fields.get("agent")),
            language=language,
        )
    if fields.get("reminder") and not (template is not None and template.subject):
        subject = wording.words(language)["reminder.subject"].format(subject=subject)
    subject = header_text(subject or domain.subject(str(fields.get("kind")), name, language=language))
    if channel != "email":
        source = template.text if template is not None else SHORT_TEXT.get(channel, SHORT_TEXT["chat"])
        return Rendered(subject, domain.tidy_line(_text(source).render(line_fields)), None)
    text_source = template.text if template is not None else EMAIL_TEXT
    text = domain.tidy(_text(text_source).render(fields)).rstrip("\n") + "\n"
    text += _text(TEXT_FOOTER).render(fields)
    html_fields = {**fields, "embed": Markup(_markup(EMBED_HTML).render(fields)) if fields["embed"] else ""}
    html_source = template.html if template is not None and template.html else EMAIL_HTML
    content = tidy_html(_markup(html_source).render(html_fields))
    html = _markup(LAYOUT).render(
        {**html_fields, "subject": subject, "content": Markup(content), "open_pixel_url": open_pixel_url}
    )
    return Rendered(subject, text, html)


_HTML_SPACE_BEFORE = re.compile(r"(?<=[\w>])[ \t]+(?=[,!?](?:\s|<|$))")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def tidy_html(html: str) -> str:
    """Return HTML with the gaps of empty merge fields closed ("Hi ," → "Hi,")."""
    # The pattern's look-behind is tried at every position of the page: run it only where a space or tab
    # is followed by one of the marks it removes the gap before.
    if any(gap in html for gap in _HTML_GAPS):
        return _HTML_SPACE_BEFORE.sub("", html)
    return html


_HTML_GAPS = tuple(f"{space}{mark}" for space in " \t" for mark in ",!?")


def header_text(value: str) -> str:
    """Return ``value`` fit for one header line: control characters (CR, LF, …) become spaces."""
    return " ".join(_CONTROL.sub(" ", value).split())

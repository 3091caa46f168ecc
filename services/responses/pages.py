"""The public survey pages: small, server-rendered HTML that works without JavaScript.

Everything the templates show is escaped by Jinja2's autoescape. The pages load nothing from
elsewhere and send no Referer, so the token in the URL never leaves the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from services.responses import domain

DEFAULT_THANK_YOU = "Thank you for your feedback!"
SCALE_HINTS = {
    "nps": ("Not at all likely", "Extremely likely"),
    "nls": ("Not at all likely", "Extremely likely"),
    "csat": ("Very dissatisfied", "Very satisfied"),
    "ces": ("Strongly disagree", "Strongly agree"),
}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
TITLES = {404: "Link not found", 409: "Already answered", 410: "Link expired"}


@dataclass(frozen=True)
class QuestionView:
    id: str
    type: str
    text: str
    required: bool
    choices: tuple[str, ...]
    hints: tuple[str, str] | None
    value: str
    error: str | None


@cache
def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("services.responses", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _page(template: str, status: int, **context: object) -> HTMLResponse:
    html = _templates().get_template(template).render(lang=context.pop("lang", None) or "en", **context)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def _choices(q: domain.Question) -> tuple[str, ...]:
    if q.scale:
        return tuple(str(n) for n in range(q.scale[0], q.scale[1] + 1))
    return ("yes", "no") if q.type == "consent" else ()


def survey_form(
    *,
    name: str,
    questions: list[domain.Question],
    action: str,
    values: dict[str, str],
    errors: dict[str, str],
    max_chars: int,
    lang: str | None,
    status: int = 200,
) -> HTMLResponse:
    """Return the survey as a form, with the given answers filled in and errors next to their questions."""
    views = [
        QuestionView(
            q.id,
            q.type,
            q.text,
            q.required,
            _choices(q),
            SCALE_HINTS.get(q.type),
            values.get(q.id, ""),
            errors.get(q.id),
        )
        for q in questions
    ]
    return _page(
        "survey.html",
        status,
        title=name,
        questions=views,
        action=action,
        max_chars=max_chars,
        has_errors=bool(errors),
        lang=lang,
    )


def thank_you(*, name: str, text: str | None, lang: str | None) -> HTMLResponse:
    """Return the page shown after a response was stored."""
    return _page(
        "message.html", 200, title=name, heading="Thank you!", text=text or DEFAULT_THANK_YOU, lang=lang
    )


def already_answered(*, name: str, lang: str | None, status: int = 200) -> HTMLResponse:
    """Return the page shown when the invitation already has a response."""
    return _page(
        "message.html",
        status,
        title=name,
        heading="You already answered — thank you!",
        text="We have your response to this survey; there is nothing more to do.",
        lang=lang,
    )


def error(*, status: int, detail: str) -> HTMLResponse:
    """Return a friendly page for a link that cannot be answered."""
    heading = TITLES.get(status, "Something went wrong")
    return _page("message.html", status, title=heading, heading=heading, text=detail, lang=None)

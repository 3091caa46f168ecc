"""The public survey pages: small, server-rendered HTML that works without JavaScript.

Everything the templates show is escaped by Jinja2's autoescape. The pages load nothing from
elsewhere (styles and the one script are inline, a logo is a data: URI) and send no Referer, so
the token in the URL never leaves the page. The script is allowed by its hash, nothing else runs.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from services.responses.domain import scales
from services.responses.domain.answers import Problem
from services.responses.domain.branding import FONTS, TONES, merge_branding, on_colour
from services.responses.domain.definition import Question
from services.responses.domain.logic import Progress, plan
from services.responses.i18n import t, text_direction, ui_language
from services.responses.script import SCRIPT

AUTO_ADVANCE = frozenset({"scale", "labels", "emoji", "stars", "single", "consent"})


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    aria: str | None
    checked: bool


@dataclass(frozen=True)
class QuestionView:
    id: str
    kind: str
    text: str
    required: bool
    input: str
    layout: str
    choices: tuple[Choice, ...]
    hints: tuple[str, str] | None
    value: str
    value_kind: str
    error: str | None
    note: str | None
    auto: bool


@cache
def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("services.responses", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # the templates ship with the package: no stat() of both files per page
    )


@cache
def script() -> tuple[str, str]:
    """Return the page script and its CSP source (``'sha256-…'``)."""
    code = SCRIPT
    digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
    return code, f"'sha256-{digest}'"


def headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src {script()[1]}; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }


@cache
def _raw_headers() -> tuple[tuple[bytes, bytes], ...]:
    return (
        *((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers().items()),
        (b"content-type", b"text/html; charset=utf-8"),
    )


def _html(body: bytes, status: int) -> HTMLResponse:
    """Return a page with ``headers()``, encoded once per process instead of per response."""
    response = HTMLResponse(None, status_code=status)
    response.body = body
    response.raw_headers = [(b"content-length", str(len(body)).encode()), *_raw_headers()]
    return response


def branding_view(branding: Mapping[str, Any]) -> dict[str, Any]:
    """Return the template's branding values: colours, the text colour on buttons, the font stack."""
    return _branding_view(tuple(merge_branding(branding).items()))


@lru_cache(maxsize=256)
def _branding_view(merged: tuple[tuple[str, str | None], ...]) -> dict[str, Any]:
    # The same few brandings (per workspace and survey version) on every page: computed once each.
    # Templates only read the dict.
    b = dict(merged)
    return {
        **b,
        "on_primary": on_colour(str(b["primary_color"])),
        "font_stack": FONTS.get(str(b["font"]), FONTS["system"]),
    }


def _render(
    template: str, status: int, *, lang: str | None, branding: Mapping[str, Any] | None = None, **ctx: Any
) -> HTMLResponse:
    return _html(_html_of(template, lang=lang, branding=branding, **ctx).encode(), status)


def _html_of(template: str, *, lang: str | None, branding: Mapping[str, Any] | None, **ctx: Any) -> str:
    locale = lang or "en"
    return (
        _templates()
        .get_template(template)
        .render(lang=locale, dir=text_direction(locale), b=branding_view(branding or {}), **ctx)
    )


def _str(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None or isinstance(value, list) else str(value)


def question_view(
    q: Question,
    *,
    text: str,
    options: Sequence[tuple[str, str]],
    value: Any,
    error: str | None,
    lang: str,
) -> QuestionView:
    """Return how one question is drawn: its input kind, choices with labels, the answer so far."""
    chosen = {str(v) for v in value} if isinstance(value, list) else {_str(value)}
    choices: list[Choice] = []
    hints: tuple[str, str] | None = None
    note = None
    scale = q.scale
    if q.type == "open":
        kind, layout, input_, value_kind = "open", "", "", "text"
    elif q.type == "consent":
        kind, layout, input_, value_kind = "consent", "yesno", "radio", "bool"
        choices = [Choice(v, t(lang, v), None, v in chosen) for v in ("yes", "no")]
    elif q.type in ("single_choice", "multiple_choice"):
        multiple = q.type == "multiple_choice"
        kind, layout, value_kind = ("multiple", "list", "list") if multiple else ("single", "list", "str")
        input_ = "checkbox" if multiple else "radio"
        choices = [Choice(oid, label, None, oid in chosen) for oid, label in options]
        note = t(lang, "choose_any") if multiple else None
    else:
        how = scales.drawing(q)
        assert scale is not None and how is not None
        labels = scales.point_labels(q, lang)
        names = scales.point_names(q, lang) or (None,) * len(labels)
        points = [str(n) for n in range(scale[0], scale[1] + 1)]
        kind, input_, value_kind = ("scale" if how == "numbers" else how), "radio", "int"
        layout = {"labels": "list", "emoji": "faces", "stars": "stars"}.get(how, "")
        if how == "numbers":
            layout = "n11" if scale[1] - scale[0] == 10 else ""
            # Numbers on the buttons; the anchor words under both ends.
            hints = (f"{scale[0]} = {labels[0]}", f"{scale[1]} = {labels[-1]}")
            labels = tuple(points)
        # Lowest first, left to right (top to bottom in a list), as in the invitation's email.
        choices = [
            Choice(v, label, name, v in chosen) for v, label, name in zip(points, labels, names, strict=True)
        ]
    return QuestionView(
        id=q.id,
        kind=kind,
        text=text,
        required=q.required,
        input=input_,
        layout=layout,
        choices=tuple(choices),
        hints=hints,
        value=_str(value) if kind == "open" else "",
        value_kind=value_kind,
        error=error,
        note=note,
        auto=kind in AUTO_ADVANCE,
    )


def _survey_html(
    *,
    title: str,
    heading: str | None,
    questions: Sequence[QuestionView],
    locale: str,
    progress: Progress,
    start: int,
    last_step: bool,
    action: str,
    save_url: str,
    back_url: str | None,
    max_chars: int,
    branding: Mapping[str, Any],
    notice: str | None,
    idle_url: str | None,
    idle_s: int,
) -> str:
    """Return one page of the survey: the questions in ``questions``, answers so far filled in, and
    ``notice`` (why the score in the link was not saved) above them."""
    lang = ui_language(locale)
    total = max(progress.total, progress.done + len(questions), 1)
    n = min(progress.done + 1 + start, total)
    has_errors = any(q.error for q in questions)
    return _html_of(
        "survey.html",
        lang=locale,
        branding=branding,
        title=title,
        heading=heading,
        questions=questions,
        shown=",".join(q.id for q in questions),
        done=progress.done,
        total=total,
        percent=round(100 * (progress.done + start) / total),
        progress_text=t(lang, "progress", {"n": n, "total": total}),
        start=start,
        last_step=last_step,
        action=action,
        save_url=save_url,
        back_url=back_url,
        max_chars=max_chars,
        has_errors=has_errors,
        check_answers=t(lang, "check_answers"),
        notice=notice,
        ui={
            "next": t(lang, "next"),
            "send": t(lang, "send"),
            "back": t(lang, "back"),
            "required": t(lang, "required"),
            "required_error": t(lang, "err.required"),
            "progress": t(lang, "progress").replace("{n}", "{n}").replace("{total}", "{total}"),
        },
        idle_url=idle_url,
        idle_s=idle_s,
        script=script()[0],
    )


def thank_you(
    *,
    title: str,
    text: str | None,
    locale: str,
    tone: str,
    branding: Mapping[str, Any],
    link_url: str | None = None,
    link_text: str | None = None,
    reward_code: str | None = None,
    next_url: str | None = None,
    next_after_s: int = 0,
) -> HTMLResponse:
    """Return the page shown after a response was completed (per outcome, with a reward code)."""
    lang = ui_language(locale)
    return _render(
        "message.html",
        200,
        lang=locale,
        branding=branding,
        title=title,
        heading=t(lang, "thanks"),
        text=text or t(lang, f"thanks.{tone}" if tone in TONES else "thanks.friendly"),
        link_url=link_url,
        link_text=link_text,
        reward_code=reward_code,
        reward_label=t(lang, "reward"),
        next_url=next_url,
        next_label=t(lang, "next_person"),
        refresh_url=next_url,
        refresh_s=next_after_s,
    )


def message(
    *,
    status: int,
    key: str,
    locale: str | None,
    title: str | None = None,
    branding: Mapping[str, Any] | None = None,
    next_url: str | None = None,
    headers_: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Return a friendly page for a link that cannot be answered (``key``: answered, closed, …)."""
    lang = ui_language(locale)
    heading = t(lang, f"{key}.heading" if key not in ("gone",) else "invalid.heading")
    text = t(lang, f"{key}.text")
    page = _render(
        "message.html",
        status,
        lang=locale,
        branding=branding,
        title=title or heading,
        heading=heading,
        text=text,
        next_url=next_url,
        next_label=t(lang, "next_person"),
    )
    page.headers.update(headers_ or {})
    return page


def step_progress(
    questions: Sequence[Question],
    answers: Mapping[str, Any],
    fields: Mapping[str, str],
    passed: set[str],
    first: str,
) -> Progress:
    """Return the progress at question ``first``: questions this respondent sees before it, and in all."""
    states = plan(questions, answers, fields, passed)
    ids = [q.id for q in questions]
    at = ids.index(first)
    done = sum(1 for s in states[:at] if s != "hidden")
    return Progress(done, sum(1 for s in states if s != "hidden"))


_MARK = f"tk{secrets.token_hex(12)}"
"""Stands for the respondent's token in a kept page: random per process, so no survey's text holds it."""
_KEPT: OrderedDict[tuple[Any, ...], tuple[bytes, ...]] = OrderedDict()
KEPT_PAGES = 256
"""Rendered pages kept (``render_step``), the most recently used."""


def render_step(
    visit: Any,
    step: Sequence[Question],
    *,
    action: str,
    save_url: str,
    back_url: str | None,
    max_chars: int,
    branding: Mapping[str, Any],
    values: Mapping[str, Any],
    errors: Mapping[str, Problem],
    idle_url: str | None,
    idle_s: int,
    notice: Problem | None = None,
    status: int = 200,
    token: str | None = None,
) -> HTMLResponse:
    """Return the page for ``step`` of a visit (``handlers.visits.Visit``).

    With ``token`` (the link's, in ``action``, ``save_url`` and ``back_url``) a page nothing personal
    is drawn on — no answer of the step, no error, no text filled from the link's hidden fields — is
    rendered once per everything it shows (survey version, step, language, progress, branding, URLs
    with the token left out) and kept; each respondent's token is spliced into the kept bytes."""
    locale = visit.locale
    progress = step_progress(visit.questions, visit.answers, visit.fields, visit.passed, step[0].id)
    title = visit.text(visit.definition.raw.get("title")) or visit.survey.name
    page = {
        "title": title,
        "heading": title,
        "locale": locale,
        "progress": progress,
        "last_step": progress.done + len(step) >= progress.total,
        "action": action,
        "save_url": save_url,
        "back_url": back_url,
        "max_chars": max_chars,
        "branding": branding,
        "idle_url": idle_url,
        "idle_s": idle_s,
    }
    lang = ui_language(locale)
    if token and not errors and not visit.definition.fills_fields and not any(q.id in values for q in step):
        return _kept_step(
            visit, step, token, page, notice=notice.text(lang) if notice else None, status=status
        )
    views = _views(visit, step, values=values, errors=errors, lang=lang)
    # With JavaScript the page shows one question at a time, from the first unanswered one.
    start = next((i for i, q in enumerate(step) if q.id not in values and q.id not in errors), len(step) - 1)
    if errors:
        start = next(i for i, q in enumerate(step) if q.id in errors)
    html = _survey_html(questions=views, start=start, notice=notice.text(lang) if notice else None, **page)
    return _html(html.encode(), status)


def _views(
    visit: Any,
    step: Sequence[Question],
    *,
    values: Mapping[str, Any],
    errors: Mapping[str, Problem],
    lang: str,
) -> list[QuestionView]:
    return [
        question_view(
            q,
            text=visit.text(q.text),
            options=[(o.id, visit.text(o.text)) for o in q.options],
            value=values.get(q.id),
            error=errors[q.id].text(lang) if q.id in errors else None,
            lang=lang,
        )
        for q in step
    ]


def _kept_step(
    visit: Any,
    step: Sequence[Question],
    token: str,
    page: dict[str, Any],
    *,
    notice: str | None,
    status: int,
) -> HTMLResponse:
    """Return ``render_step``'s page of a step without answers or errors, from the kept pages."""
    for url in ("action", "save_url", "back_url"):
        if page[url] is not None:
            page[url] = page[url].replace(token, _MARK)
    # Everything the page shows: the questions' texts come from the survey version, the language
    # chain and the respondent's reachability (which questions are in ``step``); nothing from fields.
    key = (
        visit.survey.id,
        visit.definition.version,
        tuple(q.id for q in step),
        visit.chain,
        notice,
        status,
        *(tuple(v.items()) if isinstance(v, Mapping) else v for v in page.values()),
    )
    parts = _KEPT.get(key)
    if parts is None:
        views = _views(visit, step, values={}, errors={}, lang=ui_language(page["locale"]))
        html = _survey_html(questions=views, start=0, notice=notice, **page)
        parts = _KEPT[key] = tuple(part.encode() for part in html.split(_MARK))
        if len(_KEPT) > KEPT_PAGES:
            _KEPT.popitem(last=False)
    else:
        _KEPT.move_to_end(key)
    return _html(token.encode().join(parts), status)


def qr_code(url: str, *, kind: str) -> bytes:
    """Return the QR code of ``url`` as SVG or PNG (quiet zone included, error correction M)."""
    import io

    import segno

    buffer = io.BytesIO()
    code = segno.make(url, error="m", micro=False)
    if kind == "svg":
        code.save(buffer, kind="svg", scale=8, border=4, xmldecl=False, title="Survey link")
    else:
        code.save(buffer, kind="png", scale=10, border=4)
    return buffer.getvalue()

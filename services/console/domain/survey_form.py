"""The survey editor's form as a survey definition (responses' ``SurveyCreate``) and back: texts in the
default language and one more, one show-if condition and one "skip to the end" per question, the survey's
own colours, font and logo, and its reward pool. Responses checks the result; this only shapes it."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FONTS = {"system": "System", "serif": "Serif", "rounded": "Rounded", "mono": "Monospace"}
QUESTION_FIELDS: tuple[str, ...] = ("id", "type", "text", "text2", "show_q", "show_min", "show_max")
QUESTION_FIELDS += ("show_values", "end_min", "end_max", "end_values", "kept")
"""The editor's per-question inputs (posted as ``q_<name>``, one per row); ``kept`` carries, as JSON,
what a saved question has that the editor does not show (options, more languages, more conditions)."""
KEPT_QUESTION = ("options", "style", "points")
KEPT_SURVEY = ("title", "thank_you_text", "outcomes")
KEPT_BRANDING = ("tone",)
LOGO_TYPES = {"image/png", "image/jpeg", "image/webp", "image/gif", "image/svg+xml"}


@dataclass
class QuestionRow:
    """One question row of the editor, as typed."""

    id: str = ""
    type: str = "open"
    text: str = ""
    text2: str = ""
    required: bool = False
    show_q: str = ""
    show_min: str = ""
    show_max: str = ""
    show_values: str = ""
    end_min: str = ""
    end_max: str = ""
    end_values: str = ""
    kept: str = ""


@dataclass
class Branding:
    """The survey's own look; ``own`` False means the workspace's."""

    own: bool = False
    primary_color: str = "#1f4fd1"
    background_color: str = "#f4f5f7"
    text_color: str = "#1d2330"
    font: str = "system"
    logo: str | None = None


@dataclass
class Draft:
    """Everything the editor shows, as typed."""

    name: str = ""
    default_locale: str = "en"
    second_locale: str = ""
    rows: list[QuestionRow] = field(default_factory=list)
    branding: Branding = field(default_factory=Branding)
    reward_pool_id: str = ""
    kept: str = ""
    """What a saved survey has that the editor does not show (title, thank-you texts, outcomes, tone)."""


def kept_of(raw: str) -> dict[str, Any]:
    """Return the JSON object carried in a ``kept`` field ({} when there is none or it is not one)."""
    try:
        found = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _int(value: str) -> int | str | None:
    """An integer as typed, or the text itself (responses names the field when it is not one)."""
    value = value.strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        return value


def _values(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def condition(question: str, low: str, high: str, values: str) -> dict[str, Any] | None:
    """Return one condition on ``question`` (a range or values), or None when nothing was typed."""
    if not question or not (low.strip() or high.strip() or values.strip()):
        return None
    out: dict[str, Any] = {"question": question}
    if values.strip():
        out["one_of"] = _values(values)
    for key, raw in (("min", low), ("max", high)):
        if (number := _int(raw)) is not None:
            out[key] = number
    return out


def _text(row: QuestionRow, default: str, second: str, more: Any) -> str | dict[str, str] | None:
    texts = {str(k): str(v) for k, v in more.items()} if isinstance(more, dict) else {}
    if row.text.strip():
        texts[default] = row.text.strip()
    if second and second != default and row.text2.strip():
        texts[second] = row.text2.strip()
    if not texts:
        return None
    return texts if len(texts) > 1 or second or default not in texts else texts[default]


def _conditions(first: dict[str, Any] | None, more: Any) -> list[dict[str, Any]]:
    rest = [c for c in more if isinstance(c, dict)] if isinstance(more, list) else []
    return ([first] if first else []) + rest


def definition(draft: Draft) -> dict[str, Any]:
    """Return the survey definition responses' ``POST /v1/surveys`` takes for ``draft``."""
    default, second = draft.default_locale.strip() or "en", draft.second_locale.strip()
    questions: list[dict[str, Any]] = []
    for row in draft.rows:
        if not row.id.strip():
            continue
        kept = kept_of(row.kept)
        q: dict[str, Any] = {k: kept[k] for k in KEPT_QUESTION if k in kept}
        q |= {"id": row.id.strip(), "type": row.type, "required": row.required}
        if (text := _text(row, default, second, kept.get("text"))) is not None:
            q["text"] = text
        show = condition(row.show_q.strip(), row.show_min, row.show_max, row.show_values)
        end = condition(row.id.strip(), row.end_min, row.end_max, row.end_values)
        for key, first in (("show_if", show), ("end_if", end)):
            if found := _conditions(first, kept.get(key)):
                q[key] = found
        questions.append(q)
    kept = kept_of(draft.kept)
    out: dict[str, Any] = {k: kept[k] for k in KEPT_SURVEY if k in kept}
    out |= {"name": draft.name.strip(), "default_locale": default, "questions": questions}
    b = draft.branding
    if b.own:
        out["branding"] = (
            {k: v for k, v in (kept.get("branding") or {}).items() if k in KEPT_BRANDING}
            | {
                "primary_color": b.primary_color,
                "background_color": b.background_color,
                "text_color": b.text_color,
                "font": b.font if b.font in FONTS else "system",
            }
            | ({"logo": b.logo} if b.logo else {})
        )
    if draft.reward_pool_id:
        out["reward_pool_id"] = draft.reward_pool_id
    return out


def logo_data_url(content_type: str, data: bytes) -> str | None:
    """Return an uploaded image as the inline ``data:`` URL responses stores, or None for no image."""
    if not data or content_type not in LOGO_TYPES:
        return None
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"


def rows_of(form: Mapping[str, Sequence[str]], required: Sequence[str], *, minimum: int) -> list[QuestionRow]:
    """Return the question rows of the posted form (parallel lists), padded to ``minimum`` rows and with
    at least one empty row to add a question in."""
    names = QUESTION_FIELDS
    count = max((len(form.get(n, ())) for n in names), default=0)

    def at(name: str, i: int) -> str:
        values = form.get(name, ())
        return values[i] if i < len(values) else ""

    rows = [
        QuestionRow(**{n: at(n, i) for n in names}, required=at("id", i).strip() in required)
        for i in range(count)
    ]
    rows = [r for r in rows if r.id.strip()]
    return rows + [QuestionRow() for _ in range(max(1, minimum - len(rows)))]


def show_condition(q: Mapping[str, Any], key: str) -> str:
    """Say a question's first condition of ``key`` (show_if, end_if) in words, or ''."""
    conditions = q.get(key) or []
    if not conditions:
        return ""
    c = conditions[0]
    what = c.get("question") or f"attribute {c.get('attribute')}"
    if c.get("one_of"):
        return f"{what} is {' or '.join(c['one_of'])}"
    low, high = c.get("min"), c.get("max")
    if low is not None and high is not None:
        return f"{what} is {low}–{high}"
    return f"{what} ≥ {low}" if low is not None else f"{what} ≤ {high}"

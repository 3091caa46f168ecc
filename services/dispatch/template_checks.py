"""Checking a workspace template when it is saved or previewed: errors refuse it, warnings are returned.

- **Errors** (422 naming ``subject``, ``text`` or ``html``): the source does not compile, a subject
  holds a control character (a header is one line), or rendering it against sample data fails.
- **Warnings** (the template is saved; ``warnings`` in the answer, each naming the field and the
  merge field): a merge field that does not exist (a typo renders as nothing — ``{{ frist_name }}``),
  or one used where it renders nothing useful (``{{ embed }}`` or ``score_links`` in a subject or an
  SMS, ``unsubscribe_url`` in a subject).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from jinja2 import TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment

from services.dispatch import embeds, templates

MERGE_FIELDS = frozenset(
    {
        "name",
        "first_name",
        "greeting",
        "brand",
        "product",
        "agent",
        "agent_first_name",
        "ticket_id",
        "context",
        "channel",
        "kind",
        "locale",
        "language",
        "reminder",
        "question",
        "question_sentence",
        "intro",
        "minute",
        "cta",
        "button_fallback",
        "survey_url",
        "short_url",
        "unsubscribe_url",
        "unsubscribe_question",
        "unsubscribe_label",
        "ttl_days",
        "validity",
        "embed",
        "embed_question",
        "embed_anchors",
        "score_links",
    }
)
"""Every merge field a template can use (``templates.fields_for``)."""

EMAIL_BODY_ONLY = frozenset({"embed", "embed_question", "embed_anchors", "score_links"})
"""Fields that are empty anywhere but the body of an email: the embedded question."""
NOT_IN_SUBJECT = EMAIL_BODY_ONLY | {"unsubscribe_url", "button_fallback"}

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


@dataclass(frozen=True)
class TemplateWarning:
    field: str
    """The template's field: ``subject``, ``text`` or ``html``."""
    message: str


def _variables(env: SandboxedEnvironment, source: str) -> set[str]:
    """Return the names ``source`` reads that it does not set itself (Jinja's globals such as ``range``
    are not merge fields and not reported)."""
    return set(meta.find_undeclared_variables(env.parse(source))) - set(env.globals)


def _compile(field: str, source: str, env: SandboxedEnvironment) -> set[str]:
    """Return the merge fields ``source`` uses; raise ``TemplateProblem`` when it does not compile."""
    try:
        env.from_string(source)
        return _variables(env, source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise templates.TemplateProblem(
            f"{field} is not a valid template{where}: {exc}", field=field
        ) from exc


def merge_field_warnings(channel: str, used: dict[str, set[str]]) -> list[TemplateWarning]:
    """Return a warning per unknown merge field and per merge field where it renders nothing useful."""
    warnings = []
    for field, names in used.items():
        for unknown in sorted(names - MERGE_FIELDS):
            warnings.append(
                TemplateWarning(
                    field,
                    f"{{{{ {unknown} }}}} is not a merge field and renders as nothing; "
                    f"the merge fields are {', '.join(sorted(MERGE_FIELDS))}",
                )
            )
        misplaced = NOT_IN_SUBJECT if field == "subject" else EMAIL_BODY_ONLY if channel != "email" else set()
        for name in sorted(names & misplaced):
            where = "a subject line" if field == "subject" else f"a {channel} message"
            warnings.append(
                TemplateWarning(
                    field,
                    f"{{{{ {name} }}}} renders as nothing in {where}: "
                    + (
                        "the embedded question belongs in the text or html of an email"
                        if name in EMAIL_BODY_ONLY
                        else "it belongs in the body of an email"
                    ),
                )
            )
    return warnings


def _sources(
    *, subject: str | None, text: str, html: str | None
) -> Iterator[tuple[str, str, SandboxedEnvironment]]:
    """Each source the template has: its field, its text and the environment it compiles in."""
    for field, source, env in (
        ("subject", subject, templates.text_env),
        ("text", text, templates.text_env),
        ("html", html, templates.html_env),
    ):
        if source is not None:
            yield field, source, env


def warnings_of(channel: str, *, subject: str | None, text: str, html: str | None) -> list[TemplateWarning]:
    """Return the warnings of a template already saved (its sources compile)."""
    used: dict[str, set[str]] = {}
    for field, source, env in _sources(subject=subject, text=text, html=html):
        try:
            used[field] = _variables(env, source)
        except TemplateError:
            continue
    return merge_field_warnings(channel, used)


def validate(
    channel: str, *, subject: str | None, text: str, html: str | None, embed: bool = True
) -> list[TemplateWarning]:
    """Return the template's warnings; raise ``TemplateProblem`` naming the field when it is unusable."""
    if subject is not None and _CONTROL.search(subject):
        raise templates.TemplateProblem(
            "subject must be one line without control characters (CR, LF, tab …): it becomes an email header",
            field="subject",
        )
    used = {
        field: _compile(field, source, env)
        for field, source, env in _sources(subject=subject, text=text, html=html)
    }
    spec = templates.TemplateSpec(None, subject, text, html, embed)
    brand = templates.Branding(name="Acme")
    fields = templates.fields_for(
        channel=channel,
        kind="transactional",
        name="Ada Lovelace",
        context={"product": "Acme Cloud", "agent": "Grace Hopper", "ticket_id": "T-1042"},
        brand=brand,
        survey_url="https://go.example/l/sample",
        short_url="https://go.example/l/sample",
        unsubscribe_url="https://go.example/u/sample",
        ttl_days=30,
        locale="en",
        embed=embeds.embedded_question(embeds.SAMPLE_NPS, language="en"),
    )
    try:
        templates.render(channel, fields, spec)
    except templates.TemplateProblem as exc:
        raise templates.TemplateProblem(f"the template fails on sample data: {exc}", field="text") from exc
    return merge_field_warnings(channel, used)

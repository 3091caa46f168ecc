"""The survey's own first question, embedded in the invitation email as one link per answer.

Pure rules over what ``SurveyPublished`` told dispatch about a survey version (stored in ``surveys``):
a question is embedded in its own type and scale — NPS and NLS 0–10, CSAT 1–5 (labels or faces) or
1–10, CES 1–7, star ratings — with the survey page's own text and labels in the message's language,
its options lowest first, left to right, exactly as the page shows them. Each option links to the
survey with ``?score=N`` (the page records it and goes on with the next question). A first question
that cannot be answered with one click (open text, a choice, consent) or a survey dispatch has not
heard of embeds nothing: the email just links to the survey.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.dispatch.wording import base_language

DEFAULT_SCALES: dict[str, tuple[int, int]] = {
    "nps": (0, 10),
    "nls": (0, 10),
    "csat": (1, 5),
    "ces": (1, 7),
    "rating": (1, 5),
}
"""The question types that can be embedded, with their scale when the question does not set one."""


@dataclass(frozen=True)
class Point:
    """One answer on the scale: its score and the label the survey page shows for it ("" for none)."""

    score: int
    label: str


@dataclass(frozen=True)
class EmbeddedQuestion:
    """The first question as the email shows it: its text and its points, lowest first."""

    question_id: str
    type: str
    text: str
    points: tuple[Point, ...]

    @property
    def low(self) -> int:
        return self.points[0].score

    @property
    def high(self) -> int:
        return self.points[-1].score

    @property
    def labelled(self) -> bool:
        """Whether every point has a label (CSAT words or faces, stars): the options show the labels,
        as the page does; otherwise they show the numbers, with the labels the page has as anchors."""
        return all(p.label for p in self.points)

    def anchors(self) -> list[str]:
        """Return the page's anchors of a numbered scale: ``["0 = Not at all likely", "10 = Extremely likely"]``."""
        if self.labelled:
            return []
        return [f"{p.score} = {p.label}" for p in self.points if p.label]


def first_question(questions: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Return the survey's first question as stored (or None for a survey without questions)."""
    return dict(questions[0]) if questions else None


def scale_of(question: Mapping[str, Any]) -> tuple[int, int] | None:
    """Return the question's (lowest, highest) score, or None when it is not embeddable."""
    kind = question.get("type")
    if kind not in DEFAULT_SCALES:
        return None
    scale = question.get("scale")
    if isinstance(scale, list | tuple) and len(scale) == 2 and all(isinstance(n, int) for n in scale):
        low, high = int(scale[0]), int(scale[1])
        return (low, high) if low < high and high - low <= 10 else None
    return DEFAULT_SCALES[str(kind)]


def _in_language(values: Mapping[str, Any], language: str, languages: Sequence[str]) -> Any:
    """Return the value for ``language``, else for the survey's first language, else any, else None."""
    by_base = {base_language(k): v for k, v in values.items()}
    for candidate in (language, *languages):
        found = by_base.get(base_language(candidate))
        if found:
            return found
    return next((v for v in values.values() if v), None)


def embedded_question(
    question: Mapping[str, Any] | None, *, language: str, languages: Sequence[str] = ()
) -> EmbeddedQuestion | None:
    """Return the first question as the email embeds it in ``language``, or None when it cannot be."""
    if not question:
        return None
    scale = scale_of(question)
    if scale is None:
        return None
    texts = question.get("texts") if isinstance(question.get("texts"), Mapping) else {}
    text = _in_language(texts or {}, language, languages) or question.get("text")
    if not isinstance(text, str) or not text.strip():
        return None
    scores = range(scale[0], scale[1] + 1)
    all_labels = question.get("labels") if isinstance(question.get("labels"), Mapping) else {}
    labels = _in_language(all_labels or {}, language, languages) or ()
    if not isinstance(labels, list | tuple) or len(labels) != len(scores):
        labels = [""] * len(scores)
    points = tuple(
        Point(n, " ".join(str(label or "").split())) for n, label in zip(scores, labels, strict=True)
    )
    return EmbeddedQuestion(str(question.get("id") or ""), str(question["type"]), text.strip(), points)


def score_url(url: str, score: int) -> str:
    """Return the link that records ``score`` for the first question and opens the survey."""
    return f"{url}{'&' if '?' in url else '?'}score={score}"


SAMPLE_NPS: dict[str, Any] = {
    "id": "recommend",
    "type": "nps",
    "texts": {
        "en": "How likely are you to recommend Acme to a friend or colleague?",
        "nl": "Hoe waarschijnlijk is het dat u Acme aanbeveelt aan een vriend of collega?",
    },
    "labels": {
        "en": ["Not at all likely", *[""] * 9, "Extremely likely"],
        "nl": ["Zeer onwaarschijnlijk", *[""] * 9, "Zeer waarschijnlijk"],
    },
}
"""The question template previews and template checks embed when no survey is named."""

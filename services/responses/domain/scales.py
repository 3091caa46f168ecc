"""Scales: how a scored question's points are drawn, lowest first, and the words on them.

One source for the survey page and for ``SurveyPublished`` (which dispatch embeds in emails), so that
an email shows exactly the page's words in the same order.
"""

from __future__ import annotations

from typing import Literal

from services.responses.domain.definition import EMOJI_FACES, Question
from services.responses.i18n import t

ScaleDrawing = Literal["labels", "emoji", "stars", "numbers"]
ANCHORS = {"nps": "nps", "nls": "nps", "csat": "csat", "ces": "ces"}
"""The interface words at both ends of a numeric scale (``<base>.low``, ``<base>.high``)."""
STAR = "★"


def drawing(q: Question) -> ScaleDrawing | None:
    """Return how the page draws the points of ``q``: words, faces, stars or numbers; None without a scale."""
    if q.scale is None:
        return None
    if q.type == "rating":
        return "stars"
    if q.type == "csat" and q.scale[1] == 5 and q.style in (None, "labels", "emoji"):
        return "emoji" if q.style == "emoji" else "labels"
    return "numbers"


def point_labels(q: Question, lang: str) -> tuple[str, ...]:
    """Return each point's label of ``q``'s scale in interface language ``lang``, lowest first.

    CSAT words and faces label every point; stars are each a star; a numeric scale (NPS, NLS, CES,
    CSAT as numbers) labels its two ends with the anchor words and leaves the points between blank.
    Empty for a question without a scale.
    """
    how = drawing(q)
    if how is None or q.scale is None:
        return ()
    low, high = q.scale
    points = range(low, high + 1)
    if how == "labels":
        return tuple(t(lang, f"csat.{n}") for n in points)
    if how == "emoji":
        return tuple(EMOJI_FACES[n - 1] for n in points)
    if how == "stars":
        return tuple(STAR for _ in points)
    base = ANCHORS.get(q.type)
    if base is None:  # pragma: no cover - every numeric scale has anchors
        return tuple("" for _ in points)
    between = ("",) * (high - low - 1)
    return (t(lang, f"{base}.low"), *between, t(lang, f"{base}.high"))


def point_names(q: Question, lang: str) -> tuple[str, ...]:
    """Return what a screen reader says for each point where the label is a picture (faces, stars);
    empty where the label itself is words or a number."""
    how = drawing(q)
    if how == "emoji" and q.scale:
        return tuple(t(lang, f"csat.{n}") for n in range(q.scale[0], q.scale[1] + 1))
    if how == "stars" and q.scale:
        return tuple(t(lang, "stars", {"n": n, "max": q.scale[1]}) for n in range(q.scale[0], q.scale[1] + 1))
    return ()

"""One comment, read on arrival: its language, sentiment and lemmas."""

from __future__ import annotations

from dataclasses import dataclass

from services.scoring.text import sentiment as sentiments
from services.scoring.text.language import SCORED, SUPPORTED, Confidence, detect
from services.scoring.text.sentiment import Label, label_of
from services.scoring.text.themes import lemmas, lemmatiser, padded


@dataclass(frozen=True)
class Analysis:
    language: str | None
    confidence: Confidence
    """high / low: how sure the language is; unscored: no sentiment lexicon for the language."""
    sentiment: float | None
    label: Label | None
    lemma_text: str
    """The lemmas in order, padded with spaces (what theme rules are matched against)."""


def warm_up() -> None:
    """Load every language's dictionaries and lexicons now (seconds of CPU), not on the first comment."""
    for sample, language in (("The delivery was late", "en"), ("De levering was te laat", "nl")):
        analyse(sample, hint=language)
    for language in SUPPORTED:
        lemmas("warm up", language)


def analyse(text: str, *, hint: str | None = None) -> Analysis:
    """Return what can be read from ``text``; ``hint`` is the response's language."""
    language, confidence = detect(text, hint=hint)
    words = lemmas(text, language)
    if language not in SCORED:
        return Analysis(language, "unscored", None, None, padded(words))
    compound = sentiments.sentiment(text, language, lemma=lemmatiser(language))
    assert compound is not None
    return Analysis(language, confidence, round(compound, 4), label_of(compound), padded(words))

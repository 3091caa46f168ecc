"""Sentiment of a comment, −1 … 1, by a lexicon method per language."""

from __future__ import annotations

import math
import re
from functools import cache
from typing import Any, Literal

from services.scoring.text import lexicon_nl

Label = Literal["positive", "neutral", "negative"]

NEUTRAL_BAND = 0.05
"""|compound| below this is neutral (VADER's own convention)."""
_NEGATION_SCALE = -0.74
_ALPHA = 15
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)


def label_of(compound: float) -> Label:
    if compound >= NEUTRAL_BAND:
        return "positive"
    return "negative" if compound <= -NEUTRAL_BAND else "neutral"


@cache
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def _normalise(total: float) -> float:
    """VADER's squashing of a sum of valences into −1 … 1."""
    return total / math.sqrt(total * total + _ALPHA)


def dutch(text: str, *, lemma: Any = None) -> float:
    """Return the compound sentiment of a Dutch text with VADER's rules on closeloop's Dutch lexicon:
    negation within three words before flips and dampens, boosters strengthen, ``maar`` weighs the
    clause after it 1.5 times and the one before half."""
    tokens = [t.lower() for t in _TOKEN.findall(text)]
    valences: list[float] = []
    skip = 0
    for i, token in enumerate(tokens):
        if skip:
            skip -= 1
            valences.append(0.0)
            continue
        pair = tuple(tokens[i : i + 2])
        if pair in lexicon_nl.PHRASES:
            valence = lexicon_nl.PHRASES[pair]
            skip = 1
        else:
            valence = lexicon_nl.VALENCE.get(token, 0.0)
            if not valence and lemma is not None:
                valence = lexicon_nl.VALENCE.get(lemma(token), 0.0)
        if valence:
            for back in range(1, 4):
                if i - back < 0:
                    break
                before = tokens[i - back]
                if back == 1 and before in lexicon_nl.BOOSTERS:
                    boost = lexicon_nl.BOOSTERS[before]
                    valence += boost if valence > 0 else -boost
                if before in lexicon_nl.NEGATIONS and pair not in lexicon_nl.PHRASES:
                    valence *= _NEGATION_SCALE
                    break
        valences.append(valence)
    for i, token in enumerate(tokens):
        if token in lexicon_nl.CONTRAST:
            valences = [v * 0.5 for v in valences[:i]] + [v * 1.5 for v in valences[i:]]
            break
    total = float(sum(valences))
    if "!" in text and total:
        # Exclamation marks strengthen the text's leaning (VADER's amplifier, at most four).
        bonus = min(text.count("!"), 4) * 0.292
        total += bonus if total > 0 else -bonus
    return _normalise(total)


def english(text: str) -> float:
    """Return VADER's compound sentiment of an English text."""
    return float(_vader().polarity_scores(text)["compound"])


def sentiment(text: str, language: str | None, *, lemma: Any = None) -> float | None:
    """Return the compound sentiment of ``text`` in ``language``; None without a lexicon for it."""
    if language == "en":
        return english(text)
    if language == "nl":
        return dutch(text, lemma=lemma)
    return None

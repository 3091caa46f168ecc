"""Which language a comment is in."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

from services.scoring.text.dictionaries import language_shares

Confidence = Literal["high", "low", "unscored"]

SUPPORTED = ("en", "nl", "de", "fr", "es")
"""Languages told apart; sentiment lexicons exist for ``SCORED``."""
SCORED = ("en", "nl")
_WORD = re.compile(r"[^\W\d_]{2,}", re.UNICODE)


@lru_cache(maxsize=4096)
def _coverage(text: str) -> tuple[tuple[str, float], ...]:
    return tuple((lang, score) for lang, score in language_shares(text, SUPPORTED) if lang != "unk")


def detect(text: str, *, hint: str | None = None) -> tuple[str | None, Confidence]:
    """Return (language, confidence) of ``text``; ``hint`` is the response's locale language.

    The share of a text's words that are known words of each language decides. Short or unclear
    texts (fewer than three words, or two languages nearly tied) take the hint when it is one of the
    close candidates, with low confidence.
    """
    words = _WORD.findall(text)
    ranked = sorted(_coverage(text.lower()), key=lambda ls: -ls[1]) if words else []
    if not ranked or ranked[0][1] == 0:
        return (hint, "low") if hint else (None, "low")
    best, score = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    if len(words) >= 3 and score >= 0.5 and score - runner_up >= 0.15:
        return best, "high"
    close = {lang for lang, s in ranked if score - s < 0.15}
    if hint in close:
        return hint, "low"
    return best, "low"

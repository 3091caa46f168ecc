"""Themes: the words of a comment as lemmas, the theme rules that mark them, and suggested themes.

A rule is a theme and its keywords or phrases per language. Keywords are kept as lemma phrases, and a
comment as the sequence of its lemmas, so "leveringen" matches the keyword "levering" and "was late"
matches "be late". Rules are matched when a report is read, so editing them applies to every comment
already received.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from services.scoring.text.dictionaries import lemmatizer
from services.scoring.text.language import SUPPORTED

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)

DEFAULT_THEMES: dict[str, dict[str, list[str]]] = {
    "delivery": {
        "en": ["delivery", "deliver", "shipping", "parcel", "package", "courier", "arrive"],
        "nl": ["levering", "leveren", "bezorging", "bezorgen", "pakket", "koerier", "verzending"],
    },
    "price": {
        "en": ["price", "expensive", "cheap", "cost", "invoice", "bill", "refund"],
        "nl": ["prijs", "duur", "goedkoop", "kosten", "factuur", "rekening", "terugbetaling"],
    },
    "staff": {
        "en": ["staff", "employee", "agent", "friendly", "rude", "helpful", "polite"],
        "nl": ["medewerker", "personeel", "vriendelijk", "onvriendelijk", "behulpzaam", "beleefd"],
    },
    "waiting time": {
        "en": ["wait", "waiting", "queue", "slow", "on hold", "took long"],
        "nl": ["wachten", "wachttijd", "traag", "langzaam", "wachtrij", "duurde lang"],
    },
    "product quality": {
        "en": ["quality", "broken", "defect", "damaged", "faulty"],
        "nl": ["kwaliteit", "kapot", "defect", "beschadigd", "stuk"],
    },
    "website and app": {
        "en": ["website", "app", "login", "log in", "online", "site"],
        "nl": ["website", "app", "inloggen", "online", "site"],
    },
    "communication": {
        "en": ["email", "call", "phone", "reply", "answer", "communication", "contact"],
        "nl": ["mail", "bellen", "telefoon", "reactie", "antwoord", "communicatie", "contact"],
    },
}
"""The themes a workspace starts with, until it edits its own."""


@cache
def stopwords(language: str) -> frozenset[str]:
    """Return the stopwords of ``language`` (the stop-words package), empty when it has none."""
    from stop_words import StopWordError, get_stop_words

    try:
        return frozenset(get_stop_words(language))
    except StopWordError:
        return frozenset()


def lemmatiser(language: str | None):
    """Return a function from a word to its lemma in ``language`` (the word itself when unsupported)."""
    if language not in SUPPORTED:
        return lambda word: word
    lemmatize = lemmatizer().lemmatize
    return lambda word: lemmatize(word, language).lower()


def lemmas(text: str, language: str | None) -> list[str]:
    """Return the lemmas of ``text``'s words, in order, lower case."""
    lemma = lemmatiser(language)
    return [lemma(token) for token in _TOKEN.findall(text.lower())]


def padded(words: Sequence[str]) -> str:
    """Return words as the padded lemma text that rules are matched against."""
    return " " + " ".join(words) + " "


def keyword_pattern(keyword: str, language: str) -> str:
    """Return a keyword or phrase as the padded lemma phrase it matches."""
    return padded(lemmas(keyword, language))


def patterns(keywords: Mapping[str, Iterable[str]]) -> list[str]:
    """Return every padded lemma phrase of a rule's keywords (all languages, no duplicates)."""
    found = {keyword_pattern(k, lang) for lang, words in keywords.items() for k in words}
    found.discard("  ")
    return sorted(found)


def themes_of(lemma_text: str, rules: Mapping[str, Iterable[str]]) -> list[str]:
    """Return the themes (of ``rules``: theme → padded patterns) whose patterns occur in a comment."""
    return sorted(theme for theme, pats in rules.items() if any(p in lemma_text for p in pats))


@dataclass(frozen=True)
class Suggestion:
    term: str
    score: float
    """c-TF-IDF of the term in detractors' comments."""
    detractor_mentions: int
    mentions: int
    language: str | None


def suggest(
    comments: Iterable[tuple[Sequence[str], bool, str | None]],
    *,
    covered: Iterable[str] = (),
    min_mentions: int = 3,
    limit: int = 10,
) -> list[Suggestion]:
    """Return terms that set detractors' comments apart, best first (c-TF-IDF, as in BERTopic).

    ``comments`` are (lemmas, from a detractor, language). The two classes are detractors and
    everyone else; a term's weight in a class is tf(t, c) × log(1 + A / f(t)), with tf the term's
    share of the class's words, A the mean number of words per class and f(t) the term's count over
    both. Stopwords, numbers, words under three letters and the lemmas of existing rules are left out.
    """
    skip = {p.strip() for p in covered}
    counts = {True: Counter[str](), False: Counter[str]()}
    languages: dict[str, Counter[str]] = {}
    for words, detractor, language in comments:
        stop = stopwords(language) if language else frozenset()
        seen = {w for w in words if len(w) >= 3 and w.isalpha() and w not in stop and w not in skip}
        counts[detractor].update(seen)
        for word in seen:
            languages.setdefault(word, Counter())[language or ""] += 1
    detractors, others = counts[True], counts[False]
    size = {c: sum(counts[c].values()) for c in counts}
    if not size[True]:
        return []
    average = (size[True] + size[False]) / 2
    scored = []
    for term, in_class in detractors.items():
        total = in_class + others[term]
        if in_class < min_mentions:
            continue
        weight = in_class / size[True] * math.log(1 + average / total)
        language = languages[term].most_common(1)[0][0] or None
        scored.append(Suggestion(term, weight, in_class, total, language))
    scored.sort(key=lambda s: (-s.score, s.term))
    return scored[:limit]

"""simplemma's word lists as compact tries on disk, not Python dicts in memory.

simplemma's default keeps each language's word list as a ``dict``: the five languages told apart
here take about 310 MB of every scoring process. The same lists as MARISA tries (``marisa-trie``,
MIT and BSD-2-Clause) take about 16 MB and give the same lemmas and the same language shares; a
lookup costs a little more. A trie is built once per language from simplemma's own data (seconds of
CPU) and kept in ``cache_dir()``: the image builds them at build time and ``make install`` on a
developer's machine (``closeloop dictionaries``); otherwise the first start does.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from pathlib import Path
from typing import Any

from simplemma import LanguageDetector, Lemmatizer
from simplemma.__metadata__ import __version__ as SIMPLEMMA_VERSION
from simplemma.strategies import DefaultStrategy
from simplemma.strategies.dictionaries import TrieDictionaryFactory
from simplemma.token_sampler import MostCommonTokenSampler, RelaxedMostCommonTokenSampler

log = logging.getLogger(__name__)

CACHE_ENV = "CLOSELOOP_SCORING_TEXT_CACHE"


def cache_dir() -> Path:
    """Where the tries are kept: ``$CLOSELOOP_SCORING_TEXT_CACHE``, else the user's cache directory."""
    if configured := os.environ.get(CACHE_ENV):
        return Path(configured)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("closeloop")) / f"simplemma-{SIMPLEMMA_VERSION}"


class _Tries(TrieDictionaryFactory):
    """simplemma's trie factory, writing each trie whole or not at all (several processes may build
    the same language at once; a reader must never load half a file)."""

    def _write_trie_to_disk(self, lang: str, trie: Any) -> None:
        self._cache_dir.mkdir(parents=True, exist_ok=True)
        partial = self._cache_dir / f"{lang}.dic.{os.getpid()}.partial"
        try:
            trie.save(str(partial))
            os.replace(partial, self._cache_dir / f"{lang}.dic")
        finally:
            partial.unlink(missing_ok=True)


@cache
def strategy() -> DefaultStrategy:
    return DefaultStrategy(dictionary_factory=_Tries(cache_max_size=8, disk_cache_dir=str(cache_dir())))


@cache
def lemmatizer() -> Lemmatizer:
    return Lemmatizer(lemmatization_strategy=strategy())


def language_shares(text: str, languages: tuple[str, ...]) -> list[tuple[str, float]]:
    """The share of ``text``'s words known in each language, highest first and ``unk`` last:
    ``simplemma.langdetect`` over the tries (a tie between the first two is settled by the relaxed
    sampler, as it does)."""
    shares: list[tuple[str, float]] = []
    for detector in _detectors(languages):
        shares = sorted(
            detector.proportion_in_each_language(text).items(), key=lambda ls: (ls[0] == "unk", -ls[1])
        )
        if len(shares) == 1 or shares[0][1] != shares[1][1]:
            return shares
    return shares


@cache
def _detectors(languages: tuple[str, ...]) -> tuple[LanguageDetector, ...]:
    return tuple(
        LanguageDetector(languages, sampler, strategy())
        for sampler in (MostCommonTokenSampler(), RelaxedMostCommonTokenSampler())
    )


def build(languages: tuple[str, ...]) -> None:
    """Build (or load) the trie of each language now."""
    for language in languages:
        lemmatizer().lemmatize("warm", language)

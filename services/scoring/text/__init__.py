"""What customers wrote, read on this machine: no network call, no model download.

- ``language``: which language a comment is in (simplemma's lemma coverage, candidates from
  ``SUPPORTED``), with the response's own locale as the tie-breaker;
- ``sentiment``: a lexicon method per language, −1…1 and a label (English: VADER's lexicon and
  rules; Dutch: closeloop's own lexicon with the same rules); other languages are unscored;
- ``themes``: lemmas (simplemma) and stopwords (stop-words), theme rules per workspace and
  suggested new themes from term statistics (c-TF-IDF of detractors' against everyone else's words).

Licences: simplemma MIT, vaderSentiment MIT, stop-words BSD-3-Clause.
"""

from services.scoring.text.analysis import Analysis, analyse, warm_up

__all__ = ["Analysis", "analyse", "warm_up"]

"""Reading comments on this machine: language, sentiment and themes in English and Dutch."""

from __future__ import annotations

import pytest

from services.scoring.text import analyse
from services.scoring.text.language import detect
from services.scoring.text.themes import DEFAULT_THEMES, lemmas, padded, patterns, suggest, themes_of


@pytest.mark.parametrize(
    "text, language",
    [
        ("The delivery was late and nobody answered my emails", "en"),
        ("De levering was veel te laat en niemand reageerde op mijn mail", "nl"),
        ("Das Paket kam viel zu spät an und niemand hat geantwortet", "de"),
    ],
)
def test_the_language_of_a_comment(text, language):
    assert detect(text) == (language, "high")


def test_a_short_comment_takes_the_responses_language_with_low_confidence():
    assert detect("top", hint="nl") == ("nl", "low")
    assert detect("!!!", hint="en") == ("en", "low")


@pytest.mark.parametrize(
    "text, label",
    [
        ("Great service, the staff were very friendly and helpful!", "positive"),
        ("Terrible. The parcel arrived broken and support was rude.", "negative"),
        ("The order arrived on Tuesday.", "neutral"),
        ("Heel vriendelijke medewerker, ik werd snel en goed geholpen!", "positive"),
        ("De levering was veel te laat en de klantenservice was onvriendelijk.", "negative"),
        ("Het pakket is dinsdag bezorgd.", "neutral"),
        ("Niet goed geholpen, slechte service", "negative"),
    ],
)
def test_sentiment_in_english_and_dutch(text, label):
    found = analyse(text)
    assert found.label == label, found
    assert -1 <= found.sentiment <= 1


def test_dutch_negation_and_contrast():
    assert analyse("Het was niet slecht", hint="nl").sentiment > 0
    assert analyse("Het was niet goed", hint="nl").sentiment < 0
    mixed = analyse("De medewerker was vriendelijk, maar het duurde veel te lang", hint="nl")
    assert mixed.label == "negative", "the clause after 'maar' weighs more"


def test_languages_without_a_lexicon_are_unscored():
    found = analyse("Das Paket kam viel zu spät an und niemand hat geantwortet")
    assert (found.language, found.confidence, found.sentiment, found.label) == ("de", "unscored", None, None)


def test_themes_match_lemmas_so_plurals_and_verb_forms_count():
    rules = {theme: patterns(words) for theme, words in DEFAULT_THEMES.items()}
    nl = padded(lemmas("De leveringen kwamen te laat en de medewerkers waren onvriendelijk", "nl"))
    en = padded(lemmas("Both deliveries were late; I waited on hold for an hour", "en"))
    assert themes_of(nl, rules) == ["delivery", "staff"]
    assert themes_of(en, rules) == ["delivery", "waiting time"]
    assert themes_of(padded(lemmas("Alles prima", "nl")), rules) == []


def test_suggested_themes_are_what_sets_detractors_apart():
    docs = [
        (lemmas("The invoice was wrong again", "en"), True, "en"),
        (lemmas("Wrong invoice, twice", "en"), True, "en"),
        (lemmas("My invoice had errors", "en"), True, "en"),
        (lemmas("Invoice amount was too high", "en"), True, "en"),
        (lemmas("Fast and friendly", "en"), False, "en"),
        (lemmas("Friendly people, fast answer", "en"), False, "en"),
        (lemmas("Fast delivery", "en"), False, "en"),
        (lemmas("The invoice was clear", "en"), False, "en"),
    ]
    found = suggest(docs, min_mentions=3)
    assert found[0].term == "invoice"
    assert (found[0].detractor_mentions, found[0].mentions, found[0].language) == (4, 5, "en")
    assert "fast" not in [s.term for s in found], "a word of promoters is no detractor theme"
    covered = suggest(docs, covered=patterns({"en": ["invoice"]}), min_mentions=3)
    assert "invoice" not in [s.term for s in covered]


COMMENTS = [
    "The delivery was late and nobody answered my emails",
    "Great product, easy to use, I would recommend it to my colleagues",
    "De levering was veel te laat en niemand reageerde op mijn mail",
    "Heel vriendelijke medewerkers, ik werd snel geholpen met mijn bestelling",
    "Das Paket kam viel zu spät an und niemand hat geantwortet",
    "Le colis est arrivé en retard et personne n'a répondu à mes courriels",
    "El paquete llegó tarde y nadie respondió a mis correos",
    "top",
    "ok ok ok",
    "Slecht. Terrible. Schlecht.",
]


@pytest.mark.parametrize("text", COMMENTS)
def test_the_tries_read_a_comment_as_simplemmas_own_word_lists_do(text):
    """What ``dictionaries`` keeps as tries (to spare ~300 MB per process) gives simplemma's own
    language shares and lemmas, computed here with its in-memory dicts."""
    from simplemma import langdetect, lemmatize

    from services.scoring.text.dictionaries import language_shares, lemmatizer
    from services.scoring.text.language import SUPPORTED

    assert language_shares(text.lower(), SUPPORTED) == langdetect(text.lower(), lang=SUPPORTED)
    for language in SUPPORTED:
        for word in text.lower().split():
            assert lemmatizer().lemmatize(word, language) == lemmatize(word, lang=language)

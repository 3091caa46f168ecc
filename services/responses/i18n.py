"""The words the survey pages and answer checks use, in English and Dutch.

Pure data. A language without its own table falls back to English for these interface words;
the survey's own texts follow the survey's locales (``domain.languages.localize``).
"""

from __future__ import annotations

from collections.abc import Mapping

UI_LANGUAGES = ("en", "nl")
RTL_LANGUAGES = frozenset({"ar", "arc", "dv", "fa", "ha", "he", "khw", "ks", "ku", "ps", "sd", "ur", "yi"})

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "required": "(required)",
        "next": "Next",
        "back": "Back",
        "send": "Send",
        "progress": "Question {n} of {total}",
        "check_answers": "Please check the answers marked below.",
        "yes": "Yes",
        "no": "No",
        "stars": "{n} of {max} stars",
        "choose_any": "Choose all that apply.",
        "nps.low": "Not at all likely",
        "nps.high": "Extremely likely",
        "csat.low": "Very dissatisfied",
        "csat.high": "Very satisfied",
        "ces.low": "Strongly disagree",
        "ces.high": "Strongly agree",
        "csat.1": "Very dissatisfied",
        "csat.2": "Dissatisfied",
        "csat.3": "Neutral",
        "csat.4": "Satisfied",
        "csat.5": "Very satisfied",
        "thanks": "Thank you!",
        "thanks.friendly": "Thank you for your feedback!",
        "thanks.formal": "Thank you for taking the time to answer our questions.",
        "thanks.playful": "You're a star — thanks for the feedback!",
        "reward": "Your reward code",
        "next_person": "Start again for the next person",
        "answered.heading": "You already answered — thank you!",
        "answered.text": "We have your response to this survey; there is nothing more to do.",
        "closed.heading": "This survey is closed",
        "closed.text": "Thank you for wanting to answer; this survey no longer takes responses.",
        "expired.heading": "Link expired",
        "expired.text": "This survey link has expired. Thank you for wanting to answer; the survey is "
        "closed now.",
        "invalid.heading": "Link not found",
        "invalid.text": "This survey link is not valid. Please open the link from your invitation exactly "
        "as it was sent.",
        "gone.text": "This survey is no longer available.",
        "busy.heading": "One moment, please",
        "busy.text": "Many responses came from this device just now. Please try again in a minute.",
        "error.heading": "Something went wrong",
        # answer checks
        "err.required": "This question needs an answer.",
        "err.range": "Choose a whole number from {low} to {high}.",
        "err.option": "Choose one of the options.",
        "err.options": "Choose one or more of the options, each once.",
        "err.text": "The answer must be text.",
        "err.too_long": "Your answer is longer than {max} characters; please shorten it.",
        "err.yes_no": "Answer yes (true) or no (false).",
        "err.unknown": "There is no question {id!r} in this survey.",
        "err.hidden": "{id!r} is a hidden field filled from the invitation, not a question to answer.",
        "err.not_asked": "This survey does not ask {id!r} here: nobody could contact you about your answer.",
        "err.link_score": "The score in your link was not saved: it is not one of this question's answers. "
        "Please choose one below.",
        "err.link_no_score": "The score in your link was not saved: this question is not answered with a "
        "score. Please answer it below.",
    },
    "nl": {
        "required": "(verplicht)",
        "next": "Volgende",
        "back": "Terug",
        "send": "Versturen",
        "progress": "Vraag {n} van {total}",
        "check_answers": "Controleer de gemarkeerde antwoorden.",
        "yes": "Ja",
        "no": "Nee",
        "stars": "{n} van {max} sterren",
        "choose_any": "Kies alles wat van toepassing is.",
        "nps.low": "Zeer onwaarschijnlijk",
        "nps.high": "Zeer waarschijnlijk",
        "csat.low": "Zeer ontevreden",
        "csat.high": "Zeer tevreden",
        "ces.low": "Helemaal oneens",
        "ces.high": "Helemaal eens",
        "csat.1": "Zeer ontevreden",
        "csat.2": "Ontevreden",
        "csat.3": "Neutraal",
        "csat.4": "Tevreden",
        "csat.5": "Zeer tevreden",
        "thanks": "Bedankt!",
        "thanks.friendly": "Bedankt voor uw feedback!",
        "thanks.formal": "Hartelijk dank dat u de tijd nam om onze vragen te beantwoorden.",
        "thanks.playful": "Top, bedankt voor je feedback!",
        "reward": "Uw beloningscode",
        "next_person": "Opnieuw beginnen voor de volgende persoon",
        "answered.heading": "U heeft al geantwoord — bedankt!",
        "answered.text": "We hebben uw antwoorden op deze enquête; u hoeft niets meer te doen.",
        "closed.heading": "Deze enquête is gesloten",
        "closed.text": "Bedankt dat u wilde antwoorden; deze enquête neemt geen antwoorden meer aan.",
        "expired.heading": "Link verlopen",
        "expired.text": "Deze enquêtelink is verlopen. Bedankt dat u wilde antwoorden; de enquête is nu "
        "gesloten.",
        "invalid.heading": "Link niet gevonden",
        "invalid.text": "Deze enquêtelink is niet geldig. Open de link uit uw uitnodiging precies zoals "
        "hij is verstuurd.",
        "gone.text": "Deze enquête is niet meer beschikbaar.",
        "busy.heading": "Een ogenblik geduld",
        "busy.text": "Er kwamen zojuist veel antwoorden van dit apparaat. Probeer het over een minuut "
        "opnieuw.",
        "error.heading": "Er ging iets mis",
        "err.required": "Deze vraag heeft een antwoord nodig.",
        "err.range": "Kies een heel getal van {low} tot en met {high}.",
        "err.option": "Kies een van de opties.",
        "err.options": "Kies een of meer van de opties, elk één keer.",
        "err.text": "Het antwoord moet tekst zijn.",
        "err.too_long": "Uw antwoord is langer dan {max} tekens; maak het wat korter.",
        "err.yes_no": "Antwoord ja (true) of nee (false).",
        "err.unknown": "Deze enquête heeft geen vraag {id!r}.",
        "err.hidden": "{id!r} is een verborgen veld uit de uitnodiging, geen vraag om te beantwoorden.",
        "err.not_asked": "Deze enquête vraagt hier geen {id!r}: niemand zou u over uw antwoord kunnen "
        "benaderen.",
        "err.link_score": "De score in uw link is niet opgeslagen: het is geen van de antwoorden op deze "
        "vraag. Kies hieronder een antwoord.",
        "err.link_no_score": "De score in uw link is niet opgeslagen: deze vraag wordt niet met een score "
        "beantwoord. Beantwoord hem hieronder.",
    },
}


def ui_language(locale: str | None) -> str:
    """Return the interface language for ``locale``: its base language when we have it, else English."""
    base = (locale or "en").replace("_", "-").split("-")[0].lower()
    return base if base in STRINGS else "en"


def text_direction(locale: str | None) -> str:
    """Return ``rtl`` for right-to-left languages, else ``ltr``."""
    base = (locale or "en").replace("_", "-").split("-")[0].lower()
    return "rtl" if base in RTL_LANGUAGES else "ltr"


def t(lang: str, key: str, params: Mapping[str, object] | None = None) -> str:
    """Return the interface text ``key`` in ``lang`` (English when missing), formatted with ``params``."""
    text = STRINGS.get(lang, STRINGS["en"]).get(key) or STRINGS["en"][key]
    return text.format(**params) if params else text

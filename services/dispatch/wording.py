"""The built-in words of invitations, in every language the survey pages speak (English and Dutch).

Pure data and lookups. A message is written in one language: the contact's own when the survey
has it (else the survey's first language), and these built-in words follow it; a language without
its own table here gets the English words (a workspace template can say anything in any language).
"""

from __future__ import annotations

LANGUAGES = ("en", "nl")
"""The languages of the built-in texts: those of the survey pages (``services.responses.i18n``)."""

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "greeting": "Hi {name},",
        "greeting.anonymous": "Hi,",
        "question.transactional": "how was your experience with us?",
        "question.relationship": "how are we doing?",
        "question.retention": "did we solve it for you?",
        "question.agent": "how did {agent} do?",
        "question.product": "how was your experience with {product}?",
        "intro.transactional": "Thank you for being in touch with us recently. We'd love to hear how it went.",
        "intro.relationship": "You have been with us for a while now, and we'd love to know how we are doing.",
        "intro.retention": "We recently followed up on your feedback. We'd like to know whether we got it right.",
        "reminder.intro": "Just a reminder:",
        "reminder.subject": "Reminder: {subject}",
        "minute": "It takes less than a minute.",
        "minute.link": "It takes less than a minute:",
        "cta": "Give feedback",
        "cta.retention": "Tell us",
        "button_fallback": "If the button does not work, open this link:",
        "validity": "This link is personal and works for {days} days.",
        "validity.one": "This link is personal and works for 1 day.",
        "unsubscribe.question": "Don't want these surveys?",
        "unsubscribe": "Unsubscribe",
    },
    "nl": {
        "greeting": "Hallo {name},",
        "greeting.anonymous": "Hallo,",
        "question.transactional": "hoe was uw ervaring met ons?",
        "question.relationship": "hoe doen we het?",
        "question.retention": "hebben we het voor u opgelost?",
        "question.agent": "hoe heeft {agent} u geholpen?",
        "question.product": "hoe was uw ervaring met {product}?",
        "intro.transactional": "Bedankt dat u onlangs contact met ons had. We horen graag hoe het ging.",
        "intro.relationship": "U bent al een tijd klant bij ons en we horen graag hoe we het doen.",
        "intro.retention": "We hebben onlangs uw feedback opgevolgd. We willen graag weten of dat goed is gegaan.",
        "reminder.intro": "Een herinnering:",
        "reminder.subject": "Herinnering: {subject}",
        "minute": "Het kost minder dan een minuut.",
        "minute.link": "Het kost minder dan een minuut:",
        "cta": "Geef feedback",
        "cta.retention": "Laat het ons weten",
        "button_fallback": "Werkt de knop niet? Open dan deze link:",
        "validity": "Deze link is persoonlijk en werkt {days} dagen.",
        "validity.one": "Deze link is persoonlijk en werkt 1 dag.",
        "unsubscribe.question": "Wilt u deze enquêtes niet meer ontvangen?",
        "unsubscribe": "Afmelden",
    },
}


def base_language(locale: str | None) -> str | None:
    """Return ``nl-BE`` as ``nl`` (lower case), or None without a locale."""
    base = (locale or "").replace("_", "-").split("-")[0].strip().lower()
    return base or None


def message_language(locale: str | None, survey_languages: tuple[str, ...] | list[str] = ()) -> str:
    """Return the language a message is written in: the contact's when the survey has it (or the survey
    is not known), else the survey's first language, else English."""
    wanted = base_language(locale)
    offered = [lang for lang in (base_language(s) for s in survey_languages) if lang]
    if wanted and (not offered or wanted in offered):
        return wanted
    return offered[0] if offered else (wanted or "en")


def words(language: str | None) -> dict[str, str]:
    """Return the built-in words in ``language``, English where it has none."""
    return WORDS.get(base_language(language) or "en", WORDS["en"])


def validity(language: str | None, days: int) -> str:
    """Return the sentence that says how long the link works: "… works for 30 days."."""
    w = words(language)
    return w["validity.one"] if days == 1 else w["validity"].format(days=days)

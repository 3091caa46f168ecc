"""closeloop's Dutch sentiment lexicon: words of customer feedback and their valence (−4 … +4, the
scale of VADER's English lexicon). Written for this project (Apache-2.0); lemmas and common surface
forms both appear, because a comment is looked up word by word and lemma by lemma."""

from __future__ import annotations

VALENCE: dict[str, float] = {
    # positive
    "goed": 1.9, "prima": 1.6, "fijn": 2.0, "prettig": 1.9, "leuk": 1.8, "mooi": 1.9, "top": 2.6,
    "super": 2.4, "geweldig": 3.1, "fantastisch": 3.2, "uitstekend": 3.1, "perfect": 3.0, "excellent": 3.0,
    "tevreden": 2.0, "blij": 2.4, "dankbaar": 2.2, "bedankt": 1.8, "dank": 1.6, "aanrader": 2.6,
    "aanbevelen": 2.0, "aanraden": 2.0, "vriendelijk": 2.1, "vriendelijke": 2.1, "behulpzaam": 2.2,
    "behulpzame": 2.2, "beleefd": 1.8, "netjes": 1.6, "correct": 1.2, "duidelijk": 1.5, "helder": 1.4,
    "snel": 1.5, "snelle": 1.5, "vlot": 1.6, "vlotte": 1.6, "efficiënt": 1.7, "professioneel": 2.0,
    "deskundig": 1.9, "kundig": 1.8, "betrouwbaar": 2.0, "makkelijk": 1.6, "gemakkelijk": 1.6,
    "eenvoudig": 1.3, "handig": 1.6, "opgelost": 1.7, "oplossen": 1.1, "geholpen": 1.6, "helpen": 1.0,
    "hulp": 0.9, "klantvriendelijk": 2.3, "attent": 1.8, "zorgvuldig": 1.7, "vakkundig": 2.0,
    "lekker": 2.0, "heerlijk": 2.8, "goedkoop": 1.0, "voordelig": 1.5, "compliment": 2.3,
    "complimenten": 2.3, "waardering": 1.9, "tip": 0.5, "positief": 1.9, "soepel": 1.6,
    "probleemloos": 2.0, "gezellig": 2.0, "warm": 1.0, "geduldig": 1.8, "begripvol": 1.9,
    "terugkomen": 1.2, "trouw": 1.6, "loyaal": 1.6, "genieten": 2.2, "ideaal": 2.5,
    # negative
    "slecht": -2.5, "slechte": -2.5, "slechter": -2.3, "slechtst": -3.0, "matig": -1.1, "teleurgesteld": -2.3,
    "teleurstellend": -2.3, "teleurstelling": -2.3, "ontevreden": -2.2, "boos": -2.5, "kwaad": -2.5,
    "woedend": -3.2, "geïrriteerd": -2.0, "irritant": -2.1, "frustrerend": -2.3, "frustratie": -2.1,
    "traag": -1.8, "trage": -1.8, "langzaam": -1.4, "laat": -1.0, "vertraging": -1.7, "vertraagd": -1.6,
    "wachten": -0.8, "wachttijd": -1.0, "onbereikbaar": -2.2, "onvriendelijk": -2.4, "onbeleefd": -2.3,
    "grof": -2.2, "brutaal": -2.0, "arrogant": -2.3, "onbeschoft": -2.6, "onkundig": -2.1,
    "incompetent": -2.6, "onduidelijk": -1.7, "ingewikkeld": -1.4, "omslachtig": -1.6, "lastig": -1.4,
    "moeilijk": -1.2, "kapot": -2.0, "defect": -2.0, "beschadigd": -2.0, "stuk": -1.0, "fout": -1.8,
    "fouten": -1.8, "verkeerd": -1.8, "verkeerde": -1.8, "probleem": -1.5, "problemen": -1.6,
    "klacht": -1.8, "klachten": -1.8, "klagen": -1.6, "duur": -1.3, "prijzig": -1.1, "oplichting": -3.3,
    "oplichters": -3.3, "schandalig": -3.1, "belachelijk": -2.7, "waardeloos": -3.1, "rampzalig": -3.2,
    "ramp": -2.9, "drama": -2.5, "verschrikkelijk": -3.0, "vreselijk": -3.0, "afschuwelijk": -3.1,
    "nooit": -0.6, "helaas": -1.2, "jammer": -1.2, "spijtig": -1.3, "zonde": -1.3, "nalatig": -2.1,
    "onbetrouwbaar": -2.4, "kwijt": -1.5, "zoek": -0.8, "vergeten": -1.4, "genegeerd": -2.2,
    "negeren": -1.8, "afgescheept": -2.6, "onacceptabel": -2.8, "opzeggen": -1.6, "vertrekken": -0.9,
    "overstappen": -1.2, "annuleren": -1.0, "terugsturen": -0.8, "retour": -0.4, "storing": -1.8,
    "haperen": -1.4, "hapert": -1.4, "crasht": -2.0, "werkt_niet": -2.2, "negatief": -1.9,
    "rommel": -2.3, "troep": -2.4, "zooi": -2.4, "chaos": -2.2, "chaotisch": -2.2, "rommelig": -1.6,
}  # fmt: skip

BOOSTERS: dict[str, float] = {
    "heel": 0.293, "erg": 0.293, "veel": 0.293, "zeer": 0.293, "echt": 0.2, "ontzettend": 0.35, "enorm": 0.35,
    "super": 0.3, "uiterst": 0.35, "bijzonder": 0.25, "extreem": 0.35, "hartstikke": 0.3, "best": -0.15,
    "redelijk": -0.2, "vrij": -0.15, "nogal": -0.1, "beetje": -0.25, "wat": -0.1, "iets": -0.15,
}  # fmt: skip

NEGATIONS = frozenset({"niet", "geen", "nooit", "niks", "niets", "nergens", "allerminst", "geenszins"})

PHRASES: dict[tuple[str, ...], float] = {
    ("te", "laat"): -2.0, ("te", "duur"): -2.0, ("te", "lang"): -1.8, ("te", "traag"): -2.2, ("duurde", "lang"): -1.5,
    ("niet", "bereikbaar"): -2.2, ("werkt", "niet"): -2.2, ("geen", "reactie"): -2.0,
    ("geen", "antwoord"): -2.0, ("nooit", "meer"): -2.5, ("van", "harte"): 1.5, ("top", "service"): 2.8,
}  # fmt: skip
"""Word pairs read as one (their words are not scored on their own)."""

CONTRAST = frozenset({"maar", "echter", "alleen"})

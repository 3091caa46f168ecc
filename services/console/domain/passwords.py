"""The password rules (NIST SP 800-63B-4, section 3.1.1.2): length, not composition.

- At least ``min_length`` characters (15 by default: the console's passwords are a single factor),
  at most 256; every printable character counts, spaces and emoji included, after Unicode NFKC
  normalisation (so that a password typed on another keyboard still matches).
- No composition rules (no "one digit, one symbol"), no expiry.
- Refused: a commonly used password (``data/common-passwords.txt``) on its own or with digits and
  symbols around it, one character or a short run repeated (``aaaaaaaaaaaaaaa``, ``abcabcabc…``), a
  keyboard or alphabet sequence, and context-specific words (the product's name, the person's email
  address or its local part, the workspace's name).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from importlib import resources

MAX_LENGTH = 256
_AROUND = re.compile(r"^[\W\d_]*(.*?)[\W\d_]*$", re.S)
_SEQUENCES = (
    "abcdefghijklmnopqrstuvwxyz",
    "0123456789" * 4,
    "qwertyuiopasdfghjklzxcvbnm",
    "qwertzuiopasdfghjklyxcvbnm",
    "azertyuiopqsdfghjklmwxcvbn",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
)
PRODUCT_WORDS = ("closeloop", "close loop")


@cache
def common_passwords() -> frozenset[str]:
    """Return the shipped list of common passwords (lower-cased)."""
    text = resources.files("services.console").joinpath("data/common-passwords.txt").read_text("utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def normalise(password: str) -> str:
    """Return the password as it is hashed and compared: Unicode NFKC."""
    return unicodedata.normalize("NFKC", password)


def _period(text: str) -> str:
    """Return the shortest unit ``text`` repeats (``abcabca`` → ``abc``); ``text`` itself when it does not."""
    for size in range(1, len(text) // 2 + 1):
        unit = text[:size]
        if (unit * (len(text) // size + 1)).startswith(text):
            return unit
    return text


def _repeats(text: str) -> bool:
    """Whether ``text`` is a unit of up to 4 characters repeated (``aaaa``, ``abab``, ``1231231``)."""
    return len(_period(text)) <= 4 < len(text)


def _sequential(text: str) -> bool:
    """Whether ``text`` runs along the alphabet, the digits or a keyboard row, either way."""
    if len(text) < 4:
        return False
    return any(text in seq or text in seq[::-1] for seq in _SEQUENCES)


def problems(password: str, *, min_length: int, context: tuple[str, ...] = ()) -> list[str]:
    """Return why ``password`` is refused, in words for the person choosing it; empty when it is fine.

    ``context`` holds words this person's password must not be: their email address, their name, the
    workspace's name.
    """
    text = normalise(password)
    if len(text) < min_length:
        return [f"Use at least {min_length} characters (a few unrelated words make a good password)."]
    if len(text) > MAX_LENGTH:
        return [f"Use at most {MAX_LENGTH} characters."]
    lowered = text.casefold()
    core = _AROUND.match(lowered).group(1) or lowered  # type: ignore[union-attr]
    squeezed = re.sub(r"\s+", "", lowered)
    common = common_passwords()
    if any(t in common or _period(t) in common for t in (lowered, core, squeezed)):
        return ["This password is one of the most commonly used; choose one nobody would guess."]
    if _repeats(squeezed) or _repeats(core) or _sequential(squeezed) or _sequential(core):
        return ["Avoid repeated characters and sequences such as 'aaaa…' or '1234…'; choose something else."]
    words = {w.casefold() for w in (*context, *PRODUCT_WORDS) if len(w) >= 4}
    for word in list(words):
        if "@" in word:
            words.add(word.split("@", 1)[0])
    if any(
        core == w or squeezed == w.replace(" ", "") or _repeats_word(core, w) for w in words if len(w) >= 4
    ):
        return ["Do not use your name, your email address or the product's name as your password."]
    return []


def _repeats_word(text: str, word: str) -> bool:
    """Whether ``text`` is ``word`` said again and again (``adaadaada…``)."""
    return bool(word) and len(text) > len(word) and (word * (len(text) // len(word) + 1)).startswith(text)

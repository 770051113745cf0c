"""Passwords: the policy (NIST SP 800-63B, OWASP ASVS 5) and how they are kept (argon2id with the pepper).

No composition rules and no expiry; every Unicode character is allowed. A password is refused when it
is too short or too long, among the most common passwords (zxcvbn's list of 30,000), guessed within
a million tries by zxcvbn's estimate (a repetition, a sequence or a keyboard row, a common word with a
year or a digit, the service's own name: what NIST SP 800-63B's blocklist is for), or when it contains
the person's identity number, date of birth or name. The message says why, in words a citizen
understands.
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections.abc import Callable, Container, Sequence
from datetime import date
from typing import Protocol

from minid.domain.errors import DomainError, FieldError
from minid.domain.population import Person
from minid.values import Value

MIN_LENGTH = 8
RECOMMENDED_LENGTH = 15
MAX_LENGTH = 256
_SHORTEST_NAME_PART = 3  # a shorter name alone ("Li", "Bø") would refuse too many good passwords
# Guesses a password must stand, by zxcvbn's estimate (its score 2). Guessing online is what a password
# here must stand: three wrong ones lock the account, and each client and person is limited; a million
# is far beyond that, and refuses what is tried first ("Passord123", "Sommer2024" stands).
MIN_GUESSES = 1e6
# Words of the service itself, which a guesser tries with the person's own.
SERVICE_WORDS = ("minid", "idporten", "id-porten", "passord", "password", "norge")

# A guess estimate: how many guesses `password` would take, knowing the words `context`.
GuessEstimate = Callable[[str, Sequence[str]], float]


class WeakPassword(DomainError):
    detail = "Choose another password."


class PasswordReason:
    TOO_SHORT = (
        f"Use at least {MIN_LENGTH} characters. Longer is stronger: {RECOMMENDED_LENGTH} or more, "
        "for example a few words that do not belong together, is better."
    )
    TOO_LONG = f"Use at most {MAX_LENGTH} characters."
    COMMON = "This is one of the most common passwords, which are tried first by anyone guessing. Choose another."
    GUESSABLE = (
        "This password would be guessed quickly: a word with a number, a repetition, a sequence or a "
        "keyboard pattern is among the first things tried. A few words that do not belong together are better."
    )
    IDENTITY_NUMBER = "Do not use your national identity number or D-number in your password."
    BIRTH_DATE = "Do not use your date of birth in your password."
    NAME = "Do not use your name in your password."


def normalize(password: str) -> str:
    """NFKC, as NIST asks, so that the same password typed on another device is the same password."""
    return unicodedata.normalize("NFKC", password)


class PersonalFacts(Value, frozen=True):
    """What a password must not contain. The identity number is not kept: `is_identity_number`
    tells whether an 11-digit string is it (by its keyed hash)."""

    __hidden__ = frozenset({"birth_date", "names"})  # left out of repr

    birth_date: date | None  # None, as the names empty: a person the population register does not have
    names: tuple[str, ...]
    is_identity_number: Callable[[str], bool]


def personal_facts(person: Person | None, is_identity_number: Callable[[str], bool]) -> PersonalFacts:
    """The person's facts; of one the register does not have, the identity number alone (which the
    session, or the keyed hash, knows without it)."""
    if person is None:
        return PersonalFacts(None, (), is_identity_number)
    return PersonalFacts(person.birth_date, (person.given_name, person.family_name), is_identity_number)


def _birth_date_forms(day: date | None) -> set[str]:
    if day is None:
        return set()
    y = f"{day.year:04d}"
    padded = (f"{day.day:02d}", f"{day.month:02d}")
    d, m = padded
    forms = {f"{d}{m}{y}", f"{d}{m}{y[2:]}", f"{y}{m}{d}", f"{y[2:]}{m}{d}"}  # run together: padded only
    for d, m in (padded, (str(day.day), str(day.month))):  # with separators: 05.01 and 5.1
        forms |= {f"{d}.{m}.{y}", f"{d}.{m}.{y[2:]}", f"{y}-{m}-{d}", f"{d}/{m}/{y}", f"{d}-{m}-{y}"}
    return forms


class PasswordPolicy:
    def __init__(self, common_passwords: Container[str], guesses: GuessEstimate | None = None) -> None:
        self._common = common_passwords
        self._guesses = guesses

    def check(self, password: str, facts: PersonalFacts | None = None, *, field: str = "password") -> None:
        """Raise WeakPassword, naming every reason against the request's `field`, unless the password may be
        used. Without facts, only what holds for anyone (length, common passwords) is checked."""
        _refused(self.reasons(password, facts), field)

    def check_length(self, password: str, *, field: str = "password") -> None:
        """Raise WeakPassword if the password is too short or too long: cheap, for a request to judge before
        anything else (the whole check, with its guess estimate, comes after)."""
        _refused(_lengths(normalize(password), password), field)

    def reasons(self, password: str, facts: PersonalFacts | None = None) -> list[str]:
        text = normalize(password)
        reasons = _lengths(text, password)
        if PasswordReason.TOO_LONG in reasons:  # judged no further: the checks below grow faster than its length
            return reasons
        folded = text.casefold()
        if folded in self._common or folded.strip() in self._common:
            reasons.append(PasswordReason.COMMON)
        if facts is not None:
            reasons += self._personal(text, folded, facts)
        if not reasons and self._guesses is not None:
            names = _name_parts(facts) if facts else set()
            if self._guesses(text, (*SERVICE_WORDS, *names)) < MIN_GUESSES:
                reasons.append(PasswordReason.GUESSABLE)
        return reasons

    def _personal(self, text: str, folded: str, facts: PersonalFacts) -> list[str]:
        reasons = []
        text = ascii_digits(text)  # an identity number or a birth date in any script's digits is the same
        digits = re.sub(r"\D", "", text)
        if any(facts.is_identity_number(digits[i : i + 11]) for i in range(max(0, len(digits) - 10))):
            reasons.append(PasswordReason.IDENTITY_NUMBER)
        if any(form in text or form in digits for form in _birth_date_forms(facts.birth_date)):
            reasons.append(PasswordReason.BIRTH_DATE)
        parts = _name_parts(facts)
        if any(len(word) >= _SHORTEST_NAME_PART and _made_of(word, parts) for word in _words(folded)):
            reasons.append(PasswordReason.NAME)
        return reasons


def _lengths(text: str, password: str) -> list[str]:
    """Too short, too long, or neither: `text` as normalized (NFKC), the `password` as typed."""
    reasons = []
    # counted as typed (NFC): NFKC makes one character of some (the ligature ﷺ) eighteen
    if min(len(text), len(unicodedata.normalize("NFC", password))) < MIN_LENGTH:
        reasons.append(PasswordReason.TOO_SHORT)
    if len(text) > MAX_LENGTH:
        reasons.append(PasswordReason.TOO_LONG)
    return reasons


def _refused(reasons: list[str], field: str) -> None:
    if reasons:
        raise WeakPassword(reasons[0], errors=tuple(FieldError(field, r) for r in reasons))


def _made_of(word: str, parts: set[str]) -> bool:
    """Whether the word is one of the name parts, or several run together ("karinordmann"). A word that
    only holds one ("stor" holds "Tor", "vann" holds "Ann") is not the name: refused, a person named Tor
    could not use "en stor elg i skogen". (Names run into other words are left to the guess estimate,
    which is given the names.)"""
    ends = {0}  # where a run of name parts from the word's start can end
    for end in range(1, len(word) + 1):
        if any(word[start:end] in parts for start in ends if start < end):
            ends.add(end)
    return len(word) in ends  # (a word is never empty)


def _words(text: str) -> list[str]:
    """The runs of letters: a name's parts ("Nordmann-Øye" is two, "O'Brien" too, with any apostrophe)
    and a password's words alike, so that one can be found as the other."""
    return re.findall(r"[^\W\d_]+", text)


def _name_parts(facts: PersonalFacts) -> set[str]:
    """The person's names, part by part, normalized and case-folded, each also as it is typed without
    its letters æ, ø, å or accents ("Ødegård": "odegard", "oedegaard"). A part shorter than three letters
    ("Li", "O") counts only run together with another ("liwei", "obrien")."""
    return {spelt for name in facts.names for part in _words(normalize(name).casefold()) for spelt in _spellings(part)}


# How a letter is written where it cannot be typed: the Norwegian (and German, Swedish) way; any other
# accented letter loses its accent ("é": "e"). No library spells these as Norwegians do (unidecode makes
# "ø" "o" alone, and "å" "a" alone).
_SPELT = {"æ": ("ae",), "ø": ("o", "oe"), "å": ("a", "aa"), "ä": ("a", "ae"), "ö": ("o", "oe"), "ü": ("u", "ue")}
_MOST_SPELLINGS = 64  # a name with more such letters is spelt the first way alone


def _spellings(part: str) -> set[str]:
    options = [_SPELT.get(c) or (_unaccented(c),) for c in part]
    if math.prod(len(choices) for choices in options) > _MOST_SPELLINGS:
        return {part, "".join(choices[0] for choices in options)}
    return {part, *("".join(letters) for letters in itertools.product(*options))}


def _unaccented(letter: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", letter) if not unicodedata.combining(c)) or letter


def ascii_digits(text: str) -> str:
    """Every decimal digit as its ASCII digit: NFKC makes full-width digits ASCII, but leaves the
    Arabic-Indic, Devanagari and other scripts' digits as they are."""
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text)


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, stored: str, password: str) -> bool:
        """True when the password is the stored one; the same work whatever the answer."""
        ...

    def needs_rehash(self, stored: str) -> bool: ...

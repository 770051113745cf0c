"""Norwegian identity numbers: fødselsnummer (national identity number) and D-number.

Written here rather than taken from a library: no package on PyPI handles the check-digit rule for
numbers issued from 1 January 2032 or the synthetic test numbers of the test registers today
(python-stdnum's `no.fodselsnummer` knows only the classic first check digit and accepts H-numbers).
The tests compare this module with python-stdnum wherever the two rules overlap.

An identity number is DDMMYY III K1 K2:
- DDMMYY is the date of birth; a D-number adds 4 to the first digit (day + 40).
- Test registers (Skatteetaten's Tenor) issue synthetic numbers with month + 80; they identify
  nobody real and are accepted only where the stage allows them.
- H-numbers (month + 40) and FH-numbers (first digit 8 or 9) are help numbers of the health
  sector, not identity numbers: refused.
- III is the individual number; with YY it gives the century, and until 2032 its last digit
  gives the gender (odd: male).
- K1: with S the weighted sum of the first nine digits (weights 3 7 6 1 8 9 4 5 2), the classic
  rule is (S + K1) mod 11 = 0. Numbers issued from 2032 may have (S + K1) mod 11 of 0, 1, 2 or 3.
- K2 follows from the first ten digits as they are, the actual K1 included
  (weights 5 4 3 2 7 6 5 4 3 2; (S2 + K2) mod 11 = 0).

From 2032 the number no longer carries gender, and the date digits are no longer a reliable
birth date: the population register's own fields are. So a number under the 2032 rule gives
neither, and a classic number gives both. Even for classic D-numbers the register is
authoritative, since a D-number may carry its registration date when the birth date was full.

A number issued from 2032 whose remainder is 0 looks like a classic one, but its individual number
no longer gives the century (Skatteetaten hands them out from 999 down, for any birth year). So,
from 2032, one that no classic number could be (no century for its year and individual number, no
such date in that century, a birth date in the future) is taken as a number under the 2032 rule, not
refused; before then, it is refused (no number was issued so: a typing error). One that a classic
number could be is read as one: its birth date and gender may then be wrong, and nothing but the
tests reads them.
"""

from __future__ import annotations

import calendar
from datetime import date
from enum import StrEnum

from minid.domain.errors import FieldError, InvalidIdentityNumber
from minid.values import Value

LENGTH = 11
_WEIGHTS_K1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_WEIGHTS_K2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
_CLASSIC_REMAINDER = 0
_REMAINDERS_FROM_2032 = frozenset({0, 1, 2, 3})
D_NUMBER_DAY_OFFSET = 40
H_NUMBER_MONTH_OFFSET = 40
SYNTHETIC_MONTH_OFFSET = 80
_FH_NUMBER_FIRST_DIGITS = frozenset("89")
_LEAP_YEAR = 2000  # a leap year, to check a day and month whose century is not known
RULE_2032_FROM = date(2032, 1, 1)  # numbers issued from this day are under the 2032 rule (remainder 0 to 3)


class IdentityNumberKind(StrEnum):
    FODSELSNUMMER = "fnr"
    D_NUMBER = "dnr"


class CheckDigitRule(StrEnum):
    CLASSIC = "classic"
    FROM_2032 = "2032"


class Gender(StrEnum):
    FEMALE = "female"
    MALE = "male"


class InvalidReason(StrEnum):
    """Why a string is not an identity number; the values are the messages a citizen sees."""

    LENGTH = "An identity number has 11 digits."
    NOT_DIGITS = "An identity number has only digits."
    CHECK_DIGITS = "The identity number has a typing error: its check digits do not match."
    HELP_NUMBER = "H-numbers and FH-numbers cannot be used; use your fødselsnummer or D-number."
    SYNTHETIC = "Synthetic test numbers cannot be used here."
    DATE = "The first six digits of an identity number are a date, and these are not."
    FUTURE = "The identity number holds a birth date in the future."
    CENTURY = "No identity number is issued with this combination of birth year and individual number."


class IdentityNumber(Value, frozen=True):
    """A valid fødselsnummer or D-number.

    Its text representations are masked so that it cannot reach a log line by accident;
    `value` gives the digits where they are really needed.
    """

    __hidden__ = frozenset({"value", "birth_date", "gender"})  # left out of repr

    value: str
    kind: IdentityNumberKind
    rule: CheckDigitRule
    synthetic: bool
    birth_date: date | None
    gender: Gender | None

    def __str__(self) -> str:
        return f"{self.kind.value}:***********"


def _invalid(reason: InvalidReason) -> InvalidIdentityNumber:
    return InvalidIdentityNumber(errors=(FieldError("identity_number", reason.value),))


def _weighted_sum(digits: str, weights: tuple[int, ...]) -> int:
    return sum(w * int(d) for w, d in zip(weights, digits, strict=False))


def _century(individual: int, year: int) -> int | None:
    """The century of a classic number's birth year, from its individual number (Skatteetaten)."""
    if individual < 500:
        return 1900
    if individual < 750 and year >= 54:
        return 1800
    if year < 40:
        return 2000
    if individual >= 900:
        return 1900
    return None


def parse_identity_number(raw: str, *, allow_synthetic: bool, today: date) -> IdentityNumber:
    """Validate `raw` (11 digits, surrounding whitespace ignored) or raise InvalidIdentityNumber."""
    text = raw.strip()
    if not (text.isascii() and text.isdigit()):
        raise _invalid(InvalidReason.NOT_DIGITS if text else InvalidReason.LENGTH)
    if len(text) != LENGTH:
        raise _invalid(InvalidReason.LENGTH)
    rule = _check_digit_rule(text)
    kind, day, month, synthetic = _date_digits(text, allow_synthetic=allow_synthetic)
    if rule is CheckDigitRule.FROM_2032:
        return IdentityNumber(text, kind, rule, synthetic, birth_date=None, gender=None)

    try:
        birth_date = _classic_birth_date(text, day, month, today)
    except InvalidIdentityNumber:
        if today >= RULE_2032_FROM:  # no classic number: one issued under the 2032 rule, its remainder 0
            return IdentityNumber(text, kind, CheckDigitRule.FROM_2032, synthetic, birth_date=None, gender=None)
        raise
    gender = Gender.MALE if int(text[8]) % 2 else Gender.FEMALE
    return IdentityNumber(text, kind, rule, synthetic, birth_date=birth_date, gender=gender)


def _classic_birth_date(text: str, day: int, month: int, today: date) -> date:
    """The birth date a classic number gives, or why no classic number is this one."""
    year = int(text[4:6])
    century = _century(int(text[6:9]), year)
    if century is None:
        raise _invalid(InvalidReason.CENTURY)
    try:
        birth_date = date(century + year, month, day)
    except ValueError:  # 29 February in a year that is not a leap year
        raise _invalid(InvalidReason.DATE) from None
    if birth_date > today:
        raise _invalid(InvalidReason.FUTURE)
    return birth_date


def _check_digit_rule(text: str) -> CheckDigitRule:
    remainder = (_weighted_sum(text[:9], _WEIGHTS_K1) + int(text[9])) % 11
    second_ok = (_weighted_sum(text[:10], _WEIGHTS_K2) + int(text[10])) % 11 == 0
    if remainder not in _REMAINDERS_FROM_2032 or not second_ok:
        raise _invalid(InvalidReason.CHECK_DIGITS)
    return CheckDigitRule.CLASSIC if remainder == _CLASSIC_REMAINDER else CheckDigitRule.FROM_2032


def _date_digits(text: str, *, allow_synthetic: bool) -> tuple[IdentityNumberKind, int, int, bool]:
    """The kind, day, month and synthetic flag the first four digits give, or why they give none."""
    if text[0] in _FH_NUMBER_FIRST_DIGITS:
        raise _invalid(InvalidReason.HELP_NUMBER)
    day, month = int(text[0:2]), int(text[2:4])
    kind = IdentityNumberKind.FODSELSNUMMER
    if day > D_NUMBER_DAY_OFFSET:
        kind, day = IdentityNumberKind.D_NUMBER, day - D_NUMBER_DAY_OFFSET
    synthetic = month > SYNTHETIC_MONTH_OFFSET
    if synthetic:
        if not allow_synthetic:
            raise _invalid(InvalidReason.SYNTHETIC)
        month -= SYNTHETIC_MONTH_OFFSET
    elif H_NUMBER_MONTH_OFFSET < month <= H_NUMBER_MONTH_OFFSET + 12:
        raise _invalid(InvalidReason.HELP_NUMBER)
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(_LEAP_YEAR, month)[1]):
        raise _invalid(InvalidReason.DATE)
    return kind, day, month, synthetic


def compose_identity_number(
    date_digits: date,
    individual: int,
    *,
    kind: IdentityNumberKind = IdentityNumberKind.FODSELSNUMMER,
    synthetic: bool = False,
    remainder: int = _CLASSIC_REMAINDER,
) -> str | None:
    """The number with these parts, or None where no check digits make one.

    `remainder` is (S + K1) mod 11: 0 for the classic rule, 0 to 3 for numbers issued from 2032.
    Some individual numbers have no valid check digits (one would be 10); they are never issued.
    """
    if remainder not in _REMAINDERS_FROM_2032 or not 0 <= individual <= 999:
        raise ValueError("remainder must be 0 to 3 and individual 0 to 999")
    day = date_digits.day + (D_NUMBER_DAY_OFFSET if kind is IdentityNumberKind.D_NUMBER else 0)
    month = date_digits.month + (SYNTHETIC_MONTH_OFFSET if synthetic else 0)
    nine = f"{day:02d}{month:02d}{date_digits.year % 100:02d}{individual:03d}"
    k1 = (remainder - _weighted_sum(nine, _WEIGHTS_K1)) % 11
    if k1 == 10:
        return None
    k2 = -_weighted_sum(f"{nine}{k1}", _WEIGHTS_K2) % 11
    if k2 == 10:
        return None
    return f"{nine}{k1}{k2}"


def individual_numbers_for(year: int) -> range:
    """The individual numbers issued for births in `year` under the classic rule.

    Leaves out 900-999, held in reserve for births 1940-1999 (valid, but not yet issued).
    """
    if 1854 <= year <= 1899:
        return range(500, 750)
    if 1900 <= year <= 1999:
        return range(0, 500)
    if 2000 <= year <= 2039:
        return range(500, 1000)
    raise ValueError(f"no classic individual numbers for {year}")

"""The password policy and how passwords are kept."""

from __future__ import annotations

from datetime import date

import pytest
from argon2 import PasswordHasher, Type
from hypothesis import given, settings
from hypothesis import strategies as st

from minid.adapters.passwords import Argon2PasswordHasher, CommonPasswords, zxcvbn_guesses
from minid.domain.keys import Keyer, Pepper
from minid.domain.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    PasswordPolicy,
    PasswordReason,
    PersonalFacts,
    WeakPassword,
    personal_facts,
)

POLICY = PasswordPolicy(CommonPasswords())
NUMBER = "15108695088"
FACTS = PersonalFacts(date(1986, 10, 15), ("Kari Marie", "Nordmann-Øye"), lambda digits: digits == NUMBER)


def reasons(password: str, facts: PersonalFacts | None = FACTS) -> list[str]:
    return POLICY.reasons(password, facts)


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("a" * (MIN_LENGTH - 1) + "", [PasswordReason.TOO_SHORT]),
        ("tre ord", [PasswordReason.TOO_SHORT]),
        ("x" * (MAX_LENGTH + 1), [PasswordReason.TOO_LONG]),
        # judged no further: its name's check grows faster than its length (16 KiB of it: many seconds)
        ("kari" * 4000, [PasswordReason.TOO_LONG]),
        ("password", [PasswordReason.COMMON]),
        ("PassWord", [PasswordReason.COMMON]),
        ("iloveyou", [PasswordReason.COMMON]),
        # the number begins with the date of birth, so both are said
        (f"min {NUMBER}!", [PasswordReason.IDENTITY_NUMBER, PasswordReason.BIRTH_DATE]),
        ("151086 95088 er meg", [PasswordReason.IDENTITY_NUMBER, PasswordReason.BIRTH_DATE]),
        ("bursdag 15.10.1986", [PasswordReason.BIRTH_DATE]),
        ("kode151086kode", [PasswordReason.BIRTH_DATE]),
        # in another script's digits (NFKC leaves Arabic-Indic and Devanagari ones as they are)
        ("min ١٥١٠٨٦٩٥٠٨٨!", [PasswordReason.IDENTITY_NUMBER, PasswordReason.BIRTH_DATE]),
        ("bursdag १५.१०.१९८६", [PasswordReason.BIRTH_DATE]),
        ("1986-10-15 var en fin dag", [PasswordReason.BIRTH_DATE]),
        ("KARI elsker fjellet", [PasswordReason.NAME]),
        ("hei marie, god tur", [PasswordReason.NAME]),
        ("øye for øye og tann", [PasswordReason.NAME]),
        ("nordmann", [PasswordReason.NAME]),
    ],
)
def test_each_reason(password: str, expected: list[str]) -> None:
    assert reasons(password) == expected


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "alllowercaseisfine",
        "tre ord holder",
        "Ærlig talt, ørret i åa",
        "🔑🌲🌊🏔🦌🌅🐟🌙",
        "ab" * (MAX_LENGTH // 2),
    ],
)
def test_no_composition_rules(password: str) -> None:
    assert reasons(password) == []


def test_every_reason_is_told_at_once() -> None:
    with pytest.raises(WeakPassword) as refused:
        POLICY.check("kari", FACTS)
    assert [e.message for e in refused.value.errors] == [PasswordReason.TOO_SHORT, PasswordReason.NAME]
    assert all(e.field == "password" for e in refused.value.errors)


def test_without_facts_only_what_holds_for_anyone_is_checked() -> None:
    assert reasons("KARI elsker fjellet", None) == []
    assert reasons("password", None) == [PasswordReason.COMMON]


def test_unicode_is_counted_as_typed() -> None:
    """Each character counts once, as NIST has it: å as one code point or as a and a ring is one; a
    ligature that NFKC makes many characters of is one (ﷺ is eighteen after NFKC)."""
    composed, decomposed = "\u00e5" * 8, "a\u030a" * 8
    assert reasons(composed) == reasons(decomposed) == []
    assert reasons("ﬁ" * 4) == [PasswordReason.TOO_SHORT]
    assert reasons("\ufdfa") == reasons("\u3300\u3301") == [PasswordReason.TOO_SHORT]


def test_short_name_parts_are_not_held_against_the_password() -> None:
    facts = PersonalFacts(date(1990, 1, 1), ("Li", "Bø"), lambda digits: False)
    assert POLICY.reasons("libøker og mer", facts) == []


@pytest.fixture(scope="module")
def hasher() -> Argon2PasswordHasher:
    return Argon2PasswordHasher(Keyer(Pepper(b"p" * 32)))


def test_passwords_are_kept_with_argon2id_at_the_owasp_parameters(hasher: Argon2PasswordHasher) -> None:
    stored = hasher.hash("correct horse battery staple")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert hasher.verify(stored, "correct horse battery staple")
    assert not hasher.verify(stored, "correct horse battery stapler")
    assert not hasher.needs_rehash(stored)
    assert not hasher.verify("not a hash", "x")


def test_the_pepper_is_part_of_the_hash(hasher: Argon2PasswordHasher) -> None:
    stored = hasher.hash("correct horse battery staple")
    other = Argon2PasswordHasher(Keyer(Pepper(b"q" * 32)))
    assert not other.verify(stored, "correct horse battery staple")


def test_the_same_password_in_another_unicode_form_verifies(hasher: Argon2PasswordHasher) -> None:
    assert hasher.verify(hasher.hash("\u00e5pen d\u00f8r"), "a\u030apen d\u00f8r")


@settings(max_examples=30, deadline=None)
@given(st.text(min_size=MIN_LENGTH, max_size=40).filter(lambda s: len(s.strip()) >= MIN_LENGTH))
def test_any_unicode_is_allowed(password: str) -> None:
    assert PasswordReason.TOO_SHORT not in POLICY.reasons(password.strip() + "x" * MIN_LENGTH)


GUESSING = PasswordPolicy(CommonPasswords(), zxcvbn_guesses)


@pytest.mark.parametrize(
    "password",
    ["Aaaaaaaa", "abcdefgh", "zxcvbnm,./", "Passord123", "Passw0rd!", "Hemmelig1", "minid2024", "a" * 200, "ab" * 40],
)
def test_what_is_guessed_first_is_refused(password: str) -> None:
    """Not on the list of common passwords, but among the first million guesses: a repetition, a
    sequence, a keyboard row, a common word with a digit or a year, the service's own name."""
    assert GUESSING.reasons(password, FACTS) == [PasswordReason.GUESSABLE]


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "tre ord holder",
        "Ærlig talt, ørret i åa",
        "🔑🌲🌊🏔🦌🌅🐟🌙",
        "ny frase i dag",
        "sommerfugl i vinterland",
        "a reset passphrase of mine",
        "et nytt langt passord",
        "x7#Kq9!vLm2$Rt8@Wz4&Np6*Hs1^Bd3%",  # random, longer than what the estimate reads
    ],
)
def test_passphrases_and_random_passwords_stand(password: str) -> None:
    assert GUESSING.reasons(password, FACTS) == []


def test_a_name_with_a_year_is_refused_as_the_name() -> None:
    assert GUESSING.reasons("Nordmann2024", FACTS) == [PasswordReason.NAME]


@pytest.mark.parametrize("password", ["KariNordmann!!", "kari-nordmann 99", "nordmannkari og sol"])
def test_names_run_together_are_refused_as_the_name(password: str) -> None:
    assert POLICY.reasons(password, FACTS) == [PasswordReason.NAME]


@pytest.mark.parametrize(
    "password", ["oyvind.odegard", "OyvindOdegaard!", "oeyvind odegaard 2024", "OEYVIND-odegard", "hei renee"]
)
def test_names_are_found_as_they_are_typed_without_their_letters(password: str) -> None:
    """Ø, å and æ typed as o or oe, a or aa, ae (a foreign keyboard, an e-mail address): as a guesser
    tries them too. Other accents are left off."""
    facts = PersonalFacts(date(1987, 3, 14), ("Øyvind Renée", "Ødegård"), lambda digits: False)
    assert PasswordReason.NAME in POLICY.reasons(password, facts)


def test_a_person_the_register_does_not_have_still_may_not_use_their_identity_number() -> None:
    facts = personal_facts(None, lambda digits: digits == NUMBER)
    assert POLICY.reasons(f"mitt nummer {NUMBER}", facts) == [PasswordReason.IDENTITY_NUMBER]
    assert POLICY.reasons("en lang og god frase for meg", facts) == []


@pytest.mark.parametrize(
    ("names", "password"),
    [
        (("Sean", "O\u2019Brien"), "obrien er en fin fyr"),  # a curly apostrophe, as a phone types it
        (("Sean", "O'Brien"), "o\u2019brien er en fin fyr"),
        (("Wei", "Li"), "liwei-er-her-2024"),  # a short name run together with another
    ],
)
def test_names_are_found_however_their_parts_are_joined(names: tuple[str, str], password: str) -> None:
    facts = PersonalFacts(date(1990, 1, 5), names, lambda digits: False)
    assert POLICY.reasons(password, facts) == [PasswordReason.NAME]
    assert (
        POLICY.reasons("en lang og god frase for li", PersonalFacts(date(1990, 1, 5), ("Li",), lambda d: False)) == []
    )


@pytest.mark.parametrize(
    ("names", "password"),
    [
        (("Tor", "Li"), "en stor elg i skogen ved fjorden"),
        (("Ann", "Berg"), "kaldt vann og varme boller i kveld"),
        (("Ole", "Moe"), "fire skoler ved elva i Tromsø"),
        (("Per", "Dahl"), "supergrønn kaffekopp på taket"),
    ],
)
def test_a_short_name_inside_another_word_is_not_the_name(names: tuple[str, str], password: str) -> None:
    """A person named Tor may use "stor": the name is refused as a word of its own, or run together with
    the person's other names, not wherever its letters occur."""
    facts = PersonalFacts(date(1990, 1, 5), names, lambda digits: False)
    assert POLICY.reasons(password, facts) == []
    assert POLICY.reasons(f"{password} {names[0]}", facts) == [PasswordReason.NAME]


@pytest.mark.parametrize("run_together", ["05011990", "050190", "19900105", "900105"])
def test_a_birth_date_run_together_is_refused_in_each_order(run_together: str) -> None:
    facts = PersonalFacts(date(1990, 1, 5), ("Kari", "Nordmann"), lambda digits: False)
    assert POLICY.reasons(f"tur {run_together} langt borte i skogen", facts) == [PasswordReason.BIRTH_DATE]


def test_a_birth_date_without_leading_zeros_is_refused() -> None:
    facts = PersonalFacts(date(1990, 1, 5), ("Kari", "Nordmann"), lambda digits: False)
    for password in ("5.1.1990 var dagen", "dagen 1990-1-5 kom", "født 5/1/1990 sier de"):
        assert POLICY.reasons(password, facts) == [PasswordReason.BIRTH_DATE]


def test_a_stronger_hash_is_not_made_weaker(hasher: Argon2PasswordHasher) -> None:
    """argon2-cffi's own check asks whether the parameters differ: a hash made with more memory or
    passes (a later deploy's) would be rehashed at ours, weaker, at its next login."""
    stronger = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=1, hash_len=32, type=Type.ID)
    weaker = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1, hash_len=32, type=Type.ID)
    argon2i = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, type=Type.I)
    assert not hasher.needs_rehash(stronger.hash("x"))
    assert hasher.needs_rehash(weaker.hash("x"))
    assert hasher.needs_rehash(argon2i.hash("x"))

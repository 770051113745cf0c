"""The synthetic population register of the local stack: deterministic, varied, and all synthetic."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from functools import cache

import pytest

from local.population_seed import (
    WALKTHROUGH,
    Category,
    SeededPerson,
    category_counts,
    generate_population,
    given_names,
)
from minid.domain.errors import InvalidIdentityNumber
from minid.domain.identity import (
    CheckDigitRule,
    Gender,
    IdentityNumber,
    IdentityNumberKind,
    parse_identity_number,
)
from minid.domain.letters.model import recipient_ineligibility
from minid.domain.population import PersonStatus
from tests.conftest import EVENTS, ROOT

YEAR = 2026
END_OF_YEAR = date(YEAR, 12, 31)


@cache
def population() -> tuple[SeededPerson, ...]:
    return tuple(generate_population(year=YEAR))


def parsed(seeded: SeededPerson) -> IdentityNumber:
    return parse_identity_number(seeded.identity_number, allow_synthetic=True, today=END_OF_YEAR)


def of(category: Category) -> list[SeededPerson]:
    return [seeded for seeded in population() if seeded.category is category]


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def test_the_same_arguments_give_the_same_population() -> None:
    assert generate_population(year=YEAR) == generate_population(year=YEAR)
    assert generate_population(year=YEAR, count=150, seed=7) == generate_population(year=YEAR, count=150, seed=7)


def test_another_seed_gives_another_population() -> None:
    first = {s.identity_number for s in generate_population(year=YEAR, seed=1)}
    second = {s.identity_number for s in generate_population(year=YEAR, seed=2)}
    assert first != second


def test_the_default_population_has_more_than_a_thousand_persons_in_the_expected_shares() -> None:
    assert len(population()) == 1200
    assert Counter(s.category for s in population()) == {
        Category.ADULT: 840,
        Category.D_NUMBER_NORWAY: 90,
        Category.D_NUMBER_ABROAD: 80,
        Category.CHILD: 70,
        Category.TURNS_13: 25,
        Category.DECEASED: 40,
        Category.NO_ADDRESS: 20,
        Category.EMIGRATED: 10,
        Category.RULE_2032: 25,
    }


@pytest.mark.parametrize("count", [100, 101, 137, 250, 999, 1000, 3001])
def test_other_counts_keep_at_least_two_of_each_category(count: int) -> None:
    counts = category_counts(count)
    assert sum(counts.values()) == count
    assert min(counts.values()) >= 2


def test_a_small_population_has_exactly_the_count_asked_for() -> None:
    seeded = generate_population(year=YEAR, count=100)
    assert len(seeded) == 100
    assert Counter(s.category for s in seeded) == category_counts(100)


def test_too_few_persons_for_one_of_each_category_are_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        category_counts(len(Category) - 1)


def test_the_first_persons_show_each_category_once_in_a_stable_order() -> None:
    assert [s.category for s in population()[: len(Category)]] == list(Category)


def test_the_rest_is_interleaved() -> None:
    categories = [s.category for s in population()[len(Category) :]]
    assert len(set(categories[:60])) >= 4


def test_numbers_are_unique() -> None:
    numbers = [s.identity_number for s in population()]
    assert len(set(numbers)) == len(numbers)


def test_every_number_is_a_valid_synthetic_number() -> None:
    for seeded in population():
        number = parsed(seeded)
        assert number.synthetic
        assert number.kind is seeded.person.kind
        assert int(seeded.identity_number[2:4]) > 80


def test_every_number_is_refused_where_synthetic_numbers_are_not_allowed() -> None:
    for seeded in population():
        with pytest.raises(InvalidIdentityNumber):
            parse_identity_number(seeded.identity_number, allow_synthetic=False, today=END_OF_YEAR)


def test_classic_numbers_carry_the_birth_date_and_a_gender_matching_the_given_name() -> None:
    names = {Gender.MALE: given_names(Gender.MALE), Gender.FEMALE: given_names(Gender.FEMALE)}
    assert not names[Gender.MALE] & names[Gender.FEMALE]
    for seeded in population():
        number = parsed(seeded)
        if seeded.category is Category.RULE_2032:
            continue
        assert number.rule is CheckDigitRule.CLASSIC
        assert number.birth_date == seeded.person.birth_date
        assert number.gender is not None
        assert int(seeded.identity_number[8]) % 2 == (number.gender is Gender.MALE)
        assert seeded.person.given_name.split()[0] in names[number.gender]


def test_the_kind_of_number_follows_the_category() -> None:
    d_numbers = {Category.D_NUMBER_NORWAY, Category.D_NUMBER_ABROAD}
    for seeded in population():
        expected = IdentityNumberKind.D_NUMBER if seeded.category in d_numbers else IdentityNumberKind.FODSELSNUMMER
        assert seeded.person.kind is expected
        assert parsed(seeded).kind is expected


@pytest.mark.parametrize("category", [Category.ADULT, Category.RULE_2032])
def test_adults_are_resident_with_an_address_in_norway_and_18_to_90(category: Category) -> None:
    for seeded in of(category):
        person = seeded.person
        assert person.status is PersonStatus.RESIDENT
        assert person.address is not None
        assert person.address_abroad is None
        assert person.deceased_on is None
        assert age_on(person.birth_date, date(YEAR, 1, 1)) >= 18
        assert age_on(person.birth_date, END_OF_YEAR) <= 90


def test_numbers_under_the_2032_rule() -> None:
    remainders = set()
    for seeded in of(Category.RULE_2032):
        number = parsed(seeded)
        assert number.rule is CheckDigitRule.FROM_2032
        assert number.birth_date is None
        assert number.gender is None
        born = seeded.person.birth_date
        assert seeded.identity_number[:6] == f"{born.day:02d}{born.month + 80:02d}{born.year % 100:02d}"
        digits = [int(d) for d in seeded.identity_number]
        remainders.add(sum(w * d for w, d in zip((3, 7, 6, 1, 8, 9, 4, 5, 2, 1), digits, strict=False)) % 11)
    assert remainders <= {1, 2, 3}


def test_d_number_holders_in_norway() -> None:
    seeded = of(Category.D_NUMBER_NORWAY)
    for person in (s.person for s in seeded):
        assert person.status is PersonStatus.NOT_RESIDENT
        assert person.address is not None
    assert any(s.person.address_abroad is not None for s in seeded)
    assert any(s.person.address_abroad is None for s in seeded)


def test_d_number_holders_abroad() -> None:
    for person in (s.person for s in of(Category.D_NUMBER_ABROAD)):
        assert person.status is PersonStatus.NOT_RESIDENT
        assert person.address is None
        assert person.address_abroad is not None


def test_d_number_holders_come_from_many_countries() -> None:
    d_numbers = of(Category.D_NUMBER_NORWAY) + of(Category.D_NUMBER_ABROAD)
    codes = {s.person.address_abroad.country_code for s in d_numbers if s.person.address_abroad}
    assert len(codes) >= 8


def test_children_are_under_13_all_year() -> None:
    for person in (s.person for s in of(Category.CHILD)):
        assert person.status is PersonStatus.RESIDENT
        assert person.address is not None
        assert YEAR - 12 <= person.birth_date.year <= YEAR
        assert age_on(person.birth_date, END_OF_YEAR) < 13


def test_those_turning_13_have_birthdays_all_over_the_year() -> None:
    seeded = of(Category.TURNS_13)
    for person in (s.person for s in seeded):
        assert person.status is PersonStatus.RESIDENT
        assert person.address is not None
        assert person.birth_date.year == YEAR - 13
    birthdays = sorted(s.person.birth_date for s in seeded)
    assert birthdays[0] <= date(YEAR - 13, 1, 31)
    assert birthdays[-1] >= date(YEAR - 13, 12, 1)
    assert len({b.month for b in birthdays}) == 12


def test_the_deceased() -> None:
    seeded = of(Category.DECEASED)
    for person in (s.person for s in seeded):
        assert person.status is PersonStatus.DECEASED
        assert not person.alive
        assert person.deceased_on is not None
        assert person.birth_date < person.deceased_on < date(YEAR, 1, 1)
    assert any(s.person.address is not None for s in seeded)


def test_residents_without_an_address() -> None:
    for person in (s.person for s in of(Category.NO_ADDRESS)):
        assert person.status is PersonStatus.RESIDENT
        assert person.address is None
        assert person.address_abroad is None


def test_the_emigrated_have_only_an_address_abroad() -> None:
    for person in (s.person for s in of(Category.EMIGRATED)):
        assert person.status is PersonStatus.EMIGRATED
        assert person.address is None
        assert person.address_abroad is not None


def test_only_the_deceased_have_a_date_of_death() -> None:
    for seeded in population():
        assert (seeded.person.deceased_on is not None) == (seeded.category is Category.DECEASED)


def test_addresses_look_like_addresses() -> None:
    for person in (s.person for s in population()):
        if person.address is not None:
            assert re.fullmatch(r"\d{4}", person.address.postal_code)
            assert person.address.city == person.address.city.upper()
            assert re.fullmatch(r"\D+ \d+[A-D]?( H0[1-9]0[1-9])?", person.address.street)
        if person.address_abroad is not None:
            assert re.fullmatch(r"[A-Z]{2}", person.address_abroad.country_code)
            assert len(person.address_abroad.lines_abroad) >= 2
    assert any(s.person.address and s.person.address.care_of for s in population())


def _walkthrough_numbers() -> set[str]:
    """Every valid identity number the README and the sample events send (in an event's body, JSON in
    a JSON string, the quotes are escaped); the README's invalid example (12345678901) is left out."""
    texts = [(ROOT / "README.md").read_text()] + [path.read_text() for path in sorted(EVENTS.rglob("*.json"))]
    found = {n for text in texts for n in re.findall(r'identity_number\\?"\s*:\s*\\?"(\d{11})', text)}
    valid = set()
    for number in found:
        try:
            parse_identity_number(number, allow_synthetic=True, today=END_OF_YEAR)
        except InvalidIdentityNumber:
            continue
        valid.add(number)
    return valid


def test_the_walkthrough_uses_the_walkthrough_person() -> None:
    assert _walkthrough_numbers() == {WALKTHROUGH.identity_number}


@pytest.mark.parametrize("year", range(2025, 2036))
def test_the_walkthrough_person_is_an_eligible_adult_in_the_seed_of_every_year(year: int) -> None:
    """The README's walkthrough orders a letter for them, whenever it is run (the seed is the year's)."""
    numbers = _walkthrough_numbers()
    assert numbers
    for count, seed in ((1200, 2026), (len(Category), 2026), (150, 7)):
        by_number = {s.identity_number: s for s in generate_population(year=year, count=count, seed=seed)}
        for number in numbers:
            seeded = by_number[number]
            assert seeded.category is Category.ADULT
            assert seeded.person.status is PersonStatus.RESIDENT
            assert seeded.person.address is not None
            for today in (date(year, 1, 1), date(year, 12, 31)):
                assert recipient_ineligibility(seeded.person, today) is None
                assert age_on(seeded.person.birth_date, today) >= 18


def test_names_are_names() -> None:
    for person in (s.person for s in population()):
        for name in (person.given_name, person.family_name):
            assert name.strip() == name
            assert name
            assert not any(c.isdigit() for c in name)
    assert any(any(c in "æøåÆØÅ" for c in s.person.name) for s in population())
    assert any(len(s.person.given_name.split()) > 1 for s in population())

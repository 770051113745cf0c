"""Who may be sent a PIN code letter, and where it goes (the register's part; quotas come with orders)."""

from __future__ import annotations

from datetime import date

import pytest
from msgspec.structs import replace

from minid.domain.contacts import Language
from minid.domain.identity import IdentityNumberKind
from minid.domain.letters.model import Ineligibility, letter_address, letter_language, recipient_ineligibility
from minid.domain.population import AddressProtection, ForeignAddress, NorwegianAddress, Person, PersonStatus

TODAY = date(2026, 11, 22)
OSLO = NorwegianAddress("Storgata 12 H0203", "0155", "OSLO")
GDANSK = ForeignAddress(("ul. Długa 12/4", "80-831 GDAŃSK"), "Poland", "PL")
ADULT = Person("Kari", "Nordmann", date(1980, 5, 17), IdentityNumberKind.FODSELSNUMMER, PersonStatus.RESIDENT, OSLO)


def test_a_number_replaced_by_another_gets_no_letter() -> None:
    """A D-number holder given a fødselsnummer uses only that from then on (seeds/004): the old number's
    order is refused, as a dead person's is, though the person lives (their notices still go)."""
    ceased = replace(ADULT, kind=IdentityNumberKind.D_NUMBER, status=PersonStatus.CEASED)
    assert ceased.alive
    assert not ceased.in_use
    assert recipient_ineligibility(ceased, TODAY) is Ineligibility.CEASED
    assert ADULT.in_use


def test_an_adult_resident_gets_the_letter_at_home() -> None:
    assert recipient_ineligibility(ADULT, TODAY) is None
    assert letter_address(ADULT) == ("Storgata 12 H0203", "0155 OSLO")


@pytest.mark.parametrize("care_of", ["Ola Nordmann", "c/o Ola Nordmann", " C/O  Ola Nordmann ", "C/o Ola Nordmann"])
def test_care_of_is_the_first_line_with_one_c_o_however_the_register_wrote_it(care_of: str) -> None:
    person = replace(ADULT, address=replace(OSLO, care_of=care_of))
    assert letter_address(person) == ("c/o Ola Nordmann", "Storgata 12 H0203", "0155 OSLO")
    alone = replace(ADULT, address=replace(OSLO, care_of=" c/o "))  # no name: no line
    assert letter_address(alone) == ("Storgata 12 H0203", "0155 OSLO")


def test_names_and_lines_are_composed_and_their_whitespace_one_space() -> None:
    """A Sámi letter given decomposed (a "C" and a combining caron: the PDF's text is not shaped, and the
    caron would print into the capital) is composed; a tab, a line break or a no-break space is a space."""
    person = replace(
        ADULT,
        given_name="C\u030c\u00e1hppes\u00a0\u00c1ilu ",
        family_name="\tN\u030c",
        address=NorwegianAddress("Sa\u0301mi\tgeaidnu 1\n", "9520", "KAUTOKEINO ", care_of="c/o\u00a0Biret  Ánde"),
    )
    assert person.name == "Čáhppes Áilu Ň"
    assert letter_address(person) == ("c/o Biret Ánde", "Sámi geaidnu 1", "9520 KAUTOKEINO")
    abroad = replace(GDANSK, lines_abroad=("ul. D\u0142ugá\u00a0 12/4", "80-831\tGDAN\u0301SK"), country=" Poland\n")
    assert abroad.lines() == ("ul. Długá 12/4", "80-831 GDAŃSK", "POLAND")


def test_blank_lines_and_a_blank_care_of_leave_no_hole_in_the_window() -> None:
    home = replace(ADULT, address=NorwegianAddress(" Storgata 12 H0203 ", "0155", "OSLO ", care_of="  "))
    assert letter_address(home) == ("Storgata 12 H0203", "0155 OSLO")
    lines = ("", " ul. Długa 12/4 ", "  ", "80-831 GDAŃSK", "")
    abroad = replace(
        ADULT,
        kind=IdentityNumberKind.D_NUMBER,
        status=PersonStatus.NOT_RESIDENT,
        address=None,
        address_abroad=replace(GDANSK, lines_abroad=lines),
    )
    assert letter_address(abroad) == ("ul. Długa 12/4", "80-831 GDAŃSK", "POLAND")


def test_a_postal_code_of_digits_other_than_ascii_is_no_address() -> None:
    arabic = replace(ADULT, address=replace(OSLO, postal_code="\u0660\u0661\u0665\u0665"))  # 0155 in Arabic digits
    assert letter_address(arabic) is None


@pytest.mark.parametrize(
    ("birth_date", "eligible"),
    [
        (date(2013, 12, 31), True),  # turns 13 on new year's eve this year
        (date(2013, 1, 1), True),
        (date(2014, 1, 1), False),  # turns 13 next year
        (date(2026, 11, 1), False),
    ],
)
def test_from_the_calendar_year_a_person_turns_13(birth_date: date, eligible: bool) -> None:
    person = replace(ADULT, birth_date=birth_date)
    assert (recipient_ineligibility(person, TODAY) is None) is eligible
    if not eligible:
        assert recipient_ineligibility(person, TODAY) is Ineligibility.TOO_YOUNG


def test_the_deceased_get_no_letter() -> None:
    person = replace(ADULT, status=PersonStatus.DECEASED, deceased_on=date(2025, 3, 1))
    assert recipient_ineligibility(person, TODAY) is Ineligibility.DECEASED


def test_no_address_no_letter() -> None:
    assert recipient_ineligibility(replace(ADULT, address=None), TODAY) is Ineligibility.NO_ADDRESS


@pytest.mark.parametrize("abroad", [False, True])
@pytest.mark.parametrize(
    "protection", [AddressProtection.STRICTLY_CONFIDENTIAL, AddressProtection.STRICTLY_CONFIDENTIAL_ABROAD]
)
def test_a_strictly_confidential_address_gets_no_letter_though_stored(
    protection: AddressProtection, abroad: bool
) -> None:
    """Whatever a copy of the register holds: no letter, and not as one with no address (which is told to
    check it with Skatteetaten and order again, in vain)."""
    person = replace(ADULT, address_protection=protection)
    if abroad:
        person = replace(person, kind=IdentityNumberKind.D_NUMBER, status=PersonStatus.NOT_RESIDENT, address=None)
        person = replace(person, address_abroad=GDANSK)
    assert letter_address(person) is None
    assert recipient_ineligibility(person, TODAY) is Ineligibility.PROTECTED_ADDRESS
    # a confidential address (fortrolig) is kept from the public only: letters go to it
    confidential = replace(person, address_protection=AddressProtection.CONFIDENTIAL)
    assert letter_address(confidential) == (GDANSK.lines() if abroad else OSLO.lines())
    assert recipient_ineligibility(confidential, TODAY) is None


def test_a_d_number_holder_without_a_norwegian_address_gets_it_abroad() -> None:
    person = replace(
        ADULT,
        kind=IdentityNumberKind.D_NUMBER,
        status=PersonStatus.NOT_RESIDENT,
        address=None,
        address_abroad=GDANSK,
    )
    assert recipient_ineligibility(person, TODAY) is None
    assert letter_address(person) == ("ul. Długa 12/4", "80-831 GDAŃSK", "POLAND")


def test_a_d_number_holder_with_a_norwegian_address_gets_it_in_norway() -> None:
    person = replace(ADULT, kind=IdentityNumberKind.D_NUMBER, address_abroad=GDANSK)
    assert letter_address(person) == OSLO.lines()


def test_a_fodselsnummer_holder_with_only_an_address_abroad_gets_none() -> None:
    person = replace(ADULT, status=PersonStatus.EMIGRATED, address=None, address_abroad=GDANSK)
    assert letter_address(person) is None
    assert recipient_ineligibility(person, TODAY) is Ineligibility.NO_ADDRESS


@pytest.mark.parametrize(
    "address",
    [
        NorwegianAddress("", "0155", "OSLO"),
        NorwegianAddress("Storgata 12", "155", "OSLO"),
        NorwegianAddress("Storgata 12", "0155", " "),
    ],
)
def test_an_address_the_post_could_not_deliver_to_is_no_address(address: NorwegianAddress) -> None:
    assert letter_address(replace(ADULT, address=address)) is None
    assert recipient_ineligibility(replace(ADULT, address=address), TODAY) is Ineligibility.NO_ADDRESS


@pytest.mark.parametrize(
    "abroad",
    [
        ForeignAddress((), "Poland", "PL"),  # "POLAND" alone
        ForeignAddress((" ",), "Poland", "PL"),
        ForeignAddress(("ul. Długa 12/4",), "", "PL"),
        ForeignAddress(("ul. Długa 12/4",), "Poland", ""),  # would go with domestic postage
    ],
)
def test_an_address_abroad_without_a_line_a_country_or_its_code_is_no_address(abroad: ForeignAddress) -> None:
    person = replace(ADULT, kind=IdentityNumberKind.D_NUMBER, address=None, address_abroad=abroad)
    assert letter_address(person) is None


def test_a_first_letter_abroad_is_in_english_and_a_chosen_language_stands() -> None:
    """A first letter has no contact record to take the language from (it is made at enrolment)."""
    abroad = replace(
        ADULT, kind=IdentityNumberKind.D_NUMBER, status=PersonStatus.NOT_RESIDENT, address=None, address_abroad=GDANSK
    )
    assert letter_language(abroad, None) is Language.ENGLISH
    assert letter_language(ADULT, None) is Language.BOKMAL
    assert letter_language(replace(ADULT, address_abroad=GDANSK), None) is Language.BOKMAL  # at home in Norway
    assert letter_language(abroad, Language.NYNORSK) is Language.NYNORSK
    assert letter_language(None, None) is Language.BOKMAL

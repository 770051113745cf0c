"""The population register (Folkeregisteret), as MinID reads it: who a person is and where they live."""

from __future__ import annotations

import unicodedata
from datetime import date
from enum import StrEnum
from typing import Protocol

from minid.domain.identity import IdentityNumberKind
from minid.domain.keys import PersonKey
from minid.values import Value


class PersonStatus(StrEnum):
    RESIDENT = "resident"  # bosatt: lives in Norway
    EMIGRATED = "emigrated"  # utflyttet: a fødselsnummer holder who moved abroad
    NOT_RESIDENT = "not_resident"  # ikke bosatt: a D-number holder, or a fødselsnummer holder who never lived here
    DECEASED = "deceased"  # død
    # opphørt: the number replaced by another (a D-number by a fødselsnummer, a number corrected). The
    # person uses the new one from then on (seeds/004): no letter and no new MinID user with the old one.
    CEASED = "ceased"


class AddressProtection(StrEnum):
    """The register's protection of a person's address (adressebeskyttelse); none: not protected (ugradert)."""

    CONFIDENTIAL = "confidential"  # fortrolig: kept from the public, not from the public sector's own post
    # strengt fortrolig, in Norway or abroad: a person under threat, whose address no one but the register
    # may know. The stack keeps none (the import drops it), and posts no letter: a print provider, a
    # document in a bucket, an envelope's window would each know it.
    STRICTLY_CONFIDENTIAL = "strictly_confidential"
    STRICTLY_CONFIDENTIAL_ABROAD = "strictly_confidential_abroad"


WITHHELD = frozenset({AddressProtection.STRICTLY_CONFIDENTIAL, AddressProtection.STRICTLY_CONFIDENTIAL_ABROAD})


def as_written(text: str) -> str:
    """A field of the register as an envelope takes it: composed (NFC: a Sámi "Č" given as "C" and a
    combining caron would print the caron into the capital, as the PDF's text is not shaped), and each run
    of whitespace (a tab, a line break, a no-break space) one space, none at either end."""
    return " ".join(unicodedata.normalize("NFC", text).split())


class NorwegianAddress(Value, frozen=True):
    __hidden__ = frozenset({"street", "postal_code", "city", "care_of"})  # left out of repr

    street: str  # "Storgata 12 H0203": street, number and, in blocks of flats, the unit
    postal_code: str  # four digits
    city: str  # the post town, in capitals as Posten writes it
    care_of: str | None = None  # the name mail goes in care of, with or without the register's "c/o"

    def lines(self) -> tuple[str, ...]:
        """As on the envelope, each line as written (`as_written`): a blank c/o is none (no "c/o" alone in
        the window), and one the register wrote as "C/O Herr Andersen" is not written "c/o C/O Herr Andersen"."""
        name = as_written(self.care_of or "")
        name = name[3:].strip() if name[:3].casefold() == "c/o" else name
        care_of = (f"c/o {name}",) if name else ()
        return (*care_of, as_written(self.street), as_written(f"{self.postal_code} {self.city}"))


class ForeignAddress(Value, frozen=True):
    __hidden__ = frozenset({"lines_abroad"})  # left out of repr

    lines_abroad: tuple[str, ...]  # as the person registered them, without the country
    country: str  # the country's name in English, as on an envelope from Norway
    country_code: str  # ISO 3166-1 alpha-2

    def lines(self) -> tuple[str, ...]:
        """As on the envelope, each line as written (`as_written`) and blank ones left out: a hole in the
        address window confuses the sorting, and takes its height from the lines that matter."""
        lines = (as_written(line) for line in self.lines_abroad)
        return (*(line for line in lines if line), as_written(self.country).upper())


class Person(Value, frozen=True):
    __hidden__ = frozenset(
        {"given_name", "family_name", "birth_date", "address", "address_abroad", "address_protection"}
    )

    given_name: str
    family_name: str
    birth_date: date  # the register's own field: authoritative, unlike the number's date digits
    kind: IdentityNumberKind
    status: PersonStatus
    address: NorwegianAddress | None = None  # the postal address in Norway
    address_abroad: ForeignAddress | None = None
    deceased_on: date | None = None
    address_protection: AddressProtection | None = None  # (the fact itself tells that the person is under threat)

    @property
    def address_withheld(self) -> bool:
        """Whether the person's address is strictly confidential: no letter goes to it, whatever is stored."""
        return self.address_protection in WITHHELD

    @property
    def name(self) -> str:
        """The name in full, as written (`as_written`): a person of one name has the other blank (no space
        before it, no blank)."""
        return as_written(f"{self.given_name} {self.family_name}")

    @property
    def abroad(self) -> bool:
        """Whether the register has an address abroad for the person, and none in Norway."""
        return self.address is None and self.address_abroad is not None

    @property
    def alive(self) -> bool:
        return may_be_alive(self.status)

    @property
    def in_use(self) -> bool:
        """Whether the number is the person's to use: not dead, and the number not replaced by another."""
        return number_in_use(self.status)


class PopulationRegister(Protocol):
    """Reads the population register. A person is found by the keyed hash of their identity number."""

    def find(self, person: PersonKey) -> Person | None: ...

    def status(self, person: PersonKey) -> PersonStatus | None:
        """The person's status alone (none of their name, birth date or address); None: not in the register."""
        ...


def number_in_use(status: PersonStatus) -> bool:
    """Whether a number of this status is the person's to use: not dead, and the number not replaced."""
    return may_be_alive(status) and status is not PersonStatus.CEASED


def may_be_alive(status: PersonStatus | None) -> bool:
    """Whether the register does not have the person as dead (a person it does not have may be alive)."""
    return status is not PersonStatus.DECEASED

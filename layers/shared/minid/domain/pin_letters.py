"""PIN code letters: who may be sent one, and where it goes."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from minid.domain.identity import IdentityNumberKind
from minid.domain.population import Person

MINIMUM_AGE = 13  # MinID may be ordered from the calendar year a person turns 13


class Ineligibility(StrEnum):
    """Why a person cannot be sent a letter. Told to nobody over HTTP: the API answers alike."""

    DECEASED = "deceased"
    NO_ADDRESS = "no-address"
    TOO_YOUNG = "too-young"


def letter_address(person: Person) -> tuple[str, ...] | None:
    """Where the letter goes: the address in Norway; for a D-number holder without one, the address abroad."""
    if person.address is not None:
        return person.address.lines()
    if person.kind is IdentityNumberKind.D_NUMBER and person.address_abroad is not None:
        return person.address_abroad.lines()
    return None


def recipient_ineligibility(person: Person, today: date) -> Ineligibility | None:
    """None when the person may be sent a letter, as far as the register tells (the quota aside)."""
    if not person.alive:
        return Ineligibility.DECEASED
    if today.year - person.birth_date.year < MINIMUM_AGE:
        return Ineligibility.TOO_YOUNG
    if letter_address(person) is None:
        return Ineligibility.NO_ADDRESS
    return None

"""What a logged-in person sees of themselves: `GET /v1/me` and `GET /v1/me/events`."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from minid.domain.accounts import UserAccount
from minid.domain.contacts import ContactRecord
from minid.domain.events import EventPage, SecurityEventLog
from minid.domain.keys import PersonKey
from minid.domain.letters.ports import PinLetters
from minid.domain.login import SecondFactor
from minid.domain.population import Person
from minid.domain.sessions import Session, Sessions
from minid.values import Value

EVENTS_PER_PAGE = 20


class Profile(Value, frozen=True):
    __hidden__ = frozenset({"identity_number", "name"})  # left out of repr

    identity_number: str
    name: str
    contact: ContactRecord | None
    second_factors: tuple[SecondFactor, ...]
    password_changed_at: datetime
    created_at: datetime


class ProfileStanding(Value, frozen=True):
    """What the profile reads in one call besides the account: the person in the population register,
    their contact record, and the id of their active letter."""

    person: Person | None
    contact: ContactRecord | None
    letter_id: str | None


class ProfileReads(Protocol):
    def read(self, person: PersonKey) -> ProfileStanding: ...


class ProfileService:
    def __init__(
        self, *, sessions: Sessions, reads: ProfileReads, letters: PinLetters, events: SecurityEventLog
    ) -> None:
        self._sessions = sessions
        self._reads = reads
        self._letters = letters
        self._events = events

    def me(self, session: Session, account: UserAccount) -> Profile:
        """The profile of the session's person, whose account was read to authenticate the session."""
        standing = self._reads.read(session.person)
        letter = self._letters.get(standing.letter_id) if standing.letter_id else None
        contact = standing.contact
        factors = []
        if contact is not None and contact.mobile_for_codes():
            factors.append(SecondFactor.SMS)
        if account.has_totp:
            factors.append(SecondFactor.TOTP)
        if letter is not None and letter.codes_work and letter.codes_remaining > 0:
            factors.append(SecondFactor.PIN)
        return Profile(
            identity_number=self._sessions.identity_number(session),
            name=standing.person.name if standing.person else "",
            contact=contact,
            second_factors=tuple(factors),
            password_changed_at=account.password_changed_at,
            created_at=account.created_at,
        )

    def events(self, session: Session, cursor: str | None) -> EventPage:
        return self._events.page(session.person, cursor, EVENTS_PER_PAGE)

"""What a logged-in person sees of themselves: `GET /v1/me` and `GET /v1/me/events`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from minid.domain.accounts import Users
from minid.domain.contacts import ContactRecord, ContactRegister
from minid.domain.errors import AuthenticationFailed
from minid.domain.events import EventPage, SecurityEventLog
from minid.domain.letters.ports import PinLetters
from minid.domain.login import SecondFactor
from minid.domain.population import PopulationRegister
from minid.domain.sessions import Session, Sessions

EVENTS_PER_PAGE = 20


@dataclass(frozen=True, slots=True)
class Profile:
    identity_number: str = field(repr=False)
    name: str
    contact: ContactRecord | None
    second_factors: tuple[SecondFactor, ...]
    password_changed_at: datetime
    created_at: datetime


class ProfileService:
    def __init__(
        self,
        *,
        sessions: Sessions,
        users: Users,
        population: PopulationRegister,
        contacts: ContactRegister,
        letters: PinLetters,
        events: SecurityEventLog,
    ) -> None:
        self._sessions = sessions
        self._users = users
        self._population = population
        self._contacts = contacts
        self._letters = letters
        self._events = events

    def me(self, session: Session) -> Profile:
        account = self._users.find(session.person)
        if account is None:
            raise AuthenticationFailed()
        person = self._population.find(session.person)
        contact = self._contacts.find(session.person)
        letter = self._letters.active_letter(session.person)
        factors = []
        if contact is not None and contact.mobile and contact.mobile_verified_at:
            factors.append(SecondFactor.SMS)
        if account.has_totp:
            factors.append(SecondFactor.TOTP)
        if letter is not None and len(letter.used) < len(letter.code_hashes):
            factors.append(SecondFactor.PIN)
        return Profile(
            identity_number=self._sessions.identity_number(session),
            name=person.name if person else "",
            contact=contact,
            second_factors=tuple(factors),
            password_changed_at=account.password_changed_at,
            created_at=account.created_at,
        )

    def events(self, session: Session, cursor: str | None) -> EventPage:
        return self._events.page(session.person, cursor, EVENTS_PER_PAGE)

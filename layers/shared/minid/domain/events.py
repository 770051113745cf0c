"""A person's own security history: what happened to their MinID, and when. Never a secret."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from msgspec import field

from minid.domain.keys import PersonKey
from minid.values import Value

KEPT_FOR = timedelta(days=400)  # at least a year


class SecurityEventType(StrEnum):
    PIN_LETTER_ORDERED = "pin-letter-ordered"
    PIN_LETTER_REFUSED = "pin-letter-refused"
    PIN_LETTER_POSTED = "pin-letter-posted"
    PIN_LETTER_BLOCKED = "pin-letter-blocked"
    PIN_LETTER_FAILED = "pin-letter-failed"  # an order accepted, and not (known to be) posted
    ENROLLED = "enrolled"
    RE_ENROLLED = "re-enrolled"
    LOGIN_SUCCEEDED = "login-succeeded"
    LOGIN_FAILED = "login-failed"
    ACCOUNT_LOCKED = "account-locked"
    ACCOUNT_UNLOCKED = "account-unlocked"
    PASSWORD_CHANGED = "password-changed"  # noqa: S105  (an event, not a password)
    PASSWORD_RESET = "password-reset"  # noqa: S105
    PASSWORD_RESET_FAILED = "password-reset-failed"  # noqa: S105  (wrong codes to the person's reset)
    ENROLMENT_FAILED = "enrolment-failed"  # wrong PIN codes of the person's letter to an enrolment
    TOTP_ADDED = "totp-added"
    TOTP_REMOVED = "totp-removed"
    TOTP_REPLACED = "totp-replaced"  # another app confirmed in place of the one before, which works no more
    LOGGED_OUT = "logged-out"
    CONTACT_CHANGE_REQUESTED = "contact-change-requested"
    CONTACT_CHANGE_WITHDRAWN = "contact-change-withdrawn"  # given up before it was verified
    CONTACT_CHANGED = "contact-changed"
    CONTACT_REMOVED = "contact-removed"
    CONTACT_CONFIRMED = "contact-confirmed"
    LANGUAGE_CHANGED = "language-changed"
    RESERVED = "reserved"
    UNRESERVED = "unreserved"
    CONTACT_STALE = "contact-stale"


class SecurityEvent(Value, frozen=True):
    type: SecurityEventType
    at: datetime
    reference: str  # what the event is about (a letter id); with type and time, it makes the event unique
    detail: dict[str, str] = field(default_factory=dict)  # never a secret or contact detail


class EventPage(Value, frozen=True):
    events: list[SecurityEvent]
    next_cursor: str | None


class SecurityEventLog(Protocol):
    def record(self, person: PersonKey, event: SecurityEvent) -> None:
        """Record once: recording the same event again (a retry) changes nothing."""
        ...

    def contains(self, person: PersonKey, event: SecurityEvent) -> bool:
        """Whether the event (by its type, time and reference) is recorded."""
        ...

    def page(self, person: PersonKey, cursor: str | None, limit: int) -> EventPage:
        """The person's events, newest first, from the cursor on. A cursor never given out is InvalidInput."""
        ...

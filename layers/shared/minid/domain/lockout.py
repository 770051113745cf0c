"""Failures in a row lock an account: counted before they are judged, told to the person when they lock."""

from __future__ import annotations

import uuid
from datetime import datetime

from minid.domain.accounts import Accounts, AttemptCount, LockoutPolicy
from minid.domain.events import SecurityEvent, SecurityEventLog, SecurityEventType
from minid.domain.keys import PersonKey
from minid.domain.notices import Notice, NoticeKind, NoticeQueue


class Lockout:
    def __init__(
        self, accounts: Accounts, events: SecurityEventLog, notices: NoticeQueue, policy: LockoutPolicy | None = None
    ) -> None:
        self._accounts = accounts
        self._events = events
        self._notices = notices
        self.policy = policy or LockoutPolicy()

    def reserve(self, person: PersonKey, now: datetime) -> AttemptCount:
        """Count the coming attempt as failed until it is known to be otherwise (not counted when the
        account is locked, or as many attempts are being judged), with the account as it stands."""
        return self._accounts.reserve_attempt(person, self.policy, now)

    def release(self, person: PersonKey) -> None:
        self._accounts.release_attempt(person)

    def failed(
        self, person: PersonKey, now: datetime, reason: str, reserved: int, reference: str | None = None
    ) -> None:
        """Record the failure. The one that reached the threshold (`reserved`, its count) locks the
        account, and the person is told (once: the notice waits for the lock's event)."""
        reference = reference or str(uuid.uuid4())
        self._events.record(person, SecurityEvent(SecurityEventType.LOGIN_FAILED, now, reference, {"reason": reason}))
        if reserved >= self.policy.threshold:
            locked = SecurityEvent(SecurityEventType.ACCOUNT_LOCKED, now, reference)
            self._notices.enqueue(Notice(f"{reference}:locked", NoticeKind.ACCOUNT_LOCKED, person, proof=locked))
            self._accounts.lock(person, self.policy, now, events=(locked,))

    def unlock_expired(self, person: PersonKey, locked_until: datetime | None, now: datetime) -> None:
        """A lock that has run out is removed at the next attempt, and the removal recorded."""
        if locked_until is not None and locked_until <= now and self._accounts.unlock_expired(person, now):
            self._events.record(person, SecurityEvent(SecurityEventType.ACCOUNT_UNLOCKED, now, str(uuid.uuid4())))

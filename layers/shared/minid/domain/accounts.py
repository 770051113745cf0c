"""MinID user accounts: a person's password, second factors, lockout and sessions' epoch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from minid.domain.events import SecurityEvent
from minid.domain.keys import PersonKey


class AccountStatus(StrEnum):
    ACTIVE = "active"


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """3 failed logins in a row (a wrong password or a wrong second factor) lock the account for an hour."""

    threshold: int = 3
    duration: timedelta = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class UserAccount:
    person: PersonKey
    status: AccountStatus
    password_hash: str = field(repr=False)
    created_at: datetime
    password_changed_at: datetime
    # Every session carries the epoch it was issued in; raising the epoch ends them all.
    session_epoch: int = 0
    failed_logins: int = 0
    locked_until: datetime | None = None
    totp_secret: str | None = field(default=None, repr=False)  # sealed
    totp_pending: str | None = field(default=None, repr=False)  # sealed, until confirmed with a code
    totp_last_step: int = 0  # the last time step accepted: a code is never accepted twice

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now

    @property
    def has_totp(self) -> bool:
        return self.totp_secret is not None


@dataclass(frozen=True, slots=True)
class AttemptCount:
    """An attempt at an account's credentials, counted (as failed, until it is known to be otherwise)
    or refused; and the account as it stands: read in the same call that counts."""

    account: UserAccount | None  # None: there is no such account
    counted: bool  # False: the account is locked, or as many attempts are being judged as may fail

    @property
    def failures(self) -> int:
        """Failures in a row with this attempt (what it reserved)."""
        return self.account.failed_logins if self.account is not None else 0


class Users(Protocol):
    def find(self, person: PersonKey) -> UserAccount | None: ...


class Accounts(Users, Protocol):
    """The account's counters and credentials, each changed by a conditional write. A change that is
    told (`events`) is written with its events in one transaction: both or neither."""

    def reserve_attempt(self, person: PersonKey, policy: LockoutPolicy, now: datetime) -> AttemptCount:
        """Count an attempt as failed until it is known to be otherwise, if the account is neither
        locked nor at the threshold, and read the account: one call, for the login's path. At most
        `threshold` attempts are ever judged at once."""
        ...

    def release_attempt(self, person: PersonKey) -> None:
        """The attempt was not a failure (the password was right; the second factor comes next)."""
        ...

    def lock(self, person: PersonKey, policy: LockoutPolicy, now: datetime, events: Sequence[SecurityEvent]) -> bool:
        """Lock the account if its failures reached the threshold; True for the one call that locked it."""
        ...

    def unlock_expired(self, person: PersonKey, now: datetime) -> bool:
        """Remove a lock that has run out; True for the one call that removed it."""
        ...

    def set_password(
        self, person: PersonKey, password_hash: str, at: datetime, events: Sequence[SecurityEvent]
    ) -> None:
        """A new password, and every session ended (the epoch rises)."""
        ...

    def rehash_password(self, person: PersonKey, old_hash: str, new_hash: str) -> None:
        """The same password kept with stronger parameters; sessions stay."""
        ...

    def set_totp_pending(self, person: PersonKey, sealed_secret: str) -> None: ...

    def confirm_totp(
        self, person: PersonKey, sealed_secret: str, step: int, events: Sequence[SecurityEvent]
    ) -> bool: ...

    def remove_totp(self, person: PersonKey, events: Sequence[SecurityEvent]) -> bool: ...

"""MinID user accounts: a person's password, second factors, lockout and sessions' epoch."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from minid.domain.events import SecurityEvent
from minid.domain.keys import PersonKey
from minid.values import Value

if TYPE_CHECKING:
    from minid.domain.rate_limits import Hit


class AccountStatus(StrEnum):
    ACTIVE = "active"


class LockoutPolicy(Value, frozen=True):
    """3 failed logins in a row (a wrong password or a wrong second factor) lock the account for an hour."""

    threshold: int = 3
    duration: timedelta = timedelta(hours=1)


class UserAccount(Value, frozen=True):
    __hidden__ = frozenset({"password_hash", "totp_secret", "totp_pending"})  # left out of repr

    person: PersonKey
    status: AccountStatus
    password_hash: str
    created_at: datetime
    password_changed_at: datetime
    # Every session carries the epoch it was issued in; raising the epoch ends them all.
    session_epoch: int = 0
    failed_logins: int = 0
    locked_until: datetime | None = None
    totp_secret: str | None = None  # sealed
    totp_pending: str | None = None  # sealed, until confirmed with a code
    totp_last_step: int = 0  # the last time step accepted: a code is never accepted twice
    attempt_reserved_at: datetime | None = None  # when an attempt was last counted as failed before its judgement
    # The run of failures in a row the count belongs to: new at each write that sets the count back to zero
    # (a login completed, a lock, a new password, an enrolment). A count given back is taken from its own
    # run only: the run ended meanwhile, the failures counted since are others'.
    failure_run: str | None = None
    # The run (its id; "" for an account from before runs) in which an attempt past the password was last
    # counted as failed before its judgement: a second factor's code, or a change's current password.
    past_password_in: str | None = None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now

    @property
    def failed_past_password(self) -> bool:
        """Whether the run of failures now counted holds an attempt past the password (one with the
        password, or a session, made it): a lock that ends it is told each time, not once a day."""
        return self.past_password_in is not None and self.past_password_in == (self.failure_run or "")

    @property
    def has_totp(self) -> bool:
        return self.totp_secret is not None


class AttemptCount(Value, frozen=True):
    """An attempt at an account's credentials, counted (as failed, until it is known to be otherwise)
    or refused; and the account as it stands: read in the same call that counts."""

    account: UserAccount | None  # None: there is no such account
    counted: bool  # False: the account is locked, or as many attempts are being judged as may fail

    @property
    def failures(self) -> int:
        """Failures in a row with this attempt (what it reserved)."""
        return self.account.failed_logins if self.account is not None else 0


class AccountChange(Value, frozen=True):
    """What a judged attempt does to the account as it was read: written only if the account is still
    as read (the same failures, lock and password epoch), and then at once with the attempt's other
    writes. The judgement is told only once it is written: attempts judged at the same time cannot
    count past the threshold, since only one of them finds the account as it read it."""

    __hidden__ = frozenset({"password_hash"})  # left out of repr (the account's is, in its own)

    seen: UserAccount
    at: datetime  # when it was judged
    failed_logins: int
    locked_until: datetime | None
    # the password judged right, kept anew with stronger parameters (the configured ones raised since its
    # hash was made), in the same write: in place of the hash judged, only while it is still that one
    password_hash: str | None = None


class Written(Value, frozen=True):
    """How a judged attempt's writes went: made, or none of them, because the account was not as read
    (`stale`: read it again) or because a client's limit was full (`full`, that limit's hit)."""

    made: bool
    full: Hit | None = None

    @property
    def stale(self) -> bool:
        return not self.made and self.full is None


MADE, STALE = Written(made=True), Written(made=False)


class Users(Protocol):
    def find(self, person: PersonKey) -> UserAccount | None: ...

    def session_epoch(self, person: PersonKey) -> int | None:
        """The account's sessions' epoch alone (None: no account): what a function that needs nothing else
        of the account reads, and is let read (no password hash, no sealed secret of the app)."""
        ...


class Accounts(Users, Protocol):
    """The account's counters and credentials, each changed by a conditional write. A change that is
    told (`events`) is written with its events in one transaction: both or neither."""

    def reserve_attempt(self, person: PersonKey, policy: LockoutPolicy, now: datetime) -> AttemptCount:
        """Count an attempt as failed until it is known to be otherwise, if the account is neither
        locked nor at the threshold, and read the account: one call, for the login's path. At most
        `threshold` attempts are ever judged at once. Raised (a fault), it may have been counted: a count
        made whose every answer was lost is given back first, where it can be told to be this attempt's
        (not when another was counted since, nor when DynamoDB makes it after the give-back)."""
        ...

    def judged(
        self, person: PersonKey, change: AccountChange | None, events: Sequence[SecurityEvent], hits: Sequence[Hit]
    ) -> Written:
        """At once: the account changed as `change` says (if it is still as read; None: the account is
        not written or checked), the events recorded and the client's hits counted."""
        ...

    def release_attempt(self, person: PersonKey, run: str | None) -> None:
        """The attempt was not a failure (the password was right; the second factor comes next): its
        count given back, if the run of failures it was counted in (`run`, as the reservation read it)
        has not ended since."""
        ...

    def lock(
        self,
        person: PersonKey,
        policy: LockoutPolicy,
        now: datetime,
        events: Sequence[SecurityEvent],
        failures: Sequence[SecurityEvent] = (),
    ) -> bool:
        """Lock the account if its failures reached the threshold, with `events`; True for the one call
        that locked it. `failures`, the events of the attempt that reached it, are written with the lock,
        and without it when it does not hold or fails (whatever the time: they are counted for good)."""
        ...

    def set_password(
        self,
        person: PersonKey,
        password_hash: str,
        at: datetime,
        events: Sequence[SecurityEvent],
        *,
        replacing: UserAccount,
    ) -> bool:
        """A new password, and every session ended (the epoch rises). False, writing nothing, when the
        account's sessions are no longer those of `replacing` (its password changed or reset meanwhile, or
        a re-enrolment: each raises the epoch). A re-hash of the same password meanwhile is no change."""
        ...

    # The authenticator app's changes each hold only while the sessions' epoch is `epoch` (the session's,
    # as authenticated): a password changed or reset, or a re-enrolment, meanwhile has ended the session
    # that asked. False: not written.
    def set_totp_pending(self, person: PersonKey, sealed_secret: str, epoch: int) -> bool: ...

    def confirm_totp(
        self, person: PersonKey, sealed_secret: str, step: int, epoch: int, events: Sequence[SecurityEvent]
    ) -> bool: ...

    def remove_totp(self, person: PersonKey, epoch: int, events: Sequence[SecurityEvent]) -> bool: ...

    def drop_totp_pending(self, person: PersonKey, sealed_secret: str, epoch: int) -> bool:
        """An app begun and not confirmed given up (its secret `sealed_secret`, as read)."""
        ...

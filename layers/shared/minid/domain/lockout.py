"""Failures in a row lock an account, and the person is told when it locks: by the lock's event, as
written (`lock_notice`: the event log's stream hands every lock to the notifier), so that the notice is
never sent for a lock that was not made, and costs the attempt that locks no call of its own.

Two ways of counting, both such that concurrent attempts cannot get past the threshold: the password
step of a login judges first and writes its judgement only if the account is still as it read it
(`judged`: one read and one write); the others count the attempt as failed before judging it and take
the count back when it was right (`reserve`, `release`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from minid.domain.accounts import AccountChange, Accounts, AttemptCount, LockoutPolicy, UserAccount
from minid.domain.events import SecurityEvent, SecurityEventLog, SecurityEventType
from minid.domain.keys import PersonKey
from minid.domain.notices import Notice, NoticeKind
from minid.domain.time import date_in_norway
from minid.values import Value

# Longer than any request lasts (the functions' timeouts are 10 and 30 seconds): a count at the threshold
# older than this, with no lock, is not an attempt still being judged.
SETTLED_WITHIN = timedelta(minutes=1)


# What a lock's event records of the policy that made it, and its notice tells.
TOLD = ("failures", "minutes")
# What a lock's event records of the failures that made it (`after`): wrong passwords of a login alone,
# which anyone may type; a wrong password ending a run that held an attempt past the password too; or the
# reason of the failure that locked ("second-factor", "password-change").
PASSWORDS = "password"
PASSWORDS_AND_MORE = "password-and-more"
# What such a lock tells the person of the one who made it (the notice's `known`): by a wrong code past the
# password, that they know it; at a change, that they have a session. Wrong passwords tell nothing: anyone
# may type them, and so do they ending a run that held an attempt past the password (PASSWORDS_AND_MORE: its
# mark is made as the attempt is counted, and stays when it is given back, the person's own right code say).
KNOWN_BY_AFTER = {"second-factor": "password", "password-change": "session"}


class Judgement(Value, frozen=True):
    """What a judged password writes: the account's change and the person's events (a lock's among
    them, which tells the person)."""

    change: AccountChange
    events: tuple[SecurityEvent, ...]


def lock_notice(person: PersonKey, locked: SecurityEvent) -> Notice:
    """The notice of a lock, from its event as written: the same notice (its id) however often the
    event is handed over, and what it tells is what the lock recorded of the policy deployed.

    A lock after wrong passwords is told once a day (the day in Norway), however often the account locks
    so: anyone who knows an identity number may lock its account with three wrong passwords, again each
    time the lock lapses, and a notice a lock would let them send that person (and us the bill for) an SMS
    every few tries, from address after address. A lock reached by a wrong code of a login past its
    password, or a wrong current password of a session's change, is told each time (its id the lock's):
    only one with the password or a session can make one, and it may be the person's only sign of it.
    So is a lock a wrong password reaches in a run that held such an attempt too (one with the password
    must not end a run of wrong codes with a wrong password to have it told as anyone's). Every lock is
    in the person's history all the same."""
    if locked.type is not SecurityEventType.ACCOUNT_LOCKED:
        raise ValueError(f"not a lock: {locked.type.value}")
    told = {name: str(locked.detail[name]) for name in TOLD if name in locked.detail}
    if known := KNOWN_BY_AFTER.get(str(locked.detail.get("after"))):  # what the one who locked it had
        told["known"] = known
    if locked.detail.get("after") == PASSWORDS:
        notice_id = f"{person}:{date_in_norway(locked.at).isoformat()}:locked"
    else:
        notice_id = f"{locked.reference}:{locked.at.isoformat()}:locked"
    return Notice(notice_id, NoticeKind.ACCOUNT_LOCKED, person, told, proof=locked)


class Lockout:
    def __init__(self, accounts: Accounts, events: SecurityEventLog, policy: LockoutPolicy | None = None) -> None:
        self._accounts = accounts
        self._events = events
        self.policy = policy or LockoutPolicy()

    def reserve(self, person: PersonKey, now: datetime) -> AttemptCount:
        """Count the coming attempt as failed until it is known to be otherwise (not counted when the
        account is locked, or as many attempts are being judged), with the account as it stands.

        A count at the threshold with no lock, older than any request lasts, is a failure whose lock was
        never written (a fault after its judgement, or the function stopped): it is written now, and the
        person told, rather than refusing every attempt for good with nothing to lift."""
        count = self._accounts.reserve_attempt(person, self.policy, now)
        account = count.account
        if (
            not count.counted
            and account is not None
            and not account.locked(now)
            and account.failed_logins >= self.policy.threshold
            and (account.attempt_reserved_at is None or now - account.attempt_reserved_at > SETTLED_WITHIN)
        ):
            self._lock(person, now, str(uuid.uuid4()))
        return count

    @contextmanager
    def reserved(self, person: PersonKey, now: datetime) -> Iterator[Reservation]:
        """`reserve`, and the count given back when what follows does not end in the credentials judged
        wrong: the attempt ended otherwise (its login ended meanwhile, a new password refused) or failed
        for a fault (an AWS call that failed, a bug), and a try the person could not finish is no failure.
        Once judged wrong (`Reservation.judged_wrong`) it is kept, whatever fails after: a fault must not
        hand a guess back. A right one settles the count with its own write (back to zero)."""
        reservation = Reservation(self.reserve(person, now))
        try:
            yield reservation
        except BaseException as error:
            counted = reservation.count
            if counted.counted and counted.account is not None and not reservation.wrong:
                try:
                    self.release(person, counted.account.failure_run)
                except Exception as failed:  # told in a note: the attempt's own error stays the one raised
                    error.add_note(f"The attempt's count was not given back: {type(failed).__name__}")
            raise

    def judged(self, account: UserAccount, now: datetime, right: bool, reference: str) -> Judgement:
        """A password judged against the account as read: a lock that has run out is removed; a wrong
        one counts a failure, and the one that reaches the threshold locks the account (its count back
        to zero) and tells the person."""
        events: list[SecurityEvent] = []
        if account.locked_until is not None and account.locked_until <= now:
            events.append(SecurityEvent(SecurityEventType.ACCOUNT_UNLOCKED, now, str(uuid.uuid4())))
        unlocked = AccountChange(account, now, account.failed_logins, None)
        if right:
            return Judgement(unlocked, tuple(events))
        events.append(SecurityEvent(SecurityEventType.LOGIN_FAILED, now, reference, {"reason": "password"}))
        failures = account.failed_logins + 1
        if failures < self.policy.threshold:
            return Judgement(AccountChange(account, now, failures, None), tuple(events))
        after = PASSWORDS_AND_MORE if account.failed_past_password else PASSWORDS
        locked = self._locked(now, reference, after=after)
        return Judgement(AccountChange(account, now, 0, now + self.policy.duration), (*events, locked))

    def release(self, person: PersonKey, run: str | None) -> None:
        """A count given back, from the run of failures it was counted in (`run`): if that run has ended
        since (the count back to zero, by a login completed meanwhile), the failures counted since are
        not this attempt's, and one of them must not be taken."""
        self._accounts.release_attempt(person, run)

    def failed(
        self, person: PersonKey, now: datetime, reason: str, reserved: int, reference: str | None = None
    ) -> None:
        """Record the failure. The one that reached the threshold (`reserved`, its count) locks the
        account, and the person is told (by the lock's event); its failure is recorded with the lock, in
        the same write."""
        reference = reference or str(uuid.uuid4())
        failure = self.failure(now, reason, reference)
        if reserved >= self.policy.threshold:
            self._lock(person, now, reference, failure, after=reason)
        else:
            self._events.record(person, failure)

    def _lock(
        self, person: PersonKey, now: datetime, reference: str, *failures: SecurityEvent, after: str | None = None
    ) -> None:
        locked = self._locked(now, reference, after)
        self._accounts.lock(person, self.policy, now, events=(locked,), failures=failures)

    @staticmethod
    def failure(now: datetime, reason: str, reference: str) -> SecurityEvent:
        """A failure's event (one that does not lock: `failed` writes the one that does with its lock)."""
        return SecurityEvent(SecurityEventType.LOGIN_FAILED, now, reference, {"reason": reason})

    def _locked(self, now: datetime, reference: str, after: str | None) -> SecurityEvent:
        """The lock's event, with what its notice tells of it (the policy deployed, not the default) and
        what failures made it (`after`; None: a lock whose failure's write was lost, written late)."""
        minutes = -(-int(self.policy.duration.total_seconds()) // 60)  # whole minutes, rounded up: never less
        told = {"failures": str(self.policy.threshold), "minutes": str(minutes)}
        return SecurityEvent(
            SecurityEventType.ACCOUNT_LOCKED, now, reference, told | ({"after": after} if after else {})
        )


class Reservation:
    """An attempt counted as failed until it is known to be otherwise: `judged_wrong` once it is known to
    be a failure, after which the count stays whatever follows. (Mutable: one per attempt, never shared.)"""

    def __init__(self, count: AttemptCount) -> None:
        self.count = count
        self.wrong = False

    def judged_wrong(self) -> None:
        self.wrong = True

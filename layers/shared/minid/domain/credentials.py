"""A logged-in person's credentials: `PUT /v1/me/password` and the authenticator app (`/v1/me/totp`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from minid.domain.accounts import Accounts, LockoutPolicy, UserAccount
from minid.domain.codes import CODE_LIFETIME, RateLimited
from minid.domain.errors import AuthenticationFailed, Conflict
from minid.domain.events import SecurityEvent, SecurityEventLog, SecurityEventType
from minid.domain.keys import PersonKey, Sealer
from minid.domain.lockout import SETTLED_WITHIN, Lockout
from minid.domain.notices import Notice, NoticeKind, NoticeQueue
from minid.domain.passwords import PasswordHasher, PasswordPolicy, personal_facts
from minid.domain.population import PopulationRegister
from minid.domain.sessions import Session, SessionEnded, Sessions, require_recent_login
from minid.domain.time import Clock
from minid.domain.totp import is_code_at, matching_step, new_secret, provisioning_uri, step_time
from minid.values import Value


class AccountLocked(RateLimited):
    """The account is locked after failed attempts (or its last attempts are still being judged): told to
    the person logged in, who may try again when the lock ends, rather than that the password is wrong."""

    def __init__(self, account: UserAccount, now: datetime, policy: LockoutPolicy) -> None:
        locked = "The account is locked for a while after failed attempts. Try again when the lock ends."
        reserved_at = account.attempt_reserved_at
        if account.locked(now) and account.locked_until is not None:
            until, detail = account.locked_until, locked
        elif account.failed_logins >= policy.threshold and (reserved_at is None or now - reserved_at > SETTLED_WITHIN):
            until, detail = now + policy.duration, locked  # a lock never written: Lockout.reserve writes it now
        else:  # as many attempts in flight, still being judged: they may come out right, and lock nothing
            until, detail = now + SETTLED_WITHIN, "Other attempts are being checked. Try again in a minute."
        super().__init__(int((until - now).total_seconds()) + 1, detail)


class TotpEnrolment(Value, frozen=True):
    __hidden__ = frozenset({"secret", "otpauth_uri"})  # left out of repr

    secret: str
    otpauth_uri: str


# What a notice of a change of second factor says of it (its `change`)
_CHANGES = {
    SecurityEventType.TOTP_ADDED: "added",
    SecurityEventType.TOTP_REPLACED: "replaced",
    SecurityEventType.TOTP_REMOVED: "removed",
}


class CredentialService:
    def __init__(
        self,
        *,
        accounts: Accounts,
        lockout: Lockout,
        sessions: Sessions,
        population: PopulationRegister,
        passwords: PasswordPolicy,
        hasher: PasswordHasher,
        sealer: Sealer,
        events: SecurityEventLog,
        notices: NoticeQueue,
        clock: Clock,
    ) -> None:
        self._accounts = accounts
        self._lockout = lockout
        self._sessions = sessions
        self._population = population
        self._passwords = passwords
        self._hasher = hasher
        self._sealer = sealer
        self._events = events
        self._notices = notices
        self._clock = clock

    def change_password(self, session: Session, current: str, new: str) -> None:
        """The current password, then a new one under the policy; every session ends, the contacts are told.
        In a login under 15 minutes old, as every change of what logs in: a session left open (a shared
        computer's) must not lock the owner out, by wrong guesses at the current password, or shut them out."""
        now = self._clock.now()
        require_recent_login(session, now)
        person = session.person
        # its length first, before any try is counted, read or hashed: a new password too short or too long
        # is told whatever the current one (the whole check, with the person's facts, comes below)
        self._passwords.check_length(new, field="new_password")
        # a fault, or a new password refused, gives the count back: the current one was right
        with self._lockout.reserved(person, now) as reservation:
            attempt = reservation.count
            account = attempt.account
            if account is None:
                raise AuthenticationFailed("The current password is wrong.")
            if account.session_epoch != session.epoch:  # changed or reset since the session was authenticated
                raise SessionEnded("The password was changed meanwhile. Log in again.")  # nothing judged
            if not attempt.counted:  # the person is logged in: told the truth, which no outsider sees
                raise AccountLocked(account, now, self._lockout.policy)
            if not self._hasher.verify(account.password_hash, current):
                reservation.judged_wrong()  # a failure: counted, whatever fails below
                self._lockout.failed(person, now, "password-change", attempt.failures)
                raise AuthenticationFailed("The current password is wrong.")
            identity_number = self._sessions.identity_number(session)
            found = self._population.find(person)
            facts = personal_facts(found, lambda digits: digits == identity_number)  # found or not
            self._passwords.check(new, facts, field="new_password")
            password_hash = self._hasher.hash(new)
            changed = SecurityEvent(SecurityEventType.PASSWORD_CHANGED, now, str(uuid.uuid4()))
            self._notices.enqueue(
                Notice(f"{changed.reference}:password", NoticeKind.PASSWORD_CHANGED, person, proof=changed)
            )
            # the count back to zero; held on the account as read: a reset made meanwhile stands
            if not self._accounts.set_password(person, password_hash, now, events=(changed,), replacing=account):
                # every change of password ends the sessions (the epoch): this one has ended
                raise SessionEnded("The password was changed meanwhile. Log in again.")

    def begin_totp(self, session: Session, account: UserAccount) -> TotpEnrolment:
        """A new secret for an authenticator app; it counts once a code from the app confirms it.
        The app shows it as "MinID (<given name>)", never with the identity number. (`account`: the
        session's, as read to authenticate it, here and below.)"""
        require_recent_login(session, self._clock.now())
        person = self._population.find(session.person)
        # the first given name; a person the register has none for (a family name only) is "MinID"
        label = next(iter(person.given_name.split()), "MinID") if person else "MinID"
        secret = new_secret()
        sealed = self._sealer.seal(secret, purpose="totp", owner=session.person)
        if not self._accounts.set_totp_pending(session.person, sealed, account.session_epoch):
            raise SessionEnded()
        return TotpEnrolment(secret, provisioning_uri(secret, label))

    def confirm_totp(self, session: Session, account: UserAccount, code: str) -> None:
        now = self._clock.now()
        require_recent_login(session, now)
        if account.totp_pending is None:
            if self._confirmed_by(session.person, account, code, now):  # made before, and its answer lost
                return
            raise Conflict("Add an authenticator app first (POST /v1/me/totp).")
        secret = self._sealer.open(account.totp_pending, purpose="totp", owner=session.person)
        step = matching_step(secret, code, now)
        if step is None:
            # (an app added twice at once, a double click: only the code shown last is waited for)
            raise AuthenticationFailed(
                "The code from the app is wrong. Check the app's clock, and try the next code. If the app was "
                "added more than once just now, use the QR code shown last."
            )
        # in place of an app confirmed before (the write holds on the app begun as read, which a removal or another
        # confirmation meanwhile drops): told so, its codes working no more, not as a second app beside it
        kind = SecurityEventType.TOTP_REPLACED if account.has_totp else SecurityEventType.TOTP_ADDED
        added = self._told(session.person, kind, now)
        if self._accounts.confirm_totp(session.person, account.totp_pending, step, account.session_epoch, (added,)):
            return
        # not as read: the session ended meanwhile, or confirmed meanwhile by the same code (sent twice), or
        # another app begun or removed
        again = self._ended_meanwhile(account)
        if again.totp_secret != account.totp_pending:
            raise Conflict("The authenticator app was changed meanwhile. Add it again (POST /v1/me/totp).")

    def _confirmed_by(self, person: PersonKey, account: UserAccount, code: str, now: datetime) -> bool:
        """Whether the app was confirmed with this code, lately: the code is that of the step the app was
        last used at, within a code's lifetime. A confirmation retried after its answer was lost is told it
        is done, not to add an app first."""
        step = account.totp_last_step
        if account.totp_secret is None or step is None or now - step_time(step) > CODE_LIFETIME:
            return False
        return is_code_at(self._sealer.open(account.totp_secret, purpose="totp", owner=person), code, step)

    def remove_totp(self, session: Session, account: UserAccount) -> None:
        now = self._clock.now()
        require_recent_login(session, now)
        if not account.has_totp:  # removed already (a retry whose answer was lost, say)
            if account.totp_pending is not None:  # one begun and not confirmed: its QR code no longer adds it
                self._accounts.drop_totp_pending(session.person, account.totp_pending, account.session_epoch)
            return
        removed = self._told(session.person, SecurityEventType.TOTP_REMOVED, now)
        if not self._accounts.remove_totp(session.person, account.session_epoch, (removed,)):
            self._ended_meanwhile(account)  # else removed meanwhile: done

    def _ended_meanwhile(self, account: UserAccount) -> UserAccount:
        """The account read again after a change that held on the session's epoch was not written: SessionEnded
        if the epoch moved (a password changed or reset, a re-enrolment), else the account as it now is."""
        again = self._accounts.find(account.person)
        if again is None or again.session_epoch != account.session_epoch:
            raise SessionEnded()
        return again

    def _told(self, person: PersonKey, kind: SecurityEventType, now: datetime) -> SecurityEvent:
        """The event of a change of second factor, and the notice of it, queued to wait for the event."""
        event = SecurityEvent(kind, now, str(uuid.uuid4()))
        notice_id = f"{event.reference}:second-factor"
        change = {"change": _CHANGES[kind]}
        self._notices.enqueue(Notice(notice_id, NoticeKind.SECOND_FACTOR_CHANGED, person, change, proof=event))
        return event

    def _record(
        self,
        person: PersonKey,
        kind: SecurityEventType,
        now: datetime,
        reference: str,
        detail: dict[str, str] | None = None,
    ) -> None:
        self._events.record(person, SecurityEvent(kind, now, reference, detail or {}))

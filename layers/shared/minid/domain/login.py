"""Login: the identity number and password, then a second factor, then a session.

The first step answers one 401 for every failure (an unknown person, a wrong password, a locked or
inactive account), after the same work: an unknown person's password is checked against a dummy hash.
The second factor is a 6-digit code by SMS (`Minid-OTC`), a PIN code from the active letter asked for
by number (`Minid-PIN`), or a code from an authenticator app (`Minid-TOTP`).

Failures in a row (a wrong password or a wrong second factor) lock the account; each attempt is
counted before it is judged, so that concurrent attempts cannot get past the threshold.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from minid.domain.accounts import Accounts, AccountStatus, UserAccount
from minid.domain.codes import CODE_LIFETIME, MAX_CODE_TRIES, ResendPolicy, code_message, new_code
from minid.domain.contacts import ContactRegister, Language
from minid.domain.errors import AuthenticationFailed, Conflict
from minid.domain.events import SecurityEvent, SecurityEventLog, SecurityEventType
from minid.domain.identity import parse_identity_number
from minid.domain.keys import Keyer, PersonKey, Sealer
from minid.domain.letters.guard import WrongPinCodes
from minid.domain.letters.ports import PinLetters
from minid.domain.lockout import Lockout
from minid.domain.notices import Channel, NoticeQueue, SmsSender
from minid.domain.passwords import PasswordHasher
from minid.domain.random import RandomSource, new_id
from minid.domain.rate_limits import ClientLimits, Hit
from minid.domain.sessions import Amr, IssuedSession, Session, Sessions
from minid.domain.time import Clock, today_in_norway
from minid.domain.timing import EvenTiming
from minid.domain.totp import matching_step

LOGIN_LIFETIME = CODE_LIFETIME


class SecondFactor(StrEnum):
    SMS = "sms"
    PIN = "pin"
    TOTP = "totp"


AMR = {SecondFactor.SMS: Amr.ONE_TIME_CODE, SecondFactor.PIN: Amr.PIN, SecondFactor.TOTP: Amr.TOTP}


class LoginStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    login_id: str
    person: PersonKey
    second_factor: SecondFactor
    identity_sealed: str = field(repr=False)
    created_at: datetime
    expires_at: datetime
    status: LoginStatus = LoginStatus.PENDING
    tries: int = 0
    resends: int = 0
    code_hash: str | None = field(default=None, repr=False)  # the SMS code's, or the asked PIN code's
    codes_sent_at: datetime | None = None
    letter_id: str | None = None
    pin_index: int | None = None

    def open(self, now: datetime) -> bool:
        return self.status is LoginStatus.PENDING and now < self.expires_at


class LoginAttempts(Protocol):
    def begin(self, attempt: LoginAttempt, code_sent: Hit | None = None) -> bool:
        """The password was right: store the attempt, take back the failure counted for the password
        (Lockout.reserve), and count the code it sends against the client's limit, at once. False,
        storing nothing, when that limit is full."""
        ...

    def get(self, login_id: str) -> LoginAttempt | None: ...

    def claim_try(self, login_id: str, limit: int, now: datetime) -> LoginAttempt | None:
        """Count a try, atomically, if fewer than `limit` are counted and the attempt is open: the
        attempt with the try counted, or None (no such attempt, or it has ended)."""
        ...

    def end(self, login_id: str) -> None: ...

    def record_resend(self, login_id: str, code_hash: str, sent_at: datetime, resends: tuple[int, int]) -> bool:
        """The code and when it was sent, if the count of resends is still `resends[0]`: it becomes
        `resends[1]` (one more, or one less when a resend that failed to go out is given back)."""
        ...


@dataclass(frozen=True, slots=True)
class FactorUse:
    """What an accepted second factor uses up: a PIN code of the letter, or a TOTP time step."""

    letter_id: str | None = None
    pin_index: int | None = None
    totp_step: int | None = None


class LoginCompletion(Protocol):
    def complete(
        self, attempt: LoginAttempt, use: FactorUse, session: Session, events: Sequence[SecurityEvent]
    ) -> bool:
        """At once: the attempt closed, the factor used up, the session stored, the count of failures
        in a row back to zero, and the events. False, changing nothing, when another verify closed the
        attempt first or the factor was used meanwhile (a code is used once)."""
        ...


@dataclass(frozen=True, slots=True)
class LoginStarted:
    login_id: str
    second_factor: SecondFactor
    pin_index: int | None
    expires_in: int


class SecondFactorUnavailable(Conflict):
    detail = "This second factor is not available for you. Choose another, or order a new PIN code letter."


# What an unknown person's password is checked against: a real argon2id hash (of random bytes nobody
# kept) with the configured parameters, so that the check costs what a real one does.
DUMMY_HASH = "$argon2id$v=19$m=19456,t=2,p=1$rVuR29X7iO1xcb5zotSsKg$XxzvQI8YdRGH0xfGM5me4OmQ5rcQ+nUE9aaZRJimvkE"


class LoginService:
    def __init__(
        self,
        *,
        accounts: Accounts,
        lockout: Lockout,
        attempts: LoginAttempts,
        sessions: Sessions,
        contacts: ContactRegister,
        letters: PinLetters,
        hasher: PasswordHasher,
        sealer: Sealer,
        sms: SmsSender,
        events: SecurityEventLog,
        notices: NoticeQueue,
        limits: ClientLimits,
        keyer: Keyer,
        random: RandomSource,
        clock: Clock,
        allow_synthetic: bool,
        public_domain: str,
        failures: EvenTiming,
        completion: LoginCompletion,
        resend_policy: ResendPolicy | None = None,
    ) -> None:
        self._completion = completion
        self._failures = failures  # a refused login takes as long for an unknown number as for an account
        self._accounts = accounts
        self._lockout = lockout
        self._attempts = attempts
        self._wrong_pins = WrongPinCodes(letters, events, notices)
        self._sessions = sessions
        self._contacts = contacts
        self._letters = letters
        self._hasher = hasher
        self._sealer = sealer
        self._sms = sms
        self._events = events
        self._limits = limits
        self._keyer = keyer
        self._random = random
        self._clock = clock
        self._allow_synthetic = allow_synthetic
        self._public_domain = public_domain
        self._resend_policy = resend_policy or ResendPolicy()

    # ------------------------------------------------------------------ the password
    def start(
        self, identity_number: str, password: str, second_factor: SecondFactor | None, client: str
    ) -> LoginStarted:
        now = self._clock.now()
        self._limits.identity_attempt(client, now)
        number = parse_identity_number(
            identity_number, allow_synthetic=self._allow_synthetic, today=today_in_norway(self._clock)
        )
        started = self._failures.start()
        person = self._keyer.person_key(number)
        attempt = self._lockout.reserve(person, now)  # counted, and the account read, in one call
        account = attempt.account
        if account is None or account.status is not AccountStatus.ACTIVE:
            if attempt.counted:
                self._lockout.release(person)
            self._hasher.verify(DUMMY_HASH, password)  # the same work as for an account
            self._failures.short(started)  # and the time an account's failure takes
            raise AuthenticationFailed()
        if not attempt.counted:
            self._hasher.verify(account.password_hash, password)  # a locked account takes the same time
            self._record(person, SecurityEventType.LOGIN_FAILED, now, str(uuid.uuid4()), {"reason": "locked"})
            self._failures.full(started)
            raise AuthenticationFailed()
        self._lockout.unlock_expired(person, account.locked_until, now)
        if not self._hasher.verify(account.password_hash, password):
            self._lockout.failed(person, now, "password", attempt.failures)
            self._failures.full(started)
            raise AuthenticationFailed()
        try:
            if self._hasher.needs_rehash(account.password_hash):
                self._accounts.rehash_password(person, account.password_hash, self._hasher.hash(password))
            login, sms = self._second_factor(account, number.value, second_factor, client, now)
        except BaseException:
            self._lockout.release(person)  # the password was right: no login, and no failure either
            raise
        if sms is not None:
            try:
                self._sms.send_sms(*sms)
            except BaseException:
                self._attempts.end(login.login_id)  # a code that could not be sent leaves no login behind
                raise
        return LoginStarted(login.login_id, login.second_factor, login.pin_index, int(LOGIN_LIFETIME.total_seconds()))

    def _second_factor(
        self, account: UserAccount, identity_number: str, chosen: SecondFactor | None, client: str, now: datetime
    ) -> tuple[LoginAttempt, tuple[str, str] | None]:
        """The factor chosen, or the first the person has of SMS, TOTP and PIN; what it needs is read
        only when it is the one (the contact register for SMS, the active letter for PIN). The attempt
        stored, and the SMS to send (its number and text), if the factor is SMS."""
        person = account.person
        record = self._contacts.find(person) if chosen in (None, SecondFactor.SMS) else None
        mobile = record.mobile if record and record.mobile_verified_at else None
        default = SecondFactor.SMS if mobile else SecondFactor.TOTP if account.has_totp else SecondFactor.PIN
        factor = chosen or default
        login_id = new_id(self._random)
        attempt = LoginAttempt(
            login_id=login_id,
            person=person,
            second_factor=factor,
            identity_sealed=self._sealer.seal(identity_number, purpose="session", owner=person),
            created_at=now,
            expires_at=now + LOGIN_LIFETIME,
        )
        if factor is SecondFactor.SMS and mobile is not None:
            code = new_code(self._random)
            attempt = replace(
                attempt, code_hash=self._keyer.one_time_code_hash(login_id, Channel.SMS, code), codes_sent_at=now
            )
            language = record.language if record else Language.BOKMAL
            # stored, with the code counted against the client's limit, then sent (by the caller)
            code_sent = self._limits.code_to_send(client, now)
            if not self._attempts.begin(attempt, code_sent):
                raise code_sent.refused(now)
            return attempt, (mobile, code_message(code, language, self._public_domain).sms)
        if factor is SecondFactor.PIN:
            letter = self._letters.active_letter(person)
            unused = [i for i in letter.code_hashes if i not in letter.used] if letter else []
            if letter is None or not unused:
                raise SecondFactorUnavailable()
            index = unused[self._random.randbelow(len(unused))]
            # the asked code's hash goes with the attempt: the verify need not read the letter again (the
            # transaction that completes the login holds only if the code is still unused and the letter posted)
            attempt = replace(attempt, letter_id=letter.letter_id, pin_index=index, code_hash=letter.code_hashes[index])
        elif factor is SecondFactor.SMS or not account.has_totp:
            raise SecondFactorUnavailable()
        self._attempts.begin(attempt)
        return attempt, None

    # ------------------------------------------------------------------ the second factor
    def verify(self, login_id: str, code: str) -> IssuedSession:
        now = self._clock.now()
        attempt = self._attempts.claim_try(login_id, MAX_CODE_TRIES, now)  # the try counted, the attempt read
        if attempt is None:
            raise AuthenticationFailed("The login has ended. Log in again.")
        person = attempt.person
        counted = self._lockout.reserve(person, now)  # the account read in the same call
        account = counted.account
        if account is None or not counted.counted:
            raise AuthenticationFailed()
        use = self._second_factor_holds(attempt, account, code, now)
        if use is None:
            self._lockout.failed(person, now, "second-factor", counted.failures, login_id)
            if attempt.second_factor is SecondFactor.PIN and attempt.letter_id:
                self._wrong_pins.record(self._letters.get(attempt.letter_id), now)
            if attempt.tries >= MAX_CODE_TRIES:
                self._attempts.end(login_id)
            raise AuthenticationFailed("The code is wrong or has expired.")
        amr = AMR[attempt.second_factor]
        identity_number = self._sealer.open(attempt.identity_sealed, purpose="session", owner=person)
        issued = self._sessions.new(person, identity_number, (amr,), account.session_epoch, now)
        succeeded = SecurityEvent(SecurityEventType.LOGIN_SUCCEEDED, now, login_id, {"amr": amr.value})
        # one transaction: a failure before it changes nothing (the client tries again), and nothing follows it
        if not self._completion.complete(attempt, use, issued.session, (succeeded,)):
            self._lockout.release(person)
            raise AuthenticationFailed("The login has ended. Log in again.")
        return issued

    def _second_factor_holds(
        self, attempt: LoginAttempt, account: UserAccount, code: str, now: datetime
    ) -> FactorUse | None:
        """What the right code uses up, or None for a wrong (or expired) one."""
        if attempt.second_factor is SecondFactor.SMS:
            fresh = attempt.codes_sent_at is not None and now - attempt.codes_sent_at <= CODE_LIFETIME
            candidate = self._keyer.one_time_code_hash(attempt.login_id, Channel.SMS, code)
            return FactorUse() if self._keyer.matches(attempt.code_hash or "", candidate) and fresh else None
        if attempt.second_factor is SecondFactor.PIN:
            if attempt.letter_id is None or attempt.pin_index is None:
                return None
            candidate = self._keyer.pin_code_hash(attempt.letter_id, attempt.pin_index, code)
            matches = self._keyer.matches(attempt.code_hash or "", candidate)
            # still unused, of the posted letter: checked by the completion's transaction
            return FactorUse(letter_id=attempt.letter_id, pin_index=attempt.pin_index) if matches else None
        if account.totp_secret is None:
            return None
        secret = self._sealer.open(account.totp_secret, purpose="totp", owner=account.person)
        step = matching_step(secret, code, now)
        return FactorUse(totp_step=step) if step is not None and step > account.totp_last_step else None

    def resend(self, login_id: str, client: str) -> None:
        now = self._clock.now()
        attempt = self._attempts.get(login_id)
        if attempt is None or not attempt.open(now):
            raise AuthenticationFailed("The login has ended. Log in again.")
        if attempt.second_factor is not SecondFactor.SMS:
            raise Conflict("Only a code by SMS can be sent again.")
        self._resend_policy.check(attempt.resends, attempt.codes_sent_at or now, now)
        record = self._contacts.find(attempt.person)
        if record is None or record.mobile is None or record.mobile_verified_at is None:
            raise Conflict("There is no verified mobile number to send the code to.")
        self._limits.code_sent(client, now)
        code = new_code(self._random)
        code_hash = self._keyer.one_time_code_hash(login_id, Channel.SMS, code)
        count = (attempt.resends, attempt.resends + 1)
        if not self._attempts.record_resend(login_id, code_hash, now, count):
            self._resend_policy.check(attempt.resends + 1, now, now)
        try:
            self._sms.send_sms(record.mobile, code_message(code, record.language, self._public_domain).sms)
        except Exception:
            # not sent: the resend is given back, and the code sent before still holds
            sent_at = attempt.codes_sent_at or attempt.created_at
            self._attempts.record_resend(login_id, attempt.code_hash or "", sent_at, count[::-1])
            raise

    def _record(
        self,
        person: PersonKey,
        kind: SecurityEventType,
        now: datetime,
        reference: str,
        detail: dict[str, str] | None = None,
    ) -> None:
        self._events.record(person, SecurityEvent(kind, now, reference, detail or {}))

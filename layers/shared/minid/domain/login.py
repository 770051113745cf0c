"""Login: the identity number and password, then a second factor, then a session.

The first step answers one 401 for every failure (an unknown person, a wrong password, a locked or
inactive account), after the same work: an unknown person's password is checked against a dummy hash.
The second factor is a 6-digit code by SMS (`Minid-OTC`), a PIN code from the active letter asked for
by number (`Minid-PIN`), or a code from an authenticator app (`Minid-TOTP`).

Failures in a row (a wrong password or a wrong second factor) lock the account. The password step
reads everything it needs in one call (the account, the client's counts, and the contact record or the
letter the second factor may need), judges the password, and writes its judgement in one transaction
that holds only if the account is still as read: the answer is given only once it is written, so that
concurrent attempts cannot get past the threshold. A second factor is counted before it is judged.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum, StrEnum
from functools import partial
from typing import Protocol

from msgspec import field
from msgspec.structs import replace

from minid.domain.accounts import AccountChange, Accounts, AccountStatus, UserAccount, Written
from minid.domain.codes import (
    CODE_LIFETIME,
    MAX_CODE_TRIES,
    CodePurpose,
    ResendPolicy,
    code_message,
    codes_given_back_on_failure,
    counts_given_back_unless_sent,
    minutes_left,
    new_code,
    replaced_code,
    try_given_back_on_failure,
    written_by_this_resend,
)
from minid.domain.contacts import ContactRecord, ContactRegister, Language
from minid.domain.errors import AuthenticationFailed, Conflict, InvalidIdentityNumber, carry_notes
from minid.domain.events import SecurityEvent, SecurityEventLog, SecurityEventType
from minid.domain.identity import parse_identity_number
from minid.domain.keys import Keyer, PersonKey, Sealer
from minid.domain.letters.guard import WrongPinCodes
from minid.domain.letters.model import asking_order
from minid.domain.letters.ports import PinLetters
from minid.domain.lockout import Lockout, Reservation
from minid.domain.notices import Channel, MaybeSent, NoticeQueue, SmsSender, Undeliverable
from minid.domain.passwords import PasswordHasher
from minid.domain.random import RandomSource, new_id
from minid.domain.rate_limits import ClientLimits, Hit
from minid.domain.sessions import Amr, IssuedSession, Session, Sessions
from minid.domain.time import Clock, today_in_norway
from minid.domain.timing import EvenTiming
from minid.domain.totp import app_of, matching_step
from minid.values import Value

LOGIN_LIFETIME = CODE_LIFETIME
# Writes of one password's judgement, each after reading the account again because another attempt
# changed it meanwhile: enough for every attempt of a burst at one account to find it locked at last.
JUDGEMENT_WRITES = 8
MOBILE_SEAL = "login-mobile"  # what an SMS attempt's number is sealed for
NO_MOBILE = "There is no verified mobile number to send the code to."
SMS_REFUSED = (
    "Text messages cannot be delivered to your mobile number. Log in with a PIN code from your letter or "
    "your authenticator app, and change the number."
)


class SecondFactor(StrEnum):
    SMS = "sms"
    PIN = "pin"
    TOTP = "totp"


AMR = {SecondFactor.SMS: Amr.ONE_TIME_CODE, SecondFactor.PIN: Amr.PIN, SecondFactor.TOTP: Amr.TOTP}


class LoginStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    ENDED = "ended"


class LoginAttempt(Value, frozen=True):
    __hidden__ = frozenset({"identity_sealed", "code_hash", "mobile_sealed", "replaced_hashes"})  # left out of repr

    login_id: str
    person: PersonKey
    second_factor: SecondFactor
    identity_sealed: str
    created_at: datetime
    expires_at: datetime
    status: LoginStatus = LoginStatus.PENDING
    tries: int = 0
    # every try claimed, none given back (`tries` less those given back): a try's own number, for its events
    claims: int = 0
    resends: int = 0
    code_hash: str | None = None  # the SMS code's, or the asked PIN code's
    codes_sent_at: datetime | None = None
    letter_id: str | None = None
    pin_index: int | None = None
    session_epoch: int = 0  # the account's when the attempt began: a password reset since ends the attempt
    # Where an SMS attempt's code went (sealed) and in which language: a resend goes there, while it is still
    # the person's verified number (the resend's transaction checks), without reading the register first.
    mobile_sealed: str | None = None
    language: Language | None = None
    # A TOTP attempt's app (`totp.app_of`): a code of the app replaced meanwhile is no guess; the login ends.
    totp_app: str | None = None
    # The hashes of the SMS codes a resend replaced: one of them typed (an SMS late, or come out of order)
    # is told so, and is no guess: neither a failure towards the lock nor a try spent.
    replaced_hashes: tuple[str, ...] = ()

    def open(self, now: datetime) -> bool:
        return self.status is LoginStatus.PENDING and now < self.expires_at


REPLACED_CODE = replaced_code({Channel.SMS})
USED_ALREADY = "The code has been used already. Wait for the app to show a new one."


class LoginStanding(Value, frozen=True):
    """What the password step reads in one call: the account; what the second factor may need (the
    person's contact record, the id of their active letter), when asked for; the client's counts."""

    account: UserAccount | None
    contact: ContactRecord | None = None
    letter_id: str | None = None
    counts: Mapping[str, int] = field(default_factory=dict)  # hits counted so far, by counter
    # the person has died (the population register): their MinID is as none, whoever has the password
    deceased: bool = False

    def full(self, hit: Hit) -> bool:
        return self.counts.get(hit.counter, 0) >= hit.max_hits


class LoginReads(Protocol):
    def read(self, person: PersonKey, hits: Sequence[Hit], *, contact: bool, letter: bool) -> LoginStanding:
        """The account, whether the person has died, the contact record (if `contact`), the active
        letter's id (if `letter`) and the hits' counts, in one call."""
        ...


class LoginAttempts(Protocol):
    def begin(
        self, attempt: LoginAttempt, change: AccountChange, events: Sequence[SecurityEvent], hits: Sequence[Hit]
    ) -> Written:
        """The password was right: store the attempt, with the account as read (and `change` made to
        it), the events recorded and the client's hits counted, at once; or nothing."""
        ...

    def get(self, login_id: str) -> LoginAttempt | None: ...

    def claim_try(self, login_id: str, limit: int, now: datetime) -> LoginAttempt | None:
        """Count a try, atomically, if fewer than `limit` are counted and the attempt is open: the
        attempt with the try counted, or None (no such attempt, or it has ended)."""
        ...

    def refund_try(self, login_id: str) -> None:
        """Give back a try counted by `claim_try` (never below none)."""
        ...

    def end(self, login_id: str) -> None: ...

    def resent(
        self, attempt: LoginAttempt, code_hash: str, sent_at: datetime, mobile: str, hits: Sequence[Hit]
    ) -> Resend | Hit:
        """A new code, when it was sent and one more resend, with the hits counted, at once: if the attempt
        is open with its resends as read and `mobile` still the person's verified number; or nothing (then
        what stopped it: a hit whose window was full, or a `Resend`)."""
        ...

    def resend_given_back(
        self, attempt: LoginAttempt, code_hash: str, sent_at: datetime, *, at_once: bool = False
    ) -> bool:
        """The resend `resent(attempt, code_hash, sent_at, ...)` wrote, given back: the attempt's code and
        count of resends as read, again, if the code there is still the resend's, written when it was; False,
        writing nothing, else (the resend's write not made, or another's since). Whatever the time;
        `at_once`: in one attempt (after a write whose answer was lost: what time is left is short)."""
        ...


class Resend(Enum):
    """How a resend's write went: made, or what stopped it (then nothing was written)."""

    MADE = "made"
    ATTEMPT_CHANGED = "attempt-changed"  # ended, or another resend went out meanwhile
    MOBILE_CHANGED = "mobile-changed"  # no longer the person's verified number
    ACCOUNT_CHANGED = "account-changed"  # its password reset (or the person re-enrolled), or locked, since


class FactorUse(Value, frozen=True):
    """What an accepted second factor uses up: a PIN code of the letter, or a TOTP time step (of the app
    whose secret, as sealed, the code was checked against: one replaced meanwhile is not the factor); or
    what an SMS code holds on: the number it went to, still the person's verified mobile (one removed or
    replaced meanwhile, by its owner who saw the code come to a phone no longer theirs, is not the factor)."""

    __hidden__ = frozenset({"totp_secret", "mobile"})  # left out of repr

    letter_id: str | None = None
    pin_index: int | None = None
    totp_step: int | None = None
    totp_secret: str | None = None
    mobile: str | None = None


class LoginCompletion(Protocol):
    def complete(
        self, attempt: LoginAttempt, use: FactorUse, session: Session, events: Sequence[SecurityEvent]
    ) -> bool:
        """At once: the attempt closed, the factor used up, the session stored, the count of failures
        in a row back to zero, and the events. False, changing nothing, when another verify closed the
        attempt first or the factor was used meanwhile (a code is used once)."""
        ...


class LoginStarted(Value, frozen=True):
    login_id: str
    second_factor: SecondFactor
    pin_index: int | None
    expires_in: int


class _Unknown(Exception):
    """No account to judge the password against (or not an active one): refused in the time one takes."""


class SecondFactorUnavailable(Conflict):
    detail = "This second factor is not available for you. Choose another, or order a new PIN code letter."


def _sms_refused(refusal: Undeliverable) -> SecondFactorUnavailable:
    """The 409 for a number SNS refuses, with what the refusal's clean-up left undone (its notes): it is
    raised in the refusal's place, `from None`, and the notes are what the operators are told by."""
    unavailable = SecondFactorUnavailable(SMS_REFUSED)
    carry_notes(unavailable, refusal)
    return unavailable


# What an unknown person's password is checked against: a real argon2id hash (of random bytes nobody
# kept) with the configured parameters, so that the check costs what a real one does.
DUMMY_HASH = "$argon2id$v=19$m=19456,t=2,p=1$rVuR29X7iO1xcb5zotSsKg$XxzvQI8YdRGH0xfGM5me4OmQ5rcQ+nUE9aaZRJimvkE"


class LoginService:
    def __init__(
        self,
        *,
        accounts: Accounts,
        lockout: Lockout,
        reads: LoginReads,
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
        self._reads = reads
        self._lockout = lockout
        self._attempts = attempts
        self._wrong_pins = WrongPinCodes(letters, notices)
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
        tried = self._limits.identity_attempt_to_count(client, now)  # counted with the judgement
        try:
            number = parse_identity_number(
                identity_number, allow_synthetic=self._allow_synthetic, today=today_in_norway(self._clock)
            )
        except InvalidIdentityNumber:
            self._limits.count(tried, now)  # a malformed number is an attempt too
            raise
        started = self._failures.start()
        person = self._keyer.person_key(number)
        sms_maybe = second_factor in (None, SecondFactor.SMS)
        # An SMS code counts to the client and to the person (from any clients: someone who has the password
        # but not the phone must not flood it), counted only when one is sent.
        code_hits = (
            (self._limits.code_to_send(client, now), self._limits.code_to_person_to_count("login", person, now))
            if sms_maybe
            else ()
        )
        hits = (tried, *code_hits)
        # whether a try at a locked account was told this hour (_refused), read for every number alike: one
        # read, and a locked account's try written as one write, as an unknown number's is
        told = self._limits.locked_attempt_told_to_count(person, now)
        standing = self._reads.read(
            person, (*hits, told), contact=sms_maybe, letter=second_factor in (None, SecondFactor.PIN)
        )
        if standing.full(tried):
            raise tried.refused(now)  # before any hashing: a client spraying many accounts is stopped early
        # The codes are refused only when one would be sent, in the attempt's own write: the client's codes
        # used up (many people behind one address) must not stop those whose second factor is the letter or
        # an app, and the person's refused before it would tell anyone giving the number (with any
        # password) that it has an account that was sent codes, where API.md has the same 401 for all. A
        # right password refused for the person's codes is told in their history (_judged).
        try:
            attempt, sms = self._judged(
                standing,
                identity_number=number.value,
                password=password,
                chosen=second_factor,
                hits=hits,
                told=told,
                now=now,
            )
        except AuthenticationFailed:
            self._failures.full(started)
            raise
        except _Unknown:
            self._failures.short(started)  # the time an account's failure takes
            raise AuthenticationFailed() from None
        if sms is not None:
            maybe: list[Channel] = []
            # a code surely not sent (SNS refused it, or was down) gives its counts back, as every code does: a
            # short outage must not use the person's ten an hour up, and shut them out of SMS logins
            with counts_given_back_unless_sent(partial(self._limits.give_back, code_hits), maybe):
                try:
                    self._send_code(*sms, maybe=maybe)
                except BaseException as error:
                    try:
                        self._attempts.end(attempt.login_id)  # a code that could not be sent leaves no login behind
                    except Exception as failed:  # (it expires) a note on the send's own error: a 409 stays a 409
                        error.add_note(f"The login was not ended: {type(failed).__name__}")
                    if isinstance(error, Undeliverable):  # told only to one who gave the right password
                        raise _sms_refused(error) from None
                    raise
        return LoginStarted(
            attempt.login_id, attempt.second_factor, attempt.pin_index, int(LOGIN_LIFETIME.total_seconds())
        )

    def _judged(
        self,
        standing: LoginStanding,
        *,
        identity_number: str,
        password: str,
        chosen: SecondFactor | None,
        hits: tuple[Hit, ...],
        told: Hit,
        now: datetime,
    ) -> tuple[LoginAttempt, tuple[str, str] | None]:
        """The password judged, and the judgement written with the account as read (read again and
        written again while other attempts change it): the attempt begun, or AuthenticationFailed."""
        tried, account, reference = hits[0], standing.account, str(uuid.uuid4())
        judged_hash, right = "", False
        rehashed: tuple[str, str] | None = None  # the hash judged, and the password's hash made anew for it
        login: tuple[LoginAttempt, tuple[str, str] | None] | None = None
        for _ in range(JUDGEMENT_WRITES):
            if account is None or account.status is not AccountStatus.ACTIVE or standing.deceased:
                self._hasher.verify(DUMMY_HASH, password)  # the same work as for an account
                self._limits.count(tried, self._clock.now())
                raise _Unknown()
            if account.password_hash != judged_hash:  # judged again only if the password changed meanwhile
                judged_hash, right = account.password_hash, self._hasher.verify(account.password_hash, password)
            begins = right and not account.locked(now)
            unavailable: SecondFactorUnavailable | None = None
            if begins:
                judgement = self._lockout.judged(account, now, right=True, reference=reference)
                try:
                    login = login or self._second_factor(account, identity_number, chosen, standing, now)
                except SecondFactorUnavailable as error:
                    # told, as a login begun is, only once the judgement is written with the account as read:
                    # else, in a burst of attempts at once, the right password's 409 would be told after the lock
                    unavailable = error
                    written = self._accounts.judged(account.person, judgement.change, judgement.events, (tried,))
                else:
                    change, rehashed = self._rehashed(judgement.change, password, judged_hash, rehashed)
                    begun = replace(login[0], session_epoch=account.session_epoch)  # the write holds it as read
                    counted = hits if login[1] is not None else hits[:1]  # the codes' hits only for a code sent
                    written = self._attempts.begin(begun, change, judgement.events, counted)
            else:
                written = self._refused(account, now, reference, tried, None if standing.full(told) else told)
            if written.full is not None:  # nothing written
                if begins and len(hits) == 3 and written.full == hits[2]:  # a right password, refused for the
                    # codes sent to the person: told in their history
                    self._record(account.person, SecurityEventType.LOGIN_FAILED, now, reference, {"reason": "codes"})
                raise written.full.refused(now)
            # the login is told only when this round wrote it (not one made in an earlier round whose write
            # did not hold, when this round found the account locked meanwhile)
            if written.made and unavailable is not None:
                raise unavailable
            if written.made and begins and login is not None:
                return login
            if written.made:
                raise AuthenticationFailed()
            account = self._accounts.find(account.person)  # changed by another attempt meanwhile
        # Still changed at each write: the account's judgement is left to the attempts that changed it (each
        # change read here was one of them), but the client's try is counted all the same, and nothing is
        # told. (A write that only met others' transactions in flight is made again by the adapter, and
        # is a 503 if they go on: not a round here.)
        self._limits.count(tried, self._clock.now())
        raise AuthenticationFailed()

    def _rehashed(
        self, change: AccountChange, password: str, judged_hash: str, rehashed: tuple[str, str] | None
    ) -> tuple[AccountChange, tuple[str, str] | None]:
        """The password's hash kept anew in the judgement's write (no call more) when its parameters are
        not the configured ones; `rehashed`: the hash judged and the one made for it (made once, unless
        the password changed meanwhile)."""
        if not self._hasher.needs_rehash(judged_hash):
            return change, rehashed
        if rehashed is None or rehashed[0] != judged_hash:
            rehashed = (judged_hash, self._hasher.hash(password))
        return replace(change, password_hash=rehashed[1]), rehashed

    def _refused(self, account: UserAccount, now: datetime, reference: str, tried: Hit, told: Hit | None) -> Written:
        """A wrong password counted (the one that reaches the threshold locks), or an attempt at a locked
        account (the account not written): counted each time, and told to the person's history once an hour
        (`told`, None when the start's read found it told this hour: the try alone, in one write)."""
        if account.locked(now):
            if told is not None:
                failed = SecurityEvent(SecurityEventType.LOGIN_FAILED, now, reference, {"reason": "locked"})
                written = self._accounts.judged(account.person, None, (failed,), (tried, told))
                if not (written.full == told or written.stale):  # (another try told it meanwhile; or a write
                    return written  # cancelled for no reason given, the account not in it: the try alone)
            return self._accounts.judged(account.person, None, (), (tried,))
        judgement = self._lockout.judged(account, now, right=False, reference=reference)
        return self._accounts.judged(account.person, judgement.change, judgement.events, (tried,))

    def _second_factor(
        self,
        account: UserAccount,
        identity_number: str,
        chosen: SecondFactor | None,
        standing: LoginStanding,
        now: datetime,
    ) -> tuple[LoginAttempt, tuple[str, str] | None]:
        """The factor chosen, or the first the person has of SMS, TOTP and PIN. The attempt to store, and
        the SMS to send once it is stored (its number and text), if the factor is SMS."""
        person = account.person
        record = standing.contact
        mobile = record.mobile_for_codes() if record else None
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
        if factor is SecondFactor.SMS and mobile is not None and record is not None:
            code = new_code(self._random)
            attempt = replace(
                attempt,
                code_hash=self._keyer.one_time_code_hash(login_id, Channel.SMS, code),
                codes_sent_at=now,
                mobile_sealed=self._sealer.seal(mobile, purpose=MOBILE_SEAL, owner=person),
                language=record.language,
            )
            return attempt, (mobile, code_message(code, record.language, self._public_domain, CodePurpose.LOGIN).sms)
        if factor is SecondFactor.PIN:
            letter = self._letters.get(standing.letter_id) if standing.letter_id else None
            unused = [i for i in letter.code_hashes if i not in letter.used] if letter and letter.codes_work else []
            if letter is None or not unused:
                self._wrong_pins.settle(letter, now)  # one guessed out whose block was lost: blocked now, and told
                raise SecondFactorUnavailable()
            # the first unused in the person's own order (as an enrolment's or a reset's): not drawn anew at
            # each password step, or one who has the password and a single code (phished together, say)
            # would start again until that code is the one asked
            index = next(i for i in asking_order(self._keyer, person) if i in unused)
            # the asked code's hash goes with the attempt: the verify need not read the letter again (the
            # transaction that completes the login holds only if the code is still unused and the letter posted)
            attempt = replace(attempt, letter_id=letter.letter_id, pin_index=index, code_hash=letter.code_hashes[index])
        elif factor is SecondFactor.SMS or account.totp_secret is None:
            raise SecondFactorUnavailable()
        else:
            attempt = replace(attempt, totp_app=app_of(account.totp_secret))
        return attempt, None

    # ------------------------------------------------------------------ the second factor
    def verify(self, login_id: str, code: str) -> IssuedSession:
        now = self._clock.now()
        attempt = self._attempts.claim_try(login_id, MAX_CODE_TRIES, now)  # the try counted, the attempt read
        if attempt is None:
            raise AuthenticationFailed("The login has ended. Log in again.")
        person = attempt.person
        made: list[Reservation] = []  # the reservation below, once made

        def give_back() -> None:
            # A try whose code was not judged wrong (a fault, the login ended meanwhile, the account locked):
            # the person must not run out of tries while the service is down. A wrong code's try is kept.
            if not any(reservation.wrong for reservation in made):
                self._attempts.refund_try(login_id)

        # the account read in the same call as the reservation
        with try_given_back_on_failure(give_back), self._lockout.reserved(person, now) as reservation:
            made.append(reservation)
            return self._verified(attempt, reservation, code, now)

    def _failed(self, attempt: LoginAttempt, failures: int, now: datetime) -> None:
        """A wrong code's failure recorded (`failures`: the account's count with it). A wrong PIN code is
        counted against its letter in the same write, while it neither locks the account nor blocks the
        letter (one call); else the failure is recorded on its own (with the lock, at the threshold), and
        the letter read and the code counted (the fifth blocks it)."""
        person = attempt.person
        # each try its own events (two at once, in one millisecond, would otherwise write one, and one's
        # be taken for the other's write with its answer lost): the try's own number, never handed out again
        # (a try given back lowers `tries`: another at once could then be given the same)
        reference = f"{attempt.login_id}:{attempt.claims}"
        letter_id = attempt.letter_id if attempt.second_factor is SecondFactor.PIN else None
        if letter_id is not None and failures < self._lockout.policy.threshold:
            failure = self._lockout.failure(now, "second-factor", reference)
            if self._wrong_pins.record_with(letter_id, person, failure, self._events):
                return
        try:
            self._lockout.failed(person, now, "second-factor", failures, reference)
        finally:  # the guess counted against its letter whether or not the failure's write failed
            if letter_id is not None:
                self._wrong_pins.record(self._letters.get(letter_id), now)

    def _verified(self, attempt: LoginAttempt, reservation: Reservation, code: str, now: datetime) -> IssuedSession:
        person, login_id, counted = attempt.person, attempt.login_id, reservation.count
        account = counted.account
        if account is None or not counted.counted:
            raise AuthenticationFailed()
        if account.session_epoch != attempt.session_epoch:  # the password was reset after the attempt began
            self._attempts.end(login_id)  # and the count given back (`reserved`)
            raise AuthenticationFailed("The login has ended. Log in again.")
        if attempt.second_factor is SecondFactor.TOTP and not _same_app(attempt, account):
            # the app removed or replaced since the login began: no code of it can complete it, and none is a guess
            self._attempts.end(login_id)  # and the count given back (`reserved`)
            raise AuthenticationFailed("The login has ended. Log in again.")
        use = self._second_factor_holds(attempt, account, code, now)
        if use is None:
            reservation.judged_wrong()  # a failure: counted, whatever fails below
            self._failed(attempt, counted.failures, now)
            if attempt.tries >= MAX_CODE_TRIES:
                self._attempts.end(login_id)
            raise AuthenticationFailed("The code is wrong or has expired.")
        amr = AMR[attempt.second_factor]
        identity_number = self._sealer.open(attempt.identity_sealed, purpose="session", owner=person)
        issued = self._sessions.new(person, identity_number, (amr,), account.session_epoch, now)
        succeeded = SecurityEvent(SecurityEventType.LOGIN_SUCCEEDED, now, login_id, {"amr": amr.value})
        # one transaction: a failure before it changes nothing (the client tries again), and nothing follows it
        if not self._completion.complete(attempt, use, issued.session, (succeeded,)):
            if use.totp_step is not None and self._step_used_meanwhile(attempt, use.totp_step, now):
                raise AuthenticationFailed(USED_ALREADY)  # as one used before this verify: the login stays open
            # the factor no longer holds (the code's number replaced, the PIN code or app step used, the account
            # changed meanwhile): ended, as told (one completed meanwhile stays so); the count given back
            self._attempts.end(login_id)
            raise AuthenticationFailed("The login has ended. Log in again.")
        return issued

    def _step_used_meanwhile(self, attempt: LoginAttempt, step: int, now: datetime) -> bool:
        """Whether the app's code was used by another login meanwhile (the same code sent to two logins at
        once), the account otherwise as the attempt began (the same epoch and app), and this login still
        open (not completed by the same code sent to it twice at once: that is told it has ended)."""
        still = self._attempts.get(attempt.login_id)
        if still is None or not still.open(now):
            return False
        again = self._accounts.find(attempt.person)
        return (
            again is not None
            and again.session_epoch == attempt.session_epoch
            and _same_app(attempt, again)
            and again.totp_last_step >= step
        )

    def _second_factor_holds(
        self, attempt: LoginAttempt, account: UserAccount, code: str, now: datetime
    ) -> FactorUse | None:
        """What the right code uses up, or None for a wrong (or expired) one."""
        if attempt.second_factor is SecondFactor.SMS:
            fresh = attempt.codes_sent_at is not None and now - attempt.codes_sent_at <= CODE_LIFETIME
            candidate = self._keyer.one_time_code_hash(attempt.login_id, Channel.SMS, code)
            current = self._keyer.matches(attempt.code_hash or "", candidate)
            if not current and any(self._keyer.matches(replaced, candidate) for replaced in attempt.replaced_hashes):
                raise AuthenticationFailed(REPLACED_CODE)
            if not (current and fresh):
                return None
            # the number it went to, held by the completion (an attempt begun before attempts kept it: none)
            return FactorUse(mobile=self._sent_to(attempt))
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
        if step is not None and step <= account.totp_last_step:
            # the app's code, used already (a login, or the app's confirmation, within its 30 seconds): never
            # taken twice, but no guess either: neither a failure towards the lock nor a try spent
            raise AuthenticationFailed(USED_ALREADY)
        return FactorUse(totp_step=step, totp_secret=account.totp_secret) if step is not None else None

    def resend(self, login_id: str, client: str) -> None:
        now = self._clock.now()
        attempt = self._attempts.get(login_id)
        if attempt is None or not attempt.open(now):
            raise AuthenticationFailed("The login has ended. Log in again.")
        if attempt.second_factor is not SecondFactor.SMS:
            raise Conflict("Only a code by SMS can be sent again.")
        self._resend_policy.check(attempt.resends, attempt.codes_sent_at or now, now, attempt.expires_at)
        mobile, language = self._code_recipient(attempt)
        by_client = self._limits.code_to_send(client, now)
        to_person = self._limits.code_to_person_to_count("login", attempt.person, now)
        hits = (by_client, to_person)
        code = new_code(self._random)
        code_hash = self._keyer.one_time_code_hash(login_id, Channel.SMS, code)

        def written_given_back() -> None:
            # the write made and its answer lost (the SDK's retry refused, or out of time): its code will never
            # be sent, and the person's code held would have stopped working; given back, the person's count
            # with it (the client's stays, as for a send that failed). (Not made, the give-back's condition
            # refuses it: one call, in one attempt.)
            if self._attempts.resend_given_back(attempt, code_hash, now, at_once=True):
                self._limits.give_back([to_person])

        with codes_given_back_on_failure(written_given_back):
            written = self._attempts.resent(attempt, code_hash, now, mobile, hits)
        if isinstance(written, Hit):  # the client's codes, or the person's: told which
            raise written.refused(now)
        if written is Resend.MOBILE_CHANGED:
            raise Conflict("The mobile number the code went to is no longer registered and verified. Log in again.")
        if written is Resend.ACCOUNT_CHANGED:  # no code for a login that can no longer be completed
            self._attempts.end(login_id)
            raise AuthenticationFailed("The login has ended. Log in again.")
        if written is Resend.ATTEMPT_CHANGED:  # read again, to tell which
            again = self._attempts.get(login_id)
            ours = again is not None and written_by_this_resend(
                (again.resends, again.codes_sent_at, {Channel.SMS: again.code_hash or ""}),
                (attempt.resends + 1, now, {Channel.SMS: code_hash}),
            )
            if not ours:  # (ours: sent, as made)
                if again is not None and again.open(now) and again.resends > attempt.resends:
                    self._resend_policy.check(again.resends, now, now)  # another resend just now: 429 (409, last)
                raise AuthenticationFailed("The login has ended. Log in again.")  # completed, ended or expired
        maybe: list[Channel] = []

        # a code surely not sent gives the person's count back (after the code sent before is restored: the one
        # they hold); the client's stays, or one could loop resends for nothing while SNS refuses them (each
        # resend given back, its wait too)
        def unsent_given_back() -> None:
            # not sent: the resend is given back, and the code sent before still holds; one that may have come
            # (MaybeSent: in `maybe`) stands (given back, the code typed would be wrong)
            if not maybe:
                self._attempts.resend_given_back(attempt, code_hash, now)

        with counts_given_back_unless_sent(partial(self._limits.give_back, [to_person]), maybe):
            try:
                # a give-back that fails is a note on the send's own error (a number refused stays a 409)
                with codes_given_back_on_failure(unsent_given_back):
                    left = minutes_left(attempt.expires_at, now)  # the login's time runs from its start
                    message = code_message(code, language, self._public_domain, CodePurpose.LOGIN, minutes=left)
                    self._send_code(mobile, message.sms, maybe=maybe)
            except Undeliverable as error:
                raise _sms_refused(error) from None

    def _send_code(self, mobile: str, text: str, *, maybe: list[Channel]) -> None:
        """The code by SMS; when its sending fails and it may have gone all the same (MaybeSent), its
        channel is added to `maybe`: its counts stay (counts_given_back_unless_sent)."""
        try:
            self._sms.send_sms(mobile, text)
        except MaybeSent:
            maybe.append(Channel.SMS)
            raise

    def _sent_to(self, attempt: LoginAttempt) -> str | None:
        """The number the attempt's code went to, as the attempt keeps it (sealed); None if it does not."""
        sealed = attempt.mobile_sealed
        return self._sealer.open(sealed, purpose=MOBILE_SEAL, owner=attempt.person) if sealed is not None else None

    def _code_recipient(self, attempt: LoginAttempt) -> tuple[str, Language]:
        """The number the attempt's code went to, and the language; from the register for an attempt that
        does not hold them (begun before attempts kept them)."""
        mobile = self._sent_to(attempt)
        if mobile is not None and attempt.language is not None:
            return mobile, attempt.language
        record = self._contacts.find(attempt.person)
        if record is None or (mobile := record.mobile_for_codes()) is None:
            raise Conflict(NO_MOBILE)
        return mobile, record.language

    def _record(
        self,
        person: PersonKey,
        kind: SecurityEventType,
        now: datetime,
        reference: str,
        detail: dict[str, str] | None = None,
    ) -> None:
        self._events.record(person, SecurityEvent(kind, now, reference, detail or {}))


def _same_app(attempt: LoginAttempt, account: UserAccount) -> bool:
    """Whether the person still has the app the TOTP attempt began with (an attempt stored before attempts
    kept it: any app)."""
    if account.totp_secret is None:
        return False
    return attempt.totp_app is None or attempt.totp_app == app_of(account.totp_secret)

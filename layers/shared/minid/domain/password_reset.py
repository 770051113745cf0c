"""A forgotten password: a PIN code from the active letter and a code to the verified mobile (else
e-mail), then a new password. Every session ends, and the person's contacts are told.

The start answers alike for everyone: for a person who cannot reset (unknown, no MinID, no usable
letter, no verified contact) it is a decoy, asking for a code number drawn the same way and naming
a channel chosen from the person key, so that asking again gives the same channel. Real or decoy, the
start stores the reset and queues its code (sealed with its recipients; a decoy's has none, but for one
who has a MinID and contacts and no letter whose codes work: they are told so in place of a code), and
the notifier sends it: the same calls either way, however slow or throttled SMS and e-mail are.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from functools import partial
from typing import Protocol

from minid.domain.accounts import UserAccount
from minid.domain.codes import (
    CODE_LIFETIME,
    MAX_CODE_TRIES,
    counts_given_back_unless_sent,
    new_code,
    try_given_back_on_failure,
)
from minid.domain.contacts import ContactRecord, Language
from minid.domain.errors import AuthenticationFailed
from minid.domain.events import SecurityEvent, SecurityEventLog, SecurityEventType
from minid.domain.identity import IdentityNumber, parse_identity_number
from minid.domain.keys import Keyer, KeyPurpose, PersonKey
from minid.domain.letters.guard import WrongPinCodes
from minid.domain.letters.model import NO_LETTERS, LetterStanding, PinLetter, codes_to_ask
from minid.domain.letters.ports import PinLetters
from minid.domain.notices import Channel, Notice, NoticeKind, NoticeQueue, Recipients
from minid.domain.passwords import PasswordHasher, PasswordPolicy, personal_facts
from minid.domain.population import Person
from minid.domain.random import RandomSource, new_id
from minid.domain.rate_limits import ClientLimits, Hit
from minid.domain.time import Clock, date_in_norway, today_in_norway
from minid.domain.timing import EvenTiming
from minid.values import Value

RESET_LIFETIME = CODE_LIFETIME


def code_notice_id(keyer: Keyer, reset_id: str) -> str:
    """The id of a reset's code notice: not the reset's own id, for the notice's id is its sealed
    recipients' KMS encryption context, which CloudTrail records, and a reader of it could end a live
    reset with three wrong completions."""
    return f"code:{keyer.digest(KeyPurpose.NOTICE, reset_id)}"


class ResetStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    ENDED = "ended"


class PasswordReset(Value, frozen=True):
    __hidden__ = frozenset({"code_hash"})  # left out of repr

    reset_id: str
    person: PersonKey | None  # None: a decoy
    letter_id: str | None
    pin_index: int
    channel: Channel
    created_at: datetime
    expires_at: datetime
    status: ResetStatus = ResetStatus.PENDING
    tries: int = 0
    # every try claimed, none given back (`tries` less those given back): a try's own number, for its events
    claims: int = 0
    code_hash: str | None = None
    # what the code was sent on the strength of, as the start read it (a real reset's; None: not held): the
    # account's sessions' epoch, and when each contact the code went to was verified. The completion holds
    # only while they stand: a password changed, a re-enrolment or a contact replaced or removed meanwhile
    # (the person, seeing a code they did not ask for, taking the number away) ends what the code began.
    session_epoch: int | None = None
    mobile_verified_at: datetime | None = None
    email_verified_at: datetime | None = None

    def open(self, now: datetime) -> bool:
        return self.status is ResetStatus.PENDING and now < self.expires_at


class PasswordResets(Protocol):
    def create(self, reset: PasswordReset) -> None: ...

    def claim_try(self, reset_id: str, limit: int, now: datetime) -> PasswordReset | None:
        """Count a try, atomically, if fewer than `limit` are counted and the reset is open: the reset with
        the try counted, or None (no such reset, it has ended or expired, or its tries are used up)."""
        ...

    def refund_try(self, reset_id: str) -> None: ...

    def end(self, reset_id: str) -> None: ...

    def get(self, reset_id: str) -> PasswordReset | None: ...

    def claim_retry(self, reset_id: str, limit: int, now: datetime) -> PasswordReset | None:
        """Count a retry of a completed reset, atomically, if fewer than `limit` are counted and the reset
        has not expired (its item outlives that until DynamoDB's TTL takes it): the reset, or None."""
        ...


class ResetStanding(Value, frozen=True):
    """What a reset's step reads of the person, at once."""

    account: UserAccount | None
    letter: PinLetter | None  # the completion's: the reset's letter
    contact: ContactRecord | None = None  # read by the start
    person: Person | None = None  # in the population register
    letters: LetterStanding = NO_LETTERS  # read by the start


class ResetReads(Protocol):
    def for_start(self, person: PersonKey) -> ResetStanding:
        """The account, the active letter (read for everyone: the time tells nothing) and the contact record."""
        ...

    def for_completion(self, reset: PasswordReset) -> ResetStanding:
        """The reset's letter, and (unless a decoy) the account and the person in the population register."""
        ...


class ResetCompletion(Protocol):
    def complete(
        self,
        reset: PasswordReset,
        password_hash: str,
        now: datetime,
        events: Sequence[SecurityEvent],
        retried_until: datetime,
    ) -> bool:
        """At once: the PIN code used up, the new password (every session ended, the lock lifted), the
        reset done (its answer given again to a retry until `retried_until`), and the events. False,
        changing nothing, when the code or the reset is no longer usable, or what the reset's code was sent
        on the strength of no longer stands (the account's epoch, the contacts it went to)."""
        ...


class PasswordResetService:
    def __init__(
        self,
        *,
        resets: PasswordResets,
        reads: ResetReads,
        completion: ResetCompletion,
        letters: PinLetters,
        passwords: PasswordPolicy,
        hasher: PasswordHasher,
        events: SecurityEventLog,
        notices: NoticeQueue,
        codes: NoticeQueue,
        limits: ClientLimits,
        keyer: Keyer,
        random: RandomSource,
        clock: Clock,
        allow_synthetic: bool,
        starts: EvenTiming,
        wrong_codes: EvenTiming,
    ) -> None:
        # a decoy takes as long as a real reset, to start (the same calls: little to even out) and to
        # refuse codes
        self._starts = starts
        self._wrong_codes = wrong_codes
        self._resets = resets
        self._reads = reads
        self._completion = completion
        self._wrong_pins = WrongPinCodes(letters, notices)
        self._passwords = passwords
        self._hasher = hasher
        self._notices = notices
        self._codes = codes  # a reset's code, sealed with its recipients, for the notifier to send
        self._events = events
        self._limits = limits
        self._keyer = keyer
        self._random = random
        self._clock = clock
        self._allow_synthetic = allow_synthetic

    def start(self, identity_number: str, client: str) -> PasswordReset:
        now = self._clock.now()
        self._limits.identity_attempt(client, now)
        number = parse_identity_number(
            identity_number, allow_synthetic=self._allow_synthetic, today=today_in_norway(self._clock)
        )
        counted = [self._limits.code_sent(client, now)]  # for every number: that the limit is reached tells nothing
        queued: list[Notice] = []
        # a start that fails before its code is queued (AWS briefly down, the person's limit reached) gives
        # its counts back, as for every number: the limits are of codes sent. Queued, or maybe (its answer
        # lost), they stay: the notifier sends it.
        with counts_given_back_unless_sent(partial(self._limits.give_back, counted), queued):
            return self._started(number, now, counted, queued)

    def _started(
        self, number: IdentityNumber, now: datetime, counted: list[Hit], queued: list[Notice]
    ) -> PasswordReset:
        """The reset started for the identity number (the client's code counted): `counted` gets the
        person's count, and `queued` the code's notice, once it may be queued."""
        started = self._starts.start()
        person = self._keyer.person_key(number)
        # the codes sent to one person, from any number of clients: counted for every number, known or
        # not, so that a full count tells nothing
        counted.append(self._limits.code_to_person("reset", person, now))
        counted.append(self._limits.reset_code_to_person_today(person, now))
        standing = self._reads.for_start(person)
        account, record = standing.account, standing.contact
        (asked,) = codes_to_ask(self._keyer, person, standing.letters, 1)
        letter = standing.letters.letter_for((asked,))
        # the verified mobile, else the verified e-mail (the notifier sends to the e-mail, too, should
        # SNS refuse the number)
        mobile = record.mobile_for_codes() if record is not None else None
        email = record.email_for_codes() if record is not None else None
        language = record.language if record is not None else Language.BOKMAL
        # no code to the contacts of one the register has as dead: their number or address may have passed
        # to someone else (the completion refuses them too)
        alive = standing.person is None or standing.person.alive
        if letter is not None and letter.guessed_out:  # its fifth wrong code's block lost: blocked now, and told
            self._wrong_pins.settle(letter, now)
            letter = None
        usable = account is not None and letter is not None and bool(mobile or email) and alive
        reset_id = new_id(self._random)
        code = new_code(self._random)  # for a decoy too, to seal: its message is as a real one's
        kind, notice_id = NoticeKind.PASSWORD_RESET_CODE, code_notice_id(self._keyer, reset_id)
        if letter is None or not usable:
            reset = self._decoy(
                reset_id, person, asked, now, Channel.SMS if mobile else Channel.EMAIL if email else None
            )
            to = Recipients(None, None, language, code)  # no one: the notifier sends nothing
            current = (record.verified_mobile(now), record.verified_email(now)) if record else (None, None)
            if account is not None and alive and letter is None and any(current):
                # no letter whose codes work: the person is told so, in place of a code, on contacts that
                # are not stale (no one else is), once a day at most
                kind, to = NoticeKind.PASSWORD_RESET_NO_LETTER, Recipients(*current, language)
                # the same all day, and no pseudonym of the person: the id is the sealed recipients' KMS
                # encryption context, which CloudTrail records (its readers need not learn whose it is)
                day = date_in_norway(now).isoformat()
                notice_id = f"no-letter:{self._keyer.digest(KeyPurpose.NOTICE, f'{person}:{day}')}"
        else:
            channel = Channel.SMS if mobile else Channel.EMAIL
            reset = PasswordReset(
                reset_id=reset_id,
                person=person,
                letter_id=letter.letter_id,
                pin_index=asked,  # the first unused code in the person's order: the same for every start
                channel=channel,
                created_at=now,
                expires_at=now + RESET_LIFETIME,
                code_hash=self._keyer.one_time_code_hash(reset_id, channel, code),
                session_epoch=account.session_epoch if account is not None else None,
                mobile_verified_at=record.mobile_verified_at if record is not None and mobile else None,
                email_verified_at=record.email_verified_at if record is not None and email else None,
            )
            to = Recipients(mobile, email, language, code)
        # stored first, then queued: a code queued for a reset never stored would be one no one can use
        self._resets.create(reset)
        notice = Notice(
            notice_id,
            kind,
            person,
            params={"expires_at": reset.expires_at.isoformat()},
            recipients=to,
        )
        self._codes.enqueue(notice, queued)
        if reset.person is None:
            self._starts.short(started)
        else:
            self._starts.full(started)
        return reset

    def _decoy(
        self, reset_id: str, person: PersonKey, asked: int, now: datetime, channel: Channel | None
    ) -> PasswordReset:
        """`channel`: the one a real start would name, where the person has a verified contact (one with
        no usable letter names it as when they had one: it does not change as the letter does). Else: most
        people have a verified mobile, so "sms" as often, the same for the same person."""
        by_person = int(self._keyer.digest(KeyPurpose.DECOY, person)[:4], 16) % 10
        return PasswordReset(
            reset_id=reset_id,
            person=None,
            letter_id=None,
            pin_index=asked,  # as a real start would ask
            channel=channel or (Channel.EMAIL if by_person == 0 else Channel.SMS),
            created_at=now,
            expires_at=now + RESET_LIFETIME,
        )

    def complete(self, reset_id: str, pin_code: str, code: str, new_password: str) -> None:
        now = self._clock.now()
        # what holds for anyone, before anything about the person
        self._passwords.check(new_password, field="new_password")
        # timed from here: a real reset's item is read and its try counted no faster than a decoy's
        started = self._wrong_codes.start()
        reset = self._resets.claim_try(reset_id, MAX_CODE_TRIES, now)  # the try counted, the reset read
        if reset is None:
            if self._done_by(reset_id, code, new_password, now):  # made before, and its answer lost: done
                return
            raise AuthenticationFailed("The reset has ended. Start again.")
        give_back = partial(self._resets.refund_try, reset_id)
        with try_given_back_on_failure(give_back):  # until the codes are judged
            standing = self._reads.for_completion(reset)
        pin_ok, code_ok, usable = self._codes_hold(reset, standing.letter, pin_code, code, now)
        right = pin_ok and code_ok
        if right and not usable:  # the PIN code used (by this reset's own completion, maybe), or too late
            self._done_or_ended(reset_id, code, new_password, now)
            return
        if not right:
            # first: a judged guess is counted whatever fails after (the reset's end is held by its tries);
            # only a wrong PIN code given with the right code counts against the letter: a mistyped code is
            # no guess at it, and without the code no answer to a caller without the person's session tells a
            # PIN code right from wrong (their history does: `wrong`, below) (a stranger with the number alone
            # would block the person's letter in five tries, and each new one after)
            counted = code_ok and not pin_ok
            self._wrong_pins.record(standing.letter, now, counted=counted)  # the fifth blocks the letter
            if reset.tries >= MAX_CODE_TRIES:  # this was the last try
                self._resets.end(reset.reset_id)
            if reset.person is None:
                self._wrong_codes.short(started)
            else:  # in the person's own history, once per try (a request retried after its answer was lost
                # is a try of its own, and a guess: its codes are judged again), by the try's own number, with
                # what was wrong: the PIN code alone, given with the code sent, says the person's phone or
                # e-mail is in someone else's hands; the code alone, a mistyped code; both, a guess
                wrong = {"wrong": "pin-code" if code_ok else "code" if pin_ok else "both"}
                failed = SecurityEvent(
                    SecurityEventType.PASSWORD_RESET_FAILED, now, f"{reset_id}:{reset.claims}", wrong
                )
                self._events.record(reset.person, failed)
                self._wrong_codes.full(started)
            raise AuthenticationFailed()
        person, account, found = reset.person, standing.account, standing.person
        if person is None or account is None:
            raise AuthenticationFailed()
        if found is not None and not found.alive:  # as for an enrolment: a letter and a phone in other hands
            raise AuthenticationFailed()
        # found or not: the identity number is refused all the same
        facts = personal_facts(found, lambda digits: self._keyer.is_identity_number_of(digits, person))
        # the codes were right: a weak password, or a failure after, costs no try
        with try_given_back_on_failure(give_back):
            self._passwords.check(new_password, facts, field="new_password")
            password_hash = self._hasher.hash(new_password)
            done = SecurityEvent(SecurityEventType.PASSWORD_RESET, now, reset.reset_id)
            notice = Notice(f"{reset.reset_id}:reset", NoticeKind.PASSWORD_RESET, account.person, proof=done)
            self._notices.enqueue(notice)
            retried_until = now + RESET_LIFETIME  # a lost answer asked again near the reset's end is told
            completed = self._completion.complete(reset, password_hash, now, (done,), retried_until)
        if not completed:
            self._done_or_ended(reset_id, code, new_password, now)

    def _done_or_ended(self, reset_id: str, code: str, new_password: str, now: datetime) -> None:
        """Right codes that can no longer complete the reset: done if the reset was completed meanwhile with
        them and this password (the same completion sent twice, one overtaking the other), else ended, as
        its answer says (none of what stops it comes back: the same codes are not tried again and again)."""
        if not self._done_by(reset_id, code, new_password, now):
            self._resets.end(reset_id)  # one done meanwhile stays done
            raise AuthenticationFailed(
                "The PIN code was used or blocked meanwhile, the password or contact information was changed, "
                "or the code has expired. Start again."
            )

    def _done_by(self, reset_id: str, code: str, new_password: str, now: datetime) -> bool:
        """Whether the reset was completed with this code (kept, hashed, until the reset expires), and set
        this password (a retry typed anew, with another, is not told that one is set). Each such retry is
        counted, MAX_CODE_TRIES at most, and none after the reset's lifetime: else one who learnt a done
        reset's id could guess its code, and then the account's password, without end."""
        reset = self._resets.claim_retry(reset_id, MAX_CODE_TRIES, now)
        if reset is None:
            return False
        candidate = self._keyer.one_time_code_hash(reset_id, reset.channel, code)
        if not self._keyer.matches(reset.code_hash or "", candidate):
            return False
        account = self._reads.for_completion(reset).account
        return account is not None and self._hasher.verify(account.password_hash, new_password)

    def _codes_hold(
        self, reset: PasswordReset, letter: PinLetter | None, pin_code: str, code: str, now: datetime
    ) -> tuple[bool, bool, bool]:
        """Whether the PIN code is right, and the code (each compared in constant time, whatever the other
        gave), and whether they may be used: the PIN code unused, its letter's codes working, the code in time."""
        pin_ok = self._keyer.matches(
            letter.code_hashes.get(reset.pin_index, "") if letter else "",
            self._keyer.pin_code_hash(reset.letter_id or reset.reset_id, reset.pin_index, pin_code),
        )
        code_ok = self._keyer.matches(
            reset.code_hash or "", self._keyer.one_time_code_hash(reset.reset_id, reset.channel, code)
        )
        usable = letter is not None and letter.codes_work and reset.pin_index not in letter.used
        return pin_ok, code_ok, usable and now - reset.created_at <= CODE_LIFETIME

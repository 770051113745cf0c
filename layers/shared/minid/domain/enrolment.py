"""Enrolment: becoming a MinID user with the letter's PIN codes, a password, and verified contacts.

1. start: the identity number; the service asks for two of the active letter's unused codes by number.
   Every valid number gets the same shape of answer, with numbers drawn alike: an enrolment for
   someone without a usable letter (unknown, no letter, codes used up) is a decoy that no codes fit.
2. complete: the two codes, a password, a mobile number and/or e-mail. A 6-digit code goes to each.
3. verify: the codes from the mobile and e-mail. Then the account is active, the two PIN codes are
   used up, and the contact register holds the verified contacts.

Guessing is bounded: 3 wrong tries end an enrolment, a client's enrolments take some guesses an hour at
any numbers, and the person's a few at their PIN codes a day (ClientLimitPolicy), past which they judge
none. An enrolment's wrong codes do not block the letter, as 5 at logins and resets do: those need the
password or a code sent first, an enrolment only the number, and anyone who knows it could block the
person's letter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Protocol

from msgspec import field
from msgspec.structs import replace

from minid.domain.accounts import AccountStatus, UserAccount
from minid.domain.codes import (
    CODE_LIFETIME,
    MAX_CODE_TRIES,
    CodePurpose,
    ResendPolicy,
    code_message,
    codes_given_back_on_failure,
    counts_given_back_unless_sent,
    kept_replaced,
    minutes_left,
    new_code,
    replaced_code,
    try_given_back_on_failure,
    written_by_this_resend,
)
from minid.domain.contacts import (
    ContactRecord,
    InvalidContact,
    Language,
    normalize_email,
    normalize_mobile,
    same_mailbox,
)
from minid.domain.errors import AuthenticationFailed, Conflict, FieldError, InvalidInput, NotFound
from minid.domain.events import SecurityEvent, SecurityEventLog, SecurityEventType
from minid.domain.identity import parse_identity_number
from minid.domain.keys import Keyer, KeyPurpose, PersonKey
from minid.domain.letters.guard import WrongPinCodes
from minid.domain.letters.model import LetterStatus, PinLetter, codes_to_ask, letter_language
from minid.domain.letters.ports import PinLetters
from minid.domain.notices import (
    CHANNEL_NAMES,
    Channel,
    EmailSender,
    Notice,
    NoticeKind,
    NoticeQueue,
    Recipients,
    SmsSender,
    send_codes,
)
from minid.domain.passwords import PasswordHasher, PasswordPolicy, personal_facts
from minid.domain.population import Person, PersonStatus, number_in_use
from minid.domain.random import RandomSource, new_id
from minid.domain.rate_limits import ClientLimits, Hit
from minid.domain.time import Clock, today_in_norway
from minid.domain.timing import EvenTiming
from minid.values import Value

ENROLMENT_LIFETIME = timedelta(minutes=15)
MAX_PIN_TRIES = 3
MAX_VERIFY_TRIES = MAX_CODE_TRIES
ENDED = "The enrolment has ended or does not exist. Start again."
ACTIVE = "The enrolment is complete and the account active. Log in."
# (not "these were not saved": this completion's own write, its answer lost, may have been the one whose code
# activated the account)
ACTIVATED_MEANWHILE = (
    "The account was activated meanwhile, by a code entered elsewhere. Log in with the password given with "
    "the contacts that code went to; the password and contacts given here may not have been saved."
)
# a resend that met a verify of one of its contacts: it sent nothing
VERIFIED_MEANWHILE = "A contact was verified meanwhile. Ask again for a new code if one is still waiting."
# wrong PIN codes, and every other refusal of a completion that must look like them (a decoy's, the day's
# guesses used up): the same words for all
NOT_MATCHING = f"{AuthenticationFailed.detail} After many wrong PIN codes in a day, none are taken until the next day."


class EnrolmentStatus(StrEnum):
    STARTED = "started"  # waiting for the PIN codes, the password and the contacts
    VERIFYING = "verifying"  # waiting for the codes sent to the contacts
    ACTIVE = "active"  # done: the account is active
    ENDED = "ended"  # too many wrong tries, or the codes were used meanwhile


class PendingContacts(Value, frozen=True):
    __hidden__ = frozenset({"mobile", "email"})  # left out of repr

    mobile: str | None
    email: str | None
    language: Language

    @property
    def channels(self) -> tuple[Channel, ...]:
        return tuple(c for c, value in ((Channel.SMS, self.mobile), (Channel.EMAIL, self.email)) if value)


class Completion(Value, frozen=True):
    """What a completion stores, with the resends counted (completed again, its codes are sent again, and
    those it replaces are kept: `replaced_hashes`)."""

    __hidden__ = frozenset({"password_hash", "contacts", "code_hashes", "replaced_hashes"})  # left out of repr

    password_hash: str
    contacts: PendingContacts
    code_hashes: Mapping[Channel, str]
    sent_at: datetime
    resends: int
    replaced_hashes: tuple[str, ...] = ()


class Enrolment(Value, frozen=True):
    __hidden__ = frozenset({"password_hash", "contacts", "code_hashes", "replaced_hashes"})  # left out of repr

    enrolment_id: str
    person: PersonKey | None  # None: a decoy, for a number without a usable letter
    letter_id: str | None
    pin_indices: tuple[int, int]
    status: EnrolmentStatus
    created_at: datetime
    expires_at: datetime
    pin_tries: int = 0
    verify_tries: int = 0
    # every try claimed, none given back (`tries` less those given back): a try's own number, for its events
    claims: int = 0
    password_hash: str | None = None
    contacts: PendingContacts | None = None
    code_hashes: Mapping[Channel, str] = field(default_factory=dict)
    codes_sent_at: datetime | None = None
    resends: int = 0
    verified: Mapping[Channel, datetime] = field(default_factory=dict)
    # the hashes of the codes a resend or a completion made again replaced (`kept_replaced`)
    replaced_hashes: tuple[str, ...] = ()
    # the key of the number it was started with, whose guesses a day it counts: the person's, and a decoy's
    # too (its completions then make the same calls as a real one's, and fail alike)
    guesses_of: PersonKey | None = None

    def open(self, now: datetime) -> bool:
        return now < self.expires_at and self.status in (EnrolmentStatus.STARTED, EnrolmentStatus.VERIFYING)

    @property
    def expires_in(self) -> int:
        return int((self.expires_at - self.created_at).total_seconds())


class Enrolments(Protocol):
    def create(self, enrolment: Enrolment) -> None: ...

    def get(self, enrolment_id: str) -> Enrolment | None: ...

    def claim_pin_try(self, enrolment_id: str, limit: int, now: datetime) -> Enrolment | None:
        """Count a try of the PIN codes, atomically, if fewer than `limit` are counted and the enrolment is
        open: the enrolment with the try counted, or None (no such enrolment, it has ended or expired, or
        its tries are used up)."""
        ...

    def refund_pin_try(self, enrolment_id: str) -> None: ...

    def refund_verify_try(self, enrolment_id: str) -> None: ...

    def claim_verify_try(self, enrolment_id: str, limit: int, now: datetime) -> Enrolment | None:
        """Count a try of the verification codes likewise, if the enrolment is waiting for them."""
        ...

    def end(self, enrolment_id: str) -> None: ...

    def record_completion(self, enrolment_id: str, completion: Completion, *, as_read: Enrolment) -> bool:
        """The password and the contacts, waiting for their codes; the PIN try of the right codes given
        back. False, writing nothing, when the enrolment is no longer as read (its status, its codes sent,
        its resends): completed or resent meanwhile, or ended."""
        ...

    def keep_replaced(self, enrolment_id: str, replaced: Sequence[str]) -> None:
        """The hashes `replaced` added to those kept of replaced codes, while the enrolment waits for codes."""
        ...

    def record_resend(
        self,
        enrolment_id: str,
        code_hashes: Mapping[Channel, str],
        sent: tuple[datetime, datetime],
        resends: tuple[int, int],
        *,
        replaced: Sequence[str] = (),
        giving_back: Mapping[Channel, str] | None = None,
    ) -> bool:
        """Replace the unverified codes, if the codes were still last sent at `sent[0]` and the count of
        resends is still `resends[0]` (no other resend, and no completion made again with other contacts,
        came first); they become `sent[1]` and `resends[1]`. The hashes `replaced` are added to those kept
        of replaced codes (none when the codes sent before are given back: `giving_back`, the codes the
        resend wrote, which must still be there; a write made whatever the time, minid.deadline.exempt)."""
        ...

    def mark_verified(
        self, enrolment: Enrolment, channels: Sequence[Channel], at: datetime, unverified: Sequence[Channel]
    ) -> bool:
        """Mark `channels` verified, if no codes were sent since `enrolment` was read, it still waits for
        them, and `unverified` still are; else False, marking nothing."""
        ...


class AccountAsRead(Value, frozen=True):
    """Of the account an enrolment replaces, what the new one keeps or follows: when it was made, and its
    sessions' epoch (the new account's is the next; the activation holds only while it is unchanged). Not
    its password hash nor its app's sealed secret: the enrolment has no use for them, and may not read them."""

    created_at: datetime
    session_epoch: int = 0


class EnrolmentReads(Protocol):
    def for_activation(
        self, person: PersonKey
    ) -> tuple[AccountAsRead | None, ContactRecord | None, PersonStatus | None]:
        """At once: of the person's account, if they have one (a re-enrolment), what `AccountAsRead` holds;
        their contact record, if they have one; and their status in the population register (they may have
        died, had their number replaced or been taken out since the completion; None: not there)."""
        ...

    def for_completion(self, enrolment: Enrolment) -> tuple[PinLetter | None, Person | None]:
        """At once: the enrolment's letter, and (unless a decoy's) the person in the population register."""
        ...


class Activation(StrEnum):
    """How an activation went: all of it made, or none of it, and why."""

    MADE = "made"
    PIN_CODES_UNUSABLE = "pin-codes-unusable"  # the letter's codes were used or blocked meanwhile
    CHANGED = "changed"  # the enrolment is not as read (new codes, another verify), or a write was in flight


class AccountActivation(Protocol):
    def activate(
        self,
        enrolment: Enrolment,
        account: UserAccount,
        contact: ContactRecord,
        now: datetime,
        *,
        events: Sequence[SecurityEvent],
        replacing: AccountAsRead | None = None,
        contact_as_read: ContactRecord | None = None,
    ) -> Activation:
        """All at once: the account (in place of `replacing`, the person's account as read, if it is
        still so: its sessions' epoch unchanged), the contact register record (in place of
        `contact_as_read`, if it is still so: a reservation or a contact verified meanwhile is not lost),
        the two PIN codes used up,
        the enrolment active, and the events; or, when the PIN codes are no longer usable or the
        enrolment or the account is not as read, none of them."""
        ...


class VerificationResult(Value, frozen=True):
    status: EnrolmentStatus
    remaining: tuple[Channel, ...]


class EnrolmentService:
    def __init__(
        self,
        *,
        reads: EnrolmentReads,
        letters: PinLetters,
        enrolments: Enrolments,
        activation: AccountActivation,
        passwords: PasswordPolicy,
        hasher: PasswordHasher,
        sms: SmsSender,
        email: EmailSender,
        notices: NoticeQueue,
        events: SecurityEventLog,
        keyer: Keyer,
        random: RandomSource,
        clock: Clock,
        allow_synthetic: bool,
        public_domain: str,
        starts: EvenTiming,
        wrong_codes: EvenTiming,
        limits: ClientLimits,
        resend_policy: ResendPolicy | None = None,
    ) -> None:
        self._limits = limits
        # a decoy takes as long as a real enrolment (with a letter to read), to start and to refuse codes
        self._starts = starts
        self._wrong_codes = wrong_codes
        self._reads = reads
        self._letters = letters
        self._enrolments = enrolments
        self._wrong_pins = WrongPinCodes(letters, notices)
        self._activation = activation
        self._passwords = passwords
        self._hasher = hasher
        self._sms = sms
        self._email = email
        self._notices = notices
        self._events = events
        self._keyer = keyer
        self._random = random
        self._clock = clock
        self._allow_synthetic = allow_synthetic
        self._public_domain = public_domain
        self._resend_policy = resend_policy or ResendPolicy()

    # ------------------------------------------------------------------ 1. start
    def start(self, identity_number: str, client: str) -> Enrolment:
        self._limits.identity_attempt(client, self._clock.now())  # for every number: that it is full tells nothing
        number = parse_identity_number(
            identity_number, allow_synthetic=self._allow_synthetic, today=today_in_norway(self._clock)
        )
        started = self._starts.start()
        person = self._keyer.person_key(number)
        standing = self._letters.standing(person)
        first, second = codes_to_ask(self._keyer, person, standing, 2)
        letter = standing.letter_for((first, second))
        usable = letter is not None
        now = self._clock.now()
        enrolment = Enrolment(
            enrolment_id=new_id(self._random),
            person=person if usable else None,
            letter_id=letter.letter_id if usable and letter else None,
            pin_indices=(min(first, second), max(first, second)),
            status=EnrolmentStatus.STARTED,
            created_at=now,
            expires_at=now + ENROLMENT_LIFETIME,
            guesses_of=person,
        )
        self._enrolments.create(enrolment)
        if usable:
            self._starts.full(started)
        else:
            self._starts.short(started)
        return enrolment

    # ------------------------------------------------------------------ 2. complete
    def complete(
        self,
        enrolment_id: str,
        *,
        client: str,
        pin_codes: Mapping[int, str],
        password: str,
        mobile: str | None,
        email: str | None,
        language: Language | None = None,
    ) -> tuple[Channel, ...]:
        """`language`: for the codes, the contact register and notices; None, the letter's (what the person
        chose when it was ordered: their record's on a re-enrolment; English for a letter abroad)."""
        contacts = _pending_contacts(mobile, email, language or Language.BOKMAL)  # its language settled below
        self._passwords.check(password)  # what holds for anyone, before anything about the person
        now = self._clock.now()
        # timed from here: a real enrolment's item is read and its try counted no faster than a decoy's,
        # and a decoy reads a letter too (one that does not exist), and takes as long to be refused
        started = self._wrong_codes.start()
        enrolment = self._enrolments.claim_pin_try(enrolment_id, MAX_PIN_TRIES, now)  # counted, and read
        if enrolment is None:
            self._open(enrolment_id, now)  # only to tell why: active (Conflict), or ended
            raise NotFound(ENDED)
        give_back = partial(self._enrolments.refund_pin_try, enrolment_id)
        with try_given_back_on_failure(give_back):  # until the codes are judged
            if set(pin_codes) != set(enrolment.pin_indices):  # not the codes asked for: no try of them
                raise AuthenticationFailed(
                    "Give the two PIN codes the service asked for, by their numbers.",
                    errors=(FieldError("pin_codes", f"Codes number {enrolment.pin_indices} are asked for."),),
                )
            letter, found = self._reads.for_completion(enrolment)
            # the guess counted before the codes are judged, on the client's guesses an hour and the number's a
            # day (a decoy's too; its codes are never right); the number's None: its day's are used up
            guessing = enrolment.guesses_of
            by_client, guess = self._limits.enrolment_pin_guess(client, guessing, now) if guessing else (None, None)
            capped = guessing is not None and guess is None
            right, usable = (False, False) if capped else self._codes_judged(enrolment, letter, pin_codes)
            if right:  # the right codes: no guess
                self._limits.give_back([hit for hit in (by_client, guess) if hit is not None])
        if not (right and usable):
            # first: a judged guess is in the person's history whatever fails after (the enrolment's end is
            # held by its tries already claimed: ended or not, it takes no more)
            if not (right or capped):
                self._guessed(enrolment, letter, now)
            elif right:  # right codes used meanwhile (another tab, a login), or of a letter since blocked: no
                self._wrong_pins.settle(letter, now)  # guess; of one guessed out whose block was lost: blocked now
            if enrolment.pin_tries >= MAX_PIN_TRIES:  # this was the last try
                self._enrolments.end(enrolment_id)
            if enrolment.person is None or capped:  # (capped: nothing judged, no history written)
                self._wrong_codes.short(started)
            else:
                self._wrong_codes.full(started)
            raise AuthenticationFailed(NOT_MATCHING)
        person = enrolment.person
        # a decoy never matches (unreachable); a letter posted before a death, in other hands: no MinID
        # for the dead; nor a new one with a number replaced since (the person enrols with the new one)
        if person is None or found is None or not found.in_use or letter is None:
            raise AuthenticationFailed(NOT_MATCHING)
        contacts = _in_language(contacts, language, found, letter)
        # the codes were right: a weak password, or a failure after, costs no try
        with try_given_back_on_failure(give_back):
            self._passwords.check(
                password, personal_facts(found, lambda digits: self._keyer.is_identity_number_of(digits, person))
            )
            # the same completion, its answer lost: its codes were sent, and hold (nothing sent again)
            made_before = self._made_before(enrolment, contacts, password, now)
            given_back = not made_before and self._sent_and_recorded(
                enrolment, person, contacts, password, client=client, now=now
            )
        if not given_back:  # out of the block above: a give-back that fails is not made twice
            give_back()
        return contacts.channels

    def _sent_and_recorded(
        self,
        enrolment: Enrolment,
        person: PersonKey,
        contacts: PendingContacts,
        password: str,
        *,
        client: str,
        now: datetime,
    ) -> bool:
        """The completion's codes sent, and the completion recorded (`_recorded`): whether the try was
        given back with it."""
        # completed again (other contacts, say): its codes are sent again, as a resend
        again = enrolment.status is EnrolmentStatus.VERIFYING
        if again:
            self._resend_policy.check(enrolment.resends, enrolment.codes_sent_at or now, now, enrolment.expires_at)
        counted = self._codes_to_send(client, person, now)
        sent: list[Channel] = []
        with counts_given_back_unless_sent(partial(self._limits.give_back, counted), sent):
            enrolment_id = enrolment.enrolment_id
            codes = {channel: new_code(self._random) for channel in contacts.channels}
            hashes = {c: self._keyer.one_time_code_hash(enrolment_id, c, code) for c, code in codes.items()}
            password_hash = self._hasher.hash(password)
            left = minutes_left(enrolment.expires_at, now)  # the enrolment's time runs from its start
            # first: codes that cannot be sent leave the enrolment as it was
            self._send_codes(contacts, codes, left, sent, resent=False)
        # gives the try back itself, in the same write; held on the enrolment as read (its codes sent
        # and resends): a completion or resend meanwhile, or its end, leaves this one unwritten
        replaced = kept_replaced(enrolment.replaced_hashes, enrolment.code_hashes.values())
        completion = Completion(password_hash, contacts, hashes, now, enrolment.resends + again, replaced)
        return self._recorded(enrolment_id, completion, enrolment, password, now)

    def _recorded(
        self, enrolment_id: str, completion: Completion, as_read: Enrolment, password: str, now: datetime
    ) -> bool:
        """The completion written, and with it the try given back (True). Refused: fine when the write was
        this completion's own, made and its answer lost (the SDK's retry refused: True), or the same
        completion sent at the same moment (a double click), whose write came first (False: this one's try
        is still to give back); else the enrolment changed or ended meanwhile (Conflict, NotFound)."""
        if self._enrolments.record_completion(enrolment_id, completion, as_read=as_read):
            return True
        stored = self._open(enrolment_id, now, ACTIVATED_MEANWHILE)  # (by another tab's codes, say)
        if stored.password_hash == completion.password_hash:  # each hash has its own salt
            return True
        if self._made_before(stored, completion.contacts, password, now):
            # this one's codes went out too, and the person may type one: kept as replaced, it is told so
            # (no try spent), not judged a wrong code
            self._enrolments.keep_replaced(enrolment_id, list(completion.code_hashes.values()))
            return False
        raise Conflict("The enrolment changed meanwhile. Give the codes again.")

    def _made_before(self, enrolment: Enrolment, contacts: PendingContacts, password: str, now: datetime) -> bool:
        """Whether the enrolment was completed with these contacts and this password, and its codes still
        hold: a completion made again whose answer was lost. Answered as it was, and nothing sent again: a
        new code would replace the one the person may be typing, and spend a resend. (Once the codes have
        expired, the same completion sends new ones, as a resend.)"""
        sent = enrolment.codes_sent_at
        return (
            enrolment.status is EnrolmentStatus.VERIFYING
            and sent is not None
            and now - sent < CODE_LIFETIME
            and enrolment.contacts == contacts
            and enrolment.password_hash is not None
            and self._hasher.verify(enrolment.password_hash, password)
        )

    def _codes_to_send(self, client: str, person: PersonKey, now: datetime) -> list[Hit]:
        """Counted before any is sent: the client's codes, and the person's over all their enrolments (the
        hits, to give back if none is sent)."""
        by_client = self._limits.code_sent(client, now)
        # over all of the person's enrolments: with the letter, one could start them without end, each
        # sending to any number given (refused: the client's given back, as nothing is sent)
        with counts_given_back_unless_sent(partial(self._limits.give_back, [by_client]), ()):
            return [by_client, self._limits.code_to_person("enrolment", person, now)]

    def _open(self, enrolment_id: str, now: datetime, active: str = ACTIVE) -> Enrolment:
        """The enrolment, open; else NotFound, or Conflict (`active`) when it is done: the account is active,
        and the person is told to log in rather than start again (which would end their sessions, and tell
        their contacts of a re-enrolment)."""
        enrolment = self._enrolments.get(enrolment_id)
        if enrolment is not None and enrolment.status is EnrolmentStatus.ACTIVE:
            raise Conflict(active)
        if enrolment is None or not enrolment.open(now):
            raise NotFound(ENDED)
        return enrolment

    def _guessed(self, enrolment: Enrolment, letter: PinLetter | None, now: datetime) -> None:
        """Wrong codes of the person's posted letter: in the person's history, as a login's or a reset's
        wrong codes are (counted already, among the day's guesses: not against the letter, see above)."""
        person = enrolment.person
        if person is None or letter is None or letter.status is not LetterStatus.DISPATCHED:
            return
        # each try its own event (two at once would otherwise write one): the try's own number, never handed
        # out again (a try given back lowers `pin_tries`: another at once could then be given the same)
        reference = f"{enrolment.enrolment_id}:{enrolment.claims}"
        failure = SecurityEvent(SecurityEventType.ENROLMENT_FAILED, now, reference, {"reason": "pin-codes"})
        self._events.record(person, failure)

    def _codes_judged(
        self, enrolment: Enrolment, letter: PinLetter | None, pin_codes: Mapping[int, str]
    ) -> tuple[bool, bool]:
        """Whether both codes are the letter's, compared in constant time (both, whatever the first gave),
        and whether they can still be used (the letter posted, neither used)."""
        results = []
        for index in enrolment.pin_indices:
            stored = letter.code_hashes.get(index, "") if letter else ""
            candidate = self._keyer.pin_code_hash(
                enrolment.letter_id or enrolment.enrolment_id, index, pin_codes[index]
            )
            results.append(self._keyer.matches(stored or "-" * len(candidate), candidate))
        usable = letter is not None and letter.codes_work and not any(i in letter.used for i in enrolment.pin_indices)
        return all(results), usable

    def _send_codes(
        self,
        contacts: PendingContacts,
        codes: Mapping[Channel, str],
        minutes: int,
        sent: list[Channel],
        *,
        resent: bool,
    ) -> None:
        """Each code to its contact, in turn, saying the `minutes` it works; each channel sent to (or that
        may have been) is added to `sent` as it goes. `resent`: a resend's codes, written before they are
        sent (send_codes)."""
        to, purpose = {Channel.SMS: contacts.mobile, Channel.EMAIL: contacts.email}, CodePurpose.ENROLMENT
        messages = {
            channel: (address, code_message(code, contacts.language, self._public_domain, purpose, minutes=minutes))
            for channel, code in codes.items()
            if (address := to[channel])
        }
        send_codes(self._sms, self._email, messages, sent, resent=resent)

    # ------------------------------------------------------------------ resend
    def resend(self, enrolment_id: str, client: str) -> tuple[Channel, ...]:
        now = self._clock.now()
        enrolment = self._open(enrolment_id, now)
        if enrolment.status is not EnrolmentStatus.VERIFYING or enrolment.contacts is None:
            raise Conflict("Complete the enrolment first; then codes are sent to the contacts.")
        sent_before = enrolment.codes_sent_at or now  # a completed enrolment's codes were sent
        self._resend_policy.check(enrolment.resends, sent_before, now, enrolment.expires_at)
        counted = self._codes_to_send(client, enrolment.person, now) if enrolment.person is not None else []
        sent: list[Channel] = []
        # given back if none is sent: the resend's write refused (one came first, say), or the send failed
        with counts_given_back_unless_sent(partial(self._limits.give_back, counted), sent):
            pending = [c for c in enrolment.contacts.channels if c not in enrolment.verified]
            codes = {channel: new_code(self._random) for channel in pending}
            hashes = {c: self._keyer.one_time_code_hash(enrolment_id, c, code) for c, code in codes.items()}
            count = (enrolment.resends, enrolment.resends + 1)
            replaced = tuple(enrolment.code_hashes[c] for c in pending if c in enrolment.code_hashes)
            before = {c: enrolment.code_hashes[c] for c in pending if c in enrolment.code_hashes}

            def given_back() -> None:  # the codes sent before, if this resend's are written (none sent)
                self._enrolments.record_resend(
                    enrolment_id, before, (now, sent_before), count[::-1], giving_back=hashes
                )

            with codes_given_back_on_failure(given_back):
                written = self._enrolments.record_resend(
                    enrolment_id, hashes, (sent_before, now), count, replaced=replaced
                )
            if not written:
                # activated or ended meanwhile: no code waits (Conflict or NotFound, as for any resend after it)
                again = self._open(enrolment_id, now)
                if not written_by_this_resend(
                    (again.resends, again.codes_sent_at, again.code_hashes), (count[1], now, hashes)
                ):  # (else: sent)
                    if any(c in again.verified for c in pending):  # in another tab, say: nothing sent
                        raise Conflict(VERIFIED_MEANWHILE)
                    # another resend came first, or the enrolment was completed again (with other contacts, maybe)
                    self._resend_policy.check(enrolment.resends + 1, now, now)

            def unsent_given_back() -> None:
                # Nothing went out: the codes sent before are given back, with their time, and the resend is not
                # counted. A code that went out (the SMS, when the e-mail failed after it) stands, and so does the
                # resend, whose time the codes share: the e-mail's code from before is not given back (its time
                # would be the resend's, and a code expired or about to be would work 10 minutes more); a resend
                # sends the e-mail a new one.
                if not sent:
                    given_back()

            with codes_given_back_on_failure(unsent_given_back):
                self._send_codes(enrolment.contacts, codes, minutes_left(enrolment.expires_at, now), sent, resent=True)
        return tuple(pending)

    # ------------------------------------------------------------------ 3. verify
    def verify(self, enrolment_id: str, codes: Mapping[Channel, str]) -> VerificationResult:
        now = self._clock.now()
        if not codes:
            raise AuthenticationFailed("Give the code sent to your mobile or e-mail.")
        enrolment = self._enrolments.claim_verify_try(enrolment_id, MAX_VERIFY_TRIES, now)  # counted, and read
        if enrolment is None:  # only to tell why: active, ended (NotFound), or not yet waiting for codes
            done = self._enrolments.get(enrolment_id)
            if done is not None and done.status is EnrolmentStatus.ACTIVE:
                if self._all_right(done, codes):  # a retry (its answer lost): the same answer
                    return VerificationResult(EnrolmentStatus.ACTIVE, ())
                raise Conflict(ACTIVE)
            waiting = self._open(enrolment_id, now)
            if waiting.status is not EnrolmentStatus.VERIFYING or waiting.contacts is None:
                raise Conflict("Complete the enrolment first; then codes are sent to the contacts.")
            raise NotFound("The enrolment has ended. Start again.")
        if enrolment.contacts is None:  # waiting for codes: it has its contacts
            raise Conflict("Complete the enrolment first; then codes are sent to the contacts.")
        if none_sent := [c for c in codes if c not in enrolment.contacts.channels]:
            # a code for a contact not given (a form sending every field it has), or given up by a completion made
            # again: none can be right, so it is no guess, and no try is spent
            self._enrolments.refund_verify_try(enrolment_id)
            raise InvalidInput(
                "A code was given for a contact the enrolment does not have.",
                errors=tuple(
                    FieldError(
                        f"{CHANNEL_NAMES[c]}_code", "No code is waiting there: the enrolment has no such contact."
                    )
                    for c in none_sent
                ),
            )
        expired = enrolment.codes_sent_at is None or now - enrolment.codes_sent_at > CODE_LIFETIME
        right = self._right(enrolment, codes)
        give_back = partial(self._enrolments.refund_verify_try, enrolment_id)
        if replaced := self._replaced(enrolment, codes, right):  # no guess: no try spent, nothing ended
            with try_given_back_on_failure(give_back):
                raise AuthenticationFailed(replaced_code(replaced))
        if expired or len(right) != len(codes):
            if enrolment.verify_tries >= MAX_VERIFY_TRIES:  # this was the last try
                self._enrolments.end(enrolment_id)
            raise AuthenticationFailed("The code is wrong or has expired.")
        # the codes were right: they cost no try, nor does AWS briefly down now
        with try_given_back_on_failure(give_back):
            result = self._record_verified(enrolment, right, now)
        if result.status is EnrolmentStatus.VERIFYING:  # active: its tries no longer count
            give_back()
        return result

    def _right(self, enrolment: Enrolment, codes: Mapping[Channel, str]) -> list[Channel]:
        """The channels whose given code is the one sent (compared in constant time)."""
        return [
            channel
            for channel, code in codes.items()
            if self._keyer.matches(
                enrolment.code_hashes.get(channel, ""),
                self._keyer.one_time_code_hash(enrolment.enrolment_id, channel, code),
            )
        ]

    def _replaced(self, enrolment: Enrolment, codes: Mapping[Channel, str], right: Sequence[Channel]) -> list[Channel]:
        """The channels of the codes given that are not right, when each is one a newer code replaced (else
        none: a wrong code among them makes the request a guess)."""
        wrong = [channel for channel in codes if channel not in right]
        # a contact given up is none (verify answers a code for one 422 before this: kept as a defence)
        waiting = enrolment.contacts.channels if enrolment.contacts else ()
        candidates = {
            c: self._keyer.one_time_code_hash(enrolment.enrolment_id, c, codes[c]) for c in wrong if c in waiting
        }
        replaced = [
            channel
            for channel, candidate in candidates.items()
            if any(self._keyer.matches(old, candidate) for old in enrolment.replaced_hashes)
        ]
        return replaced if replaced == wrong else []

    def _all_right(self, enrolment: Enrolment, codes: Mapping[Channel, str]) -> bool:
        return bool(codes) and len(self._right(enrolment, codes)) == len(codes)

    def _record_verified(self, enrolment: Enrolment, right: Sequence[Channel], now: datetime) -> VerificationResult:
        """The contacts of the right codes verified, and with the last of them the account activated;
        each write holds only while the enrolment is as read. A verify of the other contact made
        meanwhile is taken in (the two together may be the last), and one that activated it is its answer."""
        for _ in range(len(Channel) + 1):  # each further round: another contact was verified meanwhile
            contacts = enrolment.contacts
            if contacts is None:  # a verifying enrolment has them
                raise Conflict("Complete the enrolment first; then codes are sent to the contacts.")
            verified = {**enrolment.verified, **dict.fromkeys(right, now)}
            remaining = tuple(c for c in contacts.channels if c not in verified)
            if remaining:
                if self._enrolments.mark_verified(enrolment, right, now, unverified=remaining):
                    return VerificationResult(EnrolmentStatus.VERIFYING, remaining)
            else:  # the last code: verified with the activation
                activation = self._activate(replace(enrolment, verified=verified))
                if activation is Activation.MADE:
                    return VerificationResult(EnrolmentStatus.ACTIVE, ())
                if activation is Activation.PIN_CODES_UNUSABLE:
                    self._enrolments.end(enrolment.enrolment_id)
                    raise Conflict("The PIN codes were used or blocked meanwhile. Start again.")
            current = self._enrolments.get(enrolment.enrolment_id)
            if current is not None and current.status is EnrolmentStatus.ACTIVE:
                return VerificationResult(EnrolmentStatus.ACTIVE, ())  # activated by a verify made meanwhile
            if current is None or not current.open(now) or current.status is not EnrolmentStatus.VERIFYING:
                raise NotFound(ENDED)
            if current.codes_sent_at != enrolment.codes_sent_at:
                raise AuthenticationFailed("New codes were sent meanwhile. Give the newest.")
            enrolment = current  # another contact verified meanwhile, or a write in flight: again
        raise Conflict("The enrolment changed meanwhile. Try again.")

    def _activate(self, enrolment: Enrolment) -> Activation:
        """The account activated, as of this try's own time: its notices wait for its event, so that those
        of a try whose write failed (the old contacts read then, changed before the next try) are never
        proven, and go to no one."""
        now = self._clock.now()
        person, contacts = enrolment.person, enrolment.contacts
        if person is None or contacts is None or enrolment.password_hash is None:
            raise Conflict("The enrolment cannot be activated.")
        existing, registered, status = self._reads.for_activation(person)
        # died since the completion, the number replaced, or taken out of the register: as the completion
        # refuses each of them
        if status is None or not number_in_use(status):
            self._enrolments.end(enrolment.enrolment_id)
            raise AuthenticationFailed()
        old_contacts = registered if existing else None
        account = UserAccount(
            person=person,
            status=AccountStatus.ACTIVE,
            password_hash=enrolment.password_hash,
            created_at=existing.created_at if existing else now,
            password_changed_at=now,
            session_epoch=existing.session_epoch + 1 if existing else 0,
        )
        contact = ContactRecord(
            mobile=contacts.mobile,
            mobile_verified_at=enrolment.verified.get(Channel.SMS),
            email=contacts.email,
            email_verified_at=enrolment.verified.get(Channel.EMAIL),
            language=contacts.language,
            reserved=old_contacts.reserved if old_contacts else False,
            updated_at=now,
            confirmed_at=now,
        )
        kind = SecurityEventType.RE_ENROLLED if existing else SecurityEventType.ENROLLED
        enrolled = SecurityEvent(kind, now, enrolment.enrolment_id)
        # the notices first, each waiting for the event that the activation writes: none is lost, and
        # none tells of an activation that did not happen
        enrolment_id = enrolment.enrolment_id
        told = {"reserved": "true"} if contact.reserved else {}  # public services do not use its contacts
        self._notices.enqueue(
            Notice(f"{enrolment_id}:welcome", NoticeKind.ENROLLED, person, params=told, proof=enrolled)
        )
        if old_contacts is not None:  # told: each old contact the new ones replace (one kept is welcomed)
            mobile, email = old_contacts.verified_mobile(now), old_contacts.verified_email(now)
            old = Recipients(
                mobile if mobile != contacts.mobile else None,
                email if not same_mailbox(email, contacts.email) else None,
                old_contacts.language,
            )
            if old.mobile or old.email:
                # not the enrolment's id: a notice's id is its sealed recipients' KMS encryption context, which
                # CloudTrail records, and the enrolment is live until the activation is written
                notice_id = f"re-enrolled:{self._keyer.digest(KeyPurpose.NOTICE, enrolment_id)}"
                self._notices.enqueue(Notice(notice_id, NoticeKind.RE_ENROLLED, person, recipients=old, proof=enrolled))
        return self._activation.activate(
            enrolment, account, contact, now, events=(enrolled,), replacing=existing, contact_as_read=registered
        )


def _in_language(
    contacts: PendingContacts, language: Language | None, person: Person, letter: PinLetter
) -> PendingContacts:
    """The language given; without one, the letter's: what the person chose when it was ordered (their
    contact record's, on a re-enrolment), else English for a letter abroad, else bokmål."""
    return contacts if language is not None else replace(contacts, language=letter_language(person, letter.language))


def _pending_contacts(mobile: str | None, email: str | None, language: Language) -> PendingContacts:
    if not (mobile and mobile.strip()) and not (email and email.strip()):
        raise InvalidContact(
            "Give a mobile number, an e-mail address, or both.",
            errors=(FieldError("mobile", "Give a mobile number or an e-mail address."),),
        )
    return PendingContacts(
        mobile=normalize_mobile(mobile) if mobile and mobile.strip() else None,
        email=normalize_email(email) if email and email.strip() else None,
        language=language,
    )

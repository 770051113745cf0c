"""Keeping the contact register current: `/v1/me/contact`, `/v1/me/reservation`, and the daily review.

A new mobile number or e-mail address is pending until a 6-digit code sent to it comes back; the old
one stays in use until then, and is told at once that a change was asked for. Removing one is allowed
only while the other stays verified. Changes need a login from the last 15 minutes. Every change is a security event.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import suppress
from datetime import datetime, timedelta
from enum import Enum
from functools import partial
from typing import Protocol

from msgspec.structs import replace

from minid.domain.codes import (
    CODE_LIFETIME,
    MAX_CODE_TRIES,
    CodePurpose,
    ResendPolicy,
    code_message,
    codes_given_back_on_failure,
    counts_given_back_unless_sent,
    kept_replaced,
    new_code,
    replaced_code,
    try_given_back_on_failure,
    written_by_this_resend,
)
from minid.domain.contacts import (
    REMIND_AFTER,
    STALE_AFTER,
    ContactRecord,
    ContactRegister,
    ContactRegisterWriter,
    InvalidContact,
    Language,
    normalize_email,
    normalize_mobile,
    same_mailbox,
)
from minid.domain.errors import AuthenticationFailed, Conflict, FieldError
from minid.domain.events import SecurityEvent, SecurityEventType
from minid.domain.keys import Keyer, PersonKey
from minid.domain.notices import (
    CHANNEL_NAMES,
    REMINDED_OF,
    Channel,
    EmailSender,
    Notice,
    NoticeKind,
    NoticeQueue,
    Recipients,
    SmsSender,
    send_codes,
)
from minid.domain.population import PopulationRegister, may_be_alive
from minid.domain.random import RandomSource, new_id
from minid.domain.rate_limits import ClientLimits, Hit, Limit
from minid.domain.sessions import Session, SessionEnded, require_recent_login
from minid.domain.time import Clock, date_in_norway
from minid.values import Value

# Codes sent to new contacts, per person: a person changes a contact a few times at most (a typo, a new
# number). Without a limit, an account could send SMS to numbers of its choosing, on our bill, a request each
# (ClientLimits.code_to_person, CodesToPersonPerHour). Likewise the reservation's changes, each of which tells
# the person on every contact: a few an hour.
RESERVATION_CHANGES = Limit("reservation-changes", 4, timedelta(hours=1))
# counted for the person, whichever client asks: the answer says so rather than blame this client
RESERVATION_CHANGED_TOO_OFTEN = "The reservation has been changed too often this hour. Try again later."
# The confirmations that write (an event each) in an hour; those past them are answered as done.
CONFIRMATIONS = Limit("contact-confirmations", 4, timedelta(hours=1))
CONFIRMED_TOO_OFTEN = "The contact information has been confirmed too often this hour."
# The changes of the language alone that write (an event each) in an hour; past them, 429 (nothing changed).
# One with a contact's change is bounded by the codes it sends, and counts none.
LANGUAGE_CHANGES = Limit("language-changes", 6, timedelta(hours=1))
LANGUAGE_CHANGED_TOO_OFTEN = "The language has been changed too often this hour. Try again later."

# The review goes back to the day after the last it went through to its end: missed runs, however many,
# miss nobody. The first run ever (or one without that mark) looks back this far.
CATCH_UP_DAYS = 7


class Unchanged:
    """The field was not in the request: leave it as it is (None removes it)."""


UNCHANGED = Unchanged()
NOT_WAITING = "No change of this contact is waiting for a code. Change it first."


class PendingChange(Value, frozen=True):
    """New contacts waiting for their codes."""

    # left out of repr: the new contacts, their codes
    __hidden__ = frozenset({"values", "code_hashes", "replaced_hashes"})

    person: PersonKey
    values: Mapping[Channel, str]
    code_hashes: Mapping[Channel, str]
    sent_at: datetime
    expires_at: datetime
    tries: int = 0
    resends: int = 0
    language: Language | None = None  # of the codes' messages (None: a change stored before it was kept)
    # the hashes of the codes a resend, or this change made in place of a waiting one, replaced (`kept_replaced`)
    replaced_hashes: tuple[str, ...] = ()
    # which change it is (its resends keep it; a change made in place of it has another); None: one stored
    # before changes had ids
    change_id: str | None = None
    # the sessions' epoch of the session that asked for it: a password changed or reset, or a re-enrolment,
    # since ends it with those sessions (`asked_in`); None: one stored before it was kept
    epoch: int | None = None

    def asked_in(self, session: Session) -> bool:
        """Whether it was asked for in the session's epoch: not in sessions ended since (a stolen one's
        change must not be verified by the sessions the owner makes after ending it)."""
        return self.epoch is None or self.epoch == session.epoch


CHANGED_MEANWHILE = "The contact information was changed meanwhile. Look at it again and try again."


def _one_remains(record: ContactRecord, removed: Collection[Channel]) -> None:
    """InvalidContact when the contacts `removed` are the last verified ones."""
    if removed and not [c for c in Channel if c not in removed and _verified(record, c)]:
        raise InvalidContact(
            "At least one verified contact must remain: verify a new one before removing the other.",
            errors=tuple(FieldError(CHANNEL_NAMES[c], "The last verified contact cannot be removed.") for c in removed),
        )


def _same_change(now_as: PendingChange, as_read: PendingChange) -> bool:
    """The change read again is the one read before (resent, maybe), not one made in its place."""
    return now_as.values == as_read.values and now_as.change_id == as_read.change_id


class Withdrawal(Value, frozen=True):
    """Channels of a pending change the person gave up before verifying them (the contact removed, or
    set back to the register's value): their codes no longer hold."""

    change: PendingChange  # as read
    channels: frozenset[Channel]


class VerifiedCodes(Value, frozen=True):
    """The hashes of the codes that verified channels of a change, kept until its codes expire."""

    __hidden__ = frozenset({"hashes"})  # left out of repr

    hashes: Mapping[Channel, str]
    expires_at: datetime


class Verified(Enum):
    DONE = "done"
    NOT_WAITING = "not-waiting"
    SESSION_ENDED = "session-ended"


class Applied(Enum):
    DONE = "done"
    CHANGED_MEANWHILE = "changed-meanwhile"
    SESSION_ENDED = "session-ended"  # the account's sessions' epoch moved on: a password reset, a re-enrolment
    LIMITED = "limited"  # a limit counted with the write is full (its record as read, its session held)


class PendingChanges(Protocol):
    def apply(
        self,
        person: PersonKey,
        as_read: ContactRecord,
        record: ContactRecord | None,
        change: PendingChange | None,
        events: Sequence[SecurityEvent],
        *,
        epoch: int,
        withdrawal: Withdrawal | None = None,
        replacing: PendingChange | None = None,
        hits: Sequence[Hit] = (),
    ) -> Applied:
        """At once: the register's record (`record`, unless None: unchanged), the change in place of any
        earlier one of the person (unless None), the withdrawal's channels no longer pending (unless None;
        with no change), the hits counted, and the events; held on the account's sessions' epoch as the
        session had it (else SESSION_ENDED). CHANGED_MEANWHILE, writing nothing, when the register's record
        is no longer `as_read`, or the withdrawal's change is no longer the one read (a resend or a newer
        change), or a change was made meanwhile where `change` replaces `replacing` (None: there was none
        waiting); else LIMITED, writing nothing, when a hit's window is full."""
        ...

    def get(self, person: PersonKey) -> PendingChange | None: ...

    def refund_try_of(self, change: PendingChange) -> None:
        """Give back a try counted on `change` (resent since, or not), unless a newer change has replaced it
        meanwhile (its tries are its own)."""
        ...

    def claim_try(self, person: PersonKey, limit: int, now: datetime) -> PendingChange | None:
        """Count a try, atomically, if fewer than `limit` are counted and the change is open: the change
        with the try counted, or None (no such change, it has expired, or its tries are used up)."""
        ...

    def verified(
        self, change: PendingChange, channel: Channel, record: ContactRecord, event: SecurityEvent, epoch: int
    ) -> Verified:
        """At once, while the account's sessions' epoch is still `epoch` (the session's): the channel's new
        value in the register (`record`, as verified), the channel no longer pending (the code that verified
        it kept: see read), the event. Writing nothing: SESSION_ENDED when the epoch has moved on (a
        re-enrolment or a reset meanwhile), NOT_WAITING when the change is no longer the one read (replaced
        meanwhile) or the register has no record."""
        ...

    def read(self, person: PersonKey) -> tuple[PendingChange | None, VerifiedCodes | None]:
        """At once: the change still waiting (as `get`), and the codes that verified channels of the
        person's latest change (None if none did)."""
        ...

    def record_resend(
        self,
        change: PendingChange,
        code_hashes: Mapping[Channel, str],
        sent_at: datetime,
        resends: tuple[int, int],
        *,
        replaced: Sequence[str] = (),
        giving_back: Mapping[Channel, str] | None = None,
    ) -> bool:
        """The codes and when they were sent, if the person's pending change is still `change` (its values)
        and its count of resends still `resends[0]`; it becomes `resends[1]`. The hashes `replaced` are added
        to those kept of replaced codes (none when the codes sent before are given back: `giving_back`, the
        codes the resend wrote, which must still be there, with the time it wrote, `change.sent_at`; a write
        made whatever the time, minid.deadline.exempt)."""
        ...


class ContactService:
    def __init__(
        self,
        *,
        register: ContactRegister,
        changes: PendingChanges,
        sms: SmsSender,
        email: EmailSender,
        notices: NoticeQueue,
        keyer: Keyer,
        random: RandomSource,
        clock: Clock,
        public_domain: str,
        limits: ClientLimits,
        resend_policy: ResendPolicy | None = None,
    ) -> None:
        self._limits = limits
        self._register = register
        self._changes = changes
        self._sms = sms
        self._email = email
        self._notices = notices
        self._keyer = keyer
        self._random = random
        self._clock = clock
        self._public_domain = public_domain
        self._resend_policy = resend_policy or ResendPolicy()

    def contact(self, session: Session) -> ContactRecord:
        record = self._register.find(session.person)
        if record is None:
            raise AuthenticationFailed()
        return record

    # ------------------------------------------------------------------ changes
    def change(
        self,
        session: Session,
        *,
        mobile: str | Unchanged | None = UNCHANGED,
        email: str | Unchanged | None = UNCHANGED,
        language: Language | None = None,
    ) -> tuple[Channel, ...]:
        """Apply removals and the language now; send a code to each new contact. The channels sent to."""
        now = self._clock.now()
        require_recent_login(session, now)
        record = self.contact(session)
        asked = {
            Channel.SMS: _normalized(Channel.SMS, mobile, normalize_mobile, record.mobile),
            Channel.EMAIL: _normalized(Channel.EMAIL, email, normalize_email, record.email),
        }
        removed = [c for c, value in asked.items() if value is None and _current(record, c) is not None]
        new = {c: v for c, v in asked.items() if isinstance(v, str) and not _same(c, v, _current(record, c))}
        _one_remains(record, removed)
        updated = record
        for channel in removed:
            updated = _without(updated, channel)
        events: list[SecurityEvent] = []
        notices: list[Notice] = []
        if language is not None and language is not record.language:
            updated = replace(updated, language=language)
            events.append(_event(SecurityEventType.LANGUAGE_CHANGED, now, {"language": language.value}))
        for channel in removed:
            events.append(_event(SecurityEventType.CONTACT_REMOVED, now, {"channel": CHANNEL_NAMES[channel]}))
            notices += _tell_old(session.person, record, channel, NoticeKind.CONTACT_REMOVED, events[-1])
        change = None
        withdrawal = None
        replacing: PendingChange | None = None
        if new:
            replacing = self._another_waiting(session, asked, now)  # first: refused, nothing counted or sent
            if not events and self._asked_again(session, replacing, new, now):
                return tuple(new)  # the codes just sent stand (a retry whose answer was lost, a second click)
            counted = self._limits.code_to_person("contact", session.person, now)  # RateLimited (429): nothing sent
            codes = {channel: new_code(self._random) for channel in new}
            change = PendingChange(
                person=session.person,
                values=new,
                code_hashes={c: self._code_hash(session.person, c, code) for c, code in codes.items()},
                sent_at=now,
                expires_at=now + CODE_LIFETIME,
                language=updated.language,
                change_id=new_id(self._random),
                epoch=session.epoch,
                # in place of one waiting: its codes are replaced codes (a person may type the first SMS's)
                replaced_hashes=kept_replaced(replacing.replaced_hashes, replacing.code_hashes.values())
                if replacing is not None
                else (),
            )
            # the contacts this request tells of their own change (replaced, or removed): not told of the other's too
            told_apart = {c for c in new if _verified(record, c)} | set(removed)
            for channel in new:
                requested = _event(SecurityEventType.CONTACT_CHANGE_REQUESTED, now, {"channel": CHANNEL_NAMES[channel]})
                events.append(requested)
                notices += _tell_of_new(session.person, record, channel, requested, told_apart)
            sent: list[Channel] = []
            with counts_given_back_unless_sent(partial(self._limits.give_back, [counted]), sent):
                self._send(new, codes, updated.language, sent, resent=False)  # first: codes not sent leave no change
        elif given_up := {c for c, value in asked.items() if not isinstance(value, Unchanged)}:
            withdrawal = self._withdrawal(session.person, given_up, now)
            for channel in sorted(withdrawal.channels) if withdrawal is not None else ():
                # in the person's history beside its request (of which the old contact was told), as called off
                detail: dict[str, str] = {"channel": CHANNEL_NAMES[channel]}
                events.append(_event(SecurityEventType.CONTACT_CHANGE_WITHDRAWN, now, detail))
        if not events and withdrawal is None:
            return ()
        # a change of the language alone, looping, must not bury the person's history under its events: counted
        # by the write, as confirmations are (one refused, changed meanwhile say, takes no place)
        alone = not (new or removed or withdrawal)
        hits = (
            [self._limits.to_count(LANGUAGE_CHANGES, session.person, now, LANGUAGE_CHANGED_TOO_OFTEN)] if alone else []
        )
        # Queued after the codes are sent: a send that fails (SNS throttling, a number it refuses) queues nothing.
        # Queued before, each such failure, its count given back and so without end, would leave notices that are
        # never proven (NoticesUnprovenAlarm). The other way round, a queue (or KMS) down after a code was sent
        # leaves that code with no change to verify, and the person's count spent on it.
        for notice in notices:  # delivered once its event is written, below; dropped if it never is
            self._notices.enqueue(notice)
        written = replace(updated, updated_at=now) if updated != record else None
        applied = self._changes.apply(
            session.person,
            record,
            written,
            change,
            events,
            epoch=session.epoch,
            withdrawal=withdrawal,
            replacing=replacing,
            hits=hits,
        )
        if applied is Applied.LIMITED:
            raise hits[0].refused(now)  # RateLimited (429): nothing written
        _raise_unless_done(applied)
        return tuple(new)

    def _another_waiting(
        self, session: Session, asked: Mapping[Channel, str | Unchanged | None], now: datetime
    ) -> PendingChange | None:
        """Conflict when a change of a contact this request does not name still waits for its code (a form
        for the mobile, then one for the e-mail, the SMS code not yet typed): a new change replaces a
        waiting one whole, and would drop that one unseen. Named again, or set back to its value in the
        register, it is replaced or given up as asked. A change whose tries are used up waits for nothing, nor
        does one asked for in sessions ended since. The change as read, which the new one replaces only if it
        is still as read (another tab's at once)."""
        waiting = self._changes.get(session.person)
        if waiting is None or now >= waiting.expires_at or waiting.tries >= MAX_CODE_TRIES:
            return waiting
        if not waiting.asked_in(session):  # its sessions ended: replaced whole, as one used up
            return waiting
        if others := [c for c in Channel if c in waiting.values and isinstance(asked[c], Unchanged)]:
            named = " and ".join("the mobile number" if c is Channel.SMS else "the e-mail address" for c in others)
            raise Conflict(
                f"A change of {named} is waiting for its code. Verify it first, or give it again (or its "
                "present value, to give it up) with this change."
            )
        return waiting

    def _asked_again(
        self, session: Session, waiting: PendingChange | None, new: Mapping[Channel, str], now: datetime
    ) -> bool:
        """Whether the change asked for is the one waiting, its codes sent less than a resend's interval ago
        in this session: made again, it would send new codes in place of those on their way (the first
        answered "replaced by a newer one") and tell the old contacts twice, past the resends' rules. After
        the interval it is made anew, as asked ("start again"). Not once resent: a resend writes its codes
        before it sends them, and a resend that failed whose give-back failed too leaves codes never sent."""
        return (
            waiting is not None
            and waiting.resends == 0
            and dict(waiting.values) == dict(new)
            and waiting.asked_in(session)
            and waiting.tries < MAX_CODE_TRIES
            and now < waiting.expires_at
            and now - waiting.sent_at < self._resend_policy.interval
        )

    def _withdrawal(self, person: PersonKey, given_up: set[Channel], now: datetime) -> Withdrawal | None:
        """A contact removed or set back to the register's value, with a change of it waiting: the change
        is given up with it. Else its code, verified after, would make the contact the person gave up the
        one in use. (A new change replaces a waiting one whole, and is refused while one of a contact it does
        not name waits: this is for a request that makes none.)"""
        pending = self._changes.get(person)
        if pending is None or now >= pending.expires_at or not (channels := given_up & set(pending.values)):
            return None
        return Withdrawal(pending, frozenset(channels))

    def verify(self, session: Session, channel: Channel, code: str) -> ContactRecord:
        now = self._clock.now()
        pending = self._try_claimed(session, now)
        if pending is None or channel not in pending.values:
            if pending is not None:
                self._changes.refund_try_of(pending)  # no code of this channel was tried
            waiting, kept = self._changes.read(session.person)  # to tell why, in one read
            if self._verified_before(kept, session.person, channel, code, now):
                return self.contact(session)  # a retry whose answer was lost: answered as it was, nothing written
            if (
                waiting is not None
                and channel in waiting.values
                and now < waiting.expires_at
                and waiting.asked_in(session)
            ):
                raise AuthenticationFailed("Too many wrong codes. Change the contact again to get a new code.")
            raise Conflict(NOT_WAITING)
        give_back = partial(self._changes.refund_try_of, pending)
        candidate = self._code_hash(session.person, channel, code)
        if not self._keyer.matches(pending.code_hashes.get(channel, ""), candidate):
            if any(self._keyer.matches(old, candidate) for old in pending.replaced_hashes):
                with try_given_back_on_failure(give_back):  # no guess: no try spent
                    raise AuthenticationFailed(replaced_code({channel}))
            raise AuthenticationFailed("The code is wrong or has expired.")
        with try_given_back_on_failure(give_back):  # the code was right: AWS briefly down now costs no try
            record = self.contact(session)
            value = pending.values[channel]
            if channel is Channel.SMS:
                updated = replace(record, mobile=value, mobile_verified_at=now, updated_at=now, confirmed_at=now)
            else:
                updated = replace(record, email=value, email_verified_at=now, updated_at=now, confirmed_at=now)
            changed = SecurityEvent(
                SecurityEventType.CONTACT_CHANGED, now, str(uuid.uuid4()), {"channel": CHANNEL_NAMES[channel]}
            )
            verified = self._changes.verified(pending, channel, updated, changed, session.epoch)
        if verified is Verified.SESSION_ENDED:
            raise SessionEnded()
        if verified is Verified.NOT_WAITING:
            # verified meanwhile with this very code (the same request sent twice, one overtaking the other):
            # done, as its retry would be told; a new code sent meanwhile for the same value (a resend): the
            # code is told it was replaced, its try given back, as it would be arriving a moment later; else
            # replaced by a newer change, or ended, whose codes are the ones to use
            waiting, kept = self._changes.read(session.person)
            if self._verified_before(kept, session.person, channel, code, now):
                self._changes.refund_try_of(pending)  # nothing wrong was typed: the other contact's tries stand
                return self.contact(session)
            if waiting is not None and _resent(pending, waiting, channel, now):
                # on this change, resent: not on one made in its place (a change stored before changes had ids:
                # the change as resent, whose time the give-back holds to)
                resent = pending if pending.change_id else waiting
                with try_given_back_on_failure(partial(self._changes.refund_try_of, resent)):
                    raise AuthenticationFailed(replaced_code({channel}))
            raise Conflict(NOT_WAITING)
        return updated

    def _try_claimed(self, session: Session, now: datetime) -> PendingChange | None:
        """A try counted on the person's change, and the change read (None: none waits). One asked for in
        sessions ended since waits for no code of this session's: its try given back, told as none waiting."""
        pending = self._changes.claim_try(session.person, MAX_CODE_TRIES, now)
        if pending is not None and not pending.asked_in(session):
            self._changes.refund_try_of(pending)
            raise Conflict(NOT_WAITING)
        return pending

    def _verified_before(
        self, verified: VerifiedCodes | None, person: PersonKey, channel: Channel, code: str, now: datetime
    ) -> bool:
        """The channel was verified with this very code, and the code's lifetime has not run out. Such a
        code is judged without a try counted: it can tell nothing that reading the contact does not."""
        if verified is None or channel not in verified.hashes or now >= verified.expires_at:
            return False
        return self._keyer.matches(verified.hashes[channel], self._code_hash(person, channel, code))

    def resend(self, session: Session) -> tuple[Channel, ...]:
        now = self._clock.now()
        pending = self._changes.get(session.person)
        if pending is None or now >= pending.expires_at or not pending.asked_in(session):
            raise Conflict("No change is waiting for a code.")
        if pending.tries >= MAX_CODE_TRIES:  # no code of this change can work any more: none is sent
            raise Conflict("Too many wrong codes. Change the contact again to get a new code.")
        self._resend_policy.check(pending.resends, pending.sent_at, now)  # (a resend holds its own ten minutes)
        # counted with the changes' own codes: ten an hour to a person, to numbers of the caller's choosing
        counted = self._limits.code_to_person("contact", session.person, now)  # RateLimited (429) past it: none sent
        sent: list[Channel] = []
        # given back if none is sent: the resend's write refused (one came first, say), or the send failed
        with counts_given_back_unless_sent(partial(self._limits.give_back, [counted]), sent):
            codes = {channel: new_code(self._random) for channel in pending.values}
            hashes = {c: self._code_hash(session.person, c, code) for c, code in codes.items()}
            count = (pending.resends, pending.resends + 1)
            language = pending.language or self.contact(session).language  # read first: nothing to undo if it fails
            resent = replace(pending, sent_at=now)  # as this resend writes it (a change stored before ids, found so)

            def given_back() -> None:  # the codes sent before, if this resend's are written (none sent)
                self._changes.record_resend(
                    resent, pending.code_hashes, pending.sent_at, count[::-1], giving_back=hashes
                )

            with codes_given_back_on_failure(given_back):
                written = self._changes.record_resend(
                    pending, hashes, now, count, replaced=tuple(pending.code_hashes.values())
                )
            if not written:
                # not as read: verified or given up meanwhile (nothing waits: nothing to send), partly so or
                # made again (what waits is not what was read), or another resend came first (one was just
                # sent: wait a little)
                now_as = self._changes.get(session.person)
                if now_as is None or now >= now_as.expires_at:
                    raise Conflict("No change is waiting for a code.")
                if not _same_change(now_as, pending):
                    raise Conflict(CHANGED_MEANWHILE)
                if not written_by_this_resend(
                    (now_as.resends, now_as.sent_at, now_as.code_hashes), (count[1], now, hashes)
                ):  # (else: sent)
                    self._resend_policy.check(pending.resends + 1, now, now)

            def unsent_given_back() -> None:
                # A code not sent is given back: the one sent before it still holds. A code that went out (the
                # SMS, when the e-mail failed after it) stands, and so does the resend (as an enrolment's). The
                # e-mail's code from before then shares the resend's time: some minutes more than its message
                # said, never brought back once expired (a change ends with its codes: no resend after), and its
                # tries are the change's three, whatever the time.
                if sent:
                    kept = {c: hashes[c] if c in sent else pending.code_hashes[c] for c in pending.values}
                    self._changes.record_resend(resent, kept, now, (count[1], count[1]), giving_back=hashes)
                else:
                    given_back()

            with codes_given_back_on_failure(unsent_given_back):
                self._send(pending.values, codes, language, sent, resent=True)
        return tuple(pending.values)

    def confirm(self, session: Session) -> ContactRecord:
        """The person says the contacts are right as they are."""
        now = self._clock.now()
        record = self.contact(session)
        # each writes an event: a session looping on it must not bury the person's history under them. Counted
        # by the write, not before it: confirmations that failed (changed meanwhile, say) take no place
        hit = self._limits.to_count(CONFIRMATIONS, session.person, now, CONFIRMED_TOO_OFTEN)
        updated = replace(record, confirmed_at=now)
        confirmed = _event(SecurityEventType.CONTACT_CONFIRMED, now)
        applied = self._changes.apply(
            session.person, record, updated, None, [confirmed], epoch=session.epoch, hits=[hit]
        )
        if applied is Applied.LIMITED:
            return record  # confirmed a moment ago, over and over: as confirmed as it was, nothing written
        if applied is Applied.CHANGED_MEANWHILE:
            now_as = self.contact(session)  # changed meanwhile: by a second click, or another tab, confirming?
            if _confirmed_since(record, now_as):
                return now_as
        _raise_unless_done(applied)
        return updated

    def reserve(self, session: Session, reserved: bool) -> ContactRecord:
        """Reservation against digital communication from the public sector (reservasjon)."""
        now = self._clock.now()
        record = self.contact(session)
        if record.reserved is reserved:
            return record
        # each change tells the person on every contact: one with a session toggling it must not send an
        # SMS and an e-mail a request (RateLimited, 429, past the limit: nothing changed, nothing queued). Counted
        # before its notice is queued, and given back when its change is not written (a queue or KMS down,
        # changed meanwhile): a change that failed takes no place. (Counted by the write, as a confirmation
        # is, a session looping past the limit would queue a notice a request, each waiting for its proof.) A
        # write whose answer was lost is given back too, though made: rare, and one change more that hour.
        counted = self._limits.hit(RESERVATION_CHANGES, session.person, now, RESERVATION_CHANGED_TOO_OFTEN)
        updated = replace(record, reserved=reserved)
        event = _event(SecurityEventType.RESERVED if reserved else SecurityEventType.UNRESERVED, now)
        # the person told on their contacts (one who took over a session must not change this unseen):
        # queued first, with the event as its proof, as every notice of a change
        params = {"reserved": "true" if reserved else "false", "date": date_in_norway(now).isoformat()}
        kind = NoticeKind.RESERVATION_CHANGED
        give_back = partial(self._limits.give_back, [counted])
        made_meanwhile: ContactRecord | None = None
        with try_given_back_on_failure(give_back):
            self._notices.enqueue(Notice(f"{event.reference}:{kind.value}", kind, session.person, params, proof=event))
            applied = self._changes.apply(session.person, record, updated, None, [event], epoch=session.epoch)
            # changed meanwhile: by a second click, or another tab, as asked?
            if applied is Applied.CHANGED_MEANWHILE and (now_as := self.contact(session)).reserved is reserved:
                made_meanwhile = now_as
            else:
                _raise_unless_done(applied)
        if made_meanwhile is not None:  # its notice is the other request's; this one's is dropped, its event
            with suppress(Exception):  # unwritten, and its count given back (if it can be: the answer stands)
                give_back()
            return made_meanwhile
        return updated

    # ------------------------------------------------------------------ helpers
    def _code_hash(self, person: PersonKey, channel: Channel, code: str) -> str:
        return self._keyer.one_time_code_hash(f"contact:{person}", channel, code)

    def _send(
        self,
        values: Mapping[Channel, str],
        codes: Mapping[Channel, str],
        language: Language,
        sent: list[Channel],
        *,
        resent: bool,
    ) -> None:
        """Each code to its channel; `sent`: the channels reached, when one fails after another; `resent`: a
        resend's codes (send_codes)."""
        messages = {
            channel: (values[channel], code_message(code, language, self._public_domain, CodePurpose.CONTACT))
            for channel, code in codes.items()
        }
        send_codes(self._sms, self._email, messages, sent, resent=resent)


class ReviewRun(Value, frozen=True):
    reminded: int
    stale: int
    finished: bool  # every due day gone through (else the next run goes on from the first not done)
    # stopped on a day before today: more is due than the runs get through (a day's runs did not finish it,
    # or runs failed or were missed for days), and reminders go out late; past two months, contacts would
    # be marked stale with no reminder
    behind: bool = False


# A run stops taking records when less than this is left of its time: the next goes on from there.
STOP_WITH_SECONDS = 30.0


class ContactReview:
    """The daily review: a reminder at 16 months without an update or confirmation, stale at 18. Run
    every hour of the day: the first run does the day, and a day too large for one run is finished by
    the next (a record reviewed is scheduled off the day it was due on)."""

    def __init__(
        self, *, register: ContactRegisterWriter, population: PopulationRegister, notices: NoticeQueue, clock: Clock
    ) -> None:
        self._register = register
        self._population = population
        self._notices = notices
        self._clock = clock

    def run(self, seconds_left: Callable[[], float] = lambda: math.inf) -> ReviewRun:
        """Review every record due today (or in the days a missed run left), while time is left."""
        now = self._clock.now()
        today = date_in_norway(now)
        last = self._register.last_reviewed()
        first = min(last + timedelta(days=1), today) if last else today - timedelta(days=CATCH_UP_DAYS)
        reminded = stale = 0
        for back in range((today - first).days, -1, -1):
            due = today - timedelta(days=back)
            for person, record in self._register.due_for_review(due):
                if seconds_left() < STOP_WITH_SECONDS:
                    if due > first:  # the days before this one are done: the next run starts here
                        self._register.reviewed_through(due - timedelta(days=1))
                    return ReviewRun(reminded, stale, finished=False, behind=due < today)
                # each write holds only while the record is as reviewed: one confirmed or updated meanwhile
                # has its own next review, and is left to it
                age = now - record.last_confirmed
                if age >= STALE_AFTER:
                    marked = [_event(SecurityEventType.CONTACT_STALE, now)]
                    stale += self._register.schedule_review(person, (due, record), None, now, marked)
                elif due > record.review_on():  # its stale review, come before it is stale: reminded already
                    self._register.schedule_review(person, (due, record), record.stale_review_on(), None)
                elif age >= REMIND_AFTER and not self._may_be_alive(person):
                    # none for the dead: their number or address may have passed to someone else
                    self._register.schedule_review(person, (due, record), record.stale_review_on(), None)
                elif age >= REMIND_AFTER:
                    notice_id = f"{person}:reminder:{record.last_confirmed.date().isoformat()}"
                    # for the record as read: one confirmed or changed meanwhile is not reminded (the notifier)
                    told = {REMINDED_OF: record.last_confirmed.isoformat()} | (
                        {"reserved": "true"} if record.reserved else {}
                    )
                    self._notices.enqueue(Notice(notice_id, NoticeKind.CONFIRMATION_REMINDER, person, params=told))
                    reminded += self._register.schedule_review(person, (due, record), record.stale_review_on(), None)
                else:  # confirmed since (or its review came early): the next review is its reminder's day
                    self._register.schedule_review(person, (due, record), record.review_on(), None)
        # noted once every day is done: a run that fails is done again (a record reviewed is off its day)
        self._register.reviewed_through(today)
        return ReviewRun(reminded, stale, finished=True)

    def _may_be_alive(self, person: PersonKey) -> bool:
        """Whether the population register does not have the person as dead. One it does not have (a
        D-number holder left out of its copy, say) is reminded, as the notifier tells them: their contacts
        must not go stale unwarned on a gap in the register."""
        return may_be_alive(self._population.status(person))


def _confirmed_since(read: ContactRecord, now_as: ContactRecord) -> bool:
    """The record confirmed since it was read, and nothing else of it changed: what a confirmation asked."""
    newer = now_as.confirmed_at is not None and (read.confirmed_at is None or now_as.confirmed_at > read.confirmed_at)
    return newer and replace(now_as, confirmed_at=read.confirmed_at) == read


def _event(kind: SecurityEventType, now: datetime, detail: dict[str, str] | None = None) -> SecurityEvent:
    return SecurityEvent(kind, now, str(uuid.uuid4()), detail or {})


def _tell_old(
    person: PersonKey, record: ContactRecord, channel: Channel, kind: NoticeKind, proof: SecurityEvent
) -> list[Notice]:
    """The notice to the channel's contact as it was, if notices may go to it (verified, the record not
    stale: an old number may have passed to someone else): true once `proof` is written."""
    old = _notifiable(record, channel, proof.at)
    if old is None:
        return []
    recipients = Recipients(
        mobile=old if channel is Channel.SMS else None,
        email=old if channel is Channel.EMAIL else None,
        language=record.language,
    )
    params = {"channel": CHANNEL_NAMES[channel]}
    return [Notice(f"{proof.reference}:{kind.value}", kind, person, params, recipients, proof=proof)]


def _tell_of_new(
    person: PersonKey, record: ContactRecord, channel: Channel, proof: SecurityEvent, told_apart: Collection[Channel]
) -> list[Notice]:
    """A new contact asked for: the one it replaces is told, and the person's other contact; one added,
    where there was none, is told to the other contact. One taking over an account would add its own, or
    replace the one they hold (a stolen phone's, whose owner is told on the phone they no longer have).
    The other contact is not told of a replacement when it is among `told_apart` (told of its own change,
    by the request); of an addition it is told all the same (else one who replaces the mobile and adds an
    e-mail address of their own would be told of the first alone)."""
    replaced = _verified(record, channel)
    notices = _tell_old(person, record, channel, NoticeKind.CONTACT_CHANGED, proof) if replaced else []
    if not replaced or _other(channel) not in told_apart:
        kind = NoticeKind.CONTACT_CHANGED if replaced else NoticeKind.CONTACT_ADDED
        notices += _tell_others(person, record, channel, proof, kind)
    return notices


def _other(channel: Channel) -> Channel:
    return Channel.EMAIL if channel is Channel.SMS else Channel.SMS


def _tell_others(
    person: PersonKey, record: ContactRecord, channel: Channel, proof: SecurityEvent, kind: NoticeKind
) -> list[Notice]:
    """The notice that the channel's contact is being added or changed (`kind`), to the person's contact
    of the other kind, if notices may go to it."""
    recipients = Recipients(
        mobile=_notifiable(record, Channel.SMS, proof.at) if channel is Channel.EMAIL else None,
        email=_notifiable(record, Channel.EMAIL, proof.at) if channel is Channel.SMS else None,
        language=record.language,
    )
    if recipients.mobile is None and recipients.email is None:
        return []
    params: dict[str, str] = {"channel": CHANNEL_NAMES[channel]}
    notice_id = f"{proof.reference}:{kind.value}"
    if kind is NoticeKind.CONTACT_CHANGED:  # the contact being replaced is told apart (`_tell_old`)
        params, notice_id = params | {"told": "other"}, f"{notice_id}:other"
    return [Notice(notice_id, kind, person, params, recipients, proof=proof)]


def _resent(read: PendingChange, now_read: PendingChange, channel: Channel, now: datetime) -> bool:
    """The same value still waits for its code, and the code is another since `read` (a resend's)."""
    return (
        now < now_read.expires_at
        and now_read.values.get(channel) == read.values[channel]
        and now_read.code_hashes.get(channel) != read.code_hashes.get(channel)
    )


def _raise_unless_done(applied: Applied) -> None:
    """A write held on the session's epoch that did not hold: the session has ended (a password reset or
    a re-enrolment meanwhile, whose record it must not change), or the record was changed meanwhile."""
    if applied is Applied.SESSION_ENDED:
        raise SessionEnded()
    if applied is Applied.CHANGED_MEANWHILE:
        raise Conflict(CHANGED_MEANWHILE)


def _normalized(
    channel: Channel, value: str | Unchanged | None, normalize: Callable[[str], str], stored: str | None
) -> str | Unchanged | None:
    """None removes the contact (API.md); UNCHANGED leaves it; a blank string is refused: a form that sends
    every field, one left blank, must not remove a contact by mistake. The value `stored` sent back as it
    is stored is taken as it is: one stored before a rule refused it (a satellite phone's number) can still
    be sent back, to keep it (with the other contact changed) or to give up a change of it."""
    if isinstance(value, Unchanged) or value is None:
        return value
    if stored is not None and value.strip() == stored:
        return stored
    if not value.strip():
        what = "a mobile number" if channel is Channel.SMS else "an e-mail address"
        raise InvalidContact(errors=(FieldError(CHANNEL_NAMES[channel], f"Give {what}, or null to remove it."),))
    return normalize(value)


def _current(record: ContactRecord, channel: Channel) -> str | None:
    return record.mobile if channel is Channel.SMS else record.email


def _same(channel: Channel, asked: str, current: str | None) -> bool:
    """Whether the contact asked for is the one in the register (both normalized; an e-mail address by
    `same_mailbox`): then no code goes to it, and its old self is not told."""
    return asked == current if channel is Channel.SMS else same_mailbox(asked, current)


def _notifiable(record: ContactRecord, channel: Channel, now: datetime) -> str | None:
    """The channel's contact if notices may go to it: verified, and the record not stale."""
    return record.verified_mobile(now) if channel is Channel.SMS else record.verified_email(now)


def _verified(record: ContactRecord, channel: Channel) -> bool:
    verified_at = record.mobile_verified_at if channel is Channel.SMS else record.email_verified_at
    return _current(record, channel) is not None and verified_at is not None


def _without(record: ContactRecord, channel: Channel) -> ContactRecord:
    if channel is Channel.SMS:
        return replace(record, mobile=None, mobile_verified_at=None)
    return replace(record, email=None, email_verified_at=None)

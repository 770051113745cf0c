"""Notices: what MinID tells a person on their registered mobile and e-mail, and how it is delivered.

A notice is queued (it must survive a provider being briefly down), then delivered to each of the
person's verified, not stale contacts, in their language. Delivery is at least once per channel, and
a retry never sends again on a channel that has been sent on.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any, Literal, Protocol

from msgspec import field

from minid.domain.accounts import LockoutPolicy
from minid.domain.contacts import ContactRegister, InvalidContact, Language
from minid.domain.errors import FieldError, carry_notes
from minid.domain.events import SecurityEvent, SecurityEventLog, SecurityEventType
from minid.domain.keys import PersonKey, Sealer
from minid.domain.population import PopulationRegister, may_be_alive
from minid.domain.time import NORWAY, Clock, date_in_norway
from minid.values import Value

SUPPORT_PHONE = "800 30 300"
CLAIM_LEASE = timedelta(minutes=2)  # longer than a send takes; a crashed sender's claim lapses after it
# A send is written in the ledger up to this many times (each with the SDK's own retries) before it is
# given up on: unwritten, its claim lapses, and a retry of the notice would send on the channel again.
MARK_SENT_TRIES = 3
# A notice of a change is queued before the change is made, with the security event the change writes
# (in the same transaction) as its proof: it is delivered once the event is there, and dropped if the
# event has not come within this time (the change was not made: nothing to tell).
PROOF_WAIT = timedelta(minutes=10)
# A reset's code is sent only with this much of its life left: typed in with a PIN code and a new password,
# one with seconds left expires on the way (it is counted too late instead)
CODE_USABLE_FOR = timedelta(minutes=1)
# A reset's code whose SMS fails, nothing sent (SNS down, say), once it is this old goes by e-mail instead, where
# the person has one. Sent at once, it is tried again by SMS every 15 s until then: a blip of SNS's does not
# move it to a channel the person did not look to, an outage does not use up its 10 minutes. (A code a minute
# late already, the queue held up, goes by e-mail at its first failure.)
SMS_TRIED_FOR = timedelta(minutes=1)
# The purpose a notice's recipients are sealed for, bound to the notice's id.
RECIPIENTS_SEALED_FOR = "notice-recipients"


class NoticeKind(StrEnum):
    PIN_LETTER_POSTED = "pin-letter-posted"
    PIN_LETTER_REFUSED = "pin-letter-refused"
    PIN_LETTER_BLOCKED = "pin-letter-blocked"  # after five wrong PIN codes
    PIN_LETTERS_BLOCKED_BY_OWNER = "pin-letters-blocked-by-owner"  # POST /v1/me/pin-letters/block
    PIN_LETTER_FAILED = "pin-letter-failed"
    ENROLLED = "enrolled"
    RE_ENROLLED = "re-enrolled"
    ACCOUNT_LOCKED = "account-locked"
    PASSWORD_CHANGED = "password-changed"  # noqa: S105  (an event, not a password)
    PASSWORD_RESET = "password-reset"  # noqa: S105
    SECOND_FACTOR_CHANGED = "second-factor-changed"
    CONTACT_CHANGED = "contact-changed"
    CONTACT_REMOVED = "contact-removed"
    CONTACT_ADDED = "contact-added"
    CONFIRMATION_REMINDER = "confirmation-reminder"
    RESERVATION_CHANGED = "reservation-changed"  # PUT /v1/me/reservation
    # A reset's one-time code, sealed with its recipients: to the first channel that takes it (the mobile,
    # else the e-mail), never after the code has expired. Sent from the queue, not the request, so that
    # a real start and a decoy make the same calls however slow the providers are.
    PASSWORD_RESET_CODE = "password-reset-code"  # noqa: S105  (a notice's kind, not a password)
    # In place of a reset's code, where the person has no PIN code letter whose codes work (used up,
    # blocked, not yet posted): told so, else they would wait for a code that never comes. The same queue
    # and the same calls as a code (the start looks like any other), and sent as one is: to the first
    # channel that takes it, not once it is too late, one a day at most (its id the person's and the day's).
    PASSWORD_RESET_NO_LETTER = "password-reset-no-letter"  # noqa: S105


# What a reset's start queues on the code queue: sent at once, to one channel, never once too late.
RESET_STARTS = frozenset({NoticeKind.PASSWORD_RESET_CODE, NoticeKind.PASSWORD_RESET_NO_LETTER})

# Of each kind that tells of a change, the events that prove it (what its producer queues it with): one
# without such a proof, or with another kind of event's, was not queued by MinID's code as it is (a role
# that may queue, but not write the person's events, forging one), and is dropped as unproven. The kinds
# not named tell of what wrote no event of the person's: a letter's workflow, a reminder, a reset's start.
PROVEN_BY: Mapping[NoticeKind, frozenset[SecurityEventType]] = {
    NoticeKind.ACCOUNT_LOCKED: frozenset({SecurityEventType.ACCOUNT_LOCKED}),
    NoticeKind.PASSWORD_CHANGED: frozenset({SecurityEventType.PASSWORD_CHANGED}),
    NoticeKind.PASSWORD_RESET: frozenset({SecurityEventType.PASSWORD_RESET}),
    NoticeKind.SECOND_FACTOR_CHANGED: frozenset(
        {SecurityEventType.TOTP_ADDED, SecurityEventType.TOTP_REMOVED, SecurityEventType.TOTP_REPLACED}
    ),
    NoticeKind.CONTACT_CHANGED: frozenset({SecurityEventType.CONTACT_CHANGE_REQUESTED}),
    NoticeKind.CONTACT_ADDED: frozenset({SecurityEventType.CONTACT_CHANGE_REQUESTED}),
    NoticeKind.CONTACT_REMOVED: frozenset({SecurityEventType.CONTACT_REMOVED}),
    NoticeKind.RESERVATION_CHANGED: frozenset({SecurityEventType.RESERVED, SecurityEventType.UNRESERVED}),
    NoticeKind.PIN_LETTER_BLOCKED: frozenset({SecurityEventType.PIN_LETTER_BLOCKED}),
    NoticeKind.PIN_LETTERS_BLOCKED_BY_OWNER: frozenset({SecurityEventType.PIN_LETTER_BLOCKED}),
    NoticeKind.ENROLLED: frozenset({SecurityEventType.ENROLLED, SecurityEventType.RE_ENROLLED}),
    NoticeKind.RE_ENROLLED: frozenset({SecurityEventType.RE_ENROLLED}),
}


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"


ContactField = Literal["mobile", "email"]

# What the API and the security events call each channel: the SMS channel by what the person gives.
CHANNEL_NAMES: dict[Channel, ContactField] = {Channel.SMS: "mobile", Channel.EMAIL: "email"}


class Undeliverable(InvalidContact):
    """The SMS or e-mail provider refuses the recipient itself, not the moment: sent again, it would be
    refused again (a number SNS does not send to, say). Raised by a sender; a person who gave the
    contact is told which field to change (422 invalid-contact)."""

    def __init__(self, channel: Channel) -> None:
        refused = "Text messages" if channel is Channel.SMS else "E-mail"
        super().__init__(
            "Messages cannot be delivered to a contact given. Check it, or give another.",
            errors=(FieldError(CHANNEL_NAMES[channel], f"{refused} cannot be delivered to it."),),
        )
        self.channel = channel


class Recipients(Value, frozen=True):
    """Contacts a notice goes to instead of the register's: those a change replaced, for one. A reset's
    code travels with its recipients, sealed with them."""

    __hidden__ = frozenset({"mobile", "email", "code"})

    mobile: str | None
    email: str | None
    language: Language
    code: str | None = None  # a PASSWORD_RESET_CODE's one-time code (None for any other notice)


class SealedRecipients(Value, frozen=True):
    """Recipients as they travel in the queue: sealed. They are a person's contacts (those a change
    replaced, for one), and the queue and its dead-letter queue keep a message for up to 14 days, where
    whoever may read or redrive messages would read them. Opened only to deliver, once the proof is in."""

    __hidden__ = frozenset({"sealed"})
    sealed: str


class Notice(Value, frozen=True):
    notice_id: str  # the same for every retry: deliveries are counted against it
    kind: NoticeKind
    person: PersonKey
    params: Mapping[str, str] = field(default_factory=dict)  # never a secret
    # None: the person's verified contacts in the register
    recipients: Recipients | SealedRecipients | None = None
    proof: SecurityEvent | None = None  # the person's event that makes the notice true, once it exists


class Message(Value, frozen=True):
    __hidden__ = frozenset({"sms", "text", "html"})  # left out of repr: they may hold a code

    sms: str
    subject: str
    text: str
    html: str


def notice_to_json(notice: Notice, sealer: Sealer) -> str:
    """The notice as a queue message, its recipients (if any) sealed to its id."""
    return json.dumps(
        {
            "notice_id": notice.notice_id,
            "kind": notice.kind.value,
            "person": notice.person,
            "params": notice.params,
            "recipients": _sealed(notice.notice_id, notice.recipients, sealer).sealed if notice.recipients else None,
            "proof": _event_to_json(notice.proof) if notice.proof else None,
        }
    )


def _sealed(notice_id: str, recipients: Recipients | SealedRecipients, sealer: Sealer) -> SealedRecipients:
    if isinstance(recipients, SealedRecipients):
        return recipients
    values = {"mobile": recipients.mobile, "email": recipients.email, "language": recipients.language}
    plain = json.dumps(values | ({"code": recipients.code} if recipients.code else {}))
    return SealedRecipients(sealer.seal(plain, purpose=RECIPIENTS_SEALED_FOR, owner=notice_id))


def open_recipients(notice_id: str, recipients: SealedRecipients, sealer: Sealer) -> Recipients:
    return _recipients_from(json.loads(sealer.open(recipients.sealed, purpose=RECIPIENTS_SEALED_FOR, owner=notice_id)))


def _recipients_from(values: dict[str, Any]) -> Recipients:
    return Recipients(values.get("mobile"), values.get("email"), Language(values["language"]), values.get("code"))


def _event_to_json(event: SecurityEvent) -> dict[str, Any]:
    return {"type": event.type.value, "at": event.at.isoformat(), "reference": event.reference}


# The kinds queued with recipients of their own before recipients were sealed (14aa31c): only theirs are
# taken as they were then, in plain (the notice queue keeps a message 4 days, its dead-letter queue 14:
# this can go 14 days after that commit's deploy). Any other plain recipients are what a
# role that may queue but not seal wrote: taken, MinID would send its words to whoever that role chose.
PLAIN_RECIPIENTS_ONCE = frozenset(
    {NoticeKind.RE_ENROLLED, NoticeKind.CONTACT_CHANGED, NoticeKind.CONTACT_REMOVED, NoticeKind.CONTACT_ADDED}
)


def _queued_recipients(kind: NoticeKind, recipients: Any) -> Recipients | SealedRecipients | None:
    if not recipients:
        return None
    if isinstance(recipients, dict):  # queued before recipients were sealed
        if kind not in PLAIN_RECIPIENTS_ONCE:
            raise ValueError(f"a {kind.value} notice carries no recipients in plain")
        return _recipients_from(recipients | {"code": None})  # never a code
    return SealedRecipients(str(recipients))


def notice_from_json(body: str) -> Notice:
    """The notice of a queue message; its recipients stay sealed until it is delivered."""
    values: dict[str, Any] = json.loads(body)
    kind = NoticeKind(values["kind"])
    return Notice(
        notice_id=str(values["notice_id"]),
        kind=kind,
        person=PersonKey(str(values["person"])),
        params={str(k): str(v) for k, v in dict(values.get("params") or {}).items()},
        recipients=_queued_recipients(kind, values.get("recipients")),
        proof=SecurityEvent(
            SecurityEventType(proof["type"]), datetime.fromisoformat(proof["at"]), str(proof["reference"])
        )
        if (proof := values.get("proof"))
        else None,
    )


class NoticeQueue(Protocol):
    def enqueue(self, notice: Notice, queued: list[Notice] | None = None) -> None:
        """Queue the notice; `queued` gets it once it may be in the queue (its sending begun), not before
        (its recipients being sealed, say): a failure before then queued nothing."""
        ...


class DeliveryRetries(Protocol):
    def later(self, queue: str, receipt: str, seconds: int) -> None:
        """The queued notice (by its queue's ARN and its message's receipt) is handed out again in `seconds`."""
        ...

    def holds_codes(self, queue: str) -> bool:
        """Whether the queue (by its ARN) is the reset codes' own, whose messages are tried again soon."""
        ...


# A notice that failed (SNS or SES refusing, or down) comes back later each time: 1, 2, 4, 8 minutes,
# then every 15. Over the queue's 15 receives a provider's outage of some three hours is waited out,
# where at the queue's own minute the notice was dead-lettered in a quarter of an hour.
RETRY_FIRST_SECONDS = 60
RETRY_MOST_SECONDS = 900
# A reset's code works for 10 minutes: it is tried again every quarter of a minute while it works (some
# 40 receives), and dropped and counted at the first receive after (ResetCodesTooLateAlarm). On the
# notices' waits its fourth failure would have it wait past the code queue's retention, unseen.
RETRY_CODE_SECONDS = 15


def retry_after(receive_count: int, *, code: bool = False) -> int:
    """When a notice (a reset's code) that failed on its `receive_count`-th receive is handed out again,
    in seconds."""
    if code:
        return RETRY_CODE_SECONDS
    return min(RETRY_FIRST_SECONDS * (1 << min(max(receive_count - 1, 0), 10)), RETRY_MOST_SECONDS)


class SmsSender(Protocol):
    def may_give_up_on(self, error: Exception) -> bool:
        """Whether a failure of send_sms (neither Undeliverable nor MaybeSent) lets a code's SMS be given up
        on for its e-mail: the provider's own, proving that nothing was sent (one that may be out must not go
        on two; the invocation's time run out is no sign of the provider failing)."""
        ...

    def send_sms(self, to: str, text: str) -> None:
        """Raises Undeliverable when the provider refuses the number itself."""
        ...


class EmailSender(Protocol):
    def send_email(self, to: str, message: Message) -> None:
        """Raises Undeliverable when the provider refuses the address itself."""
        ...


class Claim(StrEnum):
    CLAIMED = "claimed"  # this sender sends now
    # this sender sends now, over a claim another let lapse (or may have: its claim's answer lost), whose
    # send may have gone out: the channel is not given up on for another (a code on one channel)
    CLAIMED_AFTER_ANOTHER = "claimed-after-another"
    SENT = "sent"  # sent already: nothing to do
    REFUSED = "refused"  # refused for good by the provider before, or given up on: nothing to do on it
    IN_FLIGHT = "in-flight"  # another sender is sending now; if it fails, its claim lapses


class Delivered(Value, frozen=True):
    """What a delivery did now: the channels it sent on, and those the provider refused for good. Of
    those sent on, `unrecorded` are those the ledger could not be told of (see NoticeDelivery.deliver).
    `given_up`: a reset's code's mobile, failing (SMS_TRIED_FOR), given up on for the e-mail."""

    sent: list[Channel] = field(default_factory=list)
    refused: list[Channel] = field(default_factory=list)
    unrecorded: list[Channel] = field(default_factory=list)
    given_up: list[Channel] = field(default_factory=list)
    # of those refused, the ones the ledger could not be told of (DynamoDB failing): tried again by a later
    # delivery once their claims lapse, and refused again, sending nothing; the operators' to know
    refusals_unrecorded: list[Channel] = field(default_factory=list)
    too_late: bool = False  # a code for someone, come after it expired: dropped (the person waits in vain)
    unproven: bool = False  # its change was never made (no proof within PROOF_WAIT): dropped


class NoticeInFlight(Exception):
    """Another sender holds a channel of this notice; deliver it again after the claim lapses."""


class MaybeSent(Exception):
    """Raised by a sender: the provider's answer never came (it timed out, or the connection closed after
    the message went), or it answered a failure of its own after it may have handed the message on, or
    an attempt before the last did either; so the message may be out. Its claim is kept: sent again once
    the claim lapses (CLAIM_LEASE), not at every delivery in between (a reset code's comes back every 15
    seconds). A code sent so stands, as one sent: given back, the one that may have come would be judged
    wrong."""


def send_codes(
    sms: SmsSender,
    email: EmailSender,
    messages: Mapping[Channel, tuple[str, Message]],
    sent: list[Channel],
    *,
    resent: bool,
) -> None:
    """Each message to its address (`messages`: by channel), in turn, its channel added to `sent` once made;
    any failure stops them at once. One that may have been made (MaybeSent) counts as made; for codes
    `resent` (their hashes written before, in place of those sent before) the others are still made, so
    that the other contact is not left with its code replaced and none sent, and it is raised after them.
    First codes are written after they are sent: none is, and a code sent after it would never work."""
    maybe: MaybeSent | None = None
    for channel, (to, message) in messages.items():
        try:
            if channel is Channel.SMS:
                sms.send_sms(to, message.sms)
            else:
                email.send_email(to, message)
        except MaybeSent as error:
            sent.append(channel)
            if not resent:
                raise
            maybe = maybe or error
            continue
        sent.append(channel)
    if maybe is not None:
        raise maybe


def _raised(first: Exception | None, then: Exception) -> Exception:
    """Of a delivery's failures, the one it raises: the first, but a provider's over another sender's hold
    (a real failure is logged, counted and backed off; only a hold alone is a quiet wait). The one not
    raised, but a hold, is told in notes of the one raised, with what it left undone (its own notes)."""
    if first is None or isinstance(first, NoticeInFlight):
        return then
    if not isinstance(then, NoticeInFlight):
        first.add_note(f"The other channel failed too: {type(then).__name__}")
        carry_notes(first, then)
    return first


class NoticeNotYet(Exception):
    """The change the notice tells of is not made yet; deliver it again later."""


class DeliveryLedger(Protocol):
    """Which channels of which notices have been sent, so that retries do not send twice."""

    def claim(self, notice_id: str, channel: Channel, now: datetime, lease: timedelta) -> Claim: ...

    def mark_sent(self, notice_id: str, channel: Channel, now: datetime) -> None: ...

    def mark_refused(self, notice_id: str, channel: Channel, now: datetime) -> None:
        """The provider refused the recipient for good: a retry of the notice does not try it again."""
        ...

    def give_up(self, notice_id: str, channel: Channel, now: datetime) -> None:
        """A claimed channel whose send failed, given up on: its code goes to another channel, and a retry of
        the notice does not try this one again (claimed, it is as refused)."""
        ...

    def release(self, notice_id: str, channel: Channel, *, after_another: bool = False) -> None:
        """A claim this ledger holds given back (its send failed, nothing sent; or given up on, and the next
        channel failing too: _given_back). One claimed after another's (`after_another`) is left lapsed, not
        removed: whoever claims it next is told so too (that send may be out). Another's claim, made or sent on
        since, is left as it is."""
        ...

    def state_of(self, notice_id: str, channel: Channel) -> str | None:
        """ "sent", "refused" (by the provider, for good), "given_up", "sending", or None: what the ledger
        holds of the notice on the channel (read at once: consistently)."""
        ...


# The months are spelt alike in bokmål and nynorsk.
_MONTHS_NORWEGIAN = (
    "januar",
    "februar",
    "mars",
    "april",
    "mai",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "desember",
)


def long_date(day: date, language: Language) -> str:
    if language is Language.ENGLISH:
        return f"{day.day} {day:%B} {day.year}"
    return f"{day.day}. {_MONTHS_NORWEGIAN[day.month - 1]} {day.year}"


def told_time(moment: datetime, today: date, language: Language) -> str:
    """When, in Norway's time, as each language writes it (Språkrådet's "kl. 14.05"), with its day when it is
    not `today`: "at 14:05", "yesterday at 23:59", "on 30 Sep at 23:59"; "kl. 14.05", "i går kl. 23.59",
    "30.9. kl. 23.59" (short: a lock's SMS has room for little more)."""
    there = moment.astimezone(NORWAY)
    english = language is Language.ENGLISH
    time = f"at {there:%H:%M}" if english else f"kl. {there:%H.%M}"
    day = there.date()
    if day == today:
        return time
    if day == today - timedelta(days=1):
        return f"yesterday {time}" if english else f"i går {time}"
    return f"on {day.day} {day:%b} {time}" if english else f"{day.day}.{day.month}. {time}"


# Each notice's texts, (subject, what happened, what to do), in bokmål, nynorsk and English.
Texts = tuple[str, str, str]


def _posted(language: Language, params: Mapping[str, str]) -> Texts:
    dated = long_date(date.fromisoformat(params["date"]), language)
    if language is Language.ENGLISH:
        return (
            "Your PIN code letter has been posted",
            f"The PIN code letter you ordered for MinID was posted on {dated}.",
            "If you did not order it, log in to MinID and block the codes, "
            f"or call MinID user support on +47 {SUPPORT_PHONE}.",
        )
    if language is Language.NYNORSK:
        return (
            "PIN-kodebrevet ditt er sendt",
            f"PIN-kodebrevet du bestilte til MinID, vart sendt i posten {dated}.",
            f"Har du ikkje bestilt det? Logg inn på MinID og sperr kodane, eller ring brukarstøtta på {SUPPORT_PHONE}.",
        )
    return (
        "PIN-kodebrevet ditt er sendt",
        f"PIN-kodebrevet du bestilte til MinID, ble sendt i posten {dated}.",
        f"Har du ikke bestilt det? Logg inn på MinID og sperr kodene, eller ring brukerstøtten på {SUPPORT_PHONE}.",
    )


def _refused(language: Language, params: Mapping[str, str]) -> Texts:
    """An order refused (`reason`: "quota", the default; "no-address": the population register has no
    address the post can deliver to, which the person can have put right, and order again;
    "number-replaced": the register has replaced the number ordered with, and the person orders with the
    new one; "unprintable": the letter cannot print the name or address as the register has them, which
    the person has checked with Skatteetaten, or calls support; or "protected-address": the register has the
    address as strictly confidential, and no letter goes to it: the person calls support, told no more)."""
    reason = params.get("reason")
    if language is Language.ENGLISH:
        why, then = {
            "no-address": (
                "cannot send one: the National Population Register has no address we can post it to.",
                "Check your address with the Norwegian Tax Administration, then order again. ",
            ),
            "number-replaced": (
                "cannot send one: the National Population Register has replaced the number it was ordered with "
                "by a new one.",
                "Order with your new national identity number. ",
            ),
            "unprintable": (
                "cannot send one: your name or address in the National Population Register cannot be printed.",
                f"Check them with the Norwegian Tax Administration, or call MinID support on +47 {SUPPORT_PHONE}. ",
            ),
            # (not naming the protection: anyone may order in the person's name, and the phone or mailbox
            # may be one the person they are protected from reads)
            "protected-address": (
                "cannot send it to you by post.",
                f"Call MinID support on +47 {SUPPORT_PHONE}. ",
            ),
        }.get(
            reason or "",
            ("will not send one now: a letter was sent in the last 24 hours, or three in the last 30 days.", ""),
        )
        return (
            "An order for PIN codes",
            "We received an order for a MinID PIN code letter for you, but " + why,
            then + "If you did not order it, you need not do anything.",
        )
    if language is Language.NYNORSK:
        why, then = {
            "no-address": (
                "kan ikkje sende det: Folkeregisteret har inga adresse vi kan sende brevet til.",
                "Sjekk adressa di hos Skatteetaten, og bestill på nytt. ",
            ),
            "number-replaced": (
                "kan ikkje sende det: Folkeregisteret har erstatta nummeret det vart bestilt med, med eit nytt.",
                "Bestill med det nye fødselsnummeret ditt. ",
            ),
            "unprintable": (
                "kan ikkje sende det: namnet eller adressa di i Folkeregisteret kan ikkje skrivast ut på brevet.",
                f"Sjekk dei hos Skatteetaten, eller ring brukarstøtta for MinID på +47 {SUPPORT_PHONE}. ",
            ),
            "protected-address": (
                "kan ikkje sende det til deg i posten.",
                f"Ring brukarstøtta for MinID på +47 {SUPPORT_PHONE}. ",
            ),
        }.get(
            reason or "",
            (
                "sender ikkje eit nytt brev no: det er sendt eit brev det siste døgnet, eller tre brev dei siste "
                "30 dagane.",
                "",
            ),
        )
        return (
            "Bestilling av PIN-kodar",
            "Vi har fått ei bestilling av PIN-kodebrev til MinID for deg, men " + why,
            then + "Har du ikkje bestilt, treng du ikkje gjere noko.",
        )
    why, then = {
        "no-address": (
            "kan ikke sende det: Folkeregisteret har ingen adresse vi kan sende brevet til.",
            "Sjekk adressen din hos Skatteetaten, og bestill på nytt. ",
        ),
        "number-replaced": (
            "kan ikke sende det: Folkeregisteret har erstattet nummeret det ble bestilt med, med et nytt.",
            "Bestill med det nye fødselsnummeret ditt. ",
        ),
        "unprintable": (
            "kan ikke sende det: navnet eller adressen din i Folkeregisteret kan ikke skrives ut på brevet.",
            f"Sjekk dem hos Skatteetaten, eller ring brukerstøtten for MinID på +47 {SUPPORT_PHONE}. ",
        ),
        "protected-address": (
            "kan ikke sende det til deg i posten.",
            f"Ring brukerstøtten for MinID på +47 {SUPPORT_PHONE}. ",
        ),
    }.get(
        reason or "",
        ("sender ikke et nytt brev nå: det er sendt et brev det siste døgnet, eller tre brev de siste 30 dagene.", ""),
    )
    return (
        "Bestilling av PIN-koder",
        "Vi har fått en bestilling av PIN-kodebrev til MinID for deg, men " + why,
        then + "Har du ikke bestilt, trenger du ikke gjøre noe.",
    )


def _letter_failed(language: Language, params: Mapping[str, str]) -> Texts:
    if language is Language.ENGLISH:
        return (
            "Your PIN code letter could not be sent",
            "A MinID PIN code letter ordered for you could not be printed or posted, and its codes will never "
            "work. We are looking into it.",
            f"If you ordered it, call MinID user support on +47 {SUPPORT_PHONE}, or order a new letter later.",
        )
    if language is Language.NYNORSK:
        return (
            "PIN-kodebrevet ditt kunne ikkje sendast",
            "Eit PIN-kodebrev til MinID som vart bestilt til deg, kunne ikkje skrivast ut eller sendast, og kodane "
            "i det vil aldri verke. Vi ser på saka.",
            f"Har du bestilt det, kan du ringje brukarstøtta på {SUPPORT_PHONE}, eller bestille eit nytt brev seinare.",
        )
    return (
        "PIN-kodebrevet ditt kunne ikke sendes",
        "Et PIN-kodebrev til MinID som ble bestilt til deg, kunne ikke skrives ut eller sendes, og kodene i det "
        "vil aldri virke. Vi ser på saken.",
        f"Har du bestilt det, kan du ringe brukerstøtten på {SUPPORT_PHONE}, eller bestille et nytt brev senere.",
    )


def _letter_blocked(language: Language, params: Mapping[str, str]) -> Texts:
    if language is Language.ENGLISH:
        return (
            "Your PIN codes are blocked",
            "Wrong PIN codes from your MinID PIN code letter were given five times, so its codes are blocked.",
            f"If it was not you, someone may have tried to use your identity number. Order a new letter, or call "
            f"MinID user support on +47 {SUPPORT_PHONE}.",
        )
    if language is Language.NYNORSK:
        return (
            "PIN-kodane dine er sperra",
            "Det er gitt feil PIN-kodar frå PIN-kodebrevet ditt til MinID fem gonger, så kodane i brevet er sperra.",
            "Var det ikkje deg, kan nokon ha prøvd å bruke fødselsnummeret eller D-nummeret ditt. "
            f"Bestill eit nytt brev, eller ring brukarstøtta på {SUPPORT_PHONE}.",
        )
    return (
        "PIN-kodene dine er sperret",
        "Det er gitt feil PIN-koder fra PIN-kodebrevet ditt til MinID fem ganger, så kodene i brevet er sperret.",
        "Var det ikke deg, kan noen ha prøvd å bruke fødselsnummeret eller D-nummeret ditt. "
        f"Bestill et nytt brev, eller ring brukerstøtten på {SUPPORT_PHONE}.",
    )


def _letters_blocked_by_owner(language: Language, params: Mapping[str, str]) -> Texts:
    """The person's own block (POST /v1/me/pin-letters/block), or support's on their call (`by`: "support",
    tools/block_letters.py): told, so that one who took over a session, or called in the person's name,
    cannot block the letters unseen. The codes of every letter blocked, one or more: said of the codes."""
    dated = long_date(date.fromisoformat(params["date"]), language)
    support = params.get("by") == "support"
    if language is Language.ENGLISH:
        return (
            "Your PIN codes were blocked at your request",
            f"Your MinID PIN codes were blocked {'by MinID user support ' if support else ''}at your request on "
            f"{dated}, and no longer work.",
            (
                "If you did not ask for it, call"
                if support
                else "If it was not you, someone may have logged in as you. Call"
            )
            + f" MinID user support on +47 {SUPPORT_PHONE} at once.",
        )
    if language is Language.NYNORSK:
        return (
            "PIN-kodane dine er sperra etter ønske frå deg",
            f"PIN-kodane dine til MinID vart sperra {'av brukarstøtta ' if support else ''}{dated}, slik du bad om, "
            "og verkar ikkje lenger.",
            ("Bad du ikkje om det, ring" if support else "Var det ikkje deg, kan nokon ha logga inn som deg. Ring")
            + f" brukarstøtta på {SUPPORT_PHONE} med ein gong.",
        )
    return (
        "PIN-kodene dine er sperret etter ønske fra deg",
        f"PIN-kodene dine til MinID ble sperret {'av brukerstøtten ' if support else ''}{dated}, slik du ba om, "
        "og virker ikke lenger.",
        ("Ba du ikke om det, ring" if support else "Var det ikke deg, kan noen ha logget inn som deg. Ring")
        + f" brukerstøtten på {SUPPORT_PHONE} med en gang.",
    )


def _reservation_changed(language: Language, params: Mapping[str, str]) -> Texts:
    """A reservation against digital communication made or lifted (`reserved`: "true" or "false"): told,
    so that one who took over a session cannot cut the person off from the public sector's notices, or
    lift their choice, unseen."""
    dated = long_date(date.fromisoformat(params["date"]), language)
    reserved = params.get("reserved") == "true"
    if language is Language.ENGLISH:
        if reserved:
            return (
                "You are reserved against digital communication",
                f"On {dated} your MinID reserved you against digital communication from the public sector: "
                "public services will write to you by post instead of by e-mail and SMS.",
                "If it was not you, log in to MinID and lift the reservation, or call MinID user support on "
                f"+47 {SUPPORT_PHONE}.",
            )
        return (
            "Your reservation against digital communication is lifted",
            f"On {dated} your MinID lifted your reservation against digital communication from the public "
            "sector: public services may now notify you by e-mail and SMS.",
            "If it was not you, log in to MinID and reserve yourself again, or call MinID user support on "
            f"+47 {SUPPORT_PHONE}.",
        )
    if language is Language.NYNORSK:
        if reserved:
            return (
                "Du har reservert deg mot digital kommunikasjon",
                f"Den {dated} vart MinID-en din brukt til å reservere deg mot digital kommunikasjon frå det "
                "offentlege: offentlege verksemder sender deg brev i posten i staden for e-post og SMS.",
                "Var det ikkje deg, logg inn på MinID og opphev reservasjonen, eller ring brukarstøtta på "
                f"{SUPPORT_PHONE}.",
            )
        return (
            "Reservasjonen din mot digital kommunikasjon er oppheven",
            f"Den {dated} vart reservasjonen din mot digital kommunikasjon frå det offentlege oppheven med "
            "MinID-en din: offentlege verksemder kan no varsle deg på e-post og SMS.",
            f"Var det ikkje deg, logg inn på MinID og reserver deg igjen, eller ring brukarstøtta på {SUPPORT_PHONE}.",
        )
    if reserved:
        return (
            "Du har reservert deg mot digital kommunikasjon",
            f"Den {dated} ble MinID-en din brukt til å reservere deg mot digital kommunikasjon fra det "
            "offentlige: offentlige virksomheter sender deg brev i posten i stedet for e-post og SMS.",
            "Var det ikke deg, logg inn på MinID og opphev reservasjonen, eller ring brukerstøtten på "
            f"{SUPPORT_PHONE}.",
        )
    return (
        "Reservasjonen din mot digital kommunikasjon er opphevet",
        f"Den {dated} ble reservasjonen din mot digital kommunikasjon fra det offentlige opphevet med "
        "MinID-en din: offentlige virksomheter kan nå varsle deg på e-post og SMS.",
        f"Var det ikke deg, logg inn på MinID og reserver deg igjen, eller ring brukerstøtten på {SUPPORT_PHONE}.",
    )


def _enrolled(language: Language, params: Mapping[str, str]) -> Texts:
    """`reserved` ("true"): the person is reserved against digital communication (kept from before a
    re-enrolment), and public services do not use the contact: the welcome does not say they do."""
    reserved = params.get("reserved") == "true"
    if language is Language.ENGLISH:
        return (
            "Welcome to MinID",
            "You are now a MinID user, and this contact is registered in the common contact register. You are "
            "reserved against digital communication, so only MinID uses it to notify you."
            if reserved
            else "You are now a MinID user, and this contact is registered in the common contact register, "
            "where public services find it to notify you.",
            f"If you did not register, call MinID user support on +47 {SUPPORT_PHONE} at once.",
        )
    if language is Language.NYNORSK:
        return (
            "Velkomen som brukar av MinID",
            "Du er no brukar av MinID, og denne kontaktinformasjonen er registrert i kontaktregisteret. Du er "
            "reservert mot digital kommunikasjon, så berre MinID brukar han til å varsle deg."
            if reserved
            else "Du er no brukar av MinID, og denne kontaktinformasjonen er registrert i kontaktregisteret, som det "
            "offentlege brukar når det skal varsle deg.",
            f"Har ikkje du registrert deg, ring brukarstøtta på {SUPPORT_PHONE} med ein gong.",
        )
    return (
        "Velkommen som bruker av MinID",
        "Du er nå bruker av MinID, og denne kontaktinformasjonen er registrert i kontaktregisteret. Du er "
        "reservert mot digital kommunikasjon, så bare MinID bruker den til å varsle deg."
        if reserved
        else "Du er nå bruker av MinID, og denne kontaktinformasjonen er registrert i kontaktregisteret, der det "
        "offentlige finner den når det skal varsle deg.",
        f"Har ikke du registrert deg, ring brukerstøtten på {SUPPORT_PHONE} med en gang.",
    )


def _re_enrolled(language: Language, params: Mapping[str, str]) -> Texts:
    if language is Language.ENGLISH:
        return (
            "Your MinID was registered again",
            "Your MinID was registered again with a new PIN code letter: it has a new password, and new contact "
            "details that replace this one.",
            f"If it was not you, call MinID user support on +47 {SUPPORT_PHONE} at once.",
        )
    if language is Language.NYNORSK:
        return (
            "MinID-en din er registrert på nytt",
            "MinID-en din er registrert på nytt med eit nytt PIN-kodebrev og har fått nytt passord og ny "
            "kontaktinformasjon, som erstattar denne.",
            f"Var det ikkje deg, ring brukarstøtta på {SUPPORT_PHONE} med ein gong.",
        )
    return (
        "MinID-en din er registrert på nytt",
        "MinID-en din er registrert på nytt med et nytt PIN-kodebrev: den har nytt passord og ny "
        "kontaktinformasjon, som erstatter denne.",
        f"Var det ikke deg, ring brukerstøtten på {SUPPORT_PHONE} med en gang.",
    )


# What a lock advises (by its notice's `known`, from its event's `after`): to one who may have locked it
# themselves (""), to wait or make a new password; past the password (a wrong code), someone knew the
# password, and at a change someone had a session: either way a new password made with the letter is what
# stops them (it ends every session, and lifts the lock), advised shorter to keep the SMS in two segments.
_LOCK_ADVICE = {
    Language.ENGLISH: {
        "": "If it was you, wait {how_long}, or reset your password with your PIN code letter. If it was not you, "
        "call MinID user support on +47 {phone}.",
        "password": "If it was you, wait {how_long}. If not, someone knows your password: make a new one with your "
        "PIN code letter at once, and call MinID user support on +47 {phone}.",
        "session": "If it was you, wait {how_long}. If not, someone is logged in as you: make a new password with "
        "your PIN code letter at once (it logs everyone out), and call MinID user support on +47 {phone}.",
    },
    Language.NYNORSK: {
        "": "Var det deg, kan du vente {how_long} eller lage nytt passord med PIN-kodebrevet. Var det ikkje deg, "
        "ring brukarstøtta på {phone}.",
        "password": "Var det deg, vent {how_long}. Viss ikkje, kjenner nokon passordet ditt: lag eit nytt med "
        "PIN-kodebrevet med ein gong, og ring brukarstøtta på {phone}.",
        "session": "Var det deg, vent {how_long}. Viss ikkje, er nokon logga inn som deg: lag nytt passord med "
        "PIN-kodebrevet med ein gong (det loggar ut alle), og ring brukarstøtta på {phone}.",
    },
    Language.BOKMAL: {
        "": "Var det deg, kan du vente {how_long} eller lage nytt passord med PIN-kodebrevet. Var det ikke deg, "
        "ring brukerstøtten på {phone}.",
        "password": "Var det deg, vent {how_long}. Hvis ikke, kjenner noen passordet ditt: lag et nytt med "
        "PIN-kodebrevet med en gang, og ring brukerstøtten på {phone}.",
        "session": "Var det deg, vent {how_long}. Hvis ikke, er noen logget inn som deg: lag nytt passord med "
        "PIN-kodebrevet med en gang (det logger ut alle), og ring brukerstøtten på {phone}.",
    },
}


def _locked(language: Language, params: Mapping[str, str]) -> Texts:
    """The lock as the policy that made it has it (`failures`, `minutes`: deploy parameters), for a wrong
    password or second factor at a login, or a wrong current password at a change (`known`: what the one
    who made it had, if anything but an identity number: "password", "session"). `at`: when it was locked
    (its event's time, NoticeDelivery._message), said, for a notice a provider's outage held up for hours,
    with its day if it is not `today` (the day it is told on, in Norway; else the lock's)."""
    default = LockoutPolicy()  # for a notice queued before notices told the policy
    told = params.get("failures", "")
    # a count (LockoutPolicy's threshold), never words of the queue's: MinID's message says only what it writes
    failures = str(int(told)) if told.isascii() and told.isdigit() and 0 < int(told) < 100 else str(default.threshold)
    how_long = _how_long(int(params.get("minutes", default.duration.total_seconds() // 60)), language)
    advices = _LOCK_ADVICE[language]
    advice = advices.get(params.get("known", ""), advices[""]).format(how_long=how_long, phone=SUPPORT_PHONE)
    locked_at = datetime.fromisoformat(params["at"]) if "at" in params else None
    today = date.fromisoformat(params["today"]) if "today" in params else None
    at = told_time(locked_at, today or date_in_norway(locked_at), language) if locked_at else None
    if language is Language.ENGLISH:
        return (
            f"Your MinID was locked {at}" if at else f"Your MinID is locked for {how_long}",
            f"Wrong details were given for your MinID {failures} times in a row"
            + (f": locked {at} for {how_long}." if at else f", so it is locked for {how_long}."),
            advice,
        )
    if language is Language.NYNORSK:
        return (
            f"MinID-en din vart sperra {at}" if at else f"MinID-en din er sperra i {how_long}",
            f"Det er gitt feil opplysningar for MinID-en din {failures} gonger på rad, så "
            + (f"{at} vart MinID-en sperra i {how_long}." if at else f"MinID-en er sperra i {how_long}."),
            advice,
        )
    return (
        f"MinID-en din ble sperret {at}" if at else f"MinID-en din er sperret i {how_long}",
        f"Det er gitt feil opplysninger for MinID-en din {failures} ganger på rad, så "
        + (f"{at} ble den sperret i {how_long}." if at else f"den er sperret i {how_long}."),
        advice,
    )


def _how_long(minutes: int, language: Language) -> str:
    """A lock's length in words."""
    if minutes == 1:
        words = {Language.ENGLISH: "a minute", Language.BOKMAL: "ett minutt", Language.NYNORSK: "eitt minutt"}
    elif minutes == 60:
        words = {Language.ENGLISH: "an hour", Language.BOKMAL: "en time", Language.NYNORSK: "ein time"}
    elif minutes % 60 == 0:
        hours = minutes // 60
        words = {
            Language.ENGLISH: f"{hours} hours",
            Language.BOKMAL: f"{hours} timer",
            Language.NYNORSK: f"{hours} timar",
        }
    else:
        words = {
            Language.ENGLISH: f"{minutes} minutes",
            Language.BOKMAL: f"{minutes} minutter",
            Language.NYNORSK: f"{minutes} minutt",
        }
    return words[language]


def _credential_changed(what_en: str, what_nb: str, what_nn: str) -> Callable[[Language, Mapping[str, str]], Texts]:
    def texts(language: Language, params: Mapping[str, str]) -> Texts:
        if language is Language.ENGLISH:
            return (
                f"Your MinID {what_en}",
                f"Your MinID {what_en}.",
                f"If it was not you, call MinID user support on +47 {SUPPORT_PHONE} at once.",
            )
        if language is Language.NYNORSK:
            return (
                f"{what_nn[0].upper()}{what_nn[1:]}",
                f"{what_nn[0].upper()}{what_nn[1:]}.",
                f"Var det ikkje deg, ring brukarstøtta på {SUPPORT_PHONE} med ein gong.",
            )
        return (
            f"{what_nb[0].upper()}{what_nb[1:]}",
            f"{what_nb[0].upper()}{what_nb[1:]}.",
            f"Var det ikke deg, ring brukerstøtten på {SUPPORT_PHONE} med en gang.",
        )

    return texts


# Of each language: what each change of the app is told as (subject, first line), and what to do if it was
# not the person's, when an app came in (added, or in place of theirs) and when it was removed.
_APP_CHANGES: dict[Language, tuple[Mapping[str, tuple[str, str]], str, str]] = {
    Language.ENGLISH: (
        {
            "added": ("An authenticator app was added to your MinID",) * 2,
            "replaced": (
                "The authenticator app in your MinID was replaced",
                "The authenticator app in your MinID was replaced by another. The earlier app's codes no longer work",
            ),
            "removed": ("The authenticator app was removed from your MinID",) * 2,
        },
        "If it was not you, log in to MinID, remove the app and change your password, or call MinID user support "
        "on +47 {phone} at once.",
        "If it was not you, call MinID user support on +47 {phone} at once.",
    ),
    Language.BOKMAL: (
        {
            "added": ("En autentiseringsapp er lagt til i MinID-en din",) * 2,
            "replaced": (
                "Autentiseringsappen i MinID-en din er byttet ut",
                "Autentiseringsappen i MinID-en din er byttet ut med en annen. Kodene fra den forrige appen virker "
                "ikke lenger",
            ),
            "removed": ("Autentiseringsappen er fjernet fra MinID-en din",) * 2,
        },
        "Var det ikke deg, logg inn på MinID, fjern appen og bytt passord, eller ring brukerstøtten på {phone} med "
        "en gang.",
        "Var det ikke deg, ring brukerstøtten på {phone} med en gang.",
    ),
    Language.NYNORSK: (
        {
            "added": ("Ein autentiseringsapp er lagd til i MinID-en din",) * 2,
            "replaced": (
                "Autentiseringsappen i MinID-en din er bytt ut",
                "Autentiseringsappen i MinID-en din er bytt ut med ein annan. Kodane frå den førre appen verkar ikkje "
                "lenger",
            ),
            "removed": ("Autentiseringsappen er fjerna frå MinID-en din",) * 2,
        },
        "Var det ikkje deg, logg inn på MinID, fjern appen og byt passord, eller ring brukarstøtta på {phone} med "
        "ein gong.",
        "Var det ikkje deg, ring brukarstøtta på {phone} med ein gong.",
    ),
}


def _second_factor_changed(language: Language, params: Mapping[str, str]) -> Texts:
    """`change`: "added", "replaced" (another app in place of the one before, whose codes work no more) or
    "removed" (a notice queued before it was told has none of them: both adding and removing are named). An
    app added by another is a second factor in their hands: the person is told to remove it."""
    change = params.get("change", "")
    told, came_in, removed = _APP_CHANGES[language]
    if change not in told:
        return _credential_changed(
            "authenticator app was added or removed",
            "en autentiseringsapp er lagt til eller fjernet",
            "det er lagt til eller fjerna ein autentiseringsapp",
        )(language, params)
    subject, line = told[change]
    return subject, f"{line}.", (removed if change == "removed" else came_in).format(phone=SUPPORT_PHONE)


def _contact_changed(language: Language, params: Mapping[str, str]) -> Texts:
    """To the contact being replaced ("from this one"), or (`told` "other") to the person's other contact."""
    mobile = params.get("channel", "mobile") == "mobile"
    here = params.get("told") != "other"
    if language is Language.ENGLISH:
        thing = "mobile number" if mobile else "e-mail address"
        return (
            f"Your {thing} is being changed",
            f"The {thing} in the contact register is being changed {'from this one ' if here else ''}to a new one, "
            "through your MinID.",
            "If it was not you, log in to MinID and change it back, or call MinID user support on "
            f"+47 {SUPPORT_PHONE}.",
        )
    if language is Language.NYNORSK:  # mobilnummeret is neuter, e-postadressa feminine
        thing, your, this, new, short = (
            ("Mobilnummeret", "ditt", "dette", "eit nytt", "nummeret")
            if mobile
            else ("E-postadressa", "di", "denne", "ei ny", "adressa")
        )
        return (
            f"{thing} {your} blir endra",
            f"{thing} i kontaktregisteret blir endra {f'frå {this} ' if here else ''}til {new}, med MinID-en din.",
            f"Var det ikkje deg, logg inn på MinID og endre {short} tilbake, eller ring brukarstøtta på "
            f"{SUPPORT_PHONE}.",
        )
    # mobilnummeret is neuter, e-postadressen masculine
    thing, your, this, new, it = (
        ("Mobilnummeret", "ditt", "dette", "et nytt", "det")
        if mobile
        else ("E-postadressen", "din", "denne", "en ny", "den")
    )
    return (
        f"{thing} {your} blir endret",
        f"{thing} i kontaktregisteret blir endret {f'fra {this} ' if here else ''}til {new}, med MinID-en din.",
        f"Var det ikke deg, logg inn på MinID og endre {it} tilbake, eller ring brukerstøtten på {SUPPORT_PHONE}.",
    )


def _contact_added(language: Language, params: Mapping[str, str]) -> Texts:
    mobile = params.get("channel", "mobile") == "mobile"
    if language is Language.ENGLISH:
        thing = "A mobile number" if mobile else "An e-mail address"
        return (
            f"{thing} is being added",
            f"{thing} is being added to the contact register through your MinID. Codes for logging in and "
            "notices may go there once it is verified.",
            f"If it was not you, log in to MinID and remove it, or call MinID user support on +47 {SUPPORT_PHONE}.",
        )
    if language is Language.NYNORSK:
        thing, short = ("eit mobilnummer", "nummeret") if mobile else ("ei e-postadresse", "adressa")
        return (
            f"Det blir lagt til {thing}",
            f"Det blir lagt til {thing} i kontaktregisteret med MinID-en din. Kodar for innlogging og varsel kan "
            f"gå dit når {short} er stadfest.",
            f"Var det ikkje deg, logg inn på MinID og fjern {short}, eller ring brukarstøtta på {SUPPORT_PHONE}.",
        )
    thing, it = ("Et mobilnummer", "det") if mobile else ("En e-postadresse", "den")
    return (
        f"{thing} blir lagt til",
        f"{thing} blir lagt til i kontaktregisteret med MinID-en din. Koder for innlogging og varsler kan gå "
        f"dit når {it} er bekreftet.",
        f"Var det ikke deg, logg inn på MinID og fjern {it}, eller ring brukerstøtten på {SUPPORT_PHONE}.",
    )


def _contact_removed(language: Language, params: Mapping[str, str]) -> Texts:
    if language is Language.ENGLISH:
        return (
            "A contact was removed",
            "This contact was removed from the contact register through your MinID. Public services will no "
            "longer notify you here.",
            f"If it was not you, call MinID user support on +47 {SUPPORT_PHONE}.",
        )
    if language is Language.NYNORSK:
        return (
            "Kontaktinformasjon er fjerna",
            "Denne kontaktinformasjonen er fjerna frå kontaktregisteret med MinID-en din. Det offentlege varslar "
            "deg ikkje her lenger.",
            f"Var det ikkje deg, ring brukarstøtta på {SUPPORT_PHONE}.",
        )
    return (
        "Kontaktinformasjon er fjernet",
        "Denne kontaktinformasjonen er fjernet fra kontaktregisteret med MinID-en din. Det offentlige varsler "
        "deg ikke her lenger.",
        f"Var det ikke deg, ring brukerstøtten på {SUPPORT_PHONE}.",
    )


# A confirmation reminder's parameter: the record's last confirmation (ISO 8601) it was made for.
REMINDED_OF = "reminded_of"


def _confirmation_reminder(language: Language, params: Mapping[str, str]) -> Texts:
    """`reserved` ("true"): public services do not use the contacts of one reserved against digital
    communication, only MinID does (its own notices): the reminder says so. `contacts`: "mobile",
    "email" or "mobile+email", the ones the person has (both named where it is not given)."""
    reserved = params.get("reserved") == "true"
    held = params.get("contacts", "mobile+email")
    one = held in ("mobile", "email")  # the sentences below, for one contact (it) or both (them)
    if language is Language.ENGLISH:
        things = {"mobile": "mobile number", "email": "e-mail address"}.get(held, "mobile number and e-mail")
        it, they, have = ("it", "it", "has") if one else ("them", "they", "have")
        return (
            "Are your contact details right?",
            f"Your {things} in the contact register {have} not been confirmed for 16 months. "
            + (
                f"You are reserved against digital communication, so only MinID uses {it} to notify you."
                if reserved
                else f"Public services use {it} to notify you."
            ),
            f"Log in to MinID and confirm or update {it}. If {they} {'is' if one else 'are'} not confirmed within "
            f"two months, {they} {'is' if one else 'are'} no longer used.",
        )
    if language is Language.NYNORSK:
        things = {"mobile": "mobilnummeret ditt", "email": "e-postadressa di"}.get(
            held, "mobilnummeret og e-postadressa di"
        )
        it = {"mobile": "det", "email": "ho"}.get(held, "dei")  # nummeret neuter, adressa feminine
        it_object = {"mobile": "det", "email": "henne"}.get(held, "dei")
        return (
            "Er kontaktinformasjonen din rett?",
            f"Du har ikkje stadfest {things} i kontaktregisteret på 16 månader. "
            + (
                f"Du er reservert mot digital kommunikasjon, så berre MinID brukar {it_object} til å varsle deg."
                if reserved
                else f"Det offentlege brukar {it_object} til å varsle deg."
            ),
            f"Logg inn på MinID og stadfest eller oppdater {it_object}. Stadfester du {it_object} ikkje innan to "
            f"månader, blir {it} ikkje nytta lenger.",
        )
    things = {"mobile": "Mobilnummeret ditt", "email": "E-postadressen din"}.get(
        held, "Mobilnummeret og e-postadressen din"
    )
    it = {"mobile": "det", "email": "den"}.get(held, "de")
    it_object = {"mobile": "det", "email": "den"}.get(held, "dem")
    return (
        "Er kontaktinformasjonen din riktig?",
        f"{things} i kontaktregisteret er ikke bekreftet på 16 måneder. "
        + (
            f"Du er reservert mot digital kommunikasjon, så bare MinID bruker {it_object} til å varsle deg."
            if reserved
            else f"Det offentlige bruker {it_object} til å varsle deg."
        ),
        f"Logg inn på MinID og bekreft eller oppdater {it_object}. Blir {it} ikke bekreftet innen to måneder, "
        f"brukes {it} ikke lenger.",
    )


def _reset_without_letter(language: Language, params: Mapping[str, str]) -> Texts:
    if language is Language.ENGLISH:
        return (
            "Your password could not be reset",
            "A new password for your MinID was asked for, but you have no PIN code letter whose codes can be "
            "used, so no code was sent.",
            "If it was you, order a new PIN code letter (or use the one you have ordered once it comes). If "
            "it was not you, you need do nothing.",
        )
    if language is Language.NYNORSK:
        return (
            "Passordet ditt kunne ikkje lagast på nytt",
            "Det vart bede om nytt passord til MinID-en din, men du har ikkje noko PIN-kodebrev med kodar som "
            "kan brukast, så ingen kode vart send.",
            "Var det deg, bestill eit nytt PIN-kodebrev (eller bruk det du har bestilt, når det kjem). Var det "
            "ikkje deg, treng du ikkje gjere noko.",
        )
    return (
        "Passordet ditt kunne ikke lages på nytt",
        "Det ble bedt om nytt passord til MinID-en din, men du har ikke noe PIN-kodebrev med koder som kan "
        "brukes, så ingen kode ble sendt.",
        "Var det deg, bestill et nytt PIN-kodebrev (eller bruk det du har bestilt, når det kommer). Var det "
        "ikke deg, trenger du ikke gjøre noe.",
    )


_TEXTS: dict[NoticeKind, Callable[[Language, Mapping[str, str]], Texts]] = {
    NoticeKind.PIN_LETTER_POSTED: _posted,
    NoticeKind.PIN_LETTER_REFUSED: _refused,
    NoticeKind.PIN_LETTER_BLOCKED: _letter_blocked,
    NoticeKind.PIN_LETTERS_BLOCKED_BY_OWNER: _letters_blocked_by_owner,
    NoticeKind.PIN_LETTER_FAILED: _letter_failed,
    NoticeKind.ENROLLED: _enrolled,
    NoticeKind.RE_ENROLLED: _re_enrolled,
    NoticeKind.ACCOUNT_LOCKED: _locked,
    NoticeKind.PASSWORD_CHANGED: _credential_changed(
        "password was changed", "passordet ditt er endret", "passordet ditt er endra"
    ),
    NoticeKind.PASSWORD_RESET: _credential_changed(
        "password was reset with your PIN code letter",
        "passordet ditt er laget på nytt med PIN-kodebrevet",
        "passordet ditt er laga på nytt med PIN-kodebrevet",
    ),
    NoticeKind.CONTACT_CHANGED: _contact_changed,
    NoticeKind.CONTACT_REMOVED: _contact_removed,
    NoticeKind.CONTACT_ADDED: _contact_added,
    NoticeKind.CONFIRMATION_REMINDER: _confirmation_reminder,
    NoticeKind.RESERVATION_CHANGED: _reservation_changed,
    NoticeKind.SECOND_FACTOR_CHANGED: _second_factor_changed,
    NoticeKind.PASSWORD_RESET_NO_LETTER: _reset_without_letter,
}


# The kinds told in words of their own (compose); a reset's code is sent as the code's message.
WORDED = tuple(kind for kind in NoticeKind if kind in _TEXTS)


def compose(kind: NoticeKind, language: Language, params: Mapping[str, str]) -> Message:
    """The notice in the person's language."""
    subject, what, advice = _TEXTS[kind](language, params)
    greeting = "Hello," if language is Language.ENGLISH else "Hei,"
    signature = "MinID, Norwegian Digitalisation Agency" if language is Language.ENGLISH else "MinID, Digdir"
    text = f"{greeting}\n\n{what}\n\n{advice}\n\n{signature}\n"
    body = "".join(f"<p>{html.escape(part)}</p>" for part in (greeting, what, advice, signature))
    page = (
        f'<!doctype html><html lang="{language.value}"><head><meta charset="utf-8">'
        f"<title>{html.escape(subject)}</title></head><body>{body}</body></html>"
    )
    return Message(sms=f"MinID: {what} {advice}", subject=f"MinID: {subject}", text=text, html=page)


class _Sent(StrEnum):
    NOW = "now"
    BEFORE = "before"  # nothing to do
    REFUSED_BEFORE = "refused-before"  # nothing to do on it (a code goes to the next channel)
    REFUSED = "refused"  # by the provider, for good, now
    REFUSED_UNRECORDED = "refused-unrecorded"  # so, and the ledger not told (its claim lapses)
    GIVEN_UP = "given-up"  # failing, given up on now: a code goes to the next channel


class NoticeDelivery:
    """Delivers a queued notice to the person's verified contacts."""

    def __init__(
        self,
        *,
        contacts: ContactRegister,
        sms: SmsSender,
        email: EmailSender,
        ledger: DeliveryLedger,
        events: SecurityEventLog,
        sealer: Sealer,
        clock: Clock,
        retries: DeliveryRetries,
        population: PopulationRegister,
        unrecorded: Callable[[Notice, Sequence[Channel]], None],
        partly: Callable[[Notice, Delivered], None],
        given_up: Callable[[Notice, Channel, Exception], None],
        public_domain: str,
    ) -> None:
        """`population`: the register's contacts are told only while the person is not registered dead.
        `unrecorded`: told of channels sent on whose send the delivery ledger could not be told of (the
        operators' to know: a delivery of the notice again may send on them twice). `partly`: told what a
        delivery that then fails did on its other channels (its failure says only why; a delivery again
        skips a channel sent on, so this is the one word of its send). `given_up`: told of a code's channel
        given up on, with the failure that made it (the delivery, done by the next channel, raises none).
        `public_domain`: the one a code's SMS names, for browsers to fill the code in (WebOTP)."""
        self._public_domain = public_domain
        self._given_up = given_up
        self._unrecorded = unrecorded
        self._partly = partly
        self._population = population
        self._retries = retries
        self._events = events
        self._sealer = sealer
        self._contacts = contacts
        self._sms = sms
        self._email = email
        self._ledger = ledger
        self._clock = clock

    def failed(self, queue: str, receipt: str, receive_count: int, notice: Notice | None) -> None:
        """A delivery failed: the notice comes back later the more often it has failed, one in the reset
        codes' queue soon (retry_after). By the queue, not the notice: one that could not be read (`notice`
        None) is paced as its queue's own are, and a code is never in another queue."""
        self._retries.later(queue, receipt, retry_after(receive_count, code=self._retries.holds_codes(queue)))

    def deliver(self, notice: Notice) -> Delivered:
        """Send on each channel not yet sent on; returns the channels sent on now, and those the provider
        refused for good (not tried again). A failure (the provider's or the ledger's) raises after the
        other channel was tried, and the notice is delivered again later. A reset's code goes to the
        first channel that takes it: the e-mail only once the provider refuses the mobile for good, or the
        mobile fails (nothing sent) with the code SMS_TRIED_FOR old."""
        now = self._clock.now()
        if not self._proven(notice, now):
            return Delivered(unproven=True)  # the change was not made
        recipients = self._recipients(notice, now)
        message = self._message(notice, recipients, now) if recipients is not None else None
        if recipients is None or message is None:
            return Delivered()
        if not self._in_time(notice, now):
            return self._too_late(notice, recipients)
        sends = self._sends(recipients, message)
        # a code goes to one channel: the next only if the provider refuses the first for good, or it fails
        # once the code has waited for it long enough (given up on)
        one = notice.kind in RESET_STARTS
        waited = one and self._waited_for_sms(notice, now)
        sent: list[Channel] = []
        refused: list[Channel] = []
        unrecorded: list[Channel] = []
        refusals_unrecorded: list[Channel] = []
        given_up: list[Channel] = []
        done_on = {  # the lists a channel is in, by what was done on it
            _Sent.REFUSED: (refused,),
            _Sent.REFUSED_UNRECORDED: (refused, refusals_unrecorded),
            _Sent.GIVEN_UP: (given_up,),
        }
        because: dict[Channel, Exception] = {}  # the failures given up on
        failure: Exception | None = None
        for channel, send in sends.items():
            give_up = self._sms.may_give_up_on if waited and channel is Channel.SMS and Channel.EMAIL in sends else None
            try:
                done = self._send(notice.notice_id, channel, send, now, give_up_if=give_up, because=because)
            except Exception as error:  # the channel's failure, or the ledger's: the other is tried all the same
                failure = _raised(failure, error)
                if given_up and not isinstance(error, MaybeSent | NoticeInFlight):  # nothing sent here either
                    self._given_back(notice, given_up, failure)
                if one:  # but not for a code: it may yet go out on this channel, and then on two
                    break
                continue
            if done is _Sent.NOW:
                sent.append(channel)
                if not self._marked_sent(notice.notice_id, channel):
                    unrecorded.append(channel)
            for done_with in done_on.get(done, ()):
                done_with.append(channel)
            if one and done in {_Sent.NOW, _Sent.BEFORE}:  # a code: out on this channel
                break
        # A send the ledger could not be told of keeps its claim until the claim lapses. Where nothing else
        # failed, the notice is done and not delivered again: that channel is not sent on again (its claim
        # expires with the ledger's item). Where something else failed, the notice is delivered again, and
        # once the claim has lapsed the channel is sent on again: the ledger cannot tell a send made and not
        # written from one a crashed sender never made, and a notice told twice is the lesser evil than a
        # security notice lost. Either way the operators are told, before any failure is raised.
        delivered = Delivered(sent, refused, unrecorded, given_up, refusals_unrecorded)
        self._told(notice, delivered, because, failed=failure is not None)
        if failure is not None:
            raise failure
        return delivered

    def _given_back(self, notice: Notice, given_up: list[Channel], failure: Exception) -> None:
        """The channels a code gave up on given back, the one after them having sent nothing either: they
        are tried again at the next delivery (kept given up, with the e-mail failing for good, SES refusing
        the account's sending say, the code would reach no one). Each release tried as every ledger write
        is (_written); one not made keeps its channel given up (the e-mail tried alone, as before), told in
        a note of `failure`, the one the delivery raises."""
        kept = [c for c in given_up if not self._written(partial(self._ledger.release, notice.notice_id, c))]
        if kept:
            failure.add_note("A channel given up on was not given back")
        given_up[:] = kept

    def _told(
        self, notice: Notice, delivered: Delivered, because: Mapping[Channel, Exception], *, failed: bool
    ) -> None:
        """The operators told what a delivery did that its answer will not say (see __init__): of channels
        given up on, those kept so (not given back), with the failures that made them (`because`)."""
        for channel in delivered.given_up:
            self._given_up(notice, channel, because[channel])
        if delivered.unrecorded:
            self._unrecorded(notice, delivered.unrecorded)
        if failed and (delivered.sent or delivered.refused or delivered.given_up):
            self._partly(notice, delivered)

    def _proven(self, notice: Notice, now: datetime) -> bool:
        """Whether the change the notice tells of was made (its proof, the event, is there; or it needs
        none: PROVEN_BY). NoticeNotYet while it may still be made."""
        proving = PROVEN_BY.get(notice.kind)
        if proving is not None and (notice.proof is None or notice.proof.type not in proving):
            return False  # not as MinID queues it
        if notice.proof is None or self._events.contains(notice.person, notice.proof):
            return True
        if now - notice.proof.at < PROOF_WAIT:
            raise NoticeNotYet(notice.kind.value)
        return False

    def _sends(self, recipients: Recipients, message: Message) -> dict[Channel, Callable[[], None]]:
        """A send for each recipient, the mobile first."""
        sends: dict[Channel, Callable[[], None]] = {}
        if (mobile := recipients.mobile) is not None:
            sends[Channel.SMS] = lambda: self._sms.send_sms(mobile, message.sms)
        if (email := recipients.email) is not None:
            sends[Channel.EMAIL] = lambda: self._email.send_email(email, message)
        return sends

    def _message(self, notice: Notice, recipients: Recipients, now: datetime) -> Message | None:
        """The notice's words; a code's only where it is one (its digits, sealed with its recipients). A
        code held up in the queue says the whole minutes it still works, not its 10."""
        if notice.kind is NoticeKind.PASSWORD_RESET_CODE:
            from minid.domain.codes import (  # noqa: PLC0415  (codes imports this module)
                CODE_DIGITS,
                CODE_LIFETIME,
                CodePurpose,
                code_message,
            )

            code = recipients.code or ""
            if not isinstance(notice.recipients, SealedRecipients) or not (
                len(code) == CODE_DIGITS and code.isascii() and code.isdigit()
            ):
                return None
            left = self._seconds_left(notice, now)
            # late by more than a minute: the whole minutes left (a code sent at once is a moment late: its 10)
            late = left is not None and left < CODE_LIFETIME.total_seconds() - 60
            # an e-mail goes only where there is no mobile, or the SMS provider refused it, or it was given up on
            # (SMS_TRIED_FOR): then it says so
            return code_message(
                recipients.code or "",
                recipients.language,
                self._public_domain,
                CodePurpose.RESET,
                instead_of_sms=bool(recipients.mobile),
                minutes=int(left // 60) if late and left is not None else None,
            )
        params = notice.params
        if notice.kind is NoticeKind.ACCOUNT_LOCKED and notice.proof is not None:
            # when it was locked: its event's time, as proven (_proven: part of the event's key), never the queue's;
            # and the day it is told on, for a notice held up past midnight
            params = {**params, "at": notice.proof.at.isoformat(), "today": date_in_norway(now).isoformat()}
        elif notice.kind is NoticeKind.CONFIRMATION_REMINDER:  # it names the contacts the person has
            held = [name for name, value in (("mobile", recipients.mobile), ("email", recipients.email)) if value]
            params = {**params, "contacts": "+".join(held)}
        return compose(notice.kind, recipients.language, params)

    @classmethod
    def _in_time(cls, notice: Notice, now: datetime) -> bool:
        """A code is sent only while it works for long enough to be used (CODE_USABLE_FOR): one arriving
        after, or seconds before, it expires (the queue held up) would only mislead."""
        left = cls._seconds_left(notice, now)
        return left is None or left >= CODE_USABLE_FOR.total_seconds()

    def _too_late(self, notice: Notice, recipients: Recipients) -> Delivered:
        """A code come after it expired: dropped, and counted where it reached no one (the person waits in
        vain). One sent while it worked, or that may have been (its claim kept: MaybeSent), or refused by
        the provider on every channel it had (counted so then), and handed out again since (its message not
        deleted in time) is done with, not late: the ledger is asked, on this path only. (Refused on one
        channel and failing on the other until it expired, it reached no one, and no refusal was counted:
        late.)"""
        channels = [c for c, to in ((Channel.SMS, recipients.mobile), (Channel.EMAIL, recipients.email)) if to]
        states = [self._ledger.state_of(notice.notice_id, channel) for channel in channels]
        if {"sent", "sending"} & set(states) or (states and all(state == "refused" for state in states)):
            return Delivered()
        return Delivered(too_late=bool(channels))

    @classmethod
    def _waited_for_sms(cls, notice: Notice, now: datetime) -> bool:
        """Whether a code has waited SMS_TRIED_FOR since it was made (it ends CODE_LIFETIME after)."""
        from minid.domain.codes import CODE_LIFETIME  # noqa: PLC0415  (codes imports this module)

        left = cls._seconds_left(notice, now)
        return left is not None and left <= (CODE_LIFETIME - SMS_TRIED_FOR).total_seconds()

    @staticmethod
    def _seconds_left(notice: Notice, now: datetime) -> float | None:
        """How long a code still works (`expires_at`: until when); None for a notice that does not end."""
        expires = notice.params.get("expires_at")
        return (datetime.fromisoformat(expires) - now).total_seconds() if expires else None

    def _send(
        self,
        notice_id: str,
        channel: Channel,
        send: Callable[[], None],
        now: datetime,
        *,
        give_up_if: Callable[[Exception], bool] | None,
        because: dict[Channel, Exception],
    ) -> _Sent:
        """Sends on the channel where it is this sender's to send on; the ledger is told of a send by
        the caller (_marked_sent). `give_up_if`: a failure it proves sent nothing is given up on, for the
        next channel, in place of raised (the claim turned, so that no delivery sends on it: a code on one
        channel; its failure put in `because`); not where the claim was taken over from another, whose send
        may be out."""
        claim = self._ledger.claim(notice_id, channel, now, CLAIM_LEASE)
        if claim is Claim.IN_FLIGHT:
            raise NoticeInFlight(f"{channel} is being sent by another delivery")
        if claim is Claim.SENT:
            return _Sent.BEFORE
        if claim is Claim.REFUSED:
            return _Sent.REFUSED_BEFORE
        try:
            send()
        except Undeliverable:  # tried again, it would be refused again, 15 times, and alarm for nothing
            # not written (DynamoDB failing), refused all the same: a code goes to the next channel now, not once
            # the claim has lapsed (minutes of its ten), and a delivery after that is refused again, sending nothing
            if not self._written(lambda: self._ledger.mark_refused(notice_id, channel, self._clock.now())):
                return _Sent.REFUSED_UNRECORDED
            return _Sent.REFUSED
        except MaybeSent:  # the claim kept, until it lapses
            raise
        except Exception as error:  # refused for now, not sent: the claim released, for the next delivery
            after_another = claim is Claim.CLAIMED_AFTER_ANOTHER
            giving_up = give_up_if is not None and not after_another and give_up_if(error)
            if giving_up and self._written(lambda: self._ledger.give_up(notice_id, channel, self._clock.now())):
                because[channel] = error  # told once the delivery knows it is kept given up
                return _Sent.GIVEN_UP
            # released (a give-up not written too: given up at the next delivery). A claim kept would hold the
            # channel until it lapses, and then be taken over as another's, which is never given up on: a code's
            # e-mail held back while SNS is down, for the rest of its life
            if not self._written(lambda: self._ledger.release(notice_id, channel, after_another=after_another)):
                error.add_note("The channel's claim was not released")  # (the send's failure is the one told)
            raise
        return _Sent.NOW

    def _marked_sent(self, notice_id: str, channel: Channel) -> bool:
        """Whether the ledger was told of the send (_written): the message is out already, and a failure here
        must not skip the other channel."""
        return self._written(lambda: self._ledger.mark_sent(notice_id, channel, self._clock.now()))

    @staticmethod
    def _written(write: Callable[[], None]) -> bool:
        """Whether a ledger write was made, tried MARK_SENT_TRIES times (DynamoDB failing past the SDK's
        retries). Each is one a delivery made again may make again: none is lost for good."""
        for _ in range(MARK_SENT_TRIES):
            try:
                write()
            except Exception:  # noqa: S112  (its caller tells what is left undone)
                continue
            return True
        return False

    def _recipients(self, notice: Notice, now: datetime) -> Recipients | None:
        """The recipients the notice carries, or the register's. None for a person the population register
        has as dead (their number or address may have passed to someone else), but for a reset's code or
        no-letter notice, whose start checks that itself."""
        if notice.recipients is None:
            return self._registered(notice.person, now, notice.proof, notice.params.get(REMINDED_OF))
        if isinstance(notice.recipients, SealedRecipients):
            carried = open_recipients(notice.notice_id, notice.recipients, self._sealer)
        else:
            carried = notice.recipients
        if notice.kind in RESET_STARTS or self._may_be_alive(notice.person):
            return carried
        return None

    def _registered(
        self, person: PersonKey, now: datetime, proof: SecurityEvent | None, reminded_of: str | None = None
    ) -> Recipients | None:
        """The person's verified contacts that are not stale, from the contact register. For a notice of
        an event (`proof`: a password changed, an account locked), only those verified before it: a retry
        hours later must not tell a contact added since, perhaps by the one the notice warns of. None for
        a reminder (`reminded_of`: the last confirmation it was made for) whose record has been confirmed
        or changed since: no longer due (the review's read was a moment old, or the send held up)."""
        record = self._contacts.find(person)
        if record is None or not self._may_be_alive(person):
            return None
        if reminded_of is not None and record.last_confirmed != datetime.fromisoformat(reminded_of):
            return None

        def before_the_event(verified_at: datetime | None) -> bool:
            return proof is None or (verified_at is not None and verified_at <= proof.at)

        mobile = record.verified_mobile(now) if before_the_event(record.mobile_verified_at) else None
        email = record.verified_email(now) if before_the_event(record.email_verified_at) else None
        return Recipients(mobile, email, record.language)

    def _may_be_alive(self, person: PersonKey) -> bool:
        """Whether the population register does not have the person as dead. The dead are told nothing,
        as the contact review reminds them of nothing: their number or address may have passed to someone
        else. A person the register does not have is told: a security notice is not lost on a gap in it."""
        return may_be_alive(self._population.status(person))

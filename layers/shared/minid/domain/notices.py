"""Notices: what MinID tells a person on their registered mobile and e-mail, and how it is delivered.

A notice is queued (it must survive a provider being briefly down), then delivered to each of the
person's verified, not stale contacts, in their language. Delivery is at least once per channel, and
a retry never sends again on a channel that has been sent on.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal, Protocol

from msgspec import field

from minid.domain.accounts import LockoutPolicy
from minid.domain.contacts import ContactRegister, InvalidContact, Language
from minid.domain.errors import FieldError
from minid.domain.events import SecurityEvent, SecurityEventLog, SecurityEventType
from minid.domain.keys import PersonKey, Sealer
from minid.domain.time import Clock
from minid.values import Value

SUPPORT_PHONE = "800 30 300"
CLAIM_LEASE = timedelta(minutes=2)  # longer than a send takes; a crashed sender's claim lapses after it
# A notice of a change is queued before the change is made, with the security event the change writes
# (in the same transaction) as its proof: it is delivered once the event is there, and dropped if the
# event has not come within this time (the change was not made: nothing to tell).
PROOF_WAIT = timedelta(minutes=10)
# The purpose a notice's recipients are sealed for, bound to the notice's id.
RECIPIENTS_SEALED_FOR = "notice-recipients"


class NoticeKind(StrEnum):
    PIN_LETTER_POSTED = "pin-letter-posted"
    PIN_LETTER_REFUSED = "pin-letter-refused"
    PIN_LETTER_BLOCKED = "pin-letter-blocked"
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
    """Contacts a notice goes to instead of the register's: those a change replaced, for one."""

    __hidden__ = frozenset({"mobile", "email"})

    mobile: str | None
    email: str | None
    language: Language


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
    plain = json.dumps({"mobile": recipients.mobile, "email": recipients.email, "language": recipients.language})
    return SealedRecipients(sealer.seal(plain, purpose=RECIPIENTS_SEALED_FOR, owner=notice_id))


def open_recipients(notice_id: str, recipients: SealedRecipients, sealer: Sealer) -> Recipients:
    return _recipients_from(json.loads(sealer.open(recipients.sealed, purpose=RECIPIENTS_SEALED_FOR, owner=notice_id)))


def _recipients_from(values: dict[str, Any]) -> Recipients:
    return Recipients(values.get("mobile"), values.get("email"), Language(values["language"]))


def _event_to_json(event: SecurityEvent) -> dict[str, Any]:
    return {"type": event.type.value, "at": event.at.isoformat(), "reference": event.reference}


def _queued_recipients(recipients: Any) -> Recipients | SealedRecipients | None:
    if not recipients:
        return None
    if isinstance(recipients, dict):  # queued before recipients were sealed (in a queue up to 14 days)
        return _recipients_from(recipients)
    return SealedRecipients(str(recipients))


def notice_from_json(body: str) -> Notice:
    """The notice of a queue message; its recipients stay sealed until it is delivered."""
    values: dict[str, Any] = json.loads(body)
    recipients = values.get("recipients")
    return Notice(
        notice_id=str(values["notice_id"]),
        kind=NoticeKind(values["kind"]),
        person=PersonKey(str(values["person"])),
        params={str(k): str(v) for k, v in dict(values.get("params") or {}).items()},
        recipients=_queued_recipients(recipients),
        proof=SecurityEvent(
            SecurityEventType(proof["type"]), datetime.fromisoformat(proof["at"]), str(proof["reference"])
        )
        if (proof := values.get("proof"))
        else None,
    )


class NoticeQueue(Protocol):
    def enqueue(self, notice: Notice) -> None: ...


class DeliveryRetries(Protocol):
    def later(self, receipt: str, seconds: int) -> None:
        """The queued notice (by its message's receipt) is handed out again in `seconds`."""
        ...


# A notice that failed (SNS or SES refusing, or down) comes back later each time: 1, 2, 4, 8 minutes,
# then every 15. Over the queue's 15 receives a provider's outage of some three hours is waited out,
# where at the queue's own minute the notice was dead-lettered in a quarter of an hour.
RETRY_FIRST_SECONDS = 60
RETRY_MOST_SECONDS = 900


def retry_after(receive_count: int) -> int:
    """When a notice that failed on its `receive_count`-th receive is handed out again, in seconds."""
    return min(RETRY_FIRST_SECONDS * (1 << min(max(receive_count - 1, 0), 10)), RETRY_MOST_SECONDS)


class SmsSender(Protocol):
    def send_sms(self, to: str, text: str) -> None:
        """Raises Undeliverable when the provider refuses the number itself."""
        ...


class EmailSender(Protocol):
    def send_email(self, to: str, message: Message) -> None:
        """Raises Undeliverable when the provider refuses the address itself."""
        ...


class Claim(StrEnum):
    CLAIMED = "claimed"  # this sender sends now
    SENT = "sent"  # sent already, or refused for good by the provider: nothing to do
    IN_FLIGHT = "in-flight"  # another sender is sending now; if it fails, its claim lapses


class Delivered(Value, frozen=True):
    """What a delivery did now: the channels it sent on, and those the provider refused for good."""

    sent: list[Channel] = field(default_factory=list)
    refused: list[Channel] = field(default_factory=list)


class NoticeInFlight(Exception):
    """Another sender holds a channel of this notice; deliver it again after the claim lapses."""


class NoticeNotYet(Exception):
    """The change the notice tells of is not made yet; deliver it again later."""


class DeliveryLedger(Protocol):
    """Which channels of which notices have been sent, so that retries do not send twice."""

    def claim(self, notice_id: str, channel: Channel, now: datetime, lease: timedelta) -> Claim: ...

    def mark_sent(self, notice_id: str, channel: Channel, now: datetime) -> None: ...

    def mark_refused(self, notice_id: str, channel: Channel, now: datetime) -> None:
        """The provider refused the recipient for good: a retry of the notice does not try it again."""
        ...

    def release(self, notice_id: str, channel: Channel) -> None: ...


_MONTHS_NB = (
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
    return f"{day.day}. {_MONTHS_NB[day.month - 1]} {day.year}"


def _posted(language: Language, params: Mapping[str, str]) -> tuple[str, str, str]:
    dated = long_date(date.fromisoformat(params["date"]), language)
    if language is Language.ENGLISH:
        return (
            "Your PIN code letter has been posted",
            f"The PIN code letter you ordered for MinID was posted on {dated}.",
            "If you did not order it, log in to MinID and block the codes, "
            f"or call MinID user support on +47 {SUPPORT_PHONE}.",
        )
    return (
        "PIN-kodebrevet ditt er sendt",
        f"PIN-kodebrevet du bestilte til MinID, ble sendt i posten {dated}.",
        f"Har du ikke bestilt det? Logg inn på MinID og sperr kodene, eller ring brukerstøtten på {SUPPORT_PHONE}.",
    )


def _refused(language: Language, params: Mapping[str, str]) -> tuple[str, str, str]:
    if language is Language.ENGLISH:
        return (
            "An order for PIN codes",
            "We received an order for a MinID PIN code letter for you, but will not send one now: "
            "a letter was sent in the last 24 hours, or three in the last 30 days.",
            "If you did not order it, you need not do anything.",
        )
    return (
        "Bestilling av PIN-koder",
        "Vi har fått en bestilling av PIN-kodebrev til MinID for deg, men sender ikke et nytt brev nå: "
        "det er sendt et brev det siste døgnet, eller tre brev de siste 30 dagene.",
        "Har du ikke bestilt, trenger du ikke gjøre noe.",
    )


def _letter_failed(language: Language, params: Mapping[str, str]) -> tuple[str, str, str]:
    if language is Language.ENGLISH:
        return (
            "Your PIN code letter could not be sent",
            "A MinID PIN code letter ordered for you could not be printed or posted, and its codes will never "
            "work. We are looking into it.",
            f"If you ordered it, call MinID user support on +47 {SUPPORT_PHONE}, or order a new letter later.",
        )
    return (
        "PIN-kodebrevet ditt kunne ikke sendes",
        "Et PIN-kodebrev til MinID som ble bestilt til deg, kunne ikke skrives ut eller sendes, og kodene i det "
        "vil aldri virke. Vi ser på saken.",
        f"Har du bestilt det, kan du ringe brukerstøtten på {SUPPORT_PHONE}, eller bestille et nytt brev senere.",
    )


def _letter_blocked(language: Language, params: Mapping[str, str]) -> tuple[str, str, str]:
    if language is Language.ENGLISH:
        return (
            "Your PIN codes are blocked",
            "Wrong PIN codes from your MinID PIN code letter were given five times, so its codes are blocked.",
            f"If it was not you, someone may have tried to use your identity number. Order a new letter, or call "
            f"MinID user support on +47 {SUPPORT_PHONE}.",
        )
    return (
        "PIN-kodene dine er sperret",
        "Det er gitt feil PIN-koder fra PIN-kodebrevet ditt til MinID fem ganger, så kodene i brevet er sperret.",
        "Var det ikke deg, kan noen ha prøvd å bruke fødselsnummeret ditt. Bestill et nytt brev, eller ring "
        f"brukerstøtten på {SUPPORT_PHONE}.",
    )


def _enrolled(language: Language, params: Mapping[str, str]) -> tuple[str, str, str]:
    if language is Language.ENGLISH:
        return (
            "Welcome to MinID",
            "You are now a MinID user, and this contact is registered in the common contact register, "
            "where public services find it to notify you.",
            f"If you did not register, call MinID user support on +47 {SUPPORT_PHONE} at once.",
        )
    return (
        "Velkommen som bruker av MinID",
        "Du er nå bruker av MinID, og denne kontaktinformasjonen er registrert i kontaktregisteret, der det "
        "offentlige finner den når de skal varsle deg.",
        f"Har ikke du registrert deg, ring brukerstøtten på {SUPPORT_PHONE} med en gang.",
    )


def _re_enrolled(language: Language, params: Mapping[str, str]) -> tuple[str, str, str]:
    if language is Language.ENGLISH:
        return (
            "Your MinID was registered again",
            "Your MinID was registered again with a new PIN code letter: it has a new password, and new contact "
            "details that replace this one.",
            f"If it was not you, call MinID user support on +47 {SUPPORT_PHONE} at once.",
        )
    return (
        "MinID-en din er registrert på nytt",
        "MinID-en din er registrert på nytt med et nytt PIN-kodebrev: den har nytt passord og ny "
        "kontaktinformasjon, som erstatter denne.",
        f"Var det ikke deg, ring brukerstøtten på {SUPPORT_PHONE} med en gang.",
    )


def _locked(language: Language, params: Mapping[str, str]) -> tuple[str, str, str]:
    """The lock as the policy that made it has it (`failures`, `minutes`: deploy parameters), for a wrong
    password or second factor at a login, or a wrong current password at a change."""
    default = LockoutPolicy()  # for a notice queued before notices told the policy
    failures = params.get("failures", str(default.threshold))
    in_english, in_norwegian = _how_long(int(params.get("minutes", default.duration.total_seconds() // 60)))
    if language is Language.ENGLISH:
        return (
            f"Your MinID is locked for {in_english}",
            f"Wrong details were given for your MinID {failures} times in a row, so it is locked for {in_english}.",
            f"If it was you, wait {in_english}, or reset your password with your PIN code letter. If it was not "
            f"you, call MinID user support on +47 {SUPPORT_PHONE}.",
        )
    return (
        f"MinID-en din er sperret i {in_norwegian}",
        f"Det er gitt feil opplysninger for MinID-en din {failures} ganger på rad, så den er sperret i {in_norwegian}.",
        f"Var det deg, kan du vente {in_norwegian} eller lage nytt passord med PIN-kodebrevet. Var det ikke deg, "
        f"ring brukerstøtten på {SUPPORT_PHONE}.",
    )


def _how_long(minutes: int) -> tuple[str, str]:
    """A lock's length in words, in English and in Norwegian."""
    if minutes == 60:
        return "an hour", "en time"
    if minutes % 60 == 0:
        return f"{minutes // 60} hours", f"{minutes // 60} timer"
    return f"{minutes} minutes", f"{minutes} minutter"


def _credential_changed(what_en: str, what_nb: str) -> Callable[[Language, Mapping[str, str]], tuple[str, str, str]]:
    def texts(language: Language, params: Mapping[str, str]) -> tuple[str, str, str]:
        if language is Language.ENGLISH:
            return (
                f"Your MinID {what_en}",
                f"Your MinID {what_en}.",
                f"If it was not you, call MinID user support on +47 {SUPPORT_PHONE} at once.",
            )
        return (
            f"{what_nb[0].upper()}{what_nb[1:]}",
            f"{what_nb[0].upper()}{what_nb[1:]}.",
            f"Var det ikke deg, ring brukerstøtten på {SUPPORT_PHONE} med en gang.",
        )

    return texts


def _contact_changed(language: Language, params: Mapping[str, str]) -> tuple[str, str, str]:
    what = params.get("channel", "mobile")
    if language is Language.ENGLISH:
        thing = "mobile number" if what == "mobile" else "e-mail address"
        return (
            f"Your {thing} is being changed",
            f"The {thing} in the contact register is being changed from this one to a new one, through your MinID.",
            "If it was not you, log in to MinID and change it back, or call MinID user support on "
            f"+47 {SUPPORT_PHONE}.",
        )
    thing, your = ("mobilnummeret", "ditt") if what == "mobile" else ("e-postadressen", "din")
    return (
        f"{thing[0].upper()}{thing[1:]} {your} blir endret",
        f"{thing[0].upper()}{thing[1:]} i kontaktregisteret blir endret fra dette til et nytt, med MinID-en din.",
        f"Var det ikke deg, logg inn på MinID og endre det tilbake, eller ring brukerstøtten på {SUPPORT_PHONE}.",
    )


def _contact_added(language: Language, params: Mapping[str, str]) -> tuple[str, str, str]:
    what = params.get("channel", "mobile")
    if language is Language.ENGLISH:
        thing = "mobile number" if what == "mobile" else "e-mail address"
        return (
            f"A {thing} is being added",
            f"A {thing} is being added to the contact register through your MinID. Codes for logging in and "
            "notices may go there once it is verified.",
            f"If it was not you, log in to MinID and remove it, or call MinID user support on +47 {SUPPORT_PHONE}.",
        )
    thing = "Et mobilnummer" if what == "mobile" else "En e-postadresse"
    return (
        f"{thing} blir lagt til",
        f"{thing} blir lagt til i kontaktregisteret med MinID-en din. Koder for innlogging og varsler kan gå "
        "dit når det er bekreftet.",
        f"Var det ikke deg, logg inn på MinID og fjern det, eller ring brukerstøtten på {SUPPORT_PHONE}.",
    )


def _contact_removed(language: Language, params: Mapping[str, str]) -> tuple[str, str, str]:
    if language is Language.ENGLISH:
        return (
            "A contact was removed",
            "This contact was removed from the contact register through your MinID. Public services will no "
            "longer notify you here.",
            f"If it was not you, call MinID user support on +47 {SUPPORT_PHONE}.",
        )
    return (
        "Kontaktinformasjon er fjernet",
        "Denne kontaktinformasjonen er fjernet fra kontaktregisteret med MinID-en din. Det offentlige varsler "
        "deg ikke her lenger.",
        f"Var det ikke deg, ring brukerstøtten på {SUPPORT_PHONE}.",
    )


def _confirmation_reminder(language: Language, params: Mapping[str, str]) -> tuple[str, str, str]:
    if language is Language.ENGLISH:
        return (
            "Are your contact details right?",
            "Your mobile number and e-mail in the contact register have not been confirmed for 16 months. "
            "Public services use them to notify you.",
            "Log in to MinID and confirm or update them. If they are not confirmed within two months, they are "
            "no longer used.",
        )
    return (
        "Er kontaktinformasjonen din riktig?",
        "Mobilnummeret og e-postadressen din i kontaktregisteret er ikke bekreftet på 16 måneder. Det offentlige "
        "bruker dem til å varsle deg.",
        "Logg inn på MinID og bekreft eller oppdater dem. Blir de ikke bekreftet innen to måneder, brukes de ikke "
        "lenger.",
    )


_TEXTS: dict[NoticeKind, Callable[[Language, Mapping[str, str]], tuple[str, str, str]]] = {
    NoticeKind.PIN_LETTER_POSTED: _posted,
    NoticeKind.PIN_LETTER_REFUSED: _refused,
    NoticeKind.PIN_LETTER_BLOCKED: _letter_blocked,
    NoticeKind.PIN_LETTER_FAILED: _letter_failed,
    NoticeKind.ENROLLED: _enrolled,
    NoticeKind.RE_ENROLLED: _re_enrolled,
    NoticeKind.ACCOUNT_LOCKED: _locked,
    NoticeKind.PASSWORD_CHANGED: _credential_changed("password was changed", "passordet ditt er endret"),
    NoticeKind.PASSWORD_RESET: _credential_changed(
        "password was reset with your PIN code letter", "passordet ditt er laget på nytt med PIN-kodebrevet"
    ),
    NoticeKind.CONTACT_CHANGED: _contact_changed,
    NoticeKind.CONTACT_REMOVED: _contact_removed,
    NoticeKind.CONTACT_ADDED: _contact_added,
    NoticeKind.CONFIRMATION_REMINDER: _confirmation_reminder,
    NoticeKind.SECOND_FACTOR_CHANGED: _credential_changed(
        "authenticator app was added or removed", "en autentiseringsapp er lagt til eller fjernet"
    ),
}


def _written_in(language: Language) -> str:
    """The language the texts are in: bokmål for nynorsk readers, until texts exist in nynorsk."""
    return Language.BOKMAL.value if language is Language.NYNORSK else language.value


def compose(kind: NoticeKind, language: Language, params: Mapping[str, str]) -> Message:
    """The notice in the person's language (nynorsk readers get bokmål until texts exist in nynorsk)."""
    subject, what, advice = _TEXTS[kind](language, params)
    greeting = "Hello," if language is Language.ENGLISH else "Hei,"
    signature = "MinID, Norwegian Digitalisation Agency" if language is Language.ENGLISH else "MinID, Digdir"
    text = f"{greeting}\n\n{what}\n\n{advice}\n\n{signature}\n"
    body = "".join(f"<p>{html.escape(part)}</p>" for part in (greeting, what, advice, signature))
    page = (
        f'<!doctype html><html lang="{_written_in(language)}"><head><meta charset="utf-8">'
        f"<title>{html.escape(subject)}</title></head><body>{body}</body></html>"
    )
    return Message(sms=f"MinID: {what} {advice}", subject=f"MinID: {subject}", text=text, html=page)


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
    ) -> None:
        self._retries = retries
        self._events = events
        self._sealer = sealer
        self._contacts = contacts
        self._sms = sms
        self._email = email
        self._ledger = ledger
        self._clock = clock

    def failed(self, receipt: str, receive_count: int) -> None:
        """A delivery failed: the notice comes back later the more often it has failed (retry_after)."""
        self._retries.later(receipt, retry_after(receive_count))

    def deliver(self, notice: Notice) -> Delivered:
        """Send on each channel not yet sent on; returns the channels sent on now, and those the provider
        refused for good (not tried again). A failure raises after the other channel was tried, and the
        notice is delivered again later."""
        now = self._clock.now()
        if notice.proof is not None and not self._events.contains(notice.person, notice.proof):
            if now - notice.proof.at < PROOF_WAIT:
                raise NoticeNotYet(notice.kind.value)
            return Delivered()  # the change was not made
        recipients = self._recipients(notice, now)
        if recipients is None:
            return Delivered()
        message = compose(notice.kind, recipients.language, notice.params)
        sends: dict[Channel, Callable[[], None]] = {}
        if (mobile := recipients.mobile) is not None:
            sends[Channel.SMS] = lambda: self._sms.send_sms(mobile, message.sms)
        if (email := recipients.email) is not None:
            sends[Channel.EMAIL] = lambda: self._email.send_email(email, message)
        sent: list[Channel] = []
        refused: list[Channel] = []
        failure: Exception | None = None
        for channel, send in sends.items():
            claim = self._ledger.claim(notice.notice_id, channel, now, CLAIM_LEASE)
            if claim is Claim.SENT:
                continue
            if claim is Claim.IN_FLIGHT:
                failure = failure or NoticeInFlight(f"{channel} is being sent by another delivery")
                continue
            try:
                send()
            except Undeliverable:  # tried again, it would be refused again, 15 times, and alarm for nothing
                self._ledger.mark_refused(notice.notice_id, channel, self._clock.now())
                refused.append(channel)
                continue
            except Exception as error:
                self._ledger.release(notice.notice_id, channel)
                failure = failure or error
                continue
            self._ledger.mark_sent(notice.notice_id, channel, self._clock.now())
            sent.append(channel)
        if failure is not None:
            raise failure
        return Delivered(sent, refused)

    def _recipients(self, notice: Notice, now: datetime) -> Recipients | None:
        if isinstance(notice.recipients, SealedRecipients):
            return open_recipients(notice.notice_id, notice.recipients, self._sealer)
        return notice.recipients or self._registered(notice.person, now, notice.proof)

    def _registered(self, person: PersonKey, now: datetime, proof: SecurityEvent | None) -> Recipients | None:
        """The person's verified contacts that are not stale, from the contact register. For a notice of
        an event (`proof`: a password changed, an account locked), only those verified before it: a retry
        hours later must not tell a contact added since, perhaps by the one the notice warns of."""
        record = self._contacts.find(person)
        if record is None:
            return None

        def before_the_event(verified_at: datetime | None) -> bool:
            return proof is None or (verified_at is not None and verified_at <= proof.at)

        mobile = record.verified_mobile(now) if before_the_event(record.mobile_verified_at) else None
        email = record.verified_email(now) if before_the_event(record.email_verified_at) else None
        return Recipients(mobile, email, record.language)

"""Notices: their text, and delivery to verified, not stale contacts, once per channel."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.exceptions import InvalidTag
from msgspec.structs import replace

from local.template import Template
from minid.adapters.sealing import AesGcmSealer
from minid.domain.accounts import AccountStatus, AttemptCount, LockoutPolicy, UserAccount
from minid.domain.codes import CODE_LIFETIME, CodePurpose, code_message
from minid.domain.contacts import ContactRecord, Language
from minid.domain.events import SecurityEvent, SecurityEventType
from minid.domain.keys import Keyer, Pepper, PersonKey
from minid.domain.lockout import Lockout, lock_notice
from minid.domain.notices import (
    MARK_SENT_TRIES,
    PLAIN_RECIPIENTS_ONCE,
    PROOF_WAIT,
    PROVEN_BY,
    SMS_TRIED_FOR,
    WORDED,
    Channel,
    Claim,
    Delivered,
    MaybeSent,
    Message,
    Notice,
    NoticeDelivery,
    NoticeInFlight,
    NoticeKind,
    NoticeNotYet,
    Recipients,
    SealedRecipients,
    Undeliverable,
    compose,
    notice_from_json,
    notice_to_json,
    open_recipients,
)
from minid.domain.population import Person, PersonStatus

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
PERSON = PersonKey("a" * 64)
POSTED = Notice("letter-1:pin-letter-posted", NoticeKind.PIN_LETTER_POSTED, PERSON, {"date": "2026-11-20"})
SEALER = AesGcmSealer(Keyer(Pepper(b"p" * 32)))  # the notifier's is KMS (integration tests); the same protocol
# the events that prove the notices of changes below (PROVEN_BY), and the log that has them written
RE_ENROLLED = SecurityEvent(SecurityEventType.RE_ENROLLED, NOW - timedelta(seconds=3), "e")
BLOCKED = SecurityEvent(SecurityEventType.PIN_LETTER_BLOCKED, NOW - timedelta(seconds=3), "letter-1")
REQUESTED = SecurityEvent(SecurityEventType.CONTACT_CHANGE_REQUESTED, NOW - timedelta(seconds=3), "c1")


def record(**changes: object) -> ContactRecord:
    values: dict[str, object] = {
        "mobile": "+4791234567",
        "mobile_verified_at": NOW - timedelta(days=10),
        "email": "kari@example.no",
        "email_verified_at": NOW - timedelta(days=10),
        "language": Language.BOKMAL,
        "reserved": False,
        "updated_at": NOW - timedelta(days=10),
        "confirmed_at": None,
    }
    values.update(changes)
    return ContactRecord(**values)  # type: ignore[arg-type]


@dataclass
class Contacts:
    found: ContactRecord | None

    def find(self, person: PersonKey) -> ContactRecord | None:
        return self.found


@dataclass
class Phone:
    sent: list[tuple[str, str]] = field(default_factory=list)
    fail: bool = False
    refuse: bool = False
    tried: int = 0
    # how the next sends fail, before `fail`: MaybeSent (the answer lost), or an error that proves nothing
    failing: list[Exception] = field(default_factory=list)

    def may_give_up_on(self, error: Exception) -> bool:
        return isinstance(error, ConnectionError)  # SNS's refusal, here (SnsSmsSender tells the real ones)

    def send_sms(self, to: str, text: str) -> None:
        self.tried += 1
        if self.failing:
            raise self.failing.pop(0)
        if self.fail:
            raise ConnectionError("SNS is down")
        if self.refuse:
            raise Undeliverable(Channel.SMS)
        self.sent.append((to, text))


@dataclass
class Mailbox:
    sent: list[tuple[str, Message]] = field(default_factory=list)
    fail: bool = False

    def send_email(self, to: str, message: Message) -> None:
        if self.fail:
            raise ConnectionError("SES is down")
        self.sent.append((to, message))


@dataclass
class Ledger:
    states: dict[tuple[str, Channel], str] = field(default_factory=dict)
    unwritable: int = 0  # how many writes of a send fail (DynamoDB failing past the SDK's retries)
    lapsed: set[tuple[str, Channel]] = field(default_factory=set)  # claims "sending" whose lease has run out

    def claim(self, notice_id: str, channel: Channel, now: datetime, lease: timedelta) -> Claim:
        state = self.states.get((notice_id, channel))
        if state == "sent":
            return Claim.SENT
        if state in {"refused", "given_up"}:
            return Claim.REFUSED
        if state == "sending" and (notice_id, channel) in self.lapsed:
            self.lapsed.remove((notice_id, channel))
            return Claim.CLAIMED_AFTER_ANOTHER
        if state == "sending":
            return Claim.IN_FLIGHT
        self.states[(notice_id, channel)] = "sending"
        return Claim.CLAIMED

    def mark_sent(self, notice_id: str, channel: Channel, now: datetime) -> None:
        if self.unwritable:
            self.unwritable -= 1
            raise ConnectionError("DynamoDB is down")
        self.states[(notice_id, channel)] = "sent"

    def mark_refused(self, notice_id: str, channel: Channel, now: datetime) -> None:
        if self.unwritable:
            self.unwritable -= 1
            raise ConnectionError("DynamoDB is down")
        self.states[(notice_id, channel)] = "refused"

    def give_up(self, notice_id: str, channel: Channel, now: datetime) -> None:
        if self.unwritable:
            self.unwritable -= 1
            raise ConnectionError("DynamoDB is down")
        assert self.states.get((notice_id, channel)) == "sending"  # its own claim, held
        self.states[(notice_id, channel)] = "given_up"

    def release(self, notice_id: str, channel: Channel, *, after_another: bool = False) -> None:
        if self.unwritable:
            self.unwritable -= 1
            raise ConnectionError("DynamoDB is down")
        if after_another:
            self.lapsed.add((notice_id, channel))
        else:
            del self.states[(notice_id, channel)]

    def state_of(self, notice_id: str, channel: Channel) -> str | None:
        return self.states.get((notice_id, channel))


class Clock:
    def now(self) -> datetime:
        return NOW


@dataclass
class Events:
    recorded: set[tuple[str, str]] = field(default_factory=set)

    def contains(self, person: str, event: SecurityEvent) -> bool:
        return (person, event.reference) in self.recorded


def recorded(*events: SecurityEvent) -> Events:
    """The person's log, with these events written."""
    return Events({(PERSON, event.reference) for event in events})


CODES_ARN = "arn:aws:sqs:eu-north-1:123456789012:codes"


@dataclass
class Retries:
    later_by: list[tuple[str, int]] = field(default_factory=list)

    def later(self, queue: str, receipt: str, seconds: int) -> None:
        self.later_by.append((receipt, seconds))

    def holds_codes(self, queue: str) -> bool:
        return queue == CODES_ARN


@dataclass
class Population:
    registered: PersonStatus | None  # None: not in the register

    def find(self, person: PersonKey) -> Person | None:
        raise AssertionError("the notifier reads a person's status alone")

    def status(self, person: PersonKey) -> PersonStatus | None:
        return self.registered


def delivery(  # type: ignore[no-untyped-def]
    found: ContactRecord | None,
    phone: Phone | None = None,
    ledger: Ledger | None = None,
    events: Events | None = None,
    retries: Retries | None = None,
    *,
    population: Population | None = None,
    unrecorded: list[tuple[str, list[Channel]]] | None = None,
    mailbox: Mailbox | None = None,
    partly: list[tuple[str, Delivered]] | None = None,
    given_up: list[tuple[str, Channel, str]] | None = None,
):
    phone = phone or Phone()
    mailbox = mailbox or Mailbox()
    ledger = ledger or Ledger()
    service = NoticeDelivery(
        contacts=Contacts(found),
        sms=phone,
        email=mailbox,
        ledger=ledger,
        events=events or Events(),  # type: ignore[arg-type]
        sealer=SEALER,
        clock=Clock(),
        retries=retries or Retries(),
        population=population or Population(PersonStatus.RESIDENT),
        unrecorded=lambda notice, channels: (unrecorded if unrecorded is not None else []).append(
            (notice.notice_id, list(channels))
        ),
        partly=lambda notice, delivered: (partly if partly is not None else []).append((notice.notice_id, delivered)),
        given_up=lambda notice, channel, error: (given_up if given_up is not None else []).append(
            (notice.notice_id, channel, str(error))
        ),
        public_domain="minid.example.no",
    )
    return service, phone, mailbox, ledger


def test_both_verified_contacts_are_told_once() -> None:
    service, phone, mailbox, _ = delivery(record())
    assert service.deliver(POSTED).sent == [Channel.SMS, Channel.EMAIL]
    assert service.deliver(POSTED).sent == []
    assert len(phone.sent) == len(mailbox.sent) == 1
    assert "20. november 2026" in phone.sent[0][1]


def test_unverified_and_stale_contacts_are_not_used() -> None:
    assert delivery(record(mobile_verified_at=None))[0].deliver(POSTED).sent == [Channel.EMAIL]
    assert delivery(record(updated_at=NOW - timedelta(days=600)))[0].deliver(POSTED).sent == []
    confirmed = record(updated_at=NOW - timedelta(days=600), confirmed_at=NOW - timedelta(days=30))
    assert delivery(confirmed)[0].deliver(POSTED).sent == [Channel.SMS, Channel.EMAIL]


def test_a_person_without_a_record_is_told_nothing() -> None:
    assert delivery(None)[0].deliver(POSTED).sent == []


def test_a_failed_channel_is_retried_without_resending_the_other() -> None:
    """And the channel sent on is told before the failure is raised (`partly`): the delivery again skips
    it, so that is the one word of its send; a failure with nothing sent tells nothing."""
    phone = Phone(fail=True)
    partly: list[tuple[str, Delivered]] = []
    service, phone, mailbox, _ledger = delivery(record(), phone, partly=partly)
    with pytest.raises(ConnectionError):
        service.deliver(POSTED)
    assert len(mailbox.sent) == 1
    assert partly == [(POSTED.notice_id, Delivered([Channel.EMAIL]))]
    phone.fail = False
    assert service.deliver(POSTED).sent == [Channel.SMS]
    assert len(mailbox.sent) == 1
    assert len(phone.sent) == 1
    service, *_ = delivery(record(), Phone(fail=True), mailbox=Mailbox(fail=True), partly=partly)
    with pytest.raises(ConnectionError):
        service.deliver(POSTED)
    assert len(partly) == 1


def test_a_number_the_provider_refuses_is_not_tried_again_and_fails_nothing() -> None:
    """SNS refuses the number itself: the e-mail goes, the notice is done (not retried 15 times into the
    dead-letter queue and its alarm), and a delivery of it again does not try the number again."""
    service, phone, mailbox, ledger = delivery(record(), Phone(refuse=True))
    delivered = service.deliver(POSTED)
    assert (delivered.sent, delivered.refused) == ([Channel.EMAIL], [Channel.SMS])
    assert ledger.states[(POSTED.notice_id, Channel.SMS)] == "refused"
    assert service.deliver(POSTED) == Delivered()
    assert (phone.tried, len(mailbox.sent)) == (1, 1)


@pytest.mark.parametrize("verified_since", [Channel.EMAIL, Channel.SMS])
def test_a_notice_of_an_event_tells_only_the_contacts_verified_before_it(verified_since: Channel) -> None:
    """A password-changed notice whose e-mail failed is retried for hours: an e-mail address verified
    meanwhile (by whoever changed the password, say) is not told; the mobile, verified before, is (and the
    other way round)."""
    changed = SecurityEvent(SecurityEventType.PASSWORD_CHANGED, NOW - timedelta(hours=2), "change-1")
    notice = Notice("change-1:password", NoticeKind.PASSWORD_CHANGED, PERSON, proof=changed)
    events = Events({(PERSON, "change-1")})
    since = {"email_verified_at" if verified_since is Channel.EMAIL else "mobile_verified_at": NOW - timedelta(hours=1)}
    service, phone, mailbox, _ = delivery(record(**since), events=events)
    told = Channel.SMS if verified_since is Channel.EMAIL else Channel.EMAIL
    assert service.deliver(notice).sent == [told]
    assert (len(phone.sent), len(mailbox.sent)) == ((1, 0) if told is Channel.SMS else (0, 1))


def test_a_channel_being_sent_elsewhere_is_delivered_again_later() -> None:
    ledger = Ledger({(POSTED.notice_id, Channel.SMS): "sending"})
    service, phone, mailbox, _ = delivery(record(), ledger=ledger)
    with pytest.raises(NoticeInFlight):
        service.deliver(POSTED)
    assert phone.sent == []
    assert len(mailbox.sent) == 1


@pytest.mark.parametrize("kind", WORDED)
@pytest.mark.parametrize("language", list(Language))
def test_every_notice_has_a_text_in_every_language(kind: NoticeKind, language: Language) -> None:
    message = compose(kind, language, {"date": "2026-11-20"})
    assert message.sms.startswith("MinID: ")
    assert message.subject.startswith("MinID: ")
    assert message.text.strip()
    assert message.html.startswith("<!doctype html>")
    assert f'lang="{language.value}"' in message.html


@pytest.mark.parametrize("kind", WORDED)
@pytest.mark.parametrize("channel", ["mobile", "email"])
def test_nynorsk_readers_get_nynorsk(kind: NoticeKind, channel: str) -> None:
    params = {"date": "2026-11-20", "channel": channel}
    nynorsk, bokmal = compose(kind, Language.NYNORSK, params), compose(kind, Language.BOKMAL, params)
    assert nynorsk.sms != bokmal.sms
    assert nynorsk.text != bokmal.text
    assert nynorsk.html != bokmal.html
    assert "ikkje" in nynorsk.text
    assert not {"ikke", "brukerstøtten", "ble", "nå", "noen"} & set(nynorsk.text.replace(".", " ").split())


@pytest.mark.parametrize(
    ("seconds", "english", "norwegian"),
    [
        (3600, "locked for an hour", "sperret i en time"),
        (900, "15 minutes", "15 minutter"),
        (7200, "2 hours", "2 timer"),
        (90, "2 minutes", "2 minutter"),  # never less than it lasts (LockoutSeconds need not be whole minutes)
    ],
)
def test_a_lock_is_told_as_the_deployed_policy_has_it(seconds: int, english: str, norwegian: str) -> None:
    """The lock's event records the policy that made it, and its notice (made from the event as written:
    functions/notifier) tells it."""
    lockout = Lockout(None, None, LockoutPolicy(5, timedelta(seconds=seconds)))  # type: ignore[arg-type]
    account = UserAccount(PERSON, AccountStatus.ACTIVE, "hash", NOW, NOW, failed_logins=4)
    (locked,) = [
        e
        for e in lockout.judged(account, NOW, right=False, reference="attempt-1").events
        if e.type.value == "account-locked"
    ]
    notice = lock_notice(PERSON, locked)
    assert notice.proof == locked
    assert lock_notice(PERSON, replace(locked)).notice_id == notice.notice_id  # the event handed over again
    assert english in compose(notice.kind, Language.ENGLISH, notice.params).sms
    told = compose(notice.kind, Language.BOKMAL, notice.params).sms
    assert norwegian in told
    assert "5 ganger på rad" in told


def test_a_lock_says_when_it_was_locked_as_its_event_has_it_never_as_queued() -> None:
    """A lock's notice held up for hours (SNS down) must not read as a lock begun now: it says when, in
    Norway's time, from its proof (an event written at that time, NoticeDelivery._proven), not from what
    the queue holds."""
    locked = SecurityEvent(SecurityEventType.ACCOUNT_LOCKED, NOW, "lock-1", {"failures": "3", "minutes": "60"})
    notice = lock_notice(PERSON, locked)
    queued_at = {**notice.params, "at": "2026-11-22T20:00:00+00:00", "today": "2026-11-30"}
    forged = Notice(notice.notice_id, notice.kind, PERSON, queued_at, proof=locked)
    for queued in (notice, forged):
        service, phone, mailbox, _ = delivery(record(), events=recorded(locked))
        assert service.deliver(queued) == Delivered([Channel.SMS, Channel.EMAIL])
        assert "kl. 13.00 ble den sperret i en time" in phone.sent[0][1]  # 12:00 UTC is 13:00 in Oslo in November
        assert mailbox.sent[0][1].subject == "MinID: MinID-en din ble sperret kl. 13.00"


@pytest.mark.parametrize(
    ("hours_before", "told"),
    [(14, "i går kl. 23.00"), (38, "20.11. kl. 23.00")],  # NOW is 13:00 on 22 November in Oslo
)
def test_a_lock_told_on_a_later_day_says_its_day(hours_before: int, told: str) -> None:
    """Held up past midnight (an outage; a dead-lettered notice redriven days later): "kl. 23.00" alone
    would read as today's."""
    at = NOW - timedelta(hours=hours_before)
    locked = SecurityEvent(SecurityEventType.ACCOUNT_LOCKED, at, "lock-2", {"failures": "3", "minutes": "60"})
    service, phone, mailbox, _ = delivery(record(), events=recorded(locked))
    assert service.deliver(lock_notice(PERSON, locked)) == Delivered([Channel.SMS, Channel.EMAIL])
    assert f"så {told} ble den sperret i en time" in phone.sent[0][1]
    assert mailbox.sent[0][1].subject == f"MinID: MinID-en din ble sperret {told}"


@pytest.mark.parametrize(
    ("after", "known"),
    [
        ("password", None),
        ("password-and-more", None),
        ("second-factor", "password"),
        ("password-change", "session"),
    ],
)
def test_a_lock_tells_what_the_one_who_made_it_had(after: str, known: str | None) -> None:
    """Wrong passwords: anyone may type them, and the notice tells nothing of them, though they end a run
    that held an attempt past the password (which may have been the person's own, given back). A wrong code
    past the password: someone knew it; at a change, someone had a session: told, with a new password made
    at once."""
    locked = SecurityEvent(
        SecurityEventType.ACCOUNT_LOCKED, NOW, "lock-1", {"failures": "3", "minutes": "60", "after": after}
    )
    notice = lock_notice(PERSON, locked)
    assert notice.params.get("known") == known
    assert ("med en gang" in compose(notice.kind, Language.BOKMAL, notice.params).sms) is (known is not None)


@dataclass
class Locking:
    """The account store a lock is written to, as far as a lock's event goes."""

    events: list[SecurityEvent] = field(default_factory=list)

    def lock(
        self, person: PersonKey, policy: LockoutPolicy, now: datetime, *, events: tuple[SecurityEvent, ...], **_: object
    ) -> None:
        self.events.extend(events)


@dataclass
class Stuck:
    """An account at the limit with no lock written (the lock lost), as the next attempt's count finds it."""

    account: UserAccount
    store: Locking

    def reserve_attempt(self, person: PersonKey, policy: LockoutPolicy, now: datetime) -> AttemptCount:
        return AttemptCount(self.account, counted=False)

    def lock(
        self, person: PersonKey, policy: LockoutPolicy, now: datetime, *, events: tuple[SecurityEvent, ...], **_: object
    ) -> None:
        self.store.lock(person, policy, now, events=events)


def test_a_lock_after_wrong_passwords_is_told_once_a_day_and_one_after_the_password_each_time() -> None:
    """Anyone who knows an identity number may lock its account with wrong passwords, again each time the
    lock lapses: such a lock is told once a day (the day in Norway), not an SMS every three tries. A lock
    after wrong codes of a login past its password, or wrong current passwords of a session's change,
    needs the password or a session: told each time (the person's only sign of it, maybe)."""
    store = Locking()
    lockout = Lockout(store, None, LockoutPolicy(3, timedelta(hours=1)))  # type: ignore[arg-type]
    account = UserAccount(PERSON, AccountStatus.ACTIVE, "hash", NOW, NOW, failed_logins=2)

    def by_passwords(at: datetime, reference: str = "attempt-1", person: PersonKey = PERSON) -> str:
        (locked,) = [
            e for e in lockout.judged(account, at, False, reference).events if e.type.value == "account-locked"
        ]
        assert locked.detail["after"] == "password"
        return lock_notice(person, locked).notice_id

    first = by_passwords(NOW)
    # a run that held an attempt past the password (a wrong code, say) ended by a wrong password: told each
    # time; a mark of a run ended before is not this run's; an account from before runs has the run ""
    for run, marked, each in (("run-1", "run-1", True), ("run-1", "run-0", False), (None, "", True)):
        account = replace(account, failure_run=run, past_password_in=marked)
        (locked,) = [e for e in lockout.judged(account, NOW, False, "r").events if e.type.value == "account-locked"]
        assert locked.detail["after"] == ("password-and-more" if each else "password")
        assert (lock_notice(PERSON, locked).notice_id == f"r:{NOW.isoformat()}:locked") is each
    account = replace(account, failure_run="run-1", past_password_in=None)
    assert first == by_passwords(NOW + timedelta(hours=3), "attempt-2")  # the same day: told once
    assert first != by_passwords(NOW + timedelta(days=1))
    assert first != by_passwords(NOW, person=PersonKey("b" * 64))
    # the day in Norway: 23:30 UTC is the next day there, in winter (UTC+1) and in summer (UTC+2)
    for evening in (datetime(2026, 1, 14, 23, 30, tzinfo=UTC), datetime(2026, 7, 14, 22, 30, tzinfo=UTC)):
        assert by_passwords(evening) != by_passwords(evening - timedelta(hours=1))
        assert by_passwords(evening) == by_passwords(evening + timedelta(hours=20))
    for reason in ("second-factor", "password-change"):
        ids = []
        for reference in ("login-1", "login-2"):
            lockout.failed(PERSON, NOW, reason, reserved=3, reference=reference)
            locked = store.events[-1]
            assert locked.detail["after"] == reason
            ids.append(lock_notice(PERSON, locked).notice_id)
        assert len({*ids, first}) == 3  # each its own notice, and not the day's of wrong passwords
    # a lock written late (its failure's lock lost, the count found at the limit by the next attempt): what
    # made it is not known, so it is told each time; as is a lock's event from before locks recorded it
    stuck = UserAccount(PERSON, AccountStatus.ACTIVE, "hash", NOW, NOW, failed_logins=3)
    Lockout(Stuck(stuck, store), None, LockoutPolicy(3, timedelta(hours=1))).reserve(PERSON, NOW)  # type: ignore[arg-type]
    late = store.events[-1]
    assert "after" not in late.detail
    assert lock_notice(PERSON, late).notice_id == f"{late.reference}:{NOW.isoformat()}:locked"
    before = SecurityEvent(SecurityEventType.ACCOUNT_LOCKED, NOW, "attempt-9", {"failures": "3", "minutes": "60"})
    assert lock_notice(PERSON, before).notice_id == f"attempt-9:{NOW.isoformat()}:locked"


@pytest.mark.parametrize("language", list(Language))
@pytest.mark.parametrize("failures", ["<script>x</script>", "3 times. Verify at https://evil.example now. Ignore", "0"])
def test_a_lock_s_count_is_told_as_a_count_never_as_words_of_the_queue(language: Language, failures: str) -> None:
    """A role that may queue notices must not put its own words in MinID's message: the count of failures
    is a number, else the policy's own is told."""
    message = compose(NoticeKind.ACCOUNT_LOCKED, language, {"failures": failures, "minutes": "60"})
    for text in (message.sms, message.html):
        assert "script" not in text
        assert "evil" not in text
        assert f" {LockoutPolicy().threshold} " in text
    assert " 5 " in compose(NoticeKind.ACCOUNT_LOCKED, language, {"failures": "5", "minutes": "60"}).sms


def test_a_notice_survives_its_queue() -> None:
    assert notice_from_json(notice_to_json(POSTED, SEALER)) == POSTED


def test_a_notices_own_recipients_cross_the_queue_sealed_to_the_notice() -> None:
    """Those a change replaced are a person's contacts: a queue message (kept up to 14 days with its
    dead-letter queue) holds them sealed, and they open only for the notice they were sealed for."""
    old = Recipients("+4791111111", "kari.old@example.no", Language.ENGLISH)
    body = notice_to_json(Notice("e:re", NoticeKind.RE_ENROLLED, PERSON, recipients=old, proof=RE_ENROLLED), SEALER)
    assert "91111111" not in body
    assert "kari.old" not in body
    queued = notice_from_json(body)
    assert isinstance(queued.recipients, SealedRecipients)
    assert notice_from_json(notice_to_json(queued, SEALER)) == queued  # queued again as it came
    assert "91111111" not in repr(old)
    assert "kari.old" not in repr(old)

    service, phone, mailbox, _ = delivery(record(), events=recorded(RE_ENROLLED))
    assert service.deliver(queued).sent == [Channel.SMS, Channel.EMAIL]
    assert phone.sent[0][0] == "+4791111111"
    assert mailbox.sent[0][0] == "kari.old@example.no"

    elsewhere = replace(queued, notice_id="other:re")  # moved to another notice: does not open
    with pytest.raises(InvalidTag):
        delivery(record(), events=recorded(RE_ENROLLED))[0].deliver(elsewhere)


def test_a_notice_queued_before_recipients_were_sealed_is_still_delivered() -> None:
    """Messages already in the queue, or its dead-letter queue, when the sealing was deployed."""
    body = json.dumps(
        {
            "notice_id": "e:old",
            "kind": "re-enrolled",
            "person": PERSON,
            "params": {},
            "recipients": {"mobile": "+4790000001", "email": None, "language": "en"},
            "proof": {"type": "re-enrolled", "at": RE_ENROLLED.at.isoformat(), "reference": "e"},  # (as then)
        }
    )
    service, phone, _, _ = delivery(record(), events=recorded(RE_ENROLLED))
    assert service.deliver(notice_from_json(body)).sent == [Channel.SMS]
    assert phone.sent[0][0] == "+4790000001"


@pytest.mark.parametrize("kind", sorted(PROVEN_BY))
def test_a_notice_of_a_change_without_the_change_s_event_is_not_delivered(kind: NoticeKind) -> None:
    """Queued by a role that may queue but not write the person's events (forged): one with no proof, or
    with an event of another kind that is written (a login's, say), tells of nothing MinID did."""
    other = SecurityEvent(SecurityEventType.LOGIN_SUCCEEDED, NOW - timedelta(seconds=3), "login-1")
    params = {"date": "2026-11-20", "failures": "3", "minutes": "60"}
    for proof in (None, other):
        service, phone, mailbox, _ = delivery(record(), events=recorded(other))
        assert service.deliver(Notice("forged", kind, PERSON, params, proof=proof)) == Delivered(unproven=True)
        assert (phone.sent, mailbox.sent) == ([], [])
    proving = SecurityEvent(min(PROVEN_BY[kind]), NOW - timedelta(seconds=3), "change-1")
    service, *_ = delivery(record(), events=recorded(proving))
    assert service.deliver(Notice("told", kind, PERSON, params, proof=proving)).sent  # as MinID queues it


def test_a_notice_with_recipients_goes_to_them_and_not_the_register() -> None:
    service, phone, mailbox, _ = delivery(record(), events=recorded(RE_ENROLLED))
    old = Recipients("+4790000000", None, Language.ENGLISH)
    notice = Notice("e:re", NoticeKind.RE_ENROLLED, PERSON, recipients=old, proof=RE_ENROLLED)
    assert service.deliver(notice).sent == [Channel.SMS]
    assert phone.sent[0][0] == "+4790000000"
    assert "registered again" in phone.sent[0][1]
    assert mailbox.sent == []


# ---------------------------------------------------------------------- notices queued before their change
CHANGED = SecurityEvent(SecurityEventType.PASSWORD_CHANGED, NOW - timedelta(seconds=3), "change-1")
TOLD = Notice("change-1:password", NoticeKind.PASSWORD_CHANGED, PERSON, proof=CHANGED)


def test_a_notice_waits_for_the_change_it_tells_of() -> None:
    events = Events()
    service, phone, _, _ = delivery(record(), events=events)
    with pytest.raises(NoticeNotYet):
        service.deliver(TOLD)
    assert phone.sent == []
    events.recorded.add((PERSON, "change-1"))
    assert service.deliver(TOLD).sent == [Channel.SMS, Channel.EMAIL]


def test_a_notice_of_a_change_that_was_not_made_is_dropped_in_time() -> None:
    service, phone, _, _ = delivery(record())
    stale = Notice(
        "change-2:password", NoticeKind.PASSWORD_CHANGED, PERSON, proof=replace(CHANGED, at=NOW - PROOF_WAIT)
    )
    assert service.deliver(stale) == Delivered(unproven=True)  # told apart from one delivered: counted
    assert phone.sent == []


def test_the_proof_survives_the_queue() -> None:
    assert notice_from_json(notice_to_json(TOLD, SEALER)) == TOLD


def test_a_notice_whose_change_is_never_made_is_dropped_before_the_queue_gives_up_on_it() -> None:
    """The notifier answers NoticeNotYet while it waits for the proof (PROOF_WAIT): every receive in that
    wait fails. The queue must receive it once more after the wait, or the notice of a change that was
    refused (a 409 after the notice was queued) lands in the dead-letter queue and raises its alarm."""
    queue = Template.load().document["Resources"]["NoticeQueue"]["Properties"]
    receives, every = queue["RedrivePolicy"]["maxReceiveCount"], queue["VisibilityTimeout"]
    last_receive = (receives - 1) * every  # seconds after the first, which comes after the proof delay
    assert last_receive > PROOF_WAIT.total_seconds() + every  # and a receive's own time, to spare


def test_a_notice_that_failed_comes_back_later_the_more_often_it_failed() -> None:
    """1, 2, 4, 8 minutes, then every 15: the queue's 15 receives wait out some three hours of a
    provider's outage, where at its own minute a notice was dead-lettered in a quarter of an hour."""
    retries = Retries()
    service, *_ = delivery(None, retries=retries)
    for receive_count in range(1, 16):
        service.failed("arn:aws:sqs:eu-north-1:123456789012:notices", f"receipt-{receive_count}", receive_count, POSTED)
    waits = [seconds for _, seconds in retries.later_by]
    assert waits[:6] == [60, 120, 240, 480, 900, 900]
    assert set(waits[5:]) == {900}
    assert 3 * 3600 - 900 <= sum(waits[:14]) <= 3 * 3600 + 900  # until the 15th receive
    assert retries.later_by[0][0] == "receipt-1"


def test_a_reset_code_that_failed_is_tried_again_soon_while_it_works_and_is_received_once_after() -> None:
    """A code works for its 10 minutes: on the notices' waits (1, 2, 4, 8 minutes) a provider's trouble of
    a few minutes had it come minutes late, or not at all: its fifth receive fell past the code queue's
    retention, and neither the dead-letter queue nor the too-late count saw it. It is tried again every
    15 s, the queue receives it as often as that takes (more, at the queue's own timeout), and it is
    still kept when it has expired, for the receive that drops it and counts it too late."""
    retries = Retries()
    service, *_ = delivery(None, retries=retries)
    code = Notice("reset-1:code", NoticeKind.PASSWORD_RESET_CODE, PERSON, {"expires_at": NOW.isoformat()})
    for receive_count in range(1, 41):
        service.failed(CODES_ARN, f"receipt-{receive_count}", receive_count, code)
    waits = [seconds for _, seconds in retries.later_by]
    assert set(waits) == {15}
    queue = Template.load().document["Resources"]["CodeQueue"]["Properties"]
    receives, timeout = queue["RedrivePolicy"]["maxReceiveCount"], queue["VisibilityTimeout"]
    lifetime = CODE_LIFETIME.total_seconds()
    assert (receives - 1) * 15 > lifetime + 15  # not dead-lettered while it works, retried every 15 s
    assert queue["MessageRetentionPeriod"] >= lifetime + timeout + 60  # received once after it expired
    assert timeout * (receives - 1) > lifetime  # nor when the retry could not be put off


# ---------------------------------------------------------------------- a send the ledger cannot be told of
def test_a_send_the_ledger_is_told_of_only_at_a_retry_is_recorded() -> None:
    ledger = Ledger(unwritable=MARK_SENT_TRIES - 1)
    service, phone, mailbox, _ = delivery(record(), ledger=ledger)
    assert service.deliver(POSTED) == Delivered([Channel.SMS, Channel.EMAIL])
    assert ledger.states[(POSTED.notice_id, Channel.SMS)] == "sent"
    assert service.deliver(POSTED) == Delivered()
    assert (len(phone.sent), len(mailbox.sent)) == (1, 1)


def test_a_send_the_ledger_cannot_be_told_of_neither_skips_the_other_channel_nor_is_sent_again() -> None:
    """SNS took the SMS, and the ledger's write failed past every retry: the e-mail is still sent, and the
    notice is done (not delivered again, which would send the SMS again once its claim lapsed)."""
    ledger = Ledger(unwritable=MARK_SENT_TRIES)
    told: list[tuple[str, list[Channel]]] = []
    service, phone, mailbox, _ = delivery(record(), ledger=ledger, unrecorded=told)
    delivered = service.deliver(POSTED)  # does not raise: nothing is left to send
    assert delivered == Delivered([Channel.SMS, Channel.EMAIL], unrecorded=[Channel.SMS])
    assert told == [(POSTED.notice_id, [Channel.SMS])]  # the operators' to know
    assert (len(phone.sent), len(mailbox.sent)) == (1, 1)
    assert ledger.states[(POSTED.notice_id, Channel.EMAIL)] == "sent"
    assert ledger.states[(POSTED.notice_id, Channel.SMS)] == "sending"  # its claim: left to lapse, and expire


def test_a_failure_of_the_ledger_before_a_send_does_not_skip_the_other_channel() -> None:
    @dataclass
    class Unclaimable(Ledger):
        def claim(self, notice_id: str, channel: Channel, now: datetime, lease: timedelta) -> Claim:
            if channel is Channel.SMS:
                raise ConnectionError("DynamoDB is down")
            return super().claim(notice_id, channel, now, lease)

    service, phone, mailbox, _ = delivery(record(), ledger=Unclaimable())
    with pytest.raises(ConnectionError):  # delivered again later, for the SMS
        service.deliver(POSTED)
    assert (len(phone.sent), len(mailbox.sent)) == (0, 1)


def test_a_send_unrecorded_is_told_though_the_other_channel_fails() -> None:
    """Then the notice is delivered again, and the SMS sent twice once its claim lapses: the case the
    operators most need to hear of, told before the e-mail's failure is raised."""
    told: list[tuple[str, list[Channel]]] = []

    @dataclass
    class Failing(Mailbox):
        def send_email(self, to: str, message: Message) -> None:
            raise ConnectionError("SES is down")

    service = delivery(record(), ledger=Ledger(unwritable=MARK_SENT_TRIES), unrecorded=told, mailbox=Failing())[0]
    with pytest.raises(ConnectionError):
        service.deliver(POSTED)
    assert told == [(POSTED.notice_id, [Channel.SMS])]


# ---------------------------------------------------------------------- the dead
def test_the_contacts_of_a_dead_person_are_told_nothing() -> None:
    """Their number or address may have passed to someone else (the contact review reminds them of nothing
    either): a letter of theirs blocked after five wrong codes, say, is not told to them."""
    blocked = Notice("letter-1:blocked", NoticeKind.PIN_LETTER_BLOCKED, PERSON, proof=BLOCKED)
    service, phone, mailbox, _ = delivery(
        record(), events=recorded(BLOCKED), population=Population(PersonStatus.DECEASED)
    )
    assert service.deliver(blocked) == Delivered()
    assert (phone.sent, mailbox.sent) == ([], [])


def test_the_contacts_a_notice_carries_of_a_dead_person_are_told_nothing_but_a_reset_s_code() -> None:
    """A change of mobile in a dead person's MinID: the old number is not told (it may have passed to
    someone else). A reset's code goes where its start sent it (the start sends none for the dead)."""
    old = Recipients("+4790000000", None, Language.BOKMAL)
    changed = Notice("c1:changed", NoticeKind.CONTACT_CHANGED, PERSON, {"channel": "mobile"}, old, REQUESTED)
    sealed = notice_from_json(notice_to_json(changed, SEALER))
    for notice in (changed, sealed):
        service, phone, mailbox, _ = delivery(
            None, events=recorded(REQUESTED), population=Population(PersonStatus.DECEASED)
        )
        assert service.deliver(notice) == Delivered()
        assert (phone.sent, mailbox.sent) == ([], [])
    service, phone, *_ = delivery(None, population=Population(PersonStatus.DECEASED))
    assert service.deliver(reset_code()).sent == [Channel.SMS]
    service, phone, *_ = delivery(None, events=recorded(REQUESTED))
    assert service.deliver(changed).sent == [Channel.SMS]  # alive: told


@pytest.mark.parametrize("status", [PersonStatus.RESIDENT, PersonStatus.EMIGRATED, PersonStatus.CEASED, None])
def test_the_contacts_of_a_person_not_registered_dead_are_told(status: PersonStatus | None) -> None:
    service, *_ = delivery(record(), population=Population(status))
    assert service.deliver(POSTED).sent == [Channel.SMS, Channel.EMAIL]


# ---------------------------------------------------------------------- a block the person made
def test_a_block_the_person_made_is_told_with_its_date_and_not_as_wrong_codes() -> None:
    params = {"date": "2026-11-20"}
    english = compose(NoticeKind.PIN_LETTERS_BLOCKED_BY_OWNER, Language.ENGLISH, params).sms
    assert "blocked at your request on 20 November 2026" in english
    assert "If it was not you" in english
    assert "five" not in english
    bokmal = compose(NoticeKind.PIN_LETTERS_BLOCKED_BY_OWNER, Language.BOKMAL, params).sms
    assert "ble sperret 20. november 2026, slik du ba om" in bokmal
    nynorsk = compose(NoticeKind.PIN_LETTERS_BLOCKED_BY_OWNER, Language.NYNORSK, params).sms
    assert "vart sperra 20. november 2026, slik du bad om" in nynorsk


# ---------------------------------------------------------------------- a password reset's code
def reset_code(
    mobile: str | None = "+4791234567",
    email: str | None = "kari@example.no",
    works_for: timedelta = timedelta(minutes=10),
) -> Notice:
    """A reset's code as the notifier takes it from the queue: sealed with its recipients."""
    expires = (NOW + works_for).isoformat()
    to = Recipients(mobile, email, Language.NYNORSK, "123456")
    queued = Notice("r1:code", NoticeKind.PASSWORD_RESET_CODE, PERSON, {"expires_at": expires}, recipients=to)
    return notice_from_json(notice_to_json(queued, SEALER))


def test_a_reset_code_goes_to_the_mobile_alone() -> None:
    service, phone, mailbox, _ = delivery(None)  # its own recipients: the register is not read
    assert service.deliver(reset_code()).sent == [Channel.SMS]
    ((to, text),) = phone.sent
    assert to == "+4791234567"
    assert text.startswith("Koden din for nytt passord i MinID er 123456.")
    assert text.endswith("@minid.example.no #123456")
    assert mailbox.sent == []
    assert service.deliver(reset_code()).sent == []  # delivered again: sent once


def test_a_reset_code_that_comes_late_says_how_long_it_still_works() -> None:
    """Held up in the queue (the provider failing for a while), it does not promise its whole 10 minutes."""
    service, phone, *_ = delivery(None)
    service.deliver(reset_code(works_for=timedelta(minutes=6, seconds=30)))
    ((_, text),) = phone.sent
    assert "Han gjeld i 6 minutt." in text
    service, phone, *_ = delivery(None)
    service.deliver(reset_code(works_for=timedelta(minutes=9, seconds=59)))  # sent at once: a moment later
    assert "Han gjeld i 10 minutt." in phone.sent[0][1]
    reset = CodePurpose.RESET
    assert "valid for 1 minute." in code_message("123456", Language.ENGLISH, "d", reset, minutes=0).sms
    assert "gjelder i 1 minutt." in code_message("123456", Language.BOKMAL, "d", reset, minutes=1).sms
    assert "gjelder i 10 minutter." in code_message("123456", Language.BOKMAL, "d", reset).sms


def test_a_reset_code_with_less_than_a_minute_left_is_not_sent_and_counted_late() -> None:
    """Typed in with a PIN code and a new password, a code with seconds left expires on the way."""
    service, phone, *_ = delivery(None)
    assert service.deliver(reset_code(works_for=timedelta(seconds=59))) == Delivered(too_late=True)
    assert phone.sent == []
    assert service.deliver(reset_code(works_for=timedelta(seconds=61))).sent == [Channel.SMS]


def test_a_reset_code_goes_to_the_e_mail_when_sns_refuses_the_number_and_only_then() -> None:
    service, phone, mailbox, _ = delivery(None, Phone(refuse=True))
    delivered = service.deliver(reset_code())
    assert (delivered.sent, delivered.refused) == ([Channel.EMAIL], [Channel.SMS])
    assert [to for to, _ in mailbox.sent] == ["kari@example.no"]
    assert "123456" in mailbox.sent[0][1].text
    assert "kunne ikkje sendast på SMS" in mailbox.sent[0][1].text  # why it came by e-mail

    # the e-mail failed the first time: delivered again, the refused number is not tried again
    service, phone, mailbox, _ = delivery(None, Phone(refuse=True), mailbox=Mailbox(fail=True))
    with pytest.raises(ConnectionError):
        service.deliver(reset_code())
    mailbox.fail = False
    assert service.deliver(reset_code()).sent == [Channel.EMAIL]
    assert phone.tried == 1


def test_a_reset_code_goes_to_the_e_mail_at_once_though_the_ledger_cannot_be_told_sns_refused_the_number() -> None:
    """The refusal not written (DynamoDB failing): the code goes to the e-mail all the same, not minutes
    later once the SMS's claim has lapsed (a delivery meanwhile waiting on it as in flight)."""
    for unwritable, sms, unrecorded in ((MARK_SENT_TRIES, "sending", [Channel.SMS]), (1, "refused", [])):
        ledger = Ledger(unwritable=unwritable)  # (written at its second try)
        service, _, mailbox, _ = delivery(None, Phone(refuse=True), ledger)
        code = reset_code()
        delivered = service.deliver(code)
        assert (delivered.sent, delivered.refused) == ([Channel.EMAIL], [Channel.SMS])
        assert delivered.refusals_unrecorded == unrecorded  # told to the operators (the notifier logs it)
        assert [to for to, _ in mailbox.sent] == ["kari@example.no"]
        assert ledger.state_of(code.notice_id, Channel.SMS) == sms


def test_a_send_that_failed_is_told_as_its_own_failure_though_its_claim_cannot_be_released() -> None:
    """SNS down, and the claim's release failing at every try: the delivery fails with SNS's error (what
    the notifier logs), the release's told in a note; the claim lapses."""
    ledger = Ledger(unwritable=MARK_SENT_TRIES)
    service, *_ = delivery(record(), Phone(fail=True), ledger, mailbox=Mailbox(fail=True))
    with pytest.raises(ConnectionError, match="SNS is down") as raised:
        service.deliver(POSTED)
    not_released = "The channel's claim was not released"
    assert raised.value.__notes__ == [not_released, "The other channel failed too: ConnectionError"]
    # the e-mail's claim not released either: told too, with its failure (the one not raised)
    ledger = Ledger(unwritable=2 * MARK_SENT_TRIES)
    service, *_ = delivery(record(), Phone(fail=True), ledger, mailbox=Mailbox(fail=True))
    with pytest.raises(ConnectionError, match="SNS is down") as raised:
        service.deliver(POSTED)
    assert raised.value.__notes__ == [not_released, "The other channel failed too: ConnectionError", not_released]


def test_a_claim_whose_release_failed_once_is_released() -> None:
    """A claim kept would hold the channel until it lapsed, and then be taken over as another's, which is
    never given up on (a code's e-mail held back while SNS is down, for the rest of its life)."""
    ledger = Ledger(unwritable=1)
    service, *_ = delivery(record(), Phone(fail=True), ledger, mailbox=Mailbox(fail=True))
    with pytest.raises(ConnectionError, match="SNS is down"):
        service.deliver(POSTED)
    assert ledger.state_of(POSTED.notice_id, Channel.SMS) is None


def test_a_reset_code_whose_sms_give_up_cannot_be_written_is_given_up_at_the_next_delivery() -> None:
    """The give-up not written (DynamoDB failing at every try): the claim is released, and the next
    delivery gives the mobile up and sends the code to the e-mail (not held back behind a claim in flight,
    nor taken over as another's, which is never given up on)."""
    ledger = Ledger(unwritable=MARK_SENT_TRIES)
    service, phone, mailbox, _ = delivery(None, Phone(fail=True), ledger)
    code = reset_code(works_for=CODE_LIFETIME - SMS_TRIED_FOR)
    with pytest.raises(ConnectionError, match="SNS is down"):
        service.deliver(code)
    assert (ledger.states, mailbox.sent) == ({}, [])
    assert service.deliver(code) == Delivered([Channel.EMAIL], given_up=[Channel.SMS])
    assert phone.sent == []


@dataclass
class MobileReleaseFailing(Ledger):
    failing: int = 0  # how many releases of a mobile's claim fail (DynamoDB failing past the SDK's retries)

    def release(self, notice_id: str, channel: Channel, *, after_another: bool = False) -> None:
        if channel is Channel.SMS and self.failing:
            self.failing -= 1
            raise ConnectionError("DynamoDB is down")
        super().release(notice_id, channel, after_another=after_another)


def test_a_code_s_mobile_given_up_on_is_given_back_though_its_release_fails_once() -> None:
    """Both channels failing, nothing sent: the mobile given up on is given back (tried again next time, or the
    code would reach no one), its release tried as every ledger write is. One that cannot be made at any try
    keeps the mobile given up, told in a note of the delivery's failure."""
    code = reset_code(works_for=CODE_LIFETIME - SMS_TRIED_FOR)
    for failing, kept, notes in (
        (MARK_SENT_TRIES - 1, {}, None),
        (MARK_SENT_TRIES, {(code.notice_id, Channel.SMS): "given_up"}, ["A channel given up on was not given back"]),
    ):
        given_up: list[tuple[str, Channel, str]] = []
        ledger = MobileReleaseFailing(failing=failing)
        service, *_ = delivery(None, Phone(fail=True), ledger, mailbox=Mailbox(fail=True), given_up=given_up)
        with pytest.raises(ConnectionError, match="SES") as raised:
            service.deliver(code)
        assert ledger.states == kept
        assert getattr(raised.value, "__notes__", None) == notes
        assert [channel for _, channel, _ in given_up] == [Channel.SMS] * len(kept)  # told where kept


def test_a_reset_code_whose_sms_failed_is_not_sent_to_the_e_mail_meanwhile() -> None:
    """SNS down (not refusing) for less than SMS_TRIED_FOR of the code's life: the code may yet go out by
    SMS when the notice comes back (in 15 s); sent to the e-mail meanwhile, it would be sent on two
    channels. Its claim is released, for the next delivery."""
    for works_for in (CODE_LIFETIME, CODE_LIFETIME - SMS_TRIED_FOR + timedelta(seconds=1)):
        ledger = Ledger()
        service, phone, mailbox, _ = delivery(None, Phone(fail=True), ledger)
        with pytest.raises(ConnectionError):
            service.deliver(reset_code(works_for=works_for))
        assert mailbox.sent == []
        assert ledger.states == {}
        phone.fail = False
        assert service.deliver(reset_code(works_for=works_for)).sent == [Channel.SMS]
        assert mailbox.sent == []


def test_a_reset_code_whose_sms_still_fails_once_it_has_waited_goes_to_the_e_mail_once() -> None:
    """SNS down for the code's first minute (its notice tried every 15 s): the mobile is given up on, in the
    ledger, and the code goes to the e-mail, saying why; delivered again (SNS back), it is not sent by SMS
    as well: a code on one channel. The operators are told why (the delivery, done, raises nothing)."""
    partly: list[tuple[str, Delivered]] = []
    given_up: list[tuple[str, Channel, str]] = []
    ledger = Ledger()
    service, phone, mailbox, _ = delivery(None, Phone(fail=True), ledger, partly=partly, given_up=given_up)
    code = reset_code(works_for=CODE_LIFETIME - SMS_TRIED_FOR)
    assert service.deliver(code) == Delivered([Channel.EMAIL], given_up=[Channel.SMS])
    assert given_up == [(code.notice_id, Channel.SMS, "SNS is down")]
    ((to, message),) = mailbox.sent
    assert to == "kari@example.no"
    assert "123456" in message.text
    assert "kunne ikkje sendast på SMS" in message.text
    assert ledger.states == {(code.notice_id, Channel.SMS): "given_up", (code.notice_id, Channel.EMAIL): "sent"}
    assert partly == []  # nothing failed: the delivery is done
    phone.fail = False
    assert service.deliver(code) == Delivered()
    assert (phone.tried, phone.sent, len(mailbox.sent)) == (1, [], 1)

    # the e-mail failing too, nothing sent (SES refusing the account's sending, say): raised, and the mobile
    # given back, tried again at the next delivery (kept given up, the code would reach no one); SNS back,
    # the code goes by SMS, and the e-mail is not tried
    partly.clear()
    given_up.clear()
    ledger = Ledger()
    service, phone, mailbox, _ = delivery(
        None, Phone(fail=True), ledger, mailbox=Mailbox(fail=True), partly=partly, given_up=given_up
    )
    for tried in (1, 2):
        with pytest.raises(ConnectionError, match="SES"):
            service.deliver(code)
        assert (ledger.states, partly, given_up, phone.tried) == ({}, [], [], tried)  # nothing kept given up
    expired = replace(code, params={"expires_at": NOW.isoformat()})  # had both failed until it expired
    assert service.deliver(expired) == Delivered(too_late=True)  # it reached no one
    phone.fail = False
    assert service.deliver(code) == Delivered([Channel.SMS])
    assert (phone.tried, len(phone.sent), mailbox.sent) == (3, 1, [])

    # the e-mail's answer lost (it may be out): the mobile stays given up on; the e-mail again once its claim
    # lapses, never the SMS
    ledger = Ledger()
    service, phone, mailbox, _ = delivery(None, Phone(fail=True), ledger, partly=partly, given_up=given_up)

    def lost(to: str, message: Message) -> None:
        raise MaybeSent("read timeout")

    mailbox.send_email = lost
    with pytest.raises(MaybeSent):
        service.deliver(code)
    assert ledger.states == {(code.notice_id, Channel.SMS): "given_up", (code.notice_id, Channel.EMAIL): "sending"}
    assert [delivered for _, delivered in partly] == [Delivered(given_up=[Channel.SMS])]
    assert given_up == [(code.notice_id, Channel.SMS, "SNS is down")]
    with pytest.raises(NoticeInFlight):
        service.deliver(code)
    assert phone.tried == 1


def test_a_reset_code_whose_sms_fails_is_not_given_up_on_with_no_e_mail_or_when_it_may_have_gone() -> None:
    """With no e-mail, the mobile is all there is: tried again as before, whatever the code's age. A send
    that may have gone out (its answer lost) keeps its claim, and the e-mail is not tried: the code may be
    on the mobile already. A notice not a code is sent on both channels, failing or not, and given up on
    none."""
    late = CODE_LIFETIME - SMS_TRIED_FOR - timedelta(minutes=2)
    ledger = Ledger()
    service, phone, mailbox, _ = delivery(None, Phone(fail=True), ledger)
    with pytest.raises(ConnectionError):
        service.deliver(reset_code(email=None, works_for=late))
    assert (ledger.states, phone.tried) == ({}, 1)

    class Lost(Phone):
        def send_sms(self, to: str, text: str) -> None:
            raise MaybeSent("read timeout")

    ledger = Ledger()
    service, _, mailbox, _ = delivery(None, Lost(), ledger)
    code = reset_code(works_for=late)
    with pytest.raises(MaybeSent):
        service.deliver(code)
    assert (ledger.states, mailbox.sent) == ({(code.notice_id, Channel.SMS): "sending"}, [])

    ledger = Ledger()
    service, phone, mailbox, _ = delivery(record(), Phone(fail=True), ledger)
    posted = replace(POSTED, params={**POSTED.params, "expires_at": (NOW + late).isoformat()})  # as a code's
    with pytest.raises(ConnectionError):
        service.deliver(posted)
    assert (ledger.states, len(mailbox.sent), phone.tried) == ({(POSTED.notice_id, Channel.EMAIL): "sent"}, 1, 1)


def test_a_reset_code_s_sms_that_may_be_out_is_never_given_up_on_for_its_e_mail() -> None:
    """Its answer lost (MaybeSent), the claim kept until it lapses; the delivery that then takes it over
    finds SNS refusing (nothing sent now): the first may have come all the same, so the mobile is not
    given up on, and the claim is left lapsed, not removed, so that no delivery after gives it up either.
    The code goes by SMS once SNS takes it, never by e-mail. Nor is a failure that does not prove nothing
    was sent (a broken connection) given up on."""
    code = reset_code(works_for=CODE_LIFETIME - SMS_TRIED_FOR - timedelta(minutes=2))
    ledger = Ledger()
    phone = Phone(failing=[MaybeSent("read timeout")], fail=True)
    service, phone, mailbox, _ = delivery(None, phone, ledger)
    with pytest.raises(MaybeSent):
        service.deliver(code)
    ledger.lapsed.add((code.notice_id, Channel.SMS))  # its lease run out
    for _ in range(3):
        with pytest.raises(ConnectionError):
            service.deliver(code)
        assert ledger.states == {(code.notice_id, Channel.SMS): "sending"}
        assert ledger.lapsed == {(code.notice_id, Channel.SMS)}
    phone.fail = False
    assert service.deliver(code) == Delivered([Channel.SMS])
    assert (phone.tried, len(phone.sent), mailbox.sent) == (5, 1, [])

    ledger = Ledger()
    service, phone, mailbox, _ = delivery(None, Phone(failing=[OSError("connection reset")]), ledger)
    with pytest.raises(OSError, match="reset"):
        service.deliver(code)
    assert (ledger.states, mailbox.sent) == ({}, [])  # released: tried again by SMS


def test_a_reset_s_no_letter_notice_is_given_up_on_as_a_code_is() -> None:
    """Sent as a code is (to one channel, the e-mail only where the mobile is refused or given up on)."""
    expires = (NOW + CODE_LIFETIME - SMS_TRIED_FOR).isoformat()
    to = Recipients("+4791234567", "kari@example.no", Language.ENGLISH)
    queued = Notice("no-letter:x", NoticeKind.PASSWORD_RESET_NO_LETTER, PERSON, {"expires_at": expires}, recipients=to)
    service, phone, mailbox, _ = delivery(None, Phone(fail=True))
    assert service.deliver(notice_from_json(notice_to_json(queued, SEALER))).given_up == [Channel.SMS]
    assert (phone.sent, len(mailbox.sent)) == ([], 1)


def test_a_reset_code_is_not_sent_once_it_has_expired() -> None:
    service, phone, mailbox, _ = delivery(None)
    late = reset_code()
    late = Notice(late.notice_id, late.kind, late.person, {"expires_at": NOW.isoformat()}, recipients=late.recipients)
    assert service.deliver(late) == Delivered(too_late=True)  # told to the operators: the person waits in vain
    assert (phone.sent, mailbox.sent) == ([], [])


def test_a_reset_code_sent_in_time_and_handed_out_again_after_it_expired_is_done_not_late() -> None:
    """Its message was not deleted in time (the notifier timed out after the send): no alarm for it."""
    service, phone, mailbox, _ = delivery(None)
    code = reset_code()
    assert service.deliver(code).sent == [Channel.SMS]
    late = Notice(code.notice_id, code.kind, code.person, {"expires_at": NOW.isoformat()}, recipients=code.recipients)
    assert service.deliver(late) == Delivered()
    assert (len(phone.sent), mailbox.sent) == (1, [])


def test_a_reset_code_that_may_have_gone_out_in_time_and_handed_out_again_after_it_expired_is_not_late() -> None:
    """Its SMS's answer lost (MaybeSent: the claim kept), and the code expired before it came back: it may
    well have come, and is no alarm of a person waiting in vain."""
    code = reset_code()
    service, phone, mailbox, _ = delivery(None, ledger=Ledger(states={(code.notice_id, Channel.SMS): "sending"}))
    late = Notice(code.notice_id, code.kind, code.person, {"expires_at": NOW.isoformat()}, recipients=code.recipients)
    assert service.deliver(late) == Delivered()
    assert (phone.sent, mailbox.sent) == ([], [])


def test_a_reset_code_refused_in_time_and_handed_out_again_after_it_expired_is_done_not_late() -> None:
    """Refused by the provider for good (counted as refused then): no alarm of a code come too late."""
    service, *_ = delivery(None, Phone(refuse=True))
    code = reset_code(email=None)
    assert service.deliver(code).refused == [Channel.SMS]
    late = Notice(code.notice_id, code.kind, code.person, {"expires_at": NOW.isoformat()}, recipients=code.recipients)
    assert service.deliver(late) == Delivered()


def test_a_reset_code_refused_on_its_mobile_whose_e_mail_failed_until_it_expired_is_late() -> None:
    """It reached no one, and its refusal was never counted (the delivery raised the e-mail's failure)."""
    ledger = Ledger()
    service, *_ = delivery(None, Phone(refuse=True), ledger, mailbox=Mailbox(fail=True))
    code = reset_code()
    with pytest.raises(ConnectionError):
        service.deliver(code)
    assert ledger.states[(code.notice_id, Channel.SMS)] == "refused"
    late = Notice(code.notice_id, code.kind, code.person, {"expires_at": NOW.isoformat()}, recipients=code.recipients)
    assert service.deliver(late) == Delivered(too_late=True)


def test_a_provider_s_failure_is_raised_over_another_sender_s_hold_on_the_other_channel() -> None:
    """The hold alone is a quiet wait (NoticeInFlight); SES failing beside it is logged, counted and
    backed off as any failure."""
    ledger = Ledger(states={(POSTED.notice_id, Channel.SMS): "sending"})
    service, *_ = delivery(record(), ledger=ledger, mailbox=Mailbox(fail=True))
    with pytest.raises(ConnectionError):
        service.deliver(POSTED)
    service, *_ = delivery(record(), ledger=Ledger(states={(POSTED.notice_id, Channel.SMS): "sending"}))
    with pytest.raises(NoticeInFlight):
        service.deliver(POSTED)
    # the hold after the failure: the failure raised, the hold no note of it (a wait, no failure)
    ledger = Ledger(states={(POSTED.notice_id, Channel.EMAIL): "sending"})
    service, *_ = delivery(record(), Phone(fail=True), ledger)
    with pytest.raises(ConnectionError, match="SNS") as raised:
        service.deliver(POSTED)
    assert getattr(raised.value, "__notes__", None) is None


def test_a_decoy_s_code_goes_to_no_one() -> None:
    service, phone, mailbox, _ = delivery(record())  # the person has contacts: they are not told
    assert service.deliver(reset_code(mobile=None, email=None)) == Delivered()
    assert (phone.sent, mailbox.sent) == ([], [])


def test_a_reset_code_travels_sealed_with_its_recipients() -> None:
    to = Recipients("+4791234567", None, Language.NYNORSK, "123456")
    body = notice_to_json(Notice("r1:code", NoticeKind.PASSWORD_RESET_CODE, PERSON, recipients=to), SEALER)
    assert "123456" not in body
    assert "91234567" not in body
    opened = notice_from_json(body)
    assert isinstance(opened.recipients, SealedRecipients)
    assert open_recipients(opened.notice_id, opened.recipients, SEALER).code == "123456"


def test_a_code_is_sent_only_sealed_and_only_as_six_digits() -> None:
    """A role that may queue but not seal (the PIN-letter function, say) cannot have the notifier send its
    words as MinID's: recipients in the clear are refused but for the kinds queued so before recipients
    were sealed (the message goes on to the dead-letter queue, and its alarm), and carry no code; a code is
    six digits or nothing is sent."""
    body = json.loads(notice_to_json(reset_code(), SEALER))
    body["recipients"] = {"mobile": "+4791234567", "email": None, "language": "nb", "code": "123456"}
    with pytest.raises(ValueError, match="carries no recipients in plain"):
        notice_from_json(json.dumps(body))
    for kind in set(NoticeKind) - PLAIN_RECIPIENTS_ONCE:
        with pytest.raises(ValueError, match="carries no recipients in plain"):
            notice_from_json(json.dumps(body | {"kind": kind.value}))
    service, phone, mailbox, _ = delivery(None)
    changed = notice_from_json(json.dumps(body | {"kind": NoticeKind.CONTACT_CHANGED.value, "params": {}}))
    assert changed.recipients == Recipients("+4791234567", None, Language.BOKMAL)  # queued so once: no code
    worded = Recipients("+4791234567", None, Language.BOKMAL, "123456. Logg inn på https://example.com")
    notice = Notice("r2:code", NoticeKind.PASSWORD_RESET_CODE, PERSON, reset_code().params, recipients=worded)
    assert service.deliver(notice_from_json(notice_to_json(notice, SEALER))) == Delivered()
    assert (phone.sent, mailbox.sent) == ([], [])


def test_a_reset_code_for_one_without_a_mobile_comes_by_e_mail_as_any_code() -> None:
    service, _, mailbox, _ = delivery(None)
    assert service.deliver(reset_code(mobile=None)).sent == [Channel.EMAIL]
    assert "SMS" not in mailbox.sent[0][1].text


@pytest.mark.parametrize(
    ("held", "named", "not_named"),
    [
        ({"email": None, "email_verified_at": None}, "Mobilnummeret ditt i kontaktregisteret", "e-post"),
        ({"mobile": None, "mobile_verified_at": None}, "E-postadressen din i kontaktregisteret", "Mobilnummeret"),
        ({}, "Mobilnummeret og e-postadressen din i kontaktregisteret", "Mobilnummeret ditt"),
    ],
)
def test_a_reminder_names_the_contacts_the_person_has(held: dict[str, object], named: str, not_named: str) -> None:
    service, phone, mailbox, _ = delivery(record(**held))
    service.deliver(Notice("p:reminder:2025-08-01", NoticeKind.CONFIRMATION_REMINDER, PERSON))
    (text,) = [text for _, text in phone.sent] or [message.text for _, message in mailbox.sent]
    assert named in text
    assert not_named not in text

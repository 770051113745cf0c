"""The contact register through the real handlers on moto: changes, verification, confirmation,
reservation, the daily review, and notices that survive a provider's outage through the queue."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from unittest import mock

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError, ReadTimeoutError
from msgspec.structs import replace

from local.faults import injected_faults
from local.functions import LambdaContext
from minid import deadline, wiring
from minid.adapters.contact_changes import DynamoDbContactChanges
from minid.adapters.contacts import DynamoDbContactRegister, contact_item
from minid.adapters.dynamodb import to_item
from minid.api.resolver import NO_BODY
from minid.deadline import OutOfTime
from minid.domain.codes import MAX_CODE_TRIES, RateLimited, replaced_code
from minid.domain.contact_changes import (
    CHANGED_MEANWHILE,
    CONFIRMATIONS,
    LANGUAGE_CHANGED_TOO_OFTEN,
    LANGUAGE_CHANGES,
    NOT_WAITING,
    RESERVATION_CHANGED_TOO_OFTEN,
    RESERVATION_CHANGES,
    STOP_WITH_SECONDS,
    Applied,
    PendingChange,
    ReviewRun,
)
from minid.domain.contacts import REMIND_AFTER, STALE_AFTER, ContactRecord, Language
from minid.domain.errors import AuthenticationFailed, Conflict
from minid.domain.events import SecurityEvent, SecurityEventType
from minid.domain.keys import PersonKey
from minid.domain.notices import (
    REMINDED_OF,
    RETRY_FIRST_SECONDS,
    Channel,
    MaybeSent,
    Undeliverable,
    notice_from_json,
)
from minid.domain.rate_limits import CODES_TO_PERSON_PER_HOUR
from minid.domain.sessions import ReauthenticationRequired, Session, SessionEnded, Unauthenticated
from minid.domain.time import NORWAY, date_in_norway
from tests.integration.letters import (
    LetterDriver,
    age_ledger,
    before_first_aws_call,
    calls_made,
    counted_hits,
    fill_counters,
    in_one_window,
    notice_queue,
    on_functions_clients,
    password_changed,
    posted,
    registered_dead,
    security_events,
    transaction_updating,
    wait_for,
)
from tests.integration.users import CodesAlike, MovableClock, User, enrolled


def body(response: Any) -> Any:
    return json.loads(response.body) if response.body else None


def register(driver: LetterDriver) -> DynamoDbContactRegister:
    return DynamoDbContactRegister(driver.dynamodb, driver.local.stack.refs["ContactRegisterTable"])


def pending_changes(driver: LetterDriver) -> DynamoDbContactChanges:
    refs = driver.local.stack.refs
    return DynamoDbContactChanges(
        driver.dynamodb,
        refs["ChallengesTable"],
        contacts_table=refs["ContactRegisterTable"],
        users_table=refs["UsersTable"],
        events_table=refs["SecurityEventsTable"],
    )


def stored_before_changes_had_ids(driver: LetterDriver, user: User) -> None:
    """The user's pending contact change as one stored before changes had ids (`change_id`)."""
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["ChallengesTable"],
        Key=to_item({"pk": f"contact-change#{driver.key(user.identity_number)}"}),
        UpdateExpression="REMOVE change_id",
    )


def sms_to(driver: LetterDriver, number: str) -> list[str]:
    return [m["message"] for m in driver.local.outbox.sms() if m["to"] == number]


def code_in(texts: list[str]) -> str:
    codes = [found.group(1) for text in texts if (found := re.search(r"\b(?:er|is) (\d{6})\.", text))]
    assert codes
    return codes[-1]


def test_the_record_tells_when_confirmation_is_due_and_when_it_is_stale(driver: LetterDriver) -> None:
    user = enrolled(driver, email="kari@example.no")
    contact = body(user.call("GET", "/v1/me/contact", token=user.login()))
    assert contact["mobile"] == "+4791234567"
    assert contact["email"] == "kari@example.no"
    assert (contact["confirmation_due"], contact["stale"], contact["reserved"]) == (False, False, False)
    assert contact["language"] == "nb"


def test_a_new_mobile_is_verified_then_used_and_the_old_one_is_told(driver: LetterDriver) -> None:
    user = enrolled(driver)
    token = user.login()

    changed = user.call("PUT", "/v1/me/contact", {"mobile": "987 65 432"}, token)
    assert (changed.status, body(changed)) == (202, {"verification_sent_to": ["mobile"]})
    told = wait_for(lambda: sms_to(driver, "+4791234567"), lambda texts: any("blir endret" in t for t in texts))
    assert told
    assert body(user.call("GET", "/v1/me/contact", token=token))["mobile"] == "+4791234567"  # until verified
    code = code_in(sms_to(driver, "+4798765432"))
    verified = user.call("POST", "/v1/me/contact/verify", {"channel": "mobile", "code": code}, token)
    assert verified.status == 200
    assert body(verified)["mobile"] == "+4798765432"
    # the answer made from the write is the record as read again (its times to the millisecond, as kept)
    read_again = body(user.call("GET", "/v1/me/contact", token=token))
    assert read_again["updated_at"].endswith("Z")  # in UTC, as pydantic writes it (2026-12-06T12:00:00.123Z)
    assert {k: body(verified)[k] for k in ("mobile_verified_at", "updated_at", "confirmed_at")} == {
        k: read_again[k] for k in ("mobile_verified_at", "updated_at", "confirmed_at")
    }

    user.mobile = "+4798765432"
    login = body(user.start_login())
    assert login["second_factor"] == "sms"
    assert sms_to(driver, "+4798765432")[-1].endswith(f"#{user.last_sms_code()}")  # the login code went there


def test_a_change_asked_again_at_once_is_answered_as_it_was_and_sends_nothing_more(driver: LetterDriver) -> None:
    """The same change asked again within a resend's interval (a retry whose answer was lost, a second
    click): 202 as before, and nothing sent, told or recorded again; the code on its way verifies it. Asked
    again after the interval, it is made anew (a new code, the old contact told again), as the resend's
    "start again" has it."""
    user = enrolled(driver)
    clock = MovableClock()
    services = wiring.contact(os.environ, clock=clock)
    session = services.sessions.authenticate(user.login())
    person = driver.key(user.identity_number)

    def requested() -> int:
        events = security_events(driver).page(person, None, 100).events
        return sum(e.type is SecurityEventType.CONTACT_CHANGE_REQUESTED for e in events)

    assert services.contacts.change(session, mobile="987 65 432") == (Channel.SMS,)
    first = code_in(sms_to(driver, "+4798765432"))
    clock.advance(timedelta(seconds=29))
    assert services.contacts.change(session, mobile="+47 98765432") == (Channel.SMS,)
    assert (len(sms_to(driver, "+4798765432")), requested()) == (1, 1)
    clock.advance(timedelta(seconds=2))  # the interval past: made anew
    assert services.contacts.change(session, mobile="98765432") == (Channel.SMS,)
    assert (len(sms_to(driver, "+4798765432")), requested()) == (2, 2)
    second = code_in(sms_to(driver, "+4798765432"))
    with pytest.raises(AuthenticationFailed):
        services.contacts.verify(session, Channel.SMS, first)  # replaced
    assert services.contacts.verify(session, Channel.SMS, second).mobile == "+4798765432"

    # once resent (a resend writes its codes before it sends them: one that failed may have sent none), asked
    # again at once is made anew
    assert services.contacts.change(session, mobile="98765433") == (Channel.SMS,)
    clock.advance(timedelta(seconds=31))
    assert services.contacts.resend(session) == (Channel.SMS,)
    assert services.contacts.change(session, mobile="98765433") == (Channel.SMS,)
    assert len(sms_to(driver, "+4798765433")) == 3


@contextlib.contextmanager
def queued_messages() -> Iterator[list[str]]:
    """The bodies of the messages sent to SQS meanwhile, by any client in the process (as they left it)."""
    bodies: list[str] = []
    send = BaseClient._make_api_call  # type: ignore[attr-defined]

    def recorded(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if operation == "SendMessage":
            bodies.append(params["MessageBody"])
        return send(client, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", recorded):
        yield bodies


def test_the_contact_a_change_replaces_is_sealed_in_the_queue(driver: LetterDriver) -> None:
    """The old number's notice goes to it, but its message (kept up to 14 days with the dead-letter
    queue) holds it sealed under the data key, bound to the notice: no one reading the queue reads it."""
    user = enrolled(driver, email="kari.sealed@example.no")
    token = user.login()
    with queued_messages() as bodies:
        assert user.call("PUT", "/v1/me/contact", {"mobile": "987 65 433"}, token).status == 202
    told = wait_for(lambda: sms_to(driver, "+4791234567"), lambda texts: any("blir endret" in t for t in texts))
    assert told
    notices = [json.loads(b) for b in bodies if json.loads(b).get("kind") == "contact-changed"]
    assert len(notices) == 2  # the old number's, and the other contact's (the e-mail address)
    assert all("91234567" not in b and "kari.sealed" not in b for b in bodies)
    kms = driver.local.session.client("kms")
    opened = {}
    for notice in notices:
        sealed = base64.urlsafe_b64decode(notice["recipients"])
        with pytest.raises(ClientError, match="InvalidCiphertext"):  # bound to the notice
            kms.decrypt(CiphertextBlob=sealed, EncryptionContext={"purpose": "notice-recipients", "owner": "another"})
        context = {"purpose": "notice-recipients", "owner": notice["notice_id"]}
        recipients = json.loads(kms.decrypt(CiphertextBlob=sealed, EncryptionContext=context)["Plaintext"])
        opened[notice["params"].get("told", "old")] = (recipients["mobile"], recipients["email"])
    assert opened == {"old": ("+4791234567", None), "other": (None, "kari.sealed@example.no")}


def test_both_contacts_replaced_at_once_are_each_told_once(driver: LetterDriver) -> None:
    """Each old contact is told of its own change ("from this one"), not of the other's too: two notices,
    not four."""
    user = enrolled(driver, email="kari.both@example.no")
    with queued_messages() as bodies:
        change = {"mobile": "987 65 435", "email": "kari.new@example.no"}
        assert user.call("PUT", "/v1/me/contact", change, user.login()).status == 202
    notices = [json.loads(b) for b in bodies if json.loads(b).get("kind") == "contact-changed"]
    assert sorted(notice["params"]["channel"] for notice in notices) == ["email", "mobile"]
    assert all("told" not in notice["params"] for notice in notices)


def test_a_contact_added_beside_one_replaced_is_told_too(driver: LetterDriver) -> None:
    """One who replaces the mobile and adds an e-mail address of their own, in one request: the old mobile
    is told of both, not of the first alone."""
    user = enrolled(driver)
    with queued_messages() as bodies:
        change = {"mobile": "987 65 437", "email": "not.kari@example.no"}
        assert user.call("PUT", "/v1/me/contact", change, user.login()).status == 202
    told = sorted(
        (n["kind"], n["params"]["channel"])
        for b in bodies
        if (n := json.loads(b)).get("kind", "").startswith("contact-")
    )
    assert told == [("contact-added", "email"), ("contact-changed", "mobile")]


def test_a_new_email_likewise(driver: LetterDriver) -> None:
    user = enrolled(driver, email="old@example.no")
    token = user.login()
    assert user.call("PUT", "/v1/me/contact", {"email": "new@example.no"}, token).status == 202
    code = user.enrolling.last_code_to("new@example.no")
    verified = user.call("POST", "/v1/me/contact/verify", {"channel": "email", "code": code}, token)
    assert body(verified)["email"] == "new@example.no"
    wait_for(
        driver.local.outbox.emails,
        lambda mails: any(m["to"] == "old@example.no" and "endret" in m["subject"] for m in mails),
    )
    # the same mailbox, written with capitals (a form's, say): no change, no code, no notice
    driver.notices_delivered()
    mails = len(driver.local.outbox.emails())
    same = user.call("PUT", "/v1/me/contact", {"email": "New@Example.NO"}, token)
    assert (same.status, body(same)) == (202, {"verification_sent_to": []})
    driver.notices_delivered()
    assert len(driver.local.outbox.emails()) == mails
    assert body(user.call("GET", "/v1/me/contact", token=token))["email"] == "new@example.no"


def test_a_contact_added_where_there_was_none_is_told_to_the_other(driver: LetterDriver) -> None:
    """One who takes over a session adds a mobile of their own (logins' codes go there next): the person
    hears of it on the contact they have."""
    by_mail = enrolled(driver, mobile=None, email="only.mail@example.no")
    assert by_mail.call("PUT", "/v1/me/contact", {"mobile": "47 11 22 33"}, by_mail.login()).status == 202
    told = wait_for(
        driver.local.outbox.emails,
        lambda mails: [m for m in mails if m["to"] == "only.mail@example.no" and "lagt til" in m["subject"]],
    )
    subjects = [m["subject"] for m in told if m["to"] == "only.mail@example.no"]
    assert subjects[-1] == "MinID: Et mobilnummer blir lagt til"

    by_sms = enrolled(driver, mobile="47112234")
    assert by_sms.call("PUT", "/v1/me/contact", {"email": "new.mail@example.no"}, by_sms.login()).status == 202
    texts = wait_for(lambda: sms_to(driver, "+4747112234"), lambda texts: any("lagt til" in t for t in texts))
    assert any("En e-postadresse blir lagt til" in t for t in texts)


def test_a_contact_replaced_is_told_to_the_other_contact_too(driver: LetterDriver) -> None:
    """One who has the phone (stolen, or its SIM swapped) and the password replaces the mobile with their
    own: the old number is told, which its owner may no longer have; so is the e-mail address, the contact
    the person still holds."""
    user = enrolled(driver, email="kari.other@example.no")
    assert user.call("PUT", "/v1/me/contact", {"mobile": "987 65 434"}, user.login()).status == 202
    told = wait_for(
        driver.local.outbox.emails,
        lambda mails: [m for m in mails if m["to"] == "kari.other@example.no" and "endret" in m["subject"]],
    )
    assert told[-1]["subject"] == "MinID: Mobilnummeret ditt blir endret"
    assert "Mobilnummeret i kontaktregisteret blir endret til et nytt, med MinID-en din." in told[-1]["body"]
    texts = wait_for(lambda: sms_to(driver, "+4791234567"), lambda texts: any("blir endret" in t for t in texts))
    assert any("blir endret fra dette til et nytt" in t for t in texts)  # the old number: "from this one"


def test_the_contacts_of_a_stale_record_are_not_told_of_a_change(driver: LetterDriver) -> None:
    """Stale contacts are not used for notices (API.md): after 18 months unconfirmed, the old number may
    be someone else's, who would learn that this person is changing theirs."""
    user = enrolled(driver, email="old.mail@example.no")
    token = user.login()
    person = driver.key(user.identity_number)
    record = register(driver).find(person)
    assert record is not None
    long_ago = datetime.now(UTC) - STALE_AFTER - timedelta(days=30)
    aged = replace(record, updated_at=long_ago, confirmed_at=None)
    assert aged.stale(datetime.now(UTC))
    driver.dynamodb.put_item(TableName=driver.local.stack.refs["ContactRegisterTable"], Item=contact_item(person, aged))

    assert user.call("PUT", "/v1/me/contact", {"mobile": "987 65 433"}, token).status == 202
    assert code_in(sms_to(driver, "+4798765433"))  # the new number's code: sent at once
    both = {"mobile": "987 65 433", "email": "new.mail@example.no"}  # the mobile's change waits: named again
    assert user.call("PUT", "/v1/me/contact", both, token).status == 202
    driver.notices_delivered()
    assert not [t for t in sms_to(driver, "+4791234567") if "blir endret" in t]
    assert not [
        m for m in driver.local.outbox.emails() if m["to"] == "old.mail@example.no" and "endret" in m["subject"]
    ]


def test_an_address_at_an_internationalised_domain_gets_its_code_there(driver: LetterDriver) -> None:
    user = enrolled(driver, email="old@example.no")
    token = user.login()
    assert user.call("PUT", "/v1/me/contact", {"email": "kari@blåbær.no"}, token).status == 202
    code = user.enrolling.last_code_to("kari@xn--blbr-roah.no")  # SES takes the domain in ASCII only
    verified = user.call("POST", "/v1/me/contact/verify", {"channel": "email", "code": code}, token)
    assert body(verified)["email"] == "kari@blåbær.no"  # shown as written


def test_an_address_that_cannot_be_sent_to_is_refused_and_nothing_is_sent(driver: LetterDriver) -> None:
    user = enrolled(driver, email="old@example.no")
    token = user.login()
    sent = len(driver.local.outbox.emails())
    refused = user.call("PUT", "/v1/me/contact", {"email": "åse@example.no"}, token)
    assert (refused.status, body(refused)["type"]) == (422, "/problems/invalid-contact")
    assert body(refused)["errors"][0]["field"] == "email"
    assert len(driver.local.outbox.emails()) == sent


def test_codes_to_new_contacts_are_limited_per_person(driver: LetterDriver) -> None:
    """Each change sends a code to a number of the person's choosing: ten an hour, then 429 and none sent."""
    user = enrolled(driver)
    token = user.login()
    for number in range(CODES_TO_PERSON_PER_HOUR):
        assert user.call("PUT", "/v1/me/contact", {"mobile": f"+47 4100 {number:04d}"}, token).status == 202
    person = driver.key(user.identity_number)
    assert counted_hits(driver, "contact-codes", person, 3600) == CODES_TO_PERSON_PER_HOUR  # each counted
    fill_counters(driver, "contact-codes", person, 3600, CODES_TO_PERSON_PER_HOUR)
    driver.notices_delivered()  # the old mobile told of each change
    sent = len(driver.local.outbox.sms())
    refused = user.call("PUT", "/v1/me/contact", {"mobile": "+47 41009999"}, token)
    assert (refused.status, body(refused)["type"]) == (429, "/problems/rate-limited")
    assert body(refused)["detail"] == "Too many codes have been sent to this person this hour."
    assert 0 < int(refused.header("retry-after") or 0) <= 3600
    assert not sms_to(driver, "+4741009999")
    driver.notices_delivered()
    assert len(driver.local.outbox.sms()) == sent  # nor the old mobile told of a change not made
    assert user.call("PUT", "/v1/me/contact", {"language": "en"}, token).status == 202  # no code: not limited


def waiting_for_its_code(driver: LetterDriver, mobile: str) -> tuple[User, MovableClock, Session, str]:
    """A person whose change to `mobile` waits for its code, past the resends' own 30 seconds: the person,
    the clock, a session of theirs and the code sent."""
    user = enrolled(driver)
    clock = MovableClock()
    services = wiring.contact(os.environ, clock=clock)
    services.contacts.change(services.sessions.authenticate(user.login()), mobile=mobile)
    held = code_in(sms_to(driver, mobile))
    clock.advance(timedelta(seconds=31))
    return user, clock, services.sessions.authenticate(user.login()), held


def held_works(driver: LetterDriver, user: User, mobile: str, held: str) -> None:
    """No other code was sent to `mobile`, and the one held verifies it."""
    assert code_in(sms_to(driver, mobile)) == held
    verified = user.call("POST", "/v1/me/contact/verify", {"channel": "mobile", "code": held}, user.login())
    assert (verified.status, body(verified)["mobile"]) == (200, mobile)


@pytest.mark.parametrize("out_at", ["the codes' write", "the sending"])
def test_a_resend_out_of_time_leaves_the_code_the_person_holds_working(driver: LetterDriver, out_at: str) -> None:
    """Time runs out before the resend's codes are written (they are written under the deadline: nothing
    is), or before they are sent (the codes sent before are given back whatever the time): either way the
    code the person holds still verifies, and nothing new was sent."""
    user, clock, session, held = waiting_for_its_code(driver, "+4741007001")
    late = contextlib.ExitStack()
    run_out = lambda: late.enter_context(deadline.within(LambdaContext("ContactFunction", 512, 0)))  # noqa: E731
    resending = lambda params: "resends = :after" in params.get("UpdateExpression", "")  # noqa: E731
    counted = lambda params: "contact-codes" in json.dumps(params.get("Key"))  # noqa: E731  (the person's codes)
    with deadline.within(LambdaContext("ContactFunction", 512, 60)), late:
        if out_at == "the sending":
            running_out = before_first_aws_call("sns.Publish", run_out)
        else:  # just after the codes are counted, before they are written
            running_out = before_first_aws_call("dynamodb.UpdateItem", lambda: None, where=counted, after=run_out)
        with running_out, calls_made("dynamodb.UpdateItem", resending) as codes_written, pytest.raises(OutOfTime):
            wiring.contact(os.environ, clock=clock).contacts.resend(session)
    # written and given back, or (out before it) not written at all: the give-back finds none to give back
    assert codes_written == (["made", "made"] if out_at == "the sending" else ["ConditionalCheckFailedException"])
    held_works(driver, user, "+4741007001", held)


def test_a_resend_to_a_number_refused_is_told_so_though_its_codes_cannot_be_given_back(driver: LetterDriver) -> None:
    """SNS refuses the new number for good (Undeliverable: 422, to give another), and the give-back of the
    code sent before fails too (DynamoDB, a moment): the refusal is what is raised, not the give-back's
    error (a 503 that would have the person try the number again)."""
    _, clock, session, _ = waiting_for_its_code(driver, "+4741007004")
    refused = "Invalid parameter: PhoneNumber Reason: +4741007004 is not valid to publish to"
    giving_back = lambda params: ":written" in params.get("ExpressionAttributeValues", {})  # noqa: E731
    with injected_faults() as faults:
        faults.add("sns", "Publish", code="InvalidParameter", status=400, message=refused, here=True)
        faults.add("dynamodb", "UpdateItem", code="ServiceUnavailable", status=503, here=True, where=giving_back)
        with pytest.raises(Undeliverable) as raised:
            wiring.contact(os.environ, clock=clock).contacts.resend(session)
        assert [fault[:2] for fault in faults.injected] == [("sns", "Publish"), ("dynamodb", "UpdateItem")]
    assert raised.value.__notes__ == ["A resend's codes were not given back: ClientError"]


def test_a_resend_whose_codes_write_answer_was_lost_leaves_the_code_held_working(driver: LetterDriver) -> None:
    """The resend's codes written, and the answer lost with no retry in time: the codes are given back
    (they will never be sent), and the code the person holds still verifies."""
    user, clock, session, held = waiting_for_its_code(driver, "+4741007002")
    resending = lambda params: "list_append" in params.get("UpdateExpression", "")  # noqa: E731  (not the give-back)
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", after="lost", here=True, where=resending)
        with pytest.raises(ReadTimeoutError):
            wiring.contact(os.environ, clock=clock).contacts.resend(session)
        assert [fault[2] for fault in faults.injected] == ["lost"]
    held_works(driver, user, "+4741007002", held)


@pytest.mark.parametrize("drawn", ["another code", "the same code"])
def test_a_resend_s_give_back_leaves_another_resend_made_meanwhile(driver: LetterDriver, drawn: str) -> None:
    """Two resends at once (two tabs): the first's codes written and sent while the second is on its way;
    the second's write then fails before it lands. Its give-back holds only on its own codes, written at
    its own time: the first's, which the person was just sent, stay, and verify; though the first drew the
    same code (one in a million), told apart by their time."""
    mobile = "+4741007003" if drawn == "another code" else "+4741007008"
    user, clock, session, held = waiting_for_its_code(driver, mobile)
    random = CodesAlike(515151) if drawn == "the same code" else None
    first = wiring.contact(os.environ, clock=clock, random=random)  # made before the hook below: not watched

    def meanwhile() -> None:  # on a thread of its own, a moment later: the fault below is the second's alone
        clock.advance(timedelta(milliseconds=5))
        other = threading.Thread(target=first.contacts.resend, args=(session,))
        other.start()
        other.join()

    counted = lambda params: "contact-codes" in json.dumps(params.get("Key"))  # noqa: E731  (the person's codes)
    resending = lambda params: "list_append" in params.get("UpdateExpression", "")  # noqa: E731  (not the give-back)

    def giving_back(params: dict[str, Any]) -> bool:  # the codes sent before, back in place of the second's
        expression = params.get("UpdateExpression", "")
        return "SET codes = :codes" in expression and "list_append" not in expression

    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", here=True, where=resending)  # the second's write, not landed
        with (
            before_first_aws_call("dynamodb.UpdateItem", lambda: None, where=counted, after=meanwhile),
            calls_made("dynamodb.UpdateItem", giving_back) as given_back,
            pytest.raises(ClientError),
        ):
            wiring.contact(os.environ, clock=clock, random=random).contacts.resend(session)
        assert [fault[2] for fault in faults.injected] == ["ServiceUnavailable"]
    assert given_back == ["ConditionalCheckFailedException"]  # tried, and refused: the codes are the first's
    newest = code_in(sms_to(driver, mobile))
    assert newest != held
    assert random is None or newest == "515151"
    verified = user.call("POST", "/v1/me/contact/verify", {"channel": "mobile", "code": newest}, user.login())
    assert (verified.status, body(verified)["mobile"]) == (200, mobile)


@pytest.mark.parametrize("send", ["throttled", "refused"])
def test_a_change_whose_code_cannot_be_sent_queues_no_notice(driver: LetterDriver, send: str) -> None:
    """A notice queued for a change never written waits for its proof, and is dropped and counted unproven
    (an alarm past a few an hour): a change whose code could not be sent, its count given back and so asked
    again without end, queues none. Its notices are queued once the code is out."""
    user = enrolled(driver, email="kari.queued@example.no")
    services = wiring.contact(os.environ)
    session = services.sessions.authenticate(user.login())
    refused = "Invalid parameter: PhoneNumber Reason: +4741007100 is not valid to publish to"
    with queued_messages() as bodies, injected_faults() as faults:
        if send == "refused":
            faults.add("sns", "Publish", code="InvalidParameter", status=400, message=refused, here=True)
        else:
            faults.add("sns", "Publish", code="Throttling", status=400, here=True)
        with pytest.raises(Undeliverable if send == "refused" else ClientError):
            services.contacts.change(session, mobile="+47 4100 7100")
    assert bodies == []
    with queued_messages() as bodies:
        assert services.contacts.change(session, mobile="+47 4100 7100") == (Channel.SMS,)
    assert len(bodies) == 2  # the old mobile told, and the e-mail


def test_resent_codes_count_as_codes_to_the_person(driver: LetterDriver) -> None:
    """Each resend sends codes to the numbers the change named: counted as the change's own were, or ten
    changes an hour would send some eighty codes to numbers of the caller's choosing (SMS pumping)."""
    user = enrolled(driver)
    clock = MovableClock()
    services = wiring.contact(os.environ, clock=clock)
    services.contacts.change(services.sessions.authenticate(user.login()), mobile="+47 4100 7000")
    person = driver.key(user.identity_number)
    assert counted_hits(driver, "contact-codes", person, 3600) == 1
    fill_counters(driver, "contact-codes", person, 3600, CODES_TO_PERSON_PER_HOUR)
    sent = len(sms_to(driver, "+4741007000"))
    clock.advance(timedelta(seconds=31))  # past the resends' own 30 seconds
    with pytest.raises(RateLimited):
        services.contacts.resend(services.sessions.authenticate(user.login()))
    assert len(sms_to(driver, "+4741007000")) == sent


def test_codes_that_could_not_be_sent_take_no_place_among_the_person_s_ten(driver: LetterDriver) -> None:
    """SNS throttled, nothing sent: the change (or the resend) fails, and the person's ten codes an hour are
    as they were, or a short outage would shut them out for the hour. A code whose answer never came (it
    may have gone) is counted."""
    user = enrolled(driver)
    clock = MovableClock()
    services = wiring.contact(os.environ, clock=clock)
    person = driver.key(user.identity_number)
    session = services.sessions.authenticate(user.login())  # (its own SMS sent before the faults)
    with injected_faults() as faults:
        faults.add("sns", "Publish", code="Throttling", status=400, here=True)
        with pytest.raises(ClientError):
            services.contacts.change(session, mobile="+47 4100 7100")
    assert counted_hits(driver, "contact-codes", person, 3600) == 0
    services.contacts.change(session, mobile="+47 4100 7100")
    assert counted_hits(driver, "contact-codes", person, 3600) == 1
    clock.advance(timedelta(seconds=31))
    session = services.sessions.authenticate(user.login())
    with injected_faults() as faults:
        faults.add("sns", "Publish", code="Throttling", status=400, here=True)
        with pytest.raises(ClientError):
            services.contacts.resend(session)
    assert counted_hits(driver, "contact-codes", person, 3600) == 1
    with injected_faults() as faults:
        faults.add("sns", "Publish", after="lost", here=True)
        with pytest.raises(MaybeSent):
            services.contacts.resend(session)
    assert counted_hits(driver, "contact-codes", person, 3600) == 2


def test_no_code_is_resent_for_a_change_whose_tries_are_used_up(driver: LetterDriver) -> None:
    user = enrolled(driver)
    clock = MovableClock()
    services = wiring.contact(os.environ, clock=clock)
    services.contacts.change(services.sessions.authenticate(user.login()), mobile="987 65 431")
    right = code_in(sms_to(driver, "+4798765431"))
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            services.contacts.verify(services.sessions.authenticate(user.login()), Channel.SMS, wrong)
    sent = len(sms_to(driver, "+4798765431"))
    clock.advance(timedelta(seconds=31))
    with pytest.raises(Conflict):
        services.contacts.resend(services.sessions.authenticate(user.login()))
    assert len(sms_to(driver, "+4798765431")) == sent  # codes that could never work: none sent


@pytest.mark.parametrize("stored_before_ids", [False, True])
def test_a_resend_whose_e_mail_fails_keeps_the_sms_code_it_sent(driver: LetterDriver, stored_before_ids: bool) -> None:
    """The SMS went out, then SES refused the e-mail: a 503, and the new SMS code works (it was given back
    with the e-mail's, so the code the person had just been sent was wrong); the e-mail's code sent
    before still holds. So too for a change stored before changes had ids (found by its codes' sending)."""
    user = enrolled(driver)
    clock = MovableClock()
    services = wiring.contact(os.environ, clock=clock)
    services.contacts.change(services.sessions.authenticate(user.login()), mobile="987 65 434", email="ny@example.no")
    if stored_before_ids:
        stored_before_changes_had_ids(driver, user)
    first_email = user.enrolling.last_code_to("ny@example.no")
    first_sms = code_in(sms_to(driver, "+4798765434"))
    clock.advance(timedelta(seconds=31))
    with injected_faults() as faults:
        faults.add("sesv2", "SendEmail", code="TooManyRequestsException", status=429, times=10)
        with pytest.raises(ClientError):
            services.contacts.resend(services.sessions.authenticate(user.login()))
    resent_sms = code_in(sms_to(driver, "+4798765434"))
    assert resent_sms != first_sms
    session = services.sessions.authenticate(user.login())
    assert services.contacts.verify(session, Channel.SMS, resent_sms).mobile == "+4798765434"
    assert services.contacts.verify(session, Channel.EMAIL, first_email).email == "ny@example.no"


def test_a_resend_whose_sms_answer_never_came_keeps_the_code_it_may_have_sent(driver: LetterDriver) -> None:
    """SNS timed out (the SMS may have come): the resend stands, with its new codes (given back, the SMS
    that came would hold a wrong code), and the e-mail is sent its own all the same (else its code from
    before, replaced, would be wrong, and no new one would come)."""
    user = enrolled(driver)
    clock = MovableClock()
    services = wiring.contact(os.environ, clock=clock)
    services.contacts.change(services.sessions.authenticate(user.login()), mobile="987 65 443", email="ny2@example.no")
    first_email = user.enrolling.last_code_to("ny2@example.no")
    clock.advance(timedelta(seconds=31))
    session = services.sessions.authenticate(user.login())
    with injected_faults() as faults:
        faults.add("sns", "Publish", after="lost", here=True)  # the resend's, not a notice's meanwhile
        with pytest.raises(MaybeSent):
            services.contacts.resend(session)
    assert services.contacts.verify(session, Channel.SMS, code_in(sms_to(driver, "+4798765443"))).mobile
    resent_email = user.enrolling.last_code_to("ny2@example.no")
    assert resent_email != first_email
    assert services.contacts.verify(session, Channel.EMAIL, resent_email).email == "ny2@example.no"


def test_wrong_and_exhausted_codes(driver: LetterDriver) -> None:
    user = enrolled(driver)
    token = user.login()
    user.call("PUT", "/v1/me/contact", {"mobile": "987 65 432"}, token)
    right = code_in(sms_to(driver, "+4798765432"))
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(3):
        answer = user.call("POST", "/v1/me/contact/verify", {"channel": "mobile", "code": wrong}, token)
        assert answer.status == 401
    assert user.call("POST", "/v1/me/contact/verify", {"channel": "mobile", "code": right}, token).status == 401
    nothing = user.call("POST", "/v1/me/contact/verify", {"channel": "email", "code": right}, token)
    assert (nothing.status, body(nothing)["type"]) == (409, "/problems/conflict")


def test_a_right_code_costs_the_other_channel_no_try(driver: LetterDriver) -> None:
    """A change of both has three tries for the two codes: the right one for the mobile leaves the e-mail
    all three wrong ones would have had (two wrong ones, then the right one, was a 401)."""
    user = enrolled(driver)
    token = user.login()
    change = {"mobile": "987 65 432", "email": "ny@example.no"}
    assert user.call("PUT", "/v1/me/contact", change, token).status == 202
    mobile = {"channel": "mobile", "code": code_in(sms_to(driver, "+4798765432"))}
    assert user.call("POST", "/v1/me/contact/verify", mobile, token).status == 200
    right = user.enrolling.last_code_to("ny@example.no")
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(2):
        assert user.call("POST", "/v1/me/contact/verify", {"channel": "email", "code": wrong}, token).status == 401
    verified = user.call("POST", "/v1/me/contact/verify", {"channel": "email", "code": right}, token)
    assert verified.status == 200, body(verified)
    assert body(verified)["email"] == "ny@example.no"


def test_a_change_of_the_e_mail_is_refused_while_a_change_of_the_mobile_waits_for_its_code(
    driver: LetterDriver,
) -> None:
    """One form for the mobile, then one for the e-mail, before the SMS code is typed: the e-mail's change
    would replace the mobile's unseen. It is refused (409, saying why), nothing sent, and the mobile's change
    still waits; named again with it, or once the mobile is verified, the e-mail's change is made."""
    user = enrolled(driver)
    token = user.login()
    assert user.call("PUT", "/v1/me/contact", {"mobile": "987 65 432"}, token).status == 202
    sms_code = code_in(sms_to(driver, "+4798765432"))
    refused = user.call("PUT", "/v1/me/contact", {"email": "ny@example.no"}, token)
    assert (refused.status, body(refused)["type"]) == (409, "/problems/conflict")
    assert "mobile number is waiting for its code" in body(refused)["detail"]
    assert not [m for m in driver.local.outbox.emails() if "ny@example.no" in m["to"]]
    mobile = user.call("POST", "/v1/me/contact/verify", {"channel": "mobile", "code": sms_code}, token)
    assert mobile.status == 200, body(mobile)
    assert body(user.call("PUT", "/v1/me/contact", {"email": "ny@example.no"}, token)) == {
        "verification_sent_to": ["email"]
    }
    # named again with it: both sent anew
    both = {"mobile": "987 65 433", "email": "nyere@example.no"}
    assert user.call("PUT", "/v1/me/contact", {"mobile": "987 65 433"}, token).status == 409  # the e-mail waits
    assert body(user.call("PUT", "/v1/me/contact", both, token)) == {"verification_sent_to": ["mobile", "email"]}


def test_a_change_of_the_e_mail_made_as_one_of_the_mobile_is_made_in_another_tab_drops_neither(
    driver: LetterDriver,
) -> None:
    """Two tabs at once: the e-mail's change read no change waiting, and the mobile's was made before its
    write. Its write does not hold (409), and the mobile's change still waits for its code."""
    user = enrolled(driver)
    token = user.login()

    def other_tab() -> None:
        assert user.call("PUT", "/v1/me/contact", {"mobile": "987 65 432"}, token).status == 202

    with before_first_aws_call("dynamodb.TransactWriteItems", other_tab):
        services = wiring.contact(os.environ)  # its clients made here, where the race is made
        session = services.sessions.authenticate(token)
        with pytest.raises(Conflict):
            services.contacts.change(session, email="ny@example.no")
    waiting = pending_changes(driver).get(driver.key(user.identity_number))
    assert waiting is not None
    assert set(waiting.values) == {Channel.SMS}
    verify = {"channel": "mobile", "code": code_in(sms_to(driver, "+4798765432"))}
    assert user.call("POST", "/v1/me/contact/verify", verify, token).status == 200


def test_a_change_whose_tries_are_used_up_does_not_hold_up_another(driver: LetterDriver) -> None:
    user = enrolled(driver)
    token = user.login()
    assert user.call("PUT", "/v1/me/contact", {"mobile": "987 65 432"}, token).status == 202
    wrong = {"channel": "mobile", "code": f"{(int(code_in(sms_to(driver, '+4798765432'))) + 1) % 1_000_000:06d}"}
    for _ in range(3):
        assert user.call("POST", "/v1/me/contact/verify", wrong, token).status == 401
    assert user.call("PUT", "/v1/me/contact", {"email": "ny@example.no"}, token).status == 202


def test_a_verification_is_written_whole_or_not_at_all(driver: LetterDriver) -> None:
    """The register, the settled change and the event go in one transaction: when the change was replaced
    between the code's check and the write, nothing of it is written."""
    user = enrolled(driver)
    token = user.login()
    user.call("PUT", "/v1/me/contact", {"mobile": "987 65 432"}, token)
    code = code_in(sms_to(driver, "+4798765432"))
    verify = {"channel": "mobile", "code": code}
    with injected_faults() as faults:
        faults.add(
            "dynamodb",
            "TransactWriteItems",
            code="TransactionCanceledException",
            status=400,
            reasons=("None", "ConditionalCheckFailed", "None"),
        )
        replaced = user.call("POST", "/v1/me/contact/verify", verify, token)
        assert [fault[1] for fault in faults.injected] == ["TransactWriteItems"]
    assert (replaced.status, body(replaced)["type"]) == (409, "/problems/conflict")
    assert body(user.call("GET", "/v1/me/contact", token=token))["mobile"] == "+4791234567"
    kinds = [e["type"] for e in body(user.call("GET", "/v1/me/events", token=token))["events"]]
    assert "contact-changed" not in kinds
    assert user.call("POST", "/v1/me/contact/verify", verify, token).status == 200  # the change is still there
    kinds = [e["type"] for e in body(user.call("GET", "/v1/me/events", token=token))["events"]]
    assert kinds.count("contact-changed") == 1


def test_a_verification_lands_on_no_record_a_re_enrolment_made_meanwhile(driver: LetterDriver) -> None:
    """A session authenticated, then a re-enrolment committed (every session ended, a new record) before
    the verification's write: the change was the old session's, and is not written over the new record
    (a 401, as for any session that has ended)."""
    user = enrolled(driver)
    person = driver.key(user.identity_number)
    re_enrolling = user.enrolling
    age_ledger(driver, user.identity_number, timedelta(days=2))
    _, re_enrolling.codes = posted(driver, user.identity_number)
    re_enrolling.start()
    assert re_enrolling.complete(mobile="92222222").status == 202
    refs = driver.local.stack.refs
    token = user.login()

    def re_enrolment() -> None:
        assert re_enrolling.verify(mobile_code=re_enrolling.last_code_to("+4792222222")).status == 201

    def verification(params: dict[str, Any]) -> bool:  # the register updated, holding the account's epoch
        tables = {(kind, item["TableName"]) for entry in params["TransactItems"] for kind, item in entry.items()}
        return {("Update", refs["ContactRegisterTable"]), ("ConditionCheck", refs["UsersTable"])} <= tables

    with before_first_aws_call("dynamodb.TransactWriteItems", re_enrolment, where=verification) as outcomes:
        services = wiring.contact(os.environ)  # its clients made here, where the race is made
        session = services.sessions.authenticate(token)
        services.contacts.change(session, mobile="987 65 432")
        with pytest.raises(Unauthenticated):
            services.contacts.verify(session, Channel.SMS, code_in(sms_to(driver, "+4798765432")))
    assert outcomes == ["TransactionCanceledException"]
    record = register(driver).find(person)
    assert record is not None
    assert record.mobile == "+4792222222"  # the re-enrolment's
    kinds = [e.type.value for e in security_events(driver).page(person, None, 100).events]
    assert "contact-changed" not in kinds


def test_a_change_asked_for_in_sessions_ended_since_is_verified_by_no_later_one(driver: LetterDriver) -> None:
    """One who took a session over asks for their own mobile; the owner, told so, changes the password
    (every session ended). The change still waits (its code's ten minutes), but for no session of the
    owner's since: its code verifies nothing in one (a session of over 15 minutes, which could not ask for a
    change itself, say), it is not resent, and it holds up no change the owner makes."""
    user = enrolled(driver, email="kari.owner@example.no")
    person = driver.key(user.identity_number)
    taken_over = user.login()
    asked = user.call("PUT", "/v1/me/contact", {"mobile": "987 65 400"}, taken_over)
    assert asked.status == 202
    code = code_in(sms_to(driver, "+4798765400"))
    changed = {"current_password": user.password, "new_password": "ei heilt ny frase no"}
    assert user.call("PUT", "/v1/me/password", changed, token=user.login()).status == 204
    user.password = changed["new_password"]
    owner = user.login()
    verified = user.call("POST", "/v1/me/contact/verify", {"channel": "mobile", "code": code}, owner)
    assert (verified.status, body(verified)["detail"]) == (409, NOT_WAITING)
    assert user.call("POST", "/v1/me/contact/resend", None, owner).status == 409
    assert len(sms_to(driver, "+4798765400")) == 1
    record = register(driver).find(person)
    assert record is not None
    assert record.mobile == "+4791234567"
    pending = pending_changes(driver).get(person)
    assert pending is not None
    assert pending.tries == 0  # the try given back: the change ended, no code of it was judged
    driver.dynamodb.update_item(  # its tries used up (by the one who asked for it, say): told as none waiting too
        TableName=driver.local.stack.refs["ChallengesTable"],
        Key=to_item({"pk": f"contact-change#{person}"}),
        UpdateExpression="SET tries = :used",
        ExpressionAttributeValues={":used": {"N": str(MAX_CODE_TRIES)}},
    )
    used_up = user.call("POST", "/v1/me/contact/verify", {"channel": "mobile", "code": code}, owner)
    assert (used_up.status, body(used_up)["detail"]) == (409, NOT_WAITING)
    # not waiting: the owner's change of the e-mail is not refused for it, and replaces it
    assert user.call("PUT", "/v1/me/contact", {"email": "kari.new@example.no"}, owner).status == 202
    new_code = code_in([m["body"] for m in driver.local.outbox.emails() if m["to"] == "kari.new@example.no"])
    verified = user.call("POST", "/v1/me/contact/verify", {"channel": "email", "code": new_code}, owner)
    assert verified.status == 200
    assert body(verified)["mobile"] == "+4791234567"


def contact_changed_events(driver: LetterDriver, person: PersonKey) -> int:
    events = security_events(driver).page(person, None, 100).events
    return [e.type for e in events].count(SecurityEventType.CONTACT_CHANGED)


def test_a_verification_retried_after_its_answer_was_lost_is_answered_as_it_was(driver: LetterDriver) -> None:
    """The transaction was made and its answer lost (a 503 to the client): the retry with the same code
    gets the contact as verified, and nothing is written twice. Another code, or the same one after the
    codes' ten minutes, is told that no change waits."""
    user = enrolled(driver)
    token = user.login()
    person = driver.key(user.identity_number)
    user.call("PUT", "/v1/me/contact", {"mobile": "987 65 432"}, token)
    right = code_in(sms_to(driver, "+4798765432"))
    verify = {"channel": "mobile", "code": right}
    with injected_faults() as faults:
        faults.add("dynamodb", "TransactWriteItems", after="lost")
        assert user.call("POST", "/v1/me/contact/verify", verify, token).status == 503
        assert faults.injected == [("dynamodb", "TransactWriteItems", "lost")]
    again = user.call("POST", "/v1/me/contact/verify", verify, token)
    assert (again.status, body(again)["mobile"]) == (200, "+4798765432")
    assert contact_changed_events(driver, person) == 1
    wrong = {"channel": "mobile", "code": f"{(int(right) + 1) % 1_000_000:06d}"}
    assert user.call("POST", "/v1/me/contact/verify", wrong, token).status == 409
    assert user.call("POST", "/v1/me/contact/verify", {"channel": "email", "code": right}, token).status == 409

    clock = MovableClock()
    services = wiring.contact(os.environ, clock=clock)
    session = services.sessions.authenticate(token)
    assert services.contacts.verify(session, Channel.SMS, right).mobile == "+4798765432"
    clock.advance(timedelta(minutes=11))  # the code's lifetime is over: so is its retry
    with pytest.raises(Conflict):
        services.contacts.verify(session, Channel.SMS, right)


def test_a_verification_retried_while_the_other_channel_waits_leaves_it_waiting(driver: LetterDriver) -> None:
    user = enrolled(driver)
    token = user.login()
    user.call("PUT", "/v1/me/contact", {"mobile": "987 65 433", "email": "ny@example.no"}, token)
    sms = {"channel": "mobile", "code": code_in(sms_to(driver, "+4798765433"))}
    assert user.call("POST", "/v1/me/contact/verify", sms, token).status == 200
    for _ in range(4):  # more than the tries: a retry counts none
        assert user.call("POST", "/v1/me/contact/verify", sms, token).status == 200
    email = {"channel": "email", "code": user.enrolling.last_code_to("ny@example.no")}
    verified = user.call("POST", "/v1/me/contact/verify", email, token)
    assert (verified.status, body(verified)["email"]) == (200, "ny@example.no")
    assert contact_changed_events(driver, driver.key(user.identity_number)) == 2


def test_a_verification_waits_out_a_transaction_writing_the_account(driver: LetterDriver) -> None:
    """A login on another device writes the account as the verification holds its epoch: DynamoDB cancels
    with TransactionConflict, which says nothing of the change. It is made again, not answered 409."""
    user = enrolled(driver)
    token = user.login()
    user.call("PUT", "/v1/me/contact", {"mobile": "987 65 435"}, token)
    verify = {"channel": "mobile", "code": code_in(sms_to(driver, "+4798765435"))}
    with injected_faults() as faults:
        reasons = ("None", "None", "TransactionConflict", "None")
        faults.add("dynamodb", "TransactWriteItems", code="TransactionCanceledException", status=400, reasons=reasons)
        verified = user.call("POST", "/v1/me/contact/verify", verify, token)
        assert len(faults.injected) == 1
    assert (verified.status, body(verified)["mobile"]) == (200, "+4798765435")


def test_a_write_that_never_gets_past_others_transactions_is_busy_not_changed_meanwhile(driver: LetterDriver) -> None:
    """Other transactions on the account at every one of the write's tries: nothing said the change no
    longer holds, so the answer is 503 for a retry (not 409 "changed meanwhile"), and the retry lands."""
    user = enrolled(driver)
    token = user.login()
    conflict = ("None", "None", "TransactionConflict", "None")
    with injected_faults() as faults:
        faults.add("dynamodb", "TransactWriteItems", code="TransactionCanceledException", reasons=conflict, times=5)
        changed = user.call("PUT", "/v1/me/contact", {"mobile": "987 65 435"}, token)
        assert len(faults.injected) == 5
    assert (changed.status, int(changed.header("retry-after") or 0) > 0) == (503, True), body(changed)
    assert user.call("PUT", "/v1/me/contact", {"mobile": "987 65 435"}, token).status == 202
    verify = {"channel": "mobile", "code": code_in(sms_to(driver, "+4798765435"))}
    with injected_faults() as faults:
        faults.add("dynamodb", "TransactWriteItems", code="TransactionCanceledException", reasons=conflict, times=5)
        verified = user.call("POST", "/v1/me/contact/verify", verify, token)
        assert len(faults.injected) == 5
    assert verified.status == 503, body(verified)
    verified = user.call("POST", "/v1/me/contact/verify", verify, token)
    assert (verified.status, body(verified)["mobile"]) == (200, "+4798765435")


def test_a_login_s_sms_code_sent_to_a_number_replaced_since_does_not_complete_it(driver: LetterDriver) -> None:
    """Someone with the password and the person's old phone begins a login; the person, seeing the code
    come, replaces the number before it is typed: the code no longer completes that login (as no resend
    goes to the old number), and the login has ended."""
    user = enrolled(driver, mobile="91234576")
    token = user.login()
    taken = body(user.start_login())  # by the one holding the old phone
    code = user.last_sms_code()
    assert user.call("PUT", "/v1/me/contact", {"mobile": "987 65 436"}, token).status == 202
    verify = {"channel": "mobile", "code": code_in(sms_to(driver, "+4798765436"))}
    assert user.call("POST", "/v1/me/contact/verify", verify, token).status == 200
    refused = user.verify(taken["login_id"], code)
    assert (refused.status, body(refused)["detail"]) == (401, "The login has ended. Log in again.")
    resent = user.call("POST", f"/v1/login/{taken['login_id']}/resend")
    assert (resent.status, body(resent)["detail"]) == (401, "The login has ended. Log in again.")
    users = driver.local.stack.refs["UsersTable"]
    kept = driver.dynamodb.get_item(TableName=users, Key={"pk": {"S": driver.key(user.identity_number)}})["Item"]
    assert int(kept.get("failed_logins", {"N": "0"})["N"]) == 0  # no guess: no failure towards the lock
    user.mobile = "+4798765436"
    user.login()  # on the new number, as ever


def test_a_reset_s_code_sent_to_a_number_replaced_since_does_not_complete_it(driver: LetterDriver) -> None:
    """Someone with the letter and the person's old phone starts a reset; the person, logged in, replaces
    the number before the code is typed: the codes no longer set a password, and the reset has ended (the
    same right codes do not complete it later). A reset started after it goes to the new number."""
    user = enrolled(driver, mobile="91234577")
    token = user.login()
    reset = body(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}))
    code = user.last_sms_code()
    assert user.call("PUT", "/v1/me/contact", {"mobile": "987 65 437"}, token).status == 202
    verify = {"channel": "mobile", "code": code_in(sms_to(driver, "+4798765437"))}
    assert user.call("POST", "/v1/me/contact/verify", verify, token).status == 200
    complete = f"/v1/password-resets/{reset['reset_id']}/complete"
    taken = {"pin_code": user.codes[str(reset["pin_index"])], "code": code, "new_password": "en kaprers frase"}
    refused = user.call("POST", complete, taken)
    assert (refused.status, body(refused)["detail"]) == (
        401,
        "The PIN code was used or blocked meanwhile, the password or contact information was changed, "
        "or the code has expired. Start again.",
    )
    assert body(user.call("POST", complete, taken))["detail"] == "The reset has ended. Start again."
    assert user.start_login(password="en kaprers frase").status == 401
    assert reset["pin_index"] not in driver.only_letter(user.identity_number).used
    user.mobile = "+4798765437"
    again = body(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}))
    done = {"pin_code": user.codes[str(again["pin_index"])], "code": user.last_sms_code(), "new_password": "min frase"}
    assert user.call("POST", f"/v1/password-resets/{again['reset_id']}/complete", done).status == 204


def test_a_right_code_costs_no_try_when_the_change_cannot_be_written(driver: LetterDriver) -> None:
    user = enrolled(driver)
    token = user.login()
    user.call("PUT", "/v1/me/contact", {"mobile": "987 65 432"}, token)
    verify = {"channel": "mobile", "code": code_in(sms_to(driver, "+4798765432"))}
    for _ in range(4):  # more than the tries
        with injected_faults() as faults:
            faults.add("dynamodb", "TransactWriteItems", code="ProvisionedThroughputExceededException", status=400)
            assert user.call("POST", "/v1/me/contact/verify", verify, token).status == 503
    assert user.call("POST", "/v1/me/contact/verify", verify, token).status == 200


def test_a_resend_writes_no_codes_into_a_change_asked_for_meanwhile(driver: LetterDriver) -> None:
    """A resend reads the change, then writes the codes it sends to the change's values: when another tab
    asked for other values meanwhile, it writes nothing (else a code sent to the first number would
    verify the second)."""
    user = enrolled(driver)
    token = user.login()
    person = driver.key(user.identity_number)
    changes = pending_changes(driver)
    user.call("PUT", "/v1/me/contact", {"mobile": "987 65 432"}, token)
    first = changes.get(person)
    assert first is not None
    assert user.call("PUT", "/v1/me/contact", {"mobile": "976 54 321"}, token).status == 202  # meanwhile
    assert not changes.record_resend(first, {Channel.SMS: "resent"}, first.sent_at, (0, 1))
    second = changes.get(person)
    assert second is not None
    assert second.values == {Channel.SMS: "+4797654321"}
    assert second.code_hashes != {Channel.SMS: "resent"}
    assert changes.record_resend(second, {Channel.SMS: "resent"}, second.sent_at, (0, 1))  # as read: written


@pytest.mark.parametrize("meanwhile", ["verified", "replaced", "made again", "resent"])
def test_a_resend_whose_write_finds_the_change_not_as_read_says_why(driver: LetterDriver, meanwhile: str) -> None:
    """Between the resend's read of the change and its write, another tab verified the change (nothing
    waits for a code: 409, nothing sent), made another in its place, to another number or to the same
    (409, changed meanwhile, nothing sent, and the new change's code not overwritten), or resent its code
    (one was just sent: 429)."""
    user = enrolled(driver)
    token = user.login()
    assert user.call("PUT", "/v1/me/contact", {"mobile": "987 65 436"}, token).status == 202
    code = code_in(sms_to(driver, "+4798765436"))
    clock = MovableClock()
    clock.advance(timedelta(seconds=31))
    other = wiring.contact(os.environ, clock=clock)  # the other tab's: its clients made before the hook

    def other_tab() -> None:
        session = other.sessions.authenticate(token)
        if meanwhile == "verified":
            assert other.contacts.verify(session, Channel.SMS, code).mobile == "+4798765436"
        elif meanwhile == "replaced":
            other.contacts.change(session, mobile="987 65 437")
        elif meanwhile == "made again":
            other.contacts.change(session, mobile="987 65 436")  # a double submit, say
        else:
            assert other.contacts.resend(session) == (Channel.SMS,)

    def resend(params: dict[str, Any]) -> bool:
        return "SET codes = :codes" in params.get("UpdateExpression", "")

    sent_before = len(sms_to(driver, "+4798765436"))
    with before_first_aws_call("dynamodb.UpdateItem", other_tab, where=resend) as outcomes:
        services = wiring.contact(os.environ, clock=clock)
        with pytest.raises(RateLimited if meanwhile == "resent" else Conflict) as refused:
            services.contacts.resend(services.sessions.authenticate(token))
    assert outcomes == ["ConditionalCheckFailedException"]
    if meanwhile != "resent":
        told = "No change is waiting for a code." if meanwhile == "verified" else CHANGED_MEANWHILE
        assert refused.value.detail == told
    # the other tab's alone
    assert len(sms_to(driver, "+4798765436")) == sent_before + (meanwhile in ("resent", "made again"))
    if meanwhile == "made again":  # its code, the last SMS, verifies it
        made = code_in(sms_to(driver, "+4798765436"))
        assert other.contacts.verify(other.sessions.authenticate(token), Channel.SMS, made).mobile == "+4798765436"


def test_a_resend_overtaken_by_another_that_drew_the_same_code_is_told_to_wait(driver: LetterDriver) -> None:
    """Two resends a moment apart that drew the same code: the one whose write is refused reads the other's
    count and code, and must not take them for its own write, its answer lost (it would send the code a
    second time): they were written at another time. A 429, and one SMS."""
    user = enrolled(driver)
    token = user.login()
    assert user.call("PUT", "/v1/me/contact", {"mobile": "987 65 439"}, token).status == 202
    alike = CodesAlike(424242)
    other_clock, clock = MovableClock(), MovableClock()
    other_clock.advance(timedelta(seconds=31))
    clock.advance(timedelta(seconds=32))
    other = wiring.contact(os.environ, clock=other_clock, random=alike)  # its clients made before the hook

    def other_tab() -> None:
        assert other.contacts.resend(other.sessions.authenticate(token)) == (Channel.SMS,)

    def resending(params: dict[str, Any]) -> bool:
        return "SET codes = :codes" in params.get("UpdateExpression", "")

    sent = len(sms_to(driver, "+4798765439"))
    with before_first_aws_call("dynamodb.UpdateItem", other_tab, where=resending) as outcomes:
        services = wiring.contact(os.environ, clock=clock, random=alike)
        with pytest.raises(RateLimited):
            services.contacts.resend(services.sessions.authenticate(token))
    assert outcomes == ["ConditionalCheckFailedException"]
    assert len(sms_to(driver, "+4798765439")) == sent + 1
    assert code_in(sms_to(driver, "+4798765439")) == "424242"
    # the change's code and the other tab's: the one refused sent none, and its count is given back
    assert counted_hits(driver, "contact-codes", driver.key(user.identity_number), 3600) == 2
    assert services.contacts.verify(services.sessions.authenticate(token), Channel.SMS, "424242").mobile == (
        "+4798765439"
    )


def test_a_resend_whose_write_is_retried_after_its_answer_was_lost_sends_its_code(driver: LetterDriver) -> None:
    """The resend's codes written and DynamoDB's answer lost: the SDK's retry is refused (the write, made,
    moved the count on). That is the resend's own write, not another's: its code is sent, and works (not a
    429 with codes written that nobody received, the code the person held replaced)."""
    user = enrolled(driver)
    token = user.login()
    assert user.call("PUT", "/v1/me/contact", {"mobile": "987 65 438"}, token).status == 202
    clock = MovableClock()
    clock.advance(timedelta(seconds=31))
    services = wiring.contact(os.environ, clock=clock)
    sent = len(sms_to(driver, "+4798765438"))
    with injected_faults() as faults:
        resend = "SET codes = :codes"
        faults.add(
            "dynamodb", "UpdateItem", after="retried", here=True, where=lambda p: resend in p["UpdateExpression"]
        )
        assert services.contacts.resend(services.sessions.authenticate(token)) == (Channel.SMS,)
        assert faults.injected == [("dynamodb", "UpdateItem", "retried")]
    assert len(sms_to(driver, "+4798765438")) == sent + 1
    assert counted_hits(driver, "contact-codes", driver.key(user.identity_number), 3600) == 2  # sent: counted
    resent = code_in(sms_to(driver, "+4798765438"))
    assert services.contacts.verify(services.sessions.authenticate(token), Channel.SMS, resent).mobile == "+4798765438"


def verified_while_mobile_verified(
    user: User, token: str, mobile_code: str, channel: Channel, code: str
) -> tuple[list[str], ContactRecord]:
    """A verify of `channel` with `code`, the mobile verified with `mobile_code` by another request between
    its reads and its write: how its write went ("made", or AWS's error code), and what it answered."""

    def mobile_verified_meanwhile() -> None:
        verified = user.call("POST", "/v1/me/contact/verify", {"channel": "mobile", "code": mobile_code}, token)
        assert verified.status == 200

    settling = transaction_updating("REMOVE #values.#channel")
    with before_first_aws_call("dynamodb.TransactWriteItems", mobile_verified_meanwhile, where=settling) as outcomes:
        services = wiring.contact(os.environ)
        record = services.contacts.verify(services.sessions.authenticate(token), channel, code)
    return outcomes, record


@pytest.mark.parametrize("stored_before_ids", [False, True])
def test_a_verify_overtaken_by_a_resend_is_told_its_code_was_replaced(
    driver: LetterDriver, stored_before_ids: bool
) -> None:
    """The first code checked right, then a resend replaced it before the verify's write: answered as the
    same code a moment later would be (replaced, 401, its try given back), not 409 "no change is waiting"
    (the change still waits, and the new code verifies it). So too for a change stored before changes had
    ids (its try given back on the change as resent)."""
    user = enrolled(driver)
    clock = MovableClock()
    services = wiring.contact(os.environ, clock=clock)
    token = user.login()
    services.contacts.change(services.sessions.authenticate(token), mobile="987 65 442")
    if stored_before_ids:
        stored_before_changes_had_ids(driver, user)
    first = code_in(sms_to(driver, "+4798765442"))
    clock.advance(timedelta(seconds=31))  # past the resends' own 30 seconds

    def resent_meanwhile() -> None:
        services.contacts.resend(services.sessions.authenticate(token))

    verify_overtaken(clock, token, first, resent_meanwhile)
    assert pending_change(driver, user)["tries"] == {"N": "0"}
    resent = code_in(sms_to(driver, "+4798765442"))
    assert resent != first
    assert services.contacts.verify(services.sessions.authenticate(token), Channel.SMS, resent).mobile == "+4798765442"


def test_a_verify_overtaken_by_a_change_made_again_gives_no_try_back_to_the_new_change(driver: LetterDriver) -> None:
    """As above, but the same number asked again (a new change in place of the one read, with tries of its
    own, one wrong already): told its code was replaced, and the try it counted went with the old change;
    none is given back to the new one."""
    user = enrolled(driver)
    clock = MovableClock()
    services = wiring.contact(os.environ, clock=clock)
    token = user.login()
    services.contacts.change(services.sessions.authenticate(token), mobile="987 65 446")
    first = code_in(sms_to(driver, "+4798765446"))

    def made_again_meanwhile() -> None:
        clock.advance(timedelta(seconds=31))  # made anew: asked again at once, the codes sent would stand
        services.contacts.change(services.sessions.authenticate(token), mobile="987 65 446")
        with pytest.raises(AuthenticationFailed, match="The code is wrong or has expired"):
            services.contacts.verify(
                services.sessions.authenticate(token), Channel.SMS, f"{(int(first) + 1) % 10**6:06d}"
            )

    verify_overtaken(clock, token, first, made_again_meanwhile)
    assert pending_change(driver, user)["tries"] == {"N": "1"}  # the new change's wrong code, still counted


def verify_overtaken(clock: MovableClock, token: str, code: str, meanwhile: Callable[[], None]) -> None:
    """The mobile's verify with `code`, right when checked, overtaken by `meanwhile` before its write: told
    the code was replaced."""
    settling = transaction_updating("REMOVE #values.#channel")
    with before_first_aws_call("dynamodb.TransactWriteItems", meanwhile, where=settling) as outcomes:
        verifying = wiring.contact(os.environ, clock=clock)
        with pytest.raises(AuthenticationFailed, match=re.escape(replaced_code({Channel.SMS}))):
            verifying.contacts.verify(verifying.sessions.authenticate(token), Channel.SMS, code)
    assert outcomes == ["TransactionCanceledException"]


def pending_change(driver: LetterDriver, user: User) -> dict[str, Any]:
    key = to_item({"pk": f"contact-change#{driver.key(user.identity_number)}"})
    return dict(driver.dynamodb.get_item(TableName=driver.local.stack.refs["ChallengesTable"], Key=key)["Item"])


def test_a_code_a_resend_or_a_change_made_again_replaced_is_told_so_and_is_no_guess(driver: LetterDriver) -> None:
    """The first SMS late (SMS order is not kept), a resend asked for, and the first code then typed: told
    to use the last one, with no try spent. So too the codes of a change made again in place of one waiting
    (the form sent again, past a resend's interval). A wrong code is a guess, as ever."""
    user = enrolled(driver)
    clock = MovableClock()
    services = wiring.contact(os.environ, clock=clock)
    token = user.login()
    replaced = re.escape(replaced_code({Channel.SMS}))
    services.contacts.change(services.sessions.authenticate(token), mobile="987 65 445")
    first = code_in(sms_to(driver, "+4798765445"))
    clock.advance(timedelta(seconds=31))  # past the resends' own 30 seconds
    services.contacts.resend(services.sessions.authenticate(token))
    resent = code_in(sms_to(driver, "+4798765445"))
    assert resent != first
    for _ in range(MAX_CODE_TRIES + 1):  # more than the tries there are: none is spent
        with pytest.raises(AuthenticationFailed, match=replaced):
            services.contacts.verify(services.sessions.authenticate(token), Channel.SMS, first)
    clock.advance(timedelta(seconds=31))
    services.contacts.change(services.sessions.authenticate(token), mobile="987 65 445")  # made again
    last = code_in(sms_to(driver, "+4798765445"))
    assert last not in (first, resent)
    for old in (first, resent):
        with pytest.raises(AuthenticationFailed, match=replaced):
            services.contacts.verify(services.sessions.authenticate(token), Channel.SMS, old)
    assert pending_change(driver, user)["tries"] == {"N": "0"}
    with pytest.raises(AuthenticationFailed, match="The code is wrong or has expired"):
        services.contacts.verify(services.sessions.authenticate(token), Channel.SMS, f"{(int(last) + 1) % 10**6:06d}")
    assert pending_change(driver, user)["tries"] == {"N": "1"}
    assert services.contacts.verify(services.sessions.authenticate(token), Channel.SMS, last).mobile == "+4798765445"


def test_two_verifies_at_once_one_per_contact_leave_no_change_that_refuses_the_next(driver: LetterDriver) -> None:
    """Each reads the other contact as still waiting, and leaves it so: the change is left with nothing
    waiting, and still pending. A later change is made (it was refused 409 until DynamoDB's TTL took the
    item, days perhaps, each try sending a code first)."""
    user = enrolled(driver, email="both.at.once@example.no")
    token = user.login()
    asked = user.call("PUT", "/v1/me/contact", {"mobile": "987 65 438", "email": "ny.at.once@example.no"}, token)
    assert asked.status == 202
    mobile_code = code_in(sms_to(driver, "+4798765438"))
    email_code = code_in([m["body"] for m in driver.local.outbox.emails() if m["to"] == "ny.at.once@example.no"])
    outcomes, _ = verified_while_mobile_verified(user, token, mobile_code, Channel.EMAIL, email_code)
    assert outcomes == ["made"]
    record = register(driver).find(driver.key(user.identity_number))
    assert record is not None
    assert (record.mobile, record.email) == ("+4798765438", "ny.at.once@example.no")
    again = user.call("PUT", "/v1/me/contact", {"mobile": "987 65 439"}, token)
    assert again.status == 202, body(again)


def test_the_same_verify_sent_twice_at_once_is_done_for_both(driver: LetterDriver) -> None:
    """A double submit: the one overtaken finds the contact verified by its own code, and is answered
    with the contact, not told that no change is waiting; nor does it cost the e-mail still waiting a try."""
    user = enrolled(driver, email="dobbelt@example.no")
    token = user.login()
    asked = {"mobile": "987 65 441", "email": "ny.dobbelt@example.no"}
    assert user.call("PUT", "/v1/me/contact", asked, token).status == 202
    code = code_in(sms_to(driver, "+4798765441"))
    outcomes, record = verified_while_mobile_verified(user, token, code, Channel.SMS, code)
    assert outcomes == ["TransactionCanceledException"]
    assert record.mobile == "+4798765441"
    kinds = [e.type.value for e in security_events(driver).page(driver.key(user.identity_number), None, 100).events]
    assert kinds.count("contact-changed") == 1
    waiting = pending_changes(driver).get(driver.key(user.identity_number))
    assert waiting is not None
    assert (set(waiting.values), waiting.tries) == ({Channel.EMAIL}, 0)


def test_a_change_does_not_undo_one_made_meanwhile(driver: LetterDriver) -> None:
    """A change writes the record as it was read, changed: if another request changed it in between (a
    new mobile verified in another tab), it writes nothing (the route's 409), rather than the old number back."""
    user = enrolled(driver, email="both@example.no")
    token = user.login()
    user.call("PUT", "/v1/me/contact", {"mobile": "987 65 432"}, token)
    person = driver.key(user.identity_number)
    as_read = register(driver).find(person)
    assert as_read is not None
    verified = user.call(
        "POST", "/v1/me/contact/verify", {"channel": "mobile", "code": code_in(sms_to(driver, "+4798765432"))}, token
    )
    assert verified.status == 200  # meanwhile, in another tab

    changes = pending_changes(driver)
    epoch = wiring.contact(os.environ).sessions.authenticate(token).epoch
    removed = SecurityEvent(SecurityEventType.CONTACT_REMOVED, as_read.updated_at, "meanwhile", {"channel": "email"})
    without_email = replace(as_read, email=None, email_verified_at=None)
    assert changes.apply(person, as_read, without_email, None, [removed], epoch=epoch) is Applied.CHANGED_MEANWHILE
    # nor does a change that only asks for a new value: its notice to the old contact is about the record as read
    at = as_read.updated_at or as_read.mobile_verified_at
    assert at is not None
    asked = PendingChange(
        person, {Channel.EMAIL: "new@example.no"}, {Channel.EMAIL: "x"}, at, at + timedelta(minutes=10)
    )
    requested = SecurityEvent(SecurityEventType.CONTACT_CHANGE_REQUESTED, at, "meanwhile", {"channel": "email"})
    assert changes.apply(person, as_read, None, asked, [requested], epoch=epoch) is Applied.CHANGED_MEANWHILE
    assert changes.get(person) is None

    contact = body(user.call("GET", "/v1/me/contact", token=token))
    assert (contact["mobile"], contact["email"]) == ("+4798765432", "both@example.no")
    kinds = [e["type"] for e in body(user.call("GET", "/v1/me/events", token=token))["events"]]
    assert "contact-removed" not in kinds
    now_read = register(driver).find(person)
    assert now_read is not None
    without_email = replace(now_read, email=None, email_verified_at=None)
    assert changes.apply(person, now_read, without_email, None, [removed], epoch=epoch) is Applied.DONE
    contact = body(user.call("GET", "/v1/me/contact", token=token))
    assert (contact["mobile"], contact["email"]) == ("+4798765432", None)  # as read now: written


@pytest.mark.parametrize("asked", ["change", "confirm", "reserve"])
def test_a_session_ended_meanwhile_writes_nothing_to_the_record(driver: LetterDriver, asked: str) -> None:
    """The person changes their password (which ends every session) while a session taken over changes
    the record, confirms it or reserves it, the record read: the write does not hold, and the session is
    told it has ended."""
    user = enrolled(driver)
    token = user.login()
    person = driver.key(user.identity_number)
    before = register(driver).find(person)
    new_password = "ei heilt ny frase no"

    def password_changed() -> None:
        changed = {"current_password": user.password, "new_password": new_password}
        assert user.call("PUT", "/v1/me/password", changed, token=user.login()).status == 204

    with before_first_aws_call("dynamodb.TransactWriteItems", password_changed):
        services = wiring.contact(os.environ)  # its clients made here, where the race is made
        session = services.sessions.authenticate(token)
        write: Callable[[], object] = {
            "change": lambda: services.contacts.change(session, language=Language.ENGLISH),
            "confirm": lambda: services.contacts.confirm(session),
            "reserve": lambda: services.contacts.reserve(session, reserved=True),
        }[asked]
        with pytest.raises(SessionEnded):
            write()
    assert register(driver).find(person) == before
    user.password = new_password
    kinds = {e["type"] for e in body(user.call("GET", "/v1/me/events", token=user.login()))["events"]}
    assert not kinds & {"language-changed", "contact-confirmed", "reserved"}


def test_a_record_written_without_its_language_and_reservation_can_be_changed(driver: LetterDriver) -> None:
    """An item without them is read as bokmål, not reserved; a change of it holds against what was read."""
    user = enrolled(driver)
    token = user.login()
    person = driver.key(user.identity_number)
    table = driver.local.stack.refs["ContactRegisterTable"]
    record = register(driver).find(person)
    assert record is not None
    older = {k: v for k, v in contact_item(person, record).items() if k not in {"language", "reserved"}}
    driver.dynamodb.put_item(TableName=table, Item=older)
    assert user.call("POST", "/v1/me/contact/confirm", token=token).status == 200
    assert body(user.call("PUT", "/v1/me/reservation", {"reserved": True}, token))["reserved"] is True


def test_a_code_for_a_channel_that_waits_for_none_costs_no_try(driver: LetterDriver) -> None:
    user = enrolled(driver)
    token = user.login()
    user.call("PUT", "/v1/me/contact", {"mobile": "987 65 432"}, token)
    right = code_in(sms_to(driver, "+4798765432"))
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(3):
        answer = user.call("POST", "/v1/me/contact/verify", {"channel": "email", "code": wrong}, token)
        assert (answer.status, body(answer)["type"]) == (409, "/problems/conflict")
    for _ in range(2):
        assert user.call("POST", "/v1/me/contact/verify", {"channel": "mobile", "code": wrong}, token).status == 401
    assert user.call("POST", "/v1/me/contact/verify", {"channel": "mobile", "code": right}, token).status == 200


def test_an_expired_code_does_not_change_anything(driver: LetterDriver) -> None:
    user = enrolled(driver)
    clock = MovableClock()
    services = wiring.contact(os.environ, clock=clock)
    session = services.sessions.authenticate(user.login())
    services.contacts.change(session, mobile="98765432")
    code = code_in(sms_to(driver, "+4798765432"))
    clock.advance(timedelta(minutes=11))
    with pytest.raises(Conflict):
        services.contacts.verify(services.sessions.authenticate(user.login()), Channel.SMS, code)


def test_a_code_resent_holds_its_own_ten_minutes(driver: LetterDriver) -> None:
    """The message says the code holds for 10 minutes: one resent late in the first code's ten does too."""
    user = enrolled(driver)
    clock = MovableClock()
    services = wiring.contact(os.environ, clock=clock)
    services.contacts.change(services.sessions.authenticate(user.login()), mobile="98765433")
    clock.advance(timedelta(minutes=9, seconds=30))
    services.contacts.resend(services.sessions.authenticate(user.login()))
    code = code_in(sms_to(driver, "+4798765433"))
    clock.advance(timedelta(minutes=8))  # 17.5 minutes after the change, 8 after the resend
    changed = services.contacts.verify(services.sessions.authenticate(user.login()), Channel.SMS, code)
    assert changed.mobile == "+4798765433"


def test_a_change_needs_a_login_from_the_last_15_minutes(driver: LetterDriver) -> None:
    user = enrolled(driver)
    clock = MovableClock()
    services = wiring.contact(os.environ, clock=clock)
    token = user.login()
    clock.advance(timedelta(minutes=16))
    session = services.sessions.authenticate(token)  # the session lives on (used within 30 minutes) ...
    with pytest.raises(ReauthenticationRequired):  # ... but is too old to change the contacts
        services.contacts.change(session, mobile="98765432")
    assert services.contacts.confirm(session).confirmed_at == clock.now()  # confirming needs no fresh login


def test_the_last_verified_contact_cannot_be_removed(driver: LetterDriver) -> None:
    only_mobile = enrolled(driver)
    token = only_mobile.login()
    refused = only_mobile.call("PUT", "/v1/me/contact", {"mobile": None}, token)
    assert (refused.status, body(refused)["type"]) == (422, "/problems/invalid-contact")

    both = enrolled(driver, mobile="92345678", email="both@example.no")
    token = both.login()
    removed = both.call("PUT", "/v1/me/contact", {"mobile": None}, token)
    assert (removed.status, body(removed)) == (202, {"verification_sent_to": []})
    assert body(both.call("GET", "/v1/me/contact", token=token))["mobile"] is None
    wait_for(lambda: sms_to(driver, "+4792345678"), lambda texts: any("fjernet" in t for t in texts))
    assert both.call("PUT", "/v1/me/contact", {"email": None}, token).status == 422


@pytest.mark.parametrize(("field", "blank"), [("email", ""), ("mobile", " "), ("email", "\u00a0")])
def test_a_blank_contact_is_refused_and_removes_nothing(driver: LetterDriver, field: str, blank: str) -> None:
    """API.md removes a contact with null: a form that sends every field, one left blank, is told which,
    and both contacts stay."""
    user = enrolled(driver, mobile="92345679", email="blank@example.no")
    token = user.login()
    before = body(user.call("GET", "/v1/me/contact", token=token))
    refused = user.call("PUT", "/v1/me/contact", {field: blank}, token)
    assert (refused.status, body(refused)["type"]) == (422, "/problems/invalid-contact")
    assert [e["field"] for e in body(refused)["errors"]] == [field]
    assert "null to remove it" in body(refused)["errors"][0]["message"]
    assert body(user.call("GET", "/v1/me/contact", token=token)) == before


def test_a_contact_stored_before_a_rule_refused_it_can_be_sent_back_as_stored(driver: LetterDriver) -> None:
    """A satellite phone's number (of no country), verified before such numbers were refused: a form that
    sends every field sends it back with the e-mail changed, and it is kept; it is not taken anew."""
    user = enrolled(driver, email="sat@example.no")
    token = user.login()
    person = driver.key(user.identity_number)
    record = register(driver).find(person)
    assert record is not None
    stored = replace(record, mobile="+881631234567")
    table = driver.local.stack.refs["ContactRegisterTable"]
    driver.dynamodb.put_item(TableName=table, Item=contact_item(person, stored))
    both = {"mobile": "+881631234567", "email": "sat.ny@example.no"}
    changed = user.call("PUT", "/v1/me/contact", both, token)
    assert (changed.status, body(changed)) == (202, {"verification_sent_to": ["email"]})
    refused = user.call("PUT", "/v1/me/contact", {"mobile": "+881 631 234 568"}, token)  # another: refused
    assert [e["field"] for e in body(refused)["errors"]] == ["mobile"]


@pytest.mark.parametrize("given_up", [None, "91234567"])
def test_a_contact_removed_or_set_back_gives_up_its_change_waiting(driver: LetterDriver, given_up: str | None) -> None:
    """A new mobile waits for its code; the person then removes the mobile, or sets it back to the one in
    the register. The waiting change is given up: its code, verified after, no longer makes the number
    the person gave up the one in use. A change of the other channel waiting with it still holds."""
    user = enrolled(driver, email="kari@example.no")
    token = user.login()
    asked = {"mobile": "987 65 432", "email": "ny@example.no"}
    assert body(user.call("PUT", "/v1/me/contact", asked, token)) == {"verification_sent_to": ["mobile", "email"]}
    mobile_code = code_in(sms_to(driver, "+4798765432"))
    email_code = code_in([m["body"] for m in driver.local.outbox.emails() if m["to"] == "ny@example.no"])

    gave_up = user.call("PUT", "/v1/me/contact", {"mobile": given_up}, token)
    assert (gave_up.status, body(gave_up)) == (202, {"verification_sent_to": []})
    late = user.call("POST", "/v1/me/contact/verify", {"channel": "mobile", "code": mobile_code}, token)
    assert (late.status, body(late)["type"]) == (409, "/problems/conflict")
    contact = body(user.call("GET", "/v1/me/contact", token=token))
    assert contact["mobile"] == (None if given_up is None else "+4791234567")
    history = body(user.call("GET", "/v1/me/events", token=token))["events"]
    withdrawn = [e["detail"] for e in history if e["type"] == "contact-change-withdrawn"]
    assert withdrawn == [{"channel": "mobile"}]  # called off, in the person's history (the e-mail's still waits)

    verified = user.call("POST", "/v1/me/contact/verify", {"channel": "email", "code": email_code}, token)
    assert (verified.status, body(verified)["email"]) == (200, "ny@example.no")
    assert body(user.call("PUT", "/v1/me/contact", {"email": "ny@example.no"}, token)) == {"verification_sent_to": []}


@pytest.mark.parametrize(
    ("change", "field"),
    [({"mobile": "22 33 44 55"}, "mobile"), ({"mobile": "abc"}, "mobile"), ({"email": "not-an-address"}, "email")],
)
def test_contacts_that_cannot_be_used_are_refused(driver: LetterDriver, change: dict[str, str], field: str) -> None:
    user = enrolled(driver)
    answer = user.call("PUT", "/v1/me/contact", change, user.login())
    assert answer.status == 422
    assert body(answer)["errors"][0]["field"] == field


def test_language_confirmation_and_reservation(driver: LetterDriver) -> None:
    user = enrolled(driver)
    token = user.login()
    assert user.call("PUT", "/v1/me/contact", {"language": "en"}, token).status == 202
    confirmed = body(user.call("POST", "/v1/me/contact/confirm", token=token))
    assert confirmed["language"] == "en"
    assert confirmed["confirmed_at"] == body(user.call("GET", "/v1/me/contact", token=token))["confirmed_at"]
    assert body(user.call("PUT", "/v1/me/reservation", {"reserved": True}, token))["reserved"] is True
    assert body(user.call("PUT", "/v1/me/reservation", {"reserved": False}, token))["reserved"] is False
    kinds = [e["type"] for e in body(user.call("GET", "/v1/me/events", token=token))["events"]]
    assert kinds[:4] == ["unreserved", "reserved", "contact-confirmed", "language-changed"]


def test_confirmations_over_and_over_are_answered_but_not_written(driver: LetterDriver) -> None:
    """A session looping on the confirmation writes no event a call: the person's history (a contact
    changed, a lock) is not buried under them. Past a few an hour, it is answered as confirmed."""
    user = enrolled(driver)
    token = user.login()
    in_one_window(3600, 60)
    answers = [user.call("POST", "/v1/me/contact/confirm", token=token) for _ in range(CONFIRMATIONS.max_hits + 3)]
    assert {answer.status for answer in answers} == {200}
    stored = body(user.call("GET", "/v1/me/contact", token=token))
    assert [body(answer) for answer in answers[CONFIRMATIONS.max_hits :]] == [stored] * 3
    kinds = [e["type"] for e in body(user.call("GET", "/v1/me/events", token=token))["events"]]
    assert kinds.count("contact-confirmed") == CONFIRMATIONS.max_hits


def test_a_session_changing_the_language_over_and_over_is_refused_past_a_few_an_hour(driver: LetterDriver) -> None:
    """Each change of the language writes an event: a session looping on it must not bury the person's
    history (a contact changed, a lock) under them. Past a few an hour, 429 and nothing written. A change
    of the language with a contact's is not counted: the codes it sends bound it."""
    user = enrolled(driver)
    token = user.login()
    in_one_window(3600, 60)
    languages = (["en", "nb"] * LANGUAGE_CHANGES.max_hits)[: LANGUAGE_CHANGES.max_hits + 1]
    answers = [user.call("PUT", "/v1/me/contact", {"language": language}, token) for language in languages]
    assert [answer.status for answer in answers] == [202] * LANGUAGE_CHANGES.max_hits + [429]
    refused = answers[LANGUAGE_CHANGES.max_hits]
    assert (body(refused)["type"], body(refused)["detail"]) == ("/problems/rate-limited", LANGUAGE_CHANGED_TOO_OFTEN)
    assert 0 < int(refused.header("retry-after") or 0) <= 3600
    stored = body(user.call("GET", "/v1/me/contact", token=token))
    assert stored["language"] == languages[LANGUAGE_CHANGES.max_hits - 1]
    kinds = [e["type"] for e in body(user.call("GET", "/v1/me/events", token=token))["events"]]
    assert kinds.count("language-changed") == LANGUAGE_CHANGES.max_hits
    with_contact = {"language": "en", "email": "kari.language@example.no"}
    assert body(user.call("PUT", "/v1/me/contact", with_contact, token)) == {"verification_sent_to": ["email"]}
    assert body(user.call("GET", "/v1/me/contact", token=token))["language"] == "en"


def test_confirmations_that_failed_take_no_place_among_those_written(driver: LetterDriver) -> None:
    """A confirmation is counted by the write that records it: ones refused because the record changed
    meanwhile (a 409 each) leave the person's next confirmation to be written, not answered as it was."""
    user = enrolled(driver)
    token = user.login()
    in_one_window(3600, 60)
    changed = ("None", "ConditionalCheckFailed", "None", "None")  # the session held; the record, not as read
    with injected_faults() as faults:
        faults.add("dynamodb", "TransactWriteItems", code="TransactionCanceledException", reasons=changed, times=4)
        answers = [user.call("POST", "/v1/me/contact/confirm", token=token) for _ in range(CONFIRMATIONS.max_hits)]
    assert [answer.status for answer in answers] == [409] * CONFIRMATIONS.max_hits
    confirmed = user.call("POST", "/v1/me/contact/confirm", token=token)
    assert confirmed.status == 200
    assert body(confirmed)["confirmed_at"]
    kinds = [e["type"] for e in body(user.call("GET", "/v1/me/events", token=token))["events"]]
    assert kinds.count("contact-confirmed") == 1
    for _ in range(CONFIRMATIONS.max_hits - 1):
        assert user.call("POST", "/v1/me/contact/confirm", token=token).status == 200
    # the limit full and the record changed meanwhile: the change is told (409), not the record as it was
    both = ("None", "ConditionalCheckFailed", "ConditionalCheckFailed", "None")
    with injected_faults() as faults:
        faults.add("dynamodb", "TransactWriteItems", code="TransactionCanceledException", reasons=both)
        assert user.call("POST", "/v1/me/contact/confirm", token=token).status == 409


def test_a_reservation_made_or_lifted_is_told_to_the_person(driver: LetterDriver) -> None:
    """One who took over a session must not cut the person off from the public sector's notices unseen
    (nor lift their choice): each change is told on the person's contacts, once."""
    user = enrolled(driver, email="kari.reserved@example.no")
    token = user.login()
    assert body(user.call("PUT", "/v1/me/reservation", {"reserved": True}, token))["reserved"] is True
    assert body(user.call("PUT", "/v1/me/reservation", {"reserved": True}, token))["reserved"] is True  # no change
    driver.notices_delivered()
    told = [text for text in sms_to(driver, "+4791234567") if "reservere deg mot digital kommunikasjon" in text]
    assert len(told) == 1
    assert "brev i posten" in told[0]
    emails = [m for m in driver.local.outbox.emails() if m["to"] == "kari.reserved@example.no"]
    assert [m["subject"] for m in emails].count("MinID: Du har reservert deg mot digital kommunikasjon") == 1
    assert body(user.call("PUT", "/v1/me/reservation", {"reserved": False}, token))["reserved"] is False
    # waited for, not read once the queue looks empty: its notice may be queued again, its change (the proof)
    # not yet written when the notifier first took it (once under a full run's load, the queue looked empty)
    wait_for(lambda: [text for text in sms_to(driver, "+4791234567") if "opphevet" in text], bool)
    driver.notices_delivered()
    assert len([text for text in sms_to(driver, "+4791234567") if "opphevet" in text]) == 1


def test_a_session_cannot_toggle_the_reservation_to_flood_the_person_with_notices(driver: LetterDriver) -> None:
    """Each change sends an SMS and an e-mail: past a few an hour, a 429, and nothing changed or sent."""
    user = enrolled(driver, email="kari.toggled@example.no")
    token = user.login()
    for n in range(RESERVATION_CHANGES.max_hits):
        assert user.call("PUT", "/v1/me/reservation", {"reserved": n % 2 == 0}, token).status == 200
    refused = user.call("PUT", "/v1/me/reservation", {"reserved": RESERVATION_CHANGES.max_hits % 2 == 0}, token)
    assert (refused.status, body(refused)["type"]) == (429, "/problems/rate-limited")
    assert body(refused)["detail"] == RESERVATION_CHANGED_TOO_OFTEN  # the person's limit, not this client's
    assert int(refused.header("retry-after") or 0) > 0
    contact = body(user.call("GET", "/v1/me/contact", token=token))
    assert contact["reserved"] is (RESERVATION_CHANGES.max_hits % 2 == 1)  # as the last change let it
    driver.notices_delivered()
    emails = [m for m in driver.local.outbox.emails() if m["to"] == "kari.toggled@example.no"]
    assert len([m for m in emails if "reserv" in m["subject"].lower()]) == RESERVATION_CHANGES.max_hits
    unchanged = user.call("PUT", "/v1/me/reservation", {"reserved": contact["reserved"]}, token)
    assert unchanged.status == 200  # asking for what is: no change, nothing counted or sent


def test_reservation_changes_that_failed_take_no_place(driver: LetterDriver) -> None:
    """A change of the reservation whose notice could not be queued (a 503), or refused as the record
    changed meanwhile (a 409), changed nothing: the person's changes an hour are not spent on it."""
    user = enrolled(driver)
    token = user.login()
    person = driver.key(user.identity_number)
    in_one_window(3600, 60)
    with injected_faults() as faults:
        faults.add("sqs", "SendMessage", here=True, times=RESERVATION_CHANGES.max_hits)
        answers = [user.call("PUT", "/v1/me/reservation", {"reserved": True}, token) for _ in range(4)]
    assert [answer.status for answer in answers] == [503] * RESERVATION_CHANGES.max_hits
    changed = ("None", "ConditionalCheckFailed", "None")  # the session held; the record, not as read
    with injected_faults() as faults:
        faults.add("dynamodb", "TransactWriteItems", code="TransactionCanceledException", reasons=changed)
        assert user.call("PUT", "/v1/me/reservation", {"reserved": True}, token).status == 409
    assert counted_hits(driver, "reservation-changes", person, 3600) == 0
    assert body(user.call("GET", "/v1/me/contact", token=token))["reserved"] is False
    for n in range(RESERVATION_CHANGES.max_hits):
        assert user.call("PUT", "/v1/me/reservation", {"reserved": n % 2 == 0}, token).status == 200


def test_a_reservation_made_meanwhile_as_asked_answers_as_made(driver: LetterDriver) -> None:
    """A second click, or another tab, reserved the person between this request's read and its write: the
    write is refused (the record changed), and the answer is the record as asked for, not a 409. Only the
    change made is counted."""
    user = enrolled(driver)
    token = user.login()
    assert user.call("GET", "/v1/me/contact", token=token).status == 200  # the stack's function and its clients made

    def another_tab() -> None:
        assert body(user.call("PUT", "/v1/me/reservation", {"reserved": True}, token))["reserved"] is True

    def reservation(params: dict[str, Any]) -> bool:  # the request's own write: the record as read
        return any("Put" in item or "Update" in item for item in params["TransactItems"])

    with before_first_aws_call("dynamodb.TransactWriteItems", another_tab, where=reservation) as outcomes:
        services = wiring.contact(os.environ)
        record = services.contacts.reserve(services.sessions.authenticate(token), True)
    assert outcomes == ["TransactionCanceledException"]
    assert record.reserved is True
    assert counted_hits(driver, "reservation-changes", driver.key(user.identity_number), 3600) == 1  # the tab's
    driver.notices_delivered()
    told = [text for text in sms_to(driver, "+4791234567") if "reservere deg mot digital kommunikasjon" in text]
    assert len(told) == 1  # the other tab's notice; this one's event was never written


@pytest.mark.parametrize("meanwhile", ["confirmed", "mobile verified"])
def test_a_confirmation_meets_another_write_meanwhile(driver: LetterDriver, meanwhile: str) -> None:
    """A second click (or another tab) confirmed between this request's read and its write: answered as
    confirmed. A new mobile verified meanwhile (confirmed with it) is for the person to look at: 409."""
    user = enrolled(driver)
    token = user.login()
    assert user.call("PUT", "/v1/me/contact", {"mobile": "987 65 436"}, token).status == 202  # its function made
    code = code_in(sms_to(driver, "+4798765436"))

    def another_tab() -> None:
        if meanwhile == "confirmed":
            assert user.call("POST", "/v1/me/contact/confirm", token=token).status == 200
        else:
            verify = {"channel": "mobile", "code": code}
            assert user.call("POST", "/v1/me/contact/verify", verify, token).status == 200

    def confirmation(params: dict[str, Any]) -> bool:  # the request's own write: the record as read
        return any("Put" in item or "Update" in item for item in params["TransactItems"])

    with before_first_aws_call("dynamodb.TransactWriteItems", another_tab, where=confirmation) as outcomes:
        services = wiring.contact(os.environ)
        session = services.sessions.authenticate(token)
        if meanwhile == "confirmed":
            assert services.contacts.confirm(session).confirmed_at is not None
        else:
            with pytest.raises(Conflict):
                services.contacts.confirm(session)
    assert outcomes == ["TransactionCanceledException"]


# ---------------------------------------------------------------------- the daily review
def test_a_reminder_at_16_months_and_stale_at_18(driver: LetterDriver) -> None:
    user = enrolled(driver)
    person = driver.key(user.identity_number)
    contacts = register(driver)
    record = contacts.find(person)
    assert record is not None
    clock = MovableClock(_at_seven_in_oslo(record.review_on()))
    review = wiring.contact_review(os.environ, clock=clock)

    assert review.run() == ReviewRun(1, 0, finished=True)
    reminder = wait_for(lambda: sms_to(driver, "+4791234567"), lambda texts: any("16 måneder" in t for t in texts))
    assert reminder
    assert review.run() == ReviewRun(0, 0, finished=True)  # reminded once

    clock.moment = _at_seven_in_oslo(record.stale_review_on())
    with injected_faults() as faults:  # a write that fails marks nothing: the next run does it whole
        faults.add("dynamodb", "TransactWriteItems")
        with pytest.raises(ClientError):
            review.run()
    table, key = driver.local.stack.refs["ContactRegisterTable"], {"pk": {"S": person}}
    assert "marked_stale_at" not in driver.dynamodb.get_item(TableName=table, Key=key)["Item"]
    assert review.run() == ReviewRun(0, 1, finished=True)
    item = driver.dynamodb.get_item(TableName=table, Key=key)
    assert "marked_stale_at" in item["Item"]
    assert "review_on" not in item["Item"]
    kinds = [e.type.value for e in security_events(driver).page(person, None, 100).events]
    assert kinds.count("contact-stale") == 1


def test_a_reserved_person_s_reminder_does_not_say_public_services_use_the_contacts(driver: LetterDriver) -> None:
    """One reserved against digital communication is reminded all the same (MinID's own notices use the
    contacts), and told why: not that public services use them, which for them is not so."""
    user = enrolled(driver)
    token = user.login()
    assert body(user.call("PUT", "/v1/me/reservation", {"reserved": True}, token))["reserved"] is True
    person = driver.key(user.identity_number)
    record = register(driver).find(person)
    assert record is not None
    review = wiring.contact_review(os.environ, clock=MovableClock(_at_seven_in_oslo(record.review_on())))
    assert review.run() == ReviewRun(1, 0, finished=True)
    texts = wait_for(lambda: sms_to(driver, "+4791234567"), lambda texts: any("16 måneder" in t for t in texts))
    (reminder,) = [text for text in texts if "16 måneder" in text]
    assert "Du er reservert mot digital kommunikasjon" in reminder
    assert "Det offentlige bruker dem til å varsle deg" not in reminder


def test_a_reminder_for_a_record_confirmed_since_it_was_queued_is_not_sent(driver: LetterDriver) -> None:
    """The review queues the reminder for the record as it read it; the person confirms before it is sent
    (the review's read a moment old, or SNS down for hours): the notifier drops it, as no longer due."""
    user = enrolled(driver, mobile="91234577")
    person = driver.key(user.identity_number)
    record = register(driver).find(person)
    assert record is not None
    queued: list[dict[str, Any]] = []
    with on_functions_clients(("before-parameter-build.sqs.SendMessage", lambda params, **_: queued.append(params))):
        review = wiring.contact_review(os.environ, clock=MovableClock(_at_seven_in_oslo(record.review_on())))
        assert review.run() == ReviewRun(1, 0, finished=True)
    (reminder,) = [notice_from_json(message["MessageBody"]) for message in queued]
    assert reminder.params[REMINDED_OF] == record.last_confirmed.isoformat()
    assert [message["QueueUrl"] for message in queued] == [driver.local.stack.refs["ReminderQueue"]]

    def reminded() -> list[str]:
        return [text for text in sms_to(driver, "+4791234577") if "16 måneder" in text]

    assert wait_for(reminded, lambda texts: len(texts) == 1)
    notifier = wiring.notifier(os.environ)
    as_queued = replace(reminder, notice_id=f"{reminder.notice_id}:again")  # not yet sent, by the ledger
    assert notifier.deliver(as_queued).sent == [Channel.SMS]  # still due
    assert user.call("POST", "/v1/me/contact/confirm", token=user.login()).status == 200
    late = replace(reminder, notice_id=f"{reminder.notice_id}:late")
    assert notifier.deliver(late).sent == []
    assert len(reminded()) == 2


def test_the_review_function_reminds_and_marks_stale_within_its_role(driver: LetterDriver) -> None:
    """Through the function as deployed (its role judged as the stack stops, tests/integration/iam.py):
    a record due its reminder today and one due its stale mark, each written on nothing but the review's
    own attributes."""
    today = date_in_norway(datetime.now(UTC)).isoformat()
    table = driver.local.stack.refs["ContactRegisterTable"]
    contacts = register(driver)
    due: dict[str, PersonKey] = {}
    for what, age in (("remind", REMIND_AFTER + timedelta(days=1)), ("stale", STALE_AFTER + timedelta(days=1))):
        user = enrolled(driver, mobile=f"9345679{len(due)}")
        person = driver.key(user.identity_number)
        record = contacts.find(person)
        assert record is not None
        old = replace(record, updated_at=record.updated_at - age, confirmed_at=None)
        driver.dynamodb.put_item(TableName=table, Item=contact_item(person, old) | {"review_on": {"S": today}})
        due[what] = person
    outcome = driver.local.functions.by_logical_id["ContactReviewFunction"].invoke({})
    assert (outcome["reminded"], outcome["marked_stale"], outcome["finished"]) == (1, 1, True)
    stale = driver.dynamodb.get_item(TableName=table, Key={"pk": {"S": due["stale"]}})["Item"]
    assert "marked_stale_at" in stale


def test_a_person_writing_their_record_as_the_review_does_does_not_fail_the_review(driver: LetterDriver) -> None:
    """The person's transaction on the record (a confirmation, a change) at the moment the review writes
    it: DynamoDB refuses the review's write (TransactionConflict, which the SDK does not retry). The write
    is made again once the other is done, and the run goes on, for the reminder and the stale mark alike."""
    user = enrolled(driver)
    person = driver.key(user.identity_number)
    record = register(driver).find(person)
    assert record is not None
    clock = MovableClock(_at_seven_in_oslo(record.review_on()))
    review = wiring.contact_review(os.environ, clock=clock)
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", code="TransactionConflictException", status=400, times=2)
        assert review.run() == ReviewRun(1, 0, finished=True)
        assert [fault[2] for fault in faults.injected] == ["TransactionConflictException"] * 2
    clock.moment = _at_seven_in_oslo(record.stale_review_on())
    with injected_faults() as faults:
        conflict = ("TransactionConflict", "None")
        faults.add("dynamodb", "TransactWriteItems", code="TransactionCanceledException", reasons=conflict, times=2)
        assert review.run() == ReviewRun(0, 1, finished=True)
        assert len(faults.injected) == 2
    kinds = [e.type.value for e in security_events(driver).page(person, None, 100).events]
    assert kinds.count("contact-stale") == 1


def test_a_person_the_population_register_does_not_have_is_reminded(driver: LetterDriver) -> None:
    """A gap in the register's copy (a D-number holder left out, say) is not death: the person is reminded,
    as the notifier tells them, rather than their contacts going stale unwarned."""
    user = enrolled(driver)
    person = driver.key(user.identity_number)
    record = register(driver).find(person)
    assert record is not None
    driver.dynamodb.delete_item(TableName=driver.local.stack.refs["PopulationRegisterTable"], Key={"pk": {"S": person}})
    review = wiring.contact_review(os.environ, clock=MovableClock(_at_seven_in_oslo(record.review_on())))
    assert review.run() == ReviewRun(1, 0, finished=True)
    assert wait_for(lambda: sms_to(driver, "+4791234567"), lambda texts: any("16 måneder" in t for t in texts))


def test_a_dead_person_s_contacts_get_no_reminder(driver: LetterDriver) -> None:
    """A person who has died keeps a contact record; at 16 months the number or address may be someone
    else's: the review reminds nobody, and goes on to the stale review as for one reminded."""
    user = enrolled(driver)
    person = driver.key(user.identity_number)
    record = register(driver).find(person)
    assert record is not None
    registered_dead(driver, user.identity_number)
    review = wiring.contact_review(os.environ, clock=MovableClock(_at_seven_in_oslo(record.review_on())))
    sent = len(sms_to(driver, "+4791234567"))
    assert review.run() == ReviewRun(0, 0, finished=True)
    driver.notices_delivered(queue_name="ReminderQueue")
    assert len(sms_to(driver, "+4791234567")) == sent
    item = driver.dynamodb.get_item(
        TableName=driver.local.stack.refs["ContactRegisterTable"], Key={"pk": {"S": person}}
    )
    assert item["Item"]["review_on"]["S"] == record.stale_review_on().isoformat()


def test_a_reservation_moves_neither_the_review_nor_a_stale_mark(driver: LetterDriver) -> None:
    """A write that confirms nothing leaves the review's schedule: before, it put back the reminder's day,
    gone already, and the record was never marked stale; or a mark made was erased."""
    user = enrolled(driver)
    token = user.login()
    person = driver.key(user.identity_number)
    record = register(driver).find(person)
    assert record is not None
    clock = MovableClock(_at_seven_in_oslo(record.review_on()))
    review = wiring.contact_review(os.environ, clock=clock)
    assert review.run() == ReviewRun(1, 0, finished=True)  # reminded: next looked at on the stale day

    assert body(user.call("PUT", "/v1/me/reservation", {"reserved": True}, token))["reserved"] is True
    clock.moment = _at_seven_in_oslo(record.stale_review_on())
    assert review.run() == ReviewRun(0, 1, finished=True)
    table, key = driver.local.stack.refs["ContactRegisterTable"], {"pk": {"S": person}}
    marked = driver.dynamodb.get_item(TableName=table, Key=key)["Item"]["marked_stale_at"]

    assert body(user.call("PUT", "/v1/me/reservation", {"reserved": False}, token))["reserved"] is False
    item = driver.dynamodb.get_item(TableName=table, Key=key)["Item"]
    assert item["marked_stale_at"] == marked
    assert "review_on" not in item

    assert user.call("POST", "/v1/me/contact/confirm", token=token).status == 200  # confirmed: reviewed anew
    item = driver.dynamodb.get_item(TableName=table, Key=key)["Item"]
    assert "marked_stale_at" not in item
    confirmed = register(driver).find(person)
    assert confirmed is not None
    assert item["review_on"] == {"S": confirmed.review_on().isoformat()}


def test_a_days_records_are_read_a_page_at_a_time_as_the_review_takes_them(driver: LetterDriver) -> None:
    """A day of a national register may hold thousands: read whole before the first was reviewed, a large
    one outlasted the run (or its memory) at every try, and every later day waited behind it."""
    day = date(2031, 5, 6)
    table = driver.local.stack.refs["ContactRegisterTable"]
    for number in range(3):
        user = enrolled(driver, mobile=f"4711300{number}")
        person = driver.key(user.identity_number)
        driver.dynamodb.update_item(
            TableName=table,
            Key={"pk": {"S": person}},
            UpdateExpression="SET review_on = :day",
            ExpressionAttributeValues={":day": {"S": day.isoformat()}},
        )
    queries: list[dict[str, Any]] = []
    client = mock.Mock(wraps=driver.dynamodb)
    client.get_paginator = lambda name: _Counted(driver.dynamodb.get_paginator(name), queries)
    contacts = DynamoDbContactRegister(client, table, review_page_size=1)

    due = contacts.due_for_review(day)
    next(due)
    assert len(queries) == 1
    assert len(list(due)) == 2
    assert len(queries) >= 3  # the others, a page each


class _Counted:
    """A paginator whose pages are counted as they are asked for."""

    def __init__(self, paginator: Any, pages: list[dict[str, Any]]) -> None:
        self._paginator, self._pages = paginator, pages

    def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        for page in self._paginator.paginate(**kwargs):
            self._pages.append(page)
            yield page


def test_a_contact_verified_takes_the_stale_mark_away(driver: LetterDriver) -> None:
    user = enrolled(driver)
    token = user.login()
    person = driver.key(user.identity_number)
    table, key = driver.local.stack.refs["ContactRegisterTable"], {"pk": {"S": person}}
    driver.dynamodb.update_item(  # marked stale by a review (a mark left from before the last update, say)
        TableName=table,
        Key=key,
        UpdateExpression="SET marked_stale_at = :at REMOVE review_on",
        ExpressionAttributeValues={":at": {"S": "2025-01-02T07:00:00.000+00:00"}},
    )
    assert user.call("PUT", "/v1/me/contact", {"mobile": "987 65 434"}, token).status == 202
    code = code_in(sms_to(driver, "+4798765434"))
    assert user.call("POST", "/v1/me/contact/verify", {"channel": "mobile", "code": code}, token).status == 200
    item = driver.dynamodb.get_item(TableName=table, Key=key)["Item"]
    assert "marked_stale_at" not in item
    assert "review_on" in item


def test_runs_missed_for_weeks_miss_nobody(driver: LetterDriver) -> None:
    """The review goes back to the day after the last it went through to its end: a schedule stopped
    for a month leaves no record unreviewed, and a run that fails notes nothing, so the next goes back
    as far."""
    user = enrolled(driver)
    person = driver.key(user.identity_number)
    record = register(driver).find(person)
    assert record is not None
    due = record.review_on()
    clock = MovableClock(_at_seven_in_oslo(due - timedelta(days=1)))
    review = wiring.contact_review(os.environ, clock=clock)
    assert review.run() == ReviewRun(0, 0, finished=True)  # the day before it is due; then no run for a month
    clock.moment = _at_seven_in_oslo(due + timedelta(days=30))
    with injected_faults() as faults:
        faults.add("sqs", "SendMessage")  # the reminder cannot be queued: the run fails
        with pytest.raises(ClientError):
            review.run()
    assert review.run() == ReviewRun(1, 0, finished=True)
    assert review.run() == ReviewRun(0, 0, finished=True)


def test_a_day_too_large_for_one_run_is_finished_by_the_next(driver: LetterDriver) -> None:
    """A run stops taking records when little of its time is left (rather than be stopped by Lambda
    mid-write); the day is not marked done, and the next hourly run goes on from it."""
    user = enrolled(driver)
    person = driver.key(user.identity_number)
    record = register(driver).find(person)
    assert record is not None
    due = record.review_on()
    review = wiring.contact_review(os.environ, clock=MovableClock(_at_seven_in_oslo(due)))
    assert review.run(lambda: STOP_WITH_SECONDS - 1) == ReviewRun(0, 0, finished=False)
    assert register(driver).last_reviewed() == due - timedelta(days=1)  # the days before were done
    assert review.run() == ReviewRun(1, 0, finished=True)
    assert register(driver).last_reviewed() == due


def test_a_run_that_stops_short_of_today_is_told_as_behind(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the function: a run that stops with yesterday's records left is behind, counted for
    ContactReviewBehindAlarm; one that stops with today's left is on time (the next run goes on)."""
    review = driver.local.functions.by_logical_id["ContactReviewFunction"]
    today = date_in_norway(datetime.now(UTC))
    table = driver.local.stack.refs["ContactRegisterTable"]
    contacts = register(driver)
    user = enrolled(driver, mobile="93456780")
    person = driver.key(user.identity_number)
    record = contacts.find(person)
    assert record is not None
    old = replace(record, updated_at=record.updated_at - REMIND_AFTER - timedelta(days=1), confirmed_at=None)
    outcomes = []
    for day in (today - timedelta(days=1), today):  # (the mark only moves on)
        driver.dynamodb.put_item(
            TableName=table, Item=contact_item(person, old) | {"review_on": {"S": day.isoformat()}}
        )
        contacts.reviewed_through(day - timedelta(days=1))
        capsys.readouterr()
        outcome = review.invoke({}, seconds_left=int(STOP_WITH_SECONDS) - 1)
        outcomes.append(
            (outcome["finished"], outcome["behind"], '"ContactReviewBehind":[1.0]' in capsys.readouterr().out)
        )
    assert outcomes == [(False, True, True), (False, False, False)]


def _at_seven_in_oslo(day: date) -> datetime:
    """When the daily review first runs in a day (template.yaml: cron(0 7-20 * * ? *), Europe/Oslo)."""
    return datetime.combine(day, time(7), tzinfo=NORWAY)


def _updated_one_afternoon(driver: LetterDriver) -> tuple[PersonKey, ContactRecord, datetime]:
    """An enrolled person's record as last updated at 15:30 in Oslo, long ago (after the review's hour)."""
    user = enrolled(driver)
    person = driver.key(user.identity_number)
    record = register(driver).find(person)
    assert record is not None
    afternoon = datetime.combine(date(2025, 3, 14), time(15, 30), tzinfo=NORWAY).astimezone(UTC)
    return person, replace(record, updated_at=afternoon, confirmed_at=None), afternoon


def test_the_daily_review_reminds_once_and_marks_stale_once_whatever_the_hour_of_the_last_update(
    driver: LetterDriver,
) -> None:
    """A record last updated in the afternoon: the run on the day its 16 months end comes before they
    end, and so does the run on the day its 18 months end. Neither may remind it a second time."""
    person, old, afternoon = _updated_one_afternoon(driver)
    table = driver.local.stack.refs["ContactRegisterTable"]
    driver.dynamodb.put_item(TableName=table, Item=contact_item(person, old))
    clock = MovableClock()
    review = wiring.contact_review(os.environ, clock=clock)
    runs: dict[date, tuple[int, int]] = {}
    days = [date_in_norway(afternoon + REMIND_AFTER) + timedelta(days=d) for d in range(-2, 4)]
    days += [date_in_norway(afternoon + STALE_AFTER) + timedelta(days=d) for d in range(-2, 4)]
    for day in days:
        clock.moment = _at_seven_in_oslo(day)
        runs[day] = (run := review.run()).reminded, run.stale
    reminded = [day for day, (reminders, _) in runs.items() if reminders]
    marked = [day for day, (_, stale) in runs.items() if stale]
    assert reminded == [date_in_norway(afternoon + REMIND_AFTER) + timedelta(days=1)]  # the first run after
    assert marked == [date_in_norway(afternoon + STALE_AFTER) + timedelta(days=1)]


def test_a_stale_review_dated_before_it_is_stale_does_not_remind_again(driver: LetterDriver) -> None:
    """A record scheduled for its stale marking on the date the 18 months end (as reviews were dated
    before), reviewed that morning, before they end: it is not reminded again, and is marked the next day."""
    person, old, afternoon = _updated_one_afternoon(driver)
    table = driver.local.stack.refs["ContactRegisterTable"]
    stale_day = (afternoon + STALE_AFTER).date()
    driver.dynamodb.put_item(
        TableName=table, Item=contact_item(person, old) | {"review_on": {"S": stale_day.isoformat()}}
    )
    clock = MovableClock(_at_seven_in_oslo(stale_day))
    review = wiring.contact_review(os.environ, clock=clock)
    assert review.run() == ReviewRun(0, 0, finished=True)
    clock.moment = _at_seven_in_oslo(stale_day + timedelta(days=1))
    assert review.run() == ReviewRun(0, 1, finished=True)


@pytest.mark.parametrize("confirmed", [True, False])
def test_a_confirmation_moves_the_review_on(driver: LetterDriver, confirmed: bool) -> None:
    """A record due for its reminder today, confirmed through the API: its next review is 16 months from
    the confirmation, and today's run reminds nobody (unconfirmed, it reminds the person)."""
    user = enrolled(driver)
    token = user.login()
    person = driver.key(user.identity_number)
    contacts = register(driver)
    record = contacts.find(person)
    assert record is not None
    old = replace(record, updated_at=record.updated_at - REMIND_AFTER, confirmed_at=None)
    table = driver.local.stack.refs["ContactRegisterTable"]
    driver.dynamodb.put_item(TableName=table, Item=contact_item(person, old))
    clock = MovableClock(_at_seven_in_oslo(old.review_on()))
    if confirmed:
        assert user.call("POST", "/v1/me/contact/confirm", token=token).status == 200
        now = contacts.find(person)
        assert now is not None
        item = driver.dynamodb.get_item(TableName=table, Key={"pk": {"S": person}})["Item"]
        assert item["review_on"] == {"S": now.review_on().isoformat()}
        assert now.review_on() > clock.now().date() + timedelta(days=365)
    review = wiring.contact_review(os.environ, clock=clock)
    assert review.run() == ReviewRun(0 if confirmed else 1, 0, finished=True)


def _read_when_stale(driver: LetterDriver) -> tuple[User, DynamoDbContactRegister, ContactRecord, date, ContactRecord]:
    """An enrolled person's record (as enrolled) gone stale, and the day and record the review read it by."""
    user = enrolled(driver)
    person = driver.key(user.identity_number)
    refs = driver.local.stack.refs
    contacts = DynamoDbContactRegister(
        driver.dynamodb, refs["ContactRegisterTable"], events_table=refs["SecurityEventsTable"]
    )
    record = contacts.find(person)
    assert record is not None
    old = replace(record, updated_at=record.updated_at - STALE_AFTER - timedelta(days=1), confirmed_at=None)
    driver.dynamodb.put_item(TableName=refs["ContactRegisterTable"], Item=contact_item(person, old))
    due = old.review_on()
    [(found, as_read)] = contacts.due_for_review(due)
    assert found == person
    return user, contacts, record, due, as_read


def test_the_review_marks_a_record_whose_reservation_changed_after_it_was_read(driver: LetterDriver) -> None:
    """The review judges by the last confirmation alone: a reservation made meanwhile refused its write,
    and the record stayed on a day the review never looks at again, never marked stale."""
    user, contacts, record, due, as_read = _read_when_stale(driver)
    person = driver.key(user.identity_number)
    refs = driver.local.stack.refs
    assert body(user.call("PUT", "/v1/me/reservation", {"reserved": True}, user.login()))["reserved"] is True

    stale = SecurityEvent(SecurityEventType.CONTACT_STALE, record.updated_at, "review")
    assert contacts.schedule_review(person, (due, as_read), None, record.updated_at, [stale])
    item = driver.dynamodb.get_item(TableName=refs["ContactRegisterTable"], Key={"pk": {"S": person}})["Item"]
    assert "marked_stale_at" in item
    assert item["reserved"] == {"BOOL": True}  # the reservation stands


def test_the_review_leaves_a_record_confirmed_after_it_was_read(driver: LetterDriver) -> None:
    """The review reads the index (eventually consistent) and judges what it read: a record the person
    confirmed meanwhile is not marked stale, and its new review date stands."""
    user, contacts, record, due, as_read = _read_when_stale(driver)
    person = driver.key(user.identity_number)
    refs = driver.local.stack.refs
    assert user.call("POST", "/v1/me/contact/confirm", token=user.login()).status == 200  # meanwhile

    stale = SecurityEvent(SecurityEventType.CONTACT_STALE, record.updated_at, "review")
    assert not contacts.schedule_review(person, (due, as_read), None, record.updated_at, [stale])
    assert not contacts.schedule_review(person, (due, as_read), due + timedelta(days=60), None)
    item = driver.dynamodb.get_item(TableName=refs["ContactRegisterTable"], Key={"pk": {"S": person}})["Item"]
    assert "marked_stale_at" not in item
    confirmed = contacts.find(person)
    assert confirmed is not None
    assert item["review_on"]["S"] == confirmed.review_on().isoformat()
    kinds = [e.type.value for e in security_events(driver).page(person, None, 100).events]
    assert "contact-stale" not in kinds


def test_the_review_reads_by_the_index_and_never_scans(driver: LetterDriver) -> None:
    enrolled(driver)
    with injected_faults() as faults:
        faults.add("dynamodb", "Scan", times=1000)  # a Scan would fail the review
        assert wiring.contact_review(os.environ).run() == ReviewRun(0, 0, finished=True)
    assert faults.injected == []


# ---------------------------------------------------------------------- notices through an outage
@pytest.mark.parametrize("queue", ["NoticeQueue", "ReminderQueue"])
def test_a_notice_that_failed_is_put_off_by_the_notifier(driver: LetterDriver, queue: str) -> None:
    """Put off longer the more often it failed (retry_after: 1, 2, 4, 8, then 15 minutes): at the queue's
    own minute, 15 receives dead-lettered a notice in a quarter of an hour of an outage. Here through the
    queue: the notifier's own call, on the message's real receipt, is made and taken (the local stack's
    poller then hands the message out again at once, for the test's sake); in the queue it came from."""
    user = enrolled(driver, mobile="93456780")
    driver.notices_delivered()  # the enrolment's own notice: not the one to fail
    calls: list[tuple[str, dict[str, Any], Exception | None]] = []
    with injected_faults() as faults:
        faults.add("sns", "Publish", code="ServiceUnavailable", status=503, elsewhere=True)
        send = BaseClient._make_api_call  # type: ignore[attr-defined]  # the faults' own

        def recorded(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
            try:
                answer = send(client, operation, params)
            except Exception as error:
                calls.append((operation, params, error))
                raise
            calls.append((operation, params, None))
            return answer

        with mock.patch.object(BaseClient, "_make_api_call", recorded):
            person = driver.key(user.identity_number)
            notice_queue(driver, queue).enqueue(password_changed(driver, "put-off", person))
            told = wait_for(lambda: sms_to(driver, "+4793456780"), lambda sent: any("Passordet" in t for t in sent))
        assert faults.injected == [("sns", "Publish", "ServiceUnavailable")]
    assert len([t for t in told if "Passordet" in t]) == 1  # delivered once, on a later receive
    put_off = [(params, error) for operation, params, error in calls if operation == "ChangeMessageVisibility"]
    by_notifier = [(params, error) for params, error in put_off if params["VisibilityTimeout"] == RETRY_FIRST_SECONDS]
    assert len(by_notifier) == 1
    params, error = by_notifier[0]
    assert error is None  # taken: its receipt was the message's own
    assert params["QueueUrl"] == driver.local.stack.refs[queue]


@pytest.mark.parametrize(("service", "operation"), [("sns", "Publish"), ("sesv2", "SendEmail")])
def test_a_notice_survives_a_provider_outage(driver: LetterDriver, service: str, operation: str) -> None:
    user = enrolled(driver, mobile="93456789", email="kari.outage@example.no")
    queue = notice_queue(driver)
    before_sms, before_mail = len(driver.local.outbox.sms()), len(driver.local.outbox.emails())
    with injected_faults() as faults:
        faults.add(service, operation, code="ServiceUnavailable", status=503, times=3)
        queue.enqueue(password_changed(driver, "outage-test", driver.key(user.identity_number)))
        wait_for(lambda: faults.injected, lambda injected: len(injected) == 3, timeout=20)
    outbox = wait_for(
        driver.local.outbox.snapshot,
        lambda o: len(o["sms"]) > before_sms and len(o["emails"]) > before_mail,
        timeout=20,
    )
    # delivered on both channels, once each: the channel that worked was not sent again
    assert len([m for m in outbox["sms"][before_sms:] if "passordet" in m["message"].lower()]) == 1
    assert len([m for m in outbox["emails"][before_mail:] if "passordet" in m["subject"].lower()]) == 1


def test_an_empty_object_is_no_body_where_none_is_taken(driver: LetterDriver) -> None:
    """Some clients send {} with every POST: where a route takes no body, that is none (a body with
    anything in it is refused: test_bad_input_is_refused_with_a_problem_and_changes_nothing)."""
    user = enrolled(driver)
    token = user.login()
    confirmed = user.call("POST", "/v1/me/contact/confirm", {}, token)
    assert confirmed.status == 200, confirmed.body
    refused = user.call("POST", "/v1/me/contact/confirm", {"mobile": "91234567"}, token)
    assert refused.status == 422
    assert json.loads(refused.body)["errors"] == [{"field": "body", "message": NO_BODY}]
    assert user.call("POST", "/v1/logout", {}, token).status == 204
    assert user.call("GET", "/v1/me", token=token).status == 401

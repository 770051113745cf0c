"""Notices on moto: a send the delivery ledger cannot be told of, and a block of letters the person made."""

from __future__ import annotations

import contextlib
import http.server
import inspect
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
    SSLError,
)

from functions.notifier.app import RECORDING_KEPT_SECONDS
from local.faults import injected_faults
from minid import wiring
from minid.adapters.dynamodb import from_item, iso
from minid.adapters.notices import DynamoDbDeliveryLedger, SnsSmsSender
from minid.attempts import CONNECT_SECONDS, READ_SECONDS
from minid.deadline import MARGIN_SECONDS, OutOfTime, within
from minid.domain.keys import PersonKey
from minid.domain.notices import (
    MARK_SENT_TRIES,
    RETRY_CODE_SECONDS,
    RETRY_FIRST_SECONDS,
    Channel,
    Claim,
    Delivered,
    MaybeSent,
    NoticeInFlight,
    NoticeKind,
    Undeliverable,
    notice_from_json,
)
from tests.conftest import load_event
from tests.integration.letters import LetterDriver, on_functions_clients, password_changed, registered_dead
from tests.integration.users import enrolled

CHANGED = "Passordet ditt er endret"


def password_changed_message(driver: LetterDriver, notice_id: str, person: str) -> dict[str, Any]:
    """The queue message of a password change's notice whose event is written (as MinID queues it)."""
    told = password_changed(driver, notice_id, PersonKey(person))
    assert told.proof is not None
    proof = {"type": told.proof.type.value, "at": told.proof.at.isoformat(), "reference": told.proof.reference}
    return {"notice_id": notice_id, "kind": told.kind.value, "person": person, "proof": proof}


def sms_to(driver: LetterDriver, number: str, saying: str) -> list[str]:
    return [m["message"] for m in driver.local.outbox.sms() if m["to"] == number and saying in m["message"]]


def emails_to(driver: LetterDriver, address: str, saying: str) -> list[str]:
    return [m["body"] for m in driver.local.outbox.emails() if m["to"] == address and saying in m["body"]]


def ledger_state(driver: LetterDriver, notice_id: str, channel: Channel) -> str | None:
    item = driver.dynamodb.get_item(
        TableName=driver.local.stack.refs["ChallengesTable"], Key={"pk": {"S": f"notice#{notice_id}#{channel}"}}
    ).get("Item")
    return from_item(item).get("state") if item else None


def test_a_send_the_ledger_cannot_be_told_of_does_not_skip_the_e_mail(driver: LetterDriver) -> None:
    """SNS took the SMS, and DynamoDB then failed the ledger's write past the SDK's retries and the
    delivery's own: the e-mail is sent all the same, and the notice is done (delivered again, it would
    send the SMS again once its claim lapsed)."""
    user = enrolled(driver, mobile="91234581", email="kari.unrecorded@example.no")
    notifier = wiring.notifier(os.environ)
    notice = password_changed(driver, "unrecorded-test", driver.key(user.identity_number))
    with injected_faults() as faults:
        faults.add(
            "dynamodb",
            "UpdateItem",
            code="ProvisionedThroughputExceededException",
            status=400,
            times=MARK_SENT_TRIES,
            here=True,
        )
        delivered = notifier.deliver(notice)
    assert faults.injected == [("dynamodb", "UpdateItem", "ProvisionedThroughputExceededException")] * MARK_SENT_TRIES
    assert delivered == Delivered([Channel.SMS, Channel.EMAIL], unrecorded=[Channel.SMS])
    assert len(sms_to(driver, "+4791234581", CHANGED)) == 1
    assert len(emails_to(driver, "kari.unrecorded@example.no", CHANGED)) == 1
    assert ledger_state(driver, notice.notice_id, Channel.SMS) == "sending"
    assert ledger_state(driver, notice.notice_id, Channel.EMAIL) == "sent"


def test_a_write_of_a_send_that_fails_once_is_made_again(driver: LetterDriver) -> None:
    user = enrolled(driver, mobile="91234582", email=None)
    notifier = wiring.notifier(os.environ)
    notice = password_changed(driver, "unrecorded-once", driver.key(user.identity_number))
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", code="ProvisionedThroughputExceededException", status=400, here=True)
        assert notifier.deliver(notice) == Delivered([Channel.SMS])
    assert ledger_state(driver, notice.notice_id, Channel.SMS) == "sent"
    assert notifier.deliver(notice) == Delivered()  # delivered again: not sent again
    assert len(sms_to(driver, "+4791234582", CHANGED)) == 1


def test_a_send_whose_answer_never_came_is_not_sent_again_until_its_claim_lapses(driver: LetterDriver) -> None:
    """SNS took the SMS and its answer was lost (a read timing out): the message may be out. The claim is
    kept, so the deliveries meanwhile (a notice comes back in a minute, a reset's code every 15 seconds)
    send nothing; once it lapses, the SMS is sent again, once (a duplicate, at most one a lease)."""
    user = enrolled(driver, mobile="91234585", email=None)
    notifier = wiring.notifier(os.environ)
    notice = password_changed(driver, "answer-lost", driver.key(user.identity_number))
    with injected_faults() as faults:
        faults.add("sns", "Publish", after="lost", here=True)
        with pytest.raises(MaybeSent):
            notifier.deliver(notice)
    assert len(sms_to(driver, "+4791234585", CHANGED)) == 1
    assert ledger_state(driver, notice.notice_id, Channel.SMS) == "sending"
    for _ in range(3):
        with pytest.raises(NoticeInFlight):
            notifier.deliver(notice)
    assert len(sms_to(driver, "+4791234585", CHANGED)) == 1
    driver.dynamodb.update_item(  # the claim's lease run out
        TableName=driver.local.stack.refs["ChallengesTable"],
        Key={"pk": {"S": f"notice#{notice.notice_id}#{Channel.SMS}"}},
        UpdateExpression="SET lease_until = :past",
        ExpressionAttributeValues={":past": {"S": iso(datetime.now(UTC) - timedelta(seconds=1))}},
    )
    assert notifier.deliver(notice) == Delivered([Channel.SMS])
    assert notifier.deliver(notice) == Delivered()
    assert len(sms_to(driver, "+4791234585", CHANGED)) == 2


def test_a_send_refused_for_now_is_sent_at_the_next_delivery(driver: LetterDriver) -> None:
    """A provider's error answered (throttled): not sent, and the claim released at once for the next."""
    user = enrolled(driver, mobile="91234586", email=None)
    notifier = wiring.notifier(os.environ)
    notice = password_changed(driver, "throttled", driver.key(user.identity_number))
    with injected_faults() as faults:
        faults.add("sns", "Publish", code="Throttling", status=400, times=3, here=True)
        with pytest.raises(ClientError):
            notifier.deliver(notice)
    assert ledger_state(driver, notice.notice_id, Channel.SMS) is None
    assert notifier.deliver(notice) == Delivered([Channel.SMS])
    assert len(sms_to(driver, "+4791234586", CHANGED)) == 1


def test_a_channel_sent_on_by_a_delivery_that_then_fails_is_told_as_it_happens(
    driver: LetterDriver, caplog: pytest.LogCaptureFixture
) -> None:
    """The SMS went and SES failed: the notifier's log says the SMS went (the delivery again skips it, and
    says only what it sends), beside the failure and the notice's kind."""
    user = enrolled(driver, mobile="91234589", email="kari.partly@example.no")
    driver.notices_delivered()  # the welcome
    sample = load_event("notifier/notice")["Records"][0]
    notice = password_changed_message(driver, "partly", driver.key(user.identity_number))
    records = [sample | {"messageId": "partly", "body": json.dumps(notice)}]
    notifier = driver.local.functions.by_logical_id["NotifierFunction"]
    with injected_faults() as faults:
        faults.add("sesv2", "SendEmail", code="AccessDeniedException", status=400, here=True)
        assert notifier.invoke({"Records": records}) == {"batchItemFailures": [{"itemIdentifier": "partly"}]}
    assert faults.injected == [("sesv2", "SendEmail", "AccessDeniedException")]
    (partly,) = [r for r in caplog.records if r.getMessage() == "Notice partly delivered"]
    assert (partly.notice, partly.channels, partly.refused) == ("password-changed", ["sms"], [])  # type: ignore[attr-defined]
    (failed,) = [r for r in caplog.records if r.getMessage() == "Notice not delivered yet"]
    assert (failed.notice, failed.error) == ("password-changed", "ClientError")  # type: ignore[attr-defined]
    caplog.clear()
    assert notifier.invoke({"Records": records}) == {"batchItemFailures": []}
    (delivered,) = [r for r in caplog.records if r.getMessage() == "Notice delivered"]
    assert delivered.channels == ["email"]  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if r.getMessage() == "Notice partly delivered"]
    assert len(sms_to(driver, "+4791234589", CHANGED)) == 1
    assert len(emails_to(driver, "kari.partly@example.no", CHANGED)) == 1


def test_a_request_whose_code_s_answer_never_came_is_answered_503(driver: LetterDriver) -> None:
    """As for any AWS call that timed out: the client tries again (its code may have come)."""
    user = enrolled(driver, mobile="91234587", email=None)
    with injected_faults() as faults:
        faults.add("sns", "Publish", after="lost", here=True)  # the request's, not a notice's meanwhile
        started = user.start_login()
    assert started.status == 503, started.body


class _Sns(http.server.BaseHTTPRequestHandler):
    """An SNS of the test's: `mode` "throttled" throttles the first publish and takes the next; "closed"
    closes each connection once it has read the request (the SMS maybe out, its answer lost); "failed"
    answers 500 (its own failure, maybe after it handed the SMS on), "failed slowly" after 1.5 s, and
    "failed, then refused" refuses the number at the retry."""

    answers: ClassVar[list[int]] = []
    mode: ClassVar[str] = "throttled"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        _Sns.answers.append(1)
        if _Sns.mode == "closed":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if _Sns.mode == "failed slowly":
            time.sleep(1.5)
        error = {"throttled": (400, b"Throttling")}.get(_Sns.mode, (500, b"InternalError"))
        if _Sns.mode == "failed, then refused" and len(_Sns.answers) > 1:
            error = (400, b"InvalidParameter</Code><Message>Invalid parameter: PhoneNumber Reason: not valid")
        if _Sns.mode != "throttled" or len(_Sns.answers) == 1:
            message = b"" if b"<Message>" in error[1] else b"</Code><Message>m"
            body = b"<ErrorResponse><Error><Type>Sender</Type><Code>%s%s</Message></Error>" % (error[1], message)
            body += b"<RequestId>r</RequestId></ErrorResponse>"
            status = error[0]
        else:
            body, status = b"<PublishResponse><PublishResult><MessageId>m</MessageId></PublishResult>", 200
            body += b"</PublishResponse>"
        self.send_response(status)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@contextlib.contextmanager
def _sns_of_the_test(monkeypatch: pytest.MonkeyPatch, *, delivered: bool = True) -> Iterator[SnsSmsSender]:
    """The functions' own SNS client (as wired: the notifier's, if `delivered`), over HTTP to _Sns."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sns)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield SnsSmsSender(wiring.client("sns", delivered=delivered), "MinID")
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("mode", "attempts"), [("throttled", 2), ("closed", 1), ("failed", 1)])
def test_the_sdk_retries_a_notice_s_send_that_sent_nothing_and_never_one_that_may_have(
    driver: LetterDriver, monkeypatch: pytest.MonkeyPatch, mode: str, attempts: int
) -> None:
    """The notifier's: a throttled publish (nothing sent) is retried by the SDK and taken; one whose
    connection closed after its request, or answered 500 (the SMS maybe out), is made once and raised as
    MaybeSent: the SDK's retry would be a second message, and the notifier's next delivery another."""
    _Sns.answers, _Sns.mode = [], mode
    with _sns_of_the_test(monkeypatch) as sender:
        if mode == "throttled":
            sender.send_sms("+4791234589", "Koden din er 123456")
        else:
            with pytest.raises(MaybeSent):
                sender.send_sms("+4791234589", "Koden din er 123456")
    assert len(_Sns.answers) == attempts


def test_the_notifier_s_senders_are_its_own_and_a_request_s_are_not(driver: LetterDriver) -> None:
    """As made: the notifier's SMS and e-mail clients stop a retry that may send again; a request's note it."""
    notifier: Any = wiring.notifier(os.environ)
    login: Any = wiring.login(os.environ).login

    def first_of(client: Any, operation: str) -> str:
        return str(client.meta.events._emitter._handlers.prefix_search(f"needs-retry.{operation}")[0].__name__)

    assert first_of(notifier._sms._client, "sns.Publish") == "no_second_message"
    assert first_of(notifier._email._client, "sesv2.SendEmail") == "no_second_message"
    assert first_of(login._sms._client, "sns.Publish") == "note_maybe_sent"


@pytest.mark.parametrize(
    ("failure", "maybe"),
    [
        (SSLError(endpoint_url="https://sns", error=OSError("bad record mac")), True),
        (HTTPClientError(error=OSError("connection reset by peer")), True),
        (EndpointConnectionError(endpoint_url="https://sns"), False),
        (ConnectTimeoutError(endpoint_url="https://sns"), False),
        (SSLError(endpoint_url="https://sns", error=ssl.SSLCertVerificationError("not trusted")), False),
        (KeyError("a test double's own fault"), None),  # no connection's: raised as it is, never retried
    ],
)
@pytest.mark.parametrize("delivered", [True, False])
def test_a_broken_connection_may_have_sent_and_one_never_made_did_not(
    driver: LetterDriver, failure: Exception, maybe: bool | None, delivered: bool
) -> None:
    """A TLS session or connection that broke may have done so after the request went: the notifier's send
    is not made again (MaybeSent, the claim kept: a code's SMS never given up on for its e-mail), and a
    request's is told as one that may have gone out. A connection never made sent nothing: the SDK's
    retries are made, and what they end with proves that nothing went."""
    client: Any = wiring.client("sns", delivered=delivered)
    tried: list[int] = []

    def broken(**_: Any) -> None:
        tried.append(1)
        raise failure

    client.meta.events.register_first("before-send.sns.Publish", broken)
    sender = SnsSmsSender(client, "MinID")
    with pytest.raises(Exception) as raised:  # noqa: PT011  (which one is what is judged)
        sender.send_sms("+4791234589", "Koden din er 123456")
    if maybe is None:
        assert (raised.value, len(tried)) == (failure, 1)
        return
    assert isinstance(raised.value, MaybeSent) is maybe
    assert len(tried) == (1 if maybe and delivered else 4)  # a request's client keeps the SDK's retries
    if not maybe:
        assert SnsSmsSender.may_give_up_on(raised.value)


def test_a_request_s_code_send_that_may_have_gone_out_is_told_so_however_it_ends(
    driver: LetterDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SNS answered 500 (the SMS maybe out), and the SDK's retry is refused by the invocation's deadline
    (it would end after it): the send ends as out of time, and is told as one that may have gone out (a
    resend's code stands, not the one it replaced)."""
    _Sns.answers, _Sns.mode = [], "failed slowly"
    attempt = int((CONNECT_SECONDS + READ_SECONDS + MARGIN_SECONDS) * 1000)
    with _sns_of_the_test(monkeypatch, delivered=False) as sender:
        assert sender._client.meta.service_model  # the client made before the clock runs
        left = _Left(attempt + 1200)  # time for one attempt, not for a retry after the 1.5 s it takes
        with within(left), pytest.raises(MaybeSent) as raised:
            sender.send_sms("+4791234589", "Koden din er 123456")
    assert len(_Sns.answers) == 1
    assert isinstance(raised.value.__context__, OutOfTime)
    assert getattr(raised.value, "cause", None) == "OutOfTime"  # what the logs tell of it: how it ended


def test_a_number_refused_at_the_sdk_s_retry_is_refused_though_an_attempt_before_may_have_sent(
    driver: LetterDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SNS checks a number before it hands a message on: refused at the retry, it was never sent by the
    attempt before either (whose 500 was noted). The person is told to choose another way, not a 503."""
    _Sns.answers, _Sns.mode = [], "failed, then refused"
    with _sns_of_the_test(monkeypatch, delivered=False) as sender, pytest.raises(Undeliverable):
        sender.send_sms("+4791234589", "Koden din er 123456")
    assert len(_Sns.answers) == 2


@dataclass
class _Left:
    """An invocation's context, as minid.deadline reads it: the time left when it began."""

    millis: int
    began: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return self.millis - int((time.monotonic() - self.began) * 1000)


def test_a_request_s_code_send_keeps_the_sdk_s_retries(driver: LetterDriver, monkeypatch: pytest.MonkeyPatch) -> None:
    """A login's, an enrolment's or a contact change's: the SDK's retry sends the same code again (which
    works), where a 503 would have the client ask for another; the last attempt's answer lost is still
    told as MaybeSent (a resend's code then stands)."""
    _Sns.answers, _Sns.mode = [], "closed"
    with _sns_of_the_test(monkeypatch, delivered=False) as sender, pytest.raises(MaybeSent):
        sender.send_sms("+4791234589", "Koden din er 123456")
    assert len(_Sns.answers) == 1 + 3  # the first, and the SDK's three retries


def test_answers_lost_do_not_spend_the_sdk_s_retry_quota(driver: LetterDriver, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each retry the SDK makes takes from its client's quota (14 of 500), given back only by a retry that
    succeeds: a lost answer, not retried, must not take any (judged by the SDK's own handler's quota), or
    a slow hour of SNS would leave the client retrying hardly a throttle."""
    with _sns_of_the_test(monkeypatch) as sender:
        client: Any = sender._client
        (retry,) = [  # the SDK's own (within minid.deadline.waits_held's)
            inspect.unwrap(handler).__self__
            for handler in client.meta.events._emitter._handlers.prefix_search("needs-retry.sns.Publish")
            if getattr(handler, "__name__", "") == "needs_retry"
        ]
        quota = retry._retry_quota._quota
        before = quota.available_capacity
        _Sns.answers, _Sns.mode = [], "closed"
        for _ in range(3):
            with pytest.raises(MaybeSent):
                sender.send_sms("+4791234589", "Koden din er 123456")
    assert quota.available_capacity == before


def test_a_block_of_the_letters_the_person_made_is_told_once(driver: LetterDriver) -> None:
    """One who took over a session must not block the letters unseen: the person is told, once."""
    user = enrolled(driver, mobile="91234583", email="kari.blocked@example.no")
    token = user.login()
    blocked = user.call("POST", "/v1/me/pin-letters/block", token=token)
    assert blocked.status == 200
    assert [x["status"] for x in json.loads(blocked.body)["letters"]] == ["blocked"]
    assert user.call("POST", "/v1/me/pin-letters/block", token=token).status == 200  # nothing more to tell
    driver.notices_delivered()
    told = sms_to(driver, "+4791234583", "PIN-kodene dine til MinID ble sperret")
    assert len(told) == 1
    assert "slik du ba om" in told[0]
    assert sms_to(driver, "+4791234583", "fem ganger") == []
    assert len(emails_to(driver, "kari.blocked@example.no", "slik du ba om")) == 1


def test_the_contacts_of_a_person_registered_dead_are_told_nothing(driver: LetterDriver) -> None:
    """As the daily review reminds the dead of nothing: their number or address may be someone else's now
    (the fifth wrong PIN code on a dead person's letter, say, would tell them of the block)."""
    user = enrolled(driver, mobile="91234584", email="kari.dead@example.no")
    registered_dead(driver, user.identity_number)
    notifier = wiring.notifier(os.environ)
    notice = password_changed(driver, "dead-test", driver.key(user.identity_number))
    assert notifier.deliver(notice) == Delivered()
    assert sms_to(driver, "+4791234584", CHANGED) == []
    assert emails_to(driver, "kari.dead@example.no", CHANGED) == []


def test_only_a_notice_queued_before_its_change_waits_the_deployed_proof_delay(driver: LetterDriver) -> None:
    """Deployed, a notice queued before its change is written (the reset done, told with its event as the
    proof) waits NoticeProofDelaySeconds, so that the notifier usually finds the change made; a reset's
    code, which has no change to wait for and 10 minutes to live, is sent at once. (The local stack's
    delay is 0: here the deployed default, as the functions read it.)"""
    user = enrolled(driver, mobile="91234581")
    deployed = int(driver.local.template.document["Parameters"]["NoticeProofDelaySeconds"]["Default"])
    assert deployed > 0
    services = wiring.login(os.environ | {"NOTICE_PROOF_DELAY_SECONDS": str(deployed)})
    sent: list[dict[str, Any]] = []
    with on_functions_clients(("before-parameter-build.sqs.SendMessage", lambda params, **_: sent.append(params))):
        reset = services.resets.start(user.identity_number, "198.51.100.7")
        driver.resets_started.append(reset.reset_id)  # for the code to be waited for
        code = user.last_sms_code()
        services.resets.complete(reset.reset_id, user.codes[str(reset.pin_index)], code, "ny frase i dag")
    refs = driver.local.stack.refs
    queued = [(m["QueueUrl"], notice_from_json(m["MessageBody"]).kind, m["DelaySeconds"]) for m in sent]
    assert queued == [
        (refs["CodeQueue"], NoticeKind.PASSWORD_RESET_CODE, 0),
        (refs["NoticeQueue"], NoticeKind.PASSWORD_RESET, deployed),
    ]


def test_what_the_delivery_ledger_could_not_be_told_is_logged(
    driver: LetterDriver, caplog: pytest.LogCaptureFixture
) -> None:
    """DynamoDB failing at every try of a ledger write the delivery does not fail on: a refusal it could not
    record is logged (a later delivery may try the number again), as is a claim it could not release beside
    the send's own failure (the channel waits for the claim to lapse)."""
    user = enrolled(driver, mobile="91234585")
    driver.notices_delivered()  # the welcome
    queue = driver.local.stack.attributes["NoticeQueue"]["Arn"]
    sample = load_event("notifier/notice")["Records"][0] | {"eventSourceARN": queue}
    notifier = driver.local.functions.by_logical_id["NotifierFunction"]
    person = driver.key(user.identity_number)
    refused = [sample | {"messageId": "refused", "body": json.dumps(password_changed_message(driver, "r", person))}]
    marking = lambda params: params.get("ExpressionAttributeValues", {}).get(":state") == {"S": "refused"}  # noqa: E731
    with injected_faults() as faults:
        faults.add(
            "sns",
            "Publish",
            code="InvalidParameter",
            status=400,
            message="Invalid parameter: PhoneNumber Reason: +4791234585 is not valid to publish to",
            here=True,
        )
        faults.add(
            "dynamodb",
            "UpdateItem",
            code="InternalServerError",
            status=500,
            here=True,
            where=marking,
            times=MARK_SENT_TRIES,
        )
        assert notifier.invoke({"Records": refused}) == {"batchItemFailures": []}
        assert len(faults.injected) == 1 + MARK_SENT_TRIES
    (logged,) = [r for r in caplog.records if r.getMessage() == "Notice refused but not recorded"]
    assert (logged.notice, logged.channels) == ("password-changed", ["sms"])  # type: ignore[attr-defined]

    failing = [sample | {"messageId": "failing", "body": json.dumps(password_changed_message(driver, "f", person))}]
    with injected_faults() as faults:
        faults.add("sns", "Publish", code="ServiceUnavailable", status=503, here=True)
        faults.add("dynamodb", "DeleteItem", code="InternalServerError", status=500, here=True, times=MARK_SENT_TRIES)
        assert notifier.invoke({"Records": failing}) == {"batchItemFailures": [{"itemIdentifier": "failing"}]}
        assert len(faults.injected) == 1 + MARK_SENT_TRIES
    (failed,) = [r for r in caplog.records if r.getMessage() == "Notice not delivered yet"]
    assert failed.undone == ["The channel's claim was not released"]  # type: ignore[attr-defined]
    assert ledger_state(driver, "f", Channel.SMS) == "sending"  # until it lapses


def test_a_notice_is_put_off_even_with_no_time_left_for_a_whole_attempt(
    driver: LetterDriver, caplog: pytest.LogCaptureFixture
) -> None:
    """Its delivery refused by the deadline (no time left), the notice is still put off: the call is made
    (moto refuses this sample's receipt handle, which is how it shows). Under the deadline, whose budget is
    a whole attempt's, notices failing after slow sends would come back every minute and be dead-lettered
    in a quarter of an hour, not three."""
    user = enrolled(driver, mobile="91234592")
    driver.notices_delivered()  # the welcome
    sample = load_event("notifier/notice")["Records"][0]
    notice = password_changed_message(driver, "no-time", driver.key(user.identity_number))
    queue = driver.local.stack.attributes["NoticeQueue"]["Arn"]
    records = [sample | {"messageId": "no-time", "body": json.dumps(notice), "eventSourceARN": queue}]
    notifier = driver.local.functions.by_logical_id["NotifierFunction"]
    assert notifier.invoke({"Records": records}, 0) == {"batchItemFailures": [{"itemIdentifier": "no-time"}]}
    (failed,) = [r for r in caplog.records if r.getMessage() == "Notice not delivered yet"]
    assert failed.__dict__.get("error") == "OutOfTime"
    (not_put_off,) = [r for r in caplog.records if r.getMessage() == "Notice retry not put off"]
    assert not_put_off.__dict__.get("error") == "ReceiptHandleIsInvalid"  # sent, refused by moto: not OutOfTime


@pytest.mark.parametrize(("queue", "wait"), [("NoticeQueue", RETRY_FIRST_SECONDS), ("CodeQueue", RETRY_CODE_SECONDS)])
def test_a_message_that_cannot_be_read_is_put_off_as_its_queue_paces_its_own(
    driver: LetterDriver, caplog: pytest.LogCaptureFixture, queue: str, wait: int
) -> None:
    """A message that is no notice (a producer's fault) is put off as the queue it came from paces its
    own: in the reset codes' queue, which keeps them a quarter of an hour, 15 s (it used to wait there as a
    notice does, 1, 2, then 4 minutes); known by its queue's ARN, the put-off made on its URL."""
    sample = load_event("notifier/notice")["Records"][0]
    arn = driver.local.stack.attributes[queue]["Arn"]
    records = [sample | {"messageId": "unread", "body": '{"kind": "no-such-kind"}', "eventSourceARN": arn}]
    notifier = driver.local.functions.by_logical_id["NotifierFunction"]
    put_off: list[dict[str, Any]] = []
    watched = ("before-parameter-build.sqs.ChangeMessageVisibility", lambda params, **_: put_off.append(params))
    with on_functions_clients(watched):
        assert notifier.invoke({"Records": records}) == {"batchItemFailures": [{"itemIdentifier": "unread"}]}
    assert [(p["QueueUrl"], p["VisibilityTimeout"]) for p in put_off] == [(driver.local.stack.refs[queue], wait)]
    (failed,) = [r for r in caplog.records if r.getMessage() == "Notice not delivered yet"]
    assert failed.__dict__.get("error") == "ValueError"
    assert "notice" not in failed.__dict__


def test_a_notice_is_not_sent_in_the_time_kept_for_recording_sends(
    driver: LetterDriver, caplog: pytest.LogCaptureFixture
) -> None:
    """The notifier's last seconds are kept for the writes that record a send (exempt from the deadline:
    with DynamoDB hanging, they take that long): a notice whose send would fall in them is put off, not
    sent with too little time left to record it (Lambda stopping the function: sent again later)."""
    user = enrolled(driver, mobile="91234593")
    driver.notices_delivered()  # the welcome
    sms_before = len(driver.local.outbox.sms())
    sample = load_event("notifier/notice")["Records"][0]
    notice = password_changed_message(driver, "kept-time", driver.key(user.identity_number))
    queue = driver.local.stack.attributes["NoticeQueue"]["Arn"]
    records = [sample | {"messageId": "kept-time", "body": json.dumps(notice), "eventSourceARN": queue}]
    notifier = driver.local.functions.by_logical_id["NotifierFunction"]
    left = int(RECORDING_KEPT_SECONDS) + CONNECT_SECONDS + READ_SECONDS  # an attempt's, no more
    assert notifier.invoke({"Records": records}, left) == {"batchItemFailures": [{"itemIdentifier": "kept-time"}]}
    (failed,) = [r for r in caplog.records if r.getMessage() == "Notice not delivered yet"]
    assert failed.__dict__.get("error") == "OutOfTime"
    assert len(driver.local.outbox.sms()) == sms_before


def test_a_claim_the_sdk_sends_again_after_its_answer_was_lost_is_its_own(driver: LetterDriver) -> None:
    """The ledger's claim written, its answer lost, and the SDK's retry refused by the claim it made: read,
    the claim is this one's (sent now), not another's in flight (which would hold the notice back for the
    claim's lease and the queue's visibility: minutes of a reset code's ten). Whether it took over another's
    lapsed claim, the lost answer would have said: it is taken as one that did (a code's SMS not given up)."""
    ledger = DynamoDbDeliveryLedger(driver.dynamodb, driver.local.stack.refs["ChallengesTable"])
    now, lease = datetime.now(UTC), timedelta(minutes=2)
    with injected_faults() as faults:
        faults.add("dynamodb", "PutItem", after="retried", where=lambda p: p["Item"]["pk"]["S"] == "notice#n-1#sms")
        assert ledger.claim("n-1", Channel.SMS, now, lease) is Claim.CLAIMED_AFTER_ANOTHER
        assert faults.injected == [("dynamodb", "PutItem", "retried")]
    assert ledger.claim("n-1", Channel.SMS, now, lease) is Claim.IN_FLIGHT  # another's, while it is held


def test_a_channel_given_up_on_is_claimed_by_no_delivery_after(driver: LetterDriver) -> None:
    """A reset's code's mobile given up on (SNS failing for long, the code sent to the e-mail): claimed
    again, by the notice handed out again or a delivery beside it, even once its lease would have lapsed,
    it is as refused (nothing to send on it: the code goes to one channel), and read so."""
    ledger = DynamoDbDeliveryLedger(driver.dynamodb, driver.local.stack.refs["ChallengesTable"])
    now, lease = datetime.now(UTC), timedelta(minutes=2)
    assert ledger.claim("n-2", Channel.SMS, now, lease) is Claim.CLAIMED
    ledger.give_up("n-2", Channel.SMS, now)
    assert ledger.state_of("n-2", Channel.SMS) == "given_up"
    for later in (now, now + lease + timedelta(seconds=1)):
        assert ledger.claim("n-2", Channel.SMS, later, lease) is Claim.REFUSED


def test_a_channel_given_up_on_is_given_back_by_the_delivery_that_gave_it_up(driver: LetterDriver) -> None:
    """A code's mobile given up on, and its e-mail then failing too (nothing sent): the delivery releases
    the mobile again (NoticeDelivery._given_back), for the next delivery to try; kept given up, the code
    would reach no one. A ledger that never held the claim releases nothing."""
    table = driver.local.stack.refs["ChallengesTable"]
    ledger, other = DynamoDbDeliveryLedger(driver.dynamodb, table), DynamoDbDeliveryLedger(driver.dynamodb, table)
    now, lease = datetime.now(UTC), timedelta(minutes=2)
    assert ledger.claim("n-5", Channel.SMS, now, lease) is Claim.CLAIMED
    ledger.give_up("n-5", Channel.SMS, now)
    other.release("n-5", Channel.SMS)
    assert ledger.state_of("n-5", Channel.SMS) == "given_up"
    ledger.release("n-5", Channel.SMS)
    assert ledger.state_of("n-5", Channel.SMS) is None
    assert ledger.claim("n-5", Channel.SMS, now, lease) is Claim.CLAIMED


def test_a_claim_taken_over_from_one_that_lapsed_says_so_until_a_send_on_it_is_made(driver: LetterDriver) -> None:
    """Another's send may be out (its answer lost, its claim kept until it lapsed): the claim taken over
    says so; released after a failed send, it is left lapsed, not removed, so that the next claim says so
    too. A claim on nothing there before is a plain one."""
    ledger = DynamoDbDeliveryLedger(driver.dynamodb, driver.local.stack.refs["ChallengesTable"])
    now, lease = datetime.now(UTC), timedelta(minutes=2)
    assert ledger.claim("n-3", Channel.SMS, now, lease) is Claim.CLAIMED
    assert ledger.claim("n-3", Channel.SMS, now + lease / 2, lease) is Claim.IN_FLIGHT
    later = now + lease + timedelta(seconds=1)
    assert ledger.claim("n-3", Channel.SMS, later, lease) is Claim.CLAIMED_AFTER_ANOTHER
    ledger.release("n-3", Channel.SMS, after_another=True)
    assert ledger.state_of("n-3", Channel.SMS) == "sending"
    assert ledger.claim("n-3", Channel.SMS, later, lease) is Claim.CLAIMED_AFTER_ANOTHER
    ledger.release("n-3", Channel.SMS)
    assert ledger.state_of("n-3", Channel.SMS) is None
    assert ledger.claim("n-3", Channel.SMS, later, lease) is Claim.CLAIMED


def test_a_release_made_again_leaves_what_another_delivery_claimed_or_sent_meanwhile(driver: LetterDriver) -> None:
    """A delivery's release landed and its answer was lost; another delivery of the notice (a duplicate
    message) then claimed the channel and sent on it; the release made again (the SDK's, or the delivery's
    own retry) must not remove that send's record, or the notice handed out again would send once more.
    A release is of the ledger's own claim alone, still sending."""
    table = driver.local.stack.refs["ChallengesTable"]
    first, second = DynamoDbDeliveryLedger(driver.dynamodb, table), DynamoDbDeliveryLedger(driver.dynamodb, table)
    now, lease = datetime.now(UTC), timedelta(minutes=2)
    assert first.claim("n-4", Channel.SMS, now, lease) is Claim.CLAIMED
    with injected_faults() as faults:
        faults.add("dynamodb", "DeleteItem", after="lost", here=True, where=lambda p: "n-4" in p["Key"]["pk"]["S"])
        with pytest.raises(ReadTimeoutError):
            first.release("n-4", Channel.SMS)  # landed, its answer lost
    assert first.state_of("n-4", Channel.SMS) is None
    assert second.claim("n-4", Channel.SMS, now, lease) is Claim.CLAIMED
    first.release("n-4", Channel.SMS)  # made again: another's claim, left
    assert first.state_of("n-4", Channel.SMS) == "sending"
    second.mark_sent("n-4", Channel.SMS, now)
    assert first.claim("n-4", Channel.SMS, now, lease) is Claim.SENT


def _client_error(code: str, status: int) -> ClientError:
    answer: Any = {"Error": {"Code": code, "Message": ""}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(answer, "Publish")


def test_only_an_sms_failure_of_sns_s_that_proves_nothing_was_sent_may_be_given_up_on() -> None:
    """A code's SMS is given up on for its e-mail only where SNS failed and nothing went out: SNS refusing
    before it took the message (a 4xx, a 503), no connection made. Not a broken connection or TLS session
    after the request went (botocore's HTTPClientError, SSLError), nor a 5xx; nor the invocation's
    deadline refusing the attempt (SNS never asked: no sign of its failing)."""
    proven = [
        _client_error("Throttling", 400),
        _client_error("AuthorizationError", 403),
        _client_error("ServiceUnavailable", 503),
        EndpointConnectionError(endpoint_url="https://sns"),
        ConnectTimeoutError(endpoint_url="https://sns"),
    ]
    assert all(SnsSmsSender.may_give_up_on(error) for error in proven)
    unproven = [
        _client_error("InternalError", 500),
        _client_error("ServiceUnavailable", 502),
        _client_error("RequestTimeout", 408),
        SSLError(endpoint_url="https://sns", error=OSError("bad record mac")),
        HTTPClientError(error=OSError("connection reset")),
        ConnectionError("reset"),
        OutOfTime("no time left"),  # SNS not asked: the invocation's time ran out
    ]
    assert not any(SnsSmsSender.may_give_up_on(error) for error in unproven)

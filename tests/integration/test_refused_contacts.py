"""A contact the SMS provider refuses for good, and an e-mail provider that will not send for the account,
through the real handlers on moto: a clear answer where one is due, never a 500, nothing left half-done,
and no retry of what would be refused again."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.faults import Faults, injected_faults
from local.template import queue_sources
from minid import wiring
from minid.adapters.dynamodb import from_item, iso, to_item
from minid.domain.login import SMS_REFUSED
from minid.domain.notices import Channel, Delivered, notice_from_json
from minid.domain.password_reset import code_notice_id
from tests.integration.letters import LetterDriver, on_functions_clients, password_changed, wait_for
from tests.integration.users import MovableClock, User, enrolled, with_letter


def refuse_numbers(faults: Faults, times: int = 1, *, here: bool = True) -> None:
    """What SNS answers for a number it does not send to (its code is that of any invalid parameter), to
    the calls of this thread (a request served on it), or (`here` False) to the notifier's too."""
    faults.add(
        "sns",
        "Publish",
        code="InvalidParameter",
        status=400,
        times=times,
        message="Invalid parameter: PhoneNumber Reason: +4791234599 is not valid to publish to",
        here=here,
    )


def problem(response: Any) -> dict[str, Any]:
    assert response.header("content-type") == "application/problem+json"
    value: dict[str, Any] = json.loads(response.body)
    return value


def sms_to(driver: LetterDriver, number: str) -> list[str]:
    return [m["message"] for m in driver.local.outbox.sms() if m["to"] == number]


def test_an_enrolment_with_a_number_that_is_refused_is_told_so_and_can_go_on(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    enrolling = with_letter(driver)
    enrolling.start()
    capsys.readouterr()
    with injected_faults() as faults:
        refuse_numbers(faults)
        refused = enrolling.complete(mobile="91234599", email="kari.refused@example.no")
    assert '"SmsRefused":[1.0]' in capsys.readouterr().out  # counted for SmsRefusedAlarm (many: not the numbers)
    assert refused.status == 422
    answer = problem(refused)
    assert answer["type"] == "/problems/invalid-contact"
    assert [e["field"] for e in answer["errors"]] == ["mobile"]
    assert b"+4791234599" not in refused.body
    # nothing was kept: the same codes complete the enrolment with another number (no try spent)
    assert enrolling.complete(mobile="91234598", email="kari.refused@example.no").status == 202
    assert enrolling.verify(mobile_code=enrolling.last_code_to("+4791234598")).status == 202


def test_a_new_number_that_is_refused_leaves_the_contacts_as_they_were(driver: LetterDriver) -> None:
    user = enrolled(driver, mobile="91234597")
    token = user.login()
    with injected_faults() as faults:
        refuse_numbers(faults)
        refused = user.call("PUT", "/v1/me/contact", {"mobile": "912 34 599"}, token)
    assert (refused.status, problem(refused)["type"]) == (422, "/problems/invalid-contact")
    assert [e["field"] for e in problem(refused)["errors"]] == ["mobile"]
    contact = json.loads(user.call("GET", "/v1/me/contact", token=token).body)
    assert contact["mobile"] == "+4791234597"
    nothing = user.call("POST", "/v1/me/contact/verify", {"channel": "mobile", "code": "123456"}, token)
    assert nothing.status == 409  # no change waits for a code


def test_a_login_whose_code_is_refused_is_told_to_use_another_second_factor(driver: LetterDriver) -> None:
    user = enrolled(driver, mobile="91234596")
    with injected_faults() as faults:
        refuse_numbers(faults)
        refused = user.start_login()
    assert (refused.status, problem(refused)["detail"]) == (409, SMS_REFUSED)
    items = driver.dynamodb.scan(TableName=driver.local.stack.refs["ChallengesTable"])["Items"]
    attempts = [a for a in items if a["pk"]["S"].startswith("login#")]
    assert [a["status"]["S"] for a in attempts] == ["ended"]  # no login left open
    assert "code_hash" not in attempts[0]
    assert user.login(second_factor="pin")


def test_a_resend_whose_code_is_refused_gives_the_resend_back(driver: LetterDriver) -> None:
    user = enrolled(driver, mobile="91234595")
    login = json.loads(user.start_login().body)
    first = user.last_sms_code()
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["ChallengesTable"],
        Key=to_item({"pk": f"login#{login['login_id']}"}),
        UpdateExpression="SET codes_sent_at = :then",
        ExpressionAttributeValues=to_item({":then": iso(datetime.now(UTC) - timedelta(seconds=31))}),
    )
    with injected_faults() as faults:
        refuse_numbers(faults)
        refused = user.call("POST", f"/v1/login/{login['login_id']}/resend")
    assert (refused.status, problem(refused)["detail"]) == (409, SMS_REFUSED)
    assert user.verify(login["login_id"], first).status == 200  # the code sent before still holds


def test_a_login_whose_code_is_refused_is_told_so_though_its_end_fails(
    driver: LetterDriver, caplog: pytest.LogCaptureFixture
) -> None:
    """SNS refuses the number for good, and the write that ends the login fails too (DynamoDB, a moment):
    the answer is still the refusal's 409 (log in another way), not a 503 that has the person try again.
    The login left open is logged (the 409 says nothing of it)."""
    user = enrolled(driver, mobile="91234597")
    ending = lambda params: ":ended" in params.get("ExpressionAttributeValues", {})  # noqa: E731
    with injected_faults() as faults:
        refuse_numbers(faults)
        faults.add("dynamodb", "UpdateItem", code="ServiceUnavailable", status=503, here=True, where=ending)
        refused = user.start_login()
        assert [fault[:2] for fault in faults.injected] == [("sns", "Publish"), ("dynamodb", "UpdateItem")]
    assert (refused.status, problem(refused)["detail"]) == (409, SMS_REFUSED)
    (logged,) = [r for r in caplog.records if r.getMessage() == "Refused, with something left undone"]
    assert logged.undone == ["The login was not ended: ClientError"]  # type: ignore[attr-defined]
    assert logged.refusal == "SecondFactorUnavailable"  # type: ignore[attr-defined]


def test_a_resend_whose_code_is_refused_is_told_so_though_its_give_back_fails(
    driver: LetterDriver, caplog: pytest.LogCaptureFixture
) -> None:
    """SNS refuses the number for good, and the give-back of the resend fails too (DynamoDB, a moment):
    the answer is still the refusal's 409 (log in another way), not the give-back's 503 (try again), and the
    codes not given back are logged."""
    user = enrolled(driver, mobile="91234596")
    login = json.loads(user.start_login().body)
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["ChallengesTable"],
        Key=to_item({"pk": f"login#{login['login_id']}"}),
        UpdateExpression="SET codes_sent_at = :then",
        ExpressionAttributeValues=to_item({":then": iso(datetime.now(UTC) - timedelta(seconds=31))}),
    )
    giving_back = lambda params: params.get("ExpressionAttributeValues", {}).get(":before") == {"N": "1"}  # noqa: E731
    with injected_faults() as faults:
        refuse_numbers(faults)
        faults.add("dynamodb", "UpdateItem", code="ServiceUnavailable", status=503, here=True, where=giving_back)
        refused = user.call("POST", f"/v1/login/{login['login_id']}/resend")
        assert [fault[:2] for fault in faults.injected] == [("sns", "Publish"), ("dynamodb", "UpdateItem")]
    assert (refused.status, problem(refused)["detail"]) == (409, SMS_REFUSED)
    (logged,) = [r for r in caplog.records if r.getMessage() == "Refused, with something left undone"]
    assert logged.undone == ["A resend's codes were not given back: ClientError"]  # type: ignore[attr-defined]


def test_a_reset_start_waits_on_neither_sns_nor_ses(driver: LetterDriver) -> None:
    """The start stores the reset and queues its code, for a decoy as for a real one: SNS or SES slow,
    throttling or refusing shows in neither its answer nor its time, which would tell who has a MinID.
    The notifier sends the code."""
    user = enrolled(driver, mobile="91234594")
    with injected_faults() as faults:  # any send the request made itself would meet these
        faults.add("sns", "Publish", code="Throttling", status=400, times=5, here=True)
        faults.add("sesv2", "SendEmail", code="TooManyRequestsException", status=429, times=5, here=True)
        started = user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number})
        assert faults.injected == []
    assert started.status == 201
    reset = json.loads(started.body)
    assert sorted(reset) == ["expires_in", "pin_index", "reset_id", "second_factor"]
    completion = {"pin_code": user.codes[str(reset["pin_index"])], "code": user.last_sms_code()}
    done = user.call(
        "POST", f"/v1/password-resets/{reset['reset_id']}/complete", completion | {"new_password": "ny frase i dag"}
    )
    assert done.status == 204


def reset_started(user: User) -> list[dict[str, Any]]:
    """A password reset started for the user by the login function's services: the SQS messages it sent
    (their parameters, as the functions' clients were given them)."""
    sent: list[dict[str, Any]] = []

    def queued(params: dict[str, Any], **_: Any) -> None:
        sent.append(dict(params))

    with on_functions_clients(("before-parameter-build.sqs.SendMessage", queued)):
        wiring.login(os.environ).resets.start(user.identity_number, "198.51.100.7")
    return sent


def test_a_reset_code_is_queued_apart_from_the_notices(driver: LetterDriver) -> None:
    """In a queue of its own, which the notifier takes at once, one by one: never behind other notices, where
    the notifier's concurrency is held down (its code would expire on the way)."""
    user = enrolled(driver, mobile="91234593")
    queued = [message["QueueUrl"] for message in reset_started(user)]
    assert queued == [driver.local.stack.refs["CodeQueue"]]
    taken = [source for source in queue_sources(driver.local.template) if source.function == "NotifierFunction"]
    assert {source.queue["Fn::GetAtt"][0]: source.batch_size for source in taken} == {
        "NoticeQueue": 5,
        "CodeQueue": 1,
        "ReminderQueue": 5,
    }


def test_a_reset_code_come_after_it_expired_is_dropped_and_counted(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    """The person was told a code is on its way: one the notifier takes after its 10 minutes is not sent
    (it would only mislead), and the operators are told (ResetCodesTooLateAlarm)."""
    user = enrolled(driver, mobile="91234592")
    sent = len(sms_to(driver, "+4791234592"))
    capsys.readouterr()
    eleven_minutes_ago = MovableClock(datetime.now(UTC) - timedelta(minutes=11))
    wiring.login(os.environ, clock=eleven_minutes_ago).resets.start(user.identity_number, "198.51.100.7")
    counted = wait_for(capsys.readouterr, lambda out: '"ResetCodesTooLate":[1.0]' in out.out)
    assert counted
    assert len(sms_to(driver, "+4791234592")) == sent


def test_a_reset_code_sent_in_time_and_handed_out_again_after_it_expired_is_not_counted(driver: LetterDriver) -> None:
    """Its message not deleted in time (the notifier timed out after the send), the code comes back after
    its 10 minutes: sent already, it is done, and no false ResetCodesTooLateAlarm (the delivery ledger
    is asked)."""
    user = enrolled(driver, mobile="91234596")
    bodies = [message["MessageBody"] for message in reset_started(user)]
    driver.notices_delivered(queue_name="CodeQueue")
    sent = len(sms_to(driver, "+4791234596"))
    again = json.loads(bodies[-1])
    again["params"]["expires_at"] = iso(datetime.now(UTC) - timedelta(seconds=1))
    assert wiring.notifier(os.environ).deliver(notice_from_json(json.dumps(again))) == Delivered()
    assert len(sms_to(driver, "+4791234596")) == sent
    # refused by the provider for good then (counted so): done, too
    ledger = {"pk": {"S": f"notice#{again['notice_id']}#{Channel.SMS}"}}
    table = driver.local.stack.refs["ChallengesTable"]
    driver.dynamodb.update_item(
        TableName=table,
        Key=ledger,
        UpdateExpression="SET #s = :r",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":r": {"S": "refused"}},
    )
    assert wiring.notifier(os.environ).deliver(notice_from_json(json.dumps(again))) == Delivered()
    # the control: the same code, had its send not been made, is late
    driver.dynamodb.delete_item(TableName=table, Key=ledger)
    assert wiring.notifier(os.environ).deliver(notice_from_json(json.dumps(again))) == Delivered(too_late=True)


def test_a_reset_code_the_sms_provider_throttles_comes_when_it_takes_it(driver: LetterDriver) -> None:
    """SNS throttling the notifier: the code's notice comes back, and the code goes out once SNS takes it
    (the request had long answered); one code, sent once."""
    user = enrolled(driver, mobile="91234595")
    sent = len(sms_to(driver, "+4791234595"))
    with injected_faults() as faults:
        faults.add("sns", "Publish", code="Throttling", status=400, elsewhere=True)
        started = user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number})
        code = user.last_sms_code()  # once the notifier has sent it
        assert ("sns", "Publish", "Throttling") in faults.injected
    assert len(sms_to(driver, "+4791234595")) == sent + 1
    reset = json.loads(started.body)
    completion = {"pin_code": user.codes[str(reset["pin_index"])], "code": code, "new_password": "ny frase i dag"}
    assert user.call("POST", f"/v1/password-resets/{reset['reset_id']}/complete", completion).status == 204


def test_a_reset_code_sns_fails_for_once_it_has_waited_a_minute_goes_to_the_e_mail_once(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """SNS failing (nothing sent) when the code is a minute old (it was tried every 15 s before): the code
    goes to the verified e-mail, saying why, the mobile is given up on in the delivery ledger (a notice
    handed out again sends no SMS of it: a code on one channel), the operators are told
    (`NoticesGivenUp`), and the reset is completed with it."""
    user = enrolled(driver, mobile="91234591", email="kari.waited@example.no")
    driver.notices_delivered()  # the welcome, before SNS fails
    sms = len(sms_to(driver, "+4791234591"))
    a_minute_ago = MovableClock(datetime.now(UTC) - timedelta(minutes=1))
    capsys.readouterr()
    with injected_faults() as faults:
        faults.add("sns", "Publish", code="ServiceUnavailable", status=503, elsewhere=True)
        started = wiring.login(os.environ, clock=a_minute_ago).resets.start(user.identity_number, "198.51.100.7")
        driver.resets_started.append(started.reset_id)  # waited for: its code sent
        code = user.enrolling.last_code_to("kari.waited@example.no")
        assert faults.injected == [("sns", "Publish", "ServiceUnavailable")]
    assert wait_for(capsys.readouterr, lambda out: '"NoticesGivenUp":[1.0]' in out.out)
    (logged,) = [r for r in caplog.records if r.getMessage() == "A code's channel given up on for the next"]
    assert (logged.channel, logged.error) == ("sms", "ServiceUnavailable")  # type: ignore[attr-defined]  # never SNS's words
    (email,) = [
        m["body"] for m in driver.local.outbox.emails() if m["to"] == "kari.waited@example.no" and code in m["body"]
    ]
    assert "kunne ikke sendes på SMS" in email
    assert len(sms_to(driver, "+4791234591")) == sms
    notice_id = code_notice_id(driver.local.keyer, started.reset_id)
    ledger = [
        driver.dynamodb.get_item(TableName=driver.local.stack.refs["ChallengesTable"], Key=key)
        for key in ({"pk": {"S": f"notice#{notice_id}#{channel}"}} for channel in Channel)
    ]
    assert [from_item(read["Item"])["state"] for read in ledger] == ["given_up", "sent"]
    completion = {"pin_code": user.codes[str(started.pin_index)], "code": code, "new_password": "ny frase i dag"}
    assert user.call("POST", f"/v1/password-resets/{started.reset_id}/complete", completion).status == 204


def test_a_reset_whose_number_sns_refuses_sends_the_code_to_the_verified_e_mail(driver: LetterDriver) -> None:
    """Else a person whose number SNS will never send to could never reset, each start saying "sms" and
    no code coming; with a verified e-mail, the code goes there, and the reset is completed with it. (The
    start answers before the notifier sends: it says "sms", as for anyone with a verified mobile.)"""
    user = enrolled(driver, mobile="91234599", email="kari.refused@example.no")
    with injected_faults() as faults:
        refuse_numbers(faults, here=False)
        started = user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number})
        code = user.enrolling.last_code_to("kari.refused@example.no")
        assert faults.injected == [("sns", "Publish", "InvalidParameter")]
    assert started.status == 201
    reset = json.loads(started.body)
    assert reset["second_factor"] == "sms"
    assert not [text for text in sms_to(driver, "+4791234599") if code in text]
    completion = {"pin_code": user.codes[str(reset["pin_index"])], "code": code, "new_password": "ny frase i dag"}
    done = user.call("POST", f"/v1/password-resets/{reset['reset_id']}/complete", completion)
    assert done.status == 204


def test_a_reset_code_whose_e_mail_failed_after_sns_refused_the_number_comes_by_e_mail(driver: LetterDriver) -> None:
    """SNS refuses the number, and SES is briefly down: the notice comes back, the number is not tried
    again (the ledger has it refused), and the code goes to the e-mail once SES takes it."""
    user = enrolled(driver, mobile="91234598", email="kari.later@example.no")
    with injected_faults() as faults:
        refuse_numbers(faults, here=False)
        faults.add("sesv2", "SendEmail", code="TooManyRequestsException", status=429, elsewhere=True)
        started = user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number})
        code = user.enrolling.last_code_to("kari.later@example.no")
        assert faults.injected == [
            ("sns", "Publish", "InvalidParameter"),
            ("sesv2", "SendEmail", "TooManyRequestsException"),
        ]
    reset = json.loads(started.body)
    completion = {"pin_code": user.codes[str(reset["pin_index"])], "code": code, "new_password": "ny frase i dag"}
    assert user.call("POST", f"/v1/password-resets/{reset['reset_id']}/complete", completion).status == 204


def test_sending_refused_for_the_account_is_a_503_not_a_bug(driver: LetterDriver) -> None:
    """SES paused sending for the account (say, for its bounces): the citizen is asked to come back, and
    the enrolment is as it was."""
    enrolling = with_letter(driver)
    enrolling.start()
    with injected_faults() as faults:
        faults.add("sesv2", "SendEmail", code="SendingPausedException", status=400, here=True)
        paused = enrolling.complete(email="kari.paused@example.no")
    assert (paused.status, problem(paused)["type"]) == (503, "/problems/service-unavailable")
    assert paused.header("retry-after") == "300"  # not 2: the operators' to mend, in hours
    assert enrolling.complete(email="kari.paused@example.no").status == 202


def test_a_notice_to_a_refused_number_goes_by_e_mail_and_is_not_tried_again(driver: LetterDriver) -> None:
    user = enrolled(driver, mobile="91234593", email="kari.notice@example.no")
    notifier = wiring.notifier(os.environ)
    notice = password_changed(driver, "refused-test", driver.key(user.identity_number))
    with injected_faults() as faults:
        refuse_numbers(faults, times=2)
        assert notifier.deliver(notice) == Delivered([Channel.EMAIL], [Channel.SMS])
        assert notifier.deliver(notice) == Delivered()  # delivered again (a retry): the number is not tried
    assert faults.injected == [("sns", "Publish", "InvalidParameter")]
    assert [m["to"] for m in driver.local.outbox.emails()].count("kari.notice@example.no") >= 1

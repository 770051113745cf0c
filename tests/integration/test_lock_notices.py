"""A lock's notice, from its event as written: the security events' stream hands each lock to the
notifier (template.yaml, NotifierFunction's Locks), which queues its notice."""

from __future__ import annotations

import json
import operator
import os
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from botocore.config import Config

from local.faults import injected_faults
from minid import wiring
from minid.adapters.dynamodb import iso
from minid.domain.errors import AuthenticationFailed
from tests.integration.conftest import local_driver
from tests.integration.letters import (
    LetterDriver,
    before_first_aws_call,
    queue_empty,
    transaction_updating,
    wait_for,
)
from tests.integration.users import User, enrolled

LOCKED = "sperret i en time"
NOTIFIER = "NotifierFunction"


def locked(driver: LetterDriver, mobile: str, failures: int = 3) -> User:
    user = enrolled(driver, mobile=mobile, email=None)
    for _ in range(failures):
        assert user.start_login(password="ikke passordet mitt i det hele tatt").status == 401
    return user


def told(driver: LetterDriver, mobile: str) -> list[str]:
    return [m["message"] for m in driver.local.outbox.sms() if m["to"] == f"+47{mobile}" and LOCKED in m["message"]]


def stream_records(driver: LetterDriver) -> list[dict[str, Any]]:
    """The security events' stream as the notifier's mapping hands it over (all of it, unfiltered)."""
    stack = driver.local.stack
    arn = stack.attributes["SecurityEventsTable"]["StreamArn"]
    streams = driver.local.session.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
        answer = streams.get_records(ShardIterator=iterator["ShardIterator"])
        for record in answer["Records"]:
            change = dict(record["dynamodb"])
            change["ApproximateCreationDateTime"] = change["ApproximateCreationDateTime"].timestamp()
            records.append({**record, "dynamodb": change, "eventSourceARN": arn})
    return records


def of_type(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in records if r["eventName"] == "INSERT" and r["dynamodb"]["NewImage"]["type"]["S"] == kind]


def notifier(driver: LetterDriver, records: list[dict[str, Any]], seconds_left: int | None = None) -> Any:
    return driver.local.functions.by_logical_id[NOTIFIER].invoke({"Records": records}, seconds_left)


def drained(driver: LetterDriver) -> None:
    """Every notice queued has been taken and delivered (the local stack's notifier polls the queue)."""
    url = driver.local.stack.refs["NoticeQueue"]
    wait_for(lambda: queue_empty(driver.sqs, url), bool)


def test_a_lock_is_told_once_however_often_its_record_is_handed_over(driver: LetterDriver) -> None:
    """The stream hands a record over at least once: each time, the same notice (its id the same)."""
    locked(driver, "91234601")
    (sms,) = wait_for(lambda: told(driver, "91234601"), lambda sms: len(sms) == 1)
    (lock,) = of_type(stream_records(driver), "account-locked")
    at = datetime.fromisoformat(lock["dynamodb"]["NewImage"]["sk"]["S"].split("#")[0])
    assert f"kl. {at.astimezone(ZoneInfo('Europe/Oslo')):%H.%M} ble den {LOCKED}" in sms  # when, in Norway
    assert notifier(driver, [lock, lock]) == {"batchItemFailures": []}
    drained(driver)
    time.sleep(0.2)
    assert len(told(driver, "91234601")) == 1


def test_a_person_is_told_of_locks_once_a_day_however_often_the_account_locks(driver: LetterDriver) -> None:
    """Anyone who knows an identity number may lock its account, and again once the lock lapses: each lock
    is in the person's history, and the person is told once a day (not sent an SMS every three tries)."""
    user = locked(driver, "91234603")
    wait_for(lambda: told(driver, "91234603"), lambda sms: len(sms) == 1)
    lapsed(driver, user)
    for _ in range(3):
        assert user.start_login(password="ikke passordet mitt i det hele tatt").status == 401
    locks = wait_for(lambda: of_type(stream_records(driver), "account-locked"), lambda records: len(records) == 2)
    assert notifier(driver, locks) == {"batchItemFailures": []}
    drained(driver)
    time.sleep(0.2)
    assert len(told(driver, "91234603")) == 1


def test_a_lock_a_wrong_password_reaches_after_a_wrong_code_is_told_each_time(driver: LetterDriver) -> None:
    """One with the password types a wrong code, then ends the run with wrong passwords: that lock is told
    each time, as one past the password, not once a day as anyone's wrong passwords are."""
    user = enrolled(driver, mobile="91234604", email=None)
    for locks in (1, 2):
        login = json.loads(user.start_login().body)
        wrong = "000000" if user.last_sms_code() != "000000" else "111111"
        assert user.verify(login["login_id"], wrong).status == 401
        for _ in range(2):
            assert user.start_login(password="ikke passordet mitt i det hele tatt").status == 401
        wait_for(lambda: len(told(driver, "91234604")), partial(operator.eq, locks))
        lapsed(driver, user)
    # the runs those locks ended are over: locks by wrong passwords alone after them are anyone's, told
    # once a day (the day's first here)
    for written in (3, 4):
        for _ in range(3):
            assert user.start_login(password="ikke passordet mitt i det hele tatt").status == 401
        wait_for(lambda: len(of_type(stream_records(driver), "account-locked")), partial(operator.eq, written))
        lapsed(driver, user)
    records = wait_for(lambda: of_type(stream_records(driver), "account-locked"), lambda found: len(found) == 4)
    afters = [r["dynamodb"]["NewImage"]["detail"]["M"]["after"]["S"] for r in records]
    assert afters == ["password-and-more"] * 2 + ["password"] * 2
    driver.notices_delivered()  # the stream caught up with (every lock handed over), and the notice queue
    texts = told(driver, "91234604")
    assert len(texts) == 3
    assert not any("kjenner noen passordet ditt" in text for text in texts)  # wrong passwords, to the last


def test_a_lock_by_wrong_codes_past_the_password_tells_the_person_it_is_known(driver: LetterDriver) -> None:
    user = enrolled(driver, mobile="91234605", email=None)
    login = json.loads(user.start_login().body)
    wrong = "000000" if user.last_sms_code() != "000000" else "111111"
    for _ in range(3):
        assert user.verify(login["login_id"], wrong).status == 401
    (text,) = wait_for(lambda: told(driver, "91234605"), lambda found: len(found) == 1)
    assert "kjenner noen passordet ditt" in text
    assert "lag et nytt med PIN-kodebrevet med en gang" in text


def test_a_lock_judged_on_a_run_that_ended_meanwhile_is_judged_again_on_the_run_it_ends(
    driver: LetterDriver,
) -> None:
    """A wrong password read the count at 2 in a run of wrong passwords; before its write, the run ended (a
    login completed) and another came to 2 with a wrong code in it. The lock is the new run's, and says so
    (told each time), not the old run's (once a day): the write holds on the run it read."""
    user = enrolled(driver, mobile="91234605", email=None)
    for _ in range(2):
        assert user.start_login(password="ikke passordet mitt i det hele tatt").status == 401

    def another_run_to_two() -> None:
        user.login()  # the run ends
        login = json.loads(user.start_login().body)
        wrong = "000000" if user.last_sms_code() != "000000" else "111111"
        assert user.verify(login["login_id"], wrong).status == 401
        assert user.start_login(password="ikke passordet mitt i det hele tatt").status == 401

    locking = transaction_updating("locked_until = :until")
    with before_first_aws_call("dynamodb.TransactWriteItems", another_run_to_two, where=locking) as outcomes:
        services = wiring.login(os.environ)
        with pytest.raises(AuthenticationFailed):
            services.login.start(user.identity_number, "ikke passordet mitt i det hele tatt", None, "198.51.100.9")
    assert outcomes[0] == "TransactionCanceledException"  # the run read is not the run now: judged again
    (lock,) = of_type(stream_records(driver), "account-locked")
    assert lock["dynamodb"]["NewImage"]["detail"]["M"]["after"]["S"] == "password-and-more"


def lapsed(driver: LetterDriver, user: User) -> None:
    """The user's lock run out, its count back to zero."""
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["UsersTable"],
        Key={"pk": {"S": driver.key(user.identity_number)}},
        UpdateExpression="SET locked_until = :then, failed_logins = :none",
        ExpressionAttributeValues={":then": {"S": iso(datetime.now(UTC) - timedelta(minutes=1))}, ":none": {"N": "0"}},
    )


def test_the_lock_s_event_carries_what_its_notice_tells() -> None:
    """The policy deployed (not the default), as the lock recorded it."""
    with local_driver({"LockoutThreshold": "4", "LockoutSeconds": "900"}) as driver:
        locked(driver, "91234602", failures=4)
        (lock,) = of_type(stream_records(driver), "account-locked")
        told = {"failures": {"S": "4"}, "minutes": {"S": "15"}}
        assert lock["dynamodb"]["NewImage"]["detail"]["M"] == told | {"after": {"S": "password"}}
        driver.notices_delivered()  # the stream caught up with, and the notice queue
        (sms,) = [m["message"] for m in driver.local.outbox.sms() if m["to"] == "+4791234602"][-1:]
        assert "4 ganger på rad" in sms
        assert "15 minutter" in sms


def test_a_lock_whose_notice_cannot_be_queued_is_reported_and_those_after_it_wait(driver: LetterDriver) -> None:
    """The stream's partial batch response: the first record that fails, whose place Lambda hands the
    stream on again from; the records before it are done."""
    locked(driver, "91234603")
    locked(driver, "91234604")
    locked(driver, "91234605")
    wait_for(
        lambda: [told(driver, n) for n in ("91234603", "91234604", "91234605")], lambda t: all(len(s) == 1 for s in t)
    )
    locks = of_type(stream_records(driver), "account-locked")
    assert len(locks) == 3
    second, third = (lock["dynamodb"]["NewImage"]["pk"]["S"] for lock in locks[1:])
    with injected_faults() as faults:  # the second's and, were it tried, the third's
        faults.add(
            "sqs",
            "SendMessage",
            times=2,
            here=True,
            where=lambda p: any(k in p["MessageBody"] for k in (second, third)),
        )
        answer = notifier(driver, locks)
    assert answer == {"batchItemFailures": [{"itemIdentifier": locks[1]["dynamodb"]["SequenceNumber"]}]}
    assert faults.injected == [("sqs", "SendMessage", "ServiceUnavailable")]  # the third not tried


def test_a_lock_whose_notice_runs_out_of_time_is_reported_not_the_invocation_timed_out(
    driver: LetterDriver, caplog: pytest.LogCaptureFixture
) -> None:
    """No time left in the invocation for the queue's call: the record is reported (the stream handed on
    again from it), as a failure of the queue would be; the function does not run past its timeout."""
    locked(driver, "91234606")
    wait_for(lambda: told(driver, "91234606"), lambda sms: len(sms) == 1)
    (lock,) = of_type(stream_records(driver), "account-locked")
    caplog.clear()
    answer = notifier(driver, [lock], seconds_left=0)
    assert answer == {"batchItemFailures": [{"itemIdentifier": lock["dynamodb"]["SequenceNumber"]}]}
    logged = [r for r in caplog.records if r.getMessage() == "Lock's notice not queued yet"]
    assert [r.__dict__.get("error") for r in logged] == ["OutOfTime"]  # refused by the deadline, before it was sent
    assert notifier(driver, [lock]) == {"batchItemFailures": []}  # in time: queued


def test_an_event_not_a_lock_is_passed_over(driver: LetterDriver) -> None:
    """The mapping's filter lets only locks through; should another come, it is passed over (not handed
    over again for ever), and nothing is queued."""
    user = enrolled(driver, mobile="91234606", email=None)
    assert user.start_login(password="ikke passordet mitt i det hele tatt").status == 401
    failed = of_type(stream_records(driver), "login-failed")
    with injected_faults() as faults:
        faults.add("sqs", "SendMessage", times=1, here=True)  # would fail the batch, were anything queued
        assert notifier(driver, failed) == {"batchItemFailures": []}
    assert faults.injected == []


def test_a_record_that_writes_no_event_is_passed_over(driver: LetterDriver) -> None:
    """An event changed or removed (as it expires): no lock written, nothing told."""
    locked(driver, "91234607")
    (lock,) = of_type(stream_records(driver), "account-locked")
    changed = {**lock, "eventName": "MODIFY"}
    removed = {
        **lock,
        "eventName": "REMOVE",
        "dynamodb": {k: v for k, v in lock["dynamodb"].items() if k != "NewImage"},
    }
    with injected_faults() as faults:
        faults.add("sqs", "SendMessage", times=2, here=True)  # would fail the batch, were anything queued
        assert notifier(driver, [changed, removed]) == {"batchItemFailures": []}
    assert faults.injected == []

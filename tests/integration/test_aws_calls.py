"""The AWS calls each request makes, counted on the benchmark's journey (bench/routes.py) through every
route: counts, not times, so they hold on any machine. `make bench` prints the table."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.exceptions import ConnectionError as SdkConnectionError

from bench.calls import CallCounter
from bench.routes import REFUSED, Tally, aws_calls, embedded_stack
from local.population_seed import Category
from local.template import Template

# The most calls each step of a login may make (bench/__main__.py explains the goal of 3). A start: one
# read of everything it needs (the account, the client's counts, the contact record or the letter's
# ledger), the letter itself for a PIN, then one transaction (the attempt stored with the account as read
# and the client's hits counted), and the SMS. A verify: the try counted with the attempt read, the
# account counted and read, one transaction. A resend: the attempt read (it holds the number its code
# went to), one transaction (the new code, the mobile still verified, the client's codes counted), the SMS.
LOGIN_PATH_MOST = {
    "POST /v1/login (sms)": 3,
    "POST /v1/login (totp)": 2,
    "POST /v1/login (pin)": 3,
    "POST /v1/login/{login_id}/verify (sms)": 3,
    "POST /v1/login/{login_id}/verify (totp)": 3,
    "POST /v1/login/{login_id}/verify (pin)": 3,
    "POST /v1/login/{login_id}/resend": 3,
    # refused: the failure counted with the password's judgement (one transaction); a wrong code's try
    # counted with the attempt read, the account's failure counted, the event; the third failure in a row
    # writes its event with the lock, in one transaction (its notice comes from that event: the notifier
    # takes it from the events' stream)
    "POST /v1/login (wrong password)": 2,
    "POST /v1/login/{login_id}/verify (wrong code)": 3,
    "POST /v1/login/{login_id}/verify (wrong code, locking)": 3,
    "POST /v1/login/{login_id}/verify (totp, wrong code)": 3,
    # a wrong PIN code: counted against its letter with the failure's event, in one transaction (its
    # condition: the letter posted, and this not the fifth, which blocks it: then the letter is read)
    "POST /v1/login/{login_id}/verify (pin, wrong code)": 3,
}


@pytest.fixture(scope="module")
def journey() -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    rows, operations = aws_calls(CallCounter())
    return {row["what"]: row for row in rows}, dict(operations)


def test_the_journey_takes_every_route_and_every_task(journey: tuple[dict[str, dict[str, Any]], Any]) -> None:
    rows, _ = journey
    routes = {route.key for route in Template.load().routes() if not route.path.startswith("$")}
    taken = {what.split(" (")[0] for what in rows}
    assert routes - taken == set()
    refused = {what for what in rows if what.endswith(tuple(f"({note})" for note in REFUSED))}
    assert len(refused) == len(REFUSED)
    assert all(max(row["statuses"], default=200) < 400 for what, row in rows.items() if what not in refused), rows
    assert all(rows[what]["statuses"] == [401] for what in refused)
    tasks = {
        "validate-recipient",
        "prepare-letter",
        "activate-letter",
        "mark-failed",
        "notify (pin-letter-posted)",
        "notify (pin-letter-refused)",
    }
    assert {f"workflow task {task}" for task in tasks} <= set(rows), set(rows)


def test_nothing_scans(journey: tuple[Any, dict[str, int]]) -> None:
    _, operations = journey
    assert [op for op in operations if op.endswith(".Scan")] == []


@pytest.mark.parametrize(("what", "most"), LOGIN_PATH_MOST.items())
def test_the_login_path_makes_few_calls(journey: tuple[dict[str, dict[str, Any]], Any], what: str, most: int) -> None:
    rows, _ = journey
    assert rows[what]["calls"] <= most, rows[what]["operations"]


# Routes off the login path, and what each of their calls is for: the most they may make.
ELSEWHERE_MOST = {
    # the session and the account (to authenticate), one batch (the population register, the contact
    # register, the letter ledger), the letter
    "GET /v1/me": 4,
    # the letter; one batch (the population register, the contact register, the ledger); one transaction
    # (the outcome, the quota reserved, the event)
    "workflow task validate-recipient": 3,
    # the session and the account, the record, the change waiting read (one of a contact not named refuses
    # this one), the person's codes counted (before any is sent), the code sent, the old contact and the
    # person's other contact each sealed (KMS) and their notices queued (a replaced contact is told to both:
    # the old may be a stolen phone), one transaction (the account's epoch, the record as read, the change,
    # the events)
    "PUT /v1/me/contact": 11,
    # the session and the account, the try counted with the change read, the record, one transaction (the
    # register, the change settled, the event)
    "POST /v1/me/contact/verify": 5,
    # the session and the account, the change (it holds the codes' language), the person's codes counted
    # (before any is sent), the new codes, the SMS
    "POST /v1/me/contact/resend": 6,
    # the session and the account, the record, one transaction (the record as read, the person's
    # confirmations counted: a few an hour are written, each writes an event; the event)
    "POST /v1/me/contact/confirm": 4,
    # an order with an idempotency key (API.md): its record written first and settled after, beside the
    # order's own three (the letter, the quota reserved with the refused orders' count, the workflow)
    "POST /v1/pin-letters (keyed)": 5,
    # the client's two counters, the person's codes counted (for every number: the hour's and the day's),
    # one batch (the account, the contact record, the ledger), the letter (read for everyone: the time
    # tells nothing), the reset, and its code queued, sealed with its recipients (KMS): for a decoy too,
    # the same calls
    "POST /v1/password-resets": 9,
    # the try counted with the reset read, one batch (the letter, the account, the person), the notice
    # queued, one transaction (the PIN code used, the password, the reset done, the event)
    "POST /v1/password-resets/{reset_id}/complete": 4,
    # the try counted with the enrolment read, one batch (the letter, the person), the guess counted on the
    # client's hour and the person's day (before the codes are judged) and given back (they were right), the
    # client's and the person's codes counted (before any is sent), the SMS and the e-mail, the completion
    # (the try given back with it)
    "POST /v1/enrolments/{enrolment_id}/complete": 11,
    # the try counted with the enrolment read, one batch (the account and contact record a re-enrolment
    # replaces), the welcome queued, one transaction (the account, the record, the PIN codes used, the event)
    "POST /v1/enrolments/{enrolment_id}/verify": 4,
    # the session and the account, the attempt counted as failed with the account read (the lockout), the
    # person's facts (the password policy), the notice queued, one transaction (the password, its count
    # back to zero, the event)
    "PUT /v1/me/password": 6,
    # the session and the account (which the route then uses), the secret kept pending, the person's name
    "POST /v1/me/totp": 4,
    # the session and the account, the notice queued, one transaction (the secret confirmed, the event)
    "POST /v1/me/totp/verify": 4,
    # the session and the account, the notice queued, one transaction (the secret removed, the event)
    "DELETE /v1/me/totp": 4,
}


@pytest.mark.parametrize(("what", "most"), ELSEWHERE_MOST.items())
def test_other_routes_make_no_more_calls_than_they_need(
    journey: tuple[dict[str, dict[str, Any]], Any], what: str, most: int
) -> None:
    rows, _ = journey
    assert rows[what]["calls"] <= most, rows[what]["operations"]


def test_a_call_is_timed_from_its_request_built_to_its_answer_and_as_the_sdk_s_whole_method() -> None:
    """The bench's request cost leaves out the calls' requests (on moto, mostly moto's work), and then the SDK's
    methods altogether: the second holds the first, and the SDK's work before the request besides."""
    from local.aws import embedded_aws  # noqa: PLC0415
    from minid import wiring  # noqa: PLC0415

    counter = CallCounter()
    with embedded_aws():
        counter.install()  # before the client is made: it takes the session's handlers as it is made
        try:
            client = wiring.client("dynamodb")
            with counter.counting() as calls:
                client.list_tables()
                client.list_tables(Limit=1)  # (the functions' clients know the operations they call only)
                with pytest.raises(ClientError):  # an error's answer is timed too
                    client.get_item(TableName="none", Key={"pk": {"S": "x"}})
                # and a call never answered: at a port this test holds without listening on it, so that a
                # connection is refused (moto answers AWS's addresses only)
                with socket.socket() as held:
                    held.bind(("127.0.0.1", 0))
                    unanswered: Any = wiring.session().create_client(
                        "dynamodb",
                        region_name="eu-north-1",
                        endpoint_url=f"http://127.0.0.1:{held.getsockname()[1]}",
                        config=Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=1),
                    )
                    with pytest.raises(SdkConnectionError):  # refused (or timed out, where packets are dropped)
                        unanswered.query(TableName="none", KeyConditionExpression="pk = :pk")
        finally:
            counter.uninstall()
    assert calls.operations == {"dynamodb.ListTables": 2, "dynamodb.GetItem": 1, "dynamodb.Query": 1}
    assert 0 < calls.seconds < calls.sdk_seconds
    # the requests' time, by operation: each its own, adding up to the whole
    assert set(calls.operation_seconds) == set(calls.operations)
    assert all(seconds > 0 for seconds in calls.operation_seconds.values())
    assert sum(calls.operation_seconds.values()) == pytest.approx(calls.seconds)


def test_an_environment_s_pepper_read_is_counted_apart_once() -> None:
    """An execution environment reads the pepper once: as its first invocation builds the function's services
    (a login's), or, in the letter workflow's checks, as it prepares its first letter (the function that
    activates letters never reads it). The journey's rows are requests, so that read is counted apart, once
    for each environment (on a busy machine the workflow's letters overlap, and a task can have a new
    environment mid-journey); a read again in the same environment would be a request's."""
    tally = Tally(CallCounter())
    with embedded_stack(tally.counter, tally) as driver:
        for _ in range(2):  # one after the other: in one environment
            assert driver.order(driver.person(Category.ADULT).identity_number).status == 202
            driver.next_print_job()
    tasks = tally.invocations["workflow task validate-recipient"] + tally.invocations["workflow task prepare-letter"]
    assert len(tasks) == 4
    assert all("secretsmanager.GetSecretValue" not in calls.operations for calls in tasks)
    assert tally.environments == {"workflow task prepare-letter": {"secretsmanager.GetSecretValue": 1}}

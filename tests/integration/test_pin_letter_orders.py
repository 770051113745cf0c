"""Ordering PIN code letters (the order route), the print provider's callback route, and blocking."""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.aws import ACCOUNT_ID
from local.faults import injected_faults
from local.functions import LambdaContext
from local.population_seed import Category
from minid import deadline, wiring
from minid.adapters.clock import SystemClock
from minid.adapters.dynamodb import iso, to_item
from minid.adapters.letters import letter_key
from minid.deadline import OutOfTime
from minid.domain.codes import RateLimited
from minid.domain.keys import PersonKey
from minid.domain.letters.account import PinLetterAccount
from minid.domain.letters.guard import MAX_PIN_FAILURES_PER_LETTER, WrongPinCodes
from minid.domain.letters.model import ABANDONED_AFTER, LetterStatus, PinLetter, RecipientOutcome
from tests.integration.letters import (
    LetterDriver,
    age_ledger,
    before_first_aws_call,
    documents_of,
    fill_counters,
    index_lagging,
    notice_queue,
    posted,
    security_events,
    wait_for,
)
from tests.integration.users import MovableClock


# ---------------------------------------------------------------------- the order route
@pytest.mark.parametrize(
    "number",
    ["", "123", "1234567890a", "18838417391", "15508620125", "81234567802", 18838417392, None, "1" * 100],
)
def test_a_bad_identity_number_is_refused(driver: LetterDriver, number: object) -> None:
    response = driver.order(number)
    assert response.status == 422
    problem = json.loads(response.body)
    assert problem["type"] in {"/problems/invalid-identity-number", "/problems/invalid-request"}
    assert driver.executions() == []


def test_every_valid_number_gets_the_same_answer(driver: LetterDriver) -> None:
    numbers = [driver.person(category).identity_number for category in Category]
    answers = [driver.order(number) for number in numbers]
    assert {(a.status, a.body) for a in answers} == {(answers[0].status, answers[0].body)}
    assert answers[0].status == 202
    assert len(driver.executions()) == len(answers)


def test_a_client_may_order_so_many_letters_an_hour(driver: LetterDriver) -> None:
    """Each order starts a workflow, and a refused one is kept a while: one client address may order
    ClientLetterOrdersPerHour (30) an hour; past it 429, and no workflow."""
    number = driver.person(Category.ADULT).identity_number
    statuses = []
    for _ in range(61):  # two windows' worth: the first refusal comes within them, wherever they begin
        response = driver.order(number)
        statuses.append(response.status)
        if response.status == 429:
            assert json.loads(response.body)["type"] == "/problems/rate-limited"
            assert int(response.header("retry-after") or 0) > 0
            break
    assert statuses[-1] == 429
    assert len(statuses) > 30
    workflows = len(driver.executions())
    assert driver.order(number).status == 429
    assert len(driver.executions()) == workflows  # nothing started


def test_a_repeated_order_is_answered_as_first_though_the_clients_orders_are_spent(driver: LetterDriver) -> None:
    """A retry with its idempotency key is the same order, not another: it gets the first answer."""
    number = driver.person(Category.ADULT).identity_number
    assert driver.order(number, idempotency_key="spent-1").status == 202
    answers = [driver.order(driver.person(Category.ADULT).identity_number).status for _ in range(60)]
    assert 429 in answers
    assert driver.order(number, idempotency_key="spent-1").status == 202


def test_an_idempotency_key_makes_repeats_one_order(driver: LetterDriver) -> None:
    number = driver.person(Category.ADULT).identity_number
    first = driver.order(number, idempotency_key="order-1")
    again = driver.order(number, idempotency_key="order-1")
    assert (first.status, first.body) == (again.status, again.body)
    assert len(driver.letters_of(number)) == 1
    assert len(driver.executions()) == 1


def test_the_same_key_from_another_person_is_another_order(driver: LetterDriver) -> None:
    one, other = (driver.person(Category.ADULT).identity_number for _ in range(2))
    driver.order(one, idempotency_key="same-key")
    driver.order(other, idempotency_key="same-key")
    assert len(driver.letters_of(one)) == len(driver.letters_of(other)) == 1


def test_a_key_used_again_after_its_first_use_was_forgotten_is_a_new_order(driver: LetterDriver) -> None:
    """The once-only record lasts a day; the order it made, for good. The same person's key sent again
    weeks later orders a letter, not the old one again (which answered 202 and ordered nothing)."""
    number = driver.person(Category.ADULT).identity_number
    first = _posted_weeks_ago_with_key_forgotten(driver, number, "k-reused")

    assert driver.order(number, idempotency_key="k-reused").status == 202
    second = driver.next_print_job()["letter_id"]
    assert second != first
    assert len(driver.letters_of(number)) == 2


def _posted_weeks_ago_with_key_forgotten(driver: LetterDriver, number: str, key: str) -> str:
    """A letter ordered with the key and posted, 40 days ago as the letter and the person's ledger say, the
    key's once-only record gone with its day: the letter's id."""
    assert driver.order(number, idempotency_key=key).status == 202
    first = str(driver.next_print_job()["letter_id"])
    assert driver.report(first, "dispatched").status == 204
    driver.finished(first)
    idempotency = driver.local.stack.refs["IdempotencyTable"]
    for item in driver.dynamodb.scan(TableName=idempotency)["Items"]:  # its day is over: gone
        driver.dynamodb.delete_item(TableName=idempotency, Key={"id": item["id"]})
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["PinLettersTable"],
        Key=to_item({"pk": f"letter#{first}", "sk": "letter"}),
        UpdateExpression="SET ordered_at = :then",
        ExpressionAttributeValues=to_item({":then": iso(datetime.now(UTC) - timedelta(days=40))}),
    )
    age_ledger(driver, number, timedelta(days=40))
    return first


def test_a_key_used_again_whose_new_order_could_not_start_leaves_no_order_behind(driver: LetterDriver) -> None:
    """Made a new order under an id of its own, which no other request can be starting: its start failed,
    it is taken away (left, every retry would leave another, none of them ever started)."""
    number = driver.person(Category.ADULT).identity_number
    first = _posted_weeks_ago_with_key_forgotten(driver, number, "k-old")
    with injected_faults() as faults:
        faults.add("stepfunctions", "StartExecution", code="ServiceUnavailable", status=503, times=10)
        assert driver.order(number, idempotency_key="k-old").status == 503
    assert [x.letter_id for x in driver.letters_of(number)] == [first]


def test_a_key_used_again_after_a_refused_order_s_day_is_a_new_order(driver: LetterDriver) -> None:
    """Refused (a letter went within 24 hours), its order is kept as long as the workflow's name is taken
    (90 days): the same key weeks later finds it, and makes a new order, not the old name's nothing."""
    number = driver.person(Category.ADULT).identity_number
    posted(driver, number)
    assert driver.order(number, idempotency_key="k-refused").status == 202
    refused = wait_for(
        lambda: [run for run in driver.executions() if run["status"] != "RUNNING"], lambda runs: len(runs) == 2
    )
    table = driver.local.stack.refs["PinLettersTable"]
    orders = [driver.dynamodb.get_item(TableName=table, Key=letter_key(run["name"]))["Item"] for run in refused]
    (order,) = [item for item in orders if item["status"]["S"] == "refused"]
    ordered_at = datetime.fromisoformat(order["ordered_at"]["S"])
    assert int(order["expires_at"]["N"]) >= (ordered_at + timedelta(days=90)).timestamp()

    idempotency = driver.local.stack.refs["IdempotencyTable"]
    for item in driver.dynamodb.scan(TableName=idempotency)["Items"]:  # its day is over
        driver.dynamodb.delete_item(TableName=idempotency, Key={"id": item["id"]})
    driver.dynamodb.update_item(
        TableName=table,
        Key={"pk": order["pk"], "sk": order["sk"]},
        UpdateExpression="SET ordered_at = :then",
        ExpressionAttributeValues=to_item({":then": iso(datetime.now(UTC) - timedelta(days=40))}),
    )
    age_ledger(driver, number, timedelta(days=40))
    assert driver.order(number, idempotency_key="k-refused").status == 202
    job = driver.next_print_job()  # a new order, printed
    assert job["letter_id"] != order["letter_id"]["S"]


def test_the_same_key_at_once_never_takes_away_the_first_requests_order(driver: LetterDriver) -> None:
    """Two requests with the same key at once: the second finds the first's once-only record in progress
    and places the order itself; its start fails. The order is the first's, whose start is yet to come:
    it stays, and its workflow runs."""
    number = driver.person(Category.ADULT).identity_number
    with injected_faults() as faults:

        def second_request_meanwhile() -> None:
            faults.add("stepfunctions", "StartExecution", code="ServiceUnavailable", status=503, times=10)
            assert driver.order(number, idempotency_key="k-twice").status == 503
            faults.clear()

        with before_first_aws_call("stepfunctions.StartExecution", second_request_meanwhile):
            services = wiring.pin_letters(os.environ)
            services.once_only.use_lambda_context(LambdaContext("PinLettersFunction", 512, 10))
            services.ordering.order(number, "198.51.100.50", "k-twice")
    job = driver.next_print_job()
    assert driver.report(job["letter_id"], "dispatched").status == 204
    assert driver.finished(job["letter_id"])["status"] == "SUCCEEDED"
    assert [x.status for x in driver.letters_of(number)] == [LetterStatus.DISPATCHED]


def test_the_same_key_at_once_is_not_counted_twice_against_the_clients_orders(driver: LetterDriver) -> None:
    """The second of two requests with the same key at once finds the first in progress and places the
    same order itself: not counted again, it is not refused as over the client's orders an hour (which
    the first filled), and it is the same letter."""
    number = driver.person(Category.ADULT).identity_number
    client = "198.51.100.52"
    second: list[str] = []

    def second_request_meanwhile() -> None:  # the first was the client's last order this hour
        fill_counters(driver, "letter-orders", client, 3600, int(os.environ["CLIENT_LETTER_ORDERS_PER_HOUR"]))
        repeat = wiring.pin_letters(os.environ)
        repeat.once_only.use_lambda_context(LambdaContext("PinLettersFunction", 512, 10))
        repeat.ordering.order(number, client, "k-at-once")
        second.append("placed")

    with before_first_aws_call("stepfunctions.StartExecution", second_request_meanwhile):
        services = wiring.pin_letters(os.environ)  # (its clients made within: the first's call is watched)
        services.once_only.use_lambda_context(LambdaContext("PinLettersFunction", 512, 10))
        services.ordering.order(number, client, "k-at-once")
    assert second == ["placed"]
    assert len(driver.letters_of(number)) == 1


def test_a_retry_of_an_order_whose_start_failed_is_not_refused_for_the_order_it_retries(driver: LetterDriver) -> None:
    """The client's last order this hour is counted and recorded, and its workflow's start fails (503).
    Its retry with the key is that order, counted already: it starts it, not 429 for the hour it filled."""
    number = driver.person(Category.ADULT).identity_number
    client = "198.51.100.54"
    fill_counters(driver, "letter-orders", client, 3600, int(os.environ["CLIENT_LETTER_ORDERS_PER_HOUR"]) - 1)
    services = wiring.pin_letters(os.environ)
    services.once_only.use_lambda_context(LambdaContext("PinLettersFunction", 512, 10))
    with injected_faults() as faults:
        faults.add("stepfunctions", "StartExecution", code="ServiceUnavailable", status=503, times=10)
        with pytest.raises(ClientError):
            services.ordering.order(number, client, "k-retried")
    with pytest.raises(RateLimited):  # the hour is full: another order is refused
        services.ordering.order(driver.person(Category.ADULT).identity_number, client, "k-another")
    services.ordering.order(number, client, "k-retried")  # the retry: placed
    job = driver.next_print_job()
    assert driver.report(job["letter_id"], "dispatched").status == 204
    assert driver.finished(job["letter_id"])["status"] == "SUCCEEDED"
    assert [x.status for x in driver.letters_of(number)] == [LetterStatus.DISPATCHED]


def test_the_same_key_at_once_orders_nothing_past_the_clients_orders(driver: LetterDriver) -> None:
    """The first of two requests with the same key at once is refused (the client's orders this hour are
    used up); the second, finding the first in progress, finds no order of the first's either: it is
    counted, and refused too. A key sent many times at once orders nothing past the limit."""
    number = driver.person(Category.ADULT).identity_number
    client = "198.51.100.53"
    fill_counters(driver, "letter-orders", client, 3600, int(os.environ["CLIENT_LETTER_ORDERS_PER_HOUR"]))
    second: list[str] = []

    def second_request_meanwhile() -> None:
        repeat = wiring.pin_letters(os.environ)
        repeat.once_only.use_lambda_context(LambdaContext("PinLettersFunction", 512, 10))
        with pytest.raises(RateLimited):
            repeat.ordering.order(number, client, "k-refused-at-once")
        second.append("refused")

    def counting(params: dict[str, Any]) -> bool:
        return str(params.get("Key", {}).get("pk", {}).get("S", "")).startswith("rate#letter-orders#")

    with before_first_aws_call("dynamodb.UpdateItem", second_request_meanwhile, where=counting):
        services = wiring.pin_letters(os.environ)  # (its clients made within: the first's call is watched)
        services.once_only.use_lambda_context(LambdaContext("PinLettersFunction", 512, 10))
        with pytest.raises(RateLimited):
            services.ordering.order(number, client, "k-refused-at-once")
    assert second == ["refused"]
    assert driver.letters_of(number) == []


def test_a_first_request_whose_start_failed_never_takes_away_the_order_of_one_with_the_same_key(
    driver: LetterDriver,
) -> None:
    """Two requests with the same key at once: the first's start fails, and it finds no workflow started;
    just then the second finds the first's order recorded and starts its workflow, answering 202. The
    first must not take the order away (the workflow would find no letter, and the 202 order nothing): a
    keyed order whose start failed is left to a retry with its key, or to its expiry."""
    number = driver.person(Category.ADULT).identity_number
    second: list[int] = []
    with injected_faults() as faults:
        faults.add("stepfunctions", "StartExecution", code="ServiceUnavailable", status=503, times=10)

        def second_request_meanwhile() -> None:
            faults.clear()
            second.append(driver.order(number, idempotency_key="k-twice").status)

        with before_first_aws_call("stepfunctions.DescribeExecution", lambda: None, after=second_request_meanwhile):
            services = wiring.pin_letters(os.environ)
            services.once_only.use_lambda_context(LambdaContext("PinLettersFunction", 512, 10))
            with pytest.raises(ClientError):
                services.ordering.order(number, "198.51.100.50", "k-twice")
    assert second == [202]
    job = driver.next_print_job()
    assert driver.report(job["letter_id"], "dispatched").status == 204
    assert driver.finished(job["letter_id"])["status"] == "SUCCEEDED"
    assert [x.status for x in driver.letters_of(number)] == [LetterStatus.DISPATCHED]


def test_an_idempotency_key_must_be_printable_and_short(driver: LetterDriver) -> None:
    number = driver.person(Category.ADULT).identity_number
    for key in ("x" * 129, "has space"):
        refused = driver.order(number, idempotency_key=key)
        assert refused.status == 422
        # the header named as the route declares it: the client can tell that the header is wrong
        assert [e["field"].lower() for e in json.loads(refused.body)["errors"]] == ["idempotency-key"]


def test_idempotency_records_hold_no_identity_number(driver: LetterDriver) -> None:
    number = driver.person(Category.ADULT).identity_number
    driver.order(number, idempotency_key="k-1")
    items = driver.dynamodb.scan(TableName=driver.local.stack.refs["IdempotencyTable"])["Items"]
    assert len(items) == 1
    assert number not in json.dumps(items)


def test_a_failed_start_leaves_no_order_behind(driver: LetterDriver) -> None:
    number = driver.person(Category.ADULT).identity_number
    with injected_faults() as faults:
        faults.add("stepfunctions", "StartExecution", code="ServiceUnavailable", status=503, times=10)
        response = driver.order(number)
    assert response.status == 503
    assert response.header("retry-after")
    assert driver.letters_of(number) == []


def test_a_keyed_order_whose_start_failed_is_started_by_its_retry(driver: LetterDriver) -> None:
    """Left for the retry (another request with its key may be starting it: see below), never a second."""
    number = driver.person(Category.ADULT).identity_number
    with injected_faults() as faults:
        faults.add("stepfunctions", "StartExecution", code="ServiceUnavailable", status=503, times=10)
        assert driver.order(number, idempotency_key="k-retried").status == 503
    (left,) = driver.letters_of(number)
    assert driver.order(number, idempotency_key="k-retried").status == 202
    job = driver.next_print_job()
    assert job["letter_id"] == left.letter_id
    assert driver.report(job["letter_id"], "dispatched").status == 204
    assert driver.finished(job["letter_id"])["status"] == "SUCCEEDED"
    assert [(x.letter_id, x.status) for x in driver.letters_of(number)] == [(left.letter_id, LetterStatus.DISPATCHED)]


def test_a_keyed_order_whose_start_failed_and_was_never_retried_is_no_longer_listed_once_it_cannot_be(
    driver: LetterDriver,
) -> None:
    """Listed as ordered while a retry with its key may still start it (and a day more, for the workflow it
    would start); after that no letter will come of it, and the person's list does not show one as ordered
    for the days the item is kept."""
    number = driver.person(Category.ADULT).identity_number
    with injected_faults() as faults:
        faults.add("stepfunctions", "StartExecution", code="ServiceUnavailable", status=503, times=10)
        assert driver.order(number, idempotency_key="k-given-up").status == 503
    (left,) = driver.letters_of(number)
    clock = MovableClock(left.ordered_at)
    account = PinLetterAccount(driver.letters, clock, notice_queue(driver))
    clock.advance(ABANDONED_AFTER - timedelta(seconds=1))
    assert [(x.letter_id, x.status) for x in account.letters(driver.key(number))] == [
        (left.letter_id, LetterStatus.ORDERED)
    ]
    clock.advance(timedelta(seconds=1))
    assert account.letters(driver.key(number)) == []


@pytest.mark.parametrize("idempotency_key", [None, "k-lost"])
def test_a_start_made_whose_answer_was_lost_is_an_order_placed(
    driver: LetterDriver, idempotency_key: str | None
) -> None:
    """Taken away, as a start that failed is, its workflow failed for want of its letter (an alarm, no
    letter), and a retry with its key made an order that no workflow would ever run."""
    number = driver.person(Category.ADULT).identity_number
    with injected_faults() as faults:
        faults.add("stepfunctions", "StartExecution", after="lost")
        response = driver.order(number, idempotency_key=idempotency_key)
        assert faults.injected == [("stepfunctions", "StartExecution", "lost")]
    assert response.status == 202
    job = driver.next_print_job()  # its workflow runs: printed, and posted
    assert driver.report(job["letter_id"], "dispatched").status == 204
    assert driver.finished(job["letter_id"])["status"] == "SUCCEEDED"
    assert [(x.letter_id, x.status) for x in driver.letters_of(number)] == [(job["letter_id"], LetterStatus.DISPATCHED)]


# ---------------------------------------------------------------------- blocking
def test_blocking_stops_the_active_letter(driver: LetterDriver) -> None:
    number = driver.person(Category.ADULT).identity_number
    letter, _ = posted(driver, number)
    account = PinLetterAccount(driver.letters, SystemClock(), notice_queue(driver))

    letters = account.block(driver.key(number))

    assert [(x.letter_id, x.status) for x in letters] == [(letter.letter_id, LetterStatus.BLOCKED)]
    assert account.block(driver.key(number)) == letters  # nothing more to block


def block_failing_at(account: PinLetterAccount, person: PersonKey, letter_id: str) -> None:
    """A block that meets DynamoDB failing past the SDK's retries at the letter's transaction: an error."""
    with injected_faults() as faults:
        faults.add(
            "dynamodb",
            "TransactWriteItems",
            code="InternalServerError",
            status=500,
            times=10,
            here=True,
            where=lambda params: letter_id in json.dumps(params),
        )
        with pytest.raises(ClientError):
            account.block(person)
    assert faults.injected


def test_a_block_that_fails_midway_never_leaves_the_posted_letter_working_after_telling_of_a_block(
    driver: LetterDriver,
) -> None:
    """A posted letter and a newer one at the printer, and DynamoDB failing past the SDK's retries at the
    posted one's block: the person is not told of a block (the one at the printer's) while the posted
    letter, whose codes work now, is not blocked. It is blocked first; the block made again blocks both."""
    number = driver.person(Category.ADULT).identity_number
    letter, _ = posted(driver, number)
    person = driver.key(number)
    age_ledger(driver, number, timedelta(days=2))  # a new letter may be ordered
    assert driver.order(number).status == 202
    printing = driver.next_print_job()["letter_id"]
    account = wiring.pin_letters(os.environ).account
    block_failing_at(account, person, letter.letter_id)
    kinds = [e.type.value for e in security_events(driver).page(person, None, 100).events]
    assert "pin-letter-blocked" not in kinds  # the proof no notice of a block is delivered without
    assert {x.letter_id: x.status for x in driver.letters_of(number)}[printing] is LetterStatus.PRINTING
    assert [x.status for x in account.block(person)] == [LetterStatus.BLOCKED] * 2


def test_a_block_blocks_the_letter_at_the_printer_before_one_ordered(driver: LetterDriver) -> None:
    """The person's index is eventually consistent: a letter posted a moment ago may still be listed as at
    the printer. It goes before one ordered (and one at the printer's codes come to work first)."""
    number = driver.person(Category.ADULT).identity_number
    person = driver.key(number)
    assert driver.order(number).status == 202
    printing = driver.next_print_job()["letter_id"]
    order = PinLetter(str(uuid.uuid4()), person, LetterStatus.ORDERED, datetime.now(UTC))
    driver.letters.create_order(order, datetime.now(UTC) + timedelta(days=1))
    account = wiring.pin_letters(os.environ).account
    assert [x.letter_id for x in account.letters(person)] == [order.letter_id, printing]  # newest first
    block_failing_at(account, person, printing)
    assert [x.status for x in account.letters(person)] == [LetterStatus.ORDERED, LetterStatus.PRINTING]


def test_a_block_that_listed_a_letter_blocked_meanwhile_answers_with_the_letters(driver: LetterDriver) -> None:
    """A double click: the second block read the letter as posted; its write finds it blocked (a 500 once)."""
    number = driver.person(Category.ADULT).identity_number
    letter, _ = posted(driver, number)
    person = driver.key(number)
    with index_lagging(driver, person, reads=1):  # the second reads the letters as they were before the first
        first = PinLetterAccount(driver.letters, SystemClock(), notice_queue(driver)).block(person)
        second = wiring.pin_letters(os.environ).account.block(person)

    assert second == first
    assert [(x.letter_id, x.status) for x in second] == [(letter.letter_id, LetterStatus.BLOCKED)]
    kinds = [e.type.value for e in security_events(driver).page(person, None, 100).events]
    assert kinds.count("pin-letter-blocked") == 1  # written with the block, once


def test_a_block_answers_with_the_letter_blocked_while_the_index_still_shows_it_posted(driver: LetterDriver) -> None:
    number = driver.person(Category.ADULT).identity_number
    letter, _ = posted(driver, number)
    person = driver.key(number)

    with index_lagging(driver, person):  # however often it is read
        account = wiring.pin_letters(os.environ).account
        letters = account.block(person)
        assert [x.status for x in account.letters(person)] == [LetterStatus.DISPATCHED]  # the index lags

    assert [(x.letter_id, x.status) for x in letters] == [(letter.letter_id, LetterStatus.BLOCKED)]
    stored = driver.letters.get(letter.letter_id)
    assert stored is not None
    assert stored.status is LetterStatus.BLOCKED


def test_a_block_never_answers_with_an_order_refused_meanwhile(driver: LetterDriver) -> None:
    """A refused order is no letter: the person's list never shows one, and the block's answer (whose
    model has no such status: a 500 once) does not either. The person's index shows an order as ordered;
    the letter itself was refused meanwhile (the workflow found the person over the quota), so the block's
    condition fails and the letter, read again, is refused."""
    number = driver.person(Category.ADULT).identity_number
    letter, _ = posted(driver, number)  # the quota's one letter
    age_ledger(driver, number, timedelta(minutes=2))  # not the same order sent twice (`REPEATED`)
    person = driver.key(number)
    order = PinLetter(str(uuid.uuid4()), person, LetterStatus.ORDERED, datetime.now(UTC))
    driver.letters.create_order(order, datetime.now(UTC) + timedelta(days=1))

    with index_lagging(driver, person):  # listed as ordered
        assert wiring.letter_workflow(os.environ).validate_recipient(order.letter_id) is RecipientOutcome.QUOTA
        letters = wiring.pin_letters(os.environ).account.block(person)

    assert [(x.letter_id, x.status) for x in letters] == [(letter.letter_id, LetterStatus.BLOCKED)]
    refused = driver.letters.get(order.letter_id)
    assert refused is not None
    assert refused.status is LetterStatus.REFUSED


def test_a_block_that_meets_another_blocks_transaction_reads_again(driver: LetterDriver) -> None:
    """Two blocks at once: DynamoDB may cancel the second for the first one's transaction in flight
    (TransactionConflict) rather than for its condition. Read again, the letter is blocked: no 500."""
    number = driver.person(Category.ADULT).identity_number
    posted(driver, number)
    person = driver.key(number)
    with index_lagging(driver, person, reads=1), injected_faults() as faults:
        PinLetterAccount(driver.letters, SystemClock(), notice_queue(driver)).block(person)
        reasons = ("TransactionConflict", "None", "None")
        faults.add("dynamodb", "TransactWriteItems", code="TransactionCanceledException", status=400, reasons=reasons)
        second = wiring.pin_letters(os.environ).account.block(person)
        assert faults.injected == [("dynamodb", "TransactWriteItems", "TransactionCanceledException")]
    assert [x.status for x in second] == [LetterStatus.BLOCKED]


def test_wrong_codes_at_once_past_the_letters_limit_block_it_once_and_tell_once(driver: LetterDriver) -> None:
    """Two wrong PIN codes judged at once, the fifth and sixth on the letter: both read it posted, both
    block it. The second finds it blocked (a 500 once); the person is told once."""
    number = driver.person(Category.ADULT).identity_number
    driver.add_contacts(number, mobile="+4790000017")
    letter, _ = posted(driver, number)
    for _ in range(MAX_PIN_FAILURES_PER_LETTER - 1):
        driver.letters.record_pin_failure(letter.letter_id)
    notices = notice_queue(driver)
    guard = WrongPinCodes(driver.letters, notices)
    now = datetime.now(UTC)
    guard.record(letter, now)  # the fifth: blocks
    guard.record(letter, now)  # the sixth, as read before the fifth's block: blocked meanwhile

    blocked = driver.letters.get(letter.letter_id)
    assert blocked is not None
    assert blocked.status is LetterStatus.BLOCKED
    wait_for(driver.local.outbox.sms, lambda sms: any("sperret" in m["message"] for m in sms))
    driver.notices_delivered()
    assert sum("sperret" in m["message"] for m in driver.local.outbox.sms() if m["to"] == "+4790000017") == 1


def test_a_letter_blocked_at_the_printer_never_becomes_active(driver: LetterDriver) -> None:
    number = driver.person(Category.ADULT).identity_number
    driver.order(number)
    job = driver.next_print_job()
    PinLetterAccount(driver.letters, SystemClock(), notice_queue(driver)).block(driver.key(number))

    assert driver.report(job["letter_id"], "dispatched").status == 204
    assert driver.finished(job["letter_id"])["status"] == "SUCCEEDED"
    letter = driver.letters.get(job["letter_id"])
    assert letter is not None
    assert letter.status is LetterStatus.BLOCKED
    assert letter.dispatched_at is not None
    assert documents_of(driver, letter.letter_id) == []  # posted: its document, codes in clear, is gone


# ---------------------------------------------------------------------- the callback route
def test_the_callback_takes_only_the_print_providers_signed_reports(driver: LetterDriver) -> None:
    driver.order(driver.person(Category.ADULT).identity_number)
    letter_id = driver.next_print_job()["letter_id"]

    assert driver.report(letter_id, "dispatched", signer=None).status == 403
    assert driver.report(letter_id, "dispatched", signer="SOMEONEELSE").status == 403
    driver.gateway.iam_principals["OTHERROLE"] = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/Other/session"
    assert driver.report(letter_id, "dispatched", signer="OTHERROLE").status == 404
    # the provider's role by its name, in another account: not it
    provider_role = driver.local.stack.refs["PrintProviderRole"]
    driver.gateway.iam_principals["ELSEWHERE"] = (
        f"arn:aws:sts::210987654321:assumed-role/{provider_role}/print-provider"
    )
    assert driver.report(letter_id, "dispatched", signer="ELSEWHERE").status == 404
    assert driver.letters.get(letter_id).status is LetterStatus.PRINTING  # type: ignore[union-attr]


def test_the_callback_answers_repeats_and_contradictions(driver: LetterDriver) -> None:
    driver.order(driver.person(Category.ADULT).identity_number)
    letter_id = driver.next_print_job()["letter_id"]

    assert driver.report(letter_id, "dispatched").status == 204
    driver.finished(letter_id)
    assert driver.report(letter_id, "dispatched").status == 204
    conflict = driver.report(letter_id, "failed", reason="late")
    assert conflict.status == 409
    assert json.loads(conflict.body)["type"] == "/problems/conflict"


def test_a_report_repeated_while_the_workflow_settles_the_letter_is_taken(driver: LetterDriver) -> None:
    """The provider may send a report again (its answer lost) after the first resumed the workflow and
    before the activation is written (here: held up by throttling, which the state machine retries). The
    task is closed by then: Step Functions answers its token with TaskTimedOut (a 409 here, once), and the
    local executor takes it again, a contradicting report too (a 204 here, once)."""
    driver.order(driver.person(Category.ADULT).identity_number)
    letter_id = driver.next_print_job()["letter_id"]
    with injected_faults() as faults:
        faults.add("dynamodb", "TransactWriteItems", code="ThrottlingException", status=400, times=50)
        assert driver.report(letter_id, "dispatched").status == 204
        assert driver.report(letter_id, "dispatched").status == 204  # not a 409
        contradiction = driver.report(letter_id, "failed", reason="late")
        assert (contradiction.status, json.loads(contradiction.body)["type"]) == (409, "/problems/conflict")
        pending = driver.letters.get(letter_id)
        assert pending is not None
        assert pending.dispatched_at is None  # still being settled: the repeat came in the window
    assert driver.finished(letter_id)["status"] == "SUCCEEDED"
    assert driver.report(letter_id, "dispatched").status == 204


@pytest.mark.parametrize("blocked", [False, True])
@pytest.mark.parametrize("status", ["dispatched", "failed"])
def test_a_report_that_resumed_the_workflow_but_was_not_recorded_is_taken_when_made_again(
    driver: LetterDriver, status: str, blocked: bool
) -> None:
    """The workflow resumed, the report's own record failed (503 to the provider); the provider's repeat
    finds the task closed (AWS answers its token with TaskTimedOut; moto's executor would take it again)
    and nothing recorded. It is the same report: taken, not a 409. The other report contradicts it: a 409,
    after the repeat (recorded then) and before it (its workflow's history tells); also for a letter
    blocked at the printer (a "failed" agrees with a blocked letter unposted only where no report resumed
    its workflow)."""
    number = driver.person(Category.ADULT).identity_number
    driver.order(number)
    letter_id = driver.next_print_job()["letter_id"]
    if blocked:
        PinLetterAccount(driver.letters, SystemClock(), notice_queue(driver)).block(driver.key(number))
    with injected_faults() as faults:
        faults.add("dynamodb", "TransactWriteItems", code="ThrottlingException", status=400, times=50)
        faults.add("dynamodb", "UpdateItem", code="InternalServerError", status=500, here=True)
        # (a blocked letter's posting is written alone: held up likewise)
        faults.add("dynamodb", "UpdateItem", code="ThrottlingException", status=400, times=50, elsewhere=True)
        assert driver.report(letter_id, status).status == 503
        pending = driver.letters.get(letter_id)
        assert pending is not None
        assert (pending.reported, pending.dispatched_at) == (None, None)
        operation = "SendTaskSuccess" if status == "dispatched" else "SendTaskFailure"
        other = "failed" if status == "dispatched" else "dispatched"
        contradicting = "SendTaskFailure" if other == "failed" else "SendTaskSuccess"
        for before_the_repeat in (True, False):
            faults.add("stepfunctions", contradicting, code="TaskTimedOut", status=400, here=True)
            assert driver.report(letter_id, other).status == 409
            if before_the_repeat:
                faults.add("stepfunctions", operation, code="TaskTimedOut", status=400, here=True)
                assert driver.report(letter_id, status).status == 204
    assert driver.finished(letter_id)["status"] == ("SUCCEEDED" if status == "dispatched" else "FAILED")


def test_a_failure_s_long_reason_is_taken(driver: LetterDriver) -> None:
    """API.md sets the reason no limit, and it is not kept: a provider that says much (a stack trace, up to
    8 KiB) is not kept from reporting its failure."""
    driver.order(driver.person(Category.ADULT).identity_number)
    letter_id = driver.next_print_job()["letter_id"]
    assert driver.report(letter_id, "failed", reason="Traceback (most recent call last):\n" * 200).status == 204
    assert driver.finished(letter_id)["status"] == "FAILED"


def test_the_callback_refuses_what_is_not_a_letter_at_the_printer(driver: LetterDriver) -> None:
    unknown = "0f5e8f4e-1c2d-4b3a-9e8f-7a6b5c4d3e2f"
    assert driver.report(unknown, "dispatched").status == 404
    assert driver.report("not-a-letter-id", "dispatched").status == 422
    driver.order(driver.person(Category.ADULT).identity_number)
    letter_id = driver.next_print_job()["letter_id"]
    assert driver.report(letter_id, "lost").status == 422


def test_a_keyed_order_s_record_in_progress_lapses_with_the_invocation(driver: LetterDriver) -> None:
    """Powertools' idempotency is loaded at the first keyed order (not at cold start), after the
    invocation's context was given: its in-progress record still lapses with that invocation's deadline,
    so that a crash mid-order leaves a record that a retry soon gets past."""
    number = driver.person(Category.ADULT).identity_number
    services = wiring.pin_letters(os.environ)
    services.once_only.use_lambda_context(LambdaContext("PinLettersFunction", 512, 10))
    before = time.time()
    services.ordering.order(number, "198.51.100.51", "k-deadline")
    items = driver.dynamodb.scan(TableName=driver.local.stack.refs["IdempotencyTable"])["Items"]
    assert len(items) == 1
    lapses_at = int(items[0]["in_progress_expiration"]["N"]) / 1000
    assert before + 9 <= lapses_at <= time.time() + 10


def test_a_keyed_order_that_runs_out_of_time_is_for_a_retry_which_orders_once(driver: LetterDriver) -> None:
    """The invocation's deadline refuses the start, and then Powertools' removal of its in-progress record
    too (time only shrinks): that is raised as the deadline's own (a 503 with Retry-After, as an order
    without a key), not as Powertools' wrapping of it (a 500). The retry with the key then orders, once."""
    number = driver.person(Category.ADULT).identity_number
    with deadline.within(LambdaContext("PinLettersFunction", 512, 60)), contextlib.ExitStack() as late:
        run_out = lambda: late.enter_context(deadline.within(LambdaContext("PinLettersFunction", 512, 0)))  # noqa: E731
        with before_first_aws_call("stepfunctions.StartExecution", run_out):
            services = wiring.pin_letters(os.environ)
            services.once_only.use_lambda_context(LambdaContext("PinLettersFunction", 512, 60))
            with pytest.raises(OutOfTime):
                services.ordering.order(number, "198.51.100.52", "k-out-of-time")
    assert driver.order(number, idempotency_key="k-out-of-time").status == 202
    job = driver.next_print_job()
    assert driver.report(job["letter_id"], "dispatched").status == 204
    assert driver.finished(job["letter_id"])["status"] == "SUCCEEDED"
    assert [x.status for x in driver.letters_of(number)] == [LetterStatus.DISPATCHED]

"""The PIN-letter workflow: the real state machine on moto's executor, with the real task handlers.

The tests play the print provider: they take its jobs from the print queue and report through the callback route."""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.sns.models import sns_backends

import functions.letter_workflow.app as workflow_function
from local.aws import ACCOUNT_ID, REGION
from local.faults import injected_faults
from local.functions import LambdaContext
from local.population_seed import Category
from local.print_provider import read_printed_letter
from local.stack import LETTERS_TABLE, PRINT_QUEUE
from minid import deadline, wiring
from minid.adapters.clock import SystemClock
from minid.adapters.dynamodb import to_item
from minid.adapters.letters import letter_key
from minid.adapters.print_documents import UnprintableLetter
from minid.adapters.workflow import PrintTimeouts
from minid.deadline import OutOfTime
from minid.domain.contacts import Language
from minid.domain.errors import NotFound
from minid.domain.events import SecurityEventType
from minid.domain.identity import compose_identity_number
from minid.domain.keys import PersonKey
from minid.domain.letters.account import PinLetterAccount
from minid.domain.letters.guard import WrongPinCodes
from minid.domain.letters.model import (
    MAX_PIN_FAILURES_PER_LETTER,
    Activation,
    LetterStatus,
    PinLetter,
    RecipientOutcome,
    letter_address,
)
from minid.domain.letters.workflow import (
    DOCUMENT_DELETE_RETRIED_FOR,
    SETTLE_ATTEMPTS,
    DocumentLeft,
    LetterWorkflowTasks,
    UnsentDocumentLeft,
)
from minid.domain.time import today_in_norway
from tests.integration.letters import (
    LetterDriver,
    age_ledger,
    assert_reported_not_posted,
    before_first_aws_call,
    documents_of,
    index_lagging,
    notice_queue,
    on_functions_clients,
    posted,
    registered_ceased,
    registered_dead,
    security_events,
    start_with_timeouts,
    state_function,
    wait_for,
)


# ---------------------------------------------------------------------- the workflow
def test_a_letter_is_printed_posted_and_activated(driver: LetterDriver) -> None:
    person = driver.person(Category.ADULT)
    driver.add_contacts(person.identity_number, mobile="+4791234567", email="kari@example.no")

    letter, codes = posted(driver, person.identity_number)

    assert letter.status is LetterStatus.DISPATCHED
    assert letter.dispatched_at is not None
    assert sorted(codes, key=int) == [str(i) for i in range(1, 21)]
    assert len(set(codes.values())) == 20
    keyer = driver.local.keyer
    assert letter.code_hashes == {int(i): keyer.pin_code_hash(letter.letter_id, int(i), c) for i, c in codes.items()}
    assert letter.codes_remaining == 20
    # posted, its print document (every code in clear) has served its purpose: it is gone, not kept 30 days
    assert documents_of(driver, letter.letter_id) == []


def test_the_print_document_is_a_window_envelope_letter_with_a_manifest(driver: LetterDriver) -> None:
    person = driver.person(Category.D_NUMBER_ABROAD)
    driver.order(person.identity_number)
    job = driver.next_print_job()
    s3 = driver.local.session.client("s3")
    pdf_object = s3.get_object(Bucket=job["bucket"], Key=job["pdf"])
    manifest = json.loads(s3.get_object(Bucket=job["bucket"], Key=job["manifest"])["Body"].read())
    page = read_printed_letter(pdf_object["Body"].read())

    assert pdf_object["ServerSideEncryption"] == "aws:kms"
    assert page.recipient == person.person.name
    assert page.address == letter_address(person.person)
    assert manifest["destination_country"] == person.person.address_abroad.country_code  # type: ignore[union-attr]
    assert manifest["postage"] == "international"
    assert not set(page.codes.values()) & set(json.dumps(manifest).split('"'))
    assert person.identity_number not in job["pdf"] + job["manifest"]


def test_the_person_is_told_on_their_verified_contacts(driver: LetterDriver) -> None:
    person = driver.person(Category.ADULT)
    driver.add_contacts(person.identity_number, mobile="+4791234567", email="kari@example.no")
    english = driver.person(Category.D_NUMBER_NORWAY)
    driver.add_contacts(english.identity_number, email="tomas@example.lt", language="en")

    posted(driver, person.identity_number)
    posted(driver, english.identity_number)

    outbox = wait_for(driver.local.outbox.snapshot, lambda o: len(o["emails"]) == 2 and o["sms"])
    assert [s["to"] for s in outbox["sms"]] == ["+4791234567"]
    assert "ble sendt i posten" in outbox["sms"][0]["message"]
    emails = {e["to"]: e for e in outbox["emails"]}
    assert "PIN-kodebrevet" in emails["kari@example.no"]["subject"]
    assert "was posted" in emails["tomas@example.lt"]["body"]


def test_a_person_without_contacts_gets_the_letter_and_no_notice(driver: LetterDriver) -> None:
    posted(driver, driver.person(Category.ADULT).identity_number)
    driver.notices_delivered()  # the posted notice taken, and sent to no one
    assert driver.local.outbox.snapshot()["sms"] == []
    assert driver.local.outbox.snapshot()["emails"] == []


@pytest.mark.parametrize("category", [Category.CHILD, Category.DECEASED, Category.NO_ADDRESS, Category.EMIGRATED])
def test_an_ineligible_person_gets_no_letter(driver: LetterDriver, category: Category) -> None:
    number = driver.person(category).identity_number
    assert driver.order(number).status == 202
    (execution,) = driver.executions()  # named by the order's id: refused, it leaves the index at once
    assert driver.finished(execution["name"])["status"] == "SUCCEEDED"
    assert driver.no_print_job()
    assert driver.letters.get(execution["name"]).status is LetterStatus.REFUSED  # type: ignore[union-attr]
    assert driver.letters_of(number) == []  # out of the person's index
    assert PinLetterAccount(driver.letters, SystemClock(), notice_queue(driver)).letters(driver.key(number)) == []


def test_an_unknown_number_gets_no_letter(driver: LetterDriver) -> None:
    unknown = compose_identity_number(date(1990, 6, 1), 123, synthetic=True)
    assert unknown is not None
    assert unknown not in {p.identity_number for p in driver.local.population}

    assert driver.order(unknown).status == 202

    (execution,) = driver.executions()
    assert driver.finished(execution["name"])["status"] == "SUCCEEDED"
    assert driver.no_print_job()


def test_a_second_order_within_24_hours_is_refused_and_told(driver: LetterDriver) -> None:
    number = driver.person(Category.ADULT).identity_number
    driver.add_contacts(number, mobile="+4798765432")
    letter, _ = posted(driver, number)
    age_ledger(driver, number, timedelta(minutes=2))  # not the same order sent twice (`REPEATED`)

    def orders() -> list[str]:  # each order's workflow is named by its id
        return [e["name"] for e in driver.executions() if e["name"] != letter.letter_id]

    assert driver.order(number).status == 202
    (refused,) = orders()
    assert driver.finished(refused)["status"] == "SUCCEEDED"
    assert driver.letters.get(refused).status is LetterStatus.REFUSED  # type: ignore[union-attr]
    assert driver.no_print_job()
    outbox = wait_for(driver.local.outbox.snapshot, lambda o: len(o["sms"]) == 2)
    assert "sender ikke et nytt brev" in outbox["sms"][1]["message"]

    for _ in range(3):  # orders in the person's name, by anyone: refused, and told once a day, not once each
        assert driver.order(number).status == 202
    for order in wait_for(orders, lambda names: len(names) == 4):
        driver.finished(order)
    driver.notices_delivered()
    assert sum("sender ikke et nytt brev" in m["message"] for m in driver.local.outbox.sms()) == 1
    # and out of the person's index, which their list, a block and an activation read: there, orders in
    # their name by anyone would pile up for the 91 days a refused order is kept, until those time out
    assert [x.letter_id for x in driver.letters_of(number)] == [letter.letter_id]
    assert all(driver.letters.get(order).person == driver.key(number) for order in orders())  # type: ignore[union-attr]


def test_the_same_order_sent_twice_without_a_key_is_told_to_no_one(driver: LetterDriver) -> None:
    """A double click, or the form sent again after its answer was lost, without an idempotency key: the
    second is refused by the quota, but is no order refused to tell of (the first's letter is on its way):
    no notice saying the order was refused, no refusal in the history."""
    number = driver.person(Category.ADULT).identity_number
    driver.add_contacts(number, mobile="+4798765431")
    for _ in range(2):
        assert driver.order(number).status == 202
    job = driver.next_print_job()
    runs = wait_for(driver.executions, lambda runs: len(runs) == 2)
    (second,) = [run["name"] for run in runs if run["name"] != job["letter_id"]]
    assert driver.finished(second)["status"] == "SUCCEEDED"
    assert driver.letters.get(second).outcome is RecipientOutcome.REPEATED  # type: ignore[union-attr]
    assert driver.no_print_job()
    driver.notices_delivered()
    assert not any("sender ikke et nytt brev" in m["message"] for m in driver.local.outbox.sms())
    events = security_events(driver).page(driver.key(number), None, 100).events
    assert [e.type.value for e in events] == ["pin-letter-ordered"]


def test_the_same_order_sent_twice_is_told_apart_by_when_each_was_placed(driver: LetterDriver) -> None:
    """The first order's check held up (a throttled workflow, its retries): the second, placed a moment
    after it, is still the same order sent twice, by when each was placed, not when the first was checked."""
    number = driver.person(Category.ADULT).identity_number
    key = driver.key(number)
    placed = datetime.now(UTC) - timedelta(seconds=90)
    first, second = (
        PinLetter(str(uuid.uuid4()), key, LetterStatus.ORDERED, placed + timedelta(seconds=s)) for s in (0, 0.3)
    )
    for order in (first, second):
        driver.letters.create_order(order, datetime.now(UTC) + timedelta(days=1))
    tasks = wiring.letter_workflow(os.environ)
    assert tasks.validate_recipient(first.letter_id) is RecipientOutcome.ACCEPTED  # checked 90 s late
    assert tasks.validate_recipient(second.letter_id) is RecipientOutcome.REPEATED


def test_the_quota_s_24_hours_run_from_when_a_letter_was_accepted(driver: LetterDriver) -> None:
    """An order checked a day after it was placed (a keyed retry after its start failed) holds the
    person's place for 24 hours from its check (API.md: "sent a letter in the last 24 hours"), not from
    when it was placed: else the next order, a moment later, would make a second letter."""
    number = driver.person(Category.ADULT).identity_number
    key = driver.key(number)
    late = PinLetter(str(uuid.uuid4()), key, LetterStatus.ORDERED, datetime.now(UTC) - timedelta(hours=24, minutes=5))
    now = PinLetter(str(uuid.uuid4()), key, LetterStatus.ORDERED, datetime.now(UTC))
    for order in (late, now):
        driver.letters.create_order(order, datetime.now(UTC) + timedelta(days=1))
    tasks = wiring.letter_workflow(os.environ)
    assert tasks.validate_recipient(late.letter_id) is RecipientOutcome.ACCEPTED
    assert tasks.validate_recipient(now.letter_id) is RecipientOutcome.QUOTA


@pytest.mark.parametrize(
    ("outcome", "told"),
    [
        (RecipientOutcome.NO_ADDRESS, "ingen adresse vi kan sende brevet til"),
        (RecipientOutcome.NUMBER_REPLACED, "erstattet nummeret det ble bestilt med"),
        (RecipientOutcome.PROTECTED_ADDRESS, "kan ikke sende det til deg i posten"),
    ],
)
def test_an_order_refused_for_want_of_an_address_for_a_number_replaced_or_a_protected_address_is_told_once_a_day(
    driver: LetterDriver, outcome: RecipientOutcome, told: str
) -> None:
    """Alive and old enough, but no address the post can deliver to; a D-number the register has replaced
    by a fødselsnummer (seeds/004: the person uses that from then on); or an address the register has as
    strictly confidential (a person under threat: no print provider, document or envelope is to know it,
    though a copy of the register held it). No letter, and the person told why (on their contacts, where
    they have a MinID: the user made with the old number's), once a day however many orders, and in their
    history; rather than order again and again, hearing nothing."""
    table = driver.local.stack.refs["PopulationRegisterTable"]
    if outcome is RecipientOutcome.NO_ADDRESS:
        number = driver.person(Category.ADULT).identity_number
        driver.dynamodb.update_item(
            TableName=table, Key={"pk": {"S": driver.key(number)}}, UpdateExpression="REMOVE address"
        )
    elif outcome is RecipientOutcome.PROTECTED_ADDRESS:
        number = driver.person(Category.ADULT).identity_number
        driver.dynamodb.update_item(
            TableName=table,
            Key={"pk": {"S": driver.key(number)}},
            UpdateExpression="SET address_protection = :strictly",
            ExpressionAttributeValues={":strictly": {"S": "strictly_confidential"}},
        )
    else:
        number = driver.person(Category.D_NUMBER_NORWAY).identity_number
        registered_ceased(driver, number)
    driver.add_contacts(number, mobile="+4798765442")
    for _ in range(2):
        assert driver.order(number).status == 202
    orders = wait_for(lambda: [e["name"] for e in driver.executions()], lambda names: len(names) == 2)
    for order in orders:
        assert driver.finished(order)["status"] == "SUCCEEDED"
        refused = driver.letters.get(order)
        assert refused is not None
        assert (refused.status, refused.outcome) == (LetterStatus.REFUSED, outcome)
    assert driver.no_print_job()
    driver.notices_delivered()
    sms = [m["message"] for m in driver.local.outbox.sms() if m["to"] == "+4798765442"]
    assert len(sms) == 1
    assert told in sms[0]
    events = security_events(driver).page(driver.key(number), None, 100).events
    assert [(e.type.value, e.detail) for e in events] == [("pin-letter-refused", {"reason": outcome.value})]  # once


def test_refusals_for_different_reasons_on_one_day_are_each_told(driver: LetterDriver) -> None:
    """Told once a day for each reason, not once a day in all: each says something else to do (put the
    address right, or order with the new number), and the first must not hide the second."""
    number = driver.person(Category.ADULT).identity_number
    key = driver.key(number)
    driver.add_contacts(number, mobile="+4798765444")
    table = driver.local.stack.refs["PopulationRegisterTable"]
    driver.dynamodb.update_item(TableName=table, Key={"pk": {"S": key}}, UpdateExpression="REMOVE address")
    assert driver.order(number).status == 202
    (first,) = driver.executions()
    assert driver.finished(first["name"])["status"] == "SUCCEEDED"  # refused for want of an address
    registered_ceased(driver, number)
    assert driver.order(number).status == 202
    orders = wait_for(lambda: [e["name"] for e in driver.executions()], lambda names: len(names) == 2)
    (second,) = set(orders) - {first["name"]}
    assert driver.finished(second)["status"] == "SUCCEEDED"  # refused for the number replaced
    driver.notices_delivered()
    sms = [m["message"] for m in driver.local.outbox.sms() if m["to"] == "+4798765444"]
    assert len(sms) == 2  # (in either order: a standard queue)
    assert any("ingen adresse vi kan sende brevet til" in text for text in sms)
    assert any("erstattet nummeret det ble bestilt med" in text for text in sms)
    events = security_events(driver).page(key, None, 100).events
    assert sorted(e.detail["reason"] for e in events if e.type.value == "pin-letter-refused") == [
        "no-address",
        "number-replaced",
    ]


def test_orders_refused_for_the_quota_are_in_the_history_once_a_day(driver: LetterDriver) -> None:
    """Anyone may order in anyone's name: an event for each order refused would bury the person's
    history (a lock, a contact changed) under pages of refusals. One a day, as the notice."""
    number = driver.person(Category.ADULT).identity_number
    key = driver.key(number)
    posted(driver, number)  # the quota's letter
    age_ledger(driver, number, timedelta(minutes=2))  # not the same order sent twice (`REPEATED`)
    for _ in range(3):
        assert driver.order(number).status == 202
    orders = wait_for(lambda: [e["name"] for e in driver.executions()], lambda names: len(names) == 4)
    for order in orders:
        assert driver.finished(order)["status"] == "SUCCEEDED"
    refused = [order for order in orders if driver.letters.get(order).outcome is RecipientOutcome.QUOTA]  # type: ignore[union-attr]
    assert len(refused) == 3

    def refusals() -> list[str]:
        events = security_events(driver).page(key, None, 100).events
        return [e.reference for e in events if e.type.value == "pin-letter-refused"]

    assert len(refusals()) == 1
    assert refusals()[0] in refused
    today = today_in_norway(SystemClock())

    def refused_again_with_the_last_recorded_on(day: date, done: int) -> None:
        driver.dynamodb.update_item(
            TableName=driver.local.stack.refs["PinLettersTable"],
            Key=to_item({"pk": f"person#{key}", "sk": "letters"}),
            UpdateExpression="SET refusal_recorded_quota = :day",
            ExpressionAttributeValues=to_item({":day": day.isoformat()}),
        )
        assert driver.order(number).status == 202
        wait_for(lambda: [e for e in driver.executions() if e["status"] != "RUNNING"], lambda runs: len(runs) == done)

    refused_again_with_the_last_recorded_on(today - timedelta(days=1), 5)  # as if a day had passed
    assert len(refusals()) == 2
    # one of the next day's recorded first (this order's check retried past midnight): not again
    refused_again_with_the_last_recorded_on(today + timedelta(days=1), 6)
    assert len(refusals()) == 2


def test_a_refusal_recorded_meanwhile_for_a_later_day_is_not_recorded_again(driver: LetterDriver) -> None:
    """The ledger's mark is written with the refusal only if no refusal of a later day (nor of the same)
    was noted between the check's read and its write: an order of today settled after one of tomorrow's
    (its check retried past midnight) puts nothing in the history, and does not move the mark back a day."""
    number = driver.person(Category.ADULT).identity_number
    key = driver.key(number)
    posted(driver, number)  # the quota's letter
    age_ledger(driver, number, timedelta(minutes=2))  # not the same order sent twice (`REPEATED`)
    order = PinLetter(str(uuid.uuid4()), key, LetterStatus.ORDERED, datetime.now(UTC))
    driver.letters.create_order(order, datetime.now(UTC) + timedelta(days=1))
    table, ledger = driver.local.stack.refs["PinLettersTable"], to_item({"pk": f"person#{key}", "sk": "letters"})
    tomorrow = (today_in_norway(SystemClock()) + timedelta(days=1)).isoformat()

    def recorded_for_tomorrow() -> None:
        driver.dynamodb.update_item(
            TableName=table,
            Key=ledger,
            UpdateExpression="SET refusal_recorded_quota = :day",
            ExpressionAttributeValues=to_item({":day": tomorrow}),
        )

    with before_first_aws_call("dynamodb.TransactWriteItems", recorded_for_tomorrow) as outcomes:
        assert wiring.letter_workflow(os.environ).validate_recipient(order.letter_id) is RecipientOutcome.QUOTA
    assert outcomes[0] == "TransactionCanceledException"  # the mark's condition: not a day back
    events = security_events(driver).page(key, None, 100).events
    assert "pin-letter-refused" not in [e.type.value for e in events]
    assert driver.dynamodb.get_item(TableName=table, Key=ledger)["Item"]["refusal_recorded_quota"] == {"S": tomorrow}


@pytest.mark.parametrize("apart", [timedelta(minutes=2), timedelta(seconds=1)], ids=["quota", "repeated"])
def test_a_place_freed_between_the_check_s_read_and_its_write_is_the_order_s(
    driver: LetterDriver, apart: timedelta
) -> None:
    """The quota's letter blocked (its place freed) while a later order's check was judging it full: the
    refusal is written only on the ledger it was judged on, so the check reads again and takes the place,
    as an order a moment later would, rather than refusing the person a letter the quota allows."""
    number = driver.person(Category.ADULT).identity_number
    key = driver.key(number)
    first, _ = posted(driver, number)
    age_ledger(driver, number, apart)  # apart by more than a minute: a second order; by less: the same twice
    order = PinLetter(str(uuid.uuid4()), key, LetterStatus.ORDERED, datetime.now(UTC))
    driver.letters.create_order(order, datetime.now(UTC) + timedelta(days=1))

    def freed_meanwhile() -> None:
        driver.letters.release_quota(key, first.letter_id)

    with before_first_aws_call("dynamodb.TransactWriteItems", freed_meanwhile) as outcomes:
        assert wiring.letter_workflow(os.environ).validate_recipient(order.letter_id) is RecipientOutcome.ACCEPTED
    assert outcomes[0] == "TransactionCanceledException"  # the refusal's write, on the ledger as it was
    events = security_events(driver).page(key, None, 100).events
    assert "pin-letter-refused" not in [e.type.value for e in events]


def test_an_order_for_one_the_register_has_as_dead_tells_no_one(driver: LetterDriver) -> None:
    number = driver.person(Category.ADULT).identity_number
    driver.add_contacts(number, mobile="+4798765443")
    registered_dead(driver, number)
    assert driver.order(number).status == 202
    (order,) = wait_for(lambda: [e["name"] for e in driver.executions()], lambda names: len(names) == 1)
    assert driver.finished(order)["status"] == "SUCCEEDED"
    assert driver.letters.get(order).outcome is RecipientOutcome.INELIGIBLE  # type: ignore[union-attr]
    driver.notices_delivered()
    assert not [m for m in driver.local.outbox.sms() if m["to"] == "+4798765443"]
    assert security_events(driver).page(driver.key(number), None, 100).events == []


def _two_at_the_printer(driver: LetterDriver, number: str) -> tuple[PinLetter, str, str]:
    """A posted letter, then two more ordered days apart, both at the printer: (the posted, older, newer)."""
    first, _ = posted(driver, number)
    jobs = []
    for _ in range(2):
        age_ledger(driver, number, timedelta(days=2))
        assert driver.order(number).status == 202
        jobs.append(driver.next_print_job()["letter_id"])
    return first, jobs[0], jobs[1]


def _meanwhile(other: str) -> contextlib.AbstractContextManager[list[str]]:
    """The other letter's activation, by another execution environment, just before the first write (its
    transaction) of the tasks made within."""
    return before_first_aws_call(
        "dynamodb.TransactWriteItems", lambda: wiring.letter_workflow(os.environ).activate(other)
    )


@pytest.mark.parametrize("newer_between", [True, False], ids=["newer-meanwhile", "older-meanwhile"])
def test_two_letters_posted_at_once_leave_the_newer_one_active(driver: LetterDriver, newer_between: bool) -> None:
    """Two of a person's letters reported posted at once, each activation between the other's reads and
    its write: the newer letter is the active one, whichever lands first, and every other is superseded."""
    number = driver.person(Category.ADULT).identity_number
    first, older, newer = _two_at_the_printer(driver, number)
    with _meanwhile(newer if newer_between else older):
        tasks = wiring.letter_workflow(os.environ)
        if newer_between:
            assert tasks.activate(older) is Activation.SUPERSEDED
        else:
            assert tasks.activate(newer) is Activation.ACTIVE

    statuses = {letter.letter_id: letter.status for letter in driver.letters_of(number)}
    assert statuses[first.letter_id] is LetterStatus.SUPERSEDED
    assert statuses[older] is LetterStatus.SUPERSEDED
    assert statuses[newer] is LetterStatus.DISPATCHED
    assert driver.letters.pointers(driver.key(number)).active == newer
    for letter_id in (older, newer):  # activated here, not by their workflows: those wait on, for nothing
        driver.sfn.stop_execution(executionArn=driver.execution_arn(letter_id))


def activating(params: dict[str, Any]) -> bool:
    """An activation's transaction (the letter posted), not a failure's (the letter and its event)."""
    return ":dispatched" in json.dumps(params["TransactItems"][0])


def test_an_activation_that_fails_for_good_marks_the_letter_failed_and_reports_it(driver: LetterDriver) -> None:
    """Posted, but its activation fails with an error no retry mends: not left printing forever, unseen."""
    number = driver.person(Category.ADULT).identity_number
    assert driver.order(number).status == 202
    job = driver.next_print_job()
    with injected_faults() as faults:
        faults.add("dynamodb", "TransactWriteItems", code="ValidationException", status=400, times=20, where=activating)
        assert driver.report(job["letter_id"], "dispatched").status == 204
        execution = driver.finished(job["letter_id"])
    assert execution["status"] == "FAILED"
    failed = driver.letters.get(job["letter_id"])
    assert failed is not None
    assert failed.status is LetterStatus.FAILED
    assert_reported_not_posted(driver, job["letter_id"])
    # the provider sends its report again (its answer lost): taken as the same report, not a 409
    assert driver.report(job["letter_id"], "dispatched").status == 204


def test_a_dispatched_report_whose_record_was_lost_is_taken_after_its_activation_failed(driver: LetterDriver) -> None:
    """The report resumed the workflow, its own record failed (a 503 to the provider), and the activation
    then failed for good (the letter marked failed): the provider's repeat is the report taken, not a 409.
    A "dispatched" that never resumed the workflow is still a conflict there."""
    number = driver.person(Category.ADULT).identity_number
    assert driver.order(number).status == 202
    job = driver.next_print_job()
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", code="InternalServerError", status=500, here=True)  # its record
        faults.add(
            "dynamodb",
            "TransactWriteItems",
            code="ValidationException",
            status=400,
            times=20,
            elsewhere=True,
            where=activating,
        )
        assert driver.report(job["letter_id"], "dispatched").status == 503
        assert driver.finished(job["letter_id"])["status"] == "FAILED"
    failed = driver.letters.get(job["letter_id"])
    assert failed is not None
    assert (failed.status, failed.reported) == (LetterStatus.FAILED, None)
    assert driver.report(job["letter_id"], "dispatched").status == 204
    assert driver.report(job["letter_id"], "failed").status == 204  # failed it is: the same end

    other = driver.person(Category.ADULT).identity_number
    assert driver.order(other).status == 202
    job = driver.next_print_job()
    assert driver.report(job["letter_id"], "failed").status == 204
    assert driver.finished(job["letter_id"])["status"] == "FAILED"
    assert driver.report(job["letter_id"], "dispatched").status == 409


def test_no_more_than_3_letters_in_30_days(driver: LetterDriver) -> None:
    number = driver.person(Category.ADULT).identity_number
    letters = set()
    for _ in range(3):
        letters.add(posted(driver, number)[0].letter_id)
        age_ledger(driver, number, timedelta(days=2))
    assert driver.order(number).status == 202
    (newest,) = {e["name"] for e in driver.executions()} - letters  # each workflow is named by its letter
    assert driver.finished(newest)["status"] == "SUCCEEDED"
    assert driver.letters.get(newest).status is LetterStatus.REFUSED  # type: ignore[union-attr]


def test_a_newer_letter_supersedes_the_older(driver: LetterDriver) -> None:
    number = driver.person(Category.ADULT).identity_number
    first, _ = posted(driver, number)
    age_ledger(driver, number, timedelta(days=2))
    second, _ = posted(driver, number)

    assert driver.letters.get(first.letter_id).status is LetterStatus.SUPERSEDED  # type: ignore[union-attr]
    assert second.status is LetterStatus.DISPATCHED


def test_an_older_letter_posted_after_a_newer_one_was_posted_and_blocked_is_superseded(driver: LetterDriver) -> None:
    """The newer letter was posted (and so supersedes every older one), then blocked after its fifth wrong
    code: the older one, posted later still, must not become the person's working letter."""
    number = driver.person(Category.ADULT).identity_number
    driver.order(number)
    older = driver.next_print_job()
    age_ledger(driver, number, timedelta(days=2))
    newer, _ = posted(driver, number)
    for _ in range(MAX_PIN_FAILURES_PER_LETTER):  # as wrong codes at logins and resets block it
        driver.letters.record_pin_failure(newer.letter_id)
    WrongPinCodes(driver.letters, notice_queue(driver)).settle(driver.letters.get(newer.letter_id), datetime.now(UTC))
    assert driver.letters.get(newer.letter_id).status is LetterStatus.BLOCKED  # type: ignore[union-attr]

    assert driver.report(older["letter_id"], "dispatched").status == 204
    driver.finished(older["letter_id"])
    assert driver.letters.get(older["letter_id"]).status is LetterStatus.SUPERSEDED  # type: ignore[union-attr]


def _first_two_at_the_printer(driver: LetterDriver) -> tuple[str, str, str]:
    """A person's first two letters, ordered days apart, both at the printer: (their number, older, newer)."""
    number = driver.person(Category.ADULT).identity_number
    jobs = []
    for _ in range(2):
        assert driver.order(number).status == 202
        jobs.append(driver.next_print_job()["letter_id"])
        age_ledger(driver, number, timedelta(days=2))
    return number, jobs[0], jobs[1]


def _newer_posted_and_blocked(driver: LetterDriver, number: str, newer: str) -> None:
    """The newer letter activated (at the printer, reported posted), then blocked by its fifth wrong code."""
    assert wiring.letter_workflow(os.environ).activate(newer) is Activation.ACTIVE
    for _ in range(MAX_PIN_FAILURES_PER_LETTER):
        driver.letters.record_pin_failure(newer)
    WrongPinCodes(driver.letters, notice_queue(driver)).settle(driver.letters.get(newer), datetime.now(UTC))
    assert driver.letters.get(newer).status is LetterStatus.BLOCKED  # type: ignore[union-attr]


def test_an_older_letter_activated_while_a_newer_one_was_posted_and_blocked_is_superseded(
    driver: LetterDriver,
) -> None:
    """Between the older letter's reads and its write, the newer one is posted and blocked: the ledger's
    `active` is gone again as it was read (A-B-A), but not `latest`, which the write holds on too. It reads
    again, and the older letter is superseded, not made the person's working letter."""
    number, older, newer = _first_two_at_the_printer(driver)
    with before_first_aws_call(
        "dynamodb.TransactWriteItems", lambda: _newer_posted_and_blocked(driver, number, newer)
    ) as outcomes:
        assert wiring.letter_workflow(os.environ).activate(older) is Activation.SUPERSEDED
    assert outcomes == ["made", "TransactionCanceledException"]  # the newer's activation, then the older's
    assert driver.letters.get(older).status is LetterStatus.SUPERSEDED  # type: ignore[union-attr]
    assert driver.letters.pointers(driver.key(number)).active is None
    for letter_id in (older, newer):  # activated here, not by their workflows: those wait on, for nothing
        driver.sfn.stop_execution(executionArn=driver.execution_arn(letter_id))


def test_an_older_letter_activated_while_the_index_does_not_yet_show_a_newer_one_posted_is_superseded(
    driver: LetterDriver,
) -> None:
    """The newer letter was posted and blocked a moment ago: the person's index (eventually consistent)
    still lists it at the printer. The ledger's `latest`, read consistently, names it: superseded."""
    number, older, newer = _first_two_at_the_printer(driver)
    with index_lagging(driver, driver.key(number)):  # as listed now: both at the printer
        _newer_posted_and_blocked(driver, number, newer)
        assert wiring.letter_workflow(os.environ).activate(older) is Activation.SUPERSEDED
    assert driver.letters.get(older).status is LetterStatus.SUPERSEDED  # type: ignore[union-attr]
    for letter_id in (older, newer):
        driver.sfn.stop_execution(executionArn=driver.execution_arn(letter_id))


def test_print_failure_marks_the_letter_failed_and_reports_it(driver: LetterDriver) -> None:
    number = driver.person(Category.ADULT).identity_number
    driver.order(number)
    job = driver.next_print_job()

    reason = "Kari Nordmann ukjent i Storgata 1"  # free text: it may name the person and the address
    assert driver.report(job["letter_id"], "failed", reason=reason).status == 204
    execution = driver.finished(job["letter_id"])
    assert reason not in json.dumps(driver.history(job["letter_id"]), default=str, ensure_ascii=False)

    assert execution["status"] == "FAILED"
    assert execution["error"] == "LetterNotPosted"
    letter = driver.letters.get(job["letter_id"])
    assert letter is not None
    assert letter.status is LetterStatus.FAILED
    assert letter.dispatched_at is None
    assert documents_of(driver, job["letter_id"]) == []  # never to be printed: its codes in clear gone
    assert_reported_not_posted(driver, job["letter_id"])
    # in the person's history, beside its order, once (the workflow's tasks may run again)
    history = security_events(driver).page(letter.person, None, 100).events
    told = [(e.type, e.reference) for e in reversed(history) if e.reference == job["letter_id"]]
    assert told == [
        (SecurityEventType.PIN_LETTER_ORDERED, job["letter_id"]),
        (SecurityEventType.PIN_LETTER_FAILED, job["letter_id"]),
    ]
    wiring.letter_workflow(os.environ).mark_failed(job["letter_id"], "LetterNotPosted")  # again: nothing more
    assert len(security_events(driver).page(letter.person, None, 100).events) == len(history)
    # a failed letter does not count: the person may order again at once
    posted(driver, number)


def test_the_person_is_told_when_a_letter_fails_once_a_day(driver: LetterDriver) -> None:
    """Not left waiting for a letter that never comes; and told once a day, however many fail (anyone may
    order in a person's name, and a name the font cannot print fails every letter)."""
    person = driver.person(Category.ADULT)
    driver.add_contacts(person.identity_number, mobile="+4791234568")
    for _ in range(2):
        assert driver.order(person.identity_number).status == 202
        job = driver.next_print_job()
        assert driver.report(job["letter_id"], "failed").status == 204
        assert driver.finished(job["letter_id"])["status"] == "FAILED"
    driver.notices_delivered()
    told = [s["message"] for s in driver.local.outbox.sms() if s["to"] == "+4791234568"]
    assert len([t for t in told if "kunne ikke skrives ut eller sendes" in t]) == 1, told


def _unprintable_abroad(driver: LetterDriver, identity_number: str) -> None:
    """The person's address abroad given a line in a script the letter's font lacks."""
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["PopulationRegisterTable"],
        Key={"pk": {"S": driver.key(identity_number)}},
        UpdateExpression="SET address_abroad.#lines = :lines",
        ExpressionAttributeNames={"#lines": "lines"},
        ExpressionAttributeValues={":lines": {"L": [{"S": "1-2-3 Marunouchi"}, {"S": "東京都千代田区"}]}},
    )


def test_an_order_whose_address_the_font_cannot_print_is_refused_told_and_counted(
    driver: LetterDriver, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Printed, a line in a script the font lacks would be empty boxes on the envelope. Refused as the
    recipient is checked (as for no address): the person told, once a day, to have it checked or call
    support, and the operators by a count (LettersUnprintableAlarm), not an alarm a letter (anyone may
    order in anyone's name, and every order would fail). Neither the history nor the logs hold the address."""
    person = driver.person(Category.D_NUMBER_ABROAD)
    driver.add_contacts(person.identity_number, mobile="+4798765477")
    _unprintable_abroad(driver, person.identity_number)
    capsys.readouterr()
    for _ in range(2):
        assert driver.order(person.identity_number).status == 202
    # (a refused letter leaves the person's index: its executions, named by the letters' ids, tell them)
    orders = wait_for(lambda: [e["name"] for e in driver.executions()], lambda names: len(names) == 2)
    for letter_id in orders:
        assert driver.finished(letter_id)["status"] == "SUCCEEDED"  # NotSent
        refused = driver.letters.get(letter_id)
        assert refused is not None
        assert refused.outcome is RecipientOutcome.UNPRINTABLE
        assert refused.document is None
    topic = driver.local.stack.refs["LettersNotPostedTopic"]
    alarms = sns_backends[ACCOUNT_ID][REGION].topics[topic].sent_notifications
    assert not [m for _, m, *_ in alarms if any(letter_id in m for letter_id in orders)]
    out = capsys.readouterr().out
    assert len([line for line in out.splitlines() if "LettersUnprintable" in line]) == 2
    driver.notices_delivered()
    sms = [m["message"] for m in driver.local.outbox.sms() if m["to"] == "+4798765477"]
    assert len([t for t in sms if "adressen din i Folkeregisteret kan ikke skrives ut" in t]) == 1, sms  # once a day
    events = security_events(driver).page(driver.key(person.identity_number), None, 100).events
    assert [e.detail for e in events if e.type.value == "pin-letter-refused"] == [{"reason": "unprintable"}]
    histories = [json.dumps(driver.history(letter_id), default=str, ensure_ascii=False) for letter_id in orders]
    # the history's strings are JSON within JSON: a character outside ASCII is escaped in them
    for told in (*histories, caplog.text, out):
        for line in ("1-2-3 Marunouchi", "東京都千代田区"):
            assert line not in told
            assert json.dumps(line)[1:-1] not in told
            wide = [character for character in line if not character.isascii()]
            assert not any(character in told or json.dumps(character)[1:-1] in told for character in wide)


def test_a_letter_whose_address_cannot_be_printed_since_it_was_checked_fails(
    driver: LetterDriver, caplog: pytest.LogCaptureFixture
) -> None:
    """The register's entry changed between the check and the printing: the letter fails (its document
    would be empty boxes), and its task fails for good, by the error's name alone (the state machine then
    marks the letter failed and alarms the operators), with nothing of the address in the log."""
    letter, tasks = _validated_order(driver, Category.D_NUMBER_ABROAD)
    (number,) = [p.identity_number for p in driver.local.population if driver.key(p.identity_number) == letter.person]
    _unprintable_abroad(driver, number)
    with pytest.raises(UnprintableLetter):
        tasks.prepare_letter(letter.letter_id)
    task = {"task": "prepare-letter", "letter_id": letter.letter_id}
    with pytest.raises(workflow_function.TaskFailed) as failed:  # the function's own answer
        workflow_function.lambda_handler(task, LambdaContext("letter-workflow", 256, 30))
    assert type(failed.value).__name__ == "UnprintableLetter"  # what the state machine's Catch sees
    held = driver.letters.get(letter.letter_id)
    assert held is not None
    assert held.document is None
    assert "UnprintableLetter" in caplog.text
    assert not any(part in caplog.text for part in ("Marunouchi", "東京", json.dumps("東京")[1:-1]))


def at_the_printer_unrun(driver: LetterDriver, identity_number: str) -> str:
    """A letter ordered and at the printer, its workflow stopped: its tasks are run by the test, as a
    workflow failed (or one whose task failed for good) would have them run."""
    assert driver.order(identity_number).status == 202
    letter_id = driver.next_print_job()["letter_id"]
    driver.sfn.stop_execution(executionArn=driver.execution_arn(letter_id))  # failed here, not by its workflow
    return str(letter_id)


def test_a_failed_letter_whose_quota_release_failed_is_released_by_the_retry(driver: LetterDriver) -> None:
    """MarkFailed is retried: the run after one that marked the letter failed but could not release its
    order from the quota releases it (a failed letter must not keep the person from ordering again)."""
    number = driver.person(Category.ADULT).identity_number
    letter_id = at_the_printer_unrun(driver, number)
    tasks = wiring.letter_workflow(os.environ)
    with quota_release_failing(tasks), pytest.raises(ConnectionError):
        tasks.mark_failed(letter_id, "PrintFailed")
    tasks.mark_failed(letter_id, "PrintFailed")  # the state machine's retry
    tasks.mark_failed(letter_id, "PrintFailed")  # and once more: nothing left to do

    failed = driver.letters.get(letter_id)
    assert failed is not None
    assert failed.status is LetterStatus.FAILED
    posted(driver, number)  # the person may order again at once


def test_a_letter_that_fails_before_its_recipient_is_checked_is_kept_as_long_as_its_workflow_s_name(
    driver: LetterDriver,
) -> None:
    """An order's item is first kept 7 days; the workflow's name is taken for 90 after it closes. A letter
    failed before its recipient was settled (the check itself failed) is kept past those 90 days, as a
    refused one is: its Idempotency-Key, used again after its once-only day, then finds the order and makes
    a new one, rather than a workflow under the name taken (202, and nothing ordered). One failed after its
    recipient was accepted is kept as an accepted letter is."""
    table = driver.local.stack.refs["PinLettersTable"]
    person = driver.person(Category.ADULT)
    driver.add_contacts(person.identity_number, mobile="+4791234566")
    key = driver.key(person.identity_number)
    unchecked = unchecked_order(driver, key)
    tasks = wiring.letter_workflow(os.environ)
    tasks.mark_failed(unchecked.letter_id, "ClientError")
    item = driver.dynamodb.get_item(TableName=table, Key=letter_key(unchecked.letter_id))["Item"]
    assert item["status"]["S"] == LetterStatus.FAILED.value
    assert int(item["expires_at"]["N"]) >= (unchecked.ordered_at + timedelta(days=90)).timestamp()
    # never accepted, never in the person's history as ordered: not as failed either, nor told (it may have
    # been refused: a double click whose first is on its way, say)
    assert not [e for e in security_events(driver).page(key, None, 100).events if e.reference == unchecked.letter_id]
    driver.notices_delivered()
    assert not [m for m in driver.local.outbox.sms() if m["to"] == "+4791234566"]

    checked, tasks = checked_order(driver, driver.key(driver.person(Category.ADULT).identity_number))
    tasks.mark_failed(checked.letter_id, "ClientError")
    item = driver.dynamodb.get_item(TableName=table, Key=letter_key(checked.letter_id))["Item"]
    assert item["status"]["S"] == LetterStatus.FAILED.value
    assert "expires_at" not in item


def test_a_check_that_settles_as_its_letter_is_marked_failed_is_judged_as_it_then_is(driver: LetterDriver) -> None:
    """The recipient's check given up on by the workflow (its invocation still running) settles the letter
    accepted just as the failure is written: the failure holds on the outcome it read (none), is read again,
    and is written as an accepted letter's (its event; the person told; the quota's place freed). And a check
    that comes after the failure settles nothing: accepted then, it would hold a place nothing frees."""
    person = driver.person(Category.ADULT)
    driver.add_contacts(person.identity_number, mobile="+4791234565")
    key = driver.key(person.identity_number)
    letter = unchecked_order(driver, key)
    lingering = wiring.letter_workflow(os.environ)
    failed_as_checked(lingering, letter)  # then read again: accepted
    failed = driver.letters.get(letter.letter_id)
    assert failed is not None
    assert (failed.status, failed.outcome) == (LetterStatus.FAILED, RecipientOutcome.ACCEPTED)
    events = security_events(driver).page(key, None, 100).events
    assert sorted(e.type.value for e in events if e.reference == letter.letter_id) == [
        "pin-letter-failed",
        "pin-letter-ordered",
    ]
    assert letter.letter_id not in quota_orders(driver, key)
    driver.notices_delivered()
    told = [m["message"] for m in driver.local.outbox.sms() if m["to"] == "+4791234565"]
    assert len([t for t in told if "kunne ikke skrives ut eller sendes" in t]) == 1, told

    late = unchecked_order(driver, key)
    lingering.mark_failed(late.letter_id, "States.Timeout")
    with pytest.raises(NotFound):
        lingering.validate_recipient(late.letter_id)
    after = driver.letters.get(late.letter_id)
    assert after is not None
    assert (after.status, after.outcome) == (LetterStatus.FAILED, None)
    assert late.letter_id not in quota_orders(driver, key)


def test_a_check_running_late_on_an_order_blocked_before_it_holds_no_place_in_the_quota(
    driver: LetterDriver,
) -> None:
    """Blocked before its check, its workflow failed (the check given up on, still running): the check
    that then accepts it holds no place in the quota, which nothing would free (its workflow has ended)."""
    person = driver.person(Category.ADULT)
    key = driver.key(person.identity_number)
    letter = unchecked_order(driver, key)
    PinLetterAccount(driver.letters, SystemClock(), notice_queue(driver)).block(key)
    tasks = wiring.letter_workflow(os.environ)
    tasks.mark_failed(letter.letter_id, "States.Timeout")
    assert tasks.validate_recipient(letter.letter_id) is RecipientOutcome.ACCEPTED
    blocked = driver.letters.get(letter.letter_id)
    assert blocked is not None
    assert blocked.status is LetterStatus.BLOCKED
    assert letter.letter_id not in quota_orders(driver, key)
    assert driver.order(person.identity_number).status == 202  # the person's next order is taken: printed
    assert driver.next_print_job()  # (it waits for the job: none comes, it fails)


@pytest.mark.parametrize("race", [False, True])
def test_a_refusal_whose_task_failed_after_its_write_is_told(driver: LetterDriver, race: bool) -> None:
    """The check refused the order (no address), and its task then failed for good, or the check ran late
    and settled as the failure was written (`race`): NotifyRefused never ran; the failure's task tells the
    refusal instead, once, as NotifyRefused would have. A refusal told to no one (a child's) stays so."""
    person = driver.person(Category.NO_ADDRESS)
    mobile = "+4791234564" if race else "+4791234563"
    driver.add_contacts(person.identity_number, mobile=mobile)
    key = driver.key(person.identity_number)
    letter = unchecked_order(driver, key)
    checking = wiring.letter_workflow(os.environ)
    if race:
        failed_as_checked(checking, letter)  # then read again: refused
    else:
        assert checking.validate_recipient(letter.letter_id) is RecipientOutcome.NO_ADDRESS
        checking.mark_failed(letter.letter_id, "States.Timeout")
    refused = driver.letters.get(letter.letter_id)
    assert refused is not None
    assert (refused.status, refused.outcome) == (LetterStatus.REFUSED, RecipientOutcome.NO_ADDRESS)
    child = driver.person(Category.CHILD)
    driver.add_contacts(child.identity_number, mobile="+4791234562")
    ineligible = unchecked_order(driver, driver.key(child.identity_number))
    assert checking.validate_recipient(ineligible.letter_id) is RecipientOutcome.INELIGIBLE
    checking.mark_failed(ineligible.letter_id, "States.Timeout")
    driver.notices_delivered()
    told = [m["message"] for m in driver.local.outbox.sms() if m["to"] in (mobile, "+4791234562")]
    assert len(told) == 1, told
    assert "Sjekk adressen din hos Skatteetaten" in told[0]


@contextlib.contextmanager
def quota_release_failing(tasks: LetterWorkflowTasks) -> Iterator[None]:
    """The release of a letter's place in the quota fails (DynamoDB gone past the SDK's retries) while
    inside: the adapter the task writes with, as the task's first run found it."""
    letters: Any = tasks._letters
    release = letters.release_quota

    def unreachable(*_: Any) -> None:
        raise ConnectionError("DynamoDB went away")

    letters.release_quota = unreachable
    try:
        yield
    finally:
        letters.release_quota = release


def failed_as_checked(checking: LetterWorkflowTasks, letter: PinLetter) -> None:
    """The letter marked failed (its check given up on by the workflow) while `checking`, still running
    (made before: its calls are not held), settles it between the failure's read and its write: that write
    is refused, and the failure reads the letter again."""
    failing = lambda params: "failed_at" in params.get("UpdateExpression", "")  # noqa: E731
    with before_first_aws_call(
        "dynamodb.UpdateItem", lambda: checking.validate_recipient(letter.letter_id), where=failing
    ) as outcomes:
        wiring.letter_workflow(os.environ).mark_failed(letter.letter_id, "States.Timeout")
    assert outcomes == ["ConditionalCheckFailedException"]


def unchecked_order(driver: LetterDriver, key: PersonKey) -> PinLetter:
    """An order stored as its route stores it (kept 7 days), its recipient not yet checked."""
    letter = PinLetter(
        letter_id=str(uuid.uuid4()), person=key, status=LetterStatus.ORDERED, ordered_at=datetime.now(UTC)
    )
    driver.letters.create_order(letter, expires_at=letter.ordered_at + timedelta(days=7))
    return letter


def checked_order(driver: LetterDriver, key: PersonKey) -> tuple[PinLetter, LetterWorkflowTasks]:
    """An order whose workflow is run here, step by step: its recipient checked (its place in the quota
    reserved), not yet printed."""
    letter = PinLetter(
        letter_id=str(uuid.uuid4()), person=key, status=LetterStatus.ORDERED, ordered_at=datetime.now(UTC)
    )
    driver.letters.create_order(letter, expires_at=letter.ordered_at + timedelta(days=1))
    tasks = wiring.letter_workflow(os.environ)
    assert tasks.validate_recipient(letter.letter_id) is RecipientOutcome.ACCEPTED
    return letter, tasks


def quota_orders(driver: LetterDriver, key: PersonKey) -> Mapping[str, Any]:
    """The orders holding a place in the person's quota (their ledger)."""
    ledger = driver.dynamodb.get_item(
        TableName=driver.local.stack.refs["PinLettersTable"], Key=to_item({"pk": f"person#{key}", "sk": "letters"})
    )["Item"]
    orders: Mapping[str, Any] = ledger.get("orders", {}).get("M", {})
    return orders


@pytest.mark.parametrize(
    ("category", "contacts", "language"),
    [
        (Category.D_NUMBER_ABROAD, None, Language.ENGLISH),  # a first letter abroad: no record to say otherwise
        (Category.D_NUMBER_NORWAY, None, Language.BOKMAL),
        (Category.D_NUMBER_ABROAD, "nn", Language.NYNORSK),  # the language the person chose stands
    ],
)
def test_a_letter_is_in_the_language_chosen_or_for_a_first_letter_abroad_in_english(
    driver: LetterDriver, category: Category, contacts: str | None, language: Language
) -> None:
    number = driver.person(category).identity_number
    if contacts is not None:
        driver.add_contacts(number, mobile="+4798765432", language=contacts)
    letter, _ = checked_order(driver, driver.key(number))
    checked = driver.letters.get(letter.letter_id)
    assert checked is not None
    assert checked.language is language


def test_a_failed_letter_whose_document_cannot_be_deleted_still_frees_the_quota_and_is_told(
    driver: LetterDriver,
) -> None:
    """S3 refuses the print document's deletion for good (AccessDenied): MarkFailed fails, and the execution
    alarms; but the person's place in the quota is freed and they are told first (before, neither happened,
    however often it was retried, and they could order no letter for a day, waiting for one never coming)."""
    person = driver.person(Category.ADULT)
    driver.add_contacts(person.identity_number, mobile="+4798765412")
    letter_id = at_the_printer_unrun(driver, person.identity_number)
    tasks = wiring.letter_workflow(os.environ)
    with injected_faults() as faults:
        faults.add("s3", "DeleteObjects", code="AccessDenied", status=403, times=10)
        with pytest.raises(ClientError, match="AccessDenied"):
            tasks.mark_failed(letter_id, "PrintFailed")
    assert driver.letters.get(letter_id).status is LetterStatus.FAILED  # type: ignore[union-attr]
    assert letter_id not in quota_orders(driver, driver.key(person.identity_number))
    assert wait_for(
        lambda: [m for m in driver.local.outbox.sms() if m["to"] == "+4798765412" and "kunne ikke" in m["message"]],
        bool,
    )


@pytest.mark.parametrize("meanwhile", ["blocked", "posted"])
def test_a_letter_blocked_or_posted_while_it_is_marked_failed_is_judged_as_it_is_then(
    driver: LetterDriver, meanwhile: str
) -> None:
    """MarkFailed read the letter at the printer; the person blocked it, or the provider's report posted it,
    before its write: the letter is not told as failed to the person. Blocked, its place in the quota is
    freed (as a letter blocked at the printer and never posted); posted, it keeps it."""
    person = driver.person(Category.ADULT)
    key = driver.key(person.identity_number)
    driver.add_contacts(person.identity_number, mobile="+4798765413")
    letter_id = at_the_printer_unrun(driver, person.identity_number)

    def changed() -> None:
        if meanwhile == "blocked":
            PinLetterAccount(driver.letters, SystemClock(), notice_queue(driver)).block(key)
        else:
            assert wiring.letter_workflow(os.environ).activate(letter_id) is Activation.ACTIVE

    failing = lambda params: ":failed" in json.dumps(params["TransactItems"][0])  # noqa: E731  (with its event)
    with before_first_aws_call("dynamodb.TransactWriteItems", changed, where=failing):
        wiring.letter_workflow(os.environ).mark_failed(letter_id, "States.HeartbeatTimeout")
    letter = driver.letters.get(letter_id)
    assert letter is not None
    history = security_events(driver).page(key, None, 100).events
    assert not [e for e in history if e.type is SecurityEventType.PIN_LETTER_FAILED]  # nor in the history
    if meanwhile == "blocked":
        assert letter.status is LetterStatus.BLOCKED
        assert letter_id not in quota_orders(driver, key)
    else:
        assert letter.status is LetterStatus.DISPATCHED
        assert letter_id in quota_orders(driver, key)
    assert documents_of(driver, letter_id) == []
    driver.notices_delivered()
    assert not [m for m in driver.local.outbox.sms() if m["to"] == "+4798765413" and "kunne ikke" in m["message"]]


def test_a_posted_letter_whose_activation_failed_after_its_write_is_marked_failed_without_its_document(
    driver: LetterDriver,
) -> None:
    """ActivateLetter wrote the posting, then failed for good before deleting the document (the function
    stopped): MarkFailed finds the letter posted, leaves it working, and deletes the document (the name,
    the address and every code in clear), which would else wait for the bucket's expiry."""
    person = driver.person(Category.ADULT)
    key = driver.key(person.identity_number)
    letter_id = at_the_printer_unrun(driver, person.identity_number)
    tasks = wiring.letter_workflow(os.environ)
    with injected_faults() as faults:
        faults.add("s3", "DeleteObjects", code="InternalError", status=500, times=10)
        with pytest.raises(DocumentLeft):
            tasks.activate(letter_id)
    assert documents_of(driver, letter_id) != []
    tasks.mark_failed(letter_id, "Runtime.ExitError")
    letter = driver.letters.get(letter_id)
    assert letter is not None
    assert letter.status is LetterStatus.DISPATCHED
    assert letter_id in quota_orders(driver, key)
    assert documents_of(driver, letter_id) == []


@pytest.mark.parametrize(
    ("since", "why"),
    [
        ({"UpdateExpression": "REMOVE address"}, "NoAddress"),  # moved away, address unknown: the register has none
        (  # died: no codes to a dead person's mailbox
            {
                "UpdateExpression": "SET #status = :deceased",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {":deceased": {"S": "deceased"}},
            },
            "Deceased",
        ),
        (  # the number replaced by another: the person orders with that one
            {
                "UpdateExpression": "SET #status = :ceased",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {":ceased": {"S": "ceased"}},
            },
            "Ceased",
        ),
        (  # the address made strictly confidential: the copy's address (of an import before) is not used
            {
                "UpdateExpression": "SET address_protection = :strictly",
                "ExpressionAttributeValues": {":strictly": {"S": "strictly_confidential"}},
            },
            "AddressWithheld",
        ),
    ],
)
def test_a_letter_whose_recipient_lost_the_address_or_died_after_the_check_fails_and_frees_the_quota(
    driver: LetterDriver, since: dict[str, Any], why: str
) -> None:
    person = driver.person(Category.ADULT)
    key = driver.key(person.identity_number)
    letter, tasks = checked_order(driver, key)
    table = driver.local.stack.refs["PopulationRegisterTable"]
    driver.dynamodb.update_item(TableName=table, Key={"pk": {"S": key}}, **since)

    assert tasks.prepare_letter(letter.letter_id) is None  # not sent
    failed = driver.letters.get(letter.letter_id)
    assert failed is not None
    assert failed.status is LetterStatus.FAILED  # not "ordered" for good
    assert failed.document is None  # no codes made
    assert letter.letter_id not in quota_orders(driver, key)  # its place in the quota freed
    table = driver.local.stack.refs[LETTERS_TABLE]
    item = driver.dynamodb.get_item(TableName=table, Key=letter_key(letter.letter_id), ConsistentRead=True)["Item"]
    assert item["failure"] == {"S": why}  # (what the operators read)


def test_a_letter_failed_at_its_printing_whose_release_failed_is_released_and_told_by_the_retry(
    driver: LetterDriver,
) -> None:
    """PrepareLetter marked the letter failed (its recipient's address gone since the check), then DynamoDB
    failed the release of its place in the quota: the state machine's retry finds it failed, and finishes
    the failure (else the person could order no letter for a day, and was never told this one failed)."""
    person = driver.person(Category.ADULT)
    key = driver.key(person.identity_number)
    driver.add_contacts(person.identity_number, mobile="+4798765411")
    letter, tasks = checked_order(driver, key)
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["PopulationRegisterTable"],
        Key={"pk": {"S": key}},
        UpdateExpression="REMOVE address",
    )
    with quota_release_failing(tasks), pytest.raises(ConnectionError):
        tasks.prepare_letter(letter.letter_id)
    assert letter.letter_id in quota_orders(driver, key)
    assert tasks.prepare_letter(letter.letter_id) is None  # the state machine's retry
    assert letter.letter_id not in quota_orders(driver, key)  # its place freed
    told = wait_for(
        driver.local.outbox.snapshot,
        lambda o: any(m["to"] == "+4798765411" and "kunne ikke" in m["message"] for m in o["sms"]),
    )
    assert [m for m in told["sms"] if m["to"] == "+4798765411" and "kunne ikke" in m["message"]]  # told, once


def test_a_letter_blocked_before_it_was_printed_is_not_sent_and_frees_the_quota(driver: LetterDriver) -> None:
    """Blocked between the recipient's check (its place in the quota reserved) and its printing: no letter
    goes out, and the person is not kept from ordering another for 24 hours by a letter never sent."""
    person = driver.person(Category.ADULT)
    key = driver.key(person.identity_number)
    letter, tasks = checked_order(driver, key)
    assert letter.letter_id in quota_orders(driver, key)
    PinLetterAccount(driver.letters, SystemClock(), notice_queue(driver)).block(key)

    assert tasks.prepare_letter(letter.letter_id) is None  # not sent
    assert tasks.prepare_letter(letter.letter_id) is None  # the task's retry: nothing more to do
    blocked = driver.letters.get(letter.letter_id)
    assert blocked is not None
    assert blocked.status is LetterStatus.BLOCKED
    assert letter.letter_id not in quota_orders(driver, key)  # its place in the quota freed
    posted(driver, person.identity_number)  # the person may order again at once


def test_a_letter_blocked_after_its_document_was_made_and_the_answer_lost_is_not_sent(driver: LetterDriver) -> None:
    """PrepareLetter attached the codes, and its answer was lost; the person blocks the letter before the
    state machine's retry: the retry sends nothing (the codes' document goes, unprinted), and frees the
    letter's place in the quota, as for a letter blocked before it was prepared."""
    person = driver.person(Category.ADULT)
    key = driver.key(person.identity_number)
    letter, tasks = checked_order(driver, key)
    assert tasks.prepare_letter(letter.letter_id) is not None  # (its answer lost)
    assert documents_of(driver, letter.letter_id) != []
    PinLetterAccount(driver.letters, SystemClock(), notice_queue(driver)).block(key)

    assert tasks.prepare_letter(letter.letter_id) is None  # the retry: not sent
    assert documents_of(driver, letter.letter_id) == []
    assert letter.letter_id not in quota_orders(driver, key)
    posted(driver, person.identity_number)  # the person may order again at once


def test_a_letter_blocked_between_its_codes_attached_and_the_sdk_s_retry_is_not_sent(driver: LetterDriver) -> None:
    """The write attaching the codes was made and its answer lost; the person blocked the letter before the
    SDK's retry, which then found its condition gone: not sent (it was, as its own codes held the document),
    its document gone and its place in the quota freed, as the task's own retry would have found."""
    person = driver.person(Category.ADULT)
    key = driver.key(person.identity_number)
    letter, _ = checked_order(driver, key)
    attaching: list[bool] = []

    def blocked_before_the_retry(params: dict[str, Any], **_: Any) -> None:
        if "SET codes" in params.get("UpdateExpression", ""):
            attaching.append(True)
            if len(attaching) == 2:  # the SDK's retry
                PinLetterAccount(driver.letters, SystemClock(), notice_queue(driver)).block(key)

    with (
        injected_faults() as faults,
        on_functions_clients(("before-parameter-build.dynamodb.UpdateItem", blocked_before_the_retry)),
    ):
        faults.add("dynamodb", "UpdateItem", after="retried", where=lambda p: "SET codes" in p["UpdateExpression"])
        assert wiring.letter_workflow(os.environ).prepare_letter(letter.letter_id) is None
    assert len(attaching) == 2
    assert driver.letters.get(letter.letter_id).status is LetterStatus.BLOCKED  # type: ignore[union-attr]
    assert documents_of(driver, letter.letter_id) == []
    assert letter.letter_id not in quota_orders(driver, key)


def test_a_letter_blocked_while_its_document_is_made_is_not_sent_and_frees_the_quota(driver: LetterDriver) -> None:
    """Blocked after the task read it as ordered, while it rendered the document: the codes are not
    attached, no letter goes out, and its place in the quota is freed as when blocked before."""
    person = driver.person(Category.ADULT)
    key = driver.key(person.identity_number)
    letter, _ = checked_order(driver, key)

    def blocked_meanwhile() -> None:
        PinLetterAccount(driver.letters, SystemClock(), notice_queue(driver)).block(key)

    attaching = lambda params: "SET codes = :codes" in params.get("UpdateExpression", "")  # noqa: E731
    with before_first_aws_call("dynamodb.UpdateItem", blocked_meanwhile, where=attaching) as outcomes:
        assert wiring.letter_workflow(os.environ).prepare_letter(letter.letter_id) is None
    assert outcomes == ["ConditionalCheckFailedException"]
    assert documents_of(driver, letter.letter_id) == []
    assert letter.letter_id not in quota_orders(driver, key)
    posted(driver, person.identity_number)  # the person may order again at once


def test_a_letter_blocked_at_the_printer_that_then_fails_frees_the_quota(driver: LetterDriver) -> None:
    """Blocked while printing, and then not posted (the provider reports it failed): it stays blocked, and
    its place in the quota is freed as a failed letter's, so the person may order another at once."""
    person = driver.person(Category.ADULT)
    key = driver.key(person.identity_number)
    driver.order(person.identity_number)
    job = driver.next_print_job()
    assert job["letter_id"] in quota_orders(driver, key)
    PinLetterAccount(driver.letters, SystemClock(), notice_queue(driver)).block(key)

    assert driver.report(job["letter_id"], "failed", reason="paper jam").status == 204
    driver.finished(job["letter_id"])

    blocked = driver.letters.get(job["letter_id"])
    assert blocked is not None
    assert blocked.status is LetterStatus.BLOCKED
    assert job["letter_id"] not in quota_orders(driver, key)
    assert documents_of(driver, job["letter_id"]) == []
    posted(driver, person.identity_number)  # the person may order again at once


def test_print_timeout_marks_the_letter_failed(driver: LetterDriver) -> None:
    number = driver.person(Category.ADULT).identity_number
    letter_id = start_with_timeouts(driver, number, PrintTimeouts(timeout_seconds=2, heartbeat_seconds=1))
    job = driver.next_print_job()
    for _ in range(6):  # alive, but never done
        time.sleep(0.4)
        with contextlib.suppress(ClientError):  # the task timed out: nothing waits for a heartbeat
            driver.sfn.send_task_heartbeat(taskToken=job["task_token"])

    execution = driver.finished(letter_id)

    assert execution["status"] == "FAILED"
    assert driver.letters.get(letter_id).status is LetterStatus.FAILED  # type: ignore[union-attr]
    assert_reported_not_posted(driver, letter_id)
    assert driver.report(letter_id, "dispatched").status == 409
    # a job still queued, or taken again, can no longer be printed: its document is gone
    assert documents_of(driver, letter_id) == []


def test_a_silent_print_provider_times_out_on_the_heartbeat(driver: LetterDriver) -> None:
    number = driver.person(Category.ADULT).identity_number
    letter_id = start_with_timeouts(driver, number, PrintTimeouts(timeout_seconds=60, heartbeat_seconds=1))
    driver.next_print_job()
    assert driver.finished(letter_id)["status"] == "FAILED"
    assert driver.letters.get(letter_id).status is LetterStatus.FAILED  # type: ignore[union-attr]


def test_a_letter_blocked_at_the_printer_whose_provider_then_went_silent_takes_its_late_failed_report(
    driver: LetterDriver,
) -> None:
    """Blocked while printing, and its workflow ended on the heartbeat (the letter kept blocked, not
    posted): the provider's late "failed" agrees with that, and is taken (204, as for a letter marked
    failed); a late "dispatched" contradicts it (409)."""
    number = driver.person(Category.ADULT).identity_number
    # (the heartbeat runs from the job's sending: time for the block first on a busy machine)
    letter_id = start_with_timeouts(driver, number, PrintTimeouts(timeout_seconds=60, heartbeat_seconds=8))
    driver.next_print_job()
    PinLetterAccount(driver.letters, SystemClock(), notice_queue(driver)).block(driver.key(number))
    assert driver.finished(letter_id)["status"] == "FAILED"
    assert driver.letters.get(letter_id).status is LetterStatus.BLOCKED  # type: ignore[union-attr]

    late_failed_taken_and_dispatched_refused(driver, letter_id)
    assert driver.letters.get(letter_id).status is LetterStatus.BLOCKED  # type: ignore[union-attr]


def test_a_late_failed_report_is_taken_whether_or_not_mark_failed_has_run_yet(driver: LetterDriver) -> None:
    """The provider went silent, and its hand-over ended on the heartbeat: the letter is not posted. Its late
    "failed" agrees with that and is taken (204) while MarkFailed is still retrying, the letter still at the
    printer, as after it has marked the letter failed; a late "dispatched" contradicts it (409) either way."""
    number = driver.person(Category.ADULT).identity_number
    marking = lambda params: ":failed" in json.dumps(params["TransactItems"][0])  # noqa: E731  (MarkFailed's write)
    with injected_faults() as faults:  # (from the start: the heartbeat is short)
        faults.add("dynamodb", "TransactWriteItems", code="InternalServerError", status=500, times=1000, where=marking)
        letter_id = start_with_timeouts(driver, number, PrintTimeouts(timeout_seconds=60, heartbeat_seconds=1))
        driver.next_print_job()
        wait_for(lambda: faults.injected, bool)  # MarkFailed has run, and failed: the state machine retries it
        assert driver.letters.get(letter_id).status is LetterStatus.PRINTING  # type: ignore[union-attr]
        late_failed_taken_and_dispatched_refused(driver, letter_id)
        assert driver.letters.get(letter_id).status is LetterStatus.PRINTING  # type: ignore[union-attr]
        assert driver.letters.print_standing(letter_id).reported is None  # type: ignore[union-attr]
    assert driver.finished(letter_id)["status"] == "FAILED"
    assert driver.letters.get(letter_id).status is LetterStatus.FAILED  # type: ignore[union-attr]
    assert driver.report(letter_id, "failed", reason="paper jam").status == 204
    assert driver.report(letter_id, "dispatched").status == 409


def test_a_failed_report_while_the_hand_over_waits_to_be_sent_again_is_not_taken(driver: LetterDriver) -> None:
    """The hand-over's message failed to send, and Step Functions waits to send it again: a "failed" then (for
    a job the provider had of a try whose answer was lost) is not taken, as the letter is handed over again
    and waits for a report; the provider's report made again lands on the new hand-over, and fails it."""
    number = driver.person(Category.ADULT).identity_number
    queue = driver.local.stack.refs[PRINT_QUEUE]
    handing_over = lambda params: queue in params["QueueUrl"]  # noqa: E731  (no other message)
    with injected_faults() as faults:
        faults.add("sqs", "SendMessage", code="ThrottlingException", status=400, times=1000, where=handing_over)
        letter_id = start_with_timeouts(driver, number, PrintTimeouts(timeout_seconds=60, heartbeat_seconds=30))
        wait_for(lambda: len(faults.injected) >= 2, bool, timeout=20)  # tried again: and waiting to be, again
        faults.add("stepfunctions", "SendTaskFailure", code="TaskTimedOut", status=400, here=True)  # as AWS
        assert driver.letters.get(letter_id).status is LetterStatus.PRINTING  # type: ignore[union-attr]
        assert driver.report(letter_id, "failed", reason="paper jam").status == 409
        assert driver.letters.print_standing(letter_id).reported is None  # type: ignore[union-attr]
    driver.next_print_job()  # handed over again
    assert driver.report(letter_id, "failed", reason="paper jam").status == 204
    assert driver.finished(letter_id)["status"] == "FAILED"
    assert driver.letters.get(letter_id).status is LetterStatus.FAILED  # type: ignore[union-attr]


def late_failed_taken_and_dispatched_refused(driver: LetterDriver, letter_id: str) -> None:
    """A late "failed" (204) and "dispatched" (409) for a letter whose hand-over timed out, each refused by
    Step Functions, which answers the dead task's token with TaskTimedOut (moto's executor would take it)."""
    with injected_faults() as faults:
        faults.add("stepfunctions", "SendTaskFailure", code="TaskTimedOut", status=400, here=True)
        faults.add("stepfunctions", "SendTaskSuccess", code="TaskTimedOut", status=400, here=True)
        assert driver.report(letter_id, "failed", reason="paper jam").status == 204
        assert driver.report(letter_id, "dispatched").status == 409
        assert sorted(f[1] for f in faults.injected) == ["SendTaskFailure", "SendTaskSuccess"]


def test_heartbeats_keep_a_slow_print_job_alive(driver: LetterDriver) -> None:
    """Alive past its heartbeat timeout by heartbeats well within it (a busy machine may be slow to send one)."""
    number = driver.person(Category.ADULT).identity_number
    letter_id = start_with_timeouts(driver, number, PrintTimeouts(timeout_seconds=30, heartbeat_seconds=2))
    job = driver.next_print_job()
    for _ in range(6):
        time.sleep(0.5)
        driver.sfn.send_task_heartbeat(taskToken=job["task_token"])
    assert driver.report(letter_id, "dispatched").status == 204
    assert driver.finished(letter_id)["status"] == "SUCCEEDED"


@pytest.mark.parametrize(
    ("service", "operation"),
    [
        ("s3", "PutObject"),
        ("dynamodb", "UpdateItem"),
        ("dynamodb", "TransactWriteItems"),
        ("sqs", "SendMessage"),
        ("secretsmanager", "GetSecretValue"),  # the pepper, read at the first code hashed: before the document
    ],
)
def test_a_task_that_fails_once_succeeds_on_retry_with_one_set_of_codes(
    driver: LetterDriver, service: str, operation: str
) -> None:
    person = driver.person(Category.ADULT)
    driver.add_contacts(person.identity_number, mobile="+4791112222")
    with injected_faults() as faults:  # in the workflow's tasks (the order counts its client, say)
        faults.add(service, operation, code="ThrottlingException", status=400, elsewhere=True)
        letter, codes = posted(driver, person.identity_number)
        assert faults.injected == [(service, operation, "ThrottlingException")]

    assert letter.status is LetterStatus.DISPATCHED
    keyer = driver.local.keyer
    assert letter.code_hashes == {int(i): keyer.pin_code_hash(letter.letter_id, int(i), c) for i, c in codes.items()}
    assert documents_of(driver, letter.letter_id) == []  # the one document went with the posting: none left over
    events = [e["type"] for e in driver.history(letter.letter_id)]
    assert events.count("ExecutionSucceeded") == 1
    wait_for(lambda: driver.local.outbox.snapshot()["sms"], lambda sms: len(sms) == 1)


@pytest.mark.parametrize("changed", ["letter", "ledger"])
def test_a_recipient_whose_letter_or_ledger_changed_while_checked_is_checked_again(
    driver: LetterDriver, changed: str
) -> None:
    """The check's write holds only with the letter and the ledger as read: when either changed meanwhile,
    it reads again and writes once (one reservation, one event)."""
    person = driver.person(Category.ADULT)
    reasons = (
        ("ConditionalCheckFailed", "None", "None") if changed == "letter" else ("None", "TransactionConflict", "None")
    )
    with injected_faults() as faults:
        faults.add("dynamodb", "TransactWriteItems", code="TransactionCanceledException", status=400, reasons=reasons)
        letter, _ = posted(driver, person.identity_number)
        assert [fault[1] for fault in faults.injected] == ["TransactWriteItems"]
    assert letter.status is LetterStatus.DISPATCHED
    events = security_events(driver).page(driver.key(person.identity_number), None, 20).events
    assert [e.type for e in events].count(SecurityEventType.PIN_LETTER_ORDERED) == 1
    table, key = driver.local.stack.refs["PinLettersTable"], f"person#{driver.key(person.identity_number)}"
    ledger = driver.dynamodb.get_item(TableName=table, Key={"pk": {"S": key}, "sk": {"S": "letters"}})["Item"]
    assert list(ledger["orders"]["M"]) == [letter.letter_id]


def test_every_task_is_idempotent(driver: LetterDriver) -> None:
    letter, _ = posted(driver, driver.person(Category.ADULT).identity_number)
    for state, task in (
        ("ValidateRecipient", "validate-recipient"),
        ("PrepareLetter", "prepare-letter"),
        ("ActivateLetter", "activate-letter"),
    ):
        workflow = driver.local.functions.by_logical_id[state_function(state)]
        first = workflow.invoke({"task": task, "letter_id": letter.letter_id})
        again = workflow.invoke({"task": task, "letter_id": letter.letter_id})
        assert first == again
    assert driver.letters.get(letter.letter_id) == letter


def test_the_workflow_history_holds_no_personal_data_and_no_code(driver: LetterDriver) -> None:
    person = driver.person(Category.ADULT)
    letter, codes = posted(driver, person.identity_number)
    history = json.dumps(driver.history(letter.letter_id), default=str)
    secrets = [person.identity_number, person.person.given_name, person.person.family_name, *codes.values()]
    secrets += list(letter_address(person.person) or ())
    assert [s for s in secrets if s in history] == []


# ---------------------------------------------------------------------- answers lost
def _validated_order(
    driver: LetterDriver, category: Category = Category.ADULT
) -> tuple[PinLetter, LetterWorkflowTasks]:
    """A letter ordered and its recipient accepted, its workflow's tasks run here, on this thread."""
    person = driver.person(category)
    letter = PinLetter(
        letter_id=str(uuid.uuid4()),
        person=driver.key(person.identity_number),
        status=LetterStatus.ORDERED,
        ordered_at=datetime.now(UTC),
    )
    driver.letters.create_order(letter, expires_at=letter.ordered_at + timedelta(days=1))
    tasks = wiring.letter_workflow(os.environ)
    assert tasks.validate_recipient(letter.letter_id) is RecipientOutcome.ACCEPTED
    return letter, tasks


def _stored(driver: LetterDriver, bucket: str, key: str) -> bool:
    try:
        driver.local.session.client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False
    return True


def test_codes_attached_by_an_attempt_whose_answer_was_lost_keep_their_document(driver: LetterDriver) -> None:
    """The SDK's retry of the write finds its condition gone (the codes are there: its own). The letter
    holds the document, which must stay for the provider to fetch; before, it was deleted as another's."""
    letter, tasks = _validated_order(driver)
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", after="retried")
        document = tasks.prepare_letter(letter.letter_id)
        assert faults.injected == [("dynamodb", "UpdateItem", "retried")]
    held = driver.letters.get(letter.letter_id)
    assert held is not None
    assert held.status is LetterStatus.PRINTING
    assert document is not None
    assert held.document == document
    assert _stored(driver, document.bucket, document.pdf)
    assert _stored(driver, document.bucket, document.manifest)


def test_codes_attached_whose_answer_never_came_keep_their_document_for_the_retry(driver: LetterDriver) -> None:
    letter, tasks = _validated_order(driver)
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", after="lost")
        with pytest.raises(Exception, match="timeout"):
            tasks.prepare_letter(letter.letter_id)
    held = driver.letters.get(letter.letter_id)
    assert held is not None
    assert held.document is not None
    assert _stored(driver, held.document.bucket, held.document.pdf)
    assert tasks.prepare_letter(letter.letter_id) == held.document  # the task's retry: the same letter


def test_codes_not_attached_take_their_document_away(driver: LetterDriver) -> None:
    """A write refused (no answer lost): its document is never sent, and its codes in clear go."""
    letter, tasks = _validated_order(driver)
    stored_before = _objects(driver, letter.letter_id)
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", code="InternalServerError", status=500, times=3)
        with pytest.raises(ClientError):
            tasks.prepare_letter(letter.letter_id)
    held = driver.letters.get(letter.letter_id)
    assert held is not None
    assert held.document is None
    assert _objects(driver, letter.letter_id) == stored_before  # none left behind


def test_codes_whose_write_ran_out_of_time_take_their_document_away(driver: LetterDriver) -> None:
    """The codes' write refused as the invocation's time ran out (minid.deadline): the clean-up after it
    is made all the same, its document (never sent) holding every code in clear; before, its read was
    refused alike, and the document left for the bucket's 30 days."""
    letter, _ = _validated_order(driver)
    stored_before = _objects(driver, letter.letter_id)
    attaching = lambda params: "SET codes = :codes" in params.get("UpdateExpression", "")  # noqa: E731
    with deadline.within(LambdaContext("letter-workflow", 256, 60)), contextlib.ExitStack() as late:
        # the invocation's time run out just as the write is made
        run_out = lambda: late.enter_context(deadline.within(LambdaContext("letter-workflow", 256, 0)))  # noqa: E731
        with before_first_aws_call("dynamodb.UpdateItem", run_out, where=attaching) as outcomes:
            tasks = wiring.letter_workflow(os.environ)  # its clients heard
            with pytest.raises(OutOfTime):
                tasks.prepare_letter(letter.letter_id)
    assert outcomes == []  # refused before it was sent
    held = driver.letters.get(letter.letter_id)
    assert held is not None
    assert held.document is None
    assert _objects(driver, letter.letter_id) == stored_before  # none left behind


@pytest.mark.parametrize("unread", [False, True])
def test_a_document_the_codes_write_left_that_cannot_be_deleted_is_told_and_the_task_tried_again(
    driver: LetterDriver, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str], unread: bool
) -> None:
    """The codes' write failed, and S3 refuses the delete (or the letter cannot be read to tell whether it
    holds the document: its answer lost): the document stays for the bucket's expiry, and the operators
    are told (PrintDocumentsLeftAlarm) of the letter; the task is tried again."""
    letter, _ = _validated_order(driver)
    stored_before = _objects(driver, letter.letter_id)
    attaching = lambda params: "SET codes = :codes" in params.get("UpdateExpression", "")  # noqa: E731
    task = {"task": "prepare-letter", "letter_id": letter.letter_id}
    context = LambdaContext("letter-workflow", 256, 30)
    capsys.readouterr()
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", code="InternalServerError", status=500, where=attaching)
        if unread:  # the letter's read after the write (the task's first read of it comes before the write)
            after_the_write = lambda _: bool(faults.injected)  # noqa: E731
            throttled = "ProvisionedThroughputExceededException"
            faults.add("dynamodb", "GetItem", code=throttled, status=400, here=True, where=after_the_write)
        else:
            faults.add("s3", "DeleteObjects", code="AccessDenied", status=403)
        with pytest.raises(workflow_function.DependencyUnavailable):  # the state machine tries it again
            workflow_function.lambda_handler(task, context)
    left = _objects(driver, letter.letter_id) - stored_before
    assert len(left) == 2
    told = [r for r in caplog.records if r.getMessage() == "Print document of a failed write not deleted"]
    cleanup_error = "ProvisionedThroughputExceededException" if unread else "AccessDenied"  # by AWS's code
    assert [(r.__dict__["error"], r.__dict__["held_unknown"]) for r in told] == [(cleanup_error, unread)]
    assert any("PrintDocumentsLeft" in line for line in capsys.readouterr().out.splitlines())
    ready = workflow_function.lambda_handler(task, context)  # tried again: a document of its own
    assert ready["outcome"] == "ready"
    assert _objects(driver, letter.letter_id) - stored_before == left | {ready["pdf"], ready["manifest"]}


def test_a_clean_up_with_no_time_kept_for_it_is_refused_and_told(
    driver: LetterDriver, caplog: pytest.LogCaptureFixture
) -> None:
    """The clean-up after a codes' write refused for want of time is held to the time the task keeps for it
    (CLEANUP_KEPT_SECONDS): none left, it is refused, and the document left is told, rather than Lambda
    stopping the function in it with nothing told."""
    letter, _ = _validated_order(driver)
    attaching = lambda params: "SET codes = :codes" in params.get("UpdateExpression", "")  # noqa: E731
    kept = workflow_function.CLEANUP_KEPT_SECONDS
    with deadline.within(LambdaContext("letter-workflow", 256, 60)), contextlib.ExitStack() as late:
        run_out = lambda: late.enter_context(  # noqa: E731  (the invocation's time run out at the write)
            deadline.within(LambdaContext("letter-workflow", 256, 0), kept_seconds=kept)
        )
        with before_first_aws_call("dynamodb.UpdateItem", run_out, where=attaching):
            tasks = wiring.letter_workflow(os.environ)  # its clients heard
            with pytest.raises(UnsentDocumentLeft) as left:
                tasks.prepare_letter(letter.letter_id)
    assert (type(left.value.error), type(left.value.__cause__), left.value.held_unknown) == (OutOfTime, OutOfTime, True)
    assert len(_objects(driver, letter.letter_id)) == 2  # left, and told


def test_preparing_a_letter_keeps_time_for_its_clean_up(driver: LetterDriver) -> None:
    """Less time left than the clean-up's and an attempt's: no call is made (none could be cleaned up
    after); the other tasks keep none."""
    letter, _ = _validated_order(driver)
    short = LambdaContext("letter-workflow", 256, int(workflow_function.CLEANUP_KEPT_SECONDS + 4))
    with pytest.raises(workflow_function.DependencyUnavailable):  # tried again by the state machine
        workflow_function.lambda_handler({"task": "prepare-letter", "letter_id": letter.letter_id}, short)
    assert _objects(driver, letter.letter_id) == set()
    checked = workflow_function.lambda_handler({"task": "validate-recipient", "letter_id": letter.letter_id}, short)
    assert checked == {"outcome": "accepted"}


def test_a_document_stored_by_an_attempt_whose_answer_was_lost_is_taken_as_stored(driver: LetterDriver) -> None:
    """S3's retry of a write "if none is there" meets the attempt's own object: 412, not a failed letter."""
    letter, tasks = _validated_order(driver)
    with injected_faults() as faults:
        faults.add("s3", "PutObject", after="retried")
        document = tasks.prepare_letter(letter.letter_id)
        assert faults.injected == [("s3", "PutObject", "retried")]
    assert document is not None
    assert _stored(driver, document.bucket, document.pdf)


def test_a_document_half_stored_is_taken_away(driver: LetterDriver) -> None:
    """The PDF stored (the name, the address, every code in clear), its manifest not: the task's retry
    stores another under a new prefix, and the first, never sent, must not stay for the bucket's 30 days."""
    letter, tasks = _validated_order(driver)
    with injected_faults() as faults:
        manifest = lambda params: str(params.get("Key", "")).endswith("manifest.json")  # noqa: E731
        faults.add("s3", "PutObject", code="InternalError", status=500, times=10, where=manifest)
        with pytest.raises(ClientError):
            tasks.prepare_letter(letter.letter_id)
    assert _objects(driver, letter.letter_id) == set()
    document = tasks.prepare_letter(letter.letter_id)  # the task's retry
    assert document is not None
    assert _objects(driver, letter.letter_id) == {document.pdf, document.manifest}


def test_a_posted_letter_whose_document_cannot_be_deleted_stays_posted(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    """S3 refusing the delete for good (AccessDenied) after the activation was written: the letter is
    posted and its codes work; marked failed, the operators were told it was not posted and the person
    was not told it was. The document is left for the operators (PrintDocumentsLeftAlarm)."""
    number = driver.person(Category.ADULT).identity_number
    driver.add_contacts(number, mobile="+4798765432")
    assert driver.order(number).status == 202
    job = driver.next_print_job()
    with injected_faults() as faults:
        faults.add("s3", "DeleteObjects", code="AccessDenied", status=403, times=100)
        assert driver.report(job["letter_id"], "dispatched").status == 204
        assert driver.finished(job["letter_id"])["status"] == "SUCCEEDED"
    letter = driver.letters.get(job["letter_id"])
    assert letter is not None
    assert letter.status is LetterStatus.DISPATCHED
    assert _objects(driver, letter.letter_id) == {job["pdf"], job["manifest"]}
    driver.notices_delivered()
    assert any("PrintDocumentsLeft" in line for line in capsys.readouterr().out.splitlines())
    assert [m["message"] for m in driver.local.outbox.sms() if "ble sendt i posten" in m["message"]]  # told


def test_an_activation_whose_letters_change_under_every_attempt_is_retried_not_failed(driver: LetterDriver) -> None:
    """Other runs write the person's letters under each of the activation's attempts (letters posted at
    once): the workflow's retry takes it (DependencyUnavailable), as a throttle; it is not caught into
    MarkFailed, which would take a letter in the post for one not posted, its codes dead."""
    number = driver.person(Category.ADULT).identity_number
    assert driver.order(number).status == 202
    job = driver.next_print_job()
    function = driver.local.functions.by_logical_id[state_function("ActivateLetter")]
    task = {"task": "activate-letter", "letter_id": job["letter_id"]}  # as the report runs it, and its retries
    with injected_faults() as faults:
        changed = ("ConditionalCheckFailed",)
        faults.add(
            "dynamodb",
            "TransactWriteItems",
            code="TransactionCanceledException",
            status=400,
            reasons=changed,
            times=SETTLE_ATTEMPTS,
            here=True,
        )
        with pytest.raises(Exception, match=r"^KeptChanging$") as raised:  # the handler's own class
            function.invoke(task)
        assert type(raised.value).__name__ == "DependencyUnavailable"  # the workflow's retry takes it
        assert len(faults.injected) == SETTLE_ATTEMPTS
    assert driver.report(job["letter_id"], "dispatched").status == 204  # and its retry, the others done
    assert driver.finished(job["letter_id"])["status"] == "SUCCEEDED"
    assert driver.only_letter(number).status is LetterStatus.DISPATCHED


def test_a_posted_letter_s_document_that_s3_keeps_failing_to_delete_is_left_after_a_while(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    """A transient failure is tried again (the workflow's retry) for DOCUMENT_DELETE_RETRIED_FOR after the
    activation, then the document is left for the operators and the workflow goes on to tell the person:
    its retries are not let run out into MarkFailed, which would take a posted letter for one not posted."""
    number = driver.person(Category.ADULT).identity_number
    letter, _ = posted(driver, number)
    function = driver.local.functions.by_logical_id[state_function("ActivateLetter")]
    task = {"task": "activate-letter", "letter_id": letter.letter_id}  # the task again: its retry
    with injected_faults() as faults:
        faults.add("s3", "DeleteObjects", code="InternalError", status=500, times=100, here=True)
        with pytest.raises(Exception, match=r"^ClientError$") as raised:  # the handler's own class
            function.invoke(task)
        assert type(raised.value).__name__ == "DependencyUnavailable"  # the workflow's retry takes it
        age = datetime.now(UTC) - DOCUMENT_DELETE_RETRIED_FOR - timedelta(seconds=1)
        driver.dynamodb.update_item(
            TableName=driver.local.stack.refs["PinLettersTable"],
            Key=letter_key(letter.letter_id),
            UpdateExpression="SET dispatched_at = :at",
            ExpressionAttributeValues=to_item({":at": age.isoformat()}),
        )
        assert function.invoke(task) == {"outcome": "active"}
    assert any("PrintDocumentsLeft" in line for line in capsys.readouterr().out.splitlines())


def test_a_letter_blocked_at_the_printer_whose_document_s3_keeps_failing_to_delete_is_left_after_a_while(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    """Blocked at the printer, then posted: when it was posted is written once (a run of the task again
    neither moves it nor the time the delete is tried for), so that the document is left for the operators
    after DOCUMENT_DELETE_RETRIED_FOR, not retried into MarkFailed (an alarm of a letter not posted)."""
    number = driver.person(Category.ADULT).identity_number
    assert driver.order(number).status == 202
    job = driver.next_print_job()
    PinLetterAccount(driver.letters, SystemClock(), notice_queue(driver)).block(driver.key(number))
    function = driver.local.functions.by_logical_id[state_function("ActivateLetter")]
    task = {"task": "activate-letter", "letter_id": job["letter_id"]}  # as the report runs it, and its retries
    posted_at = []
    with injected_faults() as faults:
        faults.add("s3", "DeleteObjects", code="InternalError", status=500, times=100, here=True)
        for _ in range(2):
            with pytest.raises(Exception, match=r"^ClientError$") as raised:
                function.invoke(task)
            assert type(raised.value).__name__ == "DependencyUnavailable"  # the workflow's retry takes it
            posted_at.append(_letter(driver, job["letter_id"]).dispatched_at)
        assert posted_at[0] is not None
        assert posted_at[1] == posted_at[0]
        age = datetime.now(UTC) - DOCUMENT_DELETE_RETRIED_FOR - timedelta(seconds=1)
        driver.dynamodb.update_item(
            TableName=driver.local.stack.refs["PinLettersTable"],
            Key=letter_key(job["letter_id"]),
            UpdateExpression="SET dispatched_at = :at",
            ExpressionAttributeValues=to_item({":at": age.isoformat()}),
        )
        assert function.invoke(task) == {"outcome": "blocked"}
    assert any("PrintDocumentsLeft" in line for line in capsys.readouterr().out.splitlines())
    posted = _letter(driver, job["letter_id"])
    assert (posted.status, posted.dispatched_at) == (LetterStatus.BLOCKED, age)


def _letter(driver: LetterDriver, letter_id: str) -> PinLetter:
    letter = driver.letters.get(letter_id)
    assert letter is not None
    return letter


def _objects(driver: LetterDriver, letter_id: str) -> set[str]:
    bucket = driver.local.stack.refs["PrintDocumentsBucket"]
    listed = driver.local.session.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"letters/{letter_id}/")
    return {str(o.get("Key")) for o in listed.get("Contents", [])}


def test_the_letter_posted_event_is_written_with_the_activation_not_after_it(driver: LetterDriver) -> None:
    """Written after it, an event that failed (or a crash between) was lost for good: the task's retry
    finds the letter active and has nothing left to do, and the person's history never shows the letter."""
    letter, tasks = _validated_order(driver)
    assert tasks.prepare_letter(letter.letter_id) is not None
    with injected_faults() as faults:
        faults.add("dynamodb", "PutItem", code="InternalServerError", status=500, times=3)
        for _ in range(2):  # the task, and the workflow's retry should it fail
            with contextlib.suppress(ClientError):
                assert tasks.activate(letter.letter_id) is Activation.ACTIVE
                break
    events = security_events(driver).page(letter.person, None, 100).events
    posted_events = [e for e in events if e.type is SecurityEventType.PIN_LETTER_POSTED]
    assert [e.reference for e in posted_events] == [letter.letter_id]

"""Enrolment through the real handler on moto, with letters posted through the real workflow."""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from local.faults import injected_faults
from local.functions import LambdaContext
from local.population_seed import Category
from minid import deadline, wiring
from minid.adapters.accounts import DynamoDbAccounts
from minid.adapters.clock import SystemClock
from minid.adapters.contacts import DynamoDbContactRegister
from minid.adapters.dynamodb import iso, to_item
from minid.adapters.enrolments import DynamoDbEnrolments
from minid.adapters.passwords import Argon2PasswordHasher
from minid.deadline import OutOfTime
from minid.domain.accounts import UserAccount
from minid.domain.codes import RateLimited, replaced_code
from minid.domain.contacts import Language
from minid.domain.enrolment import (
    ACTIVATED_MEANWHILE,
    ACTIVE,
    MAX_PIN_TRIES,
    MAX_VERIFY_TRIES,
    NOT_MATCHING,
    VERIFIED_MEANWHILE,
    EnrolmentStatus,
    VerificationResult,
)
from minid.domain.errors import AuthenticationFailed, Conflict
from minid.domain.events import SecurityEventType
from minid.domain.identity import compose_identity_number
from minid.domain.keys import PersonKey
from minid.domain.letters.account import PinLetterAccount
from minid.domain.letters.model import MAX_PIN_FAILURES_PER_LETTER, LetterStatus, asking_order
from minid.domain.notices import Channel
from minid.domain.passwords import PasswordReason
from minid.domain.rate_limits import CODES_TO_PERSON_PER_HOUR
from tests.integration.letters import (
    LetterDriver,
    age_ledger,
    before_first_aws_call,
    calls_made,
    counted_hits,
    fill_counters,
    in_one_window,
    notice_queue,
    posted,
    registered_ceased,
    registered_dead,
    security_events,
    taken_out_of_register,
    transaction_updating,
    wait_for,
)
from tests.integration.users import PASSWORD, CodesAlike, Enrolling, MovableClock, with_letter

UUID = "0f5e8f4e-1c2d-4b3a-9e8f-7a6b5c4d3e2f"


def problem(response: Any) -> dict[str, Any]:
    assert response.header("content-type") == "application/problem+json"
    value: dict[str, Any] = json.loads(response.body)
    return value


# ---------------------------------------------------------------------- the whole way
def test_a_person_with_a_letter_becomes_a_user(driver: LetterDriver) -> None:
    enrolling = with_letter(driver)

    started = enrolling.start()
    assert started["expires_in"] == 900
    assert len(set(started["pin_indices"])) == 2
    assert enrolling.complete(mobile="912 34 567", email="Kari@Example.NO").status == 202
    mobile_code = enrolling.last_code_to("+4791234567")
    assert driver.local.outbox.sms()[-1]["message"].endswith(f"@minid.example.no #{mobile_code}")
    first = enrolling.verify(mobile_code=mobile_code)
    assert (first.status, json.loads(first.body)) == (202, {"status": "verifying", "remaining": ["email"]})
    done = enrolling.verify(email_code=enrolling.last_code_to("Kari@example.no"))
    assert (done.status, json.loads(done.body)) == (201, {"status": "active", "remaining": []})

    person = driver.key(enrolling.person.identity_number)
    account = DynamoDbAccounts(driver.dynamodb, driver.local.stack.refs["UsersTable"]).find(person)
    assert account is not None
    assert Argon2PasswordHasher(driver.local.keyer).verify(account.password_hash, PASSWORD)
    assert "m=19456,t=2,p=1" in account.password_hash
    record = DynamoDbContactRegister(driver.dynamodb, driver.local.stack.refs["ContactRegisterTable"]).find(person)
    assert record is not None
    assert (record.mobile, record.email, record.language.value) == ("+4791234567", "Kari@example.no", "nb")
    assert record.mobile_verified_at
    assert record.email_verified_at
    letter = driver.only_letter(enrolling.person.identity_number)
    assert sorted(letter.used) == sorted(enrolling.indices)
    welcome = wait_for(driver.local.outbox.sms, lambda sms: any("bruker av MinID" in m["message"] for m in sms))
    assert welcome[-1]["to"] == "+4791234567"


def test_the_same_codes_do_not_enrol_again(driver: LetterDriver) -> None:
    """An enrolment started before the codes were used (another tab) asks for them too: given once they
    are used, they are refused, and as no guess (the letter counts no wrong code)."""
    enrolling = with_letter(driver)
    spare = Enrolling(driver, enrolling.person, enrolling.codes)
    spare.start()
    enrolling.enrol()
    assert sorted(spare.indices) == sorted(enrolling.indices)
    used = {str(i): enrolling.codes[str(i)] for i in enrolling.indices}
    assert spare.complete(codes=used).status == 401
    assert (pin_failures(driver, enrolling), pin_guesses(driver, enrolling)) == (0, 0)

    for _ in range(10):  # the used codes are never asked for again
        assert not set(enrolling.start()["pin_indices"]) & {int(i) for i in used}


def test_every_start_for_the_same_number_asks_for_the_same_codes_whoever_it_is(driver: LetterDriver) -> None:
    """Drawn at random from the unused codes, the numbers asked over many starts told who had used codes
    (who is enrolled): those never came up. A start now asks for the first two unused codes in the
    person's order, a decoy for the first two: the same numbers, every time, for anyone."""
    enrolments = wiring.enrolment(os.environ)
    nobody = compose_identity_number(date(1975, 5, 17), 435, synthetic=True) or ""
    decoy = {tuple(enrolments.start(nobody, f"198.19.3.{n + 1}").pin_indices) for n in range(5)}
    assert decoy == {tuple(sorted(asking_order(driver.local.keyer, driver.key(nobody))[:2]))}

    enrolling = with_letter(driver)  # a fresh letter: as a decoy would
    order = asking_order(driver.local.keyer, driver.key(enrolling.person.identity_number))
    assert {tuple(enrolling.start()["pin_indices"]) for _ in range(5)} == {tuple(sorted(order[:2]))}
    enrolling.enrol()
    assert {tuple(enrolling.start()["pin_indices"]) for _ in range(5)} == {tuple(sorted(order[2:4]))}


def block_letter(driver: LetterDriver, enrolling: Enrolling) -> None:
    """The person's letter blocked, as its holder or support blocks it (or wrong codes at logins)."""
    account = PinLetterAccount(driver.letters, SystemClock(), notice_queue(driver))
    account.block(driver.key(enrolling.person.identity_number))
    assert driver.only_letter(enrolling.person.identity_number).status is LetterStatus.BLOCKED


def test_blocking_an_enrolled_persons_letter_does_not_move_the_codes_asked(driver: LetterDriver) -> None:
    """Anyone who has a person's password can block their letter with wrong codes at logins. Had a blocked
    letter's start asked as a decoy with no letter does (the first two in the order), the numbers asked
    before and after the block would have told an enrolled person (whose first two are used) from anyone
    else."""
    enrolling = with_letter(driver)
    enrolling.enrol()
    before = enrolling.start()["pin_indices"]
    block_letter(driver, enrolling)
    assert enrolling.start()["pin_indices"] == before
    order = asking_order(driver.local.keyer, driver.key(enrolling.person.identity_number))
    reset = enrolling.post("/v1/password-resets", {"identity_number": enrolling.person.identity_number})
    assert json.loads(reset.body)["pin_index"] == order[2]  # a decoy's now, and as a real one asked


def test_a_new_letter_does_not_move_the_codes_asked(driver: LetterDriver) -> None:
    """Anyone can order a letter in a person's name. Had a new letter's starts asked as a fresh letter
    does (the first two in the order), the numbers asked before and after it was posted would have told
    an enrolled person (whose first two are used) from anyone else. The person's used codes are kept
    over all their letters, and the new letter's codes by those numbers work as any."""
    enrolling = with_letter(driver)
    enrolling.enrol()
    before = enrolling.start()["pin_indices"]
    age_ledger(driver, enrolling.person.identity_number, timedelta(days=2))
    _, codes = posted(driver, enrolling.person.identity_number)  # a newer letter: the first superseded
    enrolling.codes = codes
    assert enrolling.start()["pin_indices"] == before
    assert enrolling.complete(mobile="91234568").status == 202  # a real enrolment, with the new letter


def test_a_ledger_from_before_the_used_codes_were_kept_still_asks_alike_after_a_block(driver: LetterDriver) -> None:
    """A ledger written before it kept the person's used codes (and the letter posted last): a block
    (which removes the active pointer) keeps the blocked letter's used codes with the person."""
    enrolling = with_letter(driver)
    enrolling.enrol()
    before = enrolling.start()["pin_indices"]
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["PinLettersTable"],
        Key=to_item({"pk": f"person#{driver.key(enrolling.person.identity_number)}", "sk": "letters"}),
        UpdateExpression="REMOVE latest, used_codes",
    )
    assert enrolling.start()["pin_indices"] == before  # the active letter's used codes
    block_letter(driver, enrolling)  # its pointer removed
    assert enrolling.start()["pin_indices"] == before


def test_a_letter_that_is_no_longer_the_active_one_enrols_no_one(driver: LetterDriver) -> None:
    """The pointer removed (its block, or a newer letter's, under way) while the letter still reads
    posted: its codes are refused, as a login's are, though the numbers asked stay the same."""
    enrolling = with_letter(driver)
    before = enrolling.start()["pin_indices"]
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["PinLettersTable"],
        Key=to_item({"pk": f"person#{driver.key(enrolling.person.identity_number)}", "sk": "letters"}),
        UpdateExpression="REMOVE active",
    )
    assert enrolling.start()["pin_indices"] == before
    assert enrolling.complete().status == 401


def test_an_email_alone_is_enough_and_so_is_a_mobile(driver: LetterDriver) -> None:
    by_email = with_letter(driver)
    by_email.start()
    assert json.loads(by_email.complete(email="ola@example.no").body) == {"verification_sent_to": ["email"]}
    assert by_email.verify(email_code=by_email.last_code_to("ola@example.no")).status == 201
    by_mobile = with_letter(driver)
    by_mobile.start()
    assert json.loads(by_mobile.complete(mobile="+46 70 123 45 67").body) == {"verification_sent_to": ["mobile"]}
    assert by_mobile.verify(mobile_code=by_mobile.last_code_to("+46701234567")).status == 201


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"mobile": None, "email": None}, "mobile"),
        ({"mobile": "22 33 44 55"}, "mobile"),  # a landline: no SMS
        ({"mobile": "1234"}, "mobile"),
        ({"mobile": "not a number"}, "mobile"),
        ({"mobile": "+47 123 45 678"}, "mobile"),
        ({"email": "ola@"}, "email"),
        ({"email": "ola.example.no"}, "email"),
    ],
)
def test_contacts_that_cannot_be_used_are_refused(driver: LetterDriver, fields: dict[str, Any], field: str) -> None:
    enrolling = with_letter(driver)
    enrolling.start()
    response = enrolling.complete(**fields)
    assert response.status == 422
    details = problem(response)
    assert details["type"] == "/problems/invalid-contact"
    assert details["errors"][0]["field"] == field


# ---------------------------------------------------------------------- the PIN codes
def test_wrong_codes_fail_and_three_end_the_enrolment(driver: LetterDriver) -> None:
    enrolling = with_letter(driver)
    enrolling.start()
    wrong = {str(i): f"{(int(enrolling.codes[str(i)]) + 1) % 1_000_000:06d}" for i in enrolling.indices}
    for _ in range(3):
        response = enrolling.complete(codes=wrong)
        assert response.status == 401
        assert problem(response)["type"] == "/problems/authentication-failed"
    assert enrolling.complete().status == 404  # even the right codes: the enrolment has ended


def test_a_code_for_a_contact_not_given_is_named_and_spends_no_try(driver: LetterDriver) -> None:
    """A form that sends every field it has (an e-mail code for an enrolment with a mobile alone): no code
    was sent there, and none can be right: 422 naming the field, no try spent. The right code alone
    then activates the account, however often that was sent."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234570").status == 202
    code = enrolling.last_code_to("+4791234570")
    for _ in range(4):  # more than the tries
        refused = enrolling.verify(mobile_code=code, email_code="123456")
        assert refused.status == 422
        assert [e["field"] for e in problem(refused)["errors"]] == ["email_code"]
    assert enrolling.verify(mobile_code=code).status == 201


def test_codes_other_than_those_asked_for_are_refused(driver: LetterDriver) -> None:
    enrolling = with_letter(driver)
    enrolling.start()
    others = [i for i in range(1, 21) if i not in enrolling.indices][:2]
    assert enrolling.complete(codes={str(i): enrolling.codes[str(i)] for i in others}).status == 401


def test_only_wrong_codes_cost_a_try(driver: LetterDriver) -> None:
    """A try is counted before the codes are judged; codes other than those asked for, a weak password,
    AWS briefly down before the codes are judged or after they were judged right, and a completion made
    (and made again, to correct a contact) give it back."""
    enrolling = with_letter(driver)
    enrolling.start()
    others = [i for i in range(1, 21) if i not in enrolling.indices][:2]
    for attempt in range(3):  # as many as the tries
        back_date_codes(driver, enrolling.enrolment_id)  # completed again, its codes are sent again: a resend
        assert enrolling.complete(codes={str(i): enrolling.codes[str(i)] for i in others}).status == 401
        assert enrolling.complete(password="Password1").status == 422
        with injected_faults() as faults:
            faults.add("dynamodb", "BatchGetItem", code="ProvisionedThroughputExceededException", status=400)
            assert enrolling.complete(mobile=f"9123456{attempt}").status == 503
        with injected_faults() as faults:
            faults.add("sns", "Publish", code="Throttling", status=400)
            assert enrolling.complete(mobile=f"9123456{attempt}").status == 503
        back_date_codes(driver, enrolling.enrolment_id)
        assert enrolling.complete(mobile=f"9123456{attempt}").status == 202
    back_date_codes(driver, enrolling.enrolment_id)
    assert enrolling.complete(mobile="91234563").status == 202  # every try is still there
    assert enrolling.verify(mobile_code=enrolling.last_code_to("+4791234563")).status == 201


def test_a_completion_made_again_sends_its_codes_again_as_a_resend(driver: LetterDriver) -> None:
    """Completed again (to correct a contact), an enrolment sends new codes: 30 seconds apart and at most
    three times, as resends, or one letter would send SMS and e-mail without end, to any number given."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234567").status == 202
    too_soon = enrolling.complete(mobile="91234568")
    assert too_soon.status == 429
    assert int(too_soon.header("retry-after") or 0) > 0
    for n in range(3):
        back_date_codes(driver, enrolling.enrolment_id)
        assert enrolling.complete(mobile=f"9123457{n}").status == 202
    back_date_codes(driver, enrolling.enrolment_id)
    spent = enrolling.complete(mobile="91234580")
    assert (spent.status, spent.header("retry-after")) == (409, None)  # no wait makes another possible
    assert enrolling.resend().status == 409  # the resends are spent
    sent_to = {m["to"] for m in driver.local.outbox.sms()}
    assert {"+4791234568", "+4791234580"} & sent_to == set()
    assert enrolling.verify(mobile_code=enrolling.last_code_to("+4791234572")).status == 201


def test_a_completion_made_again_after_its_answer_was_lost_sends_nothing_again(driver: LetterDriver) -> None:
    """The same completion again (the same contacts and password; its answer lost): answered as it was,
    no new code sent (one would replace the code the person may be typing, and spend a resend), no try
    counted. A completion whose write was made and its answer lost (the SDK's retry then refused) too."""
    enrolling = with_letter(driver)
    enrolling.start()
    completing = updating("SET #status = :verifying")
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", after="retried", here=True, where=completing)
        first = enrolling.complete(mobile="91234567")
        assert faults.injected == [("dynamodb", "UpdateItem", "retried")]
    assert (first.status, json.loads(first.body)) == (202, {"verification_sent_to": ["mobile"]})
    sent = len(driver.local.outbox.sms())
    code = enrolling.last_code_to("+4791234567")
    again = enrolling.complete(mobile="912 34 567")
    assert (again.status, json.loads(again.body)) == (202, {"verification_sent_to": ["mobile"]})
    assert len(driver.local.outbox.sms()) == sent
    read = DynamoDbEnrolments(driver.dynamodb, driver.local.stack.refs["ChallengesTable"]).get(enrolling.enrolment_id)
    assert read is not None
    assert (read.pin_tries, read.resends) == (0, 0)
    other_password = enrolling.complete(mobile="91234567", password="a different passphrase of mine")
    assert other_password.status == 429  # another completion: a resend, not 30 seconds after the codes
    assert enrolling.verify(mobile_code=code).status == 201


def test_a_give_back_that_fails_is_not_made_again(driver: LetterDriver) -> None:
    """The same completion again: its try is given back. That write failing (made, maybe, its answer
    lost) is not made a second time by the failure's own give-back: twice, it would give back a try another
    request claimed meanwhile, a guess of the PIN codes more. The client is answered 503, for a retry."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234567").status == 202
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", after="lost", where=updating("ADD pin_tries :minus"), times=5)
        assert enrolling.complete(mobile="91234567").status == 503
        assert faults.injected == [("dynamodb", "UpdateItem", "lost")]
    assert enrolment_item(driver, enrolling)["pin_tries"] == {"N": "0"}


def test_the_same_completion_once_its_codes_have_expired_sends_new_ones(driver: LetterDriver) -> None:
    """Not a lost answer: the person asks again for codes that have run out, and gets them (as a resend)."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234567").status == 202
    expired = enrolling.last_code_to("+4791234567")
    codes_sent_at(driver, enrolling.enrolment_id, datetime.now(UTC) - timedelta(minutes=11))
    again = enrolling.complete(mobile="91234567")
    assert (again.status, json.loads(again.body)) == (202, {"verification_sent_to": ["mobile"]})
    fresh = enrolling.last_code_to("+4791234567")
    assert fresh != expired
    assert enrolling.verify(mobile_code=fresh).status == 201


def test_the_codes_a_persons_enrolments_send_are_limited(driver: LetterDriver) -> None:
    """Each enrolment sends codes on completion; a person's enrolments together send at most so many an
    hour: past it, 429 and nothing sent."""
    enrolling = with_letter(driver)
    person = driver.key(enrolling.person.identity_number)
    for n in range(3):
        enrolling.start()
        assert enrolling.complete(mobile=f"9300{n:04d}").status == 202
    assert counted_hits(driver, "enrolment-codes", person, 3600) == 3
    fill_counters(driver, "enrolment-codes", person, 3600, CODES_TO_PERSON_PER_HOUR)
    enrolling.start()
    by_client = counted_hits(driver, "codes-sent", enrolling.source_ip, 3600)
    refused = enrolling.complete(mobile="93009999")
    assert refused.status == 429
    assert int(refused.header("retry-after") or 0) > 0
    assert "+4793009999" not in {m["to"] for m in driver.local.outbox.sms()}
    assert counted_hits(driver, "codes-sent", enrolling.source_ip, 3600) == by_client  # nothing sent: not counted


def test_codes_that_could_not_be_sent_are_not_counted_against_the_person_or_the_client(driver: LetterDriver) -> None:
    """SNS throttled, nothing sent: 503, and neither the person's codes an hour nor the client's are
    taken, or a short outage would use them up (the person shut out for the hour). Sent, each counts."""
    enrolling = with_letter(driver)
    person = driver.key(enrolling.person.identity_number)
    enrolling.start()
    client_before = counted_hits(driver, "codes-sent", enrolling.source_ip, 3600)
    with injected_faults() as faults:
        faults.add("sns", "Publish", code="Throttling", status=400)
        assert enrolling.complete(mobile="93007000").status == 503
    assert counted_hits(driver, "enrolment-codes", person, 3600) == 0
    assert counted_hits(driver, "codes-sent", enrolling.source_ip, 3600) == client_before
    assert enrolling.complete(mobile="93007000").status == 202
    assert counted_hits(driver, "enrolment-codes", person, 3600) == 1
    assert counted_hits(driver, "codes-sent", enrolling.source_ip, 3600) == client_before + 1
    back_date_codes(driver, enrolling.enrolment_id)
    with injected_faults() as faults:
        faults.add("sns", "Publish", code="Throttling", status=400)
        assert enrolling.resend().status == 503
    assert counted_hits(driver, "enrolment-codes", person, 3600) == 1
    assert counted_hits(driver, "codes-sent", enrolling.source_ip, 3600) == client_before + 1


def test_a_client_may_start_so_many_enrolments_a_minute(driver: LetterDriver) -> None:
    """Starts are identity attempts, counted per client (in one-minute windows) for every number."""
    enrolling = with_letter(driver)
    nobody = compose_identity_number(date(1975, 5, 17), 434, synthetic=True) or ""
    for number in (enrolling.person.identity_number, nobody):
        assert enrolling.post("/v1/enrolments", {"identity_number": number}).status == 201
    assert counted_hits(driver, "identity-attempts", enrolling.source_ip, 60) == 2
    fill_counters(driver, "identity-attempts", enrolling.source_ip, 60, 30)  # the template's default
    refused = enrolling.post("/v1/enrolments", {"identity_number": nobody})
    assert refused.status == 429
    assert refused.header("content-type") == "application/problem+json"
    assert int(refused.header("retry-after") or 0) > 0


def test_a_completion_that_meets_another_made_meanwhile_is_a_conflict_not_a_failure(driver: LetterDriver) -> None:
    """Two completions at once, both with the right codes: the one that writes second finds the enrolment
    no longer as it read it. It answers 409 (not a 500), and the enrolment holds the first one's contacts."""
    enrolling = with_letter(driver)
    enrolling.start()
    codes = {int(i): enrolling.codes[str(i)] for i in enrolling.indices}

    def completed_meanwhile() -> None:
        assert enrolling.complete(mobile="91234567").status == 202

    with before_first_aws_call("dynamodb.UpdateItem", completed_meanwhile, where=updating(RECORD_COMPLETION)):
        service = wiring.enrolment(os.environ)
        with pytest.raises(Conflict):
            service.complete(
                enrolling.enrolment_id,
                client="198.19.4.1",
                pin_codes=codes,
                password=PASSWORD,
                mobile="92345678",
                email=None,
            )
    assert enrolling.verify(mobile_code=enrolling.last_code_to("+4791234567")).status == 201


def test_the_same_completion_sent_twice_at_once_is_answered_for_both_and_its_codes_are_no_guess(
    driver: LetterDriver,
) -> None:
    """A double click: both requests send their codes, one writes. The other is the same completion (the
    contacts, the password): answered as it (202, not a 409), its try given back, and its code, which the
    person may type (SMS come in any order), told replaced by the newer one, with no try spent."""
    enrolling = with_letter(driver)
    enrolling.start()
    codes = {int(i): enrolling.codes[str(i)] for i in enrolling.indices}
    first: list[str] = []

    def the_same_meanwhile() -> None:
        first.append(enrolling.last_code_to("+4791234567"))  # this request's code, sent before its write
        assert enrolling.complete(mobile="91234567").status == 202

    with before_first_aws_call("dynamodb.UpdateItem", the_same_meanwhile, where=updating(RECORD_COMPLETION)):
        channels = wiring.enrolment(os.environ).complete(
            enrolling.enrolment_id,
            client="198.19.4.2",
            pin_codes=codes,
            password=PASSWORD,
            mobile="91234567",
            email=None,
        )
    assert channels == (Channel.SMS,)
    assert enrolment_item(driver, enrolling)["pin_tries"] == {"N": "0"}
    refused = enrolling.verify(mobile_code=first[0])
    assert (refused.status, json.loads(refused.body)["detail"]) == (401, replaced_code({Channel.SMS}))
    assert enrolment_item(driver, enrolling)["verify_tries"] == {"N": "0"}
    assert enrolling.verify(mobile_code=enrolling.last_code_to("+4791234567")).status == 201


def test_a_right_verification_code_costs_no_try(driver: LetterDriver) -> None:
    """With two contacts, the mobile's right code leaves every try for the e-mail's."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234567", email="kari.tries@example.no").status == 202
    assert enrolling.verify(mobile_code=enrolling.last_code_to("+4791234567")).status == 202
    for _ in range(MAX_VERIFY_TRIES - 1):
        assert enrolling.verify(email_code="000000").status == 401
    assert enrolling.verify(email_code=enrolling.last_code_to("kari.tries@example.no")).status == 201


def test_a_completion_whose_sms_answer_never_came_sends_no_e_mail_code_that_could_not_work(
    driver: LetterDriver,
) -> None:
    """The completion's codes are written after they are sent: SNS timing out (the SMS maybe out), nothing
    is written and the answer is 503. An e-mail code sent after it would be one that never works (the
    retry sends others): none is sent, and the retry's codes verify the enrolment."""
    enrolling = with_letter(driver)
    enrolling.start()
    with injected_faults() as faults:
        faults.add("sns", "Publish", after="lost", here=True)  # the completion's, not a notice's meanwhile
        assert enrolling.complete(mobile="91234590", email="kari.lost@example.no").status == 503
    assert [m for m in driver.local.outbox.emails() if m["to"] == "kari.lost@example.no"] == []
    assert enrolling.complete(mobile="91234590", email="kari.lost@example.no").status == 202
    codes = {
        "mobile_code": enrolling.last_code_to("+4791234590"),
        "email_code": enrolling.last_code_to("kari.lost@example.no"),
    }
    assert enrolling.verify(**codes).status == 201


def enrolment_item(driver: LetterDriver, enrolling: Enrolling) -> dict[str, Any]:
    item = driver.dynamodb.get_item(
        TableName=driver.local.stack.refs["ChallengesTable"], Key=to_item({"pk": f"enrolment#{enrolling.enrolment_id}"})
    )["Item"]
    return dict(item)


def test_an_enrolment_done_or_ended_keeps_neither_the_password_nor_the_contacts_given(driver: LetterDriver) -> None:
    """Active, the contacts are in the contact register; ended, they are of no use: neither waits for the
    item's expiry (DynamoDB's TTL may take days) in the enrolment. Its codes' hashes stay while active, for
    a verify retried after its answer was lost."""
    done = with_letter(driver)
    done.start()
    assert done.complete(mobile="91234567", email="kari.done@example.no").status == 202
    assert {"contacts", "password_hash"} <= set(enrolment_item(driver, done))
    codes = {"mobile_code": done.last_code_to("+4791234567"), "email_code": done.last_code_to("kari.done@example.no")}
    assert done.verify(**codes).status == 201
    assert not {"contacts", "password_hash"} & set(enrolment_item(driver, done))
    assert done.verify(**codes).status == 201  # retried: answered as before

    ended = with_letter(driver)
    ended.start()
    assert ended.complete(mobile="91234568").status == 202
    for _ in range(MAX_VERIFY_TRIES):
        assert ended.verify(mobile_code="000000").status == 401
    assert not {"contacts", "password_hash", "codes"} & set(enrolment_item(driver, ended))


# Who the register has as no longer using the number: dead (a letter posted before, in someone else's hands),
# or with the number replaced by another (a D-number by a fødselsnummer: seeds/004, the person uses the
# new one from then on, and enrols with it). Each: their letter's person, and how the register says it.
NO_LONGER = pytest.mark.parametrize(
    ("category", "registered"),
    [(Category.ADULT, registered_dead), (Category.D_NUMBER_NORWAY, registered_ceased)],
    ids=["dead", "number-replaced"],
)


@NO_LONGER
def test_the_letter_of_a_person_who_has_died_or_whose_number_was_replaced_enrols_no_one(
    driver: LetterDriver, category: Category, registered: Callable[[LetterDriver, str], None]
) -> None:
    """Its right codes are refused as wrong ones, and no code is sent."""
    enrolling = with_letter(driver, category)
    registered(driver, enrolling.person.identity_number)
    enrolling.start()
    assert enrolling.complete(mobile="93456780").status == 401
    assert "+4793456780" not in {m["to"] for m in driver.local.outbox.sms()}


@pytest.mark.parametrize(
    ("category", "registered"),
    [
        (Category.ADULT, registered_dead),
        (Category.D_NUMBER_NORWAY, registered_ceased),
        (Category.ADULT, taken_out_of_register),
    ],
    ids=["dead", "number-replaced", "taken-out"],
)
def test_a_person_who_dies_or_whose_number_is_replaced_between_the_completion_and_the_verify_is_not_enrolled(
    driver: LetterDriver, category: Category, registered: Callable[[LetterDriver, str], None]
) -> None:
    """The codes were right while the number was the person's; by the verify it is not (or the register
    no longer has the person, whom the completion would have refused too): no account, no contact record,
    the enrolment ended (its codes are refused for good)."""
    enrolling = with_letter(driver, category)
    enrolling.start()
    assert enrolling.complete(mobile="93456781").status == 202
    code = enrolling.last_code_to("+4793456781")
    registered(driver, enrolling.person.identity_number)
    assert enrolling.verify(mobile_code=code).status == 401
    person = driver.key(enrolling.person.identity_number)
    assert DynamoDbAccounts(driver.dynamodb, driver.local.stack.refs["UsersTable"]).find(person) is None
    register = DynamoDbContactRegister(driver.dynamodb, driver.local.stack.refs["ContactRegisterTable"])
    assert register.find(person) is None
    assert enrolling.verify(mobile_code=code).status == 404  # the enrolment ended with the first


def test_wrong_tries_at_enrolments_do_not_block_the_letter(driver: LetterDriver) -> None:
    """Anyone who knows a number may start enrolments for it, with no other secret: counted toward the
    letter's block, as a login's and a reset's wrong codes are (those need the password or a code sent
    first), five would block the person's letter, and with it their enrolment, PIN logins and resets.
    Each is in the person's history, and the letter works on."""
    enrolling = with_letter(driver)
    for tries in (3, 3):  # six, over two enrolments
        enrolling.start()
        for _ in range(tries):
            assert enrolling.complete(codes={str(i): "000000" for i in enrolling.indices}).status == 401

    assert driver.only_letter(enrolling.person.identity_number).status is LetterStatus.DISPATCHED
    assert (pin_failures(driver, enrolling), pin_guesses(driver, enrolling)) == (0, 6)
    history = security_events(driver).page(driver.key(enrolling.person.identity_number), None, 100).events
    failed = [e for e in history if e.type is SecurityEventType.ENROLMENT_FAILED]
    assert len(failed) == 6
    assert {e.detail["reason"] for e in failed} == {"pin-codes"}
    assert SecurityEventType.PIN_LETTER_BLOCKED not in {e.type for e in history}
    enrolling.enrol()  # the right codes
    assert pin_guesses(driver, enrolling) == 6  # (right ones are no guess)


def test_past_the_day_s_guesses_no_codes_are_judged_and_the_next_day_they_are(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    """The person's enrolments take a few wrong pairs a day (EnrolmentPinGuessesPerDay, 4 here), from any
    client: past them, even the right codes are answered as wrong ones are (the same words, as a decoy's),
    judged nothing, and nothing is written of them. A refusal of its own (a 429) would tell that the number
    has a letter. The next day, the right codes enrol."""
    enrolling = with_letter(driver)
    day = MovableClock()
    guesses = 4
    service = wiring.enrolment(os.environ | {"ENROLMENT_PIN_GUESSES_PER_DAY": str(guesses)}, clock=day)
    person = driver.key(enrolling.person.identity_number)

    def complete(enrolment_id: str, codes: dict[int, str], client: str) -> tuple[Channel, ...]:
        return service.complete(
            enrolment_id, client=client, pin_codes=codes, password=PASSWORD, mobile="91234567", email=None
        )

    for n in range(guesses):
        started = service.start(enrolling.person.identity_number, f"198.51.100.{n}")
        with pytest.raises(AuthenticationFailed):
            complete(started.enrolment_id, dict.fromkeys(started.pin_indices, "000000"), f"198.51.100.{n}")
    started = service.start(enrolling.person.identity_number, "203.0.113.9")  # another client
    right = {i: enrolling.codes[str(i)] for i in started.pin_indices}
    capsys.readouterr()
    with pytest.raises(AuthenticationFailed) as refused:
        complete(started.enrolment_id, right, "203.0.113.9")
    assert refused.value.detail == NOT_MATCHING
    told = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"LimitReached"' in line]
    assert [(m["limit"], m["LimitReached"]) for m in told] == [("enrolment-pin-guesses", [1.0])]  # operators see it
    with pytest.raises(AuthenticationFailed):  # a wrong pair: no more written of it than of the right one
        complete(started.enrolment_id, dict.fromkeys(started.pin_indices, "000000"), "203.0.113.9")
    history = security_events(driver).page(person, None, 100).events
    assert [e.type for e in history].count(SecurityEventType.ENROLMENT_FAILED) == guesses
    assert pin_guesses(driver, enrolling) == guesses
    enrolment = DynamoDbEnrolments(driver.dynamodb, driver.local.stack.refs["ChallengesTable"]).get(
        started.enrolment_id
    )
    assert enrolment is not None
    assert (enrolment.status, enrolment.pin_tries) == (EnrolmentStatus.STARTED, 2)  # tries spent all the same
    assert driver.only_letter(enrolling.person.identity_number).status is LetterStatus.DISPATCHED

    day.advance(timedelta(days=1))
    started = service.start(enrolling.person.identity_number, "203.0.113.9")
    right = {i: enrolling.codes[str(i)] for i in started.pin_indices}
    assert complete(started.enrolment_id, right, "203.0.113.9") == (Channel.SMS,)


def test_a_client_s_guesses_an_hour_are_bounded_at_any_numbers(driver: LetterDriver) -> None:
    """A client's enrolments take a few guesses an hour (ClientEnrolmentGuessesPerHour, 2 here), at any
    numbers, a decoy's too: past them a 429 from this client (for any number alike: it tells nothing),
    judging nothing, the try given back. Another client is not held by it; right codes are no guess."""
    enrolling = with_letter(driver)
    in_one_window(3600, 30)
    service = wiring.enrolment(os.environ | {"CLIENT_ENROLMENT_GUESSES_PER_HOUR": "2"})
    unknown = compose_identity_number(date(1981, 3, 1), 234, synthetic=True) or ""
    client = "198.51.100.77"

    def complete(number: str, codes: dict[str, str] | None = None, by: str = client) -> tuple[str, Exception | None]:
        started = service.start(number, by)
        try:
            service.complete(
                started.enrolment_id,
                client=by,
                pin_codes={i: (codes or {}).get(str(i), "000000") for i in started.pin_indices},
                password=PASSWORD,
                mobile="91234567",
                email=None,
            )
        except Exception as error:
            return started.enrolment_id, error
        return started.enrolment_id, None

    for number in (enrolling.person.identity_number, unknown):
        assert isinstance(complete(number)[1], AuthenticationFailed)
    for number in (enrolling.person.identity_number, unknown):
        enrolment_id, refused = complete(number)
        assert isinstance(refused, RateLimited)
        assert refused.detail == "Too many requests from this client."
        item = driver.dynamodb.get_item(
            TableName=driver.local.stack.refs["ChallengesTable"], Key=to_item({"pk": f"enrolment#{enrolment_id}"})
        )["Item"]
        assert item["pin_tries"] == {"N": "0"}  # given back: nothing judged
    assert pin_guesses(driver, enrolling) == 1
    assert counted_hits(driver, "enrolment-guesses", client, 3600) == 2  # (the refusals counted nothing)
    assert isinstance(complete(unknown, by="198.51.100.78")[1], AuthenticationFailed)  # another client
    assert complete(enrolling.person.identity_number, enrolling.codes, by="198.51.100.78")[1] is None
    assert counted_hits(driver, "enrolment-guesses", "198.51.100.78", 3600) == 1  # the right codes': given back


def test_guesses_at_once_never_pass_the_day_s(driver: LetterDriver) -> None:
    """Each guess is counted before it is judged, on one count for the person: completions at once, over
    several enrolments, judge no more than the day's guesses (4 here)."""
    enrolling = with_letter(driver)
    guesses = 4
    service = wiring.enrolment(os.environ | {"ENROLMENT_PIN_GUESSES_PER_DAY": str(guesses)})
    enrolments = [service.start(enrolling.person.identity_number, f"198.51.100.{n}") for n in range(3)]
    refused: list[type[Exception]] = []

    def guess(enrolment_id: str, indices: tuple[int, int]) -> None:
        try:
            service.complete(
                enrolment_id,
                client="198.51.100.9",
                pin_codes=dict.fromkeys(indices, "000000"),
                password=PASSWORD,
                mobile="91234567",
                email=None,
            )
        except Exception as error:
            refused.append(type(error))

    threads = [
        threading.Thread(target=guess, args=(e.enrolment_id, e.pin_indices)) for e in enrolments for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert refused == [AuthenticationFailed] * 9
    assert pin_guesses(driver, enrolling) == guesses
    history = security_events(driver).page(driver.key(enrolling.person.identity_number), None, 100).events
    assert [e.type for e in history].count(SecurityEventType.ENROLMENT_FAILED) == guesses  # judged: no more


def test_a_guess_that_cannot_be_counted_is_not_judged(driver: LetterDriver) -> None:
    """The count of the day's guesses failing (DynamoDB throttles it): the codes are not judged, the right
    ones no more than wrong ones (else a 202 here and a 503 there would tell them apart, uncounted), and
    the try is given back."""
    enrolling = with_letter(driver)
    enrolling.start()
    with injected_faults() as faults:
        faults.add(
            "dynamodb",
            "UpdateItem",
            code="ProvisionedThroughputExceededException",
            times=20,
            here=True,
            where=lambda params: "enrolment-pin-guesses" in str(params.get("Key")),
        )
        assert enrolling.complete().status == 503
    assert faults.injected
    item = enrolment_item(driver, enrolling)
    assert (item["status"], item["pin_tries"]) == ({"S": "started"}, {"N": "0"})  # no completion written
    assert pin_guesses(driver, enrolling) == 0
    assert counted_hits(driver, "enrolment-guesses", enrolling.source_ip, 3600) == 0  # the client's given back
    assert enrolling.complete().status == 202


def test_a_try_whose_every_answer_was_lost_is_given_back(driver: LetterDriver) -> None:
    """The completion's try counted, and every answer to it lost: a 503, and the try given back by its mark
    (as many such as an enrolment's tries would have ended it, no code typed)."""
    enrolling = with_letter(driver)
    enrolling.start()
    counting = lambda params: "ADD pin_tries :one" in params.get("UpdateExpression", "")  # noqa: E731
    for _ in range(MAX_PIN_TRIES):
        with injected_faults() as faults:
            faults.add("dynamodb", "UpdateItem", after="lost", here=True, where=counting)
            assert enrolling.complete().status == 503
            assert faults.injected == [("dynamodb", "UpdateItem", "lost")]
        assert enrolment_item(driver, enrolling)["pin_tries"] == {"N": "0"}
    assert enrolling.complete().status == 202


def test_a_try_given_back_does_not_hand_its_number_out_again(driver: LetterDriver) -> None:
    """Another request's try, claimed before a wrong pair's and given back after it (a fault before its
    judgement): the next wrong pair is not given the first's number again (the two, in one millisecond,
    would write one event)."""
    enrolling = with_letter(driver)
    enrolling.start()
    enrolments = DynamoDbEnrolments(driver.dynamodb, driver.local.stack.refs["ChallengesTable"])
    assert enrolments.claim_pin_try(enrolling.enrolment_id, MAX_PIN_TRIES, datetime.now(UTC)) is not None
    wrong = {str(i): "000000" for i in enrolling.indices}
    assert enrolling.complete(codes=wrong).status == 401
    enrolments.refund_pin_try(enrolling.enrolment_id)  # the other's, given back
    assert enrolling.complete(codes=wrong).status == 401
    history = security_events(driver).page(driver.key(enrolling.person.identity_number), None, 100).events
    failed = sorted(e.reference for e in history if e.type is SecurityEventType.ENROLMENT_FAILED)
    assert failed == [f"{enrolling.enrolment_id}:2", f"{enrolling.enrolment_id}:3"]


def test_a_wrong_pair_is_counted_though_the_history_s_write_fails(driver: LetterDriver) -> None:
    """The guess is counted before its codes are judged: the history's write failing after leaves it
    counted (else, while the events' table fails, guesses would go uncounted), and the try spent."""
    enrolling = with_letter(driver)
    enrolling.start()
    events = driver.local.stack.refs["SecurityEventsTable"]
    with injected_faults() as faults:
        faults.add(
            "dynamodb",
            "PutItem",
            code="InternalServerError",
            status=500,
            times=20,
            here=True,
            where=lambda params: params.get("TableName") == events,
        )
        answer = enrolling.complete(codes={str(i): "000000" for i in enrolling.indices})
    assert faults.injected
    assert answer.status == 503
    assert (pin_failures(driver, enrolling), pin_guesses(driver, enrolling)) == (0, 1)
    assert enrolment_item(driver, enrolling)["pin_tries"] == {"N": "1"}


def test_a_letter_guessed_out_whose_block_was_lost_takes_no_right_code_and_is_blocked_then(
    driver: LetterDriver,
) -> None:
    """The fifth wrong code was counted, and the block after it failed: the letter is still posted, but
    its codes stopped working with the fifth. The right ones are refused, and block it, and the person
    is told."""
    enrolling = with_letter(driver)
    driver.add_contacts(enrolling.person.identity_number, mobile="+4790000002")
    letter = driver.only_letter(enrolling.person.identity_number)
    for _ in range(MAX_PIN_FAILURES_PER_LETTER):
        driver.letters.record_pin_failure(letter.letter_id)
    assert driver.only_letter(enrolling.person.identity_number).status is LetterStatus.DISPATCHED

    enrolling.start()
    assert enrolling.complete().status == 401

    assert driver.only_letter(enrolling.person.identity_number).status is LetterStatus.BLOCKED
    told = wait_for(driver.local.outbox.sms, lambda sms: any("sperret" in m["message"] for m in sms))
    assert told[-1]["to"] == "+4790000002"


def test_codes_of_a_superseded_letter_do_not_work(driver: LetterDriver) -> None:
    """An enrolment started on a letter, which a newer one then supersedes: the old letter's right codes
    no longer enrol (and are no guess), and the newer letter's codes do."""
    enrolling = with_letter(driver)
    enrolling.start()
    old = driver.only_letter(enrolling.person.identity_number)
    age_ledger(driver, enrolling.person.identity_number, timedelta(days=2))
    _, newer = posted(driver, enrolling.person.identity_number)  # a newer letter
    statuses = {letter.letter_id: letter.status for letter in driver.letters_of(enrolling.person.identity_number)}
    assert statuses[old.letter_id] is LetterStatus.SUPERSEDED
    assert enrolling.complete().status == 401  # the old letter's right codes
    assert statuses == {
        letter.letter_id: letter.status for letter in driver.letters_of(enrolling.person.identity_number)
    }  # nothing blocked, nothing used
    assert pin_guesses(driver, enrolling) == 0
    enrolling.codes = newer
    enrolling.enrol()


def test_a_decoy_enrolment_looks_the_same_and_nothing_fits(driver: LetterDriver) -> None:
    known = with_letter(driver)
    unknown = compose_identity_number(date(1980, 2, 29), 123, synthetic=True) or ""
    child = driver.person(Category.CHILD)
    answers = [known.start()]
    for number in (unknown, child.identity_number):
        response = driver.post("/v1/enrolments", {"identity_number": number})
        assert response.status == 201
        answers.append(json.loads(response.body))
    assert {tuple(sorted(a)) for a in answers} == {("enrolment_id", "expires_in", "pin_indices")}
    assert {a["expires_in"] for a in answers} == {900}
    for number, answer in zip((unknown, child.identity_number), answers[1:], strict=True):
        assert len(set(answer["pin_indices"])) == 2
        assert all(1 <= i <= 20 for i in answer["pin_indices"])
        decoy = driver.post(
            f"/v1/enrolments/{answer['enrolment_id']}/complete",
            {
                "pin_codes": {str(i): "123456" for i in answer["pin_indices"]},
                "password": PASSWORD,
                "mobile": "91234567",
            },
        )
        assert decoy.status == 401
        assert json.loads(decoy.body) == problem(known.complete(codes={str(i): "123456" for i in known.indices}))
        # (counted on the number's guesses a day as a real one's: the same calls, failing alike)
        assert counted_hits(driver, "enrolment-pin-guesses", driver.key(number), 86400) == 1
        # (it says the day's guesses may be used up: a person whose right codes are refused so knows why)
        assert json.loads(decoy.body)["detail"] == NOT_MATCHING


def ends_in(driver: LetterDriver, enrolling: Enrolling, left: timedelta) -> None:
    """The enrolment's end moved to `left` from now (negative: past)."""
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["ChallengesTable"],
        Key=to_item({"pk": f"enrolment#{enrolling.enrolment_id}"}),
        UpdateExpression="SET expires_at = :ends",
        ExpressionAttributeValues=to_item({":ends": int((datetime.now(UTC) + left).timestamp())}),
    )


def test_an_expired_enrolment_is_gone(driver: LetterDriver) -> None:
    enrolling = with_letter(driver)
    enrolling.start()
    ends_in(driver, enrolling, -timedelta(seconds=1))
    assert enrolling.complete().status == 404
    assert driver.post(f"/v1/enrolments/{UUID}/complete", {"pin_codes": {}, "password": "x"}).status == 422


def test_the_codes_say_how_long_they_work_when_the_enrolment_ends_before_their_ten_minutes(
    driver: LetterDriver,
) -> None:
    """The enrolment's 15 minutes run from its start: codes sent with 3.5 of them left say 3, not 10."""
    enrolling = with_letter(driver)
    enrolling.start()
    ends_in(driver, enrolling, timedelta(minutes=3.5))
    assert enrolling.complete(mobile="91234567").status == 202
    (text,) = [m["message"] for m in driver.local.outbox.snapshot()["sms"] if m["to"] == "+4791234567"][-1:]
    assert "Koden din for å bli MinID-bruker er" in text
    assert "Den gjelder i 3 minutter." in text


def test_concurrent_wrong_tries_never_exceed_the_limit(driver: LetterDriver) -> None:
    enrolling = with_letter(driver)
    enrolling.start()
    wrong = {str(i): "000000" for i in enrolling.indices}
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda: statuses.append(enrolling.complete(codes=wrong).status)) for _ in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (statuses.count(401), statuses.count(404)) == (3, 17)  # every try spent, and no more
    assert pin_guesses(driver, enrolling) == statuses.count(401)


def test_right_codes_used_meanwhile_are_refused_and_are_no_wrong_guess(driver: LetterDriver) -> None:
    """Two tabs ask for the same two codes (the first unused, in a fixed order): once one enrols with them,
    the other's completion with the same right codes is refused, and is no wrong guess (the person's
    guesses a day are few)."""
    first = with_letter(driver)
    second = Enrolling(driver, first.person, first.codes)
    first.start()
    second.start()
    assert second.indices == first.indices
    assert first.complete().status == 202
    assert first.verify(mobile_code=first.last_code_to("+4791234567")).status == 201
    assert second.complete().status == 401
    assert pin_guesses(driver, first) == 0
    wrong = {str(i): f"{(int(second.codes[str(i)]) + 1) % 1_000_000:06d}" for i in second.indices}
    assert second.complete(codes=wrong).status == 401  # a wrong one still counts
    assert pin_guesses(driver, first) == 1


def pin_guesses(driver: LetterDriver, enrolling: Enrolling) -> int:
    """The enrolments' guesses at the person's codes counted today (EnrolmentPinGuessesPerDay)."""
    return counted_hits(driver, "enrolment-pin-guesses", driver.key(enrolling.person.identity_number), 86400)


def pin_failures(driver: LetterDriver, enrolling: Enrolling) -> int:
    """The wrong guesses counted against the person's letter."""
    item = driver.dynamodb.get_item(
        TableName=driver.local.stack.refs["PinLettersTable"],
        Key=to_item({"pk": f"letter#{driver.only_letter(enrolling.person.identity_number).letter_id}", "sk": "letter"}),
    )["Item"]
    return int(item.get("pin_failures", {"N": "0"})["N"])


def test_a_resend_for_an_enrolment_activated_meanwhile_finds_it_done(driver: LetterDriver) -> None:
    """The resend reads the enrolment, then writes its codes only to it as read: activated in between, the
    answer is the 409 of an enrolment done, telling the person to log in (it was the 429 of a resend just
    made)."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete().status == 202
    code = enrolling.last_code_to("+4791234567")
    back_date_codes(driver, enrolling.enrolment_id)
    activated = lambda: enrolling.verify(mobile_code=code)  # noqa: E731
    with before_first_aws_call("dynamodb.UpdateItem", activated, where=updating(RECORD_RESEND)):
        service = wiring.enrolment(os.environ)
        with pytest.raises(Conflict, match=re.escape(ACTIVE)):
            service.resend(enrolling.enrolment_id, "198.51.100.9")
    assert driver.only_letter(enrolling.person.identity_number).status is LetterStatus.DISPATCHED


def test_no_code_is_resent_with_too_little_of_the_enrolment_left(driver: LetterDriver) -> None:
    """A code sent with seconds of its enrolment left would say "valid for 1 minute" and expire on the way:
    with less than a minute left, a resend sends none (409, start again)."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete().status == 202
    sent = len(driver.local.outbox.sms())
    items = driver.dynamodb.get_item(
        TableName=driver.local.stack.refs["ChallengesTable"], Key=to_item({"pk": f"enrolment#{enrolling.enrolment_id}"})
    )
    expires = datetime.fromtimestamp(int(items["Item"]["expires_at"]["N"]), UTC)
    service = wiring.enrolment(os.environ, clock=MovableClock(expires - timedelta(seconds=59)))
    with pytest.raises(Conflict, match="Too little time is left"):
        service.resend(enrolling.enrolment_id, "198.51.100.9")
    assert len(driver.local.outbox.sms()) == sent


def test_a_completion_for_an_enrolment_activated_meanwhile_is_told_to_log_in(driver: LetterDriver) -> None:
    """Another tab's codes activated the account: a completion made at that moment (its codes sent, its
    write refused), or after it, is told that the account is active and to log in, not to start again (a
    re-enrolment would end the sessions and tell the contacts of it)."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234567").status == 202
    code = enrolling.last_code_to("+4791234567")
    back_date_codes(driver, enrolling.enrolment_id)  # completed again: a resend, due
    codes = {int(i): enrolling.codes[str(i)] for i in enrolling.indices}

    def activated_meanwhile() -> None:
        assert enrolling.verify(mobile_code=code).status == 201

    with before_first_aws_call("dynamodb.UpdateItem", activated_meanwhile, where=updating(RECORD_COMPLETION)):
        service = wiring.enrolment(os.environ)
        with pytest.raises(Conflict, match=re.escape(ACTIVATED_MEANWHILE)):  # not with this password
            service.complete(
                enrolling.enrolment_id,
                client="198.19.4.2",
                pin_codes=codes,
                password="a different passphrase of mine",
                mobile="92345678",
                email=None,
            )
    after = enrolling.complete(mobile="92345678")
    assert (after.status, json.loads(after.body)["detail"]) == (409, ACTIVE)
    assert enrolling.resend().status == 409


def test_a_resend_overtaken_by_another_that_drew_the_same_codes_is_told_to_wait(driver: LetterDriver) -> None:
    """Two resends at once that drew the same codes: the one whose write is refused reads the other's count
    and codes, and must not take them for its own write, its answer lost (it would send them again): they
    were written at another time. A 429, and one SMS and one e-mail."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234567", email="kari.twice@example.no").status == 202
    back_date_codes(driver, enrolling.enrolment_id)
    alike = CodesAlike(424242)
    other = wiring.enrolment(os.environ, random=alike)  # the other click's: its clients made before the hook
    sent = (len(driver.local.outbox.sms()), len(driver.local.outbox.emails()))
    meanwhile = partial(other.resend, enrolling.enrolment_id, "198.51.100.12")
    with before_first_aws_call("dynamodb.UpdateItem", meanwhile, where=updating(RECORD_RESEND)) as outcomes:
        service = wiring.enrolment(os.environ, random=alike)
        with pytest.raises(RateLimited):
            service.resend(enrolling.enrolment_id, "198.51.100.11")
    assert outcomes == ["ConditionalCheckFailedException"]
    assert (len(driver.local.outbox.sms()), len(driver.local.outbox.emails())) == (sent[0] + 1, sent[1] + 1)
    assert enrolling.last_code_to("+4791234567") == enrolling.last_code_to("kari.twice@example.no") == "424242"
    assert enrolling.verify(mobile_code="424242", email_code="424242").status == 201


def test_a_resend_that_meets_a_verify_of_one_of_its_contacts_sends_nothing_and_says_so(driver: LetterDriver) -> None:
    """Codes wait for the mobile and the e-mail; the resend reads both unverified, and the mobile is verified
    (in another tab) before its write: no new code to a mobile already verified (nor to the e-mail), a 409
    that says so, and the e-mail's code still works."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234567", email="kari.resend@example.no").status == 202
    sms, email = enrolling.last_code_to("+4791234567"), enrolling.last_code_to("kari.resend@example.no")
    back_date_codes(driver, enrolling.enrolment_id)
    sent = (len(driver.local.outbox.sms()), len(driver.local.outbox.emails()))
    verified = lambda: enrolling.verify(mobile_code=sms)  # noqa: E731
    with before_first_aws_call("dynamodb.UpdateItem", verified, where=updating(RECORD_RESEND)) as outcomes:
        service = wiring.enrolment(os.environ)
        with pytest.raises(Conflict) as refused:
            service.resend(enrolling.enrolment_id, "198.51.100.10")
    assert outcomes == ["ConditionalCheckFailedException"]
    assert refused.value.detail == VERIFIED_MEANWHILE
    assert (len(driver.local.outbox.sms()), len(driver.local.outbox.emails())) == sent
    assert enrolling.verify(email_code=email).status == 201


# ---------------------------------------------------------------------- the password
@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("kort123", PasswordReason.TOO_SHORT),
        ("", PasswordReason.TOO_SHORT),  # the policy's answer, not the model's (API.md: 422 weak-password)
        ("x" * 257, PasswordReason.TOO_LONG),
        ("lang frase " * 200, PasswordReason.TOO_LONG),  # past any model limit: the policy's answer too
        ("Password1", PasswordReason.COMMON),
        ("qwertyuiop", PasswordReason.COMMON),
        ("{number} og mer tekst", PasswordReason.IDENTITY_NUMBER),
        ("født {dd}.{mm}.{yyyy} i Oslo", PasswordReason.BIRTH_DATE),
        ("{given} elsker sol og sommer", PasswordReason.NAME),
        ("familien {family} på tur", PasswordReason.NAME),
    ],
)
def test_each_password_rule(driver: LetterDriver, password: str, reason: str) -> None:
    enrolling = with_letter(driver)
    facts = enrolling.person.person
    password = password.format(
        number=enrolling.person.identity_number,
        dd=f"{facts.birth_date.day:02d}",
        mm=f"{facts.birth_date.month:02d}",
        yyyy=facts.birth_date.year,
        given=facts.given_name.split()[0].upper(),
        family=facts.family_name.split()[0].lower(),
    )
    enrolling.start()
    response = enrolling.complete(password=password)
    assert response.status == 422
    details = problem(response)
    assert details["type"] == "/problems/weak-password"
    assert reason in [e["message"] for e in details["errors"]]
    assert enrolling.complete().status == 202  # a weak password costs no try


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "Åpen dør i Tromsø!",
        "🔑🌲🌊🏔🦌🌅🐟🌙",
        "korrekt hest batteri stift, og så ".ljust(256, "a"),  # as long as allowed
    ],
)
def test_no_composition_rules(driver: LetterDriver, password: str) -> None:
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(password=password).status == 202


# ---------------------------------------------------------------------- the verification codes
def test_wrong_and_expired_verification_codes(driver: LetterDriver) -> None:
    enrolling = with_letter(driver)
    enrolling.start()
    enrolling.complete()
    right = enrolling.last_code_to("+4791234567")
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    assert enrolling.verify(mobile_code=wrong).status == 401
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["ChallengesTable"],
        Key=to_item({"pk": f"enrolment#{enrolling.enrolment_id}"}),
        UpdateExpression="SET codes_sent_at = :then",
        ExpressionAttributeValues=to_item({":then": iso(datetime.now(UTC) - timedelta(minutes=11))}),
    )
    assert enrolling.verify(mobile_code=right).status == 401
    assert enrolling.verify(mobile_code=right).status == 401  # the third try
    assert enrolling.verify(mobile_code=right).status == 404  # ended


def test_codes_before_the_completion_are_a_conflict_and_cost_no_try(driver: LetterDriver) -> None:
    enrolling = with_letter(driver)
    enrolling.start()
    for _ in range(4):  # more than the tries
        early = enrolling.verify(mobile_code="123456")
        assert (early.status, problem(early)["type"]) == (409, "/problems/conflict")
    assert enrolling.complete().status == 202
    assert enrolling.verify(mobile_code=enrolling.last_code_to("+4791234567")).status == 201


def test_a_right_code_costs_no_try_when_the_activation_cannot_be_written(driver: LetterDriver) -> None:
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete().status == 202
    code = enrolling.last_code_to("+4791234567")
    for _ in range(4):  # more than the tries
        with injected_faults() as faults:
            faults.add("dynamodb", "TransactWriteItems", code="ProvisionedThroughputExceededException", status=400)
            assert enrolling.verify(mobile_code=code).status == 503
    assert enrolling.verify(mobile_code=code).status == 201


def test_resend_sends_a_new_code_30_seconds_apart(driver: LetterDriver) -> None:
    enrolling = with_letter(driver)
    enrolling.start()
    enrolling.complete()
    first = enrolling.last_code_to("+4791234567")
    too_soon = enrolling.resend()
    assert too_soon.status == 429
    assert int(too_soon.header("retry-after") or 0) > 0
    back_date_codes(driver, enrolling.enrolment_id)
    assert enrolling.resend().status == 202
    second = enrolling.last_code_to("+4791234567")
    if second != first:
        assert enrolling.verify(mobile_code=first).status == 401
    assert enrolling.verify(mobile_code=second).status == 201


def test_a_code_a_resend_or_a_completion_made_again_replaced_is_told_so_and_is_no_guess(
    driver: LetterDriver,
) -> None:
    """The first SMS or e-mail late (their order is not kept), a resend asked for, and the first code then
    typed: told to use the last one, with no try spent (three wrong codes end the enrolment). So too a code
    of a completion made again (a contact corrected). A wrong code among them is a guess, as ever."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234571", email="kari.sein@example.no").status == 202
    first = {
        "mobile_code": enrolling.last_code_to("+4791234571"),
        "email_code": enrolling.last_code_to("kari.sein@example.no"),
    }
    back_date_codes(driver, enrolling.enrolment_id)
    assert enrolling.resend().status == 202
    for _ in range(2):  # with the try given back, more than there are
        for given, told in [
            ({"mobile_code": first["mobile_code"]}, replaced_code({Channel.SMS})),
            ({"email_code": first["email_code"]}, replaced_code({Channel.EMAIL})),
            (first, replaced_code({Channel.SMS, Channel.EMAIL})),
        ]:
            refused = enrolling.verify(**given)
            assert (refused.status, json.loads(refused.body)["detail"]) == (401, told)
    assert enrolment_item(driver, enrolling)["verify_tries"] == {"N": "0"}
    # a contact corrected: the codes of the completion before are replaced too (the e-mail's resent code too)
    back_date_codes(driver, enrolling.enrolment_id)
    second_email = enrolling.last_code_to("kari.sein@example.no")
    assert enrolling.complete(mobile="91234572", email="kari.sein@example.no").status == 202
    now = {
        "mobile_code": enrolling.last_code_to("+4791234572"),
        "email_code": enrolling.last_code_to("kari.sein@example.no"),
    }
    assert second_email != now["email_code"]
    mixed = enrolling.verify(mobile_code=now["mobile_code"], email_code=second_email)  # one right, one replaced
    assert (mixed.status, json.loads(mixed.body)["detail"]) == (401, replaced_code({Channel.EMAIL}))
    wrong = f"{(int(now['email_code']) + 1) % 1_000_000:06d}"
    guess = enrolling.verify(mobile_code=first["mobile_code"], email_code=wrong)  # a wrong code with a replaced one
    assert (guess.status, json.loads(guess.body)["detail"]) == (401, "The code is wrong or has expired.")
    assert enrolment_item(driver, enrolling)["verify_tries"] == {"N": "1"}
    assert enrolling.verify(**now).status == 201
    assert "old_code_hashes" not in enrolment_item(driver, enrolling)  # active: gone with the contacts


def test_a_code_of_a_contact_given_up_is_no_replaced_code(driver: LetterDriver) -> None:
    """Completed again without the e-mail: its code from before is not told to be replaced by a newer one
    (none is coming); it is refused as any code for a contact the enrolment does not have (422 naming it,
    no try spent)."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234573", email="kari.uten@example.no").status == 202
    dropped = enrolling.last_code_to("kari.uten@example.no")
    back_date_codes(driver, enrolling.enrolment_id)
    assert enrolling.complete(mobile="91234573").status == 202
    refused = enrolling.verify(email_code=dropped)
    assert (refused.status, [e["field"] for e in json.loads(refused.body)["errors"]]) == (422, ["email_code"])
    assert enrolment_item(driver, enrolling)["verify_tries"] == {"N": "0"}
    assert enrolling.verify(mobile_code=enrolling.last_code_to("+4791234573")).status == 201


def test_an_enrolment_ended_keeps_no_hash_of_its_replaced_codes(driver: LetterDriver) -> None:
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete().status == 202
    back_date_codes(driver, enrolling.enrolment_id)
    assert enrolling.resend().status == 202
    assert len(enrolment_item(driver, enrolling)["old_code_hashes"]["L"]) == 1
    for _ in range(3):
        assert enrolling.verify(mobile_code="000000").status == 401
    ended = enrolment_item(driver, enrolling)
    assert ended["status"] == {"S": "ended"}
    assert "old_code_hashes" not in ended


def test_a_resend_whose_email_fails_keeps_the_sms_it_sent(driver: LetterDriver) -> None:
    """The SMS went out, then the e-mail failed: the SMS just received works. The e-mail's code from
    before is not given back: the codes share the resend's time, and it would work 10 minutes more (one
    expired, again); the next resend sends the e-mail a new code."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234571", email="kari.resend@example.no").status == 202
    first_email = enrolling.last_code_to("kari.resend@example.no")
    sms_before = [m for m in driver.local.outbox.sms() if m["to"] == "+4791234571"]
    codes_sent_at(driver, enrolling.enrolment_id, datetime.now(UTC) - timedelta(minutes=11))  # expired
    with injected_faults() as faults:
        faults.add("sesv2", "SendEmail", code="ServiceUnavailable", status=503, times=3)
        assert enrolling.resend().status == 503
    assert len([m for m in driver.local.outbox.sms() if m["to"] == "+4791234571"]) == len(sms_before) + 1
    assert enrolling.verify(mobile_code=enrolling.last_code_to("+4791234571")).status == 202
    assert enrolling.verify(email_code=first_email).status == 401  # expired, and not brought back
    back_date_codes(driver, enrolling.enrolment_id)
    assert enrolling.resend().status == 202
    assert enrolling.verify(email_code=enrolling.last_code_to("kari.resend@example.no")).status == 201


def test_a_resend_to_a_number_refused_is_told_so_though_its_codes_cannot_be_given_back(driver: LetterDriver) -> None:
    """SNS refuses the number for good (422, to use another), and the give-back of the codes sent before
    fails too (DynamoDB, a moment): the answer is still the refusal's, not the give-back's 503."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234572").status == 202
    back_date_codes(driver, enrolling.enrolment_id)
    refused = "Invalid parameter: PhoneNumber Reason: +4791234572 is not valid to publish to"
    giving_back = lambda params: ":w0" in params.get("ExpressionAttributeValues", {})  # noqa: E731
    with injected_faults() as faults:
        faults.add("sns", "Publish", code="InvalidParameter", status=400, message=refused, here=True)
        faults.add("dynamodb", "UpdateItem", code="ServiceUnavailable", status=503, here=True, where=giving_back)
        answer = enrolling.resend()
        assert [fault[:2] for fault in faults.injected] == [("sns", "Publish"), ("dynamodb", "UpdateItem")]
    assert (answer.status, problem(answer)["type"]) == (422, "/problems/invalid-contact")


def test_a_resend_whose_write_is_retried_after_its_answer_was_lost_sends_its_code(driver: LetterDriver) -> None:
    """The resend's codes written and DynamoDB's answer lost: the SDK's retry is refused (the write, made,
    moved the count on). That is the resend's own write, not another's: its code is sent, and works (not
    429 with codes written that nobody received, the code the person held stopped)."""
    enrolling = with_letter(driver)
    enrolling.start()
    enrolling.complete()
    back_date_codes(driver, enrolling.enrolment_id)
    sent = len([m for m in driver.local.outbox.sms() if m["to"] == "+4791234567"])
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", after="retried", here=True, where=updating("resends = :after"))
        assert enrolling.resend().status == 202
        assert faults.injected == [("dynamodb", "UpdateItem", "retried")]
    assert len([m for m in driver.local.outbox.sms() if m["to"] == "+4791234567"]) == sent + 1
    assert enrolling.verify(mobile_code=enrolling.last_code_to("+4791234567")).status == 201


def test_at_most_three_resends(driver: LetterDriver) -> None:
    enrolling = with_letter(driver)
    enrolling.start()
    enrolling.complete()
    for _ in range(3):
        back_date_codes(driver, enrolling.enrolment_id)
        assert enrolling.resend().status == 202
    back_date_codes(driver, enrolling.enrolment_id)
    spent = enrolling.resend()
    assert (spent.status, spent.header("retry-after")) == (409, None)  # for good: no Retry-After to wait for


def test_a_resend_writes_no_codes_into_a_completion_made_again_meanwhile(driver: LetterDriver) -> None:
    """A resend reads the enrolment, then writes the codes it sends to the contacts it read: when the
    enrolment was completed again meanwhile (another number), it writes nothing (else a code sent to the
    first number would verify the second)."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234567").status == 202
    enrolments = DynamoDbEnrolments(driver.dynamodb, driver.local.stack.refs["ChallengesTable"])
    read = enrolments.get(enrolling.enrolment_id)
    assert read is not None
    assert read.codes_sent_at is not None
    back_date_codes(driver, enrolling.enrolment_id)  # completed again: a resend
    assert enrolling.complete(mobile="92345678").status == 202  # meanwhile
    resent = (read.codes_sent_at, read.codes_sent_at + timedelta(seconds=31))
    assert not enrolments.record_resend(enrolling.enrolment_id, {Channel.SMS: "resent"}, resent, (0, 1))
    again = enrolments.get(enrolling.enrolment_id)
    assert again is not None
    assert again.code_hashes[Channel.SMS] != "resent"
    assert enrolling.verify(mobile_code=enrolling.last_code_to("+4792345678")).status == 201


# ---------------------------------------------------------------------- verifies made at once
# Each test runs one verify through the enrolment service (built as the function builds it) and, between
# its read and its write, another through the route: the interleaving two requests at once can have.
def test_the_two_contacts_verified_at_once_activate_the_account(driver: LetterDriver) -> None:
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234567", email="kari@example.no").status == 202

    def the_email_verified() -> None:
        assert enrolling.verify(email_code=enrolling.last_code_to("kari@example.no")).status == 202

    with before_first_aws_call("dynamodb.UpdateItem", the_email_verified, where=updating(MARK_VERIFIED)):
        service = wiring.enrolment(os.environ)
        result = service.verify(enrolling.enrolment_id, {Channel.SMS: enrolling.last_code_to("+4791234567")})
    assert result == VerificationResult(EnrolmentStatus.ACTIVE, ())
    record = DynamoDbContactRegister(driver.dynamodb, driver.local.stack.refs["ContactRegisterTable"]).find(
        driver.key(enrolling.person.identity_number)
    )
    assert record is not None
    assert record.mobile_verified_at is not None
    assert record.email_verified_at is not None


def test_a_code_replaced_meanwhile_verifies_nothing(driver: LetterDriver) -> None:
    """The enrolment completed again, with another number, between a verify's read and its write: the
    code sent to the first number marks neither number verified."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234567", email="kari@example.no").status == 202

    def another_number() -> None:
        back_date_codes(driver, enrolling.enrolment_id)  # completed again: a resend
        assert enrolling.complete(mobile="92345678", email="kari@example.no").status == 202

    with before_first_aws_call("dynamodb.UpdateItem", another_number, where=updating(MARK_VERIFIED)):
        service = wiring.enrolment(os.environ)
        with pytest.raises(AuthenticationFailed):
            service.verify(enrolling.enrolment_id, {Channel.SMS: enrolling.last_code_to("+4791234567")})
    email_only = enrolling.verify(email_code=enrolling.last_code_to("kari@example.no"))
    assert email_only.status == 202  # the new number is still to verify
    assert json.loads(email_only.body)["remaining"] == ["mobile"]
    assert enrolling.verify(mobile_code=enrolling.last_code_to("+4792345678")).status == 201


def test_a_completion_made_again_meanwhile_is_what_activates(driver: LetterDriver) -> None:
    """Completed again (another number, another password) between the last verify's read and its
    activation: the activation of what was read is not made; the new number's code activates the new one."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234567").status == 202

    def another_number_and_password() -> None:
        back_date_codes(driver, enrolling.enrolment_id)  # completed again: a resend
        assert enrolling.complete(mobile="92345678", password="a newer passphrase here").status == 202

    with before_first_aws_call("dynamodb.TransactWriteItems", another_number_and_password, where=ACTIVATING):
        service = wiring.enrolment(os.environ)
        with pytest.raises(AuthenticationFailed):
            service.verify(enrolling.enrolment_id, {Channel.SMS: enrolling.last_code_to("+4791234567")})
    assert enrolling.verify(mobile_code=enrolling.last_code_to("+4792345678")).status == 201
    person = driver.key(enrolling.person.identity_number)
    record = DynamoDbContactRegister(driver.dynamodb, driver.local.stack.refs["ContactRegisterTable"]).find(person)
    assert record is not None
    assert record.mobile == "+4792345678"
    account = DynamoDbAccounts(driver.dynamodb, driver.local.stack.refs["UsersTable"]).find(person)
    assert account is not None
    assert Argon2PasswordHasher(driver.local.keyer).verify(account.password_hash, "a newer passphrase here")


def test_an_activation_made_meanwhile_is_the_answer(driver: LetterDriver) -> None:
    """Two verifies of the last code at once: the one whose activation comes second answers active too,
    and leaves the enrolment active (not ended, as codes used by someone else would)."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234567").status == 202
    code = enrolling.last_code_to("+4791234567")

    def the_same_code_verified() -> None:
        assert enrolling.verify(mobile_code=code).status == 201

    with before_first_aws_call("dynamodb.TransactWriteItems", the_same_code_verified, where=ACTIVATING):
        service = wiring.enrolment(os.environ)
        assert service.verify(enrolling.enrolment_id, {Channel.SMS: code}) == VerificationResult(
            EnrolmentStatus.ACTIVE, ()
        )
    enrolment = DynamoDbEnrolments(driver.dynamodb, driver.local.stack.refs["ChallengesTable"]).get(
        enrolling.enrolment_id
    )
    assert enrolment is not None
    assert enrolment.status is EnrolmentStatus.ACTIVE


def test_a_verify_retried_once_active_gets_the_same_answer(driver: LetterDriver) -> None:
    """A verify whose answer was lost (the account activated), retried with the same code: 201 again, as
    API.md promises, and nothing changes. Other codes are told that the enrolment is done (409)."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234567").status == 202
    code = enrolling.last_code_to("+4791234567")
    assert enrolling.verify(mobile_code=code).status == 201
    again = enrolling.verify(mobile_code=code)
    assert (again.status, json.loads(again.body)) == (201, {"status": "active", "remaining": []})
    other = enrolling.verify(mobile_code="000000" if code != "000000" else "111111")
    assert other.status == 409
    assert "active" in problem(other)["detail"]
    kinds = [
        e.type.value
        for e in security_events(driver).page(driver.key(enrolling.person.identity_number), None, 50).events
    ]
    assert kinds.count("enrolled") == 1


def test_an_active_enrolment_is_never_ended(driver: LetterDriver) -> None:
    """A wrong code on the last try, judged while a right one activated the enrolment, ends nothing."""
    enrolling = with_letter(driver)
    enrolling.enrol()
    enrolments = DynamoDbEnrolments(driver.dynamodb, driver.local.stack.refs["ChallengesTable"])
    enrolments.end(enrolling.enrolment_id)
    enrolment = enrolments.get(enrolling.enrolment_id)
    assert enrolment is not None
    assert enrolment.status is EnrolmentStatus.ACTIVE


def test_a_letter_blocked_before_the_last_code_ends_the_enrolment(driver: LetterDriver) -> None:
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234567").status == 202
    account = PinLetterAccount(driver.letters, SystemClock(), notice_queue(driver))
    account.block(driver.key(enrolling.person.identity_number))
    refused = enrolling.verify(mobile_code=enrolling.last_code_to("+4791234567"))
    assert refused.status == 409
    assert "PIN codes were used or blocked" in problem(refused)["detail"]
    enrolment = DynamoDbEnrolments(driver.dynamodb, driver.local.stack.refs["ChallengesTable"]).get(
        enrolling.enrolment_id
    )
    assert enrolment is not None
    assert enrolment.status is EnrolmentStatus.ENDED
    users = DynamoDbAccounts(driver.dynamodb, driver.local.stack.refs["UsersTable"])
    assert users.find(driver.key(enrolling.person.identity_number)) is None


def test_new_codes_sent_and_taken_back_meanwhile_do_not_end_the_enrolment(driver: LetterDriver) -> None:
    """A resend wrote new codes between the last verify's read and its activation, then gave them back
    (its send failed): the activation is tried again with the codes as they are, not taken for PIN
    codes used elsewhere."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234567").status == 202
    read = DynamoDbEnrolments(driver.dynamodb, driver.local.stack.refs["ChallengesTable"]).get(enrolling.enrolment_id)
    assert read is not None
    assert read.codes_sent_at is not None
    sent, later = read.codes_sent_at, read.codes_sent_at + timedelta(seconds=31)
    with before_first_aws_call(
        "dynamodb.TransactWriteItems",
        lambda: codes_sent_at(driver, enrolling.enrolment_id, later),
        where=ACTIVATING,
        after=lambda: codes_sent_at(driver, enrolling.enrolment_id, sent),
    ) as rounds:
        service = wiring.enrolment(os.environ)
        result = service.verify(enrolling.enrolment_id, {Channel.SMS: enrolling.last_code_to("+4791234567")})
    assert rounds == ["TransactionCanceledException", "made"]  # not made as read, then made as it was
    assert result == VerificationResult(EnrolmentStatus.ACTIVE, ())


def test_a_write_in_flight_on_the_enrolment_is_waited_out(driver: LetterDriver) -> None:
    """DynamoDB refuses a write to an item another transaction is writing (TransactionConflict): the
    verify reads the enrolment again and writes again, rather than answer 503."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234567", email="kari@example.no").status == 202
    in_flight = ("None", "None", "TransactionConflict", "None", "None")
    with injected_faults() as faults:
        # a fault hits the next such call its thread makes: armed right after the call before the write
        conflict = lambda: faults.add("dynamodb", "UpdateItem", code="TransactionConflictException", status=400)  # noqa: E731
        counted = updating("ADD verify_tries")  # the verify's try, counted: the next UpdateItem is its write
        with before_first_aws_call("dynamodb.UpdateItem", lambda: None, where=counted, after=conflict):
            service = wiring.enrolment(os.environ)
            first = service.verify(enrolling.enrolment_id, {Channel.SMS: enrolling.last_code_to("+4791234567")})
        assert first == VerificationResult(EnrolmentStatus.VERIFYING, (Channel.EMAIL,))
        cancelled = lambda: faults.add(  # noqa: E731
            "dynamodb", "TransactWriteItems", code="TransactionCanceledException", reasons=in_flight
        )
        with before_first_aws_call("dynamodb.BatchGetItem", lambda: None, after=cancelled):  # then the activation
            service = wiring.enrolment(os.environ)
            last = service.verify(enrolling.enrolment_id, {Channel.EMAIL: enrolling.last_code_to("kari@example.no")})
        assert last == VerificationResult(EnrolmentStatus.ACTIVE, ())
        assert [(service, code) for service, _, code in faults.injected] == [
            ("dynamodb", "TransactionConflictException"),
            ("dynamodb", "TransactionCanceledException"),
        ]


def test_an_account_made_meanwhile_is_replaced_as_a_re_enrolment(driver: LetterDriver) -> None:
    """An account came to be between a first enrolment's read (none) and its activation: it is not
    written over blindly, but read again and replaced as a re-enrolment replaces one (its sessions ended)."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234567").status == 202
    person = driver.key(enrolling.person.identity_number)

    def an_account_made() -> None:
        meanwhile = {
            "pk": person,
            "status": "active",
            "password_hash": "another",
            "created_at": iso(datetime.now(UTC)),
            "password_changed_at": iso(datetime.now(UTC)),
            "session_epoch": 4,
            "failed_logins": 0,
        }
        driver.dynamodb.put_item(TableName=driver.local.stack.refs["UsersTable"], Item=to_item(meanwhile))

    result, rounds = verified_with(an_account_made, enrolling, {Channel.SMS: enrolling.last_code_to("+4791234567")})
    assert result == VerificationResult(EnrolmentStatus.ACTIVE, ())
    assert rounds == ["TransactionCanceledException", "made"]  # not made as read, then made as it was
    account = DynamoDbAccounts(driver.dynamodb, driver.local.stack.refs["UsersTable"]).find(person)
    assert account is not None
    assert account.session_epoch == 5


def verified_with(
    meanwhile: Callable[[], None], enrolling: Enrolling, codes: dict[Channel, str]
) -> tuple[VerificationResult, list[str]]:
    """The verify through the enrolment service (built as the function builds it), with `meanwhile` done
    just before its first activation (its transaction); its result, and how each activation's went."""
    with before_first_aws_call("dynamodb.TransactWriteItems", meanwhile, where=ACTIVATING) as rounds:
        service = wiring.enrolment(os.environ)
        result = service.verify(enrolling.enrolment_id, codes)
    return result, rounds


# The enrolment's writes, by what their UpdateExpressions begin with (minid.adapters.enrolments).
RECORD_COMPLETION = "SET #status = :verifying, password_hash"
RECORD_RESEND = "codes_sent_at = :now"
MARK_VERIFIED = "SET verified."
ACTIVATING = transaction_updating("SET #status = :active")  # the activation's transaction


def updating(expression: str) -> Callable[[dict[str, Any]], bool]:
    """An UpdateItem whose UpdateExpression holds `expression`."""
    return lambda params: expression in params.get("UpdateExpression", "")


def back_date_codes(driver: LetterDriver, enrolment_id: str) -> None:
    codes_sent_at(driver, enrolment_id, datetime.now(UTC) - timedelta(seconds=31))


def codes_sent_at(driver: LetterDriver, enrolment_id: str, at: datetime) -> None:
    """The enrolment's codes as if sent `at` (a resend writes that time with its codes)."""
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["ChallengesTable"],
        Key=to_item({"pk": f"enrolment#{enrolment_id}"}),
        UpdateExpression="SET codes_sent_at = :at",
        ExpressionAttributeValues=to_item({":at": iso(at)}),
    )


# ---------------------------------------------------------------------- re-enrolment
def re_enrolling(
    driver: LetterDriver, mobile: str = "91111111", email: str | None = None
) -> tuple[Enrolling, DynamoDbAccounts, PersonKey, UserAccount]:
    """A user (mobile 91111111, or as given) with a new letter, enrolling again: started; and their account
    as it was."""
    enrolling = with_letter(driver)
    enrolling.enrol(mobile=mobile, email=email)
    users = DynamoDbAccounts(driver.dynamodb, driver.local.stack.refs["UsersTable"])
    person = driver.key(enrolling.person.identity_number)
    before = users.find(person)
    assert before is not None
    age_ledger(driver, enrolling.person.identity_number, timedelta(days=2))
    _, enrolling.codes = posted(driver, enrolling.person.identity_number)
    enrolling.start()
    return enrolling, users, person, before


def test_without_a_language_an_enrolment_takes_its_letter_s(driver: LetterDriver) -> None:
    """API.md's completion names no language: the letter's is taken, which is the person's choice when it
    was ordered (their record's, on a re-enrolment), else English for a letter abroad, else bokmål."""
    register = DynamoDbContactRegister(driver.dynamodb, driver.local.stack.refs["ContactRegisterTable"])
    abroad = with_letter(driver, Category.D_NUMBER_ABROAD)
    abroad.start()
    assert abroad.complete(mobile="91234612").status == 202
    (sms,) = [m["message"] for m in driver.local.outbox.sms() if m["to"] == "+4791234612"]
    assert sms.startswith("Your code to become a MinID user is "), sms
    assert abroad.verify(mobile_code=abroad.last_code_to("+4791234612")).status == 201
    record = register.find(driver.key(abroad.person.identity_number))
    assert record is not None
    assert record.language is Language.ENGLISH

    enrolling = with_letter(driver)
    enrolling.enrol(mobile="91234613")
    person = driver.key(enrolling.person.identity_number)
    driver.dynamodb.update_item(  # the person chose nynorsk since
        TableName=driver.local.stack.refs["ContactRegisterTable"],
        Key=to_item({"pk": person}),
        UpdateExpression="SET #language = :nn",
        ExpressionAttributeNames={"#language": "language"},
        ExpressionAttributeValues=to_item({":nn": Language.NYNORSK.value}),
    )
    age_ledger(driver, enrolling.person.identity_number, timedelta(days=2))
    _, enrolling.codes = posted(driver, enrolling.person.identity_number)
    enrolling.start()
    assert enrolling.complete(mobile="91234613").status == 202
    assert enrolling.verify(mobile_code=enrolling.last_code_to("+4791234613")).status == 201
    record = register.find(person)
    assert record is not None
    assert record.language is Language.NYNORSK


def test_re_enrolment_replaces_password_and_contacts_and_tells_the_old_ones(driver: LetterDriver) -> None:
    enrolling, users, person, before = re_enrolling(driver)
    assert enrolling.complete(password="a brand new passphrase", mobile="92222222").status == 202
    assert enrolling.verify(mobile_code=enrolling.last_code_to("+4792222222")).status == 201

    after = users.find(person)
    assert after is not None
    assert after.session_epoch == before.session_epoch + 1  # every session ends
    assert after.created_at == before.created_at
    assert Argon2PasswordHasher(driver.local.keyer).verify(after.password_hash, "a brand new passphrase")
    record = DynamoDbContactRegister(driver.dynamodb, driver.local.stack.refs["ContactRegisterTable"]).find(person)
    assert record is not None
    assert record.mobile == "+4792222222"
    told = wait_for(driver.local.outbox.sms, lambda sms: any("registrert på nytt" in m["message"] for m in sms))
    assert [m["to"] for m in told if "registrert på nytt" in m["message"]] == ["+4791111111"]


def test_an_account_stored_without_a_sessions_epoch_is_re_enrolled(driver: LetterDriver) -> None:
    """An epoch never stored is 0, as every other write of the account reads it: the re-enrolment holds
    on it as read, and its account follows with 1."""
    enrolling, users, person, _ = re_enrolling(driver)
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["UsersTable"],
        Key=to_item({"pk": person}),
        UpdateExpression="REMOVE session_epoch",
    )
    assert enrolling.complete(password="a brand new passphrase", mobile="92222223").status == 202
    assert enrolling.verify(mobile_code=enrolling.last_code_to("+4792222223")).status == 201
    after = users.find(person)
    assert after is not None
    assert after.session_epoch == 1


def test_a_re_enrolment_that_keeps_the_mobile_tells_it_no_replacement(driver: LetterDriver) -> None:
    """The old contacts are told that new ones replace them: a mobile kept is not replaced (it is welcomed,
    as every new contact is), and an e-mail added replaces nothing."""
    enrolling, _, _, _ = re_enrolling(driver)
    sent = len(driver.local.outbox.sms())
    enrolling.finish(mobile="91111111", email="ny@example.no")
    driver.notices_delivered()
    told = [m["message"] for m in driver.local.outbox.sms()[sent:] if m["to"] == "+4791111111"]
    assert any("Du er nå bruker av MinID" in text for text in told), told  # welcomed
    assert not any("registrert på nytt" in text for text in told), told


def test_a_re_enrolment_giving_the_same_mailbox_in_other_capitals_tells_it_no_replacement(
    driver: LetterDriver,
) -> None:
    """The e-mail kept, written with other capitals before the @: the same mailbox (same_mailbox), welcomed
    and not told that a new one replaces it."""
    enrolling, _, _, _ = re_enrolling(driver, mobile="91111112", email="Kari.Samme@example.no")
    driver.notices_delivered()
    sent = len(driver.local.outbox.emails())
    enrolling.finish(mobile="91111112", email="kari.samme@example.no")
    driver.notices_delivered()
    told = [m["subject"] for m in driver.local.outbox.emails()[sent:] if m["to"].lower() == "kari.samme@example.no"]
    assert [subject for subject in told if "Velkommen" in subject] == ["MinID: Velkommen som bruker av MinID"], told
    assert not any("registrert på nytt" in subject for subject in told), told


def test_a_re_enrolment_keeps_a_reservation_and_the_welcome_says_so(driver: LetterDriver) -> None:
    """A person reserved against digital communication keeps the reservation through a re-enrolment; the
    welcome does not tell them that public services use the contact, which for them is not so."""
    enrolling, _, person, _ = re_enrolling(driver)
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["ContactRegisterTable"],
        Key=to_item({"pk": person}),
        UpdateExpression="SET reserved = :yes",
        ExpressionAttributeValues=to_item({":yes": True}),
    )
    sent = len(driver.local.outbox.sms())
    assert enrolling.complete(mobile="91111111").status == 202
    assert enrolling.verify(mobile_code=enrolling.last_code_to("+4791111111")).status == 201
    driver.notices_delivered()
    record = DynamoDbContactRegister(driver.dynamodb, driver.local.stack.refs["ContactRegisterTable"]).find(person)
    assert record is not None
    assert record.reserved
    (welcome,) = [m["message"] for m in driver.local.outbox.sms()[sent:] if "Du er nå bruker av MinID" in m["message"]]
    assert "Du er reservert mot digital kommunikasjon, så bare MinID bruker den" in welcome
    assert "der det offentlige finner den" not in welcome


@contextlib.contextmanager
def register_changed_before_activation(
    driver: LetterDriver, person: PersonKey, update: str, values: dict[str, Any]
) -> Iterator[None]:
    """The person's contact record updated (`update`, `values`) just before the first activation's write
    (in this thread) that puts it: that write then does not hold, and the activation is made again."""
    register = driver.local.stack.refs["ContactRegisterTable"]
    changed: list[bool] = []

    def changed_first(params: dict[str, Any]) -> bool:
        writes_the_register = any(
            item.get("Put", {}).get("TableName") == register for item in params.get("TransactItems", [])
        )
        if writes_the_register and not changed:
            driver.dynamodb.update_item(
                TableName=register,
                Key=to_item({"pk": person}),
                UpdateExpression=update,
                ExpressionAttributeValues=to_item(values),
            )
            changed.append(True)
        return False  # no fault: the hook only changes the record at that moment

    with injected_faults() as faults:
        faults.add("dynamodb", "TransactWriteItems", here=True, where=changed_first)
        yield
    assert changed == [True]


def test_a_reservation_made_while_a_re_enrolment_activates_is_kept(driver: LetterDriver) -> None:
    """The person reserves (in a session of the old account) between the activation's read of the contact
    register and its write: the write does not hold, and the activation is made again on the record as it
    now is. Written whole over it, the reservation was lost."""
    enrolling, _, person, _ = re_enrolling(driver)
    assert enrolling.complete(mobile="91111111").status == 202
    with register_changed_before_activation(driver, person, "SET reserved = :yes", {":yes": True}):
        assert enrolling.verify(mobile_code=enrolling.last_code_to("+4791111111")).status == 201
    record = DynamoDbContactRegister(driver.dynamodb, driver.local.stack.refs["ContactRegisterTable"]).find(person)
    assert record is not None
    assert record.reserved
    assert record.mobile == "+4791111111"


def test_a_re_enrolment_tells_the_old_contacts_as_they_were_when_it_was_written(driver: LetterDriver) -> None:
    """The person verifies a new mobile (in a session of the old account) between the activation's read of
    the contact register and its write: the activation is made again, and the notice that new contacts
    replace the old goes to the mobile they have then, not to the one read by the try that failed (whose
    notice, queued first, waits for an event never written). Its id names no live enrolment: it is the KMS
    encryption context of its sealed recipients, which CloudTrail records."""
    enrolling, _, person, _ = re_enrolling(driver)
    assert enrolling.complete(mobile="92222224").status == 202
    verified = {":mobile": "+4791111119", ":now": iso(datetime.now(UTC))}
    with register_changed_before_activation(
        driver, person, "SET mobile = :mobile, mobile_verified_at = :now", verified
    ):
        assert enrolling.verify(mobile_code=enrolling.last_code_to("+4792222224")).status == 201
    # (the try's notice stays in its queue, waiting for its proof: none is written)
    sms = wait_for(driver.local.outbox.sms, lambda sms: any("registrert på nytt" in m["message"] for m in sms))
    assert [m["to"] for m in sms if "registrert på nytt" in m["message"]] == ["+4791111119"]
    ledger = driver.dynamodb.scan(TableName=driver.local.stack.refs["ChallengesTable"])["Items"]
    (told_by,) = [item["pk"]["S"] for item in ledger if item["pk"]["S"].startswith("notice#re-enrolled:")]
    assert enrolling.enrolment_id not in told_by


def test_a_re_enrolment_follows_a_password_reset_made_meanwhile(driver: LetterDriver) -> None:
    """A reset (every session ended: the epoch raised) between the re-enrolment's read of the account and
    its activation: the activation is made on the account as it now is, ending the sessions once more,
    not written over the reset's epoch with the one it read."""
    enrolling, users, person, before = re_enrolling(driver)
    assert enrolling.complete(mobile="92222222").status == 202

    def a_reset() -> None:  # as a password reset ends every session
        driver.dynamodb.update_item(
            TableName=driver.local.stack.refs["UsersTable"],
            Key=to_item({"pk": person}),
            UpdateExpression="ADD session_epoch :one",
            ExpressionAttributeValues=to_item({":one": 1}),
        )

    result, rounds = verified_with(a_reset, enrolling, {Channel.SMS: enrolling.last_code_to("+4792222222")})
    assert result == VerificationResult(EnrolmentStatus.ACTIVE, ())
    assert rounds == ["TransactionCanceledException", "made"]  # not made as read, then made as it was
    after = users.find(person)
    assert after is not None
    assert after.session_epoch == before.session_epoch + 2  # the reset's, then the re-enrolment's


# ---------------------------------------------------------------------- time running out
def out_of_time_at(operation: str, *, after: bool = False) -> contextlib.ExitStack:
    """The invocation's time runs out just before (or `after`) the service's first `operation` call
    (minid.deadline): every call from then on that is not exempt is refused (OutOfTime, a 503)."""
    late = contextlib.ExitStack()
    run_out = lambda: late.enter_context(deadline.within(LambdaContext("EnrolmentFunction", 512, 0)))  # noqa: E731
    stack = contextlib.ExitStack()
    stack.enter_context(deadline.within(LambdaContext("EnrolmentFunction", 512, 60)))
    stack.callback(late.close)
    before, then = (lambda: None, run_out) if after else (run_out, None)
    stack.enter_context(before_first_aws_call(operation, before, after=then))
    return stack


def test_a_resend_whose_sending_runs_out_of_time_gives_the_codes_held_back(driver: LetterDriver) -> None:
    """The resend writes its new codes, then sends: the SMS refused as time runs out. The codes written are
    taken back whatever the time (else the code the person holds would stop working, for one never sent)."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234567").status == 202
    held = enrolling.last_code_to("+4791234567")
    back_date_codes(driver, enrolling.enrolment_id)
    with out_of_time_at("sns.Publish"):
        service = wiring.enrolment(os.environ)
        with pytest.raises(OutOfTime):
            service.resend(enrolling.enrolment_id, "198.51.100.7")
    assert enrolling.last_code_to("+4791234567") == held  # none sent
    assert enrolling.verify(mobile_code=held).status == 201


def test_a_resend_out_of_time_before_its_codes_are_written_writes_none(driver: LetterDriver) -> None:
    """The resend's own codes are written under the deadline (the time kept after it is for giving codes
    back): refused as time runs out, nothing is written or sent, and the code the person holds still works."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234568").status == 202
    held = enrolling.last_code_to("+4791234568")
    back_date_codes(driver, enrolling.enrolment_id)
    late = contextlib.ExitStack()
    run_out = lambda: late.enter_context(deadline.within(LambdaContext("EnrolmentFunction", 512, 0)))  # noqa: E731
    counted = lambda params: "enrolment-codes" in json.dumps(params.get("Key"))  # noqa: E731  (the person's codes)
    resending = lambda params: "codes_sent_at = :now" in params.get("UpdateExpression", "")  # noqa: E731
    with (
        deadline.within(LambdaContext("EnrolmentFunction", 512, 60)),
        late,
        before_first_aws_call("dynamodb.UpdateItem", lambda: None, where=counted, after=run_out) as outcomes,
        calls_made("dynamodb.UpdateItem", resending) as codes_written,
    ):
        service = wiring.enrolment(os.environ)
        with pytest.raises(OutOfTime):
            service.resend(enrolling.enrolment_id, "198.51.100.7")
    assert outcomes[0] == "made"  # the count, then time ran out
    # the codes' write refused before it was sent (not made, and then taken back): the give-back that follows
    # a write that may have landed finds none
    assert codes_written == ["ConditionalCheckFailedException"]
    assert enrolment_item(driver, enrolling)["resends"] == {"N": "0"}
    assert enrolling.last_code_to("+4791234568") == held  # none sent
    assert enrolling.verify(mobile_code=held).status == 201


def test_a_resend_whose_codes_write_answer_was_lost_gives_the_codes_held_back(driver: LetterDriver) -> None:
    """The resend's codes written, and the answer lost with no retry in time: the codes are given back
    (they will never be sent), and the code the person holds still works."""
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="91234569").status == 202
    held = enrolling.last_code_to("+4791234569")
    back_date_codes(driver, enrolling.enrolment_id)
    resending = lambda params: "list_append" in params.get("UpdateExpression", "")  # noqa: E731  (not the give-back)
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", after="lost", here=True, where=resending)
        assert enrolling.post(f"/v1/enrolments/{enrolling.enrolment_id}/resend").status == 503
        assert [fault[2] for fault in faults.injected] == ["lost"]
    assert enrolment_item(driver, enrolling)["resends"] == {"N": "0"}
    assert enrolling.last_code_to("+4791234569") == held  # none sent
    assert enrolling.verify(mobile_code=held).status == 201


def test_the_last_wrong_try_is_counted_though_the_enrolment_s_end_fails(driver: LetterDriver) -> None:
    """The enrolment's last try judged wrong, and its end then failing (DynamoDB, or the time): the guess
    was counted before it was judged, whatever fails after (the tries claimed already hold the enrolment)."""
    enrolling = with_letter(driver)
    started = enrolling.start()
    wrong = {str(i): f"{(int(enrolling.codes[str(i)]) + 1) % 1_000_000:06d}" for i in started["pin_indices"]}
    for _ in range(MAX_PIN_TRIES - 1):
        assert enrolling.complete(wrong).status == 401
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", where=updating("SET #status = :ended"))
        assert enrolling.complete(wrong).status == 503
        assert faults.injected == [("dynamodb", "UpdateItem", "ServiceUnavailable")]
    assert pin_guesses(driver, enrolling) == MAX_PIN_TRIES
    assert enrolling.complete().status == 404  # its tries used: ended, all the same


def test_a_start_whose_write_is_retried_after_its_answer_was_lost_is_answered(driver: LetterDriver) -> None:
    """The enrolment written and DynamoDB's answer lost: the SDK's retry finds it there (its condition:
    none by that id). That is the start's own write, not another's: answered 201, not 500."""
    enrolling = with_letter(driver)
    with injected_faults() as faults:
        faults.add("dynamodb", "PutItem", after="retried", where=lambda params: "pin_indices" in params.get("Item", {}))
        started = enrolling.start()
        assert faults.injected == [("dynamodb", "PutItem", "retried")]
    assert started["pin_indices"]
    assert enrolling.complete().status == 202


def test_codes_given_as_time_runs_out_are_not_judged_uncounted(driver: LetterDriver) -> None:
    """The letter read, and the time run out before the guess is counted: the codes are not judged (else
    each guess so timed would go uncounted), and the try is given back (nothing was tried)."""
    enrolling = with_letter(driver)
    started = enrolling.start()
    wrong = {str(index): "000000" for index in started["pin_indices"]}
    with out_of_time_at("dynamodb.BatchGetItem", after=True):  # the letter read
        service = wiring.enrolment(os.environ)
        with pytest.raises(OutOfTime):
            service.complete(
                enrolling.enrolment_id,
                client="198.51.100.7",
                pin_codes={int(i): code for i, code in wrong.items()},
                password=PASSWORD,
                mobile="91234567",
                email=None,
            )
    assert pin_guesses(driver, enrolling) == 0
    assert enrolment_item(driver, enrolling)["pin_tries"] == {"N": "0"}
    assert enrolling.complete().status == 202

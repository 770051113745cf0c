"""Faults on every AWS call of every route: each call a request makes fails in turn, with its service's
transient error (DynamoDB throttling, SNS, SES, S3, SQS, Step Functions, KMS), and then the client retries.

The failed request is a 503 problem with Retry-After; the retry succeeds; and what the two left behind is
what one request leaves: nothing lost (the codes sent work, the letter comes, the notice is delivered) and
nothing twice (one letter, one session, one account). The workflow's tasks are faulted in
tests/integration/test_pin_letter_workflow.py and below.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pyotp
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ClientError, ReadTimeoutError

from local.faults import injected_faults
from local.gateway import HttpResponse
from local.population_seed import Category
from minid import deadline, wiring
from minid.adapters.accounts import DynamoDbAccounts
from minid.adapters.contact_changes import DynamoDbContactChanges
from minid.adapters.dynamodb import from_item, to_item
from minid.adapters.enrolments import DynamoDbEnrolments
from minid.adapters.password_resets import DynamoDbPasswordResets
from minid.adapters.rate_limits import DynamoDbRateCounter
from minid.deadline import OutOfTime
from minid.domain.accounts import LockoutPolicy
from minid.domain.letters.model import LetterStatus, RecipientOutcome
from minid.domain.rate_limits import Hit
from tests.integration.letters import LetterDriver, security_events, wait_for
from tests.integration.users import PASSWORD, User, enrolled, with_letter

NEW_PASSWORD = "en helt ny og lang setning"
MOBILES = itertools.count(41000001)  # a mobile of one's own for every attempt: what it was sent is its own
CODE = re.compile(r"\b(?:er|is) \d{6}\.")
SEEN: Counter[tuple[str, str, str, int]] = Counter()  # (scenario, service, operation, status): the report


@dataclass
class Attempt:
    """One request of a scenario, sent as often as the client tries, and what must hold afterwards."""

    send: Callable[[], HttpResponse]
    done: Callable[[HttpResponse], None]
    success: tuple[int, ...]


@dataclass
class Scenario:
    name: str
    prepare: Callable[[LetterDriver], Attempt]
    tolerated: set[tuple[str, str]] = field(default_factory=set)  # calls whose failure the route absorbs

    def __str__(self) -> str:
        return self.name


def body(response: HttpResponse) -> Any:
    return json.loads(response.body) if response.body else None


def told(driver: LetterDriver, mobile: str, text: str) -> list[dict[str, str]]:
    return [m for m in driver.local.outbox.sms() if m["to"] == mobile and text in m["message"]]


def told_once(driver: LetterDriver, mobile: str, text: str) -> None:
    """The notice comes (it may wait for its change's event), and it comes once."""
    wait_for(lambda: told(driver, mobile, text), bool)
    driver.notices_delivered()
    assert len(told(driver, mobile, text)) == 1


def codes_to(driver: LetterDriver, mobile: str) -> list[str]:
    """The one-time codes sent to the mobile ("... er 123456." / "... is 123456.")."""
    return [m["message"] for m in driver.local.outbox.sms() if m["to"] == mobile and CODE.search(m["message"])]


def recorded_once(driver: LetterDriver, user: User, kind: str) -> None:
    events = security_events(driver).page(driver.key(user.identity_number), None, 100).events
    assert [e.type.value for e in events].count(kind) == 1


def fresh_user(driver: LetterDriver) -> User:
    """An enrolled user with a mobile of their own (whose welcome has come and gone)."""
    user = enrolled(driver, mobile=str(next(MOBILES)))
    driver.notices_delivered()
    return user


def login_started(user: User) -> dict[str, Any]:
    started = user.start_login()
    assert started.status == 200, started.body
    return dict(body(started))


# ---------------------------------------------------------------------- the scenarios
def order_a_letter(driver: LetterDriver) -> Attempt:
    person = driver.person(Category.ADULT)
    key = str(uuid.uuid4())

    def done(_: HttpResponse) -> None:
        job = driver.next_print_job()
        assert driver.report(job["letter_id"], "dispatched").status == 204
        assert driver.finished(job["letter_id"])["status"] == "SUCCEEDED"
        # one order (and so one workflow, named by it), however often it was sent: a second would be
        # refused by the quota, and a refused order is not in the person's index
        orders = [driver.letters.get(run["name"]) for run in driver.executions()]
        mine = [order for order in orders if order is not None and order.person == driver.key(person.identity_number)]
        assert [order.outcome for order in mine] == [RecipientOutcome.ACCEPTED]

    return Attempt(lambda: driver.order(person.identity_number, idempotency_key=key), done, (202,))


def start_an_enrolment(driver: LetterDriver) -> Attempt:
    enrolling = with_letter(driver)

    def done(response: HttpResponse) -> None:
        enrolling.enrolment_id, enrolling.indices = body(response)["enrolment_id"], body(response)["pin_indices"]
        assert enrolling.complete(mobile="91112222").status == 202

    return Attempt(
        lambda: driver.post("/v1/enrolments", {"identity_number": enrolling.person.identity_number}), done, (201,)
    )


def complete_an_enrolment(driver: LetterDriver) -> Attempt:
    enrolling = with_letter(driver)
    enrolling.start()

    def done(_: HttpResponse) -> None:
        assert enrolling.verify(mobile_code=enrolling.last_code_to("+4791112223")).status == 201

    return Attempt(lambda: enrolling.complete(mobile="91112223"), done, (202,))


def verify_an_enrolment(driver: LetterDriver) -> Attempt:
    enrolling = with_letter(driver)
    enrolling.start()
    mobile = str(next(MOBILES))
    assert enrolling.complete(mobile=mobile).status == 202
    code = enrolling.last_code_to(f"+47{mobile}")

    def done(_: HttpResponse) -> None:
        assert User(driver, enrolling, f"+47{mobile}").login()
        told_once(driver, f"+47{mobile}", "bruker av MinID")
        recorded_once(driver, User(driver, enrolling, None), "enrolled")

    return Attempt(lambda: enrolling.verify(mobile_code=code), done, (201,))


def start_a_login(driver: LetterDriver) -> Attempt:
    user = enrolled(driver, mobile="91112225")

    def done(response: HttpResponse) -> None:
        assert user.verify(body(response)["login_id"], user.last_sms_code()).status == 200

    return Attempt(user.start_login, done, (200,))


def verify_a_login(driver: LetterDriver) -> Attempt:
    user = fresh_user(driver)
    login = login_started(user)
    code = user.last_sms_code()

    def done(response: HttpResponse) -> None:
        token = body(response)["access_token"]
        assert user.call("GET", "/v1/me", token=token).status == 200
        sessions = driver.dynamodb.scan(TableName=driver.local.stack.refs["SessionsTable"])["Items"]
        assert sum(item.get("person", {}).get("S") == driver.key(user.identity_number) for item in sessions) == 1
        recorded_once(driver, user, "login-succeeded")

    return Attempt(lambda: user.verify(login["login_id"], code), done, (200,))


def verify_a_login_one_failure_short_of_the_lock(driver: LetterDriver) -> Attempt:
    """The verify counts its try as a failure until the code is judged right: a fault after that must
    give the count back, or it stays at the threshold with no lock, and every later login is refused."""
    user = fresh_user(driver)
    for _ in range(2):
        assert user.start_login(password="ikke passordet mitt i det hele tatt").status == 401
    login = login_started(user)
    code = user.last_sms_code()

    def done(response: HttpResponse) -> None:
        assert user.call("GET", "/v1/me", token=body(response)["access_token"]).status == 200
        assert user.login()  # and the next login too: nothing was left counted

    return Attempt(lambda: user.verify(login["login_id"], code), done, (200,))


def resend_a_login_code(driver: LetterDriver) -> Attempt:
    user = enrolled(driver, mobile="91112227")
    login = login_started(user)
    driver.dynamodb.update_item(**_sent_long_ago(driver, f"login#{login['login_id']}"))

    def done(_: HttpResponse) -> None:
        assert user.verify(login["login_id"], user.last_sms_code()).status == 200

    return Attempt(lambda: user.call("POST", f"/v1/login/{login['login_id']}/resend"), done, (202,))


def start_a_password_reset(driver: LetterDriver) -> Attempt:
    user = fresh_user(driver)
    codes_before = len(codes_to(driver, user.mobile or ""))

    def done(response: HttpResponse) -> None:
        driver.reset_codes_sent()  # by the notifier, from the queue
        assert len(codes_to(driver, user.mobile or "")) == codes_before + 1  # one code, for the reset made
        reset = body(response)
        completion = {
            "pin_code": user.codes[str(reset["pin_index"])],
            "code": user.last_sms_code(),
            "new_password": NEW_PASSWORD,
        }
        assert user.call("POST", f"/v1/password-resets/{reset['reset_id']}/complete", completion).status == 204

    return Attempt(
        lambda: user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}), done, (201,)
    )


def complete_a_password_reset(driver: LetterDriver) -> Attempt:
    user = fresh_user(driver)
    reset = body(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}))
    completion = {
        "pin_code": user.codes[str(reset["pin_index"])],
        "code": user.last_sms_code(),
        "new_password": NEW_PASSWORD,
    }

    def done(_: HttpResponse) -> None:
        user.password = NEW_PASSWORD
        assert user.login()

    return Attempt(
        lambda: user.call("POST", f"/v1/password-resets/{reset['reset_id']}/complete", completion), done, (204,)
    )


def change_the_password(driver: LetterDriver) -> Attempt:
    user = fresh_user(driver)
    token = user.login()
    change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}

    def done(_: HttpResponse) -> None:
        told_once(driver, user.mobile or "", "Passordet ditt er endret")
        recorded_once(driver, user, "password-changed")
        user.password = NEW_PASSWORD
        assert user.login()

    # a retry after a change that was made: the current password is the new one, and the token ended
    return Attempt(lambda: user.call("PUT", "/v1/me/password", change, token=token), done, (204, 401))


def change_the_mobile(driver: LetterDriver) -> Attempt:
    user = fresh_user(driver)
    token = user.login()
    new_mobile = str(next(MOBILES))

    def done(_: HttpResponse) -> None:
        told_once(driver, user.mobile or "", "blir endret")  # the old number, told once: not by a failed try
        recorded_once(driver, user, "contact-change-requested")
        code = user.enrolling.last_code_to(f"+47{new_mobile}")
        verified = user.call("POST", "/v1/me/contact/verify", {"channel": "mobile", "code": code}, token=token)
        assert body(verified)["mobile"] == f"+47{new_mobile}"

    return Attempt(lambda: user.call("PUT", "/v1/me/contact", {"mobile": new_mobile}, token=token), done, (202,))


def verify_the_new_mobile(driver: LetterDriver) -> Attempt:
    user = enrolled(driver, mobile="91112233")
    token = user.login()
    assert user.call("PUT", "/v1/me/contact", {"mobile": "91112234"}, token=token).status == 202
    code = user.enrolling.last_code_to("+4791112234")

    def done(_: HttpResponse) -> None:
        assert body(user.call("GET", "/v1/me/contact", token=token))["mobile"] == "+4791112234"

    # a retry after a verification that was made: nothing waits for a code any more
    return Attempt(
        lambda: user.call("POST", "/v1/me/contact/verify", {"channel": "mobile", "code": code}, token=token),
        done,
        (200, 409),
    )


def add_an_authenticator(driver: LetterDriver) -> Attempt:
    user = fresh_user(driver)
    token = user.login()

    def done(response: HttpResponse) -> None:
        code = pyotp.TOTP(body(response)["secret"]).now()
        assert user.call("POST", "/v1/me/totp/verify", {"code": code}, token=token).status == 204
        told_once(driver, user.mobile or "", "autentiseringsapp")
        recorded_once(driver, user, "totp-added")

    return Attempt(lambda: user.call("POST", "/v1/me/totp", token=token), done, (201,))


def block_the_letter(driver: LetterDriver) -> Attempt:
    user = enrolled(driver, mobile="91112236")
    token = user.login()

    def done(_: HttpResponse) -> None:
        statuses = [letter.status for letter in driver.letters_of(user.identity_number)]
        assert statuses == [LetterStatus.BLOCKED]

    return Attempt(lambda: user.call("POST", "/v1/me/pin-letters/block", token=token), done, (200,))


def log_out(driver: LetterDriver) -> Attempt:
    user = enrolled(driver, mobile="91112237")
    token = user.login()

    def done(_: HttpResponse) -> None:
        assert user.call("GET", "/v1/me", token=token).status == 401

    return Attempt(lambda: user.call("POST", "/v1/logout", token=token), done, (204, 401))


def report_a_letter_posted(driver: LetterDriver) -> Attempt:
    person = driver.person(Category.ADULT)
    assert driver.order(person.identity_number).status == 202
    job = driver.next_print_job()

    def done(_: HttpResponse) -> None:
        assert driver.finished(job["letter_id"])["status"] == "SUCCEEDED"
        letter = driver.letters.get(job["letter_id"])
        assert letter is not None
        assert letter.status is LetterStatus.DISPATCHED

    # a retry after the report was taken: the workflow has moved on
    return Attempt(lambda: driver.report(job["letter_id"], "dispatched"), done, (204, 409))


def _sent_long_ago(driver: LetterDriver, pk: str) -> dict[str, Any]:
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    from minid.adapters.dynamodb import iso, to_item  # noqa: PLC0415

    return {
        "TableName": driver.local.stack.refs["ChallengesTable"],
        "Key": to_item({"pk": pk}),
        "UpdateExpression": "SET codes_sent_at = :then",
        "ExpressionAttributeValues": to_item({":then": iso(datetime.now(UTC) - timedelta(seconds=31))}),
    }


SCENARIOS = [
    Scenario("order a letter", order_a_letter),
    Scenario("start an enrolment", start_an_enrolment),
    Scenario("complete an enrolment", complete_an_enrolment),
    Scenario("verify an enrolment", verify_an_enrolment),
    Scenario("start a login", start_a_login),
    Scenario("verify a login", verify_a_login),
    Scenario("verify a login one failure short of the lock", verify_a_login_one_failure_short_of_the_lock),
    Scenario("resend a login code", resend_a_login_code),
    Scenario("start a password reset", start_a_password_reset),
    Scenario("complete a password reset", complete_a_password_reset),
    Scenario("change the password", change_the_password),
    Scenario("change the mobile", change_the_mobile),
    Scenario("verify the new mobile", verify_the_new_mobile),
    Scenario("add an authenticator", add_an_authenticator),
    Scenario("block the letter", block_the_letter),
    Scenario("log out", log_out),
    Scenario("report a letter posted", report_a_letter_posted),
]


def calls_of(attempt: Attempt) -> list[tuple[str, str]]:
    """The AWS calls the request makes, with nothing failing."""
    with injected_faults() as faults:
        faults.watch()
        response = attempt.send()
    assert response.status in attempt.success, response.body
    attempt.done(response)
    return faults.calls


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_a_failing_call_is_a_503_and_the_retry_leaves_what_one_request_leaves(
    driver: LetterDriver, scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    calls_of(scenario.prepare(driver))  # cold starts (the pepper, clients) happen here, not below
    calls = calls_of(scenario.prepare(driver))
    assert calls
    for index, (service, operation) in enumerate(calls):
        attempt = scenario.prepare(driver)
        with injected_faults() as faults:
            faults.watch(fail_at=index)
            failed = attempt.send()
        assert faults.injected, f"call {index} ({service} {operation}) was not made this time"
        SEEN[(scenario.name, service, operation, failed.status)] += 1
        if failed.status in attempt.success:  # the route absorbed the failure: only where it says so
            assert (service, operation) in scenario.tolerated, (service, operation, failed.status)
        else:
            assert failed.status == 503, (service, operation, failed.status, failed.body[:300])
            assert failed.header("content-type") == "application/problem+json"
            assert int(failed.header("retry-after") or 0) > 0
        retried = attempt.send()
        assert retried.status in attempt.success, (service, operation, retried.status, retried.body[:300])
        attempt.done(retried)
    with capsys.disabled():
        print(f"\n  {scenario.name}: {len(calls)} calls, each failed once: " + ", ".join(f"{s}.{o}" for s, o in calls))


# ---------------------------------------------------------------------- a give-back sent again
@dataclass
class Counted:
    """A count kept on an item of the challenges table, and how one is counted and given back."""

    pk: str
    attribute: str
    claim: Callable[[], bool]  # counted (False: refused)
    give_back: Callable[[], None]
    table: str = "ChallengesTable"


def _a_reset_try(driver: LetterDriver) -> Counted:
    user = enrolled(driver)
    reset_id = body(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}))["reset_id"]
    resets = DynamoDbPasswordResets(driver.dynamodb, driver.local.stack.refs["ChallengesTable"])
    claim = lambda: resets.claim_try(reset_id, 3, datetime.now(UTC)) is not None  # noqa: E731
    return Counted(f"reset#{reset_id}", "tries", claim, lambda: resets.refund_try(reset_id))


def _an_enrolment_pin_try(driver: LetterDriver) -> Counted:
    enrolling = with_letter(driver)
    enrolling.start()
    enrolment_id = enrolling.enrolment_id
    enrolments = DynamoDbEnrolments(driver.dynamodb, driver.local.stack.refs["ChallengesTable"])
    claim = lambda: enrolments.claim_pin_try(enrolment_id, 5, datetime.now(UTC)) is not None  # noqa: E731
    return Counted(f"enrolment#{enrolment_id}", "pin_tries", claim, lambda: enrolments.refund_pin_try(enrolment_id))


def _a_contact_change_try(driver: LetterDriver) -> Counted:
    user = enrolled(driver)
    assert user.call("PUT", "/v1/me/contact", {"mobile": "987 65 432"}, user.login()).status == 202
    refs = driver.local.stack.refs
    tables = {
        "contacts_table": refs["ContactRegisterTable"],
        "users_table": refs["UsersTable"],
        "events_table": refs["SecurityEventsTable"],
    }
    changes = DynamoDbContactChanges(driver.dynamodb, refs["ChallengesTable"], **tables)
    person = driver.key(user.identity_number)
    change = changes.claim_try(person, 3, datetime.now(UTC))
    assert change is not None
    claim = lambda: changes.claim_try(person, 3, datetime.now(UTC)) is not None  # noqa: E731
    changes.refund_try_of(change)  # (the first claim only to know the change by)
    return Counted(f"contact-change#{person}", "tries", claim, lambda: changes.refund_try_of(change))


def _an_attempt_past_the_password(driver: LetterDriver) -> Counted:
    user = enrolled(driver)
    refs = driver.local.stack.refs
    accounts = DynamoDbAccounts(
        driver.dynamodb, refs["UsersTable"], refs["SecurityEventsTable"], refs["ChallengesTable"]
    )
    person = driver.key(user.identity_number)
    claim = lambda: accounts.reserve_attempt(person, LockoutPolicy(), datetime.now(UTC)).counted  # noqa: E731
    run = (accounts.find(person) or pytest.fail("no account")).failure_run
    return Counted(person, "failed_logins", claim, lambda: accounts.release_attempt(person, run), "UsersTable")


def _a_code_sent_by_a_client(driver: LetterDriver) -> Counted:
    counter = DynamoDbRateCounter(driver.dynamodb, driver.local.stack.refs["ChallengesTable"])
    hit = Hit(counter=f"codes-sent#{uuid.uuid4().hex}", max_hits=60, window_ends=datetime.now(UTC) + timedelta(hours=1))
    return Counted(f"rate#{hit.counter}", "hits", lambda: counter.hit(hit), lambda: counter.give_back(hit))


GIVE_BACKS = {
    "a password reset's try": _a_reset_try,
    "an enrolment's try of PIN codes": _an_enrolment_pin_try,
    "a contact change's try": _a_contact_change_try,
    "a login's count of failures": _an_attempt_past_the_password,
    "a client's code sent": _a_code_sent_by_a_client,
}


def _count(driver: LetterDriver, counted: Counted) -> int:
    item = driver.dynamodb.get_item(TableName=driver.local.stack.refs[counted.table], Key=to_item({"pk": counted.pk}))
    return int(from_item(item["Item"]).get(counted.attribute, 0))


@pytest.mark.parametrize("kind", GIVE_BACKS.values(), ids=GIVE_BACKS.keys())
def test_a_count_the_sdk_sends_again_after_its_answer_was_lost_counts_one(
    driver: LetterDriver, kind: Callable[[LetterDriver], Counted]
) -> None:
    """A try claimed (an attempt past the password, a client's code), its answer lost, and the SDK's retry of it:
    counted once, and taken as counted (not a try refused, nor a failure more towards the lock)."""
    counted = kind(driver)
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", after="retried", where=lambda p: "counted_by" in p["UpdateExpression"])
        assert counted.claim()
        assert faults.injected == [("dynamodb", "UpdateItem", "retried")]
    assert _count(driver, counted) == 1
    assert counted.claim()  # the next, of its own: counted
    assert _count(driver, counted) == 2


COUNTING_FAILURES = lambda params: "ADD failed_logins :one" in params["UpdateExpression"]  # noqa: E731


@pytest.mark.parametrize("run", [True, False], ids=["its run", "an account from before runs"])
def test_a_login_s_count_made_and_its_every_answer_lost_is_given_back(driver: LetterDriver, run: bool) -> None:
    """An attempt's count made, its answer lost at every try of the SDK: the attempt fails unjudged, and the
    count is given back (no Reservation holds it to give back), not kept towards a lock. One counted
    before it, of its own, stays."""
    counted = _an_attempt_past_the_password(driver)
    if not run:
        driver.dynamodb.update_item(
            TableName=driver.local.stack.refs["UsersTable"],
            Key=to_item({"pk": counted.pk}),
            UpdateExpression="REMOVE failure_run",
        )
    assert counted.claim()
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", after="lost", where=COUNTING_FAILURES)
        with pytest.raises(ReadTimeoutError) as raised:
            counted.claim()
        assert faults.injected == [("dynamodb", "UpdateItem", "lost")]
    assert _count(driver, counted) == 1
    assert not getattr(raised.value, "__notes__", [])
    assert counted.claim()  # the next, of its own: counted
    assert _count(driver, counted) == 2


def test_a_login_s_count_that_failed_unmade_gives_back_none_of_another_s(driver: LetterDriver) -> None:
    """The count refused before it was made (a throttle): the account does not carry its mark, and the
    failure counted before it, another attempt's, is not taken."""
    counted = _an_attempt_past_the_password(driver)
    assert counted.claim()
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", code="ProvisionedThroughputExceededException", where=COUNTING_FAILURES)
        with pytest.raises(ClientError):
            counted.claim()
    assert _count(driver, counted) == 1


def test_a_login_s_count_lost_is_not_given_back_from_a_run_of_failures_begun_since(driver: LetterDriver) -> None:
    """The count made and its answer lost; before its give-back, the run of failures it was counted in
    ended (a login completed, a lock) and a failure of the new run was counted by a password's judgement,
    which leaves the mark as it was: that failure is not the lost count's, and stays."""
    counted = _an_attempt_past_the_password(driver)
    users = driver.local.stack.refs["UsersTable"]
    ended: list[bool] = []

    def meanwhile(params: dict[str, Any]) -> bool:
        if "count_returned" in params["UpdateExpression"] and not ended:
            ended.append(True)
            driver.dynamodb.update_item(
                TableName=users,
                Key=to_item({"pk": counted.pk}),
                UpdateExpression="SET failure_run = :run, failed_logins = :one",
                ExpressionAttributeValues=to_item({":run": uuid.uuid4().hex, ":one": 1}),
            )
        return False

    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", after="lost", where=COUNTING_FAILURES)
        faults.add("dynamodb", "UpdateItem", where=meanwhile)  # never fails: a change made just before the give-back
        with pytest.raises(ReadTimeoutError):
            counted.claim()
    assert ended
    assert _count(driver, counted) == 1


def test_a_login_s_count_lost_whose_give_back_the_sdk_sends_again_gives_back_one(driver: LetterDriver) -> None:
    """The lost count's give-back made, its own answer lost and sent again (a release's give-back of
    another attempt may have moved the releases' mark meanwhile): one given back, by its own mark."""
    counted = _an_attempt_past_the_password(driver)
    assert counted.claim()
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", after="lost", where=COUNTING_FAILURES)
        faults.add("dynamodb", "UpdateItem", after="retried", where=lambda p: "count_returned" in p["UpdateExpression"])
        with pytest.raises(ReadTimeoutError):
            counted.claim()
        assert [what for _, _, what in faults.injected] == ["lost", "retried"]
    assert _count(driver, counted) == 1


def test_a_login_s_count_lost_is_given_back_in_one_attempt(driver: LetterDriver) -> None:
    """The lost count's give-back failing too (the same brownout): one attempt, not the SDK's four, so that
    the login's try, given back after it, still finds its time before the invocation's end."""
    counted = _an_attempt_past_the_password(driver)
    client = wiring.client("dynamodb")  # the functions' client: the SDK's retries, the deadline's hold
    refs = driver.local.stack.refs
    accounts = DynamoDbAccounts(client, refs["UsersTable"], refs["SecurityEventsTable"], refs["ChallengesTable"])
    attempts: list[int] = []

    def unavailable(request: Any, **_: Any) -> AWSResponse | None:
        if b"count_returned" not in request.body:
            return None
        attempts.append(500)
        body = b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"x"}'
        return AWSResponse(request.url, 500, HTTPHeaders(), _Raw(body))

    client.meta.events.register("before-send.dynamodb.UpdateItem", unavailable)
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", after="lost", where=COUNTING_FAILURES)
        with pytest.raises(ReadTimeoutError) as raised:
            accounts.reserve_attempt(counted.pk, LockoutPolicy(), datetime.now(UTC))  # type: ignore[arg-type]
    assert attempts == [500]
    assert raised.value.__notes__ == ["The count, if made, was not given back: InternalServerError"]


def test_a_login_s_count_refused_before_its_first_attempt_gives_nothing_back(driver: LetterDriver) -> None:
    """The count refused by the deadline before any attempt of it was sent (unsent): nothing to give back,
    and no give-back is sent, which would take the time the login's try, given back next, needs."""
    counted = _an_attempt_past_the_password(driver)
    client = wiring.client("dynamodb")
    refs = driver.local.stack.refs
    accounts = DynamoDbAccounts(client, refs["UsersTable"], refs["SecurityEventsTable"], refs["ChallengesTable"])
    built: list[str] = []
    client.meta.events.register(
        "before-parameter-build.dynamodb.UpdateItem", lambda params, **_: built.append(params["UpdateExpression"])
    )
    with deadline.within(_NoTimeLeft()), pytest.raises(OutOfTime) as refused:
        accounts.reserve_attempt(counted.pk, LockoutPolicy(), datetime.now(UTC))  # type: ignore[arg-type]
    assert refused.value.unsent
    assert len(built) == 1  # the count's, refused
    assert _count(driver, counted) == 0


class _NoTimeLeft:
    def get_remaining_time_in_millis(self) -> int:
        return 0


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def test_a_login_s_count_lost_whose_give_back_fails_too_says_so(driver: LetterDriver) -> None:
    """The give-back of the lost count failing as well: the count's own error is raised, with a note of
    the give-back not made (which the API logs as left undone)."""
    counted = _an_attempt_past_the_password(driver)
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", after="lost", where=COUNTING_FAILURES)
        faults.add("dynamodb", "UpdateItem", where=lambda params: "count_returned" in params["UpdateExpression"])
        with pytest.raises(ReadTimeoutError) as raised:
            counted.claim()
        assert [what for _, _, what in faults.injected] == ["lost", "ServiceUnavailable"]
    assert raised.value.__notes__ == ["The count, if made, was not given back: ClientError"]
    assert _count(driver, counted) == 1


def test_a_client_s_hit_whose_retry_meets_a_transaction_counts_one(driver: LetterDriver) -> None:
    """The hit made, its answer lost; the SDK's retry refused as a login's transaction writes the counter,
    and the hit made again past it: counted once (its mark the same each time it is made)."""
    counted = _a_code_sent_by_a_client(driver)
    marked = lambda p: "counted_by" in p["UpdateExpression"]  # noqa: E731
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", after="retried", where=marked)
        faults.add("dynamodb", "UpdateItem", code="TransactionConflictException", status=400, where=marked)
        assert counted.claim()
        assert [what for _, _, what in faults.injected] == ["retried", "TransactionConflictException"]
    assert _count(driver, counted) == 1


@pytest.mark.parametrize("kind", GIVE_BACKS.values(), ids=GIVE_BACKS.keys())
def test_a_give_back_the_sdk_sends_again_after_its_answer_was_lost_gives_back_one(
    driver: LetterDriver, kind: Callable[[LetterDriver], Counted]
) -> None:
    """The give-back was made, its answer lost (a 500, a read timeout), and the SDK sent it again: one is
    given back, not two (a guess of the codes more, or a code sent past the limit). Login attempts give
    back as password resets do (minid.adapters.challenges)."""
    counted = kind(driver)
    count = partial(_count, driver, counted)
    assert counted.claim()  # a guess judged wrong, kept
    assert counted.claim()  # and one whose judgement failed, to give back
    assert count() == 2
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", after="retried", where=lambda p: "given_back" in p["UpdateExpression"])
        counted.give_back()
        assert faults.injected == [("dynamodb", "UpdateItem", "retried")]
    assert count() == 1
    counted.give_back()  # another give-back, of its own: made
    assert count() == 0

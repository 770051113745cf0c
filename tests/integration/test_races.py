"""Races: many requests at once against every counter that guards guessing or sending, through the
real handlers, released together by a barrier. No counter goes past its limit, however they interleave.

(Two concurrent verifies of one right code issue one session: tests/integration/test_login.py, with
the concurrent wrong login codes and wrong enrolment PIN codes.)
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from local.gateway import HttpResponse
from local.population_seed import Category
from minid.adapters.accounts import DynamoDbAccounts
from minid.adapters.dynamodb import iso, to_item
from minid.domain.accounts import LockoutPolicy
from minid.domain.letters.model import RecipientOutcome
from tests.integration.letters import LetterDriver, in_one_window, security_events, wait_for
from tests.integration.users import User, enrolled, with_letter

AT_ONCE = 12
T = TypeVar("T")


def at_once(count: int, call: Callable[[int], T]) -> list[T]:
    """`call(i)` on `count` threads, released together: every result, or the first error a thread raised."""
    barrier = threading.Barrier(count)
    results: list[T] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            result = call(i)
        except BaseException as error:  # raised below, in the test's own thread
            with lock:
                errors.append(error)
            return
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    assert len(results) == count
    return results


def statuses(responses: list[HttpResponse]) -> Counter[int]:
    return Counter(r.status for r in responses)


def challenge(driver: LetterDriver, pk: str) -> dict[str, Any]:
    item: dict[str, Any] = driver.dynamodb.get_item(
        TableName=driver.local.stack.refs["ChallengesTable"], Key=to_item({"pk": pk})
    )["Item"]
    return item


def back_date(driver: LetterDriver, pk: str, attribute: str) -> None:
    """As if the last code went out 31 seconds ago: a resend is due."""
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["ChallengesTable"],
        Key=to_item({"pk": pk}),
        UpdateExpression="SET #sent = :then",
        ExpressionAttributeNames={"#sent": attribute},
        ExpressionAttributeValues=to_item({":then": iso(datetime.now(UTC) - timedelta(seconds=31))}),
    )


def report(capsys: pytest.CaptureFixture[str], what: str, tried: int, counted: int, limit: int) -> None:
    with capsys.disabled():
        print(f"\n  {what}: {tried} at once, {counted} counted (limit {limit})")


def test_a_count_given_back_after_its_run_of_failures_ended_takes_no_failure_counted_since(
    driver: LetterDriver,
) -> None:
    """A right code sent twice at once: one request completes the login (the count back to zero), the
    other finds it closed and gives its count back. Had a wrong password been counted in between, a plain
    "minus one" would take that failure away; the give-back takes from its own run of failures only."""
    user = enrolled(driver)
    accounts = DynamoDbAccounts(
        driver.dynamodb,
        driver.local.stack.refs["UsersTable"],
        driver.local.stack.refs["SecurityEventsTable"],
        driver.local.stack.refs["ChallengesTable"],
    )
    person, policy, now = driver.key(user.identity_number), LockoutPolicy(), datetime.now(UTC)
    second = accounts.reserve_attempt(person, policy, now)  # the second request's count
    assert second.counted
    assert second.account is not None
    user.login()  # the first request's login completed: the count back to zero, a new run
    wrong = user.call("POST", "/v1/login", {"identity_number": user.identity_number, "password": "not it at all"})
    assert wrong.status == 401
    failures = accounts.find(person)
    assert failures is not None
    assert failures.failed_logins == 1
    accounts.release_attempt(person, second.account.failure_run)  # the second request gives its count back
    after = accounts.find(person)
    assert after is not None
    assert after.failed_logins == 1
    accounts.release_attempt(person, after.failure_run)  # the control: a give-back within its own run
    assert (accounts.find(person) or after).failed_logins == 0


def test_every_write_that_sets_the_count_back_to_zero_starts_a_new_run_of_failures(driver: LetterDriver) -> None:
    """The enrolment, a login completed (above), a lock (by the password step's judgement, and by the
    reservation's path), a new password, a password reset: a count reserved before any of them is not
    given back after it."""
    user = enrolled(driver, mobile="91234521")
    accounts = DynamoDbAccounts(
        driver.dynamodb,
        driver.local.stack.refs["UsersTable"],
        driver.local.stack.refs["SecurityEventsTable"],
        driver.local.stack.refs["ChallengesTable"],
    )
    person, policy = driver.key(user.identity_number), LockoutPolicy()
    runs: list[str | None] = []

    def run() -> str | None:
        account = accounts.find(person)
        assert account is not None
        runs.append(account.failure_run)
        return account.failure_run

    assert run() is not None  # the enrolment's
    for _ in range(policy.threshold):  # wrong passwords to the lock, judged by the password step
        user.call("POST", "/v1/login", {"identity_number": user.identity_number, "password": "not it at all"})
    locked = accounts.find(person)
    assert locked is not None
    assert locked.locked_until is not None
    run()
    later = datetime.now(UTC) + policy.duration + timedelta(seconds=1)
    for _ in range(policy.threshold):  # counted by reservations, then locked by their path
        assert accounts.reserve_attempt(person, policy, later).counted
    assert accounts.lock(person, policy, later, events=())
    run()
    account = accounts.find(person)
    assert account is not None
    assert accounts.set_password(person, account.password_hash, later, (), replacing=account)
    run()
    reset = json.loads(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}).body)
    driver.notices_delivered(queue_name="CodeQueue")  # its code sent
    completion = {"pin_code": user.codes[str(reset["pin_index"])], "code": user.last_sms_code()}
    completed = user.call(
        "POST", f"/v1/password-resets/{reset['reset_id']}/complete", completion | {"new_password": "ny frase i dag"}
    )
    assert completed.status == 204
    run()
    assert len(set(runs)) == len(runs) == 5


def test_wrong_passwords_at_once_lock_once_and_count_no_further(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    user = enrolled(driver)
    answers = at_once(AT_ONCE, lambda _: user.start_login(password="ikke passordet mitt i det hele tatt"))
    assert statuses(answers) == {401: AT_ONCE}
    account = DynamoDbAccounts(driver.dynamodb, driver.local.stack.refs["UsersTable"]).find(
        driver.key(user.identity_number)
    )
    assert account is not None
    assert account.locked_until is not None
    assert account.failed_logins <= 3
    events = security_events(driver).page(driver.key(user.identity_number), None, 100).events
    kinds = Counter(e.type.value for e in events)
    assert kinds["account-locked"] == 1
    reasons = Counter(e.detail.get("reason") for e in events if e.type.value == "login-failed")
    # a try at the locked account told once an hour (twice, should the burst straddle the hour's turn)
    assert reasons["password"] == 3
    assert 1 <= reasons["locked"] <= 2
    assert set(reasons) == {"password", "locked"}
    judged = sum(e.type.value == "login-failed" and e.detail.get("reason") == "password" for e in events)
    assert judged == 3  # the password was checked three times; the other tries found the account locked
    report(capsys, "wrong passwords", AT_ONCE, judged, 3)


def test_one_failure_short_of_the_lock_a_burst_judges_one_more_password(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    """The password step judges first and writes after, if the account is still as read: of a burst at
    an account one failure short of its lock, one wrong password is counted (and locks it), and the
    right one among them gets in only if it was written before that lock."""
    user = enrolled(driver)
    for _ in range(2):
        assert user.start_login(password="ikke passordet mitt i det hele tatt").status == 401
    answers = at_once(
        AT_ONCE, lambda i: user.start_login(password=None if i == 0 else f"ikke passordet mitt, forsøk {i}")
    )
    account = DynamoDbAccounts(driver.dynamodb, driver.local.stack.refs["UsersTable"]).find(
        driver.key(user.identity_number)
    )
    assert account is not None
    assert account.locked_until is not None
    events = security_events(driver).page(driver.key(user.identity_number), None, 100).events
    judged = sum(e.type.value == "login-failed" and e.detail.get("reason") == "password" for e in events)
    assert judged == 3  # the two before, and one of the burst
    assert sum(e.type.value == "account-locked" for e in events) == 1
    assert statuses(answers) in ({401: AT_ONCE}, {200: 1, 401: AT_ONCE - 1})
    report(capsys, "a burst one failure short of the lock", AT_ONCE, judged - 2, 1)


def test_orders_at_once_make_one_letter(driver: LetterDriver, capsys: pytest.CaptureFixture[str]) -> None:
    person = driver.person(Category.ADULT)
    answers = at_once(AT_ONCE, lambda _: driver.order(person.identity_number))
    assert statuses(answers) == {202: AT_ONCE}
    driver.next_print_job()
    assert driver.no_print_job(wait=2.0)
    finished = wait_for(driver.executions, lambda runs: sum(r["status"] != "RUNNING" for r in runs) >= AT_ONCE - 1)
    assert sum(r["status"] == "RUNNING" for r in finished) == 1  # the one letter, at the printer
    orders = [driver.letters.get(run["name"]) for run in finished]  # each order's workflow is named by its id
    outcomes = Counter(order.outcome for order in orders if order is not None)
    assert outcomes == {RecipientOutcome.ACCEPTED: 1, RecipientOutcome.REPEATED: AT_ONCE - 1}  # (told no one)
    report(capsys, "letter orders for one person", AT_ONCE, outcomes[RecipientOutcome.ACCEPTED], 1)


def test_login_resends_at_once_send_one_code(driver: LetterDriver, capsys: pytest.CaptureFixture[str]) -> None:
    user = enrolled(driver)
    driver.notices_delivered()  # the welcome, sent meanwhile otherwise
    login = json.loads(user.start_login().body)
    pk = f"login#{login['login_id']}"
    sent = len(driver.local.outbox.sms())
    back_date(driver, pk, "codes_sent_at")
    answers = at_once(AT_ONCE, lambda _: user.call("POST", f"/v1/login/{login['login_id']}/resend"))
    assert statuses(answers) == {202: 1, 429: AT_ONCE - 1}
    assert int(challenge(driver, pk)["resends"]["N"]) == 1
    wait_for(driver.local.outbox.sms, lambda sms: len(sms) >= sent + 1)
    assert len(driver.local.outbox.sms()) == sent + 1
    report(capsys, "login code resends", AT_ONCE, 1, 1)


def test_enrolment_resends_at_once_send_one_code(driver: LetterDriver, capsys: pytest.CaptureFixture[str]) -> None:
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="94561230").status == 202
    pk = f"enrolment#{enrolling.enrolment_id}"
    sent = len(driver.local.outbox.sms())
    back_date(driver, pk, "codes_sent_at")
    answers = at_once(AT_ONCE, lambda _: enrolling.resend())
    assert statuses(answers) == {202: 1, 429: AT_ONCE - 1}
    assert int(challenge(driver, pk)["resends"]["N"]) == 1
    assert len(driver.local.outbox.sms()) == sent + 1
    report(capsys, "enrolment code resends", AT_ONCE, 1, 1)


def test_wrong_enrolment_codes_at_once_are_judged_three_times(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    enrolling = with_letter(driver)
    enrolling.start()
    assert enrolling.complete(mobile="94561231").status == 202
    answers = at_once(AT_ONCE, lambda i: enrolling.verify(mobile_code=f"{i:06d}"))
    judged = int(challenge(driver, f"enrolment#{enrolling.enrolment_id}")["verify_tries"]["N"])
    assert judged == 3
    assert set(statuses(answers)) <= {401, 404}
    assert enrolling.verify(mobile_code=enrolling.last_code_to("+4794561231")).status in (401, 404)  # ended
    report(capsys, "wrong enrolment verification codes", AT_ONCE, judged, 3)


def test_wrong_reset_codes_at_once_are_judged_three_times(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    user = enrolled(driver, mobile="94561232")
    reset = json.loads(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}).body)
    path = f"/v1/password-resets/{reset['reset_id']}/complete"
    pin = user.codes[str(reset["pin_index"])]

    def guess(i: int) -> HttpResponse:
        return user.call("POST", path, {"pin_code": pin, "code": f"{i:06d}", "new_password": "et nytt langt passord"})

    answers = at_once(AT_ONCE, guess)
    judged = int(challenge(driver, f"reset#{reset['reset_id']}")["tries"]["N"])
    assert statuses(answers) == {401: AT_ONCE}
    assert judged == 3
    report(capsys, "wrong password reset codes", AT_ONCE, judged, 3)


def test_wrong_contact_codes_at_once_are_judged_three_times(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    user = enrolled(driver, mobile="94561233")
    token = user.login()
    assert user.call("PUT", "/v1/me/contact", {"mobile": "94561234"}, token=token).status == 202
    answers = at_once(
        AT_ONCE,
        lambda i: user.call("POST", "/v1/me/contact/verify", {"channel": "mobile", "code": f"{i:06d}"}, token=token),
    )
    judged = int(challenge(driver, f"contact-change#{driver.key(user.identity_number)}")["tries"]["N"])
    assert judged == 3
    assert set(statuses(answers)) <= {401, 409}
    report(capsys, "wrong contact verification codes", AT_ONCE, judged, 3)


def test_one_client_at_once_gets_no_more_than_its_limit(
    driver: LetterDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    tried = 40
    user = User(driver, with_letter(driver), None, source_ip="203.0.113.77")
    in_one_window(60, needed_seconds=20)  # all 40 in one minute's count (they take 2 s or so)
    answers = at_once(tried, lambda _: user.start_login(password="feil passord, men det er ikke poenget"))
    counts = statuses(answers)
    assert counts[429] == tried - 30
    report(capsys, "login attempts from one client", tried, tried - counts[429], 30)

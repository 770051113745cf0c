"""Login, sessions, lockout, TOTP, password change and reset through the real handlers on moto."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import pyotp
import pytest
from argon2 import PasswordHasher, Type, extract_parameters
from botocore.exceptions import ClientError
from msgspec.structs import replace

from local.faults import Faults, injected_faults
from local.functions import LambdaContext
from local.gateway import HttpRequest, HttpResponse, payload_v2_event
from local.population_seed import Category
from minid import deadline, wiring
from minid.adapters.accounts import DynamoDbAccounts
from minid.adapters.contacts import DynamoDbContactRegister, contact_item
from minid.adapters.dynamodb import IN_FLIGHT_TRIES, from_item, iso, to_item
from minid.adapters.events import event_item, written_event
from minid.adapters.logins import DynamoDbLoginAttempts
from minid.adapters.password_resets import DynamoDbPasswordResets
from minid.adapters.passwords import Argon2PasswordHasher
from minid.adapters.rate_limits import DynamoDbRateCounter
from minid.api.resolver import EXEMPT_KEPT_SECONDS
from minid.deadline import OutOfTime
from minid.domain.accounts import AccountChange
from minid.domain.codes import MAX_CODE_TRIES, RateLimited
from minid.domain.contacts import STALE_AFTER
from minid.domain.errors import AuthenticationFailed, Conflict, DomainError
from minid.domain.events import SecurityEvent, SecurityEventType
from minid.domain.identity import compose_identity_number
from minid.domain.keys import KeyPurpose
from minid.domain.letters.model import MAX_PIN_FAILURES_PER_LETTER, LetterStatus, asking_order
from minid.domain.lockout import SETTLED_WITHIN
from minid.domain.login import (
    JUDGEMENT_WRITES,
    LOGIN_LIFETIME,
    REPLACED_CODE,
    LoginAttempt,
    SecondFactor,
    SecondFactorUnavailable,
)
from minid.domain.notices import Notice, NoticeKind, notice_from_json
from minid.domain.password_reset import PasswordReset
from minid.domain.passwords import normalize
from minid.domain.rate_limits import (
    CODES_TO_PERSON_PER_HOUR,
    RESET_CODES_TO_PERSON_PER_DAY,
    ClientLimitPolicy,
    ClientLimits,
    Hit,
)
from minid.domain.sessions import REPLACED_SINCE_LOGIN, ReauthenticationRequired, SessionEnded, Unauthenticated
from tests.integration.letters import (
    LetterDriver,
    before_first_aws_call,
    calls_made,
    clear_counters,
    counted_hits,
    fill_counters,
    in_one_window,
    on_functions_clients,
    registered_ceased,
    registered_dead,
    security_events,
    transaction_putting,
    transaction_updating,
    wait_for,
)
from tests.integration.users import PASSWORD, CodesAlike, MovableClock, User, enrolled


def body(response: Any) -> Any:
    return json.loads(response.body) if response.body else None


def account(user: User) -> Any:
    accounts = DynamoDbAccounts(user.driver.dynamodb, user.driver.local.stack.refs["UsersTable"])
    return accounts.find(user.driver.key(user.identity_number))


def stored_login(driver: LetterDriver, login_id: str) -> dict[str, Any]:
    """The login attempt's item as stored."""
    key, table = to_item({"pk": f"login#{login_id}"}), driver.local.stack.refs["ChallengesTable"]
    return from_item(driver.dynamodb.get_item(TableName=table, Key=key)["Item"])


def verify_after(
    driver: LetterDriver, meanwhile: Callable[[], object], login_id: str, code: str, refused: str | None = None
) -> None:
    """The verify, `meanwhile` done between its reads and its completion's write: refused (saying `refused`,
    where given)."""
    completing = transaction_putting(driver.local.stack.refs["SessionsTable"])
    with before_first_aws_call("dynamodb.TransactWriteItems", meanwhile, where=completing):
        services = wiring.login(os.environ)
        with pytest.raises(AuthenticationFailed, match=refused):
            services.login.verify(login_id, code)


def test_a_password_kept_with_weaker_parameters_is_kept_anew_in_the_login_s_own_write(driver: LetterDriver) -> None:
    """The configured argon2 parameters raised since the password was hashed: the right password is kept
    anew with them in the write that begins the login (no call more: the login path's three), and the
    password still works."""
    user = enrolled(driver)
    weaker = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1, hash_len=32, type=Type.ID)
    kept = weaker.hash(driver.local.keyer.password_input(normalize(user.password)))
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["UsersTable"],
        Key={"pk": {"S": driver.key(user.identity_number)}},
        UpdateExpression="SET password_hash = :weaker",
        ExpressionAttributeValues={":weaker": {"S": kept}},
    )
    calls: list[str] = []
    with on_functions_clients(("before-call", lambda model, **_: calls.append(model.name))):
        services = wiring.login(os.environ)  # (its clients made within, and the pepper read: not the request's)
        calls.clear()
        services.login.start(user.identity_number, user.password, None, "198.51.100.7")
    assert calls == ["BatchGetItem", "TransactWriteItems", "Publish"]
    stored = account(user).password_hash
    assert stored != kept
    assert extract_parameters(stored).memory_cost == 19 * 1024
    user.login()  # the password still works, kept anew


def _expired_lock_stored(driver: LetterDriver, user: User, failures: int, password_hash: str | None = None) -> None:
    """A lock that has run out still stored (a reservation adds failures without taking it away)."""
    values = {":then": {"S": iso(datetime.now(UTC) - timedelta(hours=2))}, ":failures": {"N": str(failures)}}
    sets = "locked_until = :then, failed_logins = :failures"
    if password_hash is not None:
        values[":hash"] = {"S": password_hash}
        sets += ", password_hash = :hash"
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["UsersTable"],
        Key={"pk": {"S": driver.key(user.identity_number)}},
        UpdateExpression=f"SET {sets}",
        ExpressionAttributeValues=values,
    )


def test_a_wrong_password_that_locks_over_a_lock_run_out_locks_anew(driver: LetterDriver) -> None:
    """The lock that has run out is replaced by the new one in the same write (not set and taken away at
    once, which DynamoDB refuses: a 500, and nothing counted, for every wrong password after)."""
    user = enrolled(driver)
    _expired_lock_stored(driver, user, failures=2)
    assert user.start_login(password="ikke passordet mitt i det hele tatt").status == 401
    assert account(user).locked(datetime.now(UTC))


def test_a_password_kept_anew_over_a_lock_run_out_takes_the_lock_away(driver: LetterDriver) -> None:
    user = enrolled(driver)
    weaker = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1, hash_len=32, type=Type.ID)
    kept = weaker.hash(driver.local.keyer.password_input(normalize(user.password)))
    _expired_lock_stored(driver, user, failures=1, password_hash=kept)
    assert user.start_login().status == 200
    now_as = account(user)
    assert (now_as.locked_until, now_as.password_hash != kept) == (None, True)


# ---------------------------------------------------------------------- the three second factors
def test_password_and_sms_code_give_a_session(driver: LetterDriver) -> None:
    user = enrolled(driver)
    started = user.start_login()
    assert started.status == 200
    login = body(started)
    assert (login["second_factor"], login["expires_in"]) == ("sms", 600)
    assert set(login) == {"login_id", "second_factor", "expires_in"}  # API.md's "pin_index"?: for pin only
    sms = driver.local.outbox.sms()[-1]
    assert sms["to"] == user.mobile
    assert sms["message"].endswith(f"@minid.example.no #{user.last_sms_code()}")

    verified = user.verify(login["login_id"], user.last_sms_code())

    assert verified.status == 200
    token = body(verified)
    assert token["token_type"] == "Bearer"
    assert token["acr"] == "idporten-loa-substantial"
    assert token["amr"] == ["Minid-OTC"]
    assert len(token["access_token"]) >= 43  # 256 bits in base64url
    me = body(user.call("GET", "/v1/me", token=token["access_token"]))
    assert me["identity_number"] == user.identity_number
    assert me["name"] == user.enrolling.person.person.name
    assert me["contact"]["mobile"] == user.mobile
    assert me["second_factors"] == ["sms", "pin"]


def test_the_session_token_is_stored_only_as_a_keyed_hash(driver: LetterDriver) -> None:
    user = enrolled(driver)
    token = user.login()
    items = driver.dynamodb.scan(TableName=driver.local.stack.refs["SessionsTable"])["Items"]
    stored = json.dumps(items)
    assert items
    assert token not in stored
    assert user.identity_number not in stored


def test_a_pin_code_from_the_letter_is_a_second_factor_and_is_used_up(driver: LetterDriver) -> None:
    user = enrolled(driver)
    logins = [body(user.start_login(second_factor="pin")) for _ in range(8)]
    assert all(login["second_factor"] == "pin" for login in logins)
    # the same code each time until it is used (one who has the password and a single code cannot start
    # again until that code is asked), and none used at the enrolment
    (asked,) = {login["pin_index"] for login in logins}
    assert asked not in user.enrolling.indices
    first = logins[0]
    verified = user.verify(first["login_id"], user.codes[str(asked)])
    assert body(verified)["amr"] == ["Minid-PIN"]
    # another login asked for the same code before it was used: refused now
    assert user.verify(logins[1]["login_id"], user.codes[str(asked)]).status == 401
    following = {body(user.start_login(second_factor="pin"))["pin_index"] for _ in range(3)}
    assert len(following) == 1  # the next code in the person's order, never the used one again
    assert not following & {asked, *user.enrolling.indices}


def test_a_pin_code_asked_for_stops_working_when_the_letter_is_blocked_before_it_is_given(
    driver: LetterDriver,
) -> None:
    user = enrolled(driver)
    login = body(user.start_login(second_factor="pin"))
    token = user.login()  # by SMS
    assert user.call("POST", "/v1/me/pin-letters/block", token=token).status == 200
    refused = user.verify(login["login_id"], user.codes[str(login["pin_index"])])
    assert refused.status == 401
    assert account(user).failed_logins == 0  # the code was right: the letter is what changed


def test_a_pin_code_of_a_letter_guessed_out_meanwhile_is_refused_though_its_block_is_not_written(
    driver: LetterDriver,
) -> None:
    """The letter's fifth wrong code (elsewhere) was counted while this login waited for its PIN code, and
    the block after it failed: the completion's transaction refuses the code all the same."""
    user = enrolled(driver)
    login = body(user.start_login(second_factor="pin"))
    letter_id = driver.only_letter(user.identity_number).letter_id
    for _ in range(MAX_PIN_FAILURES_PER_LETTER):
        driver.letters.record_pin_failure(letter_id)
    refused = user.verify(login["login_id"], user.codes[str(login["pin_index"])])
    assert refused.status == 401
    letter = driver.letters.get(letter_id)
    assert letter is not None
    assert str(login["pin_index"]) not in {str(index) for index in letter.used}
    # and from then on, the letter is no second factor: not offered, not listed; the person's login that
    # asks for it (with the right password) blocks it, and the person is told
    assert "pin" not in body(user.call("GET", "/v1/me", token=user.login()))["second_factors"]
    assert user.start_login(second_factor="pin").status == 409
    blocked = driver.letters.get(letter_id)
    assert blocked is not None
    assert blocked.status is LetterStatus.BLOCKED
    wait_for(driver.local.outbox.sms, lambda sms: any("sperret" in m["message"] for m in sms))


def test_a_wrong_code_whose_lock_could_not_be_written_is_kept_and_the_lock_written_later(
    driver: LetterDriver,
) -> None:
    """The third failure in a row locks the account. Should the lock's write fail, the guess is not handed
    back (a fault must not buy guesses), and the count left at the threshold with no lock is locked by the
    next attempt once no request can still be judging it, and the person told."""
    user = enrolled(driver)
    for _ in range(2):
        assert user.start_login(password="ikke passordet mitt i det hele tatt").status == 401
    clock = MovableClock()
    login = wiring.login(os.environ, clock=clock).login
    started = login.start(user.identity_number, PASSWORD, None, "198.51.100.77")
    right = user.last_sms_code()
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    with injected_faults() as faults:
        faults.add("dynamodb", "TransactWriteItems", code="ThrottlingException", status=400)  # the lock's
        with pytest.raises(ClientError):
            login.verify(started.login_id, wrong)
    stuck = account(user)
    assert (stuck.failed_logins, stuck.locked_until) == (3, None)  # counted, not locked
    failed = security_events(driver).page(driver.key(user.identity_number), None, 100).events
    assert [e.detail.get("reason") for e in failed if e.type.value == "login-failed"].count("second-factor") == 1

    with pytest.raises(AuthenticationFailed):
        login.verify(started.login_id, right)  # a moment later: refused (it may still be being judged)
    assert account(user).locked_until is None
    clock.advance(SETTLED_WITHIN + timedelta(seconds=1))
    with pytest.raises(AuthenticationFailed):
        login.verify(started.login_id, right)
    assert account(user).locked(clock.now())
    events = security_events(driver).page(driver.key(user.identity_number), None, 100).events
    assert [e.type.value for e in events].count("account-locked") == 1
    wait_for(driver.local.outbox.sms, lambda sms: any("sperret i en time" in m["message"] for m in sms))


def test_the_wrong_code_that_locks_writes_its_failure_with_the_lock(driver: LetterDriver) -> None:
    """One transaction: the lock, its event and the failure's (so the failure is never recorded without
    its lock, nor the lock without the failure that made it)."""
    user = enrolled(driver)
    for _ in range(2):
        assert user.start_login(password="ikke passordet mitt i det hele tatt").status == 401
    login = body(user.start_login())
    wrong = f"{(int(user.last_sms_code()) + 1) % 1_000_000:06d}"
    written: list[dict[str, Any]] = []

    def locking(params: dict[str, Any]) -> bool:
        if transaction_updating("SET locked_until = :until")(params):
            written.extend(item["Put"]["Item"] for item in params["TransactItems"] if "Put" in item)
            return True
        return False

    with before_first_aws_call("dynamodb.TransactWriteItems", lambda: None, where=locking) as outcomes:
        services = wiring.login(os.environ)
        with pytest.raises(AuthenticationFailed):
            services.login.verify(login["login_id"], wrong)
    assert outcomes == ["made"]
    in_the_lock = sorted(item["type"]["S"] for item in written if item["reference"]["S"] == f"{login['login_id']}:1")
    assert in_the_lock == ["account-locked", "login-failed"]
    events = security_events(driver).page(driver.key(user.identity_number), None, 100).events
    third = [e for e in events if e.reference == f"{login['login_id']}:1"]
    assert sorted(e.type.value for e in third) == ["account-locked", "login-failed"]
    assert account(user).locked(datetime.now(UTC))


def test_each_wrong_code_of_a_login_is_its_own_event(driver: LetterDriver) -> None:
    """By the try's number: two at once (one millisecond) wrote one event, and one's event could be taken
    for the proof that the other's write, its answer lost, was made (its guess then never counted)."""
    user = enrolled(driver)
    login = body(user.start_login())
    wrong = f"{(int(user.last_sms_code()) + 1) % 1_000_000:06d}"
    for _ in range(2):
        assert user.verify(login["login_id"], wrong).status == 401
    events = security_events(driver).page(driver.key(user.identity_number), None, 100).events
    failed = sorted(e.reference for e in events if e.type is SecurityEventType.LOGIN_FAILED)
    assert failed == [f"{login['login_id']}:1", f"{login['login_id']}:2"]


def lock_for_an_hour(user: User) -> None:
    """The account locked, as other attempts' wrong passwords lock it."""
    user.driver.dynamodb.update_item(
        TableName=user.driver.local.stack.refs["UsersTable"],
        Key=to_item({"pk": user.driver.key(user.identity_number)}),
        UpdateExpression="SET failed_logins = :zero, locked_until = :until",
        ExpressionAttributeValues=to_item({":zero": 0, ":until": iso(datetime.now(UTC) + timedelta(hours=1))}),
    )


def login_attempts(driver: LetterDriver) -> DynamoDbLoginAttempts:
    """The login attempts as the login function keeps them (another request's, made by hand)."""
    refs = driver.local.stack.refs
    tables = {
        "users_table": refs["UsersTable"],
        "events_table": refs["SecurityEventsTable"],
        "contacts_table": refs["ContactRegisterTable"],
    }
    return DynamoDbLoginAttempts(driver.dynamodb, refs["ChallengesTable"], **tables)


def test_a_try_given_back_does_not_hand_its_number_out_again(driver: LetterDriver) -> None:
    """Another request's try, claimed before a wrong code's and given back after it (a fault before its
    judgement): the next wrong code is not given the first's number again (the two, in one millisecond,
    would write one event)."""
    user = enrolled(driver)
    login = body(user.start_login())
    wrong = f"{(int(user.last_sms_code()) + 1) % 1_000_000:06d}"
    attempts = login_attempts(driver)
    assert attempts.claim_try(login["login_id"], MAX_CODE_TRIES, datetime.now(UTC)) is not None  # the other's
    assert user.verify(login["login_id"], wrong).status == 401
    attempts.refund_try(login["login_id"])  # the other's, given back
    assert user.verify(login["login_id"], wrong).status == 401
    events = security_events(driver).page(driver.key(user.identity_number), None, 100).events
    failed = sorted(e.reference for e in events if e.type is SecurityEventType.LOGIN_FAILED)
    assert failed == [f"{login['login_id']}:2", f"{login['login_id']}:3"]


def test_a_wrong_code_whose_lock_is_refused_as_time_runs_out_is_still_recorded(driver: LetterDriver) -> None:
    """The lock's transaction refused by the invocation's deadline (minid.deadline): a 503, the guess kept
    (the lock is written by the next attempt), and its failure recorded whatever the time."""
    user = enrolled(driver)
    for _ in range(2):
        assert user.start_login(password="ikke passordet mitt i det hele tatt").status == 401
    login = body(user.start_login())
    wrong = f"{(int(user.last_sms_code()) + 1) % 1_000_000:06d}"
    with deadline.within(LambdaContext("LoginFunction", 512, 60)), contextlib.ExitStack() as late:
        run_out = lambda: late.enter_context(deadline.within(LambdaContext("LoginFunction", 512, 0)))  # noqa: E731
        locking = transaction_updating("SET locked_until = :until")
        with before_first_aws_call("dynamodb.TransactWriteItems", run_out, where=locking):
            services = wiring.login(os.environ)
            with pytest.raises(OutOfTime):
                services.login.verify(login["login_id"], wrong)
    assert (account(user).failed_logins, account(user).locked_until) == (3, None)
    events = security_events(driver).page(driver.key(user.identity_number), None, 100).events
    third = [e for e in events if e.reference == f"{login['login_id']}:1"]
    assert [(e.type.value, e.detail.get("reason")) for e in third] == [("login-failed", "second-factor")]


def test_a_wrong_code_that_reached_the_threshold_of_an_account_locked_meanwhile_is_still_recorded(
    driver: LetterDriver,
) -> None:
    """Its lock is not written (the account is locked already, by another attempt), and its failure is
    recorded on its own."""
    user = enrolled(driver)
    for _ in range(2):
        assert user.start_login(password="ikke passordet mitt i det hele tatt").status == 401
    login = body(user.start_login())
    wrong = f"{(int(user.last_sms_code()) + 1) % 1_000_000:06d}"

    def locked_meanwhile() -> None:
        driver.dynamodb.update_item(
            TableName=driver.local.stack.refs["UsersTable"],
            Key=to_item({"pk": driver.key(user.identity_number)}),
            UpdateExpression="SET locked_until = :until",
            ExpressionAttributeValues=to_item({":until": iso(datetime.now(UTC) + timedelta(hours=1))}),
        )

    locking = transaction_updating("SET locked_until = :until")
    with before_first_aws_call("dynamodb.TransactWriteItems", locked_meanwhile, where=locking) as outcomes:
        services = wiring.login(os.environ)
        with pytest.raises(AuthenticationFailed):
            services.login.verify(login["login_id"], wrong)
    assert outcomes == ["TransactionCanceledException"]
    events = security_events(driver).page(driver.key(user.identity_number), None, 100).events
    third = [e for e in events if e.reference == f"{login['login_id']}:1"]
    assert [(e.type.value, e.detail.get("reason")) for e in third] == [("login-failed", "second-factor")]


def test_a_code_sent_again_says_how_long_it_works_in_what_is_left_of_the_login(driver: LetterDriver) -> None:
    """A login's 10 minutes run from its start: a code sent again 6.5 minutes in says 3, not 10."""
    user = enrolled(driver)
    clock = MovableClock()
    login = wiring.login(os.environ, clock=clock).login
    started = login.start(user.identity_number, PASSWORD, None, "198.51.100.78")
    clock.advance(timedelta(minutes=6.5))
    login.resend(started.login_id, "198.51.100.78")
    (first, again) = [m["message"] for m in driver.local.outbox.snapshot()["sms"] if m["to"] == user.mobile][-2:]
    assert "Koden din for å logge inn i MinID er" in first
    assert "Den gjelder i 10 minutter." in first
    assert "Den gjelder i 3 minutter." in again
    assert login.verify(started.login_id, user.last_sms_code()).session


def test_a_client_past_its_limit_of_codes_is_sent_none_and_its_right_password_counts_nothing(
    driver: LetterDriver,
) -> None:
    user = enrolled(driver)
    driver.notices_delivered()  # the welcome
    key = driver.local.keyer.client_key(user.source_ip)
    hour = int(datetime.now(UTC).timestamp()) // 3600 * 3600
    for window in (hour, hour + 3600):  # this hour's window is full (and the next one, should it start now)
        driver.dynamodb.put_item(
            TableName=driver.local.stack.refs["ChallengesTable"],
            Item=to_item({"pk": f"rate#codes-sent#{key}#{window}", "hits": 10_000, "expires_at": window + 7200}),
        )
    sent = len(driver.local.outbox.sms())
    refused = user.start_login()
    assert refused.status == 429
    assert body(refused)["type"] == "/problems/rate-limited"
    assert int(dict(refused.headers)["Retry-After"]) > 0
    assert len(driver.local.outbox.sms()) == sent
    assert account(user).failed_logins == 0  # the password was right
    assert body(user.start_login(second_factor="pin"))["second_factor"] == "pin"  # a PIN code is not sent
    # a wrong one is judged as anywhere (the client's codes are refused only where one would be sent: those
    # behind the same address whose second factor needs none are let in)
    wrong = user.start_login(password="ikke passordet mitt i det hele tatt")
    assert wrong.status == 401
    assert account(user).failed_logins == 1


def test_an_ipv6_client_is_counted_by_its_64_network_not_by_each_address_in_it(driver: LetterDriver) -> None:
    """One host holds a /64 at least and could take a new address for every request: the limit of codes
    sent filled from one address of the network refuses another address of it, and no other network."""
    user = enrolled(driver)
    driver.notices_delivered()  # the welcome
    key = driver.local.keyer.client_key("2001:db8:0:1::7")
    hour = int(datetime.now(UTC).timestamp()) // 3600 * 3600
    for window in (hour, hour + 3600):
        driver.dynamodb.put_item(
            TableName=driver.local.stack.refs["ChallengesTable"],
            Item=to_item({"pk": f"rate#codes-sent#{key}#{window}", "hits": 10_000, "expires_at": window + 7200}),
        )
    user.source_ip = "2001:db8:0:1:ffff:ffff:ffff:fffe"
    assert user.start_login().status == 429
    user.source_ip = "2001:db8:0:2::7"  # the next network: a client of its own
    assert user.start_login().status == 200


def test_an_attempt_begins_only_with_the_account_as_read_and_the_clients_limit_not_full(driver: LetterDriver) -> None:
    user = enrolled(driver)
    attempts = login_attempts(driver)
    now = datetime.now(UTC)
    first = LoginAttempt(
        login_id=str(uuid.uuid4()),
        person=driver.key(user.identity_number),
        second_factor=SecondFactor.SMS,
        identity_sealed="sealed",
        created_at=now,
        expires_at=now + timedelta(minutes=10),
    )
    one_code = Hit(f"codes-sent#test-{first.login_id}#0", 1, now + timedelta(hours=1))
    as_read = AccountChange(account(user), now, 0, None)
    assert attempts.begin(first, as_read, (), (one_code,)).made
    assert attempts.get(first.login_id) is not None
    second = replace(first, login_id=str(uuid.uuid4()))
    assert attempts.begin(second, as_read, (), (one_code,)).full == one_code  # the client's one code is counted
    assert attempts.get(second.login_id) is None
    assert user.start_login(password="not my password 1").status == 401  # the account changes
    assert attempts.begin(second, as_read, (), ()).stale  # as it was read before: nothing is stored
    assert attempts.get(second.login_id) is None
    assert account(user).failed_logins == 1
    assert attempts.begin(second, AccountChange(account(user), now, 1, None), (), ()).made  # read again


def transactions_cancelled(faults: Faults, *reasons: str, times: int = 1) -> None:
    """The next `times` DynamoDB transactions cancelled, with these reasons for their items in order."""
    faults.add(
        "dynamodb", "TransactWriteItems", code="TransactionCanceledException", status=400, times=times, reasons=reasons
    )


@pytest.mark.parametrize("by", ["TransactionConflict", "ConditionalCheckFailed"])
def test_a_password_whose_write_finds_the_account_changed_is_read_and_written_again(
    driver: LetterDriver, by: str
) -> None:
    """A change that fails the condition between the read and the write: the account is read again and the
    judgement written once. Another transaction on the account in flight: the same write is made again
    after a pause (its condition judged then), and written once."""
    user = enrolled(driver)
    with injected_faults() as faults:
        transactions_cancelled(faults, "None", by)
        started = user.start_login(second_factor="pin")
        assert [fault[1] for fault in faults.injected] == ["TransactWriteItems"]
    assert started.status == 200
    assert account(user).failed_logins == 0
    with injected_faults() as faults:
        transactions_cancelled(faults, by)
        assert user.start_login(password="not my password 1").status == 401
    assert account(user).failed_logins == 1  # counted once


def test_a_password_whose_account_changes_at_every_write_is_refused_and_its_try_still_counted(
    driver: LetterDriver,
) -> None:
    """An account changed by other attempts at each of the judgement's writes: the attempt gives up without
    telling anything (the changes were the other attempts' judgements), but the client's try counts."""
    user = enrolled(driver)
    key = driver.local.keyer.client_key(user.source_ip)

    def tries_counted() -> int:
        rows = driver.dynamodb.scan(TableName=driver.local.stack.refs["ChallengesTable"])["Items"]
        return sum(int(r["hits"]["N"]) for r in rows if r["pk"]["S"].startswith(f"rate#identity-attempts#{key}#"))

    before = tries_counted()
    with injected_faults() as faults:
        transactions_cancelled(faults, "ConditionalCheckFailed", "None", times=JUDGEMENT_WRITES)
        refused = user.start_login(second_factor="pin")
        assert len(faults.injected) == JUDGEMENT_WRITES
    assert refused.status == 401
    assert tries_counted() == before + 1
    assert account(user).failed_logins == 0
    assert user.start_login(second_factor="pin").status == 200  # uncontended again: it begins


@pytest.mark.parametrize("password", [PASSWORD, "not my password 1"])
def test_a_judgement_that_only_meets_others_transactions_is_made_again_and_else_unavailable_right_or_wrong(
    driver: LetterDriver, password: str
) -> None:
    """Others' transactions writing the client's attempt counter (which every login from one address
    writes), nothing changed that was read: the judgement's write is made again after a pause, not judged
    anew as if the account had changed; and while they go on, a 503 with Retry-After for a right password
    and a wrong one alike, never a right password told the 401 of a wrong one."""
    user = enrolled(driver)
    # the counter's place in the write: after the attempt begun and the account (right), after the account
    counter = ("None", "None", "TransactionConflict") if password == PASSWORD else ("None", "TransactionConflict")
    with injected_faults() as faults:
        transactions_cancelled(faults, *counter, times=IN_FLIGHT_TRIES)
        busy = user.start_login(password=password, second_factor="pin")
        assert len(faults.injected) == IN_FLIGHT_TRIES
    assert (busy.status, json.loads(busy.body)["status"]) == (503, 503)
    assert "Retry-After" in dict(busy.headers)
    assert account(user).failed_logins == 0

    with injected_faults() as faults:
        transactions_cancelled(faults, *counter, times=IN_FLIGHT_TRIES - 1)
        judged = user.start_login(password=password, second_factor="pin")
        assert len(faults.injected) == IN_FLIGHT_TRIES - 1
    assert judged.status == (200 if password == PASSWORD else 401)
    assert account(user).failed_logins == (0 if password == PASSWORD else 1)


def test_a_throttled_judgement_is_unavailable_for_a_moment_and_counts_nothing(driver: LetterDriver) -> None:
    user = enrolled(driver)
    with injected_faults() as faults:
        transactions_cancelled(faults, "ThrottlingError", "None")
        refused = user.start_login(password="not my password 1")
    assert refused.status == 503
    assert "Retry-After" in dict(refused.headers)
    assert account(user).failed_logins == 0


def test_a_right_code_that_meets_a_fault_costs_no_try(driver: LetterDriver) -> None:
    """The login's completion throttled as often as there are tries: each a 503, and the code still works
    after. Only a wrong code uses up a try."""
    user = enrolled(driver)
    login = body(user.start_login())
    code = user.last_sms_code()
    for _ in range(MAX_CODE_TRIES):
        with injected_faults() as faults:
            transactions_cancelled(faults, "ThrottlingError", "None")
            busy = user.verify(login["login_id"], code)
            assert [fault[1] for fault in faults.injected] == ["TransactWriteItems"]
        assert busy.status == 503
    tries = driver.dynamodb.get_item(
        TableName=driver.local.stack.refs["ChallengesTable"], Key=to_item({"pk": f"login#{login['login_id']}"})
    )["Item"]["tries"]
    assert tries["N"] == "0"
    assert user.verify(login["login_id"], "000000").status == 401  # a wrong one counts
    assert user.verify(login["login_id"], code).status == 200
    assert account(user).failed_logins == 0


def test_a_count_of_failures_whose_every_answer_was_lost_is_given_back_and_never_locks(
    driver: LetterDriver, caplog: pytest.LogCaptureFixture
) -> None:
    """The verify's count of the attempt made, and every answer to it lost (the SDK's tries timed out in a
    brownout): a 503, and the count given back by its mark, not kept. As many such as the lock's threshold
    leave the account as it was, and the person's right code logs in (kept, they would have left the account
    at the threshold: its next attempt refused, and once they settled, the account locked)."""
    user = enrolled(driver)
    login = body(user.start_login())
    counting = lambda params: "ADD failed_logins :one" in params.get("UpdateExpression", "")  # noqa: E731
    for _ in range(MAX_CODE_TRIES):
        with injected_faults() as faults:
            faults.add("dynamodb", "UpdateItem", after="lost", here=True, where=counting)
            busy = user.verify(login["login_id"], user.last_sms_code())
            assert faults.injected == [("dynamodb", "UpdateItem", "lost")]
        assert busy.status == 503
        assert account(user).failed_logins == 0
    assert "was not given back" not in caplog.text
    assert user.verify(login["login_id"], user.last_sms_code()).status == 200


def test_a_try_whose_every_answer_was_lost_is_given_back(
    driver: LetterDriver, caplog: pytest.LogCaptureFixture
) -> None:
    """The verify's try counted, and every answer to it lost: a 503, and the try given back by its mark. As
    many such as the login's tries leave it open, and the right code logs in (kept, they would have ended
    the login with no code typed: "Log in again")."""
    user = enrolled(driver)
    login = body(user.start_login())
    counting = lambda params: "ADD tries :one" in params.get("UpdateExpression", "")  # noqa: E731
    key = to_item({"pk": f"login#{login['login_id']}"})
    for _ in range(MAX_CODE_TRIES):
        with injected_faults() as faults:
            faults.add("dynamodb", "UpdateItem", after="lost", here=True, where=counting)
            assert user.verify(login["login_id"], user.last_sms_code()).status == 503
            assert faults.injected == [("dynamodb", "UpdateItem", "lost")]
        item = driver.dynamodb.get_item(TableName=driver.local.stack.refs["ChallengesTable"], Key=key)["Item"]
        assert item["tries"] == {"N": "0"}
    assert "was not given back" not in caplog.text
    assert user.verify(login["login_id"], user.last_sms_code()).status == 200


def app_added(user: User, token: str) -> str:
    """An authenticator app added and confirmed through the routes: its secret."""
    secret: str = body(user.call("POST", "/v1/me/totp", token=token))["secret"]
    assert user.call("POST", "/v1/me/totp/verify", {"code": pyotp.TOTP(secret).now()}, token=token).status == 204
    return secret


def every_table(driver: LetterDriver) -> str:
    """Every item of every table of the stack, as JSON."""
    tables = [name for logical, name in driver.local.stack.refs.items() if logical.endswith("Table")]
    assert len(tables) >= 8
    return json.dumps([driver.dynamodb.scan(TableName=table)["Items"] for table in tables])


def test_totp_through_the_api_and_pyotp(driver: LetterDriver) -> None:
    user = enrolled(driver, mobile=None, email="kari@example.no")
    token = user.login(second_factor="pin")
    added = user.call("POST", "/v1/me/totp", token=token)
    assert added.status == 201
    secret = body(added)["secret"]
    assert body(added)["otpauth_uri"].startswith("otpauth://totp/MinID:")
    assert user.identity_number not in body(added)["otpauth_uri"]
    assert secret not in every_table(driver)  # sealed while it waits for its confirmation
    assert user.call("POST", "/v1/me/totp/verify", {"code": "000000"}, token=token).status == 401
    assert user.call("POST", "/v1/me/totp/verify", {"code": pyotp.TOTP(secret).now()}, token=token).status == 204
    assert secret not in every_table(driver)  # and once it is the person's app

    login = body(user.start_login())
    assert login["second_factor"] == "totp"  # no mobile: the app is the default
    code = pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30))  # the confirming step is used
    assert body(user.verify(login["login_id"], code))["amr"] == ["Minid-TOTP"]
    replay = body(user.start_login())
    for _ in range(MAX_CODE_TRIES + 1):  # the same step twice: refused, and told why
        replayed = user.verify(replay["login_id"], code)
        assert replayed.status == 401
        assert "used already" in body(replayed)["detail"]
    assert account(user).failed_logins == 0  # no guess: no failure towards the lock, nor a try spent

    assert user.call("DELETE", "/v1/me/totp", token=user.login(second_factor="pin")).status == 204
    assert body(user.start_login())["second_factor"] == "pin"


def test_an_app_s_confirmation_retried_after_its_answer_was_lost_is_told_it_is_done(driver: LetterDriver) -> None:
    """The same code again, once the app is confirmed: 204, not "add an app first" (409) for an app the
    person has. Another code is still told so, and the retry writes no second event."""
    user = enrolled(driver)
    token = user.login()
    secret = body(user.call("POST", "/v1/me/totp", token=token))["secret"]
    code = pyotp.TOTP(secret).now()
    assert user.call("POST", "/v1/me/totp/verify", {"code": code}, token=token).status == 204
    assert user.call("POST", "/v1/me/totp/verify", {"code": code}, token=token).status == 204
    other = f"{(int(code) + 1) % 1_000_000:06d}"
    assert user.call("POST", "/v1/me/totp/verify", {"code": other}, token=token).status == 409
    kinds = [e.type.value for e in security_events(driver).page(driver.key(user.identity_number), None, 100).events]
    assert kinds.count("totp-added") == 1


def test_an_app_s_confirmation_retried_minutes_later_is_told_it_is_done(driver: LetterDriver) -> None:
    """Past the code's window, but within a code's lifetime: the code of the step it was confirmed at."""
    user = enrolled(driver)
    clock = MovableClock()
    services = wiring.login(os.environ, clock=clock)
    token = user.login()
    session, account = services.sessions.authenticated(token)
    secret = services.credentials.begin_totp(session, account).secret
    code = pyotp.TOTP(secret).at(clock.now())
    services.credentials.confirm_totp(session, *services.sessions.authenticated(token)[1:], code)
    clock.advance(timedelta(minutes=3))
    services.credentials.confirm_totp(session, *services.sessions.authenticated(token)[1:], code)  # done
    clock.advance(timedelta(minutes=8))
    with pytest.raises(Conflict):  # long after: "add an app first"
        services.credentials.confirm_totp(session, *services.sessions.authenticated(token)[1:], code)


def test_the_same_confirmation_of_an_app_sent_twice_at_once_is_done_for_both(driver: LetterDriver) -> None:
    """The one overtaken finds the app confirmed by its own code: done, not "the code is wrong"."""
    user = enrolled(driver)
    token = user.login()
    secret = body(user.call("POST", "/v1/me/totp", token=token))["secret"]
    code = pyotp.TOTP(secret).now()

    def other_confirms() -> None:
        assert user.call("POST", "/v1/me/totp/verify", {"code": code}, token=token).status == 204

    services = wiring.login(os.environ)
    session, account = services.sessions.authenticated(token)
    confirming = transaction_updating("SET totp_secret = :secret")
    with before_first_aws_call("dynamodb.TransactWriteItems", other_confirms, where=confirming) as outcomes:
        services = wiring.login(os.environ)
        services.credentials.confirm_totp(session, account, code)
    assert outcomes == ["TransactionCanceledException"]  # its own write found it done
    kinds = [e.type.value for e in security_events(driver).page(driver.key(user.identity_number), None, 100).events]
    assert kinds.count("totp-added") == 1


def test_an_app_removed_twice_is_removed_once(driver: LetterDriver) -> None:
    """A removal retried after its answer was lost: 204 again, and no second event or notice."""
    user = enrolled(driver, mobile="93217654")  # a number of its own: the notices to it are this test's
    token = user.login()
    app_added(user, token)
    assert user.call("DELETE", "/v1/me/totp", token=token).status == 204
    assert user.call("DELETE", "/v1/me/totp", token=token).status == 204
    kinds = [e.type.value for e in security_events(driver).page(driver.key(user.identity_number), None, 100).events]
    assert kinds.count("totp-removed") == 1
    told = wait_for(
        lambda: [m["message"] for m in driver.local.outbox.snapshot()["sms"] if m["to"] == "+4793217654"],
        lambda texts: len([text for text in texts if "utentiseringsapp" in text]) == 2,
    )
    apps = [text for text in told if "utentiseringsapp" in text]
    assert sorted("lagt til" in text for text in apps) == [False, True]  # one added, one removed: each told so


def test_an_app_confirmed_in_place_of_another_is_told_as_replacing_it(driver: LetterDriver) -> None:
    """A second app confirmed while one is the person's replaces it: its codes work no more. That is told,
    in the history and on the person's contacts, as a replacement, not as an app added beside the first
    (the person would go on trying the first, each try a failure towards the lock)."""
    user = enrolled(driver, mobile="93217655")  # a number of its own: the notices to it are this test's
    token = user.login()
    first = app_added(user, token)
    second = app_added(user, token)
    kinds = [e.type.value for e in security_events(driver).page(driver.key(user.identity_number), None, 100).events]
    assert (kinds.count("totp-added"), kinds.count("totp-replaced")) == (1, 1)
    assert kinds.index("totp-replaced") < kinds.index("totp-added")  # newest first
    told = wait_for(
        lambda: [m["message"] for m in driver.local.outbox.snapshot()["sms"] if m["to"] == "+4793217655"],
        lambda texts: len([text for text in texts if "utentiseringsapp" in text]) == 2,
    )
    replaced = [text for text in told if "byttet ut" in text]
    assert len(replaced) == 1
    assert "virker ikke lenger" in replaced[0]
    assert "fjern appen" in replaced[0]
    later = datetime.now(UTC) + timedelta(seconds=30)  # past the steps the confirmations used
    login = body(user.start_login(second_factor="totp"))
    assert user.verify(login["login_id"], pyotp.TOTP(first).at(later)).status == 401
    assert body(user.verify(login["login_id"], pyotp.TOTP(second).at(later)))["amr"] == ["Minid-TOTP"]


def test_an_app_begun_and_removed_or_begun_before_a_password_change_is_not_added_by_its_code(
    driver: LetterDriver,
) -> None:
    """The person shown the QR code changes their mind (204 "removed"), or the password changes (every
    session, and what they began, ended): a code from that app no longer makes it a second factor."""
    user = enrolled(driver)
    token = user.login()
    begun = body(user.call("POST", "/v1/me/totp", token=token))["secret"]
    assert user.call("DELETE", "/v1/me/totp", token=token).status == 204
    refused = user.call("POST", "/v1/me/totp/verify", {"code": pyotp.TOTP(begun).now()}, token=token)
    assert (refused.status, body(refused)["type"]) == (409, "/problems/conflict")
    begun = body(user.call("POST", "/v1/me/totp", token=token))["secret"]
    change = {"current_password": user.password, "new_password": "ny og lang frase"}
    assert user.call("PUT", "/v1/me/password", change, token).status == 204
    user.password = "ny og lang frase"
    token = user.login()
    refused = user.call("POST", "/v1/me/totp/verify", {"code": pyotp.TOTP(begun).now()}, token=token)
    assert (refused.status, body(refused)["type"]) == (409, "/problems/conflict")
    assert account(user).totp_secret is None
    kinds = [e.type.value for e in security_events(driver).page(driver.key(user.identity_number), None, 100).events]
    assert not {"totp-added", "totp-removed"} & set(kinds)


def test_a_login_by_an_app_removed_since_it_began_has_ended_and_counts_no_failure(driver: LetterDriver) -> None:
    """Someone with the password begins a login by the app; the person removes the app meanwhile: what
    they type next is no guess at anything (no failure towards the lock, no try spent), and the login has
    ended, as its answer says."""
    user = enrolled(driver, mobile=None, email="kari@example.no")
    token = user.login(second_factor="pin")
    secret = app_added(user, token)
    login = body(user.start_login())
    assert login["second_factor"] == "totp"
    assert user.call("DELETE", "/v1/me/totp", token=token).status == 204
    later = pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30))
    for _ in range(2):
        ended = user.verify(login["login_id"], later)
        assert (ended.status, body(ended)["detail"]) == (401, "The login has ended. Log in again.")
    assert account(user).failed_logins == 0
    assert user.login(second_factor="pin")


def test_a_login_by_an_app_replaced_since_it_began_has_ended_and_counts_no_failure(driver: LetterDriver) -> None:
    """As removed: the person adds another app in its place meanwhile. The old app's code is no guess at the
    new app's, and the new app's code does not complete a login begun for the old one."""
    user = enrolled(driver, mobile=None, email="kari@example.no")
    token = user.login(second_factor="pin")
    old = app_added(user, token)
    logins = [body(user.start_login()) for _ in range(2)]
    assert {login["second_factor"] for login in logins} == {"totp"}
    new = app_added(user, token)
    later = datetime.now(UTC) + timedelta(seconds=30)
    for login, code in zip(logins, (pyotp.TOTP(old).at(later), pyotp.TOTP(new).at(later)), strict=True):
        for _ in range(2):
            ended = user.verify(login["login_id"], code)
            assert (ended.status, body(ended)["detail"]) == (401, "The login has ended. Log in again.")
    assert account(user).failed_logins == 0
    again = body(user.start_login())  # a login begun now is the new app's
    assert user.verify(again["login_id"], pyotp.TOTP(new).at(later)).status == 200


def test_a_person_the_register_has_no_given_name_for_adds_an_app_named_minid(driver: LetterDriver) -> None:
    """The app shows "MinID (<first given name>)"; a register entry with a family name only was a 500,
    after the pending secret was written."""
    user = enrolled(driver)
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["PopulationRegisterTable"],
        Key={"pk": {"S": driver.key(user.identity_number)}},
        UpdateExpression="SET given_name = :none",
        ExpressionAttributeValues={":none": {"S": ""}},
    )
    added = user.call("POST", "/v1/me/totp", token=user.login())
    assert added.status == 201, body(added)
    assert body(added)["otpauth_uri"].startswith("otpauth://totp/MinID:MinID?")


def test_a_code_of_an_app_replaced_while_the_login_was_judged_is_refused(driver: LetterDriver) -> None:
    """The completion holds only for the app the code was checked against: a later step of the old app,
    checked before another app was confirmed in its place, no longer logs in."""
    user = enrolled(driver, mobile=None, email="kari@example.no")
    token = user.login(second_factor="pin")
    old = app_added(user, token)
    login = body(user.start_login())
    assert login["second_factor"] == "totp"

    def replaced_meanwhile() -> None:
        app_added(user, token)

    later = pyotp.TOTP(old).at(datetime.now(UTC) + timedelta(seconds=30))  # a step after the confirmed one
    verify_after(driver, replaced_meanwhile, login["login_id"], later)


def test_an_app_s_code_sent_to_two_logins_at_once_is_used_by_one_and_leaves_the_other_open(
    driver: LetterDriver,
) -> None:
    """Two logins, one code (two tabs): the one whose completion comes second is told the code was used,
    as it would be told one after the other; its login stays open, with no try spent and no failure (the
    app's next code, 30 seconds on, would complete it)."""
    user = enrolled(driver, mobile=None, email="kari.to.faner@example.no")
    token = user.login(second_factor="pin")
    secret = app_added(user, token)
    first, second = body(user.start_login()), body(user.start_login())
    code = pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30))  # a step after the confirmed one

    def other_tab() -> None:
        assert user.verify(first["login_id"], code).status == 200

    verify_after(driver, other_tab, second["login_id"], code, refused="used already")
    assert account(user).failed_logins == 0
    stored = stored_login(driver, second["login_id"])
    assert (stored["status"], stored["tries"]) == ("pending", 0)


def test_an_app_s_code_sent_twice_at_once_to_one_login_tells_the_second_the_login_has_ended(
    driver: LetterDriver,
) -> None:
    """A double click: the first completes the login; the second, its code used by its own login, is told
    the login has ended (not to wait for the app's next code)."""
    user = enrolled(driver, mobile=None, email="kari.dobbeltklikk@example.no")
    secret = app_added(user, user.login(second_factor="pin"))
    login = body(user.start_login())
    code = pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30))

    def the_first_click() -> None:
        assert user.verify(login["login_id"], code).status == 200

    verify_after(driver, the_first_click, login["login_id"], code, refused="The login has ended")
    assert stored_login(driver, login["login_id"])["status"] == "done"
    assert account(user).failed_logins == 0


def test_a_login_judged_before_a_reset_made_meanwhile_writes_nothing_and_gives_no_session(
    driver: LetterDriver,
) -> None:
    """The verify read the account before a password reset landed (its sessions ended with the epoch):
    its completion's transaction holds for the epoch it read, so the login ends with a 401, its code
    unused and no success in the person's history, not with a token that is dead on arrival."""
    user = enrolled(driver)
    login = body(user.start_login())
    code = user.last_sms_code()

    def succeeded() -> int:
        events = security_events(driver).page(driver.key(user.identity_number), None, 100).events
        return [e.type.value for e in events].count("login-succeeded")

    before = succeeded()

    def reset_meanwhile() -> None:
        reset = body(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}))
        done = {"pin_code": user.codes[str(reset["pin_index"])], "code": user.last_sms_code()}
        reset_to = done | {"new_password": "a reset passphrase of mine"}
        assert user.call("POST", f"/v1/password-resets/{reset['reset_id']}/complete", reset_to).status == 204

    def completing(params: dict[str, Any]) -> bool:  # the transaction that stores the new session
        sessions = driver.local.stack.refs["SessionsTable"]
        return any(item.get("Put", {}).get("TableName") == sessions for item in params["TransactItems"])

    with before_first_aws_call("dynamodb.TransactWriteItems", reset_meanwhile, where=completing):
        services = wiring.login(os.environ)
        with pytest.raises(AuthenticationFailed):
            services.login.verify(login["login_id"], code)
    assert succeeded() == before


def test_the_authenticator_app_is_changed_only_from_a_recent_login(driver: LetterDriver) -> None:
    """As for the contacts: a session taken over must not swap or remove the second factor. Adding,
    confirming and removing the app need a login from the last 15 minutes."""
    user = enrolled(driver)
    clock = MovableClock()
    services = wiring.login(os.environ, clock=clock)
    token = user.login()
    session, account = services.sessions.authenticated(token)
    added = services.credentials.begin_totp(session, account)  # a fresh login may
    clock.advance(timedelta(minutes=16))
    session, account = services.sessions.authenticated(token)  # the session lives on, but is not fresh
    code = pyotp.TOTP(added.secret).at(clock.now())
    with pytest.raises(ReauthenticationRequired):
        services.credentials.confirm_totp(session, account, code)
    with pytest.raises(ReauthenticationRequired):
        services.credentials.begin_totp(session, account)
    with pytest.raises(ReauthenticationRequired):
        services.credentials.remove_totp(session, account)
    assert not services.sessions.authenticated(token)[1].has_totp


def test_the_password_is_changed_only_from_a_recent_login(driver: LetterDriver) -> None:
    """A session left open (a shared computer's) must not guess at the current password (three wrong lock
    the owner out) nor change it: as the app and the contacts, from a login of the last 15 minutes."""
    user = enrolled(driver)
    clock = MovableClock()
    services = wiring.login(os.environ, clock=clock)
    token = user.login()
    clock.advance(timedelta(minutes=16))
    session = services.sessions.authenticate(token)  # the session lives on, but is not fresh
    with pytest.raises(ReauthenticationRequired):
        services.credentials.change_password(session, "ikke det rette passordet", "en helt ny frase her")
    assert account(user).failed_logins == 0  # no guess was judged
    assert user.login()  # the password stands


@pytest.mark.parametrize("change", ["add", "confirm", "remove"])
def test_the_authenticator_app_is_not_changed_by_a_session_ended_meanwhile(driver: LetterDriver, change: str) -> None:
    """The person changes their password (which ends every session) while a session taken over adds,
    confirms or removes an app, its account read: that session's write does not hold, and it is told it
    has ended."""
    user = enrolled(driver)
    services = wiring.login(os.environ)
    token = user.login()
    secret = ""
    if change != "add":
        secret = services.credentials.begin_totp(*services.sessions.authenticated(token)).secret
    if change == "remove":
        services.credentials.confirm_totp(*services.sessions.authenticated(token), pyotp.TOTP(secret).now())
    session, account = services.sessions.authenticated(token)
    before = (account.totp_pending, account.totp_secret)
    new_password = "ei heilt ny frase no"

    def password_changed() -> None:
        changed = {"current_password": user.password, "new_password": new_password}
        assert user.call("PUT", "/v1/me/password", changed, token=user.login()).status == 204

    write = "dynamodb.UpdateItem" if change == "add" else "dynamodb.TransactWriteItems"
    with before_first_aws_call(write, password_changed):
        credentials = wiring.login(os.environ).credentials  # its clients made within
        asked: Callable[[], object] = {
            "add": lambda: credentials.begin_totp(session, account),
            "confirm": lambda: credentials.confirm_totp(session, account, pyotp.TOTP(secret).now()),
            "remove": lambda: credentials.remove_totp(session, account),
        }[change]
        with pytest.raises(SessionEnded):
            asked()
    user.password = new_password
    after = services.sessions.authenticated(user.login())[1]
    # the change wrote nothing; the password change dropped an app begun and kept one confirmed
    assert (after.totp_pending, after.totp_secret) == (None, before[1])
    assert user.call("GET", "/v1/me", token=token).status == 401


def test_a_request_that_runs_out_of_time_after_its_try_was_counted_gives_the_try_back(driver: LetterDriver) -> None:
    """The last call of a password change or a login's verify refused as the invocation's time runs out
    (minid.deadline): a 503, and the count the request made before its judgement given back (refused in
    turn, three such requests would have locked the account)."""
    user = enrolled(driver)
    login = body(user.start_login())
    code = user.last_sms_code()
    session = wiring.login(os.environ).sessions.authenticate(user.login())
    sessions = driver.local.stack.refs["SessionsTable"]
    requests: list[tuple[str, Callable[[Any], object], Callable[[dict[str, Any]], bool]]] = [
        (  # each one's last call is its transaction
            "change",
            lambda it: it.credentials.change_password(session, PASSWORD, "a new passphrase of mine"),
            transaction_updating("SET password_hash = :hash"),
        ),
        ("verify", lambda it: it.login.verify(login["login_id"], code), transaction_putting(sessions)),
    ]
    for what, request, writing in requests:
        with deadline.within(LambdaContext("LoginFunction", 512, 60)), contextlib.ExitStack() as late:
            run_out = lambda: late.enter_context(deadline.within(LambdaContext("LoginFunction", 512, 0)))  # noqa: E731
            with before_first_aws_call("dynamodb.TransactWriteItems", run_out, where=writing):
                services = wiring.login(os.environ)
                with pytest.raises(OutOfTime):
                    request(services)
        assert account(user).failed_logins == 0, what
    tries = driver.dynamodb.get_item(
        TableName=driver.local.stack.refs["ChallengesTable"], Key=to_item({"pk": f"login#{login['login_id']}"})
    )["Item"]["tries"]
    assert tries["N"] == "0"
    assert user.verify(login["login_id"], code).status == 200


def test_a_password_change_does_not_undo_a_reset_made_meanwhile(driver: LetterDriver) -> None:
    """The change reads the account, judges the current password and hashes the new one; a reset that
    lands in between stands, and the change (its session ended by the reset) writes nothing."""
    user = enrolled(driver)
    services = wiring.login(os.environ)
    session = services.sessions.authenticate(user.login())

    def reset_meanwhile() -> None:
        reset = body(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}))
        done = {"pin_code": user.codes[str(reset["pin_index"])], "code": user.last_sms_code()}
        reset_to = done | {"new_password": "a reset passphrase of mine"}
        assert user.call("POST", f"/v1/password-resets/{reset['reset_id']}/complete", reset_to).status == 204

    changing = transaction_updating("SET password_hash = :hash")  # the change's write
    with before_first_aws_call("dynamodb.TransactWriteItems", reset_meanwhile, where=changing):
        services = wiring.login(os.environ)
        with pytest.raises(SessionEnded):  # the 401 says invalid_token
            services.credentials.change_password(session, PASSWORD, "a hijacker's passphrase")
    assert user.start_login(password="a reset passphrase of mine").status == 200
    assert user.start_login(password="a hijacker's passphrase").status == 401


def test_a_password_change_whose_session_ended_after_it_was_authenticated_judges_nothing(
    driver: LetterDriver,
) -> None:
    """Two tabs change the password at once: the one whose session the other's change ended is told so
    (invalid_token), and its current password, the old one, is not judged against the new: no failure
    towards the lock, none in the person's history."""
    user = enrolled(driver)
    services = wiring.login(os.environ)
    session = services.sessions.authenticate(user.login())
    other = {"current_password": user.password, "new_password": "den andre fanens frase"}
    assert user.call("PUT", "/v1/me/password", other, user.login()).status == 204
    with pytest.raises(SessionEnded):
        services.credentials.change_password(session, PASSWORD, "denne fanens frase")
    assert account(user).failed_logins == 0
    kinds = [e.type.value for e in security_events(driver).page(driver.key(user.identity_number), None, 100).events]
    assert "login-failed" not in kinds
    assert user.start_login(password="den andre fanens frase").status == 200


def test_a_factor_that_is_not_there_cannot_be_chosen(driver: LetterDriver) -> None:
    user = enrolled(driver, mobile=None, email="ola@example.no")
    for factor in ("sms", "totp"):
        response = user.start_login(second_factor=factor)
        assert response.status == 409
        assert body(response)["type"] == "/problems/conflict"


# ---------------------------------------------------------------------- failures and the lockout
def test_three_wrong_passwords_lock_and_the_right_one_then_fails_alike(driver: LetterDriver) -> None:
    user = enrolled(driver)
    wrong = [user.start_login(password="not my password 1") for _ in range(3)]
    assert {r.status for r in wrong} == {401}
    right = user.start_login()
    assert right.status == 401
    assert (right.body, dict(right.headers)["Content-Type"]) == (wrong[0].body, dict(wrong[0].headers)["Content-Type"])
    assert account(user).locked(account(user).locked_until - timedelta(seconds=1))
    told = wait_for(driver.local.outbox.sms, lambda sms: any("sperret i en time" in m["message"] for m in sms))
    assert told[-1]["to"] == user.mobile


def test_wrong_second_factors_count_toward_the_lock_and_a_success_resets_the_count(driver: LetterDriver) -> None:
    user = enrolled(driver)
    for _ in range(2):
        login = body(user.start_login())
        assert user.verify(login["login_id"], "000000").status == 401
    user.login()  # two failures, then a success
    assert account(user).failed_logins == 0
    for _ in range(2):
        assert user.start_login(password="wrong again here").status == 401
    assert user.login()  # still not locked: the count started again


def test_the_right_password_is_refused_when_a_lock_came_before_its_write(driver: LetterDriver) -> None:
    """The right password judged on the account as read, then the account locked (other attempts) before
    the login's write: the write does not hold, the account is read again, locked: 401, and no login is
    told (the one made for the first read was never written)."""
    user = enrolled(driver)
    services = wiring.login(os.environ)
    begin = services.login._attempts.begin
    locked_until = datetime.now(UTC) + timedelta(hours=1)

    def locked_meanwhile(*args: Any, **kwargs: Any) -> Any:
        driver.dynamodb.update_item(
            TableName=driver.local.stack.refs["UsersTable"],
            Key=to_item({"pk": driver.key(user.identity_number)}),
            UpdateExpression="SET failed_logins = :three, locked_until = :until",
            ExpressionAttributeValues=to_item({":three": 3, ":until": iso(locked_until)}),
        )
        return begin(*args, **kwargs)

    services.login._attempts.begin = locked_meanwhile  # type: ignore[method-assign]
    with pytest.raises(AuthenticationFailed):
        services.login.start(user.identity_number, user.password, None, "203.0.113.10")
    assert account(user).locked(datetime.now(UTC))  # as the other attempts left it


@pytest.mark.parametrize("answer", ["409", "429"])
def test_a_right_password_s_other_answers_are_refused_when_a_lock_came_before_its_write(
    driver: LetterDriver, answer: str
) -> None:
    """A right password's 409 (a factor the person lacks) and its 429 (the client's codes used up) tell it
    right, as a login begun does: they too are told only if the account was still as read (not locked by
    other attempts meanwhile, a burst's wrong passwords). Else, in a burst, they would tell which password
    of many is right after the lock, where every other gets the 401 of a wrong one."""
    user = enrolled(driver)
    client = "203.0.113.10"
    if answer == "429":
        fill_counters(driver, "codes-sent", client, 3600, 10_000)
    factor = SecondFactor.TOTP if answer == "409" else SecondFactor.SMS
    told = SecondFactorUnavailable if answer == "409" else RateLimited
    with pytest.raises(told):  # without the lock
        wiring.login(os.environ).login.start(user.identity_number, user.password, factor, client)

    locked_meanwhile = partial(lock_for_an_hour, user)

    with before_first_aws_call("dynamodb.TransactWriteItems", locked_meanwhile) as outcomes:
        services = wiring.login(os.environ)
        with pytest.raises(DomainError) as refused:
            services.login.start(user.identity_number, user.password, factor, client)
    assert type(refused.value) is AuthenticationFailed
    assert outcomes[0] == "TransactionCanceledException"  # the judgement's write, on the account as read
    history = security_events(driver).page(driver.key(user.identity_number), None, 100).events
    assert [e.detail.get("reason") for e in history if e.type is SecurityEventType.LOGIN_FAILED] == ["locked"]


def test_attempts_at_a_locked_account_are_told_in_its_history_once_an_hour(driver: LetterDriver) -> None:
    """Anyone giving the number may try a locked account, from many addresses: each try is refused and
    counted to its client, but told in the person's history once an hour, or the history would be buried
    (an intruder's login far down it). Right or wrong, the answer is the same 401."""
    user = enrolled(driver)
    lock_for_an_hour(user)
    clock = MovableClock()
    login = wiring.login(os.environ, clock=clock).login
    person = driver.key(user.identity_number)

    def told() -> list[str]:
        events = security_events(driver).page(person, None, 100).events
        return [str(e.detail.get("reason")) for e in events if e.type is SecurityEventType.LOGIN_FAILED]

    with calls_made("dynamodb.TransactWriteItems", lambda _: True) as writes:
        login = wiring.login(os.environ, clock=clock).login  # (its clients made within: watched)
        for number, password in enumerate([PASSWORD, "ikke mitt passord", PASSWORD, "heller ikke dette"]):
            with pytest.raises(AuthenticationFailed):
                login.start(user.identity_number, password, None, f"198.51.100.{number + 1}")
    assert told() == ["locked"]
    # one write a try, as an unknown number's: told this hour is read with the rest, for every number alike
    assert writes == ["made"] * 4
    clock.advance(timedelta(hours=1))  # the next hour's window (the account locked again meanwhile)
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["UsersTable"],
        Key=to_item({"pk": person}),
        UpdateExpression="SET locked_until = :until",
        ExpressionAttributeValues=to_item({":until": iso(clock.now() + timedelta(hours=1))}),
    )
    for number in range(2):
        with pytest.raises(AuthenticationFailed):
            login.start(user.identity_number, "ikke mitt passord", None, f"198.51.100.{number + 10}")
    assert told() == ["locked", "locked"]

    # two at once, both reading it untold: the one whose write comes second counts its try alone
    clock.advance(timedelta(hours=1))
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["UsersTable"],
        Key=to_item({"pk": person}),
        UpdateExpression="SET locked_until = :until",
        ExpressionAttributeValues=to_item({":until": iso(clock.now() + timedelta(hours=1))}),
    )
    window = int(clock.now().timestamp()) // 3600 * 3600
    told_meanwhile = partial(
        driver.dynamodb.put_item,
        TableName=driver.local.stack.refs["ChallengesTable"],
        Item=to_item({"pk": f"rate#locked-told#{driver.local.keyer.client_key(person)}#{window}", "hits": 1}),
    )
    with before_first_aws_call("dynamodb.TransactWriteItems", told_meanwhile) as outcomes:
        racing = wiring.login(os.environ, clock=clock).login
        with pytest.raises(AuthenticationFailed):
            racing.start(user.identity_number, "ikke mitt passord", None, "198.51.100.20")
    assert outcomes == ["TransactionCanceledException", "made"]  # the try counted all the same
    assert told() == ["locked", "locked"]


def test_a_judgement_s_write_cancelled_without_reasons_is_made_again(driver: LetterDriver) -> None:
    """A cancelled transaction that names no reasons (DynamoDB may leave them out): the account read again
    and the judgement written again, not a 500 from looking for the account's reason."""
    user = enrolled(driver)
    with injected_faults() as faults:
        faults.add("dynamodb", "TransactWriteItems", code="TransactionCanceledException", status=400, here=True)
        started = wiring.login(os.environ).login.start(user.identity_number, user.password, None, "203.0.113.11")
    assert faults.injected == [("dynamodb", "TransactWriteItems", "TransactionCanceledException")]
    assert started.second_factor is SecondFactor.SMS


def test_the_lock_lifts_after_the_hour(driver: LetterDriver) -> None:
    user = enrolled(driver)
    clock = MovableClock()
    services = wiring.login(os.environ, clock=clock)
    client = "203.0.113.9"
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            services.login.start(user.identity_number, "not my password", None, client)
    with pytest.raises(AuthenticationFailed):
        services.login.start(user.identity_number, user.password, None, client)
    clock.advance(timedelta(minutes=59))
    with pytest.raises(AuthenticationFailed):
        services.login.start(user.identity_number, user.password, None, client)
    clock.advance(timedelta(minutes=2))
    assert services.login.start(user.identity_number, user.password, None, client).second_factor.value == "sms"
    token = user.login()
    types = [e["type"] for e in body(user.call("GET", "/v1/me/events", token=token))["events"]]
    assert "account-unlocked" in types
    assert "account-locked" in types


def test_concurrent_wrong_codes_accept_none_and_count_no_more_than_allowed(driver: LetterDriver) -> None:
    user = enrolled(driver)
    login = body(user.start_login())
    answers: list[int] = []
    together = threading.Barrier(20)

    def guess(code: str) -> None:
        together.wait()
        answers.append(user.verify(login["login_id"], code).status)

    threads = [threading.Thread(target=guess, args=(f"{n:06d}",)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(answers) == 20
    assert set(answers) == {401}
    item = driver.dynamodb.get_item(
        TableName=driver.local.stack.refs["ChallengesTable"], Key=to_item({"pk": f"login#{login['login_id']}"})
    )["Item"]
    assert int(item["tries"]["N"]) == 3
    assert account(user).locked_until is not None  # three failures in a row lock, and no more were judged
    assert user.verify(login["login_id"], user.last_sms_code()).status == 401  # ended, right code or not


def test_two_concurrent_verifies_of_the_right_code_issue_one_session(driver: LetterDriver) -> None:
    user = enrolled(driver)
    login = body(user.start_login())
    code = user.last_sms_code()
    answers: list[int] = []
    threads = [
        threading.Thread(target=lambda: answers.append(user.verify(login["login_id"], code).status)) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200, 401]
    assert len(driver.dynamodb.scan(TableName=driver.local.stack.refs["SessionsTable"])["Items"]) == 1


def test_resend_limits_and_a_resend_never_gives_back_a_try(driver: LetterDriver) -> None:
    user = enrolled(driver)
    login = body(user.start_login())
    key = to_item({"pk": f"login#{login['login_id']}"})
    resend = f"/v1/login/{login['login_id']}/resend"
    assert user.call("POST", resend).status == 429  # not 30 seconds yet
    for _ in range(2):
        assert user.verify(login["login_id"], "000000").status == 401
    for _ in range(3):
        back_date(driver, key)
        assert user.call("POST", resend).status == 202
    back_date(driver, key)
    too_many = user.call("POST", resend)
    assert (too_many.status, too_many.header("retry-after")) == (409, None)  # spent for good: no wait helps
    assert user.verify(login["login_id"], "000000").status == 401  # the third try, after the resends
    assert user.verify(login["login_id"], user.last_sms_code()).status == 401  # ended


def test_no_code_is_resent_with_too_little_of_the_login_left_to_use_it(driver: LetterDriver) -> None:
    """A code sent with seconds of its login left would say "valid for 1 minute" and expire on the way: with
    less than a minute left, none is sent (409, start again); with a minute, it is."""
    user = enrolled(driver)
    clock = MovableClock()
    login = wiring.login(os.environ, clock=clock).login
    started = login.start(user.identity_number, PASSWORD, None, "198.51.100.79")
    sent = len(driver.local.outbox.sms())
    clock.advance(LOGIN_LIFETIME - timedelta(seconds=59))
    with pytest.raises(Conflict, match="Too little time is left"):
        login.resend(started.login_id, "198.51.100.79")
    assert len(driver.local.outbox.sms()) == sent
    clock.advance(timedelta(seconds=-2))  # a minute left (the login kept to the second)
    login.resend(started.login_id, "198.51.100.79")
    assert len(driver.local.outbox.sms()) == sent + 1


def test_a_code_a_resend_replaced_is_told_so_and_is_no_guess(driver: LetterDriver) -> None:
    """The first SMS late, a resend asked for, and the first code then typed (SMS come in any order, and a
    browser fills in the code of the SMS it sees): told to use the last one, with neither a try spent nor a
    failure counted towards the lock; the last code then logs in."""
    user = enrolled(driver, mobile="91234590", email=None)
    login = body(user.start_login())
    first = user.last_sms_code()
    for _ in range(2):  # two resends: the first code and the second both replaced
        back_date(driver, to_item({"pk": f"login#{login['login_id']}"}))
        assert user.call("POST", f"/v1/login/{login['login_id']}/resend").status == 202
    last = user.last_sms_code()
    assert last != first
    for _ in range(4):  # more than the tries there are: none is spent
        replaced = user.verify(login["login_id"], first)
        assert (replaced.status, body(replaced)["detail"]) == (401, REPLACED_CODE)
    assert account(user).failed_logins == 0
    wrong = user.verify(login["login_id"], f"{(int(last) + 1) % 1_000_000:06d}")
    assert (wrong.status, body(wrong)["detail"]) == (401, "The code is wrong or has expired.")
    assert account(user).failed_logins == 1
    assert user.verify(login["login_id"], last).status == 200
    done = stored_login(driver, login["login_id"])
    assert not {"code_hash", "old_code_hashes"} & set(done)  # done: its codes' hashes gone
    other = enrolled(driver, mobile="91234591", email=None)  # no failures yet: its third wrong code ends it
    ended = body(other.start_login())
    back_date(driver, to_item({"pk": f"login#{ended['login_id']}"}))
    assert other.call("POST", f"/v1/login/{ended['login_id']}/resend").status == 202
    assert "old_code_hashes" in stored_login(driver, ended["login_id"])
    for _ in range(3):
        assert other.verify(ended["login_id"], "000000").status == 401
    assert stored_login(driver, ended["login_id"])["status"] == "ended"
    assert not {"code_hash", "old_code_hashes"} & set(stored_login(driver, ended["login_id"]))  # ended: gone too


def test_a_code_resent_whose_answer_never_came_stands_and_one_refused_is_given_back(driver: LetterDriver) -> None:
    """A login's resend: SNS timed out (the SMS may have come), answered 503, and its new code works (given
    back, the code the person was sent would be judged wrong, a failure towards the lock). One SNS refused
    (throttled: not sent) is given back, and the code sent before works."""
    user = enrolled(driver, mobile="91234588", email=None)
    login = body(user.start_login())
    resend = f"/v1/login/{login['login_id']}/resend"
    first = user.last_sms_code()
    back_date(driver, to_item({"pk": f"login#{login['login_id']}"}))
    with injected_faults() as faults:
        faults.add("sns", "Publish", code="Throttling", status=400, here=True)  # not a notice's, meanwhile
        assert user.call("POST", resend).status == 503
    assert user.last_sms_code() == first  # none sent
    with injected_faults() as faults:
        faults.add("sns", "Publish", after="lost", here=True)
        assert user.call("POST", resend).status == 503
    resent = user.last_sms_code()
    assert resent != first
    assert user.verify(login["login_id"], resent).status == 200


@pytest.mark.parametrize(
    ("seconds_left", "status"), [(int(EXEMPT_KEPT_SECONDS) + 4, 503), (math.ceil(EXEMPT_KEPT_SECONDS) + 8, 200)]
)
def test_a_request_s_calls_end_before_the_time_kept_for_the_writes_that_go_out_whatever_the_time(
    driver: LetterDriver, seconds_left: int, status: int
) -> None:
    """The HTTP functions keep EXEMPT_KEPT_SECONDS of their time after a request's deadline for the record
    of a code sent, or a try given back: with less than an attempt (4 s and the margin) left before it, no
    call is sent, and the answer is a 503; with some more, the login goes ahead."""
    user = enrolled(driver)
    body_ = json.dumps({"identity_number": user.identity_number, "password": user.password}).encode()
    request = HttpRequest("POST", "/v1/login", [("Content-Type", "application/json")], body_, "198.51.100.9")
    route, parameters = driver.gateway.match("POST", "/v1/login")
    assert route is not None
    login = driver.local.functions.by_logical_id[route.function]
    answer = login.invoke(payload_v2_event(request, route, parameters), seconds_left)
    assert answer["statusCode"] == status, answer


def test_a_verify_s_own_failure_is_told_though_its_count_s_give_back_fails_too(driver: LetterDriver) -> None:
    """The completion refused for good (a 500: a bug, a role without an action), and the give-back of the
    attempt's count failing after it: the answer and the log are the completion's, not the give-back's
    503, which would hide the fault from its alarm."""
    user = enrolled(driver)
    login = body(user.start_login())
    giving_back = lambda params: "ADD failed_logins :minus" in params.get("UpdateExpression", "")  # noqa: E731
    with injected_faults() as faults:
        faults.add("dynamodb", "TransactWriteItems", code="AccessDeniedException", status=400, here=True)
        faults.add("dynamodb", "UpdateItem", here=True, where=giving_back)  # 503
        answer = user.verify(login["login_id"], user.last_sms_code())
        assert [fault[2] for fault in faults.injected] == ["AccessDeniedException", "ServiceUnavailable"]
    assert answer.status == 500, answer.body


def test_login_codes_that_could_not_be_sent_take_no_place_among_the_limits(driver: LetterDriver) -> None:
    """SNS throttled, or refusing the number, nothing sent: the login's start fails, and the person's ten
    codes an hour, and the client's, are as they were: a short outage must not shut the person out of SMS
    logins for the hour. A resend not sent gives back the person's count, not the client's: each resend's
    wait is given back too, and the client's count is what bounds one looping them while SNS refuses. A
    code whose answer never came (it may have gone) is counted."""
    user = enrolled(driver, mobile="91234592", email=None)
    person = driver.key(user.identity_number)

    def counts() -> tuple[int, int]:
        person_s = counted_hits(driver, "login-codes", person, 3600)
        return person_s, counted_hits(driver, "codes-sent", user.source_ip, 3600)

    in_one_window(3600, 60)
    before = counts()
    with injected_faults() as faults:
        faults.add("sns", "Publish", code="Throttling", status=400, here=True)  # not a notice's, meanwhile
        assert user.start_login().status == 503
    assert counts() == before
    with injected_faults() as faults:
        refused = "Invalid parameter: PhoneNumber Reason: +4791234592 is not valid to publish to"
        faults.add("sns", "Publish", code="InvalidParameter", status=400, message=refused, here=True)
        assert user.start_login().status == 409
    assert counts() == before
    with injected_faults() as faults:
        faults.add("sns", "Publish", after="lost", here=True)
        assert user.start_login().status == 503
    assert counts() == (before[0] + 1, before[1] + 1)
    login = body(user.start_login())
    assert counts() == (before[0] + 2, before[1] + 2)
    back_date(driver, to_item({"pk": f"login#{login['login_id']}"}))
    resend = f"/v1/login/{login['login_id']}/resend"
    with injected_faults() as faults:
        faults.add("sns", "Publish", code="Throttling", status=400, here=True)
        assert user.call("POST", resend).status == 503
    assert counts() == (before[0] + 2, before[1] + 3)
    with injected_faults() as faults:
        faults.add("sns", "Publish", after="lost", here=True)
        assert user.call("POST", resend).status == 503
    assert counts() == (before[0] + 3, before[1] + 4)
    assert user.verify(login["login_id"], user.last_sms_code()).status == 200


def test_a_resend_for_a_login_completed_meanwhile_is_told_the_login_has_ended(driver: LetterDriver) -> None:
    """The resend reads the attempt, then writes its code only to the attempt as read: when the login was
    completed in between, the answer is the 401 of an ended login (it was the 429 of a resend just made,
    with a Retry-After for a code that would never come)."""
    user = enrolled(driver)
    clock = MovableClock()
    login = body(user.start_login())
    code = user.last_sms_code()
    clock.advance(timedelta(seconds=31))
    sent = len(driver.local.outbox.sms())
    resending = transaction_updating("SET code_hash = :hash")  # the resend's write

    def completed() -> None:  # (should it not be, the test says so, not that the resend sent its code)
        verified = user.verify(login["login_id"], code)
        assert verified.status == 200, (verified.status, verified.body)

    with before_first_aws_call("dynamodb.TransactWriteItems", completed, where=resending):
        services = wiring.login(os.environ, clock=clock)  # its resend's write: the new code, on the attempt
        with pytest.raises(AuthenticationFailed, match="The login has ended"):
            services.login.resend(login["login_id"], "198.51.100.7")
    assert len(driver.local.outbox.sms()) == sent


@pytest.mark.parametrize(
    "meanwhile",
    [
        "ADD session_epoch :one",  # the password reset (or the person enrolled again): the login cannot end well
        "SET locked_until = :until",  # locked by wrong passwords of others
    ],
)
def test_a_resend_after_the_account_changed_sends_no_code_and_ends_the_login(
    driver: LetterDriver, meanwhile: str
) -> None:
    """One who has the password (and a login begun) must not have codes sent to the person after the person
    reset it, nor to a locked account."""
    user = enrolled(driver)
    driver.notices_delivered()  # the welcome
    login = body(user.start_login())
    code = user.last_sms_code()
    back_date(driver, to_item({"pk": f"login#{login['login_id']}"}))
    values = {":one": 1, ":until": iso(datetime.now(UTC) + timedelta(hours=1))}
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["UsersTable"],
        Key=to_item({"pk": driver.key(user.identity_number)}),
        UpdateExpression=meanwhile,
        ExpressionAttributeValues=to_item({k: v for k, v in values.items() if k in meanwhile}),
    )
    sent = len(driver.local.outbox.sms())
    refused = user.call("POST", f"/v1/login/{login['login_id']}/resend")
    assert refused.status == 401
    assert "The login has ended" in body(refused)["detail"]
    assert len(driver.local.outbox.sms()) == sent
    assert "The login has ended" in body(user.verify(login["login_id"], code))["detail"]


def test_a_code_judged_while_the_account_was_locked_makes_no_session(driver: LetterDriver) -> None:
    """The code is judged on the account as read; another's wrong password locks it before the login's
    write: the write does not hold, and no session is made for a locked account."""
    user = enrolled(driver)
    login = body(user.start_login())
    code = user.last_sms_code()

    locked_meanwhile = partial(lock_for_an_hour, user)

    completing = transaction_updating("SET #status = :done REMOVE code_hash")  # the login's write
    with before_first_aws_call("dynamodb.TransactWriteItems", locked_meanwhile, where=completing):
        services = wiring.login(os.environ)
        with pytest.raises(AuthenticationFailed):
            services.login.verify(login["login_id"], code)
    assert account(user).locked(datetime.now(UTC))
    kinds = [e.type.value for e in security_events(driver).page(driver.key(user.identity_number), None, 100).events]
    assert "login-succeeded" not in kinds


def back_date(driver: LetterDriver, key: dict[str, Any]) -> None:
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["ChallengesTable"],
        Key=key,
        UpdateExpression="SET codes_sent_at = :then",
        ExpressionAttributeValues=to_item({":then": iso(datetime.now(UTC) - timedelta(seconds=31))}),
    )


def codes_counted(driver: LetterDriver, user: User) -> int:
    """The client's codes sent counted, over its windows."""
    prefix = f"rate#codes-sent#{driver.local.keyer.client_key(user.source_ip)}#"
    rows = driver.dynamodb.scan(TableName=driver.local.stack.refs["ChallengesTable"])["Items"]
    return sum(int(row["hits"]["N"]) for row in rows if row["pk"]["S"].startswith(prefix))


def test_a_resend_goes_to_the_number_the_code_went_to_while_it_is_still_verified(driver: LetterDriver) -> None:
    user = enrolled(driver)
    driver.notices_delivered()  # the welcome
    login = body(user.start_login())
    key = to_item({"pk": f"login#{login['login_id']}"})
    stored = driver.dynamodb.get_item(TableName=driver.local.stack.refs["ChallengesTable"], Key=key)["Item"]
    assert "+4791234567" not in json.dumps(stored)  # the number is sealed
    back_date(driver, key)
    sent, counted = len(driver.local.outbox.sms()), codes_counted(driver, user)
    assert user.call("POST", f"/v1/login/{login['login_id']}/resend").status == 202
    assert driver.local.outbox.sms()[-1]["to"] == "+4791234567"
    assert (len(driver.local.outbox.sms()), codes_counted(driver, user)) == (sent + 1, counted + 1)

    # the number taken off the register (as by a contact change) before the next resend: none is sent
    contacts = driver.local.stack.refs["ContactRegisterTable"]
    driver.dynamodb.update_item(
        TableName=contacts,
        Key=to_item({"pk": driver.key(user.identity_number)}),
        UpdateExpression="REMOVE mobile_verified_at",
    )
    back_date(driver, key)
    refused = user.call("POST", f"/v1/login/{login['login_id']}/resend")
    assert (refused.status, body(refused)["type"]) == (409, "/problems/conflict")
    assert "Log in again" in body(refused)["detail"]
    assert (len(driver.local.outbox.sms()), codes_counted(driver, user)) == (sent + 1, counted + 1)
    again = driver.dynamodb.get_item(TableName=driver.local.stack.refs["ChallengesTable"], Key=key)["Item"]
    assert again["resends"]["N"] == "1"


def test_a_resend_past_the_clients_limit_is_refused_and_writes_nothing(driver: LetterDriver) -> None:
    user = enrolled(driver)
    driver.notices_delivered()  # the welcome
    login = body(user.start_login())
    key = to_item({"pk": f"login#{login['login_id']}"})
    hour = int(datetime.now(UTC).timestamp()) // 3600 * 3600
    client = driver.local.keyer.client_key(user.source_ip)
    for window in (hour, hour + 3600):
        driver.dynamodb.put_item(
            TableName=driver.local.stack.refs["ChallengesTable"],
            Item=to_item({"pk": f"rate#codes-sent#{client}#{window}", "hits": 10_000, "expires_at": window + 7200}),
        )
    back_date(driver, key)
    sent = len(driver.local.outbox.sms())
    refused = user.call("POST", f"/v1/login/{login['login_id']}/resend")
    assert (refused.status, body(refused)["type"]) == (429, "/problems/rate-limited")
    assert body(refused)["detail"] == "Too many requests from this client."
    assert len(driver.local.outbox.sms()) == sent
    stored = driver.dynamodb.get_item(TableName=driver.local.stack.refs["ChallengesTable"], Key=key)["Item"]
    assert stored["resends"]["N"] == "0"
    assert user.verify(login["login_id"], user.last_sms_code()).status == 200  # the first code still holds


def test_a_resend_whose_write_is_retried_after_its_answer_was_lost_sends_its_code(driver: LetterDriver) -> None:
    """The resend's transaction made and its answer lost, the SDK's retry refused (the write, made, moved
    the count on; DynamoDB would take a retry within ten minutes as the same, by its request token, and
    moto does not): that is the resend's own write, not another's. Its code is sent and works, not a 429
    with a code written that nobody received and the one the person held replaced."""
    user = enrolled(driver)
    driver.notices_delivered()  # the welcome
    login = body(user.start_login())
    back_date(driver, to_item({"pk": f"login#{login['login_id']}"}))
    sent = len(driver.local.outbox.sms())
    with injected_faults() as faults:
        faults.add(
            "dynamodb", "TransactWriteItems", after="retried", here=True, where=transaction_updating("code_hash")
        )
        assert user.call("POST", f"/v1/login/{login['login_id']}/resend").status == 202
        assert faults.injected == [("dynamodb", "TransactWriteItems", "retried")]
    assert len(driver.local.outbox.sms()) == sent + 1
    assert user.verify(login["login_id"], user.last_sms_code()).status == 200


def test_a_resend_whose_write_answer_was_lost_gives_the_code_held_back(driver: LetterDriver) -> None:
    """The resend's transaction made, and its answer lost with no retry in time: its code will never be
    sent. The resend is given back: the code the person holds works again (not "replaced by a newer one"
    that never came), no resend is spent, and the person's code count neither (the client's stays, as for a
    send that failed)."""
    user = enrolled(driver, mobile="93456704")
    person = driver.key(user.identity_number)
    driver.notices_delivered()  # the welcome
    login = body(user.start_login())
    held = user.last_sms_code()
    back_date(driver, to_item({"pk": f"login#{login['login_id']}"}))
    sent = len(driver.local.outbox.sms())
    with injected_faults() as faults:
        faults.add("dynamodb", "TransactWriteItems", after="lost", here=True, where=transaction_updating("code_hash"))
        assert user.call("POST", f"/v1/login/{login['login_id']}/resend").status == 503
        assert [fault[2] for fault in faults.injected] == ["lost"]
    assert len(driver.local.outbox.sms()) == sent  # none sent
    assert counted_hits(driver, "login-codes", person, 3600) == 1  # the login's own
    item = driver.dynamodb.get_item(
        TableName=driver.local.stack.refs["ChallengesTable"], Key=to_item({"pk": f"login#{login['login_id']}"})
    )["Item"]
    assert item["resends"] == {"N": "0"}
    assert user.verify(login["login_id"], held).status == 200


@pytest.mark.parametrize("alike", ["code", "time"])
def test_a_resend_s_give_back_takes_nothing_of_a_write_not_made(driver: LetterDriver, alike: str) -> None:
    """A resend's write that failed may not have been made: its give-back then writes nothing, though
    another resend (in another tab) was made meanwhile, its code sent: that code is not undone, though it
    is the same (drawn alike, one in a million: the resends' times tell them apart) or was written in the
    same millisecond (their codes do). Each of the give-back's two conditions is needed."""
    user = enrolled(driver, mobile="93456705" if alike == "code" else "93456706")
    driver.notices_delivered()  # the welcome
    login = body(user.start_login())
    key = to_item({"pk": f"login#{login['login_id']}"})
    back_date(driver, key)
    table = driver.local.stack.refs["ChallengesTable"]

    other: dict[str, str] = {}

    def another_resend_meanwhile(params: dict[str, Any]) -> bool:
        if not transaction_updating("code_hash")(params):
            return False
        ours = params["TransactItems"][0]["Update"]["ExpressionAttributeValues"]
        other["code_hash"] = ours[":hash"]["S"] if alike == "code" else "the other resend's"
        other["codes_sent_at"] = ours[":sent_at"]["S"] if alike == "time" else "2026-01-01T00:00:00+00:00"
        driver.dynamodb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET resends = :one, code_hash = :other, codes_sent_at = :at",
            ExpressionAttributeValues=to_item({":one": 1, ":other": other["code_hash"], ":at": other["codes_sent_at"]}),
        )
        return True

    with injected_faults() as faults:
        faults.add(
            "dynamodb", "TransactWriteItems", code="InternalServerError", status=500, where=another_resend_meanwhile
        )
        assert user.call("POST", f"/v1/login/{login['login_id']}/resend").status == 503
        assert faults.injected
    item = driver.dynamodb.get_item(TableName=table, Key=key)["Item"]
    assert (item["resends"], item["code_hash"]["S"], item["codes_sent_at"]["S"]) == (
        {"N": "1"},
        other["code_hash"],
        other["codes_sent_at"],
    )
    assert counted_hits(driver, "login-codes", driver.key(user.identity_number), 3600) == 1  # the start's: kept


def test_a_resend_overtaken_by_another_that_drew_the_same_code_is_told_to_wait(driver: LetterDriver) -> None:
    """Two resends at once (a double click) that drew the same code: the one whose write is refused reads
    the other's write, its count and its code, and must not take it for its own answer lost (which would
    send the code a second time): it was written at another time. A 429, and one SMS."""
    user = enrolled(driver)
    driver.notices_delivered()  # the welcome
    login = body(user.start_login())
    back_date(driver, to_item({"pk": f"login#{login['login_id']}"}))
    alike = CodesAlike(424242)
    other = wiring.login(os.environ, random=alike)  # the other click's: its clients made before the hook
    sent = len(driver.local.outbox.sms())
    meanwhile = partial(other.login.resend, login["login_id"], "198.51.100.8")
    with before_first_aws_call(
        "dynamodb.TransactWriteItems", meanwhile, where=transaction_updating("code_hash")
    ) as made:
        services = wiring.login(os.environ, random=alike)
        with pytest.raises(RateLimited):
            services.login.resend(login["login_id"], "198.51.100.7")
    assert made == ["TransactionCanceledException"]
    assert len(driver.local.outbox.sms()) == sent + 1
    assert user.last_sms_code() == "424242"
    assert user.verify(login["login_id"], "424242").status == 200


def test_a_resend_refused_for_a_full_counter_while_another_is_on_the_attempt_is_told_the_limit(
    driver: LetterDriver,
) -> None:
    """A cancellation that names the client's full code counter, and another request's transaction on the
    attempt (a double click): the answer is the limit's 429, not "the login has ended" for a login open."""
    user = enrolled(driver)
    driver.notices_delivered()  # the welcome
    login = body(user.start_login())
    back_date(driver, to_item({"pk": f"login#{login['login_id']}"}))
    with injected_faults() as faults:
        transactions_cancelled(faults, "TransactionConflict", "None", "None", "ConditionalCheckFailed")
        refused = user.call("POST", f"/v1/login/{login['login_id']}/resend")
    assert (refused.status, body(refused)["type"]) == (429, "/problems/rate-limited")
    assert user.call("POST", f"/v1/login/{login['login_id']}/resend").status == 202  # the login still open


@pytest.mark.parametrize("on", ["attempt", "counter"])
def test_a_resend_that_meets_another_transaction_is_made_again_and_else_unavailable_for_a_moment(
    driver: LetterDriver, on: str
) -> None:
    """Another request's transaction in flight on the attempt (a resend at the same moment: a double click)
    or on a counter: the resend is made again after a pause (not told the login has ended); while they go
    on, a 503, nothing sent."""
    user = enrolled(driver)
    driver.notices_delivered()  # the welcome
    login = body(user.start_login())
    key = to_item({"pk": f"login#{login['login_id']}"})
    back_date(driver, key)
    conflict = ("TransactionConflict",) if on == "attempt" else ("None", "None", "TransactionConflict")
    sent = len(driver.local.outbox.sms())
    with injected_faults() as faults:
        transactions_cancelled(faults, *conflict)
        assert user.call("POST", f"/v1/login/{login['login_id']}/resend").status == 202
        assert len(faults.injected) == 1
    assert len(driver.local.outbox.sms()) == sent + 1
    login = body(user.start_login())
    key = to_item({"pk": f"login#{login['login_id']}"})
    back_date(driver, key)
    sent = len(driver.local.outbox.sms())
    with injected_faults() as faults:
        transactions_cancelled(faults, *conflict, times=IN_FLIGHT_TRIES)
        busy = user.call("POST", f"/v1/login/{login['login_id']}/resend")
        assert len(faults.injected) == IN_FLIGHT_TRIES
    assert busy.status == 503
    assert "Retry-After" in dict(busy.headers)
    assert len(driver.local.outbox.sms()) == sent
    assert user.call("POST", f"/v1/login/{login['login_id']}/resend").status == 202  # tried again


def test_an_attempt_begun_before_attempts_kept_the_number_is_resent_from_the_register(driver: LetterDriver) -> None:
    user = enrolled(driver)
    login = body(user.start_login())
    key = to_item({"pk": f"login#{login['login_id']}"})
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["ChallengesTable"],
        Key=key,
        UpdateExpression="REMOVE mobile_sealed, #l",
        ExpressionAttributeNames={"#l": "language"},
    )
    back_date(driver, key)
    assert user.call("POST", f"/v1/login/{login['login_id']}/resend").status == 202
    assert user.verify(login["login_id"], user.last_sms_code()).status == 200


def test_an_unknown_person_and_a_wrong_password_get_the_same_answer(driver: LetterDriver) -> None:
    user = enrolled(driver)
    unknown = compose_identity_number(date(1975, 5, 5), 222, synthetic=True)
    no_minid = driver.person(Category.ADULT).identity_number
    answers = [
        user.start_login(password="wrong password here"),
        user.call("POST", "/v1/login", {"identity_number": unknown, "password": "whatever it is"}),
        user.call("POST", "/v1/login", {"identity_number": no_minid, "password": "whatever it is"}),
    ]
    assert {(a.status, a.body) for a in answers} == {(401, answers[0].body)}


def test_an_unknown_person_s_count_meeting_a_transaction_gets_the_same_answer(driver: LetterDriver) -> None:
    """A wrong password's hits are counted in its judgement's transaction, read again and written again
    when another transaction writes a counter (TransactionConflict); an unknown number's hit, counted
    alone, is made again likewise: it was a 503 where an account's was a 401."""
    user = enrolled(driver)
    unknown = compose_identity_number(date(1975, 5, 5), 223, synthetic=True)
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", code="TransactionConflictException", status=400, times=2)
        answer = user.call("POST", "/v1/login", {"identity_number": unknown, "password": "whatever it is"})
        conflicts = [fault[2] for fault in faults.injected]
    with injected_faults() as faults:
        transactions_cancelled(faults, "None", "TransactionConflict")
        wrong = user.start_login(password="wrong password here")
    assert (answer.status, answer.body) == (wrong.status, wrong.body) == (401, wrong.body)
    assert conflicts == ["TransactionConflictException"] * 2


def test_one_client_cannot_spray_many_accounts(driver: LetterDriver) -> None:
    """Each a valid number (no MinID behind it: the same 401 as a wrong password), a new one each time:
    the client's 30 a minute (the template's default) are judged, the 31st is refused before any hash."""
    user = enrolled(driver)
    user.source_ip = "192.0.2.66"
    numbers = [n for i in range(300, 340) if (n := compose_identity_number(date(1975, 6, 1), i, synthetic=True))]
    in_one_window(60, needed_seconds=20)  # all 31 in one minute's count
    answers = [user.call("POST", "/v1/login", {"identity_number": n, "password": "x"}) for n in numbers[:31]]
    assert [a.status for a in answers] == [401] * 30 + [429]
    assert int(answers[-1].header("retry-after") or 0) > 0
    user.source_ip = "192.0.2.67"  # another client is not held back
    assert user.start_login().status == 200


# ---------------------------------------------------------------------- sessions
def test_logout_ends_the_session(driver: LetterDriver) -> None:
    user = enrolled(driver)
    token = user.login()
    assert user.call("POST", "/v1/logout", token=token).status == 204
    gone = user.call("GET", "/v1/me", token=token)
    assert gone.status == 401
    assert gone.header("www-authenticate") == 'Bearer realm="MinID", error="invalid_token"'  # RFC 6750
    none = user.call("GET", "/v1/me")
    assert (none.status, none.header("www-authenticate")) == (401, 'Bearer realm="MinID"')  # no token: no error
    never = user.call("GET", "/v1/me", token="x" * 43)
    assert (never.status, never.header("www-authenticate")) == (401, 'Bearer realm="MinID", error="invalid_token"')
    for odd in ("tøken", "x\ud800"):  # no token of ours: ended, not a fault (one that cannot be encoded)
        with pytest.raises(SessionEnded):
            wiring.login(os.environ).sessions.authenticate(odd)
    assert user.call("POST", "/v1/logout", token=token).status == 401  # again: ended already
    history = body(user.call("GET", "/v1/me/events", token=user.login()))["events"]
    assert [e["type"] for e in history].count("logged-out") == 1  # in the person's own history, once


def test_a_wrong_code_or_password_given_in_a_session_is_told_apart_from_an_ended_session(
    driver: LetterDriver,
) -> None:
    """A client drops its token at invalid_token (RFC 6750), and only then: a typo must not log out."""
    user = enrolled(driver)
    token = user.login()
    change = {"current_password": "ikke det rette passordet", "new_password": "en helt ny frase her"}
    wrong = user.call("PUT", "/v1/me/password", change, token=token)
    assert (wrong.status, wrong.header("www-authenticate")) == (401, 'Bearer realm="MinID"')
    assert user.call("GET", "/v1/me", token=token).status == 200  # the session lives on


def test_sessions_end_after_30_idle_minutes_and_after_2_hours_in_use(driver: LetterDriver) -> None:
    user = enrolled(driver)
    clock = MovableClock()
    services = wiring.login(os.environ, clock=clock)
    started = services.login.start(user.identity_number, user.password, None, "203.0.113.10")
    issued = services.login.verify(started.login_id, user.last_sms_code())

    clock.advance(timedelta(minutes=29))
    services.sessions.authenticate(issued.token)  # in use: the idle clock starts again
    clock.advance(timedelta(minutes=29))
    services.sessions.authenticate(issued.token)
    clock.advance(timedelta(minutes=31))
    with pytest.raises(Unauthenticated):
        services.sessions.authenticate(issued.token)  # idle too long

    started = services.login.start(user.identity_number, user.password, None, "203.0.113.10")
    issued = services.login.verify(started.login_id, user.last_sms_code())
    clock.advance(timedelta(seconds=59))
    services.sessions.authenticate(issued.token)  # a use too soon after the last to be recorded
    clock.advance(timedelta(minutes=29))
    services.sessions.authenticate(issued.token)  # 29 idle minutes after the last use recorded: in use, recorded
    clock.advance(timedelta(minutes=30))
    with pytest.raises(Unauthenticated):
        services.sessions.authenticate(issued.token)  # never more than 30 idle minutes

    started = services.login.start(user.identity_number, user.password, None, "203.0.113.10")
    issued = services.login.verify(started.login_id, user.last_sms_code())
    for _ in range(4):
        clock.advance(timedelta(minutes=29))
        services.sessions.authenticate(issued.token)
    clock.advance(timedelta(minutes=5))
    with pytest.raises(Unauthenticated):
        services.sessions.authenticate(issued.token)  # in use, but past 2 hours


# ---------------------------------------------------------------------- the password
def test_changing_the_password_ends_every_session_and_tells_the_contacts(driver: LetterDriver) -> None:
    user = enrolled(driver)
    token, other = user.login(), user.login(second_factor="pin")
    change = "/v1/me/password"
    assert (
        user.call(
            "PUT", change, {"current_password": "nope nope nope", "new_password": "ei helt annen frase her"}, token
        ).status
        == 401
    )
    weak = user.call("PUT", change, {"current_password": user.password, "new_password": "password"}, token)
    assert (weak.status, body(weak)["type"]) == (422, "/problems/weak-password")
    assert {error["field"] for error in body(weak)["errors"]} == {"new_password"}  # the request's own field
    failures = account(user).failed_logins
    for new in ("", "lang frase " * 200):  # empty or long: the policy's reason too (API.md: weak-password)
        for current in (user.password, "nope nope nope"):  # told first, whatever the current one: no try
            weak = user.call("PUT", change, {"current_password": current, "new_password": new}, token)
            assert (weak.status, body(weak)["type"]) == (422, "/problems/weak-password")
    assert account(user).failed_logins == failures
    done = user.call("PUT", change, {"current_password": user.password, "new_password": "ny og lang frase"}, token)
    assert done.status == 204
    # the same change again (its 204 lost, say): told that the password was changed since the login
    again = user.call("PUT", change, {"current_password": user.password, "new_password": "ny og lang frase"}, token)
    assert (again.status, body(again)["detail"]) == (401, REPLACED_SINCE_LOGIN)
    assert again.header("www-authenticate") == 'Bearer realm="MinID", error="invalid_token"'
    assert user.call("GET", "/v1/me", token=token).status == 401
    ended = user.call("GET", "/v1/me", token=other)
    assert (ended.status, body(ended)["detail"]) == (401, REPLACED_SINCE_LOGIN)
    assert body(user.call("GET", "/v1/me", token=other))["detail"] != REPLACED_SINCE_LOGIN  # deleted: no longer known
    user.password = "ny og lang frase"
    assert user.login()
    wait_for(driver.local.outbox.sms, lambda sms: any("passordet ditt er endret" in m["message"].lower() for m in sms))


def test_a_password_change_while_the_account_is_locked_is_told_so_not_that_the_password_is_wrong(
    driver: LetterDriver,
) -> None:
    """Someone else's wrong passwords locked the account; its owner, logged in before, is told of the lock
    and when to try again (a 429 with Retry-After)."""
    user = enrolled(driver)
    token = user.login()
    for _ in range(3):
        assert user.start_login(password="ikke passordet mitt i det hele tatt").status == 401
    change = {"current_password": user.password, "new_password": "ei helt annen frase her"}
    locked = user.call("PUT", "/v1/me/password", change, token)
    assert (locked.status, body(locked)["type"]) == (429, "/problems/rate-limited")
    assert 3500 < int(dict(locked.headers)["Retry-After"]) <= 3601
    assert "locked" in body(locked)["detail"]
    assert account(user).failed_logins == 0  # and counted nothing (the lock had set it to 0)


@pytest.mark.parametrize("counted_ago", [2 * SETTLED_WITHIN, timedelta(0)])
def test_a_password_change_that_finds_the_count_at_the_threshold_and_no_lock(
    driver: LetterDriver, counted_ago: timedelta
) -> None:
    """Three failures counted and no lock. Longer ago than any request lasts: their lock was not written (a
    fault after the third's judgement); the change's attempt writes it, and tells of it, for an hour. A
    moment ago: three attempts still being judged (another device's login verify, say), which may come
    out right and lock nothing; the owner is asked to try again in a minute, and nothing is locked."""
    user = enrolled(driver)
    token = user.login()
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["UsersTable"],
        Key=to_item({"pk": driver.key(user.identity_number)}),
        UpdateExpression="SET failed_logins = :three, attempt_reserved_at = :counted",
        ExpressionAttributeValues=to_item({":three": 3, ":counted": iso(datetime.now(UTC) - counted_ago)}),
    )
    change = {"current_password": user.password, "new_password": "ei helt annen frase her"}
    refused = user.call("PUT", "/v1/me/password", change, token)
    assert (refused.status, body(refused)["type"]) == (429, "/problems/rate-limited")
    retry_after = int(dict(refused.headers)["Retry-After"])
    if counted_ago:
        assert 3500 < retry_after <= 3601
        assert "locked" in body(refused)["detail"]
        assert account(user).locked_until is not None  # written by the change's attempt
    else:
        assert retry_after <= 61
        assert "being checked" in body(refused)["detail"]
        assert account(user).locked_until is None


def test_a_password_change_meeting_a_re_hash_of_the_same_password_is_made(driver: LetterDriver) -> None:
    """A login re-hashes the password (new Argon2 parameters) between the change's read and its write:
    the password is the same and no session ended, so the change is made, not refused as if changed."""
    user = enrolled(driver)
    session = wiring.login(os.environ).sessions.authenticate(user.login())

    def re_hashed() -> None:
        driver.dynamodb.update_item(
            TableName=driver.local.stack.refs["UsersTable"],
            Key=to_item({"pk": driver.key(user.identity_number)}),
            UpdateExpression="SET password_hash = :again",
            ExpressionAttributeValues=to_item({":again": Argon2PasswordHasher(driver.local.keyer).hash(PASSWORD)}),
        )

    with before_first_aws_call(
        "dynamodb.TransactWriteItems", re_hashed, where=transaction_updating("SET password_hash = :hash")
    ) as outcomes:
        wiring.login(os.environ).credentials.change_password(session, PASSWORD, "ei helt annen frase her")
    assert outcomes == ["made"]
    assert user.start_login(password="ei helt annen frase her").status == 200


def test_a_right_current_password_counts_no_failure(driver: LetterDriver) -> None:
    """Its attempt is counted as failed until the password is judged: a weak new password gives it back,
    and the change sets the count to zero with the new password."""
    user = enrolled(driver)
    token = user.login()
    change = "/v1/me/password"
    assert (
        user.call(
            "PUT", change, {"current_password": "nope nope nope", "new_password": "ei helt annen frase her"}, token
        ).status
        == 401
    )
    for _ in range(3):  # as many as lock the account, were they failures
        weak = user.call("PUT", change, {"current_password": user.password, "new_password": "password"}, token)
        assert (weak.status, body(weak)["type"]) == (422, "/problems/weak-password")
    done = user.call("PUT", change, {"current_password": user.password, "new_password": "ny og lang frase"}, token)
    assert done.status == 204
    account = DynamoDbAccounts(driver.dynamodb, driver.local.stack.refs["UsersTable"]).find(
        driver.key(user.identity_number)
    )
    assert account is not None
    assert (account.failed_logins, account.locked_until) == (0, None)


def test_a_login_begun_before_the_password_changed_cannot_be_finished(driver: LetterDriver) -> None:
    """Someone who had the old password and began a login: the change ends it, right code or not, and
    the owner's account is not charged a failure for it."""
    user = enrolled(driver)
    pending = body(user.start_login(second_factor="pin"))
    token = user.login()
    new_password = {"current_password": user.password, "new_password": "ny og lang frase"}
    assert user.call("PUT", "/v1/me/password", new_password, token).status == 204
    ended = user.verify(pending["login_id"], user.codes[str(pending["pin_index"])])
    assert ended.status == 401
    assert "Log in again" in body(ended)["detail"]
    assert account(user).failed_logins == 0
    assert pending["pin_index"] not in driver.only_letter(user.identity_number).used
    user.password = "ny og lang frase"
    assert user.login(second_factor="pin")  # a login begun after the change is finished


def test_a_forgotten_password_is_reset_with_the_letter_and_a_code(driver: LetterDriver) -> None:
    user = enrolled(driver)
    old_session = user.login()
    started = user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number})
    assert started.status == 201
    reset = body(started)
    assert (reset["second_factor"], reset["expires_in"]) == ("sms", 600)
    complete = f"/v1/password-resets/{reset['reset_id']}/complete"
    pin_code = user.codes[str(reset["pin_index"])]
    wrong = user.call("POST", complete, {"pin_code": pin_code, "code": "000000", "new_password": "ny frase i dag"})
    assert wrong.status == 401
    done = user.call(
        "POST", complete, {"pin_code": pin_code, "code": user.last_sms_code(), "new_password": "ny frase i dag"}
    )
    assert done.status == 204
    assert user.call("GET", "/v1/me", token=old_session).status == 401
    assert user.start_login().status == 401
    user.password = "ny frase i dag"
    assert user.login()
    assert reset["pin_index"] in driver.only_letter(user.identity_number).used
    wait_for(driver.local.outbox.sms, lambda sms: any("PIN-kodebrevet" in m["message"] for m in sms))


def test_a_reset_completed_whose_answer_was_lost_answers_its_retry_as_done(driver: LetterDriver) -> None:
    """The completion's transaction was made and its answer lost (a 503): the client's retry of the same
    request is told it is done, not that the reset has ended; a retry with another code is not."""
    user = enrolled(driver)
    reset = body(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}))
    complete = f"/v1/password-resets/{reset['reset_id']}/complete"
    code = user.last_sms_code()
    done = {"pin_code": user.codes[str(reset["pin_index"])], "code": code, "new_password": "ny frase i dag"}
    with injected_faults() as faults:
        faults.add("dynamodb", "TransactWriteItems", after="lost")
        assert user.call("POST", complete, done).status == 503
        assert faults.injected == [("dynamodb", "TransactWriteItems", "lost")]
    assert user.call("POST", complete, done).status == 204
    other = str((int(code) + 1) % 1_000_000).zfill(6)
    assert user.call("POST", complete, done | {"code": other}).status == 401
    assert user.call("POST", complete, done | {"new_password": "en annen frase i dag"}).status == 401  # not set
    # a done reset's retries are tries too, three at most: else its code, and then the account's password,
    # could be guessed without end by one who learnt its id
    assert user.call("POST", complete, done).status == 401
    user.password = "ny frase i dag"
    assert user.login()
    driver.notices_delivered()
    told = [m for m in driver.local.outbox.sms() if m["to"] == user.mobile and "PIN-kodebrevet" in m["message"]]
    assert len(told) == 1  # told once, however often it was answered


def test_a_reset_completion_waits_out_a_transaction_writing_the_account(driver: LetterDriver) -> None:
    """A login's attempt (or another's) writes the account as the completion holds it: DynamoDB cancels
    with TransactionConflict, which says nothing of the reset. It is made again, not answered 503; one that
    never gets past them is, for a retry."""
    user = enrolled(driver)
    reset = body(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}))
    complete = f"/v1/password-resets/{reset['reset_id']}/complete"
    done = {
        "pin_code": user.codes[str(reset["pin_index"])],
        "code": user.last_sms_code(),
        "new_password": "ny frase i dag",
    }
    in_flight: dict[str, Any] = {
        "service": "dynamodb",
        "operation": "TransactWriteItems",
        "code": "TransactionCanceledException",
        "reasons": ("None", "TransactionConflict", "None", "None", "None"),
        "where": transaction_updating("SET #status = :done, expires_at = :retried_until"),  # the completion's
    }
    with injected_faults() as faults:
        faults.add(**in_flight, times=IN_FLIGHT_TRIES)
        busy = user.call("POST", complete, done)
        assert len(faults.injected) == IN_FLIGHT_TRIES
    assert busy.status == 503, busy.body
    with injected_faults() as faults:
        faults.add(**in_flight)
        assert user.call("POST", complete, done).status == 204
        assert len(faults.injected) == 1
    user.password = "ny frase i dag"
    assert user.login()


def test_a_wrong_last_try_at_once_does_not_end_a_reset_completed_meanwhile(driver: LetterDriver) -> None:
    """A double submit: the right codes complete the reset while a wrong try, its last, is judged; its end
    must leave the reset done, or the retry of the right one (its answer lost) is told the reset ended."""
    user = enrolled(driver)
    reset = body(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}))
    complete = f"/v1/password-resets/{reset['reset_id']}/complete"
    done = {"pin_code": user.codes[str(reset["pin_index"])], "code": user.last_sms_code(), "new_password": "ny frase"}
    assert user.call("POST", complete, done).status == 204
    wiring.login(os.environ).resets._resets.end(reset["reset_id"])  # the wrong last try's end
    assert user.call("POST", complete, done).status == 204


def test_a_done_reset_answers_no_retry_once_it_has_expired(driver: LetterDriver) -> None:
    """Its item outlives its lifetime until DynamoDB's TTL takes it (hours, perhaps days): not its retries."""
    user = enrolled(driver)
    reset = body(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}))
    complete = f"/v1/password-resets/{reset['reset_id']}/complete"
    done = {"pin_code": user.codes[str(reset["pin_index"])], "code": user.last_sms_code(), "new_password": "ny frase"}
    assert user.call("POST", complete, done).status == 204
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["ChallengesTable"],
        Key={"pk": {"S": f"reset#{reset['reset_id']}"}},
        UpdateExpression="SET expires_at = :then",
        ExpressionAttributeValues={":then": {"N": str(int(time.time()) - 1)}},
    )
    assert user.call("POST", complete, done).status == 401


def test_no_one_logs_in_as_a_person_who_has_died(driver: LetterDriver) -> None:
    """The password and the phone of someone who has died, in other hands: answered as a wrong password
    or an unknown person is, with no code sent and no failure counted."""
    user = enrolled(driver, mobile="93456704")
    driver.notices_delivered()  # the welcome
    wrong = user.start_login(password="not my password 1")
    registered_dead(driver, user.identity_number)
    sent = len(driver.local.outbox.sms())
    for factor in (None, "pin"):
        refused = user.start_login(second_factor=factor)
        assert (refused.status, refused.body) == (401, wrong.body)
    assert len(driver.local.outbox.sms()) == sent
    assert account(user).failed_logins == 1  # the wrong password before, and nothing since


def test_a_user_whose_number_was_replaced_logs_in_with_it_still(driver: LetterDriver) -> None:
    """The number replaced by another (a D-number by a fødselsnummer): no new letter and no new user with
    it, but the MinID user made with it is the person's still, and logs in (moving it to the new number is
    the register's feed of changes, which this stack does not have)."""
    user = enrolled(driver, mobile="93456705")
    driver.notices_delivered()  # the welcome
    registered_ceased(driver, user.identity_number)
    assert user.login()


def test_the_password_of_a_person_who_has_died_is_not_reset(driver: LetterDriver) -> None:
    """The letter and the phone of someone who has died, in other hands: no code is sent to their number
    (it may have passed to someone else), the answer is as for anyone, and the right codes reset nothing."""
    user = enrolled(driver, mobile="93217656")  # a number of its own: what is sent to it is this test's
    registered_dead(driver, user.identity_number)
    reset = body(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}))
    assert reset["second_factor"] == "sms"  # as when alive
    driver.notices_delivered(queue_name="CodeQueue")  # its message handled: a decoy's, to no one
    to_them = [m["message"] for m in driver.local.outbox.snapshot()["sms"] if m["to"] == "+4793217656"]
    assert not any("nytt passord" in text for text in to_them)
    pin_code = user.codes[str(reset["pin_index"])]
    refused = user.call(
        "POST",
        f"/v1/password-resets/{reset['reset_id']}/complete",
        {"pin_code": pin_code, "code": user.last_sms_code(), "new_password": "ny frase i dag"},
    )
    assert (refused.status, body(refused)["type"]) == (401, "/problems/authentication-failed")
    assert reset["pin_index"] not in driver.only_letter(user.identity_number).used
    assert user.start_login(password="ny frase i dag").status == 401  # the password is as it was


def test_a_reset_names_the_channel_of_the_person_s_contacts_whether_or_not_their_letter_works(
    driver: LetterDriver,
) -> None:
    """A person with only a verified e-mail: "email", with a letter or, once it is blocked, without one (a
    decoy's channel by the number alone would change as the letter does, and tell that the number has a
    MinID)."""

    def by_number_alone(user: User) -> str:  # a decoy's channel by the number alone (as before the change)
        digest = driver.local.keyer.digest(KeyPurpose.DECOY, driver.key(user.identity_number))
        return "email" if int(digest[:4], 16) % 10 == 0 else "sms"

    user = enrolled(driver, mobile=None, email="kun.epost@example.no")
    while by_number_alone(user) == "email":  # one whose number alone would say otherwise: the test can fail
        user = enrolled(driver, mobile=None, email="kun.epost@example.no")
    assert (
        body(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}))["second_factor"]
        == "email"
    )
    token = user.login(second_factor="pin")
    assert user.call("POST", "/v1/me/pin-letters/block", token=token).status == 200
    for _ in range(3):  # decoys now, each the same
        again = body(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}))
        assert again["second_factor"] == "email"


def test_a_reset_looks_the_same_for_anyone_and_the_same_again(driver: LetterDriver) -> None:
    user = enrolled(driver)
    others = [driver.person(Category.ADULT).identity_number, driver.person(Category.DECEASED).identity_number]
    shapes = set()
    for number in [user.identity_number, *others]:
        first = user.call("POST", "/v1/password-resets", {"identity_number": number})
        again = user.call("POST", "/v1/password-resets", {"identity_number": number})
        assert first.status == again.status == 201
        assert body(first)["second_factor"] == body(again)["second_factor"]
        shapes.add(tuple(sorted(body(first))))
        if number != user.identity_number:
            decoy = f"/v1/password-resets/{body(first)['reset_id']}/complete"
            answer = user.call(
                "POST", decoy, {"pin_code": "123456", "code": "123456", "new_password": "ny frase i dag"}
            )
            assert answer.status == 401
    assert shapes == {("expires_in", "pin_index", "reset_id", "second_factor")}


def test_the_login_codes_sent_to_one_person_are_limited_whoever_asks(driver: LetterDriver) -> None:
    """Someone with the password but not the phone, from many clients: so many SMS codes an hour to the
    person, then 429 before the password is judged (right or wrong alike) and none sent. A code not sent
    counts nothing, and the other second factors still work."""
    user = enrolled(driver, mobile="93456702")
    person = driver.key(user.identity_number)
    driver.notices_delivered()  # the welcome

    def to_mobile() -> list[dict[str, Any]]:
        return [m for m in driver.local.outbox.sms() if m["to"] == user.mobile]

    assert user.start_login().status == 200
    assert user.start_login(second_factor="pin").status == 200
    assert counted_hits(driver, "login-codes", person, 3600) == 1  # the SMS only
    no_mobile = enrolled(driver, mobile=None, email="kari.no.mobile@example.no")
    assert body(no_mobile.start_login())["second_factor"] == "pin"  # the default, with no mobile: no SMS
    assert counted_hits(driver, "login-codes", driver.key(no_mobile.identity_number), 3600) == 0
    sent = len(to_mobile())
    fill_counters(driver, "login-codes", person, 3600, CODES_TO_PERSON_PER_HOUR)
    # a wrong password is the 401 an unknown number gets (API.md: the same 401), not a 429 that would tell
    # anyone giving the number that it has an account that was sent codes
    wrong = {"identity_number": user.identity_number, "password": "not my password 1"}
    unknown = {"identity_number": driver.person(Category.ADULT).identity_number, "password": "not my password 1"}
    for attempt in (wrong, unknown):
        answer = user.call("POST", "/v1/login", attempt, source_ip="198.19.7.1")
        assert (answer.status, body(answer)["type"]) == (401, "/problems/authentication-failed")
    assert account(user).failed_logins == 1
    refused = user.call("POST", "/v1/login", wrong | {"password": PASSWORD}, source_ip="198.19.7.1")
    assert (refused.status, body(refused)["type"]) == (429, "/problems/rate-limited")  # the right password only
    assert body(refused)["detail"] == "Too many codes have been sent to this person this hour."
    assert len(to_mobile()) == sent
    told = [e for e in security_events(driver).page(person, None, 100).events if e.detail.get("reason") == "codes"]
    assert len(told) == 1  # in the person's history: someone had the password, and was refused
    assert user.login(second_factor="pin")


def test_a_login_resend_counts_to_the_person(driver: LetterDriver) -> None:
    user = enrolled(driver, mobile="93456703")
    person = driver.key(user.identity_number)
    login = body(user.start_login())
    back_date(driver, to_item({"pk": f"login#{login['login_id']}"}))
    assert user.call("POST", f"/v1/login/{login['login_id']}/resend").status == 202
    assert counted_hits(driver, "login-codes", person, 3600) == 2
    fill_counters(driver, "login-codes", person, 3600, CODES_TO_PERSON_PER_HOUR)
    back_date(driver, to_item({"pk": f"login#{login['login_id']}"}))
    sent = len(driver.local.outbox.sms())
    refused = user.call("POST", f"/v1/login/{login['login_id']}/resend", source_ip="198.19.7.2")
    assert (refused.status, body(refused)["type"]) == (429, "/problems/rate-limited")
    assert body(refused)["detail"] == "Too many codes have been sent to this person this hour."  # not this client's
    assert len(driver.local.outbox.sms()) == sent
    assert user.verify(login["login_id"], user.last_sms_code()).status == 200  # the last code sent still holds


def test_the_resets_of_one_person_are_limited_whoever_asks_and_whoever_it_is(driver: LetterDriver) -> None:
    """Each start sends a code to the person's mobile or e-mail: so many an hour per person, from any
    number of clients. Counted alike for an enrolled person and anyone else: the limit tells nothing."""
    user = enrolled(driver, mobile="93456701")
    nobody = compose_identity_number(date(1975, 5, 17), 436, synthetic=True) or ""
    before = len([m for m in driver.local.outbox.sms() if m["to"] == user.mobile])
    for number in (user.identity_number, nobody):
        answers = [
            user.call("POST", "/v1/password-resets", {"identity_number": number}, source_ip=f"198.19.5.{n + 1}")
            for n in range(3)
        ]
        assert [a.status for a in answers] == [201] * 3
        assert counted_hits(driver, "reset-codes", driver.key(number), 3600) == 3  # counted for anyone
        fill_counters(driver, "reset-codes", driver.key(number), 3600, CODES_TO_PERSON_PER_HOUR)
        refused = user.call("POST", "/v1/password-resets", {"identity_number": number}, source_ip="198.19.5.99")
        assert refused.status == 429
        assert body(refused)["detail"] == "Too many codes have been sent to this person this hour."  # either
        assert int(refused.header("retry-after") or 0) > 0
    assert len([m for m in driver.local.outbox.sms() if m["to"] == user.mobile]) - before == 3


def test_the_resets_of_one_person_are_limited_a_day_too_whoever_it_is(driver: LetterDriver) -> None:
    """One who has stolen a person's letter has one of its PIN codes, which every reset asks for, and three
    guesses at each reset's code: the hour's limit alone let some 720 guesses a day through. So many a day
    too (RESET_CODES_TO_PERSON_PER_DAY), counted alike for anyone; the hour's count not spent by a refusal."""
    user = enrolled(driver, mobile="93456702")
    nobody = compose_identity_number(date(1975, 5, 17), 438, synthetic=True) or ""
    for number in (user.identity_number, nobody):
        start = {"identity_number": number}
        assert user.call("POST", "/v1/password-resets", start, source_ip="198.19.5.1").status == 201
        assert counted_hits(driver, "reset-codes-day", driver.key(number), 86400) == 1  # counted for anyone
        fill_counters(driver, "reset-codes-day", driver.key(number), 86400, RESET_CODES_TO_PERSON_PER_DAY)
        refused = user.call("POST", "/v1/password-resets", start, source_ip="198.19.5.98")
        assert refused.status == 429
        assert body(refused)["detail"] == "Too many password reset codes have been sent to this person today."
        assert int(refused.header("retry-after") or 0) > 0
        assert counted_hits(driver, "reset-codes", driver.key(number), 3600) == 1  # the hour's given back


@pytest.mark.parametrize("known", [True, False], ids=["enrolled", "anyone"])
def test_a_reset_start_that_queues_no_code_gives_its_counts_back(driver: LetterDriver, known: bool) -> None:
    """AWS briefly down as the reset is stored, or its code sealed: a 503, no code queued, and the person's
    and the client's counts of codes given back, for anyone alike. A code whose queueing failed may be
    queued (its answer lost): it stays counted. The person's limit reached: the client's count given back."""
    user = enrolled(driver)
    number = user.identity_number if known else compose_identity_number(date(1975, 5, 17), 437, synthetic=True) or ""
    client, person = "198.19.6.1", driver.key(number)

    def start() -> HttpResponse:
        return user.call("POST", "/v1/password-resets", {"identity_number": number}, source_ip=client)

    def counts() -> tuple[int, int, int]:
        hour = counted_hits(driver, "reset-codes", person, 3600)
        day = counted_hits(driver, "reset-codes-day", person, 86400)
        return hour, day, counted_hits(driver, "codes-sent", client, 3600)

    storing = lambda params: params["Item"]["pk"]["S"].startswith("reset#")  # noqa: E731
    for service, operation, where in [("dynamodb", "PutItem", storing), ("kms", "Encrypt", None)]:  # then sealed
        with injected_faults() as faults:
            faults.add(service, operation, code="ThrottlingException", status=400, where=where, here=True)
            assert start().status == 503
            assert faults.injected
        assert counts() == (0, 0, 0), operation
    for after in (None, "lost"):
        with injected_faults() as faults:
            faults.add("sqs", "SendMessage", after=after, here=True)
            assert start().status == 503
            assert faults.injected
    assert counts() == (2, 2, 2)
    fill_counters(driver, "reset-codes", person, 3600, CODES_TO_PERSON_PER_HOUR)
    assert start().status == 429
    assert counted_hits(driver, "codes-sent", client, 3600) == 2
    assert counted_hits(driver, "reset-codes-day", person, 86400) == 2  # the hour's refusal counts no day


def test_a_reset_stored_whose_answer_was_lost_starts_and_another_of_its_id_is_refused(driver: LetterDriver) -> None:
    """The reset stored, its answer lost, and the SDK's retry refused as the item is there: that item is this
    very write, and the reset starts (its code sent), not a 500. Another item of the same id (an id drawn
    twice) is still refused."""
    user = enrolled(driver)
    storing = lambda params: params["Item"]["pk"]["S"].startswith("reset#")  # noqa: E731
    with injected_faults() as faults:
        faults.add("dynamodb", "PutItem", after="retried", where=storing, here=True)
        started = user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number})
        assert faults.injected == [("dynamodb", "PutItem", "retried")]
    assert started.status == 201, started.body
    reset = body(started)
    done = {"pin_code": user.codes[str(reset["pin_index"])], "code": user.last_sms_code(), "new_password": "ny frase"}
    assert user.call("POST", f"/v1/password-resets/{reset['reset_id']}/complete", done).status == 204
    resets = DynamoDbPasswordResets(driver.dynamodb, driver.local.stack.refs["ChallengesTable"])
    stored = resets.get(reset["reset_id"]) or pytest.fail("no reset")
    with pytest.raises(ClientError) as refused:
        resets.create(replace(stored, tries=0))
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"


def test_a_reset_ends_after_three_wrong_tries(driver: LetterDriver) -> None:
    user = enrolled(driver)
    reset = body(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}))
    complete = f"/v1/password-resets/{reset['reset_id']}/complete"
    for _ in range(3):
        answer = user.call("POST", complete, {"pin_code": "000000", "code": "000000", "new_password": "ny frase i dag"})
        assert answer.status == 401
    right = {
        "pin_code": user.codes[str(reset["pin_index"])],
        "code": user.last_sms_code(),
        "new_password": "ei helt annen frase her",
    }
    assert user.call("POST", complete, right).status == 401
    history = body(user.call("GET", "/v1/me/events", token=user.login()))["events"]
    failed = [e["detail"] for e in history if e["type"] == "password-reset-failed"]  # in their own history
    assert failed == [{"wrong": "both"}] * 3


def test_a_reset_s_try_given_back_does_not_hand_its_number_out_again(driver: LetterDriver) -> None:
    """Another request's try, claimed before a wrong code's and given back after it (a fault before its
    judgement): the next wrong code is not given the first's number again (the two, in one millisecond,
    would write one event)."""
    user = enrolled(driver)
    reset = body(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}))
    complete = f"/v1/password-resets/{reset['reset_id']}/complete"
    resets = DynamoDbPasswordResets(driver.dynamodb, driver.local.stack.refs["ChallengesTable"])
    assert resets.claim_try(reset["reset_id"], MAX_CODE_TRIES, datetime.now(UTC)) is not None  # the other's
    wrong = {"pin_code": "000000", "code": "000000", "new_password": "ny frase i dag"}
    assert user.call("POST", complete, wrong).status == 401
    resets.refund_try(reset["reset_id"])  # the other's, given back
    assert user.call("POST", complete, wrong).status == 401
    events = security_events(driver).page(driver.key(user.identity_number), None, 100).events
    failed = sorted(e.reference for e in events if e.type is SecurityEventType.PASSWORD_RESET_FAILED)
    assert failed == [f"{reset['reset_id']}:2", f"{reset['reset_id']}:3"]


def test_a_mistyped_sms_code_with_the_right_pin_code_is_no_wrong_guess_at_the_letter(driver: LetterDriver) -> None:
    """Only a wrong PIN code counts against the letter: five mistyped SMS codes over two resets, each
    with the right PIN code, neither block the letter nor tell the person it was guessed at."""
    user = enrolled(driver)
    for tries in (3, 2):
        reset = body(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}))
        complete = f"/v1/password-resets/{reset['reset_id']}/complete"
        mistyped = {"pin_code": user.codes[str(reset["pin_index"])], "code": "000000", "new_password": "ny frase i dag"}
        for _ in range(tries):
            assert user.call("POST", complete, mistyped).status == 401
    assert letter_pin_failures(driver, user) == 0
    wrong_pin = {"pin_code": "000000", "code": user.last_sms_code(), "new_password": "ny frase i dag"}
    assert user.call("POST", complete, wrong_pin).status == 401  # the last try of the second reset
    assert letter_pin_failures(driver, user) == 1
    assert driver.only_letter(user.identity_number).status is LetterStatus.DISPATCHED
    history = body(user.call("GET", "/v1/me/events", token=user.login()))["events"]
    failed = [e["detail"] for e in history if e["type"] == "password-reset-failed"]  # newest first
    assert failed == [{"wrong": "pin-code"}] + [{"wrong": "code"}] * 5  # the first: someone has the phone
    assert "pin-letter-blocked" not in [e["type"] for e in history]


def test_wrong_pin_codes_without_the_code_sent_do_not_block_the_person_s_letter(driver: LetterDriver) -> None:
    """A stranger with the number alone starts resets and guesses: neither code can be told right or wrong
    from the answer, so the guesses are no guesses at the letter. Five of them (once, in seven requests)
    blocked it, and each new letter after it."""
    user = enrolled(driver)
    for tries in (3, 3):
        reset = body(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}))
        complete = f"/v1/password-resets/{reset['reset_id']}/complete"
        for _ in range(tries):
            guess = {"pin_code": "000000", "code": "000000", "new_password": "ny frase i dag"}
            assert user.call("POST", complete, guess).status == 401
    assert letter_pin_failures(driver, user) == 0
    assert driver.only_letter(user.identity_number).status is LetterStatus.DISPATCHED
    assert user.login(second_factor="pin")


def test_a_reset_of_a_letter_guessed_out_but_not_blocked_sends_no_code_and_blocks_it(driver: LetterDriver) -> None:
    """The block after the letter's fifth wrong code was lost: a reset would send a code whose completion
    could never be finished. The start blocks the letter, and the person is told, as a login would, and
    told that no code was sent."""
    user = enrolled(driver)
    assert user.mobile is not None
    driver.notices_delivered()
    letter_id = driver.only_letter(user.identity_number).letter_id
    for _ in range(MAX_PIN_FAILURES_PER_LETTER):
        driver.letters.record_pin_failure(letter_id)
    before = [m["message"] for m in driver.local.outbox.sms() if m["to"] == user.mobile]
    started = user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number})
    assert started.status == 201  # as any start
    blocked = driver.letters.get(letter_id)
    assert blocked is not None
    assert blocked.status is LetterStatus.BLOCKED
    driver.notices_delivered()
    driver.notices_delivered(queue_name="CodeQueue")
    after = [m["message"] for m in driver.local.outbox.sms() if m["to"] == user.mobile]
    told = after[len(before) :]
    assert len(told) == 2  # the block, and that no code was sent
    assert any("sperret" in text for text in told)
    assert any("ingen kode ble sendt" in text for text in told)
    assert not any(re.search(r"\b\d{6}\b", text) for text in told)


def test_an_address_whose_codes_are_used_up_still_lets_in_those_who_need_no_code(driver: LetterDriver) -> None:
    """Many people behind one address (a carrier's NAT, an office) have used up its SMS codes for the hour:
    one whose second factor is the letter is let in without naming it, one who would be sent a code is
    refused (429), and a wrong password is told as wrong."""
    pin_user = enrolled(driver, mobile=None, email="bare.brev@example.no")
    sms_user = enrolled(driver)
    address = "203.0.113.77"
    pin_user.source_ip = sms_user.source_ip = address
    limits = ClientLimits(
        DynamoDbRateCounter(driver.dynamodb, driver.local.stack.refs["ChallengesTable"]), driver.local.keyer
    )
    now = datetime.now(UTC)
    for _ in range(ClientLimitPolicy().codes_sent.max_hits):
        limits.code_sent(address, now)
    started = pin_user.start_login()
    assert started.status == 200, started.body
    assert body(started)["second_factor"] == "pin"
    refused = sms_user.start_login()
    assert refused.status == 429
    assert refused.header("Retry-After")
    assert sms_user.start_login(password="ikke passordet mitt").status == 401


def test_a_reset_without_a_usable_letter_tells_the_person_so_and_sends_no_code(driver: LetterDriver) -> None:
    """The person blocked their letter (or used it up, or their new one is not yet posted): the start is
    answered as any other, and the person is told that no code was sent and why, as a code would be sent
    (to the mobile, else the e-mail), once a day at most, rather than left waiting for one."""
    user = enrolled(driver, email="med.brev@example.no")
    assert user.mobile is not None
    assert user.call("POST", "/v1/me/pin-letters/block", token=user.login(second_factor="pin")).status == 200
    driver.notices_delivered()
    sms_before = len([m for m in driver.local.outbox.sms() if m["to"] == user.mobile])
    mails_before = len([m for m in driver.local.outbox.emails() if "med.brev@example.no" in m["to"]])
    for _ in range(2):  # the second the same day: told once
        started = user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number})
        assert started.status == 201
        assert body(started)["second_factor"] == "sms"  # as when the letter worked
        driver.notices_delivered(queue_name="CodeQueue")
    sms = [m["message"] for m in driver.local.outbox.sms() if m["to"] == user.mobile][sms_before:]
    assert len(sms) == 1
    assert "ingen kode ble sendt" in sms[0]
    assert not re.search(r"\b\d{6}\b", sms[0])
    assert len([m for m in driver.local.outbox.emails() if "med.brev@example.no" in m["to"]]) == mails_before


def reset_started_sealed(user: User, client: str) -> tuple[PasswordReset, Notice]:
    """A reset started, and the notice it queued, whose recipients were sealed under its id (their KMS
    encryption context's owner, which CloudTrail records)."""
    contexts: list[dict[str, str]] = []
    queued: list[str] = []
    handlers = (
        ("before-parameter-build.kms.Encrypt", lambda params, **_: contexts.append(params["EncryptionContext"])),
        ("before-parameter-build.sqs.SendMessage", lambda params, **_: queued.append(params["MessageBody"])),
    )
    with on_functions_clients(*handlers):
        reset = wiring.login(os.environ).resets.start(user.identity_number, client)
    (notice,) = [notice_from_json(body) for body in queued]
    assert [context["owner"] for context in contexts] == [notice.notice_id]
    return reset, notice


def test_a_reset_without_a_usable_letter_seals_its_notice_under_no_pseudonym_of_the_person(
    driver: LetterDriver,
) -> None:
    """The notice's id is its sealed recipients' KMS encryption context, which CloudTrail records: it
    names neither the person nor their key, as a code's (a random reset id) does not."""
    user = enrolled(driver, mobile="91234574")
    assert user.call("POST", "/v1/me/pin-letters/block", token=user.login(second_factor="pin")).status == 200
    person = driver.key(user.identity_number)
    _, notice = reset_started_sealed(user, "198.51.100.7")
    assert notice.kind is NoticeKind.PASSWORD_RESET_NO_LETTER
    assert person not in notice.notice_id
    assert user.identity_number not in notice.notice_id


def test_a_reset_s_code_is_sealed_under_no_id_that_could_end_the_reset(driver: LetterDriver) -> None:
    """Nor is a code's notice sealed under its reset's id: a reader of CloudTrail could end a live reset
    with three wrong completions. Its id is a keyed digest of the reset's."""
    user = enrolled(driver, mobile="91234575")
    reset, notice = reset_started_sealed(user, "198.51.100.8")
    assert notice.kind is NoticeKind.PASSWORD_RESET_CODE
    assert reset.reset_id not in notice.notice_id
    assert driver.key(user.identity_number) not in notice.notice_id
    driver.notices_delivered(queue_name="CodeQueue")  # the notifier opens it under that id, and the code comes
    completion = {"pin_code": user.enrolling.codes[str(reset.pin_index)], "code": user.last_sms_code()}
    done = user.call(
        "POST", f"/v1/password-resets/{reset.reset_id}/complete", completion | {"new_password": "en helt ny frase"}
    )
    assert done.status == 204, done.body


def test_a_reset_without_a_usable_letter_tells_no_stale_contact(driver: LetterDriver) -> None:
    """Stale contacts are not used for notices (API.md): the number may have passed to someone else, who
    would learn that this person has no letter to reset their password with."""
    user = enrolled(driver)
    assert user.mobile is not None
    assert user.call("POST", "/v1/me/pin-letters/block", token=user.login(second_factor="pin")).status == 200
    driver.notices_delivered()
    person = driver.key(user.identity_number)
    contacts = DynamoDbContactRegister(driver.dynamodb, driver.local.stack.refs["ContactRegisterTable"])
    record = contacts.find(person)
    assert record is not None
    aged = replace(record, updated_at=datetime.now(UTC) - STALE_AFTER - timedelta(days=1), confirmed_at=None)
    driver.dynamodb.put_item(TableName=driver.local.stack.refs["ContactRegisterTable"], Item=contact_item(person, aged))
    before = len([m for m in driver.local.outbox.sms() if m["to"] == user.mobile])
    assert user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}).status == 201
    driver.notices_delivered(queue_name="CodeQueue")
    assert len([m for m in driver.local.outbox.sms() if m["to"] == user.mobile]) == before


def letter_pin_failures(driver: LetterDriver, user: User) -> int:
    """The wrong guesses counted against the person's letter."""
    letter = driver.letters.get(driver.only_letter(user.identity_number).letter_id)
    assert letter is not None
    return letter.pin_failures


@pytest.mark.parametrize("overtaken", ["before its write", "before its read"])
def test_a_reset_completion_overtaken_by_the_same_one_is_done_and_no_wrong_guess(
    driver: LetterDriver, overtaken: str
) -> None:
    """The same completion sent twice (a double click, a retry at once): the one overtaken, whether it
    read the letter before the other's write or after it, is answered as done, and its right PIN code
    used by the other counts no wrong guess against the letter."""
    user = enrolled(driver)
    reset = body(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}))
    right = {"pin_code": user.codes[str(reset["pin_index"])], "code": user.last_sms_code()}
    new_password = "ei ny og lang nok frase"

    def other_completes() -> None:
        other = user.call(
            "POST", f"/v1/password-resets/{reset['reset_id']}/complete", right | {"new_password": new_password}
        )
        assert other.status == 204

    where: Callable[[dict[str, Any]], bool] = lambda _: True  # noqa: E731
    operation = "dynamodb.TransactWriteItems" if overtaken == "before its write" else "dynamodb.BatchGetItem"
    if overtaken == "before its write":
        where = transaction_updating("SET #status = :done")
    with before_first_aws_call(operation, other_completes, where=where):
        services = wiring.login(os.environ)
        services.resets.complete(reset["reset_id"], right["pin_code"], right["code"], new_password)
    assert letter_pin_failures(driver, user) == 0
    user.password = new_password
    assert user.login()


def test_a_reset_s_lost_answer_asked_again_after_its_ten_minutes_is_told_it_is_done(driver: LetterDriver) -> None:
    """Completed in its last seconds, its answer lost: the retry, after the reset's 10 minutes, is done,
    not "start again" (which would spend another PIN code on a password already set)."""
    user = enrolled(driver)
    started = body(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}))
    clock = MovableClock()  # from just after the reset's start
    resets = wiring.login(os.environ, clock=clock).resets
    pin_code, code, reset_id = user.codes[str(started["pin_index"])], user.last_sms_code(), started["reset_id"]
    clock.advance(timedelta(minutes=9, seconds=50))
    resets.complete(reset_id, pin_code, code, "ei ny og lang nok frase")
    clock.advance(timedelta(seconds=20))
    resets.complete(reset_id, pin_code, code, "ei ny og lang nok frase")  # done: no error
    with pytest.raises(AuthenticationFailed):
        resets.complete(reset_id, pin_code, code, "ei anna frase enn den")  # not this password


def test_the_last_wrong_try_of_a_reset_counts_against_the_letter_though_the_reset_s_end_fails(
    driver: LetterDriver,
) -> None:
    """A judged guess is counted whatever fails after it."""
    user = enrolled(driver)
    reset = body(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}))
    complete = f"/v1/password-resets/{reset['reset_id']}/complete"
    wrong = {"pin_code": "000000", "code": user.last_sms_code(), "new_password": "ny frase i dag"}
    for _ in range(2):
        assert user.call("POST", complete, wrong).status == 401
    ending = lambda params: "SET #status = :ended" in params.get("UpdateExpression", "")  # noqa: E731
    with injected_faults() as faults:
        faults.add(
            "dynamodb", "UpdateItem", code="ProvisionedThroughputExceededException", status=400, times=5, where=ending
        )
        assert user.call("POST", complete, wrong).status == 503
    assert faults.injected
    assert letter_pin_failures(driver, user) == 3


def test_a_wrong_pin_code_is_counted_on_the_letter_though_its_write_with_the_failure_fails(
    driver: LetterDriver,
) -> None:
    """The count and the failure's event are one transaction; should it fail, both are written on their own:
    else, while it fails, wrong PIN codes go uncounted and the letter is never blocked."""
    user = enrolled(driver)
    login = body(user.start_login(second_factor="pin"))
    with injected_faults() as faults:
        faults.add("dynamodb", "TransactWriteItems", code="InternalServerError", status=500, times=20, here=True)
        assert user.verify(login["login_id"], "000000").status == 401
    assert faults.injected
    assert letter_pin_failures(driver, user) == 1
    # made, its answer lost: its event tells, and the guess is not counted twice
    login = body(user.start_login(second_factor="pin"))
    with injected_faults() as faults:
        faults.add("dynamodb", "TransactWriteItems", after="lost", here=True)
        assert user.verify(login["login_id"], "000000").status == 401
    assert faults.injected
    assert letter_pin_failures(driver, user) == 2
    history = security_events(driver).page(driver.key(user.identity_number), None, 100).events
    failed = [e.detail.get("reason") for e in history if e.type is SecurityEventType.LOGIN_FAILED]
    assert failed == ["second-factor"] * 2


def test_a_reset_started_before_a_password_change_no_longer_sets_a_password(driver: LetterDriver) -> None:
    """Someone with the letter and the phone starts a reset; the person, logged in, changes the password
    meanwhile (as they would, seeing a code they did not ask for): the reset's codes set no password."""
    user = enrolled(driver)
    token = user.login()
    reset = body(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}))
    taken = {"pin_code": user.codes[str(reset["pin_index"])], "code": user.last_sms_code()}
    change = {"current_password": user.password, "new_password": "ny og lang frase"}
    assert user.call("PUT", "/v1/me/password", change, token).status == 204
    complete = f"/v1/password-resets/{reset['reset_id']}/complete"
    refused = user.call("POST", complete, taken | {"new_password": "en kaprers frase"})
    assert refused.status == 401
    assert "the password or contact information was changed" in body(refused)["detail"]
    assert user.start_login(password="en kaprers frase").status == 401
    assert reset["pin_index"] not in driver.only_letter(user.identity_number).used
    user.password = "ny og lang frase"
    assert user.login()


def test_an_account_stored_without_a_sessions_epoch_changes_its_password(driver: LetterDriver) -> None:
    """An epoch never stored is 0 (an account written before there was one, or by hand): its sessions'
    epoch as read, on which the change holds, as every other write of the account holds."""
    user = enrolled(driver)
    driver.dynamodb.update_item(
        TableName=driver.local.stack.refs["UsersTable"],
        Key=to_item({"pk": driver.key(user.identity_number)}),
        UpdateExpression="REMOVE session_epoch",
    )
    token = user.login()
    new = {"current_password": user.password, "new_password": "ny og lang frase"}
    assert user.call("PUT", "/v1/me/password", new, token).status == 204
    assert account(user).session_epoch == 1
    assert user.call("GET", "/v1/me", None, token).status == 401  # every session ended, this one too


def test_right_codes_cost_no_try_when_the_reset_cannot_be_finished(driver: LetterDriver) -> None:
    """A weak password, or AWS briefly down before the codes are judged or after they were judged
    right: the citizen tried nothing wrong, and the try is given back."""
    user = enrolled(driver)
    reset = body(user.call("POST", "/v1/password-resets", {"identity_number": user.identity_number}))
    complete = f"/v1/password-resets/{reset['reset_id']}/complete"
    right = {"pin_code": user.codes[str(reset["pin_index"])], "code": user.last_sms_code()}
    strong = right | {"new_password": "ny frase i dag"}
    busy = ("ProvisionedThroughputExceededException", 400)
    for _ in range(3):  # as many as the tries
        weak = user.call("POST", complete, right | {"new_password": f"{user.identity_number} og mer tekst"})
        assert (weak.status, body(weak)["type"]) == (422, "/problems/weak-password")
        empty = user.call("POST", complete, right | {"new_password": ""})
        assert (empty.status, body(empty)["type"]) == (422, "/problems/weak-password")
        assert {error["field"] for error in body(weak)["errors"]} == {"new_password"}
        for service, operation, (code, status) in [
            ("dynamodb", "BatchGetItem", busy),
            ("sqs", "SendMessage", ("ServiceUnavailable", 503)),
            ("dynamodb", "TransactWriteItems", busy),
        ]:
            with injected_faults() as faults:
                faults.add(service, operation, code=code, status=status)
                assert user.call("POST", complete, strong).status == 503, operation
    assert user.call("POST", complete, strong).status == 204


# ---------------------------------------------------------------------- the me routes
def test_events_are_paged_newest_first(driver: LetterDriver) -> None:
    user = enrolled(driver)
    for n in range(20):
        user.source_ip = f"198.51.100.{n}"  # many logins: from more than one place, as a person would
        clear_counters(driver, "login-codes", driver.key(user.identity_number), 3600)  # and over hours
        login = body(user.start_login())
        user.verify(login["login_id"], user.last_sms_code())
    token = user.login()
    first = body(user.call("GET", "/v1/me/events", token=token))
    assert len(first["events"]) == 20
    assert first["next_cursor"]
    # RFC 3339 times, compared as times (a client may not take them as text; to the millisecond, as they are)
    times = [datetime.fromisoformat(e["at"]) for e in first["events"]]
    assert times == sorted(times, reverse=True)
    rest = body(user.call("GET", f"/v1/me/events?cursor={first['next_cursor']}", token=token))
    assert rest["events"]
    assert datetime.fromisoformat(rest["events"][0]["at"]) <= times[-1]
    seen = [json.dumps(e, sort_keys=True) for e in first["events"] + rest["events"]]
    assert len(set(seen)) == len(seen)  # none shown twice
    assert rest["next_cursor"] is None  # the last page says so
    forged = "2aLZoNmi2aYt2aDZoS3ZoNmhVDEjYSNi"  # a sort key's shape in Arabic-Indic digits
    for cursor in ("bm90LWEtY3Vyc29y", "AAAAA", forged, "a!b"):  # not a sort key, not base64, not base64url
        refused = user.call("GET", f"/v1/me/events?cursor={cursor}", token=token)
        assert (refused.status, body(refused)["type"]) == (422, "/problems/invalid-request"), cursor
        assert [error["field"] for error in body(refused)["errors"]] == ["cursor"], cursor
    assert body(user.call("GET", "/v1/me/events?cursor=", token=token)) == first  # as API.md writes it
    for event in first["events"]:
        assert user.last_sms_code() not in json.dumps(event)


def test_a_page_that_ends_the_history_has_no_next_cursor_even_when_it_is_full(driver: LetterDriver) -> None:
    """DynamoDB gives a LastEvaluatedKey whenever a Query stops at its limit: a history of exactly a page
    must not send the client on to an empty one."""
    log = security_events(driver)
    person = driver.key(driver.person(Category.ADULT).identity_number)
    at = datetime(2026, 11, 1, 12, tzinfo=UTC)
    for n in range(20):
        log.record(person, SecurityEvent(SecurityEventType.LOGIN_SUCCEEDED, at + timedelta(minutes=n), f"login-{n}"))
    assert log.page(person, None, 10).next_cursor is not None
    assert log.page(person, None, 20).next_cursor is None
    log.record(person, SecurityEvent(SecurityEventType.LOGIN_SUCCEEDED, at - timedelta(minutes=1), "login-first"))
    full = log.page(person, None, 20)
    assert full.next_cursor is not None
    last = log.page(person, full.next_cursor, 20)
    assert ([e.reference for e in last.events], last.next_cursor) == (["login-first"], None)


def test_an_event_of_a_type_from_a_later_version_is_left_out_not_the_history_failing(driver: LetterDriver) -> None:
    """Written by a later version (a function deployed before this one, or kept after a rollback): this one
    shows the rest of the history, not a 500 for the whole of it, nor hands it to the notifier."""
    log = security_events(driver)
    person = driver.key(driver.person(Category.ADULT).identity_number)
    at = datetime(2026, 11, 1, 12, tzinfo=UTC)
    later = ("passkey2-added", "a.reference/as@it.writes")  # what this version would not write
    for n, (kind, reference) in enumerate([("login-succeeded", "e-0"), later, ("login-failed", "e-2")]):
        event = SecurityEvent(SecurityEventType.LOGIN_SUCCEEDED, at + timedelta(minutes=n), reference)
        item = event_item(person, event) | {"type": {"S": kind}}
        item["sk"] = {"S": item["sk"]["S"].replace("login-succeeded", kind)}
        driver.dynamodb.put_item(TableName=driver.local.stack.refs["SecurityEventsTable"], Item=item)
    assert [e.reference for e in log.page(person, None, 10).events] == ["e-2", "e-0"]
    first = log.page(person, None, 2)  # a page ending on the later version's event: its cursor taken
    assert [e.reference for e in first.events] == ["e-2"]
    assert [e.reference for e in log.page(person, first.next_cursor, 2).events] == ["e-0"]
    record = {"eventName": "INSERT", "dynamodb": {"NewImage": item}}
    assert written_event(record) is not None
    assert written_event(record | {"dynamodb": {"NewImage": item | {"type": {"S": "passkey2-added"}}}}) is None


def test_a_block_that_meets_another_transaction_reads_the_letter_again_and_blocks_it(driver: LetterDriver) -> None:
    """Through the route, as deployed: the block's transaction meets another writing the letter (a second
    click, the workflow's activation), reads the letter again and blocks it; that read is the route's
    own (its role must allow it: the stack judges every call as it stops)."""
    user = enrolled(driver)
    token = user.login()
    with injected_faults() as faults:
        conflict = ("TransactionConflict", "None", "None")
        faults.add("dynamodb", "TransactWriteItems", code="TransactionCanceledException", status=400, reasons=conflict)
        blocked = user.call("POST", "/v1/me/pin-letters/block", token=token)
        assert faults.injected
    assert blocked.status == 200
    assert driver.only_letter(user.identity_number).status is LetterStatus.BLOCKED


def test_a_person_lists_and_blocks_their_letters(driver: LetterDriver) -> None:
    user = enrolled(driver)
    token = user.login()
    letters = body(user.call("GET", "/v1/me/pin-letters", token=token))["letters"]
    assert [(x["status"], x["codes_remaining"]) for x in letters] == [("dispatched", 18)]
    blocked = user.call("POST", "/v1/me/pin-letters/block", token=token)
    assert blocked.status == 200
    assert [(x["status"], x["codes_remaining"]) for x in body(blocked)["letters"]] == [("blocked", 0)]
    assert driver.only_letter(user.identity_number).status is LetterStatus.BLOCKED
    assert user.start_login(second_factor="pin").status == 409
    assert user.call("GET", "/v1/me/pin-letters").status == 401


def test_every_reset_start_for_the_same_number_asks_for_the_same_code_whoever_it_is(driver: LetterDriver) -> None:
    """Drawn at random from the unused codes, the numbers asked over many starts told an enrolled person
    (whose used codes never came up) from anyone else. A start now asks for the first unused code in the
    person's order, a decoy for the first: one number, every time, for anyone."""
    resets = wiring.login(os.environ).resets
    nobody = compose_identity_number(date(1975, 5, 17), 432, synthetic=True) or ""
    asked = {resets.start(nobody, f"198.19.0.{n + 1}").pin_index for n in range(5)}
    assert asked == {asking_order(driver.local.keyer, driver.key(nobody))[0]}

    user = enrolled(driver)
    order = asking_order(driver.local.keyer, driver.key(user.identity_number))
    used = driver.only_letter(user.identity_number).used
    assert set(used) == set(order[:2])  # enrolment asked for the first two
    asked = {resets.start(user.identity_number, f"198.19.1.{n + 1}").pin_index for n in range(3)}
    assert asked == {order[2]}
    assert user.login(second_factor="pin")  # a PIN login uses a code: the next start asks for the next
    used = driver.only_letter(user.identity_number).used
    assert {resets.start(user.identity_number, f"198.19.2.{n + 1}").pin_index for n in range(3)} == {
        next(i for i in order if i not in used)
    }


def wrong_pin(user: User, login: dict[str, Any]) -> str:
    return f"{(int(user.codes[str(login['pin_index'])]) + 1) % 1_000_000:06d}"


def second_factor_failures(driver: LetterDriver, user: User) -> int:
    events = security_events(driver).page(driver.key(user.identity_number), None, 100).events
    return sum(e.type.value == "login-failed" and e.detail.get("reason") == "second-factor" for e in events)


def test_wrong_pin_codes_at_a_login_count_against_the_letter_and_the_fifth_blocks_it(driver: LetterDriver) -> None:
    """A wrong PIN code is counted against its letter with the failure's event, in one transaction; the
    fifth, which blocks the letter (the person told), is written as before: the letter read, then blocked."""
    user = enrolled(driver)
    for counted in range(1, MAX_PIN_FAILURES_PER_LETTER):
        login = body(user.start_login(second_factor="pin"))
        assert user.verify(login["login_id"], wrong_pin(user, login)).status == 401
        assert (letter_pin_failures(driver, user), second_factor_failures(driver, user)) == (counted, counted)
        user.login()  # by SMS: the account's failures in a row back to zero, so that it does not lock
    login = body(user.start_login(second_factor="pin"))
    assert user.verify(login["login_id"], wrong_pin(user, login)).status == 401
    letter = driver.letters.get(driver.only_letter(user.identity_number).letter_id)
    assert letter is not None
    assert (letter.status, letter.pin_failures) == (LetterStatus.BLOCKED, MAX_PIN_FAILURES_PER_LETTER)
    assert second_factor_failures(driver, user) == MAX_PIN_FAILURES_PER_LETTER
    wait_for(driver.local.outbox.sms, lambda sms: any("sperret" in m["message"] for m in sms))


def test_a_wrong_pin_code_whose_write_never_gets_past_others_transactions_is_counted_all_the_same(
    driver: LetterDriver,
) -> None:
    """The one write of the guess and its failure meets others' transactions on the letter at every try:
    the two are written on their own, as for a guess that blocks; the guess is not lost to the letter."""
    user = enrolled(driver)
    login = body(user.start_login(second_factor="pin"))
    letter_key = f"letter#{driver.only_letter(user.identity_number).letter_id}"

    def on_the_letter(params: dict[str, Any]) -> bool:
        return any(
            item.get("Update", {}).get("Key", {}).get("pk", {}).get("S") == letter_key
            for item in params["TransactItems"]
        )

    with injected_faults() as faults:
        conflict = ("TransactionConflict", "None")
        faults.add(
            "dynamodb",
            "TransactWriteItems",
            code="TransactionCanceledException",
            reasons=conflict,
            times=5,
            where=on_the_letter,
        )
        assert user.verify(login["login_id"], wrong_pin(user, login)).status == 401
        assert len(faults.injected) == 5
    assert (letter_pin_failures(driver, user), second_factor_failures(driver, user)) == (1, 1)


def test_a_wrong_pin_code_that_locks_is_counted_against_the_letter_though_the_lock_s_write_fails(
    driver: LetterDriver,
) -> None:
    """The locking wrong PIN code: its lock's write fails (503, for a retry), and the guess is counted on
    the letter all the same (five such would otherwise be guesses the letter never counted)."""
    user = enrolled(driver)
    for _ in range(2):
        assert user.start_login(password="ikke passordet mitt i det hele tatt").status == 401
    login = body(user.start_login(second_factor="pin"))
    with injected_faults() as faults:
        faults.add("dynamodb", "TransactWriteItems", where=lambda params: "lock" in json.dumps(params))
        assert user.verify(login["login_id"], wrong_pin(user, login)).status == 503
        assert faults.injected
    assert letter_pin_failures(driver, user) == 1


def test_a_wrong_pin_code_that_locks_the_account_is_counted_against_the_letter_too(driver: LetterDriver) -> None:
    user = enrolled(driver)
    for _ in range(2):
        assert user.start_login(password="ikke passordet mitt i det hele tatt").status == 401
    login = body(user.start_login(second_factor="pin"))
    assert user.verify(login["login_id"], wrong_pin(user, login)).status == 401
    assert account(user).locked(datetime.now(UTC))
    assert letter_pin_failures(driver, user) == 1
    events = security_events(driver).page(driver.key(user.identity_number), None, 100).events
    assert [e.type.value for e in events if e.reference == f"{login['login_id']}:1"].count("account-locked") == 1


def test_a_wrong_pin_code_of_a_letter_blocked_meanwhile_is_a_failure_but_no_guess_at_it(driver: LetterDriver) -> None:
    """The letter blocked by its owner while the login waited for its code: a wrong code is still the
    account's failure, but no guess counted against a letter that is not posted."""
    user = enrolled(driver)
    login = body(user.start_login(second_factor="pin"))
    assert user.call("POST", "/v1/me/pin-letters/block", token=user.login()).status == 200
    assert user.verify(login["login_id"], wrong_pin(user, login)).status == 401
    assert (letter_pin_failures(driver, user), second_factor_failures(driver, user)) == (0, 1)


def test_a_session_s_last_use_not_recorded_for_a_passing_fault_still_answers(
    driver: LetterDriver, caplog: pytest.LogCaptureFixture
) -> None:
    """The write that keeps a session's last use (once a minute) throttled: the request it is made for is
    answered all the same (the session ends its idle time sooner, the safe way), and the write's loss is
    logged. A fault that is no passing one (a role without the action) is not let be."""
    user = enrolled(driver)
    token = user.login()
    sessions, key = driver.local.stack.refs["SessionsTable"], driver.local.keyer.session_key(token)
    then = datetime.now(UTC) - timedelta(minutes=2)  # written again by the next request
    driver.dynamodb.update_item(
        TableName=sessions,
        Key=to_item({"pk": key}),
        UpdateExpression="SET last_seen_at = :then",
        ExpressionAttributeValues=to_item({":then": iso(then)}),
    )
    touching = lambda params: params.get("UpdateExpression") == "SET last_seen_at = :now"  # noqa: E731
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", code="ProvisionedThroughputExceededException", status=400, where=touching)
        answer = user.call("GET", "/v1/me", token=token)
        assert faults.injected
    assert answer.status == 200, answer.body
    (logged,) = [r for r in caplog.records if r.getMessage() == "Session's last use not recorded"]
    assert logged.__dict__.get("aws_error") == "ProvisionedThroughputExceededException"
    with injected_faults() as faults:
        faults.add("dynamodb", "UpdateItem", code="AccessDeniedException", status=400, where=touching)
        assert user.call("GET", "/v1/me", token=token).status == 500
        assert faults.injected

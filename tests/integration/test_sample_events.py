"""Every function's sample events (events/, as `sam local invoke -e` takes them) through its real handler."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from local.aws import embedded_aws
from local.faults import injected_faults
from local.stack import LocalStack
from minid.adapters.dynamodb import iso, to_item
from minid.adapters.events import DynamoDbSecurityEventLog
from minid.attempts import CONNECT_SECONDS, READ_SECONDS
from minid.domain.errors import NotFound
from minid.domain.events import SecurityEvent, SecurityEventType
from minid.domain.keys import PersonKey
from tests.conftest import load_event
from tests.integration.letters import state_function


@pytest.fixture(scope="module")
def local() -> Iterator[LocalStack]:
    with embedded_aws() as session:
        stack = LocalStack.start(session, print_delay_seconds=None)
        yield stack
        stack.stop()


def invoke(local: LocalStack, function: str, event: str) -> dict[str, object]:
    result: dict[str, object] = local.functions.by_logical_id[function].invoke(load_event(event))
    return result


def test_order(local: LocalStack) -> None:
    response = invoke(local, "PinLettersFunction", "pin_letters/order")
    assert response["statusCode"] == 202
    assert "message" in json.loads(str(response["body"]))


def test_a_report_from_a_role_that_is_not_the_print_providers_is_not_found(local: LocalStack) -> None:
    response = invoke(local, "PrintCallbackFunction", "print_callback/report-dispatched")
    assert response["statusCode"] == 404
    assert json.loads(str(response["body"]))["type"] == "/problems/not-found"


@pytest.mark.parametrize(
    ("state", "event"),
    [("ValidateRecipient", "letter_workflow/validate-recipient"), ("NotifyPosted", "letter_workflow/notify-posted")],
)
def test_a_task_for_a_letter_that_does_not_exist_fails(local: LocalStack, state: str, event: str) -> None:
    with pytest.raises(Exception, match="See the function's log") as raised:
        invoke(local, state_function(state), event)
    assert type(raised.value).__name__ == NotFound.__name__  # the name the state machine catches and tells


def test_a_task_that_fails_raises_no_message_into_the_workflow_history(
    local: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    """An error's message may quote what the task read; Step Functions keeps what a task raises. It is
    raised by its name alone, and logged (through the masking formatter)."""
    quoted = "ValidationException: 15108695088 at Storgata 12, +4791234567"
    with injected_faults() as faults:
        faults.add("dynamodb", "GetItem", code="ValidationException", status=400, times=5, message=quoted)
        faults.add("dynamodb", "Query", code="ValidationException", status=400, times=5, message=quoted)
        faults.add("dynamodb", "BatchGetItem", code="ValidationException", status=400, times=5, message=quoted)
        with pytest.raises(Exception, match="See the function's log") as raised:
            invoke(local, "LetterWorkflowFunction", "letter_workflow/validate-recipient")
    assert faults.injected
    assert type(raised.value).__name__ == "ClientError"
    assert raised.value.__cause__ is None
    assert raised.value.__context__ is None or raised.value.__suppress_context__
    assert "15108695088" not in str(raised.value)
    assert "+4791234567" not in str(raised.value)
    (logged,) = [r for r in caplog.records if r.getMessage() == "Task failed"]
    assert logged.exc_info is not None
    assert type(logged.exc_info[1]).__name__ == "ClientError"  # the error itself, for the operator


def test_a_review_that_fails_raises_its_error_s_name_alone_and_logs_it_masked(
    local: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    """Lambda writes what a handler raises to the log as it is, past the masking formatter."""
    quoted = "ValidationException: 15108695088 born 1986-10-15, +4791234567"
    with injected_faults() as faults:
        faults.add("dynamodb", "Query", code="ValidationException", status=400, times=5, message=quoted)
        with pytest.raises(Exception, match=r"^ClientError$") as raised:
            invoke(local, "ContactReviewFunction", "contact_review/scheduled")
    assert faults.injected
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__
    (logged,) = [r for r in caplog.records if r.getMessage() == "Contact register review failed"]
    assert logged.exc_info is not None
    assert type(logged.exc_info[1]).__name__ == "ClientError"  # the error itself, for the operator


def test_a_notice_for_a_person_without_contacts_is_done(local: LocalStack) -> None:
    assert invoke(local, "NotifierFunction", "notifier/notice") == {"batchItemFailures": []}


def test_each_notice_that_fails_or_must_wait_is_reported_back_by_itself(
    local: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    """The partial batch response: a notice whose change is not made yet waits quietly, one that
    fails is logged by its error's type alone, and the others are done."""
    sample = load_event("notifier/notice")["Records"][0]
    done = json.loads(sample["body"])
    waiting = done | {
        "notice_id": "waiting",
        "proof": {"type": "contact-changed", "at": datetime.now(UTC).isoformat(), "reference": "not-yet"},
    }
    records = [
        sample | {"messageId": "done", "body": json.dumps(done)},
        sample | {"messageId": "waiting", "body": json.dumps(waiting)},
        sample | {"messageId": "broken", "body": '{"notice_id": "+4791234567"}'},
    ]
    answer = local.functions.by_logical_id["NotifierFunction"].invoke({"Records": records})
    assert answer == {"batchItemFailures": [{"itemIdentifier": "waiting"}, {"itemIdentifier": "broken"}]}
    told = [r for r in caplog.records if r.getMessage() == "Notice not delivered yet"]
    assert [getattr(r, "error", None) for r in told] == ["KeyError"]
    assert "+4791234567" not in caplog.text


def test_a_notice_another_delivery_is_sending_waits_and_is_not_counted_a_failure(
    local: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    """Another sender's claim on a channel (its lease not run out): reported back to come again, as a notice
    whose change is not made yet, not logged and counted toward NoticesFailingAlarm."""
    sample = load_event("notifier/notice")["Records"][0]
    person = PersonKey(json.loads(sample["body"])["person"])
    requested = SecurityEvent(SecurityEventType.CONTACT_CHANGE_REQUESTED, datetime.now(UTC), "in-flight")
    events = DynamoDbSecurityEventLog(local.session.client("dynamodb"), local.stack.refs["SecurityEventsTable"])
    events.record(person, requested)  # the change made: its notice proven (PROVEN_BY)
    notice = json.loads(sample["body"]) | {
        "notice_id": "in-flight:contact-changed",
        "kind": "contact-changed",
        "params": {"channel": "mobile"},
        "recipients": {"mobile": "+4791234599", "email": None, "language": "nb"},  # as queued once: in plain
        "proof": {"type": requested.type.value, "at": requested.at.isoformat(), "reference": requested.reference},
    }
    claimed = {
        "pk": "notice#in-flight:contact-changed#sms",
        "state": "sending",
        "lease_until": iso(datetime.now(UTC) + timedelta(minutes=2)),
        "expires_at": int((datetime.now(UTC) + timedelta(days=1)).timestamp()),
    }
    local.session.client("dynamodb").put_item(TableName=local.stack.refs["ChallengesTable"], Item=to_item(claimed))
    record = sample | {"messageId": "in-flight", "body": json.dumps(notice)}
    answer = local.functions.by_logical_id["NotifierFunction"].invoke({"Records": [record]})
    assert answer == {"batchItemFailures": [{"itemIdentifier": "in-flight"}]}
    assert [r for r in caplog.records if r.getMessage() == "Notice not delivered yet"] == []


def test_enrolment_events(local: LocalStack) -> None:
    started = invoke(local, "EnrolmentFunction", "enrolment/start")
    assert started["statusCode"] == 201
    assert set(json.loads(str(started["body"]))) == {"enrolment_id", "pin_indices", "expires_in"}
    # the sample enrolment id does not exist here
    assert invoke(local, "EnrolmentFunction", "enrolment/complete")["statusCode"] == 404
    assert invoke(local, "EnrolmentFunction", "enrolment/verify")["statusCode"] == 404


def test_login_events(local: LocalStack) -> None:
    # nobody is enrolled here: the same 401 as for a wrong password
    assert invoke(local, "LoginFunction", "login/login")["statusCode"] == 401
    assert invoke(local, "LoginFunction", "login/verify")["statusCode"] == 401
    assert invoke(local, "LoginFunction", "login/me")["statusCode"] == 401
    reset = invoke(local, "LoginFunction", "login/password-reset")
    assert reset["statusCode"] == 201
    assert set(json.loads(str(reset["body"]))) == {"reset_id", "pin_index", "second_factor", "expires_in"}


def test_contact_events(local: LocalStack) -> None:
    for event in ("contact/get-contact", "contact/change-mobile", "contact/reserve"):
        response = invoke(local, "ContactFunction", event)
        assert response["statusCode"] == 401  # the sample token belongs to no session
        assert json.loads(str(response["body"]))["type"] == "/problems/authentication-failed"


def test_the_daily_review_event(local: LocalStack) -> None:
    assert invoke(local, "ContactReviewFunction", "contact_review/scheduled") == {
        "reminded": 0,
        "marked_stale": 0,
        "finished": True,
        "behind": False,
    }


# ---------------------------------------------------------------------- the invocation's deadline
def test_an_aws_call_that_could_outlast_the_function_is_not_sent(local: LocalStack) -> None:
    """Each attempt of an AWS call is sent only while a whole attempt (connect and read timeouts) still
    fits before the function's own deadline: with less left, the request is a 503 the client retries,
    not Lambda's timeout (API Gateway's bare 500), and nothing was written."""
    login = local.functions.by_logical_id["LoginFunction"]
    event = load_event("login/login")
    dynamodb = local.session.client("dynamodb")
    tables = [local.stack.refs[t] for t in ("ChallengesTable", "UsersTable")]
    before = [dynamodb.scan(TableName=t)["Items"] for t in tables]
    short = login.invoke(event, seconds_left=CONNECT_SECONDS + READ_SECONDS)
    assert [dynamodb.scan(TableName=t)["Items"] for t in tables] == before  # not even the client counted
    assert short["statusCode"] == 503
    assert json.loads(short["body"])["type"] == "/problems/service-unavailable"
    assert int(short["headers"]["Retry-After"]) > 0
    assert login.invoke(event)["statusCode"] != 503  # with the function's whole timeout to run in


def test_a_workflow_task_out_of_time_is_retried_by_the_state_machine(local: LocalStack) -> None:
    """Raised as DependencyUnavailable, which every task's Retry names."""
    task = local.functions.by_logical_id["LetterWorkflowFunction"]
    with pytest.raises(Exception, match="OutOfTime") as raised:
        task.invoke(load_event("letter_workflow/validate-recipient"), seconds_left=2)
    assert type(raised.value).__name__ == "DependencyUnavailable"

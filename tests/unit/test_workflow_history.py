"""How a print hand-over ended, read from the execution's history: a history a moment behind the call
that closed the hand-over is read again (AWS writes the task's end after that call has answered; moto's
executor too, on a thread of its own)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber

from minid.adapters.workflow import HISTORY_TRIES, PRINT_FAILED_ERROR, StepFunctionsLetterWorkflow
from minid.domain.letters.ports import ReportedStatus

MACHINE = "arn:aws:states:eu-north-1:123456789012:stateMachine:minid-pin-letter"
LETTER = "0b6f1c2e-8d1a-4c3b-9a7e-2f4d5c6b7a8e"
AT = datetime(2026, 12, 5, tzinfo=UTC)
SCHEDULED = {
    "id": 7,
    "type": "TaskScheduled",
    "timestamp": AT,
    "taskScheduledEventDetails": {
        "resourceType": "sqs",
        "resource": "sendMessage.waitForTaskToken",
        "region": "eu-north-1",
        "parameters": "{}",
    },
}
FAILED = {
    "id": 9,
    "type": "TaskFailed",
    "timestamp": AT,
    "taskFailedEventDetails": {
        "resourceType": "sqs",
        "resource": "sendMessage.waitForTaskToken",
        "error": PRINT_FAILED_ERROR,
    },
}


def _history(*events: dict[str, Any]) -> dict[str, Any]:
    return {"events": list(events)}


def test_a_history_behind_the_call_that_closed_the_hand_over_is_read_again() -> None:
    client: Any = botocore.session.get_session().create_client("stepfunctions", region_name="eu-north-1")
    with Stubber(client) as stub:
        stub.add_response("get_execution_history", _history(SCHEDULED))  # its end not written yet
        stub.add_response("get_execution_history", _history(FAILED, SCHEDULED))
        assert StepFunctionsLetterWorkflow(client, MACHINE).resumed_with(LETTER) is ReportedStatus.FAILED
        stub.assert_no_pending_responses()


def test_a_hand_over_that_stays_open_is_read_a_few_times_only() -> None:
    client: Any = botocore.session.get_session().create_client("stepfunctions", region_name="eu-north-1")
    with Stubber(client) as stub:
        for _ in range(HISTORY_TRIES):
            stub.add_response("get_execution_history", _history(SCHEDULED))
        assert StepFunctionsLetterWorkflow(client, MACHINE).resumed_with(LETTER) is None
        stub.assert_no_pending_responses()


def test_no_hand_over_is_read_once() -> None:
    client: Any = botocore.session.get_session().create_client("stepfunctions", region_name="eu-north-1")
    with Stubber(client) as stub:
        stub.add_response("get_execution_history", _history())
        assert StepFunctionsLetterWorkflow(client, MACHINE).resumed_with(LETTER) is None
        stub.assert_no_pending_responses()


@pytest.mark.parametrize("kind", ["TaskSubmitFailed", "TaskStartFailed"])
def test_a_hand_over_whose_message_was_never_sent_is_ended_with_no_report(kind: str) -> None:
    """SQS refused or failed the hand-over's message (retried after, or the letter failed): that hand-over
    is over, read once, not taken for one still open and read again and again."""
    never_sent = {
        "id": 8,
        "type": kind,
        "timestamp": AT,
        f"{kind[0].lower()}{kind[1:]}EventDetails": {
            "resourceType": "sqs",
            "resource": "sendMessage.waitForTaskToken",
            "error": "SQS.SdkClientException",
        },
    }
    client: Any = botocore.session.get_session().create_client("stepfunctions", region_name="eu-north-1")
    with Stubber(client) as stub:
        stub.add_response("get_execution_history", _history(never_sent, SCHEDULED))
        assert StepFunctionsLetterWorkflow(client, MACHINE).resumed_with(LETTER) is None
        stub.assert_no_pending_responses()


def _ended(kind: str, error: str = "States.HeartbeatTimeout") -> dict[str, Any]:
    details = {"resourceType": "sqs", "resource": "sendMessage.waitForTaskToken", "error": error}
    return {"id": 9, "type": kind, "timestamp": AT, f"{kind[0].lower()}{kind[1:]}EventDetails": details}


@pytest.mark.parametrize(
    ("history", "timed_out"),
    [
        ((_ended("TaskTimedOut"), SCHEDULED), True),  # no report in time: MarkFailed follows
        ((_ended("TaskSubmitFailed", "SQS.SdkClientException"), SCHEDULED), False),  # to be sent again
        ((_ended("TaskFailed", "SQS.AmazonSQSException"), SCHEDULED), False),  # likewise
        ((FAILED, SCHEDULED), False),  # a "failed" resumed it
        ((SCHEDULED,), False),  # open (or its execution stopped)
        ((), False),  # never handed over
    ],
)
def test_only_a_hand_over_that_got_no_report_in_time_is_timed_out(
    history: tuple[dict[str, Any], ...], timed_out: bool
) -> None:
    client: Any = botocore.session.get_session().create_client("stepfunctions", region_name="eu-north-1")
    with Stubber(client) as stub:
        stub.add_response("get_execution_history", _history(*history))
        assert StepFunctionsLetterWorkflow(client, MACHINE).timed_out(LETTER) is timed_out
        stub.assert_no_pending_responses()

"""The PIN-letter workflow on Step Functions: one Standard execution per letter, named by the letter id.

The workflow waits for the print provider with `sqs:sendMessage.waitForTaskToken`. The provider's
report comes to our callback route with the letter id only (API.md), so the task token is read back
from the execution's own history: the SendToPrintProvider state put it in the message it sent. The
history is the one record of the token, and the execution name leads to it from the letter id.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from msgspec.structs import asdict

from minid.domain.letters.ports import PrintReport, ReportedStatus
from minid.values import Value

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

PRINT_FAILED_ERROR = "PrintFailed"
_GONE = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist", "ExecutionDoesNotExist"})
_HISTORY_PAGE = 100
# A history read again while it is a moment behind a call that ended a task: some 0.5 s in all, at most
HISTORY_TRIES, HISTORY_PAUSE_SECONDS = 10, 0.05


class PrintTimeouts(Value, frozen=True):
    """How long the workflow waits for the print provider, and for a sign of life from it."""

    timeout_seconds: int
    heartbeat_seconds: int

    def __post_init__(self) -> None:
        if not 0 < self.heartbeat_seconds < self.timeout_seconds:
            raise ValueError("the heartbeat interval must be shorter than the timeout")


NOT_POSTED_CAUSE = "The print provider reported the letter not posted."


class StepFunctionsLetterWorkflow:
    def __init__(self, client: SFNClient, state_machine_arn: str, timeouts: PrintTimeouts | None = None) -> None:
        self._client = client
        self._state_machine_arn = state_machine_arn
        self._execution_prefix = state_machine_arn.replace(":stateMachine:", ":execution:", 1)
        self._print = asdict(timeouts) if timeouts else None

    def start(self, letter_id: str) -> None:
        if self._print is None:
            raise RuntimeError("starting a letter's workflow needs the print timeouts")
        try:
            self._client.start_execution(
                stateMachineArn=self._state_machine_arn,
                name=letter_id,
                input=json.dumps({"letter_id": letter_id, "print": self._print}),
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise

    def started(self, letter_id: str) -> bool:
        try:
            self._client.describe_execution(executionArn=f"{self._execution_prefix}:{letter_id}")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                return False
            raise
        return True

    def resume(self, letter_id: str, report: PrintReport) -> bool:
        try:
            token = self._task_token(letter_id)
            if token is None:
                return False
            if report.status is ReportedStatus.DISPATCHED:
                self._client.send_task_success(taskToken=token, output=json.dumps({"status": report.status.value}))
            else:
                # The provider's reason is free text and may name the person or the address: the workflow's
                # history, which operators read, keeps none of it.
                self._client.send_task_failure(taskToken=token, error=PRINT_FAILED_ERROR, cause=NOT_POSTED_CAUSE)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _GONE:
                return False
            raise
        return True

    def resumed_with(self, letter_id: str) -> ReportedStatus | None:
        """How the letter's latest print hand-over ended: resumed by a report (dispatched, failed), or
        not (waiting still, timed out, or never handed over).

        Asked once a resume found the hand-over closed: a history that still shows it open is a moment
        behind the report that closed it (the execution writes the task's end after the call that ends it
        has answered), and is read again, HISTORY_TRIES times at most."""
        for _ in range(HISTORY_TRIES - 1):
            end = self._latest_end(letter_id)
            if end is not _OPEN:
                return _REPORTED.get(end)
            time.sleep(HISTORY_PAUSE_SECONDS)
        return _REPORTED.get(self._latest_end(letter_id))

    def timed_out(self, letter_id: str) -> bool:
        """Whether the letter's latest print hand-over timed out, no report in time (on its heartbeat or its
        timeout): its workflow marks the letter failed then, and hands it over no more. Not one whose message
        failed to send (tried again after), still open, stopped, or of no execution."""
        return self._latest_end(letter_id) == "TaskTimedOut"

    def _latest_end(self, letter_id: str) -> str:
        """How the latest hand-over ended: its end event's type (a TaskFailed by a report's: `_BY_REPORT`);
        `_OPEN` where it shows no end; `_NONE` for no hand-over, or no execution."""
        try:
            for page in self._history_pages(letter_id, with_data=False):
                for event in sorted(page, key=lambda event: int(event["id"]), reverse=True):  # newest first, as
                    # asked (moto's history answers oldest first)
                    if _print_task(event, _PRINT_TASK_START) is not None:  # its start, before any end: open
                        return _OPEN
                    details = _print_task(event, _PRINT_TASK_ENDS)
                    if details is not None:  # the latest end of a hand-over
                        by_report = event["type"] == "TaskFailed" and details.get("error") == PRINT_FAILED_ERROR
                        return _BY_REPORT if by_report else str(event["type"])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _GONE:
                return _NONE
            raise
        return _NONE

    def _task_token(self, letter_id: str) -> str | None:
        """The token of the latest print hand-over in the letter's execution, newest events first."""
        best: tuple[int, str] | None = None
        for page in self._history_pages(letter_id, with_data=True):
            for event in page:
                token = _print_token(event)
                if token is not None and (best is None or event["id"] > best[0]):
                    best = (event["id"], token)
            if best is not None:
                return best[1]
        return None

    def _history_pages(self, letter_id: str, *, with_data: bool) -> Iterator[list[Any]]:
        """The events of the letter's execution, newest first, a page at a time (as they are read)."""
        paginator = self._client.get_paginator("get_execution_history")
        for page in paginator.paginate(
            executionArn=f"{self._execution_prefix}:{letter_id}",
            reverseOrder=True,
            includeExecutionData=with_data,
            PaginationConfig={"PageSize": _HISTORY_PAGE},
        ):
            yield list(page["events"])


_PRINT_TASK_START = {"TaskScheduled": "taskScheduledEventDetails"}
# (a hand-over whose message was never sent, SQS refusing it or failing, ends in TaskSubmitFailed or
# TaskStartFailed: ended, with no report, as a time-out is; else it would be read as open, again and again)
_PRINT_TASK_ENDS = {
    "TaskSucceeded": "taskSucceededEventDetails",
    "TaskFailed": "taskFailedEventDetails",
    "TaskTimedOut": "taskTimedOutEventDetails",
    "TaskSubmitFailed": "taskSubmitFailedEventDetails",
    "TaskStartFailed": "taskStartFailedEventDetails",
}


_OPEN, _NONE, _BY_REPORT = "open", "none", "failed by a report"
# the ends a report made (the rest: timed out, or failed otherwise)
_REPORTED = {"TaskSucceeded": ReportedStatus.DISPATCHED, _BY_REPORT: ReportedStatus.FAILED}


def _print_task(event: Any, kinds: dict[str, str]) -> dict[str, Any] | None:
    """The details of an event of one of these kinds (type: its details' key) about a print hand-over (its
    task's resource is SQS); None for any other event."""
    details: dict[str, Any] | None = event.get(kinds.get(event["type"], ""))
    if details is None or (details.get("resourceType") != "sqs" and "sqs" not in str(details.get("resource", ""))):
        return None
    return details


def _print_token(event: Any) -> str | None:
    details = _print_task(event, _PRINT_TASK_START)
    if details is None:
        return None
    parameters = json.loads(details.get("parameters") or "{}")
    body = parameters.get("MessageBody")
    message = json.loads(body) if isinstance(body, str) else body
    token = message.get("task_token") if isinstance(message, dict) else None
    return str(token) if token else None

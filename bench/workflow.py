"""The PIN-letter workflow: letters per second from order to posted, on the local stack with the print
simulator's delay at zero, for a batch ordered at once; beside the same number of executions of a
one-state (Pass) machine on the same embedded Step Functions, the executor's own floor.

An order is the real route; the letter is posted when its workflow has validated the recipient,
prepared the codes and the PDF, waited for the simulated print provider (which reads the PDF back and
reports through the IAM-authorised route), activated the letter and queued the notice.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.throughput import NO_CLIENT_LIMITS
from local.aws import ACCOUNT_ID, embedded_aws
from local.gateway import HttpRequest
from local.population_seed import Category
from local.stack import LocalStack

PASS_ONLY = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
TIMEOUT_SECONDS = 600
FAILURES_LOOKED_AT_SECONDS = 5
POLL_SECONDS = 0.25


@dataclass(frozen=True)
class LetterRun:
    letters: int
    seconds: float
    floor_seconds: float  # the same number of Pass-only executions

    def json(self) -> dict[str, Any]:
        return {
            "letters": self.letters,
            "seconds": round(self.seconds, 2),
            "letters_per_second": round(self.letters / self.seconds, 1),
            "pass_only_executions_per_second": round(self.letters / self.floor_seconds, 1),
            "ratio": round(self.seconds / self.floor_seconds, 1),
        }


def finished(sfn: Any, machine: str, count: int, started: datetime) -> float:
    """Seconds from `started` until the last of `count` executions of the machine succeeded (a failure is
    an error), by the executions' own stop dates: the wait's step does not count, and it is long (a
    listing takes embedded AWS's lock, which the executions need too), the same for both runs."""
    while (datetime.now(UTC) - started).total_seconds() < TIMEOUT_SECONDS:
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine)
        executions = [e for page in pages for e in page["executions"]]
        statuses = [e["status"] for e in executions]
        if any(s in ("FAILED", "TIMED_OUT", "ABORTED") for s in statuses):
            raise RuntimeError(f"a workflow did not succeed: {statuses.count('FAILED')} failed")
        if statuses.count("SUCCEEDED") >= count:
            last: datetime = max(e["stopDate"] for e in executions if "stopDate" in e)
            return (last - started).total_seconds()
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"the batch was not done in {TIMEOUT_SECONDS} s")


def posted(local: LocalStack, count: int, started: float, sfn: Any, machine: str) -> float:
    """Seconds from `started` until the print provider has reported `count` letters posted (read
    from the local outbox, in this process: no AWS call competes with the workflows). A letter whose
    report was refused, or a workflow that failed, ends the wait at once (its executions are looked
    at every few seconds only: a listing takes embedded AWS's lock)."""
    looked = started
    while time.monotonic() - started < TIMEOUT_SECONDS:
        statuses = Counter(letter["status"] for letter in local.outbox.letters())
        if statuses["dispatched"] >= count:
            return time.monotonic() - started
        if set(statuses) - {"dispatched"}:
            raise RuntimeError(f"the print provider's reports were not all taken: {dict(statuses)}")
        if time.monotonic() - looked > FAILURES_LOOKED_AT_SECONDS:
            failed(sfn, machine)
            looked = time.monotonic()
        time.sleep(0.02)
    failed(sfn, machine)
    raise RuntimeError(f"the batch was not posted in {TIMEOUT_SECONDS} s: {dict(statuses)}")


def failed(sfn: Any, machine: str) -> None:
    """A failed execution of the machine, if any, raised with its error and cause (the workflow's
    payloads hold no personal data)."""
    for status in ("FAILED", "TIMED_OUT", "ABORTED"):
        for execution in sfn.list_executions(stateMachineArn=machine, statusFilter=status)["executions"]:
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            raise RuntimeError(f"a workflow {status}: {described.get('error')}: {described.get('cause')}")


def measure(batch: int = 200) -> LetterRun:
    with embedded_aws() as session:
        local = LocalStack.start(session, print_delay_seconds=0.0, parameters=NO_CLIENT_LIMITS)
        try:
            gateway = local.gateway()
            sfn = session.client("stepfunctions")
            persons = [p for p in local.population if p.category is Category.ADULT][:batch]
            assert len(persons) == batch, f"the population has {len(persons)} adults"
            started, started_at = time.monotonic(), datetime.now(UTC)
            for person in persons:
                request = HttpRequest(
                    "POST",
                    "/v1/pin-letters",
                    [("Content-Type", "application/json")],
                    json.dumps({"identity_number": person.identity_number}).encode(),
                )
                assert gateway.handle(request).status == 202
            machine = local.stack.refs["PinLetterWorkflow"]
            posted(local, batch, started, sfn, machine)  # reported posted by the print provider
            seconds = finished(sfn, machine, batch, started_at)  # and each letter activated, and its notice queued

            role = f"arn:aws:iam::{ACCOUNT_ID}:role/bench"
            floor = sfn.create_state_machine(name="bench-pass-only", definition=PASS_ONLY, roleArn=role)
            started_at = datetime.now(UTC)
            for number in range(batch):
                sfn.start_execution(stateMachineArn=floor["stateMachineArn"], name=f"pass-{number}")
            floor_seconds = finished(sfn, floor["stateMachineArn"], batch, started_at)
        finally:
            local.stop()
    return LetterRun(batch, seconds, floor_seconds)

"""The local stack's print-provider simulator, as `make run` and the benchmark use it."""

from __future__ import annotations

import json
import time
from typing import Any

from local.aws import embedded_aws
from local.faults import injected_faults
from local.gateway import HttpRequest, HttpResponse
from local.population_seed import Category
from local.stack import LocalStack


def _order(local: LocalStack) -> HttpResponse:
    """A letter for an adult of the local population, ordered over HTTP."""
    person = next(p for p in local.population if p.category is Category.ADULT)
    body = json.dumps({"identity_number": person.identity_number}).encode()
    return local.gateway().handle(HttpRequest("POST", "/v1/pin-letters", [("Content-Type", "application/json")], body))


def test_a_report_answered_503_is_made_again_and_the_letter_posted() -> None:
    """A provider tries a report again when the service is briefly unable to take it (here: Step
    Functions throttling the task's success three times), rather than drop it and leave the letter's
    workflow waiting for a report that never comes."""
    with embedded_aws() as session:
        local = LocalStack.start(session, print_delay_seconds=0.0, population_size=20)
        try:
            with injected_faults() as faults:
                faults.add("stepfunctions", "SendTaskSuccess", code="ThrottlingException", status=400, times=3)
                assert _order(local).status == 202
                deadline = time.monotonic() + 60
                while not local.outbox.letters() and time.monotonic() < deadline:
                    time.sleep(0.05)
        finally:
            local.stop()
    assert [letter["status"] for letter in local.outbox.letters()] == ["dispatched"]
    assert len(faults.injected) == 3  # three reports answered 503, the fourth taken


def test_a_job_is_taken_off_the_inbox_before_it_is_printed() -> None:
    """Printing may take days: a job left in the inbox while printed would be handed out again after
    the visibility timeout (a second letter with the same codes) and then dead-lettered."""
    with embedded_aws() as session:
        local = LocalStack.start(session, print_delay_seconds=3.0, population_size=20)
        try:
            assert _order(local).status == 202
            queue = local.stack.refs["PrintQueue"]
            sqs = session.client("sqs")
            names: Any = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            seen: list[int] = []
            deadline = time.monotonic() + 30
            while not local.outbox.letters() and time.monotonic() < deadline:
                counts = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=names)["Attributes"]
                seen.append(sum(int(v) for v in counts.values()))
                time.sleep(0.1)
        finally:
            local.stop()
    assert [letter["status"] for letter in local.outbox.letters()] == ["dispatched"]
    assert len(seen) > 10  # watched while it was printed
    assert seen[-10:] == [0] * 10  # taken: not in the inbox, seen or in flight, while printed

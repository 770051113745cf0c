"""The local stack's print-provider simulator, as `make run` and the benchmark use it."""

from __future__ import annotations

import json
import time
from typing import Any

from local.aws import embedded_aws
from local.faults import injected_faults
from local.gateway import HttpRequest, HttpResponse
from local.population_seed import Category
from local.print_provider import PrintProviderSimulator
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


def _handed_over(local: LocalStack) -> str | None:
    """The print job the workflow handed over (its message body), as its history records it; None before."""
    sfn = local.session.client("stepfunctions")
    machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    for execution in sfn.list_executions(stateMachineArn=machine)["executions"]:
        for event in sfn.get_execution_history(executionArn=execution["executionArn"])["events"]:
            scheduled = event.get("taskScheduledEventDetails")
            if scheduled and scheduled["resourceType"] == "sqs":
                return json.dumps(json.loads(scheduled["parameters"])["MessageBody"])
    return None


def _in_queues(local: LocalStack) -> list[int]:
    """The messages in the print inbox and in its dead-letter queue, seen or in flight."""
    sqs = local.session.client("sqs")
    names: Any = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    return [
        sum(
            int(v)
            for v in sqs.get_queue_attributes(QueueUrl=local.stack.refs[q], AttributeNames=names)["Attributes"].values()
        )
        for q in ("PrintQueue", "PrintDeadLetterQueue")
    ]


def _until(check: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_job_handed_out_twice_is_printed_once_and_a_stale_one_not_at_all() -> None:
    """SQS hands a message out at least once, and a hand-over tried again leaves the first try's job: a
    second job for a letter taken is dropped, and so is one no workflow waits for (the letter posted, or
    failed; its document may be gone), rather than left to be dead-lettered as a false alarm."""
    fetched: list[str] = []  # the PDFs the provider fetched: one per letter it prints

    def fetching(params: dict[str, Any], **_: Any) -> None:
        if params["Key"].endswith(".pdf"):
            fetched.append(params["Key"])

    with embedded_aws() as session:
        session.events.register("provide-client-params.s3.GetObject", fetching)  # on the clients made after
        local = LocalStack.start(session, print_delay_seconds=3.0, population_size=20)
        sqs, inbox = session.client("sqs"), local.stack.refs["PrintQueue"]
        try:
            assert _order(local).status == 202
            _until(lambda: _handed_over(local) is not None and _in_queues(local) == [0, 0])  # taken, being printed
            job = _handed_over(local)
            assert job is not None
            sqs.send_message(QueueUrl=inbox, MessageBody=job)  # the same job again, while it is printed
            _until(lambda: _in_queues(local) == [0, 0])
            dropped_while_printed = not local.outbox.letters()
            _until(lambda: len(local.outbox.letters()) == 1)
            sqs.send_message(QueueUrl=inbox, MessageBody=job)  # and once more, after it was posted
            _until(lambda: _in_queues(local) == [0, 0])
            # the first try's job of a hand-over tried again, for a letter not taken: its token is dead
            stale = json.loads(job) | {"letter_id": "0f8e2a4c-3b1d-4e5f-9a6b-7c8d9e0f1a2b", "task_token": "stale"}
            sqs.send_message(QueueUrl=inbox, MessageBody=json.dumps(stale))
            _until(lambda: _in_queues(local) == [0, 0])
            time.sleep(3.5)  # a second letter would have been posted by now
            counts = _in_queues(local)
        finally:
            local.stop()
    assert dropped_while_printed
    assert len(fetched) == 1  # printed once
    assert [letter["status"] for letter in local.outbox.letters()] == ["dispatched"]
    assert counts == [0, 0]  # both dropped: neither left in the inbox, nor dead-lettered


def test_a_dead_job_ahead_of_the_live_one_for_the_same_letter_does_not_keep_it_from_print() -> None:
    """A hand-over whose send went through but answered an error is tried again: the first try's job (its
    token dead) comes first, then the live one. The dead one is dropped; the letter is printed."""
    with embedded_aws() as session:
        local = LocalStack.start(session, print_delay_seconds=None, population_size=20)  # no simulator yet
        sqs, inbox = session.client("sqs"), local.stack.refs["PrintQueue"]
        simulator = None
        try:
            assert _order(local).status == 202
            received: list[Any] = []

            def received_one() -> bool:
                received.extend(sqs.receive_message(QueueUrl=inbox).get("Messages", []))
                return bool(received)

            _until(received_one)
            (live,) = received
            sqs.delete_message(QueueUrl=inbox, ReceiptHandle=live["ReceiptHandle"])
            dead = json.loads(live["Body"]) | {"task_token": "the-first-try-s"}
            sqs.send_message(QueueUrl=inbox, MessageBody=json.dumps(dead))
            sqs.send_message(QueueUrl=inbox, MessageBody=live["Body"])
            simulator = PrintProviderSimulator(
                session, inbox, local.gateway(), local.outbox, delay_seconds=0.0, identity_of=local.identity_of_letter
            )
            simulator.start()
            _until(lambda: len(local.outbox.letters()) == 1)
            _until(lambda: _in_queues(local) == [0, 0])
            counts = _in_queues(local)
        finally:
            if simulator is not None:
                simulator.stop()
            local.stop()
    assert [letter["status"] for letter in local.outbox.letters()] == ["dispatched"]
    assert counts == [0, 0]

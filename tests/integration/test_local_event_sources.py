"""The local stack's SQS event source reads a partial batch response as Lambda does."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, cast

import boto3
import pytest

from local.aws import embedded_aws
from local.event_sources import SqsEventSource
from local.functions import LambdaFunction


class Answering:
    """A function that answers every batch with the response given."""

    name = "answering"

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.batches: list[list[str]] = []

    def invoke(self, event: dict[str, Any]) -> Any:
        self.batches.append([r["messageId"] for r in event["Records"]])
        return self.answer(event) if callable(self.answer) else self.answer


@pytest.fixture
def aws() -> Iterator[boto3.Session]:
    with embedded_aws() as session:
        yield session


def left_after(aws: boto3.Session, answer: Any) -> int:
    """How many of 3 messages stay in the queue after one batch answered with `answer`."""
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=f"batch-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for n in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
    function = Answering(answer)
    source = SqsEventSource(
        aws, url, arn, cast("LambdaFunction", function), batch_size=10, reports_failures=True, retry_after_seconds=0
    )
    assert source.poll_once() == 3
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_the_messages_reported_stay_and_the_rest_are_deleted(aws: boto3.Session) -> None:
    assert (
        left_after(aws, lambda event: {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]})
        == 1
    )
    assert left_after(aws, {"batchItemFailures": []}) == 0
    assert left_after(aws, {"batchItemFailures": None}) == 0


@pytest.mark.parametrize("identifier", ["", "not-of-this-batch", None])
def test_a_failure_that_names_no_message_of_the_batch_fails_the_whole_batch(
    aws: boto3.Session, identifier: Any
) -> None:
    assert left_after(aws, {"batchItemFailures": [{"itemIdentifier": identifier}]}) == 3

"""The local stack's event sources (SQS, DynamoDB streams) read a partial batch response as Lambda does."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any, cast

import boto3
import pytest
from moto.dynamodbstreams.models import dynamodbstreams_backends
from moto.sqs import models as sqs_models

from local.aws import ACCOUNT_ID, REGION, embedded_aws
from local.event_sources import DynamoDbStreamEventSource, SqsEventSource
from local.functions import LambdaFunction
from local.template import Template, stream_sources
from tests.integration.letters import queue_empty


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


class Stream:
    """A table with a stream, and a mapping on it to a function that answers as it is told."""

    # the template's own: the notifier's mapping lets through locks written, and nothing else
    (LOCKS,) = next(
        source for source in stream_sources(Template.load()) if source.function == "NotifierFunction"
    ).patterns

    def __init__(self, aws: boto3.Session, answer: Any, *, most_retries: int = 2, batch_size: int = 10) -> None:
        self.dynamodb = aws.client("dynamodb")
        self.sqs = aws.client("sqs")
        self.table = f"events-{uuid.uuid4().hex[:8]}"
        table = self.dynamodb.create_table(
            TableName=self.table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )["TableDescription"]
        self.dead = self.sqs.create_queue(QueueName=f"dead-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        self.function = Handed(answer)
        self.source = DynamoDbStreamEventSource(
            aws,
            table["LatestStreamArn"],
            cast("LambdaFunction", self.function),
            starting_position="TRIM_HORIZON",
            batch_size=batch_size,
            patterns=[self.LOCKS],
            reports_failures=True,
            maximum_retry_attempts=most_retries,
            on_failure_queue_url=self.dead,
            retry_after_seconds=0,
        )

    def write(self, key: str, kind: str = "account-locked") -> None:
        self.dynamodb.put_item(TableName=self.table, Item={"pk": {"S": key}, "type": {"S": kind}})

    def given_up(self) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(QueueUrl=self.dead, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]


class Handed:
    """A function that records the keys of each batch it is handed, and answers as it is told."""

    name = "handed"
    arn = "arn:aws:lambda:eu-north-1:123456789012:function:handed"

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.batches: list[list[str]] = []

    def invoke(self, event: dict[str, Any]) -> Any:
        self.batches.append([r["dynamodb"]["NewImage"]["pk"]["S"] for r in event["Records"]])
        return self.answer(event) if callable(self.answer) else self.answer


def failing_at(*keys: str) -> Any:
    """Reports the records of these keys, the last first."""

    def answer(event: dict[str, Any]) -> dict[str, Any]:
        failed = [r for r in reversed(event["Records"]) if r["dynamodb"]["NewImage"]["pk"]["S"] in keys]
        return {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in failed]}

    return answer


def in_turn(*answers: Any) -> Any:
    """Answers each batch with the next of these."""
    left = iter(answers)

    def answer(event: dict[str, Any]) -> Any:
        return next(left)(event)

    return answer


def test_a_stream_hands_over_what_its_filter_lets_through_in_order_as_lambda_does(aws: boto3.Session) -> None:
    stream = Stream(aws, {"batchItemFailures": []})
    stream.write("a")
    stream.write("b", kind="login-failed")  # not a lock: the filter keeps it back
    stream.dynamodb.delete_item(TableName=stream.table, Key={"pk": {"S": "a"}})  # a REMOVE: not let through
    stream.write("c")
    assert stream.source.poll_once() == 2
    assert stream.function.batches == [["a", "c"]]
    assert stream.source.poll_once() == 0  # handed over once only
    assert stream.function.batches == [["a", "c"]]


def test_a_stream_record_as_the_function_gets_it(aws: boto3.Session) -> None:
    seen: list[dict[str, Any]] = []
    stream = Stream(aws, lambda event: seen.extend(event["Records"]))
    stream.write("a")
    stream.source.poll_once()
    (record,) = seen
    assert record["eventSource"] == "aws:dynamodb"
    assert record["eventName"] == "INSERT"
    assert record["awsRegion"] == "eu-north-1"
    assert record["eventSourceARN"].startswith("arn:aws:dynamodb:")
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], float)
    json.dumps(record)  # as Lambda sends it: JSON


def test_a_stream_batch_is_handed_over_again_from_its_first_record_reported(aws: boto3.Session) -> None:
    """Those before it are done; it and those after it come again, until it is not reported."""
    stream = Stream(aws, in_turn(failing_at("b"), failing_at()))
    for key in "abc":
        stream.write(key)
    stream.source.poll_once()
    stream.source.poll_once()
    assert stream.source.poll_once() == 0
    assert stream.function.batches == [["a", "b", "c"], ["b", "c"]]
    assert stream.given_up() == []


def test_a_stream_batch_that_raised_comes_again_whole(aws: boto3.Session) -> None:
    def answer(event: dict[str, Any]) -> dict[str, Any]:
        if len(stream.function.batches) == 1:
            raise RuntimeError("the function failed")
        return {"batchItemFailures": []}

    stream = Stream(aws, answer)
    stream.write("a")
    stream.write("b")
    stream.source.poll_once()
    stream.source.poll_once()
    assert stream.function.batches == [["a", "b"], ["a", "b"]]


def test_a_stream_batch_failing_past_its_retries_goes_to_the_on_failure_destination(aws: boto3.Session) -> None:
    """Its place in the stream (not its records), and the stream moves on."""
    stream = Stream(aws, failing_at("b"), most_retries=2)
    for key in "abc":
        stream.write(key)
    for _ in range(2):  # the first try (a done), and one retry
        stream.source.poll_once()
    assert stream.given_up() == []
    stream.source.poll_once()  # the second retry, the last
    (given_up,) = stream.given_up()
    info = given_up["DDBStreamBatchInfo"]
    assert info["batchSize"] == 2  # b and c
    assert info["shardId"].startswith("shardId-")
    assert given_up["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert "NewImage" not in json.dumps(given_up)
    stream.write("d")
    stream.source.poll_once()
    assert stream.function.batches == [["a", "b", "c"], ["b", "c"], ["b", "c"], ["d"]]


def test_a_stream_batch_with_several_reported_is_handed_over_again_from_the_first(aws: boto3.Session) -> None:
    stream = Stream(aws, in_turn(failing_at("b", "c"), failing_at()))
    for key in "abcd":
        stream.write(key)
    stream.source.poll_once()
    stream.source.poll_once()
    assert stream.function.batches == [["a", "b", "c", "d"], ["b", "c", "d"]]


def test_a_stream_batch_that_gets_further_has_its_retries_counted_afresh(aws: boto3.Session) -> None:
    """Retries are the record's: one that failed once and is done then, whose next fails, is not given up."""
    stream = Stream(aws, in_turn(failing_at("a"), failing_at("b"), failing_at()), most_retries=1)
    for key in "abc":
        stream.write(key)
    for _ in range(3):
        stream.source.poll_once()
    assert stream.given_up() == []
    assert stream.function.batches == [["a", "b", "c"], ["a", "b", "c"], ["b", "c"]]


def test_a_stream_s_reads_leave_moto_no_iterators_behind(aws: boto3.Session) -> None:
    """A poller reads every quarter of a second, each read with an iterator of its own: the one read is
    forgotten (moto would keep them all, a few KB each, for as long as the local stack runs)."""
    stream = Stream(aws, {"batchItemFailures": []})
    iterators = dynamodbstreams_backends[ACCOUNT_ID][REGION].shard_iterators
    before = len(iterators)
    for _ in range(20):
        stream.source.poll_once()
    assert len(iterators) == before


def test_a_stream_is_caught_up_once_what_was_written_before_is_handed_over(aws: boto3.Session) -> None:
    stream = Stream(aws, {"batchItemFailures": []})
    stream.source.start()
    try:
        for key in "abc":
            stream.write(key)
        assert stream.source.caught_up(timeout=5)
        assert [key for batch in stream.function.batches for key in batch] == ["a", "b", "c"]
    finally:
        stream.source.stop()


def test_a_stream_that_keeps_failing_is_not_caught_up(aws: boto3.Session) -> None:
    stream = Stream(aws, failing_at("a"), most_retries=-1)
    stream.source.start()
    try:
        stream.write("a")
        assert not stream.source.caught_up(timeout=1)
    finally:
        stream.source.stop()


class TickingClock:
    """moto's SQS clock, a millisecond on at each reading, so that a message's delay or its visibility runs
    out at the reading a test chooses: between two calls, or within one (moto reads it for each count)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000_000.0
        self.readings = 0

    def __call__(self) -> float:
        self.now += 1
        self.readings += 1
        return self.now

    def runs_out_at(self, at: float, reading: int) -> None:
        """What runs out at moto's time `at` does so at reading number `reading` from now on (the first is 0)."""
        self.now, self.readings = at - reading - 1, 0


@pytest.mark.parametrize("move", ["its delay runs out", "it comes back"])
def test_the_tests_wait_for_an_empty_queue_counts_a_message_whose_time_runs_out_while_it_reads(
    aws: boto3.Session, monkeypatch: pytest.MonkeyPatch, move: str
) -> None:
    """A notice put off for a second was once missed: moto took the counts asked in one call at moments of
    their own, and the notice came back between them. At whichever of the wait's readings of the time a
    message's delay, or its visibility (received: a retry coming back), runs out, it is counted."""
    clock = TickingClock()
    monkeypatch.setattr(sqs_models, "unix_time_millis", clock)
    sqs = aws.client("sqs")
    longest = 0
    for reading in range(100):
        url = sqs.create_queue(QueueName=f"moving-{reading}")["QueueUrl"]
        queue = sqs_models.sqs_backends[ACCOUNT_ID][REGION].get_queue(f"moving-{reading}")
        sqs.send_message(QueueUrl=url, MessageBody="m", DelaySeconds=0 if move == "it comes back" else 1)
        if move == "it comes back":
            sqs.receive_message(QueueUrl=url, VisibilityTimeout=1)
        [message] = queue._messages  # when its time runs out, as moto keeps it
        clock.runs_out_at(message.visible_at + 1 if move == "it comes back" else message.delayed_until, reading)
        assert not queue_empty(sqs, url), f"missed: its time ran out at reading {reading}"
        longest = max(longest, clock.readings)
    assert 0 < longest < 100  # the wait read moto's clock, and a time ran out at each reading it made
    assert queue_empty(sqs, sqs.create_queue(QueueName="empty")["QueueUrl"])  # and an empty queue is found so

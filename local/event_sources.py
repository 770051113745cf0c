"""Lambda's event source mappings, as the template declares them: SQS queues and DynamoDB streams.

SQS: poll, invoke, delete. A batch goes to the function as Lambda would send it; with
ReportBatchItemFailures, the messages the function reports failed stay in the queue and come back after
the visibility timeout (and, after the queue's maxReceiveCount, moto moves them to the dead-letter
queue); the rest are deleted. The local stack shortens the wait before a failed message comes back
(`retry_after_seconds`).

DynamoDB streams: read in order, filtered by the mapping's patterns (moto's EventBridge pattern matcher:
Lambda's filters have EventBridge's syntax), handed over in batches. A batch that fails is handed over
again from its first record reported failed (all of it when the function raised, or reported what is not
of the batch); after MaximumRetryAttempts, its place in the stream goes to the on-failure destination
and the stream moves on. Not done here: bisecting a failed batch, and MaximumRecordAgeInSeconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import boto3
from botocore.config import Config
from moto.dynamodbstreams.models import dynamodbstreams_backends
from moto.events.models import EventPattern

from local.aws import ACCOUNT_ID, REGION
from local.functions import LambdaFunction

log = logging.getLogger("local.event_sources")
POLL_SECONDS = 0.05


class Poller(ABC):
    """A thread that polls (`poll_once`, how many it took) until stopped, resting when there was nothing."""

    idle_seconds = POLL_SECONDS

    def __init__(self, name: str, source: str) -> None:
        self._source = source
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)

    @abstractmethod
    def poll_once(self) -> int: ...

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                if not self.poll_once():
                    self._stopped.wait(self.idle_seconds)
            except Exception:
                log.exception("polling %s failed", self._source)
                self._stopped.wait(1)


class SqsEventSource(Poller):
    def __init__(
        self,
        session: boto3.Session,
        queue_url: str,
        queue_arn: str,
        function: LambdaFunction,
        *,
        batch_size: int,
        reports_failures: bool,
        retry_after_seconds: int | None = None,
    ) -> None:
        self._sqs = session.client("sqs")
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._function = function
        self._batch_size = batch_size
        self._reports_failures = reports_failures
        # Locally, a failed message may come back sooner than the queue's visibility timeout says,
        # so that a retry shows in seconds; None keeps the queue's own timing.
        self._retry_after = retry_after_seconds
        super().__init__(f"sqs-{function.name}", queue_url)

    def _reported(self, result: Any, messages: Sequence[Mapping[str, Any]]) -> set[str]:
        """The messages a partial batch response reports failed. As Lambda has it: an identifier that is
        missing, empty or not one of the batch's fails the whole batch."""
        batch = {m["MessageId"] for m in messages}
        reported = {f.get("itemIdentifier") for f in (result or {}).get("batchItemFailures") or []}
        if not reported <= batch:
            log.error("%s reported failures that are not of its batch: all %d fail", self._function.name, len(batch))
            return batch
        return {str(r) for r in reported}

    def poll_once(self) -> int:
        """Receive one batch and hand it to the function; returns how many messages it held."""
        messages = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [self._record(m) for m in messages]}
        try:
            result = self._function.invoke(event)
            failed = self._reported(result, messages) if self._reports_failures else set()
        except Exception:
            log.exception("%s failed on a batch of %d", self._function.name, len(messages))
            failed = {m["MessageId"] for m in messages}  # the whole batch comes back
        done = [m for m in messages if m["MessageId"] not in failed]
        if self._retry_after is not None:
            for message in messages:
                if message["MessageId"] in failed:
                    self._sqs.change_message_visibility(
                        QueueUrl=self._queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=self._retry_after,
                    )
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return len(messages)

    def _record(self, message: Any) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": hashlib.md5(message["Body"].encode(), usedforsecurity=False).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": REGION,
        }


class DynamoDbStreamEventSource(Poller):
    # a lock told a quarter of a second later; each read costs moto a millisecond under its global lock
    idle_seconds = 0.25

    def __init__(
        self,
        session: boto3.Session,
        stream_arn: str,
        function: LambdaFunction,
        *,
        starting_position: str,
        batch_size: int,
        patterns: Sequence[str],
        reports_failures: bool,
        maximum_retry_attempts: int,
        on_failure_queue_url: str | None,
        retry_after_seconds: float,
    ) -> None:
        # botocore names a stream's endpoint by its account; moto answers at the region's
        self._streams = session.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))
        self._sqs = session.client("sqs")
        self._stream_arn = stream_arn
        self._function = function
        self._batch_size = batch_size
        self._patterns = [EventPattern.load(pattern) for pattern in patterns]
        self._reports_failures = reports_failures
        self._most_retries = maximum_retry_attempts
        self._on_failure = on_failure_queue_url
        self._retry_after = retry_after_seconds
        self._iterators = {
            shard["ShardId"]: self._streams.get_shard_iterator(
                StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType=starting_position
            )["ShardIterator"]
            for shard in self._streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
        }
        self._pending: list[dict[str, Any]] = []  # read and let through, not handed over yet (in order)
        self._shard_of: dict[str, str] = {}  # a pending record's shard, by its sequence number
        self._failures = 0  # of the batch at the head of `_pending`
        self._rounds = 0  # polls done
        self._idle = threading.Condition()
        self._caught_up = False  # the last poll found nothing to hand over
        super().__init__(f"stream-{function.name}", stream_arn)

    def _read(self) -> None:
        for shard, iterator in list(self._iterators.items()):
            if iterator is None:  # a shard closed and read to its end
                continue
            answer = self._streams.get_records(ShardIterator=iterator)
            self._iterators[shard] = answer.get("NextShardIterator")
            _forget(iterator)
            records = [self._record(r) for r in answer.get("Records", [])]
            for record in filter(self._let_through, records):
                self._pending.append(record)
                self._shard_of[record["dynamodb"]["SequenceNumber"]] = shard

    def _let_through(self, record: Mapping[str, Any]) -> bool:
        return not self._patterns or any(pattern.matches_event(cast(Any, record)) for pattern in self._patterns)

    def _record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """As Lambda hands it over: its time in seconds, the mapping's stream and region named."""
        change = dict(record["dynamodb"])
        if isinstance(created := change.get("ApproximateCreationDateTime"), datetime):
            change["ApproximateCreationDateTime"] = created.timestamp()
        return {**record, "dynamodb": change, "awsRegion": REGION, "eventSourceARN": self._stream_arn}

    def _failed_from(self, result: Any, batch: Sequence[Mapping[str, Any]]) -> int | None:
        """Where the batch failed (its index): None when none failed."""
        if not self._reports_failures:
            return None
        reported = {f.get("itemIdentifier") for f in (result or {}).get("batchItemFailures") or []}
        numbers = [r["dynamodb"]["SequenceNumber"] for r in batch]
        if not reported:
            return None
        if not reported <= set(numbers):
            log.error("%s reported failures that are not of its batch: all %d fail", self._function.name, len(batch))
            return 0
        return min(numbers.index(str(number)) for number in reported)

    def poll_once(self) -> int:
        """Hand the next batch over (after reading the stream); returns how many records it held."""
        handed = self._hand_over()
        with self._idle:
            self._rounds += 1
            self._caught_up = not handed
            self._idle.notify_all()
        return handed

    def caught_up(self, timeout: float) -> bool:
        """Wait until a poll begun after this call found nothing to hand over: every record written before
        it was handed over (or given up on). False if not so within `timeout` seconds."""
        with self._idle:
            begun_after = self._rounds + 2  # the poll under way may have read the stream before the call
            return self._idle.wait_for(lambda: self._rounds >= begun_after and self._caught_up, timeout)

    def _done(self, count: int) -> None:
        for record in self._pending[:count]:
            self._shard_of.pop(record["dynamodb"]["SequenceNumber"], None)
        del self._pending[:count]

    def _hand_over(self) -> int:
        self._read()
        batch = self._pending[: self._batch_size]
        if not batch:
            return 0
        try:
            failed_from = self._failed_from(self._function.invoke({"Records": batch}), batch)
        except Exception:
            log.exception("%s failed on a batch of %d", self._function.name, len(batch))
            failed_from = 0
        if failed_from is None:
            self._done(len(batch))
            self._failures = 0
            return len(batch)
        self._done(failed_from)
        self._failures = 1 if failed_from else self._failures + 1
        if 0 <= self._most_retries < self._failures:
            self._give_up(batch[failed_from:])
            self._done(len(batch) - failed_from)
            self._failures = 0
        else:
            self._stopped.wait(self._retry_after)
        return len(batch)

    def _give_up(self, records: Sequence[Mapping[str, Any]]) -> None:
        """The records' place in the stream (not the records) to the on-failure destination, as Lambda
        sends it."""
        log.error("%s gave up on %d records of its stream", self._function.name, len(records))
        if self._on_failure is None:
            return
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        self._sqs.send_message(
            QueueUrl=self._on_failure,
            MessageBody=json.dumps(
                {
                    "requestContext": {
                        "requestId": str(uuid.uuid4()),
                        "functionArn": self._function.arn,
                        "condition": "RetryAttemptsExhausted",
                        "approximateInvokeCount": self._failures,
                    },
                    "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
                    "version": "1.0",
                    "timestamp": datetime.now(UTC).isoformat(),
                    "DDBStreamBatchInfo": {
                        "shardId": self._shard_of[first["SequenceNumber"]],
                        "startSequenceNumber": first["SequenceNumber"],
                        "endSequenceNumber": last["SequenceNumber"],
                        "approximateArrivalOfFirstRecord": first.get("ApproximateCreationDateTime"),
                        "approximateArrivalOfLastRecord": last.get("ApproximateCreationDateTime"),
                        "batchSize": len(records),
                        "streamArn": self._stream_arn,
                    },
                }
            ),
        )


def _forget(iterator: str) -> None:
    """moto keeps every shard iterator it gave out (a few KB each), and a poller asks for one at each read:
    the one read is forgotten, as AWS lets it lapse."""
    streams = dynamodbstreams_backends[ACCOUNT_ID][REGION]
    streams.shard_iterators.pop(iterator, None)

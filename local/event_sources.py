"""Lambda's SQS event source mappings, as the template declares them: poll, invoke, delete.

A batch goes to the function as Lambda would send it; with ReportBatchItemFailures, the messages the
function reports failed stay in the queue and come back after the visibility timeout (and, after the
queue's maxReceiveCount, moto moves them to the dead-letter queue); the rest are deleted. The local
stack shortens the wait before a failed message comes back (`retry_after_seconds`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import boto3

from local.aws import REGION
from local.functions import LambdaFunction

log = logging.getLogger("local.event_sources")
POLL_SECONDS = 0.05


class SqsEventSource:
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
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sqs-{function.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)

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

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                if not self.poll_once():
                    self._stopped.wait(POLL_SECONDS)
            except Exception:
                log.exception("polling %s failed", self._queue_url)
                self._stopped.wait(1)

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

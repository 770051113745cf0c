"""Delivers queued notices (the notice queue, SQS) by SMS and e-mail.

Each message is a notice; a failed one is reported back (partial batch response) and delivered
again later, until it lands in the dead-letter queue, which raises an alarm.

It also tells of each lock the security events' stream (DynamoDB Streams) hands it, as the lock is
written: its notice queued, to be delivered as every notice is. The attempt that locks an account
queues nothing itself (one call fewer on the login path), and no notice goes out for a lock not made.
"""

from __future__ import annotations

from minid import coldstart

coldstart.loading()

import os
from collections.abc import Sequence
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from minid import deadline, observability, wiring
from minid.adapters.aws_errors import error_name
from minid.adapters.events import written_event
from minid.domain.events import SecurityEventType
from minid.domain.lockout import lock_notice
from minid.domain.notices import (
    Channel,
    Delivered,
    Notice,
    NoticeDelivery,
    NoticeInFlight,
    NoticeNotYet,
    NoticeQueue,
    notice_from_json,
)

logger = observability.logger()

# A send is recorded by a write exempt from the deadline (refused, a delivery again would send twice): with
# DynamoDB hanging, a try of it takes LONGEST_CALL_SECONDS, its last attempt sent only while it fits before
# a moment before the invocation's end (minid.deadline.exempt). Kept after the notices' deadline, in the
# function's 29 seconds (template.yaml): told as unrecorded when it cannot be made, rather than Lambda
# stopping the function in it (the batch given back whole, nothing told, the send made again later).
RECORDING_KEPT_SECONDS = deadline.kept_for(wiring.LONGEST_CALL_SECONDS)


@cache
def services() -> NoticeDelivery:
    return wiring.notifier(os.environ, unrecorded, partly, given_up)


@cache
def notice_queue() -> NoticeQueue:
    return wiring.notifier_queue(os.environ)


def unrecorded(notice: Notice, channels: Sequence[Channel]) -> None:
    """Sent, but the delivery ledger not told (DynamoDB failing): a delivery of the notice again would
    send on these channels twice. Told whether or not the delivery then fails on another channel."""
    logger.warning("Notice sent but not recorded", extra={"notice": notice.kind.value, "channels": list(channels)})
    observability.count("NoticesNotRecorded")  # no dimensions: an alarm may watch it as it is written


def partly(notice: Notice, delivered: Delivered) -> None:
    """Sent, refused or given up on a channel by a delivery that then failed on another: told as it happens (the
    delivery again skips that channel, and would not tell it)."""
    told("Notice partly delivered", notice, delivered)


def given_up(notice: Notice, channel: Channel, error: Exception) -> None:
    """A code's channel given up on for the next (SMS failing for long, nothing sent): the failure told by
    its name (never its message: SNS's quotes the number), as the delivery, done, raises none."""
    logger.warning(
        "A code's channel given up on for the next",
        extra={"notice": notice.kind.value, "channel": channel.value, "error": error_name(error)},
    )
    observability.count("NoticesGivenUp", notice=notice.kind.value, channel=channel.value)


def told(message: str, notice: Notice, delivered: Delivered) -> None:
    logger.info(
        message,
        extra={
            "notice": notice.kind.value,
            "channels": [c.value for c in delivered.sent],
            "refused": [c.value for c in delivered.refused],
            "given_up": [c.value for c in delivered.given_up],
        },
    )
    for channel in delivered.sent:
        observability.count("NoticesSent", notice=notice.kind.value, channel=channel.value)
    for channel in delivered.refused:  # the provider refuses the recipient: not tried again
        observability.count("NoticesRefused", notice=notice.kind.value, channel=channel.value)
    if delivered.refusals_unrecorded:  # (DynamoDB failing) a later delivery may try them again, refused again
        logger.warning(
            "Notice refused but not recorded",
            extra={"notice": notice.kind.value, "channels": [c.value for c in delivered.refusals_unrecorded]},
        )


def deliver(notice: Notice) -> None:
    delivered = services().deliver(notice)
    if delivered.unproven:  # its change was never made: dropped (a rate out of the ordinary is a fault)
        logger.warning("Notice dropped: its change was not made", extra={"notice": notice.kind.value})
        observability.count("NoticesUnproven", notice=notice.kind.value)
        observability.count("NoticesUnproven")  # no dimensions: an alarm may watch it as it is written
        return
    told("Notice delivered", notice, delivered)
    if delivered.too_late:  # a reset's code (or its no-letter notice), expired before it could be sent
        logger.warning("A reset's message not sent before it expired", extra={"notice": notice.kind.value})
        observability.count("ResetCodesTooLate")  # ResetCodesTooLateAlarm


@logger.inject_lambda_context(clear_state=True, log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event["Records"]
    if records and records[0].get("eventSource") == "aws:dynamodb":
        return locks_told(records, context)
    return notices_delivered(records, context)


def locks_told(records: list[dict[str, Any]], context: LambdaContext) -> dict[str, Any]:
    """The security events' stream (filtered to locks written, template.yaml): each lock's notice queued,
    in the stream's order. The partial batch response of a stream: the first record that fails is
    reported, and Lambda hands the stream on again from it (those before it are done). A notice queued
    twice (a record handed over again) is delivered once: its id is the lock's, or, for a lock after wrong
    passwords, the person's and the day's (lockout.lock_notice: told once a day). Each under the deadline:
    one that runs out of time is reported, not the whole invocation timed out (an error, the batch again)."""
    for record in records:
        try:
            written = written_event(record)
            if written is None:  # the filter lets none through: a record that writes nothing is not ours
                continue
            person, event = written
            if event.type is SecurityEventType.ACCOUNT_LOCKED:
                with deadline.within(context):
                    notice_queue().enqueue(lock_notice(person, event))
            else:  # the filter lets none through either: told to whoever reads the logs, not tried again
                logger.error("Not a lock: no notice", extra={"event": event.type.value})
        except Exception as error:
            logger.warning("Lock's notice not queued yet", extra={"error": type(error).__name__})
            observability.count("NoticesNotDelivered")  # NoticesFailingAlarm, NoticeKeepsFailingAlarm
            return {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}
    return {"batchItemFailures": []}


def notices_delivered(records: list[dict[str, Any]], context: LambdaContext) -> dict[str, Any]:
    """The SQS partial batch response (ReportBatchItemFailures): each notice that must wait
    (NoticeNotYet) or failed is reported back by itself, even when every notice of the batch is:
    waiting is not the function failing, and raising would only add an error to the alarms.

    Powertools' batch utility does the same, but loads asyncio and every event source's data class
    (about 45 ms of this function's cold start, `make bench`) for this loop."""
    failures: list[dict[str, str]] = []
    for record in records:
        notice: Notice | None = None
        try:
            notice = notice_from_json(record["body"])
            # each notice under the deadline, as a request is
            with deadline.within(context, kept_seconds=RECORDING_KEPT_SECONDS):
                deliver(notice)
        except (NoticeNotYet, NoticeInFlight):  # waits: its change not made yet, or another sender's claim
            failures.append({"itemIdentifier": record["messageId"]})
        except Exception as error:  # any failure: the notice is delivered again later
            # the error's type (and AnswerLost's cause: a code or a type's name), never a message: a
            # provider's may quote the phone number or address
            cause = getattr(error, "cause", "")  # a send that may have gone out: how it ended (AnswerLost)
            kind = {"notice": notice.kind.value} if notice is not None else {}  # None: it could not be read
            logger.warning(
                "Notice not delivered yet",
                extra={
                    "error": type(error).__name__,
                    **kind,
                    **({"cause": cause} if cause else {}),
                    **observability.undone(error),  # a claim not released, a channel not given back
                },
            )
            observability.count("NoticesNotDelivered")  # NoticesFailingAlarm, NoticeKeepsFailingAlarm
            failures.append({"itemIdentifier": record["messageId"]})
            later(record, notice)
    return {"batchItemFailures": failures}


def later(record: dict[str, Any], notice: Notice | None) -> None:
    """A notice that failed comes back later the more often it has failed (a reset's code soon); should
    that not be said, it comes back at the queue's own timeout. Not under the deadline: the deadline's
    budget is a whole attempt's (4.5 s), and refused after slow sends in the batch, the failed notices would
    come back every minute and reach their dead-letter queue in a quarter of an hour, not three hours."""
    try:
        receive_count = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        services().failed(record["eventSourceARN"], record["receiptHandle"], receive_count, notice)
    except Exception as error:
        logger.warning("Notice retry not put off", extra={"error": type(error).__name__})


coldstart.loaded()

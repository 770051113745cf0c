"""Delivers queued notices (the notice queue, SQS) by SMS and e-mail.

Each message is a notice; a failed one is reported back (partial batch response) and delivered
again later, until it lands in the dead-letter queue, which raises an alarm.
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
from minid.domain.notices import Channel, Notice, NoticeDelivery, NoticeInFlight, NoticeNotYet, notice_from_json

logger = observability.logger()


@cache
def services() -> NoticeDelivery:
    return wiring.notifier(os.environ, unrecorded)


def unrecorded(notice: Notice, channels: Sequence[Channel]) -> None:
    """Sent, but the delivery ledger not told (DynamoDB failing): a delivery of the notice again would
    send on these channels twice. Told whether or not the delivery then fails on another channel."""
    logger.warning("Notice sent but not recorded", extra={"notice": notice.kind.value, "channels": list(channels)})
    observability.count("NoticesNotRecorded")  # no dimensions: an alarm may watch it as it is written


def deliver(notice: Notice) -> None:
    delivered = services().deliver(notice)
    if delivered.unproven:  # its change was never made: dropped (a rate out of the ordinary is a fault)
        logger.info("Notice dropped: its change was not made", extra={"notice": notice.kind.value})
        observability.count("NoticesUnproven", notice=notice.kind.value)
        return
    logger.info(
        "Notice delivered",
        extra={
            "notice": notice.kind.value,
            "channels": [c.value for c in delivered.sent],
            "refused": [c.value for c in delivered.refused],
        },
    )
    for channel in delivered.sent:
        observability.count("NoticesSent", notice=notice.kind.value, channel=channel.value)
    for channel in delivered.refused:  # the provider refuses the recipient: not tried again
        observability.count("NoticesRefused", notice=notice.kind.value, channel=channel.value)
    if delivered.too_late:  # a reset's code, expired before it could be sent: the person waits in vain
        logger.warning("Code not sent before it expired", extra={"notice": notice.kind.value})
        observability.count("ResetCodesTooLate")  # ResetCodesTooLateAlarm


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The SQS partial batch response (ReportBatchItemFailures): each notice that must wait
    (NoticeNotYet) or failed is reported back by itself, even when every notice of the batch is:
    waiting is not the function failing, and raising would only add an error to the alarms.

    Powertools' batch utility does the same, but loads asyncio and every event source's data class
    (about 45 ms of this function's cold start, `make bench`) for this loop."""
    failures: list[dict[str, str]] = []
    for record in event["Records"]:
        notice: Notice | None = None
        try:
            notice = notice_from_json(record["body"])
            with deadline.within(context):  # each notice under the deadline, as a request is
                deliver(notice)
        except (NoticeNotYet, NoticeInFlight):  # waits: its change not made yet, or another sender's claim
            failures.append({"itemIdentifier": record["messageId"]})
        except Exception as error:  # any failure: the notice is delivered again later
            # the error's type only: a provider's message may quote the phone number or address
            logger.warning("Notice not delivered yet", extra={"error": type(error).__name__})
            observability.count("NoticesNotDelivered")  # NoticesFailingAlarm
            failures.append({"itemIdentifier": record["messageId"]})
            later(record, notice)
    return {"batchItemFailures": failures}


def later(record: dict[str, Any], notice: Notice | None) -> None:
    """A notice that failed comes back later the more often it has failed (a reset's code soon); should
    that not be said, it comes back at the queue's own timeout."""
    try:
        receive_count = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        services().failed(record["eventSourceARN"], record["receiptHandle"], receive_count, notice)
    except Exception as error:
        logger.warning("Notice retry not put off", extra={"error": type(error).__name__})


coldstart.loaded()

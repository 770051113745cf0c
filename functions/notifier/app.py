"""Delivers queued notices (the notice queue, SQS) by SMS and e-mail.

Each message is a notice; a failed one is reported back (partial batch response) and delivered
again later, until it lands in the dead-letter queue, which raises an alarm.
"""

from __future__ import annotations

from minid import coldstart

coldstart.loading()

import os
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from minid import observability, wiring
from minid.domain.notices import NoticeDelivery, notice_from_json

logger = observability.logger()
# A notice that must wait (NoticeNotYet) or failed is reported back by itself, even when every notice of
# the batch is: waiting is not the function failing, and raising would only add an error to the alarms.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@cache
def services() -> NoticeDelivery:
    return wiring.notifier(os.environ)


def deliver(record: SQSRecord) -> None:
    notice = notice_from_json(record.body)
    sent = services().deliver(notice)
    logger.info("Notice delivered", extra={"notice": notice.kind.value, "channels": [c.value for c in sent]})
    for channel in sent:
        observability.count("NoticesSent", notice=notice.kind.value, channel=channel.value)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(process_partial_response(event=event, record_handler=deliver, processor=processor, context=context))


coldstart.loaded()

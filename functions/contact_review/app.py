"""The daily review of the contact register (an EventBridge schedule): a reminder at 16 months without
an update or confirmation, and the contact marked stale at 18."""

from __future__ import annotations

from minid import coldstart

coldstart.loading()

import os
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from minid import deadline, observability, wiring
from minid.domain.contact_changes import ContactReview

logger = observability.logger()


@cache
def services() -> ContactReview:
    return wiring.contact_review(os.environ)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with deadline.within(context):
        run = services().run(lambda: context.get_remaining_time_in_millis() / 1000)
    outcome = {"reminded": run.reminded, "marked_stale": run.stale, "finished": run.finished}
    logger.info("Contact register reviewed", extra=outcome)
    return outcome


coldstart.loaded()

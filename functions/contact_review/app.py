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


class ReviewFailed(Exception):
    """The review failed (EventBridge invokes it again). Raised under the name of the error it stands
    for, without its message or cause: Lambda writes what a handler raises to the log as it is, past the
    masking formatter, and an error's message may quote what it read. The error itself, masked, is logged."""


@cache
def services() -> ContactReview:
    return wiring.contact_review(os.environ)


@logger.inject_lambda_context(clear_state=True, log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        with deadline.within(context):
            run = services().run(lambda: context.get_remaining_time_in_millis() / 1000)
    except Exception as error:
        logger.exception("Contact register review failed", extra={"error": type(error).__name__})
        raise ReviewFailed(type(error).__name__) from None
    outcome = {"reminded": run.reminded, "marked_stale": run.stale, "finished": run.finished, "behind": run.behind}
    logger.info("Contact register reviewed", extra=outcome)
    if run.behind:
        observability.count("ContactReviewBehind")  # no dimensions: an alarm may watch it as it is written
    return outcome


coldstart.loaded()

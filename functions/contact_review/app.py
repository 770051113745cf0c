"""The daily review of the contact register (an EventBridge schedule): a reminder at 16 months without
an update or confirmation, and the contact marked stale at 18."""

from __future__ import annotations

from minid import coldstart, deadline

coldstart.loading()

import os
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from minid import observability, wiring
from minid.domain.contact_changes import ContactReview

logger = observability.logger()


@cache
def services() -> ContactReview:
    return wiring.contact_review(os.environ)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    with deadline.within(context):
        reminded, stale = services().run()
    logger.info("Contact register reviewed", extra={"reminded": reminded, "marked_stale": stale})
    return {"reminded": reminded, "marked_stale": stale}


coldstart.loaded()

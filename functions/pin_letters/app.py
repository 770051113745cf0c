"""PIN code letters: ordering one, and the logged-in person's own letters (list and block)."""

from __future__ import annotations

from minid import coldstart

coldstart.loading()

import os
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Header
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from minid import observability, wiring
from minid.api import BODY_PROBLEMS, bearer_token, client_address, create_resolver, handle, responses
from minid.api.letters import ORDER_ACCEPTED, OrderAccepted, PinLetterList, PinLetterOrder, PinLetterView

logger = observability.logger()
app = create_resolver()


BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


@cache
def services() -> wiring.PinLetterServices:
    return wiring.pin_letters(os.environ)


@app.post(
    "/v1/pin-letters",
    status_code=202,
    summary="Order a PIN code letter",
    description="The letter goes by post to the address in the population register. The answer is the "
    "same for every valid identity number: whether a letter is sent is never told here.",
    tags=["PIN code letters"],
    operation_id="orderPinLetter",
    responses=responses(202, "The order is received", *BODY_PROBLEMS, 429, 503),
)
def order_pin_letter(
    order: PinLetterOrder,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="idempotency-key",
            min_length=1,
            max_length=128,
            pattern=r"^[\x21-\x7e]+$",
            description="Makes a repeated request (a retry) the same order",
        ),
    ] = None,
) -> OrderAccepted:
    built = services()  # built here, in the route: a failure to build is a 503 like any other
    built.once_only.use_lambda_context(app.lambda_context)
    built.ordering.order(order.identity_number, client_address(app), idempotency_key)
    return OrderAccepted(message=ORDER_ACCEPTED)


@app.get(
    "/v1/me/pin-letters",
    summary="The logged-in person's PIN code letters, newest first",
    tags=["PIN code letters"],
    operation_id="getMyPinLetters",
    security=BEARER,
    responses=responses(200, "The letters", 401, 503),
)
def get_my_pin_letters() -> PinLetterList:
    built = services()
    letters = built.account.letters(built.sessions.authenticate(bearer_token(app)).person)
    return PinLetterList(letters=[PinLetterView.of(letter) for letter in letters])


@app.post(
    "/v1/me/pin-letters/block",
    summary="Block the active letter (and any on its way): none of their codes will work",
    tags=["PIN code letters"],
    operation_id="blockMyPinLetters",
    security=BEARER,
    responses=responses(200, "The letters, the blocked ones blocked", 401, 503),
)
def block_my_pin_letters() -> PinLetterList:
    built = services()
    letters = built.account.block(built.sessions.authenticate(bearer_token(app)).person)
    return PinLetterList(letters=[PinLetterView.of(letter) for letter in letters])


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True, log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)


coldstart.loaded()

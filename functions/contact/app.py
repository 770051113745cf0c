"""The contact register (kontaktregisteret): a logged-in person's mobile, e-mail and reservation."""

from __future__ import annotations

from minid import coldstart

coldstart.loading()

import os
from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from minid import observability, wiring
from minid.api import BODY_PROBLEMS, bearer_token, create_resolver, handle, responses
from minid.api.contact import ContactChange, ContactVerification, ContactView, Reservation
from minid.api.enrolment import VerificationSent
from minid.domain.contact_changes import UNCHANGED
from minid.domain.contacts import ContactRecord
from minid.domain.notices import CHANNEL_NAMES, Channel
from minid.domain.sessions import Session

logger = observability.logger()
app = create_resolver()
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
TAGS = ["Contact register"]
CHANNELS = {"mobile": Channel.SMS, "email": Channel.EMAIL}


@cache
def services() -> wiring.ContactServices:
    return wiring.contact(os.environ)


def session() -> Session:
    return services().sessions.authenticate(bearer_token(app))


def view(record: ContactRecord) -> ContactView:
    return ContactView.of(record, services().clock.now())


@app.get(
    "/v1/me/contact",
    summary="The person's contact register record",
    tags=TAGS,
    operation_id="getMyContact",
    security=BEARER,
    responses=responses(200, "The record", 401, 503),
)
def get_my_contact() -> ContactView:
    return view(services().contacts.contact(session()))


@app.put(
    "/v1/me/contact",
    status_code=202,
    summary="Change or remove the mobile or e-mail (a new one counts once its code is given), or the language",
    description="Needs a login from the last 15 minutes. The old contact is told of the change. Changes that "
    "send codes (and resends): 10 an hour for a person, each to every new contact it names. Refused (409) "
    "while a change of a contact it does not name waits for its code: name it again (or give its present "
    "value, to give it up) with this change. A change of the language alone: 6 an hour for a person (429 past "
    "them, nothing changed).",
    tags=TAGS,
    operation_id="changeMyContact",
    security=BEARER,
    responses=responses(202, "Codes sent to the new contacts", *BODY_PROBLEMS, 401, 409, 429, 503),
)
def change_my_contact(change: ContactChange) -> VerificationSent:
    given = change.model_fields_set
    channels = services().contacts.change(
        session(),
        mobile=change.mobile if "mobile" in given else UNCHANGED,
        email=change.email if "email" in given else UNCHANGED,
        language=change.language,
    )
    return VerificationSent(verification_sent_to=[CHANNEL_NAMES[c] for c in channels])


@app.post(
    "/v1/me/contact/verify",
    summary="Give the code sent to a new mobile or e-mail; then it is the one in use",
    tags=TAGS,
    operation_id="verifyMyContact",
    security=BEARER,
    responses=responses(200, "The record, with the new contact verified", *BODY_PROBLEMS, 401, 409, 503),
)
def verify_my_contact(verification: ContactVerification) -> ContactView:
    return view(services().contacts.verify(session(), CHANNELS[verification.channel], verification.code))


@app.post(
    "/v1/me/contact/resend",
    status_code=202,
    summary="Send new codes to the contacts waiting for them (at most 3 times, 30 seconds apart)",
    tags=TAGS,
    operation_id="resendMyContactCodes",
    security=BEARER,
    responses=responses(202, "New codes sent", 401, 409, 422, 429, 503),
)
def resend_my_contact_codes() -> VerificationSent:
    channels = services().contacts.resend(session())
    return VerificationSent(verification_sent_to=[CHANNEL_NAMES[c] for c in channels])


@app.post(
    "/v1/me/contact/confirm",
    summary="Confirm the contacts unchanged",
    tags=TAGS,
    operation_id="confirmMyContact",
    security=BEARER,
    responses=responses(200, "The record, confirmed", 401, 409, 503),
)
def confirm_my_contact() -> ContactView:
    return view(services().contacts.confirm(session()))


@app.put(
    "/v1/me/reservation",
    summary="Reserve against (or accept) digital communication from the public sector",
    description="Each change is told to the person on their contacts; a few changes an hour (429 past them).",
    tags=TAGS,
    operation_id="setMyReservation",
    security=BEARER,
    responses=responses(200, "The record", *BODY_PROBLEMS, 401, 409, 429, 503),
)
def set_my_reservation(reservation: Reservation) -> ContactView:
    return view(services().contacts.reserve(session(), reservation.reserved))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True, log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)


coldstart.loaded()

"""Enrolment: becoming a MinID user with two PIN codes, a password, and verified contacts."""

from __future__ import annotations

from minid import coldstart

coldstart.loading()

import os
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from minid import observability, wiring
from minid.api import BODY_PROBLEMS, client_address, create_resolver, handle, responses
from minid.api.enrolment import (
    EnrolmentCompletion,
    EnrolmentRequest,
    EnrolmentStarted,
    EnrolmentState,
    EnrolmentVerification,
    VerificationSent,
)
from minid.domain.enrolment import EnrolmentService, EnrolmentStatus
from minid.domain.notices import CHANNEL_NAMES, Channel
from minid.domain.random import UUID4_PATTERN

logger = observability.logger()
app = create_resolver()
EnrolmentId = Annotated[str, Path(pattern=UUID4_PATTERN)]
TAGS = ["Enrolment"]


@cache
def services() -> EnrolmentService:
    return wiring.enrolment(os.environ)


@app.post(
    "/v1/enrolments",
    status_code=201,
    summary="Start enrolling: the service asks for two PIN codes by number",
    description="The same shape of answer for every valid identity number.",
    tags=TAGS,
    operation_id="startEnrolment",
    responses=responses(201, "Enrolment started", *BODY_PROBLEMS, 429, 503),
)
def start_enrolment(request: EnrolmentRequest) -> EnrolmentStarted:
    enrolment = services().start(request.identity_number, client_address(app))
    return EnrolmentStarted(
        enrolment_id=enrolment.enrolment_id, pin_indices=list(enrolment.pin_indices), expires_in=enrolment.expires_in
    )


@app.post(
    "/v1/enrolments/<enrolment_id>/complete",
    status_code=202,
    summary="Give the two PIN codes, a password and contacts; a code is sent to each contact",
    description=(
        "Wrong PIN codes answer 401; 3 wrong tries end the enrolment. A person's enrolments take (by default) 30 wrong "
        "PIN code pairs a UTC day (EnrolmentPinGuessesPerDay), from any client; past them, none is judged that "
        "day and every pair answers 401 as a wrong one does. Wrong codes here do not block the letter. A client's "
        "enrolments take (by default) 20 guesses an hour at any numbers (ClientEnrolmentGuessesPerHour): 429 "
        "past them."
    ),
    tags=TAGS,
    operation_id="completeEnrolment",
    responses=responses(202, "Codes sent to the contacts", *BODY_PROBLEMS, 401, 404, 409, 429, 503),
)
def complete_enrolment(enrolment_id: EnrolmentId, completion: EnrolmentCompletion) -> VerificationSent:
    channels = services().complete(
        enrolment_id,
        client=client_address(app),
        pin_codes={int(index): code for index, code in completion.pin_codes.items()},
        password=completion.password,
        mobile=completion.mobile,
        email=completion.email,
        language=completion.language,
    )
    return VerificationSent(verification_sent_to=[CHANNEL_NAMES[c] for c in channels])


@app.post(
    "/v1/enrolments/<enrolment_id>/resend",
    status_code=202,
    summary="Send new codes to the contacts not yet verified (at most 3 times, 30 seconds apart)",
    tags=TAGS,
    operation_id="resendEnrolmentCodes",
    responses=responses(202, "New codes sent", 404, 409, 422, 429, 503),
)
def resend_enrolment_codes(enrolment_id: EnrolmentId) -> VerificationSent:
    channels = services().resend(enrolment_id, client_address(app))
    return VerificationSent(verification_sent_to=[CHANNEL_NAMES[c] for c in channels])


@app.post(
    "/v1/enrolments/<enrolment_id>/verify",
    status_code=201,
    summary="Give the codes sent to the contacts; the account is active once every contact is verified",
    tags=TAGS,
    operation_id="verifyEnrolment",
    responses={
        **responses(201, "Active: the user is enrolled", *BODY_PROBLEMS, 401, 404, 409, 503),
        202: {"description": "A contact is verified; another is still to verify"},
    },
)
def verify_enrolment(enrolment_id: EnrolmentId, verification: EnrolmentVerification) -> Response[EnrolmentState]:
    codes = {
        channel: code
        for channel, code in ((Channel.SMS, verification.mobile_code), (Channel.EMAIL, verification.email_code))
        if code is not None
    }
    result = services().verify(enrolment_id, codes)
    active = result.status is EnrolmentStatus.ACTIVE
    state = EnrolmentState(
        status="active" if active else "verifying", remaining=[CHANNEL_NAMES[c] for c in result.remaining]
    )
    return Response(status_code=201 if active else 202, content_type="application/json", body=state)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True, log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)


coldstart.loaded()

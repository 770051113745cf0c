"""Login and credentials: password plus a second factor, sessions, `me`, TOTP, and password resets."""

from __future__ import annotations

from minid import coldstart

coldstart.loading()

import os
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from minid import observability, wiring
from minid.api import BODY_PROBLEMS, bearer_token, client_address, create_resolver, handle, responses
from minid.api.account import (
    CodeRequest,
    EventsView,
    EventView,
    LoginRequest,
    LoginStartedView,
    MeView,
    PasswordChange,
    PasswordResetCompletion,
    PasswordResetRequest,
    PasswordResetStartedView,
    TokenView,
    TotpEnrolmentView,
)
from minid.api.contact import ContactView
from minid.domain.accounts import UserAccount
from minid.domain.login import SecondFactor
from minid.domain.notices import Channel
from minid.domain.random import UUID4_PATTERN
from minid.domain.sessions import Session

logger = observability.logger()
app = create_resolver()
Uuid = Annotated[str, Path(pattern=UUID4_PATTERN)]
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
LOGIN, ME, RESET = ["Login"], ["Me"], ["Password reset"]


@cache
def services() -> wiring.LoginServices:
    return wiring.login(os.environ)


def session() -> Session:
    return services().sessions.authenticate(bearer_token(app))


def authenticated() -> tuple[Session, UserAccount]:
    """The session and its account, as read to authenticate it."""
    return services().sessions.authenticated(bearer_token(app))


def no_content() -> Response[None]:
    return Response(status_code=204)


# what every change of what logs in needs (minid.domain.sessions.require_recent_login)
RECENT_LOGIN = "Needs a login from the last 15 minutes (401 reauthentication-required else)."


# ---------------------------------------------------------------------- login
@app.post(
    "/v1/login",
    summary="Log in with identity number and password; the second factor comes next",
    description="The same 401 for an unknown person, a wrong password, and a locked or inactive account.",
    tags=LOGIN,
    operation_id="login",
    responses=responses(200, "The second factor is asked for", *BODY_PROBLEMS, 401, 409, 429, 503),
)
def login(request: LoginRequest) -> LoginStartedView:
    factor = SecondFactor(request.second_factor) if request.second_factor else None
    started = services().login.start(request.identity_number, request.password, factor, client_address(app))
    return LoginStartedView(
        login_id=started.login_id,
        second_factor=started.second_factor.value,
        pin_index=started.pin_index,
        expires_in=started.expires_in,
    )


@app.post(
    "/v1/login/<login_id>/verify",
    summary="Give the second factor's code; a session is issued",
    tags=LOGIN,
    operation_id="verifyLogin",
    responses=responses(200, "Logged in", *BODY_PROBLEMS, 401, 503),
)
def verify_login(login_id: Uuid, request: CodeRequest) -> TokenView:
    issued = services().login.verify(login_id, request.code)
    return TokenView(
        access_token=issued.token,
        expires_in=issued.expires_in,
        amr=[amr.value for amr in issued.session.amr],
        auth_time=int(issued.session.auth_time.timestamp()),
    )


@app.post(
    "/v1/login/<login_id>/resend",
    status_code=202,
    summary="Send the SMS code again (at most 3 times, 30 seconds apart)",
    tags=LOGIN,
    operation_id="resendLoginCode",
    responses=responses(202, "A new code is sent", 401, 409, 429, 503),
)
def resend_login_code(login_id: Uuid) -> Response[None]:
    services().login.resend(login_id, client_address(app))
    return Response(status_code=202)


@app.post(
    "/v1/logout",
    summary="End the session",
    tags=LOGIN,
    operation_id="logout",
    security=BEARER,
    responses=responses(204, "The session has ended", 401, 503),
)
def logout() -> Response[None]:
    services().sessions.end(session())
    return no_content()


# ---------------------------------------------------------------------- me
@app.get(
    "/v1/me",
    summary="Who is logged in: identity, contacts, second factors",
    tags=ME,
    operation_id="getMe",
    security=BEARER,
    responses=responses(200, "The logged-in person", 401, 503),
)
def get_me() -> MeView:
    profile = services().profile.me(*authenticated())
    now = services().clock.now()
    return MeView(
        identity_number=profile.identity_number,
        name=profile.name,
        contact=ContactView.of(profile.contact, now) if profile.contact else None,
        second_factors=[factor.value for factor in profile.second_factors],
        password_changed_at=profile.password_changed_at,
        created_at=profile.created_at,
    )


@app.get(
    "/v1/me/events",
    summary="The person's own security history, newest first",
    tags=ME,
    operation_id="getMyEvents",
    security=BEARER,
    responses=responses(200, "A page of events", 401, 422, 503),
)
def get_my_events(
    cursor: Annotated[str | None, Query(max_length=512, pattern=r"^[A-Za-z0-9_-]*$")] = None,
) -> EventsView:
    page = services().profile.events(session(), cursor or None)  # `?cursor=`, empty: the first page
    return EventsView(events=[EventView.of(e) for e in page.events], next_cursor=page.next_cursor)


@app.put(
    "/v1/me/password",
    summary="Change the password (the current one is asked for); every session ends",
    description=RECENT_LOGIN,
    tags=ME,
    operation_id="changePassword",
    security=BEARER,
    responses=responses(204, "Changed", *BODY_PROBLEMS, 401, 429, 503),
)
def change_password(change: PasswordChange) -> Response[None]:
    services().credentials.change_password(session(), change.current_password, change.new_password)
    return no_content()


@app.post(
    "/v1/me/totp",
    status_code=201,
    summary="Add an authenticator app: a secret and its otpauth:// URI, confirmed with a code next",
    description=RECENT_LOGIN,
    tags=ME,
    operation_id="addTotp",
    security=BEARER,
    responses=responses(201, "Scan the URI (as a QR code) or type the secret into the app", 401, 503),
)
def add_totp() -> TotpEnrolmentView:
    enrolment = services().credentials.begin_totp(*authenticated())
    return TotpEnrolmentView(secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri)


@app.post(
    "/v1/me/totp/verify",
    summary="Confirm the authenticator app with a code from it",
    description=RECENT_LOGIN,
    tags=ME,
    operation_id="confirmTotp",
    security=BEARER,
    responses=responses(204, "The app is a second factor now", *BODY_PROBLEMS, 401, 409, 503),
)
def confirm_totp(request: CodeRequest) -> Response[None]:
    services().credentials.confirm_totp(*authenticated(), request.code)
    return no_content()


@app.delete(
    "/v1/me/totp",
    summary="Remove the authenticator app",
    description=RECENT_LOGIN,
    tags=ME,
    operation_id="removeTotp",
    security=BEARER,
    responses=responses(204, "Removed (or there was none: a removal retried is done)", 401, 503),
)
def remove_totp() -> Response[None]:
    services().credentials.remove_totp(*authenticated())
    return no_content()


# ---------------------------------------------------------------------- forgotten password
@app.post(
    "/v1/password-resets",
    status_code=201,
    summary="Start a password reset: a PIN code from the letter, and a code sent to the mobile or e-mail",
    description="The same shape for every valid identity number.",
    tags=RESET,
    operation_id="startPasswordReset",
    responses=responses(201, "The codes are asked for", *BODY_PROBLEMS, 429, 503),
)
def start_password_reset(request: PasswordResetRequest) -> PasswordResetStartedView:
    # the code is queued, for a decoy too, and the notifier sends it (ResetCodesTooLateAlarm, if it cannot)
    reset = services().resets.start(request.identity_number, client_address(app))
    return PasswordResetStartedView(
        reset_id=reset.reset_id,
        pin_index=reset.pin_index,
        second_factor="sms" if reset.channel is Channel.SMS else "email",
        expires_in=int((reset.expires_at - reset.created_at).total_seconds()),
    )


@app.post(
    "/v1/password-resets/<reset_id>/complete",
    summary="Give the PIN code, the code and a new password; every session ends",
    tags=RESET,
    operation_id="completePasswordReset",
    responses=responses(204, "The password is reset", *BODY_PROBLEMS, 401, 503),
)
def complete_password_reset(reset_id: Uuid, completion: PasswordResetCompletion) -> Response[None]:
    services().resets.complete(reset_id, completion.pin_code, completion.code, completion.new_password)
    return no_content()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True, log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)


coldstart.loaded()

"""RFC 9457 problem details: every error the API returns, in one shape, mapped in one place."""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response
from pydantic import Field

from minid.api.models import ResponseModel
from minid.domain.codes import RateLimited
from minid.domain.contacts import InvalidContact
from minid.domain.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    FieldError,
    InvalidIdentityNumber,
    InvalidInput,
    NotFound,
)
from minid.domain.passwords import WeakPassword
from minid.domain.sessions import FRESH_LOGIN, ReauthenticationRequired, SessionEnded
from minid.values import Value

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

PROBLEM_CONTENT_TYPE = "application/problem+json"


class ProblemFieldError(ResponseModel):
    field: str = Field(description="The request field, dotted for nested fields")
    message: str


class Problem(ResponseModel):
    """An error, as RFC 9457 problem details."""

    type: str = Field(description="`/problems/<slug>`: what kind of error this is", examples=["/problems/not-found"])
    title: str
    status: int
    detail: str = Field(description="What happened and what to do, for the person using the client")
    errors: list[ProblemFieldError] = Field(default_factory=list)


class ProblemType(Value, frozen=True):
    slug: str
    title: str
    status: HTTPStatus


INVALID_REQUEST = ProblemType("invalid-request", "Invalid request", HTTPStatus.UNPROCESSABLE_ENTITY)
MALFORMED_REQUEST = ProblemType("invalid-request", "Invalid request", HTTPStatus.BAD_REQUEST)
NOT_FOUND = ProblemType("not-found", "Not found", HTTPStatus.NOT_FOUND)
PAYLOAD_TOO_LARGE = ProblemType("payload-too-large", "Payload too large", HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
SERVICE_UNAVAILABLE = ProblemType("service-unavailable", "Service unavailable", HTTPStatus.SERVICE_UNAVAILABLE)
INTERNAL_ERROR = ProblemType("internal-error", "Internal error", HTTPStatus.INTERNAL_SERVER_ERROR)

# Each domain failure and the problem type it is answered with.
DOMAIN_PROBLEMS: dict[type[DomainError], ProblemType] = {
    InvalidIdentityNumber: ProblemType(
        "invalid-identity-number", "Invalid identity number", HTTPStatus.UNPROCESSABLE_ENTITY
    ),
    InvalidInput: INVALID_REQUEST,
    NotFound: NOT_FOUND,
    Conflict: ProblemType("conflict", "Conflict", HTTPStatus.CONFLICT),
    AuthenticationFailed: ProblemType("authentication-failed", "Authentication failed", HTTPStatus.UNAUTHORIZED),
    WeakPassword: ProblemType("weak-password", "Weak password", HTTPStatus.UNPROCESSABLE_ENTITY),
    InvalidContact: ProblemType("invalid-contact", "Invalid contact", HTTPStatus.UNPROCESSABLE_ENTITY),
    RateLimited: ProblemType("rate-limited", "Too many requests", HTTPStatus.TOO_MANY_REQUESTS),
    ReauthenticationRequired: ProblemType("reauthentication-required", "Log in again", HTTPStatus.UNAUTHORIZED),
}

_OPENAPI_PROBLEMS: dict[int, str] = {
    400: "Malformed request: the body is not JSON, or not sent as application/json",
    401: "Authentication failed",
    404: "Not found",
    409: "Conflict with the current state",
    413: "The body is larger than 16 KiB",
    422: "The request is well-formed but not valid",
    429: "Too many requests; see Retry-After",
    503: "A service this depends on is briefly unavailable; retry after Retry-After",
}


def problem_response(
    kind: ProblemType,
    detail: str,
    errors: tuple[FieldError, ...] = (),
    *,
    retry_after: int | None = None,
) -> Response[str]:
    body = Problem(
        type=f"/problems/{kind.slug}",
        title=kind.title,
        status=kind.status.value,
        detail=detail,
        errors=[ProblemFieldError(field=e.field, message=e.message) for e in errors],
    )
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return Response(
        status_code=kind.status.value,
        content_type=PROBLEM_CONTENT_TYPE,
        body=json.dumps(body.model_dump(), ensure_ascii=False),
        headers=headers,
    )


def _challenge(error: AuthenticationFailed) -> str:
    """The session's bearer token; for a token that is no live session's, RFC 6750's invalid_token (a
    client drops the token then, and only then: a wrong code or password leaves the session as it was);
    for a change that needs a recent login, the step-up RFC 9470 names (a login no older than the max
    age, in seconds)."""
    if isinstance(error, ReauthenticationRequired):
        seconds = int(FRESH_LOGIN.total_seconds())
        return f'Bearer realm="MinID", error="insufficient_user_authentication", max_age={seconds}'
    if isinstance(error, SessionEnded):
        return 'Bearer realm="MinID", error="invalid_token"'
    return 'Bearer realm="MinID"'


def domain_problem(error: DomainError) -> Response[str]:
    retry_after = error.retry_after if isinstance(error, RateLimited) else None
    for cls in type(error).__mro__:
        if cls in DOMAIN_PROBLEMS:
            response = problem_response(DOMAIN_PROBLEMS[cls], error.detail, error.errors, retry_after=retry_after)
            if isinstance(error, AuthenticationFailed):  # a 401 names its challenge (RFC 9110)
                response.headers["WWW-Authenticate"] = _challenge(error)
            return response
    raise LookupError(f"{type(error).__name__} has no problem type") from error


def validation_problem(errors: list[dict[str, Any]]) -> Response[str]:
    """A request the resolver could not validate: 400 when it is not JSON, else 422.

    Only where and what is reported, never the input: it may be a password.
    """
    if any(e.get("type") == "json_invalid" for e in errors):
        return problem_response(MALFORMED_REQUEST, "The body is not valid JSON.")
    # a map's key refused: the same key in its value's error (if any) is the client's too
    keys = {tuple(e["loc"][:-1]) for e in errors if e.get("loc") and e["loc"][-1] == "[key]"}
    fields = tuple(
        FieldError(
            _where(e, keys), UNKNOWN_FIELD if e.get("type") == "extra_forbidden" else str(e.get("msg", "Invalid"))
        )
        for e in errors
    )
    return problem_response(INVALID_REQUEST, "The request does not have the expected shape.", fields)


UNKNOWN_FIELD = "This request takes no such field."
_FIELD_NAME = re.compile(r"[a-z_][a-z0-9_]*|\d{1,2}")  # a model's field, or a PIN code's number (1 to 20)
_PARAMETER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")  # a declared header's, query's or path's


def _where(error: dict[str, Any], refused_keys: set[tuple[Any, ...]]) -> str:
    """The field an error is in, named as the model names it: a name the client chose (an unknown field's,
    a map's key: a PIN code sent as its number, say) is not echoed, as `*` or not at all. A header, query
    or path parameter is named as the route declares it (`Idempotency-Key`): never one the client chose.
    `refused_keys`: the places of map keys refused (their errors' places but the `[key]`)."""
    where = list(error.get("loc", ()))
    if len(where) > 1 and where[0] in {"header", "query", "path"} and _PARAMETER_NAME.fullmatch(str(where[1])):
        return str(where[1])
    loc = where[1:]
    if error.get("type") == "extra_forbidden":
        loc = loc[:-1]  # the unknown field's own name
    parts: list[str] = []
    for at, part in enumerate(loc):
        followed_by_key = (at + 1 < len(loc) and loc[at + 1] == "[key]") or tuple(where[: at + 2]) in refused_keys
        if isinstance(part, int) or (part == "[key]") or (_FIELD_NAME.fullmatch(str(part)) and not followed_by_key):
            parts.append(str(part))
        else:
            parts.append("*")
    return ".".join(parts) or "body"


BODY_PROBLEMS = (400, 413, 422)  # what any route with a JSON body may answer


def responses(success: int, description: str, *problems: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI entries for a route: its success (from the return annotation) and its problems."""
    entries: dict[int, OpenAPIResponse] = {success: {"description": description}}
    for code in sorted(set(problems)):
        entries[code] = {
            "description": _OPENAPI_PROBLEMS[code],
            "content": {PROBLEM_CONTENT_TYPE: {"model": Problem}},
        }
    return entries

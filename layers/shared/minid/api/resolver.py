"""The resolver every function uses, and the entry point that wraps it."""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from botocore.exceptions import BotoCoreError, ClientError

from minid import attempts, deadline, observability
from minid.adapters.aws_errors import Busy, error_code, is_transient, sending_refused
from minid.api.models import MAX_BODY_BYTES
from minid.api.problems import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    MALFORMED_REQUEST,
    NOT_FOUND,
    PAYLOAD_TOO_LARGE,
    SERVICE_UNAVAILABLE,
    domain_problem,
    problem_response,
    validation_problem,
)
from minid.domain.errors import DomainError, FieldError

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
    from aws_lambda_powertools.utilities.typing import LambdaContext

NO_SUCH_ROUTE = "The API has no such route. Its OpenAPI document lists those it has."
RETRY_AFTER_SECONDS = 2
# SES refusing to send for the account (paused for its bounces, its day's quota spent): hours, not seconds,
# until the operators mend it; a client told 2 s would ask again and again
SENDING_REFUSED_RETRY_AFTER_SECONDS = 300
NOT_JSON = "Send the body as JSON, with Content-Type: application/json."

# Headers on every response: nothing an eID service answers may be cached or sniffed.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
}

logger = Logger(child=True)


def create_resolver() -> APIGatewayHttpResolver:
    """An HTTP API (payload 2.0) resolver that validates with pydantic and answers in problem+json."""
    # never in debug, whatever POWERTOOLS_DEV says (Powertools' switch for verbose output, which an operator may
    # set in an incident): it prints every event whole, past the logger's masking (a password, a session
    # token), and answers a bug with its traceback
    app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=strict_json, debug=False)
    # Every failure and its answer, in one place. Lookup follows the exception's MRO.
    app.exception_handler_manager.update_exception_handlers(
        {
            DomainError: _refused,
            RequestValidationError: _invalid_request,
            RequestUnsupportedContentType: _not_json,  # what _precheck lets through is JSON: a backstop
            NotFoundError: _no_such_route,
            ClientError: _aws_error,
            BotoCoreError: _aws_unreachable,
            Busy: _aws_busy,
            Exception: _bug,
        }
    )
    app.use(middlewares=[_no_body_where_none_is_taken])
    return app


NO_BODY = "This route takes no body: send none, or {}."


def _no_body_where_none_is_taken(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """A body sent to a route that takes none (a confirmation, a resend, a logout) is refused (422), as an
    unknown field is where a body is taken: a client that sends `{"mobile": ...}` to confirm its contacts
    means something the route does not do, and must not be answered as if it had been done. None, or an
    empty object (what some clients send with every POST), is no body. (The route, as Powertools' own
    validation finds it: `_route` in the resolver's context, its body parameters from its signature. A
    request no route matches is given a stand-in route there too, which takes no body: it is left to the
    404, whatever it sends.)"""
    text = (app.current_event.decoded_body or "").strip()
    if not text:  # (most requests: nothing more to look at)
        return next_middleware(app)
    route: Any = app.context.get("_route")
    registered = (*app._static_routes, *app._dynamic_routes)  # (private, as `_route` is: Powertools' own)
    if any(route is known for known in registered) and not route.dependant.body_params:
        try:
            sent = strict_json(text)
        except json.JSONDecodeError:
            return problem_response(MALFORMED_REQUEST, "The body is not valid JSON.")
        if sent != {}:
            return problem_response(INVALID_REQUEST, NO_BODY, (FieldError("body", NO_BODY),))
    return next_middleware(app)


def strict_json(text: str) -> Any:
    """JSON as RFC 8259 has it: no NaN or Infinity (Python's json takes them), no name twice in an object
    (Python's json keeps the last; a proxy or a log before us may have read the first), and no nesting
    so deep that the parser runs out of stack; each is a JSONDecodeError, which the resolver answers
    with 400."""

    def refuse(constant: str) -> Any:
        raise json.JSONDecodeError(f"{constant} is not JSON", text, text.find(constant))

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        members = dict(pairs)
        if len(members) != len(pairs):
            raise json.JSONDecodeError("a name given twice in an object", text, 0)
        return members

    try:
        return json.loads(text, parse_constant=refuse, object_pairs_hook=unique)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None
    except json.JSONDecodeError:
        raise
    except ValueError:  # an integer of more than 4300 digits (Python's limit on converting them)
        raise json.JSONDecodeError("a number too long", text, 0) from None


def _invalid_request(error: RequestValidationError) -> Response[str]:
    errors = list(error.errors())
    # Powertools raises an answer off its route's response model as this too, its errors' locations in
    # "response": a bug of ours (a 500, logged), not the client's 422 (which would tell it its request was
    # wrong). (Its `response_validation_error_http_code` would do it too, but documents every route with a
    # 500 of its own making, in place of ours.)
    if any(tuple(problem.get("loc", ()))[:1] == ("response",) for problem in errors):
        # where and what, never the answer's values (pydantic's `input`: a name, say, the formatter's
        # patterns cannot find)
        wrong = [
            {"field": ".".join(map(str, problem.get("loc", ()))), "type": problem.get("type")} for problem in errors
        ]
        logger.error("An answer off its response model", extra={"errors": wrong})
        return _internal_error()
    return validation_problem(errors)


def _not_json(_: RequestUnsupportedContentType) -> Response[str]:
    return problem_response(MALFORMED_REQUEST, NOT_JSON)


def _no_such_route(_: NotFoundError) -> Response[str]:
    return problem_response(NOT_FOUND, NO_SUCH_ROUTE)


def _refused(error: DomainError) -> Response[str]:
    """A request refused as the domain has it; one whose refusal left something undone (a count not given
    back, a login not ended: its notes) is logged, for no answer tells it."""
    if left := observability.undone(error):
        logger.warning("Refused, with something left undone", extra={"refusal": type(error).__name__, **left})
    return domain_problem(error)


def _aws_error(error: ClientError) -> Response[str]:
    code = error_code(error)
    left = observability.undone(error)
    if is_transient(error):
        logger.warning("AWS dependency unavailable", extra={"aws_error": code, **left})
        return _unavailable()
    if sending_refused(error):  # the account's, not the request's: the operator acts (5xx alarm)
        logger.exception("AWS refuses to send for the account", extra={"aws_error": code, **left})
        return problem_response(
            SERVICE_UNAVAILABLE,
            "E-mail cannot be sent for the moment. Please try again later.",
            retry_after=SENDING_REFUSED_RETRY_AFTER_SECONDS,
        )
    logger.exception("AWS call failed", extra={"aws_error": code, **left})
    return _internal_error()


def _aws_unreachable(error: BotoCoreError) -> Response[str]:
    told = {"aws_error": type(error).__name__} | observability.undone(error)
    logger.warning("AWS dependency unreachable", extra=told)
    return _unavailable()


def _aws_busy(error: Busy) -> Response[str]:
    # how a send that may have gone out ended (AnswerLost.cause: a code or a type's name), where there is one
    cause = getattr(error, "cause", "")
    told = {"aws_error": type(error).__name__} | ({"aws_cause": cause} if cause else {}) | observability.undone(error)
    logger.warning("AWS dependency busy", extra=told)
    return _unavailable()


def _bug(_: Exception) -> Response[str]:
    logger.exception("Unhandled error")
    return _internal_error()


def _unavailable() -> Response[str]:
    return problem_response(
        SERVICE_UNAVAILABLE,
        "The service is briefly unavailable. Please try again shortly.",
        retry_after=RETRY_AFTER_SECONDS,
    )


def _internal_error() -> Response[str]:
    return problem_response(INTERNAL_ERROR, "Something went wrong on our side. It has been logged.")


def _body_bytes(event: dict[str, Any]) -> bytes | None:
    body = event.get("body")
    if not body:
        return b""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return None
    return str(body).encode("utf-8", errors="surrogatepass")


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _precheck(event: dict[str, Any]) -> Response[str] | dict[str, Any]:
    """What is refused before routing: bodies over 16 KiB, and bodies that are not JSON. Else the event
    to route, its Content-Type as the resolver reads it: `application/json` for a JSON body, however
    written (`Application/JSON`, `application/problem+json`), and none without a body (the resolver
    would refuse any type but its own spelling of JSON with an error of its own, a 500)."""
    body = _body_bytes(event)
    if body is None:
        return problem_response(MALFORMED_REQUEST, "The body could not be decoded.")
    if len(body) > MAX_BODY_BYTES:
        return problem_response(PAYLOAD_TOO_LARGE, f"The body must not be larger than {MAX_BODY_BYTES} bytes.")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = headers.pop("content-type", None)
    if body and not _is_json(content_type or "application/json"):
        return problem_response(MALFORMED_REQUEST, NOT_JSON)
    if body:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return problem_response(MALFORMED_REQUEST, "The body is not valid UTF-8.")
        headers["content-type"] = "application/json"
    return {**event, "headers": headers}


def bearer_token(app: APIGatewayHttpResolver) -> str | None:
    """The token of `Authorization: Bearer <token>`, if the request has one."""
    header = app.current_event.headers.get("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def client_address(app: APIGatewayHttpResolver) -> str:
    """The client as API Gateway saw it (its IP address), for per-client limits."""
    return str(app.current_event.request_context.http.source_ip)


# Time kept after a request's deadline for the writes that go out whatever the time (minid.deadline.exempt:
# the record of a code sent, a try or a count given back): an attempt of one. Unbounded, a few of them with
# DynamoDB hanging would have Lambda stop the function in one (API Gateway's bare 500, the give-back lost);
# held so, one that cannot be made in time is refused, and the answer is the 503 it would have been. The
# HTTP functions' timeout (template.yaml) is this longer than the 10 s their requests have.
EXEMPT_KEPT_SECONDS = deadline.kept_for(attempts.ATTEMPT_SECONDS)


def handle(app: APIGatewayHttpResolver, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Resolve one HTTP API event, with the checks and headers every route shares."""
    checked = _precheck(event)
    if isinstance(checked, Response):
        result: dict[str, Any] = {
            "statusCode": checked.status_code,
            "headers": {"Content-Type": checked.headers["Content-Type"]},
            "body": checked.body,
            "isBase64Encoded": False,
        }
    else:
        with deadline.within(context, kept_seconds=EXEMPT_KEPT_SECONDS):
            result = app.resolve(checked, context)
    result["headers"] = {**SECURITY_HEADERS, **(result.get("headers") or {})}
    # the route as the template names it ("POST /v1/login/{login_id}/verify"), never the path with its ids
    observability.count("Responses", route=str(event.get("routeKey", "$default")), status=str(result["statusCode"]))
    return result

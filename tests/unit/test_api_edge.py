"""The HTTP edge every function shares: problem details for every kind of bad request or failure."""

from __future__ import annotations

import base64
import json
import logging
from typing import Annotated, Any, Literal, cast

import pytest
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from botocore.exceptions import ClientError, EndpointConnectionError
from pydantic import Field

from local.functions import LambdaContext
from minid.adapters.aws_errors import Busy
from minid.api import MAX_BODY_BYTES, create_resolver, handle
from minid.api.models import RequestModel, ResponseModel
from minid.domain.errors import FieldError, InvalidIdentityNumber
from tests.conftest import load_event

app = create_resolver()


class Greeting(RequestModel):
    name: str = Field(min_length=1, max_length=50)
    times: int = Field(default=1, ge=1, le=3)
    # as a completion's PIN codes: each code by its number
    codes: dict[Annotated[str, Field(pattern=r"^\d{1,2}$")], Annotated[str, Field(pattern=r"^\d{6}$")]] = Field(
        default_factory=dict
    )


failure: list[Exception] = []


@app.post("/v1/greetings")
def greet(greeting: Greeting) -> dict[str, Any]:
    if failure:
        raise failure[0]
    return {"text": " ".join([f"Hei, {greeting.name}!"] * greeting.times)}


class Mood(ResponseModel):
    mood: Literal["glad"]


@app.post("/v1/greetings/mood")
def mood(greeting: Greeting) -> Mood:
    return cast(Mood, {"mood": "glad" if greeting.times == 1 else "grumpy"})  # a bug: an answer off its model


def call(
    body: str | None,
    *,
    content_type: str | None = "application/json",
    base64_body: bool = False,
    raw_body: str | None = None,
    path: str = "/v1/greetings",
    resolver: APIGatewayHttpResolver = app,
) -> Any:
    event = load_event("health/get-health")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = "POST"
    event["routeKey"] = event["requestContext"]["routeKey"] = f"POST {path}"
    if content_type:
        event["headers"]["content-type"] = content_type
    if body is not None:
        event["body"] = base64.b64encode(body.encode()).decode() if base64_body else body
        event["isBase64Encoded"] = base64_body
    if raw_body is not None:
        event["body"], event["isBase64Encoded"] = raw_body, True
    context = LambdaContext(function_name="test", memory_limit_in_mb=128, timeout_seconds=3)
    return handle(resolver, event, context)


def problem(response: dict[str, Any]) -> dict[str, Any]:
    assert response["headers"]["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(response["body"])
    assert body["status"] == response["statusCode"]
    assert set(body) == {"type", "title", "status", "detail", "errors"}
    return body


@pytest.fixture(autouse=True)
def no_failure() -> None:
    failure.clear()


def test_a_valid_request_is_served() -> None:
    response = call('{"name": "Kari", "times": 2}')
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"text": "Hei, Kari! Hei, Kari!"}


def test_base64_bodies_are_decoded() -> None:
    assert call('{"name": "Åse"}', base64_body=True)["statusCode"] == 200


@pytest.mark.parametrize("body", ["{", "not json", '{"name": "Kari"', "\x00"])
def test_malformed_json_is_400(body: str) -> None:
    response = call(body)
    assert response["statusCode"] == 400
    assert problem(response)["type"] == "/problems/invalid-request"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("{}", "name"),
        ('{"name": ""}', "name"),
        ('{"name": 7}', "name"),
        ('{"name": "Kari", "times": 9}', "times"),
        ('{"name": "Kari", "admin": true}', "body"),  # unnamed: an unknown field's name may be anything
        ('{"name": "Kari", "codes": {"3": "12345"}}', "codes.3"),  # a key taken: named, its value refused
        ('{"name": "Kari", "codes": {"3": "12"}}', "codes.3"),
        ("[]", "body"),
        ('"Kari"', "body"),
    ],
)
def test_wrong_shape_is_422_naming_the_field(body: str, field: str) -> None:
    response = call(body)
    assert response["statusCode"] == 422
    details = problem(response)
    assert details["type"] == "/problems/invalid-request"
    assert field in {e["field"] for e in details["errors"]}


def test_a_missing_body_is_422() -> None:
    response = call(None)
    assert response["statusCode"] == 422


def test_validation_problems_never_echo_the_input() -> None:
    secret = "hunter2-" + "x" * 60
    response = call(json.dumps({"name": secret}))
    assert response["statusCode"] == 422
    assert secret not in response["body"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Kari", "codes": {"482913": "3", "120938": "7"}},  # the codes sent as the keys, swapped
        {"name": "Kari", "Sommerfugl-i-vinterland!": 1},  # a password sent as a field's name
        {"name": "Kari", "kari.nordmann@example.no": True},
        {"name": "Kari", "codes": {"sommerfugl": "abc", "3": "123456"}},  # a key that reads as a field's name,
        # refused, its value refused too: the value's error names the key's place as `*` as well
    ],
)
def test_validation_problems_never_echo_a_name_the_client_chose(body: dict[str, Any]) -> None:
    response = call(json.dumps(body))
    assert response["statusCode"] == 422
    details = problem(response)
    for chosen in ("482913", "120938", "Sommerfugl", "sommerfugl", "kari.nordmann"):
        assert chosen not in response["body"]
    assert details["errors"]  # still told where: the map, or the body


def test_a_body_over_16_kib_is_413_before_anything_else() -> None:
    response = call(json.dumps({"name": "x" * MAX_BODY_BYTES}))
    assert response["statusCode"] == 413
    assert problem(response)["type"] == "/problems/payload-too-large"
    assert response["headers"]["Cache-Control"] == "no-store"


def test_exactly_16_kib_is_not_refused_for_its_size() -> None:
    body = json.dumps({"name": "Kari"}).ljust(MAX_BODY_BYTES)
    assert call(body)["statusCode"] == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_a_body_that_is_not_json_is_400(content_type: str) -> None:
    response = call("name=Kari", content_type=content_type)
    assert response["statusCode"] == 400
    assert "application/json" in problem(response)["detail"]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        "application/JSON",
        "Application/Json; charset=UTF-8",
        "application/problem+json",
        "application/merge-patch+json",
    ],
)
def test_json_however_its_type_is_written_is_json(content_type: str) -> None:
    """Media types are case-insensitive, and `+json` is JSON: served (the resolver's own check is for
    `application/json` as written, and answered anything else with a 500)."""
    assert call('{"name": "Kari"}', content_type=content_type)["statusCode"] == 200
    response = call("{", content_type=content_type)
    assert (response["statusCode"], problem(response)["type"]) == (400, "/problems/invalid-request")


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data", "application/xml"])
def test_no_body_with_any_type_is_the_missing_body_it_is(content_type: str) -> None:
    response = call(None, content_type=content_type)
    assert response["statusCode"] == 422
    assert problem(response)["type"] == "/problems/invalid-request"


@pytest.mark.parametrize("body", ['{"name": "Kari", "name": "Ola"}', '{"name": "Kari", "x": {"a": 1, "a": 2}}'])
def test_a_name_given_twice_is_not_json_we_take(body: str) -> None:
    """The last of two would win in Python, where a proxy or a log before us may have read the first."""
    response = call(body)
    assert (response["statusCode"], problem(response)["type"]) == (400, "/problems/invalid-request")


@pytest.mark.parametrize(
    ("raw_body", "detail"),
    [
        ("%%%not-base64%%%", "could not be decoded"),
        (base64.b64encode(b'{"name": "\xff\xfe"}').decode(), "UTF-8"),
    ],
)
def test_undecodable_bodies_are_400(raw_body: str, detail: str) -> None:
    response = call(None, raw_body=raw_body)
    assert response["statusCode"] == 400
    assert detail in problem(response)["detail"]


def test_a_domain_error_is_its_problem_type() -> None:
    reason = FieldError("identity_number", "An identity number has 11 digits.")
    failure.append(InvalidIdentityNumber(errors=(reason,)))
    response = call('{"name": "Kari"}')
    assert response["statusCode"] == 422
    details = problem(response)
    assert details["type"] == "/problems/invalid-identity-number"
    assert details["errors"] == [{"field": "identity_number", "message": "An identity number has 11 digits."}]


@pytest.mark.parametrize(
    "error",
    [
        ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "Query"),
        ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": ""}}, "PutItem"),
        ClientError(cast("Any", {"Error": {"Code": "X"}, "ResponseMetadata": {"HTTPStatusCode": 503}}), "Publish"),
        EndpointConnectionError(endpoint_url="https://dynamodb.eu-north-1.amazonaws.com"),
        # SES will not send for the account: the operator's to mend (the 5xx alarm), not a bug of ours
        ClientError({"Error": {"Code": "SendingPausedException", "Message": "paused"}}, "SendEmail"),
        ClientError({"Error": {"Code": "LimitExceededException", "Message": "daily quota"}}, "SendEmail"),
    ],
)
def test_an_unavailable_dependency_is_503_with_retry_after(error: Exception) -> None:
    failure.append(error)
    response = call('{"name": "Kari"}')
    assert response["statusCode"] == 503
    assert problem(response)["type"] == "/problems/service-unavailable"
    assert int(response["headers"]["Retry-After"]) > 0


@pytest.mark.parametrize(
    "error",
    [
        ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetItem"),
        # another service's limit is no refusal to send, and retrying soon would not mend it
        ClientError({"Error": {"Code": "LimitExceededException", "Message": "too many"}}, "CreateGrant"),
        RuntimeError("a bug, with secret detail 01010012345"),
    ],
)
def test_a_bug_is_a_500_problem_without_trace_or_detail(error: Exception) -> None:
    failure.append(error)
    response = call('{"name": "Kari"}')
    assert response["statusCode"] == 500
    details = problem(response)
    assert "Traceback" not in response["body"]
    assert "01010012345" not in response["body"]
    assert details["type"] == "/problems/internal-error"


def test_powertools_dev_mode_prints_no_request_and_answers_no_trace(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """POWERTOOLS_DEV, Powertools' switch for more verbose output (set on a function in an incident, say),
    would make a resolver print every event whole, past the logger's masking (a login's password, an
    identity number, a session token), and answer a bug with its traceback: ours are never in debug."""
    monkeypatch.setenv("POWERTOOLS_DEV", "true")
    verbose = create_resolver()

    @verbose.post("/v1/greetings")
    def failing(greeting: Greeting) -> dict[str, Any]:
        raise RuntimeError("a bug")

    capsys.readouterr()
    response = call('{"name": "Passord-hemmelig-01010012345"}', resolver=verbose)
    assert response["statusCode"] == 500
    assert "Traceback" not in response["body"]
    told = capsys.readouterr()
    assert "Passord-hemmelig" not in told.out + told.err


@pytest.mark.parametrize(
    ("error", "status", "logged"),
    [
        (InvalidIdentityNumber(), 422, "Refused, with something left undone"),
        (
            ClientError({"Error": {"Code": "ThrottlingException", "Message": ""}}, "Query"),
            503,
            "AWS dependency unavailable",
        ),
        (
            ClientError({"Error": {"Code": "SendingPausedException", "Message": ""}}, "SendEmail"),
            503,
            "AWS refuses to send for the account",
        ),
        (ClientError({"Error": {"Code": "AccessDeniedException", "Message": ""}}, "GetItem"), 500, "AWS call failed"),
        (
            EndpointConnectionError(endpoint_url="https://dynamodb.eu-north-1.amazonaws.com"),
            503,
            "AWS dependency unreachable",
        ),
        (Busy(), 503, "AWS dependency busy"),
    ],
)
def test_what_a_failure_left_undone_is_logged_with_its_answer(
    error: Exception, status: int, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A clean-up that failed after the request's own failure (a count not given back, a login not ended) is a
    note of that failure: the answer is the failure's, and the log says what was left undone."""
    error.add_note("The attempt's count was not given back: ClientError")
    failure.append(error)
    assert call('{"name": "Kari"}')["statusCode"] == status
    (record,) = [r for r in caplog.records if r.getMessage() == logged]
    assert record.__dict__["undone"] == ["The attempt's count was not given back: ClientError"]


def test_a_refusal_that_left_nothing_undone_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    failure.append(InvalidIdentityNumber())
    assert call('{"name": "Kari"}')["statusCode"] == 422
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_every_response_carries_the_security_headers() -> None:
    for response in (call('{"name": "Kari"}'), call("{"), call(json.dumps({"name": "x" * 20_000}))):
        assert response["headers"]["Cache-Control"] == "no-store"
        assert response["headers"]["X-Content-Type-Options"] == "nosniff"


def test_every_401_names_its_challenge() -> None:
    """RFC 9110: a 401 carries WWW-Authenticate. A change that needs a recent login names the step-up
    (RFC 9470), with the age a login may have."""
    from minid.api.problems import domain_problem  # noqa: PLC0415
    from minid.domain.errors import AuthenticationFailed  # noqa: PLC0415
    from minid.domain.sessions import ReauthenticationRequired, SessionEnded, Unauthenticated  # noqa: PLC0415

    for error in (AuthenticationFailed(), Unauthenticated()):
        answer = domain_problem(error)
        assert (answer.status_code, answer.headers["WWW-Authenticate"]) == (401, 'Bearer realm="MinID"')
    ended = domain_problem(SessionEnded())
    assert ended.headers["WWW-Authenticate"] == 'Bearer realm="MinID", error="invalid_token"'
    step_up = domain_problem(ReauthenticationRequired())
    assert step_up.status_code == 401
    assert step_up.headers["WWW-Authenticate"] == (
        'Bearer realm="MinID", error="insufficient_user_authentication", max_age=900'
    )


def test_an_answer_off_its_model_is_our_bug_not_the_client_s(caplog: pytest.LogCaptureFixture) -> None:
    """A route that returns what its response model refuses (a value added to the domain, not to the view):
    a 500, logged (and alarmed on), not the 422 that would tell the client its request was wrong."""
    assert call(json.dumps({"name": "Kari"}), path="/v1/greetings/mood")["statusCode"] == 200
    answer = call(json.dumps({"name": "Kari", "times": 2}), path="/v1/greetings/mood")
    assert (answer["statusCode"], problem(answer)["type"]) == (500, "/problems/internal-error")
    (record,) = [r for r in caplog.records if r.getMessage() == "An answer off its response model"]
    # where and what, not the answer's values (the exception's text quotes them: no traceback)
    assert record.__dict__["errors"] == [{"field": "response.mood", "type": "literal_error"}]
    assert record.exc_info is None

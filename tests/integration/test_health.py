"""The health function, through its real entry point."""

from __future__ import annotations

import json

import pytest

from functions.health.app import lambda_handler
from local.functions import LambdaContext
from tests.conftest import load_event


def test_health_answers_ok(lambda_context: LambdaContext) -> None:
    response = lambda_handler(load_event("health/get-health"), lambda_context)

    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"status": "ok"}
    assert response["headers"]["Cache-Control"] == "no-store"


def test_unknown_route_is_a_not_found_problem(lambda_context: LambdaContext) -> None:
    response = lambda_handler(load_event("health/unknown-route"), lambda_context)

    assert response["statusCode"] == 404
    assert response["headers"]["Content-Type"] == "application/problem+json"
    problem = json.loads(response["body"])
    assert problem["type"] == "/problems/not-found"
    assert problem["status"] == 404


def test_wrong_method_on_a_known_path_is_not_found(lambda_context: LambdaContext) -> None:
    event = load_event("health/get-health")
    event["requestContext"]["http"]["method"] = "POST"
    event["routeKey"] = "$default"

    response = lambda_handler(event, lambda_context)

    assert response["statusCode"] == 404
    assert json.loads(response["body"])["type"] == "/problems/not-found"


@pytest.mark.parametrize("body", ['{"mobile": "91234567"}', '{"a": ', "{}"], ids=["an object", "malformed", "{}"])
@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_a_body_sent_where_no_route_is_gets_the_not_found_problem(
    lambda_context: LambdaContext, method: str, body: str
) -> None:
    """No route matches (an unknown path, or a method its path lacks): the 404 problem, whatever the body,
    not the refusal of a body where a route takes none (Powertools' stand-in for no route takes none)."""
    for event in (load_event("health/unknown-route"), load_event("health/get-health")):
        event["requestContext"]["http"]["method"] = method
        event["routeKey"] = "$default"
        event["body"], event["headers"]["content-type"] = body, "application/json"
        response = lambda_handler(event, lambda_context)
        assert response["statusCode"] == 404, response["body"]
        assert json.loads(response["body"])["type"] == "/problems/not-found"

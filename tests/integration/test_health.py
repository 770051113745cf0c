"""The health function, through its real entry point."""

from __future__ import annotations

import json

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

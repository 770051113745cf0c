"""Browsers on the login pages (the public domain) call the API at another origin: the $default route's
function answers their preflights, and API Gateway marks its answers to them as the template's CORS
configuration says (the local gateway applies the deployed configuration, as it takes the deployed routes)."""

from __future__ import annotations

import json

from functions.health.app import lambda_handler as health
from local.cors import Cors
from local.functions import LambdaContext
from local.gateway import Gateway, HttpRequest, HttpResponse
from tests.conftest import load_event
from tests.integration.letters import LetterDriver

ELSEWHERE = "https://minid.example.evil"


def pages(driver: LetterDriver) -> str:
    return f"https://{driver.local.stack.parameters['PublicDomain']}"


def preflight(driver: LetterDriver, origin: str, method: str, headers: str) -> HttpResponse:
    asked = [("Origin", origin), ("Access-Control-Request-Method", method), ("Access-Control-Request-Headers", headers)]
    return driver.gateway.handle(HttpRequest("OPTIONS", "/v1/login", asked, b""))


def test_the_login_pages_preflight_is_answered_and_another_origin_s_is_not(driver: LetterDriver) -> None:
    """The `$default` route takes OPTIONS as every method (AWS's docs): its function answers the preflight
    with 204 (a 404 would fail it), and API Gateway adds the CORS headers for an allowed origin."""
    asked = preflight(driver, pages(driver), "POST", "content-type,authorization")
    assert asked.status == 204
    assert asked.header("access-control-allow-origin") == pages(driver)
    assert {"GET", "POST", "PUT", "DELETE"} <= set(asked.header("access-control-allow-methods").split(","))  # type: ignore[union-attr]
    allowed = set(asked.header("access-control-allow-headers").split(","))  # type: ignore[union-attr]
    assert {"authorization", "content-type", "idempotency-key"} <= allowed
    assert asked.header("access-control-max-age") == "600"
    assert asked.header("access-control-allow-credentials") is None  # bearer tokens, never cookies

    refused = preflight(driver, ELSEWHERE, "POST", "content-type")
    assert refused.status == 204
    assert not [name for name, _ in refused.headers if name.lower().startswith("access-control-")]


def test_answers_to_the_login_pages_say_so_and_expose_what_a_client_needs(driver: LetterDriver) -> None:
    """A problem's Retry-After (429, 503) and WWW-Authenticate (401), and the request id a citizen may
    report, read by the pages' script; an answer to another origin, or to a client that names none
    (curl, an app), carries no CORS header."""
    body = json.dumps({"identity_number": "1"}).encode()
    for origin, told in ((pages(driver), True), (ELSEWHERE, False), (None, False)):
        headers = [("Content-Type", "application/json"), *([("Origin", origin)] if origin else [])]
        answer = driver.gateway.handle(HttpRequest("POST", "/v1/login", headers, body))
        assert answer.status == 422
        assert answer.header("access-control-allow-origin") == (origin if told else None)
        exposed = answer.header("access-control-expose-headers")
        assert set((exposed or "").split(",")) == (
            {"retry-after", "www-authenticate", "apigw-requestid"} if told else {""}
        )


def test_the_default_route_s_function_answers_any_preflight_with_204(lambda_context: LambdaContext) -> None:
    event = load_event("health/unknown-route")
    event["requestContext"]["http"]["method"] = "OPTIONS"
    answer = health(event, lambda_context)
    assert (answer["statusCode"], answer["body"]) == (204, "")
    assert answer["headers"]["Cache-Control"] == "no-store"


def test_a_preflight_no_route_takes_is_answered_by_api_gateway_itself(driver: LetterDriver) -> None:
    """Where no route takes OPTIONS (an API without a `$default` route), API Gateway answers it (204)."""
    cors = Cors.of({"AllowOrigins": ["https://pages.example"], "AllowMethods": ["POST"], "AllowHeaders": ["a"]})
    gateway = Gateway([], driver.local.functions, cors=cors)
    asked = [("Origin", "https://pages.example"), ("Access-Control-Request-Method", "POST")]
    answer = gateway.handle(HttpRequest("OPTIONS", "/v1/login", asked, b""))
    assert (answer.status, answer.header("access-control-allow-methods")) == (204, "POST")
    assert gateway.handle(HttpRequest("OPTIONS", "/v1/login", asked[:1], b"")).status == 404  # no preflight

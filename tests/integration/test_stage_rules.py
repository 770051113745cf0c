"""What the production stage refuses that the local and test stages take: synthetic identity numbers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import pytest

from local.gateway import HttpRequest, HttpResponse
from minid.domain.identity import compose_identity_number
from tests.integration.conftest import local_driver
from tests.integration.letters import LetterDriver

REAL_FORMAT = "15108695088"  # python-stdnum's documented example: a number of the real format
SYNTHETIC = compose_identity_number(date(1986, 10, 15), 950, synthetic=True)
# production names the print provider's account, with the external id agreed (the template's Rules)
PRODUCTION_PRINT_PROVIDER = {"PrintProviderAccountId": "210987654321", "PrintProviderExternalId": "agreed"}
# what each answers a real-format number of no one here: an order taken, an enrolment and a reset begun
# as for anyone (decoys), a login refused as any
TAKEN_AS = {"/v1/pin-letters": 202, "/v1/enrolments": 201, "/v1/login": 401, "/v1/password-resets": 201}
IDENTITY_ROUTES = list(TAKEN_AS)


@pytest.fixture(scope="module")
def production() -> Iterator[LetterDriver]:
    with local_driver({"Stage": "prod", **PRODUCTION_PRINT_PROVIDER}) as driver:
        yield driver


def post(driver: LetterDriver, path: str, identity_number: str | None) -> HttpResponse:
    body = {"identity_number": identity_number} | (
        {"password": "fjelltur i tåke og regn"} if path == "/v1/login" else {}
    )
    return driver.gateway.handle(
        HttpRequest("POST", path, [("Content-Type", "application/json")], json.dumps(body).encode())
    )


@pytest.mark.parametrize("path", IDENTITY_ROUTES)
def test_synthetic_numbers_are_refused_in_production(production: LetterDriver, path: str) -> None:
    refused = post(production, path, SYNTHETIC)
    assert refused.status == 422
    assert json.loads(refused.body)["type"] == "/problems/invalid-identity-number"
    taken = post(production, path, REAL_FORMAT)  # no such person here: the generic answer
    assert taken.status == TAKEN_AS[path]
    if taken.status == 401:
        assert json.loads(taken.body)["type"] == "/problems/authentication-failed"

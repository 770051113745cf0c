"""openapi.json is the one OpenAPI document of the API, generated from the handlers' models."""

from __future__ import annotations

import json

from local.openapi import build_openapi, render
from tests.conftest import ROOT


def test_the_committed_openapi_document_is_up_to_date() -> None:
    committed = (ROOT / "openapi.json").read_text()
    assert committed == render(build_openapi()), "openapi.json is out of date: run `make openapi`"


def test_every_error_response_is_a_problem() -> None:
    document = json.loads((ROOT / "openapi.json").read_text())
    assert document["info"]["title"] == "MinID"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                gateway_refusal = status == "403" and operation.get("security") == [{"sigv4": []}]
                if int(status) >= 400 and not gateway_refusal:  # API Gateway's own 403 cannot be a problem
                    assert list(response["content"]) == ["application/problem+json"], (method, path, status)

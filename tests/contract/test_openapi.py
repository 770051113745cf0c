"""openapi.json is the one OpenAPI document of the API, generated from the handlers' models."""

from __future__ import annotations

import json
from datetime import date

from local.openapi import build_openapi, render
from minid.domain.identity import parse_identity_number
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
                    # nor its own throttling (429) and a function's failure (500, 503): application/json,
                    # beside the service's problems
                    types = set(response["content"])
                    if status in {"429", "500", "503"}:
                        assert "application/json" in types, (method, path, status)
                        types -= {"application/json"}
                    assert types <= {"application/problem+json"}, (method, path, status)
                    # a 500 is the service's problem too (a fault of its own); a 429 or 503 may be the gateway's alone
                    assert types or status in {"429", "503"}, (method, path, status)


def _examples_of(node: object, field: str) -> list[str]:
    if isinstance(node, dict):
        found = [str(e) for e in node.get("properties", {}).get(field, {}).get("examples", [])]
        return found + [e for value in node.values() for e in _examples_of(value, field)]
    if isinstance(node, list):
        return [e for value in node for e in _examples_of(value, field)]
    return []


def test_the_documented_identity_numbers_are_valid_ones() -> None:
    """A client's developer tries the example first: it must not be refused for its check digits."""
    examples = _examples_of(json.loads((ROOT / "openapi.json").read_text()), "identity_number")
    assert examples
    for example in examples:
        parse_identity_number(example, allow_synthetic=True, today=date(2026, 12, 4))


def test_fields_every_answer_holds_are_required_in_the_document() -> None:
    """A field with a default is in every body all the same (API.md: "token_type": "Bearer", "acr" on
    every login): a typed client generated from the document must not take it as maybe missing."""
    schemas = build_openapi()["components"]["schemas"]
    assert {"access_token", "token_type", "expires_in", "acr", "amr", "auth_time"} <= set(
        schemas["TokenView"]["required"]
    )
    assert "remaining" in schemas["EnrolmentState"]["required"]
    assert "errors" in schemas["Problem"]["required"]


def test_every_operation_lists_what_is_refused_before_routing() -> None:
    """A body is judged before routing on every route, one that asks for none too: not JSON (400), or over
    16 KiB (413)."""
    for path, operations in build_openapi()["paths"].items():
        for method, operation in operations.items():
            assert {"400", "413"} <= set(operation["responses"]), (method, path)


def test_every_text_a_request_carries_is_checked_beyond_its_type() -> None:
    """pydantic takes a lone surrogate (JSON lets one through as an escape: no character at all) in a plain
    `str`, and it would reach a hash or a key as text that cannot be encoded: a 500. A string with any
    constraint (a bound, a pattern, a set of values) is checked in pydantic's own code, which refuses it
    (422). So every string a request carries has one: in its body, as a map's key, and in its parameters."""
    document = json.loads((ROOT / "openapi.json").read_text())
    schemas = document["components"]["schemas"]
    unchecked: list[str] = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, where)
            return
        if not isinstance(node, dict):
            return
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            walk(schemas[name], name)
            return
        if node.get("type") == "string" and not {"maxLength", "pattern", "enum", "const", "format"} & set(node):
            unchecked.append(where)
        keyed = node.get("type") == "object" and node.get("additionalProperties") not in (None, False)
        if keyed and "patternProperties" not in node and "propertyNames" not in node:
            unchecked.append(f"{where} (its keys)")
        for key, value in node.items():
            if key in {"properties", "patternProperties"}:
                for name, schema in value.items():
                    walk(schema, f"{where}.{name}")
            elif key in {"anyOf", "oneOf", "allOf", "items", "additionalProperties", "schema"}:
                walk(value, where)

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                walk(parameter.get("schema", {}), f"{method} {path} {parameter['name']}")
            for content in operation.get("requestBody", {}).get("content", {}).values():
                walk(content.get("schema", {}), f"{method} {path}")
    assert unchecked == []

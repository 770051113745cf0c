"""One OpenAPI document for the whole API, generated from the handlers' resolvers and models.

`python -m local.openapi` prints it; `make openapi` writes it to openapi.json, which is committed
(a test fails when it is out of date) and served by the local stack at /openapi.json.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from typing import Any

from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
from aws_lambda_powertools.event_handler.openapi.models import APIKey, HTTPBearer, SecurityScheme

from local.template import FunctionSpec, Template

TITLE = "MinID"
VERSION = "1"
DESCRIPTION = (
    "MinID, Norway's public electronic ID at security level substantial: PIN code letters, enrolment, "
    "login with a second factor, and the contact register. Errors are RFC 9457 problem details."
)
SECURITY_SCHEMES: dict[str, SecurityScheme] = {
    "bearer": HTTPBearer.model_validate(
        {"type": "http", "scheme": "bearer", "description": "The access_token from POST /v1/login/{login_id}/verify"}
    ),
    "sigv4": APIKey.model_validate(
        {
            "type": "apiKey",
            "name": "Authorization",
            "in": "header",
            "description": "AWS Signature Version 4 (IAM): the print provider's role only",
        }
    ),
}
_PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}

# How one operation's answer feeds the next (OpenAPI links): the flows a client walks, and the paths
# a stateful fuzzer follows. (operation, status) -> {link name: (operation, {parameter: expression})}.
LINKS: dict[tuple[str, str], dict[str, tuple[str, dict[str, str]]]] = {
    ("startEnrolment", "201"): {
        name: (operation, {"enrolment_id": "$response.body#/enrolment_id"})
        for name, operation in (
            ("complete", "completeEnrolment"),
            ("resend", "resendEnrolmentCodes"),
            ("verify", "verifyEnrolment"),
        )
    },
    ("completeEnrolment", "202"): {
        name: (operation, {"enrolment_id": "$request.path.enrolment_id"})
        for name, operation in (("resend", "resendEnrolmentCodes"), ("verify", "verifyEnrolment"))
    },
    ("login", "200"): {
        name: (operation, {"login_id": "$response.body#/login_id"})
        for name, operation in (("verify", "verifyLogin"), ("resend", "resendLoginCode"))
    },
    ("startPasswordReset", "201"): {
        "complete": ("completePasswordReset", {"reset_id": "$response.body#/reset_id"}),
    },
}
# What API Gateway answers by itself, never reaching a function: HTTP APIs cannot make it a problem.
_GATEWAY_MESSAGE = {
    "schema": {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}
}
_IAM_REFUSAL = {
    "description": "Not signed by the print provider's role (answered by API Gateway)",
    "content": {"application/json": _GATEWAY_MESSAGE},
}
# Answered by API Gateway itself on any route, as application/json {"message"} (no problem, no Retry-After):
# past the stage's throttle (ThrottlingRateLimit, ThrottlingBurstLimit), and when a function fails or
# times out before it answers.
_GATEWAY_ANSWERS = {
    "429": "past the stage's throttle, API Gateway's own answer (application/json, no Retry-After)",
    "500": "a function that failed before it answered: API Gateway's own answer (application/json)",
    "503": "a function that timed out or was throttled: API Gateway's own answer (application/json)",
}


def load_resolver(spec: FunctionSpec) -> Any:
    """The function's resolver (`app`), from a private import of its handler module."""
    module_name = spec.handler.rpartition(".")[0]
    path = spec.code_dir / f"{module_name.replace('.', '/')}.py"
    loader_spec = importlib.util.spec_from_file_location(f"_openapi_{spec.logical_id}", path)
    if loader_spec is None or loader_spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[loader_spec.name] = module
    loader_spec.loader.exec_module(module)
    return module.app


def http_functions(template: Template) -> list[FunctionSpec]:
    """The functions behind the HTTP API (others take queue messages or workflow tasks)."""
    routed = {route.function for route in template.routes()}
    return [spec for spec in template.functions() if spec.logical_id in routed]


def build_openapi(template: Template | None = None) -> dict[str, Any]:
    template = template or Template.load()
    merge = OpenAPIMerge(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        on_conflict="error",
        security_schemes=SECURITY_SCHEMES,
    )
    for spec in sorted(http_functions(template), key=lambda s: s.logical_id):
        merge.add_schema(load_resolver(spec).get_openapi_schema(security_schemes=SECURITY_SCHEMES))
    document: dict[str, Any] = json.loads(merge.get_openapi_json_schema())
    _answer_validation_errors_with_problems(document)
    _no_content_where_there_is_no_body(document)
    _document_what_every_route_may_answer(document)
    _add_links(document)
    _drop_unreferenced_schemas(document)
    return document


def _answer_validation_errors_with_problems(document: dict[str, Any]) -> None:
    """Powertools documents its own 422 body; this API answers every 422 with a problem."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            response = operation.get("responses", {}).get("422")
            if response and "HTTPValidationError" in json.dumps(response):
                response["description"] = "The request is well-formed but not valid"
                response["content"] = _PROBLEM_CONTENT


def _no_content_where_there_is_no_body(document: dict[str, Any]) -> None:
    """A route that returns `Response[None]` answers with no body, not with JSON `null`."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                if schema.get("type") == "null":
                    del response["content"]


NOT_JSON_BODY = "Malformed request: the body is not JSON, or not sent as application/json"  # as minid.api's


def _document_what_every_route_may_answer(document: dict[str, Any]) -> None:
    """503 wherever AWS is called (all but health); 400 and 413 on every route, for a body sent where none
    is asked for is judged before routing as any body is (minid.api.resolver's precheck: not JSON, not
    UTF-8, or over 16 KiB); 404 on a route with a path parameter, for one the gateway cannot route (not
    an id the route does not know, unless the route says so: a login's or a reset's is a 401, ended);
    and what API Gateway answers by itself."""
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            answers = operation.setdefault("responses", {})
            answers.setdefault("400", _problem(NOT_JSON_BODY))
            answers.setdefault("413", _problem("The body is larger than 16 KiB"))
            if operation["operationId"] != "getHealth":
                answers.setdefault("503", _problem("A service this depends on is briefly unavailable; see Retry-After"))
            if "{" in path:
                answers.setdefault("404", _problem("No such route: a path parameter that matches none"))
            if {"sigv4": []} in operation.get("security", []):
                answers.setdefault("403", _IAM_REFUSAL)
            answers.setdefault("500", _problem("A fault of the service's own (internal-error), without any trace"))
            for status, description in _GATEWAY_ANSWERS.items():
                if status in answers:  # the service's own, too
                    answers[status]["description"] += f"; or, {description}"
                else:
                    answers[status] = {"description": description[0].upper() + description[1:]}
                # a new mapping: the problems' content is one object, shared by every answer that is a problem
                answers[status]["content"] = {
                    **answers[status].get("content", {}),
                    "application/json": _GATEWAY_MESSAGE,
                }


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": _PROBLEM_CONTENT}


def _add_links(document: dict[str, Any]) -> None:
    by_id = {op["operationId"]: op for ops in document.get("paths", {}).values() for op in ops.values()}
    for (source, status), links in LINKS.items():
        response = by_id[source]["responses"][status]
        for name, (target, parameters) in links.items():
            if target not in by_id:
                raise KeyError(f"link {source}.{name}: no operation {target}")
            response.setdefault("links", {})[name] = {"operationId": target, "parameters": parameters}


def _drop_unreferenced_schemas(document: dict[str, Any]) -> None:
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    while True:
        text = json.dumps({k: v for k, v in document.items() if k != "components"}) + json.dumps(
            {k: v for k, v in document.get("components", {}).items() if k != "schemas"}
        )
        text += json.dumps(schemas)
        unused = [name for name in schemas if f'"#/components/schemas/{name}"' not in text]
        if not unused:
            return
        for name in unused:
            del schemas[name]


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(build_openapi()))

"""The search for personal data in the stack's logs (tests/e2e/conftest.py) looks where the functions
write and for what the tests used: shown here on a flow that logs and counts metrics (written with the
logs, in embedded metric format), so that a clean result means something.

Traces: the functions run with Lambda's active tracing, which records each invocation's segments; no
code here adds an annotation or metadata to a trace (no Tracer), so what a trace holds is AWS's own."""

from __future__ import annotations

from typing import Any

from tests.e2e.client import ApiClient
from tests.e2e.conftest import RunningStack, personal_data_in
from tests.e2e.flows import enrol, eventually


def test_the_functions_logs_are_captured_and_hold_nothing_personal(
    local_stack: RunningStack, api: ApiClient, persons: dict[str, list[dict[str, Any]]]
) -> None:
    person = persons["adult"][60]
    counted_before = len(metrics(local_stack))  # other tests' notices (the stack is shared) are not this one's
    enrol(api, person, "957 12 345")

    delivered = eventually(
        lambda: [line for line in local_stack.function_logs() if line.get("message") == "Notice delivered"]
    )
    assert {line["service"] for line in delivered} == {"minid"}
    welcomed = eventually(
        lambda: [m for m in metrics(local_stack)[counted_before:] if "NoticesSent" in m and m["notice"] == "enrolled"]
    )
    assert {line["channel"] for line in welcomed} == {"sms"}  # the person gave a mobile only
    routes = {line["route"] for line in metrics(local_stack) if "Responses" in line}
    assert "POST /v1/enrolments/{enrolment_id}/verify" in routes
    data = personal_data_in(local_stack)
    assert person["identity_number"] in data.numbers
    assert "4795712345" in data.numbers  # the mobile, as given and as stored
    assert any(what == "password" for what in data.texts.values())
    assert data.texts.get(person["name"]) == "name"  # and the addresses: of those the session used
    assert list(data.found_in(local_stack.written())) == []


def metrics(stack: RunningStack) -> list[dict[str, Any]]:
    """The metric lines (embedded metric format) among what the functions wrote."""
    return [line for line in stack.function_logs() if "_aws" in line]

"""Schemathesis against openapi.json and a local stack of its own: every operation, and the flows its
links describe (enrolment, login, password reset).

No answer may be a 5xx or break its documented schema, and every 4xx is a problem+json. `make test`
runs a bounded pass (FUZZ_EXAMPLES per operation); `make fuzz` runs thousands of cases and writes a
report (FUZZ_REPORT).

The stack is the local stack with its per-client limits raised (template parameters), so that one
fuzzing client on one address reaches what lies behind them; the limits have tests of their own. The
bearer routes are called as a MinID user enrolled through the real flow, who logs in again whenever the
session ends (logout, a password change); a password change is given the right current password, so
that the fuzzing exercises the change rather than the lockout it would cause.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    missing_required_header,
    negative_data_rejection,
    positive_data_acceptance,
    unsupported_method,
)

from local.print_provider import ACCESS_KEY_ID
from tests.conftest import ROOT
from tests.e2e.client import ApiClient
from tests.e2e.conftest import RunningStack, checked_local_stack
from tests.e2e.flows import PASSWORD, enrol, last_code, log_in

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
STATEFUL_EXAMPLES = int(os.environ.get("FUZZ_STATEFUL_EXAMPLES", "10"))
REPORT = os.environ.get("FUZZ_REPORT")
FUZZER_LIMITS = (
    "ClientIdentityAttemptsPerMinute=1000000",
    "ClientCodesSentPerHour=1000000",
    "CodesToPersonPerHour=1000000",
    "ResetCodesToPersonPerDay=1000000",
    "EnrolmentPinGuessesPerDay=1000000",
    "ClientEnrolmentGuessesPerHour=1000000",
    "ClientLetterOrdersPerHour=1000000",
)
MOBILE = "48 12 34 56"
SIGNED = f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20261122/eu-north-1/execute-api/aws4_request"

# Checks that do not fit this API, and why:
EXCLUDED_CHECKS = [
    # Schema-valid input the domain refuses: identity numbers with wrong check digits, common passwords.
    positive_data_acceptance,
    # A method a path does not have reaches the $default route, a 404 problem (API.md), not a 405.
    unsupported_method,
]
# On the IAM-authorised route an unsigned request is API Gateway's 403, where the check expects a 401.
EXCLUDED_ON_IAM_ROUTES = [*EXCLUDED_CHECKS, missing_required_header]
HYPOTHESIS = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=REPORT is None,  # `make test` is repeatable; `make fuzz` explores
    suppress_health_check=list(HealthCheck),
    database=None,
)

schema = schemathesis.openapi.from_path(ROOT / "openapi.json")
Case = schemathesis.Case[Any]


@dataclass
class Tally:
    """What the fuzzing sent and got, for the report."""

    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)

    def count(self, label: str, status: int) -> None:
        self.cases[label] += 1
        self.statuses[f"{status // 100}xx" if status >= 500 else str(status)] += 1


TALLY = Tally()


@dataclass
class Citizen:
    """The MinID user the bearer routes are called as."""

    api: ApiClient
    identity_number: str
    password: str = PASSWORD
    token: str | None = None
    logins: int = 0

    def headers(self) -> dict[str, str]:
        if self.token is None:
            mobile = "+47" + MOBILE.replace(" ", "")
            answer = log_in(self.api, self.identity_number, "sms", lambda _: last_code(self.api, mobile), self.password)
            self.token, self.logins = answer["access_token"], self.logins + 1
        return {"Authorization": f"Bearer {self.token}"}

    def prepare(self, case: Case) -> dict[str, str]:
        """The headers the case is sent with (also set on the case, over any it generated); the right
        current password for a password change."""
        security = case.operation.definition.raw.get("security")
        if probes_authorization(case):
            return {}
        if security == [{"sigv4": []}]:
            headers = {"Authorization": SIGNED}
        elif security == [{"bearer": []}]:
            headers = self.headers()
            if case.operation.label == "PUT /v1/me/password" and positive(case) and isinstance(case.body, dict):
                case.body["current_password"] = self.password
        else:
            return {}
        case.headers.update(headers)
        return headers

    def learn(self, case: Case, response: Any) -> None:
        """What the answer did to the session and the password. Not an answer to another method than the
        operation's (schemathesis probes a path with methods it does not have: OPTIONS, a preflight, is 204
        with the body of a password change that was never made)."""
        if response.request.method.upper() != case.operation.method.upper():  # (case.method: what was sent)
            return
        status, label = response.status_code, case.operation.label
        if label == "PUT /v1/me/password" and status == 204 and isinstance(case.body, dict):
            self.password, self.token = str(case.body["new_password"]), None
        elif label == "POST /v1/logout" and status == 204:
            self.token = None
        elif status == 401 and case.operation.definition.raw.get("security") == [{"bearer": []}]:
            self.token = None  # ended, or too old for the contact change: a fresh login


def positive(case: Case) -> bool:
    """A case schemathesis made valid (a negative one must stay invalid)."""
    return case.meta is None or case.meta.generation.mode is GenerationMode.POSITIVE


def probes_authorization(case: Case) -> bool:
    """A case made to test the Authorization header itself (missing, or not what it should be)."""
    data = case.meta.phase.data if case.meta is not None else None
    parameter = getattr(data, "parameter", None)
    return isinstance(parameter, str) and parameter.lower() == "authorization"


@pytest.fixture(scope="module")
def fuzz_stack() -> Iterator[RunningStack]:
    with checked_local_stack("--parameter-overrides", *FUZZER_LIMITS) as stack:
        yield stack
    if REPORT:
        Path(REPORT).write_text(json.dumps({"cases": TALLY.cases, "statuses": TALLY.statuses}, indent=2) + "\n")


@pytest.fixture(scope="module")
def citizen(fuzz_stack: RunningStack) -> Citizen:
    persons = fuzz_stack.api.get("/_local/persons").json()["persons"]
    person = next(p for p in persons if p["category"] == "adult" and p["eligible"])
    enrol(fuzz_stack.api, person, MOBILE)
    return Citizen(fuzz_stack.api, person["identity_number"])


def excluded_checks(case: Case, response: Any) -> list[Any]:
    iam = case.operation.definition.raw.get("security") == [{"sigv4": []}]
    excluded = EXCLUDED_ON_IAM_ROUTES if iam else EXCLUDED_CHECKS
    # A body over the 16 KiB limit is refused whole (413 payload-too-large, a problem): a rejection, though
    # not one of the statuses the check takes for one
    return [*excluded, negative_data_rejection] if response.status_code == 413 else excluded


def check(case: Case, response: Any) -> None:
    TALLY.count(case.operation.label, response.status_code)
    assert response.status_code < 500, f"{case.operation.label}: {response.status_code} {response.text[:500]}"
    if response.status_code == 403 and probes_authorization(case):  # unsigned: API Gateway's own refusal
        assert case.operation.definition.raw.get("security") == [{"sigv4": []}]
        return
    if response.status_code >= 400:
        assert response.headers.get("content-type") == ["application/problem+json"], response.text[:500]
        problem = response.json()
        assert problem["status"] == response.status_code
        assert problem["type"].startswith("/problems/")
        assert "Traceback" not in response.text
    if response.status_code in (429, 503):
        assert int(response.headers["retry-after"][0]) > 0


@schema.parametrize()
@HYPOTHESIS
def test_every_operation(case: Case, fuzz_stack: RunningStack, citizen: Citizen) -> None:
    headers = citizen.prepare(case)
    response = case.call(base_url=fuzz_stack.url, headers=headers)
    citizen.learn(case, response)
    check(case, response)
    case.validate_response(response, excluded_checks=excluded_checks(case, response), headers=headers)


def test_the_flows_the_links_describe(fuzz_stack: RunningStack, citizen: Citizen) -> None:
    workflow: Any = schema.as_state_machine()

    class Flows(workflow):  # type: ignore[misc]
        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"base_url": fuzz_stack.url, "headers": citizen.prepare(case)}

        def after_call(self, response: Any, case: Case) -> None:
            super().after_call(response, case)
            citizen.learn(case, response)
            check(case, response)

        def validate_response(self, response: Any, case: Case, **kwargs: Any) -> None:
            excluded = excluded_checks(case, response)
            case.validate_response(response, excluded_checks=excluded, headers=kwargs.get("headers"))

    Flows.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            deadline=None,
            derandomize=REPORT is None,
            suppress_health_check=list(HealthCheck),
            database=None,
            stateful_step_count=6,
        )
    )

"""Each function's role allows every AWS call the function makes, checked call by call.

moto does not enforce IAM: a call the role denies passes every other test and fails only in AWS (this
project had two: a read of the letter on the block route, the order's rate counter). Here the benchmark's
journey (every route and every workflow task, bench/routes.py) runs with each call recorded with its
parameters and the function that made it, and each is judged against the function's role in the
template, resolved as the local stack resolved the template:

- DynamoDB in full: the action of each item (a transaction's Put, Update, Delete, ConditionCheck; a
  batch's tables), the table's or index's ARN, and the conditions the template uses
  (`dynamodb:LeadingKeys` and `dynamodb:Attributes`, ForAllValues with StringEquals or StringLike).
- Any other service: the action is allowed by some statement of the role (the resource is not judged;
  an action a statement names for the wrong resource would pass here).

Not judged: what AWS does on the function's behalf with its role (KMS for encrypted tables and queues).
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from bench.calls import CallCounter
from bench.routes import Tally, embedded_stack, journey
from local.functions import LambdaFunction
from local.provision import Stack
from tests.integration.letters import LetterDriver
from tests.integration.users import enrolled


@dataclass(frozen=True)
class Call:
    function: str  # the logical id of the function that made it
    service: str
    operation: str
    params: dict[str, Any]


@dataclass
class Recorder:
    calls: list[Call] = field(default_factory=list)
    _current: threading.local = field(default_factory=threading.local)

    def attribute(self, function: LambdaFunction) -> None:
        """Calls made while the function runs are its own."""
        invoke, logical_id = function.invoke, function.spec.logical_id

        def attributed(event: Any, seconds_left: int | None = None) -> Any:
            before = getattr(self._current, "function", None)
            self._current.function = logical_id
            try:
                return invoke(event, seconds_left)
            finally:
                self._current.function = before

        function.invoke = attributed  # type: ignore[method-assign]

    def install(self) -> None:
        session: Any = boto3.DEFAULT_SESSION
        session.events.register("before-parameter-build", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        function = getattr(self._current, "function", None)
        if function is not None:
            self.calls.append(Call(function, model.service_model.service_name, model.name, dict(params)))


@pytest.fixture(scope="module")
def journeyed() -> Iterator[tuple[Stack, list[Call]]]:
    recorder = Recorder()
    counter = CallCounter()
    tally = Tally(counter)
    with embedded_stack(counter, tally) as driver:
        recorder.install()
        for function in driver.local.functions.by_logical_id.values():
            recorder.attribute(function)
        _walk(driver, tally)
        yield driver.local.stack, recorder.calls


def _walk(driver: LetterDriver, tally: Tally) -> None:
    warm = enrolled(driver, mobile="93000009")
    warm.call("GET", "/v1/me/contact", token=warm.login())
    journey(driver, tally)
    driver.notices_delivered()


# ---------------------------------------------------------------------- the roles, as deployed
def statements(stack: Stack, function: str) -> list[dict[str, Any]]:
    """The Allow statements of the function's role, resolved."""
    resources = stack.template.resources
    role = resources[function]["Properties"]["Role"]["Fn::GetAtt"]
    role_id = role[0] if isinstance(role, list) else str(role).split(".")[0]
    policies = stack.resolve(resources[role_id]["Properties"]["Policies"])
    return [s for policy in policies for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(patterns: Any, value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, str(pattern)) for pattern in _listed(patterns))


def _conditions_hold(condition: dict[str, Any], context: dict[str, list[str]]) -> bool:
    for operator, tests in condition.items():
        for key, wanted in tests.items():
            values = context.get(key)
            if values is None:
                return False  # a condition on something this checker does not know: not taken as allowing
            if operator == "ForAllValues:StringEquals":
                if not all(v in _listed(wanted) for v in values):
                    return False
            elif operator == "ForAllValues:StringLike":
                if not all(_matches(wanted, v) for v in values):
                    return False
            else:
                return False
    return True


def allowed(granted: list[dict[str, Any]], action: str, resource: str | None, context: dict[str, list[str]]) -> bool:
    for statement in granted:
        if not _matches(statement["Action"], action):
            continue
        if resource is not None and not _matches(statement["Resource"], resource):
            continue
        if "Condition" in statement and not _conditions_hold(statement["Condition"], context):
            continue
        return True
    return False


# ---------------------------------------------------------------------- DynamoDB's calls, item by item
def _updated_attributes(update: dict[str, Any]) -> list[str]:
    """The attributes an UpdateExpression writes (SET a = ..., REMOVE b, ADD c :v), named in full."""
    names = update.get("ExpressionAttributeNames", {})
    written: list[str] = []
    for clause in re.split(r"\b(SET|REMOVE|ADD|DELETE)\b", update.get("UpdateExpression", "")):
        for part in clause.split(","):
            token = part.strip().split("=")[0].split(" ")[0].split(".")[0].strip()
            if token and token not in {"SET", "REMOVE", "ADD", "DELETE"} and not token.startswith(":"):
                written.append(names.get(token, token))
    return written


def _key_values(key: dict[str, Any]) -> list[str]:
    return [next(iter(v.values())) for k, v in key.items() if k == "pk"]


Request = tuple[str, str | None, dict[str, list[str]]]  # (action, resource ARN, condition context)


def dynamodb_requests(stack: Stack, call: Call) -> Iterator[Request]:
    """(action, resource ARN, condition context) for each item the call touches."""
    arns = {stack.refs[t]: attrs["Arn"] for t, attrs in stack.attributes.items() if "dynamodb" in attrs.get("Arn", "")}
    p, op = call.params, call.operation
    if op == "Query":
        index = f"/index/{p['IndexName']}" if "IndexName" in p else ""
        yield "dynamodb:Query", arns[p["TableName"]] + index, {}
    elif op == "BatchGetItem":
        for table, request in p["RequestItems"].items():
            for key in request["Keys"]:
                yield _item(arns, "BatchGetItem", table, key)
    elif op == "TransactWriteItems":
        for entry in p["TransactItems"]:
            ((kind, request),) = entry.items()
            yield _written(arns, kind, request)
    elif op in {"GetItem", "DeleteItem", "PutItem", "UpdateItem"}:
        yield _written(arns, op.removesuffix("Item"), p)
    else:
        yield f"dynamodb:{op}", None, {}


def _written(arns: dict[str, str], kind: str, request: dict[str, Any]) -> Request:
    """One item's request: Get, Put, Update, Delete or ConditionCheck (a transaction's kinds)."""
    table = request["TableName"]
    if kind == "Put":
        return _item(arns, "PutItem", table, {"pk": request["Item"]["pk"]}, list(request["Item"]))
    if kind == "Update":
        return _item(arns, "UpdateItem", table, request["Key"], _updated_attributes(request))
    action = {"Get": "GetItem", "Delete": "DeleteItem"}.get(kind, "ConditionCheckItem")
    return _item(arns, action, table, request["Key"])


def _item(
    arns: dict[str, str], action: str, table: str, key: dict[str, Any], attributes: list[str] | None = None
) -> Request:
    context = {"dynamodb:LeadingKeys": _key_values(key)}
    if attributes is not None:
        context["dynamodb:Attributes"] = sorted(set(attributes) | set(key))
    return f"dynamodb:{action}", arns[table], context


# ---------------------------------------------------------------------- the checks
def test_the_journey_was_recorded_for_every_function(journeyed: tuple[Stack, list[Call]]) -> None:
    stack, calls = journeyed
    callers = {c.function for c in calls}
    functions = {f for f, r in stack.template.resources.items() if r["Type"] == "AWS::Serverless::Function"}
    assert functions - callers == {"HealthFunction"}  # it calls nothing


def test_every_dynamodb_call_is_allowed_by_the_functions_role(journeyed: tuple[Stack, list[Call]]) -> None:
    stack, calls = journeyed
    denied = set()
    for call in calls:
        if call.service != "dynamodb":
            continue
        granted = statements(stack, call.function)
        for action, resource, context in dynamodb_requests(stack, call):
            if not allowed(granted, action, resource, context):
                denied.add((call.function, action, resource, tuple(sorted((k, tuple(v)) for k, v in context.items()))))
    assert sorted(denied) == []


def test_every_other_call_is_an_action_the_functions_role_allows(journeyed: tuple[Stack, list[Call]]) -> None:
    stack, calls = journeyed
    prefixes = {"stepfunctions": "states", "sesv2": "ses"}
    denied = set()
    for call in calls:
        if call.service == "dynamodb":
            continue
        action = f"{prefixes.get(call.service, call.service)}:{call.operation}"
        if not allowed(statements(stack, call.function), action, None, {}):
            denied.add((call.function, action))
    assert sorted(denied) == []


@pytest.mark.parametrize(
    ("update", "written"),
    [
        (
            {"UpdateExpression": "SET #s = :v, a = :a REMOVE b ADD c :one", "ExpressionAttributeNames": {"#s": "st"}},
            ["st", "a", "b", "c"],
        ),
        (
            {
                "UpdateExpression": "SET codes.#c0 = :c0, codes_sent_at = :now",
                "ExpressionAttributeNames": {"#c0": "sms"},
            },
            ["codes", "codes_sent_at"],
        ),
    ],
)
def test_what_an_update_writes_is_read_from_its_expression(update: dict[str, Any], written: list[str]) -> None:
    assert _updated_attributes(update) == written


def test_a_statement_with_a_condition_allows_only_what_it_names() -> None:
    granted = [
        {
            "Action": "dynamodb:UpdateItem",
            "Resource": "arn:t",
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["rate#orders#*"]}},
        }
    ]
    assert allowed(granted, "dynamodb:UpdateItem", "arn:t", {"dynamodb:LeadingKeys": ["rate#orders#x"]})
    assert not allowed(granted, "dynamodb:UpdateItem", "arn:t", {"dynamodb:LeadingKeys": ["letter#1"]})
    assert not allowed(granted, "dynamodb:GetItem", "arn:t", {"dynamodb:LeadingKeys": ["rate#orders#x"]})
    assert not allowed(granted, "dynamodb:UpdateItem", "arn:u", {"dynamodb:LeadingKeys": ["rate#orders#x"]})

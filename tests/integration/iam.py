"""The calls the functions make, recorded with their parameters and judged against their roles.

moto does not enforce IAM: a call a role denies passes every other test and fails only in AWS. Each
call is judged against the role of the function that made it, in the template as the local stack
resolved it:

- DynamoDB in full: the action of each item (a transaction's Put, Update, Delete, ConditionCheck; a
  batch's tables), the table's or index's ARN, and the conditions the template uses
  (`dynamodb:LeadingKeys` and `dynamodb:Attributes`, ForAllValues with StringEquals or StringLike).
- Any other service: the action is allowed by some statement of the role (the resource is not judged).

Not judged: what AWS does on the function's behalf with its role (KMS for encrypted tables and queues).
Every integration test's stack is judged as it stops (conftest.local_driver), and test_iam.py judges
the benchmark's journey through every route and task.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from local.functions import LambdaFunction
from local.provision import Stack
from minid import wiring


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
        """Record from now on the calls of every client the functions make (from minid.wiring's session)."""
        session: Any = wiring.session()  # botocore's stubs type a handler as taking keywords only
        session.register("before-parameter-build", self._record)

    def uninstall(self) -> None:
        session: Any = wiring.session()
        session.unregister("before-parameter-build", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        function = getattr(self._current, "function", None)
        if function is not None:
            self.calls.append(Call(function, model.service_model.service_name, model.name, dict(params)))


# ---------------------------------------------------------------------- the roles, as deployed
def statements(stack: Stack, function: str, effect: str = "Allow") -> list[dict[str, Any]]:
    """The statements of the function's role with this effect, resolved."""
    resources = stack.template.resources
    role = resources[function]["Properties"]["Role"]["Fn::GetAtt"]
    role_id = role[0] if isinstance(role, list) else str(role).split(".")[0]
    documents = [policy["PolicyDocument"] for policy in resources[role_id]["Properties"]["Policies"]]
    documents += [  # the managed policies that name the role among theirs
        r["Properties"]["PolicyDocument"]
        for r in resources.values()
        if r["Type"] == "AWS::IAM::ManagedPolicy" and {"Ref": role_id} in r["Properties"].get("Roles", [])
    ]
    return [s for document in stack.resolve(documents) for s in _listed(document["Statement"]) if s["Effect"] == effect]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(patterns: Any, value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, str(pattern)) for pattern in _listed(patterns))


def _conditions_hold(condition: dict[str, Any], context: dict[str, list[str]]) -> bool:
    for operator, tests in condition.items():
        for key, wanted in tests.items():
            values = context.get(key)
            if values is None and operator.endswith("IfExists"):
                continue
            if values is None and operator.startswith("ForAllValues:") and _whole_read(key, context):
                continue  # AWS takes ForAllValues over a key the request lacks as true: a read that names no
                # attributes passes `dynamodb:Attributes` (only a Select clause denies it). Any other key
                # missing is one this checker does not compute: not taken as allowing
            if values is None:
                return False  # a condition on something this checker does not know: not taken as allowing
            if operator == "ForAllValues:StringEquals":
                if not all(v in _listed(wanted) for v in values):
                    return False
            elif operator == "ForAllValues:StringLike":
                if not all(_matches(wanted, v) for v in values):
                    return False
            elif operator in {"StringEquals", "StringEqualsIfExists"}:  # a key of one value
                if not any(v in _listed(wanted) for v in values):
                    return False
            else:
                return False
    return True


def _whole_read(key: str, context: dict[str, list[str]]) -> bool:
    """A read that names no attributes, as the checker has it (_selected): its Select, and no Attributes."""
    return key == "dynamodb:Attributes" and "dynamodb:Select" in context


def _names(statement: dict[str, Any], element: str, value: str) -> bool:
    """Whether the statement's Action (Resource) takes in the value: as listed, or as not NotAction-ed."""
    if element in statement:
        return _matches(statement[element], value)
    return not _matches(statement.get(f"Not{element}", []), value)


def allowed(granted: list[dict[str, Any]], action: str, resource: str | None, context: dict[str, list[str]]) -> bool:
    for statement in granted:
        if not _names(statement, "Action", action):
            continue
        if resource is not None and not _names(statement, "Resource", resource):
            continue
        if "Condition" in statement and not _conditions_hold(statement["Condition"], context):
            continue
        return True
    return False


# ---------------------------------------------------------------------- DynamoDB's calls, item by item
def updated_attributes(update: dict[str, Any]) -> list[str]:
    """The attributes an UpdateExpression writes (SET a = ..., REMOVE b, ADD c :v), named in full."""
    names = update.get("ExpressionAttributeNames", {})
    written: list[str] = []
    for clause in re.split(r"\b(SET|REMOVE|ADD|DELETE)\b", update.get("UpdateExpression", "")):
        for part in clause.split(","):
            token = part.strip().split("=")[0].split(" ")[0].split(".")[0].strip()
            if token and token not in {"SET", "REMOVE", "ADD", "DELETE"} and not token.startswith(":"):
                written.append(names.get(token, token))
    return written


_CONDITION_WORDS = {"AND", "OR", "NOT", "BETWEEN", "IN", "attribute_exists", "attribute_not_exists"}
_CONDITION_WORDS |= {"attribute_type", "begins_with", "contains", "size"}


def condition_attributes(request: dict[str, Any]) -> list[str]:
    """The top-level attributes a ConditionExpression names (AWS counts them in dynamodb:Attributes, as
    it counts those the update writes)."""
    names = request.get("ExpressionAttributeNames", {})
    found: list[str] = []
    for token in re.findall(r"(?<![:\w.#])#?[A-Za-z_]\w*", request.get("ConditionExpression", "")):
        if token not in _CONDITION_WORDS:
            found.append(names.get(token, token))
    return found


def partition_keys(stack: Stack) -> dict[str, str]:
    """Each table's partition key attribute, by table name."""
    found = {}
    for logical_id, resource in stack.template.resources.items():
        if resource["Type"] == "AWS::DynamoDB::Table" and logical_id in stack.refs:
            schema = stack.resolve(resource["Properties"]["KeySchema"])
            found[stack.refs[logical_id]] = next(k["AttributeName"] for k in schema if k["KeyType"] == "HASH")
    return found


def key_attributes(stack: Stack) -> dict[str, list[str]]:
    """The key attributes of each table (by name) and of each of its indexes ("<table>/index/<index>": the
    index's and the table's, all projected into it)."""
    found = {}
    for logical_id, resource in stack.template.resources.items():
        if resource["Type"] == "AWS::DynamoDB::Table" and logical_id in stack.refs:
            properties, table = stack.resolve(resource["Properties"]), stack.refs[logical_id]
            found[table] = [k["AttributeName"] for k in properties["KeySchema"]]
            for index in properties.get("GlobalSecondaryIndexes", []) + properties.get("LocalSecondaryIndexes", []):
                own = [k["AttributeName"] for k in index["KeySchema"]]
                found[f"{table}/index/{index['IndexName']}"] = sorted(set(found[table]) | set(own))
    return found


Request = tuple[str, str | None, dict[str, list[str]]]  # (action, resource ARN, condition context)


@dataclass(frozen=True)
class Tables:
    arns: dict[str, str]  # by table name
    partition_keys: dict[str, str]  # by table name
    key_attributes: dict[str, list[str]] = field(default_factory=dict)  # by table name, or table/index/name


def dynamodb_requests(stack: Stack, call: Call) -> Iterator[Request]:
    """(action, resource ARN, condition context) for each item the call touches."""
    tables = Tables(
        {stack.refs[t]: attrs["Arn"] for t, attrs in stack.attributes.items() if "dynamodb" in attrs.get("Arn", "")},
        partition_keys(stack),
        key_attributes(stack),
    )
    p, op = call.params, call.operation
    if op in {"Query", "Scan"}:
        yield searched(tables, op, p)
    elif op == "BatchGetItem":
        for table, request in p["RequestItems"].items():
            for key in request["Keys"]:
                yield read_item(tables, "BatchGetItem", table, key, request)
    elif op == "BatchWriteItem":
        for table, requests in p["RequestItems"].items():
            for request in requests:
                ((_, write),) = request.items()  # PutRequest {Item} or DeleteRequest {Key}
                key = write.get("Key") or {tables.partition_keys[table]: write["Item"][tables.partition_keys[table]]}
                yield _item(tables, "BatchWriteItem", table, key)
    elif op in {"TransactWriteItems", "TransactGetItems"}:
        for entry in p["TransactItems"]:
            ((kind, request),) = entry.items()
            yield _written(tables, kind, request)
    elif op in {"GetItem", "DeleteItem", "PutItem", "UpdateItem"}:
        yield _written(tables, op.removesuffix("Item"), p)
    else:  # a table's own operations (DescribeTable, say): the action on the table
        yield f"dynamodb:{op}", tables.arns.get(p.get("TableName", ""), "*"), {}


def _written(tables: Tables, kind: str, request: dict[str, Any]) -> Request:
    """One item's request: Get, Put, Update, Delete or ConditionCheck (a transaction's kinds)."""
    table = request["TableName"]
    if kind == "Put":
        hash_key = tables.partition_keys[table]
        action, resource, context = _item(
            tables, "PutItem", table, {hash_key: request["Item"][hash_key]}, list(request["Item"])
        )
        # with ALL_OLD, the whole item it replaces handed back
        return action, resource, context | {"dynamodb:ReturnValues": [request.get("ReturnValues", "NONE")]}
    if kind == "Update":
        action, resource, context = _item(
            tables, "UpdateItem", table, request["Key"], updated_attributes(request) + condition_attributes(request)
        )
        # what it hands back: with ALL_NEW or ALL_OLD, the whole item, whatever attributes it writes
        return action, resource, context | {"dynamodb:ReturnValues": [request.get("ReturnValues", "NONE")]}
    if kind == "Get":
        return read_item(tables, "GetItem", table, request["Key"], request)
    action = {"Delete": "DeleteItem"}.get(kind, "ConditionCheckItem")
    return _item(tables, action, table, request["Key"])


def searched(tables: Tables, action: str, request: dict[str, Any]) -> Request:
    """A Query or Scan, of a table or an index: with a projection, AWS counts the key attributes (the
    index's and the table's) in dynamodb:Attributes too, as a read of one item's."""
    index = f"/index/{request['IndexName']}" if "IndexName" in request else ""
    selected = _selected(request)
    if "dynamodb:Attributes" in selected:
        keys = tables.key_attributes[request["TableName"] + index]
        selected["dynamodb:Attributes"] = sorted(set(selected["dynamodb:Attributes"]) | set(keys))
    return f"dynamodb:{action}", tables.arns[request["TableName"]] + index, selected


def read_item(tables: Tables, action: str, table: str, key: dict[str, Any], request: dict[str, Any]) -> Request:
    """A read of one item: with a projection, AWS counts the key's attributes in dynamodb:Attributes too (a
    role limited to some attributes must name the table's whole key, or is denied every read)."""
    made, (_, _, context) = (f"dynamodb:{action}", tables.arns[table]), _item(tables, action, table, key)
    selected = _selected(request)
    if "dynamodb:Attributes" in selected:
        selected["dynamodb:Attributes"] = sorted(set(selected["dynamodb:Attributes"]) | set(key))
    return *made, context | selected


def _selected(request: dict[str, Any]) -> dict[str, list[str]]:
    """A read brings what it selects: the attributes its projection names (SPECIFIC_ATTRIBUTES), or, with
    none, ALL_ATTRIBUTES and no dynamodb:Attributes (a role limited to some attributes must be denied it)."""
    projection = request.get("ProjectionExpression")
    if projection is None:
        return {"dynamodb:Select": [request.get("Select", "ALL_ATTRIBUTES")]}
    names = request.get("ExpressionAttributeNames", {})
    projected = [names.get(p.strip().split(".")[0], p.strip().split(".")[0]) for p in projection.split(",")]
    return {"dynamodb:Select": ["SPECIFIC_ATTRIBUTES"], "dynamodb:Attributes": sorted(set(projected))}


def _item(tables: Tables, action: str, table: str, key: dict[str, Any], attributes: list[str] | None = None) -> Request:
    hash_key = tables.partition_keys[table]
    context = {"dynamodb:LeadingKeys": [next(iter(v.values())) for k, v in key.items() if k == hash_key]}
    if attributes is not None:
        context["dynamodb:Attributes"] = sorted(set(attributes) | set(key))
    return f"dynamodb:{action}", tables.arns[table], context


def denied(stack: Stack, calls: list[Call]) -> list[tuple[Any, ...]]:
    """The calls (function, action, resource, context) that the function's role does not allow."""
    prefixes = {"stepfunctions": "states", "sesv2": "ses"}
    # the API operations whose IAM action is named otherwise
    actions = {("s3", "DeleteObjects"): "s3:DeleteObject", ("s3", "ListObjectsV2"): "s3:ListBucket"}
    refused: set[tuple[Any, ...]] = set()
    for call in calls:
        granted, withheld = statements(stack, call.function), statements(stack, call.function, "Deny")
        if call.service == "dynamodb":
            requests = list(dynamodb_requests(stack, call))
        else:
            action = actions.get(
                (call.service, call.operation), f"{prefixes.get(call.service, call.service)}:{call.operation}"
            )
            requests = [(action, resource_of(stack, call), context_of(call))]
            if call.service == "sesv2" and "ConfigurationSetName" in call.params:  # judged on both
                requests.append((action, configuration_set_of(stack, call), {}))
        for action, resource, context in requests:
            if not allowed(granted, action, resource, context) or (
                withheld and allowed(withheld, action, resource or "*", context)
            ):
                refused.add((call.function, action, resource, tuple(sorted((k, tuple(v)) for k, v in context.items()))))
    return sorted(refused, key=str)


def context_of(call: Call) -> dict[str, list[str]]:
    """The condition keys a call brings, beside DynamoDB's: a KMS call's encryption context."""
    if call.service == "kms":
        return {f"kms:EncryptionContext:{k}": [str(v)] for k, v in call.params.get("EncryptionContext", {}).items()}
    return {}


def configuration_set_of(stack: Stack, call: Call) -> str:
    """The configuration set an e-mail is sent with: SES authorises the sending on it too."""
    region, account = stack.resolve({"Ref": "AWS::Region"}), stack.resolve({"Ref": "AWS::AccountId"})
    return f"arn:aws:ses:{region}:{account}:configuration-set/{call.params['ConfigurationSetName']}"


def resource_of(stack: Stack, call: Call) -> str | None:
    """The ARN a call acts on, where it names one simply; None: the action alone is judged."""
    p = call.params
    arns = {ref: stack.attributes.get(logical_id, {}).get("Arn") for logical_id, ref in stack.refs.items()}
    region, account = stack.resolve({"Ref": "AWS::Region"}), stack.resolve({"Ref": "AWS::AccountId"})
    named: dict[tuple[str, str], Any] = {
        ("sqs", "QueueUrl"): lambda: arns.get(p["QueueUrl"]),
        ("kms", "KeyId"): lambda: str(p["KeyId"]),
        ("secretsmanager", "SecretId"): lambda: str(p["SecretId"]),
        ("stepfunctions", "stateMachineArn"): lambda: str(p["stateMachineArn"]),
        # DeleteObjects: judged by its first object (the print documents of one letter, under one prefix)
        ("s3", "Delete"): lambda: f"arn:aws:s3:::{p['Bucket']}/{p['Delete']['Objects'][0]['Key']}",
        ("s3", "Bucket"): lambda: f"arn:aws:s3:::{p['Bucket']}/{p.get('Key', '*')}",
        ("sns", "PhoneNumber"): lambda: "*",  # an SMS has no ARN
        ("sesv2", "FromEmailAddress"): lambda: (
            f"arn:aws:ses:{region}:{account}:identity/{str(p['FromEmailAddress']).rsplit('@', 1)[-1]}"
        ),
    }
    found = next((resolve for (service, name), resolve in named.items() if service == call.service and name in p), None)
    return found() if found else None

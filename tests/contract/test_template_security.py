"""template.yaml, as CloudFormation receives it, is least privilege and encrypted.

The checks run on the template SAM translates (offline, with samtranslator), so that what SAM adds
(function roles, their managed policies, the scheduler's role) is checked with what we wrote:
every IAM statement names its resources, buckets are encrypted, private and TLS only, and tables,
queues, topics, secrets and logs are encrypted with the project's key or kept for a set time.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from unittest import mock

import pytest
from samtranslator.translator.transform import transform

from local.template import Template
from tests.conftest import ROOT

Json = dict[str, Any]

AWS_MANAGED_POLICY = re.compile(r"^arn:[^:]+:iam::aws:policy/")
# What SAM attaches to the roles it makes, by the names it asks its loader for.
SAM_MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "service-role/AWSLambdaBasicExecutionRole",
    "AWSLambdaSQSQueueExecutionRole": "service-role/AWSLambdaSQSQueueExecutionRole",
    "AWSLambdaDynamoDBExecutionRole": "service-role/AWSLambdaDynamoDBExecutionRole",
    "AWSLambdaKinesisExecutionRole": "service-role/AWSLambdaKinesisExecutionRole",
    "AWSLambdaVPCAccessExecutionRole": "service-role/AWSLambdaVPCAccessExecutionRole",
    "AWSXrayWriteOnlyAccess": "AWSXrayWriteOnlyAccess",
    "AWSXRayDaemonWriteAccess": "AWSXRayDaemonWriteAccess",
}

_LOG_DELIVERY = (
    "Step Functions logging: CloudWatch Logs log delivery is set up for the account, and AWS documents "
    'these actions with Resource "*"'
)
_TRACES = "X-Ray takes trace data for the whole account: these actions have no resource-level permissions"
# Actions AWS does not let a policy scope to a resource, each with why. Small on purpose.
UNSCOPABLE: dict[str, str] = {
    "xray:PutTraceSegments": _TRACES,
    "xray:PutTelemetryRecords": _TRACES,
    "xray:GetSamplingRules": "Step Functions tracing reads the account's sampling rules, which it cannot name",
    "xray:GetSamplingTargets": "Step Functions tracing reads the account's sampling targets, which it cannot name",
    "logs:CreateLogDelivery": _LOG_DELIVERY,
    "logs:GetLogDelivery": _LOG_DELIVERY,
    "logs:UpdateLogDelivery": _LOG_DELIVERY,
    "logs:DeleteLogDelivery": _LOG_DELIVERY,
    "logs:ListLogDeliveries": _LOG_DELIVERY,
    "logs:PutResourcePolicy": _LOG_DELIVERY,
    "logs:DescribeResourcePolicies": _LOG_DELIVERY,
    "logs:DescribeLogGroups": _LOG_DELIVERY,
    "sns:Publish": (
        "SMS go to phone numbers, which are no AWS resources; allowed only beside a Deny on every topic, "
        "so that the Allow reaches phone numbers and nothing else"
    ),
    "cloudwatch:PutMetricData": "metrics have no resource; allowed only with a cloudwatch:namespace condition",
}
EVERY_TOPIC = {"arn:aws:sns:*:*:*", "arn:${AWS::Partition}:sns:*:*:*"}

_ARN = re.compile(r"^arn:[^:]+:(?P<service>[^:]+):(?P<region>[^:]*):(?P<account>[^:]*):(?P<resource>.*)$")
_ANY_OF_A_KIND = re.compile(r"^([\w-]+[/:])?\*?$")  # "", "*", "table/*", "log-group:*"
_VARIABLE = re.compile(r"\$\{[^}]*\}")  # ${AWS::Partition} holds colons of its own
_NAME_PREFIX = re.compile(r"[\w}]\*$")  # "function:${Name}*" matches other functions' names too


class _ManagedPolicyLoader:
    """SAM's managed-policy loader, without a call to IAM."""

    def load(self) -> dict[str, str]:
        return {name: f"arn:aws:iam::aws:policy/{path}" for name, path in SAM_MANAGED_POLICIES.items()}


@cache
def _translated() -> Json:
    """template.yaml through SAM's transform, with code in S3 and the state machine's definition inline."""
    document = copy.deepcopy(Template.load().document)
    for resource in document["Resources"].values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://placeholder/{properties[key].strip('/')}.zip"
        if isinstance(properties.get("DefinitionUri"), str):
            properties["Definition"] = json.loads((ROOT / properties.pop("DefinitionUri")).read_text())
    with mock.patch.dict(os.environ, {"AWS_DEFAULT_REGION": "eu-north-1"}):
        translated: Json = transform(document, {}, _ManagedPolicyLoader())
    return translated


@pytest.fixture(scope="module")
def translated() -> Json:
    return _translated()


def _of_type(*types: str) -> list[str]:
    return sorted(k for k, v in _translated()["Resources"].items() if v["Type"] in types)


def _listed(value: Any) -> list[Any]:
    """A policy value as a list, with both branches of an Fn::If and no AWS::NoValue."""
    values = value if isinstance(value, list) else [value]
    flat: list[Any] = []
    for v in values:
        if isinstance(v, dict) and "Fn::If" in v:
            flat += _listed(v["Fn::If"][1:])
        elif v != {"Ref": "AWS::NoValue"}:
            flat.append(v)
    return flat


def _text(value: Any) -> str | None:
    """A resource as text: a string, or a Sub's or Join's template; None for a Ref or GetAtt of one of ours."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return sub if isinstance(sub, str) else str(sub[0])
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(p if isinstance(p, str) else "${}" for p in _listed(parts))
    return None


# ---------------------------------------------------------------------- IAM statements
@dataclass(frozen=True)
class Statement:
    owner: str  # the logical id of the role or policy
    policy: str
    index: int
    body: Json = field(repr=False)
    siblings: tuple[Json, ...] = field(repr=False)  # every statement of the same owner, this one too

    @property
    def name(self) -> str:
        return f"{self.owner}/{self.policy}/{self.body.get('Sid', self.index)}"

    @property
    def actions(self) -> list[str]:
        return [str(a) for a in _listed(self.body.get("Action", []))]

    @property
    def resources(self) -> list[Any]:
        return _listed(self.body.get("Resource", []))


def _policy_documents(logical_id: str, resource: Json) -> Iterator[tuple[str, Json]]:
    properties = resource.get("Properties", {})
    if resource["Type"] == "AWS::IAM::Role":
        for policy in properties.get("Policies", []):
            yield policy["PolicyName"], policy["PolicyDocument"]
    elif resource["Type"] == "AWS::IAM::Policy":
        yield properties["PolicyName"], properties["PolicyDocument"]
    elif resource["Type"] == "AWS::IAM::ManagedPolicy":
        yield properties.get("ManagedPolicyName", logical_id), properties["PolicyDocument"]


def _statements() -> list[Statement]:
    found = []
    for logical_id in _of_type("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        resource = _translated()["Resources"][logical_id]
        documents = list(_policy_documents(logical_id, resource))
        siblings = tuple(s for _, document in documents for s in _listed(document["Statement"]))
        for policy, document in documents:
            for index, body in enumerate(_listed(document["Statement"])):
                found.append(Statement(logical_id, policy, index, body, siblings))
    return found


ALLOWS = [s for s in _statements() if s.body.get("Effect") == "Allow"]


def _unscoped(resource: Any) -> bool:
    """ "*", any region or account, every resource of a kind, or a name prefix that fits others' names."""
    text = _text(resource)
    if text is None:
        return False
    if text == "*" or _NAME_PREFIX.search(text):
        return True
    arn = _ARN.match(_VARIABLE.sub("${}", text))
    return arn is not None and (
        "*" in (arn["region"], arn["account"]) or _ANY_OF_A_KIND.match(arn["resource"]) is not None
    )


def test_the_pepper_gets_no_new_value_and_is_read_by_the_roles_that_hash_alone() -> None:
    """The secret's own policy, beside the roles': a rotation or a value put (or the generating block
    edited) would make every user unknown. Its readers are exactly the roles allowed to read it."""
    policy = _translated()["Resources"]["PepperSecretPolicy"]["Properties"]
    assert policy["SecretId"] == {"Ref": "PepperSecret"}
    never, readers = policy["ResourcePolicy"]["Statement"]
    assert (never["Effect"], never["Principal"]) == ("Deny", "*")
    assert set(never["Action"]) == {
        f"secretsmanager:{action}"
        for action in ("PutSecretValue", "UpdateSecret", "RotateSecret", "UpdateSecretVersionStage", "DeleteSecret")
    }
    assert (readers["Effect"], readers["Principal"], readers["Action"]) == (
        "Deny",
        "*",
        "secretsmanager:GetSecretValue",
    )
    *functions, operator = readers["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    # and the operators' tools' role, if one is given (the population import, the support's block)
    assert operator == {"Fn::If": ["HasPepperOperator", {"Ref": "PepperOperatorRoleArn"}, {"Ref": "AWS::NoValue"}]}
    named = {arn["Fn::GetAtt"][0] for arn in functions}
    allowed = {
        s.owner
        for s in ALLOWS
        if "secretsmanager:GetSecretValue" in _listed(s.body.get("Action", []))
        and {"Ref": "PepperSecret"} in _listed(s.body.get("Resource", []))
    }
    assert named == allowed
    assert len(named) == 5


def test_the_letters_documents_are_made_and_read_by_the_roles_that_do_so_alone() -> None:
    """A document is a letter's codes in clear: the bucket's own policy, beside the roles', keeps every other
    principal of the account (a deploy role, an administrator) from reading or writing one, as the pepper's
    does; exactly the roles allowed to make or read one are spared."""
    policy = _translated()["Resources"]["PrintDocumentsBucketPolicy"]["Properties"]["PolicyDocument"]
    (alone,) = [s for s in policy["Statement"] if s.get("Sid") == "DocumentsToTheirRolesAlone"]
    assert (alone["Effect"], alone["Principal"]) == ("Deny", "*")
    assert set(alone["Action"]) == {"s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"}
    assert _text(alone["Resource"]) == "${PrintDocumentsBucket.Arn}/*"
    named = {arn["Fn::GetAtt"][0] for arn in alone["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]}
    allowed = {
        s.owner
        for s in ALLOWS
        if {"s3:GetObject", "s3:PutObject"} & set(_listed(s.body.get("Action", [])))
        and any("PrintDocumentsBucket" in (_text(r) or "") for r in _listed(s.body.get("Resource", [])))
    }
    assert named == allowed == {"LetterWorkflowFunctionRole", "PrintProviderRole"}


def _denies_publishing_to_every_topic(statement: Statement) -> bool:
    return any(
        s.get("Effect") == "Deny"
        and "sns:Publish" in _listed(s.get("Action", []))
        and any(_text(r) in EVERY_TOPIC for r in _listed(s.get("Resource", [])))
        for s in statement.siblings
    )


def _limited_to_a_namespace(statement: Statement) -> bool:
    return "cloudwatch:namespace" in statement.body.get("Condition", {}).get("StringEquals", {})


# What an unscopable action needs beside it, for the actions that need something.
GUARDS: dict[str, tuple[str, Callable[[Statement], bool]]] = {
    "sns:Publish": ("a Deny of sns:Publish on every topic", _denies_publishing_to_every_topic),
    "cloudwatch:PutMetricData": ("a cloudwatch:namespace condition", _limited_to_a_namespace),
}


@pytest.mark.parametrize("statement", ALLOWS, ids=lambda s: s.name)
def test_allowed_actions_are_named_in_full(statement: Statement) -> None:
    assert "NotAction" not in statement.body
    assert statement.actions
    assert [a for a in statement.actions if "*" in a] == []


@pytest.mark.parametrize("statement", ALLOWS, ids=lambda s: s.name)
def test_allowed_resources_are_scoped_unless_aws_allows_no_scope(statement: Statement) -> None:
    assert "NotResource" not in statement.body
    assert statement.resources
    if not any(_unscoped(r) for r in statement.resources):
        return
    assert [a for a in statement.actions if a not in UNSCOPABLE] == [], "only UNSCOPABLE actions may go unscoped"
    for action in statement.actions:
        if action in GUARDS:
            needs, guarded = GUARDS[action]
            assert guarded(statement), f"{action} on any resource needs {needs}"


def test_there_are_statements_to_check() -> None:
    assert len(ALLOWS) > 50
    assert {s.owner for s in ALLOWS} >= set(_of_type("AWS::IAM::Role"))


@pytest.mark.parametrize(
    ("text", "unscoped"),
    [
        ("*", True),
        ("arn:${AWS::Partition}:sns:*:*:*", True),
        ("arn:aws:s3:::*", True),
        ("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*", True),
        ("arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${functionName}*", True),
        ("${Bucket.Arn}/letters/*", False),
        ("arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${Name}:*", False),
        ("arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${PublicDomain}", False),
    ],
)
def test_what_counts_as_unscoped(text: str, unscoped: bool) -> None:
    assert _unscoped({"Fn::Sub": text}) is unscoped


# ---------------------------------------------------------------------- roles
@pytest.mark.parametrize("role_id", _of_type("AWS::IAM::Role"))
def test_roles_have_no_aws_managed_policies(translated: Json, role_id: str) -> None:
    """AWS managed policies grant on "*" (logs, X-Ray, SQS): roles carry their own scoped statements."""
    arns = _listed(translated["Resources"][role_id]["Properties"].get("ManagedPolicyArns", []))
    assert [a for a in arns if AWS_MANAGED_POLICY.match(_text(a) or "")] == []


@pytest.mark.parametrize("role_id", _of_type("AWS::IAM::Role"))
def test_service_roles_trust_only_our_account(translated: Json, role_id: str) -> None:
    """Every role SAM's translation holds: the template's, and any SAM would make (a schedule's, say)."""
    for statement in _listed(translated["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]):
        if "Service" in statement.get("Principal", {}):
            assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


@pytest.mark.parametrize("function_id", _of_type("AWS::Lambda::Function"))
def test_each_function_has_its_own_role_writing_only_its_own_logs(translated: Json, function_id: str) -> None:
    resources = translated["Resources"]
    function = resources[function_id]["Properties"]
    role = function["Role"]
    assert set(role) == {"Fn::GetAtt"}, "an explicit role of this template, not one SAM makes"
    role_id, _ = role["Fn::GetAtt"]
    assert resources[role_id]["Type"] == "AWS::IAM::Role"
    assert [k for k in _of_type("AWS::Lambda::Function") if resources[k]["Properties"]["Role"] == role] == [function_id]

    log_group = function["LoggingConfig"]["LogGroup"]["Ref"]
    logs = [s for s in ALLOWS if s.owner == role_id and any(a.startswith("logs:") for a in s.actions)]
    assert [sorted(s.actions) for s in logs] == [["logs:CreateLogStream", "logs:PutLogEvents"]]
    assert logs[0].resources == [{"Fn::GetAtt": [log_group, "Arn"]}]


# ---------------------------------------------------------------------- data at rest and in transit
def _project_key(value: Any) -> bool:
    keys = _of_type("AWS::KMS::Key")
    return value in [{"Ref": k} for k in keys] + [{"Fn::GetAtt": [k, "Arn"]} for k in keys]


@pytest.mark.parametrize("bucket_id", _of_type("AWS::S3::Bucket"))
def test_buckets_are_encrypted_private_and_tls_only(translated: Json, bucket_id: str) -> None:
    resources = translated["Resources"]
    bucket = resources[bucket_id]["Properties"]
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert _project_key(rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"])
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    # were versioning turned on, what is deleted (a print document, its codes in clear) would stay as a
    # noncurrent version but for a rule that expires those too
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert all(rule["NoncurrentVersionExpiration"]["NoncurrentDays"] <= 1 for rule in rules)

    policies = [
        r["Properties"]["PolicyDocument"]
        for r in resources.values()
        if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    tls_only = [
        s
        for policy in policies
        for s in _listed(policy["Statement"])
        if s["Effect"] == "Deny"
        and s["Principal"] in ("*", {"AWS": "*"})
        and "s3:*" in _listed(s["Action"])
        and str(s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")).lower() == "false"
    ]
    assert tls_only, f"{bucket_id} has no bucket policy denying requests without TLS"
    covered = [_text(r) or r for s in tls_only for r in _listed(s["Resource"])]
    assert {"Fn::GetAtt": [bucket_id, "Arn"]} in covered
    assert f"${{{bucket_id}.Arn}}/*" in covered


# Kept from point-in-time recovery: a minute-by-minute record of each person's use of MinID for 35 days (and
# as long after the table is deleted), which a lost table (everyone logged out) does not call for.
NOT_RECOVERABLE = {"SessionsTable"}


@pytest.mark.parametrize("table_id", _of_type("AWS::DynamoDB::Table"))
def test_tables_have_point_in_time_recovery_and_the_project_key(translated: Json, table_id: str) -> None:
    table = translated["Resources"][table_id]["Properties"]
    recovery = table.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled")
    assert recovery is (table_id not in NOT_RECOVERABLE)
    sse = table.get("SSESpecification", {})
    assert sse.get("SSEEnabled") is True
    assert sse.get("SSEType") == "KMS"
    assert _project_key(sse.get("KMSMasterKeyId"))


@pytest.mark.parametrize("resource_id", _of_type("AWS::SQS::Queue", "AWS::SNS::Topic"))
def test_queues_and_topics_are_encrypted_with_the_project_key(translated: Json, resource_id: str) -> None:
    assert _project_key(translated["Resources"][resource_id]["Properties"].get("KmsMasterKeyId"))


@pytest.mark.parametrize("secret_id", _of_type("AWS::SecretsManager::Secret"))
def test_secrets_are_encrypted_with_the_project_key(translated: Json, secret_id: str) -> None:
    assert _project_key(translated["Resources"][secret_id]["Properties"].get("KmsKeyId"))


@pytest.mark.parametrize("log_group_id", _of_type("AWS::Logs::LogGroup"))
def test_log_groups_are_kept_for_a_set_time(translated: Json, log_group_id: str) -> None:
    assert "RetentionInDays" in translated["Resources"][log_group_id]["Properties"]


@pytest.mark.parametrize("log_group_id", _of_type("AWS::Logs::LogGroup"))
def test_log_groups_are_encrypted_with_the_project_key_which_lets_logs_use_it_for_them(
    translated: Json, log_group_id: str
) -> None:
    """What the masking misses in a log is then under the operators' key, as the tables are; the key lets
    CloudWatch Logs use it for this stack's log groups (by its encryption context), and no others."""
    group = translated["Resources"][log_group_id]["Properties"]
    assert _project_key(group.get("KmsKeyId"))
    policy = translated["Resources"]["DataKey"]["Properties"]["KeyPolicy"]["Statement"]
    (for_logs,) = [
        s for s in policy if s["Principal"].get("Service") == {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}
    ]
    (condition,) = for_logs["Condition"].items()
    assert condition[0] == "ArnEquals"  # whole names: a pattern would take in another stack's named alike
    arns = [arn["Fn::Sub"] for arn in condition[1]["kms:EncryptionContext:aws:logs:arn"]]
    name = group["LogGroupName"]["Fn::Sub"]
    assert f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:{name}" in arns
    assert all("*" not in arn and arn.count("${AWS::StackName}") == 1 for arn in arns)  # this stack's own
    groups = [
        translated["Resources"][g]["Properties"]["LogGroupName"]["Fn::Sub"] for g in _of_type("AWS::Logs::LogGroup")
    ]
    assert len(arns) == len(set(arns)) == len(groups)  # and no others


@pytest.mark.parametrize("key_id", _of_type("AWS::KMS::Key"))
def test_keys_rotate(translated: Json, key_id: str) -> None:
    assert translated["Resources"][key_id]["Properties"].get("EnableKeyRotation") is True


def test_the_print_provider_decrypts_only_through_s3_and_sqs(translated: Json) -> None:
    """The provider is another company; the data key protects every table, queue and secret as well as
    its documents: it may decrypt only as S3 and SQS do for it, not a ciphertext it came by."""
    kms = [s for s in ALLOWS if s.owner == "PrintProviderRole" and any(a.startswith("kms:") for a in s.actions)]
    assert kms
    for statement in kms:
        services = statement.body["Condition"]["StringEquals"]["kms:ViaService"]
        assert sorted(str(_text(v)) for v in services) == [
            "s3.${AWS::Region}.amazonaws.com",
            "sqs.${AWS::Region}.amazonaws.com",
        ]


@pytest.mark.parametrize("table_id", _of_type("AWS::DynamoDB::Table"))
def test_every_table_is_kept_from_a_deletion_in_production(translated: Json, table_id: str) -> None:
    """Citizens' records, and the short-lived ones too: the notifier's ledger of what it sent (a notice still
    queued would be sent again), the enrolments and resets in flight, the sessions."""
    protection = translated["Resources"][table_id]["Properties"].get("DeletionProtectionEnabled")
    assert protection == {"Fn::If": ["IsProduction", True, False]}

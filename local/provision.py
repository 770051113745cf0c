"""Provision embedded AWS (moto) from template.yaml's own resource definitions.

Each resource type the functions talk to is created from its template properties; the intrinsic
functions (Ref, GetAtt, Sub, If, Join, ...) are resolved against what was created, as CloudFormation
would. Resources the local stack has no use for (log groups, alarms, the HTTP API, IAM) are noted
and skipped: the gateway reads routes from the template itself.
"""

from __future__ import annotations

import graphlib
import json
import re
import secrets
import string
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import boto3

from local.aws import ACCOUNT_ID, REGION
from local.template import FunctionSpec, Template

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

STACK_NAME = "minid-local"
# The local stage; its notifier polls at once, so a notice queued before its change need not wait.
LOCAL_PARAMETERS = {"Stage": "local", "NoticeProofDelaySeconds": "0"}
_NO_VALUE = object()
_CONDITION_FUNCTIONS = ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition")


class RuleFailed(ValueError):
    """The parameters break a rule of the template: CloudFormation would refuse the stack."""


class Stack:
    """What was provisioned: physical ids and attributes by logical id, and intrinsic resolution."""

    def __init__(self, template: Template, parameters: Mapping[str, str]) -> None:
        self.template = template
        self.parameters = {**template.parameter_defaults(), **parameters}
        self.refs: dict[str, str] = {}
        self.attributes: dict[str, dict[str, str]] = {}
        self.skipped: list[str] = []
        self._pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": STACK_NAME,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }

    # ------------------------------------------------------------------ intrinsic functions
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, argument),) = value.items()
            function = self._functions.get(name)
            if function is not None:
                return function(self, argument)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template.document["Conditions"][name]))

    def check_rules(self) -> None:
        """The parameters, as the template declares them, and the template's Rules, as CloudFormation
        checks them before it changes anything: each assertion of a rule whose condition holds (or that has
        none) must hold."""
        for name, value in self.parameters.items():
            self._check_parameter(name, value)
        for name, rule in self.template.document.get("Rules", {}).items():
            if "RuleCondition" in rule and not self._rule(rule["RuleCondition"]):
                continue
            for assertion in rule["Assertions"]:
                if not self._rule(assertion["Assert"]):
                    raise RuleFailed(f"{name}: {assertion.get('AssertDescription', 'an assertion failed')}")

    def _check_parameter(self, name: str, value: str) -> None:
        """A parameter the template has, with a value its declaration allows (a name mistyped would
        otherwise leave the default in place unseen)."""
        spec = self.template.document.get("Parameters", {}).get(name)
        if spec is None:
            raise RuleFailed(f"{name}: the template has no such parameter")
        if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
            raise RuleFailed(f"{name}: must be one of {spec['AllowedValues']}")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
            raise RuleFailed(f"{name}: must match {spec['AllowedPattern']}")
        if not spec.get("MinLength", 0) <= len(value) <= spec.get("MaxLength", len(value)):
            raise RuleFailed(f"{name}: its length is out of range")
        if spec.get("Type") == "Number":
            try:
                number = float(value)
            except ValueError:
                raise RuleFailed(f"{name}: must be a number") from None
            if not spec.get("MinValue", number) <= number <= spec.get("MaxValue", number):
                raise RuleFailed(f"{name}: must be from {spec.get('MinValue')} to {spec.get('MaxValue')}")

    def _rule(self, value: Any) -> Any:
        """A rule's value, with what rules may use here: parameters (Ref) and Fn::Equals (as strings),
        Fn::Not, Fn::And, Fn::Or. Anything else is refused, not taken for true."""
        if isinstance(value, str | int | float | bool):
            return value
        if not (isinstance(value, dict) and len(value) == 1):
            raise RuleFailed(f"a rule uses what the local stack does not evaluate: {value!r}")
        ((name, argument),) = value.items()
        if name == "Ref" and argument in self.parameters:
            return self.parameters[argument]
        if name == "Fn::Equals":
            return str(self._rule(argument[0])) == str(self._rule(argument[1]))
        if name == "Fn::Not":
            return not self._rule(argument[0])
        if name in ("Fn::And", "Fn::Or"):
            results = [bool(self._rule(v)) for v in argument]
            return all(results) if name == "Fn::And" else any(results)
        raise RuleFailed(f"a rule uses what the local stack does not evaluate: {value!r}")

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.refs[name]

    def _get_att(self, argument: Any) -> str:
        logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
        return self.attributes[logical_id][self.resolve(attribute)]

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {k: self.resolve(v) for k, v in variables.items()}

        def substitute(name: str) -> str:
            if name in values:
                return str(values[name])
            if "." in name and not name.startswith("AWS::"):
                return self._get_att(name)
            return str(self._ref(name))

        return _substitute(text, substitute)

    def _if(self, argument: list[Any]) -> Any:
        name, when_true, when_false = argument
        return self.resolve(when_true if self.condition(name) else when_false)

    _functions: ClassVar[dict[str, Callable[[Stack, Any], Any]]] = {
        "Ref": lambda self, a: self._ref(a),
        "Fn::GetAtt": lambda self, a: self._get_att(a),
        "Fn::Sub": lambda self, a: self._sub(a),
        "Fn::If": lambda self, a: self._if(a),
        "Fn::Equals": lambda self, a: self.resolve(a[0]) == self.resolve(a[1]),
        "Fn::Not": lambda self, a: not self.resolve(a[0]),
        "Fn::And": lambda self, a: all(self.resolve(v) for v in a),
        "Fn::Or": lambda self, a: any(self.resolve(v) for v in a),
        "Condition": lambda self, a: self.condition(a),
        "Fn::Join": lambda self, a: str(a[0]).join(str(v) for v in self.resolve(a[1])),
        "Fn::Select": lambda self, a: self.resolve(a[1])[int(self.resolve(a[0]))],
        "Fn::Split": lambda self, a: str(self.resolve(a[1])).split(a[0]),
        "Fn::FindInMap": lambda self, a: self.template.document["Mappings"][self.resolve(a[0])][self.resolve(a[1])][
            self.resolve(a[2])
        ],
    }

    # ------------------------------------------------------------------ what functions see
    def function_name(self, spec: FunctionSpec) -> str:
        return self.refs[spec.logical_id]

    def function_environment(self, spec: FunctionSpec) -> dict[str, str]:
        variables = spec.properties.get("Environment", {}).get("Variables", {})
        return {name: _text(self.resolve(value)) for name, value in variables.items()}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _substitute(text: str, substitute: Callable[[str], str]) -> str:
    """Fn::Sub's ${Name} and ${Name.Attribute}; ${!Literal} stands for ${Literal}."""
    out, position = [], 0
    while (start := text.find("${", position)) != -1:
        end = text.index("}", start)
        out.append(text[position:start])
        name = text[start + 2 : end]
        out.append("${" + name[1:] + "}" if name.startswith("!") else substitute(name))
        position = end + 1
    out.append(text[position:])
    return "".join(out)


def _dependencies(value: Any) -> set[str]:
    """The logical ids a value refers to, through Ref, GetAtt and Sub."""
    found: set[str] = set()
    if isinstance(value, list):
        for v in value:
            found |= _dependencies(v)
    elif isinstance(value, dict):
        for key, v in value.items():
            if key == "Ref" and isinstance(v, str):
                found.add(v)
            elif key == "Fn::GetAtt":
                found.add(v.split(".")[0] if isinstance(v, str) else v[0])
            elif key == "Fn::Sub":
                text = v if isinstance(v, str) else v[0]
                found |= _names_in_sub(text)
                found |= _dependencies(v[1] if isinstance(v, list) else None)
            else:
                found |= _dependencies(v)
    return found


def _names_in_sub(text: str) -> set[str]:
    names: set[str] = set()

    def collect(name: str) -> str:
        names.add(name.split(".", maxsplit=1)[0])
        return ""

    _substitute(text, collect)
    return names


# ---------------------------------------------------------------------- one provisioner per type
class Clients:
    """The clients the provisioning uses, each made once: not one for each resource (a client takes some
    5 to 10 ms to make, and a stack has some thirty resources)."""

    def __init__(self, session: boto3.Session) -> None:
        self._session = session

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        return self._session.client("dynamodb")

    @cached_property
    def kms(self) -> KMSClient:
        return self._session.client("kms")

    @cached_property
    def s3(self) -> S3Client:
        return self._session.client("s3")

    @cached_property
    def secretsmanager(self) -> SecretsManagerClient:
        return self._session.client("secretsmanager")

    @cached_property
    def sesv2(self) -> SESV2Client:
        return self._session.client("sesv2")

    @cached_property
    def sns(self) -> SNSClient:
        return self._session.client("sns")

    @cached_property
    def sqs(self) -> SQSClient:
        return self._session.client("sqs")

    @cached_property
    def stepfunctions(self) -> SFNClient:
        return self._session.client("stepfunctions")


Provisioner = Callable[[Stack, Clients, str, dict[str, Any]], None]


def _physical_name(logical_id: str, properties: dict[str, Any], key: str) -> str:
    return str(properties.get(key) or f"{STACK_NAME}-{logical_id}")


def _kms_key(stack: Stack, clients: Clients, logical_id: str, p: dict[str, Any]) -> None:
    kms = clients.kms
    metadata = kms.create_key(Description=p.get("Description", logical_id), Policy=json.dumps(p["KeyPolicy"]))[
        "KeyMetadata"
    ]
    if p.get("EnableKeyRotation"):
        kms.enable_key_rotation(KeyId=metadata["KeyId"])
    stack.refs[logical_id] = metadata["KeyId"]
    stack.attributes[logical_id] = {"Arn": metadata["Arn"], "KeyId": metadata["KeyId"]}


def _kms_alias(stack: Stack, clients: Clients, logical_id: str, p: dict[str, Any]) -> None:
    clients.kms.create_alias(AliasName=p["AliasName"], TargetKeyId=p["TargetKeyId"])
    stack.refs[logical_id] = p["AliasName"]


def _secret(stack: Stack, clients: Clients, logical_id: str, p: dict[str, Any]) -> None:
    generate = p.get("GenerateSecretString", {})
    alphabet = string.ascii_letters + string.digits
    if not generate.get("ExcludePunctuation"):
        alphabet += "!#$%&()*+,-.:;<=>?@[]^_{|}~"
    value = p.get("SecretString") or "".join(
        secrets.choice(alphabet) for _ in range(int(generate.get("PasswordLength", 32)))
    )
    kwargs: dict[str, Any] = {"Name": _physical_name(logical_id, p, "Name"), "SecretString": value}
    if p.get("KmsKeyId"):
        kwargs["KmsKeyId"] = p["KmsKeyId"]
    arn = clients.secretsmanager.create_secret(**kwargs)["ARN"]
    stack.refs[logical_id] = arn
    stack.attributes[logical_id] = {"Id": arn}


def _table(stack: Stack, clients: Clients, logical_id: str, p: dict[str, Any]) -> None:
    dynamodb = clients.dynamodb
    name = _physical_name(logical_id, p, "TableName")
    kwargs: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": p["AttributeDefinitions"],
        "KeySchema": p["KeySchema"],
        "BillingMode": p.get("BillingMode", "PROVISIONED"),
    }
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "ProvisionedThroughput"):
        if key in p:
            kwargs[key] = p[key]
    if "StreamSpecification" in p:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, **p["StreamSpecification"]}
    if sse := p.get("SSESpecification"):
        kwargs["SSESpecification"] = {
            "Enabled": bool(sse.get("SSEEnabled")),
            **({"SSEType": sse["SSEType"]} if "SSEType" in sse else {}),
            **({"KMSMasterKeyId": sse["KMSMasterKeyId"]} if "KMSMasterKeyId" in sse else {}),
        }
    description = dynamodb.create_table(**kwargs)["TableDescription"]
    if ttl := p.get("TimeToLiveSpecification"):
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    if p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
        dynamodb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    stack.refs[logical_id] = name
    stack.attributes[logical_id] = {
        "Arn": description["TableArn"],
        "StreamArn": description.get("LatestStreamArn", ""),
    }


def _topic(stack: Stack, clients: Clients, logical_id: str, p: dict[str, Any]) -> None:
    name = _physical_name(logical_id, p, "TopicName")
    attributes: dict[str, str] = {k: str(p[k]) for k in ("DisplayName", "KmsMasterKeyId") if k in p}
    if p.get("FifoTopic"):
        attributes["FifoTopic"] = "true"
    arn = clients.sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
    stack.refs[logical_id] = arn
    stack.attributes[logical_id] = {"TopicArn": arn, "TopicName": name}


_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "FifoQueue",
    "ContentBasedDeduplication",
)


def _queue(stack: Stack, clients: Clients, logical_id: str, p: dict[str, Any]) -> None:
    sqs = clients.sqs
    name = _physical_name(logical_id, p, "QueueName")
    if p.get("FifoQueue") and not name.endswith(".fifo"):
        name += ".fifo"
    attributes: dict[Any, str] = {k: _text(p[k]) for k in _QUEUE_ATTRIBUTES if k in p}
    if "RedrivePolicy" in p:
        attributes["RedrivePolicy"] = json.dumps(p["RedrivePolicy"])
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stack.refs[logical_id] = url
    stack.attributes[logical_id] = {"Arn": arn, "QueueName": name, "QueueUrl": url}


def _bucket(stack: Stack, clients: Clients, logical_id: str, p: dict[str, Any]) -> None:
    s3 = clients.s3
    name = _physical_name(logical_id, p, "BucketName").lower()
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})  # type: ignore[typeddict-item]
    if encryption := p.get("BucketEncryption"):
        rules: Any = [  # CloudFormation's names for the API's
            {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
            | ({"BucketKeyEnabled": rule["BucketKeyEnabled"]} if "BucketKeyEnabled" in rule else {})
            for rule in encryption["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if block := p.get("PublicAccessBlockConfiguration"):
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=block)
    stack.refs[logical_id] = name
    stack.attributes[logical_id] = {"Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com"}


def _function(stack: Stack, clients: Clients, logical_id: str, p: dict[str, Any]) -> None:
    """Functions run in this process (see local.functions); only their names and ARNs are needed."""
    name = _physical_name(logical_id, p, "FunctionName")
    stack.refs[logical_id] = name
    stack.attributes[logical_id] = {"Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"}


def _state_machine(stack: Stack, clients: Clients, logical_id: str, p: dict[str, Any]) -> None:
    path = stack.template.path.parent / p["DefinitionUri"]
    definition = _definition_text(path)
    substitutions = {k: str(v) for k, v in p.get("DefinitionSubstitutions", {}).items()}
    definition = _substitute(definition, lambda name: substitutions[name])
    name = _physical_name(logical_id, p, "Name")
    arn = clients.stepfunctions.create_state_machine(
        name=name,
        definition=definition,
        roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{name}-role",
        type=p.get("Type", "STANDARD"),
    )["stateMachineArn"]
    stack.refs[logical_id] = arn
    stack.attributes[logical_id] = {"Arn": arn, "Name": name}


def _email_identity(stack: Stack, clients: Clients, logical_id: str, p: dict[str, Any]) -> None:
    """In moto an identity is verified when it is created; on AWS, when its DNS records are in place."""
    clients.sesv2.create_email_identity(EmailIdentity=p["EmailIdentity"])
    stack.refs[logical_id] = p["EmailIdentity"]
    stack.attributes[logical_id] = {}


def _configuration_set(stack: Stack, clients: Clients, logical_id: str, p: dict[str, Any]) -> None:
    name = _physical_name(logical_id, p, "Name")
    options: Any = (
        {"SuppressedReasons": p["SuppressionOptions"]["SuppressedReasons"]} if "SuppressionOptions" in p else {}
    )
    clients.sesv2.create_configuration_set(ConfigurationSetName=name, SuppressionOptions=options)
    stack.refs[logical_id] = name
    stack.attributes[logical_id] = {}


def _definition_text(path: Path) -> str:
    if path.suffix in (".yaml", ".yml"):
        import yaml  # noqa: PLC0415  (only for definitions kept as YAML)

        return json.dumps(yaml.safe_load(path.read_text()))
    return path.read_text()


PROVISIONERS: dict[str, Provisioner] = {
    "AWS::KMS::Key": _kms_key,
    "AWS::KMS::Alias": _kms_alias,
    "AWS::SecretsManager::Secret": _secret,
    "AWS::DynamoDB::Table": _table,
    "AWS::SNS::Topic": _topic,
    "AWS::SQS::Queue": _queue,
    "AWS::S3::Bucket": _bucket,
    "AWS::Serverless::Function": _function,
    "AWS::Serverless::StateMachine": _state_machine,
    "AWS::SES::EmailIdentity": _email_identity,
    "AWS::SES::ConfigurationSet": _configuration_set,
}


def provision(template: Template, session: boto3.Session, parameters: Mapping[str, str] = LOCAL_PARAMETERS) -> Stack:
    """Create in moto every resource of the template that the functions use, in dependency order."""
    stack = Stack(template, parameters)
    stack.check_rules()
    clients = Clients(session)
    resources = template.resources
    graph = {
        logical_id: {
            d for d in _dependencies(resource.get("Properties", {})) | set(_depends_on(resource)) if d in resources
        }
        for logical_id, resource in resources.items()
    }
    for logical_id in graphlib.TopologicalSorter(graph).static_order():
        resource = resources[logical_id]
        if "Condition" in resource and not stack.condition(resource["Condition"]):
            continue
        provisioner = PROVISIONERS.get(resource["Type"])
        if provisioner is None:
            stack.skipped.append(logical_id)
            stack.refs[logical_id] = logical_id
            stack.attributes[logical_id] = _Unemulated(logical_id)
            continue
        provisioner(stack, clients, logical_id, stack.resolve(resource.get("Properties", {})))
    return stack


class _Unemulated(dict[str, str]):
    """Attributes of a resource the local stack does not create: a placeholder ARN for any name."""

    def __init__(self, logical_id: str) -> None:
        super().__init__()
        self._logical_id = logical_id

    def __missing__(self, attribute: str) -> str:
        return f"arn:aws:local:{REGION}:{ACCOUNT_ID}:{self._logical_id}/{attribute}"


def _depends_on(resource: dict[str, Any]) -> list[str]:
    depends = resource.get("DependsOn", [])
    return [depends] if isinstance(depends, str) else list(depends)

"""Embedded AWS is provisioned from template.yaml's own resource definitions."""

from __future__ import annotations

import inspect
import re
from collections import Counter
from typing import Any

import boto3
import pytest

from local.provision import LOCAL_PARAMETERS, RuleFailed, Stack, provision
from local.template import Template
from minid import settings, wiring
from tests.integration.test_stage_rules import PRODUCTION_PRINT_PROVIDER


def test_every_table_of_the_template_exists_as_defined(aws: boto3.Session, stack: Stack, template: Template) -> None:
    dynamodb = aws.client("dynamodb")
    tables = template.resources_of_type("AWS::DynamoDB::Table")
    assert len(tables) >= 8
    for logical_id, resource in tables.items():
        properties = resource["Properties"]
        name = stack.refs[logical_id]
        description = dynamodb.describe_table(TableName=name)["Table"]
        assert description["KeySchema"] == properties["KeySchema"]
        assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert description["SSEDescription"]["SSEType"] == "KMS"
        backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        recovery = properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == (
            "ENABLED" if recovery else "DISABLED"
        )
        ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if "TimeToLiveSpecification" in properties:
            assert ttl["AttributeName"] == properties["TimeToLiveSpecification"]["AttributeName"]
            assert ttl["TimeToLiveStatus"] == "ENABLED"


def test_provisioning_makes_one_client_for_each_service_not_one_for_each_resource(
    aws: boto3.Session, template: Template
) -> None:
    made: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        made[event_name.removeprefix("creating-client-class.")] += 1

    aws.events.register("creating-client-class", count)
    stack = provision(template, aws)
    assert len(stack.refs) > 2 * len(made) > 0, (stack.refs, made)  # resources of each type, some types several
    assert set(made.values()) == {1}, made
    assert {"dynamodb", "sqs", "kms"} <= set(made), made


def test_the_pepper_secret_is_generated_as_the_template_asks(aws: boto3.Session, stack: Stack) -> None:
    secret = aws.client("secretsmanager").get_secret_value(SecretId=stack.refs["PepperSecret"])["SecretString"]
    assert len(secret) == 64
    assert secret.isalnum()


def test_the_kms_key_rotates(aws: boto3.Session, stack: Stack) -> None:
    status = aws.client("kms").get_key_rotation_status(KeyId=stack.refs["DataKey"])
    assert status["KeyRotationEnabled"] is True


def test_function_environments_resolve_to_what_was_provisioned(stack: Stack, template: Template) -> None:
    for spec in template.functions():
        environment = stack.function_environment(spec)
        assert environment["STAGE"] == "local"
        assert environment["ALLOW_SYNTHETIC_IDENTITY_NUMBERS"] == "true"
        assert all(isinstance(v, str) and "{" not in v for v in environment.values())


def test_each_function_is_configured_by_its_own_environment_alone(stack: Stack, template: Template) -> None:
    """The local stack runs every function in one process, with one os.environ holding all their
    variables; on AWS each sees its own. Each function's settings are read from its own variables only:
    one that came to need another's would fail at its first request on AWS, and not here."""
    checked = []
    for spec in template.functions():
        uses = re.search(r"wiring\.(\w+)\(os\.environ", (spec.code_dir / "app.py").read_text())
        if uses is None:  # the health function reads no settings
            continue
        read = re.search(r"settings = (\w+)\.from_environ\(environ\)", inspect.getsource(getattr(wiring, uses[1])))
        assert read is not None, uses[1]
        getattr(settings, read[1]).from_environ(stack.function_environment(spec))  # SettingsError if short
        checked.append(spec.logical_id)
    assert len(checked) >= 8


def test_production_refuses_synthetic_numbers(aws: boto3.Session, template: Template) -> None:
    from local.provision import provision  # noqa: PLC0415

    production = provision(template, aws, {"Stage": "prod", **PRODUCTION_PRINT_PROVIDER})
    for spec in template.functions():
        assert production.function_environment(spec)["ALLOW_SYNTHETIC_IDENTITY_NUMBERS"] == "false"


@pytest.mark.parametrize(
    ("parameters", "refused"),
    [
        ({}, False),  # a provider in this account
        ({"PrintProviderAccountId": "210987654321"}, True),
        ({"PrintProviderAccountId": "210987654321", "PrintProviderExternalId": "agreed-with-the-provider"}, False),
    ],
)
def test_a_print_provider_in_another_account_must_give_an_external_id(
    template: Template, parameters: dict[str, str], refused: bool
) -> None:
    """Without one, anyone in the provider's account who may assume roles could read the letters' codes."""
    assert template.document["Rules"]  # checked by the local stack as CloudFormation checks it
    stack = Stack(template, {**LOCAL_PARAMETERS, **parameters})
    if refused:
        with pytest.raises(RuleFailed, match="PrintProviderExternalId"):
            stack.check_rules()
    else:
        stack.check_rules()


def test_production_names_the_print_providers_account(template: Template) -> None:
    """In this account the role trusts the account itself: anyone here who may assume roles could read the
    letters. Production refuses it; the other stages take it."""
    with pytest.raises(RuleFailed, match="PrintProviderAccountId"):
        Stack(template, {**LOCAL_PARAMETERS, "Stage": "prod"}).check_rules()
    Stack(template, {**LOCAL_PARAMETERS, "Stage": "prod", **PRODUCTION_PRINT_PROVIDER}).check_rules()
    Stack(template, {**LOCAL_PARAMETERS, "Stage": "test"}).check_rules()


@pytest.mark.parametrize(
    ("parameters", "told"),
    [
        ({"LockoutTreshold": "5"}, "no such parameter"),  # mistyped: the default would stand unseen
        ({"Stage": "dev"}, "one of"),
        ({"NoticeProofDelaySeconds": "1000"}, "from 0 to 900"),
        ({"LockoutThreshold": "many"}, "a number"),
        ({"PrintProviderAccountId": "12345"}, "must match"),
        ({"OperatorEmail": "operators on call"}, "must match"),
    ],
)
def test_parameters_the_template_does_not_allow_are_refused(
    template: Template, parameters: dict[str, str], told: str
) -> None:
    """As CloudFormation refuses them, before anything is made."""
    with pytest.raises(RuleFailed, match=told):
        Stack(template, {**LOCAL_PARAMETERS, **parameters}).check_rules()


def test_a_rule_the_local_stack_cannot_evaluate_is_refused_not_passed(template: Template) -> None:
    document = {**template.document, "Rules": {"Odd": {"Assertions": [{"Assert": {"Fn::Contains": [["a"], "a"]}}]}}}
    with pytest.raises(RuleFailed, match="does not evaluate"):
        Stack(Template(document), LOCAL_PARAMETERS).check_rules()


def test_the_operators_alarms_go_to_the_address_given_or_to_no_one_until_subscribed(template: Template) -> None:
    subscription = template.resources["OperatorAlarmEmail"]
    assert subscription["Properties"]["TopicArn"] == {"Ref": "OperatorAlarmTopic"}
    assert Stack(template, {**LOCAL_PARAMETERS, "OperatorEmail": "vakt@example.no"}).condition(
        subscription["Condition"]
    )
    assert not Stack(template, LOCAL_PARAMETERS).condition(subscription["Condition"])

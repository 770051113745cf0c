"""A function's cold start: no garbage collection while its handler module loads.

Loading a handler (boto3, Powertools, pydantic, the domain) makes some 90,000 objects the collector
tracks, nearly all of which live as long as the execution environment. The collector would go over
them again and again while they are made (14 to 40 ms of a cold start over the runs so far: `make bench` shows the login
function both ways), and once more, over all of them, soon after. So it is off while the module loads
(`loading`, the handler module's first statement), and on Lambda what the load made is then frozen
(`loaded`, its last): set aside in a generation the collector never visits, as CPython's documentation
advises for objects made once at start (gc.freeze).

Elsewhere (the tests and the local stack, which load a handler many times in one process, beside
garbage of their own) nothing is frozen: freezing would keep that garbage for good.

And two of Powertools' packages load only what a function uses of them (`packages_on_demand`): the event
handler's, its resolvers; the event source data classes', its classes.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import os
import sys
from collections.abc import Mapping
from types import ModuleType
from typing import Any

EVENT_HANDLER = "aws_lambda_powertools.event_handler"
# What the package's __init__ exports, by the module of the package that defines it (a test holds this
# equal to the __init__ of the Powertools installed).
EVENT_HANDLER_EXPORTS = {
    "ALBResolver": "api_gateway",
    "APIGatewayHttpResolver": "api_gateway",
    "ApiGatewayResolver": "api_gateway",
    "APIGatewayRestResolver": "api_gateway",
    "CORSConfig": "api_gateway",
    "Response": "api_gateway",
    "AppSyncResolver": "appsync",
    "BedrockAgentResolver": "bedrock_agent",
    "BedrockResponse": "bedrock_agent",
    "BedrockAgentFunctionResolver": "bedrock_agent_function",
    "BedrockFunctionResponse": "bedrock_agent_function",
    "DependencyResolutionError": "depends",
    "Depends": "depends",
    "AppSyncEventsResolver": "events_appsync.appsync_events",
    "HttpResolver": "http_resolver",
    "HttpResolverLocal": "http_resolver",
    "LambdaFunctionUrlResolver": "lambda_function_url",
    "Request": "request",
    "VPCLatticeResolver": "vpc_lattice",
    "VPCLatticeV2Resolver": "vpc_lattice",
}


DATA_CLASSES = "aws_lambda_powertools.utilities.data_classes"
# What the package's __init__ exports, by the module of the package that defines it (a test holds this
# equal to the __init__ of the Powertools installed).
DATA_CLASSES_EXPORTS = {
    "ALBEvent": "alb_event",
    "APIGatewayProxyEvent": "api_gateway_proxy_event",
    "APIGatewayProxyEventV2": "api_gateway_proxy_event",
    "APIGatewayWebSocketEvent": "api_gateway_websocket_event",
    "AppSyncResolverEvent": "appsync_resolver_event",
    "AppSyncResolverEventsEvent": "appsync_resolver_events_event",
    "AWSConfigRuleEvent": "aws_config_rule_event",
    "BedrockAgentEvent": "bedrock_agent_event",
    "BedrockAgentFunctionEvent": "bedrock_agent_function_event",
    "CloudWatchAlarmConfiguration": "cloud_watch_alarm_event",
    "CloudWatchAlarmData": "cloud_watch_alarm_event",
    "CloudWatchAlarmEvent": "cloud_watch_alarm_event",
    "CloudWatchAlarmMetric": "cloud_watch_alarm_event",
    "CloudWatchAlarmMetricStat": "cloud_watch_alarm_event",
    "CloudWatchAlarmState": "cloud_watch_alarm_event",
    "CloudWatchDashboardCustomWidgetEvent": "cloud_watch_custom_widget_event",
    "CloudWatchLogsEvent": "cloud_watch_logs_event",
    "CloudFormationCustomResourceEvent": "cloudformation_custom_resource_event",
    "CodeDeployLifecycleHookEvent": "code_deploy_lifecycle_hook_event",
    "CodePipelineJobEvent": "code_pipeline_job_event",
    "ConnectContactFlowEvent": "connect_contact_flow_event",
    "DynamoDBStreamEvent": "dynamo_db_stream_event",
    "EventBridgeEvent": "event_bridge_event",
    "event_source": "event_source",
    "KafkaEvent": "kafka_event",
    "KinesisFirehoseDataTransformationRecord": "kinesis_firehose_event",
    "KinesisFirehoseDataTransformationRecordMetadata": "kinesis_firehose_event",
    "KinesisFirehoseDataTransformationResponse": "kinesis_firehose_event",
    "KinesisFirehoseEvent": "kinesis_firehose_event",
    "KinesisStreamEvent": "kinesis_stream_event",
    "LambdaFunctionUrlEvent": "lambda_function_url_event",
    "S3BatchOperationEvent": "s3_batch_operation_event",
    "S3BatchOperationResponse": "s3_batch_operation_event",
    "S3BatchOperationResponseRecord": "s3_batch_operation_event",
    "S3Event": "s3_event",
    "S3EventBridgeNotificationEvent": "s3_event",
    "SecretsManagerEvent": "secrets_manager_event",
    "SESEvent": "ses_event",
    "SNSEvent": "sns_event",
    "SQSEvent": "sqs_event",
    "SQSRecord": "sqs_event",
    "TransferFamilyAuthorizer": "transfer_family_event",
    "TransferFamilyAuthorizerResponse": "transfer_family_event",
    "VPCLatticeEvent": "vpc_lattice",
    "VPCLatticeEventV2": "vpc_lattice",
}
ON_DEMAND = {EVENT_HANDLER: EVENT_HANDLER_EXPORTS, DATA_CLASSES: DATA_CLASSES_EXPORTS}


def loading() -> None:
    gc.disable()
    packages_on_demand()


def packages_on_demand() -> None:
    """Powertools' event handler package and its event source data classes' package, each with its exports
    loaded at their first use.

    The event handler's __init__ imports every resolver it has as it loads (AppSync's, and with it
    asyncio; Bedrock's, VPC Lattice's, ...), some 15 ms of every HTTP function's cold start (`make bench`)
    for resolvers none of ours uses. The data classes' __init__ imports the classes of the 29 kinds of
    event it exports (Kinesis Firehose's, DynamoDB streams', ...) when the event handler asks for API
    Gateway's: some 10 ms more (the login function, side by side with and without). Powertools has no
    lighter form of either, so each package is made here as Python would make it (its spec, so its
    submodules load from its folder as ever) but without running its __init__, and put where an import
    finds it (sys.modules). Its exports are its __init__'s, the same objects, each imported from its
    defining module at its first use (its class's __getattr__). A process that has a package already
    (the tests, the local stack) keeps it as it is."""
    for package, exports in ON_DEMAND.items():
        on_demand(package, exports)


def on_demand(name: str, exports: Mapping[str, str]) -> None:
    """The package `name` made without running its __init__, its `exports` (name: module of the package
    that defines it) imported at their first use; unless the package is loaded already."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)  # imports its parent packages, as an import of it does
    if spec is None:  # pragma: no cover  (Powertools is in the layer: no function runs without it)
        return

    class OnDemand(ModuleType):
        """The package, its exports imported from their modules at their first use."""

        def __getattr__(self, attribute: str) -> Any:
            where = exports.get(attribute)
            if where is None:  # not an export: a submodule's name is imported as one (`from ... import openapi`)
                raise AttributeError(f"module {name!r} has no attribute {attribute!r}")
            value = getattr(importlib.import_module(f"{name}.{where}"), attribute)
            setattr(self, attribute, value)  # found without this method from now on
            return value

        def __setattr__(self, attribute: str, value: Any) -> None:
            # An import binds a submodule to its package, under the submodule's name. Where an export has
            # that name too (the data classes' `event_source`, a decorator in a module of that name), the
            # package's __init__ binds the export over the module; here the module is not bound, and the
            # name stays the export's, found by __getattr__.
            if attribute in exports and isinstance(value, ModuleType) and value.__name__ == f"{name}.{attribute}":
                return
            super().__setattr__(attribute, value)

        def __dir__(self) -> list[str]:
            return sorted({*super().__dir__(), *exports})

    package = importlib.util.module_from_spec(spec)
    package.__class__ = OnDemand
    package.__all__ = list(exports)  # type: ignore[attr-defined]  # a module's, set as __init__ sets it
    sys.modules[name] = package
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, package)  # as an import binds a submodule to its package


def loaded() -> None:
    if "AWS_LAMBDA_FUNCTION_NAME" in os.environ:  # set by Lambda in every execution environment
        gc.freeze()
    gc.enable()

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

And Powertools' event handler package loads only the resolvers a function uses (`event_handler_on_demand`).
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import os
import sys
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


def loading() -> None:
    gc.disable()
    event_handler_on_demand()


def event_handler_on_demand() -> None:
    """Powertools' event handler package, with each of its exports loaded at its first use.

    The package's __init__ imports every resolver it has as it loads (AppSync's, and with it asyncio;
    Bedrock's, VPC Lattice's, ...), some 15 ms of every HTTP function's cold start (`make bench`) for
    resolvers none of ours uses. Powertools has no lighter form, so the package is made here as Python
    would make it (its spec, so its submodules load from its folder as ever) but without running its
    __init__, and put where an import finds it (sys.modules). Its exports are its __init__'s, the same
    objects, each imported from its defining module at first use (a module's __getattr__, PEP 562). A
    process that has the package already (the tests, the local stack) keeps it as it is."""
    if EVENT_HANDLER in sys.modules:
        return
    spec = importlib.util.find_spec(EVENT_HANDLER)
    if spec is None:  # pragma: no cover  (Powertools is in the layer: no function runs without it)
        return
    package = importlib.util.module_from_spec(spec)

    def export(name: str) -> Any:
        where = EVENT_HANDLER_EXPORTS.get(name)
        if where is None:  # not an export: a submodule's name is imported as one (`from ... import openapi`)
            raise AttributeError(f"module {EVENT_HANDLER!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{EVENT_HANDLER}.{where}"), name)
        setattr(package, name, value)  # found without this function from now on
        return value

    package.__all__ = list(EVENT_HANDLER_EXPORTS)  # type: ignore[attr-defined]  # a module's, set as __init__ sets it
    setattr(package, "__getattr__", export)  # noqa: B010  (a module's __getattr__: mypy refuses it as a method)
    sys.modules[EVENT_HANDLER] = package
    parent, _, child = EVENT_HANDLER.rpartition(".")
    setattr(sys.modules[parent], child, package)  # as an import binds a submodule to its package


def loaded() -> None:
    if "AWS_LAMBDA_FUNCTION_NAME" in os.environ:  # set by Lambda in every execution environment
        gc.freeze()
    gc.enable()

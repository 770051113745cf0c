"""template.yaml as the local stack reads it: its parameters, resources, functions and routes.

The template is the one source: the local stack has no list of its own of tables, functions or routes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from cfnlint.decode import decode_str

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"
DEFAULT_ROUTE = "$default"


@dataclass(frozen=True)
class Route:
    """An HTTP API route: `GET /v1/health`, `ANY /v1/things/{id}`, or `$default`."""

    method: str  # upper case, or ANY
    path: str  # with {name} and {name+} parameters, or $default
    function: str  # the function's logical id
    iam_auth: bool = False

    @property
    def key(self) -> str:
        return DEFAULT_ROUTE if self.path == DEFAULT_ROUTE else f"{self.method} {self.path}"

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        """The path as a regular expression: {name} matches within one segment, {name+} across them."""
        parts = re.split(r"(\{\w+\+?\})", self.path)
        regex = "".join(
            (f"(?P<{part[1:-2]}>.+)" if part.endswith("+}") else f"(?P<{part[1:-1]}>[^/]+?)")
            if part.startswith("{")
            else re.escape(part)
            for part in parts
        )
        return re.compile(regex)

    def specificity(self) -> tuple[int, int, int, int]:
        """How API Gateway ranks matching routes: literal paths before parameters before greedy
        parameters, and a route's own method before ANY. Lower sorts first."""
        if self.path == DEFAULT_ROUTE:
            return (1, 0, 0, 0)
        segments = self.path.strip("/").split("/")
        greedy = sum(1 for s in segments if s.endswith("+}"))
        params = sum(1 for s in segments if s.startswith("{"))
        return (0, greedy, -(len(segments) - params), int(self.method == "ANY"))


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str  # module.function, e.g. app.lambda_handler
    properties: dict[str, Any] = field(repr=False)  # with the template's Globals applied

    @property
    def timeout_seconds(self) -> int:
        return int(self.properties.get("Timeout", 3))

    @property
    def memory_mb(self) -> int:
        return int(self.properties.get("MemorySize", 128))


class Template:
    def __init__(self, document: dict[str, Any], path: Path = TEMPLATE_PATH) -> None:
        self.document = document
        self.path = path

    @classmethod
    def load(cls, path: Path = TEMPLATE_PATH) -> Template:
        """The template as the file has it now; each load's document is its own (a change made to one is
        not seen by another)."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"{path} cannot be read: {error}") from error
        return cls(json.loads(_decoded(text, path)), path)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.document["Resources"]
        return resources

    def parameter_defaults(self) -> dict[str, str]:
        return {
            name: str(spec["Default"])
            for name, spec in self.document.get("Parameters", {}).items()
            if "Default" in spec
        }

    def resources_of_type(self, *types: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] in types}

    def functions(self) -> list[FunctionSpec]:
        defaults = self.document.get("Globals", {}).get("Function", {})
        specs = []
        for logical_id, resource in self.resources_of_type("AWS::Serverless::Function").items():
            properties = _with_globals(defaults, resource.get("Properties", {}))
            specs.append(
                FunctionSpec(
                    logical_id=logical_id,
                    code_dir=(self.path.parent / properties["CodeUri"]).resolve(),
                    handler=properties["Handler"],
                    properties=properties,
                )
            )
        return specs

    def routes(self) -> list[Route]:
        """Every HttpApi event of every function, most specific first."""
        routes = []
        for logical_id, resource in self.resources_of_type("AWS::Serverless::Function").items():
            for event in resource.get("Properties", {}).get("Events", {}).values():
                if event.get("Type") != "HttpApi":
                    continue
                properties = event.get("Properties", {})
                path = properties.get("Path", DEFAULT_ROUTE)
                method = str(properties.get("Method", "ANY")).upper()
                authorizer = properties.get("Auth", {}).get("Authorizer")
                routes.append(Route(method, path, logical_id, iam_auth=authorizer == "AWS_IAM"))
        return sorted(routes, key=Route.specificity)


@lru_cache(maxsize=8)
def _decoded(text: str, path: Path) -> str:
    """The template's document as JSON text, decoded once for each text: cfn-lint's decoder takes some 100
    to 200 ms, and each test's local stack loads the template. Kept by the text itself, not by the file's
    times, which a copy that keeps them (or two writes within one tick of the clock) would leave as they
    were; reading and comparing the text takes well under a millisecond."""
    document, problems = decode_str(text)
    if problems or document is None:
        raise ValueError(f"{path} cannot be read: {[str(p) for p in problems]}")
    # cfn-lint gives dict subclasses that carry line numbers; plain values are simpler to use
    return json.dumps(document)


@dataclass(frozen=True, slots=True)
class QueueSource:
    """A function's SQS event: the queue (unresolved, as the template writes it) and batching."""

    function: str
    queue: Any
    batch_size: int
    reports_failures: bool


def queue_sources(template: Template) -> list[QueueSource]:
    sources = []
    for logical_id, resource in template.resources_of_type("AWS::Serverless::Function").items():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event.get("Type") == "SQS":
                properties = event["Properties"]
                sources.append(
                    QueueSource(
                        function=logical_id,
                        queue=properties["Queue"],
                        batch_size=int(properties.get("BatchSize", 10)),
                        reports_failures="ReportBatchItemFailures" in properties.get("FunctionResponseTypes", []),
                    )
                )
    return sources


@dataclass(frozen=True, slots=True)
class StreamSource:
    """A function's DynamoDB event: the stream (unresolved, as the template writes it), where it starts,
    batching, the filters' patterns, retries, and the on-failure destination (unresolved, or None)."""

    function: str
    stream: Any
    starting_position: str
    batch_size: int
    patterns: tuple[str, ...]
    reports_failures: bool
    maximum_retry_attempts: int
    on_failure: Any


def stream_sources(template: Template) -> list[StreamSource]:
    sources = []
    for logical_id, resource in template.resources_of_type("AWS::Serverless::Function").items():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event.get("Type") == "DynamoDB":
                properties = event["Properties"]
                sources.append(
                    StreamSource(
                        function=logical_id,
                        stream=properties["Stream"],
                        starting_position=properties["StartingPosition"],
                        batch_size=int(properties.get("BatchSize", 100)),
                        patterns=tuple(f["Pattern"] for f in properties.get("FilterCriteria", {}).get("Filters", [])),
                        reports_failures="ReportBatchItemFailures" in properties.get("FunctionResponseTypes", []),
                        maximum_retry_attempts=int(properties.get("MaximumRetryAttempts", -1)),  # -1: until it expires
                        on_failure=properties.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"),
                    )
                )
    return sources


def _with_globals(defaults: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    """SAM's Globals rules: maps merge (the function's entries win), lists add up, scalars are replaced."""
    merged = dict(defaults)
    for key, value in properties.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _with_globals(merged[key], value)
        elif isinstance(value, list) and isinstance(merged.get(key), list):
            merged[key] = [*merged[key], *value]
        else:
            merged[key] = value
    return merged

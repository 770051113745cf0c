"""Lambda functions in this process: the real handlers, in execution environments like Lambda's.

Lambda gives each concurrent request its own execution environment, in which the handler module was
imported once (the cold start) and which serves one request at a time. This does the same with
module copies: an environment is a fresh import of the function's handler file, made when every
existing one is busy, up to a limit per function.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext as PowertoolsLambdaContext
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.response import StreamingBody

from local.aws import ACCOUNT_ID, REGION, new_session
from local.template import FunctionSpec

logger = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]


class LambdaContext(PowertoolsLambdaContext):
    """What Lambda passes as the handler's second argument, for a function running here."""

    def __init__(self, function_name: str, memory_limit_in_mb: int, timeout_seconds: int) -> None:
        self._function_name = function_name
        self._function_version = "$LATEST"
        self._invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}"
        self._memory_limit_in_mb = memory_limit_in_mb
        self._aws_request_id = str(uuid.uuid4())
        self._log_group_name = f"/aws/lambda/{function_name}"
        self._log_stream_name = "local"
        self._tenant_id = None
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]  # an instance method on Lambda
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LambdaFunction:
    def __init__(self, spec: FunctionSpec, name: str, max_environments: int = 4) -> None:
        self.spec = spec
        self.name = name
        self._max = max_environments
        self._idle: list[Handler] = []
        self._count = 0
        self._available = threading.Condition()
        self._this_thread = threading.local()

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.name}"

    def invoke(self, event: Any, seconds_left: int | None = None) -> Any:
        """Run the handler, with the function's timeout (or, for a test, `seconds_left`) to run in."""
        handler = self._acquire()
        self._this_thread.environment = handler
        timeout = self.spec.timeout_seconds if seconds_left is None else seconds_left
        began = time.monotonic()
        try:
            context = LambdaContext(self.name, self.spec.memory_mb, timeout)
            return handler(event, context)
        finally:
            # Lambda would have stopped it mid-way (not done here: its writes would be left half made
            # under a test's feet); told, so that `make run` and the test logs show it
            if seconds_left is None and (took := time.monotonic() - began) > timeout:
                logger.warning(
                    "%s ran %.1f s, past its %s s timeout: Lambda would have stopped it", self.name, took, timeout
                )
            with self._available:
                self._idle.append(handler)
                self._available.notify()

    def environment(self) -> object | None:
        """The execution environment this thread's last invocation ran in (its handler, as imported there):
        the benchmark counts the call that sets one up (the pepper's read) apart from its requests'."""
        return getattr(self._this_thread, "environment", None)

    def _acquire(self) -> Handler:
        with self._available:
            while not self._idle and self._count >= self._max:
                self._available.wait()
            if self._idle:
                return self._idle.pop()
            self._count += 1
            number = self._count
        try:
            return self._cold_start(number)
        except BaseException:
            with self._available:
                self._count -= 1
                self._available.notify()
            raise

    def _cold_start(self, number: int) -> Handler:
        module_name, _, attribute = self.spec.handler.rpartition(".")
        path = self.spec.code_dir / f"{module_name.replace('.', '/')}.py"
        unique = f"_lambda_{self.spec.logical_id}_{number}"
        loader_spec = importlib.util.spec_from_file_location(unique, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[unique] = module  # as an import would: pydantic resolves the module's annotations there
        loader_spec.loader.exec_module(module)
        handler: Handler = getattr(module, attribute)
        return handler


class Functions:
    """Every function of the template, by logical id and by name."""

    def __init__(self, functions: list[LambdaFunction]) -> None:
        self.by_logical_id = {f.spec.logical_id: f for f in functions}
        self.by_name = {f.name: f for f in functions}

    def find(self, name_or_arn: str) -> LambdaFunction:
        """By name, ARN, or ARN with a version or alias, as Lambda's Invoke takes it."""
        name = name_or_arn.rsplit(":function:", maxsplit=1)[-1].split(":", maxsplit=1)[0]
        return self.by_name[name]


def apply_environment(environments: Mapping[str, Mapping[str, str]]) -> None:
    """Set every function's environment variables in this process.

    All functions share the process, so a variable must mean the same for every function that has
    it (the template gives them the same names for the same tables); a conflict is an error.
    """
    merged: dict[str, str] = {}
    for function, variables in environments.items():
        for name, value in variables.items():
            if merged.get(name, value) != value:
                raise ValueError(f"{function} sets {name} differently from another function")
            merged[name] = value
    os.environ.update(merged)


def route_lambda_invocations(functions: Functions) -> None:
    """Lambda's Invoke, as Step Functions' executor (moto) calls it, runs the function here.

    The executor makes its clients from boto3's default session; a handler on that session answers
    Invoke before the request reaches moto's Lambda, which would want Docker.
    """
    session = boto3.DEFAULT_SESSION = new_session()

    def invoke(params: dict[str, Any], **_: Any) -> Any:
        return _invoke(functions, params)

    session.events.register("before-call.lambda.Invoke", invoke)


def _invoke(functions: Functions, params: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    name = unquote(params["url_path"].split("/functions/", 1)[1].split("/", 1)[0])
    function = functions.find(name)
    body = params.get("body") or b"{}"
    event = json.loads(body.decode() if isinstance(body, bytes) else body)
    asynchronous = params.get("headers", {}).get("X-Amz-Invocation-Type") == "Event"
    if asynchronous:
        threading.Thread(target=function.invoke, args=(event,), daemon=True).start()
        return _lambda_response(202, None)
    try:
        return _lambda_response(200, function.invoke(event))
    except Exception as error:
        payload = {
            "errorMessage": str(error),
            "errorType": type(error).__name__,
            "stackTrace": traceback.format_tb(error.__traceback__),
        }
        return _lambda_response(200, payload, function_error="Unhandled")


def _lambda_response(
    status: int, payload: Any, function_error: str | None = None
) -> tuple[AWSResponse, dict[str, Any]]:
    data = json.dumps(payload).encode() if payload is not None else b""
    parsed: dict[str, Any] = {
        "StatusCode": status,
        "ExecutedVersion": "$LATEST",
        "Payload": StreamingBody(io.BytesIO(data), len(data)),
    }
    if function_error:
        parsed["FunctionError"] = function_error
    return AWSResponse("https://lambda.local", status, HTTPHeaders(), None), parsed

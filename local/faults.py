"""Faults injected at the AWS boundary: an AWS call answers with an error, as AWS would.

For the tests and the hardening runs: every client in the process (the functions', moto's Step
Functions executor's, the local stack's) goes through botocore's `_make_api_call`, so a fault hits
the call wherever it is made, before moto sees it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError


@dataclass
class Fault:
    service: str  # botocore's service name: dynamodb, s3, sqs, sns, sesv2, stepfunctions, ...
    operation: str  # PutItem, PutObject, ...
    code: str
    status: int
    times: int  # how many calls fail before the fault clears


@dataclass
class Faults:
    planned: list[Fault] = field(default_factory=list)
    injected: list[tuple[str, str, str]] = field(default_factory=list)  # (service, operation, code)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self, service: str, operation: str, *, code: str = "ServiceUnavailable", status: int = 503, times: int = 1
    ) -> None:
        with self._lock:
            self.planned.append(Fault(service, operation, code, status, times))

    def clear(self) -> None:
        with self._lock:
            self.planned.clear()

    def check(self, service: str, operation: str) -> None:
        with self._lock:
            fault = next((f for f in self.planned if (f.service, f.operation) == (service, operation)), None)
            if fault is None:
                return
            fault.times -= 1
            if fault.times <= 0:
                self.planned.remove(fault)
            self.injected.append((service, operation, fault.code))
        response: Any = {
            "Error": {"Code": fault.code, "Message": f"injected: {fault.code}"},
            "ResponseMetadata": {"HTTPStatusCode": fault.status},
        }
        raise ClientError(response, operation)


@contextmanager
def injected_faults() -> Iterator[Faults]:
    faults = Faults()
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def make_api_call(client: BaseClient, operation_name: str, api_params: Any) -> Any:
        faults.check(client.meta.service_model.service_name, operation_name)
        return original(client, operation_name, api_params)

    BaseClient._make_api_call = make_api_call  # type: ignore[attr-defined]
    try:
        yield faults
    finally:
        BaseClient._make_api_call = original  # type: ignore[attr-defined]

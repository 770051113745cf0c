"""Faults injected at the AWS boundary: an AWS call answers with an error, as AWS would; or is made
and its answer lost, with or without the SDK's retry made after it (`after`).

For the tests and the hardening runs: every client in the process (the functions', moto's Step
Functions executor's, the local stack's) goes through botocore's `_make_api_call`, so a fault hits
the call wherever it is made, before moto sees it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.client import BaseClient
from botocore.exceptions import ClientError, ReadTimeoutError

# A call made whose answer is lost: "lost", the SDK gives up (a read timeout); "retried", the SDK makes
# it again, and that second call's answer is the one the caller gets (or a fault planned after this one's).
After = Literal["lost", "retried"]


@dataclass
class Fault:
    service: str  # botocore's service name: dynamodb, s3, sqs, sns, sesv2, stepfunctions, ...
    operation: str  # PutItem, PutObject, ...
    code: str
    status: int
    times: int  # how many calls fail before the fault clears
    reasons: tuple[str, ...] = ()  # a cancelled transaction's reason for each of its items
    spared: int | None = None  # a thread whose calls it leaves alone (the test's own, say)
    after: After | None = None  # made first, then its answer lost (instead of an error in its place)
    only: int | None = None  # the one thread whose calls it hits (the test's own, say)
    message: str | None = None  # the error's message, where the code alone does not tell it
    where: Callable[[dict[str, Any]], bool] | None = None  # only calls with such parameters


# What each service answers when it is briefly unable to: the throttling or outage error it documents.
TRANSIENT_ERRORS: dict[str, tuple[str, int]] = {
    "dynamodb": ("ProvisionedThroughputExceededException", 400),
    "sns": ("Throttling", 400),
    "sesv2": ("TooManyRequestsException", 429),
    "s3": ("SlowDown", 503),
    "sqs": ("ServiceUnavailable", 503),
    "stepfunctions": ("ThrottlingException", 400),
    "kms": ("KMSInternalException", 500),
    "secretsmanager": ("InternalServiceError", 500),
}


@dataclass
class Faults:
    planned: list[Fault] = field(default_factory=list)
    injected: list[tuple[str, str, str]] = field(default_factory=list)  # (service, operation, code)
    # The calls one thread makes (a request, served on the thread that sends it), and the one to fail.
    watched: int | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)
    fail_at: int | None = None
    # re-entrant: a `where` may itself make a call (a change made at the very moment of another call)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def watch(self, fail_at: int | None = None) -> None:
        """Record the calls this thread makes from now on; make call number `fail_at` (from 0) fail
        with its service's transient error."""
        with self._lock:
            self.watched, self.calls, self.fail_at = threading.get_ident(), [], fail_at

    def add(
        self,
        service: str,
        operation: str,
        *,
        code: str = "ServiceUnavailable",
        status: int = 503,
        times: int = 1,
        reasons: tuple[str, ...] = (),
        elsewhere: bool = False,
        here: bool = False,
        after: After | None = None,
        message: str | None = None,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """`elsewhere`: only calls made on other threads than this one fail (a workflow's tasks, not
        the request that started it); `here`: only calls made on this one (a request served on it, not
        the workflow it resumes). `after`: the call is made, and then its answer lost. `where`: only
        calls whose parameters it holds for (one write of several of the same operation)."""
        thread = threading.get_ident()
        spared, only = (thread if elsewhere else None), (thread if here else None)
        fault = Fault(service, operation, code, status, times, reasons, spared, after, only, message, where)
        with self._lock:
            self.planned.append(fault)

    def clear(self) -> None:
        with self._lock:
            self.planned.clear()

    def check(self, service: str, operation: str, params: dict[str, Any] | None = None) -> After | None:
        """Raises the error planned for this call; or tells that it is to be made and its answer lost."""
        with self._lock:
            if self.watched == threading.get_ident():
                self.calls.append((service, operation))
                if len(self.calls) - 1 == self.fail_at:
                    code, status = TRANSIENT_ERRORS.get(service, ("ServiceUnavailable", 503))
                    self.planned.insert(0, Fault(service, operation, code, status, 1))
            thread = threading.get_ident()
            fault = next(
                (
                    f
                    for f in self.planned
                    if (f.service, f.operation) == (service, operation)
                    and f.spared != thread
                    and f.only in (None, thread)
                    and (f.where is None or f.where(params or {}))
                ),
                None,
            )
            if fault is None:
                return None
            fault.times -= 1
            if fault.times <= 0:
                self.planned.remove(fault)
            self.injected.append((service, operation, fault.after or fault.code))
            if fault.after is not None:
                return fault.after
        response: Any = {
            "Error": {"Code": fault.code, "Message": fault.message or f"injected: {fault.code}"},
            "ResponseMetadata": {"HTTPStatusCode": fault.status},
        }
        if fault.reasons:
            response["CancellationReasons"] = [{"Code": reason} for reason in fault.reasons]
        raise ClientError(response, operation)


@contextmanager
def injected_faults() -> Iterator[Faults]:
    faults = Faults()
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def make_api_call(client: BaseClient, operation_name: str, api_params: Any) -> Any:
        after = faults.check(client.meta.service_model.service_name, operation_name, api_params)
        if after is None:
            return original(client, operation_name, api_params)
        with suppress(ClientError):
            original(client, operation_name, api_params)  # made, whatever its answer: lost
        if after == "retried":  # the SDK's retry: a call as any other, which a fault planned next may hit
            return make_api_call(client, operation_name, api_params)
        raise ReadTimeoutError(endpoint_url=client.meta.endpoint_url)

    BaseClient._make_api_call = make_api_call  # type: ignore[attr-defined]
    try:
        yield faults
    finally:
        BaseClient._make_api_call = original  # type: ignore[attr-defined]

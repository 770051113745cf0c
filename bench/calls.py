"""The AWS API calls the functions make, counted (and timed) with botocore's `before-call` and
`after-call` events: the time from the request built to its answer parsed (on moto, mostly moto's work), or
to `after-call-error`, where the request ended in an exception instead (no answer came at the SDK's last
try: the connection failed or timed out; or the answer could not be read). And timed from
`provide-client-params`, the first event of a client's method, to either end: the SDK's whole call, with
its work before the request (parameters validated and serialized, the endpoint resolved).

The functions create their clients from one botocore session (minid/wiring.py); handlers
registered on that session before any of them exists are copied into every client it creates. The
local stack's own clients (its outbox, the print simulator, moto's Step Functions executor) come from
sessions of their own and are not counted. A call is counted in the tally its thread holds at the
time: a request's, or a workflow task's.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from minid import wiring


@dataclass
class Calls:
    """The calls one request made, by operation ("dynamodb.GetItem"), and the seconds spent in them: from
    the request built to its answer, or to the SDK giving up on one (`seconds`, and by operation:
    `operation_seconds`), and in the SDK's methods (`sdk_seconds`)."""

    operations: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    operation_seconds: dict[str, float] = field(default_factory=dict)
    sdk_seconds: float = 0.0
    _started: float | None = None
    _sdk_started: float | None = None
    _operation: str = ""

    @property
    def total(self) -> int:
        return sum(self.operations.values())


class CallCounter:
    def __init__(self) -> None:
        self._local = threading.local()

    def install(self) -> None:
        """Count the calls of every client the functions make from now on (from minid.wiring's session)."""
        session: Any = wiring.session()  # botocore's stubs type a handler as taking keywords only
        session.register("provide-client-params", self._called)
        session.register("before-call", self._before)
        session.register("after-call", self._after)
        session.register("after-call-error", self._after)

    def uninstall(self) -> None:
        """The session lives as long as the process (the tests' worker): leave nothing on it."""
        session: Any = wiring.session()
        session.unregister("provide-client-params", self._called)
        session.unregister("before-call", self._before)
        session.unregister("after-call", self._after)
        session.unregister("after-call-error", self._after)

    def _called(self, **_: Any) -> None:
        calls: Calls | None = getattr(self._local, "calls", None)
        if calls is not None:
            calls._sdk_started = time.perf_counter()

    def _before(self, model: Any, **_: Any) -> None:
        calls: Calls | None = getattr(self._local, "calls", None)
        if calls is not None:
            calls._operation = f"{model.service_model.service_name}.{model.name}"
            calls.operations[calls._operation] += 1
            calls._started = time.perf_counter()

    def _after(self, **_: Any) -> None:
        calls: Calls | None = getattr(self._local, "calls", None)
        if calls is not None and calls._started is not None:
            now = time.perf_counter()
            elapsed = now - calls._started
            calls.seconds += elapsed
            calls.operation_seconds[calls._operation] = calls.operation_seconds.get(calls._operation, 0.0) + elapsed
            calls.sdk_seconds += now - (calls._sdk_started or calls._started)
            calls._started = calls._sdk_started = None

    @contextmanager
    def counting(self) -> Iterator[Calls]:
        """The calls this thread makes inside the block."""
        before = getattr(self._local, "calls", None)
        self._local.calls = calls = Calls()
        try:
            yield calls
        finally:
            self._local.calls = before

"""The invocation's deadline: an AWS call that could outlast it is refused before it is sent.

botocore bounds each attempt (wiring.AWS_CONFIG: the connect and read timeouts) and retries, but knows
nothing of the function's own timeout: a few slow calls in a row would have Lambda stop the function
mid-request (API Gateway's bare 500, a workflow task timed out, a notifier batch lost whole). Each
attempt is sent only while a whole attempt still fits before the deadline, and the SDK waits before a
retry only while its attempt will still fit after the wait; else OutOfTime, a Busy:
503 with Retry-After over HTTP, DependencyUnavailable (retried) in the workflow, a notice delivered
again later.

A write that records an SMS or e-mail already sent runs `exempt`: refused, it would have a retry send
again. So does the give-back of a try counted before a request judged its codes or password (a login's,
a code's, the lockout's count): refused once the request ran out of time, the person would have lost a
try to the service's slowness, and with the lockout's count a few such requests would lock the account.
Only those writes: what comes after one (another send, say) is guarded again. Where the invocation
keeps time after its deadline for them (`within`'s `kept_seconds`: the notifier's; preparing a letter's,
for its document's clean-up; an HTTP request's), they are held to its
end instead, less a moment for what follows them (the batch's other notices put off): refused there,
a send's record is told as unrecorded, and a release or refusal's mark leaves the claim to lapse, where
Lambda stopping the function in one would give the whole batch back, with nothing told.

Per thread (a ContextVar): the local stack runs several invocations at once, each on its thread, and a
test's own calls, made outside any invocation, have no deadline.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

from minid.adapters.aws_errors import Busy

_DEADLINE: ContextVar[float | None] = ContextVar("minid_deadline", default=None)
# Calls made in one attempt, with no retry (`exempt_once`).
_ONCE: ContextVar[bool] = ContextVar("minid_once", default=False)
# Where time was kept after the deadline for the exempt writes (`within`): what they are held to, the
# invocation's end less AFTER_EXEMPT_SECONDS (or less the time kept, when that is shorter).
_END: ContextVar[float | None] = ContextVar("minid_invocation_end", default=None)
# After its last call a request still answers (a hash, the response): time kept for that.
MARGIN_SECONDS = 0.5
# After the exempt writes, where they are held near the invocation's end: what the notifier does after
# them (the batch's other notices put off, an SQS call each, no deadline) has this long.
AFTER_EXEMPT_SECONDS = 1.5


def kept_for(seconds: float) -> float:
    """The time an invocation keeps after its deadline (`within`'s `kept_seconds`) for exempt writes that
    may take `seconds` in all: those, the margin of the last, and AFTER_EXEMPT_SECONDS after them."""
    return seconds + MARGIN_SECONDS + AFTER_EXEMPT_SECONDS


class OutOfTime(Busy):
    """Too little of the invocation is left for another AWS call: for a retry. `unsent`: refused before the
    call's first attempt, nothing of it was sent (a write no attempt made)."""

    def __init__(self, message: str, *, unsent: bool = False) -> None:
        super().__init__(message)
        self.unsent = unsent


class HasRemainingTime(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@contextmanager
def within(context: HasRemainingTime, kept_seconds: float = 0) -> Iterator[None]:
    """The block runs under the invocation's deadline, and leaves none behind. `kept_seconds`: the deadline
    that long before the invocation's end, kept for the exempt writes (which it does not bound) to finish
    in, rather than Lambda stopping the function in one of them: they are then held to AFTER_EXEMPT_SECONDS
    before the invocation's end (an attempt that could not end before it refused, OutOfTime), as the
    others are to the deadline (never more strictly than they)."""
    end = time.monotonic() + context.get_remaining_time_in_millis() / 1000
    held = max(end - AFTER_EXEMPT_SECONDS, end - kept_seconds) if kept_seconds else None
    token, end_token = _DEADLINE.set(end - kept_seconds), _END.set(held)
    try:
        yield
    finally:
        _DEADLINE.reset(token)
        _END.reset(end_token)


@contextmanager
def exempt() -> Iterator[None]:
    """The block's calls are sent whatever the time: the writes that record what no retry can take back
    (an SMS or e-mail sent). Where the invocation kept time for them (`within`), while an attempt fits
    in it: one that could not end before the invocation's would have Lambda stop the function in it, with
    nothing told (tried MARK_SENT_TRIES times, a send's record then ends in time, told as unrecorded)."""
    token = _DEADLINE.set(_END.get())
    try:
        yield
    finally:
        _DEADLINE.reset(token)


@contextmanager
def exempt_once() -> Iterator[None]:
    """`exempt`, in one attempt with no retry by the SDK: a give-back that follows a call whose every
    attempt failed (a brownout), and is followed by another give-back (the login's try) that must still
    find its time before the invocation's end."""
    token = _ONCE.set(True)
    try:
        with exempt():
            yield
    finally:
        _ONCE.reset(token)


def waits_held(needs_retry: Callable[..., float | None], attempt_seconds: float) -> Any:
    """The SDK's `needs-retry` handler (`needs_retry`: the wait before its next attempt, or None for
    none), with a retry whose wait would leave no time for that attempt before the deadline refused at
    once, OutOfTime. `guard` refuses an attempt only once the wait is over: a throttle's, of up to 1, 2
    and 4 seconds (more with an `x-amz-retry-after` header), after an attempt that took its time, could
    end past the invocation's, with Lambda stopping the function in it. Within `exempt_once`, no retry."""

    @functools.wraps(needs_retry)  # (the SDK's handler as `__wrapped__`: its retry quota, say)
    def needs_retry_in_time(**kwargs: Any) -> float | None:
        if _ONCE.get():
            return None  # no retry (the SDK not asked: it would take its retry quota for one not made)
        wait = needs_retry(**kwargs)
        deadline = _DEADLINE.get()
        if (
            wait is not None
            and deadline is not None
            and time.monotonic() + wait + attempt_seconds + MARGIN_SECONDS > deadline
        ):
            raise OutOfTime(f"no time left in this invocation to wait {wait:.1f} s for a retry")
        return wait

    return needs_retry_in_time


def guard(attempt_seconds: float) -> Any:
    """A botocore `before-send` handler: refuses an attempt that could end after the deadline."""

    def before_send(request: Any = None, **_: Any) -> None:
        deadline = _DEADLINE.get()
        if deadline is not None and time.monotonic() + attempt_seconds + MARGIN_SECONDS > deadline:
            # the SDK's own header tells the attempt ("attempt=1; max=5"): a first one refused sent nothing
            told = request.headers.get("amz-sdk-request", b"") if request is not None else b""
            told = told.decode() if isinstance(told, bytes) else str(told)
            first = told.startswith("attempt=1;") or told == "attempt=1"
            raise OutOfTime("no time left in this invocation for another AWS call", unsent=first)

    return before_send

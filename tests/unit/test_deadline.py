"""The invocation's deadline (minid.deadline): attempts that could outlast it are refused."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ClientError

from minid import wiring
from minid.adapters.aws_errors import Busy, is_transient
from minid.deadline import (
    AFTER_EXEMPT_SECONDS,
    MARGIN_SECONDS,
    OutOfTime,
    exempt,
    exempt_once,
    guard,
    waits_held,
    within,
)


@dataclass
class Context:
    millis: int

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


def test_an_attempt_that_fits_is_sent_and_one_that_does_not_is_refused() -> None:
    before_send = guard(attempt_seconds=4)
    with within(Context(int((4 + MARGIN_SECONDS + 1) * 1000))):
        before_send()  # fits
    with within(Context(4000)), pytest.raises(OutOfTime):
        before_send()


def test_time_kept_after_the_deadline_is_the_exempt_writes_alone() -> None:
    """The notifier keeps the end of its invocation for the writes that record a send (exempt): an
    ordinary attempt that would end in it is refused, an exempt one is sent."""
    before_send = guard(attempt_seconds=4)
    with within(Context(int((45 + 4 + MARGIN_SECONDS + 1) * 1000)), kept_seconds=45):
        before_send()  # fits before the time kept
    with within(Context((45 + 4) * 1000), kept_seconds=45):
        with pytest.raises(OutOfTime):
            before_send()
        with exempt():
            before_send()


def test_exempt_writes_are_held_to_the_invocation_s_end_only_where_time_was_kept_for_them() -> None:
    """Where time was kept (the notifier), an exempt attempt that could not end before the invocation's
    end is refused: Lambda would stop the function in it, with nothing told (a send's record then fails
    in time, told as unrecorded). Elsewhere exempt writes are sent whatever the time, as before: a try
    given back with too little time left for a whole attempt is still made (it takes milliseconds)."""
    before_send = guard(attempt_seconds=4)
    fits = 4 + MARGIN_SECONDS + AFTER_EXEMPT_SECONDS  # and time after it, for what follows
    with within(Context(int((fits + 0.5) * 1000)), kept_seconds=fits), exempt():
        before_send()
    with within(Context(int((fits - 1) * 1000)), kept_seconds=1.5):
        with pytest.raises(OutOfTime):
            before_send()
        with exempt(), pytest.raises(OutOfTime):
            before_send()
        with within(Context(0)), exempt():  # an invocation within it (the local stack's) keeps none
            before_send()
        with exempt(), pytest.raises(OutOfTime):  # and leaves this one's as it was
            before_send()
    with within(Context(0)), exempt():
        before_send()
    with within(Context(int((4 + MARGIN_SECONDS + 1) * 1000)), kept_seconds=0.1):
        before_send()
        with exempt():  # never held more strictly than the others
            before_send()
    with exempt():  # none left behind
        before_send()


def test_out_of_time_is_a_busy_dependency_for_a_retry() -> None:
    assert issubclass(OutOfTime, Busy)
    assert is_transient(OutOfTime("x"))


def test_outside_an_invocation_nothing_is_refused_and_none_is_left_behind() -> None:
    before_send = guard(attempt_seconds=4)
    before_send()  # no deadline: a test's own calls, say
    with within(Context(0)), pytest.raises(OutOfTime):
        before_send()
    before_send()  # the block's deadline is gone with it


def test_each_thread_has_its_own_deadline() -> None:
    """The local stack runs invocations at once, each on its thread."""
    before_send = guard(attempt_seconds=4)
    refused: list[bool] = []

    def other() -> None:
        try:
            before_send()
            refused.append(False)
        except OutOfTime:
            refused.append(True)

    with within(Context(0)):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert refused == [False]


def test_a_write_that_records_a_send_is_not_refused_and_what_follows_it_is() -> None:
    """A write after an SMS or e-mail went out, refused, would have the retry send again; the next send
    after it is guarded as before."""
    before_send = guard(attempt_seconds=4)
    with within(Context(0)):
        with exempt():
            before_send()  # the write that records the send
        with pytest.raises(OutOfTime):
            before_send()  # another send


def _answered(status: int, headers: dict[str, str]) -> Any:
    """A `before-send` handler answering every attempt itself with DynamoDB's error of `status`: the
    attempts it was asked for, in `made`. (On `before-send.dynamodb`, it is called before the bare event's
    handlers, the deadline's guard among them: an attempt the guard refuses is in `made` too.)"""
    made: list[int] = []

    def before_send(**_: Any) -> AWSResponse:
        made.append(status)
        body = b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"x"}'
        return AWSResponse("https://dynamodb", status, HTTPHeaders.from_dict(headers), _Raw(body))

    before_send.made = made  # type: ignore[attr-defined]
    return before_send


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "eu-north-1",
    }.items():
        monkeypatch.setenv(name, value)
    return wiring.client("dynamodb")


def test_a_retry_whose_wait_leaves_no_time_for_its_attempt_is_refused_before_the_wait(dynamodb: Any) -> None:
    """The SDK waits before a retry (a throttle's backoff, or what an `x-amz-retry-after` header asks:
    here 3 s), and the deadline's guard would refuse the attempt only after that wait, which may end past
    the invocation's. The retry is refused at once, its wait not waited."""
    answer = _answered(500, {"x-amz-retry-after": "3000"})
    dynamodb.meta.events.register("before-send.dynamodb", answer)
    with within(Context(int((4 + MARGIN_SECONDS + 0.5) * 1000))), pytest.raises(OutOfTime, match="for a retry"):
        dynamodb.get_item(TableName="t", Key={"pk": {"S": "k"}})
    assert answer.made == [500]  # the first attempt, and no retry


def test_with_time_for_them_or_no_deadline_the_sdk_s_retries_are_made_as_before(dynamodb: Any) -> None:
    answer = _answered(500, {})
    dynamodb.meta.events.register("before-send.dynamodb", answer)
    with pytest.raises(ClientError):  # no deadline: a test's own calls, say
        dynamodb.get_item(TableName="t", Key={"pk": {"S": "k"}})
    assert answer.made == [500] * (wiring.RETRIES + 1)
    with within(Context(60_000)), pytest.raises(ClientError):
        dynamodb.get_item(TableName="t", Key={"pk": {"S": "k"}})
    assert answer.made == [500] * (wiring.RETRIES + 1) * 2


def test_a_call_made_once_is_not_retried_and_is_held_as_an_exempt_one(dynamodb: Any) -> None:
    """`exempt_once` (a give-back after a brownout, with another give-back after it): one attempt, its own
    error raised, whatever the time left; sent where an ordinary attempt is refused, held where time was
    kept as an exempt one is; and none left behind."""
    answer = _answered(500, {})
    dynamodb.meta.events.register("before-send.dynamodb", answer)
    with exempt_once(), pytest.raises(ClientError):
        dynamodb.get_item(TableName="t", Key={"pk": {"S": "k"}})
    assert answer.made == [500]
    with within(Context(60_000)), exempt_once(), pytest.raises(ClientError):
        dynamodb.get_item(TableName="t", Key={"pk": {"S": "k"}})
    assert answer.made == [500] * 2
    before_send = guard(attempt_seconds=4)
    with within(Context(0)), exempt_once():
        before_send()
    with within(Context(3000), kept_seconds=1.5), exempt_once(), pytest.raises(OutOfTime):
        before_send()
    with pytest.raises(ClientError):
        dynamodb.get_item(TableName="t", Key={"pk": {"S": "k"}})
    assert answer.made == [500] * (2 + wiring.RETRIES + 1)


def test_a_call_made_once_asks_the_sdk_for_no_retry() -> None:
    """The SDK's retry handler is not asked within `exempt_once`: asked, it takes its retry quota (14 of
    500 for a timeout) for a retry that is then not made, and the quota is the whole client's."""
    asked: list[dict[str, Any]] = []

    def needs_retry(**kwargs: Any) -> float:
        asked.append(kwargs)
        return 0.1

    handler = waits_held(needs_retry, attempt_seconds=4)
    with exempt_once():
        assert handler(attempts=1) is None
    assert asked == []
    assert handler(attempts=1) == 0.1


@dataclass
class Prepared:
    headers: dict[str, bytes]


def test_a_first_attempt_refused_is_told_as_nothing_sent(dynamodb: Any) -> None:
    """OutOfTime at a call's first attempt sent nothing of it (`unsent`: a write no attempt made); at a
    retry, an attempt before may have been made. Told by the SDK's own header (`amz-sdk-request`)."""
    before_send = guard(attempt_seconds=4)
    with within(Context(0)):
        with pytest.raises(OutOfTime) as refused:
            before_send(request=Prepared({"amz-sdk-request": b"attempt=1; max=5"}))
        assert refused.value.unsent
        for request in (Prepared({"amz-sdk-request": b"ttl=1; attempt=2; max=5"}), Prepared({}), None):
            with pytest.raises(OutOfTime) as refused:
                before_send(request=request)
            assert not refused.value.unsent
        with pytest.raises(OutOfTime) as refused:  # the SDK's own request, as the functions' clients send it
            dynamodb.get_item(TableName="t", Key={"pk": {"S": "k"}})
        assert refused.value.unsent

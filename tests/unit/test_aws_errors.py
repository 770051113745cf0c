"""Which AWS errors are a moment's unavailability (503 and Retry-After; the workflow's retries), and
which a fault a retry soon does not mend."""

from __future__ import annotations

from typing import Any, cast

import pytest
from botocore.exceptions import ClientError
from botocore.retries.standard import ThrottledRetryableChecker, TransientRetryableChecker

from minid.adapters.aws_errors import TRANSIENT_ERROR_CODES, is_transient


def _client_error(code: str, status: int) -> ClientError:
    response = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(cast("Any", response), "SendMessage")


def test_every_code_the_sdk_retries_as_a_throttle_or_a_timeout_is_transient_but_a_quota_spent() -> None:
    # botocore's own lists (private: should they move, this test says so, and the list is looked at again)
    throttles: Any = ThrottledRetryableChecker  # (untyped in botocore's stubs)
    timeouts: Any = TransientRetryableChecker
    retried = {*throttles._THROTTLED_ERROR_CODES, *timeouts._TRANSIENT_ERROR_CODES}
    assert retried - {"LimitExceededException"} <= TRANSIENT_ERROR_CODES
    assert not is_transient(_client_error("LimitExceededException", 400))  # KMS', Secrets Manager's: a quota


@pytest.mark.parametrize(
    ("code", "status", "transient"),
    [
        ("RequestTimeout", 400, True),
        ("RequestThrottledException", 400, True),
        ("KmsThrottled", 400, True),  # the queue's key throttled, as SQS says it
        ("KMSThrottlingException", 400, True),  # the topic's key, as SNS says it
        ("SomethingNew", 429, True),  # any code, answered "too many requests"
        ("SomethingNew", 503, True),  # or a server's fault
        ("AccessDenied", 403, False),
        ("ValidationException", 400, False),
        ("ConditionalCheckFailedException", 400, False),
        ("KmsDisabled", 400, False),
        ("InvalidParameter", 400, False),
    ],
)
def test_an_aws_error_is_transient_by_its_code_or_its_status(code: str, status: int, transient: bool) -> None:
    assert is_transient(_client_error(code, status)) is transient

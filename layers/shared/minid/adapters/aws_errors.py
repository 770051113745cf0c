"""Which AWS errors mean "briefly unavailable, try again", as opposed to a fault of ours."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError

TRANSIENT_ERROR_CODES = frozenset(
    {
        "InternalServerError",
        "InternalFailure",
        "InternalErrorException",
        "InternalServiceError",
        "KMSInternalException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "TransactionConflictException",
        "TransactionInProgressException",
    }
)


def is_transient(error: BaseException) -> bool:
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in TRANSIENT_ERROR_CODES or status >= 500
    return isinstance(error, ConnectionError | ReadTimeoutError | BotoCoreError)

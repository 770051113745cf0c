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


# Why DynamoDB may cancel a transaction, other than a condition: for a retry.
TRANSIENT_CANCELLATIONS = frozenset({"ThrottlingError", "TransactionConflict", "ProvisionedThroughputExceeded"})


class Busy(Exception):
    """An AWS service did not do what was asked, though it answered: for a retry in a moment."""


class StillUnprocessed(Busy):
    """DynamoDB left part of a batch unprocessed however often it was asked again: over its capacity."""


class Contended(Busy):
    """Another transaction was writing an item a transaction needed, one whose conditions all held."""


def is_transient(error: BaseException) -> bool:
    if isinstance(error, Busy):
        return True
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code == "TransactionCanceledException":
            reasons = {r.get("Code") for r in error.response.get("CancellationReasons", [])}
            return bool(reasons & TRANSIENT_CANCELLATIONS)
        return code in TRANSIENT_ERROR_CODES or status >= 500
    return isinstance(error, ConnectionError | ReadTimeoutError | BotoCoreError)

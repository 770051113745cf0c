"""Which AWS errors mean "briefly unavailable, try again", as opposed to a fault of ours."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError

# Our own list, not botocore's retry checkers (botocore.retries.standard): they take LimitExceededException
# for a throttle, which from KMS, Secrets Manager and SES is a quota spent (a 500 for the operator, or
# SES's refusal to send), not a moment's wait. Every other code they retry is here (a test holds it so),
# with the services' own for "down a moment", and a throttle of the KMS key that encrypts a queue or a
# topic, as SQS and SNS tell it.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "BandwidthLimitExceeded",
        "EC2ThrottledException",
        "InternalServerError",
        "InternalFailure",
        "InternalErrorException",
        "InternalServiceError",
        "KMSInternalException",
        "KMSThrottlingException",  # SNS: the topic's key throttled
        "KmsThrottled",  # SQS: the queue's key throttled
        "PriorRequestNotComplete",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
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


# What SES answers while it will not send for the account: sending paused or the account suspended (for
# its bounces or complaints), its daily quota spent, its sender not verified, or (in the sandbox) a
# recipient not verified. Not a fault of the request, and not one a retry soon mends: the operator must
# act (the API's 5xx alarm), and the citizen is told to come back (503).
SENDING_REFUSED_CODES = frozenset(
    {
        "AccountSuspendedException",
        "LimitExceededException",
        "MailFromDomainNotVerifiedException",
        "MessageRejected",
        "SendingPausedException",
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


def error_code(error: ClientError) -> str:
    """AWS's code for the error ("ThrottlingException"), or "" when it gave none."""
    return str(error.response.get("Error", {}).get("Code", ""))


def error_name(error: BaseException | None) -> str:
    """What to log of an error: AWS's code for it, else its type; never its message (AWS's may quote
    what was sent)."""
    if isinstance(error, ClientError):
        return error_code(error) or type(error).__name__
    return type(error).__name__


def sending_refused(error: ClientError) -> bool:
    """Whether SES refused to send for the account (SENDING_REFUSED_CODES; a code like LimitExceeded
    means something else from another service)."""
    return error.operation_name == "SendEmail" and error_code(error) in SENDING_REFUSED_CODES


def is_transient(error: BaseException) -> bool:
    if isinstance(error, Busy):
        return True
    if isinstance(error, ClientError):
        code = error_code(error)
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code == "TransactionCanceledException":
            reasons = {r.get("Code") for r in error.response.get("CancellationReasons", [])}
            return bool(reasons & TRANSIENT_CANCELLATIONS)
        return code in TRANSIENT_ERROR_CODES or status == 429 or status >= 500
    return isinstance(error, ConnectionError | ReadTimeoutError | BotoCoreError)

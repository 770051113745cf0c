"""Notices on AWS: the queue (SQS), SMS (SNS), e-mail (SES) and the delivery ledger (DynamoDB)."""

from __future__ import annotations

import contextlib
import secrets
import ssl
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ProxyConnectionError,
    ReadTimeoutError,
    SSLError,
)
from botocore.exceptions import ConnectionError as BotocoreConnectionError
from botocore.parsers import ResponseParserError

from minid import observability
from minid.adapters.aws_errors import Busy, error_code, error_name
from minid.adapters.dynamodb import conditional_check_failed, from_item, iso, to_item
from minid.deadline import OutOfTime, exempt
from minid.domain.contacts import email_for_sending
from minid.domain.notices import Channel, Claim, MaybeSent, Message, Notice, Undeliverable, notice_to_json

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

    from minid.domain.keys import Sealer

LEDGER_KEPT_FOR = timedelta(days=14)  # longer than a notice can stay in the queue and its dead-letter queue


class SqsNoticeQueue:
    """The notice queue; a notice's own recipients are sealed with `sealer` (one the notifier can open)."""

    def __init__(self, client: SQSClient, queue_url: str, sealer: Sealer, proof_delay_seconds: int = 0) -> None:
        self._client = client
        self._queue_url = queue_url
        self._sealer = sealer
        self._proof_delay = proof_delay_seconds

    def enqueue(self, notice: Notice, queued: list[Notice] | None = None) -> None:
        # a notice queued before its change is made waits a little, so that it usually finds it made
        delay = self._proof_delay if notice.proof is not None else 0
        body = notice_to_json(notice, self._sealer)  # (KMS, for a code's recipients: nothing queued if it fails)
        if queued is not None:
            queued.append(notice)
        self._client.send_message(QueueUrl=self._queue_url, MessageBody=body, DelaySeconds=delay)


class SqsDeliveryRetries:
    """When a notice that failed is handed out again (its message's visibility), in the queue it came
    from (the notices', or the codes'), known by the name its ARN and its URL end with."""

    def __init__(self, client: SQSClient, queue_urls: Sequence[str], code_queue_url: str) -> None:
        self._client = client
        self._urls = {_queue_name(url): url for url in [*queue_urls, code_queue_url]}
        self._codes = _queue_name(code_queue_url)

    def later(self, queue: str, receipt: str, seconds: int) -> None:
        url = self._urls[_queue_name(queue)]
        self._client.change_message_visibility(QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=seconds)

    def holds_codes(self, queue: str) -> bool:
        return _queue_name(queue) == self._codes


def _queue_name(queue: str) -> str:
    """A queue's name, from its ARN (`arn:aws:sqs:region:account:name`) or its URL (`https://.../account/name`)."""
    return queue.rsplit(":", 1)[-1].rsplit("/", 1)[-1]


class AnswerLost(Busy, MaybeSent):
    """A send whose answer never came, or came broken: the message may be out. A request is answered 503
    (Busy), as for any AWS call that timed out; the notifier keeps the channel's claim. `cause`: how the
    send ended (an AWS error code or an exception's name, never its message: SNS's quotes the number)."""

    def __init__(self, cause: str = "") -> None:
        super().__init__(cause)
        self.cause = cause


# What a send's attempt may have sent: its request made and its answer lost (the read timed out, or the
# connection closed before the answer), or any other failure of the connection but one never made (a TLS
# session broken, botocore's SSLError or HTTPClientError, may have come after the request went), or an
# answer of the provider's own failing or timing out behind it, after it may have handed the message on.
# A connection never made (refused, timed out, its proxy not reached, its TLS handshake refused on the
# certificate), an attempt the invocation's deadline refused before it was made, a throttle or the service
# saying it is unavailable (503) sent nothing; and an error that is no connection's (an SDK's or a test
# double's own) is left to the SDK, as it was: raised as it is, a fault to see, not a send to wait out.
_ANSWER_LOST = (ReadTimeoutError, ConnectionClosedError)
_NEVER_SENT = (EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError, OutOfTime)
_CONNECTION_FAILED = (HTTPClientError, BotocoreConnectionError)
_MAYBE_HANDED_ON = frozenset({500, 502, 504})
_TIMED_OUT_BEHIND = frozenset({"RequestTimeout", "RequestTimeoutException"})


def _answered_code(response: tuple[Any, Any] | None) -> str:
    """The error code of an attempt's answer (botocore's `needs-retry` gives it parsed), or ""."""
    parsed = response[1] if response is not None else None
    return str((parsed or {}).get("Error", {}).get("Code", ""))


def _cause(caught_exception: BaseException | None, response: tuple[Any, Any] | None) -> str:
    return error_name(caught_exception) if caught_exception is not None else _answered_code(response)


def _may_have_sent(caught_exception: BaseException | None, response: tuple[Any, Any] | None) -> bool:
    if caught_exception is not None:  # the attempt's connection failed, or it was refused before it was made
        if isinstance(caught_exception, _NEVER_SENT) or _certificate_refused(caught_exception):
            return False
        return isinstance(caught_exception, _CONNECTION_FAILED)
    status = getattr(response[0], "status_code", None) if response is not None else None
    return status in _MAYBE_HANDED_ON or _answered_code(response) in _TIMED_OUT_BEHIND


def _certificate_refused(error: BaseException) -> bool:
    """A TLS handshake that failed on the server's certificate: no request was sent on it. botocore's
    SSLError holds urllib3's, which holds ssl's (as its argument, or its cause): looked for down the chain."""
    if not isinstance(error, SSLError):
        return False
    seen: list[BaseException] = []
    inner: object = error.kwargs.get("error")
    while isinstance(inner, BaseException) and inner not in seen and len(seen) < 8:
        if isinstance(inner, ssl.SSLCertVerificationError):
            return True
        seen.append(inner)
        inner = next((a for a in inner.args if isinstance(a, BaseException)), inner.__cause__ or inner.__context__)
    return False


def no_second_message(
    caught_exception: BaseException | None = None, response: tuple[Any, Any] | None = None, **_: Any
) -> None:
    """A botocore `needs-retry` handler for the notifier's SMS and e-mail clients, ahead of the SDK's own
    (registered on the service's name, which botocore calls before the bare event's): an attempt that may
    have sent is not made again (its retry would be a second message, and a third; and the notifier's
    next delivery would come with its own), but raised as AnswerLost (the SDK's retry quota not spent on
    it); anything else is left to the SDK's retries. The SDK has no setting for retrying some transient
    errors and not others."""
    if _may_have_sent(caught_exception, response):
        raise AnswerLost(_cause(caught_exception, response)) from None  # not chained: see AnswerLost.cause


# Whether an attempt of the send under way (_answer_awaited) may have sent, as a request's clients note it.
_SENT_MAYBE: ContextVar[bool] = ContextVar("minid_sent_maybe", default=False)


def note_maybe_sent(
    caught_exception: BaseException | None = None, response: tuple[Any, Any] | None = None, **_: Any
) -> None:
    """A botocore `needs-retry` handler for a request's SMS and e-mail clients: the SDK's retry sends the
    same code again (which works, where a 503 would have the client ask for another), but an attempt that
    may have sent is noted: however the send ends (a later attempt refused by the deadline, say), it is
    one that may have gone out."""
    if _may_have_sent(caught_exception, response):
        _SENT_MAYBE.set(True)


@contextlib.contextmanager
def _answer_awaited(unsent: Callable[[Exception], bool] = lambda _: False) -> Iterator[None]:
    """A send that may have gone out, raised as AnswerLost: its last attempt's answer lost, an attempt
    before it noted (note_maybe_sent), or SNS's answer cut short (a 200 whose XML does not parse).
    `unsent`: an error that proves nothing was sent by any attempt (SNS refusing the number: it checks
    before it hands a message on, and would have refused the attempt before too), raised as it is."""
    noted = _SENT_MAYBE.set(False)
    try:
        yield
    except (*_ANSWER_LOST, ResponseParserError) as error:
        raise AnswerLost(error_name(error)) from None
    except AnswerLost:
        raise
    except Exception as error:
        if _SENT_MAYBE.get() and not unsent(error):
            raise AnswerLost(error_name(error)) from None
        raise
    finally:
        _SENT_MAYBE.reset(noted)


class SnsSmsSender:
    """Transactional SMS through SNS, with the configured sender id."""

    def __init__(self, client: SNSClient, sender_id: str) -> None:
        self._client = client
        self._attributes: dict[str, Any] = {
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
            "AWS.SNS.SMS.SenderID": {"DataType": "String", "StringValue": sender_id},
        }

    @staticmethod
    def may_give_up_on(error: Exception) -> bool:
        """SNS failing, nothing sent by the last attempt: no connection made (or its certificate refused), or
        SNS refusing it before it took the message (a 4xx, throttled say, but a request timed out behind it;
        a 503, unavailable). An attempt before it that may have sent was raised as AnswerLost
        (no_second_message), and is never asked about. Not the invocation's deadline (SNS not asked by the
        last attempt: no sign of its failing), nor any other error (another 5xx, an error no connection's:
        not proof enough to send the code on another channel; released, the SMS is tried again at the next
        delivery)."""
        if isinstance(error, OutOfTime):
            return False
        if isinstance(error, _NEVER_SENT) or _certificate_refused(error):
            return True
        if not isinstance(error, ClientError) or error_code(error) in _TIMED_OUT_BEHIND:
            return False
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
        return status < 500 or status == 503

    def send_sms(self, to: str, text: str) -> None:
        try:
            with _answer_awaited(unsent=lambda error: isinstance(error, ClientError) and refuses_the_number(error)):
                self._client.publish(PhoneNumber=to, Message=text, MessageAttributes=self._attributes)
        except ClientError as error:
            if refuses_the_number(error):
                # SNS words it the same when it sends no SMS from the region at all, or the account is in
                # the SMS sandbox: refusals of every number then (SmsRefusedAlarm), not of one
                observability.count("SmsRefused")
                raise Undeliverable(Channel.SMS) from None  # not chained: SNS's message quotes the number
            raise


def refuses_the_number(error: ClientError) -> bool:
    """Whether SNS refused the phone number itself (not a mobile it sends to, a country it does not
    serve), not the message or the account: sent again, it would be refused again. SNS tells this only
    in words, under the code of any invalid parameter: "Invalid parameter: PhoneNumber Reason: <the
    number> is not valid to publish to"."""
    message = error.response.get("Error", {}).get("Message", "")
    return error_code(error) in {"InvalidParameter", "ParameterValueInvalid"} and "PhoneNumber" in message


class SesEmailSender:
    """E-mail through SES, with a plain-text and an HTML body.

    It raises no Undeliverable: SES refuses no address by itself that passed the checks here (it takes
    it, and bounces or suppresses it later); what it refuses at once is the account's sending
    (`SENDING_REFUSED_CODES`)."""

    def __init__(self, client: SESV2Client, sender: str, configuration_set: str) -> None:
        self._client = client
        self._sender = sender
        self._configuration_set = configuration_set  # suppressing bounces only (template.yaml)

    def send_email(self, to: str, message: Message) -> None:
        with _answer_awaited():
            self._client.send_email(
                FromEmailAddress=self._sender,
                ConfigurationSetName=self._configuration_set,
                Destination={"ToAddresses": [email_for_sending(to)]},
                Content={
                    "Simple": {
                        "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                        "Body": {
                            "Text": {"Data": message.text, "Charset": "UTF-8"},
                            "Html": {"Data": message.html, "Charset": "UTF-8"},
                        },
                    }
                },
            )


class DynamoDbDeliveryLedger:
    """One item per notice and channel (pk `notice#<id>#<channel>`), in the challenges table."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name
        # each claim this ledger holds, by its mark: a release is of its own claim alone (a delete retried
        # after its answer was lost must not remove what another delivery claimed or sent meanwhile)
        self._held: dict[tuple[str, Channel], str] = {}

    def _key(self, notice_id: str, channel: Channel) -> dict[str, Any]:
        return to_item({"pk": f"notice#{notice_id}#{channel.value}"})

    def claim(self, notice_id: str, channel: Channel, now: datetime, lease: timedelta) -> Claim:
        # the claim's own mark: the SDK's retry of this write, its answer lost, finds the claim made and
        # refused by its condition; read, it is this one's, not another's in flight (which would hold the
        # notice back a lease and more)
        mark = secrets.token_hex(8)
        try:
            made = self._client.put_item(
                TableName=self._table,
                Item=to_item(
                    {
                        "pk": f"notice#{notice_id}#{channel.value}",
                        "state": "sending",
                        "lease_until": iso(now + lease),
                        "expires_at": int((now + LEDGER_KEPT_FOR).timestamp()),
                        "claimed_by": mark,
                    }
                ),
                ConditionExpression="attribute_not_exists(pk) OR (#state = :sending AND lease_until < :now)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=to_item({":sending": "sending", ":now": iso(now)}),
                ReturnValues="ALL_OLD",  # a claim there before: another's, lapsed (its send may be out)
            )
        except ClientError as error:
            if not conditional_check_failed(error):
                raise
            item = self._client.get_item(
                TableName=self._table, Key=self._key(notice_id, channel), ConsistentRead=True
            ).get("Item")
            values = from_item(item) if item is not None else {}
            if values.get("state") == "sending" and values.get("claimed_by") == mark:
                self._held[(notice_id, channel)] = mark
                return Claim.CLAIMED_AFTER_ANOTHER  # its own: whether over another's lapsed, its lost answer said
            states = {"sent": Claim.SENT, "refused": Claim.REFUSED, "given_up": Claim.REFUSED}
            return states.get(str(values.get("state")), Claim.IN_FLIGHT)
        self._held[(notice_id, channel)] = mark
        return Claim.CLAIMED_AFTER_ANOTHER if made.get("Attributes") else Claim.CLAIMED

    def mark_sent(self, notice_id: str, channel: Channel, now: datetime) -> None:
        self._done(notice_id, channel, "sent", now)

    def mark_refused(self, notice_id: str, channel: Channel, now: datetime) -> None:
        self._done(notice_id, channel, "refused", now)

    def give_up(self, notice_id: str, channel: Channel, now: datetime) -> None:
        self._done(notice_id, channel, "given_up", now)

    def _done(self, notice_id: str, channel: Channel, state: str, now: datetime) -> None:
        """The channel is done with (`sent_at`, `refused_at` or `given_up_at`). The write is exempt from the deadline:
        refused, a retry would send again, or try a recipient the provider refuses for good. (Held to a moment
        before the invocation's end, in the time the notifier keeps for it: minid.deadline.)"""
        if state != "given_up":  # (a channel given up on is released again by a delivery whose other channel failed)
            self._held.pop((notice_id, channel), None)
        with exempt():
            self._client.update_item(
                TableName=self._table,
                Key=self._key(notice_id, channel),
                UpdateExpression=f"SET #state = :state, {state}_at = :now REMOVE lease_until",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=to_item({":state": state, ":now": iso(now)}),
            )

    def release(self, notice_id: str, channel: Channel, *, after_another: bool = False) -> None:
        """This ledger's own claim (by its mark), still sending, or given up on by this delivery (given back:
        its other channel failed too): one another delivery made or sent on since (this release retried after
        its answer was lost) is left as it is, as is one this ledger never held."""
        mark = self._held.get((notice_id, channel))
        if mark is None:
            return
        ours = "claimed_by = :mark AND #state IN (:sending, :given_up)"
        values = {":mark": mark, ":sending": "sending", ":given_up": "given_up"}
        try:
            with exempt():  # a send failed: refused, the claim would hold the channel until it lapses
                if after_another:  # lapsed at once: the next claim is taken over from it, as this one was
                    self._client.update_item(
                        TableName=self._table,
                        Key=self._key(notice_id, channel),
                        UpdateExpression="SET lease_until = :lapsed",
                        ConditionExpression=ours,
                        ExpressionAttributeNames={"#state": "state"},
                        ExpressionAttributeValues=to_item(values | {":lapsed": iso(datetime(1970, 1, 1, tzinfo=UTC))}),
                    )
                else:
                    self._client.delete_item(
                        TableName=self._table,
                        Key=self._key(notice_id, channel),
                        ConditionExpression=ours,
                        ExpressionAttributeNames={"#state": "state"},
                        ExpressionAttributeValues=to_item(values),
                    )
        except ClientError as error:
            if not conditional_check_failed(error):
                raise  # (kept: tried again, or it lapses)
        del self._held[(notice_id, channel)]

    def state_of(self, notice_id: str, channel: Channel) -> str | None:
        item = self._client.get_item(
            TableName=self._table,
            Key=self._key(notice_id, channel),
            ConsistentRead=True,
            ProjectionExpression="#state",
            ExpressionAttributeNames={"#state": "state"},
        ).get("Item")
        return str(from_item(item)["state"]) if item is not None and "state" in item else None

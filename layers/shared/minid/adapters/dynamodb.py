"""Plain Python values to and from DynamoDB's attribute values, and the calls every adapter makes."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence, Set
from datetime import datetime
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from minid.adapters.aws_errors import Contended, StillUnprocessed
from minid.deadline import OutOfTime, exempt_once

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

# The conversion is written here, not taken from boto3.dynamodb.types, whose rules it follows (numbers
# as DynamoDB keeps them, 38 digits, no float; a set of one kind; None as NULL inside a map or a list).
# That module cannot be imported without boto3's package, and boto3's __init__ loads its sessions and
# s3transfer: some 15 ms of every function's cold start (`make bench`), for two small functions, when
# the functions' clients are botocore's own (minid.wiring).
_NUMBERS = Context(Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow])


def to_item(values: Mapping[str, Any]) -> dict[str, AttributeValueTypeDef]:
    """An item from plain values; None values are left out (DynamoDB has no use for them)."""
    return {k: attribute(v) for k, v in values.items() if v is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """Plain values from an item; numbers come back as int where they are whole, float otherwise."""
    return {k: plain(v) for k, v in item.items()}


def attribute(value: Any) -> AttributeValueTypeDef:  # noqa: PLR0911  (one return per kind of value)
    """A plain value as a DynamoDB attribute value."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):  # before int: a bool is an int
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | Decimal):
        return {"N": _number(value)}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, Mapping):
        return {"M": {k: attribute(v) for k, v in value.items()}}  # a name that is not text: botocore refuses it
    if isinstance(value, Set):
        return _set(value)
    if isinstance(value, list | tuple):
        return {"L": [attribute(v) for v in value]}
    raise TypeError(f"no DynamoDB type for {type(value).__name__}")  # float among them: a Decimal, if ever


def plain(value: Mapping[str, Any]) -> Any:  # noqa: PLR0911  (one return per type)
    """A DynamoDB attribute value as a plain value."""
    ((kind, content),) = value.items()
    if kind in ("S", "BOOL", "B"):
        return content
    if kind == "N":
        return _plain_number(content)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: plain(v) for k, v in content.items()}
    if kind == "L":
        return [plain(v) for v in content]
    if kind == "NS":
        return {_plain_number(n) for n in content}
    if kind in ("SS", "BS"):
        return set(content)
    raise TypeError(f"unknown DynamoDB type {kind}")


def _number(value: int | Decimal) -> str:
    """DynamoDB's number text; more than 38 significant digits, or out of its range, is an error."""
    number = _NUMBERS.create_decimal(value)
    if number.is_nan() or number.is_infinite():
        raise TypeError(f"DynamoDB has no number {value}")
    return str(number)


def _plain_number(text: str) -> int | float:
    number = Decimal(text)
    return int(number) if number == number.to_integral_value() else float(number)


def _set(values: Set[Any]) -> AttributeValueTypeDef:
    if not values:
        raise TypeError("DynamoDB has no empty set")
    if all(isinstance(v, str) for v in values):
        return {"SS": list(values)}
    if all(isinstance(v, int | Decimal) and not isinstance(v, bool) for v in values):
        return {"NS": [_number(v) for v in values]}
    if all(isinstance(v, bytes | bytearray) for v in values):
        return {"BS": [bytes(v) for v in values]}
    raise TypeError("a DynamoDB set holds values of one kind: text, numbers or bytes")


def iso(moment: datetime) -> str:
    """How times are stored: ISO 8601 in UTC to the millisecond, so that they sort as text."""
    return moment.isoformat(timespec="milliseconds")


def iso_or_none(moment: datetime | None) -> str | None:
    """A time that may be missing, as stored (None: left out of the item, by `to_item`)."""
    return iso(moment) if moment is not None else None


def time_or_none(value: Any) -> datetime | None:
    """A stored time that may be missing."""
    return datetime.fromisoformat(value) if value else None


def conditional_check_failed(error: ClientError) -> bool:
    """A condition of a write (or of a transaction's writes) did not hold. A transaction cancelled for
    another reason (throttling, a conflicting transaction) is not that: it is for a retry."""
    code = error.response.get("Error", {}).get("Code")
    if code == "ConditionalCheckFailedException":
        return True
    if code != "TransactionCanceledException":
        return False
    reasons = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
    return "ConditionalCheckFailed" in reasons or not reasons


def given_back_once(
    counter: str, *, marked_as: str = "given_back", mark: str | None = None
) -> tuple[str, str, dict[str, Any]]:
    """The update expression, condition and values that take one from `counter` (never below zero), made
    once however often the call is sent.

    The SDK sends a call again when its answer was lost (a 500, a read timeout, after the write was made):
    a give-back sent twice would give back two, a guess or a code more than the person or client had. Each
    give-back marks its item with a random mark of its own, which the SDK's retry carries too and the
    condition then refuses. Only the last mark is kept, so the item keeps its size: two give-backs of one
    item whose lost answers interleave could still give back one more, which takes an outage and a race.
    `marked_as`, `mark`: another attribute for the mark, and a mark of the caller's (a give-back of its own
    kind, that others' must not move).
    """
    return (
        f"ADD {counter} :minus SET {marked_as} = :mark",
        f"{counter} > :zero AND (attribute_not_exists({marked_as}) OR {marked_as} <> :mark)",
        {":minus": -1, ":zero": 0, ":mark": mark or secrets.token_hex(8)},
    )


# the SET keyword (in any case), not a placeholder, name or path that spells it (`:set`, `#set`, `a.set`)
_SET = re.compile(r"(?<![:#.\w])SET\b", re.IGNORECASE)
_MARK = "counted_by = :counted_by"


def marked_to_count_once(update: Mapping[str, Any]) -> dict[str, Any]:
    """The update, marked as `counted_once` counts it: it sets a random mark of its own (`counted_by`) with
    what it writes, and holds in its condition that the mark is not there already. Marked once: a caller
    that makes the update again (past a transaction: refused, it was not written) marks it first, so that
    every making, and the SDK's retry of each, carries the same mark."""
    values = dict(update.get("ExpressionAttributeValues", {}))
    expression = str(update["UpdateExpression"])
    if ":counted_by" in values:
        if _MARK not in expression:
            raise ValueError("a value named :counted_by in an update not marked by marked_to_count_once")
        return dict(update)
    values[":counted_by"] = {"S": secrets.token_hex(8)}
    # an expression names each clause once: the mark joins the SET clause there is, or is one of its own
    if _SET.search(expression):
        expression = _SET.sub(f"SET {_MARK},", expression, count=1)
    else:
        expression = f"{expression} SET {_MARK}"
    not_before = "(attribute_not_exists(counted_by) OR counted_by <> :counted_by)"
    condition = update.get("ConditionExpression")
    return {
        **update,
        "UpdateExpression": expression,
        "ConditionExpression": f"({condition}) AND {not_before}" if condition else not_before,
        "ExpressionAttributeValues": values,
    }


def counted_once(client: DynamoDBClient, update: Mapping[str, Any]) -> tuple[bool, dict[str, Any] | None]:
    """A conditional update that counts, counted once however often the call is sent: whether it counted,
    and the item as it left it (or, not counted, as it is; None: no item).

    As a give-back's (`given_back_once`), its retry by the SDK after its answer was lost would count twice:
    a try or a failure more than the person made, and a lock their right code did not earn. The update is
    marked (`marked_to_count_once`): the retry finds its own mark, and its condition refuses it; the item
    it is answered with (ReturnValuesOnConditionCheckFailure, in the same call) shows that mark, and is
    taken as counted by the first. Only the last mark is kept: another count between the first and its
    retry lets the retry count again (an outage and a race).
    """
    request = marked_to_count_once(update)
    mark = request["ExpressionAttributeValues"][":counted_by"]
    try:
        response = client.update_item(**request, ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD")
    except ClientError as error:
        if not conditional_check_failed(error):
            raise
        item: Any = error.response.get("Item")
        return bool(item) and item.get("counted_by") == mark, from_item(item) if item else None
    return True, from_item(response["Attributes"])


def counted_once_or_given_back(
    client: DynamoDBClient,
    update: Mapping[str, Any],
    counter: str,
    *,
    still: str = "",
    still_values: Mapping[str, Any] | None = None,
) -> tuple[bool, dict[str, Any] | None]:
    """`counted_once` of `counter`, and when it raises (every answer lost: the SDK's tries timed out, in a
    brownout), the count, which may have been made, given back: the request fails unjudged, and nothing
    else would give it back (a try spent, a failure counted, for nothing: enough such end a login, or leave
    an account at its lock's threshold).

    Given back while the item still carries the count's mark (no count made since: `counted_by`) and
    `still` holds (`still_values` its own); not made, or another's count since, the condition refuses it,
    and nothing is taken that is not its own. Once: its own mark (`count_returned`, not a give-back's
    `given_back`, which another's give-back may move meanwhile). In one attempt (`exempt_once`): what the
    request gives back after it must still find its time, in the same brownout. Refused by the deadline
    before its first attempt was sent (OutOfTime, `unsent`): nothing to give back. A try of the count that
    DynamoDB makes after the give-back (one the SDK gave up on, still on its way) is not given back."""
    marked = marked_to_count_once(update)
    try:
        return counted_once(client, marked)
    except Exception as error:
        if not (isinstance(error, OutOfTime) and error.unsent):
            _given_back_if_made(client, marked, counter, still=still, still_values=still_values or {}, error=error)
        raise


def _given_back_if_made(
    client: DynamoDBClient,
    marked: Mapping[str, Any],
    counter: str,
    *,
    still: str,
    still_values: Mapping[str, Any],
    error: Exception,
) -> None:
    mark = marked["ExpressionAttributeValues"][":counted_by"]["S"]  # the count's own, as its give-back's
    expression, once, values = given_back_once(counter, marked_as="count_returned", mark=mark)
    give_back = {
        "TableName": marked["TableName"],
        "Key": marked["Key"],
        "UpdateExpression": expression,
        "ConditionExpression": " AND ".join(filter(None, (once, "counted_by = :mark", still))),
        "ExpressionAttributeValues": to_item({**values, **still_values}),
    }
    try:
        with exempt_once():
            update_if(client, give_back)
    except Exception as failed:  # told in a note: the count's own error stays the one raised
        error.add_note(f"The count, if made, was not given back: {type(failed).__name__}")


def put_new(client: DynamoDBClient, table: str, item: Mapping[str, Any]) -> None:
    """An item of a random id (as DynamoDB's), stored new. One there already that is this very item is
    this write, made and its answer lost (the SDK's retry then finds it), not another's: told by the item
    the refusal answers with (in the same call), so that an id drawn twice (a test's own random) is still
    refused (ConditionalCheckFailed)."""
    try:
        client.put_item(
            TableName=table,
            Item=item,
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as error:
        there: Any = error.response.get("Item")
        # compared as values: DynamoDB gives numbers back in its own form (1.50 as 1.5; a fraction is
        # compared as a float, to some 16 digits: the items put so hold whole numbers and text)
        if not conditional_check_failed(error) or there is None or from_item(there) != from_item(item):
            raise


def update_if(client: DynamoDBClient, update: Mapping[str, Any]) -> bool:
    """One conditional update; False when its condition does not hold."""
    try:
        client.update_item(**update)
    except ClientError as error:
        if conditional_check_failed(error):
            return False
        raise
    return True


# A write refused because another transaction is being written on its item (TransactionConflict) is
# told as not holding only after this pause: a consistent read in the meantime shows the item as it was
# before that transaction, so the caller's read again would find nothing changed.
IN_FLIGHT_PAUSE_SECONDS = 0.05


Made = Callable[["DynamoDBClient", Mapping[str, Any]], bool]  # a conditional update: whether it held


def counted_once_if(client: DynamoDBClient, update: Mapping[str, Any]) -> bool:
    """`counted_once`: whether it counted."""
    return counted_once(client, update)[0]


def _unless_in_flight(client: DynamoDBClient, update: Mapping[str, Any], made: Made = update_if) -> bool | None:
    """`made` (`update_if`); None when another transaction was writing the item (returned after the pause)."""
    try:
        return made(client, update)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "TransactionConflictException":
            raise
    time.sleep(IN_FLIGHT_PAUSE_SECONDS)
    return None


def update_if_as_read(client: DynamoDBClient, update: Mapping[str, Any]) -> bool:
    """One update made only while its item is as read: False when its condition does not hold, or when
    another transaction is writing the item (read it again: after the pause, the read shows that write)."""
    return _unless_in_flight(client, update) is True


# A plain write refused because a transaction was writing its item (TransactionConflict, which the SDK
# does not retry) was not made: it is made again after the pause, up to this many times in all.
IN_FLIGHT_TRIES = 5


def update_if_past_transactions(client: DynamoDBClient, update: Mapping[str, Any], made: Made = update_if) -> bool:
    """`made` (`update_if`, or `counted_once_if`) for an item that transactions write too (a rate counter: a
    login's judgement counts its hits in its transaction): made again while one is writing it, rather than
    failed for a retry."""
    for _ in range(IN_FLIGHT_TRIES - 1):
        held = _unless_in_flight(client, update, made)
        if held is not None:
            return held
    return made(client, update)


def write_together_past_transactions(client: DynamoDBClient, items: Sequence[Mapping[str, Any]]) -> bool:
    """`write_together` for items that others' transactions write too (see below)."""
    return cancellation_reasons_past_transactions(client, items) is None


def cancellation_reasons_past_transactions(
    client: DynamoDBClient, items: Sequence[Mapping[str, Any]]
) -> list[str] | None:
    """`cancellation_reasons` for items that others' transactions write too: made again while one of them
    is writing an item (a cancellation that names TransactionConflict alone; one that names a failed
    condition too is not made again: it would not hold the next time either), rather than failed for a
    retry. After IN_FLIGHT_TRIES in all, if they name only others' transactions, Contended: nothing said
    what was read no longer holds (not "changed meanwhile", but busy, for a retry in a moment)."""
    reasons = cancellation_reasons(client, items)
    for _ in range(IN_FLIGHT_TRIES - 1):
        if reasons is None or "TransactionConflict" not in reasons or "ConditionalCheckFailed" in reasons:
            return reasons
        reasons = cancellation_reasons(client, items)  # (after a conflict, cancellation_reasons has paused)
    if reasons is not None and "TransactionConflict" in reasons and "ConditionalCheckFailed" not in reasons:
        raise Contended()
    return reasons


def write_together(client: DynamoDBClient, items: Sequence[Mapping[str, Any]]) -> bool:
    """Writes in one transaction: all of them, or (when a condition does not hold: False) none."""
    try:
        client.transact_write_items(TransactItems=list(items))  # type: ignore[arg-type]
    except ClientError as error:
        if conditional_check_failed(error):
            return False
        raise
    return True


# Why DynamoDB cancels a transaction whose writes are made only if what they read still holds: one of
# their conditions did not, or another transaction was writing one of their items.
_STALE_READS = frozenset({"ConditionalCheckFailed", "TransactionConflict"})


def cancellation_reasons(client: DynamoDBClient, items: Sequence[Mapping[str, Any]]) -> list[str] | None:
    """Writes in one transaction: None when they are made. When a condition did not hold, or another
    transaction wrote one of the items meanwhile, none is made, and this is each item's reason ("None"
    for an item that held nothing back; empty, should DynamoDB name none). Other errors are raised."""
    try:
        client.transact_write_items(TransactItems=list(items))  # type: ignore[arg-type]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
            raise
        reasons = [reason.get("Code", "None") for reason in error.response.get("CancellationReasons", [])]
        if any(reason not in _STALE_READS | {"None"} for reason in reasons):
            raise  # throttled, or too large: not a matter of what was read
        if "TransactionConflict" in reasons:
            time.sleep(IN_FLIGHT_PAUSE_SECONDS)  # for the caller's read again to see the other transaction
        return reasons
    return None


class Batch:
    """Items read in one BatchGetItem, strongly consistent, found by the table and key they were asked by."""

    def __init__(self, found: Mapping[tuple[str, str], dict[str, Any]]) -> None:
        self._found = found

    def get(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        """The item's plain values, or None if it does not exist."""
        item = self._found.get((table, _key_text(key)))
        return from_item(item) if item is not None else None


def batch_get(
    client: DynamoDBClient,
    wanted: Sequence[tuple[str, Mapping[str, Any]]],
    tries: int = 5,
    only: Mapping[str, Sequence[str]] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Batch:
    """The items (table, key) that exist, in one call; of a table in `only`, those attributes alone (and
    the key). Keys DynamoDB leaves unprocessed (over its capacity for the moment) are asked for again
    after a pause that doubles; after `tries`, StillUnprocessed."""
    request: dict[str, Any] = {}
    for table, key in wanted:
        request.setdefault(table, {"Keys": [], "ConsistentRead": True})["Keys"].append(dict(key))
    for table, attributes in (only or {}).items():
        if table in request:
            keys = sorted({name for t, key in wanted if t == table for name in key})  # the table's key attributes
            names = {f"#a{i}": name for i, name in enumerate((*keys, *attributes))}
            request[table] |= {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for attempt in range(tries):
        response = client.batch_get_item(RequestItems=request)
        for table, items in response.get("Responses", {}).items():
            for item in items:
                found[(table, _key_text({name: item[name] for name in ("pk", "sk") if name in item}))] = dict(item)
        request = dict(response.get("UnprocessedKeys") or {})
        if not request:
            return Batch(found)
        if attempt < tries - 1:  # (after the last, given up at once)
            sleep(0.025 * 2**attempt)
    raise StillUnprocessed("a batch of reads")


def _key_text(key: Mapping[str, Any]) -> str:
    """A key's attributes as text, to find an item of a batch by the key it was asked for."""
    return "|".join(f"{name}={next(iter(value.values()))}" for name, value in sorted(key.items()))

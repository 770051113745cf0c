"""Security events on DynamoDB: pk the person key, sk `<time>#<type>#<reference>`, kept at least a year."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from minid.adapters.dynamodb import conditional_check_failed, from_item, iso, to_item
from minid.domain.errors import FieldError, InvalidInput
from minid.domain.events import KEPT_FOR, EventPage, SecurityEvent, SecurityEventType
from minid.domain.keys import PersonKey

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


PAGE_LIMIT = 100


def _sort_key(event: SecurityEvent) -> str:
    return f"{iso(event.at)}#{event.type.value}#{event.reference}"


def event_item(person: PersonKey, event: SecurityEvent) -> dict[str, Any]:
    item = {
        "pk": person,
        "sk": _sort_key(event),
        "type": event.type.value,
        "at": iso(event.at),
        "reference": event.reference,
        "detail": dict(event.detail),
        "expires_at": int((event.at + KEPT_FOR).timestamp()),
    }
    return to_item(item)


def recorded_with(table: str, person: PersonKey, events: Sequence[SecurityEvent]) -> list[dict[str, Any]]:
    """The events, as items of the transaction that makes the change they record (the same event
    again, a retry, is the same item)."""
    return [{"Put": {"TableName": table, "Item": event_item(person, event)}} for event in events]


class DynamoDbSecurityEventLog:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def record(self, person: PersonKey, event: SecurityEvent) -> None:
        try:
            self._client.put_item(
                TableName=self._table, Item=event_item(person, event), ConditionExpression="attribute_not_exists(sk)"
            )
        except ClientError as error:
            if not conditional_check_failed(error):
                raise

    def contains(self, person: PersonKey, event: SecurityEvent) -> bool:
        key = to_item({"pk": person, "sk": _sort_key(event)})
        # the key alone: whether it is there, not what it holds (a role may be let read no more)
        found = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True, ProjectionExpression="pk")
        return "Item" in found

    def page(self, person: PersonKey, cursor: str | None, limit: int) -> EventPage:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :person",
            "ExpressionAttributeValues": to_item({":person": person}),
            "ScanIndexForward": False,
            # one more than the page: a page that ends the history says so (DynamoDB gives a LastEvaluatedKey
            # whenever it stops at the limit, more to come or not: a last page, empty, would follow)
            "Limit": (size := max(1, min(limit, PAGE_LIMIT))) + 1,
        }
        if cursor is not None:
            kwargs["ExclusiveStartKey"] = to_item({"pk": person, "sk": _decode(cursor)})
        items = [from_item(item) for item in self._client.query(**kwargs).get("Items", [])]
        more = len(items) > size
        # of a type this code does not know (written by a later version, during a deploy or after a rollback),
        # left out, not the person's whole history failing
        known = [item for item in items[:size] if item["type"] in _TYPES]
        return EventPage([_event(item) for item in known], _encode(items[size - 1]["sk"]) if more else None)


def written_event(record: Mapping[str, Any]) -> tuple[PersonKey, SecurityEvent] | None:
    """The event a record of the table's stream (a Lambda DynamoDB event's record) says was written:
    None for a record that writes none (an event removed as it expires, or changed)."""
    if record.get("eventName") != "INSERT":
        return None
    values = from_item(record["dynamodb"]["NewImage"])
    return (PersonKey(values["pk"]), _event(values)) if values["type"] in _TYPES else None


_TYPES = frozenset(SecurityEventType)


def _event(values: dict[str, Any]) -> SecurityEvent:
    return SecurityEvent(
        type=SecurityEventType(values["type"]),
        at=datetime.fromisoformat(values["at"]),
        reference=values["reference"],
        detail={str(k): str(v) for k, v in values.get("detail", {}).items()},
    )


def _encode(sort_key: str) -> str:
    return base64.urlsafe_b64encode(sort_key.encode()).decode().rstrip("=")


def _not_a_cursor() -> InvalidInput:
    return InvalidInput(
        "The cursor is not one this service gave out.",
        errors=(FieldError("cursor", "Give the next_cursor of the page before, as it was given."),),
    )


def _decode(cursor: str) -> str:
    """A cursor is the last sort key seen; anything else is not a cursor."""
    try:
        sort_key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise _not_a_cursor() from None
    if not _SORT_KEY.fullmatch(sort_key):
        raise _not_a_cursor()
    return sort_key


# the type and the reference as any version may write them (a page may end on a later version's event)
_SORT_KEY = re.compile(r"\d{4}-\d{2}-\d{2}T[\d:.+\-]+#[a-z0-9\-]+#[^#]+", re.ASCII)

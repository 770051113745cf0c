"""The contact register on DynamoDB: one item per person (pk the person key), with the day the daily
review next looks at it (`review_on`, the partition key of the index ByReviewDate)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from minid.adapters.dynamodb import (
    from_item,
    iso,
    time_or_none,
    to_item,
    update_if,
    update_if_past_transactions,
    write_together_past_transactions,
)
from minid.adapters.events import recorded_with
from minid.domain.contacts import ContactRecord, Language
from minid.domain.events import SecurityEvent
from minid.domain.keys import PersonKey

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BY_REVIEW_DATE = "ByReviewDate"
# The daily review's own mark, in the register's table: not a person's record (a person's key is a keyed
# hash), and not in the review-date index (it has no review date).
_REVIEW_MARK = to_item({"pk": "review#daily"})


def contact_item(person: PersonKey, record: ContactRecord) -> dict[str, Any]:
    """The register's item for a record (None values are left out), with its next review date."""
    return to_item(
        {
            "pk": person,
            "mobile": record.mobile,
            "mobile_verified_at": iso(record.mobile_verified_at) if record.mobile_verified_at else None,
            "email": record.email,
            "email_verified_at": iso(record.email_verified_at) if record.email_verified_at else None,
            "language": record.language.value,
            "reserved": record.reserved,
            "updated_at": iso(record.updated_at),
            "confirmed_at": iso(record.confirmed_at) if record.confirmed_at else None,
            "review_on": record.review_on().isoformat(),
        }
    )


_RECORD_FIELDS = (  # what a record is made of; not the review's schedule, which the review moves
    "mobile",
    "mobile_verified_at",
    "email",
    "email_verified_at",
    "language",
    "reserved",
    "updated_at",
    "confirmed_at",
)


# What the review judges a record by: when it was last updated or confirmed.
_CONFIRMATION_FIELDS = ("updated_at", "confirmed_at")


# What `contact_record` makes of an item without the attribute: such an item is read as that value.
_READ_WHEN_ABSENT: dict[str, Any] = {"language": Language.BOKMAL.value, "reserved": False}


def replaced_as_read(table: str, person: PersonKey, as_read: ContactRecord, record: ContactRecord) -> dict[str, Any]:
    """The register's item written as `record`, an item of a transaction that holds only while the item is
    still the record `as_read`: a change made meanwhile (a contact verified in another tab) is not undone.

    The review's schedule moves only with the record's last confirmation (a change, a confirmation): a
    write that confirms nothing, a reservation say, leaves the day the review next looks at the record,
    and its stale mark, as they are. (Written whole, it put back the reminder's day, long gone, which
    the review never looks at again: the record was never marked stale, or its mark was erased.)"""
    after = contact_item(person, record)
    still = _still(person, as_read)
    names = dict(still["ExpressionAttributeNames"])  # #f<n>: the record's fields, in _RECORD_FIELDS' order
    values = dict(still["ExpressionAttributeValues"])
    sets: list[str] = []
    removes: list[str] = []
    for number, name in enumerate(_RECORD_FIELDS):
        if name in after:
            values[f":new{number}"] = after[name]
            sets.append(f"#f{number} = :new{number}")
        else:
            removes.append(f"#f{number}")
    if record.last_confirmed != as_read.last_confirmed:
        names |= {"#review_on": "review_on", "#marked_stale_at": "marked_stale_at"}
        values[":review_on"] = after["review_on"]
        sets.append("#review_on = :review_on")
        removes.append("#marked_stale_at")
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    return {
        "Update": {
            "TableName": table,
            "Key": to_item({"pk": person}),
            "UpdateExpression": expression,
            "ConditionExpression": still["ConditionExpression"],
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


def written_as_read(
    table: str, person: PersonKey, as_read: ContactRecord | None, record: ContactRecord
) -> dict[str, Any]:
    """The register's item replaced by `record`, an item of a transaction that holds only while the item
    is still the record `as_read` (or, for None, there is none): a change made meanwhile (a reservation, a
    contact verified) is not lost."""
    condition = {"ConditionExpression": "attribute_not_exists(pk)"} if as_read is None else _still(person, as_read)
    return {"Put": {"TableName": table, "Item": contact_item(person, record), **condition}}


def unchanged_since_read(table: str, person: PersonKey, as_read: ContactRecord) -> dict[str, Any]:
    """An item of a transaction that holds only while the register's item is still the record `as_read`
    (what the transaction tells or does is about that record)."""
    return {"ConditionCheck": {"TableName": table, "Key": to_item({"pk": person}), **_still(person, as_read)}}


def _still(person: PersonKey, as_read: ContactRecord, fields: tuple[str, ...] = _RECORD_FIELDS) -> dict[str, Any]:
    """The condition that the register's item is still the record `as_read` (in these of its fields)."""
    before = contact_item(person, as_read)
    conditions: list[str] = []
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    defaulted = {"language": as_read.language.value, "reserved": as_read.reserved}
    for number, name in enumerate(fields):
        names[f"#f{number}"] = name
        if name not in before:
            conditions.append(f"attribute_not_exists(#f{number})")
            continue
        values[f":f{number}"] = before[name]
        if name in _READ_WHEN_ABSENT and defaulted[name] == _READ_WHEN_ABSENT[name]:  # absent, or as read
            conditions.append(f"(attribute_not_exists(#f{number}) OR #f{number} = :f{number})")
        else:
            conditions.append(f"#f{number} = :f{number}")
    return {
        "ConditionExpression": " AND ".join(conditions),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def contact_record(values: dict[str, Any]) -> ContactRecord:
    return ContactRecord(
        mobile=values.get("mobile"),
        mobile_verified_at=time_or_none(values.get("mobile_verified_at")),
        email=values.get("email"),
        email_verified_at=time_or_none(values.get("email_verified_at")),
        language=Language(values.get("language", Language.BOKMAL.value)),
        reserved=bool(values.get("reserved", False)),
        updated_at=datetime.fromisoformat(values["updated_at"]),
        confirmed_at=time_or_none(values.get("confirmed_at")),
    )


# What the review reads of a record: its last update and confirmation (what it judges by) and its
# reservation (which its reminder tells of); never a contact (the notifier's to read). Its role may read no
# more (template.yaml, ReviewByDate).
REVIEWED = ("pk", "updated_at", "confirmed_at", "reserved")

# Records read for the review in one Query: some 1.5 s of its work (~15 ms a record), so that it stops
# on time whatever the size of a day, and holds no more than a page.
REVIEW_PAGE_SIZE = 100


class DynamoDbContactRegister:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        events_table: str | None = None,
        review_page_size: int = REVIEW_PAGE_SIZE,
    ) -> None:
        self._client = client
        self._table = table_name
        self._events = events_table  # where a review's events are written with its change (the review's)
        self._page_size = review_page_size

    def find(self, person: PersonKey) -> ContactRecord | None:
        key = to_item({"pk": person})
        item = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        return contact_record(from_item(item)) if item else None

    def last_reviewed(self) -> date | None:
        item = self._client.get_item(TableName=self._table, Key=_REVIEW_MARK, ConsistentRead=True).get("Item")
        return date.fromisoformat(from_item(item)["reviewed_through"]) if item else None

    def reviewed_through(self, day: date) -> None:
        update_if(  # False: a run of a later day has noted it already
            self._client,
            {
                "TableName": self._table,
                "Key": _REVIEW_MARK,
                "UpdateExpression": "SET reviewed_through = :day",
                "ConditionExpression": "attribute_not_exists(reviewed_through) OR reviewed_through < :day",
                "ExpressionAttributeValues": to_item({":day": day.isoformat()}),
            },
        )

    def due_for_review(self, day: date) -> Iterator[tuple[PersonKey, ContactRecord]]:
        names = {f"#r{i}": name for i, name in enumerate(REVIEWED)}
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(  # a page at a time, as the review takes them
            TableName=self._table,
            IndexName=BY_REVIEW_DATE,
            KeyConditionExpression="review_on = :day",
            Select="SPECIFIC_ATTRIBUTES",
            ProjectionExpression=", ".join(names),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item({":day": day.isoformat()}),
            PaginationConfig={"PageSize": self._page_size},
        ):
            for item in page.get("Items", []):
                values = from_item(item)
                yield PersonKey(values["pk"]), contact_record(values)

    def schedule_review(
        self,
        person: PersonKey,
        reviewed: tuple[date, ContactRecord],
        day: date | None,
        marked_stale_at: datetime | None,
        events: Sequence[SecurityEvent] = (),
    ) -> bool:
        if day is not None:
            expression, values = "SET review_on = :day", {":day": day.isoformat()}
        else:
            stale_at = marked_stale_at or datetime.now(UTC)
            expression, values = "SET marked_stale_at = :at REMOVE review_on", {":at": iso(stale_at)}
        due, as_read = reviewed
        # the review's judgement rests on the last confirmation alone: a reservation or a language changed
        # meanwhile leaves it standing (refused, the record would stay on a day gone by, never reviewed)
        still = _still(person, as_read, _CONFIRMATION_FIELDS)
        held = to_item(values | {":due": due.isoformat()}) | still["ExpressionAttributeValues"]
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": to_item({"pk": person}),
            "UpdateExpression": expression,
            "ConditionExpression": f"review_on = :due AND {still['ConditionExpression']}",
            "ExpressionAttributeNames": still["ExpressionAttributeNames"],
            "ExpressionAttributeValues": held,
        }
        # a person's own write on the record at the same moment (a confirmation, a change) is waited for, and
        # the condition then judges: the review is not failed for it, with the day's records after it
        if not events:
            return update_if_past_transactions(self._client, update)
        if self._events is None:
            raise ValueError("this register was built without the events table")
        items = [{"Update": update}, *recorded_with(self._events, person, events)]
        return write_together_past_transactions(self._client, items)

"""The contact register on DynamoDB: one item per person, keyed by the person key."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from minid.adapters.dynamodb import from_item, iso, to_item
from minid.domain.contacts import ContactRecord, Language
from minid.domain.keys import PersonKey

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def contact_item(person: PersonKey, record: ContactRecord) -> dict[str, Any]:
    """The register's item for a record (None values are left out)."""
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
        }
    )


def _moment(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class DynamoDbContactRegister:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def find(self, person: PersonKey) -> ContactRecord | None:
        item = self._client.get_item(TableName=self._table, Key=to_item({"pk": person}), ConsistentRead=True).get(
            "Item"
        )
        if not item:
            return None
        values = from_item(item)
        return ContactRecord(
            mobile=values.get("mobile"),
            mobile_verified_at=_moment(values.get("mobile_verified_at")),
            email=values.get("email"),
            email_verified_at=_moment(values.get("email_verified_at")),
            language=Language(values.get("language", Language.BOKMAL.value)),
            reserved=bool(values.get("reserved", False)),
            updated_at=datetime.fromisoformat(values["updated_at"]),
            confirmed_at=_moment(values.get("confirmed_at")),
        )

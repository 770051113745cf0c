"""Security events on DynamoDB: pk the person key, sk `<time>#<type>#<reference>`, kept at least a year."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from minid.adapters.dynamodb import conditional_check_failed, iso, to_item
from minid.domain.events import KEPT_FOR, SecurityEvent
from minid.domain.keys import PersonKey

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoDbSecurityEventLog:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def record(self, person: PersonKey, event: SecurityEvent) -> None:
        item = {
            "pk": person,
            "sk": f"{iso(event.at)}#{event.type.value}#{event.reference}",
            "type": event.type.value,
            "at": iso(event.at),
            "reference": event.reference,
            "detail": dict(event.detail),
            "expires_at": int((event.at + KEPT_FOR).timestamp()),
        }
        try:
            self._client.put_item(
                TableName=self._table, Item=to_item(item), ConditionExpression="attribute_not_exists(sk)"
            )
        except ClientError as error:
            if not conditional_check_failed(error):
                raise

"""Rate counters on DynamoDB (the challenges table, pk `rate#<counter>`, gone when their window is)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from minid.adapters.dynamodb import conditional_check_failed, to_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoDbRateCounter:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def hit(self, counter: str, max_hits: int, window_ends: datetime) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=to_item({"pk": f"rate#{counter}"}),
                UpdateExpression="ADD hits :one SET expires_at = if_not_exists(expires_at, :ends)",
                ConditionExpression="attribute_not_exists(hits) OR hits < :max",
                ExpressionAttributeValues=to_item(
                    {":one": 1, ":max": max_hits, ":ends": int(window_ends.timestamp()) + 60}
                ),
            )
        except ClientError as error:
            if conditional_check_failed(error):
                return False
            raise
        return True

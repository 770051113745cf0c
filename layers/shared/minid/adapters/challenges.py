"""Challenges on DynamoDB: what login attempts, password resets and contact changes have in common.

An item of the challenges table, pk `<kind>#<id>`, gone after its TTL. Tries are counted by
conditional updates before a code is judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from minid.adapters.dynamodb import (
    conditional_check_failed,
    counted_once_or_given_back,
    from_item,
    given_back_once,
    put_new,
    to_item,
)
from minid.deadline import exempt

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class Challenges:
    """One kind of challenge (`prefix`), in the open while its status is `pending`."""

    prefix = ""
    pending = ""
    codes = "code_hash"  # what of its codes an ended challenge no longer keeps (REMOVE)

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def _key(self, challenge_id: str) -> dict[str, Any]:
        return to_item({"pk": f"{self.prefix}#{challenge_id}"})

    def _put(self, challenge_id: str, values: Mapping[str, Any]) -> None:
        put_new(self._client, self._table, to_item({"pk": f"{self.prefix}#{challenge_id}", **values}))

    def _get(self, challenge_id: str) -> dict[str, Any] | None:
        item = self._client.get_item(TableName=self._table, Key=self._key(challenge_id), ConsistentRead=True).get(
            "Item"
        )
        return from_item(item) if item else None

    def _update_request(
        self, challenge_id: str, expression: str, values: Mapping[str, Any], condition: str
    ) -> dict[str, Any]:
        """A conditional update of the challenge: alone (`_update`), or an item of a transaction."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._key(challenge_id),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": to_item(values),
        }
        if "#status" in expression + condition:
            request["ExpressionAttributeNames"] = {"#status": "status"}
        return request

    def _update(self, challenge_id: str, expression: str, values: Mapping[str, Any], condition: str) -> bool:
        try:
            self._client.update_item(**self._update_request(challenge_id, expression, values, condition))
        except ClientError as error:
            if conditional_check_failed(error):
                return False
            raise
        return True

    def reserve_try(self, challenge_id: str, limit: int, now: datetime) -> bool:
        return self._counted_try(challenge_id, limit, now) is not None

    def _counted_try(self, challenge_id: str, limit: int, now: datetime) -> dict[str, Any] | None:
        """Count a try if fewer than `limit` are counted and the challenge is open: the challenge with
        it counted, or None. `claims` counts it too, and is never given back: the try's own number."""
        values = {":one": 1, ":limit": limit, ":pending": self.pending, ":now": int(now.timestamp())}
        condition = "tries < :limit AND #status = :pending AND expires_at > :now"
        expression = "ADD tries :one, claims :one"
        request = self._update_request(challenge_id, expression, values, condition)
        counted, item = counted_once_or_given_back(self._client, request, "tries")  # (its answer lost: given back)
        return item if counted else None

    def _updated(
        self, challenge_id: str, expression: str, values: Mapping[str, Any], condition: str
    ) -> dict[str, Any] | None:
        """The challenge as a conditional update left it, or None when its condition did not hold."""
        try:
            response = self._client.update_item(
                **self._update_request(challenge_id, expression, values, condition), ReturnValues="ALL_NEW"
            )
        except ClientError as error:
            if conditional_check_failed(error):
                return None
            raise
        return from_item(response["Attributes"])

    def refund_try(self, challenge_id: str) -> None:
        with exempt():  # a give-back: refused when out of time, a fault would cost a try
            expression, condition, values = given_back_once("tries")
            self._update(challenge_id, expression, values, condition)

    def end(self, challenge_id: str) -> None:
        """Ended while still open: one completed meanwhile (its right codes, by a request at once) stays
        done, for a retry of that request to be answered as done."""
        values = {":ended": "ended", ":pending": self.pending}
        self._update(challenge_id, f"SET #status = :ended REMOVE {self.codes}", values, "#status = :pending")

"""Rate counters on DynamoDB (the challenges table, pk `rate#<counter>`, gone when their window is)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from minid.adapters.dynamodb import (
    counted_once_if,
    given_back_once,
    marked_to_count_once,
    to_item,
    update_if_past_transactions,
)
from minid.deadline import exempt
from minid.domain.rate_limits import Hit

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def counter_key(hit: Hit) -> dict[str, Any]:
    return to_item({"pk": f"rate#{hit.counter}"})


def hits_counted(values: dict[str, Any]) -> tuple[str, int]:
    """A counter's item: its counter and the hits counted."""
    return values["pk"].removeprefix("rate#"), int(values.get("hits", 0))


def counted(table: str, hit: Hit) -> dict[str, Any]:
    """The update that counts a hit, if its window is not full: alone, or in a transaction."""
    return {
        "TableName": table,
        "Key": counter_key(hit),
        "UpdateExpression": "ADD hits :one SET expires_at = if_not_exists(expires_at, :ends)",
        "ConditionExpression": "attribute_not_exists(hits) OR hits < :max",
        "ExpressionAttributeValues": to_item(
            {":one": 1, ":max": hit.max_hits, ":ends": int(hit.window_ends.timestamp()) + 60}
        ),
    }


class DynamoDbRateCounter:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def hit(self, hit: Hit) -> bool:
        # Made again when a transaction was counting on the same counter: refused, a request that counts
        # alone (an unknown identity number's login) would answer 503 where one judged in a transaction
        # (a wrong password) answers 401, telling which numbers have an account.
        # Counted once however often the SDK sends it (its answer lost: counted_once), as a transaction's
        # count is by its token; its mark the same each time it is made again past a transaction (refused, it
        # was not written): the SDK's retry of a send whose answer was lost finds it then too.
        once = marked_to_count_once(counted(self._table, hit))
        if update_if_past_transactions(self._client, once, counted_once_if):
            return True
        # for operators: a limit reached, by its name alone (those counted in a transaction with what they
        # count answer 429, and are counted as responses); an enrolment's guesses used up answer 401
        from minid.observability import count  # noqa: PLC0415  (only when refused: no import at start)

        count("LimitReached", limit=hit.counter.partition("#")[0])
        return False

    def give_back(self, hit: Hit) -> None:
        expression, condition, values = given_back_once("hits")  # (none counted, or its window gone: nothing)
        taken_back = {
            "TableName": self._table,
            "Key": counter_key(hit),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": to_item(values),
        }
        with exempt():  # a give-back: refused when out of time, an outage would use up the limit
            update_if_past_transactions(self._client, taken_back)  # (a login's transaction counting meanwhile)

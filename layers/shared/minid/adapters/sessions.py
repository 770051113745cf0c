"""Sessions on DynamoDB (the sessions table, pk the keyed hash of the token, gone at its absolute end)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from minid import observability
from minid.adapters.aws_errors import Busy, error_name, is_transient
from minid.adapters.dynamodb import conditional_check_failed, from_item, iso, to_item, write_together
from minid.adapters.events import recorded_with
from minid.domain.events import SecurityEvent
from minid.domain.keys import PersonKey
from minid.domain.sessions import Amr, Session

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

logger = Logger(child=True)


def session_item(session: Session) -> dict[str, Any]:
    """A new session, as the login's completion stores it."""
    item = {
        "pk": session.key,
        "person": session.person,
        "identity": session.identity_sealed,
        "amr": [amr.value for amr in session.amr],
        "auth_time": iso(session.auth_time),
        "last_seen_at": iso(session.last_seen_at),
        "ends_at": iso(session.expires_at),
        "epoch": session.epoch,
        "expires_at": int(session.expires_at.timestamp()),
    }
    return to_item(item)


class DynamoDbSessionStore:
    def __init__(self, client: DynamoDBClient, table_name: str, *, events_table: str) -> None:
        self._client = client
        self._table = table_name
        self._events = events_table

    def get(self, key: str) -> Session | None:
        item = self._client.get_item(TableName=self._table, Key=to_item({"pk": key}), ConsistentRead=True).get("Item")
        if not item:
            return None
        values = from_item(item)
        return Session(
            key=values["pk"],
            person=PersonKey(values["person"]),
            identity_sealed=values["identity"],
            amr=tuple(Amr(v) for v in values["amr"]),
            auth_time=datetime.fromisoformat(values["auth_time"]),
            last_seen_at=datetime.fromisoformat(values["last_seen_at"]),
            expires_at=datetime.fromisoformat(values["ends_at"]),
            epoch=int(values["epoch"]),
        )

    def touch(self, key: str, now: datetime) -> None:
        """The session's last use, kept. Best effort: a write DynamoDB could not take now (a throttle, a
        timeout, another tab's logout in flight on the item) is logged and let be, rather than refusing the
        request it is made for (a read of the person's own record, say): unrecorded, the session ends its idle
        time sooner, the safe way. A fault that is no passing one (a role without the action) is raised."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=to_item({"pk": key}),
                UpdateExpression="SET last_seen_at = :now",
                ConditionExpression="attribute_exists(pk) AND last_seen_at < :now",
                ExpressionAttributeValues=to_item({":now": iso(now)}),
            )
        except (ClientError, BotoCoreError, Busy) as error:
            if isinstance(error, ClientError) and conditional_check_failed(error):
                return
            if not is_transient(error):
                raise
            logger.warning("Session's last use not recorded", extra={"aws_error": error_name(error)})
            observability.count("SessionUseNotRecorded")  # a long throttle ends sessions in use: seen

    def delete(self, session: Session, events: Sequence[SecurityEvent]) -> None:
        if not events:
            self._client.delete_item(TableName=self._table, Key=to_item({"pk": session.key}))
            return
        gone = {
            "Delete": {
                "TableName": self._table,
                "Key": to_item({"pk": session.key}),
                "ConditionExpression": "attribute_exists(pk)",  # ended meanwhile: no second event
            }
        }
        write_together(self._client, [gone, *recorded_with(self._events, session.person, events)])

"""Pending contact changes on DynamoDB (the challenges table, pk `contact-change#<person>`, gone after
their TTL).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from minid.adapters.challenges import Challenges
from minid.adapters.dynamodb import from_item, iso, to_item
from minid.domain.contact_changes import PendingChange
from minid.domain.keys import PersonKey
from minid.domain.notices import Channel

if TYPE_CHECKING:
    pass


class DynamoDbContactChanges(Challenges):
    """A person's pending contact change (pk `contact-change#<person key>`), one at a time."""

    prefix = "contact-change"
    pending = "pending"

    def replace(self, change: PendingChange) -> None:
        item = {
            "pk": f"{self.prefix}#{change.person}",
            "person": change.person,
            "values": {channel.value: value for channel, value in change.values.items()},
            "codes": {channel.value: digest for channel, digest in change.code_hashes.items()},
            "sent_at": iso(change.sent_at),
            "expires_at": int(change.expires_at.timestamp()),
            "status": self.pending,
            "tries": 0,
            "resends": 0,
        }
        self._client.put_item(TableName=self._table, Item=to_item(item))

    def get(self, person: PersonKey) -> PendingChange | None:
        values = self._get(person)
        if values is None or not values.get("values"):
            return None
        return PendingChange(
            person=PersonKey(values["person"]),
            values={Channel(k): v for k, v in values["values"].items()},
            code_hashes={Channel(k): v for k, v in values.get("codes", {}).items()},
            sent_at=datetime.fromisoformat(values["sent_at"]),
            expires_at=datetime.fromtimestamp(int(values["expires_at"]), tz=UTC),
            tries=int(values.get("tries", 0)),
            resends=int(values.get("resends", 0)),
        )

    def settle(self, person: PersonKey, channel: Channel) -> None:
        response = self._client.update_item(
            TableName=self._table,
            Key=self._key(person),
            UpdateExpression="REMOVE #values.#channel, codes.#channel",
            ExpressionAttributeNames={"#values": "values", "#channel": channel.value},
            ReturnValues="ALL_NEW",
        )
        if not from_item(response.get("Attributes", {})).get("values"):
            self._client.delete_item(TableName=self._table, Key=self._key(person))

    def record_resend(
        self, person: PersonKey, code_hashes: Mapping[Channel, str], sent_at: datetime, resends: tuple[int, int]
    ) -> bool:
        return self._update(
            person,
            "SET codes = :codes, sent_at = :sent_at, resends = :after",
            {
                ":codes": {channel.value: digest for channel, digest in code_hashes.items()},
                ":sent_at": iso(sent_at),
                ":before": resends[0],
                ":after": resends[1],
            },
            "resends = :before",
        )

"""What `GET /v1/me` reads besides the account: one BatchGetItem over the population register, the
contact register and the person's letter ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING

from minid.adapters.contacts import contact_record
from minid.adapters.dynamodb import batch_get, to_item
from minid.adapters.letters import ledger_key
from minid.adapters.population import person_from
from minid.domain.keys import PersonKey
from minid.domain.profile import ProfileStanding

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoDbProfileReads:
    def __init__(
        self, client: DynamoDBClient, *, population_table: str, contacts_table: str, letters_table: str
    ) -> None:
        self._client = client
        self._population = population_table
        self._contacts = contacts_table
        self._letters = letters_table

    def read(self, person: PersonKey) -> ProfileStanding:
        key, ledger = to_item({"pk": person}), ledger_key(person)
        found = batch_get(self._client, [(self._population, key), (self._contacts, key), (self._letters, ledger)])
        registered, record, active = (
            found.get(self._population, key),
            found.get(self._contacts, key),
            found.get(self._letters, ledger),
        )
        return ProfileStanding(
            person=person_from(registered) if registered else None,
            contact=contact_record(record) if record else None,
            letter_id=active.get("active") if active else None,
        )

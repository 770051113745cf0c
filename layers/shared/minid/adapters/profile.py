"""What `GET /v1/me` reads besides the account: one BatchGetItem over the population register, the
contact register and the person's letter ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING

from minid.adapters.population import person_records
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
        found = person_records(
            self._client,
            person,
            population_table=self._population,
            contacts_table=self._contacts,
            letters_table=self._letters,
        )
        return ProfileStanding(person=found.person, contact=found.contact, letter_id=found.ledger.get("active"))

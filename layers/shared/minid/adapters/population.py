"""The population register on DynamoDB: one item per person, keyed by the keyed hash of the number."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING, Any, cast

from minid.adapters.dynamodb import from_item, to_item
from minid.domain.identity import IdentityNumberKind
from minid.domain.keys import PersonKey
from minid.domain.population import ForeignAddress, NorwegianAddress, Person, PersonStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import WriteRequestTypeDef

_BATCH_SIZE = 25  # DynamoDB's limit for BatchWriteItem


class DynamoDbPopulationRegister:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def find(self, person: PersonKey) -> Person | None:
        item = self._client.get_item(TableName=self._table, Key=to_item({"pk": person})).get("Item")
        return person_from(from_item(item)) if item else None

    def put_many(self, persons: Iterable[tuple[PersonKey, Person]]) -> int:
        """Write persons (a register import or a synthetic seed); returns how many were written."""
        requests: list[WriteRequestTypeDef] = [
            {"PutRequest": {"Item": to_item({"pk": key, **_values(person)})}} for key, person in persons
        ]
        for start in range(0, len(requests), _BATCH_SIZE):
            pending = requests[start : start + _BATCH_SIZE]
            while pending:
                response = self._client.batch_write_item(RequestItems={self._table: pending})
                unprocessed = response.get("UnprocessedItems", {}).get(self._table, [])
                pending = cast("list[WriteRequestTypeDef]", list(unprocessed))
        return len(requests)


def _values(person: Person) -> dict[str, Any]:
    address = person.address
    abroad = person.address_abroad
    return {
        "given_name": person.given_name,
        "family_name": person.family_name,
        "birth_date": person.birth_date.isoformat(),
        "kind": person.kind.value,
        "status": person.status.value,
        "deceased_on": person.deceased_on.isoformat() if person.deceased_on else None,
        "address": {
            "street": address.street,
            "postal_code": address.postal_code,
            "city": address.city,
            "care_of": address.care_of,
        }
        if address
        else None,
        "address_abroad": {
            "lines": list(abroad.lines_abroad),
            "country": abroad.country,
            "country_code": abroad.country_code,
        }
        if abroad
        else None,
    }


def person_from(values: dict[str, Any]) -> Person:
    address = values.get("address")
    abroad = values.get("address_abroad")
    deceased_on = values.get("deceased_on")
    return Person(
        given_name=values["given_name"],
        family_name=values["family_name"],
        birth_date=date.fromisoformat(values["birth_date"]),
        kind=IdentityNumberKind(values["kind"]),
        status=PersonStatus(values["status"]),
        deceased_on=date.fromisoformat(deceased_on) if deceased_on else None,
        address=NorwegianAddress(
            street=address["street"],
            postal_code=address["postal_code"],
            city=address["city"],
            care_of=address.get("care_of"),
        )
        if address
        else None,
        address_abroad=ForeignAddress(
            lines_abroad=tuple(abroad["lines"]),
            country=abroad["country"],
            country_code=abroad["country_code"],
        )
        if abroad
        else None,
    )

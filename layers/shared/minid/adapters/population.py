"""The population register on DynamoDB: one item per person, keyed by the keyed hash of the number."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from minid.adapters.aws_errors import TRANSIENT_CANCELLATIONS
from minid.adapters.contacts import contact_record
from minid.adapters.dynamodb import batch_get, conditional_check_failed, from_item, to_item
from minid.adapters.letters import ledger_key
from minid.domain.contacts import ContactRecord, Language
from minid.domain.identity import IdentityNumberKind
from minid.domain.keys import PersonKey
from minid.domain.population import AddressProtection, ForeignAddress, NorwegianAddress, Person, PersonStatus
from minid.values import Value

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import WriteRequestTypeDef

BATCH_SIZE = 25  # DynamoDB's limit for BatchWriteItem
# The item telling of which day's export of the register the table holds (tools/import_population.py):
# never a person's key (a digest).
EXPORT_KEY = "#export"
# Rounds of a batch's unprocessed items sent again (the pause doubling, up to 5 s: some 26 s in all)
# before it is given up as failed, told where to go on from, rather than tried without end.
UNPROCESSED_ROUNDS = 12


class NotHeld(Exception):
    """The table is held otherwise than a hold asked (hold_export): `held`, the hold there is, or None."""

    def __init__(self, held: Held | None) -> None:
        super().__init__("the table is held otherwise")
        self.held = held


class HoldLost(Exception):
    """The import run no longer holds the table: another took it over (put_held)."""


class StillUnprocessed(Exception):
    """DynamoDB left some of a batch unprocessed, round after round (the table throttled for long)."""


class PersonRecords(Value, frozen=True):
    """A person in the population register, their contact record and their letter ledger's values."""

    person: Person | None
    contact: ContactRecord | None  # None too when only the language was read
    language: Language | None  # the contact record's; None without one
    ledger: dict[str, Any]  # {} when there is none


def person_records(
    client: DynamoDBClient,
    person: PersonKey,
    *,
    population_table: str,
    contacts_table: str,
    letters_table: str,
    language_only: bool = False,
) -> PersonRecords:
    """The three in one BatchGetItem: what the profile and the letter workflow's check of the recipient read.
    `language_only`: of the contact record, the language alone (the workflow's role may read no more)."""
    key, ledger = to_item({"pk": person}), ledger_key(person)
    only = {contacts_table: ("language",)} if language_only else None
    found = batch_get(client, [(population_table, key), (contacts_table, key), (letters_table, ledger)], only=only)
    registered, record = found.get(population_table, key), found.get(contacts_table, key)
    return PersonRecords(
        person=person_from(registered) if registered else None,
        contact=contact_record(record) if record and not language_only else None,
        language=Language(record.get("language", Language.BOKMAL.value)) if record else None,
        ledger=found.get(letters_table, ledger) or {},
    )


class DynamoDbPopulationRegister:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def find(self, person: PersonKey) -> Person | None:
        item = self._client.get_item(TableName=self._table, Key=to_item({"pk": person})).get("Item")
        return person_from(from_item(item)) if item else None

    def status(self, person: PersonKey) -> PersonStatus | None:
        item = self._client.get_item(
            TableName=self._table,
            Key=to_item({"pk": person}),
            ProjectionExpression="#status",  # the rest of the person is not read (the roles may read no more)
            ExpressionAttributeNames={"#status": "status"},
        ).get("Item")
        return PersonStatus(from_item(item)["status"]) if item else None

    def put_many(self, persons: Iterable[tuple[PersonKey, Person]]) -> int:
        """Write persons (a synthetic seed), BATCH_SIZE a request as they come; returns how many were written."""
        written, batch = 0, list[tuple[PersonKey, Person]]()
        for person in persons:
            batch.append(person)
            if len(batch) == BATCH_SIZE:
                written += self.put_batch(batch)
                batch.clear()
        return written + (self.put_batch(batch) if batch else 0)

    def put_batch(
        self, persons: Iterable[tuple[PersonKey, Person]], *, sleep: Callable[[float], None] = time.sleep
    ) -> int:
        """Write up to BATCH_SIZE persons in one request, each item whole (a key given twice: its last
        person, as DynamoDB takes no key twice in a request); what DynamoDB leaves unprocessed is sent again
        after a pause that doubles, as it advises (`sleep`), and given up after UNPROCESSED_ROUNDS rounds
        (StillUnprocessed). Returns how many were written."""
        by_key = dict(persons)
        pending: list[WriteRequestTypeDef] = [
            {"PutRequest": {"Item": to_item({"pk": key, **_values(person)})}} for key, person in by_key.items()
        ]
        for _ in _rounds(sleep):
            response = self._client.batch_write_item(RequestItems={self._table: pending})
            pending = cast("list[WriteRequestTypeDef]", list(response.get("UnprocessedItems", {}).get(self._table, [])))
            if not pending:
                return len(by_key)
        raise StillUnprocessed(f"{len(pending)} of {len(by_key)} persons unprocessed after {UNPROCESSED_ROUNDS} rounds")

    def put_held(
        self, persons: Iterable[tuple[PersonKey, Person]], run: str, *, sleep: Callable[[float], None] = time.sleep
    ) -> int:
        """As put_batch, but only while the import `run` holds the table (hold_export), in one transaction
        with that check: else HoldLost, nothing written. Checked apart (a read, then the batch), a batch
        of a run taken over meanwhile could land after the new run's own, an older export's persons over
        a newer's. (A transaction's writes cost twice a batch's.) A transaction cancelled for a moment
        (throttled, or in a conflict: another run's hold being written) is made again after a pause that
        doubles, and given up after UNPROCESSED_ROUNDS rounds (StillUnprocessed). Returns how many were
        written."""
        by_key = dict(persons)
        items: list[Any] = [
            {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": to_item({"pk": EXPORT_KEY}),
                    "ConditionExpression": "#run = :run",
                    "ExpressionAttributeNames": {"#run": "run"},
                    "ExpressionAttributeValues": to_item({":run": run}),
                }
            }
        ]
        items += [
            {"Put": {"TableName": self._table, "Item": to_item({"pk": k, **_values(p)})}} for k, p in by_key.items()
        ]
        for _ in _rounds(sleep):
            try:
                self._client.transact_write_items(TransactItems=items)
                return len(by_key)
            except ClientError as error:
                if conditional_check_failed(error):
                    raise HoldLost(run) from None
                reasons = {r.get("Code") for r in error.response.get("CancellationReasons", [])} - {"None", None}
                if not reasons or not reasons <= TRANSIENT_CANCELLATIONS:  # (botocore retries no cancelled one)
                    raise
        raise StillUnprocessed(f"{len(by_key)} persons unwritten: cancelled {UNPROCESSED_ROUNDS} times, for a moment")

    def held_export(self) -> Held | None:
        """Which day's export of the register the table holds, and the import run holding it (hold_export);
        None: none imported."""
        item = self._client.get_item(TableName=self._table, Key=to_item({"pk": EXPORT_KEY}), ConsistentRead=True)
        return _held(item.get("Item"))

    def hold_export(
        self,
        as_of: date,
        *,
        run: str,
        file: str,
        older: bool = False,
        taking_up: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Record that the table holds the register's export of `as_of`, written by the import `run` from
        the file whose digest is `file` (an import about to write it), unless it holds a newer one: then
        NotHeld, with that hold, nothing recorded. An older export written over a newer one would bring
        back what the register changed since (the dead alive again, a letter to an address left). `older`:
        recorded all the same (a bad import undone with the export before it). An export of the same day
        is recorded again (an import run again). `taking_up`: only over a hold of the same file and day (a
        run cut short taken up from a line: the lines before it are that file's); else NotHeld, with the
        hold there is. The run recorded last holds the table: any other, still writing, stops at its next
        batch (put_held)."""
        held: dict[str, Any] = {
            "TableName": self._table,
            "Item": to_item({"pk": EXPORT_KEY, "as_of": as_of.isoformat(), "run": run, "file": file}),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if taking_up:
            held["ConditionExpression"] = "#file = :file AND as_of = :as_of"
            held["ExpressionAttributeNames"] = {"#file": "file"}  # (a reserved word)
            held["ExpressionAttributeValues"] = to_item({":file": file, ":as_of": as_of.isoformat()})
        elif not older:
            held["ConditionExpression"] = "attribute_not_exists(pk) OR as_of <= :as_of"
            held["ExpressionAttributeValues"] = to_item({":as_of": as_of.isoformat()})
        else:
            del held["ReturnValuesOnConditionCheckFailure"]
        for _ in _rounds(sleep):
            try:
                self._client.put_item(**held)
                return
            except ClientError as error:
                if conditional_check_failed(error):
                    raise NotHeld(_held(error.response.get("Item"))) from None  # type: ignore[arg-type]
                # the running import's batch is a transaction that checks the hold: a put in its midst is
                # refused (botocore does not retry it), made again once that batch is written
                if error.response.get("Error", {}).get("Code") != "TransactionConflictException":
                    raise
        raise StillUnprocessed(f"the hold not written: in conflict {UNPROCESSED_ROUNDS} times")


def _rounds(sleep: Callable[[float], None]) -> Iterator[int]:
    """UNPROCESSED_ROUNDS rounds of a write made again, each not ended by its caller (a return, a raise)
    followed by a pause that doubles from 50 ms, up to 5 s (some 26 s in all: DynamoDB advises backing
    off), but the last: its caller gives up at once."""
    pause = 0.05
    for made in range(UNPROCESSED_ROUNDS):
        yield made
        if made < UNPROCESSED_ROUNDS - 1:
            sleep(pause)
            pause = min(pause * 2, 5.0)


def _held(item: dict[str, Any] | None) -> Held | None:
    if item is None:
        return None
    held = from_item(item)
    return Held(date.fromisoformat(held["as_of"]), held.get("run"), held.get("file"))


class Held(Value, frozen=True):
    """The export the table holds: its day, the import run that holds it and the digest of its file (None
    for both: held before they were recorded)."""

    as_of: date
    run: str | None
    file: str | None


def _values(person: Person) -> dict[str, Any]:
    """The person as stored: a strictly confidential address is not (an export may carry it)."""
    address = None if person.address_withheld else person.address
    abroad = None if person.address_withheld else person.address_abroad
    return {
        "given_name": person.given_name,
        "family_name": person.family_name,
        "birth_date": person.birth_date.isoformat(),
        "kind": person.kind.value,
        "status": person.status.value,
        "deceased_on": person.deceased_on.isoformat() if person.deceased_on else None,
        "address_protection": person.address_protection.value if person.address_protection else None,
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
    protection = values.get("address_protection")
    return Person(
        given_name=values["given_name"],
        family_name=values["family_name"],
        birth_date=date.fromisoformat(values["birth_date"]),
        kind=IdentityNumberKind(values["kind"]),
        status=PersonStatus(values["status"]),
        deceased_on=date.fromisoformat(deceased_on) if deceased_on else None,
        address_protection=AddressProtection(protection) if protection else None,
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

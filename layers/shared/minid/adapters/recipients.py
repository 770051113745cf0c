"""The PIN-letter workflow's check of the recipient on DynamoDB: what it reads in one BatchGetItem (the
population register, the contact register, the person's letter ledger), and what it writes in one
transaction (the letter's outcome, the quota reserved in the ledger, the events)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from minid.adapters.dynamodb import cancellation_reasons, iso, to_item
from minid.adapters.events import recorded_with
from minid.adapters.letters import REFUSED_FOR, REFUSED_ORDER_KEPT_FOR, ledger_key, letter_key
from minid.adapters.population import person_records
from minid.domain.contacts import Language
from minid.domain.events import SecurityEvent
from minid.domain.keys import PersonKey
from minid.domain.letters.model import LetterStatus, PinLetter, RecipientOutcome
from minid.domain.letters.ports import QuotaReservation, RecipientStanding, RefusalRecorded

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoDbRecipients:
    def __init__(
        self,
        client: DynamoDBClient,
        *,
        population_table: str,
        contacts_table: str,
        letters_table: str,
        events_table: str,
    ) -> None:
        self._client = client
        self._population = population_table
        self._contacts = contacts_table
        self._letters = letters_table
        self._events = events_table

    def read(self, person: PersonKey) -> RecipientStanding:
        found = person_records(
            self._client,
            person,
            population_table=self._population,
            contacts_table=self._contacts,
            letters_table=self._letters,
            language_only=True,
        )
        return RecipientStanding(
            person=found.person,
            language=found.language,
            orders={k: datetime.fromisoformat(v) for k, v in found.ledger.get("orders", {}).items()},
            placed={k: datetime.fromisoformat(v) for k, v in found.ledger.get("placed", {}).items()},
            ledger_version=int(found.ledger.get("version", 0)),
            refusals_recorded={
                outcome: date.fromisoformat(found.ledger[_recorded(outcome)])
                for outcome in RecipientOutcome
                if _recorded(outcome) in found.ledger
            },
        )

    def settle(
        self,
        letter: PinLetter,
        outcome: RecipientOutcome,
        language: Language,
        reservation: QuotaReservation | None,
        events: Sequence[SecurityEvent],
        *,
        refusal: RefusalRecorded | None = None,
        quota_as_read: int | None = None,
    ) -> bool:
        values: dict[str, Any] = {":outcome": outcome.value, ":language": language.value, ":seen": letter.status.value}
        names = {"#language": "language", "#status": "status"}
        if outcome is RecipientOutcome.ACCEPTED:
            expression = "SET outcome = :outcome, #language = :language REMOVE expires_at"
        else:
            expression = "SET outcome = :outcome, #language = :language, expires_at = :expires"
            values[":expires"] = int((letter.ordered_at + REFUSED_ORDER_KEPT_FOR).timestamp())
            if letter.status is LetterStatus.ORDERED:  # a letter blocked before it was checked stays blocked
                # and out of the person's index: anyone may order in anyone's name, and refused orders kept
                # there would grow what the person's list, block and activation read until they time out
                expression = expression.replace("SET ", f"SET #status = :refused, {REFUSED_FOR} = :person, ", 1)
                expression += " REMOVE person"
                values |= {":refused": LetterStatus.REFUSED.value, ":person": letter.person}
        outcome_written = {
            "TableName": self._letters,
            "Key": letter_key(letter.letter_id),
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(pk) AND #status = :seen AND attribute_not_exists(outcome)",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": to_item(values),
        }
        items: list[dict[str, Any]] = [{"Update": outcome_written}]
        if reservation is not None:
            items.append(
                {
                    "Update": {
                        "TableName": self._letters,
                        "Key": ledger_key(letter.person),
                        "UpdateExpression": "SET orders = :orders, placed = :placed, version = :next",
                        "ConditionExpression": _as_read(reservation.version),
                        "ExpressionAttributeValues": to_item(
                            {
                                ":orders": {k: iso(v) for k, v in reservation.orders.items()},
                                ":placed": {k: iso(v) for k, v in reservation.placed.items()},
                                ":next": reservation.version + 1,
                            }
                            | _version(reservation.version)
                        ),
                    }
                }
            )
        # a refusal by the quota holds only on the ledger it was judged on: a place freed since (a letter
        # blocked, or failed) is this order's to take, not refused with it
        held = [] if quota_as_read is None else [_as_read(quota_as_read)]
        held_values = {} if quota_as_read is None else _version(quota_as_read)
        if refusal is not None:  # (an accepted order's reservation is the ledger's other write: never both)
            items.append(
                {
                    "Update": {
                        "TableName": self._letters,
                        "Key": ledger_key(letter.person),
                        "UpdateExpression": "SET #recorded = :day",
                        # never back: an order of the day before settled late (a retry past midnight)
                        "ConditionExpression": " AND ".join(
                            ["(attribute_not_exists(#recorded) OR #recorded < :day)", *held]
                        ),
                        "ExpressionAttributeNames": {"#recorded": _recorded(refusal.outcome)},
                        "ExpressionAttributeValues": to_item({":day": refusal.day.isoformat()} | held_values),
                    }
                }
            )
        elif held:  # (one item each in a transaction: the ledger's check, where it has no write)
            check = {"TableName": self._letters, "Key": ledger_key(letter.person), "ConditionExpression": held[0]}
            items.append(
                {"ConditionCheck": check | ({"ExpressionAttributeValues": to_item(held_values)} if held_values else {})}
            )
        items += recorded_with(self._events, letter.person, events)
        return cancellation_reasons(self._client, items) is None


def _as_read(version: int) -> str:
    """The ledger's condition to be as read at `version` (0: none yet, or one without a version)."""
    return "version = :version" if version else "attribute_not_exists(version)"


def _version(version: int) -> dict[str, int]:
    return {":version": version} if version else {}


def _recorded(reason: RecipientOutcome) -> str:
    """The ledger's attribute for the last day a refusal for `reason` was put in the person's history."""
    return f"refusal_recorded_{reason.value}"

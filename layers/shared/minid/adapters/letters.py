"""PIN letters on DynamoDB.

- A letter (or order): pk `letter#<letter id>`, sk `letter`; found by its id, and through the sparse
  index ByPerson (`person`, `ordered_at`) among the person's letters. A refused order names its person
  in `refused_for` instead, out of the index.
- A person's letter ledger: pk `person#<person key>`, sk `letters`: the recent accepted orders that
  count against the quota (`orders`, when each was accepted; `placed`, when each was placed), a version
  for optimistic locking, and the active letter.

Every change that guards a rule (the quota, single codes per letter, one active letter) is a
conditional write, so that concurrent requests or retried tasks cannot break it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from minid.adapters.aws_errors import Busy, Contended
from minid.adapters.dynamodb import (
    cancellation_reasons,
    conditional_check_failed,
    from_item,
    iso,
    time_or_none,
    to_item,
    update_if,
    write_together_past_transactions,
)
from minid.adapters.events import recorded_with
from minid.deadline import exempt
from minid.domain.contacts import Language
from minid.domain.events import SecurityEvent
from minid.domain.keys import PersonKey
from minid.domain.letters.model import (
    MAX_PIN_FAILURES_PER_LETTER,
    LetterStanding,
    LetterStatus,
    PinLetter,
    PrintDocument,
    PrintStanding,
    RecipientOutcome,
)
from minid.domain.letters.ports import LedgerPointers

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BY_PERSON_INDEX = "ByPerson"
NO_LETTER = "00000000-0000-4000-8000-000000000000"  # read in place of a letter that does not exist
# A refused order's item, and one failed before its recipient was settled, is kept past the 90 days Step
# Functions holds a closed execution's name: an Idempotency-Key used again after its once-only day finds the
# order, and is made a new one (ordering.py), rather than start a workflow under a name taken (refused, it
# would answer 202 and order nothing). (An order's item is first kept 7 days: ordering.py.)
REFUSED_ORDER_KEPT_FOR = timedelta(days=91)
REFUSED_FOR = "refused_for"  # a refused order's person: not `person`, which would keep it in ByPerson
_LETTER_SK = "letter"
_LEDGER_SK = "letters"


def letter_key(letter_id: str) -> dict[str, Any]:
    return to_item({"pk": f"letter#{letter_id}", "sk": _LETTER_SK})


def ledger_key(person: PersonKey) -> dict[str, Any]:
    return to_item({"pk": f"person#{person}", "sk": _LEDGER_SK})


def latest_letter_id(ledger: dict[str, Any]) -> str | None:
    """The letter the person was posted last (blocked since, or not), from their ledger; `active` for a
    ledger written before `latest` was."""
    latest = ledger.get("latest") or ledger.get("active")
    return str(latest) if latest else None


def letter_standing(ledger: dict[str, Any], latest: PinLetter | None) -> LetterStanding:
    """From the person's ledger, and the letter it names as posted last (read with it)."""
    active = latest is not None and ledger.get("active") == latest.letter_id
    return LetterStanding(latest, active, frozenset(int(i) for i in ledger.get("used_codes", ())))


def with_codes_used(update: dict[str, Any], indices: Collection[int]) -> dict[str, Any]:
    """An update of the person's ledger that also keeps these code numbers as used (over all letters)."""
    if not indices:
        return update
    expression = update.get("UpdateExpression", "")
    values = dict(update.get("ExpressionAttributeValues", {})) | to_item({":used": {int(i) for i in indices}})
    return update | {
        "UpdateExpression": f"{expression} ADD used_codes :used".strip(),
        "ExpressionAttributeValues": values,
    }


BLOCK_ROUNDS = 3  # a block's tries while other requests write the letter


class DynamoDbPinLetters:
    def __init__(self, client: DynamoDBClient, table_name: str, events_table: str | None = None) -> None:
        self._client = client
        self._table = table_name
        self._events = events_table  # where a block and an activation write the events that tell them

    # ------------------------------------------------------------------ orders and letters
    def create_order(self, letter: PinLetter, expires_at: datetime) -> datetime | None:
        item = {
            "pk": f"letter#{letter.letter_id}",
            "sk": _LETTER_SK,
            "letter_id": letter.letter_id,
            "person": letter.person,
            "status": letter.status.value,
            "ordered_at": iso(letter.ordered_at),
            "expires_at": int(expires_at.timestamp()),
        }
        try:
            self._client.put_item(
                TableName=self._table,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:  # the same order again (its id follows from its idempotency key)
            if not conditional_check_failed(error):
                raise
            old: Any = error.response.get("Item", {})  # botocore's ClientError types no Item
            there = from_item(old)
            return datetime.fromisoformat(there["ordered_at"]) if "ordered_at" in there else letter.ordered_at
        return None

    def discard_order(self, letter_id: str) -> None:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=letter_key(letter_id),
                ConditionExpression="#status = :ordered",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_item({":ordered": LetterStatus.ORDERED.value}),
            )
        except ClientError as error:
            if not conditional_check_failed(error):
                raise

    def get(self, letter_id: str) -> PinLetter | None:
        item = self._client.get_item(TableName=self._table, Key=letter_key(letter_id), ConsistentRead=True).get("Item")
        return letter_from(from_item(item)) if item else None

    def print_standing(self, letter_id: str) -> PrintStanding | None:
        # these attributes alone (the print callback's role is let read no others): the key projected too,
        # for a letter with none of the rest is still a letter
        item = self._client.get_item(
            TableName=self._table,
            Key=letter_key(letter_id),
            ConsistentRead=True,
            ProjectionExpression="pk, #status, document, dispatched_at, reported",
            ExpressionAttributeNames={"#status": "status"},
        ).get("Item")
        if not item:
            return None
        values = from_item(item)
        return PrintStanding(
            status=LetterStatus(values["status"]),
            printed="document" in values,
            dispatched_at=time_or_none(values.get("dispatched_at")),
            reported=values.get("reported"),
        )

    def standing(self, person: PersonKey) -> LetterStanding:
        """Two reads for every person, with a letter or not, so that the time tells nothing."""
        item = self._client.get_item(TableName=self._table, Key=ledger_key(person), ConsistentRead=True).get("Item")
        ledger = from_item(item) if item else {}
        return letter_standing(ledger, self.get(latest_letter_id(ledger) or NO_LETTER))

    def record_pin_failure(self, letter_id: str, counted: bool = True) -> int:
        with exempt():  # a wrong guess judged is counted whatever the time: refused, it would go uncounted
            response = self._client.update_item(
                TableName=self._table,
                Key=letter_key(letter_id),
                UpdateExpression="ADD pin_failures :one",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=to_item({":one": 1 if counted else 0}),
                ReturnValues="UPDATED_NEW",
            )
        return int(from_item(response.get("Attributes", {})).get("pin_failures", 0))

    def record_pin_failure_with(self, letter_id: str, person: PersonKey, failure: SecurityEvent, below: int) -> bool:
        # False, too, when others' transactions kept it from being written however often it was made again:
        # nothing written, the caller writes the two on their own (a guess must not go uncounted for it)
        with exempt(), contextlib.suppress(Contended):  # as `record_pin_failure`: counted whatever the time
            return write_together_past_transactions(
                self._client,
                [
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": letter_key(letter_id),
                            "UpdateExpression": "ADD pin_failures :one",
                            "ConditionExpression": "#status = :posted AND "
                            "(attribute_not_exists(pin_failures) OR pin_failures < :last)",
                            "ExpressionAttributeNames": {"#status": "status"},
                            "ExpressionAttributeValues": to_item(
                                {":one": 1, ":posted": LetterStatus.DISPATCHED.value, ":last": below - 1}
                            ),
                        }
                    },
                    *self._recorded(person, [failure]),
                ],
            )
        return False

    def letters_of(self, person: PersonKey) -> list[PinLetter]:
        letters: list[PinLetter] = []
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            IndexName=BY_PERSON_INDEX,
            KeyConditionExpression="person = :person",
            ExpressionAttributeValues=to_item({":person": person}),
            ScanIndexForward=False,
        ):
            letters.extend(letter_from(from_item(item)) for item in page.get("Items", []))
        return letters

    # ------------------------------------------------------------------ the quota
    def release_quota(self, person: PersonKey, letter_id: str) -> None:
        update = {
            "TableName": self._table,
            "Key": ledger_key(person),
            "UpdateExpression": "REMOVE orders.#letter ADD version :one",  # a reservation read before writes again
            # released already (a retry), or never reserved: nothing to do (and no orders map to remove from)
            "ConditionExpression": "attribute_exists(orders.#letter)",
            "ExpressionAttributeNames": {"#letter": letter_id},
            "ExpressionAttributeValues": to_item({":one": 1}),
        }
        update_if(self._client, update)

    # ------------------------------------------------------------------ the workflow's steps
    def attach_codes(self, letter_id: str, code_hashes: Mapping[int, str], document: PrintDocument) -> bool:
        update = self._letter_update(
            letter_id,
            "SET codes = :codes, used = :none, #document = :document, #status = :printing",
            {
                ":codes": {str(index): digest for index, digest in code_hashes.items()},
                ":none": {},
                ":document": {
                    "bucket": document.bucket,
                    "pdf": document.pdf,
                    "manifest": document.manifest,
                },
                ":printing": LetterStatus.PRINTING.value,
                ":ordered": LetterStatus.ORDERED.value,
                ":accepted": RecipientOutcome.ACCEPTED.value,
            },
            condition="attribute_not_exists(codes) AND #status = :ordered AND outcome = :accepted",
            names={"#status": "status", "#document": "document"},
        )
        try:
            self._client.update_item(**update)
        except ClientError as error:
            if conditional_check_failed(error):
                return False
            raise
        return True

    def pointers(self, person: PersonKey) -> LedgerPointers:
        item = self._client.get_item(TableName=self._table, Key=ledger_key(person), ConsistentRead=True).get("Item")
        ledger = from_item(item) if item else {}
        active, latest = ledger.get("active"), ledger.get("latest")
        return LedgerPointers(active=str(active) if active else None, latest=str(latest) if latest else None)

    def record_dispatch(
        self,
        letter: PinLetter,
        at: datetime,
        *,
        activate: bool,
        supersede: Sequence[str] = (),
        pointers_were: LedgerPointers | None = None,
        used: Collection[int] = (),
        events: Sequence[SecurityEvent] = (),
    ) -> bool:
        names = {"#status": "status"}
        if not activate:
            status = LetterStatus.BLOCKED if letter.status is LetterStatus.BLOCKED else LetterStatus.SUPERSEDED
            update = {
                "TableName": self._table,
                "Key": letter_key(letter.letter_id),
                "UpdateExpression": "SET #status = :status, dispatched_at = :at",
                # a blocked letter's posting is written once (another run of the task may have written it)
                "ConditionExpression": "#status = :expected AND attribute_not_exists(dispatched_at)",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": to_item(
                    {":status": status.value, ":at": iso(at), ":expected": letter.status.value}
                ),
            }
            return update_if(self._client, update)
        # the pointers as read: another letter of the person's activated meanwhile makes this one read again,
        # though it was blocked since (`active` gone again, `latest` not)
        were = pointers_were or LedgerPointers()
        pointer = " AND ".join(
            (
                "active = :was" if were.active is not None else "attribute_not_exists(active)",
                "latest = :latest_was" if were.latest is not None else "attribute_not_exists(latest)",
            )
        )
        read = ({":was": were.active} if were.active else {}) | ({":latest_was": were.latest} if were.latest else {})
        items: list[Any] = [  # as the block's: plain dicts, some built by with_codes_used
            {
                "Update": {
                    "TableName": self._table,
                    "Key": letter_key(letter.letter_id),
                    "UpdateExpression": "SET #status = :dispatched, dispatched_at = :at",
                    "ConditionExpression": "#status = :printing",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": to_item(
                        {
                            ":dispatched": LetterStatus.DISPATCHED.value,
                            ":printing": LetterStatus.PRINTING.value,
                            ":at": iso(at),
                        }
                    ),
                }
            },
            {
                "Update": with_codes_used(
                    {
                        "TableName": self._table,
                        "Key": ledger_key(letter.person),
                        # `latest` stays when the letter is blocked (which removes `active`): standing()
                        "UpdateExpression": "SET active = :letter, latest = :letter",
                        "ConditionExpression": pointer,
                        "ExpressionAttributeValues": to_item({":letter": letter.letter_id} | read),
                    },
                    used,
                )
            },
        ]
        items += [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": letter_key(older),
                    "UpdateExpression": "SET #status = :superseded, superseded_at = :at",
                    "ConditionExpression": "#status = :dispatched",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": to_item(
                        {
                            ":superseded": LetterStatus.SUPERSEDED.value,
                            ":dispatched": LetterStatus.DISPATCHED.value,
                            ":at": iso(at),
                        }
                    ),
                }
            }
            for older in supersede
        ]
        items += self._recorded(letter.person, events)
        try:
            self._client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if conditional_check_failed(error):
                return False
            raise
        return True

    def record_report(self, letter_id: str, status: str) -> None:
        update = {
            "TableName": self._table,
            "Key": letter_key(letter_id),
            "UpdateExpression": "SET reported = :status",
            "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(reported)",
            "ExpressionAttributeValues": to_item({":status": status}),
        }
        update_if(self._client, update)  # one recorded already: the first report stands

    def mark_failed(self, letter: PinLetter, at: datetime, error: str, events: Sequence[SecurityEvent] = ()) -> bool:
        expression = "SET #status = :failed, failed_at = :at, failure = :error"
        values: dict[str, Any] = {
            ":failed": LetterStatus.FAILED.value,
            ":at": iso(at),
            ":error": error[:200],
            ":ordered": LetterStatus.ORDERED.value,
            ":printing": LetterStatus.PRINTING.value,
        }
        # held on the outcome as read, which decides its event and its notice: a check still running (one the
        # workflow gave up on) that settles meanwhile is read again, and judged as it then is
        condition, names = "#status IN (:ordered, :printing)", {"#status": "status"}
        if letter.outcome is None:  # failed before its recipient was settled: it still has an order's 7 days
            expression += ", expires_at = :kept"
            values[":kept"] = int((letter.ordered_at + REFUSED_ORDER_KEPT_FOR).timestamp())
            condition += " AND attribute_not_exists(outcome)"
        else:
            condition += " AND outcome = :outcome"
            values[":outcome"] = letter.outcome.value
        update = self._letter_update(letter.letter_id, expression, values, condition=condition, names=names)
        try:
            if events:  # with its events: a crash after the failure's write would have lost them
                items: list[Any] = [{"Update": update}, *self._recorded(letter.person, events)]  # (as the block's)
                self._client.transact_write_items(TransactItems=items)
            else:
                self._client.update_item(**update)
        except ClientError as failure:
            if not conditional_check_failed(failure):
                raise
            return False
        return True

    def block(
        self,
        person: PersonKey,
        letter_id: str,
        at: datetime,
        events: Sequence[SecurityEvent],
        used: Collection[int] = (),
    ) -> bool:
        blockable = (LetterStatus.ORDERED, LetterStatus.PRINTING, LetterStatus.DISPATCHED)
        items: list[Any] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": letter_key(letter_id),
                    "UpdateExpression": "SET #status = :blocked, blocked_at = :at",
                    "ConditionExpression": "#status IN (:s0, :s1, :s2)",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": to_item(
                        {":blocked": LetterStatus.BLOCKED.value, ":at": iso(at)}
                        | {f":s{i}": status.value for i, status in enumerate(blockable)}
                    ),
                }
            },
            {  # the active letter's pointer (read only together with the letter's status: no condition needed)
                "Update": with_codes_used(
                    {"TableName": self._table, "Key": ledger_key(person), "UpdateExpression": "REMOVE active"}, used
                )
            },
            *self._recorded(person, events),
        ]
        for _ in range(BLOCK_ROUNDS):
            if cancellation_reasons(self._client, items) is None:
                return True
            # not made: blocked meanwhile, or its state moved on (superseded, failed), or another request's
            # transaction was writing it (a second click, another wrong PIN code): read again
            letter = self.get(letter_id)
            if letter is None or letter.status not in blockable:
                return False
        raise Busy("the letter was being written by others at every try")

    # ------------------------------------------------------------------ helpers
    def _recorded(self, person: PersonKey, events: Sequence[SecurityEvent]) -> list[dict[str, Any]]:
        """The items that write `events` with a block's or an activation's own, in their transaction."""
        if not events:
            return []
        if self._events is None:
            raise RuntimeError("a block or an activation writes its events: the security events table is needed")
        return recorded_with(self._events, person, events)

    def _letter_update(
        self,
        letter_id: str,
        expression: str,
        values: Mapping[str, Any],
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """An update of the letter's item (a plain write's, or a transaction's), while the letter is there."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": letter_key(letter_id),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": to_item(values),
        }
        if condition:
            kwargs["ConditionExpression"] = f"attribute_exists(pk) AND ({condition})"
        if names:
            kwargs["ExpressionAttributeNames"] = dict(names)
        return kwargs


def pin_codes_used(
    table: str, person: PersonKey, letter_id: str, indices: Sequence[int], at: datetime
) -> list[dict[str, Any]]:
    """Updates for a transaction: the letter's codes used up, if the letter is the person's posted one,
    not guessed out (its block may not be written yet), and none of them was used before (a code works
    once), and their numbers kept with the person's."""
    names = {f"#i{n}": str(index) for n, index in enumerate(indices)}
    letter = {
        "TableName": table,
        "Key": letter_key(letter_id),
        "UpdateExpression": "SET " + ", ".join(f"used.{name} = :at" for name in names),
        "ConditionExpression": "#status = :dispatched "
        "AND (attribute_not_exists(pin_failures) OR pin_failures < :guesses) AND "
        + " AND ".join(f"attribute_not_exists(used.{name})" for name in names),
        "ExpressionAttributeNames": {"#status": "status", **names},
        "ExpressionAttributeValues": to_item(
            {
                ":at": iso(at),
                ":dispatched": LetterStatus.DISPATCHED.value,
                ":guesses": MAX_PIN_FAILURES_PER_LETTER,
            }
        ),
    }
    ledger = with_codes_used({"TableName": table, "Key": ledger_key(person)}, indices)
    return [{"Update": letter}, {"Update": ledger}]


def letter_from(values: dict[str, Any]) -> PinLetter:
    document = values.get("document")
    return PinLetter(
        letter_id=values["letter_id"],
        person=PersonKey(values["person"] if "person" in values else values[REFUSED_FOR]),
        status=LetterStatus(values["status"]),
        ordered_at=datetime.fromisoformat(values["ordered_at"]),
        outcome=RecipientOutcome(values["outcome"]) if "outcome" in values else None,
        language=Language(values["language"]) if "language" in values else None,
        code_hashes={int(index): digest for index, digest in values.get("codes", {}).items()},
        used={int(index): datetime.fromisoformat(at) for index, at in values.get("used", {}).items()},
        document=PrintDocument(document["bucket"], document["pdf"], document["manifest"]) if document else None,
        dispatched_at=datetime.fromisoformat(values["dispatched_at"]) if "dispatched_at" in values else None,
        reported=values.get("reported"),
        pin_failures=int(values.get("pin_failures", 0)),
    )

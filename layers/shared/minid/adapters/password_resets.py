"""Password resets on DynamoDB (the challenges table, pk `reset#<id>`, gone after their TTL), and the
transaction that completes one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from minid.adapters.accounts import account_from, all_of, epoch_as_read, new_password
from minid.adapters.challenges import Challenges
from minid.adapters.contacts import contact_record
from minid.adapters.dynamodb import (
    batch_get,
    iso,
    iso_or_none,
    time_or_none,
    to_item,
    write_together_past_transactions,
)
from minid.adapters.events import recorded_with
from minid.adapters.letters import (
    NO_LETTER,
    DynamoDbPinLetters,
    latest_letter_id,
    ledger_key,
    letter_from,
    letter_key,
    letter_standing,
    pin_codes_used,
)
from minid.adapters.population import person_from
from minid.domain.events import SecurityEvent
from minid.domain.keys import PersonKey
from minid.domain.notices import Channel
from minid.domain.password_reset import PasswordReset, ResetStanding, ResetStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoDbPasswordResets(Challenges):
    prefix = "reset"
    pending = ResetStatus.PENDING.value

    def create(self, reset: PasswordReset) -> None:
        self._put(
            reset.reset_id,
            {
                "reset_id": reset.reset_id,
                "person": reset.person,
                "letter_id": reset.letter_id,
                "pin_index": reset.pin_index,
                "channel": reset.channel.value,
                "created_at": iso(reset.created_at),
                "expires_at": int(reset.expires_at.timestamp()),
                "status": reset.status.value,
                "tries": 0,
                "code_hash": reset.code_hash,
                "session_epoch": reset.session_epoch,
                "mobile_verified_at": iso_or_none(reset.mobile_verified_at),
                "email_verified_at": iso_or_none(reset.email_verified_at),
            },
        )

    def claim_try(self, reset_id: str, limit: int, now: datetime) -> PasswordReset | None:
        values = self._counted_try(reset_id, limit, now)
        return _reset(values) if values is not None else None

    def get(self, reset_id: str) -> PasswordReset | None:
        values = self._get(reset_id)
        return _reset(values) if values is not None else None

    def claim_retry(self, reset_id: str, limit: int, now: datetime) -> PasswordReset | None:
        values = {":one": 1, ":limit": limit, ":done": ResetStatus.DONE.value, ":now": int(now.timestamp())}
        condition = "#status = :done AND expires_at > :now AND (attribute_not_exists(retries) OR retries < :limit)"
        retried = self._updated(reset_id, "ADD retries :one", values, condition)
        return _reset(retried) if retried is not None else None


def _reset(values: Mapping[str, Any]) -> PasswordReset:
    epoch = values.get("session_epoch")
    return PasswordReset(
        reset_id=values["reset_id"],
        person=PersonKey(values["person"]) if values.get("person") else None,
        letter_id=values.get("letter_id"),
        pin_index=int(values["pin_index"]),
        channel=Channel(values["channel"]),
        created_at=datetime.fromisoformat(values["created_at"]),
        expires_at=datetime.fromtimestamp(int(values["expires_at"]), tz=UTC),
        status=ResetStatus(values["status"]),
        tries=int(values.get("tries", 0)),
        claims=int(values.get("claims", 0)),
        code_hash=values.get("code_hash"),
        session_epoch=int(epoch) if epoch is not None else None,
        mobile_verified_at=time_or_none(values.get("mobile_verified_at")),
        email_verified_at=time_or_none(values.get("email_verified_at")),
    )


class DynamoDbResetReads:
    """A reset's reads in one BatchGetItem, strongly consistent (and, at the start, the letter its ledger
    names: a second read for everyone)."""

    def __init__(
        self,
        client: DynamoDBClient,
        *,
        users_table: str,
        contacts_table: str,
        letters_table: str,
        population_table: str,
    ) -> None:
        self._client = client
        self._users = users_table
        self._contacts = contacts_table
        self._letters = DynamoDbPinLetters(client, letters_table)
        self._letters_table = letters_table
        self._population = population_table

    def for_start(self, person: PersonKey) -> ResetStanding:
        key, ledger = to_item({"pk": person}), ledger_key(person)
        found = batch_get(
            self._client,
            [(self._users, key), (self._contacts, key), (self._letters_table, ledger), (self._population, key)],
        )
        account, record = found.get(self._users, key), found.get(self._contacts, key)
        registered = found.get(self._population, key)
        ledger_values = found.get(self._letters_table, ledger) or {}
        latest = self._letters.get(latest_letter_id(ledger_values) or NO_LETTER)  # read for everyone alike
        return ResetStanding(
            account=account_from(account) if account else None,
            letter=None,
            contact=contact_record(record) if record else None,
            person=person_from(registered) if registered else None,
            letters=letter_standing(ledger_values, latest),
        )

    def for_completion(self, reset: PasswordReset) -> ResetStanding:
        letter = letter_key(reset.letter_id or NO_LETTER)
        key = to_item({"pk": reset.person}) if reset.person is not None else None  # None: a decoy
        person_keys = [(self._users, key), (self._population, key)] if key else []
        found = batch_get(self._client, [(self._letters_table, letter), *person_keys])
        values = found.get(self._letters_table, letter)
        account = found.get(self._users, key) if key else None
        person = found.get(self._population, key) if key else None
        return ResetStanding(
            account=account_from(account) if account else None,
            letter=letter_from(values) if values else None,
            person=person_from(person) if person else None,
        )


class DynamoDbResetCompletion:
    """One transaction: the PIN code used up, the new password (sessions ended, lock lifted), the reset
    done, and its events; held on the account's epoch and the contacts the code went to, as at the start."""

    def __init__(
        self,
        client: DynamoDBClient,
        *,
        users_table: str,
        letters_table: str,
        challenges_table: str,
        events_table: str,
        contacts_table: str,
    ) -> None:
        self._client = client
        self._users = users_table
        self._contacts = contacts_table
        self._letters = letters_table
        self._challenges = challenges_table
        self._events = events_table

    def complete(
        self,
        reset: PasswordReset,
        password_hash: str,
        now: datetime,
        events: Sequence[SecurityEvent],
        retried_until: datetime,
    ) -> bool:
        if reset.person is None or reset.letter_id is None:
            return False
        expression, values = new_password(password_hash, now)
        held = ["attribute_exists(pk)"]
        if reset.session_epoch is not None:  # None: a reset stored before it was kept
            held.append(epoch_as_read(reset.session_epoch))
            values[":epoch"] = reset.session_epoch
        password_set = {
            "TableName": self._users,
            "Key": to_item({"pk": reset.person}),
            "UpdateExpression": expression,
            "ConditionExpression": all_of(held),
            "ExpressionAttributeValues": to_item(values),
        }
        done = {
            "TableName": self._challenges,
            "Key": to_item({"pk": f"reset#{reset.reset_id}"}),
            # the code's hash stays (until the item expires): a completion retried gets its answer again
            "UpdateExpression": "SET #status = :done, expires_at = :retried_until",
            "ConditionExpression": "#status = :pending",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": to_item(
                {":done": "done", ":pending": "pending", ":retried_until": int(retried_until.timestamp())}
            ),
        }
        # the account and the letter's ledger are others' to write too (a login's attempt, a letter ordered):
        # a transaction of theirs in flight is waited out, not answered 503
        return write_together_past_transactions(
            self._client,
            [
                *pin_codes_used(self._letters, reset.person, reset.letter_id, [reset.pin_index], now),
                {"Update": password_set},
                {"Update": done},
                *recorded_with(self._events, reset.person, events),
                *self._contacts_as_verified(reset),
            ],
        )

    def _contacts_as_verified(self, reset: PasswordReset) -> list[dict[str, Any]]:
        """The item holding that each contact the code went to is verified as it was at the start (one
        replaced or removed meanwhile is verified anew, or not at all); none for a reset stored without."""
        verified = {"mobile_verified_at": reset.mobile_verified_at, "email_verified_at": reset.email_verified_at}
        held = {name: iso(at) for name, at in verified.items() if at is not None}
        if not held:
            return []
        check = {
            "TableName": self._contacts,
            "Key": to_item({"pk": reset.person}),
            "ConditionExpression": " AND ".join(f"{name} = :{name}" for name in held),
            "ExpressionAttributeValues": to_item({f":{name}": at for name, at in held.items()}),
        }
        return [{"ConditionCheck": check}]

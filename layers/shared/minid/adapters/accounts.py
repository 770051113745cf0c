"""User accounts on DynamoDB (the users table, pk the person key), and activating one.

Every counter and credential changes by a conditional update: concurrent requests cannot push the
failure count past the threshold, accept a TOTP step twice, or lose a lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from minid.adapters.contacts import contact_item
from minid.adapters.dynamodb import conditional_check_failed, from_item, iso, to_item
from minid.adapters.enrolments import enrolment_key
from minid.domain.accounts import AccountStatus, LockoutPolicy, UserAccount
from minid.domain.contacts import ContactRecord
from minid.domain.enrolment import Enrolment, EnrolmentStatus
from minid.domain.keys import PersonKey
from minid.domain.letters.model import LetterStatus
from minid.domain.password_reset import PasswordReset

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def account_values(account: UserAccount) -> dict[str, Any]:
    """What an (re-)enrolment writes: the account anew, with no failures, no lock and no TOTP."""
    return {
        "pk": account.person,
        "status": account.status.value,
        "password_hash": account.password_hash,
        "created_at": iso(account.created_at),
        "password_changed_at": iso(account.password_changed_at),
        "session_epoch": account.session_epoch,
        "failed_logins": 0,
    }


def account_from(values: dict[str, Any]) -> UserAccount:
    locked_until = values.get("locked_until")
    return UserAccount(
        person=PersonKey(values["pk"]),
        status=AccountStatus(values["status"]),
        password_hash=values["password_hash"],
        created_at=datetime.fromisoformat(values["created_at"]),
        password_changed_at=datetime.fromisoformat(values["password_changed_at"]),
        session_epoch=int(values.get("session_epoch", 0)),
        failed_logins=int(values.get("failed_logins", 0)),
        locked_until=datetime.fromisoformat(locked_until) if locked_until else None,
        totp_secret=values.get("totp_secret"),
        totp_pending=values.get("totp_pending"),
        totp_last_step=int(values.get("totp_last_step", 0)),
    )


class DynamoDbAccounts:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def find(self, person: PersonKey) -> UserAccount | None:
        item = self._client.get_item(TableName=self._table, Key=to_item({"pk": person}), ConsistentRead=True).get(
            "Item"
        )
        return account_from(from_item(item)) if item else None

    def _update(
        self,
        person: PersonKey,
        expression: str,
        values: Mapping[str, Any] | None = None,
        condition: str = "attribute_exists(pk)",
    ) -> bool:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": to_item({"pk": person}),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
        }
        if values:
            kwargs["ExpressionAttributeValues"] = to_item(values)
        try:
            self._client.update_item(**kwargs)
        except ClientError as error:
            if conditional_check_failed(error):
                return False
            raise
        return True

    # ------------------------------------------------------------------ failures and locks
    def reserve_attempt(self, person: PersonKey, policy: LockoutPolicy, now: datetime) -> bool:
        return self._update(
            person,
            "ADD failed_logins :one",
            {":one": 1, ":threshold": policy.threshold, ":now": iso(now)},
            "attribute_exists(pk) AND (attribute_not_exists(failed_logins) OR failed_logins < :threshold) "
            "AND (attribute_not_exists(locked_until) OR locked_until <= :now)",
        )

    def release_attempt(self, person: PersonKey) -> None:
        self._update(person, "ADD failed_logins :minus", {":minus": -1, ":zero": 0}, "failed_logins > :zero")

    def record_success(self, person: PersonKey) -> None:
        self._update(person, "SET failed_logins = :zero", {":zero": 0})

    def lock(self, person: PersonKey, policy: LockoutPolicy, now: datetime) -> bool:
        return self._update(
            person,
            "SET locked_until = :until, failed_logins = :zero",
            {":until": iso(now + policy.duration), ":zero": 0, ":threshold": policy.threshold, ":now": iso(now)},
            "failed_logins >= :threshold AND (attribute_not_exists(locked_until) OR locked_until <= :now)",
        )

    def unlock_expired(self, person: PersonKey, now: datetime) -> bool:
        return self._update(person, "REMOVE locked_until", {":now": iso(now)}, "locked_until <= :now")

    # ------------------------------------------------------------------ the password
    def set_password(self, person: PersonKey, password_hash: str, at: datetime) -> None:
        self._update(
            person,
            "SET password_hash = :hash, password_changed_at = :at, failed_logins = :zero "
            "ADD session_epoch :one REMOVE locked_until",
            {":hash": password_hash, ":at": iso(at), ":zero": 0, ":one": 1},
        )

    def rehash_password(self, person: PersonKey, old_hash: str, new_hash: str) -> None:
        self._update(person, "SET password_hash = :new", {":new": new_hash, ":old": old_hash}, "password_hash = :old")

    # ------------------------------------------------------------------ the authenticator app
    def set_totp_pending(self, person: PersonKey, sealed_secret: str) -> None:
        self._update(person, "SET totp_pending = :secret", {":secret": sealed_secret})

    def confirm_totp(self, person: PersonKey, sealed_secret: str, step: int) -> bool:
        return self._update(
            person,
            "SET totp_secret = :secret, totp_last_step = :step REMOVE totp_pending",
            {":secret": sealed_secret, ":step": step},
            "totp_pending = :secret",
        )

    def remove_totp(self, person: PersonKey) -> bool:
        return self._update(
            person, "REMOVE totp_secret, totp_pending, totp_last_step", None, "attribute_exists(totp_secret)"
        )

    def use_totp_step(self, person: PersonKey, step: int) -> bool:
        return self._update(
            person,
            "SET totp_last_step = :step",
            {":step": step},
            "attribute_exists(totp_secret) AND (attribute_not_exists(totp_last_step) OR totp_last_step < :step)",
        )


class DynamoDbAccountActivation:
    """One transaction over the users, contact register, PIN letters and challenges tables."""

    def __init__(
        self,
        client: DynamoDBClient,
        *,
        users_table: str,
        contacts_table: str,
        letters_table: str,
        challenges_table: str,
    ) -> None:
        self._client = client
        self._users = users_table
        self._contacts = contacts_table
        self._letters = letters_table
        self._challenges = challenges_table

    def activate(self, enrolment: Enrolment, account: UserAccount, contact: ContactRecord, now: datetime) -> bool:
        if enrolment.person is None or enrolment.letter_id is None:
            return False
        first, second = enrolment.pin_indices
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": self._users, "Item": to_item(account_values(account))}},
                    {"Put": {"TableName": self._contacts, "Item": contact_item(enrolment.person, contact)}},
                    {
                        "Update": {
                            "TableName": self._letters,
                            "Key": to_item({"pk": f"letter#{enrolment.letter_id}", "sk": "letter"}),
                            "UpdateExpression": "SET used.#a = :now, used.#b = :now",
                            "ConditionExpression": "#status = :dispatched AND attribute_not_exists(used.#a) "
                            "AND attribute_not_exists(used.#b)",
                            "ExpressionAttributeNames": {"#status": "status", "#a": str(first), "#b": str(second)},
                            "ExpressionAttributeValues": to_item(
                                {":now": iso(now), ":dispatched": LetterStatus.DISPATCHED.value}
                            ),
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._challenges,
                            "Key": enrolment_key(enrolment.enrolment_id),
                            "UpdateExpression": "SET #status = :active REMOVE password_hash, codes",
                            "ConditionExpression": "#status = :verifying",
                            "ExpressionAttributeNames": {"#status": "status"},
                            "ExpressionAttributeValues": to_item(
                                {":active": EnrolmentStatus.ACTIVE.value, ":verifying": EnrolmentStatus.VERIFYING.value}
                            ),
                        }
                    },
                ]
            )
        except ClientError as error:
            if conditional_check_failed(error):
                return False
            raise
        return True


class DynamoDbResetCompletion:
    """One transaction: the PIN code used up, the new password (sessions ended, lock lifted), the reset done."""

    def __init__(self, client: DynamoDBClient, *, users_table: str, letters_table: str, challenges_table: str) -> None:
        self._client = client
        self._users = users_table
        self._letters = letters_table
        self._challenges = challenges_table

    def complete(self, reset: PasswordReset, password_hash: str, now: datetime) -> bool:
        if reset.person is None or reset.letter_id is None:
            return False
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self._letters,
                            "Key": to_item({"pk": f"letter#{reset.letter_id}", "sk": "letter"}),
                            "UpdateExpression": "SET used.#index = :now",
                            "ConditionExpression": "#status = :dispatched AND attribute_not_exists(used.#index)",
                            "ExpressionAttributeNames": {"#status": "status", "#index": str(reset.pin_index)},
                            "ExpressionAttributeValues": to_item(
                                {":now": iso(now), ":dispatched": LetterStatus.DISPATCHED.value}
                            ),
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._users,
                            "Key": to_item({"pk": reset.person}),
                            "UpdateExpression": "SET password_hash = :hash, password_changed_at = :now, "
                            "failed_logins = :zero ADD session_epoch :one REMOVE locked_until",
                            "ConditionExpression": "attribute_exists(pk)",
                            "ExpressionAttributeValues": to_item(
                                {":hash": password_hash, ":now": iso(now), ":zero": 0, ":one": 1}
                            ),
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._challenges,
                            "Key": to_item({"pk": f"reset#{reset.reset_id}"}),
                            "UpdateExpression": "SET #status = :done REMOVE code_hash",
                            "ConditionExpression": "#status = :pending",
                            "ExpressionAttributeNames": {"#status": "status"},
                            "ExpressionAttributeValues": to_item({":done": "done", ":pending": "pending"}),
                        }
                    },
                ]
            )
        except ClientError as error:
            if conditional_check_failed(error):
                return False
            raise
        return True

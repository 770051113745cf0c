"""User accounts on DynamoDB (the users table, pk the person key), and activating one."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from minid.adapters.contacts import contact_item
from minid.adapters.dynamodb import conditional_check_failed, from_item, iso, to_item
from minid.adapters.enrolments import enrolment_key
from minid.domain.accounts import AccountStatus, UserAccount
from minid.domain.contacts import ContactRecord
from minid.domain.enrolment import Enrolment, EnrolmentStatus
from minid.domain.keys import PersonKey
from minid.domain.letters.model import LetterStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def account_item(account: UserAccount) -> dict[str, Any]:
    return to_item(
        {
            "pk": account.person,
            "status": account.status.value,
            "password_hash": account.password_hash,
            "created_at": iso(account.created_at),
            "password_changed_at": iso(account.password_changed_at),
            "session_epoch": account.session_epoch,
        }
    )


def account_from(values: dict[str, Any]) -> UserAccount:
    return UserAccount(
        person=PersonKey(values["pk"]),
        status=AccountStatus(values["status"]),
        password_hash=values["password_hash"],
        created_at=datetime.fromisoformat(values["created_at"]),
        password_changed_at=datetime.fromisoformat(values["password_changed_at"]),
        session_epoch=int(values.get("session_epoch", 0)),
    )


class DynamoDbUsers:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def find(self, person: PersonKey) -> UserAccount | None:
        item = self._client.get_item(TableName=self._table, Key=to_item({"pk": person}), ConsistentRead=True).get(
            "Item"
        )
        return account_from(from_item(item)) if item else None


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
                    {"Put": {"TableName": self._users, "Item": account_item(account)}},
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

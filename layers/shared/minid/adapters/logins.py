"""Login attempts on DynamoDB (the challenges table, pk `login#<id>`, gone after their TTL), and the
transaction that completes a login.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from minid.adapters.challenges import Challenges
from minid.adapters.dynamodb import iso, to_item, unheld_conditions, write_together
from minid.adapters.events import recorded_with
from minid.adapters.letters import pin_codes_used
from minid.adapters.rate_limits import counted
from minid.adapters.sessions import session_item
from minid.domain.events import SecurityEvent
from minid.domain.keys import PersonKey
from minid.domain.login import FactorUse, LoginAttempt, LoginStatus, SecondFactor
from minid.domain.rate_limits import Hit
from minid.domain.sessions import Session

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoDbLoginAttempts(Challenges):
    prefix = "login"
    pending = LoginStatus.PENDING.value

    def __init__(self, client: DynamoDBClient, table_name: str, *, users_table: str) -> None:
        super().__init__(client, table_name)
        self._users = users_table

    def begin(self, attempt: LoginAttempt, code_sent: Hit | None = None) -> bool:
        item = {
            "login_id": attempt.login_id,
            "person": attempt.person,
            "second_factor": attempt.second_factor.value,
            "identity": attempt.identity_sealed,
            "created_at": iso(attempt.created_at),
            "expires_at": int(attempt.expires_at.timestamp()),
            "status": attempt.status.value,
            "tries": 0,
            "resends": 0,
            "code_hash": attempt.code_hash,
            "codes_sent_at": iso(attempt.codes_sent_at) if attempt.codes_sent_at else None,
            "letter_id": attempt.letter_id,
            "pin_index": attempt.pin_index,
        }
        stored = {
            "TableName": self._table,
            "Item": to_item({"pk": f"{self.prefix}#{attempt.login_id}", **item}),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        released = {
            "TableName": self._users,
            "Key": to_item({"pk": attempt.person}),
            "UpdateExpression": "ADD failed_logins :minus",
            "ConditionExpression": "failed_logins > :zero",
            "ExpressionAttributeValues": to_item({":minus": -1, ":zero": 0}),
        }
        items: list[dict[str, Any]] = [{"Put": stored}]
        if code_sent is not None:
            items.append({"Update": counted(self._table, code_sent)})
        unheld = unheld_conditions(self._client, [*items, {"Update": released}])
        if unheld is None:
            return True
        if code_sent is not None and unheld[1:2] == [True]:
            return False  # the client's limit is full
        # nothing to release (a lock or a login meanwhile set the count to 0): the rest alone (and should
        # DynamoDB not have said which condition failed, this tells the limit again)
        return write_together(self._client, items)

    def get(self, login_id: str) -> LoginAttempt | None:
        values = self._get(login_id)
        return _login_attempt(values) if values is not None else None

    def claim_try(self, login_id: str, limit: int, now: datetime) -> LoginAttempt | None:
        values = self._counted_try(login_id, limit, now)
        return _login_attempt(values) if values is not None else None

    def record_resend(self, login_id: str, code_hash: str, sent_at: datetime, resends: tuple[int, int]) -> bool:
        return self._update(
            login_id,
            "SET code_hash = :hash, codes_sent_at = :sent_at, resends = :after",
            {
                ":hash": code_hash,
                ":sent_at": iso(sent_at),
                ":before": resends[0],
                ":after": resends[1],
                ":pending": self.pending,
            },
            "resends = :before AND #status = :pending",
        )


def _login_attempt(values: Mapping[str, Any]) -> LoginAttempt:
    sent_at = values.get("codes_sent_at")
    return LoginAttempt(
        login_id=values["login_id"],
        person=PersonKey(values["person"]),
        second_factor=SecondFactor(values["second_factor"]),
        identity_sealed=values["identity"],
        created_at=datetime.fromisoformat(values["created_at"]),
        expires_at=datetime.fromtimestamp(int(values["expires_at"]), tz=UTC),
        status=LoginStatus(values["status"]),
        tries=int(values.get("tries", 0)),
        resends=int(values.get("resends", 0)),
        code_hash=values.get("code_hash"),
        codes_sent_at=datetime.fromisoformat(sent_at) if sent_at else None,
        letter_id=values.get("letter_id"),
        pin_index=int(values["pin_index"]) if "pin_index" in values else None,
    )


class DynamoDbLoginCompletion:
    """One transaction over the challenges, PIN letters, users, sessions and security events tables."""

    def __init__(
        self,
        client: DynamoDBClient,
        *,
        challenges_table: str,
        letters_table: str,
        users_table: str,
        sessions_table: str,
        events_table: str,
    ) -> None:
        self._client = client
        self._challenges = challenges_table
        self._letters = letters_table
        self._users = users_table
        self._sessions = sessions_table
        self._events = events_table

    def complete(
        self, attempt: LoginAttempt, use: FactorUse, session: Session, events: Sequence[SecurityEvent]
    ) -> bool:
        closed = {
            "Update": {
                "TableName": self._challenges,
                "Key": to_item({"pk": f"login#{attempt.login_id}"}),
                "UpdateExpression": "SET #status = :done REMOVE code_hash",
                "ConditionExpression": "#status = :pending",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": to_item({":done": "done", ":pending": LoginStatus.PENDING.value}),
            }
        }
        # the count of failures in a row starts again; a TOTP step is accepted once, and never an older one
        account: dict[str, Any] = {
            "TableName": self._users,
            "Key": to_item({"pk": attempt.person}),
            "UpdateExpression": "SET failed_logins = :zero",
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeValues": to_item({":zero": 0}),
        }
        if use.totp_step is not None:
            account |= {
                "UpdateExpression": "SET failed_logins = :zero, totp_last_step = :step",
                "ConditionExpression": "attribute_exists(totp_secret) AND "
                "(attribute_not_exists(totp_last_step) OR totp_last_step < :step)",
                "ExpressionAttributeValues": to_item({":zero": 0, ":step": use.totp_step}),
            }
        items: list[dict[str, Any]] = [closed, {"Update": account}]
        if use.letter_id is not None and use.pin_index is not None:
            items.append({"Update": pin_codes_used(self._letters, use.letter_id, [use.pin_index], session.auth_time)})
        session_put = {"TableName": self._sessions, "Item": session_item(session)}
        items.append({"Put": session_put | {"ConditionExpression": "attribute_not_exists(pk)"}})
        items += recorded_with(self._events, attempt.person, events)
        return write_together(self._client, items)

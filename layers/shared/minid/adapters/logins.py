"""Login attempts on DynamoDB (the challenges table, pk `login#<id>`, gone after their TTL), what the
password step reads in one call, and the transaction that completes a login.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from minid.adapters.accounts import (
    NEW_RUN,
    NOT_LOCKED,
    JudgementTables,
    account_from,
    all_of,
    epoch_as_read,
    judged_write,
    new_run,
)
from minid.adapters.aws_errors import Contended
from minid.adapters.challenges import Challenges
from minid.adapters.contacts import contact_record
from minid.adapters.dynamodb import (
    batch_get,
    cancellation_reasons_past_transactions,
    iso,
    to_item,
    update_if,
    write_together,
)
from minid.adapters.events import recorded_with
from minid.adapters.letters import ledger_key, pin_codes_used
from minid.adapters.rate_limits import counted, counter_key, hits_counted
from minid.adapters.sessions import session_item
from minid.deadline import exempt, exempt_once
from minid.domain.accounts import AccountChange, Written
from minid.domain.contacts import Language
from minid.domain.events import SecurityEvent
from minid.domain.keys import PersonKey
from minid.domain.login import FactorUse, LoginAttempt, LoginStanding, LoginStatus, Resend, SecondFactor
from minid.domain.population import PersonStatus
from minid.domain.rate_limits import Hit
from minid.domain.sessions import Session

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoDbLoginAttempts(Challenges):
    prefix = "login"
    pending = LoginStatus.PENDING.value
    codes = "code_hash, old_code_hashes"  # and those its resends replaced

    def __init__(
        self, client: DynamoDBClient, table_name: str, *, users_table: str, events_table: str, contacts_table: str
    ) -> None:
        super().__init__(client, table_name)
        self._users = users_table
        self._events = events_table
        self._contacts = contacts_table

    def begin(
        self, attempt: LoginAttempt, change: AccountChange, events: Sequence[SecurityEvent], hits: Sequence[Hit]
    ) -> Written:
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
            "session_epoch": attempt.session_epoch,
            "mobile_sealed": attempt.mobile_sealed,
            "language": attempt.language.value if attempt.language else None,
            "totp_app": attempt.totp_app,
        }
        stored = {
            "TableName": self._table,
            "Item": to_item({"pk": f"{self.prefix}#{attempt.login_id}", **item}),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        return judged_write(
            self._client,
            tables=JudgementTables(self._users, self._table, self._events),
            person=attempt.person,
            change=change,
            events=events,
            hits=hits,
            also=[{"Put": stored}],
        )

    def get(self, login_id: str) -> LoginAttempt | None:
        values = self._get(login_id)
        return _login_attempt(values) if values is not None else None

    def claim_try(self, login_id: str, limit: int, now: datetime) -> LoginAttempt | None:
        values = self._counted_try(login_id, limit, now)
        return _login_attempt(values) if values is not None else None

    def resent(
        self, attempt: LoginAttempt, code_hash: str, sent_at: datetime, mobile: str, hits: Sequence[Hit]
    ) -> Resend | Hit:
        count = (attempt.resends, attempt.resends + 1)
        resent = self._resend_update(attempt.login_id, code_hash, sent_at, count, unexpired=True)
        if attempt.code_hash is not None:  # the code it replaces, kept to be told apart from a wrong one
            kept = "old_code_hashes = list_append(if_not_exists(old_code_hashes, :none), :replaced)"
            resent["UpdateExpression"] += f", {kept}"
            resent["ExpressionAttributeValues"] |= to_item({":none": [], ":replaced": [attempt.code_hash]})
        # the account as the attempt began (a reset or re-enrolment meanwhile ends it), and not locked since
        account_unchanged = {
            "TableName": self._users,
            "Key": to_item({"pk": attempt.person}),
            "ConditionExpression": all_of([epoch_as_read(attempt.session_epoch), NOT_LOCKED]),
            "ExpressionAttributeValues": to_item({":epoch": attempt.session_epoch, ":now": iso(sent_at)}),
        }
        still_verified = _mobile_still_verified(self._contacts, attempt.person, mobile)
        items = [{"Update": resent}, still_verified, {"ConditionCheck": account_unchanged}]
        items += [{"Update": counted(self._table, hit)} for hit in hits]
        # made again while another request's transaction is on one of its items (a resend at the same moment,
        # on the attempt; a login, on the counters): then judged by its outcome, not told the login has ended;
        # Contended (503) if they go on
        reasons = cancellation_reasons_past_transactions(self._client, items)
        if reasons is None:
            return Resend.MADE
        attempt_reason, mobile_reason, account_reason, *hit_reasons = (reasons + ["None"] * len(items))[: len(items)]
        if attempt_reason == "ConditionalCheckFailed":  # not as read: completed, ended, or resent by another
            return Resend.ATTEMPT_CHANGED
        if mobile_reason == "ConditionalCheckFailed":
            return Resend.MOBILE_CHANGED
        if account_reason == "ConditionalCheckFailed":
            return Resend.ACCOUNT_CHANGED
        for hit, reason in zip(hits, hit_reasons, strict=True):
            if reason == "ConditionalCheckFailed":
                return hit
        raise Contended()  # another transaction besides the failed condition: for a retry

    def resend_given_back(
        self, attempt: LoginAttempt, code_hash: str, sent_at: datetime, *, at_once: bool = False
    ) -> bool:
        count = (attempt.resends + 1, attempt.resends)
        sent_before = attempt.codes_sent_at or attempt.created_at  # (an attempt stored before it kept the time)
        update = self._resend_update(attempt.login_id, attempt.code_hash or "", sent_before, count)
        # (its time too: another resend at once may have drawn the same code, one in a million)
        update["ConditionExpression"] += " AND code_hash = :ours AND codes_sent_at = :ours_at"
        update["ExpressionAttributeValues"] |= to_item({":ours": code_hash, ":ours_at": iso(sent_at)})
        # a resend not sent given back, whatever the time (as an enrolment's, a contact's)
        with exempt_once() if at_once else exempt():
            return update_if(self._client, update)

    def _resend_update(
        self, login_id: str, code_hash: str, sent_at: datetime, resends: tuple[int, int], unexpired: bool = False
    ) -> dict[str, Any]:
        """The code and when it was sent, if the attempt is pending with `resends[0]` resends (and, if
        `unexpired`, not past its time at `sent_at`): then `resends[1]`."""
        values = {
            ":hash": code_hash,
            ":sent_at": iso(sent_at),
            ":before": resends[0],
            ":after": resends[1],
            ":pending": self.pending,
        }
        condition = "resends = :before AND #status = :pending"
        if unexpired:
            values[":now"], condition = int(sent_at.timestamp()), condition + " AND expires_at > :now"
        expression = "SET code_hash = :hash, codes_sent_at = :sent_at, resends = :after"
        return self._update_request(login_id, expression, values, condition)


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
        claims=int(values.get("claims", 0)),
        resends=int(values.get("resends", 0)),
        code_hash=values.get("code_hash"),
        codes_sent_at=datetime.fromisoformat(sent_at) if sent_at else None,
        letter_id=values.get("letter_id"),
        pin_index=int(values["pin_index"]) if "pin_index" in values else None,
        session_epoch=int(values.get("session_epoch", 0)),
        mobile_sealed=values.get("mobile_sealed"),
        language=Language(values["language"]) if "language" in values else None,
        totp_app=values.get("totp_app"),
        replaced_hashes=tuple(values.get("old_code_hashes", ())),
    )


def _mobile_still_verified(contacts_table: str, person: PersonKey, mobile: str) -> dict[str, Any]:
    """The transaction item holding that the number an attempt's code went to is still the person's
    verified mobile (one replaced or removed meanwhile is no longer the second factor)."""
    return {
        "ConditionCheck": {
            "TableName": contacts_table,
            "Key": to_item({"pk": person}),
            "ConditionExpression": "mobile = :mobile AND attribute_exists(mobile_verified_at)",
            "ExpressionAttributeValues": to_item({":mobile": mobile}),
        }
    }


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
        contacts_table: str,
    ) -> None:
        self._client = client
        self._challenges = challenges_table
        self._letters = letters_table
        self._users = users_table
        self._sessions = sessions_table
        self._events = events_table
        self._contacts = contacts_table

    def complete(
        self, attempt: LoginAttempt, use: FactorUse, session: Session, events: Sequence[SecurityEvent]
    ) -> bool:
        closed = {
            "Update": {
                "TableName": self._challenges,
                "Key": to_item({"pk": f"login#{attempt.login_id}"}),
                "UpdateExpression": f"SET #status = :done REMOVE {DynamoDbLoginAttempts.codes}",
                "ConditionExpression": "#status = :pending",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": to_item({":done": "done", ":pending": LoginStatus.PENDING.value}),
            }
        }
        # the count of failures in a row starts again, of the account whose password the login was for (a
        # reset or re-enrolment meanwhile ends its sessions: this one too); a TOTP step is accepted once, and
        # never an older one, and only of the app it was checked against (one replaced meanwhile has another
        # secret)
        # nor locked meanwhile (a wrong password by another, while this code was judged)
        held = ["attribute_exists(pk)", epoch_as_read(session.epoch), NOT_LOCKED]
        values: dict[str, Any] = {":zero": 0, ":epoch": session.epoch, ":now": iso(session.auth_time)}
        values[":run"] = new_run()
        sets = ["failed_logins = :zero", NEW_RUN]
        if use.totp_step is not None:
            held += ["totp_secret = :secret", "attribute_not_exists(totp_last_step) OR totp_last_step < :step"]
            values |= {":step": use.totp_step, ":secret": use.totp_secret}
            sets.append("totp_last_step = :step")
        account: dict[str, Any] = {
            "TableName": self._users,
            "Key": to_item({"pk": attempt.person}),
            "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": all_of(held),
            "ExpressionAttributeValues": to_item(values),
        }
        items: list[dict[str, Any]] = [closed, {"Update": account}]
        if use.letter_id is not None and use.pin_index is not None:
            items += pin_codes_used(self._letters, attempt.person, use.letter_id, [use.pin_index], session.auth_time)
        if use.mobile is not None:
            items.append(_mobile_still_verified(self._contacts, attempt.person, use.mobile))
        session_put = {"TableName": self._sessions, "Item": session_item(session)}
        items.append({"Put": session_put | {"ConditionExpression": "attribute_not_exists(pk)"}})
        items += recorded_with(self._events, attempt.person, events)
        return write_together(self._client, items)


class DynamoDbLoginReads:
    """The password step's reads in one BatchGetItem, strongly consistent: the users table, the contact
    register, the PIN letters table (the person's ledger), the challenges table (the counters) and, of the
    population register, the person's status alone."""

    def __init__(
        self,
        client: DynamoDBClient,
        *,
        users_table: str,
        contacts_table: str,
        letters_table: str,
        challenges_table: str,
        population_table: str,
        unprocessed_tries: int = 5,
    ) -> None:
        self._client = client
        self._users = users_table
        self._contacts = contacts_table
        self._letters = letters_table
        self._challenges = challenges_table
        self._population = population_table
        self._tries = unprocessed_tries

    def read(self, person: PersonKey, hits: Sequence[Hit], *, contact: bool, letter: bool) -> LoginStanding:
        person_key = to_item({"pk": person})
        wanted: list[tuple[str, Mapping[str, Any]]] = [(self._users, person_key), (self._population, person_key)]
        if contact:
            wanted.append((self._contacts, person_key))
        if letter:
            wanted.append((self._letters, ledger_key(person)))
        wanted += [(self._challenges, counter_key(hit)) for hit in hits]
        found = batch_get(self._client, wanted, self._tries, only={self._population: ("status",)})
        account = found.get(self._users, person_key)
        registered = found.get(self._population, person_key)
        record = found.get(self._contacts, person_key) if contact else None
        ledger = found.get(self._letters, ledger_key(person)) if letter else None
        counts = dict(
            hits_counted(item) for hit in hits if (item := found.get(self._challenges, counter_key(hit))) is not None
        )
        return LoginStanding(
            account=account_from(account) if account else None,
            contact=contact_record(record) if record else None,
            letter_id=ledger.get("active") if ledger else None,
            counts=counts,
            deceased=registered is not None and registered.get("status") == PersonStatus.DECEASED.value,
        )

"""User accounts on DynamoDB (the users table, pk the person key).

Every counter and credential changes by a conditional update: concurrent requests cannot push the
failure count past the threshold, accept a TOTP step twice, or lose a lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from contextlib import suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any

from minid.adapters.dynamodb import (
    cancellation_reasons_past_transactions,
    counted_once_or_given_back,
    from_item,
    given_back_once,
    iso,
    time_or_none,
    to_item,
    update_if,
    write_together,
)
from minid.adapters.events import recorded_with
from minid.adapters.rate_limits import counted
from minid.deadline import exempt
from minid.domain.accounts import (
    MADE,
    STALE,
    AccountChange,
    AccountStatus,
    AttemptCount,
    LockoutPolicy,
    UserAccount,
    Written,
)
from minid.domain.events import SecurityEvent
from minid.domain.keys import PersonKey
from minid.domain.rate_limits import Hit
from minid.values import Value

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


NOT_LOCKED = "attribute_not_exists(locked_until) OR locked_until <= :now"  # :now: the time, as iso()
# A write that sets the count of failures back to zero starts a new run of them (UserAccount.failure_run):
# with `:run` a new_run().
NEW_RUN = "failure_run = :run"


def new_run() -> str:
    return uuid.uuid4().hex


def new_password(password_hash: str, at: datetime) -> tuple[str, dict[str, Any]]:
    """What a new password (a change, a reset) writes on the account, as an update expression and its
    values: the hash, the failures' count and run anew, every session ended (the epoch rises), the lock
    lifted, and an app begun dropped (added anew, from a login after)."""
    return (
        f"SET password_hash = :hash, password_changed_at = :at, failed_logins = :zero, {NEW_RUN} "
        "ADD session_epoch :one REMOVE locked_until, totp_pending",
        {":hash": password_hash, ":at": iso(at), ":zero": 0, ":one": 1, ":run": new_run()},
    )


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
        "failure_run": new_run(),
    }


def account_from(values: dict[str, Any]) -> UserAccount:
    return UserAccount(
        person=PersonKey(values["pk"]),
        status=AccountStatus(values["status"]),
        password_hash=values["password_hash"],
        created_at=datetime.fromisoformat(values["created_at"]),
        password_changed_at=datetime.fromisoformat(values["password_changed_at"]),
        session_epoch=int(values.get("session_epoch", 0)),
        failed_logins=int(values.get("failed_logins", 0)),
        locked_until=time_or_none(values.get("locked_until")),
        totp_secret=values.get("totp_secret"),
        totp_pending=values.get("totp_pending"),
        totp_last_step=int(values.get("totp_last_step", 0)),
        attempt_reserved_at=time_or_none(values.get("attempt_reserved_at")),
        failure_run=values.get("failure_run"),
        past_password_in=values.get("past_password_in"),
    )


def _of_run(run: str | None, placeholder: str) -> tuple[str, dict[str, str]]:
    """The condition that the account's run of failures is `run` (as `placeholder`; None: an account from
    before runs, which has none), and its value."""
    if run is None:
        return "attribute_not_exists(failure_run)", {}
    return f"failure_run = {placeholder}", {placeholder: run}


def as_read(table: str, change: AccountChange) -> dict[str, Any]:
    """The transaction item that makes `change` to the account if it is as read: the same failures in a
    row and password epoch, not locked (a lock seen to have run out is still there, to be removed by
    this write alone), and active. Only a check when nothing changes."""
    seen = change.seen
    values: dict[str, Any] = {":active": AccountStatus.ACTIVE.value, ":failures": seen.failed_logins}
    values |= {":epoch": seen.session_epoch, ":now": iso(change.at)}
    held = [
        "#status = :active",
        "failed_logins = :failures" if seen.failed_logins else _zero_or_absent("failed_logins", ":failures"),
        epoch_as_read(seen.session_epoch),
        "attribute_exists(locked_until) AND locked_until <= :now" if seen.locked_until is not None else NOT_LOCKED,
    ]
    sets, removes = [], []
    if change.failed_logins != seen.failed_logins:
        sets.append("failed_logins = :after")
        values[":after"] = change.failed_logins
        if change.failed_logins == 0:  # the lock: the run ends
            sets.append(NEW_RUN)
            values[":run"] = new_run()
            # and it is the run read: what the lock's event says of it (lockout: `after`) is that run's
            same_run, run_read = _of_run(seen.failure_run, ":run_read")
            held.append(same_run)
            values |= run_read
    if change.locked_until is not None:
        sets.append("locked_until = :until")
        values[":until"] = iso(change.locked_until)
    elif seen.locked_until is not None:
        removes.append("locked_until")
    if change.password_hash is not None:  # kept anew: in place of the hash judged, if it is still that one
        held.append("password_hash = :judged")
        sets.append("password_hash = :rehashed")
        values |= {":judged": seen.password_hash, ":rehashed": change.password_hash}
    item: dict[str, Any] = {
        "TableName": table,
        "Key": to_item({"pk": seen.person}),
        "ConditionExpression": all_of(held),
        "ExpressionAttributeNames": {"#status": "status"},
        "ExpressionAttributeValues": to_item(values),
    }
    if not sets and not removes:
        return {"ConditionCheck": item}
    expression = (f"SET {', '.join(sets)} " if sets else "") + (f"REMOVE {', '.join(removes)}" if removes else "")
    return {"Update": item | {"UpdateExpression": expression.strip()}}


class JudgementTables(Value, frozen=True):
    """Where a judged attempt writes: the account, the client's counters, the person's events."""

    users: str
    challenges: str
    events: str


def _zero_or_absent(attribute: str, value: str) -> str:
    return f"attribute_not_exists({attribute}) OR {attribute} = {value}"


def all_of(conditions: Sequence[str]) -> str:
    """Conditions joined by AND, each with an OR in it in brackets (and no other: none needed)."""
    return " AND ".join(f"({c})" if " OR " in c else c for c in conditions)


def epoch_as_read(epoch: int) -> str:
    """The condition that the account's sessions' epoch is `epoch` (as `:epoch`): none stored is 0."""
    return "session_epoch = :epoch" if epoch else _zero_or_absent("session_epoch", ":epoch")


def judged_write(
    client: DynamoDBClient,
    *,
    tables: JudgementTables,
    person: PersonKey,
    change: AccountChange | None,
    events: Sequence[SecurityEvent],
    hits: Sequence[Hit],
    also: Sequence[dict[str, Any]] = (),
) -> Written:
    """A judged attempt's transaction: `also` (the attempt it begins), the account changed if it is as
    read (`change`; None: not written or checked), the hits counted, the events recorded. Made; or not,
    for a full limit (which) or for an account that is not as read (stale).

    Made again while another transaction is writing one of its items (the client's attempt counter, which
    every login from one address writes: a class behind one school's address, say), and Contended (503)
    when they go on: stale only when a condition said what was read no longer holds. Else a right
    password that met only others' writes to the counter would be told, after the judgement's rounds,
    the 401 of a wrong one."""
    items = [*also, as_read(tables.users, change)] if change is not None else [*also]
    first_hit = len(items)
    items += [{"Update": counted(tables.challenges, hit)} for hit in hits]
    items += recorded_with(tables.events, person, events)
    reasons = cancellation_reasons_past_transactions(client, items)
    if reasons is None:
        return MADE
    if change is not None and reasons[first_hit - 1 : first_hit] == ["ConditionalCheckFailed"]:
        # judged again on the account as it is now, whatever limit is full too: a right password's 429 for
        # one, told after the account was locked meanwhile, would tell it right where a wrong one has a 401
        return STALE
    for hit, reason in zip(hits, reasons[first_hit:], strict=False):
        if reason == "ConditionalCheckFailed":
            return Written(made=False, full=hit)
    return STALE


class DynamoDbAccounts:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        events_table: str | None = None,
        challenges_table: str | None = None,
    ) -> None:
        self._client = client
        self._table = table_name
        self._events = events_table  # where the changes that are told write their events
        self._challenges = challenges_table  # where a judged attempt's hits are counted

    def find(self, person: PersonKey) -> UserAccount | None:
        item = self._client.get_item(TableName=self._table, Key=to_item({"pk": person}), ConsistentRead=True).get(
            "Item"
        )
        return account_from(from_item(item)) if item else None

    def session_epoch(self, person: PersonKey) -> int | None:
        # the key projected too: an account stored without an epoch is one of epoch 0, not none
        item = self._client.get_item(
            TableName=self._table,
            Key=to_item({"pk": person}),
            ConsistentRead=True,
            ProjectionExpression="pk, session_epoch",
        ).get("Item")
        return int(from_item(item).get("session_epoch", 0)) if item else None

    def _update(
        self,
        person: PersonKey,
        expression: str,
        values: Mapping[str, Any] | None = None,
        condition: str = "attribute_exists(pk)",
        events: Sequence[SecurityEvent] = (),
    ) -> bool:
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": to_item({"pk": person}),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
        }
        if values:
            update["ExpressionAttributeValues"] = to_item(values)
        if not events:
            return update_if(self._client, update)
        if self._events is None:
            raise RuntimeError("a change that is told needs the security events table")
        return write_together(self._client, [{"Update": update}, *recorded_with(self._events, person, events)])

    # ------------------------------------------------------------------ failures and locks
    def reserve_attempt(self, person: PersonKey, policy: LockoutPolicy, now: datetime) -> AttemptCount:
        reserved = {
            "TableName": self._table,
            "Key": to_item({"pk": person}),
            # the run it is counted in is marked as holding an attempt past the password (UserAccount)
            "UpdateExpression": "ADD failed_logins :one "
            "SET attempt_reserved_at = :now, past_password_in = if_not_exists(failure_run, :no_run)",
            "ConditionExpression": "attribute_exists(pk) AND (attribute_not_exists(failed_logins) OR "
            f"failed_logins < :threshold) AND ({NOT_LOCKED})",
            "ExpressionAttributeValues": to_item(
                {":one": 1, ":threshold": policy.threshold, ":now": iso(now), ":no_run": ""}
            ),
        }
        # a count whose every answer was lost is given back by its mark (counted_once_or_given_back) only in
        # the run it was counted in (`past_password_in`, which the count set): no login completed, no lock, no
        # new password since; an account from before runs too. A wrong password judged since, in the same run,
        # leaves the mark: its failure stays, and this count is the one given back.
        same_run = "(failure_run = past_password_in OR (attribute_not_exists(failure_run) AND past_password_in = :no))"
        counted, item = counted_once_or_given_back(  # not counted: the account, locked, or None
            self._client, reserved, "failed_logins", still=same_run, still_values={":no": ""}
        )
        return AttemptCount(account_from(item) if item else None, counted=counted)

    def judged(
        self, person: PersonKey, change: AccountChange | None, events: Sequence[SecurityEvent], hits: Sequence[Hit]
    ) -> Written:
        if self._events is None or self._challenges is None:
            raise RuntimeError("a judged attempt needs the security events and the challenges tables")
        tables = JudgementTables(self._table, self._challenges, self._events)
        return judged_write(self._client, tables=tables, person=person, change=change, events=events, hits=hits)

    def release_attempt(self, person: PersonKey, run: str | None) -> None:
        same_run, of_the_run = _of_run(run, ":run")
        expression, condition, values = given_back_once("failed_logins")
        with exempt():  # a give-back: refused when out of time, a fault would cost a try
            self._update(person, expression, values | of_the_run, f"{condition} AND ({same_run})")

    def lock(
        self,
        person: PersonKey,
        policy: LockoutPolicy,
        now: datetime,
        events: Sequence[SecurityEvent],
        failures: Sequence[SecurityEvent] = (),
    ) -> bool:
        try:
            locked = self._update(
                person,
                f"SET locked_until = :until, failed_logins = :zero, {NEW_RUN}",
                {
                    ":until": iso(now + policy.duration),
                    ":zero": 0,
                    ":threshold": policy.threshold,
                    ":now": iso(now),
                    ":run": new_run(),
                },
                f"failed_logins >= :threshold AND ({NOT_LOCKED})",
                (*failures, *events),
            )
        except Exception:
            with suppress(Exception):  # the lock's fault is the one raised
                self._record(person, failures)
            raise
        if not locked:
            self._record(person, failures)
        return locked

    def _record(self, person: PersonKey, failures: Sequence[SecurityEvent]) -> None:
        """Failures recorded without their lock, whatever the time: they are counted, and no retry gives
        them back. (The same item as in the lock's transaction: one the transaction wrote is written again.)"""
        if not failures:
            return
        if self._events is None:
            raise RuntimeError("a failure that is recorded needs the security events table")
        with exempt():
            write_together(self._client, recorded_with(self._events, person, failures))

    # ------------------------------------------------------------------ the password
    def set_password(
        self,
        person: PersonKey,
        password_hash: str,
        at: datetime,
        events: Sequence[SecurityEvent],
        *,
        replacing: UserAccount,
    ) -> bool:
        expression, values = new_password(password_hash, at)
        return self._update(
            person,
            expression,
            values | {":epoch": replacing.session_epoch},
            # held on the epoch, which every change, reset and re-enrolment raises; not on the hash, which
            # a login's re-hash (new Argon2 parameters) rewrites with the password unchanged
            all_of(["attribute_exists(pk)", epoch_as_read(replacing.session_epoch)]),
            events=events,
        )

    # ------------------------------------------------------------------ the authenticator app
    def set_totp_pending(self, person: PersonKey, sealed_secret: str, epoch: int) -> bool:
        return self._update(
            person,
            "SET totp_pending = :secret",
            {":secret": sealed_secret, ":epoch": epoch},
            all_of(["attribute_exists(pk)", epoch_as_read(epoch)]),
        )

    def confirm_totp(
        self, person: PersonKey, sealed_secret: str, step: int, epoch: int, events: Sequence[SecurityEvent]
    ) -> bool:
        return self._update(
            person,
            "SET totp_secret = :secret, totp_last_step = :step REMOVE totp_pending",
            {":secret": sealed_secret, ":step": step, ":epoch": epoch},
            all_of(["totp_pending = :secret", epoch_as_read(epoch)]),
            events,
        )

    def remove_totp(self, person: PersonKey, epoch: int, events: Sequence[SecurityEvent]) -> bool:
        return self._update(
            person,
            "REMOVE totp_secret, totp_pending, totp_last_step",
            {":epoch": epoch},
            all_of(["attribute_exists(totp_secret)", epoch_as_read(epoch)]),
            events,
        )

    def drop_totp_pending(self, person: PersonKey, sealed_secret: str, epoch: int) -> bool:
        # another begun meanwhile (another tab's) is that tab's to confirm or remove
        return self._update(
            person,
            "REMOVE totp_pending",
            {":secret": sealed_secret, ":epoch": epoch},
            all_of(["totp_pending = :secret", epoch_as_read(epoch)]),
        )

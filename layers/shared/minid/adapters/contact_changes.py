"""Pending contact changes on DynamoDB (the challenges table, pk `contact-change#<person>`, gone after
their TTL), and the transaction that makes a verified one the register's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from minid.adapters.accounts import all_of, epoch_as_read
from minid.adapters.challenges import Challenges
from minid.adapters.contacts import replaced_as_read, unchanged_since_read
from minid.adapters.dynamodb import (
    cancellation_reasons_past_transactions,
    given_back_once,
    iso,
    to_item,
    update_if,
)
from minid.adapters.events import recorded_with
from minid.adapters.rate_limits import counted
from minid.deadline import exempt
from minid.domain.codes import CODE_LIFETIME
from minid.domain.contact_changes import Applied, PendingChange, Verified, VerifiedCodes, Withdrawal
from minid.domain.contacts import ContactRecord, Language
from minid.domain.events import SecurityEvent
from minid.domain.keys import PersonKey
from minid.domain.notices import Channel
from minid.domain.rate_limits import Hit

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# The register's attributes a verified channel sets: its value and when it was verified.
_VERIFIED = {Channel.SMS: ("mobile", "mobile_verified_at"), Channel.EMAIL: ("email", "email_verified_at")}
# a resend's give-back holds only while the codes there are its own, written when it wrote them
_WRITTEN_BY_THIS_RESEND = ("codes = :written", "sent_at = :written_at")


class DynamoDbContactChanges(Challenges):
    """A person's pending contact change (pk `contact-change#<person key>`), one at a time."""

    prefix = "contact-change"
    pending = "pending"
    codes = "codes"  # its codes' hashes, by channel
    replaced = "old_code_hashes"  # the hashes of the codes replaced, the newest last

    def __init__(
        self, client: DynamoDBClient, table_name: str, *, contacts_table: str, users_table: str, events_table: str
    ) -> None:
        super().__init__(client, table_name)
        self._contacts = contacts_table
        self._users = users_table
        self._events = events_table

    def apply(
        self,
        person: PersonKey,
        as_read: ContactRecord,
        record: ContactRecord | None,
        change: PendingChange | None,
        events: Sequence[SecurityEvent],
        *,
        epoch: int,
        withdrawal: Withdrawal | None = None,
        replacing: PendingChange | None = None,
        hits: Sequence[Hit] = (),
    ) -> Applied:
        # first, the account's sessions' epoch as the session had it: a password reset or re-enrolment that
        # committed after the session was authenticated ended it; then the record as read, whether it
        # changes or not: the notices to its contacts are about it
        items: list[dict[str, Any]] = [
            {"ConditionCheck": self._epoch_held(person, epoch)},
            replaced_as_read(self._contacts, person, as_read, record)
            if record is not None
            else unchanged_since_read(self._contacts, person, as_read),
        ]
        if change is not None:  # in place of the earlier change as read: its codes no longer hold
            items.append({"Put": {"TableName": self._table, "Item": _item(change), **self._as_read(replacing)}})
        elif withdrawal is not None:
            items.append({"Update": self._withdrawn(withdrawal)})
        first_hit = len(items)
        items += [{"Update": counted(self._table, hit)} for hit in hits]  # (the rate counters' table is this)
        items += recorded_with(self._events, person, events)
        with exempt():  # it may record a code already sent: refused, a retry would send another
            # made again while a transaction of the person's (a login's, on the account) writes an item
            reasons = cancellation_reasons_past_transactions(self._client, items)
        if reasons is None:
            return Applied.DONE
        if reasons and reasons[0] == "ConditionalCheckFailed":
            return Applied.SESSION_ENDED
        if "ConditionalCheckFailed" in reasons[1:first_hit]:
            return Applied.CHANGED_MEANWHILE
        if "ConditionalCheckFailed" in reasons[first_hit : first_hit + len(hits)]:
            return Applied.LIMITED
        return Applied.CHANGED_MEANWHILE

    def _as_read(self, replacing: PendingChange | None) -> dict[str, Any]:
        """The person's change item as the request read it: none waiting (none at all, or one done), or the
        one sent then (another tab's change, or a resend, meanwhile has sent anew: refused, not dropped)."""
        if replacing is None:
            # a change with no value left waiting is read as none (`_change`): two verifies at once, one per
            # channel, each reading the other as waiting, leave it so, pending (as does a withdrawal landing
            # just before the other channel's verify); it must not refuse every change until its TTL
            none_left = " AND ".join(f"attribute_not_exists(#values.#{channel.value})" for channel in Channel)
            return {
                "ConditionExpression": f"attribute_not_exists(pk) OR #status <> :pending OR ({none_left})",
                "ExpressionAttributeNames": {"#status": "status", "#values": "values"}
                | {f"#{channel.value}": channel.value for channel in Channel},
                "ExpressionAttributeValues": to_item({":pending": self.pending}),
            }
        return {
            "ConditionExpression": "sent_at = :sent",
            "ExpressionAttributeValues": to_item({":sent": iso(replacing.sent_at)}),
        }

    def _epoch_held(self, person: PersonKey, epoch: int) -> dict[str, Any]:
        """The account's sessions' epoch is `epoch`: no password reset or re-enrolment since the session's."""
        return {
            "TableName": self._users,
            "Key": to_item({"pk": person}),
            "ConditionExpression": all_of(["attribute_exists(pk)", epoch_as_read(epoch)]),
            "ExpressionAttributeValues": to_item({":epoch": epoch}),
        }

    def _withdrawn(self, withdrawal: Withdrawal) -> dict[str, Any]:
        """The withdrawn channels' values and codes removed from the change as read (its codes as sent:
        a resend or a newer change meanwhile refuses it); with none left, the change is done."""
        names = {"#values": "values"} | {f"#{channel.value}": channel.value for channel in withdrawal.channels}
        removed = ", ".join(f"#values.#{c.value}, codes.#{c.value}" for c in sorted(withdrawal.channels))
        values: dict[str, Any] = {":sent": iso(withdrawal.change.sent_at)}
        expression = f"REMOVE {removed}"
        if set(withdrawal.change.values) <= withdrawal.channels:  # nothing waits any more
            names["#status"] = "status"
            expression, values = f"{expression} SET #status = :done", values | {":done": _DONE}
        return {
            "TableName": self._table,
            "Key": self._key(withdrawal.change.person),
            "ConditionExpression": "sent_at = :sent",
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": to_item(values),
        }

    def get(self, person: PersonKey) -> PendingChange | None:
        return _change(self._get(person))

    def refund_try_of(self, change: PendingChange) -> None:
        same, value = _the_same(change)
        expression, condition, values = given_back_once("tries")
        with exempt():  # a give-back: refused when out of time, a fault would cost a try
            self._update(change.person, expression, values | {":same": value}, f"{condition} AND {same}")

    def claim_try(self, person: PersonKey, limit: int, now: datetime) -> PendingChange | None:
        return _change(self._counted_try(person, limit, now))

    def verified(
        self, change: PendingChange, channel: Channel, record: ContactRecord, event: SecurityEvent, epoch: int
    ) -> Verified:
        value_name, at_name = _VERIFIED[channel]
        value = change.values[channel]
        register = {  # verified, updated and confirmed at once: when the record was updated (reviewed anew)
            "TableName": self._contacts,
            "Key": to_item({"pk": change.person}),
            "UpdateExpression": (
                "SET #value = :value, #at = :now, updated_at = :now, confirmed_at = :now, review_on = :review "
                "REMOVE marked_stale_at"
            ),
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeNames": {"#value": value_name, "#at": at_name},
            "ExpressionAttributeValues": to_item(
                {":value": value, ":now": iso(record.updated_at), ":review": record.review_on().isoformat()}
            ),
        }
        # the change as read (this channel's value still pending: a newer change replaces the item), then
        # the channel no longer pending, and the code that verified it kept (for a retry whose answer was
        # lost) until the change's TTL takes the item
        names = {"#values": "values", "#channel": channel.value, "#verified": _verified_with(channel)}
        read_values: dict[str, Any] = {":value": value, ":code": change.code_hashes[channel]}
        settle = "REMOVE #values.#channel, codes.#channel SET #verified = :code"
        if set(change.values) == {channel}:  # nothing waits any more: no try can be counted on it
            names["#status"] = "status"
            expression, values = f"{settle}, #status = :done", read_values | {":done": _DONE}
        else:  # the other channel still waits; the right code's try is given back (the tries are shared)
            expression, values = f"{settle} ADD tries :minus", read_values | {":minus": -1}
        settled = {
            "TableName": self._table,
            "Key": self._key(change.person),
            "ConditionExpression": "#values.#channel = :value AND codes.#channel = :code",
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": to_item(values),
        }
        # the account's sessions' epoch as the session had it: a re-enrolment (or a reset) that committed
        # after the session was authenticated ends it, and its change must not land on the new record
        items = [{"Update": register}, {"Update": settled}, {"ConditionCheck": self._epoch_held(change.person, epoch)}]
        # made again while a transaction of the person's (a login's, on the account) writes an item
        reasons = cancellation_reasons_past_transactions(
            self._client, [*items, *recorded_with(self._events, change.person, [event])]
        )
        if reasons is None:
            return Verified.DONE
        if len(reasons) > 2 and reasons[2] == "ConditionalCheckFailed":  # the account's epoch moved on
            return Verified.SESSION_ENDED
        return Verified.NOT_WAITING

    def read(self, person: PersonKey) -> tuple[PendingChange | None, VerifiedCodes | None]:
        values = self._get(person)
        if values is None:
            return None, None
        kept = {channel: values.get(_verified_with(channel)) for channel in Channel}
        hashes = {channel: digest for channel, digest in kept.items() if digest}
        expires_at = datetime.fromtimestamp(int(values["expires_at"]), tz=UTC)
        return _change(values), VerifiedCodes(hashes=hashes, expires_at=expires_at) if hashes else None

    def record_resend(
        self,
        change: PendingChange,
        code_hashes: Mapping[Channel, str],
        sent_at: datetime,
        resends: tuple[int, int],
        *,
        replaced: Sequence[str] = (),
        giving_back: Mapping[Channel, str] | None = None,
    ) -> bool:
        # the change as read: the same change (not one made in its place, with the same values, say) and its
        # values still the ones the codes go to
        same, value = _the_same(change)
        names = {"#values": "values"} | {f"#{channel.value}": channel.value for channel in Channel}
        same_values = [
            f"#values.#{channel.value} = :{channel.value}"
            if channel in change.values
            else f"attribute_not_exists(#values.#{channel.value})"
            for channel in Channel
        ]
        kept = f", {self.replaced} = list_append(if_not_exists({self.replaced}, :none), :replaced)" if replaced else ""
        request = self._update_request(
            change.person,
            f"SET codes = :codes, sent_at = :sent_at, expires_at = :expires, resends = :after{kept}",
            ({":none": [], ":replaced": list(replaced)} if replaced else {})
            | {
                ":codes": {channel.value: digest for channel, digest in code_hashes.items()},
                ":sent_at": iso(sent_at),
                ":expires": int((sent_at + CODE_LIFETIME).timestamp()),  # a code holds its lifetime from its sending
                ":before": resends[0],
                ":after": resends[1],
                ":same": value,
            }
            | {f":{channel.value}": contact for channel, contact in change.values.items()},
            " AND ".join(["resends = :before", same, *same_values, *(_WRITTEN_BY_THIS_RESEND if giving_back else ())]),
        )
        if giving_back:  # only while the codes are the ones this resend wrote (not another's, made meanwhile: the
            # same codes, drawn alike, told apart by their time; `change`, as this resend wrote it)
            written = {":written": {c.value: d for c, d in giving_back.items()}, ":written_at": iso(change.sent_at)}
            request["ExpressionAttributeValues"] |= to_item(written)
        # the codes given back whatever the time (see enrolments)
        with exempt() if giving_back is not None else nullcontext():
            return update_if(self._client, request | {"ExpressionAttributeNames": names})


_DONE = "done"  # the status of a change whose every channel is verified


def _the_same(change: PendingChange) -> tuple[str, str]:
    """The condition that the item holds this change (as `:same`), not one made in its place: by its id (a
    resend keeps it); one stored before changes had ids, by when its codes were sent (a resend moves that)."""
    return ("change_id = :same", change.change_id) if change.change_id else ("sent_at = :same", iso(change.sent_at))


def _verified_with(channel: Channel) -> str:
    """The attribute that keeps the hash of the code that verified the channel."""
    return f"verified_{channel.value}"


def _item(change: PendingChange) -> dict[str, Any]:
    return to_item(
        {
            "pk": f"{DynamoDbContactChanges.prefix}#{change.person}",
            "person": change.person,
            "values": {channel.value: value for channel, value in change.values.items()},
            "codes": {channel.value: digest for channel, digest in change.code_hashes.items()},
            "sent_at": iso(change.sent_at),
            "expires_at": int(change.expires_at.timestamp()),
            "status": DynamoDbContactChanges.pending,
            "tries": 0,
            "resends": 0,
            "language": change.language.value if change.language else None,
            DynamoDbContactChanges.replaced: list(change.replaced_hashes),
            "change_id": change.change_id,
            "epoch": change.epoch,
        }
    )


def _change(values: Mapping[str, Any] | None) -> PendingChange | None:
    if values is None or not values.get("values"):
        return None
    return PendingChange(
        person=PersonKey(values["person"]),
        values={Channel(k): v for k, v in values["values"].items()},
        code_hashes={Channel(k): v for k, v in values.get("codes", {}).items()},
        sent_at=datetime.fromisoformat(values["sent_at"]),
        expires_at=datetime.fromtimestamp(int(values["expires_at"]), tz=UTC),
        tries=int(values.get("tries", 0)),
        resends=int(values.get("resends", 0)),
        language=Language(values["language"]) if values.get("language") else None,
        replaced_hashes=tuple(values.get(DynamoDbContactChanges.replaced, ())),
        change_id=values.get("change_id"),
        epoch=int(values["epoch"]) if values.get("epoch") is not None else None,
    )

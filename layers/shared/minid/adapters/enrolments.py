"""Enrolments on DynamoDB (the challenges table, pk `enrolment#<id>`, gone after their TTL), and the
transaction that activates the account an enrolment makes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from minid.adapters.accounts import account_values, all_of, epoch_as_read
from minid.adapters.contacts import contact_record, written_as_read
from minid.adapters.dynamodb import (
    batch_get,
    cancellation_reasons,
    conditional_check_failed,
    counted_once_or_given_back,
    from_item,
    given_back_once,
    iso,
    put_new,
    to_item,
    update_if,
    update_if_as_read,
)
from minid.adapters.events import recorded_with
from minid.adapters.letters import letter_from, letter_key, pin_codes_used
from minid.adapters.population import person_from
from minid.deadline import exempt
from minid.domain.accounts import UserAccount
from minid.domain.contacts import ContactRecord, Language
from minid.domain.enrolment import (
    AccountAsRead,
    Activation,
    Completion,
    Enrolment,
    EnrolmentStatus,
    PendingContacts,
)
from minid.domain.events import SecurityEvent
from minid.domain.keys import PersonKey
from minid.domain.letters.model import PinLetter
from minid.domain.notices import Channel
from minid.domain.population import Person, PersonStatus

_OPEN = (EnrolmentStatus.STARTED.value, EnrolmentStatus.VERIFYING.value)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


# the hashes of the codes replaced (by a resend, or a completion made again), the newest last
_REPLACED = "old_code_hashes"


def enrolment_key(enrolment_id: str) -> dict[str, Any]:
    return to_item({"pk": f"enrolment#{enrolment_id}"})


class DynamoDbEnrolments:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def create(self, enrolment: Enrolment) -> None:
        item = {
            "pk": f"enrolment#{enrolment.enrolment_id}",
            "enrolment_id": enrolment.enrolment_id,
            "person": enrolment.person,
            "guesses_of": enrolment.guesses_of,
            "letter_id": enrolment.letter_id,
            "pin_indices": list(enrolment.pin_indices),
            "status": enrolment.status.value,
            "created_at": iso(enrolment.created_at),
            "expires_at": int(enrolment.expires_at.timestamp()),
            "pin_tries": 0,
            "verify_tries": 0,
            "resends": 0,
        }
        # its id is a random UUID: one there already that is this very item is this write, its answer lost
        put_new(self._client, self._table, to_item(item))

    def get(self, enrolment_id: str) -> Enrolment | None:
        item = self._client.get_item(TableName=self._table, Key=enrolment_key(enrolment_id), ConsistentRead=True).get(
            "Item"
        )
        return _enrolment(from_item(item)) if item else None

    def claim_pin_try(self, enrolment_id: str, limit: int, now: datetime) -> Enrolment | None:
        return self._claim("pin_tries", enrolment_id, limit, now, _OPEN)

    def refund_pin_try(self, enrolment_id: str) -> None:
        self._refund("pin_tries", enrolment_id)

    def refund_verify_try(self, enrolment_id: str) -> None:
        self._refund("verify_tries", enrolment_id)

    def _refund(self, counter: str, enrolment_id: str) -> None:
        expression, condition, values = given_back_once(counter)
        refund = {
            "TableName": self._table,
            "Key": enrolment_key(enrolment_id),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": to_item(values),
        }
        with exempt():  # a give-back: refused when out of time, a fault would cost a try
            update_if(self._client, refund)  # False: none counted (or the enrolment gone), nothing to give

    def claim_verify_try(self, enrolment_id: str, limit: int, now: datetime) -> Enrolment | None:
        return self._claim("verify_tries", enrolment_id, limit, now, (EnrolmentStatus.VERIFYING.value,))

    def _claim(
        self, counter: str, enrolment_id: str, limit: int, now: datetime, statuses: Sequence[str]
    ) -> Enrolment | None:
        """The enrolment with a try counted, if fewer than `limit` are and it is in one of `statuses` and
        unexpired; else None, counting nothing. `claims` counts it too (either counter's), and is never given
        back: the try's own number."""
        held = {f":s{i}": status for i, status in enumerate(statuses)}
        claim = {
            "TableName": self._table,
            "Key": enrolment_key(enrolment_id),
            "UpdateExpression": f"ADD {counter} :one, claims :one",
            "ConditionExpression": f"{counter} < :limit AND #status IN ({', '.join(held)}) AND expires_at > :now",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": to_item({":one": 1, ":limit": limit, ":now": int(now.timestamp())} | held),
        }
        counted, item = counted_once_or_given_back(self._client, claim, counter)  # (its answer lost: given back)
        return _enrolment(item) if counted and item is not None else None

    def end(self, enrolment_id: str) -> None:
        ended = {
            "TableName": self._table,
            "Key": enrolment_key(enrolment_id),
            # what it held of the person goes with it (the number and address they gave), not at the item's expiry
            "UpdateExpression": f"SET #status = :ended REMOVE password_hash, codes, contacts, {_REPLACED}",
            "ConditionExpression": "attribute_exists(pk) AND #status <> :active",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": to_item(
                {":ended": EnrolmentStatus.ENDED.value, ":active": EnrolmentStatus.ACTIVE.value}
            ),
        }
        update_if(self._client, ended)  # False: gone, or activated meanwhile (by a right code): it stays so

    def keep_replaced(self, enrolment_id: str, replaced: Sequence[str]) -> None:
        kept = {
            "TableName": self._table,
            "Key": enrolment_key(enrolment_id),
            "UpdateExpression": f"SET {_REPLACED} = list_append(if_not_exists({_REPLACED}, :none), :replaced)",
            "ConditionExpression": "#status = :verifying",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": to_item(
                {":none": [], ":replaced": list(replaced), ":verifying": EnrolmentStatus.VERIFYING.value}
            ),
        }
        with exempt():  # codes already sent: refused, one the person may type would cost a try
            update_if(self._client, kept)  # False: ended or activated meanwhile, with nothing left to judge

    def record_completion(self, enrolment_id: str, completion: Completion, *, as_read: Enrolment) -> bool:
        contacts = completion.contacts
        if as_read.codes_sent_at is None:
            sent, held = "attribute_not_exists(codes_sent_at)", {}
        else:
            sent, held = "codes_sent_at = :sent_before", {":sent_before": iso(as_read.codes_sent_at)}
        with exempt():  # it records codes already sent: refused, a retry would send others
            return update_if(
                self._client,
                {
                    "TableName": self._table,
                    "Key": enrolment_key(enrolment_id),
                    "UpdateExpression": "SET #status = :verifying, password_hash = :password, contacts = :contacts, "
                    "codes = :codes, codes_sent_at = :now, verified = :none, resends = :resends, "
                    f"{_REPLACED} = :replaced ADD pin_tries :minus",
                    "ConditionExpression": f"#status = :as_read AND resends = :resends_before AND {sent}",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": to_item(
                        {
                            ":verifying": EnrolmentStatus.VERIFYING.value,
                            ":password": completion.password_hash,
                            ":contacts": {
                                "mobile": contacts.mobile,
                                "email": contacts.email,
                                "language": contacts.language.value,
                            },
                            ":codes": {channel.value: digest for channel, digest in completion.code_hashes.items()},
                            ":replaced": list(completion.replaced_hashes),
                            ":now": iso(completion.sent_at),
                            ":none": {},
                            ":resends": completion.resends,
                            ":minus": -1,
                            ":as_read": as_read.status.value,
                            ":resends_before": as_read.resends,
                        }
                        | held
                    ),
                },
            )

    def record_resend(
        self,
        enrolment_id: str,
        code_hashes: Mapping[Channel, str],
        sent: tuple[datetime, datetime],
        resends: tuple[int, int],
        *,
        replaced: Sequence[str] = (),
        giving_back: Mapping[Channel, str] | None = None,
    ) -> bool:
        names = {f"#c{i}": channel.value for i, channel in enumerate(code_hashes)}
        values: dict[str, Any] = {f":c{i}": digest for i, digest in enumerate(code_hashes.values())}
        assignments = [f"codes.#c{i} = :c{i}" for i in range(len(code_hashes))]
        # a give-back: only while the codes are the ones this resend wrote (not another's, made meanwhile)
        mine = giving_back or {}
        names |= {f"#w{i}": channel.value for i, channel in enumerate(mine)}
        values |= {f":w{i}": digest for i, digest in enumerate(mine.values())}
        written = "".join(f" AND codes.#w{i} = :w{i}" for i in range(len(mine)))
        if replaced:
            assignments.append(f"{_REPLACED} = list_append(if_not_exists({_REPLACED}, :none), :replaced)")
            values |= {":none": [], ":replaced": list(replaced)}
        try:
            # the codes given back (a resend's sending failed) made whatever the time: refused as time ran out,
            # the codes the person holds would stop working. A resend's own codes are written under the
            # deadline: they would be sent after it, and the time kept is for the give-back
            with exempt() if giving_back is not None else nullcontext():
                self._client.update_item(
                    TableName=self._table,
                    Key=enrolment_key(enrolment_id),
                    UpdateExpression=f"SET {', '.join([*assignments, 'codes_sent_at = :now, resends = :after'])}",
                    # and each contact it writes a code for still unverified (one verified meanwhile wants none)
                    ConditionExpression="resends = :before AND codes_sent_at = :sent_before AND #status = :verifying"
                    + "".join(f" AND attribute_not_exists(verified.#c{i})" for i in range(len(code_hashes)))
                    + written,
                    ExpressionAttributeNames={"#status": "status", **names},
                    ExpressionAttributeValues=to_item(
                        values
                        | {
                            ":now": iso(sent[1]),
                            ":sent_before": iso(sent[0]),
                            ":before": resends[0],
                            ":after": resends[1],
                            ":verifying": EnrolmentStatus.VERIFYING.value,
                        }
                    ),
                )
        except ClientError as error:
            if conditional_check_failed(error):
                return False
            raise
        return True

    def mark_verified(
        self, enrolment: Enrolment, channels: Sequence[Channel], at: datetime, unverified: Sequence[Channel]
    ) -> bool:
        if not channels:
            return True
        names = {f"#v{i}": channel.value for i, channel in enumerate(channels)}
        names |= {f"#u{i}": channel.value for i, channel in enumerate(unverified)}
        still = "".join(f" AND attribute_not_exists(verified.#u{i})" for i in range(len(unverified)))
        return update_if_as_read(  # another verify's activation being written: not as read
            self._client,
            {
                "TableName": self._table,
                "Key": enrolment_key(enrolment.enrolment_id),
                "UpdateExpression": "SET " + ", ".join(f"verified.#v{i} = :at" for i in range(len(channels))),
                "ConditionExpression": f"#status = :verifying AND codes_sent_at = :sent{still}",
                "ExpressionAttributeNames": names | {"#status": "status"},
                "ExpressionAttributeValues": to_item(
                    {":at": iso(at), ":verifying": EnrolmentStatus.VERIFYING.value, ":sent": _sent_at(enrolment)}
                ),
            },
        )


def _sent_at(enrolment: Enrolment) -> str:
    """When the enrolment's codes were sent, as stored: the mark of the codes a verify judged."""
    if enrolment.codes_sent_at is None:
        raise ValueError("an enrolment waiting for its codes has sent them")
    return iso(enrolment.codes_sent_at)


def _enrolment(values: dict[str, Any]) -> Enrolment:
    contacts = values.get("contacts")
    sent_at = values.get("codes_sent_at")
    first, second = (int(i) for i in values["pin_indices"])
    return Enrolment(
        enrolment_id=values["enrolment_id"],
        person=PersonKey(values["person"]) if values.get("person") else None,
        letter_id=values.get("letter_id"),
        pin_indices=(first, second),
        status=EnrolmentStatus(values["status"]),
        created_at=datetime.fromisoformat(values["created_at"]),
        expires_at=datetime.fromtimestamp(
            int(values["expires_at"]), tz=datetime.fromisoformat(values["created_at"]).tzinfo
        ),
        pin_tries=int(values.get("pin_tries", 0)),
        verify_tries=int(values.get("verify_tries", 0)),
        claims=int(values.get("claims", 0)),
        password_hash=values.get("password_hash"),
        contacts=PendingContacts(contacts.get("mobile"), contacts.get("email"), Language(contacts["language"]))
        if contacts
        else None,
        code_hashes={Channel(k): v for k, v in values.get("codes", {}).items()},
        codes_sent_at=datetime.fromisoformat(sent_at) if sent_at else None,
        resends=int(values.get("resends", 0)),
        verified={Channel(k): datetime.fromisoformat(v) for k, v in values.get("verified", {}).items()},
        replaced_hashes=tuple(values.get(_REPLACED, ())),
        # (one started before its guesses were counted so: a decoy's then are not, and cannot be right)
        guesses_of=PersonKey(guessing) if (guessing := values.get("guesses_of") or values.get("person")) else None,
    )


class DynamoDbEnrolmentReads:
    """An enrolment's reads of the person, each step's in one BatchGetItem, strongly consistent."""

    def __init__(
        self,
        client: DynamoDBClient,
        *,
        letters_table: str,
        population_table: str,
        users_table: str,
        contacts_table: str,
    ) -> None:
        self._client = client
        self._letters = letters_table
        self._population = population_table
        self._users = users_table
        self._contacts = contacts_table

    def for_activation(
        self, person: PersonKey
    ) -> tuple[AccountAsRead | None, ContactRecord | None, PersonStatus | None]:
        key = to_item({"pk": person})
        found = batch_get(
            self._client,
            [(self._users, key), (self._contacts, key), (self._population, key)],
            # of the account, what the role may read (not its password hash, nor its app's sealed secret);
            # of the person, their status alone
            only={self._users: ("created_at", "session_epoch"), self._population: ("status",)},
        )
        account, record, entry = (found.get(table, key) for table in (self._users, self._contacts, self._population))
        return (
            AccountAsRead(
                created_at=datetime.fromisoformat(account["created_at"]),
                session_epoch=int(account.get("session_epoch", 0)),
            )
            if account
            else None,
            contact_record(record) if record else None,
            PersonStatus(entry["status"]) if entry else None,
        )

    def for_completion(self, enrolment: Enrolment) -> tuple[PinLetter | None, Person | None]:
        letter = letter_key(enrolment.letter_id or enrolment.enrolment_id)
        person = to_item({"pk": enrolment.person}) if enrolment.person else None
        found = batch_get(self._client, [(self._letters, letter)] + ([(self._population, person)] if person else []))
        letter_values = found.get(self._letters, letter)
        person_values = found.get(self._population, person) if person else None
        return (
            letter_from(letter_values) if letter_values else None,
            person_from(person_values) if person_values else None,
        )


class DynamoDbAccountActivation:
    """One transaction over the users, contact register, PIN letters, challenges and events tables."""

    def __init__(
        self,
        client: DynamoDBClient,
        *,
        users_table: str,
        contacts_table: str,
        letters_table: str,
        challenges_table: str,
        events_table: str,
    ) -> None:
        self._client = client
        self._users = users_table
        self._contacts = contacts_table
        self._letters = letters_table
        self._challenges = challenges_table
        self._events = events_table

    def activate(
        self,
        enrolment: Enrolment,
        account: UserAccount,
        contact: ContactRecord,
        now: datetime,
        *,
        events: Sequence[SecurityEvent],
        replacing: AccountAsRead | None = None,
        contact_as_read: ContactRecord | None = None,
    ) -> Activation:
        if enrolment.person is None or enrolment.letter_id is None:  # a decoy's: it has no codes to use
            return Activation.PIN_CODES_UNUSABLE
        enrolled = {
            "TableName": self._challenges,
            "Key": enrolment_key(enrolment.enrolment_id),
            # the codes' hashes stay (until the item expires): a verify retried gets its answer again; the
            # contacts, now in the contact register, go
            "UpdateExpression": f"SET #status = :active REMOVE password_hash, contacts, {_REPLACED}",
            "ConditionExpression": "#status = :verifying AND codes_sent_at = :sent",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": to_item(
                {
                    ":active": EnrolmentStatus.ACTIVE.value,
                    ":verifying": EnrolmentStatus.VERIFYING.value,
                    ":sent": _sent_at(enrolment),
                }
            ),
        }
        reasons = cancellation_reasons(
            self._client,
            [
                {"Update": enrolled},  # first: its reason is reasons[0]
                *pin_codes_used(self._letters, enrolment.person, enrolment.letter_id, enrolment.pin_indices, now),
                {"Put": {"TableName": self._users, "Item": to_item(account_values(account)), **_as_read(replacing)}},
                written_as_read(self._contacts, enrolment.person, contact_as_read, contact),
                *recorded_with(self._events, enrolment.person, events),
            ],
        )
        if reasons is None:
            return Activation.MADE
        if reasons[:2] == ["None", "ConditionalCheckFailed"]:  # the enrolment as read, its PIN codes not
            return Activation.PIN_CODES_UNUSABLE
        return Activation.CHANGED


def _as_read(account: AccountAsRead | None) -> dict[str, Any]:
    """The condition of an account's Put: none there (an enrolment), or the one read with its sessions'
    epoch unchanged (a re-enrolment: a password reset meanwhile ends sessions the new epoch must follow)."""
    if account is None:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    return {
        "ConditionExpression": all_of(["attribute_exists(pk)", epoch_as_read(account.session_epoch)]),
        "ExpressionAttributeValues": to_item({":epoch": account.session_epoch}),
    }

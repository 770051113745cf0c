"""minid.adapters.dynamodb: its attribute values, held to boto3's TypeSerializer, whose rules they follow
(written apart from it only so that the functions need not load boto3: see the module); and the mark that
has an update count once."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

from minid.adapters import dynamodb
from minid.adapters.aws_errors import Contended
from minid.adapters.dynamodb import attribute, from_item, marked_to_count_once, plain, to_item

_scalars = (
    st.none()
    | st.booleans()
    | st.text(max_size=20)
    | st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1)
    | st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**20), max_value=10**20)
    | st.binary(max_size=20)
)
_sets = (
    st.sets(st.text(max_size=10), min_size=1, max_size=5)
    | st.sets(st.integers(min_value=-(10**12), max_value=10**12), min_size=1, max_size=5)
    | st.sets(st.binary(max_size=10), min_size=1, max_size=5)
)
_values = st.recursive(
    _scalars | _sets,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _same_sets(value: Mapping[str, Any]) -> Mapping[str, Any]:
    """A set's members are in no order; compared as sets."""
    kind, content = next(iter(value.items()))
    if kind in ("SS", "NS", "BS"):
        return {kind: sorted(content)}
    if kind == "M":
        return {kind: {k: _same_sets(v) for k, v in content.items()}}
    if kind == "L":
        return {kind: [_same_sets(v) for v in content]}
    return value


@given(_values)
def test_a_value_is_written_as_boto3_writes_it(value: Any) -> None:
    assert _same_sets(attribute(value)) == _same_sets(TypeSerializer().serialize(value))


@given(_values)
def test_a_value_read_back_is_what_boto3_reads_with_whole_numbers_as_int(value: Any) -> None:
    written = TypeSerializer().serialize(value)
    assert plain(written) == _numbers_made_plain(TypeDeserializer().deserialize(written))


def _numbers_made_plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_numbers_made_plain(v) for v in value]
    if isinstance(value, set):
        return {_numbers_made_plain(v) for v in value}
    if isinstance(value, dict):
        return {k: _numbers_made_plain(v) for k, v in value.items()}
    if hasattr(value, "value") and isinstance(value.value, bytes):  # boto3's Binary
        return value.value
    return value


def test_an_item_leaves_out_none_and_reads_back() -> None:
    item = to_item({"pk": "person#1", "count": 3, "gone": None, "used": {2, 7}, "seen": {"at": None}})
    assert item == {
        "pk": {"S": "person#1"},
        "count": {"N": "3"},
        "used": {"NS": ["2", "7"]},
        "seen": {"M": {"at": {"NULL": True}}},
    }
    assert from_item(item) == {"pk": "person#1", "count": 3, "used": {2, 7}, "seen": {"at": None}}


@pytest.mark.parametrize(
    "value",
    [1.5, {"a", 1}, 10**38, Decimal("NaN"), Decimal("Infinity"), object()],
    ids=["float", "mixed set", "39 digits", "nan", "infinity", "object"],
)
def test_what_dynamodb_cannot_keep_is_refused_as_boto3_refuses_it(value: Any) -> None:
    with pytest.raises((TypeError, ArithmeticError)):
        attribute(value)
    with pytest.raises((TypeError, ArithmeticError)):
        TypeSerializer().serialize(value)


def test_an_empty_set_is_refused_here_rather_than_by_dynamodb() -> None:
    """boto3 writes it (as an empty number set), and DynamoDB refuses the call."""
    with pytest.raises(TypeError):
        attribute(set())


class _Cancelling:
    """A client whose transactions are cancelled with these reasons, one list a call, then made."""

    def __init__(self, *cancellations: tuple[str, ...]) -> None:
        self.cancellations = list(cancellations)
        self.calls = 0

    def transact_write_items(self, **_: Any) -> None:
        self.calls += 1
        if self.cancellations:
            reasons = [{"Code": code} for code in self.cancellations.pop(0)]
            error = {"Code": "TransactionCanceledException", "Message": "cancelled"}
            response: Any = {"Error": error, "CancellationReasons": reasons}
            raise ClientError(response, "TransactWriteItems")


@pytest.mark.parametrize(
    ("cancellations", "calls", "answer"),
    [
        # another's transaction in flight alone: made again, and made
        ([("None", "TransactionConflict")], 2, None),
        # a failed condition besides: not made again (it would fail again); told at once
        ([("ConditionalCheckFailed", "TransactionConflict")], 1, ["ConditionalCheckFailed", "TransactionConflict"]),
        ([("ConditionalCheckFailed", "None")], 1, ["ConditionalCheckFailed", "None"]),
    ],
)
def test_a_transaction_is_made_again_only_while_others_alone_are_in_its_way(
    cancellations: list[tuple[str, ...]], calls: int, answer: list[str] | None
) -> None:
    client = _Cancelling(*cancellations)
    assert dynamodb.cancellation_reasons_past_transactions(client, [{}]) == answer  # type: ignore[arg-type]
    assert client.calls == calls


def test_a_transaction_others_keep_in_the_way_is_contended() -> None:
    client = _Cancelling(*[("None", "TransactionConflict")] * dynamodb.IN_FLIGHT_TRIES)
    with pytest.raises(Contended):
        dynamodb.cancellation_reasons_past_transactions(client, [{}])  # type: ignore[arg-type]
    assert client.calls == dynamodb.IN_FLIGHT_TRIES


def test_an_update_is_marked_to_count_once_in_the_set_clause_it_has_or_one_of_its_own() -> None:
    """An expression names each clause once: the mark joins its SET clause (the keyword in any case, never a
    placeholder, name or path that spells it), or makes one; its condition holds that the mark is not there.
    Marked once: an update marked already keeps its mark, and one that only names the mark's value is refused."""
    cases = {
        "ADD hits :one SET expires_at = :ends": "ADD hits :one SET counted_by = :counted_by, expires_at = :ends",
        "ADD a :one set b = :x": "ADD a :one SET counted_by = :counted_by, b = :x",
        "ADD tries :one, claims :one": "ADD tries :one, claims :one SET counted_by = :counted_by",
        "ADD a.set :set": "ADD a.set :set SET counted_by = :counted_by",
    }
    for expression, marked in cases.items():
        update = marked_to_count_once({"UpdateExpression": expression, "ConditionExpression": "a < :max"})
        assert update["UpdateExpression"] == marked
        assert update["ConditionExpression"] == (
            "(a < :max) AND (attribute_not_exists(counted_by) OR counted_by <> :counted_by)"
        )
        assert marked_to_count_once(update) == update  # its mark kept
    with pytest.raises(ValueError, match="not marked"):
        marked_to_count_once({"UpdateExpression": "ADD a :one", "ExpressionAttributeValues": {":counted_by": {}}})


class _Refusing:
    """A client whose PutItem is refused by its condition, answering with the item there (ALL_OLD)."""

    def __init__(self, there: dict[str, Any]) -> None:
        self.there = there

    def put_item(self, **_: Any) -> None:
        refused: Any = {"Error": {"Code": "ConditionalCheckFailedException"}, "Item": self.there}
        raise ClientError(refused, "PutItem")


def test_an_item_put_new_whose_retry_finds_it_there_is_taken_as_written_as_values() -> None:
    """The SDK's retry of a put whose answer was lost finds the item: it is this write when its values are
    the same, in DynamoDB's form of them too (numbers without trailing zeros, sets in any order); another
    item of the same key is refused."""
    written = {"pk": {"S": "reset#1"}, "n": {"N": "1.50"}, "tags": {"SS": ["a", "b"]}}
    dynamodb.put_new(_Refusing({"pk": {"S": "reset#1"}, "n": {"N": "1.5"}, "tags": {"SS": ["b", "a"]}}), "t", written)  # type: ignore[arg-type]
    for other in ({**written, "n": {"N": "2"}}, {}):
        with pytest.raises(ClientError):
            dynamodb.put_new(_Refusing(other), "t", written)  # type: ignore[arg-type]

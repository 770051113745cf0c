"""The records' base (minid.values.Value): a msgspec Struct that keeps `__hidden__` fields out of repr."""

from __future__ import annotations

import pytest
from msgspec import field
from msgspec.structs import replace

from minid.values import Value


class Login(Value, frozen=True):
    __hidden__ = frozenset({"password"})

    user: str
    password: str
    tries: dict[str, int] = field(default_factory=dict)


class Step(Value, frozen=True):
    user: str
    number: int


class Locked(Login, frozen=True):
    until: int = 0


def test_hidden_fields_stay_out_of_repr_and_str_in_subclasses_too() -> None:
    for record in (Login("kari", "hemmelig-passord"), Locked("kari", "hemmelig-passord", until=3)):
        for text in (repr(record), str(record), f"{record}", f"{record!r}"):
            assert "hemmelig" not in text
            assert "user='kari'" in text
    assert repr(Locked("kari", "x", until=3)) == "Locked(user='kari', tries={}, until=3)"


def test_records_are_values_frozen_equal_hashable_and_replaceable() -> None:
    record = Login("kari", "x")
    assert record == Login("kari", "x")
    assert record != Locked("kari", "x")  # another type is another value
    assert hash(Step("kari", 1)) == hash(Step("kari", 1))  # when every field is hashable, as a dataclass
    assert replace(record, user="ola") == Login("ola", "x")
    assert Login("a", "b").tries is not Login("a", "b").tries  # a default made for each
    with pytest.raises(AttributeError):
        record.user = "ola"  # type: ignore[misc]

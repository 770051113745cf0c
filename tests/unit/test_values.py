"""The records' base (minid.values.Value): a msgspec Struct that keeps `__hidden__` fields out of repr."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

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


# Fields that hold personal data or a secret wherever a record has them, by name.
PERSONAL_FIELDS = frozenset(
    {
        "identity_number",
        "name",
        "names",
        "given_name",
        "family_name",
        "greeting",
        "birth_date",
        "gender",
        "address",
        "address_abroad",
        "address_protection",  # (that a person is under threat)
        "street",
        "postal_code",
        "city",
        "care_of",
        "lines_abroad",
        "mobile",
        "email",
        "values",
        "codes",
        "code_hashes",
        "code_hash",
        "password_hash",
        "secret",
        "totp_secret",
        "token",
        "sms",
        "text",
        "html",
        "reason",  # a print provider's words of a letter it could not post
    }
)


def _records() -> Iterator[type[Value]]:
    import minid  # noqa: PLC0415

    for module in pkgutil.walk_packages(minid.__path__, "minid."):
        importlib.import_module(module.name)
    pending: list[type[Value]] = [Value]
    while pending:
        kind = pending.pop()
        pending.extend(kind.__subclasses__())
        if kind is not Value:
            yield kind


def test_every_record_keeps_its_personal_fields_out_of_repr() -> None:
    """A record's repr may reach a log line (an error's message, a debugger's dump): the fields that hold
    a person's name, address, contacts, codes or secrets are hidden in every record of the code."""
    records = list(_records())
    assert len(records) > 40
    shown = {
        f"{kind.__module__}.{kind.__name__}.{name}"
        for kind in records
        for name in kind.__struct_fields__
        if name in PERSONAL_FIELDS and name not in kind.__hidden__ and kind.__module__.startswith("minid.")
    }
    assert shown == {"minid.domain.rate_limits.Limit.name"}  # a limit's own name ("login-codes")

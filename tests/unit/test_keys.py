"""Keyed hashes: table keys that hold no identity number and cannot be reversed without the pepper."""

from __future__ import annotations

from datetime import date

import pytest

from minid.domain.identity import parse_identity_number
from minid.domain.keys import Keyer, KeyPurpose, Pepper, client_network

TODAY = date(2026, 11, 22)
NUMBER = parse_identity_number("15108695088", allow_synthetic=False, today=TODAY)
OTHER = parse_identity_number("41017000282", allow_synthetic=False, today=TODAY)


def test_a_person_key_is_stable_and_holds_no_digits_of_the_number() -> None:
    keyer = Keyer(Pepper(b"p" * 32))
    key = keyer.person_key(NUMBER)
    assert key == Keyer(Pepper(b"p" * 32)).person_key(NUMBER)
    assert len(key) == 64
    assert NUMBER.value not in key


def test_keys_differ_by_person_and_by_pepper() -> None:
    keyer = Keyer(Pepper(b"p" * 32))
    assert keyer.person_key(NUMBER) != keyer.person_key(OTHER)
    assert keyer.person_key(NUMBER) != Keyer(Pepper(b"q" * 32)).person_key(NUMBER)


def test_each_purpose_has_its_own_subkey() -> None:
    keyer = Keyer(Pepper(b"p" * 32))
    assert keyer.digest(KeyPurpose.PERSON, NUMBER.value) == keyer.person_key(NUMBER)
    assert len({keyer.digest(purpose, "same") for purpose in KeyPurpose}) == len(KeyPurpose)


def test_a_short_pepper_is_refused_and_never_shown() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Pepper(b"short")
    assert "secret-pepper" not in repr(Pepper(b"secret-pepper-" + b"x" * 32))


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("2001:db8:0:1::7", "2001:db8:0:1::/64"),
        ("2001:DB8:0:1:FFFF:FFFF:FFFF:FFFE", "2001:db8:0:1::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("not an address", "not an address"),
    ],
)
def test_a_client_is_an_ipv4_address_or_an_ipv6_64_network(address: str, network: str) -> None:
    assert client_network(address) == network
    keyer = Keyer(Pepper(b"p" * 32))
    assert keyer.client_key(address) == keyer.digest(KeyPurpose.CLIENT, network)

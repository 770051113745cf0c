"""Keyed hashes: table keys that hold no identity number and cannot be reversed without the pepper."""

from __future__ import annotations

from datetime import date

import pytest
from cryptography.exceptions import InvalidTag

from minid.adapters.sealing import AesGcmSealer
from minid.adapters.secrets import load_pepper
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


# Known answers, written down once: every stored key and hash was made so, and a change to how any is
# made (a purpose's name, the subkeys' label, the input's form, the pepper as read) would leave every
# record unreachable after a deploy while each test above still passed.
PEPPER = Pepper(b"p" * 32)
KNOWN_DIGESTS_OF_SAME = {
    KeyPurpose.PERSON: "1cc9492f53fc70c356e5d53f3cac393f4e594e396bb8215ce7f833e013ce6c80",
    KeyPurpose.PIN_CODE: "74e71475a8af36d8634734a6967981a510a05c5cba7f735a347c5b446cc3b6f3",
    KeyPurpose.ONE_TIME_CODE: "ea7b851f47e3f47afb31d1ce89780e3f85fe76a1fe9ded87c328db2e35b6cea1",
    KeyPurpose.PASSWORD: "5f5bfa97a316d16fb9a271be3bca1644670606337d2cc718b4e8e354b67280d1",
    KeyPurpose.SESSION: "ab20d54eeaff9fb4687483b310b30a43c69649ba828eb00a18a6a9f3beb59de4",
    KeyPurpose.CLIENT: "56487ac273db483114497a93300dd3dbf842d8478f2132f482f77cbf17ec2bdc",
    KeyPurpose.SEAL: "eec99f8f914286c71538586d5c5730012f714866528f1b56aad60e5016c7cfd9",
    KeyPurpose.DECOY: "c81a0d3484c9ecd4ebbeb2ed72a4d1d1003f929d95d593c13adca67ac97cd3e6",
    KeyPurpose.ORDER: "3aa678dd7d9fa4e6269aa0ecf97333b648bb9b37f4149f2d2d327c0e227acda0",
    KeyPurpose.CODE_ORDER: "97b7579e556d524db77a863b63a73175ff14d3ce7baf96810faa96bdee9ad43c",
    KeyPurpose.NOTICE: "9f202a9be199a13387f952ccd8ae106c4e4222c881f625642efc8fed3d9f7a84",
}


def test_every_purpose_s_keyed_hash_is_as_it_was_made_at_the_first_deploy() -> None:
    keyer = Keyer(PEPPER)
    assert {purpose: keyer.digest(purpose, "same") for purpose in KeyPurpose} == KNOWN_DIGESTS_OF_SAME


def test_the_stored_forms_are_as_they_were_made_at_the_first_deploy() -> None:
    keyer = Keyer(PEPPER)
    assert keyer.person_key(NUMBER) == "5dfc4733fb4ef50a57f9fb267348ff5954f4b99bab749cd43b2d01613c86acfe"
    letter = "0b6f1c2e-8d1a-4c3b-9a7e-2f4d5c6b7a8e"
    assert (
        keyer.pin_code_hash(letter, 3, "123456") == "81a888a6951b8eeb71c0d9e856e0d2f140a9050cbed4d3f20e494701ecace405"
    )
    assert keyer.one_time_code_hash("L1", "sms", "654321") == (
        "d0f223f72ea305c0cc9f54e5912c3dfc25f0b81543c1734391c7cafc1b08c0e0"
    )
    assert keyer.password_input("correct horse") == "208480da0859abb43707954c036300243e676c2c53c13e07c9285d53e2a10b15"
    assert keyer.client_key("2001:db8::1") == "19c67466475728908291ea55cae6778985cf7d37e9ee1517c51fea3c817bab40"


def test_the_pepper_is_read_as_its_secret_string_s_bytes() -> None:
    """The secret as Secrets Manager holds it (the template's 64 letters and digits), its UTF-8 bytes."""

    class Secrets:
        def get_secret_value(self, SecretId: str) -> dict[str, str]:  # noqa: N803  (the SDK's name)
            return {"SecretString": "p" * 32}

    assert load_pepper(Secrets(), "pepper") == PEPPER  # type: ignore[arg-type]


def test_a_value_sealed_at_the_first_deploy_still_opens() -> None:
    """AES-256-GCM under the sealing subkey: nonce and ciphertext, base64url; bound to purpose and owner."""
    sealed = "Zemeam_ClD_C-Xb3HwNwRQjZuEF71tvX1m4auWWqs9-iz3GmxF5t"
    sealer = AesGcmSealer(Keyer(PEPPER))
    assert sealer.open(sealed, purpose="session", owner="abc") == "15108695088"
    with pytest.raises(InvalidTag):
        sealer.open(sealed, purpose="session", owner="abd")

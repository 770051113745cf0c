"""Keyed hashes: how identity numbers and other secrets become table keys and stored values.

No table key holds an identity number in clear. A key is an HMAC-SHA256 under a subkey derived
from the pepper (kept in Secrets Manager), one subkey per purpose, so that a hash made for one
purpose can never be replayed as another. Unlike a plain hash, the keyed hash cannot be reversed
by trying all 11-digit numbers without the pepper.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from datetime import date
from enum import StrEnum
from typing import NewType, Protocol

from minid.domain.errors import InvalidIdentityNumber
from minid.domain.identity import IdentityNumber, parse_identity_number
from minid.values import Value

# The keyed hash of a person's identity number: how every record of the person is found.
PersonKey = NewType("PersonKey", str)

_MIN_PEPPER_BYTES = 32


class KeyPurpose(StrEnum):
    PERSON = "person"
    PIN_CODE = "pin-code"
    ONE_TIME_CODE = "one-time-code"
    PASSWORD = "password"  # noqa: S105  (a purpose's name, not a password)
    SESSION = "session"
    CLIENT = "client"
    SEAL = "seal"
    DECOY = "decoy"
    ORDER = "order"
    CODE_ORDER = "code-order"
    NOTICE = "notice"


class Pepper(Value, frozen=True):
    """The service-wide secret behind every keyed hash. Its repr never shows the secret."""

    __hidden__ = frozenset({"secret"})  # left out of repr

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) < _MIN_PEPPER_BYTES:
            raise ValueError(f"the pepper must hold at least {_MIN_PEPPER_BYTES} bytes")


class Keyer:
    """Derives table keys and keyed hashes from the pepper."""

    def __init__(self, pepper: Pepper) -> None:
        self._subkeys = {
            purpose: hmac.digest(pepper.secret, f"minid/v1/{purpose.value}".encode(), hashlib.sha256)
            for purpose in KeyPurpose
        }

    def digest(self, purpose: KeyPurpose, value: str) -> str:
        return hmac.digest(self._subkeys[purpose], value.encode(), hashlib.sha256).hex()

    def person_key(self, identity_number: IdentityNumber) -> PersonKey:
        """The key under which every record of this person is stored."""
        return PersonKey(self.digest(KeyPurpose.PERSON, identity_number.value))

    def is_identity_number_of(self, digits: str, person: PersonKey) -> bool:
        """Whether 11 digits are the identity number behind a person key (found by its keyed hash)."""
        try:
            number = parse_identity_number(digits, allow_synthetic=True, today=date.max)
        except InvalidIdentityNumber:
            return False
        return hmac.compare_digest(self.person_key(number), person)

    def pin_code_hash(self, letter_id: str, index: int, code: str) -> str:
        """A PIN code as stored: bound to its letter and its number in the letter."""
        return self.digest(KeyPurpose.PIN_CODE, f"{letter_id}:{index}:{code}")

    def one_time_code_hash(self, challenge_id: str, channel: str, code: str) -> str:
        """A one-time code as stored: bound to its challenge (login, enrolment, ...) and channel."""
        return self.digest(KeyPurpose.ONE_TIME_CODE, f"{challenge_id}:{channel}:{code}")

    def password_input(self, password: str) -> str:
        """The password as the slow hash takes it: keyed with the pepper first, so that a stolen
        table of hashes cannot be attacked without the secret as well."""
        return self.digest(KeyPurpose.PASSWORD, password)

    def session_key(self, token: str) -> str:
        """A session token as stored: the token itself is only ever with its holder."""
        return self.digest(KeyPurpose.SESSION, token)

    def client_key(self, address: str) -> str:
        """A client (its IP address, an IPv6 one by its /64 network) as rate limits count it."""
        return self.digest(KeyPurpose.CLIENT, client_network(address))

    def sealing_key(self) -> bytes:
        """The key for what must be read back (AES-256-GCM): TOTP secrets, a session's identity number."""
        return self._subkeys[KeyPurpose.SEAL]

    def matches(self, stored: str, candidate: str) -> bool:
        """Compare a stored keyed hash with a fresh one in constant time."""
        return hmac.compare_digest(stored, candidate)


class Sealer(Protocol):
    """Authenticated encryption for what must be stored and read back, bound to its purpose and owner."""

    def seal(self, plaintext: str, *, purpose: str, owner: str) -> str: ...

    def open(self, sealed: str, *, purpose: str, owner: str) -> str: ...


def client_network(address: str) -> str:
    """The part of a client's address that one client holds: an IPv4 address, or the /64 network of an
    IPv6 one (a household or a cloud host is given at least a /64, and could take a new address from it
    for every request); an IPv4 address mapped into IPv6 is the IPv4 address. Anything else as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)

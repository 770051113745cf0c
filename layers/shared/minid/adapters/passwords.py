"""Passwords kept with argon2id (argon2-cffi), keyed with the pepper first; and the common-password list."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from minid.domain.keys import Keyer
from minid.domain.passwords import normalize

# OWASP's argon2id minimum: 19 MiB of memory, 2 passes, 1 lane.
MEMORY_KIB = 19 * 1024
TIME_COST = 2
PARALLELISM = 1


class Argon2PasswordHasher:
    def __init__(self, keyer: Keyer) -> None:
        self._keyer = keyer
        self._argon2 = PasswordHasher(
            time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=PARALLELISM, hash_len=32, salt_len=16, type=Type.ID
        )

    def _input(self, password: str) -> str:
        return self._keyer.password_input(normalize(password))

    def hash(self, password: str) -> str:
        return self._argon2.hash(self._input(password))

    def verify(self, stored: str, password: str) -> bool:
        try:
            return self._argon2.verify(stored, self._input(password))
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        return self._argon2.check_needs_rehash(stored)


@cache
def common_passwords() -> frozenset[str]:
    """zxcvbn's 30,000 most common passwords (lower case), loaded on first use."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # noqa: PLC0415

    return frozenset(FREQUENCY_LISTS["passwords"])


class CommonPasswords:
    """The list as a container that loads it when it is first asked, not at cold start."""

    def __contains__(self, password: object) -> bool:
        return password in common_passwords()

"""Passwords kept with argon2id (argon2-cffi), keyed with the pepper first; and the common-password list."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from argon2 import PasswordHasher, Type, extract_parameters
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
        """Whether the stored hash is weaker than the configured parameters. argon2-cffi's own check asks
        whether they differ: a hash made stronger (by a later deploy, or one rolling out) would be made
        weak again at its next login."""
        try:
            kept = extract_parameters(stored)
        except InvalidHashError:
            return True
        ours = self._argon2  # its parameters, as configured
        return (
            kept.type is not Type.ID
            or kept.memory_cost < ours.memory_cost
            or kept.time_cost < ours.time_cost
            or kept.hash_len < ours.hash_len
        )


@cache
def common_passwords() -> frozenset[str]:
    """zxcvbn's 30,000 most common passwords (lower case), loaded on first use."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # noqa: PLC0415

    return frozenset(FREQUENCY_LISTS["passwords"])


# zxcvbn's estimate costs more the longer the password (some 140 ms for 72 random characters, its
# own limit); what makes a password guessable shows in its beginning, and more is strong by length.
ESTIMATED_CHARACTERS = 40


def zxcvbn_guesses(password: str, context: Sequence[str]) -> float:
    """How many guesses zxcvbn estimates `password` takes, knowing the words `context`; loaded on first use."""
    from zxcvbn import zxcvbn  # noqa: PLC0415  (some 30 ms to load: not at cold start)

    return float(zxcvbn(password[:ESTIMATED_CHARACTERS], user_inputs=list(context))["guesses"])


class CommonPasswords:
    """The list as a container that loads it when it is first asked, not at cold start."""

    def __contains__(self, password: object) -> bool:
        return password in common_passwords()

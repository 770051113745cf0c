"""The random source the domain is given. Codes and ids come from a cryptographic source only."""

from __future__ import annotations

import uuid
from typing import Protocol

# The ids the service makes (letters, enrolments, logins, resets): random UUIDs, version 4, lower case.
UUID4_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"


class RandomSource(Protocol):
    def randbelow(self, upper: int) -> int:
        """A uniformly random integer in [0, upper), from a cryptographic source."""
        ...

    def token_hex(self, nbytes: int) -> str: ...


def new_id(random: RandomSource) -> str:
    """A new id: a version 4 UUID from the cryptographic source."""
    return str(uuid.UUID(hex=random.token_hex(16), version=4))

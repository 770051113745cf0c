"""The random source the domain is given. Codes and ids come from a cryptographic source only."""

from __future__ import annotations

from typing import Protocol


class RandomSource(Protocol):
    def randbelow(self, upper: int) -> int:
        """A uniformly random integer in [0, upper), from a cryptographic source."""
        ...

    def token_hex(self, nbytes: int) -> str: ...

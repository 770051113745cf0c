"""The operating system's cryptographic random source (Python's `secrets`)."""

from __future__ import annotations

import secrets


class SystemRandom:
    def randbelow(self, upper: int) -> int:
        return secrets.randbelow(upper)

    def token_hex(self, nbytes: int) -> str:
        return secrets.token_hex(nbytes)

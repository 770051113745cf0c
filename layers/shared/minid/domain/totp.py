"""Authenticator apps (TOTP, RFC 6238) through pyotp: 6 digits, 30-second steps, one step either side."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyotp

ISSUER = "MinID"
STEP_SECONDS = 30
WINDOW = 1  # steps accepted before and after the current one, for a clock that is a little off


def _totp(secret: str) -> pyotp.TOTP:
    """pyotp's TOTP of the secret. pyotp is imported at first use, not at cold start: the login function's
    routes use it for an authenticator app only (some 1 ms of its start, `make bench`)."""
    from pyotp import TOTP  # noqa: PLC0415

    return TOTP(secret)


def new_secret() -> str:
    """160 random bits in base32, from the operating system's cryptographic source (pyotp uses `secrets`)."""
    from pyotp import random_base32  # noqa: PLC0415  (as _totp)

    return random_base32()


def provisioning_uri(secret: str, label: str) -> str:
    return _totp(secret).provisioning_uri(name=label, issuer_name=ISSUER)


def step_time(step: int) -> datetime:
    """When a time step begins."""
    return datetime.fromtimestamp(step * STEP_SECONDS, tz=UTC)


def is_code_at(secret: str, code: str, step: int) -> bool:
    """Whether this is the code of that time step, compared in constant time."""
    return hmac.compare_digest(_totp(secret).at(step * STEP_SECONDS), code)


def app_of(sealed_secret: str) -> str:
    """Which app a sealed secret is, for telling it from one added later, without keeping the secret: a digest
    of the sealed form (each addition seals anew, with a fresh nonce)."""
    return hashlib.sha256(sealed_secret.encode()).hexdigest()[:32]


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code this is, within the window, compared in constant time; or None."""
    totp = _totp(secret)
    current = int(now.timestamp()) // STEP_SECONDS
    found = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            found = step
    return found

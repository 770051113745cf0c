"""Authenticator apps (TOTP, RFC 6238) through pyotp: 6 digits, 30-second steps, one step either side."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pyotp

ISSUER = "MinID"
STEP_SECONDS = 30
WINDOW = 1  # steps accepted before and after the current one, for a clock that is a little off


def new_secret() -> str:
    """160 random bits in base32, from the operating system's cryptographic source (pyotp uses `secrets`)."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, label: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=label, issuer_name=ISSUER)


def step_time(step: int) -> datetime:
    """When a time step begins."""
    return datetime.fromtimestamp(step * STEP_SECONDS, tz=UTC)


def is_code_at(secret: str, code: str, step: int) -> bool:
    """Whether this is the code of that time step, compared in constant time."""
    return hmac.compare_digest(pyotp.TOTP(secret).at(step * STEP_SECONDS), code)


def app_of(sealed_secret: str) -> str:
    """Which app a sealed secret is, for telling it from one added later, without keeping the secret: a digest
    of the sealed form (each addition seals anew, with a fresh nonce)."""
    return hashlib.sha256(sealed_secret.encode()).hexdigest()[:32]


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code this is, within the window, compared in constant time; or None."""
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // STEP_SECONDS
    found = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            found = step
    return found

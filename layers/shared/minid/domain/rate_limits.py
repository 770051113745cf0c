"""Per-client limits, so that one client cannot spray many accounts or pump SMS.

A client is its IP address, counted by its keyed hash in fixed windows. The limits are generous for
people behind one address (a school, a workplace) and low for a script.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from minid.domain.codes import RateLimited
from minid.domain.keys import Keyer


@dataclass(frozen=True, slots=True)
class Limit:
    name: str
    max_hits: int
    window: timedelta


# Attempts with an identity number (login, enrolment, password reset): a guess each.
IDENTITY_ATTEMPTS = Limit("identity-attempts", 30, timedelta(minutes=1))
# One-time codes sent by SMS or e-mail on a client's request.
CODES_SENT = Limit("codes-sent", 60, timedelta(hours=1))


class RateCounter(Protocol):
    def hit(self, counter: str, max_hits: int, window_ends: datetime) -> bool:
        """Count a hit if fewer than `max_hits` are counted in this window; False when full."""
        ...


class ClientLimits:
    def __init__(self, counter: RateCounter, keyer: Keyer) -> None:
        self._counter = counter
        self._keyer = keyer

    def hit(self, limit: Limit, client: str, now: datetime) -> None:
        """Count a request of the client, or raise RateLimited with the seconds until the window ends."""
        seconds = int(limit.window.total_seconds())
        start = int(now.timestamp()) // seconds * seconds
        window_ends = datetime.fromtimestamp(start + seconds, tz=now.tzinfo)
        counter = f"{limit.name}#{self._keyer.client_key(client)}#{start}"
        if not self._counter.hit(counter, limit.max_hits, window_ends):
            raise RateLimited(int((window_ends - now).total_seconds()) + 1, "Too many requests from this client.")
